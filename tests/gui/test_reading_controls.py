"""The reading window's controls over a real workspace, with no side confusion and no lost
cursor: the joint map drawn with the sides each visit's film shows (films stored in the
conventional orientation, mirrored, and with a silent header, all through import and
de-identification), the reader's flip swapping the map too; ``S`` typed in the grid
synchronising the visits' zoom and pan; the cursor going to the redone area; the highlighted
pane always the visit being scored; "Flag to coordinator" on a key and in the menu; Log out
back to the log-in and Quit on ``Ctrl+Q``; and ``Ctrl+L``'s dialog saying the reader locked
the session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from scorer.core.methods import Area, get_method
from scorer.gui.reading import ReadingWindow, layout_settings
from scorer.gui.sample_case import (
    SAMPLE_READER,
    SAMPLE_READER_PASSWORD,
    SAMPLE_VISITS,
    SampleFilm,
    SampleReading,
    build_sample_workspace,
)
from scorer.gui.workstation import Workstation
from scorer.imaging.synthetic import render_feet_film, render_hands_film

SVH = get_method("svh")
NORMAL, MIRRORED, SILENT = ("L", "F"), ("R", "F"), ()
ORIENTATION_OF_VISIT = {
    SAMPLE_VISITS[0][0]: NORMAL,
    SAMPLE_VISITS[1][0]: MIRRORED,
    SAMPLE_VISITS[2][0]: SILENT,
}


def orient_films(films: list[SampleFilm]) -> None:
    """Visit W0 says the conventional ['L', 'F']; W24 is stored mirrored (pixels flipped
    left-right) and says ['R', 'F']; W52 has no Patient Orientation at all."""
    for film in films:
        ds = pydicom.dcmread(film.path)
        orientation = ORIENTATION_OF_VISIT[film.visit]
        if orientation == MIRRORED:
            pixels = ds.pixel_array
            ds.PixelData = np.ascontiguousarray(pixels[:, ::-1]).tobytes()
        if orientation:
            ds.PatientOrientation = list(orientation)
        else:
            del ds.PatientOrientation
        ds.save_as(film.path)


@pytest.fixture(scope="module")
def reading(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SampleReading]:
    """One synthetic patient (three visits, hands and feet, oriented as above) imported into a
    new database, reader rita's worklist generated and rita logged in."""
    folder = tmp_path_factory.mktemp("controls")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SCORER_DATA_DIR", str(folder / "data"))
        env.setenv("SCORER_CONFIG", str(folder / "no-site-config.toml"))
        env.delenv("SCORER_DB", raising=False)
        sample = build_sample_workspace(
            folder / "trial", patients=1, pixel_mm=1.0, before_import=orient_films
        )
    yield sample
    sample.workspace.close()


def open_window(qtbot: QtBot, sample: SampleReading, folder: Path, **kw: Any) -> ReadingWindow:
    window = ReadingWindow(
        sample.workspace, sample.session, sample.trial, settings=layout_settings(folder), **kw
    )
    qtbot.addWidget(window)
    window.resize(1400, 900)
    window.show()
    qtbot.waitUntil(
        lambda: (
            window.model is not None
            and window.grid is not None
            and window.case_view.case is not None
        ),
        timeout=30000,
    )
    return window


def right_side_column(region: str, columns: int, mirrored: bool) -> float:
    """The film column at the middle of the right hand (or foot): where the synthetic films
    draw it, flipped for a film stored mirrored."""
    render = render_hands_film if region == "RH" else render_feet_film
    image = render({}, 1, 1.0, noise=False)
    boxes = [box for area, box in image.boxes.items() if area.region == region]
    middle = float(np.mean([(box[1] + box[3]) / 2 for box in boxes]))
    assert middle < image.columns / 2  # the synthetic films are stored conventionally
    return columns - middle if mirrored else middle


def test_the_joint_map_shows_the_sides_each_visits_film_shows(
    qtbot: QtBot, reading: SampleReading, tmp_path: Path
) -> None:
    window = open_window(qtbot, reading, tmp_path)
    model, grid, view = window.model, window.grid, window.case_view
    assert model is not None and grid is not None
    joint_map = grid.joint_map
    seen: set[tuple[str, ...]] = set()
    for region in ("RH", "RF"):
        area = Area(region, "MCP3" if region == "RH" else "MTP3", "ERO")
        for col, letter in enumerate(model.letters):
            model.set_current(model.row_of(area), col)
            panel = view.panels[letter]
            assert view.active_viewer() is panel and panel.highlight
            film = panel.shown
            assert film is not None and region in film.regions
            image = film.radiograph
            assert image is not None
            # The orientation survived import and de-identification into the readers' copy.
            orientation = image.patient_orientation
            assert orientation in (NORMAL, MIRRORED, SILENT)
            seen.add(orientation)
            rows, cols = image.shape
            column = right_side_column(region, cols, mirrored=orientation == MIRRORED)
            for flipped in (False, True):
                film_x = panel.model.to_screen(column, rows / 2)[0] - panel.width() / 2
                at = joint_map.joint_position(area)
                assert at is not None
                map_x = at.x() - joint_map.width() / 2
                letter_x = joint_map.side_letter_rects()[region].center().x()
                where = (letter, orientation, flipped)
                assert abs(film_x) > 5, where
                assert (film_x < 0) == (map_x < 0) == (letter_x < joint_map.width() / 2), where
                # The patient's right on the viewer's left unless the film says otherwise.
                assert (film_x < 0) == ((orientation != MIRRORED) != flipped), where
                if not flipped:
                    QTest.keyClick(grid.table, Qt.Key.Key_H)  # the reader flips the film
                    assert panel.model.view.flip_h
            QTest.keyClick(grid.table, Qt.Key.Key_H)  # and back
            assert not panel.model.view.flip_h
    assert seen == {NORMAL, MIRRORED, SILENT}
    window.close()


