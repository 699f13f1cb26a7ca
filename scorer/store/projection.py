"""The audit trail as the record, the tables as its projection.

Every row a write transaction inserts, updates or deletes in a projected table is captured as
the unit of work flushes it and written to the audit trail in the same transaction, as
``data.rows`` audit rows (see :func:`audit_changes`). Replaying the trail from its first row
rebuilds every projected table; :func:`replay_and_compare` compares that state with the
tables and names each difference by table, key and column. Identifying values (real IDs, real
dates, the readers' file names, password hashes) enter the trail only as HMAC digests, so no
export of the trail carries them.

A database made before the trail carried rows gets a baseline once: the ``0008`` migration
writes every projected row as ``data.baseline`` audit rows (:func:`write_baseline`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, event, inspect, select
from sqlalchemy.orm import Mapper, Session, object_session
from sqlalchemy.orm.attributes import get_history

from scorer.store.audit import compute_mac, head_of
from scorer.store.schema import AuditEvent, Base

#: Tables kept out of the projection, and why.
EXEMPT: dict[str, str] = {
    "audit_events": "the audit trail itself (its own HMAC chain and receipts)",
    "events": "the event log: log-ins, sessions, cases opened, films viewed (its own HMAC "
    "chain and receipts)",
    "alembic_version": "the schema revision, checked each time the database is opened",
    "server_sessions": "log-in sessions: their tokens' hashes and activity (the event log "
    "records log-ins and log-outs)",
    "server_login_attempts": "the server's log-in rate limit: recent attempts by account and "
    "address (a failed log-in is in the audit trail, a successful one in the event log)",
}

#: Columns of projected tables kept out of the projection, and why.
EXEMPT_COLUMNS: dict[tuple[str, str], str] = {
    ("users", "failed_logins"): "the lockout counter (a failed log-in is in the event log)",
    ("users", "locked_until"): "the lockout counter (a lockout is in the event log)",
}

#: Columns whose values enter the trail only as HMAC digests: password hashes, real IDs, real
#: dates, and what might name a patient (DICOM UIDs, the files images came from).
DIGESTED: frozenset[tuple[str, str]] = frozenset(
    {
        ("users", "password_hash"),
        ("password_history", "password_hash"),
        ("patients", "real_id"),
        ("reads", "visit_date"),
        ("images", "acquisition_date"),
        ("images", "sop_instance_uid"),
        ("images", "original_path"),
        ("images", "source_name"),
    }
)

#: Audit rows of a change's rows hold at most this many rows each.
CHUNK = 500

DATA_ACTIONS = ("data.rows", "data.baseline")


def projected_tables() -> dict[str, Table]:
    """Every table of the schema not exempt, by name."""
    return {name: t for name, t in Base.metadata.tables.items() if name not in EXEMPT}


def _columns(table: Table) -> list[str]:
    return [c.name for c in table.columns if (table.name, c.name) not in EXEMPT_COLUMNS]


def digest(key: bytes, table: str, column: str, value: object) -> str | None:
    """The HMAC digest a digested column's value is kept as in the trail."""
    if value is None:
        return None
    body = f"{table}.{column}\n{value}".encode()
    return "hmac:" + hmac.new(key, body, hashlib.sha256).hexdigest()


_PLAIN = frozenset({type(None), bool, int, float, str})


def _plain(value: object) -> object:
    """A column value as JSON keeps it (bool, int, float, str or None)."""
    if type(value) in _PLAIN or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def row_values(key: bytes, table: str, values: dict[str, object]) -> dict[str, object]:
    """A row's values as the trail keeps them: exempt columns left out, digested ones
    digested."""
    out: dict[str, object] = {}
    for column, value in values.items():
        if (table, column) in EXEMPT_COLUMNS:
            continue
        if (table, column) in DIGESTED:
            out[column] = digest(key, table, column, value)
        else:
            out[column] = _plain(value)
    return out


# --- capture ---------------------------------------------------------------------------------

_CHANGES = "scorer_changes"


def _record(target: Any, change: list[object]) -> None:
    session = object_session(target)
    if session is not None:
        session.info.setdefault(_CHANGES, []).append(change)


def _name(mapper: Mapper[Any]) -> str:
    return str(mapper.persist_selectable.description)


def _pk(mapper: Mapper[Any], target: Any) -> list[object]:
    return [_plain(v) for v in mapper.primary_key_from_instance(target)]


def _after_insert(mapper: Mapper[Any], _conn: Connection, target: Any) -> None:
    table = _name(mapper)
    if table in EXEMPT:
        return
    values = {
        col.key: getattr(target, prop.key)
        for prop in mapper.column_attrs
        for col in prop.columns
    }
    _record(target, [table, "i", _pk(mapper, target), values])


