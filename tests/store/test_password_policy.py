"""The password policy and passwords on the command line: every rule refused with its own
message on every route, the last 5 passwords remembered (and the history seeded by the 0006
migration), `scorer user passwd`, the first-log-in change on any command so an account made by
`scorer user add` never needs the window, a password given as an option refused without being
printed back, and readers created by a reads import held to the user ID rules of `user add`.

The facade tests run on SQLite and PostgreSQL (populated_copy, fresh_db); the command-line
tests in-process on an SQLite file, with one run of the installed `scorer` as a subprocess.
"""

from __future__ import annotations

import csv
import io
import itertools
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from scorer.cli import main
from scorer.store.database import make_engine
from scorer.store.migrate import upgrade
from scorer.store.passwords import (
    HISTORY,
    PasswordPolicyError,
    check_policy,
    common_passwords,
    hash_password,
)
from scorer.workspace import InvalidInput, Workspace

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "worked-example.csv"
ADMIN_PW = "Admin-Secret-77"
FIRST_PW = "Temporary-Secret-881"
OWN_PW = "Chosen-Secret-5521"
SECRET = "Hunter2-Secret-0"  # what a careless user types after --password

SHORT = "password refused: it must be at least 10 characters"
SPACES = "password refused: it must not begin or end with a space"
NAME = "password refused: it is (or contains) the user ID or name"
COMMON = "password refused: it is in the list of common passwords"
REPEAT = f"password refused: it is one of the account's last {HISTORY} passwords"


# ------------------------------------------------------------------ the policy itself


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("Short-1", SHORT),
        (" padded-password", SPACES),
        ("nora-secret-1", NAME),  # contains the user ID
        ("NORA", SHORT),
        ("Nora Newcomer", NAME),  # the printed name, any case and spacing
        ("NoraNewcomer!!", NAME),
        ("xx-nora.newcomer-xx", NAME),
        ("Password1234", COMMON),
        ("QWERTYUIOP", COMMON),
        ("1234567890", COMMON),
        ("letmein123", COMMON),
        ("Radiograph2024", COMMON),
        ("Scorer-2026", COMMON),
    ],
)
def test_each_rule_is_refused_with_its_own_message(password: str, message: str) -> None:
    with pytest.raises(PasswordPolicyError) as err:
        check_policy(password, "nora", "Nora Newcomer")
    assert str(err.value) == message
    assert password not in str(err.value)


def test_a_good_password_passes_and_a_short_name_is_only_refused_whole() -> None:
    check_policy(OWN_PW, "nora", "Nora Newcomer")
    check_policy("Albatross-Wing-42", "zed", "Al")  # a 2-letter name only refused whole
    with pytest.raises(PasswordPolicyError, match="user ID or name"):
        check_policy("Albatross-Wing-42", "zed", "Albatross")
    with pytest.raises(PasswordPolicyError, match="user ID or name"):
        check_policy("Albatross-Wing-42", "ALBA", "")


def test_the_previous_passwords_are_refused() -> None:
    old = [hash_password(f"Old-Secret-{i}xx") for i in range(HISTORY + 1)]
    for i in (0, HISTORY - 1):  # the newest and the oldest remembered
        with pytest.raises(PasswordPolicyError) as err:
            check_policy(f"Old-Secret-{i}xx", "nora", "", old)
        assert str(err.value) == REPEAT
    check_policy(f"Old-Secret-{HISTORY}xx", "nora", "", old)  # only the last 5 count


def test_the_common_password_list_is_what_the_script_makes() -> None:
    script = runpy.run_path(str(REPO / "scripts" / "make_common_passwords.py"))
    bundled = (REPO / "resources" / "common-passwords.txt").read_text(encoding="utf-8")
    assert bundled == script["text"]()
    common = common_passwords()
    assert len(common) > 10_000
    assert all(len(p) >= 10 and p == p.lower() for p in common)
    for classic in ("password1234", "qwertyuiop", "1234567890", "letmein123", "iloveyou12"):
        assert classic in common


# ------------------------------------------------------------------ through the facade

#: Each way a password is set, for reader1 (or a new account nora).
ROUTES = {
    "add_user": lambda c, pw: c.ws.accounts.add_user(
        c.session("admin"), "nora", "Nora Newcomer", "reader", pw
    ),
    "change_password": lambda c, pw: c.ws.accounts.change_password(
        c.session("reader1"), c.password("reader1"), pw
    ),
    "reset_password": lambda c, pw: c.ws.accounts.reset_password(
        c.session("admin"), "reader1", pw, "forgot it"
    ),
}


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_every_route_refuses_the_name_and_common_passwords(populated_copy: Any, route: str) -> None:
    c = populated_copy
    name = "Nora Newcomer" if route == "add_user" else c.full_name("reader1")
    before = c.dump()
    for password, message in [(name.replace(" ", "") + "!", NAME), ("Password1234", COMMON)]:
        with pytest.raises(InvalidInput) as err:
            ROUTES[route](c, password)
        assert str(err.value) == message
    assert c.dump() == before


