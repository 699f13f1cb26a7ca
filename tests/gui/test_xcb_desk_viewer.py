"""The desk's image viewer on a real X display (Qt's xcb platform, not offscreen): ``python -m
scorer.gui.desk_viewer`` shows its window, by its title, with a film drawn."""

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


def test_the_desk_viewer_opens_on_xcb(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WAYLAND_DISPLAY", "SCORER_DB", "QT_QPA_PLATFORM", "QT_SCALE_FACTOR")
    }
    with xvfb("1920x1080x24") as display:
        env |= {"DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
        log = tmp_path / "viewer.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "scorer.gui.desk_viewer"],
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
                cwd=REPO,
            )
        try:
            # The window shows first ("Loading…"), the film a moment later (on a worker).
            deadline = time.monotonic() + 120
            while True:
                shown = wait_for_window(display, "scorer — sample films", process, timeout=120)
                try:
                    assert_drawn(shown, 800, 600)
                    break
                except AssertionError:
                    if time.monotonic() > deadline:
                        raise
            keep(shown, "desk-viewer-xcb", tmp_path)
        finally:
            process.terminate()
            process.wait(timeout=15)
    assert "Traceback" not in log.read_text(), log.read_text()
