"""The workstation: log in, pick the trial, and read (or coordinate).

:func:`run_workstation` shows the :class:`~scorer.gui.login.LoginDialog` at once and opens the
database behind it (:class:`WorkspaceOpener`: the storage and imaging libraries load while the
person types), then shows
(first-log-in password change included) and then, for a reader or an adjudicator, the
:class:`~scorer.gui.reading.ReadingWindow` on their trial (a choice when they read in several),
for a coordinator the :class:`~scorer.gui.desk.DeskWindow`. Monitors and administrators are
told which tool serves them for now. Logging out from a locked session brings the log-in back.

``scorer gui`` and ``scorer demo`` call it; ``python -m scorer.gui.workstation --db FILE``
runs it on its own.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QInputDialog, QMessageBox, QWidget

from scorer.gui.login import LoginDialog
from scorer.gui.qt_runtime import WindowCannotOpen, window_problem
from scorer.gui.settings import layout_settings
from scorer.gui.tasks import KeptTasks
from scorer.gui.theme import apply_theme

if TYPE_CHECKING:
    from scorer.gui.reading import ReadingWindow

READING_ROLES = ("reader", "adjudicator")


class WorkspaceOpener:
    """Opens the workspace on a thread of its own, so the log-in window is up before the
    storage, imaging and reading-window modules have loaded; :meth:`get` waits for it (the
    log-in's check runs on a worker, so waiting there costs the screen nothing)."""

    def __init__(self, db: str | None, connect: Callable[[], Any] | None = None) -> None:
        self._db = db
        self._connect = connect  # a reading centre's server instead of a database
        self._done = threading.Event()
        self._workspace: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._open, name="scorer-open", daemon=True)
        self._starting = threading.Lock()
        self._started = False

    def start(self) -> None:
        """Start opening (once, whoever asks first: the UI's timer or a waiting log-in)."""
        with self._starting:
            if not self._started:
                self._started = True
                self._thread.start()

    def _open(self) -> None:
        try:
            if self._connect is not None:
                self._workspace = self._connect()
            else:
                from scorer.workspace import Workspace

                self._workspace = Workspace.open(self._db)
        except BaseException as exc:  # reported on the UI thread and to whoever waits
            self._error = exc
        finally:
            self._done.set()
        if self._error is None:
            # What the windows after the log-in need, loaded while the person types.
            import scorer.gui.desk
            import scorer.gui.reading  # noqa: F401

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def error(self) -> BaseException | None:
        return self._error if self._done.is_set() else None

    def get(self) -> Any:
        """The open workspace (waits for it); raises what opening raised."""
        self.start()
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._workspace

    def close(self) -> None:
        if self._done.is_set() and self._workspace is not None:
            self._workspace.close()


