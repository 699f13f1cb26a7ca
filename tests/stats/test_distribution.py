"""Tests of cumulative probability plot data and summary statistics."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping

import numpy as np
import pytest
from scipy.stats import mstats

from scorer.stats.distribution import PLOTTING_POSITIONS, cumulative_probability, summary

JsonCheck = Callable[[Mapping[str, object]], None]


def test_hazen_is_the_default_and_matches_the_definition(spec_changes: np.ndarray) -> None:
    mean_change = spec_changes.mean(axis=1)
    result = cumulative_probability(mean_change)
    assert result.plotting_position == "hazen"
    assert result.values == tuple(sorted(mean_change.tolist()))
    n = mean_change.size
    assert result.percent == pytest.approx([100 * (i - 0.5) / n for i in range(1, n + 1)])
    assert result.n == n and result.n_missing == 0


@pytest.mark.parametrize(("position", "alpha_beta"), [("hazen", 0.5), ("weibull", 0.0)])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_positions_match_scipy(position: str, alpha_beta: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.integers(-5, 20, size=int(rng.integers(1, 60))).astype(float)
    result = cumulative_probability(values, plotting_position=position)
    expected = 100 * np.sort(
        np.asarray(mstats.plotting_positions(np.sort(values), alpha=alpha_beta, beta=alpha_beta))
    )
    assert result.percent == pytest.approx(expected.tolist())
    assert result.values == tuple(np.sort(values).tolist())


def test_ties_keep_consecutive_positions() -> None:
    result = cumulative_probability([2.0, 0.0, 2.0, 2.0])
    assert result.values == (0.0, 2.0, 2.0, 2.0)
    assert result.percent == pytest.approx((12.5, 37.5, 62.5, 87.5))


def test_weibull_positions() -> None:
    result = cumulative_probability([3.0, 1.0, 2.0], plotting_position="weibull")
    assert result.percent == pytest.approx((25.0, 50.0, 75.0))


def test_missing_values_are_left_out_and_counted() -> None:
    result = cumulative_probability([1.0, np.nan, -2.0, np.nan])
    assert result.values == (-2.0, 1.0)
    assert result.percent == pytest.approx((25.0, 75.0))
    assert (result.n, result.n_missing) == (2, 2)


def test_no_values_give_an_empty_curve(assert_json_ready: JsonCheck) -> None:
    result = cumulative_probability([])
    assert result.values == () and result.percent == () and result.n == 0
    assert_json_ready(result.to_dict())


def test_cumulative_probability_errors() -> None:
    assert PLOTTING_POSITIONS == ("hazen", "weibull")
    with pytest.raises(ValueError, match="plotting_position"):
        cumulative_probability([1.0, 2.0], plotting_position="blom")
    with pytest.raises(ValueError, match="1-D"):
        cumulative_probability([[1.0, 2.0]])
    with pytest.raises(ValueError, match="infinite"):
        cumulative_probability([1.0, np.inf])


def test_cumulative_probability_to_dict(assert_json_ready: JsonCheck) -> None:
    data = cumulative_probability(np.array([3, 1, 2])).to_dict()
    assert_json_ready(data)
    assert data["values"] == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("seed", [4, 5, 6, 7])
def test_summary_matches_the_statistics_module(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.integers(-10, 40, size=int(rng.integers(2, 80))).astype(float).tolist()
    result = summary(values)
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    assert result.n == len(values) and result.n_missing == 0
    assert result.mean == pytest.approx(statistics.mean(values))
    assert result.sd == pytest.approx(statistics.stdev(values))
    assert result.median == pytest.approx(statistics.median(values))
    assert (result.q1, result.median, result.q3) == pytest.approx((q1, median, q3))
    assert (result.min, result.max) == (min(values), max(values))


def test_summary_leaves_out_missing_values() -> None:
    result = summary([4.0, np.nan, 1.0, 2.0, 3.0])
    assert (result.n, result.n_missing) == (4, 1)
    assert (result.q1, result.median, result.q3) == (1.75, 2.5, 3.25)


def test_summary_of_one_value_has_no_sd(assert_json_ready: JsonCheck) -> None:
    result = summary([5.0])
    assert result.n == 1 and result.mean == 5.0 and result.median == 5.0
    assert math.isnan(result.sd)
    data = result.to_dict()
    assert data["sd"] is None and data["mean"] == 5.0
    assert_json_ready(data)


def test_summary_of_nothing_is_all_missing(assert_json_ready: JsonCheck) -> None:
    result = summary([np.nan, np.nan])
    assert (result.n, result.n_missing) == (0, 2)
    data = result.to_dict()
    assert all(data[key] is None for key in ("mean", "sd", "median", "q1", "q3", "min", "max"))
    assert_json_ready(data)


def test_summary_errors() -> None:
    with pytest.raises(ValueError, match="1-D"):
        summary(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="infinite"):
        summary([1.0, -np.inf])
