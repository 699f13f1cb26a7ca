"""The three-click fit against the sample films' true joint positions, and its refusals."""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from scorer.core import joint_fit as jf
from scorer.demo import read_joint_positions, repo_samples_dir

ROOT = Path(__file__).resolve().parents[2]
PIXEL_MM = 0.25  # the sample films' spacing (sample_images/README.md)
Films = dict[tuple[str, str], dict[str, jf.Point]]


@cache
def _films() -> Films:
    """Every sample film's regions: (file, region) -> joint -> true (x, y) pixels."""
    out: Films = {}
    for file, rows in read_joint_positions(repo_samples_dir() / "joint-positions.csv").items():
        for region, joint, x, y in rows:
            out.setdefault((file, region), {})[joint] = (x, y)
    return out


def _errors_mm(fitted: dict[str, jf.Point], truth: dict[str, jf.Point]) -> Iterator[float]:
    for joint, (x, y) in truth.items():
        fx, fy = fitted[joint]
        yield math.hypot(fx - x, fy - y) * PIXEL_MM


def _anchor_clicks(region: str, truth: dict[str, jf.Point]) -> dict[str, jf.Point]:
    return {a: truth[a] for a in jf.ANCHORS[region]}


def _other_side(file: str, region: str) -> dict[str, jf.Point]:
    other = ("L" if region[0] == "R" else "R") + region[1]
    return _films()[(file, other)]


def test_every_sample_film_and_region_has_its_joints() -> None:
    films = _films()
    assert len({f for f, _ in films}) == 72
    assert len(films) == 144
    for (_file, region), joints in films.items():
        assert set(joints) == set(jf.region_joints(region))


@pytest.mark.parametrize("transform", jf.TRANSFORMS)
def test_the_patients_own_anatomy_places_every_joint_within_3_mm(transform: str) -> None:
    """Done-when of issue 29: exact clicks on the three anchors place every joint of every
    sample film (72 films, both regions) within 3 mm, fitting the patient's own anatomy (the
    other side of the film, mirrored); so does another visit of the same side."""
    worst = 0.0
    for (file, region), truth in _films().items():
        own = jf.patient_template(
            region,
            _other_side(file, region),
            ("R" if region[0] == "L" else "L") + region[1],
            PIXEL_MM,
        )
        fitted = jf.fit_joints(region, _anchor_clicks(region, truth), PIXEL_MM, transform, own)
        worst = max(worst, *_errors_mm(fitted, truth))
    assert worst < 3.0
    assert worst < 0.05  # the generator mirrors one anatomy: only rounding is left
    for (file, region), truth in _films().items():
        if not file.endswith(("W24-hands.dcm", "W52-feet.dcm")):
            continue
        baseline = _films()[(file.replace("W24", "W0").replace("W52", "W0"), region)]
        own = jf.patient_template(region, baseline, region, PIXEL_MM)
        fitted = jf.fit_joints(region, _anchor_clicks(region, truth), PIXEL_MM, transform, own)
        assert max(_errors_mm(fitted, truth)) < 0.05


def _generic_errors(transform: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"hand": [], "foot": []}
    for (_file, region), truth in _films().items():
        fitted = jf.fit_joints(region, _anchor_clicks(region, truth), PIXEL_MM, transform)
        kind = "hand" if region[1] == "H" else "foot"
        out[kind] += list(_errors_mm(fitted, truth))
    return out


