"""Queries and row-level changes the facade composes into transactions."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scorer.core.methods import Area, get_method
from scorer.core.reads import AreaScore
from scorer.core.reads import Read as CoreRead
from scorer.store.audit import Verification
from scorer.store.database import Tx, bind_trial
from scorer.store.schema import (
    Adjudication,
    AreaScoreRow,
    Assignment,
    AssignmentPatient,
    AuditEvent,
    Campaign,
    Case,
    Event,
    Image,
    ImageRegion,
    JointPosition,
    JointProposal,
    LocatedJoint,
    LocatorRun,
    MissingRegion,
    PasswordHistory,
    Patient,
    Read,
    ReaderFlag,
    Release,
    Signature,
    Trial,
    User,
    Visit,
    Worklist,
)

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _code(n: int) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(n))


# ------------------------------------------------------------------ users


def add_user(
    db: Session,
    username: str,
    full_name: str,
    role: str,
    password_hash: str,
    must_change: bool,
    now: str,
    disabled: bool = False,
) -> User:
    u = User(
        username=username,
        full_name=full_name,
        role=role,
        password_hash=password_hash,
        must_change_password=must_change,
        failed_logins=0,
        disabled=disabled,
        created_at=now,
    )
    db.add(u)
    db.flush()
    return u


def set_password(db: Session, user: User, password_hash: str, now: str, keep: int) -> None:
    """Give ``user`` a new password hash and remember it, keeping the last ``keep`` hashes."""
    user.password_hash = password_hash
    db.add(PasswordHistory(user_id=user.id, password_hash=password_hash, set_at=now))
    db.flush()
    old = db.scalars(
        select(PasswordHistory.id)
        .where(PasswordHistory.user_id == user.id)
        .order_by(PasswordHistory.id.desc())
        .offset(keep)
    ).all()
    for row_id in old:
        db.delete(db.get(PasswordHistory, row_id))


def password_history(db: Session, user: User, n: int) -> list[str]:
    """The hashes of the account's last ``n`` passwords, newest (the current one) first."""
    earlier = db.scalars(
        select(PasswordHistory.password_hash)
        .where(PasswordHistory.user_id == user.id)
        .order_by(PasswordHistory.id.desc())
        .limit(n)
    ).all()
    hashes = [user.password_hash, *(h for h in earlier if h != user.password_hash)]
    return hashes[:n]


def password_mark(db: Session, user_id: int) -> int:
    """The id of the account's newest password-history row (0 for none): it changes with every
    password set (:func:`set_password`), not when a hash is only rehashed."""
    newest = db.scalar(
        select(func.max(PasswordHistory.id)).where(PasswordHistory.user_id == user_id)
    )
    return int(newest or 0)


def user_by_name(db: Session, username: str) -> User | None:
    return db.scalar(select(User).where(User.username == username))


def user_by_id(db: Session, user_id: int) -> User:
    u = db.get(User, user_id)
    if u is None:
        raise LookupError(f"user {user_id} vanished")
    return u


def all_users(db: Session) -> list[User]:
    return list(db.scalars(select(User).order_by(User.username)))


# ------------------------------------------------------------------ trials


def add_trial(db: Session, code: str, name: str, methods: str, design: str, now: str) -> Trial:
    t = Trial(
        code=code,
        name=name,
        methods=methods,
        design=design,
        config="{}",
        locked=False,
        created_at=now,
    )
    db.add(t)
    db.flush()
    return t


def trial_by_code(db: Session, code: str) -> Trial | None:
    t = db.scalar(select(Trial).where(Trial.code == code))
    if t is not None:
        bind_trial(db, t.id)
    return t


def trial_by_id(db: Session, trial_id: int) -> Trial:
    t = db.get(Trial, trial_id)
    if t is None:
        raise LookupError(f"trial {trial_id} vanished")
    return t


def all_trials(db: Session) -> list[Trial]:
    return list(db.scalars(select(Trial).order_by(Trial.code)))


def add_visit(db: Session, t: Trial, label: str, week: float | None) -> Visit:
    v = Visit(trial_id=t.id, label=label, nominal_week=week)
    db.add(v)
    db.flush()
    return v


def visit_by_label(db: Session, t: Trial, label: str) -> Visit | None:
    return db.scalar(select(Visit).where(Visit.trial_id == t.id, Visit.label == label))


def add_patient(db: Session, t: Trial, real_id: str, code: str, now: str) -> Patient:
    p = Patient(trial_id=t.id, code=code, real_id=real_id, created_at=now)
    db.add(p)
    db.flush()
    return p


def patient_by_code(db: Session, t: Trial, code: str) -> Patient | None:
    return db.scalar(select(Patient).where(Patient.trial_id == t.id, Patient.code == code))


def patient_by_real_id(db: Session, t: Trial, real_id: str) -> Patient | None:
    return db.scalar(select(Patient).where(Patient.trial_id == t.id, Patient.real_id == real_id))