def _after_update(mapper: Mapper[Any], _conn: Connection, target: Any) -> None:
    table = _name(mapper)
    if table in EXEMPT:
        return
    version = mapper.version_id_col
    values: dict[str, object] = {}
    for prop in mapper.column_attrs:
        col = prop.columns[0]
        if col is version or get_history(target, prop.key).added:
            values[col.key] = getattr(target, prop.key)
    if values:
        _record(target, [table, "u", _pk(mapper, target), values])


def _after_delete(mapper: Mapper[Any], _conn: Connection, target: Any) -> None:
    table = _name(mapper)
    if table in EXEMPT:
        return
    _record(target, [table, "d", _pk(mapper, target), None])


def _no_bulk_writes(state: Any) -> None:
    """ORM bulk INSERT, UPDATE and DELETE statements bypass the unit of work, so their rows
    would never reach the trail: refused on projected tables (write through objects)."""
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    mapper = state.bind_mapper
    if mapper is not None and _name(mapper) not in EXEMPT:
        raise RuntimeError(
            f"a bulk write to {_name(mapper)} would bypass the audit trail: change its rows "
            "as objects of the session"
        )


event.listen(Session, "do_orm_execute", _no_bulk_writes)
event.listen(Base, "after_insert", _after_insert, propagate=True)
event.listen(Base, "after_update", _after_update, propagate=True)
event.listen(Base, "after_delete", _after_delete, propagate=True)


def take_changes(session: Session, key: bytes) -> list[list[object]]:
    """The rows the session has written since the last call, as the trail keeps them
    (flushes first)."""
    session.flush()
    raw: list[list[Any]] = session.info.pop(_CHANGES, [])
    out: list[list[object]] = []
    for table, op, pk, values in raw:
        out.append([table, op, pk, None if values is None else row_values(key, table, values)])
    return out


def chunks(changes: list[list[object]]) -> Iterator[list[list[object]]]:
    for i in range(0, len(changes), CHUNK):
        yield changes[i : i + CHUNK]


def encode(changes: list[list[object]]) -> str:
    return json.dumps(
        {"rows": changes}, sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )


def summary(text: str) -> str:
    """What a ``data.*`` audit row holds, for a person: rows per table and kind."""
    try:
        rows = json.loads(text).get("rows", [])
    except (json.JSONDecodeError, AttributeError):
        return text[:80]
    counts: dict[str, int] = {}
    words = {"i": "inserted", "u": "updated", "d": "deleted"}
    for table, op, *_ in rows:
        label = f"{table} {words.get(op, op)}"
        counts[label] = counts.get(label, 0) + 1
    return "; ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no rows"


# --- baseline --------------------------------------------------------------------------------


def baseline_changes(conn: Connection, key: bytes) -> Iterator[list[object]]:
    """Every projected row of a database, as trail inserts, table by table in key order.

    Tables and columns a later revision creates are not there yet when the ``0008``
    migration runs: they have no rows to take in, and every value they get later is audited
    as it is written (a column added later is NULL on the rows before it, which is what the
    replay takes a value the trail never named for)."""
    schema = inspect(conn)
    present = set(schema.get_table_names())
    for name, table in sorted(projected_tables().items()):
        if name not in present:
            continue
        there = {c["name"] for c in schema.get_columns(name)}
        cols = [c for c in _columns(table) if c in there]
        pk = [c.name for c in table.primary_key.columns]
        query = select(*(table.c[c] for c in [c.name for c in table.columns] if c in there))
        for row in conn.execute(query.order_by(*table.primary_key.columns)):
            values = dict(row._mapping)
            yield [
                name,
                "i",
                [_plain(values[c]) for c in pk],
                row_values(key, name, {c: values[c] for c in cols}),
            ]


def write_baseline(
    conn: Connection, key: bytes, append: Callable[[str, str, str], None]
) -> int:
    """Write the baseline of a database into the trail through ``append(action, entity_id,
    new)``: at least one ``data.baseline`` row (the first says ``"start": true``), so a
    database with no rows has its baseline too. Returns the rows written into the trail."""
    batch: list[list[object]] = []
    total = 0
    first = True
    for change in baseline_changes(conn, key):
        batch.append(change)
        if len(batch) == CHUNK:
            append("data.baseline", str(total), _baseline_text(batch, first))
            first = False
            total += len(batch)
            batch = []
    if batch or first:
        append("data.baseline", str(total), _baseline_text(batch, first))
        total += len(batch)
    return total


