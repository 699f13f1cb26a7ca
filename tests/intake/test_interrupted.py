"""An import killed mid-way leaves no half-imported image, and the next import completes it."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.intake.conftest import COORD_PW, Desk
from tests.intake.dicom_maker import make_dx, small_radiograph, write


@pytest.mark.posix
def test_sigkill_during_import_leaves_only_whole_images(desk: Desk, tmp_path: Path) -> None:
    src = tmp_path / "in"
    n = 40
    for i in range(n):
        write(
            make_dx(
                small_radiograph(400, 300, seed=i),
                patient_id=f"K-{i % 5}",
                visit="W0" if i % 2 else "W52",
            ),
            src / f"{i:03d}.dcm",
        )
    desk.ws.close()
    env = {**os.environ, "SCORER_USER": "cora"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scorer",
            "import",
            str(src),
            "--trial",
            "T1",
            "--db",
            str(desk.db),
            "--password-stdin",
            "--workers",
            "1",
            "--quiet",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None
    proc.stdin.write((COORD_PW + "\n").encode())
    proc.stdin.close()
    deadline = time.monotonic() + 120
    count = 0
    while time.monotonic() < deadline and proc.poll() is None:
        con = sqlite3.connect(desk.db)
        try:
            count = con.execute("SELECT count(*) FROM images").fetchone()[0]
        except sqlite3.OperationalError:
            count = 0
        finally:
            con.close()
        if count >= 5:
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    con = sqlite3.connect(desk.db)
    rows = con.execute(
        "SELECT code, reader_path, reader_sha256, original_path, sha256 FROM images"
    ).fetchall()
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    assert 5 <= len(rows) < n
    from scorer.workspace import Workspace

    ws = Workspace.open(db=str(desk.db))
    loc = ws.store.location
    for _code, reader, reader_sha, original, sha in rows:
        assert not Path(reader).is_absolute()  # named relative to the store
        assert hashlib.sha256(loc.image_file(reader).read_bytes()).hexdigest() == reader_sha
        original_bytes = loc.image_file(original, original=True).read_bytes()
        assert hashlib.sha256(original_bytes).hexdigest() == sha
    # The next import finishes the job: nothing twice, nothing lost.
    s = ws.accounts.login("cora", COORD_PW)
    res = ws.images.import_images(s, "T1", [src]).to_dict()
    assert res["imported"] + res["duplicates"] == n and res["refused"] == 0
    assert res["duplicates"] == len(rows)
    assert len(ws.images.list_images(s, "T1")) == n
    assert not list(ws.store.location.readers_store.rglob("*.part"))
    assert ws.verify().ok
    ws.close()
