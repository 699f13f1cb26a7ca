"""The reader-agreement and progression analysis of a set of reads (``scorer analyze``).

Built from core objects (reads, totals, change) and stats results; returns one plain,
JSON-ready dictionary that the text formatter, the CLI and later the reports all use.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

from scorer.core.methods import AreaDef, Method
from scorer.core.progression import DEFAULT_THRESHOLDS, RAPID_PROGRESSION, Threshold
from scorer.core.reads import Read
from scorer.core.totals import (
    MIN_ANNUALISATION_DAYS,
    MissingDataRules,
    annualised,
    fill_missing_visit,
    status_totals,
)
from scorer.core.visits import visit_order
from scorer.reports import score_matrix
from scorer.reports.score_matrix import ScoreMatrix
from scorer.stats.agreement import bland_altman, sdc
from scorer.stats.anova import complete_rows, two_way_anova
from scorer.stats.blocks import largest_complete_block
from scorer.stats.distribution import cumulative_probability, summary
from scorer.stats.icc import icc
from scorer.stats.kappa import weighted_kappa

POOLED_REGION: dict[str, str] = {"hand": "pooled-hands", "foot": "pooled-feet"}
"""The ``region`` of a kappa row pooled over the two sides, by region kind."""


class AnalysisError(ValueError):
    """The reads cannot be analysed as asked (no reads, unknown visit, one reader, ...)."""


@dataclass(frozen=True)
class AnalysisOptions:
    """What to analyse and how; every field is printed with the result."""

    method: str | None = None
    visit_from: str | None = None
    visit_to: str | None = None
    sdc_level: int = 95
    rules: MissingDataRules = field(default_factory=MissingDataRules)
    #: Progression thresholds, reported in this order; annualised ones (``rapid>5``) come
    #: last, count annualised change, and stand in for ``rapid``.
    thresholds: tuple[Threshold, ...] = DEFAULT_THRESHOLDS
    #: Rapid progression, reported after ``thresholds`` unless they hold an annualised one.
    rapid: Threshold = RAPID_PROGRESSION
    read_types: tuple[str, ...] = ("primary",)
    statuses: tuple[str, ...] = ("signed",)
    confidence: float = 0.95
    kappa: bool = True

    def __post_init__(self) -> None:
        if not self.rapid.annualised:
            raise ValueError(
                f"the rapid progression threshold must be on annualised change "
                f"(rapid>=5 or rapid>5), not {self.rapid.label!r}"
            )


def _r(x: float | None, nd: int = 6) -> float | None:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return None
    return round(float(x), nd)


MIN_ICC_TARGETS = 3
"""Fewer targets read by every reader in an ICC than this, and it is not estimable."""


def _icc_estimate(
    matrix: np.ndarray, confidence: float, what: str
) -> tuple[dict[str, Any] | None, str | None]:
    """The six ICC forms over the targets every reader (column) scored, or None and the note
    saying why not (docs/incomplete-designs.md): ``what`` names the ICC in the note."""
    data, _ = complete_rows(matrix)
    n, k = data.shape
    if k < 2:
        return None, f"ICC of {what} not estimable: {k} reader(s), needs 2"
    if n < MIN_ICC_TARGETS:
        return None, (
            f"ICC of {what} not estimable: n = {n} target{'' if n == 1 else 's'}, "
            f"needs {MIN_ICC_TARGETS}"
        )
    if float(np.ptp(data)) == 0.0:
        return None, f"ICC of {what} not estimable: every rating is the same"
    results = icc(data, confidence=confidence)
    table = {name: res.to_dict() for name, res in results.items()}
    lost = [name for name, res in results.items() if not res.estimable]
    if lost:
        why = (
            "the targets do not differ: every target's mean rating is the same"
            if float(np.ptp(data.mean(axis=1))) == 0.0
            else "a ratio of mean squares is undefined"
        )
        return table, f"ICC of {what}: {', '.join(lost)} not estimable ({why})"
    return table, None


def _icc_table(
    matrix: np.ndarray, confidence: float, what: str, notes: list[str]
) -> tuple[dict[str, Any] | None, str | None]:
    """:func:`_icc_estimate` with its note, if any, added to ``notes`` too."""
    table, note = _icc_estimate(matrix, confidence, what)
    if note:
        notes.append(note)
    return table, note


ONE_READER = "one reader only: no agreement statistics"
"""The note, and each ICC's reason for being null, when the reads have one reader."""


