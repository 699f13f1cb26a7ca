"""What a backup of a reading centre's PostgreSQL database records, read in the very snapshot
the dump is taken from.

:func:`exported_snapshot` opens a read-only REPEATABLE READ transaction, exports its snapshot
(``pg_export_snapshot()``) and reads in it the schema revision, every table's row count and
the audit and event chain heads; while the transaction stays open, ``pg_dump --snapshot=ID``
dumps exactly that state, however many writers commit meanwhile. :func:`facts` reads the same
record from a restored database to compare. Running pg_dump is the caller's (the command on
the server's host), not this module's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from scorer.store.audit import chain_heads_of

#: The tables of chains (one per trial and the centre's), whose heads a backup records.
CHAINS = ("audit_events", "events")


@dataclass(frozen=True)
class Snapshot:
    """An exported snapshot's id (for ``pg_dump --snapshot``) and the facts read in it."""

    id: str
    facts: dict[str, Any]


def libpq_target(url: str) -> tuple[str, str | None]:
    """The database URL as libpq's tools take it (``postgresql://``, no password in it), and
    the password the URL carried (for ``PGPASSWORD``, never for a command line) or None."""
    parsed = make_url(url)
    password = parsed.password
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), (str(password) if password else None)


def _tables(conn: Connection) -> list[str]:
    found = conn.execute(
        text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
    )
    return [str(r[0]) for r in found]


def _facts(conn: Connection) -> dict[str, Any]:
    names = _tables(conn)
    rows = {t: int(conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one()) for t in names}
    heads: dict[str, dict[str, Any]] = {}
    for table in CHAINS:
        if table not in rows:
            continue
        heads.update(chain_heads_of(conn, table))
    revision = (
        conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        if "alembic_version" in rows
        else None
    )
    return {"revision": revision, "rows": rows, "heads": heads}


@contextmanager
def exported_snapshot(url: str) -> Iterator[Snapshot]:
    """A snapshot of the database at ``url``, exported and held for as long as the block runs
    (pg_dump takes it then), with its facts."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as raw:
            conn = raw.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                conn.execute(text("SET TRANSACTION READ ONLY"))
                snapshot = str(conn.execute(text("SELECT pg_export_snapshot()")).scalar_one())
                yield Snapshot(snapshot, _facts(conn))
    finally:
        engine.dispose()


def facts(url: str) -> dict[str, Any]:
    """The revision, row counts and chain heads of the database at ``url`` now."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return _facts(conn)
    finally:
        engine.dispose()


def user_tables(url: str) -> list[str]:
    """The tables in the database's public schema (none: an empty database to restore into)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return _tables(conn)
    finally:
        engine.dispose()
