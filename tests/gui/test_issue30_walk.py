"""The walk of issue 30, end to end through the windows: a reader (reader3: the demo's reader
with nothing read yet) scores from the keyboard, flags visit B and is killed mid-case (a
second process, SIGKILL); the coordinator sees the
flag's patient and true visit on the desk, opens the film from the flag and answers; the
reader sees the answer on that case; the monitor sees every score of the killed session with
the visit letter and the true visit, and time per image for every film the reader had on
screen."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton
from pytestqt.qtbot import QtBot

from scorer.demo import TRIAL
from scorer.gui.desk import DeskWindow
from scorer.gui.monitor import MonitorWindow
from scorer.gui.reading import ReadingWindow
from scorer.gui.settings import layout_settings
from tests.behind import behind
from tests.services.small_demo import small_demo

CHILD = Path(__file__).with_name("walk_child.py")
REPO = Path(__file__).resolve().parents[2]
SCORES = 7


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    yield from small_demo(tmp_path_factory.mktemp("walk"))


def _killed_reader(demo: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Run the reader's workstation in a second process until it has flagged, then kill it."""
    config = folder / "child.json"
    config.write_text(
        json.dumps(
            {
                "db": demo["db"],
                "trial": TRIAL,
                "username": "reader3",
                "password": demo["pw"]["reader3"],
                "settings": str(folder / "settings"),
                "scores": SCORES,
                "flag": "visit B may be another patient",
            }
        ),
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(config)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        said = proc.stdout.readline()
        ready = proc.stdout.readline()
        if ready.strip() != "ready":
            proc.wait(timeout=30)
            assert proc.stderr is not None
            pytest.fail(f"the reader's workstation stopped: {said}{ready}{proc.stderr.read()}")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    out: dict[str, Any] = json.loads(said)
    return out


def _column(table: Any, title: str) -> int:
    titles = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    return titles.index(title)


@pytest.mark.posix
def test_reader_flags_and_is_killed_coordinator_answers_monitor_reviews(
    qtbot: QtBot, demo: dict[str, Any], tmp_path: Path
) -> None:
    ws, pw = demo["ws"], demo["pw"]
    killed = _killed_reader(demo, tmp_path)
    case, session_id = killed["case"], killed["session"]
    coord = ws.accounts.login("coord", pw["coord"])
    row = next(r for r in ws.worklists.worklist(coord, TRIAL, "reader3") if r.code == case)
    visits = list(row.visits)  # the true visit behind each letter, A first
    patient = row.patient

    # --- the coordinator: the flag with patient and true visit; its films opened; answered
    desk = DeskWindow(ws, coord, TRIAL)
    qtbot.addWidget(desk)
    desk.resize(1300, 850)
    desk.show()
    page = desk.flags
    qtbot.waitUntil(lambda: any(f.flag == killed["flag"] for f in page.flags), timeout=30000)
    index = next(i for i, f in enumerate(page.flags) if f.flag == killed["flag"])
    flag = page.flags[index]
    assert (flag.patient, flag.visit, flag.letter) == (patient, visits[1], "B")
    shown_row = [
        page.table.item(index, c).text() for c in range(page.table.columnCount())
    ]
    assert patient in shown_row and any(visits[1] in text for text in shown_row), shown_row
    assert len(flag.images) == len(killed["flagged_films"]) > 0
    open_flag_images(qtbot, desk, index, flag)
    ws.coordination.answer_flag(coord, TRIAL, flag.flag, "Checked: same patient, re-scanned")
    desk.close()

    # --- the reader, back at a workstation: the answer on that case
    reader = ws.accounts.login("reader3", pw["reader3"])
    window = ReadingWindow(ws, reader, TRIAL, settings=layout_settings(tmp_path / "again"))
    qtbot.addWidget(window)
    window.resize(1400, 900)
    window.show()
    qtbot.waitUntil(lambda: window.grid is not None and window.model is not None, timeout=30000)
    assert window.model is not None and window.model.case_code == case
    label = window.grid.flag_answers  # type: ignore[union-attr]
    qtbot.waitUntil(lambda: "Checked: same patient" in label.text(), timeout=30000)
    window.close()

    # --- the monitor: every score of the killed session, its visits, time per film
    monitor = ws.accounts.login("monitor", pw["monitor"])
    mw = MonitorWindow(ws, monitor)
    qtbot.addWidget(mw)
    mw.show()
    qtbot.waitUntil(lambda: any(s.session == session_id for s in mw.sessions), timeout=30000)
    pos = next(i for i, s in enumerate(mw.sessions) if s.session == session_id)
    chosen = mw.sessions[pos]
    assert chosen.end_kind == "no log-out" and chosen.open_case == case
    with behind(demo["db"], readonly=True) as con:
        in_trail = con.rows(
            "SELECT count(*) FROM audit_events WHERE session = ? AND action LIKE 'score.%'",
            (session_id,),
        )[0][0]
    assert in_trail == SCORES == chosen.scores
    table_row = next(
        r
        for r in range(mw.sessions_table.rowCount())
        if int(mw.sessions_table.item(r, 0).data(Qt.ItemDataRole.UserRole)) == pos
    )
    with qtbot.waitSignal(mw.timelineLoaded, timeout=30000):
        mw.sessions_table.selectRow(table_row)
    scores = [r for r in mw.timeline if r.what.startswith("score.")]
    assert len(scores) == SCORES
    for r in scores:
        assert r.visit_letter in "ABC" and r.visit == visits["ABC".index(r.visit_letter)]
    films = mw.films_table
    seconds = {
        films.item(r, 0).text(): float(films.item(r, _column(films, "Seconds")).text())
        for r in range(films.rowCount())
    }
    assert set(killed["films"]) <= set(seconds), (killed["films"], seconds)
    assert all(seconds[f] > 0 for f in killed["films"])
    mw.close()


def open_flag_images(qtbot: QtBot, desk: DeskWindow, index: int, flag: Any) -> None:
    """Open the flag's images from the desk's flag page: the viewer shows the films the
    reader had on screen, the first one painted."""
    page = desk.flags
    page.table.selectRow(index)
    button = next(b for b in page.findChildren(QPushButton) if b.text() == "Open images")
    button.click()
    viewer = page.viewer
    assert viewer is not None and viewer.isVisible()
    assert [p.film.code for p in viewer.pages] == list(flag.images)
    assert str(flag.patient) in viewer.windowTitle()
    qtbot.waitUntil(lambda: viewer.current.loaded, timeout=30000)
    shown = viewer.current.view.model.image
    assert shown is not None and min(shown.shape) > 100
    viewer.close()
