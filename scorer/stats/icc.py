"""Intraclass correlation coefficients: the six Shrout & Fleiss forms with confidence intervals.

Formulas: Shrout & Fleiss, Psychol Bull 1979;86:420 (estimates, F tests, exact intervals for
ICC(1,·) and ICC(3,·)); McGraw & Wong, Psychol Methods 1996;1:30 (names, and the approximate
interval for absolute agreement, ICC(2,·) = ICC(A,·), with Satterthwaite degrees of freedom).
"""

from __future__ import annotations

import importlib
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy.typing as npt

from scorer.stats._json import json_float
from scorer.stats.anova import MeanSquares, two_way_anova

ICC_FORMS: tuple[str, ...] = (
    "ICC(1,1)",
    "ICC(2,1)",
    "ICC(3,1)",
    "ICC(1,k)",
    "ICC(2,k)",
    "ICC(3,k)",
)

MCGRAW_WONG: Mapping[str, str] = MappingProxyType(
    {
        "ICC(1,1)": "ICC(1)",
        "ICC(2,1)": "ICC(A,1)",
        "ICC(3,1)": "ICC(C,1)",
        "ICC(1,k)": "ICC(k)",
        "ICC(2,k)": "ICC(A,k)",
        "ICC(3,k)": "ICC(C,k)",
    }
)

NAN = math.nan


@dataclass(frozen=True)
class IccResult:
    """One ICC form: estimate, confidence interval and the F test of ICC = 0.

    ``form`` is the Shrout & Fleiss name, ``mcgraw_wong`` McGraw & Wong's. A value that
    cannot be estimated (e.g. every rating identical, so 0/0) is NaN here and None in
    :meth:`to_dict`; an infinite F (no disagreement at all) gives p = 0 and bounds of 1.
    """

    form: str
    mcgraw_wong: str
    value: float
    ci_low: float
    ci_high: float
    n: int
    k: int
    f_value: float
    df1: int
    df2: int
    p_value: float
    confidence: float

    @property
    def estimable(self) -> bool:
        """Whether the estimate is a finite number."""
        return math.isfinite(self.value)

    def to_dict(self) -> dict[str, str | float | int | None]:
        """The result as JSON-ready values (NaN and infinity become None)."""
        return {
            "form": self.form,
            "mcgraw_wong": self.mcgraw_wong,
            "value": json_float(self.value),
            "ci_low": json_float(self.ci_low),
            "ci_high": json_float(self.ci_high),
            "n": self.n,
            "k": self.k,
            "f_value": json_float(self.f_value),
            "df1": self.df1,
            "df2": self.df2,
            "p_value": json_float(self.p_value),
            "confidence": self.confidence,
        }


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN when the denominator is 0 (the estimate is undefined)."""
    return NAN if denominator == 0 else numerator / denominator


def _f_ratio(numerator: float, denominator: float) -> float:
    """An F statistic: infinite for a positive mean square over a zero one, NaN for 0/0."""
    if denominator == 0:
        return math.inf if numerator > 0 else NAN
    return numerator / denominator


def _single_from_f(f_value: float, k: int) -> float:
    """(F − 1) / (F + k − 1), the single-measure ICC implied by an F ratio (1 at F = ∞)."""
    if math.isnan(f_value):
        return NAN
    if math.isinf(f_value):
        return 1.0
    return 1.0 - k / (f_value + k - 1)


def _average_from_f(f_value: float) -> float:
    """1 − 1/F, the average-measure ICC implied by an F ratio (1 at F = ∞, −∞ at F = 0)."""
    if math.isnan(f_value):
        return NAN
    if f_value == 0:
        return -math.inf
    return 1.0 - 1.0 / f_value


def _f_quantile(q: float, df1: float, df2: float) -> float:
    """The q-quantile of F(df1, df2) (0 at q = 0 and ∞ at q = 1, for every df)."""
    if q <= 0.0:
        return 0.0
    if q >= 1.0:
        return math.inf
    return float(_special().fdtri(df1, df2, q))


def _p_value(f_value: float, df1: int, df2: int) -> float:
    return NAN if math.isnan(f_value) else float(_special().fdtrc(df1, df2, f_value))


# scipy.special, not scipy.stats: the same F distribution, and a fifth of the import time;
# still a fifth of a second, so imported when first needed (or ahead, by start_loading).
_SPECIAL = "scipy.special"


def _special() -> Any:
    return importlib.import_module(_SPECIAL)


def start_loading() -> None:
    """Start importing the F distribution's module in the background: a caller that will
    compute ICCs after a long read of its data (``scorer analyze``) has it ready by then.

    The import runs on a daemon thread; a later use waits on Python's import lock for it to
    finish, so the result is the same whether or not this was called.
    """
    threading.Thread(target=_special, name="load-scipy-special", daemon=True).start()


def _f_bounds(f_value: float, df1: int, df2: int, q: float) -> tuple[float, float]:
    """Lower and upper confidence limits of the population F ratio (Shrout & Fleiss)."""
    if math.isnan(f_value):
        return NAN, NAN
    return (
        f_value / _f_quantile(q, df1, df2),
        f_value * _f_quantile(q, df2, df1),
    )


def _spearman_brown(value: float, k: int) -> float:
    """The reliability of the mean of k readers from the single-reader reliability."""
    if math.isnan(value):
        return NAN
    return _ratio(k * value, 1.0 + (k - 1) * value)


def _absolute_agreement_bounds(ms: MeanSquares, rho: float, q: float) -> tuple[float, float]:
    """McGraw & Wong's approximate interval for ICC(A,1), Satterthwaite degrees of freedom."""
    n, k = ms.n, ms.k
    if math.isnan(rho):
        return NAN, NAN
    if rho == 1.0:
        # No residual and no reader variance: every reader gave every target the same
        # rating, the limit of the interval is the single point 1.
        return 1.0, 1.0
    a = k * rho / (n * (1.0 - rho))
    b = 1.0 + k * rho * (n - 1) / (n * (1.0 - rho))
    v = _ratio(
        (a * ms.jms + b * ms.ems) ** 2,
        (a * ms.jms) ** 2 / (k - 1) + (b * ms.ems) ** 2 / ((n - 1) * (k - 1)),
    )
    if math.isnan(v) or v <= 0:
        return NAN, NAN
    f_low = _f_quantile(q, n - 1, v)
    f_high = _f_quantile(q, v, n - 1)
    c = k * ms.jms + (k * n - k - n) * ms.ems
    low = _ratio(n * (ms.bms - f_low * ms.ems), f_low * c + n * ms.bms)
    high = _ratio(n * (f_high * ms.bms - ms.ems), c + n * f_high * ms.bms)
    return low, high


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence}")


