"""The grade atlas: every grade of the active area's feature, drawn, worded and cited.

:class:`GradeAtlas` is a resizable window beside the reading window. It follows the scoring
grid's current cell (method, region, joint, feature) and shows, for each grade of that
feature (svh erosion 0-5, per side in the feet; svh narrowing 0-4; Larsen 0-5), a drawing of
the same joint at that grade, the grade's wording and the paper, page or table it is cited
from (``sources`` in the method file, ``resources/methods``), with the method's "to be
checked" note where its wording is not yet confirmed. ``G`` opens and closes it
(:func:`attach_grade_atlas` puts the key and the View menu entry on the reading window).

The drawings are rendered by :func:`scorer.imaging.grade_drawings.grade_drawings` on a worker
thread the first time an area is shown, and kept for the session: opening the atlas or
moving the grid never waits for them. They are synthetic films, not reference films, and
show nothing of the case being read.

Run it on its own: ``python -m scorer.gui.grade_atlas [--method svh] [--area "LH MCP2 ERO"]``.
"""

from __future__ import annotations

import sys
from argparse import ArgumentParser, Namespace
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QImage, QKeyEvent, QKeySequence, QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from scorer.core.methods import Area, AreaDef, Method, get_method
from scorer.gui.preview import Preview, run_preview
from scorer.gui.tasks import KeptTasks
from scorer.imaging.grade_drawings import grade_drawings

ATLAS_KEY = "G"
CARD_MIN_WIDTH = 240  # a drawing narrower than this is hard to read
CHECK_NOTE = "Wording to be checked against the method's paper."

#: Makes the drawings of an area at the grades given (the real renderer unless a test
#: watches it).
DrawGrades = Callable[[Area, Iterable[int]], Mapping[int, NDArray[np.uint8]]]


def _qimage(pixels: NDArray[np.uint8]) -> QImage:
    rows = np.ascontiguousarray(pixels)
    image = QImage(
        rows.data, rows.shape[1], rows.shape[0], rows.strides[0], QImage.Format.Format_Grayscale8
    )
    return image.copy()  # own the pixels: the array goes away


