"""Analysis benchmark: `scorer analyze` and the agreement report at trial scale (issue #33).

A reads CSV of a trial — N patients x 3 visits x 3 readers, Sharp/van der Heijde, every read
signed — is made from a seed (baseline damage, progression between visits, each reader's own
noise). Then, each in a fresh process, with wall time and peak resident memory:

- ``scorer analyze READS.csv --format json``: totals, change, SDC, progression, the six ICC
  forms with confidence intervals, Bland–Altman, per-area kappa;
- the comparison: pandas + pingouin computing only the status ICC (pingouin's
  ``intraclass_corr`` on the per-read totals) from the same CSV, run as interleaved pairs with
  ``scorer analyze`` (analyze, pingouin, pingouin, analyze, ...): the ratio is the median of
  the pairs' ratios, so that a busy moment of the machine weighs on both sides of a pair.
  pingouin is GPL-licensed: a measuring tool here, never a dependency of scorer, so it lives
  in a Python of its own, named by ``--compare-python`` or ``SCORER_BENCH_COMPARE_PYTHON``:

      python3 -m venv /tmp/pingouin && /tmp/pingouin/bin/pip install pandas pingouin
      SCORER_BENCH_COMPARE_PYTHON=/tmp/pingouin/bin/python .venv/bin/python benchmarks/run.py

- the agreement report of the same reads, written as HTML (its tables and figures: what
  ``scorer report agreement`` builds, less reading the database: the reads come from the
  file by the column reading instead), in a fresh process and, timed inside, in one that
  has its modules loaded already, as the desk has;
- the file's parse alone (the column reading ``scorer analyze`` uses, and the row-by-row one
  of ``scorer.core.readscsv`` for comparison), timed inside the process;
- the floor: the fastest way this machine reads the file into columns — Python's csv module
  (every row split into its fields) and numpy (every field's boundaries: the offsets of all
  line ends and commas) — timed inside the process; the faster is the floor;
- growth: ``scorer analyze`` at 100, 1,000 and 10,000 patients (time and peak memory per
  size, the least-squares slope of each against patients, and how far the 10,000 point lies
  from the line through the others).

Every target of issue #33 is printed as met or NOT met.

Usage (from the repository root):

    .venv/bin/python benchmarks/analysis.py [--patients N] [--runs N] [--sizes N,N,N]
        [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from common import machine, quantile, write_json  # noqa: E402

VISITS = (("W0", 0), ("W52", 364), ("W104", 728))
READERS = ("R1", "R2", "R3")
SEED = 14001

#: Issue #33's targets at 1,000 patients (and 10,000 for the growth).
TARGET_ANALYZE_S = 0.8
TARGET_RATIO = 0.4  # scorer analyze's time / pandas + pingouin's, median of interleaved pairs
TARGET_PEAK_MB = 204.0  # the peak before issue #33
TARGET_REPORT_S = 1.5
TARGET_LARGE_S = 8.0
TARGET_LARGE_MB = 1024.0
LARGE = 10_000

REPORT_CHILD = r"""
import sys
from pathlib import Path
from scorer.core.methods import builtin_methods
from scorer.reports.agreement_report import agreement_document
from scorer.reports.analysis import AnalysisOptions
from scorer.reports.document import write
from scorer.reports.reads_columns import read_reads
from scorer.stats.icc import start_loading
start_loading()  # as scorer report agreement does, while it fetches the reads
reads = read_reads(Path(sys.argv[1]).read_bytes(), dict(builtin_methods()))
doc = agreement_document(reads, AnalysisOptions(method="svh"), trial="BENCH")
write(doc, Path(sys.argv[2]))
"""

#: The report as the desk builds it: modules loaded already, timed from the reads' bytes to
#: the written HTML (the desk fetches the reads from its database instead of a file).
REPORT_INNER_CHILD = r"""
import json, sys, time
from pathlib import Path
import scipy.special
from scorer.core.methods import builtin_methods
from scorer.reports.agreement_report import agreement_document
from scorer.reports.analysis import AnalysisOptions
from scorer.reports.document import write
from scorer.reports.reads_columns import read_reads
data = Path(sys.argv[1]).read_bytes()
started = time.perf_counter()
reads = read_reads(data, dict(builtin_methods()))
doc = agreement_document(reads, AnalysisOptions(method="svh"), trial="BENCH")
write(doc, Path(sys.argv[2]))
print(json.dumps({"s": time.perf_counter() - started}))
"""

#: The file's parse alone, inside the process (imports and reading the bytes not counted).
PARSE_CHILD = r"""
import json, sys, time
from pathlib import Path
from scorer.core.methods import builtin_methods
from scorer.core.readscsv import parse_reads_csv
from scorer.reports.reads_columns import read_reads
data, methods = Path(sys.argv[1]).read_bytes(), dict(builtin_methods())
started = time.perf_counter()
reads = read_reads(data, methods) if sys.argv[2] == "columns" else parse_reads_csv(data, methods)
print(json.dumps({"s": time.perf_counter() - started, "reads": len(reads)}))
"""

#: The floor: the file into columns by the csv module, and by numpy (every field's bounds).
FLOOR_CHILD = r"""
import csv, io, json, sys, time
from pathlib import Path
import numpy as np
data = Path(sys.argv[1]).read_bytes()
if sys.argv[2] == "csv":
    started = time.perf_counter()
    rows = 0
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline="")
    for row in csv.reader(text):
        rows += 1
