"""The desk's joint positions on one image: shown, placed by a three-click fit, dragged.

:class:`JointCanvas` shows the film with each placed joint as a small marker labelled with its
joint code. "Place <region>" asks for the region's three anchor joints one click at a time,
named on screen (:data:`scorer.core.joint_fit.ANCHORS`), and the generic template fitted by a
similarity places the others (:func:`scorer.core.joint_fit.fit_joints`); any marker can then
be dragged. :func:`joints_dialog` wraps it in the desk's :class:`ActionDialog`, whose Save
stores only what changed (source ``fit`` or ``dragged``) through the images service.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from scorer.core.joint_fit import ANCHOR_NAMES, ANCHORS, FitError, fit_joints
from scorer.core.joints import JointPoint
from scorer.gui.viewer import frame_to_qimage

Key = tuple[str, str]  # (region, joint)

GRAB_RADIUS = 12.0
"""How near (widget pixels) a press must be to a marker to drag it: a marker's own size and
a little more, so that neighbouring finger joints are still told apart at the dialog's size."""

REGION_COLOURS = {
    "LH": QColor(80, 200, 255),
    "RH": QColor(255, 200, 60),
    "LF": QColor(120, 230, 120),
    "RF": QColor(255, 120, 200),
}


class JointEditor(QObject):
    """The joints of one film being edited, whatever draws it: three clicks place a region
    (:meth:`start_placing`), a marker is moved by :meth:`move_joint`. Positions are kept in
    stored-image pixels; the widget that shows the film maps them to the screen."""

    changed = Signal()
    prompt = Signal(str)  # what the next click should be, or what happened
    fitFailed = Signal(str)

    def __init__(self, points: Sequence[JointPoint] = (), parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.points: dict[Key, JointPoint] = {(p.region, p.joint): p for p in points}
        self.edited: set[Key] = set()  # placed or moved here, not yet saved
        self.placing: str | None = None  # the region whose anchors are being clicked
        self.clicks: dict[str, tuple[float, float]] = {}

    def start_placing(self, region: str) -> None:
        """Ask for ``region``'s three anchors, one click each."""
        self.placing = region
        self.clicks = {}
        self.prompt.emit(self._next_prompt())

    def _next_prompt(self) -> str:
        if self.placing is None:
            return ""
        anchors = ANCHORS[self.placing]
        anchor = anchors[len(self.clicks)]
        return (
            f"{self.placing}: click the centre of {ANCHOR_NAMES[anchor]} "
            f"({len(self.clicks) + 1} of {len(anchors)})."
        )

    def click_anchor(self, x: float, y: float) -> None:
        """The next anchor clicked at (x, y) in stored pixels; the third one fits the region."""
        if self.placing is None:
            return
        region = self.placing
        anchors = ANCHORS[region]
        self.clicks[anchors[len(self.clicks)]] = (x, y)
        if len(self.clicks) < len(anchors):
            self.prompt.emit(self._next_prompt())
            self.changed.emit()
            return
        clicks, self.placing, self.clicks = self.clicks, None, {}
        try:
            # No pixel spacing here (the rendered film has none): the fit uses it only to
            # refuse a hand of an impossible size.
            fitted = fit_joints(region, clicks, None)
        except FitError as exc:
            self.fitFailed.emit(f"{region} not placed: {exc}. Click Place {region} to try again.")
            self.changed.emit()
            return
        for joint, (jx, jy) in fitted.items():
            self.points[(region, joint)] = JointPoint(region, joint, jx, jy, "fit")
            self.edited.add((region, joint))
        self.prompt.emit(f"{region} placed: drag any joint that is off, then Save.")
        self.changed.emit()

    def move_joint(self, key: Key, x: float, y: float) -> None:
        """Move a placed joint to (x, y) in stored pixels (what a drag does)."""
        old = self.points[key]
        self.points[key] = JointPoint(old.region, old.joint, x, y, "dragged")
        self.edited.add(key)
        self.changed.emit()

    def edited_points(self) -> list[JointPoint]:
        """The points placed or moved here, for saving."""
        return [self.points[k] for k in sorted(self.edited)]

    def saved(self) -> None:
        """What was edited is stored now: nothing left to save."""
        self.edited.clear()
        self.changed.emit()

    def joint_at(self, p: QPointF, to_widget: Callable[[float, float], QPointF]) -> Key | None:
        """The marker nearest a widget position, within :data:`GRAB_RADIUS`."""
        best: tuple[float, Key] | None = None
        for key, point in self.points.items():
            w = to_widget(point.x, point.y)
            d = float(np.hypot(w.x() - p.x(), w.y() - p.y()))
            if d <= GRAB_RADIUS and (best is None or d < best[0]):
                best = (d, key)
        return None if best is None else best[1]

    def paint(self, painter: QPainter, to_widget: Callable[[float, float], QPointF]) -> None:
        """Each marker with its joint code (bolder when edited), and the anchor clicks so far."""
        font = QFont(painter.font())
        font.setPointSizeF(7.5)
        painter.setFont(font)
        for key, point in self.points.items():
            colour = REGION_COLOURS.get(key[0], QColor(255, 255, 255))
            painter.setPen(QPen(colour, 2 if key in self.edited else 1))
            w = to_widget(point.x, point.y)
            painter.drawEllipse(w, 4.0, 4.0)
            painter.drawText(w + QPointF(6, -4), key[1])
        painter.setPen(QPen(QColor(255, 80, 80), 2))
        for x, y in self.clicks.values():
            w = to_widget(x, y)
            painter.drawLine(w + QPointF(-6, 0), w + QPointF(6, 0))
            painter.drawLine(w + QPointF(0, -6), w + QPointF(0, 6))


class JointCanvas(QWidget):
    """A film fitted in the widget with its joint markers (a :class:`JointEditor`): three
    clicks place a region (:meth:`start_placing`), a press on a marker drags it."""

    changed = Signal()
    prompt = Signal(str)
    fitFailed = Signal(str)

    def __init__(
        self,
        pixels: np.ndarray,
        stored: tuple[int, int],
        points: Sequence[JointPoint] = (),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("jointCanvas")
        self._pixels = np.ascontiguousarray(pixels, dtype=np.uint8)  # the QImage's buffer
        self._image = frame_to_qimage(self._pixels)
        self.stored = stored  # rows, columns of the stored image
        self.editor = JointEditor(points, self)
        self.editor.changed.connect(self.changed)
        self.editor.changed.connect(self.update)
        self.editor.prompt.connect(self.prompt)
        self.editor.fitFailed.connect(self.fitFailed)
        self._dragging: Key | None = None
        self.setMinimumSize(420, 360)
        self.setCursor(Qt.CursorShape.CrossCursor)

    @property
    def points(self) -> dict[Key, JointPoint]:
        return self.editor.points

    @property
    def edited(self) -> set[Key]:
        return self.editor.edited

    @property
    def placing(self) -> str | None:
        return self.editor.placing

    def start_placing(self, region: str) -> None:
        self.editor.start_placing(region)

    def click_anchor(self, x: float, y: float) -> None:
        self.editor.click_anchor(x, y)

    def move_joint(self, key: Key, x: float, y: float) -> None:
        self.editor.move_joint(key, x, y)

    def edited_points(self) -> list[JointPoint]:
        return self.editor.edited_points()

    def joint_at(self, p: QPointF) -> Key | None:
        return self.editor.joint_at(p, self.to_widget)

    # geometry: the image fitted in the widget, centred (as the mask canvas does)
    def _frame(self) -> tuple[float, float, float]:
        rows, cols = self.stored
        scale = min(self.width() / cols, self.height() / rows)
        return scale, (self.width() - cols * scale) / 2, (self.height() - rows * scale) / 2

    # Joint positions count from the first pixel's centre (0, 0), so the film's edge is -0.5.
    def to_stored(self, p: QPointF) -> tuple[float, float]:
        """A widget position in stored pixels (x column, y row), kept on the film."""
        scale, x0, y0 = self._frame()
        rows, cols = self.stored
        x = min(max((p.x() - x0) / scale - 0.5, -0.5), cols - 0.5)
        y = min(max((p.y() - y0) / scale - 0.5, -0.5), rows - 0.5)
        return x, y

    def to_widget(self, x: float, y: float) -> QPointF:
        """A stored-pixel position in widget coordinates."""
        scale, x0, y0 = self._frame()
        return QPointF(x0 + (x + 0.5) * scale, y0 + (y + 0.5) * scale)

    # mouse
    def mousePressEvent(self, e: QMouseEvent) -> None:
        if e.button() != Qt.MouseButton.LeftButton:
            return
        if self.editor.placing is not None:
            self.editor.click_anchor(*self.to_stored(e.position()))
        else:
            self._dragging = self.joint_at(e.position())

    def mouseMoveEvent(self, e: QMouseEvent) -> None:
        if self._dragging is not None:
            self.editor.move_joint(self._dragging, *self.to_stored(e.position()))

    def mouseReleaseEvent(self, e: QMouseEvent) -> None:
        if self._dragging is not None:
            self.editor.move_joint(self._dragging, *self.to_stored(e.position()))
        self._dragging = None

    def paintEvent(self, _e: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(0, 0, 0))
        rows, cols = self.stored
        scale, x0, y0 = self._frame()
        painter.drawImage(QRectF(x0, y0, cols * scale, rows * scale), self._image)
        self.editor.paint(painter, self.to_widget)
        painter.end()


class JointsPanel(QWidget):
    """The canvas with a "Place <region>" button per region the image covers and a line that
    says what to click next."""

    def __init__(
        self,
        canvas: Any,  # a JointCanvas, or the desk viewer's film (start_placing, prompt, fitFailed)
        regions: Sequence[str],
        show_error: Callable[[str], None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.canvas = canvas
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.place: dict[str, QPushButton] = {}
        for region in regions:
            if region not in ANCHORS:
                continue
            button = QPushButton(f"Place {region}", self)
            button.setObjectName(f"place{region}")
            button.setToolTip(
                f"Click {region}'s three anchor joints as named; a template places the others"
            )
            button.clicked.connect(lambda _on=False, r=region: self._start(r))
            row.addWidget(button)
            self.place[region] = button
        row.addStretch(1)
        layout.addLayout(row)
        self.hint = QLabel(
            "Drag a marker to move its joint, or place a region by three clicks.", self
        )
        self.hint.setObjectName("hint")
        self.hint.setWordWrap(True)
        layout.addWidget(self.hint)
        layout.addWidget(canvas, 1)
        canvas.setParent(self)
        canvas.prompt.connect(self.hint.setText)
        canvas.prompt.connect(lambda _t: show_error(""))
        canvas.fitFailed.connect(show_error)

    def _start(self, region: str) -> None:
        self.canvas.start_placing(region)
        self.canvas.setFocus()


def joint_points_to_save(canvas: JointCanvas) -> list[JointPoint]:
    """What Save stores: the points placed or moved; refusing an empty save in words."""
    points = canvas.edited_points()
    if not points:
        raise ValueError("nothing to save: place a region or drag a joint first")
    return points


def loaded(ws: Any, session: Any, code: str, max_size: int) -> tuple[Any, Any, Any]:
    """The film as the desk shows it and its stored joints (on a worker thread)."""
    pixels, stored = ws.images.render_image(session, code, max_size)
    return pixels, stored, ws.images.joint_positions(session, code)
