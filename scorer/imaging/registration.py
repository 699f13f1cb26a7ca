"""Registration of one patient's films across visits: joint positions placed on one film are
proposed on another, and a film's own positions that disagree with them are flagged.

Films of a hand (or a foot) taken at different visits differ by positioning (rotation, shift),
magnification and pixel spacing, and the fingers or toes move a little on their own between
visits (the spread differs). :func:`propose_from` therefore works per region in three steps:

1. **Search** (:data:`COARSE_MM` per pixel): the region's area on the reference, the box around
   its points plus :data:`MARGIN_MM` (at least :data:`MIN_AREA_MM` across), is rotated and
   scaled over a grid of candidates (:data:`SEARCH_DEGREES`, :data:`SEARCH_SCALES`) and each
   candidate is matched over the target's side of the film by normalised cross-correlation
   (NCC); the best one gives a first similarity transform. An exhaustive search, not
   Fourier–Mellin, because the target holds more than the area (the other hand, the forearm,
   markers), which a global spectrum mixes in.
2. **Refinement** (:data:`MID_MM` per pixel): the four similarity parameters are optimised
   (Powell) for the NCC over the whole area; that NCC is the region's ``score``.
3. **Local matching** (:data:`LOCAL_MM` per pixel): around each point a patch of the
   reference is matched in the target, resampled through the region transform so rotation and
   scale are already undone, over a search of :data:`LOCAL_SEARCH_MM`; the peak NCC is the
   joint's ``quality``. A joint that matches weakly is retried with its patch turned
   (:data:`LOCAL_TURNS`: a finger spread differently at this visit) and where its well-matched
   neighbours' movement puts it (a thumb turned at CMC1 carries IP1 along), then over a wide
   search; a match landing where another joint already matched is refused. A joint that still
   matches poorly keeps the region transform's position. ``sure`` asks for a good local match
   (:data:`SURE_QUALITY`), a region that registered well (:data:`SURE_SCORE`) from enough
   points (:data:`SURE_POINTS`) and no wide search.

Every step compares band-passed images (a Gaussian's low frequencies removed), so exposure,
soft tissue and MONOCHROME1 films (inverted first) compare alike, and it works in mm, so films
of different pixel spacing register directly. Nothing here is trained; the thresholds were set
on synthetic films (seeds 1000–1999 of :mod:`scorer.imaging.synthetic`), which is all this has
been measured on.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import fft as sfft
from scipy import ndimage, optimize
from skimage.feature import match_template
from skimage.transform import SimilarityTransform

FloatImage = npt.NDArray[np.float64]
Affine = tuple[tuple[float, float, float], tuple[float, float, float]]

REGISTRATION_VERSION = "1"
"""Changes whenever proposals for the same films could change: stored proposals name it."""

DISAGREE_MM = 4.0
"""A film's own position farther than this from the registered proposal is a disagreement:
above what the registration itself misses by on almost every joint (its 95th percentile on
synthetic films is well below), below the ~10 mm between neighbouring joints."""

COARSE_MM = 3.0
MID_MM = 1.0
LOCAL_MM = 0.5
MIN_AREA_MM = 100.0
"""The area registered is at least this wide and tall: around one or two points alone it would
hold a single finger or toe, which matches its neighbours nearly as well as itself."""
REFINE_GRID_MM = 2.0
"""The refinement's NCC is taken at points this far apart (on the 1 mm level): enough for
four parameters over an area of thousands of mm², at a quarter of the cost."""
MARGIN_MM = 20.0
"""Added around a region's points on the reference: the area matched shows the bones beyond
the outermost joints, which pins rotation and scale."""

SEARCH_DEGREES = tuple(float(a) for a in range(-32, 33, 4))
"""Rotations tried in the search: positioning differs by up to 15° either way at each visit,
so up to 30° between two films; a 4° step leaves at most 2°, which the refinement recovers."""
SEARCH_SCALES = tuple(1.075**k for k in range(-3, 4))
"""Scales tried in the search: magnification differs by up to 10 % either way at each visit,
so by up to 1.1 / 0.9 between two films (0.80 to 1.24 here, 7.5 % apart)."""

WIDE_HALF_MM = 12.0
WIDE_SEARCH_MM = 16.0
"""The wide search, for a joint the close searches did not find: its match is never sure, as
over this reach another joint's neighbourhood can match as well."""
CLAIMED_MM = 6.0
"""A retried or wide match this close to where another joint matched is that joint's."""
LOCAL_HALF_MM = 10.0
"""Half the side of the patch matched around each joint: a joint with the bone ends on both
sides, small enough that a finger's own movement is nearly a shift across it."""
LOCAL_SEARCH_MM = 8.0
"""How far a joint's patch is searched from where the region transform puts it: fingers and
toes spread differently at each visit, moving the distal joints a few mm."""

