"""Cold-start benchmark: from a new process to the workstation on screen and the first film drawn.

The demo trial is built once (as ``scorer demo`` builds it) in a temporary folder. Then, for
each run, a fresh interpreter is started (as a desktop launcher starts ``scorer gui``) and
the time is taken from just before the process is created to:

- **window**: the workstation's first window (the log-in dialog) shown and painted;
- **reading window**: after the log-in is submitted, the reader's reading window shown (this
  includes checking the password, an argon2 hash on purpose slow, reported separately);
- **first image**: the first case's films all painted.

The log-in is submitted by the child itself the moment the dialog is up (no typing time).
Each run has a cold pyramid cache (the demo's films decoded and their pyramids built) unless
``--warm`` keeps the cache between runs. The operating system's file cache is warm after the
first run; there is no dropping it without root, and a workstation that has run scorer once
is in the same state.

Usage (from the repository root):

    .venv/bin/python benchmarks/startup.py [--runs N] [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, sys, time
db, user, password = sys.argv[1:4]
from pathlib import Path
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from scorer.gui.reading import layout_settings
from scorer.gui.workstation import Workstation, apply_theme
from scorer.workspace import Workspace

marks = {}
def mark(name):
    if name not in marks:
        marks[name] = time.time()

app = QApplication(sys.argv[:1])
app.setApplicationName("scorer")
ws = Workspace.open(db)
apply_theme(app, str(layout_settings(Path(ws.cache_dir).parent).value("ui/theme", "dark")))
app.setQuitOnLastWindowClosed(False)
station = Workstation(ws, username=user)
station.start()
dialog = station.login_dialog
login = {}

def painted(window):
    case = window.case_view.case
    if case is None or case.code != window.current_code:
        return False
    panels = [p for p in window.case_view.panels.values() if p.isVisible()]
    return bool(panels) and all(
        p.model.image is not None and p.painted_image is p.model.image for p in panels
    )

def poll():
    handle = dialog.windowHandle()
    if "window" not in marks and handle is not None and handle.isExposed():
        mark("window")
        dialog.password.setText(password)
        login["start"] = time.time()
        dialog.submit()
    if dialog.session is not None and "login_done" not in login:
        login["login_done"] = time.time()
    w = station.window
    if w is not None and w.isVisible() and "reading" not in marks:
        mark("reading")
    if w is not None and "reading" in marks and painted(w):
        mark("image")
        took = login.get("login_done", marks["image"]) - login["start"]
        print(json.dumps({**marks, "login_s": took}), flush=True)
        app.quit()
        return
    QTimer.singleShot(1, poll)

QTimer.singleShot(0, poll)
app.exec()
os._exit(0)
"""


def one_run(db: str, user: str, password: str, env: dict[str, str]) -> dict[str, float]:
    t0 = time.time()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, db, user, password],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else str(exc.stderr)
        raise RuntimeError(f"the workstation did not get there in 120 s:\n{err[-3000:]}") from None
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"the workstation did not start:\n{proc.stderr[-3000:]}")
    marks = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "window_s": marks["window"] - t0,
        "reading_s": marks["reading"] - t0,
        "image_s": marks["image"] - t0,
        "login_s": marks["login_s"],
        "image_after_login_s": marks["image"] - t0 - marks["login_s"],
    }


def summary(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)
    return {
        "median": statistics.median(ordered),
        "p95": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
        "spread": [ordered[0], ordered[-1]],
        "runs": len(ordered),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="a smoke run: two runs")
    ap.add_argument("--warm", action="store_true", help="keep the pyramid cache between runs")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "startup.json")
    args = ap.parse_args()
    runs = 2 if args.quick else args.runs
    tmp = Path(tempfile.mkdtemp(prefix="scorer-bench-startup-"))
    env = {
        **os.environ,
        "SCORER_DATA_DIR": str(tmp / "data"),
        "SCORER_CONFIG": str(tmp / "no-config.toml"),
        "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
        "PYTHONPATH": str(REPO),
    }
    env.pop("SCORER_DB", None)
    os.environ.update({k: env[k] for k in ("SCORER_DATA_DIR", "SCORER_CONFIG")})
    sys.path.insert(0, str(REPO))
    from scorer.demo import run_demo

    print("building the demo trial (once)…", flush=True)
    built = time.perf_counter()
    result = run_demo(str(tmp / "demo.sqlite"))
    print(f"  built in {time.perf_counter() - built:.0f} s")
    user = "reader3"
    password = result.passwords[user]
    cache = tmp / "data" / "cache"
    results: list[dict[str, float]] = []
    for i in range(runs):
        if not args.warm:
            shutil.rmtree(cache, ignore_errors=True)
        r = one_run(str(result.db), user, password, env)
        results.append(r)
        print(
            f"  run {i + 1}: window {r['window_s']:.2f} s, reading window {r['reading_s']:.2f} s"
            f" (log-in {r['login_s']:.2f} s), first image {r['image_s']:.2f} s"
        )
    out: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "system": platform.platform(),
            "cpus": os.cpu_count(),
            "qpa": env["QT_QPA_PLATFORM"],
        },
        "cache": "warm" if args.warm else "cold",
    }
    for key in ("window_s", "reading_s", "login_s", "image_s", "image_after_login_s"):
        out[key] = summary([r[key] for r in results])
    print(
        f"window shown: median {out['window_s']['median']:.2f} s "
        f"(p95 {out['window_s']['p95']:.2f});"
        f" first image: median {out['image_s']['median']:.2f} s, of which log-in "
        f"{out['login_s']['median']:.2f} s"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"written: {args.json}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
