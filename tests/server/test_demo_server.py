"""``scorer demo --server --no-gui``: the demo's database behind a real server on loopback,
the URL and fingerprint printed; a workstation pins the certificate by that fingerprint and
reads through it; Ctrl-C stops server and demo cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scorer.client.remote import RemoteWorkspace

pytestmark = [pytest.mark.posix, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


def test_demo_over_a_local_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = dict(os.environ)
    env.update(SCORER_DATA_DIR=str(tmp_path / "data"), SCORER_CONFIG=str(tmp_path / "none"))
    env.pop("SCORER_DB", None)
    out = tmp_path / "demo.out"
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scorer", "demo", "--server", "--no-gui"],
            cwd=REPO,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + 180
        while "runs until Ctrl-C" not in out.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, out.read_text()[-2000:]
            time.sleep(0.5)
        text = out.read_text()
        url = re.search(r"server runs at (https://127\.0\.0\.1:\d+)", text)
        fp = re.search(r"fingerprint: ([0-9A-F:]{95})", text)
        assert url and fp, text[-2000:]
        accounts = (tmp_path / "data" / "demo" / "demo-accounts.txt").read_text()
        password = re.search(r"^reader3\s+\S+\s+(\S+)", accounts, re.M)
        assert password
        monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "station"))
        ws = RemoteWorkspace.open(url.group(1), fingerprint=fp.group(1))
        try:
            s = ws.accounts.login("reader3", password.group(1))
            assert len(ws.worklists.worklist(s, "DEMO-RA")) == 13
            ws.accounts.logout(s)
        finally:
            ws.close()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert rc == 0, out.read_text()[-2000:]
    assert "scorer server stopped" in (tmp_path / "data" / "demo" / "demo-server.log").read_text()