def test_s_in_the_grid_synchronises_the_visits_and_the_highlight_follows_the_cursor(
    qtbot: QtBot, reading: SampleReading, tmp_path: Path
) -> None:
    window = open_window(qtbot, reading, tmp_path)
    model, grid, view = window.model, window.grid, window.case_view
    assert model is not None and grid is not None
    view.set_sync(False)
    grid.table.setFocus()
    # The highlighted pane is the visit being scored, whichever way the cursor moves.
    for key in (Qt.Key.Key_Right, Qt.Key.Key_Right, Qt.Key.Key_Left, Qt.Key.Key_Tab):
        QTest.keyClick(grid.table, key)
        lit = [letter for letter, panel in view.panels.items() if panel.highlight]
        assert lit == [model.current_letter], key
    # Clicking another visit's film makes it the visit being scored.
    other = next(letter for letter in model.letters if letter != model.current_letter)
    QTest.mouseClick(view.panels[other], Qt.MouseButton.LeftButton)
    assert model.current_letter == other
    assert [letter for letter, panel in view.panels.items() if panel.highlight] == [other]
    grid.table.setFocus()
    # S: zoom and pan together, as the README says.
    QTest.keyClick(grid.table, Qt.Key.Key_S)
    assert view.sync
    assert all(model.entry(letter, model.current_area) is None for letter in model.letters)
    for _ in range(3):
        QTest.keyClick(grid.table, Qt.Key.Key_Plus)
    scored = view.panels[model.current_letter].model.relative_geometry()
    assert scored[0] > 1.5  # zoomed in
    for letter, panel in view.panels.items():
        assert panel.model.relative_geometry() == pytest.approx(scored), letter
    QTest.keyClick(grid.table, Qt.Key.Key_S)
    assert not view.sync
    QTest.keyClick(grid.table, Qt.Key.Key_F)  # fit: the scored visit only, now
    fitted = view.panels[model.current_letter].model.relative_geometry()
    assert fitted[0] == pytest.approx(1.0)
    others = [p for letter, p in view.panels.items() if letter != model.current_letter]
    assert all(p.model.relative_geometry()[0] > 1.5 for p in others)
    window.close()


