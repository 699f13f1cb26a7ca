"""An independent oracle of `scorer analyze --format json`: plain pandas, numpy and fractions.

Written from spec §2-§7 and docs/incomplete-designs.md, not from the product's code, and sharing
none of it (no ``scorer`` import anywhere): the reads CSV is read with pandas as text, the
method's areas and grade ranges come from ``resources/methods/*.toml``, totals, change and every
sum of squares are exact fractions, and floats appear only at the end (square roots, F
quantiles). Its result uses the product's JSON names where the two report the same thing, so a
test can set them side by side.
"""

from __future__ import annotations

import io
import itertools
import math
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

METHODS_DIR = Path(__file__).resolve().parents[2] / "resources" / "methods"
REGION_ORDER = ("LH", "RH", "LF", "RF")
KIND = {"LH": "hand", "RH": "hand", "LF": "foot", "RF": "foot"}
POOLED = {"hand": "pooled-hands", "foot": "pooled-feet"}
DAYS_PER_YEAR = Fraction(1461, 4)  # 365.25
MIN_DAYS = 30
MIN_ICC_TARGETS = 3
SDC_Z = {95: 1.96, 80: 1.2816}
LOA_Z = 1.96

Num = Fraction | None


@dataclass(frozen=True)
class OArea:
    """One scored area of a method: its key, grade range and weight."""

    region: str
    joint: str
    feature: str
    lo: int
    hi: int
    weight: int | Fraction  # a whole weight as an int: sums stay in fast integers

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.region, self.joint, self.feature)


def method_file(method_id: str) -> dict[str, Any]:
    return tomllib.loads((METHODS_DIR / f"{method_id}.toml").read_text(encoding="utf-8"))


def method_areas(method_id: str) -> list[OArea]:
    """The method's areas in the reads CSV's order: region (LH, RH, LF, RF), then the file's."""
    data = method_file(method_id)
    if "derived_from" in data:
        raise ValueError(f"{method_id} is derived; it has no reads of its own")
    out: list[OArea] = []
    for group in data["areas"]:
        feature = data["features"][group["feature"]]
        parts = max(1, len(group.get("sides", [])))  # foot erosion: the sum of two sides
        for region in group["regions"]:
            for joint in group["joints"]:
                out.append(
                    OArea(
                        region,
                        joint,
                        group["feature"],
                        feature["min"] * parts,
                        feature["max"] * parts,
                        _weight(group.get("weight", 1)),
                    )
                )
    out.sort(key=lambda a: REGION_ORDER.index(a.region))  # stable: file order within a region
    return out


def _weight(raw: float) -> int | Fraction:
    w = Fraction(raw)
    return w.numerator if w.denominator == 1 else w


def scored_methods() -> list[str]:
    """The methods a reads CSV can carry (derived ones, such as SENS, are computed)."""
    return sorted(
        p.stem for p in METHODS_DIR.glob("*.toml") if "derived_from" not in method_file(p.stem)
    )


@dataclass(frozen=True)
class Rules:
    """The missing-data rules, as `scorer analyze` takes them on its command line."""

    areas: str = "paired_proportional"  # or mean_imputation, missing
    max_unused_percent: str = "25"
    operated: str = "missing"  # or max
    visits: str = "missing"  # or locf, linear

    @property
    def share(self) -> Fraction:
        return Fraction(self.max_unused_percent) / 100

    def cli(self) -> list[str]:
        return [
            "--missing-areas",
            self.areas,
            "--max-unused",
            self.max_unused_percent,
            "--operated",
            self.operated,
            "--missing-visits",
            self.visits,
        ]


@dataclass
class ORead:
    read_id: str
    patient: str
    visit: str
    visit_date: date | None
    reader: str
    method: str
    read_type: str
    status: str
    # area key -> (score, reason); score None when not assessable
    scores: dict[tuple[str, str, str], tuple[int | None, str]]


