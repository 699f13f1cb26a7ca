"""Cohen's kappa, unweighted and weighted, between two readers' ordinal grades."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scorer.stats._json import json_float

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class KappaResult:
    """Agreement of two readers on one ordinal scale.

    Kappas use Cohen's (1968) weighted form over the method's full grade range with agreement
    weights 1 − |i − j|/(K − 1) (linear) and 1 − (i − j)²/(K − 1)² (quadratic); the
    percentages are of the n graded pairs (0–100). When chance agreement is already perfect
    (both readers gave every area the same single grade) kappa is undefined: ``estimable``
    is False and the kappas are None.
    """

    n: int
    linear: float | None
    quadratic: float | None
    unweighted: float | None
    pct_exact: float
    pct_within_one: float
    estimable: bool

    def to_dict(self) -> dict[str, float | int | bool | None]:
        """The result as JSON-ready values."""
        return {
            "n": self.n,
            "linear": None if self.linear is None else json_float(self.linear),
            "quadratic": None if self.quadratic is None else json_float(self.quadratic),
            "unweighted": None if self.unweighted is None else json_float(self.unweighted),
            "pct_exact": self.pct_exact,
            "pct_within_one": self.pct_within_one,
            "estimable": self.estimable,
        }


def _grades(values: npt.ArrayLike, name: str, min_grade: int, max_grade: int) -> IntArray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of grades")
    if array.dtype == np.bool_ or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise ValueError(f"{name} must hold integer grades, got dtype {array.dtype}")
    as_float = array.astype(np.float64)
    if np.isnan(as_float).any():
        raise ValueError(f"{name} contains missing grades (NaN); drop incomplete pairs first")
    if (as_float != np.round(as_float)).any():
        raise ValueError(f"{name} contains non-integer grades")
    outside = as_float[(as_float < min_grade) | (as_float > max_grade)]
    if outside.size:
        raise ValueError(
            f"{name} has grades outside {min_grade}..{max_grade}: "
            f"{sorted({float(v) for v in outside})}"
        )
    return as_float.astype(np.int64)


def agreement_table(a: npt.ArrayLike, b: npt.ArrayLike, min_grade: int, max_grade: int) -> IntArray:
    """The K × K table of pair counts over grades min..max (rows: a, columns: b)."""
    if max_grade <= min_grade:
        raise ValueError(f"the grade range needs at least two grades, got {min_grade}..{max_grade}")
    first = _grades(a, "a", min_grade, max_grade)
    second = _grades(b, "b", min_grade, max_grade)
    if first.shape != second.shape:
        raise ValueError(f"a and b must have the same length, got {first.size} and {second.size}")
    size = max_grade - min_grade + 1
    # Counted as one bincount over the K x K cells (np.add.at counts the same, far slower).
    cells = (first - min_grade) * size + (second - min_grade)
    return np.bincount(cells, minlength=size * size).astype(np.int64).reshape(size, size)


def _kappa(proportions: FloatArray, weights: FloatArray) -> float:
    expected = np.outer(proportions.sum(axis=1), proportions.sum(axis=0))
    observed_agreement = float(np.sum(weights * proportions))
    expected_agreement = float(np.sum(weights * expected))
    return (observed_agreement - expected_agreement) / (1.0 - expected_agreement)


def weighted_kappa(
    a: npt.ArrayLike, b: npt.ArrayLike, min_grade: int, max_grade: int
) -> KappaResult:
    """Cohen's kappa (unweighted, linear, quadratic) and % agreement of paired grades.

    ``a`` and ``b`` are the two readers' integer grades of the same areas; the weights span
    the method's full range ``min_grade..max_grade``, not only the grades that occur. Raises
    ValueError for no pairs, unequal lengths, missing or non-integer grades, or grades outside
    the range.
    """
    table = agreement_table(a, b, min_grade, max_grade)
    n = int(table.sum())
    if n == 0:
        raise ValueError("kappa needs at least one pair of grades")
    size = table.shape[0]
    grade_index = np.arange(size)
    distance = np.abs(grade_index[:, None] - grade_index[None, :]).astype(np.float64)
    proportions = table / float(n)

    pct_exact = 100.0 * float(np.trace(table)) / n
    pct_within_one = 100.0 * float(table[distance <= 1].sum()) / n

    # Chance agreement is 1 exactly when both readers used one and the same grade
    # throughout; decided on the counts, not on a float compared with 1.
    rows_used = np.flatnonzero(table.sum(axis=1))
    cols_used = np.flatnonzero(table.sum(axis=0))
    estimable = not (rows_used.size == 1 and cols_used.size == 1 and rows_used[0] == cols_used[0])
    if not estimable:
        return KappaResult(
            n=n,
            linear=None,
            quadratic=None,
            unweighted=None,
            pct_exact=pct_exact,
            pct_within_one=pct_within_one,
            estimable=False,
        )
    span = float(size - 1)
    return KappaResult(
        n=n,
        linear=_kappa(proportions, 1.0 - distance / span),
        quadratic=_kappa(proportions, 1.0 - (distance / span) ** 2),
        unweighted=_kappa(proportions, np.eye(size)),
        pct_exact=pct_exact,
        pct_within_one=pct_within_one,
        estimable=True,
    )
