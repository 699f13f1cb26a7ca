"""Accounts: the first admin, first-log-in password change, the password policy, lockout after
failed log-ins, disabled accounts, password resets, the inactivity lock, log-out, rehashing at
log-in, and the event log of log-ins and log-outs.

Time is a settable clock; the populated database (tests/store/conftest.py) is copied per test.
"""

from __future__ import annotations

import json
import platform
import stat
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from scorer.core.reads import AreaScore
from scorer.services.oversight import AuditEntry
from scorer.workspace import (
    AuthError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    ScorerError,
    SessionLocked,
    UserSession,
    Workspace,
)

ADMIN_PW = "Sunflower-Meadow-7"
NEW_PW = "Brand-New-Secret-42"
TEMP_PW = "Temporary-Pass-99"
#: What every failed log-in with a wrong password says: an unknown user ID, an existing one, a
#: disabled one or one locked out alike.
GENERIC = (
    "wrong user ID or password (after 5 failed attempts in a row an account locks for 15 "
    "minutes)"
)


def _fmt(d: Any) -> str:
    return str(d.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def _user(c: Any, username: str) -> dict[str, Any]:
    rows = c.sql(
        "SELECT failed_logins, locked_until, must_change_password, disabled, password_hash "
        "FROM users WHERE username = ?",
        (username,),
    )
    assert len(rows) == 1
    keys = ("failed_logins", "locked_until", "must_change_password", "disabled", "hash")
    return dict(zip(keys, rows[0], strict=True))


def _audit(ws: Workspace, admin: UserSession, action: str, who: str) -> list[AuditEntry]:
    """Audit rows of one action about one user, as the admin sees them."""
    return [a for a in ws.oversight.audit_trail(admin) if a.action == action and a.entity_id == who]


def _events(c: Any, kind: str, username: str) -> list[tuple[Any, ...]]:
    return c.sql(
        "SELECT session, subject, detail FROM events WHERE kind = ? AND username = ? ORDER BY seq",
        (kind, username),
    )


# ------------------------------------------------------------------ the first admin


def test_initialize_creates_the_first_admin_who_need_not_change_password(
    tmp_path: Path, settable_clock: Any
) -> None:
    db = tmp_path / "fresh.sqlite"
    ws = Workspace.initialize("ada", "Ada Admin", ADMIN_PW, db=str(db), clock=settable_clock)
    try:
        key = tmp_path / "fresh.audit-key"
        assert db.stat().st_size > 0 and key.exists()
        if sys.platform != "win32":
            assert stat.S_IMODE(key.stat().st_mode) == 0o600
        s = ws.accounts.login("ada", ADMIN_PW)
        assert (s.role, s.full_name, s.must_change_password) == ("admin", "Ada Admin", False)
        assert [u.to_dict() for u in ws.accounts.list_users(s)] == [
            {
                "username": "ada",
                "full_name": "Ada Admin",
                "role": "admin",
                "disabled": False,
                "locked": False,
                "must_change_password": False,
            }
        ]
        # The admin works at once: no password change first.
        ws.accounts.add_user(s, "rita", "Rita Reader", "reader", "Tulip-Garden-2024")
        actions = [(a.action, a.entity_id, a.username) for a in ws.oversight.audit_trail(s)]
        # The baseline of an empty database, then each change and the rows it wrote.
        assert actions == [
            ("data.baseline", "0", "system"),
            ("database.init", "1", "ada"),
            ("user.add", "ada", "ada"),
            ("data.rows", "2", "ada"),
            ("user.add", "rita", "ada"),
            ("data.rows", "2", "ada"),
        ]
        people = [a for a in ws.oversight.audit_trail(s) if not a.action.startswith("data.")]
        assert json.loads(people[1].new) == {
            "role": "admin",
            "full_name": "Ada Admin",
        }
        assert ws.verify().ok
    finally:
        ws.close()
    with pytest.raises(ScorerError, match="already exists"):
        Workspace.initialize("bob", "Bob", "Another-Admin-Pass", db=str(db))


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("ada", "short-pw1", "password refused: it must be at least 10 characters"),
        ("ada", "my-ADA-password-1", "password refused: it is (or contains) the user ID or name"),
        ("ada", "padded-password ", "password refused: it must not begin or end with a space"),
        ("ada smith", ADMIN_PW, "a user ID is 1-64 letters"),
    ],
)
def test_initialize_refuses_a_bad_first_admin(
    tmp_path: Path, username: str, password: str, message: str
) -> None:
    db = tmp_path / "refused.sqlite"
    with pytest.raises(InvalidInput) as err:
        Workspace.initialize(username, "Ada Admin", password, db=str(db))
    assert str(err.value).startswith(message)
    assert not db.exists()
    assert not (tmp_path / "refused.audit-key").exists()


