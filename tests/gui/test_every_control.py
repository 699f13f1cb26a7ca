"""Every control of every window is exercised, and nothing raises in the Qt event loop.

The log-in (with the first-log-in password change), the reading window (worklist, case view,
scoring grid), every page of the coordinator's desk and the monitor's window are opened over a
real trial part-way through reading (``build_desk_sample``: signed reads, a reader half-way,
a flag, a discrepant patient). The walk then finds every :class:`QAction` (toolbar, menus,
shortcuts-only) and every :class:`QAbstractButton` (push, tool, check and radio buttons) that is
visible and enabled, and triggers or clicks each one; a checkable control is toggled on and back
off. Controls that appear on the way (a popup's buttons, a page's Stop once started) are taken in
further passes. A dialog a control opens is walked too: its buttons as they are (the facade's
refusal), then with its fields filled (the facade's success), then its Cancel on a fresh copy.
Blocking message boxes and menus are closed by a timer; file dialogs answer a path under
``tmp_path``. Controls that end the window (locking, then logging out) go last.

Any exception raised in a slot, a virtual method or a worker's callback fails the test, naming
the control that raised it; so does a walk that exercised fewer controls than it should.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QInputDialog,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QTableWidget,
    QWidget,
    QWidgetAction,
)
from pytestqt.qtbot import QtBot
from shiboken6 import isValid

from scorer.gui import tasks
from scorer.gui.desk import DeskWindow
from scorer.gui.desk_sample import PASSWORD, build_desk_sample, graded
from scorer.gui.monitor import MonitorWindow
from scorer.gui.reading import ReadingWindow, layout_settings
from scorer.gui.sample_case import build_sample_workspace
from scorer.gui.workstation import Workstation

ADMIN_PW = "Sunflower-Meadow-7"
FIRST_PW = "Temporary-pass-0"
NEW_PW = "Quiet-Harbour-Lantern-77"
FILLED_TEXT = "Checked during the control walk."


# ====================================================================== the walker


def _label(obj: QObject) -> str:
    """A control's name for the record: its text (or object name) and where it sits."""
    text = obj.text() if isinstance(obj, (QAction, QAbstractButton)) else ""
    text = text.split("\t")[0].replace("&", "").strip()
    text = text or obj.objectName() or (obj.toolTip()[:40] if hasattr(obj, "toolTip") else "")
    where = []
    parent = obj.parent()
    while parent is not None and len(where) < 4:
        name = parent.objectName()
        if isinstance(parent, QDialog):
            where.append(f"{name or type(parent).__name__} “{parent.windowTitle()}”")
            break
        if name and not name.startswith("qt_"):
            where.append(name)
        elif not where:
            where.append(type(parent).__name__)
        parent = parent.parent()
    return f"{' < '.join(where)}: {type(obj).__name__} “{text}”"


def _role(button: QAbstractButton) -> QDialogButtonBox.ButtonRole | None:
    box = button.parent()
    return box.buttonRole(button) if isinstance(box, QDialogButtonBox) else None


def _is_reject(control: QObject) -> bool:
    return isinstance(control, QAbstractButton) and _role(control) in (
        QDialogButtonBox.ButtonRole.RejectRole,
        QDialogButtonBox.ButtonRole.DestructiveRole,
        QDialogButtonBox.ButtonRole.NoRole,
    )


def _is_accept(control: QObject) -> bool:
    return isinstance(control, QAbstractButton) and _role(control) in (
        QDialogButtonBox.ButtonRole.AcceptRole,
        QDialogButtonBox.ButtonRole.YesRole,
        QDialogButtonBox.ButtonRole.ApplyRole,
    )


def _usable(control: QObject) -> bool:
    if not isValid(control):
        return False
    if isinstance(control, QWidgetAction):
        return False  # a toolbar's holder of a widget (a label): the widget is no control
    if isinstance(control, QAction):
        return (
            control.isEnabled()
            and control.isVisible()
            and not control.isSeparator()
            and control.menu() is None  # a menu's own entry: its items are walked instead
        )
    assert isinstance(control, QAbstractButton)
    return control.isVisible() and control.isEnabled()


def _open_dialogs() -> list[QDialog]:
    return [w for w in QApplication.topLevelWidgets() if isinstance(w, QDialog) and w.isVisible()]


