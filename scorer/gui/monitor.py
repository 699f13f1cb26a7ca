"""The monitor's window: reading sessions, their timelines, and the audit trail's verification.

Changes no trial data. Sessions come from the event log and the audit rows
(:mod:`scorer.services.sessions`): user, workstation, start, end and how it ended (log-out,
lock timeout, or no log-out with the last activity), cases opened, time on cases (a case left
open counted to the session's last row, marked open-ended), films viewed, scores. A session's
timeline merges its events with its audit rows (each score with old → new and reason, the
visit letter the reader saw and the true visit, signatures, exports); its films table gives
the time and magnifications per film. Filters: user, day, case code. The audit verification
result and head are shown; a session or the whole trail exports to CSV or PDF (each export
audited). A monitor sees case codes and visits, never patients.

Run it on its own: ``python -m scorer.gui.monitor [--screenshot PNG]``.
"""

from __future__ import annotations

import sys
from argparse import Namespace
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from scorer.gui.desk import fill_table, make_table
from scorer.gui.login import _message
from scorer.gui.preview import Preview, run_preview
from scorer.gui.tasks import KeptTasks
from scorer.gui.window_session import WindowSession
from scorer.workspace import ReadingSession, TimelineEntry


class MonitorWindow(QMainWindow):
    """Sessions and timelines over the facade. Signals: ``sessionsLoaded(n)``,
    ``timelineLoaded(n)``, ``verified(ok)``, ``exported(path)``."""

    loggedOut = Signal()
    sessionsLoaded = Signal(int)
    timelineLoaded = Signal(int)
    verified = Signal(bool)
    exported = Signal(str)

    def __init__(
        self,
        workspace: Any,
        session: Any,
        parent: QWidget | None = None,
        logout_on_close: bool = False,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("monitorWindow")
        self.setWindowTitle("scorer — monitor")
        self.ws = workspace
        self.session = session
        self.tasks = KeptTasks()
        self.sessions: list[ReadingSession] = []
        self.timeline: list[TimelineEntry] = []
        self.closed = False
        self.logout_on_close = logout_on_close

        self.user = QComboBox(self)
        self.user.setObjectName("userFilter")
        self.user.addItem("all users", None)
        self.day = QLineEdit(self)
        self.day.setObjectName("dayFilter")
        self.day.setPlaceholderText("day: YYYY-MM-DD")
        self.case = QLineEdit(self)
        self.case.setObjectName("caseFilter")
        self.case.setPlaceholderText("case code")
        apply = QPushButton("Apply", self)
        apply.clicked.connect(self.load_sessions)
        self.day.returnPressed.connect(self.load_sessions)
        self.case.returnPressed.connect(self.load_sessions)
        filters = QHBoxLayout()
        for w in (QLabel("Sessions of", self), self.user, self.day, self.case, apply):
            filters.addWidget(w)
        filters.addStretch(1)

        self.verification = QLabel("Verifying the audit trail…", self)
        self.verification.setObjectName("verification")
        self.verification.setWordWrap(True)
        self.sessions_table = make_table(self, "sessionsTable")
        self.sessions_table.itemSelectionChanged.connect(self.load_timeline)
        self.timeline_table = make_table(self, "timelineTable")
        self.films_table = make_table(self, "filmsTable")
        self.status = QLabel("", self)
        self.status.setObjectName("hint")

        exports = QHBoxLayout()
        for text, slot in (
            ("Session to CSV…", lambda: self.ask_export("session", "csv")),
            ("Session to PDF…", lambda: self.ask_export("session", "pdf")),
            ("Whole trail to CSV…", lambda: self.ask_export("trail", "csv")),
            ("Whole trail to PDF…", lambda: self.ask_export("trail", "pdf")),
        ):
            b = QPushButton(text, self)
            b.clicked.connect(slot)
            exports.addWidget(b)
        exports.addStretch(1)

        splitter = QSplitter(Qt.Orientation.Vertical, self)
        below = QSplitter(Qt.Orientation.Horizontal, self)
        below.addWidget(self.timeline_table)
        below.addWidget(self.films_table)
        below.setSizes([900, 400])
        splitter.addWidget(self.sessions_table)
        splitter.addWidget(below)
        splitter.setSizes([260, 440])
        body = QWidget(self)
        layout = QVBoxLayout(body)
        layout.addWidget(self.verification)
        layout.addLayout(filters)
        layout.addWidget(splitter, 1)
        layout.addLayout(exports)
        layout.addWidget(self.status)
        self.setCentralWidget(body)
        # Lock (Ctrl+L), Log out, Quit (Ctrl+Q); closing asks before it quits.
        self.session_actions = WindowSession(self, workspace, session)
        self.session_actions.loggedOut.connect(self.loggedOut)
        self.resize(1300, 820)
        self.verify()
        self.load_sessions()

    def closeEvent(self, event: Any) -> None:
        if not self.session_actions.may_close(event):
            event.ignore()
            return
        self.closed = True
        if self.logout_on_close:
            self.session_actions.end_at_facade()
        super().closeEvent(event)

    def _gone(self) -> bool:
        return self.closed or not isValid(self) or not isValid(self.status)

    def _failed(self, exc: BaseException) -> None:
        if not self._gone():
            self.status.setText(_message(exc))

    # ------------------------------------------------------------------ loading

    def verify(self) -> None:
        def done(result: Any) -> None:
            if self._gone():
                return
            heads = ", ".join(
                f"{t} {h.seq} rows, head {h.mac[:16]}…" for t, h in result.heads.items()
            )
            if result.ok:
                self.verification.setText(
                    f"The audit trail verifies ({result.signatures} signatures checked): {heads}"
                )
            else:
                self.verification.setText(
                    "THE AUDIT TRAIL DOES NOT VERIFY: " + "; ".join(result.errors)
                )
            self.verified.emit(bool(result.ok))

        self.tasks.run(self.ws.oversight.verify, self.session, done=done, failed=self._failed)

    def load_sessions(self) -> None:
        user = self.user.currentData()
        day = self.day.text().strip() or None
        case = self.case.text().strip() or None
        self.tasks.run(
            self.ws.oversight.reading_sessions,
            self.session,
            user,
            day,
            case,
            done=self._sessions_loaded,
            failed=self._failed,
        )

    def _sessions_loaded(self, rows: list[ReadingSession]) -> None:
        if self._gone():
            return
        self.sessions = rows
        known = {self.user.itemData(i) for i in range(self.user.count())}
        for name in sorted({r.user for r in rows} - known):
            self.user.addItem(name, name)
        fill_table(
            self.sessions_table,
            (
                "Start",
                "End",
                "User",
                "Workstation",
                "Ended",
                "Cases opened",
                "Minutes on cases",
                "Films viewed",
                "Seconds per film",
                "Scores",
                "Events",
            ),
            [
                [
                    r.start[:19].replace("T", " "),
                    r.end[:19].replace("T", " "),
                    r.user,
                    r.where(),
                    r.ended,
                    r.cases_opened,
                    f"{r.seconds_on_cases / 60:.1f}" + (" (open-ended)" if r.open_case else ""),
                    r.images_viewed,
                    "" if r.seconds_per_image is None else r.seconds_per_image,
                    r.scores,
                    r.events,
                ]
                for r in rows
            ],
        )
        self.status.setText(f"{len(rows)} session(s).")
        self.sessionsLoaded.emit(len(rows))

    def selected_session(self) -> ReadingSession | None:
        rows = self.sessions_table.selectionModel().selectedRows()
        if not rows:
            return None
        item = self.sessions_table.item(rows[0].row(), 0)
        return self.sessions[int(item.data(Qt.ItemDataRole.UserRole))] if item else None

    def load_timeline(self) -> None:
        chosen = self.selected_session()
        if chosen is None:
            return
        self.tasks.run(
            self.ws.oversight.session_timeline,
            self.session,
            chosen.session,
            done=self._timeline_loaded,
            failed=self._failed,
        )
        fill_table(
            self.films_table,
            ("Film", "Case", "Seconds", "Magnification(s)", "Records"),
            [
                [i.image, i.case, i.seconds, i.magnification_text(), i.records]
                for i in chosen.images
            ],
        )

    def _timeline_loaded(self, rows: list[TimelineEntry]) -> None:
        if self._gone():
            return
        self.timeline = rows
        fill_table(
            self.timeline_table,
            ("At", "Source", "What", "Subject", "Visit letter", "Visit", "Detail", "Reason"),
            [
                [
                    r.at[:23].replace("T", " "),
                    r.source,
                    r.what,
                    r.subject,
                    r.visit_letter,
                    r.visit,
                    _detail_text(r.detail),
                    r.reason,
                ]
                for r in rows
            ],
        )
        self.timelineLoaded.emit(len(rows))

    # ------------------------------------------------------------------ exports

    def ask_export(self, what: str, fmt: str) -> None:
        if what == "session" and self.selected_session() is None:
            self.status.setText("Select a session first.")
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Export", f"{what}.{fmt}", f"{fmt.upper()} (*.{fmt})"
        )
        if path:
            self.export(what, fmt, Path(path))

    def export(self, what: str, fmt: str, path: Path) -> None:
        """Write the selected session or the whole trail as CSV or PDF (on a worker thread)."""
        chosen = self.selected_session()
        ws, s = self.ws, self.session

        def run() -> str:
            from scorer.core.private_files import write_file
            from scorer.reports.document import table_csv, write

            if what == "trail" and fmt == "csv":
                write_file(path, ws.exchange.export_audit(s))  # owner-only, whole or not at all
                return str(path)
            if what == "trail":
                write(ws.oversight.audit_document(s), path)
                return str(path)
            assert chosen is not None
            doc = ws.oversight.session_document(s, chosen.session)
            if fmt == "pdf":
                write(doc, path)
            else:  # texts a spreadsheet shows as text, never runs as a formula
                write_file(path, table_csv(doc.tables()[0]))
            return str(path)

        def done(written: str) -> None:
            if not self._gone():
                self.status.setText(f"Wrote {written}")
                self.exported.emit(written)

        self.tasks.run(run, done=done, failed=self._failed)


