"""The image viewer: one radiograph, zoomed, panned and windowed by the reader.

:class:`ImageViewer` binds to a :class:`~scorer.gui.viewer_state.ViewerModel` (the plain view
state and the reader's actions) and only turns mouse and keys into model calls and paints the
model's frame. Keys (the viewer must have focus; clicking it gives it focus):

========================  ============================================================
wheel, ``+`` / ``-``       zoom about the cursor / the centre
``F`` / ``1``              fit the image / one image pixel per screen pixel (1:1)
left drag, arrows          pan (middle drag pans too)
right drag                 window/level: right wider, left narrower, down darker, up brighter
right click                window presets menu
``W`` / ``Shift+W``        next / previous window preset
``I``                      invert black and white
``R`` / ``Shift+R``        rotate 90° clockwise / counter-clockwise
``H``                      flip left-right
``L``                      loupe (2× to 4× around the cursor; ``Shift`` + wheel changes it)
``M``                      ruler: left drag measures in mm (refused without a pixel spacing)
``Esc``, ``0``             reset the view
========================  ============================================================

Run it on its own: ``python -m scorer.gui.viewer [FILE.dcm] [--screenshot PNG]``.
"""

from __future__ import annotations

import math
import sys
from argparse import ArgumentParser, Namespace
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QColor,
    QFont,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QMenu, QWidget

from scorer.gui.preview import Preview, run_preview
from scorer.gui.viewer_state import (
    NO_CALIBRATION,
    ZOOM_STEP,
    ViewChange,
    ViewerModel,
)
from scorer.imaging.radiograph import Radiograph

BACKGROUND = QColor(0, 0, 0)
OVERLAY_TEXT = QColor(170, 176, 184)
RULER_COLOUR = QColor(255, 200, 60)
LOUPE_BORDER = QColor(110, 140, 190)
HIGHLIGHT = QColor(61, 90, 128)
MESSAGE_MS = 3000
DRAG_THRESHOLD = 3  # pixels a right press may move and still count as a click


def frame_to_qimage(frame: npt.NDArray[np.uint8], device_pixel_ratio: float = 1.0) -> QImage:
    """A QImage over an 8-bit frame's buffer (no copy: keep ``frame`` alive while it is used)."""
    if frame.dtype != np.uint8 or frame.ndim != 2 or not frame.flags.c_contiguous:
        raise ValueError("a frame is a C-contiguous 2-D uint8 array")
    rows, cols = frame.shape
    image = QImage(frame.data, cols, rows, int(frame.strides[0]), QImage.Format.Format_Grayscale8)
    image.setDevicePixelRatio(device_pixel_ratio)
    return image


