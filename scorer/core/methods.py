"""Scoring methods as data: loading and validating the method files in ``resources/methods``.

A method is a joint list, grade ranges, weights, grade descriptions and a citation. Each file is
validated at load time; a broken file is refused with a message that names the file and the entry.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from scorer.core.cells import formula_lead

REGIONS: tuple[str, ...] = ("LH", "RH", "LF", "RF")
HAND_REGIONS: frozenset[str] = frozenset({"LH", "RH"})
FOOT_REGIONS: frozenset[str] = frozenset({"LF", "RF"})
FEATURES: tuple[str, ...] = ("ERO", "JSN", "LAR")
REASONS: tuple[str, ...] = ("not_visible", "image_quality", "operated", "other")
REGION_NAMES: Mapping[str, str] = {
    "LH": "left hand and wrist",
    "RH": "right hand and wrist",
    "LF": "left foot",
    "RF": "right foot",
}
REGION_KINDS: Mapping[str, str] = {"LH": "hand", "RH": "hand", "LF": "foot", "RF": "foot"}
"""The kind of each region. One joint code can name a joint of a hand and a joint of a foot
(``IP1``: the thumb's, eroded 0–5, and the hallux's, 0–10): areas are the same joint only
within one kind, so anything that groups or pools areas over regions keys them by kind too."""


def region_kind(region: str) -> str:
    """``hand`` or ``foot``; KeyError for an unknown region."""
    return REGION_KINDS[region]


class MethodError(ValueError):
    """A method file that cannot be used, with the file and entry named in the message."""


class Area(NamedTuple):
    """The key of one score: region, joint and feature (spec §1)."""

    region: str
    joint: str
    feature: str

    def __str__(self) -> str:
        return f"{self.region} {self.joint} {self.feature}"

    @property
    def kind(self) -> str:
        """``hand`` or ``foot`` (see :data:`REGION_KINDS`)."""
        return REGION_KINDS[self.region]


@dataclass(frozen=True)
class Feature:
    """A scored feature of a method (erosion, JSN, Larsen grade) with its grade range."""

    code: str
    name: str
    min: int
    max: int
    grades: Mapping[int, str]
    check: bool = False
    #: Where each grade's wording comes from: the paper and its page or table (a grade
    #: without one is cited by the method's ``citation`` alone).
    sources: Mapping[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AreaDef:
    """One scored area of a method, with its range and weight.

    ``sides`` names the sub-scores of an area graded in parts (foot erosion: proximal and
    distal, each over the feature's range); the area score is their sum.
    """

    area: Area
    min: int
    max: int
    weight: float = 1.0
    sides: tuple[str, ...] = ()
    label: str = ""

    @property
    def region(self) -> str:
        return self.area.region

    @property
    def joint(self) -> str:
        return self.area.joint

    @property
    def feature(self) -> str:
        return self.area.feature


@dataclass(frozen=True)
class Method:
    """A scoring method: its features, its areas in their canonical order, and its source."""

    id: str
    name: str
    short_name: str
    version: int
    citation: str
    features: Mapping[str, Feature]
    areas: tuple[AreaDef, ...]
    derived_from: str | None = None
    derivation: str | None = None
    source: str = ""
    _index: Mapping[Area, int] = field(default_factory=dict, repr=False, compare=False)
    #: Answers worked out from ``areas`` once (a method never changes): totals and the reads
    #: CSV ask them for every row.
    _memo: dict[object, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {a.area: i for i, a in enumerate(self.areas)})

    @property
    def is_derived(self) -> bool:
        return self.derived_from is not None

    def area(self, key: Area) -> AreaDef:
        """The definition of an area; KeyError if the method does not score it."""
        return self.areas[self._index[key]]

    def has_area(self, key: Area) -> bool:
        return key in self._index

    def order(self, key: Area) -> int:
        """Position of an area in the method's canonical order (the reads CSV's row order)."""
        return self._index[key]

    def areas_of(self, region: str | None = None, feature: str | None = None) -> list[AreaDef]:
        key = ("areas_of", region, feature)
        found = self._memo.get(key)
        if found is None:
            found = tuple(
                a
                for a in self.areas
                if (region is None or a.region == region)
                and (feature is None or a.feature == feature)
            )
            self._memo[key] = found
        return list(found)

    @property
    def regions(self) -> tuple[str, ...]:
        found = self._memo.get("regions")
        if found is None:
            present = {a.region for a in self.areas}
            found = self._memo["regions"] = tuple(r for r in REGIONS if r in present)
        return tuple(found)

    @property
    def feature_codes(self) -> tuple[str, ...]:
        return tuple(self.features)

    @property
    def max_total(self) -> float:
        return sum(a.max * a.weight for a in self.areas)

    def groups(self) -> Iterator[tuple[str, str]]:
        """The (region, feature) groups that totals are built from, in canonical order."""
        found = self._memo.get("groups")
        if found is None:
            seen: list[tuple[str, str]] = []
            for a in self.areas:
                g = (a.region, a.feature)
                if g not in seen:
                    seen.append(g)
            found = self._memo["groups"] = tuple(seen)
        yield from found


def resources_dir() -> Path:
    """The ``resources`` folder: inside the installed package, or beside it in a checkout."""
    packaged = Path(__file__).resolve().parents[1] / "resources"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "resources"


def methods_dir() -> Path:
    return resources_dir() / "methods"


def _fail(source: str, entry: str, problem: str) -> MethodError:
    return MethodError(f"{source}: {entry}: {problem}")


def _int(value: Any, source: str, entry: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(source, entry, f"{what} must be a whole number, not {value!r}")
    return value


def _str(value: Any, source: str, entry: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(source, entry, f"{what} must be a non-empty string, not {value!r}")
    return value


def _code(value: Any, source: str, entry: str, what: str) -> str:
    """A code written raw in reads CSVs: a non-empty string not starting with - + = @ (a
    spreadsheet would run it as a formula; scorer.core.cells)."""
    text = _str(value, source, entry, what)
    lead = formula_lead(text)
    if lead:
        raise _fail(
            source,
            entry,
            f"{what} {text!r} starts with {lead}, which a spreadsheet runs as a formula; "
            "codes may not start with - + = or @",
        )
    return text


def _parse_feature(code: str, raw: Any, source: str) -> Feature:
    entry = f"features.{code}"
    if code not in FEATURES:
        raise _fail(source, entry, f"unknown feature {code!r} (known: {', '.join(FEATURES)})")
    if not isinstance(raw, dict):
        raise _fail(source, entry, "must be a table")
    unknown = set(raw) - {"name", "min", "max", "grades", "check", "sources"}
    if unknown:
        raise _fail(source, entry, f"unknown key(s) {', '.join(sorted(unknown))}")
    lo = _int(raw.get("min"), source, entry, "min")
    hi = _int(raw.get("max"), source, entry, "max")
    if hi < lo:
        raise _fail(source, entry, f"max {hi} is below min {lo}")
    if lo < 0:
        raise _fail(source, entry, f"min {lo} is negative")
    grades_raw = raw.get("grades", {})
    if not isinstance(grades_raw, dict):
        raise _fail(source, entry, "grades must be a table of grade = description")
    grades: dict[int, str] = {}
    for k, v in grades_raw.items():
        try:
            g = int(k)
        except ValueError:
            raise _fail(source, f"{entry}.grades.{k}", "grade must be a whole number") from None
        if not lo <= g <= hi:
            raise _fail(source, f"{entry}.grades.{k}", f"grade outside the range {lo}-{hi}")
        grades[g] = _str(v, source, f"{entry}.grades.{k}", "description")
    return Feature(
        code=code,
        name=_str(raw.get("name"), source, entry, "name"),
        min=lo,
        max=hi,
        grades=dict(sorted(grades.items())),
        check=bool(raw.get("check", False)),
        sources=_grade_sources(raw.get("sources", {}), grades, source, entry),
    )


def _grade_sources(
    raw: Any, grades: Mapping[int, str], source: str, entry: str
) -> dict[int, str]:
    """A feature's ``sources`` table: grade = the paper, page or table its wording is from."""
    if not isinstance(raw, dict):
        raise _fail(source, f"{entry}.sources", "must be a table of grade = citation")
    found: dict[int, str] = {}
    for k, v in raw.items():
        where = f"{entry}.sources.{k}"
        try:
            g = int(k)
        except ValueError:
            raise _fail(source, where, "grade must be a whole number") from None
        if g not in grades:
            raise _fail(source, where, f"grade {g} has no wording to cite")
        found[g] = _str(v, source, where, "citation")
    return dict(sorted(found.items()))