def _note_left_out(
    matrix: np.ndarray, readers: Sequence[str], what: str, unit: str, notes: list[str]
) -> None:
    """Note how many of the targets some reader has (rows) the all-reader ICC ``what`` uses,
    and which readers lack a total for the others (docs/incomplete-designs.md)."""
    has = ~np.isnan(matrix).all(axis=1)
    n, m = int((~np.isnan(matrix).any(axis=1)).sum()), int(has.sum())
    if n == m:
        return
    short = [rd for j, rd in enumerate(readers) if np.isnan(matrix[has, j]).any()]
    who = f"reader {short[0]} has" if len(short) == 1 else f"readers {', '.join(short)} have"
    notes.append(f"{what} uses {n} of {m} {unit}: {who} no total for the others")


def _pairwise_icc(
    matrix: np.ndarray,
    readers: Sequence[str],
    measure: str,
    visit: str | None,
    confidence: float,
    notes: list[str],
    pooled: bool = False,
) -> list[dict[str, Any]]:
    """The ICC of every pair of readers (columns) over the targets both scored; ``pooled``:
    the targets are every visit of every patient."""
    out: list[dict[str, Any]] = []
    for a, b in itertools.combinations(range(len(readers)), 2):
        pair = matrix[:, [a, b]]
        n = int((~np.isnan(pair).any(axis=1)).sum())
        where = f"at {visit}" if visit else "pooled over visits" if pooled else ""
        what = f"{' '.join(filter(None, (measure, where)))} ({readers[a]}–{readers[b]})"
        table, note = _icc_estimate(pair, confidence, what)
        if note:
            notes.append(note)
        out.append(
            {
                "measure": measure,
                "visit": visit,
                "reader_a": readers[a],
                "reader_b": readers[b],
                "n": n,
                "icc": table,
                "note": note,
            }
        )
    return out


def _anova(matrix: np.ndarray) -> dict[str, Any] | None:
    """The two-way ANOVA mean squares behind the ICCs (BMS, JMS, EMS, WMS)."""
    data, _ = complete_rows(matrix)
    if data.shape[0] < 2 or data.shape[1] < 2:
        return None
    ms = two_way_anova(data)
    return {"n": ms.n, "k": ms.k, "bms": ms.bms, "jms": ms.jms, "ems": ms.ems, "wms": ms.wms}


def _bland_altman_rows(
    matrix: np.ndarray, readers: Sequence[str], measure: str, notes: list[str]
) -> list[dict[str, Any]]:
    """A Bland–Altman row for every pair of readers (columns) with 2 or more shared targets."""
    out: list[dict[str, Any]] = []
    for a, b in itertools.combinations(range(len(readers)), 2):
        pair = matrix[:, [a, b]]
        pair = pair[~np.isnan(pair).any(axis=1)]
        if pair.shape[0] < 2:
            notes.append(
                f"Bland–Altman of {measure} ({readers[a]}–{readers[b]}): no row, "
                f"n = {pair.shape[0]} shared target(s), needs 2"
            )
            continue
        ba = bland_altman(pair[:, 0], pair[:, 1]).to_dict()
        out.append({"measure": measure, "reader_a": readers[a], "reader_b": readers[b], **ba})
    return out


def _summ(values: Sequence[float]) -> dict[str, Any]:
    return summary(np.asarray(values, dtype=float)).to_dict() if values else {"n": 0}


