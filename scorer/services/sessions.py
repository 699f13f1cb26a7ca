"""Log-in sessions as they happened: each session's events and audit rows, how it ended, where
it ran, its time on cases and its time per film.

The rules (issue 30, item 3):

* A session is its events (the event log's rows with its session id) and its audit rows.
  An audit row belongs to the session whose id it carries (revision 0011 on). A row without
  one (every row before 0011, and the few written outside any session: a log-in's own rows, a
  failed log-in) belongs to its user's session that started last at or before the row, so
  before that user's next session; rows of a user before their first session belong to none.
  Two sessions of one user at two workstations at once cannot be told apart for such rows:
  they go to the later one.
* A session ends at its last row, event or audit. It ended by **log-out** when it has a
  ``logout`` event; by **lock timeout** when its last event is a lock for inactivity that
  was never unlocked; **locked** when the reader locked it and never came back; otherwise it
  ended **without a log-out** (a crash, a kill, a power cut, or it is still open), and its
  ``ended`` text gives the last activity.
* The workstation is the one named at log-in (the login event's ``workstation`` and, through
  the server, the peer ``address``); older log-ins name none.
* Time on a case: the ``seconds`` of its ``case.closed`` events; a case still on screen when
  the session stopped (opened, or unlocked onto, and never closed) counts from then to the
  session's last row, and is reported as open-ended. A lock closes the case's clock: the
  window logs ``case.closed`` before its own lock; a lock the facade made (inactivity) counts
  up to the lock.
* Time per film: the ``seconds`` of its ``image.viewed`` events, with the magnifications they
  report (``zoom``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from scorer.store.schema import AuditEvent, Event

#: How a session ended (see the module's rules).
EndKind = Literal["log-out", "lock timeout", "locked", "no log-out"]


@dataclass(frozen=True)
class ImageTime:
    """The time one film was on screen in a session: its image code, the case it was shown
    in, the seconds, and the magnifications it was seen at (zoom factors, rounded)."""

    image: str
    case: str
    seconds: float
    magnifications: tuple[float, ...]
    records: int

    def magnification_text(self) -> str:
        """The magnifications in one cell: "1×, 2.5×" ("" when none was reported)."""
        return ", ".join(f"{z:g}×" for z in self.magnifications)


@dataclass(frozen=True)
class ReadingSession:
    """One log-in session as it happened: who, where, when and how it ended, the cases opened
    and the time on them, the films viewed and the time on each, and how many audit rows
    (scores among them) it wrote (``seconds_per_image`` is None when no film was viewed)."""

    session: str
    user: str
    start: str
    end: str
    end_kind: EndKind
    ended: str
    workstation: str
    address: str
    cases: tuple[str, ...]
    seconds_on_cases: float
    open_case: str  # the case on screen when the session stopped without closing it, or ""
    open_seconds: float  # its open-ended time (from opening to the session's last row)
    events: int
    audit_rows: int
    scores: int  # score entries written (set or cleared)
    cases_opened: int
    images_viewed: int
    seconds_per_image: float | None
    images: tuple[ImageTime, ...]

    def where(self) -> str:
        """Where the session ran: the workstation's name and, through the server, its address."""
        if self.address and self.workstation:
            return f"{self.workstation} ({self.address})"
        return self.workstation or self.address or "not recorded"


@dataclass
class SessionRows:
    """A session's rows while they are gathered: its events and its audit rows."""

    session: str
    user: str
    start: str
    events: list[Event] = field(default_factory=list)
    audit: list[AuditEvent] = field(default_factory=list)

    @property
    def end(self) -> str:
        """The time of the session's last row, event or audit."""
        last = [rows[-1].at for rows in (self.events, self.audit) if rows]
        return max(last) if last else self.start


def gather(events: Iterable[Event], audit: Iterable[AuditEvent]) -> dict[str, SessionRows]:
    """Every session's events and audit rows, by session id (the module's rules), in order
    of their start."""
    by: dict[str, SessionRows] = {}
    for e in events:
        if e.session:
            by.setdefault(e.session, SessionRows(e.session, e.username, e.at)).events.append(e)
    unnamed: list[AuditEvent] = []
    for a in audit:
        if a.session:
            by.setdefault(a.session, SessionRows(a.session, a.username, a.at)).audit.append(a)
        else:
            unnamed.append(a)
    starts: dict[str, list[tuple[str, str]]] = {}
    for rows in sorted(by.values(), key=lambda r: r.start):
        starts.setdefault(rows.user, []).append((rows.start, rows.session))
    for a in unnamed:
        latest = [sid for start, sid in starts.get(a.username, ()) if start <= a.at]
        if latest:
            by[latest[-1]].audit.append(a)
    for rows in by.values():
        rows.audit.sort(key=lambda a: a.seq)
    return dict(sorted(by.items(), key=lambda kv: kv[1].start))


