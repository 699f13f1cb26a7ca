"""The desk's Freeze SDC (preview, reason and e-signature, refusals shown in full) and its
choice of the calibration set, through the dialogs over a real database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLineEdit
from pytestqt.qtbot import QtBot

from scorer.gui.desk import ActionDialog
from scorer.gui.desk_actions import CalibrationSetDialog, FreezeSdcDialog
from scorer.store.schema import Signature
from tests.gui.test_desk import built, open_desk  # noqa: F401  (built: the fixture)

COORD_PASSWORD = "Willow-Compass-2024"  # the desk sample's coordinator


def fully_shown(label: Any) -> bool:
    """A word-wrapped label is as tall as its text needs at its width (nothing cut off)."""
    return bool(label.isVisible() and label.height() >= label.heightForWidth(label.width()))


def open_freeze(qtbot: QtBot, window: Any) -> FreezeSdcDialog:
    """Freeze SDC… on the desk, and the new dialog it opens once the preview is in."""
    before = window.dialog
    window.adjudication.ask_freeze()
    qtbot.waitUntil(
        lambda: isinstance(window.dialog, FreezeSdcDialog) and window.dialog is not before,
        timeout=30000,
    )
    dialog = window.dialog
    assert isinstance(dialog, FreezeSdcDialog)
    return dialog


def test_freeze_sdc_shows_what_it_freezes_and_needs_the_signature(
    qtbot: QtBot,
    built: tuple[Any, Any, str, Path],  # noqa: F811
) -> None:
    ws, coord, trial, _ = built
    window = open_desk(qtbot, ws, coord, trial)
    preview = ws.adjudication.sdc_preview(coord, trial)
    dialog = open_freeze(qtbot, window)
    text = dialog.summary.text()
    assert f"SDC at 95%: {preview.value:g}" in text
    assert f"n = {preview.n} patients" in text and f"k = {preview.k} readers" in text
    assert all(r in text for r in preview.readers)
    # The session's first signature: the user ID is asked for too.
    assert dialog.first_signature and dialog.user_id.isVisibleTo(dialog)
    QTest.keyClicks(dialog.reason, "after the primary reading")
    QTest.keyClicks(dialog.user_id, "cora")
    QTest.keyClicks(dialog.password, "Not-the-password-1")
    dialog.submit()
    qtbot.waitUntil(lambda: dialog.error.isVisible() and not dialog.busy, timeout=20000)
    assert "wrong password (" in dialog.error.text()
    assert fully_shown(dialog.error)
    assert ws.trials.trial_settings(coord, trial).protocol.frozen_sdc is None
    QTest.keyClicks(dialog.password, COORD_PASSWORD)
    with qtbot.waitSignal(dialog.succeeded, timeout=20000):
        dialog.submit()
    assert ws.trials.trial_settings(coord, trial).protocol.frozen_sdc == preview.value
    with ws.store.read() as db:
        sig = db.query(Signature).filter(Signature.entity == "sdc").one()
        assert sig.content_hash == preview.content_hash() and sig.meaning == "approved"
    qtbot.waitUntil(lambda: "(signed)" in window.adjudication.status.text(), timeout=10000)
    # Frozen now: the dialog says so, in full, and offers nothing to sign.
    again = open_freeze(qtbot, window)
    assert not again.ok.isEnabled()
    assert again.error.text().startswith(f"the SDC of trial {trial} is frozen already")
    again.show()
    qtbot.waitUntil(lambda: fully_shown(again.error), timeout=5000)
    assert ws.verify().ok


def test_the_freeze_dialog_asks_for_what_is_missing_before_signing(
    qtbot: QtBot,
    built: tuple[Any, Any, str, Path],  # noqa: F811
) -> None:
    ws, coord, trial, _ = built
    window = open_desk(qtbot, ws, coord, trial)
    dialog = open_freeze(qtbot, window)
    dialog.submit()
    assert dialog.error.text() == "Give the reason for freezing the SDC now."
    QTest.keyClicks(dialog.reason, "now")
    dialog.submit()
    assert "needs your user ID and password" in dialog.error.text()
    QTest.keyClicks(dialog.user_id, "cora")
    dialog.submit()
    assert dialog.error.text() == "Enter your password to sign."
    assert not dialog.busy and ws.trials.trial_settings(coord, trial).protocol.frozen_sdc is None


def test_a_long_refusal_is_shown_in_full_in_a_desk_dialog(qtbot: QtBot) -> None:
    """The issue's clipped error text: a word-wrapped message in a dialog shown before it was
    set got one line's height; the dialog now grows to fit it."""
    dialog = ActionDialog("Freeze the SDC", "A short text.", [("Reason", QLineEdit())], print)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.show_error(
        "the SDC of trial RA-01 is frozen already at 1.859419 since 2026-12-05T09:00:00Z "
        "(by cora); to freeze it anew, first clear it: scorer trial set RA-01 frozen_sdc none "
        "--reason ..."
    )
    qtbot.waitUntil(lambda: fully_shown(dialog.error), timeout=5000)
    assert dialog.error.geometry().bottom() <= dialog.height()


