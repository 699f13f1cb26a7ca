"""The drift CUSUM: the recursion on hand-worked series, Siegmund's ARL, the running summaries,
and the issue-30 simulation of an unbiased and a drifting reader."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scorer.stats.drift import (
    DRIFT_H,
    DRIFT_K,
    case_mean_sd,
    cusum,
    cusum_paths,
    far_off_readers,
    first_signals,
    pooled_read_sd,
    running_summary,
    siegmund_arl,
    standardise,
    standardise_cases,
    two_sided_arl,
    within_case_correlation,
)

#: SD of reader1 − reader2 status totals (SvH) per visit over the demo's 36 signed patient-visits
#: (``scorer demo --no-gui``, seed 2026: 12 patients × W0/W24/W52, both readers signed all),
#: measured once for issue 30; the simulated readers' difference noise per visit.
DEMO_DIFFERENCE_SD = 3.34
#: Visits per case in the demo: every case of every demo worklist (36 primary, 3 re-read) has
#: the patient's 3 visits (cases.visits in the demo database).
DEMO_VISITS_PER_CASE = 3
#: Within-case correlation of those differences: the one-way intraclass correlation over the
#: 12 cases both demo readers signed (within_case_correlation on them: 0.625).
DEMO_RHO = 0.625
#: The same in the demo's reader model (scorer.demo._reader_read: a persistent opinion per
#: patient and joint, little visit noise) over 60 simulated reader pairs × 12 patients.
DEMO_MODEL_RHO = 0.76
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
    # k = 1/2, h = 5: one-sided ARL0 ≈ 938 by Siegmund (a 20,000-run Monte Carlo: 934 ± 7),
    # two-sided ≈ 469 (Montgomery's Table 9.3 lists 465, the two-sided chart's; Monte Carlo
    # 463 ± 3), and a 1σ shift ≈ 10.4.
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


def _visit_differences(rng: np.random.Generator, rho: float, shift: float) -> np.ndarray:
    """TRIALS × CASES × visits differences, SD DEMO_DIFFERENCE_SD, correlation rho within a
    case (a shared per-case part), plus ``shift`` from case CHANGE_AT + 1 on."""
    shape = (TRIALS, CASES, DEMO_VISITS_PER_CASE)
    shared = rng.standard_normal(shape[:2])[:, :, np.newaxis]
    own = rng.standard_normal(shape)
    d = DEMO_DIFFERENCE_SD * (math.sqrt(rho) * shared + math.sqrt(1.0 - rho) * own)
    d[:, CHANGE_AT:, :] += shift
    return d


def _case_z(d: np.ndarray, rho: float) -> np.ndarray:
    """Each case's mean difference in SDs of a case mean, as the service standardises it (one
    other reader: σ_read = σ_d / √2)."""
    means = d.mean(axis=2)
    n = np.full(means.shape[1], DEMO_VISITS_PER_CASE)
    sigma_read = DEMO_DIFFERENCE_SD / math.sqrt(2.0)
    return np.vstack(
        [standardise_cases(row, np.ones_like(row), n, sigma_read, rho) for row in means]
    )


def _simulate(rho: float, seed: int) -> tuple[float, float]:
    """(false-alarm share of an unbiased reader, median delay in cases of one +2 after case 30)
    over TRIALS simulated 300-case trials of DEMO_VISITS_PER_CASE visits each."""
    rng = np.random.default_rng(seed)
    false_alarms = float(
        (first_signals(_case_z(_visit_differences(rng, rho, 0.0), rho)) >= 0).mean()
    )
    first = first_signals(_case_z(_visit_differences(rng, rho, SHIFT), rho))
    # A signal before the shift is a false alarm, not a detection; index 30 is case 31.
    delay = first[first >= CHANGE_AT] - (CHANGE_AT - 1)
    return false_alarms, float(np.median(delay))


def test_simulated_readers_meet_the_issue_targets_at_the_demo_noise() -> None:
    """Issue 30's test, counted in cases, at the demo's noise (SD 3.34 per visit, 3 visits a
    case, the demo readers' within-case correlation 0.625): an unbiased reader alarms in at most
    5 % of 1,000 300-case trials and a +2 shift after case 30 is detected within a median of at
    most 25 cases. Only just: over 40,000 trials the median is 25.0 (scorer.stats.drift)."""
    false_alarms, median_delay = _simulate(DEMO_RHO, seed=30)
    assert false_alarms <= 0.05
    assert median_delay <= 25


def test_at_the_demo_models_correlation_the_delay_is_longer() -> None:
    """At the demo reader model's within-case correlation (0.76) a case mean holds less new
    information and the median delay is ≈ 28 cases: over the issue's 25 (README says so). This
    pins what the chart does there; the false-alarm target still holds."""
    false_alarms, median_delay = _simulate(DEMO_MODEL_RHO, seed=32)
    assert false_alarms <= 0.05
    assert 25 < median_delay <= 31


def test_counting_correlated_visits_as_independent_would_alarm_too_often() -> None:
    """Why the chart runs on case means with the correlation: the same differences charted
    per visit as if independent (ρ = 0 in the standardising) make an unbiased reader alarm in
    far more than 5 % of trials."""
    rng = np.random.default_rng(33)
    d = _visit_differences(rng, DEMO_RHO, 0.0)
    per_visit = d.reshape(TRIALS, -1) / DEMO_DIFFERENCE_SD
    assert (first_signals(per_visit) >= 0).mean() > 0.2


def test_within_case_correlation_and_case_sd() -> None:
    # Two values per case sharing a case part of variance 3 and own noise of variance 1: ρ = .75.
    cases = [[c + e, c - e] for c in (-3.0, -1.0, 1.0, 3.0, 0.0, 2.0) for e in (1.0,)]
    assert within_case_correlation(cases) == pytest.approx(
        (2 * np.var([-3, -1, 1, 3, 0, 2], ddof=1) - 2)
        / (2 * np.var([-3, -1, 1, 3, 0, 2], ddof=1) + 2)
    )
    assert within_case_correlation(cases[:4]) is None  # too few cases to estimate it
    assert case_mean_sd(2.0, [1, 3], 0.0).tolist() == pytest.approx([2.0, 2.0 / math.sqrt(3.0)])
    assert case_mean_sd(2.0, [3], 1.0).tolist() == pytest.approx([2.0])
    with pytest.raises(ValueError, match="within-case correlation"):
        case_mean_sd(1.0, [2], 1.5)


def test_design_constants_are_the_readme_ones() -> None:
    assert (DRIFT_K, DRIFT_H) == (0.35, 10.5)
    assert two_sided_arl(0.0) == pytest.approx(7164.9, abs=1.0)
    assert siegmund_arl(0.0) == pytest.approx(14329.7, abs=1.0)


def test_pooled_read_sd_leaves_readers_out() -> None:
    totals = [{"a": 10.0, "b": 12.0, "c": 90.0}, {"a": 20.0, "b": 18.0, "c": 90.0}]
    # Around each visit's mean: a and b alone give (1² + 1²) × 2 over 2 df = 2.
    assert pooled_read_sd(totals, {"c"}) == pytest.approx(math.sqrt(2.0))
    assert pooled_read_sd(totals) is not None and pooled_read_sd(totals) > 30
    assert pooled_read_sd(totals[:1], {"c"}) is None  # one degree of freedom


def test_far_off_readers_sets_aside_one_grossly_wrong_reader() -> None:
    rng = np.random.default_rng(7)
    truth = rng.uniform(10, 60, size=20)
    totals = [{"a": t + rng.normal(0, 2), "b": t + rng.normal(0, 2), "c": 400.0} for t in truth]
    assert far_off_readers(totals) == {"c"}
    assert far_off_readers(totals, sigma=2.0) == {"c"}
    # A reader 2 units off (the drift the chart is for) is not set aside.
    shifted = [{"a": t + rng.normal(0, 2), "b": t + rng.normal(0, 2), "c": t + 2} for t in truth]
    assert far_off_readers(shifted) == frozenset()
    # Two readers cannot be told apart; too few visits read by three readers: none set aside.
    assert far_off_readers([{"a": v["a"], "c": v["c"]} for v in totals]) == frozenset()
    assert far_off_readers(totals[:2]) == frozenset()


def test_far_off_readers_rarely_sets_aside_unbiased_readers() -> None:
    """Three unbiased readers on 12 visits, 2,000 times: none is set aside."""
    rng = np.random.default_rng(8)
    reads = rng.normal(0.0, 1.0, size=(2000, 12, 3))
    names = ("a", "b", "c")
    assert not any(
        far_off_readers([dict(zip(names, visit, strict=True)) for visit in trial])
        for trial in reads
    )
