"""Joint view: every visit's pane centred on its own film's position of the joint being scored,
at the same physical scale; the reading window's panes follow the grid through every area of a
paired case; a click on a joint selects its area; a film without positions says so."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from scorer.core.case_films import CaseFilm
from scorer.core.joint_fit import ANCHORS, fit_joints
from scorer.gui.case_view import CaseView
from scorer.gui.joint_view import (
    NO_POSITIONS,
    PICK_RADIUS,
    Placement,
    joint_label,
    on_film,
    on_view,
    pixel_mm_of,
    stored_at,
)
from scorer.gui.prefetch import CasePreparer, PreparedCase, prepare_case
from scorer.gui.reading import ReadingWindow, layout_settings
from scorer.gui.sample_case import SampleReading, build_sample_workspace, case_images_with_truth
from scorer.gui.viewer_state import DEFAULT_FIELD_MM, NO_SPACING_FIELD_FRACTION, ViewerModel
from scorer.imaging.joint_snap import bone_bright_pixels, fit_and_refine
from scorer.imaging.radiograph import open_radiograph
from tests.gui.conftest import make_radiograph

# ---------------------------------------------------------------------- the model, no window


@pytest.mark.parametrize("rotation", [0, 1, 2, 3])
@pytest.mark.parametrize("flip", [False, True])
def test_focus_on_centres_the_point_and_fills_the_shorter_side(rotation: int, flip: bool) -> None:
    model = ViewerModel(make_radiograph(spacing=(0.2, 0.2)), width=500, height=300)
    model.rotate(rotation)
    if flip:
        model.flip()
    assert model.focus_on(57.3, 141.8, 25.0)
    sx, sy = model.to_screen(57.3, 141.8)
    assert math.isclose(sx, 250.0, abs_tol=1e-9) and math.isclose(sy, 150.0, abs_tol=1e-9)
    assert model.view.zoom == pytest.approx(300 / (25.0 / 0.2))  # 125 pixels across 300
    assert model.shown_field_mm() == pytest.approx(25.0)
    assert (model.view.rotation, model.view.flip_h) == (rotation, flip)
    assert not model.fitted


def test_focus_keeps_the_window_and_a_field_without_spacing_is_a_share_of_the_width() -> None:
    model = ViewerModel(make_radiograph(spacing=None), width=400, height=400)
    model.toggle_invert()
    model.set_preset(1)
    window = model.view.voi
    assert model.field_pixels(DEFAULT_FIELD_MM) == pytest.approx(240 * NO_SPACING_FIELD_FRACTION)
    assert model.field_pixels(2 * DEFAULT_FIELD_MM) == pytest.approx(2 * 240 * 0.1)
    assert model.focus_on(120, 100, DEFAULT_FIELD_MM)
    assert model.view.zoom == pytest.approx(400 / 24)
    assert model.view.voi == window and model.view.invert
    assert model.shown_field_mm() is None
    assert not model.focus_on(1, 1, 0.0) and not model.focus_on(1, 1, math.nan)


def test_zooming_in_from_a_close_joint_view_does_not_zoom_out() -> None:
    model = ViewerModel(make_radiograph(spacing=(1.0, 1.0)), width=600, height=600)
    model.focus_on(100, 100, 10.0)  # 60 screen pixels per image pixel: past the wheel's limit
    before = model.view.zoom
    model.zoom_in()
    assert model.view.zoom >= before


def test_a_placement_names_each_anchor_in_turn() -> None:
    placement = Placement("A", "FILM", "LH", ("MCP2", "MCP5", "RAD"))
    assert placement.prompt().startswith("Click the centre of the 2nd MCP joint (1 of 3)")
    assert not placement.add(1, 2)
    assert "5th MCP joint (2 of 3)" in placement.prompt()
    assert not placement.add(3, 4)
    assert "distal radius (3 of 3)" in placement.prompt()
    assert placement.add(5, 6) and placement.clicks == [(1, 2), (3, 4), (5, 6)]
    assert joint_label("MTP1") == "1st MTP joint" and joint_label("XYZ") == "XYZ"


# ---------------------------------------------------------------------- the case view


def prepared(images: Mapping[str, Sequence[CaseFilm]], code: str = "K7Q5Y87Y") -> PreparedCase:
    return prepare_case(code, lambda _code: images, lambda path, _sha: open_radiograph(path))


@pytest.fixture
def view(qtbot: QtBot, case_images: dict[str, list[CaseFilm]]) -> CaseView:
    widget = CaseView()
    qtbot.addWidget(widget)
    widget.resize(1500, 700)
    widget.show()
    qtbot.waitExposed(widget)
    widget.show_case(prepared(case_images))
    return widget


def assert_centred(view: CaseView, area: tuple[str, str], field_mm: float) -> int:
    """Every pane showing a film with a position of ``area`` has it at its centre (within a
    screen pixel) with ``field_mm`` across its shorter side; the number of such panes."""
    centred = 0
    for panel in view.panels.values():
        point = view.joint_view.positions(panel).get(area)
        if point is None or panel.model.image is None:
            continue
        width, height = panel.model.size
        assert (width, height) == (panel.width(), panel.height())
        sx, sy = panel.model.to_screen(*on_view(point.x, point.y))
        assert abs(sx - width / 2) <= 1 and abs(sy - height / 2) <= 1, (panel.letter, area)
        assert panel.model.shown_field_mm() == pytest.approx(field_mm)
        centred += 1
    return centred


def test_joint_view_centres_every_pane_on_its_films_joint(view: CaseView) -> None:
    joints = view.joint_view
    view.panels["B"].model.rotate(1)  # a reader's rotation and flip are kept and allowed for
    view.panels["C"].model.flip()
    joints.set_area("RH", "MCP2")
    QTest.keyClick(view.panels["A"], Qt.Key.Key_J)
    assert joints.on and joints.toggle_action is not None and joints.toggle_action.isChecked()
    assert assert_centred(view, ("RH", "MCP2"), DEFAULT_FIELD_MM) == 3
    assert view.panels["B"].model.view.rotation == 1 and view.panels["C"].model.view.flip_h
    # The positions differ from film to film: each pane is on its own.
    centres = {(p.model.view.center_x, p.model.view.center_y) for p in view.panels.values()}
    assert len(centres) == 3
    QTest.keyClick(view.panels["A"], Qt.Key.Key_BracketRight)
    assert joints.field_mm == DEFAULT_FIELD_MM + 5
    assert assert_centred(view, ("RH", "MCP2"), DEFAULT_FIELD_MM + 5) == 3
    view.show_region("LF")
    joints.set_area("LF", "MTP3")
    assert view.page is not None and view.page.group == "feet"
    assert assert_centred(view, ("LF", "MTP3"), DEFAULT_FIELD_MM + 5) == 3
    QTest.keyClick(view.panels["A"], Qt.Key.Key_J)
    assert not joints.on and all(p.model.fitted for p in view.panels.values())


def test_joint_view_refills_the_field_when_a_pane_is_resized(qtbot: QtBot, view: CaseView) -> None:
    view.joint_view.set_area("LH", "PIP3")
    view.joint_view.set_on(True)
    view.resize(1100, 500)
    qtbot.waitUntil(
        lambda: view.panels["A"].model.size == (view.panels["A"].width(), view.panels["A"].height())
    )
    qtbot.wait(20)
    assert assert_centred(view, ("LH", "PIP3"), DEFAULT_FIELD_MM) == 3


def test_a_film_without_positions_says_so_in_its_pane(
    qtbot: QtBot, case_images: dict[str, list[CaseFilm]]
) -> None:
    images = {k: list(v) for k, v in case_images.items()}
    images["B"] = [
        CaseFilm(f.image, f.regions, f.path, f.sha256, ()) if "LH" in f.regions else f
        for f in images["B"]
    ]
    view = CaseView()
    qtbot.addWidget(view)
    view.resize(1500, 700)
    view.show()
    view.show_case(prepared(images))
    view.joint_view.set_area("LH", "MCP3")
    view.joint_view.set_on(True)
    assert view.joint_view.notices() == [NO_POSITIONS]
    assert NO_POSITIONS in view.all_text()
    assert view.panels["B"].model.fitted  # the whole film, where the joints are to be placed
    assert assert_centred(view, ("LH", "MCP3"), DEFAULT_FIELD_MM) == 2


def click(widget: Any, at: tuple[float, float]) -> None:
    QTest.mouseClick(
        widget, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(*map(round, at))
    )


def test_a_click_near_a_joint_selects_it_and_a_drag_moves_its_marker(
    qtbot: QtBot, view: CaseView
) -> None:
    joints = view.joint_view
    clicked: list[tuple[str, str]] = []
    joints.jointClicked.connect(lambda region, joint: clicked.append((region, joint)))
    panel = view.panels["A"]
    target = joints.positions(panel)[("LH", "PIP4")]
    # Film view: a click near the position selects it, a click far from any does not.
    sx, sy = panel.model.to_screen(*on_view(target.x, target.y))
    click(panel, (sx, sy))
    assert clicked == [("LH", "PIP4")]
    joints.set_area("LH", "PIP3")
    joints.set_on(True)
    sx, sy = panel.model.to_screen(*on_view(target.x, target.y))
    click(panel, (sx + PICK_RADIUS / 2, sy))
    assert clicked[-1] == ("LH", "PIP4")
    far = (panel.width() - 5, panel.height() - 5)
    click(panel, far)
    assert len(clicked) == 2
    # A drag of a marker moves that position (and does not pan the film).
    centre = (panel.model.view.center_x, panel.model.view.center_y)
    start = panel.model.to_screen(*on_view(target.x, target.y))
    QTest.mousePress(panel, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     QPoint(*map(round, start)))  # fmt: skip
    for step in range(1, 6):
        QTest.mouseMove(panel, QPoint(round(start[0]) + 4 * step, round(start[1])))
    QTest.mouseRelease(panel, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                       QPoint(round(start[0]) + 20, round(start[1])))  # fmt: skip
    moved = joints.positions(panel)[("LH", "PIP4")]
    assert moved.source == "dragged" and len(clicked) == 2
    assert moved.x - target.x == pytest.approx(
        20 / panel.model.view.zoom, abs=1.5 / panel.model.view.zoom
    )
    assert (panel.model.view.center_x, panel.model.view.center_y) == centre


# ---------------------------------------------------------------------- the reading window


@pytest.fixture
def reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SampleReading]:
    """A new database: one synthetic patient, three visits, reader rita's worklist."""
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    sample = build_sample_workspace(
        tmp_path / "trial", patients=1, pixel_mm=1.0, locate_joints=False
    )
    yield sample
    sample.workspace.close()


