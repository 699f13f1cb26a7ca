"""Running one window on its own (``python -m scorer.gui.viewer`` and the like), for screenshots.

Each window's ``__main__`` block parses the same few options here: ``--theme``, ``--size``
and ``--screenshot PATH``, which saves the window once its content is on screen and quits.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QThreadPool, QTimer
from PySide6.QtWidgets import QApplication, QWidget

from scorer.gui.theme import THEMES, apply_theme

SETTLE_MS = 400  # after the content is ready, let late paints (fonts, layouts) land


def preview_arguments(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse a preview's options; ``--files`` takes any positional files the window opens."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("files", nargs="*", help="DICOM files to show (default: synthetic films)")
    parser.add_argument("--theme", choices=THEMES, default="dark")
    parser.add_argument("--size", default="1400x860", help="window size WIDTHxHEIGHT")
    parser.add_argument("--screenshot", metavar="PNG", help="save the window and quit")
    return parser.parse_args(list(argv) if argv is not None else sys.argv[1:])


def preview_application(theme: str = "dark") -> QApplication:
    """The application for a preview, with the theme applied."""
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(sys.argv[:1])
    app.setOrganizationName("scorer")
    app.setApplicationName("scorer")
    apply_theme(app, theme)
    return app


def window_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    return int(width), int(height)


def temporary_folder(prefix: str) -> Path:
    """A fresh folder for a preview's synthetic data; the preview's data directory and
    config point here too, so a preview never touches the user's real data."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["SCORER_DATA_DIR"] = str(folder / "data")
    os.environ["SCORER_CONFIG"] = str(folder / "no-site-config.toml")
    os.environ.pop("SCORER_DB", None)
    return folder


def save_when_ready(
    window: QWidget, path: str | os.PathLike[str], ready: Callable[[], bool], timeout_s: float = 60
) -> None:
    """Save ``window`` to ``path`` once ``ready()`` is true (polled), then quit."""
    waited = {"ms": 0}
    timer = QTimer(window)

    def poll() -> None:
        waited["ms"] += 100
        if not ready() and waited["ms"] < timeout_s * 1000:
            return
        timer.stop()
        QTimer.singleShot(SETTLE_MS, save)

    def save() -> None:
        window.grab().save(os.fspath(path))
        print(f"saved {path}")
        QApplication.quit()

    timer.timeout.connect(poll)
    timer.start(100)


def run_preview(app: QApplication) -> int:
    """Run the event loop; on quitting, let background work (a case being prepared) finish
    while its callbacks' objects still exist."""
    code = app.exec()
    QThreadPool.globalInstance().waitForDone(10_000)
    return code
