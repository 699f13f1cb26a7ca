"""Worklist randomisation: reproducible, reader-specific, uniform; hidden re-reads."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from scipy.stats import chisquare

from scorer.core.randomness import Stream
from scorer.core.worklist import WorklistInput, generate

VISITS = ("W0", "W24", "W52")


def inp(
    seed: str = "s",
    reader: str = "rita",
    design: str = "paired_blinded",
    n: int = 30,
    share: float = 0.10,
    gap: int = 20,
) -> WorklistInput:
    patients = [f"P{i:03d}" for i in range(n)]
    return WorklistInput(
        seed,
        reader,
        design,
        patients,
        {p: VISITS for p in patients},
        reread_share=share,
        min_gap=gap,
    )


def test_same_seed_same_orders() -> None:
    assert generate(inp("abc")) == generate(inp("abc"))


def test_different_readers_and_seeds_give_different_orders() -> None:
    a = [c.patient for c in generate(inp("abc", "rita"))]
    b = [c.patient for c in generate(inp("abc", "remy"))]
    c = [c.patient for c in generate(inp("abd", "rita"))]
    assert a != b and a != c
    assert sorted(set(a)) == sorted(set(b))


def test_the_stream_and_orders_are_fixed_across_versions() -> None:
    """Golden values: a worklist must regenerate from its seed for as long as the trial's
    records are kept, whatever Python or library version runs it."""
    s = Stream("seed", "label")
    assert [s.below(1000) for _ in range(5)] == [898, 985, 104, 700, 894]
    patients = ["P1", "P2", "P3", "P4"]
    cases = generate(
        WorklistInput(
            "golden",
            "rita",
            "paired_blinded",
            patients,
            {p: ("W0", "W52") for p in patients},
            0.5,
            1,
        )
    )
    assert [(c.code, c.patient, c.visits, c.read_type, c.original) for c in cases] == [
        ("UAQKFHDL", "P2", ("W0", "W52"), "primary", None),
        ("F6VT8NGW", "P3", ("W0", "W52"), "primary", None),
        ("MBM6SP5B", "P4", ("W52", "W0"), "primary", None),
        ("38NX9VBQ", "P1", ("W52", "W0"), "primary", None),
        ("3HJYBL6D", "P1", ("W52", "W0"), "reread", 3),
        ("GUBABUKM", "P4", ("W0", "W52"), "reread", 2),
    ]


def test_patient_positions_are_uniform_over_seeds() -> None:
    """Chi-square over many seeds: each patient equally likely at each position."""
    n, seeds = 8, 1600
    counts = Counter()
    for k in range(seeds):
        cases = generate(inp(f"seed-{k}", n=n, share=0.0))
        for c in cases:
            counts[(c.patient, c.position)] += 1
    for p in range(n):
        observed = [counts[(f"P{p:03d}", pos)] for pos in range(n)]
        assert sum(observed) == seeds
        assert chisquare(observed).pvalue > 1e-3, observed
    table = [counts[(f"P{p:03d}", pos)] for p in range(n) for pos in range(n)]
    assert chisquare(table).pvalue > 1e-3


def test_paired_visit_orders_are_uniform_and_chronological_is_in_order() -> None:
    perms = Counter()
    for k in range(300):
        for c in generate(inp(f"v{k}", n=10, share=0.0)):
            perms[c.visits] += 1
    assert set(perms) == set(itertools.permutations(VISITS))
    assert chisquare(list(perms.values())).pvalue > 1e-3
    for c in generate(inp("x", design="chronological")):
        assert c.visits == VISITS and c.letters == ("A", "B", "C")


def test_single_design_shuffles_every_visit_as_its_own_case() -> None:
    cases = generate(inp("x", design="single", n=10, share=0.0))
    assert len(cases) == 30 and all(len(c.visits) == 1 for c in cases)
    assert sorted((c.patient, c.visits[0]) for c in cases) == sorted(
        (f"P{i:03d}", v) for i in range(10) for v in VISITS
    )
    by_patient = [c.patient for c in cases]
    assert by_patient != sorted(by_patient)


@pytest.mark.parametrize("n", [5, 21, 30, 60, 150])
def test_rereads_never_within_20_cases_of_the_original(n: int) -> None:
    for k in range(40):
        cases = generate(inp(f"r{k}", n=n))
        rereads = [c for c in cases if c.read_type == "reread"]
        assert len(rereads) == int(0.10 * n + 0.5)  # half up
        primaries = [c for c in cases if c.read_type == "primary"]
        assert len(primaries) == n
        for c in rereads:
            orig = cases[c.original]  # type: ignore[index]
            assert orig.read_type == "primary" and orig.patient == c.patient
            between = c.position - orig.position - 1
            # At least 20 cases in between, or at the end of a list too short for that.
            assert between >= 20 or c.position >= len(cases) - len(rereads), (n, between)
        assert [c.position for c in cases] == list(range(len(cases)))


def test_a_reread_looks_like_any_other_case() -> None:
    cases = generate(inp("look", n=60))
    rereads = [c for c in cases if c.read_type == "reread"]
    assert rereads
    codes = {c.code for c in cases}
    assert len(codes) == len(cases)  # fresh code, never the original's
    for c in rereads:
        orig = cases[c.original]  # type: ignore[index]
        assert c.code != orig.code
        assert len(c.code) == len(orig.code) and c.code.isalnum()
        assert len(c.letters) == len(orig.letters)


def test_case_codes_betray_no_order() -> None:
    cases = generate(inp("codes", n=100, share=0.0))
    codes = [c.code for c in cases]
    assert codes != sorted(codes)
    assert len(set(codes)) == 100


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown reading design"):
        inp(design="random")
    with pytest.raises(ValueError, match="share of re-reads"):
        inp(share=1.5)
