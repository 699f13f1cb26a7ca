"""Two-way ANOVA mean squares of a targets × readers table (one rating per cell)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scorer.stats._json import json_float

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class MeanSquares:
    """Mean squares and degrees of freedom of the two-way ANOVA of n targets × k readers.

    ``bms`` between targets, ``wms`` within targets (readers + residual pooled, the one-way
    ANOVA's error term), ``jms`` between readers (judges), ``ems`` residual. Names follow
    Shrout & Fleiss (1979).
    """

    n: int
    k: int
    bms: float
    wms: float
    jms: float
    ems: float
    df_between: int
    df_within: int
    df_readers: int
    df_error: int

    def to_dict(self) -> dict[str, float | int | None]:
        """The mean squares as JSON-ready values (NaN and infinity become None)."""
        return {
            "n": self.n,
            "k": self.k,
            "bms": json_float(self.bms),
            "wms": json_float(self.wms),
            "jms": json_float(self.jms),
            "ems": json_float(self.ems),
            "df_between": self.df_between,
            "df_within": self.df_within,
            "df_readers": self.df_readers,
            "df_error": self.df_error,
        }


def as_ratings_matrix(x: npt.ArrayLike) -> FloatArray:
    """An n targets × k readers float array from ``x``; ValueError unless it is 2-D."""
    try:
        matrix = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"ratings must be numeric: {exc}") from exc
    if matrix.ndim != 2:
        raise ValueError(
            f"ratings must be a 2-D array (targets × readers), got {matrix.ndim} dimension(s)"
        )
    return matrix


def complete_rows(x: npt.ArrayLike) -> tuple[FloatArray, BoolArray]:
    """The targets rated by every reader, and the mask of those rows in ``x``.

    The two-way ANOVA needs every reader on every target; a target with any NaN is dropped.
    """
    matrix = as_ratings_matrix(x)
    mask: BoolArray = np.asarray(~np.isnan(matrix).any(axis=1), dtype=np.bool_)
    return matrix[mask], mask


def _snap_to_zero(sum_of_squares: float, tolerance: float) -> float:
    # Rounding in the means leaves ~1e-32 where the exact answer is 0 (e.g. all ratings 0.1);
    # a ratio of two such crumbs would look like a real ICC instead of "not estimable".
    return 0.0 if sum_of_squares <= tolerance else sum_of_squares


def two_way_anova(x: npt.ArrayLike) -> MeanSquares:
    """Two-way ANOVA mean squares of an n targets × k readers array without missing values.

    Raises ValueError when there are fewer than 2 targets or 2 readers, or when a value is
    NaN or infinite (use :func:`complete_rows` first to keep the targets every reader rated).
    """
    matrix = as_ratings_matrix(x)
    n, k = matrix.shape
    if n < 2:
        raise ValueError(f"two-way ANOVA needs at least 2 targets (rows), got {n}")
    if k < 2:
        raise ValueError(f"two-way ANOVA needs at least 2 readers (columns), got {k}")
    if np.isnan(matrix).any():
        raise ValueError(
            "ratings contain NaN: every reader must rate every target; "
            "use complete_rows() to keep the complete targets"
        )
    if not np.isfinite(matrix).all():
        raise ValueError("ratings contain infinite values")

    grand = float(matrix.mean())
    row_means = matrix.mean(axis=1)
    col_means = matrix.mean(axis=0)
    residuals = matrix - row_means[:, None] - col_means[None, :] + grand
    within = matrix - row_means[:, None]

    scale = float(np.abs(matrix).max())
    tolerance = matrix.size * (64.0 * np.finfo(np.float64).eps * scale) ** 2
    ss_between = _snap_to_zero(k * float(np.sum((row_means - grand) ** 2)), tolerance)
    ss_readers = _snap_to_zero(n * float(np.sum((col_means - grand) ** 2)), tolerance)
    ss_error = _snap_to_zero(float(np.sum(residuals**2)), tolerance)
    ss_within = _snap_to_zero(float(np.sum(within**2)), tolerance)

    df_between = n - 1
    df_readers = k - 1
    df_error = (n - 1) * (k - 1)
    df_within = n * (k - 1)
    return MeanSquares(
        n=n,
        k=k,
        bms=ss_between / df_between,
        wms=ss_within / df_within,
        jms=ss_readers / df_readers,
        ems=ss_error / df_error,
        df_between=df_between,
        df_within=df_within,
        df_readers=df_readers,
        df_error=df_error,
    )
