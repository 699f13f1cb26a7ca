"""Roles: every public operation of the facade called as every role.

The table ``ALLOWED`` says which roles may call each operation; the parametrised test calls
each operation as each role on its own copy of the populated database. What is allowed must
work (and a write must change something); what is not is refused with PermissionDenied and
changes nothing. A new public method of Workspace without a row in the table fails
``test_the_table_covers_every_public_operation``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from scorer.core.joints import JointPoint
from scorer.core.methods import get_method
from scorer.core.reads import AreaScore
from scorer.core.reads import Read as CoreRead
from scorer.core.readscsv import format_reads_csv
from scorer.services.images import DicomSettings
from scorer.workspace import (
    InvalidInput,
    NotFound,
    PermissionDenied,
    ReadView,
    ScorerError,
    UserSession,
    Workspace,
)

ROLES = ("reader", "adjudicator", "coordinator", "monitor", "admin")
ALL = frozenset(ROLES)
SCORING = frozenset({"reader", "adjudicator"})
OVERSIGHT = frozenset({"coordinator", "monitor", "admin"})

#: Operation -> the roles allowed to call it (decided from scorer/workspace.py).
ALLOWED: dict[str, frozenset[str]] = {
    # the caller's own session and account
    "logout": ALL,
    "lock": ALL,
    "unlock": ALL,
    "change_password": ALL,
    # user management: admin only (the coordinator may list accounts, e.g. to assign readers)
    "add_user": frozenset({"admin"}),
    "list_users": frozenset({"admin", "coordinator"}),
    "disable_user": frozenset({"admin"}),
    "reset_password": frozenset({"admin"}),
    # trial set-up
    "create_trial": frozenset({"coordinator", "admin"}),
    "list_trials": ALL,
    "add_visit": frozenset({"coordinator", "admin"}),
    "add_patient": frozenset({"coordinator"}),
    "list_patients": frozenset({"coordinator", "admin", "monitor"}),
    "trial_settings": frozenset({"coordinator", "admin", "monitor"}),
    "set_trial_setting": frozenset({"coordinator"}),
    # worklists: the coordinator sets them up; a reader sees and opens only their own cases
    "assign_reader": frozenset({"coordinator"}),
    "add_campaign": frozenset({"coordinator"}),
    "generate_worklists": frozenset({"coordinator"}),
    "worklist": frozenset({"reader", "adjudicator", "coordinator", "monitor", "admin"}),
    "verify_worklists": frozenset({"coordinator", "monitor", "admin"}),
    "open_case": SCORING,  # an adjudicator passes the role check but never has a worklist
    "case_images": SCORING,
    "raise_flag": SCORING,
    "flags": frozenset({"reader", "adjudicator", "coordinator"}),
    "answer_flag": frozenset({"coordinator"}),
    "case_flags": SCORING,  # own flags on own cases
    # reader drift: the coordinator checks and acknowledges, the monitor may look
    "drift": frozenset({"coordinator", "monitor"}),
    "check": frozenset({"coordinator"}),
    "acknowledge": frozenset({"coordinator"}),
    "flag_counts": frozenset({"coordinator"}),
    # reading: readers and adjudicators, on their own reads only
    "start_read": SCORING,
    "get_read": frozenset({"reader", "adjudicator", "coordinator", "monitor"}),  # own reads
    "set_score": SCORING,
    "set_scores": SCORING,
    "clear_score": SCORING,
    "clear_scores": SCORING,
    "set_note": SCORING,
    "sign_read": SCORING,
    "reopen_read": SCORING,
    "sign_case": SCORING,  # an adjudicator passes the role check but has no case here
    "reopen_case": SCORING,
    "my_reads": SCORING,
    "reading_trials": SCORING,
    # images: the coordinator imports them; the admin may list them (codes, no real IDs)
    "import_images": frozenset({"coordinator"}),
    "reissue_readers_copies": frozenset({"coordinator"}),
    "list_images": frozenset({"coordinator"}),
    # DICOM networking: the coordinator's receiver and pulls audit what they do; a running
    # service keeps its own session from locking
    "audit_dicom": frozenset({"coordinator"}),
    "dicom_settings": frozenset({"coordinator"}),
    "keep_alive": ALL,
    "export_image_png": frozenset({"coordinator", "admin"}),
    # the coordinator's desk (the monitor looks, changes nothing)
    "progress": frozenset({"coordinator", "monitor"}),
    "reassign_image": frozenset({"coordinator"}),
    "mask_image": frozenset({"coordinator"}),
    "image_qc": frozenset({"coordinator"}),
    "qc_impact": frozenset({"coordinator"}),
    "image_file": frozenset({"coordinator"}),
    "joint_positions": frozenset({"coordinator", "admin"}),
    "place_image_joints": frozenset({"coordinator"}),
    # joints found on their own: the locator's results, registration across visits, QC
    "joint_checks": frozenset({"coordinator"}),
    "image_joints": frozenset({"coordinator"}),
    "register_visits": frozenset({"coordinator"}),
    "place_joints": SCORING,
    "render_image": frozenset({"coordinator"}),
    "mark_region_missing": frozenset({"coordinator"}),
    "missing_regions": frozenset({"coordinator", "monitor"}),
    "calibration_worklists": frozenset({"coordinator"}),
    "calibration_feedback": SCORING,
    "calibration_report": frozenset({"coordinator", "monitor"}),
    "release_reader": frozenset({"coordinator"}),
    "freeze_sdc": frozenset({"coordinator"}),
    "sdc_preview": frozenset({"coordinator"}),
    "update_adjudication": frozenset({"coordinator"}),
    "assign_adjudications": frozenset({"coordinator"}),
    "adjudications": frozenset({"coordinator", "monitor"}),
    # lock, exports and reports
    "lock_trial": frozenset({"coordinator"}),
    "unlock_trial": frozenset({"coordinator"}),
    "export_reads_with_manifest": frozenset({"coordinator"}),
    "export_totals": frozenset({"coordinator"}),
    "export_audit": OVERSIGHT,
    "agreement_report": frozenset({"coordinator", "monitor"}),
    "transfer_package": frozenset({"coordinator"}),
    "backup": frozenset({"admin", "coordinator"}),
    # the monitor's view (coordinators and administrators may look too)
    "reading_sessions": OVERSIGHT,
    "session_timeline": OVERSIGHT,
    "session_document": OVERSIGHT,
    "audit_document": OVERSIGHT,
    "verify": OVERSIGHT,
    # logs
    "log_event": SCORING,
    "log_events": SCORING,
    "events": OVERSIGHT,
    "audit_trail": OVERSIGHT,
    # exchange
    "import_reads": frozenset({"coordinator"}),
    "export_reads": frozenset({"coordinator"}),
}

#: Public callables of Workspace that take no session.
NO_SESSION = frozenset(
    {
        "open",
        "initialize",
        "migrate",
        "grant_workstation",
        "revoke_workstation",
        "restore",
        "login",
        "close",
        # verify: Workspace.verify (no session) shares its name with oversight.verify, which
        # the table holds.
    }
)

#: Operations that change trial data or accounts: when allowed they must change the database.
WRITES = frozenset(
    {
        "change_password",
        "add_user",
        "disable_user",
        "reset_password",
        "create_trial",
        "add_visit",
        "add_patient",
        "start_read",
        "set_score",
        "set_scores",
        "clear_score",
        "clear_scores",
        "set_note",
        "sign_read",
        "reopen_read",
        "sign_case",
        "reopen_case",
        "import_reads",
        "set_trial_setting",
        "assign_reader",
        "add_campaign",
        "generate_worklists",
        "open_case",
        "raise_flag",
        "answer_flag",
        "mark_region_missing",
        "calibration_worklists",
    }
)

#: Allowed calls that cannot change anything here (see _open_case).
NO_EFFECT = frozenset(
    {
        ("open_case", "adjudicator"),
        ("raise_flag", "adjudicator"),
        ("sign_case", "adjudicator"),
        ("reopen_case", "adjudicator"),
        ("log_event", "adjudicator"),
        ("log_events", "adjudicator"),
    }
)

#: The tables that hold trial data (a monitor must never change any of them).
TRIAL_DATA = (
    "trials",
    "visits",
    "patients",
    "images",
    "image_regions",
    "reads",
    "area_scores",
    "signatures",
    "assignments",
    "assignment_patients",
    "campaigns",
    "worklists",
    "cases",
    "reader_flags",
)
DATA = (*TRIAL_DATA, "users")

SVH = get_method("svh")
FIRST = SVH.areas[0].area
NEW_PASSWORD = "Brand-New-Secret-42"


def _import_csv() -> str:
    read = CoreRead(
        trial="T1",
        patient="EXT-0001",
        visit="W0",
        reader="extreader",
        method="svh",
        read_id="EXT-READ-0001",
        status="signed",
        scores={a.area: AreaScore.scored(0) for a in SVH.areas},
    )
    return format_reads_csv([read])


def _tables(c: Any, names: tuple[str, ...]) -> dict[str, list[tuple[Any, ...]]]:
    dump: dict[str, list[tuple[Any, ...]]] = c.dump()
    return {n: dump[n] for n in names}


def _own(c: Any, s: UserSession, label: str) -> str:
    """The caller's own read with that label; for a role that reads nothing, reader1's."""
    return str(c.read(s.username if s.role in SCORING else "reader1", label))


# Each call performs the operation as the session's user and, when it returns, checks its
# visible effect.
Call = Callable[[Any, UserSession], None]


def _logout(c: Any, s: UserSession) -> None:
    c.ws.accounts.logout(s)
    assert s.closed


def _lock(c: Any, s: UserSession) -> None:
    c.ws.accounts.lock(s)
    assert s.locked


def _unlock(c: Any, s: UserSession) -> None:
    c.ws.accounts.lock(s)
    c.ws.accounts.unlock(s, c.password(s.username))
    assert not s.locked


def _change_password(c: Any, s: UserSession) -> None:
    c.ws.accounts.change_password(s, c.password(s.username), NEW_PASSWORD)


def _add_user(c: Any, s: UserSession) -> None:
    c.ws.accounts.add_user(s, "nora", "Nora Newcomer", "reader", NEW_PASSWORD)
    assert c.sql("SELECT role, must_change_password FROM users WHERE username='nora'") == [
        ("reader", 1)
    ]


def _list_users(c: Any, s: UserSession) -> None:
    users = c.ws.accounts.list_users(s)
    assert {u.username for u in users} >= {"admin", "reader1", "monitor1"}
    assert not any("hash" in k for u in users for k in u.to_dict())
    assert "$argon2" not in repr(users)


def _disable_user(c: Any, s: UserSession) -> None:
    c.ws.accounts.disable_user(s, "reader2", "left the reading centre")
    assert c.sql("SELECT disabled FROM users WHERE username='reader2'") == [(1,)]


def _reset_password(c: Any, s: UserSession) -> None:
    c.ws.accounts.reset_password(s, "reader2", NEW_PASSWORD, "forgot the password")
    assert c.sql("SELECT must_change_password FROM users WHERE username='reader2'") == [(1,)]


def _create_trial(c: Any, s: UserSession) -> None:
    c.ws.trials.create_trial(s, "T9", "Another trial", visits=[("W0", 0.0)])
    assert c.sql("SELECT code FROM trials WHERE code='T9'") == [("T9",)]


def _list_trials(c: Any, s: UserSession) -> None:
    assert [t.code for t in c.ws.trials.list_trials(s)] == ["T1"]


def _add_visit(c: Any, s: UserSession) -> None:
    c.ws.trials.add_visit(s, "T1", "W52", 52.0)
    assert "W52" in (c.ws.trials.list_trials(s)[0].visits or ())


def _add_patient(c: Any, s: UserSession) -> None:
    code = c.ws.trials.add_patient(s, "T1", "HOSP-0999")
    assert code and code != "HOSP-0999"


def _list_patients(c: Any, s: UserSession) -> None:
    assert {p.code for p in c.ws.trials.list_patients(s, "T1")} == set(c.patients.values())


def _trial_settings(c: Any, s: UserSession) -> None:
    settings = c.ws.trials.trial_settings(s, "T1")
    assert settings.protocol.code == "T1"
    assert settings.frozen is True  # T1 has signed reads


def _set_trial_setting(c: Any, s: UserSession) -> None:
    c.ws.trials.set_trial_setting(s, "T1", "sdc_level", 80, "protocol amendment 2")
    assert c.ws.trials.trial_settings(s, "T1").protocol.sdc_level == 80


def _assign_reader(c: Any, s: UserSession) -> None:
    c.ws.worklists.assign_reader(s, "T1", "reader2", [c.patient(0)])


def _add_campaign(c: Any, s: UserSession) -> None:
    assert c.ws.worklists.add_campaign(s, "T1", "extension", [("W52", 52.0)]) == 2


def _generate_worklists(c: Any, s: UserSession) -> None:
    assert c.ws.worklists.generate_worklists(s, "T1") == {}  # both readers have one already
    c.ws.worklists.add_campaign(s, "T1", "extension", [("W52", 52.0)])
    made = c.ws.worklists.generate_worklists(s, "T1")  # the new campaign's
    assert set(made) == {"reader1", "reader2"}


def _worklist(c: Any, s: UserSession) -> None:
    rows = c.ws.worklists.worklist(s, "T1")
    if s.role == "adjudicator":
        assert rows == []  # their own worklist only, and they have none yet
        return
    if s.role != "reader":
        assert {r.code for r in rows} == set(c.cases("reader1")) | set(c.cases("reader2"))
    else:
        assert {r.code for r in rows} == set(c.cases("reader1"))  # their own worklist only
        assert all(set(r.to_dict()) == {"code", "progress", "status"} for r in rows)
        assert all(r.reader is None and r.patient is None for r in rows)


def _verify_worklists(c: Any, s: UserSession) -> None:
    assert c.ws.worklists.verify_worklists(s, "T1") == []


def _open_case(c: Any, s: UserSession) -> None:
    case = c.cases("reader1")[0]
    if s.role == "adjudicator":
        # Adjudicators pass the role check, but generate_worklists makes worklists for
        # readers only: an adjudicator has no case to open, and reader1's is hidden.
        with pytest.raises(NotFound):
            c.ws.reading.open_case(s, case)
        return
    opened = c.ws.reading.open_case(s, case)
    assert opened.code == case
    assert set(opened.reads) <= {"A", "B"}
    for code in opened.reads.values():
        assert c.ws.reading.get_read(s, code).reader == "reader1"


def _case_images(c: Any, s: UserSession) -> None:
    case = c.cases("reader1")[0]
    if s.role == "adjudicator":
        with pytest.raises(NotFound):
            c.ws.images.case_images(s, case)
        return
    images = c.ws.images.case_images(s, case)
    assert set(images) <= {"A", "B"}  # visit letters only, never labels


def _raise_flag(c: Any, s: UserSession) -> None:
    case = c.cases("reader1")[0]
    if s.role == "adjudicator":
        with pytest.raises(NotFound):
            c.ws.reading.raise_flag(s, case, "visit B may be another patient")
        return
    number = c.ws.reading.raise_flag(s, case, "visit B may be another patient")
    assert any(f.flag == number for f in c.ws.coordination.flags(s, "T1"))


def _flags(c: Any, s: UserSession) -> None:
    assert c.ws.coordination.flags(s, "T1") == []


def _case_flags(c: Any, s: UserSession) -> None:
    case = c.cases("reader1")[0]
    if s.role == "adjudicator":  # not their case: the same answer as no case at all
        with pytest.raises(NotFound):
            c.ws.coordination.case_flags(s, case)
        return
    assert c.ws.coordination.case_flags(s, case) == []


def _flag_counts(c: Any, s: UserSession) -> None:
    assert c.ws.coordination.flag_counts(s, "T1") == []


def _drift(c: Any, s: UserSession) -> None:
    report = c.ws.drift.drift(s, "T1")
    assert report.trial == "T1"


def _drift_check(c: Any, s: UserSession) -> None:
    # Too few reads here for any chart to cross: nothing is raised, nothing written.
    assert c.ws.drift.check(s, "T1").trial == "T1"


def _drift_acknowledge(c: Any, s: UserSession) -> None:
    if s.role == "coordinator":
        with pytest.raises(NotFound, match="no drift alert 1 in trial T1"):
            c.ws.drift.acknowledge(s, "T1", 1, "spoke to the reader")
        return
    c.ws.drift.acknowledge(s, "T1", 1, "spoke to the reader")


def _answer_flag(c: Any, s: UserSession) -> None:
    if s.role == "coordinator":
        number = c.ws.reading.raise_flag(
            c.session("reader1"), c.cases("reader1")[0], "blurred film"
        )
        c.ws.coordination.answer_flag(s, "T1", number, "re-imported the W24 hand film")
        assert c.ws.coordination.flags(s, "T1") == []
        closed = c.ws.coordination.flags(s, "T1", open_only=False)
        assert closed[0].answer == "re-imported the W24 hand film" and closed[0].closed
        return
    c.ws.coordination.answer_flag(s, "T1", 1, "anything")


def _start_read(c: Any, s: UserSession) -> None:
    # An adjudicator has no primary case: their reads here are adjudication reads.
    read_type = "adjudication" if s.role == "adjudicator" else "primary"
    code = c.ws.reading.start_read(s, "T1", c.patient(2), "W0", read_type=read_type)
    assert c.ws.reading.get_read(s, code).reader == s.username


def _get_read(c: Any, s: UserSession) -> None:
    code = _own(c, s, "partial")
    view = c.ws.reading.get_read(s, code)
    assert isinstance(view, ReadView)
    assert view.code == code
    assert set(view.scores) == {a.area for a in SVH.areas[:3]}


def _set_score(c: Any, s: UserSession) -> None:
    ack = c.ws.reading.set_score(s, _own(c, s, "partial"), FIRST, AreaScore.scored(4))
    assert ack.status == "in_progress"


def _set_scores(c: Any, s: UserSession) -> None:
    values = {FIRST: AreaScore.scored(4), SVH.areas[3].area: AreaScore.scored(1)}
    acks = c.ws.reading.set_scores(s, _own(c, s, "partial"), values)
    assert [a.area for a in acks] == list(values)


def _clear_score(c: Any, s: UserSession) -> None:
    code = _own(c, s, "partial")
    c.ws.reading.clear_score(s, code, FIRST)
    assert FIRST not in c.ws.reading.get_read(s, code).scores


def _clear_scores(c: Any, s: UserSession) -> None:
    code = _own(c, s, "partial")
    areas = [FIRST, SVH.areas[1].area]
    acks = c.ws.reading.clear_scores(s, code, areas)
    assert [a.area for a in acks] == areas
    assert not set(areas) & set(c.ws.reading.get_read(s, code).scores)


def _set_note(c: Any, s: UserSession) -> None:
    code = _own(c, s, "partial")
    c.ws.reading.set_note(s, code, "motion blur on the left foot")
    assert c.ws.reading.get_read(s, code).note == "motion blur on the left foot"


def _sign_read(c: Any, s: UserSession) -> None:
    code = _own(c, s, "complete")
    c.ws.reading.sign_read(s, code, c.password(s.username), username=s.username)
    assert c.ws.reading.get_read(s, code).status == "signed"


def _reopen_read(c: Any, s: UserSession) -> None:
    code = _own(c, s, "signed")
    c.ws.reading.reopen_read(s, code, "LH MCP1 ERO was entered for the wrong joint")
    assert c.ws.reading.get_read(s, code).status == "in_progress"


def _complete_case(c: Any, s: UserSession) -> tuple[str, list[str]]:
    """reader1's first case, every area of every visit scored 0: (case code, read codes)."""
    case = c.cases("reader1")[0]
    opened = c.ws.reading.open_case(s, case)
    zero = {a.area: AreaScore.scored(0) for a in SVH.areas}
    for code in opened.reads.values():
        c.ws.reading.set_scores(s, code, zero)
    return case, list(opened.reads.values())


