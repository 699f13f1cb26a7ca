"""The trial's endpoint per arm, from a locked reads export and the arm allocation.

Runs outside the reading database, so the reading stays blinded: the reads CSV (spec §9) with
the manifest `scorer export reads` writes beside it (lock signature, protocol settings, audit
head, the CSV's SHA-256), and an allocation CSV ``patient,arm``. An export that is not from a
locked trial, or whose bytes do not match its manifest, is refused.

Per patient the final change (first to last visit) follows the trial's rule (spec §6, §8):
the mean of the primary readers' changes, or — where an adjudication read exists — the reads
the final-score rule selects (mean of all, the two closest, or the adjudicator's). Per arm:
n, mean (SD), median (quartiles) of the change in mTSS, erosion and JSN; % non-progressors
(change at or below each threshold: the SDC at 95 % and 80 %, 0, 0.5, ...); the rate of rapid
progression on annualised change; and the cumulative probability plot by arm.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from scorer.core.adjudication import select_reads
from scorer.core.methods import builtin_methods
from scorer.core.progression import Threshold, parse_threshold
from scorer.core.reads import Read
from scorer.core.totals import MissingDataRules, annualised, change_totals
from scorer.core.visits import order_visits
from scorer.reports.agreement_report import _cumulative_figure
from scorer.reports.analysis import AnalysisError, AnalysisOptions, analyze
from scorer.reports.document import Document, Paragraph, Section, Table
from scorer.stats.distribution import summary

MEASURES = (("total", "mTSS"), ("ERO", "Erosion"), ("JSN", "JSN"))


class EndpointError(ValueError):
    """The inputs cannot give an endpoint (not locked, altered, a bad allocation file)."""


def check_export(csv_bytes: bytes, manifest: Mapping[str, Any]) -> None:
    """Refuse an export that is not a locked trial's, or that differs from its manifest."""
    if manifest.get("kind") != "scorer reads export":
        raise EndpointError("the manifest is not a scorer reads export manifest")
    if hashlib.sha256(csv_bytes).hexdigest() != manifest.get("sha256"):
        raise EndpointError(
            "the reads CSV does not match its manifest (SHA-256 differs): it was changed "
            "after export"
        )
    if not manifest.get("locked") or not manifest.get("lock"):
        raise EndpointError(
            f"the export of trial {manifest.get('trial')} is not from a locked reading: lock "
            "the trial (`scorer trial lock`) and export again"
        )


def read_allocation(data: bytes | str) -> dict[str, str]:
    """``patient,arm`` rows (a header first); every problem named with its line."""
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [c.strip().lower() for c in rows[0]][:2] != ["patient", "arm"]:
        raise EndpointError("the allocation file needs the header: patient,arm")
    out: dict[str, str] = {}
    problems = []
    for n, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            problems.append(f"line {n}: needs a patient and an arm")
            continue
        patient, arm = row[0].strip(), row[1].strip()
        if patient in out and out[patient] != arm:
            problems.append(f"line {n}: patient {patient} is in arms {out[patient]} and {arm}")
        out[patient] = arm
    if problems:
        raise EndpointError("the allocation file has problems:\n" + "\n".join(problems))
    if not out:
        raise EndpointError("the allocation file lists no patients")
    return out


@dataclass(frozen=True)
class PatientChange:
    """A patient's final change per measure, how it was made, and its annualised total."""

    patient: str
    change: Mapping[str, float]
    reads: tuple[str, ...]
    annualised: float | None


def _rules(protocol: Mapping[str, Any]) -> MissingDataRules:
    return MissingDataRules(
        areas=protocol.get("missing_areas", "paired_proportional"),
        max_unused_share=float(protocol.get("max_unused_share", 0.25)),
        operated=protocol.get("operated", "missing"),
        visits=protocol.get("missing_visits", "missing"),
    )


