"""Reader drift: a two-sided tabular CUSUM on a reader's differences from the other readers, and
running summaries of a reader's differences, re-read agreement and calibration agreement.

The CUSUM is Page's (1954) tabular scheme as Montgomery sets it out (*Introduction to
Statistical Quality Control*, §9.1): on standardised values z_i,

    C⁺_i = max(0, C⁺_{i−1} + z_i − k)      C⁻_i = max(0, C⁻_{i−1} − z_i − k)

and the chart signals when C⁺ or C⁻ exceeds the decision interval h; after a signal both sums
restart at 0 (Montgomery: the process is investigated and the chart restarted).

Why k = 0.3 and h = 12 (:data:`DRIFT_K`, :data:`DRIFT_H`): the shift to catch is a reader
scoring 2 units of status total higher (or lower), and the demo readers' difference SD is 3.34
units (SD of reader1 − reader2 status totals over the demo's 36 signed patient-visits), so the
shift is δ ≈ 0.6 σ; the reference value that minimises the delay to a shift δ is k = δ/2
(Montgomery §9.1.3; Moustakides 1986), hence k = 0.3. h then follows from the false-alarm
target: an unbiased reader must alarm in at most 5 % of 300-read trials, i.e. an in-control run
length of about 300 / −ln 0.95 ≈ 5,850 reads for the two-sided chart. Siegmund's (1985)
approximation (:func:`siegmund_arl`) gives, for k = 0.3 and h = 12, a one-sided ARL₀ of ≈ 14,900
reads and a two-sided one of ≈ 7,460; simulated (benchmarks/drift.py, 1,000 seeded 300-read
trials) the false-alarm share is ≈ 4 %. Siegmund's ARL₁ for the δ = 0.6 shift is ≈ 38 reads;
simulated, the median delay after the shift is ≈ 32 reads, which misses the issue's target of
25: the CUSUM is asymptotically optimal (Lorden 1971: no scheme with the same in-control ARL
has a shorter worst-case delay, to first order), so a quicker chart at this noise must alarm
more often. README "Reader drift" gives the noise at which the target holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scorer.stats.anova import FloatArray

#: The CUSUM's reference value k, in SDs of the difference (see the module docstring).
DRIFT_K = 0.3
#: The CUSUM's decision interval h, in SDs of the difference (see the module docstring).
DRIFT_H = 12.0
#: Siegmund's correction to the decision interval (b = h + 1.166, Siegmund 1985).
SIEGMUND_SHIFT = 1.166


@dataclass(frozen=True)
class CusumChart:
    """A two-sided tabular CUSUM over one series: the upper and lower sums after each value
    (the lower as a positive number), the values' indexes where it signalled and in which
    direction ("up" or "down"), with its k and h (in SDs)."""

    upper: FloatArray
    lower: FloatArray
    signals: tuple[tuple[int, str], ...]
    k: float
    h: float


def _as_matrix(z: npt.ArrayLike) -> FloatArray:
    values = np.asarray(z, dtype=np.float64)
    if values.ndim == 1:
        values = values[np.newaxis, :]
    if values.ndim != 2:
        raise ValueError("CUSUM values must be a series or a trials × values array")
    if not np.isfinite(values).all():
        raise ValueError("CUSUM values must be finite (drop reads without a difference)")
    return values


def _check_design(k: float, h: float) -> None:
    if not (math.isfinite(k) and k >= 0):
        raise ValueError(f"the CUSUM's reference value k must be ≥ 0, got {k}")
    if not (math.isfinite(h) and h > 0):
        raise ValueError(f"the CUSUM's decision interval h must be > 0, got {h}")


def cusum_paths(
    z: npt.ArrayLike, k: float = DRIFT_K, h: float = DRIFT_H
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int8]]:
    """The two-sided tabular CUSUM of each row of a trials × values array of standardised
    values, all rows at once: (upper sums, lower sums, signal) arrays of the same shape, signal
    +1 where the upper sum crosses h, −1 where the lower does, 0 elsewhere; both sums restart at
    0 after a signal. A 1-D series is taken as one row."""
    _check_design(k, h)
    values = _as_matrix(z)
    n_rows, n_values = values.shape
    upper = np.zeros_like(values)
    lower = np.zeros_like(values)
    signal = np.zeros(values.shape, dtype=np.int8)
    up = np.zeros(n_rows)
    down = np.zeros(n_rows)
    # The recursion runs along the series (each sum needs the one before); the rows (trials,
    # readers) are what numpy does at once.
    for i in range(n_values):
        up = np.maximum(0.0, up + values[:, i] - k)
        down = np.maximum(0.0, down - values[:, i] - k)
        upper[:, i] = up
        lower[:, i] = down
        went_up = up > h
        went_down = down > h
        signal[went_up, i] = 1
        signal[went_down & ~went_up, i] = -1
        fired = went_up | went_down
        up[fired] = 0.0
        down[fired] = 0.0
    return upper, lower, signal


def cusum(z: npt.ArrayLike, k: float = DRIFT_K, h: float = DRIFT_H) -> CusumChart:
    """The two-sided tabular CUSUM chart of one series of standardised values."""
    values = np.asarray(z, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError("cusum takes one series; use cusum_paths for many")
    upper, lower, signal = cusum_paths(values, k, h)
    signals = tuple(
        (int(i), "up" if signal[0, i] > 0 else "down") for i in np.flatnonzero(signal[0])
    )
    return CusumChart(upper[0], lower[0], signals, k, h)


def first_signals(
    z: npt.ArrayLike, k: float = DRIFT_K, h: float = DRIFT_H
) -> npt.NDArray[np.int64]:
    """Per row of a trials × values array, the index of the first CUSUM signal (−1: none)."""
    _, _, signal = cusum_paths(z, k, h)
    fired = signal != 0
    first: npt.NDArray[np.int64] = np.argmax(fired, axis=1).astype(np.int64)
    first[~fired.any(axis=1)] = -1
    return first


def siegmund_arl(shift: float, k: float = DRIFT_K, h: float = DRIFT_H) -> float:
    """Siegmund's (1985) approximation of a one-sided upper CUSUM's average run length when
    the mean is ``shift`` SDs: (e^(−2Δb) + 2Δb − 1) / (2Δ²), Δ = shift − k, b = h + 1.166
    (b² when Δ = 0). The in-control ARL is ``siegmund_arl(0)``; a two-sided chart's is
    1 / (1/ARL⁺ + 1/ARL⁻) (:func:`two_sided_arl`)."""
    _check_design(k, h)
    delta = shift - k
    b = h + SIEGMUND_SHIFT
    if abs(delta) < 1e-12:
        return b * b
    return (math.exp(-2.0 * delta * b) + 2.0 * delta * b - 1.0) / (2.0 * delta * delta)


def two_sided_arl(shift: float, k: float = DRIFT_K, h: float = DRIFT_H) -> float:
    """The two-sided chart's ARL from Siegmund's one-sided ones (Montgomery eq. 9.9)."""
    up = siegmund_arl(shift, k, h)
    down = siegmund_arl(-shift, k, h)
    return 1.0 / (1.0 / up + 1.0 / down)


@dataclass(frozen=True)
class RunningSummary:
    """Running mean and SD (n − 1; NaN before the second value) of a series after each value,
    and the running mean of its absolute values."""

    mean: FloatArray
    sd: FloatArray
    mean_abs: FloatArray


def running_summary(x: npt.ArrayLike) -> RunningSummary:
    """The running mean, SD and mean absolute value of a series, after each value."""
    values = np.asarray(x, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError("a running summary takes one series")
    if not np.isfinite(values).all():
        raise ValueError("a running summary's values must be finite")
    n = np.arange(1, values.size + 1, dtype=np.float64)
    total = np.cumsum(values)
    mean = total / n
    squares = np.cumsum(values * values)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Σx² − n·mean² over n − 1; clipped at 0 against rounding just below it.
        var = np.clip(squares - n * mean * mean, 0.0, None) / (n - 1.0)
    var[: min(1, values.size)] = np.nan
    return RunningSummary(mean, np.sqrt(var), np.cumsum(np.abs(values)) / n)


def standardise(differences: npt.ArrayLike, others: npt.ArrayLike, sigma_read: float) -> FloatArray:
    """Differences from the other readers' mean in SDs: d / (σ · √(1 + 1/m)), m the number of
    other readers each difference is taken from and σ one read's error SD (a reader's read
    minus the mean of m others, each with error SD σ, has SD σ·√(1 + 1/m))."""
    d = np.asarray(differences, dtype=np.float64)
    m = np.asarray(others, dtype=np.float64)
    if d.shape != m.shape:
        raise ValueError("differences and their counts of other readers must match")
    if not (math.isfinite(sigma_read) and sigma_read > 0):
        raise ValueError(f"the read error SD must be > 0, got {sigma_read}")
    if (m < 1).any():
        raise ValueError("each difference needs at least one other reader")
    result: FloatArray = d / (sigma_read * np.sqrt(1.0 + 1.0 / m))
    return result