def _sign_case(c: Any, s: UserSession) -> None:
    case = c.cases("reader1")[0]
    if s.role == "reader":
        case, codes = _complete_case(c, s)
    pw = c.password(s.username)
    if s.role == "adjudicator":
        with pytest.raises(NotFound):
            c.ws.reading.sign_case(s, case, pw, username=s.username)
        return
    c.ws.reading.sign_case(s, case, pw, username=s.username)  # refused here for other roles
    assert {c.ws.reading.get_read(s, code).status for code in codes} == {"signed"}


def _reopen_case(c: Any, s: UserSession) -> None:
    case = c.cases("reader1")[0]
    if s.role == "reader":
        case, codes = _complete_case(c, s)
        c.ws.reading.sign_case(s, case, c.password(s.username), username=s.username)
    if s.role == "adjudicator":
        with pytest.raises(NotFound):
            c.ws.reading.reopen_case(s, case, "wrong grade entered")
        return
    c.ws.reading.reopen_case(s, case, "wrong grade entered")  # refused here for other roles
    assert {c.ws.reading.get_read(s, code).status for code in codes} == {"in_progress"}


def _reading_trials(c: Any, s: UserSession) -> None:
    trials = c.ws.worklists.reading_trials(s)
    if s.role == "adjudicator":
        assert trials == []  # no worklist
        return
    assert [(t.code, t.cases, t.signed) for t in trials] == [("T1", len(c.cases("reader1")), 0)]


