"""A small trial built through the facade, with reads whose totals are known exactly."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from scorer.core.methods import Area, get_method
from scorer.core.reads import AreaScore
from scorer.workspace import UserSession, Workspace

SVH = get_method("svh")
PASSWORD = "Correct-Horse-Battery-9"
#: Hand erosion areas graded 0-5 (no sides): grading k of them 1 makes a total of k.
HAND_ERO = [d.area for d in SVH.areas if d.feature == "ERO" and not d.sides]


def scores(total: int, base: int = 0) -> dict[Area, AreaScore]:
    """Every area 0, except the first ``total`` hand-erosion areas graded 1 (total = k)."""
    out = {
        d.area: AreaScore.from_sides([0, 0]) if d.sides else AreaScore.scored(0) for d in SVH.areas
    }
    for a in HAND_ERO[base : base + total]:
        out[a] = AreaScore.scored(1)
    return out


@dataclass
class Desk:
    """A workspace with an admin, a coordinator and any users added on the way."""

    ws: Workspace
    admin: UserSession
    coord: UserSession
    sessions: dict[str, UserSession] = field(default_factory=dict)

    def user(self, name: str, role: str) -> UserSession:
        self.ws.accounts.add_user(self.admin, name, name.title(), role, "Temporary-pass-0")
        s = self.ws.accounts.login(name, "Temporary-pass-0")
        self.ws.accounts.change_password(s, "Temporary-pass-0", PASSWORD)
        self.sessions[name] = s
        return s

    def sign(self, s: UserSession, code: str) -> None:
        self.ws.reading.sign_read(s, code, PASSWORD, username=None if s.signed_once else s.username)

    def freeze_sdc(self, trial: str, reason: str) -> float:
        """Freeze the trial's SDC as the coordinator, signed with the password (and the user
        ID at the session's first signature)."""
        s = self.coord
        return self.ws.adjudication.freeze_sdc(
            s, trial, reason, PASSWORD, username=None if s.signed_once else s.username
        )

    def patient_codes(self, trial: str) -> dict[str, str]:
        return {p.real_id: p.code for p in self.ws.trials.list_patients(self.coord, trial)}


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    ws = Workspace.initialize("ada", "Ada Admin", "Sunflower-Meadow-7", db=str(tmp_path / "d.db"))
    admin = ws.accounts.login("ada", "Sunflower-Meadow-7")
    d = Desk(ws, admin, admin)
    d.coord = d.user("cora", "coordinator")
    yield d
    ws.close()
