"""Opening the database and running each change as one transaction with its audit rows.

SQLite runs in WAL mode with ``synchronous=FULL``, foreign keys on and a busy timeout; every
write transaction starts with ``BEGIN IMMEDIATE`` so two writers queue instead of failing
half-way. The audit and event rows of a change are appended inside the same transaction, and
the chain heads go to the receipts file after the commit returns.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import sqlite3
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text

# OperationalError and SQLAlchemyError are re-exported: the services catch them.
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import OperationalError as OperationalError
from sqlalchemy.exc import SQLAlchemyError as SQLAlchemyError

# Session is re-exported: the services type a transaction with it.
from sqlalchemy.orm import Session as Session
from sqlalchemy.orm import sessionmaker

from scorer.core.private_files import FILE_MODE, FOLDER_MODE, create_file, make_folder, set_mode
from scorer.store.audit import (
    Head,
    append_receipts,
    audit_mac,
    event_mac,
    head,
    load_key,
    shared_gid,
)
from scorer.store.location import Location, display_url, refuse_network_filesystem
from scorer.store.projection import chunks, encode, take_changes
from scorer.store.schema import AuditEvent, Event

BUSY_TIMEOUT_MS = 10_000


class StoreError(RuntimeError):
    """The database cannot be opened or written, with a message for the person at the desk."""


def utcnow() -> str:
    """Now in UTC, ISO 8601 with microseconds and a Z: the one timestamp format stored."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def make_engine(url: str, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Engine:
    """An engine with the durability settings of this store."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"timeout": busy_timeout_ms / 1000, "isolation_level": None},
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            files = [str(row[2]) for row in cur.execute("PRAGMA database_list") if row[2]]
            cur.close()
            for name in files:
                _match_wal_files(Path(name))

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # A write takes the write lock at its start, so it never fails half-way on a lock;
            # a read-only session begins deferred and never blocks writers (WAL).
            readonly = conn.get_execution_options().get("scorer_readonly", False)
            conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine
    # A writer waits at most the busy timeout for another's lock, then fails with a message.
    engine = create_engine(
        url,
        pool_pre_ping=True,
        connect_args={"options": f"-c lock_timeout={int(busy_timeout_ms)}"},
    )

    @event.listens_for(engine, "begin")
    def _on_pg_begin(conn: Any) -> None:
        # Every write transaction first takes one transaction-scoped advisory lock, so the
        # audit and event chains are appended by one workstation at a time and stay linear
        # (the lock is released at commit or rollback). Reads never take it.
        if not conn.get_execution_options().get("scorer_readonly", False):
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_WRITE_LOCK})")

    return engine


def _match_wal_files(path: Path) -> None:
    """Give the WAL and shared-memory files this process made beside an SQLite file the
    database's own group and mode. SQLite copies the mode, but a process not running as root
    creates them in its own group, which would lock out a reading centre's other accounts."""
    if sys.platform == "win32":
        return
    try:
        db = path.stat()
    except OSError:
        return
    for side in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(OSError):  # gone meanwhile, or not ours: SQLite's to judge
            st = side.stat()
            if st.st_uid == os.geteuid() and (
                st.st_gid != db.st_gid or stat.S_IMODE(st.st_mode) != stat.S_IMODE(db.st_mode)
            ):
                set_mode(side, stat.S_IMODE(db.st_mode), db.st_gid)


def create_database_file(location: Location) -> None:
    """Create a new SQLite file, and its folder if missing, before SQLite does, so that it is
    owner-only from the start (0600; folder 0700) whatever the umask; with the site config's
    ``audit_group`` the file is that group's to read and write (0660) and a new folder lets the
    group create the WAL files in it (2770: they take the folder's group)."""
    path = location.sqlite_path
    if path is None or path.exists():
        return
    gid = shared_gid(location.audit_group)
    try:
        make_folder(path.parent, FOLDER_MODE if gid is None else 0o2770, gid)
        with contextlib.suppress(FileExistsError):
            os.close(create_file(path, FILE_MODE if gid is None else 0o660, gid, exclusive=True))
    except OSError as exc:
        raise StoreError(
            f"cannot create the database file {path}: {exc.strerror or exc}"
            + (f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else "")
        ) from exc


#: The advisory-lock key every PostgreSQL write transaction holds ("scorer" in ASCII).
PG_WRITE_LOCK = 0x73636F726572


