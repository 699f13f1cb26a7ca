"""Run every benchmark, print the figures beside their targets, and write one JSON summary.

Each benchmark is its own script (and process): startup, viewer, joint_view, reading, commit,
analysis, imports, verify, server, drift, locator.
This runs them in turn, reads the JSON each writes, and prints one table: the figure, its
median, p95 and spread where the benchmark repeats it, the target, and whether it is met.

Usage (from the repository root):

    .venv/bin/python benchmarks/run.py [--quick] [--only NAME ...] [--out FOLDER]

``--quick`` is the smoke run CI makes (small inputs, one repeat, untimed: the figures mean
nothing, the point is that every benchmark still runs end to end). Results go to
``benchmarks/results/`` (``--out`` elsewhere); the summary is ``summary.json`` there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SCRIPTS = (
    "startup",
    "viewer",
    "joint_view",
    "reading",
    "commit",
    "analysis",
    "imports",
    "verify",
    "server",
    "drift",
    "locator",
)


@dataclass
class Figure:
    """One figure: where it is in a benchmark's JSON, its unit, and its target."""

    name: str
    script: str
    get: Callable[[dict[str, Any]], Any]  # the median (or the only value)
    unit: str
    target: float | None = None
    at_most: bool = True  # target is a ceiling (else a floor)
    p95: Callable[[dict[str, Any]], Any] | None = None
    spread: Callable[[dict[str, Any]], Any] | None = None


def _g(*path: str) -> Callable[[dict[str, Any]], Any]:
    def get(d: dict[str, Any]) -> Any:
        for p in path:
            d = d[p]
        return d

    return get


