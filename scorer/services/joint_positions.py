"""Joint positions of images: reading them for a case's films, checking and placing them.

The operations that use these are ``images.joint_positions`` and
``images.place_image_joints`` (coordinator, desk QC) and ``reading.place_joints`` (a reader,
on a film of their own case; one name per operation across services, hence two names).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from scorer.core.joint_fit import region_joints
from scorer.core.joints import JOINT_SOURCES, JointPoint
from scorer.services.errors import InvalidInput, NotFound
from scorer.services.lookups import own_case, refuse_if_locked
from scorer.services.operation import Op
from scorer.store import repository as repo


def joint_points(db: Any, image_ids: Sequence[int]) -> dict[int, tuple[JointPoint, ...]]:
    """The placed joints of images, by image id (an image without any has none)."""
    rows = repo.joint_positions_of(db, list(image_ids))
    return {
        image_id: tuple(JointPoint(r.region, r.joint, r.x, r.y, r.source) for r in found)
        for image_id, found in rows.items()
    }


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{what} must be a number of pixels, not {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond any float
        number = math.inf
    if not math.isfinite(number):
        shown = f"{value!r}" if len(repr(value)) <= 40 else f"{repr(value)[:40]}…"
        raise InvalidInput(f"{what} must be a finite number of pixels, not {shown}")
    return number


READER_SOURCES = ("fit", "dragged")
"""The sources a reader's placement may claim."""


def checked_points(img: Any, points: Sequence[JointPoint], film: str) -> list[JointPoint]:
    """The points, checked against the image (named ``film`` in messages): each region one the
    image covers, each joint one of that region's joints, each (region, joint) once, x and y
    finite and on the image (from the first pixel's centre, -0.5, to the last's, + 0.5), the
    source a known one. InvalidInput names the first problem."""
    if not points:
        raise InvalidInput("no joint positions given")
    regions = {r.region for r in img.regions}
    seen: set[tuple[str, str]] = set()
    out: list[JointPoint] = []
    for p in points:
        if not isinstance(p, JointPoint):
            raise InvalidInput(f"a joint position must be a JointPoint, not {p!r}")
        if p.region not in regions:
            covered = ", ".join(sorted(regions)) or "no region"
            raise InvalidInput(f"{film} does not show {p.region!r} (it shows {covered})")
        if p.joint not in region_joints(p.region):
            raise InvalidInput(f"{p.joint!r} is not a joint of {p.region}")
        if (p.region, p.joint) in seen:
            raise InvalidInput(f"{p.region} {p.joint} is given twice")
        seen.add((p.region, p.joint))
        x = _number(p.x, f"{p.region} {p.joint}'s x")
        y = _number(p.y, f"{p.region} {p.joint}'s y")
        for value, size, axis, extent in (
            (x, img.columns, "x", "columns"),
            (y, img.rows, "y", "rows"),
        ):
            if size is not None and not -0.5 <= value <= size - 0.5:
                raise InvalidInput(
                    f"{p.region} {p.joint}'s {axis} {value:g} is off the film "
                    f"({size} {extent}: -0.5 to {size - 0.5:g})"
                )
        if p.source not in JOINT_SOURCES:
            raise InvalidInput(
                f"unknown source {p.source!r} of {p.region} {p.joint} "
                f"(known: {', '.join(JOINT_SOURCES)})"
            )
        out.append(JointPoint(p.region, p.joint, x, y, p.source))
    return out


def place_points(db: Any, img: Any, points: Sequence[JointPoint], now: str) -> None:
    """Write checked points: each replaces its joint's position, other joints stay."""
    for p in points:
        repo.put_joint_position(db, img, p.region, p.joint, (p.x, p.y), p.source, now)


def place_on_case_film(
    op: Op, key: bytes, case_code: str, film: str, points: Sequence[JointPoint]
) -> int:
    """``reading.place_joints``: a reader places joints on a film of their own case, named as
    ``images.case_images`` names it there; the film is resolved to its image here, on the
    server's side. Each point replaces its joint's position, the others stay; checked as
    :func:`checked_points` checks them. Audited on the case with the film's name in the case
    only, never the image's code or visit (blinding). A film not in the case is "no such
    film", as for one that does not exist. Returns how many were placed."""
    c, _, t = own_case(op.user, op.db, case_code)
    refuse_if_locked(t)
    img = case_film_image(key, op.db, t, c, film)
    checked = checked_points(img, points, f"film {film}")
    claimed = sorted({p.source for p in checked} - set(READER_SOURCES))
    if claimed:
        # "truth" and "locator" say where a position came from; a reader places by hand.
        raise InvalidInput(
            f"a reader places joints as {' or '.join(READER_SOURCES)}, not {', '.join(claimed)}"
        )
    place_points(op.db, img, checked, op.now)
    op.tx.audit(
        "case.joints",
        "case",
        c.code,
        trial_id=t.id,
        new={
            "film": film,
            "points": len(checked),
            "regions": sorted({p.region for p in checked}),
            "sources": sorted({p.source for p in checked}),
        },
    )
    return len(checked)


def case_film_image(key: bytes, db: Any, t: Any, c: Any, film: str) -> Any:
    """The image a film of case ``c`` shows, the film named as ``images.case_images`` names it
    there; "no film … in this case" (NotFound) for a film not in it, as for one that does
    not exist."""
    from scorer.imaging.delivery import film_name

    for label in json.loads(c.visits):
        v = repo.visit_by_label(db, t, label)
        for candidate in repo.images_of_visit(db, c.patient_id, v.id) if v else ():
            if film_name(key, c.code, candidate.code) == film:
                return candidate
    raise NotFound(f"no film {film[:40]!r} in this case")


def case_film_images(key: bytes, db: Any, t: Any, c: Any, films: Sequence[str]) -> list[str]:
    """The codes of the images films of case ``c`` show, in the order named (each once)."""
    codes: list[str] = []
    for film in films:
        code = case_film_image(key, db, t, c, film).code
        if code not in codes:
            codes.append(code)
    return codes
