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
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from typing import Any

import numpy as np

from scorer.core.adjudication import select_reads
from scorer.core.methods import Method, builtin_methods
from scorer.core.progression import Threshold, parse_threshold
from scorer.core.reads import Read
from scorer.core.totals import (
    MissingDataRules,
    Totals,
    annualised,
    change_totals,
    fill_missing_visit,
    status_totals,
)
from scorer.core.visits import visit_order
from scorer.reports.agreement_report import _cumulative_figure
from scorer.reports.analysis import AnalysisError, AnalysisOptions, analyze
from scorer.reports.document import Document, Paragraph, Section, Table
from scorer.stats.distribution import summary
from scorer.stats.endpoint_models import (
    AncovaResult,
    ModelError,
    ancova,
    compare_proportions,
    rank_ancova,
)

MEASURES = (("total", "mTSS"), ("ERO", "Erosion"), ("JSN", "JSN"), ("LAR", "Larsen"))


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


def _parse_allocation(data: bytes | str) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """``patient,arm[,factor...]`` rows (a header first): the arms, and each stratification
    factor's level per patient; every problem named with its line."""
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [c.strip().lower() for c in rows[0]][:2] != ["patient", "arm"]:
        raise EndpointError("the allocation file needs the header: patient,arm")
    factors = [c.strip() for c in rows[0][2:]]
    if any(not f for f in factors) or len(set(factors)) != len(factors):
        raise EndpointError(
            "the allocation file's extra columns (stratification factors) need distinct names"
        )
    out: dict[str, str] = {}
    first: dict[str, int] = {}  # patient -> line
    strata: dict[str, dict[str, str]] = {f: {} for f in factors}
    problems = []
    for n, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            problems.append(f"line {n}: needs a patient and an arm")
            continue
        patient, arm = row[0].strip(), row[1].strip()
        if patient in out:  # listed twice: refused even in the same arm
            problems.append(
                f"line {n}: patient {patient} is in arms {out[patient]} and {arm} "
                f"(first on line {first[patient]})"
                if out[patient] != arm
                else f"line {n}: patient {patient} is listed again (first on line {first[patient]})"
            )
            continue
        out[patient] = arm
        first[patient] = n
        for k, f in enumerate(factors):
            level = row[2 + k].strip() if len(row) > 2 + k else ""
            if not level:
                problems.append(f"line {n}: patient {patient} has no {f}")
            strata[f][patient] = level
    if problems:
        raise EndpointError("the allocation file has problems:\n" + "\n".join(problems))
    if not out:
        raise EndpointError("the allocation file lists no patients")
    return out, strata


def read_allocation(data: bytes | str) -> dict[str, str]:
    """``patient,arm`` rows (a header first); every problem named with its line."""
    return _parse_allocation(data)[0]


def read_strata(data: bytes | str) -> dict[str, dict[str, str]]:
    """The allocation file's stratification factors (its columns after ``arm``, e.g. region):
    factor -> patient -> level; empty when it has none."""
    return _parse_allocation(data)[1]


@dataclass(frozen=True)
class PatientChange:
    """A patient's final change per measure, how it was made, and its annualised total;
    the baseline (the chosen readers' mean at the earlier visit) per measure, and whether a
    missing later visit was filled under the missing-visit rule."""

    patient: str
    change: Mapping[str, float]
    reads: tuple[str, ...]
    annualised: float | None
    baseline: Mapping[str, float] = field(default_factory=dict)
    filled: bool = False


def _rules(protocol: Mapping[str, Any]) -> MissingDataRules:
    return MissingDataRules(
        areas=protocol.get("missing_areas", "paired_proportional"),
        max_unused_share=float(protocol.get("max_unused_share", 0.25)),
        operated=protocol.get("operated", "missing"),
        visits=protocol.get("missing_visits", "missing"),
    )


def _values(t: Totals, key: str | None) -> dict[str, float]:
    """A read's (or a change's) totals as measure -> value: the total (under ``key`` when
    given, e.g. "LAR" for Larsen) and, without a key, each feature."""
    if t.total is None:
        return {}
    if key is not None:
        return {key: float(t.total)}
    return {
        "total": float(t.total),
        **{f: float(v) for f, v in t.by_feature.items() if v is not None},
    }


def _planned_days(protocol: Mapping[str, Any], v_from: str, v_to: str) -> float | None:
    """Days between two visits as the protocol plans them (weeks × 7), if it says."""
    weeks = {
        str(v.get("label")): v.get("week")
        for v in protocol.get("visits") or []
        if isinstance(v, Mapping)
    }
    w0, w1 = weeks.get(v_from), weeks.get(v_to)
    if w0 is None or w1 is None:
        return None
    return 7.0 * (float(w1) - float(w0))


