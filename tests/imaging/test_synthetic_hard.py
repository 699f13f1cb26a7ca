"""Hard synthetic films: per-visit pose, digit spread, bone texture and soft tissue, with their
true joint positions following every change, and standard films left exactly as they were."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import cache

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import ndimage

from scorer.core.methods import Area
from scorer.imaging import synthetic as syn

FloatArray = NDArray[np.float64]

# The joints that move with the whole hand or foot (no digit spread acts on them), among those
# placed exactly: the wrist's bones, the carpus and MCP2-5 (a digit spreads about its proximal
# phalanx's base, so an MCP joint's centre stays), and every MTP joint. (CMC3-5, RCA, MNA and
# CNL are placed by a gap measured in 0.05 mm steps, so they follow the pose to 0.05 px only.)
RIGID_HAND = ("RAD", "ULN", "NAV", "LUN", "MUL", "MCP2", "MCP3", "MCP4", "MCP5")
RIGID_FOOT = ("MTP1", "MTP2", "MTP3", "MTP4", "MTP5")


@cache
def _hands(seed: int, anatomy_seed: int) -> syn.SyntheticImage:
    return syn.render_hands_film({}, seed, anatomy_seed=anatomy_seed, noise=False, hard=True)


@cache
def _feet(seed: int, anatomy_seed: int) -> syn.SyntheticImage:
    return syn.render_feet_film({}, seed, anatomy_seed=anatomy_seed, noise=False, hard=True)


def _similarity(src: FloatArray, dst: FloatArray) -> tuple[float, float, FloatArray, FloatArray]:
    """The least-squares similarity dst ~ scale * R @ src + t (Umeyama 1991): scale, angle in
    degrees, R, t; reflections are not allowed."""
    ms, md = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - ms, dst - md
    u, s, vt = np.linalg.svd(b.T @ a)
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ d @ vt
    scale = float(np.trace(np.diag(s) @ d) / (a * a).sum())
    angle = float(np.degrees(np.arctan2(rot[1, 0], rot[0, 0])))
    return scale, angle, rot, md - scale * rot @ ms


def _points(img: syn.SyntheticImage, region: str, joints: tuple[str, ...]) -> FloatArray:
    return np.array([img.joints[(region, j)] for j in joints], dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Standard films are untouched


_DAMAGE = {
    Area("RH", "MCP2", "ERO"): 3,
    Area("LH", "PIP3", "JSN"): 2,
    Area("RF", "MTP5", "ERO"): (2, 1),
    Area("LF", "MTP1", "JSN"): 4,
}
# sha256 of the pixels, computed on main before hard films existed (commit 91c75f0)
_STANDARD: dict[str, tuple[Callable[[], syn.SyntheticImage], str]] = {
    "hands": (
        lambda: syn.render_hands_film(_DAMAGE, 7, anatomy_seed=5),
        "1dda3cf9efe265bb31e0414e05241829407b437c3dfbbe514776a36f961709df",
    ),
    "feet": (
        lambda: syn.render_feet_film(_DAMAGE, 7, anatomy_seed=5),
        "fa555a6d75e9dfdd156101e5b5b7f9707535ac1615b8ab730b33bb81ae7b1035",
    ),
    "hand": (
        lambda: syn.render_hand("L", _DAMAGE, 8),
        "7632145f45822ed7bf56cacb3e0fd0d7c1dd8d7ecaab6fc4d268bf36ddaf9727",
    ),
    "foot": (
        lambda: syn.render_foot("R", _DAMAGE, 9),
        "a11e8446a6918c7a74a8f0604c2efaef155af796a8192a0abf3b4d69ee1ecd68",
    ),
}


@pytest.mark.parametrize("name", sorted(_STANDARD))
def test_standard_films_are_byte_identical_to_before_hard_films(name: str) -> None:
    render, digest = _STANDARD[name]
    img = render()
    assert not img.hard
    assert hashlib.sha256(img.pixels.tobytes()).hexdigest() == digest


# --------------------------------------------------------------------------------------------
# Determinism and on-film


def test_a_hard_film_is_the_same_from_the_same_seeds() -> None:
    a = syn.render_hand("R", {Area("RH", "MCP3", "ERO"): 2}, 2101, anatomy_seed=2100, hard=True)
    b = syn.render_hand("R", {Area("RH", "MCP3", "ERO"): 2}, 2101, anatomy_seed=2100, hard=True)
    assert a.hard and np.array_equal(a.pixels, b.pixels) and a.joints == b.joints
    other = syn.render_hand("R", {}, 2102, anatomy_seed=2100, hard=True)
    assert other.joints != a.joints


def test_hard_poses_span_the_stated_ranges_and_keep_every_joint_on_its_half_of_the_film() -> None:
    """Over visits of one patient, rotation reaches well past the standard films' 2.5 degrees
    and magnification past their none; every joint stays 10 mm inside the film and its own
    half (two hands or feet never overlap)."""
    angles: dict[str, list[float]] = {}
    scales: dict[str, list[float]] = {}
    for render, rigid in ((_hands, RIGID_HAND), (_feet, RIGID_FOOT)):
        base = render(2200, 2200)
        for seed in range(2201, 2213):
            img = render(seed, 2200)
            margin = syn.HARD_JOINT_MARGIN_MM / img.pixel_mm
            half = img.columns / 2.0
            for (region, _joint), (x, y) in img.joints.items():
                lo, hi = (0.0, half) if region[0] == "R" else (half, float(img.columns))
                assert lo + margin - 1 <= x <= hi - margin + 1, (seed, region, _joint, x)
                assert margin - 1 <= y <= img.rows - margin + 1, (seed, region, _joint, y)
            for region in img.regions:
                s, a, _, _ = _similarity(_points(base, region, rigid), _points(img, region, rigid))
                angles.setdefault(region, []).append(a)
                scales.setdefault(region, []).append(s)
    limit = 1.0 + syn.HARD_MAGNIFICATION
    limit /= 1.0 - syn.HARD_MAGNIFICATION
    for region in angles:  # relative to the first visit: up to twice the range either way
        assert 15.0 < max(angles[region]) - min(angles[region]) <= 60.0, region
        assert max(abs(a) for a in angles[region]) <= 2 * syn.HARD_ROTATION_DEG, region
        assert 1.08 < max(scales[region]) / min(scales[region]) <= limit, region


# --------------------------------------------------------------------------------------------
# Truth follows the pose


def test_a_patients_visits_differ_by_pose_only() -> None:
    """The joints that do not move with the fingers map from visit to visit by one similarity
    (rotation, magnification, shift) to a thousandth of a pixel; each finger's bones are the
    same length at that magnification; only the fingers' angles differ."""
    one, two = _hands(2300, 2300), _hands(2301, 2300)
    for a, b, rigid in ((one, two, RIGID_HAND), (_feet(2300, 2300), _feet(2301, 2300), RIGID_FOOT)):
        for region in a.regions:
            src, dst = _points(a, region, rigid), _points(b, region, rigid)
            scale, angle, rot, shift = _similarity(src, dst)
            residual = np.abs((scale * (rot @ src.T)).T + shift - dst).max()
            assert residual < 1e-6, (region, residual)
            assert abs(scale - 1.0) > 1e-3 or abs(angle) > 0.1  # the pose did change
    spreads = []
    for region in one.regions:
        scale, angle, _rot, _shift = _similarity(
            _points(one, region, RIGID_HAND), _points(two, region, RIGID_HAND)
        )
        for ray in (2, 3, 4, 5):
            mcp, pip = (region, f"MCP{ray}"), (region, f"PIP{ray}")
            v1 = np.subtract(one.joints[pip], one.joints[mcp])
            v2 = np.subtract(two.joints[pip], two.joints[mcp])
            # the proximal phalanx keeps its length (the MCP centre lies a half gap off its
            # axis, so a spread changes the distance by a few ten-thousandths)
            assert np.hypot(*v2) == pytest.approx(scale * np.hypot(*v1), rel=1e-3)
            turn = np.degrees(np.arctan2(v2[1], v2[0]) - np.arctan2(v1[1], v1[0])) - angle
            spreads.append(abs((turn + 180.0) % 360.0 - 180.0))
            far = (region, f"MCP{2 if ray != 2 else 5}")
            d1 = np.hypot(*np.subtract(one.joints[far], one.joints[mcp]))
            d2 = np.hypot(*np.subtract(two.joints[far], two.joints[mcp]))
            assert d2 == pytest.approx(scale * d1, rel=1e-9)
    assert 0.5 < max(spreads) <= 2 * syn.HARD_DIGIT_SPREAD_DEG + 1e-6, spreads