def open_window(qtbot: QtBot, sample: SampleReading, folder: Path) -> ReadingWindow:
    preparer = CasePreparer(
        case_images_with_truth(sample), cache_dir=sample.workspace.images.cache_dir
    )
    window = ReadingWindow(
        sample.workspace,
        sample.session,
        sample.trial,
        settings=layout_settings(folder),
        preparer=preparer,
    )
    qtbot.addWidget(window)
    window.resize(1800, 1000)
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


def test_every_area_of_a_paired_case_centres_every_pane_on_its_joint(
    qtbot: QtBot, reading: SampleReading, tmp_path: Path
) -> None:
    window = open_window(qtbot, reading, tmp_path / "settings")
    model, grid = window.model, window.grid
    assert model is not None and grid is not None and len(model.letters) == 3
    QTest.keyClick(grid.table, Qt.Key.Key_J)  # typed in the grid, as a reader scores
    joints = window.case_view.joint_view
    assert joints.on
    window.case_view.panels["B"].model.rotate(-1)
    QTest.keyClick(grid.table, Qt.Key.Key_BracketLeft)
    field = DEFAULT_FIELD_MM - 5
    assert joints.field_mm == field
    model.set_current(0, 0)
    for row, definition in enumerate(model.areas):
        if row:
            QTest.keyClick(grid.table, Qt.Key.Key_Down)
        assert model.current_area == definition.area
        area = (definition.region, definition.joint)
        assert joints.area == area
        assert assert_centred(window.case_view, area, field) == 3, area
    # The field is remembered for the next session.
    assert float(window.settings.value("viewer/jointFieldMm")) == field