FIGURES = [
    Figure(
        "drift: false alarms, unbiased reader, 300 cases",
        "drift",
        _g("demo", "false_alarm_share"),
        "share",
        0.05,
    ),
    Figure(
        "drift: detection delay of +2 (median, cases), demo SD",
        "drift",
        _g("demo", "median_delay_cases"),
        "cases",
        25.0,
    ),
    Figure(
        "cold start: window shown",
        "startup",
        _g("window_s", "median"),
        "s",
        1.0,
        p95=_g("window_s", "p95"),
        spread=_g("window_s", "spread"),
    ),
    Figure(
        "cold start: first demo image drawn",
        "startup",
        _g("image_s", "median"),
        "s",
        2.0,
        p95=_g("image_s", "p95"),
        spread=_g("image_s", "spread"),
    ),
    Figure(
        "  of which the log-in (loading + argon2)",
        "startup",
        _g("login_s", "median"),
        "s",
        p95=_g("login_s", "p95"),
    ),
    Figure(
        "next case, with prefetch",
        "viewer",
        _g("next_case", "prefetch", "median_ms"),
        "ms",
        100.0,
        p95=_g("next_case", "prefetch", "max_ms"),
    ),
    Figure(
        "next case, no prefetch, cached",
        "viewer",
        _g("next_case", "cached", "median_ms"),
        "ms",
        p95=_g("next_case", "cached", "max_ms"),
    ),
    Figure(
        "next case, no prefetch, cold",
        "viewer",
        _g("next_case", "cold", "median_ms"),
        "ms",
        p95=_g("next_case", "cold", "max_ms"),
    ),
    Figure(
        "window/level frame, fit",
        "viewer",
        _g("frames", "window_level_fit_ms"),
        "ms",
        16.0,
        p95=_g("frames", "window_level_fit_p95_ms"),
    ),
    Figure(
        "window/level frame, 1:1",
        "viewer",
        _g("frames", "window_level_1:1_ms"),
        "ms",
        16.0,
        p95=_g("frames", "window_level_1:1_p95_ms"),
    ),
    Figure(
        "pan frame, fit",
        "viewer",
        _g("frames", "pan_fit_ms"),
        "ms",
        16.0,
        p95=_g("frames", "pan_fit_p95_ms"),
    ),
    Figure(
        "pan frame, 1:1",
        "viewer",
        _g("frames", "pan_1:1_ms"),
        "ms",
        16.0,
        p95=_g("frames", "pan_1:1_p95_ms"),
    ),
    Figure(
        "  floor: numpy copy of the shown pixels",
        "viewer",
        _g("frames", "numpy_copy_floor_ms"),
        "ms",
    ),
    Figure(
        "peak memory reading with prefetch",
        "viewer",
        _g("memory", "reading_with_prefetch_peak_mb"),
        "MB",
        600.0,
    ),
    Figure(
        "next area in joint view, 3 panes",
        "joint_view",
        _g("next_area", "median_ms"),
        "ms",
        50.0,
        p95=_g("next_area", "p95_ms"),
    ),
    Figure("  next area p95", "joint_view", _g("next_area", "p95_ms"), "ms", 50.0),
    Figure(
        "reader time per area, film view (window's own)",
        "reading",
        _g("views", "film", "per_area_median_ms"),
        "ms",
        p95=_g("views", "film", "per_area_p95_ms"),
    ),
    Figure("  keys per paired case, film view", "reading", _g("views", "film", "keystrokes"), ""),
    Figure(
        "reader time per area, joint view (window's own)",
        "reading",
        _g("views", "joint", "per_area_median_ms"),
        "ms",
        p95=_g("views", "joint", "per_area_p95_ms"),
    ),
    Figure("  keys per paired case, joint view", "reading", _g("views", "joint", "keystrokes"), ""),
    Figure(
        "score commit, SQLite",
        "commit",
        _g("sqlite", "median_ms"),
        "ms",
        None,
        p95=_g("sqlite", "p95_ms"),
        spread=_g("sqlite", "spread_median_ms"),
    ),
    Figure("score commit p95, SQLite", "commit", _g("sqlite", "p95_ms"), "ms", 10.0),
    Figure(
        "score commit, PostgreSQL",
        "commit",
        _g("postgresql", "median_ms"),
        "ms",
        p95=_g("postgresql", "p95_ms"),
        spread=_g("postgresql", "spread_median_ms"),
    ),
    Figure(
        "save while a reads import runs, SQLite",
        "commit",
        _g("during_import", "sqlite", "median_ms"),
        "ms",
        p95=_g("during_import", "sqlite", "max_ms"),
    ),
    Figure(
        "  longest save wait, SQLite",
        "commit",
        _g("during_import", "sqlite", "max_ms"),
        "ms",
        1000.0,
    ),
    Figure(
        "save while a reads import runs, PostgreSQL",
        "commit",
        _g("during_import", "postgresql", "median_ms"),
        "ms",
        p95=_g("during_import", "postgresql", "max_ms"),
    ),
    Figure(
        "  longest save wait, PostgreSQL",
        "commit",
        _g("during_import", "postgresql", "max_ms"),
        "ms",
        1000.0,
    ),
    Figure(
        "scorer analyze, trial scale",
        "analysis",
        _g("analyze", "median_s"),
        "s",
        0.8,
        p95=_g("analyze", "p95_s"),
        spread=_g("analyze", "spread_s"),
    ),
    Figure("  peak memory", "analysis", _g("analyze", "peak_mb"), "MB", 204.0),
    Figure(
        "agreement report, trial scale",
        "analysis",
        _g("agreement_report", "median_s"),
        "s",
        1.5,
        p95=_g("agreement_report", "p95_s"),
        spread=_g("agreement_report", "spread_s"),
    ),
    Figure("  peak memory", "analysis", _g("agreement_report", "peak_mb"), "MB"),
    Figure(
        "pandas + pingouin, status ICC only", "analysis", _g("pingouin_status_icc", "median_s"), "s"
    ),
    Figure(
        "  scorer analyze time / pingouin time (paired)",
        "analysis",
        _g("analyze_over_pingouin"),
        "x",
        0.4,
    ),
    Figure(
        "  reads CSV parse alone, by columns", "analysis", _g("parse", "columns", "median_s"), "s"
    ),
    Figure("  floor: the file into columns", "analysis", _g("floor_s"), "s"),
    Figure(
        "  10,000 patients: scorer analyze",
        "analysis",
        _g("growth", "sizes", "10000", "median_s"),
        "s",
        8.0,
    ),
    Figure(
        "  10,000 patients: peak memory",
        "analysis",
        _g("growth", "sizes", "10000", "peak_mb"),
        "MB",
        1024.0,
    ),
    Figure(
        "import, uncompressed",
        "imports",
        _g("uncompressed", "import_mb_s"),
        "MB/s",
        spread=_g("uncompressed", "import_spread_s"),
    ),
    Figure(
        "  share of cp's throughput",
        "imports",
        _g("uncompressed", "share_of_cp"),
        "x",
        0.25,
        at_most=False,
    ),
    Figure(
        "import, JPEG 2000 lossless",
        "imports",
        _g("jpeg2000_lossless", "import_mb_s"),
        "MB/s",
        spread=_g("jpeg2000_lossless", "import_spread_s"),
    ),
    Figure("  share of cp's throughput", "imports", _g("jpeg2000_lossless", "share_of_cp"), "x"),
    Figure(
        "audit verify: audit rows per second",
        "verify",
        _g("audit_rows_per_s"),
        "rows/s",
        50_000.0,
        at_most=False,
        spread=_g("spread_rows_per_s"),
    ),
    Figure("  row changes replayed per second", "verify", _g("row_changes_per_s"), "rows/s"),
    Figure("  peak memory, whole trail", "verify", _g("peak_mb"), "MB"),
    Figure("  peak memory, half the trail", "verify", _g("peak_mb_half_trail"), "MB"),
    Figure(
        "server: save, 20 workstations, PostgreSQL",
        "server",
        _g("load", "save", "median_ms"),
        "ms",
        20.0,
        p95=_g("load", "save", "p95_ms"),
    ),
    Figure("  save round trip p95", "server", _g("load", "save", "p95_ms"), "ms", 50.0),
    Figure(
        "server: next case, films prefetched",
        "server",
        _g("load", "prefetched_case", "median_ms"),
        "ms",
        150.0,
        p95=_g("load", "prefetched_case", "p95_ms"),
    ),
    Figure(
        "  next case without prefetch, open + films",
        "server",
        _g("load", "next_case", "median_ms"),
        "ms",
        p95=_g("load", "next_case", "p95_ms"),
    ),
    Figure(
        "  saves/s at which save p95 passes 100 ms",
        "server",
        _g("saturation", "p95_passed_100ms_at_saves_per_s"),
        "/s",
    ),
]


