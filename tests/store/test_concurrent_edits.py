"""Two workstations editing the same read at once (issue 13): no update is ever lost, and
every conflict is reported with the current value. Run on SQLite and on PostgreSQL.

Two processes log in as the same reader and, many times each, read an area's stored value,
then change it believing that value is still there (``expected``). Afterwards the audit
trail, which records each change's old value as stored at commit, must show for every change
a process reported as saved exactly the old value that process believed in — a lost update
would show another — and every attempt is either a saved change or a reported conflict.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scorer.core.methods import get_method
from scorer.workspace import Workspace
from tests.pg import PgServer, pg_server  # noqa: F401  (the fixture)

SVH = get_method("svh")
AREA = SVH.areas[0].area  # LH MCP1 ERO, 0..5
REPO = Path(__file__).resolve().parents[2]
ADMIN_PW = "Sunflower-Meadow-7"
READER_PW = "Tulip-Garden-2024"

CHILD = f"""
import json, sys
from scorer.core.methods import get_method
from scorer.core.reads import AreaScore
from scorer.workspace import Conflict, Workspace
url, code, step, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
area = get_method("svh").areas[0].area
ws = Workspace.open(db=url)
s = ws.accounts.login("rita", "{READER_PW}")
print("ready", flush=True)
sys.stdin.readline()
for i in range(n):
    seen = ws.reading.get_read(s, code).scores.get(area)
    old = None if seen is None else seen.score
    new = AreaScore.scored(((old or 0) + step) % 6)
    try:
        ws.reading.set_score(s, code, area, new, expected={{area: seen}})
        print(json.dumps({{"saved": [old, new.score]}}), flush=True)
    except Conflict as exc:
        now = exc.current.get(area)
        now = None if now is None else now.score
        print(json.dumps({{"conflict": [old, now, str(exc)]}}), flush=True)
ws.close()
print("done", flush=True)
"""


def build(url: str) -> str:
    """A trial with one patient, reader rita's case opened; returns her first read's code."""
    ws = Workspace.initialize("ada", "Ada Admin", ADMIN_PW, db=url)
    admin = ws.accounts.login("ada", ADMIN_PW)
    for name, role, pw in (
        ("cora", "coordinator", "Willow-Compass-2024"),
        ("rita", "reader", READER_PW),
    ):
        ws.accounts.add_user(admin, name, name.title(), role, "Temporary-pass-0")
        s = ws.accounts.login(name, "Temporary-pass-0")
        ws.accounts.change_password(s, "Temporary-pass-0", pw)
    coord = ws.accounts.login("cora", "Willow-Compass-2024")
    ws.trials.create_trial(coord, "T1", visits=[("W0", 0.0), ("W24", 24.0)])
    ws.trials.add_patient(coord, "T1", "HOSP-0001")
    ws.worklists.assign_reader(coord, "T1", "rita")
    ws.worklists.generate_worklists(coord, "T1")
    rita = ws.accounts.login("rita", READER_PW)
    case = ws.worklists.worklist(rita, "T1")[0].code
    code = str(next(iter(ws.reading.open_case(rita, case).reads.values())))
    ws.close()
    return code


@pytest.fixture(params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SCORER_CONFIG", str(tmp_path / "no-config.toml"))
    if request.param == "sqlite":
        return str(tmp_path / "trial.sqlite")
    server: PgServer = request.getfixturevalue("pg_server")
    return server.new_database()


def test_two_workstations_never_lose_an_update(database: str) -> None:
    code = build(database)
    n = 120
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, database, code, str(step), str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for step in (1, 2)
    ]
    for c in children:
        assert c.stdout is not None and c.stdout.readline().strip() == "ready"
    for c in children:
        assert c.stdin is not None
        c.stdin.write("go\n")
        c.stdin.flush()
    saved: list[tuple[Any, Any]] = []
    conflicts: list[list[Any]] = []
    for c in children:
        out, err = c.communicate(timeout=600)
        assert c.returncode == 0 and out.strip().endswith("done"), err
        for line in out.splitlines():
            if line.startswith("{"):
                rec = json.loads(line)
                if "saved" in rec:
                    saved.append(tuple(rec["saved"]))
                else:
                    conflicts.append(rec["conflict"])
    assert len(saved) + len(conflicts) == 2 * n  # every attempt saved or reported
    ws = Workspace.open(db=database)
    ws_admin = ws.accounts.login("ada", ADMIN_PW)
    trail = [
        r
        for r in ws.oversight.audit_trail(ws_admin)
        if r.action == "score.set" and r.entity_id == code
    ]
    assert ws.verify().ok
    ws.close()
    stored = []
    for r in trail:
        old = json.loads(r.old) if r.old else {}
        stored.append((old.get("score"), json.loads(r.new)["score"]))
    # Each reported save is one audited change whose stored old value is what the process
    # believed: no change was made over a value its writer had not seen.
    assert sorted(saved, key=str) == sorted(stored, key=str)
    # The audited values form one unbroken chain: each change starts where the last ended.
    for (_, before), (after, _) in itertools.pairwise(stored):
        assert before == after
    # The two really raced, and each conflict named the value that was there instead.
    assert conflicts, "the two processes never overlapped"
    for believed, now, message in conflicts:
        assert now != believed and "changed on another workstation" in message
        assert f"is now {now}" in message
