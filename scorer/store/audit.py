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
            r.chain,
            r.link,
        ]
    )


def audit_content(values: list[object]) -> list[object]:
    """An audit row's MAC content from its columns in ``_AUDIT_COLUMNS`` order (fewer on a
    trail checked before revision 0011 or 0012): the session is covered only when there is
    one, and the chain and place in it only when the row has a place (``link``), so every row
    written before those revisions keeps the MAC it was written with, and a row moved to
    another chain or place, or made to look older, does not verify."""
    base = values[:10]
    session = values[10] if len(values) > 10 else ""
    link = values[12] if len(values) > 12 else None
    if link is not None:
        return [*base, session, values[11], link]
    return [*base, session] if session else base


def _has_column(session: Session, table: str, name: str) -> bool:
    columns = inspect(session.connection()).get_columns(table)
    return any(c["name"] == name for c in columns)


def event_content(values: list[object]) -> list[object]:
    """An event row's MAC content from its columns in ``_EVENT_COLUMNS`` order: the chain
    and place covered when the row has a place (revision 0012 on)."""
    link = values[9] if len(values) > 9 else None
    return list(values[:8]) if link is None else [*values[:8], values[8], link]


def _event_content(r: Event) -> list[object]:
    return event_content(
        [
            r.seq,
            r.at,
            r.username,
            r.session,
            r.kind,
            r.trial_id,
            r.subject,
            r.detail,
            r.chain,
            r.link,
        ]
    )


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
    """The head of a chain: its name (``audit_events``, ``events``: the centre's chains;
    ``audit_events/7``: trial 7's), its row count (= its last row's place) and last MAC."""

    table: str
    seq: int
    mac: str


def chain_name(table: str, chain: int) -> str:
    """The name a chain goes by in receipts, heads and messages."""
    return table if not chain else f"{table}/{chain}"


def split_chain_name(name: str) -> tuple[str, int] | None:
    """(table, chain) from a chain's name; None for anything else."""
    table, _, number = name.partition("/")
    if table not in CHAINED:
        return None
    if not number:
        return table, 0
    if not number.isdigit() or number.startswith("0"):
        return None
    return table, int(number)


def _model(table: str) -> Any:
    return AuditEvent if table == "audit_events" else Event


def head(session: Session, table: str, chain: int = 0) -> Head:
    """A chain's head in the transaction of ``session``."""
    model = _model(table)
    row = session.execute(
        select(model.link, model.mac)
        .where(model.chain == chain, model.link.is_not(None))
        .order_by(model.link.desc())
        .limit(1)
    ).first()
    if row is None and chain == 0:
        # The centre chain before its first row of revision 0012: its place is its seq.
        row = session.execute(
            select(model.seq, model.mac)
            .where(model.link.is_(None))
            .order_by(model.seq.desc())
            .limit(1)
        ).first()
    name = chain_name(table, chain)
    return Head(name, 0, GENESIS) if row is None else Head(name, int(row[0]), str(row[1]))


def heads(session: Session, table: str) -> list[Head]:
    """Every chain's head of ``table``, the centre's first, then by trial."""
    model = _model(table)
    chains = sorted(session.scalars(select(model.chain).distinct()))
    return [head(session, table, c) for c in chains] or [head(session, table, 0)]


def chain_heads_query(table: str, has_link: bool) -> str:
    """The SQL giving (chain, rows, MAC) of every chain's head of ``table``; ``has_link``:
    the table has revision 0012's columns (before it, one chain whose places are seqs)."""
    if not has_link:
        return f"SELECT 0, seq, mac FROM {table} ORDER BY seq DESC LIMIT 1"
    # A chain's last row is its highest seq.
    return (
        f"SELECT t.chain, coalesce(t.link, t.seq), t.mac FROM {table} t JOIN "
        f"(SELECT chain, max(seq) AS last FROM {table} GROUP BY chain) h ON t.seq = h.last"
    )


def named_heads(table: str, rows: Iterable[Sequence[Any]]) -> dict[str, dict[str, object]]:
    """The result of :func:`chain_heads_query` by chain name (the centre's always named), as
    a backup records them: rows and MAC."""
    out: dict[str, dict[str, object]] = {
        chain_name(table, int(c)): {"rows": int(n), "mac": str(m)} for c, n, m in rows
    }
    out.setdefault(table, {"rows": 0, "mac": ""})
    return dict(sorted(out.items()))


def chain_heads_of(conn: Connection, table: str) -> dict[str, dict[str, object]]:
    """Every chain's head of ``table`` on a plain connection (a backup's snapshot)."""
    has_link = any(c["name"] == "link" for c in inspect(conn).get_columns(table))
    return named_heads(table, conn.exec_driver_sql(chain_heads_query(table, has_link)))


