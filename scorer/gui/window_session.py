"""The session commands of the coordinator's desk and the monitor's window: Lock (Ctrl+L),
Log out, Quit (Ctrl+Q), and the question closing the window asks.

The reading window has these in its Case menu (:mod:`scorer.gui.case_actions`); the desk and
the monitor get them from :class:`WindowSession`, in a Session menu. Closing such a window
used to quit the application at once (and with it the log-in); now it asks "Log out and
quit?", offering to log out only (back to the log-in) and, as the default (and Escape), to
stay. The question does not block: the window stays open until it is answered.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMessageBox, QWidget

from scorer.gui.login import UnlockDialog
from scorer.gui.tasks import KeptTasks

#: The close question's answers (STAY also when it is closed unanswered).
QUIT, LOG_OUT, STAY = "log out and quit", "log out", "stay"


def open_close_question(parent: QWidget, answered: Callable[[str], None]) -> QMessageBox:
    """Open (without blocking) the question closing a window asks: "Log out and quit?",
    with Log out only, and Stay as the default (and Escape's answer); ``answered(answer)``
    is called with QUIT, LOG_OUT or STAY."""
    box = QMessageBox(parent)
    box.setObjectName("closeQuestion")
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Log out and quit?")
    box.setText("Log out and quit?")
    box.setInformativeText(
        "Quitting ends your session and closes scorer. Log out ends the session and shows "
        "the log-in, for the next person."
    )
    quit_button = box.addButton("Log out and quit", QMessageBox.ButtonRole.AcceptRole)
    quit_button.setObjectName("logOutAndQuit")
    log_out = box.addButton("Log out", QMessageBox.ButtonRole.DestructiveRole)
    log_out.setObjectName("logOutOnly")
    stay = box.addButton("Stay", QMessageBox.ButtonRole.RejectRole)
    stay.setObjectName("stay")
    box.setDefaultButton(stay)
    box.setEscapeButton(stay)
    answers = {"logOutAndQuit": QUIT, "logOutOnly": LOG_OUT}
    box.buttonClicked.connect(lambda button: answered(answers.get(button.objectName(), STAY)))
    box.open()
    return box


class CloseQuestion(QObject):
    """A window's close, asked about: a close the person asked for (the title bar's close
    button: a spontaneous event, from the window system) opens :func:`open_close_question`
    and the window stays until it is answered; the program's own ``close()`` (after a
    log-out, the menu's Quit, or as the application ends) goes through. It watches the
    window's close events itself (an event filter), so the window's ``closeEvent`` need not
    change."""

    def __init__(
        self,
        window: QWidget,
        log_out: Callable[[], None],
        before_quit: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(window)
        window.installEventFilter(self)
        self._window = window
        self._log_out = log_out
        self._before_quit = before_quit
        self.box: QMessageBox | None = None  # the question while it is open
        self.confirmed = False  # "Log out and quit" answered: the close goes through

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Close and not self.allows(event):
            event.ignore()
            return True
        return False

    def allows(self, event: QEvent) -> bool:
        """From the window's ``closeEvent``: whether it closes now (else the question is
        open)."""
        if self.confirmed or not event.spontaneous():
            return True
        self.ask()
        return False

    def ask(self) -> None:
        """Open the question (once; it does not block the window)."""
        if self.box is None or not self.box.isVisible():
            self.box = open_close_question(self._window, self._answered)

    def _answered(self, answer: str) -> None:
        self.box = None
        if answer == LOG_OUT:
            self._log_out()
        elif answer == QUIT:
            self.confirmed = True
            self._before_quit()
            self._window.close()


class WindowSession(QObject):
    """Lock, log out and quit for one window's session at the facade.

    Signals: ``locked()`` and ``unlocked()`` (the window stops and restarts what it polls:
    a locked session's calls are refused), ``loggedOut()`` (the workstation shows the
    log-in again). The window calls :meth:`may_close` from its ``closeEvent``.
    """

    locked = Signal()
    unlocked = Signal()
    loggedOut = Signal()

    def __init__(self, window: QMainWindow, workspace: Any, session: Any) -> None:
        super().__init__(window)
        self._window = window
        self._ws = workspace
        self._session = session
        self.tasks = KeptTasks()
        self.is_locked = False
        self.ending = False  # logging out or quitting: the close asks nothing more
        self.logged_out = False
        self.unlock_dialog: UnlockDialog | None = None
        self.closing = CloseQuestion(window, self.log_out, self._before_quit)
        self._lock_sent = threading.Event()
        self._lock_sent.set()
        self.lock_action = QAction("Lock", window)
        self.lock_action.setObjectName("lockSession")
        self.lock_action.setShortcut(QKeySequence("Ctrl+L"))
        self.lock_action.setToolTip("Lock the session now (Ctrl+L); your password unlocks it")
        self.lock_action.triggered.connect(self.lock)
        self.logout_action = QAction("Log out", window)
        self.logout_action.setObjectName("logOut")
        self.logout_action.setToolTip("End the session and show the log-in")
        self.logout_action.triggered.connect(self.log_out)
        self.quit_action = QAction("Quit", window)
        self.quit_action.setObjectName("quit")
        self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        self.quit_action.setToolTip("End the session and quit (Ctrl+Q)")
        self.quit_action.triggered.connect(self.quit)
        menu = window.menuBar().addMenu("&Session")
        for action in (self.lock_action, self.logout_action, self.quit_action):
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            window.addAction(action)
            menu.addAction(action)

    # ------------------------------------------------------------------ lock

    def lock(self) -> None:
        """Hide the window's contents and ask for the password (the lock is sent to the
        facade on a worker; the unlock waits until it has got there)."""
        if self.is_locked or self.ending:
            return
        self.is_locked = True
        self._lock_sent.clear()
        self.tasks.run(self._lock_at_facade)
        central = self._window.centralWidget()
        if central is not None:
            central.hide()
        self._window.statusBar().showMessage("Session locked")
        dialog = UnlockDialog(
            self._unlock_at_facade,
            str(getattr(self._session, "username", "")),
            self._window,
            reason="You locked this session (Ctrl+L).",
        )
        self.unlock_dialog = dialog
        dialog.accepted.connect(self._unlocked)
        dialog.rejected.connect(self.log_out)
        dialog.open()
        self.locked.emit()

    def _lock_at_facade(self) -> None:
        try:
            self._ws.accounts.lock(self._session)
        finally:
            self._lock_sent.set()

    def _unlock_at_facade(self, password: str) -> None:
        """On the unlock dialog's worker: unlock once the lock has reached the facade (a
        quick unlock could otherwise be overtaken by the lock)."""
        self._lock_sent.wait(30)
        self._ws.accounts.unlock(self._session, password)

    def _unlocked(self) -> None:
        self.is_locked = False
        self.unlock_dialog = None
        central = self._window.centralWidget()
        if central is not None:
            central.show()
        self._window.statusBar().showMessage("Unlocked", 3000)
        self.unlocked.emit()

    # ------------------------------------------------------------------ ending

    def log_out(self) -> None:
        """End the session and close the window; the workstation shows the log-in."""
        if self.ending:
            return
        self.ending = True
        self.end_at_facade()
        self.loggedOut.emit()
        self._window.close()

    def quit(self) -> None:
        """Quit (Ctrl+Q): asks first, as closing the window does."""
        if self.ending:
            self._window.close()
        else:
            self.closing.ask()

    def end_at_facade(self) -> None:
        """Log out at the facade, once (the session may have ended already)."""
        if self.logged_out:
            return
        self.logged_out = True
        from scorer.workspace import ScorerError

        with contextlib.suppress(ScorerError):
            self._ws.accounts.logout(self._session)

    @property
    def question(self) -> QMessageBox | None:
        """The close question while it is open."""
        return self.closing.box

    def may_close(self, event: QCloseEvent) -> bool:
        """From the window's ``closeEvent``: whether it closes now (:class:`CloseQuestion`;
        always once the session is ending)."""
        return self.ending or self.closing.allows(event)

    def _before_quit(self) -> None:
        """ "Log out and quit" was answered: end the session; a lock's dialog is moot."""
        self.ending = True
        self.end_at_facade()
        if self.unlock_dialog is not None:
            self.unlock_dialog.done(0)
