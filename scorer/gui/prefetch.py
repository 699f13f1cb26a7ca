"""Preparing cases before the reader asks for them, so "next case" never waits.

A case is *prepared* when its film list has been read from the facade and every film opened
(header read, pixel pyramid decoded or loaded from the disk cache and paged in, display table
built). :func:`prepare_case` does that as a plain function; :class:`CasePreparer` runs it on
the worker pool (``scorer.gui.tasks``) for the case after the one on screen and keeps the last
few prepared cases, so showing the next one is only drawing.

Preparing never *opens* a case in the facade (``open_case`` starts reads and logs that the
reader saw the case): it only lists and decodes the films. Every film opening is recorded in
:attr:`CasePreparer.decode_calls` with the thread it ran on, so a test can prove the UI thread
never decodes.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, Signal

from scorer.core.case_films import CaseFilm
from scorer.core.joints import JointPoint
from scorer.gui.tasks import BackgroundTask, run_in_background
from scorer.imaging.radiograph import Radiograph, open_radiograph

ImageOpener = Callable[[str, str], Radiograph]
"""Opens a film from its path and content SHA-256."""

CaseLoader = Callable[[str], Mapping[str, Sequence[CaseFilm]]]
"""Lists a case's films by visit letter, as ``Workspace.case_images`` does."""

DEFAULT_KEEP = 4  # previous, current, next, and one spare


@dataclass(frozen=True)
class PreparedImage:
    """One film of a prepared case: its image code, regions and opened radiograph.

    ``radiograph`` is None when the film could not be opened; ``error`` then says why.
    ``joints`` are the joint positions placed on the film (stored-image pixels).
    """

    image: str
    regions: tuple[str, ...]
    radiograph: Radiograph | None
    error: str = ""
    joints: tuple[JointPoint, ...] = ()


@dataclass(frozen=True)
class PreparedCase:
    """A case ready to draw: its films by visit letter, and how long preparing took."""

    code: str
    visits: dict[str, tuple[PreparedImage, ...]]
    seconds: float = 0.0

    def radiographs(self) -> list[Radiograph]:
        return [i.radiograph for f in self.visits.values() for i in f if i.radiograph]


@dataclass(frozen=True)
class DecodeCall:
    """A record of one film opening: which film, on which thread."""

    sha256: str
    thread_id: int
    thread_name: str
    on_ui_thread: bool


def warm(image: Radiograph) -> None:
    """Page in the pyramid's reduced levels and build the default display table, so the
    first frame on the UI thread touches neither the disk nor the window maths."""
    for level in image.pyramid.levels[1:]:
        np.add.reduce(level, axis=None)
    image.display_lut()


def prepare_case(code: str, load_images: CaseLoader, open_image: ImageOpener) -> PreparedCase:
    """List a case's films and open each (once per content hash); a film that cannot be
    opened is kept with its error, so the rest of the case still shows."""
    started = time.perf_counter()
    entries = load_images(code)
    opened: dict[str, PreparedImage] = {}
    visits: dict[str, tuple[PreparedImage, ...]] = {}
    for letter, films in entries.items():
        prepared: list[PreparedImage] = []
        for film in films:
            sha = film.sha256
            regions = film.regions
            if sha not in opened:
                try:
                    image = open_image(film.path, sha)
                    warm(image)
                    opened[sha] = PreparedImage(film.image, regions, image, joints=film.joints)
                except (OSError, ValueError) as exc:  # ImageFormatError is a ValueError
                    opened[sha] = PreparedImage(
                        film.image, regions, None, str(exc), joints=film.joints
                    )
            prepared.append(opened[sha])
        visits[letter] = tuple(prepared)
    return PreparedCase(code, visits, time.perf_counter() - started)


class CasePreparer(QObject):
    """Prepares cases on the worker pool and keeps the last few ready.

    ``load_images(code)`` lists a case's films (the facade's ``case_images``);
    ``open_image(path, sha256)`` opens one (default: :func:`open_radiograph` with the
    pyramid cache in ``cache_dir``). Both run on worker threads only. Signals: ``prepared``
    (case code) and ``failed`` (case code, message), on the UI thread.
    """

    prepared = Signal(str)
    failed = Signal(str, str)

    def __init__(
        self,
        load_images: CaseLoader,
        open_image: ImageOpener | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        keep: int = DEFAULT_KEEP,
        pool: QThreadPool | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._load = load_images
        self._open = open_image or partial(_open_cached, cache_dir=cache_dir)
        self._keep = max(1, keep)
        self._pool = pool
        self._ready: OrderedDict[str, PreparedCase] = OrderedDict()
        self._tasks: dict[str, BackgroundTask] = {}
        self._waiting: dict[str, list[tuple[Callable[[PreparedCase], None], Any]]] = {}
        self._ui_thread = threading.get_ident()
        self._lock = threading.Lock()
        self.decode_calls: list[DecodeCall] = []

    # ------------------------------------------------------------------ queries

    def is_ready(self, code: str) -> bool:
        return code in self._ready

    def is_pending(self, code: str) -> bool:
        return code in self._tasks

    def get(self, code: str) -> PreparedCase | None:
        """The prepared case, or None when it is not ready (never blocks)."""
        case = self._ready.get(code)
        if case is not None:
            self._ready.move_to_end(code)
        return case

    def decodes_on_ui_thread(self) -> int:
        with self._lock:
            return sum(call.on_ui_thread for call in self.decode_calls)

    # ------------------------------------------------------------------ work

    def prepare(self, code: str) -> None:
        """Start preparing ``code`` in the background unless it is ready or under way."""
        if code in self._ready or code in self._tasks:
            return
        self._tasks[code] = run_in_background(
            prepare_case,
            code,
            self._load,
            self._counted_open,
            done=self._finished,
            failed=partial(self._failed, code),
            pool=self._pool,
        )

    def request(
        self,
        code: str,
        done: Callable[[PreparedCase], None],
        failed: Callable[[str], None] | None = None,
    ) -> bool:
        """Call ``done(case)`` now if ``code`` is prepared (returns True), else when it is."""
        case = self.get(code)
        if case is not None:
            done(case)
            return True
        self._waiting.setdefault(code, []).append((done, failed))
        self.prepare(code)
        return False

    def forget(self, code: str | None = None) -> None:
        """Drop one prepared case (or all), e.g. after its films changed."""
        if code is None:
            self._ready.clear()
        else:
            self._ready.pop(code, None)

    def _counted_open(self, path: str, sha256: str) -> Radiograph:
        ident = threading.get_ident()
        call = DecodeCall(sha256, ident, threading.current_thread().name, ident == self._ui_thread)
        with self._lock:
            self.decode_calls.append(call)
        return self._open(path, sha256)

    def _finished(self, case: PreparedCase) -> None:
        self._tasks.pop(case.code, None)
        self._ready[case.code] = case
        self._ready.move_to_end(case.code)
        while len(self._ready) > self._keep:
            self._ready.popitem(last=False)
        for done, _ in self._waiting.pop(case.code, []):
            done(case)
        self.prepared.emit(case.code)

    def _failed(self, code: str, exc: BaseException) -> None:
        self._tasks.pop(code, None)
        message = str(exc) or type(exc).__name__
        for _, failed in self._waiting.pop(code, []):
            if failed is not None:
                failed(message)
        self.failed.emit(code, message)


def _open_cached(path: str, sha256: str, *, cache_dir: str | os.PathLike[str] | None) -> Radiograph:
    return open_radiograph(path, cache_dir=cache_dir, content_sha256=sha256 if cache_dir else None)
