"""The coordinator places joint positions on the desk's Images page (issue 29, item 1): three
clicks on a sample film's true anchor positions fit every joint of the left hand within 5 mm
of the generator's truth and Save stores them (source ``fit``); a drag moves one joint and
saves it as ``dragged``; clicks in a mirrored order are refused in words and nothing is
saved."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from scorer.core.joint_fit import ANCHORS
from scorer.gui.desk import DeskWindow
from scorer.gui.sample_case import build_sample_workspace

PIXEL_MM = 1.0  # the sample films' spacing here: 5 mm is 5 stored pixels


@pytest.fixture
def desk(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[DeskWindow, Any, Any, str, dict[str, tuple[float, float]]]]:
    """The desk over a one-patient trial, a hands film selected on the Images page, and the
    true left-hand positions of that film (by joint)."""
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    sample = build_sample_workspace(
        tmp_path / "trial", patients=1, visits=2, pixel_mm=PIXEL_MM, locate_joints=False
    )
    ws = sample.workspace
    coord = ws.accounts.login("cora", "Willow-Compass-2024")
    window = DeskWindow(ws, coord, sample.trial)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.images.loaded_at is not None, timeout=30000)
    films = {str(f.path): f for f in sample.films}  # the list shows the imported file
    image = next(i for i in window.images.shown if "LH" in i.regions)
    table = window.images.table  # sorted by code: find the image's row by its text
    row = next(r for r in range(table.rowCount()) if table.item(r, 0).text() == image.code)
    truth = {p.joint: (p.x, p.y) for p in films[image.source].joints if p.region == "LH"}
    assert truth, "the sample film carries its true left-hand positions"
    window.images.table.selectRow(row)
    yield window, ws, coord, image.code, truth
    window.close()
    ws.close()


def open_joints(qtbot: QtBot, window: DeskWindow) -> Any:
    window.images.ask_joints()
    qtbot.waitUntil(lambda: window.dialog is not None and window.dialog.isVisible(), timeout=20000)
    dialog = window.dialog
    qtbot.waitExposed(dialog.canvas)  # type: ignore[union-attr]
    return dialog


def click_at(canvas: Any, x: float, y: float) -> None:
    w = canvas.to_widget(x, y)
    QTest.mouseClick(
        canvas,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
        QPoint(round(w.x()), round(w.y())),
    )


def test_three_clicks_place_the_left_hand_and_a_drag_corrects_one_joint(
    qtbot: QtBot, desk: tuple[DeskWindow, Any, Any, str, dict[str, tuple[float, float]]]
) -> None:
    window, ws, coord, code, truth = desk
    assert ws.images.joint_positions(coord, code) == ()
    dialog = open_joints(qtbot, window)
    canvas, panel = dialog.canvas, dialog.panel
    assert code in dialog.windowTitle() and {"LH", "RH"} <= set(panel.place)
    panel.place["LH"].click()
    assert "MCP2 (index finger's knuckle)" in panel.hint.text() and "(1 of 3)" in panel.hint.text()
    for anchor in ANCHORS["LH"]:
        click_at(canvas, *truth[anchor])
    assert "LH placed" in panel.hint.text()
    with qtbot.waitSignal(dialog.succeeded, timeout=20000):
        dialog.submit()
    saved = {p.joint: p for p in ws.images.joint_positions(coord, code) if p.region == "LH"}
    assert set(saved) == set(truth)
    assert {p.source for p in saved.values()} == {"fit"}
    worst = max(math.dist((p.x, p.y), truth[j]) * PIXEL_MM for j, p in saved.items())
    assert worst <= 5.0, f"a fitted joint is {worst:.1f} mm from its true position"

    # Reopened: the stored markers are shown; dragging PIP3 by 15 widget pixels moves it.
    dialog = open_joints(qtbot, window)
    canvas = dialog.canvas
    assert ("LH", "PIP3") in canvas.points
    start = canvas.to_widget(saved["PIP3"].x, saved["PIP3"].y)
    a = QPoint(round(start.x()), round(start.y()))
    b = a + QPoint(15, 0)
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    QTest.mouseMove(canvas, b)
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)
    expected = canvas.to_stored(QPointF(b))
    with qtbot.waitSignal(dialog.succeeded, timeout=20000):
        dialog.submit()
    after = {p.joint: p for p in ws.images.joint_positions(coord, code) if p.region == "LH"}
    assert after["PIP3"].source == "dragged"
    assert math.dist((after["PIP3"].x, after["PIP3"].y), expected) < 1e-6
    assert after["PIP3"].x > saved["PIP3"].x + 1
    assert all(after[j] == saved[j] for j in saved if j != "PIP3")


def test_clicks_in_a_mirrored_order_are_refused_and_nothing_is_saved(
    qtbot: QtBot, desk: tuple[DeskWindow, Any, Any, str, dict[str, tuple[float, float]]]
) -> None:
    window, ws, coord, code, truth = desk
    dialog = open_joints(qtbot, window)
    canvas, panel = dialog.canvas, dialog.panel
    panel.place["LH"].click()
    first, second, third = ANCHORS["LH"]
    for joint in (second, first, third):  # MCP5 clicked where MCP2 is asked, and back
        click_at(canvas, *truth[joint])
    assert dialog.error.isVisible()
    assert "mirror image of a left hand" in dialog.error.text()
    assert canvas.points == {}
    dialog.submit()  # nothing placed: refused in words
    qtbot.waitUntil(lambda: "nothing to save" in dialog.error.text(), timeout=10000)
    assert dialog.isVisible()
    assert ws.images.joint_positions(coord, code) == ()
