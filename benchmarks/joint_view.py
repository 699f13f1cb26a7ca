"""Joint view benchmark: how long "next area" takes to move every visit's pane to its joint.

A throw-away database with one synthetic patient (three visits, a 1200 x 1000 film of both
hands and one of both feet per visit at 0.25 mm, 12-bit) is read by its reader in the reading
window (1800 x 1000), its films carrying the generator's true joint positions, in joint view
(25 mm across each pane). The case is prepared (prefetched) before timing, as in reading. The
time is from the grid's "next area" key (Down) until every visit's pane has repainted centred
on the new joint: the grid's move, the panes following it (a page change from hands to feet
included, once per pass) and the three repaints from the pyramid. Every area of the paired
case is visited, down then up, ``--passes`` times.

Usage (from the repository root):

    .venv/bin/python benchmarks/joint_view.py [--passes N] [--quick] [--json PATH]

Runs offscreen unless QT_QPA_PLATFORM says otherwise. Results go to the terminal and to JSON
(default benchmarks/results/joint_view.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import PySide6
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.reading_window import open_reading_window, spin

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "joint_view.json"
READING_WINDOW = (1800, 1000)
TARGET_MS = 50.0


def open_window(app: QApplication, sample: Any, folder: Path) -> Any:
    """The reader's window on the case, its films prepared, in joint view."""
    window = open_reading_window(sample, folder / "settings", READING_WINDOW, truth=True)
    spin(app, lambda: window.grid is not None and window.case_view.case is not None)
    window.case_view.joint_view.set_on(True)
    app.processEvents()
    return window


def next_area_times(app: QApplication, window: Any, passes: int) -> list[float]:
    """Milliseconds from the Down (or Up) key in the grid to every pane repainted."""
    grid, model = window.grid, window.model
    panels = list(window.case_view.panels.values())
    model.set_current(0, 0)
    app.processEvents()
    times: list[float] = []
    for number in range(passes):
        key = Qt.Key.Key_Down if number % 2 == 0 else Qt.Key.Key_Up
        for _ in range(len(model.areas) - 1):
            before = [p.paint_count for p in panels]
            started = time.perf_counter()
            QTest.keyClick(grid.table, key)
            spin(app, lambda b=before: repainted(panels, b))
            times.append((time.perf_counter() - started) * 1000)
            assert_centred(window)
    return times


def repainted(panels: list[Any], before: list[int]) -> bool:
    """Whether every pane has painted since its paint count was ``before``."""
    return all(p.paint_count > n for p, n in zip(panels, before, strict=True))


def assert_centred(window: Any) -> None:
    """The benchmark times what the reader needs: each pane on its own film's joint."""
    from scorer.gui.joint_view import on_view

    joints = window.case_view.joint_view
    for panel in window.case_view.panels.values():
        point = joints.positions(panel).get(joints.area)
        if point is None:
            continue
        sx, sy = panel.model.to_screen(*on_view(point.x, point.y))
        width, height = panel.model.size
        if abs(sx - width / 2) > 1 or abs(sy - height / 2) > 1:
            raise AssertionError(f"pane {panel.letter} is not centred on {joints.area}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=4, help="passes through every area")
    parser.add_argument("--quick", action="store_true", help="a smoke run: small and short")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    passes, pixel_mm = args.passes, 0.25
    if args.quick:
        passes, pixel_mm = 1, 1.0

    folder = Path(tempfile.mkdtemp(prefix="scorer-joint-view-bench-"))
    os.environ["SCORER_DATA_DIR"] = str(folder / "data")
    os.environ["SCORER_CONFIG"] = str(folder / "no-site-config.toml")
    os.environ.pop("SCORER_DB", None)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    from scorer.gui.sample_case import build_sample_workspace
    from scorer.gui.theme import apply_theme

    apply_theme(app, "dark")
    try:
        print("making a synthetic patient (3 visits, hands + feet)…", flush=True)
        sample = build_sample_workspace(folder / "trial", patients=1, pixel_mm=pixel_mm)
        window = open_window(app, sample, folder)
        times = next_area_times(app, window, passes)
        sizes = [list(p.model.size) for p in window.case_view.panels.values()]
        window.close()
        sample.workspace.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    median, p95 = statistics.median(times), float(np.percentile(times, 95))
    print(
        f"next area in joint view, 3 panes: median {median:.1f} ms, p95 {p95:.1f} ms, "
        f"max {max(times):.1f} ms  (n = {len(times)}; target <= {TARGET_MS:g} ms)",
        flush=True,
    )
    document = {
        "next_area": {
            "median_ms": median,
            "p95_ms": p95,
            "max_ms": max(times),
            "n": len(times),
            "times_ms": [round(t, 2) for t in times],
        },
        "target_ms": TARGET_MS,
        "panes": sizes,
        "field_mm": 25.0,
        "pixel_mm": pixel_mm,
        "reading_window": list(READING_WINDOW),
        "passes": passes,
        "quick": args.quick,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pyside6": PySide6.__version__,
            "qpa": os.environ.get("QT_QPA_PLATFORM", ""),
            "cpus": os.cpu_count(),
        },
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
