"""Sessions as they happened (issue 30, item 3): a session holds its events and every audit row
it wrote, so every score belongs to one; a session that stopped without a log-out ends at its
last row and says so, apart from one ended by log-out or by the inactivity lock; the workstation
of the log-in is kept; time on a case left open counts to the session's last row; time per film
and the magnifications come from ``image.viewed``; a score's timeline row names the visit letter
the reader saw and the true visit."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scorer.core.methods import get_method
from scorer.core.reads import AreaScore
from scorer.services.sessions import gather, summary
from scorer.store import repository as repo
from scorer.store.schema import AuditEvent
from scorer.workspace import InvalidInput, SessionLocked

SVH = get_method("svh")
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def _open_first_case(c: Any, s: Any) -> Any:
    """reader1 opens the first case of the worklist (its reads start), on the copy's clock."""
    return c.ws.reading.open_case(s, c.cases("reader1")[0])


def _session(c: Any, sid: str, viewer: Any = None) -> Any:
    """Session ``sid`` as the coordinator lists it."""
    rows = c.ws.oversight.reading_sessions(viewer or c.session("coord1"))
    (row,) = [r for r in rows if r.session == sid]
    return row


def test_a_session_killed_mid_case_holds_every_score_and_ends_at_its_last_row(
    populated_copy: Any,
) -> None:
    c = populated_copy
    s = c.new_session("reader1")
    opened = _open_first_case(c, s)
    read_a, read_b = opened.reads["A"], opened.reads["B"]
    areas = [d.area for d in SVH.areas[:12]]
    c.clock.advance(seconds=5)
    c.ws.reading.log_events(
        s,
        [("image.viewed", "IMG-A", {"seconds": 5.0, "case_code": opened.code, "zoom": 1.0})],
        c.trial,
    )
    for i, area in enumerate(areas):
        c.clock.advance(seconds=2)
        c.ws.reading.set_score(s, read_a if i % 2 else read_b, area, AreaScore.scored(i % 2))
    last = c.clock.now
    # The process is killed here: no case.closed, no log-out. The reader logs in again later.
    c.clock.advance(minutes=10)
    again = c.new_session("reader1")
    c.ws.reading.set_score(again, read_a, SVH.areas[20].area, AreaScore.scored(1))

    row = _session(c, s.id)
    written = c.sql(
        "SELECT count(*) FROM audit_events WHERE action = 'score.set' AND session = ?", (s.id,)
    )[0][0]
    assert row.scores == written == len(areas)
    assert row.end_kind == "no log-out"
    assert row.end == last.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert row.ended == f"no log-out (last activity {row.end[:19].replace('T', ' ')})"
    # The case was on screen from its opening (1 minute after the template) to the last score.
    assert row.open_case == opened.code and row.open_seconds == pytest.approx(5 + 2 * len(areas))
    assert row.seconds_on_cases == row.open_seconds
    assert [(i.image, i.seconds, i.magnifications) for i in row.images] == [("IMG-A", 5.0, (1.0,))]
    assert row.workstation == platform.node() and row.address == ""
    # The next session has its own score, not the killed one's.
    assert _session(c, again.id).scores == 1
    # Every score of the trail belongs to a session.
    sessions = c.ws.oversight.reading_sessions(c.session("coord1"))
    scores = len(c.audit("score.set"))
    assert sum(r.scores for r in sessions) == scores