# ------------------------------------------------------------------ first log-in


def test_a_new_account_must_change_its_password_before_anything_else(
    populated_copy: Any,
) -> None:
    c = populated_copy
    ws, admin = c.ws, c.session("admin")
    ws.accounts.add_user(admin, "nora", "Nora Newcomer", "reader", TEMP_PW)
    assert _user(c, "nora")["must_change_password"] == 1
    s = ws.accounts.login("nora", TEMP_PW)
    assert s.must_change_password
    code = c.read("reader1", "partial")
    refused = [
        lambda: ws.trials.list_trials(s),
        lambda: ws.worklists.my_reads(s, "T1"),
        lambda: ws.reading.start_read(s, "T1", c.patient(2), "W0"),
        lambda: ws.reading.get_read(s, code),
        lambda: ws.worklists.worklist(s, "T1"),
        lambda: ws.reading.log_event(s, "case.opened", "X"),
        lambda: ws.accounts.list_users(s),
    ]
    for attempt in refused:
        with pytest.raises(PermissionDenied, match="must change your password"):
            attempt()
    # The change itself: the policy, a different password, and the old password are checked.
    with pytest.raises(InvalidInput, match="at least 10 characters"):
        ws.accounts.change_password(s, TEMP_PW, "short")
    with pytest.raises(InvalidInput, match="must differ"):
        ws.accounts.change_password(s, TEMP_PW, TEMP_PW)
    with pytest.raises(AuthError):
        ws.accounts.change_password(s, "Not-The-Old-One-1", NEW_PW)
    assert _user(c, "nora")["failed_logins"] == 1  # a wrong old password counts as a failure
    assert s.must_change_password
    ws.accounts.change_password(s, TEMP_PW, NEW_PW)
    assert not s.must_change_password
    assert ws.trials.list_trials(s)[0].code == "T1"
    assert _user(c, "nora")["must_change_password"] == 0
    assert [a.reason for a in _audit(ws, admin, "user.password_changed", "nora")] == ["by the user"]
    ws.accounts.logout(s)
    with pytest.raises(AuthError):
        ws.accounts.login("nora", TEMP_PW)
    again = ws.accounts.login("nora", NEW_PW)
    assert not again.must_change_password
    assert _user(c, "nora")["failed_logins"] == 0


#: Whose password each entry point sets, and how.
POLICY_ENTRIES = {
    "add_user": (
        "nora",
        lambda c, pw: c.ws.accounts.add_user(
            c.session("admin"), "nora", "Nora Newcomer", "reader", pw
        ),
    ),
    "change_password": (
        "reader1",
        lambda c, pw: c.ws.accounts.change_password(
            c.session("reader1"), c.password("reader1"), pw
        ),
    ),
    "reset_password": (
        "reader2",
        lambda c, pw: c.ws.accounts.reset_password(c.session("admin"), "reader2", pw, "forgot it"),
    ),
}
POLICY_CASES = [
    ("Short-1", "password refused: it must be at least 10 characters"),
    (
        "long-enough-but-has-{USER}-in-it",
        "password refused: it is (or contains) the user ID or name",
    ),
    (" leading-space-password", "password refused: it must not begin or end with a space"),
    ("trailing-space-password\t", "password refused: it must not begin or end with a space"),
]