def analyze(
    reads: Iterable[Read], methods: dict[str, Method], options: AnalysisOptions
) -> dict[str, Any]:
    """Totals, change, SDC, progression, ICCs, Bland–Altman and per-area kappa of the reads."""
    notes: list[str] = []
    method, selected = _selected_reads(list(reads), methods, options, notes)
    table = _read_table(selected)
    readers = sorted({r.reader for r in selected})
    patients = sorted({r.patient for r in selected})
    visits, visit_dates, v_from, v_to = _visit_span(selected, options, notes)
    rules = options.rules
    single_visit = v_from == v_to

    # Every read's scores as one array (a row per (patient, visit, reader)), totals at once.
    scores = _Scores(method, table)
    tot = _status_of(scores, rules, notes)
    totals_out, by_visit, pooled = _status_by_visit(tot, patients, readers, visits, visit_dates)
    result: dict[str, Any] = {
        "method": method.id,
        "method_name": method.name,
        "n_patients": len(patients),
        "readers": readers,
        "visits": visits,
        "from": None if single_visit else v_from,
        "to": None if single_visit else v_to,
        "rules": {
            "missing_areas": rules.areas,
            "max_unused_share": rules.max_unused_share,
            "operated": rules.operated,
            "missing_visits": rules.visits,
            "description": rules.describe(),
        },
        "read_types": list(options.read_types),
        "totals": totals_out,
        "change": None,
        "sdc": None,
        "sdc_note": "No SDC: one visit only, no change scores" if single_visit else None,
        "icc": _status_icc(pooled, by_visit, readers, visits, options.confidence, notes),
        "bland_altman": [],
        "kappa": [],
        "progression": None,
        "cumulative_probability": None,
        "notes": notes,
    }
    if len(readers) < 2:
        notes.append(ONE_READER)
        if not single_visit:
            result["icc"]["change_note"] = ONE_READER

    # Bland–Altman on status over all pooled targets.
    result["bland_altman"] += _bland_altman_rows(pooled, readers, "status", notes)

    if not single_visit:
        _change_section(
            result, method, scores, readers, patients, visit_dates, v_from, v_to, options, notes
        )
    if options.kappa and len(readers) >= 2:
        result["kappa"] = _kappa_section(method, scores, readers, patients, visits)
    return result


def _selected_reads(
    all_reads: list[Read], methods: dict[str, Method], options: AnalysisOptions, notes: list[str]
) -> tuple[Method, list[Read]]:
    """The method analysed (``options.method``, else svh if read, else the first) and its
    reads of the read types and statuses asked for, the others noted as left out; refused
    without reads, with an unknown method, or with none left."""
    if not all_reads:
        raise AnalysisError("there are no reads to analyse")
    method_ids = sorted({r.method for r in all_reads})
    method_id = options.method or ("svh" if "svh" in method_ids else method_ids[0])
    if method_id not in methods:
        raise AnalysisError(f"unknown method {method_id!r}")
    selected = [
        r
        for r in all_reads
        if r.method == method_id
        and r.read_type in options.read_types
        and r.status in options.statuses
    ]
    excluded = len(all_reads) - len(selected)
    if excluded:
        notes.append(
            f"{excluded} read(s) left out: only {'/'.join(options.read_types)} reads with status "
            f"{'/'.join(options.statuses)} and method {method_id} enter the analysis"
        )
    if not selected:
        raise AnalysisError(
            f"no {'/'.join(options.read_types)} {'/'.join(options.statuses)} reads "
            f"with method {method_id}"
        )
    return methods[method_id], selected


def _read_table(selected: Sequence[Read]) -> dict[tuple[str, str, str], Read]:
    """(patient, visit, reader) -> read; a reader with two reads of one visit is ambiguous
    and refused."""
    table: dict[tuple[str, str, str], Read] = {}
    for r in selected:
        key = (r.patient, r.visit, r.reader)
        if key in table:
            raise AnalysisError(
                f"reader {r.reader} has two {r.read_type} reads of patient {r.patient} at visit "
                f"{r.visit} (read ids {table[key].read_id} and {r.read_id})"
            )
        table[key] = r
    return table


def _visit_span(
    selected: Sequence[Read], options: AnalysisOptions, notes: list[str]
) -> tuple[list[str], dict[str, date | None], str, str]:
    """The visits in order with the earliest date of each, and the two visits the change is
    between (``--from``/``--to``, default the first and the last); refused when either is not
    in the reads or they are the wrong way round."""
    # Visits in the order of the median over patients of their dates (one mis-dated visit
    # cannot reorder them); the earliest date of each is the one shown and filled towards.
    order = visit_order((r.patient, r.visit, r.visit_date) for r in selected)
    visit_dates: dict[str, date | None] = dict(order.earliest)
    visits = order.visits
    notes.extend(order.notes)
    for label, given in (("--from", options.visit_from), ("--to", options.visit_to)):
        if given is not None and given not in visits:
            raise AnalysisError(
                f"{label} visit {given!r} is not in the reads (visits: {', '.join(visits)})"
            )
    v_from = options.visit_from or visits[0]
    v_to = options.visit_to or visits[-1]
    if visits.index(v_from) > visits.index(v_to):
        raise AnalysisError(f"visit {v_from} comes after {v_to}")
    return visits, visit_dates, v_from, v_to


