"""Trials: creating one from its protocol, its settings, visits and patients, and locking the
reading."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from scorer.core.json_value import JsonValue
from scorer.core.protocol import (
    FROZEN_AT_FIRST_SIGNATURE,
    Protocol,
    ProtocolError,
    VisitDef,
    with_setting,
)
from scorer.core.protocol import validate as validate_protocol
from scorer.services.errors import AuthError, InvalidInput, Locked
from scorer.services.lookups import (
    find_trial,
    protocol_of,
    reads_digest,
    refuse_if_locked,
    unique_patient_code,
)
from scorer.services.operation import Op, Service, check_account, operation
from scorer.services.session import UserSession, timing_hash
from scorer.services.validation import check_code, check_formula, check_name, need_reason
from scorer.store import repository as repo
from scorer.store.database import Tx
from scorer.store.passwords import verify_password

DESIGNS = ("paired_blinded", "chronological", "single")


@dataclass(frozen=True)
class TrialSettings:
    """A trial's protocol, whether its design is frozen (a read is signed), and whether its
    reading is locked."""

    protocol: Protocol
    frozen: bool
    locked: bool

    def to_dict(self) -> dict[str, Any]:
        """Every setting by name, then ``frozen`` and ``locked`` (``scorer trial show``)."""
        return {**self.protocol.to_dict(), "frozen": self.frozen, "locked": self.locked}


@dataclass(frozen=True)
class TrialSummary:
    """One trial in the list. Readers and adjudicators get code and name only: the other
    fields are None for them (visit labels, dates and designs are for the people who run the
    trial)."""

    code: str
    name: str
    methods: tuple[str, ...] | None = None
    design: str | None = None
    locked: bool | None = None
    created_at: str | None = None
    visits: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The trial as ``scorer trial list`` prints it: code and name, and for the people
        who run the trial methods, design, locked, created_at and visit labels."""
        if self.methods is None:
            return {"code": self.code, "name": self.name}
        return {
            "code": self.code,
            "name": self.name,
            "methods": list(self.methods),
            "design": self.design,
            "locked": self.locked,
            "created_at": self.created_at,
            "visits": list(self.visits or ()),
        }


@dataclass(frozen=True)
class PatientEntry:
    """A patient by opaque code; the real identifier for coordinators only (None otherwise)."""

    code: str
    real_id: str | None = None


