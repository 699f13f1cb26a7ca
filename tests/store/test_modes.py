"""Which mode is which (issue 28 item 4), on a real PostgreSQL server: a workstation's command
(and `scorer gui`, `scorer demo`) given a PostgreSQL database is refused with a pointer to the
reading centre's server, before anything connects, unless an administrator on the server's
host gives --maintenance; the server host's own commands (init, migrate, grant, revoke,
backup, receive, pull) run without it; SQLite is open to every command. And `scorer revoke`,
the upgrade path of a centre whose workstations logged in to the database themselves."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from scorer.cli import main
from tests.behind import behind
from tests.pg import PgServer, pg_server  # noqa: F401  (the fixture)

ADMIN_PW = "Sunflower-Meadow-7"
REFUSAL = (
    "scorer: error: this is a PostgreSQL database (from {source}): a reading centre's "
    "workstations connect to its scorer server (scorer gui --server https://HOST:PORT, see "
    "README 'A reading centre'); an administrator on the server's host can run this command "
    "with --maintenance\n"
)


def run(
    capsys: pytest.CaptureFixture[str], mp: pytest.MonkeyPatch, *argv: str, stdin: str = ""
) -> tuple[int, str, str]:
    mp.setattr("sys.stdin", io.StringIO(stdin))
    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def pg_db(
    pg_server: PgServer,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[str]:
    """A scorer database on the PostgreSQL server, made by `scorer init` without
    --maintenance (a command of the server's host); its URL."""
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SCORER_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.delenv("SCORER_DB", raising=False)
    monkeypatch.delenv("SCORER_SERVER", raising=False)
    url = pg_server.new_database()
    try:
        rc, _, err = run(
            capsys, monkeypatch, "init", "--db", url, "--admin", "ada", "--password-stdin",
            stdin=ADMIN_PW + "\n",
        )  # fmt: skip
        assert rc == 0, err
        yield url
    finally:
        pg_server.drop_database(url)


def _events(url: str) -> int:
    with behind(url) as con:
        return int(con.rows("SELECT count(*) FROM events")[0][0])


def _drop_roles(url: str, *roles: str) -> None:
    """Drop the test's roles (and whatever privileges a failed test left them)."""
    with behind(url) as con:
        for role in roles:
            if con.rows("SELECT 1 FROM pg_roles WHERE rolname = ?", (role,)):
                con.execute(f"DROP OWNED BY {role}")
                con.execute(f"DROP ROLE {role}")


AS_ADA = ("--user", "ada", "--password-stdin")
WORKSTATION_COMMANDS = [
    ("trial", "list", *AS_ADA),
    ("user", "list", *AS_ADA),
    ("audit", "verify"),
    ("export", "audit", "--out", "{tmp}/audit.csv", *AS_ADA),
]


@pytest.mark.parametrize("argv", WORKSTATION_COMMANDS, ids=" ".join)
def test_a_workstation_command_on_postgresql_is_refused_unless_maintenance(
    argv: tuple[str, ...],
    pg_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    before = _events(pg_db)
    rc, out, err = run(capsys, monkeypatch, *args, "--db", pg_db, stdin=ADMIN_PW + "\n")
    assert (rc, out, err) == (1, "", REFUSAL.format(source="--db"))
    assert _events(pg_db) == before, "the refused command reached the database"
    assert not (tmp_path / "audit.csv").exists()
    # The same command as an administrator's maintenance on the server's host runs.
    rc, out, err = run(
        capsys, monkeypatch, *args, "--db", pg_db, "--maintenance", stdin=ADMIN_PW + "\n"
    )
    assert rc == 0, err
    assert "PostgreSQL database" not in err


def test_the_refusal_names_where_the_url_came_from(
    pg_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """SCORER_DB, and the site config's db (a workstation of an older reading centre's set-up),
    are refused as --db is; the demo and the workstation's window too."""
    monkeypatch.setenv("SCORER_DB", pg_db)
    rc, out, err = run(capsys, monkeypatch, "audit", "verify")
    assert (rc, out, err) == (1, "", REFUSAL.format(source="SCORER_DB"))
    rc, out, err = run(capsys, monkeypatch, "demo", "--no-gui")
    assert (rc, err) == (1, REFUSAL.format(source="SCORER_DB"))
    monkeypatch.delenv("SCORER_DB")
    config = tmp_path / "scorer.toml"
    config.write_text(f'db = "{pg_db}"\n', encoding="utf-8")
    monkeypatch.setenv("SCORER_CONFIG", str(config))
    rc, out, err = run(capsys, monkeypatch, "trial", "list", *AS_ADA, stdin=ADMIN_PW + "\n")
    assert (rc, out, err) == (1, "", REFUSAL.format(source=f"config file {config}"))
    # scorer gui (offscreen here: the window could open) refuses before it opens anything.
    rc, out, err = run(capsys, monkeypatch, "gui")
    assert (rc, err) == (1, REFUSAL.format(source=f"config file {config}"))
    rc, out, err = run(capsys, monkeypatch, "gui", "--db", pg_db, "--user", "ada")
    assert (rc, err) == (1, REFUSAL.format(source="--db"))
    rc, out, err = run(capsys, monkeypatch, "demo", "--no-gui", "--db", pg_db)
    assert (rc, err) == (1, REFUSAL.format(source="--db"))
    assert not (tmp_path / "data" / "demo").exists()  # nothing of the demo was set up


def test_the_server_hosts_commands_run_on_postgresql_without_maintenance(
    pg_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = run(capsys, monkeypatch, "migrate", "--db", pg_db)
    assert rc == 0 and out.startswith("schema: "), err
    role = "srv_" + uuid.uuid4().hex[:8]
    with behind(pg_db) as con:
        con.execute(f"CREATE ROLE {role} LOGIN")
    try:
        rc, out, err = run(capsys, monkeypatch, "grant", role, "--db", pg_db)
        assert rc == 0 and f"{role} is now the server's role" in out, err
        rc, out, err = run(capsys, monkeypatch, "revoke", role, "--db", pg_db, "--drop")
        assert rc == 0 and f"{role} was dropped." in out, err
    finally:
        _drop_roles(pg_db, role)
    # backup, receive and pull open the database (and log in): what they say next is their own.
    before = _events(pg_db)
    rc, out, err = run(
        capsys, monkeypatch, "backup", "--out", str(tmp_path / "b.zip"), "--db", pg_db, *AS_ADA,
        stdin=ADMIN_PW + "\n",
    )  # fmt: skip
    assert rc == 1 and "scorer pg-backup --to FOLDER" in err, err
    rc, out, err = run(
        capsys, monkeypatch, "pull", "--trial", "NOPE", "--from", "PACS@127.0.0.1:1",
        "--patient", "P1", "--db", pg_db, *AS_ADA, stdin=ADMIN_PW + "\n",
    )  # fmt: skip
    assert rc == 1 and "PostgreSQL database" not in err, err
    rc, out, err = run(
        capsys, monkeypatch, "receive", "--trial", "NOPE", "--port", "0", "--host", "127.0.0.1",
        "--db", pg_db, *AS_ADA, stdin=ADMIN_PW + "\n",
    )  # fmt: skip
    assert rc == 1 and "PostgreSQL database" not in err, err
    assert _events(pg_db) >= before + 3, "backup, pull and receive each logged in"


def test_sqlite_is_open_to_every_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SCORER_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.delenv("SCORER_DB", raising=False)
    monkeypatch.delenv("SCORER_SERVER", raising=False)
    db = str(tmp_path / "station.sqlite")
    rc, _, err = run(
        capsys, monkeypatch, "init", "--db", db, "--admin", "ada", "--password-stdin",
        stdin=ADMIN_PW + "\n",
    )  # fmt: skip
    assert rc == 0, err
    rc, out, err = run(capsys, monkeypatch, "trial", "list", "--db", db, *AS_ADA,
                       stdin=ADMIN_PW + "\n")  # fmt: skip
    assert rc == 0, err
    monkeypatch.setenv("SCORER_DB", db)
    rc, out, err = run(capsys, monkeypatch, "audit", "verify")
    assert rc == 0 and "audit trail verifies" in out, err


def test_revoke_takes_the_old_workstation_roles_rights_away(
    pg_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The upgrade of a centre whose workstations logged in as their own role: after `scorer
    revoke` that role cannot read users (nor anything else); with --drop it is gone. Audited;
    refused for a superuser, an unknown role and an SQLite file."""
    old, other = ("ws_" + uuid.uuid4().hex[:8] for _ in range(2))
    with behind(pg_db) as con:
        con.execute(f"CREATE ROLE {old} LOGIN")
        con.execute(f"CREATE ROLE {other} LOGIN")
    as_old = pg_db.replace("postgres@", f"{old}@", 1)
    try:
        for role in (old, other):
            assert run(capsys, monkeypatch, "grant", role, "--db", pg_db)[0] == 0
        with behind(as_old) as con:
            assert con.rows("SELECT count(*) FROM users")[0][0] == 1
        rc, out, err = run(capsys, monkeypatch, "revoke", old, "--db", pg_db)
        assert rc == 0, err
        assert f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {old}" in out
        assert f"{old} has no privileges on this database now." in out
        with behind(as_old) as con:
            for table in ("users", "patients", "reads", "audit_events"):
                with pytest.raises(con.Error, match="permission denied"):
                    con.rows(f"SELECT count(*) FROM {table}")
        with behind(pg_db) as con:
            audited = con.rows(
                "SELECT username, new FROM audit_events WHERE action = 'database.revoke'"
            )
        assert len(audited) == 1 and audited[0][0] == "system" and old in audited[0][1]
        # --drop: the role is gone.
        rc, out, err = run(capsys, monkeypatch, "revoke", other, "--drop", "--db", pg_db)
        assert rc == 0 and out.endswith(f"DROP ROLE {other}\n{other} was dropped.\n"), err
        with behind(pg_db) as con:
            assert con.rows("SELECT count(*) FROM pg_roles WHERE rolname = ?", (other,)) == [(0,)]
        # Refusals, each saying nothing was revoked.
        for role, said in (
            ("postgres", "is a superuser"),
            ("no_such_role_x", "there is no PostgreSQL role 'no_such_role_x'"),
        ):
            rc, out, err = run(capsys, monkeypatch, "revoke", role, "--db", pg_db)
            assert rc == 1 and err.startswith("scorer: error: nothing was revoked: "), err
            assert said in err
        rc, out, err = run(capsys, monkeypatch, "audit", "verify", "--db", pg_db, "--maintenance")
        assert rc == 0 and "audit trail verifies" in out, err
    finally:
        _drop_roles(pg_db, old, other)
    sqlite = str(tmp_path / "s.sqlite")
    assert run(capsys, monkeypatch, "init", "--db", sqlite, "--admin", "ada", "--password-stdin",
               stdin=ADMIN_PW + "\n")[0] == 0  # fmt: skip
    rc, out, err = run(capsys, monkeypatch, "revoke", "someone", "--db", sqlite)
    assert rc == 1 and "database roles are PostgreSQL's" in err, err
