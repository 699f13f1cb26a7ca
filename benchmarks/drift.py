"""Reader-drift benchmark (issue 30): the drift CUSUM on simulated readers.

Each simulated 300-case trial has an unbiased reader and one who scores 2 units higher from
case 31 on, each case's difference from the other readers normal with the demo readers'
difference SD (3.34 status-total units, measured on ``scorer demo``); the chart is
scorer.stats.drift's (k = 0.3, h = 12 SDs), all trials at once. Printed and written:

- the unbiased reader's false-alarm share (any signal in 300 cases; target ≤ 5 %);
- the drifting reader's detection delay after case 30 (median and quartiles; target ≤ 25);
- Siegmund's in-control and out-of-control ARLs (one- and two-sided);
- the same at a difference SD of 2.8 (three readers: the mean of two others), where the
  delay target holds.

Usage (from the repository root):

    .venv/bin/python benchmarks/drift.py [--quick] [--trials N] [--json PATH]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from common import machine, write_json  # noqa: E402

from scorer.stats.drift import DRIFT_H, DRIFT_K, first_signals, siegmund_arl, two_sided_arl  # noqa: E402

DEMO_SD = 3.34
SHIFT = 2.0
CHANGE_AT = 30
CASES = 300


def simulate(sd: float, trials: int, seed: int) -> dict[str, Any]:
    """False alarms and detection delays over ``trials`` simulated trials at difference SD."""
    rng = np.random.default_rng(seed)
    unbiased = rng.normal(0.0, sd, (trials, CASES))
    drifting = rng.normal(0.0, sd, (trials, CASES))
    drifting[:, CHANGE_AT:] += SHIFT
    started = time.perf_counter()
    false_first = first_signals(unbiased / sd)
    first = first_signals(drifting / sd)
    seconds = time.perf_counter() - started
    detected = first >= CHANGE_AT
    delay = first[detected] - (CHANGE_AT - 1)
    q1, med, q3 = np.percentile(delay, [25, 50, 75]) if delay.size else (np.nan,) * 3
    shift = SHIFT / sd
    return {
        "difference_sd": sd,
        "trials": trials,
        "false_alarm_share": float((false_first >= 0).mean()),
        "median_delay": float(med),
        "delay_q1": float(q1),
        "delay_q3": float(q3),
        "undetected_share": float((first < 0).mean()),
        "alarm_before_shift_share": float(((first >= 0) & (first < CHANGE_AT)).mean()),
        "arl0_one_sided": siegmund_arl(0.0),
        "arl0_two_sided": two_sided_arl(0.0),
        "arl1_two_sided": two_sided_arl(shift),
        "seconds": seconds,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the untimed smoke run (100 trials)")
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    trials = 100 if args.quick else args.trials
    res: dict[str, Any] = {
        "k": DRIFT_K,
        "h": DRIFT_H,
        "demo": simulate(DEMO_SD, trials, seed=30),
        "three_readers": simulate(2.8, trials, seed=31),
        "machine": machine(),
    }
    print(f"drift CUSUM k = {DRIFT_K:g}, h = {DRIFT_H:g} SDs, shift +{SHIFT:g} after case 30")
    for name in ("demo", "three_readers"):
        r = res[name]
        print(
            f"  SD {r['difference_sd']:.2f}: false alarms {100 * r['false_alarm_share']:.1f} % "
            f"of {r['trials']} trials; delay median {r['median_delay']:.0f} "
            f"(quartiles {r['delay_q1']:.0f}–{r['delay_q3']:.0f}); ARL0 two-sided "
            f"{r['arl0_two_sided']:.0f} (one-sided {r['arl0_one_sided']:.0f}), "
            f"ARL1 {r['arl1_two_sided']:.1f}; {1000 * r['seconds']:.0f} ms"
        )
    if args.json:
        write_json(args.json, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
