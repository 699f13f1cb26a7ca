"""What the reading window remembers between sessions, per reader, in the workstation's INI
file (:class:`~scorer.gui.settings.ReaderLayout`)."""

from __future__ import annotations

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import QApplication, QMainWindow, QSizePolicy, QSplitter, QToolBar

from scorer.gui.case_view import CaseView
from scorer.gui.settings import ReaderLayout
from scorer.gui.theme import apply_theme


class ReadingLayout:
    """The reading window's layout and options as its reader left them: its geometry, the
    panels' sizes, whether the worklist shows and synchronised zoom and pan (each reader's
    own); and the theme (the workstation's). A reader's first session opens maximised."""

    def __init__(
        self,
        settings: QSettings,
        window: QMainWindow,
        splitter: QSplitter,
        case_view: CaseView,
        worklist_action: QAction,
        light_action: QAction,
        username: str = "",
    ) -> None:
        self.settings = settings
        self.reader = ReaderLayout(settings, username)
        self._window = window
        self._splitter = splitter
        self._case_view = case_view
        self._worklist_action = worklist_action
        self._light_action = light_action
        self.panels_restored = False  # the panels' sizes are put back once shown
        self.first_session = False  # no geometry kept for this reader: opened maximised

    def restore(self) -> None:
        """Put back the window's geometry, panel sizes and options from the reader's last
        session; the first time, make the window fill the screen (maximised)."""
        geometry = self.reader.geometry
        self.first_session = geometry is None or not self._window.restoreGeometry(geometry)
        if self.first_session:
            self._maximise()
        state = self.reader.window_state
        if state is not None:
            self._window.restoreState(state)
        self.panels_restored = False
        self._worklist_action.setChecked(self.reader.worklist)
        self._case_view.set_sync(self.reader.sync)
        self._light_action.setChecked(self.settings.value("ui/theme", "dark") == "light")

    def _maximise(self) -> None:
        """Maximised when shown; its normal geometry is the screen's available area too, so
        that a display without a window manager (which maximises nothing) shows it whole."""
        screen = self._window.screen() or QGuiApplication.primaryScreen()
        if screen is not None:
            self._window.setGeometry(screen.availableGeometry())
        self._window.setWindowState(self._window.windowState() | Qt.WindowState.WindowMaximized)

    def restore_panels(self) -> None:
        """Put back the panels' sizes, once the window is first shown (sizes restored at the
        window's final size come back exactly)."""
        panels = self.reader.panels
        if panels is not None and self._splitter.restoreState(panels):
            self.panels_restored = True

    def save(self) -> None:
        """Remember the window's geometry, panel sizes and options for this reader."""
        self.reader.geometry = self._window.saveGeometry()
        self.reader.window_state = self._window.saveState()
        self.reader.panels = self._splitter.saveState()
        self.reader.worklist = self._worklist_action.isChecked()
        self.reader.sync = self._case_view.sync
        self.settings.sync()

    def set_light(self, on: bool) -> None:
        """The light theme (or the dark one), from now on and in later sessions."""
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, "light" if on else "dark")
        self.settings.setValue("ui/theme", "light" if on else "dark")


def join_image_tools(window: QMainWindow, case_view: CaseView) -> None:
    """Put the case view's image tools in the window's Case toolbar, after the case's own
    buttons, so the films get the height of a toolbar row. One toolbar, not two side by side:
    the case's labels change width as it is scored, and within one toolbar they reflow."""
    navigation = window.findChild(QToolBar, "caseNavigation")
    if navigation is None:
        return
    tools = case_view.toolbar
    tools.setMovable(False)
    tools.setContentsMargins(0, 0, 0, 0)
    # All the room the case's labels leave: its buttons change with the case's pages.
    tools.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
    navigation.addSeparator()
    navigation.addWidget(tools)
