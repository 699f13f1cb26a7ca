"""``scorer demo --server``: the demo as a reading centre has it, on one machine — the demo's
database behind a ``scorer server`` process on loopback, and the workstation talking to that
server only (its own data folder, no database URL, the server's certificate pinned).

The server runs as a child process with its output in a log file beside the demo database; it
is stopped when the workstation's last window closes (or, with ``--no-gui``, on Ctrl-C).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from scorer.cli.output import EXIT_ERROR, EXIT_OK, err

#: How long the server may take to answer its first /health.
START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class LocalServer:
    url: str
    cert: Path
    fingerprint: str
    log: Path
    proc: subprocess.Popen[bytes]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def local_server(db: str, log: Path) -> Iterator[LocalServer]:
    """A ``scorer server`` child process on 127.0.0.1 over ``db``, stopped on leaving."""
    import httpx

    port = _free_port()
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    with os.fdopen(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scorer",
                "server",
                "--db",
                db,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"https://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        cert, fingerprint = None, ""
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = log.read_text(encoding="utf-8", errors="replace")[-1500:]
                raise RuntimeError(f"the demo's server stopped at once:\n{tail}")
            text = log.read_text(encoding="utf-8", errors="replace")
            found = re.search(r"certificate \([^)]*\): (.+)", text)
            printed = re.search(r"SHA-256 fingerprint: ([0-9A-F:]+)", text)
            if found and printed:
                cert, fingerprint = Path(found.group(1).strip()), printed.group(1)
                with contextlib.suppress(httpx.HTTPError, OSError):
                    import ssl

                    ctx = ssl.create_default_context(cafile=str(cert))
                    if httpx.get(url + "/health", verify=ctx, timeout=2).status_code == 200:
                        break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"the demo's server did not answer within {START_TIMEOUT_S:g} s")
        assert cert is not None
        yield LocalServer(url, cert, fingerprint, log, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def serve_demo(
    db: str, folder: Path, scorer: str, open_window: Callable[[str, str], int] | None
) -> int:
    """Run the demo over a local server: the workstation (``open_window(url, cert)``) until
    its windows close, or (None) the server alone until Ctrl-C."""
    try:
        with local_server(db, folder / "demo-server.log") as server:
            print(f"""
The demo's server runs at {server.url} (its log: {server.log}).
  its certificate's SHA-256 fingerprint: {server.fingerprint}
  another workstation of this machine connects with:
    {scorer} gui --server {server.url} --fingerprint {server.fingerprint}
  commands through it (the accounts and passwords: {folder / "demo-accounts.txt"}):
    {scorer} worklist show --trial DEMO-RA --user reader3 \\
        --server {server.url} --cacert {server.cert}
    {scorer} export reads --trial DEMO-RA --out reads.csv --user coord \\
        --server {server.url} --cacert {server.cert}
""")
            if open_window is None:
                print("The server runs until Ctrl-C.", flush=True)
                with contextlib.suppress(KeyboardInterrupt):
                    server.proc.wait()
                return EXIT_OK
            return open_window(server.url, str(server.cert))
    except RuntimeError as exc:
        err(str(exc))
        return EXIT_ERROR
