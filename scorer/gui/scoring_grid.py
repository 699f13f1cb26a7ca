"""The scoring grid: every area of the method down, the case's visits A, B, C across.

:class:`GridModel` is the plain-Python state of one case on screen: the cells (value, saved /
pending / failed), the cursor, the half-typed foot erosion, the undo and redo stacks and the
live totals. It knows nothing of Qt; it hands each change to a ``submit`` callable (the
:class:`~scorer.gui.score_writer.ScoreWriter`) and hears back per area.

:class:`ScoringGrid` is the widget over it: the grid itself (keyboard first), a clickable
joint map, the grade definitions of the current area, totals per feature and region, a note
per read and "flag to coordinator". Keys (also in :data:`KEYS_HELP`):

- ``0``-``9`` set the grade of the current area and move down; out of range is refused with a
  beep and nothing is stored. Foot erosion takes two digits, proximal then distal (each 0-5).
- ``N`` not assessable (then the reason: 1-4, "other" asks for a text); ``Shift+N`` the whole
  region of the current area, in the current visit, not assessable.
- ``Z`` the rest of this region = 0 (only its unscored areas in the current visit).
- ``Backspace`` / ``Delete`` clear the area; ``Esc`` drops a half-typed foot erosion.
- ``Ctrl+Z`` undo, ``Ctrl+Y`` / ``Ctrl+Shift+Z`` redo (each step is written and audited).
- arrows, ``Enter`` (down), ``Tab`` / ``Shift+Tab`` (next / previous visit), ``Home`` / ``End``.
- ``Ctrl+R`` retries entries that could not be saved.

Columns show the visit letters only: nothing that identifies a visit, a date or the patient.

Run it on its own: ``python -m scorer.gui.scoring_grid [--visits 2|3] [--screenshot PNG]``
builds a throw-away database with a paired case and opens its grid.
"""

from __future__ import annotations

import sys
from argparse import ArgumentParser, Namespace
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QRect,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QFont, QKeyEvent, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from scorer.core.methods import REASONS, Area
from scorer.core.reads import AreaScore
from scorer.gui.flag_answers import FlagAnswersLabel
from scorer.gui.grades_panel import GradesPanel

# The grid's model, re-exported for the modules that know it by this module's name.
from scorer.gui.grid_model import FEATURE_SHORT as FEATURE_SHORT
from scorer.gui.grid_model import KEYS_HELP as KEYS_HELP
from scorer.gui.grid_model import REASON_LABELS as REASON_LABELS
from scorer.gui.grid_model import REASON_SHORT as REASON_SHORT
from scorer.gui.grid_model import CaseFacade as CaseFacade
from scorer.gui.grid_model import CaseScores as CaseScores
from scorer.gui.grid_model import Cell as Cell
from scorer.gui.grid_model import CellKey as CellKey
from scorer.gui.grid_model import Change as Change
from scorer.gui.grid_model import Entry as Entry
from scorer.gui.grid_model import GridEvent as GridEvent
from scorer.gui.grid_model import GridModel as GridModel
from scorer.gui.grid_model import Listener as Listener
from scorer.gui.grid_model import SaveState as SaveState
from scorer.gui.grid_model import Step as Step
from scorer.gui.grid_model import Submit as Submit
from scorer.gui.grid_model import Subtotal as Subtotal
from scorer.gui.grid_model import _check_reason as _check_reason
from scorer.gui.grid_model import _number as _number
from scorer.gui.grid_model import load_case as load_case
from scorer.gui.joint_map import JointMap
from scorer.gui.preview import Preview, run_preview
from scorer.gui.score_writer import ScoreWriter

SAVE_ROLE = Qt.ItemDataRole.UserRole + 1
KIND_ROLE = Qt.ItemDataRole.UserRole + 2
UNSCORED_TINT = QColor(214, 160, 40, 62)
FAILED_TINT = QColor(220, 60, 60, 90)
FLASH_TINT = QColor(230, 60, 60, 200)
GROUP_TINT = QColor(255, 255, 255, 14)
LOCKED_TINT = QColor(128, 128, 128, 40)
DOT_COLOURS: Mapping[str, QColor] = {
    "saved": QColor(90, 170, 110, 150),
    "pending": QColor(236, 178, 46),
    "failed": QColor(240, 80, 80),
}


