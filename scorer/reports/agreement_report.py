"""The agreement report: what a statistician needs to trust the reading.

Built from the trial's reads (the same rows as its reads CSV) with :func:`scorer.reports.
analysis.analyze` — so its numbers are the ones `scorer analyze` prints for that CSV — plus
intra-reader agreement from re-reads and the calibration results: ICC tables (status per visit
and pooled, change) with confidence intervals, the SDC, Bland–Altman tables and plots per
reader pair, per-area kappa with % agreement, cumulative probability plots per reader, and the
data-quality notes. Every table and figure states its n.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

import numpy as np
from matplotlib.figure import Figure as MplFigure

from scorer.core.methods import Method, builtin_methods
from scorer.core.reads import Read
from scorer.reports.analysis import POOLED_REGION, AnalysisError, AnalysisOptions, analyze
from scorer.reports.document import Document, Figure, Paragraph, Section, Table
from scorer.reports.score_matrix import ScoreMatrix, status_totals

ICC_FORMS = ("ICC(2,1)", "ICC(3,1)", "ICC(1,1)", "ICC(2,k)", "ICC(3,k)", "ICC(1,k)")


def _icc_rows(label: str, table: Mapping[str, Any] | None) -> list[list[Any]]:
    if not table:
        return []
    rows = []
    for form in ICC_FORMS:
        r = table.get(form)
        if r is None:
            continue
        rows.append(
            [label, form, r["mcgraw_wong"], r["value"], r["ci_low"], r["ci_high"], r["n"], r["k"]]
        )
    return rows


def _status_by_target(
    reads: Sequence[Read], method: Method, options: AnalysisOptions
) -> dict[tuple[str, str, str], float]:
    """Status totals of the analysed reads by (patient, visit, reader); missing ones left out."""
    chosen = [
        r
        for r in reads
        if r.method == method.id
        and r.read_type in options.read_types
        and r.status in options.statuses
    ]
    totals = status_totals(ScoreMatrix.of(method, chosen), options.rules).total.tolist()
    return {
        (r.patient, r.visit, r.reader): t
        for r, t in zip(chosen, totals, strict=True)
        if not math.isnan(t)
    }


def _status_pairs(
    tot: Mapping[tuple[str, str, str], float], a: str, b: str
) -> list[tuple[float, float]]:
    """(reader a, reader b) status totals over the (patient, visit) targets both read."""
    keys = sorted({(p, v) for p, v, _ in tot})
    return [
        (tot[(p, v, a)], tot[(p, v, b)]) for p, v in keys if (p, v, a) in tot and (p, v, b) in tot
    ]


def _bland_altman_figure(name: str, caption: str, pairs: list[tuple[float, float]]) -> Figure:
    x = np.array([(p + q) / 2 for p, q in pairs], dtype=float)
    d = np.array([p - q for p, q in pairs], dtype=float)

    def draw(fig: MplFigure) -> None:
        ax = fig.add_subplot(1, 1, 1)
        ax.scatter(x, d, s=14, color="#3d5a80", alpha=0.8)
        if len(d) >= 2:
            mean, sd = float(d.mean()), float(d.std(ddof=1))
            for y, style in ((mean, "-"), (mean - 1.96 * sd, "--"), (mean + 1.96 * sd, "--")):
                ax.axhline(y, color="#c0392b", linestyle=style, linewidth=1)
        ax.axhline(0, color="#888", linewidth=0.6)
        ax.set_xlabel("mean of the two readers")
        ax.set_ylabel("difference (A − B)")
        ax.set_title(f"n = {len(d)}", fontsize=9)

    return Figure(name, caption, draw, {"n": len(d), "mean": x.tolist(), "difference": d.tolist()})


def _cumulative_figure(
    name: str, caption: str, curves: Mapping[str, Sequence[float]], sdc: float | None
) -> Figure:
    def draw(fig: MplFigure) -> None:
        ax = fig.add_subplot(1, 1, 1)
        for label, values in curves.items():
            v = np.sort(np.asarray(values, dtype=float))
            n = len(v)
            if not n:
                continue
            p = (np.arange(1, n + 1) - 0.5) / n * 100
            ax.step(v, p, where="mid", label=f"{label} (n = {n})")
        ax.axvline(0, color="#888", linewidth=0.8)
        if sdc is not None:
            ax.axvline(sdc, color="#c0392b", linestyle="--", linewidth=1, label=f"SDC {sdc:.2f}")
        ax.set_xlabel("change score")
        ax.set_ylabel("cumulative probability (%)")
        ax.set_ylim(0, 100)
        ax.legend(fontsize=7, loc="lower right")

    data = {"curves": {k: sorted(float(x) for x in v) for k, v in curves.items()}, "sdc": sdc}
    return Figure(name, caption, draw, data)


def intra_reader(reads: Sequence[Read], options: AnalysisOptions) -> list[dict[str, Any]]:
    """Per reader with re-reads: agreement of the first read and the re-read of the same
    patient and visit (status ICC, Bland–Altman, pooled kappa)."""
    out: list[dict[str, Any]] = []
    signed = [r for r in reads if r.status in options.statuses]
    rereads = [r for r in signed if r.read_type == "reread"]
    for reader in sorted({r.reader for r in rereads}):
        again = {(r.patient, r.visit, r.method): r for r in rereads if r.reader == reader}
        first = {
            (r.patient, r.visit, r.method): r
            for r in signed
            if r.reader == reader and r.read_type == "primary"
        }
        both = sorted(set(again) & set(first))
        if not both:
            continue
        pairs = [replace(first[k], reader=f"{reader} (first)") for k in both]
        pairs += [
            replace(again[k], reader=f"{reader} (re-read)", read_type="primary") for k in both
        ]
        try:
            result = analyze(
                pairs, dict(builtin_methods()), replace(options, read_types=("primary",))
            )
        except AnalysisError:
            continue
        icc = (result["icc"]["status"] or {}).get("ICC(2,1)")
        ba = next((b for b in result["bland_altman"] if b["measure"] == "status"), None)
        pooled = [k for k in result["kappa"] if k["region"] in POOLED_REGION.values() and k["n"]]
        exact = (
            sum(k["pct_exact"] * k["n"] for k in pooled) / sum(k["n"] for k in pooled)
            if pooled
            else None
        )
        out.append(
            {
                "reader": reader,
                "targets": len(both),
                "icc": icc,
                "bland_altman": ba,
                "pct_exact_areas": exact,
            }
        )
    return out


class Serialisable(Protocol):
    """A typed result that gives its JSON form (a service's calibration report)."""

    def to_dict(self) -> dict[str, Any]: ...


def agreement_document(
    reads: Sequence[Read],
    options: AnalysisOptions,
    *,
    trial: str,
    facts: Sequence[tuple[str, str]] = (),
    calibration: Mapping[str, Any] | Serialisable | None = None,
    dates: bool = True,
) -> Document:
    """The agreement report of ``reads`` (all of the trial's, as exported). ``dates=False``
    leaves the visits' dates out (a monitor before unblinding sees no dates); ``calibration``
    is the calibration report (its JSON form, or the typed report that gives it)."""
    if calibration is not None and not isinstance(calibration, Mapping):
        calibration = calibration.to_dict()
    methods = dict(builtin_methods())
    result = analyze(reads, methods, options)
    method = methods[result["method"]]
    intra = intra_reader(reads, options)
    sections = [
        _scores_section(result, dates),
        _icc_section(result),
        _sdc_section(result),
        _bland_altman_section(result, _status_by_target(reads, method, options)),
        _kappa_section(result),
        _intra_reader_section(intra),
    ]
    if calibration and calibration.get("readers"):
        sections.append(_calibration_section(calibration))
    cumulative = _cumulative_section(result)
    if cumulative is not None:
        sections.append(cumulative)
    notes = [result["rules"]["description"], *result["notes"]]
    sections.append(Section("Data quality", [Paragraph(n) for n in notes]))
    data = {"analysis": result, "intra_reader": intra, "calibration": calibration}
    return Document(
        f"Reader agreement — {trial}",
        _document_facts(result, trial, facts),
        sections,
        data if dates else _without_dates(data),
    )


def _scores_section(result: Mapping[str, Any], dates: bool) -> Section:
    """The "Scores" section: patients, readers and visits, and the status totals per visit and
    reader (the visits' dates left out when ``dates`` is false)."""
    rows = []
    for visit, v in result["totals"].items():
        for reader, s in v["readers"].items():
            row = [visit, v["date"], reader, s["n"], s.get("mean"), s.get("sd"), s.get("median")]
            rows.append(row if dates else [row[0], *row[2:]])
    return Section(
        "Scores",
        [
            Paragraph(
                f"{result['n_patients']} patients, readers {', '.join(result['readers'])}, "
                f"visits {', '.join(result['visits'])}; {result['method_name']}."
            ),
            Table(
                "Status totals",
                "Status totals per visit and reader (n per row)",
                ["Visit", "Date (earliest)", "Reader", "n", "Mean", "SD", "Median"]
                if dates
                else ["Visit", "Reader", "n", "Mean", "SD", "Median"],
                rows,
            ),
        ],
    )


def _icc_section(result: Mapping[str, Any]) -> Section:
    """The inter-reader ICC section: all readers on the targets every one of them read (status
    pooled and per visit, change), why a table is not estimable, then every pair."""
    icc = result["icc"]
    everyone = f"all readers ({', '.join(result['readers'])})"
    icc_rows = _icc_rows(f"status, pooled over visits, {everyone}", icc["status"])
    for visit, table in icc["status_by_visit"].items():
        icc_rows += _icc_rows(f"status, {visit}, {everyone}", table)
    icc_rows += _icc_rows(f"change, {everyone}", icc["change"])
    why_not = [
        n
        for n in (
            icc.get("status_note"),
            *(icc.get("status_by_visit_notes") or {}).values(),
            icc.get("change_note"),
        )
        if n
    ]
    blocks: list[Any] = [
        Paragraph(
            "Shrout & Fleiss forms with McGraw & Wong's names; 95 % intervals exact "
            "F-based for ICC(1,·) and ICC(3,·), McGraw & Wong's approximation for "
            "ICC(2,·). The pooled status ICC treats each patient's visits as "
            "independent targets. The all-reader ICCs use the targets every reader read; "
            "the pairwise ICCs each pair's shared targets. An ICC of fewer than 3 targets, "
            "or of ratings all the same, is not estimable (docs/incomplete-designs.md)."
        ),
        Table(
            "ICC",
            f"ICC of status (n = {icc['status_n']} patient-visit targets pooled) and change "
            f"(n = {icc['change_n']} patients), {everyone}; n per row",
            ["Measure", "Form", "McGraw & Wong", "ICC", "95% low", "95% high", "n", "k"],
            icc_rows,
        ),
        *(Paragraph(n) for n in dict.fromkeys(why_not)),  # one reader: the same reason
    ]
    pairwise = _pairwise_icc_table(icc.get("pairwise") or [])
    if pairwise is not None:
        blocks.append(pairwise)
    return Section("Inter-reader agreement (ICC)", blocks)


def _pairwise_icc_table(pairwise: Sequence[Mapping[str, Any]]) -> Table | None:
    """The ICC of every reader pair on the targets both read; None without a pair."""
    rows = []
    for p in pairwise:
        where = (p["visit"] or "pooled over visits") if p["measure"] == "status" else "—"
        table = p["icc"] or {}
        a1, c1, o1 = (table.get(f) or {} for f in ("ICC(2,1)", "ICC(3,1)", "ICC(1,1)"))
        rows.append(
            [
                p["measure"],
                where,
                p["reader_a"],
                p["reader_b"],
                p["n"],
                a1.get("value"),
                a1.get("ci_low"),
                a1.get("ci_high"),
                c1.get("value"),
                o1.get("value"),
                (p["note"] or "").split("not estimable: ", 1)[-1] if not table else p["note"],
            ]
        )
    if not rows:
        return None
    return Table(
        "Pairwise ICC",
        "ICC of every reader pair on the targets both read (n per row): ICC(A,1) with "
        "its 95 % interval, ICC(C,1) and ICC(1); a note where it is not estimable",
        [
            "Measure",
            "Visit",
            "Reader A",
            "Reader B",
            "n",
            "ICC(A,1)",
            "95% low",
            "95% high",
            "ICC(C,1)",
            "ICC(1)",
            "Note",
        ],
        rows,
    )


def _sdc_section(result: Mapping[str, Any]) -> Section:
    """The smallest detectable change: its table (or why there is none), the readers left
    out of its block, and every pair's SDC."""
    readers = result["readers"]
    sdc = result["sdc"]
    if not sdc:
        return Section(
            "Smallest detectable change", [Paragraph(result.get("sdc_note") or "No SDC.")]
        )
    names = ", ".join(sdc.get("readers") or readers)
    blocks: list[Any] = [
        Table(
            "SDC",
            f"Smallest detectable change from readers {names} (n = {sdc['n']} patients, "
            f"{sdc['n_readers']} readers; Bruynesteyn 2005)",
            ["Level", "Readers averaged (k)", "SDC", "n", "Readers"],
            [[t["level"], t["k"], t["value"], sdc["n"], names] for t in sdc["table"]],
        )
    ]
    if len(sdc.get("readers") or readers) < len(readers):
        blocks.append(
            Paragraph(
                f"Not every reader read every patient: the SDC uses the largest complete "
                f"block, readers {names} on the {sdc['n']} patients all of them read (most "
                "patients first, then most readers); the other readers are left out of it."
            )
        )
    if sdc.get("pairwise"):
        blocks.append(
            Table(
                "Pairwise SDC",
                "SDC of every reader pair on the patients both read (k = 2; n per row)",
                ["Reader A", "Reader B", "n", "SD of differences", "SDC95", "SDC80"],
                [
                    [p["reader_a"], p["reader_b"], p["n"], p["sd_diff"], p["sdc95"], p["sdc80"]]
                    for p in sdc["pairwise"]
                ],
            )
        )
    return Section("Smallest detectable change", blocks)


def _bland_altman_section(
    result: Mapping[str, Any], status_of: Mapping[tuple[str, str, str], float]
) -> Section:
    """The Bland–Altman table of every reader pair and measure, and each pair's plots of
    status (``status_of``: totals by patient, visit and reader) and of change."""
    blocks: list[Any] = [
        Table(
            "Bland-Altman",
            "Bland–Altman per reader pair: mean difference (A − B) and limits of agreement "
            "(mean ± 1.96 SD); n per row",
            [
                "Measure",
                "Reader A",
                "Reader B",
                "n",
                "Mean difference",
                "SD",
                "LoA low",
                "LoA high",
            ],
            [
                [
                    b["measure"],
                    b["reader_a"],
                    b["reader_b"],
                    b["n"],
                    b["mean_diff"],
                    b["sd_diff"],
                    b["loa_low"],
                    b["loa_high"],
                ]
                for b in result["bland_altman"]
            ],
        )
    ]
    change_patients = (result["change"] or {}).get("patients", [])
    for a, b in itertools.combinations(result["readers"], 2):
        pairs = _status_pairs(status_of, a, b)
        blocks.append(
            _bland_altman_figure(
                f"ba-status-{a}-{b}",
                f"Bland–Altman, status: {a} − {b} (n = {len(pairs)} patient-visit targets)",
                pairs,
            )
        )
        cpairs = [
            (float(p["readers"][a]), float(p["readers"][b]))
            for p in change_patients
            if p["readers"].get(a) is not None and p["readers"].get(b) is not None
        ]
        if cpairs:
            blocks.append(
                _bland_altman_figure(
                    f"ba-change-{a}-{b}",
                    f"Bland–Altman, change: {a} − {b} (n = {len(cpairs)} patients)",
                    cpairs,
                )
            )
    return Section("Bland–Altman", blocks)


def _kappa_section(result: Mapping[str, Any]) -> Section:
    """Per-area agreement: weighted kappa and % agreement per area and side, and pooled."""
    kappa_rows = [
        [
            k["reader_a"],
            k["reader_b"],
            k["region"],
            k["joint"],
            k["feature"],
            k["n"],
            k["linear"],
            k["quadratic"],
            k["pct_exact"],
            k["pct_within_one"],
        ]
        for k in result["kappa"]
    ]
    return Section(
        "Per-area agreement (weighted kappa)",
        [
            Paragraph(
                "Cohen's weighted kappa over the area's full grade range, per area and "
                "side and pooled over the two sides of one joint (pooled-hands, "
                "pooled-feet: the thumb's IP1 and the hallux's IP1 are different joints); "
                "'–' where expected agreement is 1 (not estimable)."
            ),
            Table(
                "Kappa",
                f"Weighted kappa and % agreement per area ({len(kappa_rows)} rows; n per row)",
                [
                    "Reader A",
                    "Reader B",
                    "Region",
                    "Joint",
                    "Feature",
                    "n",
                    "Linear",
                    "Quadratic",
                    "% exact",
                    "% within one",
                ],
                kappa_rows,
            ),
        ],
    )


def _intra_reader_section(intra: Sequence[Mapping[str, Any]]) -> Section:
    """Intra-reader agreement: each reader's first read against the re-read (or a line saying
    there are no signed re-reads yet)."""
    if not intra:
        return Section("Intra-reader agreement (re-reads)", [Paragraph("No signed re-reads yet.")])
    return Section(
        "Intra-reader agreement (re-reads)",
        [
            Table(
                "Intra-reader",
                "First read against the hidden re-read of the same patient and visit "
                "(n = targets per reader)",
                [
                    "Reader",
                    "n",
                    "Status ICC(A,1)",
                    "95% low",
                    "95% high",
                    "Mean diff",
                    "% exact areas",
                ],
                [
                    [
                        i["reader"],
                        i["targets"],
                        (i["icc"] or {}).get("value"),
                        (i["icc"] or {}).get("ci_low"),
                        (i["icc"] or {}).get("ci_high"),
                        (i["bland_altman"] or {}).get("mean_diff"),
                        i["pct_exact_areas"],
                    ]
                    for i in intra
                ],
            )
        ],
    )


def _calibration_section(calibration: Mapping[str, Any]) -> Section:
    """Calibration: each reader against the reference reads, overall and by region kind."""
    rows = []
    for r in calibration["readers"]:
        icc = r.get("icc") or {}
        feats = r.get("features", {})
        rows.append(
            [
                r["reader"],
                r["signed"],
                r["icc_n"],
                icc.get("value"),
                (feats.get("ERO") or {}).get("pct_exact"),
                (feats.get("ERO") or {}).get("pct_within_one"),
                (feats.get("JSN") or {}).get("pct_exact"),
                (feats.get("JSN") or {}).get("pct_within_one"),
                r["released"],
            ]
        )
    return Section(
        "Calibration",
        [
            Table(
                "Calibration",
                f"Readers against the reference reads of {calibration.get('reference')} "
                "(n = calibration targets per reader)",
                [
                    "Reader",
                    "Cases signed",
                    "n",
                    "ICC(A,1)",
                    "ERO % exact",
                    "ERO % within one",
                    "JSN % exact",
                    "JSN % within one",
                    "Released",
                ],
                rows,
            ),
            Table(
                "Calibration by region kind",
                "Areas graded as the reference, hands and feet apart (a foot's erosion "
                "is 0–10, a hand's 0–5; n = areas compared)",
                ["Reader", "Region kind", "Feature", "n", "% exact", "% within one"],
                [
                    [r["reader"], kind, code, f["n"], f["pct_exact"], f["pct_within_one"]]
                    for r in calibration["readers"]
                    for kind, by_feature in (r.get("by_region_kind") or {}).items()
                    for code, f in by_feature.items()
                ],
            ),
        ],
    )


def _cumulative_section(result: Mapping[str, Any]) -> Section | None:
    """The cumulative probability plot of change per reader and of the reader mean, the SDC
    drawn; None without a change score."""
    change_patients = (result["change"] or {}).get("patients", [])
    curves: dict[str, list[float]] = {}
    for reader in result["readers"]:
        vals = [
            float(p["readers"][reader])
            for p in change_patients
            if p["readers"].get(reader) is not None
        ]
        if vals:
            curves[reader] = vals
    means = [float(p["mean"]) for p in change_patients if p.get("mean") is not None]
    if means:
        curves["reader mean"] = means
    if not curves:
        return None
    return Section(
        "Cumulative probability of change",
        [
            _cumulative_figure(
                "cumulative-probability",
                "Change scores per reader, sorted, against cumulative probability "
                f"(plotting position (i − 0.5)/n; n = {len(means)} patients)",
                curves,
                result["sdc"]["value"] if result["sdc"] else None,
            )
        ],
    )


def _document_facts(
    result: Mapping[str, Any], trial: str, facts: Sequence[tuple[str, str]]
) -> list[tuple[str, str | int | float]]:
    """The facts at the report's top: trial, method, patients, readers, change and rules,
    then the caller's ``facts``."""
    return [
        ("Trial", trial),
        ("Method", f"{result['method_name']} ({result['method']})"),
        ("Patients", int(result["n_patients"])),
        ("Readers", ", ".join(result["readers"])),
        ("Change", f"{result['from']} to {result['to']}" if result["from"] else "one visit"),
        ("Rules", result["rules"]["description"]),
        *facts,
    ]


def _without_dates(value: Any) -> Any:
    """``value`` with every key naming a date dropped, at any depth."""
    if isinstance(value, Mapping):
        return {k: _without_dates(v) for k, v in value.items() if "date" not in str(k).lower()}
    if isinstance(value, list | tuple):
        return [_without_dates(v) for v in value]
    return value
