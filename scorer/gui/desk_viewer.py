"""The desk's image viewer: films looked at, their joints placed and their QC decided.

:class:`DeskViewer` is a window over one or several images (codes). Each film is the readers'
copy (``images.image_file``) opened as the reading window opens its films and drawn by the
same viewer (:class:`~scorer.gui.viewer.ImageViewer`: window/level by right drag and ``W``,
zoom by the wheel and ``+``/``-``, ``I`` inverts, ``F`` fits, ``Esc`` resets). Its joint
positions are drawn as markers with their codes; "Place <region>" asks for three anchor clicks
and any marker can be dragged (:class:`~scorer.gui.desk_joints.JointEditor`, the Joints
dialog's), and "Save joints" stores what changed through ``images.place_image_joints``.
Pass and Fail set the image's QC (``images.image_qc``); Fail first shows what failing does
(``images.qc_impact``: the cases that show the image, their readers, progress and signed
reads) and asks for the reason. Several images: the list on the left switches between them
(``Page Down`` / ``Page Up`` too).

Run it on its own: ``python -m scorer.gui.desk_viewer [--screenshot PNG]`` (a throw-away
patient's films).

The coordinator sees image codes here (the desk is not blinded); readers never see this window.
"""

from __future__ import annotations

import sys
from argparse import Namespace
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QKeySequence, QMouseEvent, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from scorer.core.joints import JointPoint
from scorer.gui.desk_joint_qc import JointQcOverlay, qc_text
from scorer.gui.desk_joints import JointEditor, JointsPanel, Key
from scorer.gui.login import _error_label, _message
from scorer.gui.preview import Preview, run_preview
from scorer.gui.tasks import KeptTasks
from scorer.gui.viewer import ImageViewer
from scorer.imaging.radiograph import Radiograph, radiograph_from_bytes


@dataclass(frozen=True)
class DeskFilm:
    """One image the viewer shows: its code, the regions it covers (for Place buttons) and
    its QC state when known ("" otherwise)."""

    code: str
    regions: tuple[str, ...] = ()
    qc: str = ""


class FilmView(ImageViewer):
    """The reading window's viewer with the film's joint markers, placed by three clicks and
    dragged: a left press on a marker drags it, while placing it clicks the next anchor;
    otherwise the mouse pans, zooms and windows as in the reading window."""

    prompt = Signal(str)
    fitFailed = Signal(str)

    def __init__(self, points: Sequence[JointPoint] = (), parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        self.setObjectName("deskFilm")
        self.editor = JointEditor(points, self)
        self.editor.changed.connect(self.update)
        self.editor.prompt.connect(self.prompt)
        self.editor.fitFailed.connect(self.fitFailed)
        self._dragging: Key | None = None
        self.overlays.append(lambda painter: self.editor.paint(painter, self.to_widget))

    def start_placing(self, region: str) -> None:
        """Ask for ``region``'s three anchors (what the panel's Place button does)."""
        self.editor.start_placing(region)

    # Joint positions count from the first pixel's centre; the viewer's image coordinates
    # from its edge (as in joint view), hence the half pixel.
    def to_widget(self, x: float, y: float) -> QPointF:
        """A stored-pixel position on screen, through the current zoom, pan and rotation."""
        return QPointF(*self.model.to_screen(x + 0.5, y + 0.5))

    def to_stored(self, p: QPointF) -> tuple[float, float]:
        """A screen position in stored pixels, kept on the film."""
        x, y = self.model.to_image(p.x(), p.y())
        image = self.model.image
        rows, cols = image.shape if image is not None else (1, 1)
        return min(max(x - 0.5, -0.5), cols - 0.5), min(max(y - 0.5, -0.5), rows - 0.5)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.model.image is not None:
            if self.editor.placing is not None:
                self.setFocus(Qt.FocusReason.MouseFocusReason)
                self.editor.click_anchor(*self.to_stored(event.position()))
                event.accept()
                return
            self._dragging = self.editor.joint_at(event.position(), self.to_widget)
            if self._dragging is not None:
                self.setFocus(Qt.FocusReason.MouseFocusReason)
                event.accept()
                return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._dragging is not None:
            self.editor.move_joint(self._dragging, *self.to_stored(event.position()))
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._dragging is not None:
            self.editor.move_joint(self._dragging, *self.to_stored(event.position()))
            self._dragging = None
            event.accept()
            return
        super().mouseReleaseEvent(event)


def impact_text(impact: Any) -> str:
    """What failing an image does, in words, from ``images.qc_impact``."""
    if not impact.cases:
        return (
            f"Image {impact.image} (QC {impact.qc}) is shown in no reader's case: failing it "
            "keeps it from every case for good."
        )
    lines = [
        f"Image {impact.image} is shown in {len(impact.cases)} case(s). Failing it removes it "
        "from them for good; their readers see the case without it:"
    ]
    for c in impact.cases:
        signed = f"; signed read(s) {', '.join(c.signed_reads)}" if c.signed_reads else ""
        lines.append(f"• case {c.case}, {c.reader}: {c.status}{signed}")
    if impact.signed_reads:
        lines.append(
            f"{len(impact.signed_reads)} signed read(s) were scored with this image on screen "
            "and stay as signed: follow them up with their readers."
        )
    return "\n".join(lines)


class FailDialog(QDialog):
    """Failing an image's QC: what it does to open and signed cases, a reason, and Fail,
    which runs ``images.image_qc`` off the UI thread (the facade's message shown on refusal,
    the dialog then stays)."""

    succeeded = Signal(object)

    def __init__(self, ws: Any, session: Any, impact: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("failDialog")
        self.setWindowTitle(f"Fail image {impact.image}")
        self.ws, self.session, self.code = ws, session, impact.image
        self.tasks = KeptTasks()
        layout = QVBoxLayout(self)
        self.impact = QLabel(impact_text(impact), self)
        self.impact.setObjectName("impact")
        self.impact.setWordWrap(True)
        self.impact.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.impact)
        self.reason = QLineEdit(self)
        self.reason.setObjectName("reason")
        self.reason.setPlaceholderText("why the image fails (required; audited)")
        layout.addWidget(self.reason)
        self.error = _error_label(self)
        layout.addWidget(self.error)
        buttons = QDialogButtonBox(self)
        self.ok = buttons.addButton("Fail image", QDialogButtonBox.ButtonRole.AcceptRole)
        self.ok.setObjectName("okButton")
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.submit)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.setMinimumWidth(480)

    def submit(self) -> None:
        if not self.ok.isEnabled():
            return
        self.ok.setEnabled(False)
        self.error.setVisible(False)
        self.tasks.run(
            self.ws.images.image_qc,
            self.session,
            self.code,
            "failed",
            self.reason.text(),
            done=self._done,
            failed=self._failed,
        )

    def _done(self, decision: Any) -> None:
        if not isValid(self):
            return
        self.succeeded.emit(decision)
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        if not isValid(self):
            return
        self.ok.setEnabled(True)
        self.error.setText(_message(exc))
        self.error.setVisible(True)


