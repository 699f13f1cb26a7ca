"""Totals, change, missing-area rules, annualisation and missing visits (spec §6)."""

from __future__ import annotations

from datetime import date

import pytest

from scorer.core.methods import Area, get_method
from scorer.core.reads import AreaScore, Read, ReadError, check_score, derive_sens, validate_read
from scorer.core.totals import (
    MissingDataRules,
    annualised,
    change_totals,
    fill_missing_visit,
    status_totals,
)

SVH = get_method("svh")


def make(scores: dict[Area, AreaScore] | None = None, fill: int = 0, **kw: object) -> Read:
    base = {a.area: AreaScore(score=fill) for a in SVH.areas}
    base.update(scores or {})
    fields: dict[str, object] = {
        "trial": "T",
        "patient": "P",
        "visit": "W0",
        "reader": "R",
        "method": "svh",
        **kw,
    }
    return Read(scores=base, **fields)  # type: ignore[arg-type]


def test_totals_by_feature_region_and_all() -> None:
    r = make(
        {
            Area("LH", "MCP2", "ERO"): AreaScore(score=3),
            Area("RF", "MTP1", "ERO"): AreaScore.from_sides([2, 4]),
            Area("LF", "IP1", "JSN"): AreaScore(score=4),
        }
    )
    t = status_totals(r, SVH)
    assert t.groups[("LH", "ERO")] == 3
    assert t.groups[("RF", "ERO")] == 6
    assert t.by_feature == {"ERO": 9, "JSN": 4}
    assert t.by_region == {"LH": 3, "RH": 0, "LF": 4, "RF": 6}
    assert t.total == 13
    assert not t.adjusted


def test_maximum_read_totals_448() -> None:
    r = Read("T", "P", "W0", "R", "svh", scores={a.area: AreaScore(score=a.max) for a in SVH.areas})
    t = status_totals(r, SVH)
    assert t.by_feature == {"ERO": 280, "JSN": 168}
    assert t.total == 448


def test_status_scales_up_for_unassessable_areas_within_the_share() -> None:
    # LH ERO: 16 areas; 4 unassessable (25 %) is allowed, scaled by 16/12.
    na = {
        Area("LH", j, "ERO"): AreaScore.not_assessable("not_visible")
        for j in ("RAD", "ULN", "LUN", "NAV")
    }
    r = make({**na, Area("LH", "MCP1", "ERO"): AreaScore(score=3)})
    t = status_totals(r, SVH)
    assert t.groups[("LH", "ERO")] == pytest.approx(3 * 16 / 12)
    assert t.used[("LH", "ERO")] == 12
    assert t.adjusted
    # A fifth (31 %) makes the group missing, and every total above it.
    na[Area("LH", "MUL", "ERO")] = AreaScore.not_assessable("image_quality")
    t = status_totals(make(na), SVH)
    assert t.groups[("LH", "ERO")] is None
    assert t.by_feature["ERO"] is None and t.by_region["LH"] is None and t.total is None
    assert t.by_feature["JSN"] == 0 and t.by_region["RH"] == 0


def test_rule_missing_makes_any_gap_missing() -> None:
    r = make({Area("RH", "PIP2", "JSN"): AreaScore.not_assessable("other")})
    assert status_totals(r, SVH, MissingDataRules(areas="missing")).total is None
    assert status_totals(r, SVH).total == 0


def test_operated_areas_take_maximum_or_count_as_missing() -> None:
    r = make({Area("LH", "MCP2", "JSN"): AreaScore.not_assessable("operated")})
    assert status_totals(r, SVH, MissingDataRules(operated="max")).total == 4
    t = status_totals(r, SVH, MissingDataRules(operated="missing"))
    assert t.used[("LH", "JSN")] == 14 and t.total == 0


def test_change_is_paired_proportional_by_default() -> None:
    a0 = Area("LH", "MCP1", "ERO")
    a1 = Area("LH", "MCP2", "ERO")
    # Baseline: MCP1 not assessable; follow-up MCP1 = 5 (cannot count) and MCP2 1 -> 3.
    r0 = make({a0: AreaScore.not_assessable("not_visible"), a1: AreaScore(score=1)})
    r1 = make({a0: AreaScore(score=5), a1: AreaScore(score=3)}, visit="W52")
    ch = change_totals(r0, r1, SVH)
    assert ch.groups[("LH", "ERO")] == pytest.approx(2 * 16 / 15)
    assert ch.total == pytest.approx(2 * 16 / 15)
    # Per-visit mean imputation uses each visit's own areas: the 5 counts at follow-up.
    mi = change_totals(r0, r1, SVH, MissingDataRules(areas="mean_imputation"))
    assert mi.groups[("LH", "ERO")] == pytest.approx(8 * 16 / 16 - 1 * 16 / 15)