def _filled_values(
    by_visit: Mapping[str, Read],
    method: Method,
    rules: MissingDataRules,
    visits: Sequence[str],
    v_from: str,
    v_to: str,
    target_days: float | None,
    key: str | None,
) -> dict[str, float]:
    """A reader's change to a visit they have no read of, per measure, under the missing-visit
    rule (spec §6): the totals of the visits read before it carried forward (LOCF) or extended
    on actual dates through the two nearest (linear), minus the earlier visit's totals."""
    start = by_visit[v_from]
    if start.visit_date is None or target_days is None:
        return {}
    base = _values(status_totals(start, method, rules), key)
    series: list[tuple[float, dict[str, float]]] = []
    for v in visits[visits.index(v_from) : visits.index(v_to)]:
        r = by_visit.get(v)
        if r is None or r.visit_date is None:
            continue
        series.append(
            (
                float((r.visit_date - start.visit_date).days),
                _values(status_totals(r, method, rules), key),
            )
        )
    out = {}
    for m, b in base.items():
        value = fill_missing_visit(
            [(d, vals.get(m)) for d, vals in series], target_days, rules.visits
        )
        if value is not None:
            out[m] = value - b
    return out if "total" in out or (key is not None and key in out) else {}


def _method_changes(
    reads: Sequence[Read],
    method: Method,
    protocol: Mapping[str, Any],
    v_from: str,
    v_to: str,
    visits: Sequence[str],
    key: str | None = None,
) -> tuple[list[PatientChange], list[str]]:
    """Final changes of one method's reads from ``v_from`` to ``v_to``; (changes, the patients
    without one)."""
    rules = _rules(protocol)
    rule = protocol.get("final_rule", "closest_two")
    table: dict[tuple[str, str], dict[str, Read]] = {}  # (patient, reader key) -> visit -> read
    for r in reads:
        k = f"adjudicator:{r.reader}" if r.read_type == "adjudication" else r.reader
        table.setdefault((r.patient, k), {})[r.visit] = r
    planned = _planned_days(protocol, v_from, v_to)
    if planned is None:  # else the median interval of the patients read at both visits
        gaps = [
            (bv[v_to].visit_date - bv[v_from].visit_date).days  # type: ignore[operator]
            for bv in table.values()
            if v_from in bv and v_to in bv and bv[v_from].visit_date and bv[v_to].visit_date
        ]
        planned = float(np.median(gaps)) if gaps else None
    total = "total" if key is None else key
    out: list[PatientChange] = []
    skipped: list[str] = []
    for patient in sorted({p for p, _ in table}):
        per: dict[str, dict[str, float]] = {}
        base: dict[str, dict[str, float]] = {}
        filled: set[str] = set()
        day0: date | None = None
        day1: date | None = None
        for (p, k), by_visit in table.items():
            if p != patient or v_from not in by_visit:
                continue
            if v_to in by_visit:
                values = _values(
                    change_totals(by_visit[v_from], by_visit[v_to], method, rules), key
                )
            elif rules.visits != "missing":
                values = _filled_values(by_visit, method, rules, visits, v_from, v_to, planned, key)
                filled.add(k)
            else:
                continue
            if total not in values:
                continue
            per[k] = values
            base[k] = _values(status_totals(by_visit[v_from], method, rules), key)
            for v, which in ((v_from, 0), (v_to, 1)):
                d = by_visit[v].visit_date if v in by_visit else None
                if d is not None:
                    if which == 0:
                        day0 = d if day0 is None else min(day0, d)
                    else:
                        day1 = d if day1 is None else min(day1, d)
        primaries = [k for k in per if not k.startswith("adjudicator:")]
        adjudicators = [k for k in per if k.startswith("adjudicator:")]
        if not primaries and not adjudicators:
            skipped.append(patient)
            continue
        if adjudicators:
            chosen = select_reads({k: v[total] for k, v in per.items()}, rule, adjudicators[0])
        else:
            chosen = tuple(sorted(primaries))
        measures = [total] if key is not None else [m for m, _ in MEASURES if m != "LAR"]
        change = {
            m: float(np.mean([per[k][m] for k in chosen if m in per[k]]))
            for m in measures
            if any(m in per[k] for k in chosen)
        }
        baseline = {
            m: float(np.mean([base[k][m] for k in chosen if m in base[k]]))
            for m in measures
            if any(m in base[k] for k in chosen)
        }
        ann = None
        if day0 is not None and day1 is not None and (day1 - day0).days >= 30:
            ann = annualised(change[total], day0, day1)
        out.append(
            PatientChange(patient, change, chosen, ann, baseline, any(k in filled for k in chosen))
        )
    return out, skipped


