"""Lock, log out and quit on the coordinator's desk and the monitor's window, and the question
closing a window asks (the desk, the monitor's window and the reading window used to quit the
application at once)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox
from pytestqt.qtbot import QtBot

from scorer.gui.monitor import MonitorWindow
from scorer.gui.reading import ReadingWindow, layout_settings
from scorer.gui.sample_case import build_sample_workspace
from scorer.gui.workstation import Workstation
from tests.gui.test_desk import built, open_desk  # noqa: F401  (built: the fixture)

COORD_PASSWORD = "Willow-Compass-2024"  # the desk sample's coordinator


class WindowManagerClose(QCloseEvent):
    """The close a window system sends when the person clicks the title bar's close
    (spontaneous; the offscreen platform has no title bar to click)."""

    def spontaneous(self) -> bool:
        return True


def close_by_hand(window: QMainWindow) -> QCloseEvent:
    """The title bar's close: the window system's close event, sent to the window."""
    event = WindowManagerClose()
    QApplication.sendEvent(window, event)
    return event


def question_of(window: Any) -> QMessageBox:
    box = window.session_actions.question
    assert isinstance(box, QMessageBox) and box.isVisible()
    return box


def menu_actions(window: QMainWindow) -> dict[str, str]:
    """The Session menu's actions: text -> shortcut."""
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Session")
    return {a.text(): a.shortcut().toString() for a in menu.actions()}


def test_closing_the_desk_asks_and_stay_is_the_default(
    qtbot: QtBot,
    built: tuple[Any, Any, str, Path],  # noqa: F811
) -> None:
    ws, coord, trial, _ = built
    window = open_desk(qtbot, ws, coord, trial)
    assert menu_actions(window) == {"Lock": "Ctrl+L", "Log out": "", "Quit": "Ctrl+Q"}
    event = close_by_hand(window)
    assert not event.isAccepted()
    box = question_of(window)
    assert box.text() == "Log out and quit?"
    assert box.defaultButton().objectName() == "stay"
    QTest.keyClick(box, Qt.Key.Key_Escape)  # Escape stays, as the default button does
    qtbot.waitUntil(lambda: not box.isVisible(), timeout=5000)
    assert window.isVisible() and not window.closed and not coord.closed
    # Quit (Ctrl+Q) asks the same; "Log out" ends the session and says so.
    QTest.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    box = question_of(window)
    with qtbot.waitSignal(window.loggedOut, timeout=5000):
        next(b for b in box.buttons() if b.objectName() == "logOutOnly").click()
    assert coord.closed and window.closed and not window.isVisible()


def test_the_desk_locks_with_ctrl_l_and_the_password_unlocks_it(
    qtbot: QtBot,
    built: tuple[Any, Any, str, Path],  # noqa: F811
) -> None:
    ws, coord, trial, _ = built
    window = open_desk(qtbot, ws, coord, trial)
    QTest.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    dialog = window.session_actions.unlock_dialog
    assert dialog is not None and dialog.isVisible()
    assert not window.tabs.isVisible() and not window.timer.isActive()
    qtbot.waitUntil(lambda: coord.locked, timeout=10000)  # the lock reached the facade
    QTest.keyClicks(dialog.password, "Not-the-password-1")
    QTest.keyClick(dialog.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: dialog.error.isVisible(), timeout=10000)
    assert "wrong password" in dialog.error.text() and not window.tabs.isVisible()
    QTest.keyClicks(dialog.password, COORD_PASSWORD)
    QTest.keyClick(dialog.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.tabs.isVisible(), timeout=10000)
    assert not coord.locked and window.timer.isActive()
    assert window.session_actions.unlock_dialog is None


def test_the_desks_log_out_brings_the_log_in_back(
    qtbot: QtBot,
    built: tuple[Any, Any, str, Path],  # noqa: F811
) -> None:
    ws, _coord, _trial, _ = built
    station = Workstation(ws, username="cora")
    opened: list[Any] = []
    finished: list[bool] = []
    station.deskOpened.connect(opened.append)
    station.finished.connect(lambda: finished.append(True))
    station.start()
    login = station.login_dialog
    assert login is not None
    qtbot.addWidget(login)
    QTest.keyClicks(login.password, COORD_PASSWORD)
    QTest.keyClick(login.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(opened), timeout=20000)
    desk = opened[0]
    session = desk.session
    desk.session_actions.logout_action.trigger()
    qtbot.waitUntil(lambda: station.login_dialog is not login, timeout=10000)
    again = station.login_dialog
    assert again is not None and again.isVisible()
    qtbot.addWidget(again)
    assert session.closed and not finished  # the application goes on, at the log-in


def test_closing_the_monitor_asks_and_log_out_and_quit_ends_the_session(
    qtbot: QtBot,
    built: tuple[Any, Any, str, Path],  # noqa: F811
) -> None:
    ws, _coord, _trial, _ = built
    admin = ws.accounts.login("ada", "Sunflower-Meadow-7")
    ws.accounts.add_user(admin, "mona", "Mona Monitor", "monitor", "Temporary-pass-0")
    mona = ws.accounts.login("mona", "Temporary-pass-0")
    ws.accounts.change_password(mona, "Temporary-pass-0", "Harbour-Lantern-2024")
    window = MonitorWindow(ws, mona, logout_on_close=True)
    qtbot.addWidget(window)
    window.show()
    assert menu_actions(window) == {"Lock": "Ctrl+L", "Log out": "", "Quit": "Ctrl+Q"}
    assert not close_by_hand(window).isAccepted()
    box = question_of(window)
    assert box.defaultButton().objectName() == "stay"
    next(b for b in box.buttons() if b.objectName() == "logOutAndQuit").click()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=5000)
    assert window.closed and mona.closed


def test_closing_the_reading_window_asks_too(
    qtbot: QtBot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    sample = build_sample_workspace(tmp_path / "trial", patients=1, visits=2, pixel_mm=1.0)
    window = ReadingWindow(
        sample.workspace,
        sample.session,
        sample.trial,
        settings=layout_settings(tmp_path / "ui"),
        logout_on_close=True,
    )
    # Not qtbot.addWidget: logging out deletes the window (deleteLater), and pytest-qt's
    # teardown would then close a deleted object whenever the deferred delete ran first.
    request.addfinalizer(lambda: window.close() if shiboken6.isValid(window) else None)
    window.show()
    qtbot.waitUntil(lambda: window.case_view.case is not None, timeout=30000)
    assert not close_by_hand(window).isAccepted()
    box = window.close_question.box
    assert isinstance(box, QMessageBox) and box.isVisible()
    assert box.text() == "Log out and quit?" and box.defaultButton().objectName() == "stay"
    next(b for b in box.buttons() if b.objectName() == "stay").click()
    assert window.isVisible() and not sample.session.closed
    assert not close_by_hand(window).isAccepted()
    box = window.close_question.box
    assert isinstance(box, QMessageBox)
    with qtbot.waitSignal(window.loggedOut, timeout=10000):
        next(b for b in box.buttons() if b.objectName() == "logOutOnly").click()
    qtbot.waitUntil(lambda: sample.session.closed, timeout=10000)
    qtbot.waitUntil(lambda: not shiboken6.isValid(window), timeout=10000)
    sample.workspace.close()
