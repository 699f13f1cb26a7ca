"""Revision 0013 on a demo database made by the previous landed version (revision 0012): it
migrates with its trail intact, its images have no locator run (the locator runs at import,
and they came before it) and keep the positions they had, and registering the patients' films
across visits then proposes positions on them, audited, with the trail still verifying."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from scorer.demo import TRIAL, _read_accounts
from scorer.store.migrate import head_revision
from scorer.workspace import Workspace
from tests.behind import behind
from tests.store.old_demo import old_demo

LANDED_AT_0012 = "91c75f09729a080f9710ea595543fae7032e0b14"


@pytest.mark.slow
@pytest.mark.posix
def test_a_demo_of_the_version_before_0013_migrates_and_its_films_register_across_visits(
    tmp_path: Path,
) -> None:
    db = tmp_path / "demo" / "demo.sqlite"
    old_demo(tmp_path, db, LANDED_AT_0012)
    with behind(str(db), readonly=True) as con:
        assert con.rows("SELECT version_num FROM alembic_version") == [("0012",)]
        before = dict(con.rows("SELECT source, count(*) FROM joint_positions GROUP BY source"))
    assert before and set(before) == {"truth"}, before
    assert Workspace.migrate(db=str(db)) == ("0012", head_revision())
    pw = _read_accounts(db.parent / "demo-accounts.txt")
    ws = Workspace.open(db=str(db))
    try:
        assert ws.verify().ok
        coord = ws.accounts.login("coord", pw["coord"])
        checks = ws.joints.joint_checks(coord, TRIAL)
        assert checks and {c.located for c in checks} == {""}  # imported before the locator
        assert not any(c.unplaced for c in checks)  # every joint had its true position
        summary = ws.joints.register_visits(coord, TRIAL)
        assert summary.groups == 24 and not summary.problems, summary
        # Every film had its own (true) position: nothing is placed, each is compared.
        assert summary.placed == 0 and summary.proposed > 1000
        result = ws.verify()
        assert result.ok, result.errors[:3]
    finally:
        ws.close()
    with behind(str(db), readonly=True) as con:
        after = dict(con.rows("SELECT source, count(*) FROM joint_positions GROUP BY source"))
        distances = [d for (d,) in con.rows("SELECT distance_mm FROM joint_proposals")]
        audited = con.rows("SELECT count(*) FROM audit_events WHERE action = 'image.registered'")
    assert after == before
    assert audited == [(24,)]
    # The reference's true positions carried to the patient's other visits land near the true
    # positions there (the demo's films differ by a few degrees and millimetres).
    assert all(d is not None for d in distances)
    assert statistics.median(distances) < 1.5, statistics.median(distances)
