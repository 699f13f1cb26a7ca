"""The grade atlas: every grade of the active area's feature, drawn, worded and cited; it
follows the grid, G opens and closes it, and its drawings are made off the UI thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from scorer.core.methods import Area, get_method
from scorer.gui.grade_atlas import CHECK_NOTE, GradeAtlas
from scorer.gui.reading import ReadingWindow, layout_settings
from scorer.gui.sample_case import (
    SAMPLE_READER_PASSWORD,
    SampleReading,
    build_sample_workspace,
)
from scorer.imaging.grade_drawings import grade_drawings


def _open(qtbot: QtBot, method_id: str, area: Area) -> GradeAtlas:
    method = get_method(method_id)
    atlas = GradeAtlas()
    qtbot.addWidget(atlas)
    atlas.show_area(method, method.area(area))
    with qtbot.waitSignal(atlas.drawingsShown, timeout=60000):
        atlas.show()
    return atlas


@pytest.mark.parametrize(
    ("method_id", "area", "grades"),
    [
        ("svh", Area("LH", "MCP2", "ERO"), range(6)),
        ("svh", Area("RF", "MTP3", "ERO"), range(6)),  # per side, 0-5
        ("svh", Area("RH", "PIP4", "JSN"), range(5)),
        ("larsen1995", Area("LF", "MTP2", "LAR"), range(6)),
    ],
)
def test_every_grade_is_drawn_worded_and_cited(
    qtbot: QtBot, method_id: str, area: Area, grades: Iterable[int]
) -> None:
    atlas = _open(qtbot, method_id, area)
    method = get_method(method_id)
    f = method.features[area.feature]
    assert sorted(atlas.shown_grades) == list(grades)
    for grade, (wording, source) in atlas.shown_grades.items():
        assert f.grades[grade] in wording and f"<b>{grade}</b>" in wording
        assert f.sources[grade] in source  # the citation from the method file, per grade
        if f.check:
            assert "to be checked" in source
        card = atlas.cards[grade]
        pm = card.picture.pixmap()
        assert not pm.isNull() and pm.width() >= 200, (grade, pm.size())
    assert atlas.note.isVisibleTo(atlas) == f.check
    if f.check:
        assert atlas.note.text() == CHECK_NOTE
    if area.kind == "foot" and area.feature == "ERO":
        assert "each side (proximal and distal) graded 0–5" in atlas.subtitle.text()


def test_the_drawings_grow_with_the_window(qtbot: QtBot) -> None:
    atlas = _open(qtbot, "svh", Area("LH", "MCP3", "JSN"))
    atlas.resize(540, 700)
    qtbot.waitUntil(lambda: atlas.columns() == 2)
    small = atlas.cards[0].picture.pixmap().width()
    atlas.resize(730, 900)
    qtbot.waitUntil(lambda: atlas.cards[0].picture.pixmap().width() > small + 50)
    assert atlas.columns() == 2
    # Wider still: more grades side by side, each still at a readable size.
    atlas.resize(1400, 900)
    qtbot.waitUntil(lambda: atlas.columns() >= 4)
    for card in atlas.cards.values():
        assert card.picture.pixmap().width() >= 200


def test_opening_it_does_not_wait_for_the_drawings(qtbot: QtBot) -> None:
    made_on: list[int] = []
    release = threading.Event()

    def watched(area: Area, grades: Iterable[int]) -> Mapping[int, NDArray[np.uint8]]:
        made_on.append(threading.get_ident())
        release.wait(30)  # held until the UI thread has shown the atlas and answered
        return grade_drawings(area, grades)

    method = get_method("svh")
    atlas = GradeAtlas(draw=watched)
    qtbot.addWidget(atlas)
    atlas.show_area(method, method.area(Area("LH", "PIP2", "ERO")))
    started = time.perf_counter()
    atlas.show()
    QTest.qWait(50)
    took = time.perf_counter() - started
    # The wording is there, the drawings are still being made, and the UI thread is free.
    assert len(atlas.cards) == 6 and atlas.cards[0].picture.text() == "drawing…"
    assert took < 1.0
    with qtbot.waitSignal(atlas.drawingsShown, timeout=60000):
        release.set()
    assert made_on and made_on[0] != threading.get_ident()
    assert not atlas.cards[0].picture.pixmap().isNull()


@pytest.fixture(scope="module")
def reading(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SampleReading]:
    folder = tmp_path_factory.mktemp("atlas-reading")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SCORER_DATA_DIR", str(folder / "data"))
        env.setenv("SCORER_CONFIG", str(folder / "no-site-config.toml"))
        env.delenv("SCORER_DB", raising=False)
        sample = build_sample_workspace(folder / "trial", patients=1, pixel_mm=1.0)
    yield sample
    sample.workspace.close()


def test_g_opens_and_closes_it_and_it_follows_the_grid(
    qtbot: QtBot, reading: SampleReading, tmp_path: Path
) -> None:
    window = ReadingWindow(
        reading.workspace, reading.session, reading.trial, settings=layout_settings(tmp_path)
    )
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.grid is not None and window.model is not None, timeout=30000)
    assert window.grid is not None and window.model is not None
    atlas, table, model = window.grade_atlas, window.grid.table, window.model
    table.setFocus()
    assert not atlas.isVisible()
    with qtbot.waitSignal(atlas.drawingsShown, timeout=60000):
        QTest.keyClick(table, Qt.Key.Key_G)
    assert atlas.isVisible()
    assert atlas.area is not None and atlas.area.area == model.current_area
    assert sorted(atlas.shown_grades) == list(range(6))  # svh erosion of a hand joint
    # The focus stays in the grid: grades typed now go to the grid, and the atlas follows.
    assert table.hasFocus() or not window.isActiveWindow()
    first = model.current_area
    QTest.keyClick(table, Qt.Key.Key_Down)
    assert model.current_area != first
    assert atlas.area.area == model.current_area
    assert str(model.current_area) in atlas.title.text()
    # To the first narrowing area: the atlas shows narrowing's five grades.
    jsn_row = next(i for i, a in enumerate(model.areas) if a.feature == "JSN")
    model.set_current(jsn_row, model.col)
    assert atlas.area.area.feature == "JSN"
    assert sorted(atlas.shown_grades) == list(range(5))
    QTest.keyClick(table, Qt.Key.Key_G)
    assert not atlas.isVisible()
    # The View menu has it too, with its key.
    assert atlas.toggle_action is not None
    assert atlas.toggle_action.shortcut().toString() == "G"
    view = [a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == "View"]
    assert view and atlas.toggle_action in view[0].actions()
    # Locking the session hides it.
    atlas.toggle_action.trigger()
    assert atlas.isVisible()
    window.lock_session(by_user=True)
    assert not atlas.isVisible()
    assert window.unlock_dialog is not None
    window.unlock_dialog.password.setText(SAMPLE_READER_PASSWORD)
    with qtbot.waitSignal(window.sessionUnlocked, timeout=20000):
        window.unlock_dialog.submit()
    assert not atlas.isVisible()  # it opens again only when asked
    qtbot.waitUntil(lambda: len(window.tasks) == 0, timeout=20000)