def _detail_text(detail: Any) -> str:
    """A timeline row's detail in one line: "LH MCP1 ERO: 2 → 3" for a score."""
    if detail is None:
        return ""
    if isinstance(detail, dict) and set(detail) == {"old", "new"}:
        old, new = detail["old"], detail["new"]
        if isinstance(old, dict) and isinstance(new, dict) and "area" in new:
            return f"{new['area']}: {_entry(old)} → {_entry(new)}"
        return f"{_flat(old)} → {_flat(new)}"
    if isinstance(detail, dict) and "area" in detail:
        return f"{detail['area']}: – → {_entry(detail)}"
    return _flat(detail)


def _entry(value: dict[str, Any]) -> str:
    """A score as the audit row holds it: the grade (sides summed), or not assessable."""
    if "reason" in value:
        return f"not assessable ({value['reason']})"
    if "sides" in value:
        return "+".join(str(v) for v in value["sides"]) + f"={value.get('score')}"
    return "–" if value.get("score") is None else str(value["score"])


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_flat(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(_flat(v) for v in value) + "]"
    return "" if value is None else str(value)


def _preview_build(folder: Path, _args: Namespace) -> tuple[Any, Any]:
    """The desk's throw-away trial, and a monitor logged in to it."""
    from scorer.gui.desk_sample import build_desk_sample

    ws, _coordinator, _trial = build_desk_sample(folder / "trial")
    admin = ws.accounts.login("ada", "Sunflower-Meadow-7")
    ws.accounts.add_user(admin, "mona", "Mona Monitor", "monitor", "Temporary-pass-0")
    s = ws.accounts.login("mona", "Temporary-pass-0")
    ws.accounts.change_password(s, "Temporary-pass-0", "Harbour-Lantern-2024")
    return ws, s


def _preview_window(built: tuple[Any, Any], _args: Namespace) -> MonitorWindow:
    ws, s = built
    window = MonitorWindow(ws, s)

    def pick(n: int) -> None:
        if n and not window.timeline:
            # The busiest session: a reader's, with scores and signatures.
            busiest = max(range(n), key=lambda i: window.sessions[i].events)
            for row in range(n):
                item = window.sessions_table.item(row, 0)
                if item is not None and int(item.data(Qt.ItemDataRole.UserRole)) == busiest:
                    window.sessions_table.selectRow(row)

    window.sessionsLoaded.connect(pick)
    return window


PREVIEW = Preview(
    "monitor",
    "The monitor's window on a throw-away trial.",
    _preview_window,
    build=_preview_build,
    ready=lambda window, _args: bool(window.timeline),
    size="",
    waiting="Making a throw-away trial with reads, flags and a discrepancy…",
)


def _main(argv: Sequence[str] | None = None) -> int:
    return run_preview(PREVIEW, argv)


if __name__ == "__main__":
    sys.exit(_main())
