"""Adjudication on a constructed data set (spec §8): for each trigger exactly the expected
patients are queued; the adjudicator reads them blinded; the final scores follow each rule,
ties included, with hand-computed values; everything is audited."""

from __future__ import annotations

import json

import pytest

from scorer.services.adjudication import AdjudicationUpdate
from scorer.workspace import InvalidInput
from tests.desk.conftest import Desk, scores

# Patient -> (reader r1's change, reader r2's change), each from W0 = 0 to W52 = change.
CHANGES = {
    "P1": (0, 0),
    "P2": (2, 6),
    "P3": (1, 2),
    "P4": (3, 3),
    "P5": (0, 3),
    "P6": (2, 6),
}
# Trigger settings -> the patients that must be queued, by hand:
RULES = {
    # |r1 - r2| > 2.5: P2 (4), P5 (3), P6 (4); P3 (1) is within.
    "difference 2.5": (
        {"adjudication_trigger": "difference", "adjudication_difference": 2.5},
        {"P2", "P5", "P6"},
    ),
    # frozen SDC 1.5 as limit and progression cutoff: P2, P5, P6 by difference; P3 by status
    # (1 is not > 1.5, 2 is); P4 (3 and 3) progress both.
    "frozen SDC 1.5": (
        {"adjudication_trigger": "frozen_sdc", "frozen_sdc": 1.5},
        {"P2", "P3", "P5", "P6"},
    ),
    # a wide difference (10) with progression at 0.5: only P5 disagrees (0 versus 3).
    "status at 0.5": (
        {"adjudication_trigger": "difference", "adjudication_difference": 10.0, "frozen_sdc": 0.5},
        {"P5"},
    ),
}
# The adjudicator's change per patient, and the final change by rule (by hand):
ADJUDICATED = {"P2": 5, "P5": 2, "P6": 4}
FINAL = {
    # mean of all three reads
    "mean_all": {"P2": (2 + 6 + 5) / 3, "P5": (0 + 3 + 2) / 3, "P6": (2 + 6 + 4) / 3},
    # the two closest: P2 (6, 5); P5 (3, 2); P6 ties (2, 4) and (6, 4), both means 1 from the
    # median 4: the pair first in name order, adjudicator and r1 -> 3.
    "closest_two": {"P2": 5.5, "P5": 2.5, "P6": 3.0},
    "adjudicator": {"P2": 5.0, "P5": 2.0, "P6": 4.0},
}
CHOSEN = {
    "closest_two": {
        "P2": ["adjudicator:adam", "r2"],
        "P5": ["adjudicator:adam", "r2"],
        "P6": ["adjudicator:adam", "r1"],
    },
}


def build(desk: Desk, held: frozenset[str] = frozenset()) -> dict[str, str]:
    """The trial ADJ read by r1 and r2 as CHANGES says, but for the ``held`` patients (their
    reads are left to the test: :func:`read_patient`)."""
    ws, coord = desk.ws, desk.coord
    ws.trials.create_trial(coord, "ADJ", "Adjudication test", visits=[("W0", 0.0), ("W52", 52.0)])
    for real in CHANGES:
        ws.trials.add_patient(coord, "ADJ", real)
    codes = desk.patient_codes("ADJ")
    sessions = [desk.user(reader, "reader") for reader in ("r1", "r2")]
    for s in sessions:  # a reader reads their own worklist's cases
        ws.worklists.assign_reader(coord, "ADJ", s.username)
    ws.worklists.generate_worklists(coord, "ADJ")
    for real in CHANGES:
        if real not in held:
            read_patient(desk, codes, real)
    desk.user("adam", "adjudicator")
    return codes


def read_patient(desk: Desk, codes: dict[str, str], real: str) -> None:
    """r1 and r2 read and sign both visits of patient ``real`` with the changes of CHANGES."""
    for i, reader in enumerate(("r1", "r2")):
        s = desk.sessions[reader]
        for visit, total in (("W0", 0), ("W52", CHANGES[real][i])):
            code = desk.ws.reading.start_read(s, "ADJ", codes[real], visit)
            desk.ws.reading.set_scores(s, code, scores(total))
            desk.sign(s, code)


def configure(desk: Desk, settings: dict[str, object]) -> None:
    for name in ("adjudication_difference", "frozen_sdc", "adjudication_trigger"):
        if name in settings:
            desk.ws.trials.set_trial_setting(desk.coord, "ADJ", name, settings[name], "test rule")


@pytest.mark.parametrize("rule", sorted(RULES))
def test_exactly_the_expected_patients_are_queued(desk: Desk, rule: str) -> None:
    codes = build(desk)
    settings, expected = RULES[rule]
    configure(desk, settings)
    out = desk.ws.adjudication.update_adjudication(desk.coord, "ADJ")
    assert out == AdjudicationUpdate(checked=6, queued=len(expected), done=0)
    report = desk.ws.adjudication.adjudications(desk.coord, "ADJ").to_dict()  # as the CLI prints
    by_code = {v: k for k, v in codes.items()}
    assert {by_code[a["patient"]] for a in report["patients"]} == expected
    assert all(a["status"] == "queued" and a["reasons"] for a in report["patients"])
    # Running it again queues nobody twice.
    assert desk.ws.adjudication.update_adjudication(desk.coord, "ADJ").queued == 0
    trail = desk.ws.oversight.audit_trail(desk.coord)
    queued = [r for r in trail if r.action == "adjudication.queue"]
    assert {by_code[r.entity_id] for r in queued} == expected
    assert all(
        json.loads(r.new)["rule"]["trigger"] == settings["adjudication_trigger"] for r in queued
    )
    # A monitor sees the queue without patients or changes.
    mona = desk.user("mona", "monitor")
    seen = desk.ws.adjudication.adjudications(mona, "ADJ").to_dict()["patients"]
    assert len(seen) == len(expected) and all("patient" not in a for a in seen)


