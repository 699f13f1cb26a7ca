"""Killing the workstation in the middle of a case loses nothing acknowledged: a real child
process runs the reading window and types entries from the keyboard; after N acknowledged
entries it gets SIGKILL; the N entries are in the database, what is stored is exactly the
first entries typed (the writer commits in order: nothing half-written, no gap), and the
window opened again resumes on the first area not entered. Three kills on the same case."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from scorer.core.methods import get_method
from scorer.gui.reading import ReadingWindow, layout_settings
from scorer.gui.sample_case import SAMPLE_READER, SAMPLE_READER_PASSWORD, build_sample_workspace
from scorer.workspace import Workspace
from tests.gui.reading_keys import case_keystrokes

REPO = Path(__file__).resolve().parents[2]
SVH = get_method("svh")
STROKES = list(case_keystrokes(SVH, ("A", "B", "C")))
COORDINATOR = ("cora", "Willow-Compass-2024")


def run_and_kill(db: Path, env: dict[str, str], start: int, acks_wanted: int) -> list[str]:
    """Start the child typing from keystroke ``start``; SIGKILL it after ``acks_wanted``
    acknowledgements. Returns the acknowledged "read area" pairs."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.gui.scoring_child", str(db), str(start)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acks: list[str] = []
    lines: list[str] = []
    deadline = time.monotonic() + 120
    try:
        assert child.stdout is not None
        while len(acks) < acks_wanted and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
            if line.startswith("ACK "):
                acks.append(line[4:].strip())
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(30)
        stderr = child.stderr.read() if child.stderr else ""
    assert child.returncode == -signal.SIGKILL, (lines[-5:], stderr[-2000:])
    assert len(acks) == acks_wanted, (lines[-5:], stderr[-2000:])
    assert lines[0].startswith("AT "), lines[:3]
    return acks


def stored_prefix(db: Path, reads: dict[str, str]) -> tuple[int, dict[tuple[str, str], object]]:
    """How many of the keystrokes are stored, checking they form an unbroken prefix with the
    typed values; and every stored (read code, area) -> value."""
    ws = Workspace.open(str(db))
    try:
        coordinator = ws.accounts.login(*COORDINATOR)
        stored = {}
        for letter, code in reads.items():
            for area, value in ws.reading.get_read(coordinator, code).scores.items():
                stored[(letter, area)] = value
        assert ws.verify().ok
    finally:
        ws.close()
    n = 0
    while n < len(STROKES) and (STROKES[n].letter, STROKES[n].area) in stored:
        assert stored[(STROKES[n].letter, STROKES[n].area)] == STROKES[n].value
        n += 1
    assert len(stored) == n, "an entry is stored out of order"
    by_code = {(reads[letter], str(area)): v for (letter, area), v in stored.items()}
    return n, by_code


@pytest.mark.posix
def test_sigkill_in_the_middle_of_a_case_loses_no_acknowledged_entry(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("SCORER_DATA_DIR", str(data))
    sample = build_sample_workspace(tmp_path / "trial", patients=1, pixel_mm=1.0)
    ws = sample.workspace
    case = ws.worklists.worklist(sample.session, sample.trial)[0].code
    reads = ws.reading.open_case(sample.session, case).reads
    db = Path(ws.store.location.sqlite_path)
    ws.close()
    env = {
        **os.environ,
        "SCORER_DATA_DIR": str(data),
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONPATH": str(REPO),
    }
    start = 0
    kills = 0
    for wanted in (5, 37, 90):
        acks = run_and_kill(db, env, start, wanted)
        kills += 1
        n, stored = stored_prefix(db, reads)
        for ack in acks:
            code, area = ack.split(" ", 1)
            assert (code, area) in stored, f"acknowledged {ack} is not in the database"
        assert n >= start + wanted
        start = n
    assert kills == 3 and start >= 132

    # The reader opens the workstation again: everything stored is in the grid, and the
    # cursor is on the first area not entered.
    again = Workspace.open(str(db))
    try:
        session = again.accounts.login(SAMPLE_READER, SAMPLE_READER_PASSWORD)
        window = ReadingWindow(
            again, session, sample.trial, settings=layout_settings(tmp_path / "layout")
        )
        qtbot.addWidget(window)
        window.show()
        qtbot.waitUntil(lambda: window.model is not None, timeout=30000)
        model = window.model
        assert model is not None
        for stroke in STROKES[:start]:
            entry = model.entry(stroke.letter, stroke.area)
            assert entry is not None and entry.score == stroke.value
        assert all(model.entry(s.letter, s.area) is None for s in STROKES[start:])
        nxt = STROKES[start]
        assert (model.current_letter, model.current_area) == (nxt.letter, nxt.area)
        window.close()
    finally:
        again.close()
