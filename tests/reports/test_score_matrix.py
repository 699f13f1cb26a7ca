"""Totals of many reads at once (scorer.reports.score_matrix) against the rules read by read
(scorer.core.totals): the same numbers, bit for bit, under every missing-data rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scorer.core.methods import REASONS, Area, Method, get_method
from scorer.core.reads import AreaScore, Read
from scorer.core.totals import AREA_RULES, OPERATED_RULES, MissingDataRules
from scorer.core.totals import change_totals as one_change
from scorer.core.totals import status_totals as one_status
from scorer.reports.score_matrix import ScoreMatrix, change_totals, status_totals

METHODS = [get_method("svh"), get_method("larsen1995")]
RULES = st.builds(
    MissingDataRules,
    areas=st.sampled_from(AREA_RULES),
    max_unused_share=st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9]),
    operated=st.sampled_from(OPERATED_RULES),
)


@st.composite
def scores(draw: st.DrawFn, method: Method) -> dict[Area, AreaScore]:
    """Mostly scored areas, some not assessable (operated among them), some left out."""
    gap = draw(st.sampled_from([0.0, 0.05, 0.3, 1.0]))
    out: dict[Area, AreaScore] = {}
    for d in method.areas:
        kind = draw(st.floats(0, 1))
        if kind < gap / 2:
            continue
        if kind < gap:
            out[d.area] = AreaScore.not_assessable(draw(st.sampled_from(REASONS)))
        else:
            out[d.area] = AreaScore.scored(draw(st.integers(d.min, d.max)))
    return out


def read(method: Method, s: dict[Area, AreaScore], n: int) -> Read:
    return Read("T", f"P{n}", "W0", "R", method.id, read_id=f"r{n}", status="in_progress", scores=s)


def same(a: float, b: float | None) -> bool:
    return (b is None and math.isnan(a)) or a == b


CASES = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])


@CASES
@given(st.data(), RULES)
def test_status_totals_match_the_read_by_read_rules(
    data: st.DataObject, rules: MissingDataRules
) -> None:
    method = data.draw(st.sampled_from(METHODS))
    reads = [
        read(method, data.draw(scores(method)), i) for i in range(data.draw(st.integers(1, 6)))
    ]
    got = status_totals(ScoreMatrix.of(method, reads), rules)
    for i, r in enumerate(reads):
        want = one_status(r, method, rules)
        assert same(float(got.total[i]), want.total), (i, got.total[i], want.total)
        assert bool(got.adjusted[i]) == want.adjusted


@CASES
@given(st.data(), RULES)
def test_change_totals_match_the_read_by_read_rules(
    data: st.DataObject, rules: MissingDataRules
) -> None:
    method = data.draw(st.sampled_from(METHODS))
    n = data.draw(st.integers(1, 6))
    before = [read(method, data.draw(scores(method)), i) for i in range(n)]
    after = [read(method, data.draw(scores(method)), i) for i in range(n)]
    got = change_totals(ScoreMatrix.of(method, before), ScoreMatrix.of(method, after), rules)
    for i in range(n):
        want = one_change(before[i], after[i], method, rules).total
        assert same(float(got[i]), want), (i, got[i], want)


def test_the_matrix_holds_scores_and_marks_operated_areas() -> None:
    svh = get_method("svh")
    first, second = svh.areas[0], svh.areas[1]
    r = read(
        svh, {first.area: AreaScore.scored(3), second.area: AreaScore.not_assessable("operated")}, 0
    )
    m = ScoreMatrix.of(svh, [r])
    assert m.scores.shape == (1, len(svh.areas))
    assert m.scores[0, 0] == 3 and np.isnan(m.scores[0, 1]) and np.isnan(m.scores[0, 2])
    assert m.operated[0].tolist() == [False, True] + [False] * (len(svh.areas) - 2)
    top = m.values(MissingDataRules(operated="max"))
    assert top[0, 1] == second.max and np.isnan(top[0, 2])
    assert np.isnan(m.values(MissingDataRules())[0, 1])
    assert ScoreMatrix.of(svh, []).scores.shape == (0, len(svh.areas))
    assert status_totals(ScoreMatrix.of(svh, [])).total.shape == (0,)


def test_change_refuses_matrices_of_different_reads() -> None:
    svh = get_method("svh")
    one = ScoreMatrix.of(svh, [read(svh, {}, 0)])
    two = ScoreMatrix.of(svh, [read(svh, {}, 0), read(svh, {}, 1)])
    with pytest.raises(ValueError, match="differ in shape"):
        change_totals(one, two)
