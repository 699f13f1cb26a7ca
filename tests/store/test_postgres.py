"""The store on a real PostgreSQL server (issue 13, first part): the same facade and Alembic
migrations as on SQLite; `scorer init` and `scorer migrate` on a server URL; the append-only
triggers; tampering caught by `scorer audit verify`; and two processes appending audit and
event rows at once, many times, leaving both chains linear and verifiable (every write
transaction holds one advisory lock)."""

from __future__ import annotations

import io
import itertools
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from scorer.cli import main
from scorer.core.methods import get_method
from scorer.core.reads import AreaScore
from scorer.workspace import Workspace
from tests.behind import behind
from tests.pg import PgServer, database_name, pg_server  # noqa: F401  (the fixture)

SVH = get_method("svh")
ADMIN_PW = "Sunflower-Meadow-7"
REPO = Path(__file__).resolve().parents[2]


def new_user(ws: Workspace, admin: Any, name: str, role: str, password: str) -> Any:
    ws.accounts.add_user(admin, name, name.title(), role, "Temporary-pass-0")
    s = ws.accounts.login(name, "Temporary-pass-0")
    ws.accounts.change_password(s, "Temporary-pass-0", password)
    return ws.accounts.login(name, password)


@pytest.fixture
def trial_on_pg(
    pg_server: PgServer,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[str, dict[str, str]]:
    """A server database with a trial, two readers with one case each, opened reads."""
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SCORER_CONFIG", str(tmp_path / "no-config.toml"))
    url = pg_server.new_database()
    ws = Workspace.initialize("ada", "Ada Admin", ADMIN_PW, db=url)
    admin = ws.accounts.login("ada", ADMIN_PW)
    coord = new_user(ws, admin, "cora", "coordinator", "Willow-Compass-2024")
    ws.trials.create_trial(coord, "T1", visits=[("W0", 0.0), ("W24", 24.0)])
    ws.trials.add_patient(coord, "T1", "HOSP-0001")
    reads: dict[str, str] = {}
    for name, pw in (("rita", "Tulip-Garden-2024"), ("rob", "Maple-Harbour-2024")):
        new_user(ws, admin, name, "reader", pw)
        ws.worklists.assign_reader(coord, "T1", name)
    ws.worklists.generate_worklists(coord, "T1")
    for name, pw in (("rita", "Tulip-Garden-2024"), ("rob", "Maple-Harbour-2024")):
        s = ws.accounts.login(name, pw)
        case = ws.worklists.worklist(s, "T1")[0].code
        reads[name] = next(iter(ws.reading.open_case(s, case).reads.values()))
    ws.close()
    return url, reads


def test_the_facade_scores_signs_and_verifies_on_postgresql(
    trial_on_pg: tuple[str, dict[str, str]],
) -> None:
    url, reads = trial_on_pg
    ws = Workspace.open(db=url)
    s = ws.accounts.login("rita", "Tulip-Garden-2024")
    code = reads["rita"]
    for i, d in enumerate(SVH.areas):
        value = AreaScore.from_sides([i % 2, 1]) if d.sides else AreaScore.scored(i % 2)
        ws.reading.set_score(s, code, d.area, value)
    ws.reading.sign_read(s, code, "Tulip-Garden-2024", username="rita")
    view = ws.reading.get_read(s, code)
    assert view.status == "signed" and len(view.scores) == len(SVH.areas)
    result = ws.verify()
    assert result.ok, result.errors
    assert result.signatures == 1 and result.rows["audit_events"] > len(SVH.areas)
    ws.close()


def test_the_trail_is_append_only_and_tampering_is_caught(
    trial_on_pg: tuple[str, dict[str, str]],
) -> None:
    url, _reads = trial_on_pg
    eng = create_engine(url)
    try:
        for sql in (
            "UPDATE audit_events SET reason = 'edited' WHERE seq = 3",
            "DELETE FROM audit_events WHERE seq = 3",
            "UPDATE events SET kind = 'x' WHERE seq = 1",
        ):
            with pytest.raises(DBAPIError, match="append-only"), eng.begin() as c:
                c.execute(text(sql))
        # Behind the facade, with the trigger dropped: verification reports the edited row.
        with eng.begin() as c:
            c.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"))
            c.execute(text("UPDATE audit_events SET reason = 'edited' WHERE seq = 3"))
            c.execute(text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only"))
    finally:
        eng.dispose()
    ws = Workspace.open(db=url)
    result = ws.verify()
    ws.close()
    assert not result.ok and any("row 3" in e for e in result.errors), result.errors


def test_scorer_init_and_migrate_on_a_server_url(
    pg_server: PgServer,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SCORER_CONFIG", str(tmp_path / "no-config.toml"))
    url = pg_server.new_database()
    monkeypatch.setattr("sys.stdin", io.StringIO(ADMIN_PW + "\n"))
    assert main(["init", "--db", url, "--admin", "ada", "--name", "Ada", "--password-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("another-pass-12\n"))
    assert main(["init", "--db", url, "--admin", "bob", "--password-stdin"]) == 1
    assert "already" in capsys.readouterr().err
    assert main(["migrate", "--db", url]) == 0
    assert main(["audit", "verify", "--db", url, "--maintenance"]) == 0  # on the server's host
    out = capsys.readouterr().out
    assert "audit trail verifies" in out


CHILD = """
import sys
from scorer.workspace import Workspace
url, user, password, read, n = sys.argv[1:6]
ws = Workspace.open(db=url)
s = ws.accounts.login(user, password)
case = ws.worklists.worklist(s, "T1")[0].code
print("ready", flush=True)
sys.stdin.readline()
for i in range(int(n)):
    ws.reading.set_note(s, read, f"{user} note {i}")
    ws.reading.log_event(s, "case.opened", case)
ws.close()
print("done", flush=True)
"""


def test_two_processes_appending_at_once_leave_both_chains_linear(
    trial_on_pg: tuple[str, dict[str, str]],
) -> None:
    url, reads = trial_on_pg
    n = 150
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, url, user, pw, reads[user], str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for user, pw in (("rita", "Tulip-Garden-2024"), ("rob", "Maple-Harbour-2024"))
    ]
    for c in children:  # both logged in: start them together
        assert c.stdout is not None and c.stdout.readline().strip() == "ready"
    for c in children:
        assert c.stdin is not None
        c.stdin.write("go\n")
        c.stdin.flush()
    for c in children:
        out, err = c.communicate(timeout=300)
        assert c.returncode == 0 and "done" in out, err
    ws = Workspace.open(db=url)
    result = ws.verify()
    assert result.ok, result.errors
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            notes = c.execute(
                text(
                    "SELECT username, seq FROM audit_events WHERE action = 'read.note' ORDER BY seq"
                )
            ).all()
            seqs = [r[0] for r in c.execute(text("SELECT seq FROM audit_events ORDER BY seq"))]
            opened = c.execute(
                text(
                    "SELECT count(*) FROM events WHERE kind = 'case.opened' "
                    "AND username IN ('rita', 'rob')"
                )
            ).scalar()
    finally:
        eng.dispose()
    ws.close()
    assert seqs == list(range(1, len(seqs) + 1))  # one unbroken chain
    # Nothing lost (each reader opened their case once while the trial was set up).
    assert len(notes) == 2 * n and opened == 2 * n + 2
    # The two writers really interleaved (else this proved nothing about concurrency).
    switches = sum(1 for a, b in itertools.pairwise(notes) if a[0] != b[0])
    assert switches > 10, switches


def _as_role(url: str, role: str) -> str:
    """The same database, logged in as ``role`` (the test server trusts loopback)."""
    return url.replace("postgres@", f"{role}@", 1)


def test_a_workstation_role_scores_but_cannot_rewrite_the_trail(
    trial_on_pg: tuple[str, dict[str, str]],
    pg_server: PgServer,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`scorer grant ROLE`: the workstations' own database role reads and changes trial data,
    appends to the trail, and is refused by the server itself every rewrite, cut, trigger drop
    or schema change, with the credentials in hand and no trigger needed."""
    url, reads = trial_on_pg
    role = "ws_" + uuid.uuid4().hex[:8]
    # Refusals first: no such role yet; the owner; SQLite.
    assert main(["grant", role, "--db", url]) == 1
    assert f"there is no PostgreSQL role {role!r}" in capsys.readouterr().err
    owner = "own_" + uuid.uuid4().hex[:8]
    with behind(url) as con:
        con.execute(f"CREATE ROLE {role} LOGIN")
        con.execute(f"CREATE ROLE {owner} LOGIN")
        con.execute(f'ALTER DATABASE "{database_name(url)}" OWNER TO {owner}')
        audit_before = con.rows("SELECT count(*) FROM audit_events")[0][0]
    assert main(["grant", "postgres", "--db", url]) == 1
    assert "superuser" in capsys.readouterr().err
    assert main(["grant", owner, "--db", url]) == 1
    assert "owns the database or its tables" in capsys.readouterr().err
    assert main(["grant", role, "--db", url]) == 0
    out = capsys.readouterr().out
    assert "REVOKE UPDATE, DELETE, TRUNCATE ON audit_events, signatures, events" in out
    # A workstation logged in as the role does a reader's whole job.
    ws_url = _as_role(url, role)
    # ... but cannot hand out privileges itself (PostgreSQL would only warn).
    assert main(["grant", owner, "--db", ws_url]) == 1
    assert f"you are connected as {role!r}" in capsys.readouterr().err
    ws = Workspace.open(db=ws_url)
    try:
        s = ws.accounts.login("rita", "Tulip-Garden-2024")
        code = reads["rita"]
        for i, d in enumerate(SVH.areas):
            value = AreaScore.from_sides([i % 2, 0]) if d.sides else AreaScore.scored(i % 2)
            ws.reading.set_score(s, code, d.area, value)
        ws.reading.sign_read(s, code, "Tulip-Garden-2024", username="rita")
        area = SVH.areas[0].area
        ws.reading.set_score(s, code, area, AreaScore.scored(1), change_reason="second look")
        ws.reading.log_event(s, "case.opened", ws.worklists.worklist(s, "T1")[0].code)
        result = ws.verify()
    finally:
        ws.close()
    assert result.ok, result.errors
    # The grant itself is in the trail.
    with behind(url) as con:
        granted = con.rows("SELECT username, new FROM audit_events WHERE action = 'database.grant'")
        assert con.rows("SELECT count(*) FROM audit_events")[0][0] > audit_before
    assert len(granted) == 1 and granted[0][0] == "system" and role in granted[0][1]
    # The same credentials, used by hand: every rewrite is refused by the server.
    attacks = [
        "UPDATE audit_events SET reason = 'x' WHERE seq = 2",
        "DELETE FROM audit_events WHERE seq > 5",
        "TRUNCATE audit_events",
        "UPDATE signatures SET kind = 'void'",
        "DELETE FROM events",
        "DROP TRIGGER audit_events_append_only ON audit_events",
        "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only",
        "ALTER TABLE events DROP COLUMN mac",
        "DROP TABLE signatures",
        "UPDATE alembic_version SET version_num = '0001'",
        "CREATE TABLE public.mine (x int)",
    ]
    with behind(ws_url) as con:
        for sql in attacks:
            with pytest.raises(con.Error, match="permission denied|must be owner") as refused:
                con.execute(sql)
            assert "append-only" not in str(refused.value), sql  # the privilege, not a trigger
        # What a workstation must do still works: trial data can change.
        con.execute("UPDATE reads SET note = note WHERE code = ?", (reads["rob"],))
        # And so can everything else that is not the trail: the README says so (with these
        # credentials a workstation's OS account can change roles, reads and real IDs behind
        # the facade, and read every real ID) until the server takes the login off workstations.
        # Each change is undone in the same transaction here; the audit chain would not show it.
        con.execute("BEGIN")
        con.execute("UPDATE users SET role = 'admin' WHERE username = 'rita'")
        con.execute("UPDATE patients SET real_id = real_id || '-x'")
        con.execute("UPDATE area_scores SET score = score")
        con.execute("UPDATE reads SET status = status")
        assert con.rows("SELECT count(*) FROM patients WHERE real_id <> ''")[0][0] > 0
        con.execute("ROLLBACK")
    ws = Workspace.open(db=url)
    try:
        assert ws.verify().ok
    finally:
        ws.close()


def test_grant_refuses_an_sqlite_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "t.sqlite"
    Workspace.initialize("ada", "Ada Admin", ADMIN_PW, db=str(db)).close()
    assert main(["grant", "someone", "--db", str(db)]) == 1
    assert "database roles are PostgreSQL's" in capsys.readouterr().err


def test_the_readme_set_up_an_owner_role_and_a_workstation_role(
    pg_server: PgServer,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The README's steps, as written: a database owned by an ordinary role that runs `scorer
    init` and `scorer grant`, and workstations logging in as their own role."""
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SCORER_CONFIG", str(tmp_path / "no-config.toml"))
    suffix = uuid.uuid4().hex[:8]
    owner, ws_role, name = f"owner_{suffix}", f"ws_{suffix}", f"scorer_{suffix}"
    with behind(pg_server.url()) as con:
        con.execute(f"CREATE ROLE {owner} LOGIN")
        con.execute(f"CREATE DATABASE {name} OWNER {owner}")
        con.execute(f"CREATE ROLE {ws_role} LOGIN")
    as_owner = _as_role(pg_server.url(name), owner)
    monkeypatch.setattr("sys.stdin", io.StringIO(ADMIN_PW + "\n"))
    rc = main(["init", "--db", as_owner, "--admin", "ada", "--name", "Ada", "--password-stdin"])
    assert rc == 0, capsys.readouterr().err
    assert main(["grant", ws_role, "--db", as_owner]) == 0, capsys.readouterr().err
    ws = Workspace.open(db=_as_role(pg_server.url(name), ws_role))
    try:
        admin = ws.accounts.login("ada", ADMIN_PW)
        coord = new_user(ws, admin, "cora", "coordinator", "Willow-Compass-2024")
        ws.trials.create_trial(coord, "T1", visits=[("W0", 0.0)])
        ws.trials.add_patient(coord, "T1", "HOSP-0001")
        assert ws.verify().ok
    finally:
        ws.close()
    capsys.readouterr()
    server_role = _as_role(pg_server.url(name), ws_role)
    assert main(["audit", "verify", "--db", server_role, "--maintenance"]) == 0
    assert "audit trail verifies" in capsys.readouterr().out
    pg_server.drop_database(pg_server.url(name))
