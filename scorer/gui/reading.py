"""The reading window: a reader's worklist, the case on screen and its scoring grid.

:class:`ReadingWindow` lists the reader's worklist (case code, "n of N", status: nothing
else) beside the :class:`~scorer.gui.case_view.CaseView` and the
:class:`~scorer.gui.scoring_grid.ScoringGrid`. ``PageDown`` / ``PageUp`` go to the next /
previous case; ``Ctrl+Return`` signs the case once every area of every visit is entered;
a signed case is read-only until reopened with a reason. While a case is on screen the next
one is prepared on a worker thread (:class:`~scorer.gui.prefetch.CasePreparer`), so "next" is
only drawing; every facade call (worklist, opening a case, its films and stored scores,
signing) runs on the worker pool, and every score goes through the window's single
:class:`~scorer.gui.score_writer.ScoreWriter`, so the UI thread never waits for the database
or a decoder and nothing acknowledged is lost.

Keys typed in the grid that the grid does not use (``W``, ``I``, ``F``, ``L``, ``M``, ``H``,
``R``, ``+``, ``-``) go to the film under the cursor's visit, so a reader can window, zoom and
measure without leaving the keyboard; ``S`` switches synchronised zoom and pan on or off. The
films follow the grid: moving to a foot area shows the feet, the visit being scored is the
highlighted pane (clicking another visit's film moves the grid's cursor to that visit), and
the joint map is drawn with the sides that visit's film shows. The Case menu also has "Flag
to coordinator…" (``Ctrl+F``), Lock (``Ctrl+L``; the dialog says the reader locked it), Log
out (back to the log-in) and Quit (``Ctrl+Q``).

A session idle for the facade's inactivity limit is locked: the films and scores are hidden
and the password unlocks it (entries typed before stay queued and are written after).

Window geometry, the panels' sizes, the theme and the sync toggle are remembered in an INI
file beside the pyramid cache (local to the workstation, like the cache).

Run it on its own: ``python -m scorer.gui.reading [--screenshot PNG]`` builds a throw-away
database with three synthetic patients and opens their reader's worklist.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from argparse import ArgumentParser, Namespace
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QByteArray, QEvent, QObject, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeyEvent, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QFrame,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from scorer.gui.case_view import CaseView
from scorer.gui.login import UnlockDialog
from scorer.gui.prefetch import CasePreparer, PreparedCase
from scorer.gui.preview import Preview, run_preview
from scorer.gui.score_writer import ScoreWriter
from scorer.gui.scoring_grid import CaseScores, GridModel, ScoringGrid, load_case
from scorer.gui.settings import LAYOUT_FILE, layout_settings  # noqa: F401  (re-exported)
from scorer.gui.signing import FeedbackDialog, ReopenDialog, SignDialog
from scorer.gui.tasks import KeptTasks, run_in_background
from scorer.gui.theme import apply_theme

WORKLIST_WIDTH = 230
SCORING_WIDTH = 430
MIN_CASE_VIEW_WIDTH = 360
WORKLIST_COLUMNS = ("Case", "Progress", "Status")
#: Viewer keys a reader may type while the grid has the focus.
VIEWER_KEYS = frozenset(
    {
        Qt.Key.Key_W,
        Qt.Key.Key_I,
        Qt.Key.Key_F,
        Qt.Key.Key_L,
        Qt.Key.Key_M,
        Qt.Key.Key_H,
        Qt.Key.Key_R,
        Qt.Key.Key_Plus,
        Qt.Key.Key_Equal,
        Qt.Key.Key_Minus,
    }
)


class ReadingFacade(Protocol):
    """What the reading window needs of ``scorer.workspace.Workspace``."""

    @property
    def cache_dir(self) -> Path: ...

    def worklist(self, s: Any, trial: str) -> list[dict[str, Any]]: ...

    def open_case(self, s: Any, case_code: str) -> dict[str, Any]: ...

    def case_images(self, s: Any, case_code: str) -> dict[str, list[dict[str, Any]]]: ...

    def get_read(self, s: Any, code: str) -> Any: ...

    def sign_case(
        self, s: Any, case_code: str, password: str, username: str | None = None
    ) -> list[str]: ...

    def reopen_case(self, s: Any, case_code: str, reason: str) -> None: ...

    def unlock(self, s: Any, password: str) -> None: ...

    def lock(self, s: Any) -> None: ...


class ReadingWindow(QMainWindow):
    """A reader's session: worklist, the current case's films and its scoring grid.

    Signals: ``caseShown(code)`` when a case's films are on screen, ``worklistLoaded(count)``,
    ``gridShown(code)`` when a case's stored scores are in the grid, ``caseSigned(code)``,
    ``caseReopened(code)``, ``sessionLocked()`` and ``sessionUnlocked()``, ``loggedOut()``.
    """

    caseShown = Signal(str)
    worklistLoaded = Signal(int)
    gridShown = Signal(str)
    caseSigned = Signal(str)
    caseReopened = Signal(str)
    sessionLocked = Signal()
    sessionUnlocked = Signal()
    loggedOut = Signal()

    def __init__(
        self,
        workspace: ReadingFacade,
        session: Any,
        trial: str,
        *,
        settings: QSettings | None = None,
        preparer: CasePreparer | None = None,
        prefetch: bool = True,
        writer: ScoreWriter | None = None,
        inactivity_minutes: float | None = None,
        logout_on_close: bool = False,
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
        self.logout_on_close = logout_on_close
        self.writer = writer or ScoreWriter(workspace, session, self)  # type: ignore[arg-type]
        self.writer.sessionLocked.connect(lambda _m: self.lock_session(server_side=True))
        self.tasks = KeptTasks()
        self.rows: list[dict[str, Any]] = []
        self.index = -1
        self.opened: dict[str, dict[str, Any]] = {}  # case code -> open_case's answer
        self.models: dict[str, GridModel] = {}  # case code -> its scores on screen
        self.grid: ScoringGrid | None = None
        self.sign_dialog: SignDialog | None = None
        self.reopen_dialog: ReopenDialog | None = None
        self._server_locked = threading.Event()  # set once a lock has reached the facade
        self._server_locked.set()
        self.unlock_dialog: UnlockDialog | None = None
        self.feedback_dialog: FeedbackDialog | None = None
        self.locked = False
        self._shown_once = False
        self._case_since: float | None = None

        self.case_view = CaseView(self)
        self.case_view.caseShown.connect(self.caseShown)
        self.case_view.caseShown.connect(lambda _code: self._update_map_sides())
        self.case_view.pageChanged.connect(lambda _title: self._update_map_sides())
        self.case_view.viewChanged.connect(self._film_view_changed)
        self.case_view.activeChanged.connect(self._pane_activated)
        self.worklist_table = self._make_worklist()
        self.scoring_stack = QStackedWidget(self)
        self.scoring_stack.setObjectName("scoringStack")
        self.scoring_hint = QLabel("Open a case from the worklist.", self)
        self.scoring_hint.setObjectName("hint")
        self.scoring_hint.setWordWrap(True)
        self.scoring_hint.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.scoring_stack.addWidget(self.scoring_hint)
        self.scoring_panel = self._panel("Scores", self.scoring_stack)
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

        # Inactivity: any key or click counts as activity; the facade's limit applies.
        if inactivity_minutes is None:
            inactivity_minutes = float(
                getattr(getattr(workspace, "settings", None), "inactivity_minutes", 15.0)
            )
        self.inactivity_s = inactivity_minutes * 60.0
        self._last_input = time.monotonic()
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)
        self._idle_timer = QTimer(self)
        self._idle_timer.setInterval(max(250, min(30_000, int(self.inactivity_s * 1000 / 4))))
        self._idle_timer.timeout.connect(self._check_idle)
        self._idle_timer.start()
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
        self.sign_action = QAction("Sign case…", self)
        self.sign_action.setObjectName("signCase")
        self.sign_action.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
        self.sign_action.setToolTip(
            "Sign this case with your password once every area of every visit is scored or "
            "marked not assessable (Ctrl+Enter)"
        )
        self.sign_action.triggered.connect(self.ask_sign)
        self.sign_action.setEnabled(False)
        self.reopen_action = QAction("Reopen…", self)
        self.reopen_action.setObjectName("reopenCase")
        self.reopen_action.setToolTip("Reopen this signed case to change it, with a reason")
        self.reopen_action.triggered.connect(self.ask_reopen)
        self.reopen_action.setEnabled(False)
        self.lock_action = QAction("Lock", self)
        self.lock_action.setShortcut(QKeySequence("Ctrl+L"))
        self.lock_action.setToolTip("Lock the session now (Ctrl+L); your password unlocks it")
        self.lock_action.triggered.connect(lambda: self.lock_session(by_user=True))
        self.flag_action = QAction("Flag to coordinator…", self)
        self.flag_action.setObjectName("flagCase")
        self.flag_action.setShortcut(QKeySequence("Ctrl+F"))
        self.flag_action.setToolTip(
            'Send the coordinator a message about this case, e.g. "visit B may be another '
            'patient" (Ctrl+F)'
        )
        self.flag_action.triggered.connect(self.ask_flag)
        self.flag_action.setEnabled(False)
        self.logout_action = QAction("Log out", self)
        self.logout_action.setObjectName("logOut")
        self.logout_action.setToolTip("Save what is typed, end the session and show the log-in")
        self.logout_action.triggered.connect(self.ask_log_out)
        self.quit_action = QAction("Quit", self)
        self.quit_action.setObjectName("quit")
        self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        self.quit_action.setToolTip("Save what is typed, end the session and quit (Ctrl+Q)")
        self.quit_action.triggered.connect(self.close)
        for action in (
            self.previous_action,
            self.next_action,
            self.sign_action,
            self.reopen_action,
            self.lock_action,
            self.flag_action,
            self.quit_action,
        ):
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            self.addAction(action)
        tools.addAction(self.previous_action)
        tools.addAction(self.next_action)
        tools.addSeparator()
        tools.addWidget(self.position_label)
        tools.addSeparator()
        tools.addAction(self.sign_action)
        tools.addAction(self.reopen_action)
        self.case_state_label = QLabel("", self)
        self.case_state_label.setObjectName("caseState")
        tools.addWidget(self.case_state_label)

        case_menu = self.menuBar().addMenu("&Case")
        for action in (self.previous_action, self.next_action):
            case_menu.addAction(action)
        case_menu.addSeparator()
        case_menu.addAction(self.sign_action)
        case_menu.addAction(self.reopen_action)
        case_menu.addAction(self.flag_action)
        case_menu.addSeparator()
        case_menu.addAction(self.lock_action)
        case_menu.addAction(self.logout_action)
        case_menu.addAction(self.quit_action)
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
        if not self.finish_writing(ask=True):
            event.ignore()
            return
        self.save_layout()
        self._idle_timer.stop()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
        self.writer.stop(5.0)
        self.log_time(wait=True)
        logout = getattr(self._ws, "logout", None)
        if self.logout_on_close and logout is not None and not self.locked:
            from scorer.workspace import ScorerError

            with contextlib.suppress(ScorerError):  # the session may have ended already
                logout(self._session)
        super().closeEvent(event)

    def finish_writing(self, ask: bool = False, timeout_s: float = 10.0) -> bool:
        """Write the note being typed and wait for every queued entry. When some cannot be
        saved, ``ask`` lets the reader keep the window open (True: close anyway)."""
        if self.grid is not None:
            self.grid.commit_note()
        if self.locked:
            waiting = self.writer.pending_count
        elif self.writer.flush(timeout_s):
            waiting = sum(m.failed for m in self.models.values())
        else:
            waiting = self.writer.pending_count
        if not waiting or not ask:
            return not waiting
        answer = QMessageBox.warning(
            self,
            "Entries not saved",
            f"{waiting} entr{'y is' if waiting == 1 else 'ies are'} not saved yet. Close "
            "anyway and lose them?",
            QMessageBox.StandardButton.Close | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Close

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
        # A little slack: the sections' own padding is not in their size hints.
        needed = columns + scroll + 2 * table.frameWidth() + margins + 4 * table.columnCount()
        sizes = self.splitter.sizes()
        if not self.worklist_panel.isVisible() or sizes[0] >= needed or sizes[0] == 0:
            return
        grow = min(needed - sizes[0], max(0, sizes[1] - MIN_CASE_VIEW_WIDTH))
        self.splitter.setSizes([sizes[0] + grow, sizes[1] - grow, *sizes[2:]])

    def _set_row_status(self, code: str, status: str) -> None:
        for index, row in enumerate(self.rows):
            if row["code"] == code:
                row["status"] = status
                item = self.worklist_table.item(index, 2)
                if item is not None:
                    item.setText(status)

    # ------------------------------------------------------------------ cases

    @property
    def current_code(self) -> str | None:
        return self.rows[self.index]["code"] if 0 <= self.index < len(self.rows) else None

    @property
    def model(self) -> GridModel | None:
        """The scores of the case on screen (None until they are loaded)."""
        code = self.current_code
        return self.models.get(code) if code else None

    def next_case(self) -> None:
        if self.index + 1 < len(self.rows):
            self.open_index(self.index + 1)

    def previous_case(self) -> None:
        if self.index > 0:
            self.open_index(self.index - 1)

    def next_unsigned(self) -> None:
        """After signing: the next case not yet signed (after this one, then from the top)."""
        n = len(self.rows)
        for step in range(1, n + 1):
            i = (self.index + step) % n
            if self.rows[i]["status"] != "signed":
                self.open_index(i)
                return
        self.statusBar().showMessage("Every case of your worklist is signed. Thank you.")

    def open_index(self, index: int) -> None:
        """Show case ``index`` of the worklist: at once when prepared, else when it is."""
        if self.locked or not 0 <= index < len(self.rows) or index == self.index:
            return
        if self.grid is not None:
            self.grid.commit_note()
        self.log_time()
        self.index = index
        code = self.rows[index]["code"]
        self._case_since = time.monotonic()
        self.worklist_table.selectRow(index)
        self.position_label.setText(f"Case {self.rows[index]['progress']}")
        self.previous_action.setEnabled(index > 0)
        self.next_action.setEnabled(index + 1 < len(self.rows))
        if not self.preparer.is_ready(code):
            self.case_view.show_loading()
        self.preparer.request(code, self._prepared, self._case_failed)
        if code in self.models:
            self._show_model(self.models[code])
        else:
            self.scoring_hint.setText("Loading the scores…")
            self.scoring_stack.setCurrentWidget(self.scoring_hint)
            self._update_case_actions()
            # Opening starts the reads and logs that the reader saw the case: only for the
            # case actually shown, never for one merely prepared.
            run_in_background(
                self._open_and_load, code, done=self._case_loaded, failed=self._failed
            )

    def log_time(self, wait: bool = False) -> None:
        """Log the seconds the case on screen was open and each film was shown (the event
        log the coordinator's progress and the monitor's sessions add up): when leaving it (on
        a worker), or closing the window (``wait``: done before the window goes)."""
        events = self._time_events()
        log = getattr(self._ws, "log_events", None)
        if not events or log is None or (wait and self.locked):
            return
        if not wait:
            self.tasks.run(log, self._session, events, self._trial)
            return
        from scorer.workspace import ScorerError

        with contextlib.suppress(ScorerError):
            log(self._session, events, self._trial)

    def _time_events(self) -> list[tuple[str, str, dict[str, Any] | None]]:
        """The case.closed and image.viewed events of the case on screen, since it was shown
        (the clocks restart)."""
        code, since = self.current_code, self._case_since
        self._case_since = None
        films = self.case_view.film_clock.take()
        if code is None or since is None:
            return []
        events: list[tuple[str, str, dict[str, Any] | None]] = [
            ("case.closed", code, {"seconds": round(time.monotonic() - since, 1)})
        ]
        events += [
            ("image.viewed", image, {"seconds": seconds, "case_code": code})
            for image, seconds in films.items()
            if seconds > 0
        ]
        return events

    def _open_and_load(self, code: str) -> tuple[dict[str, Any], CaseScores]:
        """On a worker thread: open the case (its reads start on first opening) and fetch
        its stored scores, so the grid resumes where the reader stopped."""
        answer = self._ws.open_case(self._session, code)
        return answer, load_case(self._ws, self._session, answer)

    def _prepared(self, case: PreparedCase) -> None:
        if case.code != self.current_code:
            return  # the reader has moved on
        self.case_view.show_case(case)
        if self.model is not None:
            self._follow_grid(self.model.current_area, self.model.current_letter)
        if self.grid is not None and self.model is not None and not self.locked:
            # Scoring is what the keyboard is for: the films appearing do not take it away.
            self.grid.table.setFocus()
        if self.prefetch and self.index + 1 < len(self.rows):
            self.preparer.prepare(self.rows[self.index + 1]["code"])

    def _case_loaded(self, result: tuple[dict[str, Any], CaseScores]) -> None:
        answer, scores = result
        code = str(answer.get("code", ""))
        self.opened[code] = answer
        if "status" in answer:
            self._set_row_status(code, str(answer["status"]))
        if code not in self.models:
            model = GridModel.from_case(scores, submit=self.writer.submit)
            model.subscribe(lambda event: self._model_event(model, event.kind))
            self.models[code] = model
        if code == self.current_code:
            self._show_model(self.models[code])

    def _show_model(self, model: GridModel) -> None:
        if self.grid is None:
            self.grid = ScoringGrid(model, self.writer, self)
            self.grid.currentChanged.connect(self._follow_grid)
            self.scoring_stack.addWidget(self.grid)
        elif self.grid.model is not model:
            self.grid.set_model(model)
        self.scoring_stack.setCurrentWidget(self.grid)
        self._update_case_actions()
        self._follow_grid(model.current_area, model.current_letter)
        if not self.locked:
            self.grid.table.setFocus()
        self.gridShown.emit(model.case_code)

    def _model_event(self, model: GridModel, kind: str) -> None:
        if model is self.model and kind in ("cells", "saved", "save", "status"):
            self._update_case_actions()

    def _follow_grid(self, area: Any, letter: str) -> None:
        """The films follow the grid: a foot area shows the feet, and the visit being scored
        is the one highlighted, the one the viewer's tools act on and the one whose film
        the joint map's sides follow."""
        if self.case_view.case is not None and area is not None:
            self.case_view.show_region(area.region)
            self.case_view.set_active(letter)
        self._update_map_sides()

    def _pane_activated(self, letter: str) -> None:
        """A click on another visit's film (or its tab) makes it the visit being scored: the
        grid's cursor goes to the same area in that visit, so the highlighted pane and the
        grid's column never disagree."""
        m = self.model
        if m is not None and letter in m.letters and letter != m.current_letter:
            m.set_current(m.row, m.letters.index(letter))
        self._update_map_sides()

    def _film_view_changed(self, letter: str) -> None:
        if self.model is not None and letter == self.model.current_letter:
            self._update_map_sides()

    def _update_map_sides(self) -> None:
        """Draw the joint map with the sides of the film being scored as it is shown now
        (Patient Orientation, then the reader's flip and rotation; the convention when the
        header is silent or no film is shown)."""
        if self.grid is None:
            return
        m = self.model
        letter = m.current_letter if m is not None else ""
        panel = self.case_view.panels.get(letter)
        if panel is None or panel.model.image is None:
            self.grid.joint_map.set_right_on_left(True)
            return
        self.grid.joint_map.set_right_on_left(panel.model.patient_right_on_left())

    def case_state(self) -> str:
        """``signed``, ``complete`` (ready to sign), ``incomplete`` or ``none``."""
        m = self.model
        if m is None:
            return "none"
        if all(m.status[letter] == "signed" for letter in m.letters):
            return "signed"
        left = sum(len(m.unscored(letter)) for letter in m.letters)
        if left or m.pending or m.failed:
            return "incomplete"
        return "complete"

    def _update_case_actions(self) -> None:
        m = self.model
        state = self.case_state()
        self.sign_action.setEnabled(state == "complete" and not self.locked)
        self.reopen_action.setEnabled(state == "signed" and not self.locked)
        self.flag_action.setEnabled(m is not None and self.grid is not None and not self.locked)
        if m is None:
            self.case_state_label.setText("")
            return
        left = sum(len(m.unscored(letter)) for letter in m.letters)
        if state == "signed":
            text = "Signed: read-only"
        elif left:
            text = f"{left} area{'s' if left != 1 else ''} left"
        elif m.pending or m.failed:
            text = "Saving…" if not m.failed else "Some entries are not saved"
        else:
            text = "Ready to sign (Ctrl+Enter)"
        self.case_state_label.setText(f"  {text}")

    # ------------------------------------------------------------------ signing

    def ask_sign(self) -> None:
        """Ask for the password (and the user ID at the session's first signature) and sign
        every visit of the case together."""
        m = self.model
        code = self.current_code
        if m is None or code is None:
            return
        if self.case_state() != "complete":
            self.statusBar().showMessage(
                "Sign when every area of every visit is scored or marked not assessable and saved."
            )
            return
        if self.grid is not None:
            self.grid.commit_note()
        if not self.writer.flush(10.0):
            self.statusBar().showMessage("Some entries are not saved yet; sign when they are.")
            return
        first = not bool(getattr(self._session, "signed_once", False))
        dialog = SignDialog(
            lambda user, pw: self._ws.sign_case(self._session, code, pw, username=user),
            str(getattr(self._session, "username", "")),
            str(getattr(self._session, "full_name", "")),
            len(m.letters),
            first_signature=first,
            parent=self,
        )
        self.sign_dialog = dialog
        dialog.accepted.connect(lambda: self._signed(code, m))
        dialog.open()

    def _signed(self, code: str, model: GridModel) -> None:
        for letter in model.letters:
            model.set_status(letter, "signed")
        self._set_row_status(code, "signed")
        self._update_case_actions()
        self.statusBar().showMessage(f"Case {code} signed.", 6000)
        self.caseSigned.emit(code)
        self._take_focus()
        feedback = getattr(self._ws, "calibration_feedback", None)
        if feedback is not None:
            # Training mode: a calibration case shows the reference after signing (any other
            # case answers "not found", and nothing is shown).
            self.tasks.run(feedback, self._session, code, done=self._show_feedback)
        if code == self.current_code:
            self.next_unsigned()

    def _show_feedback(self, feedback: dict[str, Any]) -> None:
        dialog = FeedbackDialog(feedback, self)
        self.feedback_dialog = dialog
        dialog.finished.connect(lambda _r: self._take_focus())
        dialog.open()

    def _take_focus(self) -> None:
        """After a dialog: the keyboard is the grid's again."""
        self.activateWindow()
        if self.grid is not None and not self.locked:
            self.grid.table.setFocus()

    def ask_reopen(self) -> None:
        m = self.model
        code = self.current_code
        if m is None or code is None or self.case_state() != "signed":
            return
        dialog = ReopenDialog(
            lambda reason: self._ws.reopen_case(self._session, code, reason), parent=self
        )
        self.reopen_dialog = dialog
        dialog.accepted.connect(lambda: self._reopened(code, m))
        dialog.open()

    def _reopened(self, code: str, model: GridModel) -> None:
        for letter in model.letters:
            model.set_status(letter, "in_progress")
        self._set_row_status(code, "in progress")
        self._update_case_actions()
        self.statusBar().showMessage(
            f"Case {code} reopened: its signatures are void; sign it again after the change.",
            8000,
        )
        self.caseReopened.emit(code)
        self._take_focus()

    # ------------------------------------------------------------------ keys and locking

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.KeyPress, QEvent.Type.MouseButtonPress, QEvent.Type.Wheel):
            self._last_input = time.monotonic()
        return bool(
            kind == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and self.grid is not None
            and watched is self.grid.table
            and self._forward_to_viewer(event)
        )

    def _forward_to_viewer(self, event: QKeyEvent) -> bool:
        """Viewer keys typed in the grid go to the film of the grid's visit; ``S`` switches
        the synchronised zoom and pan of the visits on or off, as in the case view."""
        if event.modifiers() & (
            Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
        ):
            return False
        if self.grid is not None and self.grid.reason_popup.isVisible():
            return False
        if event.key() == Qt.Key.Key_S:
            self.toggle_sync()
            return True
        if event.key() not in VIEWER_KEYS:
            return False
        letter = self.model.current_letter if self.model is not None else ""
        viewer = self.case_view.panels.get(letter) or self.case_view.active_viewer()
        if viewer is None:
            return False
        QApplication.sendEvent(viewer, QKeyEvent(event))
        return True

    def toggle_sync(self) -> None:
        """Zoom and pan every visit together, or each on its own again (``S``)."""
        on = not self.case_view.sync
        self.case_view.set_sync(on)
        self.statusBar().showMessage(
            "Zoom and pan synchronised across the visits (S)"
            if on
            else "Each visit zooms and pans on its own (S)",
            4000,
        )

    def ask_flag(self) -> None:
        """Flag to coordinator… (Ctrl+F): the grid's message dialog for this case."""
        if self.grid is not None and self.model is not None and not self.locked:
            self.grid.ask_flag()

    def ask_log_out(self) -> None:
        """Log out from the menu: write what is typed (asking when some cannot be), log the
        time on the case, end the session and show the log-in again."""
        if self.locked:
            return  # the unlock dialog's own "Log out" does it
        if not self.finish_writing(ask=True):
            return
        self.log_time(wait=True)
        self._end_session(wait_s=5.0)

    def _check_idle(self) -> None:
        if not self.locked and time.monotonic() - self._last_input > self.inactivity_s:
            self.lock_session()

    def lock_session(self, server_side: bool = False, by_user: bool = False) -> None:
        """Hide the films and scores and ask for the password. ``server_side``: the facade
        has locked the session already (an entry met the inactivity limit); ``by_user``:
        the reader locked it (``Ctrl+L``), which the dialog says instead of inactivity."""
        if self.locked:
            return
        events = [] if server_side else self._time_events()
        self._server_locked.clear()
        if server_side:
            self._server_locked.set()
        self.locked = True
        if self.grid is not None:
            self.grid.commit_note()
        if not server_side:
            # The time on the case is logged before the session locks, in one task (two
            # tasks could run in either order, and a locked session logs nothing).
            self.tasks.run(self._log_then_lock, events)
        self.splitter.hide()
        self.case_view.film_clock.pause(True)
        self._update_case_actions()
        for action in (self.previous_action, self.next_action):
            action.setEnabled(False)
        self.statusBar().showMessage("Session locked")
        dialog = UnlockDialog(
            self._unlock_after_lock,
            str(getattr(self._session, "username", "")),
            self,
            reason="You locked this session (Ctrl+L)." if by_user else "",
        )
        self.unlock_dialog = dialog
        dialog.accepted.connect(self._unlocked)
        dialog.rejected.connect(self.log_out)
        dialog.open()
        self.sessionLocked.emit()

    def _log_then_lock(self, events: list[tuple[str, str, dict[str, Any] | None]]) -> None:
        try:
            log = getattr(self._ws, "log_events", None)
            if events and log is not None:
                from scorer.workspace import ScorerError

                with contextlib.suppress(ScorerError):
                    log(self._session, events, self._trial)
            self._ws.lock(self._session)
        finally:
            self._server_locked.set()

    def _unlock_after_lock(self, password: str) -> Any:
        """On the dialog's worker: unlock only once the lock has reached the facade (else a
        quick unlock could be overtaken by the lock, leaving the session locked)."""
        self._server_locked.wait(30)
        return self._ws.unlock(self._session, password)

    def _unlocked(self) -> None:
        self.locked = False
        self._last_input = time.monotonic()
        self._case_since = time.monotonic()
        self.splitter.show()
        self.case_view.film_clock.pause(False)
        self.writer.resume()
        self.previous_action.setEnabled(self.index > 0)
        self.next_action.setEnabled(self.index + 1 < len(self.rows))
        self._update_case_actions()
        self.statusBar().showMessage("Unlocked", 3000)
        self._take_focus()
        self.sessionUnlocked.emit()

    def log_out(self) -> None:
        """End the session: entries still queued wait for nothing (the session is locked),
        so they are reported; then the window closes."""
        self.locked = True
        waiting = self.writer.pending_count
        if waiting:
            QMessageBox.warning(
                self,
                "Entries not saved",
                f"{waiting} entr{'y was' if waiting == 1 else 'ies were'} typed while the "
                "session was locked and could not be saved.",
            )
        self._end_session(wait_s=0.5)

    def _end_session(self, wait_s: float) -> None:
        """Log out at the facade (on a worker), close the window and say so (the
        workstation shows the log-in again)."""
        self.locked = True
        logout = getattr(self._ws, "logout", None)
        if logout is not None:
            self.tasks.run(logout, self._session)
        self.loggedOut.emit()
        self._idle_timer.stop()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
        self.save_layout()
        self.writer.stop(wait_s)
        self.hide()
        self.deleteLater()

    def _case_failed(self, message: str) -> None:
        self.case_view.clear("This case cannot be shown")
        self.statusBar().showMessage(f"This case cannot be shown: {message}")

    def _failed(self, exc: BaseException) -> None:
        from scorer.workspace import SessionLocked

        if isinstance(exc, SessionLocked):
            self.lock_session(server_side=True)
            return
        self.statusBar().showMessage(str(exc) or type(exc).__name__)
        if self.model is None:
            self.scoring_hint.setText(f"The scores cannot be loaded: {exc}")


