"""The workstation over the reading-centre server: the real ``scorer server`` process on
loopback, the workstation's windows on a RemoteWorkspace with a data folder of its own (no
database URL, no key). A reader logs in, the reading window shows the case with its films
fetched from the server, keys save scores; the server goes away mid-case: the window says so,
keeps the entry waiting and sends it again once the server is back, losing nothing. A monitor's
window verifies the trail on the server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from scorer.client.remote import RemoteWorkspace
from scorer.gui.monitor import MonitorWindow
from scorer.gui.reading import ReadingWindow
from scorer.gui.sample_case import SAMPLE_READER, SAMPLE_READER_PASSWORD, build_sample_workspace
from scorer.gui.workstation import Workstation
from tests.gui.test_reading_session import type_keys, wait_saved
from tests.server.test_over_the_wire import start, stop

pytestmark = [pytest.mark.posix, pytest.mark.slow]
MONITOR = ("mona", "Monitor-Lantern-77")


class Served:
    def __init__(self, db: str, env: dict[str, str]) -> None:
        self.db = db
        self.env = env
        self.proc, self.url, self.cert = start(db, env)
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        stop(self.proc)

    def start_again(self) -> None:
        self.proc, _, _ = start(self.db, self.env, port=self.port)


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    server_data = tmp_path / "server-data"
    monkeypatch.setenv("SCORER_DATA_DIR", str(server_data))
    monkeypatch.setenv("SCORER_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.delenv("SCORER_DB", raising=False)
    sample = build_sample_workspace(tmp_path / "trial", patients=2, pixel_mm=1.0)
    ws = sample.workspace
    admin = ws.accounts.login("ada", "Sunflower-Meadow-7")
    ws.accounts.add_user(admin, MONITOR[0], "Mona Monitor", "monitor", "Temporary-pass-9")
    ws.accounts.logout(admin)
    mona = ws.accounts.login(MONITOR[0], "Temporary-pass-9")
    ws.accounts.change_password(mona, "Temporary-pass-9", MONITOR[1])
    ws.accounts.logout(mona)
    db = ws.store.location.sqlite_path
    ws.close()
    env = dict(os.environ)
    server = Served(str(db), env)
    # From here on this process is the workstation: a data folder of its own.
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "station"))
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            server.stop()


def _log_in(qtbot: QtBot, station: Workstation, password: str) -> None:
    station.start()
    login = station.login_dialog
    assert login is not None
    qtbot.addWidget(login)
    QTest.keyClicks(login.password, password)
    QTest.keyClick(login.password, Qt.Key.Key_Return)


def test_a_reader_scores_through_the_server_and_a_server_that_goes_away_loses_nothing(
    qtbot: QtBot, served: Served, tmp_path: Path
) -> None:
    remote = RemoteWorkspace.open(served.url, cafile=str(served.cert))
    station = Workstation(remote, username=SAMPLE_READER)
    opened: list[ReadingWindow] = []
    station.readingOpened.connect(opened.append)
    _log_in(qtbot, station, SAMPLE_READER_PASSWORD)
    qtbot.waitUntil(lambda: bool(opened), timeout=30000)
    window = opened[0]
    qtbot.waitUntil(
        lambda: window.model is not None and window.case_view.case is not None, timeout=30000
    )
    # The films came over HTTPS into the workstation's own folder.
    films = list((tmp_path / "station").rglob("*.dcm"))
    assert films and all(f.stat().st_mode & 0o077 == 0 for f in films)
    assert not any((tmp_path / "station").rglob("*.sqlite"))
    model = window.model
    assert model is not None
    first = (model.reads[model.current_letter], model.current_area)
    type_keys(window, "1")
    wait_saved(qtbot, window)
    second = (model.reads[model.current_letter], model.current_area)

    served.stop()
    away: list[str] = []
    window.writer.unavailable.connect(away.append)
    type_keys(window, "2")
    qtbot.waitUntil(lambda: bool(away), timeout=30000)
    assert window.writer.pending_count == 1 and model.failed == 0
    assert "Not saved yet" in window.statusBar().currentMessage()
    back: list[bool] = []
    window.writer.reconnected.connect(lambda: back.append(True))  # before it can come
    served.start_again()
    qtbot.waitUntil(lambda: bool(back), timeout=60000)
    wait_saved(qtbot, window)
    # Both entries are on the server: the one saved before and the one sent again.
    s = remote.accounts.login(SAMPLE_READER, SAMPLE_READER_PASSWORD)
    for (read, area), value in ((first, 1), (second, 2)):
        assert remote.reading.get_read(s, read).scores[area].score == value
    remote.accounts.logout(s)
    window.close()
    remote.close()


def test_a_monitor_verifies_the_trail_on_the_server(qtbot: QtBot, served: Served) -> None:
    remote = RemoteWorkspace.open(served.url, cafile=str(served.cert))
    station = Workstation(remote, username=MONITOR[0])
    opened: list[MonitorWindow] = []
    station.monitorOpened.connect(opened.append)
    _log_in(qtbot, station, MONITOR[1])
    qtbot.waitUntil(lambda: bool(opened), timeout=30000)
    window = opened[0]
    qtbot.waitUntil(lambda: "verifies" in window.verification.text(), timeout=60000)
    assert "does not verify" not in window.verification.text().lower()
    window.close()
    remote.close()


def test_the_desks_receive_page_runs_the_servers_receiver(qtbot: QtBot, served: Served) -> None:
    """Over the server the Receive page starts the server's receiver (not one in this
    process), shows what dcmtk's storescu sent to it, and stops it."""
    import shutil
    import subprocess

    from scorer.gui.desk import DeskWindow

    remote = RemoteWorkspace.open(served.url, cafile=str(served.cert))
    coord = remote.accounts.login("cora", "Willow-Compass-2024")
    window = DeskWindow(remote, coord, "DEMO-RA")
    qtbot.addWidget(window)
    window.show()
    page = window.receive
    window.tabs.setCurrentWidget(page)
    qtbot.waitUntil(lambda: page.loaded_at is not None, timeout=30000)
    page.host.setText("127.0.0.1")
    page.port.setValue(0)
    page.allow.setText("TESTSCU")
    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.status.text().startswith("The server receives"), timeout=30000)
    assert page.receiver is None  # nothing listens in this process
    state = page.remote_state
    assert state is not None
    film = Path(__file__).resolve().parents[2] / "sample_images" / "DEMO-101" / "W0-feet.dcm"
    storescu = shutil.which("storescu")
    assert storescu
    sent = subprocess.run(
        [storescu, "-xw", "-aet", "TESTSCU", "-aec", "SCORER", "127.0.0.1", str(state["port"]),
         str(film)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    qtbot.waitUntil(lambda: page.table.rowCount() == 1, timeout=30000)
    assert page.table.item(0, 1).text() == "TESTSCU"
    qtbot.mouseClick(page.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.status.text().startswith("Not receiving"), timeout=30000)
    assert page.start_button.isEnabled()
    window.close()
    remote.accounts.logout(coord)
    remote.close()
