"""The tamper-evident audit trail and event log: HMAC-SHA-256 chains with receipts.

Each row's MAC covers its own content and the previous row's MAC, keyed by a secret kept
outside the database, so editing, deleting, inserting or reordering rows breaks the chain, and
rewriting the whole chain needs the key. After each commit the head (table, row count, MAC) is
appended to a receipts file outside the database, so a cut tail is caught too.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import secrets
import stat
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, inspect, select
from sqlalchemy.orm import Session

from scorer.core.private_files import FOLDER_MODE, make_folder
from scorer.store.schema import AuditEvent, Event

GENESIS = "0" * 64
CHAINED = ("audit_events", "events")


class KeyError_(RuntimeError):
    """The audit key cannot be read, created or trusted."""


def group_id(group: str) -> int:
    """The numeric ID of a POSIX group, or a KeyError_ naming it."""
    import grp  # POSIX only: a shared group is a POSIX set-up

    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise KeyError_(f"there is no group {group!r} (audit_group in the config)") from None


def shared_gid(group: str | None) -> int | None:
    """The numeric ID of the workstations' group, None without one (or on Windows)."""
    return None if group is None or sys.platform == "win32" else group_id(group)


def make_audit_folder(folder: Path, group: str | None) -> None:
    """Create the folder of the key or the receipts if missing: owner-only, or with the
    workstations' group able to reach the files in it (0750, that group)."""
    gid = shared_gid(group)
    make_folder(folder, FOLDER_MODE if gid is None else 0o750, gid)


def _share(fd: int, group: str | None, mode: int) -> None:
    """Give a file just created the workstations' group and ``mode`` (the umask aside)."""
    if group is None or sys.platform == "win32":
        return
    os.fchown(fd, -1, group_id(group))
    os.fchmod(fd, mode)


def load_key(path: Path, create: bool = False, group: str | None = None) -> bytes:
    """The audit HMAC key from its file; created when ``create`` is set. The file must be
    owner-only, or, with ``group`` (a reading centre's workstations' group), readable by that
    group too: never writable by it, never readable by anyone else."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        if not create:
            raise KeyError_(
                f"the audit key file {path} is missing; without it the audit trail cannot be "
                "written or verified (restore it from backup, or set audit_key in the config)"
            ) from None
        make_audit_folder(path.parent, group)
        key = secrets.token_hex(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            _share(fh.fileno(), group, 0o640)
            fh.write(key + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return bytes.fromhex(key)
    except OSError as exc:
        raise KeyError_(f"cannot read the audit key file {path}: {exc.strerror or exc}") from exc
    if sys.platform != "win32":
        st = path.stat()
        mode = st.st_mode
        if mode & stat.S_IRWXO or (group is None and mode & stat.S_IRWXG):
            raise KeyError_(
                f"the audit key file {path} is readable by other accounts (mode "
                f"{stat.S_IMODE(mode):o}); make it owner-only: chmod 600 {path}"
                + ("" if group is None else f", or chmod 640 and chgrp {group}")
            )
        if group is not None and mode & stat.S_IRWXG:
            if mode & (stat.S_IWGRP | stat.S_IXGRP):
                raise KeyError_(
                    f"the audit key file {path} is writable by its group (mode "
                    f"{stat.S_IMODE(mode):o}): chmod 640 {path}"
                )
            if st.st_gid != group_id(group):
                raise KeyError_(
                    f"the audit key file {path} is group-readable but its group is not "
                    f"{group!r} (audit_group in the config): chgrp {group} {path}"
                )
    try:
        key_bytes = bytes.fromhex(text)
    except ValueError:
        raise KeyError_(f"the audit key file {path} is damaged (not hexadecimal)") from None
    if len(key_bytes) < 16:
        raise KeyError_(f"the audit key file {path} is damaged (too short)")
    return key_bytes


def _audit_content(r: AuditEvent) -> list[object]:
    return audit_content(
        [
            r.seq,
            r.at,
            r.username,
            r.action,
            r.entity,
            r.entity_id,
            r.old,
            r.new,
            r.reason,
            r.trial_id,
            r.session,
        ]
    )


def audit_content(values: list[object]) -> list[object]:
    """An audit row's MAC content from its columns in ``_AUDIT_COLUMNS`` order: the session
    is covered only when there is one, so every row written before revision 0011 (and every
    row written outside a log-in session) keeps the MAC it was written with."""
    if len(values) > len(_AUDIT_COLUMNS) - 1 and not values[-1]:
        return values[:-1]
    return values


def _has_session_column(session: Session) -> bool:
    columns = inspect(session.connection()).get_columns("audit_events")
    return any(c["name"] == "session" for c in columns)


def _event_content(r: Event) -> list[object]:
    return [r.seq, r.at, r.username, r.session, r.kind, r.trial_id, r.subject, r.detail]


_CANONICAL = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def compute_mac(key: bytes, prev: str, content: Sequence[object]) -> str:
    """HMAC-SHA-256 over the previous MAC and the row's content in canonical JSON."""
    body = _CANONICAL.encode(list(content))
    return hmac.digest(key, (prev + "\n" + body).encode("utf-8"), "sha256").hex()


