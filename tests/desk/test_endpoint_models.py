"""The endpoint report's models against published worked examples, its fallbacks, its
missing-visit rule, and a simulated 400-patient trial with a known effect.

Published examples (each to the precision printed):

- ANCOVA: Montgomery, *Design and Analysis of Experiments* (8th ed., 2012), Example 15.5,
  Table 15.10 (breaking strength of fibre from three machines, diameter the covariate): slope
  0.954, adjusted means 40.38, 41.42 and 38.80, error SS 27.99 on 11 df (MS 2.54), adjusted
  machines F 2.61 with p 0.118 (R's ``aov(strength ~ thickness + machine)`` prints the same:
  305.13 / 13.28 / 27.99, F 2.611, p 0.118).
- Newcombe RG, "Interval estimation for the difference between independent proportions:
  comparison of eleven methods", Stat Med 1998;17:873–890, Table II, method 10.
- Cochran–Mantel–Haenszel: Agresti (1990) pp. 231–237, penicillin and rabbits, R's
  ``mantelhaen.test(Rabbits)`` example: X² = 3.9286 (continuity-corrected), p = 0.04747, common
  odds ratio 7.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pytest

from scorer.core.reads import Read
from scorer.core.readscsv import format_reads_csv, parse_reads_csv
from scorer.reports.endpoints import endpoint_results, patient_changes, read_strata
from scorer.stats.endpoint_models import (
    ancova,
    cmh_test,
    compare_proportions,
    newcombe_interval,
    rank_ancova,
)
from tests.desk.conftest import scores

STRENGTH = [36, 41, 39, 42, 49, 40, 48, 39, 45, 44, 35, 37, 42, 34, 32]
DIAMETER = [20, 25, 24, 25, 32, 22, 28, 22, 30, 28, 21, 23, 26, 21, 15]
MACHINE = ["1"] * 5 + ["2"] * 5 + ["3"] * 5


def test_ancova_reproduces_montgomery_example_15_5() -> None:
    r = ancova(STRENGTH, DIAMETER, MACHINE, control="1")
    assert r.slope == pytest.approx(0.954, abs=5e-4)
    assert [round(m.mean, 2) for m in r.means] == [40.38, 41.42, 38.80]
    assert r.residual_df == 11
    assert round(r.residual_ms, 2) == 2.54
    assert round(r.residual_ms * r.residual_df, 2) == 27.99
    assert r.formula == 'change ~ C(arm, Treatment(reference="1")) + baseline'
    # The differences are the adjusted means' differences, their p-values the coefficients'.
    d = {x.arm: x for x in r.differences}
    assert d["2"].estimate == pytest.approx(r.means[1].mean - r.means[0].mean)
    assert d["3"].estimate == pytest.approx(r.means[2].mean - r.means[0].mean)
    assert all(x.low < x.estimate < x.high and 0 < x.p < 1 for x in r.differences)
    # The machines' F test (2.61, p 0.118) from the same model, for the printed ANOVA line.
    import pandas as pd
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    fit = smf.ols(
        "y ~ x + C(m)", data=pd.DataFrame({"y": STRENGTH, "x": DIAMETER, "m": MACHINE})
    ).fit()
    table = anova_lm(fit, typ=2)
    assert round(float(table.loc["C(m)", "F"]), 2) == 2.61
    assert round(float(table.loc["C(m)", "PR(>F)"]), 3) == 0.118
    assert round(float(table.loc["C(m)", "sum_sq"]), 2) == 13.28


def test_rank_ancova_is_the_same_model_on_ranks() -> None:
    from scipy.stats import rankdata

    r = rank_ancova(STRENGTH, DIAMETER, MACHINE, control="1")
    same = ancova(list(rankdata(STRENGTH)), list(rankdata(DIAMETER)), MACHINE, control="1")
    assert [d.estimate for d in r.differences] == pytest.approx(
        [d.estimate for d in same.differences]
    )
    assert r.formula.startswith("rank(change) ~") and "rank(baseline)" in r.formula


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2", "low", "high"),
    [
        (56, 70, 48, 80, 0.0524, 0.3339),  # (a)
        (9, 10, 3, 10, 0.1705, 0.8090),  # (b)
        (6, 7, 2, 7, 0.0582, 0.8062),  # (c)
        (5, 56, 0, 29, -0.0381, 0.1926),  # (d)
        (0, 10, 0, 20, -0.1611, 0.2775),  # (e)
        (0, 10, 0, 10, -0.2775, 0.2775),  # (f)
        (10, 10, 0, 20, 0.6791, 1.0000),  # (g)
        (10, 10, 0, 10, 0.6075, 1.0000),  # (h)
    ],
)
def test_newcombe_1998_table_ii_method_10(
    x1: int, n1: int, x2: int, n2: int, low: float, high: float
) -> None:
    got = newcombe_interval(x1, n1, x2, n2)
    assert (round(got[0], 4), round(got[1], 4)) == (low, high)


def test_cmh_reproduces_agresti_penicillin_and_rabbits() -> None:
    # R's array(c(0, 0, 6, 5, ...), dim = c(2, 2, 5)): per penicillin level, rows delay
    # (none, 1.5 h), columns cured, died.
    cells = [0, 0, 6, 5, 3, 0, 3, 6, 6, 2, 0, 4, 5, 6, 1, 0, 2, 5, 0, 0]
    tables = [np.array(cells[k : k + 4]).reshape(2, 2, order="F") for k in range(0, 20, 4)]
    stat, p = cmh_test(tables)
    assert round(stat, 4) == 3.9286
    assert round(p, 5) == 0.04747


def test_separation_falls_back_to_fisher_and_says_why() -> None:
    success = [True] * 4 + [False] * 4
    arm = ["active"] * 4 + ["placebo"] * 4
    (c,) = compare_proportions(success, arm, control="placebo")
    assert c.test == "Fisher's exact test (two-sided)"
    assert c.note.startswith("logistic regression could not be fitted:")
    assert "Fisher's exact test instead" in c.note
    assert c.p == pytest.approx(1 / 35)  # 2 × (4! 4! / 8!)
    assert (c.x, c.n, c.x_control, c.n_control, c.difference) == (4, 4, 0, 4, 1.0)
    # A mixed outcome fits: the logistic regression's Wald test, no note.
    (c,) = compare_proportions([True, False, True, True, False, False], ["a"] * 3 + ["b"] * 3, "b")
    assert c.test.startswith("logistic regression") and c.note == ""


def test_strata_take_the_cmh_path() -> None:
    rng = np.random.default_rng(7)
    arm = ["active", "placebo"] * 40
    region = ["EU" if i % 4 < 2 else "US" for i in range(80)]
    success = [bool(rng.random() < (0.7 if a == "active" else 0.4)) for a in arm]
    (c,) = compare_proportions(success, arm, "placebo", strata=region)
    assert c.test.startswith("Cochran–Mantel–Haenszel")
    tables = []
    for s in ("EU", "US"):
        rows = [(v, a) for v, a, r in zip(success, arm, region, strict=True) if r == s]
        xa = sum(v for v, a in rows if a == "active")
        na = sum(1 for _, a in rows if a == "active")
        xp = sum(v for v, a in rows if a == "placebo")
        npl = sum(1 for _, a in rows if a == "placebo")
        tables.append(np.array([[xa, na - xa], [xp, npl - xp]]))
    assert c.p == pytest.approx(cmh_test(tables)[1])
    # ANCOVA with the factor: it appears in the formula and the LS means average over it.
    change = [float(rng.normal(1.0 if a == "active" else 2.0, 1.0)) for a in arm]
    r = ancova(change, [0.0 + i % 7 for i in range(80)], arm, "placebo", {"region": region})
    assert r.formula.endswith("+ baseline + C(region)")
    assert "observed proportions" in r.adjustment


# ------------------------------------------------------------------ through the report


DAY0 = date(2023, 1, 2)


def _read(patient: str, reader: str, visit: str, day: date, total: int) -> Read:
    return Read(
        trial="SIM",
        patient=patient,
        visit=visit,
        reader=reader,
        method="svh",
        read_id=f"{patient}-{reader}-{visit}",
        read_type="primary",
        status="signed",
        visit_date=day,
        scores=scores(total),
    )


def _manifest(**protocol: object) -> dict[str, object]:
    return {
        "kind": "scorer reads export",
        "trial": "SIM",
        "locked": True,
        "protocol": {
            "methods": ["svh"],
            "thresholds": ["0.5"],
            "visits": [
                {"label": "W0", "week": 0},
                {"label": "W24", "week": 24},
                {"label": "W52", "week": 52},
            ],
            **protocol,
        },
    }


def test_a_simulated_400_patient_trial_recovers_its_true_effect() -> None:
    """Placebo mean change 2.0, active 0.5 (true difference −1.5), noise SD 2; the reads
    file made from a seed, written and read back as the spec's CSV."""
    rng = np.random.default_rng(20240)
    reads: list[Read] = []
    arms: dict[str, str] = {}
    for i in range(400):
        patient = f"S{i:03d}"
        arm = "active" if i % 2 else "placebo"
        arms[patient] = arm
        base = int(rng.integers(8, 16))
        late = base + round(float(rng.normal(0.5 if arm == "active" else 2.0, 2.0)))
        late = max(0, min(32, late))
        for reader in ("r1", "r2"):
            reads.append(_read(patient, reader, "W0", DAY0, base))
            reads.append(_read(patient, reader, "W52", DAY0 + timedelta(days=364), late))
    text = format_reads_csv(reads)
    result = endpoint_results(parse_reads_csv(text), _manifest(), arms, control="placebo")
    (mtss,) = [a for a in result["analysis"]["ancova"] if a["measure"] == "total"]
    (d,) = mtss["differences"]
    assert d["arm"] == "active" and d["control"] == "placebo"
    assert d["low"] < -1.5 < d["high"], d
    assert d["p"] < 0.001 and mtss["n"] == 400
    means = {m["arm"]: m for m in mtss["means"]}
    assert means["placebo"]["low"] < 2.0 < means["placebo"]["high"]
    assert means["active"]["low"] < 0.5 < means["active"]["high"]
    (row,) = result["analysis"]["non_progression"]
    (c,) = row["comparisons"]
    assert c["difference"] > 0 and c["low"] > 0 and c["test"].startswith("logistic")