def patient_changes(
    reads: Sequence[Read],
    protocol: Mapping[str, Any],
    visit_from: str | None = None,
    visit_to: str | None = None,
) -> tuple[list[PatientChange], list[str], list[str]]:
    """Final changes per patient under the trial's rules (the missing-visit rule included),
    from ``visit_from`` (default the first) to ``visit_to`` (default the last); with Larsen
    reads beside the method's, their change too (measure "LAR"). Returns (changes, visits,
    notes)."""
    out, visits, notes, skipped = _patient_changes(reads, protocol, visit_from, visit_to)
    if skipped:
        notes.append(
            f"{len(skipped)} patient(s) without a change from {visits[0]} to {visits[-1]} left out"
        )
    return out, visits, notes


def _patient_changes(
    reads: Sequence[Read],
    protocol: Mapping[str, Any],
    visit_from: str | None = None,
    visit_to: str | None = None,
) -> tuple[list[PatientChange], list[str], list[str], list[str]]:
    """:func:`patient_changes`, and the patients of the export without a change, unnoted."""
    methods = builtin_methods()
    method = methods[(protocol.get("methods") or ["svh"])[0]]
    signed = [
        r for r in reads if r.status == "signed" and r.read_type in ("primary", "adjudication")
    ]
    # By the median over patients of their visit dates: one mis-dated visit cannot reorder.
    order = visit_order((r.patient, r.visit, r.visit_date) for r in signed if r.method == method.id)
    visits = order.visits
    notes: list[str] = list(order.notes)
    if len(visits) < 2:
        raise EndpointError("the export has fewer than two visits: no change to report")
    first = visit_from or visits[0]
    last = visit_to or visits[-1]
    for v in (first, last):
        if v not in visits:
            raise EndpointError(f"no visit {v} in the export (visits: {', '.join(visits)})")
    if visits.index(first) >= visits.index(last):
        raise EndpointError(f"visit {first} is not before visit {last}")
    out, skipped = _method_changes(
        [r for r in signed if r.method == method.id], method, protocol, first, last, visits
    )
    larsen = [r for r in signed if r.method == "larsen1995"]
    if method.id != "larsen1995" and larsen:
        lar, _ = _method_changes(
            larsen, methods["larsen1995"], protocol, first, last, visits, "LAR"
        )
        by_patient = {c.patient: c for c in lar}
        out = [
            replace(
                c,
                change={**c.change, **by_patient[c.patient].change},
                baseline={**c.baseline, **by_patient[c.patient].baseline},
            )
            if c.patient in by_patient
            else c
            for c in out
        ]
    return out, visits[visits.index(first) : visits.index(last) + 1], notes, skipped