def test_clicking_a_joint_on_a_film_selects_its_area_in_the_grid(
    qtbot: QtBot, reading: SampleReading, tmp_path: Path
) -> None:
    window = open_window(qtbot, reading, tmp_path / "settings")
    model = window.model
    assert model is not None
    model.set_current(model.row_of(next(d.area for d in model.areas if d.feature == "JSN")), 0)
    feature = model.current_area.feature
    panel = window.case_view.panels["C"]
    point = window.case_view.joint_view.positions(panel)[("RH", "MCP4")]
    click(panel, panel.model.to_screen(*on_view(point.x, point.y)))
    area = model.current_area
    assert (area.region, area.joint, area.feature) == ("RH", "MCP4", feature)
    assert model.current_letter == "C"  # the clicked visit is the one being scored
    # In joint view, a neighbouring bone scored only for erosion is selected under erosion.
    joints = window.case_view.joint_view
    model.go_to_area(next(d.area for d in model.areas if d.joint == "RCA" and d.region == "RH"))
    joints.set_field_mm(60)
    joints.set_on(True)
    point = joints.positions(panel)[("RH", "LUN")]
    sx, sy = panel.model.to_screen(*on_view(point.x, point.y))
    assert 0 < sx < panel.width() and 0 < sy < panel.height()  # on screen, beside the RCA
    click(panel, (sx, sy))
    assert (model.current_area.joint, model.current_area.feature) == ("LUN", "ERO")
    assert joints.area == ("RH", "LUN")
    assert assert_centred(window.case_view, ("RH", "LUN"), 60) == 3


