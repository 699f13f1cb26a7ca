"""The reading window over a real workspace: the reader's worklist (code, n of N, status and
nothing else), PageDown / PageUp through the cases, nothing identifying on screen, and the
layout remembered between sessions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractButton, QApplication, QLabel, QWidget
from pytestqt.qtbot import QtBot

from scorer.gui.reading import LAYOUT_FILE, WORKLIST_COLUMNS, ReadingWindow, layout_settings
from scorer.gui.sample_case import SampleReading, build_sample_workspace
from tests.gui.test_case_view import identifiers


@pytest.fixture(scope="module")
def reading(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SampleReading]:
    """Two synthetic patients (three visits, hands and feet) imported into a new database,
    with reader rita's worklist generated and rita logged in."""
    folder = tmp_path_factory.mktemp("reading")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SCORER_DATA_DIR", str(folder / "data"))
        env.setenv("SCORER_CONFIG", str(folder / "no-site-config.toml"))
        env.delenv("SCORER_DB", raising=False)
        sample = build_sample_workspace(folder / "trial", patients=2, pixel_mm=1.0)
    yield sample
    sample.workspace.close()


def open_window(qtbot: QtBot, reading: SampleReading, settings_dir: Path) -> ReadingWindow:
    window = ReadingWindow(
        reading.workspace, reading.session, reading.trial, settings=layout_settings(settings_dir)
    )
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.case_view.case is not None, timeout=30000)
    return window


def test_the_worklist_shows_code_progress_and_status_only(
    qtbot: QtBot, reading: SampleReading, tmp_path: Path
) -> None:
    window = open_window(qtbot, reading, tmp_path)
    table = window.worklist_table
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert headers == list(WORKLIST_COLUMNS)
    assert table.rowCount() == 2
    for row in range(2):
        code, progress, status = (table.item(row, c).text() for c in range(3))
        assert re.fullmatch(r"[A-Z0-9]{6,12}", code)
        assert progress == f"{row + 1} of 2"
        assert status in ("not started", "in progress", "signed")
    assert window.case_view.case is not None
    assert window.case_view.case.code == table.item(0, 0).text()
    assert sorted(window.case_view.panels) == ["A", "B", "C"]
    # Opening the case started its reads (on a worker thread) and the row says so.
    qtbot.waitUntil(lambda: table.item(0, 2).text() == "in progress", timeout=10000)
    opened = window.opened[table.item(0, 0).text()]
    assert sorted(opened.reads) == ["A", "B", "C"]


def test_page_down_and_up_move_through_the_cases(
    qtbot: QtBot, reading: SampleReading, tmp_path: Path
) -> None:
    window = open_window(qtbot, reading, tmp_path)
    codes = [r["code"] for r in window.rows]
    qtbot.waitUntil(lambda: window.preparer.is_ready(codes[1]), timeout=30000)
    QTest.keyClick(window.case_view.active_viewer(), Qt.Key.Key_PageDown)
    assert window.case_view.case is not None and window.case_view.case.code == codes[1]
    assert window.position_label.text() == "Case 2 of 2"
    assert not window.next_action.isEnabled()
    QTest.keyClick(window.case_view.active_viewer(), Qt.Key.Key_PageUp)
    assert window.case_view.case.code == codes[0]
    assert window.preparer.decodes_on_ui_thread() == 0


def test_nothing_on_screen_identifies_patient_visit_or_date(
    qtbot: QtBot, reading: SampleReading, tmp_path: Path
) -> None:
    window = open_window(qtbot, reading, tmp_path)
    window.case_view.step_page()  # the feet films too
    texts = [*window.case_view.all_text(), window.windowTitle()]
    texts.append(window.statusBar().currentMessage())
    for widget in window.findChildren(QWidget):
        if isinstance(widget, QAbstractButton | QLabel):
            texts.append(widget.text())
        texts.append(widget.toolTip())
    texts += [a.text() for a in window.findChildren(QAction)]
    table = window.worklist_table
    texts += [table.item(r, c).text() for r in range(table.rowCount()) for c in range(3)]
    secrets = identifiers(reading.films) | {"Rita", "Reader", reading.trial}
    for text in filter(None, texts):
        for secret in secrets:
            assert secret.lower() not in text.lower(), (secret, text)