class GridTableModel(QAbstractTableModel):
    """The grid as a Qt table: a heading row per region and feature (with its live subtotal
    in each visit) above that group's areas."""

    def __init__(self, model: GridModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.rows: list[tuple[str, Any]] = []
        self.table_row_of: dict[int, int] = {}
        self.group_row_of: dict[int, int] = {}
        last: tuple[str, str] | None = None
        group_row = 0
        for i, d in enumerate(model.areas):
            g = (d.region, d.feature)
            if g != last:
                group_row = len(self.rows)
                self.rows.append(("group", g))
                last = g
            self.group_row_of[i] = group_row
            self.table_row_of[i] = len(self.rows)
            self.rows.append(("area", i))
        self.flash: tuple[int, int] | None = None
        self._totals: dict[str, dict[tuple[str, ...], Subtotal]] = {}
        model.subscribe(self._changed)

    def detach(self) -> None:
        self.model.unsubscribe(self._changed)

    def totals(self, letter: str) -> dict[tuple[str, ...], Subtotal]:
        if letter not in self._totals:
            self._totals[letter] = self.model.totals(letter)
        return self._totals[letter]

    def _changed(self, event: GridEvent) -> None:
        if event.kind in ("cells", "saved"):
            by_col: dict[int, list[int]] = {}
            for letter, area in event.cells:
                i = self.model.row_of(area)
                rows = by_col.setdefault(self.model.letters.index(letter), [])
                rows.append(self.table_row_of[i])
                if event.kind == "cells":
                    # The value changed: so did the totals and the group's subtotal row.
                    self._totals.pop(letter, None)
                    rows.append(self.group_row_of[i])
            for col, rows in by_col.items():
                self.dataChanged.emit(self.index(min(rows), col), self.index(max(rows), col))
        elif event.kind in ("current", "status"):
            # The half-typed cell and signed columns repaint.
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(self.rows) - 1, len(self.model.letters) - 1)
            )

    def area_index(self, row: int, col: int) -> QModelIndex:
        return self.index(self.table_row_of[row], col)

    def area_row(self, table_row: int) -> int | None:
        kind, value = self.rows[table_row]
        return int(value) if kind == "area" else None

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.model.letters)

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        if self.rows[index.row()][0] == "group":
            return Qt.ItemFlag.ItemIsEnabled
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        m = self.model
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(m.letters):
                return m.letters[section]
            if role == Qt.ItemDataRole.ToolTipRole and 0 <= section < len(m.letters):
                letter = m.letters[section]
                status = "signed" if not m.editable(letter) else "in progress"
                return f"Visit {letter} ({status})"
            return None
        if not 0 <= section < len(self.rows):
            return None
        kind, value = self.rows[section]
        if kind == "group":
            region, feature = value
            if role == Qt.ItemDataRole.DisplayRole:
                return f"{region} {FEATURE_SHORT.get(feature, feature)}"
            if role == Qt.ItemDataRole.FontRole:
                font = QFont()
                font.setBold(True)
                return font
            return None
        d = m.areas[value]
        if role == Qt.ItemDataRole.DisplayRole:
            return str(d.area)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{d.area}: {d.label} ({d.min}–{d.max})"
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> Any:
        if not index.isValid():
            return None
        m = self.model
        kind, value = self.rows[index.row()]
        letter = m.letters[index.column()]
        if role == KIND_ROLE:
            return kind
        if kind == "group":
            sub = self.totals(letter)[("group", *value)]
            if role == Qt.ItemDataRole.DisplayRole:
                return sub.text()
            if role == Qt.ItemDataRole.ToolTipRole:
                return f"{value[0]} {FEATURE_SHORT.get(value[1], value[1])}, visit {letter}: " + (
                    sub.tooltip()
                )
            if role == Qt.ItemDataRole.BackgroundRole:
                return QBrush(GROUP_TINT)
            if role == Qt.ItemDataRole.TextAlignmentRole:
                return int(Qt.AlignmentFlag.AlignCenter)
            if role == Qt.ItemDataRole.FontRole:
                font = QFont()
                font.setBold(True)
                return font
            return None
        row = int(value)
        d = m.areas[row]
        cell = m.cells[(letter, d.area)]
        is_current = (row, index.column()) == (m.row, m.col)
        if role == Qt.ItemDataRole.DisplayRole:
            if is_current and m.partial is not None:
                return f"{m.partial}+_"
            return cell.entry.text() if cell.entry is not None else ""
        if role == SAVE_ROLE:
            return cell.save if cell.entry is not None or cell.save != "saved" else ""
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignCenter)
        if role == Qt.ItemDataRole.BackgroundRole:
            if self.flash == (row, index.column()):
                return QBrush(FLASH_TINT)
            if cell.save == "failed":
                return QBrush(FAILED_TINT)
            if not m.editable(letter):
                return QBrush(LOCKED_TINT)
            if cell.entry is None:
                return QBrush(UNSCORED_TINT)
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [f"{d.area}, visit {letter}: {d.label}"]
            if cell.entry is None:
                lines.append("not entered yet")
            elif cell.entry.score.reason is not None:
                reason = REASON_LABELS.get(cell.entry.score.reason, cell.entry.score.reason)
                lines.append(f"not assessable: {reason}")
                if cell.entry.reason_text:
                    lines.append(cell.entry.reason_text)
            elif d.sides and cell.entry.score.sides:
                parts = ", ".join(
                    f"{n} {v}" for n, v in zip(d.sides, cell.entry.score.sides, strict=False)
                )
                lines.append(f"{parts}; area score {cell.entry.score.score}")
            else:
                lines.append(f"grade {cell.entry.text()}")
            if cell.save == "pending":
                lines.append("saving…")
            elif cell.save == "failed":
                lines.append(f"NOT SAVED: {cell.error} (Ctrl+R retries)")
            elif cell.entry is not None:
                lines.append("saved")
            return "\n".join(lines)
        return None


class _CellDelegate(QStyledItemDelegate):
    """Draws the cell, then its save state as a dot in the corner: dim green saved, amber
    pending, red not saved."""

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        super().paint(painter, option, index)
        state = index.data(SAVE_ROLE)
        colour = DOT_COLOURS.get(state) if isinstance(state, str) else None
        if colour is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = 3 if state == "saved" else 4
        rect: QRect = option.rect
        centre = QPoint(rect.right() - r - 3, rect.top() + r + 3)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawEllipse(centre, r, r)
        painter.restore()


