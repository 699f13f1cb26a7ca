"""Coordination: the reading's progress and the readers' flags, as the coordinator's desk shows
them."""

from __future__ import annotations

from typing import Any

from scorer.services.errors import InvalidInput, NotFound
from scorer.services.lookups import case_state, find_trial, refuse_if_locked
from scorer.services.operation import Op, Service, operation
from scorer.services.validation import check_text
from scorer.store import repository as repo
from scorer.store.schema import (
    ReaderFlag,
)


class CoordinationService(Service):
    """Progress per reader, patient and case; reader flags and their answers."""

    @operation("reader", "adjudicator", "coordinator")
    def flags(self, op: Op, trial: str, open_only: bool = True) -> list[dict[str, Any]]:
        """Reader flags of a trial: a coordinator sees all, a reader their own."""
        s = op.user
        t = find_trial(op.db, trial)
        out = []
        for f, case_code, reader in repo.flags_of(op.db, t):
            if s.role != "coordinator" and reader != s.username:
                continue
            if open_only and f.closed_at:
                continue
            out.append(
                {
                    "flag": f.id,
                    "case": case_code,
                    "reader": reader,
                    "message": f.message,
                    "raised_at": f.raised_at,
                    "answer": f.answer,
                    "closed": bool(f.closed_at),
                }
            )
        return out

    @operation("coordinator", write=True)
    def answer_flag(self, op: Op, trial: str, flag_id: int, answer: str) -> None:
        """The coordinator answers a reader's flag and closes it (audited)."""
        if not answer.strip():
            raise InvalidInput("an answer is required to close a flag")
        check_text(answer, "answer")
        tx = op.tx
        t = find_trial(tx.session, trial)
        refuse_if_locked(t)
        f = tx.session.get(ReaderFlag, flag_id)
        if f is None or all(x.id != flag_id for x, _, _ in repo.flags_of(tx.session, t)):
            raise NotFound(f"no flag {flag_id} in trial {trial}")
        if f.closed_at:
            raise InvalidInput(f"flag {flag_id} is closed already")
        f.answer = answer.strip()
        f.answered_by = op.user.user_id
        f.closed_at = tx.now
        tx.audit("flag.answer", "flag", str(flag_id), trial_id=t.id, new={"answer": f.answer})

    @operation("coordinator", "monitor")
    def progress(self, op: Op, trial: str) -> dict[str, Any]:
        """The reading's progress: per reader, per case and (for the coordinator) per patient.

        A case is "in progress" from its first opening until every visit is signed; time per
        case adds up the seconds the reading window logged on leaving it (event log)."""
        s, db = op.user, op.db
        t = find_trial(db, trial)
        # Three queries, whatever the size of the event log: what the page shows.
        seconds = repo.case_seconds(db, t)
        statuses = repo.case_read_statuses(db, t)
        cases: list[dict[str, Any]] = []
        patients: dict[str, dict[str, str]] = {}
        real_ids: dict[str, str] = {}
        for c, campaign, username, p in repo.progress_cases(db, t):
            status = case_state(statuses.get(c.id, []), c.visits)
            row: dict[str, Any] = {
                "reader": username,
                "case": c.code,
                "campaign": campaign,
                "read_type": c.read_type,
                "status": status,
                "seconds": round(seconds.get(c.code, 0.0), 1),
            }
            if s.role == "coordinator":
                row["patient"] = p.code if p else None
                if c.read_type == "primary" and p is not None:
                    patients.setdefault(p.code, {})[username] = status
                    real_ids[p.code] = p.real_id
            cases.append(row)
        readers: dict[str, dict[str, Any]] = {}
        for row in cases:
            r = readers.setdefault(
                row["reader"],
                {
                    "reader": row["reader"],
                    "cases": 0,
                    "signed": 0,
                    "in progress": 0,
                    "not started": 0,
                    "rereads": 0,
                    "rereads_signed": 0,
                    "calibration": 0,
                    "calibration_signed": 0,
                    "adjudication": 0,
                    "seconds": 0.0,
                },
            )
            r["cases"] += 1
            r[row["status"]] += 1
            r["seconds"] = round(r["seconds"] + row["seconds"], 1)
            for kind, key in (
                ("reread", "rereads"),
                ("calibration", "calibration"),
                ("adjudication", "adjudication"),
            ):
                if row["read_type"] == kind:
                    r[key] += 1
                    if row["status"] == "signed" and f"{key}_signed" in r:
                        r[f"{key}_signed"] += 1
        for r in readers.values():
            timed = [c["seconds"] for c in cases if c["reader"] == r["reader"] and c["seconds"] > 0]
            r["median_seconds_per_case"] = (
                round(float(sorted(timed)[len(timed) // 2]), 1) if timed else None
            )
        out: dict[str, Any] = {
            "trial": trial,
            "readers": [readers[k] for k in sorted(readers)],
            "cases": cases,
        }
        if s.role == "coordinator":
            out["patients"] = [
                {"patient": code, "real_id": real_ids[code], "readers": patients[code]}
                for code in sorted(patients)
            ]
        return out
