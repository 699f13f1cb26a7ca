"""The reading window's time events on their way to the facade, written by a thread of their own.

The window puts ``case.closed`` and ``image.viewed`` events here and goes on: a worker thread
writes whatever has gathered in one ``log_events`` call, so the UI thread never waits for the
database or the server. A write that fails (the session locked at the facade, the server away)
is kept and tried again after :data:`RETRY_S`, never raised at the reader; events of a session
that has ended are dropped (the facade will never take them). ``flush`` waits for everything
queued so far (the lock and the window's closing use it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

#: A time event for the facade's ``log_events``: kind, subject code, details.
TimeEvent = tuple[str, str, dict[str, Any] | None]

#: Seconds before a failed write is tried again.
RETRY_S = 5.0


class EventQueue:
    """Time events waiting for the facade's ``log_events(session, events, trial)``, written
    in batches by a daemon thread (see the module). ``written`` counts events stored,
    ``failures`` failed writes, ``dropped`` events of an ended session."""

    def __init__(
        self, log: Callable[..., Any] | None, session: Any, trial: str, retry_s: float = RETRY_S
    ) -> None:
        self._log = log
        self._session = session
        self._trial = trial
        self.retry_s = retry_s
        self._pending: list[TimeEvent] = []
        self._busy = False
        self._flushing = 0  # flushes waiting: a failed write is retried at once for them
        self._stopped = False
        self._attempts = 0
        self._cond = threading.Condition()
        self.written = self.failures = self.dropped = 0
        self.writer_threads: set[str] = set()  # names of the threads that wrote (for tests)
        self._thread: threading.Thread | None = None

    def put(self, events: Sequence[TimeEvent]) -> None:
        """Queue ``events`` for the worker (returns at once)."""
        if not events or self._log is None:
            return
        with self._cond:
            if self._stopped:
                return
            self._pending.extend(events)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="scorer-time-events", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        """Events not yet written."""
        with self._cond:
            return len(self._pending) + (1 if self._busy else 0)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every event queued so far is written (True), or a write has failed or
        ``timeout_s`` passed (False). A failed write is tried at once, not after the pause."""
        with self._cond:
            attempts = self._attempts
            self._flushing += 1
            self._cond.notify_all()
            try:
                self._cond.wait_for(
                    lambda: (not self._pending and not self._busy) or self._attempts > attempts + 1,
                    timeout_s,
                )
            finally:
                self._flushing -= 1
            return not self._pending and not self._busy

    def close(self, timeout_s: float = 5.0) -> bool:
        """Flush, then stop the worker (events put later are ignored). True when all got out."""
        ok = self.flush(timeout_s)
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        return ok

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._pending) or self._stopped)
                if not self._pending:
                    return
                batch, self._pending = self._pending, []
                self._busy = True
            ok = self._write(batch)
            with self._cond:
                self._busy = False
                self._attempts += 1
                if not ok:
                    if getattr(self._session, "closed", False):
                        self.dropped += len(batch)  # the facade will never take them
                    else:
                        self._pending[:0] = batch  # in order, before anything newer
                        self._cond.notify_all()
                        self._cond.wait_for(
                            lambda: self._flushing > 0 or self._stopped, self.retry_s
                        )
                        if self._stopped:
                            return
                self._cond.notify_all()

    def _write(self, batch: list[TimeEvent]) -> bool:
        """One ``log_events`` call on this thread; False when it failed (kept for a retry)."""
        assert self._log is not None
        self.writer_threads.add(threading.current_thread().name)
        try:
            self._log(self._session, batch, self._trial)
        except Exception:  # any failure: kept and retried, never raised at the reader
            self.failures += 1
            return False
        self.written += len(batch)
        return True
