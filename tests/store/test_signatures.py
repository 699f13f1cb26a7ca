"""Electronic signatures (21 CFR Part 11) on reads: completeness, the user ID at the session's
first signature, the password at every one, what a signature records, voiding on change, and
the audit of score changes. Also the range rules of scores, foot erosion in two sides.

The populated database (tests/store/conftest.py) gives reader1 a partial read (three areas),
two complete unsigned reads and a signed one; each test works on its own copy.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, timedelta, timezone
from typing import Any

import pytest

from scorer.core.methods import Area, get_method
from scorer.core.reads import AreaScore
from scorer.services.oversight import AuditEntry
from scorer.workspace import (
    AuthError,
    Conflict,
    InvalidInput,
    UserSession,
    Workspace,
    content_hash,
)

SVH = get_method("svh")
AREAS = [d.area for d in SVH.areas]
HAND_ERO = Area("LH", "MCP1", "ERO")
HAND_JSN = next(d.area for d in SVH.areas if d.area.feature == "JSN")
FOOT_ERO = next(d.area for d in SVH.areas if d.sides)
FOOT_ERO_RANGE = SVH.area(FOOT_ERO)


def _signatures(c: Any, code: str) -> list[dict[str, Any]]:
    cols = ("id", "kind", "user_id", "printed_name", "meaning", "signed_at", "content_hash")
    rows = c.sql(
        f"SELECT {', '.join(cols)}, reason FROM signatures WHERE entity = 'read' AND "
        "entity_id = ? ORDER BY id",
        (code,),
    )
    return [dict(zip((*cols, "reason"), r, strict=True)) for r in rows]


def _audit(ws: Workspace, viewer: UserSession, action: str, code: str) -> list[AuditEntry]:
    return [
        a for a in ws.oversight.audit_trail(viewer) if a.action == action and a.entity_id == code
    ]


def _user_id(c: Any, username: str) -> int:
    return int(c.sql("SELECT id FROM users WHERE username = ?", (username,))[0][0])


def _failed_logins(c: Any, username: str) -> int:
    return int(c.sql("SELECT failed_logins FROM users WHERE username = ?", (username,))[0][0])


# ------------------------------------------------------------------ completeness


def test_signing_needs_every_area_scored_or_not_assessable(populated_copy: Any) -> None:
    c = populated_copy
    ws, s, pw = c.ws, c.session("reader1"), c.password("reader1")
    code = c.read("reader1", "partial")
    scored = set(ws.reading.get_read(s, code).scores)
    missing = [a for a in AREAS if a not in scored]
    with pytest.raises(InvalidInput) as err:
        ws.reading.sign_read(s, code, pw, username="reader1")
    assert str(err.value) == (
        f"{len(missing)} area(s) are neither scored nor marked not assessable (first: {missing[0]})"
    )
    # All but the last area entered: one missing, named.
    values = c.complete_scores()
    for area in missing[:-1]:
        ws.reading.set_score(s, code, area, values[area])
    with pytest.raises(InvalidInput) as err:
        ws.reading.sign_read(s, code, pw, username="reader1")
    assert str(err.value) == (
        f"1 area(s) are neither scored nor marked not assessable (first: {missing[-1]})"
    )
    assert ws.reading.get_read(s, code).status == "in_progress"
    assert _signatures(c, code) == []
    # An area that cannot be assessed counts as done, with its reason.
    ws.reading.set_score(
        s, code, missing[-1], AreaScore.not_assessable("other"), reason_text="toe amputated"
    )
    ws.reading.sign_read(s, code, pw, username="reader1")
    view = ws.reading.get_read(s, code)
    assert view.status == "signed"
    assert view.scores[missing[-1]] == AreaScore(reason="other")
    assert view.reason_text[missing[-1]] == "toe amputated"
    assert ws.verify().ok


# ------------------------------------------------------------------ user ID and password


def test_the_first_signature_of_a_session_needs_the_user_id_later_ones_the_password(
    populated_copy: Any,
) -> None:
    c = populated_copy
    ws, s, pw = c.ws, c.session("reader1"), c.password("reader1")
    first, second = c.read("reader1", "complete"), c.read("reader1", "complete2")
    assert not s.signed_once
    with pytest.raises(AuthError, match="first signature of a session needs your user ID"):
        ws.reading.sign_read(s, first, pw)
    with pytest.raises(AuthError, match="does not match the logged-in user"):
        ws.reading.sign_read(s, first, c.password("reader2"), username="reader2")
    assert _failed_logins(c, "reader1") == 0
    assert ws.reading.get_read(s, first).status == "in_progress"

    ws.reading.sign_read(s, first, pw, username="reader1")
    assert s.signed_once
    ws.reading.sign_read(s, second, pw)  # the password alone, later in the same session
    assert ws.reading.get_read(s, second).status == "signed"

    # A new session starts over: the user ID again.
    again = ws.accounts.login("reader1", pw)
    assert not again.signed_once
    ws.reading.reopen_read(again, second, "second look at the feet")
    with pytest.raises(AuthError, match="needs your user ID"):
        ws.reading.sign_read(again, second, pw)
    ws.reading.sign_read(again, second, pw, username="reader1")
    assert ws.verify().ok


def test_a_wrong_password_at_signing_is_refused_and_counts_toward_lockout(
    populated_copy: Any,
) -> None:
    c = populated_copy
    ws, s, pw = c.ws, c.session("reader1"), c.password("reader1")
    code = c.read("reader1", "complete")
    for n in range(1, 5):
        with pytest.raises(AuthError, match="attempt\\(s\\) left"):
            ws.reading.sign_read(s, code, "Wrong-Password-123", username="reader1")
        assert _failed_logins(c, "reader1") == n
    assert ws.reading.get_read(s, code).status == "in_progress"
    assert _signatures(c, code) == []
    failed = _audit(ws, c.session("admin"), "user.login_failed", "reader1")
    assert [a.reason for a in failed] == ["wrong password"] * 4

    with pytest.raises(AuthError, match="locked for 15 minutes"):
        ws.reading.sign_read(s, code, "Wrong-Password-123", username="reader1")
    assert len(_audit(ws, c.session("admin"), "user.lockout", "reader1")) == 1
    with pytest.raises(AuthError, match="locked"):
        ws.accounts.login("reader1", pw)
    # While the account is locked, the right password does not sign either: otherwise an open
    # session would allow unlimited password guesses. The lockout ends the session (issue 27).
    with pytest.raises(AuthError, match="locked after repeated failed attempts until"):
        ws.reading.sign_read(s, code, pw, username="reader1")
    assert s.closed
    assert c.sql("SELECT status FROM reads WHERE code = ?", (code,)) == [("in_progress",)]
    assert _signatures(c, code) == []
    assert ws.verify().ok


def test_a_disabled_account_does_not_sign_from_a_session_still_open(populated_copy: Any) -> None:
    c = populated_copy
    ws, s, pw = c.ws, c.session("reader1"), c.password("reader1")
    code = c.read("reader1", "complete")
    ws.accounts.disable_user(c.session("admin"), "reader1", "left the reading centre")
    with pytest.raises(AuthError, match="disabled"):
        ws.reading.sign_read(s, code, pw, username="reader1")
    assert _signatures(c, code) == []
    # The open session is ended: disabling an account takes effect at once.
    with pytest.raises(AuthError):
        ws.reading.get_read(s, code)
    assert ws.reading.get_read(c.session("coord1"), code).status == "in_progress"


# ------------------------------------------------------------------ what a signature records


def test_a_signature_records_printed_name_utc_time_meaning_and_content_hash(
    populated_copy: Any,
) -> None:
    c = populated_copy
    ws, s, pw = c.ws, c.session("reader1"), c.password("reader1")
    code = c.read("reader1", "complete")
    # The workstation clock runs in local time (UTC+2); the signature is stored in UTC.
    instant = c.clock.now
    c.clock.now = instant.astimezone(timezone(timedelta(hours=2)))
    utc_text = instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert utc_text == "2025-03-03T09:01:00.000000Z"

    digest = ws.reading.sign_read(s, code, pw, username="reader1")
    assert ws.reading.get_read(s, code).status == "signed"
    assert len(digest) == 64 and int(digest, 16) >= 0
    # The hash covers the whole read (a reader's own view of it is blinded, so use a monitor's).
    assert digest == content_hash(ws.reading.get_read(c.session("monitor1"), code))

    [sig] = _signatures(c, code)
    assert sig == {
        "id": sig["id"],
        "kind": "sign",
        "user_id": _user_id(c, "reader1"),
        "printed_name": "Rita Reader",
        "meaning": "authored",
        "signed_at": utc_text,
        "content_hash": digest,
        "reason": "",
    }
    [row] = _audit(ws, c.session("monitor1"), "read.sign", code)
    assert row.username == "reader1"
    assert row.at == utc_text
    assert json.loads(row.old) == {"status": "in_progress"}
    assert json.loads(row.new) == {
        "status": "signed",
        "signature": sig["id"],
        "meaning": "authored",
        "printed_name": "Rita Reader",
        "content_hash": digest,
        "signed_at": utc_text,
    }
    # Another meaning is recorded as given; an unknown one is refused.
    with pytest.raises(InvalidInput, match="unknown signature meaning"):
        ws.reading.sign_read(s, c.read("reader1", "complete2"), pw, meaning="approved-ish")
    ws.reading.sign_read(s, c.read("reader1", "complete2"), pw, meaning="reviewed")
    assert [x["meaning"] for x in _signatures(c, c.read("reader1", "complete2"))] == ["reviewed"]
    # A signed read is not signed twice.
    with pytest.raises(InvalidInput, match="signed already"):
        ws.reading.sign_read(s, code, pw)
    assert ws.verify().ok


def test_the_content_hash_covers_the_scores(populated_copy: Any) -> None:
    c = populated_copy
    ws, s, pw = c.ws, c.session("reader1"), c.password("reader1")
    a, b = c.read("reader1", "complete"), c.read("reader1", "complete2")
    ha = ws.reading.sign_read(s, a, pw, username="reader1")
    hb = ws.reading.sign_read(s, b, pw)
    assert ha != hb
    view = ws.reading.get_read(c.session("monitor1"), a)
    changed = dict(view.scores)
    old = changed[HAND_ERO]
    changed[HAND_ERO] = AreaScore.scored(0 if old.score else 1)
    assert content_hash(view) == ha
    assert content_hash(replace(view, scores=changed)) != ha
    assert content_hash(replace(view, note="x")) != ha


# ------------------------------------------------------------------ changing a signed read


def test_changing_a_signed_read_needs_a_reason_and_voids_the_signature(
    populated_copy: Any,
) -> None:
    c = populated_copy
    ws, s, pw = c.ws, c.session("reader1"), c.password("reader1")
    code = c.read("reader1", "signed")
    before = ws.reading.get_read(s, code)
    assert before.status == "signed"
    [signed] = _signatures(c, code)
    old = before.scores[HAND_ERO]
    new = AreaScore.scored(5 if old.score != 5 else 4)

    with pytest.raises(InvalidInput, match="give a reason"):
        ws.reading.set_score(s, code, HAND_ERO, new)
    with pytest.raises(InvalidInput, match="give a reason"):
        ws.reading.set_score(s, code, HAND_ERO, new, change_reason="   ")
    with pytest.raises(InvalidInput, match="give a reason"):
        ws.reading.set_scores(s, code, {HAND_ERO: new, HAND_JSN: AreaScore.scored(0)})
    with pytest.raises(InvalidInput, match="give a reason"):
        ws.reading.clear_score(s, code, HAND_ERO)
    with pytest.raises(InvalidInput, match="reopen it with a reason"):
        ws.reading.set_note(s, code, "after the fact")
    assert ws.reading.get_read(s, code) == before
    assert len(_signatures(c, code)) == 1

    ack = ws.reading.set_score(
        s, code, HAND_ERO, new, change_reason="typo: 5, not the value entered"
    )
    assert ack.status == "in_progress"
    view = ws.reading.get_read(s, code)
    assert view.status == "in_progress"
    assert view.scores[HAND_ERO] == new
    sigs = _signatures(c, code)
    assert [x["kind"] for x in sigs] == ["sign", "void"]
    void = sigs[1]
    assert void["reason"] == "typo: 5, not the value entered"
    assert void["content_hash"] == signed["content_hash"]
    assert (void["printed_name"], void["user_id"]) == ("Rita Reader", _user_id(c, "reader1"))

    monitor = c.session("monitor1")
    [voided] = _audit(ws, monitor, "read.void_signature", code)
    assert voided.reason == "typo: 5, not the value entered"
    assert json.loads(voided.old) == {"status": "signed"}
    assert json.loads(voided.new) == {"status": "in_progress", "signature": void["id"]}
    change = _audit(ws, monitor, "score.set", code)[-1]
    assert change.seq > voided.seq
    assert json.loads(change.old) == {"area": str(HAND_ERO), "score": old.score}
    assert json.loads(change.new) == {"area": str(HAND_ERO), "score": new.score}
    assert change.reason == "typo: 5, not the value entered"
    assert ws.verify().ok

    # Signed again: a second "sign" row over the new content.
    digest = ws.reading.sign_read(s, code, pw, username="reader1")
    sigs = _signatures(c, code)
    assert [x["kind"] for x in sigs] == ["sign", "void", "sign"]
    assert sigs[2]["content_hash"] == digest != signed["content_hash"]
    result = ws.verify()
    assert result.ok, result.errors
    assert result.signatures == c.sql("SELECT count(*) FROM signatures")[0][0]


def test_reopen_needs_a_reason_and_the_read_must_be_signed_again(populated_copy: Any) -> None:
    c = populated_copy
    ws, s, pw = c.ws, c.session("reader1"), c.password("reader1")
    code = c.read("reader1", "signed")
    for reason in ("", "   "):
        with pytest.raises(InvalidInput, match="a reason is required"):
            ws.reading.reopen_read(s, code, reason)
    with pytest.raises(InvalidInput, match="only a signed read"):
        ws.reading.reopen_read(s, c.read("reader1", "complete"), "why not")
    assert ws.reading.get_read(s, code).status == "signed"

    ws.reading.reopen_read(s, code, "adjudication query 7")
    assert ws.reading.get_read(s, code).status == "in_progress"
    assert [(x["kind"], x["reason"]) for x in _signatures(c, code)] == [
        ("sign", ""),
        ("void", "adjudication query 7"),
    ]
    [row] = _audit(ws, c.session("admin"), "read.void_signature", code)
    assert row.reason == "adjudication query 7"
    with pytest.raises(InvalidInput, match="only a signed read"):
        ws.reading.reopen_read(s, code, "again")
    # Reopened, the read takes changes without a reason, then is signed again.
    ws.reading.set_note(s, code, "checked against the W24 film")
    ws.reading.set_score(s, code, HAND_JSN, AreaScore.scored(2))
    ws.reading.sign_read(s, code, pw, username="reader1")
    assert ws.reading.get_read(s, code).status == "signed"
    assert [x["kind"] for x in _signatures(c, code)] == ["sign", "void", "sign"]
    assert ws.verify().ok


def test_verify_is_ok_after_signing_changing_reopening_and_re_signing(
    populated_copy: Any,
) -> None:
    c = populated_copy
    ws, s, pw = c.ws, c.session("reader1"), c.password("reader1")
    adj, adj_pw = c.session("adjud1"), c.password("adjud1")
    code = c.read("reader1", "complete")
    ws.reading.sign_read(s, code, pw, username="reader1")
    ws.reading.set_score(s, code, HAND_ERO, AreaScore.scored(3), change_reason="recount")
    ws.reading.sign_read(s, code, pw)
    ws.reading.clear_score(s, code, HAND_JSN, change_reason="entered on the wrong film")
    ws.reading.set_score(s, code, HAND_JSN, AreaScore.not_assessable("image_quality"))
    ws.reading.sign_read(s, code, pw)
    ws.reading.reopen_read(s, code, "query from the monitor")
    ws.reading.sign_read(s, code, pw)
    adj_code = c.read("adjud1", "complete")
    ws.reading.sign_read(adj, adj_code, adj_pw, username="adjud1")
    result = ws.verify()
    assert result.ok, result.errors
    assert [x["kind"] for x in _signatures(c, code)] == [
        "sign",
        "void",
        "sign",
        "void",
        "sign",
        "void",
        "sign",
    ]
    assert result.signatures == c.sql("SELECT count(*) FROM signatures")[0][0]
    assert ws.reading.get_read(adj, adj_code).status == "signed"


def test_a_stale_version_is_a_conflict(populated_copy: Any) -> None:
    c = populated_copy
    ws, s = c.ws, c.session("reader1")
    code = c.read("reader1", "partial")
    version = ws.reading.get_read(s, code).version
    ack = ws.reading.set_score(s, code, HAND_ERO, AreaScore.scored(2), expected_version=version)
    assert ack.version == version + 1
    with pytest.raises(Conflict, match="changed on another workstation.*LH MCP1 ERO is now 2"):
        ws.reading.set_score(s, code, HAND_ERO, AreaScore.scored(3), expected_version=version)
    assert ws.reading.get_read(s, code).scores[HAND_ERO] == AreaScore.scored(2)


# ------------------------------------------------------------------ scores and their audit


def test_foot_erosion_takes_two_sides(populated_copy: Any) -> None:
    c = populated_copy
    ws, s = c.ws, c.session("reader1")
    code = c.read("reader1", "partial")
    assert FOOT_ERO_RANGE.sides == ("proximal", "distal")
    assert (FOOT_ERO_RANGE.min, FOOT_ERO_RANGE.max) == (0, 10)
    ws.reading.set_score(s, code, FOOT_ERO, AreaScore.from_sides([3, 4]))
    got = ws.reading.get_read(s, code).scores[FOOT_ERO]
    assert (got.score, got.sides) == (7, (3, 4))
    ws.reading.set_score(s, code, FOOT_ERO, AreaScore.from_sides([5, 5]))
    assert ws.reading.get_read(s, code).scores[FOOT_ERO].score == 10
    rows = _audit(ws, c.session("monitor1"), "score.set", code)
    assert [json.loads(r.new) for r in rows[-2:]] == [
        {"area": str(FOOT_ERO), "score": 7, "sides": [3, 4]},
        {"area": str(FOOT_ERO), "score": 10, "sides": [5, 5]},
    ]
    assert json.loads(rows[-1].old) == {"area": str(FOOT_ERO), "score": 7, "sides": [3, 4]}


BAD_ENTRIES = [
    (FOOT_ERO, AreaScore.from_sides([3]), "expected 2 side scores"),
    (FOOT_ERO, AreaScore.from_sides([1, 2, 3]), "expected 2 side scores"),
    (FOOT_ERO, AreaScore.from_sides([6, 0]), "side score 6 is outside 0-5"),
    (FOOT_ERO, AreaScore.from_sides([-1, 2]), "side score -1 is outside 0-5"),
    (FOOT_ERO, AreaScore(score=5, sides=(1, 2)), "is not the sum of its sides"),
    (FOOT_ERO, AreaScore.scored(11), "score 11 is outside 0-10"),
    (HAND_ERO, AreaScore.from_sides([1, 1]), "not graded in sides"),
    (HAND_ERO, AreaScore.scored(6), "score 6 is outside 0-5"),
    (HAND_ERO, AreaScore.scored(-1), "score -1 is outside 0-5"),
    (HAND_JSN, AreaScore.scored(5), "score 5 is outside 0-4"),
    (HAND_ERO, AreaScore(score=True), "whole number"),
    (HAND_ERO, AreaScore(), "give a score or a not-assessable reason"),
    (HAND_ERO, AreaScore(score=1, reason="other"), "a scored area has no not-assessable"),
    (HAND_ERO, AreaScore.not_assessable("lost"), "unknown reason 'lost'"),
    (HAND_ERO, AreaScore.not_assessable("other"), "describe the reason 'other'"),
    (Area("LH", "MCP9", "ERO"), AreaScore.scored(1), "is not an area of method svh"),
]


@pytest.mark.parametrize(("area", "value", "message"), BAD_ENTRIES)
def test_a_bad_score_is_invalid_input(
    populated_copy: Any, area: Area, value: AreaScore, message: str
) -> None:
    c = populated_copy
    ws, s = c.ws, c.session("reader1")
    before = c.dump()
    with pytest.raises(InvalidInput) as err:
        ws.reading.set_score(s, c.read("reader1", "partial"), area, value)
    assert message in str(err.value)
    assert c.dump() == before


def test_the_audit_trail_records_old_and_new_for_a_score_change(populated_copy: Any) -> None:
    c = populated_copy
    ws, s = c.ws, c.session("reader1")
    code = c.read("reader1", "partial")
    area = AREAS[0]  # scored 1 when the template was built
    assert ws.reading.get_read(s, code).scores[area] == AreaScore.scored(1)
    monitor = c.session("monitor1")
    n = len(_audit(ws, monitor, "score.set", code))

    ws.reading.set_score(s, code, area, AreaScore.scored(3))
    ws.reading.set_score(
        s, code, area, AreaScore.scored(3)
    )  # the same value again: nothing to record
    ws.reading.set_score(
        s, code, area, AreaScore.not_assessable("other"), reason_text="ring artefact"
    )
    new_area = AREAS[10]
    ws.reading.set_score(s, code, new_area, AreaScore.scored(2))
    ws.reading.clear_score(s, code, new_area)

    rows = _audit(ws, monitor, "score.set", code)[n:]
    assert [(json.loads(r.old), json.loads(r.new), r.username) for r in rows] == [
        ({"area": str(area), "score": 1}, {"area": str(area), "score": 3}, "reader1"),
        (
            {"area": str(area), "score": 3},
            {"area": str(area), "score": None, "reason": "other", "reason_text": "ring artefact"},
            "reader1",
        ),
        ({"area": str(new_area)}, {"area": str(new_area), "score": 2}, "reader1"),
    ]
    [cleared] = _audit(ws, monitor, "score.clear", code)
    assert json.loads(cleared.old) == {"area": str(new_area), "score": 2}
    assert ws.verify().ok