def icc_from_mean_squares(ms: MeanSquares, confidence: float = 0.95) -> dict[str, IccResult]:
    """All six Shrout & Fleiss ICCs, keyed by form, from two-way ANOVA mean squares."""
    _check_confidence(confidence)
    n, k = ms.n, ms.k
    bms, wms, jms, ems = ms.bms, ms.wms, ms.jms, ms.ems
    q = 1.0 - (1.0 - confidence) / 2.0

    # One-way model: readers are not separated from error, F = BMS / WMS.
    f_one = _f_ratio(bms, wms)
    df_one = (ms.df_between, ms.df_within)
    one_low, one_high = _f_bounds(f_one, *df_one, q)
    # Two-way models: F = BMS / EMS.
    f_two = _f_ratio(bms, ems)
    df_two = (ms.df_between, ms.df_error)
    two_low, two_high = _f_bounds(f_two, *df_two, q)

    icc2_single = _ratio(bms - ems, bms + (k - 1) * ems + k * (jms - ems) / n)
    a_low, a_high = _absolute_agreement_bounds(ms, icc2_single, q)

    rows: dict[str, tuple[float, float, float, float, tuple[int, int]]] = {
        "ICC(1,1)": (
            _ratio(bms - wms, bms + (k - 1) * wms),
            _single_from_f(one_low, k),
            _single_from_f(one_high, k),
            f_one,
            df_one,
        ),
        "ICC(2,1)": (icc2_single, a_low, a_high, f_two, df_two),
        "ICC(3,1)": (
            _ratio(bms - ems, bms + (k - 1) * ems),
            _single_from_f(two_low, k),
            _single_from_f(two_high, k),
            f_two,
            df_two,
        ),
        "ICC(1,k)": (
            _ratio(bms - wms, bms),
            _average_from_f(one_low),
            _average_from_f(one_high),
            f_one,
            df_one,
        ),
        "ICC(2,k)": (
            _ratio(bms - ems, bms + (jms - ems) / n),
            _spearman_brown(a_low, k),
            _spearman_brown(a_high, k),
            f_two,
            df_two,
        ),
        "ICC(3,k)": (
            _ratio(bms - ems, bms),
            _average_from_f(two_low),
            _average_from_f(two_high),
            f_two,
            df_two,
        ),
    }
    return {
        form: IccResult(
            form=form,
            mcgraw_wong=MCGRAW_WONG[form],
            value=float(value),
            ci_low=float(low),
            ci_high=float(high),
            n=n,
            k=k,
            f_value=float(f_value),
            df1=df[0],
            df2=df[1],
            p_value=_p_value(f_value, *df),
            confidence=float(confidence),
        )
        for form, (value, low, high, f_value, df) in rows.items()
    }


def icc(x: npt.ArrayLike, confidence: float = 0.95) -> dict[str, IccResult]:
    """All six Shrout & Fleiss ICCs of an n targets × k readers array, keyed by form.

    ``x`` must be complete (see :func:`scorer.stats.anova.complete_rows`). Intervals: exact
    F-based for ICC(1,·) and ICC(3,·); McGraw & Wong's approximation for ICC(2,1), and the
    Spearman–Brown step-up of its bounds for ICC(2,k). Degenerate data (e.g. all ratings
    identical) gives NaN estimates rather than an error.
    """
    _check_confidence(confidence)
    return icc_from_mean_squares(two_way_anova(x), confidence)
