"""The installed PySide6 may drop references to None and True (6.12.0 on CPython 3.11);
importing scorer.gui makes sure that can never abort the interpreter."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_many_void_calls_and_emits_do_not_abort_the_interpreter() -> None:
    script = textwrap.dedent(
        """
        import sys
        import scorer.gui
        from scorer.gui.pyside_workarounds import _Probe
        probe = _Probe()
        probe.pinged.connect(lambda: None)
        for _ in range(50_000):  # None starts with some 15 000 references, True 2 500
            probe.setObjectName("x")
        for _ in range(10_000):
            probe.pinged.emit()
        print("alive", sys.getrefcount(None) > 1000, sys.getrefcount(True) > 1000)
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["alive", "True", "True"]