def test_the_layout_is_remembered(qtbot: QtBot, reading: SampleReading, tmp_path: Path) -> None:
    window = open_window(qtbot, reading, tmp_path)
    window.resize(790, 560)  # the offscreen screen is 800 x 600
    window.splitter.setSizes([150, 800, 160])
    qtbot.wait(200)  # let the layout settle
    size, sizes = window.size(), window.splitter.sizes()
    assert sizes[0] < 200  # narrower than the worklist would make itself
    window.case_view.set_sync(True)
    window.close()  # saves the layout
    assert (tmp_path / LAYOUT_FILE).exists()
    again = open_window(qtbot, reading, tmp_path)
    assert again.size() == size
    assert again.splitter.sizes() == sizes
    assert again.case_view.sync
    again.worklist_action.setChecked(False)
    again.close()
    third = open_window(qtbot, reading, tmp_path)
    assert not third.worklist_panel.isVisible() and not third.worklist_action.isChecked()


def test_by_default_the_layout_lives_beside_the_local_cache(
    qtbot: QtBot, reading: SampleReading
) -> None:
    window = ReadingWindow(reading.workspace, reading.session, reading.trial)
    qtbot.addWidget(window)
    expected = reading.workspace.images.cache_dir.parent / LAYOUT_FILE
    assert Path(window.settings.fileName()) == expected


def test_the_light_theme_is_optional_and_remembered(
    qtbot: QtBot, reading: SampleReading, tmp_path: Path
) -> None:
    window = open_window(qtbot, reading, tmp_path)
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    style_sheet, palette = app.styleSheet(), app.palette()
    try:
        window.light_action.setChecked(True)
        assert "Light theme" in app.styleSheet()
        assert window.settings.value("ui/theme") == "light"
        window.light_action.setChecked(False)
        assert "Reading-room theme" in app.styleSheet()
        assert window.settings.value("ui/theme") == "dark"
    finally:
        app.setStyleSheet(style_sheet)
        app.setPalette(palette)


def test_a_readers_first_session_opens_maximised_then_as_they_left_it(
    qtbot: QtBot, reading: SampleReading, tmp_path: Path
) -> None:
    window = open_window(qtbot, reading, tmp_path)
    assert window.layout_memory.first_session
    qtbot.waitUntil(window.isMaximized)
    screen = window.screen().availableGeometry()
    assert window.frameGeometry().size() == screen.size()
    window.showNormal()
    window.resize(700, 500)
    qtbot.waitUntil(lambda: window.size().width() == 700)
    window.close()
    again = open_window(qtbot, reading, tmp_path)
    assert not again.layout_memory.first_session
    assert not again.isMaximized() and again.width() == 700


def test_each_reader_keeps_their_own_layout(qtbot: QtBot, tmp_path: Path) -> None:
    """Two readers on one workstation: each finds the window's size, the panels' sizes, the
    worklist and sync as they left them; the theme is the workstation's."""
    from PySide6.QtWidgets import QMainWindow, QSplitter

    from scorer.gui.case_view import CaseView
    from scorer.gui.reading_layout import ReadingLayout
    from scorer.gui.settings import ReaderLayout

    def session(user: str) -> tuple[QMainWindow, QSplitter, ReadingLayout]:
        window = QMainWindow()
        qtbot.addWidget(window)
        splitter = QSplitter(window)
        case_view = CaseView()
        for widget in (QLabel("worklist"), case_view, QLabel("scores")):
            splitter.addWidget(widget)
        window.setCentralWidget(splitter)
        worklist, light = QAction(window, checkable=True), QAction(window, checkable=True)
        settings = layout_settings(tmp_path)
        memory = ReadingLayout(settings, window, splitter, case_view, worklist, light, user)
        memory.restore()
        window.show()
        memory.restore_panels()
        return window, splitter, memory

    rita_window, rita_splitter, rita = session("rita")
    assert rita.first_session
    rita_window.showNormal()
    rita_window.resize(700, 500)  # within the offscreen screen's 800 x 600
    rita_splitter.setSizes([100, 400, 200])
    qtbot.waitUntil(lambda: rita_window.width() == 700)
    rita_sizes = rita_splitter.sizes()
    rita._case_view.set_sync(True)
    rita.save()
    rita_window.close()

    # a reader with an unusual user ID, on the same workstation: a first session of their own
    odd = "o'neil/2 [x]"
    odd_window, _, odd_memory = session(odd)
    assert odd_memory.first_session and not odd_memory._case_view.sync
    odd_window.showNormal()
    odd_window.resize(650, 450)
    qtbot.waitUntil(lambda: odd_window.width() == 650)
    odd_memory._worklist_action.setChecked(False)
    odd_memory.save()
    odd_window.close()

    back_window, back_splitter, back = session("rita")
    assert not back.first_session and back_window.size().toTuple() == (700, 500)
    assert back.panels_restored and back_splitter.sizes() == rita_sizes
    assert back._case_view.sync and back._worklist_action.isChecked()
    stored = ReaderLayout(layout_settings(tmp_path), odd)
    assert stored.geometry is not None and not stored.worklist and not stored.sync
    groups = layout_settings(tmp_path).childGroups()
    assert groups == ["readers"]  # nothing per reader outside their group


