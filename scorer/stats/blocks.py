"""The largest complete block of an incomplete patients × readers table.

A block is a set of at least two readers with the patients (rows) every one of them rated. The
SDC of an incomplete design uses spec §6 on the block with the most patients; among those, the
one with the most readers; among those, the first reader set in sorted (column index) order.
See docs/incomplete-designs.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scorer.stats.anova import BoolArray, as_ratings_matrix


@dataclass(frozen=True)
class CompleteBlock:
    """Columns ``readers`` (ascending indices) and the rows ``mask`` every one of them rated."""

    readers: tuple[int, ...]
    mask: BoolArray

    @property
    def n(self) -> int:
        """The number of rows (patients) in the block."""
        return int(self.mask.sum())


def largest_complete_block(x: npt.ArrayLike, min_rows: int = 2) -> CompleteBlock | None:
    """The block of two or more columns with the most complete rows, then the most columns,
    then the first column set in order; None when no block has ``min_rows`` rows.

    NaN marks a missing rating. The choice is exhaustive over every column subset, found in
    O(k² · n) for n rows × k columns rather than by trying all 2^k subsets: adding a column
    never adds rows, so the most rows any block has is the most some pair has; and a block with
    as many rows as its pair {a, b} has exactly that pair's rows, so the most columns it can
    hold are every column that rated all of them.
    """
    matrix = as_ratings_matrix(x)
    has = ~np.isnan(matrix)
    k = matrix.shape[1]
    if k < 2:
        return None
    # shared[a, b] = rows both a and b rated (one matrix product, k × k).
    counts = has.T.astype(np.int64) @ has.astype(np.int64)
    np.fill_diagonal(counts, -1)
    most = int(counts.max())
    if most < max(min_rows, 1):
        return None
    best: tuple[int, ...] | None = None
    best_mask: BoolArray | None = None
    for a, b in zip(*np.nonzero(np.triu(counts == most, k=1)), strict=True):
        rows = has[:, a] & has[:, b]
        cols = tuple(int(c) for c in np.nonzero(has[rows].all(axis=0))[0])
        if best is None or (-len(cols), cols) < (-len(best), best):
            best, best_mask = cols, np.asarray(rows, dtype=np.bool_)
    assert best is not None and best_mask is not None
    return CompleteBlock(readers=best, mask=best_mask)
