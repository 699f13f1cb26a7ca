"""Calibration: reading the calibration patients, feedback against the reference, release to the
trial."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from scorer.core.methods import get_method
from scorer.core.randomness import ALGORITHM as RANDOM_ALGORITHM
from scorer.core.reads import AreaScore
from scorer.core.reads import Read as CoreRead
from scorer.services.errors import InvalidInput, NotFound
from scorer.services.lookups import (
    case_reads,
    case_status,
    find_trial,
    is_released,
    own_case,
    protocol_of,
    refuse_if_locked,
    rules_of,
)
from scorer.services.operation import Op, Service, operation
from scorer.services.validation import need_reason
from scorer.services.worklists import special_campaign, store_worklist
from scorer.store import repository as repo
from scorer.store.schema import (
    Release,
)


@dataclass(frozen=True)
class CalibrationWorklists:
    """The calibration worklists just made: reader -> cases in it (readers who had one
    already are not listed)."""

    cases: Mapping[str, int]


@dataclass(frozen=True)
class AreaComparison:
    """One area of a signed calibration visit: the reader's entry beside the reference's, the
    difference in grades (None unless both are scored) and the verdict ("same", "within one",
    "differs" or "not comparable")."""

    area: str
    yours: AreaScore | None
    reference: AreaScore | None
    difference: int | None
    verdict: str


@dataclass(frozen=True)
class CalibrationFeedback:
    """A signed calibration case against the reference: per visit letter its areas (None for a
    visit the reference has no signed read of)."""

    case: str
    visits: Mapping[str, tuple[AreaComparison, ...] | None]


@dataclass(frozen=True)
class IccEstimate:
    """A reader's status ICC(A,1) against the reference, with its 95% interval (None where it
    cannot be computed)."""

    form: str
    value: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class FeatureAgreement:
    """Areas of one feature compared with the reference: how many, % graded the same and %
    within one grade."""

    n: int
    pct_exact: float
    pct_within_one: float


@dataclass(frozen=True)
class ReaderCalibration:
    """One reader's calibration: cases and signed ones, release, the targets compared, the
    status ICC and the per-feature agreement (overall and per region kind, hand and foot)."""

    reader: str
    cases: int
    signed: int
    released: bool
    released_at: str | None
    targets: int
    icc_n: int
    icc: IccEstimate | None
    features: Mapping[str, FeatureAgreement]
    by_region_kind: Mapping[str, Mapping[str, FeatureAgreement]]


@dataclass(frozen=True)
class CalibrationReport:
    """A trial's calibration: its patients, whose reads are the reference and how many of
    them are signed, and each reader's agreement with them."""

    trial: str
    calibration_patients: tuple[str, ...]
    reference: str
    reference_reads: int
    readers: tuple[ReaderCalibration, ...]

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``scorer calibration show`` and of the agreement report's data."""
        out = asdict(self)
        out["calibration_patients"] = list(self.calibration_patients)
        out["readers"] = [asdict(r) for r in self.readers]
        return out


def reader_calibration(
    user: str, cases: int, signed: int, released_at: str | None, stats: Mapping[str, Any]
) -> ReaderCalibration:
    """A reader's row from their counts and :func:`scorer.reports.calibration.agreement`."""

    def shares(by_feature: Mapping[str, Mapping[str, Any]]) -> dict[str, FeatureAgreement]:
        return {
            f: FeatureAgreement(v["n"], v["pct_exact"], v["pct_within_one"])
            for f, v in by_feature.items()
        }

    icc = stats["icc"]
    return ReaderCalibration(
        reader=user,
        cases=cases,
        signed=signed,
        released=released_at is not None,
        released_at=released_at,
        targets=stats["targets"],
        icc_n=stats["icc_n"],
        icc=IccEstimate(icc["form"], icc["value"], icc["ci_low"], icc["ci_high"]) if icc else None,
        features=shares(stats["features"]),
        by_region_kind={k: shares(v) for k, v in stats["by_region_kind"].items()},
    )