def patients_of(db: Session, t: Trial) -> list[Patient]:
    return list(db.scalars(select(Patient).where(Patient.trial_id == t.id).order_by(Patient.code)))


# ------------------------------------------------------------------ reads


def unique_read_code(db: Session) -> str:
    while True:
        code = _code(12)
        if read_by_code(db, code) is None:
            return code


def add_read(
    db: Session,
    t: Trial,
    p: Patient,
    v: Visit,
    reader_id: int,
    method: str,
    read_type: str,
    code: str,
    now: str,
    status: str = "in_progress",
    origin: str = "entered",
) -> Read:
    r = Read(
        code=code,
        trial_id=t.id,
        patient_id=p.id,
        visit_id=v.id,
        reader_id=reader_id,
        method=method,
        read_type=read_type,
        status=status,
        note="",
        origin=origin,
        created_at=now,
        updated_at=now,
    )
    db.add(r)
    db.flush()
    return r


def read_by_code(db: Session, code: str) -> Read | None:
    r = db.scalar(select(Read).where(Read.code == code))
    if r is not None:
        bind_trial(db, r.trial_id)
    return r


def find_read(
    db: Session, t: Trial, p: Patient, v: Visit, reader_id: int, method: str, read_type: str
) -> Read | None:
    return db.scalar(
        select(Read).where(
            Read.trial_id == t.id,
            Read.patient_id == p.id,
            Read.visit_id == v.id,
            Read.reader_id == reader_id,
            Read.method == method,
            Read.read_type == read_type,
            Read.status != "void",
        )
    )


def reads_of_reader(db: Session, t: Trial, reader_id: int) -> list[tuple[Read, str]]:
    rows = db.execute(
        select(Read, Patient.code)
        .join(Patient, Patient.id == Read.patient_id)
        .where(Read.trial_id == t.id, Read.reader_id == reader_id)
        .order_by(Read.code)
    ).all()
    return [(r, str(c)) for r, c in rows]


def reads_of_trial(db: Session, t: Trial) -> list[Read]:
    return list(db.scalars(select(Read).where(Read.trial_id == t.id).order_by(Read.id)))


def score_row(db: Session, r: Read, area: Area) -> AreaScoreRow | None:
    return db.get(AreaScoreRow, (r.id, area.region, area.joint, area.feature))


def row_score(row: AreaScoreRow) -> AreaScore:
    sides = tuple(json.loads(row.sides)) if row.sides else None
    return AreaScore(score=row.score, reason=row.reason, sides=sides)


def put_score(
    db: Session, r: Read, area: Area, value: AreaScore, reason_text: str, position: int, now: str
) -> None:
    row = score_row(db, r, area)
    sides = json.dumps(list(value.sides)) if value.sides is not None else None
    if row is None:
        row = AreaScoreRow(
            read_id=r.id,
            region=area.region,
            joint=area.joint,
            feature=area.feature,
            position=position,
        )
        db.add(row)
    row.score = value.score
    row.sides = sides
    row.reason = value.reason
    row.reason_text = reason_text if value.reason is not None else ""
    row.updated_at = now


def read_view(db: Session, r: Read, view_cls: Any) -> Any:
    t = trial_by_id(db, r.trial_id)
    p = db.get(Patient, r.patient_id)
    v = db.get(Visit, r.visit_id)
    u = user_by_id(db, r.reader_id)
    scores: dict[Area, AreaScore] = {}
    texts: dict[Area, str] = {}
    for row in db.scalars(select(AreaScoreRow).where(AreaScoreRow.read_id == r.id)):
        a = Area(row.region, row.joint, row.feature)
        scores[a] = row_score(row)
        if row.reason_text:
            texts[a] = row.reason_text
    assert p is not None and v is not None
    return view_cls(
        code=r.code,
        trial=t.code,
        patient_code=p.code,
        visit=v.label,
        reader=u.username,
        method=r.method,
        read_type=r.read_type,
        status=r.status,
        version=r.version,
        note=r.note,
        scores=scores,
        reason_text=texts,
    )


def visit_date(db: Session, patient_id: int, visit_id: int) -> date | None:
    """The earliest acquisition date among a visit's images (spec §6)."""
    dates = [
        d
        for d in db.scalars(
            select(Image.acquisition_date).where(
                Image.patient_id == patient_id,
                Image.visit_id == visit_id,
                Image.qc_state != "failed",
            )
        )
        if d
    ]
    return date.fromisoformat(min(dates)) if dates else None


def to_core_read(db: Session, r: Read, real_ids: bool) -> CoreRead:
    t = trial_by_id(db, r.trial_id)
    p = db.get(Patient, r.patient_id)
    v = db.get(Visit, r.visit_id)
    u = user_by_id(db, r.reader_id)
    assert p is not None and v is not None
    scores = {
        Area(row.region, row.joint, row.feature): AreaScore(score=row.score, reason=row.reason)
        for row in db.scalars(select(AreaScoreRow).where(AreaScoreRow.read_id == r.id))
    }
    when = visit_date(db, p.id, v.id)
    if when is None and r.visit_date:
        when = date.fromisoformat(r.visit_date)
    return CoreRead(
        trial=t.code,
        patient=p.real_id if real_ids else p.code,
        visit=v.label,
        reader=u.username,
        method=r.method,
        read_type=r.read_type,
        read_id=r.code,
        status=r.status,
        visit_date=when,
        scores=scores,
    )