@dataclass
class Walker:
    """Fires controls, waits for the work they start, walks the dialogs they open, and
    records what it exercised and what raised."""

    qtbot: QtBot
    fills: dict[str, str] = field(default_factory=dict)  # field object name -> text to type
    idle: Callable[[], bool] = lambda: True
    before_each: Callable[[], None] = lambda: None
    exercised: list[str] = field(default_factory=list)
    raised: list[str] = field(default_factory=list)
    dismissed: list[str] = field(default_factory=list)
    _exceptions: list[Any] = field(default_factory=list)

    # ------------------------------------------------------------------ waiting

    def settle(self) -> None:
        """Until no task is running (twice, a moment apart: an answer may start more work)."""

        def quiet() -> bool:
            return not tasks._RUNNING and self.idle()

        for _ in range(2):
            self.qtbot.waitUntil(quiet, timeout=60_000)
            self.qtbot.wait(20)

    # ------------------------------------------------------------------ firing

    def fire(self, control: QObject, record: bool = True) -> None:
        label = _label(control)
        seen = len(self._exceptions)
        if isinstance(control, QAction):
            control.trigger()
            if control.isCheckable() and isValid(control) and control.isEnabled():
                self.settle()
                control.trigger()  # and back
        else:
            assert isinstance(control, QAbstractButton)
            self.qtbot.mouseClick(control, Qt.MouseButton.LeftButton)
            if control.isCheckable() and _usable(control):
                self.settle()
                self.qtbot.mouseClick(control, Qt.MouseButton.LeftButton)
        self.settle()
        if record:
            self.exercised.append(label)
        for exc_type, exc, _tb in self._exceptions[seen:]:
            self.raised.append(f"{label}: {exc_type.__name__}: {exc}")

    def fire_and_walk_dialogs(self, control: QObject, record: bool = True, depth: int = 0) -> None:
        before = set(_open_dialogs())
        self.fire(control, record)
        for dialog in [d for d in _open_dialogs() if d not in before]:
            self.walk_dialog(dialog, control, depth + 1)

    # ------------------------------------------------------------------ walking

    def controls(self, root: QWidget) -> list[QObject]:
        found: list[QObject] = [*root.findChildren(QAction), *root.findChildren(QAbstractButton)]
        return found + [a for a in root.actions() if a not in found]

    def walk(
        self,
        root: QWidget,
        last: Callable[[str], bool] = lambda _label: False,
        depth: int = 0,
        skip: Callable[[QObject], bool] = lambda _c: False,
        before_pass: Callable[[], None] = lambda: None,
    ) -> None:
        """Fire every usable control under ``root`` once, in passes until no new one shows
        up; controls for which ``last(label)`` holds wait for the end (in that order).
        ``before_pass`` and :attr:`before_each` set the scene for each pass and before each
        control (as a person would: go back to a case, select a row)."""
        done: set[str] = set()
        deferred: list[str] = []
        for _ in range(8):
            if not isValid(root) or not root.isVisible():
                return
            before_pass()
            self.settle()
            fresh = [
                c
                for c in self.controls(root)
                if _usable(c) and not skip(c) and _label(c) not in done
            ]
            fresh = [c for c in fresh if not _is_reject(c)] + [c for c in fresh if _is_reject(c)]
            if not fresh:
                break
            queue = deque(fresh)
            while queue:
                control = queue.popleft()
                if not isValid(root) or not root.isVisible():
                    return
                if not _usable(control):
                    continue  # gone or disabled by a control fired before it in this pass
                label = _label(control)
                if label in done:
                    continue
                if last(label):
                    if label not in deferred:
                        deferred.append(label)
                    continue
                done.add(label)
                self.before_each()
                if not _usable(control):
                    continue
                usable = {id(c) for c in self.controls(root) if _usable(c)}
                self.fire_and_walk_dialogs(control, depth=depth)
                if not isValid(root):
                    return
                # What the control brought up (a popup's buttons, Stop once started): next.
                queue.extendleft(
                    reversed(
                        [
                            c
                            for c in self.controls(root)
                            if id(c) not in usable
                            and _usable(c)
                            and not skip(c)
                            and _label(c) not in done
                        ]
                    )
                )
        for label in deferred:
            if not isValid(root) or not root.isVisible():
                return
            for control in self.controls(root):
                if _usable(control) and _label(control) == label:
                    self.fire_and_walk_dialogs(control, depth=depth)
                    break

    def fill(self, dialog: QDialog) -> None:
        """Type into the dialog's empty fields: the password where one is asked, else text."""
        for edit in dialog.findChildren(QLineEdit):
            if edit.isVisible() and edit.isEnabled() and not edit.text():
                if edit.objectName() in self.fills:
                    edit.setText(self.fills[edit.objectName()])
                elif edit.echoMode() == QLineEdit.EchoMode.Password:
                    edit.setText(self.fills.get("*password", PASSWORD))
                else:
                    edit.setText(FILLED_TEXT)
        for text in dialog.findChildren(QPlainTextEdit):
            if text.isVisible() and not text.toPlainText():
                text.setPlainText(FILLED_TEXT)

    def walk_dialog(self, dialog: QDialog, opener: QObject, depth: int) -> None:
        """A dialog: its controls as they are (the refusal), then filled in and accepted (the
        success); its Cancel (or Log out) on a fresh copy from the same control, last."""
        assert depth <= 3, f"dialogs nest too deep at {_label(opener)}"
        self.walk(dialog, depth=depth, skip=_is_reject)
        if isValid(dialog) and dialog.isVisible():
            self.fill(dialog)
            for button in dialog.findChildren(QAbstractButton):
                if _is_accept(button) and _usable(button):
                    self.fire_and_walk_dialogs(button, record=False, depth=depth)
                    break
        if isValid(dialog) and dialog.isVisible():
            again: QDialog | None = dialog
        elif _usable(opener):
            self.before_each()
            before = set(_open_dialogs())
            self.fire(opener, record=False)
            opened = [d for d in _open_dialogs() if d not in before]
            again = opened[0] if opened else None
        else:
            again = None
        if again is not None:
            for button in again.findChildren(QAbstractButton):
                if _is_reject(button) and _usable(button):
                    self.fire_and_walk_dialogs(button, depth=depth)
                    break
        for leftover in (dialog, again):
            if leftover is not None and isValid(leftover) and leftover.isVisible():
                leftover.reject()
                self.settle()

    # ------------------------------------------------------------------ blocking dialogs

    def dismiss_blocking(self) -> None:
        """Close a message box, input dialog or menu running its own event loop."""
        popup = QApplication.activePopupWidget()
        if isinstance(popup, QMenu):
            self.dismissed.append(f"menu {[a.text() for a in popup.actions()]}")
            popup.close()
        modal = QApplication.activeModalWidget()
        if isinstance(modal, (QMessageBox, QInputDialog, QFileDialog)):
            text = modal.text() if isinstance(modal, QMessageBox) else modal.windowTitle()
            self.dismissed.append(f"{type(modal).__name__}: {text}")
            modal.done(QDialog.DialogCode.Rejected)


