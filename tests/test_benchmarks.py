"""The benchmark suite's smoke run, so the benchmarks never rot: `benchmarks/run.py --quick`
runs every benchmark end to end on small inputs (untimed: its figures mean nothing) and must
produce every benchmark's JSON and the summary table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_every_benchmark_runs_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["quick"] is True and summary["failed"] == []
    assert set(summary["seconds"]) == {
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
    }
    for name in summary["seconds"]:
        assert (tmp_path / f"{name}.json").exists(), name
    figures = {f["figure"].strip(): f for f in summary["figures"]}
    for wanted in (
        "cold start: window shown",
        "next case, with prefetch",
        "next area in joint view, 3 panes",
        "reader time per area, film view (window's own)",
        "reader time per area, joint view (window's own)",
        "window/level frame, fit",
        "peak memory reading with prefetch",
        "score commit, SQLite",
        "score commit, PostgreSQL",
        "scorer analyze, trial scale",
        "import, uncompressed",
        "audit verify: audit rows per second",
        "server: save, 20 workstations, PostgreSQL",
        "server: next case, films prefetched",
        "next case without prefetch, open + films",
        "drift: detection delay of +2 (median, cases), demo SD",
    ):
        assert wanted in figures, sorted(figures)
        assert isinstance(figures[wanted]["median"], int | float) and figures[wanted]["median"] > 0
    assert "figure" in proc.stdout and "target" in proc.stdout  # the table was printed
