"""Password hashing (argon2id with argon2-cffi's defaults) and the password policy."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 10


class PasswordPolicyError(ValueError):
    """A new password that does not meet the policy."""


def hasher() -> PasswordHasher:
    return PasswordHasher()


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return hasher().verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with other parameters than today's defaults."""
    try:
        return hasher().check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def check_policy(password: str, username: str) -> None:
    """Refuse a password that is too short or contains the user ID."""
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"a password needs at least {MIN_LENGTH} characters")
    if username and username.lower() in password.lower():
        raise PasswordPolicyError("a password must not contain the user ID")
    if password.strip() != password:
        raise PasswordPolicyError("a password must not begin or end with spaces")
