"""Tests of the two-way ANOVA mean squares and complete-target selection."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from statsmodels.stats.anova import anova_lm

from scorer.stats.anova import complete_rows, two_way_anova


def _statsmodels_mean_squares(x: np.ndarray) -> dict[str, float]:
    """BMS, JMS, EMS from statsmodels' two-way OLS ANOVA and WMS from its one-way ANOVA."""
    n, k = x.shape
    frame = pd.DataFrame(
        {
            "target": np.repeat(np.arange(n), k),
            "reader": np.tile(np.arange(k), n),
            "score": x.ravel(),
        }
    )
    two_way = anova_lm(smf.ols("score ~ C(target) + C(reader)", data=frame).fit(), typ=1)
    one_way = anova_lm(smf.ols("score ~ C(target)", data=frame).fit(), typ=1)
    return {
        "bms": float(two_way.loc["C(target)", "mean_sq"]),
        "jms": float(two_way.loc["C(reader)", "mean_sq"]),
        "ems": float(two_way.loc["Residual", "mean_sq"]),
        "wms": float(one_way.loc["Residual", "mean_sq"]),
        "df_error": float(two_way.loc["Residual", "df"]),
        "df_within": float(one_way.loc["Residual", "df"]),
    }


@pytest.mark.parametrize(
    ("n", "k", "seed"),
    [(2, 2, 1), (3, 5, 2), (10, 2, 3), (25, 3, 4), (40, 4, 5), (7, 5, 6), (60, 2, 7)],
)
def test_mean_squares_match_statsmodels(n: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Small integer scores with a target effect and a reader bias: many ties, like real reads.
    x = (
        rng.integers(0, 20, size=(n, 1))
        + rng.integers(-2, 3, size=(1, k))
        + rng.integers(0, 4, size=(n, k))
    ).astype(float)
    expected = _statsmodels_mean_squares(x)
    ms = two_way_anova(x)
    assert (ms.n, ms.k) == (n, k)
    for name in ("bms", "jms", "ems", "wms"):
        assert getattr(ms, name) == pytest.approx(expected[name], rel=1e-9, abs=1e-12), name
    assert ms.df_error == expected["df_error"]
    assert ms.df_within == expected["df_within"]
    assert (ms.df_between, ms.df_readers) == (n - 1, k - 1)


def test_spec_worked_example(spec_changes: np.ndarray) -> None:
    ms = two_way_anova(spec_changes)
    assert ms.bms == pytest.approx(90.938889, abs=5e-7)
    assert ms.jms == pytest.approx(8.45, abs=5e-7)
    assert ms.ems == pytest.approx(1.783333, abs=5e-7)
    assert ms.wms == pytest.approx(2.45, abs=5e-7)


def test_within_mean_square_pools_readers_and_residual(spec_changes: np.ndarray) -> None:
    ms = two_way_anova(spec_changes)
    pooled = (ms.jms * ms.df_readers + ms.ems * ms.df_error) / ms.df_within
    assert ms.wms == pytest.approx(pooled)


def test_identical_ratings_give_exact_zeros() -> None:
    # 0.1 is not exact in binary: the means carry rounding that must not leak into the SS.
    ms = two_way_anova(np.full((7, 3), 0.1))
    assert (ms.bms, ms.wms, ms.jms, ms.ems) == (0.0, 0.0, 0.0, 0.0)


def test_to_dict_is_json_ready(
    spec_changes: np.ndarray, assert_json_ready: Callable[[Mapping[str, object]], None]
) -> None:
    data = two_way_anova(spec_changes).to_dict()
    assert_json_ready(data)
    assert data["n"] == 10 and data["df_error"] == 9


@pytest.mark.parametrize(
    ("x", "message"),
    [
        ([[1.0, 2.0]], "at least 2 targets"),
        ([[1.0], [2.0], [3.0]], "at least 2 readers"),
        ([[1.0, 2.0], [np.nan, 3.0]], "NaN"),
        ([[1.0, 2.0], [np.inf, 3.0]], "infinite"),
        ([1.0, 2.0, 3.0], "2-D"),
        (np.zeros((2, 2, 2)), "2-D"),
        ([["a", "b"], ["c", "d"]], "numeric"),
    ],
)
def test_invalid_input_raises(x: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        two_way_anova(x)  # type: ignore[arg-type]


def test_complete_rows_drops_targets_with_any_nan() -> None:
    x = np.array([[1.0, 2.0, 3.0], [4.0, np.nan, 6.0], [7.0, 8.0, 9.0], [np.nan, np.nan, np.nan]])
    kept, mask = complete_rows(x)
    assert mask.tolist() == [True, False, True, False]
    assert mask.dtype == np.bool_
    np.testing.assert_array_equal(kept, [[1.0, 2.0, 3.0], [7.0, 8.0, 9.0]])


def test_complete_rows_result_feeds_the_anova() -> None:
    x = np.array([[1.0, 2.0], [np.nan, 3.0], [3.0, 5.0], [4.0, 4.0]])
    kept, _ = complete_rows(x)
    assert two_way_anova(kept).n == 3


def test_complete_rows_with_no_complete_target_leaves_too_few() -> None:
    kept, mask = complete_rows([[np.nan, 1.0], [2.0, np.nan]])
    assert kept.shape == (0, 2)
    assert not mask.any()
    with pytest.raises(ValueError, match="at least 2 targets"):
        two_way_anova(kept)


def test_complete_rows_requires_a_matrix() -> None:
    with pytest.raises(ValueError, match="2-D"):
        complete_rows([1.0, np.nan])
