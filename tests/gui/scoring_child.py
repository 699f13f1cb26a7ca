"""Run by test_kill_resume in a child process: open reader rita's reading window on an
existing database (Qt offscreen), type the case's entries from the keyboard one by one as fast
as the event loop allows, and print ``ACK <read> <area>`` on each acknowledged (committed)
entry, until killed.

Usage: python -m tests.gui.scoring_child DB START

``START``: how many of the case's keystrokes (tests.gui.reading_keys order) were typed in
earlier runs; typing goes on from there, so each run adds to the same case.
"""

from __future__ import annotations

import sys


def main(db: str, start: int) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtTest import QTest

    from scorer.core.methods import get_method
    from scorer.gui.preview import preview_application
    from scorer.gui.reading import ReadingWindow, layout_settings
    from scorer.gui.sample_case import SAMPLE_READER, SAMPLE_READER_PASSWORD, SAMPLE_TRIAL
    from scorer.workspace import Workspace
    from tests.gui.reading_keys import case_keystrokes

    app = preview_application("dark")
    ws = Workspace.open(db)
    session = ws.accounts.login(SAMPLE_READER, SAMPLE_READER_PASSWORD)
    window = ReadingWindow(
        ws, session, SAMPLE_TRIAL, settings=layout_settings(ws.images.cache_dir.parent / "child")
    )
    window.show()

    def acked(read_code: str, area: object, _version: int) -> None:
        if area is not None:
            print(f"ACK {read_code} {area}", flush=True)

    window.writer.acknowledged.connect(acked)
    strokes = list(case_keystrokes(get_method("svh"), ("A", "B", "C")))[start:]

    def ready(_code: str) -> None:
        model = window.model
        assert model is not None
        first = strokes[0]
        # The window resumed on the first area not yet entered: that is where typing goes on.
        where = (model.current_letter, str(model.current_area))
        print(f"AT {where[0]} {where[1]}", flush=True)
        if where != (first.letter, str(first.area)):
            print(f"WRONG-PLACE expected {first.letter} {first.area}", flush=True)
            app.exit(3)
            return

        def type_next() -> None:
            if not strokes:
                return
            stroke = strokes.pop(0)
            assert window.grid is not None
            QTest.keyClicks(window.grid.table, stroke.keys)
            QTimer.singleShot(1, type_next)

        type_next()

    window.gridShown.connect(ready)
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