def _derived_areas(
    data: Mapping[str, Any],
    source: str,
    features: Mapping[str, Feature],
    base: Method | None,
    derived_from: str,
) -> list[AreaDef]:
    """The areas of a derived method: its base method's, over this method's feature ranges."""
    derivation = data.get("derivation")
    if derivation != "nonzero":
        raise _fail(source, "derivation", f"unknown derivation {derivation!r} (known: nonzero)")
    if base is None or base.id != derived_from:
        raise _fail(source, "derived_from", f"base method {derived_from!r} is not available")
    if "areas" in data:
        raise _fail(source, "areas", "a derived method takes its areas from its base")
    areas: list[AreaDef] = []
    for a in base.areas:
        if a.feature not in features:
            raise _fail(source, "features", f"feature {a.feature} of {base.id} is not defined")
        f = features[a.feature]
        areas.append(AreaDef(a.area, f.min, f.max, 1.0, (), a.label))
    return areas


def _listed_areas(
    groups: Any, source: str, features: Mapping[str, Feature], labels: Mapping[str, str]
) -> list[AreaDef]:
    """The areas a method file lists in its ``[[areas]]`` groups, in the file's order."""
    if not isinstance(groups, list) or not groups:
        raise _fail(source, "areas", "at least one [[areas]] group is required")
    seen: set[Area] = set()
    areas: list[AreaDef] = []
    for gi, group in enumerate(groups):
        areas += _group_areas(group, f"areas[{gi}]", source, features, labels, seen)
    return areas


