"""When a reading session locks for inactivity, and how its lock and unlock reach the facade."""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication

from scorer.gui.case_time import CaseTimeLog, TimeEvent
from scorer.gui.tasks import KeptTasks

#: What counts as the reader's activity.
ACTIVITY = (QEvent.Type.KeyPress, QEvent.Type.MouseButtonPress, QEvent.Type.Wheel)


class LockingAccounts(Protocol):
    """What a session's lock needs of the workspace's accounts service."""

    def lock(self, s: Any) -> None: ...

    def unlock(self, s: Any, password: str) -> None: ...


class LockingFacade(Protocol):
    """What a session's lock needs of ``scorer.workspace.Workspace``."""

    @property
    def accounts(self) -> LockingAccounts: ...


class SessionLock(QObject):
    """A reading session's inactivity limit and its lock at the facade.

    Any key, click or wheel turn anywhere in the application is activity; ``idle`` is
    emitted once ``inactivity_s`` have passed without any (the window then locks). The
    lock is sent to the facade on a worker, after the time on the case is logged, and an
    unlock waits until the lock has got there.
    """

    idle = Signal()

    def __init__(
        self,
        facade: LockingFacade,
        session: Any,
        time_log: CaseTimeLog,
        tasks: KeptTasks,
        inactivity_minutes: float | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._ws = facade
        self._session = session
        self._time_log = time_log
        self._tasks = tasks
        self._server_locked = threading.Event()  # set once a lock has reached the facade
        self._server_locked.set()
        if inactivity_minutes is None:
            inactivity_minutes = float(
                getattr(getattr(facade, "settings", None), "inactivity_minutes", 15.0)
            )
        self.inactivity_s = inactivity_minutes * 60.0
        self.last_input = time.monotonic()
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)
        self._idle_timer = QTimer(self)
        self._idle_timer.setInterval(max(250, min(30_000, int(self.inactivity_s * 1000 / 4))))
        self._idle_timer.timeout.connect(self._check_idle)
        self._idle_timer.start()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in ACTIVITY:
            self.last_input = time.monotonic()
        return False

    def _check_idle(self) -> None:
        if time.monotonic() - self.last_input > self.inactivity_s:
            self.idle.emit()

    def stop(self) -> None:
        """The window is going: no more watching for inactivity."""
        self._idle_timer.stop()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)

    def locking(self, server_side: bool) -> None:
        """The session is locking; ``server_side``: the facade has locked it already."""
        self._server_locked.clear()
        if server_side:
            self._server_locked.set()

    def lock_at_facade(self, events: list[TimeEvent]) -> None:
        """Log the time on the case, then lock the session at the facade, in one task (two
        tasks could run in either order, and a locked session logs nothing)."""
        self._tasks.run(self._log_then_lock, events)

    def _log_then_lock(self, events: list[TimeEvent]) -> None:
        try:
            self._time_log.write(events)
            self._ws.accounts.lock(self._session)
        finally:
            self._server_locked.set()

    def unlock(self, password: str) -> None:
        """On the unlock dialog's worker: unlock only once the lock has reached the facade
        (else a quick unlock could be overtaken by the lock, leaving the session locked)."""
        self._server_locked.wait(30)
        self._ws.accounts.unlock(self._session, password)

    def unlocked(self) -> None:
        """The session is unlocked: the inactivity limit counts from now."""
        self.last_input = time.monotonic()
