"""Reader drift: a two-sided tabular CUSUM on a reader's differences from the other readers, and
running summaries of a reader's differences, re-read agreement and calibration agreement.

The CUSUM is Page's (1954) tabular scheme as Montgomery sets it out (*Introduction to
Statistical Quality Control*, §9.1): on standardised values z_i,

    C⁺_i = max(0, C⁺_{i−1} + z_i − k)      C⁻_i = max(0, C⁻_{i−1} − z_i − k)

and the chart signals when C⁺ or C⁻ exceeds the decision interval h; after a signal both sums
restart at 0 (Montgomery: the process is investigated and the chart restarted).

Counted in cases. A case is one patient's visits read together (scorer.core.worklist: the
demo's cases all have 3 visits, W0/W24/W52 in a random order), and each signed case gives one
difference per visit. Those differences are not independent: a reader's opinion of a patient's
joints persists across the patient's visits (the demo's readers are made that way), so the
within-case correlation ρ of the differences is high (0.63 on the demo's 12 cases read by both
readers; 0.76 in the demo's reader model over 720 simulated cases). The chart therefore runs on
each case's mean difference, standardised by its SD σ_d·√((1 + (m − 1)ρ)/m) for m visits
(:func:`case_mean_sd`): under exchangeable correlation the case mean carries all the case's
information about a shift, so nothing is lost, and counting reads as independent would make an
unbiased reader alarm far more often than the design says.

Why k = 0.35 and h = 10.5 (:data:`DRIFT_K`, :data:`DRIFT_H`), in SDs of a case mean: the shift
to catch is a reader scoring 2 units of status total higher (or lower); the demo readers'
difference SD is σ_d = 3.34 per visit, so with m = 3 and ρ = 0.63 a case mean's SD is 2.89 and
the shift δ ≈ 0.69 SD. The reference value minimising the delay to a shift δ is k = δ/2
(Montgomery §9.1.3; Moustakides 1986), hence k = 0.35. h follows from the false-alarm target, an
unbiased reader alarming in at most 5 % of 300-case trials, i.e. an in-control run length of
about 300 / −ln 0.95 ≈ 5,850 cases: Siegmund's (1985) approximation (:func:`siegmund_arl`) gives
for k = 0.35, h = 10.5 an ARL₀ of ≈ 14,300 cases one-sided and ≈ 7,160 two-sided, and an ARL₁
of ≈ 30 cases for δ = 0.69. Simulated over 40,000 300-case trials the false-alarm share is 3.7 %
and the median delay after case 30 is 25.0 cases: the issue's targets hold at the demo's noise,
but only just (at the demo model's ρ = 0.76 the median delay is 28). The CUSUM is
asymptotically optimal (Lorden 1971: no scheme with the same in-control ARL has a shorter
worst-case delay, to first order), so a quicker chart at this noise must alarm more often.

For comparison, the textbook k = ½, h = 5 has ARL₀ ≈ 930 one-sided (Siegmund 938; a
Monte Carlo of 20,000 runs gives 934 ± 7) and ≈ 465 two-sided (Montgomery's Table 9.3 value,
which is the two-sided chart's; Monte Carlo 463 ± 3), so it would alarm in about half of
300-case trials.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scorer.stats.anova import FloatArray

#: The CUSUM's reference value k, in SDs of a case's mean difference (see the module docstring).
DRIFT_K = 0.35
#: The CUSUM's decision interval h, in SDs of a case's mean difference (module docstring).
DRIFT_H = 10.5
#: The within-case correlation assumed until a trial has enough cases to estimate it: 1, so a
#: case's mean is given no credit for averaging (the conservative choice: fewer false alarms).
RHO_UNKNOWN = 1.0
#: Cases of two or more visits needed before the within-case correlation is estimated.
RHO_MIN_CASES = 5
#: A reader is set aside as far off the others when the median distance of their totals from
#: each patient-visit's median (over the visits three or more readers read) exceeds this many
#: read-error SDs of the other readers (:func:`far_off_readers`).
FAR_OFF_SDS = 3.0
#: Patient-visits read by three or more readers a reader needs before they can be set aside.
FAR_OFF_MIN_READS = 3
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


def case_mean_sd(sd: float, visits: npt.ArrayLike, rho: float) -> FloatArray:
    """The SD of the mean of m equally correlated values of SD ``sd`` and pairwise correlation
    ``rho``: sd·√((1 + (m − 1)ρ)/m), for each m in ``visits``."""
    m = np.asarray(visits, dtype=np.float64)
    if not (math.isfinite(rho) and 0.0 <= rho <= 1.0):
        raise ValueError(f"the within-case correlation must be between 0 and 1, got {rho}")
    if (m < 1).any():
        raise ValueError("each case needs at least one visit")
    result: FloatArray = sd * np.sqrt((1.0 + (m - 1.0) * rho) / m)
    return result


def within_case_correlation(cases: list[list[float]]) -> float | None:
    """The within-case correlation of differences (one-way ANOVA intraclass correlation,
    unequal case sizes by the n₀ of Snedecor & Cochran), clipped to [0, 1], over the cases of
    two or more values; None below :data:`RHO_MIN_CASES` such cases or without spread."""
    groups = [np.asarray(c, dtype=np.float64) for c in cases if len(c) >= 2]
    if len(groups) < RHO_MIN_CASES:
        return None
    sizes = np.array([g.size for g in groups], dtype=np.float64)
    means = np.array([g.mean() for g in groups])
    n = sizes.sum()
    grand = float((sizes * means).sum() / n)
    within = float(sum(((g - g.mean()) ** 2).sum() for g in groups)) / (n - len(groups))
    between = float((sizes * (means - grand) ** 2).sum()) / (len(groups) - 1)
    n0 = (n - float((sizes * sizes).sum()) / n) / (len(groups) - 1)
    denominator = between + (n0 - 1.0) * within
    if denominator <= 0:
        return None
    return float(min(1.0, max(0.0, (between - within) / denominator)))


def standardise_cases(
    means: npt.ArrayLike,
    others: npt.ArrayLike,
    visits: npt.ArrayLike,
    sigma_read: float,
    rho: float,
) -> FloatArray:
    """Cases' mean differences from the other readers in SDs of a case mean: each as
    :func:`standardise` makes one visit's difference, divided by √((1 + (m − 1)ρ)/m) for the
    case's m visits and the within-case correlation ρ (:func:`case_mean_sd`)."""
    per_visit = standardise(means, others, sigma_read)
    result: FloatArray = per_visit / case_mean_sd(1.0, visits, rho)
    return result


