"""The automatic joint locator's results, kept at import: its run, every joint it found with
its confidence, and the sure ones placed.

The locator runs on the decode workers (:mod:`scorer.imaging.decode_pool`); what it returns
is written here in the import's own transaction, so the trail records the run, the joints and
the positions with the image. A sure joint is placed (source ``locator``) unless the joint
already has a position; an unsure one is only kept, for the desk's QC list and the three-click
fit. Joints of a region the image is not taken to show are kept but never placed.
"""

from __future__ import annotations

from typing import Any

from scorer.store import repository as repo


def located_summary(location: Any) -> dict[str, Any]:
    """What the import's audit row says of the locator's run (nothing if it did not run)."""
    if location is None:
        return {}
    sure = sum(1 for j in location.joints if j.sure)
    out: dict[str, Any] = {
        "located": {
            "kind": location.kind,
            "regions": list(location.regions),
            "sure": sure,
            "unsure": len(location.joints) - sure,
        }
    }
    if location.reason:
        out["located"]["reason"] = location.reason
    return out


def record_location(db: Any, img: Any, location: Any, now: str) -> int:
    """Keep the locator's result for ``img`` and place its sure joints of the regions the image
    shows that have no position yet; how many were placed."""
    from scorer.imaging.locator import LOCATOR_VERSION

    repo.put_locator_run(
        db,
        img,
        version=LOCATOR_VERSION,
        kind=location.kind,
        regions=" ".join(location.regions),
        reason=location.reason,
        seconds=round(float(location.seconds), 4),
        now=now,
    )
    shown = {r.region for r in img.regions}
    placed_already = {
        (p.region, p.joint) for p in repo.joint_positions_of(db, [img.id]).get(img.id, [])
    }
    placed = 0
    for j in location.joints:
        repo.put_located_joint(
            db,
            img,
            j.region,
            j.joint,
            (round(j.x, 2), round(j.y, 2)),
            round(j.confidence, 3),
            j.sure,
        )
        if j.sure and j.region in shown and (j.region, j.joint) not in placed_already:
            repo.put_joint_position(
                db, img, j.region, j.joint, (round(j.x, 2), round(j.y, 2)), "locator", now
            )
            placed += 1
    return placed
