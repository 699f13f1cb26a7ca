"""The trial's endpoint models, on statsmodels (BSD): ANCOVA of change with least-squares means,
the same on ranks, and the comparison of non-progressor shares between arms.

- :func:`ancova` fits ``change ~ C(arm, Treatment(reference=control)) + baseline [+ C(factor)]``
  by ordinary least squares (``statsmodels.formula.api.ols``). The LS mean of an arm is the
  model's prediction for that arm with the baseline at its overall mean and each stratification
  factor averaged over its observed proportions (the design rows averaged with the arm set),
  its interval from the model's covariance (``t_test`` of that contrast). An arm's difference
  from control is its coefficient, with its t interval and p-value.
- :func:`rank_ancova` is the same model on the ranks of change and of baseline (Conover & Iman
  1982), a sensitivity analysis: its difference is in mean rank.
- :func:`compare_proportions`: per arm against control, the difference in proportions with
  Newcombe's hybrid score interval (1998, method 10; ``confint_proportions_2indep(...,
  method="newcomb")``) and a p-value: the Wald test of the arm in a logistic regression without
  strata, the Cochran–Mantel–Haenszel test (with continuity correction, as R's
  ``mantelhaen.test``) over the strata with them. When that fit fails — an empty cell, complete
  separation, no convergence — the result says why and gives Fisher's exact test instead.

statsmodels (and pandas) are imported inside the functions: importing this module costs nothing,
so start-up and the reading window never load them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

ALPHA = 0.05


class ModelError(ValueError):
    """A model cannot be fitted on these data (the reason is the message)."""


@dataclass(frozen=True)
class ArmMean:
    """An arm's least-squares mean with its confidence interval."""

    arm: str
    n: int
    mean: float
    low: float
    high: float


@dataclass(frozen=True)
class Difference:
    """An arm's difference from control with its confidence interval and p-value."""

    arm: str
    estimate: float
    low: float
    high: float
    p: float


@dataclass(frozen=True)
class AncovaResult:
    """An ANCOVA fit: its formula (in the trial's names), n, the LS means, the differences."""

    formula: str
    n: int
    control: str
    means: tuple[ArmMean, ...]
    differences: tuple[Difference, ...]
    slope: float  # of baseline
    residual_df: int
    residual_ms: float
    adjustment: str  # how the covariates were set for the LS means


@dataclass(frozen=True)
class ProportionComparison:
    """Non-progressors of an arm against control: the difference in proportions (arm − control)
    with Newcombe's hybrid score interval, and the test used with its p-value."""

    arm: str
    control: str
    x: int
    n: int
    x_control: int
    n_control: int
    difference: float
    low: float
    high: float
    test: str
    p: float | None
    note: str  # why the intended test was replaced, or ""


def _codes(arms: Sequence[str], control: str) -> dict[str, str]:
    """Arm label -> a code safe in a formula (control first)."""
    ordered = [control, *sorted(a for a in set(arms) if a != control)]
    return {a: f"A{i}" for i, a in enumerate(ordered)}


def _check_arms(arm: Sequence[str], control: str) -> None:
    if control not in set(arm):
        raise ModelError(f"the control arm {control!r} has no patient with a value")
    if len(set(arm)) < 2:
        raise ModelError("only one arm has patients with a value: nothing to compare")