def ask_fail(
    ws: Any,
    session: Any,
    code: str,
    parent: QWidget,
    tasks: KeptTasks,
    opened: Callable[[FailDialog], None],
    failed: Callable[[BaseException], None],
) -> None:
    """Ask the facade what failing ``code`` does (off the UI thread), then open the
    confirmation listing it; ``opened(dialog)`` is called with the dialog shown."""

    def show(impact: Any) -> None:
        if not isValid(parent):
            return
        dialog = FailDialog(ws, session, impact, parent)
        dialog.open()
        opened(dialog)

    tasks.run(ws.images.qc_impact, session, code, done=show, failed=failed)


def load_film(ws: Any, session: Any, code: str) -> tuple[Radiograph, tuple[JointPoint, ...], Any]:
    """The readers' copy of an image opened for display, its joints, and their QC (what the
    locator was unsure of, disagreements with registration) (on a worker)."""
    film = radiograph_from_bytes(ws.images.image_file(session, code))
    points = tuple(ws.images.joint_positions(session, code))
    return film, points, ws.joints.image_joints(session, code)


class FilmPage(QWidget):
    """One image in the viewer: the film with its Place buttons, Save joints, Pass, Fail…"""

    def __init__(self, viewer: DeskViewer, film: DeskFilm) -> None:
        super().__init__(viewer)
        self.viewer = viewer
        self.film = film
        self.view = FilmView(parent=self)
        self.view.placeholder = "Loading…"
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.error = _error_label(self)
        self.panel = JointsPanel(self.view, film.regions, self._show_error, self)
        self.joint_qc = JointQcOverlay()
        self.view.overlays.append(
            lambda p: self.joint_qc.paint(p, self.view.to_widget, self.view.editor.points)
        )
        self.qc_line = QLabel("", self)
        self.qc_line.setObjectName("jointCheck")
        self.qc_line.setWordWrap(True)
        layout.addWidget(self.panel, 1)
        layout.addWidget(self.qc_line)
        layout.addWidget(self.error)
        row = QHBoxLayout()
        self.button: dict[str, QPushButton] = {}
        for name, text, slot in (
            ("saveJoints", "Save joints", self.save_joints),
            ("pass", "Pass", self.pass_qc),
            ("fail", "Fail…", self.fail_qc),
        ):
            b = QPushButton(text, self)
            b.setObjectName(name)
            b.clicked.connect(slot)
            row.addWidget(b)
            self.button[name] = b
        row.addStretch(1)
        self.status = QLabel("", self)
        self.status.setObjectName("hint")
        row.addWidget(self.status)
        layout.addLayout(row)
        self.loaded = False
        self.asked = False  # its film asked of the facade (once)
        self.qc = film.qc
        if film.qc:
            self.status.setText(f"QC {film.qc}.")
        self._qc_final()

    def label(self) -> str:
        """The film's line in the viewer's list: code, regions, QC state."""
        qc = f"  ({self.qc})" if self.qc else ""
        return f"{self.film.code}  {' '.join(self.film.regions)}{qc}"

    def _show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(bool(text))

    def load(self) -> None:
        self.asked = True
        v = self.viewer
        v.tasks.run(load_film, v.ws, v.session, self.film.code, done=self._shown, failed=self._fail)

    def _shown(self, result: tuple[Radiograph, tuple[JointPoint, ...], Any]) -> None:
        if not isValid(self):
            return
        film, points, joints = result
        self.view.editor.points = {(p.region, p.joint): p for p in points}
        self._joint_qc(joints)
        self.view.set_image(film)
        self.loaded = True
        self.viewer.filmShown.emit(self.film.code)

    def _fail(self, exc: BaseException) -> None:
        if not isValid(self):
            return
        self.view.placeholder = f"Cannot show image {self.film.code}: {_message(exc)}"
        self.view.update()
        self._show_error(_message(exc))

    def save_joints(self) -> None:
        points = self.view.editor.edited_points()
        if not points:
            self._show_error("Nothing to save: place a region or drag a joint first.")
            return
        v = self.viewer

        def saved(n: int) -> None:
            if isValid(self):
                self.view.editor.saved()
                self.status.setText(f"{n} joint position(s) saved.")
                v.changed.emit(self.film.code)
                self.propose_on_other_visits()

        v.tasks.run(
            v.ws.images.place_image_joints, v.session, self.film.code, points,
            done=saved, failed=lambda e: self._show_error(_message(e)),
        )  # fmt: skip

    def _joint_qc(self, joints: Any) -> None:
        self.joint_qc.joints = joints
        self.qc_line.setText(qc_text(joints))
        self.qc_line.setVisible(joints is not None)
        self.view.update()

    def _joint_qc_again(self, joints: Any) -> None:
        if isValid(self):
            self._joint_qc(joints)

    def propose_on_other_visits(self) -> None:
        """Register the patient's films again with this film's positions as they now are, so
        its other visits get them proposed; then show this film's QC again."""
        v = self.viewer
        joints = self.joint_qc.joints
        patient = joints.check.patient if joints is not None else None
        if not v.trial or not patient:
            return

        def done(summary: Any) -> None:
            if isValid(self):
                text = summary.describe()
                if text:
                    self.status.setText(f"{self.status.text()} {text}.")
                v.tasks.run(v.ws.joints.image_joints, v.session, self.film.code,
                            done=self._joint_qc_again)  # fmt: skip
                v.changed.emit(self.film.code)

        v.tasks.run(
            v.ws.joints.register_visits, v.session, v.trial, patient,
            done=done, failed=lambda e: self._show_error(_message(e)),
        )  # fmt: skip

    def _qc_final(self) -> None:
        """A failed image stays failed: Pass and Fail… are no longer offered (the service
        refuses both)."""
        final = self.qc == "failed"
        for name in ("pass", "fail"):
            self.button[name].setEnabled(not final)
            if final:
                self.button[name].setToolTip("A failed image stays failed: import a better film")

    def pass_qc(self) -> None:
        v = self.viewer

        def passed(_decision: Any) -> None:
            if isValid(self):
                self.qc = "passed"
                self.status.setText(f"Image {self.film.code} passed QC.")
                v.qc_changed(self)

        v.tasks.run(
            v.ws.images.image_qc, v.session, self.film.code, "passed",
            done=passed, failed=lambda e: self._show_error(_message(e)),
        )  # fmt: skip

    def fail_qc(self) -> None:
        v = self.viewer

        def opened(dialog: FailDialog) -> None:
            v.fail_dialog = dialog

            def failed(_decision: Any) -> None:
                if isValid(self):
                    self.qc = "failed"
                    self.status.setText(f"Image {self.film.code} failed QC.")
                    self._qc_final()
                    v.qc_changed(self)

            dialog.succeeded.connect(failed)

        ask_fail(
            v.ws, v.session, self.film.code, self, v.tasks, opened,
            lambda e: self._show_error(_message(e)),
        )  # fmt: skip