def head_of(conn: Connection) -> tuple[int, str]:
    """The audit trail's last seq and MAC on a plain connection (as a migration before
    revision 0012 has: one chain)."""
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
        # Writers append one at a time (several workstations' processes, or server
        # instances): the check for a torn last line must not see another's append half done.
        _lock(fd)
        if _torn(path):
            # A process killed while it appended left a line without its end: end it, so
            # this receipt starts a line of its own (the torn one is reported as torn).
            lines = "\n" + lines
        os.write(fd, lines.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)  # releases the lock


def _lock(fd: int) -> None:
    """An exclusive lock on the open receipts file until it is closed (POSIX; elsewhere the
    torn-line check may, rarely, end another writer's line early: a warning, not an error)."""
    if sys.platform != "win32":
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)


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


_CUT_SHORT = re.compile(r"(audit_events|events)(/\d*)?( \d*( [0-9a-f]{0,63})?)?")


def _cut_short(line: str) -> bool:
    """The start of a receipt line and no more: a chain's name or part of it, its row count,
    part of a MAC (what a process killed while appending leaves)."""
    return any(t.startswith(line) for t in CHAINED) or bool(_CUT_SHORT.fullmatch(line))


def read_receipts(path: Path) -> tuple[dict[str, list[tuple[int, str]]], list[str]]:
    """Receipts per chain (by name: ``audit_events``, ``audit_events/7``, ...) as (row count,
    MAC) in file order, and problems with unreadable lines."""
    out: dict[str, list[tuple[int, str]]] = {t: [] for t in CHAINED}
    problems: list[str] = []
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return out, problems
    for i, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if parts and parts[0] not in out and split_chain_name(parts[0]) is not None:
            out[parts[0]] = []
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
                    f"receipts line {i} is torn (a process stopped while writing it): {line[:60]!r}"
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
    #: Every chain's head by its name (``audit_events``, ``audit_events/7``, ``events``, ...)
    heads: dict[str, Head] = field(default_factory=dict)
    #: The rows of each table, every chain together.
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
    "chain",
    "link",
)
_EVENT_COLUMNS = (
    "seq",
    "at",
    "username",
    "session",
    "kind",
    "trial_id",
    "subject",
    "detail",
    "chain",
    "link",
)


@dataclass
class _Walk:
    """Where the walk of one chain has got to: the next place expected, the last MAC, and
    whether it has failed (its later rows are not checked: one error per chain)."""

    name: str
    receipts: dict[int, set[str]]
    expected: int = 1
    prev: str = GENESIS
    broken: bool = False


def verify_chain(
    session: Session,
    key: bytes,
    table: str,
    result: Verification,
    receipts: dict[str, dict[int, set[str]]] | None = None,
    on_row: Callable[[int, str, str], None] | None = None,
) -> None:
    """Recompute the MACs of every chain of ``table`` and check receipted rows against their
    receipts (``receipts`` by chain name: each place's MACs); report the first row of each
    chain that does not verify.

    The rows are read once, in ``seq`` order, which orders every chain's rows by their place
    too (a row out of place is reported), so ``on_row(seq, action, new)`` sees each audit row
    that verified in the order the trail's changes happened (the replay of the trail)."""
    model = _model(table)
    audit = table == "audit_events"
    names: tuple[str, ...] = _AUDIT_COLUMNS if audit else _EVENT_COLUMNS
    if not _has_column(session, table, "link"):
        names = names[:-2]  # a trail checked before revision 0012 (one chain)
        if audit and not _has_column(session, table, "session"):
            names = names[:-1]  # ... and before 0011 (its 0008 migration)
    chained = "link" in names
    cols = [getattr(model, n) for n in names]
    receipts = receipts or {}
    walks: dict[int, _Walk] = {}
    query = select(*cols, model.mac).order_by(model.seq)
    # Core rows on the session's connection (its transaction): no ORM work per row.
    for row in session.connection().execute(query.execution_options(yield_per=5000)):
        content = list(row)
        mac = content.pop()
        seq = content[0]
        chain = int(content[-2]) if chained else 0
        walk = walks.get(chain)
        if walk is None:
            name = chain_name(table, chain)
            walk = walks[chain] = _Walk(name, receipts.get(name, {}))
        if walk.broken:
            continue
        problem = _check_row(key, walk, content, mac, audit, chained)
        if problem:
            walk.broken = True
            result.fail(problem)
            continue
        if audit and on_row is not None and result.ok:
            on_row(int(seq), str(content[3]), str(content[7]))
    if 0 not in walks:
        walks[0] = _Walk(table, receipts.get(table, {}))
    for name in receipts:  # a chain whose every row is gone has receipts only
        split = split_chain_name(name)
        if split is not None and split[0] == table and split[1] not in walks:
            walks[split[1]] = _Walk(name, receipts[name])
    result.rows[table] = sum(walk.expected - 1 for walk in walks.values())
    for _chain, walk in sorted(walks.items()):
        result.heads[walk.name] = Head(walk.name, walk.expected - 1, walk.prev)


