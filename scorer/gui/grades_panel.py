"""The grade definitions of the current area, each with a small drawn reference sketch.

The wording comes from the method file (``resources/methods``); a feature whose wording is
marked ``check = true`` there says so. The sketches are generated with QPainter: two bone ends
and their joint space, with a bigger bite out of the bone for each erosion grade and a
narrower space for each JSN grade. They are reminders of the scale, not reference films.
"""

from __future__ import annotations

from functools import cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from scorer.core.methods import AreaDef, Method
from scorer.core.reads import AreaScore

PICTURE_W, PICTURE_H = 46, 26
BONE = QColor(196, 200, 207)
BONE_EDGE = QColor(120, 126, 136)
HOLE = QColor(27, 30, 34)
CURRENT_ROW = "background: rgba(61, 90, 128, 150); border-radius: 3px;"


def _bone_path(rect: QRectF, head_right: bool) -> QPainterPath:
    """A bone end: a bar with a rounded articular surface on one side."""
    path = QPainterPath()
    r = rect.height() / 2
    path.addRoundedRect(rect, r * 0.9 if head_right else r * 0.4, r * 0.9)
    return path


@cache
def grade_picture(feature: str, grade: int, top: int) -> QPixmap:
    """A small sketch of ``grade`` of ``feature`` (ERO, JSN, LAR) on a 0-``top`` scale."""
    scale = 2  # drawn at twice the size for sharp edges on high-density screens
    pm = QPixmap(PICTURE_W * scale, PICTURE_H * scale)
    pm.setDevicePixelRatio(scale)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    share = grade / top if top else 0.0
    mid = PICTURE_W / 2
    gap = 6.0
    erosion = share if feature in ("ERO", "LAR") else 0.0
    narrowing = share if feature == "JSN" else (0.8 * share if feature == "LAR" else 0.0)
    if feature == "JSN":
        gap = [6.0, 6.0, 4.0, 2.0, 0.0][min(grade, 4)] if top == 4 else 6.0 * (1 - share)
    elif feature == "LAR":
        gap = 6.0 * (1 - narrowing)
    y0, y1 = 4.0, PICTURE_H - 4.0
    left = _bone_path(QRectF(2, y0, mid - gap / 2 - 2, y1 - y0), head_right=True)
    right = _bone_path(QRectF(mid + gap / 2, y0, PICTURE_W - 2 - mid - gap / 2, y1 - y0), False)
    if feature == "JSN" and grade == 1:
        # Focal narrowing: the distal bone tilts towards the proximal one at one edge.
        tilt = QPainterPath()
        tilt.moveTo(mid + gap / 2 - 2.5, y0)
        tilt.lineTo(mid + gap / 2 + 2, y0)
        tilt.lineTo(mid + gap / 2 + 2, (y0 + y1) / 2)
        tilt.lineTo(mid + gap / 2, (y0 + y1) / 2)
        tilt.closeSubpath()
        right = right.united(tilt)
    if erosion > 0:
        if feature == "ERO" and grade >= top:
            # Complete collapse: the articular end is gone, the outline ragged.
            cut = QPainterPath()
            cut.addRect(QRectF(mid - 13, y0 - 1, 13, y1 - y0 + 2))
            left = left.subtracted(cut)
            rag = QPainterPath()
            rag.moveTo(mid - 13, y0)
            for i, dx in enumerate((2.5, -1.5, 3.0, -2.0, 2.0, -1.0)):
                rag.lineTo(mid - 13 + dx, y0 + (i + 1) * (y1 - y0) / 6)
            rag.lineTo(mid - 16, y1)
            rag.lineTo(mid - 16, y0)
            rag.closeSubpath()
            left = left.united(rag)
        else:
            radius = 1.5 + 8.0 * erosion
            bite = QPainterPath()
            bite.addEllipse(QPointF(mid - gap / 2 - 1, y0 + 3 + radius * 0.3), radius, radius)
            left = left.subtracted(bite)
    p.setPen(QPen(BONE_EDGE, 0.8))
    p.setBrush(BONE)
    if feature == "JSN" and top == 4 and grade == 4:
        # Ankylosis: one bone across the former joint.
        p.drawPath(left.united(right).united(_bridge(mid, y0, y1)))
    else:
        p.drawPath(left)
        p.drawPath(right)
    p.end()
    return pm