class _GridView(QTableView):
    """The table; every key goes to the scoring grid first."""

    def __init__(self, grid: ScoringGrid) -> None:
        super().__init__(grid)
        self._grid = grid

    def event(self, e: QEvent) -> bool:
        # Tab moves between visits here, not between widgets.
        if (
            e.type() == QEvent.Type.KeyPress
            and isinstance(e, QKeyEvent)
            and e.key() in (Qt.Key.Key_Tab, Qt.Key.Key_Backtab)
            and self._grid.handle_key(e)
        ):
            return True
        return super().event(e)

    def keyPressEvent(self, e: QKeyEvent) -> None:
        if self._grid.handle_key(e):
            e.accept()
            return
        if e.key() in (Qt.Key.Key_PageUp, Qt.Key.Key_PageDown):
            e.ignore()  # the reading window's next / previous case
            return
        if e.text() and e.text().isprintable():
            e.ignore()  # no keyboard search: a stray letter must not jump
            return
        super().keyPressEvent(e)


# ====================================================================== popups


class ReasonPopup(QFrame):
    """Why an area (or region) is not assessable: 1-4 picks a reason, "other" asks for a
    text (Enter confirms, Esc cancels). Shown over the grid, never modal."""

    chosen = Signal(str, str)
    cancelled = Signal()

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("reasonPopup")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(3)
        self.title = QLabel("Not assessable:", self)
        self.title.setObjectName("panelTitle")
        layout.addWidget(self.title)
        self.buttons: list[QPushButton] = []
        for i, reason in enumerate(REASONS, start=1):
            b = QPushButton(f"{i}  {REASON_LABELS[reason]}", self)
            b.setObjectName(f"reason_{reason}")
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.setStyleSheet("text-align: left;")
            b.clicked.connect(lambda _=False, r=reason: self.choose(r))
            layout.addWidget(b)
            self.buttons.append(b)
        self.other = QLineEdit(self)
        self.other.setObjectName("otherReason")
        self.other.setPlaceholderText("Describe, then Enter")
        self.other.returnPressed.connect(self._confirm_other)
        self.other.hide()
        layout.addWidget(self.other)
        self.error = QLabel("", self)
        self.error.setObjectName("error")
        self.error.hide()
        layout.addWidget(self.error)
        hint = QLabel("1–4 choose · Esc cancel", self)
        hint.setObjectName("hint")
        layout.addWidget(hint)
        self.hide()

    @property
    def asking_text(self) -> bool:
        return self.other.isVisible()

    def ask(self, title: str) -> None:
        self.title.setText(title)
        self.other.clear()
        self.other.hide()
        self.error.hide()
        for b in self.buttons:
            b.setEnabled(True)
        self.adjustSize()
        self.show()
        self.raise_()
        self.setFocus()

    def choose(self, reason: str) -> None:
        if reason == "other":
            for b in self.buttons:
                b.setEnabled(b.objectName() == "reason_other")
            self.other.show()
            self.adjustSize()
            self.other.setFocus()
            return
        self.hide()
        self.chosen.emit(reason, "")

    def _confirm_other(self) -> None:
        text = self.other.text().strip()
        if not text:
            self.error.setText("Describe the reason, or Esc")
            self.error.show()
            self.adjustSize()
            return
        self.hide()
        self.chosen.emit("other", text)

    def cancel(self) -> None:
        self.hide()
        self.cancelled.emit()

    def handle_key(self, e: QKeyEvent) -> bool:
        key = e.key()
        if key == Qt.Key.Key_Escape:
            self.cancel()
            return True
        if self.asking_text:
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self._confirm_other()
            else:
                copy = QKeyEvent(e.type(), key, e.modifiers(), e.text(), e.isAutoRepeat())
                QApplication.sendEvent(self.other, copy)
            return True
        text = e.text()
        if text in ("1", "2", "3", "4"):
            self.choose(REASONS[int(text) - 1])
        return True

    def keyPressEvent(self, e: QKeyEvent) -> None:
        self.handle_key(e)


class FlagDialog(QDialog):
    """A message to the trial coordinator about this case (e.g. "this visit may be another
    patient"), about one visit (the one the cursor is in, by default) or the whole case."""

    def __init__(
        self, letters: Sequence[str] = (), current: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Flag to coordinator")
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel("What should the coordinator look at? (Nothing about the patient.)", self)
        )
        self.about = QComboBox(self)
        self.about.setObjectName("flagAbout")
        for letter in letters:
            self.about.addItem(f"Visit {letter}", letter)
        self.about.addItem("The whole case", None)
        if current in letters:
            self.about.setCurrentIndex(list(letters).index(current))
        about_row = QHBoxLayout()
        about_row.addWidget(QLabel("About:", self))
        about_row.addWidget(self.about, 1)
        layout.addLayout(about_row)
        self.text = QPlainTextEdit(self)
        self.text.setObjectName("flagMessage")
        layout.addWidget(self.text)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setText("Send")
        ok.setEnabled(False)
        self.text.textChanged.connect(lambda: ok.setEnabled(bool(self.text.toPlainText().strip())))
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.resize(380, 220)

    @property
    def message(self) -> str:
        return self.text.toPlainText().strip()

    @property
    def visit(self) -> str | None:
        """The visit letter the flag is about (None: the whole case)."""
        letter = self.about.currentData()
        return str(letter) if letter else None


