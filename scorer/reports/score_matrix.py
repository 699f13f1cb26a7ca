"""The scores of many reads of one method as one array, and their totals all at once.

A trial's analysis takes the totals of thousands of reads and the change of thousands of
pairs; :mod:`scorer.core.totals` states the rules read by read, this module applies the same
rules to a whole array (a row per read, a column per area in the method's order). The two
agree to the last bit on whole-number scores and weights: each group's weighted sum is exact,
then scaled and added up group by group in the same order (tests/reports hold them to it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scorer.core.methods import Method
from scorer.core.reads import Read
from scorer.core.totals import MissingDataRules
from scorer.reports.reads_columns import ColumnScores, PackedScores

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class ScoreMatrix:
    """Area scores of ``reads``: ``scores[i, j]`` is read i's score of the method's area j,
    NaN where the area is not assessable or not scored; ``operated`` marks the areas not
    assessable because the joint was operated on."""

    method: Method
    scores: FloatArray
    operated: BoolArray

    @classmethod
    def of(cls, method: Method, reads: Sequence[Read]) -> ScoreMatrix:
        packed = _packed_rows(method, reads)
        if packed is not None:
            return packed
        areas = [d.area for d in method.areas]
        rows: list[list[int | None]] = []
        operated: list[list[bool]] = []
        for r in reads:
            get = r.scores.get
            values = [get(a) for a in areas]
            rows.append([None if v is None else v.score for v in values])
            operated.append([v is not None and v.reason == "operated" for v in values])
        shape = (len(reads), len(areas))
        scores = np.array(rows, dtype=np.float64).reshape(shape)  # None -> NaN
        return cls(method, scores, np.array(operated, dtype=bool).reshape(shape))

    def values(self, rules: MissingDataRules) -> FloatArray:
        """The values areas contribute to totals: operated areas at their maximum if the
        rules say so (scores stay as they are: agreement is on what readers scored)."""
        if rules.operated != "max" or not self.operated.any():
            return self.scores
        top = np.array([d.max for d in self.method.areas], dtype=np.float64)
        return np.where(self.operated, top[np.newaxis, :], self.scores)

    def rows(self, index: Sequence[int] | npt.NDArray[np.intp]) -> ScoreMatrix:
        """The matrix of some of the reads, in the order given."""
        i = np.asarray(index, dtype=np.intp)
        return ScoreMatrix(self.method, self.scores[i], self.operated[i])


def _packed_rows(method: Method, reads: Sequence[Read]) -> ScoreMatrix | None:
    """The matrix of reads read by :func:`scorer.reports.reads_columns.read_reads`, from the
    file's columns at once (no per-area Python work); None for any other reads."""
    if not reads:
        return None
    first = reads[0].scores
    if not isinstance(first, ColumnScores):
        return None
    packed = first.packed
    starts: list[int] = []
    stops: list[int] = []
    for r in reads:
        s = r.scores
        if not isinstance(s, ColumnScores) or s.packed is not packed or r.method != method.id:
            return None
        starts.append(s.start)
        stops.append(s.stop)
    scores = np.full((len(reads), len(method.areas)), np.nan)
    operated = np.zeros(scores.shape, dtype=bool)
    # A few thousand reads at a time: the temporaries stay a few megabytes at any size.
    step = 4096
    for at in range(0, len(reads), step):
        _fill_rows(
            packed,
            starts[at : at + step],
            stops[at : at + step],
            scores[at : at + step],
            operated[at : at + step],
        )
    return ScoreMatrix(method, scores, operated)