def test_after_redo_the_cursor_is_on_the_redone_area(
    qtbot: QtBot, reading: SampleReading, tmp_path: Path
) -> None:
    window = open_window(qtbot, reading, tmp_path)
    model, grid, view = window.model, window.grid, window.case_view
    assert model is not None and grid is not None
    area = Area("RF", "MTP2", "JSN")
    model.go_to_area(area, model.letters[1])
    QTest.keyClicks(grid.table, "2")
    assert model.entry(model.letters[1], area) is not None
    QTest.keyClick(grid.table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert model.entry(model.letters[1], area) is None
    # Somewhere else entirely: another visit, a hand area.
    model.go_to_area(Area("LH", "PIP3", "JSN"), model.letters[0])
    assert view.page is not None and view.page.group == "hands"
    QTest.keyClick(grid.table, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert model.entry(model.letters[1], area) is not None
    assert (model.current_area, model.current_letter) == (area, model.letters[1])
    assert grid.table_model is not None
    index = grid.table.currentIndex()
    assert grid.table_model.area_row(index.row()) == model.row_of(area)
    assert index.column() == 1
    # The films and the map follow: the feet, the redone visit highlighted.
    assert view.page is not None and view.page.group == "feet"
    assert grid.joint_map.pair == "foot"
    assert [letter for letter, p in view.panels.items() if p.highlight] == [model.letters[1]]
    qtbot.waitUntil(lambda: window.writer.pending_count == 0, timeout=60000)
    window.close()


def test_flag_to_coordinator_has_a_key_and_a_menu_item(
    qtbot: QtBot, reading: SampleReading, tmp_path: Path
) -> None:
    window = open_window(qtbot, reading, tmp_path)
    grid = window.grid
    assert grid is not None
    action = window.flag_action
    assert action.shortcut() == QKeySequence("Ctrl+F")
    case_menu = window.menuBar().actions()[0].menu()
    assert action in case_menu.actions()
    assert action.isEnabled()
    grid.table.setFocus()
    QTest.keyClick(grid.table, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    dialog = grid.flag_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.windowTitle() == "Flag to coordinator"
    # About the visit the cursor is in, unless the reader says otherwise.
    assert dialog.visit == grid.model.current_letter
    dialog.about.setCurrentIndex(dialog.about.findData("B"))
    on_screen = window.case_view.films_on_screen()
    assert on_screen
    QTest.keyClicks(dialog.text, "visit B may be another patient")
    with qtbot.waitSignal(grid.flagRaised, timeout=20000) as raised:
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    coordinator = reading.workspace.accounts.login("cora", "Willow-Compass-2024")
    flags = reading.workspace.coordination.flags(coordinator, reading.trial)
    sent = [f for f in flags if f.flag == raised.args[0]]
    assert [(f.case, f.message, f.letter) for f in sent] == [
        (window.current_code, "visit B may be another patient", "B")
    ]
    # The coordinator sees the images that were on screen, as the images they are.
    case_films = reading.workspace.images.case_images(reading.session, window.current_code)
    assert len(sent[0].images) == len(on_screen) and sent[0].visit is not None
    assert {f.image for films in case_films.values() for f in films} >= set(on_screen)
    # The reader sees that it waits, then the answer, on this case.
    label = grid.flag_answers
    qtbot.waitUntil(lambda: "waiting for the coordinator" in label.text(), timeout=20000)
    reading.workspace.coordination.answer_flag(
        coordinator, reading.trial, raised.args[0], "Checked: same patient"
    )
    window.flag_answers.refresh()
    qtbot.waitUntil(lambda: "coordinator: “Checked: same patient”" in label.text(), timeout=20000)
    assert label.isVisible()
    assert "answered your flag" in window.statusBar().currentMessage()
    # The menu item opens it too.
    dialog.close()
    action.trigger()
    assert grid.flag_dialog is not dialog and grid.flag_dialog.isVisible()
    grid.flag_dialog.reject()
    window.close()


def test_ctrl_l_says_the_reader_locked_the_session(
    qtbot: QtBot, reading: SampleReading, tmp_path: Path
) -> None:
    window = open_window(qtbot, reading, tmp_path)
    assert window.lock_action.shortcut() == QKeySequence("Ctrl+L")
    assert window.grid is not None
    with qtbot.waitSignal(window.sessionLocked, timeout=10000):
        QTest.keyClick(window.grid.table, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    dialog = window.unlock_dialog
    assert dialog is not None and dialog.isVisible()
    text = dialog.message.text()
    assert "You locked this session" in text
    assert "inactivity" not in text
    assert not window.flag_action.isEnabled()
    QTest.keyClicks(dialog.password, SAMPLE_READER_PASSWORD)
    with qtbot.waitSignal(window.sessionUnlocked, timeout=20000):
        QTest.keyClick(dialog.password, Qt.Key.Key_Return)
    assert window.flag_action.isEnabled()
    window.close()


def log_in(qtbot: QtBot, station: Workstation) -> ReadingWindow:
    opened: list[ReadingWindow] = []
    station.readingOpened.connect(opened.append)
    station.start()
    login = station.login_dialog
    assert login is not None
    qtbot.addWidget(login)
    QTest.keyClicks(login.password, SAMPLE_READER_PASSWORD)
    QTest.keyClick(login.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(opened), timeout=30000)
    window = opened[0]
    qtbot.waitUntil(lambda: window.grid is not None and window.case_view.case is not None)
    return window


def test_log_out_returns_to_the_log_in_and_ctrl_q_quits(
    qtbot: QtBot, reading: SampleReading
) -> None:
    station = Workstation(reading.workspace, username=SAMPLE_READER)
    finished: list[bool] = []
    station.finished.connect(lambda: finished.append(True))
    window = log_in(qtbot, station)
    first_login = station.login_dialog
    assert first_login is not None and not first_login.isVisible()
    case_menu = window.menuBar().actions()[0].menu()
    assert window.logout_action in case_menu.actions()
    assert window.quit_action in case_menu.actions()
    assert window.quit_action.shortcut() == QKeySequence("Ctrl+Q")
    QTest.keyClicks(window.grid.table, "1")  # typed, then saved before the session ends
    model = window.model
    assert model is not None
    with qtbot.waitSignal(window.loggedOut, timeout=20000):
        window.logout_action.trigger()
    assert model.pending == 0 and model.failed == 0
    login = station.login_dialog
    assert login is not None and login is not first_login and login.isVisible()
    qtbot.waitUntil(lambda: station.window is None, timeout=20000)
    assert not finished  # the log-in is up: the workstation goes on
    # Log in again; Ctrl+Q closes the window and ends the workstation.
    QApplication.processEvents()
    second = log_in(qtbot, station)
    assert second is not window
    second.activateWindow()
    second.grid.table.setFocus()
    QTest.keyClick(second.grid.table, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: bool(finished), timeout=20000)
    assert station.window is None
