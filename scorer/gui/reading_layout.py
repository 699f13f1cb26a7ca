"""What the reading window remembers between sessions, in the workstation's INI file."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QMainWindow, QSplitter

from scorer.gui.case_view import CaseView
from scorer.gui.theme import apply_theme


def _flag(value: object) -> bool:
    """A boolean from QSettings (INI files give back the strings "true" and "false")."""
    if isinstance(value, str):
        return value.lower() in ("true", "1", "yes")
    return bool(value)


class ReadingLayout:
    """The reading window's layout and options as the reader left them: its geometry, the
    panels' sizes, whether the worklist shows, synchronised zoom and pan, and the theme."""

    def __init__(
        self,
        settings: QSettings,
        window: QMainWindow,
        splitter: QSplitter,
        case_view: CaseView,
        worklist_action: QAction,
        light_action: QAction,
    ) -> None:
        self.settings = settings
        self._window = window
        self._splitter = splitter
        self._case_view = case_view
        self._worklist_action = worklist_action
        self._light_action = light_action
        self.panels_restored = False  # the panels' sizes are put back once shown

    def restore(self) -> None:
        """Put back the window's geometry, panel sizes and options from the last session."""
        geometry = self.settings.value("reading/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self._window.restoreGeometry(geometry)
        else:
            self._window.resize(1500, 900)
        state = self.settings.value("reading/state")
        if isinstance(state, QByteArray):
            self._window.restoreState(state)
        self.panels_restored = False
        self._worklist_action.setChecked(_flag(self.settings.value("reading/worklist", True)))
        self._case_view.set_sync(_flag(self.settings.value("case/sync", False)))
        self._light_action.setChecked(self.settings.value("ui/theme", "dark") == "light")

    def restore_panels(self) -> None:
        """Put back the panels' sizes, once the window is first shown (sizes restored at the
        window's final size come back exactly)."""
        splitter = self.settings.value("reading/splitter")
        if isinstance(splitter, QByteArray) and self._splitter.restoreState(splitter):
            self.panels_restored = True

    def save(self) -> None:
        """Remember the window's geometry, panel sizes and options."""
        self.settings.setValue("reading/geometry", self._window.saveGeometry())
        self.settings.setValue("reading/state", self._window.saveState())
        self.settings.setValue("reading/splitter", self._splitter.saveState())
        self.settings.setValue("reading/worklist", self._worklist_action.isChecked())
        self.settings.setValue("case/sync", self._case_view.sync)
        self.settings.sync()

    def set_light(self, on: bool) -> None:
        """The light theme (or the dark one), from now on and in later sessions."""
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, "light" if on else "dark")
        self.settings.setValue("ui/theme", "light" if on else "dark")