@pytest.mark.parametrize(("password", "message"), POLICY_CASES)
@pytest.mark.parametrize("entry", sorted(POLICY_ENTRIES))
def test_the_password_policy_is_invalid_input_with_a_clear_message(
    populated_copy: Any, entry: str, password: str, message: str
) -> None:
    """Every way a password is set applies the policy (>= 10 characters, not containing the
    user ID in any case, no surrounding spaces) before anything is hashed or written."""
    c = populated_copy
    username, set_password = POLICY_ENTRIES[entry]
    before = c.dump()
    with pytest.raises(InvalidInput) as err:
        set_password(c, password.replace("{USER}", username.upper()))
    assert str(err.value) == message
    assert c.dump() == before


# ------------------------------------------------------------------ lockout


def test_five_failed_log_ins_lock_the_account_for_fifteen_minutes(populated_copy: Any) -> None:
    c = populated_copy
    ws, admin, pw = c.ws, c.session("admin"), c.password("reader1")
    t0 = c.clock.now
    for left in (4, 3, 2, 1):
        with pytest.raises(AuthError) as err:
            ws.accounts.login("reader1", "Wrong-Password-123")
        # The same words as for an unknown user ID: nothing tells whether the ID exists.
        assert str(err.value) == GENERIC
        assert _user(c, "reader1")["failed_logins"] == 5 - left
    with pytest.raises(AuthError) as err:
        ws.accounts.login("reader1", "Wrong-Password-123")
    # Not even the failure that locks it tells that the ID exists: the words already say an
    # account locks after five.
    assert str(err.value) == GENERIC

    failed = _audit(ws, admin, "user.login_failed", "reader1")
    assert [(a.reason, json.loads(a.new)) for a in failed] == [
        ("wrong password", {"failed_logins": n}) for n in range(1, 6)
    ]
    lockout = _audit(ws, admin, "user.lockout", "reader1")
    assert len(lockout) == 1
    assert json.loads(lockout[0].new) == {"locked_until": _fmt(t0 + timedelta(minutes=15))}
    assert lockout[0].reason == "5 consecutive failed log-ins"
    assert lockout[0].at == _fmt(t0)
    assert next(u for u in ws.accounts.list_users(admin) if u.username == "reader1").locked

    # Nor can a session still open elsewhere guess on through change_password.
    other = c.session("reader1")
    with pytest.raises(AuthError, match="locked"):
        ws.accounts.change_password(other, pw, NEW_PW)
    assert _user(c, "reader1")["failed_logins"] == 5

    # A wrong password during the lockout gets the same words as an unknown ID (it is not
    # counted: the lockout runs its time); only the right password learns of the lockout.
    with pytest.raises(AuthError) as err:
        ws.accounts.login("reader1", "Wrong-Password-123")
    assert str(err.value) == GENERIC
    failed = _audit(ws, admin, "user.login_failed", "reader1")
    assert failed[-1].reason == "account locked; wrong password"
    assert _user(c, "reader1")["failed_logins"] == 5

    # The right password is refused during the lockout, and that refusal is audited too.
    c.clock.advance(minutes=14, seconds=59)
    with pytest.raises(AuthError, match="locked after repeated failed log-ins"):
        ws.accounts.login("reader1", pw)
    failed = _audit(ws, admin, "user.login_failed", "reader1")
    assert failed[-1].reason == "account locked"
    assert _user(c, "reader1")["failed_logins"] == 5

    # Fifteen minutes after the lockout the right password works and the counter resets.
    c.clock.advance(seconds=1)
    s = ws.accounts.login("reader1", pw)
    assert s.username == "reader1"
    assert (_user(c, "reader1")["failed_logins"], _user(c, "reader1")["locked_until"]) == (0, None)
    unlock = _audit(ws, admin, "user.unlock", "reader1")
    assert [(a.reason, json.loads(a.new)) for a in unlock] == [
        ("successful log-in", {"failed_logins": 0, "locked_until": None})
    ]
    assert not next(u for u in ws.accounts.list_users(admin) if u.username == "reader1").locked
    # A fresh count: the next failure is the first of five again.
    with pytest.raises(AuthError, match="wrong user ID or password"):
        ws.accounts.login("reader1", "Wrong-Password-123")
    assert _user(c, "reader1")["failed_logins"] == 1
    assert ws.verify().ok


