"""Tests of the six Shrout & Fleiss ICCs and their confidence intervals."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import pytest

from scorer.stats.anova import two_way_anova
from scorer.stats.icc import ICC_FORMS, MCGRAW_WONG, icc, icc_from_mean_squares

JsonCheck = Callable[[Mapping[str, object]], None]


def test_forms_and_mcgraw_wong_names() -> None:
    assert ICC_FORMS == ("ICC(1,1)", "ICC(2,1)", "ICC(3,1)", "ICC(1,k)", "ICC(2,k)", "ICC(3,k)")
    assert dict(MCGRAW_WONG) == {
        "ICC(1,1)": "ICC(1)",
        "ICC(2,1)": "ICC(A,1)",
        "ICC(3,1)": "ICC(C,1)",
        "ICC(1,k)": "ICC(k)",
        "ICC(2,k)": "ICC(A,k)",
        "ICC(3,k)": "ICC(C,k)",
    }


def test_result_keys_and_names(spec_changes: np.ndarray) -> None:
    results = icc(spec_changes)
    assert tuple(results) == ICC_FORMS
    for form, result in results.items():
        assert result.form == form
        assert result.mcgraw_wong == MCGRAW_WONG[form]
        assert (result.n, result.k, result.confidence) == (10, 2, 0.95)


def test_spec_worked_example(spec_changes: np.ndarray) -> None:
    """Spec §10: estimates to six decimals, intervals to four."""
    results = icc(spec_changes)
    expected = {
        "ICC(2,1)": (0.947903, 0.754110, 0.987572),
        "ICC(3,1)": (0.961534, 0.853653, 0.990305),
        "ICC(1,1)": (0.947531, 0.815196, 0.986498),
    }
    for form, (value, low, high) in expected.items():
        result = results[form]
        assert result.value == pytest.approx(value, abs=5e-7), form
        assert result.ci_low == pytest.approx(low, abs=5e-5), form
        assert result.ci_high == pytest.approx(high, abs=5e-5), form
    assert results["ICC(2,k)"].value == pytest.approx(0.9733, abs=5e-5)
    assert results["ICC(3,k)"].value == pytest.approx(0.9804, abs=5e-5)


def test_shrout_fleiss_table_2(shrout_fleiss: np.ndarray) -> None:
    """Shrout & Fleiss (1979): the six estimates for their Table 2 data, to two decimals."""
    results = icc(shrout_fleiss)
    published = {
        "ICC(1,1)": 0.17,
        "ICC(2,1)": 0.29,
        "ICC(3,1)": 0.71,
        "ICC(1,k)": 0.44,
        "ICC(2,k)": 0.62,
        "ICC(3,k)": 0.91,
    }
    for form, value in published.items():
        assert round(results[form].value, 2) == value, form


def test_shrout_fleiss_intervals_and_f_tests(shrout_fleiss: np.ndarray) -> None:
    """Intervals and F tests for Shrout & Fleiss's data as printed by R psych::ICC.

    Source: D. Wollschläger, R examples repository, github.com/dwoll/RExRepos,
    md/interRaterICC.md. psych::ICC prints lower bounds to 3 decimals, upper bounds to 2,
    F to 1 and p to 5.
    """
    results = icc(shrout_fleiss)
    printed = {
        "ICC(1,1)": (-0.133, 0.72, 1.8, 5, 18, 0.16477),
        "ICC(2,1)": (0.019, 0.76, 11.0, 5, 15, 0.00013),
        "ICC(3,1)": (0.342, 0.95, 11.0, 5, 15, 0.00013),
        "ICC(1,k)": (-0.884, 0.91, 1.8, 5, 18, 0.16477),
        "ICC(2,k)": (0.071, 0.93, 11.0, 5, 15, 0.00013),
        "ICC(3,k)": (0.676, 0.99, 11.0, 5, 15, 0.00013),
    }
    for form, (low, high, f_value, df1, df2, p_value) in printed.items():
        result = results[form]
        assert result.ci_low == pytest.approx(low, abs=5e-4), form
        assert result.ci_high == pytest.approx(high, abs=5e-3), form
        assert result.f_value == pytest.approx(f_value, abs=0.05), form
        assert (result.df1, result.df2) == (df1, df2), form
        assert result.p_value == pytest.approx(p_value, abs=5e-6), form


def test_average_forms_are_spearman_brown_of_single_forms(shrout_fleiss: np.ndarray) -> None:
    results = icc(shrout_fleiss)
    k = shrout_fleiss.shape[1]

    def step_up(r: float) -> float:
        return k * r / (1 + (k - 1) * r)

    for model in "123":
        single = results[f"ICC({model},1)"].value
        assert results[f"ICC({model},k)"].value == pytest.approx(step_up(single))
    # McGraw & Wong's ICC(A,k) bounds are the single-measure bounds stepped up the same way.
    one, average = results["ICC(2,1)"], results["ICC(2,k)"]
    assert average.ci_low == pytest.approx(step_up(one.ci_low))
    assert average.ci_high == pytest.approx(step_up(one.ci_high))


def test_mcgraw_wong_average_agreement_interval_closed_form(shrout_fleiss: np.ndarray) -> None:
    """McGraw & Wong (1996) Table 7, ICC(A,k): n(MSR − F·MSE) / (F(MSC − MSE) + n·MSR)."""
    from scipy import stats

    ms = two_way_anova(shrout_fleiss)
    n, k = ms.n, ms.k
    rho = icc(shrout_fleiss)["ICC(2,1)"].value
    a = k * rho / (n * (1 - rho))
    b = 1 + k * rho * (n - 1) / (n * (1 - rho))
    v = (a * ms.jms + b * ms.ems) ** 2 / (
        (a * ms.jms) ** 2 / (k - 1) + (b * ms.ems) ** 2 / ((n - 1) * (k - 1))
    )
    f_star = stats.f.ppf(0.975, n - 1, v)
    f_star2 = stats.f.ppf(0.975, v, n - 1)
    low = n * (ms.bms - f_star * ms.ems) / (f_star * (ms.jms - ms.ems) + n * ms.bms)
    high = n * (f_star2 * ms.bms - ms.ems) / (ms.jms - ms.ems + n * f_star2 * ms.bms)
    result = icc(shrout_fleiss)["ICC(2,k)"]
    assert result.ci_low == pytest.approx(low)
    assert result.ci_high == pytest.approx(high)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_narrower_confidence_gives_nested_interval(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(15, 1)) * 3 + rng.normal(size=(15, 3))
    wide = icc(x, confidence=0.95)
    narrow = icc(x, confidence=0.80)
    for form in ICC_FORMS:
        assert wide[form].ci_low < narrow[form].ci_low < narrow[form].value, form
        assert narrow[form].value < narrow[form].ci_high < wide[form].ci_high, form
        assert narrow[form].value == wide[form].value
        assert narrow[form].confidence == 0.80


def test_linear_rescaling_and_permutation_do_not_change_anything(
    shrout_fleiss: np.ndarray,
) -> None:
    base = icc(shrout_fleiss)
    rng = np.random.default_rng(3)
    shuffled = shrout_fleiss[rng.permutation(6)][:, rng.permutation(4)]
    for changed in (icc(2.5 * shrout_fleiss - 7.0), icc(shuffled)):
        for form in ICC_FORMS:
            for field in ("value", "ci_low", "ci_high", "f_value", "p_value"):
                assert getattr(changed[form], field) == pytest.approx(
                    getattr(base[form], field), rel=1e-9, abs=1e-12
                ), (form, field)


def test_reader_bias_lowers_agreement_but_not_consistency(shrout_fleiss: np.ndarray) -> None:
    biased = shrout_fleiss.copy()
    biased[:, 0] += 10.0
    before, after = icc(shrout_fleiss), icc(biased)
    for form in ("ICC(3,1)", "ICC(3,k)"):
        assert after[form].value == pytest.approx(before[form].value)
    for form in ("ICC(1,1)", "ICC(2,1)", "ICC(1,k)", "ICC(2,k)"):
        assert after[form].value < before[form].value


def test_identical_ratings_are_not_estimable(assert_json_ready: JsonCheck) -> None:
    for x in (np.zeros((5, 3)), np.full((6, 2), 0.1), np.full((4, 4), 7.0)):
        for result in icc(x).values():
            assert not result.estimable
            for field in ("value", "ci_low", "ci_high", "f_value", "p_value"):
                assert math.isnan(getattr(result, field)), (result.form, field)
            data = result.to_dict()
            assert data["value"] is None and data["ci_low"] is None and data["p_value"] is None
            assert_json_ready(data)


def test_perfect_agreement_is_one_with_a_point_interval(assert_json_ready: JsonCheck) -> None:
    scores = np.array([0.0, 3.0, 5.5, 12.0, 40.0])
    results = icc(np.column_stack([scores, scores, scores]))
    for result in results.values():
        assert result.value == 1.0, result.form
        assert (result.ci_low, result.ci_high) == (1.0, 1.0), result.form
        assert math.isinf(result.f_value) and result.p_value == 0.0
        data = result.to_dict()
        assert data["f_value"] is None and data["value"] == 1.0
        assert_json_ready(data)


def test_constant_reader_offset_is_perfect_consistency_only() -> None:
    scores = np.array([0.0, 3.0, 5.0, 12.0, 40.0, 7.0])
    results = icc(np.column_stack([scores, scores + 2.0]))
    assert results["ICC(3,1)"].value == 1.0
    assert (results["ICC(3,1)"].ci_low, results["ICC(3,1)"].ci_high) == (1.0, 1.0)
    absolute = results["ICC(2,1)"]
    assert 0.0 < absolute.ci_low < absolute.value < absolute.ci_high <= 1.0


def test_no_between_target_variance_does_not_crash() -> None:
    # Every target has the same mean; the readers disagree symmetrically.
    results = icc(np.array([[1.0, 2.0], [2.0, 1.0], [1.0, 2.0], [2.0, 1.0]]))
    assert results["ICC(3,1)"].value == pytest.approx(-1.0)
    assert results["ICC(3,1)"].f_value == 0.0
    assert results["ICC(3,1)"].p_value == 1.0
    assert results["ICC(3,k)"].ci_low == -math.inf
    assert results["ICC(3,k)"].to_dict()["ci_low"] is None


def test_to_dict_is_json_ready(spec_changes: np.ndarray, assert_json_ready: JsonCheck) -> None:
    data = icc(spec_changes)["ICC(2,1)"].to_dict()
    assert_json_ready(data)
    assert data["form"] == "ICC(2,1)" and data["mcgraw_wong"] == "ICC(A,1)"
    assert data["df1"] == 9 and data["df2"] == 9


@pytest.mark.parametrize("confidence", [0.0, 1.0, 95.0, -0.5])
def test_confidence_must_be_a_proportion(spec_changes: np.ndarray, confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence"):
        icc(spec_changes, confidence=confidence)
    with pytest.raises(ValueError, match="confidence"):
        icc_from_mean_squares(two_way_anova(spec_changes), confidence=confidence)


def test_too_few_targets_or_readers_and_missing_values_raise() -> None:
    with pytest.raises(ValueError, match="at least 2 targets"):
        icc([[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="at least 2 readers"):
        icc([[1.0], [2.0]])
    with pytest.raises(ValueError, match="complete_rows"):
        icc([[1.0, 2.0], [3.0, np.nan], [4.0, 5.0]])
