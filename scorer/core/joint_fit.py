"""The three-click fit: every joint of a hand or foot placed from three clicked anchor joints.

A template gives where each joint of a hand or foot lies (mm, as a film shows a right hand or
foot: x to the right, y down); the left side's is its mirror image. Three clicks on a film (the
anchors of :data:`ANCHORS`, or any three or more joints of the region) fix a similarity
(shift, rotation, one scale) or affine transform from the template to the film's pixels, and
the transform places every other joint. Clicked joints stay exactly where they were clicked.

The built-in templates (``resources/joint_templates.json``, made by
``scripts/make_joint_templates.py``) are the synthetic generator's mean anatomy. A patient's
own anatomy fits better: :func:`patient_template` turns the positions already placed on another
film of the same patient (another visit, or the other side mirrored) into a template.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from functools import cache

from scorer.core.methods import REGION_KINDS, REGIONS, builtin_methods, resources_dir

Point = tuple[float, float]

TRANSFORMS: tuple[str, ...] = ("similarity", "affine")
DEFAULT_TRANSFORM = "similarity"
"""Similarity: exact clicks on the demo films place joints as well as affine does (see
tests/core/test_joint_fit.py), and a least-squares similarity is steadier when a click is off."""

ANCHORS: Mapping[str, tuple[str, str, str]] = {
    "LH": ("MCP2", "MCP5", "RAD"),
    "RH": ("MCP2", "MCP5", "RAD"),
    "LF": ("MTP1", "MTP5", "IP1"),
    "RF": ("MTP1", "MTP5", "IP1"),
}
"""The three joints a user clicks per region: easy to find on any film and spread across the
part. The thumb's MCP1 would fit the synthetic films a little better, but a real thumb's
position varies far more than the index finger's from film to film."""

ANCHOR_NAMES: Mapping[str, str] = {
    "MCP2": "MCP2 (index finger's knuckle)",
    "MCP5": "MCP5 (little finger's knuckle)",
    "RAD": "RAD (distal radius, middle of its joint surface)",
    "MTP1": "MTP1 (great toe's ball joint)",
    "MTP5": "MTP5 (little toe's ball joint)",
    "IP1": "IP1 (great toe's interphalangeal joint)",
}
"""How an anchor is named on screen."""

SIZE_RANGE = (0.6, 1.6)
"""A fitted hand or foot smaller or larger than these shares of the template's size, by the
film's pixel spacing, means wrong clicks or a wrong spacing."""
MISFIT_LIMIT = 0.06
"""A similarity fit whose clicks miss the template's shape by more than this share of the
clicks' spread means the clicks are not the named joints (or are in the wrong order). Exact
clicks on the sample films miss by at most 0.014; the rest is room for clicks 2 mm off."""
FLAT_LIMIT = 0.25
"""Clicks whose spread across their main line is under this share of the template points'
own spread lie (almost) on a line: no fit can turn them."""


class FitError(ValueError):
    """Clicks from which no fit can be made, with what is wrong in the message."""


def region_joints(region: str) -> tuple[str, ...]:
    """The joint codes of a region: every joint any built-in method scores there, sorted."""
    if region not in REGIONS:
        raise FitError(f"unknown region {region!r} (known: {', '.join(REGIONS)})")
    codes = {a.joint for m in builtin_methods().values() for a in m.areas_of(region=region)}
    return tuple(sorted(codes))


@cache
def _template_file() -> Mapping[str, Mapping[str, Point]]:
    raw = json.loads((resources_dir() / "joint_templates.json").read_text(encoding="utf-8"))
    return {
        kind: {joint: (float(x), float(y)) for joint, (x, y) in raw[kind].items()}
        for kind in ("hand", "foot")
    }


def _mirror(points: Mapping[str, Point]) -> dict[str, Point]:
    return {joint: (-x, y) for joint, (x, y) in points.items()}


def template(region: str) -> dict[str, Point]:
    """The built-in template of a region: joint -> (x, y) mm, mirrored for the left side."""
    joints = region_joints(region)
    right = _template_file()[REGION_KINDS[region]]
    points = {j: right[j] for j in joints}
    return _mirror(points) if region[0] == "L" else points


TEMPLATES: Mapping[str, Mapping[str, Point]] = {region: template(region) for region in REGIONS}
"""The built-in templates by region (see :func:`template`)."""