@pytest.fixture
def walker(qtbot: QtBot, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Walker]:
    """A walker whose exceptions are captured for the whole test, with a timer closing
    blocking dialogs and file dialogs answering a path under ``tmp_path``."""
    out = tmp_path / "saved"
    out.mkdir()

    def save_file(_parent: Any, _caption: str = "", name: str = "", _filter: str = "", *_a: Any):
        return str(out / Path(name or "export").name), ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(save_file))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *_a, **_k: ("", "")))
    monkeypatch.setattr(
        QFileDialog, "getExistingDirectory", staticmethod(lambda *_a, **_k: str(out))
    )
    w = Walker(qtbot)
    timer = QTimer()
    timer.setInterval(50)
    timer.timeout.connect(w.dismiss_blocking)
    timer.start()
    with qtbot.captureExceptions() as exceptions:
        w._exceptions = exceptions
        yield w
    timer.stop()
    w.settle()


def assert_walked(w: Walker, at_least: int, must: list[str]) -> None:
    """Nothing raised; at least ``at_least`` distinct controls exercised (the walks found 4,
    56, 34 and 5 when written: a walk that silently finds nothing fails), ``must`` among
    them."""
    assert not w.raised, "exceptions in the Qt event loop:\n" + "\n".join(w.raised)
    assert not w._exceptions, f"exceptions outside any control: {w._exceptions}"
    distinct = sorted(set(w.exercised))
    assert len(distinct) >= at_least, (
        f"only {len(distinct)} controls exercised (expected ≥ {at_least}):\n" + "\n".join(distinct)
    )
    for text in must:
        assert any(text in label for label in distinct), f"“{text}” never exercised:\n" + (
            "\n".join(distinct)
        )