def read_csv(text: str) -> list[ORead]:
    """The reads of a reads CSV (spec §9), one per read_id in order of first appearance."""
    text = text.removeprefix("\ufeff")
    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    col = {name: df[name].tolist() for name in df.columns}
    reads: list[ORead] = []
    for rid, index in df.groupby("read_id", sort=False).indices.items():
        first = {name: values[index[0]] for name, values in col.items()}
        scores: dict[tuple[str, str, str], tuple[int | None, str]] = {}
        for i in index:
            scores[(col["region"][i], col["joint"][i], col["feature"][i])] = (
                int(col["score"][i]) if col["assessable"][i] == "1" else None,
                col["reason"][i],
            )
        vd = first["visit_date"]
        reads.append(
            ORead(
                read_id=str(rid),
                patient=first["patient"],
                visit=first["visit"],
                visit_date=date.fromisoformat(vd) if vd else None,
                reader=first["reader"],
                method=first["method"],
                read_type=first["read_type"],
                status=first["read_status"],
                scores=scores,
            )
        )
    return reads


# --- totals -----------------------------------------------------------------------------------


def natural_key(label: str) -> tuple[tuple[int, int | str], ...]:
    parts = [p for p in re.split(r"([0-9]+)", label) if p]
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def groups_of(areas: Sequence[OArea]) -> list[list[OArea]]:
    """The (region, feature) groups of a method, in order of first appearance."""
    seen: dict[tuple[str, str], list[OArea]] = {}
    for a in areas:
        seen.setdefault((a.region, a.feature), []).append(a)
    return list(seen.values())


def area_value(a: OArea, read: ORead, rules: Rules) -> int | None:
    """What an area adds to totals: its score; an operated area its maximum under ``max``."""
    score, reason = read.scores[a.key]
    if score is not None:
        return score
    if reason == "operated" and rules.operated == "max":
        return a.hi
    return None


def group_total(pairs: Sequence[tuple[OArea, int | None]], rules: Rules) -> Num:
    """A (region, feature) total: the areas used, scaled up by all / used (spec §6)."""
    used = [(a, v) for a, v in pairs if v is not None]
    n = len(pairs)
    weighted = Fraction(sum(a.weight * v for a, v in used))
    if rules.areas == "missing":
        return weighted if len(used) == n else None
    if not used or Fraction(n - len(used), n) > rules.share:
        return None
    full = sum(a.weight for a, _ in pairs)
    part = sum(a.weight for a, _ in used)
    return weighted * full / part


def status_total(read: ORead, areas: Sequence[OArea], rules: Rules) -> Num:
    total = Fraction(0)
    for group in groups_of(areas):
        t = group_total([(a, area_value(a, read, rules)) for a in group], rules)
        if t is None:
            return None
        total += t
    return total


def change_total(r0: ORead, r1: ORead, areas: Sequence[OArea], rules: Rules) -> Num:
    """Later − earlier; under paired proportional each group keeps the areas scored at both."""
    total = Fraction(0)
    for group in groups_of(areas):
        v0 = [area_value(a, r0, rules) for a in group]
        v1 = [area_value(a, r1, rules) for a in group]
        if rules.areas == "paired_proportional":
            both = [x is not None and y is not None for x, y in zip(v0, v1, strict=True)]
            v0 = [x if b else None for x, b in zip(v0, both, strict=True)]
            v1 = [y if b else None for y, b in zip(v1, both, strict=True)]
        t0 = group_total(list(zip(group, v0, strict=True)), rules)
        t1 = group_total(list(zip(group, v1, strict=True)), rules)
        if t0 is None or t1 is None:
            return None
        total += t1 - t0
    return total


# --- statistics -----------------------------------------------------------------------------


def f(x: Num) -> float | None:
    return None if x is None else float(x)


def sqrt(x: Fraction) -> float:
    return math.sqrt(float(x))


def quantile7(ordered: Sequence[Fraction], p: Fraction) -> Fraction:
    """Hyndman & Fan type 7: linear between order statistics at h = (n − 1)p."""
    h = (len(ordered) - 1) * p
    lo = math.floor(h)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (h - lo) * (ordered[hi] - ordered[lo])


def variance(values: Sequence[Fraction]) -> Fraction:
    m = sum(values, Fraction(0)) / len(values)
    return sum(((x - m) ** 2 for x in values), Fraction(0)) / (len(values) - 1)


