"""Incomplete designs (docs/incomplete-designs.md): which readers and patients each statistic
uses when not every reader read every patient, checked by hand on spec §10's readers R1 and R2
with a third reader R3 who read two of the ten patients; and the demo the moment reader3 signs
one case: finite, labelled ICCs, the SDC of reader1 and reader2 on their 12 patients, and a
frozen SDC that can be set."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scorer.cli import main
from scorer.core.example import R1, R2, worked_example_reads
from scorer.core.methods import builtin_methods, get_method
from scorer.core.reads import AreaScore, Read
from scorer.core.readscsv import format_reads_csv
from scorer.reports.agreement_report import agreement_document
from scorer.reports.analysis import AnalysisOptions, analyze

# R3's changes on P01 and P02 (R1 has 0 and 3 there, R2 2 and 2).
R3 = (1, 3)


def _with_r3() -> list[Read]:
    """Spec §10's reads plus R3 on P01 and P02: R1's reads, but one grade more at P01 W52."""
    reads = worked_example_reads()
    method = get_method("svh")
    out = list(reads)
    for r in reads:
        if r.reader != "R1" or r.patient not in ("P01", "P02"):
            continue
        scores = dict(r.scores)
        if r.patient == "P01" and r.visit == "W52":
            area = next(
                d.area for d in method.areas if (scores[d.area].score or 0) < d.max and not d.sides
            )
            scores[area] = AreaScore(score=(scores[area].score or 0) + 1)
        out.append(replace(r, reader="R3", read_id=f"{r.read_id}-R3", scores=scores))
    return out


def _total(r: Read) -> float:
    return float(sum(s.score or 0 for s in r.scores.values()))


def _icc_by_hand(x: np.ndarray) -> dict[str, float]:
    """ICC(A,1), ICC(C,1) and ICC(1,1) of a complete n × k array from the sums of squares."""
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_total = ((x - grand) ** 2).sum()
    bms = ss_rows / (n - 1)
    jms = ss_cols / (k - 1)
    ems = (ss_total - ss_rows - ss_cols) / ((n - 1) * (k - 1))
    wms = (ss_total - ss_rows) / (n * (k - 1))
    return {
        "ICC(2,1)": (bms - ems) / (bms + (k - 1) * ems + k * (jms - ems) / n),
        "ICC(3,1)": (bms - ems) / (bms + (k - 1) * ems),
        "ICC(1,1)": (bms - wms) / (bms + (k - 1) * wms),
    }


@pytest.fixture(scope="module")
def partial() -> dict[str, Any]:
    return analyze(_with_r3(), dict(builtin_methods()), AnalysisOptions())


def test_the_changes_are_the_ones_computed_by_hand(partial: dict[str, Any]) -> None:
    rows = {p["patient"]: p for p in partial["change"]["patients"]}
    assert [rows[f"P{i + 1:02d}"]["readers"]["R1"] for i in range(10)] == list(R1)
    assert [rows[f"P{i + 1:02d}"]["readers"]["R2"] for i in range(10)] == list(R2)
    assert [rows[p]["readers"]["R3"] for p in ("P01", "P02")] == list(R3)
    assert all(rows[f"P{i:02d}"]["readers"]["R3"] is None for i in range(3, 11))
    # The reader mean is over the readers a patient has.
    assert rows["P01"]["mean"] == pytest.approx((0 + 2 + 1) / 3) and rows["P01"]["n_readers"] == 3
    assert rows["P05"]["mean"] == pytest.approx((14 + 12) / 2) and rows["P05"]["n_readers"] == 2


def test_the_sdc_is_spec_10s_from_the_block_of_r1_and_r2(partial: dict[str, Any]) -> None:
    sdc = partial["sdc"]
    assert sdc["readers"] == ["R1", "R2"] and sdc["n"] == 10 and sdc["n_readers"] == 2
    assert sdc["k"] == 2 and round(sdc["value"], 6) == 1.850791
    assert round(sdc["sd_diff"], 6) == 1.888562
    table = {(t["level"], t["k"]): t["value"] for t in sdc["table"]}
    assert round(table[(95, 1)], 6) == 2.617413
    assert partial["sdc_note"] is None
    assert any(
        n.startswith("SDC from the largest complete block: readers R1, R2 on their n = 10")
        and "R3 left out" in n
        for n in partial["notes"]
    )
    # Progression's reader-mean SDC uses the block's k.
    assert partial["progression"]["sdc_k_reader_mean"] == 2


def test_pairwise_sdcs_by_hand(partial: dict[str, Any]) -> None:
    pairs = {(p["reader_a"], p["reader_b"]): p for p in partial["sdc"]["pairwise"]}
    assert set(pairs) == {("R1", "R2"), ("R1", "R3"), ("R2", "R3")}
    assert pairs[("R1", "R2")]["n"] == 10 and pairs[("R1", "R2")]["sdc95"] == 1.850791
    # R1 − R3 = (0 − 1, 3 − 3) = (−1, 0): SD = √0.5; R2 − R3 = (2 − 1, 2 − 3) = (1, −1): SD = √2.
    for pair, sd in ((("R1", "R3"), math.sqrt(0.5)), (("R2", "R3"), math.sqrt(2.0))):
        row = pairs[pair]
        assert row["n"] == 2
        assert row["sd_diff"] == pytest.approx(sd, abs=1e-6)
        assert row["sdc95"] == pytest.approx(1.96 * sd / 2, abs=1e-6)
        assert row["sdc80"] == pytest.approx(1.2816 * sd / 2, abs=1e-6)
    assert pairs[("R1", "R3")]["sdc95"] == pytest.approx(0.692965, abs=1e-6)
    assert pairs[("R2", "R3")]["sdc95"] == pytest.approx(1.385929, abs=1e-6)


def test_all_reader_iccs_need_three_targets_and_say_so(partial: dict[str, Any]) -> None:
    icc = partial["icc"]
    assert icc["change"] is None and icc["change_n"] == 2
    assert icc["change_note"] == "ICC of change (all readers) not estimable: n = 2 targets, needs 3"
    assert icc["change_note"] in partial["notes"]
    for visit in ("W0", "W52"):
        assert icc["status_by_visit"][visit] is None
        assert icc["status_by_visit_notes"][visit] == (
            f"ICC of status at {visit} (all readers) not estimable: n = 2 targets, needs 3"
        )
    # Pooled over visits, all three readers share 4 (patient, visit) targets: estimable.
    reads = _with_r3()
    tot = {(r.patient, r.visit, r.reader): _total(r) for r in reads}
    x = np.array(
        [
            [tot[(p, v, rd)] for rd in ("R1", "R2", "R3")]
            for p in ("P01", "P02")
            for v in ("W0", "W52")
        ]
    )
    assert icc["status_n"] == 4 and icc["status_note"] is None
    for form, value in _icc_by_hand(x).items():
        assert icc["status"][form]["value"] == pytest.approx(value, abs=1e-9)
        assert icc["status"][form]["n"] == 4 and icc["status"][form]["k"] == 3


def test_the_status_iccs_name_the_targets_they_leave_out(partial: dict[str, Any]) -> None:
    """R3 read 2 of the 10 patients: the all-reader status ICCs use 4 of 20 (patient, visit)
    targets and 2 of 10 patients per visit, and the notes say so and who is short."""
    notes = partial["notes"]
    assert (
        "status ICC (all readers) uses 4 of 20 (patient, visit) targets: "
        "reader R3 has no total for the others"
    ) in notes
    for visit in ("W0", "W52"):
        assert (
            f"status ICC at {visit} (all readers) uses 2 of 10 patients: "
            "reader R3 has no total for the others"
        ) in notes
    # Every reader on every target: no such note.
    full = analyze(worked_example_reads(), dict(builtin_methods()), AnalysisOptions())
    assert not [n for n in full["notes"] if " uses " in n]


def test_one_reader_gives_the_reason_beside_every_null_icc() -> None:
    reads = [r for r in worked_example_reads() if r.reader == "R1"]
    res = analyze(reads, dict(builtin_methods()), AnalysisOptions())
    icc = res["icc"]
    why = "one reader only: no agreement statistics"
    assert icc["status"] is None and icc["status_note"] == why
    assert icc["status_by_visit"] == {"W0": None, "W52": None}
    assert icc["status_by_visit_notes"] == {"W0": why, "W52": why}
    assert icc["change"] is None and icc["change_note"] == why
    assert res["notes"].count(why) == 1
    one_visit = analyze(
        [r for r in reads if r.visit == "W0"], dict(builtin_methods()), AnalysisOptions()
    )
    assert one_visit["icc"]["status_note"] == why and one_visit["icc"]["change_note"] is None
    # The report gives the reason once beside the ICCs, and among the data-quality notes.
    doc = agreement_document(reads, AnalysisOptions(), trial="T")
    text = [b.text for s in doc.sections for b in s.blocks if hasattr(b, "text")]
    assert text.count(why) == 2


def test_pairwise_iccs_use_each_pairs_shared_targets(partial: dict[str, Any]) -> None:
    reads = _with_r3()
    tot = {(r.patient, r.visit, r.reader): _total(r) for r in reads}
    patients = sorted({r.patient for r in reads})
    rows = {
        (p["measure"], p["visit"], p["reader_a"], p["reader_b"]): p
        for p in partial["icc"]["pairwise"]
    }
    pairs = list(itertools.combinations(("R1", "R2", "R3"), 2))
    expected: set[tuple[str, str | None, str, str]] = {("status", None, *ab) for ab in pairs}
    expected |= {("status", v, *ab) for v in ("W0", "W52") for ab in pairs}
    expected |= {("change", None, *ab) for ab in pairs}
    assert set(rows) == expected
    for a, b in pairs:
        # Pooled status.
        shared = [
            (p, v) for p in patients for v in ("W0", "W52") if (p, v, a) in tot and (p, v, b) in tot
        ]
        x = np.array([[tot[(p, v, a)], tot[(p, v, b)]] for p, v in shared])
        row = rows[("status", None, a, b)]
        assert row["n"] == len(shared) == (20 if b != "R3" else 4)
        for form, value in _icc_by_hand(x).items():
            assert row["icc"][form]["value"] == pytest.approx(value, abs=1e-9)
        # Change.
        ch = {"R1": dict(enumerate(R1)), "R2": dict(enumerate(R2)), "R3": dict(enumerate(R3))}
        both = sorted(set(ch[a]) & set(ch[b]))
        row = rows[("change", None, a, b)]
        assert row["n"] == len(both)
        if len(both) >= 3:
            x = np.array([[ch[a][i], ch[b][i]] for i in both], dtype=float)
            for form, value in _icc_by_hand(x).items():
                assert row["icc"][form]["value"] == pytest.approx(value, abs=1e-9)
            assert row["note"] is None
        else:
            assert row["icc"] is None
            assert row["note"] == f"ICC of change ({a}–{b}) not estimable: n = 2 targets, needs 3"
    # R1 and R2 on spec §10's changes: spec's values.
    spec = rows[("change", None, "R1", "R2")]["icc"]
    assert round(spec["ICC(2,1)"]["value"], 6) == 0.947903
    assert round(spec["ICC(3,1)"]["value"], 6) == 0.961534
    assert round(spec["ICC(1,1)"]["value"], 6) == 0.947531
    # Per visit, R3's pairs have two targets: not estimable, with the note.
    for v in ("W0", "W52"):
        assert rows[("status", v, "R1", "R2")]["n"] == 10
        assert rows[("status", v, "R1", "R2")]["icc"]["ICC(2,1)"]["value"] is not None
        row = rows[("status", v, "R1", "R3")]
        assert row["n"] == 2 and row["icc"] is None and "n = 2 targets, needs 3" in row["note"]


def test_bland_altman_has_a_row_for_every_pair_and_measure_with_data(
    partial: dict[str, Any],
) -> None:
    rows = {(b["measure"], b["reader_a"], b["reader_b"]): b for b in partial["bland_altman"]}
    pairs = list(itertools.combinations(("R1", "R2", "R3"), 2))
    assert set(rows) == {(m, *ab) for m in ("status", "change") for ab in pairs}
    assert rows[("change", "R1", "R2")]["n"] == 10
    assert rows[("change", "R1", "R2")]["mean_diff"] == pytest.approx(-1.3)
    r13 = rows[("change", "R1", "R3")]
    assert r13["n"] == 2 and r13["mean_diff"] == pytest.approx(-0.5)
    assert r13["loa_low"] == pytest.approx(-0.5 - 1.96 * math.sqrt(0.5))
    assert r13["loa_high"] == pytest.approx(-0.5 + 1.96 * math.sqrt(0.5))
    assert rows[("status", "R1", "R3")]["n"] == 4 and rows[("status", "R1", "R2")]["n"] == 20


def test_cli_json_and_text_show_the_pairwise_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "partial.csv"
    path.write_text(format_reads_csv(_with_r3()), encoding="utf-8")
    assert main(["analyze", str(path), "--format", "json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["sdc"]["readers"] == ["R1", "R2"] and len(res["sdc"]["pairwise"]) == 3
    assert len(res["icc"]["pairwise"]) == 12  # 3 pairs × (pooled, W0, W52, change)
    assert main(["analyze", str(path)]) == 0
    out = capsys.readouterr().out
    for needle in (
        "Change ICC, all readers: not estimable: n = 2 targets, needs 3",
        "from readers R1, R2 on the n = 10 patients",
        "Pairwise SDC",
        "Pairwise ICC",
        "0.947903",
        "SDC95 = 1.850791",
    ):
        assert needle in out, needle


def test_the_agreement_report_shows_the_block_pairs_and_notes() -> None:
    doc = agreement_document(_with_r3(), AnalysisOptions(), trial="T23")
    tables = {t.name: t for t in doc.tables()}
    sdc = tables["SDC"]
    assert "readers R1, R2" in sdc.caption and "n = 10" in sdc.caption
    assert {tuple(r[:2]) for r in tables["Pairwise SDC"].rows} == {
        ("R1", "R2"),
        ("R1", "R3"),
        ("R2", "R3"),
    }
    pair = tables["Pairwise ICC"]
    change = {(r[2], r[3]): r for r in pair.rows if r[0] == "change"}
    assert change[("R1", "R2")][4] == 10 and round(change[("R1", "R2")][5], 6) == 0.947903
    assert change[("R1", "R3")][5] is None and change[("R1", "R3")][-1] == "n = 2 targets, needs 3"
    # Every all-reader ICC row is a number, labelled with the readers it uses.
    for row in tables["ICC"].rows:
        assert "all readers (R1, R2, R3)" in row[0] and math.isfinite(row[3])
    text = [b.text for s in doc.sections for b in s.blocks if hasattr(b, "text")]
    assert "ICC of change (all readers) not estimable: n = 2 targets, needs 3" in text
    ba = {(r[0], r[1], r[2]) for r in tables["Bland-Altman"].rows}
    assert ("change", "R1", "R3") in ba and ("change", "R1", "R2") in ba


def _constant_reads() -> list[Read]:
    """Three patients, two readers, two visits, every area 0: every rating the same."""
    method = get_method("svh")
    zero = {d.area: AreaScore(score=0) for d in method.areas}
    return [
        Read("Z", p, v, rd, "svh", read_id=f"{p}{v}{rd}", scores=dict(zero))
        for p in ("P1", "P2", "P3")
        for v in ("W0", "W52")
        for rd in ("A", "B")
    ]


def test_every_rating_the_same_is_not_estimable_with_its_note() -> None:
    res = analyze(_constant_reads(), dict(builtin_methods()), AnalysisOptions(kappa=False))
    icc = res["icc"]
    assert icc["status"] is None and icc["change"] is None
    assert icc["status_note"] == (
        "ICC of status pooled over visits (all readers) not estimable: every rating is the same"
    )
    assert (
        icc["change_note"] == "ICC of change (all readers) not estimable: every rating is the same"
    )
    pair = next(p for p in icc["pairwise"] if p["measure"] == "change")
    assert pair["icc"] is None and pair["note"].endswith("every rating is the same")
    # The SDC is still defined: no disagreement at all, SDC 0.
    assert res["sdc"]["value"] == 0.0


def test_targets_that_do_not_differ_give_null_iccs_and_say_why() -> None:
    """One non-progressing patient read by three readers at three visits: every visit's mean
    is the same (BMS 0) while the readers differ, so the average-measure ICCs divide by BMS and
    are undefined; the single-measure ones are negative, as their formulas give."""
    import numpy as np

    from scorer.reports.analysis import _icc_estimate

    matrix = np.array([[10.0, 12.0, 14.0], [10.0, 12.0, 14.0], [11.0, 12.0, 13.0]])
    table, note = _icc_estimate(matrix, 0.95, "status")
    assert table is not None and table["ICC(3,k)"]["value"] is None
    assert note == (
        "ICC of status: ICC(1,k), ICC(3,k) not estimable "
        "(the targets do not differ: every target's mean rating is the same)"
    )


def test_no_block_of_two_patients_means_no_sdc_and_says_why() -> None:
    reads = worked_example_reads()
    # Each reader pair shares one patient at most: R1 reads P01-P02, R2 P02-P03, R3 P03 and P01.
    keep = {"R1": {"P01", "P02"}, "R2": {"P02", "P03"}}
    out = [r for r in reads if r.patient in keep.get(r.reader, set())]
    out += [
        replace(r, reader="R3", read_id=f"{r.read_id}-3")
        for r in reads
        if r.reader == "R1" and r.patient in ("P03", "P01")
    ]
    res = analyze(out, dict(builtin_methods()), AnalysisOptions(kappa=False))
    assert res["sdc"] is None
    assert res["sdc_note"] == (
        "No SDC: no two readers have change scores of two or more patients in common"
    )
    assert res["sdc_note"] in res["notes"]
    assert not [b for b in res["bland_altman"] if b["measure"] == "change"]
    one = analyze(
        [r for r in reads if r.reader == "R1" or r.visit == "W0"],
        dict(builtin_methods()),
        AnalysisOptions(kappa=False),
    )
    assert one["sdc"] is None
    assert one["sdc_note"] == "No SDC: it needs change scores of two or more readers (R1 only)"


# ---------------------------------------------------------------- the demo, reader3 one case


@pytest.fixture(scope="module")
def demo_with_reader3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The full demo (12 patients, reader1 and reader2 signed) with reader3's first case
    scored from the ground truth and signed."""
    from scorer.demo import TRIAL, _reader_read, _truth, repo_samples_dir, run_demo
    from scorer.workspace import Workspace

    base = tmp_path_factory.mktemp("demo-reader3")
    samples = repo_samples_dir()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SCORER_DATA_DIR", str(base / "data"))
        env.setenv("SCORER_CONFIG", str(base / "no-site-config.toml"))
        env.delenv("SCORER_DB", raising=False)
        made = run_demo(str(base / "demo.sqlite"), samples=samples, say=lambda _t: None)
    passwords = made.passwords
    ws = Workspace.open(made.db)
    try:
        coord = ws.accounts.login("coord", passwords["coord"])
        real = {p.code: p.real_id for p in ws.trials.list_patients(coord, TRIAL)}
        planned = {row.code: row for row in ws.worklists.worklist(coord, TRIAL, "reader3")}
        truth = _truth(samples)
        s = ws.accounts.login("reader3", passwords["reader3"])
        # A case whose patient progresses: the worklist's order is randomised per run, and a
        # patient with the same truth at every visit gives targets that do not differ (BMS 0),
        # whose ICC is rightly not estimable.
        row = next(
            r
            for r in ws.worklists.worklist(s, TRIAL)
            if len(
                {
                    sum(truth[(real[planned[r.code].patient], v)].values())
                    for v in planned[r.code].visits
                }
            )
            > 1
        )
        case = ws.reading.open_case(s, row.code)
        patient = real[planned[row.code].patient]
        for letter, read_code in case.reads.items():
            visit = planned[row.code].visits["ABC".index(letter)]
            ws.reading.set_scores(
                s, read_code, _reader_read(truth[(patient, visit)], "reader3", patient, visit)
            )
            ws.reading.sign_read(
                s, read_code, passwords["reader3"], username=None if s.signed_once else "reader3"
            )
        ws.accounts.logout(s)
        yield {
            "ws": ws,
            "coord": coord,
            "trial": TRIAL,
            "patient": patient,
            "password": passwords["coord"],
        }
    finally:
        ws.close()


