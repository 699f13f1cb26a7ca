"""Progression thresholds and progressor status (spec §6)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

ThresholdKind = Literal["sdc95", "sdc80", "fixed"]
Comparison = Literal[">", ">="]


@dataclass(frozen=True)
class Threshold:
    """A progression threshold: the SDC at 95 or 80 %, or a fixed number, with its comparison.

    ``annualised`` thresholds apply to change per year (rapid radiographic progression).
    """

    kind: ThresholdKind
    value: float | None = None
    op: Comparison = ">"
    annualised: bool = False
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind == "fixed" and (self.value is None or not math.isfinite(self.value)):
            raise ValueError("a fixed threshold needs a finite number")
        if self.op not in (">", ">="):
            raise ValueError(f"unknown comparison {self.op!r}: use > or >=")

    @property
    def comparison(self) -> str:
        """What is compared, with the comparison: ``change > 0.5``, ``change >= SDC95``,
        ``annualised change >= 5``."""
        if self.kind == "fixed":
            what = f"{self.value:g}"
        else:
            what = "SDC95" if self.kind == "sdc95" else "SDC80"
        measure = "annualised change" if self.annualised else "change"
        return f"{measure} {self.op} {what}"

    @property
    def label(self) -> str:
        """The comparison, after the name if there is one: ``change > SDC95``,
        ``rapid progression (annualised change >= 5)``."""
        return f"{self.name} ({self.comparison})" if self.name else self.comparison

    def resolve(self, sdc95: float | None = None, sdc80: float | None = None) -> float | None:
        """The number this threshold stands for, given the SDCs (None when the SDC is unknown)."""
        if self.kind == "sdc95":
            return sdc95
        if self.kind == "sdc80":
            return sdc80
        return self.value

    def exceeded(self, change: float, cutoff: float) -> bool:
        """Whether a change is progression against this threshold's resolved cutoff."""
        return change >= cutoff if self.op == ">=" else change > cutoff


RAPID_PROGRESSION = Threshold("fixed", 5.0, ">=", annualised=True, name="rapid progression")

_THRESHOLD = re.compile(r"^(rapid)?(>=|>)?(sdc95|sdc80|sdc|-?\d+(?:\.\d+)?)$")

THRESHOLD_SYNTAX = (
    "a change threshold is sdc95, sdc80 or a number (0, 0.5, 3), optionally after > or >= "
    "(>sdc95, >=0.5; without one the comparison is >, spec §6: change > threshold); rapid "
    "progression on annualised change states its comparison: rapid>=5 or rapid>5"
)


def parse_threshold(text: str) -> Threshold:
    """A threshold from its written form.

    Change thresholds: ``sdc95``, ``sdc80`` (``sdc`` is ``sdc95``) or a number, optionally
    after ``>`` or ``>=``; without one the comparison is ``>`` (spec §6: progression is
    change > threshold) and the label says so. Rapid progression, on annualised change,
    must state its comparison, since papers differ: ``rapid>=5`` or ``rapid>5``; a fixed
    number only. ValueError with the accepted forms otherwise."""
    t = text.strip().lower().replace(" ", "")
    m = _THRESHOLD.match(t)
    if m is None:
        raise ValueError(f"unknown threshold {text!r}: {THRESHOLD_SYNTAX}")
    rapid, op, what = m.group(1) is not None, m.group(2), m.group(3)
    if rapid:
        if op is None:
            raise ValueError(
                f"threshold {text!r} does not say how it compares: rapid progression is "
                f"rapid>={what} or rapid>{what} (spec §6: make >= or > explicit)"
            )
        if what.startswith("sdc"):
            raise ValueError(
                f"threshold {text!r}: rapid progression is a fixed annualised change, "
                "such as rapid>=5 or rapid>5"
            )
    comparison: Comparison = ">=" if op == ">=" else ">"
    if what.startswith("sdc"):
        return Threshold("sdc80" if what == "sdc80" else "sdc95", op=comparison)
    return Threshold(
        "fixed",
        float(what),
        comparison,
        annualised=rapid,
        name="rapid progression" if rapid else "",
    )


DEFAULT_THRESHOLDS: tuple[Threshold, ...] = (
    Threshold("sdc95"),
    Threshold("sdc80"),
    Threshold("fixed", 0.0),
    Threshold("fixed", 0.5),
)