def _status_of(
    scores: _Scores, rules: MissingDataRules, notes: list[str]
) -> dict[tuple[str, str, str], float]:
    """Every read's status total by (patient, visit, reader), NaN where the missing-area rule
    leaves it missing; how many are missing and how many scaled up noted."""
    status = score_matrix.status_totals(scores.matrix, rules)
    missing = np.isnan(status.total)
    n_missing_status = int(missing.sum())
    n_adjusted = int((status.adjusted & ~missing).sum())
    tot: dict[tuple[str, str, str], float] = dict(
        zip(scores.keys, status.total.tolist(), strict=True)
    )
    if n_missing_status:
        notes.append(f"{n_missing_status} status total(s) missing under the missing-area rule")
    if n_adjusted:
        notes.append(f"{n_adjusted} status total(s) scaled up for areas not assessable")
    return tot


def _status_by_visit(
    tot: dict[tuple[str, str, str], float],
    patients: list[str],
    readers: list[str],
    visits: list[str],
    visit_dates: dict[str, date | None],
) -> tuple[dict[str, Any], dict[str, np.ndarray], np.ndarray]:
    """The status totals' summary per visit and reader (the result's ``totals``), and as
    patients × readers arrays: one per visit, and every visit pooled (a row per patient and
    visit)."""
    totals_out: dict[str, Any] = {}
    by_visit: dict[str, np.ndarray] = {}
    for v in visits:
        per_reader = {}
        for rd in readers:
            vals = [tot.get((p, v, rd), math.nan) for p in patients]
            per_reader[rd] = _summ([x for x in vals if not math.isnan(x)])
        totals_out[v] = {
            "date": _iso(visit_dates.get(v)),
            "readers": per_reader,
        }
        by_visit[v] = np.array(
            [[tot.get((p, v, rd), math.nan) for rd in readers] for p in patients], dtype=float
        )
    pooled = np.array(
        [[tot.get((p, v, rd), math.nan) for rd in readers] for p in patients for v in visits],
        dtype=float,
    )
    return totals_out, by_visit, pooled


def _status_icc(
    pooled: np.ndarray,
    by_visit: dict[str, np.ndarray],
    readers: list[str],
    visits: list[str],
    confidence: float,
    notes: list[str],
) -> dict[str, Any]:
    """The result's ``icc`` with its status ICCs — all readers pooled over visits and at each
    visit, every pair — and why any is null; the change ICCs are left for the change."""
    pairwise: list[dict[str, Any]] = []
    icc_status: dict[str, Any] | None = None
    status_note: str | None = ONE_READER
    icc_by_visit: dict[str, Any] = dict.fromkeys(visits)
    by_visit_notes: dict[str, str | None] = dict.fromkeys(visits, ONE_READER)
    if len(readers) >= 2:
        what = "status pooled over visits" if len(visits) > 1 else "status"
        icc_status, status_note = _icc_table(pooled, confidence, f"{what} (all readers)", notes)
        pairwise += _pairwise_icc(
            pooled, readers, "status", None, confidence, notes, pooled=len(visits) > 1
        )
        for v, m in by_visit.items():
            icc_by_visit[v], by_visit_notes[v] = _icc_table(
                m, confidence, f"status at {v} (all readers)", notes
            )
            if len(visits) > 1:
                pairwise += _pairwise_icc(m, readers, "status", v, confidence, notes)
        targets = "(patient, visit) targets"
        _note_left_out(pooled, readers, "status ICC (all readers)", targets, notes)
        if len(visits) > 1:
            for v, m in by_visit.items():
                _note_left_out(m, readers, f"status ICC at {v} (all readers)", "patients", notes)
    if len(visits) > 1:
        notes.append("pooled status ICC treats each patient's visits as independent targets")
    return {
        "status": icc_status,
        "status_n": int(complete_rows(pooled)[0].shape[0]) if len(readers) >= 2 else 0,
        "status_anova": _anova(pooled) if len(readers) >= 2 else None,
        "status_by_visit": icc_by_visit,
        "change": None,
        "change_n": 0,
        "change_anova": None,
        "pairwise": pairwise,
        # Why a table above is null (None when it is not): docs/incomplete-designs.md.
        "status_note": status_note,
        "status_by_visit_notes": by_visit_notes,
        "change_note": None,
    }


class _Scores:
    """The reads of the analysis by (patient, visit, reader), and their scores as one array
    with a row per read in ``keys`` order."""

    def __init__(self, method: Method, table: dict[tuple[str, str, str], Read]) -> None:
        self.table = table
        self.keys = list(table)
        self.row = {k: i for i, k in enumerate(self.keys)}
        self.matrix = ScoreMatrix.of(method, list(table.values()))


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d is not None else None