def test_the_last_five_passwords_cannot_come_back(populated_copy: Any) -> None:
    c = populated_copy
    ws, s = c.ws, c.session("reader1")
    chain = [c.password("reader1")] + [f"Rotating-Secret-{i}x" for i in range(1, HISTORY + 1)]
    for old, new in itertools.pairwise(chain):
        ws.accounts.change_password(s, old, new)
    current = chain[-1]
    before = c.dump()
    for earlier in (chain[-HISTORY], chain[-3]):  # the oldest remembered, and a later one
        with pytest.raises(InvalidInput) as err:
            ws.accounts.change_password(s, current, earlier)
        assert str(err.value) == REPEAT
    with pytest.raises(InvalidInput) as err:  # an admin's reset is held to it too
        ws.accounts.reset_password(c.session("admin"), "reader1", chain[-2], "forgot it")
    assert str(err.value) == REPEAT
    assert c.dump() == before
    # Only the last 5 are kept; the one before them is allowed again.
    (count,) = c.sql(
        "SELECT COUNT(*) FROM password_history WHERE user_id = "
        "(SELECT id FROM users WHERE username = 'reader1')"
    )[0]
    assert count == HISTORY
    ws.accounts.change_password(s, current, chain[0])
    assert ws.accounts.login("reader1", chain[0]).username == "reader1"


def test_the_0006_migration_seeds_the_history_with_the_current_passwords(fresh_db: str) -> None:
    url = fresh_db if "://" in fresh_db else f"sqlite:///{fresh_db}"
    engine = make_engine(url)
    upgrade(engine, "0005")
    current = hash_password(OWN_PW)
    insert = sa.text(
        "INSERT INTO users (username, full_name, role, password_hash, must_change_password, "
        "failed_logins, disabled, created_at) VALUES (:u, :n, :r, :h, :m, 0, :d, :t)"
    )
    with engine.begin() as con:
        con.execute(
            insert,
            {"u": "ada", "n": "Ada", "r": "admin", "h": current, "m": False, "d": False, "t": "x"},
        )
        con.execute(  # a reader of imported reads: no password at all
            insert,
            {"u": "R1", "n": "R1", "r": "reader", "h": "!imported", "m": True, "d": True, "t": "y"},
        )
    upgrade(engine, key=b"k" * 32)
    with engine.connect() as con:
        rows = con.execute(
            sa.text(
                "SELECT u.username, h.password_hash, h.set_at FROM password_history h "
                "JOIN users u ON u.id = h.user_id"
            )
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("ada", current, "x")]
    with pytest.raises(PasswordPolicyError, match="last 5 passwords"):
        check_policy(OWN_PW, "ada", "Ada", [rows[0][1]])


# ------------------------------------------------------------------ the command line


