"""Agreement and progression statistics over plain numpy arrays."""

from scorer.stats.agreement import SDC_Z, BlandAltman, SdcResult, bland_altman, sdc
from scorer.stats.anova import MeanSquares, complete_rows, two_way_anova
from scorer.stats.blocks import CompleteBlock, largest_complete_block
from scorer.stats.distribution import (
    PLOTTING_POSITIONS,
    CumulativeProbability,
    Summary,
    cumulative_probability,
    summary,
)
from scorer.stats.icc import ICC_FORMS, MCGRAW_WONG, IccResult, icc, icc_from_mean_squares
from scorer.stats.kappa import KappaResult, agreement_table, weighted_kappa

__all__ = [
    "ICC_FORMS",
    "MCGRAW_WONG",
    "PLOTTING_POSITIONS",
    "SDC_Z",
    "BlandAltman",
    "CompleteBlock",
    "CumulativeProbability",
    "IccResult",
    "KappaResult",
    "MeanSquares",
    "SdcResult",
    "Summary",
    "agreement_table",
    "bland_altman",
    "complete_rows",
    "cumulative_probability",
    "icc",
    "icc_from_mean_squares",
    "largest_complete_block",
    "sdc",
    "summary",
    "two_way_anova",
    "weighted_kappa",
]
