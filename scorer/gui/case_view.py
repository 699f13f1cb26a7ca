"""The case on screen: every visit of a patient side by side, labelled A, B, C and nothing else.

:class:`CaseView` shows a :class:`~scorer.gui.prefetch.PreparedCase` with one
:class:`~scorer.gui.viewer.ImageViewer` per visit, in the order the facade gives (the reader's
random order for ``paired_blinded``, time order for ``chronological``, one visit for
``single``). The panes are arranged for the films' shape: in a row, a column or a grid,
whichever draws the smallest film largest at the view's size
(:func:`~scorer.gui.case_layout.best_arrangement`, again on each resize and region page), so
landscape films of both hands are stacked rather than squeezed into portrait panes. On a view
too small for any arrangement the visits become tabs A, B, C. Nothing from the data is shown
but the letters: no dates, visit labels, names, file names or codes.

Keys (besides the viewer's own, see :mod:`scorer.gui.viewer`): ``Tab`` / ``Shift+Tab`` switch
between the hands and feet films of every visit at once (a film of both hands serves both hand
regions); ``S`` synchronises zoom and pan across the visits; ``V`` shows the active visit
alone, filling the view, and ``V`` again brings the others back (anywhere in the window, the
scoring grid included); ``J`` switches joint view (every visit magnified on the joint being
scored, ``[`` / ``]`` the field, ``P`` places a film's joints: see :mod:`scorer.gui.joint_view`).
The toolbar's buttons act on the active visit (the one last clicked), outlined in blue.

Run it on its own: ``python -m scorer.gui.case_view [--screenshot PNG]``.
"""

from __future__ import annotations

