"""The joint map: a site for every svh area, clicks that select (and cycle) areas, the map
following the current area, and a diagram file that refuses bad entries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from pytestqt.qtbot import QtBot

from scorer.core.methods import Area, get_method
from scorer.gui.joint_map import (
    DiagramError,
    JointMap,
    builtin_diagrams,
    diagrams_file,
    load_diagrams,
    pair_of,
)
from scorer.gui.scoring_grid import GridModel, ScoringGrid
from tests.gui.conftest import grab_gray

SVH = get_method("svh")


def click(qtbot: QtBot, widget: JointMap, at: QPointF | None) -> None:
    assert at is not None
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=QPoint(round(at.x()), round(at.y())))


@pytest.fixture
def model() -> GridModel:
    return GridModel(SVH, {"A": "READ-A", "B": "READ-B"})


@pytest.fixture
def joint_map(qtbot: QtBot, model: GridModel) -> JointMap:
    widget = JointMap(model)
    widget.area_clicked.connect(model.go_to_area)
    qtbot.addWidget(widget)
    widget.resize(420, 320)
    widget.show()
    return widget


def test_every_svh_area_has_a_site_on_the_map() -> None:
    diagrams = builtin_diagrams()
    for d in SVH.areas:
        assert d.joint in diagrams[pair_of(d.region)].sites, d.area
    # Sites are apart enough to click: no two closer than 0.06 diagram units.
    for diagram in diagrams.values():
        points = np.array(list(diagram.sites.values()))
        gaps = np.linalg.norm(points[:, None] - points[None, :], axis=-1)
        np.fill_diagonal(gaps, 1.0)
        assert gaps.min() > 0.06


def test_clicking_a_joint_selects_its_area_and_a_second_click_its_other_feature(
    qtbot: QtBot, model: GridModel, joint_map: JointMap
) -> None:
    assert model.current_area == Area("LH", "MCP1", "ERO")
    target = Area("RH", "MCP3", "ERO")
    with qtbot.waitSignal(joint_map.area_clicked) as clicked:
        click(qtbot, joint_map, joint_map.joint_position(target))
    assert clicked.args == [target]
    assert model.current_area == target
    click(qtbot, joint_map, joint_map.joint_position(target))
    assert model.current_area == Area("RH", "MCP3", "JSN")  # cycles
    click(qtbot, joint_map, joint_map.joint_position(Area("LH", "PIP4", "JSN")))
    assert model.current_area == Area("LH", "PIP4", "JSN")  # keeps the current feature
    click(qtbot, joint_map, joint_map.joint_position(Area("LH", "LUN", "ERO")))
    assert model.current_area == Area("LH", "LUN", "ERO")  # erosion-only site
    click(qtbot, joint_map, joint_map.joint_position(Area("LH", "RCA", "JSN")))
    assert model.current_area == Area("LH", "RCA", "JSN")  # JSN-only site
    assert model.current_letter == "A"  # the visit does not change


def test_the_map_follows_the_current_area_and_switches_between_hands_and_feet(
    qtbot: QtBot, model: GridModel, joint_map: JointMap
) -> None:
    assert joint_map.pair == "hand"
    assert joint_map.joint_position(Area("LF", "MTP1", "ERO")) is None
    model.go_to_area(Area("RF", "MTP2", "JSN"))
    assert joint_map.pair == "foot"
    click(qtbot, joint_map, joint_map.joint_position(Area("LF", "IP1", "JSN")))
    assert model.current_area == Area("LF", "IP1", "JSN")
    # The "Hands" tab shows the hands without moving the cursor.
    qtbot.mouseClick(joint_map, Qt.MouseButton.LeftButton, pos=QPoint(20, 8))
    assert joint_map.pair == "hand"
    assert model.current_area == Area("LF", "IP1", "JSN")


def test_the_current_joint_is_ringed_and_entered_joints_change_colour(
    qtbot: QtBot, model: GridModel, joint_map: JointMap
) -> None:
    area = Area("RH", "PIP3", "ERO")
    model.go_to_area(area)
    at = joint_map.joint_position(area)
    assert at is not None
    ring = round(joint_map._radius("RH") + 3)
    gray = grab_gray(joint_map)
    ratio = joint_map.devicePixelRatioF()
    y, x = round(at.y() * ratio), round((at.x() + ring) * ratio)
    assert gray[y - 1 : y + 2, x - 1 : x + 2].max() > 230  # the white ring
    assert model.area_mark(area) == "empty"
    model.type_digit(2)
    assert model.area_mark(area) == "scored"
    model.go_to_area(area)
    model.mark_not_assessable("not_visible")
    assert model.area_mark(area) == "na"


def test_the_grids_map_moves_the_grids_cursor(qtbot: QtBot, model: GridModel) -> None:
    grid = ScoringGrid(model)
    qtbot.addWidget(grid)
    grid.resize(480, 1000)
    grid.show()
    model.set_current(0, 1)
    target = Area("RH", "CMC4", "JSN")
    click(qtbot, grid.joint_map, grid.joint_map.joint_position(target))
    assert (model.current_area, model.current_letter) == (target, "B")
    assert grid.table_model is not None
    index = grid.table.currentIndex()
    assert grid.table_model.area_row(index.row()) == model.row_of(target)
    assert index.column() == 1


def test_a_broken_diagram_file_is_refused_with_its_entry(tmp_path: Path) -> None:
    text = diagrams_file().read_text(encoding="utf-8")
    bad = tmp_path / "joint_map.toml"
    bad.write_text(text.replace("MCP3 = [0.450, 0.500]", 'MCP3 = [0.45, "x"]'), encoding="utf-8")
    with pytest.raises(DiagramError, match=r"hand\.sites\.MCP3"):
        load_diagrams(bad)
    bad.write_text("[hand]\nheight = 1.4\n", encoding="utf-8")
    with pytest.raises(DiagramError, match="hand.sites"):
        load_diagrams(bad)


def test_the_sides_are_drawn_as_told_with_their_letters(
    qtbot: QtBot, model: GridModel, joint_map: JointMap
) -> None:
    """The patient's right on the viewer's left by default (the conventional display), the
    other way round when the film shows it so; thumbs point to the middle either way."""
    middle = joint_map.width() / 2

    def x_of(region: str, joint: str = "MCP3") -> float:
        at = joint_map.joint_position(Area(region, joint, "ERO"))
        assert at is not None
        return at.x()

    assert joint_map.right_on_left
    assert joint_map.screen_sides() == ("RH", "LH")
    assert x_of("RH") < middle < x_of("LH")
    letters = joint_map.side_letter_rects()
    assert letters["RH"].center().x() < middle < letters["LH"].center().x()
    # Thumbs (MCP1) nearer the middle than the little fingers (MCP5).
    for region in ("RH", "LH"):
        assert abs(x_of(region, "MCP1") - middle) < abs(x_of(region, "MCP5") - middle)
    joint_map.set_right_on_left(False)
    assert joint_map.screen_sides() == ("LH", "RH")
    assert x_of("LH") < middle < x_of("RH")
    letters = joint_map.side_letter_rects()
    assert letters["LH"].center().x() < middle < letters["RH"].center().x()
    for region in ("RH", "LH"):
        assert abs(x_of(region, "MCP1") - middle) < abs(x_of(region, "MCP5") - middle)
    # Clicks follow the drawing.
    click(qtbot, joint_map, joint_map.joint_position(Area("RH", "PIP2", "ERO")))
    assert model.current_area == Area("RH", "PIP2", "ERO")
    # The side letters are drawn: bright pixels in the letter's box, none there without.
    ratio = joint_map.devicePixelRatioF()
    box = letters["RH"]
    gray = grab_gray(joint_map)
    rows = slice(round(box.top() * ratio), round(box.bottom() * ratio))
    cols = slice(round(box.left() * ratio), round(box.right() * ratio))
    assert gray[rows, cols].max() > 120


@pytest.mark.parametrize(
    ("orientation", "flip", "right_on_left"),
    [
        (["L", "F"], False, True),  # the conventional display
        (["R", "F"], False, False),  # stored mirrored
        (None, False, True),  # silent header: the convention
        (["L", "F"], True, False),  # the reader's flip swaps the sides
        (["R", "F"], True, True),
        (None, True, False),
        (["F", "L"], False, False),  # rows run to the feet: after a quarter turn clockwise ...
    ],
)
def test_the_viewer_tells_which_side_of_the_patient_is_on_the_left(
    orientation: list[str] | None, flip: bool, right_on_left: bool
) -> None:
    from scorer.gui.viewer_state import ViewerModel
    from scorer.imaging.radiograph import radiograph_from_dataset
    from tests.intake.dicom_maker import make_dx

    ds = make_dx()
    if orientation is not None:
        ds.PatientOrientation = orientation
    image = radiograph_from_dataset(ds)
    assert image.patient_orientation == (tuple(orientation) if orientation else ())
    assert image.laterality == "B"
    viewer = ViewerModel(image, width=400, height=300)
    if flip:
        viewer.flip()
    if orientation == ["F", "L"]:
        viewer.rotate(1)  # ... the patient's left (down the rows) turns to the screen's left
    assert viewer.patient_right_on_left() is right_on_left
