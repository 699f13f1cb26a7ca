"""Films on screen are recorded as the reader views them (issue 30, item 3): ``image.viewed`` at
every film change and at least every interval while a film is shown (the 30 s interval
shortened here), each with its seconds since the film's last record and its magnification;
written by a thread of the time log's own, never the UI thread; the lock writes what is queued
before it locks; a failed write is kept and written later, never raised at the reader."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from scorer.gui import case_time
from scorer.gui.event_queue import EventQueue
from scorer.gui.reading import ReadingWindow, layout_settings
from scorer.gui.sample_case import SAMPLE_READER, SampleReading, build_sample_workspace

COORDINATOR = ("cora", "Willow-Compass-2024")
INTERVAL_S = 0.4


class ThreadNotingReading:
    """The real reading service, noting the thread of every ``log_events`` call."""

    def __init__(self, reading: Any) -> None:
        self._reading = reading
        self.log_threads: list[int] = []

    def log_events(self, *args: Any) -> None:
        self.log_threads.append(threading.get_ident())
        self._reading.log_events(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reading, name)


class Facade:
    """The real workspace with its reading service's ``log_events`` calls noted."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self.reading = ThreadNotingReading(ws.reading)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)


@pytest.fixture
def reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SampleReading]:
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(case_time, "RECORD_INTERVAL_S", INTERVAL_S)
    sample = build_sample_workspace(tmp_path / "trial", patients=1, pixel_mm=1.0)
    yield sample
    sample.workspace.close()


def _viewed(ws: Any) -> list[Any]:
    coordinator = ws.accounts.login(*COORDINATOR)
    return [e for e in ws.oversight.events(coordinator, SAMPLE_READER) if e.session]


def test_films_are_recorded_at_each_change_and_each_interval_off_the_ui_thread(
    qtbot: QtBot, reading: SampleReading, tmp_path: Path
) -> None:
    facade = Facade(reading.workspace)
    window = ReadingWindow(
        facade, reading.session, reading.trial, settings=layout_settings(tmp_path / "layout")
    )
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.case_view.case is not None and window.grid is not None)
    hands = sorted(p.shown.image for p in window.case_view.panels.values() if p.shown)
    qtbot.wait(int(INTERVAL_S * 1000 * 3.5))
    t_change = time.monotonic()
    window.case_view.step_page(1)  # the feet: the hands are recorded at once
    feet = sorted(p.shown.image for p in window.case_view.panels.values() if p.shown)
    assert hands and feet and not set(hands) & set(feet)
    queue = window.time_log.queue
    qtbot.waitUntil(lambda: queue.pending == 0 and queue.written > 0, timeout=10000)
    written_at_change = time.monotonic() - t_change
    # Zoom one foot film in: later records of it say so.
    panel = next(p for p in window.case_view.panels.values() if p.shown)
    panel.model.zoom_at(2.0)
    qtbot.wait(int(INTERVAL_S * 1000 * 2.5))
    window.lock_session(by_user=True)
    qtbot.waitUntil(
        lambda: any(e.kind == "session.locked" for e in _viewed(reading.workspace)),
        timeout=10000,
    )
    events = _viewed(reading.workspace)
    kinds = [e.kind for e in events]
    locked_at = kinds.index("session.locked")
    viewed = [e for e in events if e.kind == "image.viewed"]
    for code in hands:
        records = [e for e in viewed if e.subject == code]
        # Shown ~3.5 intervals: recorded at every interval's tick and at the change.
        assert len(records) >= 3, (code, records)
        assert all(e.detail["seconds"] <= INTERVAL_S + 0.35 for e in records), records
        assert all(e.detail["zoom"] == 1.0 for e in records)  # fitted in its pane
    # The change was recorded at once (not at the next tick): the hands' last record came
    # within a fraction of the interval.
    assert written_at_change < INTERVAL_S + 1.0
    zoomed = [e for e in viewed if e.subject == panel.shown.image]
    assert zoomed and zoomed[-1].detail["zoom"] == 2.0, zoomed  # as it was at the record
    # The lock wrote what was queued first: every record is before the lock.
    assert max(i for i, e in enumerate(events) if e.kind == "image.viewed") < locked_at
    # Every write ran on the time log's thread, never the UI thread.
    ui = threading.get_ident()
    assert facade.reading.log_threads and ui not in facade.reading.log_threads
    assert queue.writer_threads == {"scorer-time-events"}
    window.close()


def test_a_failed_write_is_kept_and_written_later_never_raised(
    reading: SampleReading,
) -> None:
    ws = reading.workspace
    rows = ws.worklists.worklist(reading.session, reading.trial)
    case = ws.reading.open_case(reading.session, rows[0].code).code
    failing = [True]

    def log_events(s: Any, events: Any, trial: str) -> None:
        if failing[0]:
            raise ConnectionError("the server is away")
        ws.reading.log_events(s, events, trial)

    queue = EventQueue(log_events, reading.session, reading.trial, retry_s=0.1)
    queue.put([("image.viewed", "IMG1", {"seconds": 3.0, "case_code": case, "zoom": 1.5})])
    assert not queue.flush(1.0)  # not written: kept
    assert queue.failures >= 1 and queue.pending == 1
    failing[0] = False
    assert queue.flush(5.0) and queue.written == 1
    assert queue.close(1.0)
    (e,) = [e for e in _viewed(ws) if e.kind == "image.viewed"]
    assert (e.subject, e.detail) == ("IMG1", {"seconds": 3.0, "case_code": case, "zoom": 1.5})
