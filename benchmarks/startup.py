"""Cold-start benchmark: from a new process to the workstation on screen and the first film drawn.

The demo trial is built once (as ``scorer demo`` builds it) in a temporary folder. Then, for
each run, a fresh interpreter is started (as a desktop launcher starts ``scorer gui``) and
the time is taken from just before the process is created to:

- **window**: the workstation's first window (the log-in dialog) shown and painted;
- **reading window**: after the log-in is submitted, the reader's reading window shown (this
  includes checking the password, an argon2 hash on purpose slow, reported separately);
- **first image**: the first case's films all painted.

``--quick`` (the CI smoke run) reads a one-patient synthetic trial instead of the demo.

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
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from common import machine, quantile, write_json  # noqa: E402

CHILD = r"""
import json, os, sys, time
db, user, password = sys.argv[1:4]
# What `scorer gui --db DB --user USER` runs, with a watcher on the event loop; nothing of
# scorer is imported here before the command line's own path imports it.
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

marks = {}
login = {}
app = QApplication(sys.argv[:1])

def painted(window):
    case = window.case_view.case
    if case is None or case.code != window.current_code:
        return False
    panels = [p for p in window.case_view.panels.values() if p.isVisible()]
    return bool(panels) and all(
        p.model.image is not None and p.painted_image is p.model.image for p in panels
    )

def poll():
    for w in QApplication.topLevelWidgets():
        kind = type(w).__name__
        handle = w.windowHandle()
        if kind == "LoginDialog" and "window" not in marks and handle is not None \
                and handle.isExposed():
            marks["window"] = time.time()
            w.password.setText(password)
            login["start"] = time.time()
            w.submit()
            login["dialog"] = w
        if kind == "ReadingWindow" and w.isVisible():
            marks.setdefault("reading", time.time())
            if painted(w):
                marks["image"] = time.time()
                dialog = login.get("dialog")
                took = login.get("done", marks["reading"]) - login["start"]
                heavy = [m for m in ("statsmodels", "pandas") if m in sys.modules]
                print(json.dumps({**marks, "login_s": took, "heavy": heavy}), flush=True)
                os._exit(0)
    dialog = login.get("dialog")
    if dialog is not None and "done" not in login:
        try:
            if dialog.session is not None:
                login["done"] = time.time()
        except RuntimeError:
            pass
    QTimer.singleShot(1, poll)

QTimer.singleShot(0, poll)
from scorer.cli import main
sys.exit(main(["gui", "--db", db, "--user", user]))
"""


def one_run(db: str, user: str, password: str, env: dict[str, str]) -> dict[str, Any]:
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
        "heavy": marks.get("heavy", []),
    }


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(values),
        "p95": quantile(values, 0.95),
        "spread": [min(values), max(values)],
        "runs": len(values),
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
    built = time.perf_counter()
    if args.quick:  # a one-patient synthetic trial: the smoke run need not build the demo
        from scorer.gui.sample_case import (
            SAMPLE_READER,
            SAMPLE_READER_PASSWORD,
            build_sample_workspace,
        )

        sample = build_sample_workspace(tmp / "sample", patients=1, pixel_mm=1.0)
        sample.workspace.close()
        db, user, password = str(tmp / "sample" / "demo.db"), SAMPLE_READER, SAMPLE_READER_PASSWORD
    else:
        from scorer.demo import run_demo

        print("building the demo trial (once)…", flush=True)
        result = run_demo(str(tmp / "demo.sqlite"))
        db, user, password = str(result.db), "reader3", result.passwords["reader3"]
    print(f"  built in {time.perf_counter() - built:.0f} s")
    cache = tmp / "data" / "cache"
    results: list[dict[str, Any]] = []
    for i in range(runs):
        if not args.warm:
            shutil.rmtree(cache, ignore_errors=True)
        r = one_run(db, user, password, env)
        results.append(r)
        print(
            f"  run {i + 1}: window {r['window_s']:.2f} s, reading window {r['reading_s']:.2f} s"
            f" (log-in {r['login_s']:.2f} s), first image {r['image_s']:.2f} s"
        )
    out: dict[str, Any] = {
        "machine": machine(qpa=env["QT_QPA_PLATFORM"]),
        "cache": "warm" if args.warm else "cold",
    }
    for key in ("window_s", "reading_s", "login_s", "image_s", "image_after_login_s"):
        out[key] = summary([r[key] for r in results])
    # The endpoint report's statistics stack must not load on the way to the first film.
    out["statsmodels_loaded"] = sorted({m for r in results for m in r["heavy"]})
    print(
        f"window shown: median {out['window_s']['median']:.2f} s "
        f"(p95 {out['window_s']['p95']:.2f});"
        f" first image: median {out['image_s']['median']:.2f} s, of which log-in "
        f"{out['login_s']['median']:.2f} s; statsmodels/pandas loaded: "
        f"{', '.join(out['statsmodels_loaded']) or 'no'}"
    )
    write_json(args.json, out)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
