"""Drawings of every grade of one area: the same synthetic joint rendered at each grade.

The grade atlas shows them beside each grade's wording. Each drawing is made by
:mod:`scorer.imaging.synthetic` (so no picture files ship with the program): the area's hand or
foot, one patient's anatomy (:data:`ATLAS_SEED`), rendered once per grade with only that area
damaged, and cropped to a square around the area's box. All grades of an area share one crop and
one window, so what differs between two drawings is the grade and nothing else.

Larsen grades are drawn through the svh damage that implies them (:data:`LARSEN_AS_SVH`), the
wrist quadrants through the svh areas :data:`~scorer.imaging.synthetic.WRIST_QUADRANTS` assigns
them; :func:`~scorer.imaging.synthetic.larsen_truth` of the damage is the grade drawn.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
from numpy.typing import NDArray

from scorer.core.methods import Area
from scorer.imaging.synthetic import (
    WRIST_QUADRANTS,
    Damage,
    Grade,
    Side,
    SyntheticImage,
    larsen_truth,
    render_foot,
    render_hand,
)

ATLAS_SEED = 2929
"""The one synthetic patient (anatomy, pose, noise) every drawing is made from."""
ATLAS_PIXEL_MM = 0.125
"""Finer than the demo's films (0.25 mm), so a drawing stays sharp at a readable size."""
FIELD_MIN_MM = 20.0
"""The smallest field a drawing shows: about one joint and its neighbouring bone ends."""
FIELD_MARGIN = 1.35
"""The field around the area's box: the box and some bone beyond it."""

LARSEN_AS_SVH: Mapping[int, tuple[int, int]] = {
    0: (0, 0),
    1: (0, 2),
    2: (2, 0),
    3: (3, 0),
    4: (4, 3),
    5: (5, 3),
}
"""Per Larsen grade, the (svh erosion, svh narrowing) drawn for it: narrowing alone is grade 1,
small erosions 2, marked 3, severe erosions with the space mostly gone 4, collapse 5 (the
synthetic generator's :data:`~scorer.imaging.synthetic.LARSEN_FROM_ERO` and ``_JSN``)."""


def _svh_grade(area: Area, grade: int) -> Grade:
    """An svh grade of ``area`` as the generator takes it: foot erosion on both sides."""
    if area.feature == "ERO" and area.kind == "foot":
        return (grade, grade)
    return grade


def atlas_damage(area: Area, grade: int) -> Damage | None:
    """The svh damage that shows ``grade`` of ``area`` (an svh or Larsen area), nothing else.

    A foot erosion grade is drawn on both sides of the joint (each side is graded 0-5). None
    when the generator cannot show that grade there: a wrist quadrant made only of joint
    spaces (WQ4) has no erosion to draw Larsen 2 to 5 with. ValueError for a feature the
    generator cannot draw or a grade outside its range.
    """
    if area.feature in ("ERO", "JSN"):
        if grade == 0:
            return {}
        return {area: _svh_grade(area, grade)}
    if area.feature != "LAR":
        raise ValueError(f"{area}: no drawing for feature {area.feature!r}")
    if grade not in LARSEN_AS_SVH:
        raise ValueError(f"{area}: Larsen grade {grade} outside 0-5")
    ero, jsn = LARSEN_AS_SVH[grade]
    members = WRIST_QUADRANTS.get(area.joint, ((area.joint, "ERO"), (area.joint, "JSN")))
    damage: dict[Area, Grade] = {}
    for joint, feature in members:
        value = ero if feature == "ERO" else jsn
        if value:
            key = Area(area.region, joint, feature)
            damage[key] = _svh_grade(key, value)
    # The generator's own Larsen truth decides: a quadrant of joint spaces only (WQ4) has no
    # erosion to show grades 2 to 5 with.
    return damage if larsen_truth(damage, [area.region]).get(area) == grade else None


def _render(area: Area, damage: Damage, seed: int, pixel_mm: float) -> SyntheticImage:
    side: Side = "L" if area.region[0] == "L" else "R"
    render = render_hand if area.kind == "hand" else render_foot
    return render(side, damage, seed, pixel_mm)


def _field(image: SyntheticImage, area: Area, pixel_mm: float) -> tuple[int, int, int, int]:
    """The square crop (row0, col0, row1, col1) around ``area``'s box, inside the film."""
    box = image.boxes.get(area)
    if box is None:
        raise ValueError(f"{area}: the synthetic film has no box for this area")
    r0, c0, r1, c1 = box
    side = int(max(r1 - r0, c1 - c0, FIELD_MIN_MM / pixel_mm) * FIELD_MARGIN)
    side = min(side, image.rows, image.columns)
    top = min(max(0, (r0 + r1) // 2 - side // 2), image.rows - side)
    left = min(max(0, (c0 + c1) // 2 - side // 2), image.columns - side)
    return top, left, top + side, left + side


def grade_drawings(
    area: Area,
    grades: Iterable[int],
    *,
    seed: int = ATLAS_SEED,
    pixel_mm: float = ATLAS_PIXEL_MM,
) -> dict[int, NDArray[np.uint8]]:
    """8-bit square drawings (bone bright) of ``area`` at each of ``grades``, one crop and
    one window for all of them (a grade :func:`atlas_damage` cannot show is left out).
    Slow-ish (a film per grade): run it off the UI thread."""
    wanted = sorted(set(grades))
    crops: dict[int, NDArray[np.uint16]] = {}
    field: tuple[int, int, int, int] | None = None
    for grade in list(wanted):
        damage = atlas_damage(area, grade)
        if damage is None:
            wanted.remove(grade)
            continue
        image = _render(area, damage, seed, pixel_mm)
        if field is None:
            field = _field(image, area, pixel_mm)
        top, left, bottom, right = field
        crops[grade] = image.pixels[top:bottom, left:right]
    if not crops:
        return {}
    # The window of the undamaged joint (or the mildest grade asked), for every drawing.
    first = crops[wanted[0]].astype(np.float64)
    lo, hi = np.percentile(first, [1.0, 99.8])
    span = max(float(hi - lo), 1.0)
    return {
        g: np.clip(np.rint((c.astype(np.float64) - lo) / span * 255.0), 0, 255).astype(np.uint8)
        for g, c in crops.items()
    }
