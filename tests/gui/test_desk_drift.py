"""The desk's Drift page on a trial with a drifting reader (the service tests' trial): each
reader's chart is drawn, the alert raised on the page's refresh reaches the coordinator (tab
count, status bar) and is acknowledged from the page with a note, audited."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from scorer.client.remote import RemoteWorkspace
from scorer.core.readscsv import format_reads_csv
from scorer.gui.desk import DeskWindow
from scorer.gui.desk_drift import CusumChartView
from scorer.store import repository as repo
from scorer.workspace import Workspace
from tests.gui import test_over_server
from tests.gui.test_over_server import Served
from tests.services.test_drift_service import PASSWORD, TRIAL, Setup, _reads


@pytest.fixture
def drifted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    """A trial whose reader carol scores 8 higher from her 11th case on."""
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    ws = Workspace.initialize("ada", "Ada Admin", PASSWORD, db=str(tmp_path / "d.db"))
    d = Setup(ws, ws.accounts.login("ada", PASSWORD))
    ws.trials.create_trial(d.coord, TRIAL, "Drift", visits=[("W0", 0)])
    ws.exchange.import_reads(d.coord, TRIAL, format_reads_csv(_reads()))
    yield d
    ws.close()


#: The reading-centre server on loopback with the sample trial (test_over_server's fixture).
served = test_over_server.served


def _rows(window: DeskWindow) -> list[list[str]]:
    table = window.drift.alerts
    return [
        [table.item(r, c).text() for c in range(table.columnCount())]
        for r in range(table.rowCount())
    ]


def _actions(ws: Workspace) -> list[str]:
    with ws.store.read() as db:
        return [a.action for a in repo.audit_rows(db)]


def test_drift_page_raises_and_acknowledges_an_alert(qtbot: QtBot, drifted: Setup) -> None:
    ws, coord = drifted.ws, drifted.coord
    window = DeskWindow(ws, coord, TRIAL)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.drift.loaded_at is not None, timeout=30000)
    index = window.pages.index(window.drift)
    charts = window.drift.findChildren(CusumChartView)
    assert sorted(c.objectName() for c in charts) == [
        "driftChart:alice",
        "driftChart:bob",
        "driftChart:carol",
    ]
    carol = next(c for c in charts if c.objectName() == "driftChart:carol")
    assert carol.signals and carol.title.startswith("carol: signalled up")
    assert not carol.grab().toImage().isNull()  # the QPainter chart draws
    rows = _rows(window)
    opened = [r for r in rows if r[1] == "carol" and r[6] == "OPEN"]
    assert len(opened) == 1 and opened[0][2] == "up"
    assert window.tabs.tabText(index) == f"Drift ({len(window.drift.open_alerts())})"
    assert "Reader drift: " in window.statusBar().currentMessage()
    assert _actions(ws).count("drift.alert") == len(rows)
    assert "k = 0.35" in window.drift.design.text()

    row = next(i for i, r in enumerate(rows) if r[0] == opened[0][0])
    window.drift.alerts.selectRow(row)
    window.drift.acknowledge()  # no note: refused in words, nothing written
    qtbot.waitUntil(lambda: "note is required" in window.drift.status.text(), timeout=10000)
    assert "drift.acknowledge" not in _actions(ws)

    window.drift.alerts.selectRow(row)
    window.drift.note.setText("spoke to carol; re-calibrating")
    window.drift.acknowledge()
    qtbot.waitUntil(
        lambda: any(r[0] == opened[0][0] and r[6] == "acknowledged by cora" for r in _rows(window)),
        timeout=10000,
    )
    assert _actions(ws).count("drift.acknowledge") == 1
    assert window.tabs.tabText(index) in (
        "Drift",
        f"Drift ({len(window.drift.open_alerts())})",
    )
    window.close()
    assert ws.verify().ok


@pytest.mark.posix
@pytest.mark.slow
def test_drift_page_over_the_server(qtbot: QtBot, served: Served) -> None:
    """Over the reading-centre server the page runs drift.check there and shows its answer
    (the remote workspace serves the drift operations like the others)."""
    remote = RemoteWorkspace.open(served.url, cafile=str(served.cert))
    coord = remote.accounts.login("cora", "Willow-Compass-2024")
    window = DeskWindow(remote, coord, "DEMO-RA")
    qtbot.addWidget(window)
    window.show()
    window.tabs.setCurrentWidget(window.drift)
    qtbot.waitUntil(lambda: window.drift.loaded_at is not None, timeout=30000)
    assert "k = 0.35" in window.drift.design.text()
    assert window.drift.status.text().startswith("0 open drift alert(s)")
    window.close()
