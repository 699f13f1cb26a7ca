"""The coordinator's desk: progress, image QC, reader flags, calibration and adjudication.

:class:`DeskWindow` is one window with a page per job, each over the facade (every change goes
through it, audited, with a reason where the facade asks for one):

- **Progress**: per reader (signed, in progress, not started, re-reads, calibration, median
  time per case) and per patient; refreshed every 30 seconds on a worker thread, never
  blocking the window.
- **Images**: every imported image with its flags; reassign to a patient, visit or regions;
  mask burned-in text by drawing rectangles on the image (the readers' copy changes, the
  original does not); place and correct the joint positions by a three-click fit and dragging
  (:mod:`scorer.gui.desk_joints`); mark a region without an image not assessable for all
  readers.
- **Flags**: the readers' messages, answered and closed here.
- **Calibration**: each reader's agreement with the reference reads (ICC, % exact, % within
  one grade per feature); choose the calibration set; make the calibration worklists;
  release a reader.
- **Adjudication**: the rule in force, the queue with its reasons, the adjudicator, and the
  final scores; freeze the SDC (its value, level, n and readers shown first, then signed),
  update the queue, assign it to an adjudicator.

The Session menu locks (``Ctrl+L``), logs out and quits (``Ctrl+Q``); closing the window asks
first (:mod:`scorer.gui.window_session`).

Run it on its own: ``python -m scorer.gui.desk [--screenshot PNG]`` builds a throw-away trial.
"""

from __future__ import annotations

import sys
import time
from argparse import ArgumentParser, Namespace
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QColor, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from scorer.core.import_flags import FLAG_KINDS, flag_kinds
from scorer.core.printable import printable
from scorer.gui.desk_actions import CalibrationSetDialog, FreezeSdcDialog, WorkerDialog, grow_to_fit
from scorer.gui.desk_drift import DriftPage
from scorer.gui.desk_joints import JointCanvas, JointsPanel, joint_points_to_save
from scorer.gui.desk_joints import loaded as joints_loaded
from scorer.gui.desk_viewer import DeskFilm, DeskViewer, FailDialog, ask_fail, open_viewer
from scorer.gui.login import _error_label, _message
from scorer.gui.preview import Preview, run_preview
from scorer.gui.tasks import KeptTasks
from scorer.gui.viewer import frame_to_qimage
from scorer.gui.window_session import WindowSession
from scorer.workspace import (
    Adjudications,
    AdjudicationUpdate,
    CalibrationReport,
    CalibrationWorklists,
    Flag,
    Progress,
)

REFRESH_MS = 30_000
REGIONS = ("LH", "RH", "LF", "RF")


def flag_visit(f: Flag) -> str:
    """A flag's visit for the coordinator: the reader's letter and the true visit it stands
    for ("C → W52"), the letter alone, or "" for a flag on the whole case."""
    if f.letter and f.visit:
        return f"{f.letter} → {f.visit}"
    return f.letter or f.visit or ""


