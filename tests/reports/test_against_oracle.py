"""`scorer analyze` against an independent oracle (tests/oracle), on generated whole trials.

Each generated trial (tests/oracle/strategies.py) is written as a reads CSV and analysed the way
the command line does it (``scorer.cli.main(["analyze", ...])`` in this process); the JSON must
agree with the oracle, which shares no code with :mod:`scorer`, to 1e-9 (relative and absolute)
on every number both compute, with n's, reader sets and rows equal. The agreement report of a
trial must build in every format it is written in.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings

from scorer.cli import main
from scorer.core.methods import builtin_methods
from scorer.core.readscsv import parse_reads_csv
from scorer.core.totals import MissingDataRules
from scorer.reports.agreement_report import agreement_document
from scorer.reports.analysis import AnalysisOptions, analyze
from scorer.reports.document import FORMATS, write
from tests.oracle.oracle import Rules, analyse, method_areas
from tests.oracle.strategies import HEADER, Trial, trials

TOLERANCE = 1e-9
FORMS = ("ICC(1,1)", "ICC(2,1)", "ICC(3,1)", "ICC(1,k)", "ICC(2,k)", "ICC(3,k)")
SUMMARY = ("mean", "sd", "median", "q1", "q3", "min", "max")


def close(where: str, got: Any, want: Any) -> None:
    """Equal n's, labels and missing values; numbers within 1e-9, relative and absolute."""
    if want is None or got is None or isinstance(want, str | bool | list):
        assert got == want, f"{where}: got {got!r}, oracle {want!r}"
        return
    if isinstance(want, int) and isinstance(got, int):
        assert got == want, f"{where}: got {got}, oracle {want}"
        return
    assert math.isclose(got, want, rel_tol=TOLERANCE, abs_tol=TOLERANCE), (
        f"{where}: got {got!r}, oracle {want!r}"
    )


def rounded(where: str, got: Any, want: Any) -> None:
    """A value the product's JSON gives to 6 decimals (per-patient change, progression, the
    plot, pairwise SDCs): a 6-decimal number within half a unit (+1e-9) of the oracle's exact
    value, i.e. its correct rounding (either neighbour only within 1e-9 of a half-way point)."""
    if want is None or got is None:
        assert got == want, f"{where}: got {got!r}, oracle {want!r}"
        return
    assert abs(got - round(got, 6)) <= 1e-12, f"{where}: {got!r} is not given to 6 decimals"
    assert abs(got - want) <= 0.5e-6 + TOLERANCE, f"{where}: got {got!r}, oracle {want!r}"


def same_keys(where: str, got: Mapping[Any, Any], want: Mapping[Any, Any]) -> None:
    assert set(got) == set(want), (
        f"{where}: rows only in the product {sorted(set(got) - set(want), key=str)}, "
        f"only in the oracle {sorted(set(want) - set(got), key=str)}"
    )


def compare_summary(
    where: str, got: Mapping[str, Any], want: Mapping[str, Any], of_rounded: bool = False
) -> None:
    """n exactly, the statistics to 1e-9; ``of_rounded``: the product summarises values it
    gives to 6 decimals, so each statistic is within 1e-6 of the exact values' one."""
    close(f"{where}.n", got["n"], want["n"])
    if want["n"]:
        for key in SUMMARY:
            if of_rounded and want[key] is not None and got[key] is not None:
                assert abs(got[key] - want[key]) <= 1e-6 + TOLERANCE, (
                    f"{where}.{key}: got {got[key]!r}, oracle {want[key]!r}"
                )
            else:
                close(f"{where}.{key}", got[key], want[key])


def compare_icc(where: str, got: Mapping[str, Any] | None, want: Mapping[str, Any] | None) -> None:
    """Six forms: estimates, n, k, F, df and p; confidence bounds where the oracle has them
    (every F ratio finite and positive)."""
    if want is None or got is None:
        assert got == want, f"{where}: got {got!r}, oracle {want!r}"
        return
    for form in FORMS:
        g, w = got[form], want[form]
        at = f"{where}.{form}"
        for key in ("value", "n", "k", "df1", "df2", "f_value", "p_value"):
            close(f"{at}.{key}", g[key], w[key])
        if w["ci"] is not None:
            close(f"{at}.ci_low", g["ci_low"], w["ci"][0])
            close(f"{at}.ci_high", g["ci_high"], w["ci"][1])


