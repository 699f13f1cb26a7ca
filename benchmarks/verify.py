"""Verification benchmark: `scorer audit verify` replaying a large audit trail.

A trial's trail is made the way a reading centre makes it — each score a transaction of its
own, its ``score.set`` audit row followed by the ``data.rows`` row of the rows it changed —
but written in one long transaction so that making it takes seconds, not an afternoon of
fsyncs. Then ``Workspace.verify()`` (both chains, receipts, signatures, the replay of the trail
and the comparison of every projected table) runs ``--runs`` times:

- audit rows verified per second (median and spread over the runs; target ≥ 50,000);
- row changes replayed per second;
- peak memory of one verification (tracemalloc, a run of its own), at the full trail and at
  half of it: bounded memory means the two are close, not in the ratio of the trails.

Usage (from the repository root):

    .venv/bin/python benchmarks/verify.py [--quick] [--rows N] [--json PATH]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from common import machine, write_json  # noqa: E402

from scorer.core.methods import get_method  # noqa: E402
from scorer.core.reads import AreaScore  # noqa: E402
from scorer.workspace import Workspace  # noqa: E402

PW = "Bench-mark-pass-2024"
SVH = get_method("svh")


def make_trail(folder: Path, audit_rows: int) -> str:
    """A database whose audit trail has about ``audit_rows`` rows of scoring."""
    from sqlalchemy import func, select

    from scorer.store.schema import AreaScoreRow, AuditEvent, Read, User

    db = str(folder / "bench.sqlite")
    ws = Workspace.initialize("admin", "Admin Bench", PW, db=db)
    try:
        admin = ws.accounts.login("admin", PW)
        ws.accounts.add_user(admin, "coord", "Coordinator Bench", "coordinator", PW)
        ws.accounts.add_user(admin, "reader1", "Reader Bench", "reader", PW)
        with ws.store.write("system") as tx:  # the first-log-in change is not the point here
            for u in tx.session.scalars(select(User)):
                u.must_change_password = False
        coord = ws.accounts.login("coord", PW)
        ws.trials.create_trial(
            coord, "BENCH", "Verification bench", visits=[("W0", 0.0), ("W52", 52.0)]
        )
        for i in range(40):
            ws.trials.add_patient(coord, "BENCH", f"P{i:04d}")
        ws.worklists.assign_reader(coord, "BENCH", "reader1")
        ws.worklists.generate_worklists(coord, "BENCH", readers=["reader1"])
        reader = ws.accounts.login("reader1", PW)
        rows = ws.worklists.worklist(reader, "BENCH")
        opened = ws.reading.open_case(reader, rows[0].code)
        code = next(iter(opened.reads.values()))
        areas = [d for d in SVH.areas if not d.sides]
        ws.reading.set_score(reader, code, areas[0].area, AreaScore.scored(0))
        with ws.store.write("reader1") as tx:
            read = tx.session.scalars(select(Read).where(Read.code == code)).one()
            scores = tx.session.scalars(
                select(AreaScoreRow).where(AreaScoreRow.read_id == read.id)
            ).all()
            row = scores[0]
            i = 0
            # Each step writes two audit rows: the score's and its data row.
            existing = tx.session.scalar(select(func.count()).select_from(AuditEvent)) or 0
            while existing + 2 * i < audit_rows:
                value = i % 2
                old = row.score
                row.score = value
                row.updated_at = tx.now
                tx.audit("score.set", "read", code, old={"score": old}, new={"score": value})
                tx.record_changes()
                i += 1
    finally:
        ws.close()
    return db


def time_verify(db: str) -> tuple[float, Any]:
    ws = Workspace.open(db=db)
    try:
        t = time.perf_counter()
        result = ws.verify()
        return time.perf_counter() - t, result
    finally:
        ws.close()


def peak_mb(db: str) -> float:
    tracemalloc.start()
    try:
        time_verify(db)
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small trail, one run (smoke test)")
    ap.add_argument("--rows", type=int, default=200_000, help="audit rows in the trail")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "verify.json")
    args = ap.parse_args()
    rows, runs = (3000, 1) if args.quick else (args.rows, args.runs)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        db = make_trail(Path(tmp), rows)
        half = make_trail(Path(tmp) / "half", rows // 2) if not args.quick else db
        made = time.perf_counter() - t0
        seconds: list[float] = []
        result: Any = None
        for _ in range(runs):
            s, result = time_verify(db)
            assert result.ok, result.errors[:5]
            seconds.append(s)
        audit = result.rows["audit_events"]
        median = statistics.median(seconds)
        out = {
            "machine": machine(),
            "quick": args.quick,
            "audit_rows": audit,
            "row_changes": result.replayed,
            "seconds": seconds,
            "median_s": median,
            "audit_rows_per_s": audit / median,
            "spread_rows_per_s": [audit / max(seconds), audit / min(seconds)],
            "row_changes_per_s": result.replayed / median,
            "peak_mb": peak_mb(db),
            "peak_mb_half_trail": peak_mb(half),
            "made_in_s": made,
        }
    print(
        f"verify: {audit} audit rows ({out['row_changes']} row changes) in {median:.2f} s "
        f"(median of {runs}): {out['audit_rows_per_s']:,.0f} audit rows/s "
        f"[{out['spread_rows_per_s'][0]:,.0f}..{out['spread_rows_per_s'][1]:,.0f}], "
        f"{out['row_changes_per_s']:,.0f} row changes/s; peak memory {out['peak_mb']:.1f} MB "
        f"(half the trail: {out['peak_mb_half_trail']:.1f} MB)"
    )
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
