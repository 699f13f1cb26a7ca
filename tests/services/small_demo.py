"""A demo trial of two of the committed sample patients: quick to build, with real films,
cases for every reader and the true joint positions; for service tests that need them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scorer.demo import repo_samples_dir, run_demo
from scorer.workspace import Workspace

PATIENTS = ("DEMO-101", "DEMO-102")


def two_patient_samples(folder: Path) -> Path:
    """Two patients of the committed sample set, with their rows of its tables."""
    source = repo_samples_dir()
    folder.mkdir(parents=True)
    for patient in PATIENTS:
        shutil.copytree(source / patient, folder / patient)
    for name in ("manifest.csv", "ground-truth-svh.csv", "joint-positions.csv"):
        lines = (source / name).read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [lines[0]] + [ln for ln in lines[1:] if any(p in ln for p in PATIENTS)]
        (folder / name).write_text("".join(kept), encoding="utf-8")
    return folder


def small_demo(base: Path) -> Iterator[dict[str, Any]]:
    """The open demo workspace as {"ws", "pw" (passwords by user), "samples", "db"}; closed
    after the ``yield`` (a fixture's body)."""
    samples = two_patient_samples(base / "samples")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SCORER_DATA_DIR", str(base / "data"))
        env.setenv("SCORER_CONFIG", str(base / "no-site-config.toml"))
        env.delenv("SCORER_DB", raising=False)
        result = run_demo(str(base / "demo.sqlite"), samples=samples, say=lambda _t: None)
        ws = Workspace.open(result.db)
        try:
            yield {"ws": ws, "pw": result.passwords, "samples": samples, "db": result.db}
        finally:
            ws.close()