def fill_table(table: QTableWidget, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Put ``rows`` in ``table`` under ``headers`` (read-only cells, text as given)."""
    table.setSortingEnabled(False)
    table.clear()
    table.setColumnCount(len(headers))
    table.setHorizontalHeaderLabels(list(headers))
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            # Cells show untrusted text (source file names, reasons, AE titles): escaped.
            item = QTableWidgetItem("" if value is None else printable(value))
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            item.setData(Qt.ItemDataRole.UserRole, r)  # the row's place in ``rows``
            table.setItem(r, c, item)
    table.resizeColumnsToContents()
    table.horizontalHeader().setStretchLastSection(True)
    if not table.property("sortChosen"):
        table.setProperty("sortChosen", True)
        table.horizontalHeader().setSortIndicator(0, Qt.SortOrder.AscendingOrder)
    table.setSortingEnabled(True)  # click a heading to sort; rows keep their data index


def make_table(parent: QWidget, name: str) -> QTableWidget:
    table = QTableWidget(parent)
    table.setObjectName(name)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setAlternatingRowColors(True)
    table.verticalHeader().hide()
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    return table


class ActionDialog(QDialog):
    """A form whose OK runs ``run(values)`` on the worker pool; the facade's message is shown
    on failure (the dialog stays, nothing changed), and the dialog closes on success."""

    succeeded = Signal(object)

    def __init__(
        self,
        title: str,
        text: str,
        fields: Sequence[tuple[str, QWidget]],
        run: Callable[[dict[str, Any]], Any],
        parent: QWidget | None = None,
        ok_text: str = "OK",
        extra: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setObjectName("actionDialog")
        self._run = run
        self.fields = dict(fields)
        self.tasks = KeptTasks()
        self.busy = False
        self.result_value: Any = None
        layout = QVBoxLayout(self)
        if text:
            label = QLabel(text, self)
            label.setWordWrap(True)
            layout.addWidget(label)
        if extra is not None:
            layout.addWidget(extra, 1)
        form = QFormLayout()
        for name, widget in fields:
            widget.setParent(self)
            form.addRow(name, widget)
        layout.addLayout(form)
        self.error = _error_label(self)
        layout.addWidget(self.error)
        self.buttons = QDialogButtonBox(self)
        self.ok = self.buttons.addButton(ok_text, QDialogButtonBox.ButtonRole.AcceptRole)
        self.ok.setObjectName("okButton")
        self.ok.setDefault(True)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(440)

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, w in self.fields.items():
            if isinstance(w, QLineEdit):
                out[name] = w.text().strip()
            elif isinstance(w, QComboBox):
                out[name] = w.currentData() if w.currentData() is not None else w.currentText()
            elif isinstance(w, QCheckBox):
                out[name] = w.isChecked()
            elif isinstance(w, RegionChoice):
                out[name] = w.regions()
        return out

    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(bool(text))
        grow_to_fit(self)  # else a long message is cut to the one line there was room for

    def submit(self) -> None:
        if self.busy:
            return
        self.busy = True
        self.ok.setEnabled(False)
        self.show_error("")
        self.tasks.run(self._run, self.values(), done=self._done, failed=self._failed)

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


class RegionChoice(QWidget):
    """Four check boxes, LH RH LF RF."""

    def __init__(self, checked: Sequence[str] = (), parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.boxes = {}
        for r in REGIONS:
            box = QCheckBox(r, self)
            box.setChecked(r in checked)
            layout.addWidget(box)
            self.boxes[r] = box
        layout.addStretch(1)

    def regions(self) -> list[str]:
        return [r for r, b in self.boxes.items() if b.isChecked()]


class MaskCanvas(QWidget):
    """An image on which rectangles are drawn with the left button (right click: remove the
    last); :meth:`rectangles` gives them in stored pixels (x, y, width, height)."""

    changed = Signal()

    def __init__(
        self, pixels: np.ndarray, stored: tuple[int, int], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("maskCanvas")
        self._pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
        self._image = frame_to_qimage(self._pixels)
        self.stored = stored  # rows, columns of the stored image
        self.rects: list[QRectF] = []  # in stored pixels
        self._start: QPointF | None = None
        self._current: QRectF | None = None
        self.setMinimumSize(420, 360)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setMouseTracking(False)

    # geometry: the image fitted in the widget, centred
    def _frame(self) -> tuple[float, float, float]:
        rows, cols = self.stored
        scale = min(self.width() / cols, self.height() / rows)
        x0 = (self.width() - cols * scale) / 2
        y0 = (self.height() - rows * scale) / 2
        return scale, x0, y0

    def to_stored(self, p: QPointF) -> QPointF:
        scale, x0, y0 = self._frame()
        rows, cols = self.stored
        x = min(max((p.x() - x0) / scale, 0.0), float(cols))
        y = min(max((p.y() - y0) / scale, 0.0), float(rows))
        return QPointF(x, y)

    def to_widget(self, r: QRectF) -> QRectF:
        scale, x0, y0 = self._frame()
        return QRectF(x0 + r.x() * scale, y0 + r.y() * scale, r.width() * scale, r.height() * scale)

    def rectangles(self) -> list[tuple[int, int, int, int]]:
        out = []
        for r in self.rects:
            x, y = int(r.left()), int(r.top())
            w = max(1, round(r.right()) - x)
            h = max(1, round(r.bottom()) - y)
            out.append((x, y, w, h))
        return out

    def add_rectangle(self, x: float, y: float, w: float, h: float) -> None:
        """Add a rectangle in stored pixels (what a drag does; for tests and keyboards)."""
        self.rects.append(QRectF(x, y, w, h))
        self.changed.emit()
        self.update()

    def mousePressEvent(self, e: QMouseEvent) -> None:
        if e.button() == Qt.MouseButton.LeftButton:
            self._start = self.to_stored(e.position())
            self._current = QRectF(self._start, self._start)
        elif e.button() == Qt.MouseButton.RightButton and self.rects:
            self.rects.pop()
            self.changed.emit()
            self.update()

    def mouseMoveEvent(self, e: QMouseEvent) -> None:
        if self._start is not None:
            self._current = QRectF(self._start, self.to_stored(e.position())).normalized()
            self.update()

    def mouseReleaseEvent(self, e: QMouseEvent) -> None:
        if self._start is not None and self._current is not None:
            r = self._current.normalized()
            if r.width() >= 1 and r.height() >= 1:
                self.rects.append(r)
                self.changed.emit()
        self._start = None
        self._current = None
        self.update()

    def paintEvent(self, _e: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(0, 0, 0))
        rows, cols = self.stored
        painter.drawImage(self.to_widget(QRectF(0, 0, cols, rows)), self._image)
        painter.setPen(QPen(QColor(255, 200, 60), 2))
        for r in [*self.rects, *([self._current] if self._current is not None else [])]:
            w = self.to_widget(r)
            painter.fillRect(w, QColor(0, 0, 0, 200))
            painter.drawRect(w)
        painter.end()


class _Page(QWidget):
    """A page of the desk: a status line, its tables and buttons, loading off the UI thread."""

    def __init__(self, desk: DeskWindow) -> None:
        super().__init__(desk)
        self.desk = desk
        self.tasks = KeptTasks()
        self.loading = False
        self.loaded_at: float | None = None
        self.button: dict[str, QPushButton] = {}  # the page's buttons by name
        self.status = QLabel("", self)
        self.status.setObjectName("hint")
        self.status.setWordWrap(True)

    def refresh(self) -> None:
        if self.loading:
            return  # one refresh at a time; the next timer tick tries again
        self.loading = True
        self.tasks.run(self.fetch, done=self._loaded, failed=self._load_failed)

    def fetch(self) -> Any:  # on a worker thread
        raise NotImplementedError

    def show_data(self, data: Any) -> None:
        raise NotImplementedError

    def _gone(self) -> bool:
        """The window closed while the answer was on its way: nothing to show it in."""
        return self.desk.closed or not isValid(self) or not isValid(self.status)

    def _loaded(self, data: Any) -> None:
        self.loading = False
        if self._gone():
            return
        self.loaded_at = time.monotonic()
        self.show_data(data)
        self.desk.pageLoaded.emit(self.objectName())

    def _load_failed(self, exc: BaseException) -> None:
        self.loading = False
        if self._gone():
            return
        self.status.setText(f"Could not load: {_message(exc)}")
        self.desk.report_failure(exc)

    def _action_failed(self, exc: BaseException) -> None:
        """A page's action (not a dialog's) failed: its message on the page and the desk."""
        if self._gone():
            return
        self.status.setText(_message(exc))
        self.desk.report_failure(exc)

    def buttons(self, *specs: tuple[str, str, Callable[[], None]]) -> QHBoxLayout:
        row = QHBoxLayout()
        for name, text, slot in specs:
            b = QPushButton(text, self)
            b.setObjectName(name)
            b.clicked.connect(slot)
            row.addWidget(b)
            self.button[name] = b
        row.addStretch(1)
        return row

    def selected_row(self, table: QTableWidget) -> int | None:
        rows = table.selectionModel().selectedRows() if table.selectionModel() else []
        if not rows:
            self.status.setText("Select a row first.")
            return None
        item = table.item(rows[0].row(), 0)
        return int(item.data(Qt.ItemDataRole.UserRole)) if item is not None else None

    def open_dialog(self, dialog: ActionDialog | WorkerDialog, done: str) -> None:
        self.desk.dialog = dialog

        def finished(_result: Any) -> None:
            if self._gone():
                return
            self.status.setText(done)
            self.desk.refresh_all()

        dialog.succeeded.connect(finished)
        dialog.open()


class ProgressPage(_Page):
    def __init__(self, desk: DeskWindow) -> None:
        super().__init__(desk)
        self.setObjectName("progressPage")
        self.readers = make_table(self, "readersTable")
        self.patients = make_table(self, "patientsTable")
        layout = QVBoxLayout(self)
        layout.addLayout(self.buttons(("refresh", "Refresh", self.refresh)))
        layout.addWidget(QLabel("Readers", self))
        layout.addWidget(self.readers, 1)
        layout.addWidget(QLabel("Patients (primary reading)", self))
        layout.addWidget(self.patients, 2)
        layout.addWidget(self.status)

    def fetch(self) -> Any:
        return self.desk.ws.coordination.progress(self.desk.session, self.desk.trial)

    def show_data(self, data: Progress) -> None:
        rows = []
        for r in data.readers:
            med = r.median_seconds_per_case
            rows.append(
                [
                    r.reader,
                    r.cases,
                    r.signed,
                    r.in_progress,
                    r.not_started,
                    f"{r.rereads_signed} / {r.rereads}",
                    f"{r.calibration_signed} / {r.calibration}",
                    r.adjudication,
                    f"{med / 60:.1f} min" if med else "–",
                    f"{r.seconds / 3600:.1f} h",
                ]
            )
        fill_table(
            self.readers,
            (
                "Reader",
                "Cases",
                "Signed",
                "In progress",
                "Not started",
                "Re-reads signed",
                "Calibration signed",
                "Adjudication",
                "Median time per case",
                "Time in all",
            ),
            rows,
        )
        patients = data.patients or ()
        readers = sorted({name for p in patients for name in p.readers})
        fill_table(
            self.patients,
            ("Patient", "Patient ID", *readers),
            [
                [p.patient, p.real_id, *(p.readers.get(name, "–") for name in readers)]
                for p in patients
            ],
        )
        signed = sum(r.signed for r in data.readers)
        total = sum(r.cases for r in data.readers)
        self.status.setText(
            f"{signed} of {total} cases signed. Updated {time.strftime('%H:%M:%S')}; "
            "refreshes every 30 s."
        )


class ImagesPage(_Page):
    COLUMNS = (
        "Image", "Patient", "Visit", "Regions", "Flags", "Masked", "QC", "Joints", "Source file"
    )  # fmt: skip

    def __init__(self, desk: DeskWindow) -> None:
        super().__init__(desk)
        self.setObjectName("imagesPage")
        self.table = make_table(self, "imagesTable")
        self.table.doubleClicked.connect(lambda _index: self.view_image())
        # Filters: flagged imports by kind (scorer.core.import_flags), and QC state.
        self.flag_filter = QComboBox(self)
        self.flag_filter.setObjectName("flagFilter")
        self.flag_filter.addItem("All images", None)
        self.flag_filter.addItem("Flagged at import", "any")
        for kind in FLAG_KINDS:
            self.flag_filter.addItem(f"Flagged: {kind}", kind)
        self.qc_filter = QComboBox(self)
        self.qc_filter.setObjectName("qcFilter")
        self.qc_filter.addItem("Any QC state", None)
        for state in ("pending", "passed", "failed"):
            self.qc_filter.addItem(f"QC {state}", state)
        # Joints to check: the locator left joints without a position, or an own position
        # disagrees with where registration to the patient's other film puts it.
        self.joint_filter = QComboBox(self)
        self.joint_filter.setObjectName("jointFilter")
        self.joint_filter.addItem("Any joints", None)
        self.joint_filter.addItem("Joints to check", "check")
        for combo in (self.flag_filter, self.qc_filter, self.joint_filter):
            combo.currentIndexChanged.connect(lambda _i: self.show_data(self.data))
        self.data: dict[str, Any] = {"images": []}
        self.viewer: DeskViewer | None = None
        self.fail_dialog: FailDialog | None = None
        layout = QVBoxLayout(self)
        top = self.buttons(
            ("view", "View…", self.view_image),
            ("pass", "Pass", self.pass_qc),
            ("fail", "Fail…", self.ask_fail),
            ("reassign", "Reassign…", self.ask_reassign),
            ("mask", "Mask…", self.ask_mask),
            ("joints", "Joints…", self.ask_joints),
            ("missing", "Region without image…", self.ask_missing),
            ("refresh", "Refresh", self.refresh),
        )
        top.addWidget(self.flag_filter)
        top.addWidget(self.qc_filter)
        top.addWidget(self.joint_filter)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)

    def fetch(self) -> Any:
        ws, s, t = self.desk.ws, self.desk.session, self.desk.trial
        return {
            "images": ws.images.list_images(s, t),
            "patients": [p.code for p in ws.trials.list_patients(s, t)],
            "visits": ws.trials.trial_settings(s, t).to_dict()["visits"],
            "missing": ws.images.missing_regions(s, t),
            "joints": {c.image: c for c in ws.joints.joint_checks(s, t)},
        }

    def _wanted(self, image: Any) -> bool:
        kind, qc = self.flag_filter.currentData(), self.qc_filter.currentData()
        if qc is not None and image.qc != qc:
            return False
        check = self.data.get("joints", {}).get(image.code)
        if self.joint_filter.currentData() == "check" and not (check and check.to_check):
            return False
        if kind == "any":
            return bool(image.flags)
        return kind is None or kind in flag_kinds(image.flags)

    def show_data(self, data: Any) -> None:
        self.data = data
        images = [i for i in data["images"] if self._wanted(i)]
        self.shown = images
        checks = data.get("joints", {})
        fill_table(
            self.table,
            self.COLUMNS,
            [
                [
                    i.code,
                    i.patient or "?",
                    i.visit or "?",
                    " ".join(i.regions) or "?",
                    "; ".join(i.flags),
                    "yes" if i.masked else "",
                    f"{i.qc}: {i.qc_reason}" if i.qc_reason else i.qc,
                    checks[i.code].summary() if i.code in checks else "",
                    i.source,
                ]
                for i in images
            ],
        )
        to_check = sum(c.to_check for c in checks.values())
        flagged = sum(bool(i.flags) for i in data["images"])
        pending = sum(i.qc == "pending" for i in data["images"])
        missing = len(data.get("missing", []))
        self.status.setText(
            f"{len(images)} of {len(data['images'])} images shown; {flagged} flagged at import, "
            f"{pending} waiting for QC; {missing} region(s) marked without image; "
            f"{to_check} with joints to check."
        )

    def view_image(self) -> None:
        """The selected image in the desk's viewer (window/level, zoom, joints, QC)."""
        image = self._current()
        if image is None:
            return
        self.viewer = open_viewer(
            self.desk, [DeskFilm(image.code, image.regions, image.qc)], f"image {image.code}"
        )

    def pass_qc(self) -> None:
        image = self._current()
        if image is None:
            return

        def done(_decision: Any) -> None:
            if not self._gone():
                self.status.setText(f"Image {image.code} passed QC.")
                self.refresh()

        ws, s = self.desk.ws, self.desk.session
        self.tasks.run(
            ws.images.image_qc, s, image.code, "passed", done=done, failed=self._action_failed
        )

    def ask_fail(self) -> None:
        """Fail the selected image, after the list of what that does to open and signed cases."""
        image = self._current()
        if image is None:
            return

        def opened(dialog: FailDialog) -> None:
            self.fail_dialog = dialog

            def done(_decision: Any) -> None:
                if not self._gone():
                    self.status.setText(f"Image {image.code} failed QC.")
                    self.refresh()

            dialog.succeeded.connect(done)

        ws, s = self.desk.ws, self.desk.session
        ask_fail(ws, s, image.code, self, self.tasks, opened, self._action_failed)

    def _current(self) -> Any:  # an ImageRow of the facade's images service, or None
        row = self.selected_row(self.table)
        return None if row is None else self.shown[row]

    def _visit_labels(self) -> list[str]:
        return [v["label"] if isinstance(v, dict) else str(v) for v in self.data.get("visits", [])]

    def ask_reassign(self) -> None:
        image = self._current()
        if image is None:
            return
        patient = QComboBox()
        for code in self.data["patients"]:
            patient.addItem(code, code)
        if image.patient:
            patient.setCurrentText(image.patient)
        visit = QComboBox()
        for label in self._visit_labels():
            visit.addItem(label, label)
        if image.visit:
            visit.setCurrentText(image.visit)
        regions = RegionChoice(image.regions)
        reason = QLineEdit()
        reason.setObjectName("reason")
        code = image.code
        ws, s = self.desk.ws, self.desk.session

        def run(v: dict[str, Any]) -> Any:
            return ws.images.reassign_image(
                s,
                code,
                v["Reason"],
                patient=v["Patient"],
                visit=v["Visit"],
                regions=v["Regions"],
            )

        dialog = ActionDialog(
            f"Reassign image {code}",
            "Every reader's case follows at once. The change and its reason are audited.",
            [("Patient", patient), ("Visit", visit), ("Regions", regions), ("Reason", reason)],
            run,
            self,
            ok_text="Reassign",
        )
        self.open_dialog(dialog, f"Image {code} reassigned.")

    def ask_mask(self) -> None:
        image = self._current()
        if image is None:
            return
        code = image.code
        ws, s = self.desk.ws, self.desk.session
        self.status.setText(f"Opening image {code}…")

        def shown(result: Any) -> None:
            if self._gone():
                return
            pixels, stored = result
            canvas = MaskCanvas(pixels, stored)
            reason = QLineEdit()
            reason.setObjectName("reason")

            def run(v: dict[str, Any]) -> Any:
                return ws.images.mask_image(s, code, canvas.rectangles(), v["Reason"])

            dialog = ActionDialog(
                f"Mask burned-in text on image {code}",
                "Drag rectangles over the text (right click removes the last one). They are "
                "blacked out on the readers' copy; the original stays as imported.",
                [("Reason", reason)],
                run,
                self,
                ok_text="Mask",
                extra=canvas,
            )
            dialog.canvas = canvas  # type: ignore[attr-defined]
            dialog.resize(760, 720)
            self.open_dialog(dialog, f"Image {code} masked.")

        self.tasks.run(ws.images.render_image, s, code, 1400, done=shown, failed=self._load_failed)

    def ask_joints(self) -> None:
        """The image's joint positions: shown, placed by three clicks per region, dragged;
        Save stores what changed (audited)."""
        image = self._current()
        if image is None:
            return
        code, regions = image.code, image.regions
        ws, s = self.desk.ws, self.desk.session
        self.status.setText(f"Opening image {code}…")

        def shown(result: Any) -> None:
            if self._gone():
                return
            pixels, stored, points = result
            canvas = JointCanvas(pixels, stored, points)

            def run(_v: dict[str, Any]) -> Any:
                return ws.images.place_image_joints(s, code, joint_points_to_save(canvas))

            dialog = ActionDialog(
                f"Joint positions on image {code}",
                "Each placed joint is marked with its code. Place a region by clicking its "
                "three anchor joints as named; drag a marker to correct it. Save stores the "
                "placed and moved joints.",
                [],
                run,
                self,
                ok_text="Save",
            )
            panel = JointsPanel(canvas, regions, dialog.show_error, dialog)
            layout = dialog.layout()
            assert isinstance(layout, QVBoxLayout)
            layout.insertWidget(1, panel, 1)  # under the text, over the error line
            dialog.canvas = canvas  # type: ignore[attr-defined]
            dialog.panel = panel  # type: ignore[attr-defined]
            dialog.resize(760, 760)
            self.open_dialog(dialog, f"Joint positions of image {code} saved.")

        self.tasks.run(joints_loaded, ws, s, code, 1400, done=shown, failed=self._load_failed)

    def ask_missing(self) -> None:
        image = self._current() if self.table.selectionModel().selectedRows() else None
        patient = QComboBox()
        for p in self.data["patients"]:
            patient.addItem(p, p)
        visit = QComboBox()
        for label in self._visit_labels():
            visit.addItem(label, label)
        if image is not None:
            if image.patient:
                patient.setCurrentText(image.patient)
            if image.visit:
                visit.setCurrentText(image.visit)
        region = QComboBox()
        for r in REGIONS:
            region.addItem(r, r)
        reason = QLineEdit()
        reason.setObjectName("reason")
        ws, s, trial = self.desk.ws, self.desk.session, self.desk.trial

        def run(v: dict[str, Any]) -> Any:
            return ws.images.mark_region_missing(
                s, trial, v["Patient"], v["Visit"], v["Region"], v["Reason"]
            )

        dialog = ActionDialog(
            "Region without image",
            "The region's areas become not assessable ('not visible') for every reader of "
            "that visit, now and for reads that start later. Signed reads are listed, not "
            "changed.",
            [("Patient", patient), ("Visit", visit), ("Region", region), ("Reason", reason)],
            run,
            self,
            ok_text="Mark",
        )
        self.open_dialog(dialog, "Region marked not assessable for all readers.")