def compare_anova(where: str, got: Mapping[str, Any] | None, want: Any) -> None:
    if want is None or got is None:
        assert got == want, f"{where}: got {got!r}, oracle {want!r}"
        return
    for key in ("n", "k"):
        close(f"{where}.{key}", got[key], getattr(want, key))
    for key in ("bms", "jms", "ems", "wms"):
        close(f"{where}.{key}", got[key], float(getattr(want, key)))


def by(rows: Sequence[Mapping[str, Any]], *keys: str) -> dict[tuple[Any, ...], Mapping[str, Any]]:
    out = {tuple(r.get(k) for k in keys): r for r in rows}
    assert len(out) == len(rows), f"rows repeat a key {keys}"
    return out


def compare(got: Mapping[str, Any], want: Mapping[str, Any]) -> list[str]:
    """Hold the product's JSON to the oracle; returns the sections compared.

    Sections of docs/incomplete-designs.md (``icc.pairwise``, ``sdc.readers``,
    ``sdc.pairwise``) are compared whenever the product's JSON has them, and named in the
    returned list so a test can require them."""
    compared = ["method", "readers", "visits", "totals", "icc", "bland_altman", "kappa"]
    for key in ("method", "readers", "visits", "n_patients", "from", "to"):
        close(key, got[key], want[key])

    for v, wv in want["totals"].items():
        close(f"totals.{v}.date", got["totals"][v]["date"], wv["date"])
        same_keys(f"totals.{v}.readers", got["totals"][v]["readers"], wv["readers"])
        for rd, s in wv["readers"].items():
            compare_summary(f"totals.{v}.{rd}", got["totals"][v]["readers"][rd], s)

    gi, wi = got["icc"], want["icc"]
    compare_icc("icc.status", gi["status"], wi["status"])
    close("icc.status_n", gi["status_n"], wi["status_n"])
    same_keys("icc.status_by_visit", gi["status_by_visit"], wi["status_by_visit"])
    for v, table in wi["status_by_visit"].items():
        compare_icc(f"icc.status_by_visit.{v}", gi["status_by_visit"][v], table)
    compare_anova("icc.status_anova", gi["status_anova"], wi["status_anova"])
    compare_icc("icc.change", gi["change"], wi["change"])
    close("icc.change_n", gi["change_n"], wi["change_n"])
    compare_anova("icc.change_anova", gi["change_anova"], wi["change_anova"])
    if "pairwise" in gi:
        compared.append("icc.pairwise")
        keys = ("measure", "visit", "reader_a", "reader_b")
        gp, wp = by(gi["pairwise"], *keys), by(wi["pairwise"], *keys)
        same_keys("icc.pairwise", gp, wp)
        for key, w in wp.items():
            close(f"icc.pairwise{key}.n", gp[key]["n"], w["n"])
            compare_icc(f"icc.pairwise{key}", gp[key]["icc"], w["icc"])

    keys = ("measure", "reader_a", "reader_b")
    gb, wb = by(got["bland_altman"], *keys), by(want["bland_altman"], *keys)
    same_keys("bland_altman", gb, wb)
    for key, w in wb.items():
        for field in ("n", "mean_diff", "sd_diff", "loa_low", "loa_high"):
            close(f"bland_altman{key}.{field}", gb[key][field], w[field])

    keys = ("reader_a", "reader_b", "region", "joint", "feature")
    gk, wk = by(got["kappa"], *keys), by(want["kappa"], *keys)
    same_keys("kappa", gk, wk)
    for key, w in wk.items():
        g = gk[key]
        for field in ("n", "estimable", "region_kind", "linear", "quadratic"):
            close(f"kappa{key}.{field}", g[field], w[field])
        if w["n"]:
            for field in ("pct_exact", "pct_within_one", "unweighted"):
                close(f"kappa{key}.{field}", g[field], w[field])

    for section in ("change", "sdc", "progression", "cumulative_probability"):
        if want[section] is None or got[section] is None:
            assert got[section] == want[section], f"{section}: got {got[section]!r}, oracle None"
    if want["change"] is not None:
        compared += ["change", "progression", "cumulative_probability"]
        gc, wc = got["change"], want["change"]
        same_keys("change.readers", gc["readers"], wc["readers"])
        for rd, s in wc["readers"].items():
            compare_summary(f"change.readers.{rd}", gc["readers"][rd], s)
        compare_summary("change.reader_mean", gc["reader_mean"], wc["reader_mean"], True)
        assert [r["patient"] for r in gc["patients"]] == [r["patient"] for r in wc["patients"]]
        for g, w in zip(gc["patients"], wc["patients"], strict=True):
            at = f"change.patients.{w['patient']}"
            same_keys(f"{at}.readers", g["readers"], w["readers"])
            for rd, value in w["readers"].items():
                rounded(f"{at}.readers.{rd}", g["readers"][rd], value)
            close(f"{at}.n_readers", g["n_readers"], w["n_readers"])
            for field in ("mean", "annualised"):
                rounded(f"{at}.{field}", g[field], w[field])
        _compare_progression(got, want)
    if want["sdc"] is not None:
        compared.append("sdc")
        gs, ws = got["sdc"], want["sdc"]
        for field in ("n", "n_readers", "k", "sd_diff", "ems"):
            close(f"sdc.{field}", gs[field], ws[field])
        close("sdc.value", gs["value"], ws["exact"][(95, ws["k"])])
        for row in gs["table"]:
            close(f"sdc.table{row}", row["value"], ws["exact"][(row["level"], row["k"])])
        if "readers" in gs:
            compared.append("sdc.readers")
            close("sdc.readers", gs["readers"], ws["readers"])
        else:
            close("sdc.n_readers (all readers, no block)", gs["n_readers"], len(want["readers"]))
        if "pairwise" in gs:
            compared.append("sdc.pairwise")
            keys = ("reader_a", "reader_b")
            gp, wp = by(gs["pairwise"], *keys), by(ws["pairwise"], *keys)
            same_keys("sdc.pairwise", gp, wp)
            for key, w in wp.items():
                close(f"sdc.pairwise{key}.n", gp[key]["n"], w["n"])
                for field in ("sd_diff", "sdc95", "sdc80"):
                    rounded(f"sdc.pairwise{key}.{field}", gp[key][field], w[field])
    return compared


