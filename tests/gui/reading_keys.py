"""Typing a whole case into the reading window's grid from the keyboard, as a reader would, and
what the database must then hold (shared by the end-to-end and the kill-and-resume tests)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from scorer.core.methods import Area, AreaDef, Method
from scorer.core.reads import AreaScore


@dataclass(frozen=True)
class Keystrokes:
    """The keys for one area of one visit and the value they must store."""

    letter: str
    area: Area
    keys: str
    value: AreaScore


def keys_for(d: AreaDef, seed: int) -> tuple[str, AreaScore]:
    """The keys a reader types for area ``d`` (a grade, two digits for a foot erosion, or
    ``N`` and a reason now and then) and the value they mean."""
    if seed % 29 == 5:
        return "n2", AreaScore.not_assessable("image_quality")
    if d.sides:
        proximal, distal = seed % 6, (seed * 5 + 1) % 6
        return f"{proximal}{distal}", AreaScore.from_sides([proximal, distal])
    grade = (seed * 7 + 3) % (d.max + 1)
    return str(grade), AreaScore.scored(grade)


def case_keystrokes(
    method: Method, letters: tuple[str, ...], start: int = 0
) -> Iterator[Keystrokes]:
    """Every area of every visit, visit by visit in the grid's order (the order the cursor
    moves in after each entry)."""
    seed = start
    for letter in letters:
        for d in method.areas:
            keys, value = keys_for(d, seed)
            yield Keystrokes(letter, d.area, keys, value)
            seed += 1
