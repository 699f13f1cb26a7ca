"""GET /health as a monitoring system polls it: what it checks, the status codes (200 while
nothing is critical, 503 when something is), that it names no path, and `scorer health`'s
Nagios exit codes against a real server process."""

from __future__ import annotations

import os
import secrets
import sqlite3
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from scorer.server.app import ServerSettings, make_app
from scorer.server.health import DiskLimits
from scorer.store.location import resolve
from scorer.store.migrate import head_revision
from scorer.workspace import Workspace
from tests.server.test_over_the_wire import start, stop

PASSWORD = "Sunflower-Meadow-7"
GIB = 1024**3
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def database(tmp_path: Path) -> Path:
    db = tmp_path / "db.sqlite"
    Workspace.initialize("admin", "Ada Admin", PASSWORD, db=str(db)).close()
    return db


def _client(db: Path, settings: ServerSettings | None = None) -> TestClient:
    app = make_app(resolve(str(db)), settings or ServerSettings())
    return TestClient(app, base_url="https://testserver")


def test_a_healthy_server_answers_200_with_every_check_and_no_path(database: Path) -> None:
    with _client(database) as client:
        r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["ok"] is True and body["status"] in ("ok", "warning")
    assert "message" not in body
    assert body["schema"] == head_revision()
    assert {"database", "schema", "audit_key", "receipts"} <= set(body["checks"])
    assert any(name.startswith("disk_") for name in body["checks"])
    for name in ("database", "schema", "audit_key", "receipts"):
        assert body["checks"][name]["status"] == "ok", body
    assert str(database.parent) not in r.text and "sqlite" not in r.text
    assert r.headers["cache-control"] == "no-store"


def test_a_missing_or_changed_audit_key_is_critical(database: Path) -> None:
    key = database.with_suffix(".audit-key")
    with _client(database) as client:
        saved = key.read_bytes()
        key.unlink()
        r = client.get("/health")
        assert r.status_code == 503 and r.json()["ok"] is False
        assert r.json()["checks"]["audit_key"]["status"] == "critical"
        assert r.json()["message"].startswith("the server cannot work now (audit_key: ")
        # Another key in its place: the server signs with one the file no longer holds.
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, (secrets.token_hex(32) + "\n").encode())
        os.close(fd)
        r = client.get("/health")
        assert r.status_code == 503
        assert "changed" in r.json()["checks"]["audit_key"]["detail"]
        key.unlink()
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, saved)
        os.close(fd)
        assert client.get("/health").status_code == 200


def test_receipts_that_cannot_be_appended_to_are_critical(database: Path) -> None:
    receipts = database.with_suffix(".receipts")
    with _client(database) as client:
        receipts.unlink(missing_ok=True)
        receipts.mkdir()  # a folder in its place: opening it for appending fails (even as root)
        r = client.get("/health")
        assert r.status_code == 503
        assert r.json()["checks"]["receipts"] == {
            "status": "critical",
            "detail": "the receipts file cannot be appended to",
        }
        receipts.rmdir()
        # Gone, and it can be created again: the server works (200), but the audit trail has
        # rows whose receipts are lost, so a cut tail would go unseen: a warning.
        r = client.get("/health")
        assert r.status_code == 200 and r.json()["status"] == "warning"
        assert r.json()["checks"]["receipts"]["status"] == "warning"


def test_a_missing_or_emptied_receipts_file_is_a_warning_once_the_trail_has_rows(
    database: Path, tmp_path: Path
) -> None:
    receipts = database.with_suffix(".receipts")
    with _client(database) as client:
        assert client.get("/health").json()["checks"]["receipts"]["status"] == "ok"
        saved = receipts.read_bytes()
        assert saved  # the first administrator's commit left its receipt
        receipts.unlink()
        r = client.get("/health")
        assert r.status_code == 200 and r.json()["status"] == "warning"
        check = r.json()["checks"]["receipts"]
        assert check["status"] == "warning" and "cut tail" in check["detail"]
        assert str(tmp_path) not in r.text
        receipts.write_bytes(b"")  # emptied: the same
        assert client.get("/health").json()["checks"]["receipts"]["status"] == "warning"
        receipts.write_bytes(saved)
        assert client.get("/health").json()["checks"]["receipts"]["status"] == "ok"


def test_health_tells_no_software_version(database: Path) -> None:
    with _client(database) as client:
        body = client.get("/health").json()
    assert set(body) == {"ok", "status", "schema", "checks"}


def test_a_schema_changed_under_the_running_server_is_critical(database: Path) -> None:
    with _client(database) as client:
        assert client.get("/health").status_code == 200
        # An upgrade half done: the database migrated while the old server still runs.
        con = sqlite3.connect(database)
        with con:
            con.execute("UPDATE alembic_version SET version_num = '9999'")
        con.close()
        r = client.get("/health")
    assert r.status_code == 503 and r.json()["schema"] == "9999"
    check = r.json()["checks"]["schema"]
    assert check["status"] == "critical" and "scorer migrate" in check["detail"]


