"""Who is at the workstation: the user's session, the security settings, opaque codes, times.

Plain values shared by every service; nothing here touches the database.
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from scorer.store.passwords import hash_password

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@dataclass(frozen=True)
class Settings:
    """Security settings, declared once with their defaults (version 1)."""

    lockout_attempts: int = 5
    lockout_minutes: float = 15.0
    inactivity_minutes: float = 15.0
    version: int = 1


@dataclass
class UserSession:
    """A logged-in user at one workstation: who, since when, and the signature state.

    ``password_mark`` names the password the session logged in with (or set itself): the id
    of the account's newest password-history row, 0 when it has none. A password changed
    anywhere else (by the user at another workstation, or an administrator's reset) adds a
    newer row, and the session's next call ends it. Rehashing at log-in adds no row."""

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
    password_mark: int = 0
    ended_because: str = ""  # why a change to the account ended the session (its message)


def new_code(length: int = 10) -> str:
    """A random opaque code (never sequential, betrays no order)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def parse_time(s: str) -> datetime:
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def format_time(d: datetime) -> str:
    return d.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@functools.cache
def timing_hash() -> str:
    """A hash to check passwords of unknown user IDs against (equal work, never matches)."""
    return hash_password(secrets.token_urlsafe(24))


def with_article(role: str) -> str:
    """'a reader', 'an admin', 'an adjudicator'."""
    return ("an " if role[:1] in "aeiou" else "a ") + role