@pytest.mark.parametrize(("rule", "want"), [("locf", 4.0), ("linear", 4.0 + 4.0 * 196 / 168)])
def test_missing_visit_rules_fill_the_last_visit(rule: str, want: float) -> None:
    """P2 has no week-52 film: LOCF carries week 24 forward; linear extends W0→W24 to day
    364 (the protocol's 52 weeks after the patient's W0)."""
    reads = []
    for p, totals in (("P1", (0, 2, 6)), ("P2", (0, 4, None)), ("P3", (1, 1, 1))):
        for reader in ("r1", "r2"):
            for (visit, week), total in zip(
                (("W0", 0), ("W24", 24), ("W52", 52)), totals, strict=True
            ):
                if total is not None:
                    reads.append(_read(p, reader, visit, DAY0 + timedelta(weeks=week), total))
    changes, visits, _ = patient_changes(reads, _manifest(missing_visits=rule)["protocol"])  # type: ignore[arg-type]
    got = {c.patient: c for c in changes}
    assert visits == ["W0", "W24", "W52"]
    assert got["P2"].filled and got["P2"].change["total"] == pytest.approx(want)
    assert not got["P1"].filled and got["P1"].change["total"] == 6
    assert got["P1"].baseline["total"] == 0 and got["P3"].baseline["total"] == 1
    result = endpoint_results(
        reads, _manifest(missing_visits=rule), {"P1": "A", "P2": "B", "P3": "B"}, control="A"
    )
    assert result["missing_visits"]["filled"] == {"A": 0, "B": 1}
    assert result["missing_visits"]["rule"] == rule
    # Left missing (the default), P2 is left out; --to W24 gives every patient a change.
    left = patient_changes(reads, _manifest()["protocol"])[0]  # type: ignore[arg-type]
    assert {c.patient for c in left} == {"P1", "P3"}
    early = patient_changes(reads, _manifest()["protocol"], visit_to="W24")[0]  # type: ignore[arg-type]
    assert {c.patient: c.change["total"] for c in early} == {"P1": 2, "P2": 4, "P3": 0}


