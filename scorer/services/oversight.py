"""Oversight: what a monitor sees — reading sessions, their timelines, the trail — and its
verification."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

from scorer.core.json_value import JsonValue
from scorer.core.worklist import LETTERS
from scorer.services.errors import NotFound
from scorer.services.lookups import chain_head
from scorer.services.operation import Op, Service, operation
from scorer.services.read_views import ReadView, content_hash
from scorer.services.sessions import ReadingSession, gather, summary
from scorer.store import repository as repo
from scorer.store.audit import Verification
from scorer.store.database import Session, Store
from scorer.store.projection import Replay

if TYPE_CHECKING:
    from scorer.reports.document import Document

#: Keys of audit details that would tell a monitor who the patient is or which visit a
#: read is: dropped from timelines before unblinding (a monitor sees case codes only).
#: Also the worklists' randomisation inputs (patients, their visits, the seed), from
#: which each case's visit order could be recomputed.
BLINDED_KEYS = frozenset(
    {"patient", "patients", "real_id", "visit", "visits", "visit_date", "case", "seed"}
)


def one_line(value: JsonValue, limit: int = 120) -> str:
    """A detail in one line for a table cell."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class LoggedEvent:
    """One row of the event log (a log-in, a case opened, a film viewed, an export)."""

    seq: int
    at: str
    username: str
    session: str
    kind: str
    subject: str
    detail: JsonValue  # the stored detail parsed, None when there is none


@dataclass(frozen=True)
class AuditEntry:
    """One row of the audit trail; ``old``/``new`` are the stored JSON texts (blinded for a
    monitor, see :func:`blinded_text`)."""

    seq: int
    at: str
    username: str
    action: str
    entity: str
    entity_id: str
    old: str
    new: str
    reason: str


@dataclass(frozen=True)
class TimelineEntry:
    """One row of a session's timeline: an event, or one of the session's audit rows
    (``detail`` is {"old": ..., "new": ...} when the row changed a value). A row about a read
    names the visit: ``visit_letter`` as the reader saw it (A, B, C in the case's order) and
    ``visit``, the true visit label, for the monitor and the coordinator ("" otherwise)."""

    at: str
    source: Literal["event", "audit"]
    what: str
    subject: str
    detail: JsonValue
    reason: str
    visit_letter: str = ""
    visit: str = ""


