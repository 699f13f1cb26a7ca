"""The one Qt-free facade the GUI and the CLI call: log in, set up trials, score, sign, export.

Every operation checks the caller's role and ownership here (not only in windows), opens one
transaction, writes the change and its audit row together, and returns plain values.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import secrets
import sqlite3
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scorer.core.cells import csv_row, csv_text, formula_lead
from scorer.core.methods import REGIONS, Area, builtin_methods, get_method
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
from scorer.store.database import Store, StoreError, Tx
from scorer.store.database import database_exists as _database_exists
from scorer.store.location import Location, LocationError
from scorer.store.location import resolve as _resolve
from scorer.store.migrate import current_revision, head_revision, upgrade
from scorer.store.passwords import (
    HISTORY,
    PasswordPolicyError,
    check_policy,
    hash_password,
    needs_rehash,
    verify_password,
)
from scorer.store.schema import (
    ROLES,
    Adjudication,
    Assignment,
    AssignmentPatient,
    Campaign,
    Case,
    ImageRegion,
    MissingRegion,
    Patient,
    ReaderFlag,
    Release,
    Worklist,
)

DESIGNS = ("paired_blinded", "chronological", "single")
MEANINGS = ("authored", "reviewed", "approved")
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class ScorerError(Exception):
    """Base of the errors the facade raises; the message is meant for the person at the desk."""


def resolve(db: str | None = None) -> Location:
    """The database's location (scorer.store.location.resolve), an unusable one (a bad URL,
    an in-memory database, a bad config file) refused as a ScorerError."""
    try:
        return _resolve(db)
    except LocationError as exc:
        raise ScorerError(str(exc)) from None


def database_exists(loc: Location) -> bool:
    """Whether a scorer database is at ``loc``; a server that cannot be reached or refuses
    the log-in is a ScorerError saying which."""
    try:
        return _database_exists(loc)
    except StoreError as exc:
        raise ScorerError(str(exc)) from None


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
    """Someone else changed the record first; the current value comes with the message.

    ``version`` is the record's current version: sending the change again with it overwrites
    deliberately, once the person has seen the current value."""

    def __init__(
        self,
        message: str,
        version: int | None = None,
        current: Mapping[Area, AreaScore | None] | None = None,
    ) -> None:
        super().__init__(message)
        self.version = version
        self.current = dict(current or {})


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


def _case_state(read_statuses: Sequence[str], visits: str) -> str:
    """A case's progress from its reads' statuses and its visits (JSON list): "not started",
    "in progress" or "signed" (every visit's read signed)."""
    live = [st for st in read_statuses if st != "void"]
    if not live:
        return "not started"
    if len(live) >= len(json.loads(visits)) and all(st == "signed" for st in live):
        return "signed"
    return "in progress"


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


def _shown(s: AreaScore | None) -> str:
    """A stored entry in the words the grid uses: 2, 1+2 (two sides), NA (reason)."""
    if s is None:
        return "not entered"
    if s.reason is not None:
        return f"NA ({s.reason})"
    if s.sides is not None:
        return "+".join(str(v) for v in s.sides) + f" = {s.score}"
    return str(s.score)


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
        # Films delivered to readers' cases in this session: file -> (stored copy's SHA-256,
        # pixel data's SHA-256), so listing a case again does not write its films again.
        self._delivered: dict[str, tuple[str, str]] = {}

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
                f"no scorer database at {loc.shown} (from {loc.source}); create one with "
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
                f"the database at {loc.shown} is at schema revision {rev}, this scorer needs "
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
            raise ScorerError(f"a scorer database already exists at {loc.shown}")
        if loc.receipts_path.exists() and loc.receipts_path.stat().st_size > 0:
            raise ScorerError(
                f"the receipts file {loc.receipts_path} already holds another database's chain "
                "heads, and a new database needs its own: give --db a file of its own (its "
                "receipts go beside it), or name another receipts file in the config file "
                "(receipts = \"...\")"
            )
        _check_username(admin_username)
        _check_name(admin_full_name, "printed name")
        _check_password(admin_password, admin_username, admin_full_name)
        try:
            store = Store(loc, create_key=True)  # it makes the file and folder owner-only
        except Exception as exc:
            raise ScorerError(str(exc)) from exc
        upgrade(store.engine)
        ws = cls(store, settings, clock)
        with store.write(admin_username) as tx:
            tx.now = ws._now_str()
            hashed = hash_password(admin_password)
            user = repo.add_user(
                tx.session,
                admin_username,
                admin_full_name,
                "admin",
                hashed,
                must_change=False,
                now=tx.now,
            )
            repo.set_password(tx.session, user, hashed, tx.now, HISTORY)
            tx.audit("database.init", "database", "1", new={"schema": head_revision()})
            tx.audit(
                "user.add",
                "user",
                user.username,
                new={"role": "admin", "full_name": admin_full_name},
            )
        return ws

    @staticmethod
    def migrate(db: str | None = None, location: Location | None = None) -> tuple[str | None, str]:
        """Upgrade a database's schema to this scorer's (audited); (before, after)."""
        with _existing_store(location or resolve(db)) as store:
            before = current_revision(store.engine)
            upgrade(store.engine)
            if before != head_revision():
                with store.write("system") as tx:
                    tx.audit(
                        "database.migrate",
                        "database",
                        "1",
                        old={"schema": before},
                        new={"schema": head_revision()},
                    )
        return before, head_revision()

    @staticmethod
    def grant_workstation(
        role: str, db: str | None = None, location: Location | None = None
    ) -> list[str]:
        """Give a PostgreSQL role what a reading centre's workstations need, with the audit
        trail, event log and signatures append-only at the privilege level (run as the
        database's owner; audited in the same transaction). Returns the statements run."""
        from scorer.store.grants import GrantError, grant_workstation

        with _existing_store(location or resolve(db)) as store, store.write("system") as tx:
            try:
                statements = grant_workstation(tx.session.connection(), role)
            except GrantError as exc:
                raise ScorerError(f"nothing was granted: {exc}") from exc
            tx.audit(
                "database.grant",
                "database",
                "1",
                new={"role": role, "statements": statements},
            )
        return statements

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
            raise PermissionDenied(f"{_a(s.role)} may not do this (needs: {' or '.join(roles)})")
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
        """Change one's own password (also the first-log-in change): the old password, and a
        new one meeting the policy (not one of the account's last passwords either)."""
        self._active(s, allow_must_change=True)
        _check_password(new, s.username, s.full_name)
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
                previous = repo.password_history(tx.session, user, HISTORY)
                _check_password(new, s.username, user.full_name, previous)
                repo.set_password(tx.session, user, hash_password(new), tx.now, HISTORY)
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
        _check_name(full_name, "printed name")
        _check_password(password, username, full_name)
        with self._write(s) as tx:
            if repo.user_by_name(tx.session, username) is not None:
                raise InvalidInput(f"the user ID {username!r} is taken")
            hashed = hash_password(password)
            user = repo.add_user(
                tx.session,
                username,
                full_name,
                role,
                hashed,
                must_change=True,
                now=tx.now,
            )
            repo.set_password(tx.session, user, hashed, tx.now, HISTORY)
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
        _check_password(password, username)
        with self._write(s) as tx:
            user = repo.user_by_name(tx.session, username)
            if user is None:
                raise NotFound(f"no user {username!r}")
            previous = repo.password_history(tx.session, user, HISTORY)
            _check_password(password, username, user.full_name, previous)
            repo.set_password(tx.session, user, hash_password(password), tx.now, HISTORY)
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
        _check_name(protocol.name, "trial name")
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
        self._set_setting(s, trial, name, value, reason)

    def _set_setting(
        self,
        s: UserSession,
        trial: str,
        name: str,
        value: Any,
        reason: str,
        basis: Mapping[str, Any] | None = None,
    ) -> None:
        """:meth:`set_trial_setting`; ``basis`` (how a computed value was found) is recorded
        beside the new value in the same audit row."""
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
                new={name: new.to_dict()[name], **({"basis": dict(basis)} if basis else {})},
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
            self._not_locked(t)
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
        _check_name(real_id, "patient identifier")
        _check_formula(real_id, "patient identifier")
        with self._write(s) as tx:
            t = self._trial(tx.session, trial)
            self._not_locked(t)
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
            raise PermissionDenied(f"{_a(s.role)} does not enter scores")
        elif s.role not in ("coordinator", "monitor"):
            # Administrators keep the system, not the trial: they do not see scores.
            raise PermissionDenied(f"{_a(s.role)} does not see reads")
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
        expected: Mapping[Area, AreaScore | None] | None = None,
    ) -> ScoreAck:
        """Save one area's score (or not-assessable reason) in its own transaction.

        Changing a signed read needs ``change_reason``: the signature is voided and the read
        must be signed again. ``expected_version`` / ``expected``: see :meth:`set_scores`.
        """
        return self.set_scores(
            s,
            code,
            {area: value},
            {area: reason_text} if reason_text else None,
            change_reason,
            expected_version,
            expected,
        )[0]

    def set_scores(
        self,
        s: UserSession,
        code: str,
        values: Mapping[Area, AreaScore],
        reason_texts: Mapping[Area, str] | None = None,
        change_reason: str = "",
        expected_version: int | None = None,
        expected: Mapping[Area, AreaScore | None] | None = None,
    ) -> list[ScoreAck]:
        """Save several areas of one read in one transaction, each change audited on its own
        row (used for "rest of this region = 0" and for bulk entry); all or nothing.

        No lost update between workstations: with ``expected_version`` the read must be at
        that version; with ``expected`` each named area must still hold what the caller last
        saw (``None``: not entered). Otherwise :class:`Conflict` with the current values."""
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
                _check_text(texts.get(area, ""), f"description of {area}")
            if expected_version is not None and r.version != expected_version:
                raise self._stale(tx, r, list(values), expected_version)
            if expected:
                self._check_expected(tx, r, {a: expected[a] for a in values if a in expected})
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

    def _check_expected(self, tx: Tx, r: Any, expected: Mapping[Area, AreaScore | None]) -> None:
        """Raise Conflict if an area no longer holds what the caller saw."""
        changed: dict[Area, AreaScore | None] = {}
        for area, seen in expected.items():
            row = repo.score_row(tx.session, r, area)
            now = repo.row_score(row) if row is not None else None
            if _score_json(now) != _score_json(seen):
                changed[area] = now
        if changed:
            words = "; ".join(f"{a} is now {_shown(v)}" for a, v in changed.items())
            raise Conflict(
                f"changed on another workstation: {words}. Nothing was saved; check the value "
                "and enter it again (Retry keeps yours).",
                r.version,
                changed,
            )

    def _stale(self, tx: Tx, r: Any, areas: Sequence[Area], expected: int) -> Conflict:
        """The conflict of a change made on a stale copy of read ``r``, with the current
        value of each area it would have changed."""
        now = []
        for area in areas:
            row = repo.score_row(tx.session, r, area)
            now.append(f"{area} is now {_shown(repo.row_score(row) if row else None)}")
        return Conflict(
            "this read was changed on another workstation since you had it (version "
            f"{r.version}, yours {expected}): {'; '.join(now)}. Nothing was saved; check the "
            "value and enter it again.",
            r.version,
        )

    def clear_score(
        self,
        s: UserSession,
        code: str,
        area: Area,
        change_reason: str = "",
        expected_version: int | None = None,
        expected: Mapping[Area, AreaScore | None] | None = None,
    ) -> ScoreAck:
        """Remove an area's entry (undo of a first entry); ``expected`` as for set_scores."""
        return self.clear_scores(s, code, [area], change_reason, expected_version, expected)[0]

    def clear_scores(
        self,
        s: UserSession,
        code: str,
        areas: Sequence[Area],
        change_reason: str = "",
        expected_version: int | None = None,
        expected: Mapping[Area, AreaScore | None] | None = None,
    ) -> list[ScoreAck]:
        """Remove several areas' entries of one read in one transaction, each removal audited
        on its own row (the undo of "rest of this region = 0"); all or nothing.
        ``expected_version`` / ``expected``: see :meth:`set_scores`."""
        self._active(s, "reader", "adjudicator")
        areas = list(dict.fromkeys(areas))
        acks: list[ScoreAck] = []
        with self._write(s) as tx:
            r = self._own_read(s, tx.session, code, write=True)
            self._not_locked(repo.trial_by_id(tx.session, r.trial_id))
            if expected_version is not None and r.version != expected_version:
                raise self._stale(tx, r, areas, expected_version)
            if expected:
                self._check_expected(tx, r, {a: expected[a] for a in areas if a in expected})
            if r.status == "signed":
                if not change_reason.strip():
                    raise InvalidInput("this read is signed: give a reason to change it")
                self._void_signature(tx, s, r, change_reason)
            for area in areas:
                row = repo.score_row(tx.session, r, area)
                if row is None:
                    acks.append(ScoreAck(code, area, r.version, r.status))
                    continue
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
                acks.append(ScoreAck(code, area, r.version, r.status))
        return acks

    def set_note(self, s: UserSession, code: str, note: str) -> int:
        """Set the read's note; returns the read's new version."""
        self._active(s, "reader", "adjudicator")
        _check_text(note, "note")
        with self._write(s) as tx:
            r = self._own_read(s, tx.session, code, write=True)
            self._not_locked(repo.trial_by_id(tx.session, r.trial_id))
            if r.status == "signed":
                raise InvalidInput("this read is signed: reopen it with a reason first")
            tx.audit("read.note", "read", r.code, trial_id=r.trial_id, old=r.note, new=note)
            r.note = note
            r.updated_at = tx.now
            tx.session.flush()
            return int(r.version)

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
        self._check_signer(s, username)
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
        _check_text(reason, "reason")
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
        self._check_signer(s, username)
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

    @staticmethod
    def _check_signer(s: UserSession, username: str | None) -> None:
        """Part 11: the session's first signature takes the user ID and the password, later
        ones the password; a user ID given must be the logged-in user's."""
        if not s.signed_once and username is None:
            raise AuthError("the first signature of a session needs your user ID and password")
        if username is not None and username != s.username:
            raise AuthError("the user ID does not match the logged-in user")

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
        _check_name(name, "campaign name")
        if not new_visits:
            raise InvalidInput("a new campaign needs at least one new visit")
        with self._write(s) as tx:
            t = self._trial(tx.session, trial)
            self._not_locked(t)
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
            self._new_campaign(tx, t, number, name, labels)
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
                made[u.username] = self._store_worklist(tx, t, camp, u, inputs, by_code, taken)
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
        if not [c for c in camps if c.number >= 1]:
            if number not in (None, 1):
                raise NotFound(f"trial {t.code} has no campaign {number}")
            labels = [v.label for v in proto.visits] or [v.label for v in t.visits]
            if not labels:
                raise InvalidInput(f"trial {t.code} has no visits")
            return self._new_campaign(tx, t, 1, "main", labels)
        # Campaigns 0 (calibration) and -1 (adjudication) are never the default.
        reading = [c for c in camps if c.number >= 1]
        if number is None and reading:
            return reading[-1]
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
        self._active(s, "reader", "adjudicator", "coordinator", "monitor", "admin")
        if s.role in ("reader", "adjudicator"):
            if reader not in (None, s.username):
                raise PermissionDenied(f"{_a(s.role)} sees only their own worklist")
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
                        if s.role not in ("reader", "adjudicator"):
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
        return _case_state([r.status for r in repo.reads_of_case(db, c)], c.visits)

    def verify_worklists(self, s: UserSession, trial: str) -> list[str]:
        """Regenerate every worklist from its stored seed and inputs; list any difference."""
        self._active(s, "coordinator", "monitor", "admin")
        problems: list[str] = []
        with self.store.read() as db:
            t = self._trial(db, trial)
            for camp in repo.campaigns_of(db, t):
                if camp.number < 0:
                    continue  # adjudication cases come batch by batch (seeds in the audit trail)
                for w in repo.worklists_of(db, camp):
                    inputs = json.loads(w.inputs)
                    again = self._generated(w.seed, inputs)
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
            self._must_calibrate(tx.session, t, s, c)
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
                    gone = [
                        m.region
                        for m in repo.missing_regions_of(tx.session, t)
                        if m.patient_id == p.id and m.visit_id == v.id
                    ]
                    if gone:
                        self._apply_missing(tx, r, gone, "marked by the coordinator")
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

    def reissue_readers_copies(
        self, s: UserSession, trial: str, progress: Any = None, **limits: Any
    ) -> dict[str, Any]:
        """Write every readers' copy of a trial again from its original under the current
        rules (coordinator): the current keep-list, UIDs drawn for each image alone, its masks
        painted again; the image rows and one audit row per image in one transaction, then
        the old copies removed. See :mod:`scorer.reissue`; ``limits`` pass to it (workers,
        timeout_s, memory_mb)."""
        from scorer.reissue import reissue

        return reissue(self, s, trial, progress, **limits)

    #: Audited DICOM network actions (scorer.network): receiving started and stopped, each
    #: association (accepted with what it brought, or refused and why), each pull.
    DICOM_ACTIONS: tuple[str, ...] = (
        "dicom.receive.start",
        "dicom.receive.stop",
        "dicom.association",
        "dicom.pull",
    )

    def audit_dicom(
        self, s: UserSession, trial: str, action: str, details: Mapping[str, Any]
    ) -> None:
        """Record a DICOM network action on a trial (coordinator): who called, from where,
        what came of it. Instances themselves are audited by the import that takes them."""
        self._active(s, "coordinator")
        if action not in self.DICOM_ACTIONS:
            raise InvalidInput(f"unknown DICOM action {action!r}")
        with self._write(s) as tx:
            t = self._trial(tx.session, trial)
            tx.audit(action, "trial", trial, trial_id=t.id, new=dict(details))

    def dicom_settings(self, s: UserSession, trial: str) -> dict[str, Any]:
        """What the DICOM receiver and puller need of a trial (coordinator): the calling AE
        titles it allows, and whether it is locked (a locked trial takes no images)."""
        self._active(s, "coordinator")
        with self.store.read() as db:
            t = self._trial(db, trial)
            p = self._protocol(t)
            return {"dicom_senders": list(p.dicom_senders), "locked": bool(t.locked)}

    def keep_alive(self, s: UserSession) -> None:
        """Mark a running service's session (the DICOM receiver) active, so it does not lock
        for inactivity while it runs; refused like any call once the account is disabled."""
        self._active(s)

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
                        "masked": bool(img.masks and img.masks != "[]"),
                        "qc": img.qc_state,
                        "qc_reason": img.qc_reason,
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
            path = self.store.location.image_file(img.reader_path)
            sha = img.reader_sha256
        try:
            image = open_radiograph(path, cache_dir=self.cache_dir, content_sha256=sha)
            written = export_png(image, out, voi=voi, max_size=max_size)
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"image {image_code} cannot be exported: {exc}") from exc
        with self._write(s) as tx:
            tx.event("export", image_code, {"what": "image png", "window": window}, s.id)
        return written

    def render_image(self, s: UserSession, image_code: str, max_size: int = 1600) -> Any:
        """The readers' copy of an image as the display draws it (8-bit, bone bright, default
        window), scaled so its longer side is at most ``max_size``, with the stored size:
        ``(pixels, (rows, columns))``. For the coordinator's quality control (masking)."""
        from scorer.imaging.radiograph import open_radiograph
        from scorer.imaging.render import render_full

        self._active(s, "coordinator")
        with self.store.read() as db:
            img = repo.image_by_code(db, image_code)
            if img is None:
                raise NotFound(f"no image {image_code!r}")
            path = self.store.location.image_file(img.reader_path)
            sha = img.reader_sha256
        try:
            image = open_radiograph(path, cache_dir=self.cache_dir, content_sha256=sha)
            return render_full(image, max_size), tuple(image.shape)
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"image {image_code} cannot be shown: {exc}") from exc

    @property
    def cache_dir(self) -> Path:
        """Local, per-workstation cache of image pyramids (never on the shared store)."""
        return self.store.location.data_dir / "cache"

    def case_images(self, s: UserSession, case_code: str) -> dict[str, list[dict[str, Any]]]:
        """The films of one of the reader's cases, by visit letter (A, B, C): the film's name
        in this case, regions covered, the path of the case's own file of it and the SHA-256
        of its pixel data (the cache key). The files are delivered here
        (:mod:`scorer.imaging.delivery`): UIDs and names from (case, image), a neutral time,
        owner-only, so nothing in them, their names or their times tells the visit, its date,
        the patient, or another case that shows the same film."""
        from scorer.imaging.delivery import (
            deliver_film,
            film_name,
            prune_cases,
            remove_other_films,
        )

        self._active(s, "reader", "adjudicator")
        with self.store.read() as db:
            c, _, t = self._own_case(s, db, case_code)
            self._must_calibrate(db, t, s, c)
            films: list[tuple[str, str, list[str], Path, str]] = []
            visits = json.loads(c.visits)
            for i, label in enumerate(visits):
                v = repo.visit_by_label(db, t, label)
                assert v is not None
                films += [
                    (
                        LETTERS[i],
                        img.code,
                        sorted(r.region for r in img.regions),
                        self.store.location.image_file(img.reader_path),
                        img.reader_sha256 or "",
                    )
                    for img in repo.images_of_visit(db, c.patient_id, v.id)
                ]
        folder = self.films_dir / case_code
        key = self.store.key
        out: dict[str, list[dict[str, Any]]] = {LETTERS[i]: [] for i in range(len(visits))}
        names: set[str] = set()
        for letter, image_code, regions, stored, stored_sha in films:
            name = film_name(key, case_code, image_code)
            target = folder / f"{name}.dcm"
            names.add(target.name)
            known = self._delivered.get(str(target))
            pixel_sha = known[1] if known and known[0] == stored_sha else ""
            if not pixel_sha or not target.is_file():
                try:
                    pixel_sha = deliver_film(stored, target, key, case_code, image_code)
                    self._delivered[str(target)] = (stored_sha, pixel_sha)
                except (OSError, ValueError):
                    # Shown as a film that cannot be opened; the rest of the case still shows.
                    target.unlink(missing_ok=True)
                    pixel_sha = stored_sha
            out[letter].append(
                {"image": name, "regions": regions, "path": str(target), "sha256": pixel_sha}
            )
        remove_other_films(folder, names)
        prune_cases(self.films_dir, folder)
        return out

    @property
    def films_dir(self) -> Path:
        """Where the films of the readers' cases are delivered on this workstation (local,
        owner-only, beside the pyramid cache): a folder of this database's own, named from its
        URL under its key, so two databases used on one workstation never share (or prune)
        each other's case folders, and the name tells nothing of either."""
        import hmac

        loc = self.store.location
        tag = hmac.new(self.store.key, f"films\x1f{loc.url}".encode(), hashlib.sha256)
        return loc.data_dir / "films" / tag.hexdigest()[:16]

    def raise_flag(self, s: UserSession, case_code: str, message: str) -> int:
        """A reader flags one of their cases to the coordinator (e.g. "visit B may be another
        patient"); returns the flag's number."""
        self._active(s, "reader", "adjudicator")
        if not message.strip():
            raise InvalidInput("write what the coordinator should look at")
        _check_text(message, "flag")
        with self._write(s) as tx:
            c, _, t = self._own_case(s, tx.session, case_code)
            self._not_locked(t)
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
        _check_text(answer, "answer")
        with self._write(s) as tx:
            t = self._trial(tx.session, trial)
            self._not_locked(t)
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
        self.log_events(s, [(kind, subject, detail)], trial)

    def log_events(
        self,
        s: UserSession,
        events: Sequence[tuple[str, str, dict[str, Any] | None]],
        trial: str | None = None,
    ) -> None:
        """Record several facts in one transaction, (kind, subject, detail) each: a case
        closed and the films viewed while it was open, say. All are stored or none."""
        self._active(s)
        for kind, _subject, _detail in events:
            if kind not in self.EVENT_KINDS:
                raise InvalidInput(f"unknown event kind {kind!r}")
        if not events:
            return
        with self._write(s) as tx:
            tid = self._trial(tx.session, trial).id if trial else None
            for kind, subject, detail in events:
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
        """Every audit row; a monitor's leave out what would tie a case to a patient or a
        visit (see :attr:`BLINDED_KEYS`)."""
        self._active(s, "monitor", "admin", "coordinator")
        blind = s.role == "monitor"
        with self.store.read() as db:
            return [
                {
                    "seq": a.seq,
                    "at": a.at,
                    "username": a.username,
                    "action": a.action,
                    "entity": a.entity,
                    "entity_id": a.entity_id,
                    "old": self._blinded_text(a.old, blind),
                    "new": self._blinded_text(a.new, blind),
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
            first_read = {r.reader: r.read_id for r in reversed(reads)}
            for reader, read_id in sorted(first_read.items()):
                if repo.user_by_name(tx.session, reader) is None:
                    # A new reader becomes an account: the same user ID rules as `user add`.
                    try:
                        _check_username(reader)
                    except InvalidInput as exc:
                        raise InvalidInput(
                            f"read {read_id}: the reader {reader!r} cannot be an account: {exc}"
                        ) from exc
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
            reads = self._csv_reads(tx.session, t, real_ids=not blinded)
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

    # ----------------------------------------------------------------- coordinator's desk

    def progress(self, s: UserSession, trial: str) -> dict[str, Any]:
        """The reading's progress: per reader, per case and (for the coordinator) per patient.

        A case is "in progress" from its first opening until every visit is signed; time per
        case adds up the seconds the reading window logged on leaving it (event log)."""
        self._active(s, "coordinator", "monitor")
        with self.store.read() as db:
            t = self._trial(db, trial)
            # Three queries, whatever the size of the event log: what the page shows.
            seconds = repo.case_seconds(db, t)
            statuses = repo.case_read_statuses(db, t)
            cases: list[dict[str, Any]] = []
            patients: dict[str, dict[str, str]] = {}
            real_ids: dict[str, str] = {}
            for c, campaign, username, p in repo.progress_cases(db, t):
                status = _case_state(statuses.get(c.id, []), c.visits)
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
                timed = [
                    c["seconds"] for c in cases if c["reader"] == r["reader"] and c["seconds"] > 0
                ]
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

    # ..... image quality control

    def reassign_image(
        self,
        s: UserSession,
        image_code: str,
        reason: str,
        patient: str | None = None,
        visit: str | None = None,
        regions: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Move an image to another patient (code), visit (label) or regions, with a reason;
        the flags it resolves are cleared. Every reader's case follows at once."""
        self._active(s, "coordinator")
        _need_reason(reason)
        if patient is None and visit is None and regions is None:
            raise InvalidInput("name the patient, the visit or the regions to assign")
        with self._write(s) as tx:
            img = repo.image_by_code(tx.session, image_code)
            if img is None:
                raise NotFound(f"no image {image_code!r}")
            t = repo.trial_by_id(tx.session, img.trial_id)
            self._not_locked(t)
            old = self._image_place(tx.session, img)
            flags = [f for f in img.flags.split("; ") if f]
            if patient is not None:
                p = repo.patient_by_code(tx.session, t, patient)
                if p is None:
                    raise NotFound(f"no patient {patient!r} in trial {t.code}")
                img.patient_id = p.id
                flags = [f for f in flags if f != "patient unknown"]
            if visit is not None:
                v = repo.visit_by_label(tx.session, t, visit)
                if v is None:
                    raise NotFound(f"no visit {visit!r} in trial {t.code}")
                img.visit_id = v.id
                flags = [f for f in flags if not f.startswith("visit ")]
            if regions is not None:
                wanted = sorted({r.strip().upper() for r in regions if r.strip()})
                bad = [r for r in wanted if r not in REGIONS]
                if not wanted or bad:
                    raise InvalidInput(f"regions are some of {', '.join(REGIONS)}")
                img.regions.clear()
                tx.session.flush()
                for r in wanted:
                    img.regions.append(ImageRegion(region=r))
                flags = [f for f in flags if not f.startswith("regions unknown")]
            img.flags = "; ".join(flags)
            tx.session.flush()
            new = self._image_place(tx.session, img)
            tx.audit(
                "image.reassign", "image", img.code, trial_id=t.id, old=old, new=new, reason=reason
            )
            return new

    #: An image's QC states: passed reaches cases, pending (flagged at import) waits for the
    #: coordinator, failed never reaches a case.
    QC_STATES: tuple[str, ...] = ("pending", "passed", "failed")

    def image_qc(
        self, s: UserSession, image_code: str, state: str, reason: str = ""
    ) -> dict[str, Any]:
        """Set an image's QC state (coordinator), audited with the reason in the same
        transaction. ``passed`` lets it reach its patient's cases; ``failed`` (a reason is
        required) keeps it from every case for good, and the cases that showed it until then
        (it had passed) are listed (``cases``: code and reader) for the coordinator to follow
        up."""
        self._active(s, "coordinator")
        if state not in ("passed", "failed"):
            raise InvalidInput(f"an image's QC is passed or failed, not {state!r}")
        if state == "failed" or reason.strip():
            _need_reason(reason)
        with self._write(s) as tx:
            img = repo.image_by_code(tx.session, image_code)
            if img is None:
                raise NotFound(f"no image {image_code!r}")
            t = repo.trial_by_id(tx.session, img.trial_id)
            self._not_locked(t)
            if img.qc_state == "failed":
                raise InvalidInput(
                    f"image {image_code} failed QC ({img.qc_reason}): a failed image stays "
                    "failed; import a better film"
                )
            if img.qc_state == state:
                raise InvalidInput(f"image {image_code} has QC {state} already")
            cases: list[dict[str, str]] = []  # that showed it: only a passed image reached any
            if img.qc_state == "passed" and img.patient_id is not None and img.visit_id:
                v = repo.visit_by_id(tx.session, img.visit_id)
                assert v is not None
                held = repo.cases_showing(tx.session, img.patient_id, v.label)
                cases = [{"case": c, "reader": u} for c, u in held]
            old = {"qc": img.qc_state, "qc_reason": img.qc_reason}
            img.qc_state = state
            img.qc_reason = reason.strip()
            tx.audit(
                "image.qc",
                "image",
                img.code,
                trial_id=t.id,
                old=old,
                new={"qc": state, **({"cases": [c["case"] for c in cases]} if cases else {})},
                reason=reason.strip(),
            )
            return {
                "image": img.code,
                "qc": state,
                "qc_reason": img.qc_reason,
                "cases": cases,
            }

    @staticmethod
    def _image_place(db: Any, img: Any) -> dict[str, Any]:
        p = db.get(Patient, img.patient_id) if img.patient_id else None
        v = repo.visit_by_id(db, img.visit_id) if img.visit_id else None
        return {
            "patient": p.code if p else None,
            "visit": v.label if v else None,
            "regions": sorted(r.region for r in img.regions),
            "flags": [f for f in img.flags.split("; ") if f],
        }

    def mask_image(
        self,
        s: UserSession,
        image_code: str,
        rectangles: Sequence[Sequence[int]],
        reason: str,
    ) -> dict[str, Any]:
        """Mask burned-in text: the rectangles (x, y, width, height in stored pixels) are
        painted black on a new readers' copy; the original is untouched. Audited with the
        rectangles and both copies' SHA-256."""
        from scorer.imaging.masking import MaskError, mask_rectangles
        from scorer.intake import seal_readers_copy

        self._active(s, "coordinator")
        _need_reason(reason)
        rects = [tuple(int(v) for v in r) for r in rectangles]
        if not rects or any(len(r) != 4 for r in rects):
            raise InvalidInput("give each rectangle as x, y, width, height")
        with self.store.read() as db:
            img = repo.image_by_code(db, image_code)
            if img is None:
                raise NotFound(f"no image {image_code!r}")
            self._not_locked(repo.trial_by_id(db, img.trial_id))
            source = self.store.location.image_file(img.reader_path)
        target = source.with_name(f"{new_code(16)}.dcm")
        try:
            mask_rectangles(source, target, rects)
        except MaskError as exc:
            raise InvalidInput(f"image {image_code}: {exc}") from exc
        except OSError as exc:
            raise ScorerError(f"image {image_code} cannot be masked: {exc}") from exc
        digest = hashlib.sha256(target.read_bytes()).hexdigest()
        seal_readers_copy(target, self.store.location)
        try:
            with self._write(s) as tx:
                img = repo.image_by_code(tx.session, image_code)
                assert img is not None
                old = {"reader_sha256": img.reader_sha256, "masks": img.masks or "[]"}
                masks = json.loads(img.masks or "[]") + [list(r) for r in rects]
                img.reader_path = self.store.location.stored_name(target)
                img.reader_sha256 = digest
                img.masks = json.dumps(masks)
                img.flags = "; ".join(
                    f for f in img.flags.split("; ") if f and not f.startswith("burned-in")
                )
                tx.audit(
                    "image.mask",
                    "image",
                    img.code,
                    trial_id=img.trial_id,
                    old=old,
                    new={"reader_sha256": digest, "rectangles": [list(r) for r in rects]},
                    reason=reason,
                )
        except BaseException:
            target.chmod(0o600)
            target.unlink(missing_ok=True)
            raise
        return {"image": image_code, "reader_sha256": digest, "masks": masks}

    def mark_region_missing(
        self, s: UserSession, trial: str, patient: str, visit: str, region: str, reason: str
    ) -> dict[str, Any]:
        """A region of a patient's visit has no usable image: every reader's read of that visit
        gets the region's areas marked not assessable ("not visible"), now and when reads
        start later. Signed reads are left as they are and listed (their readers reopen them).
        """
        self._active(s, "coordinator")
        _need_reason(reason)
        region = region.strip().upper()
        if region not in REGIONS:
            raise InvalidInput(f"a region is one of {', '.join(REGIONS)}")
        with self._write(s) as tx:
            t = self._trial(tx.session, trial)
            self._not_locked(t)
            p = repo.patient_by_code(tx.session, t, patient)
            v = repo.visit_by_label(tx.session, t, visit)
            if p is None or v is None:
                raise NotFound(f"no patient {patient!r} or visit {visit!r} in trial {trial}")
            if repo.missing_region(tx.session, p.id, v.id, region) is not None:
                raise InvalidInput(f"{region} of {patient} at {visit} is marked already")
            tx.session.add(
                MissingRegion(
                    trial_id=t.id,
                    patient_id=p.id,
                    visit_id=v.id,
                    region=region,
                    reason=reason.strip(),
                    created_by=s.user_id,
                    created_at=tx.now,
                )
            )
            tx.audit(
                "region.missing",
                "patient",
                p.code,
                trial_id=t.id,
                new={"visit": v.label, "region": region},
                reason=reason,
            )
            changed: list[str] = []
            skipped: list[str] = []
            for r in repo.reads_of_trial(tx.session, t):
                if r.patient_id != p.id or r.visit_id != v.id or r.status == "void":
                    continue
                if r.status == "signed":
                    skipped.append(r.code)
                    continue
                self._apply_missing(tx, r, [region], reason)
                changed.append(r.code)
            return {"reads_changed": len(changed), "signed_reads_left": skipped}

    MISSING_TEXT = "no image of this region"

    def _apply_missing(self, tx: Tx, r: Any, regions: Sequence[str], reason: str) -> None:
        """Mark the regions' areas of read ``r`` not assessable (audited per area)."""
        method = get_method(r.method)
        value = AreaScore.not_assessable("not_visible")
        for d in method.areas:
            if d.region not in regions:
                continue
            row = repo.score_row(tx.session, r, d.area)
            old = None if row is None else _score_json(repo.row_score(row), row.reason_text)
            new = _score_json(value, self.MISSING_TEXT)
            if old == new:
                continue
            repo.put_score(
                tx.session, r, d.area, value, self.MISSING_TEXT, method.order(d.area), tx.now
            )
            r.updated_at = tx.now
            tx.session.flush()
            tx.audit(
                "score.set",
                "read",
                r.code,
                trial_id=r.trial_id,
                old={"area": str(d.area), **(old or {})},
                new={"area": str(d.area), **(new or {})},
                reason=f"region without image: {reason}",
            )

    def missing_regions(self, s: UserSession, trial: str) -> list[dict[str, Any]]:
        self._active(s, "coordinator", "monitor")
        with self.store.read() as db:
            t = self._trial(db, trial)
            out = []
            for m in repo.missing_regions_of(db, t):
                p = db.get(Patient, m.patient_id)
                v = repo.visit_by_id(db, m.visit_id)
                out.append(
                    {
                        "patient": p.code if p else None,
                        "visit": v.label if v else None,
                        "region": m.region,
                        "reason": m.reason,
                        "at": m.created_at,
                    }
                )
            return out

    # ..... calibration

    def _released(self, db: Any, t: Any, user_id: int) -> bool:
        return repo.release_of(db, t, user_id) is not None

    def _must_calibrate(self, db: Any, t: Any, s: UserSession, case: Any) -> None:
        """Refuse a trial case to a reader not yet released from calibration."""
        proto = self._protocol(t)
        if not proto.calibration_patients or case.read_type in ("calibration", "adjudication"):
            return
        if s.username == proto.calibration_reference or self._released(db, t, s.user_id):
            return
        raise PermissionDenied(
            "you are in calibration: score your calibration cases first; the coordinator "
            "releases you to the trial's cases"
        )

    def calibration_worklists(self, s: UserSession, trial: str) -> dict[str, int]:
        """Give every assigned reader without one a calibration worklist: the trial's
        calibration patients, all visits, in a seeded random order (campaign 0)."""
        self._active(s, "coordinator")
        made: dict[str, int] = {}
        with self._write(s) as tx:
            t = self._trial(tx.session, trial)
            self._not_locked(t)
            proto = self._protocol(t)
            if not proto.calibration_patients:
                raise InvalidInput(
                    f"trial {trial} has no calibration set (setting calibration_patients)"
                )
            camp = self._special_campaign(tx, t, 0, "calibration", proto)
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
                made[u.username] = self._store_worklist(tx, t, camp, u, inputs, by_code, taken)
        return made

    def _special_campaign(self, tx: Tx, t: Any, number: int, name: str, proto: Protocol) -> Any:
        """Campaign 0 (calibration) or -1 (adjudication): made on first use, all visits."""
        camp = repo.campaign(tx.session, t, number)
        if camp is not None:
            return camp
        labels = [v.label for v in proto.visits] or [v.label for v in t.visits]
        return self._new_campaign(tx, t, number, name, labels)

    @staticmethod
    def _new_campaign(tx: Tx, t: Any, number: int, name: str, labels: Sequence[str]) -> Any:
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

    def _store_worklist(
        self,
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
            cases = self._generated(seed, inputs)
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

    def _generated(self, seed: str, inputs: Mapping[str, Any]) -> list[Any]:
        """The cases a stored worklist's seed and inputs make (with its read type)."""
        cases = generate_worklist(self._worklist_input(seed, dict(inputs)))
        kind = inputs.get("read_type")
        if kind:
            cases = [replace(c, read_type=kind) for c in cases]
        return cases

    def calibration_feedback(self, s: UserSession, case_code: str) -> dict[str, Any]:
        """After a calibration case is signed: each visit's areas, the reader's entry beside
        the reference's (training mode). Only for calibration cases, only once signed."""
        from scorer.reports.calibration import feedback

        self._active(s, "reader", "adjudicator")
        with self.store.read() as db:
            c, _, t = self._own_case(s, db, case_code)
            if c.read_type != "calibration":
                raise NotFound("no feedback for this case")
            reads = self._case_reads(db, c, t)
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
                        "yours": _score_json(f.yours),
                        "reference": _score_json(f.reference),
                        "difference": f.difference,
                        "verdict": f.verdict,
                    }
                    for f in rows
                ]
            return out

    def _reference_reads(self, db: Any, t: Any) -> dict[tuple[int, int, str], CoreRead]:
        """(patient id, visit id, method) -> the reference reader's signed read."""
        proto = self._protocol(t)
        ref_user = repo.user_by_name(db, proto.calibration_reference)
        if ref_user is None:
            return {}
        out: dict[tuple[int, int, str], CoreRead] = {}
        for r in repo.reads_of_trial(db, t):
            if r.reader_id == ref_user.id and r.status == "signed":
                out[(r.patient_id, r.visit_id, r.method)] = repo.to_core_read(db, r, real_ids=False)
        return out

    def calibration_report(self, s: UserSession, trial: str) -> dict[str, Any]:
        """Each reader's calibration against the reference: cases signed, status ICC(A,1),
        % exact and within one grade per feature, and whether they are released."""
        from scorer.reports.calibration import agreement

        self._active(s, "coordinator", "monitor")
        with self.store.read() as db:
            t = self._trial(db, trial)
            proto = self._protocol(t)
            camp = repo.campaign(db, t, 0)
            reference = self._reference_reads(db, t)
            readers = []
            for w in repo.worklists_of(db, camp) if camp is not None else []:
                u = repo.user_by_id(db, w.reader_id)
                cases = repo.cases_of(db, w)
                pairs = []
                method = proto.methods[0]
                for c in cases:
                    for _, r in self._case_reads(db, c, t):
                        ref = reference.get((r.patient_id, r.visit_id, r.method))
                        if r.status == "signed" and ref is not None and r.method == method:
                            pairs.append((repo.to_core_read(db, r, real_ids=False), ref))
                rel = repo.release_of(db, t, u.id)
                readers.append(
                    {
                        "reader": u.username,
                        "cases": len(cases),
                        "signed": sum(self._case_status(db, c) == "signed" for c in cases),
                        "released": rel is not None,
                        "released_at": rel.released_at if rel else None,
                        **agreement(pairs, get_method(method), self._rules(proto)),
                    }
                )
            return {
                "trial": trial,
                "calibration_patients": list(proto.calibration_patients),
                "reference": proto.calibration_reference,
                "reference_reads": len(reference),
                "readers": readers,
            }

    @staticmethod
    def _rules(proto: Protocol) -> Any:
        from scorer.core.totals import MissingDataRules

        return MissingDataRules(
            areas=proto.missing_areas,  # type: ignore[arg-type]
            max_unused_share=proto.max_unused_share,
            operated=proto.operated,  # type: ignore[arg-type]
            visits=proto.missing_visits,  # type: ignore[arg-type]
        )

    def release_reader(self, s: UserSession, trial: str, reader: str, reason: str) -> None:
        """Release a reader from calibration to the trial's cases (audited, with a reason);
        every calibration case of theirs must be signed."""
        self._active(s, "coordinator")
        _need_reason(reason)
        with self._write(s) as tx:
            t = self._trial(tx.session, trial)
            self._not_locked(t)
            u = repo.user_by_name(tx.session, reader)
            if u is None or u.role != "reader":
                raise NotFound(f"no reader {reader!r}")
            if self._released(tx.session, t, u.id):
                raise InvalidInput(f"{reader} is released already")
            camp = repo.campaign(tx.session, t, 0)
            w = repo.worklist(tx.session, camp, u.id) if camp is not None else None
            if w is None:
                raise InvalidInput(f"{reader} has no calibration worklist")
            left = [
                c
                for c in repo.cases_of(tx.session, w)
                if self._case_status(tx.session, c) != "signed"
            ]
            if left:
                raise InvalidInput(f"{reader} has {len(left)} calibration case(s) not signed")
            tx.session.add(
                Release(
                    trial_id=t.id,
                    user_id=u.id,
                    released_by=s.user_id,
                    released_at=tx.now,
                    reason=reason.strip(),
                )
            )
            tx.audit("reader.release", "user", reader, trial_id=t.id, reason=reason)

    # ..... adjudication

    def freeze_sdc(self, s: UserSession, trial: str, reason: str) -> float:
        """Compute the SDC from the signed primary reads now and record it as the trial's
        frozen SDC (it no longer moves as reads arrive); audited like any setting."""
        from scorer.reports.analysis import AnalysisError, AnalysisOptions, analyze

        self._active(s, "coordinator")
        _need_reason(reason)
        with self.store.read() as db:
            t = self._trial(db, trial)
            proto = self._protocol(t)
            if proto.frozen_sdc is not None:
                # Freezing again would change nothing (the same value) or move a value the
                # adjudication rule was meant to hold still: say so and how, instead.
                row = repo.last_setting_change(db, t.id, "frozen_sdc")
                since = f" since {row.at} (by {row.username})" if row is not None else ""
                raise InvalidInput(
                    f"the SDC of trial {trial} is frozen already at {proto.frozen_sdc:g}{since}; "
                    f"to freeze it anew, first clear it: scorer trial set {trial} frozen_sdc "
                    "none --reason ..."
                )
            reads = [repo.to_core_read(db, r, real_ids=False) for r in repo.reads_of_trial(db, t)]
        try:
            result = analyze(
                reads,
                dict(builtin_methods()),
                AnalysisOptions(
                    method=proto.methods[0],
                    sdc_level=proto.sdc_level,
                    rules=self._rules(proto),
                    kappa=False,
                ),
            )
        except AnalysisError as exc:
            raise InvalidInput(f"the SDC cannot be computed yet: {exc}") from exc
        found = result.get("sdc") or {}
        if found.get("value") is None:
            why = result.get("sdc_note") or "No SDC: too few patients read twice"
            raise InvalidInput(f"the SDC cannot be computed yet: {why}")
        value = round(float(found["value"]), 6)
        # The block it came from (docs/incomplete-designs.md), recorded in the audit row.
        basis = {
            "readers": found["readers"],
            "n": found["n"],
            "k": found["k"],
            "level": found["level"],
        }
        self._set_setting(s, trial, "frozen_sdc", value, reason, basis=basis)
        return value

    def _primary_changes(
        self, db: Any, t: Any, proto: Protocol
    ) -> dict[int, dict[str, tuple[float, dict[str, Any]]]]:
        """patient id -> reader -> (change first→last visit, {visit label: status total})
        from signed primary reads (only readers with both visits signed)."""
        from scorer.core.totals import change_totals, status_totals

        method = get_method(proto.methods[0])
        rules = self._rules(proto)
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

    def update_adjudication(self, s: UserSession, trial: str) -> dict[str, Any]:
        """Apply the trial's rule (spec §8) to every patient whose primary reads are signed:
        discrepant patients enter the queue; adjudications whose reads are signed get their
        final scores. Each queued patient and each result is audited with the rule applied."""
        from scorer.core.adjudication import check_discrepancy, select_reads

        self._active(s, "coordinator")
        with self._write(s) as tx:
            t = self._trial(tx.session, trial)
            self._not_locked(t)
            proto = self._protocol(t)
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
                p = tx.session.get(Patient, pid)
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
                p = tx.session.get(Patient, pid)
                tx.audit("adjudication.result", "patient", p.code, trial_id=t.id, new=result)
            return {"checked": checked, "queued": queued, "done": done}

    def _adjudicator_changes(
        self, db: Any, t: Any, proto: Protocol
    ) -> dict[int, tuple[str, tuple[float, dict[str, Any]]]]:
        """patient id -> (adjudicator, (change, totals)) for fully signed adjudication cases."""
        from scorer.core.totals import change_totals, status_totals

        method = get_method(proto.methods[0])
        rules = self._rules(proto)
        labels = [v.label for v in proto.visits] or [v.label for v in t.visits]
        out: dict[int, tuple[str, tuple[float, dict[str, Any]]]] = {}
        for a in repo.adjudications_of(db, t):
            if a.case_id is None:
                continue
            c = db.get(Case, a.case_id)
            reads = {
                lbl: r for lbl, r in self._case_reads_by_label(db, c, t) if r.method == method.id
            }
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

    @staticmethod
    def _case_reads_by_label(db: Any, c: Any, t: Any) -> list[tuple[str, Any]]:
        label_of = {v.id: v.label for v in t.visits}
        return [(label_of[r.visit_id], r) for r in repo.reads_of_case(db, c) if r.status != "void"]

    def assign_adjudications(self, s: UserSession, trial: str, adjudicator: str) -> int:
        """Give the queued discrepant patients to an adjudicator: one case each in their
        worklist, visits in a seeded random order, blinded to the first reads."""
        self._active(s, "coordinator")
        with self._write(s) as tx:
            t = self._trial(tx.session, trial)
            self._not_locked(t)
            proto = self._protocol(t)
            u = repo.user_by_name(tx.session, adjudicator)
            if u is None or u.role != "adjudicator" or u.disabled:
                raise NotFound(f"no adjudicator {adjudicator!r}")
            queue = repo.adjudications_of(tx.session, t, "queued")
            if not queue:
                raise InvalidInput("the adjudication queue is empty")
            camp = self._special_campaign(tx, t, -1, "adjudication", proto)
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
                p = tx.session.get(Patient, a.patient_id)
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

    def adjudications(self, s: UserSession, trial: str) -> dict[str, Any]:
        """The queue and the results: per patient the reasons, the readers' changes, the rule
        applied, the adjudicator and the final scores."""
        self._active(s, "coordinator", "monitor")
        with self.store.read() as db:
            t = self._trial(db, trial)
            proto = self._protocol(t)
            rows = []
            for a in repo.adjudications_of(db, t):
                p = db.get(Patient, a.patient_id)
                row: dict[str, Any] = {
                    "status": a.status,
                    "reasons": json.loads(a.reasons),
                    "rule": json.loads(a.rule),
                    "queued_at": a.queued_at,
                    "done_at": a.done_at,
                    "adjudicator": repo.user_by_id(db, a.adjudicator_id).username
                    if a.adjudicator_id
                    else None,
                    "result": json.loads(a.result) if a.result else None,
                }
                if s.role == "coordinator":
                    row["patient"] = p.code if p else None
                    row["changes"] = json.loads(a.changes)
                rows.append(row)
            return {
                "trial": trial,
                "trigger": proto.adjudication_trigger,
                "difference": proto.adjudication_difference,
                "frozen_sdc": proto.frozen_sdc,
                "final_rule": proto.final_rule,
                "patients": rows,
            }

    # ----------------------------------------------------------------- lock, exports, reports

    def lock_trial(
        self, s: UserSession, trial: str, password: str, username: str | None = None
    ) -> str:
        """Lock the reading (Part 11 signature, meaning "approved"): after this no read can
        change. Every read must be signed first. Returns the locked content's hash (the
        SHA-256 of the trial's reads CSV at lock)."""
        self._active(s, "coordinator")
        self._check_signer(s, username)
        digest = ""
        with self._write(s) as tx:
            user = repo.user_by_id(tx.session, s.user_id)
            failure = self._signature_refusal(tx, user, password)
            if not failure:
                t = self._trial(tx.session, trial)
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
                digest = self._reads_digest(tx.session, t)
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

    def unlock_trial(
        self,
        s: UserSession,
        trial: str,
        reason: str,
        password: str,
        second_username: str,
        second_password: str,
    ) -> None:
        """Unlock a locked reading: a reason, the coordinator's password, and a second
        person's (another coordinator or an administrator) user ID and password; both
        signatures and the reason go into the audit trail."""
        self._active(s, "coordinator")
        _need_reason(reason)
        if second_username == s.username:
            raise AuthError("the second signature must be another person's")
        failure = ""
        with self._write(s) as tx:
            t = self._trial(tx.session, trial)
            if not t.locked:
                raise InvalidInput(f"the reading of trial {trial} is not locked")
            user = repo.user_by_id(tx.session, s.user_id)
            failure = self._signature_refusal(tx, user, password)
            second = repo.user_by_name(tx.session, second_username)
            if not failure:
                if second is None or second.role not in ("coordinator", "admin"):
                    verify_password(_timing_hash(), second_password)
                    failure = "the second person must be a coordinator or an administrator"
                else:
                    refusal = self._signature_refusal(tx, second, second_password)
                    if refusal:
                        failure = f"second signature: {refusal}"
            if not failure:
                assert second is not None
                digest = self._reads_digest(tx.session, t)
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

    def _reads_digest(self, db: Any, t: Any) -> str:
        text = format_reads_csv(self._csv_reads(db, t, real_ids=True))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    @staticmethod
    def _csv_reads(db: Any, t: Any, real_ids: bool) -> list[CoreRead]:
        """The trial's reads as the reads CSV holds them: a read opened but not yet scored
        has no rows, so it is not among them."""
        out = []
        for r in repo.reads_of_trial(db, t):
            core = repo.to_core_read(db, r, real_ids=real_ids)
            if core.scores:
                out.append(core)
        return out

    def _head(self, db: Any) -> dict[str, Any]:
        """The audit chain's head (rows, MAC) that every export carries."""
        from scorer.store.audit import chain_head

        return dict(chain_head(db))

    def _lock_info(self, db: Any, t: Any) -> dict[str, Any] | None:
        if not t.locked:
            return None
        sig = repo.last_signature(db, t.code)
        return {
            "signature": sig.id,
            "by": sig.printed_name,
            "at": sig.signed_at,
            "meaning": sig.meaning,
            "content_hash": sig.content_hash,
        }

    def export_reads_with_manifest(
        self, s: UserSession, trial: str, blinded: bool = False
    ) -> tuple[str, dict[str, Any]]:
        """The reads CSV and its manifest: trial, lock signature (when locked), protocol
        settings, the audit head and the CSV's SHA-256 — what `scorer report endpoints`
        checks before it uses an export."""
        text = self.export_reads(s, trial, blinded)
        with self.store.read() as db:
            t = self._trial(db, trial)
            manifest = {
                "kind": "scorer reads export",
                "trial": trial,
                "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                "blinded": blinded,
                "locked": bool(t.locked),
                "lock": self._lock_info(db, t),
                "protocol": self._protocol(t).to_dict(),
                "audit_head": self._head(db),
                "exported_by": s.username,
                "exported_at": self._now_str(),
            }
        return text, manifest

    def export_totals(self, s: UserSession, trial: str) -> str:
        """Per patient and reader: status totals per visit (mTSS, erosion, JSN) and the change
        from the first to the last visit, as CSV; audited with the audit head."""
        import csv
        import io

        from scorer.core.totals import change_totals, status_totals

        self._active(s, "coordinator")
        with self.store.read() as db:
            t = self._trial(db, trial)
            proto = self._protocol(t)
            method = get_method(proto.methods[0])
            rules = self._rules(proto)
            labels = [v.label for v in proto.visits] or [v.label for v in t.visits]
            by: dict[tuple[str, str, str], dict[str, CoreRead]] = {}
            for r in repo.reads_of_trial(db, t):
                if r.status != "signed" or r.method != method.id:
                    continue
                core = repo.to_core_read(db, r, real_ids=True)
                by.setdefault((core.patient, core.reader, core.read_type), {})[core.visit] = core
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(
            [
                "trial",
                "patient",
                "reader",
                "read_type",
                "visit",
                "mtss",
                "erosion",
                "jsn",
                "change_from",
                "change_to",
                "change_mtss",
                "change_erosion",
                "change_jsn",
            ]
        )
        for (patient, reader, read_type), visits in sorted(by.items()):
            present = [lbl for lbl in labels if lbl in visits]
            ch = None
            if len(present) >= 2:
                ch = change_totals(visits[present[0]], visits[present[-1]], method, rules)
            for lbl in present:
                st = status_totals(visits[lbl], method, rules)
                # IDs and codes as text a spreadsheet never runs (scorer.core.cells); the
                # totals are numbers, written as numbers, untouched.
                w.writerow(
                    [
                        *csv_row([trial, patient, reader, read_type, lbl]),
                        _n(st.total),
                        _n(st.by_feature.get("ERO")),
                        _n(st.by_feature.get("JSN")),
                        csv_text(present[0]) if ch else "",
                        csv_text(present[-1]) if ch else "",
                        _n(ch.total) if ch else "",
                        _n(ch.by_feature.get("ERO")) if ch else "",
                        _n(ch.by_feature.get("JSN")) if ch else "",
                    ]
                )
        text = out.getvalue()
        self._audit_export(s, trial, "totals", text)
        return text

    def export_audit(self, s: UserSession) -> str:
        """The whole audit trail as CSV (every row, with its MAC); audited itself. A monitor's
        copy leaves out what would tie a case to a patient or a visit (the worklists'
        randomisation inputs): their rows' MACs then cover more than the CSV shows."""
        import csv
        import io

        self._active(s, "coordinator", "monitor", "admin")
        blind = s.role == "monitor"
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(
            [
                "seq",
                "at",
                "username",
                "action",
                "entity",
                "entity_id",
                "old",
                "new",
                "reason",
                "mac",
            ]
        )
        with self.store.read() as db:
            for a in repo.audit_rows(db):
                # Every column but seq is text, written so a spreadsheet never runs it
                # (scorer.core.cells): a reason "-2" is written '-2.
                w.writerow(
                    [
                        a.seq,
                        *csv_row(
                            [
                                a.at,
                                a.username,
                                a.action,
                                a.entity,
                                a.entity_id,
                                self._blinded_text(a.old, blind),
                                self._blinded_text(a.new, blind),
                                a.reason,
                                a.mac,
                            ]
                        ),
                    ]
                )
        text = out.getvalue()
        self._audit_export(s, None, "audit trail", text)
        return text

    def _audit_export(self, s: UserSession, trial: str | None, what: str, text: str) -> None:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        with self._write(s) as tx:
            t = self._trial(tx.session, trial) if trial else None
            head = self._head(tx.session)
            tx.audit(
                "export",
                "trial" if t else "database",
                trial or "1",
                trial_id=t.id if t else None,
                new={"what": what, "sha256": digest, "audit_head": head},
            )
            tx.event(
                "export", trial or "", {"what": what, "sha256": digest}, s.id, t.id if t else None
            )

    def agreement_report(self, s: UserSession, trial: str) -> Any:
        """The agreement report (a :class:`scorer.reports.document.Document`) of the trial's
        reads exactly as `scorer export reads --blinded` writes them, with calibration."""
        from scorer.core.progression import parse_threshold
        from scorer.reports.agreement_report import agreement_document
        from scorer.reports.analysis import AnalysisError, AnalysisOptions

        self._active(s, "coordinator", "monitor")
        with self.store.read() as db:
            t = self._trial(db, trial)
            proto = self._protocol(t)
            text = format_reads_csv(self._csv_reads(db, t, real_ids=False))
            head = self._head(db)
            lock = self._lock_info(db, t)
        reads = parse_reads_csv(text, builtin_methods())
        options = AnalysisOptions(
            method=proto.methods[0],
            sdc_level=proto.sdc_level,
            rules=self._rules(proto),
            thresholds=tuple(parse_threshold(x) for x in proto.thresholds),
            rapid=parse_threshold(proto.rapid_threshold),
        )
        calibration = self.calibration_report(s, trial) if proto.calibration_patients else None
        facts = [
            ("Reads CSV SHA-256", hashlib.sha256(text.encode("utf-8")).hexdigest()),
            ("Audit head", f"{head['rows']} rows, MAC {head['mac'][:16]}…"),
            ("Locked", f"yes, by {lock['by']} at {lock['at']}" if lock else "no (reading open)"),
            ("Generated", self._now_str()),
        ]
        try:
            doc = agreement_document(
                reads,
                options,
                trial=trial,
                facts=facts,
                calibration=calibration,
                dates=s.role != "monitor",
            )
        except AnalysisError as exc:
            raise InvalidInput(f"the agreement report cannot be made yet: {exc}") from exc

        self._audit_export(s, trial, "agreement report", to_json_text(doc))
        return doc

    def transfer_package(self, s: UserSession, trial: str, out: Path) -> dict[str, str]:
        """A zip for the sponsor: the locked reads export and its manifest, per-patient
        totals, the agreement report (HTML, PDF, JSON, XLSX), the protocol settings, the audit
        trail and MANIFEST.sha256 with every file's SHA-256. Only a locked trial."""
        import tempfile
        import zipfile

        from scorer.core.private_files import replacing
        from scorer.reports.document import write as write_document

        self._active(s, "coordinator")
        with self.store.read() as db:
            if not self._trial(db, trial).locked:
                raise InvalidInput(f"trial {trial} is not locked: lock the reading first")
        text, manifest = self.export_reads_with_manifest(s, trial)
        files: dict[str, bytes] = {
            "reads.csv": text.encode("utf-8"),
            "reads.csv.manifest.json": (json.dumps(manifest, indent=2) + "\n").encode("utf-8"),
            "totals.csv": self.export_totals(s, trial).encode("utf-8"),
            "protocol.json": (json.dumps(manifest["protocol"], indent=2) + "\n").encode("utf-8"),
        }
        doc = self.agreement_report(s, trial)
        with tempfile.TemporaryDirectory() as tmp:
            for ext in ("html", "pdf", "json", "xlsx"):
                path = write_document(doc, Path(tmp) / f"agreement.{ext}")
                files[f"agreement.{ext}"] = path.read_bytes()
        files["audit-trail.csv"] = self.export_audit(s).encode("utf-8")
        sums = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
        files["MANIFEST.sha256"] = "".join(f"{h}  {n}\n" for n, h in sorted(sums.items())).encode()
        # Owner-only (0600), whole or not at all.
        with (
            replacing(Path(out)) as temporary,
            zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as z,
        ):
            for name in sorted(files):
                z.writestr(name, files[name])
        self._audit_export(s, trial, "transfer package", json.dumps(sums, sort_keys=True))
        return sums

    # ----------------------------------------------------------------- the monitor's view

    #: Keys of audit details that would tell a monitor who the patient is or which visit a
    #: read is: dropped from timelines before unblinding (a monitor sees case codes only).
    #: Also the worklists' randomisation inputs (patients, their visits, the seed), from
    #: which each case's visit order could be recomputed.
    BLINDED_KEYS = frozenset(
        {"patient", "patients", "real_id", "visit", "visits", "visit_date", "case", "seed"}
    )

    def reading_sessions(
        self,
        s: UserSession,
        reader: str | None = None,
        day: str | None = None,
        case: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every log-in session from the event log: who, start, end, cases opened, seconds
        on cases, films viewed and seconds per film; filtered by user, day (YYYY-MM-DD of the
        start) or a case code opened."""
        self._active(s, "monitor", "coordinator", "admin")
        with self.store.read() as db:
            by: dict[str, dict[str, Any]] = {}
            for e in repo.events(db, reader):
                if not e.session:
                    continue
                row = by.setdefault(
                    e.session,
                    {
                        "session": e.session,
                        "user": e.username,
                        "start": e.at,
                        "end": e.at,
                        "cases": [],
                        "seconds_on_cases": 0.0,
                        "images": {},
                        "events": 0,
                        "ended": False,
                    },
                )
                row["end"] = e.at
                row["events"] += 1
                if e.kind == "case.opened" and e.subject not in row["cases"]:
                    row["cases"].append(e.subject)
                if e.kind == "case.closed" and e.detail:
                    row["seconds_on_cases"] += float(json.loads(e.detail).get("seconds", 0.0))
                if e.kind == "image.viewed" and e.detail:
                    seconds = float(json.loads(e.detail).get("seconds", 0.0))
                    row["images"][e.subject] = row["images"].get(e.subject, 0.0) + seconds
                if e.kind == "logout":
                    row["ended"] = True
        out = []
        for row in by.values():
            if day and not row["start"].startswith(day):
                continue
            if case and case not in row["cases"]:
                continue
            row["cases_opened"] = len(row["cases"])
            row["seconds_on_cases"] = round(row["seconds_on_cases"], 1)
            images = row.pop("images")
            row["images_viewed"] = len(images)
            # Time per image: seconds on screen per film viewed (both films of a pair count).
            row["seconds_per_image"] = (
                round(sum(images.values()) / len(images), 1) if images else None
            )
            out.append(row)
        return sorted(out, key=lambda r: r["start"])

    def session_timeline(self, s: UserSession, session_id: str) -> list[dict[str, Any]]:
        """One session's timeline: its events (log-in, cases opened and closed, locks,
        exports) and the audit rows its user wrote meanwhile (each score with old → new and
        reason, signatures), in time order. A monitor sees case codes, never patients."""
        self._active(s, "monitor", "coordinator", "admin")
        with self.store.read() as db:
            events = [e for e in repo.events(db) if e.session == session_id]
            if not events:
                raise NotFound(f"no session {session_id!r}")
            user, start, end = events[0].username, events[0].at, events[-1].at
            case_of_read = repo.case_codes_of_reads(db)
            rows: list[dict[str, Any]] = [
                {
                    "at": e.at,
                    "source": "event",
                    "what": e.kind,
                    "subject": e.subject,
                    "detail": json.loads(e.detail) if e.detail else None,
                    "reason": "",
                }
                for e in events
            ]
            for a in repo.audit_rows(db):
                if a.username != user or not start <= a.at <= end:
                    continue
                subject = a.entity_id
                if a.entity == "read" and a.entity_id in case_of_read:
                    subject = f"case {case_of_read[a.entity_id]}"
                elif a.entity == "patient" and s.role == "monitor":
                    subject = "(a patient)"
                rows.append(
                    {
                        "at": a.at,
                        "source": "audit",
                        "what": a.action,
                        "subject": subject,
                        "detail": self._detail(a.old, a.new, s.role == "monitor"),
                        "reason": a.reason,
                    }
                )
        return sorted(rows, key=lambda r: (r["at"], r["source"] != "event"))

    def _detail(self, old: str, new: str, blind: bool) -> Any:
        def load(text: str) -> Any:
            if not text:
                return None
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                return text
            return self._blinded(value) if blind else value

        o, n = load(old), load(new)
        return {"old": o, "new": n} if o is not None else n

    def _blinded(self, value: Any) -> Any:
        """``value`` without the keys a monitor may not see (at any depth)."""
        if isinstance(value, dict):
            return {k: self._blinded(v) for k, v in value.items() if k not in self.BLINDED_KEYS}
        if isinstance(value, list):
            return [self._blinded(v) for v in value]
        return value

    def _blinded_text(self, text: str, blind: bool) -> str:
        """An audit row's stored old/new JSON, blinded for a monitor (same JSON form)."""
        if not blind or not text:
            return text
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return text
        blinded = self._blinded(value)
        if blinded == value:
            return text
        return json.dumps(blinded, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    def session_document(self, s: UserSession, session_id: str) -> Any:
        """One session's timeline as a report document (CSV, PDF, ...); audited as an export."""
        from scorer.reports.document import Document, Section, Table

        rows = self.session_timeline(s, session_id)
        info = next((r for r in self.reading_sessions(s) if r["session"] == session_id), None)
        doc = Document(
            f"Reading session {session_id[:8]}",
            [
                ("User", str(info["user"] if info else "")),
                ("Start", str(info["start"] if info else "")),
                ("End", str(info["end"] if info else "")),
                ("Cases opened", str(info["cases_opened"] if info else "")),
            ],
            [
                Section(
                    "Timeline",
                    [
                        Table(
                            "Timeline",
                            f"Events and audit rows of the session (n = {len(rows)})",
                            ["At", "Source", "What", "Subject", "Detail", "Reason"],
                            [
                                [
                                    r["at"],
                                    r["source"],
                                    r["what"],
                                    r["subject"],
                                    _short(r["detail"]),
                                    r["reason"],
                                ]
                                for r in rows
                            ],
                        )
                    ],
                )
            ],
            {"timeline": rows},
        )
        self._audit_export(s, None, f"session {session_id}", json.dumps(rows, sort_keys=True))
        return doc

    def audit_document(self, s: UserSession) -> Any:
        """The whole audit trail as a report document, with the verification result; audited
        as an export."""
        from scorer.reports.document import Document, Paragraph, Section, Table

        self._active(s, "monitor", "coordinator", "admin")
        result = self.verify()
        blind = s.role == "monitor"
        with self.store.read() as db:
            rows = [
                [
                    a.seq,
                    a.at,
                    a.username,
                    a.action,
                    a.entity_id,
                    _short(self._blinded_text(a.new, blind)),
                    a.reason,
                ]
                for a in repo.audit_rows(db)
            ]
            head = self._head(db)
        doc = Document(
            "Audit trail",
            [
                ("Verification", "verifies" if result.ok else "; ".join(result.errors[:3])),
                ("Head", f"{head['rows']} rows, MAC {head['mac']}"),
                ("Signatures checked", str(result.signatures)),
            ],
            [
                Section(
                    "Rows",
                    [
                        Paragraph("Each row's MAC chains it to the one before (HMAC-SHA-256)."),
                        Table(
                            "Audit trail",
                            f"The audit trail (n = {len(rows)} rows)",
                            ["Seq", "At", "User", "Action", "Entity", "New", "Reason"],
                            rows,
                        ),
                    ],
                )
            ],
        )
        self._audit_export(s, None, "audit trail document", str(head))
        return doc

    # ----------------------------------------------------------------- backup

    def backup(self, s: UserSession, out: Path) -> dict[str, Any]:
        """An online backup of the SQLite store, with its receipts and the key's location
        (never the key), in one zip; audited with the row counts and heads it recorded."""
        from scorer.store.backup import BackupError
        from scorer.store.backup import backup as make_backup

        self._active(s, "admin", "coordinator")
        loc = self.store.location
        if loc.sqlite_path is None:
            raise ScorerError(
                "scorer backup copies an SQLite file; a server database is backed up with the "
                "server's own tools: use pg_dump for PostgreSQL (or continuous archiving), and "
                f"copy the receipts file ({loc.receipts_path}) with it"
            )
        try:
            info = make_backup(
                loc.sqlite_path,
                loc.receipts_path,
                loc.key_path,
                Path(out),
                s.username,
                self._now_str(),
            )
        except (BackupError, OSError, sqlite3.Error) as exc:
            raise ScorerError(f"the backup was not made: {exc}") from exc
        with self._write(s) as tx:
            tx.audit(
                "database.backup",
                "database",
                "1",
                new={"file": Path(out).name, "sha256": info["sha256"], "heads": info["heads"]},
            )
        return info

    @staticmethod
    def restore(
        archive: Path, db: str | None = None, location: Location | None = None
    ) -> dict[str, Any]:
        """Restore a backup to a new database path, checked by row counts and chain heads,
        then verify the audit trail with the key at its configured place."""
        from scorer.store.backup import BackupError, read_info
        from scorer.store.backup import restore as unpack

        loc = location or resolve(db)
        if loc.sqlite_path is None:
            raise ScorerError("backups restore to an SQLite path")
        try:
            recorded = read_info(Path(archive))
        except BackupError as exc:
            raise ScorerError(f"nothing was restored: {exc}") from exc
        from scorer.store.audit import load_key

        if not loc.key_path.exists():
            raise ScorerError(
                f"nothing was restored: the audit key is not at {loc.key_path} (backups never "
                "hold it): copy it there from its secured place, or set audit_key in the config"
            )
        try:
            load_key(
                loc.key_path, group=loc.audit_group
            )  # present, owner-only and well formed, before anything moves
        except Exception as exc:
            raise ScorerError(f"nothing was restored: {exc}") from exc
        fingerprint = hashlib.sha256(loc.key_path.read_bytes()).hexdigest()[:16]
        if recorded["key"].get("fingerprint") not in (None, fingerprint):
            raise ScorerError(
                f"nothing was restored: the key at {loc.key_path} is not this database's key"
            )
        try:
            info = unpack(Path(archive), loc.sqlite_path, loc.receipts_path)
        except (BackupError, OSError, sqlite3.Error) as exc:
            raise ScorerError(f"nothing was restored: {exc}") from exc
        ws = Workspace.open(location=loc)
        try:
            result = ws.verify()
            if not result.ok:
                raise ScorerError(
                    "restored, but the audit trail does not verify with the key at "
                    f"{loc.key_path}: {'; '.join(result.errors[:3])}"
                )
            with ws.store.write("system") as tx:
                tx.audit(
                    "database.restore",
                    "database",
                    "1",
                    new={"from": Path(archive).name, "sha256": info["sha256"]},
                )
            # Backups hold no images, and the database names them relative to the stores:
            # say how many the configured readers' store does not have.
            with ws.store.read() as session:
                stored = repo.reader_paths(session)
            info["images"] = len(stored)
            info["images_missing"] = sum(
                1 for p in stored if not ws.store.location.image_file(p).exists()
            )
            info["readers_store"] = str(ws.store.location.readers_store)
        finally:
            ws.close()
        return info

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


@contextlib.contextmanager
def _existing_store(loc: Location) -> Iterator[Store]:
    """The store at ``loc`` for a maintenance command (migrate, grant): it must exist; opening
    and store errors become ScorerError; closed afterwards."""
    if not database_exists(loc):
        raise ScorerError(f"no scorer database at {loc.shown} (from {loc.source})")
    try:
        store = Store(loc)
    except Exception as exc:
        raise ScorerError(str(exc)) from exc
    try:
        yield store
    except StoreError as exc:
        raise ScorerError(str(exc)) from exc
    finally:
        store.close()


def _a(role: str) -> str:
    """'a reader', 'an admin', 'an adjudicator'."""
    return ("an " if role[:1] in "aeiou" else "a ") + role


#: Longest free text (a note, a reason, a flag, an answer, a comment), in characters.
MAX_TEXT = 10_000
#: Longest name (a printed name, a trial's name, a patient identifier, a campaign), in characters.
MAX_NAME = 200
#: Bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): they make text
#: display as other text than it is ("evil\u202etxt.exe"), in a name, a reason or an export.
#: The direction marks (U+200E, U+200F, U+061C), which real Arabic and Hebrew prose uses,
#: are not among them.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: Characters that print as nothing, refused in names: the zero-width space, the word
#: joiner, the byte-order mark, the Hangul fillers, the blank Braille pattern.
_INVISIBLE = frozenset("\u200b\u2060\ufeff\u115f\u1160\u3164\uffa0\u2800")
#: The zero-width non-joiner and joiner: part of the spelling of Persian, Kurdish and Indic
#: names, so allowed between two letters (or a letter and a mark), refused anywhere else.
_JOINERS = frozenset("\u200c\u200d")
#: The line and paragraph separators: line breaks, which a one-line name may not hold.
_LINE_SEPARATORS = frozenset("\u2028\u2029")


def _bad_char(text: str, allowed: str = "", bidi: bool = False) -> str | None:
    """The first character ``text`` may not hold, described; None if it has none.

    Refused: control characters (C0, DEL, C1) other than those in ``allowed``, bidi
    embeddings, overrides and isolates (``bidi`` is kept for callers; they are refused
    always), and lone surrogates (bytes that were not UTF-8). Letters of every script are
    fine, and so are the direction marks."""
    for i, c in enumerate(text, start=1):
        o = ord(c)
        if (o < 0x20 or 0x7F <= o <= 0x9F) and c not in allowed:
            return f"a control character (U+{o:04X}) at position {i}"
        if c in _BIDI_CONTROLS:
            return f"a bidirectional override or isolate (U+{o:04X}) at position {i}"
        if 0xD800 <= o <= 0xDFFF:
            return f"bytes that are not UTF-8 text at position {i}"
    return None


def _between_letters(text: str, i: int) -> bool:
    """Whether ``text[i]`` stands between two letters (or marks) of a script beyond Latin,
    as a joiner does in a Persian or Indic name ("علی‌رضا")."""
    if not 0 < i < len(text) - 1:
        return False
    before, after = text[i - 1], text[i + 1]
    return (
        unicodedata.category(before)[0] in "LM"
        and unicodedata.category(after)[0] in "LM"
        and max(ord(before), ord(after)) > 0x024F
    )


def _check_name(text: str, what: str, limit: int = MAX_NAME) -> None:
    """A one-line name: at most ``limit`` characters, no control or bidi characters, no
    invisible characters or line separators, and (unless empty) a letter or digit, so that
    it prints as something."""
    if len(text) > limit:
        raise InvalidInput(f"the {what} is {len(text):,} characters long; at most {limit:,}")
    bad = _bad_char(text)
    for i, c in enumerate(text, start=1):
        if bad:
            break
        if c in _INVISIBLE or (c in _JOINERS and not _between_letters(text, i - 1)):
            bad = f"an invisible character (U+{ord(c):04X}) at position {i}"
        elif c in _LINE_SEPARATORS:
            bad = f"a line separator (U+{ord(c):04X}) at position {i}"
    if bad:
        raise InvalidInput(f"the {what} contains {bad}")
    if text and not any(unicodedata.category(c)[0] in "LN" for c in text):
        raise InvalidInput(
            f"the {what} has no letter or digit: it would print as blank space or marks only"
        )


def _check_text(text: str, what: str, limit: int = MAX_TEXT) -> None:
    """A free text (note, reason, flag, answer): at most ``limit`` characters; tabs and line
    breaks are fine, other control characters are not, nor bidi embeddings, overrides and
    isolates (the direction marks U+200E, U+200F and U+061C are fine: prose mixing Arabic
    and Latin uses them)."""
    if len(text) > limit:
        raise InvalidInput(f"the {what} is {len(text):,} characters long; at most {limit:,}")
    bad = _bad_char(text, allowed="\t\n")
    if bad:
        raise InvalidInput(f"the {what} contains {bad}")


def _need_reason(reason: str) -> None:
    if not reason or not reason.strip():
        raise InvalidInput("a reason is required")
    _check_text(reason, "reason")


def _id_problem(text: str, what: str) -> str | None:
    """Why ``text`` cannot be a user ID, a trial code or a label: 1-64 letters (of any
    script), digits, dots, dashes or underscores; the first other character is named."""
    rule = f"a {what} is 1-64 letters, digits, dots, dashes or underscores"
    if not text:
        return f"{rule}; it is empty"
    if len(text) > 64:
        return f"{rule}; this one is {len(text):,} characters long"
    for i, c in enumerate(text, start=1):
        if not (c.isalnum() or c in "._-"):
            shown = "a space" if c == " " else repr(c) if c.isprintable() else "a character"
            return f"{rule}; {shown} (U+{ord(c):04X}) at position {i} is none of these"
    return None


def _check_username(name: str) -> None:
    problem = _id_problem(name, "user ID")
    if problem:
        raise InvalidInput(problem)
    _check_formula(name, "user ID")


def _check_password(
    password: str, username: str, full_name: str = "", previous: Sequence[str] = ()
) -> None:
    """The password policy (scorer.store.passwords.check_policy) as the facade's InvalidInput."""
    try:
        check_policy(password, username, full_name, previous)
    except PasswordPolicyError as exc:
        raise InvalidInput(str(exc)) from exc


def _check_code(code: str, what: str) -> None:
    problem = _id_problem(code, what)
    if problem:
        raise InvalidInput(problem)
    _check_formula(code, what)


def _check_formula(text: str, what: str) -> None:
    """An ID written raw in reads CSVs may not start with - + = @: a spreadsheet would run it
    as a formula (scorer.core.cells)."""
    lead = formula_lead(text)
    if lead:
        raise InvalidInput(
            f"a {what} may not start with {lead}: a spreadsheet would run {text!r} as a formula"
        )


def _n(value: float | None) -> str:
    """A total in a CSV cell: integers as integers, scaled totals to 6 places, missing empty."""
    if value is None:
        return ""
    return f"{value:.0f}" if abs(value - round(value)) < 1e-9 else f"{value:.6f}"


def to_json_text(doc: Any) -> str:
    from scorer.reports.document import to_json

    return str(to_json(doc))


def _short(value: Any, limit: int = 120) -> str:
    """A detail in one line for a table cell."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"
