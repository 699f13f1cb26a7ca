"""Ordering visit labels: by date where dates are known, else by the number in the label."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date

_NUM = re.compile(r"([0-9]+)")


def natural_key(label: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key that orders W2 before W10 and M6 before M12."""
    return tuple(
        (0, int(p)) if p.isascii() and p.isdigit() else (1, p) for p in _NUM.split(label) if p
    )


def order_visits(
    labels: Iterable[str], dates: Mapping[str, date | None] | None = None
) -> list[str]:
    """Visit labels in time order: by their earliest date when every visit has one, else by
    the number in the label (W0, W24, W52)."""
    uniq = sorted(set(labels), key=natural_key)
    if dates and all(dates.get(v) is not None for v in uniq):
        return sorted(uniq, key=lambda v: (dates[v], natural_key(v)))
    return uniq
