"""The oracle checked before it is trusted: spec §10's worked values, hand-worked totals under
the missing-area rules, and kappa against scikit-learn."""

from __future__ import annotations

import random
from fractions import Fraction
from pathlib import Path

import pytest
from sklearn.metrics import cohen_kappa_score

from scorer.cli import main
from tests.oracle.oracle import (
    ORead,
    Rules,
    _sdc,
    analyse,
    anova,
    bland_altman,
    change_total,
    icc_table,
    kappa,
    method_areas,
    status_total,
)

R1 = (0, 3, 6, 0, 14, 4, 1, 20, 8, 2)
R2 = (2, 2, 8, 1, 12, 7, 1, 24, 9, 5)
ROWS = [[Fraction(a), Fraction(b)] for a, b in zip(R1, R2, strict=True)]


def test_worked_values_of_spec_section_10() -> None:
    ms = anova(ROWS)
    assert float(ms.bms) == pytest.approx(90.938889, abs=1e-6)
    assert float(ms.jms) == pytest.approx(8.45, abs=1e-12)
    assert float(ms.ems) == pytest.approx(1.783333, abs=1e-6)
    assert float(ms.wms) == pytest.approx(2.45, abs=1e-12)
    t = icc_table(ROWS)
    for form, value, low, high in (
        ("ICC(2,1)", 0.947903, 0.754110, 0.987572),
        ("ICC(3,1)", 0.961534, 0.853653, 0.990305),
        ("ICC(1,1)", 0.947531, 0.815196, 0.986498),
    ):
        assert t[form]["value"] == pytest.approx(value, abs=1e-6)
        assert t[form]["ci"] == pytest.approx((low, high), abs=1e-6)
    assert t["ICC(2,k)"]["value"] == pytest.approx(0.9733, abs=1e-4)
    assert t["ICC(3,k)"]["value"] == pytest.approx(0.9804, abs=1e-4)
    ba = bland_altman([(a, b) for a, b in ROWS])
    assert ba["mean_diff"] == pytest.approx(-1.3, abs=1e-12)
    assert ba["sd_diff"] == pytest.approx(1.888562, abs=1e-6)
    assert (ba["loa_low"], ba["loa_high"]) == pytest.approx((-5.0016, 2.4016), abs=1e-4)
    cells = {(f"P{i}", rd): row[j] for i, row in enumerate(ROWS) for j, rd in enumerate("AB")}
    s = _sdc([f"P{i}" for i in range(10)], ["A", "B"], cells)
    assert s is not None
    assert (s["n"], s["k"], s["readers"]) == (10, 2, ["A", "B"])
    assert s["exact"][(95, 2)] == pytest.approx(1.850791, abs=1e-6)
    assert s["exact"][(95, 1)] == pytest.approx(2.617413, abs=1e-6)
    assert s["exact"][(80, 2)] == pytest.approx(1.210190, abs=1e-6)
    assert s["sd_diff"] == pytest.approx(1.888562, abs=1e-6)


def test_the_worked_example_csv_gives_the_worked_values(tmp_path: Path) -> None:
    """`scorer example` writes spec §10's trial as a reads CSV; the oracle, reading it on its
    own, finds R1 and R2's changes and the SDC and ICC of §10."""
    out = tmp_path / "example.csv"
    assert main(["example", "--out", str(out)]) == 0
    result = analyse(out.read_text(encoding="utf-8"))
    changes = [p["readers"] for p in result["change"]["patients"]]
    assert [c["R1"] for c in changes] == list(R1)
    assert [c["R2"] for c in changes] == list(R2)
    assert result["sdc"]["exact"][(95, 2)] == pytest.approx(1.850791, abs=1e-6)
    assert result["icc"]["change"]["ICC(2,1)"]["value"] == pytest.approx(0.947903, abs=1e-6)
    assert result["icc"]["change_n"] == 10


def _read(scores: dict[tuple[str, str, str], tuple[int | None, str]]) -> ORead:
    return ORead("r", "P", "W0", None, "A", "svh", "primary", "signed", scores)


def test_totals_under_the_missing_area_rules_by_hand() -> None:
    areas = method_areas("svh")
    assert len(areas) == 86
    assert sum(a.hi for a in areas) == 448  # mTSS 0-448 (spec §2)
    base = {a.key: (1, "") for a in areas}
    assert status_total(_read(base), areas, Rules()) == 86
    # One of LH's 16 erosion areas not visible: that group is 15 × 16/15 = 16 again.
    one = dict(base)
    one[("LH", "MCP1", "ERO")] = (None, "not_visible")
    assert status_total(_read(one), areas, Rules()) == 86
    assert status_total(_read(one), areas, Rules(areas="missing")) is None
    # Operated: missing, or the maximum (5) under --operated max.
    op = dict(base)
    op[("LH", "MCP1", "ERO")] = (None, "operated")
    assert status_total(_read(op), areas, Rules(operated="max")) == 85 + 5
    # Five of LF's six JSN areas gone: over 25 % unused, the total is missing.
    foot = dict(base)
    for j in ("MTP1", "MTP2", "MTP3", "MTP4", "MTP5"):
        foot[("LF", j, "JSN")] = (None, "image_quality")
    assert status_total(_read(foot), areas, Rules()) is None
    # Paired proportional: MCP1 unused at both visits; MCP2 rises 1 -> 3: change 2 × 16/15.
    later = dict(one)
    later[("LH", "MCP2", "ERO")] = (3, "")
    assert change_total(_read(base), _read(later), areas, Rules()) == Fraction(32, 15)


def test_kappa_agrees_with_scikit_learn() -> None:
    rng = random.Random(7)
    for _ in range(200):
        lo, hi = rng.choice(((0, 5), (0, 4), (0, 10), (0, 1)))
        n = rng.randint(2, 40)
        xs = [rng.randint(lo, hi) for _ in range(n)]
        ys = [min(hi, max(lo, x + rng.choice((-1, 0, 0, 1)))) for x in xs]
        k = kappa(xs, ys, lo, hi)
        if not k["estimable"]:
            assert len(set(xs) | set(ys)) == 1
            continue
        labels = list(range(lo, hi + 1))
        for name, weights in (
            ("linear", "linear"),
            ("quadratic", "quadratic"),
            ("unweighted", None),
        ):
            want = cohen_kappa_score(xs, ys, labels=labels, weights=weights)
            assert k[name] == pytest.approx(want, abs=1e-12)
