"""A session ended by a change to its account (issue 27, item 5) takes the reading workstation
back to the log-in, which says why: the account disabled while the reader types, or its
password reset while the reader moves to the next case."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot
from shiboken6 import isValid

from scorer.gui.reading import ReadingWindow
from scorer.gui.sample_case import (
    SAMPLE_READER,
    SAMPLE_READER_PASSWORD,
    SampleReading,
    build_sample_workspace,
)
from scorer.gui.workstation import Workstation

ADMIN = ("ada", "Sunflower-Meadow-7")


@pytest.fixture
def reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SampleReading]:
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    sample = build_sample_workspace(tmp_path / "trial", patients=2, pixel_mm=1.0)
    yield sample
    sample.workspace.close()


def _reading_window(qtbot: QtBot, station: Workstation) -> ReadingWindow:
    opened: list[ReadingWindow] = []
    station.readingOpened.connect(opened.append)
    station.start()
    assert station.login_dialog is not None
    qtbot.addWidget(station.login_dialog)
    qtbot.waitUntil(lambda: bool(opened), timeout=30000)
    window = opened[0]
    qtbot.waitUntil(lambda: window.model is not None and window.grid is not None, timeout=30000)
    return window


def _back_at_log_in(qtbot: QtBot, station: Workstation, first: object, message: str) -> None:
    qtbot.waitUntil(
        lambda: station.login_dialog is not first and station.login_dialog.isVisible(),
        timeout=20000,
    )
    dialog = station.login_dialog
    assert dialog is not None
    qtbot.addWidget(dialog)
    assert dialog.error.isVisible()
    assert dialog.error.text() == message


def test_an_account_disabled_while_the_reader_types_goes_back_to_the_log_in(
    qtbot: QtBot, reading: SampleReading
) -> None:
    ws = reading.workspace
    station = Workstation(ws, username=SAMPLE_READER, password=SAMPLE_READER_PASSWORD)
    window = _reading_window(qtbot, station)
    first = station.login_dialog
    admin = ws.accounts.login(*ADMIN)
    ws.accounts.disable_user(admin, SAMPLE_READER, "left the reading centre")
    assert window.grid is not None
    with qtbot.waitSignal(window.sessionEnded, timeout=20000) as ended:
        QTest.keyClicks(QApplication.focusWidget() or window, "1")
    message = "this account has been disabled, which ends this session; ask an administrator"
    assert ended.args == [message]
    _back_at_log_in(qtbot, station, first, message)
    qtbot.waitUntil(lambda: not (isValid(window) and window.isVisible()), timeout=20000)


def test_a_password_reset_ends_the_session_at_the_next_case(
    qtbot: QtBot, reading: SampleReading
) -> None:
    ws = reading.workspace
    station = Workstation(ws, username=SAMPLE_READER, password=SAMPLE_READER_PASSWORD)
    window = _reading_window(qtbot, station)
    first = station.login_dialog
    admin = ws.accounts.login(*ADMIN)
    ws.accounts.reset_password(admin, SAMPLE_READER, "Temporary-Pass-99", "forgot it")
    assert window.next_action.isEnabled()
    with qtbot.waitSignal(window.sessionEnded, timeout=20000) as ended:
        window.next_action.trigger()
    message = (
        "your password was reset by an administrator, which ends this session; log in again "
        "with the temporary password"
    )
    assert ended.args == [message]
    _back_at_log_in(qtbot, station, first, message)