def test_at_1920x1080_each_film_of_a_paired_case_gets_twice_the_area_of_a_row(
    qtbot: QtBot, reading: SampleReading, tmp_path: Path
) -> None:
    """Issue 29: the three visits' landscape both-hands films, arranged for their shape, each
    get at least twice the area on screen they got in the single row of visit panes (the
    layout before), in the same 1920 x 1080 window."""
    from scorer.gui.case_layout import Arrangement
    from tests.gui.test_case_view import film_area_on_screen

    window = open_window(qtbot, reading, tmp_path)
    window.setWindowState(Qt.WindowState.WindowNoState)
    window.resize(1920, 1080)
    view = window.case_view
    qtbot.waitUntil(lambda: view.width() > 1100 and view.arrangement == Arrangement(2, 2))
    qtbot.wait(100)
    panels = list(view.panels.values())
    assert len(panels) == 3 and all(p.isVisible() and p.model.image is not None for p in panels)
    arranged = [film_area_on_screen(p) for p in panels]
    view.force_arrangement(Arrangement(3, 1))
    qtbot.waitUntil(lambda: len({p.y() for p in panels}) == 1 and panels[0].width() < 450)
    row = [film_area_on_screen(p) for p in panels]
    assert all(new >= 2 * old for new, old in zip(arranged, row, strict=True)), (arranged, row)


def test_v_in_the_grid_shows_the_visit_being_scored_alone_and_v_brings_the_others_back(
    qtbot: QtBot, reading: SampleReading, tmp_path: Path
) -> None:
    window = open_window(qtbot, reading, tmp_path)
    qtbot.waitUntil(lambda: window.grid is not None, timeout=30000)
    model, grid, view = window.model, window.grid, window.case_view
    assert model is not None and grid is not None
    window.setWindowState(Qt.WindowState.WindowNoState)
    window.resize(1920, 1080)  # room for every visit (not tabs)
    qtbot.waitUntil(lambda: not view.tabs_mode and view.width() > 1100)
    window.activateWindow()
    grid.table.setFocus()
    before = {letter: model.entry(letter, model.current_area) for letter in model.letters}
    QTest.keyClick(grid.table, Qt.Key.Key_V)
    assert view.one_visit
    shown = [letter for letter, panel in view.panels.items() if panel.isVisible()]
    assert shown == [model.current_letter]
    QTest.keyClick(grid.table, Qt.Key.Key_Tab)  # the next visit in the grid: shown alone
    assert [x for x, p in view.panels.items() if p.isVisible()] == [model.current_letter]
    assert view.panels[model.current_letter].letter_label.text() == model.current_letter
    QTest.keyClick(grid.table, Qt.Key.Key_V)
    assert not view.one_visit and all(p.isVisible() for p in view.panels.values())
    # V is the view's alone: nothing was entered in the grid
    assert {letter: model.entry(letter, model.current_area) for letter in model.letters} == before
