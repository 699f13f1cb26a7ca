"""The audit trail is the record and the tables its projection (issue 27, item 1): every table
is projected or exempt with a reason, the trail carries no identifying value, the replay gives
the same answer in memory and spilled to disk, and a database made by the previous landed
version gets its baseline by migration and then verifies — and is checked from then on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from io import BytesIO
from pathlib import Path

import pytest
from sqlalchemy import inspect

from scorer.store.database import make_engine
from scorer.store.migrate import head_revision, upgrade
from scorer.store.projection import DIGESTED, EXEMPT, EXEMPT_COLUMNS, Replay, projected_tables
from scorer.store.schema import Base
from scorer.workspace import ScorerError, Workspace
from tests.behind import behind
from tests.store.conftest import POPULATED_REAL_IDS, PopulatedCopy

REPO = Path(__file__).resolve().parents[2]

#: The last landed version before revision 0008 (the baseline): a database it makes is what a
#: reading centre upgrading to this version has.
PREVIOUS_LANDED = "f52e366"


def test_every_table_is_projected_or_exempt_with_a_reason(fresh_db: str) -> None:
    """A later schema change must declare its tables: a table of a migrated database that is
    neither projected nor exempt fails here."""
    url = fresh_db if "://" in fresh_db else f"sqlite:///{fresh_db}"
    engine = make_engine(url)
    upgrade(engine, key=b"k" * 32)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    projected = set(projected_tables())
    assert tables == projected | set(EXEMPT), (
        f"undeclared: {sorted(tables - projected - set(EXEMPT))}; "
        f"declared but missing: {sorted((projected | set(EXEMPT)) - tables)}"
    )
    assert all(reason.strip() for reason in EXEMPT.values())
    for (table, column), reason in EXEMPT_COLUMNS.items():
        assert column in Base.metadata.tables[table].columns and reason.strip()
    for table, column in DIGESTED:
        assert column in Base.metadata.tables[table].columns, (table, column)


def _trail_text(db: str) -> str:
    with behind(db, readonly=True) as con:
        rows = con.rows("SELECT action, old, new, reason FROM audit_events ORDER BY seq")
    return "\n".join(" ".join(str(v) for v in r) for r in rows)


def test_the_trail_keeps_identifying_values_only_as_digests(db_copy: PopulatedCopy) -> None:
    text = _trail_text(db_copy.db)
    assert '"rows"' in text  # the data rows are there
    for real in POPULATED_REAL_IDS:
        assert real not in text
    assert "$argon2" not in text  # no password hash
    with behind(db_copy.db, readonly=True) as con:
        hashes = [h for (h,) in con.rows("SELECT password_hash FROM users")]
        history = [h for (h,) in con.rows("SELECT password_hash FROM password_history")]
    for h in hashes + history:
        assert h not in text
    # Each patient's real ID is in the trail as a digest, and the digest tells them apart.
    with behind(db_copy.db, readonly=True) as con:
        news = [
            n
            for (n,) in con.rows(
                "SELECT new FROM audit_events WHERE action IN ('data.rows', 'data.baseline')"
            )
        ]
    digests = {
        values["real_id"]
        for new in news
        for table, op, _key, values in json.loads(new)["rows"]
        if table == "patients" and op == "i"
    }
    assert len(digests) == len(POPULATED_REAL_IDS)
    assert all(str(d).startswith("hmac:") for d in digests)


def test_the_replay_spilled_to_disk_finds_what_it_finds_in_memory(
    db_copy: PopulatedCopy,
) -> None:
    """Bounded memory: with room for 25 rows the state goes to a temporary file, and the
    verdict, row for row, is the same."""
    from scorer.services.oversight import compare_projection
    from scorer.store.audit import verify as verify_chains

    with behind(db_copy.db) as con:
        con.execute("UPDATE reads SET note = 'changed behind' WHERE id = 1")
        con.execute("UPDATE users SET role = 'admin' WHERE username = 'reader2'")
    ws = Workspace.open(db=db_copy.db)
    found = []
    try:
        for limit in (200_000, 25):
            replay = Replay(limit=limit)

            def on_row(seq: int, action: str, new: str, replay: Replay = replay) -> None:
                if action.startswith("data."):
                    replay.apply(seq, action, new)

            with ws.store.read() as s:
                result = verify_chains(s, ws.store.key, ws.store.location.receipts_path, on_row)
                assert result.ok
                compare_projection(s, ws.store.key, replay, result)
            spilled = replay.state._db is not None
            replay.close()
            assert spilled == (limit == 25)
            found.append(result.differences)
    finally:
        ws.close()
    assert found[0] == found[1]
    assert {(t, c) for t, _k, c, _m in found[0]} == {("reads", "note"), ("users", "role")}


@pytest.fixture
def db_copy(populated_copy: PopulatedCopy) -> PopulatedCopy:
    return populated_copy


def previous_version(into: Path, commit: str = PREVIOUS_LANDED) -> Path:
    """A landed version's files (from git), to run as it was."""
    proc = subprocess.run(
        ["git", "archive", "--format=tar", commit, "scorer", "resources", "sample_images"],
        cwd=REPO,
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, (
        f"git cannot give the landed version {commit} (the test needs the "
        f"repository's history): {proc.stderr.decode(errors='replace')}"
    )
    with tarfile.open(fileobj=BytesIO(proc.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


@pytest.mark.slow
@pytest.mark.posix
def test_a_demo_database_of_the_previous_version_gets_its_baseline_and_verifies(
    tmp_path: Path,
) -> None:
    old = previous_version(tmp_path / "previous")
    db = tmp_path / "demo" / "demo.sqlite"
    env = {**os.environ, "PYTHONPATH": str(old), "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run(
        [sys.executable, "-m", "scorer", "demo", "--no-gui", "--db", str(db)],
        cwd=old,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    with behind(str(db), readonly=True) as con:
        assert con.rows("SELECT version_num FROM alembic_version") == [("0007",)]
        before = con.rows("SELECT count(*) FROM audit_events")[0][0]
        # Tables of later revisions (joint_positions) are not there yet: nothing to count.
        old_tables = set(con.tables())
        rows = sum(
            con.rows(f"SELECT count(*) FROM {t}")[0][0]
            for t in projected_tables()
            if t in old_tables
        )
    # A copy whose old trail was edited behind scorer is not migrated: its baseline would
    # take in the edit.
    broken = tmp_path / "broken"
    shutil.copytree(db.parent, broken)
    with behind(str(broken / db.name)) as con:
        con.drop_append_only_triggers()
        con.execute("UPDATE audit_events SET reason = 'edited' WHERE seq = 5")
    with pytest.raises(ScorerError, match="nothing was migrated: the audit trail does not verify"):
        Workspace.migrate(db=str(broken / db.name))
    with behind(str(broken / db.name), readonly=True) as con:
        assert con.rows("SELECT version_num FROM alembic_version") == [("0007",)]
    # This version opens it only once migrated.
    with pytest.raises(Exception, match="scorer migrate"):
        Workspace.open(db=str(db))
    assert Workspace.migrate(db=str(db)) == ("0007", head_revision())
    ws = Workspace.open(db=str(db))
    try:
        result = ws.verify()
        assert result.ok, result.errors[:5]
        assert result.replayed == rows  # the baseline: every row once
    finally:
        ws.close()
    with behind(str(db), readonly=True) as con:
        baseline = con.rows(
            "SELECT seq, username, new FROM audit_events WHERE action = 'data.baseline' "
            "ORDER BY seq"
        )
        migrated = con.rows("SELECT new FROM audit_events WHERE action = 'database.migrate'")
    assert baseline[0][0] == before + 1 and json.loads(baseline[0][2])["start"] is True
    assert {u for _s, u, _n in baseline} == {"system"}
    assert len(migrated) == 1 and f'"{head_revision()}"' in migrated[0][0]
    # Migrating again writes no second baseline.
    assert Workspace.migrate(db=str(db)) == (head_revision(), head_revision())
    # From now on a change behind scorer's back is named.
    with behind(str(db)) as con:
        con.execute("UPDATE users SET role = 'admin' WHERE username <> 'admin'")
    ws = Workspace.open(db=str(db))
    try:
        result = ws.verify()
    finally:
        ws.close()
    assert not result.ok
    assert {(t, c) for t, _k, c, _m in result.differences} == {("users", "role")}


def test_a_bulk_write_that_would_bypass_the_trail_is_refused(tmp_path: Path) -> None:
    """ORM bulk statements skip the unit of work whose rows go into the trail: refused, and
    nothing written."""
    from sqlalchemy import update

    from scorer.store.schema import User

    ws = Workspace.initialize("admin", "Ada Admin", "Sunflower-Meadow-7", db=str(tmp_path / "d"))
    try:
        with (
            pytest.raises(RuntimeError, match="bulk write to users would bypass the audit"),
            ws.store.write("admin") as tx,
        ):
            tx.session.execute(update(User).values(full_name="Someone Else"))
        s = ws.accounts.login("admin", "Sunflower-Meadow-7")
        assert [u.full_name for u in ws.accounts.list_users(s)] == ["Ada Admin"]
        assert ws.verify().ok
    finally:
        ws.close()


def test_verification_reads_the_trail_and_the_tables_from_one_snapshot(
    db_copy: PopulatedCopy,
) -> None:
    """A reader saving throughout (another connection) never makes verification report a
    difference: the trail and the tables are read in one snapshot (PostgreSQL: repeatable
    read; SQLite: one read transaction in WAL)."""
    import threading

    from scorer.core.reads import AreaScore

    c = db_copy
    code = c.read("reader1", "partial")
    areas = [a for a, v in c.complete_scores().items() if v.score is not None][:20]
    stop = threading.Event()
    saved: list[int] = []
    failures: list[BaseException] = []

    def saving() -> None:
        writer = Workspace.open(db=c.db, clock=c.clock)
        try:
            i = 0
            while not stop.is_set():
                area = areas[i % len(areas)]
                writer.reading.set_score(c.session("reader1"), code, area, AreaScore.scored(i % 2))
                saved.append(i)
                i += 1
        except BaseException as exc:  # reported below
            failures.append(exc)
        finally:
            writer.close()

    thread = threading.Thread(target=saving)
    thread.start()
    results = []
    try:
        while len(results) < 3 or len(saved) < 10:
            results.append(c.ws.verify())
            if len(results) > 40:
                break
    finally:
        stop.set()
        thread.join(30)
    assert not failures, failures
    assert len(saved) >= 10
    for r in results:
        assert r.ok, r.errors[:3]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("DROP TABLE reader_flags", ("reader_flags", "", "")),
        ("ALTER TABLE reader_flags DROP COLUMN answer", ("reader_flags", "", "answer")),
    ],
)
def test_a_dropped_table_or_column_is_named_not_a_traceback(
    tmp_path: Path, sql: str, expected: tuple[str, str, str]
) -> None:
    db = str(tmp_path / "d.sqlite")
    Workspace.initialize("admin", "Ada Admin", "Sunflower-Meadow-7", db=db).close()
    with behind(db) as con:
        con.execute(sql)
    ws = Workspace.open(db=db)
    try:
        result = ws.verify()
    finally:
        ws.close()
    assert not result.ok
    assert [d[:3] for d in result.differences] == [expected]