def event_mac(key: bytes, prev: str, row: Event) -> str:
    return compute_mac(key, prev, _event_content(row))


def audit_mac(key: bytes, prev: str, row: AuditEvent) -> str:
    return compute_mac(key, prev, _audit_content(row))


@dataclass(frozen=True)
class Head:
    """The head of a chain: its table, row count (= last seq) and last MAC."""

    table: str
    seq: int
    mac: str


def head(session: Session, table: str) -> Head:
    model = AuditEvent if table == "audit_events" else Event
    row = session.execute(select(model.seq, model.mac).order_by(model.seq.desc()).limit(1)).first()
    if row is None:
        return Head(table, 0, GENESIS)
    return Head(table, int(row[0]), str(row[1]))


def head_of(conn: Connection) -> tuple[int, str]:
    """The audit trail's last seq and MAC on a plain connection (as a migration has)."""
    t = AuditEvent.__table__
    row = conn.execute(select(t.c.seq, t.c.mac).order_by(t.c.seq.desc()).limit(1)).first()
    return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))


def append_receipts(path: Path, heads: Iterable[Head], at: str, group: str | None = None) -> None:
    """Append chain heads to the receipts file (one line each, fsynced). It is only ever
    opened for appending, so it may carry the file system's append-only attribute; a new
    file is owner-only, or with ``group`` writable by the workstations' group."""
    lines = "".join(f"{h.table} {h.seq} {h.mac} {at}\n" for h in heads)
    if not lines:
        return
    make_audit_folder(path.parent, group)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    else:
        try:
            _share(fd, group, 0o660)
        except BaseException:
            os.close(fd)
            raise
    try:
        if _torn(path):
            # A process killed while it appended left a line without its end: end it, so
            # this receipt starts a line of its own (the torn one is reported as torn).
            lines = "\n" + lines
        os.write(fd, lines.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _torn(path: Path) -> bool:
    """The receipts file ends inside a line (a writer was killed mid-write)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() == 0:
                return False
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) != b"\n"
    except OSError:
        return False


_CUT_SHORT = re.compile(r"(audit_events|events) \d*( [0-9a-f]{0,63})?")


def _cut_short(line: str) -> bool:
    """The start of a receipt line and no more: a table's name or part of it, its row count,
    part of a MAC (what a process killed while appending leaves)."""
    return any(t.startswith(line) for t in CHAINED) or bool(_CUT_SHORT.fullmatch(line))


def read_receipts(path: Path) -> tuple[dict[str, list[tuple[int, str]]], list[str]]:
    """Receipts per table as (seq, mac) in file order, and problems with unreadable lines."""
    out: dict[str, list[tuple[int, str]]] = {t: [] for t in CHAINED}
    problems: list[str] = []
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return out, problems
    for i, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if (
            len(parts) < 3
            or parts[0] not in out
            or not parts[1].isdigit()
            # A line torn inside the MAC must not pass as a receipt of a shorter MAC.
            or len(parts[2]) != 64
            or parts[2].strip("0123456789abcdef")
        ):
            # A line torn by a crash mid-write is harmless; anything else is suspicious.
            if _cut_short(line):
                problems.append(
                    f"receipts line {i} is torn (a process stopped while writing it): "
                    f"{line[:60]!r}"
                )
            else:
                problems.append(f"receipts line {i} is unreadable: {line[:60]!r}")
            continue
        out[parts[0]].append((int(parts[1]), parts[2]))
    return out, problems


@dataclass
class Verification:
    """The result of verifying the chains, receipts and signatures."""

    ok: bool = True
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    heads: dict[str, Head] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    signatures: int = 0
    #: Row changes the replay of the trail applied, and where the tables differ from it
    #: (table, key, column, message).
    replayed: int = 0
    differences: list[tuple[str, str, str, str]] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.ok = False
        self.errors.append(message)


_AUDIT_COLUMNS = (
    "seq",
    "at",
    "username",
    "action",
    "entity",
    "entity_id",
    "old",
    "new",
    "reason",
    "trial_id",
    "session",
)
_EVENT_COLUMNS = ("seq", "at", "username", "session", "kind", "trial_id", "subject", "detail")


def verify_chain(
    session: Session,
    key: bytes,
    table: str,
    result: Verification,
    receipts: dict[int, str] | None = None,
    on_row: Callable[[int, str, str], None] | None = None,
) -> None:
    """Recompute a chain's MACs in order and check receipted rows against their receipts;
    report the first row that does not verify. ``on_row(seq, action, new)`` sees each audit
    row that verified (the replay of the trail)."""
    model: Any = AuditEvent if table == "audit_events" else Event
    names: tuple[str, ...] = _AUDIT_COLUMNS if table == "audit_events" else _EVENT_COLUMNS
    if table == "audit_events" and not _has_session_column(session):
        names = names[:-1]  # a trail checked before revision 0011 (its 0008 migration)
    cols = [getattr(model, n) for n in names]
    receipts = receipts or {}
    prev = GENESIS
    expected_seq = 1
    audit = table == "audit_events"
    query = select(*cols, model.mac).order_by(model.seq)
    # Core rows on the session's connection (its transaction): no ORM work per row.
    for row in session.connection().execute(query.execution_options(yield_per=5000)):
        content = list(row)
        mac = content.pop()
        if audit:
            content = audit_content(content)
        seq = content[0]
        if seq != expected_seq:
            result.fail(f"{table}: row {expected_seq} is missing or out of order (found seq {seq})")
            return
        if not hmac.compare_digest(compute_mac(key, prev, content), mac):
            result.fail(
                f"{table}: row {seq} does not verify (changed, inserted, reordered, or "
                "written without the key)"
            )
            return
        receipted = receipts.get(seq)
        if receipted is not None and not hmac.compare_digest(receipted, mac):
            result.fail(f"{table}: row {seq} differs from its receipt (chain rewritten)")
            return
        if audit and on_row is not None:
            on_row(seq, content[3], content[7])
        prev = mac
        expected_seq += 1
    result.rows[table] = expected_seq - 1
    result.heads[table] = Head(table, expected_seq - 1, prev)


def verify(
    session: Session,
    key: bytes,
    receipts_path: Path,
    on_row: Callable[[int, str, str], None] | None = None,
) -> Verification:
    """Verify both chains against each other's receipts (signatures are checked by the caller);
    ``on_row`` sees each audit row that verified, in order."""
    result = Verification()
    receipts, problems = read_receipts(receipts_path)
    result.warnings.extend(problems)
    have_file = receipts_path.exists()
    if not have_file:
        result.warnings.append(
            f"no receipts file at {receipts_path}: a cut tail cannot be detected"
        )
    for table in CHAINED:
        entries = dict(receipts[table])
        verify_chain(session, key, table, result, entries, on_row)
        if not result.ok:
            return result
        h = result.heads[table]
        if not entries:
            if h.seq and have_file:
                result.warnings.append(f"{table}: no receipt yet for its {h.seq} rows")
            continue
        last = max(entries)
        if last > h.seq:
            result.fail(
                f"{table}: the receipts record {last} rows but the database has {h.seq}: "
                f"rows {h.seq + 1} to {last} were removed"
            )
            return result
        if last < h.seq:
            model: Any = AuditEvent if table == "audit_events" else Event
            commits = session.scalar(
                select(func.count(func.distinct(model.at))).where(model.seq > last)
            )
            if commits == 1:
                result.warnings.append(
                    f"{table}: the last receipt is behind the head ({last} of {h.seq} rows), "
                    "as after a crash between a commit and its receipt"
                )
            else:
                result.warnings.append(
                    f"{table}: the last receipt is behind the head ({last} of {h.seq} rows, "
                    f"{commits} commits without a receipt): a crash leaves at most one per "
                    "workstation, and a commit being receipted as this runs one more; more "
                    "means the receipts file was cut, replaced or is another database's"
                )
    return result


def chain_head(session: Session) -> dict[str, object]:
    """The audit trail's head as exports carry it: rows and the last MAC."""
    h = head(session, "audit_events")
    return {"rows": h.seq, "mac": h.mac}