def _change_section(
    result: dict[str, Any],
    method: Method,
    scores: _Scores,
    readers: list[str],
    patients: list[str],
    visit_dates: dict[str, date | None],
    v_from: str,
    v_to: str,
    options: AnalysisOptions,
    notes: list[str],
) -> None:
    """Into ``result``: the change from ``v_from`` to ``v_to`` per patient and reader, its
    all-reader and pairwise ICCs and Bland–Altman, the SDC, progression against each
    threshold and the cumulative probability of the reader-mean change."""
    visits: list[str] = result["visits"]
    ch = _changes(
        method, scores, readers, patients, visits, visit_dates, v_from, v_to, options, notes
    )
    changes, per_patient = ch.changes, ch.per_patient
    result["change"] = {
        "readers": {
            rd: _summ([float(x) for x in changes[:, j] if not math.isnan(x)])
            for j, rd in enumerate(readers)
        },
        "reader_mean": _summ([row["mean"] for row in per_patient if row["mean"] is not None]),
        "patients": per_patient,
    }
    if len(readers) >= 2:
        _change_agreement(result, changes, readers, options.confidence, notes)
    result["sdc"], result["sdc_note"] = _sdc_section(changes, readers, options.sdc_level, notes)
    sdcs = _SdcValues.of(result["sdc"])

    # Progression: reader-mean change against each threshold; per reader with k = 1.
    # Annualised thresholds (rapid progression) compare the annualised reader-mean change,
    # over the patients that have one (visit interval of 30 days or more).
    means = [
        (row["patient"], row["mean"], row["annualised"])
        for row in per_patient
        if row["mean"] is not None
    ]
    per_year = [ch.exact_annual[p] for p, _, a in means if a is not None]
    result["progression"] = {
        "sdc_k_reader_mean": result["sdc"]["k"] if result["sdc"] else len(readers),
        "sdc_k_single_reader": 1,
        "thresholds": _progression(
            options, readers, changes, [m for _, m, _ in means], per_year, sdcs
        ),
    }
    if means:
        cp = cumulative_probability(np.array([m for _, m, _ in means], dtype=float))
        result["cumulative_probability"] = {
            "group": "reader mean",
            "plotting_position": "(i - 0.5) / n",
            "n": cp.n,
            "change": [_r(float(x)) for x in cp.values],
            "probability_pct": [_r(float(q)) for q in cp.percent],
            "sdc": _r(sdcs.sdc95 if options.sdc_level == 95 else sdcs.sdc80),
        }


@dataclass
class _Changes:
    """The change of every patient (row) and reader (column), NaN where there is none; each
    patient's row of the result's ``change.patients``; and the unrounded annualised
    reader-mean change by patient (for the thresholds)."""

    changes: np.ndarray
    per_patient: list[dict[str, Any]]
    exact_annual: dict[str, float]


def _change_of(
    scores: _Scores,
    patients: list[str],
    readers: list[str],
    v_from: str,
    v_to: str,
    rules: MissingDataRules,
) -> dict[tuple[str, str], float]:
    """The change of every reader and patient with both visits read, all at once."""
    row_of = scores.row
    both = [
        (p, rd)
        for p in patients
        for rd in readers
        if (p, v_from, rd) in row_of and (p, v_to, rd) in row_of
    ]
    # A few thousand pairs at a time: each row's change is its own, and the copies of the
    # rows (and the rules' temporaries) stay megabytes at any trial size.
    change: list[float] = []
    for at in range(0, len(both), 4096):
        part = both[at : at + 4096]
        change += score_matrix.change_totals(
            scores.matrix.rows([row_of[(p, v_from, rd)] for p, rd in part]),
            scores.matrix.rows([row_of[(p, v_to, rd)] for p, rd in part]),
            rules,
        ).tolist()
    return dict(zip(both, change, strict=True))


