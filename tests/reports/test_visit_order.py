"""The order of the visits (spec §6): by the median over patients of each patient's visit date,
so one mis-dated visit neither reorders the visits nor changes the default change; the patient
whose own dates are out of that order is named in a note, and their change is annualised on
their own dates."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from scorer.core.methods import builtin_methods, get_method
from scorer.core.reads import AreaScore, Read
from scorer.core.visits import order_visits, visit_order
from scorer.reports.analysis import AnalysisOptions, analyze
from scorer.reports.endpoints import patient_changes

VISITS = (("W0", 0, 0), ("W4", 28, 2), ("W24", 168, 5), ("W52", 364, 9))
"""Label, days after the patient's W0 and total erosion score of every read."""

WRONG = date(2024, 1, 10) + timedelta(days=2 * 7 + 19)
"""P03's W52, mis-dated 19 days after P03's W0 (P03 starts two weeks after P01)."""


def _reads() -> list[Read]:
    """8 patients, readers R1 and R2, W0/W4/W24/W52 at their planned days; P03's W52 dated
    19 days after P03's W0. R2 reads one grade more than R1 at the later visits."""
    method = get_method("svh")
    areas = [d.area for d in method.areas]
    out: list[Read] = []
    for i in range(8):
        patient = f"P{i + 1:02d}"
        start = date(2024, 1, 10) + timedelta(days=7 * i)
        for visit, days, total in VISITS:
            when = WRONG if (patient, visit) == ("P03", "W52") else start + timedelta(days=days)
            for reader, extra in (("R1", 0), ("R2", 1 if days else 0)):
                n = total + extra + i % 3
                scores = {a: AreaScore(score=1 if j < n else 0) for j, a in enumerate(areas)}
                rid = f"{patient}{visit}{reader}"
                out.append(
                    Read("T", patient, visit, reader, "svh", "primary", rid, "signed", when, scores)
                )
    return out


def test_one_mis_dated_visit_does_not_reorder_the_visits() -> None:
    reads = _reads()
    # By the earliest date any patient has, P03's W52 came before W24 (the old order).
    earliest = order_visits({r.visit for r in reads}, {"W0": 0, "W4": 1, "W24": 3, "W52": 2})
    assert earliest == ["W0", "W4", "W52", "W24"]
    order = visit_order((r.patient, r.visit, r.visit_date) for r in reads)
    assert order.visits == ["W0", "W4", "W24", "W52"]
    assert order.earliest["W52"] == WRONG
    assert order.notes == [
        f"patient P03: W52 dated {WRONG.isoformat()} before W4/W24 — check the visit dates"
    ]


def test_analyze_changes_from_the_first_to_the_last_visit_and_names_the_patient() -> None:
    res = analyze(_reads(), dict(builtin_methods()), AnalysisOptions())
    assert res["visits"] == ["W0", "W4", "W24", "W52"]
    assert (res["from"], res["to"]) == ("W0", "W52")
    assert (
        f"patient P03: W52 dated {WRONG.isoformat()} before W4/W24 — check the visit dates"
        in res["notes"]
    )
    # The date shown is still the earliest of the visit (documented in README).
    assert res["totals"]["W52"]["date"] == WRONG.isoformat()
    rows = {p["patient"]: p for p in res["change"]["patients"]}
    # Change W0 -> W52 (9 + one grade more for R2): every patient, P03 included.
    assert {p: r["mean"] for p, r in rows.items()} == dict.fromkeys(rows, 9.5)
    # Annualised on each patient's own dates: P03's 19 days are too few, the others' 364 days.
    assert rows["P03"]["annualised"] is None
    assert rows["P01"]["annualised"] == pytest.approx(9.5 * 365.25 / 364, abs=1e-6)
    assert "some visit intervals are under 30 days: not annualised" in res["notes"]


def test_endpoints_order_the_visits_the_same_way() -> None:
    changes, visits, notes = patient_changes(_reads(), {"methods": ["svh"]})
    assert visits == ["W0", "W4", "W24", "W52"]
    assert notes[0].startswith("patient P03: W52 dated")
    by = {c.patient: c for c in changes}
    assert by["P03"].change["total"] == 9.5 and by["P03"].annualised is None
    assert by["P01"].annualised == pytest.approx(9.5 * 365.25 / 364)


def test_ties_and_undated_visits_follow_the_number_in_the_label() -> None:
    same = date(2024, 3, 1)
    # Every visit on the same day: W4 before W24 (numbers, not text), before W52.
    tied = visit_order([("P1", v, same) for v in ("W52", "W24", "W4")])
    assert tied.visits == ["W4", "W24", "W52"] and tied.notes == []
    # A visit without any date: the labels' order, the dates ignored.
    undated = visit_order([("P1", "W24", date(2024, 1, 1)), ("P1", "W4", None)])
    assert undated.visits == ["W4", "W24"]
    assert undated.notes == []


def test_the_median_decides_with_an_even_number_of_patients() -> None:
    d = date(2024, 1, 1)
    # Y: days 1 and 8 (median 4.5), BL: days 0 and 10 (median 5), X: days 4 and 7 (5.5).
    triples = [
        ("A", "BL", d),
        ("B", "BL", d + timedelta(10)),
        ("A", "X", d + timedelta(4)),
        ("B", "X", d + timedelta(7)),
        ("A", "Y", d + timedelta(1)),
        ("B", "Y", d + timedelta(8)),
    ]
    order = visit_order(triples)
    day = d.toordinal()
    assert order.median == {"BL": day + 5, "X": day + 5.5, "Y": day + 4.5}
    assert order.visits == ["Y", "BL", "X"]
    assert order.notes == [
        "patient A: BL dated 2024-01-01 before Y — check the visit dates",
        "patient B: X dated 2024-01-08 before Y/BL — check the visit dates",
    ]
