"""Freeze SDC: the preview of what it would freeze, and the freeze as a Part 11 signature."""

from __future__ import annotations

import json
import statistics

import pytest

from scorer.store import repository as repo
from scorer.store.schema import Signature
from scorer.workspace import AuthError, InvalidInput
from tests.behind import behind
from tests.desk.conftest import PASSWORD, Desk
from tests.desk.test_adjudication import CHANGES, build, read_patient


def test_the_preview_shows_what_the_freeze_then_stores(desk: Desk) -> None:
    build(desk)
    ws, coord = desk.ws, desk.coord
    preview = ws.adjudication.sdc_preview(coord, "ADJ")
    # SD of the readers' differences over the six patients, 1.96 SD / (√2 √2) (k = 2).
    d = [a - b for a, b in CHANGES.values()]
    assert preview.value == pytest.approx(1.96 * statistics.stdev(d) / 2, abs=1e-6)
    assert (preview.level, preview.n, preview.k, preview.readers) == (95, 6, 2, ("r1", "r2"))
    assert preview.problem == "" and preview.frozen is None
    value = ws.adjudication.freeze_sdc(
        coord,
        "ADJ",
        "after the primary reading",
        PASSWORD,
        username="cora",
        previewed=preview.value,
    )
    assert value == preview.value
    assert ws.trials.trial_settings(coord, "ADJ").protocol.frozen_sdc == value
    # The setting's audit row carries the block and the signature that approved it.
    row = [r for r in ws.oversight.audit_trail(coord) if r.action == "trial.setting"][-1]
    new = json.loads(row.new)
    assert new["frozen_sdc"] == value
    assert new["basis"] == {"readers": ["r1", "r2"], "n": 6, "k": 2, "level": 95}
    assert new["meaning"] == "approved" and new["content_hash"] == preview.content_hash()
    with ws.store.read() as db:
        sig = db.get(Signature, new["signature"])
        assert sig is not None
        assert (sig.entity, sig.entity_id, sig.kind, sig.meaning) == (
            "sdc",
            "ADJ",
            "sign",
            "approved",
        )
        assert sig.content_hash == preview.content_hash() and sig.printed_name == "Cora"
    assert ws.verify().ok
    # Frozen now: the preview says so, and how to freeze anew.
    again = ws.adjudication.sdc_preview(coord, "ADJ")
    assert again.value is None and again.frozen == value
    assert again.problem.startswith(f"the SDC of trial ADJ is frozen already at {value:g}")


def test_a_wrong_password_is_refused_counted_and_freezes_nothing(desk: Desk) -> None:
    build(desk)
    ws, coord = desk.ws, desk.coord
    with pytest.raises(AuthError, match=r"wrong password \(4 attempt\(s\) left"):
        ws.adjudication.freeze_sdc(
            coord, "ADJ", "primary reading", "Not-the-password-1", username="cora"
        )
    with ws.store.read() as db:
        assert repo.user_by_name(db, "cora").failed_logins == 1
        assert db.query(Signature).filter(Signature.entity == "sdc").count() == 0
    assert ws.trials.trial_settings(coord, "ADJ").protocol.frozen_sdc is None
    failed = [r for r in ws.oversight.audit_trail(coord) if r.action == "user.login_failed"]
    assert failed and failed[-1].entity_id == "cora"
    # The right password then freezes it and clears the count.
    assert desk.freeze_sdc("ADJ", "primary reading") > 0
    assert ws.verify().ok


def test_the_first_signature_of_a_session_needs_the_user_id(desk: Desk) -> None:
    build(desk)
    ws, coord = desk.ws, desk.coord
    with pytest.raises(AuthError, match="needs your user ID and password"):
        ws.adjudication.freeze_sdc(coord, "ADJ", "primary reading", PASSWORD)
    with pytest.raises(AuthError, match="does not match the logged-in user"):
        ws.adjudication.freeze_sdc(coord, "ADJ", "primary reading", PASSWORD, username="r1")
    with pytest.raises(InvalidInput, match="a reason is required|reason"):
        ws.adjudication.freeze_sdc(coord, "ADJ", "", PASSWORD, username="cora")
    desk.freeze_sdc("ADJ", "primary reading")
    assert coord.signed_once


def test_a_freeze_after_the_reads_moved_the_value_is_refused(desk: Desk) -> None:
    codes = build(desk, held=frozenset({"P6"}))
    ws, coord = desk.ws, desk.coord
    shown = ws.adjudication.sdc_preview(coord, "ADJ")
    assert shown.n == 5
    read_patient(desk, codes, "P6")  # P6's reads are signed after the preview
    now = ws.adjudication.sdc_preview(coord, "ADJ")
    assert now.value != shown.value
    with pytest.raises(InvalidInput, match=f"the SDC is {now.value:g} now, not the "):
        ws.adjudication.freeze_sdc(
            coord, "ADJ", "primary reading", PASSWORD, username="cora", previewed=shown.value
        )
    assert ws.trials.trial_settings(coord, "ADJ").protocol.frozen_sdc is None


def test_a_monitor_may_not_preview_and_too_few_reads_say_why(desk: Desk) -> None:
    ws, coord = desk.ws, desk.coord
    ws.trials.create_trial(coord, "EMPTY", "No reads", visits=[("W0", 0.0), ("W52", 52.0)])
    empty = ws.adjudication.sdc_preview(coord, "EMPTY")
    assert empty.value is None and empty.problem.startswith("the SDC cannot be computed yet")
    with pytest.raises(InvalidInput, match="the SDC cannot be computed yet"):
        desk.freeze_sdc("EMPTY", "too early")
    mona = desk.user("mona", "monitor")
    with pytest.raises(Exception, match="may not do this"):
        ws.adjudication.sdc_preview(mona, "EMPTY")


def test_a_changed_sdc_signature_is_caught_by_verify(desk: Desk) -> None:
    """The freeze's signature is matched with the setting's audit row: a content hash
    changed behind the facade (the append-only triggers dropped) fails verification."""
    build(desk)
    desk.freeze_sdc("ADJ", "primary reading")
    assert desk.ws.verify().ok
    location = desk.ws.store.location.sqlite_path
    with behind(location) as con:
        con.drop_append_only_triggers()
        (sig,) = con.rows("SELECT id FROM signatures WHERE entity = 'sdc'")[0]
        con.execute("UPDATE signatures SET content_hash = ? WHERE id = ?", ("0" * 64, sig))
    result = desk.ws.verify()
    assert not result.ok
    assert any(f"signature {sig} does not match the audit trail" in e for e in result.errors)
