"""The desk's image viewer and QC (issue 30): a real film drawn by the reading window's
pipeline (window/level, zoom and invert change what is painted), its joints drawn as markers
and placed by three clicks (saved through the images service), Pass and Fail through the
viewer (audited, the chain verifies), the impact of failing listed before it (an open and a
signed case), the filters of the Images page, and the flags page showing patient, true visit
and date and opening the flag's images."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from scorer.core.joint_fit import ANCHORS
from scorer.core.joints import JointPoint
from scorer.gui.desk import DeskWindow
from scorer.gui.desk_sample import build_desk_sample
from scorer.gui.desk_viewer import DeskFilm, DeskViewer
from scorer.gui.sample_case import build_sample_workspace


def grab(widget: Any) -> np.ndarray:
    """What the widget paints now, as a grey array."""
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_Grayscale8)
    rows, cols = image.height(), image.width()
    data = np.frombuffer(image.constBits(), np.uint8, image.bytesPerLine() * rows)
    return data.reshape(rows, image.bytesPerLine())[:, :cols].copy()


@pytest.fixture
def one_patient(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, Any, Any, dict[str, tuple[float, float]]]]:
    """(workspace, coordinator, the hands image row, its true left-hand positions)."""
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    sample = build_sample_workspace(
        tmp_path / "trial", patients=1, visits=2, pixel_mm=1.0, locate_joints=False
    )
    ws = sample.workspace
    coord = ws.accounts.login("cora", "Willow-Compass-2024")
    films = {str(f.path): f for f in sample.films}
    image = next(i for i in ws.images.list_images(coord, sample.trial) if "LH" in i.regions)
    truth = {p.joint: (p.x, p.y) for p in films[image.source].joints if p.region == "LH"}
    yield ws, coord, image, truth
    ws.close()


def open_viewer(qtbot: QtBot, ws: Any, coord: Any, films: list[DeskFilm]) -> DeskViewer:
    viewer = DeskViewer(ws, coord, films, "test")
    qtbot.addWidget(viewer)
    viewer.show()
    qtbot.waitUntil(lambda: viewer.current.loaded, timeout=30000)
    qtbot.waitExposed(viewer)
    return viewer


def test_the_viewer_draws_a_real_film_with_window_zoom_invert_and_joint_markers(
    qtbot: QtBot, one_patient: tuple[Any, Any, Any, dict[str, tuple[float, float]]]
) -> None:
    ws, coord, image, truth = one_patient
    ws.images.place_image_joints(
        coord, image.code, [JointPoint("LH", j, *truth[j], "fit") for j in ("MCP2", "PIP3")]
    )
    viewer = open_viewer(qtbot, ws, coord, [DeskFilm(image.code, image.regions)])
    view = viewer.current.view
    assert image.code in viewer.windowTitle()
    assert view.model.image is not None and view.model.image.shape == (image.rows, image.columns)
    base = grab(view)
    assert base.std() > 5  # a film, not a blank pane
    # Invert: what is painted flips (the read-out corner aside, most pixels change).
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_I)
    inverted = grab(view)
    assert np.mean(inverted != base) > 0.5
    QTest.keyClick(view, Qt.Key.Key_I)
    # Window/level: a right drag narrows or widens the window; the pixels change.
    centre = QPoint(view.width() // 2, view.height() // 2)
    QTest.mousePress(view, Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier, centre)
    QTest.mouseMove(view, centre + QPoint(-120, 60))
    QTest.mouseRelease(
        view, Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier, centre + QPoint(-120, 60)
    )
    windowed = grab(view)
    assert np.mean(windowed != base) > 0.2
    # Zoom: "+" magnifies about the centre.
    zoom = view.model.view.zoom
    QTest.keyClick(view, Qt.Key.Key_Plus)
    assert view.model.view.zoom > zoom
    # (a fifth of the pane or so: the film fills less of it with the joint QC line below)
    assert np.mean(grab(view) != windowed) > 0.15
    # The markers are drawn where the joints are: removing them changes the pixels there only.
    QTest.keyClick(view, Qt.Key.Key_F)
    with_markers = grab(view)
    points = dict(view.editor.points)
    assert set(points) == {("LH", "MCP2"), ("LH", "PIP3")}
    view.editor.points = {}
    view.repaint()
    without = grab(view)
    changed = np.argwhere(with_markers != without)
    assert len(changed)
    dpr = view.devicePixelRatioF()
    for row, col in changed:
        near = min(
            math.dist((col / dpr, row / dpr), (w.x(), w.y()))
            for w in (view.to_widget(p.x, p.y) for p in points.values())
        )
        assert near < 40, "a marker or its label is drawn away from its joint"


def test_a_three_click_fit_in_the_viewer_is_saved_and_qc_passes(
    qtbot: QtBot, one_patient: tuple[Any, Any, Any, dict[str, tuple[float, float]]]
) -> None:
    ws, coord, image, truth = one_patient
    viewer = open_viewer(qtbot, ws, coord, [DeskFilm(image.code, image.regions)])
    page = viewer.current
    view = page.view
    page.panel.place["LH"].click()
    assert "(1 of 3)" in page.panel.hint.text()
    for anchor in ANCHORS["LH"]:
        w = view.to_widget(*truth[anchor])
        QTest.mouseClick(
            view,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
            QPoint(round(w.x()), round(w.y())),
        )
    assert "LH placed" in page.panel.hint.text()
    with qtbot.waitSignal(viewer.changed, timeout=20000):
        page.button["saveJoints"].click()
    saved = {p.joint: p for p in ws.images.joint_positions(coord, image.code)}
    assert set(saved) == set(truth)
    worst = max(math.dist((p.x, p.y), truth[j]) for j, p in saved.items())
    assert worst <= 5.0
    assert view.editor.edited == set()
    page.button["saveJoints"].click()  # nothing left to save: said in words
    assert "Nothing to save" in page.error.text()
    # The sample film came in with full headers: it passed at import, and Pass says so.
    assert image.qc == "passed"
    page.button["pass"].click()
    qtbot.waitUntil(lambda: "QC passed already" in page.error.text(), timeout=10000)
    assert ws.verify().ok


@pytest.fixture
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any, str]]:
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    ws, coord, trial = build_desk_sample(tmp_path / "trial")
    yield ws, coord, trial
    ws.close()


def open_desk(qtbot: QtBot, ws: Any, coord: Any, trial: str) -> DeskWindow:
    window = DeskWindow(ws, coord, trial)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: all(p.loaded_at is not None for p in window.pages), timeout=30000)
    return window


def select_code(table: Any, code: str) -> None:
    row = next(r for r in range(table.rowCount()) if table.item(r, 0).text() == code)
    table.selectRow(row)


def test_failing_lists_open_and_signed_cases_first_and_is_audited(
    qtbot: QtBot, built: tuple[Any, Any, str]
) -> None:
    ws, coord, trial = built
    rosa_case = ws.worklists.worklist(coord, trial, "rosa")[0]
    image = next(
        i
        for i in ws.images.list_images(coord, trial)
        if i.patient == rosa_case.patient and i.visit == rosa_case.visits[0]
    )
    impact = ws.images.qc_impact(coord, image.code)
    signed = next(c for c in impact.cases if c.status == "signed")
    window = open_desk(qtbot, ws, coord, trial)
    # The QC filter: only passed images; then back to all.
    window.images.qc_filter.setCurrentIndex(window.images.qc_filter.findData("passed"))
    assert all(i.qc == "passed" for i in window.images.shown)
    window.images.qc_filter.setCurrentIndex(0)
    select_code(window.images.table, image.code)
    window.images.view_image()
    viewer = window.images.viewer
    assert viewer is not None
    qtbot.waitUntil(lambda: viewer.current.loaded, timeout=30000)
    viewer.current.button["fail"].click()
    qtbot.waitUntil(lambda: viewer.fail_dialog is not None, timeout=20000)
    dialog = viewer.fail_dialog
    text = dialog.impact.text()
    assert f"case {rosa_case.code}, rosa: in progress" in text
    assert f"case {signed.case}, {signed.reader}: signed; signed read(s) " in text
    assert signed.signed_reads[0] in text and "stay as signed" in text
    dialog.submit()  # no reason: refused in words, nothing changed
    qtbot.waitUntil(lambda: dialog.error.isVisible(), timeout=10000)
    assert "reason" in dialog.error.text()
    assert ws.images.qc_impact(coord, image.code).qc == "passed"
    QTest.keyClicks(dialog.reason, "the left hand of another patient")
    with qtbot.waitSignal(viewer.changed, timeout=20000):
        dialog.submit()
    row = next(i for i in ws.images.list_images(coord, trial) if i.code == image.code)
    assert (row.qc, row.qc_reason) == ("failed", "the left hand of another patient")
    assert viewer.list.item(0).text().endswith("(failed)")
    # A failed image stays failed: neither Pass nor Fail… is offered again.
    assert not viewer.current.button["pass"].isEnabled()
    assert not viewer.current.button["fail"].isEnabled()
    assert ws.verify().ok
    audited = [e for e in ws.oversight.audit_trail(coord) if e.action == "image.qc"]
    assert [e.reason for e in audited] == ["the left hand of another patient"]
    # The Images page, refreshed, lists it under QC failed.
    window.images.qc_filter.setCurrentIndex(window.images.qc_filter.findData("failed"))
    qtbot.waitUntil(lambda: [i.code for i in window.images.shown] == [image.code], timeout=20000)


def test_the_flag_shows_patient_visit_and_date_and_opens_its_images(
    qtbot: QtBot, built: tuple[Any, Any, str]
) -> None:
    ws, coord, trial = built
    rosa = ws.accounts.login("rosa", "Harbour-Lantern-2024")
    case = ws.worklists.worklist(coord, trial, "rosa")[0]  # the coordinator's view: patient
    films = ws.images.case_images(rosa, case.code)
    letter = "B" if "B" in films else "A"
    shown = [f.image for f in films[letter]]
    number = ws.reading.raise_flag(rosa, case.code, "fingers cut off", visit=letter, films=shown)
    flag = next(f for f in ws.coordination.flags(coord, trial) if f.flag == number)
    window = open_desk(qtbot, ws, coord, trial)
    page = window.flags
    table = page.table
    row = next(r for r in range(table.rowCount()) if table.item(r, 0).text() == str(number))
    cells = {
        table.horizontalHeaderItem(c).text(): table.item(row, c).text()
        for c in range(table.columnCount())
    }
    assert cells["Patient"] == flag.patient == case.patient
    assert cells["Visit"] == f"{letter} → {flag.visit}"
    assert flag.visit == case.visits["ABC".index(letter)]
    assert cells["Date"] == flag.visit_date and flag.visit_date
    assert cells["Images"] == " ".join(flag.images) and flag.images
    assert "rosa 2 open, 0 answered" in page.counts.text()
    table.selectRow(row)
    page.button["images"].click()
    viewer = page.viewer
    assert viewer is not None
    assert flag.patient in viewer.windowTitle() and flag.visit in viewer.windowTitle()
    assert [p.film.code for p in viewer.pages] == list(flag.images)
    qtbot.waitUntil(lambda: viewer.current.loaded, timeout=30000)
    assert viewer.current.view.model.image is not None
