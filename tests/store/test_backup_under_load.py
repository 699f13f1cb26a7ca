"""Backups taken while readers save restore every time (issue 27 item 3), and a restore that
fails midway leaves nothing behind.

Four writer processes log in as a reader and save scores continuously on the same SQLite file
while the test takes 20 online backups. Each receipt is appended after its commit, so the
receipts file runs ahead of any snapshot (and may lag behind it); a backup must carry exactly
the receipts up to the heads of the snapshot it took. Every backup is restored to a new path:
the restore's own check of the trail passes (no rows "removed"), and the restored database
verifies again when opened.

Sizing (2 busy cores): the writers' log-ins (argon2) take a few seconds, the 20 backups of the
small populated database about as long; each writer stops by itself when the test's stop file
appears, or after ``WRITER_LIMIT_S`` whatever happens.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from scorer.store.audit import chain_name, read_receipts
from scorer.store.backup import facts
from scorer.workspace import ScorerError, Workspace

REPO = Path(__file__).resolve().parents[2]
SQLITE_ONLY = pytest.mark.parametrize("populated_copy", ["sqlite"], indirect=True)

WRITERS = 4
BACKUPS = 20
WRITER_LIMIT_S = 75.0  # a writer stops by itself after this long, stop file or not

WRITER = """
import pathlib, sys, time
from scorer.core.methods import get_method
from scorer.core.reads import AreaScore
from scorer.workspace import Workspace
db, user, password, code, k, limit, stop = sys.argv[1:8]
k, limit, stop = int(k), float(limit), pathlib.Path(stop)
areas = get_method("svh").areas[3:]  # the "partial" read has the first three already
mine = [d for i, d in enumerate(areas) if i % 4 == k][:5]  # each writer its own areas
ws = Workspace.open(db=db)
s = ws.accounts.login(user, password)
print("ready", flush=True)
end = time.monotonic() + limit
saved = 0
while time.monotonic() < end and not stop.exists():
    d = mine[saved % len(mine)]
    value = AreaScore.scored((saved // len(mine) + 1) % (d.max + 1))
    if d.sides:
        value = AreaScore.from_sides([(saved // len(mine) + 1) % 2, 0])
    ws.reading.set_score(s, code, d.area, value)
    saved += 1
ws.close()
print(f"saved {saved}", flush=True)
"""


def _place_key(key: bytes, target: Path) -> None:
    """The administrator puts the audit key beside the new database (backups never hold it)."""
    placed = target.with_name(target.stem + ".audit-key")
    placed.write_bytes(key)
    placed.chmod(0o600)


@pytest.mark.posix  # four processes writing one SQLite file; the key's owner-only mode
@SQLITE_ONLY
def test_twenty_backups_taken_while_four_readers_save_all_restore_and_verify(
    populated_copy: Any, tmp_path: Path
) -> None:
    c = populated_copy
    admin = c.session_of_role("admin")
    code = c.read("reader1", "partial")
    # The readers' saves go into their trial's audit chain; each backup's own audit row into
    # the centre's.
    ((trial,),) = c.sql("SELECT id FROM trials WHERE code = ?", (c.trial,))
    scores = chain_name("audit_events", int(trial))
    stop = tmp_path / "stop"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.monotonic()
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER,
                str(c.path),
                "reader1",
                c.password("reader1"),
                code,
                str(k),
                str(WRITER_LIMIT_S),
                str(stop),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for k in range(WRITERS)
    ]
    archives: list[Path] = []
    heads: list[int] = []
    ahead = 0
    try:
        for w in writers:
            assert w.stdout is not None
            line = w.stdout.readline().strip()
            assert line == "ready", (line, w.stderr.read() if w.stderr else "")
        for i in range(BACKUPS):
            time.sleep(0.05)  # let the writers commit (and receipt) between backups
            out = tmp_path / f"b{i:02d}.zip"
            record = c.ws.database.backup(admin, out)
            archives.append(out)
            heads.append(record.heads[scores].rows)
            receipts, _ = read_receipts(c.receipts_path)
            ahead += any(s > heads[-1] for s, _ in receipts[scores])
            assert all(w.poll() is None for w in writers), "a writer stopped early"
    finally:
        stop.touch()
        results = [w.communicate(timeout=120) for w in writers]
    for w, (_, stderr) in zip(writers, results, strict=True):
        assert w.returncode == 0, stderr
    saved = [int(out.split()[-1]) for out, _ in results]
    assert all(n > 0 for n in saved), saved
    # The readers really saved during the backups: their trial's audit head moved between
    # every two backups (a backup's own audit row is in the centre's chain).
    assert all(b > a for a, b in itertools.pairwise(heads)), heads
    # Readers' commits landed after a snapshot while its backup was being made (receipts of
    # the trial's chain past the snapshot's head): the receipts file ran ahead of the
    # snapshot, the race a backup must not copy.
    assert ahead, "no reader committed while a backup was being taken"

    key = c.key_path.read_bytes()
    for i, archive in enumerate(archives):
        target = tmp_path / f"restored-{i:02d}" / "populated.sqlite"
        target.parent.mkdir()
        _place_key(key, target)
        restored = Workspace.restore(archive, str(target))  # raises on rows "removed"
        with zipfile.ZipFile(archive) as z:
            info = json.loads(z.read("backup.json"))
            kept, problems = read_receipts_text(z.read("receipts").decode("ascii"))
        recorded = info["heads"]
        assert {"audit_events", scores, "events"} <= set(recorded), recorded
        assert {n: h.rows for n, h in restored.record.heads.items()} == {
            n: h["rows"] for n, h in recorded.items()
        }
        # The backup's receipts end exactly at the snapshot's heads (of every chain), never
        # past them.
        for name, h in recorded.items():
            assert max(s for s, _ in kept[name]) == h["rows"], (i, name)
            assert dict(kept[name])[h["rows"]] == h["mac"], (i, name)
        assert not problems
        ws = Workspace.open(str(target))
        try:
            result = ws.verify()
            assert result.ok, (i, result.errors)
            assert not [w for w in result.warnings if "removed" in w or "behind" in w], i
        finally:
            ws.close()
        # The restore's own audit row (the centre's) is the only row added.
        after = facts(target)
        assert after["heads"]["audit_events"]["rows"] == recorded["audit_events"]["rows"] + 1
        assert after["heads"][scores] == recorded[scores]
        audit_rows = sum(h["rows"] for n, h in recorded.items() if n.startswith("audit_events"))
        assert after["rows"]["audit_events"] == audit_rows + 1
    assert time.monotonic() - started < 150


def read_receipts_text(text: str) -> tuple[dict[str, list[tuple[int, str]]], list[str]]:
    """:func:`read_receipts` of a receipts file's text."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "receipts"
        p.write_text(text, encoding="ascii")
        return read_receipts(p)


def _rewrite(archive: Path, out: Path, change: dict[str, bytes]) -> None:
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, change.get(name, src.read(name)))


@pytest.mark.posix  # file modes, and what is left in the folder
@SQLITE_ONLY
@pytest.mark.parametrize("failure", ["receipts", "key", "database"])
def test_a_restore_failing_midway_leaves_no_file_behind(
    populated_copy: Any, tmp_path: Path, failure: str
) -> None:
    c = populated_copy
    good = tmp_path / "b.zip"
    c.ws.database.backup(c.session_of_role("admin"), good)
    with zipfile.ZipFile(good) as z:
        info = json.loads(z.read("backup.json"))
        receipts = z.read("receipts").decode("ascii")
        db = z.read("database.sqlite")
    key = c.key_path.read_bytes()
    bad = tmp_path / "bad.zip"
    if failure == "receipts":
        # A receipt of the audit head with another MAC, and the record's digest of the
        # receipts made to match: caught by the verification that runs once the database
        # and receipts are unpacked.
        h = info["heads"]["audit_events"]
        forged = f"audit_events {h['rows']} {'f' * 64} {info['made_at']}\n"
        changed = (receipts + forged).encode("ascii")
        info["receipts"]["sha256"] = hashlib.sha256(changed).hexdigest()
        _rewrite(
            good,
            bad,
            {"receipts": changed, "backup.json": json.dumps(info).encode("utf-8")},
        )
    elif failure == "key":
        # Another key, and a backup record that does not say which key it needs: the
        # mismatch shows only when the unpacked trail is verified.
        key = bytes.fromhex("ab" * 32).hex().encode("ascii") + b"\n"
        info["key"]["fingerprint"] = None
        _rewrite(good, bad, {"backup.json": json.dumps(info).encode("utf-8")})
    else:
        # The database member cut short: caught by its SHA-256 before anything is renamed.
        _rewrite(good, bad, {"database.sqlite": db[:-4096] + bytes(4096)})
    target = tmp_path / "new" / "populated.sqlite"
    target.parent.mkdir()
    _place_key(key, target)
    before = sorted(p.name for p in target.parent.iterdir())
    with pytest.raises(ScorerError, match="nothing was restored") as exc:
        Workspace.restore(bad, str(target))
    if failure != "database":
        assert "removed" in str(exc.value), str(exc.value)
    assert sorted(p.name for p in target.parent.iterdir()) == before, str(exc.value)
    # And the good backup still restores to the same path afterwards.
    if failure != "key":
        Workspace.restore(good, str(target))
        modes = {p.name: p.stat().st_mode & 0o777 for p in target.parent.iterdir()}
        assert all(m == 0o600 for m in modes.values()), modes
