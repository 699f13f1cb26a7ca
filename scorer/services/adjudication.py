"""Adjudication: the frozen SDC, the queue of discrepant patients, and the adjudicators' results."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from scorer.core.methods import builtin_methods, get_method
from scorer.core.protocol import (
    Protocol,
)
from scorer.core.reads import Read as CoreRead
from scorer.services.errors import AuthError, InvalidInput, NotFound
from scorer.services.lookups import find_trial, protocol_of, refuse_if_locked, rules_of
from scorer.services.operation import Context, Op, Service, operation
from scorer.services.session import new_code
from scorer.services.trials import TrialsService
from scorer.services.validation import need_reason
from scorer.services.worklists import special_campaign
from scorer.store import repository as repo
from scorer.store.schema import (
    Adjudication,
    Case,
    Patient,
    Worklist,
)


@dataclass(frozen=True)
class SdcPreview:
    """What Freeze SDC would freeze now: the value at its level (%), the patients read twice
    (n), the readers averaged (k) and who they are; or, in ``problem``, why it cannot be
    frozen (not computable yet, or frozen already at ``frozen``)."""

    trial: str
    value: float | None
    level: float | None
    n: int | None
    k: int | None
    readers: tuple[str, ...]
    frozen: float | None
    problem: str

    def content_hash(self) -> str:
        """The SHA-256 the freeze's signature signs: trial, value, level, n, k and readers."""
        what = {
            "trial": self.trial,
            "value": self.value,
            "level": self.level,
            "n": self.n,
            "k": self.k,
            "readers": list(self.readers),
        }
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``scorer adjudication freeze-sdc`` prints it before freezing)."""
        return {
            "trial": self.trial,
            "value": self.value,
            "level": self.level,
            "n": self.n,
            "k": self.k,
            "readers": list(self.readers),
            "frozen": self.frozen,
            "problem": self.problem,
        }


@dataclass(frozen=True)
class AdjudicationUpdate:
    """What one update did: patients checked (two or more readers' changes signed), patients
    newly queued as discrepant, and adjudications completed with their final scores."""

    checked: int
    queued: int
    done: int


@dataclass(frozen=True)
class AdjudicationRule:
    """The rule a patient was checked by, as recorded when it was queued."""

    final_rule: str
    limit: float
    progression_cutoff: float | None
    trigger: str


@dataclass(frozen=True)
class AdjudicationResult:
    """A completed adjudication: every candidate read's change, the reads the final rule
    chose, and the final change and status totals per visit."""

    changes: Mapping[str, float]
    final_change: float
    final_totals: Mapping[str, float | None]
    reads: tuple[str, ...]
    rule: str

    @classmethod
    def from_json(cls, text: str) -> AdjudicationResult:
        d = json.loads(text)
        return cls(d["changes"], d["final_change"], d["final_totals"], tuple(d["reads"]), d["rule"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes": dict(self.changes),
            "final_change": self.final_change,
            "final_totals": dict(self.final_totals),
            "reads": list(self.reads),
            "rule": self.rule,
        }


@dataclass(frozen=True)
class PatientAdjudication:
    """One discrepant patient: status, reasons, rule, times, adjudicator and result; for the
    coordinator also the patient's code and the readers' changes (both None for a monitor)."""

    status: str
    reasons: tuple[str, ...]
    rule: AdjudicationRule
    queued_at: str
    done_at: str | None
    adjudicator: str | None
    result: AdjudicationResult | None
    patient: str | None = None
    changes: Mapping[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``patient`` and ``changes`` only where they are shown."""
        out: dict[str, Any] = {
            "status": self.status,
            "reasons": list(self.reasons),
            "rule": asdict(self.rule),
            "queued_at": self.queued_at,
            "done_at": self.done_at,
            "adjudicator": self.adjudicator,
            "result": self.result.to_dict() if self.result else None,
        }
        if self.changes is not None:
            out["patient"] = self.patient
            out["changes"] = dict(self.changes)
        return out


@dataclass(frozen=True)
class Adjudications:
    """A trial's adjudication: its trigger and limit, the final rule, and every discrepant
    patient in the order queued."""

    trial: str
    trigger: str
    difference: float | None
    frozen_sdc: float | None
    final_rule: str
    patients: tuple[PatientAdjudication, ...]

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``scorer adjudication show``."""
        return {
            "trial": self.trial,
            "trigger": self.trigger,
            "difference": self.difference,
            "frozen_sdc": self.frozen_sdc,
            "final_rule": self.final_rule,
            "patients": [p.to_dict() for p in self.patients],
        }


class AdjudicationService(Service):
    """Freeze the SDC, queue discrepant patients, assign them, and report the results."""

    def __init__(self, ctx: Context, trials: TrialsService) -> None:
        super().__init__(ctx)
        self._trials = trials

    @operation("coordinator", transaction=False)
    def sdc_preview(self, op: Op, trial: str) -> SdcPreview:
        """What Freeze SDC would freeze now: the value, its level, n, k and readers (computed
        from the signed primary reads as the freeze computes it), or why it cannot be frozen."""
        with op.read() as db:
            return self._sdc_now(db, trial)

    def _sdc_now(self, db: Any, trial: str) -> SdcPreview:
        """:meth:`sdc_preview` in the caller's read transaction ``db``."""
        from scorer.reports.analysis import AnalysisError, AnalysisOptions, analyze

        t = find_trial(db, trial)
        proto = protocol_of(t)
        blank = SdcPreview(trial, None, proto.sdc_level, None, None, (), proto.frozen_sdc, "")
        if proto.frozen_sdc is not None:
            # Freezing again would change nothing (the same value) or move a value the
            # adjudication rule was meant to hold still: say so and how, instead.
            row = repo.last_setting_change(db, t.id, "frozen_sdc")
            since = f" since {row.at} (by {row.username})" if row is not None else ""
            return replace(
                blank,
                problem=f"the SDC of trial {trial} is frozen already at {proto.frozen_sdc:g}"
                f"{since}; to freeze it anew, first clear it: scorer trial set {trial} "
                "frozen_sdc none --reason ...",
            )
        reads = [repo.to_core_read(db, r, real_ids=False) for r in repo.reads_of_trial(db, t)]
        options = AnalysisOptions(
            method=proto.methods[0], sdc_level=proto.sdc_level, rules=rules_of(proto), kappa=False
        )
        try:
            result = analyze(reads, dict(builtin_methods()), options)
        except AnalysisError as exc:
            return replace(blank, problem=f"the SDC cannot be computed yet: {exc}")
        found = result.get("sdc") or {}
        if found.get("value") is None:
            why = result.get("sdc_note") or "No SDC: too few patients read twice"
            return replace(blank, problem=f"the SDC cannot be computed yet: {why}")
        return SdcPreview(
            trial=trial,
            value=round(float(found["value"]), 6),
            level=found["level"],
            n=int(found["n"]),
            k=int(found["k"]),
            readers=tuple(found["readers"]),
            frozen=None,
            problem="",
        )

    # A wrong password's failure count (and lockout) is committed before the AuthError is
    # raised (as for the trial's lock): the operation opens its write transaction itself.
    @operation("coordinator", write=True, transaction=False)
    def freeze_sdc(
        self,
        op: Op,
        trial: str,
        reason: str,
        password: str,
        username: str | None = None,
        previewed: float | None = None,
    ) -> float:
        """Compute the SDC from the signed primary reads now and freeze it as the trial's SDC
        (it no longer moves as reads arrive), signed (Part 11, meaning "approved") over the
        value, level, n and readers frozen; the setting and the signature in one audit row.

        ``previewed``: the value the coordinator was shown (:meth:`sdc_preview`); the freeze is
        refused if the reads have moved it since."""
        s = op.user
        need_reason(reason)
        self._check_signer(s, username)
        # The analysis runs outside the write transaction (it reads every signed read of the
        # trial and fits the SDC's model); the write below checks nothing moved meanwhile.
        with op.read() as db:
            found = self._sdc_now(db, trial)
        if found.problem:
            raise InvalidInput(found.problem)
        assert found.value is not None
        if previewed is not None and abs(previewed - found.value) > 1e-9:
            raise InvalidInput(
                f"the SDC is {found.value:g} now, not the {previewed:g} shown before: reads "
                f"were signed meanwhile; look at the new value (n={found.n}) and freeze again"
            )
        failure = ""
        with op.write() as tx:
            user = repo.user_by_id(tx.session, s.user_id)
            failure = self._signature_refusal(tx, user, password)
            if not failure:
                if protocol_of(find_trial(tx.session, trial)).frozen_sdc is not None:
                    raise InvalidInput(f"the SDC of trial {trial} was frozen meanwhile")
                digest = found.content_hash()
                sig = repo.add_signature(
                    tx.session, "sdc", trial, "sign", user, "approved", tx.now, digest, ""
                )
                # The block it came from (docs/incomplete-designs.md) beside the value.
                basis = {
                    "readers": list(found.readers),
                    "n": found.n,
                    "k": found.k,
                    "level": found.level,
                }
                self._trials._apply_setting(
                    tx,
                    trial,
                    "frozen_sdc",
                    found.value,
                    reason,
                    basis=basis,
                    signed={
                        "signature": sig.id,
                        "meaning": "approved",
                        "printed_name": user.full_name,
                        "content_hash": digest,
                        "signed_at": tx.now,
                    },
                )
        if failure:
            raise AuthError(failure)
        s.signed_once = True
        return found.value

    def _primary_changes(
        self, db: Any, t: Any, proto: Protocol
    ) -> dict[int, dict[str, tuple[float, dict[str, Any]]]]:
        """patient id -> reader -> (change first→last visit, {visit label: status total})
        from signed primary reads (only readers with both visits signed)."""
        from scorer.core.totals import change_totals, status_totals

        method = get_method(proto.methods[0])
        rules = rules_of(proto)
        labels = [v.label for v in proto.visits] or [v.label for v in t.visits]
        label_of = {v.id: v.label for v in t.visits}
        by: dict[int, dict[str, dict[str, CoreRead]]] = {}
        names: dict[int, str] = {}
        for r in repo.reads_of_trial(db, t):
            if r.read_type != "primary" or r.status != "signed" or r.method != method.id:
                continue
            names.setdefault(r.reader_id, repo.user_by_id(db, r.reader_id).username)
            by.setdefault(r.patient_id, {}).setdefault(names[r.reader_id], {})[
                label_of[r.visit_id]
            ] = repo.to_core_read(db, r, real_ids=False)
        out: dict[int, dict[str, tuple[float, dict[str, Any]]]] = {}
        for pid, readers in by.items():
            for reader, visits in readers.items():
                present = [lbl for lbl in labels if lbl in visits]
                if len(present) < 2 or present[0] != labels[0] or present[-1] != labels[-1]:
                    continue
                ch = change_totals(visits[labels[0]], visits[labels[-1]], method, rules).total
                if ch is None:
                    continue
                totals = {lbl: status_totals(visits[lbl], method, rules).total for lbl in present}
                out.setdefault(pid, {})[reader] = (float(ch), totals)
        return out

    @operation("coordinator", write=True)
    def update_adjudication(self, op: Op, trial: str) -> AdjudicationUpdate:
        """Apply the trial's rule (spec §8) to every patient whose primary reads are signed:
        discrepant patients enter the queue; adjudications whose reads are signed get their
        final scores. Each queued patient and each result is audited with the rule applied."""
        from scorer.core.adjudication import check_discrepancy, select_reads

        tx = op.tx
        t = find_trial(tx.session, trial)
        refuse_if_locked(t)
        proto = protocol_of(t)
        if proto.adjudication_trigger == "none":
            raise InvalidInput(f"trial {trial} has no adjudication (adjudication_trigger)")
        if proto.adjudication_trigger == "frozen_sdc":
            if proto.frozen_sdc is None:
                raise InvalidInput(
                    "the trigger is the frozen SDC, and it is not frozen yet: freeze it first"
                )
            limit = float(proto.frozen_sdc)
        else:
            assert proto.adjudication_difference is not None
            limit = float(proto.adjudication_difference)
        cutoff = proto.frozen_sdc
        rule = {
            "trigger": proto.adjudication_trigger,
            "limit": limit,
            "progression_cutoff": cutoff,
            "final_rule": proto.final_rule,
        }
        changes = self._primary_changes(tx.session, t, proto)
        existing = {a.patient_id: a for a in repo.adjudications_of(tx.session, t)}
        queued = 0
        checked = 0
        for pid in sorted(changes):
            readers = changes[pid]
            if len(readers) < 2:
                continue
            checked += 1
            p = patient_of(tx.session, pid)
            values = {r: v[0] for r, v in readers.items()}
            d = check_discrepancy(p.code, values, limit, cutoff)
            if not d.discrepant or pid in existing:
                continue
            a = Adjudication(
                trial_id=t.id,
                patient_id=pid,
                reasons=json.dumps(list(d.reasons)),
                changes=json.dumps(values, sort_keys=True),
                rule=json.dumps(rule, sort_keys=True),
                status="queued",
                result="",
                queued_at=tx.now,
            )
            tx.session.add(a)
            tx.session.flush()
            existing[pid] = a
            queued += 1
            tx.audit(
                "adjudication.queue",
                "patient",
                p.code,
                trial_id=t.id,
                new={"reasons": list(d.reasons), "changes": values, "rule": rule},
            )
        done = 0
        adjudicated = self._adjudicator_changes(tx.session, t, proto)
        for pid, a in existing.items():
            if a.status != "assigned" or pid not in adjudicated:
                continue
            adj_name, (adj_change, adj_totals) = adjudicated[pid]
            primaries = changes.get(pid, {})
            pool = {r: v for r, v in primaries.items()}
            key = f"adjudicator:{adj_name}"
            pool[key] = (adj_change, adj_totals)
            chosen = select_reads({k: v[0] for k, v in pool.items()}, proto.final_rule, key)
            final_change = sum(pool[k][0] for k in chosen) / len(chosen)
            visits = sorted({lbl for k in chosen for lbl in pool[k][1]})
            final_totals = {}
            for lbl in visits:
                vals = [pool[k][1][lbl] for k in chosen if pool[k][1].get(lbl) is not None]
                final_totals[lbl] = round(sum(vals) / len(vals), 6) if vals else None
            result = {
                "rule": proto.final_rule,
                "reads": list(chosen),
                "changes": {k: v[0] for k, v in pool.items()},
                "final_change": round(final_change, 6),
                "final_totals": final_totals,
            }
            a.result = json.dumps(result, sort_keys=True)
            a.status = "done"
            a.done_at = tx.now
            done += 1
            p = patient_of(tx.session, pid)
            tx.audit("adjudication.result", "patient", p.code, trial_id=t.id, new=result)
        return AdjudicationUpdate(checked=checked, queued=queued, done=done)

    def _adjudicator_changes(
        self, db: Any, t: Any, proto: Protocol
    ) -> dict[int, tuple[str, tuple[float, dict[str, Any]]]]:
        """patient id -> (adjudicator, (change, totals)) for fully signed adjudication cases."""
        from scorer.core.totals import change_totals, status_totals

        method = get_method(proto.methods[0])
        rules = rules_of(proto)
        labels = [v.label for v in proto.visits] or [v.label for v in t.visits]
        out: dict[int, tuple[str, tuple[float, dict[str, Any]]]] = {}
        for a in repo.adjudications_of(db, t):
            if a.case_id is None:
                continue
            c = db.get(Case, a.case_id)
            reads = {lbl: r for lbl, r in case_reads_by_label(db, c, t) if r.method == method.id}
            if not reads or any(r.status != "signed" for r in reads.values()):
                continue
            if labels[0] not in reads or labels[-1] not in reads:
                continue
            core = {lbl: repo.to_core_read(db, r, real_ids=False) for lbl, r in reads.items()}
            ch = change_totals(core[labels[0]], core[labels[-1]], method, rules).total
            if ch is None:
                continue
            totals = {lbl: status_totals(core[lbl], method, rules).total for lbl in core}
            assert a.adjudicator_id is not None
            name = repo.user_by_id(db, a.adjudicator_id).username
            out[a.patient_id] = (name, (float(ch), totals))
        return out

    @operation("coordinator", write=True)
    def assign_adjudications(self, op: Op, trial: str, adjudicator: str) -> int:
        """Give the queued discrepant patients to an adjudicator: one case each in their
        worklist, visits in a seeded random order, blinded to the first reads."""
        tx = op.tx
        t = find_trial(tx.session, trial)
        refuse_if_locked(t)
        proto = protocol_of(t)
        u = repo.user_by_name(tx.session, adjudicator)
        if u is None or u.role != "adjudicator" or u.disabled:
            raise NotFound(f"no adjudicator {adjudicator!r}")
        queue = repo.adjudications_of(tx.session, t, "queued")
        if not queue:
            raise InvalidInput("the adjudication queue is empty")
        camp = special_campaign(tx, t, -1, "adjudication", proto)
        labels = json.loads(camp.visits)
        w = repo.worklist(tx.session, camp, u.id)
        if w is None:
            w = Worklist(
                campaign_id=camp.id,
                reader_id=u.id,
                seed="",
                inputs=json.dumps({"reader": u.username, "read_type": "adjudication"}),
                generated_at=tx.now,
            )
            tx.session.add(w)
            tx.session.flush()
        position = len(repo.cases_of(tx.session, w))
        taken = set(repo.all_case_codes(tx.session))
        seed = secrets.token_hex(16)
        from scorer.core.randomness import Stream

        rng = Stream(seed, f"adjudication:{u.username}")
        for a in queue:
            code = new_code()
            while code in taken:
                code = new_code()
            taken.add(code)
            order = rng.shuffled(labels) if proto.design == "paired_blinded" else labels
            c = Case(
                worklist_id=w.id,
                position=position,
                code=code,
                patient_id=a.patient_id,
                read_type="adjudication",
                original_position=None,
                visits=json.dumps(list(order)),
            )
            tx.session.add(c)
            tx.session.flush()
            position += 1
            a.status = "assigned"
            a.adjudicator_id = u.id
            a.case_id = c.id
            p = patient_of(tx.session, a.patient_id)
            tx.audit(
                "adjudication.assign",
                "patient",
                p.code,
                trial_id=t.id,
                new={"adjudicator": u.username, "case": code, "visits": list(order)},
            )
        tx.audit(
            "worklist.extend",
            "worklist",
            f"{t.code}/-1/{u.username}",
            trial_id=t.id,
            new={"seed": seed, "cases": len(queue)},
        )
        return len(queue)

    @operation("coordinator", "monitor")
    def adjudications(self, op: Op, trial: str) -> Adjudications:
        """The queue and the results: per patient the reasons, the readers' changes, the rule
        applied, the adjudicator and the final scores."""
        db = op.db
        t = find_trial(db, trial)
        proto = protocol_of(t)
        identified = op.user.role == "coordinator"
        rows = []
        for a in repo.adjudications_of(db, t):
            p = db.get(Patient, a.patient_id) if identified else None
            rows.append(
                PatientAdjudication(
                    status=a.status,
                    reasons=tuple(json.loads(a.reasons)),
                    rule=AdjudicationRule(**json.loads(a.rule)),
                    queued_at=a.queued_at,
                    done_at=a.done_at,
                    adjudicator=repo.user_by_id(db, a.adjudicator_id).username
                    if a.adjudicator_id
                    else None,
                    result=AdjudicationResult.from_json(a.result) if a.result else None,
                    patient=p.code if p else None,
                    changes=json.loads(a.changes) if identified else None,
                )
            )
        return Adjudications(
            trial=trial,
            trigger=proto.adjudication_trigger,
            difference=proto.adjudication_difference,
            frozen_sdc=proto.frozen_sdc,
            final_rule=proto.final_rule,
            patients=tuple(rows),
        )


def patient_of(db: Any, patient_id: int) -> Patient:
    """The patient a read or a queued adjudication refers to (a foreign key, so it exists;
    NotFound names the id if the database says otherwise)."""
    p: Patient | None = db.get(Patient, patient_id)
    if p is None:
        raise NotFound(f"no patient with id {patient_id}")
    return p


def case_reads_by_label(db: Any, c: Any, t: Any) -> list[tuple[str, Any]]:
    label_of = {v.id: v.label for v in t.visits}
    return [(label_of[r.visit_id], r) for r in repo.reads_of_case(db, c) if r.status != "void"]
