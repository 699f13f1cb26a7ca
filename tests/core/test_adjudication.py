"""Discrepancy rules and final-score rules of adjudication, with hand-computed values."""

from __future__ import annotations

import pytest

from scorer.core.adjudication import check_discrepancy, final_score


def test_difference_over_the_limit_is_discrepant() -> None:
    assert not check_discrepancy("P1", {"R1": 3, "R2": 5}, limit=2).discrepant  # 2 is allowed
    d = check_discrepancy("P1", {"R1": 3, "R2": 5.5}, limit=2)
    assert d.discrepant and "differ by 2.5" in d.reasons[0]


def test_disagreement_on_progressor_status_is_discrepant() -> None:
    # A difference within the limit, but one reader above the SDC and one not.
    d = check_discrepancy("P2", {"R1": 1.5, "R2": 2.2}, limit=3, progression_cutoff=1.85)
    assert d.discrepant and "progressor status differs (R2 progress; R1 do not)" in d.reasons
    assert not check_discrepancy(
        "P2", {"R1": 2.0, "R2": 2.2}, limit=3, progression_cutoff=1.85
    ).discrepant
    # ">=" versus ">" at the cutoff itself.
    assert check_discrepancy(
        "P3", {"R1": 2, "R2": 1}, limit=5, progression_cutoff=2, inclusive=True
    ).discrepant
    assert not check_discrepancy("P3", {"R1": 2, "R2": 1}, limit=5, progression_cutoff=2).discrepant


def test_queue_on_a_constructed_data_set() -> None:
    changes = {
        "A": {"R1": 0, "R2": 1},
        "B": {"R1": 4, "R2": 9},
        "C": {"R1": 2.5, "R2": 1.0},
        "D": {"R1": -1, "R2": 0},
        "E": {"R1": 10, "R2": 12},
    }
    by_number = [p for p, c in changes.items() if check_discrepancy(p, c, limit=3).discrepant]
    assert by_number == ["B"]
    by_sdc = [
        p
        for p, c in changes.items()
        if check_discrepancy(p, c, limit=1.85, progression_cutoff=1.85).discrepant
    ]
    assert by_sdc == ["B", "C", "E"]  # B: 5 apart; C: 2.5 > SDC >= 1.0; E: 2 apart


def test_final_scores_by_rule_with_ties() -> None:
    assert final_score([4, 9, 6], "mean_all") == pytest.approx(19 / 3)
    assert final_score([4, 9, 6], "closest_two") == 5.0  # |4-6| = 2 is the closest pair
    # Tie: (2, 4) and (4, 6) are both 2 apart; the median of all is 5 -> (4, 6), mean 5.
    assert final_score([2, 4, 6, 9], "closest_two") == 5.0
    # Three pairs 2 apart; the median is 3 -> (2, 4), mean 3.
    assert final_score([0, 2, 4, 6], "closest_two") == pytest.approx(3.0)
    assert final_score([4, 9, 6], "adjudicator", adjudicator=6) == 6
    assert final_score([3, 5], "closest_two") == 4.0
    with pytest.raises(ValueError, match="needs the adjudicator"):
        final_score([1, 2], "adjudicator")
    with pytest.raises(ValueError, match="unknown final-score rule"):
        final_score([1, 2], "coin")


def test_select_reads_picks_the_reads_of_the_final_score() -> None:
    from scorer.core.adjudication import select_reads

    changes = {"r1": 2.0, "r2": 6.0, "adj": 5.0}
    assert select_reads(changes, "mean_all", "adj") == ("adj", "r1", "r2")
    assert select_reads(changes, "adjudicator", "adj") == ("adj",)
    assert select_reads(changes, "closest_two", "adj") == ("adj", "r2")  # |6 - 5| = 1
    # Two pairs equally close (2 apart); the median of all (3) is the mean of r2 and adj.
    tie = {"r1": 0.0, "r2": 2.0, "r3": 10.0, "adj": 4.0}
    assert select_reads(tie, "closest_two", "adj") == ("adj", "r2")
    # Equally close and equally near the median: the pair first in name order, whatever the
    # order the reads come in.
    sym = {"b": 4.0, "a": 0.0, "c": 2.0}
    assert select_reads(sym, "closest_two") == ("a", "c")
    assert select_reads(dict(reversed(list(sym.items()))), "closest_two") == ("a", "c")
    with pytest.raises(ValueError, match="adjudicator's read"):
        select_reads({"r1": 1.0, "r2": 2.0}, "adjudicator")
    with pytest.raises(ValueError, match="unknown final-score rule"):
        select_reads(changes, "median")