_LOCATOR_KINDS = ("hand MCP", "hand PIP", "thumb IP", "wrist", "foot MTP", "foot IP")


def _largest_p95(method: str) -> Callable[[dict[str, Any]], Any]:
    def get(d: dict[str, Any]) -> Any:
        found = [r["p95_mm"] for r in d[method]["kinds"].values() if "p95_mm" in r]
        return max(found) if found else None

    return get


def _kinds_without_sure_joints(method: str) -> Callable[[dict[str, Any]], Any]:
    def get(d: dict[str, Any]) -> Any:
        return sum(1 for r in d[method]["kinds"].values() if "median_mm" not in r)

    return get


def _locator_figures() -> list[Figure]:
    """The locator's and the registration's error per area kind (synthetic hard films only):
    the median against 1.5 mm with the p95 beside it, the largest p95 against 4 mm, and the
    area kinds left wholly unsure (which have no error to show)."""
    out: list[Figure] = []
    for method in ("locator", "registration"):
        for kind in _LOCATOR_KINDS:
            out.append(
                Figure(
                    f"{method}, {kind} (synthetic)",
                    "locator",
                    _g(method, "kinds", kind, "median_mm"),
                    "mm",
                    1.5,
                    p95=_g(method, "kinds", kind, "p95_mm"),
                )
            )
        out.append(Figure(f"  {method}: largest p95", "locator", _largest_p95(method), "mm", 4.0))
        out.append(
            Figure(
                f"  {method}: kinds with no sure joint",
                "locator",
                _kinds_without_sure_joints(method),
                "",
                0.0,
            )
        )
    out.append(Figure("  locator time per film", "locator", _g("locator", "median_s"), "s"))
    out.append(
        Figure("  registration time per proposal", "locator", _g("registration", "median_s"), "s")
    )
    return out


FIGURES += _locator_figures()


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return "..".join(_fmt(v) for v in value)
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the untimed smoke run")
    ap.add_argument("--only", nargs="*", choices=SCRIPTS, default=list(SCRIPTS))
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    results: dict[str, Any] = {}
    took: dict[str, float] = {}
    failed: list[str] = []
    for name in args.only:
        target = args.out / f"{name}.json"
        argv = [sys.executable, str(HERE / f"{name}.py"), "--json", str(target)]
        if args.quick:
            argv.append("--quick")
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        proc = subprocess.run(argv, env=env, cwd=REPO)
        took[name] = time.perf_counter() - started
        if proc.returncode != 0:
            failed.append(name)
            continue
        results[name] = json.loads(target.read_text(encoding="utf-8"))
    rows = []
    for f in FIGURES:
        if f.script not in results:
            continue
        data = results[f.script]
        try:
            value = f.get(data)
        except (KeyError, TypeError):
            continue  # e.g. no PostgreSQL or pingouin here: the benchmark said so
        p95 = f.p95(data) if f.p95 else None
        spread = f.spread(data) if f.spread else None
        met = None
        if f.target is not None and value is not None:
            met = value <= f.target if f.at_most else value >= f.target
        target = "" if f.target is None else ("<= " if f.at_most else ">= ") + _fmt(f.target)
        rows.append(
            {
                "figure": f.name,
                "unit": f.unit,
                "median": value,
                "p95": p95,
                "spread": spread,
                "target": target,
                "met": met,
            }
        )
    print()
    head = f"{'figure':<42} {'median':>9} {'p95/max':>9} {'spread':>15} {'target':>11}  met"
    print(head)
    print("-" * len(head))
    for r in rows:
        met = "" if r["met"] is None else ("yes" if r["met"] else "NO")
        print(
            f"{r['figure']:<42} {_fmt(r['median']) + ' ' + r['unit']:>9} {_fmt(r['p95']):>9} "
            f"{_fmt(r['spread']):>15} {r['target']:>11}  {met}"
        )
    print()
    print("time per benchmark: " + ", ".join(f"{k} {v:.0f} s" for k, v in took.items()))
    summary = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "quick": args.quick,
        "figures": rows,
        "seconds": took,
        "failed": failed,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"written: {args.out / 'summary.json'}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
