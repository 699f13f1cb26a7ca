"""A reading workstation, driven from the keyboard, that is killed mid-case: the reader's half
of ``test_issue30_walk.py``.

``python walk_child.py CONFIG`` (CONFIG: a JSON file with the database ``db``, the ``trial``,
the reader's ``username`` and ``password``, a ``settings`` folder, the number of ``scores``
and the ``flag`` message) opens the reading window (offscreen, films recorded every half
second), types that many grades into the first case, goes to the next page of films, flags
visit B with the films on screen, prints one JSON line (session id, case, the films shown,
the flag's number) and ``ready``, and waits to be killed: it never logs out or closes the case.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def wait_until(app: Any, ok: Any, seconds: float = 60.0) -> None:
    end = time.monotonic() + seconds
    while not ok():
        if time.monotonic() > end:
            raise TimeoutError("the reading window did not get there in time")
        app.processEvents()
        time.sleep(0.01)


def main(config: str) -> int:
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from scorer.gui import case_time
    from scorer.gui.reading import ReadingWindow
    from scorer.gui.settings import layout_settings
    from scorer.workspace import Workspace

    cfg = json.loads(Path(config).read_text(encoding="utf-8"))
    case_time.RECORD_INTERVAL_S = 0.5
    app = QApplication([])
    ws = Workspace.open(db=cfg["db"])
    s = ws.accounts.login(cfg["username"], cfg["password"])
    window = ReadingWindow(ws, s, cfg["trial"], settings=layout_settings(cfg["settings"]))
    window.resize(1400, 900)
    window.show()
    wait_until(
        app,
        lambda: window.grid is not None
        and window.model is not None
        and bool(window.case_view.films_on_screen()),
    )
    assert window.grid is not None and window.model is not None
    shown = set(window.case_view.films_on_screen())
    window.grid.table.setFocus()
    QTest.keyClicks(window.grid.table, "0" * int(cfg["scores"]))
    wait_until(app, lambda: window.writer.pending_count == 0)
    window.case_view.step_page()  # the other films: a film change
    wait_until(app, lambda: bool(set(window.case_view.films_on_screen()) - shown))
    shown |= set(window.case_view.films_on_screen())
    raised: list[int] = []
    window.grid.flagRaised.connect(raised.append)
    window.grid.ask_flag()
    dialog = window.grid.flag_dialog
    assert dialog is not None
    dialog.about.setCurrentIndex(dialog.about.findData("B"))
    dialog.text.setPlainText(cfg["flag"])
    on_screen_when_flagged = window.case_view.films_on_screen()
    dialog.accept()
    wait_until(app, lambda: bool(raised))
    # Two record intervals, so every film on screen has been recorded at least once.
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
    wait_until(app, lambda: window.time_log.queue.pending == 0)
    print(
        json.dumps(
            {
                "session": s.id,
                "case": window.model.case_code,
                "films": sorted(shown),
                "flagged_films": on_screen_when_flagged,
                "flag": raised[0],
                "scores": int(cfg["scores"]),
            }
        ),
        flush=True,
    )
    print("ready", flush=True)
    while True:  # the parent kills this process: no log-out, no case.closed
        app.processEvents()
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
