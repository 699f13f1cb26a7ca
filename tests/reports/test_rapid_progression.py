"""Rapid radiographic progression on annualised change, its comparison explicit (spec §6,
issue 23).

`--threshold 'rapid>5'` used to count patients whose raw change exceeds 5, with n counting
patients that have no annualised change. The file here has irregular visit intervals so that
raw and annualised change disagree, one annualised change of exactly 5 (>= and > differ), and
one interval under 30 days (no annualised change: out of n).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from scorer.cli import main
from scorer.core.methods import Area, get_method
from scorer.core.progression import parse_threshold
from scorer.core.reads import AreaScore, Read
from scorer.core.readscsv import format_reads_csv
from scorer.reports.analysis import AnalysisOptions

START = date(2024, 1, 1)
# patient -> (days between the visits, R1's change, R2's change); annualised change is the
# reader mean x 365.25 / days.
PLAN = {
    "P1": (1461, 20, 20),  # 20 / 4.0 years = 5.0 exactly: rapid under >= 5, not under > 5
    "P2": (146, 3, 3),  # raw 3, annualised 7.505: rapid under both
    "P3": (730, 6, 6),  # raw 6, annualised 3.002: rapid under neither
    "P4": (20, 8, 8),  # under 30 days: no annualised change, left out of n
    "P5": (365, 0, 2),  # mean 1, annualised 1.001: not rapid
    "P6": (365, 10, 10),  # annualised 10.007: rapid under both
}


def rapid_reads() -> list[Read]:
    svh = get_method("svh")
    hand_erosions = [d.area for d in svh.areas if d.region in ("LH", "RH") and d.feature == "ERO"]
    reads = []
    for patient, (days, *changes) in PLAN.items():
        for reader, change in zip(("R1", "R2"), changes, strict=True):
            for visit, when, amount in (
                ("W0", START, 0),
                ("W52", START + timedelta(days=days), change),
            ):
                scores = {d.area: 0 for d in svh.areas}
                # Spread the change one grade per hand erosion area (32 areas, 0-5 each).
                for i in range(amount):
                    area: Area = hand_erosions[i % len(hand_erosions)]
                    scores[area] += 1
                reads.append(
                    Read(
                        trial="T23",
                        patient=patient,
                        visit=visit,
                        reader=reader,
                        method="svh",
                        read_type="primary",
                        read_id=f"{patient}-{visit}-{reader}",
                        status="signed",
                        visit_date=when,
                        scores={a: AreaScore(score=s) for a, s in scores.items()},
                    )
                )
    return reads


@pytest.fixture
def rapid_csv(tmp_path: Path) -> Path:
    path = tmp_path / "rapid.csv"
    path.write_text(format_reads_csv(rapid_reads()), encoding="utf-8")
    return path


def _analyze(capsys: pytest.CaptureFixture[str], path: Path, *args: str) -> dict:
    rc = main(["analyze", str(path), "--format", "json", *args])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return json.loads(out)


def _entry(res: dict, kind: str) -> list[dict]:
    return [t for t in res["progression"]["thresholds"] if t["kind"] == kind]


def test_the_file_has_the_changes_it_was_built_with(
    rapid_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    res = _analyze(capsys, rapid_csv)
    by = {p["patient"]: p for p in res["change"]["patients"]}
    assert {p: by[p]["mean"] for p in PLAN} == {
        "P1": 20.0,
        "P2": 3.0,
        "P3": 6.0,
        "P4": 8.0,
        "P5": 1.0,
        "P6": 10.0,
    }
    assert by["P1"]["annualised"] == 5.0
    assert by["P2"]["annualised"] == pytest.approx(3 * 365.25 / 146, abs=1e-6)
    assert by["P4"]["annualised"] is None
    assert any("under 30 days" in n for n in res["notes"])


def test_rapid_gt_5_counts_annualised_change_over_patients_that_have_one(
    rapid_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    res = _analyze(capsys, rapid_csv, "--threshold", "rapid>5")
    rapid = _entry(res, "rapid")
    assert len(rapid) == 1, "the given rapid threshold replaces the built-in rapid>=5"
    (r,) = rapid
    # Annualised: P1 5.0, P2 7.5, P3 3.0, P5 1.0, P6 10.0 (P4: under 30 days).
    # > 5: P2 and P6. (On raw change it was P1, P3, P4, P6 = 4 of 6.)
    assert (r["op"], r["cutoff"], r["n"], r["n_progressors"], r["pct"]) == (">", 5.0, 5, 2, 40.0)
    assert r["threshold"] == "rapid progression (annualised change > 5)"
    # The change thresholds stay the defaults when only a rapid one is given.
    assert [t["threshold"] for t in res["progression"]["thresholds"][:4]] == [
        "change > SDC95",
        "change > SDC80",
        "change > 0",
        "change > 0.5",
    ]
    assert res["progression"]["thresholds"][-1] is r


def test_default_rapid_is_at_least_5_per_year(
    rapid_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    res = _analyze(capsys, rapid_csv)
    (r,) = _entry(res, "rapid")
    # >= 5: P1 (exactly 5.0), P2, P6.
    assert (r["op"], r["n"], r["n_progressors"], r["pct"]) == (">=", 5, 3, 60.0)
    assert r["threshold"] == "rapid progression (annualised change >= 5)"


def test_both_rapid_comparisons_side_by_side_and_change_thresholds_on_raw_change(
    rapid_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    res = _analyze(
        capsys,
        rapid_csv,
        "--threshold",
        ">5",
        "--threshold",
        "rapid>=5",
        "--threshold",
        ">=6",
        "--threshold",
        "rapid>5",
    )
    rows = [
        (t["threshold"], t["kind"], t["n"], t["n_progressors"])
        for t in res["progression"]["thresholds"]
    ]
    # Change thresholds first, on raw reader-mean change over all 6 patients:
    # > 5: P1 20, P3 6, P4 8, P6 10; >= 6: the same four.
    assert rows == [
        ("change > 5", "fixed", 6, 4),
        ("change >= 6", "fixed", 6, 4),
        ("rapid progression (annualised change >= 5)", "rapid", 5, 3),
        ("rapid progression (annualised change > 5)", "rapid", 5, 2),
    ]
    per_reader = res["progression"]["thresholds"][0]["per_reader"]
    assert per_reader["R1"]["n_progressors"] == 4 and per_reader["R2"]["n_progressors"] == 4


def test_rapid_without_its_comparison_is_refused_with_a_message(
    rapid_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["analyze", str(rapid_csv), "--threshold", "rapid5"])
    out, err = capsys.readouterr()
    assert rc == 1 and out == ""
    assert "does not say how it compares" in err and "rapid>=5 or rapid>5" in err


def test_the_rapid_option_must_be_annualised() -> None:
    with pytest.raises(ValueError, match="annualised change"):
        AnalysisOptions(rapid=parse_threshold(">=5"))
