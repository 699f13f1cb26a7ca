"""Backup and restore of the SQLite store: the restored copy has the same row counts and audit
head and verifies; a damaged backup or an existing target restores nothing; the key stays out
of the backup. A PostgreSQL store is backed up with the server's own tools (pg_dump), which
`scorer backup` says."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from scorer.cli import main
from scorer.store.backup import facts
from scorer.workspace import ScorerError, Workspace

SQLITE_ONLY = pytest.mark.parametrize("populated_copy", ["sqlite"], indirect=True)


@pytest.mark.posix  # the key file's owner-only mode is checked on POSIX systems
@SQLITE_ONLY
def test_backup_and_restore_keep_every_row_and_the_audit_head(
    populated_copy: Any, tmp_path: Path
) -> None:
    c = populated_copy
    admin = c.session_of_role("admin")
    before = facts(c.path)
    info = c.ws.database.backup(admin, tmp_path / "b.zip")
    assert info.to_dict()["rows"] == before["rows"] and info.to_dict()["heads"] == before["heads"]
    with zipfile.ZipFile(tmp_path / "b.zip") as z:
        assert set(z.namelist()) == {"database.sqlite", "receipts", "backup.json"}
        key = Path(info.key.path).read_bytes()
        assert all(key not in z.read(n) for n in z.namelist())  # never the key itself
    target = c.path.with_name("restored.sqlite")
    with pytest.raises(ScorerError, match="audit key is not at"):
        Workspace.restore(tmp_path / "b.zip", str(target))
    assert not target.exists()
    # The administrator puts the key in place from its secured copy, then restores.
    placed = target.with_name("restored.audit-key")
    placed.write_bytes(key)
    placed.chmod(0o644)
    with pytest.raises(ScorerError, match="nothing was restored: .*owner-only"):
        Workspace.restore(tmp_path / "b.zip", str(target))
    placed.chmod(0o600)
    restored = Workspace.restore(tmp_path / "b.zip", str(target))
    assert restored.images == restored.images_missing == 0  # the populated store has none
    after = facts(target)
    # The restore appends its own audit row; everything before it is as backed up.
    assert {k: v for k, v in after["rows"].items() if k != "audit_events"} == {
        k: v for k, v in info.rows.items() if k != "audit_events"
    }
    assert after["rows"]["audit_events"] == info.rows["audit_events"] + 1
    assert restored.record.to_dict()["heads"]["audit_events"] == before["heads"]["audit_events"]
    ws = Workspace.open(str(target))
    try:
        assert ws.verify().ok
    finally:
        ws.close()


@SQLITE_ONLY
def test_a_damaged_backup_or_an_existing_target_restores_nothing(
    populated_copy: Any, tmp_path: Path
) -> None:
    c = populated_copy
    c.ws.database.backup(c.session_of_role("admin"), tmp_path / "b.zip")
    with pytest.raises(ScorerError, match="exists"):
        Workspace.restore(tmp_path / "b.zip", str(c.path))
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(tmp_path / "b.zip") as src, zipfile.ZipFile(damaged, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "database.sqlite":
                data = data[:-4096] + bytes(4096)
            dst.writestr(name, data)
    target = tmp_path / "new" / "restored.sqlite"
    target.parent.mkdir()
    key = Path(c.ws.store.location.key_path).read_bytes()
    target.with_name("restored.audit-key").write_bytes(key)
    target.with_name("restored.audit-key").chmod(0o600)
    with pytest.raises(ScorerError, match="nothing was restored"):
        Workspace.restore(damaged, str(target))
    assert not target.exists() and not list(target.parent.glob("*restoring*"))
    assert not target.with_name("restored.receipts").exists()
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["restore", str(tmp_path / "nothing.zip"), "--db", str(target)]) == 1
    assert "not a scorer backup" in err.getvalue()


@pytest.mark.parametrize("populated_copy", ["postgresql"], indirect=True)
def test_a_server_database_is_backed_up_by_the_servers_tools(
    populated_copy: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = populated_copy
    audit_before = c.sql("SELECT count(*) FROM audit_events")
    with pytest.raises(ScorerError, match="scorer pg-backup --to FOLDER"):
        c.ws.database.backup(c.session_of_role("admin"), tmp_path / "b.zip")
    assert not (tmp_path / "b.zip").exists()
    assert c.sql("SELECT count(*) FROM audit_events") == audit_before


@pytest.mark.posix
@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="mounting a tmpfs needs root"
)
@SQLITE_ONLY
def test_a_restore_onto_a_disk_that_fills_up_leaves_nothing_half_written(
    populated_copy: Any, tmp_path: Path
) -> None:
    """A real small disk (tmpfs) at sizes around what the restore needs: each attempt either
    restores a database that verifies, or says nothing was restored and leaves only the key
    (outsider's finding: a disk that filled late left a half-restored database and a
    traceback)."""
    c = populated_copy
    info = c.ws.database.backup(c.session_of_role("admin"), tmp_path / "b.zip")
    key = Path(info.key.path).read_bytes()
    size = c.path.stat().st_size
    outcomes: list[str] = []
    late = 0  # refusals after the database was unpacked: the cases that must clean up
    mnt = tmp_path / "disk"
    mnt.mkdir()
    for kib in range(size // 1024, 5 * size // 2048, max(4, size // 1024 // 64)):
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(mnt)], check=True
        )
        try:
            (mnt / "r.audit-key").write_bytes(key)
            (mnt / "r.audit-key").chmod(0o600)
            try:
                Workspace.restore(tmp_path / "b.zip", str(mnt / "r.sqlite"))
            except ScorerError as exc:
                assert str(exc).startswith("nothing was restored: "), exc
                assert sorted(p.name for p in mnt.iterdir()) == ["r.audit-key"], exc
                outcomes.append("refused")
                late += "the restore removed what it wrote" in str(exc)
            else:
                ws = Workspace.open(str(mnt / "r.sqlite"))
                try:
                    assert ws.verify().ok
                finally:
                    ws.close()
                outcomes.append("restored")
        finally:
            subprocess.run(["umount", "-l", str(mnt)], check=False)
    assert "refused" in outcomes and outcomes[-1] == "restored", outcomes
    assert late, "no attempt failed after the database was unpacked: widen the sizes"


@pytest.mark.posix
@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="mounting a tmpfs needs root"
)
@SQLITE_ONLY
def test_a_restore_onto_a_read_only_disk_says_so(populated_copy: Any, tmp_path: Path) -> None:
    """The real cause, not "could not remove" files that were never written (outsider's
    finding)."""
    c = populated_copy
    info = c.ws.database.backup(c.session_of_role("admin"), tmp_path / "b.zip")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], check=True)
    try:
        (mnt / "r.audit-key").write_bytes(Path(info.key.path).read_bytes())
        (mnt / "r.audit-key").chmod(0o600)
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        with pytest.raises(ScorerError, match="nothing was restored: .*Read-only file system"):
            Workspace.restore(tmp_path / "b.zip", str(mnt / "r.sqlite"))
        assert sorted(p.name for p in mnt.iterdir()) == ["r.audit-key"]
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
