"""The automatic joint locator: every joint of a PA hand or foot film found without clicks.

Classical image analysis, no trained model. On a coarse copy of the film (about 1 mm a cell)
two kinds of evidence are mapped per direction from the image's second derivatives: *ridges*
(a bright bone shaft across its axis) and *gaps* (a dark joint space across a ray, between two
bright bone ends). The generator's mean anatomy (:data:`scorer.core.joint_fit.TEMPLATES`, the
three-click fit's template) is a constellation of joints and bone shafts (for feet also the
toes, which keep a foot whose MTP spaces damage has closed from sliding a phalanx distally);
it is placed on the film by an exhaustive search over rotation, scale and shift that maximises
the evidence at the places it predicts (each sample scored in its own bone's direction, with a
few mm of tolerance), then refined at every cell near the best.

From that pose the three-click fit's local snap (:func:`scorer.imaging.joint_snap.refine_joints`)
moves every finger and toe joint, ray by ray, onto the gap the film shows; joints it leaves (it
has no shaft for MTP1 and MTP5, the three-click fit's anchors) are sought along their ray, and
MCP and toe joints are centred across their bone's head. A similarity fit of the template to
the joints found starts a second snap. The wrist is fitted apart: the radiocarpal and CMC3-5
joint spaces are sought along their bones, a similarity fit to them and the MCPs places every
wrist, carpal and CMC joint, and the whole wrist is moved across to the middle of the radius's
distal end (a fit to the fingers alone carries their spread into the wrist).

Each joint's confidence comes from its evidence: whether a gap was found, how deep it is (in
the film's evidence floor, :func:`scorer.imaging.joint_snap.evidence_floor`), and how far the
joint lies from where the fit of the other joints puts it; a wrist joint's from the share of
joints found and the wrist fit's misfit. Joints below :data:`SURE` are returned but marked
unsure: the caller leaves them to the three-click fit. A damaged joint without a gap
(ankylosis) is placed from its neighbours and is mostly unsure.

A film whose best constellation scores under :data:`MIN_SCORE` or shows too few joint gaps (a
chest, a leg, a blank or noisy image) is kind ``other``, with the reason; so is input that
cannot be a film (not 2-D, not numbers, too small, NaN, no pixel spacing).

Orientation: films are stored as displayed, fingers and toes up (within about 20 degrees),
the patient's right on the viewer's left; a two-sided film has the right part on the left.
Tuned on synthetic films only (seeds 1000-1999 of :mod:`scorer.imaging.synthetic`, hard mode):
no real hand or foot film was available, so its thresholds are the synthetic films' and need
checking on real ones.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from scorer.core.joint_fit import TEMPLATES, Point, region_joints
from scorer.core.methods import REGION_KINDS, REGIONS
from scorer.imaging.joint_snap import RAYS, evidence_floor, refine_joints

FloatImage = npt.NDArray[np.float64]

LOCATOR_VERSION = "1"
"""Bumped whenever the locator's results can change for the same film."""
SURE = 0.6
"""Confidence at or above which a joint is placed; below it the joint is left unsure."""

CELL_MM = 1.0
"""The coarse copy's cell size: joint gaps (1-2 mm) still show, the search stays quick."""
ANGLES_DEG = tuple(float(a) for a in range(-20, 21, 4))
"""Rotations searched first: films are displayed fingers up, positioned within about 15
degrees; the best is then refined by ANGLE_STEP_DEG either way."""
SCALES = tuple(0.80 + 0.05 * i for i in range(9))
"""Sizes searched first, as shares of the template (the generator's mean part); the best is
then refined by SCALE_STEP either way."""
ANGLE_STEP_DEG = 2.0
SCALE_STEP = 0.025
GRID_CELLS = 3
"""The first search tries template origins every this many cells (the evidence's tolerance
covers the cells between); the refinement tries every cell near the best."""
TOLERANCE_MM = 3.0
"""How far from a predicted place evidence still counts: the mean anatomy's rays differ from
a patient's by a few mm."""
ORIENTATIONS = 12
"""Directions the evidence is mapped in (every 15 degrees over a half turn)."""
MIN_FOUND: Mapping[str, int] = {"hand": 6, "foot": 4}
"""A part counts as found only when at least this many of its finger or toe joints show a gap
where the fitted template expects one."""
RIVAL_SHARE = 0.85
"""Candidates (hand or foot, mirrored or not) whose constellation scores below this share of
the best one's on the same side are dropped before their joints are placed."""
MIN_SCORE = 0.7
"""Mean evidence (0..1) per constellation sample below which no hand or foot is there: the
hard synthetic films' parts score 0.84 or more even with five ankylosed and collapsed joints
a hand, pydicom-data's chest and leg at most 0.51."""


@dataclass(frozen=True)
class LocatedJoint:
    """One joint placed by the locator, in stored-image pixels, with its confidence."""

    region: str
    joint: str
    x: float  # column, from the top-left pixel's centre
    y: float  # row
    confidence: float  # 0..1
    sure: bool  # confidence >= SURE