# ====================================================================== the widget


class ScoringGrid(QWidget):
    """The scoring panel of one case: grid, joint map, grade definitions, totals, notes.

    Signals: ``currentChanged(area, letter)`` when the cursor moves (the viewer may follow),
    ``rejected(message)`` when a key is refused, ``flagRaised(number)``.
    """

    currentChanged = Signal(object, str)
    rejected = Signal(str)
    flagRaised = Signal(int)

    def __init__(
        self,
        model: GridModel,
        writer: ScoreWriter | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("scoringGrid")
        self.model = model
        self.writer = writer
        self._region_scope = False  # the reason popup is for the whole region
        self._asked_at: tuple[int, int] | None = None  # the cell the reason popup is for
        self.flag_dialog: FlagDialog | None = None
        self._syncing = False

        self.save_label = QLabel("", self)
        self.save_label.setObjectName("saveState")
        self.retry_button = QPushButton("Retry", self)
        self.retry_button.setObjectName("retry")
        self.retry_button.setToolTip("Write the unsaved entries again (Ctrl+R)")
        self.retry_button.clicked.connect(self.retry)
        self.retry_button.hide()
        self.message_label = QLabel("", self)
        self.message_label.setObjectName("hint")
        self.message_label.setWordWrap(True)

        self.joint_map = JointMap(model, self)
        self.joint_map.area_clicked.connect(self._map_clicked)

        self.table = _GridView(self)
        self.table.setObjectName("grid")
        self.table.setItemDelegate(_CellDelegate(self.table))
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectItems)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setTabKeyNavigation(False)
        self.table.setToolTip("")
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setMinimumSectionSize(44)
        self.setFocusProxy(self.table)

        self.totals_table = QTableWidget(self)
        self.totals_table.setObjectName("totals")
        self.totals_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.totals_table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.totals_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.totals_table.verticalHeader().setDefaultSectionSize(20)
        # Numbers are never elided: columns take their contents' width, spare room is shared.
        self.totals_table.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.totals_table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents
        )
        self.totals_table.horizontalHeader().setStretchLastSection(True)
        self.totals_table.horizontalHeader().setMinimumSectionSize(24)
        self.totals_table.setToolTip(
            "Live totals per visit. ≥12 = the sum so far (areas left to enter); "
            "* = scaled up for areas not assessable; – = missing (too many not assessable)."
        )

        self.grades = GradesPanel(self)

        self.note_label = QLabel("Note", self)
        self.note_label.setObjectName("panelTitle")
        self.note = QPlainTextEdit(self)
        self.note.setObjectName("note")
        self.note.setTabChangesFocus(True)
        self.note.setFixedHeight(48)
        self._note_letter = ""
        self._note_timer = QTimer(self)
        self._note_timer.setSingleShot(True)
        self._note_timer.setInterval(1200)
        self._note_timer.timeout.connect(self.commit_note)
        self.note.textChanged.connect(self._note_typed)
        self.flag_button = QPushButton("Flag to coordinator…", self)
        self.flag_button.setObjectName("flag")
        self.flag_button.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self.flag_button.clicked.connect(self.ask_flag)
        self.films_on_screen: Callable[[], Sequence[str]] = tuple
        self.flag_answers = FlagAnswersLabel(self)

        self.reason_popup = ReasonPopup(self)
        self.reason_popup.chosen.connect(self._reason_chosen)
        self.reason_popup.cancelled.connect(self._reason_cancelled)

        self._build_layout()
        self.table.clicked.connect(self._clicked)
        if writer is not None:
            writer.pendingChanged.connect(lambda _n: self._update_save_state())
            writer.sessionLocked.connect(lambda _m: self._update_save_state())
            writer.resumed.connect(self._update_save_state)
        self._flash_timer = QTimer(self)
        self._flash_timer.setSingleShot(True)
        self._flash_timer.setInterval(350)
        self._flash_timer.timeout.connect(self._end_flash)
        self.table_model: GridTableModel | None = None
        self._bind(model)

    # ------------------------------------------------------------------ building

    def _build_layout(self) -> None:
        tools = QHBoxLayout()
        tools.setSpacing(3)
        self.tool_buttons: dict[str, QToolButton] = {}
        for name, text, tip, slot in (
            ("zero", "Rest = 0", "Rest of this region = 0 in this visit (Z)", self.rest_zero),
            (
                "region_na",
                "Region NA…",
                "Whole region not assessable in this visit (Shift+N)",
                self.ask_region_not_assessable,
            ),
            ("undo", "Undo", "Undo (Ctrl+Z)", self.undo),
            ("redo", "Redo", "Redo (Ctrl+Y)", self.redo),
        ):
            b = QToolButton(self)
            b.setObjectName(name)
            b.setText(text)
            b.setToolTip(tip)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.clicked.connect(slot)
            tools.addWidget(b)
            self.tool_buttons[name] = b
        across = QToolButton(self)
        across.setObjectName("across")
        across.setText("→ visits")
        across.setCheckable(True)
        across.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        across.setToolTip(
            "After a grade, go to the same area in the next visit (on), or to the next area of "
            "the same visit (off)"
        )
        across.toggled.connect(self._set_across)
        tools.addWidget(across)
        self.tool_buttons["across"] = across
        keys = QToolButton(self)
        keys.setText("?")
        keys.setToolTip(KEYS_HELP)
        keys.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        tools.addWidget(keys)
        tools.addStretch(1)

        status = QHBoxLayout()
        status.addWidget(self.save_label, 1)
        status.addWidget(self.retry_button)

        grid_box = QWidget(self)
        grid_layout = QVBoxLayout(grid_box)
        grid_layout.setContentsMargins(0, 0, 0, 0)
        grid_layout.setSpacing(3)
        grid_layout.addLayout(tools)
        grid_layout.addWidget(self.table, 1)
        grid_layout.addLayout(status)
        grid_layout.addWidget(self.message_label)

        lower = QWidget(self)
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(4, 0, 2, 2)
        lower_layout.setSpacing(3)
        totals_title = QLabel("Totals", self)
        totals_title.setObjectName("panelTitle")
        lower_layout.addWidget(totals_title)
        lower_layout.addWidget(self.totals_table)
        lower_layout.addWidget(self.grades, 1)
        note_row = QHBoxLayout()
        note_row.addWidget(self.note_label)
        note_row.addStretch(1)
        note_row.addWidget(self.flag_button)
        lower_layout.addLayout(note_row)
        lower_layout.addWidget(self.note)
        lower_layout.addWidget(self.flag_answers)

        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.setObjectName("scoringSplitter")
        self.splitter.addWidget(self.joint_map)
        self.splitter.addWidget(grid_box)
        self.splitter.addWidget(lower)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setCollapsible(1, False)
        self.splitter.setSizes([215, 400, 390])
        self.splitter.splitterMoved.connect(self._sizes_set_by_hand)
        self._sizes_by_hand = False
        self.grades.setMinimumHeight(60)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

    def resizeEvent(self, e: Any) -> None:
        super().resizeEvent(e)
        if not self._sizes_by_hand:
            self.share_height()

    def _sizes_set_by_hand(self, _pos: int, _index: int) -> None:
        self._sizes_by_hand = True

    def share_height(self) -> None:
        """Give the grid itself at least half the height: on a short screen the joint map and
        the grade definitions shrink first (both scroll or scale)."""
        h = self.splitter.height()
        if h <= 0:
            return
        joint_map = max(140, min(215, round(h * 0.24)))
        lower = max(170, min(390, round(h * 0.30)))
        self.splitter.setSizes([joint_map, max(200, h - joint_map - lower), lower])

    def set_model(self, model: GridModel) -> None:
        """Show another case (keep the old model: its pending entries still land in it)."""
        self.commit_note()
        self.reason_popup.hide()
        self.model.unsubscribe(self._model_changed)
        self.model = model
        self.flag_answers.show_flags(())  # the new case's arrive when asked for
        self.joint_map.set_model(model)
        self._bind(model)

    def _bind(self, model: GridModel) -> None:
        expect = getattr(self.writer, "expect", None)
        if expect is not None:
            # What each area held when the case was loaded: the writer sends it with every
            # change, so another workstation's change meanwhile is a conflict, not lost.
            for letter, code in model.reads.items():
                cells = {d.area: model.cells[(letter, d.area)].entry for d in model.areas}
                expect(code, {a: (e.score if e is not None else None) for a, e in cells.items()})
        old = self.table_model
        if old is not None:
            old.detach()
        self.table_model = GridTableModel(model, self)
        self.table.setModel(self.table_model)
        if old is not None:
            old.deleteLater()
        for table_row, (kind, _v) in enumerate(self.table_model.rows):
            if kind == "group":
                self.table.setRowHeight(table_row, 18)
        self.table.selectionModel().currentChanged.connect(self._view_current_changed)
        model.subscribe(self._model_changed)
        self.tool_buttons["across"].setChecked(model.advance_across)
        self._load_note()
        self._refresh_totals()
        self._sync_current()
        self._update_save_state()

    # ------------------------------------------------------------------ keyboard

    def event(self, e: QEvent) -> bool:
        if (
            e.type() == QEvent.Type.KeyPress
            and isinstance(e, QKeyEvent)
            and e.key() in (Qt.Key.Key_Tab, Qt.Key.Key_Backtab)
            and self.handle_key(e)
        ):
            return True
        return super().event(e)

    def keyPressEvent(self, e: QKeyEvent) -> None:
        if self.handle_key(e):
            e.accept()
        else:
            super().keyPressEvent(e)

    def handle_key(self, e: QKeyEvent) -> bool:
        """Act on a key typed in the grid; False lets it go on (to the reading window)."""
        if self.reason_popup.isVisible():
            return self.reason_popup.handle_key(e)
        key = e.key()
        mods = e.modifiers()
        ctrl = bool(mods & Qt.KeyboardModifier.ControlModifier)
        shift = bool(mods & Qt.KeyboardModifier.ShiftModifier)
        m = self.model
        if ctrl:
            if key == Qt.Key.Key_Z:
                self._report(m.redo() if shift else m.undo(), quiet=True)
                return True
            if key == Qt.Key.Key_Y:
                self._report(m.redo(), quiet=True)
                return True
            if key == Qt.Key.Key_R:
                self.retry()
                return True
            return False
        if mods & Qt.KeyboardModifier.AltModifier:
            return False
        text = e.text()
        if len(text) == 1 and text.isdigit():
            self._report(m.type_digit(int(text)))
            return True
        if key == Qt.Key.Key_N:
            if shift:
                self.ask_region_not_assessable()
            else:
                self.ask_not_assessable()
            return True
        if key == Qt.Key.Key_Z:
            self.rest_zero()
            return True
        if key in (Qt.Key.Key_Backspace, Qt.Key.Key_Delete):
            self._report(m.clear_current())
            return True
        if key == Qt.Key.Key_Escape:
            return m.cancel_partial()
        moves: dict[Any, tuple[int, int]] = {
            Qt.Key.Key_Down: (1, 0),
            Qt.Key.Key_Return: (1, 0),
            Qt.Key.Key_Enter: (1, 0),
            Qt.Key.Key_Up: (-1, 0),
            Qt.Key.Key_Right: (0, 1),
            Qt.Key.Key_Left: (0, -1),
        }
        if key in moves:
            m.move(*moves[key])
            return True
        if key == Qt.Key.Key_Tab:
            m.next_visit(backwards=shift)
            return True
        if key == Qt.Key.Key_Backtab:
            m.next_visit(backwards=True)
            return True
        if key == Qt.Key.Key_Home:
            m.set_current(0, m.col)
            return True
        if key == Qt.Key.Key_End:
            m.set_current(len(m.areas) - 1, m.col)
            return True
        return False

    # ------------------------------------------------------------------ actions

    def undo(self) -> None:
        self._report(self.model.undo(), quiet=True)

    def redo(self) -> None:
        self._report(self.model.redo(), quiet=True)

    def rest_zero(self) -> None:
        self._report(self.model.rest_of_region_zero())

    def retry(self) -> None:
        n = self.model.retry_failed()
        self._say(f"Writing {n} entr{'y' if n == 1 else 'ies'} again…" if n else "")

    def ask_not_assessable(self) -> None:
        refused = self.model._refuse_locked()
        if refused:
            self._report(refused)
            return
        self._region_scope = False
        self._show_popup(f"{self.model.current_area} ({self.model.current_letter}) not assessable:")

    def ask_region_not_assessable(self) -> None:
        refused = self.model._refuse_locked()
        if refused:
            self._report(refused)
            return
        self._region_scope = True
        region = self.model.current_def.region
        self._show_popup(f"All of {region} ({self.model.current_letter}) not assessable:")

    def _show_popup(self, title: str) -> None:
        self.model.cancel_partial()
        # The reason applies to the cell asked about: when the popup closes, the focus may
        # fall to another visit's viewer, which makes that visit the grid's current one.
        self._asked_at = (self.model.row, self.model.col)
        popup = self.reason_popup
        popup.ask(title)
        top_left = self.table.mapTo(self, QPoint(24, 28))
        popup.move(top_left)

    def _reason_chosen(self, reason: str, text: str) -> None:
        m = self.model
        if self._asked_at is not None and self._asked_at != (m.row, m.col):
            m.set_current(*self._asked_at)
        self._asked_at = None
        if self._region_scope:
            self._report(m.mark_region_not_assessable(reason, text))
        else:
            self._report(m.mark_not_assessable(reason, text))
        self.table.setFocus()

    def _reason_cancelled(self) -> None:
        self._asked_at = None
        self.table.setFocus()

    def _set_across(self, on: bool) -> None:
        self.model.advance_across = on

    def ask_flag(self) -> None:
        """Ask for the message (non-modal) and send it to the coordinator, with the visit it
        is about and the films on screen as the dialog opened."""
        films = list(self.films_on_screen())
        dialog = FlagDialog(self.model.letters, self.model.current_letter, self)
        self.flag_dialog = dialog
        dialog.accepted.connect(lambda: self._send_flag(dialog.message, dialog.visit, films))
        dialog.open()

    def _send_flag(self, message: str, visit: str | None = None, films: Sequence[str] = ()) -> None:
        if self.writer is None or not message:
            return
        self._say("Sending the flag…")
        self.writer.raise_flag(
            self.model.case_code,
            message,
            visit,
            films,
            done=self._flag_sent,
            failed=lambda exc: self._say(f"The flag was not sent: {exc}", error=True),
        )

    def _flag_sent(self, number: Any) -> None:
        self._say(f"Flag {number} sent to the coordinator.")
        self.flagRaised.emit(int(number))

    def _report(self, refusal: str, quiet: bool = False) -> None:
        """Feedback for an action: a refusal beeps, flashes the cell and says why."""
        if not refusal:
            self._say("")
            return
        if not quiet:
            QApplication.beep()
            if self.table_model is not None:
                self.table_model.flash = (self.model.row, self.model.col)
                index = self.table_model.area_index(self.model.row, self.model.col)
                self.table_model.dataChanged.emit(index, index)
                self._flash_timer.start()
        self._say(refusal, error=not quiet)
        self.rejected.emit(refusal)

    def _end_flash(self) -> None:
        tm = self.table_model
        if tm is not None and tm.flash is not None:
            row, col = tm.flash
            tm.flash = None
            if row in tm.table_row_of and col < tm.columnCount():
                index = tm.area_index(row, col)
                tm.dataChanged.emit(index, index)

    def _say(self, text: str, error: bool = False) -> None:
        self.message_label.setText(text)
        self.message_label.setObjectName("error" if error else "hint")
        self.message_label.style().unpolish(self.message_label)
        self.message_label.style().polish(self.message_label)

    # ------------------------------------------------------------------ model -> view

    def _model_changed(self, event: GridEvent) -> None:
        if event.kind == "current":
            self._sync_current()
        elif event.kind == "cells":
            self._refresh_totals()
            self.grades.show_value(self._current_entry(), self.model.partial)
        elif event.kind in ("saved", "save", "note"):
            self._update_save_state()
        elif event.kind == "status":
            self._load_note()

    def _current_entry(self) -> AreaScore | None:
        e = self.model.entry(self.model.current_letter, self.model.current_area)
        return e.score if e is not None else None

    def _sync_current(self) -> None:
        m = self.model
        if self.table_model is None or not m.letters:
            return
        index = self.table_model.area_index(m.row, m.col)
        self._syncing = True
        try:
            self.table.setCurrentIndex(index)
            # Keep a few areas below the cursor (and the group heading above it) in sight.
            table_row = index.row()
            last = self.table_model.rowCount() - 1
            ahead = self.table_model.index(min(table_row + 4, last), m.col)
            heading = self.table_model.index(self.table_model.group_row_of[m.row], m.col)
            self.table.scrollTo(ahead)
            if table_row - heading.row() <= 3:
                self.table.scrollTo(heading)
            self.table.scrollTo(index)
        finally:
            self._syncing = False
        if self._note_letter != m.current_letter:
            self.commit_note()
            self._load_note()
        self.grades.show_area(m.method, m.current_def, self._current_entry(), m.partial)
        self.currentChanged.emit(m.current_area, m.current_letter)

    def _view_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if self._syncing or self.table_model is None or not current.isValid():
            return
        row = self.table_model.area_row(current.row())
        if row is None:
            # A heading row: go to its first area.
            row = self.table_model.area_row(min(current.row() + 1, len(self.table_model.rows) - 1))
        if row is not None:
            self.model.set_current(row, current.column())
            if (self.model.row, self.model.col) != (row, current.column()):
                self._sync_current()

    def _clicked(self, index: QModelIndex) -> None:
        self._view_current_changed(index, QModelIndex())

    def _map_clicked(self, area: Area) -> None:
        self.model.go_to_area(area)
        self.table.setFocus()

    def _refresh_totals(self) -> None:
        m = self.model
        tm = self.table_model
        cols: list[tuple[str, tuple[str, ...]]] = [
            (FEATURE_SHORT.get(f, f) if f != "ERO" else "Ero", ("feature", f))
            for f in m.method.features
            if any(d.feature == f for d in m.areas)
        ]
        cols += [(r, ("region", r)) for r in m.method.regions]
        cols += [("Total", ("total",)), ("Left", ("left",))]
        t = self.totals_table
        t.setColumnCount(len(cols))
        t.setRowCount(len(m.letters))
        t.setHorizontalHeaderLabels([c[0] for c in cols])
        t.setVerticalHeaderLabels(list(m.letters))
        for r, letter in enumerate(m.letters):
            totals = tm.totals(letter) if tm is not None else m.totals(letter)
            for c, (_name, key) in enumerate(cols):
                sub = totals[key]
                if key == ("left",):
                    text, tip = str(sub.left), f"{sub.left} area(s) of visit {letter} to enter"
                else:
                    text, tip = sub.text(), sub.tooltip()
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                item.setToolTip(tip)
                if key == ("left",) and sub.left:
                    item.setForeground(QBrush(DOT_COLOURS["pending"]))
                t.setItem(r, c, item)
        height = t.horizontalHeader().height() + 20 * len(m.letters) + 2 * t.frameWidth() + 2
        t.setFixedHeight(max(height, 40))

    def _update_save_state(self) -> None:
        m = self.model
        pending, failed = m.pending, m.failed
        locked = self.writer is not None and self.writer.paused
        if locked:
            text, colour = f"Session locked: {pending} entries wait to be saved", "pending"
        elif failed:
            text, colour = f"{failed} not saved", "failed"
        elif pending:
            text, colour = f"Saving {pending}…", "pending"
        else:
            text, colour = "All saved", "saved"
        self.save_label.setText(f"● {text}")
        pal = self.save_label.palette()
        pal.setColor(QPalette.ColorRole.WindowText, DOT_COLOURS[colour])
        self.save_label.setPalette(pal)
        self.save_label.setStyleSheet(f"color: {DOT_COLOURS[colour].name()};")
        self.retry_button.setVisible(bool(failed))
        self.joint_map.update()

    # ------------------------------------------------------------------ notes

    def _load_note(self) -> None:
        m = self.model
        letter = m.current_letter
        self._note_letter = letter
        self.note.blockSignals(True)
        self.note.setPlainText(m.notes.get(letter, ""))
        self.note.blockSignals(False)
        editable = bool(letter) and m.editable(letter)
        self.note.setReadOnly(not editable)
        self.note_label.setText(f"Note ({letter})" if letter else "Note")
        self.note.setPlaceholderText(
            f"Free-text note on visit {letter}, saved as you type" if editable else ""
        )

    def _note_typed(self) -> None:
        self._note_timer.start()

    def finish(self, timeout_s: float = 10.0) -> bool:
        """Before the window closes or the case changes: write the note being typed and wait
        for every entry to be acknowledged. False if some are still unsaved (failed, or
        pending after ``timeout_s``, or waiting for the session to be unlocked)."""
        self.commit_note()
        if self.writer is not None and not self.writer.flush(timeout_s):
            return False
        return self.model.pending == 0 and self.model.failed == 0

    def commit_note(self) -> None:
        """Write the note being typed now (also called before the window closes)."""
        self._note_timer.stop()
        letter = self._note_letter
        if not letter or letter not in self.model.notes:
            return
        self._report(self.model.set_note(letter, self.note.toPlainText()), quiet=True)