def _my_reads(c: Any, s: UserSession) -> None:
    mine = {r.code for r in c.ws.worklists.my_reads(s, "T1")}
    assert mine == set(c.template.reads[s.username].values())


def _import_images(c: Any, s: UserSession) -> None:
    # Nothing to import (the intake's own tests import real files): the call is audited.
    c.ws.images.import_images(s, "T1", [])
    assert c.sql("SELECT action FROM audit_events ORDER BY seq DESC LIMIT 1") == [
        ("images.import",)
    ]


def _reissue_readers_copies(c: Any, s: UserSession) -> None:
    # No images here (tests/intake/test_delivery.py reissues real ones): the call is audited.
    assert c.ws.images.reissue_readers_copies(s, "T1").images == 0
    assert c.sql("SELECT action FROM audit_events ORDER BY seq DESC LIMIT 1") == [
        ("images.reissue",)
    ]


def _audit_dicom(c: Any, s: UserSession) -> None:
    c.ws.images.audit_dicom(
        s, "T1", "dicom.association", {"calling_aet": "XR1", "result": "refused"}
    )
    assert c.sql("SELECT action, new FROM audit_events ORDER BY seq DESC LIMIT 1")[0][0] == (
        "dicom.association"
    )
    with pytest.raises(InvalidInput, match="unknown DICOM action"):
        c.ws.images.audit_dicom(s, "T1", "dicom.other", {})


