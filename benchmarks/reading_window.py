"""What the benchmarks that drive the reading window share: waiting on the event loop, and
opening the window at the size they state."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication


def spin(app: QApplication, until: Callable[[], bool], timeout_s: float = 120.0) -> None:
    """Process events until ``until()`` holds."""
    deadline = time.perf_counter() + timeout_s
    while not until():
        if time.perf_counter() > deadline:
            raise TimeoutError("the window did not get there in time")
        app.processEvents()


def open_reading_window(
    sample: Any, settings_dir: Path, size: tuple[int, int], *, truth: bool = False, **kw: Any
) -> Any:
    """The reader's window on a sample workspace, shown at ``size`` (not maximised, as a
    reader's first session would open: offscreen, that is the platform's small screen).
    ``truth``: the films come with their true joint positions, as the demo's do."""
    from scorer.gui.prefetch import CasePreparer
    from scorer.gui.reading import ReadingWindow, layout_settings
    from scorer.gui.sample_case import case_images_with_truth

    if truth:
        kw["preparer"] = CasePreparer(
            case_images_with_truth(sample), cache_dir=sample.workspace.images.cache_dir
        )
    window = ReadingWindow(
        sample.workspace, sample.session, sample.trial, settings=layout_settings(settings_dir), **kw
    )
    window.setWindowState(window.windowState() & ~Qt.WindowState.WindowMaximized)
    window.resize(*size)
    window.show()
    return window