def test_a_successful_log_in_resets_the_failure_count(populated_copy: Any) -> None:
    c = populated_copy
    for _ in range(2):
        with pytest.raises(AuthError):
            c.ws.accounts.login("reader2", "Wrong-Password-123")
    assert _user(c, "reader2")["failed_logins"] == 2
    c.ws.accounts.login("reader2", c.password("reader2"))
    assert _user(c, "reader2")["failed_logins"] == 0
    # Four more failures: six in all, but never five in a row, so no lockout.
    for _ in range(4):
        with pytest.raises(AuthError, match="wrong user ID or password"):
            c.ws.accounts.login("reader2", "Wrong-Password-123")
    assert _user(c, "reader2")["failed_logins"] == 4
    assert _user(c, "reader2")["locked_until"] is None
    assert c.audit("user.lockout") == []


def test_an_unknown_user_id_is_refused_and_audited(populated_copy: Any) -> None:
    c = populated_copy
    with pytest.raises(AuthError) as err:
        c.ws.accounts.login("nobody", "Whatever-Password-1")
    assert str(err.value).startswith("wrong user ID or password")
    rows = c.audit("user.login_failed")
    assert [(r[1], r[3], r[6]) for r in rows] == [("nobody", "nobody", "unknown user ID")]


def test_a_wrong_password_never_tells_whether_the_account_exists(populated_copy: Any) -> None:
    """Unknown, existing, disabled and locked-out IDs: one answer to a wrong password, the
    error's type and words alike; the right password of a disabled or locked account is told
    which, so its owner knows what to do."""
    c = populated_copy
    ws, admin = c.ws, c.session("admin")
    ws.accounts.disable_user(admin, "reader2", "left the reading centre")
    until = _fmt(c.clock.now + timedelta(minutes=10))
    c.sql_write(
        "UPDATE users SET failed_logins = 5, locked_until = ? WHERE username = 'monitor1'",
        (until,),
    )
    answers = set()
    for username in ("nobody", "reader1", "reader2", "monitor1"):
        with pytest.raises(AuthError) as err:
            ws.accounts.login(username, "Wrong-Password-123")
        answers.add((type(err.value), str(err.value)))
    assert answers == {(AuthError, GENERIC)}
    with pytest.raises(AuthError, match="^this account is disabled; ask an administrator$"):
        ws.accounts.login("reader2", c.password("reader2"))
    with pytest.raises(AuthError, match="^this account is locked after repeated failed log-ins"):
        ws.accounts.login("monitor1", c.password("monitor1"))


# ------------------------------------------------------------------ disabled accounts, resets


