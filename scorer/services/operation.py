"""How every operation runs: the caller's session and role checked, one transaction, the audit
writer, and the rights table (``docs/roles.md``) generated from the same declarations.

A service method declared with :func:`operation` receives an :class:`Op` in place of the
caller's :class:`~scorer.services.session.UserSession`::

    @operation("reader", "adjudicator", write=True)
    def set_note(self, op: Op, code: str, note: str) -> int:
        r = own_read(op.user, op.db, code, write=True)
        op.tx.audit(...)

and is called with the session: ``ws.reading.set_note(session, code, note)``. The check of the
account (not disabled nor locked, role and password unchanged since log-in) runs inside the
operation's own transaction, so a change of role cannot fall between the check and the write; a
failed check ends the session on whichever workstation it is open.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar, overload

from scorer.services.errors import AuthError, PermissionDenied, ScorerError, SessionLocked
from scorer.services.lookups import chain_head, find_trial
from scorer.services.session import Settings, UserSession, format_time, parse_time, with_article
from scorer.store import repository as repo
from scorer.store.database import Session, Store, StoreError, Tx
from scorer.store.passwords import verify_password
from scorer.store.schema import ROLES


class TimedWrite:
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


@dataclass
class Context:
    """What every service of one open database shares: the store, the security settings, the
    clock, and the films delivered to readers in this session (file -> stored copy's SHA-256,
    pixel data's SHA-256), so listing a case again does not write its films again."""

    store: Store
    settings: Settings = field(default_factory=Settings)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    delivered: dict[str, tuple[str, str]] = field(default_factory=dict)

    def now(self) -> datetime:
        return self.clock()

    def now_str(self) -> str:
        return format_time(self.clock())

    def write(self, username: str, session_id: str = "", scoped: bool = False) -> TimedWrite:
        """A write transaction stamped with this context's clock; store errors as ScorerError.
        ``session_id``: the log-in session whose operation it is (on its audit rows);
        ``scoped``: work in one trial, beside other trials' (:meth:`Store.write`)."""
        return TimedWrite(self.store.write(username, session_id, scoped), self.now_str())

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session; store errors as ScorerError."""
        try:
            with self.store.read() as db:
                yield db
        except StoreError as exc:
            raise ScorerError(str(exc)) from exc


@dataclass(frozen=True)
class Rights:
    """Who may run one operation: its name (``domain.method``), the roles allowed (empty: any
    logged-in user), whether it writes, and its summary (the docstring's first line)."""

    name: str
    roles: tuple[str, ...]
    write: bool
    summary: str
    session: str = "checked"  # "checked", "own" (handles its own session: log-in, unlock)


#: Every operation declared so far, by name; docs/roles.md is made from it (scorer.services.rights).
RIGHTS: dict[str, Rights] = {}


@dataclass
class Op:
    """What an operation runs with: the caller, the time, and its one transaction.

    ``db`` is the transaction's ORM session (read-only for a reading operation); ``tx`` is the
    audit writer of a writing operation. An operation declared ``transaction=False`` (long work:
    decoding, imports, backups, exports) gets neither: it opens its writes with :meth:`write`
    and its reads with :meth:`read`, each of which checks the caller's account and role again
    inside the transaction it opens, so an account disabled while the work ran writes nothing
    and reads nothing more."""

    user: UserSession
    now: str
    _db: Session | None = None
    _tx: Tx | None = None
    _ctx: Context | None = None
    _roles: tuple[str, ...] = ()
    _scoped: bool = False

    @property
    def db(self) -> Session:
        if self._db is None:
            raise RuntimeError("this operation was declared without a transaction")
        return self._db

    @property
    def tx(self) -> Tx:
        if self._tx is None:
            raise RuntimeError("this operation was declared read-only: it has no audit writer")
        return self._tx

    def _context(self) -> Context:
        if self._ctx is None:
            raise RuntimeError("only an operation declared transaction=False opens its own")
        return self._ctx

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """A write transaction of its own, the caller's account and role checked inside it."""
        ctx = self._context()
        with ctx.write(self.user.username, self.user.id, self._scoped) as tx:
            check_account(tx.session, self.user, self._roles, False, ctx.now())
            yield tx

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read transaction of its own, the caller's account and role checked inside it."""
        ctx = self._context()
        with ctx.read() as db:
            check_account(db, self.user, self._roles, False, ctx.now())
            yield db


S = TypeVar("S", bound="Service")
P = ParamSpec("P")
R = TypeVar("R")


def _summary(fn: Callable[..., Any]) -> str:
    doc = (fn.__doc__ or "").strip()
    return " ".join(doc.split("\n\n", 1)[0].split()) if doc else fn.__name__.replace("_", " ")


def _register(fn: Callable[..., Any], roles: tuple[str, ...], write: bool, session: str) -> Rights:
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValueError(f"{fn.__qualname__}: unknown role(s) {unknown}")
    domain = fn.__module__.rsplit(".", 1)[-1]
    rights = Rights(f"{domain}.{fn.__name__}", roles, write, _summary(fn), session)
    RIGHTS[rights.name] = rights
    return rights


def operation(
    *roles: str,
    write: bool = False,
    transaction: bool = True,
    allow_must_change: bool = False,
    scoped: bool = False,
) -> Callable[[Callable[Concatenate[S, Op, P], R]], Callable[Concatenate[S, UserSession, P], R]]:
    """Declare a service method an operation for ``roles`` (none: any logged-in user).

    The wrapper checks that the session is open and recent (an idle one is locked, and that
    event committed, before SessionLocked is raised: the one write outside the operation's
    transaction), opens one transaction (a write transaction if ``write``), checks the account
    and the role inside it, runs the method with an :class:`Op`, and commits once.

    ``transaction=False`` is for long work (decoding, rendering, statistics, copying) and for
    writes that must commit part of their work before an error (a wrong signature password
    counts towards the lockout): the account and role are checked in a read transaction of
    their own and the method opens what it needs through ``self._ctx``. ``write`` then only
    says, in the rights table, that the operation changes the database.

    ``scoped``: the operation works in one trial, found by its code or by the code of a case or
    read of it (the lookups bind the transaction to that trial before they return), so its
    writes wait only for the same trial's (and for the centre's work: accounts, set-up), and
    its audit rows go into that trial's chain. Without it a write runs alone, as the centre's
    work does (its rows in the chain of the one trial they name, or the centre's)."""

    def decorate(
        fn: Callable[Concatenate[S, Op, P], R],
    ) -> Callable[Concatenate[S, UserSession, P], R]:
        rights = _register(fn, roles, write, "checked")

        @functools.wraps(fn)
        def run(self: S, s: UserSession, /, *args: P.args, **kwargs: P.kwargs) -> R:
            ctx = self._ctx
            now = check_open(ctx, s)
            if write and transaction:
                with ctx.write(s.username, s.id, scoped) as tx:
                    check_account(tx.session, s, roles, allow_must_change, now)
                    return fn(self, Op(s, tx.now, tx.session, tx), *args, **kwargs)
            with ctx.read() as db:
                check_account(db, s, roles, allow_must_change, now)
                if transaction:
                    return fn(self, Op(s, format_time(now), db), *args, **kwargs)
            op = Op(s, format_time(now), _ctx=ctx, _roles=roles, _scoped=scoped)
            return fn(self, op, *args, **kwargs)

        run.rights = rights  # type: ignore[attr-defined]
        return run

    return decorate


@overload
def own_session(fn: Callable[P, R], *, write: bool = True) -> Callable[P, R]: ...


@overload
def own_session(
    fn: None = None, *, write: bool = True
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def own_session(
    fn: Callable[P, R] | None = None, *, write: bool = True
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Declare an operation that handles the session itself (log in, log out, lock, unlock,
    a first-log-in password change): it is listed in the rights table for every role, and
    the method checks what it needs explicitly. ``write=False`` for one that writes nothing."""

    def declare(f: Callable[P, R]) -> Callable[P, R]:
        f.rights = _register(f, (), write, "own")  # type: ignore[attr-defined]
        return f

    return declare(fn) if fn is not None else declare


def check_open(ctx: Context, s: UserSession) -> datetime:
    """Refuse an ended session; lock (and record) one idle too long. Returns the time now."""
    if s.closed:
        raise AuthError("this session has ended; log in again")
    now = ctx.now()
    idle = now - s.last_active
    if s.locked or idle > timedelta(minutes=ctx.settings.inactivity_minutes):
        if not s.locked:
            s.locked = True
            with ctx.write(s.username, s.id) as tx:
                tx.event(
                    "session.locked",
                    s.username,
                    {"idle_seconds": round(idle.total_seconds())},
                    s.id,
                )
        raise SessionLocked(
            "the session is locked after inactivity; enter your password to unlock it"
        )
    return now


def check_account(
    db: Session,
    s: UserSession,
    roles: tuple[str, ...],
    allow_must_change: bool,
    now: datetime,
) -> None:
    """In the operation's transaction: the session still stands (:func:`end_if_stale`), its
    password need not be changed first, and the role may do this."""
    user = repo.user_by_id(db, s.user_id)
    end_if_stale(db, user, s, now)
    if user.must_change_password and not s.must_change_password:
        # An administrator reset the password since this session began: the session may do
        # nothing more until the new password is chosen.
        s.must_change_password = True
    if s.must_change_password and not allow_must_change:
        raise PermissionDenied("you must change your password before anything else")
    if roles and s.role not in roles:
        raise PermissionDenied(
            f"{with_article(s.role)} may not do this (needs: {' or '.join(roles)})"
        )
    s.last_active = now


def end_if_stale(db: Session, user: Any, s: UserSession, now: datetime) -> None:
    """End the session (``s.closed``, AuthError saying why) when its account changed since it
    logged in, whichever workstation changed it: disabled, its role changed, locked after
    repeated failed attempts, or its password changed or reset (the session that changed its
    own password carries on: it holds the new password's mark)."""
    ending = "which ends this session"
    if user.disabled:
        why = f"this account has been disabled, {ending}; ask an administrator"
    elif user.role != s.role:
        why = (
            f"your role changed from {s.role} to {user.role} since you logged in, {ending}; "
            "log in again"
        )
    elif user.locked_until and parse_time(user.locked_until) > now:
        until = parse_time(user.locked_until)
        mins = max(1, round((until - now).total_seconds() / 60))
        why = (
            f"this account is locked after repeated failed attempts until "
            f"{until:%H:%M} UTC (in {mins} minute(s)), {ending}; log in again after that or "
            "ask an administrator"
        )
    elif s.password_mark != repo.password_mark(db, user.id):
        why = (
            f"your password was reset by an administrator, {ending}; log in again with the "
            "temporary password"
            if user.must_change_password
            else f"your password was changed at another workstation, {ending}; log in again "
            "with the new password"
        )
    else:
        return
    s.closed = True
    s.ended_because = why
    raise AuthError(why)


class Service:
    """One domain's operations over the shared :class:`Context`; the base holds the pieces
    several domains use: the clock, the credential checks of log-in and signatures, and the
    audit of an export."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    @property
    def store(self) -> Store:
        return self._ctx.store

    @property
    def settings(self) -> Settings:
        return self._ctx.settings

    def _now(self) -> datetime:
        return self._ctx.now()

    def _now_str(self) -> str:
        return self._ctx.now_str()

    def _write(self, s: UserSession | None, username: str | None = None) -> TimedWrite:
        return self._ctx.write(username or (s.username if s else "system"), s.id if s else "")

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
        if user.locked_until and parse_time(user.locked_until) <= now:
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
        locks = user.failed_logins >= self.settings.lockout_attempts
        if locks:
            until = now + timedelta(minutes=self.settings.lockout_minutes)
            user.locked_until = format_time(until)
            tx.audit(
                "user.lockout",
                "user",
                user.username,
                new={"locked_until": user.locked_until},
                reason=f"{user.failed_logins} consecutive failed log-ins",
            )
        if at_login:
            # The same words as for an unknown user ID, so IDs cannot be probed: not even the
            # failure that locks the account says so (the words say after how many it would).
            return self._generic_login_failure()
        if locks:
            return (
                f"wrong password; the account is now locked for "
                f"{self.settings.lockout_minutes:g} minutes"
            )
        left = self.settings.lockout_attempts - user.failed_logins
        return f"wrong password ({left} attempt(s) left before the account locks)"

    def _generic_login_failure(self) -> str:
        return (
            f"wrong user ID or password (after {self.settings.lockout_attempts} failed attempts "
            f"in a row an account locks for {self.settings.lockout_minutes:g} minutes)"
        )

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
        if user.locked_until and parse_time(user.locked_until) > self._now():
            return "this account is locked after repeated failed attempts"
        if not verify_password(user.password_hash, password):
            return self._count_failure(tx, user, self._now())
        return ""

    def _audit_export(self, op: Op, trial: str | None, what: str, text: str) -> None:
        """Record an export (what, its SHA-256, the chain head) in a write of its own, the
        caller's account checked again in it."""
        s = op.user
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        with op.write() as tx:
            t = find_trial(tx.session, trial) if trial else None
            head = chain_head(tx.session, t)
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
