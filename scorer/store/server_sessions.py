"""What ``scorer server`` keeps between requests: its log-in sessions, each under its bearer
token's SHA-256 (the token itself is never stored), and recent log-in attempts for the rate
limit. Both tables are exempt from the audit trail's projection (see
:data:`scorer.store.projection.EXEMPT`): the event log records log-ins and log-outs, and the
audit trail every failed log-in.

Each function runs one short transaction of its own on the store's engine, outside the audit
machinery (no audit row is written for a session's heartbeat)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select, update

from scorer.store.database import Store
from scorer.store.schema import LoginAttempt, ServerSession

#: The advisory-lock key that counts log-in attempts one at a time ("scorlog" in ASCII).
PG_LOGIN_LOCK = 0x73636F726C6F67

#: The stored fields of a session, besides its token's hash.
FIELDS = (
    "session_id",
    "user_id",
    "username",
    "full_name",
    "role",
    "started",
    "last_active",
    "must_change_password",
    "locked",
    "signed_once",
    "password_mark",
)


@dataclass
class StoredSession:
    """One server session's row: who, since when, last active, and its state."""

    session_id: str
    user_id: int
    username: str
    full_name: str
    role: str
    started: str
    last_active: str
    must_change_password: bool
    locked: bool
    signed_once: bool
    password_mark: int


def put(store: Store, token_sha256: str, s: StoredSession) -> None:
    """Store a new session under its token's hash."""
    with store.engine.begin() as c:
        c.execute(
            insert(ServerSession).values(
                token_sha256=token_sha256, **{f: getattr(s, f) for f in FIELDS}
            )
        )


def get(store: Store, token_sha256: str) -> StoredSession | None:
    """The session stored under the hash, or None."""
    with store.engine.execution_options(scorer_readonly=True).connect() as c:
        row = c.execute(
            select(*(getattr(ServerSession, f) for f in FIELDS)).where(
                ServerSession.token_sha256 == token_sha256
            )
        ).first()
        c.rollback()
    if row is None:
        return None
    return StoredSession(**dict(zip(FIELDS, row, strict=True)))


#: The columns a request may change of its session.
STATE = ("last_active", "must_change_password", "locked", "signed_once", "password_mark")


def save(
    store: Store, token_sha256: str, s: StoredSession, before: StoredSession | None = None
) -> None:
    """Write back a session's changed state (a session deleted meanwhile stays deleted). With
    ``before`` (the state the request loaded) only the columns this request changed are
    written, so two requests on one session that overlap do not undo each other's change (a
    save that loaded the session before a lock must not write ``locked`` back to false); the
    time of activity only ever moves forward."""
    changed = {
        name: getattr(s, name)
        for name in STATE
        if before is None or getattr(before, name) != getattr(s, name)
    }
    if not changed:
        return
    where = [ServerSession.token_sha256 == token_sha256]
    with store.engine.begin() as c:
        active = changed.pop("last_active", None)
        if changed:
            c.execute(update(ServerSession).where(*where).values(**changed))
        if active is not None:
            c.execute(
                update(ServerSession)
                .where(*where, ServerSession.last_active < active)
                .values(last_active=active)
            )


def drop(store: Store, token_sha256: str) -> None:
    """Forget a session (log-out, ended, expired)."""
    with store.engine.begin() as c:
        c.execute(delete(ServerSession).where(ServerSession.token_sha256 == token_sha256))


def drop_idle(store: Store, before: str) -> int:
    """Forget every session last active before ``before`` (an ISO time); how many."""
    with store.engine.begin() as c:
        n = c.execute(delete(ServerSession).where(ServerSession.last_active < before)).rowcount
    return int(n or 0)


def record_attempt(store: Store, keys: list[str], at: float, since: float) -> dict[str, int]:
    """Record one attempt under each key and return each key's attempts since ``since``
    before this one, in one write transaction: concurrent log-ins are counted one after the
    other (SQLite's write lock, PostgreSQL's advisory lock :data:`PG_LOGIN_LOCK`), so none
    slips past the limit."""
    with store.engine.begin() as c:
        if c.dialect.name == "postgresql":
            # A lock of the count's own, not whatever lock the write transaction takes for
            # the audit chains: the count must stay one at a time however those are locked.
            c.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_LOGIN_LOCK})")
        rows = c.execute(
            select(LoginAttempt.key, func.count())
            .where(LoginAttempt.key.in_(keys), LoginAttempt.at >= since)
            .group_by(LoginAttempt.key)
        ).all()
        c.execute(delete(LoginAttempt).where(LoginAttempt.at < since))
        c.execute(insert(LoginAttempt), [{"key": k, "at": at} for k in keys])
    counts = {k: 0 for k in keys}
    counts.update({str(k): int(n) for k, n in rows})
    return counts


def forget_attempt(store: Store, key: str, at: float) -> None:
    """Take back one attempt recorded under ``key`` at ``at`` (a log-in that succeeded, which
    the client address's limit does not count)."""
    with store.engine.begin() as c:
        one = (
            select(func.min(LoginAttempt.id))
            .where(LoginAttempt.key == key, LoginAttempt.at == at)
            .scalar_subquery()
        )
        c.execute(delete(LoginAttempt).where(LoginAttempt.id == one))