import sys
import time
from argparse import Namespace
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QResizeEvent
from PySide6.QtWidgets import (
    QLabel,
    QMenu,
    QSplitter,
    QTabBar,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from scorer.gui.case_layout import (
    Arrangement,
    Page,
    best_arrangement,
    film_for_page,
    film_for_region,
    page_for_region,
    pages,
)
from scorer.gui.joint_view import JointView
from scorer.gui.prefetch import PreparedCase, PreparedImage
from scorer.gui.preview import Preview, run_preview
from scorer.gui.viewer import ImageViewer
from scorer.gui.viewer_state import ViewerModel
from scorer.imaging.render import ViewState

MIN_PANEL_WIDTH = 300  # logical pixels a visit's pane needs to be useful beside others
MIN_PANEL_HEIGHT = 200  # and above or below others
ONE_VISIT_KEY = "V"  # the active visit alone (free: see the key lists in the module docstring)
NO_FILM = "No film of this region"


@dataclass
class _SavedView:
    view: ViewState
    fitted: bool
    preset_index: int | None


@dataclass
class FilmClock:
    """Seconds each film (by image code) has been on screen, for the monitor's "time per
    image": every film shown counts while it is shown, so the two films of a paired case
    both count. Paused while the session is locked."""

    now: Callable[[], float] = time.monotonic
    seconds: dict[str, float] = field(default_factory=dict)
    _shown: tuple[str, ...] = ()
    _since: float | None = None
    paused: bool = False
    # Called after the films on screen change (the reading window records them then).
    changed: Callable[[], None] | None = None

    def _tick(self) -> None:
        t = self.now()
        if self._since is not None and not self.paused:
            for code in self._shown:
                self.seconds[code] = self.seconds.get(code, 0.0) + (t - self._since)
        self._since = t

    def show(self, codes: Sequence[str]) -> None:
        """The films on screen from now on (none: an empty list)."""
        self._tick()
        shown, self._shown = self._shown, tuple(dict.fromkeys(codes))
        if self.changed is not None and shown != self._shown:
            self.changed()

    def pause(self, on: bool) -> None:
        self._tick()
        self.paused = on

    def take(self) -> dict[str, float]:
        """The seconds counted since the last take, by image code (the clock goes on)."""
        self._tick()
        out = {code: round(sec, 1) for code, sec in self.seconds.items()}
        self.seconds.clear()
        return out


class VisitPanel(ImageViewer):
    """A visit's viewer with its letter in the top-left corner, large and dim."""

    def __init__(self, letter: str, parent: QWidget | None = None) -> None:
        super().__init__(ViewerModel(), parent)
        self.letter = letter
        self.letter_label = QLabel(letter, self)
        self.letter_label.setObjectName("visitLetter")
        self.letter_label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.letter_label.move(14, 6)
        self.letter_label.adjustSize()
        self.shown: PreparedImage | None = None

    MIN_SIZE = 160

    def minimumSizeHint(self) -> QSize:
        return QSize(self.MIN_SIZE, self.MIN_SIZE)


class VisitPanes(QSplitter):
    """The visits' panes in rows (a vertical splitter of horizontal ones), arranged as an
    :class:`~scorer.gui.case_layout.Arrangement`; every handle can be dragged."""

    HANDLE = 3

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Vertical, parent)
        self.setObjectName("visits")
        self.setChildrenCollapsible(False)
        self.setHandleWidth(self.HANDLE)
        # The layout may shrink the view below what every pane needs: it then shows tabs.
        self.setMinimumSize(VisitPanel.MIN_SIZE, VisitPanel.MIN_SIZE)
        self.arrangement = Arrangement(1, 1)
        self.rows: list[QSplitter] = []
        self._panels: list[VisitPanel] = []

    def place(self, panels: Sequence[VisitPanel], arrangement: Arrangement) -> None:
        """Put ``panels`` into ``arrangement``'s rows, in order (equal sizes when it changes)."""
        panels = list(panels)
        if panels == self._panels and arrangement == self.arrangement:
            return
        self._panels, self.arrangement = panels, arrangement
        columns = max(1, arrangement.columns)
        chunks = [panels[i : i + columns] for i in range(0, len(panels), columns)]
        while len(self.rows) < len(chunks):
            row = QSplitter(Qt.Orientation.Horizontal, self)
            row.setObjectName("visitRow")
            row.setChildrenCollapsible(False)
            row.setHandleWidth(self.HANDLE)
            row.setMinimumSize(VisitPanel.MIN_SIZE, VisitPanel.MIN_SIZE)
            self.addWidget(row)
            self.rows.append(row)
        for row, chunk in zip(self.rows, chunks, strict=False):
            for index, panel in enumerate(chunk):
                row.insertWidget(index, panel)
            row.setSizes([1000] * len(chunk))
        for row in self.rows[len(chunks) :]:
            row.hide()
            row.setParent(None)
            row.deleteLater()
        self.rows = self.rows[: len(chunks)]
        self.setSizes([1000] * len(self.rows))

    def show_panels(self, visible: Sequence[bool]) -> None:
        """Show the panes marked True (in placing order), and only the rows holding one."""
        shown = dict(zip(map(id, self._panels), visible, strict=True))
        for panel in self._panels:
            panel.setVisible(shown[id(panel)])
        for row in self.rows:
            row.setVisible(any(shown.get(id(row.widget(i)), False) for i in range(row.count())))


