"""Blinding in the reading window, walked as a reader would use it, on the demo's own files.

The demo is built (the demo's code, its committed sample radiographs of two patients with their
planted names, IDs, birth dates, study dates, accession numbers and institutions) with two
readers' signed reads; the third reader then logs in and works through the worklist and a
case: every area of every visit visited, both film pages, the not-assessable popup, the flag
and sign dialogs, the lock. Every text the reader could see — widget texts, tooltips, status
tips, placeholders, window titles, item-view cells and headers, actions, status-bar messages —
and every log line and console output is collected and searched for the planted identifiers,
visit labels, dates, other readers' names, patient codes and read types. Other readers'
scores: the reader's grid starts empty and their reads are not reachable.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from scorer.demo import READERS, TRIAL
from scorer.gui.reading import ReadingWindow, layout_settings
from scorer.gui.signing import SignDialog
from scorer.workspace import NotFound, Workspace
from tests.blinding import build_mini_demo, planted, visible_texts


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    yield build_mini_demo(tmp_path_factory.mktemp("blinding"))


def test_a_reader_sees_nothing_that_unblinds(
    qtbot: QtBot,
    demo: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCORER_DATA_DIR", str(demo["base"] / "data"))
    caplog.set_level(logging.DEBUG)
    ws = Workspace.open(demo["db"])
    passwords = demo["passwords"]
    coordinator = ws.accounts.login("coord", passwords["coord"])
    patient_codes = {p.code for p in ws.trials.list_patients(coordinator, TRIAL)}
    others = {
        r: {row.code for row in ws.worklists.worklist(coordinator, TRIAL, r)}
        for r in READERS[:2]
    }
    other_reads = [code for reader in READERS[:2] for code in _reads_of(ws, passwords, reader)]
    assert other_reads  # the two readers' signed reads exist
    ws.accounts.logout(coordinator)

    reader = READERS[2]
    session = ws.accounts.login(reader, passwords[reader])
    window = ReadingWindow(ws, session, TRIAL, settings=layout_settings(demo["base"] / "ui"))
    qtbot.addWidget(window)
    messages: list[str] = []
    window.statusBar().messageChanged.connect(messages.append)
    window.show()
    qtbot.waitUntil(
        lambda: window.model is not None and window.case_view.case is not None, timeout=60000
    )
    texts: list[str] = []
    texts += visible_texts(window)

    model = window.model
    assert model is not None
    # Other readers' scores: nothing of theirs in this reader's grid, and unreachable.
    assert all(cell.entry is None for cell in model.cells.values())
    assert not set(model.reads.values()) & set(other_reads)
    for code in other_reads[:6]:
        with pytest.raises(NotFound):
            ws.reading.get_read(session, code)
    assert not {row["code"] for row in window.rows} & set().union(*others.values())

    # Walk every area of every visit (grade definitions, joint map, both film pages).
    for col in range(len(model.letters)):
        for row in range(len(model.areas)):
            model.set_current(row, col)
            if row % 11 == 0:
                texts += visible_texts(window)
    texts += visible_texts(window)
    assert window.grid is not None
    QTest.keyClicks(window.grid.table, "n")  # the not-assessable popup
    texts += visible_texts(window)
    QTest.keyClick(window.grid.table, Qt.Key.Key_Escape)
    window.grid.ask_flag()
    texts += visible_texts(window)
    assert window.grid.flag_dialog is not None
    window.grid.flag_dialog.reject()
    sign = SignDialog(lambda _u, _p: None, reader, session.full_name, 3, first_signature=True)
    qtbot.addWidget(sign)
    sign.show()
    texts += visible_texts(window)
    sign.close()
    # Score a few areas, go to the next case and back: the save states and messages.
    QTest.keyClicks(window.grid.table, "0120")
    qtbot.waitUntil(lambda: window.writer.pending_count == 0, timeout=20000)
    window.next_case()
    qtbot.waitUntil(lambda: window.model is not None and window.index == 1, timeout=60000)
    texts += visible_texts(window)
    window.lock_session()
    texts += visible_texts(window)
    texts += messages
    window.close()
    texts += [r.getMessage() for r in caplog.records]
    out, err = capfd.readouterr()
    texts += out.splitlines() + err.splitlines()
    ws.close()

    secrets = planted(demo["samples"]) | patient_codes
    secrets |= {"reader1", "reader2", "Rita Reader", "Ravi Reader", "Week 24", "Week 52"}
    assert "DEMO-101" in secrets and any(re.fullmatch(r"\d{8}", s) for s in secrets)
    word = re.compile(r"\b(W0|W24|W52|reread|re-read|calibration|primary|adjudication)\b", re.I)
    checked = 0
    for text in texts:
        lowered = text.lower()
        for secret in secrets:
            assert secret.lower() not in lowered, (secret, text)
        assert not word.search(text), text
        checked += 1
    assert checked > 1000  # the walk saw a great many texts


def _reads_of(ws: Workspace, passwords: dict[str, str], reader: str) -> list[str]:
    s = ws.accounts.login(reader, passwords[reader])
    try:
        return [r.code for r in ws.worklists.my_reads(s, TRIAL)]
    finally:
        ws.accounts.logout(s)
