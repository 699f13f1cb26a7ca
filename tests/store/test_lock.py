"""Locking the reading: every write path refuses a locked trial; unlocking needs a reason and a
second person's signature; both are signed, audited and verified."""

from __future__ import annotations

from typing import Any

import pytest

from scorer.core.methods import get_method
from scorer.core.reads import AreaScore
from scorer.workspace import AuthError, InvalidInput, Locked
from tests.store import test_roles as roles

SVH = get_method("svh")
#: Writes that are not trial data: accounts, and new trials.
NOT_TRIAL_DATA = {"change_password", "add_user", "disable_user", "reset_password", "create_trial"}


def finish_every_read(c: Any) -> None:
    """Sign every read of T1 in progress (areas left are scored 0) so the trial can lock."""
    for user in ("reader1", "reader2", "adjud1"):
        s = c.session(user)
        for r in c.ws.worklists.my_reads(s, "T1"):
            if r.status != "in_progress":
                continue
            view = c.ws.reading.get_read(s, r.code)
            left = {
                a.area: AreaScore.from_sides([0, 0]) if a.sides else AreaScore.scored(0)
                for a in SVH.areas
                if a.area not in view.scores
            }
            if left:
                c.ws.reading.set_scores(s, r.code, left)
            c.ws.reading.sign_read(s, r.code, c.password(user), username=user)


def lock(c: Any) -> str:
    finish_every_read(c)
    coord = c.session_of_role("coordinator")
    return c.ws.trials.lock_trial(coord, "T1", c.password(coord.username), username=coord.username)


def test_lock_needs_every_read_signed_and_the_password(populated_copy: Any) -> None:
    c = populated_copy
    coord = c.session_of_role("coordinator")
    with pytest.raises(InvalidInput, match="not signed yet"):
        c.ws.trials.lock_trial(coord, "T1", c.password(coord.username), username=coord.username)
    finish_every_read(c)
    with pytest.raises(AuthError):
        c.ws.trials.lock_trial(coord, "T1", "Not-The-Password-1", username=coord.username)
    assert not c.ws.trials.trial_settings(coord, "T1").locked
    digest = c.ws.trials.lock_trial(
        coord, "T1", c.password(coord.username), username=coord.username
    )
    assert c.ws.trials.trial_settings(coord, "T1").locked
    (row,) = [r for r in c.ws.oversight.audit_trail(coord) if r.action == "trial.lock"]
    assert digest in row.new and '"approved"' in row.new
    assert c.ws.verify().ok


@pytest.mark.parametrize(
    "op", sorted(roles.WRITES - NOT_TRIAL_DATA - {"lock_trial", "unlock_trial"})
)
def test_a_locked_trial_refuses_every_write(populated_copy: Any, op: str) -> None:
    c = populated_copy
    lock(c)
    role = next(r for r in roles.ROLES if r in roles.ALLOWED[op])
    s = c.session_of_role(role)
    before = c.dump()
    with pytest.raises(Locked, match="locked"):
        roles.CALLS[op](c, s)
    assert c.dump() == before


def test_unlock_needs_a_reason_and_a_second_persons_signature(populated_copy: Any) -> None:
    c = populated_copy
    lock(c)
    coord = c.session_of_role("coordinator")
    pw = c.password(coord.username)
    admin = c.session_of_role("admin").username
    with pytest.raises(InvalidInput, match="reason"):
        c.ws.trials.unlock_trial(coord, "T1", " ", pw, admin, c.password(admin))
    with pytest.raises(AuthError, match="another person"):
        c.ws.trials.unlock_trial(coord, "T1", "late query", pw, coord.username, pw)
    with pytest.raises(AuthError, match="second signature"):
        c.ws.trials.unlock_trial(coord, "T1", "late query", pw, admin, "Not-The-Password-1")
    with pytest.raises(AuthError, match="coordinator or an administrator"):
        c.ws.trials.unlock_trial(coord, "T1", "late query", pw, "reader1", c.password("reader1"))
    assert c.ws.trials.trial_settings(coord, "T1").locked
    c.ws.trials.unlock_trial(
        coord, "T1", "data query from the sponsor", pw, admin, c.password(admin)
    )
    assert not c.ws.trials.trial_settings(coord, "T1").locked
    (row,) = [r for r in c.ws.oversight.audit_trail(coord) if r.action == "trial.unlock"]
    assert row.reason == "data query from the sponsor"
    assert c.full_name(admin) in row.new and c.full_name(coord.username) in row.new
    assert c.ws.verify().ok
    # Writes work again.
    s = c.session("reader1")
    code = c.ws.reading.start_read(s, "T1", c.patient(2), "W0")
    c.ws.reading.set_score(s, code, SVH.areas[0].area, AreaScore.scored(1))


def test_a_lock_flag_set_behind_the_facade_fails_verification(populated_copy: Any) -> None:
    c = populated_copy
    c.sql_write("UPDATE trials SET locked = true WHERE code = 'T1'")
    result = c.ws.verify()
    assert not result.ok and any("without a lock signature" in e for e in result.errors)
