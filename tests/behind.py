"""Behind the facade: a plain DB-API connection to a scorer database, SQLite file or PostgreSQL
server, the way a test (or an attacker holding the database) reaches it without the workspace.

One small surface for both: queries are written with ``?`` placeholders (translated to
psycopg's ``%s``), the connection is in autocommit mode (an explicit ``BEGIN`` opens a
transaction), and :attr:`Behind.Error` is the driver's base error class.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

APPEND_ONLY = ("audit_events", "signatures", "events")


def is_server_url(target: str | Path) -> bool:
    return str(target).startswith("postgresql")


def _sqlite_file(target: str | Path) -> Path:
    text = str(target)
    if text.startswith("sqlite:///"):
        return Path(text[len("sqlite:///") :])
    return Path(text)


def libpq_url(url: str) -> str:
    """A SQLAlchemy ``postgresql+psycopg://`` URL as libpq takes it."""
    return "postgresql://" + url.split("://", 1)[1]


class Behind:
    """An open connection behind the facade; see the module's docstring."""

    def __init__(self, target: str | Path, readonly: bool = False) -> None:
        self.target = str(target)
        self.dialect = "postgresql" if is_server_url(target) else "sqlite"
        self._con: Any
        if self.dialect == "postgresql":
            import psycopg

            self.Error: type[Exception] = psycopg.Error
            self._con = psycopg.connect(libpq_url(self.target), autocommit=True)
            if readonly:
                self._con.execute("SET default_transaction_read_only = on")
        else:
            self.Error = sqlite3.DatabaseError
            path = _sqlite_file(target)
            if readonly:
                self._con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            else:
                self._con = sqlite3.connect(path, isolation_level=None)

    def _sql(self, query: str, params: Sequence[Any]) -> str:
        if self.dialect == "sqlite":
            return query
        if params:
            query = query.replace("%", "%%")
        return query.replace("?", "%s")

    def execute(self, query: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; returns the driver's cursor (fetchone, fetchall, description,
        iteration)."""
        return self._con.execute(self._sql(query, params), tuple(params))

    def rows(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.execute(query, params).fetchall()]

    def tables(self) -> list[str]:
        if self.dialect == "sqlite":
            q = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        else:
            q = (
                "SELECT table_name FROM information_schema.tables WHERE table_schema = "
                "'public' AND table_type = 'BASE TABLE' ORDER BY table_name"
            )
        return [r[0] for r in self.rows(q)]

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, in a stable order."""
        return {t: self.rows(f'SELECT * FROM "{t}" ORDER BY 1') for t in self.tables()}

    def triggers(self, tables: Sequence[str] = APPEND_ONLY) -> list[tuple[str, str]]:
        """(trigger, table) of the triggers on ``tables``."""
        marks = ", ".join("?" for _ in tables)
        if self.dialect == "sqlite":
            q = (
                "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger' AND tbl_name "
                f"IN ({marks}) ORDER BY name"
            )
        else:
            q = (
                "SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = "
                f"t.tgrelid WHERE NOT t.tgisinternal AND c.relname IN ({marks}) ORDER BY 1"
            )
        return self.rows(q, tables)

    def drop_append_only_triggers(self) -> int:
        """Drop the triggers that keep the trail append-only, as anyone holding the database
        (the file, or the server's owner account) can; returns how many there were."""
        found = self.triggers()
        for name, table in found:
            if self.dialect == "sqlite":
                self.execute(f'DROP TRIGGER "{name}"')
            else:
                self.execute(f'DROP TRIGGER "{name}" ON "{table}"')
        return len(found)

    def close(self) -> None:
        self._con.close()


@contextmanager
def behind(target: str | Path, readonly: bool = False) -> Iterator[Behind]:
    con = Behind(target, readonly=readonly)
    try:
        yield con
    finally:
        con.close()