def _sdcs(
    reads: Sequence[Read],
    protocol: Mapping[str, Any],
    visit_from: str | None = None,
    visit_to: str | None = None,
) -> tuple[float | None, float | None]:
    """SDC at 95 % and 80 % for the reader mean from the export's primary reads (change
    between the same visits); a frozen SDC in the protocol replaces the one at the trial's
    level."""
    sdc95 = sdc80 = None
    try:
        result = analyze(
            reads,
            dict(builtin_methods()),
            AnalysisOptions(
                method=(protocol.get("methods") or ["svh"])[0],
                visit_from=visit_from,
                visit_to=visit_to,
                rules=_rules(protocol),
                kappa=False,
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


def _control_arm(arms: Sequence[str], control: str | None) -> tuple[str, str]:
    """The control arm and how it was chosen."""
    if control is not None:
        if control not in arms:
            raise EndpointError(
                f"--control {control}: no such arm with patients (arms: {', '.join(arms)})"
            )
        return control, "named with --control"
    for a in arms:
        if a.lower() in ("placebo", "control"):
            return a, "not named with --control: the arm called placebo or control"
    return arms[0], "not named with --control: the first arm by name"


def _visit_rule_text(rule: str) -> str:
    return {
        "missing": "a missing visit is left missing (the patient is left out)",
        "locf": "a missing later visit is filled by the last observation carried forward",
        "linear": "a missing later visit is filled by linear extrapolation, on actual dates, "
        "from the patient's two nearest earlier visits",
    }[rule]


def _model_dict(res: AncovaResult) -> dict[str, Any]:
    return {
        "formula": res.formula,
        "n": res.n,
        "adjustment": res.adjustment,
        "residual_df": res.residual_df,
        "residual_ms": res.residual_ms,
        "slope": res.slope,
        "means": [asdict(m) for m in res.means],
        "differences": [{**asdict(d), "control": res.control} for d in res.differences],
        "error": None,
    }


def _fitted(model: Any, args: tuple[Any, ...], levels: Any, n: int) -> dict[str, Any]:
    """``model(*args, strata=levels)`` as a report entry, or the reason it could not be
    fitted (with the model's n, and no means or differences)."""
    try:
        return _model_dict(model(*args, strata=levels))
    except ModelError as exc:
        return {"formula": None, "n": n, "error": str(exc), "means": [], "differences": []}


def _analysis(
    changes: Sequence[PatientChange],
    arms: Mapping[str, str],
    strata: Mapping[str, Mapping[str, str]],
    control: str,
    measures: Sequence[tuple[str, str]],
    cutoffs: Sequence[tuple[Threshold, float | None]],
    rule: str,
) -> dict[str, Any]:
    """The inferential part: ANCOVA and its rank sensitivity per measure, non-progression per
    threshold (spec §6's progression; the module docstring of scorer.stats.endpoint_models)."""
    in_arm = [c for c in changes if c.patient in arms]
    factors = list(strata)
    out: dict[str, Any] = {"ancova": [], "rank_sensitivity": [], "non_progression": []}
    for m, name in measures:
        group = [c for c in in_arm if m in c.change and m in c.baseline]
        arm = [arms[c.patient] for c in group]
        levels = {f: [strata[f].get(c.patient, "") for c in group] for f in factors}
        args = ([c.change[m] for c in group], [c.baseline[m] for c in group], arm, control)
        entry = _fitted(ancova, args, levels, len(group))
        out["ancova"].append({"measure": m, "name": name, **entry})
        entry = _fitted(rank_ancova, args, levels, len(group))
        out["rank_sensitivity"].append(
            {
                "measure": m,
                "name": name,
                "method": "sensitivity: ANCOVA on ranks (Conover & Iman 1982)",
                **entry,
            }
        )
    group = [c for c in in_arm if "total" in c.change]
    labels = (
        ["; ".join(f"{f}={strata[f].get(c.patient, '')}" for f in factors) for c in group]
        if factors
        else None
    )
    for t, cutoff in cutoffs:
        row: dict[str, Any] = {
            "threshold": t.label,
            "non_progressor": _non_progressor_label(t.label),
            "cutoff": cutoff,
            "comparisons": [],
            "error": None,
        }
        if cutoff is None:
            row["error"] = "the threshold has no value (no SDC)"
        else:
            try:
                row["comparisons"] = [
                    asdict(p)
                    for p in compare_proportions(
                        [not t.exceeded(c.change["total"], cutoff) for c in group],
                        [arms[c.patient] for c in group],
                        control,
                        labels,
                    )
                ]
            except ModelError as exc:
                row["error"] = str(exc)
        out["non_progression"].append(row)
    return out


def endpoint_results(
    reads: Sequence[Read],
    manifest: Mapping[str, Any],
    arms: Mapping[str, str],
    *,
    strata: Mapping[str, Mapping[str, str]] | None = None,
    control: str | None = None,
    visit_from: str | None = None,
    visit_to: str | None = None,
) -> dict[str, Any]:
    """The endpoint table as data (see the module docstring)."""
    protocol = manifest.get("protocol") or {}
    strata = dict(strata or {})
    changes, visits, notes, skipped = _patient_changes(reads, protocol, visit_from, visit_to)
    sdc95, sdc80 = _sdcs(reads, protocol, visits[0], visits[-1])
    thresholds = [
        parse_threshold(t) for t in protocol.get("thresholds", ["sdc95", "sdc80", "0", "0.5"])
    ]
    rapid = parse_threshold(protocol.get("rapid_threshold", "rapid>=5"))
    left_out = _left_out_per_arm(changes, skipped, arms, visits, notes)
    by_arm: dict[str, list[PatientChange]] = {}
    for c in changes:
        if c.patient in arms:
            by_arm.setdefault(arms[c.patient], []).append(c)
    measures = [(m, name) for m, name in MEASURES if any(m in c.change for c in changes)]
    cutoffs = [(t, t.resolve(sdc95, sdc80)) for t in thresholds]
    out_arms = [
        _arm_summary(arm, by_arm[arm], measures, cutoffs, rapid, sdc95, sdc80)
        for arm in sorted(by_arm)
    ]
    rule = _rules(protocol).visits
    analysis = _between_arms(changes, arms, strata, by_arm, control, measures, cutoffs, rule, notes)
    return {
        "trial": manifest.get("trial"),
        "visits": {"from": visits[0], "to": visits[-1]},
        "final_rule": protocol.get("final_rule", "closest_two"),
        "missing_visits": {
            "rule": rule,
            "description": _visit_rule_text(rule),
            "filled": {a["arm"]: a["filled"] for a in out_arms},
            "left_out": left_out,
        },
        "sdc95": sdc95,
        "sdc80": sdc80,
        "frozen_sdc": protocol.get("frozen_sdc"),
        "measures": [{"measure": m, "name": name} for m, name in measures],
        "arms": out_arms,
        "analysis": analysis,
        "patients": [
            {
                "patient": c.patient,
                "arm": arms.get(c.patient),
                **{f"change_{m.lower()}": c.change.get(m) for m, _ in measures},
                **{f"baseline_{m.lower()}": c.baseline.get(m) for m, _ in measures},
                "filled": c.filled,
                "reads": list(c.reads),
                "annualised": c.annualised,
            }
            for c in changes
        ],
        "notes": notes,
    }


def _left_out_per_arm(
    changes: Sequence[PatientChange],
    skipped: Sequence[str],
    arms: Mapping[str, str],
    visits: Sequence[str],
    notes: list[str],
) -> dict[str, int]:
    """The allocated patients without a change, per arm (a missing visit left missing, or no
    reads at all in the export); noted with those not in the export named, after a note of
    the patients read but not allocated."""
    unknown = sorted(p for p in {c.patient for c in changes} | set(skipped) if p not in arms)
    if unknown:
        notes.append(
            f"{len(unknown)} patient(s) in the reads are not in the allocation file and are left "
            f"out: {_first_ten(unknown)}"
        )
    read = {c.patient for c in changes}
    left_out = {a: 0 for a in sorted(set(arms.values()))}
    for p in arms:
        if p not in read:
            left_out[arms[p]] += 1
    if any(left_out.values()):
        absent = sorted(p for p in arms if p not in read and p not in skipped)
        notes.append(
            f"{sum(left_out.values())} allocated patient(s) without a change from {visits[0]} "
            f"to {visits[-1]} left out, per arm: "
            + ", ".join(f"{a} {n}" for a, n in left_out.items())
            + (f"; {len(absent)} of them not in the export: {_first_ten(absent)}" if absent else "")
        )
    return left_out


def _arm_summary(
    arm: str,
    group: Sequence[PatientChange],
    measures: Sequence[tuple[str, str]],
    cutoffs: Sequence[tuple[Threshold, float | None]],
    rapid: Threshold,
    sdc95: float | None,
    sdc80: float | None,
) -> dict[str, Any]:
    """One arm's entry: n, each measure's summary, non-progressors per threshold, rapid
    progressors (annualised change against ``rapid``), the patients filled under the
    missing-visit rule and the sorted changes in mTSS (for the plot)."""
    entry: dict[str, Any] = {"arm": arm, "n": len(group)}
    for m, _ in measures:
        vals = [c.change[m] for c in group if m in c.change]
        entry[m] = summary(np.array(vals, dtype=float)).to_dict()
    totals = [c.change["total"] for c in group]
    entry["non_progressors"] = _non_progressors(totals, cutoffs)
    ann = [c.annualised for c in group if c.annualised is not None]
    cutoff = rapid.resolve(sdc95, sdc80)
    fast = sum(rapid.exceeded(v, cutoff) for v in ann) if cutoff is not None else 0
    entry["rapid"] = {
        "threshold": f"annualised change {rapid.op} {cutoff:g}" if cutoff is not None else "",
        "n": len(ann),
        "rapid": fast,
        "pct": 100.0 * fast / len(ann) if ann else None,
    }
    entry["filled"] = sum(c.filled for c in group)
    entry["changes"] = sorted(totals)
    return entry


def _non_progressors(
    totals: Sequence[float], cutoffs: Sequence[tuple[Threshold, float | None]]
) -> list[dict[str, Any]]:
    """How many of an arm's changes in mTSS (``totals``) do not exceed each threshold."""
    rows: list[dict[str, Any]] = []
    for t, cutoff in cutoffs:
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
    return rows


def _between_arms(
    changes: Sequence[PatientChange],
    arms: Mapping[str, str],
    strata: Mapping[str, Mapping[str, str]],
    by_arm: Mapping[str, Sequence[PatientChange]],
    control: str | None,
    measures: Sequence[tuple[str, str]],
    cutoffs: Sequence[tuple[Threshold, float | None]],
    rule: str,
    notes: list[str],
) -> dict[str, Any]:
    """The comparison of the arms with the control arm (:func:`_analysis`) when two or more
    arms have patients, else nothing and a note why; refused for a ``control`` arm without
    patients, or a patient without a stratification factor's level."""
    if len(by_arm) >= 2:
        chosen, how = _control_arm(sorted(by_arm), control)
        for f, levels in strata.items():
            lacking = sorted(
                c.patient for c in changes if c.patient in arms and c.patient not in levels
            )
            if lacking:
                raise EndpointError(f"patient(s) {', '.join(lacking[:10])} have no {f}")
        return {
            "control": chosen,
            "control_chosen": how,
            "strata": list(strata),
            **_analysis(changes, arms, strata, chosen, measures, cutoffs, rule),
        }
    if control is not None and control not in by_arm:
        raise EndpointError(f"--control {control}: no such arm with patients")
    notes.append("fewer than two arms have patients: no comparison between arms")
    return {}


def endpoint_document(
    reads: Sequence[Read],
    manifest: Mapping[str, Any],
    arms: Mapping[str, str],
    *,
    strata: Mapping[str, Mapping[str, str]] | None = None,
    control: str | None = None,
    visit_from: str | None = None,
    visit_to: str | None = None,
) -> Document:
    """The endpoint report of :func:`endpoint_results`: change by arm, the comparison between
    arms, progression, each patient's change, and the notes."""
    r = endpoint_results(
        reads,
        manifest,
        arms,
        strata=strata,
        control=control,
        visit_from=visit_from,
        visit_to=visit_to,
    )
    names = {m["measure"]: m["name"] for m in r["measures"]}
    span = f"{r['visits']['from']} to {r['visits']['to']}"
    sections = [
        _change_by_arm_section(r, names, span),
        *_analysis_sections(r, span),
        _progression_section(r),
        _patients_section(r, names),
        Section("Notes", [Paragraph(n) for n in r["notes"]] or [Paragraph("None.")]),
    ]
    return Document(
        f"Endpoints — {r['trial']}", _endpoint_facts(r, manifest, span), sections, {"endpoints": r}
    )


def _change_by_arm_section(r: Mapping[str, Any], names: Mapping[str, str], span: str) -> Section:
    """How the final change is made, and each measure's change summarised by arm."""
    rows = []
    for a in r["arms"]:
        for m, name in names.items():
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
    return Section(
        f"Change from {span}",
        [
            Paragraph(
                "Final change per patient: the mean of the primary readers' changes, or, "
                f"where the patient was adjudicated, the reads the rule '{r['final_rule']}' "
                f"selects. Missing visits: {_filled_text(r)}."
            ),
            Table(
                "Change by arm",
                f"Change in {', '.join(names.values())} by arm "
                f"(n = {sum(a['n'] for a in r['arms'])} patients; n per arm)",
                ["Arm", "Measure", "n", "Mean", "SD", "Median", "Q1", "Q3"],
                rows,
            ),
        ],
    )


def _progression_section(r: Mapping[str, Any]) -> Section:
    """Non-progressors per threshold and rapid progressors by arm, and the cumulative
    probability plot of change in mTSS by arm with the SDC drawn."""
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
    return Section(
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
                "Cumulative probability of change in mTSS by arm, the SDC drawn "
                f"(n = {sum(a['n'] for a in r['arms'])} patients)",
                curves,
                sdc,
            ),
        ],
    )