def _dicom_settings(c: Any, s: UserSession) -> None:
    assert c.ws.images.dicom_settings(s, "T1") == DicomSettings(dicom_senders=(), locked=False)


def _keep_alive(c: Any, s: UserSession) -> None:
    s.last_active -= timedelta(seconds=30)
    before = s.last_active
    c.ws.accounts.keep_alive(s)
    assert s.last_active > before


def _images(c: Any, s: UserSession) -> None:
    assert c.ws.images.list_images(s, "T1") == []


def _export_image_png(c: Any, s: UserSession) -> None:
    # The populated database has no images: an allowed caller gets past the role check to
    # "no image" (the imaging tests export real ones).
    with pytest.raises(NotFound, match="no image"):
        c.ws.images.export_image_png(s, "NOSUCHIMAGE1", c.folder / "out.png")


def _own_case(c: Any, s: UserSession) -> str:
    """The caller's first case; for a role without cases (adjudicators have none until
    adjudication assigns them), reader1's."""
    return str((c.cases(s.username) if s.role == "reader" else c.cases("reader1"))[0])


def _log_events(c: Any, s: UserSession) -> None:
    case = _own_case(c, s)
    if s.role == "adjudicator":
        # Adjudicators pass the role check, but time is logged only on one's own case, and
        # they have none here: reader1's is refused as not found.
        with pytest.raises(NotFound):
            c.ws.reading.log_events(s, [("case.closed", case, {"seconds": 3})], trial="T1")
        return
    c.ws.reading.log_events(
        s,
        [
            ("case.closed", case, {"seconds": 3}),
            ("image.viewed", "IMG1", {"seconds": 2, "case_code": case}),
        ],
        trial="T1",
    )
    assert c.sql("SELECT kind, username FROM events ORDER BY seq DESC LIMIT 2") == [
        ("image.viewed", s.username),
        ("case.closed", s.username),
    ]


def _log_event(c: Any, s: UserSession) -> None:
    if s.role == "adjudicator":  # no case of their own here (see _log_events)
        with pytest.raises(NotFound):
            c.ws.reading.log_event(s, "case.opened", _own_case(c, s), trial="T1")
        return
    c.ws.reading.log_event(s, "case.opened", _own_case(c, s), {"seconds": 3}, trial="T1")
    assert c.sql("SELECT kind, username FROM events ORDER BY seq DESC LIMIT 1") == [
        ("case.opened", s.username)
    ]


def _events(c: Any, s: UserSession) -> None:
    assert any(e.kind == "login" for e in c.ws.oversight.events(s))


def _audit_trail(c: Any, s: UserSession) -> None:
    trail = c.ws.oversight.audit_trail(s)
    assert [a.action for a in trail[:2]] == ["data.baseline", "database.init"]


def _import_reads(c: Any, s: UserSession) -> None:
    done = c.ws.exchange.import_reads(s, "T1", _import_csv(), source="/some/where/ext.csv")
    assert done.added == 1


def _export_reads(c: Any, s: UserSession) -> None:
    text = c.ws.exchange.export_reads(s, "T1")
    assert text.startswith("trial,patient,visit,")
    assert "HOSP-0001" in text  # the coordinator's export carries real identifiers


def _progress(c: Any, s: UserSession) -> None:
    p = c.ws.coordination.progress(s, "T1")
    assert [r.reader for r in p.readers] == ["reader1", "reader2"]
    assert {row.case for row in p.cases} == set(c.cases("reader1")) | set(c.cases("reader2"))
    assert ("patients" in p.to_dict()) == (s.role == "coordinator")  # a monitor: case codes only