LOCAL_MIN = 0.35
"""A patch matching below this NCC is no evidence: the joint keeps the region's position."""
LOCAL_TURNS = (-8.0, -4.0, 4.0, 8.0)
"""Turns (degrees) of a weakly matching joint's patch tried: a finger or toe spreads up to a
few degrees either way at each visit, and a turned finger's joint matches its own patch poorly
(the shaft's edges dominate the patch)."""
REFIT_MM = 2.0
"""The similarity fitted to the well-matched joints is the region's transform when it fits them
to within this (median); where it puts some joint this much farther than the area's transform
does, the joints that matched poorly are matched again through it."""
RETRY_ROUNDS = 3
"""Rounds of retries: a joint found in one round lends its movement to the next joint along."""
NEIGHBOURS = 3
"""How many of a joint's nearest matched joints lend it their movement: the one on its own
finger (a thumb's MCP1 for its IP1) need not be the nearest."""
RETRY_BELOW = 0.8
"""A joint matching below this NCC where the region transform puts it is retried (patch turned,
and where its neighbours' movement puts it), the better match kept: a weak peak within reach
may be another bone's, the joint itself lying beyond. Only joints matching at least this well
lend their movement to others."""
SURE_QUALITY = 0.6
"""A proposed joint is sure when its patch matches at least this well ..."""
SURE_SCORE = 0.5
"""... and the region as a whole registered at least this well: on the synthetic tuning films
the same patient's hand or foot scored 0.7 or more, a hand's points on a foot film or on a CR
chest or leg 0.4 or less. (Another patient's synthetic hand scores as high as the same
patient's: the generator's patients differ by a few % in size and a few degrees in spread, so
registration does not tell patients apart; that is the import's patient identity's job.)"""

SURE_POINTS = 3
"""... from at least this many points: around one or two the area holds a few fingers or toes,
which can register well shifted by one (seen on the tuning films)."""

_BAND_SIGMA_MM = {"coarse": 9.0, "mid": 5.0, "local": 3.0}
"""Low frequencies removed per level (Gaussian sigma): larger than the bones' width, smaller
than the soft tissue and the exposure's slope."""
_SMOOTH_SIGMA_MM = {"coarse": 0.0, "mid": 0.0, "local": 0.6}
"""Fine smoothing per level: detector noise out, joint spaces (~1.5 mm) kept."""


@dataclass(frozen=True)
class ProposedJoint:
    """A joint's proposed position on the target film (stored pixels: x column, y row, from the
    top-left pixel's centre), how well its neighbourhood matched (0..1) and whether to trust it."""

    x: float
    y: float
    quality: float
    sure: bool


@dataclass(frozen=True)
class Proposal:
    """Positions proposed on a target film from a reference film's points, by (region, joint).

    ``transforms`` is each region's 2x3 affine from reference pixels to target pixels (x, y),
    ``score`` the NCC of the region's area after registration, ``seconds`` the time taken.
    """

    joints: dict[tuple[str, str], ProposedJoint]
    transforms: dict[str, tuple[tuple[float, ...], ...]]
    score: dict[str, float]
    seconds: float


@dataclass(frozen=True)
class Disagreement:
    """A film's own position of a joint that lies ``distance_mm`` from the registered proposal."""

    region: str
    joint: str
    distance_mm: float
    own: tuple[float, float]
    proposed: tuple[float, float]


# --------------------------------------------------------------------------------------------
# Films as band-passed pyramids in mm


@dataclass(frozen=True)
class _Level:
    """One resolution of a film: band-passed pixels and where their centres lie in film mm."""

    image: FloatImage
    step_mm: float  # mm between neighbouring pixel centres
    offset_mm: float  # film mm of pixel 0's centre (both axes)

    def to_px(self, mm: FloatImage) -> FloatImage:
        return (mm - self.offset_mm) / self.step_mm

    def sample(self, x_mm: FloatImage, y_mm: FloatImage) -> FloatImage:
        """Pixel values at film mm positions (bilinear; 0, the band-passed mean, outside)."""
        coords = np.stack([self.to_px(y_mm).ravel(), self.to_px(x_mm).ravel()])
        out = ndimage.map_coordinates(self.image, coords, order=1, mode="constant", cval=0.0)
        return np.asarray(out, dtype=np.float64).reshape(x_mm.shape)

    @property
    def extent_mm(self) -> tuple[float, float]:
        """Film width and height in mm (x, y)."""
        rows, cols = self.image.shape
        return cols * self.step_mm, rows * self.step_mm


