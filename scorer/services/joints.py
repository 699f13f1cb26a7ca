"""Joint positions found on their own: what the locator made of each film at import, the
positions registration carries across a patient's visits, and what of it needs a look.

The desk's quality control asks :meth:`JointsService.joint_checks` for every image of a trial
(the locator's unsure joints, joints left without a position, own positions that disagree with
the registered ones), :meth:`JointsService.image_joints` for one film's markers, and
:meth:`JointsService.register_visits` after positions were placed or corrected, so that the
patient's other films get the correction proposed. See :mod:`scorer.services.located_joints`
and :mod:`scorer.services.joint_registration` for how they are made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scorer.core.joint_fit import region_joints
from scorer.services.errors import InvalidInput, NotFound
from scorer.services.joint_registration import (
    DISAGREE_MM,
    RegistrationSummary,
    register_patients,
)
from scorer.services.lookups import find_trial, refuse_if_locked
from scorer.services.operation import Op, Service, operation
from scorer.store import repository as repo
from scorer.store.schema import Image, Patient


@dataclass(frozen=True)
class LocatedPoint:
    """Where the locator found one joint of a film, and how sure it was (0 to 1)."""

    region: str
    joint: str
    x: float
    y: float
    confidence: float
    sure: bool


@dataclass(frozen=True)
class Disagreement:
    """A film's own position of a joint that lies ``distance_mm`` from where registration to
    ``reference`` (the patient's film of another visit) puts it."""

    region: str
    joint: str
    distance_mm: float
    own: tuple[float, float]
    proposed: tuple[float, float]
    reference: str


@dataclass(frozen=True)
class JointCheck:
    """One image's joint positions as QC sees them: what the locator took it for (``hand``,
    ``foot``, ``other``; "" when it never ran on it) and why, the joints it was unsure of and
    which of them still have no position, every joint of the image's regions without a
    position, and the disagreements with registration."""

    image: str
    patient: str | None
    visit: str | None
    regions: tuple[str, ...]
    located: str
    reason: str
    sure: int
    unsure: tuple[str, ...]
    unplaced: tuple[str, ...]
    disagreements: tuple[Disagreement, ...]

    @property
    def to_check(self) -> bool:
        """Whether the desk lists it for a look: joints without a position, or disagreements."""
        return bool(self.unplaced or self.disagreements)

    def summary(self) -> str:
        """The check in a few words, for a table cell."""
        parts = []
        if self.located == "other":
            parts.append(f"no hand or foot found ({self.reason})" if self.reason else (
                "no hand or foot found"))  # fmt: skip
        if self.unplaced:
            parts.append(f"{len(self.unplaced)} to place")
        if self.disagreements:
            worst = max(d.distance_mm for d in self.disagreements)
            parts.append(f"{len(self.disagreements)} disagree (up to {worst:.1f} mm)")
        if not parts:
            parts.append("all placed")
        if self.located in ("hand", "foot"):
            found = f"locator sure of {self.sure}"
            parts.append(found + (f", unsure of {len(self.unsure)}" if self.unsure else ""))
        return "; ".join(parts)


@dataclass(frozen=True)
class ImageJoints:
    """One film's joint QC for the desk's viewer: the check, every joint the locator found
    (sure or not), and registration's proposals (region, joint, x, y, quality, sure)."""

    check: JointCheck
    located: tuple[LocatedPoint, ...]
    proposals: tuple[tuple[str, str, float, float, float, bool], ...]


def _label(region: str, joint: str) -> str:
    return f"{region} {joint}"


def _checks(db: Any, images: list[Image]) -> list[JointCheck]:
    ids = [i.id for i in images]
    runs = repo.locator_runs_of(db, ids)
    located = repo.located_joints_of(db, ids)
    placed = repo.joint_positions_of(db, ids)
    proposals = repo.proposals_of(db, ids)
    codes = {i.id: i.code for i in images}
    out = []
    for img in images:
        regions = tuple(sorted(r.region for r in img.regions))
        have = {(p.region, p.joint): p for p in placed.get(img.id, [])}
        run = runs.get(img.id)
        unsure = [j for j in located.get(img.id, []) if not j.sure and j.region in regions]
        disagree = []
        for p in proposals.get(img.id, []):
            own = have.get((p.region, p.joint))
            # A position placed since the registration was checked against it is not listed
            # until the next registration (the desk registers again as it saves).
            if own is None or p.distance_mm is None or own.placed_at > p.computed_at:
                continue
            if p.sure and p.distance_mm > DISAGREE_MM:
                ref = codes.get(p.reference_id) or _code_of(db, p.reference_id)
                disagree.append(
                    Disagreement(p.region, p.joint, p.distance_mm, (own.x, own.y), (p.x, p.y), ref)
                )
        # Every joint of the regions the image is taken to show needs a position (joint
        # view centres on it), whatever the locator made of the film: one it took for no hand
        # or foot (a wrong spacing, a film on its side, hands labelled as feet) is to check.
        unplaced = tuple(
            _label(r, j) for r in regions for j in region_joints(r) if (r, j) not in have
        )
        patient = db.get(Patient, img.patient_id) if img.patient_id else None
        visit = repo.visit_by_id(db, img.visit_id) if img.visit_id else None
        out.append(
            JointCheck(
                image=img.code,
                patient=patient.code if patient else None,
                visit=visit.label if visit else None,
                regions=regions,
                located=run.kind if run else "",
                reason=run.reason if run else "",
                sure=sum(1 for j in located.get(img.id, []) if j.sure),
                unsure=tuple(_label(j.region, j.joint) for j in unsure),
                unplaced=unplaced,
                disagreements=tuple(disagree),
            )
        )
    return out


def _code_of(db: Any, image_id: int) -> str:
    img = db.get(Image, image_id)
    return img.code if img is not None else ""


class JointsService(Service):
    """The locator's results, registration across visits, and the joints QC should look at."""

    @operation("coordinator")
    def joint_checks(self, op: Op, trial: str, to_check: bool = False) -> list[JointCheck]:
        """Every image of a trial with its joint QC: what the locator took it for, its unsure
        joints, the joints still without a position and the disagreements with registration
        over the QC threshold; ``to_check`` keeps only the images with something to look at."""
        t = find_trial(op.db, trial)
        checks = _checks(op.db, repo.images_of(op.db, t))
        return [c for c in checks if c.to_check] if to_check else checks

    @operation("coordinator")
    def image_joints(self, op: Op, image_code: str) -> ImageJoints:
        """One image's joint QC with every joint the locator found and registration's
        proposals, for the markers of the desk's viewer."""
        img = repo.image_by_code(op.db, image_code)
        if img is None:
            raise NotFound(f"no image {image_code!r}")
        located = repo.located_joints_of(op.db, [img.id]).get(img.id, [])
        proposals = repo.proposals_of(op.db, [img.id]).get(img.id, [])
        return ImageJoints(
            check=_checks(op.db, [img])[0],
            located=tuple(
                LocatedPoint(j.region, j.joint, j.x, j.y, j.confidence, j.sure) for j in located
            ),
            proposals=tuple((p.region, p.joint, p.x, p.y, p.quality, p.sure) for p in proposals),
        )

    # Decoding and registering films is long work: the reads and writes are their own.
    @operation("coordinator", write=True, transaction=False)
    def register_visits(
        self, op: Op, trial: str, patient: str | None = None
    ) -> RegistrationSummary:
        """Register a trial's films (or one patient's, by patient code) across visits: the
        film whose positions are trusted most (placed by hand first) is each patient's
        reference for a hand or foot, its positions are proposed on the patient's other films,
        placed where a film has none of its own, and kept for QC; one audited transaction per
        patient and body part."""
        with op.read() as db:
            t = find_trial(db, trial)
            refuse_if_locked(t)
            patient_ids = None
            if patient is not None:
                if not isinstance(patient, str) or not patient:
                    raise InvalidInput("a patient is named by its code")
                p = repo.patient_by_code(db, t, patient)
                if p is None:
                    raise NotFound(f"no patient {patient!r} in trial {trial!r}")
                patient_ids = [p.id]
        return register_patients(op, self.store.location, trial, patient_ids)
