"""The synthetic generator's true joint positions: where each film's joints lie, in pixels."""

from __future__ import annotations

from functools import cache

import numpy as np

from scorer.core.methods import Area, get_method
from scorer.imaging import synthetic as syn


@cache
def _hands() -> syn.SyntheticImage:
    return syn.render_hands_film({}, 21, anatomy_seed=21, noise=False)


@cache
def _feet() -> syn.SyntheticImage:
    return syn.render_feet_film({}, 21, anatomy_seed=21, noise=False)


def test_every_joint_of_every_method_of_the_films_regions_has_a_position() -> None:
    for img in (_hands(), _feet()):
        wanted = {
            (r, a.joint)
            for m in ("svh", "larsen1995", "sens")
            for r in img.regions
            for a in get_method(m).areas_of(region=r)
        }
        assert set(img.joints) == wanted
        for x, y in img.joints.values():
            assert 0 <= x < img.columns and 0 <= y < img.rows


def test_a_joint_lies_inside_its_areas_boxes() -> None:
    """The position is where the damage of the joint's areas shows: inside their boxes."""
    for img in (_hands(), _feet()):
        for area, (r0, c0, r1, c1) in img.boxes.items():
            x, y = img.joints[(area.region, area.joint)]
            assert c0 <= x < c1 and r0 <= y < r1, area


def test_a_joint_space_position_lies_between_the_bones() -> None:
    """A finger joint's position is dark (joint space), the bone a few pixels proximal bright."""
    img = _hands()
    px = img.pixels.astype(np.float64)
    for region in ("LH", "RH"):
        for joint in ("MCP2", "MCP3", "PIP3", "PIP4"):
            x, y = img.joints[(region, joint)]
            gap = px[round(y), round(x)]
            bone = px[round(y) + 12, round(x)]  # 3 mm proximal, in the metacarpal or phalanx head
            assert bone > gap + 100, (region, joint, gap, bone)


def test_damage_never_moves_a_joint_and_a_patients_joints_follow_the_pose() -> None:
    damaged = syn.render_hands_film(
        {Area("RH", "MCP2", "JSN"): 4, Area("LH", "RAD", "ERO"): 5},
        21,
        anatomy_seed=21,
        noise=False,
    )
    assert damaged.joints == _hands().joints
    moved = syn.render_hands_film({}, 22, anatomy_seed=21, noise=False)
    shift = [
        np.hypot(a[0] - b[0], a[1] - b[1])
        for k, a in moved.joints.items()
        for b in [_hands().joints[k]]
    ]
    assert 0 < max(shift) < 100  # another visit: a few mm of shift and rotation


def test_sides_mirror_each_other() -> None:
    """The thumb points to the middle of the film: the right hand's MCP1 right of its MCP5."""
    j = _hands().joints
    assert j[("RH", "MCP1")][0] > j[("RH", "MCP5")][0]
    assert j[("LH", "MCP1")][0] < j[("LH", "MCP5")][0]
    f = _feet().joints
    assert f[("RF", "MTP1")][0] > f[("RF", "MTP5")][0]
    assert f[("LF", "MTP1")][0] < f[("LF", "MTP5")][0]


def test_wrist_quadrants_are_the_mean_of_their_areas() -> None:
    j = _hands().joints
    for quadrant, members in syn.WRIST_QUADRANTS.items():
        joints = list(dict.fromkeys(m for m, _f in members))
        mean_x = sum(j[("LH", m)][0] for m in joints) / len(joints)
        assert abs(j[("LH", quadrant)][0] - mean_x) < 1e-9
