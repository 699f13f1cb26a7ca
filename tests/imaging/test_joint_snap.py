"""The three-click fit refined on the film's pixels, against the demo films' true positions."""

from __future__ import annotations

import math
import statistics
import time
from functools import cache

import numpy as np
import pytest

from scorer.core import joint_fit as jf
from scorer.demo import read_joint_positions, repo_samples_dir
from scorer.imaging.joint_snap import (
    SEARCH_MM,
    bone_bright_pixels,
    fit_and_refine,
    refine_joints,
)
from scorer.imaging.radiograph import open_radiograph

Truth = dict[str, jf.Point]


@cache
def _truth() -> dict[tuple[str, str], Truth]:
    """(file, region) -> joint -> true (x, y) pixels, for every demo film."""
    out: dict[tuple[str, str], Truth] = {}
    for file, rows in read_joint_positions(repo_samples_dir() / "joint-positions.csv").items():
        for region, joint, x, y in rows:
            out.setdefault((file, region), {})[joint] = (x, y)
    return out


@cache
def _film(file: str) -> tuple[np.ndarray, float]:
    """A demo film's bone-bright pixels, read as the reading window reads it, and its spacing."""
    radiograph = open_radiograph(repo_samples_dir() / file)
    assert radiograph.spacing is not None
    return bone_bright_pixels(radiograph), radiograph.spacing.col_mm


def _errors_mm(placed: dict[str, jf.Point], truth: Truth, pixel_mm: float) -> list[float]:
    return [
        math.hypot(placed[j][0] - x, placed[j][1] - y) * pixel_mm for j, (x, y) in truth.items()
    ]


def _kind(region: str) -> str:
    return "hands" if region[1] == "H" else "feet"


def _print_figures(
    label: str, before: dict[str, list[float]], after: dict[str, list[float]]
) -> None:
    for kind in ("hands", "feet"):
        print(
            f"\n{label} {kind}: fit median {statistics.median(before[kind]):.2f} mm, "
            f"max {max(before[kind]):.2f} mm; refined median "
            f"{statistics.median(after[kind]):.2f} mm, max {max(after[kind]):.2f} mm"
        )


