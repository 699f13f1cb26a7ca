"""Signing a case with the password, and reopening a signed case with a reason.

:class:`SignDialog` states what the signature means ("authored": I scored these visits) and
takes the password (and, at the session's first signature, the user ID too: 21 CFR 11.200).
:class:`ReopenDialog` takes the reason for reopening a signed case; the facade voids the
signatures and the case must be signed again. Both take the facade call as a plain callable
and run it on the worker pool; the facade's message is shown on failure (wrong password,
account locked, areas left), the dialog stays open and nothing changes.
:class:`FeedbackDialog` shows a signed calibration case against the reference (training).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from scorer.core.reads import AreaScore
from scorer.gui.login import _CheckingDialog, _message, _password_field
from scorer.workspace import CalibrationFeedback


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


class FeedbackDialog(QDialog):
    """Training mode: after a calibration case is signed, each visit's areas with the reader's
    entry beside the reference's; differences first, then the rest."""

    VERDICT_ORDER: ClassVar[dict[str, int]] = {
        "differs": 0,
        "within one": 1,
        "not comparable": 2,
        "same": 3,
    }

    def __init__(self, feedback: CalibrationFeedback, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("feedbackDialog")
        self.setWindowTitle("Calibration feedback")
        rows = [
            (letter, row)
            for letter, visit in sorted(feedback.visits.items())
            for row in (visit or ())
        ]
        compared = [r for _, r in rows if r.verdict != "not comparable"]
        same = sum(r.verdict == "same" for r in compared)
        within = sum(r.verdict in ("same", "within one") for r in compared)
        n = len(compared) or 1
        self.summary = QLabel(
            f"This was a calibration case. Against the reference: {same} of {len(compared)} "
            f"areas the same ({100 * same / n:.0f}%), {within} within one grade "
            f"({100 * within / n:.0f}%).",
            self,
        )
        self.summary.setObjectName("feedbackSummary")
        self.summary.setWordWrap(True)
        self.table = QTableWidget(self)
        self.table.setObjectName("feedbackTable")
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        headers = ["Visit", "Area", "Yours", "Reference", "Difference", ""]
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        ordered = sorted(rows, key=lambda lr: (self.VERDICT_ORDER[lr[1].verdict], lr[0]))
        self.table.setRowCount(len(ordered))
        for i, (letter, row) in enumerate(ordered):
            diff = row.difference
            values = [
                letter,
                row.area,
                _entry_text(row.yours),
                _entry_text(row.reference),
                "" if diff is None else f"{diff:+d}",
                row.verdict,
            ]
            for c, value in enumerate(values):
                self.table.setItem(i, c, QTableWidgetItem(value))
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setStretchLastSection(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self.resize(620, 640)


def _entry_text(entry: AreaScore | None) -> str:
    if entry is None:
        return "–"
    if entry.score is None:
        return f"not assessable ({entry.reason or ''})"
    sides = entry.sides
    return "+".join(str(s) for s in sides) + f"={entry.score}" if sides else str(entry.score)
