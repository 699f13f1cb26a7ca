"""Joint positions carried across a patient's visits by registering their films, and the QC
signals the desk lists: joints the locator was unsure of, and own positions that disagree with
the registered ones.

For each patient and body part (hands, feet) the film whose positions are trusted most (placed
or corrected by hand first, then the locator's) is the reference; every other film of the
patient showing the same regions is registered to it (:mod:`scorer.imaging.registration`) and
gets a proposal per joint (``joint_proposals``). A proposal the registration is sure of, of a
joint placed by hand on the reference (dragged, fitted, or the demo's truth), is placed (source
``registered``) where the film has no position of its own, or only an older proposal; one made
from the locator's position is kept for QC only (a locator's error on the reference carried to
another film must not be placed silently). Where the film has its own position, the distance
between the two is kept, and over :data:`DISAGREE_MM` it is a disagreement for QC. The work
(decoding, registering) runs outside any transaction; the proposals of one patient are written
in one, audited.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from scorer.core.joint_fit import region_joints
from scorer.core.methods import FOOT_REGIONS, HAND_REGIONS
from scorer.imaging.visit_registration import RegisterOutcome, RegisterTask, run_register_task
from scorer.services.operation import Op
from scorer.store import repository as repo
from scorer.store.schema import Image, Patient

DISAGREE_MM = 4.0
"""An own position farther than this from a sure registered one is a disagreement (QC): the
locator's 95th-percentile target, about a PIP joint's half-width; registration's own
``DISAGREE_MM`` (a test holds them equal: importing registration here would load scipy.signal
and scikit-image into every process that opens a workspace, a second at start-up)."""

TRUST = {"dragged": 4, "fit": 3, "truth": 3, "locator": 1}
BY_HAND = frozenset({"dragged", "fit", "truth"})
"""The sources of positions registration carries to other films as positions."""
"""How much a position's source is trusted when a reference film is chosen (``registered``
positions never make a film a reference: they came from another)."""

Runner = Callable[[Sequence[RegisterTask]], list[RegisterOutcome]]


def run_here(tasks: Sequence[RegisterTask]) -> list[RegisterOutcome]:
    """Run registration tasks in this process, one after another."""
    return [run_register_task(t) for t in tasks]


@dataclass
class _Group:
    """One patient's films of one body part: the reference and the others."""

    patient: str
    reference: tuple[int, str]  # image id, code
    targets: list[tuple[int, str]]
    task: RegisterTask
    by_hand: frozenset[tuple[str, str]]  # the reference's joints placed by hand


@dataclass
class RegistrationSummary:
    """What registering a trial's (or some patients') films did."""

    groups: int = 0
    proposed: int = 0
    placed: int = 0
    disagreements: int = 0
    problems: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """The summary in words ("" when nothing was registered)."""
        if not self.groups and not self.problems:
            return ""
        text = (
            f"{self.groups} patient film set(s) registered across visits: {self.proposed} "
            f"position(s) proposed, {self.placed} placed, {self.disagreements} disagreement(s) "
            f"over {DISAGREE_MM:g} mm"
        )
        if self.problems:
            text += f"; {len(self.problems)} film(s) not registered ({self.problems[0]})"
        return text


def _part(region: str) -> str:
    return "hand" if region in HAND_REGIONS else "foot" if region in FOOT_REGIONS else ""


def _trust(positions: dict[int, list[Any]], img: Image, part: str) -> tuple[int, int]:
    """How much a film's positions of one body part are trusted (the earliest film wins a tie)."""
    rows = [p for p in positions.get(img.id, []) if _part(p.region) == part]
    return (sum(TRUST.get(p.source, 0) for p in rows), -img.id)