def test_exact_clicks_place_every_joint_of_every_demo_film_within_3_mm(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Done-when of issue 29: exact clicks on the three anchors, the built-in template's fit
    refined on the pixels, every joint of all 72 demo films (both regions) within 3 mm."""
    before: dict[str, list[float]] = {"hands": [], "feet": []}
    after: dict[str, list[float]] = {"hands": [], "feet": []}
    times: list[float] = []
    for (file, region), truth in _truth().items():
        pixels, pixel_mm = _film(file)
        clicks = {a: truth[a] for a in jf.ANCHORS[region]}
        fitted = jf.fit_joints(region, clicks, pixel_mm)
        start = time.perf_counter()
        refined = refine_joints(pixels, pixel_mm, region, fitted, fixed=set(clicks))
        times.append(time.perf_counter() - start)
        assert {a: refined[a] for a in clicks} == clicks  # the anchors never move
        assert set(refined) == set(fitted)
        before[_kind(region)] += _errors_mm(fitted, truth, pixel_mm)
        after[_kind(region)] += _errors_mm(refined, truth, pixel_mm)
    with capsys.disabled():
        _print_figures("exact clicks", before, after)
        print(
            f"\nrefinement per film region: median {1000 * statistics.median(times):.1f} ms, "
            f"max {1000 * max(times):.1f} ms"
        )
    assert len(times) == 144
    for kind in ("hands", "feet"):
        assert max(after[kind]) < 3.0
        assert statistics.median(after[kind]) <= statistics.median(before[kind])
    assert statistics.median(times) < 0.05


def test_noisy_clicks_are_refined_too(capsys: pytest.CaptureFixture[str]) -> None:
    """Clicks off by up to 1 mm in each direction (a careful reader's hand): the figures are
    printed for the record; the refinement must not make the worst joint worse than the fit."""
    rng = np.random.default_rng(29)
    before: dict[str, list[float]] = {"hands": [], "feet": []}
    after: dict[str, list[float]] = {"hands": [], "feet": []}
    for (file, region), truth in _truth().items():
        pixels, pixel_mm = _film(file)
        clicks = {
            a: (
                truth[a][0] + rng.uniform(-1.0, 1.0) / pixel_mm,
                truth[a][1] + rng.uniform(-1.0, 1.0) / pixel_mm,
            )
            for a in jf.ANCHORS[region]
        }
        fitted = jf.fit_joints(region, clicks, pixel_mm)
        refined = fit_and_refine(pixels, pixel_mm, region, clicks)
        assert {a: refined[a] for a in clicks} == clicks
        before[_kind(region)] += _errors_mm(fitted, truth, pixel_mm)
        after[_kind(region)] += _errors_mm(refined, truth, pixel_mm)
    with capsys.disabled():
        _print_figures("clicks within 1 mm", before, after)
    for kind in ("hands", "feet"):
        assert max(after[kind]) <= max(before[kind])
        assert statistics.median(after[kind]) <= statistics.median(before[kind])


def test_a_flat_film_keeps_the_fit() -> None:
    truth = _truth()[("DEMO-101/W0-hands.dcm", "RH")]
    clicks = {a: truth[a] for a in jf.ANCHORS["RH"]}
    fitted = jf.fit_joints("RH", clicks, 0.25)
    for blank in (np.zeros((1000, 1200)), np.full((1000, 1200), 812, dtype=np.uint16)):
        assert refine_joints(blank, 0.25, "RH", fitted, fixed=set(clicks)) == fitted


def test_a_film_without_spacing_keeps_the_fit() -> None:
    truth = _truth()[("DEMO-101/W0-hands.dcm", "RH")]
    pixels, _pixel_mm = _film("DEMO-101/W0-hands.dcm")
    clicks = {a: truth[a] for a in jf.ANCHORS["RH"]}
    assert fit_and_refine(pixels, None, "RH", clicks) == jf.fit_joints("RH", clicks, None)


@pytest.mark.parametrize("region", ["RF", "RH"])
def test_noise_alone_keeps_the_fit(region: str) -> None:
    """A film of noise without bones has no bright bands and no gaps: nothing is evidence."""
    file = "DEMO-101/W0-feet.dcm" if region == "RF" else "DEMO-101/W0-hands.dcm"
    truth = _truth()[(file, region)]
    clicks = {a: truth[a] for a in jf.ANCHORS[region]}
    fitted = jf.fit_joints(region, clicks, 0.25)
    for seed, sigma in ((1, 5.0), (2, 20.0), (3, 100.0)):
        noise = np.random.default_rng(seed).normal(1000.0, sigma, size=(1000, 1200))
        assert refine_joints(noise, 0.25, region, fitted, fixed=set(clicks)) == fitted


def test_no_joint_moves_farther_than_the_search() -> None:
    """A fit 5 mm off in both directions: whatever the refinement finds, no joint moves more
    than the bounded search from its fitted position."""
    truth = _truth()[("DEMO-102/W0-hands.dcm", "LH")]
    pixels, pixel_mm = _film("DEMO-102/W0-hands.dcm")
    clicks = {a: (truth[a][0] + 20.0, truth[a][1] + 20.0) for a in jf.ANCHORS["LH"]}
    fitted = jf.fit_joints("LH", clicks, pixel_mm)
    refined = refine_joints(pixels, pixel_mm, "LH", fitted, fixed=set(clicks))
    assert max(_errors_mm(refined, fitted, pixel_mm)) <= SEARCH_MM + 1e-9


@pytest.mark.parametrize(
    ("pixels", "pixel_mm", "region", "message"),
    [
        (np.zeros(10), 0.25, "RH", "2-D image"),
        (np.zeros((10, 10), dtype=np.complex128), 0.25, "RH", "real numbers"),
        (np.zeros((10, 10)), 0.0, "RH", "pixel spacing"),
        (np.zeros((10, 10)), 0.25, "RF", "lack"),
    ],
)
def test_bad_input_is_refused_with_the_problem_named(
    pixels: np.ndarray, pixel_mm: float, region: str, message: str
) -> None:
    truth = _truth()[("DEMO-101/W0-hands.dcm", "RH")]
    with pytest.raises(ValueError, match=message):
        refine_joints(pixels, pixel_mm, region, truth, fixed=())