def test_a_disabled_account_cannot_log_in(populated_copy: Any) -> None:
    c = populated_copy
    ws, admin = c.ws, c.session("admin")
    with pytest.raises(InvalidInput, match="reason"):
        ws.accounts.disable_user(admin, "reader2", "  ")
    with pytest.raises(InvalidInput, match="your own account"):
        ws.accounts.disable_user(admin, "admin", "tidy up")
    with pytest.raises(NotFound):
        ws.accounts.disable_user(admin, "nobody", "tidy up")
    ws.accounts.disable_user(admin, "reader2", "left the reading centre")
    disabled = _audit(ws, admin, "user.disable", "reader2")
    assert [(a.reason, json.loads(a.new)) for a in disabled] == [
        ("left the reading centre", {"disabled": True})
    ]
    assert next(u for u in ws.accounts.list_users(admin) if u.username == "reader2").disabled
    # A wrong password learns nothing: the words of an unknown user ID.
    with pytest.raises(AuthError) as err:
        ws.accounts.login("reader2", "Wrong-Password-123")
    assert str(err.value) == GENERIC
    assert (
        _audit(ws, admin, "user.login_failed", "reader2")[-1].reason
        == "account disabled; wrong password"
    )
    # The right password is told why, so its owner knows whom to ask.
    with pytest.raises(AuthError) as err:
        ws.accounts.login("reader2", c.password("reader2"))
    assert str(err.value) == "this account is disabled; ask an administrator"
    assert _audit(ws, admin, "user.login_failed", "reader2")[-1].reason == "account disabled"
    assert _user(c, "reader2")["failed_logins"] == 0


def test_reset_password_forces_a_change_and_lifts_a_lockout(populated_copy: Any) -> None:
    c = populated_copy
    ws, admin = c.ws, c.session("admin")
    # Set-up: reader2 is locked out (as after five failures; the lockout itself is tested above).
    until = _fmt(c.clock.now + timedelta(minutes=10))
    c.sql_write(
        "UPDATE users SET failed_logins = 5, locked_until = ? WHERE username = 'reader2'",
        (until,),
    )
    with pytest.raises(InvalidInput, match="reason"):
        ws.accounts.reset_password(admin, "reader2", TEMP_PW, "")
    with pytest.raises(NotFound):
        ws.accounts.reset_password(admin, "nobody", TEMP_PW, "forgot it")
    ws.accounts.reset_password(admin, "reader2", TEMP_PW, "forgot the password (ticket 42)")
    row = _user(c, "reader2")
    assert (row["must_change_password"], row["failed_logins"], row["locked_until"]) == (1, 0, None)
    assert [a.reason for a in _audit(ws, admin, "user.password_reset", "reader2")] == [
        "forgot the password (ticket 42)"
    ]
    with pytest.raises(AuthError):
        ws.accounts.login("reader2", c.password("reader2"))  # the old password is gone
    s = ws.accounts.login("reader2", TEMP_PW)
    assert s.must_change_password
    with pytest.raises(PermissionDenied, match="must change your password"):
        ws.worklists.my_reads(s, "T1")
    ws.accounts.change_password(s, TEMP_PW, NEW_PW)
    assert {r.code for r in ws.worklists.my_reads(s, "T1")} == set(
        c.template.reads["reader2"].values()
    )


# ------------------------------------------------------------------ the session


def test_inactivity_locks_the_session_after_fifteen_minutes(populated_copy: Any) -> None:
    c = populated_copy
    ws, s = c.ws, c.session("reader1")
    ws.trials.list_trials(s)
    # Activity keeps the session open.
    c.clock.advance(minutes=14, seconds=59)
    ws.trials.list_trials(s)
    c.clock.advance(minutes=14, seconds=59)
    ws.worklists.my_reads(s, "T1")
    assert _events(c, "session.locked", "reader1") == []
    # Fifteen minutes and a second of nothing: the next operation finds the session locked.
    c.clock.advance(minutes=15, seconds=1)
    with pytest.raises(SessionLocked, match="enter your password"):
        ws.trials.list_trials(s)
    assert s.locked
    locked = _events(c, "session.locked", "reader1")
    assert len(locked) == 1
    assert locked[0][0] == s.id
    assert json.loads(locked[0][2]) == {"idle_seconds": 901}
    # Everything stays refused until unlocked, and the lock is logged once.
    with pytest.raises(SessionLocked):
        ws.reading.get_read(s, c.read("reader1", "partial"))
    assert len(_events(c, "session.locked", "reader1")) == 1

    with pytest.raises(AuthError):
        ws.accounts.unlock(s, "Wrong-Password-123")
    assert s.locked
    assert _user(c, "reader1")["failed_logins"] == 1
    failed = c.audit("user.login_failed")
    assert [(r[3], r[6]) for r in failed] == [("reader1", "wrong password")]
    with pytest.raises(SessionLocked):
        ws.trials.list_trials(s)

    ws.accounts.unlock(s, c.password("reader1"))
    assert not s.locked
    assert _user(c, "reader1")["failed_logins"] == 0
    assert [e[0] for e in _events(c, "session.unlocked", "reader1")] == [s.id]
    assert ws.trials.list_trials(s)[0].code == "T1"