def summary(values: Sequence[Fraction]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    s = sorted(values)
    n = len(s)
    return {
        "n": n,
        "mean": float(sum(s, Fraction(0)) / n),
        "sd": sqrt(variance(s)) if n > 1 else None,
        "median": float(quantile7(s, Fraction(1, 2))),
        "q1": float(quantile7(s, Fraction(1, 4))),
        "q3": float(quantile7(s, Fraction(3, 4))),
        "min": float(s[0]),
        "max": float(s[-1]),
    }


@dataclass(frozen=True)
class Anova:
    n: int
    k: int
    bms: Fraction
    wms: Fraction
    jms: Fraction
    ems: Fraction


def anova(rows: Sequence[Sequence[Fraction]]) -> Anova:
    """Two-way ANOVA mean squares (Shrout & Fleiss 1979) of complete n × k ratings, exact."""
    n, k = len(rows), len(rows[0])
    grand = sum((x for r in rows for x in r), Fraction(0)) / (n * k)
    row_m = [sum(r, Fraction(0)) / k for r in rows]
    col_m = [sum((r[j] for r in rows), Fraction(0)) / n for j in range(k)]
    ss_total = sum(((x - grand) ** 2 for r in rows for x in r), Fraction(0))
    ss_rows = k * sum(((m - grand) ** 2 for m in row_m), Fraction(0))
    ss_cols = n * sum(((m - grand) ** 2 for m in col_m), Fraction(0))
    ss_err = ss_total - ss_rows - ss_cols
    return Anova(
        n=n,
        k=k,
        bms=ss_rows / (n - 1),
        wms=(ss_total - ss_rows) / (n * (k - 1)),
        jms=ss_cols / (k - 1),
        ems=ss_err / ((n - 1) * (k - 1)),
    )


def _div(a: Fraction, b: Fraction) -> float | None:
    return None if b == 0 else float(a / b)


def _fq(q: float, d1: float, d2: float) -> float:
    return float(stats.f.ppf(q, d1, d2))


def icc_table(rows: Sequence[Sequence[Fraction]], confidence: float = 0.95) -> dict[str, Any]:
    """The six Shrout & Fleiss ICCs of complete ratings, with their confidence intervals where
    the F ratios are finite and positive (None otherwise: the oracle does not check those)."""
    a = anova(rows)
    n, k = a.n, a.k
    bms, wms, jms, ems = a.bms, a.wms, a.jms, a.ems
    q = 1 - (1 - confidence) / 2
    values = {
        "ICC(1,1)": _div(bms - wms, bms + (k - 1) * wms),
        "ICC(2,1)": _div(bms - ems, bms + (k - 1) * ems + k * (jms - ems) / n),
        "ICC(3,1)": _div(bms - ems, bms + (k - 1) * ems),
        "ICC(1,k)": _div(bms - wms, bms),
        "ICC(2,k)": _div(bms - ems, bms + (jms - ems) / n),
        "ICC(3,k)": _div(bms - ems, bms),
    }
    df1, df_w, df_e = n - 1, n * (k - 1), (n - 1) * (k - 1)
    f_one = float(bms / wms) if wms else None
    f_two = float(bms / ems) if ems else None
    ci: dict[str, tuple[float, float] | None] = dict.fromkeys(values)
    if f_one and f_one > 0:
        lo = f_one / _fq(q, df1, df_w)
        hi = f_one * _fq(q, df_w, df1)
        ci["ICC(1,1)"] = ((lo - 1) / (lo + k - 1), (hi - 1) / (hi + k - 1))
        ci["ICC(1,k)"] = (1 - 1 / lo, 1 - 1 / hi)
    if f_two and f_two > 0:
        lo = f_two / _fq(q, df1, df_e)
        hi = f_two * _fq(q, df_e, df1)
        ci["ICC(3,1)"] = ((lo - 1) / (lo + k - 1), (hi - 1) / (hi + k - 1))
        ci["ICC(3,k)"] = (1 - 1 / lo, 1 - 1 / hi)
    rho = values["ICC(2,1)"]
    if rho is not None and rho < 1 and ems > 0:
        # McGraw & Wong 1996, ICC(A,1) and ICC(A,k): Satterthwaite's degrees of freedom.
        B, J, E = float(bms), float(jms), float(ems)
        aa = k * rho / (n * (1 - rho))
        bb = 1 + k * rho * (n - 1) / (n * (1 - rho))
        v = (aa * J + bb * E) ** 2 / ((aa * J) ** 2 / (k - 1) + (bb * E) ** 2 / df_e)
        fl, fu = _fq(q, n - 1, v), _fq(q, v, n - 1)
        c = k * J + (k * n - k - n) * E
        ci["ICC(2,1)"] = (
            n * (B - fl * E) / (fl * c + n * B),
            n * (fu * B - E) / (c + n * fu * B),
        )
        ci["ICC(2,k)"] = (
            n * (B - fl * E) / (fl * (J - E) + n * B),
            n * (fu * B - E) / (J - E + n * fu * B),
        )
    out: dict[str, Any] = {}
    for form, value in values.items():
        one_way = form.startswith("ICC(1,")
        fv = f_one if one_way else f_two
        d = (df1, df_w) if one_way else (df1, df_e)
        out[form] = {
            "value": value,
            "ci": ci[form],
            "n": n,
            "k": k,
            "f_value": fv,
            "df1": d[0],
            "df2": d[1],
            "p_value": None if fv is None else float(stats.f.sf(fv, *d)),
        }
    return out


def icc_or_none(rows: Sequence[Sequence[Fraction]]) -> dict[str, Any] | None:
    """docs/incomplete-designs.md: not estimable with fewer than 3 targets or 2 readers, or
    when every rating is the same."""
    if len(rows) < MIN_ICC_TARGETS or not rows or len(rows[0]) < 2:
        return None
    if len({x for r in rows for x in r}) == 1:
        return None
    return icc_table(rows)


def bland_altman(pairs: Sequence[tuple[Fraction, Fraction]]) -> dict[str, Any]:
    d = [x - y for x, y in pairs]
    m = sum(d, Fraction(0)) / len(d)
    sd = sqrt(variance(d))
    return {
        "n": len(d),
        "mean_diff": float(m),
        "sd_diff": sd,
        "loa_low": float(m) - LOA_Z * sd,
        "loa_high": float(m) + LOA_Z * sd,
    }


def kappa(xs: Sequence[int], ys: Sequence[int], lo: int, hi: int) -> dict[str, Any]:
    """Cohen's weighted kappa over the full range lo..hi, in whole numbers until the end."""
    n = len(xs)
    if n == 0:
        return {"n": 0, "estimable": False, "linear": None, "quadratic": None}
    size = hi - lo + 1
    cells = (np.asarray(xs, dtype=np.int64) - lo) * size + (np.asarray(ys, dtype=np.int64) - lo)
    table = np.bincount(cells, minlength=size * size).reshape(size, size)
    i = np.arange(size)
    dist = np.abs(i[:, None] - i[None, :])
    exact = int(np.trace(table))
    within = int(table[dist <= 1].sum())
    out: dict[str, Any] = {
        "n": n,
        "pct_exact": float(Fraction(100 * exact, n)),
        "pct_within_one": float(Fraction(100 * within, n)),
    }
    rows, cols = table.sum(axis=1), table.sum(axis=0)
    out["estimable"] = not (
        np.count_nonzero(rows) == 1
        and np.count_nonzero(cols) == 1
        and rows.argmax() == cols.argmax()
    )
    if not out["estimable"]:
        out.update(linear=None, quadratic=None, unweighted=None)
        return out
    expected = np.outer(rows, cols)  # × n² of the proportions
    span = size - 1
    for name, w in (
        ("linear", span - dist),  # × (K − 1) of 1 − |i − j| / (K − 1)
        ("quadratic", span**2 - dist**2),
        ("unweighted", (dist == 0).astype(np.int64)),
    ):
        scale = int(w.max())
        po = int((w * table).sum()) * n  # all over n² · scale
        pe = int((w * expected).sum())
        out[name] = float(Fraction(po - pe, n * n * scale - pe))
    return out


# --- the analysis -----------------------------------------------------------------------------


def visit_order(reads: Sequence[ORead]) -> list[str]:
    """Visits by the median over patients of the patient's date of the visit (the earliest of
    its reads), ties and undated visits by the label's number."""
    uniq = sorted({r.visit for r in reads}, key=natural_key)
    own: dict[tuple[str, str], int] = {}
    for r in reads:
        if r.visit_date is not None:
            day = r.visit_date.toordinal()
            own[(r.patient, r.visit)] = min(own.get((r.patient, r.visit), day), day)
    middle: dict[str, Fraction] = {}
    for v in uniq:
        days = sorted(d for (_, w), d in own.items() if w == v)
        if not days:
            return uniq
        half = len(days) // 2
        middle[v] = (
            Fraction(days[half]) if len(days) % 2 else Fraction(days[half - 1] + days[half], 2)
        )
    return sorted(uniq, key=lambda v: (middle[v], natural_key(v)))


def analyse(text: str, rules: Rules | None = None) -> dict[str, Any]:
    """What `scorer analyze --format json` reports of a reads CSV, under ``rules``.

    Raises ValueError where the analysis has nothing to analyse."""
    rules = rules or Rules()
    reads = read_csv(text)
    ids = sorted({r.method for r in reads})
    method = "svh" if "svh" in ids else ids[0]
    areas = method_areas(method)
    chosen = [
        r for r in reads if r.method == method and r.read_type == "primary" and r.status == "signed"
    ]
    if not chosen:
        raise ValueError("nothing to analyse")
    table: dict[tuple[str, str, str], ORead] = {}
    for r in chosen:
        key = (r.patient, r.visit, r.reader)
        if key in table:
            raise ValueError(f"two primary signed reads of {key}")
        table[key] = r
    readers = sorted({r.reader for r in chosen})
    patients = sorted({r.patient for r in chosen})
    label_date: dict[str, date | None] = {}
    for r in chosen:
        if r.visit_date is not None:
            cur = label_date.get(r.visit)
            label_date[r.visit] = r.visit_date if cur is None else min(cur, r.visit_date)
    visits = visit_order(chosen)
    tot: dict[tuple[str, str, str], Fraction] = {}
    for key, r in table.items():
        t = status_total(r, areas, rules)
        if t is not None:
            tot[key] = t

    out: dict[str, Any] = {
        "method": method,
        "n_patients": len(patients),
        "readers": readers,
        "visits": visits,
        "from": None if len(visits) == 1 else visits[0],
        "to": None if len(visits) == 1 else visits[-1],
    }
    out["totals"] = {
        v: {
            "date": None if label_date.get(v) is None else label_date[v].isoformat(),  # type: ignore[union-attr]
            "readers": {
                rd: summary([tot[(p, v, rd)] for p in patients if (p, v, rd) in tot])
                for rd in readers
            },
        }
        for v in visits
    }

    # Status: a target is a (patient, visit).
    status_targets = [(p, v) for p in patients for v in visits]
    status_cells = {
        ((p, v), rd): tot[(p, v, rd)]
        for p, v in status_targets
        for rd in readers
        if (p, v, rd) in tot
    }
    by_visit = {v: [(p, v) for p in patients] for v in visits}
    icc_out: dict[str, Any] = {"pairwise": []}
    multi = len(readers) >= 2
    icc_out["status"], icc_out["status_n"] = _icc_all(status_targets, readers, status_cells)
    icc_out["status_anova"] = _anova_all(status_targets, readers, status_cells)
    icc_out["status_by_visit"] = {
        v: _icc_all(ts, readers, status_cells)[0] if multi else None for v, ts in by_visit.items()
    }
    if multi:
        icc_out["pairwise"] += _icc_pairs("status", None, status_targets, readers, status_cells)
        if len(visits) > 1:
            for v, ts in by_visit.items():
                icc_out["pairwise"] += _icc_pairs("status", v, ts, readers, status_cells)
    else:
        icc_out["status_n"] = 0
    out["icc"] = icc_out
    out["bland_altman"] = _ba_rows("status", status_targets, readers, status_cells)
    out["kappa"] = _kappa_rows(areas, table, readers, patients, visits) if multi else []
    out["change"] = None
    out["sdc"] = None
    out["progression"] = None
    out["cumulative_probability"] = None
    icc_out["change"], icc_out["change_n"], icc_out["change_anova"] = None, 0, None
    if len(visits) > 1:
        _change(out, areas, table, tot, readers, patients, visits, label_date, rules)
    return out


def _complete(
    targets: Sequence[Any], readers: Sequence[str], cells: dict[tuple[Any, str], Fraction]
) -> list[list[Fraction]]:
    return [
        [cells[(t, rd)] for rd in readers]
        for t in targets
        if all((t, rd) in cells for rd in readers)
    ]


def _icc_all(
    targets: Sequence[Any], readers: Sequence[str], cells: dict[tuple[Any, str], Fraction]
) -> tuple[dict[str, Any] | None, int]:
    rows = _complete(targets, readers, cells)
    return (icc_or_none(rows) if len(readers) >= 2 else None), len(rows)


def _anova_all(
    targets: Sequence[Any], readers: Sequence[str], cells: dict[tuple[Any, str], Fraction]
) -> Anova | None:
    """The mean squares behind the all-reader ICC, shown from 2 complete targets on."""
    rows = _complete(targets, readers, cells)
    return anova(rows) if len(rows) >= 2 and len(readers) >= 2 else None


def _icc_pairs(
    measure: str,
    visit: str | None,
    targets: Sequence[Any],
    readers: Sequence[str],
    cells: dict[tuple[Any, str], Fraction],
) -> list[dict[str, Any]]:
    out = []
    for a, b in itertools.combinations(readers, 2):
        rows = _complete(targets, [a, b], cells)
        out.append(
            {
                "measure": measure,
                "visit": visit,
                "reader_a": a,
                "reader_b": b,
                "n": len(rows),
                "icc": icc_or_none(rows),
            }
        )
    return out


def _ba_rows(
    measure: str,
    targets: Sequence[Any],
    readers: Sequence[str],
    cells: dict[tuple[Any, str], Fraction],
) -> list[dict[str, Any]]:
    out = []
    for a, b in itertools.combinations(readers, 2):
        pairs = [
            (cells[(t, a)], cells[(t, b)]) for t in targets if (t, a) in cells and (t, b) in cells
        ]
        if len(pairs) >= 2:
            out.append({"measure": measure, "reader_a": a, "reader_b": b, **bland_altman(pairs)})
    return out


def _kappa_rows(
    areas: Sequence[OArea],
    table: dict[tuple[str, str, str], ORead],
    readers: Sequence[str],
    patients: Sequence[str],
    visits: Sequence[str],
) -> list[dict[str, Any]]:
    out = []
    joints: dict[tuple[str, str, str], list[OArea]] = {}
    for d in areas:
        joints.setdefault((KIND[d.region], d.joint, d.feature), []).append(d)
    for a, b in itertools.combinations(readers, 2):
        both = [
            (table[(p, v, a)], table[(p, v, b)])
            for p in patients
            for v in visits
            if (p, v, a) in table and (p, v, b) in table
        ]
        # Per area, the pairs of scores both readers gave (not-assessable areas left out).
        given = {
            d.key: [
                (ra.scores[d.key][0], rb.scores[d.key][0])
                for ra, rb in both
                if ra.scores[d.key][0] is not None and rb.scores[d.key][0] is not None
            ]
            for d in areas
        }
        for (kind, joint, feature), defs in joints.items():
            pooled_x: list[int] = []
            pooled_y: list[int] = []
            for d in defs:
                xs = [x for x, _ in given[d.key]]
                ys = [y for _, y in given[d.key]]
                pooled_x += xs
                pooled_y += ys
                out.append(
                    {
                        "reader_a": a,
                        "reader_b": b,
                        "region": d.region,
                        "region_kind": kind,
                        "joint": joint,
                        "feature": feature,
                        **kappa(xs, ys, d.lo, d.hi),
                    }
                )
            if len(defs) > 1:
                out.append(
                    {
                        "reader_a": a,
                        "reader_b": b,
                        "region": POOLED[kind],
                        "region_kind": kind,
                        "joint": joint,
                        "feature": feature,
                        **kappa(
                            pooled_x,
                            pooled_y,
                            min(d.lo for d in defs),
                            max(d.hi for d in defs),
                        ),
                    }
                )
    return out


def _fill(
    table: dict[tuple[str, str, str], ORead],
    areas: Sequence[OArea],
    rules: Rules,
    patient: str,
    reader: str,
    visits: Sequence[str],
    label_date: dict[str, date | None],
) -> Num:
    """A reader's missing last visit under the missing-visit rule, from their earlier visits
    at their actual dates, at the visit's (earliest) date; None when it cannot be filled."""
    target = label_date.get(visits[-1])
    base = status_total(table[(patient, visits[0], reader)], areas, rules)
    if rules.visits == "missing" or target is None or base is None:
        return None
    points = []
    for v in visits[:-1]:
        r = table.get((patient, v, reader))
        if r is None:
            continue
        when = r.visit_date or label_date.get(v)
        value = status_total(r, areas, rules)
        if when is not None and value is not None and when < target:
            points.append(((when - target).days, value))
    points.sort()
    if not points:
        return None
    if rules.visits == "locf":
        return points[-1][1] - base
    if len(points) < 2 or points[-1][0] == points[-2][0]:
        return None
    (t0, v0), (t1, v1) = points[-2], points[-1]
    return v1 + (v1 - v0) * Fraction(0 - t1, t1 - t0) - base


def _visit_date(table: dict[tuple[str, str, str], ORead], patient: str, visit: str) -> date | None:
    dates = [
        r.visit_date
        for (p, v, _), r in table.items()
        if p == patient and v == visit and r.visit_date is not None
    ]
    return min(dates, default=None)


def _change(
    out: dict[str, Any],
    areas: Sequence[OArea],
    table: dict[tuple[str, str, str], ORead],
    tot: dict[tuple[str, str, str], Fraction],
    readers: Sequence[str],
    patients: Sequence[str],
    visits: Sequence[str],
    label_date: dict[str, date | None],
    rules: Rules,
) -> None:
    v0, v1 = visits[0], visits[-1]
    ch: dict[tuple[str, str], Fraction] = {}
    for p in patients:
        for rd in readers:
            r0, r1 = table.get((p, v0, rd)), table.get((p, v1, rd))
            value: Num = None
            if r0 is not None and r1 is not None:
                value = change_total(r0, r1, areas, rules)
            elif r0 is not None:
                value = _fill(table, areas, rules, p, rd, visits, label_date)
            if value is not None:
                ch[(p, rd)] = value
    rows = []
    means: dict[str, Fraction] = {}
    annual: dict[str, Fraction] = {}
    for p in patients:
        have = [ch[(p, rd)] for rd in readers if (p, rd) in ch]
        row: dict[str, Any] = {
            "patient": p,
            "readers": {rd: f(ch.get((p, rd))) for rd in readers},
            "n_readers": len(have),
            "mean": None,
            "annualised": None,
        }
        if have:
            means[p] = sum(have, Fraction(0)) / len(have)
            row["mean"] = float(means[p])
            # The patient's visit dates: the earliest among the analysed reads of each visit.
            d0 = _visit_date(table, p, v0)
            d1 = _visit_date(table, p, v1)
            if d0 is not None and d1 is not None and (d1 - d0).days >= MIN_DAYS:
                annual[p] = means[p] * DAYS_PER_YEAR / (d1 - d0).days
                row["annualised"] = float(annual[p])
        rows.append(row)
    out["change"] = {
        "readers": {
            rd: summary([ch[(p, rd)] for p in patients if (p, rd) in ch]) for rd in readers
        },
        "reader_mean": summary(list(means.values())),
        "patients": rows,
    }
    cells = {(p, rd): v for (p, rd), v in ch.items()}
    icc_out = out["icc"]
    if len(readers) >= 2:
        icc_out["change"], icc_out["change_n"] = _icc_all(patients, readers, cells)
        icc_out["change_anova"] = _anova_all(patients, readers, cells)
        icc_out["pairwise"] += _icc_pairs("change", None, patients, readers, cells)
        out["bland_altman"] += _ba_rows("change", patients, readers, cells)
    out["sdc"] = _sdc(patients, readers, cells)

    # Progression (spec §6) with the default thresholds.
    s = out["sdc"]
    sdc95 = s["exact"][(95, s["k"])] if s else None
    sdc80 = s["exact"][(80, s["k"])] if s else None
    sdc1 = {95: s["exact"][(95, 1)], 80: s["exact"][(80, 1)]} if s else None
    prog = []
    for kind, cut, cut1 in (
        ("sdc95", sdc95, sdc1 and sdc1[95]),
        ("sdc80", sdc80, sdc1 and sdc1[80]),
        ("fixed", 0.0, 0.0),
        ("fixed", 0.5, 0.5),
    ):
        entry: dict[str, Any] = {"kind": kind, "op": ">", "cutoff": cut, "n": len(means)}
        if cut is None or not means:
            entry.update(n_progressors=None, per_reader=None)
        else:
            k = sum(1 for m in means.values() if m > Fraction(cut))
            entry.update(
                n_progressors=k,
                pct=float(Fraction(100 * k, len(means))),
                per_reader={
                    rd: {
                        "n": sum(1 for p in patients if (p, rd) in ch),
                        "n_progressors": sum(
                            1 for p in patients if (p, rd) in ch and ch[(p, rd)] > Fraction(cut1)
                        ),
                    }
                    for rd in readers
                },
            )
        prog.append(entry)
    rapid = {"kind": "rapid", "op": ">=", "cutoff": 5.0, "n": len(annual)}
    if annual:
        k = sum(1 for a in annual.values() if a >= 5)
        rapid.update(n_progressors=k, pct=float(Fraction(100 * k, len(annual))))
    else:
        rapid.update(n_progressors=None)
    prog.append(rapid)
    out["progression"] = {"thresholds": prog}
    if means:
        ordered = sorted(means.values())
        n = len(ordered)
        out["cumulative_probability"] = {
            "n": n,
            "change": [float(x) for x in ordered],
            "probability_pct": [float(Fraction(100 * (2 * i - 1), 2 * n)) for i in range(1, n + 1)],
            "sdc": sdc95,
        }


def _sdc(
    patients: Sequence[str], readers: Sequence[str], cells: dict[tuple[str, str], Fraction]
) -> dict[str, Any] | None:
    """Spec §6's SDC on the largest complete block (docs/incomplete-designs.md), found by
    trying every set of two or more readers; and the SDC of every pair (k = 2)."""
    with_change = [rd for rd in readers if any((p, rd) in cells for p in patients)]
    if len(with_change) < 2:
        return None
    best: tuple[int, int, tuple[str, ...]] | None = None
    for size in range(2, len(readers) + 1):
        for subset in itertools.combinations(readers, size):
            n = len(_complete(patients, subset, cells))
            key = (-n, -size, subset)
            if best is None or key < best:
                best = key
    assert best is not None
    n, block = -best[0], best[2]
    if n < 2:
        return None
    rows = _complete(patients, block, cells)
    ems = anova(rows).ems
    k = len(block)
    exact = {(lv, kk): SDC_Z[lv] * sqrt(ems) / math.sqrt(kk) for lv in (95, 80) for kk in (k, 1)}
    pairwise = []
    for a, b in itertools.combinations(readers, 2):
        pr = _complete(patients, (a, b), cells)
        if len(pr) < 2:
            continue
        sd = sqrt(variance([x - y for x, y in pr]))
        pairwise.append(
            {
                "reader_a": a,
                "reader_b": b,
                "n": len(pr),
                "sd_diff": sd,
                "sdc95": SDC_Z[95] * sd / 2,  # z · SD(d) / (√2 · √2)
                "sdc80": SDC_Z[80] * sd / 2,
            }
        )
    d = [r[0] - r[1] for r in rows] if k == 2 else None
    return {
        "readers": list(block),
        "n": n,
        "n_readers": k,
        "k": k,
        "ems": float(ems),
        "sd_diff": sqrt(variance(d)) if d is not None else math.sqrt(2 * float(ems)),
        "exact": exact,
        "pairwise": pairwise,
    }
