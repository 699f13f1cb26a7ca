"""Schema migrations: a database made at every earlier revision upgrades to head, on SQLite
and on PostgreSQL, and gets the append-only triggers."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from scorer.store.database import make_engine
from scorer.store.migrate import current_revision, head_revision, revisions, upgrade
from scorer.store.schema import Base
from tests.behind import APPEND_ONLY, behind


def _url(db: str) -> str:
    return db if "://" in db else f"sqlite:///{db}"


def test_revisions_form_one_line_from_0001() -> None:
    revs = revisions()
    assert revs[0] == "0001"
    assert revs[-1] == head_revision()
    assert len(set(revs)) == len(revs)


@pytest.mark.parametrize("start", revisions())
def test_every_revision_upgrades_to_head(fresh_db: str, start: str) -> None:
    engine = make_engine(_url(fresh_db))
    upgrade(engine, start, key=b"k" * 32)
    assert current_revision(engine) == start
    upgrade(engine, key=b"k" * 32)
    assert current_revision(engine) == head_revision()
    insp = inspect(engine)
    # The migrated schema has every table and column of the models.
    for table in Base.metadata.sorted_tables:
        cols = {c["name"] for c in insp.get_columns(table.name)}
        assert cols == {c.name for c in table.columns}, table.name
    engine.dispose()


def test_migrations_install_the_append_only_triggers(fresh_db: str) -> None:
    engine = make_engine(_url(fresh_db))
    upgrade(engine, key=b"k" * 32)
    engine.dispose()
    with behind(fresh_db) as con:
        found = con.triggers()
        sqlite = con.dialect == "sqlite"
    names = {name for name, _ in found}
    for table in APPEND_ONLY:
        if sqlite:
            assert {f"{table}_no_update", f"{table}_no_delete"} <= names
        else:  # one BEFORE UPDATE OR DELETE trigger per table
            assert (f"{table}_append_only", table) in found


def test_sqlite_runs_wal_with_full_sync_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    engine.dispose()
