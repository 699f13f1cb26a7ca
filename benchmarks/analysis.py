"""Analysis benchmark: `scorer analyze` and the agreement report at trial scale.

A reads CSV of a trial — 1,000 patients x 3 visits x 3 readers, Sharp/van der Heijde, every
read signed — is made from a seed (baseline damage, progression between visits, each reader's
own noise). Then, each in a fresh process, with wall time and peak resident memory:

- ``scorer analyze READS.csv --format json``: totals, change, SDC, progression, the six ICC
  forms with confidence intervals, Bland–Altman, per-area kappa;
- the agreement report of the same reads, written as HTML (its tables and figures: what
  ``scorer report agreement`` builds, less reading the database);
- the comparison: pandas + pingouin computing only the status ICC (pingouin's
  ``intraclass_corr`` on the per-read totals) from the same CSV. pingouin is GPL-licensed: a
  measuring tool here, never a dependency of scorer, so it lives in a Python of its own,
  named by ``--compare-python`` or ``SCORER_BENCH_COMPARE_PYTHON``:

      python3 -m venv /tmp/pingouin && /tmp/pingouin/bin/pip install pandas pingouin
      SCORER_BENCH_COMPARE_PYTHON=/tmp/pingouin/bin/python .venv/bin/python benchmarks/run.py

Usage (from the repository root):

    .venv/bin/python benchmarks/analysis.py [--patients N] [--runs N] [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
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

REPORT_CHILD = r"""
import sys
from pathlib import Path
from scorer.core.methods import builtin_methods
from scorer.core.readscsv import parse_reads_csv
from scorer.reports.agreement_report import agreement_document
from scorer.reports.analysis import AnalysisOptions
from scorer.reports.document import write
reads = parse_reads_csv(Path(sys.argv[1]).read_bytes(), dict(builtin_methods()))
doc = agreement_document(reads, AnalysisOptions(method="svh"), trial="BENCH")
write(doc, Path(sys.argv[2]))
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


def make_reads(patients: int, seed: int) -> list[Any]:
    """The trial's reads, deterministic from ``seed``."""
    from scorer.core.methods import get_method
    from scorer.core.reads import AreaScore, Read

    method = get_method("svh")
    areas = list(method.areas)
    rng = random.Random(seed)
    reads: list[Read] = []
    for i in range(patients):
        patient = f"P{i + 1:04d}"
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


def measure(argv: list[str], runs: int) -> dict[str, Any]:
    walls, peaks = [], []
    for _ in range(runs):
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
        started = time.perf_counter()
        proc = subprocess.run(wrapper, capture_output=True, env=env)
        walls.append(time.perf_counter() - started)
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[:4]} failed:\n{proc.stderr.decode()[-3000:]}")
        peaks.append(int(proc.stderr.decode().strip().splitlines()[-1]) / 1024)
    return {
        "median_s": statistics.median(walls),
        "p95_s": quantile(walls, 0.95),
        "spread_s": [min(walls), max(walls)],
        "peak_mb": max(peaks),
        "runs": runs,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
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
    from scorer.core.readscsv import format_reads_csv

    tmp = Path(tempfile.mkdtemp(prefix="scorer-bench-analysis-"))
    csv = tmp / "reads.csv"
    started = time.perf_counter()
    reads = make_reads(patients, SEED)
    csv.write_text(format_reads_csv(reads), encoding="utf-8")
    size_mb = csv.stat().st_size / 1e6
    print(
        f"{len(reads)} reads ({patients} patients x {len(VISITS)} visits x {len(READERS)} "
        f"readers, svh), {size_mb:.0f} MB of CSV, made in {time.perf_counter() - started:.1f} s"
    )
    out: dict[str, Any] = {
        "machine": machine(),
        "reads": len(reads),
        "patients": patients,
        "csv_mb": size_mb,
    }
    out["analyze"] = measure(
        [sys.executable, "-m", "scorer", "analyze", str(csv), "--format", "json"], runs
    )
    print(
        f"scorer analyze:        {out['analyze']['median_s']:.2f} s, "
        f"peak {out['analyze']['peak_mb']:.0f} MB"
    )
    out["agreement_report"] = measure(
        [sys.executable, "-c", REPORT_CHILD, str(csv), str(tmp / "report.html")], runs
    )
    print(
        f"agreement report:      {out['agreement_report']['median_s']:.2f} s, "
        f"peak {out['agreement_report']['peak_mb']:.0f} MB"
    )
    compare = args.compare_python
    if compare is None and importlib.util.find_spec("pingouin") is not None:
        compare = sys.executable
    if compare is None:
        print("pandas + pingouin: no Python with them named (--compare-python); no ratio")
    else:
        out["pingouin_status_icc"] = measure([compare, "-c", PINGOUIN_CHILD, str(csv)], runs)
        ratio = out["pingouin_status_icc"]["median_s"] / out["analyze"]["median_s"]
        out["analyze_vs_pingouin"] = ratio
        print(
            f"pandas + pingouin, status ICC only: {out['pingouin_status_icc']['median_s']:.2f} s,"
            f" peak {out['pingouin_status_icc']['peak_mb']:.0f} MB; scorer analyze is "
            f"{ratio:.2f}x as fast doing all of it"
        )
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
