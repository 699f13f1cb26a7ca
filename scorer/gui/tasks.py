"""Running slow work off the UI thread: decoding, imports, statistics, exports.

One small helper: a plain function runs on the thread pool; ``done`` or ``failed`` is called
back on the UI thread with its result or exception; the function may report progress.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal, Slot
from shiboken6 import isValid


class _Signals(QObject):
    done = Signal(object)
    failed = Signal(object)
    progress = Signal(int, int, str)


class BackgroundTask(QRunnable):
    """A function run on a worker thread with done, failed and progress signals."""

    def __init__(
        self, fn: Callable[..., Any], *args: Any, with_progress: bool = False, **kwargs: Any
    ) -> None:
        super().__init__()
        self.signals = _Signals()
        self._fn = fn
        self._args = args
        self._kwargs = kwargs
        if with_progress:
            self._kwargs["progress"] = self._report

    def _report(self, done: int, total: int, text: str) -> None:
        self.signals.progress.emit(done, total, text)

    @Slot()
    def run(self) -> None:
        try:
            result = self._fn(*self._args, **self._kwargs)
        except BaseException as exc:  # reported to the UI, never lost on a thread
            self._answer(self.signals.failed, exc)
        else:
            self._answer(self.signals.done, result)

    def _answer(self, signal: Any, value: object) -> None:
        # The application may have gone (its objects deleted at exit) while the call ran:
        # nobody is left to tell, which is not an error of the call's.
        if isValid(self.signals):
            with contextlib.suppress(RuntimeError):  # deleted between the check and the emit
                signal.emit(value)


def run_in_background(
    fn: Callable[..., Any],
    *args: Any,
    done: Callable[[Any], None] | None = None,
    failed: Callable[[BaseException], None] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    pool: QThreadPool | None = None,
    **kwargs: Any,
) -> BackgroundTask:
    """Start ``fn(*args, **kwargs)`` on the pool; callbacks arrive on the UI thread."""
    task = BackgroundTask(fn, *args, with_progress=progress is not None, **kwargs)
    if done:
        task.signals.done.connect(done)
    if failed:
        task.signals.failed.connect(failed)
    if progress:
        task.signals.progress.connect(progress)
    # Keep the task (and the signals that carry its answer) alive until the answer has been
    # delivered on the UI thread: a task nobody holds can be freed on the worker thread.
    _RUNNING.add(task)

    def release(_: object) -> None:
        QTimer.singleShot(0, lambda: _RUNNING.discard(task))

    task.signals.done.connect(release)
    task.signals.failed.connect(release)
    (pool or QThreadPool.globalInstance()).start(task)
    return task


# Tasks started and not yet answered. Not application state: it only ties the Python objects'
# lifetime to the work Qt is doing with them.
_RUNNING: set[BackgroundTask] = set()


class KeptTasks:
    """Runs calls with :func:`~scorer.gui.tasks.run_in_background`, holding each task until its
    answer has arrived on the UI thread: a task dropped as soon as it is started can be freed
    on the worker thread, with the signals that carry its answer (a crash)."""

    def __init__(self) -> None:
        self._live: set[BackgroundTask] = set()

    def __len__(self) -> int:
        return len(self._live)

    def run(
        self,
        fn: Callable[..., Any],
        *args: Any,
        done: Callable[[Any], None] | None = None,
        failed: Callable[[BaseException], None] | None = None,
    ) -> None:
        task: BackgroundTask | None = None

        def finish(callback: Callable[[Any], None] | None, value: Any) -> None:
            kept = task
            QTimer.singleShot(0, lambda: self._live.discard(kept))
            if callback is not None:
                callback(value)

        task = run_in_background(
            fn, *args, done=lambda r: finish(done, r), failed=lambda e: finish(failed, e)
        )
        self._live.add(task)