class CalibrationService(Service):
    """Calibration worklists, each reader's agreement with the reference reads, and releasing a
    reader."""

    @operation("coordinator", write=True)
    def calibration_worklists(self, op: Op, trial: str) -> CalibrationWorklists:
        """Give every assigned reader without one a calibration worklist: the trial's
        calibration patients, all visits, in a seeded random order (campaign 0)."""
        made: dict[str, int] = {}
        tx = op.tx
        t = find_trial(tx.session, trial)
        refuse_if_locked(t)
        proto = protocol_of(t)
        if not proto.calibration_patients:
            raise InvalidInput(
                f"trial {trial} has no calibration set (setting calibration_patients)"
            )
        camp = special_campaign(tx, t, 0, "calibration", proto)
        by_code = {p.code: p for p in repo.patients_of(tx.session, t)}
        missing = [c for c in proto.calibration_patients if c not in by_code]
        if missing:
            raise InvalidInput(f"calibration patients not in {trial}: {', '.join(missing)}")
        labels = json.loads(camp.visits)
        taken = set(repo.all_case_codes(tx.session))
        for _a, u in repo.assignments_of(tx.session, t):
            if u.role != "reader" or repo.worklist(tx.session, camp, u.id) is not None:
                continue
            inputs = {
                "reader": u.username,
                "design": proto.design,
                "patients": list(proto.calibration_patients),
                "visits": {code: labels for code in proto.calibration_patients},
                "reread_share": 0.0,
                "min_gap": 0,
                "algorithm": RANDOM_ALGORITHM,
                "campaign": 0,
                "read_type": "calibration",
            }
            made[u.username] = store_worklist(tx, t, camp, u, inputs, by_code, taken)
        return CalibrationWorklists(made)

    @operation("reader", "adjudicator")
    def calibration_feedback(self, op: Op, case_code: str) -> CalibrationFeedback:
        """After a calibration case is signed: each visit's areas, the reader's entry beside
        the reference's (training mode). Only for calibration cases, only once signed."""
        from scorer.reports.calibration import feedback

        db = op.db
        c, _, t = own_case(op.user, db, case_code)
        if c.read_type != "calibration":
            raise NotFound("no feedback for this case")
        reads = case_reads(db, c, t)
        if not reads or any(r.status != "signed" for _, r in reads):
            raise InvalidInput("feedback comes once the case is signed")
        reference = self._reference_reads(db, t)
        visits: dict[str, tuple[AreaComparison, ...] | None] = {}
        for letter, r in reads:
            ref = reference.get((r.patient_id, r.visit_id, r.method))
            mine = repo.to_core_read(db, r, real_ids=False)
            if ref is None:
                visits[letter] = None
                continue
            rows = feedback(mine, ref, get_method(r.method))
            visits[letter] = tuple(
                AreaComparison(str(f.area), f.yours, f.reference, f.difference, f.verdict)
                for f in rows
            )
        return CalibrationFeedback(c.code, visits)

    def _reference_reads(self, db: Any, t: Any) -> dict[tuple[int, int, str], CoreRead]:
        """(patient id, visit id, method) -> the reference reader's signed read."""
        proto = protocol_of(t)
        ref_user = repo.user_by_name(db, proto.calibration_reference)
        if ref_user is None:
            return {}
        out: dict[tuple[int, int, str], CoreRead] = {}
        for r in repo.reads_of_trial(db, t):
            if r.reader_id == ref_user.id and r.status == "signed":
                out[(r.patient_id, r.visit_id, r.method)] = repo.to_core_read(db, r, real_ids=False)
        return out

    @operation("coordinator", "monitor")
    def calibration_report(self, op: Op, trial: str) -> CalibrationReport:
        """Each reader's calibration against the reference: cases signed, status ICC(A,1),
        % exact and within one grade per feature, and whether they are released."""
        from scorer.reports.calibration import agreement

        db = op.db
        t = find_trial(db, trial)
        proto = protocol_of(t)
        camp = repo.campaign(db, t, 0)
        reference = self._reference_reads(db, t)
        readers = []
        for w in repo.worklists_of(db, camp) if camp is not None else []:
            u = repo.user_by_id(db, w.reader_id)
            cases = repo.cases_of(db, w)
            pairs = []
            method = proto.methods[0]
            for c in cases:
                for _, r in case_reads(db, c, t):
                    ref = reference.get((r.patient_id, r.visit_id, r.method))
                    if r.status == "signed" and ref is not None and r.method == method:
                        pairs.append((repo.to_core_read(db, r, real_ids=False), ref))
            rel = repo.release_of(db, t, u.id)
            readers.append(
                reader_calibration(
                    u.username,
                    len(cases),
                    sum(case_status(db, c) == "signed" for c in cases),
                    rel.released_at if rel else None,
                    agreement(pairs, get_method(method), rules_of(proto)),
                )
            )
        return CalibrationReport(
            trial=trial,
            calibration_patients=tuple(proto.calibration_patients),
            reference=proto.calibration_reference,
            reference_reads=len(reference),
            readers=tuple(readers),
        )

    @operation("coordinator", write=True)
    def release_reader(self, op: Op, trial: str, reader: str, reason: str) -> None:
        """Release a reader from calibration to the trial's cases (audited, with a reason);
        every calibration case of theirs must be signed."""
        need_reason(reason)
        tx = op.tx
        t = find_trial(tx.session, trial)
        refuse_if_locked(t)
        u = repo.user_by_name(tx.session, reader)
        if u is None or u.role != "reader":
            raise NotFound(f"no reader {reader!r}")
        if is_released(tx.session, t, u.id):
            raise InvalidInput(f"{reader} is released already")
        camp = repo.campaign(tx.session, t, 0)
        w = repo.worklist(tx.session, camp, u.id) if camp is not None else None
        if w is None:
            raise InvalidInput(f"{reader} has no calibration worklist")
        left = [c for c in repo.cases_of(tx.session, w) if case_status(tx.session, c) != "signed"]
        if left:
            raise InvalidInput(f"{reader} has {len(left)} calibration case(s) not signed")
        tx.session.add(
            Release(
                trial_id=t.id,
                user_id=u.id,
                released_by=op.user.user_id,
                released_at=tx.now,
                reason=reason.strip(),
            )
        )
        tx.audit("reader.release", "user", reader, trial_id=t.id, reason=reason)
