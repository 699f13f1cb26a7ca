"""The grade atlas's drawings: the same synthetic joint at each grade, the grade drawn being
the generator's ground truth for that area."""

from __future__ import annotations

import numpy as np
import pytest

from scorer.core.methods import Area, get_method
from scorer.imaging.grade_drawings import atlas_damage, grade_drawings
from scorer.imaging.synthetic import larsen_truth, svh_sides, svh_truth


@pytest.mark.parametrize("method_id", ["svh", "larsen1995"])
def test_the_damage_drawn_is_the_grade_of_every_area(method_id: str) -> None:
    method = get_method(method_id)
    for adef in method.areas:
        f = method.features[adef.feature]
        for grade in range(f.min, f.max + 1):
            damage = atlas_damage(adef.area, grade)
            if adef.joint == "WQ4" and grade >= 2:
                # Joint spaces only: no erosion to draw these grades with.
                assert damage is None
                continue
            assert damage is not None, (adef.area, grade)
            if method_id == "larsen1995":
                assert larsen_truth(damage, [adef.region])[adef.area] == grade, adef.area
            elif adef.sides:
                assert svh_sides(damage, [adef.region])[adef.area] == (grade, grade)
            else:
                assert svh_truth(damage, [adef.region])[adef.area] == grade, adef.area
            # Only the area (its quadrant's members for a Larsen wrist) is damaged.
            assert all(a.region == adef.region for a in damage)


def test_one_crop_one_window_and_each_grade_looks_different() -> None:
    area = Area("RH", "PIP3", "JSN")
    drawn = grade_drawings(area, range(5))
    assert sorted(drawn) == [0, 1, 2, 3, 4]
    shapes = {d.shape for d in drawn.values()}
    assert len(shapes) == 1
    rows, cols = shapes.pop()
    assert rows == cols and rows >= 150  # square, readable without blowing it up
    for g in range(1, 5):
        assert np.abs(drawn[g].astype(int) - drawn[0].astype(int)).sum() > 0, g
    # The same grade drawn twice is the same drawing (fixed seed).
    again = grade_drawings(area, [0, 3])
    assert np.array_equal(again[3], drawn[3])


def test_a_feature_without_drawings_is_refused_by_name() -> None:
    left_out = grade_drawings(Area("LH", "WQ4", "LAR"), [0, 1, 2])
    assert sorted(left_out) == [0, 1]
    with pytest.raises(ValueError, match="no drawing for feature 'XYZ'"):
        atlas_damage(Area("LH", "MCP2", "XYZ"), 1)
    with pytest.raises(ValueError, match="Larsen grade 6 outside 0-5"):
        atlas_damage(Area("LH", "MCP2", "LAR"), 6)
