"""Reader-drift benchmark (issue 30): the drift CUSUM on simulated readers.

Each simulated 300-case trial has an unbiased reader and one who scores 2 units higher from
case 31 on. A case is a patient's 3 visits (as in the demo); each visit's difference from the
other reader is normal with the demo readers' difference SD (3.34 status-total units, measured
on ``scorer demo``) and correlated within the case (ρ = 0.625, the demo readers' intraclass
correlation; also 0.76, the demo's reader model's). The chart is scorer.stats.drift's on each
case's mean difference (k = 0.35, h = 10.5 SDs of a case mean), all trials at once. Printed and
written, in cases:

- the unbiased reader's false-alarm share (any signal in 300 cases; target ≤ 5 %);
- the drifting reader's detection delay after case 30 (median and quartiles; target ≤ 25);
- Siegmund's in-control and out-of-control ARLs (one- and two-sided);
- the false-alarm share if the same visits were charted one by one as independent (ρ ignored).

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
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from common import machine, write_json  # noqa: E402

from scorer.stats.drift import (  # noqa: E402
    DRIFT_H,
    DRIFT_K,
    case_mean_sd,
    first_signals,
    siegmund_arl,
    two_sided_arl,
)

DEMO_SD = 3.34
VISITS = 3
SHIFT = 2.0
CHANGE_AT = 30
CASES = 300


def visit_differences(
    rng: np.random.Generator, trials: int, rho: float, shift: float
) -> npt.NDArray[np.float64]:
    """trials × cases × visits differences, SD DEMO_SD, correlation rho within a case."""
    shared = rng.standard_normal((trials, CASES, 1))
    own = rng.standard_normal((trials, CASES, VISITS))
    d = DEMO_SD * (np.sqrt(rho) * shared + np.sqrt(1.0 - rho) * own)
    d[:, CHANGE_AT:, :] += shift
    return d


def simulate(rho: float, trials: int, seed: int) -> dict[str, Any]:
    """False alarms and detection delays (in cases) over ``trials`` simulated trials."""
    rng = np.random.default_rng(seed)
    unbiased = visit_differences(rng, trials, rho, 0.0)
    drifting = visit_differences(rng, trials, rho, SHIFT)
    sd_case = float(case_mean_sd(DEMO_SD, [VISITS], rho)[0])
    started = time.perf_counter()
    false_first = first_signals(unbiased.mean(axis=2) / sd_case)
    first = first_signals(drifting.mean(axis=2) / sd_case)
    seconds = time.perf_counter() - started
    naive = first_signals(unbiased.reshape(trials, -1) / DEMO_SD)
    detected = first >= CHANGE_AT
    delay = first[detected] - (CHANGE_AT - 1)
    q1, med, q3 = np.percentile(delay, [25, 50, 75]) if delay.size else (np.nan,) * 3
    shift = SHIFT / sd_case
    return {
        "difference_sd": DEMO_SD,
        "visits_per_case": VISITS,
        "rho": rho,
        "case_mean_sd": sd_case,
        "trials": trials,
        "false_alarm_share": float((false_first >= 0).mean()),
        "median_delay_cases": float(med),
        "delay_q1": float(q1),
        "delay_q3": float(q3),
        "undetected_share": float((first < 0).mean()),
        "alarm_before_shift_share": float(((first >= 0) & (first < CHANGE_AT)).mean()),
        "false_alarm_share_visits_as_independent": float((naive >= 0).mean()),
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
        "demo": simulate(0.625, trials, seed=30),
        "demo_model": simulate(0.76, trials, seed=31),
        "machine": machine(),
    }
    print(
        f"drift CUSUM over cases ({VISITS} visits, difference SD {DEMO_SD:g}), k = {DRIFT_K:g}, "
        f"h = {DRIFT_H:g} SDs of a case mean, shift +{SHIFT:g} after case 30"
    )
    for name in ("demo", "demo_model"):
        r = res[name]
        print(
            f"  rho {r['rho']:g} (case-mean SD {r['case_mean_sd']:.2f}): false alarms "
            f"{100 * r['false_alarm_share']:.1f} % of {r['trials']} trials; delay median "
            f"{r['median_delay_cases']:.0f} cases (quartiles {r['delay_q1']:.0f}–"
            f"{r['delay_q3']:.0f}); ARL0 two-sided {r['arl0_two_sided']:.0f} (one-sided "
            f"{r['arl0_one_sided']:.0f}), ARL1 {r['arl1_two_sided']:.1f} cases; visits charted "
            f"as independent: {100 * r['false_alarm_share_visits_as_independent']:.0f} % "
            f"false alarms; {1000 * r['seconds']:.0f} ms"
        )
    if args.json:
        write_json(args.json, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