def _cell_text(text: str, limit: int = 80) -> str:
    """A long text's first ``limit`` characters on one line: a 10,000-character flag made its
    column 70,000 pixels wide and pushed the answer off the table (the whole text is in the
    answer dialog)."""
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


class FlagsPage(_Page):
    """The readers' flags with what the coordinator needs to act: the patient, the visit the
    reader's letter stands for and its date, the images the reader had on screen (opened in
    the desk's viewer), and open/answered counts per reader."""

    COLUMNS = (
        "#", "Case", "Reader", "Visit", "Date", "Patient", "Images", "Message", "Raised",
        "Answer", "State",
    )  # fmt: skip

    def __init__(self, desk: DeskWindow) -> None:
        super().__init__(desk)
        self.setObjectName("flagsPage")
        self.table = make_table(self, "flagsTable")
        self.table.doubleClicked.connect(lambda _index: self.open_images())
        self.counts = QLabel("", self)
        self.counts.setObjectName("flagCounts")
        self.counts.setWordWrap(True)
        self.show_closed = QCheckBox("Show closed flags", self)
        self.show_closed.toggled.connect(lambda _on: self.refresh())
        self.flags: list[Flag] = []
        self.viewer: DeskViewer | None = None
        layout = QVBoxLayout(self)
        top = self.buttons(
            ("answer", "Answer and close…", self.ask_answer),
            ("images", "Open images", self.open_images),
            ("refresh", "Refresh", self.refresh),
        )
        top.addWidget(self.show_closed)
        layout.addLayout(top)
        layout.addWidget(self.counts)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)

    def fetch(self) -> Any:
        ws, s, trial = self.desk.ws, self.desk.session, self.desk.trial
        flags = ws.coordination.flags(s, trial, open_only=not self.show_closed.isChecked())
        return flags, ws.coordination.flag_counts(s, trial)

    def show_data(self, data: tuple[list[Flag], Any]) -> None:
        self.flags, counts = data
        fill_table(
            self.table,
            self.COLUMNS,
            [
                [
                    f.flag,
                    f.case,
                    f.reader,
                    flag_visit(f),
                    f.visit_date or "",
                    f.patient or "",
                    " ".join(f.images),
                    _cell_text(f.message),
                    f.raised_at[:16].replace("T", " "),
                    f.answer,
                    "closed" if f.closed else "open",
                ]
                for f in self.flags
            ],
        )
        per_reader = "; ".join(f"{c.reader} {c.open} open, {c.answered} answered" for c in counts)
        self.counts.setText(f"Per reader: {per_reader or 'no flags yet'}")
        open_n = sum(c.open for c in counts)
        self.status.setText(f"{open_n} open flag(s).")
        self.desk.set_badge(self, open_n)

    def open_images(self) -> None:
        """The selected flag's images (those the reader had on screen) in the desk's viewer,
        titled with the patient and the true visit."""
        row = self.selected_row(self.table)
        if row is None:
            return
        flag = self.flags[row]
        if not flag.images:
            self.status.setText(
                f"Flag {flag.flag} names no image (raised before images were kept, or with "
                "none on screen)."
            )
            return
        known = {i.code: i for i in self.desk.images.data.get("images", [])}
        films = [
            DeskFilm(code, known[code].regions, known[code].qc) if code in known else DeskFilm(code)
            for code in flag.images
        ]
        title = f"flag {flag.flag}: patient {flag.patient or '?'}, {flag_visit(flag)}"
        self.viewer = open_viewer(self.desk, films, title)

    def ask_answer(self) -> None:
        row = self.selected_row(self.table)
        if row is None:
            return
        flag = self.flags[row]
        if flag.closed:
            self.status.setText(f"Flag {flag.flag} is closed already.")
            return
        answer = QLineEdit()
        answer.setObjectName("answer")
        ws, s, trial = self.desk.ws, self.desk.session, self.desk.trial

        def run(v: dict[str, Any]) -> Any:
            return ws.coordination.answer_flag(s, trial, flag.flag, v["Answer"])

        dialog = ActionDialog(
            f"Answer flag {flag.flag}",
            f"Case {flag.case} (patient {flag.patient or '?'}, visit {flag_visit(flag) or '–'}), "
            f"{flag.reader}: “{flag.message}”",
            [("Answer", answer)],
            run,
            self,
            ok_text="Answer and close",
        )
        self.open_dialog(dialog, f"Flag {flag.flag} answered and closed.")


