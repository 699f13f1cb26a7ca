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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, select, text

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
        # A write transaction first takes the centre's transaction-scoped advisory lock
        # (released at commit or rollback): exclusive, so it runs alone, as every write did
        # before revision 0012; or, for an operation that works in one trial and says which
        # (Tx.bind), shared, the trial's own lock following, so trials do not wait for each
        # other and the centre's work still waits for them all. Reads take neither.
        options = conn.get_execution_options()
        if options.get("scorer_readonly", False):
            return
        if options.get("scorer_scoped", False):
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock_shared({PG_LOCKS}, 0)")
        else:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_LOCKS}, 0)")

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


#: The advisory locks' first key ("scor" in ASCII); the second is 0 for the centre, a trial's
#: ID for its chain.
PG_LOCKS = 0x73636F72

#: PostgreSQL's sequences for ``seq`` across chains (revision 0012).
ORDER_SEQUENCES = {"audit_events": "audit_events_order", "events": "events_order"}


_TX = "scorer_tx"


def bind_trial(session: Session, trial_id: int) -> None:
    """Tell the write transaction of ``session``, if it is one, that it works in trial
    ``trial_id`` (:meth:`Tx.bind`): the lookups of a trial, case or read by its code call it,
    before anything of the trial is read to be changed."""
    tx = session.info.get(_TX)
    if tx is not None:
        tx.bind(trial_id)


class ChainError(RuntimeError):
    """An operation broke the rule of the chains (a programming error, never the user's)."""


@dataclass
class Tx:
    """One open transaction: the ORM session plus audit and event appenders.

    Audit and event rows are kept until the transaction's work is done, then written into
    their chain at once (:meth:`seal`): the chain is the trial the transaction worked in
    (:meth:`bind`, or the one trial its rows name), or the centre's; their places and MACs
    follow the chain's head, read under the chain's lock, and their ``seq`` is taken after the
    transaction's last change."""

    session: Session
    key: bytes
    username: str
    _heads: dict[str, Head]
    now: str
    session_id: str = ""  # the log-in session whose operation this is ("" outside one)
    scoped: bool = False  # began with the centre's lock shared: must bind one trial
    trial_id: int | None = None  # the trial bound
    _audits: list[AuditEvent] = field(default_factory=list)
    _events: list[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.session.info[_TX] = self

    def bind(self, trial_id: int) -> None:
        """Say that this transaction works in trial ``trial_id``: its rows go into that trial's
        chain; a scoped transaction takes the trial's lock here, before it reads what it will
        change (PostgreSQL; SQLite writes one transaction at a time)."""
        if self.trial_id == trial_id:
            return
        if self.trial_id is not None:
            if not self.scoped:
                self.trial_id = -1  # more than one trial: the centre's chain
                return
            raise ChainError(
                f"a transaction working in trial {self.trial_id} went on to trial {trial_id}"
            )
        self.trial_id = trial_id
        if self.scoped and self.session.get_bind().dialect.name == "postgresql":
            if self.session.new or self.session.dirty or self.session.deleted:
                raise ChainError("a scoped transaction changed rows before binding its trial")
            self.session.execute(
                text(f"SELECT pg_advisory_xact_lock({PG_LOCKS}, :t)"), {"t": trial_id}
            )
            # What was read before the lock may have been changed by the transaction that held
            # it: read again from here on.
            self.session.expire_all()

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
        row = AuditEvent(
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
        self._audits.append(row)
        return row

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
        row = Event(
            at=self.now,
            username=self.username,
            session=session_id,
            kind=kind,
            trial_id=trial_id,
            subject=subject,
            detail=_json(detail),
        )
        self._events.append(row)
        return row

    def _chain(self) -> int:
        """The chain this transaction's rows go into."""
        if self.trial_id is not None:
            return max(self.trial_id, 0)
        named = {r.trial_id for r in self._audits} | {e.trial_id for e in self._events}
        named.discard(None)
        if self.scoped and (self._audits or self._events):
            raise ChainError("a scoped transaction wrote audit rows without binding its trial")
        return named.pop() if len(named) == 1 else 0  # type: ignore[return-value]

    def seal(self) -> None:
        """Write the transaction's changes, audit rows and events into their chain (the last
        thing before the commit)."""
        self.record_changes()
        if not (self._audits or self._events):
            return
        chain = self._chain()
        for table, rows in (("audit_events", self._audits), ("events", self._events)):
            if rows:
                self._append(table, chain, rows)
        self._audits, self._events = [], []

    def _append(self, table: str, chain: int, rows: list[Any]) -> None:
        h = head(self.session, table, chain)
        seqs = self._order(table, len(rows))
        mac_of = audit_mac if table == "audit_events" else event_mac
        place, mac = h.seq, h.mac
        for row, seq in zip(rows, seqs, strict=True):
            place += 1
            row.seq, row.chain, row.link = seq, chain, place
            if table == "audit_events" and chain and row.action == "data.rows":
                row.trial_id = chain
            row.mac = mac = mac_of(self.key, mac, row)
            self.session.add(row)
        self.session.flush()
        self._heads[h.table] = Head(h.table, place, mac)

    def _order(self, table: str, n: int) -> list[int]:
        """``n`` numbers of ``seq`` after every one taken so far."""
        model = AuditEvent if table == "audit_events" else Event
        if self.session.get_bind().dialect.name == "postgresql":
            numbers = self.session.execute(
                text(f"SELECT nextval('{ORDER_SEQUENCES[table]}') FROM generate_series(1, :n)"),
                {"n": n},
            ).scalars()
            return sorted(int(x) for x in numbers)
        last = self.session.scalar(select(func.max(model.seq))) or 0
        return list(range(last + 1, last + 1 + n))


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
        self._scoped = sessionmaker(
            self.engine.execution_options(scorer_scoped=True), expire_on_commit=False
        )
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
    def write(self, username: str, session_id: str = "", scoped: bool = False) -> Iterator[Tx]:
        """One write transaction: the change and its audit rows commit together or not at all;
        the chain heads are appended to the receipts file after the commit. ``session_id``
        names the log-in session whose operation it is (kept on its audit rows). ``scoped``:
        the work is in one trial, which it binds (:meth:`Tx.bind`) before reading what it
        changes, and runs beside other trials' work."""
        failure: OperationalError | None = None
        with (self._scoped if scoped else self._sessions)() as s:
            tx = Tx(s, self.key, username, {}, utcnow(), session_id, scoped)
            try:
                s.begin()
                yield tx
                tx.seal()
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


def audit_trail_has_rows(engine: Engine) -> bool:
    """Whether the database's audit trail holds any row (then its receipts file should exist:
    without it a cut tail of the trail is not detected)."""
    with engine.connect() as c:
        return c.execute(select(AuditEvent.seq).limit(1)).first() is not None
