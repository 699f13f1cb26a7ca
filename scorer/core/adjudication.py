"""Adjudication (spec §8): which patients are discrepant, and their final scores.

A patient is discrepant when the primary readers' change scores differ by more than the
trial's limit (a number, or the frozen SDC) or when they disagree on progressor status. The
final score follows the trial's rule: the mean of all reads; the mean of the two closest
(ties: the pair whose mean is nearer the median of all); or the adjudicator's read alone.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

FINAL_RULES = ("mean_all", "closest_two", "adjudicator")


@dataclass(frozen=True)
class Discrepancy:
    """Why a patient needs adjudication (empty ``reasons`` means it does not)."""

    patient: str
    reasons: tuple[str, ...]

    @property
    def discrepant(self) -> bool:
        return bool(self.reasons)


def check_discrepancy(
    patient: str,
    changes: Mapping[str, float],
    limit: float,
    progression_cutoff: float | None = None,
    inclusive: bool = False,
) -> Discrepancy:
    """Compare the primary readers' change scores of one patient.

    ``limit`` is the largest allowed difference between any two readers' changes;
    ``progression_cutoff`` (e.g. the frozen SDC), when given, also makes a patient discrepant
    when the readers disagree on progression (change above the cutoff, or at or above it when
    ``inclusive``).
    """
    if len(changes) < 2:
        return Discrepancy(patient, ())
    reasons: list[str] = []
    values = sorted(changes.items())
    spread = max(v for _, v in values) - min(v for _, v in values)
    if spread > limit + 1e-9:
        reasons.append(f"change scores differ by {spread:g} (limit {limit:g})")
    if progression_cutoff is not None:

        def progresses(x: float) -> bool:
            return x >= progression_cutoff if inclusive else x > progression_cutoff

        status = {r: progresses(v) for r, v in values}
        if len(set(status.values())) > 1:
            yes = ", ".join(r for r, p in status.items() if p)
            no = ", ".join(r for r, p in status.items() if not p)
            reasons.append(f"progressor status differs ({yes} progress; {no} do not)")
    return Discrepancy(patient, tuple(reasons))


def final_score(values: Sequence[float], rule: str, adjudicator: float | None = None) -> float:
    """The final score of a patient under the trial's rule.

    ``values`` are all reads' scores (primary and adjudication); ``adjudicator`` is the
    adjudicator's, required by the "adjudicator" rule.
    """
    if rule not in FINAL_RULES:
        raise ValueError(f"unknown final-score rule {rule!r} ({', '.join(FINAL_RULES)})")
    if rule == "adjudicator":
        if adjudicator is None:
            raise ValueError("the 'adjudicator' rule needs the adjudicator's read")
        return float(adjudicator)
    if not values:
        raise ValueError("no reads to combine")
    if rule == "mean_all" or len(values) <= 2:
        return float(statistics.fmean(values))
    median = statistics.median(values)
    best: tuple[float, float, tuple[float, float]] | None = None
    for a, b in itertools.combinations(values, 2):
        key = (abs(a - b), abs((a + b) / 2 - median), (a, b))
        if best is None or key[:2] < best[:2]:
            best = key
    assert best is not None
    a, b = best[2]
    return (a + b) / 2


def select_reads(
    changes: Mapping[str, float], rule: str, adjudicator: str | None = None
) -> tuple[str, ...]:
    """Which reads make a patient's final score under the trial's rule, by their change.

    ``changes`` maps each read (a reader, the adjudicator included) to its change score;
    ``adjudicator`` names the adjudicator's read. "mean_all": every read; "adjudicator": the
    adjudicator's alone; "closest_two": the two reads whose changes are closest, a tie going
    to the pair whose mean is nearer the median of all (then to the pair first in name order,
    so the result never depends on input order).
    """
    if rule not in FINAL_RULES:
        raise ValueError(f"unknown final-score rule {rule!r} ({', '.join(FINAL_RULES)})")
    if not changes:
        raise ValueError("no reads to combine")
    names = sorted(changes)
    if rule == "adjudicator":
        if adjudicator is None or adjudicator not in changes:
            raise ValueError("the 'adjudicator' rule needs the adjudicator's read")
        return (adjudicator,)
    if rule == "mean_all" or len(names) <= 2:
        return tuple(names)
    median = statistics.median(changes.values())
    best: tuple[float, float, tuple[str, str]] | None = None
    for a, b in itertools.combinations(names, 2):
        key = (
            round(abs(changes[a] - changes[b]), 9),
            round(abs((changes[a] + changes[b]) / 2 - median), 9),
            (a, b),
        )
        if best is None or key < best:
            best = key
    assert best is not None
    return best[2]
