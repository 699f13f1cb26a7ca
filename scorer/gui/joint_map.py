"""A clickable schematic of the hands and feet: where the current area is, what is left.

The joint positions and bone outlines come from ``resources/diagrams/joint_map.toml`` and are
drawn with QPainter (no image files). The map shows the pair of the current area (both hands
or both feet); two tabs switch pairs and tell how many areas of each are still to enter in the
current visit.

Sides. The map is drawn as the film is shown, so a reader never has to turn it round in their
head: each side's diagram sits on the side of the screen where that side of the patient is on
the film, with a large ``R`` / ``L`` on it, and thumbs and great toes point to the middle as on
a two-sided film. The map is shared by every visit of the case, so it follows ONE film: the
film on screen for the visit being scored (the grid's current column), i.e. that visit's film
of the current area's region (ImageLaterality, made into the film's regions at import, picks
it: a both-hands film, or the left or right film). Its Patient Orientation (0020,0020) and the
reader's flip and rotation of it decide (:meth:`ViewerModel.patient_right_on_left`); a header
that says nothing of left and right means the conventional display, the patient's right on
the viewer's left. The reading window calls :meth:`JointMap.set_right_on_left` whenever the
scored visit, its film or its flip changes; on its own the map uses the convention.

Each joint is a marker: amber ring = not entered, green = scored, grey = not assessable,
red = not saved. A joint scored for erosion and JSN is split (erosion left half, JSN right
half). Clicking a joint emits ``area_clicked(Area)``: the joint's area of the current feature,
or, when that is already the current area, its other feature (click again to cycle).
"""

from __future__ import annotations

import tomllib
from argparse import Namespace
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from scorer.core.methods import FOOT_REGIONS, HAND_REGIONS, Area, Method, resources_dir
from scorer.gui.preview import Preview, run_preview

PAIRS: Mapping[str, tuple[str, str]] = {"hand": ("LH", "RH"), "foot": ("LF", "RF")}
PAIR_TITLES: Mapping[str, str] = {"hand": "Hands", "foot": "Feet"}
REGION_TITLES: Mapping[str, str] = {
    "LH": "Left hand",
    "RH": "Right hand",
    "LF": "Left foot",
    "RF": "Right foot",
}
TAB_HEIGHT = 20
LABEL_HEIGHT = 16
MARK_FILL: Mapping[str, QColor] = {
    "empty": QColor(214, 160, 40, 60),
    "scored": QColor(92, 168, 112),
    "na": QColor(125, 128, 134),
    "failed": QColor(232, 72, 72),
}
MARK_EDGE: Mapping[str, QColor] = {
    "empty": QColor(236, 178, 46),
    "scored": QColor(60, 120, 78),
    "na": QColor(90, 92, 98),
    "failed": QColor(255, 140, 140),
}
SIDE_LETTER_SIZE = 20
SIDE_LETTER = QColor(236, 178, 46)
BONE = QColor(150, 156, 166)
BONE_EDGE = QColor(96, 102, 112)
CURRENT = QColor(255, 255, 255)


class DiagramError(ValueError):
    """A joint-map file that cannot be used, naming the file and the entry."""


@dataclass(frozen=True)
class Diagram:
    """One drawn hand or foot (the right one; the left is its mirror image)."""

    kind: str
    height: float
    sites: Mapping[str, tuple[float, float]]
    bones: tuple[tuple[float, float, float, float, float], ...]
    blobs: tuple[tuple[float, float, float, float], ...]


def diagrams_file() -> Path:
    return resources_dir() / "diagrams" / "joint_map.toml"


