"""Reader-time benchmark: a paired case scored in the reading window, in film and joint view.

A throw-away database with synthetic patients (three visits each, a 1200 x 1000 film of both
hands and one of both feet per visit at 0.25 mm; the films' true joint positions placed as the
demo places them) is read by its reader in the reading window at 1920 x 1080. Each case is
scored from the keyboard as a reader would (``tests/gui/reading_keys.py``'s keys: a grade per
area, two digits for a foot erosion, now and then ``N`` and a reason), every area of every
visit, and then signed:

- film view: the whole films, as the window opens;
- joint view: ``J`` first, so every visit's pane shows the area being scored, and the panes
  move with the grid's cursor.

Printed per view: keystrokes and mouse clicks for the case, the window's own time per area (from
the area's first key until the window has handled it and repainted every pane, median and p95)
and per case (the sum: the time a reader waits on the window, not the time they look). Later
changes to the reading window can show against these figures that they made reading faster.

Usage (from the repository root):

    .venv/bin/python benchmarks/reading.py [--quick] [--json PATH]

Runs offscreen unless QT_QPA_PLATFORM says otherwise (``xcb`` under Xvfb draws for real).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import machine, quantile, write_json
from benchmarks.reading_window import open_reading_window, spin

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "reading.json"
WINDOW = (1920, 1080)
VIEWS = ("film", "joint")


def settle(app: QApplication, window: Any) -> None:
    """Handle what the last key posted (the grid's move, the panes' repaints) until a pass
    paints nothing more."""
    panels = list(window.case_view.panels.values())
    while True:
        before = [p.paint_count for p in panels]
        app.sendPostedEvents()
        app.processEvents()
        if [p.paint_count for p in panels] == before:
            return


def score_case(app: QApplication, window: Any, view: str) -> dict[str, Any]:
    """Score every area of every visit of the case on screen from the keyboard in ``view``;
    the keys, clicks and the window's own milliseconds per area."""
    from scorer.core.methods import get_method
    from tests.gui.reading_keys import keys_for

    method = get_method("svh")
    model = window.model
    assert model is not None
    hidden = [p.letter for p in window.case_view.panels.values() if not p.isVisible()]
    if hidden:
        raise AssertionError(f"visits {hidden} are not on screen")
    if view == "joint" and not window.case_view.joint_view.on:
        QTest.keyClicks(QApplication.focusWidget() or window, "j")
        settle(app, window)
    keys = clicks = 0
    per_area: list[float] = []
    todo = len(model.letters) * len(method.areas)
    for seed in range(todo):
        # The grid's cursor says where the next entry goes (its order follows the layout).
        typed, _value = keys_for(method.area(model.current_area), seed)
        started = time.perf_counter()
        for ch in typed:
            # A reader's keys come apart in time: each is handled (a reason popup takes the
            # focus) before the next.
            QTest.keyClicks(QApplication.focusWidget() or window, ch)
            settle(app, window)
        per_area.append((time.perf_counter() - started) * 1000)
        keys += len(typed)
    if view == "joint" and window.case_view.joint_view.notices():
        raise AssertionError(f"joint view: {window.case_view.joint_view.notices()}")
    spin(app, lambda: window.writer.pending_count == 0)
    if model.failed:
        raise AssertionError(f"{model.failed} saves failed")
    empty = [key for key, cell in model.cells.items() if cell.entry is None]
    if empty:
        raise AssertionError(f"{len(empty)} areas left after {todo} entries: {empty[:3]}")
    return {
        "view": view,
        "areas": len(per_area),
        "keystrokes": keys,
        "clicks": clicks,
        "per_area_median_ms": round(statistics.median(per_area), 2),
        "per_area_p95_ms": round(quantile(per_area, 0.95), 2),
        "per_case_ms": round(sum(per_area), 1),
    }


def sign(app: QApplication, window: Any, password: str, user: str) -> int:
    """Sign the case with the dialog as a reader does; the keys it took."""
    code = window.current_code
    QTest.keyClick(window.grid.table, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    spin(app, lambda: window.sign_dialog is not None and window.sign_dialog.isVisible())
    dialog = window.sign_dialog
    typed = 2
    if dialog.first_signature:
        QTest.keyClicks(dialog.username, user)
        typed += len(user) + 1
    QTest.keyClicks(dialog.password, password)
    QTest.keyClick(dialog.password, Qt.Key.Key_Return)
    typed += len(password)
    # Signed: the window goes on to the next case, or (the last) shows this one signed.
    spin(
        app,
        lambda: (
            window.model is not None
            and (window.current_code != code or window.case_state() == "signed")
        ),
    )
    return typed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: small films")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    pixel_mm = 1.0 if args.quick else 0.25

    folder = Path(tempfile.mkdtemp(prefix="scorer-reading-bench-"))
    os.environ["SCORER_DATA_DIR"] = str(folder / "data")
    os.environ["SCORER_CONFIG"] = str(folder / "no-site-config.toml")
    os.environ.pop("SCORER_DB", None)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    from scorer.gui.sample_case import (
        SAMPLE_READER,
        SAMPLE_READER_PASSWORD,
        build_sample_workspace,
    )
    from scorer.gui.theme import apply_theme

    apply_theme(app, "dark")
    results: list[dict[str, Any]] = []
    try:
        print("making 3 synthetic patients (3 visits, hands + feet)…", flush=True)
        sample = build_sample_workspace(folder / "trial", patients=3, pixel_mm=pixel_mm)
        window = open_reading_window(sample, folder / "settings", WINDOW, truth=True)
        spin(app, lambda: window.model is not None and window.case_view.case is not None)
        spin(app, lambda: QApplication.focusWidget() is window.grid.table)
        if len(window.rows) < len(VIEWS):
            raise AssertionError(f"the worklist has {len(window.rows)} cases")
        for view in VIEWS:
            figures = score_case(app, window, view)
            figures["keystrokes"] += sign(app, window, SAMPLE_READER_PASSWORD, SAMPLE_READER)
            results.append(figures)
            print(
                f"{view:>5} view: {figures['keystrokes']} keys, {figures['clicks']} clicks, "
                f"{figures['areas']} areas; the window's own time per area median "
                f"{figures['per_area_median_ms']:.1f} ms, p95 {figures['per_area_p95_ms']:.1f} "
                f"ms; per case {figures['per_case_ms'] / 1000:.2f} s",
                flush=True,
            )
        window.close()
        sample.workspace.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    write_json(
        args.json,
        {
            "window": list(WINDOW),
            "pixel_mm": pixel_mm,
            "views": {r["view"]: r for r in results},
            "quick": args.quick,
            "machine": machine(qpa=os.environ.get("QT_QPA_PLATFORM", "")),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