def test_disk_space_warns_then_is_critical_by_the_limits(database: Path) -> None:
    warn = ServerSettings(disk=DiskLimits(warning_bytes=1 << 60, critical_bytes=0))
    with _client(database, warn) as client:
        r = client.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "warning"
    assert r.json()["ok"] is True  # a workstation still connects
    critical = ServerSettings(disk=DiskLimits(warning_bytes=1 << 60, critical_bytes=1 << 59))
    with _client(database, critical) as client:
        r = client.get("/health")
    assert r.status_code == 503 and r.json()["status"] == "critical"
    disks = [c for n, c in r.json()["checks"].items() if n.startswith("disk_")]
    assert disks and all(c["detail"].endswith("GiB free") for c in disks)


def test_checks_that_take_too_long_answer_503(database: Path) -> None:
    with _client(database, ServerSettings(health_timeout_s=1e-9)) as client:
        r = client.get("/health")
    assert r.status_code == 503
    assert r.json()["checks"]["database"]["detail"].startswith("no answer within")


# --- scorer health against a real server process -------------------------------------------


def _health(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scorer", "health", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.fixture
def running(database: Path, tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    env = {"SCORER_CONFIG": str(tmp_path / "none.toml"), "SCORER_DATA_DIR": str(tmp_path)}
    proc, url, cert = start(str(database), env)
    try:
        yield url, cert, database
    finally:
        stop(proc)


@pytest.mark.slow
def test_scorer_health_gives_nagios_exit_codes(running: tuple[str, Path, Path]) -> None:
    url, cert, database = running
    done = _health("--url", url, "--cacert", str(cert))
    assert done.returncode in (0, 1), done.stdout + done.stderr  # 1: this machine's disk is low
    assert len(done.stdout.splitlines()) == 1 and "| time=" in done.stdout
    assert done.stdout.startswith("SCORER OK - ") or done.stdout.startswith("SCORER WARNING - ")
    # The fingerprint the server printed, checked on the connection: the same answer.
    from scorer.client.trust import der_fingerprint

    fingerprint = der_fingerprint(cert.read_bytes())
    assert _health("--url", url, "--fingerprint", fingerprint).returncode == done.returncode
    wrong = "AA" * 32
    done = _health("--url", url, "--fingerprint", wrong)
    assert done.returncode == 2 and "fingerprint" in done.stdout
    assert done.stderr.startswith("scorer: error: ")
    # Not trusted without a pin or a CA: critical, not a silent pass.
    assert _health("--url", url).returncode == 2
    # The key gone: the server answers 503, the check says CRITICAL and why.
    key = database.with_suffix(".audit-key")
    saved = key.read_bytes()
    key.unlink()
    try:
        done = _health("--url", url, "--cacert", str(cert))
        assert done.returncode == 2, done.stdout
        assert done.stdout.startswith("SCORER CRITICAL - ") and "audit_key" in done.stdout
        # A workstation connecting now is told what failed, and whom to tell.
        from scorer.client.remote import RemoteWorkspace, ServerUnavailable

        with pytest.raises(ServerUnavailable, match="audit_key: .*tell its administrator"):
            RemoteWorkspace.open(url, cafile=str(cert))
    finally:
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, saved)
        os.close(fd)


@pytest.mark.slow
def test_scorer_health_says_critical_when_nothing_answers(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = _health("--url", f"https://127.0.0.1:{port}", "--fingerprint", "AA" * 32)
    assert done.returncode == 2 and done.stdout.startswith("SCORER CRITICAL - ")
    done = _health("--url", "http://127.0.0.1:1")  # not https: the check itself is wrong
    assert done.returncode == 1 and done.stdout.startswith("SCORER WARNING - this check is wrong")
    assert done.stderr.startswith("scorer: error: this check is wrong")


@pytest.mark.parametrize(
    "args",
    [
        [],  # no --url
        ["--url", "https://127.0.0.1:1", "--no-such-option"],
        ["--url", "https://127.0.0.1:1", "--timeout", "abc"],
        ["--url", "https://127.0.0.1:1", "--password", "x"],  # refused before argparse
    ],
    ids=["no-url", "unknown-option", "timeout-not-a-number", "a-password"],
)
def test_scorer_health_with_wrong_arguments_is_a_warning(args: list[str]) -> None:
    done = _health(*args)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith("SCORER WARNING - this check is wrong: ")
    assert len(done.stdout.splitlines()) == 1
    assert done.stderr.splitlines()[-1].startswith("scorer: error: this check is wrong: ")