def core_reads_of_trial(db: Session, t: Trial, real_ids: bool) -> list[CoreRead]:
    """Every read of a trial as :func:`to_core_read` makes it, in ``reads_of_trial``'s order.

    Three queries in all (reads with their patient, visit and reader; the visits' image
    dates; the scores), not a few per read: a trial of 1,000 patients holds 9,000 reads and
    774,000 scores, which ``to_core_read`` one by one took 26 s to load.
    """
    heads = db.execute(
        select(
            Read.id,
            Read.code,
            Read.method,
            Read.read_type,
            Read.status,
            Read.visit_date,
            Read.patient_id,
            Read.visit_id,
            Patient.real_id if real_ids else Patient.code,
            Visit.label,
            User.username,
        )
        .join(Patient, Patient.id == Read.patient_id)
        .join(Visit, Visit.id == Read.visit_id)
        .join(User, User.id == Read.reader_id)
        .where(Read.trial_id == t.id)
        .order_by(Read.id)
    ).all()
    dates = _visit_dates(db, t)
    scores: dict[int, dict[Area, AreaScore]] = {}
    areas: dict[tuple[str, str, str], Area] = {}
    values: dict[tuple[int | None, str | None], AreaScore] = {}
    # Ordered as to_core_read's query of one read meets them on SQLite (its primary key's
    # order); on the session's connection, so that the rows skip the ORM's row processing
    # (and its buffering of them all: 200 MB at 774,000 rows).
    rows = db.connection().execute(
        select(
            AreaScoreRow.read_id,
            AreaScoreRow.region,
            AreaScoreRow.joint,
            AreaScoreRow.feature,
            AreaScoreRow.score,
            AreaScoreRow.reason,
        )
        .join(Read, Read.id == AreaScoreRow.read_id)
        .where(Read.trial_id == t.id)
        .order_by(
            AreaScoreRow.read_id, AreaScoreRow.region, AreaScoreRow.joint, AreaScoreRow.feature
        )
    )
    current = -1
    into: dict[Area, AreaScore] = {}
    # Areas and values are immutable and few: one object each, shared by the reads.
    for read_id, region, joint, feature, score, reason in rows:
        if read_id != current:
            current = read_id
            into = scores.setdefault(read_id, {})
        key = (region, joint, feature)
        area = areas.get(key)
        if area is None:
            area = areas[key] = Area(region, joint, feature)
        value = values.get((score, reason))
        if value is None:
            value = values[(score, reason)] = AreaScore(score=score, reason=reason)
        into[area] = value
    out = []
    for rid, code, method, read_type, status, own_date, pid, vid, patient, label, reader in heads:
        earliest = dates.get((pid, vid))
        when = date.fromisoformat(earliest) if earliest else None
        if when is None and own_date:
            when = date.fromisoformat(own_date)
        out.append(
            CoreRead(
                trial=t.code,
                patient=patient,
                visit=label,
                reader=reader,
                method=method,
                read_type=read_type,
                read_id=code,
                status=status,
                visit_date=when,
                scores=scores.get(rid, {}),
            )
        )
    return out


def _visit_dates(db: Session, t: Trial) -> dict[tuple[int, int], str]:
    """Per (patient, visit) of the trial, :func:`visit_date`'s text: its images' earliest."""
    earliest: dict[tuple[int, int], str] = {}
    # The minimum is taken here, as visit_date takes it, not by the database's collation.
    for pid, vid, when in db.execute(
        select(Image.patient_id, Image.visit_id, Image.acquisition_date)
        .join(Patient, Patient.id == Image.patient_id)
        .where(Patient.trial_id == t.id, Image.qc_state != "failed")
    ):
        if when and pid is not None and vid is not None:
            key = (pid, vid)
            if key not in earliest or when < earliest[key]:
                earliest[key] = when
    return earliest


