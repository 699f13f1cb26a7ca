"""Schema migrations: a database made at every earlier revision upgrades to head."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import inspect

from scorer.store.database import make_engine
from scorer.store.migrate import current_revision, head_revision, revisions, upgrade
from scorer.store.schema import Base


def test_revisions_form_one_line_from_0001() -> None:
    revs = revisions()
    assert revs[0] == "0001"
    assert revs[-1] == head_revision()
    assert len(set(revs)) == len(revs)


@pytest.mark.parametrize("start", revisions())
def test_every_revision_upgrades_to_head(tmp_path: Path, start: str) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = make_engine(url)
    upgrade(engine, start)
    assert current_revision(engine) == start
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    insp = inspect(engine)
    # The migrated schema has every table and column of the models.
    for table in Base.metadata.sorted_tables:
        cols = {c["name"] for c in insp.get_columns(table.name)}
        assert cols == {c.name for c in table.columns}, table.name
    engine.dispose()


def test_migrations_install_the_append_only_triggers(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    con = sqlite3.connect(path)
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
    con.close()
    for table in ("audit_events", "signatures", "events"):
        assert {f"{table}_no_update", f"{table}_no_delete"} <= names


def test_sqlite_runs_wal_with_full_sync_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    engine.dispose()
