"""The application's look: the dark reading-room theme by default, light on request."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from scorer.core.methods import resources_dir

THEMES = ("dark", "light")


def apply_theme(app: QApplication, name: str = "dark") -> None:
    """Set the palette and style sheet of ``name`` (dark or light) on the application."""
    if name not in THEMES:
        raise ValueError(f"unknown theme {name!r} ({', '.join(THEMES)})")
    app.setStyle("Fusion")
    pal = QPalette()
    if name == "dark":
        colours = {
            QPalette.ColorRole.Window: "#16181b",
            QPalette.ColorRole.WindowText: "#d5d8dc",
            QPalette.ColorRole.Base: "#1b1e22",
            QPalette.ColorRole.AlternateBase: "#202328",
            QPalette.ColorRole.Text: "#d5d8dc",
            QPalette.ColorRole.Button: "#2a2e34",
            QPalette.ColorRole.ButtonText: "#d5d8dc",
            QPalette.ColorRole.Highlight: "#3d5a80",
            QPalette.ColorRole.HighlightedText: "#ffffff",
            QPalette.ColorRole.ToolTipBase: "#2a2e34",
            QPalette.ColorRole.ToolTipText: "#e8eaed",
        }
        for role, colour in colours.items():
            pal.setColor(role, QColor(colour))
    app.setPalette(pal)
    qss = resources_dir() / "style" / f"{name}.qss"
    app.setStyleSheet(qss.read_text(encoding="utf-8") if qss.exists() else "")
