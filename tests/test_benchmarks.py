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
        "locator",
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
        "locator, hand PIP (synthetic)",
        "registration, foot MTP (synthetic)",
    ):
        assert wanted in figures, sorted(figures)
        assert isinstance(figures[wanted]["median"], int | float) and figures[wanted]["median"] > 0
    assert "figure" in proc.stdout and "target" in proc.stdout  # the table was printed


def test_the_locator_benchmarks_harness_runs_with_a_stand_in(tmp_path: Path) -> None:
    """The locator benchmark end to end on two patients' hard films with its stand-in (the
    truth plus 0.3 mm of noise): every area kind scored for both methods, the CR files read
    and taken for neither, and the figures labelled as the stand-in's."""
    out = tmp_path / "locator.json"
    script = str(REPO / "benchmarks" / "locator.py")
    proc = subprocess.run(
        [sys.executable, script, "--quick", "--stand-in", "--json", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "STAND-IN" in proc.stdout and "synthetic" in proc.stdout.lower()
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["stand_in"] is True and data["synthetic_only"] is True
    assert data["first_seed"] >= 50_000 and data["patients"] == 2
    kinds = {"hand MCP", "hand PIP", "thumb IP", "wrist", "foot MTP", "foot IP"}
    for method in ("locator", "registration"):
        assert set(data[method]["kinds"]) == kinds
        for row in data[method]["kinds"].values():
            # the stand-in's noise is 0.3 mm per axis: a median near 0.35 mm, never 0 or large
            assert 0.1 < row["median_mm"] < 0.8 and row["worst_mm"] < 2.5
            assert 0.0 < row["unsure_share"] < 0.4
    assert data["locator"]["films"] == 12 and data["registration"]["proposals"] == 8
    assert data["locator"]["misread_films"] == []
    assert [c["file"] for c in data["pydicom_crs"]] == ["RG1_UNCR.dcm", "RG3_UNCR.dcm"]
    assert data["crs_recognised_as_neither"] is True
