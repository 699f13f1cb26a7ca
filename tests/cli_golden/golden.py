"""Golden files: compare a command's output with the file under ``golden/``, or write it.

``SCORER_GOLDEN_UPDATE=1 .venv/bin/python -m pytest tests/cli_golden -n 0`` writes every
golden file from what the commands print now (and removes those of commands that are gone);
without it a difference fails the test with a diff. A change to a golden file is a change to
the command line's contract and is reviewed as one.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("SCORER_GOLDEN_UPDATE") == "1"
HOW = "SCORER_GOLDEN_UPDATE=1 .venv/bin/python -m pytest tests/cli_golden -n 0"


def check(relative: str, text: str) -> None:
    """``text`` must equal ``golden/<relative>`` (with SCORER_GOLDEN_UPDATE=1: becomes it)."""
    path = GOLDEN / relative
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"no golden file {relative}: write it with {HOW}, review it, commit it")
    expected = path.read_text(encoding="utf-8")
    if expected != text:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                text.splitlines(keepends=True),
                f"golden/{relative}",
                "now",
            )
        )
        pytest.fail(
            f"the command line differs from golden/{relative}:\n{diff}\n"
            f"If the change is meant, regenerate with {HOW} and review the diff.",
            pytrace=False,
        )


def check_no_stale(folder: str, expected: set[str]) -> None:
    """Every file in ``golden/<folder>`` belongs to one of ``expected`` (relative names):
    a command removed or renamed leaves no golden file behind (with SCORER_GOLDEN_UPDATE=1
    such files are deleted)."""
    root = GOLDEN / folder
    present = {p.relative_to(GOLDEN).as_posix() for p in root.rglob("*") if p.is_file()}
    stale = sorted(present - expected)
    if UPDATE:
        for name in stale:
            (GOLDEN / name).unlink()
        return
    assert not stale, f"golden files of no command: {stale}; regenerate with {HOW}"