def _patients_section(r: Mapping[str, Any], names: Mapping[str, str]) -> Section:
    """Each patient's final change and baseline per measure, how it was made, and its
    annualised change in mTSS."""
    return Section(
        "Patients",
        [
            Table(
                "Patients",
                f"Final change per patient (n = {len(r['patients'])}); baseline at "
                f"{r['visits']['from']}",
                [
                    "Patient",
                    "Arm",
                    *names.values(),
                    *(f"Baseline {n}" for n in names.values()),
                    "Filled",
                    "Reads",
                    "Annualised mTSS",
                ],
                [
                    [
                        p["patient"],
                        p["arm"],
                        *(p[f"change_{m.lower()}"] for m in names),
                        *(p[f"baseline_{m.lower()}"] for m in names),
                        p["filled"],
                        ", ".join(p["reads"]),
                        p["annualised"],
                    ]
                    for p in r["patients"]
                ],
            )
        ],
    )


def _endpoint_facts(
    r: Mapping[str, Any], manifest: Mapping[str, Any], span: str
) -> list[tuple[str, str | int | float]]:
    """The facts at the report's top: the trial, its lock, the export's SHA-256 and audit
    head, visits, missing-data rules and SDC; the control arm and strata when compared."""
    lock = manifest.get("lock") or {}
    head = manifest.get("audit_head") or {}
    facts: list[tuple[str, str | int | float]] = [
        ("Trial", str(r["trial"])),
        ("Locked", f"by {lock.get('by')} at {lock.get('at')} (signature {lock.get('signature')})"),
        ("Reads CSV SHA-256", str(manifest.get("sha256"))),
        ("Audit head", f"{head.get('rows')} rows, MAC {str(head.get('mac'))[:16]}…"),
        ("Visits", span),
        ("Missing visits", _filled_text(r)),
        ("Missing-data rules", _rules(manifest.get("protocol") or {}).describe()),
        ("SDC", _sdc_text(r)),
    ]
    if r["analysis"]:
        facts.append(
            ("Control arm", f"{r['analysis']['control']} ({r['analysis']['control_chosen']})")
        )
        if r["analysis"]["strata"]:
            facts.append(("Stratification factors", ", ".join(r["analysis"]["strata"])))
    return facts


