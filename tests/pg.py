"""A real PostgreSQL server for the tests, started on loopback in a temporary folder.

Found from Debian's packages (``/usr/lib/postgresql/*/bin``) or ``PATH``; run as the
``postgres`` user when the tests run as root (PostgreSQL refuses to run as root). Each test
gets its own database. In CI the server must start (the suite installs it); elsewhere the
PostgreSQL tests are skipped with the reason when no server binaries are found.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def _bin_dir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    if found:
        return found[0].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    port: int
    folder: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self, template: str | None = None) -> str:
        """A fresh database, empty or a copy of the database at URL ``template`` (which must
        have no open connection); its URL."""
        from sqlalchemy import create_engine, text

        name = "t_" + uuid.uuid4().hex[:12]
        copy = f' TEMPLATE "{database_name(template)}"' if template else ""
        eng = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with eng.connect() as c:
                c.execute(text(f'CREATE DATABASE "{name}"{copy}'))
        finally:
            eng.dispose()
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database at ``url``, closing whatever is still connected to it."""
        from sqlalchemy import create_engine, text

        eng = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with eng.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{database_name(url)}" WITH (FORCE)'))
        finally:
            eng.dispose()


def database_name(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?", 1)[0]


def _as_postgres(cmd: list[str]) -> list[str]:
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def start_server() -> tuple[PgServer, Callable[[], None]] | None:
    """Start a server on a free loopback port in a new temporary folder: (server, stop), or
    None when no server binaries are installed."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        return None
    # Its own folder in the system's temporary directory, which the postgres user can reach
    # (pytest's temporary folders are the caller's only).
    folder = Path(tempfile.mkdtemp(prefix="scorer-pg-"))
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    data = folder / "data"
    subprocess.run(
        _as_postgres(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        ),
        check=True,
        capture_output=True,
    )
    port = _free_port()
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=200"
    started = subprocess.run(
        _as_postgres(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(folder / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ]
        ),
        capture_output=True,
        text=True,
    )
    if started.returncode != 0:
        raise RuntimeError("PostgreSQL did not start: " + started.stdout + started.stderr)

    def stop() -> None:
        subprocess.run(
            _as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)

    return PgServer(port, folder), stop


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    started = start_server()
    if started is None:
        pytest.skip("no PostgreSQL server binaries (Debian package postgresql)")
    server, stop = started
    try:
        yield server
    finally:
        stop()
