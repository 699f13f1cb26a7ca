"""Run by test_hidpi in a child process with QT_SCALE_FACTOR=2: open the reading window on a
synthetic case, save a PNG of it and print (as JSON) what a clipping check needs.

Usage: python -m tests.gui.hidpi_window OUT_FOLDER WIDTH HEIGHT
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QAbstractButton, QAbstractScrollArea, QLabel, QWidget


def in_scroll_area(widget: QWidget) -> bool:
    """Whether ``widget`` is content of a scroll area (it may lie past the visible part)."""
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QAbstractScrollArea) and parent.viewport().isAncestorOf(widget):
            return True
        parent = parent.parentWidget()
    return False


def describe(widget: QWidget, window: QWidget) -> dict[str, Any]:
    origin = widget.mapTo(window, QPoint(0, 0))
    hint = widget.minimumSizeHint()
    text = widget.text() if isinstance(widget, QAbstractButton | QLabel) else ""
    return {
        "class": type(widget).__name__,
        "name": widget.objectName(),
        "text": text,
        "x": origin.x(),
        "y": origin.y(),
        "width": widget.width(),
        "height": widget.height(),
        "min_width": hint.width(),
        "min_height": hint.height(),
        "word_wrap": bool(isinstance(widget, QLabel) and widget.wordWrap()),
        "scrolls": in_scroll_area(widget),
    }


def main(folder: Path, width: int, height: int) -> int:
    from scorer.gui.preview import preview_application
    from scorer.gui.reading import ReadingWindow, layout_settings
    from scorer.gui.sample_case import build_sample_workspace

    app = preview_application("dark")
    sample = build_sample_workspace(folder / "trial", patients=1, pixel_mm=1.0)
    window = ReadingWindow(
        sample.workspace, sample.session, sample.trial, settings=layout_settings(folder)
    )
    # The size under test, not maximised as a reader's first session would be.
    window.setWindowState(Qt.WindowState.WindowNoState)
    window.resize(width, height)
    window.show()
    deadline = time.monotonic() + 60
    while (window.case_view.case is None or window.grid is None) and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)
    # On a busy machine the window's last resize can come later: the panes' arrangement
    # follows it (the report still says tabs if they stay).
    settle = time.monotonic() + 10
    while window.case_view.tabs_mode and time.monotonic() < settle:
        app.processEvents()
        time.sleep(0.05)
    pixmap = window.grab()
    pixmap.save(str(folder / "reading-dpr2.png"))
    viewer = window.case_view.active_viewer()
    frame = viewer.model.render() if viewer is not None else None
    report = {
        "case_shown": window.case_view.case is not None,
        "grid_shown": window.grid is not None and window.grid.isVisible(),
        "device_pixel_ratio": window.devicePixelRatioF(),
        "window": [window.width(), window.height()],
        "png": [pixmap.width(), pixmap.height()],
        "viewer": [viewer.width(), viewer.height()] if viewer else None,
        "frame": list(frame.shape) if frame is not None else None,
        "tabs_mode": window.case_view.tabs_mode,
        "case_view": [window.case_view.width(), window.case_view.height()],
        "panes_area": list(window.case_view._panes_area()),
        "arrangement": [window.case_view.arrangement.columns, window.case_view.arrangement.rows],
        "table_scrolls_sideways": window.worklist_table.horizontalScrollBar().isVisible(),
        "widgets": [
            describe(w, window)
            for w in window.findChildren(QWidget)
            if w.isVisible() and not w.isWindow()
        ],
    }
    print(json.dumps(report))
    window.close()
    sample.workspace.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