def _along(
    img: syn.SyntheticImage, p: tuple[float, float], q: tuple[float, float], mm: float
) -> float:
    """The pixel value ``mm`` from p towards q (negative: away from q), bilinear."""
    v = np.subtract(q, p)
    x, y = np.add(p, v / np.hypot(*v) * mm / img.pixel_mm)
    return float(ndimage.map_coordinates(img.pixels.astype(np.float64), [[y], [x]], order=1)[0])


@pytest.mark.parametrize("seed", [2400, 2401, 2402])
def test_a_true_joint_space_is_dark_between_bright_bone_ends_on_hard_films(seed: int) -> None:
    """At every true MCP, PIP and MTP position the film is darker than 2.5 mm either way along
    the digit, in both bone ends: the truth sits in the gap whatever the pose."""
    hands, feet = _hands(seed, seed), _feet(seed, seed)
    for img, pairs in (
        (hands, [(f"MCP{r}", f"PIP{r}") for r in (2, 3, 4, 5)] + [("PIP3", "DIP3")]),
        (feet, [(f"MTP{r}", f"MTP{r}") for r in (2, 3, 4, 5)]),
    ):
        for region in img.regions:
            for joint, towards in pairs:
                p = img.joints[(region, joint)]
                if joint == towards:  # a lesser toe: no truth distal of its MTP joint
                    q = _toe_direction(img, region, joint)
                elif (region, towards) in img.joints:
                    q = img.joints[(region, towards)]
                else:
                    continue
                gap = _along(img, p, q, 0.0)
                distal, proximal = _along(img, p, q, 2.5), _along(img, p, q, -2.5)
                assert distal > gap + 60 and proximal > gap + 60, (seed, region, joint)


