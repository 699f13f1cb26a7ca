"""Distribution of scores: cumulative probability plot data and summary statistics."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scorer.stats._json import json_float

PLOTTING_POSITIONS: tuple[str, ...] = ("hazen", "weibull")


def _finite_values(values: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], int]:
    """The non-missing values as a 1-D float array, and how many were NaN."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"values must be a 1-D array, got {array.ndim} dimension(s)")
    missing = np.isnan(array)
    kept = array[~missing]
    if not np.isfinite(kept).all():
        raise ValueError("values must not contain infinite values")
    return kept, int(missing.sum())


@dataclass(frozen=True)
class CumulativeProbability:
    """Points of a cumulative probability plot: values ascending against percent (0–100).

    Missing values (NaN) are left out and counted in ``n_missing``.
    """

    values: tuple[float, ...]
    percent: tuple[float, ...]
    plotting_position: str
    n: int
    n_missing: int

    def to_dict(self) -> dict[str, object]:
        """The points as JSON-ready lists."""
        return {
            "values": list(self.values),
            "percent": list(self.percent),
            "plotting_position": self.plotting_position,
            "n": self.n,
            "n_missing": self.n_missing,
        }


def cumulative_probability(
    values: npt.ArrayLike, plotting_position: str = "hazen"
) -> CumulativeProbability:
    """Sorted values and their cumulative probability in percent.

    Plotting position of the i-th smallest of n values: ``"hazen"`` (i − 0.5)/n, the
    spec's default, or ``"weibull"`` i/(n + 1). Tied values keep consecutive positions.
    NaN values are left out.
    """
    if plotting_position not in PLOTTING_POSITIONS:
        raise ValueError(
            f"plotting_position must be one of {', '.join(PLOTTING_POSITIONS)}, "
            f"got {plotting_position!r}"
        )
    kept, n_missing = _finite_values(values)
    ordered = np.sort(kept)
    n = ordered.size
    rank = np.arange(1, n + 1, dtype=np.float64)
    fraction = (rank - 0.5) / n if plotting_position == "hazen" else rank / (n + 1)
    return CumulativeProbability(
        values=tuple(float(v) for v in ordered),
        percent=tuple(float(p) for p in 100.0 * fraction),
        plotting_position=plotting_position,
        n=int(n),
        n_missing=n_missing,
    )


@dataclass(frozen=True)
class Summary:
    """Descriptive statistics of a set of scores.

    ``sd`` is the sample SD (n − 1); quartiles are linear interpolation between order
    statistics (Hyndman & Fan type 7, as R's and numpy's default). Missing values are left
    out and counted in ``n_missing``; with no values every statistic is NaN (None in
    :meth:`to_dict`), with one value the SD is.
    """

    n: int
    mean: float
    sd: float
    median: float
    q1: float
    q3: float
    min: float
    max: float
    n_missing: int = 0

    def to_dict(self) -> dict[str, float | int | None]:
        """The statistics as JSON-ready values."""
        return {
            "n": self.n,
            "mean": json_float(self.mean),
            "sd": json_float(self.sd),
            "median": json_float(self.median),
            "q1": json_float(self.q1),
            "q3": json_float(self.q3),
            "min": json_float(self.min),
            "max": json_float(self.max),
            "n_missing": self.n_missing,
        }


def summary(values: npt.ArrayLike) -> Summary:
    """n, mean, SD, median, quartiles and range of the non-missing values."""
    kept, n_missing = _finite_values(values)
    n = int(kept.size)
    if n == 0:
        nan = math.nan
        return Summary(0, nan, nan, nan, nan, nan, nan, nan, n_missing)
    q1, median, q3 = (float(v) for v in np.percentile(kept, [25.0, 50.0, 75.0]))
    return Summary(
        n=n,
        mean=float(kept.mean()),
        sd=float(np.std(kept, ddof=1)) if n > 1 else math.nan,
        median=median,
        q1=q1,
        q3=q3,
        min=float(kept.min()),
        max=float(kept.max()),
        n_missing=n_missing,
    )