def test_strata_come_from_the_allocation_file() -> None:
    assert read_strata("patient,arm,region\nP1,A,EU\nP2,B,US\n") == {
        "region": {"P1": "EU", "P2": "US"}
    }
    assert read_strata("patient,arm\nP1,A\n") == {}
    from scorer.reports.endpoints import EndpointError

    with pytest.raises(EndpointError, match="line 3: patient P2 has no region"):
        read_strata("patient,arm,region\nP1,A,EU\nP2,B,\n")


def test_an_arm_without_progressors_reports_the_fallback() -> None:
    reads = []
    for i, (_arm, change) in enumerate([("A", 0)] * 4 + [("B", 5)] * 4):
        for reader in ("r1", "r2"):
            reads.append(_read(f"P{i}", reader, "W0", DAY0, 2))
            reads.append(_read(f"P{i}", reader, "W52", DAY0 + timedelta(days=364), 2 + change))
    arms = {f"P{i}": ("A" if i < 4 else "B") for i in range(8)}
    result = endpoint_results(reads, _manifest(), arms, control="B")
    (row,) = result["analysis"]["non_progression"]
    (c,) = row["comparisons"]
    assert c["test"].startswith("Fisher") and "could not be fitted" in c["note"]
    assert math.isclose(c["p"], 1 / 35)
