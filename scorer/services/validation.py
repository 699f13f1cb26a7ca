"""The rules free text, names, IDs and passwords must meet before anything is stored."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from scorer.core.cells import formula_lead
from scorer.services.errors import InvalidInput
from scorer.store.passwords import (
    PasswordPolicyError,
    check_policy,
)

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


def check_name(text: str, what: str, limit: int = MAX_NAME) -> None:
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


def check_text(text: str, what: str, limit: int = MAX_TEXT) -> None:
    """A free text (note, reason, flag, answer): at most ``limit`` characters; tabs and line
    breaks are fine, other control characters are not, nor bidi embeddings, overrides and
    isolates (the direction marks U+200E, U+200F and U+061C are fine: prose mixing Arabic
    and Latin uses them)."""
    if len(text) > limit:
        raise InvalidInput(f"the {what} is {len(text):,} characters long; at most {limit:,}")
    bad = _bad_char(text, allowed="\t\n")
    if bad:
        raise InvalidInput(f"the {what} contains {bad}")


def need_reason(reason: str) -> None:
    if not reason or not reason.strip():
        raise InvalidInput("a reason is required")
    check_text(reason, "reason")


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


def check_username(name: str) -> None:
    problem = _id_problem(name, "user ID")
    if problem:
        raise InvalidInput(problem)
    check_formula(name, "user ID")


def check_password(
    password: str, username: str, full_name: str = "", previous: Sequence[str] = ()
) -> None:
    """The password policy (scorer.store.passwords.check_policy) as the facade's InvalidInput."""
    try:
        check_policy(password, username, full_name, previous)
    except PasswordPolicyError as exc:
        raise InvalidInput(str(exc)) from exc


def check_code(code: str, what: str) -> None:
    problem = _id_problem(code, what)
    if problem:
        raise InvalidInput(problem)
    check_formula(code, what)


def check_formula(text: str, what: str) -> None:
    """An ID written raw in reads CSVs may not start with - + = @: a spreadsheet would run it
    as a formula (scorer.core.cells)."""
    lead = formula_lead(text)
    if lead:
        raise InvalidInput(
            f"a {what} may not start with {lead}: a spreadsheet would run {text!r} as a formula"
        )
