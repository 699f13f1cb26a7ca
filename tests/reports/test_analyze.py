"""`scorer analyze` on the worked example of spec §10 and on constructed reads."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from scorer.cli import main
from scorer.core.example import R1, R2, worked_example_reads
from scorer.core.methods import Area, builtin_methods, get_method
from scorer.core.reads import AreaScore, Read
from scorer.core.readscsv import format_reads_csv, parse_reads_csv
from scorer.reports.analysis import AnalysisError, AnalysisOptions, analyze

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "worked-example.csv"

# Spec §10, estimates to six decimals and intervals to four.
SPEC = {
    "mean_d": -1.3,
    "sd_d": 1.888562,
    "sdc95_k2": 1.850791,
    "sdc95_k1": 2.617413,
    "sdc80_k2": 1.210190,
    "loa": (-5.0016, 2.4016),
    "bms": 90.938889,
    "jms": 8.45,
    "ems": 1.783333,
    "wms": 2.45,
    "ICC(2,1)": (0.947903, 0.754110, 0.987572),
    "ICC(3,1)": (0.961534, 0.853653, 0.990305),
    "ICC(1,1)": (0.947531, 0.815196, 0.986498),
    "ICC(2,k)": 0.9733,
    "ICC(3,k)": 0.9804,
}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_bundled_example_is_what_the_generator_makes() -> None:
    assert EXAMPLE.read_text(encoding="utf-8") == format_reads_csv(worked_example_reads())


def test_worked_example_changes_are_the_specs() -> None:
    reads = parse_reads_csv(EXAMPLE.read_bytes())
    m = get_method("svh")
    tot = {
        (r.patient, r.visit, r.reader): sum(s.score or 0 for s in r.scores.values()) for r in reads
    }
    patients = sorted({r.patient for r in reads})
    assert [tot[(p, "W52", "R1")] - tot[(p, "W0", "R1")] for p in patients] == list(R1)
    assert [tot[(p, "W52", "R2")] - tot[(p, "W0", "R2")] for p in patients] == list(R2)
    assert all(len(r.scores) == len(m.areas) for r in reads)


def test_json_reproduces_every_value_of_spec_section_10(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "analyze", str(EXAMPLE), "--format", "json")
    assert rc == 0, err
    res = json.loads(out)
    assert res["n_patients"] == 10 and res["readers"] == ["R1", "R2"]
    assert (res["from"], res["to"]) == ("W0", "W52")
    sdc = res["sdc"]
    assert sdc["level"] == 95 and sdc["k"] == 2
    assert round(sdc["value"], 6) == SPEC["sdc95_k2"]
    assert round(sdc["sd_diff"], 6) == SPEC["sd_d"]
    table = {(row["level"], row["k"]): row["value"] for row in sdc["table"]}
    assert round(table[(95, 1)], 6) == SPEC["sdc95_k1"]
    # The spec truncates 1.2101906 to 1.210190; the exact value is 1.96-free: 1.2816*SD/2.
    assert table[(80, 2)] == pytest.approx(SPEC["sdc80_k2"], abs=1e-6)
    assert table[(80, 2)] == pytest.approx(1.2816 * 1.8885620632 / 2, abs=1e-9)
    ba = next(b for b in res["bland_altman"] if b["measure"] == "change")
    assert round(ba["mean_diff"], 6) == SPEC["mean_d"]
    assert (round(ba["loa_low"], 4), round(ba["loa_high"], 4)) == SPEC["loa"]
    anova = res["icc"]["change_anova"]
    for key in ("bms", "jms", "ems", "wms"):
        assert round(anova[key], 6) == SPEC[key]
    icc = res["icc"]["change"]
    for form in ("ICC(2,1)", "ICC(3,1)", "ICC(1,1)"):
        value, lo, hi = SPEC[form]  # type: ignore[misc]
        assert round(icc[form]["value"], 6) == value
        assert (round(icc[form]["ci_low"], 4), round(icc[form]["ci_high"], 4)) == (
            round(lo, 4),
            round(hi, 4),
        )
    assert icc["ICC(2,1)"]["mcgraw_wong"] == "ICC(A,1)"
    assert round(icc["ICC(2,k)"]["value"], 4) == SPEC["ICC(2,k)"]
    assert round(icc["ICC(3,k)"]["value"], 4) == SPEC["ICC(3,k)"]
    assert res["icc"]["change_n"] == 10
    for key in ("status", "status_by_visit", "change"):
        assert key in res["icc"]
    assert res["kappa"] and res["progression"]["thresholds"]


def test_text_shows_the_same_figures(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "analyze", str(EXAMPLE))
    assert rc == 0
    change = out[out.index("Change ICC") :]
    for needle in (
        "BMS 90.938889",
        "JMS 8.450000",
        "EMS 1.783333",
        "WMS 2.450000",
        "0.947903   0.7541 to 0.9876",
        "0.961534   0.8537 to 0.9903",
        "0.947531   0.8152 to 0.9865",
        "SDC95 = 1.850791",
        "SD of differences 1.888562",
        "k = 1 (single reader): 2.617413",
        "-1.300000",
        "-5.0016 to 2.4016",
    ):
        assert needle in change, needle
    assert re.search(r"ICC\(2,k\)\s+ICC\(A,k\)\s+0\.9732", change)
    assert re.search(r"ICC\(3,k\)\s+ICC\(C,k\)\s+0\.9803", change)
    assert "SDC80 with k = 2 (reader mean): 1.21019" in change


def test_progression_counts_follow_the_thresholds(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(
        capsys,
        "analyze",
        str(EXAMPLE),
        "--format",
        "json",
        "--threshold",
        "sdc95",
        "--threshold",
        ">=5",
    )
    assert rc == 0
    prog = json.loads(out)["progression"]["thresholds"]
    mean = (np.array(R1) + np.array(R2)) / 2
    assert prog[0]["n_progressors"] == int((mean > 1.850791).sum())
    assert prog[1]["n_progressors"] == int((mean >= 5).sum())
    per = prog[0]["per_reader"]
    assert per["R1"]["n_progressors"] == int((np.array(R1) > 2.617413).sum())
    assert per["R2"]["n_progressors"] == int((np.array(R2) > 2.617413).sum())


def test_one_visit_gives_status_statistics_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reads = [r for r in worked_example_reads() if r.visit == "W0"]
    p = tmp_path / "w0.csv"
    p.write_text(format_reads_csv(reads), encoding="utf-8")
    rc, out, _ = run(capsys, "analyze", str(p), "--format", "json")
    assert rc == 0
    res = json.loads(out)
    assert res["sdc"] is None and res["change"] is None and res["progression"] is None
    assert res["icc"]["change"] is None
    assert res["icc"]["status"]["ICC(2,1)"]["n"] == 10
    assert all(b["measure"] == "status" for b in res["bland_altman"])
    rc, text, _ = run(capsys, "analyze", str(p))
    assert "SDC" not in text and "Change ICC" not in text and "Status ICC" in text


def test_malformed_csv_exits_nonzero_with_line_numbers_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").split("\n")
    cols = lines[5].split(",")
    cols[10] = "9"  # an erosion score out of range
    lines[5] = ",".join(cols)
    lines[9] = lines[9].replace(",1,,", ",yes,,")
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines), encoding="utf-8")
    out_file = tmp_path / "result.json"
    rc, out, err = run(capsys, "analyze", str(bad), "--format", "json", "--out", str(out_file))
    assert rc != 0
    assert "line 6, column score" in err and "line 10, column assessable" in err
    assert not out_file.exists() and out == ""


def test_unknown_visit_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, "analyze", str(EXAMPLE), "--from", "W24")
    assert rc != 0 and "W24" in err and "W0, W52" in err


def _reads_three_visits_three_readers(seed: int) -> list[Read]:
    """Constructed reads: 12 patients, W0/W24/W52, three readers with noise."""
    rng = np.random.default_rng(seed)
    m = get_method("svh")
    out: list[Read] = []
    for i in range(12):
        truth = {a.area: int(rng.integers(0, 2)) for a in m.areas}
        for vi, visit in enumerate(("W0", "W24", "W52")):
            for a in m.areas[: 3 * i + vi * 2]:
                truth[a.area] = min(a.max, truth[a.area] + 1)
            for reader in ("A", "B", "C"):
                scores = {}
                for a in m.areas:
                    noise = int(rng.integers(-1, 2)) if rng.random() < 0.1 else 0
                    scores[a.area] = AreaScore(
                        score=int(np.clip(truth[a.area] + noise, a.min, a.max))
                    )
                out.append(
                    Read(
                        "T",
                        f"P{i:02d}",
                        visit,
                        reader,
                        "svh",
                        read_id=f"{i}{visit}{reader}",
                        scores=scores,
                    )
                )
    return out


def test_three_readers_use_root_ems_and_change_between_chosen_visits() -> None:
    reads = _reads_three_visits_three_readers(7)
    res = analyze(reads, dict(builtin_methods()), AnalysisOptions(visit_from="W24", visit_to="W52"))
    # Independent recomputation of the change matrix and SDC = 1.96 sqrt(EMS) / sqrt(3).
    tot = {
        (r.patient, r.visit, r.reader): sum(s.score or 0 for s in r.scores.values()) for r in reads
    }
    patients = sorted({r.patient for r in reads})
    x = np.array(
        [[tot[(p, "W52", rd)] - tot[(p, "W24", rd)] for rd in "ABC"] for p in patients], dtype=float
    )
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((x - grand) ** 2).sum() - ss_rows - ss_cols
    ems = ss_err / ((n - 1) * (k - 1))
    assert res["sdc"]["k"] == 3 and res["sdc"]["n_readers"] == 3
    assert res["sdc"]["value"] == pytest.approx(1.96 * np.sqrt(ems) / np.sqrt(3))
    bms = ss_rows / (n - 1)
    jms = ss_cols / (k - 1)
    icc_a1 = (bms - ems) / (bms + (k - 1) * ems + k * (jms - ems) / n)
    assert res["icc"]["change"]["ICC(2,1)"]["value"] == pytest.approx(icc_a1)
    assert len([b for b in res["bland_altman"] if b["measure"] == "change"]) == 3
    assert set(res["icc"]["status_by_visit"]) == {"W0", "W24", "W52"}
    assert res["icc"]["status"]["ICC(2,1)"]["n"] == 36


def test_kappa_per_area_side_and_pooled() -> None:
    reads = [r for r in worked_example_reads() if r.visit == "W0"]
    res = analyze(reads, dict(builtin_methods()), AnalysisOptions())
    entries = {(k["region"], k["joint"], k["feature"]): k for k in res["kappa"]}
    assert ("LH", "MCP2", "ERO") in entries and ("RH", "MCP2", "ERO") in entries
    pooled = entries[("pooled-hands", "MCP2", "ERO")]
    assert pooled["region_kind"] == entries[("LH", "MCP2", "ERO")]["region_kind"] == "hand"
    assert pooled["n"] == entries[("LH", "MCP2", "ERO")]["n"] + entries[("RH", "MCP2", "ERO")]["n"]
    # All readers give 0 to an area -> not estimable, never 0 or 1.
    zero = [
        replace(r, scores={**r.scores, Area("LH", "ULN", "ERO"): AreaScore(score=0)}) for r in reads
    ]
    res = analyze(zero, dict(builtin_methods()), AnalysisOptions())
    e = next(
        k for k in res["kappa"] if (k["region"], k["joint"], k["feature"]) == ("LH", "ULN", "ERO")
    )
    assert e["estimable"] is False and e["linear"] is None and e["pct_exact"] == 100.0


def test_no_reads_and_duplicate_reads_are_explained() -> None:
    with pytest.raises(AnalysisError, match="no reads"):
        analyze([], dict(builtin_methods()), AnalysisOptions())
    reads = worked_example_reads()
    dup = [*reads, replace(reads[0], read_id="another")]
    with pytest.raises(AnalysisError, match="two primary reads of patient P01"):
        analyze(dup, dict(builtin_methods()), AnalysisOptions())


def test_missing_visit_rules_fill_a_readers_missing_later_visit() -> None:
    """Reader B has no W52 read of one patient: LOCF uses W24, linear extends W0 -> W24."""
    reads = _reads_three_visits_three_readers(3)
    dropped = [
        r for r in reads if not (r.patient == "P05" and r.reader == "B" and r.visit == "W52")
    ]
    dated = []
    from datetime import date, timedelta

    for r in dropped:
        days = {"W0": 0, "W24": 168, "W52": 364}[r.visit]
        dated.append(replace(r, visit_date=date(2024, 1, 1) + timedelta(days=days)))
    methods = dict(builtin_methods())
    tot = {
        (r.patient, r.visit, r.reader): sum(s.score or 0 for s in r.scores.values()) for r in dated
    }
    res = analyze(dated, methods, AnalysisOptions())
    row = next(x for x in res["change"]["patients"] if x["patient"] == "P05")
    assert row["readers"]["B"] is None and res["icc"]["change_n"] == 11
    from scorer.core.totals import MissingDataRules

    locf = analyze(dated, methods, AnalysisOptions(rules=MissingDataRules(visits="locf")))
    row = next(x for x in locf["change"]["patients"] if x["patient"] == "P05")
    assert row["readers"]["B"] == tot[("P05", "W24", "B")] - tot[("P05", "W0", "B")]
    assert locf["icc"]["change_n"] == 12
    assert any("last observation carried forward" in n for n in locf["notes"])
    lin = analyze(dated, methods, AnalysisOptions(rules=MissingDataRules(visits="linear")))
    row = next(x for x in lin["change"]["patients"] if x["patient"] == "P05")
    slope = (tot[("P05", "W24", "B")] - tot[("P05", "W0", "B")]) / 168
    assert row["readers"]["B"] == pytest.approx(slope * 364, abs=1e-6)
