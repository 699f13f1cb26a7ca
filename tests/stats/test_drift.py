"""The drift CUSUM: the recursion on hand-worked series, Siegmund's ARL, the running summaries,
and the issue-30 simulation of an unbiased and a drifting reader."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scorer.stats.drift import (
    DRIFT_H,
    DRIFT_K,
    cusum,
    cusum_paths,
    first_signals,
    running_summary,
    siegmund_arl,
    standardise,
    two_sided_arl,
)

#: SD of reader1 − reader2 status totals (SvH) over the demo's 36 signed patient-visits
#: (``scorer demo --no-gui``, seed 2026: 12 patients × W0/W24/W52, both readers signed all),
#: measured once for issue 30; the simulated readers' difference noise.
DEMO_DIFFERENCE_SD = 3.34
SHIFT = 2.0  # status-total units the drifting reader adds from case 31 on
CHANGE_AT = 30  # cases before the shift
TRIALS = 1000
CASES = 300


def test_cusum_recursion_by_hand() -> None:
    # k = 0.5, h = 2: C+ = 0.5, 2.0, 3.5 > 2 -> signal at index 2, then restart at 0.
    chart = cusum([1.0, 2.0, 2.0, 0.0, -3.0], k=0.5, h=2.0)
    assert chart.upper.tolist() == [0.5, 2.0, 3.5, 0.0, 0.0]
    assert chart.lower.tolist() == [0.0, 0.0, 0.0, 0.0, 2.5]
    assert chart.signals == ((2, "up"), (4, "down"))


def test_cusum_paths_runs_rows_independently() -> None:
    rows = np.array([[3.0, 3.0, 3.0], [-3.0, -3.0, -3.0], [0.0, 0.0, 0.0]])
    _, _, signal = cusum_paths(rows, k=0.5, h=4.0)
    assert signal.tolist() == [[0, 1, 0], [0, -1, 0], [0, 0, 0]]
    assert first_signals(rows, k=0.5, h=4.0).tolist() == [1, 1, -1]


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="decision interval h"):
        cusum([0.0], k=0.5, h=0.0)
    with pytest.raises(ValueError, match="finite"):
        cusum([0.0, math.nan])
    with pytest.raises(ValueError, match="read error SD"):
        standardise([1.0], [1], 0.0)
    with pytest.raises(ValueError, match="at least one other reader"):
        standardise([1.0], [0], 1.0)


def test_siegmund_matches_montgomery() -> None:
    # Montgomery (Table 9.3 and §9.1.3): k = 1/2, h = 5: one-sided ARL0 ≈ 938 by Siegmund,
    # two-sided ≈ 469 (the 465 quoted there), and a 1σ shift ≈ 10.4.
    assert siegmund_arl(0.0, 0.5, 5.0) == pytest.approx(938.2, abs=0.5)
    assert two_sided_arl(0.0, 0.5, 5.0) == pytest.approx(469.1, abs=0.5)
    assert siegmund_arl(1.0, 0.5, 5.0) == pytest.approx(10.4, abs=0.1)


def test_running_summary_and_standardising() -> None:
    s = running_summary([1.0, 3.0, -2.0])
    assert s.mean.tolist() == pytest.approx([1.0, 2.0, 2.0 / 3.0])
    assert math.isnan(s.sd[0])
    assert s.sd[1:].tolist() == pytest.approx([math.sqrt(2.0), np.std([1, 3, -2], ddof=1)])
    assert s.mean_abs.tolist() == pytest.approx([1.0, 2.0, 2.0])
    # One other reader: SD of a difference is σ√2; two others: σ√1.5.
    z = standardise([2.0, 3.0], [1, 2], 1.0)
    assert z.tolist() == pytest.approx([2.0 / math.sqrt(2.0), 3.0 / math.sqrt(1.5)])


def _simulate(sd: float, seed: int) -> tuple[float, float]:
    """(false-alarm share of an unbiased reader, median delay of one +2 after case 30) over
    TRIALS simulated 300-case trials, each case's difference N(0, sd) (+ SHIFT after)."""
    rng = np.random.default_rng(seed)
    unbiased = rng.normal(0.0, sd, (TRIALS, CASES))
    drifting = rng.normal(0.0, sd, (TRIALS, CASES))
    drifting[:, CHANGE_AT:] += SHIFT
    false_alarms = float((first_signals(unbiased / sd) >= 0).mean())
    first = first_signals(drifting / sd)
    never = np.iinfo(np.int64).max // 2
    delay = np.where(first < 0, never, first) - (CHANGE_AT - 1)
    # A signal before the shift is a false alarm, not a detection.
    return false_alarms, float(np.median(delay[first >= CHANGE_AT]))


def test_simulated_readers_at_the_demo_noise() -> None:
    """Issue 30's test at the demo readers' noise: the false-alarm target (≤ 5 %) holds; the
    median delay is ≈ 32 cases, NOT the issue's ≤ 25 (see scorer.stats.drift: at δ ≈ 0.6 σ no
    CUSUM meeting the false-alarm target is that quick). This pins what the chart does."""
    false_alarms, median_delay = _simulate(DEMO_DIFFERENCE_SD, seed=30)
    assert false_alarms <= 0.05
    assert median_delay <= 35


def test_simulated_readers_meet_the_delay_target_at_lower_noise() -> None:
    """Both issue-30 targets hold once the difference SD is 2.8 (e.g. three readers: the mean
    of two others brings the demo's 3.34 to 3.34·√(3/4) ≈ 2.9, which is about the boundary)."""
    false_alarms, median_delay = _simulate(2.8, seed=31)
    assert false_alarms <= 0.05
    assert median_delay <= 25


def test_design_constants_are_the_readme_ones() -> None:
    assert (DRIFT_K, DRIFT_H) == (0.3, 12.0)
    assert two_sided_arl(0.0) == pytest.approx(7464.7, abs=1.0)
