"""Never waiting: films are opened on worker threads, the next case is prepared while one is
shown, and "next" draws the prepared case without decoding or querying on the UI thread."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

import scorer.imaging.radiograph as radiograph_module
from scorer.core.case_films import CaseFilm
from scorer.gui.prefetch import CasePreparer
from scorer.gui.reading import ReadingWindow, layout_settings
from scorer.gui.sample_case import SampleFilm
from tests.gui.conftest import FakeReadingDesk


@pytest.fixture
def pixel_decodes(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Every pixel decode (DICOM pixel data to stored values), as: was it on the UI thread?"""
    ui_thread = threading.get_ident()
    seen: list[bool] = []
    original = radiograph_module.stored_values

    def recorded(*args: Any, **kwargs: Any) -> Any:
        seen.append(threading.get_ident() == ui_thread)
        return original(*args, **kwargs)

    monkeypatch.setattr(radiograph_module, "stored_values", recorded)
    return seen


def test_the_preparer_opens_films_on_a_worker_thread(
    qtbot: QtBot,
    case_images: dict[str, list[CaseFilm]],
    tmp_path: Path,
    pixel_decodes: list[bool],
) -> None:
    preparer = CasePreparer(lambda _code: case_images, cache_dir=tmp_path / "cache")
    preparer.prepare("K1")
    assert preparer.is_pending("K1") and preparer.get("K1") is None  # returned at once
    with qtbot.waitSignal(preparer.prepared, timeout=20000) as signal:
        pass
    assert signal.args == ["K1"]
    case = preparer.get("K1")
    assert case is not None and sorted(case.visits) == ["A", "B", "C"]
    assert len(case.radiographs()) == 6
    calls = preparer.decode_calls
    assert len(calls) == 6  # each film once
    assert all(not c.on_ui_thread and c.thread_id != threading.get_ident() for c in calls)
    assert pixel_decodes and not any(pixel_decodes)
    shown: list[str] = []
    assert preparer.request("K1", lambda c: shown.append(c.code)) is True  # synchronous
    assert shown == ["K1"] and len(preparer.decode_calls) == 6


def test_a_film_that_cannot_be_opened_leaves_the_rest_of_the_case(
    qtbot: QtBot, case_images: dict[str, list[CaseFilm]], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"not a dicom file")
    images = {k: list(v) for k, v in case_images.items()}
    images["B"][0] = dataclasses.replace(images["B"][0], path=str(broken), sha256="0" * 64)
    preparer = CasePreparer(lambda _code: images, cache_dir=tmp_path / "cache")
    got: list[Any] = []
    preparer.request("K2", got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=20000)
    failed = [i for i in got[0].visits["B"] if i.radiograph is None]
    assert len(failed) == 1 and failed[0].error
    assert len(got[0].radiographs()) == 5


def test_a_case_that_cannot_be_listed_reports_the_failure(qtbot: QtBot) -> None:
    def refuse(_code: str) -> dict[str, list[CaseFilm]]:
        raise LookupError("no such case")

    preparer = CasePreparer(refuse)
    errors: list[str] = []
    preparer.request("K3", lambda _c: None, errors.append)
    qtbot.waitUntil(lambda: bool(errors), timeout=10000)
    assert errors == ["no such case"] and not preparer.is_pending("K3")


def test_next_case_is_drawn_from_the_prepared_state(
    qtbot: QtBot, sample_films: list[SampleFilm], tmp_path: Path, pixel_decodes: list[bool]
) -> None:
    desk = FakeReadingDesk(sample_films, tmp_path / "cache")
    window = ReadingWindow(desk, None, "T", settings=layout_settings(tmp_path))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.case_view.case is not None, timeout=20000)
    assert window.case_view.case is not None and window.case_view.case.code == "CASE1"
    # While case 1 is on screen, case 2 is prepared in the background.
    qtbot.waitUntil(lambda: window.preparer.is_ready("CASE2"), timeout=20000)
    prepared = window.preparer.get("CASE2")
    viewer = window.case_view.active_viewer()
    assert viewer is not None
    QTest.keyClick(viewer, Qt.Key.Key_PageDown)
    # Shown before any event is processed, from the films prepared in the background; the
    # only openings since are case 3's, being prepared on a worker now.
    assert window.case_view.case is prepared
    assert window.current_code == "CASE2"
    assert all(panel.model.image is not None for panel in window.case_view.panels.values())
    assert window.preparer.decodes_on_ui_thread() == 0
    assert not any(pixel_decodes)
    qtbot.waitUntil(lambda: window.preparer.is_ready("CASE3"), timeout=20000)
    QTest.keyClick(window.case_view.active_viewer(), Qt.Key.Key_PageUp)
    assert window.case_view.case.code == "CASE1"  # still prepared: drawn at once
    assert window.preparer.decodes_on_ui_thread() == 0
    assert not any(pixel_decodes)
    # The database is never queried on the UI thread either.
    qtbot.waitUntil(lambda: sum(name == "open_case" for name, _ in desk.calls) == 3)
    assert desk.calls and not any(on_ui for _, on_ui in desk.calls)
    assert {name for name, _ in desk.calls} == {"worklist", "case_images", "open_case"}


def test_without_prefetch_the_next_case_is_prepared_only_when_asked(
    qtbot: QtBot, sample_films: list[SampleFilm], tmp_path: Path
) -> None:
    desk = FakeReadingDesk(sample_films, tmp_path / "cache")
    window = ReadingWindow(desk, None, "T", settings=layout_settings(tmp_path), prefetch=False)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.case_view.case is not None, timeout=20000)
    assert not window.preparer.is_ready("CASE2") and not window.preparer.is_pending("CASE2")
    window.next_case()
    assert window.case_view.case is None  # "Preparing the case…" until it is ready
    assert all(p.placeholder for p in window.case_view.panels.values())
    qtbot.waitUntil(lambda: window.case_view.case is not None, timeout=20000)
    assert window.case_view.case is not None and window.case_view.case.code == "CASE2"
