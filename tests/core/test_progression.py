"""Progression thresholds and visit ordering."""

from __future__ import annotations

from datetime import date

import pytest

from scorer.core.progression import RAPID_PROGRESSION, Threshold, parse_threshold
from scorer.core.protocol import ProtocolError, from_mapping
from scorer.core.visits import order_visits


@pytest.mark.parametrize(
    ("text", "kind", "value", "op", "annual"),
    [
        ("sdc95", "sdc95", None, ">", False),
        ("SDC80", "sdc80", None, ">", False),
        ("0", "fixed", 0.0, ">", False),
        ("0.5", "fixed", 0.5, ">", False),
        (">=3", "fixed", 3.0, ">=", False),
        ("rapid>=5", "fixed", 5.0, ">=", True),
        ("rapid>5", "fixed", 5.0, ">", True),
        ("rapid >= 5", "fixed", 5.0, ">=", True),
        (">0.5", "fixed", 0.5, ">", False),
        (">=0", "fixed", 0.0, ">=", False),
        (">sdc95", "sdc95", None, ">", False),
        (">=SDC95", "sdc95", None, ">=", False),
        (">=sdc80", "sdc80", None, ">=", False),
        ("sdc", "sdc95", None, ">", False),
    ],
)
def test_parse_threshold(text: str, kind: str, value: float | None, op: str, annual: bool) -> None:
    t = parse_threshold(text)
    assert (t.kind, t.value, t.op, t.annualised) == (kind, value, op, annual)


def test_bad_threshold_is_explained() -> None:
    with pytest.raises(ValueError, match="unknown threshold 'lots'"):
        parse_threshold("lots")


def test_comparison_is_explicit() -> None:
    assert RAPID_PROGRESSION.exceeded(5.0, 5.0)
    assert not Threshold("fixed", 5.0, ">").exceeded(5.0, 5.0)
    assert Threshold("sdc95").resolve(sdc95=1.85, sdc80=1.2) == 1.85
    assert Threshold("sdc80").resolve(sdc95=1.85, sdc80=1.2) == 1.2
    assert Threshold("fixed", 5.0, ">=", annualised=True).label == "annualised change >= 5"


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("0.5", "change > 0.5"),
        (">0.5", "change > 0.5"),
        (">=0.5", "change >= 0.5"),
        ("sdc95", "change > SDC95"),
        (">=sdc95", "change >= SDC95"),
        ("sdc80", "change > SDC80"),
        ("rapid>=5", "rapid progression (annualised change >= 5)"),
        ("rapid>5", "rapid progression (annualised change > 5)"),
    ],
)
def test_every_label_states_its_comparison(text: str, label: str) -> None:
    assert parse_threshold(text).label == label
    assert RAPID_PROGRESSION.label == "rapid progression (annualised change >= 5)"


@pytest.mark.parametrize("text", ["rapid5", "rapid 5", "rapid=5"])
def test_rapid_progression_without_its_comparison_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"rapid>=5 or rapid>5|unknown threshold"):
        parse_threshold(text)
    if text != "rapid=5":
        with pytest.raises(ValueError, match="does not say how it compares"):
            parse_threshold(text)


def test_rapid_progression_is_a_fixed_annualised_change() -> None:
    with pytest.raises(ValueError, match="fixed annualised change"):
        parse_threshold("rapid>=sdc95")


def test_visits_order_by_date_else_by_number() -> None:
    assert order_visits(["W52", "W0", "W24", "W104"]) == ["W0", "W24", "W52", "W104"]
    dates = {"BL": date(2024, 1, 1), "Y1": date(2025, 1, 1), "EXT": date(2026, 1, 1)}
    assert order_visits(["Y1", "EXT", "BL"], dates) == ["BL", "Y1", "EXT"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"rapid_threshold": "rapid5"}, "rapid_threshold: .*does not say how it compares"),
        ({"rapid_threshold": ">=5"}, "rapid_threshold: '>=5' is not on annualised change"),
        ({"thresholds": ["sdc95", "rapid>5"]}, "thresholds: 'rapid>5' is rapid progression"),
        ({"thresholds": ["lots"]}, "thresholds: unknown threshold 'lots'"),
    ],
)
def test_protocol_thresholds_state_their_comparison_and_kind(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ProtocolError, match=message):
        from_mapping({"code": "RA-1", **settings})
    ok = from_mapping(
        {"code": "RA-1", "thresholds": [">=sdc95", "0.5"], "rapid_threshold": "rapid>5"}
    )
    assert [parse_threshold(t).label for t in ok.thresholds] == ["change >= SDC95", "change > 0.5"]
