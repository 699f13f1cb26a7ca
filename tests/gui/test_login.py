"""Logging in against a real workspace: the facade's messages for a wrong password and a
locked account, the first-log-in password change with its policy, unlocking after
inactivity, and passwords never shown or logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QLabel, QLineEdit
from pytestqt.qtbot import QtBot

from scorer.gui.login import ChangePasswordDialog, LoginDialog, UnlockDialog
from scorer.workspace import Settings, Workspace

ADMIN_PW = "Sunflower-Meadow-7"
FIRST_PW = "Temporary-pass-9"  # set by the administrator; must be changed at first log-in
OWN_PW = "Harbour-Lantern-2025"


@dataclass
class Desk:
    ws: Workspace
    folder: Path


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    """Accounts: rita (first log-in), rob (for lockouts), carl (password changed already).
    Accounts lock after three failures, to keep the test short."""
    folder = tmp_path_factory.mktemp("login")
    ws = Workspace.initialize(
        "ada",
        "Ada Admin",
        ADMIN_PW,
        db=str(folder / "login.db"),
        settings=Settings(lockout_attempts=3),
    )
    admin = ws.accounts.login("ada", ADMIN_PW)
    for user in ("rita", "rob", "carl"):
        ws.accounts.add_user(admin, user, user.title(), "reader", FIRST_PW)
    carl = ws.accounts.login("carl", FIRST_PW)
    ws.accounts.change_password(carl, FIRST_PW, OWN_PW)
    yield Desk(ws, folder)
    ws.close()


def log_in(qtbot: QtBot, dialog: LoginDialog, user: str, password: str) -> None:
    dialog.username.setText(user)
    dialog.password.setText(password)
    qtbot.mouseClick(dialog.ok, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.busy, timeout=10_000)


def shown_text(dialog: QDialog) -> str:
    return " ".join(label.text() for label in dialog.findChildren(QLabel))


def test_a_wrong_password_shows_the_facades_message_in_red(
    qtbot: QtBot, desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dialog = LoginDialog(desk.ws.accounts.login, desk.ws.accounts.change_password)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.password.echoMode() == QLineEdit.EchoMode.Password
    log_in(qtbot, dialog, "carl", "Not-the-password-1")
    error = dialog.findChild(QLabel, "error")
    assert error is dialog.error and error.isVisible()
    assert error.text().startswith("wrong user ID or password")
    assert dialog.password.text() == ""  # cleared for the next try
    assert dialog.session is None and dialog.result() != QDialog.DialogCode.Accepted
    # An unknown user ID gets the very same words.
    log_in(qtbot, dialog, "nobody", "Not-the-password-1")
    assert error.text().startswith("wrong user ID or password")
    # The right password logs in.
    with qtbot.waitSignal(dialog.logged_in, timeout=10_000):
        log_in(qtbot, dialog, "carl", OWN_PW)
    assert dialog.session is not None and dialog.session.username == "carl"
    assert dialog.result() == QDialog.DialogCode.Accepted
    for secret in ("Not-the-password-1", OWN_PW):
        assert secret not in caplog.text
        assert secret not in shown_text(dialog)


def test_repeated_failures_lock_the_account_and_say_so(qtbot: QtBot, desk: Desk) -> None:
    dialog = LoginDialog(desk.ws.accounts.login, desk.ws.accounts.change_password)
    qtbot.addWidget(dialog)
    dialog.show()
    for _ in range(3):
        log_in(qtbot, dialog, "rob", "Wrong-password-22")
    # The failure that locks it says what any wrong password says (an unknown user ID's
    # words: nothing tells that "rob" exists), which names the lockout rule.
    assert dialog.error.text() == (
        "wrong user ID or password (after 3 failed attempts in a row an account locks for "
        "15 minutes)"
    )
    log_in(qtbot, dialog, "rob", "Wrong-password-22")  # a wrong one while locked: the same
    assert dialog.error.text().startswith("wrong user ID or password")
    log_in(qtbot, dialog, "rob", FIRST_PW)  # the right password learns why it is refused
    assert "locked after repeated failed log-ins" in dialog.error.text()
    assert dialog.session is None


def test_the_first_log_in_asks_for_a_new_password_and_checks_the_policy(
    qtbot: QtBot, desk: Desk
) -> None:
    dialog = LoginDialog(desk.ws.accounts.login, desk.ws.accounts.change_password)
    qtbot.addWidget(dialog)
    dialog.show()
    log_in(qtbot, dialog, "rita", FIRST_PW)
    change = dialog.change_dialog
    assert isinstance(change, ChangePasswordDialog)
    qtbot.waitUntil(change.isVisible)
    assert dialog.session is None  # not logged in until the password is changed
    for field in (change.old, change.new, change.confirm):
        assert field.echoMode() == QLineEdit.EchoMode.Password

    def attempt(new: str, again: str | None = None) -> str:
        change.new.setText(new)
        change.confirm.setText(new if again is None else again)
        qtbot.mouseClick(change.ok, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not change.busy, timeout=10_000)
        return change.error.text()

    assert attempt("short") == "password refused: it must be at least 10 characters"
    assert attempt("rita-is-my-password") == (
        "password refused: it is (or contains) the user ID or name"
    )
    assert attempt(OWN_PW, OWN_PW + "x") == "The two new passwords differ."
    assert attempt(FIRST_PW) == "the new password must differ from the old one"
    with qtbot.waitSignal(dialog.logged_in, timeout=10_000):
        attempt(OWN_PW)
    assert change.result() == QDialog.DialogCode.Accepted
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.session.must_change_password is False
    assert not desk.ws.accounts.login("rita", OWN_PW).must_change_password


def test_unlock_after_inactivity_needs_the_password(qtbot: QtBot, desk: Desk) -> None:
    session = desk.ws.accounts.login("carl", OWN_PW)
    desk.ws.accounts.lock(session)
    dialog = UnlockDialog(lambda pw: desk.ws.accounts.unlock(session, pw), "carl")
    qtbot.addWidget(dialog)
    dialog.show()
    assert "locked after inactivity" in dialog.message.text()
    assert dialog.password.echoMode() == QLineEdit.EchoMode.Password
    dialog.password.setText("Not-the-password-1")
    qtbot.mouseClick(dialog.ok, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.error.isVisible(), timeout=10_000)
    assert dialog.error.text().startswith("wrong password (2 attempt(s) left")
    assert session.locked
    dialog.password.setText(OWN_PW)
    with qtbot.waitSignal(dialog.accepted, timeout=10_000):
        qtbot.mouseClick(dialog.ok, Qt.MouseButton.LeftButton)
    assert not session.locked
    assert dialog.password.text() == ""


def test_the_workstation_shows_the_log_in_before_the_database_is_open(
    qtbot: QtBot, desk: Desk
) -> None:
    """`scorer gui` puts the log-in on screen at once and opens the database behind it; a
    log-in typed before the opening finished waits for it and succeeds."""
    from scorer.gui.workstation import WorkspaceOpener, Workstation

    opener = WorkspaceOpener(str(desk.folder / "login.db"))
    station = Workstation(opener, username="carl")
    station.start()
    dialog = station.login_dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.addWidget(dialog)
    assert not opener.done  # not even started: the window came first
    dialog.logged_in.disconnect(station._logged_in)  # carl has no trial: stop at the log-in
    with qtbot.waitSignal(dialog.logged_in, timeout=30_000):
        log_in(qtbot, dialog, "carl", OWN_PW)
    assert opener.done and opener.error is None
    assert dialog.session is not None and dialog.session.username == "carl"
    opener.get().accounts.logout(dialog.session)
    opener.close()


def test_a_database_that_cannot_be_opened_is_named_in_the_log_in(
    qtbot: QtBot, tmp_path: Path
) -> None:
    from scorer.gui.workstation import WorkspaceOpener, Workstation

    missing = tmp_path / "nowhere.sqlite"
    station = Workstation(WorkspaceOpener(str(missing)))
    station.start()
    dialog = station.login_dialog
    assert dialog is not None
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: station.open_error is not None, timeout=30_000)
    assert dialog.error.isVisible() and "no scorer database" in dialog.error.text()
    assert str(missing) in dialog.error.text()
    assert not dialog.ok.isEnabled()
    assert not missing.exists()  # nothing was created
