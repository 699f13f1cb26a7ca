"""Worklists: readers assigned to patients, campaigns, and the seeded, blinded worklists made from
them."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from scorer.core.protocol import (
    Protocol,
    VisitDef,
)
from scorer.core.randomness import ALGORITHM as RANDOM_ALGORITHM
from scorer.core.worklist import WorklistInput
from scorer.core.worklist import generate as generate_worklist
from scorer.services.errors import InvalidInput, NotFound, PermissionDenied
from scorer.services.lookups import case_status, find_trial, protocol_of, refuse_if_locked
from scorer.services.operation import Op, Service, operation
from scorer.services.session import with_article
from scorer.services.validation import check_code, check_name
from scorer.store import repository as repo
from scorer.store.database import Tx
from scorer.store.schema import (
    Assignment,
    AssignmentPatient,
    Campaign,
    Case,
    Patient,
    Worklist,
)


@dataclass(frozen=True)
class ReadingTrial:
    """A trial in which the calling reader has a worklist: its code, name, cases and cases
    signed."""

    code: str
    name: str
    cases: int
    signed: int


@dataclass(frozen=True)
class MyRead:
    """One of the calling reader's reads: its code, status and method only."""

    code: str
    status: str
    method: str


@dataclass(frozen=True)
class WorklistRow:
    """One case of a worklist as its viewer may see it: code, "n of N" and status for
    everyone; reader and campaign (None for readers and adjudicators); position, patient
    code, visit order, read type and original position for coordinators only (position None
    for the others)."""

    code: str
    progress: str
    status: str
    reader: str | None = None
    campaign: int | None = None
    position: int | None = None
    patient: str | None = None
    visits: tuple[str, ...] = ()
    read_type: str | None = None
    original_position: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The row as ``scorer worklist show`` prints it: only the keys its viewer may see."""
        row: dict[str, Any] = {"code": self.code, "progress": self.progress, "status": self.status}
        if self.reader is not None:
            row.update(reader=self.reader, campaign=self.campaign)
        if self.position is not None:
            row.update(
                position=self.position,
                patient=self.patient,
                visits=list(self.visits),
                read_type=self.read_type,
                original_position=self.original_position,
            )
        return row


class WorklistsService(Service):
    """Assignments, campaigns and worklists, and their verification from the stored seeds."""

    @operation("reader", "adjudicator")
    def reading_trials(self, op: Op) -> list[ReadingTrial]:
        """The trials in which the calling reader has a worklist: code, name, cases and cases
        signed (what the workstation offers after log-in)."""
        db = op.db
        out: list[ReadingTrial] = []
        for t in repo.all_trials(db):
            cases = [
                c
                for camp in repo.campaigns_of(db, t)
                for w in repo.worklists_of(db, camp)
                if w.reader_id == op.user.user_id
                for c in repo.cases_of(db, w)
            ]
            if cases:
                signed = sum(case_status(db, c) == "signed" for c in cases)
                out.append(ReadingTrial(t.code, t.name, len(cases), signed))
        return out

    @operation("reader", "adjudicator")
    def my_reads(self, op: Op, trial: str) -> list[MyRead]:
        """The calling reader's reads in a trial: read code, status and method only."""
        t = find_trial(op.db, trial)
        return [
            MyRead(r.code, r.status, r.method)
            for r, _ in repo.reads_of_reader(op.db, t, op.user.user_id)
        ]

    @operation("coordinator", write=True)
    def assign_reader(
        self, op: Op, trial: str, username: str, patient_codes: Sequence[str] | None = None
    ) -> None:
        """Assign a reader to a trial: all patients (default) or the listed patient codes."""
        db = op.db
        t = find_trial(db, trial)
        refuse_if_locked(t)
        u = repo.user_by_name(db, username)
        if u is None or u.role not in ("reader", "adjudicator"):
            raise InvalidInput(f"{username!r} is not a reader or adjudicator")
        patients: list[Any] = []
        for code in patient_codes or ():
            p = repo.patient_by_code(db, t, code)
            if p is None:
                raise NotFound(f"no patient {code!r} in trial {trial}")
            patients.append(p)
        a = repo.assignment(db, t, u.id)
        old = None
        if a is None:
            a = Assignment(trial_id=t.id, user_id=u.id, scope="all", created_at=op.now)
            db.add(a)
            db.flush()
        else:
            old = {
                "scope": a.scope,
                "patients": [p.code for p in repo.assigned_patients(db, t, a)]
                if a.scope == "subset"
                else None,
            }
            repo.clear_assignment_patients(db, a)
        a.scope = "subset" if patient_codes else "all"
        for p in patients:
            db.add(AssignmentPatient(assignment_id=a.id, patient_id=p.id))
        op.tx.audit(
            "trial.assign",
            "trial",
            trial,
            trial_id=t.id,
            old=old,
            new={
                "reader": username,
                "scope": a.scope,
                "patients": sorted(p.code for p in patients) or None,
            },
        )

    @operation("coordinator", write=True)
    def add_campaign(
        self, op: Op, trial: str, name: str, new_visits: Sequence[tuple[str, float | None]]
    ) -> int:
        """Open a new reading campaign for visits added later (an extension year): its cases
        read the new visits together with the earlier ones. Returns the campaign number."""
        check_name(name, "campaign name")
        if not new_visits:
            raise InvalidInput("a new campaign needs at least one new visit")
        db = op.db
        t = find_trial(db, trial)
        refuse_if_locked(t)
        campaigns = repo.campaigns_of(db, t)
        if not campaigns:
            raise InvalidInput("generate the first worklists before adding a campaign")
        proto = protocol_of(t)
        added = []
        for label, week in new_visits:
            check_code(label, "visit label")
            if repo.visit_by_label(db, t, label) is not None:
                raise InvalidInput(f"trial {trial} has a visit {label} already")
            repo.add_visit(db, t, label, week)
            added.append(VisitDef(label, week))
            op.tx.audit(
                "visit.add",
                "visit",
                label,
                trial_id=t.id,
                new={"label": label, "nominal_week": week},
                reason=f"campaign {name}",
            )
        proto = replace(proto, visits=(*proto.visits, *added))
        t.config = proto.to_json()
        number = campaigns[-1].number + 1
        labels = [v.label for v in proto.visits]
        new_campaign(op.tx, t, number, name, labels)
        return number

    @operation("coordinator", write=True)
    def generate_worklists(
        self,
        op: Op,
        trial: str,
        readers: Sequence[str] | None = None,
        campaign: int | None = None,
    ) -> dict[str, int]:
        """Make the worklists of the assigned readers (default: all without one) from fresh
        random seeds, stored with their inputs so every order can be regenerated."""
        made: dict[str, int] = {}
        db = op.db
        t = find_trial(db, trial)
        refuse_if_locked(t)
        proto = protocol_of(t)
        camp = campaign_for(op.tx, t, campaign, proto)
        labels = json.loads(camp.visits)
        visit_ids = {v.label: v.id for v in t.visits}
        with_images = repo.visits_with_images(db, t)
        assigned = repo.assignments_of(db, t)
        if readers is not None:
            names = set(readers)
            unknown = names - {u.username for _, u in assigned}
            if unknown:
                raise InvalidInput(f"not assigned to {trial}: {', '.join(sorted(unknown))}")
            assigned = [(a, u) for a, u in assigned if u.username in names]
        if not assigned:
            raise InvalidInput(f"no readers are assigned to {trial}")
        taken = set(repo.all_case_codes(db))
        for a, u in assigned:
            if u.role != "reader":
                continue
            if repo.worklist(db, camp, u.id) is not None:
                if readers is None:
                    continue
                raise InvalidInput(
                    f"{u.username} has a worklist in campaign {camp.number}; its seed is kept"
                )
            patients = repo.assigned_patients(db, t, a)
            visits: dict[str, list[str]] = {}
            for p in patients:
                if p.code in proto.calibration_patients:
                    continue  # the training set is read in calibration only
                have = with_images.get(p.id)
                vs = [lbl for lbl in labels if have is None or visit_ids[lbl] in have]
                if vs:
                    visits[p.code] = vs
            inputs = {
                "reader": u.username,
                "design": proto.design,
                "patients": sorted(visits),
                "visits": visits,
                "reread_share": proto.reread_share,
                "min_gap": proto.reread_min_gap,
                "algorithm": RANDOM_ALGORITHM,
                "campaign": camp.number,
            }
            by_code = {p.code: p for p in patients}
            made[u.username] = store_worklist(op.tx, t, camp, u, inputs, by_code, taken)
        return made

    @operation("reader", "adjudicator", "coordinator", "monitor", "admin")
    def worklist(
        self, op: Op, trial: str, reader: str | None = None, campaign: int | None = None
    ) -> list[WorklistRow]:
        """A worklist as its viewer may see it.

        A reader sees their own cases only: opaque code, "n of N" and status. A monitor sees
        case codes and status. A coordinator also sees patient, visit order and read type.
        """
        s, db = op.user, op.db
        if s.role in ("reader", "adjudicator"):
            if reader not in (None, s.username):
                raise PermissionDenied(f"{with_article(s.role)} sees only their own worklist")
            reader = s.username
        t = find_trial(db, trial)
        camps = repo.campaigns_of(db, t)
        if campaign is not None:
            camps = [c for c in camps if c.number == campaign]
        out: list[WorklistRow] = []
        for camp in camps:
            for w in repo.worklists_of(db, camp):
                u = repo.user_by_id(db, w.reader_id)
                if reader is not None and u.username != reader:
                    continue
                cases = repo.cases_of(db, w)
                for c in cases:
                    row = WorklistRow(
                        c.code, f"{c.position + 1} of {len(cases)}", case_status(db, c)
                    )
                    if s.role not in ("reader", "adjudicator"):
                        row = replace(row, reader=u.username, campaign=camp.number)
                    if s.role == "coordinator":
                        p = db.get(Patient, c.patient_id)
                        row = replace(
                            row,
                            position=c.position,
                            patient=p.code if p else None,
                            visits=tuple(json.loads(c.visits)),
                            read_type=c.read_type,
                            original_position=c.original_position,
                        )
                    out.append(row)
        return out

    @operation("coordinator", "monitor", "admin")
    def verify_worklists(self, op: Op, trial: str) -> list[str]:
        """Regenerate every worklist from its stored seed and inputs; list any difference."""
        db = op.db
        problems: list[str] = []
        t = find_trial(db, trial)
        for camp in repo.campaigns_of(db, t):
            if camp.number < 0:
                continue  # adjudication cases come batch by batch (seeds in the audit trail)
            for w in repo.worklists_of(db, camp):
                inputs = json.loads(w.inputs)
                again = generated_worklists(w.seed, inputs)
                stored = repo.cases_of(db, w)
                codes = {p.id: p.code for p in repo.patients_of(db, t)}
                got = [
                    (
                        c.position,
                        c.code,
                        codes[c.patient_id],
                        tuple(json.loads(c.visits)),
                        c.read_type,
                        c.original_position,
                    )
                    for c in stored
                ]
                want = [
                    (c.position, c.code, c.patient, c.visits, c.read_type, c.original)
                    for c in again
                ]
                if got != want:
                    first = next(
                        (i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b),
                        min(len(got), len(want)),
                    )
                    problems.append(
                        f"campaign {camp.number}, reader {inputs['reader']}: "
                        f"differs from its seed at position {first + 1}"
                    )
        return problems