class Cli:
    """Runs `scorer ...` in-process with passwords fed on standard input."""

    def __init__(
        self, db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.db, self.capsys, self.monkeypatch = db, capsys, monkeypatch

    def __call__(self, *args: str, stdin: str = "") -> tuple[int, str, str]:
        self.monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        rc = main([*args, "--db", str(self.db)])
        out, err = self.capsys.readouterr()
        return rc, out, err


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    c = Cli(tmp_path / "db.sqlite", capsys, monkeypatch)
    rc, _, err = c(
        "init", "--admin", "ada", "--name", "Ada Admin", "--password-stdin", stdin=ADMIN_PW + "\n"
    )
    assert rc == 0, err
    rc, _, err = c(
        "user",
        "add",
        "cora",
        "--name",
        "Cora Coordinator",
        "--role",
        "coordinator",
        "--user",
        "ada",
        "--password-stdin",
        stdin=f"{ADMIN_PW}\n{FIRST_PW}\n",
    )
    assert rc == 0, err
    return c


AS_CORA = ("--user", "cora", "--password-stdin")


def test_a_new_account_changes_its_password_and_creates_a_trial_from_the_command_line(
    cli: Cli,
) -> None:
    """Done when: an account made by `scorer user add` changes its password and runs `scorer
    trial create` from the command line only."""
    rc, out, err = cli("user", "passwd", *AS_CORA, stdin=f"{FIRST_PW}\n{OWN_PW}\n{OWN_PW}\n")
    assert rc == 0, err
    assert "cora: password changed" in out
    rc, out, err = cli("trial", "create", "T1", "--visits", "W0,W52", *AS_CORA, stdin=OWN_PW + "\n")
    assert rc == 0, err
    assert "created trial T1" in out
    rc, out, err = cli(
        "user",
        "list",
        "--format",
        "text",
        "--user",
        "ada",
        "--password-stdin",
        stdin=ADMIN_PW + "\n",
    )
    assert rc == 0, err
    cora = next(line for line in out.splitlines() if line.startswith("cora"))
    assert "must_change_password" not in cora
    # The old password no longer opens the account; passwd again refuses a recent one.
    rc, _, err = cli("trial", "list", *AS_CORA, stdin=FIRST_PW + "\n")
    assert rc == 1 and "wrong user ID or password" in err
    rc, _, err = cli("user", "passwd", *AS_CORA, stdin=f"{OWN_PW}\n{FIRST_PW}\n{FIRST_PW}\n")
    assert rc == 1 and REPEAT in err


def test_the_first_command_of_a_new_account_asks_for_the_new_password_first(cli: Cli) -> None:
    # Without the new password on the next lines the command is refused, and nothing changes.
    rc, _, err = cli("trial", "create", "T1", *AS_CORA, stdin=FIRST_PW + "\n")
    assert rc == 1 and "you must change your password before anything else" in err
    assert "two lines after the current one" in err
    rc, _, err = cli(
        "trial", "create", "T1", *AS_CORA, stdin=f"{FIRST_PW}\n{OWN_PW}\nOther-1234x\n"
    )
    assert rc == 1 and "the two new passwords differ" in err
    for bad, message in [("short", SHORT), ("letmein123", COMMON), ("cora-secret-1", NAME)]:
        rc, out, err = cli("trial", "create", "T1", *AS_CORA, stdin=f"{FIRST_PW}\n{bad}\n{bad}\n")
        assert rc == 1 and message in err and "created" not in out
    # The new password twice after the first: changed, then the command runs.
    rc, out, err = cli("trial", "create", "T1", *AS_CORA, stdin=f"{FIRST_PW}\n{OWN_PW}\n{OWN_PW}\n")
    assert rc == 0, err
    assert "created trial T1" in out
    assert "must choose a new password" in err and "changed the password of cora" in err
    rc, out, err = cli("trial", "list", "--format", "json", *AS_CORA, stdin=OWN_PW + "\n")
    assert rc == 0 and '"T1"' in out and err == ""
    # An admin's reset puts the account back in that state.
    rc, _, err = cli(
        "user",
        "reset-password",
        "cora",
        "--reason",
        "forgot it",
        "--user",
        "ada",
        "--password-stdin",
        stdin=f"{ADMIN_PW}\n{FIRST_PW.replace('881', '993')}\n",
    )
    assert rc == 0, err
    rc, _, err = cli("trial", "list", *AS_CORA, stdin=FIRST_PW.replace("881", "993") + "\n")
    assert rc == 1 and "change your password" in err


#: The ways a password might be typed as an option.
ON_ARGV = [
    ["--password", SECRET],
    [f"--password={SECRET}"],
    ["--passwd", SECRET],
    ["--pass", SECRET],
    ["--pw", SECRET],
    [f"--pwd={SECRET}"],
    ["-p", SECRET],
    [f"-p{SECRET}"],
    [f"--password{SECRET}"],
    [f"--password-stdin={SECRET}"],
    ["--new-password", SECRET],
    [f"--old-password={SECRET}"],
    ["--initial-password", SECRET],
    ["--admin-password", SECRET],
    ["--secret", SECRET],
    ["--api-token", SECRET],
    ["\u2014password", SECRET],  # an em dash, as a word processor writes "--"
    ["\u2013pw", SECRET],
    [f"--PASSWORD{SECRET}"],
]


def test_a_password_on_the_command_line_is_refused_and_never_printed(cli: Cli) -> None:
    for given in ON_ARGV:
        rc, out, err = cli("trial", "list", "--user", "cora", *given, stdin=FIRST_PW + "\n")
        assert rc == 2, given
        assert "passwords are never taken on the command line" in err
        assert SECRET.lower() not in (out + err).lower(), given
    # Refused before anything ran: cora never logged in, so still must change her password.
    rc, _, err = cli("trial", "list", *AS_CORA, stdin=FIRST_PW + "\n")
    assert rc == 1 and "change your password" in err


def test_a_secret_option_is_named_only_when_its_name_cannot_hold_the_value(cli: Cli) -> None:
    for given, named in [
        (["--new-password", SECRET], "--new-password: "),
        (["\u2014password", SECRET], "\u2014password: "),
        ([f"--password{SECRET.lower()}"], "a password option: "),
        ([f"-p{SECRET}"], "a password option: "),
    ]:
        rc, _, err = cli("user", "passwd", "--user", "cora", *given)
        assert rc == 2 and err == (
            f"scorer: error: {named}passwords are never taken on the command line: use the "
            "prompt or --password-stdin\n"
        ), given


def test_arguments_argparse_does_not_understand_are_never_printed_back(cli: Cli) -> None:
    """A password typed as a bare argument, or after an option scorer does not know, is
    counted, not shown; an unknown option's plain name is shown."""

    def usage_error(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as info:
            main([*args, "--db", str(cli.db)])
        out, err = cli.capsys.readouterr()
        return int(str(info.value.code)), out, err

    for given, said in [
        ([SECRET], "1 argument not understood by `scorer user passwd`"),
        (
            ["--frobnicate", SECRET],
            "--frobnicate and 1 other argument not understood by `scorer user passwd`",
        ),
        ([SECRET, SECRET + "x"], "2 arguments not understood by `scorer user passwd`"),
    ]:
        rc, out, err = usage_error("user", "passwd", "--user", "cora", *given)
        assert rc == 2, given
        last = err.splitlines()[-1]
        assert last == (
            f"scorer user passwd: error: unrecognized arguments: {said} (not printed, in case "
            "one is a password); see `scorer user passwd --help`"
        ), given
        assert SECRET.lower() not in (out + err).lower(), given
    rc, _, err = usage_error("trial", "list", "--frobnicate", "--zap")
    assert rc == 2
    assert err.splitlines()[-1] == (
        "scorer trial list: error: unrecognized arguments: --frobnicate, --zap; see "
        "`scorer trial list --help`"
    )


def test_the_installed_command_refuses_a_password_in_argv(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "scorer",
            "user",
            "add",
            "bob",
            "--name",
            "Bob",
            "--role",
            "reader",
            "--password",
            SECRET,
            "--db",
            str(tmp_path / "none.sqlite"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "passwords are never taken on the command line" in done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert not (tmp_path / "none.sqlite").exists()


def test_the_help_tells_how_the_first_password_is_changed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for command in (["user", "add", "--help"], ["user", "passwd", "--help"]):
        with pytest.raises(SystemExit):
            main(command)
        text = " ".join(capsys.readouterr().out.split())
        assert "new one twice" in text and "three lines" in text
        assert "at least 10 characters" in text and "common passwords" in text


def test_a_reads_import_refuses_a_reader_id_that_user_add_refuses(cli: Cli, tmp_path: Path) -> None:
    rc, _, err = cli("user", "passwd", *AS_CORA, stdin=f"{FIRST_PW}\n{OWN_PW}\n{OWN_PW}\n")
    assert rc == 0, err
    rc, _, err = cli(
        "trial", "create", "EXAMPLE", "--visits", "W0,W52", *AS_CORA, stdin=OWN_PW + "\n"
    )
    assert rc == 0, err
    rows = list(csv.reader(io.StringIO(EXAMPLE.read_text(encoding="utf-8"))))
    col = rows[0].index("reader")
    for row in rows[1:]:
        if row and row[col] == "R2":
            row[col] = "Dr R2"
    bad = tmp_path / "bad-reader.csv"
    with bad.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    rc, out, err = cli(
        "reads", "import", str(bad), "--trial", "EXAMPLE", *AS_CORA, stdin=OWN_PW + "\n"
    )
    assert rc == 1, out
    rc_add, _, err_add = cli(
        "user",
        "add",
        "Dr R2",
        "--name",
        "Dr R2",
        "--role",
        "reader",
        "--user",
        "ada",
        "--password-stdin",
        stdin=f"{ADMIN_PW}\n{FIRST_PW}\n",
    )
    assert rc_add == 1
    rule = err_add.removeprefix("scorer: error: ").strip()
    assert rule.startswith("a user ID is 1-64 letters")
    assert "the reader 'Dr R2' cannot be an account" in err and rule in err
    # Nothing was half-imported: no reads, no patients, no accounts.
    ws = Workspace.open(db=str(cli.db))
    try:
        s = ws.accounts.login("cora", OWN_PW)
        assert ws.trials.list_patients(s, "EXAMPLE") == []
        admin = ws.accounts.login("ada", ADMIN_PW)
        assert {u.username for u in ws.accounts.list_users(admin)} == {"ada", "cora"}
    finally:
        ws.close()
    # The untouched file still imports (its readers R1, R2 are valid user IDs).
    rc, out, err = cli(
        "reads", "import", str(EXAMPLE), "--trial", "EXAMPLE", *AS_CORA, stdin=OWN_PW + "\n"
    )
    assert rc == 0 and "imported 40 read(s)" in out, err