class CalibrationPage(_Page):
    def __init__(self, desk: DeskWindow) -> None:
        super().__init__(desk)
        self.setObjectName("calibrationPage")
        self.table = make_table(self, "calibrationTable")
        self.info = QLabel("", self)
        self.info.setWordWrap(True)
        self.report: CalibrationReport | None = None
        layout = QVBoxLayout(self)
        layout.addLayout(
            self.buttons(
                ("choose", "Calibration set…", self.ask_set),
                ("worklists", "Make calibration worklists", self.make_worklists),
                ("release", "Release reader…", self.ask_release),
                ("refresh", "Refresh", self.refresh),
            )
        )
        layout.addWidget(self.info)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)

    def fetch(self) -> Any:
        return self.desk.ws.calibration.calibration_report(self.desk.session, self.desk.trial)

    def show_data(self, data: CalibrationReport) -> None:
        self.report = data
        patients = ", ".join(data.calibration_patients) or "none"
        self.info.setText(
            f"Calibration set: {patients}. Reference: {data.reference or '–'} "
            f"({data.reference_reads} signed reads)."
        )
        rows = []
        for r in data.readers:
            icc = r.icc
            icc_text = (
                f"{icc.value:.3f} ({icc.ci_low:.2f}–{icc.ci_high:.2f}), n={r.icc_n}"
                if icc and icc.value is not None and icc.ci_low is not None
                else f"– (n={r.icc_n})"
            )
            feats = []
            for feature in ("ERO", "JSN", "LAR"):
                f = r.features.get(feature)
                feats.append(
                    f"{f.pct_exact:.0f}% / {f.pct_within_one:.0f}% (n={f.n})" if f else "–"
                )
            rows.append(
                [
                    r.reader,
                    f"{r.signed} / {r.cases}",
                    icc_text,
                    *feats,
                    "released" if r.released else "in calibration",
                ]
            )
        fill_table(
            self.table,
            (
                "Reader",
                "Signed",
                "Status ICC(A,1) vs reference",
                "Erosion exact / within one",
                "JSN exact / within one",
                "Larsen exact / within one",
                "State",
            ),
            rows,
        )
        self.status.setText(f"{len(data.readers)} reader(s) in calibration.")

    def ask_set(self) -> None:
        """Choose the calibration patients and the reference reader (the patients and the
        readers are fetched first, on the worker pool)."""
        ws, s, trial = self.desk.ws, self.desk.session, self.desk.trial

        def fetch() -> tuple[Any, list[str]]:
            patients = ws.trials.list_patients(s, trial)
            users = ws.accounts.list_users(s)
            names = [u.username for u in users if u.role in ("reader", "adjudicator")]
            return patients, names

        def shown(fetched: tuple[Any, list[str]]) -> None:
            if self._gone():
                return
            patients, names = fetched
            current = self.report
            chosen = (current.calibration_patients, current.reference) if current else ((), "")
            dialog = CalibrationSetDialog(ws, s, trial, patients, names, chosen, self)
            self.open_dialog(dialog, "Calibration set chosen.")

        self.tasks.run(fetch, done=shown, failed=self._action_failed)

    def make_worklists(self) -> None:
        ws, s, trial = self.desk.ws, self.desk.session, self.desk.trial

        def done(made: CalibrationWorklists) -> None:
            if self._gone():
                return
            self.status.setText(
                ", ".join(f"{k}: {v} case(s)" for k, v in made.cases.items())
                or "Every assigned reader has a calibration worklist already."
            )
            self.refresh()

        self.tasks.run(
            ws.calibration.calibration_worklists, s, trial, done=done, failed=self._action_failed
        )

    def ask_release(self) -> None:
        row = self.selected_row(self.table)
        if row is None or self.report is None:
            return
        reader = self.report.readers[row].reader
        reason = QLineEdit()
        reason.setObjectName("reason")
        ws, s, trial = self.desk.ws, self.desk.session, self.desk.trial

        def run(v: dict[str, Any]) -> Any:
            return ws.calibration.release_reader(s, trial, reader, v["Reason"])

        dialog = ActionDialog(
            f"Release {reader}",
            f"{reader} may then open the trial's cases. The release and its reason are audited.",
            [("Reason", reason)],
            run,
            self,
            ok_text="Release",
        )
        self.open_dialog(dialog, f"{reader} released to the trial's cases.")