def _compare_progression(got: Mapping[str, Any], want: Mapping[str, Any]) -> None:
    gt, wt = got["progression"]["thresholds"], want["progression"]["thresholds"]
    assert len(gt) == len(wt), f"progression: {len(gt)} thresholds, oracle {len(wt)}"
    for i, (g, w) in enumerate(zip(gt, wt, strict=True)):
        at = f"progression[{i}] {g['threshold']}"
        for field in ("kind", "op", "n", "n_progressors"):
            close(f"{at}.{field}", g[field], w[field])
        rounded(f"{at}.cutoff", g["cutoff"], w["cutoff"])
        if w["n_progressors"] is not None:
            rounded(f"{at}.pct", g["pct"], w["pct"])
        if w.get("per_reader") is not None:
            same_keys(f"{at}.per_reader", g["per_reader"], w["per_reader"])
            for rd, pr in w["per_reader"].items():
                for field in ("n", "n_progressors"):
                    close(f"{at}.per_reader.{rd}.{field}", g["per_reader"][rd][field], pr[field])
    gc, wc = got["cumulative_probability"], want["cumulative_probability"]
    if wc is None or gc is None:
        assert gc == wc, f"cumulative_probability: got {gc!r}, oracle {wc!r}"
        return
    close("cumulative_probability.n", gc["n"], wc["n"])
    for field in ("change", "probability_pct"):
        assert len(gc[field]) == len(wc[field])
        for j, (a, b) in enumerate(zip(gc[field], wc[field], strict=True)):
            rounded(f"cumulative_probability.{field}[{j}]", a, b)
    rounded("cumulative_probability.sdc", gc["sdc"], wc["sdc"])


def analyze_cli(trial: Trial, folder: Path) -> dict[str, Any]:
    """`scorer analyze READS.csv --format json --out FILE` under the trial's rules."""
    reads = folder / "reads.csv"
    reads.write_text(trial.csv_text, encoding="utf-8", newline="")
    out = folder / "analysis.json"
    code = main(["analyze", str(reads), "--format", "json", "--out", str(out), *trial.rules.cli()])
    assert code == 0, "scorer analyze refused a valid trial"
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


