"""The admin and coordinator command line over a real database: an SQLite file and a PostgreSQL
server."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import pytest

from scorer.cli import main
from tests.pg import PgServer

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "worked-example.csv"
ADMIN_PW = "first-admin-pw"


class Cli:
    """Runs `scorer ...` in-process with passwords fed on standard input; on PostgreSQL as an
    administrator on the server's host does (--maintenance: a workstation would be refused)."""

    def __init__(
        self, db: str | Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.db = db
        self.capsys = capsys
        self.monkeypatch = monkeypatch

    def __call__(self, *args: str, stdin: str = "") -> tuple[int, str, str]:
        self.monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        direct = ["--maintenance"] if str(self.db).startswith("postgresql") else []
        rc = main([*args, "--db", str(self.db), *direct])
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
    s = ws.accounts.login("cora", "first-pass-12")
    ws.accounts.change_password(s, "first-pass-12", "second-pass-34")
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
    a = ws.accounts.login("ada", ADMIN_PW)
    ws.accounts.add_user(a, "cora", "Cora Coordinator", "coordinator", "first-pass-12")
    s = ws.accounts.login("cora", "first-pass-12")
    ws.accounts.change_password(s, "first-pass-12", "second-pass-34")
    ws.trials.create_trial(s, "EXAMPLE", "Worked example")
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
    s = ws.accounts.login("cora", "second-pass-34")
    assert ws.trials.list_patients(s, "EXAMPLE") == []  # nothing half-imported
    ws.close()


def test_wrong_password_and_unknown_database_are_clear(
    cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rc, _, err = cli("user", "list", "--user", "ada", "--password-stdin", stdin="nope-nope-nope\n")
    assert rc == 1 and "wrong user ID or password" in err and "locks for 15 minutes" in err
    other = Cli(tmp_path / "missing.sqlite", capsys, monkeypatch)
    rc, _, err = other("user", "list", "--user", "ada", "--password-stdin", stdin="x\n")
    assert rc == 1 and "no scorer database" in err and "scorer init" in err


# ------------------------------------------------------------------ database URLs (issue 22)

URL_SECRET = "TopSecret-9Q7"
REFUSED_PORT = f"postgresql+psycopg://scorer:{URL_SECRET}@127.0.0.1:1/scorer"


def _run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str, stdin: str = ""
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize(
    ("db", "said"),
    [
        (
            "bogus://x",
            "scorer supports SQLite files and PostgreSQL (postgresql+psycopg://...) "
            "URLs, not 'bogus'",
        ),
        (
            "mysql://u@127.0.0.1/x",
            "scorer supports SQLite files and PostgreSQL "
            "(postgresql+psycopg://...) URLs, not 'mysql'",
        ),
        (
            f"postgresql+psycopg://u:{URL_SECRET}@[::1/x",
            "not a valid database URL: postgresql+psycopg://u:***@[::1/x",
        ),
        ("postgresql+psycopg2://u@127.0.0.1/x", "scorer reaches PostgreSQL through psycopg"),
        ("sqlite:///:memory:", "an in-memory database cannot hold a trial"),
        ("sqlite://", "an in-memory database cannot hold a trial"),
        (
            "/proc/x.sqlite",
            "cannot create the database file /proc/x.sqlite: No such file or directory",
        ),
        (
            REFUSED_PORT,
            "cannot connect to the database server at "
            "postgresql+psycopg://scorer:***@127.0.0.1:1/scorer: connection refused",
        ),
        (
            "postgresql://u@127.0.0.1:1/x",
            "cannot connect to the database server at "
            "postgresql://u@127.0.0.1:1/x: connection refused",
        ),
    ],
    ids=[
        "bogus",
        "mysql",
        "bad port",
        "psycopg2",
        "memory",
        "sqlite://",
        "proc",
        "refused",
        "plain postgresql",
    ],
)
def test_init_refuses_an_unusable_database_url_in_one_line(
    db: str,
    said: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Never a traceback, and never the URL's password; nothing written anywhere (the default
    database's receipts least of all)."""
    rc, out, err = _run(
        capsys,
        monkeypatch,
        "init",
        "--admin",
        "yvonne",
        "--db",
        db,
        "--password-stdin",
        stdin="Zebra-Kettle-91\n",
    )
    assert rc == 1, out + err
    assert err.startswith("scorer: error: ") and len(err.splitlines()) == 1, err
    assert said in err
    assert URL_SECRET not in out + err
    assert not (tmp_path / "scorer-data").exists()


def test_init_refuses_a_folder_and_names_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rc, _, err = _run(
        capsys,
        monkeypatch,
        "init",
        "--admin",
        "yvonne",
        "--db",
        str(tmp_path),
        "--password-stdin",
        stdin="Zebra-Kettle-91\n",
    )
    assert rc == 1
    assert err == (
        f"scorer: error: {tmp_path} is a folder, not a database file: give a file in it, such "
        f"as {tmp_path / 'scorer.sqlite'}\n"
    )


@pytest.mark.parametrize(
    "command",
    [
        ["trial", "list", "--user", "rita", "--password-stdin", "--maintenance"],
        ["migrate"],
        ["grant", "scorer_ws"],
        ["revoke", "scorer_ws"],
        ["audit", "verify", "--maintenance"],
        ["backup", "--out", "b.zip", "--user", "rita", "--password-stdin"],
    ],
    ids=" ".join,
)
def test_every_command_masks_the_url_password_and_says_the_server_is_unreachable(
    command: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rc, out, err = _run(capsys, monkeypatch, *command, "--db", REFUSED_PORT, stdin="x-x-x-x-x\n")
    assert rc == 1, out + err
    assert err == (
        "scorer: error: cannot connect to the database server at "
        "postgresql+psycopg://scorer:***@127.0.0.1:1/scorer: connection refused\n"
    )
    assert URL_SECRET not in out


def test_a_missing_server_database_and_an_unknown_role_are_told_apart(
    pg_server: PgServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    nodb = pg_server.url("no_such_db").replace("postgres@", f"postgres:{URL_SECRET}@")
    rc, out, err = _run(capsys, monkeypatch, "audit", "verify", "--maintenance", "--db", nodb)
    assert rc == 1
    assert err == (
        f"scorer: error: no database 'no_such_db' on the server at "
        f"{nodb.replace(URL_SECRET, '***')}: create it first (createdb), or check the name\n"
    )
    nobody = pg_server.url().replace("postgres@", f"nobody:{URL_SECRET}@")
    rc, out, err = _run(capsys, monkeypatch, "migrate", "--db", nobody)
    assert rc == 1
    assert err.startswith(
        "scorer: error: the database server refused the log-in for user nobody: "
    ), err
    assert 'role "nobody" does not exist' in err and URL_SECRET not in out + err


def test_a_new_database_never_takes_over_another_ones_receipts(
    pg_server: PgServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The default SQLite database and a server database with no receipts file of its own
    named would share the data folder's scorer.receipts: the second init is refused, and the
    first database still verifies."""
    rc, _, err = _run(
        capsys,
        monkeypatch,
        "init",
        "--admin",
        "ada",
        "--password-stdin",
        stdin="Zebra-Kettle-91\n",
    )
    assert rc == 0, err
    receipts = tmp_path / "scorer-data" / "scorer.receipts"
    before = receipts.read_bytes()
    url = pg_server.new_database()
    try:
        rc, out, err = _run(
            capsys,
            monkeypatch,
            "init",
            "--admin",
            "yvonne",
            "--db",
            url,
            "--password-stdin",
            stdin="Zebra-Kettle-91\n",
        )
    finally:
        pg_server.drop_database(url)
    assert rc == 1, out
    assert err == (
        f"scorer: error: the receipts file {receipts} already holds another database's chain "
        "heads, and a new database needs its own: give --db a file of its own (its receipts "
        'go beside it), or name another receipts file in the config file (receipts = "...")\n'
    )
    assert receipts.read_bytes() == before
    rc, out, err = _run(capsys, monkeypatch, "audit", "verify")
    assert rc == 0 and "audit trail verifies" in out, out + err


def test_a_wrong_server_password_is_a_refused_log_in(
    pg_server: PgServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test server trusts every role but this one, which must give its password."""
    from sqlalchemy import create_engine, text

    role = "pw_" + uuid.uuid4().hex[:8]
    hba = pg_server.folder / "data" / "pg_hba.conf"
    eng = create_engine(pg_server.url(), isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as c:
            c.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD 'Right-Password-1'"))
            hba.write_text(
                f"host all {role} 127.0.0.1/32 scram-sha-256\n" + hba.read_text(), "utf-8"
            )
            c.execute(text("SELECT pg_reload_conf()"))
        url = pg_server.url().replace("postgres@", f"{role}:{URL_SECRET}@")
        rc, out, err = _run(capsys, monkeypatch, "audit", "verify", "--maintenance", "--db", url)
    finally:
        hba.write_text("".join(hba.read_text().splitlines(True)[1:]), "utf-8")
        with eng.connect() as c:
            c.execute(text("SELECT pg_reload_conf()"))
        eng.dispose()
    assert rc == 1
    assert err == (
        f"scorer: error: the database server refused the log-in for user {role}: password "
        f'authentication failed for user "{role}"\n'
    )
    assert URL_SECRET not in out + err