@dataclass
class Tx:
    """One open transaction: the ORM session plus audit and event appenders."""

    session: Session
    key: bytes
    username: str
    _heads: dict[str, Head]
    now: str
    session_id: str = ""  # the log-in session whose operation this is ("" outside one)

    def _next(self, table: str) -> Head:
        h = self._heads.get(table)
        if h is None:
            h = head(self.session, table)
        return h

    def audit(
        self,
        action: str,
        entity: str,
        entity_id: object,
        old: Any = None,
        new: Any = None,
        reason: str = "",
        trial_id: int | None = None,
    ) -> AuditEvent:
        """Append an audit row (who, when, what, old, new, why) to the chain."""
        h = self._next("audit_events")
        row = AuditEvent(
            seq=h.seq + 1,
            at=self.now,
            username=self.username,
            action=action,
            entity=entity,
            entity_id=str(entity_id),
            old=_json(old),
            new=_json(new),
            reason=reason or "",
            trial_id=trial_id,
            session=self.session_id,
        )
        row.mac = audit_mac(self.key, h.mac, row)
        self.session.add(row)
        self._heads["audit_events"] = Head("audit_events", row.seq, row.mac)
        return row

    def audit_rows(self) -> int:
        """The audit trail's row count, this transaction's rows included."""
        return self._next("audit_events").seq

    def record_changes(self) -> None:
        """Write the rows this transaction changed into the audit trail (``data.rows``): the
        trail is the record, the tables its projection (see scorer.store.projection)."""
        changes = take_changes(self.session, self.key)
        for part in chunks(changes):
            self.audit("data.rows", "transaction", len(part), new=encode(part))

    def event(
        self,
        kind: str,
        subject: str = "",
        detail: Any = None,
        session_id: str = "",
        trial_id: int | None = None,
    ) -> Event:
        """Append an event-log row (logins, cases opened, images viewed, exports)."""
        h = self._next("events")
        row = Event(
            seq=h.seq + 1,
            at=self.now,
            username=self.username,
            session=session_id,
            kind=kind,
            trial_id=trial_id,
            subject=subject,
            detail=_json(detail),
        )
        row.mac = event_mac(self.key, h.mac, row)
        self.session.add(row)
        self._heads["events"] = Head("events", row.seq, row.mac)
        return row