def patient_template(
    region: str, placed: Mapping[str, Point], placed_region: str, pixel_mm: float | None
) -> dict[str, Point]:
    """A template of ``region`` from the patient's own joints placed on another film.

    ``placed`` are the positions (pixels) of every joint of ``placed_region`` — the same kind
    of part, on another visit's film or on the other side (mirrored) — and ``pixel_mm`` that
    film's pixel spacing (None: the template stays in pixels, which a fit without a spacing
    accepts as well).
    """
    joints = region_joints(region)
    if REGION_KINDS.get(placed_region) != REGION_KINDS[region]:
        raise FitError(f"a {placed_region} film cannot be a template for {region}")
    missing = [j for j in joints if j not in placed]
    if missing:
        raise FitError(
            f"the {placed_region} positions lack {', '.join(missing)}: place every joint of "
            "that film before using it as a template"
        )
    k = _spacing(pixel_mm) or 1.0
    points = {j: (placed[j][0] * k, placed[j][1] * k) for j in joints}
    return _mirror(points) if placed_region[0] != region[0] else points


def _spacing(pixel_mm: float | None) -> float | None:
    if pixel_mm is None:
        return None
    if isinstance(pixel_mm, bool) or not isinstance(pixel_mm, int | float):
        raise FitError(f"the pixel spacing must be a number of mm, not {pixel_mm!r}")
    if not math.isfinite(pixel_mm) or pixel_mm <= 0:
        raise FitError(f"the pixel spacing must be a positive number of mm, not {pixel_mm!r}")
    return float(pixel_mm)


def _checked_clicks(region: str, clicks: Mapping[str, Point]) -> dict[str, Point]:
    joints = set(region_joints(region))
    out: dict[str, Point] = {}
    for joint, point in clicks.items():
        if joint not in joints:
            raise FitError(f"{joint!r} is not a joint of {region}")
        try:
            x, y = (float(point[0]), float(point[1]))
        except (TypeError, ValueError, IndexError):
            raise FitError(f"the click on {joint} must be (x, y), not {point!r}") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise FitError(f"the click on {joint} is not a finite position: {point!r}")
        out[joint] = (x, y)
    anchors = ANCHORS[region]
    if len(out) < 3:
        wanted = ", ".join(ANCHOR_NAMES[a] for a in anchors)
        raise FitError(f"the fit needs three clicks, not {len(out)}: click {wanted}")
    return out


def _spread(points: list[Point]) -> tuple[float, float]:
    """The standard deviations of points along and across their main line."""
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points) / n
    syy = sum((p[1] - my) ** 2 for p in points) / n
    sxy = sum((p[0] - mx) * (p[1] - my) for p in points) / n
    mid, half = (sxx + syy) / 2.0, math.hypot((sxx - syy) / 2.0, sxy)
    return math.sqrt(mid + half), math.sqrt(max(mid - half, 0.0))


def _check_shape(region: str, clicks: Mapping[str, Point], model: Mapping[str, Point]) -> None:
    """Refuse clicks on one spot, clicks on a line, and template points on a line."""
    names = list(clicks)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            pa, pb = clicks[a], clicks[b]
            if math.hypot(pa[0] - pb[0], pa[1] - pb[1]) < 1.0:  # under a pixel apart
                raise FitError(f"{a} and {b} were clicked on the same spot: click each joint")
    long_m, across_m = _spread([model[j] for j in names])
    if across_m < 0.05 * long_m:
        raise FitError(
            f"{', '.join(names)} lie almost on a line in a {REGION_KINDS[region]}: click "
            f"joints further apart, such as {', '.join(ANCHORS[region])}"
        )
    long_c, across_c = _spread([clicks[j] for j in names])
    if across_c < FLAT_LIMIT * (across_m / long_m) * long_c:
        raise FitError(
            f"the clicks on {', '.join(names)} lie almost on a line: click each named joint"
        )


def _similarity(src: list[Point], dst: list[Point]) -> tuple[float, float, float, float]:
    """Least-squares (a, b, tx, ty) with x' = a x - b y + tx, y' = b x + a y + ty."""
    n = len(src)
    mx, my = sum(p[0] for p in src) / n, sum(p[1] for p in src) / n
    ux, uy = sum(p[0] for p in dst) / n, sum(p[1] for p in dst) / n
    ss = sum((s[0] - mx) ** 2 + (s[1] - my) ** 2 for s in src)
    a = (
        sum(
            (s[0] - mx) * (d[0] - ux) + (s[1] - my) * (d[1] - uy)
            for s, d in zip(src, dst, strict=True)
        )
        / ss
    )
    b = (
        sum(
            (s[0] - mx) * (d[1] - uy) - (s[1] - my) * (d[0] - ux)
            for s, d in zip(src, dst, strict=True)
        )
        / ss
    )
    return a, b, ux - a * mx + b * my, uy - b * mx - a * my


