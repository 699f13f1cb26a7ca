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
        maintenance: an administrator's run on the reading-centre server's host: allows a
            PostgreSQL database (workstations go through the server; the host's own commands
            need no --maintenance)
    """

    db: Annotated[str | None, Opt(metavar="URL")] = None
    maintenance: bool = False


@dataclass(frozen=True)
class Station(Database):
    """--db, or --server: a command a workstation runs, on its own database or on the
    reading centre's server.

    Args:
        server: the reading-centre server, https://HOST:PORT (or SCORER_SERVER, or server =
            in the site config): the command runs there, this machine holds no database
        fingerprint: the SHA-256 fingerprint scorer server printed: pins its certificate on
            this workstation (needed once, for a self-signed certificate)
        cacert: the site's CA certificate (PEM) that signed the server's certificate
    """

    server: Annotated[str | None, Opt(metavar="URL")] = None
    fingerprint: Annotated[str | None, Opt(metavar="SHA256")] = None
    cacert: Annotated[str | None, Opt(metavar="PEM")] = None


@dataclass(frozen=True)
class Login(Station):
    """--db or --server, and who logs in: --user, and whether passwords come from standard
    input.

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


def open_workspace(db: Database, on_server_host: bool = False) -> Any:
    """The workspace over ``--server`` (a reading-centre server; a :class:`Station`'s), or
    over ``--db`` (a PostgreSQL one only for a command of the server's host, or with
    ``--maintenance``: see :func:`refuse_server_database`)."""
    server = server_url(db) if isinstance(db, Station) else None
    if server:
        from scorer.client.remote import RemoteWorkspace

        assert isinstance(db, Station)
        return RemoteWorkspace.open(server, cafile=db.cacert, fingerprint=db.fingerprint)
    if not on_server_host:
        refuse_server_database(db.db, db.maintenance)
    from scorer.workspace import Workspace

    return Workspace.open(db=db.db)


def refuse_server_database(db: str | None, maintenance: bool = False) -> None:
    """Refuse a workstation's command (and ``scorer gui``) on a PostgreSQL database, unless an
    administrator runs it with ``--maintenance`` on the server's host: a reading centre's
    workstations hold no database login, they connect to its ``scorer server``. SQLite (a
    one-user station, the demo) stays open to every command. The one check for every path
    that opens a database for a workstation's command; the server host's own commands (init,
    migrate, grant, revoke, backup, restore, receive, pull, server) do not call it."""
    from scorer.store.location import LocationError, chosen_url, is_postgresql

    if maintenance:
        return
    try:
        url, source = chosen_url(db)
    except LocationError as exc:
        raise CliError(str(exc)) from None
    if is_postgresql(url):
        raise CliError(
            f"this is a PostgreSQL database (from {source}): a reading centre's "
            "workstations connect to its scorer server (scorer gui --server "
            "https://HOST:PORT, see README 'A reading centre'); an administrator on the "
            "server's host can run this command with --maintenance"
        )


def server_url(db: Station) -> str | None:
    """The server a command runs on: --server, else (with no --db) SCORER_SERVER or the site
    config's ``server``; None for a direct database."""
    if db.server:
        if db.db:
            raise CliError("give --server or --db, not both")
        return db.server
    if db.db:
        return None
    from scorer.store.location import configured_server

    return os.environ.get("SCORER_SERVER") or configured_server()


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


def run_store(
    login: Login, body: Body, change_password: bool = False, on_server_host: bool = False
) -> int:
    """Open the workspace, log in (changing the password first when the account must, or when
    ``change_password``), run ``body(ws, session, passwords)``, log out. ``on_server_host``:
    a command of the server's host (backup, receive, pull), allowed on PostgreSQL."""
    from scorer.workspace import ScorerError

    pw = Passwords(login.password_stdin)
    try:
        ws = open_workspace(login, on_server_host=on_server_host)
    except (ScorerError, CliError) as exc:
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