def _group_areas(
    group: Any,
    entry: str,
    source: str,
    features: Mapping[str, Feature],
    labels: Mapping[str, str],
    seen: set[Area],
) -> list[AreaDef]:
    """The areas of one ``[[areas]]`` group; ``seen`` holds those of the groups before it and
    gets this group's (an area defined twice is refused)."""
    areas: list[AreaDef] = []
    if not isinstance(group, dict):
        raise _fail(source, entry, "must be a table")
    unknown = set(group) - {"regions", "feature", "joints", "sides", "weight", "check"}
    if unknown:
        raise _fail(source, entry, f"unknown key(s) {', '.join(sorted(unknown))}")
    feature = _str(group.get("feature"), source, entry, "feature")
    if feature not in features:
        raise _fail(source, entry, f"unknown feature {feature!r}")
    regions = group.get("regions")
    if not isinstance(regions, list) or not regions:
        raise _fail(source, entry, "regions must be a non-empty list")
    for r in regions:
        if r not in REGIONS:
            raise _fail(source, entry, f"unknown region {r!r} (known: {', '.join(REGIONS)})")
    joints = group.get("joints")
    if not isinstance(joints, list) or not joints:
        raise _fail(source, entry, "joints must be a non-empty list")
    sides_raw = group.get("sides", [])
    if not isinstance(sides_raw, list) or not all(isinstance(s, str) for s in sides_raw):
        raise _fail(source, entry, "sides must be a list of names")
    sides = tuple(sides_raw)
    if len(sides) == 1:
        raise _fail(source, entry, "sides needs at least two names, or none")
    weight = group.get("weight", 1.0)
    if (
        isinstance(weight, bool)
        or not isinstance(weight, int | float)
        or not weight > 0
        or weight != weight
        or weight == float("inf")
    ):
        raise _fail(source, entry, f"bad weight {weight!r}: must be a positive number")
    f = features[feature]
    n_parts = max(1, len(sides))
    for region in regions:
        for joint in joints:
            j = _code(joint, source, entry, "joint")
            key = Area(region, j, feature)
            if key in seen:
                raise _fail(source, f"{entry} ({key})", "duplicate area")
            seen.add(key)
            areas.append(
                AreaDef(
                    key,
                    f.min * n_parts,
                    f.max * n_parts,
                    float(weight),
                    sides,
                    labels.get(j, j),
                )
            )
    return areas


