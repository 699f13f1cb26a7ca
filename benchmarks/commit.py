"""Score-commit benchmark: one score entry to its acknowledged, durable commit.

Each figure is what a reader waits for after typing a score: ``Workspace.set_score`` returns
only after the change and its audit row are committed (SQLite: WAL with synchronous=FULL, so
fsynced; PostgreSQL: the server's commit, with its WAL flushed) and the receipt appended.

- SQLite and PostgreSQL, one workstation: median, p95 and spread (min..max of the per-run
  medians) over ``--runs`` runs of ``--n`` entries each;
- PostgreSQL, a reading centre: 1, 2 and 4 workstation processes scoring at once, all in one
  trial (their transactions queue on the trial's advisory lock, as its chain is appended one
  at a time) and each in a trial of its own (each trial's chain and lock are its own):
  commits per second over all, and each entry's median and p95 latency;
- SQLite and PostgreSQL, a reader saving while a coordinator's `scorer reads import` of a large
  file runs (``--import-reads`` reads, in another process): the median and the longest wait of
  the reader's saves (the import commits in batches: a save waits at most about one).

The PostgreSQL server is started on loopback in a temporary folder (as in the tests) when its
binaries are installed; without them those rows are left out and said so.

Usage (from the repository root):

    .venv/bin/python benchmarks/commit.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from common import machine, quantile, write_json  # noqa: E402

from scorer.core.methods import get_method  # noqa: E402
from scorer.workspace import Workspace  # noqa: E402

SVH = get_method("svh")
PW = "Bench-mark-pass-2024"

CHILD = r"""
import json, sys, time
from scorer.core.methods import get_method
from scorer.core.reads import AreaScore
from scorer.workspace import Workspace
db, user, read, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
areas = [d for d in get_method("svh").areas if not d.sides]
ws = Workspace.open(db=db)
s = ws.accounts.login(user, "Bench-mark-pass-2024")
print("ready", flush=True)
sys.stdin.readline()
times = []
for i in range(n):
    d = areas[i % len(areas)]
    t = time.perf_counter()
    ws.reading.set_score(s, read, d.area, AreaScore.scored(i % (d.max + 1)))
    times.append(time.perf_counter() - t)
ws.close()
print(json.dumps(times), flush=True)
"""


#: A reader saving a score every 20 ms until the file named by argv[4] exists.
SAVER = r"""
import json, sys, time
from pathlib import Path
from scorer.core.methods import get_method
from scorer.core.reads import AreaScore
from scorer.workspace import Workspace
db, user, read, stop = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
areas = [d for d in get_method("svh").areas if not d.sides]
ws = Workspace.open(db=db)
s = ws.accounts.login(user, "Bench-mark-pass-2024")
print("ready", flush=True)
sys.stdin.readline()
times = []
i = 0
while not stop.exists():
    d = areas[i % len(areas)]
    t = time.perf_counter()
    ws.reading.set_score(s, read, d.area, AreaScore.scored(i % (d.max + 1)))
    times.append(time.perf_counter() - t)
    i += 1
    time.sleep(0.02)
