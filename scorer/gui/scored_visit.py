"""The link between the scoring grid and the films of the visit it scores."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication

from scorer.gui.case_view import CaseView
from scorer.gui.scoring_grid import GridModel, ScoringGrid

#: Viewer keys a reader may type while the grid has the focus.
VIEWER_KEYS = frozenset(
    {
        Qt.Key.Key_W,
        Qt.Key.Key_I,
        Qt.Key.Key_F,
        Qt.Key.Key_L,
        Qt.Key.Key_M,
        Qt.Key.Key_H,
        Qt.Key.Key_R,
        Qt.Key.Key_Plus,
        Qt.Key.Key_Equal,
        Qt.Key.Key_Minus,
    }
)


class ScoredVisitLink(QObject):
    """Keeps the films and the scoring grid on the same visit.

    The films follow the grid: a foot area shows the feet, and the visit being scored is the
    highlighted pane, the one the viewer's tools act on and the one whose film the joint
    map's sides follow; a click on another visit's film moves the grid's cursor to that
    visit. Keys typed in the grid that the grid does not use (:data:`VIEWER_KEYS`) go to the
    film of the grid's visit, so a reader can window, zoom and measure without leaving the
    keyboard; ``S`` calls ``toggle_sync`` (synchronised zoom and pan on or off); ``J``, ``P``,
    ``[`` and ``]`` are joint view's (:mod:`scorer.gui.joint_view`), and the active area is the
    joint view's joint; a click on a joint of a film selects its area in the grid.

    ``model`` gives the scores of the case on screen (None while they load); the grid is
    :meth:`attach`-ed once the window has made it.
    """

    def __init__(
        self,
        case_view: CaseView,
        model: Callable[[], GridModel | None],
        toggle_sync: Callable[[], None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._case_view = case_view
        self._model = model
        self._toggle_sync = toggle_sync
        self.grid: ScoringGrid | None = None
        self._arriving = False  # a case's films are being put on screen
        case_view.caseShown.connect(lambda _code: self.update_map_sides())
        case_view.pageChanged.connect(lambda _title: self.update_map_sides())
        case_view.viewChanged.connect(self._film_view_changed)
        case_view.activeChanged.connect(self._pane_activated)
        case_view.joint_view.jointClicked.connect(self.select_joint)
        case_view.joint_view.placingChanged.connect(self._placing_changed)

    def attach(self, grid: ScoringGrid) -> None:
        """The grid the films follow, whose keys go to them."""
        self.grid = grid
        grid.currentChanged.connect(self.follow_grid)
        grid.table.installEventFilter(self)

    def follow_grid(self, area: Any, letter: str) -> None:
        """Show the grid's area (its region) and visit ``letter`` as the highlighted pane."""
        if self._case_view.case is not None and area is not None:
            self._case_view.show_region(area.region)
            self._case_view.set_active(letter)
        if area is not None:
            self._case_view.joint_view.set_area(area.region, area.joint)
        self.update_map_sides()

    def select_joint(self, region: str, joint: str) -> None:
        """A click on a joint of a film: the grid's cursor goes to that joint's area for the
        feature being scored (the joint's other feature when it has only that one)."""
        m = self._model()
        if m is None:
            return
        feature = m.current_area.feature
        areas = [d.area for d in m.areas if (d.area.region, d.area.joint) == (region, joint)]
        if not areas:
            return
        same = [a for a in areas if a.feature == feature]
        m.go_to_area((same or areas)[0])
        self._keyboard_to_grid()

    def _placing_changed(self, prompt: str) -> None:
        """A placement ended (placed, refused or cancelled): the keyboard scores again."""
        if not prompt:
            self._keyboard_to_grid()

    def _keyboard_to_grid(self) -> None:
        if self.grid is not None:
            self.grid.table.setFocus()

    def show_case(self, case: Any) -> None:
        """Put a case's films on screen and make them follow the grid: the films arriving
        (first pane active) do not move the grid's cursor, which stays where the reader is."""
        self._arriving = True
        try:
            self._case_view.show_case(case)
        finally:
            self._arriving = False
        m = self._model()
        if m is not None:
            self.follow_grid(m.current_area, m.current_letter)

    def _pane_activated(self, letter: str) -> None:
        """A click on another visit's film (or its tab) makes it the visit being scored: the
        grid's cursor goes to the same area in that visit, so the highlighted pane and the
        grid's column never disagree."""
        if self._arriving:
            return
        m = self._model()
        if m is not None and letter in m.letters and letter != m.current_letter:
            m.set_current(m.row, m.letters.index(letter))
        self.update_map_sides()

    def _film_view_changed(self, letter: str) -> None:
        m = self._model()
        if m is not None and letter == m.current_letter:
            self.update_map_sides()

    def update_map_sides(self) -> None:
        """Draw the joint map with the sides of the film being scored as it is shown now
        (Patient Orientation, then the reader's flip and rotation; the convention when the
        header is silent or no film is shown)."""
        if self.grid is None:
            return
        m = self._model()
        letter = m.current_letter if m is not None else ""
        panel = self._case_view.panels.get(letter)
        if panel is None or panel.model.image is None:
            self.grid.joint_map.set_right_on_left(True)
            return
        self.grid.joint_map.set_right_on_left(panel.model.patient_right_on_left())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        return bool(
            event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and self.grid is not None
            and watched is self.grid.table
            and self._forward_to_viewer(event)
        )

    def _forward_to_viewer(self, event: QKeyEvent) -> bool:
        """Send a viewer key typed in the grid to the film of the grid's visit (True: the
        grid does not get it); ``S`` switches the visits' synchronised zoom and pan."""
        if event.modifiers() & (
            Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
        ):
            return False
        if self.grid is not None and self.grid.reason_popup.isVisible():
            return False
        if event.key() == Qt.Key.Key_S:
            self._toggle_sync()
            return True
        joint_view = self._case_view.joint_view
        joint_keys: dict[int, Callable[[], None]] = {
            int(Qt.Key.Key_J): joint_view.toggle,
            int(Qt.Key.Key_P): joint_view.toggle_placement,
            int(Qt.Key.Key_BracketLeft): lambda: joint_view.step_field(-1),
            int(Qt.Key.Key_BracketRight): lambda: joint_view.step_field(1),
        }
        if event.key() in joint_keys:
            joint_keys[int(event.key())]()
            return True
        if event.key() not in VIEWER_KEYS:
            return False
        m = self._model()
        letter = m.current_letter if m is not None else ""
        viewer = self._case_view.panels.get(letter) or self._case_view.active_viewer()
        if viewer is None:
            return False
        QApplication.sendEvent(viewer, QKeyEvent(event))
        return True
