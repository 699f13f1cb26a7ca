"""Accounts: log in and out, session lock, passwords, and the users an administrator keeps."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from scorer.services.errors import AuthError, InvalidInput, NotFound
from scorer.services.operation import (
    Op,
    Service,
    check_account,
    check_open,
    end_if_stale,
    operation,
    own_session,
)
from scorer.services.session import UserSession, new_code, parse_time, timing_hash
from scorer.services.validation import check_name, check_password, check_username, need_reason
from scorer.store import repository as repo
from scorer.store.passwords import (
    HISTORY,
    hash_password,
    needs_rehash,
    verify_password,
)
from scorer.store.schema import (
    ROLES,
)


@dataclass(frozen=True)
class Account:
    """One account as listed: user ID, printed name, role, and whether it is disabled, locked
    after failed log-ins, or due a new password."""

    username: str
    full_name: str
    role: str
    disabled: bool
    locked: bool
    must_change_password: bool

    def to_dict(self) -> dict[str, Any]:
        """The account as JSON: the fields in their order (``scorer user list --format json``)."""
        return asdict(self)


#: The longest workstation name a log-in records (a host name is at most 63 characters).
MAX_WORKSTATION = 64


def workstation_name(given: str | None) -> str:
    """The workstation a log-in records: ``given`` (a client's own name, sent through the
    server), or this computer's network name; printable, at most :data:`MAX_WORKSTATION`."""
    import platform

    name = platform.node() if given is None else given
    if len(name) > MAX_WORKSTATION or not name.isprintable():
        raise InvalidInput(
            f"a workstation name is printable text of at most {MAX_WORKSTATION} characters, "
            f"not {name[:80]!r}"
        )
    return name