def import_read(tx: Tx, t: Trial, r: CoreRead, new_patient_code: str) -> int:
    """Add one read from a reads CSV, creating its patient, visit and reader account."""
    db = tx.session
    p = patient_by_real_id(db, t, r.patient)
    if p is None:
        p = add_patient(db, t, r.patient, new_patient_code, tx.now)
        tx.audit(
            "patient.add",
            "patient",
            p.code,
            trial_id=t.id,
            new={"code": p.code},
            reason="reads import",
        )
    v = visit_by_label(db, t, r.visit)
    if v is None:
        v = add_visit(db, t, r.visit, None)
        tx.audit(
            "visit.add",
            "visit",
            v.label,
            trial_id=t.id,
            new={"label": v.label},
            reason="reads import",
        )
    u = user_by_name(db, r.reader)
    if u is None:
        # A reader of an earlier system: an account that cannot log in, so reads keep a name.
        u = add_user(
            db,
            r.reader,
            r.reader,
            "reader",
            "!imported",
            must_change=True,
            now=tx.now,
            disabled=True,
        )
        tx.audit(
            "user.add",
            "user",
            u.username,
            new={"role": "reader", "disabled": True},
            reason="reader of imported reads",
        )
    method = get_method(r.method)
    row = add_read(
        db,
        t,
        p,
        v,
        u.id,
        r.method,
        r.read_type,
        r.read_id,
        tx.now,
        status=r.status,
        origin="imported",
    )
    row.visit_date = r.visit_date.isoformat() if r.visit_date else None
    # A new read has no score rows yet: they are added as put_score would write them, without
    # looking each one up first (a lookup flushes: one INSERT per area instead of one batch).
    db.add_all(
        AreaScoreRow(
            read_id=row.id,
            region=area.region,
            joint=area.joint,
            feature=area.feature,
            position=method.order(area),
            score=value.score,
            sides=json.dumps(list(value.sides)) if value.sides is not None else None,
            reason=value.reason,
            reason_text="",
            updated_at=tx.now,
        )
        for area, value in r.scores.items()
    )
    return 1


# ------------------------------------------------------------------ signatures


def add_signature(
    db: Session,
    entity: str,
    entity_id: str,
    kind: str,
    user: User,
    meaning: str,
    now: str,
    digest: str,
    reason: str,
) -> Signature:
    sig = Signature(
        entity=entity,
        entity_id=entity_id,
        kind=kind,
        user_id=user.id,
        printed_name=user.full_name,
        meaning=meaning,
        signed_at=now,
        content_hash=digest,
        reason=reason,
    )
    db.add(sig)
    db.flush()
    return sig


def last_signature(db: Session, entity_id: str) -> Signature:
    sig = db.scalar(
        select(Signature)
        .where(Signature.entity_id == entity_id)
        .order_by(Signature.id.desc())
        .limit(1)
    )
    if sig is None:
        raise LookupError(f"no signature for {entity_id}")
    return sig


def verify_signatures(db: Session, result: Verification, view_cls: Any, hasher: Any) -> None:
    """Each signature must match its audit row, and each signed read its last signature."""
    audited: dict[int, dict[str, Any]] = {}
    kinds = {
        "read.sign": "sign",
        "read.void_signature": "void",
        "trial.lock": "sign",
        "trial.unlock": "void",
        # A setting signed when it was set (the frozen SDC): the row names its signature.
        "trial.setting": "sign",
    }
    for a in db.scalars(select(AuditEvent).where(AuditEvent.action.in_(tuple(kinds)))):
        info = json.loads(a.new) if a.new else {}
        ids = info.get("signatures") or ([info["signature"]] if "signature" in info else [])
        for sid in ids:
            audited[int(sid)] = {"read": a.entity_id, **info, "kind": kinds[a.action]}
    last_of: dict[str, Signature] = {}  # read code -> its last signature
    for sig in db.scalars(select(Signature).order_by(Signature.id)):
        result.signatures += 1
        rec = audited.pop(sig.id, None)
        if (
            rec is None
            or rec["read"] != sig.entity_id
            or rec["kind"] != sig.kind
            or (sig.kind == "sign" and rec.get("content_hash") != sig.content_hash)
        ):
            result.fail(f"signature {sig.id} does not match the audit trail (moved or altered)")
            return
        if sig.entity == "sdc":
            continue  # a signed setting: matched with its audit row above, nothing else signed
        last_of[sig.entity_id] = sig
    # Unsigning a read behind the facade (deleting its signature, or marking the read
    # unsigned) would free it for silent changes: every audited signature must exist, and a
    # read whose last signature signs it must be marked signed.
    if audited:
        gone = min(audited)
        result.fail(
            f"signature {gone} of read {audited[gone]['read']} is in the audit trail but not "
            "in the signatures table (deleted)"
        )
        return
    signed = set(db.scalars(select(Read.code).where(Read.status == "signed")))
    locked = {t.code for t in db.scalars(select(Trial).where(Trial.locked.is_(True)))}
    for code, sig in last_of.items():
        if sig.entity == "trial":
            # A trial is locked exactly when its last signature is the lock's.
            if (sig.kind == "sign") != (code in locked):
                result.fail(f"trial {code}'s lock does not match its signature {sig.id}")
                return
            continue
        if sig.kind == "sign" and code not in signed:
            result.fail(f"read {code} is not marked signed, but signature {sig.id} signs it")
            return
    for code in sorted(locked - {c for c, sig in last_of.items() if sig.entity == "trial"}):
        result.fail(f"trial {code} is marked locked without a lock signature")
        return
    for r in db.scalars(select(Read).where(Read.status == "signed", Read.origin == "entered")):
        last = db.scalar(
            select(Signature)
            .where(Signature.entity == "read", Signature.entity_id == r.code)
            .order_by(Signature.id.desc())
            .limit(1)
        )
        if last is None or last.kind != "sign":
            result.fail(f"read {r.code} is marked signed without a valid signature")
            return
        if hasher(read_view(db, r, view_cls)) != last.content_hash:
            result.fail(f"read {r.code} has changed since signature {last.id} was given")
            return


