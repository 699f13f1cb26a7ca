"""Tests of Cohen's weighted kappa and percentage agreement."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import cohens_kappa

from scorer.stats.kappa import agreement_table, weighted_kappa

JsonCheck = Callable[[Mapping[str, object]], None]


def _pairs_from_table(table: list[list[int]], first_grade: int = 0) -> tuple[np.ndarray, ...]:
    """Expand a contingency table (rows: reader a, columns: reader b) into paired grades."""
    counts = np.asarray(table)
    size = counts.shape[0]
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    a = np.repeat(rows.ravel(), counts.ravel()) + first_grade
    b = np.repeat(cols.ravel(), counts.ravel()) + first_grade
    return a, b


def test_published_unweighted_example_wollschlaeger() -> None:
    """3 × 3 nominal table, n = 100: kappa 0.429, 70 % agreement.

    Source: D. Wollschläger, R examples repository, github.com/dwoll/RExRepos,
    md/interRaterICC.md (irr::kappa2 and irr::agree output).
    """
    a, b = _pairs_from_table([[53, 5, 2], [11, 14, 5], [1, 6, 3]])
    result = weighted_kappa(a, b, 0, 2)
    assert result.n == 100
    assert round(result.unweighted or 0.0, 3) == 0.429
    assert result.pct_exact == 70.0


def test_published_linear_example_wollschlaeger() -> None:
    """6 ordered categories (<10 % … >50 %), n = 100: linearly weighted kappa 0.316.

    Source: D. Wollschläger, R examples repository, github.com/dwoll/RExRepos,
    md/interRaterICC.md (irr::kappa2 with weight = "equal", i.e. 1 − |i − j|/(K − 1)).
    All six categories occur, so irr's observed-level range is the full range here.
    """
    table = [
        [5, 8, 1, 2, 4, 2],
        [3, 5, 3, 5, 5, 0],
        [1, 2, 6, 11, 2, 1],
        [0, 1, 5, 4, 3, 3],
        [0, 0, 1, 2, 5, 2],
        [0, 0, 1, 2, 1, 4],
    ]
    a, b = _pairs_from_table(table, first_grade=1)
    result = weighted_kappa(a, b, 1, 6)
    assert result.n == 100
    assert round(result.linear or 0.0, 3) == 0.316


def test_published_sas_example() -> None:
    """3 × 3 table, n = 19: simple kappa 0.4842, Cicchetti–Allison (linear) kappa 0.4701.

    Source: SAS PROC FREQ printout reproduced in statsmodels' test suite
    (statsmodels/stats/tests/test_inter_rater.py, TestUnweightedCohens/TestWeightedCohens).
    """
    a, b = _pairs_from_table([[0, 4, 1], [0, 8, 0], [0, 1, 5]])
    result = weighted_kappa(a, b, 0, 2)
    assert result.unweighted == pytest.approx(0.4842, abs=5e-5)
    assert result.linear == pytest.approx(0.4701, abs=5e-5)


# irr's `anxiety` data (Gamer et al., R package irr), raters 2 and 3; grade 5 is never used.
ANXIETY_RATER2 = [3, 6, 4, 6, 2, 4, 2, 4, 3, 3, 2, 3, 3, 3, 2, 2, 1, 3, 3, 4]
ANXIETY_RATER3 = [2, 1, 4, 4, 3, 2, 1, 6, 1, 1, 1, 2, 3, 3, 1, 1, 3, 3, 2, 2]


def test_published_quadratic_example_irr_anxiety() -> None:
    """irr::kappa2(anxiety[, 2:3]): unweighted −0.006289308, "equal" 0.1459075, "squared" 0.2520325.

    Source: R irr output reproduced in statsmodels' test suite (test_cohens_kappa_irr).
    irr builds its table from the grades that occur (1, 2, 3, 4, 6) and spaces them evenly,
    so recoding 6 → 5 and using the range 1..5 is the same computation.
    """
    a = np.array(ANXIETY_RATER2)
    b = np.array(ANXIETY_RATER3)
    result = weighted_kappa(np.where(a == 6, 5, a), np.where(b == 6, 5, b), 1, 5)
    assert result.unweighted == pytest.approx(-0.006289308, abs=5e-10)
    assert result.linear == pytest.approx(0.1459075, abs=5e-8)
    assert result.quadratic == pytest.approx(0.2520325, abs=5e-8)


def test_weights_span_the_full_grade_range_not_the_grades_used() -> None:
    a = np.array(ANXIETY_RATER2)
    b = np.array(ANXIETY_RATER3)
    full = weighted_kappa(a, b, 0, 10)
    observed_only = weighted_kappa(np.where(a == 6, 5, a), np.where(b == 6, 5, b), 1, 5)
    assert full.linear != pytest.approx(observed_only.linear)
    assert full.quadratic != pytest.approx(observed_only.quadratic)
    # Unused grades change nothing for the unweighted kappa.
    assert full.unweighted == pytest.approx(observed_only.unweighted)
    labels = list(range(0, 11))
    assert full.linear == pytest.approx(cohen_kappa_score(a, b, labels=labels, weights="linear"))


@st.composite
def graded_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int, int]:
    low = draw(st.integers(-3, 3))
    high = low + draw(st.integers(1, 10))
    n = draw(st.integers(1, 80))
    # Readers agree more often than chance, with ties and unused grades, as in real reads.
    truth = draw(st.lists(st.integers(low, high), min_size=n, max_size=n))
    noise = draw(st.lists(st.integers(-2, 2), min_size=n, max_size=n))
    a = np.array(truth)
    b = np.clip(a + np.array(noise), low, high)
    return a, b, low, high


@given(graded_pairs())
def test_matches_statsmodels_and_sklearn(case: tuple[np.ndarray, np.ndarray, int, int]) -> None:
    a, b, low, high = case
    result = weighted_kappa(a, b, low, high)
    assume(result.estimable)
    table = agreement_table(a, b, low, high)
    assert table.shape == (high - low + 1,) * 2
    labels = list(range(low, high + 1))
    with warnings.catch_warnings():
        # statsmodels' variance of kappa divides by zero on some tiny tables; kappa is fine.
        warnings.simplefilter("ignore", RuntimeWarning)
        sm_unweighted = cohens_kappa(table, return_results=False)
        sm_linear = cohens_kappa(table, wt="linear", return_results=False)
        sm_quadratic = cohens_kappa(table, wt="quadratic", return_results=False)
    assert result.unweighted == pytest.approx(sm_unweighted, abs=1e-12)
    assert result.linear == pytest.approx(sm_linear, abs=1e-12)
    assert result.quadratic == pytest.approx(sm_quadratic, abs=1e-12)
    assert result.unweighted == pytest.approx(cohen_kappa_score(a, b, labels=labels), abs=1e-12)
    assert result.linear == pytest.approx(
        cohen_kappa_score(a, b, labels=labels, weights="linear"), abs=1e-12
    )
    assert result.quadratic == pytest.approx(
        cohen_kappa_score(a, b, labels=labels, weights="quadratic"), abs=1e-12
    )


@given(graded_pairs())
def test_closed_forms_and_percentages(case: tuple[np.ndarray, np.ndarray, int, int]) -> None:
    a, b, low, high = case
    result = weighted_kappa(a, b, low, high)
    n = a.size
    diff = np.abs(a - b)
    assert result.n == n
    assert result.pct_exact == pytest.approx(100.0 * np.mean(diff == 0))
    assert result.pct_within_one == pytest.approx(100.0 * np.mean(diff <= 1))
    assume(result.estimable)
    x, y = a.astype(float), b.astype(float)
    # Quadratic weights: kappa equals Lin's concordance coefficient with 1/n moments
    # (Fleiss & Cohen 1973).
    covariance = np.mean((x - x.mean()) * (y - y.mean()))
    concordance = 2 * covariance / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    assert result.quadratic == pytest.approx(concordance, abs=1e-12)
    # Linear weights: 1 − mean |a − b| over the paired areas / over all cross pairs.
    cross = np.mean(np.abs(x[:, None] - y[None, :]))
    assert result.linear == pytest.approx(1 - diff.mean() / cross, abs=1e-12)


@pytest.mark.parametrize(("grade", "low", "high"), [(0, 0, 5), (3, 0, 4), (10, 0, 10)])
def test_one_shared_grade_is_not_estimable(
    grade: int, low: int, high: int, assert_json_ready: JsonCheck
) -> None:
    result = weighted_kappa([grade] * 12, [grade] * 12, low, high)
    assert result.estimable is False
    assert (result.linear, result.quadratic, result.unweighted) == (None, None, None)
    assert result.pct_exact == 100.0 and result.pct_within_one == 100.0
    data = result.to_dict()
    assert data["linear"] is None and data["estimable"] is False
    assert_json_ready(data)


def test_two_readers_each_constant_but_different_is_estimable() -> None:
    result = weighted_kappa([0] * 8, [1] * 8, 0, 5)
    assert result.estimable is True
    assert result.unweighted == 0.0 and result.linear == 0.0 and result.quadratic == 0.0
    assert result.pct_exact == 0.0 and result.pct_within_one == 100.0


def test_perfect_agreement_is_one() -> None:
    grades = [0, 1, 1, 2, 5, 3, 0, 0]
    result = weighted_kappa(grades, grades, 0, 5)
    assert (result.unweighted, result.linear, result.quadratic) == (1.0, 1.0, 1.0)


def test_integral_floats_are_accepted() -> None:
    a, b = [0.0, 1.0, 2.0, 2.0], [0.0, 2.0, 2.0, 1.0]
    assert weighted_kappa(a, b, 0, 4) == weighted_kappa([0, 1, 2, 2], [0, 2, 2, 1], 0, 4)


@pytest.mark.parametrize(
    ("a", "b", "low", "high", "message"),
    [
        ([0, 1, 6], [0, 1, 2], 0, 5, "outside 0..5"),
        ([0, 1, 2], [0, -1, 2], 0, 5, "outside 0..5"),
        ([0, 1.5, 2], [0, 1, 2], 0, 5, "non-integer"),
        ([0, np.nan, 2], [0, 1, 2], 0, 5, "missing"),
        ([0, 1, 2], [0, 1], 0, 5, "same length"),
        ([], [], 0, 5, "at least one pair"),
        ([0, 0], [0, 0], 3, 3, "at least two grades"),
        ([0, 0], [0, 0], 4, 1, "at least two grades"),
        ([[0, 1]], [[0, 1]], 0, 5, "1-D"),
        (["a", "b"], ["a", "b"], 0, 5, "integer grades"),
        ([True, False], [True, True], 0, 1, "integer grades"),
    ],
)
def test_invalid_grades_raise(a: object, b: object, low: int, high: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        weighted_kappa(a, b, low, high)  # type: ignore[arg-type]


def test_agreement_table_counts_pairs_over_the_full_range() -> None:
    table = agreement_table([1, 1, 2, 3], [1, 2, 2, 1], 0, 4)
    expected = np.zeros((5, 5), dtype=int)
    expected[1, 1] = expected[1, 2] = expected[2, 2] = expected[3, 1] = 1
    np.testing.assert_array_equal(table, expected)


def test_to_dict_is_json_ready(assert_json_ready: JsonCheck) -> None:
    a, b = _pairs_from_table([[0, 4, 1], [0, 8, 0], [0, 1, 5]])
    data = weighted_kappa(a, b, 0, 2).to_dict()
    assert_json_ready(data)
    assert data["n"] == 19 and data["estimable"] is True
