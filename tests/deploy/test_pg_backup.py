"""Scheduled backups of the server's PostgreSQL database and their restore, for real: the demo
in a PostgreSQL started by the tests, `scorer pg-backup` run as the timer runs it (with the
server's own role, while a reader keeps saving), `scorer pg-restore` into a new empty
database, the audit trail verifying there, and every table identical to the source."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from scorer.cli.pg_backup import prune
from tests.pg import PgServer, pg_server  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.posix, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Source:
    pg: PgServer
    url: str  # the owner's (the test's superuser)
    role_url: str  # the server's role, as the server's host logs in
    data: Path  # the server's data folder: audit key, receipts
    folder: Path
    passwords: dict[str, str]


def scorer(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCORER_")}
    env |= {"SCORER_DATA_DIR": str(data), "SCORER_CONFIG": str(data / "no-site-config.toml")}
    return subprocess.run(
        [sys.executable, "-m", "scorer", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def source(
    pg_server: PgServer,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Source]:
    from scorer.demo import repo_samples_dir, run_demo
    from scorer.workspace import Workspace

    folder = tmp_path_factory.mktemp("pg-backup")
    data = folder / "server-data"
    url = pg_server.new_database()
    role = "srv_" + uuid.uuid4().hex[:8]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCORER_DATA_DIR", str(data))
        mp.setenv("SCORER_CONFIG", str(folder / "none.toml"))
        mp.delenv("SCORER_DB", raising=False)
        made = run_demo(url, samples=repo_samples_dir(), say=lambda _t: None)
        _sql(pg_server.url(), f"CREATE ROLE {role} LOGIN")
        Workspace.grant_workstation(role, url)
    role_url = url.replace("postgres@", f"{role}@", 1)
    yield Source(pg_server, url, role_url, data, folder, made.passwords)
    pg_server.drop_database(url)
    _sql(pg_server.url(), f"DROP OWNED BY {role} CASCADE", database=url)
    _sql(pg_server.url(), f"DROP ROLE IF EXISTS {role}")


def _sql(url: str, statement: str, database: str | None = None) -> None:
    eng = create_engine(database or url, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as c:
            c.execute(text(statement))
    except Exception:
        if database is None:
            raise
    finally:
        eng.dispose()


def _contents(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, in a fixed order."""
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            tables = [
                r[0]
                for r in c.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                )
            ]
            return {
                t: sorted((tuple(r) for r in c.execute(text(f'SELECT * FROM "{t}"'))), key=repr)
                for t in sorted(tables)
            }
    finally:
        eng.dispose()


def _restored_site(src: Source, name: str) -> Path:
    """A new host's data folder with the audit key copied in (backups never hold it)."""
    site = src.folder / name
    site.mkdir(mode=0o700)
    key = site / "scorer.audit-key"
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, (src.data / "scorer.audit-key").read_bytes())
    os.close(fd)
    return site


def _saving(src: Source, stop: threading.Event, saved: list[int]) -> None:
    """A reader saving scores as fast as the database takes them, until ``stop``."""
    from scorer.core.methods import get_method
    from scorer.core.reads import AreaScore
    from scorer.store.location import Location, resolve
    from scorer.workspace import Workspace

    base = resolve(src.url)
    loc = Location(
        src.url, src.data / "scorer.audit-key", src.data / "scorer.receipts", src.data, "test",
        base.readers_store, base.originals_store,
    )  # fmt: skip
    ws = Workspace.open(location=loc)
    try:
        s = ws.accounts.login("reader3", src.passwords["reader3"])
        row = ws.worklists.worklist(s, "DEMO-RA")[0]
        read = ws.reading.open_case(s, row.code).reads["A"]
        areas = get_method(ws.reading.get_read(s, read).method).areas
        k = 0
        while not stop.is_set():
            area = areas[k % len(areas)].area
            sides = areas[k % len(areas)].sides
            score = AreaScore.from_sides([k % 2, 0]) if sides else AreaScore(k % 2)
            ws.reading.set_scores(s, read, {area: score})
            k += 1
            saved.append(k)
        ws.accounts.logout(s)
    finally:
        ws.close()


