"""Conversion of result numbers into JSON-ready plain Python values."""

from __future__ import annotations

import math


def json_float(value: float) -> float | None:
    """A float as a plain Python float, or None when it is NaN or infinite.

    JSON has no NaN or infinity; results that are not estimable carry NaN in the dataclass
    and None in their ``to_dict()``.
    """
    number = float(value)
    return number if math.isfinite(number) else None
