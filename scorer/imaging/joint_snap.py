"""Refinement of a three-click fit on the film's own pixels: each finger and toe joint moved to
the joint space the film shows near where the template put it.

The template of :mod:`scorer.core.joint_fit` is a mean hand or foot; a patient's rays differ
from it in length and spread, so joints far from the three clicked anchors (the fingers' PIPs,
the thumb's IP, the middle toes' MTPs) land a few mm off. On a radiograph a finger or toe joint
is a dark gap across the ray between two bright bone ends, and it lies on the axis of the bone
proximal to it. :func:`refine_joints` therefore, ray by ray from proximal to distal, finds that
bone's axis (the centre of the bright band across it, at two places) and the darkest gap along
the axis near the fitted joint, and moves the joint there. A joint whose gap is not clear (a
blank or noisy film, an ankylosed joint with no gap left) keeps its fitted position, and no
joint moves more than :data:`SEARCH_MM`. Clicked joints never move. Wrist, carpal and CMC
positions sit close to the RAD anchor, where the fit is already within a mm, and are kept.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from scorer.core.joint_fit import (
    DEFAULT_TRANSFORM,
    TEMPLATES,
    Point,
    fit_joints,
    region_joints,
)
from scorer.core.methods import REGION_KINDS
from scorer.imaging.radiograph import Radiograph

FloatImage = npt.NDArray[np.float64]

SEARCH_MM = 6.0
"""The farthest a joint moves from its fitted position; farther evidence is another joint."""
MIN_GAP_DEPTH = 0.04
"""A joint space must be at least this much darker than the bone ends on both sides (share of
the film's bone-to-background range) to count as evidence; shallower dips are noise."""

NOISE_FACTOR = 5.0
"""Band heights and gap depths must also exceed this many times the film's pixel noise: the
profiles are smoothed and averaged, so noise alone stays far below it."""

RAYS: Mapping[str, tuple[tuple[str, str | None], ...]] = {
    "hand": (
        ("MCP1", "CMC1"),
        ("IP1", "MCP1"),
        ("MCP2", None),
        ("PIP2", "MCP2"),
        ("MCP3", None),
        ("PIP3", "MCP3"),
        ("MCP4", None),
        ("PIP4", "MCP4"),
        ("MCP5", None),
        ("PIP5", "MCP5"),
    ),
    "foot": (
        ("MTP1", None),
        ("IP1", "MTP1"),
        ("MTP2", None),
        ("MTP3", None),
        ("MTP4", None),
        ("MTP5", None),
    ),
}
"""The joints refined per kind of part, proximal before distal, each with the joint at the
other end of the bone proximal to it (None: a metacarpal or metatarsal, whose base is not a
scored joint; its shaft is looked for proximally along the part's distal direction)."""

SHAFT_MM = 16.0
"""How far proximal of a metacarpal or metatarsal joint its shaft is sought, when its base is
not a joint to start from."""


def _checked_pixels(pixels: Any) -> FloatImage:
    arr = np.asarray(pixels)
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 2:
        raise ValueError(f"the pixels must be a 2-D image, not an array of shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"the pixels must be real numbers, not {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def _contrast_range(image: FloatImage) -> float:
    """The film's bone-to-background range: 1st to 99.5th percentile of a regular subsample."""
    step = max(1, int(math.sqrt(image.size / 250_000)))
    sample = image[::step, ::step]
    lo, hi = np.percentile(sample[np.isfinite(sample)], [1.0, 99.5])
    return float(hi - lo)


def _noise_sigma(image: FloatImage) -> float:
    """The film's pixel noise (standard deviation), robustly from neighbouring pixels'
    differences in a regular subsample: flat regions dominate, edges barely count."""
    step = max(1, int(math.sqrt(image.size / 250_000)))
    sample = image[:: 4 * step, :]  # whole rows: neighbours are adjacent pixels
    diffs = np.abs(np.diff(sample, axis=1))
    return float(1.4826 * np.median(diffs[np.isfinite(diffs)]) / math.sqrt(2.0))


def evidence_floor(image: FloatImage) -> float | None:
    """The least band height or gap depth (in the film's values) that counts as evidence on
    this film: it must stand out of the film's contrast and, on a noisy film, of its noise.
    None for a flat film, which shows nothing."""
    scale = _contrast_range(image)
    if not math.isfinite(scale) or scale <= 0:
        return None
    return max(MIN_GAP_DEPTH * scale, NOISE_FACTOR * _noise_sigma(image))


def _distal_direction(region: str, fitted: Mapping[str, Point]) -> Point:
    """The part's distal direction on the film (unit, pixels), by the rotation that best maps
    the template's joints (distal is -y there) onto the fitted ones."""
    model = TEMPLATES[region]
    names = [j for j in model if j in fitted]
    mx = sum(model[j][0] for j in names) / len(names)
    my = sum(model[j][1] for j in names) / len(names)
    fx = sum(fitted[j][0] for j in names) / len(names)
    fy = sum(fitted[j][1] for j in names) / len(names)
    a = sum(
        (model[j][0] - mx) * (fitted[j][0] - fx) + (model[j][1] - my) * (fitted[j][1] - fy)
        for j in names
    )
    b = sum(
        (model[j][0] - mx) * (fitted[j][1] - fy) - (model[j][1] - my) * (fitted[j][0] - fx)
        for j in names
    )
    norm = math.hypot(a, b) or 1.0
    a, b = a / norm, b / norm
    return (b, -a)  # the rotation (a, b) applied to (0, -1)


class _Sampler:
    """Bilinear samples of a film along lines, in pixel units (x column, y row)."""

    def __init__(self, image: FloatImage, pixel_mm: float) -> None:
        self.image = image
        self.px = 1.0 / pixel_mm  # pixels per mm

    def profile(
        self, centre: Point, along: Point, half_mm: float, across_mm: float = 0.0
    ) -> tuple[FloatImage, FloatImage]:
        """Samples every quarter pixel along ``along`` through ``centre`` (offsets in mm and
        values), averaged over ``across_mm`` either side of the line."""
        step = 0.25
        t = np.arange(-half_mm * self.px, half_mm * self.px + step / 2, step)
        nx, ny = -along[1], along[0]
        k = max(0, int(across_mm * self.px))
        offsets = np.arange(-k, k + 1, dtype=np.float64)
        xs = centre[0] + t[None, :] * along[0] + offsets[:, None] * nx
        ys = centre[1] + t[None, :] * along[1] + offsets[:, None] * ny
        values = ndimage.map_coordinates(self.image, [ys, xs], order=1, mode="nearest")
        return t / self.px, values.mean(axis=0)


def _smooth(values: FloatImage, sigma_samples: float) -> FloatImage:
    out: FloatImage = ndimage.gaussian_filter1d(values, sigma_samples, mode="nearest")
    return out


def _band_centre(
    s: _Sampler, centre: Point, across: Point, half_mm: float, floor: float
) -> float | None:
    """Offset (mm, along ``across``) of the middle of the bright band nearest ``centre``: the
    midpoint of its half-height edges. None when no band stands out."""
    t, v = s.profile(centre, across, half_mm)
    v = _smooth(v, 0.3 * s.px * 4)
    lo = float(v.min())
    # the band's peak: the brightest sample within 2 mm of the expected centre
    near = np.flatnonzero(np.abs(t) <= 2.0)
    peak = int(near[np.argmax(v[near])])
    height = float(v[peak]) - lo
    if height < floor:
        return None
    half = lo + height / 2.0
    i0 = _band_edge(v, peak, -1, half, height)
    i1 = _band_edge(v, peak, 1, half, height)
    if i0 is None or i1 is None:
        return None
    return float((t[i0] + t[i1]) / 2.0)


def _band_edge(v: FloatImage, peak: int, step: int, half: float, height: float) -> int | None:
    """Where a bright band ends going from ``peak`` by ``step``: below half its height, or at
    a dip a quarter of its height deep (a neighbouring bone touching it)."""
    i = peak
    top = float(v[peak])
    while 0 < i < len(v) - 1:
        i += step
        if v[i] < half:
            return i
        if not 0 < i < len(v) - 1:
            return None  # the band runs off the profile: its edge is not seen
        top = max(top, float(v[i]))
        if v[i] <= v[i + step] and v[i] <= v[i - step] and top - v[i] >= height / 4.0:
            return i
    return None


def _gap_offset(
    s: _Sampler, centre: Point, along: Point, half_mm: float, floor: float
) -> float | None:
    """Offset (mm, along ``along``) of the deepest dark gap between two bright stretches within
    ``half_mm`` of ``centre``; None when no gap is deep enough."""
    t, v = s.profile(centre, along, half_mm + 3.0, across_mm=1.0)
    v = _smooth(v, 0.25 * s.px * 4)
    best: tuple[float, float] | None = None
    window = int(3.0 * s.px * 4)  # bone ends within 3 mm either side of the gap
    inside = np.flatnonzero(np.abs(t) <= half_mm)
    minima = [i for i in inside if 0 < i < len(v) - 1 and v[i] <= v[i - 1] and v[i] <= v[i + 1]]
    for i in minima:
        left = float(v[max(0, i - window) : i].max())
        right = float(v[i + 1 : i + 1 + window].max())
        depth = min(left, right) - float(v[i])
        if depth >= floor and (best is None or depth > best[0]):
            best = (depth, float(t[i]))
    return None if best is None else best[1]


def _unit(v: Point) -> Point | None:
    n = math.hypot(v[0], v[1])
    return None if n < 1e-9 else (v[0] / n, v[1] / n)


def _snap_one(
    s: _Sampler,
    floor: float,
    predicted: Point,
    proximal: Point,
    pixel_mm: float,
    fracs: tuple[float, float],
) -> Point | None:
    """The joint on the axis of the bone from ``proximal`` towards ``predicted``, at its gap."""
    d0 = _unit((predicted[0] - proximal[0], predicted[1] - proximal[1]))
    if d0 is None:
        return None
    across = (-d0[1], d0[0])
    length = math.hypot(predicted[0] - proximal[0], predicted[1] - proximal[1])
    centres = []
    for frac in fracs:
        p = (proximal[0] + d0[0] * length * frac, proximal[1] + d0[1] * length * frac)
        off = _band_centre(s, p, across, 9.0, floor)
        if off is None:
            return None
        off_px = off / pixel_mm
        centres.append((p[0] + across[0] * off_px, p[1] + across[1] * off_px))
    axis = _unit((centres[1][0] - centres[0][0], centres[1][1] - centres[0][1]))
    if axis is None or axis[0] * d0[0] + axis[1] * d0[1] < math.cos(math.radians(15.0)):
        return None  # the bands found do not make a bone along the ray
    # the point of the axis nearest the prediction, then the gap along the axis from there
    rel = (predicted[0] - centres[1][0], predicted[1] - centres[1][1])
    k = rel[0] * axis[0] + rel[1] * axis[1]
    foot = (centres[1][0] + axis[0] * k, centres[1][1] + axis[1] * k)
    gap = _gap_offset(s, foot, axis, SEARCH_MM - 1.0, floor)
    if gap is None:
        return None
    return (foot[0] + axis[0] * gap / pixel_mm, foot[1] + axis[1] * gap / pixel_mm)


def refine_joints(
    pixels: Any,
    pixel_mm: float,
    region: str,
    fitted: Mapping[str, Point],
    fixed: Collection[str],
    *,
    floor: float | None = None,
) -> dict[str, Point]:
    """Every joint of ``fitted`` (pixels, x column, y row), the finger and toe joints moved to
    the joint space the film shows nearby.

    ``pixels`` is the film (2-D, bone bright: MONOCHROME2 sense after the modality transform),
    ``pixel_mm`` its pixel spacing, ``region`` the part (RH, LH, RF, LF) and ``fitted`` the
    three-click fit's positions. Joints in ``fixed`` (the clicked ones) stay exactly where they
    are; so does every joint without clear evidence, and none moves more than
    :data:`SEARCH_MM`. ``floor`` is :func:`evidence_floor` of the film when the caller has
    it already (the locator refines many times on one film).
    """
    image = _checked_pixels(pixels)
    if not (isinstance(pixel_mm, int | float) and math.isfinite(pixel_mm) and pixel_mm > 0):
        raise ValueError(f"the pixel spacing must be a positive number of mm, not {pixel_mm!r}")
    joints = region_joints(region)
    missing = [j for j in joints if j not in fitted]
    if missing:
        raise ValueError(f"the fitted positions lack {', '.join(missing)} of {region}")
    out = {j: (float(fitted[j][0]), float(fitted[j][1])) for j in fitted}
    if floor is None:
        floor = evidence_floor(image)
    if floor is None:
        return out  # a flat film shows nothing to refine on
    s = _Sampler(image, float(pixel_mm))
    up = _distal_direction(region, out)
    for joint, prox in RAYS[REGION_KINDS[region]]:
        if joint in fixed or joint not in out:
            continue
        # the fit's error so far along this ray carries over to the joint before it is sought
        start = out[joint]
        if prox is not None:
            shift = (out[prox][0] - fitted[prox][0], out[prox][1] - fitted[prox][1])
            start = (start[0] + shift[0], start[1] + shift[1])
            proximal = out[prox]
        else:
            back = SHAFT_MM / pixel_mm
            proximal = (start[0] - up[0] * back, start[1] - up[1] * back)
        fracs = (0.45, 0.75) if prox is not None else (0.0, 0.5)
        found = _snap_one(s, floor, start, proximal, float(pixel_mm), fracs)
        if found is None:
            continue
        f0 = fitted[joint]
        if math.hypot(found[0] - f0[0], found[1] - f0[1]) * pixel_mm <= SEARCH_MM:
            out[joint] = found
    return out


def bone_bright_pixels(radiograph: Radiograph) -> FloatImage:
    """A radiograph's full-resolution modality values, negated when its polarity shows low
    values bright (MONOCHROME1, INVERSE), so that bone is bright as :func:`refine_joints`
    expects whatever the film's photometric interpretation."""
    stored = radiograph.pyramid.levels[0].astype(np.int64) + radiograph.pyramid.offset
    values = np.asarray(radiograph.modality.apply(stored), dtype=np.float64)
    return -values if radiograph.polarity.invert else values


def fit_and_refine(
    pixels: Any,
    pixel_mm: float | None,
    region: str,
    clicks: Mapping[str, Point],
    transform: str = DEFAULT_TRANSFORM,
    template: Mapping[str, Point] | None = None,
) -> dict[str, Point]:
    """Every joint of ``region`` from three (or more) clicks: the three-click fit
    (:func:`scorer.core.joint_fit.fit_joints`, whose FitError names bad clicks) refined on the
    film's pixels by :func:`refine_joints`; the clicked joints stay where they were clicked.
    A film without a pixel spacing keeps the fit: the search's bounds are in mm."""
    fitted = fit_joints(region, clicks, pixel_mm, transform, template)
    if pixel_mm is None:
        return fitted
    return refine_joints(pixels, pixel_mm, region, fitted, fixed=set(clicks))
