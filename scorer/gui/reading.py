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
measure without leaving the keyboard; ``S`` switches synchronised zoom and pan on or off, and
``V`` shows the visit being scored alone (``V`` again: every visit), ``J`` joint view (every
visit magnified on the joint being scored; ``[`` / ``]`` its field, ``P`` places a film's joints
with three clicks, saved through the facade's ``place_joints``). The
films follow the grid: moving to a foot area shows the feet, the visit being scored is the
highlighted pane (clicking another visit's film moves the grid's cursor to that visit), and
the joint map is drawn with the sides that visit's film shows. The Case menu also has "Flag
to coordinator…" (``Ctrl+F``), Lock (``Ctrl+L``; the dialog says the reader locked it), Log
out (back to the log-in) and Quit (``Ctrl+Q``).

A session idle for the facade's inactivity limit is locked: the films and scores are hidden
and the password unlocks it (entries typed before stay queued and are written after).

Window geometry, the panels' sizes, the worklist's and the sync toggle's state are remembered
per reader (under the user ID), the theme per workstation, in an INI file beside the pyramid
cache (local to the workstation, like the cache); a reader's first session opens maximised.

Run it on its own: ``python -m scorer.gui.reading [--screenshot PNG]`` builds a throw-away
database with three synthetic patients and opens their reader's worklist.
"""

from __future__ import annotations

import contextlib
import sys
from argparse import ArgumentParser, Namespace
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QShowEvent
from PySide6.QtWidgets import QMainWindow, QMessageBox, QSplitter, QWidget
from shiboken6 import isValid

from scorer.core.joints import JointPoint
from scorer.gui.case_actions import CaseActions, state_of_case
from scorer.gui.case_time import CaseTimeLog
from scorer.gui.case_view import CaseView
from scorer.gui.flag_answers import attach_flag_answers
from scorer.gui.grade_atlas import attach_grade_atlas
from scorer.gui.login import UnlockDialog
from scorer.gui.prefetch import CasePreparer, PreparedCase
from scorer.gui.preview import Preview, run_preview
from scorer.gui.reading_layout import ReadingLayout, join_image_tools
from scorer.gui.score_writer import ScoreWriter
from scorer.gui.scored_visit import ScoredVisitLink
from scorer.gui.scoring_grid import CaseScores, GridModel, ScoringGrid, load_case
from scorer.gui.session_lock import SessionLock
from scorer.gui.settings import LAYOUT_FILE, layout_settings  # noqa: F401  (re-exported)
from scorer.gui.side_panels import ScoresStack, TitledPanel
from scorer.gui.signing import FeedbackDialog, ReopenDialog, SignDialog
from scorer.gui.tasks import KeptTasks, run_in_background
from scorer.gui.window_session import CloseQuestion
from scorer.gui.worklist_table import (
    WORKLIST_COLUMNS,  # noqa: F401  (re-exported)
    ReaderWorklist,
    WorklistTable,
)
from scorer.workspace import CalibrationFeedback, OpenedCase

WORKLIST_WIDTH = 230
SCORING_WIDTH = 430
MIN_CASE_VIEW_WIDTH = 360


#: What the reading window holds: the workspace (its accounts, worklists, reading and images
#: services), or a test's stand-in with the same attributes.
ReadingFacade = Any


class ReadingWindow(QMainWindow):
    """A reader's session: worklist, the current case's films and its scoring grid.

    Signals: ``caseShown(code)`` when a case's films are on screen, ``worklistLoaded(count)``,
    ``gridShown(code)`` when a case's stored scores are in the grid, ``caseSigned(code)``,
    ``caseReopened(code)``, ``sessionLocked()`` and ``sessionUnlocked()``, ``loggedOut()``;
    ``sessionEnded(message)`` when a call finds the session ended by a change to the account
    (disabled, locked, its role or password changed at any workstation): the window then logs
    out with ``ended_because`` set to the message (the workstation shows it at the log-in).
    """

    caseShown = Signal(str)
    worklistLoaded = Signal(int)
    gridShown = Signal(str)
    caseSigned = Signal(str)
    caseReopened = Signal(str)
    sessionLocked = Signal()
    sessionUnlocked = Signal()
    loggedOut = Signal()
    sessionEnded = Signal(str)

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
        self.settings = settings or layout_settings(Path(workspace.images.cache_dir).parent)
        self.preparer = preparer or CasePreparer(
            lambda code: workspace.images.case_images(session, code),
            cache_dir=workspace.images.cache_dir,
            parent=self,
        )
        self.prefetch = prefetch
        self.logout_on_close = logout_on_close
        self.writer = writer or ScoreWriter(workspace.reading, session, self)
        self.writer.sessionLocked.connect(lambda _m: self.lock_session(server_side=True))
        self.writer.failed.connect(lambda _code, _area, message: self._if_ended(message))
        self.writer.unavailable.connect(self._server_away)
        self.writer.reconnected.connect(
            lambda: self.statusBar().showMessage("The server answers again: saving goes on.", 6000)
        )
        self.ended_because = ""
        self.tasks = KeptTasks()
        self.worklist = ReaderWorklist()
        self.opened: dict[str, OpenedCase] = {}  # case code -> open_case's answer
        self.models: dict[str, GridModel] = {}  # case code -> its scores on screen
        self.grid: ScoringGrid | None = None
        self.sign_dialog: SignDialog | None = None
        self.reopen_dialog: ReopenDialog | None = None
        self.unlock_dialog: UnlockDialog | None = None
        self.feedback_dialog: FeedbackDialog | None = None
        self.locked = False
        self._shown_once = False
        self.close_question = CloseQuestion(self, self.ask_log_out)  # the title bar's close

        self.case_view = CaseView(self)
        self.case_view.caseShown.connect(self.caseShown)
        self.case_view.joint_view.use_settings(self.settings)
        if getattr(getattr(workspace, "reading", None), "place_joints", None) is not None:
            self.case_view.joint_view.saver = partial(_place_joints, workspace, session)
        link = ScoredVisitLink(self.case_view, lambda: self.model, self.toggle_sync, self)
        self.visit_link = link
        self.time_log = CaseTimeLog(
            getattr(workspace, "reading", None), session, trial, self.case_view, self
        )
        self._build_panels()

        self.case_actions = actions = CaseActions(self, self)
        # The actions and labels keep the names they have always had on the window.
        self.position_label = actions.position_label
        self.case_state_label = actions.case_state_label
        self.previous_action, self.next_action = actions.previous_action, actions.next_action
        self.sign_action, self.reopen_action = actions.sign_action, actions.reopen_action
        self.lock_action, self.flag_action = actions.lock_action, actions.flag_action
        self.logout_action, self.quit_action = actions.logout_action, actions.quit_action
        self.worklist_action, self.light_action = actions.worklist_action, actions.light_action
        self.layout_memory = ReadingLayout(
            self.settings,
            self,
            self.splitter,
            self.case_view,
            self.worklist_action,
            self.light_action,
            username=str(getattr(session, "username", "")),
        )
        join_image_tools(self, self.case_view)
        self.worklist_action.toggled.connect(self.worklist_panel.setVisible)
        self.light_action.toggled.connect(self.layout_memory.set_light)
        self.grade_atlas = attach_grade_atlas(self)  # G: every grade of the area, drawn
        self.flag_answers = attach_flag_answers(self)  # the coordinator's answers, on the case
        self.statusBar().showMessage("Loading the worklist…")
        self.layout_memory.restore()

        # Inactivity: any key or click counts as activity; the facade's limit applies.
        self.session_lock = SessionLock(
            workspace, session, self.time_log, self.tasks, inactivity_minutes, self
        )
        self.session_lock.idle.connect(self.lock_session)
        self.load_worklist()

    def _build_panels(self) -> None:
        """The worklist, the case's films and the Scores panel side by side."""
        self.worklist_table = WorklistTable(self.worklist, self)
        self.worklist_table.cellClicked.connect(lambda row, _col: self.open_index(row))
        self.scoring_stack = ScoresStack(self)
        self.scoring_panel = TitledPanel("Scores", self.scoring_stack, self)
        self.worklist_panel = TitledPanel("Worklist", self.worklist_table, self)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("readingSplitter")
        self.splitter.addWidget(self.worklist_panel)
        self.splitter.addWidget(self.case_view)
        self.splitter.addWidget(self.scoring_panel)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setCollapsible(1, False)
        self.splitter.setSizes([WORKLIST_WIDTH, 1000, SCORING_WIDTH])
        self.setCentralWidget(self.splitter)

    # ------------------------------------------------------------------ layout memory

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._shown_once:
            self._shown_once = True
            self.layout_memory.restore_panels()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.finish_writing(ask=True):
            event.ignore()
            return
        self.layout_memory.save()
        self.session_lock.stop()
        self.writer.stop(5.0)
        self.log_time(wait=True)
        self.time_log.stop()
        logout = getattr(getattr(self._ws, "accounts", None), "logout", None)
        if self.logout_on_close and logout is not None and not self.locked:
            from scorer.workspace import ScorerError  # (not at start-up: the window's import)
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

    def _server_away(self, message: str) -> None:
        """The server did not answer a save: say so; the writer sends it again by itself."""
        waiting = self.writer.pending_count
        self.statusBar().showMessage(
            f"Not saved yet — {message}. Trying again; {waiting} "
            f"entr{'y' if waiting == 1 else 'ies'} waiting, nothing already saved is lost."
        )

    def load_worklist(self) -> None:
        """Fetch the reader's worklist (on a worker thread) and open the first unsigned case."""
        run_in_background(
            self._ws.worklists.worklist,
            self._session,
            self._trial,
            done=self._worklist_loaded,
            failed=self._failed,
        )

    def _worklist_loaded(self, rows: list[dict[str, Any]]) -> None:
        self.worklist.load(rows)
        self.worklist_table.show_rows()
        self._fit_worklist()
        self.statusBar().showMessage(f"{len(self.rows)} cases", 4000)
        self.worklistLoaded.emit(len(self.rows))
        if not self.rows:
            self.case_view.clear("Your worklist is empty")
            return
        self.open_index(self.worklist.first_unsigned())

    def _fit_worklist(self) -> None:
        """Widen the worklist panel, at the case view's expense, until its columns fit
        (unless the reader has sized the panels in an earlier session)."""
        if self.layout_memory.panels_restored:
            return
        needed = self.worklist_table.width_needed() + self.worklist_panel.side_margins()
        sizes = self.splitter.sizes()
        if not self.worklist_panel.isVisible() or sizes[0] >= needed or sizes[0] == 0:
            return
        grow = min(needed - sizes[0], max(0, sizes[1] - MIN_CASE_VIEW_WIDTH))
        self.splitter.setSizes([sizes[0] + grow, sizes[1] - grow, *sizes[2:]])

    def _set_row_status(self, code: str, status: str) -> None:
        self.worklist_table.show_status(self.worklist.set_status(code, status))

    # ------------------------------------------------------------------ cases

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The worklist's rows: case code, progress ("n of N") and status."""
        return self.worklist.rows

    @property
    def index(self) -> int:
        """The worklist row of the case on screen (-1 before one is opened)."""
        return self.worklist.index

    @property
    def current_code(self) -> str | None:
        return self.worklist.current_code

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
        index = self.worklist.next_unsigned()
        if index is not None:
            self.open_index(index)
            return
        self.statusBar().showMessage("Every case of your worklist is signed. Thank you.")

    def open_index(self, index: int) -> None:
        """Show case ``index`` of the worklist: at once when prepared, else when it is."""
        if self.locked or not 0 <= index < len(self.rows) or index == self.index:
            return
        if self.grid is not None:
            self.grid.commit_note()
        self.log_time()
        self.worklist.index = index
        code = self.rows[index]["code"]
        self.time_log.start()
        self.worklist_table.selectRow(index)
        self.case_actions.show_position(
            self.rows[index]["progress"], self.worklist.has_previous, self.worklist.has_next
        )
        if not self.preparer.is_ready(code):
            self.case_view.show_loading()
        self.preparer.request(code, self._prepared, self._case_failed)
        if code in self.models:
            self._show_model(self.models[code])
        else:
            self.scoring_stack.show_hint("Loading the scores…")
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
        self.time_log.log(self.current_code, wait=wait, locked=self.locked)

    def _open_and_load(self, code: str) -> tuple[OpenedCase, CaseScores]:
        """On a worker thread: open the case (its reads start on first opening) and fetch
        its stored scores, so the grid resumes where the reader stopped."""
        answer = self._ws.reading.open_case(self._session, code)
        return answer, load_case(self._ws.reading, self._session, answer)

    def _prepared(self, case: PreparedCase) -> None:
        if case.code != self.current_code:
            return  # the reader has moved on
        self.visit_link.show_case(case)
        if self.grid is not None and self.model is not None and not self.locked:
            # Scoring is what the keyboard is for: the films appearing do not take it away.
            self.grid.table.setFocus()
        if self.prefetch and self.index + 1 < len(self.rows):
            self.preparer.prepare(self.rows[self.index + 1]["code"])

    def _case_loaded(self, result: tuple[OpenedCase, CaseScores]) -> None:
        answer, scores = result
        code = answer.code
        self.opened[code] = answer
        self._set_row_status(code, answer.status)
        if code not in self.models:
            model = GridModel.from_case(scores, submit=self.writer.submit)
            model.subscribe(lambda event: self._model_event(model, event.kind))
            self.models[code] = model
        if code == self.current_code:
            self._show_model(self.models[code])

    def _show_model(self, model: GridModel) -> None:
        if self.grid is None:
            self.grid = ScoringGrid(model, self.writer, self)
            self.visit_link.attach(self.grid)
        elif self.grid.model is not model:
            self.grid.set_model(model)
        self.scoring_stack.show_widget(self.grid)
        self._update_case_actions()
        self.visit_link.follow_grid(model.current_area, model.current_letter)
        if not self.locked:
            self.grid.table.setFocus()
        self.gridShown.emit(model.case_code)

    def _model_event(self, model: GridModel, kind: str) -> None:
        if model is self.model and kind in ("cells", "saved", "save", "status"):
            self._update_case_actions()

    def case_state(self) -> str:
        """``signed``, ``complete`` (ready to sign), ``incomplete`` or ``none``."""
        return state_of_case(self.model)

    def _update_case_actions(self) -> None:
        self.case_actions.show_state(self.model, locked=self.locked, has_grid=self.grid is not None)

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
            lambda user, pw: self._ws.reading.sign_case(self._session, code, pw, username=user),
            str(getattr(self._session, "username", "")),
            str(getattr(self._session, "full_name", "")),
            len(m.letters),
            first_signature=first,
            parent=self,
        )
        self.sign_dialog = dialog
        self._watch(dialog)
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
        feedback = getattr(getattr(self._ws, "calibration", None), "calibration_feedback", None)
        if feedback is not None:
            # Training mode: a calibration case shows the reference after signing (any other
            # case answers "not found", and nothing is shown).
            self.tasks.run(feedback, self._session, code, done=self._show_feedback)
        if code == self.current_code:
            self.next_unsigned()

    def _show_feedback(self, feedback: CalibrationFeedback) -> None:
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
            lambda reason: self._ws.reading.reopen_case(self._session, code, reason), parent=self
        )
        self.reopen_dialog = dialog
        self._watch(dialog)
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

    @property
    def inactivity_s(self) -> float:
        """The seconds without a key or click after which the session locks."""
        return self.session_lock.inactivity_s

    @inactivity_s.setter
    def inactivity_s(self, seconds: float) -> None:
        self.session_lock.inactivity_s = seconds

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

    def lock_session(self, server_side: bool = False, by_user: bool = False) -> None:
        """Hide the films and scores and ask for the password. ``server_side``: the facade
        has locked the session already (an entry met the inactivity limit); ``by_user``:
        the reader locked it (``Ctrl+L``), which the dialog says instead of inactivity."""
        if self.locked:
            return
        events = [] if server_side else self.time_log.take(self.current_code)
        self.session_lock.locking(server_side)
        self.locked = True
        if self.grid is not None:
            self.grid.commit_note()
        if not server_side:
            self.session_lock.lock_at_facade(events)
        self.splitter.hide()
        self.case_view.toolbar.hide()
        self.case_view.film_clock.pause(True)
        self._update_case_actions()
        for action in (self.previous_action, self.next_action):
            action.setEnabled(False)
        self.statusBar().showMessage("Session locked")
        dialog = UnlockDialog(
            self.session_lock.unlock,
            str(getattr(self._session, "username", "")),
            self,
            reason="You locked this session (Ctrl+L)." if by_user else "",
        )
        self.unlock_dialog = dialog
        self._watch(dialog)
        dialog.accepted.connect(self._unlocked)
        dialog.rejected.connect(self.log_out)
        dialog.open()
        self.sessionLocked.emit()

    def _unlocked(self) -> None:
        self.locked = False
        self.session_lock.unlocked()
        self.time_log.start()
        self.splitter.show()
        self.case_view.toolbar.show()
        self.case_view.film_clock.pause(False)
        self.writer.resume()
        self.previous_action.setEnabled(self.worklist.has_previous)
        self.next_action.setEnabled(self.worklist.has_next)
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
        logout = getattr(getattr(self._ws, "accounts", None), "logout", None)
        if logout is not None:
            self.tasks.run(logout, self._session)
        self.loggedOut.emit()
        self.session_lock.stop()
        self.time_log.stop(0.5)
        self.layout_memory.save()
        self.writer.stop(wait_s)
        self.hide()
        self.deleteLater()

    def _watch(self, dialog: Any) -> None:
        """When the check of ``dialog`` (signing, reopening, unlocking) has failed because the
        session has ended, end the window too, once the dialog has shown the error."""

        def checked(busy: bool) -> None:
            if not busy:
                QTimer.singleShot(0, lambda: self._dialog_checked(dialog))

        dialog.busy_changed.connect(checked)

    def _dialog_checked(self, dialog: Any) -> None:
        if isValid(self) and isValid(dialog) and dialog.error.isVisible():
            self._if_ended(dialog.error.text())

    def _if_ended(self, message: str) -> bool:
        """After a failed call: if it ended the session, go back to the log-in (True), saying
        why (the first call that found the account changed may have run in the background)."""
        if not getattr(self._session, "closed", False):
            return False
        self.end_ended_session(getattr(self._session, "ended_because", "") or message)
        return True

    def end_ended_session(self, message: str) -> None:
        """The facade ended the session (the account changed): close the window and show the
        log-in again, with the reason (once, whichever call found it first)."""
        if self.ended_because:
            return
        self.ended_because = message
        self.statusBar().showMessage(message)
        self.sessionEnded.emit(message)
        dialog = self.unlock_dialog
        if self.locked and dialog is not None and isValid(dialog) and dialog.isVisible():
            dialog.reject()  # its "Log out" ends the window
            return
        self._end_session(wait_s=0.5)

    def _case_failed(self, message: str) -> None:
        self.case_view.clear("This case cannot be shown")
        self.statusBar().showMessage(f"This case cannot be shown: {message}")

    def _failed(self, exc: BaseException) -> None:
        from scorer.workspace import SessionLocked

        if isinstance(exc, SessionLocked):
            self.lock_session(server_side=True)
            return
        if self._if_ended(str(exc)):
            return
        self.statusBar().showMessage(str(exc) or type(exc).__name__)
        if self.model is None:
            self.scoring_stack.hint.setText(f"The scores cannot be loaded: {exc}")