def patient_changes(
    reads: Sequence[Read], protocol: Mapping[str, Any]
) -> tuple[list[PatientChange], list[str], list[str]]:
    """Final changes per patient under the trial's rules; returns (changes, visits, notes)."""
    methods = builtin_methods()
    method = methods[(protocol.get("methods") or ["svh"])[0]]
    rules = _rules(protocol)
    rule = protocol.get("final_rule", "closest_two")
    signed = [
        r
        for r in reads
        if r.status == "signed"
        and r.method == method.id
        and r.read_type in ("primary", "adjudication")
    ]
    dates: dict[str, date | None] = {}
    for r in signed:
        if r.visit_date is not None:
            d = dates.get(r.visit)
            dates[r.visit] = r.visit_date if d is None else min(d, r.visit_date)
    visits = order_visits({r.visit for r in signed}, dates)
    notes: list[str] = []
    if len(visits) < 2:
        raise EndpointError("the export has fewer than two visits: no change to report")
    first, last = visits[0], visits[-1]
    table: dict[tuple[str, str], dict[str, Read]] = {}  # (patient, reader key) -> visit -> read
    for r in signed:
        key = f"adjudicator:{r.reader}" if r.read_type == "adjudication" else r.reader
        table.setdefault((r.patient, key), {})[r.visit] = r
    out: list[PatientChange] = []
    skipped = 0
    for patient in sorted({p for p, _ in table}):
        per: dict[str, dict[str, float]] = {}
        day0: date | None = None
        day1: date | None = None
        for (p, key), by_visit in table.items():
            if p != patient or first not in by_visit or last not in by_visit:
                continue
            ch = change_totals(by_visit[first], by_visit[last], method, rules)
            if ch.total is None:
                continue
            per[key] = {
                "total": float(ch.total),
                **{f: float(v) for f, v in ch.by_feature.items() if v is not None},
            }
            for r, which in ((by_visit[first], 0), (by_visit[last], 1)):
                if r.visit_date is not None:
                    if which == 0:
                        day0 = r.visit_date if day0 is None else min(day0, r.visit_date)
                    else:
                        day1 = r.visit_date if day1 is None else min(day1, r.visit_date)
        primaries = [k for k in per if not k.startswith("adjudicator:")]
        adjudicators = [k for k in per if k.startswith("adjudicator:")]
        if not primaries and not adjudicators:
            skipped += 1
            continue
        if adjudicators:
            chosen = select_reads({k: v["total"] for k, v in per.items()}, rule, adjudicators[0])
        else:
            chosen = tuple(sorted(primaries))
        change = {
            m: float(np.mean([per[k][m] for k in chosen if m in per[k]]))
            for m, _ in MEASURES
            if any(m in per[k] for k in chosen)
        }
        ann = None
        if day0 is not None and day1 is not None and (day1 - day0).days >= 30:
            ann = annualised(change["total"], day0, day1)
        out.append(PatientChange(patient, change, chosen, ann))
    if skipped:
        notes.append(f"{skipped} patient(s) without a change from {first} to {last} left out")
    return out, visits, notes


