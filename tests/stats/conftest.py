"""Shared data for the statistics tests: the spec's worked example and published data sets."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

import numpy as np
import numpy.typing as npt
import pytest

# Spec §10: change scores of two readers over ten patients.
SPEC_R1 = [0, 3, 6, 0, 14, 4, 1, 20, 8, 2]
SPEC_R2 = [2, 2, 8, 1, 12, 7, 1, 24, 9, 5]

# Shrout & Fleiss (1979), Table 2: 6 targets × 4 judges.
SHROUT_FLEISS = [
    [9, 2, 5, 8],
    [6, 1, 3, 2],
    [8, 4, 6, 8],
    [7, 1, 2, 6],
    [10, 5, 6, 9],
    [6, 2, 4, 7],
]


@pytest.fixture
def spec_changes() -> npt.NDArray[np.float64]:
    """The spec §10 change scores as a 10 patients × 2 readers array."""
    return np.column_stack([SPEC_R1, SPEC_R2]).astype(np.float64)


@pytest.fixture
def shrout_fleiss() -> npt.NDArray[np.float64]:
    """Shrout & Fleiss's Table 2 ratings as a 6 × 4 array."""
    return np.array(SHROUT_FLEISS, dtype=np.float64)


def _assert_json_ready(data: Mapping[str, object]) -> None:
    plain = (str, int, float, bool, type(None), list)
    for key, value in data.items():
        assert type(value) in plain, f"{key} is {type(value).__name__}, not a plain JSON type"
        if isinstance(value, list):
            assert all(type(item) in (int, float) for item in value), key
    json.dumps(data, allow_nan=False)


@pytest.fixture
def assert_json_ready() -> Callable[[Mapping[str, object]], None]:
    """A check that a to_dict() result holds only plain JSON types and serialises strictly."""
    return _assert_json_ready