class OversightService(Service):
    """Reading sessions and timelines, the audit trail and events (blinded for a monitor), and
    verification."""

    @operation("monitor", "admin", "coordinator")
    def events(self, op: Op, username: str | None = None) -> list[LoggedEvent]:
        """The event log (log-ins, cases opened, films viewed, exports), of one user or all."""
        return [
            LoggedEvent(
                seq=e.seq,
                at=e.at,
                username=e.username,
                session=e.session,
                kind=e.kind,
                subject=e.subject,
                detail=json.loads(e.detail) if e.detail else None,
            )
            for e in repo.events(op.db, username)
        ]

    @operation("monitor", "admin", "coordinator")
    def audit_trail(self, op: Op) -> list[AuditEntry]:
        """Every audit row; a monitor's leave out what would tie a case to a patient or a
        visit (see :attr:`BLINDED_KEYS`)."""
        blind = op.user.role == "monitor"
        return [
            AuditEntry(
                seq=a.seq,
                at=a.at,
                username=a.username,
                action=a.action,
                entity=a.entity,
                entity_id=shown_entity_id(a.entity, a.entity_id, blind),
                old=trail_text(a.action, a.old, blind, entity=a.entity),
                new=trail_text(a.action, a.new, blind, entity=a.entity),
                reason=a.reason,
            )
            for a in repo.audit_rows(op.db)
        ]

    @operation("monitor", "coordinator", "admin")
    def reading_sessions(
        self,
        op: Op,
        reader: str | None = None,
        day: str | None = None,
        case: str | None = None,
    ) -> list[ReadingSession]:
        """Every log-in session from the event log: who, start, end, cases opened, seconds
        on cases, films viewed and seconds per film; filtered by user, day (YYYY-MM-DD of the
        start) or a case code opened."""
        return sessions_of(op.db, reader, day, case)

    @operation("monitor", "coordinator", "admin")
    def session_timeline(self, op: Op, session_id: str) -> list[TimelineEntry]:
        """One session's timeline: its events (log-in, cases opened and closed, locks,
        exports) and the audit rows its user wrote meanwhile (each score with old → new and
        reason, signatures), in time order. A monitor sees case codes, never patients."""
        return timeline_of(op.db, session_id, blind=op.user.role == "monitor")

    @operation("monitor", "coordinator", "admin", transaction=False)
    def verify(self, op: Op) -> Verification:
        """Verify the audit chain, the event chain, the receipts and every signature, and
        replay the trail against the tables (what ``scorer audit verify`` does), on the
        database's own host: the monitor's window over the server asks for it here."""
        return verify_store(self.store)

    @operation("monitor", "coordinator", "admin", write=True, transaction=False)
    def session_document(self, op: Op, session_id: str) -> Document:
        """One session's timeline as a report document (CSV, PDF, ...); audited as an export."""
        # Read in one transaction, then record the export in a short write of its own: the
        # document is built in between without holding the lock readers' saves need.
        with op.read() as db:
            rows = timeline_of(db, session_id, blind=op.user.role == "monitor")
            info = next((r for r in sessions_of(db) if r.session == session_id), None)
        doc = session_report(session_id, rows, info)
        data = json.dumps([asdict(r) for r in rows], sort_keys=True)
        self._audit_export(op, None, f"session {session_id}", data)
        return doc

    @operation("monitor", "coordinator", "admin", write=True, transaction=False)
    def audit_document(self, op: Op) -> Document:
        """The whole audit trail as a report document, with the verification result; audited
        as an export."""
        # Verification and the rows are read first; the export is recorded in a short write.
        result = verify_store(self.store)
        with op.read() as db:
            rows: list[list[str | int]] = [
                [
                    a.seq,
                    a.at,
                    a.username,
                    a.action,
                    shown_entity_id(a.entity, a.entity_id, op.user.role == "monitor"),
                    one_line(
                        trail_text(a.action, a.new, op.user.role == "monitor", True, a.entity)
                    ),
                    a.reason,
                ]
                for a in repo.audit_rows(db)
            ]
            head = chain_head(db)
        doc = trail_report(rows, head, result)
        self._audit_export(op, None, "audit trail document", str(head))
        return doc


def sessions_of(
    db: Session, reader: str | None = None, day: str | None = None, case: str | None = None
) -> list[ReadingSession]:
    """The log-in sessions from the event log and the audit rows, filtered (see
    OversightService.reading_sessions and :mod:`scorer.services.sessions` for the rules)."""
    audit = [a for a in repo.audit_rows(db) if not reader or a.username == reader]
    out = [
        row
        for row in (summary(rows) for rows in gather(repo.events(db, reader), audit).values())
        if (not day or row.start.startswith(day)) and (not case or case in row.cases)
    ]
    return sorted(out, key=lambda r: r.start)


def detail(action: str, old: str, new: str, blind: bool, entity: str = "") -> JsonValue:
    """An audit row's old and new values parsed (blinded for a monitor): {"old", "new"} when
    there was an old value, else the new one alone; the rows of a ``data.*`` row as counts per
    table for a monitor (:func:`trail_text`)."""
    from scorer.store.projection import DATA_ACTIONS

    if blind and action in DATA_ACTIONS:
        return trail_text(action, new, blind)

    def load(text: str) -> JsonValue:
        if not text:
            return None
        try:
            value: JsonValue = json.loads(text)
        except json.JSONDecodeError:
            return text
        if not blind:
            return value
        hidden = entity in HIDDEN_ENTITIES
        return blinded(value, BLINDED_KEYS | HIDDEN_ENTITY_KEYS if hidden else BLINDED_KEYS)

    o, n = load(old), load(new)
    return {"old": o, "new": n} if o is not None else n