# ------------------------------------------------------------------ trails


def events(db: Session, username: str | None = None) -> list[Event]:
    q = select(Event).order_by(Event.seq)
    if username:
        q = q.where(Event.username == username)
    return list(db.scalars(q))


def audit_rows(db: Session) -> list[AuditEvent]:
    return list(db.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def last_setting_change(db: Session, trial_id: int, name: str) -> AuditEvent | None:
    """The audit row that last set trial setting ``name`` (None if none did)."""
    rows = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "trial.setting", AuditEvent.trial_id == trial_id)
        .order_by(AuditEvent.seq.desc())
    )
    return next((a for a in rows if a.new and name in json.loads(a.new)), None)


# ------------------------------------------------------------------ trial design


def has_signed_read(db: Session, t: Trial) -> bool:
    """True once any read of the trial has been signed at a workstation."""
    return (
        db.scalar(
            select(Signature.id)
            .join(Read, Read.code == Signature.entity_id)
            .where(Read.trial_id == t.id, Signature.entity == "read", Signature.kind == "sign")
            .limit(1)
        )
        is not None
    )


def assignment(db: Session, t: Trial, user_id: int) -> Assignment | None:
    return db.scalar(
        select(Assignment).where(Assignment.trial_id == t.id, Assignment.user_id == user_id)
    )


def assignments_of(db: Session, t: Trial) -> list[tuple[Assignment, User]]:
    rows = db.execute(
        select(Assignment, User)
        .join(User, User.id == Assignment.user_id)
        .where(Assignment.trial_id == t.id)
        .order_by(User.username)
    ).all()
    return [(a, u) for a, u in rows]


def assigned_patients(db: Session, t: Trial, a: Assignment) -> list[Patient]:
    if a.scope == "all":
        return patients_of(db, t)
    return list(
        db.scalars(
            select(Patient)
            .join(AssignmentPatient, AssignmentPatient.patient_id == Patient.id)
            .where(AssignmentPatient.assignment_id == a.id)
            .order_by(Patient.code)
        )
    )


def campaigns_of(db: Session, t: Trial) -> list[Campaign]:
    return list(
        db.scalars(select(Campaign).where(Campaign.trial_id == t.id).order_by(Campaign.number))
    )


def campaign(db: Session, t: Trial, number: int) -> Campaign | None:
    return db.scalar(select(Campaign).where(Campaign.trial_id == t.id, Campaign.number == number))


def worklist(db: Session, c: Campaign, reader_id: int) -> Worklist | None:
    return db.scalar(
        select(Worklist).where(Worklist.campaign_id == c.id, Worklist.reader_id == reader_id)
    )


def worklists_of(db: Session, c: Campaign) -> list[Worklist]:
    return list(db.scalars(select(Worklist).where(Worklist.campaign_id == c.id)))


def cases_of(db: Session, w: Worklist) -> list[Case]:
    return list(db.scalars(select(Case).where(Case.worklist_id == w.id).order_by(Case.position)))


def case_by_code(db: Session, code: str) -> Case | None:
    found = db.execute(
        select(Case, Campaign.trial_id)
        .join(Worklist, Case.worklist_id == Worklist.id)
        .join(Campaign, Worklist.campaign_id == Campaign.id)
        .where(Case.code == code)
    ).first()
    if found is None:
        return None
    bind_trial(db, found[1])
    return found[0]


def cases_of_reader_patient(
    db: Session, t: Trial, reader_id: int, patient_id: int, read_type: str
) -> list[Case]:
    """A reader's cases of one patient in a trial (any campaign) for reads of ``read_type``."""
    return list(
        db.scalars(
            select(Case)
            .join(Worklist, Case.worklist_id == Worklist.id)
            .join(Campaign, Worklist.campaign_id == Campaign.id)
            .where(
                Campaign.trial_id == t.id,
                Worklist.reader_id == reader_id,
                Case.patient_id == patient_id,
                Case.read_type == read_type,
            )
            .order_by(Case.id)
        )
    )


def all_case_codes(db: Session) -> frozenset[str]:
    return frozenset(db.scalars(select(Case.code)))


def reads_of_case(db: Session, c: Case) -> list[Read]:
    return list(db.scalars(select(Read).where(Read.case_id == c.id).order_by(Read.id)))


def _trial_case_ids(t: Trial) -> Any:
    return (
        select(Case.id)
        .join(Worklist, Case.worklist_id == Worklist.id)
        .join(Campaign, Worklist.campaign_id == Campaign.id)
        .where(Campaign.trial_id == t.id)
    )


