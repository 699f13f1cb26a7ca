"""Synthetic hand and foot radiographs with known damage, deterministic by seed.

A test and demo fixture, not a simulator: anatomy is a handful of bones drawn as bodies of
revolution and superellipsoids (sizes in mm, roughly adult), seen in projection. Bone
attenuation is the path length through cortex and through trabecular bone, so the cortex shows
as a bright rim along shafts and a thin subchondral plate at bone ends. Damage is set per
``svh`` area with a known grade:

- erosion: bites out of the bone margin at the joint (cortical defects), more and larger ones
  with each grade; grade 5 also collapses the articular end. Foot joints are graded per side
  (proximal bone, distal bone), as ``svh`` scores them.
- joint space narrowing: the bone ends grow into the gap, leaving ``JSN_GAP_LEFT[grade]`` of the
  normal joint space; grade 4 (ankylosis) bridges the gap with bone and removes the plates.

Every change is local: damage of an area alters pixels only inside that area's box in
:attr:`SyntheticImage.boxes` (the zone where any grade can change the bone, padded by the blur
radius), and the detector noise is a fixed field drawn from the seed, so an image and its
undamaged twin differ inside the box and nowhere else. Ground truth for ``svh`` and
``larsen1995`` comes from the same damage specification (:func:`svh_truth`,
:func:`larsen_truth`), and :func:`damage_course` draws plausible damage over visits.

Orientation: films are stored as displayed, fingers and toes up, the patient's right side on
the viewer's left (anatomical display), so thumbs and great toes point to the middle of a
two-sided film. Pixel values are 12-bit, log exposure, higher = more attenuation (bone bright,
as MONOCHROME2 shows them).

Randomness: the noise field comes from numpy's PCG64 seeded with ``seed``; every discrete
choice (anatomy, pose, erosion sites, damage profiles) comes from
:class:`scorer.core.randomness.Stream`, which does not change between library versions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Literal, TypeAlias

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from scorer.core.joint_fit import region_joints
from scorer.core.methods import (
    FOOT_REGIONS,
    HAND_REGIONS,
    REGIONS,
    Area,
    get_method,
)
from scorer.core.randomness import Stream

FloatArray: TypeAlias = NDArray[np.float64]
Grade: TypeAlias = int | tuple[int, int]
"""An area's damage: an int, or (proximal, distal) for foot erosion."""
Damage: TypeAlias = Mapping[Area, Grade]
Box: TypeAlias = tuple[int, int, int, int]
"""Pixel box (row0, col0, row1, col1), half-open: rows row0..row1-1, columns col0..col1-1."""
Side: TypeAlias = Literal["L", "R"]
Point: TypeAlias = tuple[float, float]

DEFAULT_PIXEL_MM = 0.25
"""Default pixel size: a two-hand film of 300 x 250 mm is 1200 x 1000 pixels."""
BITS_STORED = 12
MAX_VALUE = (1 << BITS_STORED) - 1

# Effective linear attenuation (1/mm) at a hand exposure of about 50-55 kVp; bone values
# include the soft tissue they displace.
MU_SOFT = 0.040
MU_CORTEX = 0.30
MU_TRABECULAR = 0.070
LEAD = 4.0  # attenuation of a lead marker letter

BLUR_SIGMA_PX = 0.45
BLUR_TRUNCATE = 4.0
BLUR_RADIUS_PX = int(BLUR_TRUNCATE * BLUR_SIGMA_PX + 0.5)
BOX_PAD_PX = BLUR_RADIUS_PX + 1
"""Boxes are padded by the blur radius plus one pixel, so damage never shows outside them."""

JSN_GAP_LEFT: Mapping[int, float] = {0: 1.0, 1: 0.75, 2: 0.6, 3: 0.3, 4: 0.0}
"""Share of the normal joint space left at each JSN grade (4: bridged by bone)."""

EROSION_BITES: Mapping[int, tuple[int, float]] = {
    1: (1, 0.9),
    2: (2, 1.3),
    3: (3, 1.75),
    4: (5, 2.1),
    5: (7, 2.5),
}
"""Per erosion grade: number of bites and their radius (mm, for a bone end of radius 6 mm).
Grade 1 is one discrete defect about 1.8 mm across; grade 5 also collapses the articular end."""
MIN_BITE_RADIUS = 0.8  # mm: every generated erosion is at least 1.6 mm across
BITE_DEPTH = 0.85  # share of bone removed inside a bite
BITE_INSET = 0.4  # a bite's centre lies this share of its radius inside the outline
COLLAPSE_DEPTH = 0.6
_MAX_BITE_SCALE = 1.5

LARSEN_FROM_ERO: Mapping[int, int] = {0: 0, 1: 2, 2: 2, 3: 3, 4: 4, 5: 5}
"""Larsen grade implied by an svh erosion grade. Generated erosions are at least 1.5 mm across,
so even svh grade 1 is Larsen 2 ("small erosions over 1 mm")."""
LARSEN_FROM_JSN: Mapping[int, int] = {0: 0, 1: 1, 2: 1, 3: 1, 4: 4}
"""Larsen grade implied by an svh JSN grade: narrowing alone is Larsen 1; ankylosis
("joint space not left") is taken as 4."""

WRIST_QUADRANTS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "WQ1": (("RAD", "ERO"), ("NAV", "ERO"), ("RCA", "JSN")),
    "WQ2": (("ULN", "ERO"), ("LUN", "ERO"), ("RCA", "JSN"), ("CNL", "JSN")),
    "WQ3": (("MUL", "ERO"), ("CMC1", "ERO"), ("MNA", "JSN")),
    "WQ4": (("CMC3", "JSN"), ("CMC4", "JSN"), ("CMC5", "JSN"), ("CNL", "JSN")),
}
"""An approximation, not Larsen's definition: the wrist's svh areas assigned to four quadrants
(WQ1 radial-proximal, WQ2 ulnar-proximal, WQ3 radial-distal, WQ4 ulnar-distal). A quadrant's
Larsen grade is the worst grade implied by its areas."""

FOOT_SIDES = ("proximal", "distal")


# --------------------------------------------------------------------------------------------
# The image