def _place_joints(
    workspace: Any, session: Any, code: str, film: str, points: tuple[JointPoint, ...]
) -> object:
    """On a worker thread: store joint positions placed or dragged on a film of a case."""
    return workspace.reading.place_joints(session, code, film, list(points))


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
    for n, row in enumerate(ws.worklists.worklist(s, sample.trial)[: args.signed]):
        for code in ws.reading.open_case(s, row.code).reads.values():
            ws.reading.set_scores(s, code, zero)
        first = n == 0
        ws.reading.sign_case(
            s, row.code, SAMPLE_READER_PASSWORD, username=SAMPLE_READER if first else None
        )
    return sample, folder / "data"


def _preview_window(built: tuple[Any, Path], args: Namespace) -> ReadingWindow:
    from scorer.gui.scoring_grid import _demo_typing

    sample, data = built
    settings = layout_settings(data)
    settings.setValue("ui/theme", args.theme)
    preparer = None
    if args.joint_view:
        from scorer.gui.sample_case import case_images_with_truth

        # The films with the generator's true joint positions, as the demo places them.
        preparer = CasePreparer(
            case_images_with_truth(sample), cache_dir=sample.workspace.images.cache_dir
        )
    window = ReadingWindow(
        sample.workspace, sample.session, sample.trial, settings=settings, preparer=preparer
    )
    typed = {"done": args.typed == 0}

    def type_some(_code: str) -> None:
        if not typed["done"] and window.grid is not None:
            typed["done"] = True
            _demo_typing(window.grid, args.typed)
            window.grid.table.setFocus()
        if args.joint_view and window.grid is not None:
            region, joint = args.joint_view.split()
            model = window.grid.model
            row = next(
                i for i, d in enumerate(model.areas) if (d.region, d.joint) == (region, joint)
            )
            model.set_current(row, 0)
            window.case_view.joint_view.set_on(True)

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
        and (not args.joint_view or window.case_view.joint_view.on)
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
    parser.add_argument(
        "--joint-view",
        metavar="'REGION JOINT'",
        help="the films with their true joint positions, in joint view on this joint",
    )


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
