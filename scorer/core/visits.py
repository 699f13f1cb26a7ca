"""Ordering visit labels: by date where dates are known, else by the number in the label."""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

_NUM = re.compile(r"([0-9]+)")


def natural_key(label: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key that orders W2 before W10 and M6 before M12."""
    return tuple(
        (0, int(p)) if p.isascii() and p.isdigit() else (1, p) for p in _NUM.split(label) if p
    )


def order_visits(
    labels: Iterable[str], dates: Mapping[str, date | float | None] | None = None
) -> list[str]:
    """Visit labels in time order: by their date (a date or a day number) when every visit has
    one, the number in the label breaking ties, else by the number in the label (W0, W24,
    W52)."""
    uniq = sorted(set(labels), key=natural_key)
    if dates and all(dates.get(v) is not None for v in uniq):
        return sorted(uniq, key=lambda v: (dates[v], natural_key(v)))
    return uniq


@dataclass(frozen=True)
class VisitOrder:
    """The visits of a set of reads in time order, and why to doubt a patient's dates."""

    visits: list[str]
    #: The earliest date any patient has for each visit (visits without a date left out).
    earliest: dict[str, date]
    #: The median over patients of each patient's date of the visit, as a day number
    #: (``date.toordinal``; a half day where the patients are even in number).
    median: dict[str, float]
    #: Each patient's date of each visit: the earliest among their reads of it (spec §6).
    patient_dates: dict[str, dict[str, date]]
    #: One note per patient whose own visit dates are out of the order, naming the dates.
    notes: list[str]


def visit_order(dated: Iterable[tuple[str, str, date | None]]) -> VisitOrder:
    """The visits of ``(patient, visit, date)`` triples (one a read) in time order.

    A patient's date of a visit is the earliest among their reads of it; the visits are ordered
    by the median over patients of those dates, so one mis-dated visit cannot reorder them, the
    number in the label breaking ties; without a date for every visit, by the number in the
    label alone. A patient whose own dates are out of that order is named in a note."""
    labels: set[str] = set()
    per: dict[str, dict[str, date]] = {}
    for patient, visit, when in dated:
        labels.add(visit)
        if when is None:
            continue
        mine = per.setdefault(patient, {})
        cur = mine.get(visit)
        mine[visit] = when if cur is None else min(cur, when)
    earliest: dict[str, date] = {}
    days: dict[str, list[int]] = {}
    for mine in per.values():
        for visit, when in mine.items():
            cur = earliest.get(visit)
            earliest[visit] = when if cur is None else min(cur, when)
            days.setdefault(visit, []).append(when.toordinal())
    median = {v: float(statistics.median(ds)) for v, ds in days.items()}
    visits = order_visits(labels, median)
    notes: list[str] = []
    for patient in sorted(per, key=natural_key):
        mine = per[patient]
        own = [v for v in visits if v in mine]
        wrong = []
        for i, v in enumerate(own):
            later = [u for u in own[:i] if mine[u] > mine[v]]
            if later:
                wrong.append(f"{v} dated {mine[v].isoformat()} before {'/'.join(later)}")
        if wrong:
            notes.append(f"patient {patient}: {'; '.join(wrong)} — check the visit dates")
    return VisitOrder(visits, earliest, median, per, notes)