def _check_row(
    key: bytes, walk: _Walk, content: list[Any], mac: str, audit: bool, chained: bool
) -> str:
    """Check one row (its columns in ``content``, which become its MAC content) against its
    chain's walk and move the walk on; the error, or ""."""
    seq = content[0]
    link = content[-1] if chained else None
    if link is None and chained and content[-2]:
        return f"{walk.name}: row seq {seq} has no place in its chain"
    place = seq if link is None else int(link)
    if place != walk.expected:
        return (
            f"{walk.name}: row {walk.expected} is missing or out of order (found row "
            f"{place}, seq {seq})"
        )
    body = audit_content(content) if audit else event_content(content)
    if not hmac.compare_digest(compute_mac(key, walk.prev, body), mac):
        return (
            f"{walk.name}: row {place} does not verify (changed, inserted, reordered, moved "
            "from another chain, or written without the key)"
        )
    receipted = walk.receipts.get(place, set())
    if any(not hmac.compare_digest(r, mac) for r in receipted):
        if len(receipted) > 1:
            return (
                f"{walk.name}: row {place} differs from one of its {len(receipted)} receipts "
                "(the chain was cut there and written again)"
            )
        return f"{walk.name}: row {place} differs from its receipt (chain rewritten)"
    content[:] = body
    walk.prev = mac
    walk.expected += 1
    return ""


def verify(
    session: Session,
    key: bytes,
    receipts_path: Path,
    on_row: Callable[[int, str, str], None] | None = None,
) -> Verification:
    """Verify every chain of the audit trail and the event log against the receipts
    (signatures are checked by the caller); ``on_row`` sees each audit row that verified, in
    order."""
    result = Verification()
    receipts, problems = read_receipts(receipts_path)
    result.warnings.extend(problems)
    have_file = receipts_path.exists()
    if not have_file:
        result.warnings.append(
            f"no receipts file at {receipts_path}: a cut tail cannot be detected"
        )
    by_chain: dict[str, dict[int, set[str]]] = {}
    for name, entries in receipts.items():
        places = by_chain.setdefault(name, {})
        for place, mac in entries:
            places.setdefault(place, set()).add(mac)
    for table in CHAINED:
        verify_chain(session, key, table, result, by_chain, on_row)
    failed = {e.split(":", 1)[0] for e in result.errors}
    for name in sorted(set(by_chain) | set(result.heads)):
        if name not in failed:
            _check_receipted_tail(session, result, name, by_chain.get(name, {}), have_file)
    return result


def _check_receipted_tail(
    session: Session,
    result: Verification,
    name: str,
    entries: dict[int, set[str]],
    have_file: bool,
) -> None:
    """A chain's head against its last receipt: fewer rows than receipted is a cut tail;
    more, a commit not receipted yet (one per writer after a crash) or a receipts file that is
    not this database's."""
    h = result.heads.get(name) or Head(name, 0, GENESIS)
    if not entries:
        if h.seq and have_file:
            result.warnings.append(f"{name}: no receipt yet for its {h.seq} rows")
        return
    last = max(entries)
    if last > h.seq:
        result.fail(
            f"{name}: the receipts record {last} rows but the database has {h.seq}: "
            f"rows {h.seq + 1} to {last} were removed"
        )
        return
    if last == h.seq:
        return
    split = split_chain_name(name)
    assert split is not None  # names come from read_receipts and the walk
    table, chain = split
    model = _model(table)
    if _has_column(session, table, "link"):
        behind = (model.chain == chain) & (func.coalesce(model.link, model.seq) > last)
    else:  # before revision 0012: one chain, places are seqs
        behind = model.seq > last
    commits = session.scalar(select(func.count(func.distinct(model.at))).where(behind))
    if commits == 1:
        result.warnings.append(
            f"{name}: the last receipt is behind the head ({last} of {h.seq} rows), "
            "as after a crash between a commit and its receipt"
        )
    else:
        result.warnings.append(
            f"{name}: the last receipt is behind the head ({last} of {h.seq} rows, "
            f"{commits} commits without a receipt): a crash leaves at most one per "
            "workstation, and a commit being receipted as this runs one more; more "
            "means the receipts file was cut, replaced or is another database's"
        )


def chain_head(session: Session, trial_id: int | None = None) -> dict[str, object]:
    """The head exports carry: the chain of ``trial_id`` (the centre's without one), its name,
    rows and last MAC."""
    h = head(session, "audit_events", trial_id or 0)
    return {"chain": h.table, "rows": h.seq, "mac": h.mac}
