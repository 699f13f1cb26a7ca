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

And with three readers (σ known, as with a frozen SDC; each reader charted against the mean of
the others): two unbiased readers and a third who is grossly wrong (+400 from the start) or
drifts (+2 after case 30), with and without setting aside the readers far off the others
(scorer.stats.drift.far_off_readers, applied to the trial's 900 patient-visits): the good
readers' alarm share and the third reader's detection delay.

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
    FAR_OFF_SDS,
    case_mean_sd,
    first_signals,
    siegmund_arl,
    standardise_cases,
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


def reader_errors(
    rng: np.random.Generator, trials: int, rho: float, readers: int
) -> npt.NDArray[np.float64]:
    """trials × cases × visits × readers read errors of SD σ = DEMO_SD/√2 (so two readers'
    difference has SD DEMO_SD), correlated rho within a reader's case."""
    shared = rng.standard_normal((trials, CASES, 1, readers))
    own = rng.standard_normal((trials, CASES, VISITS, readers))
    return DEMO_SD / np.sqrt(2.0) * (np.sqrt(rho) * shared + np.sqrt(1.0 - rho) * own)


def far_off_third(reads: npt.NDArray[np.float64], sigma: float) -> npt.NDArray[np.bool_]:
    """Per trial, whether far_off_readers sets the third reader aside (σ known): the median
    over the trial's patient-visits of its distance from the three readers' median exceeds
    FAR_OFF_SDS·σ (the same rule, vectorised over trials)."""
    trials = reads.shape[0]
    flat = reads.reshape(trials, -1, 3)
    distance = np.abs(flat[:, :, 2] - np.median(flat, axis=2))
    far: npt.NDArray[np.bool_] = np.median(distance, axis=1) > FAR_OFF_SDS * sigma
    return far


def three_readers(rho: float, trials: int, seed: int, offset: float, start: int) -> dict[str, Any]:
    """Two unbiased readers and a third ``offset`` off from case ``start`` + 1: the first good
    reader's alarm share and the third's median delay, with and without the set-aside rule."""
    rng = np.random.default_rng(seed)
    sigma = DEMO_SD / np.sqrt(2.0)
    reads = reader_errors(rng, trials, rho, 3)
    reads[:, start:, :, 2] += offset
    far = far_off_third(reads, sigma)
    visits = np.full(CASES, VISITS)

    def chart(d: npt.NDArray[np.float64], others: int) -> npt.NDArray[np.int64]:
        means = d.mean(axis=2)
        z = np.vstack(
            [standardise_cases(row, np.full(CASES, others), visits, sigma, rho) for row in means]
        )
        return first_signals(z)

    good_all = chart(reads[..., 0] - reads[..., 1:].mean(axis=3), 2)
    good_pair = chart(reads[..., 0] - reads[..., 1], 1)
    good_kept = np.where(far, good_pair, good_all)
    third = chart(reads[..., 2] - reads[..., :2].mean(axis=3), 2)
    delay = third[third >= start] - (start - 1)
    return {
        "offset": offset,
        "from_case": start + 1,
        "trials": trials,
        "third_set_aside_share": float(far.mean()),
        "good_alarm_share_others_mean": float((good_all >= 0).mean()),
        "good_alarm_share_with_set_aside": float((good_kept >= 0).mean()),
        "third_median_delay_cases": float(np.median(delay)) if delay.size else float("nan"),
        "good_median_first_alarm_case": float(np.median(good_kept[good_kept >= 0]) + 1)
        if (good_kept >= 0).any()
        else float("nan"),
        "good_alarms_first_share": float(
            ((good_kept >= 0) & ((third < 0) | (good_kept < third))).mean()
        ),
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
        "three_gross": three_readers(0.625, trials, seed=34, offset=400.0, start=0),
        "three_drift": three_readers(0.625, trials, seed=35, offset=SHIFT, start=CHANGE_AT),
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
    for name in ("three_gross", "three_drift"):
        r = res[name]
        print(
            f"  three readers, rho 0.625, the third {r['offset']:+g} from case {r['from_case']}: "
            f"set aside in {100 * r['third_set_aside_share']:.0f} % of trials; a good reader "
            f"alarms in {100 * r['good_alarm_share_with_set_aside']:.1f} % (against the "
            f"others' mean without setting aside: {100 * r['good_alarm_share_others_mean']:.1f}"
            f" %); the third's delay median {r['third_median_delay_cases']:.0f} cases; a good "
            f"reader's first alarm at case {r['good_median_first_alarm_case']:.0f} (median), "
            f"before the third's in {100 * r['good_alarms_first_share']:.1f} % of trials"
        )
    if args.json:
        write_json(args.json, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
