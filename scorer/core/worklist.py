"""Worklists: each reader's cases in a random order from a stored seed (spec §8).

``paired_blinded`` makes one case per patient with the patient's visits in a random order,
shown as A, B, C; ``chronological`` one case per patient with the visits in time order;
``single`` one case per (patient, visit), all shuffled together. A share of each reader's cases
comes back later as hidden re-reads, at least ``min_gap`` cases after the first reading (or at
the end of a short list). Regenerating from the same inputs and seed gives the same list.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from scorer.core.randomness import ALGORITHM, Stream

DESIGNS: tuple[str, ...] = ("paired_blinded", "chronological", "single")
CASE_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CASE_CODE_LENGTH = 8
LETTERS = string.ascii_uppercase


@dataclass(frozen=True)
class Case:
    """One case of a worklist: a patient with the visits shown, in the order shown.

    ``visits`` are visit labels in display order; the reader sees only ``letters`` (A, B, C).
    ``original`` is the position of the case a re-read repeats.
    """

    position: int
    code: str
    patient: str
    visits: tuple[str, ...]
    read_type: str = "primary"
    original: int | None = None

    @property
    def letters(self) -> tuple[str, ...]:
        return tuple(LETTERS[i] for i in range(len(self.visits)))


@dataclass(frozen=True)
class WorklistInput:
    """Everything a worklist is made from; stored with it so it can be regenerated."""

    seed: str
    reader: str
    design: str
    patients: Sequence[str]
    visits: Mapping[str, Sequence[str]]
    reread_share: float = 0.10
    min_gap: int = 20
    algorithm: str = ALGORITHM
    taken_codes: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.design not in DESIGNS:
            raise ValueError(f"unknown reading design {self.design!r} ({', '.join(DESIGNS)})")
        if not 0.0 <= self.reread_share <= 1.0:
            raise ValueError("the share of re-reads must be between 0 and 1")
        if self.min_gap < 0:
            raise ValueError("the re-read gap cannot be negative")
        if self.algorithm != ALGORITHM:
            raise ValueError(f"worklists made with {self.algorithm} need that algorithm")


def generate(inp: WorklistInput) -> list[Case]:
    """The reader's cases in reading order, re-reads included."""
    patients = sorted(set(inp.patients))
    # Each purpose draws from its own stream, so adding re-reads never moves the main order.
    order = Stream(inp.seed, f"patients:{inp.reader}")
    visit_rng = Stream(inp.seed, f"visits:{inp.reader}")
    base: list[tuple[str, tuple[str, ...]]] = []
    if inp.design == "single":
        units = [(p, (v,)) for p in patients for v in inp.visits.get(p, ())]
        base = order.shuffled(units)
    else:
        for p in order.shuffled(patients):
            visits = tuple(inp.visits.get(p, ()))
            if not visits:
                continue
            if inp.design == "paired_blinded":
                visits = tuple(visit_rng.shuffled(visits))
            base.append((p, visits))
    n = len(base)
    rr = Stream(inp.seed, f"rereads:{inp.reader}")
    n_rereads = int(inp.reread_share * n + 0.5)  # half up: 2.5 cases -> 3
    chosen = sorted(rr.sample(range(n), n_rereads))
    # A re-read goes after original case q, q drawn from [p + min_gap, n - 1], or at the end.
    after: dict[int, list[int]] = {}
    for first in chosen:
        lo = first + inp.min_gap
        q = rr.between(lo, n - 1) if lo <= n - 1 else n - 1
        after.setdefault(q, []).append(first)
    codes = Stream(inp.seed, f"codes:{inp.reader}")
    taken = set(inp.taken_codes)

    def new_code() -> str:
        while True:
            c = codes.code(CASE_CODE_LENGTH, CASE_CODE_ALPHABET)
            if c not in taken:
                taken.add(c)
                return c

    primary_codes = [new_code() for _ in range(n)]
    out: list[Case] = []
    position_of: dict[int, int] = {}
    for i, (p, visits) in enumerate(base):
        position_of[i] = len(out)
        out.append(Case(len(out), primary_codes[i], p, visits))
        for orig in rr.shuffled(after.get(i, [])):
            op, ov = base[orig]
            # A fresh visit order too, so nothing about a re-read matches its original.
            shown = tuple(visit_rng.shuffled(ov)) if inp.design == "paired_blinded" else ov
            out.append(Case(len(out), new_code(), op, shown, "reread", position_of[orig]))
    return out
