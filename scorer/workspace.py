"""The one Qt-free facade the GUI and the CLI call: log in, set up trials, score, sign, export.

Every operation checks the caller's role and ownership here (not only in windows), opens one
transaction, writes the change and its audit row together, and returns plain values.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scorer.core.methods import Area, builtin_methods, get_method
from scorer.core.protocol import (
    FROZEN_AT_FIRST_SIGNATURE,
    Protocol,
    ProtocolError,
    VisitDef,
    with_setting,
)
from scorer.core.protocol import from_json as protocol_from_json
from scorer.core.protocol import validate as validate_protocol
from scorer.core.randomness import ALGORITHM as RANDOM_ALGORITHM
from scorer.core.reads import READ_TYPES, AreaScore, ReadError, check_score
from scorer.core.reads import Read as CoreRead
from scorer.core.readscsv import ReadsCsvError, format_reads_csv, parse_reads_csv
from scorer.core.worklist import LETTERS, WorklistInput
from scorer.core.worklist import generate as generate_worklist
from scorer.store import repository as repo
from scorer.store.audit import Verification
from scorer.store.database import Store, StoreError, Tx, database_exists
from scorer.store.location import Location, resolve
from scorer.store.migrate import current_revision, head_revision, upgrade
from scorer.store.passwords import (
    PasswordPolicyError,
    check_policy,
    hash_password,
    needs_rehash,
    verify_password,
)
from scorer.store.schema import (
    ROLES,
    Assignment,
    AssignmentPatient,
    Campaign,
    Case,
    Patient,
    ReaderFlag,
    Worklist,
)

DESIGNS = ("paired_blinded", "chronological", "single")
MEANINGS = ("authored", "reviewed", "approved")
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class ScorerError(Exception):
    """Base of the errors the facade raises; the message is meant for the person at the desk."""


class AuthError(ScorerError):
    """Wrong user ID or password, a locked or disabled account."""


class PermissionDenied(ScorerError):
    """The caller's role or ownership does not allow the operation."""


class SessionLocked(ScorerError):
    """The session was locked for inactivity; unlock with the password."""


class NotFound(ScorerError):
    """No such trial, patient, visit, read or user (for this caller)."""


class InvalidInput(ScorerError):
    """Input that breaks a rule: a score out of range, a missing reason, a bad name."""


class Conflict(ScorerError):
    """Someone else changed the record first; the current value comes with the message."""


class Locked(ScorerError):
    """The trial's reading is locked: no read can change."""


@dataclass(frozen=True)
class Settings:
    """Security settings, declared once with their defaults (version 1)."""

    lockout_attempts: int = 5
    lockout_minutes: float = 15.0
    inactivity_minutes: float = 15.0
    version: int = 1


@dataclass
class UserSession:
    """A logged-in user at one workstation: who, since when, and the signature state."""

    user_id: int
    username: str
    full_name: str
    role: str
    id: str
    started: datetime
    last_active: datetime
    must_change_password: bool = False
    locked: bool = False
    signed_once: bool = False
    closed: bool = False


@dataclass(frozen=True)
class ScoreAck:
    """The acknowledgement of a committed score: the read's new version and status."""

    read_code: str
    area: Area
    version: int
    status: str


@dataclass(frozen=True)
class ReadView:
    """What the caller may see of a read."""

    code: str
    trial: str
    patient_code: str
    visit: str
    reader: str
    method: str
    read_type: str
    status: str
    version: int
    note: str
    scores: dict[Area, AreaScore] = field(default_factory=dict)
    reason_text: dict[Area, str] = field(default_factory=dict)