@dataclass(frozen=True)
class SyntheticImage:
    """A rendered film: 12-bit pixels (MONOCHROME2 sense), geometry and ground truth."""

    pixels: NDArray[np.uint16]
    pixel_mm: float
    regions: tuple[str, ...]
    laterality: str  # "L", "R" or "B"
    body_part: str  # "HAND" or "FOOT"
    boxes: dict[Area, Box]
    damage: dict[Area, Grade]
    seed: int
    anatomy_seed: int
    window: tuple[int, int]  # (centre, width) in stored values
    bits_stored: int = BITS_STORED
    joints: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    """True position of every joint of the covered regions, by ``(region, joint)``, in pixels
    (x the column, y the row, from the top-left pixel's centre): see :func:`joint_positions`."""
    hard: bool = False
    """Whether this is a hard film (see :func:`render_hand`): positioning, bone texture and soft
    tissue as on real films, for measuring the automatic locator and registration."""

    @property
    def rows(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def columns(self) -> int:
        return int(self.pixels.shape[1])

    def svh(self) -> dict[Area, int]:
        """Ground-truth svh scores of the regions this film covers."""
        return svh_truth(self.damage, self.regions)

    def larsen(self) -> dict[Area, int]:
        """Ground-truth larsen1995 grades of the regions this film covers."""
        return larsen_truth(self.damage, self.regions)


# --------------------------------------------------------------------------------------------
# Geometry primitives (film mm: X to the right, Y down)


def _rot(v: Point, deg: float) -> Point:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return (v[0] * c - v[1] * s, v[0] * s + v[1] * c)


def _add(p: Point, v: Point, k: float = 1.0) -> Point:
    return (p[0] + k * v[0], p[1] + k * v[1])


def _chord(r: FloatArray, d: FloatArray) -> FloatArray:
    """Length of a chord at distance d from the centre of a disc of radius r."""
    return np.asarray(2.0 * np.sqrt(np.clip(r * r - d * d, 0.0, None)), dtype=np.float64)


@dataclass(frozen=True)
class _Bite:
    """A cortical defect: a soft-edged disc where a share of the bone is removed."""

    centre: Point
    radius: float
    depth: float = BITE_DEPTH

    def factor(self, x: FloatArray, y: FloatArray) -> FloatArray:
        dist = np.hypot(x - self.centre[0], y - self.centre[1])
        m = np.clip((self.radius - dist) / 0.35, 0.0, 1.0)
        return np.asarray(1.0 - self.depth * m, dtype=np.float64)


@dataclass(frozen=True)
class _Grow:
    """Local growth of a blob towards a neighbour: a band where its semi-axes grow by
    ``amount`` (tapered to zero at the band's ends)."""

    centre: Point
    normal: Point  # growth direction
    half_length: float
    inner: float  # how far into the bone the band reaches
    outer: float  # how far past the surface
    amount: float

    def weight(self, x: FloatArray, y: FloatArray) -> FloatArray:
        dx, dy = x - self.centre[0], y - self.centre[1]
        v = dx * self.normal[0] + dy * self.normal[1]
        u = -dx * self.normal[1] + dy * self.normal[0]
        wu = np.clip((self.half_length - np.abs(u)) / 1.5, 0.0, 1.0)
        wv = np.clip((v + self.inner) / 1.5, 0.0, 1.0) * np.clip((self.outer - v) / 0.5, 0.0, 1.0)
        w = wu * wv
        return np.asarray(w * w * (3.0 - 2.0 * w), dtype=np.float64)

    def corners(self) -> list[Point]:
        t = (-self.normal[1], self.normal[0])
        out = []
        for a in (-self.half_length, self.half_length):
            for b in (-self.inner, self.outer):
                out.append(_add(_add(self.centre, t, a), self.normal, b))
        return out


@dataclass(frozen=True)
class _Tube:
    """A long bone (or soft-tissue capsule): a body of revolution about its axis.

    ``p0`` is the tip of the base, ``u`` the unit axis towards the head; the head tip is at
    ``length``. Ends are elliptical domes; the base may be cupped. ``depth`` scales the
    cross-section front to back. ``ext_*`` grow an end into its joint space (JSN);
    ``fuse_*`` make the end a flat trabecular bridge (ankylosis).
    """

    p0: Point
    u: Point
    length: float
    r_base: float
    r_waist: float
    r_head: float
    cap_base: float
    cap_head: float
    t_end: float = 0.0
    t_shaft: float = 0.0
    cup: float = 0.0
    depth: float = 1.0
    ext_base: float = 0.0
    ext_head: float = 0.0
    fuse_base: bool = False
    fuse_head: bool = False
    bites: tuple[_Bite, ...] = ()
    flare: float = 3.0

    @property
    def head(self) -> Point:
        return _add(self.p0, self.u, self.length)

    def at(self, s: float, d: float) -> Point:
        """The point at axial position s and signed offset d (towards +90 degrees)."""
        n = (-self.u[1], self.u[0])
        return _add(_add(self.p0, self.u, s), n, d)

    def normal_dir(self, ds: float, dd: float) -> Point:
        n = (-self.u[1], self.u[0])
        vx = ds * self.u[0] + dd * n[0]
        vy = ds * self.u[1] + dd * n[1]
        k = math.hypot(vx, vy) or 1.0
        return (vx / k, vy / k)

    def bounds(self) -> tuple[float, float, float, float]:
        r = max(self.r_base, self.r_waist, self.r_head) + 0.5
        a = self.at(-self.ext_base - 0.5, 0.0)
        b = self.at(self.length + self.ext_head + 0.5, 0.0)
        return (min(a[0], b[0]) - r, min(a[1], b[1]) - r, max(a[0], b[0]) + r, max(a[1], b[1]) + r)

    def _radius(self, s: FloatArray, inset: float, waist_inset: float) -> FloatArray:
        lo = -self.ext_base
        hi = self.length + self.ext_head
        s_b, s_h = self.cap_base, self.length - self.cap_head
        rb, rw, rh = self.r_base - inset, self.r_waist - waist_inset, self.r_head - inset
        tip_b = lo if self.fuse_base else lo + inset
        tip_h = hi if self.fuse_head else hi - inset
        span = max(s_h - s_b, 1e-6)
        uu = np.clip((s - s_b) / span, 0.0, 1.0)
        r = rw + (rb - rw) * (1.0 - uu) ** self.flare + (rh - rw) * uu**self.flare
        # base end
        base = s < s_b
        if self.fuse_base:
            r = np.where(base, rb, r)
        else:
            h = max(self.cap_base - inset, 0.15)
            dome_end = lo + self.cap_base
            t = np.clip((dome_end - s) / h, 0.0, 1.0)
            r = np.where(base, np.where(s < dome_end, rb * np.sqrt(1.0 - t * t), rb), r)
        head = s > s_h
        if self.fuse_head:
            r = np.where(head, rh, r)
        else:
            h = max(self.cap_head - inset, 0.15)
            dome_start = hi - self.cap_head
            t = np.clip((s - dome_start) / h, 0.0, 1.0)
            r = np.where(head, np.where(s > dome_start, rh * np.sqrt(1.0 - t * t), rh), r)
        r = np.where((s < tip_b) | (s > tip_h), 0.0, r)
        return np.asarray(np.clip(r, 0.0, None), dtype=np.float64)

    def _cup_radius(self, s: FloatArray, grow: float) -> FloatArray:
        if self.cup <= 0.0 or self.fuse_base:
            return np.zeros_like(s)
        big = 1.6 * self.r_base
        centre = -self.ext_base + self.cup - big
        rr = big + grow
        return np.asarray(np.sqrt(np.clip(rr * rr - (s - centre) ** 2, 0.0, None)), np.float64)

    def paths(self, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(cortex, trabecular) path lengths in mm at film points x, y."""
        dx, dy = x - self.p0[0], y - self.p0[1]
        s = dx * self.u[0] + dy * self.u[1]
        d = -dx * self.u[1] + dy * self.u[0]
        ro = self._radius(s, 0.0, 0.0)
        co = self._cup_radius(s, 0.0)
        outer = _chord(ro, d) - _chord(np.minimum(co, ro), d)
        if self.t_end <= 0.0 and self.t_shaft <= 0.0:
            return np.zeros_like(outer), self.depth * outer
        ri = self._radius(s, self.t_end, self.t_shaft)
        ci = self._cup_radius(s, self.t_end)
        inner = _chord(ri, d) - _chord(np.minimum(ci, ri), d)
        inner = np.minimum(inner, outer)
        return self.depth * (outer - inner), self.depth * inner

    def inside(self, x: FloatArray, y: FloatArray) -> NDArray[np.bool_]:
        """Whether film points lie within the bone's outline."""
        dx, dy = x - self.p0[0], y - self.p0[1]
        s = dx * self.u[0] + dy * self.u[1]
        d = -dx * self.u[1] + dy * self.u[0]
        return np.asarray(np.abs(d) < self._radius(s, 0.0, 0.0), dtype=np.bool_)


@dataclass(frozen=True)
class _Blob:
    """A compact bone (carpal, tarsal, sesamoid) or soft-tissue slab: a superellipse in the film
    plane with an ellipsoidal thickness profile, and a cortical shell ``t`` thick."""

    centre: Point
    angle: float  # degrees: direction of the ``a`` axis from +X towards +Y
    a: float
    b: float
    half_depth: float
    n: float = 2.0
    t: float = 0.0
    grows: tuple[_Grow, ...] = ()
    bites: tuple[_Bite, ...] = ()

    def bounds(self) -> tuple[float, float, float, float]:
        r = max(self.a, self.b) * (1.42 if self.n > 2 else 1.0) + 1.0
        r += max((g.amount for g in self.grows), default=0.0)
        return (self.centre[0] - r, self.centre[1] - r, self.centre[0] + r, self.centre[1] + r)

    def _local(self, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        c, s = math.cos(math.radians(self.angle)), math.sin(math.radians(self.angle))
        dx, dy = x - self.centre[0], y - self.centre[1]
        return dx * c + dy * s, -dx * s + dy * c

    def _thickness(
        self, lx: FloatArray, ly: FloatArray, a: FloatArray | float, b: FloatArray | float, c: float
    ) -> FloatArray:
        a_ = np.maximum(a, 0.1)
        b_ = np.maximum(b, 0.1)
        rho = (np.abs(lx / a_) ** self.n + np.abs(ly / b_) ** self.n) ** (1.0 / self.n)
        return np.asarray(2.0 * c * np.sqrt(np.clip(1.0 - rho * rho, 0.0, None)), np.float64)

    def paths(self, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        lx, ly = self._local(x, y)
        grow: FloatArray | float = 0.0
        for g in self.grows:
            grow = grow + g.amount * g.weight(x, y)
        outer = self._thickness(lx, ly, self.a + grow, self.b + grow, self.half_depth)
        if self.t <= 0.0:
            return np.zeros_like(outer), outer
        inner = self._thickness(
            lx, ly, self.a - self.t + grow, self.b - self.t + grow, self.half_depth - self.t
        )
        inner = np.minimum(inner, outer)
        return outer - inner, inner

    def outline(self, deg: float) -> tuple[Point, Point]:
        """The outline point in local direction ``deg`` and the outward normal there."""
        c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
        r = (abs(c / self.a) ** self.n + abs(s / self.b) ** self.n) ** (-1.0 / self.n)
        lx, ly = r * c, r * s
        gx = self.n * abs(lx / self.a) ** (self.n - 1) * math.copysign(1.0, lx) / self.a
        gy = self.n * abs(ly / self.b) ** (self.n - 1) * math.copysign(1.0, ly) / self.b
        k = math.hypot(gx, gy) or 1.0
        ca, sa = math.cos(math.radians(self.angle)), math.sin(math.radians(self.angle))
        p = (self.centre[0] + lx * ca - ly * sa, self.centre[1] + lx * sa + ly * ca)
        nrm = ((gx * ca - gy * sa) / k, (gx * sa + gy * ca) / k)
        return p, nrm

    def inside(self, x: FloatArray, y: FloatArray) -> NDArray[np.bool_]:
        """Whether film points lie within the bone's outline."""
        lx, ly = self._local(x, y)
        rho = np.abs(lx / self.a) ** self.n + np.abs(ly / self.b) ** self.n
        return np.asarray(rho < 1.0, dtype=np.bool_)


_Bone: TypeAlias = _Tube | _Blob


@dataclass(frozen=True)
class _Site:
    """A place where an erosion can bite: a bone, a point on its outline, the outward normal."""

    bone: str
    point: Point
    normal: Point
    scale: float


@dataclass(frozen=True)
class _ErosionSpec:
    sites: tuple[_Site, ...]
    collapse: _Site  # where grade 5 collapses the articular end (normal: along the axis)
    collapse_radius: float


@dataclass(frozen=True)
class _JointSpec:
    """How JSN is drawn at a joint.

    kind ``tubes``: the head of ``bones[0]`` and the base of ``bones[1]`` grow towards each
    other; ``base``/``head``: one tube end grows across the measured gap; ``grow``: a blob grows
    in a band towards its neighbour.
    """

    kind: Literal["tubes", "base", "head", "grow"]
    bones: tuple[str, ...]
    gap: float
    band: _Grow | None = None


@dataclass
class _Part:
    """One hand or foot laid out on the film, before damage."""

    region: str
    bones: dict[str, _Bone]
    soft: list[_Bone]
    joints: dict[str, _JointSpec]
    erosions: dict[tuple[str, str], _ErosionSpec]  # (joint, side) -> where bites go
    placement: _Placement | None = None


# --------------------------------------------------------------------------------------------
# Seeds and small random helpers


def _uniform(stream: Stream, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo + (hi - lo) * stream.below(1 << 53) / float(1 << 53)


def _choice_weighted(stream: Stream, weights: Sequence[float]) -> int:
    total = sum(weights)
    r = _uniform(stream, 0.0, total)
    acc = 0.0
    for i, w in enumerate(weights):
        acc += w
        if r < acc:
            return i
    return len(weights) - 1


@dataclass(frozen=True)
class _Placement:
    """Local part coordinates (mm; x towards the thumb or great toe, y distal) to film mm."""

    origin: Point
    mirror: bool  # left side: local +x points to film -X
    angle: float  # degrees, rotation of the part on the film
    scale: float

    def point(self, p: Point) -> Point:
        x, y = _rot((p[0] * self.scale, p[1] * self.scale), self.angle)
        return (self.origin[0] + (-x if self.mirror else x), self.origin[1] - y)

    def vector(self, v: Point) -> Point:
        x, y = _rot(v, self.angle)
        return ((-x if self.mirror else x), -y)

    def direction(self, deg: float) -> Point:
        """Unit vector of a local direction ``deg`` degrees from +y (distal) towards +x."""
        return self.vector((math.sin(math.radians(deg)), math.cos(math.radians(deg))))

    def film_angle(self, local_deg: float) -> float:
        """Film angle (from +X towards +Y) of a local axis at ``local_deg`` from +x towards +y."""
        v = self.vector((math.cos(math.radians(local_deg)), math.sin(math.radians(local_deg))))
        return math.degrees(math.atan2(v[1], v[0]))


# --------------------------------------------------------------------------------------------
# Anatomy


@dataclass(frozen=True)
class _RayDims:
    base: Point
    angle: float  # MC direction, degrees from +y towards +x
    spread: float  # extra angle of the phalanges
    bones: tuple[tuple[float, float, float, float], ...]  # (length, r_base, r_waist, r_head)
    gaps: tuple[float, ...]


_HAND_RAYS: Mapping[int, _RayDims] = {
    1: _RayDims(
        (19.5, 32.0),
        25.0,
        -8.0,
        ((43.0, 5.4, 3.9, 5.7), (31.0, 5.3, 3.6, 4.5), (23.0, 4.5, 3.0, 3.3)),
        (1.6, 1.3),
    ),
    2: _RayDims(
        (9.5, 37.5),
        7.0,
        3.0,
        (
            (64.0, 5.0, 3.5, 6.0),
            (38.0, 5.1, 3.3, 4.2),
            (22.0, 4.2, 2.8, 3.5),
            (16.0, 3.6, 2.0, 2.8),
        ),
        (1.8, 1.4, 1.1),
    ),
    3: _RayDims(
        (1.2, 38.6),
        0.5,
        0.0,
        (
            (62.0, 5.2, 3.7, 6.1),
            (42.0, 5.3, 3.4, 4.4),
            (25.5, 4.4, 2.9, 3.6),
            (18.0, 3.7, 2.1, 2.9),
        ),
        (1.8, 1.4, 1.1),
    ),
    4: _RayDims(
        (-8.4, 37.6),
        -5.0,
        -3.0,
        (
            (55.0, 4.4, 3.0, 5.4),
            (39.0, 4.9, 3.1, 4.1),
            (24.0, 4.1, 2.7, 3.3),
            (17.0, 3.4, 1.9, 2.7),
        ),
        (1.8, 1.4, 1.1),
    ),
    5: _RayDims(
        (-16.2, 35.6),
        -11.0,
        -6.0,
        (
            (51.0, 4.6, 3.0, 5.0),
            (31.0, 4.4, 2.8, 3.7),
            (18.0, 3.7, 2.4, 3.0),
            (15.0, 3.2, 1.8, 2.5),
        ),
        (1.8, 1.4, 1.1),
    ),
}

_FOOT_RAYS: Mapping[int, _RayDims] = {
    1: _RayDims(
        (17.0, 33.0),
        8.0,
        -14.0,
        ((62.0, 8.5, 5.6, 9.0), (30.0, 8.2, 5.5, 7.2), (22.0, 7.0, 4.6, 5.2)),
        (2.0, 1.5),
    ),
    2: _RayDims(
        (5.5, 30.0),
        2.0,
        -2.0,
        ((74.0, 6.0, 3.6, 5.6), (26.0, 5.0, 3.0, 4.0), (10.0, 4.0, 3.2, 3.6), (8.0, 3.6, 2.2, 2.8)),
        (2.0, 1.2, 1.0),
    ),
    3: _RayDims(
        (-3.0, 31.5),
        -3.0,
        -4.0,
        ((70.0, 5.6, 3.4, 5.4), (23.0, 4.8, 2.9, 3.8), (9.0, 3.9, 3.1, 3.5), (7.5, 3.5, 2.1, 2.7)),
        (2.0, 1.2, 1.0),
    ),
    4: _RayDims(
        (-11.0, 32.0),
        -8.0,
        -6.0,
        ((67.0, 5.4, 3.3, 5.2), (21.0, 4.6, 2.8, 3.6), (8.5, 3.8, 3.0, 3.4), (7.0, 3.4, 2.0, 2.6)),
        (2.0, 1.2, 1.0),
    ),
    5: _RayDims(
        (-19.0, 30.5),
        -14.0,
        -8.0,
        ((63.0, 6.5, 3.4, 5.2), (18.0, 4.5, 2.8, 3.5), (7.5, 3.7, 2.9, 3.3), (6.5, 3.3, 1.9, 2.5)),
        (2.0, 1.2, 1.0),
    ),
}

_HAND_PHALANX_NAMES = ("MC", "PP", "MP", "DP")


@dataclass(frozen=True)
class _Anatomy:
    """Per-patient anatomy: overall size and small differences in finger spread and lengths."""

    scale: float
    spreads: tuple[float, ...]
    lengths: tuple[float, ...]
    visit_spreads: tuple[float, ...] = ()
    """Hard films only: this visit's extra angle (degrees) of each ray's digit at its MCP or
    MTP joint, by ray (index 0 unused)."""
    visit_base_spreads: tuple[float, ...] = ()
    """Hard films only: this visit's extra angle of each whole ray about its base (the thumb's
    abduction at CMC1), by ray."""

    @classmethod
    def draw(cls, anatomy_seed: int, kind: str) -> _Anatomy:
        st = Stream(str(anatomy_seed), f"synthetic-anatomy-{kind}")
        scale = _uniform(st, 0.9, 1.02)
        spreads = tuple(_uniform(st, -2.5, 2.5) for _ in range(6))
        lengths = tuple(_uniform(st, 0.97, 1.03) for _ in range(6))
        return cls(scale, spreads, lengths)


def _tube_sites(
    name: str, t: _Tube, end: Literal["head", "base"], size: float | None = None
) -> list[_Site]:
    """Erosion sites on a tube end: the margins of the articular surface and the bare areas.
    Bites scale with ``size``, the joint's radius (default: this end's radius)."""
    out: list[_Site] = []
    radius = size if size is not None else (t.r_head if end == "head" else t.r_base)
    scale = min(max(radius / 6.0, 0.6), 1.4)
    if end == "head":
        r, h, c = t.r_head, t.cap_head, t.length - t.cap_head
        for phi in (35.0, 60.0, 82.0, -35.0, -60.0, -82.0):
            ps, pd = math.cos(math.radians(phi)), math.sin(math.radians(phi))
            out.append(_Site(name, t.at(c + h * ps, r * pd), t.normal_dir(ps / h, pd / r), scale))
        for sign in (1.0, -1.0):
            s = c - 1.6
            rr = float(t._radius(np.array([s]), 0.0, 0.0)[0])
            out.append(_Site(name, t.at(s, sign * rr), t.normal_dir(0.0, sign), scale))
    else:
        r, h = t.r_base, t.cap_base
        for phi in (55.0, 80.0, -55.0, -80.0):
            ps, pd = math.cos(math.radians(phi)), math.sin(math.radians(phi))
            out.append(_Site(name, t.at(h - h * ps, r * pd), t.normal_dir(-ps / h, pd / r), scale))
        for sign in (1.0, -1.0):
            s = h + 1.8
            rr = float(t._radius(np.array([s]), 0.0, 0.0)[0])
            out.append(_Site(name, t.at(s, sign * rr), t.normal_dir(0.0, sign), scale))
    return out


def _blob_sites(name: str, b: _Blob, angles: Iterable[float]) -> list[_Site]:
    scale = min(max(max(b.a, b.b) / 7.0, 0.6), 1.2)
    out = []
    for deg in angles:
        p, nrm = b.outline(deg)
        out.append(_Site(name, p, nrm, scale))
    return out


def _collapse_of_head(name: str, t: _Tube) -> tuple[_Site, float]:
    return _Site(name, t.at(t.length - 0.3 * t.cap_head, 0.0), t.u, 1.0), 0.8 * t.r_head


def _collapse_of_base(name: str, t: _Tube) -> tuple[_Site, float]:
    return _Site(name, t.at(0.6, 0.0), (-t.u[0], -t.u[1]), 1.0), 0.75 * t.r_base


def _tube(
    pl: _Placement,
    base: Point,
    deg: float,
    dims: tuple[float, float, float, float],
    *,
    cortex: tuple[float, float],
    cup: float,
    cap_head: float | None = None,
    cap_base: float = 1.3,
    depth: float = 1.0,
    flare: float = 3.0,
) -> _Tube:
    length, rb, rw, rh = dims
    k = pl.scale
    return _Tube(
        p0=pl.point(base),
        u=pl.direction(deg),
        length=length * k,
        r_base=rb * k,
        r_waist=rw * k,
        r_head=rh * k,
        cap_base=cap_base * k,
        cap_head=(cap_head if cap_head is not None else 0.75 * rh) * k,
        t_end=cortex[0],
        t_shaft=cortex[1] * k,
        cup=cup * k,
        depth=depth,
        flare=flare,
    )


def _blob(
    pl: _Placement,
    centre: Point,
    local_angle: float,
    a: float,
    b: float,
    c: float,
    n: float = 2.0,
    t: float = 0.5,
) -> _Blob:
    k = pl.scale
    return _Blob(pl.point(centre), pl.film_angle(local_angle), a * k, b * k, c * k, n, t)


def _soft_capsule(
    pl: _Placement, start: Point, deg: float, length: float, r0: float, r1: float, depth: float
) -> _Tube:
    k = pl.scale
    return _Tube(
        p0=pl.point(start),
        u=pl.direction(deg),
        length=length * k,
        r_base=r0 * k,
        r_waist=0.5 * (r0 + r1) * k,
        r_head=r1 * k,
        cap_base=0.6 * r0 * k,
        cap_head=0.55 * r1 * k,
        depth=depth,
        flare=1.0,
    )


@dataclass(frozen=True)
class _Finger:
    """Local line of a finger or toe for its soft tissue: start, direction, length (mm)."""

    start: Point
    deg: float
    length: float


def _rays(
    pl: _Placement,
    rays: Mapping[int, _RayDims],
    anat: _Anatomy,
    cortex_long: tuple[float, float],
    cortex_short: tuple[float, float],
    base_cap: float,
) -> tuple[dict[str, _Tube], dict[int, list[str]], dict[int, _Finger]]:
    """The bones of each ray, placed end to end with their joint gaps."""
    bones: dict[str, _Tube] = {}
    chains: dict[int, list[str]] = {}
    fingers: dict[int, _Finger] = {}
    for ray, dims in rays.items():
        deg = dims.angle + anat.spreads[ray] * 0.5
        if anat.visit_base_spreads:
            deg += anat.visit_base_spreads[ray]
        start = dims.base
        chain: list[str] = []
        names = _HAND_PHALANX_NAMES if len(dims.bones) == 4 else ("MC", "PP", "DP")
        finger_start = start
        finger_deg = deg
        for i, (bone_dims, bname) in enumerate(zip(dims.bones, names, strict=True)):
            length = bone_dims[0] * anat.lengths[ray]
            if i == 1:
                deg += dims.spread + anat.spreads[ray] * 0.5
                if anat.visit_spreads:
                    deg += anat.visit_spreads[ray]
                finger_start, finger_deg = start, deg
            t = _tube(
                pl,
                start,
                deg,
                (length, *bone_dims[1:]),
                cortex=cortex_long if i == 0 else cortex_short,
                cup=0.9 if i > 0 else 0.0,
                cap_base=1.4 if i > 0 else base_cap,
            )
            name = f"{bname}{ray}"
            bones[name] = t
            chain.append(name)
            direction = (math.sin(math.radians(deg)), math.cos(math.radians(deg)))
            start = _add(start, direction, length + (dims.gaps[i] if i < len(dims.gaps) else 0.0))
        total = math.hypot(start[0] - finger_start[0], start[1] - finger_start[1])
        fingers[ray] = _Finger(finger_start, finger_deg, total)
        chains[ray] = chain
    return bones, chains, fingers


def _gap_along(bones: Mapping[str, _Bone], skip: str, start: Point, direction: Point) -> float:
    """Distance from ``start`` along ``direction`` to the first other bone (at most 8 mm)."""
    steps = np.arange(1, 161, dtype=np.float64) * 0.05
    x = start[0] + steps * direction[0]
    y = start[1] + steps * direction[1]
    hit = np.zeros(steps.shape, dtype=np.bool_)
    for name, b in bones.items():
        if name != skip:
            hit |= b.inside(x, y)
    return float(steps[np.argmax(hit)]) if hit.any() else 8.0


def _base_joint(bones: Mapping[str, _Bone], name: str) -> _JointSpec:
    t = bones[name]
    assert isinstance(t, _Tube)
    gap = _gap_along(bones, name, t.p0, (-t.u[0], -t.u[1]))
    return _JointSpec("base", (name,), gap)


def _head_joint(bones: Mapping[str, _Bone], name: str) -> _JointSpec:
    t = bones[name]
    assert isinstance(t, _Tube)
    gap = _gap_along(bones, name, t.head, t.u)
    return _JointSpec("head", (name,), gap)


def _grow_joint(
    bones: Mapping[str, _Bone], name: str, deg: float, half_length: float
) -> _JointSpec:
    b = bones[name]
    assert isinstance(b, _Blob)
    p, nrm = b.outline(deg)
    gap = _gap_along(bones, name, p, nrm)
    band = _Grow(p, nrm, half_length, 2.5, gap + 0.6, 0.0)
    return _JointSpec("grow", (name,), gap, band)


def _erosion_spec_tubes(
    tubes: Mapping[str, _Tube], prox: str, dist: str, side: str
) -> _ErosionSpec:
    tp, td = tubes[prox], tubes[dist]
    size = max(tp.r_head, td.r_base)
    if side == "proximal":
        col, cr = _collapse_of_head(prox, tp)
        return _ErosionSpec(tuple(_tube_sites(prox, tp, "head", size)), col, cr)
    if side == "distal":
        col, cr = _collapse_of_base(dist, td)
        return _ErosionSpec(tuple(_tube_sites(dist, td, "base", size)), col, cr)
    sites = _tube_sites(prox, tp, "head", size) + _tube_sites(dist, td, "base", size)[:4]
    col, cr = _collapse_of_head(prox, tp)
    return _ErosionSpec(tuple(sites), col, cr)


def _wrist_bones(pl: _Placement) -> dict[str, _Bone]:
    """The forearm's ends and the carpus of a hand, in drawing order."""
    bones: dict[str, _Bone] = {}
    # forearm bones: long tubes whose shafts run off the film
    radius = _tube(
        pl,
        (8.5, -110.0),
        0.0,
        (110.0, 8.0, 8.0, 14.0),
        cortex=(0.7, 2.6),
        cup=0.0,
        cap_head=2.5,
        cap_base=5.0,
        depth=0.62,
        flare=3.0,
    )
    ulna = _tube(
        pl,
        (-15.0, -110.0),
        0.0,
        (107.5, 5.5, 5.5, 7.2),
        cortex=(0.6, 2.2),
        cup=0.0,
        cap_head=4.5,
        cap_base=5.0,
        flare=5.0,
    )
    bones["RAD"] = radius
    bones["RSTY"] = _blob(pl, (19.6, 0.5), 80.0, 5.5, 3.2, 4.0, 2.0, 0.5)
    bones["ULN"] = ulna
    bones["USTY"] = _blob(pl, (-19.8, -1.0), 80.0, 3.6, 1.6, 1.6, 2.0, 0.4)
    # carpus, proximal row
    bones["NAV"] = _blob(pl, (11.8, 11.2), 55.0, 11.6, 6.0, 6.5, 2.2, 0.55)
    bones["LUN"] = _blob(pl, (-2.6, 9.2), 90.0, 7.2, 7.0, 8.0, 2.3, 0.55)
    bones["TRI"] = _blob(pl, (-14.0, 12.5), 110.0, 6.2, 5.4, 6.0, 2.2, 0.5)
    bones["PIS"] = _blob(pl, (-15.0, 15.5), 90.0, 4.6, 4.2, 4.5, 2.0, 0.5)
    # distal row
    bones["CAP"] = _blob(pl, (0.6, 27.6), 90.0, 9.6, 5.6, 8.5, 2.6, 0.55)
    bones["HAM"] = _blob(pl, (-11.4, 26.6), 100.0, 9.0, 5.8, 8.0, 2.5, 0.55)
    bones["HOOK"] = _blob(pl, (-10.4, 25.0), 70.0, 3.0, 2.2, 3.0, 2.0, 0.9)
    bones["TZD"] = _blob(pl, (11.0, 31.0), 100.0, 5.6, 4.6, 7.0, 2.6, 0.5)
    bones["TZM"] = _blob(pl, (19.4, 26.0), 40.0, 6.8, 5.6, 6.5, 2.4, 0.5)
    return bones


def _hand_soft_tissue(pl: _Placement, fingers: Mapping[int, _Finger]) -> list[_Bone]:
    """The soft tissue of a hand: forearm, palm, thenar and hypothenar, then each finger."""
    k = pl.scale
    soft: list[_Bone] = [
        _soft_capsule(pl, (-3.0, -200.0), 0.0, 215.0, 29.0, 29.0, 0.55),
        _Blob(pl.point((-2.0, 62.0)), pl.film_angle(90.0), 54.0 * k, 32.0 * k, 13.5 * k, 3.0),
        _Blob(pl.point((21.0, 42.0)), pl.film_angle(130.0), 22.0 * k, 13.0 * k, 12.0 * k),
        _Blob(pl.point((-25.0, 50.0)), pl.film_angle(95.0), 24.0 * k, 9.0 * k, 10.0 * k),
    ]
    for ray, f in fingers.items():
        back = 12.0 if ray > 1 else 18.0
        r0 = {1: 10.5, 2: 9.0, 3: 9.2, 4: 8.8, 5: 8.0}[ray]
        direction = (math.sin(math.radians(f.deg)), math.cos(math.radians(f.deg)))
        start = _add(f.start, direction, -back)
        soft.append(_soft_capsule(pl, start, f.deg, f.length + back + 3.0, r0, r0 * 0.8, 0.82))
    return soft


def _hand_joints(
    bones: Mapping[str, _Bone], chains: Mapping[int, list[str]], k: float
) -> dict[str, _JointSpec]:
    """How joint space narrowing is drawn at each joint of a hand (``k``: the hand's scale)."""
    joints: dict[str, _JointSpec] = {}
    for ray, chain in chains.items():
        for j, code in enumerate(("MCP", "IP" if ray == 1 else "PIP")):
            gap = _HAND_RAYS[ray].gaps[j] * k
            joints[f"{code}{ray}"] = _JointSpec("tubes", (chain[j], chain[j + 1]), gap)
    for ray in (3, 4, 5):
        joints[f"CMC{ray}"] = _base_joint(bones, f"MC{ray}")
    joints["RCA"] = _head_joint(bones, "RAD")
    joints["MNA"] = _grow_joint(bones, "NAV", 0.0, 6.0 * k)
    joints["CNL"] = _grow_joint(bones, "CAP", 180.0, 5.0 * k)
    return joints


def _hand_erosions(
    bones: Mapping[str, _Bone], tubes: Mapping[str, _Tube], chains: Mapping[int, list[str]]
) -> dict[tuple[str, str], _ErosionSpec]:
    """Where erosions bite at each eroded area of a hand: finger joints, CMC1, the carpal
    bones, and the radius and ulna with their styloids."""
    ero: dict[tuple[str, str], _ErosionSpec] = {}
    for ray, chain in chains.items():
        for j, code in enumerate(("MCP", "IP" if ray == 1 else "PIP")):
            ero[(f"{code}{ray}", "")] = _erosion_spec_tubes(tubes, chain[j], chain[j + 1], "")
    mc1 = tubes["MC1"]
    col, cr = _collapse_of_base("MC1", mc1)
    ero[("CMC1", "")] = _ErosionSpec(tuple(_tube_sites("MC1", mc1, "base")), col, cr)
    carpal_sites: tuple[tuple[str, tuple[str, ...], tuple[float, ...]], ...] = (
        ("NAV", ("NAV",), (0.0, 30.0, 70.0, 110.0, 160.0, 200.0, 250.0, 290.0, 330.0)),
        ("LUN", ("LUN",), (0.0, 40.0, 80.0, 130.0, 180.0, 220.0, 270.0, 310.0)),
        ("MUL", ("TZM", "TZD"), (0.0, 70.0, 140.0, 200.0, 270.0)),
    )
    for code, names, angles in carpal_sites:
        sites: list[_Site] = []
        for bn in names:
            b = bones[bn]
            assert isinstance(b, _Blob)
            sites += _blob_sites(bn, b, angles)
        b0 = bones[names[0]]
        assert isinstance(b0, _Blob)
        centre = _Site(names[0], b0.centre, (0.0, -1.0), 1.0)
        ero[(code, "")] = _ErosionSpec(tuple(sites), centre, 0.6 * min(b0.a, b0.b))
    for code, sty, angles in (("RAD", "RSTY", (0.0, 60.0)), ("ULN", "USTY", (0.0, 180.0))):
        tube, sb = bones[code], bones[sty]
        assert isinstance(tube, _Tube) and isinstance(sb, _Blob)
        col, cr = _collapse_of_head(code, tube)
        sites = _tube_sites(code, tube, "head") + _blob_sites(sty, sb, angles)
        ero[(code, "")] = _ErosionSpec(tuple(sites), col, cr * (0.5 if code == "RAD" else 1.0))
    return ero


def _build_hand(region: str, pl: _Placement, anat: _Anatomy) -> _Part:
    """One hand laid out on the film: bones, soft tissue, joints and erosion sites."""
    bones = _wrist_bones(pl)
    k = pl.scale
    tubes, chains, fingers = _rays(pl, _HAND_RAYS, anat, (0.45, 1.5), (0.4, 1.15), 2.2)
    bones.update(tubes)
    mc1 = tubes["MC1"]
    bones["SES1"] = _Blob(mc1.at(mc1.length - 3.5 * k, 2.6 * k), 0.0, 2.0 * k, 2.0 * k, 2.0 * k)
    bones["SES2"] = _Blob(mc1.at(mc1.length - 3.0 * k, -2.8 * k), 0.0, 1.7 * k, 1.7 * k, 1.8 * k)
    soft = _hand_soft_tissue(pl, fingers)
    joints = _hand_joints(bones, chains, k)
    ero = _hand_erosions(bones, tubes, chains)
    return _Part(region, bones, soft, joints, ero, pl)


def _build_foot(region: str, pl: _Placement, anat: _Anatomy) -> _Part:
    bones: dict[str, _Bone] = {}
    k = pl.scale
    # hindfoot and midfoot, simplified (the film cuts the calcaneus)
    bones["CAL"] = _blob(pl, (-14.0, -36.0), 95.0, 30.0, 14.0, 8.0, 2.2, 0.6)
    bones["TAL"] = _blob(pl, (6.0, -15.0), 70.0, 15.0, 10.5, 7.5, 2.2, 0.6)
    bones["NAVF"] = _blob(pl, (12.0, 7.0), -12.0, 13.5, 6.0, 10.0, 2.3, 0.6)
    bones["CUB"] = _blob(pl, (-14.0, 13.5), 75.0, 12.0, 9.0, 10.0, 2.6, 0.6)
    bones["CUN1"] = _blob(pl, (17.5, 22.0), 85.0, 9.2, 7.8, 11.0, 2.6, 0.6)
    bones["CUN2"] = _blob(pl, (6.4, 20.6), 88.0, 7.2, 5.0, 9.0, 2.6, 0.6)
    bones["CUN3"] = _blob(pl, (-3.4, 22.4), 86.0, 8.0, 5.4, 9.0, 2.6, 0.6)

    tubes, chains, fingers = _rays(pl, _FOOT_RAYS, anat, (0.5, 1.6), (0.45, 1.2), 2.0)
    bones.update(tubes)
    mt5 = tubes["MC5"]
    lateral = 1.0 if pl.mirror else -1.0  # film offset sign towards the little toe
    bones["TUB5"] = _Blob(
        mt5.at(4.0 * k, lateral * 6.0 * k), 0.0, 5.0 * k, 4.5 * k, 4.5 * k, 2.0, 0.5
    )
    mt1 = tubes["MC1"]
    bones["SES1"] = _Blob(mt1.at(mt1.length - 6.0 * k, 3.8 * k), 0.0, 3.4 * k, 4.0 * k, 3.5 * k)
    bones["SES2"] = _Blob(mt1.at(mt1.length - 6.0 * k, -4.0 * k), 0.0, 3.0 * k, 3.8 * k, 3.3 * k)

    soft: list[_Bone] = [
        _Blob(pl.point((0.0, 52.0)), pl.film_angle(90.0), 98.0 * k, 46.0 * k, 22.0 * k, 2.6),
        _Blob(pl.point((-3.0, -40.0)), pl.film_angle(90.0), 80.0 * k, 36.0 * k, 30.0 * k, 2.4),
    ]
    for ray, f in fingers.items():
        back = 14.0
        r0 = {1: 13.0, 2: 8.0, 3: 7.6, 4: 7.4, 5: 7.4}[ray]
        direction = (math.sin(math.radians(f.deg)), math.cos(math.radians(f.deg)))
        start = _add(f.start, direction, -back)
        soft.append(_soft_capsule(pl, start, f.deg, f.length + back + 3.0, r0, r0 * 0.85, 0.8))

    joints: dict[str, _JointSpec] = {}
    ero: dict[tuple[str, str], _ErosionSpec] = {}
    for ray, chain in chains.items():
        joints[f"MTP{ray}"] = _JointSpec("tubes", (chain[0], chain[1]), _FOOT_RAYS[ray].gaps[0] * k)
        for side in FOOT_SIDES:
            ero[(f"MTP{ray}", side)] = _erosion_spec_tubes(tubes, chain[0], chain[1], side)
    c = chains[1]
    joints["IP1"] = _JointSpec("tubes", (c[1], c[2]), _FOOT_RAYS[1].gaps[1] * k)
    for side in FOOT_SIDES:
        ero[("IP1", side)] = _erosion_spec_tubes(tubes, c[1], c[2], side)
    return _Part(region, bones, soft, joints, ero, pl)


# --------------------------------------------------------------------------------------------
# Damage


def _check_damage(damage: Damage) -> dict[Area, Grade]:
    """Validate a damage specification against svh and return it as a plain dict."""
    method = get_method("svh")
    out: dict[Area, Grade] = {}
    for key, grade in damage.items():
        area = Area(*key)
        if not method.has_area(area):
            raise ValueError(f"{area}: not an svh area")
        adef = method.area(area)
        if adef.sides:
            if not (isinstance(grade, tuple) and len(grade) == len(adef.sides)):
                raise ValueError(f"{area}: give ({', '.join(adef.sides)}) grades, not {grade!r}")
            top = adef.max // len(adef.sides)
            for g in grade:
                if isinstance(g, bool) or not isinstance(g, int) or not 0 <= g <= top:
                    raise ValueError(f"{area}: side grade {g!r} outside 0-{top}")
            out[area] = (int(grade[0]), int(grade[1]))
        else:
            if isinstance(grade, bool) or not isinstance(grade, int):
                raise ValueError(f"{area}: grade must be a whole number, not {grade!r}")
            if not adef.min <= grade <= adef.max:
                raise ValueError(f"{area}: grade {grade} outside {adef.min}-{adef.max}")
            out[area] = grade
    return out


def _bites_for(spec: _ErosionSpec, grade: int, order: Sequence[int]) -> dict[str, list[_Bite]]:
    out: dict[str, list[_Bite]] = {}
    if grade <= 0:
        return out
    n, r0 = EROSION_BITES[grade]
    for i in order[:n]:
        site = spec.sites[i]
        r = max(r0 * site.scale, MIN_BITE_RADIUS)
        centre = _add(site.point, site.normal, -BITE_INSET * r)
        out.setdefault(site.bone, []).append(_Bite(centre, r))
    if grade == 5:
        c = spec.collapse
        centre = _add(c.point, c.normal, -0.2 * spec.collapse_radius)
        out.setdefault(c.bone, []).append(_Bite(centre, spec.collapse_radius, COLLAPSE_DEPTH))
    return out


def _site_order(anatomy_seed: int, region: str, joint: str, side: str, n: int) -> list[int]:
    st = Stream(str(anatomy_seed), f"synthetic-erosion-sites:{region}:{joint}:{side}")
    return st.shuffled(list(range(n)))


def _apply_damage(part: _Part, damage: Mapping[Area, Grade], anatomy_seed: int) -> dict[str, _Bone]:
    bones = dict(part.bones)
    bites: dict[str, list[_Bite]] = {}
    for area, grade in damage.items():
        if area.region != part.region:
            continue
        if area.feature == "ERO":
            grades = (
                {"": grade}
                if isinstance(grade, int)
                else {FOOT_SIDES[0]: grade[0], FOOT_SIDES[1]: grade[1]}
            )
            for side, g in grades.items():
                spec = part.erosions[(area.joint, side)]
                order = _site_order(anatomy_seed, area.region, area.joint, side, len(spec.sites))
                for bone, bs in _bites_for(spec, g, order).items():
                    bites.setdefault(bone, []).extend(bs)
        elif area.feature == "JSN":
            assert isinstance(grade, int)
            if grade > 0:
                _narrow(bones, part.joints[area.joint], grade)
    for name, bs in bites.items():
        b = bones[name]
        bones[name] = replace(b, bites=b.bites + tuple(bs))
    return bones


def _narrow(bones: dict[str, _Bone], spec: _JointSpec, grade: int) -> None:
    closure = spec.gap * (1.0 - JSN_GAP_LEFT[grade])
    fuse = grade == 4
    if spec.kind == "tubes":
        prox, dist = bones[spec.bones[0]], bones[spec.bones[1]]
        assert isinstance(prox, _Tube) and isinstance(dist, _Tube)
        half = spec.gap / 2.0 + 0.05 if fuse else closure / 2.0
        bones[spec.bones[0]] = replace(prox, ext_head=half, fuse_head=fuse)
        bones[spec.bones[1]] = replace(dist, ext_base=half, fuse_base=fuse)
    elif spec.kind in ("base", "head"):
        t = bones[spec.bones[0]]
        assert isinstance(t, _Tube)
        ext = spec.gap + 0.3 if fuse else closure
        if spec.kind == "base":
            bones[spec.bones[0]] = replace(t, ext_base=ext, fuse_base=fuse)
        else:
            bones[spec.bones[0]] = replace(t, ext_head=ext, fuse_head=fuse)
    else:
        b = bones[spec.bones[0]]
        assert isinstance(b, _Blob) and spec.band is not None
        amount = spec.gap + 0.4 if fuse else closure
        bones[spec.bones[0]] = replace(b, grows=(*b.grows, replace(spec.band, amount=amount)))


# --------------------------------------------------------------------------------------------
# Zones: where damage of any grade can change pixels


def _rect(t: _Tube, s0: float, s1: float, half: float) -> list[Point]:
    return [t.at(s, d) for s in (s0, s1) for d in (-half, half)]


def _tube_end_zone(t: _Tube, end: str, gap: float) -> list[Point]:
    if end == "head":
        return _rect(t, t.length - t.cap_head - 0.3, t.length + gap + 0.4, t.r_head + 0.3)
    top = max(t.cap_base, t.cup + t.t_end) + 0.3
    return _rect(t, -gap - 0.4, top, t.r_base + 0.3)


def _jsn_zone(part: _Part, joint: str) -> list[Point]:
    spec = part.joints[joint]
    if spec.kind == "tubes":
        prox, dist = part.bones[spec.bones[0]], part.bones[spec.bones[1]]
        assert isinstance(prox, _Tube) and isinstance(dist, _Tube)
        return _tube_end_zone(prox, "head", spec.gap) + _tube_end_zone(dist, "base", spec.gap)
    if spec.kind in ("base", "head"):
        t = part.bones[spec.bones[0]]
        assert isinstance(t, _Tube)
        return _tube_end_zone(t, spec.kind, spec.gap + 0.3)
    assert spec.band is not None
    band = replace(spec.band, outer=spec.band.outer + 0.5)
    return band.corners()


def _disc(c: Point, r: float) -> list[Point]:
    return [(c[0] - r, c[1] - r), (c[0] + r, c[1] + r)]


def _ero_zone(part: _Part, joint: str) -> list[Point]:
    pts: list[Point] = []
    _, rmax = EROSION_BITES[5]
    for (j, _side), spec in part.erosions.items():
        if j != joint:
            continue
        for site in spec.sites:
            r = max(rmax * site.scale, MIN_BITE_RADIUS)
            pts += _disc(_add(site.point, site.normal, -BITE_INSET * r), r + 0.1)
        c = spec.collapse
        pts += _disc(_add(c.point, c.normal, -0.2 * spec.collapse_radius), spec.collapse_radius)
    return pts


# --------------------------------------------------------------------------------------------
# Joint positions: where a reader points at each joint


def _joint_space_centre(part: _Part, joint: str) -> Point:
    """The middle of a joint's space (film mm), between the bone ends JSN narrows."""
    spec = part.joints[joint]
    first = part.bones[spec.bones[0]]
    if spec.kind == "tubes":
        second = part.bones[spec.bones[1]]
        assert isinstance(first, _Tube) and isinstance(second, _Tube)
        head, base = first.head, second.p0
        return ((head[0] + base[0]) / 2.0, (head[1] + base[1]) / 2.0)
    if spec.kind == "base":
        assert isinstance(first, _Tube)
        return _add(first.p0, first.u, -spec.gap / 2.0)
    if spec.kind == "head":
        assert isinstance(first, _Tube)
        return _add(first.head, first.u, spec.gap / 2.0)
    assert spec.band is not None
    return _add(spec.band.centre, spec.band.normal, spec.gap / 2.0)


def _articular_end(part: _Part, bone: str, end: Literal["head", "base"]) -> Point:
    """The centre of a long bone's articular end: on its axis, a dome's height inside the tip."""
    t = part.bones[bone]
    assert isinstance(t, _Tube)
    return t.at(t.length - t.cap_head, 0.0) if end == "head" else t.at(t.cap_base, 0.0)


def _blob_centre(part: _Part, *bones: str) -> Point:
    """The mean centre of compact bones (the trapezium and trapezoid for MUL)."""
    centres = [b.centre for name in bones if isinstance(b := part.bones[name], _Blob)]
    return (sum(c[0] for c in centres) / len(centres), sum(c[1] for c in centres) / len(centres))


def _part_joints(part: _Part) -> dict[str, Point]:
    """Every joint's position on the film (mm), by joint code, for one hand or foot.

    A joint scored for narrowing is the middle of its joint space. A bone scored for erosion
    only is where a reader points at it: the radius, ulna and first metacarpal (RAD, ULN,
    CMC1) at the centre of their articular end, the scaphoid and lunate (NAV, LUN) at their
    centre, the multangulars (MUL) midway between theirs. A Larsen wrist quadrant is the mean
    of its areas' positions (:data:`WRIST_QUADRANTS`). All of these follow the part's
    shift, rotation, size and side exactly, so one patient's films differ by pose alone.
    """
    out: dict[str, Point] = {joint: _joint_space_centre(part, joint) for joint in part.joints}
    if part.region in HAND_REGIONS:
        out["RAD"] = _articular_end(part, "RAD", "head")
        out["ULN"] = _articular_end(part, "ULN", "head")
        out["CMC1"] = _articular_end(part, "MC1", "base")
        out["NAV"] = _blob_centre(part, "NAV")
        out["LUN"] = _blob_centre(part, "LUN")
        out["MUL"] = _blob_centre(part, "TZM", "TZD")
        for quadrant, members in WRIST_QUADRANTS.items():
            joints = list(dict.fromkeys(j for j, _f in members))
            out[quadrant] = (
                sum(out[j][0] for j in joints) / len(joints),
                sum(out[j][1] for j in joints) / len(joints),
            )
    return out


def mean_anatomy_joints(kind: str) -> dict[str, tuple[float, float]]:
    """Where the joints of the generator's mean right hand or foot (``kind``) lie, in mm:
    x to the right (towards the thumb or great toe), y down (proximal), from the part's
    origin, unrotated, at the mean size (the mean of :class:`_Anatomy`'s draws: scale 0.96,
    no extra spread, every ray at its nominal length). The three-click fit's template."""
    if kind not in ("hand", "foot"):
        raise ValueError(f"kind must be hand or foot, not {kind!r}")
    scale = 0.96
    placement = _Placement((0.0, 0.0), False, 0.0, scale)
    anatomy = _Anatomy(scale, (0.0,) * 6, (1.0,) * 6)
    region = "RH" if kind == "hand" else "RF"
    part = (_build_hand if kind == "hand" else _build_foot)(region, placement, anatomy)
    found = _part_joints(part)
    return {joint: found[joint] for joint in region_joints(region)}


def joint_positions(
    film: _Film, parts: Iterable[_Part]
) -> dict[tuple[str, str], tuple[float, float]]:
    """The true joint positions of a film's parts in pixels (x column, y row, from the
    top-left pixel's centre), by ``(region, joint)``, for every joint of
    :func:`scorer.core.joint_fit.region_joints`. Taken from the undamaged anatomy: damage
    never moves a joint."""
    out: dict[tuple[str, str], tuple[float, float]] = {}
    for part in parts:
        found = _part_joints(part)
        for joint in region_joints(part.region):
            x, y = found[joint]
            out[(part.region, joint)] = (x / film.pixel_mm - 0.5, y / film.pixel_mm - 0.5)
    return out


# --------------------------------------------------------------------------------------------
# Rendering


@dataclass(frozen=True)
class _Film:
    width_mm: float
    height_mm: float
    pixel_mm: float

    @property
    def shape(self) -> tuple[int, int]:
        return (round(self.height_mm / self.pixel_mm), round(self.width_mm / self.pixel_mm))

    def patch(
        self, bounds: tuple[float, float, float, float]
    ) -> tuple[tuple[slice, slice], FloatArray, FloatArray] | None:
        rows, cols = self.shape
        px = self.pixel_mm
        c0 = max(0, math.floor(bounds[0] / px))
        r0 = max(0, math.floor(bounds[1] / px))
        c1 = min(cols, math.ceil(bounds[2] / px) + 1)
        r1 = min(rows, math.ceil(bounds[3] / px) + 1)
        if c1 <= c0 or r1 <= r0:
            return None
        xs = (np.arange(c0, c1, dtype=np.float64) + 0.5) * px
        ys = (np.arange(r0, r1, dtype=np.float64) + 0.5) * px
        x, y = np.meshgrid(xs, ys)
        return (slice(r0, r1), slice(c0, c1)), x, y

    def box(self, pts: Sequence[Point]) -> Box | None:
        rows, cols = self.shape
        px = self.pixel_mm
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        r0 = max(0, math.floor(min(ys) / px) - BOX_PAD_PX)
        c0 = max(0, math.floor(min(xs) / px) - BOX_PAD_PX)
        r1 = min(rows, math.ceil(max(ys) / px) + BOX_PAD_PX)
        c1 = min(cols, math.ceil(max(xs) / px) + BOX_PAD_PX)
        if r1 <= r0 or c1 <= c0:
            return None
        return (r0, c0, r1, c1)


_GLYPHS: Mapping[str, tuple[str, ...]] = {
    "R": ("1110", "1001", "1001", "1110", "1010", "1001", "1001"),
    "L": ("1000", "1000", "1000", "1000", "1000", "1000", "1111"),
}


def _marker(film: _Film, atten: FloatArray, letter: str, corner: Point) -> None:
    """A lead side marker (burned into the exposure, as on real films)."""
    cell = 1.8
    glyph = _GLYPHS[letter]
    for i, row in enumerate(glyph):
        for j, on in enumerate(row):
            if on != "1":
                continue
            x0, y0 = corner[0] + j * cell, corner[1] + i * cell
            p = film.patch((x0, y0, x0 + cell, y0 + cell))
            if p is None:
                continue
            sl, x, y = p
            inside = (x >= x0) & (x < x0 + cell) & (y >= y0) & (y < y0 + cell)
            atten[sl] += LEAD * inside


def _render(
    film: _Film,
    parts: Sequence[tuple[_Part, Mapping[Area, Grade]]],
    markers: Sequence[tuple[str, Point]],
    seed: int,
    anatomy_seed: int,
    noise: bool,
    hard: bool = False,
) -> tuple[NDArray[np.uint16], dict[Area, Box]]:
    shape = film.shape
    if hard:
        build = Stream(str(anatomy_seed), "synthetic-hard-build")
        atten = _soft_hard(film, [part for part, _ in parts], _uniform(build, 0.7, 1.6))
    else:
        soft = np.zeros(shape, dtype=np.float64)
        for part, _ in parts:
            for shape_ in part.soft:
                p = film.patch(shape_.bounds())
                if p is None:
                    continue
                sl, x, y = p
                cort, trab = shape_.paths(x, y)
                soft[sl] = np.maximum(soft[sl], cort + trab)
        atten = MU_SOFT * soft
    for part, damage in parts:
        bones = _apply_damage(part, damage, anatomy_seed)
        kind = "hand" if part.region in HAND_REGIONS else "foot"
        texture = _texture(anatomy_seed, kind) if hard else None
        for bone in bones.values():
            p = film.patch(bone.bounds())
            if p is None:
                continue
            sl, x, y = p
            cort, trab = bone.paths(x, y)
            if texture is not None and part.placement is not None:
                inside = trab > 0.0
                trab[inside] *= texture.at(part.placement, x[inside], y[inside])
            a = MU_CORTEX * cort + MU_TRABECULAR * trab
            for bite in bone.bites:
                a = a * bite.factor(x, y)
            atten[sl] += a
    for letter, corner in markers:
        _marker(film, atten, letter, corner)

    st = Stream(str(seed), "synthetic-exposure")
    photons = _uniform(st, 18000.0, 30000.0)  # quanta per pixel with no object
    gain = _uniform(st, 680.0, 760.0)  # stored values per unit of attenuation (log exposure)
    offset = _uniform(st, 260.0, 340.0)  # stored value of the direct beam
    electronic = 2.0
    if hard:
        # the heel effect: exposure falls off from the cathode to the anode end of the film
        heel = _uniform(Stream(str(seed), "synthetic-hard-heel"), -0.12, 0.12)
        rows = (np.arange(shape[0], dtype=np.float64) + 0.5) / shape[0] - 0.5
        atten = atten + heel * rows[:, None]
    signal = offset + gain * atten
    if noise:
        sd = np.sqrt(gain * gain / (photons * np.exp(-np.minimum(atten, 5.0))) + electronic**2)
        z = np.random.Generator(np.random.PCG64(seed)).standard_normal(shape)
        signal = signal + sd * z
    blurred = ndimage.gaussian_filter(signal, BLUR_SIGMA_PX, truncate=BLUR_TRUNCATE)
    pixels = np.clip(np.rint(blurred), 0, MAX_VALUE).astype(np.uint16)

    boxes: dict[Area, Box] = {}
    for part, _ in parts:
        _part_boxes(film, part, boxes)
    return pixels, boxes


def _part_boxes(film: _Film, part: _Part, boxes: dict[Area, Box]) -> None:
    method = get_method("svh")
    for adef in method.areas_of(region=part.region):
        joint, feature = adef.joint, adef.feature
        pts = _ero_zone(part, joint) if feature == "ERO" else _jsn_zone(part, joint)
        box = film.box(pts)
        if box is not None:
            boxes[adef.area] = box
    for adef in get_method("larsen1995").areas_of(region=part.region):
        members = WRIST_QUADRANTS.get(adef.joint, ((adef.joint, "ERO"), (adef.joint, "JSN")))
        found = [boxes[k] for j, f in members if (k := Area(part.region, j, f)) in boxes]
        if found:
            boxes[adef.area] = (
                min(b[0] for b in found),
                min(b[1] for b in found),
                max(b[2] for b in found),
                max(b[3] for b in found),
            )


def _window(pixels: NDArray[np.uint16]) -> tuple[int, int]:
    sample = pixels[::4, ::4]
    lo = float(np.percentile(sample, 1.0))
    hi = float(np.percentile(sample, 99.9))
    width = max(round(hi - lo), 64)
    return round((hi + lo) / 2.0), width


def _pose(seed: int, region: str, origin: Point, mirror: bool, scale: float) -> _Placement:
    """Positioning differs a little from film to film: shift and rotation from the seed."""
    st = Stream(str(seed), f"synthetic-pose:{region}")
    dx, dy = _uniform(st, -3.0, 3.0), _uniform(st, -3.0, 3.0)
    angle = _uniform(st, -2.5, 2.5)
    return _Placement((origin[0] + dx, origin[1] + dy), mirror, angle, scale)


# --------------------------------------------------------------------------------------------
# Hard films: the positioning, bone texture and soft tissue of real films, for measuring the
# automatic locator and registration (opt in with ``hard=True``; standard films are unchanged)

HARD_ROTATION_DEG = 15.0
"""A hard film's hand or foot is rotated by up to this many degrees either way."""
HARD_SHIFT_MM = 8.0
"""... shifted by up to this much along each film axis (then kept on the film) ..."""
HARD_MAGNIFICATION = 0.10
"""... and magnified by up to this share either way."""
HARD_DIGIT_SPREAD_DEG = 4.0
"""Each finger or toe's angle at its MCP or MTP joint varies by up to this much per visit."""
HARD_THUMB_SPREAD_DEG = 6.0
"""The thumb's abduction at CMC1 varies by up to this much per visit."""
HARD_JOINT_MARGIN_MM = 10.0
"""Every joint lies at least this far inside the film (and inside its half on a two-part
film, so the two hands or feet never overlap)."""
HARD_TIP_MARGIN_MM = 6.0
"""Every finger and toe tip lies at least this far inside the film."""
_HARD_PIVOT: Mapping[str, Point] = {"hand": (0.0, 70.0), "foot": (0.0, 40.0)}
"""The local point a hard film's hand or foot is rotated and magnified about: its middle."""

MU_FAT = 0.8 * MU_SOFT
"""Subcutaneous fat attenuates less than muscle and skin, so the skin line shows a darker band."""
FAT_LAYER_MM = 3.0
TEXTURE_STEP_MM = 0.3
"""Grid step of the trabecular pattern, in the part's own (unmagnified) millimetres."""
_TEXTURE_EXTENT: Mapping[str, tuple[float, float, float, float]] = {
    "hand": (-80.0, -140.0, 85.0, 235.0),
    "foot": (-75.0, -95.0, 80.0, 245.0),
}
"""The part's local box (x0, y0, x1, y1, mm) that its trabecular pattern covers."""


@dataclass(frozen=True)
class _Texture:
    """A patient's trabecular pattern: a factor around 1 on the trabecular attenuation, laid
    out in the hand's or foot's own plane so that it moves with the bone from film to film."""

    factor: FloatArray  # rows: local y, columns: local x
    x0: float
    y0: float
    step: float

    def at(self, pl: _Placement, x: FloatArray, y: FloatArray) -> FloatArray:
        """The factor at film points x, y (mm) of a part placed by ``pl``."""
        vx = (x - pl.origin[0]) * (-1.0 if pl.mirror else 1.0)
        vy = pl.origin[1] - y
        c, s = math.cos(math.radians(pl.angle)), math.sin(math.radians(pl.angle))
        lx = (vx * c + vy * s) / pl.scale
        ly = (-vx * s + vy * c) / pl.scale
        coords = np.stack(((ly - self.y0) / self.step, (lx - self.x0) / self.step))
        out = ndimage.map_coordinates(self.factor, coords, order=1, mode="nearest")
        return np.asarray(out, dtype=np.float64)


@lru_cache(maxsize=4)  # a patient's visits come together; a pattern is 2-3 MB
def _texture(anatomy_seed: int, kind: str) -> _Texture:
    """The trabecular pattern of a patient's hands or feet (``kind``), from ``anatomy_seed``:
    band-pass noise, finer across the digits than along them (trabeculae run mostly along a
    long bone's axis), with a slower variation of density on top."""
    x0, y0, x1, y1 = _TEXTURE_EXTENT[kind]
    step = TEXTURE_STEP_MM
    shape = (round((y1 - y0) / step) + 1, round((x1 - x0) / step) + 1)
    rng = np.random.Generator(np.random.PCG64([anatomy_seed % (1 << 63), len(kind)]))
    white = rng.standard_normal(shape)
    fine = ndimage.gaussian_filter(white, (0.75 / step, 0.35 / step))
    coarse = ndimage.gaussian_filter(white, 1.6 / step)
    band = fine - coarse
    band /= float(band.std()) or 1.0
    # the slow variation is drawn on a grid ten times coarser and enlarged: far cheaper
    coarse_shape = (shape[0] // 10 + 2, shape[1] // 10 + 2)
    slow = ndimage.gaussian_filter(rng.standard_normal(coarse_shape), 0.5 / step)
    slow = ndimage.zoom(slow, 10.0, order=1)[: shape[0], : shape[1]]
    slow /= float(slow.std()) or 1.0
    factor = 1.0 + 0.28 * np.tanh(1.1 * band) + 0.08 * slow
    return _Texture(np.clip(factor, 0.4, 1.6).astype(np.float32), x0, y0, step)


def _digit_tips(part: _Part) -> list[Point]:
    """The tips of a part's fingers or toes (film mm): the heads of its distal phalanges."""
    return [
        b.head for name, b in part.bones.items() if name.startswith("DP") and isinstance(b, _Tube)
    ]


def _hard_anatomy(seed: int, region: str, anat: _Anatomy) -> _Anatomy:
    """The patient's anatomy with this visit's finger or toe spread drawn from ``seed``."""
    st = Stream(str(seed), f"synthetic-hard-spread:{region}")
    digits = tuple(_uniform(st, -HARD_DIGIT_SPREAD_DEG, HARD_DIGIT_SPREAD_DEG) for _ in range(6))
    thumb = _uniform(st, -HARD_THUMB_SPREAD_DEG, HARD_THUMB_SPREAD_DEG)
    base = (0.0, thumb, 0.0, 0.0, 0.0, 0.0) if region in HAND_REGIONS else (0.0,) * 6
    return replace(anat, visit_spreads=digits, visit_base_spreads=base)


def _hard_part(
    film: _Film, region: str, origin: Point, seed: int, anat: _Anatomy, x_range: tuple[float, float]
) -> _Part:
    """A hand or foot placed as on a hard film: rotated, magnified and shifted about its middle
    by amounts drawn from ``seed``, its digits spread for this visit, then moved (never more
    than needed) so that every joint and digit tip stays inside ``x_range`` and the film."""
    hand = region in HAND_REGIONS
    build = _build_hand if hand else _build_foot
    st = Stream(str(seed), f"synthetic-hard-pose:{region}")
    angle = _uniform(st, -HARD_ROTATION_DEG, HARD_ROTATION_DEG)
    scale = anat.scale * (1.0 + _uniform(st, -HARD_MAGNIFICATION, HARD_MAGNIFICATION))
    shift = (
        _uniform(st, -HARD_SHIFT_MM, HARD_SHIFT_MM),
        _uniform(st, -HARD_SHIFT_MM, HARD_SHIFT_MM),
    )
    mirror = region[0] == "L"
    pivot = _HARD_PIVOT["hand" if hand else "foot"]
    # the pivot lands where the standard pose's pivot would, plus the shift
    target = _Placement(origin, mirror, 0.0, anat.scale).point(pivot)
    turned = _Placement((0.0, 0.0), mirror, angle, scale).point(pivot)
    o = (target[0] - turned[0] + shift[0], target[1] - turned[1] + shift[1])
    visit = _hard_anatomy(seed, region, anat)
    part = build(region, _Placement(o, mirror, angle, scale), visit)
    jm, tm = HARD_JOINT_MARGIN_MM, HARD_TIP_MARGIN_MM
    limits = [(p, jm) for p in _part_joints(part).values()] + [(p, tm) for p in _digit_tips(part)]
    dx = _into_range([(p[0], m) for p, m in limits], x_range)
    dy = _into_range([(p[1], m) for p, m in limits], (0.0, film.height_mm))
    if dx == 0.0 and dy == 0.0:
        return part
    return build(region, _Placement((o[0] + dx, o[1] + dy), mirror, angle, scale), visit)


def _into_range(values: Sequence[tuple[float, float]], bounds: tuple[float, float]) -> float:
    """The smallest move that brings every value at least its margin inside ``bounds`` (the
    middle of the two when they cannot all fit)."""
    lo = max(bounds[0] + m - v for v, m in values)
    hi = min(bounds[1] - m - v for v, m in values)
    if lo > hi:
        return (lo + hi) / 2.0
    return min(max(0.0, lo), hi)


def _x_range(
    film: _Film, layout: Sequence[tuple[str, Point]], origin: Point
) -> tuple[float, float]:
    """Where a part's joints may lie across the film: all of it, or its own half of a film
    of two parts, so that the two never overlap."""
    if len(layout) < 2:
        return (0.0, film.width_mm)
    middle = film.width_mm / 2.0
    return (0.0, middle) if origin[0] < middle else (middle, film.width_mm)


def _soft_hard(film: _Film, parts: Sequence[_Part], fat_scale: float) -> FloatArray:
    """Soft-tissue attenuation of a hard film: the shapes merged smoothly (no crease where a
    finger meets the palm), a fat layer under the skin attenuating less than muscle, and the
    patient's build (``fat_scale``) thickening the fat layer."""
    fourth = np.zeros(film.shape, dtype=np.float64)
    for part in parts:
        for shape_ in part.soft:
            p = film.patch(shape_.bounds())
            if p is None:
                continue
            sl, x, y = p
            cort, trab = shape_.paths(x, y)
            t2 = (cort + trab) ** 2
            fourth[sl] += t2 * t2
    thickness = np.sqrt(np.sqrt(fourth))
    fat = np.minimum(thickness, 2.0 * FAT_LAYER_MM * fat_scale)
    return np.asarray(MU_SOFT * (thickness - fat) + MU_FAT * fat, dtype=np.float64)


def _image(
    film: _Film,
    layout: Sequence[tuple[str, Point]],
    damage: Damage,
    seed: int,
    anatomy_seed: int | None,
    noise: bool,
    laterality: str,
    hard: bool = False,
) -> SyntheticImage:
    checked = _check_damage(damage)
    aseed = seed if anatomy_seed is None else anatomy_seed
    parts: list[tuple[_Part, Mapping[Area, Grade]]] = []
    markers: list[tuple[str, Point]] = []
    for region, origin in layout:
        hand = region in HAND_REGIONS
        anat = _Anatomy.draw(aseed, "hand" if hand else "foot")
        if hard:
            part = _hard_part(film, region, origin, seed, anat, _x_range(film, layout, origin))
        else:
            pl = _pose(seed, region, origin, region[0] == "L", anat.scale)
            part = (_build_hand if hand else _build_foot)(region, pl, anat)
        parts.append((part, {a: g for a, g in checked.items() if a.region == region}))
        left = region[0] == "L"
        x = origin[0] + (30.0 if left else -42.0)
        markers.append((region[0], (min(max(x, 6.0), film.width_mm - 14.0), 8.0)))
    pixels, boxes = _render(film, parts, markers, seed, aseed, noise, hard)
    regions = tuple(r for r in REGIONS if r in {r for r, _ in layout})
    return SyntheticImage(
        pixels=pixels,
        pixel_mm=film.pixel_mm,
        regions=regions,
        laterality=laterality,
        body_part="HAND" if regions[0] in HAND_REGIONS else "FOOT",
        boxes=boxes,
        damage={a: g for a, g in checked.items() if a.region in regions},
        seed=seed,
        anatomy_seed=aseed,
        window=_window(pixels),
        joints=joint_positions(film, [part for part, _ in parts]),
        hard=hard,
    )


# --------------------------------------------------------------------------------------------
# Public rendering API


def render_hand(
    side: Side,
    damage: Damage,
    seed: int,
    pixel_mm: float = DEFAULT_PIXEL_MM,
    *,
    anatomy_seed: int | None = None,
    noise: bool = True,
    hard: bool = False,
) -> SyntheticImage:
    """A PA film of one hand and wrist (180 x 250 mm). Damage of other regions is ignored.

    ``seed`` sets positioning, exposure and noise; ``anatomy_seed`` (default: ``seed``) sets
    the patient's anatomy and where erosions sit, so a patient's visits share it.
    ``noise=False`` renders the same film without detector noise.

    ``hard=True`` renders a harder film, as real positioning and anatomy make them, for
    measuring the automatic locator and registration: per film (from ``seed``) the hand is
    rotated up to 15 degrees either way about its middle, magnified up to 10 % either way,
    shifted up to 8 mm (then moved back as far as needed to keep every joint 10 mm and every
    fingertip 6 mm inside the film), each finger spread up to 4 degrees at its MCP joint and
    the thumb up to 6 at CMC1, and the exposure falls off along the film (heel effect); per
    patient (from ``anatomy_seed``) the bones carry a trabecular pattern that moves with them
    and the soft tissue has a fat layer under the skin. :attr:`SyntheticImage.joints` follows
    all of it. Without it the film is exactly as before hard films existed.
    """
    region = f"{side}H"
    origin = (105.0, 213.0) if side == "L" else (75.0, 213.0)
    film = _Film(180.0, 250.0, pixel_mm)
    return _image(film, [(region, origin)], damage, seed, anatomy_seed, noise, side, hard)


def render_hands_film(
    damage: Damage,
    seed: int,
    pixel_mm: float = DEFAULT_PIXEL_MM,
    *,
    anatomy_seed: int | None = None,
    noise: bool = True,
    hard: bool = False,
) -> SyntheticImage:
    """A PA film of both hands (300 x 250 mm, ImageLaterality B): right hand on the left.
    ``hard``: as :func:`render_hand`, each hand kept on its own half of the film."""
    film = _Film(300.0, 250.0, pixel_mm)
    layout = [("RH", (76.0, 212.0)), ("LH", (224.0, 212.0))]
    return _image(film, layout, damage, seed, anatomy_seed, noise, "B", hard)


def render_foot(
    side: Side,
    damage: Damage,
    seed: int,
    pixel_mm: float = DEFAULT_PIXEL_MM,
    *,
    anatomy_seed: int | None = None,
    noise: bool = True,
    hard: bool = False,
) -> SyntheticImage:
    """A dorsoplantar film of one forefoot and midfoot (160 x 250 mm). ``hard``: as
    :func:`render_hand` (each toe spread at its MTP joint)."""
    region = f"{side}F"
    origin = (92.0, 200.0) if side == "L" else (68.0, 200.0)
    film = _Film(160.0, 250.0, pixel_mm)
    return _image(film, [(region, origin)], damage, seed, anatomy_seed, noise, side, hard)


def render_feet_film(
    damage: Damage,
    seed: int,
    pixel_mm: float = DEFAULT_PIXEL_MM,
    *,
    anatomy_seed: int | None = None,
    noise: bool = True,
    hard: bool = False,
) -> SyntheticImage:
    """A dorsoplantar film of both feet (300 x 250 mm, ImageLaterality B). ``hard``: as
    :func:`render_hand`, each foot kept on its own half of the film."""
    film = _Film(300.0, 250.0, pixel_mm)
    layout = [("RF", (85.0, 200.0)), ("LF", (215.0, 200.0))]
    return _image(film, layout, damage, seed, anatomy_seed, noise, "B", hard)


def preview(image: SyntheticImage, window: tuple[int, int] | None = None) -> NDArray[np.uint8]:
    """An 8-bit windowed copy of the pixels for a quick look (bone white)."""
    centre, width = window or image.window
    lo = centre - width / 2.0
    out = (image.pixels.astype(np.float64) - lo) / width * 255.0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Ground truth


def svh_truth(damage: Damage, regions: Iterable[str]) -> dict[Area, int]:
    """svh scores of every area of ``regions`` (0 where undamaged); foot ERO = sum of sides.

    Areas of other regions are absent.
    """
    checked = _check_damage(damage)
    wanted = set(regions)
    out: dict[Area, int] = {}
    for adef in get_method("svh").areas:
        if adef.region in wanted:
            g = checked.get(adef.area, 0)
            out[adef.area] = sum(g) if isinstance(g, tuple) else g
    return out


def svh_sides(damage: Damage, regions: Iterable[str]) -> dict[Area, tuple[int, int]]:
    """The (proximal, distal) sub-scores of each foot erosion area of ``regions``."""
    checked = _check_damage(damage)
    wanted = set(regions)
    out: dict[Area, tuple[int, int]] = {}
    for adef in get_method("svh").areas:
        if adef.region in wanted and adef.sides:
            g = checked.get(adef.area, (0, 0))
            assert isinstance(g, tuple)
            out[adef.area] = g
    return out


def larsen_from_svh(erosion: int, narrowing: int) -> int:
    """The Larsen grade of a joint from its svh erosion (0-5, the worse side for a foot) and
    JSN (0-4) grades: the worse of :data:`LARSEN_FROM_ERO` and :data:`LARSEN_FROM_JSN`."""
    return max(LARSEN_FROM_ERO[erosion], LARSEN_FROM_JSN[narrowing])


def larsen_truth(damage: Damage, regions: Iterable[str]) -> dict[Area, int]:
    """larsen1995 grades of every unit of ``regions``, derived from the svh damage.

    Finger and toe joints: :func:`larsen_from_svh` of the joint. Wrist quadrants: the worst
    grade implied by the areas :data:`WRIST_QUADRANTS` assigns them (an approximation).
    """
    checked = _check_damage(damage)
    wanted = set(regions)

    def implied(region: str, joint: str, feature: str) -> int:
        g = checked.get(Area(region, joint, feature), 0)
        if feature == "ERO":
            return LARSEN_FROM_ERO[max(g) if isinstance(g, tuple) else g]
        assert isinstance(g, int)
        return LARSEN_FROM_JSN[g]

    out: dict[Area, int] = {}
    for adef in get_method("larsen1995").areas:
        if adef.region not in wanted:
            continue
        members = WRIST_QUADRANTS.get(adef.joint, ((adef.joint, "ERO"), (adef.joint, "JSN")))
        out[adef.area] = max(implied(adef.region, j, f) for j, f in members)
    return out


# --------------------------------------------------------------------------------------------
# Plausible damage over visits


def _weights(
    prefix: str, first: int, feature: str, ws: Sequence[float]
) -> dict[tuple[str, str], float]:
    return {(f"{prefix}{first + i}", feature): w for i, w in enumerate(ws)}


_PREDILECTION: Mapping[tuple[str, str], float] = {
    **_weights("MCP", 1, "ERO", (1.0, 3.0, 3.0, 1.5, 2.0)),
    **_weights("PIP", 2, "ERO", (1.5, 1.5, 1.0, 1.0)),
    ("IP1", "ERO"): 1.0,
    ("CMC1", "ERO"): 0.6,
    ("MUL", "ERO"): 0.8,
    ("NAV", "ERO"): 1.5,
    ("LUN", "ERO"): 1.0,
    ("RAD", "ERO"): 1.0,
    ("ULN", "ERO"): 2.5,
    **_weights("MCP", 1, "JSN", (1.0, 2.0, 2.0, 1.2, 1.2)),
    **_weights("PIP", 2, "JSN", (1.5, 1.5, 1.2, 1.2)),
    ("CMC3", "JSN"): 0.6,
    ("CMC4", "JSN"): 0.6,
    ("CMC5", "JSN"): 0.6,
    ("MNA", "JSN"): 1.0,
    ("CNL", "JSN"): 1.2,
    ("RCA", "JSN"): 1.0,
    **_weights("MTP", 1, "ERO", (2.0, 1.5, 1.5, 1.5, 3.0)),
    **_weights("MTP", 1, "JSN", (1.5, 1.2, 1.0, 1.0, 1.2)),
}
"""Relative frequency of damage by site (commonest: MCP2-3, ulnar styloid, MTP5)."""
_PREDILECTION_FOOT_IP = {"ERO": 1.0, "JSN": 0.6}


@dataclass(frozen=True)
class DamageCourse:
    """A patient's damage at each visit (non-decreasing), and whether it progresses."""

    progressor: bool
    severity: str  # "none", "mild", "moderate" or "severe" at baseline
    visits: tuple[dict[Area, Grade], ...]


def _weight(area: Area) -> float:
    if area.region in FOOT_REGIONS and area.joint == "IP1":
        return _PREDILECTION_FOOT_IP[area.feature]
    return _PREDILECTION[(area.joint, area.feature)]


def _increment(st: Stream, damage: dict[Area, Grade], areas: Sequence[Area]) -> None:
    """One step of damage: one area chosen by site predilection (favouring damaged areas),
    often mirrored to the other side, as rheumatoid arthritis is symmetric."""
    weights = [_weight(a) * (2.5 if damage.get(a) else 1.0) for a in areas]
    area = areas[_choice_weighted(st, weights)]
    targets = [area]
    other = Area(("R" if area.region[0] == "L" else "L") + area.region[1], area.joint, area.feature)
    if other in areas and st.below(100) < 45:
        targets.append(other)
    for a in targets:
        g = damage.get(a, (0, 0) if a.region in FOOT_REGIONS and a.feature == "ERO" else 0)
        if isinstance(g, tuple):
            i = 0 if st.below(100) < 60 else 1
            if g[i] < 5:
                damage[a] = (g[0] + 1, g[1]) if i == 0 else (g[0], g[1] + 1)
        elif a.feature == "ERO":
            damage[a] = min(g + 1, 5)
        elif g < 3 or (g == 3 and st.below(100) < 8):
            damage[a] = g + 1


def damage_course(
    seed: int,
    visits: int = 3,
    regions: Iterable[str] = REGIONS,
    *,
    progressor: bool | None = None,
    severity: Literal["none", "mild", "moderate", "severe"] | None = None,
) -> DamageCourse:
    """Random but plausible damage of one patient at ``visits`` visits, from ``seed``.

    Baseline severity (unless given): none 15 %, mild 40 %, moderate 30 %, severe 15 %.
    Progressors (half of patients unless given) gain 2-8 grade steps between visits (more when
    severe); others stay as they are. Grades never decrease.
    """
    if visits < 1:
        raise ValueError("visits must be at least 1")
    st = Stream(str(seed), "synthetic-damage-course")
    wanted = set(regions)
    areas = [a.area for a in get_method("svh").areas if a.region in wanted]
    levels = ("none", "mild", "moderate", "severe")
    drawn = levels[_choice_weighted(st, (15.0, 40.0, 30.0, 15.0))]
    level = severity or drawn
    prog = st.below(2) == 1
    is_progressor = prog if progressor is None else progressor
    baseline_steps = {"none": (0, 0), "mild": (3, 10), "moderate": (12, 30), "severe": (35, 70)}
    damage: dict[Area, Grade] = {}
    if areas:
        for _ in range(st.between(*baseline_steps[level])):
            _increment(st, damage, areas)
    out = [dict(damage)]
    for _ in range(visits - 1):
        if is_progressor and areas:
            hi = 12 if level == "severe" else 8
            for _ in range(st.between(2, hi)):
                _increment(st, damage, areas)
        out.append(dict(damage))
    return DamageCourse(is_progressor, level, tuple(out))


def iter_areas(image: SyntheticImage, feature: str | None = None) -> Iterator[Area]:
    """The svh areas an image covers, in the method's order."""
    for adef in get_method("svh").areas:
        if adef.region in image.regions and (feature is None or adef.feature == feature):
            yield adef.area