def _reassign_image(c: Any, s: UserSession) -> None:
    with pytest.raises(NotFound, match="no image"):  # no images here (tests/desk import some)
        c.ws.images.reassign_image(s, "NOSUCHIMAGE1", "wrong patient", patient=c.patient(1))


def _mask_image(c: Any, s: UserSession) -> None:
    with pytest.raises(NotFound, match="no image"):
        c.ws.images.mask_image(s, "NOSUCHIMAGE1", [(0, 0, 10, 10)], "burned-in name")


def _image_qc(c: Any, s: UserSession) -> None:
    with pytest.raises(NotFound, match="no image"):
        c.ws.images.image_qc(s, "NOSUCHIMAGE1", "failed", "a bone scan")


def _joint_positions(c: Any, s: UserSession) -> None:
    with pytest.raises(NotFound, match="no image"):  # placing is tested in tests/services
        c.ws.images.joint_positions(s, "NOSUCHIMAGE1")


def _place_image_joints(c: Any, s: UserSession) -> None:
    with pytest.raises(NotFound, match="no image"):
        c.ws.images.place_image_joints(s, "NOSUCHIMAGE1", [JointPoint("RH", "MCP2", 1.0, 1.0)])


def _joint_checks(c: Any, s: UserSession) -> None:
    # Every image of T1 with its joint QC (the locator's work is tested in tests/services).
    checks = c.ws.joints.joint_checks(s, "T1")
    assert {ch.image for ch in checks} == {i.code for i in c.ws.images.list_images(s, "T1")}


def _image_joints(c: Any, s: UserSession) -> None:
    with pytest.raises(NotFound, match="no image"):
        c.ws.joints.image_joints(s, "NOSUCHIMAGE1")


def _register_visits(c: Any, s: UserSession) -> None:
    with pytest.raises(NotFound, match="no patient"):  # registering: tests/services
        c.ws.joints.register_visits(s, "T1", "NOSUCHPATIENT")


def _place_joints(c: Any, s: UserSession) -> None:
    with pytest.raises(NotFound, match="no such case"):
        c.ws.reading.place_joints(s, "NOSUCHCASE1", "film", [JointPoint("RH", "MCP2", 1.0, 1.0)])


def _qc_impact(c: Any, s: UserSession) -> None:
    with pytest.raises(NotFound, match="no image"):  # the cases listed: tests/services
        c.ws.images.qc_impact(s, "NOSUCHIMAGE1")


def _image_file(c: Any, s: UserSession) -> None:
    with pytest.raises(NotFound, match="no image"):
        c.ws.images.image_file(s, "NOSUCHIMAGE1")


def _render_image(c: Any, s: UserSession) -> None:
    with pytest.raises(NotFound, match="no image"):
        c.ws.images.render_image(s, "NOSUCHIMAGE1")


def _mark_region_missing(c: Any, s: UserSession) -> None:
    out = c.ws.images.mark_region_missing(s, "T1", c.patient(0), "W0", "LF", "no foot film taken")
    assert out.reads_changed >= 1
    assert c.ws.images.missing_regions(s, "T1")[0].region == "LF"


def _missing_regions(c: Any, s: UserSession) -> None:
    assert c.ws.images.missing_regions(s, "T1") == []


def _calibration_worklists(c: Any, s: UserSession) -> None:
    if s.role == "coordinator":
        c.ws.trials.set_trial_setting(s, "T1", "calibration_reference", "reader2", "lead reader")
        c.ws.trials.set_trial_setting(
            s, "T1", "calibration_patients", [c.patient(2)], "training set"
        )
    made = c.ws.calibration.calibration_worklists(s, "T1")
    assert set(made.cases) == {"reader1", "reader2"}


def _calibration_feedback(c: Any, s: UserSession) -> None:
    with pytest.raises(NotFound):  # a primary case (reader1's), or none at all
        c.ws.calibration.calibration_feedback(s, c.cases("reader1")[0])


def _calibration_report(c: Any, s: UserSession) -> None:
    assert c.ws.calibration.calibration_report(s, "T1").readers == ()


def _release_reader(c: Any, s: UserSession) -> None:
    with pytest.raises(InvalidInput, match="no calibration worklist"):
        c.ws.calibration.release_reader(s, "T1", "reader1", "calibrated")


def _freeze_sdc(c: Any, s: UserSession) -> None:
    with pytest.raises(InvalidInput, match="SDC cannot be computed"):
        c.ws.adjudication.freeze_sdc(
            s, "T1", "after the first 20 patients", c.password(s.username), username=s.username
        )


def _sdc_preview(c: Any, s: UserSession) -> None:
    assert "SDC cannot be computed" in c.ws.adjudication.sdc_preview(s, "T1").problem


def _update_adjudication(c: Any, s: UserSession) -> None:
    with pytest.raises(InvalidInput, match="not frozen"):
        c.ws.adjudication.update_adjudication(s, "T1")


def _assign_adjudications(c: Any, s: UserSession) -> None:
    with pytest.raises(InvalidInput, match="queue is empty"):
        c.ws.adjudication.assign_adjudications(s, "T1", "adjud1")


def _adjudications(c: Any, s: UserSession) -> None:
    assert c.ws.adjudication.adjudications(s, "T1").patients == ()


def _lock_trial(c: Any, s: UserSession) -> None:
    with pytest.raises(InvalidInput, match="not signed yet"):  # T1 has reads in progress
        c.ws.trials.lock_trial(s, "T1", c.password(s.username), username=s.username)


def _unlock_trial(c: Any, s: UserSession) -> None:
    with pytest.raises(InvalidInput, match="not locked"):
        c.ws.trials.unlock_trial(s, "T1", "re-read", c.password(s.username), "admin", "x")


def _export_reads_with_manifest(c: Any, s: UserSession) -> None:
    text, manifest = c.ws.exchange.export_reads_with_manifest(s, "T1")
    assert manifest.locked is False and manifest.trial == "T1"
    assert manifest.sha256 == __import__("hashlib").sha256(text.encode()).hexdigest()


def _export_totals(c: Any, s: UserSession) -> None:
    assert c.ws.exchange.export_totals(s, "T1").startswith(
        "trial,patient,reader,read_type,visit,mtss"
    )


def _export_audit(c: Any, s: UserSession) -> None:
    assert c.ws.exchange.export_audit(s).splitlines()[1].startswith("1,")


def _agreement_report(c: Any, s: UserSession) -> None:
    doc = c.ws.exchange.agreement_report(s, "T1")
    assert doc.title.endswith("T1") and doc.data["analysis"]["n_patients"] >= 1


