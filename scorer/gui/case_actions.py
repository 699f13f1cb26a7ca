"""The reading window's commands: the Case toolbar, the Case and View menus and their keys.

:class:`CaseActions` builds them on the window and connects them to the window's commands
(:class:`CaseCommands`); :meth:`CaseActions.show_state` enables them, and says in the toolbar
what is left to do, as the case on screen allows (:func:`state_of_case`).
"""

from __future__ import annotations

from typing import Protocol

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow

from scorer.gui.scoring_grid import GridModel


class CaseCommands(Protocol):
    """What the Case toolbar and menu do: the reading window's commands."""

    def previous_case(self) -> None: ...

    def next_case(self) -> None: ...

    def ask_sign(self) -> None: ...

    def ask_reopen(self) -> None: ...

    def lock_session(self, server_side: bool = False, by_user: bool = False) -> None: ...

    def ask_flag(self) -> None: ...

    def ask_log_out(self) -> None: ...

    def close(self) -> bool: ...


def state_of_case(model: GridModel | None) -> str:
    """``signed``, ``complete`` (ready to sign), ``incomplete`` or ``none`` (no scores)."""
    if model is None:
        return "none"
    if all(model.status[letter] == "signed" for letter in model.letters):
        return "signed"
    left = sum(len(model.unscored(letter)) for letter in model.letters)
    if left or model.pending or model.failed:
        return "incomplete"
    return "complete"


class CaseActions:
    """The reading window's actions on a case (previous / next, sign, reopen, flag, lock, log
    out, quit) in its Case toolbar and menu, with the case's position and state beside them,
    and the View menu's worklist and theme toggles."""

    def __init__(self, window: QMainWindow, commands: CaseCommands) -> None:
        self.position_label = QLabel("", window)
        self.position_label.setObjectName("casePosition")
        tools = window.addToolBar("Case")
        tools.setObjectName("caseNavigation")
        tools.setMovable(False)
        self.previous_action = QAction("◀ Previous", window)
        self.previous_action.setShortcut(QKeySequence(Qt.Key.Key_PageUp))
        self.previous_action.setToolTip("Previous case (PageUp)")
        self.previous_action.triggered.connect(commands.previous_case)
        self.next_action = QAction("Next ▶", window)
        self.next_action.setShortcut(QKeySequence(Qt.Key.Key_PageDown))
        self.next_action.setToolTip("Next case (PageDown)")
        self.next_action.triggered.connect(commands.next_case)
        self.sign_action = QAction("Sign case…", window)
        self.sign_action.setObjectName("signCase")
        self.sign_action.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
        self.sign_action.setToolTip(
            "Sign this case with your password once every area of every visit is scored or "
            "marked not assessable (Ctrl+Enter)"
        )
        self.sign_action.triggered.connect(commands.ask_sign)
        self.sign_action.setEnabled(False)
        self.reopen_action = QAction("Reopen…", window)
        self.reopen_action.setObjectName("reopenCase")
        self.reopen_action.setToolTip("Reopen this signed case to change it, with a reason")
        self.reopen_action.triggered.connect(commands.ask_reopen)
        self.reopen_action.setEnabled(False)
        self.lock_action = QAction("Lock", window)
        self.lock_action.setShortcut(QKeySequence("Ctrl+L"))
        self.lock_action.setToolTip("Lock the session now (Ctrl+L); your password unlocks it")
        self.lock_action.triggered.connect(lambda: commands.lock_session(by_user=True))
        self.flag_action = QAction("Flag to coordinator…", window)
        self.flag_action.setObjectName("flagCase")
        self.flag_action.setShortcut(QKeySequence("Ctrl+F"))
        self.flag_action.setToolTip(
            'Send the coordinator a message about this case, e.g. "visit B may be another '
            'patient" (Ctrl+F)'
        )
        self.flag_action.triggered.connect(commands.ask_flag)
        self.flag_action.setEnabled(False)
        self.logout_action = QAction("Log out", window)
        self.logout_action.setObjectName("logOut")
        self.logout_action.setToolTip("Save what is typed, end the session and show the log-in")
        self.logout_action.triggered.connect(commands.ask_log_out)
        self.quit_action = QAction("Quit", window)
        self.quit_action.setObjectName("quit")
        self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        self.quit_action.setToolTip("Save what is typed, end the session and quit (Ctrl+Q)")
        self.quit_action.triggered.connect(commands.close)
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
            window.addAction(action)
        tools.addAction(self.previous_action)
        tools.addAction(self.next_action)
        tools.addSeparator()
        tools.addWidget(self.position_label)
        tools.addSeparator()
        tools.addAction(self.sign_action)
        tools.addAction(self.reopen_action)
        self.case_state_label = QLabel("", window)
        self.case_state_label.setObjectName("caseState")
        tools.addWidget(self.case_state_label)
        self._add_menus(window)

    def _add_menus(self, window: QMainWindow) -> None:
        """The Case menu (the toolbar's actions and the rest) and the View menu's toggles."""
        case_menu = window.menuBar().addMenu("&Case")
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
        view_menu = window.menuBar().addMenu("&View")
        self.worklist_action = QAction("Worklist", window, checkable=True, checked=True)
        view_menu.addAction(self.worklist_action)
        self.light_action = QAction("Light theme", window, checkable=True)
        view_menu.addAction(self.light_action)

    def show_position(self, progress: str, has_previous: bool, has_next: bool) -> None:
        """The case on screen: its place in the worklist ("n of N") and where one can go."""
        self.position_label.setText(f"Case {progress}")
        self.previous_action.setEnabled(has_previous)
        self.next_action.setEnabled(has_next)

    def show_state(self, model: GridModel | None, *, locked: bool, has_grid: bool) -> None:
        """Enable signing, reopening and flagging as the case's scores allow, and say what is
        left to do."""
        state = state_of_case(model)
        self.sign_action.setEnabled(state == "complete" and not locked)
        self.reopen_action.setEnabled(state == "signed" and not locked)
        self.flag_action.setEnabled(model is not None and has_grid and not locked)
        if model is None:
            self.case_state_label.setText("")
            return
        left = sum(len(model.unscored(letter)) for letter in model.letters)
        if state == "signed":
            text = "Signed: read-only"
        elif left:
            text = f"{left} area{'s' if left != 1 else ''} left"
        elif model.pending or model.failed:
            text = "Saving…" if not model.failed else "Some entries are not saved"
        else:
            text = "Ready to sign (Ctrl+Enter)"
        self.case_state_label.setText(f"  {text}")