def baseline_into_trail(conn: Connection, key: bytes) -> int:
    """Write a database's baseline into its audit trail (the ``0008`` migration), chained
    after the trail's head like any audit row; returns the rows of the baseline."""
    table = Base.metadata.tables[AuditEvent.__tablename__]
    seq, mac = head_of(conn)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # the store's one format

    def append(action: str, entity_id: str, new: str) -> None:
        nonlocal seq, mac
        seq += 1
        content: list[object] = [
            seq, now, "system", action, "database", entity_id, "", new, "", None
        ]
        mac = compute_mac(key, mac, content)
        conn.execute(
            table.insert().values(
                seq=seq,
                at=now,
                username="system",
                action=action,
                entity="database",
                entity_id=entity_id,
                old="",
                new=new,
                reason="",
                trial_id=None,
                mac=mac,
            )
        )

    return write_baseline(conn, key, append)


def _baseline_text(rows: list[list[object]], start: bool) -> str:
    body: dict[str, object] = {"rows": rows}
    if start:
        body["start"] = True
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


# --- replay ----------------------------------------------------------------------------------


def _key_part(v: object) -> str:
    if type(v) is int:
        return str(v)
    if type(v) is str and v.isascii() and v.isalnum():
        return '"' + v + '"'  # what JSON makes of it, without the encoder's cost
    return json.dumps(v, ensure_ascii=False)


def key_text(pk: list[object]) -> str:
    """A primary key as the trail's JSON list, e.g. ``[3]`` or ``[12,"LH","MCP1","ERO"]``."""
    return "[" + ",".join(map(_key_part, pk)) + "]"


@dataclass(frozen=True)
class Difference:
    """One way a table differs from what the trail rebuilds."""

    table: str
    key: str
    column: str
    message: str

    def __str__(self) -> str:
        where = " ".join(p for p in (self.table, self.key) if p)
        where += f" column {self.column}" if self.column else ""
        return f"{where}: {self.message}"


