"""A demo database made by a landed version of scorer, run from its own files (git archive),
for the migration tests: every schema change is tested by upgrading such a database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.store.test_projection import previous_version


def old_demo(tmp_path: Path, db: Path, commit: str) -> None:
    """Set up the demo into ``db`` with the version landed at ``commit``."""
    old = previous_version(tmp_path / "previous", commit)
    env = {
        **os.environ,
        "PYTHONPATH": str(old),
        "QT_QPA_PLATFORM": "offscreen",
        "SCORER_DATA_DIR": str(tmp_path / "data"),
        "SCORER_CONFIG": str(tmp_path / "no-site-config.toml"),
    }
    env.pop("SCORER_DB", None)
    proc = subprocess.run(
        [sys.executable, "-m", "scorer", "demo", "--no-gui", "--db", str(db)],
        cwd=old,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