def _transfer_package(c: Any, s: UserSession) -> None:
    with pytest.raises(InvalidInput, match="not locked"):
        c.ws.exchange.transfer_package(s, "T1", c.folder / "package.zip")


def _backup(c: Any, s: UserSession) -> None:
    out = c.folder / f"backup-{s.role}.zip"
    if c.backend == "postgresql":  # the server's own tools back a server database up
        try:
            c.ws.database.backup(s, out)
        except PermissionDenied:
            raise
        except ScorerError as exc:
            assert "pg_dump" in str(exc)
        else:
            raise AssertionError("a PostgreSQL database was backed up")
        assert not out.exists()
        return
    info = c.ws.database.backup(s, out)
    assert info.rows["reads"] > 0 and out.exists()


def _first_session(c: Any, s: UserSession) -> str:
    return str(c.ws.oversight.reading_sessions(s, "reader1")[0].session)


def _reading_sessions(c: Any, s: UserSession) -> None:
    rows = c.ws.oversight.reading_sessions(s, "reader1")
    assert rows and all(r.user == "reader1" for r in rows)


def _session_timeline(c: Any, s: UserSession) -> None:
    rows = c.ws.oversight.session_timeline(s, _first_session(c, s))
    assert rows[0].what == "login"


def _session_document(c: Any, s: UserSession) -> None:
    doc = c.ws.oversight.session_document(s, _first_session(c, s))
    assert doc.tables()[0].rows


def _verify(c: Any, s: UserSession) -> None:
    result = c.ws.oversight.verify(s)
    assert result.ok and result.replayed > 0, result.errors


def _audit_document(c: Any, s: UserSession) -> None:
    doc = c.ws.oversight.audit_document(s)
    assert dict(doc.facts)["Verification"] == "verifies"


CALLS: dict[str, Call] = {
    "logout": _logout,
    "lock": _lock,
    "unlock": _unlock,
    "change_password": _change_password,
    "add_user": _add_user,
    "list_users": _list_users,
    "disable_user": _disable_user,
    "reset_password": _reset_password,
    "create_trial": _create_trial,
    "list_trials": _list_trials,
    "add_visit": _add_visit,
    "add_patient": _add_patient,
    "list_patients": _list_patients,
    "trial_settings": _trial_settings,
    "set_trial_setting": _set_trial_setting,
    "assign_reader": _assign_reader,
    "add_campaign": _add_campaign,
    "generate_worklists": _generate_worklists,
    "worklist": _worklist,
    "verify_worklists": _verify_worklists,
    "open_case": _open_case,
    "case_images": _case_images,
    "raise_flag": _raise_flag,
    "flags": _flags,
    "answer_flag": _answer_flag,
    "case_flags": _case_flags,
    "drift": _drift,
    "check": _drift_check,
    "acknowledge": _drift_acknowledge,
    "flag_counts": _flag_counts,
    "start_read": _start_read,
    "get_read": _get_read,
    "set_score": _set_score,
    "set_scores": _set_scores,
    "clear_score": _clear_score,
    "clear_scores": _clear_scores,
    "set_note": _set_note,
    "sign_read": _sign_read,
    "reopen_read": _reopen_read,
    "sign_case": _sign_case,
    "reopen_case": _reopen_case,
    "my_reads": _my_reads,
    "reading_trials": _reading_trials,
    "import_images": _import_images,
    "reissue_readers_copies": _reissue_readers_copies,
    "audit_dicom": _audit_dicom,
    "dicom_settings": _dicom_settings,
    "keep_alive": _keep_alive,
    "list_images": _images,
    "export_image_png": _export_image_png,
    "progress": _progress,
    "reassign_image": _reassign_image,
    "mask_image": _mask_image,
    "image_qc": _image_qc,
    "qc_impact": _qc_impact,
    "image_file": _image_file,
    "joint_positions": _joint_positions,
    "place_image_joints": _place_image_joints,
    "joint_checks": _joint_checks,
    "image_joints": _image_joints,
    "register_visits": _register_visits,
    "place_joints": _place_joints,
    "render_image": _render_image,
    "mark_region_missing": _mark_region_missing,
    "missing_regions": _missing_regions,
    "calibration_worklists": _calibration_worklists,
    "calibration_feedback": _calibration_feedback,
    "calibration_report": _calibration_report,
    "release_reader": _release_reader,
    "freeze_sdc": _freeze_sdc,
    "sdc_preview": _sdc_preview,
    "update_adjudication": _update_adjudication,
    "assign_adjudications": _assign_adjudications,
    "adjudications": _adjudications,
    "lock_trial": _lock_trial,
    "unlock_trial": _unlock_trial,
    "export_reads_with_manifest": _export_reads_with_manifest,
    "export_totals": _export_totals,
    "export_audit": _export_audit,
    "agreement_report": _agreement_report,
    "transfer_package": _transfer_package,
    "backup": _backup,
    "reading_sessions": _reading_sessions,
    "session_timeline": _session_timeline,
    "session_document": _session_document,
    "audit_document": _audit_document,
    "verify": _verify,
    "log_event": _log_event,
    "log_events": _log_events,
    "events": _events,
    "audit_trail": _audit_trail,
    "import_reads": _import_reads,
    "export_reads": _export_reads,
}


def _service_classes() -> list[type]:
    """The classes of the services the facade holds (ws.accounts, ws.reading, ...)."""
    source = inspect.getsource(Workspace.__init__)
    names = [line.split("=")[0].strip()[5:] for line in source.splitlines() if "Service(" in line]
    assert names, "found no services in Workspace.__init__"
    classes = []
    for name in names:
        cls_name = source.split(f"self.{name} = ", 1)[1].split("(", 1)[0]
        classes.append(getattr(importlib.import_module("scorer.workspace"), cls_name))
    return classes


def _takes_session(member: Any) -> bool:
    """Whether a service method is an operation called with the caller's session: declared
    with @operation, or (@own_session or not yet declared) with a UserSession as its first
    argument (log-in is declared @own_session but takes none)."""
    if hasattr(member, "rights") and getattr(member.rights, "session", "checked") == "checked":
        return True
    params = list(inspect.signature(member).parameters.values())
    if len(params) < 2:
        return False
    return params[1].annotation in (UserSession, "UserSession")


def _service_members() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for cls in _service_classes():
        for name, member in inspect.getmembers(cls):
            if name.startswith("_") or not callable(member) or isinstance(member, type):
                continue
            if isinstance(inspect.getattr_static(cls, name), classmethod | staticmethod):
                continue
            assert name not in out, f"two services have an operation called {name}"
            out[name] = member
    return out


