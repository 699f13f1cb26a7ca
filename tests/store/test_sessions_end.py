"""Sessions end with the account (issue 27, item 5): disabling or locking an account, changing
its role or its password ends its open sessions, on every workstation, at their next call, each
with its own message; the session that changed its own password carries on.

In-process tests use the populated copy's settable clock; the last test keeps the sessions in a
second Python process (``session_child.py``) while this one changes the accounts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from scorer.workspace import AuthError, PermissionDenied, SessionLocked, Workspace

NEW_PW = "Brand-New-Secret-42"
TEMP_PW = "Temporary-Pass-99"
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CHILD = HERE / "session_child.py"

ENDED = "this session has ended; log in again"
DISABLED = "this account has been disabled, which ends this session; ask an administrator"
ROLE = (
    "your role changed from coordinator to reader since you logged in, which ends this session; "
    "log in again"
)
CHANGED = (
    "your password was changed at another workstation, which ends this session; log in again "
    "with the new password"
)
RESET = (
    "your password was reset by an administrator, which ends this session; log in again with "
    "the temporary password"
)


def locked_message(until: str, minutes: int) -> str:
    return (
        f"this account is locked after repeated failed attempts until {until} UTC (in "
        f"{minutes} minute(s)), which ends this session; log in again after that or ask an "
        "administrator"
    )


def _refused(call: Any, message: str, s: Any) -> None:
    """The call fails with exactly ``message`` and the session is closed; the next call
    finds it ended."""
    with pytest.raises(AuthError) as err:
        call()
    assert str(err.value) == message
    assert s.closed and s.ended_because == message  # kept for the workstation to show
    with pytest.raises(AuthError) as again:
        call()
    assert str(again.value) == ENDED


def _lock_out(ws: Workspace, username: str) -> None:
    """Fail the log-in until the account locks (as at another workstation)."""
    for _ in range(ws.settings.lockout_attempts):
        with pytest.raises(AuthError):
            ws.accounts.login(username, "Wrong-Password-123")


def test_disabling_ends_the_accounts_open_sessions_before_anything_is_written(
    populated_copy: Any,
) -> None:
    c = populated_copy
    s, admin = c.session("reader1"), c.session("admin")
    area = next(iter(c.complete_scores()))
    value = c.complete_scores()[area]
    code = c.read("reader1", "partial")
    c.ws.accounts.disable_user(admin, "reader1", "left the reading centre")
    before = c.dump()
    _refused(lambda: c.ws.reading.set_score(s, code, area, value), DISABLED, s)
    assert c.dump() == before


def test_a_role_change_ends_the_accounts_open_sessions(populated_copy: Any) -> None:
    c = populated_copy
    s = c.session("coord1")
    # No operation changes a role yet: as from another workstation's database access.
    c.sql_write("UPDATE users SET role = 'reader' WHERE username = 'coord1'")
    _refused(lambda: c.ws.trials.list_trials(s), ROLE, s)


def test_a_lockout_at_another_workstation_ends_the_accounts_open_sessions(
    populated_copy: Any,
) -> None:
    c = populated_copy
    s, idle = c.session("reader1"), c.new_session("reader1")
    c.ws.accounts.lock(idle)  # stepped away: the account's lockout ends it at its unlock too
    c.clock.advance(minutes=1)  # 09:02; the lockout lasts until 09:17
    _lock_out(c.ws, "reader1")
    c.clock.advance(minutes=3)
    _refused(lambda: c.ws.worklists.my_reads(s, c.trial), locked_message("09:17", 12), s)
    with pytest.raises(AuthError) as err:
        c.ws.accounts.unlock(idle, c.password("reader1"))
    assert str(err.value) == locked_message("09:17", 12)
    assert idle.closed
    # The lockout runs out: the ended sessions stay ended, a new log-in works.
    c.clock.advance(minutes=13)
    with pytest.raises(AuthError, match=ENDED):
        c.ws.worklists.my_reads(s, c.trial)
    fresh = c.new_session("reader1")
    assert c.ws.worklists.my_reads(fresh, c.trial)


def test_a_lockout_by_the_sessions_own_wrong_passwords_ends_it(populated_copy: Any) -> None:
    c = populated_copy
    s = c.session("reader1")
    code = c.read("reader1", "complete")
    for _ in range(c.ws.settings.lockout_attempts - 1):
        with pytest.raises(AuthError, match="attempt"):
            c.ws.reading.sign_read(s, code, "Wrong-Password-123", username="reader1")
    with pytest.raises(AuthError, match="now locked for 15 minutes"):
        c.ws.reading.sign_read(s, code, "Wrong-Password-123", username="reader1")
    assert not s.closed
    _refused(lambda: c.ws.reading.get_read(s, code), locked_message("09:16", 15), s)


def test_a_password_change_ends_the_accounts_other_sessions_not_its_own(
    populated_copy: Any,
) -> None:
    c = populated_copy
    here, elsewhere, idle = c.new_session("reader1"), c.session("reader1"), c.new_session("reader1")
    c.ws.accounts.lock(idle)
    c.ws.accounts.change_password(here, c.password("reader1"), NEW_PW)
    assert c.ws.worklists.my_reads(here, c.trial)  # the session that changed it carries on
    _refused(lambda: c.ws.worklists.my_reads(elsewhere, c.trial), CHANGED, elsewhere)
    # A session locked meanwhile cannot be unlocked with the new password either.
    with pytest.raises(AuthError) as err:
        c.ws.accounts.unlock(idle, NEW_PW)
    assert str(err.value) == CHANGED
    assert idle.closed
    assert c.ws.worklists.my_reads(here, c.trial)
    with pytest.raises(AuthError, match="wrong user ID or password"):
        c.ws.accounts.login("reader1", c.password("reader1"))
    assert c.ws.accounts.login("reader1", NEW_PW).password_mark == here.password_mark


def test_an_administrators_reset_ends_the_accounts_sessions(populated_copy: Any) -> None:
    c = populated_copy
    s, admin = c.session("reader2"), c.session("admin")
    c.ws.accounts.reset_password(admin, "reader2", TEMP_PW, "forgot it (ticket 7)")
    _refused(lambda: c.ws.trials.list_trials(s), RESET, s)
    assert c.ws.trials.list_trials(admin)  # the administrator's own session is untouched
    # An administrator resetting their own password keeps this session (to choose a new one).
    other_admin = c.new_session("admin")
    c.ws.accounts.reset_password(admin, "admin", TEMP_PW, "rotating the first password")
    with pytest.raises(PermissionDenied, match="must change your password"):
        c.ws.trials.list_trials(admin)
    assert not admin.closed
    c.ws.accounts.change_password(admin, TEMP_PW, NEW_PW)
    assert c.ws.trials.list_trials(admin)
    _refused(lambda: c.ws.trials.list_trials(other_admin), CHANGED, other_admin)


def test_a_rehash_at_log_in_ends_no_session(populated_copy: Any) -> None:
    """Rehashing replaces the stored hash but not the password: the other sessions go on."""
    c = populated_copy
    s, pw = c.session("reader2"), c.password("reader2")
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(pw)
    c.sql_write("UPDATE users SET password_hash = ? WHERE username = 'reader2'", (cheap,))
    c.ws.accounts.login("reader2", pw)
    assert c.sql("SELECT password_hash FROM users WHERE username = 'reader2'") != [(cheap,)]
    c.ws.trials.list_trials(s)
    assert not s.closed


def test_an_inactive_session_is_locked_before_it_is_found_ended(populated_copy: Any) -> None:
    """The inactivity lock is checked first (it needs no database); the account's changes are
    found at the unlock, which then ends the session."""
    c = populated_copy
    s = c.session("reader2")
    c.clock.advance(minutes=20)
    admin = c.new_session("admin")
    c.ws.accounts.disable_user(admin, "reader2", "left the reading centre")
    with pytest.raises(SessionLocked):
        c.ws.trials.list_trials(s)
    with pytest.raises(AuthError) as err:
        c.ws.accounts.unlock(s, c.password("reader2"))
    assert str(err.value) == DISABLED
    assert s.closed


# ------------------------------------------------------------------ two processes


def _child_env() -> dict[str, str]:
    env = os.environ.copy()  # the test's SCORER_DATA_DIR and SCORER_CONFIG (the audit key)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def test_changes_end_the_sessions_open_in_another_process(populated_copy: Any) -> None:
    """Five sessions open in a second process; this one disables reader2, resets adjud1's
    password, changes coord1's role, locks reader1 out with wrong passwords and changes
    monitor1's password from a session of its own. The other process's next call with each
    session fails with its own message and ends it; this process's monitor1 carries on."""
    c = populated_copy
    users = ("reader1", "reader2", "adjud1", "coord1", "monitor1")
    config = c.folder / "sessions.json"
    config.write_text(
        json.dumps({"db": c.db, "passwords": {u: c.password(u) for u in users}}), encoding="utf-8"
    )
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env(),
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        ready = child.stdout.readline()
        assert ready == "ready\n", ready + child.communicate(timeout=60)[1]
        # This workstation runs on the real clock, as the other does.
        ws = Workspace.open(db=c.db)
        try:
            admin = ws.accounts.login("admin", c.password("admin"))
            ws.accounts.disable_user(admin, "reader2", "left the reading centre")
            ws.accounts.reset_password(admin, "adjud1", TEMP_PW, "forgot it (ticket 9)")
            c.sql_write("UPDATE users SET role = 'reader' WHERE username = 'coord1'")
            _lock_out(ws, "reader1")
            monitor = ws.accounts.login("monitor1", c.password("monitor1"))
            ws.accounts.change_password(monitor, c.password("monitor1"), NEW_PW)
            out, err = child.communicate("go\n", timeout=120)
            assert child.returncode == 0, err
            assert ws.trials.list_trials(monitor)  # the session that changed it carries on
        finally:
            ws.close()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    results = {r["user"]: r for r in map(json.loads, out.splitlines())}
    assert set(results) == set(users)
    for r in results.values():
        assert r["closed"], r
        assert r["second"] == f"AuthError: {ENDED}", r
    first = {u: r["first"] for u, r in results.items()}
    assert first["reader2"] == f"AuthError: {DISABLED}"
    assert first["adjud1"] == f"AuthError: {RESET}"
    assert first["coord1"] == f"AuthError: {ROLE}"
    assert first["monitor1"] == f"AuthError: {CHANGED}"
    assert first["reader1"].startswith(
        "AuthError: this account is locked after repeated failed attempts until "
    ), first["reader1"]
    assert first["reader1"].endswith(
        "which ends this session; log in again after that or ask an administrator"
    )
    assert len(set(first.values())) == len(users)  # five distinct messages