def _changes(
    method: Method,
    scores: _Scores,
    readers: list[str],
    patients: list[str],
    visits: list[str],
    visit_dates: dict[str, date | None],
    v_from: str,
    v_to: str,
    options: AnalysisOptions,
    notes: list[str],
) -> _Changes:
    """Each patient's change per reader (a missing ``v_to`` filled under the missing-visit
    rule), their mean and its annualised value; the fills and the intervals too short to
    annualise noted."""
    rules = options.rules
    table = scores.table
    change_of = _change_of(scores, patients, readers, v_from, v_to, rules)
    changes = np.full((len(patients), len(readers)), np.nan)
    per_patient: list[dict[str, Any]] = []
    annual_ok = True
    exact_annual: dict[str, float] = {}  # unrounded, for the thresholds
    imputed = 0
    for i, p in enumerate(patients):
        row: dict[str, Any] = {"patient": p, "readers": {}}
        # The patient's visit dates (spec §6: the earliest among the visit's images): from
        # every analysed read of the visit, not only those of readers whose change was
        # computed, so a mean of filled-in changes is annualised like any other.
        d0 = _patient_visit_date(table, p, v_from, readers)
        d1 = _patient_visit_date(table, p, v_to, readers)
        for j, rd in enumerate(readers):
            r0 = table.get((p, v_from, rd))
            r1 = table.get((p, v_to, rd))
            if r0 is not None and r1 is None and rules.visits != "missing":
                filled = _fill_visit(table, method, rules, p, rd, visits, visit_dates, v_from, v_to)
                if filled is not None:
                    changes[i, j] = filled
                    row["readers"][rd] = _r(filled)
                    imputed += 1
                    continue
            if r0 is None or r1 is None:
                row["readers"][rd] = None
                continue
            ch = change_of[(p, rd)]
            if not math.isnan(ch):
                changes[i, j] = ch
            row["readers"][rd] = _r(ch)
        vals = changes[i][~np.isnan(changes[i])]
        mean = float(vals.mean()) if vals.size else None
        row["mean"] = _r(mean)
        row["n_readers"] = int(vals.size)
        row["annualised"] = None
        if mean is not None and d0 is not None and d1 is not None:
            if (d1 - d0).days >= MIN_ANNUALISATION_DAYS:
                exact_annual[p] = annualised(mean, d0, d1)
                row["annualised"] = _r(exact_annual[p])
            else:
                annual_ok = False
        per_patient.append(row)
    if not annual_ok:
        notes.append(
            f"some visit intervals are under {MIN_ANNUALISATION_DAYS} days: not annualised"
        )
    if imputed:
        how = (
            "last observation carried forward"
            if rules.visits == "locf"
            else "linear extrapolation on actual dates"
        )
        notes.append(f"{imputed} change score(s) filled for a missing {v_to} visit by {how}")
    return _Changes(changes, per_patient, exact_annual)


def _change_agreement(
    result: dict[str, Any],
    changes: np.ndarray,
    readers: list[str],
    confidence: float,
    notes: list[str],
) -> None:
    """Into ``result``: the all-reader change ICC (with the patients it leaves out noted),
    its ANOVA, every pair's change ICC and the change Bland–Altman rows."""
    complete, mask = complete_rows(changes)
    n_incomplete = int((~np.isnan(changes).all(axis=1) & ~mask).sum())
    if n_incomplete:
        notes.append(
            f"{n_incomplete} patient(s) without a change score from every reader are left "
            "out of the all-reader change ICC"
        )
    icc_ = result["icc"]
    icc_["change"], icc_["change_note"] = _icc_table(
        changes, confidence, "change (all readers)", notes
    )
    icc_["change_n"] = int(complete.shape[0])
    icc_["change_anova"] = _anova(changes)
    icc_["pairwise"] += _pairwise_icc(changes, readers, "change", None, confidence, notes)
    result["bland_altman"] += _bland_altman_rows(changes, readers, "change", notes)


@dataclass(frozen=True)
class _SdcValues:
    """The SDC at 95 % and 80 %, of the reader mean and of one reader (k = 1); None without
    an SDC."""

    sdc95: float | None = None
    sdc1_95: float | None = None
    sdc80: float | None = None
    sdc1_80: float | None = None

    @staticmethod
    def of(sdc: dict[str, Any] | None) -> _SdcValues:
        """The values of :func:`_sdc_section`'s table (95 at k, 95 at 1, 80 at k, 80 at 1)."""
        if sdc is None:
            return _SdcValues()
        return _SdcValues(*(t["value"] for t in sdc["table"]))


