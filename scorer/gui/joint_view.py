"""Joint view: every visit's pane magnified on the joint being scored, and placing joints.

:class:`JointView` works over a case view's panes (:class:`~scorer.gui.case_view.CaseView`).
Switched on (``J``), each pane shows the active area's joint of its own film: centred on the
film's stored position of (region, joint) and zoomed so that a field of :attr:`JointView.field_mm`
millimetres (from the film's pixel spacing, so every pane has the same physical scale) fills the
pane's shorter side; each film keeps its window, rotation and flip. ``[`` / ``]`` narrow / widen
the field (remembered). Moving to another area moves every pane.

Clicking a film within :data:`PICK_RADIUS` screen pixels of a stored position, without dragging,
selects that joint (``jointClicked(region, joint)``), in joint view and in film view. In joint
view the positions are drawn as small markers (the active one ringed), and any marker can be
dragged (saved with source ``dragged``). A film with no positions for the active region says
so; ``P`` starts the three-click fit on the active pane: it names each anchor joint in turn and,
after the third click, the template fit places the region's other joints (source ``fit``).

Saving goes through ``saver(case_code, film, points)`` (the reading window gives the facade's
``reading.place_joints``), on a worker thread. The plain parts (:class:`Placement`,
:func:`joint_label`, :func:`nearest_point`) need no window.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from PySide6.QtCore import (
    QEvent,
    QObject,
    QPointF,
    QRectF,
    QSettings,
    Qt,
    QThreadPool,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QColor, QKeySequence, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import QMenu, QSpinBox, QToolBar, QWidget
from shiboken6 import isValid

from scorer.core.joint_fit import ANCHORS, FitError, fit_joints, patient_template
from scorer.core.joints import JointPoint, by_key
from scorer.core.methods import region_kind
from scorer.gui.tasks import run_in_background
from scorer.gui.viewer_state import DEFAULT_FIELD_MM, ViewerModel
from scorer.imaging.joint_snap import bone_bright_pixels, fit_and_refine
from scorer.imaging.radiograph import Radiograph

Point = tuple[float, float]

PIXEL_CENTRE = 0.5
"""Stored positions count from the first pixel's centre; the viewer's image coordinates from
its edge (pixel i spans i to i + 1): a stored x is the viewer's x - 0.5."""
PICK_RADIUS = 15.0  # screen pixels from a stored position that a click still selects
CLICK_SLOP = 3.0  # screen pixels a press may move and still be a click
FIELD_RANGE_MM = (5, 150)
FIELD_STEP_MM = 5
FIELD_SETTING = "viewer/jointFieldMm"
NO_POSITIONS = "No joint positions on this film — press P to place them"
NO_POSITION_OF_JOINT = "No position of this joint on this film — drag one or press P"
MARKER = QColor(120, 200, 255, 150)
ACTIVE_MARKER = QColor(255, 200, 60, 230)
PLACED_CLICK = QColor(255, 120, 80, 230)

Saver = Callable[[str, str, tuple[JointPoint, ...]], object]
"""Stores positions: ``saver(case_code, film, points)`` (blocking; run on a worker)."""

_ORDINALS = {"1": "1st", "2": "2nd", "3": "3rd", "4": "4th", "5": "5th"}
_FINGER_JOINTS = {"MCP", "PIP", "DIP", "IP", "MTP", "CMC"}
_BONES = {
    "RAD": "distal radius",
    "ULN": "distal ulna",
    "NAV": "scaphoid",
    "LUN": "lunate",
    "MUL": "trapezium",
    "CAP": "capitate",
    "RCA": "radiocarpal joint",
    "MNA": "scaphoid–trapezium joint",
    "CNL": "capitate–scaphoid–lunate joint",
}


def joint_label(joint: str) -> str:
    """What a joint code is called on screen: ``MCP2`` → "2nd MCP joint", ``RAD`` → "distal
    radius"; an unknown code is shown as it is."""
    if joint in _BONES:
        return _BONES[joint]
    stem, digit = joint.rstrip("0123456789"), joint[len(joint.rstrip("0123456789")) :]
    if stem in _FINGER_JOINTS and digit in _ORDINALS:
        return f"{_ORDINALS[digit]} {stem} joint"
    return joint