class AdjudicationPage(_Page):
    def __init__(self, desk: DeskWindow) -> None:
        super().__init__(desk)
        self.setObjectName("adjudicationPage")
        self.table = make_table(self, "adjudicationTable")
        self.rule = QLabel("", self)
        self.rule.setWordWrap(True)
        self.adjudicators: list[str] = []
        layout = QVBoxLayout(self)
        layout.addLayout(
            self.buttons(
                ("freeze", "Freeze SDC…", self.ask_freeze),
                ("update", "Update queue", self.update_queue),
                ("assign", "Assign to adjudicator…", self.ask_assign),
                ("refresh", "Refresh", self.refresh),
            )
        )
        layout.addWidget(self.rule)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)

    def fetch(self) -> tuple[Adjudications, list[str]]:
        """The adjudications, and the adjudicators the queue may be given to."""
        ws, s = self.desk.ws, self.desk.session
        out = ws.adjudication.adjudications(s, self.desk.trial)
        adjudicators = [
            u.username
            for u in ws.accounts.list_users(s)
            if u.role == "adjudicator" and not u.disabled
        ]
        return out, adjudicators

    def show_data(self, fetched: tuple[Adjudications, list[str]]) -> None:
        data, self.adjudicators = fetched
        if data.trigger == "difference":
            trigger = f"readers' changes differ by more than {data.difference}"
        elif data.trigger == "frozen_sdc":
            trigger = (
                f"readers' changes differ by more than the frozen SDC ({data.frozen_sdc})"
                if data.frozen_sdc is not None
                else "the frozen SDC (not frozen yet)"
            )
        else:
            trigger = "none (no adjudication)"
        status_cut = (
            f"; or they disagree on progression at {data.frozen_sdc}"
            if data.frozen_sdc is not None
            else ""
        )
        self.rule.setText(f"Discrepant when {trigger}{status_cut}. Final score: {data.final_rule}.")
        rows = []
        for a in data.patients:
            changes = ", ".join(f"{k} {v:g}" for k, v in (a.changes or {}).items())
            res = a.result
            rows.append(
                [
                    a.patient or "",
                    a.status,
                    "; ".join(a.reasons),
                    changes,
                    a.adjudicator or "",
                    f"{res.final_change:g}" if res else "",
                    ", ".join(res.reads) if res else "",
                ]
            )
        fill_table(
            self.table,
            ("Patient", "Status", "Why", "Changes", "Adjudicator", "Final change", "Reads used"),
            rows,
        )
        queued = sum(a.status == "queued" for a in data.patients)
        self.status.setText(f"{len(rows)} discrepant patient(s), {queued} waiting for assignment.")

    def update_queue(self) -> None:
        ws, s, trial = self.desk.ws, self.desk.session, self.desk.trial

        def done(out: AdjudicationUpdate) -> None:
            if self._gone():
                return
            self.status.setText(
                f"{out.checked} patient(s) checked: {out.queued} newly discrepant, "
                f"{out.done} adjudication(s) completed."
            )
            self.refresh()

        self.tasks.run(
            ws.adjudication.update_adjudication,
            s,
            trial,
            done=done,
            failed=self._action_failed,
        )

    def ask_freeze(self) -> None:
        """Freeze SDC…: what it would freeze (computed on the worker pool), then the signed
        confirmation."""
        ws, s, trial = self.desk.ws, self.desk.session, self.desk.trial

        def shown(preview: Any) -> None:
            if self._gone():
                return
            dialog = FreezeSdcDialog(ws, s, trial, preview, self)
            self.open_dialog(dialog, "SDC frozen (signed).")

        self.status.setText("Computing the SDC from the signed reads…")
        self.tasks.run(
            ws.adjudication.sdc_preview, s, trial, done=shown, failed=self._action_failed
        )

    def ask_assign(self) -> None:
        who = QComboBox()
        for name in self.adjudicators:
            who.addItem(name, name)
        ws, s, trial = self.desk.ws, self.desk.session, self.desk.trial
        dialog = ActionDialog(
            "Assign the queue",
            "Each queued patient becomes a case in the adjudicator's worklist, visits in a "
            "random order, blinded to the first reads.",
            [("Adjudicator", who)],
            lambda v: ws.adjudication.assign_adjudications(s, trial, v["Adjudicator"]),
            self,
            ok_text="Assign",
        )
        self.open_dialog(dialog, "Queue assigned.")


