"""The desk's Drift page on a real X display (Qt's xcb platform, not offscreen): ``python -m
scorer.gui.desk --page drift`` shows the desk on its Drift page, its charts drawn with QPainter,
without a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.gui.test_xcb_windows import REPO, assert_drawn, keep, wait_for_window
from tests.gui.xvfb import xvfb

pytestmark = [
    pytest.mark.posix,
    pytest.mark.slow,
    pytest.mark.skipif(
        not sys.platform.startswith("linux") or shutil.which("Xvfb") is None,
        reason="needs Linux with Xvfb, xwd and xwininfo (scripts/setup.sh --test installs them)",
    ),
]


def test_the_drift_page_opens_on_xcb(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WAYLAND_DISPLAY", "SCORER_DB", "QT_QPA_PLATFORM", "QT_SCALE_FACTOR")
    }
    with xvfb("1920x1080x24") as display:
        env |= {
            "DISPLAY": display,
            "QT_QPA_PLATFORM": "xcb",
            "SCORER_DATA_DIR": str(tmp_path / "data"),
            "SCORER_CONFIG": str(tmp_path / "no-site-config.toml"),
        }
        log = tmp_path / "desk.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "scorer.gui.desk", "--page", "drift"],
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
                cwd=REPO,
            )
        try:
            # The splash shows while the throw-away trial is made; the desk's title after.
            deadline = time.monotonic() + 120
            while True:
                shown = wait_for_window(
                    display, "scorer — coordinator's desk", process, timeout=120
                )
                try:
                    assert_drawn(shown, 800, 500)
                    break
                except AssertionError:
                    if time.monotonic() > deadline:
                        raise
            keep(shown, "desk-drift-xcb", tmp_path)
        finally:
            process.terminate()
            process.wait(timeout=15)
    assert "Traceback" not in log.read_text(), log.read_text()