class DeskViewer(QDialog):
    """The desk's viewer over one or several images. Signals: ``filmShown(code)`` when a film
    is on screen, ``changed(code)`` after its joints or QC changed (the desk refreshes)."""

    filmShown = Signal(str)
    changed = Signal(str)

    def __init__(
        self,
        ws: Any,
        session: Any,
        films: Sequence[DeskFilm],
        title: str = "",
        parent: QWidget | None = None,
        trial: str = "",
    ) -> None:
        super().__init__(parent)
        if not films:
            raise ValueError("the desk's viewer needs at least one image")
        self.setObjectName("deskViewer")
        self.ws, self.session = ws, session
        self.trial = trial  # registration across visits after joints are saved (if known)
        self.tasks = KeptTasks()
        self.fail_dialog: FailDialog | None = None
        codes = ", ".join(f.code for f in films)
        self.setWindowTitle(f"scorer — {title or 'image'} — {codes}")
        self.list = QListWidget(self)
        self.list.setObjectName("filmList")
        self.stack = QStackedWidget(self)
        self.pages: list[FilmPage] = []
        for film in films:
            page = FilmPage(self, film)
            self.list.addItem(QListWidgetItem(page.label()))
            self.pages.append(page)
            self.stack.addWidget(page)
        self.list.setMinimumWidth(260)  # code, regions and QC state unclipped
        self.list.setMaximumWidth(320)
        self.list.setVisible(len(films) > 1)
        self.list.currentRowChanged.connect(self.show_film)
        layout = QHBoxLayout(self)
        layout.addWidget(self.list)
        layout.addWidget(self.stack, 1)
        for keys, step in ((QKeySequence.StandardKey.MoveToNextPage, 1),
                           (QKeySequence.StandardKey.MoveToPreviousPage, -1)):  # fmt: skip
            QShortcut(keys, self, lambda s=step: self.step(s))
        self.resize(1000, 820)
        self.list.setCurrentRow(0)
        self.show_film(0)

    def qc_changed(self, page: FilmPage) -> None:
        """A film's QC was decided here: its line in the list says so; the desk refreshes."""
        self.list.item(self.pages.index(page)).setText(page.label())
        self.changed.emit(page.film.code)

    @property
    def current(self) -> FilmPage:
        return self.pages[self.stack.currentIndex()]

    def show_film(self, index: int) -> None:
        """Show the ``index``-th image (loading it the first time)."""
        if not 0 <= index < len(self.pages):
            return
        page = self.pages[index]
        self.stack.setCurrentIndex(index)
        if self.list.currentRow() != index:
            self.list.setCurrentRow(index)
        if not page.asked:
            page.load()
        page.view.setFocus()

    def step(self, by: int) -> None:
        self.show_film((self.stack.currentIndex() + by) % len(self.pages))

    def keyPressEvent(self, event: Any) -> None:
        # Esc resets the film's view (as in the reading window); the window closes by its
        # close button, so a reader's habit never closes it by mistake.
        if event.key() == Qt.Key.Key_Escape:
            self.current.view.reset()
            return
        super().keyPressEvent(event)


