"""Signing a case with the password, and reopening a signed case with a reason.

:class:`SignDialog` states what the signature means ("authored": I scored these visits) and
takes the password (and, at the session's first signature, the user ID too: 21 CFR 11.200).
:class:`ReopenDialog` takes the reason for reopening a signed case; the facade voids the
signatures and the case must be signed again. Both take the facade call as a plain callable
and run it on the worker pool; the facade's message is shown on failure (wrong password,
account locked, areas left), the dialog stays open and nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import (
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from scorer.gui.login import _CheckingDialog, _message, _password_field


class SignDialog(_CheckingDialog):
    """Sign the case on screen: ``sign(user_id_or_None, password)`` does it."""

    def __init__(
        self,
        sign: Callable[[str | None, str], Any],
        username: str,
        full_name: str,
        visits: int,
        *,
        first_signature: bool,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("signDialog")
        self.setWindowTitle("Sign the case")
        self._sign = sign
        self.result_value: Any = None
        which = "both visits" if visits == 2 else f"all {visits} visits" if visits > 2 else "it"
        self.statement = QLabel(
            f"Signing as {full_name} ({username}), meaning <b>authored</b>: you scored "
            f"{which} of this case and the scores are yours. Signed scores can change only "
            "after the case is reopened with a reason.",
            self,
        )
        self.statement.setObjectName("signStatement")
        self.statement.setWordWrap(True)
        self.username = QLineEdit(self)
        self.username.setObjectName("username")
        self.username.setMaxLength(64)
        self.password = _password_field(self, "password")
        form = QFormLayout()
        self.first_signature = first_signature
        if first_signature:
            form.addRow("User ID", self.username)
        else:
            self.username.hide()
        form.addRow("Password", self.password)
        self.buttons = QDialogButtonBox(self)
        self.ok = self.buttons.addButton("Sign", QDialogButtonBox.ButtonRole.AcceptRole)
        self.ok.setObjectName("signButton")
        self.ok.setDefault(True)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.statement)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        (self.username if first_signature else self.password).setFocus()
        self.setMinimumWidth(420)
        self.adjustSize()

    def submit(self) -> None:
        if self.busy:
            return
        user = self.username.text().strip() if self.first_signature else None
        password = self.password.text()
        if (self.first_signature and not user) or not password:
            self.show_error(
                "Enter your user ID and password."
                if self.first_signature
                else "Enter your password."
            )
            return
        self.show_error("")
        self._set_busy(True, self.ok, "Sign")
        self.tasks.run(self._sign, user, password, done=self._done, failed=self._failed)

    def _done(self, result: Any) -> None:
        self._set_busy(False, self.ok, "Sign")
        self.password.clear()
        self.result_value = result
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self._set_busy(False, self.ok, "Sign")
        self.password.clear()
        self.password.setFocus()
        self.show_error(_message(exc))


class ReopenDialog(_CheckingDialog):
    """Reopen a signed case: ``reopen(reason)`` voids its signatures."""

    def __init__(self, reopen: Callable[[str], Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reopenDialog")
        self.setWindowTitle("Reopen the case")
        self._reopen = reopen
        text = QLabel(
            "Reopening voids the signatures of this case; it must be signed again after the "
            "change. Why is it reopened? (kept in the audit trail)",
            self,
        )
        text.setWordWrap(True)
        self.reason = QLineEdit(self)
        self.reason.setObjectName("reason")
        self.reason.setMaxLength(500)
        self.reason.setPlaceholderText("e.g. wrong grade entered for an area")
        self.buttons = QDialogButtonBox(self)
        self.ok = self.buttons.addButton("Reopen", QDialogButtonBox.ButtonRole.AcceptRole)
        self.ok.setObjectName("reopenButton")
        self.ok.setDefault(True)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("Reason", self.reason)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.reason.setFocus()
        self.setMinimumWidth(420)
        self.adjustSize()

    def submit(self) -> None:
        if self.busy:
            return
        reason = self.reason.text().strip()
        if not reason:
            self.show_error("A reason is required.")
            return
        self.show_error("")
        self._set_busy(True, self.ok, "Reopen")
        self.tasks.run(self._reopen, reason, done=self._done, failed=self._failed)

    def _done(self, _result: Any) -> None:
        self._set_busy(False, self.ok, "Reopen")
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self._set_busy(False, self.ok, "Reopen")
        self.show_error(_message(exc))