@dataclass
class Placement:
    """A three-click fit under way on one pane: the anchors to click, in order, and the clicks
    so far (stored-image pixels)."""

    letter: str
    film: str
    region: str
    anchors: tuple[str, ...]
    clicks: list[tuple[float, float]] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return len(self.clicks) >= len(self.anchors)

    def prompt(self) -> str:
        """What the pane asks for next: "Click the centre of the 2nd MCP joint (1 of 3)"."""
        if self.done:
            return "Placing the joints…"
        n = len(self.clicks)
        name = joint_label(self.anchors[n])
        return f"Click the centre of the {name} ({n + 1} of {len(self.anchors)}) — P cancels"

    def add(self, x: float, y: float) -> bool:
        """Record the next anchor's click; True once every anchor has one."""
        if not self.done:
            self.clicks.append((x, y))
        return self.done


def pixel_mm_of(image: Radiograph | None) -> float | None:
    """A film's pixel spacing as one number of mm (None without one)."""
    spacing = image.spacing if image is not None else None
    return math.sqrt(spacing.row_mm * spacing.col_mm) if spacing is not None else None


def on_view(x: float, y: float) -> tuple[float, float]:
    """A stored position in the viewer's image coordinates."""
    return x + PIXEL_CENTRE, y + PIXEL_CENTRE


def stored_at(x: float, y: float) -> tuple[float, float]:
    """The viewer's image coordinates as a stored position."""
    return x - PIXEL_CENTRE, y - PIXEL_CENTRE


def on_film(x: float, y: float, rows: int, columns: int) -> tuple[float, float]:
    """A stored position kept on the film (a fitted joint of a cut-off finger, a marker
    dragged past the edge): the store refuses points off it."""
    return (
        min(max(x, -PIXEL_CENTRE), columns - PIXEL_CENTRE),
        min(max(y, -PIXEL_CENTRE), rows - PIXEL_CENTRE),
    )


def nearest_point(
    model: ViewerModel, points: Iterable[JointPoint], sx: float, sy: float, radius: float
) -> JointPoint | None:
    """The stored position drawn nearest the screen point (sx, sy), if within ``radius``."""
    best: tuple[float, JointPoint] | None = None
    for point in points:
        px, py = model.to_screen(*on_view(point.x, point.y))
        distance = math.hypot(px - sx, py - sy)
        if distance <= radius and (best is None or distance < best[0]):
            best = (distance, point)
    return best[1] if best else None


class CasePanes(Protocol):
    """What joint view needs of the case view: its panes by letter (each an
    :class:`~scorer.gui.viewer.ImageViewer` with ``letter`` and ``shown``), the case, the
    active pane."""

    @property
    def panels(self) -> Mapping[str, Any]: ...

    @property
    def case(self) -> Any: ...

    def active_viewer(self) -> Any: ...


@dataclass
class _Press:
    """A left press on a pane that joint view is watching: where, on which position."""

    panel: Any
    x: float
    y: float
    hit: JointPoint | None
    grabbed: bool  # the press was joint view's (a marker), not the viewer's pan
    dragging: bool = False