# ====================================================================== the trial


@pytest.fixture(scope="module")
def trial(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One trial part-way through reading, shared by the windows (each walk changes it a
    little, as a person at the desk would): accounts for a monitor and a first log-in."""
    folder = tmp_path_factory.mktemp("every-control")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCORER_DATA_DIR", str(folder / "data"))
        mp.setenv("SCORER_CONFIG", str(folder / "no-site-config.toml"))
        ws, coord, code = build_desk_sample(folder / "trial")
        admin = ws.accounts.login("ada", ADMIN_PW)
        for user, role in (("mona", "monitor"), ("nina", "reader")):
            ws.accounts.add_user(admin, user, user.title(), role, FIRST_PW)
        mona = ws.accounts.login("mona", FIRST_PW)
        ws.accounts.change_password(mona, FIRST_PW, PASSWORD)
        yield {"ws": ws, "coord": coord, "trial": code, "folder": folder}
        ws.close()


# ====================================================================== the windows


def test_every_control_of_the_log_in(qtbot: QtBot, walker: Walker, trial: dict[str, Any]) -> None:
    ws = trial["ws"]
    station = Workstation(ws)
    finished: list[bool] = []
    station.finished.connect(lambda: finished.append(True))
    station.start()
    dialog = station.login_dialog
    assert dialog is not None
    # The first log-in of a reader with no cases yet: Log in empty (refused), then with the
    # administrator's password (the change dialog: refused empty, then the new password),
    # then told there is nothing to read and logged out.
    # The change dialog gets the old password again as the new one (the policy refuses it),
    # then its Cancel; the log-in's Cancel closes the workstation.
    walker.fills = {"username": "nina", "*password": FIRST_PW}
    walker.walk_dialog(dialog, dialog.ok, depth=0)
    assert dialog.change_dialog is not None and dialog.session is None
    assert "must be changed" in dialog.error.text()
    qtbot.waitUntil(lambda: bool(finished), timeout=20_000)
    # Again, and this time a new password: logged in, told there is nothing to read yet
    # (a message box, closed by the walker), logged out.
    finished.clear()
    station = Workstation(ws, username="nina")
    station.finished.connect(lambda: finished.append(True))
    station.start()
    dialog = station.login_dialog
    assert dialog is not None
    dialog.password.setText(FIRST_PW)
    walker.fills = {"newPassword": NEW_PW, "confirmPassword": NEW_PW}
    with qtbot.waitSignal(dialog.logged_in, timeout=20_000):
        walker.fire_and_walk_dialogs(dialog.ok, record=False)
    qtbot.waitUntil(lambda: bool(finished), timeout=20_000)
    assert any("no cases to read" in d for d in walker.dismissed), walker.dismissed
    assert_walked(walker, 4, ["Log in", "Cancel", "Change password"])


ENDS_READING = ("readingWindow: QAction “Log out”", "readingWindow: QAction “Quit”")


def open_reading(qtbot: QtBot, trial: dict[str, Any], ui: Path) -> ReadingWindow:
    """Rosa's reading window (a fresh log-in), once her case and its scores are on screen.
    Not handed to qtbot: logging out deletes the window."""
    ws = trial["ws"]
    rosa = ws.accounts.login("rosa", PASSWORD)
    window = ReadingWindow(
        ws, rosa, trial["trial"], settings=layout_settings(ui), logout_on_close=True
    )
    window.show()
    qtbot.waitUntil(
        lambda: window.model is not None and window.case_view.case is not None, timeout=60_000
    )
    return window


def test_every_control_of_the_reading_window(
    qtbot: QtBot, walker: Walker, trial: dict[str, Any], tmp_path: Path
) -> None:
    ws, code = trial["ws"], trial["trial"]
    rosa = ws.accounts.login("rosa", PASSWORD)
    # Rosa's first case has every visit scored (ready to sign); the others are untouched.
    first = ws.worklists.worklist(rosa, code)[0].code
    opened = ws.reading.open_case(rosa, first)
    for read in opened.reads.values():
        ws.reading.set_scores(rosa, read, graded(1))
    ws.accounts.logout(rosa)
    window = open_reading(qtbot, trial, tmp_path / "ui")
    walker.settle()
    assert window.sign_action.isEnabled()
    walker.idle = lambda: not isValid(window) or window.writer.pending_count == 0
    walker.fills = {"username": "rosa"}

    def back_to_a_signed_case() -> None:
        """Once a case is signed, the reader goes back to it in the worklist (Reopen…)."""
        signed = [i for i, r in enumerate(window.rows) if r["status"] == "signed"]
        if signed and window.case_state() != "signed" and not window.locked:
            table = window.worklist_table
            qtbot.mouseClick(
                table.viewport(),
                Qt.MouseButton.LeftButton,
                pos=table.visualItemRect(table.item(signed[0], 0)).center(),
            )

    # Locking (and, on its second dialog, logging out) ends the window: last. Log out and
    # Quit end it too: each on a window of its own, after.
    walker.walk(
        window,
        last=lambda label: label.endswith("“Lock”"),
        skip=lambda c: _label(c) in ENDS_READING,
        before_pass=back_to_a_signed_case,
    )
    qtbot.waitUntil(lambda: not isValid(window) or not window.isVisible(), timeout=20_000)
    status = {r.code: r.status for r in ws.worklists.worklist(trial["coord"], code, "rosa")}
    assert status[first] != "not started"
    for ending in ENDS_READING:
        window = open_reading(qtbot, trial, tmp_path / "ui")
        walker.settle()
        (control,) = [c for c in walker.controls(window) if _label(c) == ending]
        walker.fire_and_walk_dialogs(control)
        qtbot.waitUntil(lambda w=window: not isValid(w) or not w.isVisible(), timeout=20_000)
    assert_walked(
        walker,
        54,
        [
            "Next ▶",
            "◀ Previous",
            "Sign case",
            "Reopen",
            "Lock",
            "“Log out”",
            "“Quit”",
            "Light theme",
            "Worklist",
            "Sync",
            "Ruler",
            "Rest = 0",
            "Region NA",
            "Undo",
            "Flag to coordinator",
            "Window",
            "Fit",
        ],
    )


#: The Session menu of the desk and the monitor: Lock (ended by its dialog's Log out) and Log
#: out end the window, so they are walked last, each on a window of its own, and Quit too.
SESSION_COMMANDS = ("Lock", "Log out", "Quit")


def is_session_command(control: QObject) -> bool:
    return (
        isinstance(control, QAction)
        and control.text() in SESSION_COMMANDS
        and isinstance(control.parent(), DeskWindow | MonitorWindow)
    )


def walk_session_commands(qtbot: QtBot, walker: Walker, open_window: Callable[[], Any]) -> None:
    for text in SESSION_COMMANDS:
        window = open_window()
        walker.settle()
        (control,) = [
            c for c in walker.controls(window) if is_session_command(c) and c.text() == text
        ]
        walker.fire_and_walk_dialogs(control)
        if text == "Quit":
            # Its question is closed as a blocking box is: Stay, the default; the window stays.
            assert walker.dismissed[-1] == "QMessageBox: Log out and quit?"
            assert window.isVisible()
            window.close()
        qtbot.waitUntil(lambda w=window: not isValid(w) or not w.isVisible(), timeout=20_000)


def test_every_control_of_every_desk_page(
    qtbot: QtBot, walker: Walker, trial: dict[str, Any]
) -> None:
    ws, code = trial["ws"], trial["trial"]

    def open_desk() -> DeskWindow:
        coord = ws.accounts.login("cora", "Willow-Compass-2024")
        desk = DeskWindow(ws, coord, code)
        qtbot.addWidget(desk)
        desk.show()
        qtbot.waitUntil(lambda: all(p.loaded_at is not None for p in desk.pages), timeout=60_000)
        return desk

    window = open_desk()
    # Receiving listens on a free port of this machine only, from one modality.
    window.receive.port.setValue(0)
    window.receive.host.setText("127.0.0.1")
    window.receive.allow.setText("MODALITY1")
    for index, page in enumerate(window.pages):
        window.tabs.setCurrentIndex(index)
        walker.settle()

        def select_a_row(page: QWidget = page) -> None:
            """The coordinator picks a row for the page's actions (a refresh clears it)."""
            for table in page.findChildren(QTableWidget):
                if table.rowCount() and not table.selectionModel().selectedRows():
                    table.selectRow(0)

        walker.before_each = select_a_row
        walker.walk(window, skip=is_session_command)
    assert window.receive.receiver is None  # started and stopped again
    window.close()
    walker.before_each = lambda: None
    walker.fills = {"password": "Willow-Compass-2024"}  # the coordinator's, to unlock
    walk_session_commands(qtbot, walker, open_desk)
    assert_walked(
        walker,
        32,
        [
            "progressPage < deskWindow: QPushButton “Refresh”",
            "Reassign",
            "Mask",
            "Joints",
            "JointsPanel < actionDialog",  # Place <region> of whichever image is first
            "Region without image",
            "imagesPage < deskWindow: QPushButton “View…”",
            "deskViewer",  # the viewer's Place, Save joints, Pass and Fail…
            "failDialog",  # the impact shown before failing, and its Fail image / Cancel
            "Open images",
            "Answer and close",
            "Show closed flags",
            "Calibration set",
            "calibrationSetDialog “Choose the calibration set”: QPushButton “Set”",
            "Make calibration worklists",
            "Release reader",
            "Freeze SDC",
            "freezeSdcDialog “Freeze the SDC”: QPushButton “Sign and freeze”",
            "deskWindow: QAction “Lock”",
            "deskWindow: QAction “Log out”",
            "deskWindow: QAction “Quit”",
            "Update queue",
            "Assign to adjudicator",
            "Start receiving",
            "Stop receiving",
            "Cancel",
        ],
    )


@pytest.fixture
def small_trial(tmp_path: Path) -> Iterator[Any]:
    """A trial at its start: one patient, a reader who scored the first visit of her case.
    (The monitor exports the whole audit trail to PDF, which takes about 40 ms a row: the
    shared trial's 2,300 rows would take a minute and a half.)"""
    sample = build_sample_workspace(tmp_path / "small", patients=1, visits=2, pixel_mm=1.0)
    ws, rita = sample.workspace, sample.session
    case = ws.worklists.worklist(rita, sample.trial)[0].code
    ws.reading.set_scores(rita, ws.reading.open_case(rita, case).reads["A"], graded(2))
    ws.accounts.logout(rita)
    admin = ws.accounts.login("ada", ADMIN_PW)
    ws.accounts.add_user(admin, "mona", "Mona Monitor", "monitor", FIRST_PW)
    mona = ws.accounts.login("mona", FIRST_PW)
    ws.accounts.change_password(mona, FIRST_PW, PASSWORD)
    yield ws
    ws.close()


def test_every_control_of_the_monitor(
    qtbot: QtBot, walker: Walker, small_trial: Any, tmp_path: Path
) -> None:
    ws = small_trial

    def open_monitor() -> MonitorWindow:
        mona = ws.accounts.login("mona", PASSWORD)
        monitor = MonitorWindow(ws, mona)
        qtbot.addWidget(monitor)
        with qtbot.waitSignal(monitor.sessionsLoaded, timeout=30_000):
            monitor.show()
        return monitor

    window = open_monitor()
    walker.settle()
    assert any(s.user == "rita" for s in window.sessions)

    def select_the_readers_session() -> None:
        """The monitor picks the reader's session (reloading the sessions clears it)."""
        table = window.sessions_table
        if not table.selectionModel().selectedRows():
            for row in range(table.rowCount()):
                if table.item(row, 2).text() == "rita":
                    table.selectRow(row)
            walker.settle()

    walker.before_each = select_the_readers_session
    walker.walk(window, skip=is_session_command)
    window.close()
    walker.before_each = lambda: None
    walk_session_commands(qtbot, walker, open_monitor)
    written = sorted(p.name for p in (tmp_path / "saved").iterdir())
    assert written == ["session.csv", "session.pdf", "trail.csv", "trail.pdf"]
    assert all(os.path.getsize(tmp_path / "saved" / n) for n in written)
    assert_walked(
        walker,
        5,
        ["Apply", "Session to CSV", "Whole trail to PDF", "“Lock”", "“Log out”", "“Quit”"],
    )