@dataclass(frozen=True)
class _ArrivalRow:
    """An arrival as the server reports it (the fields the page shows)."""

    at: str
    calling_aet: str
    peer: str
    status: str
    sop_instance_uid: str = ""
    image: str | None = None
    reason: str = ""
    flags: tuple[str, ...] = ()


class ReceivePage(_Page):
    """Receiving radiographs over DICOM: start and stop the receiver, see what arrived.

    The receiver (scorer.network) runs in this process on its own threads; what it reports
    comes to the page through a queued signal, and every facade call runs off the UI thread.
    """

    COLUMNS = ("Time (UTC)", "From", "Address", "Outcome", "Image", "Reason or flags")
    arrived = Signal(object)

    def __init__(self, desk: DeskWindow) -> None:
        super().__init__(desk)
        self.setObjectName("receivePage")
        self.receiver: Any = None
        self.senders: list[str] = []
        self.rows: list[list[Any]] = []
        # Over a server: its receiver's last state, the arrivals shown, and a poll for more.
        self.remote_state: dict[str, Any] | None = None
        self.seen = 0
        self.asking = False
        self.poll = QTimer(self)
        self.poll.setInterval(2000)
        self.poll.timeout.connect(self._ask_remote)
        form = QFormLayout()
        self.aet = QLineEdit("SCORER", self)
        self.aet.setObjectName("aetEdit")
        self.aet.setMaxLength(16)
        self.port = QSpinBox(self)
        self.port.setObjectName("portEdit")
        self.port.setRange(0, 65535)
        self.port.setValue(11112)
        self.port.setSpecialValueText("any free port")
        self.host = QLineEdit("0.0.0.0", self)
        self.host.setObjectName("hostEdit")
        self.allow = QLineEdit(self)
        self.allow.setObjectName("allowEdit")
        self.allow.setPlaceholderText("more calling AE titles, comma-separated")
        self.trial_senders = QLabel("–", self)
        self.trial_senders.setObjectName("trialSenders")
        form.addRow("This workstation's AE title", self.aet)
        form.addRow("Port", self.port)
        form.addRow("Listen on", self.host)
        form.addRow("Senders allowed by the trial", self.trial_senders)
        form.addRow("Also allow", self.allow)
        for w in (self.aet, self.port, self.host, self.allow):
            w.setMaximumWidth(360)  # short values: the form stays readable on a wide desk
        self.table = make_table(self, "arrivalsTable")
        fill_table(self.table, self.COLUMNS, [])
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(
            self.buttons(
                ("start", "Start receiving", self.start),
                ("stop", "Stop receiving", self.stop),
            )
        )
        self.start_button, self.stop_button = self.button["start"], self.button["stop"]
        layout.addWidget(QLabel("Arrived", self))
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)
        self.arrived.connect(self._add_arrival)
        self._set_running(False)
        self.status.setText("Not receiving.")

    def fetch(self) -> Any:
        return self.desk.ws.images.dicom_settings(self.desk.session, self.desk.trial)

    def show_data(self, data: Any) -> None:
        self.senders = list(data.dicom_senders)
        self.trial_senders.setText(", ".join(self.senders) or "none (set dicom_senders)")
        if self.on_server and self.remote_state is None:
            self._ask_remote()  # the server's receiver may run already

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        for w in (self.aet, self.port, self.host, self.allow):
            w.setEnabled(not running)

    @property
    def on_server(self) -> bool:
        """Whether the desk works through a reading centre's server, whose receiver this
        page then starts and stops (it runs there, not in this process)."""
        return bool(getattr(self.desk.ws, "remote", False))

    def start(self) -> None:
        from scorer.network.receiver import Receiver

        allow = [a.strip() for a in self.allow.text().split(",") if a.strip()]
        self.start_button.setEnabled(False)
        self.status.setText("Starting…")
        desk = self.desk
        if self.on_server:
            options = {
                "aet": self.aet.text().strip() or "SCORER",
                "port": self.port.value(),
                "host": self.host.text().strip() or "0.0.0.0",
                "allow": allow,
            }
            self.tasks.run(
                lambda: desk.ws.receiver(desk.session, desk.trial, "start", **options),
                done=self._remote_state,
                failed=self._not_started,
            )
            return

        def begin() -> Any:
            r = Receiver(
                desk.ws,
                desk.session,
                desk.trial,
                aet=self.aet.text().strip() or "SCORER",
                port=self.port.value(),
                host=self.host.text().strip() or "0.0.0.0",
                allow=allow,
                on_arrival=self.arrived.emit,
            )
            r.start()
            return r

        self.tasks.run(begin, done=self._started, failed=self._not_started)

    def _started(self, receiver: Any) -> None:
        if self._gone():
            receiver.stop()
            return
        self.receiver = receiver
        self._set_running(True)
        self._show_counts()

    def _not_started(self, exc: BaseException) -> None:
        if self._gone():
            return
        self._set_running(False)
        self.status.setText(f"Not receiving: {_message(exc)}")

    # ------------------------------------------------------------- the server's receiver

    def _remote_state(self, state: dict[str, Any]) -> None:
        """What the server says of its receiver: shown, and its new arrivals added."""
        if self._gone():
            return
        self.remote_state = state
        for a in state.get("arrivals", []):
            self._add_arrival(_ArrivalRow(**a))
        self.seen = int(state.get("count", self.seen))
        if state.get("more") and not self.asking:
            QTimer.singleShot(0, self._ask_remote)  # more arrived than one answer holds
        running = bool(state.get("running"))
        self._set_running(running)
        if running:
            self.poll.start()
        else:
            self.poll.stop()
        self._show_counts()

    def _ask_remote(self) -> None:
        if self._gone() or self.asking:
            return
        self.asking = True
        desk, since = self.desk, self.seen

        def answered(state: Any) -> None:
            self.asking = False
            self._remote_state(state)

        def failed(exc: BaseException) -> None:
            self.asking = False
            if not self._gone():
                self.status.setText(f"The server did not say what arrived: {_message(exc)}")

        self.tasks.run(
            lambda: desk.ws.receiver(desk.session, desk.trial, "status", since=since),
            done=answered,
            failed=failed,
        )

    def stop(self) -> None:
        if self.on_server:
            self.stop_button.setEnabled(False)
            self.poll.stop()
            self.status.setText("Stopping the server's receiver…")
            self.tasks.run(
                lambda: self.desk.ws.receiver(self.desk.session, self.desk.trial, "stop"),
                done=self._remote_state,
                failed=self._not_started,
            )
            return
        receiver, self.receiver = self.receiver, None
        if receiver is None:
            return
        self.stop_button.setEnabled(False)
        self.status.setText("Stopping: finishing the instance in hand…")

        def stopped(_: Any) -> None:
            if self._gone():
                return
            self._set_running(False)
            self._show_counts(prefix="Stopped. ")

        self.tasks.run(receiver.stop, done=stopped, failed=self._not_started)

    def shutdown(self) -> None:
        """The desk is closing: stop receiving before the workspace goes."""
        receiver, self.receiver = self.receiver, None
        if receiver is not None:
            receiver.stop()

    def _add_arrival(self, a: Any) -> None:
        if self._gone():
            return
        self.rows.insert(
            0,
            [
                a.at.replace("T", " ")[:19],
                a.calling_aet,
                a.peer,
                a.status,
                a.image or "",
                a.reason or "; ".join(a.flags),
            ],
        )
        fill_table(self.table, self.COLUMNS, self.rows)
        self._show_counts()
        if a.status == "imported" and a.flags:
            self.desk.flags.refresh()

    def _show_counts(self, prefix: str = "") -> None:
        counts = {
            k: sum(1 for r in self.rows if r[3] == k) for k in ("imported", "duplicate", "refused")
        }
        tally = (
            f"{counts['imported']} imported, {counts['duplicate']} duplicate(s), "
            f"{counts['refused']} refused"
        )
        r = self.receiver
        remote = self.remote_state if self.on_server else None
        if remote is not None and remote.get("running"):
            self.status.setText(
                f"The server receives as {remote['aet']} on {remote['host']}:{remote['port']} "
                f"from {', '.join(remote['allowed'])}. {tally}."
            )
        elif r is not None:
            self.status.setText(
                f"Receiving as {r.aet} on {r.host}:{r.port} from {', '.join(r.allowed)}. {tally}."
            )
        else:
            self.status.setText(f"{prefix}Not receiving. {tally}.")