class ImageViewer(QWidget):
    """A radiograph on screen, bound to a :class:`ViewerModel`.

    Signals: ``viewChanged`` after zoom, pan, rotation or flip (for synchronising visits),
    ``windowChanged`` after the window or polarity, ``activated`` when the reader clicks
    or focuses it, ``rulerModeChanged(bool)``.
    """

    viewChanged = Signal()
    windowChanged = Signal()
    activated = Signal()
    rulerModeChanged = Signal(bool)

    LOUPE_SIZE = 240

    def __init__(self, model: ViewerModel | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._model = model or ViewerModel()
        self._model.add_listener(self._on_model_change)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.PreventContextMenu)
        self.setMouseTracking(True)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setMinimumSize(160, 160)
        self._ruler_mode = False
        self.show_readout = True
        self.highlight = False  # outlined as the viewer the toolbar acts on
        self.placeholder = ""
        self._message = ""
        self._message_timer = QTimer(self)
        self._message_timer.setSingleShot(True)
        self._message_timer.timeout.connect(self._clear_message)
        self._drag: tuple[str, QPointF, QPointF] | None = None
        self._drag_moved = False
        self._frame: npt.NDArray[np.uint8] | None = None
        self._loupe_frame: npt.NDArray[np.uint8] | None = None
        self.paint_count = 0
        self.painted_image: Radiograph | None = None
        # Drawn over the film after the ruler (e.g. joint view's markers): each gets the painter.
        self.overlays: list[Callable[[QPainter], None]] = []

    # ------------------------------------------------------------------ model

    @property
    def model(self) -> ViewerModel:
        return self._model

    def set_image(self, image: Radiograph | None) -> None:
        """Show ``image`` fitted, with its default preset (None: an empty viewer)."""
        self._sync_screen()
        self._model.set_image(image)

    def _on_model_change(self, change: ViewChange) -> None:
        self.update()
        if change == "geometry":
            self.viewChanged.emit()
        elif change == "window":
            self.windowChanged.emit()

    def _sync_screen(self) -> None:
        self._model.set_screen(self.width(), self.height(), self.devicePixelRatioF())

    # ------------------------------------------------------------------ modes and messages

    @property
    def ruler_mode(self) -> bool:
        return self._ruler_mode

    def set_ruler_mode(self, on: bool) -> None:
        """Left drag measures instead of panning; refused (with a message) without spacing."""
        if on == self._ruler_mode:
            return
        self._ruler_mode = on
        if not on:
            self._model.clear_ruler()
        self.setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)
        self.rulerModeChanged.emit(on)
        self.update()

    @property
    def message(self) -> str:
        """The notice on screen, if any (e.g. that the image cannot be measured)."""
        if self._ruler_mode and self._model.image is not None and not self._model.can_measure:
            return NO_CALIBRATION
        return self._message

    def letter_bottom(self) -> float:
        """Where overlays start below a corner label (none on a bare viewer)."""
        return 0.0

    def show_message(self, text: str, ms: int = MESSAGE_MS) -> None:
        self._message = text
        self._message_timer.start(ms)
        self.update()

    def _clear_message(self) -> None:
        self._message = ""
        self.update()

    def preset_menu(self, parent: QWidget | None = None) -> QMenu:
        """A menu of the image's window presets (the one in use checked) and Invert."""
        menu = QMenu(parent or self)
        self.fill_preset_menu(menu)
        return menu

    def fill_preset_menu(self, menu: QMenu) -> None:
        """Put the window presets (the one in use checked) and Invert into ``menu``."""
        menu.clear()
        group = QActionGroup(menu)
        for index, preset in enumerate(self._model.presets):
            action = QAction(preset.name, menu, checkable=True)
            action.setChecked(index == self._model.preset_index)
            action.triggered.connect(lambda _=False, i=index: self._model.set_preset(i))
            group.addAction(action)
            menu.addAction(action)
        if not self._model.presets:
            menu.addAction("No image").setEnabled(False)
        menu.addSeparator()
        invert = QAction("Invert", menu, checkable=True)
        invert.setChecked(self._model.view.invert)
        invert.triggered.connect(lambda _=False: self._model.toggle_invert())
        menu.addAction(invert)

    # ------------------------------------------------------------------ Qt events

    def sizeHint(self) -> QSize:
        return QSize(600, 700)

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._sync_screen()
        super().resizeEvent(event)

    def focusInEvent(self, event: object) -> None:
        self.activated.emit()
        super().focusInEvent(event)  # type: ignore[arg-type]
        self.update()

    def focusOutEvent(self, event: object) -> None:
        super().focusOutEvent(event)  # type: ignore[arg-type]
        self.update()

    def leaveEvent(self, event: object) -> None:
        self._model.loupe_at = None
        self.update()
        super().leaveEvent(event)  # type: ignore[arg-type]

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = Qt.Key(event.key())
        shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        model = self._model
        step = max(20.0, min(self.width(), self.height()) / 10)
        actions: dict[Qt.Key, Callable[[], object]] = {
            Qt.Key.Key_Plus: model.zoom_in,
            Qt.Key.Key_Equal: model.zoom_in,
            Qt.Key.Key_Minus: model.zoom_out,
            Qt.Key.Key_F: model.fit,
            Qt.Key.Key_1: model.one_to_one,
            Qt.Key.Key_W: lambda: model.cycle_preset(-1 if shift else 1),
            Qt.Key.Key_I: model.toggle_invert,
            Qt.Key.Key_R: lambda: model.rotate(-1 if shift else 1),
            Qt.Key.Key_H: model.flip,
            Qt.Key.Key_L: model.toggle_loupe,
            Qt.Key.Key_M: lambda: self.set_ruler_mode(not self._ruler_mode),
            Qt.Key.Key_Escape: self.reset,
            Qt.Key.Key_0: self.reset,
            Qt.Key.Key_Left: lambda: model.pan_by(step, 0),
            Qt.Key.Key_Right: lambda: model.pan_by(-step, 0),
            Qt.Key.Key_Up: lambda: model.pan_by(0, step),
            Qt.Key.Key_Down: lambda: model.pan_by(0, -step),
        }
        action = actions.get(key)
        if action is None or event.modifiers() & (
            Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
        ):
            super().keyPressEvent(event)
            return
        action()
        event.accept()

    def reset(self) -> None:
        """Reset the view and leave ruler mode."""
        self.set_ruler_mode(False)
        self._model.reset()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        self.activated.emit()
        pos = event.position()
        button = event.button()
        if button == Qt.MouseButton.LeftButton and self._ruler_mode:
            if not self._model.start_ruler(pos.x(), pos.y()):
                self.show_message(NO_CALIBRATION)
            self._drag = ("ruler", pos, pos)
        elif button in (Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton):
            self._drag = ("pan", pos, pos)
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        elif button == Qt.MouseButton.RightButton:
            self._model.begin_window_drag()
            self._drag = ("window", pos, pos)
            self._drag_moved = False
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        self._model.move_loupe(pos.x(), pos.y())
        if self._drag is None:
            return
        kind, start, last = self._drag
        if kind == "pan":
            self._model.pan_by(pos.x() - last.x(), pos.y() - last.y())
        elif kind == "window":
            dx, dy = pos.x() - start.x(), pos.y() - start.y()
            if self._drag_moved or abs(dx) + abs(dy) > DRAG_THRESHOLD:
                self._drag_moved = True
                self._model.drag_window(dx, dy)
        elif kind == "ruler":
            self._model.move_ruler(pos.x(), pos.y())
        self._drag = (kind, start, pos)
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._drag is not None:
            kind = self._drag[0]
            if kind == "window":
                self._model.end_window_drag()
                if not self._drag_moved:
                    self.preset_menu().popup(event.globalPosition().toPoint())
            if kind == "pan":
                self.setCursor(
                    Qt.CursorShape.CrossCursor if self._ruler_mode else Qt.CursorShape.ArrowCursor
                )
        self._drag = None
        event.accept()

    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta().y() or event.pixelDelta().y()
        if delta == 0:
            event.ignore()
            return
        steps = delta / 120.0
        shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if self._model.loupe_on and shift:
            self._model.set_loupe_factor(self._model.loupe_factor + 0.5 * math.copysign(1, steps))
        else:
            pos = event.position()
            self._model.zoom_at(ZOOM_STEP**steps, pos.x(), pos.y())
        event.accept()

    # ------------------------------------------------------------------ painting

    def paintEvent(self, event: QPaintEvent) -> None:
        self._sync_screen()
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        dpr = self.devicePixelRatioF()
        if self._model.image is not None:
            self._frame = self._model.render()  # kept: the QImage borrows its buffer
            painter.drawImage(QPointF(0, 0), frame_to_qimage(self._frame, dpr))
        elif self.placeholder:
            painter.setPen(OVERLAY_TEXT)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        self._paint_ruler(painter)
        for overlay in self.overlays:
            overlay(painter)
        self._paint_loupe(painter, dpr)
        self._paint_readout(painter)
        self._paint_message(painter)
        if self.highlight:
            painter.setPen(QPen(HIGHLIGHT, 2))
            painter.drawRect(QRectF(self.rect()).adjusted(1, 1, -1, -1))
        painter.end()
        self.paint_count += 1
        self.painted_image = self._model.image

    def _small_font(self) -> QFont:
        font = QFont(self.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.9))
        return font

    def _paint_ruler(self, painter: QPainter) -> None:
        ruler = self._model.ruler
        length = self._model.ruler_mm()
        if ruler is None or length is None:
            return
        a = QPointF(*self._model.to_screen(*ruler.start))
        b = QPointF(*self._model.to_screen(*ruler.end))
        painter.setPen(QPen(QColor(0, 0, 0, 160), 3))
        painter.drawLine(a, b)
        painter.setPen(QPen(RULER_COLOUR, 1.5))
        painter.drawLine(a, b)
        for end in (a, b):
            painter.drawEllipse(end, 3.0, 3.0)
        self._label(painter, b + QPointF(10, -10), f"{length:.1f} mm", RULER_COLOUR)

    def _label(self, painter: QPainter, at: QPointF, text: str, colour: QColor) -> None:
        painter.setFont(self._small_font())
        metrics = painter.fontMetrics()
        box = QRectF(metrics.boundingRect(text)).adjusted(-5, -3, 5, 3)
        box.moveTopLeft(at)
        box.moveRight(min(box.right(), self.width() - 4))  # keep it on screen
        box.moveLeft(max(box.left(), 4))
        box.moveTop(min(max(box.top(), 4), self.height() - box.height() - 4))
        painter.fillRect(box, QColor(0, 0, 0, 170))
        painter.setPen(colour)
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def _paint_loupe(self, painter: QPainter, dpr: float) -> None:
        frame = self._model.render_loupe(self.LOUPE_SIZE)
        at = self._model.loupe_at
        if frame is None or at is None:
            self._loupe_frame = None
            return
        self._loupe_frame = frame
        size = self.LOUPE_SIZE
        # Beside the cursor, not under it, and flipped to the other side near an edge.
        x = at[0] + 24 if at[0] + 24 + size < self.width() else at[0] - 24 - size
        y = at[1] - size / 2
        y = min(max(y, 4.0), self.height() - size - 4.0)
        box = QRectF(x, y, size, size)
        path = QPainterPath()
        path.addRoundedRect(box, 10, 10)
        painter.save()
        painter.setClipPath(path)
        painter.drawImage(box.topLeft(), frame_to_qimage(frame, dpr))
        painter.restore()
        painter.setPen(QPen(LOUPE_BORDER, 2))
        painter.drawPath(path)
        self._label(
            painter,
            box.topLeft() + QPointF(6, 6),
            f"{self._model.loupe_factor:g}×",
            OVERLAY_TEXT,
        )

    def _paint_readout(self, painter: QPainter) -> None:
        if not self.show_readout or self._model.image is None:
            return
        text = self._model.readout()
        if self._ruler_mode:
            text += "   ruler"
        painter.setFont(self._small_font())
        metrics = painter.fontMetrics()
        painter.setPen(QColor(0, 0, 0, 200))
        base = QPointF(8, self.height() - 8 - metrics.descent())
        painter.drawText(base + QPointF(1, 1), text)
        painter.setPen(OVERLAY_TEXT)
        painter.drawText(base, text)

    def _paint_message(self, painter: QPainter) -> None:
        text = self.message
        if not text:
            return
        font = QFont(self.font())
        painter.setFont(font)
        metrics = painter.fontMetrics()
        # Wrapped within the pane, below the visit's letter: a long message (a refused joint
        # placement says why and what to do) is read whole, not cut at the pane's edges.
        width = max(80, min(self.width() - 24, metrics.horizontalAdvance(text) + 2))
        flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
        bounds = metrics.boundingRect(0, 0, width, 10_000, flags, text)
        box = QRectF(bounds).adjusted(-10, -6, 10, 6)
        box.moveCenter(QPointF(self.width() / 2, 0))
        box.moveTop(max(20.0, self.letter_bottom()))
        painter.fillRect(box, QColor(60, 20, 20, 220))
        painter.setPen(QColor(255, 210, 200))
        painter.drawText(box.adjusted(10, 6, -10, -6), flags, text)


