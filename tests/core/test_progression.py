"""Progression thresholds and visit ordering."""

from __future__ import annotations

from datetime import date

import pytest

from scorer.core.progression import RAPID_PROGRESSION, Threshold, parse_threshold
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
    assert "per year" in Threshold("fixed", 5.0, ">=", annualised=True).label


def test_visits_order_by_date_else_by_number() -> None:
    assert order_visits(["W52", "W0", "W24", "W104"]) == ["W0", "W24", "W52", "W104"]
    dates = {"BL": date(2024, 1, 1), "Y1": date(2025, 1, 1), "EXT": date(2026, 1, 1)}
    assert order_visits(["Y1", "EXT", "BL"], dates) == ["BL", "Y1", "EXT"]