class _State:
    """The rebuilt rows, (table, key) → values; in memory up to ``limit`` rows, the rest in a
    temporary SQLite file, so memory stays bounded whatever the database's size."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.cache: dict[tuple[str, str], dict[str, object] | None] = {}
        #: The keys of the rows on disk (keys only: the values are what takes the room), so a
        #: row never spilled is known absent without asking the disk.
        self.on_disk: set[tuple[str, str]] = set()
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._db: sqlite3.Connection | None = None

    def _disk(self) -> sqlite3.Connection:
        if self._db is None:
            self._dir = tempfile.TemporaryDirectory(prefix="scorer-replay-")
            self._db = sqlite3.connect(Path(self._dir.name) / "state.db")
            self._db.execute("PRAGMA journal_mode=OFF")
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.execute(
                "CREATE TABLE s (t TEXT, k TEXT, v TEXT, PRIMARY KEY (t, k)) WITHOUT ROWID"
            )
        return self._db

    def get(self, table: str, key: str) -> dict[str, object] | None:
        if (table, key) in self.cache:
            return self.cache[(table, key)]
        if self._db is None or (table, key) not in self.on_disk:
            return None
        row = self._db.execute("SELECT v FROM s WHERE t = ? AND k = ?", (table, key)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def put(self, table: str, key: str, values: dict[str, object] | None) -> None:
        self.cache[(table, key)] = values
        if len(self.cache) > self.limit:
            self.spill()

    def clear(self) -> None:
        self.cache.clear()
        self.on_disk.clear()
        if self._db is not None:
            self._db.execute("DELETE FROM s")

    def spill(self) -> None:
        db = self._disk()
        encode = json.JSONEncoder(ensure_ascii=False).encode
        live = [(t, k, encode(v)) for (t, k), v in self.cache.items() if v is not None]
        gone = [(t, k) for (t, k), v in self.cache.items() if v is None]
        db.executemany("INSERT OR REPLACE INTO s VALUES (?, ?, ?)", live)
        db.executemany("DELETE FROM s WHERE t = ? AND k = ?", gone)
        db.commit()
        self.on_disk.update((t, k) for t, k, _v in live)
        self.on_disk.difference_update(gone)
        self.cache.clear()

    def take(self, table: str, keys: list[str]) -> list[dict[str, object] | None]:
        """The rebuilt rows of ``keys``, removed from the state (so what is left at the end
        is what the tables lack)."""
        if self._db is None:
            return [self.cache.pop((table, k), None) for k in keys]
        wanted = [k for k in keys if (table, k) in self.on_disk]
        found: dict[str, dict[str, object]] = {}
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            marks = ",".join("?" * len(part))
            for k, v in self._db.execute(
                f"SELECT k, v FROM s WHERE t = ? AND k IN ({marks})", (table, *part)
            ):
                found[k] = json.loads(v)
            self._db.execute(f"DELETE FROM s WHERE t = ? AND k IN ({marks})", (table, *part))
        self.on_disk.difference_update((table, k) for k in wanted)
        return [found.get(k) for k in keys]

    def left(self, table: str) -> Iterator[str]:
        if self._db is None:
            yield from sorted(k for (t, k), v in self.cache.items() if t == table and v is not None)
            return
        for (k,) in self._db.execute("SELECT k FROM s WHERE t = ? ORDER BY k", (table,)):
            yield str(k)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
        if self._dir is not None:
            self._dir.cleanup()


class Replay:
    """Applies the trail's ``data.*`` rows in order, noting where the trail contradicts
    itself (a row inserted twice, a row updated or deleted that it never inserted)."""

    def __init__(self, limit: int = 50_000) -> None:
        self.state = _State(limit)
        self.differences: list[Difference] = []
        self.baseline_seq: int | None = None
        self.rows = 0

    def apply(self, seq: int, action: str, new: str) -> None:
        body = json.loads(new)
        if action == "data.baseline" and body.get("start"):
            self.state.clear()
            self.baseline_seq = seq
        state = self.state
        for table, op, pk, values in body["rows"]:
            self.rows += 1
            key = key_text(pk)
            if op == "i":
                if state.get(table, key) is not None:
                    self._trail(table, key, seq, "inserts a row that already exists")
                state.put(table, key, values)
            elif op == "u":
                before = state.get(table, key)
                if before is None:
                    self._trail(table, key, seq, "updates a row it never inserted")
                    continue
                merged = dict(before)
                merged.update(values)
                state.put(table, key, merged)
            else:
                if state.get(table, key) is None:
                    self._trail(table, key, seq, "deletes a row it never inserted")
                state.put(table, key, None)

    def close(self) -> None:
        self.state.close()

    def _trail(self, table: str, key: str, seq: int, what: str) -> None:
        self.differences.append(Difference(table, key, "", f"audit row {seq} {what}"))

    def compare(
        self, db: Session, key: bytes, limit: int = 1000
    ) -> list[Difference]:
        """Every difference between the rebuilt state and the tables (at most ``limit``
        reported in full; the count of the rest in a last entry)."""
        out = list(self.differences)
        extra = 0

        def note(d: Difference) -> None:
            nonlocal extra
            if len(out) < limit:
                out.append(d)
            else:
                extra += 1

        if self.state._db is not None:
            self.state.spill()  # all on disk, so take() finds every row in one place
        schema = inspect(db.connection())
        present = set(schema.get_table_names())
        for name, table in sorted(projected_tables().items()):
            cols = _columns(table)
            pk = [c.name for c in table.primary_key.columns]
            if name not in present:
                note(Difference(name, "", "", "the table is missing from the database"))
                continue
            have_cols = {c["name"] for c in schema.get_columns(name)}
            lost = [c.name for c in table.columns if c.name not in have_cols]
            if lost:
                for column in lost:
                    note(Difference(name, "", column, "the column is missing from the table"))
                continue
            query = select(table).order_by(*table.primary_key.columns)
            result = db.connection().execute(query.execution_options(yield_per=2000))
            for part in result.partitions():
                batch = []
                for row in part:
                    values = row._mapping
                    k = key_text([_plain(values[c]) for c in pk])
                    batch.append((k, row_values(key, name, {c: values[c] for c in cols})))
                wants = self.state.take(name, [k for k, _have in batch])
                for (k, have), want in zip(batch, wants, strict=True):
                    if want is None:
                        note(Difference(name, k, "", "is in the table but not in the audit trail"))
                    elif want != have:  # the rare case: which columns, and how
                        for column in cols:
                            if not _same(want.get(column), have[column]):
                                message = _differs(name, column, want, have)
                                note(Difference(name, k, column, message))
            for k in self.state.left(name):
                note(Difference(name, k, "", "is in the audit trail but not in the table"))
        if extra:
            out.append(Difference("", "", "", f"and {extra} more differences"))
        return out


def _same(a: object, b: object) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (a == b and type(a) is type(b))
    return a == b


def _differs(table: str, column: str, want: dict[str, object], have: dict[str, object]) -> str:
    if (table, column) in DIGESTED:
        return "differs from the audit trail (an identifying value: not shown)"
    return f"the audit trail says {want.get(column)!r}, the table {have[column]!r}"