def test_negative_change_is_kept() -> None:
    a = Area("RF", "MTP3", "JSN")
    ch = change_totals(make({a: AreaScore(score=3)}), make({a: AreaScore(score=1)}), SVH)
    assert ch.total == -2


def test_annualised_change_and_short_intervals_refused() -> None:
    assert annualised(10, date(2024, 1, 1), date(2024, 12, 31)) == pytest.approx(
        10 / (365 / 365.25)
    )
    assert annualised(3, date(2024, 1, 1), date(2024, 1, 31)) == pytest.approx(3 / (30 / 365.25))
    with pytest.raises(ValueError, match="29 days"):
        annualised(3, date(2024, 1, 1), date(2024, 1, 30))


def test_missing_visit_rules() -> None:
    obs = [(0.0, 10.0), (168.0, 14.0)]
    assert fill_missing_visit(obs, 364.0, "missing") is None
    assert fill_missing_visit(obs, 364.0, "locf") == 14.0
    assert fill_missing_visit(obs, 364.0, "linear") == pytest.approx(14 + 4 * 196 / 168)
    assert fill_missing_visit([(0.0, 10.0)], 364.0, "linear") is None
    assert fill_missing_visit([(0.0, None)], 364.0, "locf") is None


def test_rules_describe_themselves_and_reject_nonsense() -> None:
    text = MissingDataRules().describe()
    assert "paired proportional" in text and "25%" in text and "left missing" in text
    with pytest.raises(ValueError):
        MissingDataRules(areas="guess")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        MissingDataRules(max_unused_share=1.5)


def test_check_score_refuses_out_of_range_and_bad_sides() -> None:
    with pytest.raises(ReadError, match="outside 0-5"):
        check_score(SVH, Area("LH", "MCP1", "ERO"), AreaScore(score=6))
    with pytest.raises(ReadError, match="outside 0-10"):
        check_score(SVH, Area("LF", "MTP1", "ERO"), AreaScore(score=11))
    with pytest.raises(ReadError, match="side score 6"):
        check_score(SVH, Area("LF", "MTP1", "ERO"), AreaScore(score=6, sides=(6, 0)))
    with pytest.raises(ReadError, match="not the sum"):
        check_score(SVH, Area("LF", "MTP1", "ERO"), AreaScore(score=5, sides=(2, 2)))
    with pytest.raises(ReadError, match="not graded in sides"):
        check_score(SVH, Area("LH", "MCP1", "ERO"), AreaScore(score=2, sides=(1, 1)))
    with pytest.raises(ReadError, match="unknown reason"):
        check_score(SVH, Area("LH", "MCP1", "ERO"), AreaScore(reason="lost"))
    with pytest.raises(ReadError, match="not an area"):
        check_score(SVH, Area("LH", "DIP2", "ERO"), AreaScore(score=1))
    check_score(SVH, Area("LF", "MTP1", "ERO"), AreaScore.from_sides([5, 5]))


def test_validate_read_requires_every_area_when_signed() -> None:
    r = make()
    assert validate_read(r, SVH) == []
    scores = dict(r.scores)
    del scores[Area("RF", "IP1", "JSN")]
    partial = Read("T", "P", "W0", "R", "svh", status="signed", scores=scores)
    assert any("RF IP1 JSN" in p for p in validate_read(partial, SVH))
    assert (
        validate_read(Read("T", "P", "W0", "R", "svh", status="in_progress", scores=scores), SVH)
        == []
    )


def test_sens_counts_nonzero_areas_and_keeps_missing() -> None:
    r = make(
        {
            Area("LH", "MCP1", "ERO"): AreaScore(score=3),
            Area("LH", "MCP1", "JSN"): AreaScore(score=1),
            Area("RF", "MTP1", "ERO"): AreaScore.from_sides([0, 2]),
            Area("RH", "RCA", "JSN"): AreaScore.not_assessable("not_visible"),
        }
    )
    sens = get_method("sens")
    s = derive_sens(r, sens)
    assert status_totals(s, sens, MissingDataRules(areas="missing")).total is None
    t = status_totals(s, sens)
    assert t.by_feature["ERO"] == 2
    assert t.by_feature["JSN"] == pytest.approx(1.0)