def plan(db: Any, location: Any, t: Any, patient_ids: Iterable[int] | None = None) -> list[_Group]:
    """The registration tasks of a trial's patients (all, or ``patient_ids``): per patient and
    body part with at least two films not failed at QC, the most trusted film as reference."""
    wanted = None if patient_ids is None else set(patient_ids)
    films: dict[tuple[int, str], list[Image]] = {}
    for img in repo.images_of(db, t):
        if img.patient_id is None or img.qc_state == "failed" or not img.reader_path:
            continue
        if wanted is not None and img.patient_id not in wanted:
            continue
        parts = {_part(r.region) for r in img.regions} - {""}
        for part in parts:
            films.setdefault((img.patient_id, part), []).append(img)
    groups = []
    positions = repo.joint_positions_of(db, [i.id for fs in films.values() for i in fs])
    for (patient_id, part), imgs in sorted(films.items(), key=lambda kv: kv[0]):
        if len(imgs) < 2:
            continue

        reference = max(imgs, key=functools.partial(_trust, positions, part=part))
        points = tuple(
            (p.region, p.joint, p.x, p.y)
            for p in positions.get(reference.id, [])
            if _part(p.region) == part and p.source in TRUST
        )
        if not points:
            continue
        targets = [i for i in imgs if i.id != reference.id]
        task = RegisterTask(
            str(location.image_file(reference.reader_path)),
            points,
            tuple(str(location.image_file(i.reader_path)) for i in targets),
        )
        patient = db.get(Patient, patient_id)
        groups.append(
            _Group(
                patient.code if patient else "",
                (reference.id, reference.code),
                [(i.id, i.code) for i in targets],
                task,
                frozenset(
                    (p.region, p.joint)
                    for p in positions.get(reference.id, [])
                    if p.source in BY_HAND and _part(p.region) == part
                ),
            )
        )
    return groups


def write_outcome(
    op: Op, group: _Group, outcome: RegisterOutcome, summary: RegistrationSummary
) -> None:
    """Write one patient's proposals, place the sure ones where a film has no position of its
    own, and audit it, in one transaction."""
    with op.write() as tx:
        db = tx.session
        reference = db.get(Image, group.reference[0])
        trial_id = reference.trial_id if reference else None
        for k, problem in outcome.problems:
            name = group.reference[1] if k < 0 else group.targets[k][1]
            summary.problems.append(f"image {name}: {problem}")
        counts = {"proposed": 0, "placed": 0, "disagreements": 0}
        for k, (target_id, _code) in enumerate(group.targets):
            img = db.get(Image, target_id)
            if img is None or k >= len(outcome.target_mm) or outcome.target_mm[k] <= 0:
                continue
            _write_target(tx, img, group, k, outcome, counts)
        tx.audit(
            "image.registered",
            "image",
            group.reference[1],
            trial_id=trial_id,
            new={
                "patient": group.patient,
                "images": [code for _id, code in group.targets],
                **counts,
                "problems": len(outcome.problems),
            },
        )
    summary.groups += 1
    summary.proposed += counts["proposed"]
    summary.placed += counts["placed"]
    summary.disagreements += counts["disagreements"]


def _write_target(
    tx: Any, img: Image, group: _Group, k: int, outcome: RegisterOutcome, counts: dict[str, int]
) -> None:
    db = tx.session
    shown = {r.region for r in img.regions}
    own = {(p.region, p.joint): p for p in repo.joint_positions_of(db, [img.id]).get(img.id, [])}
    mm = outcome.target_mm[k]
    by_region: dict[str, list[dict[str, Any]]] = {}
    for p in outcome.proposals:
        if p.target != k or p.region not in shown or p.joint not in region_joints(p.region):
            continue
        mine = own.get((p.region, p.joint))
        distance = None
        if mine is not None and mine.source != "registered":
            distance = round(math.hypot(mine.x - p.x, mine.y - p.y) * mm, 2)
            if p.sure and distance > DISAGREE_MM:
                counts["disagreements"] += 1
        elif p.sure and (p.region, p.joint) in group.by_hand:
            repo.put_joint_position(
                db, img, p.region, p.joint, (round(p.x, 2), round(p.y, 2)), "registered", tx.now
            )
            counts["placed"] += 1
        by_region.setdefault(p.region, []).append(
            {
                "joint": p.joint,
                "reference_id": group.reference[0],
                "x": round(p.x, 2),
                "y": round(p.y, 2),
                "quality": round(p.quality, 3),
                "sure": p.sure,
                "distance_mm": distance,
                "computed_at": tx.now,
            }
        )
        counts["proposed"] += 1
    for region in shown:
        repo.replace_proposals(db, img, region, by_region.get(region, []))


def register_patients(
    op: Op,
    location: Any,
    trial: Any,
    patient_ids: Iterable[int] | None = None,
    runner: Runner = run_here,
) -> RegistrationSummary:
    """Register the films of a trial's patients (all, or ``patient_ids``) across visits and
    write the proposals; see the module docstring."""
    from scorer.services.lookups import find_trial

    with op.read() as db:
        t = find_trial(db, trial)
        groups = plan(db, location, t, patient_ids)
    summary = RegistrationSummary()
    if not groups:
        return summary
    outcomes = runner([g.task for g in groups])
    for group, outcome in zip(groups, outcomes, strict=True):
        write_outcome(op, group, outcome, summary)
    return summary
