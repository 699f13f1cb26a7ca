"""What the command line is given, checked: a password (or another secret) on it is refused
before argparse could print it back, bytes that are not UTF-8 are named, and the parser never
prints back a word it did not understand (it may be a password typed at the wrong prompt)."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from scorer.cli.output import EXIT_USAGE, visible

#: argparse's "invalid choice: 'VALUE'" (Python 3.11 quotes with repr, 3.12+ with quotes).
_INVALID_CHOICE = re.compile(
    r"(argument [^:]*: )invalid choice: (?:'[^\n]*?'|\"[^\n]*?\")(?= \(choose from)"
)

#: An unrecognised argument named in the error: an option's plain ASCII name, nothing else.
_PLAIN_OPTION = re.compile(r"--[A-Za-z][A-Za-z-]{0,39}")


class ScorerParser(argparse.ArgumentParser):
    """argparse, with a usage error's value shown safely (escaped, cut short), and arguments
    it does not understand never printed back (one of them may be a password).

    ``on_usage_error``, when a command sets it, says a usage error of that command its own way
    and gives its exit status (``scorer health``: a monitor's WARNING, not exit 2)."""

    on_usage_error: Callable[[str], int] | None = None

    def error(self, message: str) -> NoReturn:
        # argparse quotes the word it did not take ("invalid choice: 'Hunter2-x'"): a word in
        # a command's place may be a password typed at the wrong prompt, so it is not shown.
        message = _INVALID_CHOICE.sub(
            r"\1invalid choice (not printed, in case it is a password)", message
        )
        self.print_usage(sys.stderr)
        if self.on_usage_error is not None:
            self.exit(self.on_usage_error(message))
        self.exit(EXIT_USAGE, f"{self.prog}: error: {visible(message)}\n")

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        given = list(sys.argv[1:] if args is None else args)
        parsed, extra = self.parse_known_args(given, namespace)
        if extra:
            command = self._command_for(given)
            names = [
                a
                for a in extra
                if _PLAIN_OPTION.fullmatch(a) and password_on_command_line([a]) is None
            ]
            others = len(extra) - len(names)
            said = ", ".join(names)
            if others:
                said += (" and " if names else "") + (
                    f"{others} {'other ' if names else ''}argument{'s' if others > 1 else ''} "
                    f"not understood by `{command.prog}` (not printed, in case one is a "
                    "password)"
                )
            command.error(f"unrecognized arguments: {said}; see `{command.prog} --help`")
        return parsed

    def _command_for(self, argv: Sequence[str]) -> argparse.ArgumentParser:
        """The (sub)command ``argv`` names, as deep as its words go."""
        parser: argparse.ArgumentParser = self
        for word in argv:
            subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
            if subs and word in subs[0].choices:
                parser = subs[0].choices[word]
        return parser


#: Dashes a name may be typed with (a word processor turns "--" into an en or em dash).
_DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
#: An option name that says a secret follows (or is glued to it): "pw" as a word.
_SECRET_NAME = re.compile(r"pass|pwd|secret|token|(?<![a-z])pw(?![a-z])")
#: Words an option naming a secret may be printed with: anything else might be the secret.
_NAME_WORDS = frozenset(
    {
        *("new", "old", "initial", "admin", "user", "current", "confirm", "first", "again"),
        *("db", "database", "api", "access", "auth", "root", "password", "passwd", "pass"),
        *("pw", "pwd", "secret", "token"),
    }
)


def password_on_command_line(argv: Sequence[str]) -> str | None:
    """How to name an option that looks like a password (or another secret) given on the
    command line, if any: "--new-password", "—password" (any dashes), "--secret=...", "-pX".
    Its value is never shown, nor a name that might hold it ("--passwordHunter2")."""
    for arg in argv:
        if arg == "--":
            break
        name = arg.split("=", 1)[0]
        if name == "--password-stdin" and "=" not in arg:
            continue
        if not name or name[0] not in _DASHES or any(c.isspace() for c in name):
            continue
        bare = name.lstrip(_DASHES).lower()
        single = name.startswith("-") and not name.startswith("--") and bare.startswith("p")
        if not (single or _SECRET_NAME.search(bare)):
            continue
        words = bare.split("-")
        shown = (
            name.isascii()
            and name.startswith("--")
            and len(words) <= 4
            and all(w in _NAME_WORDS for w in words)
        ) or name in ("-p", "—password", "–password")
        return name if shown else "a password option"
    return None


def unreadable_argument(argv: Sequence[str]) -> str | None:
    """Why an argument cannot be taken, or None: bytes that are not UTF-8 (they reach Python
    as lone surrogates), or a NUL (no file name or value holds one)."""
    for i, arg in enumerate(argv):
        name = argv[i - 1] if i and argv[i - 1].startswith("-") else f"argument {i + 1}"
        for c in arg:
            if "\udc80" <= c <= "\udcff":
                return (
                    f"{name}: byte 0x{ord(c) - 0xDC00:02x} is not UTF-8 text; scorer's "
                    "arguments are UTF-8"
                )
            if "\ud800" <= c <= "\udfff" or c == "\x00":
                return f"{name}: U+{ord(c):04X} cannot be in an argument"
    return None
