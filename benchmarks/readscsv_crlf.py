"""Reads CSV benchmark: an Excel-saved file (BOM, CRLF) reads as fast as the LF file scorer writes.

The analysis benchmark's trial (made from its seed) is written once by ``format_reads_csv``
(UTF-8, LF, no BOM) and once converted as Excel's "CSV UTF-8" saves it (a BOM and CRLF line
endings). Each is parsed ``--runs`` times, alternating, with :func:`parse_reads_csv` (the
one-pass reading of a clean file); the median times and their ratio are printed. Target: the
CRLF + BOM file within 10 % of the LF one.

Usage (from the repository root):

    .venv/bin/python benchmarks/readscsv_crlf.py [--patients N] [--runs N] [--json PATH]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from analysis import SEED, make_reads  # noqa: E402
from common import machine, write_json  # noqa: E402

TARGET_RATIO = 1.10


def run(patients: int, runs: int) -> dict[str, Any]:
    from scorer.core.methods import builtin_methods
    from scorer.core.readscsv import _parse_clean, format_reads_csv, parse_reads_csv

    methods = dict(builtin_methods())
    lf = format_reads_csv(make_reads(patients, SEED), methods).encode("utf-8")
    excel = b"\xef\xbb\xbf" + lf.replace(b"\n", b"\r\n")
    expected = parse_reads_csv(lf, methods)
    if _parse_clean(excel, methods) != expected:
        raise RuntimeError("the CRLF + BOM file did not read in one pass to the same reads")
    times: dict[str, list[float]] = {"lf": [], "crlf_bom": []}
    for _ in range(runs):
        for name, data in (("lf", lf), ("crlf_bom", excel)):
            started = time.perf_counter()
            parse_reads_csv(data, methods)
            times[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(t) for name, t in times.items()}
    ratio = medians["crlf_bom"] / medians["lf"]
    return {
        "patients": patients,
        "rows": lf.count(b"\n") - 1,
        "bytes": {"lf": len(lf), "crlf_bom": len(excel)},
        "runs": runs,
        "median_s": medians,
        "ratio": ratio,
        "target_ratio": TARGET_RATIO,
        "met": ratio <= TARGET_RATIO,
        "machine": machine(),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=300)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    res = run(args.patients, args.runs)
    print(f"reads CSV of {res['rows']:,} rows, parsed {res['runs']} times each (median):")
    print(f"  LF, no BOM (as scorer writes it): {res['median_s']['lf']:.3f} s")
    print(f"  CRLF + BOM (as Excel saves it):   {res['median_s']['crlf_bom']:.3f} s")
    verdict = "met" if res["met"] else "NOT met"
    print(f"  ratio {res['ratio']:.3f} (target at most {TARGET_RATIO:.2f}: {verdict})")
    if args.json:
        write_json(args.json, res)
    return 0 if res["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