class AccountsService(Service):
    """Log-in, log-out, lock and unlock of a session; password changes; users added, listed,
    disabled and reset."""

    @own_session
    def login(
        self, username: str, password: str, workstation: str | None = None, address: str = ""
    ) -> UserSession:
        """Log in: check the password; count failures and lock the account after too many.
        The login event names the workstation (this computer's name unless one is given: the
        server passes the name its client sent) and, through the server, the peer address."""
        station = workstation_name(workstation)
        # A wrong password gets the same words whether the user ID exists, is disabled or is
        # locked out: only the right password learns that the account is disabled or locked.
        # Every path checks a password, so none answers faster than another either.
        now = self._now()
        with self._write(None, username) as tx:
            user = repo.user_by_name(tx.session, username)
            if user is None:
                verify_password(timing_hash(), password)
                tx.audit("user.login_failed", "user", username, reason="unknown user ID")
                failure = self._generic_login_failure()
            elif user.disabled:
                right = verify_password(user.password_hash, password)
                why = "account disabled" if right else "account disabled; wrong password"
                tx.audit("user.login_failed", "user", username, reason=why)
                failure = (
                    "this account is disabled; ask an administrator"
                    if right
                    else self._generic_login_failure()
                )
            elif user.locked_until and parse_time(user.locked_until) > now:
                right = verify_password(user.password_hash, password)
                why = "account locked" if right else "account locked; wrong password"
                tx.audit("user.login_failed", "user", username, reason=why)
                until = parse_time(user.locked_until)
                mins = max(1, round((until - now).total_seconds() / 60))
                failure = (
                    f"this account is locked after repeated failed log-ins; try again in "
                    f"{mins} minute(s) or ask an administrator"
                    if right
                    else self._generic_login_failure()
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
                    password_mark=repo.password_mark(tx.session, user.id),
                )
                where = {"workstation": station} | ({"address": address} if address else {})
                tx.event("login", username, {"role": user.role} | where, session.id)
        if failure:
            raise AuthError(failure)
        return session

    @own_session
    def logout(self, s: UserSession) -> None:
        """Log out: end the session (recorded); an ended session stays ended."""
        if s.closed:
            return
        with self._write(s) as tx:
            tx.event("logout", s.username, None, s.id)
        s.closed = True

    @own_session
    def lock(self, s: UserSession) -> None:
        """Lock the session now (the reader steps away)."""
        s.locked = True
        with self._write(s) as tx:
            tx.event("session.locked", s.username, {"by": "user"}, s.id)

    @own_session
    def unlock(self, s: UserSession, password: str) -> None:
        """Unlock a locked session with the same user's password."""
        if s.closed:
            raise AuthError("this session has ended; log in again")
        now = self._now()
        with self._write(s) as tx:
            user = repo.user_by_id(tx.session, s.user_id)
            # Disabled, locked, its role or password changed meanwhile: the session has ended.
            end_if_stale(tx.session, user, s, now)
            if not verify_password(user.password_hash, password):
                failure = self._count_failure(tx, user, now)
            else:
                failure = ""
                self._reset_failures(tx, user, "session unlocked with the password")
                tx.event("session.unlocked", s.username, None, s.id)
        if failure:
            raise AuthError(failure)
        s.locked = False
        s.last_active = now

    @own_session
    def change_password(self, s: UserSession, old: str, new: str) -> None:
        """Change one's own password (also the first-log-in change): the old password, and a
        new one meeting the policy (not one of the account's last passwords either)."""
        # Its own session handling: the session checked as for any operation but allowed to
        # change a password it must change; a wrong old password's count is committed before
        # the error, as a failed log-in's is.
        now = check_open(self._ctx, s)
        mark = s.password_mark
        with self._write(s) as tx:
            check_account(tx.session, s, (), True, now)
            check_password(new, s.username, s.full_name)
            if old == new:
                raise InvalidInput("the new password must differ from the old one")
            user = repo.user_by_id(tx.session, s.user_id)
            if user.locked_until and parse_time(user.locked_until) > self._now():
                failure = "this account is locked after repeated failed attempts"
            elif not verify_password(user.password_hash, old):
                failure = self._count_failure(tx, user, self._now())
            else:
                failure = ""
                previous = repo.password_history(tx.session, user, HISTORY)
                check_password(new, s.username, user.full_name, previous)
                repo.set_password(tx.session, user, hash_password(new), tx.now, HISTORY)
                user.must_change_password = False
                tx.audit("user.password_changed", "user", s.username, reason="by the user")
                mark = repo.password_mark(tx.session, user.id)
        if failure:
            raise AuthError(failure)
        # This session carries on with the new password; the account's others end.
        s.must_change_password = False
        s.password_mark = mark

    @operation("admin", write=True)
    def add_user(self, op: Op, username: str, full_name: str, role: str, password: str) -> None:
        """Create an account (admin); it must change its password at first log-in."""
        check_username(username)
        if role not in ROLES:
            raise InvalidInput(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
        if not full_name.strip():
            raise InvalidInput("a printed name is required (it appears on signatures)")
        check_name(full_name, "printed name")
        check_password(password, username, full_name)
        if repo.user_by_name(op.db, username) is not None:
            raise InvalidInput(f"the user ID {username!r} is taken")
        hashed = hash_password(password)
        user = repo.add_user(op.db, username, full_name, role, hashed, must_change=True, now=op.now)
        repo.set_password(op.db, user, hashed, op.now, HISTORY)
        op.tx.audit("user.add", "user", username, new={"role": role, "full_name": full_name})

    @operation("admin", "coordinator")
    def list_users(self, op: Op) -> list[Account]:
        """List the accounts: role, and whether disabled, locked or due a new password."""
        now = self._now()
        return [
            Account(
                username=u.username,
                full_name=u.full_name,
                role=u.role,
                disabled=u.disabled,
                locked=bool(u.locked_until and parse_time(u.locked_until) > now),
                must_change_password=u.must_change_password,
            )
            for u in repo.all_users(op.db)
        ]

    @operation("admin", write=True)
    def disable_user(self, op: Op, username: str, reason: str) -> None:
        """Disable an account, with a reason (admin; not one's own)."""
        need_reason(reason)
        if username == op.user.username:
            raise InvalidInput("you cannot disable your own account")
        user = repo.user_by_name(op.db, username)
        if user is None:
            raise NotFound(f"no user {username!r}")
        op.tx.audit(
            "user.disable",
            "user",
            username,
            old={"disabled": user.disabled},
            new={"disabled": True},
            reason=reason,
        )
        user.disabled = True

    @operation("admin", write=True)
    def reset_password(self, op: Op, username: str, password: str, reason: str) -> None:
        """Set a temporary password (admin); the user must change it at next log-in."""
        need_reason(reason)
        check_password(password, username)
        user = repo.user_by_name(op.db, username)
        if user is None:
            raise NotFound(f"no user {username!r}")
        previous = repo.password_history(op.db, user, HISTORY)
        check_password(password, username, user.full_name, previous)
        repo.set_password(op.db, user, hash_password(password), op.now, HISTORY)
        user.must_change_password = True
        user.failed_logins = 0
        user.locked_until = None
        op.tx.audit("user.password_reset", "user", username, reason=reason)
        if user.id == op.user.user_id:
            # One's own reset: this session carries on (to choose a new password); others end.
            op.user.password_mark = repo.password_mark(op.db, user.id)

    @own_session(write=False)
    def keep_alive(self, s: UserSession) -> None:
        """Mark a running service's session (the DICOM receiver) active, so it does not lock
        for inactivity while it runs; refused like any call once the account is disabled."""
        now = check_open(self._ctx, s)
        with self._ctx.read() as db:
            check_account(db, s, (), False, now)
