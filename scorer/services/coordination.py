"""Coordination: the reading's progress and the readers' flags, as the coordinator's desk shows
them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from scorer.core.json_value import JsonValue
from scorer.core.worklist import LETTERS
from scorer.services.errors import InvalidInput, NotFound
from scorer.services.joint_positions import case_film_images
from scorer.services.lookups import case_state, find_trial, own_case, refuse_if_locked
from scorer.services.operation import Op, Service, operation
from scorer.services.validation import check_text
from scorer.store import repository as repo
from scorer.store.schema import Case, Patient, ReaderFlag, Visit


@dataclass(frozen=True)
class Flag:
    """A reader's flag on a case: the message, when it was raised, the visit letter the
    reader's focus was on ("" for the whole case), and the coordinator's answer ("" until
    answered; answering closes it).

    For the coordinator only (None or empty for a reader): the patient's code, the true visit
    the letter stands for and its date (the images' acquisition date), and the codes of the
    images the reader had on screen."""

    flag: int
    case: str
    reader: str
    message: str
    raised_at: str
    answer: str
    closed: bool
    letter: str = ""
    answered_at: str | None = None
    patient: str | None = None
    visit: str | None = None
    visit_date: str | None = None
    images: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["images"] = list(self.images)
        return out


@dataclass(frozen=True)
class FlagCount:
    """One reader's flags in a trial: open and answered."""

    reader: str
    open: int
    answered: int


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
        """Reader flags of a trial: a coordinator sees all, with patient, true visit, its
        date and the images on screen; a reader their own, as they raised them."""
        s = op.user
        t = find_trial(op.db, trial)
        identified = s.role == "coordinator"
        out = []
        for f, case_code, reader in repo.flags_of(op.db, t):
            if not identified and reader != s.username:
                continue
            if open_only and f.closed_at:
                continue
            out.append(flag_view(op.db, t, f, case_code, reader, identified))
        return out

    @operation("reader", "adjudicator")
    def case_flags(self, op: Op, case_code: str) -> list[Flag]:
        """The caller's own flags on one of their cases, answered or not, oldest first: what
        the reading window shows on that case."""
        c, _, t = own_case(op.user, op.db, case_code)
        return [
            flag_view(op.db, t, f, code, reader, identified=False)
            for f, code, reader in repo.flags_of(op.db, t)
            if f.case_id == c.id and f.raised_by == op.user.user_id
        ]

    @operation("coordinator")
    def flag_counts(self, op: Op, trial: str) -> list[FlagCount]:
        """Open and answered flags per reader who raised any, by name."""
        t = find_trial(op.db, trial)
        counts: dict[str, list[int]] = {}
        for f, _code, reader in repo.flags_of(op.db, t):
            counts.setdefault(reader, [0, 0])[1 if f.closed_at else 0] += 1
        return [FlagCount(r, n[0], n[1]) for r, n in sorted(counts.items())]

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


def flag_view(db: Any, t: Any, f: Any, case_code: str, reader: str, identified: bool) -> Flag:
    """A stored flag as its viewer may see it: the letter for everyone; the patient, true
    visit, date and images only when ``identified`` (the coordinator)."""
    c = db.get(Case, f.case_id)
    labels: list[str] = json.loads(c.visits) if c is not None else []
    v = db.get(Visit, f.visit_id) if f.visit_id is not None else None
    letter = LETTERS[labels.index(v.label)] if v is not None and v.label in labels else ""
    patient = visit = date = None
    images: tuple[str, ...] = ()
    if identified:
        p = db.get(Patient, c.patient_id) if c is not None else None
        patient = p.code if p is not None else None
        images = tuple(json.loads(f.images)) if f.images else ()
        if v is not None and p is not None:
            visit = v.label
            shown = [repo.image_by_code(db, code) for code in images]
            dates = sorted(
                i.acquisition_date
                for i in [*shown, *repo.images_of_visit(db, p.id, v.id)]
                if i is not None and i.visit_id == v.id and i.acquisition_date
            )
            date = dates[0] if dates else None
    return Flag(
        flag=f.id,
        case=case_code,
        reader=reader,
        message=f.message,
        raised_at=f.raised_at,
        answer=f.answer,
        closed=bool(f.closed_at),
        letter=letter,
        answered_at=f.closed_at,
        patient=patient,
        visit=visit,
        visit_date=date,
        images=images,
    )


def raise_case_flag(
    op: Op, key: bytes, case_code: str, message: str, visit: str | None, films: Sequence[str]
) -> int:
    """``reading.raise_flag`` in the caller's write transaction: the flag stored with the
    visit the letter stands for and the codes of the images the films show."""
    if not message.strip():
        raise InvalidInput("write what the coordinator should look at")
    check_text(message, "flag")
    tx = op.tx
    c, _, t = own_case(op.user, tx.session, case_code)
    refuse_if_locked(t)
    labels = json.loads(c.visits)
    visit_id = None
    if visit is not None:
        letters = list(LETTERS[: len(labels)])  # a list: "BC" or "" is no letter
        if visit not in letters:
            raise InvalidInput(
                f"this case has visits {', '.join(letters)}, not {visit[:20]!r}"
            )
        v = repo.visit_by_label(tx.session, t, labels[letters.index(visit)])
        visit_id = v.id if v is not None else None
    images = case_film_images(key, tx.session, t, c, films)
    flag = ReaderFlag(
        case_id=c.id,
        raised_by=op.user.user_id,
        message=message.strip(),
        raised_at=tx.now,
        answer="",
        visit_id=visit_id,
        images=json.dumps(images),
    )
    tx.session.add(flag)
    tx.session.flush()
    shown: dict[str, JsonValue] = {"flag": flag.id, "message": flag.message}
    if visit is not None:
        shown["letter"] = visit
    if films:
        shown["films"] = list(films)
    tx.audit("flag.raise", "case", c.code, trial_id=t.id, new=shown)
    return int(flag.id)