#: Rows about these entities name a patient or an image by its code (their entity ID, and
#: ``code``/``image`` keys): a monitor sees that such a row was written, not which one.
HIDDEN_ENTITIES = {"patient": "(a patient)", "image": "(an image)"}
HIDDEN_ENTITY_KEYS = frozenset(
    {"code", "image", "images", "acquisition_date", "sop_instance_uid", "source_name", "path"}
)


def shown_entity_id(entity: str, entity_id: str, blind: bool) -> str:
    """An audit row's entity ID as a viewer may see it: a patient's or image's code is hidden
    from a monitor (the README: timelines show case codes, never patients)."""
    return HIDDEN_ENTITIES.get(entity, entity_id) if blind else entity_id


def blinded(value: JsonValue, keys: frozenset[str] = BLINDED_KEYS) -> JsonValue:
    """``value`` without the keys a monitor may not see (at any depth)."""
    if isinstance(value, dict):
        return {k: blinded(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [blinded(v, keys) for v in value]
    return value


def blinded_text(text: str, blind: bool, entity: str = "") -> str:
    """An audit row's stored old/new JSON, blinded for a monitor (same JSON form); a row about
    a patient or an image also loses the codes that name it."""
    if not blind or not text:
        return text
    try:
        value: JsonValue = json.loads(text)
    except json.JSONDecodeError:
        return text
    keys = BLINDED_KEYS | HIDDEN_ENTITY_KEYS if entity in HIDDEN_ENTITIES else BLINDED_KEYS
    shown = blinded(value, keys)
    if shown == value:
        return text
    return json.dumps(shown, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def trail_text(
    action: str, text: str, blind: bool, brief: bool = False, entity: str = ""
) -> str:
    """An audit row's old/new as shown: blinded for a monitor; the rows a change wrote into
    the trail (``data.*``) as a count per table for a monitor, whose view must not tie a read
    to a patient or a visit through them, and in a ``brief`` listing."""
    from scorer.store.projection import DATA_ACTIONS, summary

    if action in DATA_ACTIONS:
        return summary(text) if (blind or brief) and text else text
    return blinded_text(text, blind, entity)


def verify_store(store: Store) -> Verification:
    """Verify a store's audit chain, event chain, receipts and every signature, and replay
    the audit trail and compare what it rebuilds with every projected table."""
    from scorer.store.audit import verify as verify_chains
    from scorer.store.projection import DATA_ACTIONS

    replay = Replay()

    def on_row(seq: int, action: str, new: str) -> None:
        if action in DATA_ACTIONS:
            replay.apply(seq, action, new)

    try:
        with store.read() as db:
            if db.get_bind().dialect.name == "postgresql":
                # The trail and the tables are read from one snapshot whatever commits meanwhile.
                db.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            result = verify_chains(db, store.key, store.location.receipts_path, on_row)
            if result.ok:
                # Both run on a trail that verified: a failed signature must not hide which
                # rows differ from the trail, nor the other way round.
                repo.verify_signatures(db, result, ReadView, content_hash)
                compare_projection(db, store.key, replay, result)
    finally:
        replay.close()
    return result


def compare_projection(db: Session, key: bytes, replay: Replay, result: Verification) -> None:
    """Fail ``result`` on every way the tables differ from the replayed trail."""
    result.replayed = replay.rows
    if replay.baseline_seq is None:
        result.fail(
            "the audit trail has no baseline, so the tables cannot be checked against it: "
            "the database was made before scorer kept its data in the trail (run `scorer "
            "migrate` with this version)"
        )
        return
    for d in replay.compare(db, key):
        result.differences.append((d.table, d.key, d.column, d.message))
        result.fail(str(d))


def timeline_of(db: Session, session_id: str, blind: bool) -> list[TimelineEntry]:
    """One session's events and audit rows (:mod:`scorer.services.sessions`), in time order
    (see OversightService.session_timeline); ``blind`` for a monitor: case codes for
    patients, but a row about a read names its visit's letter and its true visit."""
    # The user's every session is gathered: which one a row without a session id belongs to
    # depends on when the user's other sessions started.
    audit = repo.audit_rows(db)
    user = next((e.username for e in repo.events(db) if e.session == session_id), None)
    user = user or next((a.username for a in audit if a.session == session_id), None)
    found = None
    if user is not None:
        mine = [a for a in audit if a.username == user]
        found = gather(repo.events(db, user), mine).get(session_id)
    if found is None:
        raise NotFound(f"no session {session_id!r}")
    visit_of_read = repo.visits_of_reads(db)
    rows = [
        TimelineEntry(
            at=e.at,
            source="event",
            what=e.kind,
            subject=e.subject,
            detail=json.loads(e.detail) if e.detail else None,
            reason="",
        )
        for e in found.events
    ]
    for a in found.audit:
        subject, letter, visit = a.entity_id, "", ""
        if a.entity == "read" and a.entity_id in visit_of_read:
            case, place, visit = visit_of_read[a.entity_id]
            subject, letter = f"case {case}", LETTERS[place] if place >= 0 else "?"
        else:
            subject = shown_entity_id(a.entity, a.entity_id, blind)
        rows.append(
            TimelineEntry(
                at=a.at,
                source="audit",
                what=a.action,
                subject=subject,
                detail=detail(a.action, a.old, a.new, blind, a.entity),
                reason=a.reason,
                visit_letter=letter,
                visit=visit,
            )
        )
    return sorted(rows, key=lambda r: (r.at, r.source != "event"))


def session_report(
    session_id: str, rows: list[TimelineEntry], info: ReadingSession | None
) -> Document:
    """One session's timeline, and its time per film, as a report document (its JSON data:
    the rows as dicts)."""
    from scorer.reports.document import Document, Section, Table

    table = Table(
        "Timeline",
        f"Events and audit rows of the session (n = {len(rows)})",
        ["At", "Source", "What", "Subject", "Visit letter", "Visit", "Detail", "Reason"],
        [
            [
                r.at,
                r.source,
                r.what,
                r.subject,
                r.visit_letter,
                r.visit,
                one_line(r.detail),
                r.reason,
            ]
            for r in rows
        ],
    )
    images = info.images if info else ()
    films = Table(
        "Time per film",
        f"Seconds each film was on screen in the session (n = {len(images)} films)",
        ["Film", "Case", "Seconds", "Magnifications", "Records"],
        [[i.image, i.case, i.seconds, i.magnification_text(), i.records] for i in images],
    )
    return Document(
        f"Reading session {session_id[:8]}",
        [
            ("User", info.user if info else ""),
            ("Workstation", info.where() if info else ""),
            ("Start", info.start if info else ""),
            ("End", info.end if info else ""),
            ("Ended", info.ended if info else ""),
            ("Cases opened", str(info.cases_opened) if info else ""),
            ("Scores entered", str(info.scores) if info else ""),
        ],
        [Section("Timeline", [table]), Section("Time per film", [films])],
        {"timeline": [asdict(r) for r in rows], "images": [asdict(i) for i in images]},
    )


def trail_report(
    rows: list[list[str | int]], head: Mapping[str, object], result: Verification
) -> Document:
    """The audit trail's rows as a report document, with the verification result."""
    from scorer.reports.document import Document, Paragraph, Section, Table

    return Document(
        "Audit trail",
        [
            ("Verification", "verifies" if result.ok else "; ".join(result.errors[:3])),
            ("Head", f"{head['rows']} rows, MAC {head['mac']}"),
            ("Signatures checked", str(result.signatures)),
        ],
        [
            Section(
                "Rows",
                [
                    Paragraph("Each row's MAC chains it to the one before (HMAC-SHA-256)."),
                    Table(
                        "Audit trail",
                        f"The audit trail (n = {len(rows)} rows)",
                        ["Seq", "At", "User", "Action", "Entity", "New", "Reason"],
                        rows,
                    ),
                ],
            )
        ],
    )
