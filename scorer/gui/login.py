"""Logging in, the first-log-in password change, and unlocking after inactivity.

The dialogs take the facade's functions as plain callables, so a test (or the CLI's future
front end) can hand in anything with the same shape:

- :class:`LoginDialog` takes ``login(username, password) -> session`` and, for accounts that
  must change their password first, ``change_password(session, old, new)``.
- :class:`UnlockDialog` takes ``unlock(password)`` (``Workspace.unlock`` bound to a session).

Checking a password costs an argon2 hash (a fraction of a second), so every check runs on the
worker pool and the dialog says it is checking. Error messages are the facade's own (they are
written for the person at the desk: wrong password, account locked for N minutes). Passwords are
never echoed, logged, or kept after the check.
"""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from scorer.gui.preview import Preview, run_preview
from scorer.gui.tasks import KeptTasks

MIN_PASSWORD_LENGTH = 10
POLICY_HINT = (
    f"At least {MIN_PASSWORD_LENGTH} characters, not containing your user ID, and different "
    "from the old one."
)


def _password_field(parent: QWidget, name: str) -> QLineEdit:
    field = QLineEdit(parent)
    field.setObjectName(name)
    field.setEchoMode(QLineEdit.EchoMode.Password)
    field.setInputMethodHints(
        Qt.InputMethodHint.ImhHiddenText
        | Qt.InputMethodHint.ImhSensitiveData
        | Qt.InputMethodHint.ImhNoPredictiveText
    )
    return field


def _error_label(parent: QWidget) -> QLabel:
    label = QLabel("", parent)
    label.setObjectName("error")
    label.setWordWrap(True)
    label.setStyleSheet("color: #f28b82;")
    label.hide()
    return label


def _message(exc: BaseException) -> str:
    """What the person at the desk reads: the facade's message, never a traceback."""
    text = str(exc).strip()
    return text or "the check failed; try again"


class _CheckingDialog(QDialog):
    """A dialog whose main button starts a check on the worker pool."""

    busy_changed = Signal(bool)

    def __init__(self, parent: QWidget | None) -> None:
        super().__init__(parent)
        self.error = _error_label(self)
        self.busy = False
        self.tasks = KeptTasks()

    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(bool(text))

    def _set_busy(self, busy: bool, button: QPushButton, idle_text: str) -> None:
        self.busy = busy
        button.setEnabled(not busy)
        button.setText("Checking…" if busy else idle_text)
        self.busy_changed.emit(busy)


class LoginDialog(_CheckingDialog):
    """User ID and password; on success :attr:`session` holds the facade's session.

    An account that must change its password (first log-in, or reset by an administrator)
    gets a :class:`ChangePasswordDialog` (:attr:`change_dialog`) before the log-in counts.
    """

    logged_in = Signal(object)

    def __init__(
        self,
        login: Callable[[str, str], Any],
        change_password: Callable[[Any, str, str], None] | None = None,
        parent: QWidget | None = None,
        username: str = "",
    ) -> None:
        super().__init__(parent)
        self.setObjectName("loginDialog")
        self.setWindowTitle("scorer — log in")
        self._login = login
        self._change_password = change_password
        self.session: Any = None
        self.change_dialog: ChangePasswordDialog | None = None

        heading = QLabel("Log in with your user ID and password.", self)
        heading.setWordWrap(True)
        self.username = QLineEdit(username, self)
        self.username.setObjectName("username")
        self.username.setMaxLength(64)
        self.password = _password_field(self, "password")
        form = QFormLayout()
        form.addRow("User ID", self.username)
        form.addRow("Password", self.password)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok.setObjectName("loginButton")
        self.ok.setText("Log in")
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        (self.password if username else self.username).setFocus()
        self.setMinimumWidth(380)
        self.adjustSize()

    def submit(self) -> None:
        """Check the user ID and password (on the worker pool)."""
        if self.busy:
            return
        user = self.username.text().strip()
        password = self.password.text()
        if not user or not password:
            self.show_error("Enter your user ID and password.")
            return
        self.show_error("")
        self._set_busy(True, self.ok, "Log in")
        self.tasks.run(self._login, user, password, done=self._done, failed=self._failed)

    def _failed(self, exc: BaseException) -> None:
        self._set_busy(False, self.ok, "Log in")
        self.password.clear()
        self.password.setFocus()
        self.show_error(_message(exc))

    def _done(self, session: Any) -> None:
        self._set_busy(False, self.ok, "Log in")
        if getattr(session, "must_change_password", False):
            old = self.password.text()
            self.password.clear()
            if self._change_password is None:
                self.show_error("You must change your password first; ask an administrator.")
                return
            change = self._change_password
            dialog = ChangePasswordDialog(
                lambda o, n: change(session, o, n),
                self.username.text().strip(),
                self,
                first_login=True,
            )
            dialog.old.setText(old)  # just typed and checked: no need to type it twice
            dialog.new.setFocus()
            self.change_dialog = dialog
            dialog.accepted.connect(lambda: self._finish(session))
            dialog.rejected.connect(
                lambda: self.show_error(
                    "Your password must be changed before you can go on. Log in again."
                )
            )
            dialog.open()
            return
        self.password.clear()
        self._finish(session)

    def _finish(self, session: Any) -> None:
        self.session = session
        self.logged_in.emit(session)
        self.accept()


