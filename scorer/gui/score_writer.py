"""The score writer: one worker thread that commits every entry through the facade, in order.

The scoring grid never waits for the database. Each keystroke that changes a score becomes a
:class:`WriteEntry`; :class:`ScoreWriter` queues it, a single worker thread commits the
entries one after another (``set_scores`` / ``clear_scores`` / ``set_note``), and the outcome
comes back on the UI thread as ``acknowledged(read_code, area, version)`` or
``failed(read_code, area, message)``. An entry is acknowledged only after its transaction has
committed (SQLite ``synchronous=FULL``), so an acknowledged score survives a crash or a power
cut.

A failed entry (disk full, trial locked, database read-only) is reported and the writer goes on
with the next one; the grid keeps the cell red and offers a retry. A locked session is not a
failure: the writer pauses with the entry at the head of the queue, emits
``sessionLocked(message)`` and carries on after :meth:`ScoreWriter.resume` (once the reader
has unlocked), so nothing typed is lost.
"""

from __future__ import annotations

import atexit
import queue
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, QThread, Signal

from scorer.core.methods import Area
from scorer.core.reads import AreaScore
from scorer.gui.tasks import KeptTasks, run_in_background  # noqa: F401  (KeptTasks: its old home)
from scorer.workspace import Conflict, ScorerError, SessionLocked, Unavailable

#: Called on the UI thread for each area of an entry: (read code, area, new read version).
AckCallback = Callable[[str, Area, int], None]
#: Called on the UI thread for each area of a failed entry: (read code, area, message).
FailCallback = Callable[[str, Area, str], None]


class WritingFacade(Protocol):
    """What the writer needs of ``scorer.workspace.Workspace``."""

    def set_scores(
        self,
        s: Any,
        code: str,
        values: Mapping[Area, AreaScore],
        reason_texts: Mapping[Area, str] | None = None,
        change_reason: str = "",
        expected_version: int | None = None,
        expected: Mapping[Area, AreaScore | None] | None = None,
    ) -> list[Any]: ...

    def clear_scores(
        self,
        s: Any,
        code: str,
        areas: Sequence[Area],
        change_reason: str = "",
        expected_version: int | None = None,
        expected: Mapping[Area, AreaScore | None] | None = None,
    ) -> list[Any]: ...

    def set_note(self, s: Any, code: str, note: str) -> Any: ...

    def raise_flag(
        self,
        s: Any,
        case_code: str,
        message: str,
        visit: str | None = None,
        films: Sequence[str] = (),
    ) -> int: ...


@dataclass(frozen=True, eq=False)
class WriteEntry:
    """One change of one read: scores (``None`` clears an area) or, instead, the read's note.

    The scores of one entry are committed in one transaction (each area still gets its own
    audit row), then its clears in one more. ``on_ack`` / ``on_fail`` are called on the UI thread
    once per area (a note entry calls ``on_note``).
    """

    read_code: str
    values: Mapping[Area, AreaScore | None] = field(default_factory=dict)
    reason_texts: Mapping[Area, str] = field(default_factory=dict)
    change_reason: str = ""
    note: str | None = None
    on_ack: AckCallback | None = None
    on_fail: FailCallback | None = None
    on_note: Callable[[str, str], None] | None = None  # (read code, error message or "")


@dataclass(frozen=True)
class AreaOutcome:
    """What became of one area of an entry: its new read version, or why it failed."""

    area: Area | None
    version: int = -1
    error: str = ""


#: How long the writer waits before sending an entry again after the server did not answer:
#: doubling from the first to the longest.
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 8.0


class _Worker(QThread):
    """The one thread that talks to the database for the grid."""

    def __init__(self, writer: ScoreWriter) -> None:
        super().__init__()
        self.setObjectName("scoreWriter")
        self._writer = writer

    def run(self) -> None:
        self._writer._work()