@dataclass(frozen=True)
class _Film:
    """A film at the three working resolutions."""

    coarse: _Level
    mid: _Level
    local: _Level
    pixel_mm: float


def _checked(pixels: object, pixel_mm: float, what: str) -> FloatImage:
    if not (isinstance(pixel_mm, int | float) and math.isfinite(pixel_mm) and pixel_mm > 0):
        raise ValueError(
            f"the {what}'s pixel spacing must be a positive number of mm, not {pixel_mm!r}"
        )
    arr = np.asarray(pixels)
    if arr.ndim != 2 or min(arr.shape) < 8:
        raise ValueError(
            f"the {what} must be a 2-D image of at least 8 x 8 pixels, not shape {arr.shape}"
        )
    if not (
        np.issubdtype(arr.dtype, np.number) and not np.issubdtype(arr.dtype, np.complexfloating)
    ):
        raise ValueError(f"the {what}'s pixels must be real numbers, not {arr.dtype}")
    out = arr.astype(np.float64)
    if not np.isfinite(out).all():
        raise ValueError(f"the {what} has pixels that are not finite numbers")
    return out


def _block_mean(image: FloatImage, factor: int) -> FloatImage:
    if factor <= 1:
        return image
    rows, cols = image.shape[0] // factor, image.shape[1] // factor
    rows, cols = max(rows, 1), max(cols, 1)
    cut = image[: rows * factor, : cols * factor]
    if cut.shape[0] < factor or cut.shape[1] < factor:
        return image
    return np.asarray(cut.reshape(rows, factor, cols, factor).mean(axis=(1, 3)), dtype=np.float64)


def _band(image: FloatImage, step_mm: float, kind: str) -> FloatImage:
    low = ndimage.gaussian_filter(image, _BAND_SIGMA_MM[kind] / step_mm, mode="nearest")
    out = image - low
    if _SMOOTH_SIGMA_MM[kind] > 0:
        out = ndimage.gaussian_filter(out, _SMOOTH_SIGMA_MM[kind] / step_mm, mode="nearest")
    return np.asarray(out, dtype=np.float64)


def _level(
    image: FloatImage, step_mm: float, offset_mm: float, want_mm: float, kind: str
) -> tuple[_Level, FloatImage]:
    factor = max(1, round(want_mm / step_mm))
    small = _block_mean(image, factor)
    step = step_mm * factor if small is not image else step_mm
    offset = offset_mm + (factor - 1) / 2.0 * step_mm if small is not image else offset_mm
    return _Level(_band(small, step, kind), step, offset), small


