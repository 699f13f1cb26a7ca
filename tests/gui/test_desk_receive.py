"""The coordinator's desk, Receive page: start the DICOM receiver, watch films arrive from a
real sender (dcmtk's storescu), stop it; every facade call off the UI thread, all audited."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from scorer.gui.desk import DeskWindow
from tests.network.conftest import Desk, dcmtk, desk, films  # noqa: F401


def send(port: int, files: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [dcmtk("storescu"), "-aet", "MODALITY1", "-aec", "SCORER", "127.0.0.1", str(port),
         *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip


def test_receiving_from_the_desk(qtbot: QtBot, desk: Desk, tmp_path: Path) -> None:  # noqa: F811
    window = DeskWindow(desk.ws, desk.s, "T1")
    qtbot.addWidget(window)
    window.show()
    page = window.receive
    window.tabs.setCurrentWidget(page)
    qtbot.waitUntil(lambda: page.loaded_at is not None, timeout=30000)
    assert "none" in page.trial_senders.text()
    assert page.stop_button.isEnabled() is False

    # No sender allowed anywhere: it says so, and does not listen.
    page.host.setText("127.0.0.1")
    page.port.setValue(0)
    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "no sender is allowed" in page.status.text(), timeout=30000)
    assert page.receiver is None and page.start_button.isEnabled()

    page.allow.setText("MODALITY1, PACS2")
    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.status.text().startswith("Receiving as SCORER"), timeout=30000)
    assert page.stop_button.isEnabled() and not page.allow.isEnabled()
    port = page.receiver.port
    assert f"127.0.0.1:{port} from MODALITY1, PACS2" in page.status.text()

    sent = films(tmp_path / "films")
    res = send(port, [sent["uncompressed"], sent["uncompressed"]])
    assert res.returncode == 0, res.stdout + res.stderr
    qtbot.waitUntil(lambda: page.table.rowCount() == 2, timeout=30000)
    outcomes = sorted(page.table.item(r, 3).text() for r in range(2))
    assert outcomes == ["duplicate", "imported"]
    froms = {page.table.item(r, 1).text() for r in range(2)}
    assert froms == {"MODALITY1"}
    assert "1 imported, 1 duplicate(s), 0 refused" in page.status.text()
    codes = [page.table.item(r, 4).text() for r in range(2)]
    assert len({c for c in codes if c}) == 1

    qtbot.mouseClick(page.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.status.text().startswith("Stopped."), timeout=30000)
    assert page.start_button.isEnabled() and page.receiver is None
    with socket.socket() as sock:  # the port is closed again
        assert sock.connect_ex(("127.0.0.1", port)) != 0

    # Closing the desk while receiving stops the receiver.
    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.receiver is not None, timeout=30000)
    receiver = page.receiver
    window.close()
    assert not receiver.running

    actions = [e.action for e in desk.ws.oversight.audit_trail(desk.s)]
    assert actions.count("dicom.receive.start") == 2
    assert actions.count("dicom.receive.stop") == 2
    assoc = [
        json.loads(str(e.new)) for e in desk.ws.oversight.audit_trail(desk.s)
        if e.action == "dicom.association"
    ]  # fmt: skip
    assert assoc and assoc[0]["calling_aet"] == "MODALITY1" and assoc[0]["received"] == 2