def _progression(
    options: AnalysisOptions,
    readers: list[str],
    changes: np.ndarray,
    means: list[float],
    per_year: list[float],
    sdcs: _SdcValues,
) -> list[dict[str, Any]]:
    """Each threshold (annualised ones last; rapid progression added if none) against the
    reader-mean change (``means``; an annualised one against ``per_year``), and per reader
    with k = 1: how many progress."""
    wanted = [t for t in options.thresholds if not t.annualised]
    wanted += [t for t in options.thresholds if t.annualised]
    if not any(t.annualised for t in wanted):
        wanted.append(options.rapid)
    prog: list[dict[str, Any]] = []
    for th in wanted:
        cut = th.resolve(sdcs.sdc95, sdcs.sdc80)
        values = per_year if th.annualised else means
        entry: dict[str, Any] = {
            "threshold": th.label,
            "kind": "rapid" if th.annualised else th.kind,
            "op": th.op,
            "cutoff": _r(cut),
            "n": len(values),
        }
        if cut is None or not values:
            entry.update(n_progressors=None, pct=None, per_reader=None)
            prog.append(entry)
            continue
        k_prog = sum(1 for x in values if th.exceeded(x, cut))
        entry.update(n_progressors=k_prog, pct=_r(100.0 * k_prog / len(values)), per_reader=None)
        cut1 = th.resolve(sdcs.sdc1_95, sdcs.sdc1_80)
        if not th.annualised:
            per_reader: dict[str, Any] = {}
            for j, rd in enumerate(readers):
                col = [float(x) for x in changes[:, j] if not math.isnan(x)]
                if cut1 is None:
                    per_reader[rd] = None
                    continue
                per_reader[rd] = {
                    "n": len(col),
                    "cutoff": _r(cut1),
                    "n_progressors": sum(1 for x in col if th.exceeded(x, cut1)),
                }
            entry["per_reader"] = per_reader
        prog.append(entry)
    return prog


def _sdc_section(
    changes: np.ndarray, readers: Sequence[str], level: int, notes: list[str]
) -> tuple[dict[str, Any] | None, str | None]:
    """Spec §6's SDC on the largest complete block of the change scores (patients × readers),
    with the SDC of every pair beside it; or None and why not (docs/incomplete-designs.md)."""
    with_change = [rd for j, rd in enumerate(readers) if (~np.isnan(changes[:, j])).any()]
    if len(with_change) < 2:
        have = f" ({', '.join(with_change)} only)" if with_change else ""
        note = f"No SDC: it needs change scores of two or more readers{have}"
        notes.append(note)
        return None, note
    block = largest_complete_block(changes)
    if block is None:
        note = "No SDC: no two readers have change scores of two or more patients in common"
        notes.append(note)
        return None, note
    data = changes[block.mask][:, list(block.readers)]
    res = sdc(data, level=level)
    by = {(lv, k): sdc(data, level=lv, k=k).value for lv in (95, 80) for k in (res.k, 1)}
    names = [readers[j] for j in block.readers]
    left_readers = [rd for rd in with_change if rd not in names]
    has_any = ~np.isnan(changes).all(axis=1)
    left_patients = int((has_any & ~block.mask).sum())
    if left_readers or left_patients:
        out = []
        if left_readers:
            out.append(f"{', '.join(left_readers)} left out")
        if left_patients:
            out.append(f"{left_patients} patient(s) with change scores outside the block left out")
        notes.append(
            f"SDC from the largest complete block: readers {', '.join(names)} on their "
            f"n = {block.n} common patients; {'; '.join(out)}"
        )
    pairwise: list[dict[str, Any]] = []
    for a, b in itertools.combinations(range(len(readers)), 2):
        pair = changes[:, [a, b]]
        pair = pair[~np.isnan(pair).any(axis=1)]
        if pair.shape[0] < 2:
            continue
        p95 = sdc(pair, level=95)
        pairwise.append(
            {
                "reader_a": readers[a],
                "reader_b": readers[b],
                "n": p95.n,
                "sd_diff": _r(p95.sd_diff),
                "sdc95": _r(p95.value),
                "sdc80": _r(sdc(pair, level=80).value),
            }
        )
    return {
        **res.to_dict(),
        "readers": names,
        # Every level and k at once: the block's reader mean uses k = its readers, one reader 1.
        "table": [
            {"level": 95, "k": res.k, "value": by[(95, res.k)]},
            {"level": 95, "k": 1, "value": by[(95, 1)]},
            {"level": 80, "k": res.k, "value": by[(80, res.k)]},
            {"level": 80, "k": 1, "value": by[(80, 1)]},
        ],
        "pairwise": pairwise,
    }, None


