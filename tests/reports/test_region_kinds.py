"""Areas are the same joint only within one region kind (issue 23, spec §2 and §7).

The thumb's IP1 (hands, erosion 0–5) and the hallux's IP1 (feet, erosion 0–10) share a joint
code. A valid hallux erosion of 6–10 used to stop `scorer analyze` ("grades outside 0..5"),
and the "pooled" IP1 ERO kappa mixed the two joints. Here: a small hand-checked svh file with
hallux erosions 6..10, and every built-in method fed every area's maximum and minimum through
the analysis, the agreement report and calibration.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from scorer.cli import main
from scorer.core.methods import REGION_KINDS, Area, Method, builtin_methods, get_method
from scorer.core.reads import AreaScore, Read
from scorer.core.readscsv import format_reads_csv
from scorer.reports.agreement_report import agreement_document
from scorer.reports.analysis import POOLED_REGION, AnalysisOptions, analyze
from scorer.reports.calibration import agreement, feedback
from scorer.reports.document import to_html, to_json

W0, W52 = date(2024, 1, 1), date(2024, 12, 30)

# Hallux IP1 erosion (0-10) of each read: (reader, patient, visit) -> (LF, RF).
HALLUX = {
    ("R1", "P1", "W0"): (6, 7),
    ("R1", "P1", "W52"): (8, 9),
    ("R1", "P2", "W0"): (10, 6),
    ("R1", "P2", "W52"): (10, 8),
    ("R2", "P1", "W0"): (6, 8),
    ("R2", "P1", "W52"): (8, 9),
    ("R2", "P2", "W0"): (9, 6),
    ("R2", "P2", "W52"): (10, 10),
}
# Thumb IP1 erosion (0-5) on the left hand; the right thumb is 0 throughout.
THUMB = {
    ("R1", "P1", "W0"): 1,
    ("R1", "P1", "W52"): 2,
    ("R1", "P2", "W0"): 0,
    ("R1", "P2", "W52"): 1,
    ("R2", "P1", "W0"): 1,
    ("R2", "P1", "W52"): 2,
    ("R2", "P2", "W0"): 0,
    ("R2", "P2", "W52"): 2,
}


def _read(method: Method, key: tuple[str, str, str], scores: dict[Area, int]) -> Read:
    reader, patient, visit = key
    return Read(
        trial="T23",
        patient=patient,
        visit=visit,
        reader=reader,
        method=method.id,
        read_type="primary",
        read_id=f"{patient}-{visit}-{reader}",
        status="signed",
        visit_date=W0 if visit == "W0" else W52,
        scores={a: AreaScore(score=s) for a, s in scores.items()},
    )


def hallux_reads() -> list[Read]:
    svh = get_method("svh")
    reads = []
    for key, (lf, rf) in HALLUX.items():
        scores = {d.area: 0 for d in svh.areas}
        scores[Area("LF", "IP1", "ERO")] = lf
        scores[Area("RF", "IP1", "ERO")] = rf
        scores[Area("LH", "IP1", "ERO")] = THUMB[key]
        reads.append(_read(svh, key, scores))
    return reads


@pytest.fixture
def hallux_csv(tmp_path: Path) -> Path:
    path = tmp_path / "hallux-ip1.csv"
    path.write_text(format_reads_csv(hallux_reads()), encoding="utf-8")
    return path


def _rows(res: dict) -> dict[tuple[str, str, str], dict]:
    rows = {(k["region"], k["joint"], k["feature"]): k for k in res["kappa"]}
    assert len(rows) == len(res["kappa"]), "one kappa row per (region, joint, feature)"
    return rows


def test_hallux_ip1_erosion_6_to_10_analyses_with_hand_checked_kappa(
    hallux_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["analyze", str(hallux_csv), "--format", "json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    res = json.loads(out)
    rows = _rows(res)
    lf, rf = rows[("LF", "IP1", "ERO")], rows[("RF", "IP1", "ERO")]
    feet = rows[("pooled-feet", "IP1", "ERO")]
    hands = rows[("pooled-hands", "IP1", "ERO")]
    assert ("pooled", "IP1", "ERO") not in rows
    assert [lf["region_kind"], rf["region_kind"], feet["region_kind"]] == ["foot"] * 3
    assert hands["region_kind"] == "hand"

    # Left hallux, R1 against R2: (6,6) (8,8) (10,9) (10,10). Linear kappa =
    # 1 - mean|d| / E|X-Y| (the span cancels) = 1 - 0.25 / 1.75 = 6/7.
    assert (lf["n"], lf["pct_exact"], lf["pct_within_one"]) == (4, 75.0, 100.0)
    assert lf["linear"] == pytest.approx(6 / 7)
    # Right hallux: (7,8) (9,9) (6,6) (8,10): 1 - 0.75 / 1.625 = 7/13.
    assert (rf["n"], rf["pct_exact"], rf["pct_within_one"]) == (4, 50.0, 75.0)
    assert rf["linear"] == pytest.approx(7 / 13)
    # Both feet pooled: n = 2 patients x 2 visits x 2 sides = 8, over 0..10.
    # mean|d| = 4/8; E|X-Y| = 13.5/8; linear = 1 - 0.5/1.6875 = 19/27.
    # mean d^2 = 6/8; E(X-Y)^2 = 4.5; quadratic = 1 - 0.75/4.5 = 5/6.
    # Unweighted: po = 5/8, pe = 14/64, kappa = 0.52.
    assert (feet["n"], feet["pct_exact"], feet["pct_within_one"]) == (8, 62.5, 87.5)
    assert feet["linear"] == pytest.approx(19 / 27)
    assert feet["quadratic"] == pytest.approx(5 / 6)
    assert feet["unweighted"] == pytest.approx(0.52)
    assert feet["n"] == lf["n"] + rf["n"]

    # Thumbs apart: left (1,1) (2,2) (0,0) (1,2), right all 0 (not estimable); pooled over
    # 0..5: mean|d| = 1/8, E|X-Y| = 50/64, linear = 1 - 0.125 / 0.78125 = 0.84.
    lh, rh = rows[("LH", "IP1", "ERO")], rows[("RH", "IP1", "ERO")]
    assert (lh["n"], lh["pct_exact"]) == (4, 75.0)
    assert rh["estimable"] is False and rh["linear"] is None
    assert (hands["n"], hands["pct_exact"], hands["pct_within_one"]) == (8, 87.5, 100.0)
    assert hands["linear"] == pytest.approx(0.84)

    # The foot JSN IP1 is pooled over the feet only; every area is 0: not estimable.
    assert rows[("pooled-feet", "IP1", "JSN")]["estimable"] is False
    assert ("pooled-hands", "IP1", "JSN") not in rows

    # Totals carry the hallux scores: R1 P1 W0 = 1 + 6 + 7 = 14; changes R1 5, 3; R2 4, 7.
    patients = {p["patient"]: p for p in res["change"]["patients"]}
    assert patients["P1"]["readers"] == {"R1": 5.0, "R2": 4.0}
    assert patients["P2"]["readers"] == {"R1": 3.0, "R2": 7.0}
    assert res["totals"]["W0"]["readers"]["R1"]["mean"] == pytest.approx((14 + 16) / 2)

    # The text form names the pooled rows by kind.
    assert main(["analyze", str(hallux_csv)]) == 0
    text = capsys.readouterr().out
    assert "pooled-feet IP1 ERO" in text and "pooled-hands IP1 ERO" in text


def _extreme_reads(method: Method) -> list[Read]:
    """Two readers, two patients, two visits; every area at its maximum or its minimum:
    per area and side the pairs (max, max), (max, min), (min, min), (min, max)."""
    top = {d.area: d.max for d in method.areas}
    low = {d.area: d.min for d in method.areas}
    plan = {
        ("R1", "P1", "W0"): top,
        ("R1", "P1", "W52"): top,
        ("R1", "P2", "W0"): low,
        ("R1", "P2", "W52"): low,
        ("R2", "P1", "W0"): top,
        ("R2", "P1", "W52"): low,
        ("R2", "P2", "W0"): low,
        ("R2", "P2", "W52"): top,
    }
    return [_read(method, key, scores) for key, scores in plan.items()]


@pytest.mark.parametrize("method_id", sorted(builtin_methods()))
def test_every_method_at_its_extremes_runs_and_pools_two_sides_of_one_joint(
    method_id: str,
) -> None:
    methods = dict(builtin_methods())
    method = methods[method_id]
    reads = _extreme_reads(method)
    options = AnalysisOptions(method=method_id)
    res = analyze(reads, methods, options)
    rows = _rows(res)

    # Per area and side: 4 pairs, half of them equal, kappa over the area's own range.
    for d in method.areas:
        row = rows[(d.region, d.joint, d.feature)]
        assert row["region_kind"] == REGION_KINDS[d.region]
        assert (row["n"], row["pct_exact"], row["estimable"]) == (4, 50.0, True)
        assert row["linear"] == pytest.approx(0.0)

    # Every pooled row pools exactly the two sides of one joint of one region kind.
    sides: dict[tuple[str, str, str], list[str]] = {}
    for d in method.areas:
        sides.setdefault((REGION_KINDS[d.region], d.joint, d.feature), []).append(d.region)
    pooled = [k for k in res["kappa"] if k["region"] in POOLED_REGION.values()]
    assert Counter((k["region_kind"], k["joint"], k["feature"]) for k in pooled) == Counter(
        key for key, regions in sides.items() if len(regions) > 1
    )
    for k in pooled:
        regions = sides[(k["region_kind"], k["joint"], k["feature"])]
        assert sorted(regions) == (["LH", "RH"] if k["region_kind"] == "hand" else ["LF", "RF"])
        assert k["region"] == POOLED_REGION[k["region_kind"]]
        parts = [rows[(r, k["joint"], k["feature"])] for r in regions]
        assert k["n"] == sum(p["n"] for p in parts) == 8
        assert k["pct_exact"] == 50.0 and k["linear"] == pytest.approx(0.0)

    # Calibration: a reader at the maximum against a reference at the minimum, and back.
    high, low = reads[0], reads[2]
    rows_fb = feedback(high, low, method)
    assert len(rows_fb) == len(method.areas)
    for f in rows_fb:
        d = method.area(f.area)
        assert f.difference == d.max - d.min
        assert f.verdict == ("within one" if d.max - d.min == 1 else "differs")
    summary = agreement([(high, low), (low, low), (high, high)], method)
    assert summary["icc_n"] == 3
    assert set(summary["by_region_kind"]) == {REGION_KINDS[d.region] for d in method.areas}
    for kind, by_feature in summary["by_region_kind"].items():
        for feature, f in by_feature.items():
            n_areas = sum(d.feature == feature and d.area.kind == kind for d in method.areas)
            assert f["n"] == 3 * n_areas
            assert f["pct_exact"] == round(100 * 2 / 3, 1)
    for feature, f in summary["features"].items():
        parts = [b[feature]["n"] for b in summary["by_region_kind"].values() if feature in b]
        assert f["n"] == sum(parts)

    # The agreement report runs on the same reads and calibration (JSON and HTML).
    calibration = {
        "reference": "REF",
        "readers": [{"reader": "R1", "signed": 3, "released": False, **summary}],
    }
    doc = agreement_document(reads, options, trial="T23", calibration=calibration)
    data = json.loads(to_json(doc))
    assert data["analysis"]["kappa"] == res["kappa"]
    table = data["tables"]["Kappa"]
    assert {r[2] for r in table["rows"]} == {d.region for d in method.areas} | {
        k["region"] for k in pooled
    }
    by_kind = data["tables"]["Calibration by region kind"]["rows"]
    assert len(by_kind) == sum(len(b) for b in summary["by_region_kind"].values())
    html = to_html(doc)
    assert "Per-area agreement" in html and "Calibration by region kind" in html


def test_calibration_tells_a_foot_erosion_from_a_hand_erosion() -> None:
    svh = get_method("svh")
    reads = hallux_reads()
    mine, ref = reads[0], reads[4]  # R1 and R2, P1 W0: RF IP1 7 against 8, the rest equal
    summary = agreement([(mine, ref)], svh)
    foot, hand = summary["by_region_kind"]["foot"]["ERO"], summary["by_region_kind"]["hand"]["ERO"]
    assert (foot["n"], foot["pct_exact"], foot["pct_within_one"]) == (
        12,
        round(100 * 11 / 12, 1),
        100.0,
    )
    assert (hand["n"], hand["pct_exact"]) == (32, 100.0)
    assert summary["features"]["ERO"]["n"] == 44
