"""Totals of a read by feature and region, change between visits, and the missing-area rules.

Spec §6: by default ("paired proportional") each (region, feature) total of a change uses only
the areas assessable at both visits, scaled up by all areas / areas used; when more than a set
share of them are unused that total is missing, and so is every total built on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal

from scorer.core.methods import Area, AreaDef, Method
from scorer.core.reads import AreaScore, Read

AreaRule = Literal["paired_proportional", "mean_imputation", "missing"]
OperatedRule = Literal["missing", "max"]
VisitRule = Literal["missing", "locf", "linear"]
Group = tuple[str, str]

AREA_RULES: tuple[str, ...] = ("paired_proportional", "mean_imputation", "missing")
OPERATED_RULES: tuple[str, ...] = ("missing", "max")
VISIT_RULES: tuple[str, ...] = ("missing", "locf", "linear")
MIN_ANNUALISATION_DAYS = 30
DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class MissingDataRules:
    """How unscored areas, operated joints and missing visits are handled (spec §5, §6)."""

    areas: AreaRule = "paired_proportional"
    max_unused_share: float = 0.25
    operated: OperatedRule = "missing"
    visits: VisitRule = "missing"

    def __post_init__(self) -> None:
        if self.areas not in AREA_RULES:
            raise ValueError(f"unknown missing-area rule {self.areas!r} ({', '.join(AREA_RULES)})")
        if self.operated not in OPERATED_RULES:
            raise ValueError(f"unknown operated-joint rule {self.operated!r}")
        if self.visits not in VISIT_RULES:
            raise ValueError(f"unknown missing-visit rule {self.visits!r}")
        if not 0.0 <= self.max_unused_share < 1.0:
            raise ValueError("the share of unused areas must be at least 0 and below 1")

    def describe(self) -> str:
        """One sentence stating the rules in force, printed on every result."""
        if self.areas == "missing":
            area = "any unscored area makes its totals missing"
        else:
            how = (
                "paired proportional (areas assessable at both visits, scaled up)"
                if self.areas == "paired_proportional"
                else "per-visit mean imputation"
            )
            area = (
                f"{how}; a (region, feature) total with over {self.max_unused_share:.0%} "
                "of its areas unused is missing"
            )
        operated = (
            "operated areas take the maximum grade"
            if self.operated == "max"
            else "operated areas count as missing"
        )
        visits = {
            "missing": "missing visits are left missing",
            "locf": "missing visits: last observation carried forward",
            "linear": "missing visits: linear extrapolation on actual dates",
        }[self.visits]
        return f"Missing areas: {area}; {operated}; {visits}."


@dataclass(frozen=True)
class Totals:
    """Totals of one read (or one change): per (region, feature), per feature, per region, all.

    A value of None is a missing total. ``used`` counts, per group, the areas that entered it.
    """

    groups: Mapping[Group, float | None]
    by_feature: Mapping[str, float | None]
    by_region: Mapping[str, float | None]
    total: float | None
    used: Mapping[Group, int]
    size: Mapping[Group, int]

    @property
    def adjusted(self) -> bool:
        """True when some total was scaled up for unused areas."""
        return any(self.used[g] < self.size[g] for g in self.groups)


def _value(area: AreaDef, s: AreaScore | None, rules: MissingDataRules) -> float | None:
    if s is None:
        return None
    if s.score is not None:
        return float(s.score)
    if s.reason == "operated" and rules.operated == "max":
        return float(area.max)
    return None


def _roll_up(
    method: Method,
    groups: dict[Group, float | None],
    used: dict[Group, int],
    size: dict[Group, int],
) -> Totals:
    by_feature: dict[str, float | None] = {}
    for feature in method.features:
        vals = [v for (r, f), v in groups.items() if f == feature]
        by_feature[feature] = (
            None if any(v is None for v in vals) else sum(v for v in vals if v is not None)
        )
    by_region: dict[str, float | None] = {}
    for region in method.regions:
        vals = [v for (r, f), v in groups.items() if r == region]
        by_region[region] = (
            None if any(v is None for v in vals) else sum(v for v in vals if v is not None)
        )
    all_vals = list(groups.values())
    total = None if any(v is None for v in all_vals) else sum(v for v in all_vals if v is not None)
    return Totals(groups, by_feature, by_region, total, used, size)


def _scaled(
    pairs: list[tuple[AreaDef, float | None]], rules: MissingDataRules
) -> tuple[float | None, int]:
    """The weighted total of a group, scaled for unused areas; None if too many are unused."""
    n = len(pairs)
    used = [(a, v) for a, v in pairs if v is not None]
    if rules.areas == "missing":
        if len(used) < n:
            return None, len(used)
        return sum(a.weight * v for a, v in used if v is not None), len(used)
    if not used or (n - len(used)) / n > rules.max_unused_share + 1e-12:
        return None, len(used)
    full = sum(a.weight for a, _ in pairs)
    part = sum(a.weight for a, _ in used)
    return sum(a.weight * v for a, v in used if v is not None) * full / part, len(used)


def status_totals(read: Read, method: Method, rules: MissingDataRules | None = None) -> Totals:
    """Totals of one read, each (region, feature) total scaled for the areas not assessed."""
    rules = rules or MissingDataRules()
    groups: dict[Group, float | None] = {}
    used: dict[Group, int] = {}
    size: dict[Group, int] = {}
    for region, feature in method.groups():
        defs = method.areas_of(region, feature)
        pairs = [(a, _value(a, read.scores.get(a.area), rules)) for a in defs]
        groups[(region, feature)], used[(region, feature)] = _scaled(pairs, rules)
        size[(region, feature)] = len(defs)
    return _roll_up(method, groups, used, size)


def change_totals(
    earlier: Read, later: Read, method: Method, rules: MissingDataRules | None = None
) -> Totals:
    """Change from ``earlier`` to ``later`` (later − earlier) of one reader, per the rules.

    Under "paired proportional" each group uses only the areas assessable at both visits;
    under the other rules the change is the difference of the two visits' own totals.
    """
    rules = rules or MissingDataRules()
    if rules.areas != "paired_proportional":
        a = status_totals(earlier, method, rules)
        b = status_totals(later, method, rules)
        groups: dict[Group, float | None] = {}
        used: dict[Group, int] = {}
        for g in a.groups:
            va, vb = a.groups[g], b.groups[g]
            groups[g] = None if va is None or vb is None else vb - va
            used[g] = min(a.used[g], b.used[g])
        return _roll_up(method, groups, used, dict(a.size))
    groups = {}
    used = {}
    size: dict[Group, int] = {}
    for region, feature in method.groups():
        defs = method.areas_of(region, feature)
        before: list[tuple[AreaDef, float | None]] = []
        after: list[tuple[AreaDef, float | None]] = []
        for d in defs:
            v0 = _value(d, earlier.scores.get(d.area), rules)
            v1 = _value(d, later.scores.get(d.area), rules)
            both = v0 is not None and v1 is not None
            before.append((d, v0 if both else None))
            after.append((d, v1 if both else None))
        t0, n_used = _scaled(before, rules)
        t1, _ = _scaled(after, rules)
        g = (region, feature)
        groups[g] = None if t0 is None or t1 is None else t1 - t0
        used[g] = n_used
        size[g] = len(defs)
    return _roll_up(method, groups, used, size)


def area_value(method: Method, read: Read, area: Area, rules: MissingDataRules) -> float | None:
    """The value an area contributes under the rules (operated may count as maximum)."""
    return _value(method.area(area), read.scores.get(area), rules)


def annualised(change: float, start: date, end: date) -> float:
    """Change per year on actual dates; refused (ValueError) for intervals under 30 days."""
    days = (end - start).days
    if days < MIN_ANNUALISATION_DAYS:
        raise ValueError(
            f"cannot annualise over {days} days: the interval must be at least "
            f"{MIN_ANNUALISATION_DAYS} days"
        )
    return change / (days / DAYS_PER_YEAR)


def fill_missing_visit(
    observed: list[tuple[float, float | None]], target: float, rule: VisitRule
) -> float | None:
    """The value at ``target`` time (days) from earlier observations under a missing-visit rule.

    ``observed`` holds (day, value) pairs of the visits before the target, value None where
    missing. "locf" carries the last observed value forward; "linear" extends the line through
    the last two observed visits to the target day; "missing" leaves it missing.
    """
    points = sorted((t, v) for t, v in observed if v is not None and t < target)
    if rule == "missing" or not points:
        return None
    if rule == "locf":
        return points[-1][1]
    if len(points) < 2:
        return None
    (t0, v0), (t1, v1) = points[-2], points[-1]
    if t1 == t0:
        return None
    return v1 + (v1 - v0) * (target - t1) / (t1 - t0)