def test_a_user_locks_the_session_by_hand(populated_copy: Any) -> None:
    c = populated_copy
    ws, s = c.ws, c.session("monitor1")
    ws.accounts.lock(s)
    with pytest.raises(SessionLocked):
        ws.oversight.audit_trail(s)
    assert [json.loads(e[2]) for e in _events(c, "session.locked", "monitor1")] == [{"by": "user"}]
    ws.accounts.unlock(s, c.password("monitor1"))
    assert ws.oversight.audit_trail(s)


def test_logout_ends_the_session(populated_copy: Any) -> None:
    c = populated_copy
    ws, s = c.ws, c.session("reader1")
    area = next(iter(c.complete_scores()))
    ws.accounts.logout(s)
    assert s.closed
    for attempt in (
        lambda: ws.trials.list_trials(s),
        lambda: ws.reading.get_read(s, c.read("reader1", "partial")),
        lambda: ws.reading.set_score(s, c.read("reader1", "partial"), area, AreaScore.scored(1)),
        lambda: ws.accounts.unlock(s, c.password("reader1")),
        lambda: ws.accounts.change_password(s, c.password("reader1"), NEW_PW),
    ):
        with pytest.raises(AuthError, match="this session has ended"):
            attempt()
    ws.accounts.logout(s)  # a second log-out is harmless and logs nothing
    assert [e[0] for e in _events(c, "logout", "reader1")].count(s.id) == 1


def test_log_in_and_log_out_are_in_the_event_log(populated_copy: Any) -> None:
    c = populated_copy
    ws, monitor = c.ws, c.session("monitor1")
    s = ws.accounts.login("reader1", c.password("reader1"))
    ws.accounts.logout(s)
    mine = [e for e in ws.oversight.events(monitor, username="reader1") if e.session == s.id]
    assert [(e.kind, e.subject, e.detail) for e in mine] == [
        ("login", "reader1", {"role": "reader", "workstation": platform.node()}),
        ("logout", "reader1", None),
    ]
    assert all(e.at == _fmt(c.clock.now) for e in mine)
    assert all(e.username == "reader1" for e in ws.oversight.events(monitor, username="reader1"))
    assert ws.verify().ok


# ------------------------------------------------------------------ rehash


def test_log_in_rehashes_a_password_hashed_with_other_parameters(populated_copy: Any) -> None:
    c = populated_copy
    pw = c.password("reader2")
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(pw)
    c.sql_write("UPDATE users SET password_hash = ? WHERE username = 'reader2'", (cheap,))
    default = PasswordHasher()
    assert default.check_needs_rehash(cheap)

    c.ws.accounts.login("reader2", pw)
    stored = _user(c, "reader2")["hash"]
    assert stored != cheap
    assert stored.startswith("$argon2id$")
    params = f"m={default.memory_cost},t={default.time_cost},p={default.parallelism}"
    assert f"${params}$" in stored
    assert not default.check_needs_rehash(stored)
    assert default.verify(stored, pw)
    rows = c.audit("user.rehash")
    assert [(r[1], r[3], r[6]) for r in rows] == [("reader2", "reader2", "hash parameters changed")]
    assert pw not in repr(c.audit())

    # Today's parameters: the next log-in leaves the hash alone.
    c.ws.accounts.login("reader2", pw)
    assert _user(c, "reader2")["hash"] == stored
    assert len(c.audit("user.rehash")) == 1