def progress_cases(db: Session, t: Trial) -> list[tuple[Case, int, str, Patient | None]]:
    """Every case of a trial's worklists with its campaign number, its reader's username and
    its patient: campaign by campaign, worklist by worklist, in worklist order (one query)."""
    q = (
        select(Case, Campaign.number, User.username, Patient)
        .join(Worklist, Case.worklist_id == Worklist.id)
        .join(Campaign, Worklist.campaign_id == Campaign.id)
        .join(User, Worklist.reader_id == User.id)
        .outerjoin(Patient, Case.patient_id == Patient.id)
        .where(Campaign.trial_id == t.id)
        .order_by(Campaign.number, Worklist.id, Case.position)
    )
    return [(c, int(number), str(username), p) for c, number, username, p in db.execute(q)]


def case_read_statuses(db: Session, t: Trial) -> dict[int, list[str]]:
    """Case id -> the statuses of its reads (void ones too), for every case of a trial."""
    out: dict[int, list[str]] = {}
    q = select(Read.case_id, Read.status).where(Read.case_id.in_(_trial_case_ids(t)))
    for case_id, status in db.execute(q.order_by(Read.id)):
        if case_id is not None:
            out.setdefault(case_id, []).append(status)
    return out


def case_seconds(db: Session, t: Trial) -> dict[str, float]:
    """Case code -> the seconds the reading window logged on leaving it (``case.closed``
    events), summed, for the cases of a trial: only those events are read."""
    codes = select(Case.code).where(Case.id.in_(_trial_case_ids(t)))
    q = select(Event.subject, Event.detail).where(
        Event.kind == "case.closed", Event.detail != "", Event.subject.in_(codes)
    )
    out: dict[str, float] = {}
    for subject, detail in db.execute(q.order_by(Event.seq)):
        seconds = float(json.loads(detail).get("seconds", 0.0))
        out[subject] = out.get(subject, 0.0) + seconds
    return out


def visits_with_images(db: Session, t: Trial) -> dict[int, set[int]]:
    """Patient id -> visit ids that have at least one image not failed at QC."""
    out: dict[int, set[int]] = {}
    for pid, vid in db.execute(
        select(Image.patient_id, Image.visit_id).where(
            Image.trial_id == t.id,
            Image.patient_id.is_not(None),
            Image.visit_id.is_not(None),
            Image.qc_state != "failed",
        )
    ):
        if pid is not None and vid is not None:
            out.setdefault(pid, set()).add(vid)
    return out


def clear_assignment_patients(db: Session, a: Assignment) -> None:
    for row in db.scalars(select(AssignmentPatient).where(AssignmentPatient.assignment_id == a.id)):
        db.delete(row)


# ------------------------------------------------------------------ images


def image_hashes(db: Session, trial_id: int) -> dict[str, str]:
    """Original file SHA-256 -> image code, for every image of a trial."""
    return {
        h: c
        for h, c in db.execute(select(Image.sha256, Image.code).where(Image.trial_id == trial_id))
    }


def image_sop_uids(db: Session, trial_id: int) -> dict[str, str]:
    """Original SOP Instance UID -> image code, for every image of a trial."""
    return {
        u: c
        for u, c in db.execute(
            select(Image.sop_instance_uid, Image.code).where(
                Image.trial_id == trial_id, Image.sop_instance_uid.is_not(None)
            )
        )
        if u
    }


def add_image(
    db: Session,
    t: Trial,
    p: Patient | None,
    v: Visit | None,
    *,
    code: str,
    sha256: str,
    sop_uid: str | None,
    acquisition_date: str | None,
    reader_path: str,
    original_path: str,
    flags: str,
    reader_sha256: str,
    transfer_syntax: str,
    rows: int | None,
    columns: int | None,
    source_name: str,
    regions: tuple[str, ...],
    now: str,
    qc_state: str = "passed",
    pixel_sha256: str | None = None,
) -> Image:
    img = Image(
        trial_id=t.id,
        patient_id=p.id if p else None,
        visit_id=v.id if v else None,
        code=code,
        sha256=sha256,
        sop_instance_uid=sop_uid,
        acquisition_date=acquisition_date,
        reader_path=reader_path,
        original_path=original_path,
        flags=flags,
        reader_sha256=reader_sha256,
        transfer_syntax=transfer_syntax,
        rows=rows,
        columns=columns,
        source_name=source_name,
        created_at=now,
        qc_state=qc_state,
        qc_reason="",
        pixel_sha256=pixel_sha256,
    )
    db.add(img)
    db.flush()
    for r in regions:
        db.add(ImageRegion(image_id=img.id, region=r))
    db.flush()
    return img


def images_of(db: Session, t: Trial) -> list[Image]:
    return list(db.scalars(select(Image).where(Image.trial_id == t.id).order_by(Image.id)))


def image_by_code(db: Session, code: str) -> Image | None:
    return db.scalar(select(Image).where(Image.code == code))


def image_by_sha256(db: Session, trial_id: int, sha256: str) -> Image | None:
    """A trial's image imported from a file with these bytes (the first, if more)."""
    return db.scalar(
        select(Image)
        .where(Image.trial_id == trial_id, Image.sha256 == sha256)
        .order_by(Image.id)
        .limit(1)
    )


