"""Fixtures for intake tests: a workspace with a coordinator and a trial, and DICOM makers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scorer.workspace import UserSession, Workspace

COORD_PW = "Coord-pass-0002"


@dataclass
class Desk:
    """A coordinator's open workspace on a fresh database with trial T1 (W0, W52)."""

    ws: Workspace
    s: UserSession
    db: Path


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    db = tmp_path / "t.sqlite"
    ws = Workspace.initialize("ada", "Ada Admin", "Sunflower-Meadow-7", db=str(db))
    a = ws.accounts.login("ada", "Sunflower-Meadow-7")
    ws.accounts.add_user(a, "cora", "Cora Coordinator", "coordinator", "Temporary-pass-1")
    s = ws.accounts.login("cora", "Temporary-pass-1")
    ws.accounts.change_password(s, "Temporary-pass-1", COORD_PW)
    ws.trials.create_trial(s, "T1", "Trial", visits=[("W0", 0.0), ("W52", 52.0)])
    yield Desk(ws, s, db)
    ws.close()