def open_viewer(desk: Any, films: Sequence[DeskFilm], title: str) -> DeskViewer:
    """Open the desk's viewer over ``films`` as a window of the desk (not modal): the desk's
    pages refresh when a film's joints or QC change."""
    viewer = DeskViewer(desk.ws, desk.session, films, title, desk, trial=desk.trial or "")
    viewer.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    viewer.changed.connect(lambda _code: desk.refresh_all())
    desk.viewers.append(viewer)
    viewer.destroyed.connect(lambda _o=None, v=viewer: desk.viewers.remove(v))
    viewer.show()
    return viewer


def _preview_build(folder: Path, _args: Namespace) -> tuple[Any, Any, list[DeskFilm]]:
    from scorer.gui.sample_case import build_sample_workspace

    sample = build_sample_workspace(folder / "trial", patients=1, visits=2)
    ws = sample.workspace
    coord = ws.accounts.login("cora", "Willow-Compass-2024")
    images = ws.images.list_images(coord, sample.trial)
    return ws, coord, [DeskFilm(i.code, i.regions, i.qc) for i in images]


def _preview_window(built: tuple[Any, Any, list[DeskFilm]], _args: Namespace) -> DeskViewer:
    ws, coord, films = built
    return DeskViewer(ws, coord, films, "sample films")


PREVIEW = Preview(
    "desk_viewer",
    "The desk's image viewer over a throw-away patient's films.",
    _preview_window,
    build=_preview_build,
    ready=lambda viewer, _args: viewer.current.loaded,
    waiting="Making a throw-away patient's films…",
)


def _main(argv: Sequence[str] | None = None) -> int:
    return run_preview(PREVIEW, argv)


if __name__ == "__main__":
    sys.exit(_main())