class ScoreWriter(QObject):
    """Commits score entries through the facade on one worker thread, in submission order.

    Signals (all on the UI thread): ``acknowledged(read_code, area, version)`` per saved area
    (``area`` is None for a note), ``failed(read_code, area, message)`` per area not saved,
    ``pendingChanged(count)``, ``sessionLocked(message)`` when writing paused for a locked
    session and ``resumed()``.
    """

    acknowledged = Signal(str, object, int)
    failed = Signal(str, object, str)
    pendingChanged = Signal(int)
    sessionLocked = Signal(str)
    resumed = Signal()
    #: The server (or database) did not answer: the entry at the head waits and is sent again
    #: (message); ``reconnected()`` once an entry went through after that.
    unavailable = Signal(str)
    reconnected = Signal()
    _delivered = Signal(object, object)  # (WriteEntry, list[AreaOutcome]) from the worker
    _paused = Signal(str)

    def __init__(self, facade: WritingFacade, session: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.facade = facade
        self.session = session
        self._queue: queue.Queue[WriteEntry | None] = queue.Queue()
        # What this workstation believes each area of each read holds (loaded, then what it
        # saved): sent with every change, so a change made meanwhile on another workstation
        # is reported as a conflict instead of being overwritten unseen.
        self._known: dict[tuple[str, Area], AreaScore | None] = {}
        self._known_lock = threading.Lock()
        self._pending = 0
        self._go = threading.Event()
        self._go.set()
        self._stopping = False
        self.paused = False
        self._delivered.connect(self._deliver)
        self._paused.connect(self._on_paused)
        self._tasks = KeptTasks()
        self._thread = _Worker(self)
        self._thread.start()
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.stop)
        # A writer never stopped must not leave its thread running into interpreter shutdown.
        atexit.register(_stop_at_exit, weakref.ref(self))

    # ------------------------------------------------------------------ UI thread

    @property
    def pending_count(self) -> int:
        """Entries submitted and not yet acknowledged or failed."""
        return self._pending

    @property
    def running(self) -> bool:
        return self._thread.isRunning()

    def expect(self, read_code: str, values: Mapping[Area, AreaScore | None]) -> None:
        """What the read's areas hold as loaded (``None``: not entered); later changes of
        these areas are checked against it. An area already known keeps what this writer
        learnt (a case shown again may hold entries still on their way)."""
        with self._known_lock:
            for area, value in values.items():
                self._known.setdefault((read_code, area), value)

    def _expected(self, code: str, areas: Any) -> dict[Area, AreaScore | None]:
        with self._known_lock:
            return {a: self._known[(code, a)] for a in areas if (code, a) in self._known}

    def _learn(self, code: str, values: Mapping[Area, AreaScore | None]) -> None:
        with self._known_lock:
            for area, value in values.items():
                self._known[(code, area)] = value

    def submit(self, entry: WriteEntry) -> None:
        """Queue an entry; it is committed after every entry submitted before it."""
        if self._stopping:
            raise RuntimeError("the score writer has stopped")
        for part in _split(entry):
            self._pending += 1
            self._queue.put(part)
        self.pendingChanged.emit(self._pending)

    def resume(self) -> None:
        """Carry on writing after the session was unlocked."""
        if self.paused:
            self.paused = False
            self._go.set()
            self.resumed.emit()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait (processing events) until every submitted entry is acknowledged or failed;
        False if some are still pending after ``timeout_s`` (or writing is paused)."""
        deadline = time.monotonic() + timeout_s
        while self._pending and time.monotonic() < deadline:
            if self.paused:
                return False
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            if self._pending:
                time.sleep(0.002)
        return self._pending == 0

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Finish the queued entries (unless writing is paused) and end the worker thread.

        Returns False when entries were left unwritten."""
        if not self._stopping:
            self._stopping = True
            self._queue.put(None)
            self._go.set()
        finished = self._thread.wait(max(1, int(timeout_s * 1000)))
        # Deliver the outcomes that arrived while waiting.
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        return bool(finished) and self._pending == 0

    def raise_flag(
        self,
        case_code: str,
        message: str,
        visit: str | None = None,
        films: Sequence[str] = (),
        done: Callable[[Any], None] | None = None,
        failed: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Send a flag to the coordinator (on the worker pool: it is not a score), about
        ``visit`` (a letter; None for the whole case) with the films on screen."""
        self._tasks.run(
            self.facade.raise_flag,
            self.session,
            case_code,
            message,
            visit,
            list(films),
            done=done,
            failed=failed,
        )

    def _deliver(self, entry: WriteEntry, outcomes: list[AreaOutcome]) -> None:
        self._pending -= 1
        for out in outcomes:
            if out.area is None:
                if entry.on_note is not None:
                    entry.on_note(entry.read_code, out.error)
                if out.error:
                    self.failed.emit(entry.read_code, None, out.error)
                else:
                    self.acknowledged.emit(entry.read_code, None, out.version)
            elif out.error:
                if entry.on_fail is not None:
                    entry.on_fail(entry.read_code, out.area, out.error)
                self.failed.emit(entry.read_code, out.area, out.error)
            else:
                if entry.on_ack is not None:
                    entry.on_ack(entry.read_code, out.area, out.version)
                self.acknowledged.emit(entry.read_code, out.area, out.version)
        self.pendingChanged.emit(self._pending)

    def _on_paused(self, message: str) -> None:
        self.sessionLocked.emit(message)

    # ------------------------------------------------------------------ worker thread

    def _work(self) -> None:
        away = False  # the server did not answer the last attempt
        while True:
            entry = self._queue.get()
            if entry is None:
                return
            tries = 0
            while True:
                self._go.wait()
                try:
                    outcomes = self._commit(entry, resent=tries > 0)
                except SessionLocked as exc:
                    if self._stopping:
                        return  # the entry stays pending: nothing is claimed as saved
                    self._go.clear()
                    self.paused = True
                    self._paused.emit(str(exc))
                    continue
                except Unavailable as exc:
                    # Not a failure: the same entry is sent again until it is answered.
                    if self._stopping:
                        return
                    away = True
                    tries += 1
                    self.unavailable.emit(str(exc))
                    self._wait(min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** min(tries, 6)))
                    continue
                break
            if away:
                away = False
                self.reconnected.emit()
            self._delivered.emit(entry, outcomes)

    def _wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping and time.monotonic() < deadline:
            time.sleep(0.05)

    def _commit(self, entry: WriteEntry, resent: bool = False) -> list[AreaOutcome]:
        """Write one entry; SessionLocked and Unavailable propagate (the entry is sent again
        after unlocking, or once the server answers). A resent entry whose first sending was
        committed before its answer was lost meets a "conflict" with exactly its own values:
        that is its acknowledgement."""
        try:
            if entry.note is not None:
                self.facade.set_note(self.session, entry.read_code, entry.note)
                return [AreaOutcome(None)]
            code = entry.read_code
            expected = self._expected(code, entry.values)
            check: dict[str, Any] = {"expected": expected} if expected else {}
            sets = {a: v for a, v in entry.values.items() if v is not None}
            if sets:
                texts = {a: t for a, t in entry.reason_texts.items() if a in sets and t}
                acks = self.facade.set_scores(
                    self.session,
                    code,
                    sets,
                    texts,
                    entry.change_reason,
                    **check,
                )
                self._learn(code, sets)
                return [AreaOutcome(ack.area, int(ack.version)) for ack in acks]
            # A clear entry holds only clears (see _split): one transaction, all or nothing.
            clears = list(entry.values)
            if not clears:
                return []
            reason = entry.change_reason
            acks = self.facade.clear_scores(self.session, code, clears, reason, **check)
            self._learn(code, dict.fromkeys(clears))
            return [AreaOutcome(ack.area, int(ack.version)) for ack in acks]
        except (SessionLocked, Unavailable):
            raise
        except Exception as exc:
            if resent and isinstance(exc, Conflict) and exc.version is not None:
                # Only when the server names every area of the entry with the entry's value:
                # a conflict lists only the areas that differ from what was expected.
                ours = all(
                    a in exc.current and exc.current[a] == v for a, v in entry.values.items()
                )
                if entry.note is None and entry.values and ours:
                    self._learn(entry.read_code, dict(entry.values))
                    return [AreaOutcome(a, int(exc.version)) for a in entry.values]
            current = getattr(exc, "current", None)
            if isinstance(current, dict):
                # A conflict: now this workstation knows what is stored, so Retry overwrites
                # deliberately, after the reader has seen the current value.
                self._learn(entry.read_code, current)
            areas: list[Area | None] = [None] if entry.note is not None else list(entry.values)
            return [AreaOutcome(a, error=_message(exc)) for a in areas]


def _stop_at_exit(ref: weakref.ref[ScoreWriter]) -> None:
    writer = ref()
    if writer is not None and writer._thread.isRunning():
        writer._stopping = True
        writer._queue.put(None)
        writer._go.set()
        writer._thread.wait(5000)


def _split(entry: WriteEntry) -> list[WriteEntry]:
    """An entry as the writer commits it: its scores together, then its clears together
    (the undo of "rest of region = 0" is one transaction), each part whole or not at all."""
    if entry.note is not None:
        return [entry]
    sets = {a: v for a, v in entry.values.items() if v is not None}
    clears = {a: v for a, v in entry.values.items() if v is None}
    if not sets or not clears:
        return [entry]
    return [replace(entry, values=sets), replace(entry, values=clears)]


def _message(exc: BaseException) -> str:
    """The text shown for a failed entry; facade errors are written for the reader already."""
    if isinstance(exc, ScorerError):
        return str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