def _patient_visit_date(
    table: dict[tuple[str, str, str], Read], patient: str, visit: str, readers: Sequence[str]
) -> date | None:
    """The earliest date among the analysed reads of a patient's visit (None without one)."""
    dates = [
        r.visit_date
        for rd in readers
        if (r := table.get((patient, visit, rd))) is not None and r.visit_date is not None
    ]
    return min(dates, default=None)


def _fill_visit(
    table: dict[tuple[str, str, str], Read],
    method: Method,
    rules: MissingDataRules,
    patient: str,
    reader: str,
    visits: list[str],
    visit_dates: dict[str, date | None],
    v_from: str,
    v_to: str,
) -> float | None:
    """A reader's change to a visit they have no read of, under the missing-visit rule:
    the earlier visits' totals carried forward or extended linearly on actual dates."""
    start = table[(patient, v_from, reader)]
    base = status_totals(start, method, rules).total
    d_from, d_to = visit_dates.get(v_from), visit_dates.get(v_to)
    if base is None or d_from is None or d_to is None:
        return None
    observed: list[tuple[float, float | None]] = []
    for v in visits[visits.index(v_from) : visits.index(v_to)]:
        r = table.get((patient, v, reader))
        when = r.visit_date if r is not None and r.visit_date else visit_dates.get(v)
        if r is None or when is None:
            continue
        observed.append((float((when - d_from).days), status_totals(r, method, rules).total))
    value = fill_missing_visit(observed, float((d_to - d_from).days), rules.visits)
    return None if value is None else value - base


def _kappa_section(
    method: Method,
    scores: _Scores,
    readers: list[str],
    patients: list[str],
    visits: list[str],
) -> list[dict[str, Any]]:
    """Weighted kappa per area and side, and pooled over sides, for each reader pair.

    Areas are the same joint only within one region kind: the thumb's IP1 (hands) and the
    hallux's IP1 (feet) are pooled apart (rows ``pooled-hands`` and ``pooled-feet``), each
    over its own grade range."""
    out: list[dict[str, Any]] = []
    joints: dict[tuple[str, str, str], list[AreaDef]] = defaultdict(list)
    for d in method.areas:
        joints[(d.area.kind, d.joint, d.feature)].append(d)
    row_of, grades = scores.row, scores.matrix.scores
    for a, b in itertools.combinations(readers, 2):
        # The pair's reads of the same patient and visit, found once for every area.
        targets = [
            (row_of[(p, v, a)], row_of[(p, v, b)])
            for p in patients
            for v in visits
            if (p, v, a) in row_of and (p, v, b) in row_of
        ]
        ga = grades[[i for i, _ in targets]].reshape(len(targets), grades.shape[1])
        gb = grades[[j for _, j in targets]].reshape(len(targets), grades.shape[1])
        scored = ~np.isnan(ga) & ~np.isnan(gb)
        for (kind, joint, feature), defs in joints.items():
            pooled_a: list[npt.NDArray[np.int64]] = []
            pooled_b: list[npt.NDArray[np.int64]] = []
            for d in defs:
                c = method.order(d.area)
                xs = ga[scored[:, c], c].astype(np.int64)
                ys = gb[scored[:, c], c].astype(np.int64)
                pooled_a.append(xs)
                pooled_b.append(ys)
                out.append(_kappa_entry(a, b, d.region, kind, joint, feature, xs, ys, d.min, d.max))
            if len(defs) > 1:
                out.append(
                    _kappa_entry(
                        a,
                        b,
                        POOLED_REGION[kind],
                        kind,
                        joint,
                        feature,
                        np.concatenate(pooled_a),
                        np.concatenate(pooled_b),
                        min(d.min for d in defs),
                        max(d.max for d in defs),
                    )
                )
    return out


def _kappa_entry(
    a: str,
    b: str,
    region: str,
    kind: str,
    joint: str,
    feature: str,
    xs: npt.NDArray[np.int64],
    ys: npt.NDArray[np.int64],
    lo: int,
    hi: int,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "reader_a": a,
        "reader_b": b,
        "region": region,
        "region_kind": kind,
        "joint": joint,
        "feature": feature,
    }
    if not xs.size:
        entry.update(
            n=0, linear=None, quadratic=None, pct_exact=None, pct_within_one=None, estimable=False
        )
        return entry
    k = weighted_kappa(xs, ys, lo, hi).to_dict()
    entry.update(k)
    return entry
