"""The coordinator's desk over a real database: every page loads off the UI thread and shows
what the facade says; answering a flag, masking an image by drawing on it, reassigning an
image, assigning the adjudication queue and releasing a reader work through the dialogs, each
audited; a failing action shows the facade's message and changes nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, QRectF, Qt
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from scorer.gui.desk import DeskWindow
from scorer.gui.desk_sample import build_desk_sample
from scorer.gui.workstation import Workstation


@pytest.fixture
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any, str, Path]]:
    """A new trial part-way through reading for each test (they change it)."""
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    ws, coord, trial = build_desk_sample(tmp_path / "trial")
    yield ws, coord, trial, tmp_path
    ws.close()


class Recording:
    """The workspace, noting on which thread each facade call runs."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self.ui = threading.get_ident()
        self.on_ui: list[str] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._ws, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() == self.ui:
                self.on_ui.append(name)
            return target(*args, **kwargs)

        return call


def open_desk(qtbot: QtBot, ws: Any, coord: Any, trial: str) -> DeskWindow:
    window = DeskWindow(ws, coord, trial)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: all(p.loaded_at is not None for p in window.pages), timeout=30000)
    return window


def cells(table: Any) -> list[list[str]]:
    return [
        [table.item(r, c).text() for c in range(table.columnCount())]
        for r in range(table.rowCount())
    ]


def test_every_page_loads_off_the_ui_thread_and_shows_the_facades_numbers(
    qtbot: QtBot, built: tuple[Any, Any, str, Path]
) -> None:
    ws, coord, trial, _ = built
    recording = Recording(ws)
    window = open_desk(qtbot, recording, coord, trial)
    assert recording.on_ui == []
    progress = ws.coordination.progress(coord, trial)
    rows = cells(window.progress.readers)
    assert [r[0] for r in rows] == [r.reader for r in progress.readers]
    assert [int(r[2]) for r in rows] == [r.signed for r in progress.readers]
    assert len(cells(window.progress.patients)) == 4
    assert window.tabs.tabText(2) == "Flags (1)"
    assert "another patient" in cells(window.flags.table)[0][7]  # the Message column
    adjudication = cells(window.adjudication.table)
    assert len(adjudication) == 1 and adjudication[0][1] == "queued"
    assert "differ by 6" in adjudication[0][2]
    images = ws.images.list_images(coord, trial)
    assert len(cells(window.images.table)) == len(images)
    window.progress.refresh()
    qtbot.waitUntil(lambda: not window.progress.loading, timeout=10000)
    assert recording.on_ui == []


def test_a_flag_is_answered_and_closed_from_the_desk(
    qtbot: QtBot, built: tuple[Any, Any, str, Path]
) -> None:
    ws, coord, trial, _ = built
    window = open_desk(qtbot, ws, coord, trial)
    window.flags.table.selectRow(0)
    window.flags.ask_answer()
    dialog = window.dialog
    assert dialog is not None
    dialog.submit()  # no answer: the facade refuses, the flag stays open
    qtbot.waitUntil(lambda: dialog.error.isVisible(), timeout=10000)
    assert "answer is required" in dialog.error.text()
    assert ws.coordination.flags(coord, trial)
    QTest.keyClicks(dialog.fields["Answer"], "Checked: the W24 hand film was re-imported.")
    with qtbot.waitSignal(dialog.succeeded, timeout=10000):
        dialog.submit()
    assert ws.coordination.flags(coord, trial) == []
    qtbot.waitUntil(lambda: window.tabs.tabText(2) == "Flags", timeout=10000)
    closed = ws.coordination.flags(coord, trial, open_only=False)[0]
    assert closed.answer == "Checked: the W24 hand film was re-imported."


def test_an_image_is_masked_by_drawing_on_it(
    qtbot: QtBot, built: tuple[Any, Any, str, Path]
) -> None:
    ws, coord, trial, _ = built
    window = open_desk(qtbot, ws, coord, trial)
    code = cells(window.images.table)[0][0]
    window.images.table.selectRow(0)
    window.images.ask_mask()
    qtbot.waitUntil(lambda: window.dialog is not None and window.dialog.isVisible(), timeout=20000)
    dialog = window.dialog
    canvas = dialog.canvas  # type: ignore[attr-defined]
    qtbot.waitExposed(canvas)
    # Drag a rectangle over the top-left part of the image.
    origin = canvas.to_widget(QRectF(0, 0, 1, 1)).topLeft()  # the image's top-left corner
    start = QPoint(round(origin.x()) + 5, round(origin.y()) + 5)
    end = start + QPoint(60, 30)
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    QTest.mouseMove(canvas, end)
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)
    (rect,) = canvas.rectangles()
    assert rect[2] > 0 and rect[3] > 0
    QTest.keyClicks(dialog.fields["Reason"], "burned-in name in the corner")
    with qtbot.waitSignal(dialog.succeeded, timeout=20000):
        dialog.submit()
    (audit,) = [
        r
        for r in ws.oversight.audit_trail(coord)
        if r.action == "image.mask" and r.entity_id == code
    ]
    assert list(rect) in json.loads(audit.new)["rectangles"]
    qtbot.waitUntil(lambda: cells(window.images.table)[0][5] == "yes", timeout=10000)


def test_reassign_and_adjudication_assignment_through_the_dialogs(
    qtbot: QtBot, built: tuple[Any, Any, str, Path]
) -> None:
    ws, coord, trial, _ = built
    window = open_desk(qtbot, ws, coord, trial)
    rows = cells(window.images.table)
    index = next(i for i, r in enumerate(rows) if r[2] == "W24")
    code, patient = rows[index][0], rows[index][1]
    window.images.table.selectRow(index)
    window.images.ask_reassign()
    dialog = window.dialog
    assert dialog is not None
    dialog.fields["Visit"].setCurrentText("W52")
    dialog.submit()  # no reason: refused
    qtbot.waitUntil(lambda: dialog.error.isVisible(), timeout=10000)
    assert "reason" in dialog.error.text()
    assert next(i for i in ws.images.list_images(coord, trial) if i.code == code).visit == "W24"
    QTest.keyClicks(dialog.fields["Reason"], "acquired at the W52 visit")
    with qtbot.waitSignal(dialog.succeeded, timeout=10000):
        dialog.submit()
    moved = next(i for i in ws.images.list_images(coord, trial) if i.code == code)
    assert (moved.patient, moved.visit) == (patient, "W52")

    window.adjudication.ask_assign()
    dialog = window.dialog
    assert dialog is not None and dialog.fields["Adjudicator"].currentText() == "adam"
    with qtbot.waitSignal(dialog.succeeded, timeout=10000):
        dialog.submit()
    qtbot.waitUntil(lambda: cells(window.adjudication.table)[0][1] == "assigned", timeout=10000)
    assert cells(window.adjudication.table)[0][4] == "adam"


def test_a_coordinator_logs_in_to_the_desk(qtbot: QtBot, built: tuple[Any, Any, str, Path]) -> None:
    ws, _coord, trial, _ = built
    station = Workstation(ws, username="cora")
    opened: list[Any] = []
    station.deskOpened.connect(opened.append)
    station.start()
    login = station.login_dialog
    assert login is not None
    qtbot.addWidget(login)
    QTest.keyClicks(login.password, "Willow-Compass-2024")
    QTest.keyClick(login.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(opened), timeout=20000)
    desk = opened[0]
    assert desk.trial == trial and "coordinator's desk" in desk.windowTitle()
    desk.close()