ws.close()
print(json.dumps(times), flush=True)
"""

#: The coordinator's import of argv[3] into trial B1, timed: prints its seconds and result.
IMPORTER = r"""
import json, sys, time
from scorer.workspace import Workspace
db, data = sys.argv[1], open(sys.argv[2], "rb").read()
ws = Workspace.open(db=db)
s = ws.accounts.login("coord", "Bench-mark-pass-2024")
print("ready", flush=True)
sys.stdin.readline()
t = time.perf_counter()
done = ws.exchange.import_reads(s, "B1", data, source="big.csv")
took = time.perf_counter() - t
ws.close()
print(json.dumps({"seconds": took, "added": done.added, "batches": done.batches}), flush=True)
"""


def _child(script: str, *args: str) -> subprocess.Popen[str]:
    """A benchmark child process, once it said it is ready (logged in)."""
    p = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert p.stdout is not None
    if p.stdout.readline().strip() != "ready":
        raise RuntimeError(p.communicate()[1])
    return p


def _go(p: subprocess.Popen[str]) -> None:
    assert p.stdin is not None
    p.stdin.write("go\n")
    p.stdin.flush()


def _last_json(p: subprocess.Popen[str]) -> Any:
    out, err = p.communicate(timeout=1800)
    if p.returncode != 0:
        raise RuntimeError(err)
    return json.loads(out.strip().splitlines()[-1])


def during_import(db: str, tmp: Path, n_reads: int) -> dict[str, float]:
    """A reader saving (one process) while the coordinator imports ``n_reads`` generated reads
    (another): every save's wait, and the import's time."""
    from tests.generated_reads import generated_csv

    reads = set_up(db, 1)
    big = Path(tempfile.mkstemp(suffix=".csv", dir=tmp)[1])
    big.write_text(generated_csv("B1", n_reads, seed=27), encoding="utf-8")
    stop = big.with_suffix(".stop")
    ((user, code),) = reads.items()
    saver = _child(SAVER, db, user, code, str(stop))
    importer = _child(IMPORTER, db, str(big))
    _go(saver)
    time.sleep(0.5)  # saves before the import starts, then throughout it
    _go(importer)
    result = _last_json(importer)
    stop.touch()
    times = _last_json(saver)
    return {
        "median_ms": ms(times, 0.5),
        "p95_ms": ms(times, 0.95),
        "max_ms": 1000 * max(times),
        "saves": len(times),
        "import_reads": result["added"],
        "import_batches": result["batches"],
        "import_s": result["seconds"],
    }


def _say_during(backend: str, d: dict[str, float]) -> None:
    print(
        f"{backend}, reader saves during a reads import: median {d['median_ms']:.1f} ms, "
        f"max {d['max_ms']:.0f} ms over {d['saves']:.0f} saves; the import of "
        f"{d['import_reads']:.0f} reads took {d['import_s']:.1f} s in "
        f"{d['import_batches']:.0f} batches"
    )


def set_up(db: str, readers: int, trials: int = 1) -> dict[str, str]:
    """``trials`` trials (B1, B2, ...) with ``readers`` readers over them in turn, each with
    one open read; reader -> read code."""
    ws = Workspace.initialize("admin", "Ada Admin", PW, db=db)
    try:
        admin = ws.accounts.login("admin", PW)
        ws.accounts.add_user(admin, "coord", "Coordinator", "coordinator", PW[::-1])
        coord = ws.accounts.login("coord", PW[::-1])
        ws.accounts.change_password(coord, PW[::-1], PW)
        coord = ws.accounts.login("coord", PW)
        codes = [f"B{k + 1}" for k in range(trials)]
        for code in codes:
            ws.trials.create_trial(coord, code, "Benchmark", visits=[("W0", 0.0), ("W24", 24.0)])
        reads: dict[str, str] = {}
        for i in range(readers):
            trial = codes[i % trials]
            patient = ws.trials.add_patient(coord, trial, f"P-{i:03d}")
            user = f"reader{i}"
            ws.accounts.add_user(admin, user, f"Reader {i}", "reader", PW[::-1])
            s = ws.accounts.login(user, PW[::-1])
            ws.accounts.change_password(s, PW[::-1], PW)
            s = ws.accounts.login(user, PW)
            # A reader reads their own worklist's case: patient i.
            ws.worklists.assign_reader(coord, trial, user, [patient])
            ws.worklists.generate_worklists(coord, trial, readers=[user])
            reads[user] = ws.reading.start_read(s, trial, patient, "W0")
        return reads
    finally:
        ws.close()


def run_writers(db: str, reads: dict[str, str], n: int) -> tuple[float, list[float]]:
    """Start one process per reader, start them together; (wall s, every entry's seconds)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, db, user, code, str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for user, code in reads.items()
    ]
    for p in procs:
        assert p.stdout is not None
        line = p.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(p.communicate()[1])
    started = time.perf_counter()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    times: list[float] = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        if p.returncode != 0:
            raise RuntimeError(err)
        times += json.loads(out.strip().splitlines()[-1])
    return time.perf_counter() - started, times


def ms(values: list[float], q: float) -> float:
    return 1000 * quantile(values, q)