@pytest.mark.slow
def test_demo_with_reader3s_one_case_gives_finite_labelled_iccs_and_an_sdc(
    demo_with_reader3: dict[str, Any],
) -> None:
    ws, coord, trial = (
        demo_with_reader3["ws"],
        demo_with_reader3["coord"],
        demo_with_reader3["trial"],
    )
    doc = ws.exchange.agreement_report(coord, trial)
    res = doc.data["analysis"]
    assert res["readers"] == ["reader1", "reader2", "reader3"]
    tables = {t.name: t for t in doc.tables()}
    for row in tables["ICC"].rows:
        assert "all readers (reader1, reader2, reader3)" in row[0]
        assert isinstance(row[3], float) and math.isfinite(row[3]), row
    for row in tables["Pairwise ICC"].rows:
        assert row[5] is None or math.isfinite(row[5])
        assert row[5] is not None or row[-1], row  # not estimable says why
    change = {(r[2], r[3]): r for r in tables["Pairwise ICC"].rows if r[0] == "change"}
    assert change[("reader1", "reader2")][4] == 12
    assert math.isfinite(change[("reader1", "reader2")][5])
    # reader3's one patient: the all-reader change ICC is not estimable and says so.
    assert res["icc"]["change"] is None
    assert res["icc"]["change_note"] == (
        "ICC of change (all readers) not estimable: n = 1 target, needs 3"
    )
    sdc = res["sdc"]
    assert sdc["readers"] == ["reader1", "reader2"] and sdc["n"] == 12 and sdc["k"] == 2
    assert "readers reader1, reader2" in tables["SDC"].caption
    ba = {(r[0], r[1], r[2]) for r in tables["Bland-Altman"].rows}
    assert ("change", "reader1", "reader2") in ba and ("status", "reader1", "reader3") in ba
    # Freezing uses the same block and records it.
    value = ws.adjudication.freeze_sdc(
        coord,
        trial,
        "reader3 has begun; freeze from readers 1 and 2",
        demo_with_reader3["password"],
        username="coord",
    )
    assert value == round(sdc["value"], 6)
    assert ws.trials.trial_settings(coord, trial).protocol.frozen_sdc == value
    row = [r for r in ws.oversight.audit_trail(coord) if r.action == "trial.setting"][-1]
    new = json.loads(row.new)
    assert new["frozen_sdc"] == value
    assert new["basis"] == {"readers": ["reader1", "reader2"], "n": 12, "k": 2, "level": 95}


def test_the_xlsx_about_sheet_holds_numbers_as_numbers(tmp_path: Path) -> None:
    import openpyxl

    from scorer.reports.document import to_json, write

    doc = agreement_document(_with_r3(), AnalysisOptions(), trial="T23")
    write(doc, tmp_path / "agreement.xlsx")
    about = {
        row[0].value: row[1].value
        for row in openpyxl.load_workbook(tmp_path / "agreement.xlsx")["About"].iter_rows(min_row=2)
    }
    assert about["Patients"] == 10 and about["Trial"] == "T23"
    assert about["Readers"] == "R1, R2, R3"
    assert json.loads(to_json(doc))["facts"]["Patients"] == 10
    write(doc, tmp_path / "agreement.html")
    assert "<dt>Patients</dt><dd>10</dd>" in (tmp_path / "agreement.html").read_text("utf-8")
