"""Where each joint lies on a film: the positions joint view centres on.

A position is kept per film and per ``(region, joint)`` — the joint code of a method's areas
(for wrist areas, the bone; for Larsen's wrist quadrants, the quadrant's centre) — in the pixel
grid of the stored image (``x`` the column, ``y`` the row, from the top-left pixel's centre),
whatever rotation or flip the viewer shows it with. ERO and JSN of one joint share a position.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

JOINT_SOURCES: Mapping[str, str] = {
    "truth": "the synthetic generator's true position (demo films)",
    "fit": "placed by the three-click template fit",
    "dragged": "moved by hand",
    "locator": "placed by the automatic joint locator",
    "registered": "proposed by registering the same patient's film of another visit",
}
"""How a position was placed, with what each source means."""


@dataclass(frozen=True)
class JointPoint:
    """One joint's position on one film, in stored-image pixels, and how it was placed."""

    region: str
    joint: str
    x: float
    y: float
    source: str = "fit"


def by_key(points: Iterable[JointPoint]) -> dict[tuple[str, str], JointPoint]:
    """The points by ``(region, joint)`` (the last wins)."""
    return {(p.region, p.joint): p for p in points}