def _flag(value: object) -> bool:
    """A boolean from QSettings (INI files give back the strings "true" and "false")."""
    if isinstance(value, str):
        return value.lower() in ("true", "1", "yes")
    return bool(value)


def _preview_build(folder: Path, args: Namespace) -> tuple[Any, Path]:
    """A synthetic trial with the first ``--signed`` cases scored (all 0) and signed."""
    from scorer.core.methods import get_method
    from scorer.core.reads import AreaScore
    from scorer.gui.sample_case import (
        SAMPLE_READER,
        SAMPLE_READER_PASSWORD,
        build_sample_workspace,
    )

    sample = build_sample_workspace(folder / "trial", patients=args.patients)
    ws, s = sample.workspace, sample.session
    zero = {d.area: AreaScore.scored(0) for d in get_method("svh").areas}
    for n, row in enumerate(ws.worklist(s, sample.trial)[: args.signed]):
        for code in ws.open_case(s, row["code"])["reads"].values():
            ws.set_scores(s, code, zero)
        first = n == 0
        ws.sign_case(
            s, row["code"], SAMPLE_READER_PASSWORD, username=SAMPLE_READER if first else None
        )
    return sample, folder / "data"


def _preview_window(built: tuple[Any, Path], args: Namespace) -> ReadingWindow:
    from scorer.gui.scoring_grid import _demo_typing

    sample, data = built
    settings = layout_settings(data)
    settings.setValue("ui/theme", args.theme)
    window = ReadingWindow(sample.workspace, sample.session, sample.trial, settings=settings)
    typed = {"done": args.typed == 0}

    def type_some(_code: str) -> None:
        if not typed["done"] and window.grid is not None:
            typed["done"] = True
            _demo_typing(window.grid, args.typed)
            window.grid.table.setFocus()

    window.gridShown.connect(type_some)
    if args.worklist_shot:
        shot = args.worklist_shot

        def grab_worklist() -> None:
            if _preview_ready(window, args):
                window.worklist_panel.grab().save(shot)
                print(f"saved {shot}")
            else:
                QTimer.singleShot(200, grab_worklist)

        QTimer.singleShot(500, grab_worklist)
    return window


def _preview_ready(window: ReadingWindow, args: Namespace) -> bool:
    """The case and its grid on screen, the ``--typed`` areas entered and saved."""
    grid = window.grid
    return (
        window.case_view.case is not None
        and grid is not None
        and (args.typed == 0 or bool(grid.model.undo_stack))
        and window.writer.pending_count == 0
    )


def _preview_options(parser: ArgumentParser) -> None:
    parser.add_argument("--patients", type=int, default=3)
    parser.add_argument(
        "--typed", type=int, default=0, help="areas entered in the case on screen, as a reader"
    )
    parser.add_argument(
        "--signed", type=int, default=0, help="cases scored (all 0) and signed beforehand"
    )
    parser.add_argument("--worklist-shot", metavar="PNG", help="also save the worklist panel")


PREVIEW = Preview(
    "reading",
    "A reader's session on a throw-away trial.",
    _preview_window,
    build=_preview_build,
    ready=_preview_ready,
    options=_preview_options,
    waiting="Making a synthetic trial (three visits per patient)…",
)


def _main(argv: Sequence[str] | None = None) -> int:
    return run_preview(PREVIEW, argv)


if __name__ == "__main__":
    sys.exit(_main())
