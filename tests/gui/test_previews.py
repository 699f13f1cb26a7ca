"""Every window's preview (``python -m scorer.gui.<window>``) goes through the one runner,
scorer.gui.preview.run_preview: each preview's data builder and window factory make its window
offscreen, with its content on screen; the runner itself saves a screenshot and quits."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from scorer.gui.preview import Preview

REPO = Path(__file__).resolve().parents[2]

#: Window module -> the options its preview is tried with (small data, quick).
PREVIEWS = {
    "viewer": [],
    "case_view": [],
    "joint_map": [],
    "login": [],
    "scoring_grid": ["--visits", "2", "--scored", "12"],
    "reading": ["--patients", "1", "--typed", "5"],
    "desk": ["--page", "flags"],
    "monitor": [],
    "grade_atlas": ["--method", "larsen1995", "--area", "RH WQ1 LAR"],
    "desk_viewer": [],
}


def test_every_window_module_with_a_main_has_a_preview() -> None:
    gui = REPO / "scorer" / "gui"
    with_main = sorted(
        p.stem for p in gui.glob("*.py") if 'if __name__ == "__main__":' in p.read_text()
    )
    # The workstation's __main__ is the product itself (scorer gui), not a preview.
    assert [m for m in with_main if m != "workstation"] == sorted(PREVIEWS)
    for name in PREVIEWS:
        module = importlib.import_module(f"scorer.gui.{name}")
        assert isinstance(module.PREVIEW, Preview), name
        assert "run_preview(PREVIEW, argv)" in (gui / f"{name}.py").read_text(), name


@pytest.mark.parametrize("name", sorted(PREVIEWS))
def test_each_preview_makes_its_window_offscreen(qtbot: QtBot, tmp_path: Path, name: str) -> None:
    preview: Preview = importlib.import_module(f"scorer.gui.{name}").PREVIEW
    args = preview.arguments(PREVIEWS[name])
    built = preview.build(tmp_path, args)
    window = preview.window(built, args)
    assert isinstance(window, QWidget)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: preview.ready(window, args), timeout=120_000)
    writer = getattr(window, "writer", None)
    if writer is not None:  # the grid's and the reading window's entries, all saved
        qtbot.waitUntil(lambda: writer.pending_count == 0, timeout=60_000)
    if name == "scoring_grid":
        assert window.model.undo_stack  # type: ignore[attr-defined]
        assert writer.stop(10)  # type: ignore[union-attr]
    if name == "desk":
        assert window.tabs.currentWidget().objectName() == "flagsPage"  # type: ignore[attr-defined]


def test_the_runner_saves_a_screenshot_and_quits(tmp_path: Path) -> None:
    shot = tmp_path / "joint-map.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "TMPDIR": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-m", "scorer.gui.joint_map", "--screenshot", str(shot)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert f"saved {shot}" in run.stdout
    assert shot.read_bytes().startswith(b"\x89PNG")
