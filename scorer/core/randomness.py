"""A deterministic random stream that stays the same across Python and library versions.

Worklist orders must be reproducible from their stored seed for as long as a trial's records
are kept, so they cannot depend on ``random.shuffle`` (whose algorithm Python may change). This
stream is SHA-256 in counter mode: block i is SHA-256(seed ‖ label ‖ i); integers below n come
from 64-bit words by rejection sampling, so every value is equally likely.
"""

from __future__ import annotations

import hashlib
from collections.abc import MutableSequence, Sequence
from typing import TypeVar

T = TypeVar("T")

ALGORITHM = "sha256-ctr-v1"


class Stream:
    """A reproducible stream of uniform integers from a seed and a purpose label."""

    def __init__(self, seed: str, label: str = "") -> None:
        self._prefix = f"{ALGORITHM}\x1f{seed}\x1f{label}\x1f".encode()
        self._counter = 0
        self._buffer: list[int] = []

    def _word(self) -> int:
        if not self._buffer:
            block = hashlib.sha256(self._prefix + str(self._counter).encode()).digest()
            self._counter += 1
            self._buffer = [int.from_bytes(block[i : i + 8], "big") for i in range(0, 32, 8)]
        return self._buffer.pop(0)

    def below(self, n: int) -> int:
        """A uniform integer in [0, n)."""
        if n <= 0:
            raise ValueError("n must be positive")
        limit = (1 << 64) - ((1 << 64) % n)
        while True:
            w = self._word()
            if w < limit:
                return w % n

    def between(self, lo: int, hi: int) -> int:
        """A uniform integer in [lo, hi]."""
        return lo + self.below(hi - lo + 1)

    def shuffle(self, items: MutableSequence[T]) -> None:
        """Fisher–Yates in place."""
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]

    def shuffled(self, items: Sequence[T]) -> list[T]:
        out = list(items)
        self.shuffle(out)
        return out

    def sample(self, items: Sequence[T], k: int) -> list[T]:
        """k distinct items, in the order drawn."""
        pool = list(items)
        out: list[T] = []
        for _ in range(min(k, len(pool))):
            out.append(pool.pop(self.below(len(pool))))
        return out

    def code(self, length: int, alphabet: str) -> str:
        return "".join(alphabet[self.below(len(alphabet))] for _ in range(length))