def parse_method(data: Mapping[str, Any], source: str, base: Method | None = None) -> Method:
    """Build and validate a method from the parsed contents of a method file.

    ``base`` is the method a derived method (``derived_from``) takes its areas from.
    """
    known = {
        "id",
        "name",
        "short_name",
        "version",
        "citation",
        "features",
        "areas",
        "labels",
        "derived_from",
        "derivation",
    }
    unknown = set(data) - known
    if unknown:
        raise _fail(source, "top level", f"unknown key(s) {', '.join(sorted(unknown))}")
    method_id = _code(data.get("id"), source, "id", "id")
    feats_raw = data.get("features")
    if not isinstance(feats_raw, dict) or not feats_raw:
        raise _fail(source, "features", "at least one feature is required")
    features = {code: _parse_feature(code, raw, source) for code, raw in feats_raw.items()}
    labels_raw = data.get("labels", {})
    if not isinstance(labels_raw, dict):
        raise _fail(source, "labels", "must be a table of joint = label")
    labels = {str(k): str(v) for k, v in labels_raw.items()}

    derived_from = data.get("derived_from")
    derivation = data.get("derivation")
    if derived_from is not None:
        derived_from = _str(derived_from, source, "derived_from", "derived_from")
        areas = _derived_areas(data, source, features, base, derived_from)
    else:
        areas = _listed_areas(data.get("areas"), source, features, labels)
    # Canonical order: region (LH, RH, LF, RF), then the file's order within a region.
    areas.sort(key=lambda a: REGIONS.index(a.region))
    version = data.get("version", 1)
    return Method(
        id=method_id,
        name=_str(data.get("name"), source, "name", "name"),
        short_name=str(data.get("short_name", method_id)),
        version=_int(version, source, "version", "version"),
        citation=_str(data.get("citation"), source, "citation", "citation"),
        features=features,
        areas=tuple(areas),
        derived_from=derived_from,
        derivation=derivation if derived_from else None,
        source=source,
    )


def load_method_file(path: Path, base: Method | None = None) -> Method:
    """Read and validate one method file."""
    source = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MethodError(f"{source}: cannot read: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MethodError(f"{source}: not valid TOML: {exc}") from exc
    return parse_method(data, source, base)


def load_methods(paths: Iterable[Path]) -> dict[str, Method]:
    """Load method files, base methods before the methods derived from them."""
    pending: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted(paths):
        try:
            pending.append((path, tomllib.loads(path.read_text(encoding="utf-8"))))
        except OSError as exc:
            raise MethodError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise MethodError(f"{path}: not valid TOML: {exc}") from exc
    methods: dict[str, Method] = {}
    while pending:
        progressed = False
        for item in list(pending):
            path, data = item
            base_id = data.get("derived_from")
            if base_id is not None and base_id not in methods:
                continue
            m = parse_method(data, str(path), methods.get(base_id) if base_id else None)
            if m.id in methods:
                raise MethodError(f"{path}: id: method {m.id!r} is defined twice")
            methods[m.id] = m
            pending.remove(item)
            progressed = True
        if not progressed:
            path, data = pending[0]
            raise MethodError(
                f"{path}: derived_from: base method {data.get('derived_from')!r} is not available"
            )
    return methods


@cache
def builtin_methods() -> Mapping[str, Method]:
    """The methods shipped in ``resources/methods``, validated once per process."""
    return load_methods(methods_dir().glob("*.toml"))


def get_method(method_id: str) -> Method:
    """A built-in method by id; MethodError naming the known ids otherwise."""
    methods = builtin_methods()
    try:
        return methods[method_id]
    except KeyError:
        raise MethodError(
            f"unknown method {method_id!r} (known: {', '.join(sorted(methods))})"
        ) from None