class GradeCard(QFrame):
    """One grade: its drawing, its number and wording, and where the wording is from."""

    def __init__(self, grade: int, wording: str, source: str, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName(f"gradeCard{grade}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.grade = grade
        self.image: QImage | None = None
        self.picture = QLabel("drawing…", self)
        self.picture.setObjectName("gradeDrawing")
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setMinimumSize(120, 120)
        self.wording = QLabel(f"<b>{grade}</b> — {wording}", self)
        self.wording.setObjectName("gradeWording")
        self.wording.setWordWrap(True)
        self.source = QLabel(source, self)
        self.source.setObjectName("gradeSource")
        self.source.setWordWrap(True)
        self.source.setProperty("hint", True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(3)
        layout.addWidget(self.picture, 1)
        layout.addWidget(self.wording)
        layout.addWidget(self.source)

    def set_image(self, image: QImage | None) -> None:
        self.image = image
        if image is None:
            self.picture.setText("no drawing for this area")
        self.fit(self.picture.width())

    def fit(self, width: int) -> None:
        """Scale the drawing to ``width`` (square), keeping it sharp."""
        if self.image is None:
            return
        side = max(120, width)
        pm = QPixmap.fromImage(self.image).scaled(
            side,
            side,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
        self.picture.setPixmap(pm)


DrawingKey = tuple[Area, tuple[int, ...]]
"""An area and the grades drawn of it."""


class GradeAtlas(QWidget):
    """Every grade of the active area's feature, drawn, worded and cited (see the module).

    :meth:`show_area` follows the grid; the drawings of a new area are made on a worker
    thread while the wording shows at once. Signal ``drawingsShown(area)`` when an area's
    drawings are on screen.
    """

    drawingsShown = Signal(object)

    def __init__(self, parent: QWidget | None = None, draw: DrawGrades | None = None) -> None:
        # A tool window beside the reading window; on its own, a window of its own (the
        # application ends when its last window that is not a tool window closes).
        super().__init__(parent, Qt.WindowType.Tool if parent else Qt.WindowType.Window)
        self.setObjectName("gradeAtlas")
        self.setWindowTitle("scorer — grade atlas")
        # The reader keeps typing grades in the grid while the atlas is open.
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
        self._draw: DrawGrades = draw or (lambda area, grades: grade_drawings(area, grades))
        self.tasks = KeptTasks()
        self.drawings: dict[DrawingKey, dict[int, QImage]] = {}
        self._asked: set[DrawingKey] = set()
        self.method: Method | None = None
        self.area: AreaDef | None = None
        self._shown_key: tuple[str, Area] | None = None
        self.cards: dict[int, GradeCard] = {}
        self.toggle_action: QAction | None = None  # the window's key, once attached

        self.title = QLabel("Move to an area in the grid.", self)
        self.title.setObjectName("panelTitle")
        self.title.setWordWrap(True)
        self.subtitle = QLabel("", self)
        self.subtitle.setObjectName("hint")
        self.subtitle.setWordWrap(True)
        self.note = QLabel(CHECK_NOTE, self)
        self.note.setObjectName("checkNote")
        self.note.hide()
        self.body = QWidget(self)
        self.grid = QGridLayout(self.body)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(6)
        self.scroller = QScrollArea(self)
        self.scroller.setWidget(self.body)
        self.scroller.setWidgetResizable(True)
        self.scroller.setFrameShape(QFrame.Shape.NoFrame)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        layout.addWidget(self.note)
        layout.addWidget(self.scroller, 1)
        self.resize(3 * CARD_MIN_WIDTH + 60, 2 * CARD_MIN_WIDTH + 260)

    # ------------------------------------------------------------------ following the grid

    def show_area(self, method: Method, area: AreaDef) -> None:
        """Follow the grid to ``area`` of ``method`` (built now if on screen, else when shown)."""
        self.method, self.area = method, area
        if self.isVisible():
            self._build()

    def toggle(self) -> None:
        """Open the atlas (on the area last followed), or close it."""
        self.setVisible(not self.isVisible())

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self._build()

    def _build(self) -> None:
        if self.method is None or self.area is None:
            return
        method, adef = self.method, self.area
        key = (method.id, adef.area)
        if self._shown_key == key:
            return
        self._shown_key = key
        f = method.features[adef.feature]
        self.title.setText(f"{adef.area}: {adef.label} — {f.name}, grades {f.min}–{f.max}")
        parts = [method.name]
        if adef.sides:
            parts.append(
                f"each side ({' and '.join(adef.sides)}) graded {f.min}–{f.max}, the area "
                "score is their sum; each drawing shows both sides at the grade"
            )
        parts.append("drawings: a synthetic joint, not a reference film")
        self.subtitle.setText("; ".join(parts))
        self.note.setVisible(f.check)
        self._clear()
        for grade, wording in f.grades.items():
            source = f.sources.get(grade) or method.citation
            if f.check:
                source = f"{source} ({CHECK_NOTE.lower().rstrip('.')})"
            self.cards[grade] = GradeCard(grade, wording, source, self.body)
        self._arrange()
        self._fill(adef.area, list(f.grades))

    def _clear(self) -> None:
        for card in self.cards.values():
            self.grid.removeWidget(card)
            card.hide()
            card.deleteLater()
        self.cards = {}

    def _fill(self, area: Area, grades: list[int]) -> None:
        """Put the drawings on the cards, making them on a worker the first time. Kept by
        area and grades: two methods (svh and sens) share areas but not grades."""
        key = (area, tuple(grades))
        if key in self.drawings:
            self._show_drawings(key)
            return
        if key in self._asked:
            return
        self._asked.add(key)
        self.tasks.run(
            self._draw,
            area,
            grades,
            done=lambda result: self._drawn(key, result),
            failed=lambda exc: self._not_drawn(key, exc),
        )

    def _drawn(self, key: DrawingKey, result: Mapping[int, NDArray[np.uint8]]) -> None:
        self.drawings[key] = {g: _qimage(p) for g, p in result.items()}
        self._asked.discard(key)
        if self.area is not None and self.area.area == key[0]:
            self._show_drawings(key)

    def _not_drawn(self, key: DrawingKey, exc: BaseException) -> None:
        self._asked.discard(key)  # not kept: the next visit to the area tries again
        if self.area is not None and self.area.area == key[0]:
            for card in self.cards.values():
                card.picture.setText(f"no drawing: {exc}")

    def _show_drawings(self, key: DrawingKey) -> None:
        area = key[0]
        made = self.drawings.get(key, {})
        for grade, card in self.cards.items():
            card.set_image(made.get(grade))
        self.drawingsShown.emit(area)

    # ------------------------------------------------------------------ layout

    def columns(self) -> int:
        """Cards per row: as many as fit at a readable width (at least one)."""
        return max(1, (self.scroller.viewport().width() - 6) // (CARD_MIN_WIDTH + 6))

    def _arrange(self) -> None:
        for card in self.cards.values():
            self.grid.removeWidget(card)
        cols = self.columns()
        for i, card in enumerate(self.cards.values()):
            self.grid.addWidget(card, i // cols, i % cols)
        for c in range(self.grid.columnCount()):
            self.grid.setColumnStretch(c, 1 if c < cols else 0)
        self._fit_cards()

    def _fit_cards(self) -> None:
        cols = self.columns()
        width = (self.scroller.viewport().width() - 6 * (cols + 1)) // cols - 12
        for card in self.cards.values():
            card.fit(width)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._arrange()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_G, Qt.Key.Key_Escape) and not event.modifiers():
            self.hide()
            return
        super().keyPressEvent(event)

    @property
    def shown_grades(self) -> dict[int, tuple[str, str]]:
        """Each grade on show: its wording and its citation (for tests)."""
        return {g: (c.wording.text(), c.source.text()) for g, c in self.cards.items()}


def attach_grade_atlas(window: QMainWindow) -> GradeAtlas:
    """Give the reading window its grade atlas: ``G`` (and View → Grade atlas) opens and
    closes it, it follows the grid's current cell, and it hides when the session locks."""
    atlas = GradeAtlas(window)
    action = QAction("Grade atlas", window)
    action.setShortcut(QKeySequence(ATLAS_KEY))
    action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    action.setToolTip(f"Every grade of the current area, drawn and cited ({ATLAS_KEY})")
    action.triggered.connect(atlas.toggle)
    window.addAction(action)
    for menu_action in window.menuBar().actions():
        menu = menu_action.menu()
        if menu_action.text().replace("&", "") == "View" and isinstance(menu, QMenu):
            menu.addAction(action)
    atlas.toggle_action = action
    followed: list[object] = []

    def follow(*_args: object) -> None:
        model = getattr(window, "model", None)
        if model is not None and model.letters:
            atlas.show_area(model.method, model.current_def)

    def grid_shown(_code: str) -> None:
        grid = getattr(window, "grid", None)
        if grid is not None and grid not in followed:
            followed.append(grid)
            grid.currentChanged.connect(follow)
        follow()

    reading: Any = window  # the reading window's own signals (it imports this module)
    reading.gridShown.connect(grid_shown)
    reading.sessionLocked.connect(atlas.hide)
    reading.loggedOut.connect(atlas.hide)
    return atlas


# ---------------------------------------------------------------------- on its own


def _preview_window(_built: Any, args: Namespace) -> GradeAtlas:
    method = get_method(args.method)
    region, joint, feature = args.area.split()
    atlas = GradeAtlas()
    atlas.show_area(method, method.area(Area(region, joint, feature)))
    return atlas


def _preview_ready(atlas: GradeAtlas, _args: Namespace) -> bool:
    return atlas.area is not None and any(key[0] == atlas.area.area for key in atlas.drawings)


def _preview_options(parser: ArgumentParser) -> None:
    parser.add_argument("--method", default="svh", help="method id (svh, larsen1995)")
    parser.add_argument("--area", default="LH MCP2 ERO", help='"REGION JOINT FEATURE"')


PREVIEW = Preview(
    name="grade-atlas",
    description="The grade atlas of one area, on its own.",
    window=_preview_window,
    ready=_preview_ready,
    options=_preview_options,
    size="",
)


def _main(argv: Sequence[str] | None = None) -> int:
    return run_preview(PREVIEW, argv)


if __name__ == "__main__":
    sys.exit(_main())
