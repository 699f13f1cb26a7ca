"""The time a reader spends on each case and each film, for the facade's event log."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from scorer.gui.case_view import FilmClock
from scorer.gui.tasks import KeptTasks

#: An event for the facade's ``log_events``: kind, subject code, details.
TimeEvent = tuple[str, str, dict[str, Any] | None]


class CaseTimeLog:
    """The seconds the case on screen is open and each of its films is shown, logged at the
    facade as ``case.closed`` and ``image.viewed`` events (what the coordinator's progress and
    the monitor's sessions add up). A facade without ``log_events`` logs nothing."""

    def __init__(
        self, facade: object, session: Any, trial: str, tasks: KeptTasks, film_clock: FilmClock
    ) -> None:
        self._ws = facade
        self._session = session
        self._trial = trial
        self._tasks = tasks
        self._film_clock = film_clock
        self.since: float | None = None  # when the case on screen was shown (or unlocked)

    def start(self) -> None:
        """The case on screen is shown (or the session unlocked): its clock starts."""
        self.since = time.monotonic()

    def take(self, code: str | None) -> list[TimeEvent]:
        """The case.closed and image.viewed events of case ``code``, the one on screen, since
        it was shown (the clocks restart)."""
        since = self.since
        self.since = None
        films = self._film_clock.take()
        if code is None or since is None:
            return []
        events: list[TimeEvent] = [
            ("case.closed", code, {"seconds": round(time.monotonic() - since, 1)})
        ]
        events += [
            ("image.viewed", image, {"seconds": seconds, "case_code": code})
            for image, seconds in films.items()
            if seconds > 0
        ]
        return events

    def log(self, code: str | None, *, wait: bool = False, locked: bool = False) -> None:
        """Log the time on case ``code`` when leaving it (on a worker), or when closing the
        window (``wait``: done before returning, and not at all while ``locked``)."""
        events = self.take(code)
        log = getattr(self._ws, "log_events", None)
        if not events or log is None or (wait and locked):
            return
        if not wait:
            self._tasks.run(log, self._session, events, self._trial)
            return
        self.write(events)

    def write(self, events: list[TimeEvent]) -> None:
        """Log ``events`` now, on the calling thread (a session that has ended logs nothing)."""
        log = getattr(self._ws, "log_events", None)
        if not events or log is None:
            return
        from scorer.workspace import ScorerError

        with contextlib.suppress(ScorerError):
            log(self._session, events, self._trial)