def ancova(
    change: Sequence[float],
    baseline: Sequence[float],
    arm: Sequence[str],
    control: str,
    strata: Mapping[str, Sequence[str]] | None = None,
    alpha: float = ALPHA,
    response: str = "change",
    covariate: str = "baseline",
) -> AncovaResult:
    """ANCOVA of ``change`` on arm and ``baseline`` (and each stratification factor in
    ``strata``, name -> level per patient); see the module docstring."""
    import pandas as pd
    import statsmodels.formula.api as smf

    n = len(change)
    if not (len(baseline) == len(arm) == n):
        raise ModelError("change, baseline and arm differ in length")
    _check_arms(arm, control)
    codes = _codes(arm, control)
    data: dict[str, Any] = {
        "y": np.asarray(change, dtype=float),
        "x": np.asarray(baseline, dtype=float),
        "arm": [codes[a] for a in arm],
    }
    factors = list((strata or {}).items())
    terms = ["C(arm, Treatment(reference='A0'))", "x"]
    shown = [f'C(arm, Treatment(reference="{control}"))', covariate]
    for k, (name, levels) in enumerate(factors):
        if len(levels) != n:
            raise ModelError(f"the factor {name} differs in length from the data")
        if len(set(levels)) < 2:
            continue  # one level: nothing to adjust for
        data[f"s{k}"] = [str(v) for v in levels]
        terms.append(f"C(s{k})")
        shown.append(f"C({name})")
    frame = pd.DataFrame(data)
    if not np.all(np.isfinite(frame["y"])) or not np.all(np.isfinite(frame["x"])):
        raise ModelError("a change or baseline value is missing or not finite")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = smf.ols("y ~ " + " + ".join(terms), data=frame).fit()
    if round(fit.df_resid) < 1:
        raise ModelError(
            f"{n} patients are too few for {len(fit.params)} parameters (no residual degrees "
            "of freedom)"
        )
    names = list(fit.model.exog_names)
    exog = np.asarray(fit.model.exog, dtype=float)
    arm_col = {
        code: names.index(f"C(arm, Treatment(reference='A0'))[T.{code}]")
        for code in codes.values()
        if code != "A0"
    }
    average = exog.mean(axis=0)
    inverse = {c: a for a, c in codes.items()}
    counts = {a: sum(1 for v in arm if v == a) for a in codes}
    means = []
    for code in sorted(codes.values(), key=lambda c: int(c[1:])):
        row = average.copy()
        for other, j in arm_col.items():
            row[j] = 1.0 if other == code else 0.0
        t = fit.t_test(row.reshape(1, -1))
        low, high = (float(v) for v in np.asarray(t.conf_int(alpha=alpha)).ravel())
        label = inverse[code]
        means.append(ArmMean(label, counts[label], float(np.ravel(t.effect)[0]), low, high))
    ci = np.asarray(fit.conf_int(alpha=alpha))
    params, pvalues = np.asarray(fit.params), np.asarray(fit.pvalues)
    diffs = [
        Difference(
            inverse[code], float(params[j]), float(ci[j, 0]), float(ci[j, 1]), float(pvalues[j])
        )
        for code, j in sorted(arm_col.items(), key=lambda kv: int(kv[0][1:]))
    ]
    adjustment = f"{covariate} at its overall mean ({float(frame['x'].mean()):.4g})"
    if len(terms) > 2:
        adjustment += "; each stratification factor averaged over its observed proportions"
    return AncovaResult(
        formula=f"{response} ~ " + " + ".join(shown),
        n=n,
        control=control,
        means=tuple(means),
        differences=tuple(diffs),
        slope=float(params[names.index("x")]),
        residual_df=round(fit.df_resid),
        residual_ms=float(fit.mse_resid),
        adjustment=adjustment,
    )


def rank_ancova(
    change: Sequence[float],
    baseline: Sequence[float],
    arm: Sequence[str],
    control: str,
    strata: Mapping[str, Sequence[str]] | None = None,
    alpha: float = ALPHA,
) -> AncovaResult:
    """ANCOVA on ranks (Conover & Iman 1982): the ranks of change and of baseline (mid-ranks
    for ties, over all patients) in the same model; differences are in mean rank."""
    from scipy.stats import rankdata

    return ancova(
        list(rankdata(np.asarray(change, dtype=float))),
        list(rankdata(np.asarray(baseline, dtype=float))),
        arm,
        control,
        strata,
        alpha,
        response="rank(change)",
        covariate="rank(baseline)",
    )


def newcombe_interval(
    x1: int, n1: int, x2: int, n2: int, alpha: float = ALPHA
) -> tuple[float, float]:
    """Newcombe's hybrid score interval (1998, method 10) for x1/n1 − x2/n2."""
    from statsmodels.stats.proportion import confint_proportions_2indep

    low, high = confint_proportions_2indep(
        x1, n1, x2, n2, method="newcomb", compare="diff", alpha=alpha
    )
    return float(low), float(high)


def cmh_test(tables: Sequence[np.ndarray], correction: bool = True) -> tuple[float, float]:
    """The Cochran–Mantel–Haenszel test over 2×2 tables (rows: the two groups; columns:
    event, no event): (chi-square statistic, p-value)."""
    from statsmodels.stats.contingency_tables import StratifiedTable

    r = StratifiedTable([np.asarray(t, dtype=float) for t in tables]).test_null_odds(
        correction=correction
    )
    return float(r.statistic), float(r.pvalue)


