"""Calibration: reference reads imported from a reads CSV, a reader scores the calibration set
(looking like any case), gets per-area feedback against the reference after signing, the
coordinator sees the agreement and releases the reader; before release the trial's cases
stay closed to them."""

from __future__ import annotations

import pytest

from scorer.core.reads import AreaScore
from scorer.core.reads import Read as CoreRead
from scorer.core.readscsv import format_reads_csv
from scorer.workspace import InvalidInput, NotFound, PermissionDenied
from tests.desk.conftest import HAND_ERO, PASSWORD, SVH, Desk, scores

REFERENCE = "lead-ref"


def reference_csv() -> str:
    """The reference reads of calibration patient CAL-1 at W0 (total 4) and W52 (total 6)."""
    reads = [
        CoreRead(
            trial="CAL",
            patient="CAL-1",
            visit=visit,
            reader=REFERENCE,
            method="svh",
            read_id=f"REF-{visit}",
            read_type="imported",
            status="signed",
            scores=scores(total),
        )
        for visit, total in (("W0", 4), ("W52", 6))
    ]
    return format_reads_csv(reads)


def test_calibration_feedback_agreement_and_release(desk: Desk) -> None:
    ws, coord = desk.ws, desk.coord
    ws.trials.create_trial(coord, "CAL", "Calibration test", visits=[("W0", 0.0), ("W52", 52.0)])
    for real in ("P1", "P2"):
        ws.trials.add_patient(coord, "CAL", real)
    done = ws.exchange.import_reads(coord, "CAL", reference_csv(), source="reference.csv")
    assert done.added == 2
    codes = desk.patient_codes("CAL")
    ws.trials.set_trial_setting(coord, "CAL", "calibration_reference", REFERENCE, "reference reads")
    ws.trials.set_trial_setting(
        coord, "CAL", "calibration_patients", [codes["CAL-1"]], "training set"
    )
    rita = desk.user("rita", "reader")
    ws.worklists.assign_reader(coord, "CAL", "rita")
    ws.worklists.generate_worklists(coord, "CAL")
    assert ws.calibration.calibration_worklists(coord, "CAL").cases == {"rita": 1}
    full = ws.worklists.worklist(coord, "CAL", "rita")
    calibration = [r for r in full if r.read_type == "calibration"]
    primary = [r for r in full if r.read_type == "primary"]
    assert [r.patient for r in calibration] == [codes["CAL-1"]]
    assert sorted(r.patient for r in primary) == sorted([codes["P1"], codes["P2"]])
    # To the reader every case looks the same: code, n of N, status.
    seen = ws.worklists.worklist(rita, "CAL")
    assert all(set(r.to_dict()) == {"code", "progress", "status"} for r in seen)
    assert seen[0].code == calibration[0].code  # calibration comes first

    # Not released: the trial's cases and their images are closed.
    for r in primary:
        with pytest.raises(PermissionDenied, match="calibration"):
            ws.reading.open_case(rita, r.code)
        with pytest.raises(PermissionDenied, match="calibration"):
            ws.images.case_images(rita, r.code)

    case = calibration[0].code
    opened = ws.reading.open_case(rita, case)
    visits = calibration[0].visits
    reference = {"W0": scores(4), "W52": scores(6)}
    typed = {}
    for letter, label in zip("AB", visits, strict=True):
        mine = dict(reference[label])
        a, b, c = HAND_ERO[0], HAND_ERO[10], HAND_ERO[12]
        mine[a] = AreaScore.scored(2) if label == "W0" else mine[a]  # reference 1: within one
        mine[b] = AreaScore.scored(3)  # reference 0: differs by 3
        mine[c] = AreaScore.not_assessable("image_quality")  # not comparable
        typed[letter] = mine
        ws.reading.set_scores(rita, opened.reads[letter], mine)
    with pytest.raises(InvalidInput, match="once the case is signed"):
        ws.calibration.calibration_feedback(rita, case)
    ws.reading.sign_case(rita, case, PASSWORD, username="rita")
    fb = ws.calibration.calibration_feedback(rita, case)
    for letter, label in zip("AB", visits, strict=True):
        rows = {row.area: row for row in fb.visits[letter]}
        assert len(rows) == len(SVH.areas)
        for d in SVH.areas:
            row = rows[str(d.area)]
            mine, ref = typed[letter][d.area], reference[label][d.area]
            if mine.score is None:
                assert row.verdict == "not comparable" and row.difference is None
            else:
                assert row.difference == mine.score - ref.score
                want = {0: "same", 1: "within one"}.get(abs(mine.score - ref.score), "differs")
                assert row.verdict == want
    with pytest.raises(NotFound):
        ws.calibration.calibration_feedback(rita, primary[0].code)  # no feedback on trial cases

    report = ws.calibration.calibration_report(coord, "CAL").to_dict()  # as the CLI prints it
    assert report["reference_reads"] == 2
    (r,) = report["readers"]
    assert (r["reader"], r["cases"], r["signed"], r["released"]) == ("rita", 1, 1, False)
    # Erosion areas compared: 44 per visit, one not assessable -> 43 each, 86 in all; exact
    # everywhere but HAND_ERO[10] at both visits and HAND_ERO[0] at W0.
    ero = r["features"]["ERO"]
    assert ero["n"] == 86
    assert ero["pct_exact"] == round(100 * 83 / 86, 1)
    assert ero["pct_within_one"] == round(100 * 84 / 86, 1)
    assert r["features"]["JSN"] == {"n": 84, "pct_exact": 100.0, "pct_within_one": 100.0}
    assert r["icc_n"] == 2

    ws.calibration.release_reader(coord, "CAL", "rita", "calibration agreement acceptable")
    assert ws.calibration.calibration_report(coord, "CAL").readers[0].released
    opened = ws.reading.open_case(rita, primary[0].code)  # now the trial's cases open
    assert sorted(opened.reads) == ["A", "B"]
    with pytest.raises(InvalidInput, match="released already"):
        ws.calibration.release_reader(coord, "CAL", "rita", "again")
    assert [a.action for a in ws.oversight.audit_trail(coord)].count("reader.release") == 1


def test_release_waits_for_every_calibration_case(desk: Desk) -> None:
    ws, coord = desk.ws, desk.coord
    ws.trials.create_trial(coord, "CAL", "Calibration test", visits=[("W0", 0.0), ("W52", 52.0)])
    ws.trials.add_patient(coord, "CAL", "P1")
    ws.exchange.import_reads(coord, "CAL", reference_csv())
    codes = desk.patient_codes("CAL")
    ws.trials.set_trial_setting(coord, "CAL", "calibration_reference", REFERENCE, "reference reads")
    ws.trials.set_trial_setting(
        coord, "CAL", "calibration_patients", [codes["CAL-1"]], "training set"
    )
    desk.user("rita", "reader")
    ws.worklists.assign_reader(coord, "CAL", "rita")
    ws.calibration.calibration_worklists(coord, "CAL")
    with pytest.raises(InvalidInput, match="1 calibration case"):
        ws.calibration.release_reader(coord, "CAL", "rita", "too early")
    assert (
        ws.worklists.verify_worklists(coord, "CAL") == []
    )  # the calibration worklist regenerates too