def new_code(length: int = 10) -> str:
    """A random opaque code (never sequential, betrays no order)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def content_hash(view: ReadView) -> str:
    """SHA-256 of a read's signed content: identity, method, type, every score and the note."""
    body = {
        "read": view.code,
        "trial": view.trial,
        "patient": view.patient_code,
        "visit": view.visit,
        "reader": view.reader,
        "method": view.method,
        "read_type": view.read_type,
        "note": view.note,
        "scores": [
            [
                a.region,
                a.joint,
                a.feature,
                s.score,
                list(s.sides) if s.sides else None,
                s.reason,
                view.reason_text.get(a, ""),
            ]
            for a, s in sorted(view.scores.items())
        ],
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _parse_time(s: str) -> datetime:
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _fmt_time(d: datetime) -> str:
    return d.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _score_json(s: AreaScore | None, text: str = "") -> dict[str, Any] | None:
    if s is None:
        return None
    out: dict[str, Any] = {"score": s.score}
    if s.sides is not None:
        out["sides"] = list(s.sides)
    if s.reason is not None:
        out["reason"] = s.reason
        if text:
            out["reason_text"] = text
    return out


class Workspace:
    """The facade over one database. Create with :meth:`open` or :meth:`initialize`."""

    def __init__(
        self,
        store: Store,
        settings: Settings | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or Settings()
        self._clock = clock or (lambda: datetime.now(UTC))

    # ----------------------------------------------------------------- opening

    @classmethod
    def open(
        cls,
        db: str | None = None,
        settings: Settings | None = None,
        clock: Callable[[], datetime] | None = None,
        location: Location | None = None,
    ) -> Workspace:
        """Open an existing database at its current schema; refuse an old or missing one."""
        loc = location or resolve(db)
        if not database_exists(loc):
            raise ScorerError(
                f"no scorer database at {loc.url} (from {loc.source}); create one with "
                "`scorer init`"
            )
        try:
            store = Store(loc)
        except Exception as exc:
            raise ScorerError(str(exc)) from exc
        rev = current_revision(store.engine)
        if rev != head_revision():
            store.close()
            raise ScorerError(
                f"the database at {loc.url} is at schema revision {rev}, this scorer needs "
                f"{head_revision()}: run `scorer migrate` (after a backup)"
            )
        return cls(store, settings, clock)

    @classmethod
    def initialize(
        cls,
        admin_username: str,
        admin_full_name: str,
        admin_password: str,
        db: str | None = None,
        settings: Settings | None = None,
        clock: Callable[[], datetime] | None = None,
        location: Location | None = None,
    ) -> Workspace:
        """Create the database, the audit key and the first admin account."""
        loc = location or resolve(db)
        if database_exists(loc):
            raise ScorerError(f"a scorer database already exists at {loc.url}")
        _check_username(admin_username)
        try:
            check_policy(admin_password, admin_username)
        except PasswordPolicyError as exc:
            raise InvalidInput(str(exc)) from exc
        path = loc.sqlite_path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            store = Store(loc, create_key=True)
        except Exception as exc:
            raise ScorerError(str(exc)) from exc
        upgrade(store.engine)
        ws = cls(store, settings, clock)
        with store.write(admin_username) as tx:
            tx.now = ws._now_str()
            user = repo.add_user(
                tx.session,
                admin_username,
                admin_full_name,
                "admin",
                hash_password(admin_password),
                must_change=False,
                now=tx.now,
            )
            tx.audit("database.init", "database", "1", new={"schema": head_revision()})
            tx.audit(
                "user.add",
                "user",
                user.username,
                new={"role": "admin", "full_name": admin_full_name},
            )
        return ws

    def close(self) -> None:
        self.store.close()

    # ----------------------------------------------------------------- helpers

    def _now(self) -> datetime:
        return self._clock()

    def _now_str(self) -> str:
        return _fmt_time(self._now())

    def _write(self, s: UserSession | None, username: str | None = None) -> Any:
        tx_cm = self.store.write(username or (s.username if s else "system"))
        return _TimedWrite(tx_cm, self._now_str())

    def _active(self, s: UserSession, *roles: str, allow_must_change: bool = False) -> None:
        """Check the session is open, unlocked and recent, and the role allowed."""
        if s.closed:
            raise AuthError("this session has ended; log in again")
        now = self._now()
        idle = now - s.last_active
        if s.locked or idle > timedelta(minutes=self.settings.inactivity_minutes):
            if not s.locked:
                s.locked = True
                with self._write(s) as tx:
                    tx.event(
                        "session.locked",
                        s.username,
                        {"idle_seconds": round(idle.total_seconds())},
                        s.id,
                    )
            raise SessionLocked(
                "the session is locked after inactivity; enter your password to unlock it"
            )
        # The account may have been disabled or its role changed since log-in.
        with self.store.read() as db:
            user = repo.user_by_id(db, s.user_id)
            disabled, role = user.disabled, user.role
        if disabled or role != s.role:
            s.closed = True
            raise AuthError(
                "your account was disabled or its role changed; log in again"
                if not disabled
                else "this account is disabled; ask an administrator"
            )
        if s.must_change_password and not allow_must_change:
            raise PermissionDenied("you must change your password before anything else")
        if roles and s.role not in roles:
            raise PermissionDenied(f"a {s.role} may not do this (needs: {' or '.join(roles)})")
        s.last_active = now

    # ----------------------------------------------------------------- accounts

    def login(self, username: str, password: str) -> UserSession:
        """Check the password; count failures and lock the account after too many."""
        now = self._now()
        with self._write(None, username) as tx:
            user = repo.user_by_name(tx.session, username)
            if user is None:
                # Check a password anyway so an unknown ID takes as long as a known one.
                verify_password(_timing_hash(), password)
                tx.audit("user.login_failed", "user", username, reason="unknown user ID")
                failure = self._generic_login_failure()
            elif user.disabled:
                tx.audit("user.login_failed", "user", username, reason="account disabled")
                failure = "this account is disabled; ask an administrator"
            elif user.locked_until and _parse_time(user.locked_until) > now:
                tx.audit("user.login_failed", "user", username, reason="account locked")
                until = _parse_time(user.locked_until)
                mins = max(1, round((until - now).total_seconds() / 60))
                failure = (
                    f"this account is locked after repeated failed log-ins; try again in "
                    f"{mins} minute(s) or ask an administrator"
                )
            elif not verify_password(user.password_hash, password):
                failure = self._count_failure(tx, user, now, at_login=True)
            else:
                failure = ""
                self._reset_failures(tx, user, "successful log-in")
                if needs_rehash(user.password_hash):
                    user.password_hash = hash_password(password)
                    tx.audit("user.rehash", "user", username, reason="hash parameters changed")
                session = UserSession(
                    user.id,
                    user.username,
                    user.full_name,
                    user.role,
                    new_code(16),
                    now,
                    now,
                    must_change_password=user.must_change_password,
                )
                tx.event("login", username, {"role": user.role}, session.id)
        if failure:
            raise AuthError(failure)
        return session

    @staticmethod
    def _reset_failures(tx: Tx, user: Any, reason: str) -> None:
        """Clear a failure count or lockout after a correct password (audited)."""
        if not (user.failed_logins or user.locked_until):
            return
        tx.audit(
            "user.unlock",
            "user",
            user.username,
            old={"failed_logins": user.failed_logins, "locked_until": user.locked_until},
            new={"failed_logins": 0, "locked_until": None},
            reason=reason,
        )
        user.failed_logins = 0
        user.locked_until = None

    def _count_failure(self, tx: Tx, user: Any, now: datetime, at_login: bool = False) -> str:
        if user.locked_until and _parse_time(user.locked_until) <= now:
            # A lockout that has run out starts a fresh count of consecutive failures.
            user.failed_logins = 0
            user.locked_until = None
        user.failed_logins += 1
        tx.audit(
            "user.login_failed",
            "user",
            user.username,
            reason="wrong password",
            new={"failed_logins": user.failed_logins},
        )
        if user.failed_logins >= self.settings.lockout_attempts:
            until = now + timedelta(minutes=self.settings.lockout_minutes)
            user.locked_until = _fmt_time(until)
            tx.audit(
                "user.lockout",
                "user",
                user.username,
                new={"locked_until": user.locked_until},
                reason=f"{user.failed_logins} consecutive failed log-ins",
            )
            return (
                f"wrong password; the account is now locked for "
                f"{self.settings.lockout_minutes:g} minutes"
            )
        if at_login:
            # The same words as for an unknown user ID, so IDs cannot be probed.
            return self._generic_login_failure()
        left = self.settings.lockout_attempts - user.failed_logins
        return f"wrong password ({left} attempt(s) left before the account locks)"

    def _generic_login_failure(self) -> str:
        return (
            f"wrong user ID or password (after {self.settings.lockout_attempts} failed attempts "
            f"in a row an account locks for {self.settings.lockout_minutes:g} minutes)"
        )

    def logout(self, s: UserSession) -> None:
        if s.closed:
            return
        with self._write(s) as tx:
            tx.event("logout", s.username, None, s.id)
        s.closed = True

    def lock(self, s: UserSession) -> None:
        """Lock the session now (the reader steps away)."""
        s.locked = True
        with self._write(s) as tx:
            tx.event("session.locked", s.username, {"by": "user"}, s.id)

    def unlock(self, s: UserSession, password: str) -> None:
        """Unlock a locked session with the same user's password."""
        if s.closed:
            raise AuthError("this session has ended; log in again")
        now = self._now()
        with self._write(s) as tx:
            user = repo.user_by_id(tx.session, s.user_id)
            if user.disabled:
                raise AuthError("this account is disabled")
            if user.locked_until and _parse_time(user.locked_until) > now:
                failure = "this account is locked after repeated failed attempts"
            elif not verify_password(user.password_hash, password):
                failure = self._count_failure(tx, user, now)
            else:
                failure = ""
                self._reset_failures(tx, user, "session unlocked with the password")
                tx.event("session.unlocked", s.username, None, s.id)
        if failure:
            raise AuthError(failure)
        s.locked = False
        s.last_active = now

    def change_password(self, s: UserSession, old: str, new: str) -> None:
        self._active(s, allow_must_change=True)
        try:
            check_policy(new, s.username)
        except PasswordPolicyError as exc:
            raise InvalidInput(str(exc)) from exc
        if old == new:
            raise InvalidInput("the new password must differ from the old one")
        with self._write(s) as tx:
            user = repo.user_by_id(tx.session, s.user_id)
            if user.locked_until and _parse_time(user.locked_until) > self._now():
                failure = "this account is locked after repeated failed attempts"
            elif not verify_password(user.password_hash, old):
                failure = self._count_failure(tx, user, self._now())
            else:
                failure = ""
                user.password_hash = hash_password(new)
                user.must_change_password = False
                tx.audit("user.password_changed", "user", s.username, reason="by the user")
        if failure:
            raise AuthError(failure)
        s.must_change_password = False

    def add_user(
        self, s: UserSession, username: str, full_name: str, role: str, password: str
    ) -> None:
        """Create an account (admin); it must change its password at first log-in."""
        self._active(s, "admin")
        _check_username(username)
        if role not in ROLES:
            raise InvalidInput(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
        if not full_name.strip():
            raise InvalidInput("a printed name is required (it appears on signatures)")
        try:
            check_policy(password, username)
        except PasswordPolicyError as exc:
            raise InvalidInput(str(exc)) from exc
        with self._write(s) as tx:
            if repo.user_by_name(tx.session, username) is not None:
                raise InvalidInput(f"the user ID {username!r} is taken")
            repo.add_user(
                tx.session,
                username,
                full_name,
                role,
                hash_password(password),
                must_change=True,
                now=tx.now,
            )
            tx.audit("user.add", "user", username, new={"role": role, "full_name": full_name})

    def list_users(self, s: UserSession) -> list[dict[str, Any]]:
        self._active(s, "admin", "coordinator")
        with self.store.read() as db:
            return [
                {
                    "username": u.username,
                    "full_name": u.full_name,
                    "role": u.role,
                    "disabled": u.disabled,
                    "locked": bool(u.locked_until and _parse_time(u.locked_until) > self._now()),
                    "must_change_password": u.must_change_password,
                }
                for u in repo.all_users(db)
            ]

    def disable_user(self, s: UserSession, username: str, reason: str) -> None:
        self._active(s, "admin")
        _need_reason(reason)
        if username == s.username:
            raise InvalidInput("you cannot disable your own account")
        with self._write(s) as tx:
            user = repo.user_by_name(tx.session, username)
            if user is None:
                raise NotFound(f"no user {username!r}")
            tx.audit(
                "user.disable",
                "user",
                username,
                old={"disabled": user.disabled},
                new={"disabled": True},
                reason=reason,
            )
            user.disabled = True

    def reset_password(self, s: UserSession, username: str, password: str, reason: str) -> None:
        """Set a temporary password (admin); the user must change it at next log-in."""
        self._active(s, "admin")
        _need_reason(reason)
        try:
            check_policy(password, username)
        except PasswordPolicyError as exc:
            raise InvalidInput(str(exc)) from exc
        with self._write(s) as tx:
            user = repo.user_by_name(tx.session, username)
            if user is None:
                raise NotFound(f"no user {username!r}")
            user.password_hash = hash_password(password)
            user.must_change_password = True
            user.failed_logins = 0
            user.locked_until = None
            tx.audit("user.password_reset", "user", username, reason=reason)

    # ----------------------------------------------------------------- trials

    def create_trial(
        self,
        s: UserSession,
        code: str,
        name: str = "",
        methods: Sequence[str] = ("svh",),
        design: str = "paired_blinded",
        visits: Sequence[tuple[str, float | None]] = (),
        protocol: Protocol | None = None,
    ) -> None:
        """Create a trial from its protocol (or from the common settings given directly)."""
        self._active(s, "coordinator", "admin")
        _check_code(code, "trial code")
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
        for v in protocol.visits:
            _check_code(v.label, "visit label")
        with self._write(s) as tx:
            if repo.trial_by_code(tx.session, code) is not None:
                raise InvalidInput(f"a trial {code!r} exists already")
            t = repo.add_trial(
                tx.session,
                code,
                protocol.name or code,
                ",".join(protocol.methods),
                protocol.design,
                tx.now,
            )
            t.config = protocol.to_json()
            tx.audit("trial.create", "trial", code, trial_id=t.id, new=protocol.to_dict())
            for v in protocol.visits:
                repo.add_visit(tx.session, t, v.label, v.week)
                tx.audit(
                    "visit.add",
                    "visit",
                    v.label,
                    trial_id=t.id,
                    new={"label": v.label, "nominal_week": v.week},
                )

    def trial_settings(self, s: UserSession, trial: str) -> dict[str, Any]:
        """The trial's protocol settings and whether the design is frozen yet."""
        self._active(s, "coordinator", "admin", "monitor")
        with self.store.read() as db:
            t = self._trial(db, trial)
            p = self._protocol(t)
            return {**p.to_dict(), "frozen": repo.has_signed_read(db, t), "locked": t.locked}

    def set_trial_setting(
        self, s: UserSession, trial: str, name: str, value: Any, reason: str
    ) -> None:
        """Change one setting with a reason (audited). Methods, design and visits freeze at
        the first signed read; nothing changes after lock."""
        self._active(s, "coordinator")
        _need_reason(reason)
        with self._write(s) as tx:
            t = self._trial(tx.session, trial)
            self._not_locked(t)
            old = self._protocol(t)
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
                new={name: new.to_dict()[name]},
                reason=reason,
            )

    def _protocol(self, t: Any) -> Protocol:
        if t.config and t.config != "{}":
            return protocol_from_json(t.config)
        return Protocol(
            code=t.code,
            name=t.name,
            methods=tuple(t.methods.split(",")),
            design=t.design,
            visits=tuple(VisitDef(v.label, v.nominal_week) for v in t.visits),
        )

    def list_trials(self, s: UserSession) -> list[dict[str, Any]]:
        """The trials; readers and adjudicators get code and name only (visit labels, dates and
        designs are for the people who run the trial)."""
        self._active(s)
        with self.store.read() as db:
            if s.role in ("reader", "adjudicator"):
                return [{"code": t.code, "name": t.name} for t in repo.all_trials(db)]
            return [
                {
                    "code": t.code,
                    "name": t.name,
                    "methods": t.methods.split(","),
                    "design": t.design,
                    "locked": t.locked,
                    "created_at": t.created_at,
                    "visits": [v.label for v in sorted(t.visits, key=lambda v: v.id)],
                }
                for t in repo.all_trials(db)
            ]

    def add_visit(
        self, s: UserSession, trial: str, label: str, nominal_week: float | None = None
    ) -> None:
        self._active(s, "coordinator", "admin")
        _check_code(label, "visit label")
        with self._write(s) as tx:
            t = self._trial(tx.session, trial)
            if repo.visit_by_label(tx.session, t, label) is not None:
                raise InvalidInput(f"trial {trial} has a visit {label} already")
            repo.add_visit(tx.session, t, label, nominal_week)
            tx.audit(
                "visit.add",
                "visit",
                label,
                trial_id=t.id,
                new={"label": label, "nominal_week": nominal_week},
            )

    def add_patient(self, s: UserSession, trial: str, real_id: str) -> str:
        """Register a patient; returns the random opaque code everyone else sees."""
        self._active(s, "coordinator")
        if not real_id.strip():
            raise InvalidInput("a patient identifier is required")
        with self._write(s) as tx:
            t = self._trial(tx.session, trial)
            if repo.patient_by_real_id(tx.session, t, real_id) is not None:
                raise InvalidInput(f"patient {real_id!r} is in trial {trial} already")
            p = repo.add_patient(tx.session, t, real_id, self._unique_patient_code(tx, t), tx.now)
            # The audit trail holds the code only: monitors and readers may read it.
            tx.audit("patient.add", "patient", p.code, trial_id=t.id, new={"code": p.code})
            return p.code

    def _unique_patient_code(self, tx: Tx, t: Any) -> str:
        while True:
            code = new_code(8)
            if repo.patient_by_code(tx.session, t, code) is None:
                return code

    def list_patients(self, s: UserSession, trial: str) -> list[dict[str, Any]]:
        """Patients by code; the real identifier only for coordinators."""
        self._active(s, "coordinator", "admin", "monitor")
        with self.store.read() as db:
            t = self._trial(db, trial)
            out = []
            for p in repo.patients_of(db, t):
                row: dict[str, Any] = {"code": p.code}
                if s.role == "coordinator":
                    row["real_id"] = p.real_id
                out.append(row)
            return out

    def _trial(self, db: Any, code: str) -> Any:
        t = repo.trial_by_code(db, code)
        if t is None:
            raise NotFound(f"no trial {code!r}")
        return t

    # ----------------------------------------------------------------- reads

    def start_read(
        self,
        s: UserSession,
        trial: str,
        patient_code: str,
        visit: str,
        method: str = "svh",
        read_type: str = "primary",
    ) -> str:
        """Open a new read of a patient at a visit for the calling reader; returns its code."""
        self._active(s, "reader", "adjudicator")
        if read_type not in READ_TYPES or read_type == "imported":
            raise InvalidInput(f"a reader cannot start a {read_type!r} read")
        if read_type == "adjudication" and s.role != "adjudicator":
            raise PermissionDenied("only an adjudicator starts adjudication reads")
        with self._write(s) as tx:
            t = self._trial(tx.session, trial)
            self._not_locked(t)
            if method not in t.methods.split(","):
                raise InvalidInput(f"trial {trial} is not scored with {method}")
            p = repo.patient_by_code(tx.session, t, patient_code)
            v = repo.visit_by_label(tx.session, t, visit)
            if p is None or v is None:
                raise NotFound("no such case in this trial")
            existing = repo.find_read(tx.session, t, p, v, s.user_id, method, read_type)
            if existing is not None and existing.status != "void":
                return str(existing.code)
            r = repo.add_read(
                tx.session,
                t,
                p,
                v,
                s.user_id,
                method,
                read_type,
                repo.unique_read_code(tx.session),
                tx.now,
            )
            tx.audit(
                "read.start",
                "read",
                r.code,
                trial_id=t.id,
                new={"method": method, "read_type": read_type},
            )
            return str(r.code)

    @staticmethod
    def _own_case(s: UserSession, db: Any, case_code: str) -> tuple[Any, Any, Any]:
        """A case of the calling reader's worklist with its worklist and trial; NotFound (the
        same answer as for a code that does not exist) for anyone else's."""
        c = repo.case_by_code(db, case_code)
        w = db.get(Worklist, c.worklist_id) if c is not None else None
        if c is None or w is None or w.reader_id != s.user_id:
            raise NotFound("no such case")
        camp = db.get(Campaign, w.campaign_id)
        return c, w, repo.trial_by_id(db, camp.trial_id)

    def _own_read(self, s: UserSession, db: Any, code: str, write: bool) -> Any:
        r = repo.read_by_code(db, code)
        if r is None:
            raise NotFound("no such read")
        if s.role in ("reader", "adjudicator"):
            if r.reader_id != s.user_id:
                # The same answer as for a read that does not exist: nothing to learn.
                raise NotFound("no such read")
        elif write:
            raise PermissionDenied(f"a {s.role} does not enter scores")
        elif s.role not in ("coordinator", "monitor"):
            # Administrators keep the system, not the trial: they do not see scores.
            raise PermissionDenied(f"a {s.role} does not see reads")
        return r

    def _not_locked(self, trial: Any) -> None:
        if trial.locked:
            raise Locked(f"the reading of trial {trial.code} is locked: no read can change")

    def get_read(self, s: UserSession, code: str) -> ReadView:
        """A read with its scores. Readers get it blinded: no patient code, visit label or
        read type (a re-read must look like any other read)."""
        self._active(s)
        with self.store.read() as db:
            r = self._own_read(s, db, code, write=False)
            view: ReadView = repo.read_view(db, r, ReadView)
            if s.role == "reader":
                view = replace(view, patient_code="", visit="", read_type="")
            return view

    def set_score(
        self,
        s: UserSession,
        code: str,
        area: Area,
        value: AreaScore,
        reason_text: str = "",
        change_reason: str = "",
        expected_version: int | None = None,
    ) -> ScoreAck:
        """Save one area's score (or not-assessable reason) in its own transaction.

        Changing a signed read needs ``change_reason``: the signature is voided and the read
        must be signed again.
        """
        return self.set_scores(
            s,
            code,
            {area: value},
            {area: reason_text} if reason_text else None,
            change_reason,
            expected_version,
        )[0]

    def set_scores(
        self,
        s: UserSession,
        code: str,
        values: Mapping[Area, AreaScore],
        reason_texts: Mapping[Area, str] | None = None,
        change_reason: str = "",
        expected_version: int | None = None,
    ) -> list[ScoreAck]:
        """Save several areas of one read in one transaction, each change audited on its own
        row (used for "rest of this region = 0" and for bulk entry); all or nothing."""
        self._active(s, "reader", "adjudicator")
        texts = reason_texts or {}
        acks: list[ScoreAck] = []
        with self._write(s) as tx:
            r = self._own_read(s, tx.session, code, write=True)
            t = repo.trial_by_id(tx.session, r.trial_id)
            self._not_locked(t)
            method = get_method(r.method)
            for area, value in values.items():
                try:
                    check_score(method, area, value)
                except ReadError as exc:
                    raise InvalidInput(str(exc)) from exc
                if value.reason == "other" and not texts.get(area, "").strip():
                    raise InvalidInput(f"{area}: describe the reason 'other'")
            if expected_version is not None and r.version != expected_version:
                raise Conflict(
                    f"this read was changed elsewhere (version {r.version}, you had "
                    f"{expected_version}); the current value is shown"
                )
            if r.status == "void":
                raise InvalidInput("this read is void")
            for area, value in values.items():
                reason_text = texts.get(area, "")
                row = repo.score_row(tx.session, r, area)
                old = None if row is None else _score_json(repo.row_score(row), row.reason_text)
                new = _score_json(value, reason_text)
                if old == new:
                    acks.append(ScoreAck(code, area, r.version, r.status))
                    continue
                if r.status == "signed":
                    if not change_reason.strip():
                        raise InvalidInput(
                            "this read is signed: give a reason to change it (the signature is "
                            "voided and the read must be signed again)"
                        )
                    self._void_signature(tx, s, r, change_reason)
                repo.put_score(tx.session, r, area, value, reason_text, method.order(area), tx.now)
                r.updated_at = tx.now
                tx.session.flush()
                tx.audit(
                    "score.set",
                    "read",
                    r.code,
                    trial_id=r.trial_id,
                    old={"area": str(area), **(old or {})} if old else {"area": str(area)},
                    new={"area": str(area), **(new or {})},
                    reason=change_reason,
                )
                acks.append(ScoreAck(code, area, r.version, r.status))
        return acks

    def clear_score(
        self, s: UserSession, code: str, area: Area, change_reason: str = ""
    ) -> ScoreAck:
        """Remove an area's entry (undo of a first entry)."""
        self._active(s, "reader", "adjudicator")
        with self._write(s) as tx:
            r = self._own_read(s, tx.session, code, write=True)
            self._not_locked(repo.trial_by_id(tx.session, r.trial_id))
            if r.status == "signed":
                if not change_reason.strip():
                    raise InvalidInput("this read is signed: give a reason to change it")
                self._void_signature(tx, s, r, change_reason)
            row = repo.score_row(tx.session, r, area)
            if row is None:
                return ScoreAck(code, area, r.version, r.status)
            old = _score_json(repo.row_score(row), row.reason_text)
            tx.session.delete(row)
            r.updated_at = tx.now
            tx.session.flush()
            tx.audit(
                "score.clear",
                "read",
                r.code,
                trial_id=r.trial_id,
                old={"area": str(area), **(old or {})},
                reason=change_reason,
            )
            return ScoreAck(code, area, r.version, r.status)

    def set_note(self, s: UserSession, code: str, note: str) -> None:
        self._active(s, "reader", "adjudicator")
        with self._write(s) as tx:
            r = self._own_read(s, tx.session, code, write=True)
            self._not_locked(repo.trial_by_id(tx.session, r.trial_id))
            if r.status == "signed":
                raise InvalidInput("this read is signed: reopen it with a reason first")
            tx.audit("read.note", "read", r.code, trial_id=r.trial_id, old=r.note, new=note)
            r.note = note
            r.updated_at = tx.now

    def sign_read(
        self,
        s: UserSession,
        code: str,
        password: str,
        username: str | None = None,
        meaning: str = "authored",
    ) -> str:
        """Sign a complete read (Part 11): user ID and password at the session's first
        signature, the password after that. Returns the signed content's hash."""
        self._active(s, "reader", "adjudicator")
        if meaning not in MEANINGS:
            raise InvalidInput(f"unknown signature meaning {meaning!r}")
        if not s.signed_once and username is None:
            raise AuthError("the first signature of a session needs your user ID and password")
        if username is not None and username != s.username:
            raise AuthError("the user ID does not match the logged-in user")
        digest = ""
        with self._write(s) as tx:
            user = repo.user_by_id(tx.session, s.user_id)
            failure = self._signature_refusal(tx, user, password)
            if not failure:
                r = self._own_read(s, tx.session, code, write=True)
                self._not_locked(repo.trial_by_id(tx.session, r.trial_id))
                if r.status == "signed":
                    raise InvalidInput("this read is signed already")
                view = repo.read_view(tx.session, r, ReadView)
                missing = [a.area for a in get_method(r.method).areas if a.area not in view.scores]
                if missing:
                    raise InvalidInput(
                        f"{len(missing)} area(s) are neither scored nor marked not assessable "
                        f"(first: {missing[0]})"
                    )
                digest = self._sign_in_tx(tx, user, r, meaning)
        if failure:
            raise AuthError(failure)
        s.signed_once = True
        return digest

    def _void_signature(self, tx: Tx, s: UserSession, r: Any, reason: str) -> None:
        user = repo.user_by_id(tx.session, s.user_id)
        sig = repo.add_signature(
            tx.session,
            "read",
            r.code,
            "void",
            user,
            "authored",
            tx.now,
            repo.last_signature(tx.session, r.code).content_hash,
            reason,
        )
        r.status = "in_progress"
        tx.session.flush()
        tx.audit(
            "read.void_signature",
            "read",
            r.code,
            trial_id=r.trial_id,
            old={"status": "signed"},
            new={"status": "in_progress", "signature": sig.id},
            reason=reason,
        )

    def reopen_read(self, s: UserSession, code: str, reason: str) -> None:
        """Reopen a signed read for changes: the signature is voided, with the reason."""
        self._active(s, "reader", "adjudicator")
        _need_reason(reason)
        with self._write(s) as tx:
            r = self._own_read(s, tx.session, code, write=True)
            self._not_locked(repo.trial_by_id(tx.session, r.trial_id))
            if r.status != "signed":
                raise InvalidInput("only a signed read is reopened")
            self._void_signature(tx, s, r, reason)

    def reading_trials(self, s: UserSession) -> list[dict[str, Any]]:
        """The trials in which the calling reader has a worklist: code, name, cases and cases
        signed (what the workstation offers after log-in)."""
        self._active(s, "reader", "adjudicator")
        out: list[dict[str, Any]] = []
        with self.store.read() as db:
            for t in repo.all_trials(db):
                cases = [
                    c
                    for camp in repo.campaigns_of(db, t)
                    for w in repo.worklists_of(db, camp)
                    if w.reader_id == s.user_id
                    for c in repo.cases_of(db, w)
                ]
                if cases:
                    signed = sum(self._case_status(db, c) == "signed" for c in cases)
                    out.append(
                        {"code": t.code, "name": t.name, "cases": len(cases), "signed": signed}
                    )
        return out

    def sign_case(
        self,
        s: UserSession,
        case_code: str,
        password: str,
        username: str | None = None,
        meaning: str = "authored",
    ) -> list[str]:
        """Sign every read of one of the reader's cases together (spec §8: a patient's reads
        for a reader are signed as one case), in one transaction: all or none. Each read gets
        its own signature and audit row. Returns the signed contents' hashes, visit by visit."""
        self._active(s, "reader", "adjudicator")
        if meaning not in MEANINGS:
            raise InvalidInput(f"unknown signature meaning {meaning!r}")
        if not s.signed_once and username is None:
            raise AuthError("the first signature of a session needs your user ID and password")
        if username is not None and username != s.username:
            raise AuthError("the user ID does not match the logged-in user")
        failure = ""
        digests: list[str] = []
        with self._write(s) as tx:
            user = repo.user_by_id(tx.session, s.user_id)
            failure = self._signature_refusal(tx, user, password)
            if not failure:
                c, _, t = self._own_case(s, tx.session, case_code)
                self._not_locked(t)
                reads = self._case_reads(tx.session, c, t)
                if not reads:
                    raise InvalidInput("this case has not been opened yet")
                if all(r.status == "signed" for _, r in reads):
                    raise InvalidInput("this case is signed already")
                problems = []
                for letter, r in reads:
                    view = repo.read_view(tx.session, r, ReadView)
                    left = [a.area for a in get_method(r.method).areas if a.area not in view.scores]
                    if left:
                        problems.append(f"visit {letter}: {len(left)} (first: {left[0]})")
                if problems:
                    raise InvalidInput(
                        "areas neither scored nor marked not assessable: " + "; ".join(problems)
                    )
                for _, r in reads:
                    if r.status != "signed":
                        digests.append(self._sign_in_tx(tx, user, r, meaning, case=c.code))
                tx.event("case.signed", case_code, {"reads": len(digests)}, s.id, t.id)
        if failure:
            raise AuthError(failure)
        s.signed_once = True
        return digests

    def reopen_case(self, s: UserSession, case_code: str, reason: str) -> None:
        """Reopen a signed case for changes: every read's signature is voided, with the
        reason; the case must be signed again."""
        self._active(s, "reader", "adjudicator")
        _need_reason(reason)
        with self._write(s) as tx:
            c, _, t = self._own_case(s, tx.session, case_code)
            self._not_locked(t)
            signed = [r for _, r in self._case_reads(tx.session, c, t) if r.status == "signed"]
            if not signed:
                raise InvalidInput("only a signed case is reopened")
            for r in signed:
                self._void_signature(tx, s, r, reason)

    @staticmethod
    def _case_reads(db: Any, c: Any, t: Any) -> list[tuple[str, Any]]:
        """The case's current (not void) reads, with their visit letters, in letter order."""
        reads = [r for r in repo.reads_of_case(db, c) if r.status != "void"]
        labels = json.loads(c.visits)
        label_of = {v.id: v.label for v in t.visits}
        by_visit = {label_of[r.visit_id]: r for r in reads}
        return [(LETTERS[i], by_visit[v]) for i, v in enumerate(labels) if v in by_visit]

    def _signature_refusal(self, tx: Tx, user: Any, password: str) -> str:
        """Why a signature's password check fails ("" when it passes); a wrong password counts
        towards the lockout like a failed log-in."""
        if user.disabled:
            return "this account is disabled"
        if user.locked_until and _parse_time(user.locked_until) > self._now():
            return "this account is locked after repeated failed attempts"
        if not verify_password(user.password_hash, password):
            return self._count_failure(tx, user, self._now())
        return ""

    def _sign_in_tx(self, tx: Tx, user: Any, r: Any, meaning: str, case: str = "") -> str:
        view = repo.read_view(tx.session, r, ReadView)
        digest = content_hash(view)
        sig = repo.add_signature(
            tx.session, "read", r.code, "sign", user, meaning, tx.now, digest, ""
        )
        old_status = r.status
        r.status = "signed"
        r.updated_at = tx.now
        tx.session.flush()
        new: dict[str, Any] = {
            "status": "signed",
            "signature": sig.id,
            "meaning": meaning,
            "printed_name": user.full_name,
            "content_hash": digest,
            "signed_at": tx.now,
        }
        if case:
            new["case"] = case
        tx.audit(
            "read.sign", "read", r.code, trial_id=r.trial_id, old={"status": old_status}, new=new
        )
        return digest

    def my_reads(self, s: UserSession, trial: str) -> list[dict[str, Any]]:
        """The calling reader's reads in a trial: read code, status and method only."""
        self._active(s, "reader", "adjudicator")
        with self.store.read() as db:
            t = self._trial(db, trial)
            return [
                {"code": r.code, "status": r.status, "method": r.method}
                for r, _ in repo.reads_of_reader(db, t, s.user_id)
            ]

    # ----------------------------------------------------------------- worklists

    def assign_reader(
        self, s: UserSession, trial: str, username: str, patient_codes: Sequence[str] | None = None
    ) -> None:
        """Assign a reader to a trial: all patients (default) or the listed patient codes."""
        self._active(s, "coordinator")
        with self._write(s) as tx:
            t = self._trial(tx.session, trial)
            self._not_locked(t)
            u = repo.user_by_name(tx.session, username)
            if u is None or u.role not in ("reader", "adjudicator"):
                raise InvalidInput(f"{username!r} is not a reader or adjudicator")
            patients: list[Any] = []
            for code in patient_codes or ():
                p = repo.patient_by_code(tx.session, t, code)
                if p is None:
                    raise NotFound(f"no patient {code!r} in trial {trial}")
                patients.append(p)
            a = repo.assignment(tx.session, t, u.id)
            old = None
            if a is None:
                a = Assignment(trial_id=t.id, user_id=u.id, scope="all", created_at=tx.now)
                tx.session.add(a)
                tx.session.flush()
            else:
                old = {
                    "scope": a.scope,
                    "patients": [p.code for p in repo.assigned_patients(tx.session, t, a)]
                    if a.scope == "subset"
                    else None,
                }
                repo.clear_assignment_patients(tx.session, a)
            a.scope = "subset" if patient_codes else "all"
            for p in patients:
                tx.session.add(AssignmentPatient(assignment_id=a.id, patient_id=p.id))
            tx.audit(
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

    def add_campaign(
        self, s: UserSession, trial: str, name: str, new_visits: Sequence[tuple[str, float | None]]
    ) -> int:
        """Open a new reading campaign for visits added later (an extension year): its cases
        read the new visits together with the earlier ones. Returns the campaign number."""
        self._active(s, "coordinator")
        if not new_visits:
            raise InvalidInput("a new campaign needs at least one new visit")
        with self._write(s) as tx:
            t = self._trial(tx.session, trial)
            self._not_locked(t)
            campaigns = repo.campaigns_of(tx.session, t)
            if not campaigns:
                raise InvalidInput("generate the first worklists before adding a campaign")
            proto = self._protocol(t)
            added = []
            for label, week in new_visits:
                _check_code(label, "visit label")
                if repo.visit_by_label(tx.session, t, label) is not None:
                    raise InvalidInput(f"trial {trial} has a visit {label} already")
                repo.add_visit(tx.session, t, label, week)
                added.append(VisitDef(label, week))
                tx.audit(
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
            tx.session.add(
                Campaign(
                    trial_id=t.id,
                    number=number,
                    name=name,
                    visits=json.dumps(labels),
                    created_at=tx.now,
                )
            )
            tx.audit(
                "campaign.add",
                "trial",
                trial,
                trial_id=t.id,
                new={"campaign": number, "name": name, "visits": labels},
            )
            return number

    def generate_worklists(
        self,
        s: UserSession,
        trial: str,
        readers: Sequence[str] | None = None,
        campaign: int | None = None,
    ) -> dict[str, int]:
        """Make the worklists of the assigned readers (default: all without one) from fresh
        random seeds, stored with their inputs so every order can be regenerated."""
        self._active(s, "coordinator")
        made: dict[str, int] = {}
        with self._write(s) as tx:
            t = self._trial(tx.session, trial)
            self._not_locked(t)
            proto = self._protocol(t)
            camp = self._campaign(tx, t, campaign, proto)
            labels = json.loads(camp.visits)
            visit_ids = {v.label: v.id for v in t.visits}
            with_images = repo.visits_with_images(tx.session, t)
            assigned = repo.assignments_of(tx.session, t)
            if readers is not None:
                names = set(readers)
                unknown = names - {u.username for _, u in assigned}
                if unknown:
                    raise InvalidInput(f"not assigned to {trial}: {', '.join(sorted(unknown))}")
                assigned = [(a, u) for a, u in assigned if u.username in names]
            if not assigned:
                raise InvalidInput(f"no readers are assigned to {trial}")
            taken = set(repo.all_case_codes(tx.session))
            for a, u in assigned:
                if u.role != "reader":
                    continue
                if repo.worklist(tx.session, camp, u.id) is not None:
                    if readers is None:
                        continue
                    raise InvalidInput(
                        f"{u.username} has a worklist in campaign {camp.number}; its seed is kept"
                    )
                patients = repo.assigned_patients(tx.session, t, a)
                visits: dict[str, list[str]] = {}
                for p in patients:
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
                while True:
                    seed = secrets.token_hex(16)
                    cases = generate_worklist(self._worklist_input(seed, inputs))
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
                by_code = {p.code: p for p in patients}
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
                    json.dumps(
                        [[c.code, c.patient, list(c.visits), c.read_type] for c in cases]
                    ).encode()
                ).hexdigest()
                tx.audit(
                    "worklist.generate",
                    "worklist",
                    f"{trial}/{camp.number}/{u.username}",
                    trial_id=t.id,
                    new={
                        "seed": seed,
                        "inputs": inputs,
                        "cases": len(cases),
                        "rereads": sum(c.read_type == "reread" for c in cases),
                        "sha256": digest,
                    },
                )
                made[u.username] = len(cases)
        return made

    @staticmethod
    def _worklist_input(seed: str, inputs: dict[str, Any]) -> WorklistInput:
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

    def _campaign(self, tx: Tx, t: Any, number: int | None, proto: Protocol) -> Any:
        camps = repo.campaigns_of(tx.session, t)
        if not camps:
            if number not in (None, 1):
                raise NotFound(f"trial {t.code} has no campaign {number}")
            labels = [v.label for v in proto.visits] or [v.label for v in t.visits]
            if not labels:
                raise InvalidInput(f"trial {t.code} has no visits")
            c = Campaign(
                trial_id=t.id, number=1, name="main", visits=json.dumps(labels), created_at=tx.now
            )
            tx.session.add(c)
            tx.session.flush()
            tx.audit(
                "campaign.add",
                "trial",
                t.code,
                trial_id=t.id,
                new={"campaign": 1, "name": "main", "visits": labels},
            )
            return c
        if number is None:
            return camps[-1]
        for c in camps:
            if c.number == number:
                return c
        raise NotFound(f"trial {t.code} has no campaign {number}")

    def worklist(
        self, s: UserSession, trial: str, reader: str | None = None, campaign: int | None = None
    ) -> list[dict[str, Any]]:
        """A worklist as its viewer may see it.

        A reader sees their own cases only: opaque code, "n of N" and status. A monitor sees
        case codes and status. A coordinator also sees patient, visit order and read type.
        """
        self._active(s, "reader", "coordinator", "monitor", "admin")
        if s.role == "reader":
            if reader not in (None, s.username):
                raise PermissionDenied("a reader sees only their own worklist")
            reader = s.username
        with self.store.read() as db:
            t = self._trial(db, trial)
            camps = repo.campaigns_of(db, t)
            if campaign is not None:
                camps = [c for c in camps if c.number == campaign]
            out: list[dict[str, Any]] = []
            for camp in camps:
                for w in repo.worklists_of(db, camp):
                    u = repo.user_by_id(db, w.reader_id)
                    if reader is not None and u.username != reader:
                        continue
                    cases = repo.cases_of(db, w)
                    for c in cases:
                        row: dict[str, Any] = {
                            "code": c.code,
                            "progress": f"{c.position + 1} of {len(cases)}",
                            "status": self._case_status(db, c),
                        }
                        if s.role != "reader":
                            row["reader"] = u.username
                            row["campaign"] = camp.number
                        if s.role == "coordinator":
                            p = db.get(Patient, c.patient_id)
                            row.update(
                                position=c.position,
                                patient=p.code if p else None,
                                visits=json.loads(c.visits),
                                read_type=c.read_type,
                                original_position=c.original_position,
                            )
                        out.append(row)
            return out

    @staticmethod
    def _case_status(db: Any, c: Any) -> str:
        reads = [r for r in repo.reads_of_case(db, c) if r.status != "void"]
        if not reads:
            return "not started"
        n_visits = len(json.loads(c.visits))
        if len(reads) >= n_visits and all(r.status == "signed" for r in reads):
            return "signed"
        return "in progress"

    def verify_worklists(self, s: UserSession, trial: str) -> list[str]:
        """Regenerate every worklist from its stored seed and inputs; list any difference."""
        self._active(s, "coordinator", "monitor", "admin")
        problems: list[str] = []
        with self.store.read() as db:
            t = self._trial(db, trial)
            for camp in repo.campaigns_of(db, t):
                for w in repo.worklists_of(db, camp):
                    inputs = json.loads(w.inputs)
                    again = generate_worklist(self._worklist_input(w.seed, inputs))
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

    def open_case(
        self, s: UserSession, case_code: str, method: str | None = None
    ) -> dict[str, Any]:
        """Open one of the reader's cases: its visits as letters A, B, C with their read codes
        (reads are started on first opening). Nothing else about the visits is returned."""
        self._active(s, "reader", "adjudicator")
        with self._write(s) as tx:
            c, _, t = self._own_case(s, tx.session, case_code)
            methods = t.methods.split(",")
            method = method or methods[0]
            if method not in methods:
                raise InvalidInput(f"this trial is not scored with {method}")
            p = tx.session.get(Patient, c.patient_id)
            assert p is not None
            existing = {
                (r.visit_id, r.method): r
                for r in repo.reads_of_case(tx.session, c)
                if r.status != "void"
            }
            letters: dict[str, str] = {}
            for i, label in enumerate(json.loads(c.visits)):
                v = repo.visit_by_label(tx.session, t, label)
                assert v is not None
                r = existing.get((v.id, method))
                if r is None:
                    self._not_locked(t)
                    r = repo.add_read(
                        tx.session,
                        t,
                        p,
                        v,
                        s.user_id,
                        method,
                        c.read_type,
                        repo.unique_read_code(tx.session),
                        tx.now,
                    )
                    r.case_id = c.id
                    tx.audit(
                        "read.start",
                        "read",
                        r.code,
                        trial_id=t.id,
                        new={"case": c.code, "method": method, "read_type": c.read_type},
                    )
                letters[LETTERS[i]] = r.code
            tx.event("case.opened", c.code, None, s.id, t.id)
            return {
                "code": c.code,
                "reads": letters,
                "method": method,
                "status": self._case_status(tx.session, c),
            }

    # ----------------------------------------------------------------- images

    def import_images(
        self,
        s: UserSession,
        trial: str,
        paths: Sequence[Path],
        manifest: Any = None,
        progress: Any = None,
        **limits: Any,
    ) -> Any:
        """Import files, folders and zips (coordinator); every file's outcome is reported.

        See :mod:`scorer.intake` for the steps; ``limits`` pass to it (workers, timeout_s,
        memory_mb, max_megapixels)."""
        from scorer.intake import import_images

        return import_images(self, s, trial, paths, manifest, progress, **limits)

    def images(self, s: UserSession, trial: str) -> list[dict[str, Any]]:
        """The trial's images for the coordinator: code, patient code, visit, regions, flags
        and the source file name (which may identify the patient)."""
        self._active(s, "coordinator")
        with self.store.read() as db:
            t = self._trial(db, trial)
            out = []
            for img in repo.images_of(db, t):
                p = db.get(Patient, img.patient_id) if img.patient_id else None
                v = repo.visit_by_id(db, img.visit_id) if img.visit_id else None
                out.append(
                    {
                        "code": img.code,
                        "patient": p.code if p else None,
                        "visit": v.label if v else None,
                        "regions": sorted(r.region for r in img.regions),
                        "flags": [f for f in img.flags.split("; ") if f],
                        "acquisition_date": img.acquisition_date,
                        "rows": img.rows,
                        "columns": img.columns,
                        "source": img.source_name,
                    }
                )
            return out

    def export_image_png(
        self,
        s: UserSession,
        image_code: str,
        out: Path,
        window: str | None = None,
        max_size: int | None = None,
    ) -> Path:
        """Write exactly what a reader sees of an image by default (blinded copy, bone bright,
        default window; or ``window`` "C,W") to a PNG, for quality control and teaching."""
        from scorer.imaging.radiograph import open_radiograph
        from scorer.imaging.render import export_png
        from scorer.imaging.windowing import parse_window

        self._active(s, "coordinator", "admin")
        try:
            voi = parse_window(window) if window else None
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
        with self.store.read() as db:
            img = repo.image_by_code(db, image_code)
            if img is None:
                raise NotFound(f"no image {image_code!r}")
            path, sha = img.reader_path, img.reader_sha256
        try:
            image = open_radiograph(path, cache_dir=self.cache_dir, content_sha256=sha)
            written = export_png(image, out, voi=voi, max_size=max_size)
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"image {image_code} cannot be exported: {exc}") from exc
        with self._write(s) as tx:
            tx.event("export", image_code, {"what": "image png", "window": window}, s.id)
        return written

    @property
    def cache_dir(self) -> Path:
        """Local, per-workstation cache of image pyramids (never on the shared store)."""
        return self.store.location.data_dir / "cache"

    def case_images(self, s: UserSession, case_code: str) -> dict[str, list[dict[str, Any]]]:
        """The images of one of the reader's cases, by visit letter (A, B, C): image code,
        regions covered, the readers' copy path and its SHA-256 (the cache key). Nothing
        that identifies the visit, its date or the patient."""
        self._active(s, "reader", "adjudicator")
        with self.store.read() as db:
            c, _, t = self._own_case(s, db, case_code)
            out: dict[str, list[dict[str, Any]]] = {}
            for i, label in enumerate(json.loads(c.visits)):
                v = repo.visit_by_label(db, t, label)
                assert v is not None
                out[LETTERS[i]] = [
                    {
                        "image": img.code,
                        "regions": sorted(r.region for r in img.regions),
                        "path": img.reader_path,
                        "sha256": img.reader_sha256,
                    }
                    for img in repo.images_of_visit(db, c.patient_id, v.id)
                ]
            return out

    def raise_flag(self, s: UserSession, case_code: str, message: str) -> int:
        """A reader flags one of their cases to the coordinator (e.g. "visit B may be another
        patient"); returns the flag's number."""
        self._active(s, "reader", "adjudicator")
        if not message.strip():
            raise InvalidInput("write what the coordinator should look at")
        with self._write(s) as tx:
            c, _, t = self._own_case(s, tx.session, case_code)
            flag = ReaderFlag(
                case_id=c.id,
                raised_by=s.user_id,
                message=message.strip(),
                raised_at=tx.now,
                answer="",
            )
            tx.session.add(flag)
            tx.session.flush()
            tx.audit(
                "flag.raise",
                "case",
                c.code,
                trial_id=t.id,
                new={"flag": flag.id, "message": flag.message},
            )
            return int(flag.id)

    def flags(self, s: UserSession, trial: str, open_only: bool = True) -> list[dict[str, Any]]:
        """Reader flags of a trial: a coordinator sees all, a reader their own."""
        self._active(s, "reader", "adjudicator", "coordinator")
        with self.store.read() as db:
            t = self._trial(db, trial)
            out = []
            for f, case_code, reader in repo.flags_of(db, t):
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

    def answer_flag(self, s: UserSession, trial: str, flag_id: int, answer: str) -> None:
        """The coordinator answers a reader's flag and closes it (audited)."""
        self._active(s, "coordinator")
        if not answer.strip():
            raise InvalidInput("an answer is required to close a flag")
        with self._write(s) as tx:
            t = self._trial(tx.session, trial)
            f = tx.session.get(ReaderFlag, flag_id)
            if f is None or all(x.id != flag_id for x, _, _ in repo.flags_of(tx.session, t)):
                raise NotFound(f"no flag {flag_id} in trial {trial}")
            if f.closed_at:
                raise InvalidInput(f"flag {flag_id} is closed already")
            f.answer = answer.strip()
            f.answered_by = s.user_id
            f.closed_at = tx.now
            tx.audit("flag.answer", "flag", str(flag_id), trial_id=t.id, new={"answer": f.answer})

    # ----------------------------------------------------------------- events

    EVENT_KINDS = ("case.opened", "case.closed", "image.viewed")

    def log_event(
        self,
        s: UserSession,
        kind: str,
        subject: str = "",
        detail: dict[str, Any] | None = None,
        trial: str | None = None,
    ) -> None:
        """Record a fact for monitors: a case opened or closed, an image viewed (seconds)."""
        self._active(s)
        if kind not in self.EVENT_KINDS:
            raise InvalidInput(f"unknown event kind {kind!r}")
        with self._write(s) as tx:
            tid = self._trial(tx.session, trial).id if trial else None
            tx.event(kind, subject, detail, s.id, tid)

    def events(self, s: UserSession, username: str | None = None) -> list[dict[str, Any]]:
        self._active(s, "monitor", "admin", "coordinator")
        with self.store.read() as db:
            return [
                {
                    "seq": e.seq,
                    "at": e.at,
                    "username": e.username,
                    "session": e.session,
                    "kind": e.kind,
                    "subject": e.subject,
                    "detail": json.loads(e.detail) if e.detail else None,
                }
                for e in repo.events(db, username)
            ]

    def audit_trail(self, s: UserSession) -> list[dict[str, Any]]:
        self._active(s, "monitor", "admin", "coordinator")
        with self.store.read() as db:
            return [
                {
                    "seq": a.seq,
                    "at": a.at,
                    "username": a.username,
                    "action": a.action,
                    "entity": a.entity,
                    "entity_id": a.entity_id,
                    "old": a.old,
                    "new": a.new,
                    "reason": a.reason,
                }
                for a in repo.audit_rows(db)
            ]

    # ----------------------------------------------------------------- import / export

    def import_reads(self, s: UserSession, trial: str, data: bytes | str, source: str = "") -> int:
        """Import a reads CSV (spec §9) into a trial, all or nothing; returns reads added."""
        self._active(s, "coordinator")
        try:
            reads = parse_reads_csv(data, builtin_methods())
        except ReadsCsvError as exc:
            raise InvalidInput(f"{source or 'the file'} is not a valid reads CSV:\n{exc}") from exc
        raw = data.encode("utf-8") if isinstance(data, str) else data
        digest = hashlib.sha256(raw).hexdigest()
        added = 0
        with self._write(s) as tx:
            t = self._trial(tx.session, trial)
            self._not_locked(t)
            for r in reads:
                if r.trial != trial:
                    raise InvalidInput(
                        f"read {r.read_id} belongs to trial {r.trial!r}, not {trial!r}"
                    )
                if r.method not in t.methods.split(","):
                    raise InvalidInput(f"trial {trial} is not scored with {r.method}")
            for r in reads:
                existing = repo.read_by_code(tx.session, r.read_id)
                if existing is not None:
                    theirs = repo.to_core_read(tx.session, existing, real_ids=True)
                    if _same_read(theirs, r):
                        continue
                    raise InvalidInput(f"read {r.read_id} exists with other content")
                added += repo.import_read(
                    tx,
                    t,
                    r,
                    self._unique_patient_code(tx, t)
                    if repo.patient_by_real_id(tx.session, t, r.patient) is None
                    else "",
                )
            tx.audit(
                "reads.import",
                "trial",
                trial,
                trial_id=t.id,
                new={
                    "reads": added,
                    "rows": sum(len(r.scores) for r in reads),
                    "sha256": digest,
                    "source": Path(source).name if source else "",
                },
            )
        return added

    def export_reads(self, s: UserSession, trial: str, blinded: bool = False) -> str:
        """The trial's reads as the spec's CSV (coordinator); audited with the chain head."""
        self._active(s, "coordinator")
        with self._write(s) as tx:
            t = self._trial(tx.session, trial)
            reads = [
                repo.to_core_read(tx.session, r, real_ids=not blinded)
                for r in repo.reads_of_trial(tx.session, t)
            ]
            text = format_reads_csv(reads)
            digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
            tx.audit(
                "reads.export",
                "trial",
                trial,
                trial_id=t.id,
                new={"reads": len(reads), "sha256": digest, "blinded": blinded},
            )
            tx.event("export", trial, {"what": "reads", "sha256": digest}, s.id, t.id)
        return text

    # ----------------------------------------------------------------- verification

    def verify(self) -> Verification:
        """Verify the audit chain, the event chain, the receipts and every signature."""
        from scorer.store.audit import verify as verify_chains

        with self.store.read() as db:
            result = verify_chains(db, self.store.key, self.store.location.receipts_path)
            if result.ok:
                repo.verify_signatures(db, result, ReadView, content_hash)
        return result


class _TimedWrite:
    """A write transaction whose timestamps come from the workspace clock."""

    def __init__(self, cm: Any, now: str) -> None:
        self._cm = cm
        self._now = now

    def __enter__(self) -> Tx:
        try:
            tx: Tx = self._cm.__enter__()
        except StoreError as exc:
            raise ScorerError(str(exc)) from exc
        tx.now = self._now
        return tx

    def __exit__(self, *exc: Any) -> Any:
        try:
            return self._cm.__exit__(*exc)
        except StoreError as err:
            raise ScorerError(str(err)) from err


def _same_read(a: CoreRead, b: CoreRead) -> bool:
    return replace(a, read_id="") == replace(b, read_id="")


@functools.cache
def _timing_hash() -> str:
    """A hash to check passwords of unknown user IDs against (equal work, never matches)."""
    return hash_password(secrets.token_urlsafe(24))


def _need_reason(reason: str) -> None:
    if not reason or not reason.strip():
        raise InvalidInput("a reason is required")


def _check_username(name: str) -> None:
    if not name or len(name) > 64 or not all(c.isalnum() or c in "._-" for c in name):
        raise InvalidInput("a user ID is 1-64 letters, digits, dots, dashes or underscores")


def _check_code(code: str, what: str) -> None:
    if not code or len(code) > 64 or not all(c.isalnum() or c in "._-" for c in code):
        raise InvalidInput(f"a {what} is 1-64 letters, digits, dots, dashes or underscores")
