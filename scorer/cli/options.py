"""The options every command that opens the database shares, and the one path through which
such a command opens it, logs in (asking for passwords, never taking them from argv), runs
and logs out."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from scorer.cli.output import EXIT_ERROR, err
from scorer.cli.registry import Opt, OptionSet

#: A command's work once logged in: (workspace, session, passwords) -> exit status.
Body = Callable[[Any, Any, "Passwords"], int]


@dataclass(frozen=True)
class Database(OptionSet):
    """--db: the database a command opens.

    Args:
        db: database URL or SQLite path (default: SCORER_DB, the site config, or the user data
            directory)
    """

    db: Annotated[str | None, Opt(metavar="URL")] = None


@dataclass(frozen=True)
class Login(Database):
    """--db, and who logs in to it: --user, and whether passwords come from standard input.

    Args:
        user: your user ID (or SCORER_USER)
        password_stdin: read passwords from standard input, one per line
    """

    user: Annotated[str | None, Opt(metavar="NAME")] = None
    password_stdin: bool = False


class CliError(Exception):
    """A problem to report on standard error with exit status 1."""


class Passwords:
    """Passwords from a prompt, or one per line from standard input (never from argv)."""

    def __init__(self, from_stdin: bool) -> None:
        self.from_stdin = from_stdin
        self._lines: list[str] | None = None

    def get(self, prompt: str, confirm: bool = False) -> str:
        if self.from_stdin:
            if self._lines is None:
                self._lines = sys.stdin.read().splitlines()
            if not self._lines:
                raise CliError("--password-stdin: standard input has no more password lines")
            return self._lines.pop(0)
        import getpass

        if not sys.stdin.isatty():
            raise CliError("no terminal to ask for the password on: pipe it with --password-stdin")
        try:
            first = getpass.getpass(prompt)
            if confirm and getpass.getpass("again: ") != first:
                raise CliError("the two passwords differ")
        except (EOFError, KeyboardInterrupt):
            raise CliError("no password given") from None
        return first

    def new(self, prompt: str) -> str:
        """A new password, asked twice (with --password-stdin: the next two lines)."""
        first = self.get(prompt)
        if self.get("again: ") != first:
            raise CliError("the two new passwords differ")
        return first


def open_workspace(db: Database) -> Any:
    """The workspace over ``--db``."""
    from scorer.workspace import Workspace

    return Workspace.open(db=db.db)


def log_in(login: Login, ws: Any, pw: Passwords, change: bool = False) -> Any:
    """Log in; then change the password when asked to (``change``) or when the account must
    (its first log-in, or after a reset): the new password twice, before the command runs."""
    user = login.user or os.environ.get("SCORER_USER")
    if not user:
        raise CliError("say who you are: --user NAME (or SCORER_USER)")
    old = pw.get(f"password for {user}: ")
    s = ws.accounts.login(user, old)
    if not (change or s.must_change_password):
        return s
    try:
        if s.must_change_password and not change:
            print(f"{user} must choose a new password before anything else.", file=sys.stderr)
        try:
            new = pw.new(f"new password for {user}: ")
        except CliError as exc:
            if not s.must_change_password:
                raise
            raise CliError(
                f"you must change your password before anything else ({exc}): give the new "
                "password twice (with --password-stdin, on the two lines after the current one)"
            ) from exc
        ws.accounts.change_password(s, old, new)
    except BaseException:
        ws.accounts.logout(s)
        raise
    if not change:
        print(f"changed the password of {user}", file=sys.stderr)
    return s


def run_store(login: Login, body: Body, change_password: bool = False) -> int:
    """Open the workspace, log in (changing the password first when the account must, or when
    ``change_password``), run ``body(ws, session, passwords)``, log out."""
    from scorer.workspace import ScorerError

    pw = Passwords(login.password_stdin)
    try:
        ws = open_workspace(login)
    except ScorerError as exc:
        err(str(exc))
        return EXIT_ERROR
    try:
        s = log_in(login, ws, pw, change=change_password)
        try:
            rc: int = body(ws, s, pw)
            return rc
        finally:
            ws.accounts.logout(s)
    except (ScorerError, CliError) as exc:
        err(str(exc))
        return EXIT_ERROR
    finally:
        ws.close()