def _film(pixels: object, pixel_mm: float, monochrome1: bool, what: str) -> _Film:
    image = _checked(pixels, pixel_mm, what)
    if monochrome1:
        image = -image  # bone bright, as the MONOCHROME2 films; NCC ignores the offset
    lo, hi = np.percentile(
        image[:: max(1, image.shape[0] // 256), :: max(1, image.shape[1] // 256)], (1.0, 99.0)
    )
    image = (image - lo) / max(float(hi - lo), 1e-9)
    local, small = _level(image, pixel_mm, 0.0, LOCAL_MM, "local")
    mid, smaller = _level(small, local.step_mm, local.offset_mm, MID_MM, "mid")
    coarse, _ = _level(smaller, mid.step_mm, mid.offset_mm, COARSE_MM, "coarse")
    return _Film(coarse, mid, local, float(pixel_mm))


# --------------------------------------------------------------------------------------------
# Similarity transforms in film mm: target = centre_t + s R(angle) (ref - centre_r)


@dataclass(frozen=True)
class _Similarity:
    angle: float  # degrees, from +x towards +y (clockwise on screen)
    scale: float
    centre_r: tuple[float, float]
    centre_t: tuple[float, float]

    def matrix(self) -> npt.NDArray[np.float64]:
        a = math.radians(self.angle)
        c, s = math.cos(a) * self.scale, math.sin(a) * self.scale
        return np.array([[c, -s], [s, c]])

    def apply(self, x: FloatImage, y: FloatImage) -> tuple[FloatImage, FloatImage]:
        m = self.matrix()
        dx, dy = x - self.centre_r[0], y - self.centre_r[1]
        return (
            self.centre_t[0] + m[0, 0] * dx + m[0, 1] * dy,
            self.centre_t[1] + m[1, 0] * dx + m[1, 1] * dy,
        )

    def moved(self, params: npt.NDArray[np.float64]) -> _Similarity:
        """This transform changed by (degrees, log-scale x 100, x mm, y mm)."""
        return _Similarity(
            self.angle + float(params[0]),
            self.scale * math.exp(float(params[1]) / 100.0),
            self.centre_r,
            (self.centre_t[0] + float(params[2]), self.centre_t[1] + float(params[3])),
        )


def _ncc(a: FloatImage, b: FloatImage) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum()) / den if den > 1e-12 else 0.0


def _ncc_map(image: FloatImage, template: FloatImage) -> FloatImage:
    """The NCC of ``template`` at every place it fits wholly inside ``image`` (row, column of
    its top-left corner): scikit-image's ``match_template`` (Lewis, "Fast normalized
    cross-correlation", Vision Interface 1995: the correlation by FFT, each window's mean and
    variance from running sums); 0 where the window is flat."""
    return np.asarray(match_template(image, template), dtype=np.float64)  # type: ignore[no-untyped-call]


def _window_sums(image: FloatImage, rows: int, cols: int) -> FloatImage:
    """Sums of ``image`` over every rows x cols window lying wholly inside it."""
    c = np.zeros((image.shape[0] + 1, image.shape[1] + 1))
    c[1:, 1:] = image.cumsum(axis=0).cumsum(axis=1)
    return np.asarray(c[rows:, cols:] - c[:-rows, cols:] - c[rows:, :-cols] + c[:-rows, :-cols])


class _Correlator:
    """The NCC of templates of one shape at every place they fit wholly inside one image (row,
    column of their top-left corner), as :func:`_ncc_map` gives it, with the image's transform
    and running sums made once for all the templates tried on it: the rotation and scale
    search tries 119 templates on one window, where ``match_template`` would transform the
    window again for each (2.5x the registration's time)."""

    def __init__(self, image: FloatImage, shape: tuple[int, int]) -> None:
        rows, cols = shape
        n = rows * cols
        s1 = _window_sums(image, rows, cols)
        s2 = _window_sums(image * image, rows, cols)
        self._spread = np.sqrt(np.maximum(s2 - s1 * s1 / n, 0.0))
        self._shape = shape
        self._size = image.shape
        self._fft_shape = tuple(
            sfft.next_fast_len(image.shape[k] + shape[k] - 1, real=True) for k in (0, 1)
        )
        self._image = sfft.rfft2(image, self._fft_shape)

    def ncc(self, template: FloatImage) -> FloatImage:
        rows, cols = self._shape
        t = template - template.mean()
        t_norm = math.sqrt(float((t * t).sum()))
        product = self._image * sfft.rfft2(t[::-1, ::-1], self._fft_shape)
        full = sfft.irfft2(product, self._fft_shape)
        corr = np.asarray(full[rows - 1 : self._size[0], cols - 1 : self._size[1]])
        den = self._spread * t_norm
        out = np.zeros_like(corr)
        np.divide(corr, den, out=out, where=den > 1e-9 * max(t_norm, 1e-12))
        return out


def _grid(x0: float, x1: float, y0: float, y1: float, step: float) -> tuple[FloatImage, FloatImage]:
    xs = np.arange(x0, x1 + step / 2.0, step)
    ys = np.arange(y0, y1 + step / 2.0, step)
    gx, gy = np.meshgrid(xs, ys)
    return gx, gy


# --------------------------------------------------------------------------------------------
# Per region


Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in film mm


def _area(points_mm: list[tuple[float, float]], extent: tuple[float, float]) -> Box:
    """The part of the reference registered for a region: its points' box plus
    :data:`MARGIN_MM`, at least :data:`MIN_AREA_MM` across, on the film."""
    xs = [p[0] for p in points_mm]
    ys = [p[1] for p in points_mm]
    half_x = max((max(xs) - min(xs)) / 2.0 + MARGIN_MM, MIN_AREA_MM / 2.0)
    half_y = max((max(ys) - min(ys)) / 2.0 + MARGIN_MM, MIN_AREA_MM / 2.0)
    cx, cy = (max(xs) + min(xs)) / 2.0, (max(ys) + min(ys)) / 2.0
    return (
        max(cx - half_x, 0.0),
        max(cy - half_y, 0.0),
        min(cx + half_x, extent[0]),
        min(cy + half_y, extent[1]),
    )


def _search_area(region: str, extent: tuple[float, float]) -> Box:
    """Where the region may lie on the target: a film wider than tall holds both sides, the
    right one (R...) on the film's left; otherwise the whole film."""
    width, height = extent
    if width <= height * 1.05:
        return (0.0, 0.0, width, height)
    if region.startswith("R"):
        return (0.0, 0.0, width * 0.6, height)
    return (width * 0.4, 0.0, width, height)


def _search(ref: _Level, tgt: _Level, area: Box, where: Box) -> tuple[_Similarity, float]:
    """The best rotation and scale of the area over the grid, and where it lies on the target."""
    step = tgt.step_mm
    cx, cy = (area[0] + area[2]) / 2.0, (area[1] + area[3]) / 2.0
    half_w, half_h = (area[2] - area[0]) / 2.0, (area[3] - area[1]) / 2.0
    ux, uy = _grid(-half_w, half_w, -half_h, half_h, step)
    sx, sy = _grid(where[0], where[2], where[1], where[3], step)
    # the area may reach past the film's edge on the target: pad with the band-passed mean, 0
    rows, cols = ux.shape
    window = np.pad(tgt.sample(sx, sy), ((rows // 2, rows // 2), (cols // 2, cols // 2)))
    correlator = _Correlator(window, (rows, cols))
    best: tuple[float, _Similarity] | None = None
    for scale in SEARCH_SCALES:
        for angle in SEARCH_DEGREES:
            inverse = _Similarity(-angle, 1.0 / scale, (0.0, 0.0), (cx, cy))
            template = ref.sample(*inverse.apply(ux, uy))
            if float(template.std()) <= 1e-9:
                continue
            ncc = correlator.ncc(template)
            r, c = np.unravel_index(int(np.argmax(ncc)), ncc.shape)
            value = float(ncc[r, c])
            if best is None or value > best[0]:
                at = (
                    where[0] + (c + (cols - 1) / 2.0 - cols // 2) * step,
                    where[1] + (r + (rows - 1) / 2.0 - rows // 2) * step,
                )
                best = (value, _Similarity(angle, scale, (cx, cy), at))
    if best is None:
        return _Similarity(0.0, 1.0, (cx, cy), (cx, cy)), 0.0
    return best[1], best[0]


def _refine(ref: _Level, tgt: _Level, area: Box, start: _Similarity) -> tuple[_Similarity, float]:
    """The similarity maximising the NCC over the area, from ``start`` (Powell)."""
    gx, gy = _grid(area[0], area[2], area[1], area[3], REFINE_GRID_MM)
    values = ref.sample(gx, gy)

    def cost(params: npt.NDArray[np.float64]) -> float:
        tx, ty = start.moved(params).apply(gx, gy)
        return -_ncc(values, tgt.sample(tx, ty))

    result = optimize.minimize(
        cost,
        np.zeros(4),
        method="Powell",
        bounds=[(-4.0, 4.0), (-6.0, 6.0), (-8.0, 8.0), (-8.0, 8.0)],
        options={"xtol": 0.1, "ftol": 1e-4, "maxfev": 300},
    )
    params = np.asarray(result.x, dtype=np.float64)
    return start.moved(params), -float(result.fun)


def _subpixel(ncc: FloatImage, r: int, c: int) -> tuple[float, float]:
    def vertex(a: float, b: float, d: float) -> float:
        den = a - 2.0 * b + d
        return 0.0 if den >= 0 else max(-0.5, min(0.5, 0.5 * (a - d) / den))

    dr = (
        vertex(float(ncc[r - 1, c]), float(ncc[r, c]), float(ncc[r + 1, c]))
        if 0 < r < ncc.shape[0] - 1
        else 0.0
    )
    dc = (
        vertex(float(ncc[r, c - 1]), float(ncc[r, c]), float(ncc[r, c + 1]))
        if 0 < c < ncc.shape[1] - 1
        else 0.0
    )
    return r + dr, c + dc


def _match(
    ref: _Level,
    tgt: _Level,
    sim: _Similarity,
    point: tuple[float, float],
    half: float,
    search: float,
    step: float,
    turn: float = 0.0,
) -> tuple[tuple[float, float], float]:
    """Where a reference point lies on the target (reference mm, before ``sim``) by matching its
    neighbourhood (turned by ``turn`` degrees about the point) over ``search`` mm, and the peak
    NCC: the best peak inside the search (a stronger one on its edge is another bone beyond), 0
    when there is none."""
    ox, oy = _grid(-half, half, -half, half, step)
    cos, sin = math.cos(math.radians(turn)), math.sin(math.radians(turn))
    patch = ref.sample(point[0] + cos * ox - sin * oy, point[1] + sin * ox + cos * oy)
    s = half + search
    wx, wy = _grid(point[0] - s, point[0] + s, point[1] - s, point[1] + s, step)
    window = tgt.sample(*sim.apply(wx, wy))
    if float(patch.std()) <= 1e-9 or float(window.std()) <= 1e-9:
        return point, 0.0
    ncc = _ncc_map(window, patch)
    if min(ncc.shape) < 3:
        return point, 0.0
    inner = ncc[1:-1, 1:-1]
    r, c = (int(k) + 1 for k in np.unravel_index(int(np.argmax(inner)), inner.shape))
    peak = float(ncc[r, c])
    if peak < max(ncc[r - 1, c], ncc[r + 1, c], ncc[r, c - 1], ncc[r, c + 1]):
        return point, 0.0  # a slope up to the search's edge: the best match lies beyond
    fr, fc = _subpixel(ncc, r, c)
    return (point[0] - search + fc * step, point[1] - search + fr * step), peak


def _close(
    ref: _Film,
    tgt: _Film,
    sim: _Similarity,
    point: tuple[float, float],
    moved: tuple[float, float],
    turn: float = 0.0,
) -> tuple[tuple[float, float], float]:
    """The close match of a point's patch (turned by ``turn`` degrees) around ``moved``
    (reference mm, before ``sim``)."""
    shifted = _Similarity(
        sim.angle,
        sim.scale,
        (sim.centre_r[0] - moved[0] + point[0], sim.centre_r[1] - moved[1] + point[1]),
        sim.centre_t,
    )
    found, quality = _match(
        ref.local, tgt.local, shifted, point, LOCAL_HALF_MM, LOCAL_SEARCH_MM, LOCAL_MM, turn
    )
    return (found[0] + moved[0] - point[0], found[1] + moved[1] - point[1]), quality


def _wide(
    ref: _Film, tgt: _Film, sim: _Similarity, point: tuple[float, float]
) -> tuple[tuple[float, float], float]:
    """A point's match over the wide search (a finger or thumb moved on its own), made precise
    by the close match around it."""
    first, q1 = _match(ref.mid, tgt.mid, sim, point, WIDE_HALF_MM, WIDE_SEARCH_MM, MID_MM)
    if q1 < LOCAL_MIN:
        return point, q1
    return _close(ref, tgt, sim, point, first)


Match = tuple[tuple[float, float], float]  # position (reference mm, before the transform), NCC


def _taken(joint: str, found: tuple[float, float], out: Mapping[str, Match]) -> bool:
    """Whether another joint already matched within :data:`CLAIMED_MM` of ``found``."""
    return any(
        math.hypot(found[0] - q[0], found[1] - q[1]) < CLAIMED_MM
        for other, (q, value) in out.items()
        if other != joint and value >= LOCAL_MIN
    )


def _neighbours_moved(
    joint: str, mm: Mapping[str, tuple[float, float]], out: Mapping[str, Match]
) -> list[tuple[float, float]]:
    """Where ``joint`` would be had it moved as one of its :data:`NEIGHBOURS` nearest well
    matched joints did (those that moved: where they did not, the joint was tried already; a
    weak match lends nothing, as it may be another bone's)."""
    p = mm[joint]
    near = sorted(
        (math.hypot(mm[o][0] - p[0], mm[o][1] - p[1]), o)
        for o, (_, value) in out.items()
        if o != joint and value >= RETRY_BELOW
    )
    places = []
    for _, other in near[:NEIGHBOURS]:
        dx, dy = out[other][0][0] - mm[other][0], out[other][0][1] - mm[other][1]
        if math.hypot(dx, dy) >= 1.0:
            places.append((p[0] + dx, p[1] + dy))
    return places


def _matched(
    ref: _Film, tgt: _Film, sim: _Similarity, mm: Mapping[str, tuple[float, float]]
) -> tuple[dict[str, Match], set[str]]:
    """Every point's match and its quality, and the points found only by the wide search.

    First the close search around the region transform's position. A point that matches weakly
    is then tried where it would be had it moved as a matched neighbour did (a thumb turning at
    CMC1 carries MCP1 and IP1 along), then with its patch turned (a finger spread otherwise at
    this visit), and a point still unmatched over the wide search. Those later matches count
    only where no other joint already matched (a toe's MTP that would land on its neighbour's
    is not found)."""
    out = {j: _close(ref, tgt, sim, p, p) for j, p in mm.items()}

    def better(joint: str, found: tuple[float, float], quality: float) -> bool:
        if quality > max(out[joint][1], LOCAL_MIN) and not _taken(joint, found, out):
            out[joint] = (found, quality)
            return True
        return False

    tried: set[tuple[str, float, float, float]] = set()
    for _ in range(RETRY_ROUNDS):  # a chain passes its movement on by one joint per round
        changed = False
        for joint, p in mm.items():
            if out[joint][1] >= RETRY_BELOW:
                continue
            for centre in [p, *_neighbours_moved(joint, mm, out)]:
                for turn in (0.0, *LOCAL_TURNS):
                    key = (joint, round(centre[0], 1), round(centre[1], 1), turn)
                    if key in tried or (centre == p and turn == 0.0):
                        continue
                    tried.add(key)
                    changed |= better(joint, *_close(ref, tgt, sim, p, centre, turn))
        if not changed:
            break
    wide: set[str] = set()
    for joint, p in mm.items():
        if out[joint][1] < LOCAL_MIN:
            better(joint, *_wide(ref, tgt, sim, p))
            if out[joint][1] >= LOCAL_MIN:
                wide.add(joint)
    return out, wide


def _pixel_affine(sim: _Similarity, ref_mm: float, tgt_mm: float) -> Affine:
    m = sim.matrix() * (ref_mm / tgt_mm)
    tx, ty = sim.apply(np.array(0.0), np.array(0.0))
    return (
        (float(m[0, 0]), float(m[0, 1]), float(tx) / tgt_mm),
        (float(m[1, 0]), float(m[1, 1]), float(ty) / tgt_mm),
    )


def _fitted(pairs: Mapping[str, tuple[tuple[float, float], tuple[float, float]]]) -> _Similarity:
    """The least-squares similarity taking each pair's first point to its second (film mm):
    scikit-image's ``SimilarityTransform`` estimate (Umeyama 1991). Points that cannot fix one
    (all in one place) give the identity about their mean."""
    p = np.array([a for a, _ in pairs.values()], dtype=np.float64)
    q = np.array([b for _, b in pairs.values()], dtype=np.float64)
    fitted = SimilarityTransform.from_estimate(p, q)
    if not fitted:
        centre = (float(p[:, 0].mean()), float(p[:, 1].mean()))
        return _Similarity(0.0, 1.0, centre, (float(q[:, 0].mean()), float(q[:, 1].mean())))
    m = np.asarray(fitted.params, dtype=np.float64)
    return _Similarity(
        math.degrees(math.atan2(float(m[1, 0]), float(m[0, 0]))),
        float(math.hypot(float(m[0, 0]), float(m[1, 0]))),
        (0.0, 0.0),
        (float(m[0, 2]), float(m[1, 2])),
    )


def _mapped(sim: _Similarity, point: tuple[float, float]) -> tuple[float, float]:
    x, y = sim.apply(np.array(point[0]), np.array(point[1]))
    return float(x), float(y)


def _on_target(
    sim: _Similarity, matched: Mapping[str, Match], mm: Mapping[str, tuple[float, float]]
) -> dict[str, tuple[tuple[float, float], float]]:
    """Matches as target mm (a joint that matched poorly: where ``sim`` puts it) and quality."""
    out = {}
    for joint, (found, quality) in matched.items():
        out[joint] = (_mapped(sim, found if quality >= LOCAL_MIN else mm[joint]), quality)
    return out


def _joints(
    ref: _Film, tgt: _Film, sim: _Similarity, mm: Mapping[str, tuple[float, float]]
) -> tuple[dict[str, tuple[tuple[float, float], float]], set[str], _Similarity]:
    """Every joint's target position (mm) and quality, those found only by the wide search, and
    the region's transform: the similarity fitted to the well-matched joints where they agree
    with one (the area's transform may lean on spread fingers), else the area's. Where the fit
    moves some joint :data:`REFIT_MM` or more, the joints that matched poorly are matched again
    through it."""
    matched, wide = _matched(ref, tgt, sim, mm)
    found = _on_target(sim, matched, mm)
    strong = {j: (mm[j], t) for j, (t, q) in found.items() if q >= RETRY_BELOW and j not in wide}
    if len(strong) < SURE_POINTS:
        return found, wide, sim
    fitted = _fitted(strong)
    residual = statistics.median(math.dist(_mapped(fitted, r), t) for r, t in strong.values())
    if residual > REFIT_MM:
        return found, wide, sim
    shift = max(math.dist(_mapped(fitted, p), _mapped(sim, p)) for p in mm.values())
    weak = {j: p for j, p in mm.items() if found[j][1] < RETRY_BELOW}
    if shift < REFIT_MM or not weak:
        return found, wide, fitted
    again, wide_again = _matched(ref, tgt, fitted, mm)
    for joint, (t, quality) in _on_target(fitted, again, mm).items():
        if joint in weak and quality > found[joint][1]:
            found[joint] = (t, quality)
            wide.discard(joint)
            if joint in wide_again:
                wide.add(joint)
    return found, wide, fitted


def _region(
    ref: _Film, tgt: _Film, region: str, points: Mapping[str, tuple[float, float]]
) -> tuple[dict[str, ProposedJoint], Affine, float]:
    mm = {j: (p[0] * ref.pixel_mm, p[1] * ref.pixel_mm) for j, p in points.items()}
    area = _area(list(mm.values()), ref.mid.extent_mm)
    where = _search_area(region, tgt.coarse.extent_mm)
    start, _ = _search(ref.coarse, tgt.coarse, area, where)
    sim, score = _refine(ref.mid, tgt.mid, area, start)
    sure_region = score >= SURE_SCORE and len(mm) >= SURE_POINTS
    width, height = tgt.local.extent_mm
    found, wide, sim = _joints(ref, tgt, sim, mm)
    out: dict[str, ProposedJoint] = {}
    for joint, ((x, y), quality) in found.items():
        inside = 0.0 <= x <= width and 0.0 <= y <= height
        q = max(0.0, min(1.0, quality)) if inside else 0.0
        out[joint] = ProposedJoint(
            x / tgt.pixel_mm,
            y / tgt.pixel_mm,
            q,
            sure_region and q >= SURE_QUALITY and joint not in wide,
        )
    return out, _pixel_affine(sim, ref.pixel_mm, tgt.pixel_mm), max(0.0, score)


def _checked_points(
    points: Mapping[tuple[str, str], tuple[float, float]],
) -> dict[str, dict[str, tuple[float, float]]]:
    by_region: dict[str, dict[str, tuple[float, float]]] = {}
    for key, value in points.items():
        if not (isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, str) for k in key)):
            raise ValueError(f"a point's key must be (region, joint), not {key!r}")
        try:
            x, y = (float(v) for v in value)
        except (TypeError, ValueError):
            raise ValueError(
                f"the position of {key[0]} {key[1]} must be (x, y), not {value!r}"
            ) from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"the position of {key[0]} {key[1]} is not finite: {value!r}")
        by_region.setdefault(key[0], {})[key[1]] = (x, y)
    return by_region


def propose_from(
    reference: object,
    reference_mm: float,
    points: Mapping[tuple[str, str], tuple[float, float]],
    target: object,
    target_mm: float,
    *,
    reference_monochrome1: bool = False,
    target_monochrome1: bool = False,
) -> Proposal:
    """The target film's positions of the reference film's ``points``, by registering each region.

    ``reference`` and ``target`` are 2-D stored pixels (bone bright unless the film is
    MONOCHROME1), ``reference_mm`` and ``target_mm`` their pixel spacings; ``points`` are
    positions on the reference by (region, joint), in pixels (x column, y row).
    """
    started = time.perf_counter()
    by_region = _checked_points(points)
    ref = _film(reference, reference_mm, reference_monochrome1, "reference")
    tgt = _film(target, target_mm, target_monochrome1, "target")
    joints: dict[tuple[str, str], ProposedJoint] = {}
    transforms: dict[str, tuple[tuple[float, ...], ...]] = {}
    score: dict[str, float] = {}
    for region in sorted(by_region):
        found, affine, value = _region(ref, tgt, region, by_region[region])
        joints.update({(region, j): p for j, p in found.items()})
        transforms[region] = affine
        score[region] = value
    return Proposal(joints, transforms, score, time.perf_counter() - started)


def disagreements(
    own: Mapping[tuple[str, str], tuple[float, float]],
    proposal: Proposal,
    pixel_mm: float,
    threshold_mm: float = DISAGREE_MM,
) -> list[Disagreement]:
    """The film's own positions farther than ``threshold_mm`` from a sure proposal, farthest
    first. ``own`` and the proposal are on the same film, whose pixel spacing is ``pixel_mm``;
    unsure proposals are no evidence and are skipped."""
    if not (isinstance(pixel_mm, int | float) and math.isfinite(pixel_mm) and pixel_mm > 0):
        raise ValueError(f"the pixel spacing must be a positive number of mm, not {pixel_mm!r}")
    if not (
        isinstance(threshold_mm, int | float) and math.isfinite(threshold_mm) and threshold_mm >= 0
    ):
        raise ValueError(f"the threshold must be a non-negative number of mm, not {threshold_mm!r}")
    out: list[Disagreement] = []
    for (region, joint), position in own.items():
        proposed = proposal.joints.get((region, joint))
        if proposed is None or not proposed.sure:
            continue
        x, y = float(position[0]), float(position[1])
        distance = math.hypot(x - proposed.x, y - proposed.y) * float(pixel_mm)
        if distance > threshold_mm:
            out.append(Disagreement(region, joint, distance, (x, y), (proposed.x, proposed.y)))
    out.sort(key=lambda d: (-d.distance_mm, d.region, d.joint))
    return out