def test_the_frozen_sdc_trigger_needs_a_frozen_sdc(desk: Desk) -> None:
    build(desk)
    with pytest.raises(Exception, match="not frozen yet"):
        desk.ws.adjudication.update_adjudication(desk.coord, "ADJ")
    value = desk.freeze_sdc("ADJ", "after the primary reading")
    # SD of the readers' differences d = r1 - r2 over the six patients, 1.96 SD / (√2 √2).
    import statistics

    d = [a - b for a, b in CHANGES.values()]
    assert value == pytest.approx(1.96 * statistics.stdev(d) / 2, abs=1e-6)
    assert desk.ws.trials.trial_settings(desk.coord, "ADJ").protocol.frozen_sdc == value


def audit_rows(desk: Desk) -> list[object]:
    from scorer.store import repository as repo

    with desk.ws.store.read() as db:
        # The rows a person's action writes, not the data rows the trail carries with them.
        return [a for a in repo.audit_rows(db) if not a.action.startswith("data.")]


def test_a_frozen_sdc_is_not_frozen_again_unseen(desk: Desk) -> None:
    """Freezing again (a new reason, the same reads) used to say "SDC frozen" and record
    nothing: it is refused with when and by whom it was frozen and how to freeze anew."""
    build(desk)
    value = desk.freeze_sdc("ADJ", "after the primary reading")
    before = len(audit_rows(desk))
    with pytest.raises(InvalidInput, match=r"the SDC of trial ADJ is frozen already at ") as info:
        desk.freeze_sdc("ADJ", "again, with another reason")
    message = str(info.value)
    assert f"at {value:g} since 20" in message and "(by cora)" in message
    assert message.endswith(
        "to freeze it anew, first clear it: scorer trial set ADJ frozen_sdc none --reason ..."
    )
    assert len(audit_rows(desk)) == before
    desk.ws.trials.set_trial_setting(desk.coord, "ADJ", "frozen_sdc", "none", "freeze anew")
    assert desk.freeze_sdc("ADJ", "frozen anew") == value
    assert len(audit_rows(desk)) == before + 2


@pytest.mark.parametrize("final_rule", sorted(FINAL))
def test_final_scores_follow_the_rule_with_its_tie_break(desk: Desk, final_rule: str) -> None:
    ws, coord = desk.ws, desk.coord
    codes = build(desk)
    by_code = {v: k for k, v in codes.items()}
    configure(desk, RULES["difference 2.5"][0])
    ws.trials.set_trial_setting(coord, "ADJ", "final_rule", final_rule, "test rule")
    ws.adjudication.update_adjudication(coord, "ADJ")
    assert ws.adjudication.assign_adjudications(coord, "ADJ", "adam") == 3
    adam = desk.sessions["adam"]
    rows = ws.worklists.worklist(coord, "ADJ", "adam")
    assert [r.read_type for r in rows] == ["adjudication"] * 3
    mine = ws.worklists.worklist(adam, "ADJ")
    assert all(set(r.to_dict()) == {"code", "progress", "status"} for r in mine)  # blinded
    for row in rows:
        opened = ws.reading.open_case(adam, row.code)
        real = by_code[row.patient]
        for letter, label in zip("AB", row.visits, strict=True):
            read = opened.reads[letter]
            # Blind to the first reads: the adjudicator's own reads start empty.
            assert ws.reading.get_read(adam, read).scores == {}
            ws.reading.set_scores(adam, read, scores(0 if label == "W0" else ADJUDICATED[real]))
        ws.reading.sign_case(
            adam,
            row.code,
            "Correct-Horse-Battery-9",
            username=None if adam.signed_once else "adam",
        )
    out = ws.adjudication.update_adjudication(coord, "ADJ")
    assert out.done == 3
    report = ws.adjudication.adjudications(coord, "ADJ").to_dict()
    for a in report["patients"]:
        real = by_code[a["patient"]]
        assert a["status"] == "done" and a["adjudicator"] == "adam"
        result = a["result"]
        assert result["rule"] == final_rule
        assert result["final_change"] == pytest.approx(FINAL[final_rule][real], abs=1e-6)
        assert result["final_totals"]["W0"] == 0
        assert result["final_totals"]["W52"] == pytest.approx(FINAL[final_rule][real], abs=1e-6)
        if final_rule in CHOSEN:
            assert result["reads"] == CHOSEN[final_rule][real]
    results = [r for r in ws.oversight.audit_trail(coord) if r.action == "adjudication.result"]
    assert len(results) == 3
    assert ws.verify().ok
