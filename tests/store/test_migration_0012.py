"""Revision 0012 on a demo database made by the previous landed version (revision 0010): it
migrates, every row of its trail stays in the centre chain with the MAC it was written with,
and from then on each trial's work goes into the trial's own chain, with its own receipts,
while accounts stay in the centre's; a row moved between chains, or a trial chain's tail cut,
is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from scorer.demo import TRIAL, _read_accounts
from scorer.store.audit import read_receipts
from scorer.store.migrate import head_revision
from scorer.workspace import Workspace
from tests.behind import behind
from tests.store.old_demo import old_demo
from tests.store.test_migration_0011 import LANDED_AT_0010


def _old_demo(tmp_path: Path, db: Path) -> None:
    old_demo(tmp_path, db, LANDED_AT_0010)


def _verify(db: Path) -> tuple[bool, list[str], dict[str, int]]:
    ws = Workspace.open(db=str(db))
    try:
        result = ws.verify()
    finally:
        ws.close()
    heads = {name: h.seq for name, h in result.heads.items()}
    return result.ok, result.errors + [str(d) for d in result.differences[:5]], heads


@pytest.mark.slow
@pytest.mark.posix
def test_a_demo_of_the_version_before_0012_migrates_into_chains_per_trial(
    tmp_path: Path,
) -> None:
    db = tmp_path / "demo" / "demo.sqlite"
    _old_demo(tmp_path, db)
    with behind(str(db), readonly=True) as con:
        assert con.rows("SELECT version_num FROM alembic_version") == [("0010",)]
        old_rows = con.rows("SELECT count(*) FROM audit_events")[0][0]
        old_events = con.rows("SELECT count(*) FROM events")[0][0]
    assert Workspace.migrate(db=str(db)) == ("0010", head_revision())
    ok, errors, heads = _verify(db)
    assert ok, errors
    # Every row before stays in the centre chain, in its place (its seq), as it was written.
    assert heads["audit_events"] >= old_rows and heads["events"] >= old_events
    assert not any("/" in name for name in heads), heads

    pw = _read_accounts(db.parent / "demo-accounts.txt")
    ws = Workspace.open(db=str(db))
    try:
        reader = ws.accounts.login("reader1", pw["reader1"])
        case = ws.worklists.worklist(reader, TRIAL)[0].code
        ws.reading.open_case(reader, case)
        ws.reading.raise_flag(reader, case, "after 0012", visit="A")
    finally:
        ws.close()
    ok, errors, heads = _verify(db)
    assert ok, errors
    with behind(str(db), readonly=True) as con:
        trial_id = con.rows("SELECT id FROM trials WHERE code = ?", (TRIAL,))[0][0]
        events = con.rows(f"SELECT chain, kind FROM events WHERE seq > {old_events}")
    # The log-in is the centre's; opening the case is the trial's.
    assert {c for c, k in events if k == "login"} == {0}
    assert {c for c, k in events if k == "case.opened"} == {trial_id}
    trial_chain = f"audit_events/{trial_id}"
    assert heads[trial_chain] >= 2 and heads[f"events/{trial_id}"] >= 1
    with behind(str(db), readonly=True) as con:
        rows = con.rows("SELECT chain, link, action FROM audit_events ORDER BY seq")
    old, new = rows[:old_rows], rows[old_rows:]
    assert {(c, link) for c, link, _a in old} == {(0, None)}
    in_trial = [link for c, link, _a in new if c == trial_id]
    assert in_trial == list(range(1, len(in_trial) + 1))  # the trial's chain starts at 1
    assert any(c == trial_id and a == "flag.raise" for c, _l, a in new)
    receipts, problems = read_receipts(db.parent / "demo.receipts")
    assert not problems and receipts.get(trial_chain), receipts.keys()

    # A row moved from the trial's chain into the centre's is named.
    with behind(str(db)) as con:
        con.drop_append_only_triggers()
        con.execute(
            "UPDATE audit_events SET chain = 0 WHERE seq = (SELECT max(seq) FROM audit_events "
            f"WHERE chain = {trial_id})"
        )
    ok, errors, _ = _verify(db)
    assert not ok and any(trial_chain in e or "audit_events:" in e for e in errors), errors
    with behind(str(db)) as con:
        con.drop_append_only_triggers()
        con.execute(
            f"UPDATE audit_events SET chain = {trial_id} WHERE seq = (SELECT max(seq) FROM "
            f"audit_events WHERE link = {heads[trial_chain]} AND chain = 0)"
        )
    ok, errors, _ = _verify(db)
    assert ok, errors
    # The trial chain's tail cut (its last commit's rows deleted): its receipt names it.
    with behind(str(db)) as con:
        con.drop_append_only_triggers()
        con.execute(f"DELETE FROM audit_events WHERE chain = {trial_id} AND link > 1")
        con.execute(f"DELETE FROM events WHERE chain = {trial_id}")
    ok, errors, _ = _verify(db)
    assert not ok and any(f"{trial_chain}: the receipts record" in e for e in errors), errors
