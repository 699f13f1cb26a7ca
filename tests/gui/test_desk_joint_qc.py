"""The desk's joint QC (issue 32): the Images page's Joints column and "Joints to check"
filter, and the viewer's line and markers for a film whose own position disagrees with where
registration to the patient's other visit puts the joint; saving a correction in the viewer
registers the patient's films again so the disagreement goes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from scorer.core.joints import JointPoint
from scorer.gui.desk import DeskWindow
from scorer.gui.sample_case import build_sample_workspace
from tests.gui.test_desk_viewer import grab, select_code


@pytest.fixture
def two_visits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    sample = build_sample_workspace(tmp_path / "trial", patients=1, visits=2)
    ws = sample.workspace
    coord = ws.accounts.login("cora", "Willow-Compass-2024")
    hands = [i for i in ws.images.list_images(coord, sample.trial) if "LH" in i.regions]
    truth = {str(f.path): f for f in sample.films}
    yield {"ws": ws, "coord": coord, "trial": sample.trial, "hands": hands, "truth": truth}
    ws.close()


def test_a_disagreement_is_listed_drawn_and_gone_once_corrected_in_the_viewer(
    qtbot: QtBot, two_visits: dict[str, Any]
) -> None:
    ws, coord, trial = two_visits["ws"], two_visits["coord"], two_visits["trial"]
    first, second = two_visits["hands"]
    truth = {
        p.joint: (p.x, p.y) for p in two_visits["truth"][second.source].joints if p.region == "LH"
    }
    # The second visit's film has LH MCP3 placed by hand 60 pixels (15 mm) off, and the first
    # visit's film is the reference (its own position corrected by hand too, where it is).
    first_truth = {
        p.joint: (p.x, p.y) for p in two_visits["truth"][first.source].joints if p.region == "LH"
    }
    ws.images.place_image_joints(
        coord, first.code, [JointPoint("LH", j, *first_truth[j], "fit") for j in first_truth]
    )
    x, y = truth["MCP3"]
    ws.images.place_image_joints(
        coord, second.code, [JointPoint("LH", "MCP3", x + 60, y, "dragged")]
    )
    ws.joints.register_visits(coord, trial)
    window = DeskWindow(ws, coord, trial)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: all(p.loaded_at is not None for p in window.pages), timeout=60000)
    page = window.images
    column = page.COLUMNS.index("Joints")
    rows = {page.table.item(r, 0).text(): r for r in range(page.table.rowCount())}
    assert "disagree" in page.table.item(rows[second.code], column).text()
    page.joint_filter.setCurrentIndex(page.joint_filter.findData("check"))
    assert second.code in {i.code for i in page.shown}
    assert "with joints to check" in page.status.text()
    page.joint_filter.setCurrentIndex(0)

    select_code(page.table, second.code)
    page.view_image()
    viewer = page.viewer
    assert viewer is not None
    qtbot.waitUntil(lambda: viewer.current.loaded, timeout=30000)
    film = viewer.current
    assert "LH MCP3" in film.qc_line.text() and "disagrees" in film.qc_line.text()
    assert first.code in film.qc_line.text()
    # The red line from the film's own position to the registered one is drawn.
    shot = film.view.grab().toImage()
    arr = np.frombuffer(shot.constBits(), np.uint8).reshape(shot.height(), shot.bytesPerLine())
    rgb = arr[:, : shot.width() * 4].reshape(shot.height(), shot.width(), 4)
    red = (rgb[..., 2] > 200) & (rgb[..., 1] < 90) & (rgb[..., 0] < 90)  # BGRA
    assert red.sum() > 20
    before = grab(film.view)

    # Corrected by dragging it to where it belongs, saved: registered again, it is gone.
    film.view.editor.move_joint(("LH", "MCP3"), x, y)
    film.save_joints()
    qtbot.waitUntil(
        lambda: "disagrees" not in film.qc_line.text() or "MCP3" not in film.qc_line.text(),
        timeout=60000,
    )
    assert "LH MCP3" not in film.qc_line.text()
    assert not np.array_equal(before, grab(film.view))
    checks = {c.image: c for c in ws.joints.joint_checks(coord, trial)}
    assert not [d for d in checks[second.code].disagreements if d.joint == "MCP3"]
    assert ws.verify().ok
