"""Smallest detectable change and Bland–Altman limits of agreement between readers."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from scorer.stats._json import json_float
from scorer.stats.anova import FloatArray, as_ratings_matrix, two_way_anova

# The z values of the spec (§6), exactly as written there, so that a reported SDC can be
# recomputed by hand from the protocol; not scipy's more precise normal quantiles.
SDC_Z: Mapping[int, float] = MappingProxyType({95: 1.96, 80: 1.2816})

# Bland & Altman's limits of agreement: mean difference ± 1.96 SD.
LIMITS_OF_AGREEMENT_Z = 1.96


@dataclass(frozen=True)
class SdcResult:
    """Smallest detectable change (Bruynesteyn 2005) from readers' change scores.

    ``value`` = z · √EMS / √k, with EMS the residual mean square of the two-way ANOVA of
    change scores (patients × readers), ``k`` the number of readers averaged in the score the
    SDC is applied to, ``n`` the patients and ``n_readers`` the readers it was computed from.
    ``sd_diff`` is SD(reader 1 − reader 2) for two readers and its equivalent √(2·EMS)
    for more.
    """

    value: float
    level: int
    z: float
    k: int
    sd_diff: float
    ems: float
    n: int
    n_readers: int

    def to_dict(self) -> dict[str, float | int | None]:
        """The result as JSON-ready values."""
        return {
            "value": json_float(self.value),
            "level": self.level,
            "z": self.z,
            "k": self.k,
            "sd_diff": json_float(self.sd_diff),
            "ems": json_float(self.ems),
            "n": self.n,
            "n_readers": self.n_readers,
        }


def sdc(changes: npt.ArrayLike, level: int = 95, k: int | None = None) -> SdcResult:
    """The smallest detectable change of an n patients × r readers array of change scores.

    ``level`` is 95 or 80 (z = 1.96 or 1.2816); ``k`` defaults to r, the number of readers
    whose mean is the patient's score (use ``k=1`` for a single reader's progression).
    With two readers this is Bruynesteyn's z · SD(d) / (√2 · √k), d = reader 1 − reader 2.
    Raises ValueError for another level, k < 1, fewer than 2 patients or readers, or
    missing values (see :func:`scorer.stats.anova.complete_rows`).
    """
    if level not in SDC_Z:
        allowed = ", ".join(str(key) for key in SDC_Z)
        raise ValueError(f"SDC level must be one of {allowed} (percent), got {level!r}")
    if k is not None and k < 1:
        raise ValueError(f"k (readers averaged) must be at least 1, got {k}")
    matrix = as_ratings_matrix(changes)
    ms = two_way_anova(matrix)
    readers_averaged = ms.k if k is None else k
    z = SDC_Z[level]
    if ms.k == 2:
        sd_diff = float(np.std(matrix[:, 0] - matrix[:, 1], ddof=1))
    else:
        sd_diff = math.sqrt(2.0 * ms.ems)
    return SdcResult(
        value=z * math.sqrt(ms.ems) / math.sqrt(readers_averaged),
        level=int(level),
        z=z,
        k=int(readers_averaged),
        sd_diff=sd_diff,
        ems=ms.ems,
        n=ms.n,
        n_readers=ms.k,
    )


@dataclass(frozen=True)
class BlandAltman:
    """Bland–Altman agreement of two paired measurements: mean and SD of a − b, with limits.

    ``sd_diff`` is the sample SD (n − 1); the limits are mean ± 1.96 · SD.
    """

    n: int
    mean_diff: float
    sd_diff: float
    loa_low: float
    loa_high: float

    def to_dict(self) -> dict[str, float | int | None]:
        """The result as JSON-ready values."""
        return {
            "n": self.n,
            "mean_diff": json_float(self.mean_diff),
            "sd_diff": json_float(self.sd_diff),
            "loa_low": json_float(self.loa_low),
            "loa_high": json_float(self.loa_high),
        }


def _paired_vectors(a: npt.ArrayLike, b: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    first = np.asarray(a, dtype=np.float64)
    second = np.asarray(b, dtype=np.float64)
    if first.ndim != 1 or second.ndim != 1:
        raise ValueError("a and b must be 1-D arrays of paired values")
    if first.shape != second.shape:
        raise ValueError(f"a and b must have the same length, got {first.size} and {second.size}")
    if not (np.isfinite(first).all() and np.isfinite(second).all()):
        raise ValueError("a and b must not contain NaN or infinite values; drop incomplete pairs")
    return first, second


def bland_altman(a: npt.ArrayLike, b: npt.ArrayLike) -> BlandAltman:
    """Bland–Altman mean difference (a − b) and 95 % limits of agreement of paired values.

    Raises ValueError for fewer than 2 pairs, unequal lengths or missing values.
    """
    first, second = _paired_vectors(a, b)
    if first.size < 2:
        raise ValueError(f"Bland–Altman needs at least 2 pairs, got {first.size}")
    diff = first - second
    mean_diff = float(diff.mean())
    sd_diff = float(np.std(diff, ddof=1))
    half_width = LIMITS_OF_AGREEMENT_Z * sd_diff
    return BlandAltman(
        n=int(diff.size),
        mean_diff=mean_diff,
        sd_diff=sd_diff,
        loa_low=mean_diff - half_width,
        loa_high=mean_diff + half_width,
    )