def single(db_for: Any, runs: int, n: int) -> dict[str, float]:
    medians, p95s, every = [], [], []
    for r in range(runs):
        db = db_for(r)
        reads = set_up(db, 1)
        _, times = run_writers(db, reads, n)
        medians.append(ms(times, 0.5))
        p95s.append(ms(times, 0.95))
        every += times
    return {
        "median_ms": statistics.median(medians),
        "p95_ms": statistics.median(p95s),
        "spread_median_ms": [min(medians), max(medians)],
        "entries": len(every),
    }


def own_data(tmp: Path, db: str) -> str:
    """``db``, with a data folder of its own for its key and receipts (each database needs
    its own receipts: a server's databases do not share one file)."""
    data = Path(tempfile.mkdtemp(prefix="data-", dir=tmp))
    os.environ["SCORER_DATA_DIR"] = str(data)
    return db


def centre(pg: Any, tmp: Path, n: int) -> dict[str, Any]:
    """1, 2 and 4 workstation processes scoring at once: all in one trial (they share its
    chain and its lock) and each in a trial of its own (a chain and lock each)."""
    figures: dict[str, Any] = {}
    for layout in ("one trial", "a trial each"):
        rows: dict[str, dict[str, float]] = {}
        for writers in (1, 2, 4):
            db = own_data(tmp, pg.new_database())
            reads = set_up(db, writers, 1 if layout == "one trial" else writers)
            wall, times = run_writers(db, reads, n)
            rows[str(writers)] = {
                "commits_per_s": len(times) / wall,
                "median_ms": ms(times, 0.5),
                "p95_ms": ms(times, 0.95),
            }
            print(
                f"PostgreSQL, {writers} workstation(s) at once, {layout}: "
                f"{rows[str(writers)]['commits_per_s']:.0f} commits/s, median "
                f"{rows[str(writers)]['median_ms']:.2f} ms, p95 "
                f"{rows[str(writers)]['p95_ms']:.2f} ms"
            )
        figures[layout] = rows
    return figures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run: few entries, one run")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--n", type=int, default=200, help="entries per run and writer")
    ap.add_argument("--import-reads", type=int, default=1500, help="reads of the large import")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "commit.json")
    ap.add_argument(
        "--centre-only",
        action="store_true",
        help="only the reading centre's rows (several writers at once on PostgreSQL)",
    )
    args = ap.parse_args()
    runs, n = (1, 20) if args.quick else (args.runs, args.n)
    n_import = 40 if args.quick else args.import_reads
    tmp = Path(tempfile.mkdtemp(prefix="scorer-bench-commit-"))
    os.environ["SCORER_DATA_DIR"] = str(tmp / "data")
    os.environ["SCORER_CONFIG"] = str(tmp / "no-config.toml")
    os.environ.pop("SCORER_DB", None)
    out: dict[str, Any] = {
        "machine": machine(),
        "runs": runs,
        "entries_per_run": n,
    }
    if not args.centre_only:
        out["sqlite"] = single(lambda r: str(tmp / f"s{r}.sqlite"), runs, n)
        print(
            f"SQLite, one workstation:      median {out['sqlite']['median_ms']:.2f} ms, "
            f"p95 {out['sqlite']['p95_ms']:.2f} ms"
        )
        out["during_import"] = {"sqlite": during_import(str(tmp / "imp.sqlite"), tmp, n_import)}
        _say_during("SQLite", out["during_import"]["sqlite"])
    sys.path.insert(0, str(REPO / "tests"))
    from tests.pg import start_server

    server = start_server()
    if server is None:
        print("PostgreSQL: no server binaries installed; its rows are left out")
    else:
        pg, stop = server
        try:
            if not args.centre_only:
                out["postgresql"] = single(lambda r: own_data(tmp, pg.new_database()), runs, n)
                print(
                    f"PostgreSQL, one workstation:  median "
                    f"{out['postgresql']['median_ms']:.2f} ms, "
                    f"p95 {out['postgresql']['p95_ms']:.2f} ms"
                )
            out["postgresql_centre"] = centre(pg, tmp, n)
            if not args.centre_only:
                out["during_import"]["postgresql"] = during_import(
                    own_data(tmp, pg.new_database()), tmp, n_import
                )
                _say_during("PostgreSQL", out["during_import"]["postgresql"])
        finally:
            stop()
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
