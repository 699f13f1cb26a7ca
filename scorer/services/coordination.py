"""Coordination: the reading's progress and the readers' flags, as the coordinator's desk shows
them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from scorer.services.errors import InvalidInput, NotFound
from scorer.services.lookups import case_state, find_trial, refuse_if_locked
from scorer.services.operation import Op, Service, operation
from scorer.services.validation import check_text
from scorer.store import repository as repo
from scorer.store.schema import (
    ReaderFlag,
)


@dataclass(frozen=True)
class Flag:
    """A reader's flag on a case: the message, when it was raised, and the coordinator's answer
    ("" until answered; answering closes it)."""

    flag: int
    case: str
    reader: str
    message: str
    raised_at: str
    answer: str
    closed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CaseProgress:
    """One case of a reader's worklist: its campaign, read type, status ("not started", "in
    progress" or "signed"), the seconds spent on it, and its patient's code (None for a
    monitor, who sees no patient codes, or a case without a patient)."""

    reader: str
    case: str
    campaign: int
    read_type: str
    status: str
    seconds: float
    patient: str | None = None


@dataclass(frozen=True)
class ReaderProgress:
    """One reader's cases: counted by status and by kind (re-reads, calibration and
    adjudication), the seconds spent in all and the median per timed case."""

    reader: str
    cases: int
    signed: int
    in_progress: int
    not_started: int
    rereads: int
    rereads_signed: int
    calibration: int
    calibration_signed: int
    adjudication: int
    seconds: float
    median_seconds_per_case: float | None

    def to_dict(self) -> dict[str, Any]:
        """The fields, the two statuses keyed as they read ("in progress", "not started")."""
        out = asdict(self)
        return {
            {"in_progress": "in progress", "not_started": "not started"}.get(k, k): v
            for k, v in out.items()
        }


@dataclass(frozen=True)
class PatientProgress:
    """A patient's primary reading: code, real identifier and each reader's status."""

    patient: str
    real_id: str
    readers: Mapping[str, str]


@dataclass(frozen=True)
class Progress:
    """A trial's reading progress: per reader (by name), per case (in worklist order) and, for
    the coordinator only, per patient (``patients`` is None for a monitor)."""

    trial: str
    readers: tuple[ReaderProgress, ...]
    cases: tuple[CaseProgress, ...]
    patients: tuple[PatientProgress, ...] | None

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``scorer progress``: a monitor's cases carry no ``patient`` key and
        there is no ``patients`` list."""
        identified = self.patients is not None
        cases = []
        for c in self.cases:
            row = asdict(c)
            if not identified:
                del row["patient"]
            cases.append(row)
        out: dict[str, Any] = {
            "trial": self.trial,
            "readers": [r.to_dict() for r in self.readers],
            "cases": cases,
        }
        if self.patients is not None:
            out["patients"] = [
                {"patient": p.patient, "real_id": p.real_id, "readers": dict(p.readers)}
                for p in self.patients
            ]
        return out


class CoordinationService(Service):
    """Progress per reader, patient and case; reader flags and their answers."""

    @operation("reader", "adjudicator", "coordinator")
    def flags(self, op: Op, trial: str, open_only: bool = True) -> list[Flag]:
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
                Flag(
                    flag=f.id,
                    case=case_code,
                    reader=reader,
                    message=f.message,
                    raised_at=f.raised_at,
                    answer=f.answer,
                    closed=bool(f.closed_at),
                )
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
    def progress(self, op: Op, trial: str) -> Progress:
        """The reading's progress: per reader, per case and (for the coordinator) per patient.

        A case is "in progress" from its first opening until every visit is signed; time per
        case adds up the seconds the reading window logged on leaving it (event log)."""
        db = op.db
        identified = op.user.role == "coordinator"
        t = find_trial(db, trial)
        # Three queries, whatever the size of the event log: what the page shows.
        seconds = repo.case_seconds(db, t)
        statuses = repo.case_read_statuses(db, t)
        cases: list[CaseProgress] = []
        patients: dict[str, dict[str, str]] = {}
        real_ids: dict[str, str] = {}
        for c, campaign, username, p in repo.progress_cases(db, t):
            status = case_state(statuses.get(c.id, []), c.visits)
            code = p.code if p is not None and identified else None
            seconds_here = round(seconds.get(c.code, 0.0), 1)
            cases.append(
                CaseProgress(username, c.code, campaign, c.read_type, status, seconds_here, code)
            )
            if identified and c.read_type == "primary" and p is not None:
                patients.setdefault(p.code, {})[username] = status
                real_ids[p.code] = p.real_id
        names = sorted({c.reader for c in cases})
        return Progress(
            trial=trial,
            readers=tuple(reader_progress(n, [c for c in cases if c.reader == n]) for n in names),
            cases=tuple(cases),
            patients=tuple(
                PatientProgress(code, real_ids[code], patients[code]) for code in sorted(patients)
            )
            if identified
            else None,
        )


def reader_progress(reader: str, cases: Sequence[CaseProgress]) -> ReaderProgress:
    """One reader's counts, time in all and median time per timed case over their cases."""

    def count(read_type: str | None = None, status: str | None = None) -> int:
        return sum(
            (read_type is None or c.read_type == read_type)
            and (status is None or c.status == status)
            for c in cases
        )

    seconds = 0.0
    for c in cases:
        seconds = round(seconds + c.seconds, 1)  # rounded as it adds up, as it always was
    timed = sorted(c.seconds for c in cases if c.seconds > 0)
    return ReaderProgress(
        reader=reader,
        cases=len(cases),
        signed=count(status="signed"),
        in_progress=count(status="in progress"),
        not_started=count(status="not started"),
        rereads=count("reread"),
        rereads_signed=count("reread", "signed"),
        calibration=count("calibration"),
        calibration_signed=count("calibration", "signed"),
        adjudication=count("adjudication"),
        seconds=seconds,
        median_seconds_per_case=round(float(timed[len(timed) // 2]), 1) if timed else None,
    )
