"""The reader's flags on the case on screen, with the coordinator's answers: the answer to a
flag reaches the reader in the reading window, on the case it was raised on.

The window asks for them (off the UI thread) when a case is shown, after a flag is sent, and
every minute while a case is open; a failed ask is simply tried again at the next tick (the
answers are a courtesy, never in the way of scoring)."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QLabel, QWidget
from shiboken6 import isValid

#: How often the answers are asked for while a case is open.
POLL_MS = 60_000


class FlagAnswersLabel(QLabel):
    """The case's flags in a line each: what was asked, and the answer or that it waits."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("flagAnswers")
        self.setWordWrap(True)
        self.setTextFormat(self.textFormat().RichText)
        self.hide()
        self.shown: tuple[tuple[int, str], ...] = ()

    def show_flags(self, flags: Sequence[Any]) -> None:
        """Show ``flags`` (the service's Flag rows of this case; none hides the line)."""
        self.shown = tuple((int(f.flag), str(f.answer)) for f in flags)
        if not flags:
            self.clear()
            self.hide()
            return
        lines = []
        for f in flags:
            where = f" (visit {html.escape(f.letter)})" if f.letter else ""
            asked = html.escape(_short(f.message))
            if f.closed:
                answer = html.escape(f.answer)
                lines.append(
                    f"<b>Flag {f.flag}{where}</b> “{asked}” — coordinator: “{answer}”"
                )
            else:
                lines.append(f"Flag {f.flag}{where} “{asked}” — waiting for the coordinator")
        self.setText("<br>".join(lines))
        self.show()


def _short(text: str, limit: int = 80) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


class FlagAnswers(QObject):
    """Keeps a reading window's answer line up to date for the case on screen.

    ``case_code()`` names the case on screen (None when there is none), ``label()`` its grid's
    answer line (None without a grid), ``run(fn, *args, done=, failed=)`` runs a call off the
    UI thread, and ``told(text)`` says a new answer in the status bar."""

    def __init__(
        self,
        workspace: Any,
        session: Any,
        case_code: Callable[[], str | None],
        label: Callable[[], FlagAnswersLabel | None],
        run: Callable[..., None],
        told: Callable[[str], None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        service = getattr(workspace, "coordination", None)
        self._ask = getattr(service, "case_flags", None)
        self._session = session
        self._case_code = case_code
        self._label = label
        self._run = run
        self._told = told
        self._answered: dict[int, str] = {}
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.refresh)
        if self._ask is not None:
            self.timer.start()

    def refresh(self) -> None:
        """Ask for the flags of the case on screen (off the UI thread)."""
        code = self._case_code()
        if self._ask is None or code is None:
            return
        self._run(
            self._ask,
            self._session,
            code,
            done=lambda flags: self._arrived(code, flags),
            failed=lambda _exc: None,  # tried again at the next tick
        )

    def _arrived(self, code: str, flags: Sequence[Any]) -> None:
        if not isValid(self) or code != self._case_code():
            return  # the window has gone, or the reader has moved on (the next case asks)
        label = self._label()
        if label is None or not isValid(label):
            return
        # Each answer is said once in the status bar (the line keeps showing it).
        new = [f for f in flags if f.closed and self._answered.get(f.flag) != f.answer]
        for f in new:
            self._answered[f.flag] = f.answer
        label.show_flags(flags)
        if new:
            self._told(f"The coordinator answered your flag {new[-1].flag} on this case.")


def attach_flag_answers(window: Any) -> FlagAnswers:
    """Give the reading window its flag answers: asked for when a case's grid is shown and
    after a flag is sent, every minute meanwhile; the grid's flag dialog gets the films on
    screen from the window's case view. ``window`` is a ReadingWindow (which imports this
    module, so it is not named here)."""

    def case_code() -> str | None:
        model = getattr(window, "model", None)
        return str(model.case_code) if model is not None and window.grid is not None else None

    def label() -> FlagAnswersLabel | None:
        grid = getattr(window, "grid", None)
        return grid.flag_answers if grid is not None else None

    answers = FlagAnswers(
        window._ws,
        window._session,
        case_code,
        label,
        window.tasks.run,
        lambda text: window.statusBar().showMessage(text, 8000),
        window,
    )
    wired: list[object] = []

    def grid_shown(_code: str) -> None:
        grid = window.grid
        if grid is not None and grid not in wired:
            wired.append(grid)
            grid.films_on_screen = window.case_view.films_on_screen
            grid.flagRaised.connect(lambda _n: answers.refresh())
        answers.refresh()

    window.gridShown.connect(grid_shown)
    return answers