def _toe_direction(img: syn.SyntheticImage, region: str, joint: str) -> tuple[float, float]:
    """A point distal of a lesser MTP joint along its toe: the MTP joints carry no PIP truth,
    so the toe's direction is taken as the great toe's (MTP1 to IP1), a few degrees off."""
    p, m1, ip1 = (
        img.joints[(region, joint)],
        img.joints[(region, "MTP1")],
        img.joints[(region, "IP1")],
    )
    return (p[0] + ip1[0] - m1[0], p[1] + ip1[1] - m1[1])


def test_bone_texture_is_the_patients_and_moves_with_the_bone() -> None:
    """The trabecular pattern inside the third metacarpal, sampled at the same anatomical
    points on two visits (mapped by the visits' similarity), correlates strongly; another
    patient's does not."""
    one, two, other = _hands(2500, 2500), _hands(2501, 2500), _hands(2502, 2599)
    region = "RH"

    def samples(img: syn.SyntheticImage, pts: FloatArray) -> FloatArray:
        out = ndimage.map_coordinates(
            img.pixels.astype(np.float64), [pts[:, 1], pts[:, 0]], order=1
        )
        high = out - ndimage.uniform_filter1d(out, 9)
        return np.asarray(high, dtype=np.float64)

    cmc, mcp = np.array(one.joints[(region, "CMC3")]), np.array(one.joints[(region, "MCP3")])
    axis = (mcp - cmc) / np.hypot(*(mcp - cmc))
    across = np.array([-axis[1], axis[0]])
    pts = np.array(
        [
            cmc + axis * t + across * d
            for d in np.linspace(-1.0, 1.0, 5) / one.pixel_mm
            for t in np.linspace(0.3, 0.7, 120) * np.hypot(*(mcp - cmc))
        ]
    )

    def mapped(img: syn.SyntheticImage) -> FloatArray:
        scale, _a, rot, shift = _similarity(
            _points(one, region, RIGID_HAND), _points(img, region, RIGID_HAND)
        )
        return np.asarray((scale * (rot @ pts.T)).T + shift, dtype=np.float64)

    base = samples(one, pts)
    same = float(np.corrcoef(base, samples(two, mapped(two)))[0, 1])
    different = float(np.corrcoef(base, samples(other, mapped(other)))[0, 1])
    assert same > 0.8 and abs(different) < 0.4, (same, different)


def test_damage_on_a_hard_film_changes_pixels_only_inside_its_areas_boxes() -> None:
    damage = {Area("RH", "MCP2", "ERO"): 4, Area("RH", "PIP3", "JSN"): 3}
    clean = syn.render_hands_film({}, 2600, anatomy_seed=2600, hard=True)
    damaged = syn.render_hands_film(damage, 2600, anatomy_seed=2600, hard=True)
    assert clean.joints == damaged.joints
    changed = clean.pixels != damaged.pixels
    assert changed.any()
    inside = np.zeros_like(changed)
    for area in damage:
        r0, c0, r1, c1 = damaged.boxes[area]
        inside[r0:r1, c0:c1] = True
    assert not (changed & ~inside).any()


@pytest.mark.parametrize("render", [syn.render_hand, syn.render_foot])
def test_a_one_part_hard_film_keeps_every_joint_inside_the_film(
    render: Callable[..., syn.SyntheticImage],
) -> None:
    """A one-hand (180 mm) or one-foot (160 mm) film is the tightest fit: over many visits
    every joint stays 10 mm inside it, whatever the rotation, magnification and shift."""
    for seed in range(2700, 2716):
        img = render("L" if seed % 2 else "R", {}, seed, anatomy_seed=2700, noise=False, hard=True)
        margin = syn.HARD_JOINT_MARGIN_MM / img.pixel_mm
        for key, (x, y) in img.joints.items():
            assert margin - 1 <= x <= img.columns - margin + 1, (seed, key, x)
            assert margin - 1 <= y <= img.rows - margin + 1, (seed, key, y)
