"""Calibration: a reader's reads of the training set against the reference reads.

:func:`feedback` lists, area by area, the reader's score beside the reference's (shown to the
reader after they sign a calibration case). :func:`agreement` sums up a reader's calibration:
the status ICC against the reference over (patient, visit) targets, and per feature the share
of areas graded exactly as the reference and within one grade.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scorer.core.methods import Area, Method
from scorer.core.reads import AreaScore, Read
from scorer.core.totals import MissingDataRules, status_totals
from scorer.stats.icc import icc


@dataclass(frozen=True)
class AreaFeedback:
    """One area: the reader's entry, the reference's, and how far apart they are."""

    area: Area
    yours: AreaScore | None
    reference: AreaScore | None

    @property
    def difference(self) -> int | None:
        """Reader minus reference, where both graded the area."""
        if self.yours is None or self.reference is None:
            return None
        if self.yours.score is None or self.reference.score is None:
            return None
        return self.yours.score - self.reference.score

    @property
    def verdict(self) -> str:
        """``same``, ``within one``, ``differs``, or ``not comparable`` (not assessable)."""
        d = self.difference
        if d is None:
            same_na = (
                self.yours is not None
                and self.reference is not None
                and self.yours.score is None
                and self.reference.score is None
            )
            return "same" if same_na else "not comparable"
        if d == 0:
            return "same"
        return "within one" if abs(d) == 1 else "differs"


def feedback(read: Read, reference: Read, method: Method) -> list[AreaFeedback]:
    """Every area of the method: the reader's entry against the reference's."""
    return [
        AreaFeedback(d.area, read.scores.get(d.area), reference.scores.get(d.area))
        for d in method.areas
    ]


def agreement(
    pairs: Sequence[tuple[Read, Read]], method: Method, rules: MissingDataRules | None = None
) -> dict[str, Any]:
    """A reader's calibration against the reference over (reader read, reference read) pairs
    of the same patient and visit: status ICC(A,1) with n; per feature the areas compared,
    % exact and % within one grade (``features``), and the same per region kind and feature
    (``by_region_kind``: ``hand`` and ``foot``, each keyed by feature)."""
    rules = rules or MissingDataRules()
    totals = []
    for mine, ref in pairs:
        a = status_totals(mine, method, rules).total
        b = status_totals(ref, method, rules).total
        if a is not None and b is not None:
            totals.append((a, b))
    out: dict[str, Any] = {"targets": len(pairs), "icc_n": len(totals)}
    if len(totals) >= 2:
        result = icc(np.array(totals, dtype=float))["ICC(2,1)"]
        value = None if math.isnan(result.value) else round(result.value, 4)
        low = None if math.isnan(result.ci_low) else round(result.ci_low, 4)
        high = None if math.isnan(result.ci_high) else round(result.ci_high, 4)
        out["icc"] = {"form": "ICC(A,1)", "value": value, "ci_low": low, "ci_high": high}
    else:
        out["icc"] = None
    # Counts per (region kind, feature): the thumb's IP1 (hands, 0-5) and the hallux's IP1
    # (feet, 0-10) are different joints on different scales, so hands and feet apart.
    counts: dict[tuple[str, str], list[int]] = {}
    for mine, ref in pairs:
        for d in method.areas:
            fb = AreaFeedback(d.area, mine.scores.get(d.area), ref.scores.get(d.area))
            diff = fb.difference
            if diff is None:
                continue
            c = counts.setdefault((d.area.kind, d.feature), [0, 0, 0])
            c[0] += 1
            c[1] += diff == 0
            c[2] += abs(diff) <= 1

    def share(n: int, exact: int, within: int) -> dict[str, Any]:
        return {
            "n": n,
            "pct_exact": round(100 * exact / n, 1),
            "pct_within_one": round(100 * within / n, 1),
        }

    features: dict[str, dict[str, Any]] = {}
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for feature in method.features:
        found = [c for (_, f), c in counts.items() if f == feature]
        if found:
            features[feature] = share(
                sum(c[0] for c in found), sum(c[1] for c in found), sum(c[2] for c in found)
            )
    for kind in ("hand", "foot"):
        for feature in method.features:
            if (kind, feature) in counts:
                by_kind.setdefault(kind, {})[feature] = share(*counts[(kind, feature)])
    out["features"] = features
    out["by_region_kind"] = by_kind
    return out