def _numbers(value: Any, n: int, where: str) -> tuple[float, ...]:
    if (
        not isinstance(value, list)
        or len(value) != n
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        raise DiagramError(f"{where}: expected {n} numbers, not {value!r}")
    return tuple(float(v) for v in value)


def load_diagrams(path: Path | None = None) -> dict[str, Diagram]:
    """Read and check the joint-map file: a ``hand`` and a ``foot`` diagram."""
    path = path or diagrams_file()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DiagramError(f"{path}: cannot read: {exc}") from exc
    out: dict[str, Diagram] = {}
    for kind in PAIRS:
        raw = data.get(kind)
        if not isinstance(raw, dict):
            raise DiagramError(f"{path}: [{kind}] is missing")
        height = raw.get("height", 1.5)
        if not isinstance(height, int | float) or height <= 0:
            raise DiagramError(f"{path}: {kind}.height must be a positive number")
        sites_raw = raw.get("sites", {})
        if not isinstance(sites_raw, dict) or not sites_raw:
            raise DiagramError(f"{path}: [{kind}.sites] is missing")
        sites = {}
        for joint, xy in sites_raw.items():
            x, y = _numbers(xy, 2, f"{path}: {kind}.sites.{joint}")
            sites[str(joint)] = (x, y)
        drawing = raw.get("drawing", {})
        bones = tuple(
            _numbers(b, 5, f"{path}: {kind}.drawing.bones[{i}]")
            for i, b in enumerate(drawing.get("bones", []))
        )
        blobs = tuple(
            _numbers(b, 4, f"{path}: {kind}.drawing.blobs[{i}]")
            for i, b in enumerate(drawing.get("blobs", []))
        )
        out[kind] = Diagram(kind, float(height), sites, bones, blobs)  # type: ignore[arg-type]
    return out


@cache
def builtin_diagrams() -> Mapping[str, Diagram]:
    return load_diagrams()


def pair_of(region: str) -> str:
    return "hand" if region in HAND_REGIONS else "foot" if region in FOOT_REGIONS else ""


class MapModel(Protocol):
    """What the map needs of :class:`~scorer.gui.scoring_grid.GridModel`."""

    method: Method

    @property
    def current_area(self) -> Area: ...

    @property
    def current_letter(self) -> str: ...

    def area_mark(self, area: Area, letter: str | None = None) -> str: ...

    def subscribe(self, listener: Callable[[Any], None]) -> None: ...

    def unsubscribe(self, listener: Callable[[Any], None]) -> None: ...


class JointMap(QWidget):
    """The hand and foot map of a :class:`MapModel`: highlights the current area, shows what is
    still to enter, and emits ``area_clicked(Area)`` when a joint is clicked."""

    area_clicked = Signal(object)

    def __init__(
        self,
        model: MapModel,
        parent: QWidget | None = None,
        diagrams: Mapping[str, Diagram] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("jointMap")
        self.setMinimumSize(200, 140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)
        self.setToolTip("Click a joint to go to it; click again for its other feature")
        self.diagrams = diagrams or builtin_diagrams()
        self.model = model
        self.pair = pair_of(model.current_area.region) or "hand"
        self.right_on_left = True  # the patient's right on the viewer's left (convention)
        self._hover: Area | None = None
        model.subscribe(self._changed)

    def set_right_on_left(self, right_on_left: bool) -> None:
        """Draw the patient's right side on the left (True, the conventional display) or on
        the right (False), as the film being scored shows it."""
        if right_on_left != self.right_on_left:
            self.right_on_left = right_on_left
            self.update()

    def set_model(self, model: MapModel) -> None:
        self.model.unsubscribe(self._changed)
        self.model = model
        model.subscribe(self._changed)
        self.pair = pair_of(model.current_area.region) or self.pair
        self.update()

    def _changed(self, event: Any) -> None:
        if getattr(event, "kind", "") == "current":
            pair = pair_of(self.model.current_area.region)
            if pair:
                self.pair = pair
        self.update()

    def show_pair(self, pair: str) -> None:
        """Show both hands (``hand``) or both feet (``foot``)."""
        if pair in PAIRS:
            self.pair = pair
            self.update()

    # ------------------------------------------------------------------ geometry

    def _tab_rects(self) -> dict[str, QRectF]:
        w = self.width() / len(PAIRS)
        return {p: QRectF(i * w, 0, w, TAB_HEIGHT) for i, p in enumerate(PAIRS)}

    def screen_sides(self) -> tuple[str, str]:
        """The regions of the shown pair as drawn: (on the viewer's left, on the right)."""
        patient_left, patient_right = PAIRS[self.pair]
        if self.right_on_left:
            return patient_right, patient_left
        return patient_left, patient_right

    def _cells(self) -> dict[str, QRectF]:
        """The rectangle each region of the shown pair is drawn in."""
        on_left, on_right = self.screen_sides()
        top = TAB_HEIGHT + 2
        h = max(10.0, self.height() - top - LABEL_HEIGHT)
        w = self.width() / 2
        return {on_left: QRectF(0, top, w, h), on_right: QRectF(w, top, w, h)}

    def side_letter_rects(self) -> dict[str, QRectF]:
        """Where the side letter of each shown region is drawn ("R" or "L", by the region):
        the outer top corner of its cell."""
        out = {}
        for region, cell in self._cells().items():
            outer_left = cell.left() < self.width() / 2 - 1
            x = cell.left() + 4 if outer_left else cell.right() - 4 - SIDE_LETTER_SIZE
            out[region] = QRectF(x, cell.top() + 2, SIDE_LETTER_SIZE, SIDE_LETTER_SIZE)
        return out

    def _transform(self, region: str) -> tuple[float, float, float, bool]:
        """(scale, x0, y0, mirrored) mapping diagram units into the region's cell. The
        diagram (thumb or great toe on its left) is mirrored in the left-hand cell, so both
        point to the middle as on a film of both sides."""
        diagram = self.diagrams[pair_of(region)]
        cell = self._cells()[region].adjusted(6, 4, -6, -2)
        scale = min(cell.width(), cell.height() / diagram.height)
        x0 = cell.left() + (cell.width() - scale) / 2
        y0 = cell.top() + (cell.height() - scale * diagram.height) / 2
        return scale, x0, y0, region == self.screen_sides()[0]

    def _point(self, region: str, x: float, y: float) -> QPointF:
        scale, x0, y0, mirrored = self._transform(region)
        return QPointF(x0 + scale * ((1 - x) if mirrored else x), y0 + scale * y)

    def _radius(self, region: str) -> float:
        scale = self._transform(region)[0]
        return max(4.0, min(9.0, scale * 0.034))

    def areas_at(self, region: str, joint: str) -> list[Area]:
        """The method's areas at a joint, in the method's feature order."""
        method = self.model.method
        return [
            Area(region, joint, f)
            for f in method.features
            if method.has_area(Area(region, joint, f))
        ]

    def joint_position(self, area: Area) -> QPointF | None:
        """Where ``area``'s joint is drawn now (None when its pair is not shown or the
        diagram has no site for it)."""
        if pair_of(area.region) != self.pair:
            return None
        site = self.diagrams[self.pair].sites.get(area.joint)
        return None if site is None else self._point(area.region, *site)

    def site_at(self, pos: QPointF) -> tuple[str, str] | None:
        """(region, joint) of the marker under ``pos``."""
        best: tuple[float, tuple[str, str]] | None = None
        for region, cell in self._cells().items():
            if not cell.contains(pos):
                continue
            r = self._radius(region) * 1.7
            for joint, (x, y) in self.diagrams[self.pair].sites.items():
                if not self.areas_at(region, joint):
                    continue
                p = self._point(region, x, y)
                d = ((p.x() - pos.x()) ** 2 + (p.y() - pos.y()) ** 2) ** 0.5
                if d <= r and (best is None or d < best[0]):
                    best = (d, (region, joint))
        return None if best is None else best[1]

    def area_for_click(self, region: str, joint: str) -> Area | None:
        """The area a click on a joint selects: the current feature's, or the other feature
        when that one is current already (a second click cycles)."""
        areas = self.areas_at(region, joint)
        if not areas:
            return None
        current = self.model.current_area
        if current in areas and len(areas) > 1:
            return areas[(areas.index(current) + 1) % len(areas)]
        same = [a for a in areas if a.feature == current.feature]
        return same[0] if same else areas[0]

    # ------------------------------------------------------------------ events

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        pos = event.position()
        for pair, rect in self._tab_rects().items():
            if rect.contains(pos):
                self.show_pair(pair)
                return
        site = self.site_at(pos)
        if site is None:
            return
        area = self.area_for_click(*site)
        if area is not None:
            self.area_clicked.emit(area)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        site = self.site_at(event.position())
        hover = self.area_for_click(*site) if site else None
        if hover != self._hover:
            self._hover = hover
            self.setCursor(
                Qt.CursorShape.PointingHandCursor if hover else Qt.CursorShape.ArrowCursor
            )
            self.setToolTip(f"{hover}" if hover else "Click a joint to go to it")

    # ------------------------------------------------------------------ drawing

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        text_colour = self.palette().windowText().color()
        dim = QColor(text_colour)
        dim.setAlpha(140)
        letter = self.model.current_letter
        for pair, rect in self._tab_rects().items():
            left = (
                sum(
                    self.model.area_mark(d.area, letter) == "empty"
                    for d in self.model.method.areas
                    if pair_of(d.region) == pair
                )
                if letter
                else 0
            )
            active = pair == self.pair
            if active:
                p.fillRect(rect.adjusted(1, 1, -1, 0), QColor(255, 255, 255, 22))
            p.setPen(text_colour if active else dim)
            label = PAIR_TITLES[pair] + (f" · {left} left" if left else " · done")
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter, label)
        letter_font = QFont(self.font())
        letter_font.setBold(True)
        letter_font.setPixelSize(SIDE_LETTER_SIZE - 2)
        text_font = QFont(self.font())
        for region, cell in self._cells().items():
            self._draw_region(p, region)
            p.setPen(dim)
            label_rect = QRectF(cell.left(), cell.bottom(), cell.width(), LABEL_HEIGHT)
            p.drawText(label_rect, Qt.AlignmentFlag.AlignCenter, REGION_TITLES[region])
            p.setFont(letter_font)
            p.setPen(SIDE_LETTER)
            p.drawText(self.side_letter_rects()[region], Qt.AlignmentFlag.AlignCenter, region[0])
            p.setFont(text_font)
        p.end()

    def _draw_region(self, p: QPainter, region: str) -> None:
        diagram = self.diagrams[self.pair]
        scale = self._transform(region)[0]
        p.setBrush(BONE)
        p.setPen(QPen(BONE_EDGE, 1))
        for cx, cy, rx, ry in diagram.blobs:
            p.drawEllipse(self._point(region, cx, cy), rx * scale, ry * scale)
        for x1, y1, x2, y2, width in diagram.bones:
            a, b = self._point(region, x1, y1), self._point(region, x2, y2)
            # Shorten each bone a little at both ends so the joint spaces show.
            dx, dy = b.x() - a.x(), b.y() - a.y()
            length = max(1e-6, (dx * dx + dy * dy) ** 0.5)
            gap = min(0.012 * scale, length / 4)
            ux, uy = dx / length * gap, dy / length * gap
            a2, b2 = QPointF(a.x() + ux, a.y() + uy), QPointF(b.x() - ux, b.y() - uy)
            p.setPen(
                QPen(BONE_EDGE, width * scale + 2, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
            )
            p.drawLine(a2, b2)
            p.setPen(QPen(BONE, width * scale, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
            p.drawLine(a2, b2)
        current = self.model.current_area
        letter = self.model.current_letter
        r = self._radius(region)
        for joint, (x, y) in diagram.sites.items():
            areas = self.areas_at(region, joint)
            if not areas:
                continue
            centre = self._point(region, x, y)
            marks = [self.model.area_mark(a, letter) if letter else "empty" for a in areas]
            box = QRectF(centre.x() - r, centre.y() - r, 2 * r, 2 * r)
            if len(areas) == 1:
                self._draw_mark(p, box, marks[0], 0, 360)
            else:
                span = 360 / len(areas)
                for i, mark in enumerate(marks):
                    # Erosion takes the left half (from 90 degrees anticlockwise), JSN the right.
                    self._draw_mark(p, box, mark, 90 + i * span, span)
            if current in areas:
                i = areas.index(current)
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.setPen(QPen(CURRENT, 2.2))
                p.drawEllipse(centre, r + 3, r + 3)
                if len(areas) > 1:
                    span = 360 / len(areas)
                    path = QPainterPath()
                    path.arcMoveTo(box, 90 + i * span)
                    path.arcTo(box, 90 + i * span, span)
                    p.setPen(QPen(CURRENT, 1.6))
                    p.drawPath(path)

    @staticmethod
    def _draw_mark(p: QPainter, box: QRectF, mark: str, start: float, span: float) -> None:
        path = QPainterPath()
        if span >= 360:
            path.addEllipse(box)
        else:
            path.moveTo(box.center())
            path.arcTo(box, start, span)
            path.closeSubpath()
        p.setPen(QPen(MARK_EDGE[mark], 1.4))
        p.setBrush(MARK_FILL[mark])
        p.drawPath(path)
        if mark == "na":
            p.setPen(QPen(QColor(40, 40, 44), 1.2))
            p.drawLine(box.bottomLeft() + QPointF(2, -2), box.topRight() + QPointF(-2, 2))


def _preview_window(_built: None, _args: Namespace) -> JointMap:
    from scorer.core.methods import get_method
    from scorer.gui.grid_model import GridModel

    model = GridModel(get_method("svh"), {"A": "PREVIEW"})
    joint_map = JointMap(model)
    joint_map.area_clicked.connect(model.go_to_area)
    return joint_map


PREVIEW = Preview("joint-map", "The joint map of the svh method.", _preview_window, size="360x260")


def _main(argv: Sequence[str] | None = None) -> int:
    return run_preview(PREVIEW, argv)


if __name__ == "__main__":
    raise SystemExit(_main())