def image_by_sop(db: Session, trial_id: int, sop_uid: str) -> Image | None:
    """A trial's image of an original SOP Instance UID (the first, if more)."""
    return db.scalar(
        select(Image)
        .where(Image.trial_id == trial_id, Image.sop_instance_uid == sop_uid)
        .order_by(Image.id)
        .limit(1)
    )


def cases_showing(db: Session, patient_id: int, visit_label: str) -> list[tuple[str, str]]:
    """(case code, reader's user ID) of every case of a patient that shows a visit."""
    rows = db.execute(
        select(Case.code, Case.visits, User.username)
        .join(Worklist, Worklist.id == Case.worklist_id)
        .join(User, User.id == Worklist.reader_id)
        .where(Case.patient_id == patient_id)
        .order_by(Case.id)
    ).all()
    return [(str(c), str(u)) for c, visits, u in rows if visit_label in json.loads(visits)]


def visit_by_id(db: Session, visit_id: int) -> Visit | None:
    return db.get(Visit, visit_id)


def reader_paths(db: Session) -> list[str]:
    return [p for p in db.scalars(select(Image.reader_path)) if p]


def images_of_visit(db: Session, patient_id: int, visit_id: int) -> list[Image]:
    """A patient's images at a visit that passed QC, hands before feet, in import order: an
    image waiting for QC or failed reaches no case."""
    imgs = list(
        db.scalars(
            select(Image)
            .where(
                Image.patient_id == patient_id,
                Image.visit_id == visit_id,
                Image.qc_state == "passed",
            )
            .order_by(Image.id)
        )
    )
    return sorted(imgs, key=lambda i: (min((r.region for r in i.regions), default="ZZ")[1:], i.id))


def joint_positions_of(db: Session, image_ids: list[int]) -> dict[int, list[JointPosition]]:
    """The joint positions of images, by image id, in (region, joint) order (an image without
    positions is absent)."""
    out: dict[int, list[JointPosition]] = {}
    if not image_ids:
        return out
    rows = db.scalars(
        select(JointPosition)
        .where(JointPosition.image_id.in_(image_ids))
        .order_by(JointPosition.image_id, JointPosition.region, JointPosition.joint)
    )
    for row in rows:
        out.setdefault(row.image_id, []).append(row)
    return out


def has_joint_positions(db: Session) -> bool:
    """Whether any image has a joint position."""
    return db.scalars(select(JointPosition.image_id).limit(1)).first() is not None


def drop_joint_positions(db: Session, image: Image, keep_regions: Sequence[str]) -> int:
    """Remove the image's joint positions of regions it no longer shows (one ORM delete per
    row, so the trail records each); how many were removed."""
    rows = db.scalars(
        select(JointPosition).where(
            JointPosition.image_id == image.id, JointPosition.region.not_in(list(keep_regions))
        )
    ).all()
    for row in rows:
        db.delete(row)
    return len(rows)


def put_locator_run(
    db: Session,
    image: Image,
    *,
    version: str,
    kind: str,
    regions: str,
    reason: str,
    seconds: float,
    now: str,
) -> None:
    """Keep the joint locator's run on an image (one per image: a new run replaces it)."""
    row = db.get(LocatorRun, image.id)
    if row is None:
        row = LocatorRun(image_id=image.id)
        db.add(row)
    row.version, row.kind, row.regions = version, kind, regions
    row.reason, row.seconds, row.ran_at = reason, seconds, now


def put_located_joint(
    db: Session,
    image: Image,
    region: str,
    joint: str,
    xy: tuple[float, float],
    confidence: float,
    sure: bool,
) -> None:
    """Keep where the locator found one joint of an image and how sure it was."""
    row = db.get(LocatedJoint, (image.id, region, joint))
    if row is None:
        row = LocatedJoint(image_id=image.id, region=region, joint=joint)
        db.add(row)
    row.x, row.y, row.confidence, row.sure = xy[0], xy[1], confidence, sure


def locator_runs_of(db: Session, image_ids: list[int]) -> dict[int, LocatorRun]:
    """The locator's runs on images, by image id (an image it never ran on is absent)."""
    if not image_ids:
        return {}
    rows = db.scalars(select(LocatorRun).where(LocatorRun.image_id.in_(image_ids)))
    return {r.image_id: r for r in rows}


def located_joints_of(db: Session, image_ids: list[int]) -> dict[int, list[LocatedJoint]]:
    """What the locator found on images, by image id, in (region, joint) order."""
    out: dict[int, list[LocatedJoint]] = {}
    if not image_ids:
        return out
    rows = db.scalars(
        select(LocatedJoint)
        .where(LocatedJoint.image_id.in_(image_ids))
        .order_by(LocatedJoint.image_id, LocatedJoint.region, LocatedJoint.joint)
    )
    for row in rows:
        out.setdefault(row.image_id, []).append(row)
    return out


