"""The reading window: a reader's worklist and the case on screen, one case after another.

:class:`ReadingWindow` lists the reader's worklist (case code, "n of N", status: nothing
else) beside the :class:`~scorer.gui.case_view.CaseView`, with a panel kept for the scoring
grid. ``PageDown`` / ``PageUp`` go to the next / previous case. While a case is on screen the
next one is prepared on a worker thread (:class:`~scorer.gui.prefetch.CasePreparer`), so
"next" is only drawing; every facade call (worklist, opening a case, listing its films) runs
on the worker pool too, so the UI thread never waits for the database or a decoder.

Window geometry, the panels' sizes, the theme and the sync toggle are remembered in an INI
file beside the pyramid cache (local to the workstation, like the cache).

Run it on its own: ``python -m scorer.gui.reading [--screenshot PNG]`` builds a throw-away
database with three synthetic patients and opens their reader's worklist.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QByteArray, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QFrame,
    QHeaderView,
    QLabel,
    QMainWindow,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from scorer.gui.case_view import CaseView
from scorer.gui.prefetch import CasePreparer, PreparedCase
from scorer.gui.tasks import run_in_background
from scorer.gui.theme import apply_theme

LAYOUT_FILE = "gui-layout.ini"
WORKLIST_WIDTH = 290
SCORING_WIDTH = 250
MIN_CASE_VIEW_WIDTH = 400
WORKLIST_COLUMNS = ("Case", "Progress", "Status")


class ReadingFacade(Protocol):
    """What the reading window needs of ``scorer.workspace.Workspace``."""

    @property
    def cache_dir(self) -> Path: ...

    def worklist(self, s: Any, trial: str) -> list[dict[str, Any]]: ...

    def open_case(self, s: Any, case_code: str) -> dict[str, Any]: ...

    def case_images(self, s: Any, case_code: str) -> dict[str, list[dict[str, Any]]]: ...


def layout_settings(folder: str | os.PathLike[str]) -> QSettings:
    """The INI file in ``folder`` that remembers window layout and view options."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    return QSettings(str(Path(folder) / LAYOUT_FILE), QSettings.Format.IniFormat)


