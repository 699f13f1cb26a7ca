"""Password hashing (argon2id with argon2-cffi's defaults) and the password policy."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from scorer.core.methods import resources_dir

MIN_LENGTH = 10
#: How many of an account's passwords (the current one included) a new one may not repeat.
HISTORY = 5
#: Names this short are only refused whole, not inside a longer password.
_MIN_NAME_INSIDE = 4


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


@functools.cache
def common_passwords() -> frozenset[str]:
    """The bundled list of common passwords (resources/common-passwords.txt), lower case."""
    path = resources_dir() / "common-passwords.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(x for x in lines if x and not x.startswith("#"))


def _letters(text: str) -> str:
    return "".join(c for c in text.casefold() if c.isalnum())


def check_policy(
    password: str, username: str, full_name: str = "", previous: Sequence[str] = ()
) -> None:
    """The one password policy, for every way a password is set: at least ``MIN_LENGTH``
    characters, no surrounding spaces, not the user ID or printed name (nor containing them),
    not in the bundled list of common passwords, and not one of ``previous`` (the argon2
    hashes of the account's last ``HISTORY`` passwords). Raises PasswordPolicyError naming the
    rule; the message never contains the password."""
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"password refused: it must be at least {MIN_LENGTH} characters")
    if password.strip() != password:
        raise PasswordPolicyError("password refused: it must not begin or end with a space")
    folded, letters = password.casefold(), _letters(password)
    name = _letters(full_name)
    if (
        (username and username.casefold() in folded)
        or (name and letters == name)
        or (len(name) >= _MIN_NAME_INSIDE and name in letters)
    ):
        raise PasswordPolicyError("password refused: it is (or contains) the user ID or name")
    if folded in common_passwords():
        raise PasswordPolicyError("password refused: it is in the list of common passwords")
    if any(verify_password(h, password) for h in previous[:HISTORY]):
        raise PasswordPolicyError(
            f"password refused: it is one of the account's last {HISTORY} passwords"
        )