class JointView(QObject):
    """Joint view over a case view's panes (see the module's docstring).

    Signals: ``jointClicked(region, joint)`` when the reader clicks a stored position,
    ``toggled(on)``, ``fieldChanged(mm)``, ``placingChanged(prompt)`` ("" when no fit is under
    way), ``saved(film, count)`` and ``saveFailed(message)`` after positions are stored.
    """

    jointClicked = Signal(str, str)
    toggled = Signal(bool)
    fieldChanged = Signal(float)
    placingChanged = Signal(str)
    saved = Signal(str, int)
    saveFailed = Signal(str)

    def __init__(self, panes: CasePanes, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._panes = panes
        self.on = False
        self.field_mm = DEFAULT_FIELD_MM
        self.area: tuple[str, str] | None = None
        self.placement: Placement | None = None
        self.saver: Saver | None = None
        # One save at a time, in order: a fit then a quick drag must reach the store in the
        # order they were made (the last one wins there as on screen).
        self._save_pool = QThreadPool(self)
        self._save_pool.setMaxThreadCount(1)
        self._settings: QSettings | None = None
        # Positions placed or dragged this session, by (case code, film): over the prepared ones.
        self._placed: dict[tuple[str, str], dict[tuple[str, str], JointPoint]] = {}
        self._press: _Press | None = None
        self._watched: list[Any] = []
        self.toggle_action: QAction | None = None
        self.field_box: QSpinBox | None = None

    # ------------------------------------------------------------------ settings and tools

    def use_settings(self, settings: QSettings) -> None:
        """Remember the field in ``settings`` (and take the one remembered there)."""
        self._settings = settings
        value = settings.value(FIELD_SETTING)
        try:
            mm = float(str(value)) if value is not None else None
        except (TypeError, ValueError):
            mm = None
        if mm is not None:
            self.set_field_mm(mm)

    def add_tools(self, toolbar: QToolBar, keys_on: QWidget, menu: QMenu | None = None) -> None:
        """Put the joint view's toggle (``J``) and field box in ``toolbar`` and "Place joints"
        (``P``) in ``menu`` (the toolbar, without one: a laptop's toolbar has no room left);
        their keys work wherever the focus is within ``keys_on``."""
        toolbar.addSeparator()
        toggle = QAction("Joints", keys_on, checkable=True)
        toggle.setToolTip("Joint view: every visit magnified on the joint being scored (J)")
        toggle.setShortcut(QKeySequence("J"))
        toggle.triggered.connect(self.set_on)
        self.toggle_action = toggle
        box = QSpinBox(toolbar)
        box.setObjectName("jointField")
        box.setRange(*FIELD_RANGE_MM)
        box.setSingleStep(FIELD_STEP_MM)
        box.setSuffix(" mm")
        box.setValue(round(self.field_mm))
        box.setToolTip("Joint view's field: millimetres across each pane's shorter side ([ / ])")
        box.valueChanged.connect(lambda mm: self.set_field_mm(float(mm)))
        self.field_box = box
        place = QAction("Place joints", keys_on)
        place.setToolTip("Place the joints of this region on the active film: click three (P)")
        place.setShortcut(QKeySequence("P"))
        place.triggered.connect(lambda _=False: self.toggle_placement())
        narrower = QAction("Narrower field", keys_on)
        narrower.setShortcut(QKeySequence("["))
        narrower.triggered.connect(lambda _=False: self.step_field(-1))
        wider = QAction("Wider field", keys_on)
        wider.setShortcut(QKeySequence("]"))
        wider.triggered.connect(lambda _=False: self.step_field(1))
        toolbar.addAction(toggle)
        toolbar.addWidget(box)
        if menu is None:
            toolbar.addAction(place)
        else:
            menu.addAction(place)
        for action in (toggle, place, narrower, wider):
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            keys_on.addAction(action)

    # ------------------------------------------------------------------ state

    def toggle(self) -> None:
        self.set_on(not self.on)

    def set_on(self, on: bool) -> None:
        """Joint view on (every pane on the active joint) or off (every pane's whole film)."""
        on = bool(on)
        if self.toggle_action is not None and self.toggle_action.isChecked() != on:
            self.toggle_action.setChecked(on)
        if on == self.on:
            return
        self.on = on
        if on:
            self.apply()
        else:
            for panel in self._panes.panels.values():
                if panel.model.image is not None:
                    panel.model.fit()
                panel.update()
        self.toggled.emit(on)

    def set_field_mm(self, mm: float) -> None:
        """The field across each pane's shorter side, kept within :data:`FIELD_RANGE_MM`."""
        if not math.isfinite(mm):
            return
        mm = float(min(FIELD_RANGE_MM[1], max(FIELD_RANGE_MM[0], mm)))
        if self.field_box is not None and self.field_box.value() != round(mm):
            self.field_box.blockSignals(True)
            self.field_box.setValue(round(mm))
            self.field_box.blockSignals(False)
        if mm == self.field_mm:
            return
        self.field_mm = mm
        if self._settings is not None:
            self._settings.setValue(FIELD_SETTING, mm)
        if self.on:
            self.apply()
        self.fieldChanged.emit(mm)

    def step_field(self, steps: int) -> None:
        """Narrow (negative) or widen the field by :data:`FIELD_STEP_MM` per step."""
        self.set_field_mm(self.field_mm + steps * FIELD_STEP_MM)

    def set_area(self, region: str, joint: str) -> None:
        """The area being scored: in joint view every pane moves to its joint."""
        if self.area == (region, joint):
            return
        self.area = (region, joint)
        if self.on:
            self.apply()
        else:
            for panel in self._panes.panels.values():
                panel.update()

    # ------------------------------------------------------------------ positions

    def positions(self, panel: Any) -> dict[tuple[str, str], JointPoint]:
        """The positions on the film a pane shows: the prepared ones, then any placed or
        dragged since (none without a film)."""
        film = getattr(panel, "shown", None)
        if film is None:
            return {}
        out = by_key(film.joints)
        placed = self._placed.get(self._film_key(film.image))
        if placed:
            out.update(placed)
        return out

    def _film_key(self, film: str) -> tuple[str, str]:
        case = self._panes.case
        return (str(getattr(case, "code", "")), film)

    def has_region(self, panel: Any, region: str) -> bool:
        return any(r == region for r, _ in self.positions(panel))

    # ------------------------------------------------------------------ applying

    def apply(self) -> None:
        """Put every pane where the state says (call after the panes' films change)."""
        self._watch_panels()
        placement = self.placement
        if placement is not None:
            panel = self._panes.panels.get(placement.letter)
            if panel is None or panel.shown is None or panel.shown.image != placement.film:
                self.cancel_placement()  # the film being placed has left the screen
        for panel in self._panes.panels.values():
            self._apply_panel(panel)

    def _apply_panel(self, panel: Any) -> None:
        model: ViewerModel = panel.model
        if model.image is None:
            return
        placing = self.placement is not None and self.placement.letter == panel.letter
        if placing:
            if not model.fitted:
                model.fit()  # the anchors are found on the whole film
        elif self.on and self.area is not None:
            point = self.positions(panel).get(self.area)
            if point is not None:
                model.focus_on(*on_view(point.x, point.y), self.field_mm)
            elif not model.fitted:
                model.fit()
        panel.update()

    def _watch_panels(self) -> None:
        self._watched = [p for p in self._watched if isValid(p)]
        for panel in self._panes.panels.values():
            if not any(p is panel for p in self._watched):
                panel.installEventFilter(self)
                panel.overlays.append(partial(self._paint, panel))
                self._watched.append(panel)

    # ------------------------------------------------------------------ placing

    def start_placement(self, letter: str | None = None) -> bool:
        """Start the three-click fit on pane ``letter`` (default: the active one) for the
        active area's region; False (with a message in the pane) when it cannot start."""
        panel = self._panes.panels.get(letter) if letter else self._panes.active_viewer()
        if panel is None or panel.model.image is None or panel.shown is None:
            return False
        if self.area is None:
            panel.show_message("Choose an area in the scores first")
            return False
        region = self.area[0]
        if region not in panel.shown.regions:
            panel.show_message("This film does not show the region being scored")
            return False
        anchors = self._anchors(region)
        if len(anchors) != 3:
            panel.show_message("No template to place this region's joints")
            return False
        self._watch_panels()
        self.placement = Placement(panel.letter, panel.shown.image, region, anchors)
        panel.setCursor(Qt.CursorShape.CrossCursor)
        self._apply_panel(panel)
        self.placingChanged.emit(self.placement.prompt())
        return True

    def toggle_placement(self) -> None:
        """``P``: start the three-click fit on the active pane, or cancel the one under way."""
        if self.placement is not None:
            self.cancel_placement()
        else:
            self.start_placement()

    def cancel_placement(self) -> None:
        placement, self.placement = self.placement, None
        if placement is None:
            return
        panel = self._panes.panels.get(placement.letter)
        if panel is not None:
            panel.setCursor(Qt.CursorShape.ArrowCursor)
            self._apply_panel(panel)
        self.placingChanged.emit("")

    def click_placement(self, panel: Any, sx: float, sy: float) -> None:
        """The reader clicked screen point (sx, sy) of the pane being placed."""
        placement = self.placement
        if placement is None or panel.letter != placement.letter:
            return
        x, y = panel.model.to_image(sx, sy)
        rows, cols = panel.model.image.shape
        if not (0 <= x < cols and 0 <= y < rows):
            panel.show_message("Click on the film")
            return
        if placement.add(*stored_at(x, y)):
            self._finish_placement(panel, placement)
        else:
            panel.update()
            self.placingChanged.emit(placement.prompt())

    def _finish_placement(self, panel: Any, placement: Placement) -> None:
        self.placement = None
        panel.setCursor(Qt.CursorShape.ArrowCursor)
        clicks = dict(zip(placement.anchors, placement.clicks, strict=True))
        image = panel.model.image
        template = self._patient_template(placement.region, panel)
        try:
            if template is None:
                # The generic template misses a few finger and toe joints by up to ~5 mm (each
                # ray's own length and spread); the film's joint spaces put them right. A
                # one-off ~20-30 ms after the third click.
                fitted = fit_and_refine(
                    bone_bright_pixels(image), pixel_mm_of(image), placement.region, clicks
                )
            else:
                fitted = fit_joints(placement.region, clicks, pixel_mm_of(image), template=template)
        except FitError as exc:
            panel.show_message(f"The joints cannot be placed: {exc}", 8000)
            self.placingChanged.emit("")
            self._apply_panel(panel)
            return
        rows, cols = image.shape
        points = tuple(
            JointPoint(placement.region, joint, *on_film(x, y, rows, cols), "fit")
            for joint, (x, y) in fitted.items()
        )
        self._store(placement.film, points)
        self.placingChanged.emit("")
        if not self.on:
            self.set_on(True)
        else:
            self._apply_panel(panel)

    def _anchors(self, region: str) -> tuple[str, ...]:
        return tuple(ANCHORS.get(region, ()))

    def _patient_template(self, region: str, placing: Any) -> dict[str, Point] | None:
        """The patient's own anatomy, when another pane's film has every joint of this part
        placed (the same side first, else the other side mirrored): it places the joints far
        closer than the generic hand or foot, whose rays cannot follow each patient's."""
        kind = region_kind(region)
        candidates: list[tuple[int, dict[str, Point], str, float | None]] = []
        for panel in self._panes.panels.values():
            if panel is placing or panel.shown is None or panel.model.image is None:
                continue
            by_region: dict[str, dict[str, Point]] = {}
            for (r, joint), point in self.positions(panel).items():
                by_region.setdefault(r, {})[joint] = (point.x, point.y)
            for r, placed in by_region.items():
                if region_kind(r) == kind:
                    rank = 0 if r == region else 1
                    candidates.append((rank, placed, r, pixel_mm_of(panel.model.image)))
        for _rank, placed, placed_region, pixel_mm in sorted(candidates, key=lambda c: c[0]):
            try:
                return patient_template(region, placed, placed_region, pixel_mm)
            except FitError:
                continue  # that film lacks some of the joints: try another
        return None

    def _store(self, film: str, points: tuple[JointPoint, ...]) -> None:
        """Keep ``points`` for the film at once (the panes use them) and save them."""
        if not points:
            return
        key = self._film_key(film)
        self._placed.setdefault(key, {}).update({(p.region, p.joint): p for p in points})
        if self.saver is None:
            # Said, not hidden: a reader must not believe positions kept only here are stored.
            self._save_failed("this window cannot store them (kept until it closes)")
            return
        run_in_background(
            self.saver,
            key[0],
            film,
            points,
            done=lambda _answer: self.saved.emit(film, len(points)),
            failed=lambda exc: self._save_failed(str(exc) or type(exc).__name__),
            pool=self._save_pool,
        )

    def _save_failed(self, message: str) -> None:
        text = f"The joint positions were not saved: {message}"
        active = self._panes.active_viewer()
        if active is not None and isValid(active):
            active.show_message(text, 8000)
        self.saveFailed.emit(text)

    # ------------------------------------------------------------------ mouse and keys

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind == QEvent.Type.Resize and self.on:
            # After the viewer has taken its new size: the field fills the new shorter side.
            QTimer.singleShot(0, partial(self._reapply, watched))
            return False
        if kind == QEvent.Type.KeyPress and self.placement is not None:
            if getattr(event, "key", lambda: None)() == Qt.Key.Key_Escape:
                self.cancel_placement()
                return True
            return False
        if not isinstance(event, QMouseEvent) or getattr(watched, "ruler_mode", False):
            return False
        if kind == QEvent.Type.MouseButtonPress:
            return self._pressed(watched, event)
        if kind == QEvent.Type.MouseMove:
            return self._moved(watched, event)
        if kind == QEvent.Type.MouseButtonRelease:
            return self._released(watched, event)
        return False

    def _reapply(self, panel: Any) -> None:
        if isValid(panel) and self.on:
            self._apply_panel(panel)

    def _pressed(self, panel: Any, event: QMouseEvent) -> bool:
        if event.button() != Qt.MouseButton.LeftButton or panel.model.image is None:
            return False
        pos = event.position()
        placing = self.placement is not None and self.placement.letter == panel.letter
        hit = None if placing else self._hit(panel, pos.x(), pos.y())
        # A press on a drawn marker is joint view's (a click or a drag of the marker); a press
        # anywhere else is the viewer's (a pan), and a press on an undrawn position too.
        grabbed = self.on and hit is not None
        self._press = _Press(panel, pos.x(), pos.y(), hit, grabbed)
        if grabbed:
            panel.setFocus(Qt.FocusReason.MouseFocusReason)
            panel.activated.emit()
            event.accept()
        return grabbed

    def _moved(self, panel: Any, event: QMouseEvent) -> bool:
        press = self._press
        if press is None or press.panel is not panel or not press.grabbed or press.hit is None:
            return False
        pos = event.position()
        if not press.dragging and math.hypot(pos.x() - press.x, pos.y() - press.y) > CLICK_SLOP:
            press.dragging = True
        if press.dragging:
            rows, cols = panel.model.image.shape
            x, y = on_film(*stored_at(*panel.model.to_image(pos.x(), pos.y())), rows, cols)
            moved = JointPoint(press.hit.region, press.hit.joint, x, y, "dragged")
            key = self._film_key(panel.shown.image)
            self._placed.setdefault(key, {})[(moved.region, moved.joint)] = moved
            panel.update()
        event.accept()
        return True

    def _released(self, panel: Any, event: QMouseEvent) -> bool:
        press, self._press = self._press, None
        if press is None or press.panel is not panel or event.button() != Qt.MouseButton.LeftButton:
            return False
        pos = event.position()
        still = math.hypot(pos.x() - press.x, pos.y() - press.y) <= CLICK_SLOP
        if self.placement is not None and self.placement.letter == panel.letter:
            if still:
                self.click_placement(panel, pos.x(), pos.y())
            return False
        if press.dragging and press.hit is not None:
            point = self.positions(panel).get((press.hit.region, press.hit.joint))
            if point is not None:
                self._store(panel.shown.image, (point,))
            return True
        if still and press.hit is not None:
            self.jointClicked.emit(press.hit.region, press.hit.joint)
        return press.grabbed

    def _hit(self, panel: Any, sx: float, sy: float) -> JointPoint | None:
        return nearest_point(panel.model, self.positions(panel).values(), sx, sy, PICK_RADIUS)

    # ------------------------------------------------------------------ painting

    def _paint(self, panel: Any, painter: QPainter) -> None:
        """Markers, the pane's notice and the placement's prompt, over the film."""
        if panel.model.image is None or panel.shown is None:
            return
        placement = self.placement
        if placement is not None and placement.letter == panel.letter:
            for x, y in placement.clicks:
                self._dot(painter, panel.model, x, y, PLACED_CLICK, 5.0, filled=True)
            self._banner(painter, panel, placement.prompt())
            return
        if not self.on:
            return
        positions = self.positions(panel)
        for key, point in positions.items():
            if key != self.area:
                self._dot(painter, panel.model, point.x, point.y, MARKER, 3.0, filled=True)
        active = positions.get(self.area) if self.area else None
        if active is not None:
            self._dot(painter, panel.model, active.x, active.y, ACTIVE_MARKER, 7.0, filled=False)
        elif self.area is not None and self.area[0] in panel.shown.regions:
            has_region = any(r == self.area[0] for r, _ in positions)
            self._banner(painter, panel, NO_POSITION_OF_JOINT if has_region else NO_POSITIONS)

    @staticmethod
    def _dot(
        painter: QPainter,
        model: ViewerModel,
        x: float,
        y: float,
        colour: QColor,
        radius: float,
        *,
        filled: bool,
    ) -> None:
        sx, sy = model.to_screen(*on_view(x, y))
        width, height = model.size
        if not (-radius <= sx <= width + radius and -radius <= sy <= height + radius):
            return
        painter.setPen(QPen(colour, 1.5))
        painter.setBrush(colour if filled else Qt.BrushStyle.NoBrush)
        painter.drawEllipse(QPointF(sx, sy), radius, radius)
        painter.setBrush(Qt.BrushStyle.NoBrush)

    @staticmethod
    def _banner(painter: QPainter, panel: Any, text: str) -> None:
        metrics = painter.fontMetrics()
        box = QRectF(metrics.boundingRect(text)).adjusted(-10, -6, 10, 6)
        box.moveCenter(QPointF(panel.width() / 2, 56 + box.height() / 2))
        painter.fillRect(box, QColor(20, 30, 50, 220))
        painter.setPen(QColor(220, 230, 245))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def notices(self) -> list[str]:
        """Every text joint view shows in the panes now (for the blinding checks)."""
        out: list[str] = []
        if self.placement is not None:
            out.append(self.placement.prompt())
        if self.on and self.area is not None:
            for panel in self._panes.panels.values():
                if panel.shown is None or self.area in self.positions(panel):
                    continue
                if self.area[0] in panel.shown.regions:
                    has_region = self.has_region(panel, self.area[0])
                    out.append(NO_POSITION_OF_JOINT if has_region else NO_POSITIONS)
        return out