class CaseView(QWidget):
    """A case's visits arranged for the films' shape (or as tabs), with the viewer tools in a
    toolbar.

    Signals: ``caseShown(code)`` once a case's films are on screen, ``pageChanged(title)``,
    ``viewChanged(letter)`` after a visit's zoom, pan, rotation or flip, ``activeChanged(letter)``
    when another visit becomes the active one (outlined).
    """

    caseShown = Signal(str)
    pageChanged = Signal(str)
    viewChanged = Signal(str)
    activeChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.panels: dict[str, VisitPanel] = {}
        self.case: PreparedCase | None = None
        self.page: Page | None = None
        self._pages: list[Page] = []
        self._active: str | None = None
        self._syncing = False
        self._saved: dict[tuple[str, str], _SavedView] = {}
        self._tabs_forced = False
        self._forced_arrangement: Arrangement | None = None
        self.one_visit = False  # the active visit alone fills the view (``V``)
        self.film_clock = FilmClock()

        self.toolbar = QToolBar("Image tools", self)
        self.toolbar.setObjectName("caseTools")
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.toolbar.setIconSize(QSize(16, 16))
        self._page_group = QActionGroup(self)
        self._page_group.setExclusive(True)
        self._page_actions: list[QAction] = []
        self._page_separator = self.toolbar.addSeparator()
        self._tool_actions = self._make_tools()
        self.joint_view = JointView(self, self)
        self.joint_view.add_tools(self.toolbar, self, self._view_menu)
        self.pageChanged.connect(lambda _title: self.joint_view.apply())
        self.joint_view.toggled.connect(self._joint_view_toggled)

        self.tab_bar = QTabBar(self)
        self.tab_bar.setObjectName("visitTabs")
        self.tab_bar.setExpanding(False)
        self.tab_bar.setDrawBase(False)
        self.tab_bar.currentChanged.connect(self._tab_selected)
        self.tab_bar.hide()

        self.splitter = VisitPanes(self)

        self.empty = QLabel("No case open", self)
        self.empty.setObjectName("hint")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.tab_bar)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.empty, 1)
        self.splitter.hide()

        for text, keys, slot in (
            ("Next region", "Tab", lambda: self.step_page(1)),
            ("Previous region", "Shift+Tab", lambda: self.step_page(-1)),
        ):
            action = QAction(text, self)
            action.setShortcut(QKeySequence(keys))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.triggered.connect(slot)
            self.addAction(action)

    # ------------------------------------------------------------------ toolbar

    def _make_tools(self) -> dict[str, QAction]:
        """The toolbar: region pages, then window, invert, loupe, ruler, a View menu (fit,
        1:1, rotate, flip, reset) and sync. Keys are the viewer's (shown in tooltips)."""

        def on_active(method: str, *args: int) -> None:
            viewer = self.active_viewer()
            if viewer is not None:
                getattr(viewer.model, method)(*args)

        tools: dict[str, QAction] = {}
        window = self._menu_button("Window", "Window presets (W cycles; right-drag adjusts)")
        window.menu().aboutToShow.connect(lambda: self._fill_window_menu(window.menu()))
        tools["window"] = self.toolbar.addWidget(window)
        for key, text, tip, method in (
            ("invert", "Invert", "Invert black and white (I)", "toggle_invert"),
            (
                "loupe",
                "Loupe",
                "Magnifier at the cursor (L; Shift+wheel: 2× to 4×)",
                "toggle_loupe",
            ),
        ):
            action = QAction(text, self)
            action.setToolTip(tip)
            action.triggered.connect(lambda _=False, m=method: on_active(m))
            self.toolbar.addAction(action)
            tools[key] = action
        ruler = QAction("Ruler", self, checkable=True)
        ruler.setToolTip("Measure in mm: drag with the left button (M)")
        ruler.triggered.connect(self._toggle_ruler)
        self.toolbar.addAction(ruler)
        tools["ruler"] = ruler
        view = self._menu_button("View", "Fit, 1:1, rotate, flip, reset and one visit")
        for key, text, slot in (
            ("fit", "Fit\tF", lambda: on_active("fit")),
            ("one", "1:1\t1", lambda: on_active("one_to_one")),
            ("rotate", "Rotate clockwise\tR", lambda: on_active("rotate", 1)),
            ("rotate_back", "Rotate counter-clockwise\tShift+R", lambda: on_active("rotate", -1)),
            ("flip", "Flip left-right\tH", lambda: on_active("flip")),
            ("reset", "Reset\tEsc", self._reset_active),
        ):
            action = QAction(text, self)
            action.triggered.connect(lambda _=False, slot=slot: slot())
            view.menu().addAction(action)
            tools[key] = action
        one = QAction("One visit", self, checkable=True)
        one.setToolTip(f"The active visit alone, filling the view ({ONE_VISIT_KEY})")
        one.setShortcut(QKeySequence(ONE_VISIT_KEY))
        # Anywhere in the window: the reader's keyboard is usually in the scoring grid.
        one.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        one.triggered.connect(self.set_one_visit)
        view.menu().addSeparator()
        view.menu().addAction(one)  # in the menu: the toolbar has no room left on a laptop
        self.addAction(one)
        tools["one_visit"] = one
        tools["view"] = self.toolbar.addWidget(view)
        self._view_menu = view.menu()
        self.toolbar.addSeparator()
        sync = QAction("Sync", self, checkable=True)
        sync.triggered.connect(self.set_sync)
        sync.setToolTip("Zoom and pan all visits together (S)")
        sync.setShortcut(QKeySequence("S"))
        sync.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.toolbar.addAction(sync)
        self.addAction(sync)  # the shortcut works wherever the focus is in the case view
        tools["sync"] = sync
        return tools

    def _menu_button(self, text: str, tip: str) -> QToolButton:
        button = QToolButton(self.toolbar)
        button.setText(text)
        button.setToolTip(tip)
        button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        button.setMenu(QMenu(button))
        return button

    def _fill_window_menu(self, menu: QMenu) -> None:
        viewer = self.active_viewer()
        if viewer is None:
            menu.clear()
            menu.addAction("No image").setEnabled(False)
        else:
            viewer.fill_preset_menu(menu)

    def _toggle_ruler(self, on: bool) -> None:
        viewer = self.active_viewer()
        if viewer is not None:
            viewer.set_ruler_mode(on)

    def _reset_active(self) -> None:
        viewer = self.active_viewer()
        if viewer is not None:
            viewer.reset()

    # ------------------------------------------------------------------ sync

    @property
    def sync(self) -> bool:
        return self._tool_actions["sync"].isChecked()

    def set_sync(self, on: bool) -> None:
        """Zoom and pan every visit together (each keeps its own window and orientation)."""
        action = self._tool_actions["sync"]
        if action.isChecked() != on:
            action.setChecked(on)
        if on:
            active = self.active_viewer()
            if active is not None:
                self._view_changed(active.letter)

    def _panel_view_changed(self, letter: str) -> None:
        self._view_changed(letter)
        self.viewChanged.emit(letter)

    def _view_changed(self, letter: str) -> None:
        # In joint view each pane is centred on its own film's joint: nothing to copy.
        if not self.sync or self._syncing or letter not in self.panels or self.joint_view.on:
            return
        geometry = self.panels[letter].model.relative_geometry()
        self._syncing = True
        try:
            for other, panel in self.panels.items():
                if other != letter and panel.model.image is not None:
                    panel.model.set_relative_geometry(geometry)
        finally:
            self._syncing = False

    def _joint_view_toggled(self, on: bool) -> None:
        if not on:
            self._saved.clear()  # leaving joint view: no page comes back magnified on a joint

    # ------------------------------------------------------------------ visits

    def active_viewer(self) -> VisitPanel | None:
        if self._active in self.panels:
            return self.panels[self._active]
        return next(iter(self.panels.values()), None)

    def set_active(self, letter: str) -> None:
        """Make ``letter``'s viewer the one the toolbar acts on."""
        if letter not in self.panels:
            return
        changed = letter != self._active
        self._active = letter
        for other, panel in self.panels.items():
            panel.highlight = other == letter and len(self.panels) > 1
            panel.update()
        viewer = self.panels[letter]
        self._tool_actions["ruler"].setChecked(viewer.ruler_mode)
        if self.tabs_mode and self.tab_bar.currentIndex() != list(self.panels).index(letter):
            self.tab_bar.setCurrentIndex(list(self.panels).index(letter))
        if self.one_visit and changed:
            self._update_mode()  # the visit shown alone is the active one
        if changed:
            self.activeChanged.emit(letter)

    def _set_letters(self, letters: Sequence[str]) -> None:
        if list(self.panels) == list(letters):
            return
        for panel in self.panels.values():
            panel.hide()
            panel.setParent(None)
            panel.deleteLater()
        self.panels = {}
        while self.tab_bar.count():
            self.tab_bar.removeTab(0)
        for letter in letters:
            panel = VisitPanel(letter)
            panel.viewChanged.connect(lambda letter=letter: self._panel_view_changed(letter))
            panel.activated.connect(lambda letter=letter: self.set_active(letter))
            panel.rulerModeChanged.connect(
                lambda on, letter=letter: self._ruler_mode_changed(letter, on)
            )
            self.panels[letter] = panel
            self.tab_bar.addTab(letter)
        self._active = letters[0] if letters else None
        self.splitter.place(list(self.panels.values()), self._arrangement_for_view())
        self._update_mode()

    def _ruler_mode_changed(self, letter: str, on: bool) -> None:
        if letter == self._active:
            self._tool_actions["ruler"].setChecked(on)

    # ------------------------------------------------------------------ arrangement and tabs

    @property
    def tabs_mode(self) -> bool:
        """Whether the visits show as tabs (the view is too small for any arrangement)."""
        return self.tab_bar.isVisibleTo(self)

    @property
    def arrangement(self) -> Arrangement:
        """How the visits' panes are arranged now (rows and columns)."""
        return self.splitter.arrangement

    def force_tabs(self, on: bool) -> None:
        """Show tabs whatever the size (False: tabs only when the view is small)."""
        self._tabs_forced = on
        self._update_mode()

    def force_arrangement(self, arrangement: Arrangement | None) -> None:
        """Arrange the panes so whatever the films and size (None: the best for them again)."""
        self._forced_arrangement = arrangement
        self._update_mode()

    def set_one_visit(self, on: bool) -> None:
        """Show the active visit alone, filling the view (False: every visit again); the
        visit keeps its letter, and moving to another visit shows that one alone."""
        self.one_visit = bool(on)
        action = self._tool_actions["one_visit"]
        if action.isChecked() != self.one_visit:
            action.setChecked(self.one_visit)
        self._update_mode()

    def toggle_one_visit(self) -> None:
        self.set_one_visit(not self.one_visit)

    def _films_shown(self) -> list[tuple[float, float]]:
        """The width and height of each visit's film on screen (as stored, unrotated)."""
        sizes = []
        for panel in self.panels.values():
            image = panel.model.image
            if image is not None:
                rows, cols = image.shape[:2]
                sizes.append((float(cols), float(rows)))
        return sizes

    def _panes_area(self) -> tuple[int, int]:
        """The width and height the panes share: the view below its toolbar (unless a
        window has taken the toolbar into its own toolbar row)."""
        tools = self.toolbar.sizeHint().height() if self.toolbar.parent() is self else 0
        return self.width(), max(1, self.height() - tools)

    def _arrangement_for_view(self) -> Arrangement:
        if self._forced_arrangement is not None:
            return self._forced_arrangement
        width, height = self._panes_area()
        return best_arrangement(
            len(self.panels),
            width,
            height,
            self._films_shown(),
            VisitPanes.HANDLE,
            (MIN_PANEL_WIDTH, MIN_PANEL_HEIGHT),
        )

    def _too_small_for(self, arrangement: Arrangement) -> bool:
        width, height = self._panes_area()
        handle = VisitPanes.HANDLE
        pane_w = (width - handle * (arrangement.columns - 1)) / arrangement.columns
        pane_h = (height - handle * (arrangement.rows - 1)) / arrangement.rows
        return pane_w < MIN_PANEL_WIDTH or pane_h < MIN_PANEL_HEIGHT

    def _update_mode(self) -> None:
        count = len(self.panels)
        arrangement = self._arrangement_for_view()
        alone = self.one_visit and count > 1
        tabs = count > 1 and not alone and (self._tabs_forced or self._too_small_for(arrangement))
        self.tab_bar.setVisible(tabs)
        self.splitter.place(list(self.panels.values()), arrangement)
        current = list(self.panels).index(self._active) if self._active in self.panels else 0
        self.splitter.show_panels(
            [not (tabs or alone) or index == current for index in range(count)]
        )
        if tabs and self.tab_bar.currentIndex() != current:
            self.tab_bar.setCurrentIndex(current)

    def _tab_selected(self, index: int) -> None:
        letters = list(self.panels)
        if 0 <= index < len(letters):
            self.set_active(letters[index])
            self._update_mode()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._update_mode()

    # ------------------------------------------------------------------ showing a case

    def show_loading(self, text: str = "Preparing the case…") -> None:
        """Say the next case is on its way (the previous one is taken off the screen)."""
        self._save_views()
        self.case = None
        self.film_clock.show(())
        for panel in self.panels.values():
            panel.placeholder = text
            panel.shown = None
            panel.set_image(None)
        if not self.panels:
            self.empty.setText(text)

    def clear(self, text: str = "No case open") -> None:
        """Show no case."""
        self.case = None
        self.film_clock.show(())
        self._saved.clear()
        self._set_letters([])
        self._set_pages([])
        self.splitter.hide()
        self.empty.setText(text)
        self.empty.show()

    def show_case(self, case: PreparedCase) -> None:
        """Put a prepared case on screen: one viewer per visit, same region page for all."""
        same_case = self.case is not None and self.case.code == case.code
        if not same_case:
            self._saved.clear()
        self.case = case
        self._set_letters(sorted(case.visits))
        keep = self.page
        self._set_pages(pages(case.visits))
        page = keep if keep in self._pages else self._first_page_of(keep)
        self.empty.hide()
        self.splitter.show()
        self._show_page(page)
        if self._active is not None:
            self.panels[self._active].setFocus(Qt.FocusReason.OtherFocusReason)
            self.set_active(self._active)
        self.caseShown.emit(case.code)

    def _first_page_of(self, wanted: Page | None) -> Page | None:
        if wanted is not None:
            for page in self._pages:
                if page.group == wanted.group:
                    return page
        return self._pages[0] if self._pages else None

    def _set_pages(self, new_pages: list[Page]) -> None:
        for action in self._page_actions:
            self._page_group.removeAction(action)
            self.toolbar.removeAction(action)
            action.deleteLater()
        self._page_actions = []
        self._pages = new_pages
        before = self._page_separator
        for page in new_pages:
            action = QAction(page.title, self)
            action.setCheckable(True)
            action.setToolTip(f"Show every visit's {page.title.lower()} film (Tab switches)")
            action.triggered.connect(lambda _=False, page=page: self.show_page(page))
            self._page_group.addAction(action)
            self.toolbar.insertAction(before, action)
            self._page_actions.append(action)
        self._page_separator.setVisible(bool(new_pages))

    def show_page(self, page: Page) -> None:
        """Show every visit's film of ``page`` (hands, feet)."""
        if page in self._pages:
            self._save_views()
            self._show_page(page)

    def step_page(self, step: int = 1) -> None:
        """The next (or previous) region page: hands and feet are one keystroke apart."""
        if not self._pages:
            return
        index = self._pages.index(self.page) if self.page in self._pages else -step
        self.show_page(self._pages[(index + step) % len(self._pages)])

    def show_region(self, region: str) -> bool:
        """Show the page with each visit's film covering ``region`` (LH, RH, LF, RF)."""
        if self.case is None:
            return False
        page = page_for_region(self.case.visits, region)
        if page is None:
            return False
        if page != self.page:
            self.show_page(page)
        return True

    def film_for_region(self, letter: str, region: str) -> PreparedImage | None:
        """The film of visit ``letter`` that covers ``region`` (a both-hands film for LH)."""
        if self.case is None or letter not in self.case.visits:
            return None
        return film_for_region(self.case.visits[letter], region)

    def _show_page(self, page: Page | None) -> None:
        self.page = page
        for action, candidate in zip(self._page_actions, self._pages, strict=True):
            action.setChecked(candidate == page)
        assert self.case is not None
        for letter, panel in self.panels.items():
            film = film_for_page(self.case.visits[letter], page) if page else None
            panel.shown = film
            if film is None:
                panel.placeholder = NO_FILM
                panel.set_image(None)
            elif film.radiograph is None:
                panel.placeholder = "This film cannot be shown"
                panel.setToolTip(film.error)
                panel.set_image(None)
            else:
                panel.placeholder = ""
                panel.setToolTip("")
                panel.set_image(film.radiograph)
                self._restore_view(letter, panel)
        self.film_clock.show(self.films_on_screen())
        self._update_mode()  # hands and feet films may want another arrangement
        if self.sync and self._active in self.panels:
            self._view_changed(self._active)
        self.pageChanged.emit(page.title if page else "")

    def films_on_screen(self) -> list[str]:
        """The names (in the case) of the films shown now, in the visits' order."""
        return [p.shown.image for p in self.panels.values() if p.shown and p.shown.radiograph]

    def _save_views(self) -> None:
        for letter, panel in self.panels.items():
            if panel.shown is not None and panel.model.image is not None:
                model = panel.model
                self._saved[(letter, panel.shown.image)] = _SavedView(
                    model.view, model.fitted, model.preset_index
                )

    def _restore_view(self, letter: str, panel: VisitPanel) -> None:
        saved = self._saved.get((letter, panel.shown.image)) if panel.shown else None
        if saved is None:
            return
        model = panel.model
        model.view = saved.view
        model.preset_index = saved.preset_index
        if saved.fitted:
            model.fit()
        else:
            model.fitted = False
        panel.update()

    def all_text(self) -> list[str]:
        """Every text a reader can see in this view (labels, buttons, tabs, tooltips)."""
        texts: list[str] = []
        for widget in [self, *self.findChildren(QWidget)]:
            texts += [widget.toolTip(), widget.windowTitle(), widget.statusTip()]
            for attribute in ("text", "placeholderText"):
                value = getattr(widget, attribute, None)
                if callable(value):
                    result = value()
                    if isinstance(result, str):
                        texts.append(result)
        for action in self.findChildren(QAction):
            texts += [action.text(), action.toolTip(), action.statusTip()]
        texts += [self.tab_bar.tabText(i) for i in range(self.tab_bar.count())]
        for panel in self.panels.values():
            texts += [panel.placeholder, panel.message, panel.model.readout()]
            texts += [preset.name for preset in panel.model.presets]
        texts += self.joint_view.notices()
        return [t for t in texts if t]


def _preview_build(folder: Path, _args: Namespace) -> tuple[dict[str, Any], Path]:
    """Synthetic films of a paired case (three visits), as the workspace would give them."""
    from scorer.gui.sample_case import sample_case_images, write_sample_films

    films = write_sample_films(folder / "films", visits=3)
    return sample_case_images(films), folder / "data" / "cache"


def _preview_window(built: tuple[dict[str, Any], Path], _args: Namespace) -> CaseView:
    from scorer.gui.prefetch import CasePreparer

    images, cache = built
    view = CaseView()
    view.setWindowTitle("scorer — case view")
    view.show_loading("Preparing the case…")
    preparer = CasePreparer(lambda _code: images, cache_dir=cache, parent=view)
    preparer.request("PREVIEW", view.show_case)
    return view


PREVIEW = Preview(
    "case-view",
    "Show a synthetic paired case (3 visits) in the case view.",
    _preview_window,
    build=_preview_build,
    ready=lambda view, _args: view.case is not None,
    waiting="Making synthetic films…",
)


def _main(argv: Sequence[str] | None = None) -> int:
    return run_preview(PREVIEW, argv)


if __name__ == "__main__":
    sys.exit(_main())