def without_positions(
    images: Mapping[str, Sequence[CaseFilm]], letters: str, region: str
) -> dict[str, list[CaseFilm]]:
    """The case's films with the positions of ``region`` (regions, space-separated) taken
    off the films of ``letters``."""
    return {
        letter: [
            CaseFilm(
                f.image,
                f.regions,
                f.path,
                f.sha256,
                tuple(
                    p for p in f.joints if letter not in letters or p.region not in region.split()
                ),
            )
            for f in films
        ]
        for letter, films in images.items()
    }


def place_by_clicks(qtbot: QtBot, view: CaseView, letter: str, truth: dict[str, Any]) -> None:
    """Press P on pane ``letter`` and click each anchor it names exactly where it is."""
    joints = view.joint_view
    panel = view.panels[letter]
    view.activateWindow()
    panel.setFocus()
    qtbot.waitUntil(panel.hasFocus)
    view.set_active(letter)
    QTest.keyClick(panel, Qt.Key.Key_P)
    assert joints.placement is not None and joints.placement.letter == letter
    assert panel.model.fitted  # the whole film, to find the anchors on
    names = {"MCP2": "2nd MCP joint", "MCP5": "5th MCP joint", "RAD": "distal radius"}
    for n, anchor in enumerate(joints.placement.anchors):
        assert joints.placement.prompt().startswith(
            f"Click the centre of the {names[anchor]} ({n + 1} of 3)"
        )
        assert joints.notices()[0] == joints.placement.prompt()
        point = truth[anchor]
        click(panel, panel.model.to_screen(*on_view(point.x, point.y)))
    assert joints.placement is None


@pytest.mark.parametrize("others_placed", [True, False])
def test_three_clicks_place_every_joint_of_a_film(
    qtbot: QtBot, case_images: dict[str, list[CaseFilm]], others_placed: bool
) -> None:
    hands = next(f for f in case_images["B"] if "LH" in f.regions)
    truth = {p.joint: p for p in hands.joints if p.region == "LH"}
    view = CaseView()
    qtbot.addWidget(view)
    view.resize(1500, 700)
    view.show()
    qtbot.waitExposed(view)
    # Without others: no film of the patient's hands has positions (the other hand, mirrored,
    # would serve as the patient's own template too).
    view.show_case(
        prepared(
            without_positions(case_images, "B", "LH")
            if others_placed
            else without_positions(case_images, "ABC", "LH RH")
        )
    )
    joints = view.joint_view
    joints.set_area("LH", "MCP3")
    joints.set_on(True)
    assert NO_POSITIONS in joints.notices()
    place_by_clicks(qtbot, view, "B", truth)
    placed = {j: p for (r, j), p in joints.positions(view.panels["B"]).items() if r == "LH"}
    assert set(placed) == set(truth)
    assert {p.source for p in placed.values()} == {"fit"}
    errors = {j: math.hypot(p.x - truth[j].x, p.y - truth[j].y) for j, p in placed.items()}
    # 1 mm pixels: every joint within 3 mm (the bound), from the patient's own joints
    # on the other visits, or from the generic hand refined on the film's joint spaces (the
    # generic fit alone misses a few finger joints by up to ~5 mm).
    assert max(errors.values()) <= 3.0, errors
    if not others_placed:  # the window refines the generic fit on the film's pixels
        image = view.panels["B"].model.image
        clicks = {a: (truth[a].x, truth[a].y) for a in ANCHORS["LH"]}
        refined = fit_and_refine(bone_bright_pixels(image), pixel_mm_of(image), "LH", clicks)
        plain = fit_joints("LH", clicks, pixel_mm_of(image))
        # The clicks land on screen pixels, a fraction of a film pixel off the truth.
        off = {j: math.dist((p.x, p.y), refined[j]) for j, p in placed.items()}
        assert max(off.values()) < 1.0, off
        assert max(math.dist(plain[j], refined[j]) for j in refined) > 1.5
    left_unplaced = 0 if others_placed else 2  # A and C still say so
    assert joints.notices() == [NO_POSITIONS] * left_unplaced
    assert assert_centred(view, ("LH", "MCP3"), DEFAULT_FIELD_MM) == 3 - left_unplaced