class TrialsService(Service):
    """Trials, their settings, visits and patients, and the lock of their reading."""

    @operation("coordinator", "admin", write=True)
    def create_trial(
        self,
        op: Op,
        code: str,
        name: str = "",
        methods: Sequence[str] = ("svh",),
        design: str = "paired_blinded",
        visits: Sequence[tuple[str, float | None]] = (),
        protocol: Protocol | None = None,
    ) -> None:
        """Create a trial from its protocol (or from the common settings given directly)."""
        check_code(code, "trial code")
        if protocol is None:
            try:
                protocol = validate_protocol(
                    Protocol(
                        code=code,
                        name=name,
                        methods=tuple(methods),
                        design=design,
                        visits=tuple(VisitDef(lbl, wk) for lbl, wk in visits),
                    )
                )
            except ProtocolError as exc:
                raise InvalidInput(str(exc)) from exc
        elif protocol.code != code:
            raise InvalidInput(f"the protocol is for trial {protocol.code!r}, not {code!r}")
        check_name(protocol.name, "trial name")
        for v in protocol.visits:
            check_code(v.label, "visit label")
        if repo.trial_by_code(op.db, code) is not None:
            raise InvalidInput(f"a trial {code!r} exists already")
        t = repo.add_trial(
            op.db,
            code,
            protocol.name or code,
            ",".join(protocol.methods),
            protocol.design,
            op.now,
        )
        t.config = protocol.to_json()
        op.tx.audit("trial.create", "trial", code, trial_id=t.id, new=protocol.to_dict())
        for v in protocol.visits:
            repo.add_visit(op.db, t, v.label, v.week)
            op.tx.audit(
                "visit.add",
                "visit",
                v.label,
                trial_id=t.id,
                new={"label": v.label, "nominal_week": v.week},
            )

    @operation("coordinator", "admin", "monitor")
    def trial_settings(self, op: Op, trial: str) -> TrialSettings:
        """The trial's protocol settings and whether the design is frozen yet."""
        t = find_trial(op.db, trial)
        return TrialSettings(protocol_of(t), repo.has_signed_read(op.db, t), t.locked)

    @operation("coordinator", write=True)
    def set_trial_setting(
        self, op: Op, trial: str, name: str, value: JsonValue, reason: str
    ) -> None:
        """Change one setting with a reason (audited). Methods, design and visits freeze at
        the first signed read; nothing changes after lock."""
        need_reason(reason)
        self._apply_setting(op.tx, trial, name, value, reason)

    @staticmethod
    def _apply_setting(
        tx: Tx,
        trial: str,
        name: str,
        value: Any,
        reason: str,
        basis: Mapping[str, Any] | None = None,
        signed: Mapping[str, Any] | None = None,
    ) -> None:
        """Change one setting in the caller's write transaction ``tx`` (audited); ``basis``
        (how a computed value was found) is recorded beside the new value in the same row,
        and so is ``signed``, the signature that approved it (its id and content hash, which
        verification matches with the signatures table)."""
        t = find_trial(tx.session, trial)
        refuse_if_locked(t)
        old = protocol_of(t)
        if name in FROZEN_AT_FIRST_SIGNATURE and repo.has_signed_read(tx.session, t):
            raise InvalidInput(
                f"{name} is frozen: trial {trial} has signed reads. Start a new campaign "
                "for added visits."
            )
        try:
            new = with_setting(old, name, value)
        except ProtocolError as exc:
            raise InvalidInput(str(exc)) from exc
        if new == old:
            return
        t.config = new.to_json()
        t.methods = ",".join(new.methods)
        t.design = new.design
        if name == "visits":
            have = {v.label for v in t.visits}
            for v in new.visits:
                if v.label not in have:
                    repo.add_visit(tx.session, t, v.label, v.week)
        tx.audit(
            "trial.setting",
            "trial",
            trial,
            trial_id=t.id,
            old={name: old.to_dict()[name]},
            new={
                name: new.to_dict()[name],
                **({"basis": dict(basis)} if basis else {}),
                **(dict(signed) if signed else {}),
            },
            reason=reason,
        )

    @operation()
    def list_trials(self, op: Op) -> list[TrialSummary]:
        """The trials; readers and adjudicators get code and name only (visit labels, dates and
        designs are for the people who run the trial)."""
        if op.user.role in ("reader", "adjudicator"):
            return [TrialSummary(t.code, t.name) for t in repo.all_trials(op.db)]
        return [
            TrialSummary(
                code=t.code,
                name=t.name,
                methods=tuple(t.methods.split(",")),
                design=t.design,
                locked=t.locked,
                created_at=t.created_at,
                visits=tuple(v.label for v in sorted(t.visits, key=lambda v: v.id)),
            )
            for t in repo.all_trials(op.db)
        ]

    @operation("coordinator", "admin", write=True)
    def add_visit(self, op: Op, trial: str, label: str, nominal_week: float | None = None) -> None:
        """Add a visit to a trial (audited); refused once the reading is locked."""
        check_code(label, "visit label")
        t = find_trial(op.db, trial)
        refuse_if_locked(t)
        if repo.visit_by_label(op.db, t, label) is not None:
            raise InvalidInput(f"trial {trial} has a visit {label} already")
        repo.add_visit(op.db, t, label, nominal_week)
        op.tx.audit(
            "visit.add",
            "visit",
            label,
            trial_id=t.id,
            new={"label": label, "nominal_week": nominal_week},
        )

    @operation("coordinator", write=True)
    def add_patient(self, op: Op, trial: str, real_id: str) -> str:
        """Register a patient; returns the random opaque code everyone else sees."""
        if not real_id.strip():
            raise InvalidInput("a patient identifier is required")
        check_name(real_id, "patient identifier")
        check_formula(real_id, "patient identifier")
        t = find_trial(op.db, trial)
        refuse_if_locked(t)
        if repo.patient_by_real_id(op.db, t, real_id) is not None:
            raise InvalidInput(f"patient {real_id!r} is in trial {trial} already")
        p = repo.add_patient(op.db, t, real_id, unique_patient_code(op.tx, t), op.now)
        # The audit trail holds the code only: monitors and readers may read it.
        op.tx.audit("patient.add", "patient", p.code, trial_id=t.id, new={"code": p.code})
        return p.code

    @operation("coordinator", "admin", "monitor")
    def list_patients(self, op: Op, trial: str) -> list[PatientEntry]:
        """Patients by code; the real identifier only for coordinators."""
        t = find_trial(op.db, trial)
        real = op.user.role == "coordinator"
        return [
            PatientEntry(p.code, p.real_id if real else None) for p in repo.patients_of(op.db, t)
        ]

    # A wrong password's failure count (and lockout) is committed before the AuthError is
    # raised, which one transaction that rolls back on the error cannot do: the signing
    # operations open their write transaction themselves and check the account again in it.
    @operation("coordinator", write=True, transaction=False)
    def lock_trial(self, op: Op, trial: str, password: str, username: str | None = None) -> str:
        """Lock the reading (Part 11 signature, meaning "approved"): after this no read can
        change. Every read must be signed first. Returns the locked content's hash (the
        SHA-256 of the trial's reads CSV at lock)."""
        s = op.user
        self._check_signer(s, username)
        digest = ""
        with self._signing_write(s) as tx:
            user = repo.user_by_id(tx.session, s.user_id)
            failure = self._signature_refusal(tx, user, password)
            if not failure:
                t = find_trial(tx.session, trial)
                if t.locked:
                    raise Locked(f"the reading of trial {trial} is locked already")
                pending = [a for a in repo.adjudications_of(tx.session, t) if a.status != "done"]
                if pending:
                    raise InvalidInput(
                        f"{len(pending)} discrepant patient(s) are waiting for adjudication; "
                        "finish it (`scorer adjudication update`) before the lock"
                    )
                open_reads = [
                    r for r in repo.reads_of_trial(tx.session, t) if r.status == "in_progress"
                ]
                if open_reads:
                    raise InvalidInput(
                        f"{len(open_reads)} read(s) are not signed yet (first: "
                        f"{open_reads[0].code}); every read is signed before the lock"
                    )
                digest = reads_digest(tx.session, t)
                sig = repo.add_signature(
                    tx.session, "trial", t.code, "sign", user, "approved", tx.now, digest, ""
                )
                t.locked = True
                tx.session.flush()
                tx.audit(
                    "trial.lock",
                    "trial",
                    t.code,
                    trial_id=t.id,
                    old={"locked": False},
                    new={
                        "locked": True,
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
        return digest

    @operation("coordinator", write=True, transaction=False)
    def unlock_trial(
        self,
        op: Op,
        trial: str,
        reason: str,
        password: str,
        second_username: str,
        second_password: str,
    ) -> None:
        """Unlock a locked reading: a reason, the coordinator's password, and a second
        person's (another coordinator or an administrator) user ID and password; both
        signatures and the reason go into the audit trail."""
        s = op.user
        need_reason(reason)
        if second_username == s.username:
            raise AuthError("the second signature must be another person's")
        failure = ""
        with self._signing_write(s) as tx:
            t = find_trial(tx.session, trial)
            if not t.locked:
                raise InvalidInput(f"the reading of trial {trial} is not locked")
            user = repo.user_by_id(tx.session, s.user_id)
            failure = self._signature_refusal(tx, user, password)
            second = repo.user_by_name(tx.session, second_username)
            if not failure:
                if second is None or second.role not in ("coordinator", "admin"):
                    verify_password(timing_hash(), second_password)
                    failure = "the second person must be a coordinator or an administrator"
                else:
                    refusal = self._signature_refusal(tx, second, second_password)
                    if refusal:
                        failure = f"second signature: {refusal}"
            if not failure:
                assert second is not None
                digest = reads_digest(tx.session, t)
                sigs = [
                    repo.add_signature(
                        tx.session, "trial", t.code, "void", u, "approved", tx.now, digest, reason
                    )
                    for u in (user, second)
                ]
                t.locked = False
                tx.session.flush()
                tx.audit(
                    "trial.unlock",
                    "trial",
                    t.code,
                    trial_id=t.id,
                    old={"locked": True},
                    new={
                        "locked": False,
                        "signatures": [sig.id for sig in sigs],
                        "printed_names": [user.full_name, second.full_name],
                    },
                    reason=reason,
                )
        if failure:
            raise AuthError(failure)

    @contextmanager
    def _signing_write(self, s: UserSession) -> Iterator[Tx]:
        """The write transaction of lock or unlock, the coordinator's account checked again
        inside it (the role check and the signature share one transaction)."""
        with self._ctx.write(s.username, s.id) as tx:
            check_account(tx.session, s, ("coordinator",), False, self._now())
            yield tx
