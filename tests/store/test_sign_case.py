"""Signing a case as a whole (spec §8): every visit's read signed in one transaction, all or
none; the password checked like a log-in; reopening voids every signature with the reason."""

from __future__ import annotations

from typing import Any

import pytest

from scorer.core.methods import get_method
from scorer.core.reads import AreaScore
from scorer.workspace import AuthError, InvalidInput

SVH = get_method("svh")
ZERO = {a.area: AreaScore.scored(0) for a in SVH.areas}


def _case(c: Any) -> tuple[Any, str, dict[str, str]]:
    s = c.session("reader1")
    case = c.cases("reader1")[0]
    return s, case, c.ws.reading.open_case(s, case).reads


def _statuses(c: Any, s: Any, reads: dict[str, str]) -> set[str]:
    return {c.ws.reading.get_read(s, code).status for code in reads.values()}


def test_an_incomplete_visit_keeps_the_whole_case_unsigned(populated_copy: Any) -> None:
    c = populated_copy
    s, case, reads = _case(c)
    letters = sorted(reads)
    for letter in letters[:-1]:
        c.ws.reading.set_scores(s, reads[letter], ZERO)
    last = dict(ZERO)
    del last[SVH.areas[10].area]
    c.ws.reading.set_scores(s, reads[letters[-1]], last)
    signatures = c.sql("SELECT count(*) FROM signatures")
    with pytest.raises(InvalidInput, match=rf"visit {letters[-1]}: 1 \(first: "):
        c.ws.reading.sign_case(s, case, c.password("reader1"), username="reader1")
    assert _statuses(c, s, reads) == {"in_progress"}
    assert c.sql("SELECT count(*) FROM signatures") == signatures


def test_signing_a_complete_case_signs_every_visit_and_reopening_voids_them(
    populated_copy: Any,
) -> None:
    c = populated_copy
    s, case, reads = _case(c)
    for code in reads.values():
        c.ws.reading.set_scores(s, code, ZERO)
    with pytest.raises(AuthError, match="user ID and password"):
        c.ws.reading.sign_case(s, case, c.password("reader1"))  # the session's first signature
    with pytest.raises(AuthError):
        c.ws.reading.sign_case(s, case, "Wrong-Password-123", username="reader1")
    assert c.sql("SELECT failed_logins FROM users WHERE username='reader1'") == [(1,)]
    assert _statuses(c, s, reads) == {"in_progress"}
    digests = c.ws.reading.sign_case(s, case, c.password("reader1"), username="reader1")
    assert len(digests) == len(reads)
    assert _statuses(c, s, reads) == {"signed"}
    assert c.ws.worklists.worklist(s, c.trial)[0].status == "signed"
    rows = c.sql(
        "SELECT entity_id, new FROM audit_events WHERE action='read.sign' ORDER BY seq DESC "
        f"LIMIT {len(reads)}"
    )
    assert {r[0] for r in rows} == set(reads.values())
    assert all(f'"case": "{case}"' in r[1] or f'"case":"{case}"' in r[1] for r in rows)
    with pytest.raises(InvalidInput, match="signed already"):
        c.ws.reading.sign_case(s, case, c.password("reader1"))
    with pytest.raises(InvalidInput, match="reason"):
        c.ws.reading.reopen_case(s, case, "  ")
    c.ws.reading.reopen_case(s, case, "a grade was entered on the wrong joint")
    assert _statuses(c, s, reads) == {"in_progress"}
    voids = c.sql("SELECT count(*) FROM audit_events WHERE action='read.void_signature'")
    assert voids == [(len(reads),)]
    with pytest.raises(InvalidInput, match="only a signed case"):
        c.ws.reading.reopen_case(s, case, "again")
    c.ws.reading.sign_case(s, case, c.password("reader1"))  # later signatures: the password alone
    assert _statuses(c, s, reads) == {"signed"}
    assert c.ws.verify().ok
