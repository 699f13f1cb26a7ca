"""Running one window on its own (``python -m scorer.gui.viewer`` and the like), for screenshots.

Each window module declares a :class:`Preview` — the throw-away data it builds (off the UI
thread) and the window it makes of them — and its ``__main__`` block hands it to the one
runner, :func:`run_preview`, with the same options everywhere: ``--theme``, ``--size`` and
``--screenshot PATH``, which saves the window once its content is on screen and quits.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QThreadPool, QTimer
from PySide6.QtWidgets import QApplication, QLabel, QWidget

from scorer.gui.tasks import run_in_background
from scorer.gui.theme import THEMES, apply_theme

SETTLE_MS = 400  # after the content is ready, let late paints (fonts, layouts) land


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


def _no_build(_folder: Path, _args: argparse.Namespace) -> None:
    return None


def _shown(_window: Any, _args: argparse.Namespace) -> bool:
    return True


@dataclass(frozen=True)
class Preview:
    """One window's preview: ``build(folder, args)`` makes the throw-away data in ``folder``
    (off the UI thread), ``window(built, args)`` the window over them (on the UI thread),
    ``ready(window, args)`` says its content is on screen (for ``--screenshot``);
    ``options`` adds the window's own command-line options."""

    name: str
    description: str
    window: Callable[[Any, argparse.Namespace], QWidget]
    build: Callable[[Path, argparse.Namespace], Any] = _no_build
    ready: Callable[[Any, argparse.Namespace], bool] = _shown
    options: Callable[[argparse.ArgumentParser], None] | None = None
    size: str = "1400x860"  # "": the window's own size
    waiting: str = ""  # shown while ``build`` runs

    def arguments(self, argv: Sequence[str] | None = None) -> argparse.Namespace:
        parser = argparse.ArgumentParser(description=self.description)
        parser.add_argument("--theme", choices=THEMES, default="dark")
        parser.add_argument("--size", default=self.size, help="window size WIDTHxHEIGHT")
        parser.add_argument("--screenshot", metavar="PNG", help="save the window and quit")
        if self.options is not None:
            self.options(parser)
        return parser.parse_args(list(argv) if argv is not None else sys.argv[1:])


def run_preview(preview: Preview, argv: Sequence[str] | None = None) -> int:
    """Run a window on its own: parse the options, build the data in a fresh temporary
    folder on a worker thread (a splash says so), show the window, save it with
    ``--screenshot``; on quitting, let background work finish while its callbacks' objects
    still exist."""
    args = preview.arguments(argv)
    app = preview_application(args.theme)
    folder = temporary_folder(f"scorer-{preview.name}-")
    splash = QLabel(preview.waiting or "Making throw-away data…")
    splash.setAlignment(Qt.AlignmentFlag.AlignCenter)
    splash.resize(520, 120)
    splash.show()
    windows: list[QWidget] = []  # kept alive until the event loop ends

    def show(built: Any) -> None:
        window = preview.window(built, args)
        if args.size:  # the size asked for, even of a window that would open maximised
            window.setWindowState(window.windowState() & ~Qt.WindowState.WindowMaximized)
            window.resize(*window_size(args.size))
        window.show()
        splash.close()
        windows.append(window)
        if args.screenshot:
            save_when_ready(window, args.screenshot, lambda: preview.ready(window, args))

    def failed(exc: BaseException) -> None:
        splash.setText(f"Could not make the throw-away data: {exc}")
        if args.screenshot:
            print(f"could not make the throw-away data: {exc}", file=sys.stderr)
            app.exit(1)

    run_in_background(preview.build, folder, args, done=show, failed=failed)
    code = app.exec()
    QThreadPool.globalInstance().waitForDone(10_000)
    return code
