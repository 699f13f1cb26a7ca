"""Commands over accounts: user add, list, disable, reset-password (an admin's), passwd (your
own)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from scorer.cli.options import Login, Passwords, run_store
from scorer.cli.output import EXIT_OK, OutputFormat, emit
from scorer.cli.registry import Opt, command, group

POLICY = (
    "Passwords: at least 10 characters, not the user ID or name, not in the bundled list of "
    "common passwords, not one of the account's last 5; never given on the command line."
)


def _roles() -> tuple[str, ...]:
    """The roles an account may have."""
    from scorer.store.schema import ROLES

    return ROLES


group(
    "user",
    help="accounts: add, list, disable, reset-password (admin); passwd (your own)",
    dest="user_cmd",
)


@command("user", "add", epilog=POLICY)
def user_add(
    username: str,
    *,
    name: Annotated[str, Opt(metavar="FULL NAME")],
    role: Annotated[str, Opt(choices=_roles)],
    login: Login,
) -> int:
    """add an account with a first password (admin)

    Add an account. Its first password is asked twice (with --password-stdin: the admin's
    password, then the new account's, one per line). The new account must change it at its
    first log-in: in the window, or on its first command here, which asks for the first
    password, then the new one twice (with --password-stdin: three lines) before it runs; or
    with `scorer user passwd`.
    """

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        password = pw.get(f"first password for {username}: ", confirm=True)
        ws.accounts.add_user(s, username, name, role, password)
        print(f"added {role} {username}; they must change the password at first log-in")
        return EXIT_OK

    return run_store(login, body)


@command("user", "list", listed=False)
def user_list(*, format: OutputFormat = "text", login: Login) -> int:
    """The accounts, with their role and whether disabled, locked or due a new password."""

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        emit(format, [u.to_dict() for u in ws.accounts.list_users(s)], _user_lines)
        return EXIT_OK

    return run_store(login, body)


def _user_lines(users: list[dict[str, Any]]) -> Iterator[str]:
    for u in users:
        flags = [f for f in ("disabled", "locked", "must_change_password") if u[f]]
        yield (
            f"{u['username']:<16} {u['role']:<12} {u['full_name']}"
            + (f"  [{', '.join(flags)}]" if flags else "")
        )


@command("user", "disable", listed=False)
def user_disable(username: str, *, reason: str, login: Login) -> int:
    """Disable an account, with a reason (audited)."""

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        ws.accounts.disable_user(s, username, reason)
        print(f"disabled {username}")
        return EXIT_OK

    return run_store(login, body)


@command("user", "reset-password", listed=False, epilog=POLICY)
def user_reset_password(username: str, *, reason: str, login: Login) -> int:
    """Give an account a temporary password, to be changed at its next log-in."""

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        password = pw.get(f"temporary password for {username}: ", confirm=True)
        ws.accounts.reset_password(s, username, password, reason)
        print(f"reset the password of {username}; they must change it at next log-in")
        return EXIT_OK

    return run_store(login, body)


@command("user", "passwd", epilog=POLICY)
def user_passwd(*, login: Login) -> int:
    """change your own password

    Change your own password: the current one, then the new one twice (with --password-stdin:
    three lines). Also for an account that must change its password (a new account, or after
    reset-password).
    """

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        print(f"{s.username}: password changed")
        return EXIT_OK

    return run_store(login, body, change_password=True)
