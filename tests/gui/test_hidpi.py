"""At a device pixel ratio of 2 (QT_SCALE_FACTOR=2) the reading window renders the films at
physical pixels and no control is clipped: every visible widget lies inside the window and
has at least the room its text needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def test_the_reading_window_at_device_pixel_ratio_2_clips_nothing(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SCORER_DATA_DIR": str(tmp_path / "data"),
        "SCORER_CONFIG": str(tmp_path / "no-site-config.toml"),
        "QT_SCALE_FACTOR": "2",
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONPATH": str(REPO),
    }
    width, height = 1280, 800
    run = subprocess.run(
        [sys.executable, "-m", "tests.gui.hidpi_window", str(tmp_path), str(width), str(height)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["case_shown"]
    assert report["grid_shown"]
    assert report["device_pixel_ratio"] == 2.0
    assert report["window"] == [width, height]
    with Image.open(tmp_path / "reading-dpr2.png") as png:
        assert png.size == (2 * width, 2 * height)  # grabbed at physical pixels
    assert report["png"] == [2 * width, 2 * height]
    vw, vh = report["viewer"]
    assert report["frame"] == [2 * vh, 2 * vw]  # the film is drawn at physical pixels
    # 3 visits do not fit side by side here, but stacked (landscape films): no tabs needed
    assert not report["tabs_mode"] and report["arrangement"][1] > 1, {
        k: report[k] for k in ("case_view", "panes_area", "arrangement", "window")
    }
    assert not report["table_scrolls_sideways"]  # the worklist's columns fit its panel
    problems = []
    for w in report["widgets"]:
        name = f"{w['class']} {w['name']!r} {w['text']!r}"
        inside = (
            w["x"] >= 0
            and w["y"] >= 0
            and w["x"] + w["width"] <= width
            and w["y"] + w["height"] <= height
        )
        if not inside and not w["scrolls"]:  # a scroll area's content may lie past its view
            problems.append(f"{name} at {w['x']},{w['y']} {w['width']}x{w['height']} is outside")
        squeezed = w["width"] < w["min_width"] or w["height"] < w["min_height"]
        if w["text"] and not w["word_wrap"] and squeezed:
            needs = f"{w['min_width']}x{w['min_height']}"
            problems.append(f"{name} is {w['width']}x{w['height']}, needs {needs}")
    assert not problems, "\n".join(problems)
    hidden_tools = [w for w in report["widgets"] if w["name"] == "qt_toolbar_ext_button"]
    assert not hidden_tools, "some tools are pushed into the toolbar's overflow menu"
    texts = {w["text"] for w in report["widgets"]}
    assert {"A", "Next ▶", "◀ Previous", "Hands", "Feet"} <= texts