else:
    started = time.perf_counter()
    arr = np.frombuffer(data, dtype=np.uint8)
    rows, block, at = 0, 1 << 21, 0
    while at < len(arr):
        part = arr[at : at + block]
        ends = np.flatnonzero(part == 10)
        stop = at + int(ends[-1]) + 1 if len(ends) else len(arr)
        commas = np.flatnonzero(arr[at:stop] == 44)
        rows += len(ends)
        at = stop
print(json.dumps({"s": time.perf_counter() - started, "rows": rows}))
"""

PINGOUIN_CHILD = r"""
import sys
import pandas as pd
import pingouin as pg
rows = pd.read_csv(sys.argv[1], dtype=str, keep_default_na=False)
rows["score"] = pd.to_numeric(rows["score"], errors="coerce")
totals = rows.groupby(["patient", "visit", "reader"], as_index=False)["score"].sum()
totals["target"] = totals["patient"] + "/" + totals["visit"]
icc = pg.intraclass_corr(data=totals, targets="target", raters="reader", ratings="score")
by_type = icc.set_index("Type")["ICC"]
print(by_type.get("ICC(A,1)", by_type.get("ICC2")))  # pingouin 0.7 renamed ICC2 to ICC(A,1)
"""


def make_reads(patients: int, seed: int, first: int = 0, width: int = 4) -> list[Any]:
    """The trial's reads of patients ``first`` .. ``first + patients - 1``, deterministic
    from ``seed`` (so one batch after another gives the file ``make_csv`` writes)."""
    from scorer.core.methods import get_method
    from scorer.core.reads import AreaScore, Read

    method = get_method("svh")
    areas = list(method.areas)
    rng = random.Random(seed)
    reads: list[Read] = []
    for i in range(first, first + patients):
        patient = f"P{i + 1:0{width}d}"
        start = date(2024, 1, 8) + timedelta(days=i % 300)
        truth = {d.area: 0 for d in areas}
        for _ in range(rng.randint(0, 60)):  # baseline damage
            d = rng.choice(areas)
            truth[d.area] = min(d.max, truth[d.area] + 1)
        for visit, day in VISITS:
            if day:
                for _ in range(int(rng.expovariate(1 / 3))):  # progression since last visit
                    d = rng.choice(areas)
                    truth[d.area] = min(d.max, truth[d.area] + 1)
            for reader in READERS:
                scores: dict[Any, AreaScore] = {}
                for d in areas:
                    v = truth[d.area] + (rng.random() < 0.08) * rng.choice((-1, 1))
                    scores[d.area] = AreaScore.scored(max(0, min(d.max, v)))
                reads.append(
                    Read(
                        trial="BENCH",
                        patient=patient,
                        visit=visit,
                        reader=reader,
                        method="svh",
                        read_type="primary",
                        read_id=f"{patient}-{visit}-{reader}",
                        status="signed",
                        visit_date=start + timedelta(days=day),
                        scores=scores,
                    )
                )
    return reads


def make_csv(path: Path, patients: int, seed: int) -> int:
    """Write the reads CSV of ``patients`` patients, 500 at a time (a 10,000-patient trial's
    reads would not all fit in memory as objects); returns the number of reads."""
    from scorer.core.readscsv import format_reads_csv

    width = max(4, len(str(patients)))
    count = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        for first in range(0, patients, 500):
            batch = make_reads(min(500, patients - first), seed + first, first, width)
            text = format_reads_csv(batch)
            out.write(text if first == 0 else text.split("\n", 1)[1])
            count += len(batch)
    return count


def _run(argv: list[str]) -> tuple[float, float, str]:
    """One fresh process: wall seconds, peak resident MB, its standard output."""
    wrapper = [
        sys.executable,
        "-c",
        "import resource, subprocess, sys;"
        "r = subprocess.run(sys.argv[1:]);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr);"
        "sys.exit(r.returncode)",
        *argv,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # As installed: scorer's modules compiled once and their bytecode kept (pip compiles a
    # package's, as it did pandas' and pingouin's); without this every run compiles them
    # from source again (a tenth of a second) where PYTHONDONTWRITEBYTECODE is set.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    started = time.perf_counter()
    proc = subprocess.run(wrapper, capture_output=True, env=env)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:4]} failed:\n{proc.stderr.decode()[-3000:]}")
    peak = int(proc.stderr.decode().strip().splitlines()[-1]) / 1024
    return wall, peak, proc.stdout.decode()


def _figures(walls: list[float], peaks: list[float]) -> dict[str, Any]:
    return {
        "median_s": statistics.median(walls),
        "p95_s": quantile(walls, 0.95),
        "spread_s": [min(walls), max(walls)],
        "peak_mb": max(peaks),
        "runs": len(walls),
    }


def measure(argv: list[str], runs: int) -> dict[str, Any]:
    walls, peaks = [], []
    for _ in range(runs):
        wall, peak, _ = _run(argv)
        walls.append(wall)
        peaks.append(peak)
    return _figures(walls, peaks)


def inner(argv: list[str], runs: int) -> dict[str, Any]:
    """A child that times itself (its JSON's ``s``): median and spread of those seconds."""
    times = [float(json.loads(_run(argv)[2])["s"]) for _ in range(runs)]
    return {"median_s": statistics.median(times), "spread_s": [min(times), max(times)]}


def interleaved(first: list[str], second: list[str], pairs: int) -> dict[str, Any]:
    """``first`` and ``second`` run in turn, the order swapped every pair: each one's figures
    and the median over pairs of first's time / second's time."""
    a_walls, a_peaks, b_walls, b_peaks, ratios = [], [], [], [], []
    for i in range(pairs):
        order = (first, second) if i % 2 == 0 else (second, first)
        got = {id(argv): _run(argv) for argv in order}
        (wa, pa, _), (wb, pb, _) = got[id(first)], got[id(second)]
        a_walls.append(wa)
        a_peaks.append(pa)
        b_walls.append(wb)
        b_peaks.append(pb)
        ratios.append(wa / wb)
    return {
        "first": _figures(a_walls, a_peaks),
        "second": _figures(b_walls, b_peaks),
        "ratio_median": statistics.median(ratios),
        "ratios": ratios,
    }


def slope(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares line y = a + b x through the points: (a, b)."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )
    return my - b * mx, b


def _analyze_argv(csv: Path) -> list[str]:
    return [sys.executable, "-m", "scorer", "analyze", str(csv), "--format", "json"]


def growth(
    tmp: Path, sizes: list[int], main_size: int, main: dict[str, Any], fit: bool = True
) -> dict[str, Any]:
    """``scorer analyze`` at each size (the main size's figures reused): time and peak memory
    per size, and (``fit``) the least-squares slope of each against patients."""
    points: dict[str, Any] = {}
    for n in sizes:
        if n == main_size:
            points[str(n)] = main
            continue
        csv = tmp / f"reads-{n}.csv"
        reads = make_csv(csv, n, SEED)
        points[str(n)] = measure(_analyze_argv(csv), 1 if n >= LARGE else 3)
        points[str(n)]["reads"] = reads
        csv.unlink()
    if not fit:
        return {"sizes": points, "fitted": False}
    xs = [float(n) for n in sizes]
    t0, t_per = slope(xs, [points[str(n)]["median_s"] for n in sizes])
    m0, m_per = slope(xs, [points[str(n)]["peak_mb"] for n in sizes])
    return {
        "sizes": points,
        "fitted": True,
        "time_intercept_s": t0,
        "time_per_1000_patients_s": 1000 * t_per,
        "memory_intercept_mb": m0,
        "memory_per_1000_patients_mb": 1000 * m_per,
    }


def targets(out: dict[str, Any]) -> list[tuple[str, bool | None]]:
    """Each of issue #33's targets and whether it was met (None: not measured)."""

    def at(*path: str) -> Any:
        d: Any = out
        for p in path:
            if not isinstance(d, dict) or p not in d:
                return None
            d = d[p]
        return d

    def check(value: Any, limit: float, text: str) -> tuple[str, bool | None]:
        if value is None:
            return f"{text}: not measured", None
        return f"{text}: {value:.3g}", bool(value <= limit) if limit > 0 else None

    large = at("growth", "sizes", str(LARGE))
    return [
        check(at("analyze", "median_s"), TARGET_ANALYZE_S, f"analyze <= {TARGET_ANALYZE_S} s"),
        check(at("analyze_over_pingouin"), TARGET_RATIO, f"analyze / pingouin <= {TARGET_RATIO}"),
        check(at("analyze", "peak_mb"), TARGET_PEAK_MB, f"analyze peak <= {TARGET_PEAK_MB:.0f} MB"),
        check(
            at("agreement_report", "median_s"),
            TARGET_REPORT_S,
            f"report <= {TARGET_REPORT_S} s, fresh process",
        ),
        check(
            at("agreement_report_loaded", "median_s"),
            TARGET_REPORT_S,
            f"report <= {TARGET_REPORT_S} s, modules loaded (the desk's wait)",
        ),
        check(large and large["median_s"], TARGET_LARGE_S, f"{LARGE:,} patients < 8 s"),
        check(large and large["peak_mb"], TARGET_LARGE_MB, f"{LARGE:,} patients < 1 GB (MB)"),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5, help="runs (and interleaved pairs) per figure")
    ap.add_argument("--sizes", default=f"100,1000,{LARGE}", help="patients per growth point")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 30 patients, one run")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "analysis.json")
    ap.add_argument(
        "--compare-python",
        default=os.environ.get("SCORER_BENCH_COMPARE_PYTHON"),
        help="a Python with pandas and pingouin, for the comparison (default: this one, if it "
        "has them)",
    )
    args = ap.parse_args()
    patients, runs = (30, 1) if args.quick else (args.patients, args.runs)
    sizes = [10, 30] if args.quick else [int(n) for n in args.sizes.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="scorer-bench-analysis-"))
    csv = tmp / "reads.csv"
    started = time.perf_counter()
    n_reads = make_csv(csv, patients, SEED)
    size_mb = csv.stat().st_size / 1e6
    print(
        f"{n_reads} reads ({patients} patients x {len(VISITS)} visits x {len(READERS)} "
        f"readers, svh), {size_mb:.0f} MB of CSV, made in {time.perf_counter() - started:.1f} s"
    )
    out: dict[str, Any] = {
        "machine": machine(),
        "reads": n_reads,
        "patients": patients,
        "csv_mb": size_mb,
    }
    _main_figures(out, csv, tmp, runs, args.compare_python)
    # A quick run's sizes take a few hundredths of a second, start-up most of it: a line
    # through them is noise (its slope came out negative), so none is fitted.
    out["growth"] = growth(
        tmp, sorted(set(sizes) | {patients}), patients, out["analyze"], fit=not args.quick
    )
    _print_growth(out["growth"])
    out["targets"] = []
    for text, met in targets(out):
        verdict = "met" if met else "not measured" if met is None else "NOT met"
        out["targets"].append({"target": text, "met": met})
        print(f"target {text} -> {verdict}")
    write_json(args.json, out)
    shutil.rmtree(tmp, ignore_errors=True)  # its files are a trial's size
    return 0


def _main_figures(
    out: dict[str, Any], csv: Path, tmp: Path, runs: int, compare_python: str | None
) -> None:
    """At the main size: analyze (paired with pingouin when there is one), the report, the
    parse alone and the floor, into ``out`` and printed."""
    compare = compare_python
    if compare is None and importlib.util.find_spec("pingouin") is not None:
        compare = sys.executable
    _run(_analyze_argv(csv))  # untimed: bytecode written, the file in the page cache
    if compare is None:
        out["analyze"] = measure(_analyze_argv(csv), runs)
        print("pandas + pingouin: no Python with them named (--compare-python); no ratio")
    else:
        pingouin = [compare, "-c", PINGOUIN_CHILD, str(csv)]
        _run(pingouin)  # untimed, likewise
        pairs = interleaved(_analyze_argv(csv), pingouin, runs)
        out["analyze"], out["pingouin_status_icc"] = pairs["first"], pairs["second"]
        out["analyze_over_pingouin"] = pairs["ratio_median"]
        out["analyze_over_pingouin_pairs"] = pairs["ratios"]
        out["analyze_vs_pingouin"] = 1 / pairs["ratio_median"]
        print(
            f"pandas + pingouin, status ICC only: {out['pingouin_status_icc']['median_s']:.2f} s,"
            f" peak {out['pingouin_status_icc']['peak_mb']:.0f} MB; scorer analyze takes "
            f"{pairs['ratio_median']:.2f}x its time doing all of it (median of {runs} "
            "interleaved pairs)"
        )
    print(
        f"scorer analyze:        {out['analyze']['median_s']:.2f} s, "
        f"peak {out['analyze']['peak_mb']:.0f} MB"
    )
    out["agreement_report"] = measure(
        [sys.executable, "-c", REPORT_CHILD, str(csv), str(tmp / "report.html")], runs
    )
    out["agreement_report_loaded"] = inner(
        [sys.executable, "-c", REPORT_INNER_CHILD, str(csv), str(tmp / "report2.html")], runs
    )
    print(
        f"agreement report:      {out['agreement_report']['median_s']:.2f} s in a fresh process, "
        f"peak {out['agreement_report']['peak_mb']:.0f} MB; "
        f"{out['agreement_report_loaded']['median_s']:.2f} s with its modules loaded (the desk)"
    )
    py = sys.executable
    out["parse"] = {
        "columns": inner([py, "-c", PARSE_CHILD, str(csv), "columns"], runs),
        "rows": inner([py, "-c", PARSE_CHILD, str(csv), "rows"], max(1, runs // 2)),
    }
    out["floor"] = {
        "csv_module": inner([py, "-c", FLOOR_CHILD, str(csv), "csv"], max(1, runs // 2)),
        "numpy_bounds": inner([py, "-c", FLOOR_CHILD, str(csv), "numpy"], runs),
    }
    floor = min(v["median_s"] for v in out["floor"].values())
    out["floor_s"] = floor
    parse = out["parse"]["columns"]["median_s"]
    out["parse_over_floor"] = parse / floor
    out["analyze_over_floor"] = out["analyze"]["median_s"] / floor
    print(
        f"parse alone: {parse:.3f} s by columns, {out['parse']['rows']['median_s']:.3f} s row "
        f"by row; floor {floor:.3f} s (csv module "
        f"{out['floor']['csv_module']['median_s']:.3f} s, numpy field bounds "
        f"{out['floor']['numpy_bounds']['median_s']:.3f} s): parse {parse / floor:.1f}x, "
        f"analyze {out['analyze_over_floor']:.1f}x the floor"
    )


def _print_growth(g: dict[str, Any]) -> None:
    for n, f in g["sizes"].items():
        print(f"  {int(n):>6,} patients: {f['median_s']:.2f} s, peak {f['peak_mb']:.0f} MB")
    if not g["fitted"]:
        print("growth: not fitted (sizes too small)")
        return
    print(
        f"growth: {g['time_per_1000_patients_s']:.3f} s and "
        f"{g['memory_per_1000_patients_mb']:.0f} MB per 1,000 patients (least squares; "
        f"{g['time_intercept_s']:.2f} s, {g['memory_intercept_mb']:.0f} MB at none)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
