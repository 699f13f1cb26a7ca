"""The desk's signed and set-up actions: Freeze SDC with its preview and e-signature, and the
choice of the calibration set.

:class:`FreezeSdcDialog` shows what the freeze would record (value, level, n, k and readers,
from ``adjudication.sdc_preview``) and asks for a reason and the password (and the user ID at
the session's first signature, Part 11); the service signs and freezes, and refuses if the
reads moved the value since the preview. :class:`CalibrationSetDialog` picks the calibration
patients and whose reads are the reference, set through ``trials.set_trial_setting`` as
``scorer calibration set`` does.

Each dialog runs its change on the worker pool; a refusal is shown in full in the dialog
(:func:`grow_to_fit`: a word-wrapped message in a top-level dialog is not given the height it
needs by Qt on its own, so the text was cut to one line).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from scorer.core.printable import printable
from scorer.gui.login import _error_label, _message, _password_field
from scorer.gui.tasks import KeptTasks


def grow_to_fit(dialog: QWidget) -> None:
    """Make ``dialog`` tall enough for its layout at its width (a word-wrapped label that
    just got a long text needs more lines than the dialog had room for)."""
    layout = dialog.layout()
    if layout is None:
        return
    layout.activate()
    if layout.hasHeightForWidth():
        need = layout.totalHeightForWidth(dialog.width())
    else:
        need = layout.totalSizeHint().height()
    if need > dialog.height():
        dialog.resize(dialog.width(), need)


class WorkerDialog(QDialog):
    """A form whose main button runs ``run()`` on the worker pool: the dialog closes on
    success (``succeeded(result)``) and shows the facade's message, in full, on failure."""

    succeeded = Signal(object)

    def __init__(self, title: str, ok_text: str, parent: QWidget | None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.tasks = KeptTasks()
        self.busy = False
        self.result_value: Any = None
        self.form = QFormLayout()
        self.error = _error_label(self)
        self.buttons = QDialogButtonBox(self)
        self.ok = self.buttons.addButton(ok_text, QDialogButtonBox.ButtonRole.AcceptRole)
        self.ok.setObjectName("okButton")
        self.ok.setDefault(True)
        cancel = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.setObjectName("cancelButton")
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        self.setMinimumWidth(460)

    def finish_layout(self, *top: QWidget) -> None:
        layout = QVBoxLayout(self)
        for w in top:
            layout.addWidget(w)
        layout.addLayout(self.form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(bool(text))
        grow_to_fit(self)

    def work(self) -> Callable[[], Any] | None:
        """The change to run, or None after saying (``show_error``) what is missing."""
        raise NotImplementedError

    def submit(self) -> None:
        if self.busy:
            return
        self.show_error("")
        run = self.work()
        if run is None:
            return
        self.busy = True
        self.ok.setEnabled(False)
        self.tasks.run(run, done=self._done, failed=self._failed)

    def _done(self, result: Any) -> None:
        self.busy = False
        if not isValid(self) or not isValid(self.ok):
            return
        self.ok.setEnabled(True)
        self.result_value = result
        self.succeeded.emit(result)
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self.busy = False
        if not isValid(self) or not isValid(self.ok):
            return
        self.ok.setEnabled(True)
        self.show_error(_message(exc))


class FreezeSdcDialog(WorkerDialog):
    """Freeze SDC: what would be frozen (``preview``, an ``SdcPreview``), a reason, and the
    signature (password; the user ID too at the session's first signature)."""

    def __init__(
        self, workspace: Any, session: Any, trial: str, preview: Any, parent: QWidget | None
    ) -> None:
        super().__init__("Freeze the SDC", "Sign and freeze", parent)
        self.setObjectName("freezeSdcDialog")
        self._ws, self._session, self._trial, self.preview = workspace, session, trial, preview
        self.summary = QLabel(sdc_summary(preview), self)
        self.summary.setObjectName("sdcPreview")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.reason = QLineEdit(self)
        self.reason.setObjectName("reason")
        self.user_id = QLineEdit(self)
        self.user_id.setObjectName("userId")
        self.password = _password_field(self, "password")
        self.form.addRow("Reason", self.reason)
        self.first_signature = not getattr(session, "signed_once", False)
        if self.first_signature:
            # Part 11: a session's first signature takes both parts of the credential.
            self.form.addRow("User ID", self.user_id)
        else:
            self.user_id.hide()
        self.form.addRow("Password", self.password)
        self.finish_layout(self.summary)
        if preview.problem:
            self.ok.setEnabled(False)
            self.show_error(preview.problem)

    def work(self) -> Callable[[], Any] | None:
        reason = self.reason.text().strip()
        password = self.password.text()  # as typed: spaces may be part of it
        user_id = self.user_id.text().strip() if self.first_signature else None
        if not reason:
            self.show_error("Give the reason for freezing the SDC now.")
            return None
        if self.first_signature and not user_id:
            self.show_error("The first signature of a session needs your user ID and password.")
            return None
        if not password:
            self.show_error("Enter your password to sign.")
            return None
        ws, s, trial, value = self._ws, self._session, self._trial, self.preview.value
        self.password.clear()  # not kept in the dialog once it is on its way

        def run() -> Any:
            return ws.adjudication.freeze_sdc(
                s, trial, reason, password, username=user_id, previewed=value
            )

        return run


def sdc_summary(preview: Any) -> str:
    """What Freeze SDC would record, in words, or why it cannot."""
    if preview.value is None:
        return "Nothing to freeze."
    readers = ", ".join(printable(r) for r in preview.readers)
    return (
        f"SDC at {preview.level:g}%: {preview.value:g}, from n = {preview.n} patients read "
        f"twice by k = {preview.k} readers ({readers}).\n"
        "Once frozen it no longer moves as reads arrive; it is signed by you (meaning "
        "approved) over this value, level, n and readers."
    )


class CalibrationSetDialog(WorkerDialog):
    """The calibration set: tick the patients (code and, for the coordinator, the real
    identifier), choose whose reads are the reference, and give a reason."""

    def __init__(
        self,
        workspace: Any,
        session: Any,
        trial: str,
        patients: Sequence[Any],
        references: Sequence[str],
        current: tuple[Sequence[str], str],
        parent: QWidget | None,
    ) -> None:
        super().__init__("Choose the calibration set", "Set", parent)
        self.setObjectName("calibrationSetDialog")
        self._ws, self._session, self._trial = workspace, session, trial
        chosen, reference = set(current[0]), current[1]
        text = QLabel(
            "The calibration patients are read by every reader before the trial's cases; "
            "the reference reader's signed reads are what each reader is compared with. "
            "The choice and its reason are audited.",
            self,
        )
        text.setWordWrap(True)
        self.patients = QListWidget(self)
        self.patients.setObjectName("calibrationPatients")
        for p in patients:
            shown = f"{p.code} — {p.real_id}" if getattr(p, "real_id", None) else p.code
            item = QListWidgetItem(printable(shown), self.patients)
            item.setData(Qt.ItemDataRole.UserRole, p.code)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            checked = p.code in chosen
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        self.reference = QComboBox(self)
        self.reference.setObjectName("reference")
        self.reference.setEditable(True)
        for name in references:
            self.reference.addItem(name, name)
        self.reference.setCurrentText(reference)
        self.reason = QLineEdit(self)
        self.reason.setObjectName("reason")
        self.form.addRow("Reference reads of", self.reference)
        self.form.addRow("Reason", self.reason)
        self.finish_layout(text, self.patients)

    def chosen(self) -> list[str]:
        """The ticked patients' codes."""
        out = []
        for i in range(self.patients.count()):
            item = self.patients.item(i)
            if item.checkState() == Qt.CheckState.Checked:
                out.append(str(item.data(Qt.ItemDataRole.UserRole)))
        return out

    def work(self) -> Callable[[], Any] | None:
        patients = self.chosen()
        reference = self.reference.currentText().strip()
        reason = self.reason.text().strip()
        if not patients:
            self.show_error("Tick at least one patient for the calibration set.")
            return None
        if not reference:
            self.show_error("Choose whose signed reads are the reference.")
            return None
        if not reason:
            self.show_error("Give the reason for this calibration set.")
            return None
        ws, s, trial = self._ws, self._session, self._trial

        def run() -> Any:
            # The reference first: the protocol refuses patients without one (as the CLI).
            ws.trials.set_trial_setting(s, trial, "calibration_reference", reference, reason)
            ws.trials.set_trial_setting(s, trial, "calibration_patients", patients, reason)
            return patients

        return run