#: Each patient-visit's status totals by reader.
VisitTotals = Sequence[Mapping[str, float]]


def pooled_read_sd(totals: VisitTotals, leave_out: Collection[str] = ()) -> float | None:
    """One read's error SD from readers' totals on the same patient-visits: the pooled SD of
    each patient-visit's totals around their mean (which also holds any reader bias, so errs
    large), leaving out the readers in ``leave_out``; None below 2 degrees of freedom or
    without spread."""
    squares = 0.0
    df = 0
    for by_reader in totals:
        values = np.array([v for r, v in by_reader.items() if r not in leave_out])
        if values.size >= 2:
            squares += float(((values - values.mean()) ** 2).sum())
            df += values.size - 1
    if df < 2 or squares <= 0:
        return None
    return math.sqrt(squares / df)


def far_off_readers(totals: VisitTotals, sigma: float | None = None) -> frozenset[str]:
    """The readers far off the others: whose totals' median distance from each patient-visit's
    median (over the patient-visits three or more readers read, at least
    :data:`FAR_OFF_MIN_READS` of them) exceeds :data:`FAR_OFF_SDS` read-error SDs: ``sigma``
    when known (the frozen SDC's), else the pooled SD of the other readers' totals
    (:func:`pooled_read_sd` leaving the reader out).

    Why this test: with three readers the median of a patient-visit's totals is a good
    reader's whenever one reader is far off, so the far reader's distances are large and the
    good readers' are not; and the scale is the others' (leave one reader out), so a far reader
    cannot inflate the SD they are measured against. Three unbiased readers' median distance is
    about 0.31 SD (a third of the reads are the median itself) and a reader 0.85 SD off (the
    2 units the chart is designed for, at the demo's noise) has 0.52 SD (simulated), so 3 SDs
    sets aside only a reader off by several SDs. Two readers cannot be told apart (each is as
    far from the other), and a set that would leave fewer than two readers sets aside none."""
    distances: dict[str, list[float]] = defaultdict(list)
    readers: set[str] = set()
    for by_reader in totals:
        readers.update(by_reader)
        if len(by_reader) >= 3:
            centre = float(np.median(list(by_reader.values())))
            for r, v in by_reader.items():
                distances[r].append(abs(v - centre))
    far = set()
    for r, ds in distances.items():
        if len(ds) < FAR_OFF_MIN_READS:
            continue
        scale = sigma if sigma is not None else pooled_read_sd(totals, {r})
        if scale is not None and float(np.median(ds)) > FAR_OFF_SDS * scale:
            far.add(r)
    return frozenset(far) if len(readers - far) >= 2 else frozenset()