def worklist_input(seed: str, inputs: dict[str, Any]) -> WorklistInput:
    return WorklistInput(
        seed=seed,
        reader=inputs["reader"],
        design=inputs["design"],
        patients=inputs["patients"],
        visits=inputs["visits"],
        reread_share=inputs["reread_share"],
        min_gap=inputs["min_gap"],
        algorithm=inputs["algorithm"],
    )


def campaign_for(tx: Tx, t: Any, number: int | None, proto: Protocol) -> Any:
    camps = repo.campaigns_of(tx.session, t)
    if not [c for c in camps if c.number >= 1]:
        if number not in (None, 1):
            raise NotFound(f"trial {t.code} has no campaign {number}")
        labels = [v.label for v in proto.visits] or [v.label for v in t.visits]
        if not labels:
            raise InvalidInput(f"trial {t.code} has no visits")
        return new_campaign(tx, t, 1, "main", labels)
    # Campaigns 0 (calibration) and -1 (adjudication) are never the default.
    reading = [c for c in camps if c.number >= 1]
    if number is None and reading:
        return reading[-1]
    for c in camps:
        if c.number == number:
            return c
    raise NotFound(f"trial {t.code} has no campaign {number}")


def special_campaign(tx: Tx, t: Any, number: int, name: str, proto: Protocol) -> Any:
    """Campaign 0 (calibration) or -1 (adjudication): made on first use, all visits."""
    camp = repo.campaign(tx.session, t, number)
    if camp is not None:
        return camp
    labels = [v.label for v in proto.visits] or [v.label for v in t.visits]
    return new_campaign(tx, t, number, name, labels)


