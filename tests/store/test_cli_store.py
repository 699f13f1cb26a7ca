"""The admin and coordinator command line over a real database: an SQLite file and a PostgreSQL
server."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from scorer.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "worked-example.csv"
ADMIN_PW = "first-admin-pw"


class Cli:
    """Runs `scorer ...` in-process with passwords fed on standard input."""

    def __init__(
        self, db: str | Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.db = db
        self.capsys = capsys
        self.monkeypatch = monkeypatch

    def __call__(self, *args: str, stdin: str = "") -> tuple[int, str, str]:
        self.monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        rc = main([*args, "--db", str(self.db)])
        out, err = self.capsys.readouterr()
        return rc, out, err


@pytest.fixture
def cli(fresh_db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    c = Cli(fresh_db, capsys, monkeypatch)
    rc, out, err = c(
        "init", "--admin", "ada", "--name", "Ada Admin", "--password-stdin", stdin=ADMIN_PW + "\n"
    )
    assert rc == 0, err
    assert "audit key" in out
    return c


def test_init_refuses_an_existing_database(cli: Cli) -> None:
    rc, _, err = cli("init", "--admin", "bob", "--password-stdin", stdin="another-pass-1\n")
    assert rc == 1 and "already exists" in err


def test_users_trials_import_export_and_verify(cli: Cli, tmp_path: Path) -> None:
    as_admin = ("--user", "ada", "--password-stdin")
    rc, out, err = cli(
        "user",
        "add",
        "cora",
        "--name",
        "Cora Coordinator",
        "--role",
        "coordinator",
        *as_admin,
        stdin=f"{ADMIN_PW}\nfirst-pass-12\n",
    )
    assert rc == 0, err
    rc, out, _ = cli("user", "list", "--format", "json", *as_admin, stdin=ADMIN_PW + "\n")
    users = {u["username"]: u for u in json.loads(out)}
    assert users["cora"]["role"] == "coordinator" and users["cora"]["must_change_password"]
    # A new account must change its password before doing anything.
    rc, _, err = cli(
        "trial", "create", "EXAMPLE", "--user", "cora", "--password-stdin", stdin="first-pass-12\n"
    )
    assert rc == 1 and "change your password" in err
    from scorer.workspace import Workspace

    ws = Workspace.open(db=str(cli.db))
    s = ws.login("cora", "first-pass-12")
    ws.change_password(s, "first-pass-12", "second-pass-34")
    ws.close()
    as_coord = ("--user", "cora", "--password-stdin")
    rc, out, err = cli(
        "trial",
        "create",
        "EXAMPLE",
        "--name",
        "Worked example",
        "--visits",
        "W0,W52",
        *as_coord,
        stdin="second-pass-34\n",
    )
    assert rc == 0, err
    rc, out, _ = cli("trial", "list", "--format", "json", *as_coord, stdin="second-pass-34\n")
    trials = json.loads(out)
    assert trials[0]["code"] == "EXAMPLE" and trials[0]["visits"] == ["W0", "W52"]
    rc, out, err = cli(
        "reads", "import", str(EXAMPLE), "--trial", "EXAMPLE", *as_coord, stdin="second-pass-34\n"
    )
    assert rc == 0, err
    assert "imported 40 read(s)" in out
    # Importing the same file again changes nothing.
    rc, out, err = cli(
        "reads", "import", str(EXAMPLE), "--trial", "EXAMPLE", *as_coord, stdin="second-pass-34\n"
    )
    assert rc == 0 and "imported 0 read(s)" in out
    exported = tmp_path / "export.csv"
    rc, out, err = cli(
        "export",
        "reads",
        "--trial",
        "EXAMPLE",
        "--out",
        str(exported),
        *as_coord,
        stdin="second-pass-34\n",
    )
    assert rc == 0, err
    assert exported.read_bytes() == EXAMPLE.read_bytes()  # export -> import -> export
    rc, out, err = cli("audit", "verify")
    assert rc == 0, out + err
    assert "audit trail verifies" in out
    rc, out, _ = cli("audit", "verify", "--format", "json")
    report = json.loads(out)
    assert report["ok"] and report["rows"]["audit_events"] >= 10


def test_a_bad_reads_file_is_refused_whole(cli: Cli, tmp_path: Path) -> None:
    from scorer.workspace import Workspace

    ws = Workspace.open(db=str(cli.db))
    a = ws.login("ada", ADMIN_PW)
    ws.add_user(a, "cora", "Cora Coordinator", "coordinator", "first-pass-12")
    s = ws.login("cora", "first-pass-12")
    ws.change_password(s, "first-pass-12", "second-pass-34")
    ws.create_trial(s, "EXAMPLE", "Worked example")
    ws.close()
    lines = EXAMPLE.read_text(encoding="utf-8").split("\n")
    lines[200] = lines[200].replace(",signed", ",finished")
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines), encoding="utf-8")
    rc, _, err = cli(
        "reads",
        "import",
        str(bad),
        "--trial",
        "EXAMPLE",
        "--user",
        "cora",
        "--password-stdin",
        stdin="second-pass-34\n",
    )
    assert rc == 1 and "line 201, column read_status" in err
    ws = Workspace.open(db=str(cli.db))
    s = ws.login("cora", "second-pass-34")
    assert ws.list_patients(s, "EXAMPLE") == []  # nothing half-imported
    ws.close()


def test_wrong_password_and_unknown_database_are_clear(
    cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rc, _, err = cli("user", "list", "--user", "ada", "--password-stdin", stdin="nope-nope-nope\n")
    assert rc == 1 and "wrong user ID or password" in err and "locks for 15 minutes" in err
    other = Cli(tmp_path / "missing.sqlite", capsys, monkeypatch)
    rc, _, err = other("user", "list", "--user", "ada", "--password-stdin", stdin="x\n")
    assert rc == 1 and "no scorer database" in err and "scorer init" in err