def test_a_backup_taken_while_a_reader_saves_restores_and_verifies(
    source: Source, tmp_path: Path
) -> None:
    backups = tmp_path / "backups"
    stop, saved = threading.Event(), []
    writer = threading.Thread(target=_saving, args=(source, stop, saved))
    writer.start()
    try:
        while len(saved) < 5 and writer.is_alive():
            threading.Event().wait(0.05)
        done = scorer(source.data, "pg-backup", "--db", source.role_url, "--to", str(backups))
        during = len(saved)
        while len(saved) < during + 5 and writer.is_alive():
            threading.Event().wait(0.05)
    finally:
        stop.set()
        writer.join(60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert during > 5, "the reader kept saving while the backup ran"
    (made,) = list(backups.iterdir())
    assert made.name.startswith("scorer-") and oct(made.stat().st_mode & 0o777) == "0o700"
    assert sorted(p.name for p in made.iterdir()) == ["database.dump", "manifest.json", "receipts"]
    assert all(p.stat().st_mode & 0o077 == 0 for p in made.iterdir())
    target = source.pg.new_database()
    try:
        site = _restored_site(source, "restored-a")
        done = scorer(site, "pg-restore", str(made), "--db", target)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "the restored audit trail verifies" in done.stdout
        done = scorer(site, "audit", "verify", "--maintenance", "--db", target)
        assert done.returncode == 0 and "audit trail verifies" in done.stdout, done.stdout
    finally:
        source.pg.drop_database(target)


def test_a_quiet_backup_restores_every_row_identical(source: Source, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    done = scorer(source.data, "pg-backup", "--db", source.role_url, "--to", str(backups))
    assert done.returncode == 0, done.stdout + done.stderr
    (made,) = list(backups.iterdir())
    target = source.pg.new_database()
    try:
        site = _restored_site(source, "restored-b")
        done = scorer(site, "pg-restore", str(made), "--db", target)
        assert done.returncode == 0, done.stdout + done.stderr
        assert _contents(target) == _contents(source.url)
        assert (site / "scorer.receipts").read_bytes() == (made / "receipts").read_bytes()
        # A second restore into the same, now full, database is refused.
        again = _restored_site(source, "restored-b2")
        done = scorer(again, "pg-restore", str(made), "--db", target)
        assert done.returncode == 1 and "is not empty" in done.stderr
    finally:
        source.pg.drop_database(target)


def test_a_damaged_backup_or_another_key_restores_nothing(source: Source, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    done = scorer(source.data, "pg-backup", "--db", source.url, "--to", str(backups))
    assert done.returncode == 0, done.stderr
    (made,) = list(backups.iterdir())
    target = source.pg.new_database()
    try:
        # Another key at the new host: refused before anything is restored.
        site = _restored_site(source, "restored-c")
        key = site / "scorer.audit-key"
        key.write_text(uuid.uuid4().hex * 2 + "\n")
        done = scorer(site, "pg-restore", str(made), "--db", target)
        assert done.returncode == 1 and "not the backed-up database's key" in done.stderr
        # A byte of the dump changed: refused by its SHA-256.
        dump = made / "database.dump"
        data = bytearray(dump.read_bytes())
        data[len(data) // 2] ^= 0xFF
        dump.write_bytes(bytes(data))
        site = _restored_site(source, "restored-d")
        done = scorer(site, "pg-restore", str(made), "--db", target)
        assert done.returncode == 1 and "does not match its manifest" in done.stderr
        assert _contents(target) == {}
        assert not (site / "scorer.receipts").exists()
    finally:
        source.pg.drop_database(target)


def _edit_manifest(made: Path, change: dict[str, object], sign_with: Path | None) -> None:
    """Change the manifest's top-level entries; re-sign it with the key at ``sign_with`` (a
    backup made wrong), or drop its MAC (a backup from before manifests were signed)."""
    from scorer.cli.pg_backup import manifest_mac
    from scorer.store.audit import load_key

    manifest = json.loads((made / "manifest.json").read_text(encoding="utf-8"))
    manifest.update(change)
    manifest.pop("mac", None)
    if sign_with is not None:
        manifest["mac"] = manifest_mac(load_key(sign_with), manifest)
    (made / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def _relations(url: str) -> list[str]:
    """Every relation, routine and type outside PostgreSQL's own schemas."""
    from scorer.store.pg_snapshot import database_objects

    return sorted(f"{k} {s}.{n}" for k, s, n, _ in database_objects(url))


def test_a_manifest_edited_after_the_backup_is_named_and_restores_nothing(
    source: Source, tmp_path: Path
) -> None:
    backups = tmp_path / "backups"
    done = scorer(source.data, "pg-backup", "--db", source.url, "--to", str(backups))
    assert done.returncode == 0, done.stderr
    (made,) = list(backups.iterdir())
    manifest = json.loads((made / "manifest.json").read_text(encoding="utf-8"))
    assert len(manifest["mac"]) == 64  # signed with (a key derived from) the audit key
    target = source.pg.new_database()
    try:
        # Its date moved: the MAC names the manifest as edited, before anything is restored.
        manifest["made_at"] = "2020-01-01T00:00:00+00:00"
        raw = json.dumps(manifest, indent=2)  # the MAC of the manifest before the edit
        (made / "manifest.json").write_text(raw, encoding="utf-8")
        site = _restored_site(source, "restored-e")
        done = scorer(site, "pg-restore", str(made), "--db", target)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "manifest.json was changed after the backup was made" in done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
        assert _relations(target) == [] and not (site / "scorer.receipts").exists()
        # Signed, but at a schema revision this scorer does not know: refused before pg_restore.
        _edit_manifest(made, {"revision": "9999"}, source.data / "scorer.audit-key")
        done = scorer(site, "pg-restore", str(made), "--db", target)
        assert done.returncode == 1 and "schema revision 9999" in done.stderr, done.stderr
        assert _relations(target) == []
    finally:
        source.pg.drop_database(target)


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_a_row_count_that_differs_names_the_table_and_drops_the_restore(
    source: Source, tmp_path: Path, signed: bool
) -> None:
    backups = tmp_path / "backups"
    done = scorer(source.data, "pg-backup", "--db", source.url, "--to", str(backups))
    assert done.returncode == 0, done.stderr
    (made,) = list(backups.iterdir())
    rows = json.loads((made / "manifest.json").read_text(encoding="utf-8"))["rows"]
    rows["reads"] += 1
    key = source.data / "scorer.audit-key"
    _edit_manifest(made, {"rows": rows}, key if signed else None)
    target = source.pg.new_database()
    try:
        before = _relations(target)
        site = _restored_site(source, f"restored-f-{signed}")
        done = scorer(site, "pg-restore", str(made), "--db", target)
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"rows of reads: {rows['reads']} in the manifest, {rows['reads'] - 1} restored" in (
            done.stderr
        )
        assert "dropped again" in done.stderr and "nothing was restored" in done.stderr
        assert _relations(target) == before == []
        assert not (site / "scorer.receipts").exists()
        # The same database takes the intact backup afterwards.
        _edit_manifest(made, {"rows": {**rows, "reads": rows["reads"] - 1}}, key)
        done = scorer(site, "pg-restore", str(made), "--db", target)
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        source.pg.drop_database(target)


def test_a_database_that_does_not_answer_gets_one_line_and_no_folder(tmp_path: Path) -> None:
    down = "postgresql+psycopg://scorer_srv:pw-x@127.0.0.1:1/scorer"  # nothing listens on 1
    to = tmp_path / "backups"
    done = scorer(tmp_path, "pg-backup", "--db", down, "--to", str(to))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "scorer: error: no backup was made: cannot connect to the database server at "
        "postgresql+psycopg://scorer_srv:***@127.0.0.1:1/scorer: connection refused"
    ]
    assert not to.exists()
    # A backup folder whose files match its manifest, restored into the same dead address.
    made = tmp_path / "scorer-20261201T023000Z"
    made.mkdir()
    (made / "database.dump").write_bytes(b"dump")
    (made / "receipts").write_bytes(b"")
    manifest = {
        "kind": "scorer postgresql backup",
        "dump": {"file": "database.dump", "sha256": hashlib.sha256(b"dump").hexdigest()},
        "receipts": {"file": "receipts", "sha256": hashlib.sha256(b"").hexdigest()},
    }
    (made / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    done = scorer(tmp_path, "pg-restore", str(made), "--db", down)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        "scorer: error: nothing was restored: cannot connect to the database server at "
        "postgresql+psycopg://scorer_srv:***@127.0.0.1:1/scorer: connection refused"
    ]


def test_an_sqlite_database_is_sent_to_scorer_backup(tmp_path: Path) -> None:
    done = scorer(tmp_path, "pg-backup", "--db", str(tmp_path / "x.sqlite"), "--to", str(tmp_path))
    assert done.returncode == 1 and "scorer backup" in done.stderr


def test_old_backups_are_pruned_and_nothing_else(tmp_path: Path) -> None:
    now = datetime(2026, 12, 1, 2, 30, tzinfo=UTC)

    def made(days_ago: float) -> Path:
        folder = tmp_path / f"scorer-{(now - timedelta(days=days_ago)):%Y%m%dT%H%M%SZ}"
        folder.mkdir()
        return folder

    newest, recent, old, older = made(0), made(13.9), made(14.1), made(40)
    half = tmp_path / ".scorer-20261130T023000Z.partial"
    half.mkdir()
    other = tmp_path / "keep-me"
    other.mkdir()
    removed = prune(tmp_path, 14, now, newest)
    assert sorted(removed) == sorted([old.name, older.name, half.name])
    assert {p.name for p in tmp_path.iterdir()} == {newest.name, recent.name, other.name}


def test_a_backup_of_a_cut_audit_trail_is_refused(source: Source, tmp_path: Path) -> None:
    """A backup keeps the receipts up to its snapshot; over a chain whose tail was cut that
    would drop the receipts showing the cut, so pg-backup refuses, naming the chain."""
    import shutil

    from tests.behind import behind

    copy = source.pg.new_database(template=source.url)
    site = tmp_path / "site"
    site.mkdir(mode=0o700)
    for name in ("scorer.audit-key", "scorer.receipts"):
        shutil.copy2(source.data / name, site / name)
    try:
        with behind(copy) as con:
            con.drop_append_only_triggers()
            (chain, top) = con.rows(
                "SELECT chain, max(link) FROM audit_events WHERE chain > 0 GROUP BY chain "
                "ORDER BY chain LIMIT 1"
            )[0]
            con.execute(f"DELETE FROM audit_events WHERE chain = {chain} AND link = {top}")
        backups = tmp_path / "backups"
        done = scorer(site, "pg-backup", "--db", copy, "--to", str(backups))
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"audit_events/{chain}: the receipts record {top} rows" in done.stderr
        assert not backups.exists() or not any(backups.iterdir())
    finally:
        source.pg.drop_database(copy)
