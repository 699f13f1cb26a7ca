"""Revision 0011 on a demo database made by the previous landed version (revision 0010): it
migrates, its old trail and flags verify as they were written, and from then on audit rows
name their session (covered by the MAC) and flags keep their visit and images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scorer.demo import TRIAL
from scorer.store.migrate import head_revision
from scorer.workspace import Workspace
from tests.behind import behind
from tests.store.test_projection import previous_version

#: The version that landed before revision 0011 (stop 36): its demo is at revision 0010.
LANDED_AT_0010 = "717adad"

OLD_FLAG = """
import sys
from scorer.demo import TRIAL, _read_accounts
from pathlib import Path
from scorer.workspace import Workspace
db = sys.argv[1]
pw = _read_accounts(Path(db).parent / "demo-accounts.txt")
ws = Workspace.open(db=db)
r = ws.accounts.login("reader1", pw["reader1"])
case = ws.worklists.worklist(r, TRIAL)[0].code
print(ws.reading.raise_flag(r, case, "raised before 0011"))
ws.close()
"""


@pytest.mark.slow
@pytest.mark.posix
def test_a_demo_of_the_version_before_0011_migrates_and_verifies(tmp_path: Path) -> None:
    old = previous_version(tmp_path / "previous", LANDED_AT_0010)
    db = tmp_path / "demo" / "demo.sqlite"
    env = {
        **os.environ,
        "PYTHONPATH": str(old),
        "QT_QPA_PLATFORM": "offscreen",
        "SCORER_DATA_DIR": str(tmp_path / "data"),
        "SCORER_CONFIG": str(tmp_path / "no-site-config.toml"),
    }
    env.pop("SCORER_DB", None)

    def old_code(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, *args],
            cwd=old,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return proc.stdout

    old_code("-m", "scorer", "demo", "--no-gui", "--db", str(db))
    old_flag = int(old_code("-c", OLD_FLAG, str(db)).split()[-1])
    with behind(str(db), readonly=True) as con:
        assert con.rows("SELECT version_num FROM alembic_version") == [("0010",)]
        rows_before = con.rows("SELECT count(*) FROM audit_events")[0][0]
    assert Workspace.migrate(db=str(db)) == ("0010", head_revision())
    from scorer.demo import _read_accounts

    pw = _read_accounts(db.parent / "demo-accounts.txt")
    ws = Workspace.open(db=str(db))
    try:
        result = ws.verify()
        assert result.ok, result.errors[:5] + [str(d) for d in result.differences[:5]]
        coord = ws.accounts.login("coord", pw["coord"])
        before = next(f for f in ws.coordination.flags(coord, TRIAL) if f.flag == old_flag)
        # A flag from before 0011 kept no visit or images: it says so by having none.
        assert (before.message, before.letter, before.visit, before.images) == (
            "raised before 0011",
            "",
            None,
            (),
        )
        reader = ws.accounts.login("reader1", pw["reader1"])
        case = ws.worklists.worklist(reader, TRIAL)[0].code
        films = [f.image for f in ws.images.case_images(reader, case)["A"]]
        new_flag = ws.reading.raise_flag(reader, case, "after 0011", visit="A", films=films)
        after = next(f for f in ws.coordination.flags(coord, TRIAL) if f.flag == new_flag)
        assert after.letter == "A" and len(after.images) == len(films) > 0
        result = ws.verify()
        assert result.ok, result.errors[:5]
    finally:
        ws.close()
    with behind(str(db), readonly=True) as con:
        old_rows = con.rows(f"SELECT session FROM audit_events WHERE seq <= {rows_before}")
        raised = con.rows(
            "SELECT session, new FROM audit_events WHERE action = 'flag.raise' ORDER BY seq"
        )
    assert {s for (s,) in old_rows} == {""}  # the rows before keep their MAC as written
    assert raised[-1][0] == reader.id and json.loads(raised[-1][1])["letter"] == "A"
    # The session is covered by the MAC: moving a row to another session is named.
    with behind(str(db)) as con:
        con.drop_append_only_triggers()
        con.execute(
            "UPDATE audit_events SET session = 'someone-else' WHERE seq = "
            "(SELECT max(seq) FROM audit_events WHERE action = 'flag.raise')"
        )
    ws = Workspace.open(db=str(db))
    try:
        result = ws.verify()
    finally:
        ws.close()
    assert not result.ok
    assert any("does not verify" in e for e in result.errors), result.errors