def _session_operations() -> set[str]:
    """Public operations of the services whose caller passes a UserSession."""
    return {name for name, member in _service_members().items() if _takes_session(member)}


def _public_callables() -> set[str]:
    """Public callables of the facade itself and of its services."""
    on_facade = {
        name
        for name, member in inspect.getmembers(Workspace)
        if not name.startswith("_") and callable(member)
    }
    return on_facade | set(_service_members())


def test_the_table_covers_every_public_operation() -> None:
    ops = _session_operations()
    assert ops, "found no session operations: the introspection is broken"
    assert set(ALLOWED) == ops, (
        f"rows without an operation: {sorted(set(ALLOWED) - ops)}; "
        f"operations without a row: {sorted(ops - set(ALLOWED))}"
    )
    assert set(CALLS) == set(ALLOWED)
    others = _public_callables() - ops
    assert others == NO_SESSION, f"public callables neither in the table nor known: {others}"
    assert set(ALLOWED) >= WRITES
    assert all(roles <= ALL for roles in ALLOWED.values())


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("op", sorted(ALLOWED))
def test_operation_as_role(populated_copy: Any, op: str, role: str) -> None:
    c = populated_copy
    s = c.session_of_role(role)
    before = _tables(c, DATA)
    audit_before = c.sql("SELECT count(*) FROM audit_events")
    if role in ALLOWED[op]:
        CALLS[op](c, s)
        after = _tables(c, DATA)
        if op in WRITES and (op, role) not in NO_EFFECT:
            assert after != before, f"{op} as {role} was allowed but changed nothing"
        else:
            assert after == before, f"{op} as {role} is not a write but changed data"
        if role == "monitor":
            assert {t: after[t] for t in TRIAL_DATA} == {t: before[t] for t in TRIAL_DATA}
    else:
        with pytest.raises(PermissionDenied) as err:
            CALLS[op](c, s)
        msg = str(err.value)
        a = "an" if role[0] in "aeiou" else "a"  # "an admin", "an adjudicator", "a reader"
        assert f"{a} {role} may not" in msg or "only" in msg or f"{a} {role} does not" in msg
        assert _tables(c, DATA) == before
        assert c.sql("SELECT count(*) FROM audit_events") == audit_before
        return
    assert c.ws.verify().ok


def test_a_monitor_changes_no_trial_data(populated_copy: Any) -> None:
    """Every write, called as a monitor, is refused; the whole database stays as it was."""
    c = populated_copy
    s = c.session_of_role("monitor")
    assert all("monitor" not in ALLOWED[op] for op in WRITES - {"change_password"})
    before = c.dump()
    for op in sorted(WRITES - {"change_password"}):
        with pytest.raises(PermissionDenied):
            CALLS[op](c, s)
    assert c.dump() == before


# ------------------------------------------------------------------ ownership of reads

MISSING = "NOSUCHREAD99"


def _attempts(c: Any, s: UserSession) -> dict[str, tuple[str, Callable[[str], object]]]:
    """Operation -> (label of the other user's read to try it on, the attempt)."""
    pw = c.password(s.username)
    return {
        "get_read": ("signed", lambda code: c.ws.reading.get_read(s, code)),
        "set_score": (
            "partial",
            lambda code: c.ws.reading.set_score(s, code, FIRST, AreaScore.scored(5)),
        ),
        "set_score signed": (
            "signed",
            lambda code: c.ws.reading.set_score(
                s, code, FIRST, AreaScore.scored(5), change_reason="correction"
            ),
        ),
        "set_scores": (
            "partial",
            lambda code: c.ws.reading.set_scores(s, code, {FIRST: AreaScore.scored(5)}),
        ),
        "clear_score": ("partial", lambda code: c.ws.reading.clear_score(s, code, FIRST)),
        "clear_scores": ("partial", lambda code: c.ws.reading.clear_scores(s, code, [FIRST])),
        "set_note": ("partial", lambda code: c.ws.reading.set_note(s, code, "a note")),
        "sign_read": (
            "partial",
            lambda code: c.ws.reading.sign_read(s, code, pw, username=s.username),
        ),
        "reopen_read": ("signed", lambda code: c.ws.reading.reopen_read(s, code, "a reason")),
    }


@pytest.mark.parametrize(
    ("viewer", "owner"),
    [("reader1", "reader2"), ("reader1", "adjud1"), ("adjud1", "reader1")],
)
def test_another_users_read_is_indistinguishable_from_a_missing_one(
    populated_copy: Any, viewer: str, owner: str
) -> None:
    c = populated_copy
    s = c.session(viewer)
    before = c.dump()
    for op, (label, attempt) in _attempts(c, s).items():
        theirs = c.read(owner, label)
        with pytest.raises(NotFound) as other:
            attempt(theirs)
        with pytest.raises(NotFound) as missing:
            attempt(MISSING)
        assert str(other.value) == str(missing.value), op
        assert theirs not in str(other.value)
    assert c.dump() == before
    mine = {r.code for r in c.ws.worklists.my_reads(s, "T1")}
    assert mine == set(c.template.reads[viewer].values())
    assert not mine & set(c.template.reads[owner].values())


def test_a_reader_sees_and_opens_only_their_own_worklist(populated_copy: Any) -> None:
    c = populated_copy
    r1, r2 = c.session("reader1"), c.session("reader2")
    assert {row.code for row in c.ws.worklists.worklist(r1, "T1")} == set(c.cases("reader1"))
    with pytest.raises(PermissionDenied):
        c.ws.worklists.worklist(r1, "T1", reader="reader2")
    assert {row.code for row in c.ws.worklists.worklist(r2, "T1")} == set(c.cases("reader2"))
    with pytest.raises(PermissionDenied):
        c.ws.worklists.worklist(r2, "T1", reader="reader1")
    before = c.dump()
    with pytest.raises(NotFound) as theirs:
        c.ws.reading.open_case(r2, c.cases("reader1")[0])
    with pytest.raises(NotFound) as missing:
        c.ws.reading.open_case(r2, "NOSUCHCASE99")
    assert str(theirs.value) == str(missing.value)
    assert c.dump() == before


def test_a_reader_never_sees_another_readers_scores(populated_copy: Any) -> None:
    """Nothing a reader may call returns reader2's read codes or scores."""
    c = populated_copy
    s = c.session("reader1")
    theirs = set(c.template.reads["reader2"].values()) | set(c.template.reads["adjud1"].values())
    seen = [c.ws.trials.list_trials(s), c.ws.worklists.my_reads(s, "T1")]
    seen += [c.ws.reading.get_read(s, code) for code in c.template.reads["reader1"].values()]
    text = repr(seen)
    assert not any(code in text for code in theirs)
    assert all(v.reader == "reader1" for v in seen[2:])
    for op in ("events", "audit_trail", "list_patients", "export_reads"):
        assert "reader" not in ALLOWED[op]