class ChangePasswordDialog(_CheckingDialog):
    """Old password, new password twice; the policy (and a wrong old password) is checked by
    ``change(old, new)`` and its message shown."""

    def __init__(
        self,
        change: Callable[[str, str], None],
        username: str = "",
        parent: QWidget | None = None,
        first_login: bool = False,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("changePasswordDialog")
        self.setWindowTitle("Change password")
        self._change = change
        self._username = username
        intro = (
            "This is your first log-in (or your password was reset): choose your own password."
            if first_login
            else "Choose a new password."
        )
        heading = QLabel(intro, self)
        heading.setWordWrap(True)
        hint = QLabel(POLICY_HINT, self)
        hint.setObjectName("hint")
        hint.setWordWrap(True)
        self.old = _password_field(self, "oldPassword")
        self.new = _password_field(self, "newPassword")
        self.confirm = _password_field(self, "confirmPassword")
        form = QFormLayout()
        form.addRow("Current password", self.old)
        form.addRow("New password", self.new)
        form.addRow("New password again", self.confirm)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok.setObjectName("changeButton")
        self.ok.setText("Change password")
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(hint)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(420)
        self.adjustSize()

    def submit(self) -> None:
        if self.busy:
            return
        old, new, again = self.old.text(), self.new.text(), self.confirm.text()
        if not old or not new:
            self.show_error("Enter your current password and a new one.")
            return
        if new != again:
            self.show_error("The two new passwords differ.")
            self.confirm.clear()
            self.confirm.setFocus()
            return
        self.show_error("")
        self._set_busy(True, self.ok, "Change password")
        self.tasks.run(self._change, old, new, done=self._done, failed=self._failed)

    def _done(self, _result: Any) -> None:
        self._set_busy(False, self.ok, "Change password")
        for field in (self.old, self.new, self.confirm):
            field.clear()
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self._set_busy(False, self.ok, "Change password")
        self.new.clear()
        self.confirm.clear()
        self.new.setFocus()
        self.show_error(_message(exc))


class UnlockDialog(_CheckingDialog):
    """The session was locked after inactivity: the same user's password unlocks it.
    "Log out" rejects the dialog (the window then ends the session)."""

    def __init__(
        self,
        unlock: Callable[[str], None],
        username: str,
        parent: QWidget | None = None,
        reason: str = "",
    ) -> None:
        super().__init__(parent)
        self.setObjectName("unlockDialog")
        self.setWindowTitle("Session locked")
        self._unlock = unlock
        text = reason or "Your session was locked after inactivity."
        self.message = QLabel(
            f"{text} Enter the password of {username} to go on; nothing you entered is lost.",
            self,
        )
        self.message.setObjectName("lockMessage")
        self.message.setWordWrap(True)
        self.password = _password_field(self, "password")
        form = QFormLayout()
        form.addRow("Password", self.password)
        self.buttons = QDialogButtonBox(self)
        self.ok = self.buttons.addButton("Unlock", QDialogButtonBox.ButtonRole.AcceptRole)
        self.ok.setObjectName("unlockButton")
        self.ok.setDefault(True)
        self.logout = self.buttons.addButton("Log out", QDialogButtonBox.ButtonRole.RejectRole)
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.password.setFocus()
        self.setMinimumWidth(400)
        self.adjustSize()

    def submit(self) -> None:
        if self.busy:
            return
        password = self.password.text()
        if not password:
            self.show_error("Enter your password.")
            return
        self.show_error("")
        self._set_busy(True, self.ok, "Unlock")
        self.tasks.run(self._unlock, password, done=self._done, failed=self._failed)

    def _done(self, _result: Any) -> None:
        self._set_busy(False, self.ok, "Unlock")
        self.password.clear()
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self._set_busy(False, self.ok, "Unlock")
        self.password.clear()
        self.password.setFocus()
        self.show_error(_message(exc))


def _preview_build(folder: Path, _args: Namespace) -> Any:
    """A throw-away database with reader ``rita`` before her first log-in."""
    from scorer.workspace import Workspace

    ws = Workspace.initialize("ada", "Ada Admin", "Sunflower-Meadow-7", db=str(folder / "l.db"))
    admin = ws.accounts.login("ada", "Sunflower-Meadow-7")
    ws.accounts.add_user(admin, "rita", "Rita Reader", "reader", "Temporary-pass-2")
    return ws


def _preview_window(ws: Any, _args: Namespace) -> LoginDialog:
    return LoginDialog(ws.accounts.login, ws.accounts.change_password, username="rita")


PREVIEW = Preview(
    "login",
    "The log-in dialog against a throw-away database (user rita, first log-in).",
    _preview_window,
    build=_preview_build,
    size="",
    waiting="Making a throw-away database…",
)


def _main(argv: Sequence[str] | None = None) -> int:
    return run_preview(PREVIEW, argv)


if __name__ == "__main__":
    raise SystemExit(_main())