class DeskWindow(QMainWindow):
    """The coordinator's desk over one trial. Signals: ``pageLoaded(name)``, ``loggedOut()``
    (the Session menu's Log out, or closing with "Log out": the workstation shows the
    log-in again)."""

    pageLoaded = Signal(str)
    loggedOut = Signal()

    def __init__(
        self,
        workspace: Any,
        session: Any,
        trial: str,
        parent: QWidget | None = None,
        logout_on_close: bool = False,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("deskWindow")
        self.logout_on_close = logout_on_close
        self.setWindowTitle(f"scorer — coordinator's desk — {trial}")
        self.ws = workspace
        self.session = session
        self.trial = trial
        self.dialog: ActionDialog | WorkerDialog | None = None
        self.viewers: list[DeskViewer] = []  # the desk's viewer windows open now
        self.closed = False
        self.tabs = QTabWidget(self)
        self.progress = ProgressPage(self)
        self.images = ImagesPage(self)
        self.flags = FlagsPage(self)
        self.calibration = CalibrationPage(self)
        self.adjudication = AdjudicationPage(self)
        self.receive = ReceivePage(self)
        self.drift = DriftPage(self)
        self.pages: list[_Page | DriftPage] = [
            self.progress,
            self.images,
            self.flags,
            self.calibration,
            self.adjudication,
            self.receive,
            self.drift,
        ]
        self._titles = [
            *("Progress", "Images", "Flags", "Calibration", "Adjudication", "Receive", "Drift")
        ]
        for page, title in zip(self.pages, self._titles, strict=True):
            self.tabs.addTab(page, title)
        self.setCentralWidget(self.tabs)
        self.statusBar().showMessage(f"Logged in as {getattr(session, 'full_name', '')}")
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.progress.refresh)
        self.timer.timeout.connect(self.flags.refresh)
        self.timer.timeout.connect(self.drift.refresh)  # raises drift alerts as reading goes on
        self.timer.start()
        # Lock (Ctrl+L), Log out, Quit (Ctrl+Q); closing asks before it quits.
        self.session_actions = WindowSession(self, workspace, session)
        self.session_actions.locked.connect(self.timer.stop)
        self.session_actions.unlocked.connect(self.timer.start)
        self.session_actions.unlocked.connect(self.refresh_all)
        self.session_actions.loggedOut.connect(self.loggedOut)
        self.resize(1300, 800)
        self.refresh_all()

    def refresh_all(self) -> None:
        if self.closed:
            return
        for page in self.pages:
            page.refresh()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.session_actions.may_close(event):
            event.ignore()
            return
        self.closed = True  # answers still on their way are dropped
        self.timer.stop()
        self.receive.shutdown()
        if self.logout_on_close:
            self.session_actions.end_at_facade()
        super().closeEvent(event)

    def set_badge(self, page: _Page | DriftPage, count: int) -> None:
        index = self.pages.index(page)
        title = self._titles[index]
        self.tabs.setTabText(index, f"{title} ({count})" if count else title)

    def report_failure(self, exc: BaseException) -> None:
        self.statusBar().showMessage(_message(exc), 10_000)


def _preview_build(folder: Path, _args: Namespace) -> tuple[Any, Any, str]:
    from scorer.gui.desk_sample import build_desk_sample

    return build_desk_sample(folder / "trial")


def _preview_window(built: tuple[Any, Any, str], args: Namespace) -> DeskWindow:
    ws, coordinator, trial = built
    window = DeskWindow(ws, coordinator, trial)
    names = [p.objectName().removesuffix("Page") for p in window.pages]
    if args.page in names:
        window.tabs.setCurrentIndex(names.index(args.page))
    return window


def _preview_options(parser: ArgumentParser) -> None:
    parser.add_argument("--page", default="progress", help="the page shown first")


PREVIEW = Preview(
    "desk",
    "The coordinator's desk on a throw-away trial.",
    _preview_window,
    build=_preview_build,
    ready=lambda window, _args: all(p.loaded_at is not None for p in window.pages),
    options=_preview_options,
    waiting="Making a throw-away trial with reads, flags and a discrepancy…",
)


def _main(argv: Sequence[str] | None = None) -> int:
    return run_preview(PREVIEW, argv)


if __name__ == "__main__":
    sys.exit(_main())