@pytest.mark.parametrize("role", sorted(OVERSIGHT - {"admin"}))
def test_oversight_roles_see_any_read_but_cannot_change_it(populated_copy: Any, role: str) -> None:
    c = populated_copy
    s = c.session_of_role(role)
    code = c.read("reader2", "signed")
    view = c.ws.reading.get_read(s, code)
    assert view.reader == "reader2" and view.status == "signed"
    assert len(view.scores) == len(SVH.areas)
    with pytest.raises(PermissionDenied):
        c.ws.reading.set_score(s, code, FIRST, AreaScore.scored(0), change_reason="oversight")


# ------------------------------------------------------------------ real identifiers


@pytest.mark.parametrize("role", ROLES)
def test_only_a_coordinator_sees_real_patient_identifiers(populated_copy: Any, role: str) -> None:
    c = populated_copy
    s = c.session_of_role(role)
    if role in SCORING:
        with pytest.raises(PermissionDenied):
            c.ws.trials.list_patients(s, "T1")
        return
    rows = c.ws.trials.list_patients(s, "T1")
    if role == "coordinator":
        assert {(r.code, r.real_id) for r in rows} == {
            (code, real) for real, code in c.patients.items()
        }
    else:
        assert all(r.real_id is None for r in rows)
        assert {r.code for r in rows} == set(c.patients.values())
        # Nor do the logs they may read carry a real identifier.
        text = repr(c.ws.oversight.audit_trail(s)) + repr(c.ws.oversight.events(s))
        if role != "admin":  # an administrator keeps the system and sees no reads
            text += repr(c.ws.reading.get_read(s, c.read("reader1", "signed")))
        assert not any(real in text for real in c.patients)


def test_the_blinded_export_carries_codes_only(populated_copy: Any) -> None:
    c = populated_copy
    text = c.ws.exchange.export_reads(c.session_of_role("coordinator"), "T1", blinded=True)
    assert not any(real in text for real in c.patients)
    assert c.patient(0) in text and c.patient(1) in text  # the third patient has no reads


# ------------------------------------------------------------------ adjudication


@pytest.mark.parametrize("role", ROLES)
def test_only_an_adjudicator_starts_an_adjudication_read(populated_copy: Any, role: str) -> None:
    c = populated_copy
    s = c.session_of_role(role)
    start = lambda: c.ws.reading.start_read(s, "T1", c.patient(2), "W0", read_type="adjudication")  # noqa: E731
    if role == "adjudicator":
        code = start()
        view = c.ws.reading.get_read(s, code)
        assert (view.read_type, view.reader) == ("adjudication", "adjud1")
    else:
        before = c.dump()
        with pytest.raises(PermissionDenied):
            start()
        assert c.dump() == before


@pytest.mark.parametrize("role", sorted(SCORING))
def test_nobody_starts_an_imported_read(populated_copy: Any, role: str) -> None:
    c = populated_copy
    s = c.session_of_role(role)
    with pytest.raises(InvalidInput):
        c.ws.reading.start_read(s, "T1", c.patient(1), "W0", read_type="imported")


def test_a_reader_starts_reads_only_of_their_own_cases_visits(populated_copy: Any) -> None:
    """start_read is open to any reader's workstation (and to curl over the server): outside
    the caller's own cases it is refused exactly as a made-up patient or visit is, and it
    writes nothing. A patient the coordinator registered after the worklists, a visit of a
    campaign not generated yet, a read type the reader has no case of, another reader's
    patient: all "no such case in this trial"."""
    c = populated_copy
    coord, r1, adj = c.session("coord1"), c.session("reader1"), c.session("adjud1")
    # A patient registered later, only in reader2's worklist of a new campaign (W52).
    later = c.ws.trials.add_patient(coord, "T1", "HOSP-0004")
    c.ws.worklists.add_campaign(coord, "T1", "extension", [("W52", 52.0)])
    c.ws.worklists.assign_reader(coord, "T1", "reader2", [later])
    c.ws.worklists.generate_worklists(coord, "T1", readers=["reader2"])
    refused = [
        (r1, "NOSUCHPAT", "W0", "primary"),  # made up
        (r1, c.patient(0), "W99", "primary"),  # made up
        (r1, later, "W52", "primary"),  # reader2's case
        (r1, later, "W0", "primary"),
        (r1, c.patient(0), "W52", "primary"),  # no worklist of reader1's reads W52
        (r1, c.patient(0), "W0", "reread"),
        (r1, c.patient(0), "W0", "calibration"),
        (adj, c.patient(0), "W0", "primary"),  # adjud1 has no primary case
        (adj, "NOSUCHPAT", "W0", "adjudication"),  # made up
    ]
    before = c.dump()
    answers = set()
    for s, patient, visit, read_type in refused:
        with pytest.raises(NotFound) as err:
            c.ws.reading.start_read(s, "T1", patient, visit, read_type=read_type)
        answers.add((type(err.value), str(err.value)))
    assert answers == {(NotFound, "no such case in this trial")}
    assert c.dump() == before

    # Inside the worklist it works, and the read is the caller's to score and sign.
    code = c.ws.reading.start_read(r1, "T1", c.patient(2), "W24")
    c.fill_read(r1, code)
    c.ws.reading.sign_read(r1, code, c.password("reader1"), username="reader1")
    assert c.ws.reading.get_read(r1, code).status == "signed"
    # reader2's own cases: the same patient and visit (in their own worklist too), and the
    # patient reader1 was refused.
    r2 = c.session("reader2")
    other = c.ws.reading.start_read(r2, "T1", c.patient(2), "W24")
    assert other != code and c.ws.reading.get_read(r2, other).reader == "reader2"
    assert c.ws.reading.get_read(r2, c.ws.reading.start_read(r2, "T1", later, "W52")).reader == (
        "reader2"
    )


# ------------------------------------------------------------------ user management


@pytest.mark.parametrize("role", sorted(ALL - {"admin"}))
def test_only_an_admin_manages_users(populated_copy: Any, role: str) -> None:
    c = populated_copy
    s = c.session_of_role(role)
    before = c.dump()
    attempts = [
        lambda: c.ws.accounts.add_user(s, "mallory", "Mallory", "admin", NEW_PASSWORD),
        lambda: c.ws.accounts.disable_user(s, "admin", "take over"),
        lambda: c.ws.accounts.reset_password(s, "admin", NEW_PASSWORD, "take over"),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDenied):
            attempt()
    assert c.dump() == before
