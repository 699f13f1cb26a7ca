"""Scoring methods loaded from resources/ match the spec, and broken files are refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scorer.core.methods import (
    Area,
    MethodError,
    builtin_methods,
    get_method,
    load_method_file,
    load_methods,
    methods_dir,
)

HAND_ERO = [
    "MCP1",
    "MCP2",
    "MCP3",
    "MCP4",
    "MCP5",
    "IP1",
    "PIP2",
    "PIP3",
    "PIP4",
    "PIP5",
    "CMC1",
    "MUL",
    "NAV",
    "LUN",
    "RAD",
    "ULN",
]
HAND_JSN = [
    "MCP1",
    "MCP2",
    "MCP3",
    "MCP4",
    "MCP5",
    "PIP2",
    "PIP3",
    "PIP4",
    "PIP5",
    "CMC3",
    "CMC4",
    "CMC5",
    "MNA",
    "CNL",
    "RCA",
]
FOOT = ["MTP1", "MTP2", "MTP3", "MTP4", "MTP5", "IP1"]


def test_svh_matches_spec_section_2() -> None:
    m = get_method("svh")
    for hand in ("LH", "RH"):
        assert [a.joint for a in m.areas_of(hand, "ERO")] == HAND_ERO
        assert [a.joint for a in m.areas_of(hand, "JSN")] == HAND_JSN
        assert all((a.min, a.max) == (0, 5) for a in m.areas_of(hand, "ERO"))
        assert all((a.min, a.max) == (0, 4) for a in m.areas_of(hand, "JSN"))
    for foot in ("LF", "RF"):
        ero = m.areas_of(foot, "ERO")
        assert [a.joint for a in ero] == FOOT
        assert all((a.min, a.max) == (0, 10) and a.sides == ("proximal", "distal") for a in ero)
        assert all((a.min, a.max) == (0, 4) for a in m.areas_of(foot, "JSN"))
    assert len(m.areas_of(feature="ERO")) == 44
    assert len(m.areas_of(feature="JSN")) == 42
    assert sum(a.max for a in m.areas_of(feature="ERO")) == 280
    assert sum(a.max for a in m.areas_of(feature="JSN")) == 168
    assert m.max_total == 448
    assert "J Rheumatol 2000;27:261" in m.citation
    assert m.features["JSN"].grades[4].startswith("Bony ankylosis")


def test_sens_is_derived_from_svh_with_the_same_areas() -> None:
    sens, svh = get_method("sens"), get_method("svh")
    assert sens.derived_from == "svh"
    assert [a.area for a in sens.areas] == [a.area for a in svh.areas]
    assert all((a.min, a.max) == (0, 1) for a in sens.areas)
    assert sens.max_total == 86


def test_larsen1995_has_32_units_0_to_5() -> None:
    m = get_method("larsen1995")
    assert len(m.areas) == 32
    assert m.max_total == 160
    for hand in ("LH", "RH"):
        assert [a.joint for a in m.areas_of(hand)] == [
            "PIP2",
            "PIP3",
            "PIP4",
            "PIP5",
            "MCP2",
            "MCP3",
            "MCP4",
            "MCP5",
            "WQ1",
            "WQ2",
            "WQ3",
            "WQ4",
        ]
    for foot in ("LF", "RF"):
        assert [a.joint for a in m.areas_of(foot)] == ["MTP2", "MTP3", "MTP4", "MTP5"]
    assert "1995;22:1974" in m.citation


def test_canonical_order_is_region_then_file_order() -> None:
    m = get_method("svh")
    regions = [a.region for a in m.areas]
    assert regions == sorted(regions, key=["LH", "RH", "LF", "RF"].index)
    assert m.order(Area("LH", "MCP1", "ERO")) == 0
    assert m.order(Area("LH", "MCP1", "JSN")) == 16
    assert list(m.groups())[:2] == [("LH", "ERO"), ("LH", "JSN")]


def test_unknown_method_names_the_known_ones() -> None:
    with pytest.raises(MethodError, match="unknown method 'sharp'.*larsen1995.*svh"):
        get_method("sharp")


GOOD = """
id = "mini"
name = "Mini"
citation = "Nobody 2020"
[features.ERO]
name = "Erosion"
min = 0
max = 5
[[areas]]
regions = ["LH"]
feature = "ERO"
joints = ["MCP1", "MCP2"]
"""


def _write(tmp_path: Path, text: str, name: str = "mini.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_a_good_custom_method_loads(tmp_path: Path) -> None:
    m = load_method_file(_write(tmp_path, GOOD))
    assert [str(a.area) for a in m.areas] == ["LH MCP1 ERO", "LH MCP2 ERO"]


@pytest.mark.parametrize(
    ("change", "entry", "problem"),
    [
        (("[features.ERO]", "[features.XYZ]"), "features.XYZ", "unknown feature 'XYZ'"),
        (('feature = "ERO"', 'feature = "JSN"'), r"areas\[0\]", "unknown feature 'JSN'"),
        (("max = 5", "max = -1"), "features.ERO", "max -1 is below min 0"),
        (('"MCP1", "MCP2"', '"MCP1", "MCP1"'), r"areas\[0\] \(LH MCP1 ERO\)", "duplicate area"),
        (
            ('joints = ["MCP1", "MCP2"]', 'joints = ["MCP1"]\nweight = -2'),
            r"areas\[0\]",
            "bad weight -2",
        ),
        (
            ('joints = ["MCP1", "MCP2"]', 'joints = ["MCP1"]\nweight = "x"'),
            r"areas\[0\]",
            "bad weight 'x'",
        ),
        (('regions = ["LH"]', 'regions = ["XX"]'), r"areas\[0\]", "unknown region 'XX'"),
        (('name = "Mini"', 'name = "Mini"\ncolour = 3'), "top level", "unknown key"),
    ],
)
def test_a_broken_method_file_is_refused_naming_file_and_entry(
    tmp_path: Path, change: tuple[str, str], entry: str, problem: str
) -> None:
    path = _write(tmp_path, GOOD.replace(*change, 1))
    with pytest.raises(MethodError) as info:
        load_method_file(path)
    msg = str(info.value)
    assert msg.startswith(str(path))
    import re

    assert re.search(entry, msg), msg
    assert problem in msg


def test_invalid_toml_is_refused_with_the_file_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "id = [")
    with pytest.raises(MethodError, match=r"mini\.toml: not valid TOML"):
        load_method_file(path)


def test_a_derived_method_without_its_base_is_refused(tmp_path: Path) -> None:
    text = (methods_dir() / "sens.toml").read_text()
    path = _write(tmp_path, text, "sens.toml")
    with pytest.raises(MethodError, match="sens.toml: derived_from: base method 'svh'"):
        load_methods([path])


def test_two_files_with_one_id_are_refused(tmp_path: Path) -> None:
    a = _write(tmp_path, GOOD, "a.toml")
    b = _write(tmp_path, GOOD, "b.toml")
    with pytest.raises(MethodError, match="b.toml: id: method 'mini' is defined twice"):
        load_methods([a, b])


def test_builtin_methods_are_the_files_in_resources() -> None:
    ids = {p.stem for p in methods_dir().glob("*.toml")}
    assert set(builtin_methods()) == ids == {"svh", "sens", "larsen1995"}


def test_every_grade_of_every_method_has_wording_and_a_citation_or_the_check_note() -> None:
    """Issue 29: each grade's wording cites the paper it comes from (page or table); a grade
    whose page or wording is not yet confirmed says so ("to be checked") rather than losing
    the note."""
    for method in builtin_methods().values():
        for f in method.features.values():
            assert set(f.grades) == set(range(f.min, f.max + 1)), (method.id, f.code)
            for grade, wording in f.grades.items():
                assert wording.strip(), (method.id, f.code, grade)
                cited = f.sources.get(grade, "")
                assert cited.strip() or f.check, (method.id, f.code, grade)
                # A citation names the paper's year, and its volume and pages.
                assert re.search(r"\b(19|20)\d\d\b", cited), cited
                assert re.search(r"\b\d+:\d+-\d+\b", cited), cited
                if "to be checked" not in cited:
                    assert not f.check, (method.id, f.code, grade)


def test_the_papers_each_method_cites_per_grade() -> None:
    svh, larsen = get_method("svh"), get_method("larsen1995")
    for code in ("ERO", "JSN"):
        for cited in svh.features[code].sources.values():
            assert "J Rheumatol 26:743-5" in cited and "J Rheumatol 27:261-3" in cited
    for cited in larsen.features["LAR"].sources.values():
        assert "J Rheumatol 22:1974-5" in cited and "Acta Radiol Diagn 18:481-91" in cited
    # The erosion wording is unconfirmed: its note stays.
    assert svh.features["ERO"].check


@pytest.mark.parametrize(
    ("sources", "entry", "problem"),
    [
        ('sources.7 = "Nobody 2020, p. 1"', r"features\.ERO\.sources\.7", "grade 7 has no wording"),
        ('sources.x = "Nobody 2020, p. 1"', r"features\.ERO\.sources\.x", "whole number"),
        ('sources.1 = ""', r"features\.ERO\.sources\.1", "non-empty string"),
        ('sources = "Nobody"', r"features\.ERO\.sources", "table of grade = citation"),
    ],
)
def test_a_bad_grade_citation_is_refused_naming_the_entry(
    tmp_path: Path, sources: str, entry: str, problem: str
) -> None:
    text = GOOD.replace("max = 5", f'max = 5\ngrades.1 = "Small"\n{sources}', 1)
    with pytest.raises(MethodError, match=entry) as info:
        load_method_file(_write(tmp_path, text))
    assert problem in str(info.value)


def test_a_grade_citation_is_read_from_the_method_file(tmp_path: Path) -> None:
    text = GOOD.replace("max = 5", 'max = 5\ngrades.1 = "Small"\nsources.1 = "Nobody 2020, p. 3"')
    m = load_method_file(_write(tmp_path, text))
    assert m.features["ERO"].sources == {1: "Nobody 2020, p. 3"}
