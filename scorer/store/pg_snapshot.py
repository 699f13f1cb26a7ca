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
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from scorer.store.audit import chain_heads_of
from scorer.store.database import StoreError, describe_connection_error

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
def _connected(url: str) -> Iterator[Connection]:
    """A connection to the database at ``url``; one that cannot be made is a StoreError
    saying why in one line (not reachable, log-in refused, no such database)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        try:
            raw = engine.connect()
        except DBAPIError as exc:
            raise StoreError(describe_connection_error(exc, url)) from None
        with raw:
            yield raw
    finally:
        engine.dispose()


@contextmanager
def exported_snapshot(url: str) -> Iterator[Snapshot]:
    """A snapshot of the database at ``url``, exported and held for as long as the block runs
    (pg_dump takes it then), with its facts."""
    with _connected(url) as raw:
        conn = raw.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            conn.execute(text("SET TRANSACTION READ ONLY"))
            snapshot = str(conn.execute(text("SELECT pg_export_snapshot()")).scalar_one())
            yield Snapshot(snapshot, _facts(conn))


def facts(url: str) -> dict[str, Any]:
    """The revision, row counts and chain heads of the database at ``url`` now."""
    with _connected(url) as conn:
        return _facts(conn)


def user_tables(url: str) -> list[str]:
    """The tables in the database's public schema (none: an empty database to restore into)."""
    with _connected(url) as conn:
        return _tables(conn)


#: Schemas PostgreSQL keeps for itself: nothing a restore makes is in them.
_SYSTEM = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_%'"

#: What a restore can create in a database, each row (kind, schema, name, what DROP takes).
_OBJECTS = f"""
SELECT 'schema', n.nspname, n.nspname, '' FROM pg_namespace n
 WHERE {_SYSTEM} AND n.nspname <> 'public'
UNION ALL
SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
       WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table' WHEN 'i' THEN 'index'
       WHEN 'I' THEN 'index' WHEN 'c' THEN 'composite type' ELSE 'table' END,
       n.nspname, c.relname, ''
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE {_SYSTEM} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'i', 'I', 'c')
UNION ALL
SELECT 'routine', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE {_SYSTEM} AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid
                                 AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e')
UNION ALL
SELECT 'type', n.nspname, t.typname, '' FROM pg_type t JOIN pg_namespace n
    ON n.oid = t.typnamespace
 WHERE {_SYSTEM} AND t.typtype IN ('e', 'd', 'r', 'm') AND NOT EXISTS (SELECT 1 FROM
       pg_depend d WHERE d.objid = t.oid AND d.classid = 'pg_type'::regclass
       AND d.deptype = 'e')
UNION ALL
SELECT 'extension', '', e.extname, '' FROM pg_extension e WHERE e.extname <> 'plpgsql'
"""

#: DROP statements by kind, in an order that leaves the later ones little to do (CASCADE
#: takes what depends on an object; IF EXISTS skips what an earlier drop took with it).
_DROP_ORDER = (
    ("extension", "EXTENSION"),
    ("view", "VIEW"),
    ("materialized view", "MATERIALIZED VIEW"),
    ("foreign table", "FOREIGN TABLE"),
    ("table", "TABLE"),
    ("sequence", "SEQUENCE"),
    ("index", "INDEX"),
    ("routine", "ROUTINE"),
    ("composite type", "TYPE"),
    ("type", "TYPE"),
    ("schema", "SCHEMA"),
)

DbObject = tuple[str, str, str, str]


def _objects(conn: Connection) -> set[DbObject]:
    return {(str(a), str(b), str(c), str(d)) for a, b, c, d in conn.execute(text(_OBJECTS))}


def database_objects(url: str) -> set[DbObject]:
    """Everything in the database at ``url`` a restore could have made: schemas, relations,
    routines, types and extensions, as (kind, schema, name, arguments)."""
    with _connected(url) as conn:
        return _objects(conn)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def drop_objects_since(url: str, before: set[DbObject]) -> None:
    """Drop, in one transaction, every object in the database at ``url`` that is not in
    ``before`` (what a restore made), as the role of ``url`` (who owns what it restored).
    Raises StoreError naming what is still there when that does not bring the database back
    to ``before``: then nothing was dropped."""
    with _connected(url) as conn, conn.begin():
        made = _objects(conn) - before
        for kind, statement in _DROP_ORDER:
            for _, schema, name, args in sorted(o for o in made if o[0] == kind):
                target = (
                    _quoted(name)
                    if kind in ("extension", "schema")
                    else (f"{_quoted(schema)}.{_quoted(name)}")
                )
                if kind == "routine":
                    target += f"({args})"
                conn.execute(text(f"DROP {statement} IF EXISTS {target} CASCADE"))
        left = _objects(conn) ^ before
        if left:  # raised inside the transaction: it rolls back, nothing dropped
            shown = ", ".join(f"{k} {s}.{n}" for k, s, n, _ in sorted(left)[:10])
            raise StoreError(f"the database could not be brought back as it was: {shown}")