def _bridge(mid: float, y0: float, y1: float) -> QPainterPath:
    path = QPainterPath()
    path.addRect(QRectF(mid - 3, y0 + 1, 6, y1 - y0 - 2))
    return path


class GradesPanel(QWidget):
    """The grades of the current area's feature: number, sketch and definition, with the
    current cell's grade highlighted. The scoring grid calls :meth:`show_area`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("gradesPanel")
        self.title = QLabel("", self)
        self.title.setObjectName("panelTitle")
        self.title.setWordWrap(True)
        self.subtitle = QLabel("", self)
        self.subtitle.setObjectName("hint")
        self.subtitle.setWordWrap(True)
        self.rows_box = QFrame(self)
        self.rows = QGridLayout(self.rows_box)
        self.rows.setContentsMargins(0, 0, 0, 0)
        self.rows.setHorizontalSpacing(6)
        self.rows.setVerticalSpacing(1)
        self.rows.setColumnStretch(2, 1)
        scroll = QScrollArea(self)
        scroll.setWidget(self.rows_box)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        layout.addWidget(scroll, 1)
        self._feature = ""
        self._area: AreaDef | None = None
        self._row_widgets: dict[int, list[QWidget]] = {}

    def show_area(
        self, method: Method, area: AreaDef, value: AreaScore | None, partial: int | None = None
    ) -> None:
        """Show the grades of ``area``'s feature, highlighting ``value`` (or the half-typed
        first side ``partial``)."""
        self._area = area
        f = method.features[area.feature]
        self.title.setText(f"{area.area}: {area.label}")
        parts = [f"{f.name}, {area.min}–{area.max}"]
        if area.sides:
            parts.append(
                f"type two digits: {' then '.join(area.sides)}, each {f.min}–{f.max}; "
                "the area score is their sum"
            )
        if f.check:
            parts.append("wording to be checked against the method's paper")
        self.subtitle.setText("; ".join(parts))
        if self._feature != f"{method.id}/{f.code}":
            self._feature = f"{method.id}/{f.code}"
            self._rebuild(method, f.code)
        self.show_value(value, partial)

    def _rebuild(self, method: Method, code: str) -> None:
        while self.rows.count():
            item = self.rows.takeAt(0)
            w = item.widget() if item is not None else None
            if w is not None:
                w.hide()
                w.setParent(None)
                w.deleteLater()
        self._row_widgets.clear()
        f = method.features[code]
        for row, (grade, text) in enumerate(f.grades.items()):
            number = QLabel(str(grade), self.rows_box)
            number.setAlignment(Qt.AlignmentFlag.AlignCenter)
            number.setMinimumWidth(16)
            picture = QLabel(self.rows_box)
            picture.setPixmap(grade_picture(code, grade, f.max))
            picture.setToolTip(f"Sketch of grade {grade} (a reminder, not a reference film)")
            words = QLabel(text, self.rows_box)
            words.setWordWrap(True)
            words.setObjectName(f"grade{grade}")
            for col, w in enumerate((number, picture, words)):
                self.rows.addWidget(w, row, col)
            self._row_widgets[grade] = [number, picture, words]

    def show_value(self, value: AreaScore | None, partial: int | None = None) -> None:
        """Highlight the grade of the current cell (each side of a foot erosion)."""
        marked: set[int] = set()
        if partial is not None:
            marked.add(partial)
        elif value is not None and value.score is not None:
            if value.sides:
                marked.update(value.sides)
            else:
                marked.add(value.score)
        for grade, widgets in self._row_widgets.items():
            style = CURRENT_ROW if grade in marked else ""
            for w in widgets:
                w.setStyleSheet(style)

    @property
    def grade_texts(self) -> dict[int, str]:
        """The definitions on show (for tests)."""
        return {g: w[2].text() for g, w in self._row_widgets.items() if isinstance(w[2], QLabel)}