def _detail(e: Event) -> dict[str, object]:
    """An event's detail as a dict ({} when it has none or it is not an object)."""
    if not e.detail:
        return {}
    value = json.loads(e.detail)
    return value if isinstance(value, dict) else {}


def _seconds(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _between(start: str, end: str) -> float:
    """Seconds from one stored time to another (0 when either cannot be read)."""
    try:
        a = datetime.strptime(start, "%Y-%m-%dT%H:%M:%S.%fZ")
        b = datetime.strptime(end, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return 0.0
    return max(0.0, (b - a).total_seconds())


@dataclass
class _CaseClock:
    """The case on screen while a session's events are walked, and the time on cases."""

    seconds: float = 0.0
    on_screen: str = ""  # the case last opened
    since: str | None = None  # when its unclosed stretch began (None: closed)

    def event(self, e: Event, detail: dict[str, object]) -> None:
        if e.kind == "case.opened":
            self.on_screen, self.since = e.subject, e.at
        elif e.kind == "case.closed":
            self.seconds += _seconds(detail.get("seconds"))
            if e.subject == self.on_screen:
                self.since = None
        elif e.kind == "session.locked" and self.since is not None:
            # Locked by the facade before the window could close the case's clock.
            self.seconds += _between(self.since, e.at)
            self.since = None
        elif e.kind == "session.unlocked" and self.on_screen and self.since is None:
            self.since = e.at  # back on the case that was on screen at the lock


def _images(events: Sequence[Event]) -> tuple[ImageTime, ...]:
    """Time per film from the session's ``image.viewed`` events, in the order first seen."""
    seconds: dict[str, float] = {}
    case: dict[str, str] = {}
    zooms: dict[str, set[float]] = {}
    records: dict[str, int] = {}
    for e in events:
        if e.kind != "image.viewed":
            continue
        d = _detail(e)
        seconds[e.subject] = seconds.get(e.subject, 0.0) + _seconds(d.get("seconds"))
        case.setdefault(e.subject, str(d.get("case_code", "")))
        records[e.subject] = records.get(e.subject, 0) + 1
        zoom = d.get("zoom")
        seen = zooms.setdefault(e.subject, set())
        if isinstance(zoom, int | float) and not isinstance(zoom, bool):
            seen.add(round(float(zoom), 2))
    return tuple(
        ImageTime(code, case[code], round(s, 1), tuple(sorted(zooms[code])), records[code])
        for code, s in seconds.items()
    )


def _end(rows: SessionRows, end: str) -> tuple[EndKind, str]:
    """How the session ended and the words for it (see the module's rules)."""
    kinds = [e.kind for e in rows.events]
    if "logout" in kinds:
        return "log-out", "log-out"
    last_lock = max((i for i, k in enumerate(kinds) if k == "session.locked"), default=-1)
    if last_lock >= 0 and "session.unlocked" not in kinds[last_lock:]:
        lock = rows.events[last_lock]
        idle = _detail(lock).get("idle_seconds")
        if idle is not None:
            return "lock timeout", f"lock timeout at {short(lock.at)} (idle {idle} s), no log-out"
        return "locked", f"locked at {short(lock.at)} and not unlocked, no log-out"
    return "no log-out", f"no log-out (last activity {short(end)})"


def short(at: str) -> str:
    """A stored time as shown: date and time to the second."""
    return at[:19].replace("T", " ")


def summary(rows: SessionRows) -> ReadingSession:
    """One session as reported (the module's rules)."""
    end = rows.end
    clock = _CaseClock()
    cases: list[str] = []
    workstation = address = ""
    for e in rows.events:
        detail = _detail(e)
        if e.kind == "login":
            workstation = str(detail.get("workstation", ""))
            address = str(detail.get("address", ""))
        if e.kind == "case.opened" and e.subject not in cases:
            cases.append(e.subject)
        clock.event(e, detail)
    end_kind, ended = _end(rows, end)
    open_seconds = 0.0 if clock.since is None else _between(clock.since, end)
    images = _images(rows.events)
    total = sum(i.seconds for i in images)
    return ReadingSession(
        session=rows.session,
        user=rows.user,
        start=rows.start,
        end=end,
        end_kind=end_kind,
        ended=ended,
        workstation=workstation,
        address=address,
        cases=tuple(cases),
        seconds_on_cases=round(clock.seconds + open_seconds, 1),
        open_case=clock.on_screen if clock.since is not None else "",
        open_seconds=round(open_seconds, 1),
        events=len(rows.events),
        audit_rows=len(rows.audit),
        scores=sum(a.action.startswith("score.") for a in rows.audit),
        cases_opened=len(cases),
        images_viewed=len(images),
        # Time per image: seconds on screen per film viewed (both films of a pair count).
        seconds_per_image=round(total / len(images), 1) if images else None,
        images=images,
    )