def _fill_rows(
    packed: PackedScores,
    starts: list[int],
    stops: list[int],
    scores: FloatArray,
    operated: BoolArray,
) -> None:
    """Rows of the matrix (views ``scores``, ``operated``) from the file rows of their reads:
    row i takes the file's rows ``starts[i]`` .. ``stops[i]``."""
    begin = np.array(starts, dtype=np.int64)
    length = np.array(stops, dtype=np.int64) - begin
    if (begin[1:] == begin[:-1] + length[:-1]).all():  # the reads follow one another: a slice
        codes = packed.codes[starts[0] : stops[-1]]
    else:
        at = np.arange(int(length.sum()), dtype=np.int64)
        at += np.repeat(begin - np.concatenate(([0], np.cumsum(length)[:-1])), length)
        codes = packed.codes[at]
    cell = np.repeat(np.arange(len(starts), dtype=np.intp) * scores.shape[1], length)
    cell += packed.places[codes]  # each file row's cell in the rows' flat order
    scores.reshape(-1)[cell] = packed.grades[codes]
    operated.reshape(-1)[cell] = packed.operated[codes]


def _groups(method: Method) -> list[tuple[npt.NDArray[np.intp], FloatArray]]:
    """Per (region, feature) group: its columns and its areas' weights."""
    out = []
    for region, feature in method.groups():
        defs = method.areas_of(region, feature)
        out.append(
            (
                np.array([method.order(d.area) for d in defs], dtype=np.intp),
                np.array([d.weight for d in defs], dtype=np.float64),
            )
        )
    return out


def _scaled(
    x: FloatArray, weights: FloatArray, rules: MissingDataRules
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Per row, the group's weighted total scaled for unused (NaN) areas, NaN when too many
    are unused; and how many areas were used (as :func:`scorer.core.totals._scaled`)."""
    used = ~np.isnan(x)
    n = x.shape[1]
    n_used = used.sum(axis=1)
    weighted = np.where(used, x, 0.0) * weights
    total = weighted.sum(axis=1)
    if rules.areas == "missing":
        return np.where(n_used < n, np.nan, total), n_used
    part = (used * weights).sum(axis=1)
    full = float(weights.sum())
    bad = (n_used == 0) | ((n - n_used) / n > rules.max_unused_share + 1e-12)
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = total * full / part
    return np.where(bad, np.nan, scaled), n_used


@dataclass(frozen=True)
class StatusTotals:
    """Per read: the total (NaN when missing) and whether a group was scaled for unused
    areas (the rule's ``adjusted``)."""

    total: FloatArray
    adjusted: BoolArray


def status_totals(matrix: ScoreMatrix, rules: MissingDataRules | None = None) -> StatusTotals:
    """The total of every read (see :func:`scorer.core.totals.status_totals`)."""
    rules = rules or MissingDataRules()
    values = matrix.values(rules)
    n = values.shape[0]
    total = np.zeros(n)
    adjusted = np.zeros(n, dtype=bool)
    for columns, weights in _groups(matrix.method):
        t, n_used = _scaled(values[:, columns], weights, rules)
        total = total + t  # NaN, a missing group total, makes the total missing
        adjusted |= n_used < len(columns)
    return StatusTotals(total, adjusted)


def change_totals(
    earlier: ScoreMatrix, later: ScoreMatrix, rules: MissingDataRules | None = None
) -> FloatArray:
    """Row by row, the total change from ``earlier`` to ``later`` (NaN when missing); see
    :func:`scorer.core.totals.change_totals`."""
    rules = rules or MissingDataRules()
    v0, v1 = earlier.values(rules), later.values(rules)
    if v0.shape != v1.shape:
        raise ValueError(f"the matrices differ in shape: {v0.shape} and {v1.shape}")
    if rules.areas == "paired_proportional":
        both = ~np.isnan(v0) & ~np.isnan(v1)
        v0 = np.where(both, v0, np.nan)
        v1 = np.where(both, v1, np.nan)
    total = np.zeros(v0.shape[0])
    for columns, weights in _groups(earlier.method):
        t0, _ = _scaled(v0[:, columns], weights, rules)
        t1, _ = _scaled(v1[:, columns], weights, rules)
        total = total + (t1 - t0)
    return total