def proposals_of(db: Session, image_ids: list[int]) -> dict[int, list[JointProposal]]:
    """The positions registration proposes on images, by image id, in (region, joint) order."""
    out: dict[int, list[JointProposal]] = {}
    if not image_ids:
        return out
    rows = db.scalars(
        select(JointProposal)
        .where(JointProposal.image_id.in_(image_ids))
        .order_by(JointProposal.image_id, JointProposal.region, JointProposal.joint)
    )
    for row in rows:
        out.setdefault(row.image_id, []).append(row)
    return out


def drop_proposals_involving(db: Session, image: Image) -> int:
    """Remove registration's proposals on an image and those made from it (one ORM delete per
    row, so the trail records each); how many were removed."""
    rows = db.scalars(
        select(JointProposal).where(
            (JointProposal.image_id == image.id) | (JointProposal.reference_id == image.id)
        )
    ).all()
    for row in rows:
        db.delete(row)
    return len(rows)


def replace_proposals(
    db: Session, image: Image, region: str, rows: Sequence[dict[str, Any]]
) -> None:
    """Replace the proposals of one region of an image with ``rows`` (each a JointProposal's
    columns but the key's image and region): a joint no longer proposed loses its row."""
    old = {
        r.joint: r
        for r in db.scalars(
            select(JointProposal).where(
                JointProposal.image_id == image.id, JointProposal.region == region
            )
        )
    }
    for values in rows:
        row = old.pop(values["joint"], None)
        if row is None:
            row = JointProposal(image_id=image.id, region=region, joint=values["joint"])
            db.add(row)
        for column, value in values.items():
            if column != "joint" and getattr(row, column, None) != value:
                setattr(row, column, value)
    for row in old.values():
        db.delete(row)


def put_joint_position(
    db: Session,
    image: Image,
    region: str,
    joint: str,
    xy: tuple[float, float],
    source: str,
    now: str,
) -> None:
    """Place one joint of an image: the row is replaced if the joint had a position."""
    row = db.get(JointPosition, (image.id, region, joint))
    if row is None:
        db.add(
            JointPosition(
                image_id=image.id,
                region=region,
                joint=joint,
                x=xy[0],
                y=xy[1],
                source=source,
                placed_at=now,
            )
        )
    else:
        row.x, row.y, row.source, row.placed_at = xy[0], xy[1], source, now


def flags_of(db: Session, t: Trial) -> list[tuple[ReaderFlag, str, str]]:
    """A trial's reader flags with their case code and reader's user ID."""
    rows = db.execute(
        select(ReaderFlag, Case.code, User.username)
        .join(Case, Case.id == ReaderFlag.case_id)
        .join(Worklist, Worklist.id == Case.worklist_id)
        .join(Campaign, Campaign.id == Worklist.campaign_id)
        .join(User, User.id == ReaderFlag.raised_by)
        .where(Campaign.trial_id == t.id)
        .order_by(ReaderFlag.id)
    ).all()
    return [(f, str(c), str(u)) for f, c, u in rows]


# ------------------------------------------------------------------ coordination


def missing_region(
    db: Session, patient_id: int, visit_id: int, region: str
) -> MissingRegion | None:
    return db.scalar(
        select(MissingRegion).where(
            MissingRegion.patient_id == patient_id,
            MissingRegion.visit_id == visit_id,
            MissingRegion.region == region,
        )
    )


def missing_regions_of(db: Session, t: Trial) -> list[MissingRegion]:
    return list(
        db.scalars(
            select(MissingRegion).where(MissingRegion.trial_id == t.id).order_by(MissingRegion.id)
        )
    )


def release_of(db: Session, t: Trial, user_id: int) -> Release | None:
    return db.scalar(select(Release).where(Release.trial_id == t.id, Release.user_id == user_id))


def adjudications_of(db: Session, t: Trial, status: str | None = None) -> list[Adjudication]:
    q = select(Adjudication).where(Adjudication.trial_id == t.id)
    if status is not None:
        q = q.where(Adjudication.status == status)
    return list(db.scalars(q.order_by(Adjudication.id)))


def case_codes_of_reads(db: Session) -> dict[str, str]:
    """Read code -> the code of its case, for every read that belongs to a case."""
    rows = db.execute(select(Read.code, Case.code).join(Case, Case.id == Read.case_id)).all()
    return {str(r): str(c) for r, c in rows}


def visits_of_reads(db: Session) -> dict[str, tuple[str, int, str]]:
    """Read code -> (its case's code, the place of its visit in the case's display order,
    the true visit label), for every read that belongs to a case (the place is -1 when the
    case does not show the read's visit)."""
    rows = db.execute(
        select(Read.code, Case.code, Case.visits, Visit.label)
        .join(Case, Case.id == Read.case_id)
        .join(Visit, Visit.id == Read.visit_id)
    ).all()
    out: dict[str, tuple[str, int, str]] = {}
    for read, case, order, label in rows:
        labels = json.loads(order)
        out[str(read)] = (str(case), labels.index(label) if label in labels else -1, str(label))
    return out