def test_a_workstation_killed_mid_case_in_another_process(populated_copy: Any) -> None:
    """A second process logs reader1 in, opens a case, scores 41 areas and is killed (SIGKILL):
    its session holds all 41 scores (counted against the audit rows), ends at its last row and
    says it ended without a log-out, with the case open-ended."""
    c = populated_copy
    config = c.folder / "reader.json"
    case = c.cases("reader1")[1]
    config.write_text(
        json.dumps(
            {
                "db": c.db,
                "trial": c.trial,
                "username": "reader1",
                "password": c.password("reader1"),
                "case": case,
                "scores": 41,
            }
        ),
        encoding="utf-8",
    )
    env = os.environ.copy()  # the test's SCORER_DATA_DIR and SCORER_CONFIG (the audit key)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    child = subprocess.Popen(
        [sys.executable, str(HERE / "reader_child.py"), str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        sid = child.stdout.readline().strip()
        ready = child.stdout.readline()
        assert ready == "ready\n", ready + child.communicate(timeout=60)[1]
    finally:
        child.kill()
        child.wait()
    row = _session(c, sid, c.new_session("coord1"))
    written = c.sql(
        "SELECT count(*), max(at) FROM audit_events WHERE action = 'score.set' AND session = ?",
        (sid,),
    )
    assert row.scores == written[0][0] == 41
    assert row.end == written[0][1]  # the last score is the session's last row
    assert (row.end_kind, row.ended) == (
        "no log-out",
        f"no log-out (last activity {row.end[:19].replace('T', ' ')})",
    )
    assert row.open_case == case and row.cases == (case,)
    assert [(i.image, i.seconds, i.magnifications) for i in row.images] == [("FILM-A", 4.0, (1.5,))]


def test_rows_without_a_session_id_go_to_the_users_session_started_last_before_them(
    populated_copy: Any,
) -> None:
    c = populated_copy
    first = c.new_session("reader1")
    opened = _open_first_case(c, first)
    c.clock.advance(seconds=3)
    c.ws.reading.set_score(first, opened.reads["A"], SVH.areas[0].area, AreaScore.scored(1))
    c.clock.advance(minutes=5)
    second = c.new_session("reader1")
    c.clock.advance(seconds=3)
    c.ws.reading.set_score(second, opened.reads["A"], SVH.areas[1].area, AreaScore.scored(1))
    # As written before revision 0011: the same rows with no session id on any audit row
    # (the trail is append-only, so they are copied, not changed).
    with c.ws.store.read() as db:
        events = repo.events(db)
        old = [
            AuditEvent(
                seq=a.seq,
                at=a.at,
                username=a.username,
                action=a.action,
                entity=a.entity,
                entity_id=a.entity_id,
                session="",
            )
            for a in repo.audit_rows(db)
        ]
        legacy = {sid: summary(rows) for sid, rows in gather(events, old).items()}
    assert legacy[first.id].scores == _session(c, first.id).scores == 1
    assert legacy[second.id].scores == _session(c, second.id).scores == 1
    assert legacy[first.id].end < legacy[second.id].start
    # Every score is in some session either way (the template's readers' too).
    assert sum(r.scores for r in legacy.values()) == len(c.audit("score.set"))


def test_log_out_lock_timeout_and_the_workstation_named_at_log_in(populated_copy: Any) -> None:
    c = populated_copy
    out = c.ws.accounts.login("reader1", c.password("reader1"), "reading-room-3", "10.0.0.7")
    c.clock.advance(seconds=30)
    c.ws.accounts.logout(out)
    idle = c.ws.accounts.login("reader2", c.password("reader2"))
    c.clock.advance(minutes=c.ws.settings.inactivity_minutes + 1)
    with pytest.raises(SessionLocked):
        c.ws.worklists.my_reads(idle, c.trial)
    coord = c.new_session("coord1")  # the template's session has been idle too
    logged_out, timed_out = _session(c, out.id, coord), _session(c, idle.id, coord)
    assert (logged_out.end_kind, logged_out.ended) == ("log-out", "log-out")
    assert (logged_out.workstation, logged_out.address) == ("reading-room-3", "10.0.0.7")
    assert timed_out.end_kind == "lock timeout" and timed_out.ended.startswith("lock timeout at ")
    assert "no log-out" in timed_out.ended
    with pytest.raises(InvalidInput, match="workstation name"):
        c.ws.accounts.login("reader1", c.password("reader1"), "x" * 65)


def test_score_rows_name_the_visit_letter_and_the_true_visit(populated_copy: Any) -> None:
    c = populated_copy
    s = c.new_session("reader1")
    opened = _open_first_case(c, s)
    for read in opened.reads.values():
        c.clock.advance(seconds=1)
        c.ws.reading.set_score(s, read, SVH.areas[2].area, AreaScore.scored(2))
    labels = dict(
        c.sql(
            "SELECT r.code, v.label FROM reads r JOIN visits v ON v.id = r.visit_id "
            "WHERE r.code IN (?, ?)",
            tuple(opened.reads.values()),
        )
    )
    for role in ("coord1", "monitor1"):
        viewer = c.session(role)
        rows = c.ws.oversight.session_timeline(viewer, s.id)
        scores = [r for r in rows if r.what == "score.set"]
        assert [(r.subject, r.visit_letter, r.visit) for r in scores] == [
            (f"case {opened.code}", letter, labels[read]) for letter, read in opened.reads.items()
        ]
