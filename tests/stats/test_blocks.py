"""The largest complete block of an incomplete patients × readers table."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from scorer.stats.blocks import largest_complete_block

N = np.nan


def _brute_force(x: np.ndarray, min_rows: int = 2) -> tuple[tuple[int, ...], int] | None:
    """Every column subset of two or more, ranked as docs/incomplete-designs.md says."""
    has = ~np.isnan(x)
    best: tuple[int, int, tuple[int, ...]] | None = None
    for size in range(2, x.shape[1] + 1):
        for cols in itertools.combinations(range(x.shape[1]), size):
            n = int(has[:, list(cols)].all(axis=1).sum())
            key = (-n, -len(cols), cols)
            if best is None or key < best:
                best = key
    if best is None or -best[0] < min_rows:
        return None
    return best[2], -best[0]


def test_a_complete_table_is_one_block_of_everything() -> None:
    x = np.arange(12.0).reshape(4, 3)
    b = largest_complete_block(x)
    assert b is not None and b.readers == (0, 1, 2) and b.n == 4 and b.mask.all()


def test_the_late_reader_is_left_out_for_more_patients() -> None:
    # R1 and R2 read six patients, R3 only the first two.
    x = np.array([[1, 2, 3], [4, 5, 6], [7, 8, N], [1, 1, N], [2, 2, N], [3, 3, N]], dtype=float)
    b = largest_complete_block(x)
    assert b is not None and b.readers == (0, 1) and b.n == 6
    assert b.mask.tolist() == [True] * 6


def test_most_readers_break_a_tie_in_patients_then_the_first_reader_set() -> None:
    # Pairs (0,1), (0,2), (1,2) share rows 0-2; all three share them too -> three readers.
    x = np.array([[1, 2, 3, N], [1, 2, 3, N], [1, 2, 3, 4], [N, N, N, 4]], dtype=float)
    b = largest_complete_block(x)
    assert b is not None and b.readers == (0, 1, 2) and b.n == 3
    # Two disjoint pairs with as many patients each: the first pair in order wins.
    y = np.array([[1, 2, N, N], [1, 2, N, N], [N, N, 3, 4], [N, N, 3, 4]], dtype=float)
    b = largest_complete_block(y)
    assert b is not None and b.readers == (0, 1) and b.mask.tolist() == [True, True, False, False]


def test_no_block_of_two_patients_or_two_readers() -> None:
    assert largest_complete_block(np.array([[1.0], [2.0]])) is None
    assert largest_complete_block(np.array([[1, 2], [N, 3], [4, N]], dtype=float)) is None
    assert largest_complete_block(np.full((3, 3), N)) is None


@pytest.mark.parametrize("seed", range(40))
def test_agrees_with_trying_every_reader_subset(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(1, 9)), int(rng.integers(1, 7))
    x = rng.integers(0, 5, size=(n, k)).astype(float)
    x[rng.random((n, k)) < rng.uniform(0.1, 0.7)] = np.nan
    got = largest_complete_block(x)
    want = _brute_force(x)
    if want is None:
        assert got is None
    else:
        assert got is not None and (got.readers, got.n) == want
        assert got.mask.tolist() == (~np.isnan(x[:, list(want[0])])).all(axis=1).tolist()
