"""The reader's worklist in the reading window: its rows, the case on screen, and the table.

:class:`ReaderWorklist` is the plain state (the rows as the window shows them — case code,
"n of N", status: nothing else — and which one is on screen); :class:`WorklistTable` is the
table that shows it. A test can drive the state without a window.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

WORKLIST_COLUMNS = ("Case", "Progress", "Status")
_KEYS = ("code", "progress", "status")


class ReaderWorklist:
    """The reader's worklist as the reading window holds it: the rows and the case on screen
    (``index``, -1 before any is opened)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.index = -1

    def load(self, rows: Iterable[Any]) -> None:
        """Keep the code, progress and status of the facade's worklist rows (nothing else is
        shown)."""
        self.rows = [{key: getattr(r, key) for key in _KEYS} for r in rows]

    @property
    def current_code(self) -> str | None:
        return self.rows[self.index]["code"] if 0 <= self.index < len(self.rows) else None

    @property
    def has_previous(self) -> bool:
        return self.index > 0

    @property
    def has_next(self) -> bool:
        return self.index + 1 < len(self.rows)

    def first_unsigned(self) -> int:
        """The first case not yet signed (the first case when all are)."""
        return next((i for i, r in enumerate(self.rows) if r["status"] != "signed"), 0)

    def next_unsigned(self) -> int | None:
        """The next case not yet signed, after the one on screen, then from the top."""
        n = len(self.rows)
        for step in range(1, n + 1):
            i = (self.index + step) % n
            if self.rows[i]["status"] != "signed":
                return i
        return None

    def set_status(self, code: str, status: str) -> list[int]:
        """Set the status of case ``code``; the indexes of the rows changed."""
        changed = [i for i, row in enumerate(self.rows) if row["code"] == code]
        for i in changed:
            self.rows[i]["status"] = status
        return changed


class WorklistTable(QTableWidget):
    """The table of the reader's worklist: one row per case, selected on the case on screen."""

    def __init__(self, worklist: ReaderWorklist, parent: QWidget | None = None) -> None:
        super().__init__(0, len(WORKLIST_COLUMNS), parent)
        self.worklist = worklist
        self.setObjectName("worklist")
        self.setHorizontalHeaderLabels(list(WORKLIST_COLUMNS))
        self.verticalHeader().hide()
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)

    def show_rows(self) -> None:
        """Fill the table with the worklist's rows."""
        rows = self.worklist.rows
        self.setRowCount(len(rows))
        for index, row in enumerate(rows):
            for column, key in enumerate(_KEYS):
                self.setItem(index, column, QTableWidgetItem(str(row[key])))

    def show_status(self, indexes: Iterable[int]) -> None:
        """Show the status of these rows again (after :meth:`ReaderWorklist.set_status`)."""
        for index in indexes:
            item = self.item(index, 2)
            if item is not None:
                item.setText(str(self.worklist.rows[index]["status"]))

    def width_needed(self) -> int:
        """The width at which every column fits, with the scroll bar and the frame."""
        header = self.horizontalHeader()
        columns = sum(
            max(self.sizeHintForColumn(c), header.sectionSizeHint(c))
            for c in range(self.columnCount())
        )
        scroll = self.verticalScrollBar().sizeHint().width()
        # A little slack: the sections' own padding is not in their size hints.
        return columns + scroll + 2 * self.frameWidth() + 4 * self.columnCount()