@pytest.mark.parametrize("transform", jf.TRANSFORMS)
def test_the_built_in_template_places_most_joints_within_3_mm(
    transform: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The mean-anatomy template cannot follow each ray's own length (plus or minus 3 %) and
    spread (plus or minus 2.5 degrees), which the generator draws per patient and no three
    clicks reveal: a few finger and toe joints of a ray far from the anchors land up to about
    5 mm off. The figures below are printed for the record (pytest -s)."""
    errors = _generic_errors(transform)
    with capsys.disabled():
        for kind, values in errors.items():
            over = sum(e > 3.0 for e in values)
            print(
                f"\n{transform} {kind}: median {statistics.median(values):.2f} mm, "
                f"max {max(values):.2f} mm, {over} of {len(values)} joints over 3 mm"
            )
    for values in errors.values():
        assert statistics.median(values) < 1.0
        assert max(values) < 5.0
        assert sum(e > 3.0 for e in values) / len(values) < 0.06


def test_clicked_joints_stay_where_they_were_clicked() -> None:
    (_file, region), truth = next(iter(_films().items()))
    clicks = {j: (truth[j][0] + 3.0, truth[j][1] - 2.0) for j in jf.ANCHORS[region]}
    fitted = jf.fit_joints(region, clicks, PIXEL_MM)
    assert {j: fitted[j] for j in clicks} == clicks
    assert set(fitted) == set(jf.region_joints(region))


def test_more_than_three_clicks_fit_by_least_squares() -> None:
    truth = _films()[("DEMO-101/W0-hands.dcm", "RH")]
    clicks = {j: truth[j] for j in ("MCP2", "MCP5", "RAD", "PIP3", "PIP4")}
    for transform in jf.TRANSFORMS:
        fitted = jf.fit_joints("RH", clicks, None, transform)
        assert max(_errors_mm(fitted, truth)) < 5.0


def test_left_templates_mirror_the_right() -> None:
    for left, right in (("LH", "RH"), ("LF", "RF")):
        for joint, (x, y) in jf.TEMPLATES[right].items():
            assert jf.TEMPLATES[left][joint] == (-x, y)


def test_the_template_file_is_what_the_script_makes() -> None:
    made = subprocess.run(
        [
            sys.executable,
            "-c",
            "import make_joint_templates as m; print(m.templates_json(), end='')",
        ],
        cwd=ROOT / "scripts",
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT)},
        check=True,
    ).stdout
    assert made == (ROOT / "resources" / "joint_templates.json").read_text(encoding="utf-8")


# --- refusals -------------------------------------------------------------------------------


def _rh() -> dict[str, jf.Point]:
    return _films()[("DEMO-101/W0-hands.dcm", "RH")]


@pytest.mark.parametrize(
    ("clicks", "message"),
    [
        ({"MCP2": (1.0, 2.0), "MCP5": (50.0, 2.0)}, "needs three clicks, not 2"),
        ({"MCP2": (1.0, 2.0), "MCP5": (1.2, 2.1), "RAD": (90.0, 300.0)}, "on the same spot"),
        ({"MCP2": (100.0, 100.0), "MCP5": (200.0, 110.0), "RAD": (300.0, 120.0)}, "on a line"),
        ({"MCP2": (1.0, 2.0), "MCP5": (50.0, 2.0), "MTP1": (9.0, 9.0)}, "not a joint of RH"),
        ({"MCP2": (1.0, 2.0), "MCP5": (50.0, 2.0), "RAD": (float("nan"), 9.0)}, "not a finite"),
        ({"MCP2": (1.0, 2.0), "MCP5": (50.0, 2.0), "RAD": "here"}, "must be \\(x, y\\)"),
        ({"MCP3": (1.0, 2.0), "MCP4": (50.0, 2.0), "MCP5": (90.0, 9.0)}, "almost on a line in"),
    ],
)
def test_bad_clicks_are_refused_with_the_problem_named(
    clicks: dict[str, jf.Point], message: str
) -> None:
    with pytest.raises(jf.FitError, match=message):
        jf.fit_joints("RH", clicks, None)


def test_swapped_or_mirrored_clicks_are_refused() -> None:
    t = _rh()
    swapped = {"MCP2": t["MCP5"], "MCP5": t["MCP2"], "RAD": t["RAD"]}
    with pytest.raises(jf.FitError, match="mirror image of a right hand"):
        jf.fit_joints("RH", swapped, PIXEL_MM)
    wrong_shape = {"MCP2": t["MCP2"], "MCP5": t["MCP5"], "RAD": t["MCP1"]}  # thumb, not wrist
    with pytest.raises(jf.FitError, match="shape of a right hand"):
        jf.fit_joints("RH", wrong_shape, PIXEL_MM)


def test_an_impossible_size_by_the_spacing_is_refused() -> None:
    clicks = {a: _rh()[a] for a in jf.ANCHORS["RH"]}
    with pytest.raises(jf.FitError, match="of a typical one's size"):
        jf.fit_joints("RH", clicks, 0.05)  # a hand 5 times too small
    jf.fit_joints("RH", clicks, None)  # without a spacing the size is not known
    for bad in (0.0, -1.0, float("inf"), "0.25"):
        with pytest.raises(jf.FitError, match="pixel spacing"):
            jf.fit_joints("RH", clicks, bad)  # type: ignore[arg-type]


def test_unknown_region_transform_and_wrong_template_are_refused() -> None:
    clicks = {a: _rh()[a] for a in jf.ANCHORS["RH"]}
    with pytest.raises(jf.FitError, match="unknown region 'XH'"):
        jf.fit_joints("XH", clicks, None)
    with pytest.raises(jf.FitError, match="unknown transform 'perspective'"):
        jf.fit_joints("RH", clicks, None, "perspective")
    with pytest.raises(jf.FitError, match="cannot be a template for RH"):
        jf.patient_template("RH", {}, "LF", None)
    with pytest.raises(jf.FitError, match="lack CMC1, CMC3"):
        jf.patient_template("RH", {"MCP2": (1.0, 1.0)}, "LH", None)
