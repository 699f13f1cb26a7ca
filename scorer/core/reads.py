"""A read: one reader's scores of one patient at one visit with one method (spec §6, §9)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date

from scorer.core.methods import REASONS, Area, Method

READ_TYPES: tuple[str, ...] = ("primary", "reread", "adjudication", "calibration", "imported")
READ_STATUSES: tuple[str, ...] = ("in_progress", "signed", "void")


class ReadError(ValueError):
    """A read or a score that breaks the method's rules."""


@dataclass(frozen=True)
class AreaScore:
    """The score of one area, or the reason it could not be scored.

    Exactly one of ``score`` and ``reason`` is set. ``sides`` holds the sub-scores of an area
    graded in parts (foot erosion); ``score`` is then their sum.
    """

    score: int | None = None
    reason: str | None = None
    sides: tuple[int, ...] | None = None
    note: str = ""

    @property
    def assessable(self) -> bool:
        return self.score is not None

    @classmethod
    def scored(cls, score: int) -> AreaScore:
        return cls(score=score)

    @classmethod
    def from_sides(cls, sides: Iterable[int]) -> AreaScore:
        s = tuple(sides)
        return cls(score=sum(s), sides=s)

    @classmethod
    def not_assessable(cls, reason: str, note: str = "") -> AreaScore:
        return cls(reason=reason, note=note)


def check_score(method: Method, area: Area, value: AreaScore) -> None:
    """Raise ReadError unless ``value`` is a valid entry for ``area`` under ``method``."""
    if not method.has_area(area):
        raise ReadError(f"{area} is not an area of method {method.id}")
    d = method.area(area)
    if value.score is None:
        if value.reason is None:
            raise ReadError(f"{area}: give a score or a not-assessable reason")
        if value.reason not in REASONS:
            raise ReadError(
                f"{area}: unknown reason {value.reason!r} (known: {', '.join(REASONS)})"
            )
        if value.sides is not None:
            raise ReadError(f"{area}: a not-assessable area has no side scores")
        return
    if value.reason is not None:
        raise ReadError(f"{area}: a scored area has no not-assessable reason")
    if isinstance(value.score, bool) or not isinstance(value.score, int):
        raise ReadError(f"{area}: score must be a whole number, not {value.score!r}")
    if not d.min <= value.score <= d.max:
        raise ReadError(f"{area}: score {value.score} is outside {d.min}-{d.max}")
    if value.sides is not None:
        if not d.sides:
            raise ReadError(f"{area}: this area is not graded in sides")
        if len(value.sides) != len(d.sides):
            raise ReadError(f"{area}: expected {len(d.sides)} side scores ({', '.join(d.sides)})")
        f = method.features[area.feature]
        for name, s in zip(d.sides, value.sides, strict=True):
            if isinstance(s, bool) or not isinstance(s, int) or not f.min <= s <= f.max:
                raise ReadError(f"{area} {name}: side score {s!r} is outside {f.min}-{f.max}")
        if sum(value.sides) != value.score:
            raise ReadError(f"{area}: score {value.score} is not the sum of its sides")


@dataclass(frozen=True)
class Read:
    """One reader's scores of one patient at one visit with one method and read type."""

    trial: str
    patient: str
    visit: str
    reader: str
    method: str
    read_type: str = "primary"
    read_id: str = ""
    status: str = "signed"
    visit_date: date | None = None
    scores: Mapping[Area, AreaScore] = field(default_factory=dict)

    def with_score(self, area: Area, value: AreaScore) -> Read:
        new = dict(self.scores)
        new[area] = value
        return replace(self, scores=new)

    def missing_areas(self, method: Method) -> list[Area]:
        """Areas neither scored nor marked not assessable."""
        return [a.area for a in method.areas if a.area not in self.scores]

    def is_complete(self, method: Method) -> bool:
        return not self.missing_areas(method)


#: What :func:`check_score` said of an (area, score, reason) of a method: None or the problem.
ScoreChecks = dict[tuple[Area, int | None, str | None], str | None]


def validate_read(read: Read, method: Method, checked: ScoreChecks | None = None) -> list[str]:
    """Every problem with a read, as messages; an empty list means the read is valid.

    ``checked``, if given, holds what was said of each (area, score, reason) of ``method``
    met before: a trial's reads hold a million areas but only hundreds of distinct ones.
    """
    problems: list[str] = []
    if read.method != method.id:
        problems.append(f"read uses method {read.method!r}, not {method.id!r}")
    if read.read_type not in READ_TYPES:
        problems.append(f"unknown read type {read.read_type!r} (known: {', '.join(READ_TYPES)})")
    if read.status not in READ_STATUSES:
        problems.append(f"unknown read status {read.status!r} (known: {', '.join(READ_STATUSES)})")
    for area, value in read.scores.items():
        # Only a plain entry is remembered: True equals 1 as a key, a tuple equals its Area
        # (and is named otherwise), and sides vary.
        plain = (
            value.sides is None
            and (value.score is None or type(value.score) is int)
            and type(area) is Area
        )
        key = (area, value.score, value.reason)
        if checked is None or not plain or key not in checked:
            try:
                check_score(method, area, value)
                said = None
            except ReadError as exc:
                said = str(exc)
            if checked is not None and plain:
                checked[key] = said
        else:
            said = checked[key]
        if said is not None:
            problems.append(said)
    if read.status == "signed":
        missing = read.missing_areas(method)
        if missing:
            problems.append(
                f"a signed read must cover every area; {len(missing)} missing, first {missing[0]}"
            )
    return problems


def derive_sens(read: Read, sens: Method) -> Read:
    """The SENS read derived from an svh read: 1 where the svh score is above 0."""
    if sens.derived_from != read.method:
        raise ReadError(f"method {sens.id} is not derived from {read.method}")
    scores: dict[Area, AreaScore] = {}
    for area, value in read.scores.items():
        if value.score is None:
            scores[area] = AreaScore(reason=value.reason, note=value.note)
        else:
            scores[area] = AreaScore(score=1 if value.score > 0 else 0)
    return replace(read, method=sens.id, scores=scores)