def _filled_text(r: Mapping[str, Any]) -> str:
    mv = r["missing_visits"]
    filled = ", ".join(f"{a} {n}" for a, n in mv["filled"].items())
    left = ", ".join(f"{a} {n}" for a, n in mv["left_out"].items())
    return (
        f"{mv['description']} (rule '{mv['rule']}'; patients filled per arm: {filled}; "
        f"allocated patients left out without a change, per arm: {left})"
    )


def _first_ten(patients: Sequence[str]) -> str:
    """The first ten patients named, then how many more."""
    more = len(patients) - 10
    return ", ".join(patients[:10]) + (f" and {more} more" if more > 0 else "")


def _analysis_sections(r: Mapping[str, Any], span: str) -> list[Section]:
    """ANCOVA per measure, non-progression compared between arms, the rank sensitivity: each
    model's formula, n and missing-data rule in the caption beside its result."""
    an = r["analysis"]
    if not an:
        return []
    rule = f"missing visits: {r['missing_visits']['rule']}"
    return [
        Section(
            f"Treatment effect: change from {span}",
            [*_ancova_blocks(r, span, rule), *_non_progression_blocks(r, rule)],
        ),
        _rank_sensitivity_section(an, rule),
    ]


def _ancova_blocks(r: Mapping[str, Any], span: str, rule: str) -> list[Paragraph | Table]:
    """The ANCOVA described, then per measure its model and its LS means by arm with each
    arm's difference from control (or why it could not be fitted)."""
    an = r["analysis"]
    control = an["control"]
    blocks: list[Paragraph | Table] = [
        Paragraph(
            f"Analysis of covariance of the change from {span} on arm and baseline score"
            + (f" and {', '.join(an['strata'])}" if an["strata"] else "")
            + f" (ordinary least squares, statsmodels). Control arm: {control}. The LS mean of "
            "an arm is the model's prediction for it with the baseline at its overall mean"
            + (
                " and each stratification factor averaged over its observed proportions"
                if an["strata"]
                else ""
            )
            + "; each difference from control is the arm's coefficient, with its 95 % "
            f"confidence interval and p-value. Missing visits: {_filled_text(r)}."
        )
    ]
    for a in an["ancova"]:
        if a["error"]:
            blocks.append(
                Paragraph(f"{a['name']}: the ANCOVA could not be fitted: {a['error']} ({rule}).")
            )
            continue
        diff = {d["arm"]: d for d in a["differences"]}
        rows = []
        for m in a["means"]:
            d = diff.get(m["arm"])
            rows.append(
                [
                    m["arm"],
                    m["n"],
                    m["mean"],
                    m["low"],
                    m["high"],
                    d["estimate"] if d else None,
                    d["low"] if d else None,
                    d["high"] if d else None,
                    d["p"] if d else None,
                ]
            )
        blocks.append(
            Paragraph(
                f"{a['name']} — model: {a['formula']}; n = {a['n']}; {rule}; LS means with "
                f"{a['adjustment']}; residual df {a['residual_df']}."
            )
        )
        blocks.append(
            Table(
                f"ANCOVA {a['name']}",
                f"{a['name']}: LS means by arm and difference from {control} (n = {a['n']})",
                [
                    "Arm",
                    "n",
                    "LS mean",
                    "95 % CI low",
                    "95 % CI high",
                    f"Difference vs {control}",
                    "Difference CI low",
                    "Difference CI high",
                    "p",
                ],
                rows,
            )
        )
    return blocks


