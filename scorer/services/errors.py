"""The errors every service raises; each message is meant for the person at the desk."""

from __future__ import annotations

from collections.abc import Mapping

from scorer.core.methods import Area
from scorer.core.reads import AreaScore


class ScorerError(Exception):
    """Base of the errors the facade raises; the message is meant for the person at the desk."""


class AuthError(ScorerError):
    """Wrong user ID or password, a locked or disabled account."""


class PermissionDenied(ScorerError):
    """The caller's role or ownership does not allow the operation."""


class SessionLocked(ScorerError):
    """The session was locked for inactivity; unlock with the password."""


class Unavailable(ScorerError):
    """The database or the reading centre's server did not answer: nothing was committed,
    and the same request may be sent again."""


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
