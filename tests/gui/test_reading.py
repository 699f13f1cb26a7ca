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