@dataclass(frozen=True)
class Location:
    """What the locator found on a film: the kind of part, its regions and their joints."""

    kind: str  # "hand", "foot" or "other"
    regions: tuple[str, ...]
    joints: tuple[LocatedJoint, ...]
    reason: str
    seconds: float


class _NotAFilm(ValueError):
    """Pixels that cannot be a hand or foot film, with why in the message."""


# --------------------------------------------------------------------------------------------
# Input


LARGEST_FILM_MM = 520.0
"""The longest side of a film the locator takes for a hand or foot film: a 35 x 43 cm cassette,
with room for a generous detector (a 17 x 17 in flat panel is 432 mm)."""


def _checked_image(pixels: Any, pixel_mm: float, monochrome1: bool) -> FloatImage:
    """The film as float, bone bright; _NotAFilm names what is wrong with the input."""
    if not isinstance(pixel_mm, int | float) or not math.isfinite(pixel_mm) or pixel_mm <= 0:
        raise _NotAFilm(f"the pixel spacing must be a positive number of mm, not {pixel_mm!r}")
    try:
        arr = np.asarray(pixels)
    except (TypeError, ValueError) as exc:
        raise _NotAFilm(f"the pixels are not an array ({exc})") from exc
    if arr.ndim != 2:
        raise _NotAFilm(f"the pixels must be a 2-D image, not an array of shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise _NotAFilm(f"the pixels must be real numbers, not {arr.dtype}")
    image = arr.astype(np.float64)
    if not np.isfinite(image).all():
        raise _NotAFilm("the pixels hold NaN or infinite values")
    rows_mm, cols_mm = image.shape[0] * pixel_mm, image.shape[1] * pixel_mm
    if min(rows_mm, cols_mm) < 60.0:
        raise _NotAFilm(
            f"the image is {cols_mm:.0f} x {rows_mm:.0f} mm: too small to hold a hand or foot"
        )
    if max(rows_mm, cols_mm) > LARGEST_FILM_MM:
        # A wrong spacing in the header (1 mm is a common default): the search's work grows
        # with the film's size in mm, and no hand or foot film is this large.
        raise _NotAFilm(
            f"the image would be {cols_mm:.0f} x {rows_mm:.0f} mm at {pixel_mm:g} mm a pixel: "
            f"larger than any hand or foot film ({LARGEST_FILM_MM:.0f} mm); the pixel spacing "
            "is probably wrong"
        )
    return -image if monochrome1 else image


def _coarse(image: FloatImage, pixel_mm: float) -> tuple[FloatImage, int]:
    """The film averaged over blocks of about CELL_MM, scaled to 0..1 (1st to 99.5th
    percentile), and the block size in pixels."""
    n = max(1, round(CELL_MM / pixel_mm))
    rows, cols = (image.shape[0] // n) * n, (image.shape[1] // n) * n
    small = image[:rows, :cols].reshape(rows // n, n, cols // n, n).mean(axis=(1, 3))
    lo, hi = np.percentile(small, [1.0, 99.5])
    if not hi - lo > 0:
        raise _NotAFilm("the image is blank: every pixel has (almost) the same value")
    return np.clip((small - lo) / (hi - lo), -0.5, 1.5), n


# --------------------------------------------------------------------------------------------
# Evidence maps


def _hessian(image: FloatImage, sigma: float) -> tuple[FloatImage, FloatImage, FloatImage]:
    """Second derivatives (xx, xy, yy) at scale ``sigma`` (cells), scale-normalised."""
    k = sigma * sigma
    hxx = ndimage.gaussian_filter(image, sigma, order=(0, 2)) * k
    hxy = ndimage.gaussian_filter(image, sigma, order=(1, 1)) * k
    hyy = ndimage.gaussian_filter(image, sigma, order=(2, 0)) * k
    return hxx, hxy, hyy


def _directional_maps(
    image: FloatImage, sigma: float, sign: float, norm: float, tol: int
) -> list[FloatImage]:
    """Per orientation (k * 180 / ORIENTATIONS degrees), the second derivative along it,
    signed (+1 gap: dark across the direction; -1 ridge), over ``norm``, clipped to 0..1 and
    spread by a maximum filter of ``tol`` cells."""
    hxx, hxy, hyy = _hessian(image, sigma)
    out = []
    for k in range(ORIENTATIONS):
        phi = math.pi * k / ORIENTATIONS
        c, s = math.cos(phi), math.sin(phi)
        d = sign * (hxx * c * c + 2.0 * hxy * c * s + hyy * s * s) / norm
        m = np.clip(d, 0.0, 1.0)
        out.append(ndimage.maximum_filter(m, size=2 * tol + 1) if tol > 0 else m)
    return out


@dataclass(frozen=True)
class _Sample:
    """A place of the template where evidence is expected: mm, direction (unit), kind."""

    x: float
    y: float
    ux: float
    uy: float
    gap: bool  # True: a joint gap across direction u; False: a bone shaft along u


def _unit(dx: float, dy: float) -> tuple[float, float]:
    n = math.hypot(dx, dy) or 1.0
    return dx / n, dy / n


def _samples(region: str) -> list[_Sample]:
    """The constellation of a region: its finger or toe joints (gaps along their ray) and
    points on the shafts between them (ridges along the ray)."""
    t = TEMPLATES[region]
    out: list[_Sample] = []

    def seg(a: Point, b: Point, gap_at_b: bool, fracs: Sequence[float]) -> None:
        ux, uy = _unit(b[0] - a[0], b[1] - a[1])
        for f in fracs:
            out.append(_Sample(a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]), ux, uy, False))
        if gap_at_b:
            out.append(_Sample(b[0], b[1], ux, uy, True))

    if REGION_KINDS[region] == "hand":
        seg(t["CMC1"], t["MCP1"], True, (0.35, 0.65))
        seg(t["MCP1"], t["IP1"], True, (0.5,))
        for i in (3, 4, 5):
            seg(t[f"CMC{i}"], t[f"MCP{i}"], True, (0.35, 0.65))
        base2 = (
            t["MCP2"][0] - (t["MCP3"][0] - t["CMC3"][0]),
            t["MCP2"][1] - (t["MCP3"][1] - t["CMC3"][1]),
        )
        seg(base2, t["MCP2"], True, (0.35, 0.65))
        for i in (2, 3, 4, 5):
            seg(t[f"MCP{i}"], t[f"PIP{i}"], True, (0.5,))
    else:
        for i in (1, 2, 3, 4, 5):
            mtp = t[f"MTP{i}"]
            seg((mtp[0], mtp[1] + 60.0), mtp, True, (0.2, 0.45, 0.7))
        seg(t["MTP1"], t["IP1"], True, (0.5,))
        # the toes themselves (about 30 mm from the MTP joint to the tip, the hallux's distal
        # phalanx about 15 mm beyond IP1), along the fan of the metatarsals: they pin the
        # constellation along the rays when damage has taken the MTP joint spaces, which
        # otherwise slides one phalanx distally onto the toes' PIP joints
        hx, hy = _unit(t["IP1"][0] - t["MTP1"][0], t["IP1"][1] - t["MTP1"][1])
        ip1 = t["IP1"]
        seg(ip1, (ip1[0] + 10.0 * hx, ip1[1] + 10.0 * hy), False, (0.5,))
        fan = (sum(t[f"MTP{i}"][0] for i in range(1, 6)) / 5.0, 150.0)
        for i in (2, 3, 4, 5):
            mtp = t[f"MTP{i}"]
            ux, uy = _unit(mtp[0] - fan[0], mtp[1] - fan[1])
            seg(mtp, (mtp[0] + 24.0 * ux, mtp[1] + 24.0 * uy), False, (0.33, 0.66, 1.0))
    return out


# --------------------------------------------------------------------------------------------
# The pose search


@dataclass(frozen=True)
class _Pose:
    """A similarity placement of a region's template: film cell = scale * R(angle) * mm / CELL
    + (tx, ty), with its mean evidence."""

    region: str
    angle: float  # degrees
    scale: float
    tx: float
    ty: float
    score: float

    def cell(self, p: Point, cell_mm: float) -> Point:
        c, s = math.cos(math.radians(self.angle)), math.sin(math.radians(self.angle))
        k = self.scale / cell_mm
        return (k * (c * p[0] - s * p[1]) + self.tx, k * (s * p[0] + c * p[1]) + self.ty)


@dataclass(frozen=True)
class _Evidence:
    gaps: list[FloatImage]
    ridges: list[FloatImage]
    cell_mm: float


def _orientation(ux: float, uy: float) -> int:
    phi = math.atan2(uy, ux) % math.pi
    return round(phi / (math.pi / ORIENTATIONS)) % ORIENTATIONS


def _scan(
    samples: Sequence[_Sample],
    ev: _Evidence,
    angle: float,
    scale: float,
    rows: slice,
    cols: slice,
    step: int,
) -> tuple[float, int, int]:
    """The best template origin (cells) for one rotation and size among ``rows`` x ``cols``
    taken every ``step`` cells, and its mean evidence."""
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    k = scale / ev.cell_mm
    h, w = ev.gaps[0].shape
    ys = np.arange(h)[rows][::step]
    xs = np.arange(w)[cols][::step]
    acc = np.zeros((len(ys), len(xs)))
    for smp in samples:
        qx = round(k * (c * smp.x - s * smp.y))
        qy = round(k * (s * smp.x + c * smp.y))
        o = _orientation(c * smp.ux - s * smp.uy, s * smp.ux + c * smp.uy)
        # a joint space is dark along the ray; a shaft is bright across it
        m = ev.gaps[o] if smp.gap else ev.ridges[(o + ORIENTATIONS // 2) % ORIENTATIONS]
        yy, xx = ys + qy, xs + qx  # sorted: the origins' sample places inside the film
        i0, i1 = int(np.searchsorted(yy, 0)), int(np.searchsorted(yy, h))
        j0, j1 = int(np.searchsorted(xx, 0)), int(np.searchsorted(xx, w))
        if i1 > i0 and j1 > j0:
            acc[i0:i1, j0:j1] += m[yy[i0] : yy[i1 - 1] + 1 : step, xx[j0] : xx[j1 - 1] + 1 : step]
    idx = int(np.argmax(acc))
    iy0, ix0 = divmod(idx, acc.shape[1])
    return float(acc[iy0, ix0]) / len(samples), int(xs[ix0]), int(ys[iy0])


def _search(region: str, ev: _Evidence, window: tuple[int, int]) -> _Pose:
    """The best placement of ``region``'s template whose origin lies in columns ``window``
    (cells): every rotation of ANGLES_DEG and size of SCALES with origins on a grid of
    GRID_CELLS, then the neighbourhood of the best at every cell and finer steps."""
    samples = _samples(region)
    h = ev.gaps[0].shape[0]
    best = _Pose(region, 0.0, 1.0, 0.0, 0.0, -1.0)
    for angle in ANGLES_DEG:
        for scale in SCALES:
            score, tx, ty = _scan(
                samples, ev, angle, scale, slice(0, h), slice(*window), GRID_CELLS
            )
            if score > best.score:
                best = _Pose(region, angle, scale, tx, ty, score)
    coarse = best
    r = GRID_CELLS
    rows = slice(max(0, int(coarse.ty) - r), int(coarse.ty) + r + 1)
    cols = slice(max(0, int(coarse.tx) - r), int(coarse.tx) + r + 1)
    for da in (-ANGLE_STEP_DEG, 0.0, ANGLE_STEP_DEG):
        for ds in (-SCALE_STEP, 0.0, SCALE_STEP):
            turned, sized = coarse.angle + da, coarse.scale + ds
            score, tx, ty = _scan(samples, ev, turned, sized, rows, cols, 1)
            if score > best.score:
                best = _Pose(region, turned, sized, tx, ty, score)
    return best


GAP_FLOORS = (0.5, 3.0)
"""A found gap's depth, in evidence floors (joint_snap.evidence_floor), from which its
confidence starts to rise and at which it is full: a clear joint space is several floors
deep, a narrowed or ankylosed one (or a dip at an erosion) barely one."""
RESIDUAL_MM = (3.0, 6.5)
"""A found joint's distance from where the fit of all the found joints puts it, up to which
its confidence is full and at which it is none: patients' rays differ from the mean anatomy
by up to about 3 mm; more means the gap found may be another one."""
ACROSS_MM = 14.0
"""Half the width of the profile across a toe in which its bone end is centred."""
SNAP_MM = 5.0
"""How far along its ray a joint that joint_snap left is sought from the fitted position."""
WRIST_TOP = 0.75
"""The confidence of a joint placed by the fit alone (wrist, carpus, CMC) when every finger or
toe joint was found and the fit misses them by at most 1.5 mm (root mean square); it falls to
0 at 4.5 mm."""
GAP_SIGMA_MM = 1.0
"""Scale of the joint-gap evidence: a finger joint space is 1-2 mm wide."""
RIDGE_SIGMA_MM = 3.0
"""Scale of the shaft evidence: a phalanx or metacarpal is 7-12 mm wide."""


def _evidence(coarse: FloatImage, cell_mm: float) -> _Evidence:
    """Gap and ridge maps per orientation, each normalised by its own 99th percentile over
    the film (so the evidence does not depend on the exposure) and spread by the tolerance."""
    tol = max(0, round(TOLERANCE_MM / cell_mm))
    maps = []
    for sigma_mm, sign in ((GAP_SIGMA_MM, 1.0), (RIDGE_SIGMA_MM, -1.0)):
        raw = _directional_maps(coarse, sigma_mm / cell_mm, sign, 1.0, 0)
        top = float(np.percentile(np.max(raw, axis=0), 99.0))
        norm = top if top > 0 else 1.0
        maps.append(
            [ndimage.maximum_filter(np.clip(m / norm, 0.0, 1.0), size=2 * tol + 1) for m in raw]
        )
    return _Evidence(maps[0], maps[1], cell_mm)


# --------------------------------------------------------------------------------------------
# From the pose to every joint


def _similarity(src: Sequence[Point], dst: Sequence[Point]) -> tuple[float, float, float, float]:
    """Least-squares similarity (a, b, tx, ty): dst = [[a, -b], [b, a]] src + t."""
    s = np.asarray(src, dtype=np.float64)
    d = np.asarray(dst, dtype=np.float64)
    sm, dm = s.mean(axis=0), d.mean(axis=0)
    s0, d0 = s - sm, d - dm
    den = float((s0**2).sum()) or 1.0
    a = float((s0[:, 0] * d0[:, 0] + s0[:, 1] * d0[:, 1]).sum()) / den
    b = float((s0[:, 0] * d0[:, 1] - s0[:, 1] * d0[:, 0]).sum()) / den
    return a, b, float(dm[0] - a * sm[0] + b * sm[1]), float(dm[1] - b * sm[0] - a * sm[1])


def _place(fit: tuple[float, float, float, float], p: Point) -> Point:
    a, b, tx, ty = fit
    return (a * p[0] - b * p[1] + tx, b * p[0] + a * p[1] + ty)


def _ray_joints(region: str) -> tuple[str, ...]:
    return tuple(j for j, _prox in RAYS[REGION_KINDS[region]])


def _gap_depth(image: FloatImage, pixel_mm: float, at: Point, along: Point) -> float:
    """How much darker the film is at ``at`` than the brighter ends on both sides along
    ``along`` (within 3 mm): the smaller of the two drops, in the film's values."""
    px = 1.0 / pixel_mm
    t = np.arange(-3.0 * px, 3.0 * px + 0.5, 0.5)
    offsets = np.arange(-1.0 * px, 1.0 * px + 0.5, 1.0)
    nx, ny = -along[1], along[0]
    xs = at[0] + t[None, :] * along[0] + offsets[:, None] * nx
    ys = at[1] + t[None, :] * along[1] + offsets[:, None] * ny
    v = ndimage.map_coordinates(image, [ys, xs], order=1, mode="nearest").mean(axis=0)
    v = ndimage.gaussian_filter1d(v, 0.25 * px * 2, mode="nearest")
    mid = len(v) // 2
    centre = float(v[mid - int(0.6 * px * 2) : mid + int(0.6 * px * 2) + 1].min())
    return min(float(v[:mid].max()), float(v[mid:].max())) - centre


@dataclass(frozen=True)
class _Film:
    """The film at full resolution (bone bright) and what the search needs of it."""

    image: FloatImage
    pixel_mm: float
    block: int  # pixels per coarse cell
    floor: float  # the least gap depth that counts (see joint_snap.evidence_floor)

    def pixel(self, cell: Point) -> Point:
        """A coarse cell position in full-resolution pixels (cell centres to pixel centres)."""
        k = self.block
        return (cell[0] * k + (k - 1) / 2.0, cell[1] * k + (k - 1) / 2.0)


def _ray_direction(region: str, joint: str, pos: Mapping[str, Point], distal: Point) -> Point:
    """The direction of the bone proximal to a finger or toe joint on the film, distal-ward:
    from the joint at its other end, or the part's distal direction for a metacarpal or
    metatarsal (whose base is not a located joint)."""
    prox = dict(RAYS[REGION_KINDS[region]])[joint]
    if prox is None:
        return distal
    return _unit(pos[joint][0] - pos[prox][0], pos[joint][1] - pos[prox][1])


@dataclass(frozen=True)
class _PartResult:
    region: str
    joints: tuple[LocatedJoint, ...]
    found: int  # finger or toe joints with a gap where expected
    score: float


def _snap_along(film: _Film, at: Point, along: Point) -> Point | None:
    """The deepest joint gap across ``along`` within SNAP_MM of ``at`` (a dark dip between
    brighter ends within 3 mm either side, deeper than the film's evidence floor), or None."""
    px = 1.0 / film.pixel_mm
    t = np.arange(-(SNAP_MM + 3.0) * px, (SNAP_MM + 3.0) * px + 0.5, 0.5)
    offsets = np.arange(-1.0 * px, 1.0 * px + 0.5, 1.0)
    nx, ny = -along[1], along[0]
    xs = at[0] + t[None, :] * along[0] + offsets[:, None] * nx
    ys = at[1] + t[None, :] * along[1] + offsets[:, None] * ny
    v = ndimage.map_coordinates(film.image, [ys, xs], order=1, mode="nearest").mean(axis=0)
    v = ndimage.gaussian_filter1d(v, 0.25 * px * 2, mode="nearest")
    window = int(3.0 * px * 2)
    best: tuple[float, float] | None = None
    for i in np.flatnonzero(np.abs(t) <= SNAP_MM * px):
        if not 0 < i < len(v) - 1 or v[i] > v[i - 1] or v[i] > v[i + 1]:
            continue
        depth = min(float(v[max(0, i - window) : i].max()), float(v[i + 1 : i + 1 + window].max()))
        depth -= float(v[i])
        if depth >= film.floor and (best is None or depth > best[0]):
            best = (depth, float(t[i]))
    if best is None:
        return None
    return (at[0] + along[0] * best[1], at[1] + along[1] * best[1])


def _centre_across(
    film: _Film, at: Point, along: Point, back_mm: float = 3.0, half_mm: float = 14.0
) -> Point:
    """``at`` moved across its ray to the middle of the bone end just proximal to it (the
    bright band 3 mm proximal, between its half-height edges); unchanged when no band clearly
    holds it. The search along a ray leaves a wide joint (the hallux's) where the pose put it
    across."""
    px = 1.0 / film.pixel_mm
    nx, ny = -along[1], along[0]
    base = (at[0] - along[0] * back_mm * px, at[1] - along[1] * back_mm * px)
    t = np.arange(-half_mm * px, half_mm * px + 0.5, 0.5)
    v = ndimage.map_coordinates(
        film.image, [base[1] + t * ny, base[0] + t * nx], order=1, mode="nearest"
    )
    v = ndimage.gaussian_filter1d(v, 0.5 * px * 2, mode="nearest")
    mid = len(v) // 2
    lo, top = float(v.min()), float(v[mid])
    if top - lo < 2.0 * film.floor:
        return at
    inside = v >= lo + (top - lo) / 2.0
    left = mid
    while left > 0 and inside[left - 1]:
        left -= 1
    right = mid
    while right < len(v) - 1 and inside[right + 1]:
        right += 1
    if left == 0 or right == len(v) - 1:
        return at  # the band runs off the profile: no edge to centre on
    shift = (t[left] + t[right]) / 2.0
    return (at[0] + nx * shift, at[1] + ny * shift)


def _snap_rays(
    film: _Film, region: str, fitted: Mapping[str, Point], distal: Point
) -> tuple[dict[str, Point], list[str]]:
    """The fitted joints with every finger or toe joint moved onto its gap: joint_snap's ray
    by ray refinement, then a plain search along the ray for the joints it leaves (the
    metacarpals and metatarsals it has no shaft for, e.g. MTP1 and MTP5, which the three-click
    fit takes from clicks). Also which joints were found on a gap."""
    refined = refine_joints(film.image, film.pixel_mm, region, fitted, (), floor=film.floor)
    found = []
    for j in _ray_joints(region):
        if refined[j] != fitted[j]:
            found.append(j)
            continue
        hit = _snap_along(film, fitted[j], _ray_direction(region, j, refined, distal))
        if hit is not None:
            refined[j] = hit
            found.append(j)
    for j in found:
        if REGION_KINDS[region] == "foot" or j.startswith("MCP"):
            refined[j] = _centre_across(
                film, refined[j], _ray_direction(region, j, refined, distal)
            )
    return refined, found


def _place_part(film: _Film, pose: _Pose) -> _PartResult:
    """Every joint of the posed region: the ray joints snapped to their gaps, the rest from a
    similarity fit to the snapped ones (twice: the second snap starts from the first fit),
    each with a confidence."""
    region = pose.region
    model = TEMPLATES[region]
    joints = region_joints(region)
    fitted = {j: film.pixel(pose.cell(model[j], film.block * film.pixel_mm)) for j in joints}
    a = math.radians(pose.angle)
    fit = (math.cos(a), math.sin(a), 0.0, 0.0)  # only its rotation counts until the refit
    refined, found = _snap_rays(film, region, fitted, _unit(fit[1], -fit[0]))
    for _round in range(2):
        if len(found) < 3:
            break
        fit = _similarity([model[j] for j in found], [refined[j] for j in found])
        fitted = {j: _place(fit, model[j]) for j in joints}
        if _round == 0:
            refined, found = _snap_rays(film, region, fitted, _unit(fit[1], -fit[0]))
    misfit = _misfit(film, fitted, refined, found)
    if REGION_KINDS[region] == "hand" and len(found) >= 3:
        wrist, misfit = _wrist(film, region, fitted, refined, found, _unit(fit[1], -fit[0]))
        fitted = {**fitted, **wrist}
    out = []
    for j in joints:
        pos = refined[j] if j in found else fitted[j]
        conf = _confidence(
            film, region, j, pos, fitted, refined, found, _unit(fit[1], -fit[0]), misfit
        )
        out.append(LocatedJoint(region, j, float(pos[0]), float(pos[1]), conf, conf >= SURE))
    return _PartResult(region, tuple(out), len(found), pose.score)


WRIST_GAPS: Mapping[str, str | None] = {"RCA": None, "CMC3": "MCP3", "CMC4": "MCP4", "CMC5": "MCP5"}
"""The wrist's joint spaces sought on the film, each along its bone: the radiocarpal joint
along the part's distal direction, the CMC joints along their metacarpal (to its MCP)."""


def _wrist(
    film: _Film,
    region: str,
    fitted: Mapping[str, Point],
    refined: Mapping[str, Point],
    found: Sequence[str],
    distal: Point,
) -> tuple[dict[str, Point], float]:
    """The wrist, carpal and CMC joints placed by a similarity fit of the template to the
    wrist's own joint spaces found on the film (radiocarpal, CMC3-5) and the MCPs found: the
    fit to the fingers alone extrapolates a patient's finger spread into the wrist. Also the
    fit's misfit (mm), which sets their confidence; the fingers' fit and misfit when fewer
    than two wrist gaps show."""
    model = TEMPLATES[region]
    snapped: dict[str, Point] = {}
    for joint, mcp in WRIST_GAPS.items():
        if mcp is None:
            along = distal
        else:
            end = refined[mcp] if mcp in found else fitted[mcp]
            along = _unit(end[0] - fitted[joint][0], end[1] - fitted[joint][1])
        hit = _snap_along(film, fitted[joint], along)
        if hit is not None:
            snapped[joint] = hit
    mcps = [j for j in ("MCP2", "MCP3", "MCP4", "MCP5") if j in found]
    if len(snapped) < 2 or len(snapped) + len(mcps) < 4:
        return {}, _misfit(film, fitted, refined, found)
    names = [*snapped, *mcps]
    dst = {**snapped, **{j: refined[j] for j in mcps}}
    fit = _similarity([model[j] for j in names], [dst[j] for j in names])
    placed = {j: _place(fit, model[j]) for j in model if j not in _ray_joints(region)}
    misfit = _misfit(film, {**placed, **{j: _place(fit, model[j]) for j in mcps}}, dst, names)
    # the radius's distal end centred across the forearm: the fit leaves the wrist as far to
    # the side as the MCPs' spread pulls it; the whole wrist moves with the radius
    placed.update(snapped)  # moved along their bones only: across, they move with the rest
    rad = placed["RAD"]
    centred = _centre_across(film, rad, distal, 6.0, 18.0)
    dx, dy = centred[0] - rad[0], centred[1] - rad[1]
    if math.hypot(dx, dy) * film.pixel_mm <= 4.0:
        placed = {j: (p[0] + dx, p[1] + dy) for j, p in placed.items()}
    share = len(snapped) / len(WRIST_GAPS)
    return placed, misfit / share


def _misfit(
    film: _Film, fitted: Mapping[str, Point], refined: Mapping[str, Point], found: Sequence[str]
) -> float:
    """Root mean square distance (mm) of the joints found from the template fitted to them:
    how far this part's anatomy is from the mean (the wrist, placed by the fit alone, is off
    by about as much)."""
    if len(found) < 3:
        return math.inf
    sq = [(refined[j][0] - fitted[j][0]) ** 2 + (refined[j][1] - fitted[j][1]) ** 2 for j in found]
    return math.sqrt(sum(sq) / len(sq)) * film.pixel_mm


def _confidence(
    film: _Film,
    region: str,
    joint: str,
    pos: Point,
    fitted: Mapping[str, Point],
    refined: Mapping[str, Point],
    found: Sequence[str],
    distal: Point,
    misfit: float,
) -> float:
    """A joint's confidence from its evidence (see the module's docstring)."""
    rays = _ray_joints(region)
    share = len(found) / len(rays)
    if joint not in rays:  # placed by the fit alone: as good as the fit is
        return round(WRIST_TOP * share * min(1.0, max(0.0, 1.0 - (misfit - 1.5) / 3.0)), 3)
    if joint not in found:
        return round(0.3 * share, 3)
    along = _ray_direction(region, joint, refined, distal)
    depth = _gap_depth(film.image, film.pixel_mm, pos, along) / film.floor
    q_gap = min(1.0, max(0.0, (depth - GAP_FLOORS[0]) / (GAP_FLOORS[1] - GAP_FLOORS[0])))
    r = math.hypot(pos[0] - fitted[joint][0], pos[1] - fitted[joint][1]) * film.pixel_mm
    q_fit = min(1.0, max(0.0, (RESIDUAL_MM[1] - r) / (RESIDUAL_MM[1] - RESIDUAL_MM[0])))
    return round(min(q_gap, q_fit) * (0.5 + 0.5 * share), 3)


# --------------------------------------------------------------------------------------------
# The film as a whole


def _checked_regions(regions: Sequence[str] | None) -> tuple[str, ...] | None:
    if regions is None:
        return None
    wanted = tuple(dict.fromkeys(regions))
    unknown = [r for r in wanted if r not in REGIONS]
    if unknown or not wanted:
        raise ValueError(f"regions must be some of {', '.join(REGIONS)}, not {list(regions)!r}")
    kinds = {REGION_KINDS[r] for r in wanted}
    if len(kinds) > 1 or len(wanted) > 2:
        raise ValueError(f"one film shows hands or feet, not {', '.join(wanted)}")
    return wanted


def _candidates(wanted: tuple[str, ...] | None, width: int) -> list[tuple[str, tuple[int, int]]]:
    """The regions to search and the columns (cells) their template origin may lie in: on a
    two-sided film the right part lies left of the middle, a single part near the middle.
    The regions the import believes are searched as they are said to lie, and the same sides
    of the other kind of part too, to check the belief."""
    half = width // 2
    if wanted is None:
        cut = round(0.62 * width)
        return [
            (r, (0, cut) if r[0] == "R" else (width - cut, width)) for r in ("RH", "LH", "RF", "LF")
        ]
    other = {"H": "F", "F": "H"}
    checks = tuple(r[0] + other[r[1]] for r in wanted)
    if len(wanted) == 2:
        return [(r, (0, half) if r[0] == "R" else (half, width)) for r in (*wanted, *checks)]
    return [(r, (0, width)) for r in (wanted[0], checks[0])]


def _overlap(a: _PartResult, b: _PartResult, pixel_mm: float) -> bool:
    """Whether two parts found are the same part (their ray joints' centres within 40 mm)."""

    def centre(p: _PartResult) -> Point:
        pts = [(j.x, j.y) for j in p.joints if j.joint in _ray_joints(p.region)]
        return (sum(x for x, _ in pts) / len(pts), sum(y for _, y in pts) / len(pts))

    ca, cb = centre(a), centre(b)
    return math.hypot(ca[0] - cb[0], ca[1] - cb[1]) * pixel_mm < 40.0


def _strength(part: _PartResult) -> float:
    """How well a part was found: the constellation's evidence, lowered by up to half as its
    finger or toe joints disagree with its fit (a mirrored or wrong-kind template matches the
    shafts nearly as well, but its joints then lack confidence; a damaged part's do too, so
    they count for half only)."""
    rays = _ray_joints(part.region)
    mean = sum(j.confidence for j in part.joints if j.joint in rays) / len(rays)
    return part.score * (0.5 + 0.5 * mean)


def _find(film: _Film, ev: _Evidence, wanted: tuple[str, ...] | None) -> Location:
    width = ev.gaps[0].shape[1]
    poses = [_search(region, ev, window) for region, window in _candidates(wanted, width)]
    # a constellation far weaker than the best on its side is not worth placing joints for
    # (each side on its own: one hand may be far more damaged than the other)
    top = {side: max(p.score for p in poses if p.region[0] == side) for side in ("L", "R")
           if any(p.region[0] == side for p in poses)}  # fmt: skip
    results = [
        _place_part(film, p)
        for p in poses
        if p.score >= max(MIN_SCORE, RIVAL_SHARE * top[p.region[0]])
    ]
    good = [r for r in results if r.found >= MIN_FOUND[REGION_KINDS[r.region]]]
    what = "hand or foot" if wanted is None else " or ".join(wanted)
    if not good:
        best = max(results, key=lambda r: r.found, default=None)
        seen = "" if best is None else f" (at most {best.found} finger or toe joints seen)"
        return Location("other", (), (), f"no {what} found on the film{seen}", 0.0)
    # the strongest parts first; a weaker one on top of a stronger one is the same part
    good.sort(key=_strength, reverse=True)
    kind = REGION_KINDS[good[0].region]
    if wanted is not None and kind != REGION_KINDS[wanted[0]]:
        looks = "hands" if kind == "hand" else "feet"
        return Location("other", (), (), f"no {what} found on the film: it looks like {looks}", 0.0)
    kept: list[_PartResult] = []
    for r in good:
        if REGION_KINDS[r.region] != kind or any(_overlap(r, k, film.pixel_mm) for k in kept):
            continue
        if any(k.region == r.region for k in kept):
            continue
        kept.append(r)
    regions = tuple(r for r in REGIONS if any(k.region == r for k in kept))
    joints = tuple(j for r in regions for k in kept if k.region == r for j in k.joints)
    missing = [] if wanted is None else [r for r in wanted if r not in regions]
    reason = f"{', '.join(missing)} not found on the film" if missing else ""
    return Location(kind, regions, joints, reason, 0.0)


def locate_joints(
    pixels: Any,
    pixel_mm: float,
    *,
    monochrome1: bool = False,
    regions: Sequence[str] | None = None,
) -> Location:
    """Every joint of the hands or feet a film shows, found automatically.

    ``pixels`` are the stored values (2-D, any integer depth) as decoded, ``pixel_mm`` the
    pixel spacing, ``monochrome1`` whether low values are bright (then bone is dark and is
    inverted here), ``regions`` what the import already believes the film shows (None: the
    locator decides). A film that is no hand or foot, or input that cannot be a film, gives
    kind ``other`` with the reason, never an exception; unknown ``regions`` are a ValueError.
    """
    start = time.perf_counter()
    wanted = _checked_regions(regions)
    try:
        image = _checked_image(pixels, pixel_mm, monochrome1)
        coarse, block = _coarse(image, float(pixel_mm))
        floor = evidence_floor(image)
        if floor is None:
            raise _NotAFilm("the image is blank: every pixel has (almost) the same value")
        film = _Film(image, float(pixel_mm), block, floor)
        found = _find(film, _evidence(coarse, block * float(pixel_mm)), wanted)
    except _NotAFilm as exc:
        found = Location("other", (), (), str(exc), 0.0)
    except (ValueError, IndexError, FloatingPointError) as exc:
        # A film the analysis could not make sense of (an empty search, say): no positions,
        # and the reason says the locator gave up, for the three-click fit.
        found = Location("other", (), (), f"the locator could not work on this film ({exc})", 0.0)
    return Location(
        found.kind, found.regions, found.joints, found.reason, time.perf_counter() - start
    )