def test_placing_can_be_cancelled_and_refuses_a_region_the_film_lacks(
    qtbot: QtBot, view: CaseView
) -> None:
    joints = view.joint_view
    joints.set_area("LF", "MTP2")  # the hands page is on screen
    assert not joints.start_placement("A")
    assert view.panels["A"].message == "This film does not show the region being scored"
    joints.set_area("LH", "MCP2")
    assert joints.start_placement("A")
    QTest.keyClick(view.panels["A"], Qt.Key.Key_P)
    assert joints.placement is None and joints.notices() == []
    assert joints.start_placement("A")
    QTest.keyClick(view.panels["A"], Qt.Key.Key_Escape)
    assert joints.placement is None


def test_the_reader_places_a_films_joints_and_they_are_saved(
    qtbot: QtBot, reading: SampleReading, tmp_path: Path
) -> None:
    """The films come from the database without positions: the reader places the active
    film's left hand with three clicks, and the positions are stored for that film."""
    window = ReadingWindow(
        reading.workspace,
        reading.session,
        reading.trial,
        settings=layout_settings(tmp_path / "settings"),
    )
    qtbot.addWidget(window)
    window.resize(1800, 1000)
    window.show()
    qtbot.waitUntil(
        lambda: window.model is not None and window.case_view.case is not None, timeout=30000
    )
    code = window.current_code
    assert code is not None
    view, model = window.case_view, window.model
    assert model is not None
    model.go_to_area(next(d.area for d in model.areas if d.region == "LH"), "A")
    panel = view.panels["A"]
    assert panel.shown is not None and not panel.shown.joints
    QTest.keyClick(window.grid.table, Qt.Key.Key_J)
    assert NO_POSITIONS in view.joint_view.notices()
    truth_films = case_images_with_truth(reading)(code)
    hands = next(f for f in truth_films["A"] if f.image == panel.shown.image)
    truth = {p.joint: p for p in hands.joints if p.region == "LH"}
    with qtbot.waitSignal(view.joint_view.saved, timeout=30000) as saved:
        place_by_clicks(qtbot, view, "A", truth)
    assert saved.args == [panel.shown.image, len(truth)]
    assert QApplication.focusWidget() is window.grid.table  # the keys score again
    stored = reading.workspace.images.case_images(reading.session, code)["A"]
    film = next(f for f in stored if f.image == panel.shown.image)
    placed = {p.joint: p for p in film.joints if p.region == "LH"}
    assert set(placed) == set(truth) and {p.source for p in placed.values()} == {"fit"}
    assert max(math.hypot(p.x - truth[j].x, p.y - truth[j].y) for j, p in placed.items()) <= 3
    assert assert_centred(view, model.current_area[:2], DEFAULT_FIELD_MM) == 1


def test_a_stored_position_counts_from_the_first_pixels_centre(view: CaseView) -> None:
    """Stored positions put pixel i's centre at i (the generator's truth, the fit, the store's
    bounds -0.5 to n - 0.5); the viewer's image coordinates put it at i + 0.5. Joint view
    centres on the stored pixel itself, and a click there stores that pixel's centre."""
    joints = view.joint_view
    panel = view.panels["A"]
    point = joints.positions(panel)[("LH", "MCP3")]
    joints.set_area("LH", "MCP3")
    joints.set_on(True)
    width, height = panel.model.size
    cx, cy = panel.model.to_image(width / 2, height / 2)
    assert (cx - 0.5, cy - 0.5) == pytest.approx((point.x, point.y), abs=1e-6)
    assert stored_at(*on_view(12.0, 34.0)) == (12.0, 34.0)
    assert on_film(-3.0, 99.7, rows=100, columns=50) == (-0.5, 99.5)
    assert on_film(60.0, 10.0, rows=100, columns=50) == (49.5, 10.0)