def new_campaign(tx: Tx, t: Any, number: int, name: str, labels: Sequence[str]) -> Any:
    """Add a campaign of visits ``labels`` to trial ``t`` (audited)."""
    camp = Campaign(
        trial_id=t.id,
        number=number,
        name=name,
        visits=json.dumps(list(labels)),
        created_at=tx.now,
    )
    tx.session.add(camp)
    tx.session.flush()
    tx.audit(
        "campaign.add",
        "trial",
        t.code,
        trial_id=t.id,
        new={"campaign": number, "name": name, "visits": list(labels)},
    )
    return camp


def store_worklist(
    tx: Tx,
    t: Any,
    camp: Any,
    u: Any,
    inputs: dict[str, Any],
    by_code: Mapping[str, Any],
    taken: set[str],
) -> int:
    """Generate a worklist from a fresh seed and store it with its cases; returns the
    number of cases."""
    while True:
        seed = secrets.token_hex(16)
        cases = generated_worklists(seed, inputs)
        if not any(c.code in taken for c in cases):
            break
    taken |= {c.code for c in cases}
    w = Worklist(
        campaign_id=camp.id,
        reader_id=u.id,
        seed=seed,
        inputs=json.dumps(inputs, sort_keys=True),
        generated_at=tx.now,
    )
    tx.session.add(w)
    tx.session.flush()
    for c in cases:
        tx.session.add(
            Case(
                worklist_id=w.id,
                position=c.position,
                code=c.code,
                patient_id=by_code[c.patient].id,
                read_type=c.read_type,
                original_position=c.original,
                visits=json.dumps(list(c.visits)),
            )
        )
    digest = hashlib.sha256(
        json.dumps([[c.code, c.patient, list(c.visits), c.read_type] for c in cases]).encode()
    ).hexdigest()
    tx.audit(
        "worklist.generate",
        "worklist",
        f"{t.code}/{camp.number}/{u.username}",
        trial_id=t.id,
        new={
            "seed": seed,
            "inputs": inputs,
            "cases": len(cases),
            "rereads": sum(c.read_type == "reread" for c in cases),
            "sha256": digest,
        },
    )
    return len(cases)


def generated_worklists(seed: str, inputs: Mapping[str, Any]) -> list[Any]:
    """The cases a stored worklist's seed and inputs make (with its read type)."""
    cases = generate_worklist(worklist_input(seed, dict(inputs)))
    kind = inputs.get("read_type")
    if kind:
        cases = [replace(c, read_type=kind) for c in cases]
    return cases
