"""Calibration: reading the calibration patients, feedback against the reference, release to the
trial."""

from __future__ import annotations

import json
from typing import Any

from scorer.core.methods import get_method
from scorer.core.randomness import ALGORITHM as RANDOM_ALGORITHM
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
from scorer.services.reading import score_json
from scorer.services.validation import need_reason
from scorer.services.worklists import special_campaign, store_worklist
from scorer.store import repository as repo
from scorer.store.schema import (
    Release,
)


class CalibrationService(Service):
    """Calibration worklists, each reader's agreement with the reference reads, and releasing a
    reader."""

    @operation("coordinator", write=True)
    def calibration_worklists(self, op: Op, trial: str) -> dict[str, int]:
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
        return made

    @operation("reader", "adjudicator")
    def calibration_feedback(self, op: Op, case_code: str) -> dict[str, Any]:
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
        out: dict[str, Any] = {"case": c.code, "visits": {}}
        for letter, r in reads:
            ref = reference.get((r.patient_id, r.visit_id, r.method))
            mine = repo.to_core_read(db, r, real_ids=False)
            if ref is None:
                out["visits"][letter] = None
                continue
            rows = feedback(mine, ref, get_method(r.method))
            out["visits"][letter] = [
                {
                    "area": str(f.area),
                    "yours": score_json(f.yours),
                    "reference": score_json(f.reference),
                    "difference": f.difference,
                    "verdict": f.verdict,
                }
                for f in rows
            ]
        return out

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
    def calibration_report(self, op: Op, trial: str) -> dict[str, Any]:
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
                {
                    "reader": u.username,
                    "cases": len(cases),
                    "signed": sum(case_status(db, c) == "signed" for c in cases),
                    "released": rel is not None,
                    "released_at": rel.released_at if rel else None,
                    **agreement(pairs, get_method(method), rules_of(proto)),
                }
            )
        return {
            "trial": trial,
            "calibration_patients": list(proto.calibration_patients),
            "reference": proto.calibration_reference,
            "reference_reads": len(reference),
            "readers": readers,
        }

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