def _logistic_p(y: Sequence[int], arm: Sequence[str], codes: Mapping[str, str]) -> dict[str, float]:
    """Wald p-value of each arm's coefficient in a logistic regression of y on arm; ModelError
    with the reason when the fit fails."""
    import pandas as pd
    import statsmodels.formula.api as smf

    frame = pd.DataFrame({"y": np.asarray(y, dtype=float), "arm": [codes[a] for a in arm]})
    for code, group in frame.groupby("arm"):
        if group["y"].min() == group["y"].max():
            label = next(a for a, c in codes.items() if c == code)
            every = "every" if group["y"].iloc[0] == 1 else "no"
            raise ModelError(
                f"{every} patient of arm {label} is a non-progressor (an empty cell: the odds "
                "ratio is infinite, complete separation)"
            )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            fit = smf.logit("y ~ C(arm, Treatment(reference='A0'))", data=frame).fit(disp=0)
        except Exception as exc:  # separation, singular matrix, convergence warnings
            raise ModelError(f"{type(exc).__name__}: {exc}") from exc
    if not bool(fit.mle_retvals.get("converged", True)):
        raise ModelError("the maximum-likelihood fit did not converge")
    out = {}
    names = list(fit.model.exog_names)
    for a, code in codes.items():
        if code == "A0":
            continue
        p = float(
            np.asarray(fit.pvalues)[names.index(f"C(arm, Treatment(reference='A0'))[T.{code}]")]
        )
        if not math.isfinite(p):
            raise ModelError("the fit gave no finite standard error")
        out[a] = p
    return out


def compare_proportions(
    success: Sequence[bool],
    arm: Sequence[str],
    control: str,
    strata: Sequence[str] | None = None,
    alpha: float = ALPHA,
) -> list[ProportionComparison]:
    """Each arm against control: see the module docstring. ``success`` is True for a
    non-progressor; ``strata`` one stratum label per patient (the factors combined)."""
    from scipy.stats import fisher_exact

    _check_arms(arm, control)
    y = [1 if s else 0 for s in success]
    codes = _codes(arm, control)
    arms = list(arm)
    counts = {
        a: (sum(v for v, g in zip(y, arms, strict=True) if g == a), arms.count(a)) for a in codes
    }
    others = [a for a in codes if a != control]
    p_of: dict[str, float] = {}
    reason = ""
    if strata is None:
        test = "logistic regression on arm (Wald test)"
        try:
            p_of = _logistic_p(y, arm, codes)
        except ModelError as exc:
            reason = f"logistic regression could not be fitted: {exc}"
    else:
        test = "Cochran–Mantel–Haenszel test over the strata (continuity-corrected)"
        for a in others:
            tables = []
            for s in sorted(set(strata)):
                cells = [
                    (v, g)
                    for v, g, st in zip(y, arm, strata, strict=True)
                    if st == s and g in (a, control)
                ]
                xa = sum(v for v, g in cells if g == a)
                na = sum(1 for _, g in cells if g == a)
                xc = sum(v for v, g in cells if g == control)
                nc = sum(1 for _, g in cells if g == control)
                if na and nc:  # a stratum without both arms says nothing about their difference
                    tables.append(np.array([[xa, na - xa], [xc, nc - xc]]))
            problem = ""
            if not tables:
                problem = "no stratum has patients of both arms"
            else:
                both = np.sum(tables, axis=0)
                if both[:, 0].sum() == 0 or both[:, 1].sum() == 0:
                    problem = "every patient is in one outcome (an empty column)"
            if not problem:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    _, p = cmh_test(tables)
                if math.isfinite(p):
                    p_of[a] = p
                else:
                    problem = "the test statistic is not defined (no variance within the strata)"
            if problem:
                reason = f"the Cochran–Mantel–Haenszel test could not be computed: {problem}"
        if reason:
            p_of = {}
    out = []
    for a in others:
        x1, n1 = counts[a]
        x2, n2 = counts[control]
        low, high = newcombe_interval(x1, n1, x2, n2, alpha)
        if a in p_of:
            out.append(
                ProportionComparison(
                    a, control, x1, n1, x2, n2, x1 / n1 - x2 / n2, low, high, test, p_of[a], ""
                )
            )
        else:
            _, p = fisher_exact([[x1, n1 - x1], [x2, n2 - x2]])
            out.append(
                ProportionComparison(
                    a,
                    control,
                    x1,
                    n1,
                    x2,
                    n2,
                    x1 / n1 - x2 / n2,
                    low,
                    high,
                    "Fisher's exact test (two-sided)",
                    float(p),
                    f"{reason}; Fisher's exact test instead",
                )
            )
    return out


__all__ = [
    "ALPHA",
    "AncovaResult",
    "ArmMean",
    "Difference",
    "ModelError",
    "ProportionComparison",
    "ancova",
    "cmh_test",
    "compare_proportions",
    "newcombe_interval",
    "rank_ancova",
]