def _non_progression_blocks(r: Mapping[str, Any], rule: str) -> list[Paragraph | Table]:
    """Non-progression compared between arms: the method, each arm against control per
    threshold, and the notes (a threshold without a value, a test that fell back)."""
    an = r["analysis"]
    control = an["control"]
    prog_rows = []
    prog_notes = []
    for t in an["non_progression"]:
        if t["error"]:
            prog_notes.append(f"{t['non_progressor']}: {t['error']}")
            continue
        for c in t["comparisons"]:
            prog_rows.append(
                [
                    t["non_progressor"],
                    c["arm"],
                    f"{c['x']}/{c['n']}",
                    100.0 * c["x"] / c["n"],
                    f"{c['x_control']}/{c['n_control']}",
                    100.0 * c["x_control"] / c["n_control"],
                    100.0 * c["difference"],
                    100.0 * c["low"],
                    100.0 * c["high"],
                    c["p"],
                    _short_test(c["test"]),
                ]
            )
            if c["note"]:
                prog_notes.append(f"{t['non_progressor']}, {c['arm']}: {c['note']}.")
    n_prog = sum(a["n"] for a in r["arms"])
    return [
        Paragraph(
            f"Non-progressors (change in mTSS at or below each threshold) against {control}: "
            "the difference in percentage points with Newcombe's hybrid score 95 % interval "
            "(1998, method 10); p from "
            + (
                "the Cochran–Mantel–Haenszel test over the strata "
                f"({', '.join(an['strata'])}; continuity-corrected)"
                if an["strata"]
                else "a logistic regression of non-progression on arm (Wald test)"
            )
            + f", or Fisher's exact test where that fit fails (said below); n = {n_prog}; {rule}."
        ),
        Table(
            "Non-progression by arm",
            f"Non-progression: each arm against {control} (n = {n_prog})",
            [
                "Non-progressor",
                "Arm",
                "Non-progressors",
                "%",
                control,
                f"% {control}",
                "Difference (points)",
                "CI low",
                "CI high",
                "p",
                "Test",
            ],
            prog_rows,
        ),
        *(Paragraph(n) for n in prog_notes),
    ]