class Store:
    """The open database of one workstation: engine, audit key and receipts."""

    def __init__(self, location: Location, create_key: bool = False) -> None:
        self.location = location
        path = location.sqlite_path
        if path is not None:
            refuse_network_filesystem(path)
            if create_key:  # a new database
                create_database_file(location)
        self.key = load_key(location.key_path, create=create_key, group=location.audit_group)
        self.engine = make_engine(location.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._readers = sessionmaker(
            self.engine.execution_options(scorer_readonly=True), expire_on_commit=False
        )

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session (no audit rows, nothing committed)."""
        with self._readers() as s:
            try:
                yield s
            finally:
                s.rollback()

    @contextmanager
    def write(self, username: str, session_id: str = "") -> Iterator[Tx]:
        """One write transaction: the change and its audit rows commit together or not at all;
        the chain heads are appended to the receipts file after the commit. ``session_id``
        names the log-in session whose operation it is (kept on its audit rows)."""
        failure: OperationalError | None = None
        with self._sessions() as s:
            tx = Tx(s, self.key, username, {}, utcnow(), session_id)
            try:
                s.begin()
                yield tx
                tx.record_changes()
                s.commit()
            except OperationalError as exc:
                s.rollback()
                failure = exc
            except BaseException:
                s.rollback()
                raise
        if failure is not None:
            message = describe_operational_error(failure, self.location.sqlite_path)
            if not _is_lock_error(failure):
                # After an I/O error or a read-only disk the open connections are not to be
                # trusted (and they pin the volume): close them, so the next attempt opens the
                # database afresh once the disk is repaired or writable again.
                self.engine.dispose()
            raise StoreError(message) from failure
        heads = [h for h in tx._heads.values()]
        if heads:
            # If this fails the commit stands and the receipt is one step behind, which
            # verification reports and accepts; the next commit brings it up to date.
            with contextlib.suppress(OSError):
                append_receipts(
                    self.location.receipts_path, heads, tx.now, self.location.audit_group
                )


def _is_lock_error(exc: OperationalError) -> bool:
    low = str(exc.orig if exc.orig is not None else exc).lower()
    return "locked" in low or "busy" in low or "lock timeout" in low


def describe_operational_error(exc: OperationalError, path: Path | None = None) -> str:
    """A message for the person at the desk; ``path`` (the SQLite file) lets an I/O error be
    told apart: a volume the system has turned read-only, a full disk, or a failing one."""
    msg = str(exc.orig) if exc.orig is not None else str(exc)
    low = msg.lower()
    if _is_lock_error(exc):
        return (
            "the database is busy: another program has held it locked for longer than the "
            f"{BUSY_TIMEOUT_MS // 1000} s wait. Nothing was saved; try again."
        )
    readonly_volume, full = _volume_state(path)
    if "readonly" in low or "read-only" in low or readonly_volume:
        where = f" ({path.parent})" if path is not None else ""
        return (
            f"the database is read-only: the disk or folder holding it{where} cannot be written "
            "now. Nothing was saved. When it is writable again, try again."
        )
    if "disk" in low and ("full" in low or "i/o" in low):
        if full or "full" in low:
            return "the disk is full or failing: nothing was saved. Free space and try again."
        return (
            "the disk holding the database reported an error (disk I/O error): nothing was "
            "saved. Have the disk checked, then try again."
        )
    return f"the database refused the change: {msg}. Nothing was saved."


def _volume_state(path: Path | None) -> tuple[bool, bool]:
    """(read-only, full) for the folder holding ``path``, found by trying to create a small
    file there (the kernel's answer is the truth: a volume it turned read-only after an
    error, a folder without write permission, no space); (False, False) when unknown."""
    if path is None:
        return False, False
    probe = path.parent / f".scorer-probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        return exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM), exc.errno == errno.ENOSPC
    try:
        os.write(fd, b"\0" * 4096)
        full = False
    except OSError as exc:
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
    finally:
        os.close(fd)
        probe.unlink(missing_ok=True)
    return False, full


def database_exists(location: Location) -> bool:
    """Whether a scorer database is at ``location`` (an SQLite file with content, a server
    database with scorer's tables). A server that cannot be reached, or refuses the log-in,
    or has no such database raises StoreError saying which (the password never shown)."""
    path = location.sqlite_path
    if path is not None:
        return path.exists() and path.stat().st_size > 0
    eng = make_engine(location.url)
    try:
        with eng.connect() as c:
            return bool(
                c.execute(
                    text(
                        "SELECT 1 FROM information_schema.tables WHERE table_name = "
                        "'alembic_version'"
                    )
                ).first()
            )
    except DBAPIError as exc:
        raise StoreError(describe_connection_error(exc, location.url)) from None
    finally:
        eng.dispose()


def describe_connection_error(exc: BaseException, url: str) -> str:
    """Why a database server could not be used, for the person at the desk: not reachable,
    the log-in refused, no such database; the URL shown with its password masked."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    shown = display_url(url)
    orig = getattr(exc, "orig", None) or exc
    state = getattr(orig, "sqlstate", None)
    detail = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    if parsed.password:
        detail = detail.replace(parsed.password, "***")
    low = str(orig).lower()
    if state == "3D000" or re.search(r'database ".*" does not exist', low):
        return (
            f"no database {parsed.database!r} on the server at {shown}: create it first "
            "(createdb), or check the name"
        )
    if (
        state in ("28P01", "28000")
        or "authentication failed" in low
        or "pg_hba.conf" in low
        or re.search(r'role ".*" does not exist', low)
    ):
        reason = re.sub(r"^(.*failed:)?\s*(FATAL:)?\s*", "", detail)
        return f"the database server refused the log-in for user {parsed.username}: {reason}"
    if "connection refused" in low:
        return f"cannot connect to the database server at {shown}: connection refused"
    if "translate host name" in low or "name or service not known" in low:
        return f"cannot connect to the database server at {shown}: unknown host {parsed.host!r}"
    if "timeout" in low or "timed out" in low:
        return f"cannot connect to the database server at {shown}: no answer (timed out)"
    return f"cannot use the database server at {shown}: {detail}"


def integrity_check(engine: Engine) -> str:
    with engine.connect() as c:
        return str(c.exec_driver_sql("PRAGMA integrity_check").scalar())