def test_the_calibration_set_is_chosen_on_the_desk(
    qtbot: QtBot,
    built: tuple[Any, Any, str, Path],  # noqa: F811
) -> None:
    ws, coord, trial, _ = built
    window = open_desk(qtbot, ws, coord, trial)
    window.calibration.ask_set()
    qtbot.waitUntil(lambda: isinstance(window.dialog, CalibrationSetDialog), timeout=20000)
    dialog = window.dialog
    assert isinstance(dialog, CalibrationSetDialog)
    patients = ws.trials.list_patients(coord, trial)
    assert dialog.patients.count() == len(patients)
    # The coordinator sees the real identifier beside the code.
    assert dialog.patients.item(0).text() == f"{patients[0].code} — {patients[0].real_id}"
    dialog.submit()
    assert dialog.error.text() == "Tick at least one patient for the calibration set."
    for i in (0, 1):
        dialog.patients.item(i).setCheckState(Qt.CheckState.Checked)
    dialog.reference.setCurrentText("ravi")
    dialog.submit()
    assert dialog.error.text() == "Give the reason for this calibration set."
    QTest.keyClicks(dialog.reason, "two patients with erosions")
    with qtbot.waitSignal(dialog.succeeded, timeout=20000):
        dialog.submit()
    proto = ws.trials.trial_settings(coord, trial).protocol
    assert set(proto.calibration_patients) == {patients[0].code, patients[1].code}
    assert proto.calibration_reference == "ravi"
    qtbot.waitUntil(
        lambda: (
            patients[0].code in window.calibration.info.text()
            and "ravi" in window.calibration.info.text()
        ),
        timeout=20000,
    )
    trail = [r for r in ws.oversight.audit_trail(coord) if r.action == "trial.setting"]
    assert [r.reason for r in trail[-2:]] == ["two patients with erosions"] * 2


def test_a_calibration_set_without_a_reference_is_refused_in_the_dialog(
    qtbot: QtBot,
    built: tuple[Any, Any, str, Path],  # noqa: F811
) -> None:
    ws, coord, trial, _ = built
    patients = ws.trials.list_patients(coord, trial)
    dialog = CalibrationSetDialog(ws, coord, trial, patients, ["ravi"], ((), ""), None)
    qtbot.addWidget(dialog)
    dialog.patients.item(0).setCheckState(Qt.CheckState.Checked)
    dialog.reference.setCurrentText("  ")
    QTest.keyClicks(dialog.reason, "x")
    dialog.submit()
    assert dialog.error.text() == "Choose whose signed reads are the reference."
    assert ws.trials.trial_settings(coord, trial).protocol.calibration_patients == ()
