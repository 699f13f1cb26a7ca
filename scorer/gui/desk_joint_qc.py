"""The desk viewer's joint QC: what the locator was unsure of and where registration across
visits disagrees with a film's own positions, drawn over the film and said in a line.

An unsure joint still without a position is an amber dashed ring with a question mark at
where the locator guessed it (to be placed by the three-click fit or dragged); a disagreement
is a red line from the film's own position to where registration to the patient's other film
puts the joint, with a cross there.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen

UNSURE = QColor(255, 176, 32)
DISAGREE = QColor(235, 64, 52)

Key = tuple[str, str]


def qc_text(joints: Any) -> str:
    """The film's joint QC in one line (``joints`` is ``joints.image_joints``'s answer)."""
    if joints is None:
        return ""
    c = joints.check
    parts = []
    if c.located == "other":
        parts.append(f"Locator: no hand or foot found ({c.reason})" if c.reason else (
            "Locator: no hand or foot found"))  # fmt: skip
    elif c.located:
        parts.append(f"Locator: {c.located}, {c.sure} joint(s) sure, {len(c.unsure)} unsure")
    else:
        parts.append("Locator: did not run on this film (imported before it existed)")
    if c.unplaced:
        shown = ", ".join(c.unplaced[:6]) + (" …" if len(c.unplaced) > 6 else "")
        parts.append(f"to place: {shown}")
    if c.disagreements:
        shown = ", ".join(
            f"{d.region} {d.joint} {d.distance_mm:.1f} mm" for d in c.disagreements[:4]
        )
        more = " …" if len(c.disagreements) > 4 else ""
        parts.append(f"disagrees with the patient's film {c.disagreements[0].reference}: "
                     f"{shown}{more}")  # fmt: skip
    return "; ".join(parts) + "."


class JointQcOverlay:
    """Draws a film's joint QC (unsure joints without a position, disagreements)."""

    def __init__(self) -> None:
        self.joints: Any = None

    def paint(
        self,
        painter: QPainter,
        to_widget: Callable[[float, float], QPointF],
        placed: Collection[Key],
    ) -> None:
        if self.joints is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = QFont(painter.font())
        font.setPointSizeF(8.0)
        font.setBold(True)
        painter.setFont(font)
        for j in self.joints.located:
            if j.sure or (j.region, j.joint) in placed:
                continue
            p = to_widget(j.x, j.y)
            painter.setPen(QPen(UNSURE, 1.6, Qt.PenStyle.DashLine))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(p, 7.0, 7.0)
            painter.drawText(p + QPointF(9.0, 4.0), f"{j.joint}?")
        for d in self.joints.check.disagreements:
            own, there = to_widget(*d.own), to_widget(*d.proposed)
            painter.setPen(QPen(DISAGREE, 1.6))
            painter.drawLine(own, there)
            for dx, dy in ((5.0, 5.0), (5.0, -5.0)):
                painter.drawLine(there + QPointF(-dx, -dy), there + QPointF(dx, dy))
        painter.restore()