def _sdcs(reads: Sequence[Read], protocol: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """SDC at 95 % and 80 % for the reader mean from the export's primary reads; a frozen SDC
    in the protocol replaces the one at the trial's level."""
    sdc95 = sdc80 = None
    try:
        result = analyze(
            reads,
            dict(builtin_methods()),
            AnalysisOptions(
                method=(protocol.get("methods") or ["svh"])[0], rules=_rules(protocol), kappa=False
            ),
        )
        sdc = result.get("sdc")
        if sdc:
            k = sdc["k"]
            for t in sdc["table"]:
                if t["k"] == k:
                    if t["level"] == 95:
                        sdc95 = t["value"]
                    else:
                        sdc80 = t["value"]
    except AnalysisError:
        pass
    frozen = protocol.get("frozen_sdc")
    if frozen is not None:
        if int(protocol.get("sdc_level", 95)) == 95:
            sdc95 = float(frozen)
        else:
            sdc80 = float(frozen)
    return sdc95, sdc80


def endpoint_results(
    reads: Sequence[Read], manifest: Mapping[str, Any], arms: Mapping[str, str]
) -> dict[str, Any]:
    """The endpoint table as data (see the module docstring)."""
    protocol = manifest.get("protocol") or {}
    changes, visits, notes = patient_changes(reads, protocol)
    sdc95, sdc80 = _sdcs(reads, protocol)
    thresholds = [
        parse_threshold(t) for t in protocol.get("thresholds", ["sdc95", "sdc80", "0", "0.5"])
    ]
    rapid = parse_threshold(protocol.get("rapid_threshold", "rapid>=5"))
    unknown = sorted(c.patient for c in changes if c.patient not in arms)
    if unknown:
        notes.append(
            f"{len(unknown)} patient(s) in the reads are not in the allocation file and are left "
            f"out: {', '.join(unknown[:10])}{'…' if len(unknown) > 10 else ''}"
        )
    read = {c.patient for c in changes}
    unread = sorted(p for p in arms if p not in read)
    if unread:
        notes.append(f"{len(unread)} allocated patient(s) have no change in the export")
    by_arm: dict[str, list[PatientChange]] = {}
    for c in changes:
        if c.patient in arms:
            by_arm.setdefault(arms[c.patient], []).append(c)
    out_arms = []
    for arm in sorted(by_arm):
        group = by_arm[arm]
        entry: dict[str, Any] = {"arm": arm, "n": len(group)}
        for m, _ in MEASURES:
            vals = [c.change[m] for c in group if m in c.change]
            entry[m] = summary(np.array(vals, dtype=float)).to_dict()
        totals = [c.change["total"] for c in group]
        rows: list[dict[str, Any]] = []
        for t in thresholds:
            cutoff = t.resolve(sdc95, sdc80)
            if cutoff is None:
                rows.append({"threshold": t.label, "cutoff": None, "n": len(totals), "pct": None})
                continue
            non = sum(not t.exceeded(v, cutoff) for v in totals)
            rows.append(
                {
                    "threshold": t.label,
                    "cutoff": cutoff,
                    "n": len(totals),
                    "non_progressors": non,
                    "pct": 100.0 * non / len(totals),
                }
            )
        entry["non_progressors"] = rows
        ann = [c.annualised for c in group if c.annualised is not None]
        cutoff = rapid.resolve(sdc95, sdc80)
        fast = sum(rapid.exceeded(v, cutoff) for v in ann) if cutoff is not None else 0
        entry["rapid"] = {
            "threshold": f"annualised change {rapid.op} {cutoff:g}" if cutoff is not None else "",
            "n": len(ann),
            "rapid": fast,
            "pct": 100.0 * fast / len(ann) if ann else None,
        }
        entry["changes"] = sorted(totals)
        out_arms.append(entry)
    return {
        "trial": manifest.get("trial"),
        "visits": {"from": visits[0], "to": visits[-1]},
        "final_rule": protocol.get("final_rule", "closest_two"),
        "sdc95": sdc95,
        "sdc80": sdc80,
        "frozen_sdc": protocol.get("frozen_sdc"),
        "arms": out_arms,
        "patients": [
            {
                "patient": c.patient,
                "arm": arms.get(c.patient),
                **{f"change_{m.lower()}": c.change.get(m) for m, _ in MEASURES},
                "reads": list(c.reads),
                "annualised": c.annualised,
            }
            for c in changes
        ],
        "notes": notes,
    }


def endpoint_document(
    reads: Sequence[Read], manifest: Mapping[str, Any], arms: Mapping[str, str]
) -> Document:
    r = endpoint_results(reads, manifest, arms)
    lock = manifest.get("lock") or {}
    head = manifest.get("audit_head") or {}
    rows = []
    for a in r["arms"]:
        for m, name in MEASURES:
            st = a[m]
            rows.append(
                [
                    a["arm"],
                    name,
                    st.get("n"),
                    st.get("mean"),
                    st.get("sd"),
                    st.get("median"),
                    st.get("q1"),
                    st.get("q3"),
                ]
            )
    columns = ["Arm", "Measure", "n", "Mean", "SD", "Median", "Q1", "Q3"]
    prog_rows = []
    for a in r["arms"]:
        for t in a["non_progressors"]:
            prog_rows.append(
                [
                    a["arm"],
                    _non_progressor_label(t["threshold"]),
                    t["cutoff"],
                    t["n"],
                    t.get("non_progressors"),
                    t["pct"],
                ]
            )
        rp = a["rapid"]
        prog_rows.append(
            [a["arm"], f"rapid: {rp['threshold']}", None, rp["n"], rp["rapid"], rp["pct"]]
        )
    curves = {f"{a['arm']}": a["changes"] for a in r["arms"]}
    sdc = r["sdc95"] if r["sdc95"] is not None else r["sdc80"]
    sections = [
        Section(
            f"Change from {r['visits']['from']} to {r['visits']['to']}",
            [
                Paragraph(
                    "Final change per patient: the mean of the primary readers' changes, or, "
                    f"where the patient was adjudicated, the reads the rule '{r['final_rule']}' "
                    "selects."
                ),
                Table(
                    "Change by arm",
                    f"Change in mTSS, erosion and JSN by arm (n = {sum(a['n'] for a in r['arms'])} "
                    "patients; n per arm)",
                    columns,
                    rows,
                ),
            ],
        ),
        Section(
            "Progression",
            [
                Table(
                    "Non-progressors",
                    "Non-progressors (change at or below the threshold) and rapid progressors "
                    "by arm (n per row)",
                    ["Arm", "Non-progressor (or rapid progressor)", "Cutoff", "n", "Patients", "%"],
                    prog_rows,
                ),
                _cumulative_figure(
                    "cumulative-probability-by-arm",
                    "Cumulative probability of change in mTSS by arm "
                    f"(n = {sum(a['n'] for a in r['arms'])} patients)",
                    curves,
                    sdc,
                ),
            ],
        ),
        Section(
            "Patients",
            [
                Table(
                    "Patients",
                    f"Final change per patient (n = {len(r['patients'])})",
                    ["Patient", "Arm", "mTSS", "Erosion", "JSN", "Reads", "Annualised mTSS"],
                    [
                        [
                            p["patient"],
                            p["arm"],
                            p["change_total"],
                            p["change_ero"],
                            p["change_jsn"],
                            ", ".join(p["reads"]),
                            p["annualised"],
                        ]
                        for p in r["patients"]
                    ],
                )
            ],
        ),
        Section("Notes", [Paragraph(n) for n in r["notes"]] or [Paragraph("None.")]),
    ]
    facts = [
        ("Trial", str(r["trial"])),
        ("Locked", f"by {lock.get('by')} at {lock.get('at')} (signature {lock.get('signature')})"),
        ("Reads CSV SHA-256", str(manifest.get("sha256"))),
        ("Audit head", f"{head.get('rows')} rows, MAC {str(head.get('mac'))[:16]}…"),
        ("SDC", _sdc_text(r)),
    ]
    return Document(f"Endpoints — {r['trial']}", facts, sections, {"endpoints": r})


def _non_progressor_label(progression: str) -> str:
    """ "change > SDC95" (progression) as its complement, "change ≤ SDC95"."""
    if progression.startswith("change >= "):
        return "change < " + progression.removeprefix("change >= ")
    if progression.startswith("change > "):
        return "change ≤ " + progression.removeprefix("change > ")
    return f"not ({progression})"


def _sdc_text(r: Mapping[str, Any]) -> str:
    def f(v: float | None) -> str:
        return "–" if v is None else f"{v:.3f}"

    frozen = " (frozen at the trial's level)" if r["frozen_sdc"] is not None else ""
    return f"95 %: {f(r['sdc95'])}, 80 %: {f(r['sdc80'])}{frozen}; reader mean"


def load_manifest(data: bytes) -> dict[str, Any]:
    try:
        out = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EndpointError(f"the manifest is not valid JSON: {exc}") from exc
    if not isinstance(out, dict):
        raise EndpointError("the manifest is not a JSON object")
    return out


__all__ = [
    "EndpointError",
    "Threshold",
    "check_export",
    "endpoint_document",
    "endpoint_results",
    "load_manifest",
    "patient_changes",
    "read_allocation",
]
