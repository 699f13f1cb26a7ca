"""The time a reader spends on each case and each film, for the facade's event log.

Films are recorded as ``image.viewed`` at every film change and at least every
:data:`RECORD_INTERVAL_S` while a film is on screen, each with the seconds since that film's
last record and its magnification when recorded (its zoom over the zoom that fits the whole
film in its pane), so a session that is killed loses at most that interval of viewing time.
Every event goes through an :class:`~scorer.gui.event_queue.EventQueue`: the UI thread only
counts and queues.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer

from scorer.gui.case_view import CaseView, FilmClock
from scorer.gui.event_queue import EventQueue, TimeEvent

__all__ = ["RECORD_INTERVAL_S", "CaseTimeLog", "TimeEvent"]

#: The longest a film on screen goes unrecorded (seconds); a test may shorten it before the
#: window is made.
RECORD_INTERVAL_S = 30.0


class CaseTimeLog(QObject):
    """The seconds the case on screen is open and each of its films is shown, logged at the
    facade as ``case.closed`` and ``image.viewed`` events (what the coordinator's progress and
    the monitor's sessions add up). A facade without ``log_events`` logs nothing.

    ``parent`` is the reading window: its ``current_code`` is the case on screen; the films
    on screen and their magnifications are ``case_view``'s."""

    def __init__(
        self, facade: object, session: Any, trial: str, case_view: CaseView, parent: Any
    ) -> None:
        super().__init__(parent)
        self._ws = facade
        self._session = session
        self._trial = trial
        self._film_clock: FilmClock = case_view.film_clock
        self.queue = EventQueue(getattr(facade, "log_events", None), session, trial)
        self.since: float | None = None  # when the case on screen was shown (or unlocked)
        self.current: Callable[[], str | None] = lambda: getattr(parent, "current_code", None)
        self.magnifications: Callable[[], dict[str, float]] = lambda: film_magnifications(
            case_view
        )
        self._zoom: dict[str, float] = {}  # the last magnification seen of each film
        self._film_clock.changed = self._films_changed
        case_view.viewChanged.connect(lambda _letter: self.sample_zoom())
        self.timer = QTimer(self)
        self.timer.setInterval(max(50, int(RECORD_INTERVAL_S * 1000)))
        self.timer.timeout.connect(self.record_films)
        self.timer.start()

    def start(self) -> None:
        """The case on screen is shown (or the session unlocked): its clock starts."""
        self.since = time.monotonic()

    def sample_zoom(self) -> None:
        """Note the magnification of every film on screen (after a zoom, or films shown)."""
        self._zoom.update(self.magnifications())

    def _films(self, code: str | None) -> list[TimeEvent]:
        """The ``image.viewed`` events of case ``code`` since each film's last record."""
        films = self._film_clock.take()
        if code is None:
            return []
        return [
            (
                "image.viewed",
                image,
                {"seconds": seconds, "case_code": code, "zoom": self._zoom.get(image, 1.0)},
            )
            for image, seconds in films.items()
            if seconds > 0
        ]

    def _films_changed(self) -> None:
        """Other films are on screen: record the ones that were (before their magnification
        is forgotten), then note the new ones'."""
        self.queue.put(self._films(self.current()))
        self.sample_zoom()

    def record_films(self) -> None:
        """Record the films on screen now (the timer's tick: at least every interval)."""
        self.sample_zoom()
        self.queue.put(self._films(self.current()))

    def take(self, code: str | None) -> list[TimeEvent]:
        """The case.closed and image.viewed events of case ``code``, the one on screen, since
        it was shown (the clocks restart)."""
        since = self.since
        self.since = None
        self.sample_zoom()
        films = self._films(code)
        if code is None or since is None:
            return films
        return [("case.closed", code, {"seconds": round(time.monotonic() - since, 1)}), *films]

    def log(self, code: str | None, *, wait: bool = False, locked: bool = False) -> None:
        """Log the time on case ``code`` when leaving it (queued), or when closing the window
        (``wait``: written before returning, and not at all while ``locked``)."""
        events = self.take(code)
        if wait and locked:
            return
        self.queue.put(events)
        if wait:
            self.queue.flush()

    def write(self, events: list[TimeEvent], timeout_s: float = 5.0) -> bool:
        """Queue ``events`` and wait until everything queued is written (the lock's task calls
        it before locking the session at the facade: a locked session logs nothing)."""
        self.queue.put(events)
        return self.queue.flush(timeout_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        """The window is going: no more records; what is queued is written first."""
        self.timer.stop()
        self.queue.close(timeout_s)


def film_magnifications(case_view: Any) -> dict[str, float]:
    """The magnification of each film on screen in ``case_view``'s panes, by image code: its
    zoom over the zoom that fits the whole film in the pane (1 = fitted), to 2 decimals."""
    out: dict[str, float] = {}
    for panel in case_view.panels.values():
        shown, model = panel.shown, panel.model
        if shown is None or model.image is None:
            continue
        fit = model.fit_zoom()
        if fit > 0:
            out[shown.image] = round(model.view.zoom / fit, 2)
    return out