def _rank_sensitivity_section(an: Mapping[str, Any], rule: str) -> Section:
    """The sensitivity analysis: ANCOVA on ranks per measure, each model and its differences
    from control (or why it could not be fitted)."""
    rank_rows = []
    rank_notes = []
    rank_models = []
    for a in an["rank_sensitivity"]:
        if a["error"]:
            rank_notes.append(f"{a['name']}: the rank ANCOVA could not be fitted: {a['error']}")
            continue
        rank_models.append(f"{a['name']} — model: {a['formula']}; n = {a['n']}; {rule}.")
        for d in a["differences"]:
            rank_rows.append(
                [
                    a["name"],
                    a["n"],
                    d["arm"],
                    d["estimate"],
                    d["low"],
                    d["high"],
                    d["p"],
                ]
            )
    return Section(
        "Sensitivity analysis",
        [
            Paragraph(
                "Sensitivity: ANCOVA on ranks (Conover & Iman 1982) — the same model on the "
                "ranks of change and of baseline (mid-ranks for ties); differences are in "
                "mean rank."
            ),
            *(Paragraph(n) for n in rank_models),
            Table(
                "Rank sensitivity",
                f"ANCOVA on ranks: difference from {an['control']} by measure (n per row)",
                [
                    "Measure",
                    "n",
                    "Arm",
                    "Difference in mean rank",
                    "CI low",
                    "CI high",
                    "p",
                ],
                rank_rows,
            ),
            *(Paragraph(n) for n in rank_notes),
        ],
    )


def _short_test(test: str) -> str:
    """A test's name as the table's narrow column shows it (the text above names it in full)."""
    for start, short in (("logistic", "logistic"), ("Cochran", "CMH"), ("Fisher", "Fisher")):
        if test.startswith(start):
            return short
    return test


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