def _solve3(m: list[list[float]], v: list[float]) -> list[float]:
    """Solve a 3 x 3 linear system by Cramer's rule (the matrix is checked non-singular)."""

    def det(a: list[list[float]]) -> float:
        return (
            a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
            - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
            + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])
        )

    d = det(m)
    out = []
    for col in range(3):
        mc = [[v[r] if c == col else m[r][c] for c in range(3)] for r in range(3)]
        out.append(det(mc) / d)
    return out


def _affine(src: list[Point], dst: list[Point]) -> tuple[list[float], list[float]]:
    """Least-squares rows (a, b, c) with x' = a x + b y + c and y' likewise (exact for 3)."""
    m = [[0.0] * 3 for _ in range(3)]
    vx, vy = [0.0] * 3, [0.0] * 3
    for (x, y), (u, w) in zip(src, dst, strict=True):
        row = (x, y, 1.0)
        for i in range(3):
            for j in range(3):
                m[i][j] += row[i] * row[j]
            vx[i] += row[i] * u
            vy[i] += row[i] * w
    return _solve3(m, vx), _solve3(m, vy)


def fit_joints(
    region: str,
    clicks: Mapping[str, Point],
    pixel_mm: float | None,
    transform: str = DEFAULT_TRANSFORM,
    template: Mapping[str, Point] | None = None,
) -> dict[str, Point]:
    """Every joint of ``region`` in pixels, fitted to the clicked joints.

    ``clicks`` maps joint codes of the region to their clicked pixel positions (x column, y
    row): the three anchors of :data:`ANCHORS`, or any three or more joints not on a line.
    ``pixel_mm`` (the film's pixel spacing, if known) lets the fit refuse a hand of an
    impossible size. ``template`` (mm; default the built-in :data:`TEMPLATES`) may be a
    patient's own (:func:`patient_template`). FitError says what is wrong with the clicks.
    """
    if transform not in TRANSFORMS:
        raise FitError(f"unknown transform {transform!r} (known: {', '.join(TRANSFORMS)})")
    joints = region_joints(region)
    spacing = _spacing(pixel_mm)
    model = dict(TEMPLATES[region] if template is None else template)
    missing = [j for j in joints if j not in model]
    if missing:
        raise FitError(f"the template lacks {', '.join(missing)} of {region}")
    pts = _checked_clicks(region, clicks)
    _check_shape(region, pts, model)
    names = list(pts)
    src = [model[j] for j in names]
    dst = [pts[j] for j in names]
    ax, ay = _affine(src, dst)
    if ax[0] * ay[1] - ax[1] * ay[0] <= 0:
        raise FitError(
            f"the clicks are a mirror image of a {_part_name(region)}: is the film's side "
            f"right, and were {', '.join(names)} clicked on those joints?"
        )
    a, b, tx, ty = _similarity(src, dst)
    _check_similarity(region, names, src, dst, (a, b, tx, ty), spacing, template is None)

    def place(p: Point) -> Point:
        if transform == "affine":
            return (ax[0] * p[0] + ax[1] * p[1] + ax[2], ay[0] * p[0] + ay[1] * p[1] + ay[2])
        return (a * p[0] - b * p[1] + tx, b * p[0] + a * p[1] + ty)

    return {j: pts[j] if j in pts else place(model[j]) for j in joints}


def _part_name(region: str) -> str:
    side = "left" if region[0] == "L" else "right"
    return f"{side} {REGION_KINDS[region]}"


def _check_similarity(
    region: str,
    names: list[str],
    src: list[Point],
    dst: list[Point],
    fit: tuple[float, float, float, float],
    spacing: float | None,
    generic: bool,
) -> None:
    """Refuse clicks that do not have the part's shape, or (by the spacing) its size."""
    a, b, tx, ty = fit
    scale = math.hypot(a, b)
    misfit = max(
        math.hypot(a * s[0] - b * s[1] + tx - d[0], b * s[0] + a * s[1] + ty - d[1])
        for s, d in zip(src, dst, strict=True)
    )
    long_c, _ = _spread(dst)
    if misfit > MISFIT_LIMIT * 2.0 * long_c:
        raise FitError(
            f"the clicks do not have the shape of a {_part_name(region)} "
            f"(off by {misfit / max(scale, 1e-12):.0f} mm): check that "
            f"{', '.join(names)} were clicked on those joints"
        )
    if generic and spacing is not None:
        size = scale * spacing  # the film's mm per template mm
        if not SIZE_RANGE[0] <= size <= SIZE_RANGE[1]:
            raise FitError(
                f"the clicks make the {_part_name(region)} {size:.0%} of a typical one's size: "
                f"check the clicked joints ({', '.join(names)}) and the film's pixel spacing"
            )