class Workstation(QObject):
    """The log-in → trial → reading window sequence over one open workspace.

    Signals: ``readingOpened(window)`` once a reading window is shown, ``finished()`` when
    the person closes the log-in (or the last window).
    """

    readingOpened = Signal(object)
    deskOpened = Signal(object)
    monitorOpened = Signal(object)
    finished = Signal()

    def __init__(
        self,
        workspace: Any,
        *,
        username: str = "",
        trial: str | None = None,
        choose_trial: Callable[[QWidget | None, list[dict[str, Any]]], str | None] | None = None,
        password: str | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._workspace = workspace
        self.open_error: BaseException | None = None
        self.username = username
        self._password = password  # for the first log-in only (scorer gui --password-stdin)
        self.trial = trial
        self.choose_trial = choose_trial or _ask_trial
        self.login_dialog: LoginDialog | None = None
        self.window: ReadingWindow | None = None
        self.tasks = KeptTasks()

    @property
    def ws(self) -> Any:
        """The open workspace (given, or waited for from its :class:`WorkspaceOpener`)."""
        if isinstance(self._workspace, WorkspaceOpener):
            return self._workspace.get()
        return self._workspace

    def start(self, ended: str = "") -> None:
        """Show the log-in dialog; ``ended``: why the last session ended, shown in it."""
        dialog = LoginDialog(
            lambda user, password: self.ws.accounts.login(user, password),
            lambda *args: self.ws.accounts.change_password(*args),
            username=self.username,
        )
        self.login_dialog = dialog
        dialog.logged_in.connect(self._logged_in)
        dialog.rejected.connect(self._login_cancelled)
        dialog.show()
        dialog.raise_()
        if ended:
            dialog.show_error(ended)
            dialog.adjustSize()  # room for the message
        if self._password:
            # Given on standard input: log in as if typed, once; then forget it.
            dialog.password.setText(self._password)
            self._password = None
            QTimer.singleShot(0, dialog.submit)
        if isinstance(self._workspace, WorkspaceOpener):
            QTimer.singleShot(0, self._workspace.start)
            self._watch_opening()

    def _watch_opening(self) -> None:
        """Until the workspace is open: if opening fails, say why in the log-in window."""
        opener = self._workspace
        assert isinstance(opener, WorkspaceOpener)
        if not opener.done:
            QTimer.singleShot(25, self._watch_opening)
            return
        if opener.error is not None and self.login_dialog is not None:
            self.open_error = opener.error
            self.login_dialog.show_error(str(opener.error) or type(opener.error).__name__)
            self.login_dialog.ok.setEnabled(False)
            self.login_dialog.adjustSize()  # room for the message

    def _login_cancelled(self) -> None:
        if self.window is None:
            self.finished.emit()

    def _logged_in(self, session: Any) -> None:
        self.username = session.username
        if session.role == "coordinator":
            self.tasks.run(
                self.ws.trials.list_trials,
                session,
                done=lambda trials: self._desk_trials(session, trials),
                failed=lambda exc: self._failed(session, exc),
            )
            return
        if session.role == "monitor":
            from scorer.gui.monitor import MonitorWindow

            window = MonitorWindow(self.ws, session, logout_on_close=True)
            window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
            window.loggedOut.connect(lambda: self.start())
            window.destroyed.connect(self._window_gone)
            self.window = window  # type: ignore[assignment]
            window.show()
            window.activateWindow()
            self.monitorOpened.emit(window)
            return
        if session.role not in READING_ROLES:
            QMessageBox.information(
                None,
                "scorer",
                "You are logged in as an administrator: accounts, backups and the audit "
                "trail's verification are on the command line (`scorer user ...`, "
                "`scorer backup`, `scorer audit verify`).",
            )
            self.ws.accounts.logout(session)
            self.finished.emit()
            return
        self.tasks.run(
            self.ws.worklists.reading_trials,
            session,
            done=lambda trials: self._trials_known(session, trials),
            failed=lambda exc: self._failed(session, exc),
        )

    def _trials_known(self, session: Any, trials: list[Any]) -> None:
        codes = [t.code for t in trials]
        if self.trial is not None and self.trial in codes:
            trial: str | None = self.trial
        elif not trials:
            QMessageBox.information(
                None, "scorer", "You have no cases to read yet. Your coordinator assigns them."
            )
            self.ws.accounts.logout(session)
            self.finished.emit()
            return
        elif len(trials) == 1:
            trial = codes[0]
        else:
            trial = self.choose_trial(None, [dataclasses.asdict(t) for t in trials])
        if trial is None:
            self.ws.accounts.logout(session)
            self.finished.emit()
            return
        self.open_reading(session, trial)

    def _desk_trials(self, session: Any, trials: list[Any]) -> None:
        codes = [t.code for t in trials]
        if self.trial in codes:
            trial: str | None = self.trial
        elif not trials:
            QMessageBox.information(
                None, "scorer", "There is no trial yet: create one with `scorer trial create`."
            )
            trial = None
        elif len(trials) == 1:
            trial = codes[0]
        else:
            rows = [{**t.to_dict(), "cases": "", "signed": ""} for t in trials]
            trial = self.choose_trial(None, rows)
        if trial is None:
            self.ws.accounts.logout(session)
            self.finished.emit()
            return
        self.open_desk(session, trial)

    def open_desk(self, session: Any, trial: str) -> Any:
        from scorer.gui.desk import DeskWindow

        window = DeskWindow(self.ws, session, trial, logout_on_close=True)
        window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        window.loggedOut.connect(lambda: self.start())  # the log-in again, for the next person
        window.destroyed.connect(self._window_gone)
        self.window = window  # type: ignore[assignment]
        window.show()
        window.raise_()
        window.activateWindow()
        self.deskOpened.emit(window)
        return window

    def open_reading(self, session: Any, trial: str) -> ReadingWindow:
        from scorer.gui.reading import ReadingWindow

        window = ReadingWindow(
            self.ws,
            session,
            trial,
            settings=layout_settings(Path(self.ws.images.cache_dir).parent),
            logout_on_close=True,
        )
        window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        # Logged out, or the session ended by a change to the account (the log-in says why).
        window.loggedOut.connect(lambda: self.start(ended=window.ended_because))
        window.destroyed.connect(self._window_gone)
        self.window = window
        window.show()  # maximised at a reader's first session (ReadingLayout.restore)
        window.raise_()
        window.activateWindow()
        self.readingOpened.emit(window)
        return window

    def _window_gone(self) -> None:
        self.window = None
        try:
            login_open = self.login_dialog is not None and self.login_dialog.isVisible()
        except RuntimeError:  # the dialog is gone already (the application is closing)
            login_open = False
        if not login_open:
            self.finished.emit()

    def _failed(self, session: Any, exc: BaseException) -> None:
        QMessageBox.warning(None, "scorer", str(exc) or type(exc).__name__)
        self.ws.accounts.logout(session)
        self.finished.emit()


def _ask_trial(parent: QWidget | None, trials: list[dict[str, Any]]) -> str | None:
    labels = [f"{t['code']} — {t['name']} ({t['signed']} of {t['cases']} signed)" for t in trials]
    label, ok = QInputDialog.getItem(parent, "scorer", "Trial to read:", labels, 0, False)
    return trials[labels.index(label)]["code"] if ok else None


def has_display() -> bool:
    """Whether a window can be shown here (a Linux machine without X or Wayland cannot, nor
    one that lacks a library Qt's xcb platform plugin needs: :func:`window_problem` says why)."""
    return window_problem() is None


def run_workstation(
    db: str | None = None,
    *,
    username: str = "",
    trial: str | None = None,
    theme: str = "dark",
    password: str | None = None,
    connect: Callable[[], Any] | None = None,
) -> int:
    """Show the log-in at once, open the database behind it (or ``connect()`` to a reading
    centre's server), and run the workstation until its last window closes. If the database
    cannot be opened, the log-in says why and this raises it once the window is closed. A
    ``password`` logs ``username`` in at once."""
    from scorer.store.location import data_dir

    app = QApplication.instance()
    if not isinstance(app, QApplication):
        # Qt would abort with "could not load the Qt platform plugin": say why first.
        problem = window_problem()
        if problem is not None:
            raise WindowCannotOpen(problem)
        app = QApplication(sys.argv[:1])
    app.setApplicationName("scorer")
    settings = layout_settings(data_dir())
    apply_theme(app, str(settings.value("ui/theme", theme)))
    app.setQuitOnLastWindowClosed(False)
    opener = WorkspaceOpener(db, connect)
    try:
        station = Workstation(opener, username=username, trial=trial, password=password)
        station.finished.connect(app.quit)
        station.start()
        code = int(app.exec())
        if station.open_error is not None:
            raise station.open_error
        return code
    finally:
        opener.close()


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The scorer workstation.")
    parser.add_argument("--db", help="database (SQLite path or URL)")
    parser.add_argument("--user", default="", help="user ID to fill in")
    parser.add_argument("--trial", help="trial to open")
    args = parser.parse_args(list(argv) if argv is not None else sys.argv[1:])
    try:
        return run_workstation(args.db, username=args.user, trial=args.trial)
    except WindowCannotOpen as exc:
        print(f"scorer: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(_main())