def _options(rules: Rules) -> AnalysisOptions:
    """The options `scorer analyze` builds from the rules' command-line flags (cmd_analyze)."""
    return AnalysisOptions(
        rules=MissingDataRules(
            areas=rules.areas,  # type: ignore[arg-type]
            max_unused_share=float(rules.max_unused_percent) / 100.0,
            operated=rules.operated,  # type: ignore[arg-type]
            visits=rules.visits,  # type: ignore[arg-type]
        )
    )


def analyze_in_process(trial: Trial) -> dict[str, Any]:
    """What `scorer analyze --format json` prints, by the calls it makes (read the CSV's
    bytes, analyse, JSON), without the command line's parser and file: three times faster,
    so 500 trials fit in CI. :func:`analyze_cli` goes through ``main`` itself."""
    methods = dict(builtin_methods())
    reads = parse_reads_csv(trial.csv_text.encode("utf-8"), methods)
    result: dict[str, Any] = json.loads(json.dumps(analyze(reads, methods, _options(trial.rules))))
    return result


@settings(
    max_examples=500,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(trials())
def test_analyze_agrees_with_the_oracle(trial: Trial) -> None:
    compare(analyze_in_process(trial), analyse(trial.csv_text, trial.rules))


@settings(
    max_examples=10,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(trials())
def test_the_command_line_gives_the_same_json(trial: Trial) -> None:
    with tempfile.TemporaryDirectory() as folder:
        assert analyze_cli(trial, Path(folder)) == analyze_in_process(trial)


@settings(
    max_examples=20,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(trials(max_readers=3))  # the PDF of 5 readers' kappa tables takes seconds each
def test_agreement_report_builds_in_every_format(trial: Trial) -> None:
    reads = parse_reads_csv(trial.csv_text.encode("utf-8"), dict(builtin_methods()))
    doc = agreement_document(reads, _options(trial.rules), trial="ORACLE-TRIAL")
    with tempfile.TemporaryDirectory() as folder:
        for ext in FORMATS:
            path = write(doc, Path(folder) / f"agreement.{ext}")
            assert path.stat().st_size > 0, f"the {ext} report is empty"
            if ext == "json":  # the report's numbers are the oracle's too
                data = json.loads(path.read_text(encoding="utf-8"))
                compare(data["analysis"], analyse(trial.csv_text, trial.rules))


def test_a_mean_of_filled_in_changes_is_annualised_on_the_patients_visit_dates() -> None:
    """Found by the oracle: reader A read W0 and W24 (W52 filled in by LOCF), reader B only
    W52. The patient's W0 and W52 dates are known from the reads, so the mean change (A's
    alone) is annualised; `scorer analyze` used to take dates only from readers with both
    visits read, and left it out."""
    areas = method_areas("larsen1995")
    lines = [",".join(HEADER)]
    plan = [
        ("P1", "W0", "2024-01-01", "A", 1),
        ("P1", "W24", "2024-06-17", "A", 2),
        ("P1", "W52", "2024-12-30", "B", 3),
        ("P2", "W0", "2024-01-08", "A", 0),
        ("P2", "W52", "2025-01-06", "A", 4),
    ]
    for patient, visit, when, reader, score in plan:
        rid = f"{patient}-{visit}-{reader}"
        for a in areas:
            lines.append(
                f"T,{patient},{visit},{when},{reader},larsen1995,primary,{a.region},{a.joint},"
                f"{a.feature},{score if a.joint == 'MCP2' else 0},1,,{rid},signed"
            )
    trial = Trial("\n".join(lines) + "\n", Rules(visits="locf"), "larsen1995", len(lines) - 1)
    with tempfile.TemporaryDirectory() as folder:
        got = analyze_cli(trial, Path(folder))
    p1 = got["change"]["patients"][0]
    assert (p1["patient"], p1["readers"], p1["n_readers"]) == ("P1", {"A": 2.0, "B": None}, 1)
    assert p1["annualised"] == round(2.0 / (364 / 365.25), 6)  # MCP2 of both hands: 2 → 4
    compare(got, analyse(trial.csv_text, trial.rules))