class ReadingWindow(QMainWindow):
    """A reader's session: worklist, the current case's films, and (next) the scoring grid.

    Signals: ``caseShown(code)`` when a case's films are on screen, ``worklistLoaded(count)``.
    """

    caseShown = Signal(str)
    worklistLoaded = Signal(int)

    def __init__(
        self,
        workspace: ReadingFacade,
        session: Any,
        trial: str,
        *,
        settings: QSettings | None = None,
        preparer: CasePreparer | None = None,
        prefetch: bool = True,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("readingWindow")
        self.setWindowTitle("scorer — reading")
        self._ws = workspace
        self._session = session
        self._trial = trial
        self.settings = settings or layout_settings(Path(workspace.cache_dir).parent)
        self.preparer = preparer or CasePreparer(
            lambda code: workspace.case_images(session, code),
            cache_dir=workspace.cache_dir,
            parent=self,
        )
        self.prefetch = prefetch
        self.rows: list[dict[str, Any]] = []
        self.index = -1
        self.opened: dict[str, dict[str, Any]] = {}  # case code -> open_case's answer
        self._shown_once = False

        self.case_view = CaseView(self)
        self.case_view.caseShown.connect(self.caseShown)
        self.worklist_table = self._make_worklist()
        self.scoring_panel = self._make_scoring_panel()
        self.worklist_panel = self._panel("Worklist", self.worklist_table)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("readingSplitter")
        self.splitter.addWidget(self.worklist_panel)
        self.splitter.addWidget(self.case_view)
        self.splitter.addWidget(self.scoring_panel)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setCollapsible(1, False)
        self.splitter.setSizes([WORKLIST_WIDTH, 1000, SCORING_WIDTH])
        self.setCentralWidget(self.splitter)

        self.position_label = QLabel("", self)
        self.position_label.setObjectName("casePosition")
        self._make_actions()
        self.statusBar().showMessage("Loading the worklist…")
        self.restore_layout()
        self.load_worklist()

    # ------------------------------------------------------------------ building

    def _panel(self, title: str, body: QWidget) -> QWidget:
        panel = QFrame(self)
        panel.setObjectName(f"{title.lower()}Panel")
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        heading = QLabel(title, panel)
        heading.setObjectName("panelTitle")
        layout.addWidget(heading)
        layout.addWidget(body, 1)
        panel.setMinimumWidth(150)
        return panel

    def _make_worklist(self) -> QTableWidget:
        table = QTableWidget(0, len(WORKLIST_COLUMNS), self)
        table.setObjectName("worklist")
        table.setHorizontalHeaderLabels(list(WORKLIST_COLUMNS))
        table.verticalHeader().hide()
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setAlternatingRowColors(True)
        table.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        table.cellClicked.connect(lambda row, _col: self.open_index(row))
        return table

    def _make_scoring_panel(self) -> QWidget:
        body = QLabel("The scoring grid comes here.", self)
        body.setObjectName("hint")
        body.setWordWrap(True)
        body.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        return self._panel("Scores", body)

    def _make_actions(self) -> None:
        tools = self.addToolBar("Case")
        tools.setObjectName("caseNavigation")
        tools.setMovable(False)
        self.previous_action = QAction("◀ Previous", self)
        self.previous_action.setShortcut(QKeySequence(Qt.Key.Key_PageUp))
        self.previous_action.setToolTip("Previous case (PageUp)")
        self.previous_action.triggered.connect(self.previous_case)
        self.next_action = QAction("Next ▶", self)
        self.next_action.setShortcut(QKeySequence(Qt.Key.Key_PageDown))
        self.next_action.setToolTip("Next case (PageDown)")
        self.next_action.triggered.connect(self.next_case)
        for action in (self.previous_action, self.next_action):
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            tools.addAction(action)
        tools.addSeparator()
        tools.addWidget(self.position_label)

        case_menu = self.menuBar().addMenu("&Case")
        case_menu.addAction(self.previous_action)
        case_menu.addAction(self.next_action)
        view_menu = self.menuBar().addMenu("&View")
        self.worklist_action = QAction("Worklist", self, checkable=True, checked=True)
        self.worklist_action.toggled.connect(self.worklist_panel.setVisible)
        view_menu.addAction(self.worklist_action)
        self.light_action = QAction("Light theme", self, checkable=True)
        self.light_action.toggled.connect(self._set_light)
        view_menu.addAction(self.light_action)

    def _set_light(self, on: bool) -> None:
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, "light" if on else "dark")
        self.settings.setValue("ui/theme", "light" if on else "dark")

    # ------------------------------------------------------------------ layout memory

    def restore_layout(self) -> None:
        """Put back the window's geometry, panel sizes and options from the last session."""
        geometry = self.settings.value("reading/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1500, 900)
        state = self.settings.value("reading/state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        self._panels_restored = False  # the panels' sizes are put back once shown
        self.worklist_action.setChecked(_flag(self.settings.value("reading/worklist", True)))
        self.case_view.set_sync(_flag(self.settings.value("case/sync", False)))
        self.light_action.setChecked(self.settings.value("ui/theme", "dark") == "light")

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._shown_once:
            # Panel sizes restored at the window's final size come back exactly.
            self._shown_once = True
            splitter = self.settings.value("reading/splitter")
            if isinstance(splitter, QByteArray) and self.splitter.restoreState(splitter):
                self._panels_restored = True

    def save_layout(self) -> None:
        """Remember the window's geometry, panel sizes and options."""
        self.settings.setValue("reading/geometry", self.saveGeometry())
        self.settings.setValue("reading/state", self.saveState())
        self.settings.setValue("reading/splitter", self.splitter.saveState())
        self.settings.setValue("reading/worklist", self.worklist_action.isChecked())
        self.settings.setValue("case/sync", self.case_view.sync)
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_layout()
        super().closeEvent(event)

    # ------------------------------------------------------------------ worklist

    def load_worklist(self) -> None:
        """Fetch the reader's worklist (on a worker thread) and open the first unsigned case."""
        run_in_background(
            self._ws.worklist,
            self._session,
            self._trial,
            done=self._worklist_loaded,
            failed=self._failed,
        )

    def _worklist_loaded(self, rows: list[dict[str, Any]]) -> None:
        self.rows = [
            {"code": r["code"], "progress": r["progress"], "status": r["status"]} for r in rows
        ]
        table = self.worklist_table
        table.setRowCount(len(self.rows))
        for index, row in enumerate(self.rows):
            for column, key in enumerate(("code", "progress", "status")):
                table.setItem(index, column, QTableWidgetItem(str(row[key])))
        self._fit_worklist()
        self.statusBar().showMessage(f"{len(self.rows)} cases", 4000)
        self.worklistLoaded.emit(len(self.rows))
        if not self.rows:
            self.case_view.clear("Your worklist is empty")
            return
        first = next((i for i, r in enumerate(self.rows) if r["status"] != "signed"), 0)
        self.open_index(first)

    def _fit_worklist(self) -> None:
        """Widen the worklist panel, at the case view's expense, until its columns fit
        (unless the reader has sized the panels in an earlier session)."""
        if self._panels_restored:
            return
        table = self.worklist_table
        header = table.horizontalHeader()
        columns = sum(
            max(table.sizeHintForColumn(c), header.sectionSizeHint(c))
            for c in range(table.columnCount())
        )
        scroll = table.verticalScrollBar().sizeHint().width()
        layout = self.worklist_panel.layout()
        margins = (
            layout.contentsMargins().left() + layout.contentsMargins().right() if layout else 0
        )
        needed = columns + scroll + 2 * table.frameWidth() + margins
        sizes = self.splitter.sizes()
        if not self.worklist_panel.isVisible() or sizes[0] >= needed or sizes[0] == 0:
            return
        grow = min(needed - sizes[0], max(0, sizes[1] - MIN_CASE_VIEW_WIDTH))
        self.splitter.setSizes([sizes[0] + grow, sizes[1] - grow, *sizes[2:]])

    # ------------------------------------------------------------------ cases

    @property
    def current_code(self) -> str | None:
        return self.rows[self.index]["code"] if 0 <= self.index < len(self.rows) else None

    def next_case(self) -> None:
        if self.index + 1 < len(self.rows):
            self.open_index(self.index + 1)

    def previous_case(self) -> None:
        if self.index > 0:
            self.open_index(self.index - 1)

    def open_index(self, index: int) -> None:
        """Show case ``index`` of the worklist: at once when prepared, else when it is."""
        if not 0 <= index < len(self.rows) or index == self.index:
            return
        self.index = index
        code = self.rows[index]["code"]
        self.worklist_table.selectRow(index)
        self.position_label.setText(f"Case {self.rows[index]['progress']}")
        self.previous_action.setEnabled(index > 0)
        self.next_action.setEnabled(index + 1 < len(self.rows))
        if not self.preparer.is_ready(code):
            self.case_view.show_loading()
        self.preparer.request(code, self._prepared, self._case_failed)
        # Opening starts the reads and logs that the reader saw the case: only for the case
        # actually shown, never for one merely prepared.
        run_in_background(
            self._ws.open_case, self._session, code, done=self._opened, failed=self._failed
        )

    def _prepared(self, case: PreparedCase) -> None:
        if case.code != self.current_code:
            return  # the reader has moved on
        self.case_view.show_case(case)
        if self.prefetch and self.index + 1 < len(self.rows):
            self.preparer.prepare(self.rows[self.index + 1]["code"])

    def _opened(self, answer: dict[str, Any]) -> None:
        code = str(answer.get("code", ""))
        self.opened[code] = answer
        for index, row in enumerate(self.rows):
            if row["code"] == code and "status" in answer:
                row["status"] = answer["status"]
                item = self.worklist_table.item(index, 2)
                if item is not None:
                    item.setText(str(answer["status"]))

    def _case_failed(self, message: str) -> None:
        self.case_view.clear("This case cannot be shown")
        self.statusBar().showMessage(f"This case cannot be shown: {message}")

    def _failed(self, exc: BaseException) -> None:
        self.statusBar().showMessage(str(exc) or type(exc).__name__)


def _flag(value: object) -> bool:
    """A boolean from QSettings (INI files give back the strings "true" and "false")."""
    if isinstance(value, str):
        return value.lower() in ("true", "1", "yes")
    return bool(value)


def _main(argv: Sequence[str] | None = None) -> int:
    from scorer.gui.preview import (
        preview_application,
        preview_arguments,
        run_preview,
        save_when_ready,
        temporary_folder,
        window_size,
    )
    from scorer.gui.sample_case import SampleReading, build_sample_workspace

    args = preview_arguments("A reader's session on a throw-away synthetic trial.", argv)
    app = preview_application(args.theme)
    folder = temporary_folder("scorer-reading-")
    splash = QLabel("Making a synthetic trial (three patients, three visits)…")
    splash.setAlignment(Qt.AlignmentFlag.AlignCenter)
    splash.resize(520, 120)
    splash.show()
    windows: list[ReadingWindow] = []

    def ready(sample: SampleReading) -> None:
        settings = layout_settings(folder / "data")
        settings.setValue("ui/theme", args.theme)
        window = ReadingWindow(sample.workspace, sample.session, sample.trial, settings=settings)
        window.resize(*window_size(args.size))
        window.show()
        splash.close()
        windows.append(window)
        if args.screenshot:
            save_when_ready(window, args.screenshot, lambda: window.case_view.case is not None)

    def failed(exc: BaseException) -> None:
        splash.setText(f"Could not make the synthetic trial: {exc}")

    run_in_background(build_sample_workspace, folder / "trial", done=ready, failed=failed)
    return run_preview(app)


if __name__ == "__main__":
    sys.exit(_main())
