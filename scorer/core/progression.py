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
    def label(self) -> str:
        if self.name:
            return self.name
        if self.kind == "fixed":
            what = f"{self.value:g}"
        else:
            what = "SDC95" if self.kind == "sdc95" else "SDC80"
        per = " per year" if self.annualised else ""
        return f"change {self.op} {what}{per}"

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

_FIXED = re.compile(r"^(>=|>)?\s*(-?\d+(?:\.\d+)?)$")


def parse_threshold(text: str) -> Threshold:
    """A threshold from its written form: ``sdc95``, ``sdc80``, ``0``, ``0.5``, ``>=3``,
    ``rapid>=5`` or ``rapid>5`` (annualised)."""
    t = text.strip().lower().replace(" ", "")
    op: Comparison = ">"
    if t in ("sdc95", "sdc", "sdc80"):
        return Threshold("sdc80" if t == "sdc80" else "sdc95")
    for prefix, ann in (("rapid", True), ("", False)):
        if prefix and not t.startswith(prefix):
            continue
        rest = t[len(prefix) :]
        m = _FIXED.match(rest)
        if m:
            if m.group(1) == ">=" or (prefix == "rapid" and m.group(1) is None):
                op = ">="
            return Threshold(
                "fixed",
                float(m.group(2)),
                op,
                annualised=ann,
                name="rapid progression" if ann else "",
            )
    raise ValueError(
        f"unknown threshold {text!r}: use sdc95, sdc80, a number such as 0 or 0.5, "
        "or rapid>=5 / rapid>5"
    )


DEFAULT_THRESHOLDS: tuple[Threshold, ...] = (
    Threshold("sdc95"),
    Threshold("sdc80"),
    Threshold("fixed", 0.0),
    Threshold("fixed", 0.5),
)
