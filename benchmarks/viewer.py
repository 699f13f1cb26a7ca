"""Viewer benchmark: how long "next case" takes to show, and how fast window/level and pan redraw.

Next case. A throw-away database with synthetic patients (three visits each, a 1200 x 1000
film of both hands and one of both feet per visit, 12-bit, imported as a coordinator would)
is read by its reader in the reading window (1800 x 1000, three visits side by side). The
time is from "next" (PageDown) until every visit's film of the new case has been painted:

- with prefetch: the next case was prepared on a worker while the previous one was shown
  (a reader spends far longer on a case than preparing takes), so "next" is only drawing;
- without prefetch, pyramids cached: the films are opened when asked (header read, pyramid
  memory-mapped from the disk cache, paged in), as for a case seen before on this workstation;
- without prefetch, cold: the pyramid cache is emptied first, so the films are decoded and
  their pyramids built, as for a case never opened on this workstation.

In the last two the UI stays responsive ("Preparing the case…") while the worker opens the
films; the figure is how long the reader waits.

Frames. A 3000 x 2400 12-bit hand film in one viewer (1600 x 1000 logical pixels, device pixel
ratio 1): the time to handle one mouse move of a right-drag (window/level) or left-drag (pan)
and repaint the viewer, median over many moves, at fit zoom and at 1:1.

Usage (from the repository root):

    .venv/bin/python benchmarks/viewer.py [--patients N] [--quick] [--json PATH]

Runs offscreen unless QT_QPA_PLATFORM says otherwise. Results go to the terminal and to JSON
(default benchmarks/results/viewer.json).
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
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.reading_window import open_reading_window, spin

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "viewer.json"
READING_WINDOW = (1800, 1000)
VIEWER = (1600, 1000)
BIG_IMAGE = (3000, 2400)  # rows, columns


def case_painted(window: Any) -> bool:
    """Whether every visible visit of the case on screen has painted its current film."""
    case = window.case_view.case
    if case is None or case.code != window.current_code:
        return False
    panels = [p for p in window.case_view.panels.values() if p.isVisible()]
    return bool(panels) and all(
        p.model.image is not None and p.painted_image is p.model.image for p in panels
    )


def next_case_times(
    app: QApplication, sample: Any, folder: Path, mode: str
) -> tuple[list[float], list[float]]:
    """Milliseconds from "next" to the new case painted, for each step through the worklist;
    and how long preparing each case took on the worker."""
    window = open_reading_window(
        sample, folder / f"settings-{mode}", READING_WINDOW, prefetch=mode == "prefetch"
    )
    spin(app, lambda: case_painted(window))
    shown: list[float] = []
    prepared: list[float] = []
    for index in range(1, len(window.rows)):
        code = window.rows[index]["code"]
        if mode == "prefetch":
            spin(app, lambda code=code: window.preparer.is_ready(code))
        else:
            window.preparer.forget()
            if mode == "cold":
                shutil.rmtree(sample.workspace.images.cache_dir, ignore_errors=True)
        app.processEvents()
        started = time.perf_counter()
        window.next_case()
        spin(app, lambda: case_painted(window))
        shown.append((time.perf_counter() - started) * 1000)
        case = window.preparer.get(code)
        if case is not None:
            prepared.append(case.seconds * 1000)
    assert window.preparer.decodes_on_ui_thread() == 0
    window.close()
    return shown, prepared


def big_film(folder: Path) -> Path:
    """A 3000 x 2400 12-bit DICOM hand film (synthetic, padded to width)."""
    from scorer.imaging.synthetic import damage_course, render_hand
    from scorer.imaging.synthetic_dicom import (
        build_dataset,
        fake_patient,
        fake_site,
        fake_study,
        write_dicom,
    )

    rows, cols = BIG_IMAGE
    image = render_hand("L", damage_course(5, 1).visits[0], 5, pixel_mm=250 / rows)
    pixels = np.full((rows, cols), int(image.pixels[0, 0]), dtype=np.uint16)
    pixels[:, : image.columns] = image.pixels[:rows, :cols]
    padded = type(image)(**{**image.__dict__, "pixels": pixels})
    patient = fake_patient(5)
    ds = build_dataset(padded, patient, fake_study(5, patient), fake_site(5))
    path = folder / "big.dcm"
    write_dicom(ds, path)
    return path


def frame_times(app: QApplication, path: Path, folder: Path, moves: int) -> dict[str, float]:
    """Median milliseconds per mouse move + repaint while dragging, by drag and zoom."""
    from scorer.gui.viewer import ImageViewer
    from scorer.imaging.radiograph import open_radiograph

    image = open_radiograph(path, cache_dir=folder / "cache")
    viewer = ImageViewer()
    viewer.resize(*VIEWER)
    viewer.show()
    viewer.set_image(image)
    spin(app, lambda: viewer.painted_image is image)
    out: dict[str, float] = {}
    for zoom in ("fit", "1:1"):
        for drag, button in (("window_level", Qt.MouseButton.RightButton),
                             ("pan", Qt.MouseButton.LeftButton)):  # fmt: skip
            viewer.model.reset()
            if zoom == "1:1":
                viewer.model.one_to_one()
            viewer.repaint()
            times = drag_times(viewer, button, moves)
            out[f"{drag}_{zoom}_ms"] = statistics.median(times)
            out[f"{drag}_{zoom}_p95_ms"] = float(np.percentile(times, 95))
    viewer.model.reset()
    started = time.perf_counter()
    for _ in range(moves):
        viewer.model.render()
    out["render_only_fit_ms"] = (time.perf_counter() - started) * 1000 / moves
    out["physical_pixels"] = float(np.prod(viewer.model.physical_size()))
    # The floor: copying as many 32-bit display pixels as the viewer shows, with numpy.
    shown = np.zeros(int(out["physical_pixels"]), dtype=np.uint32)
    floor = []
    for _ in range(max(20, moves // 4)):
        started = time.perf_counter()
        shown.copy()
        floor.append((time.perf_counter() - started) * 1000)
    out["numpy_copy_floor_ms"] = statistics.median(floor)
    viewer.close()
    return out


def reset_peak_rss() -> bool:
    """Start a new peak-resident-memory measurement (Linux: clear_refs 5); False elsewhere."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """The process's peak resident memory since the last reset (VmHWM), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def drag_times(viewer: Any, button: Qt.MouseButton, moves: int) -> list[float]:
    """Send a press, ``moves`` moves (each repainted at once) and a release; time each move."""

    def send(kind: QEvent.Type, x: float, y: float, buttons: Qt.MouseButton) -> None:
        pos = QPointF(x, y)
        event = QMouseEvent(
            kind, pos, viewer.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier
        )
        QApplication.sendEvent(viewer, event)

    x0, y0 = VIEWER[0] / 2, VIEWER[1] / 2
    send(QEvent.Type.MouseButtonPress, x0, y0, button)
    times: list[float] = []
    for i in range(1, moves + 1):
        # a back-and-forth stroke, as a reader's hand moves
        dx = 300 * np.sin(i / 15)
        dy = 150 * np.sin(i / 23)
        started = time.perf_counter()
        send(QEvent.Type.MouseMove, x0 + dx, y0 + dy, button)
        viewer.repaint()
        times.append((time.perf_counter() - started) * 1000)
    send(QEvent.Type.MouseButtonRelease, x0, y0, Qt.MouseButton.NoButton)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=9, help="cases in the worklist")
    parser.add_argument("--moves", type=int, default=200, help="mouse moves per drag")
    parser.add_argument("--quick", action="store_true", help="a smoke run: small and short")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    patients, moves, pixel_mm = args.patients, args.moves, 0.25
    if args.quick:
        patients, moves, pixel_mm = 3, 20, 1.0

    folder = Path(tempfile.mkdtemp(prefix="scorer-viewer-bench-"))
    os.environ["SCORER_DATA_DIR"] = str(folder / "data")
    os.environ["SCORER_CONFIG"] = str(folder / "no-site-config.toml")
    os.environ.pop("SCORER_DB", None)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    from scorer.gui.sample_case import build_sample_workspace
    from scorer.gui.theme import apply_theme

    apply_theme(app, "dark")
    try:
        print(f"making {patients} synthetic patients (3 visits, hands + feet)…", flush=True)
        started = time.perf_counter()
        sample = build_sample_workspace(folder / "trial", patients=patients, pixel_mm=pixel_mm)
        print(f"  done in {time.perf_counter() - started:.1f} s", flush=True)
        next_case: dict[str, Any] = {}
        memory: dict[str, Any] = {}
        for mode in ("prefetch", "cached", "cold"):
            if mode == "prefetch":
                memory["reset"] = reset_peak_rss()
            shown, prepared = next_case_times(app, sample, folder, mode)
            if mode == "prefetch":
                memory["reading_with_prefetch_peak_mb"] = peak_rss_mb()
                print(
                    f"peak resident memory while reading with prefetch: "
                    f"{memory['reading_with_prefetch_peak_mb']:.0f} MB",
                    flush=True,
                )
            next_case[mode] = {
                "median_ms": statistics.median(shown),
                "max_ms": max(shown),
                "times_ms": [round(t, 2) for t in shown],
                "prepare_median_ms": statistics.median(prepared) if prepared else None,
            }
            print(
                f"next case, {mode:>8}: median {statistics.median(shown):7.1f} ms, "
                f"max {max(shown):7.1f} ms  (n = {len(shown)})",
                flush=True,
            )
        sample.workspace.close()
        print("making a 3000 x 2400 film…", flush=True)
        frames = frame_times(app, big_film(folder), folder, moves)
        for key, value in frames.items():
            if key.endswith("_ms"):
                print(f"{key:>28}: {value:6.2f} ms")
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    first = sample.films[0]
    document = {
        "films": {
            "per_case": len([f for f in sample.films if f.patient_id == first.patient_id]),
            "pixel_mm": pixel_mm,
            "hands_film_pixels": [int(300 / pixel_mm), int(250 / pixel_mm)],
        },
        "cases": patients,
        "reading_window": list(READING_WINDOW),
        "next_case": next_case,
        "big_image": {"rows": BIG_IMAGE[0], "columns": BIG_IMAGE[1], "viewer": list(VIEWER)},
        "frames": frames,
        "memory": memory,
        "moves": moves,
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