def _preview_build(folder: Path, args: Namespace) -> tuple[Path, Path | None]:
    """The file to show: the one named, or a synthetic film (with its pyramid cache)."""
    from scorer.gui.sample_case import write_sample_films

    if args.files:
        return Path(args.files[0]), None
    path = write_sample_films(folder / "films", visits=1, feet=False)[0].path
    return path, folder / "data" / "cache"


def _preview_window(built: tuple[Path, Path | None], _args: Namespace) -> ImageViewer:
    from scorer.gui.tasks import run_in_background
    from scorer.imaging.radiograph import open_radiograph

    path, cache = built
    viewer = ImageViewer()
    viewer.setWindowTitle("scorer — image viewer")
    viewer.placeholder = "Loading…"
    run_in_background(
        open_radiograph,
        path,
        cache_dir=cache,
        done=viewer.set_image,
        failed=lambda exc: viewer.show_message(f"Cannot show this file: {exc}", 600_000),
    )
    return viewer


def _preview_files(parser: ArgumentParser) -> None:
    parser.add_argument("files", nargs="*", help="DICOM files to show (default: a synthetic film)")


PREVIEW = Preview(
    "viewer",
    "Show one radiograph in the image viewer.",
    _preview_window,
    build=_preview_build,
    ready=lambda viewer, _args: viewer.painted_image is not None,
    options=_preview_files,
    waiting="Making a synthetic film…",
)


def _main(argv: Sequence[str] | None = None) -> int:
    return run_preview(PREVIEW, argv)


if __name__ == "__main__":
    sys.exit(_main())