# ====================================================================== running it alone


@dataclass
class ScoringSample:
    """A throw-away database with one reader's paired cases (no images) for previews and
    tests: the workspace, the reader's and the coordinator's sessions, the trial, its cases."""

    workspace: Any  # scorer.workspace.Workspace
    session: Any
    coordinator: Any
    trial: str
    cases: list[str]
    reader: str = "rita"
    password: str = "Tulip-Garden-2024"


def build_scoring_sample(
    folder: str | Path, *, patients: int = 3, visits: int = 3, trial: str = "DEMO"
) -> ScoringSample:
    """A new database in ``folder``: a paired-blinded svh trial with ``visits`` visits,
    ``patients`` patients, reader ``rita`` assigned with her worklist, logged in."""
    from scorer.workspace import Workspace

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    ws = Workspace.initialize("ada", "Ada Admin", "Sunflower-Meadow-7", db=str(root / "grid.db"))
    admin = ws.accounts.login("ada", "Sunflower-Meadow-7")
    ws.accounts.add_user(admin, "cora", "Cora Coordinator", "coordinator", "Temporary-pass-1")
    ws.accounts.add_user(admin, "rita", "Rita Reader", "reader", "Temporary-pass-2")
    coord = ws.accounts.login("cora", "Temporary-pass-1")
    ws.accounts.change_password(coord, "Temporary-pass-1", "Willow-Compass-2024")
    labels = [("W0", 0.0), ("W24", 24.0), ("W52", 52.0), ("W104", 104.0)][:visits]
    ws.trials.create_trial(coord, trial, "Scoring grid demo", visits=labels)
    for i in range(patients):
        ws.trials.add_patient(coord, trial, f"SUBJ-{i + 1:03d}")
    ws.worklists.assign_reader(coord, trial, "rita")
    ws.worklists.generate_worklists(coord, trial)
    reader = ws.accounts.login("rita", "Temporary-pass-2")
    ws.accounts.change_password(reader, "Temporary-pass-2", "Tulip-Garden-2024")
    cases = [row.code for row in ws.worklists.worklist(reader, trial)]
    return ScoringSample(ws, reader, coord, trial, cases)


