"""The reading window's side panels: the titled frame each sits in, and the Scores stack."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QStackedWidget, QVBoxLayout, QWidget


class TitledPanel(QFrame):
    """A side panel: a heading over its body (object name: the title, lower case, with
    ``Panel``, e.g. ``worklistPanel``)."""

    def __init__(self, title: str, body: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"{title.lower()}Panel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        heading = QLabel(title, self)
        heading.setObjectName("panelTitle")
        layout.addWidget(heading)
        layout.addWidget(body, 1)
        self.setMinimumWidth(150)

    def side_margins(self) -> int:
        """The width the panel adds to its body's, left and right."""
        layout = self.layout()
        return layout.contentsMargins().left() + layout.contentsMargins().right() if layout else 0


class ScoresStack(QStackedWidget):
    """The Scores panel's body: a hint (what to do, or that the scores are loading), or the
    scoring grid once the window has made it (:meth:`show_widget`)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("scoringStack")
        self.hint = QLabel("Open a case from the worklist.", self)
        self.hint.setObjectName("hint")
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.addWidget(self.hint)

    def show_hint(self, text: str) -> None:
        self.hint.setText(text)
        self.setCurrentWidget(self.hint)

    def show_widget(self, widget: QWidget) -> None:
        """Show ``widget`` (the grid), adding it the first time."""
        if self.indexOf(widget) < 0:
            self.addWidget(widget)
        self.setCurrentWidget(widget)