def _preview_build(folder: Path, args: Namespace) -> tuple[ScoringSample, CaseScores]:
    sample = build_scoring_sample(folder / "trial", patients=1, visits=args.visits)
    opened = sample.workspace.reading.open_case(sample.session, sample.cases[0])
    return sample, load_case(sample.workspace.reading, sample.session, opened)


def _preview_window(built: tuple[ScoringSample, CaseScores], args: Namespace) -> ScoringGrid:
    from scorer.gui.login import UnlockDialog

    sample, case = built
    writer = ScoreWriter(sample.workspace.reading, sample.session)
    grid = ScoringGrid(GridModel.from_case(case, submit=writer.submit), writer)
    grid.setWindowTitle("scorer — scoring grid")
    writer.sessionLocked.connect(
        lambda _m: _unlock(grid, sample, writer, UnlockDialog)  # pragma: no cover
    )
    _demo_typing(grid, args.scored)
    grid.table.setFocus()
    return grid


def _preview_options(parser: ArgumentParser) -> None:
    parser.add_argument("--visits", type=int, default=3, choices=(2, 3))
    parser.add_argument("--scored", type=int, default=40, help="areas of visit A pre-entered")


PREVIEW = Preview(
    "grid",
    "The scoring grid on a throw-away paired case.",
    _preview_window,
    build=_preview_build,
    ready=lambda grid, _args: grid.writer.pending_count == 0,
    options=_preview_options,
    size="470x1000",
    waiting="Making a throw-away trial with a paired case…",
)


def _main(argv: Sequence[str] | None = None) -> int:
    return run_preview(PREVIEW, argv)


def _unlock(grid: ScoringGrid, sample: ScoringSample, writer: ScoreWriter, dialog: Any) -> None:
    d = dialog(lambda pw: sample.workspace.accounts.unlock(sample.session, pw), sample.reader, grid)
    d.accepted.connect(writer.resume)
    d.open()


def _demo_typing(grid: ScoringGrid, areas: int) -> None:
    """Enter the first ``areas`` areas of visit A and a few of B as a reader would, so a
    preview shows a case being scored."""
    m = grid.model
    for i in range(min(areas, len(m.areas))):
        d = m.current_def
        if i == 7:
            m.mark_not_assessable("image_quality")
            continue
        if d.sides:
            m.type_digit(i % 2)
            m.type_digit((i // 2) % 3)
        else:
            m.type_digit((i * 7 + 3) % (min(d.max, 3) + 1))
    if len(m.letters) > 1:
        m.set_current(0, 1)
        for i in range(6):
            m.type_digit((i + 1) % 3)
    m.set_current(16, 0)


if __name__ == "__main__":
    sys.exit(_main())
