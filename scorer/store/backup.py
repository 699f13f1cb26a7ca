"""Backing up and restoring an SQLite store: one zip, checked by row counts and the audit head.

:func:`backup` takes SQLite's online backup (a consistent copy while workstations keep
writing) into a zip with the receipts and ``backup.json``: schema revision, row counts of every
table, the audit and event chain heads, and where the HMAC key lives (its path and a
fingerprint, never the key itself: a backup must not let its holder forge the trail).

The chain heads are read from the snapshot itself, and the receipts it carries are those of
the receipts file up to those heads, ending with the heads themselves: a workstation appends
its receipt after its commit, so the file runs ahead of any snapshot taken while readers save
(and may lag behind it), and a copy of the whole file would make the restored database look
cut short.

:func:`restore` unpacks a backup to a database path that does not exist yet, and checks that
the restored file has the recorded revision, row counts and chain heads before it is renamed
into place; on any difference it removes everything it wrote (:func:`discard`) and says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from scorer.core.private_files import create_file, make_folder, replacing
from scorer.store.audit import CHAINED, chain_heads_query, named_heads, read_receipts

BACKUP_KIND = "scorer backup"
DB_NAME = "database.sqlite"
RECEIPTS_NAME = "receipts"
INFO_NAME = "backup.json"


class BackupError(RuntimeError):
    """A backup that cannot be made or restored, with the reason."""


def _tables(con: sqlite3.Connection) -> list[str]:
    rows = con.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name"
    ).fetchall()
    return [str(r[0]) for r in rows]


def _chain_heads(con: sqlite3.Connection, table: str) -> dict[str, dict[str, object]]:
    """Every chain's head of ``table`` by the chain's name: rows (its last place) and MAC."""
    has_link = any(str(r[1]) == "link" for r in con.execute(f"PRAGMA table_info({table})"))
    return named_heads(table, con.execute(chain_heads_query(table, has_link)))


def facts(path: Path, own: bool = False) -> dict[str, Any]:
    """Row counts, chain heads and schema revision of an SQLite store file. ``own``: a copy
    no one else opens (a snapshot, a file being restored), read as it is, so that SQLite
    makes no WAL or shared-memory file beside it."""
    mode = "mode=ro&immutable=1" if own else "mode=ro"
    con = sqlite3.connect(f"file:{path}?{mode}", uri=True)
    try:
        counts = {
            t: int(con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in _tables(con)
        }
        heads = {}
        for table in CHAINED:
            heads.update(_chain_heads(con, table))
        rev = con.execute("SELECT version_num FROM alembic_version").fetchone()
    finally:
        con.close()
    return {"revision": rev[0] if rev else None, "rows": counts, "heads": heads}


def backup(
    db_path: Path, receipts: Path, key_path: Path, out: Path, made_by: str, at: str
) -> dict[str, Any]:
    """Write the backup zip ``out`` of the store at ``db_path``; returns its ``backup.json``."""
    if out.exists():
        raise BackupError(f"{out} exists already: choose another file")
    # Read before the snapshot: every receipt here is of a commit the snapshot holds.
    earlier, _problems = read_receipts(receipts)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        copy = Path(tmp) / DB_NAME
        source = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        target = sqlite3.connect(copy)
        try:
            source.backup(target)  # SQLite's online backup: consistent while others write
        finally:
            target.close()
            source.close()
        info = {
            "kind": BACKUP_KIND,
            "made_by": made_by,
            "made_at": at,
            "source": str(db_path),
            "sha256": hashlib.sha256(copy.read_bytes()).hexdigest(),
            "key": {
                "path": str(key_path),
                "fingerprint": hashlib.sha256(key_path.read_bytes()).hexdigest()[:16]
                if key_path.exists()
                else None,
            },
            **facts(copy, own=True),
        }
        refuse_cut_tails(earlier, info["heads"])
        # The receipts of this snapshot, read after it was taken: every receipt written by
        # then up to its heads, none of the commits that came after it.
        kept = receipts_up_to(receipts, info["heads"], at)
        info["receipts"] = {
            "sha256": hashlib.sha256(kept).hexdigest(),
            "lines": kept.count(b"\n"),
        }
        # Owner-only (0600), whole or not at all.
        with replacing(out) as part, zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as z:
            z.write(copy, DB_NAME)
            z.writestr(RECEIPTS_NAME, kept)
            z.writestr(INFO_NAME, json.dumps(info, indent=2) + "\n")
    return info


def refuse_cut_tails(
    earlier: dict[str, list[tuple[int, str]]], heads: dict[str, dict[str, Any]]
) -> None:
    """Refuse to back up a snapshot whose chain is shorter than a receipt written before it
    was taken (``earlier``: the receipts file read before the snapshot, whose every commit the
    snapshot holds), or whose head differs from that place's receipt: its tail was cut (and
    perhaps written again). A backup would drop those receipts and launder the cut."""
    for name, entries in sorted(earlier.items()):
        head = heads.get(name, {"rows": 0, "mac": ""})
        rows, mac = int(head["rows"]), str(head["mac"])
        past = [n for n, _m in entries if n > rows]
        if past:
            raise BackupError(
                f"{name}: the receipts record {max(past)} rows but the database has {rows}: "
                "rows were removed from its audit trail. No backup was made; run `scorer audit "
                "verify` and find out what happened first"
            )
        if any(n == rows and m != mac for n, m in entries):
            raise BackupError(
                f"{name}: its last row differs from its receipt: the audit trail was cut and "
                "written again. No backup was made; run `scorer audit verify` first"
            )


def receipts_up_to(receipts: Path, heads: dict[str, Any], at: str) -> bytes:
    """The receipts file's lines up to the chain ``heads`` of a snapshot, then a receipt of
    each head not receipted yet (stamped ``at``): the receipts the snapshot's database has.

    A line past a head is a later commit's receipt and is left out; so is a last line still
    being appended (no newline yet). Every other line is kept as it is, unreadable ones too
    (verification reports them, as it would in the file itself)."""
    try:
        raw = receipts.read_bytes()
    except FileNotFoundError:
        raw = b""
    kept: list[bytes] = []
    receipted: set[tuple[str, int]] = set()
    for line in raw[: raw.rfind(b"\n") + 1].splitlines(keepends=True):
        parts = line.split()
        table = parts[0].decode("ascii", "replace") if parts else ""
        if len(parts) >= 3 and table in heads and parts[1].isdigit():
            seq = int(parts[1])
            if seq > int(heads[table]["rows"]):
                continue
            receipted.add((table, seq))
        kept.append(line)
    for table, h in heads.items():
        if h["rows"] and (table, int(h["rows"])) not in receipted:
            kept.append(f"{table} {h['rows']} {h['mac']} {at}\n".encode("ascii"))
    return b"".join(kept)


def _write_private(path: Path, data: bytes) -> None:
    """Write a restored file owner-only (0600), as every store file is created."""
    with os.fdopen(create_file(path), "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def read_info(archive: Path) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(archive) as z:
            info = json.loads(z.read(INFO_NAME))
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise BackupError(f"{archive} is not a scorer backup: {exc}") from exc
    if info.get("kind") != BACKUP_KIND:
        raise BackupError(f"{archive} is not a scorer backup")
    return dict(info)


def discard(db_path: Path, receipts: Path | None) -> list[str]:
    """Remove what a restore wrote: the database at ``db_path`` with its WAL, shared-memory
    and journal files, its part file, and ``receipts`` (None: the restore wrote none).
    Returns the names removed; a file that cannot be removed is a BackupError naming it."""
    part = _part(db_path)
    paths = [
        p.with_name(p.name + suffix)
        for p in (db_path, part)
        for suffix in ("", "-wal", "-shm", "-journal")
    ]
    if receipts is not None:
        paths.append(receipts)
    removed: list[str] = []
    stuck: list[str] = []
    for p in paths:
        if not os.path.lexists(p):
            # Not written (on a read-only file system unlinking a missing file fails with
            # EROFS, which would hide the real error behind "could not remove").
            continue
        try:
            p.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            stuck.append(f"{p} ({exc.strerror or exc})")
            continue
        removed.append(p.name)
    if stuck:
        raise BackupError(f"could not remove what the restore wrote: {', '.join(stuck)}")
    return removed


def _part(db_path: Path) -> Path:
    return db_path.with_name(f".{db_path.name}.restoring")


def restore(archive: Path, db_path: Path, receipts: Path) -> dict[str, Any]:
    """Unpack ``archive`` to ``db_path`` (which must not exist) and its receipts (nor they);
    check the restored store against the backup's record first. Returns the record. On any
    failure everything it wrote is removed, and the BackupError says so."""
    info = read_info(archive)
    if db_path.exists():
        raise BackupError(f"a database exists at {db_path}: restore to a new path")
    if receipts.exists():
        raise BackupError(f"a receipts file exists at {receipts}: restore to a new path")
    make_folder(db_path.parent)
    part = _part(db_path)
    wrote_receipts = False
    try:
        with zipfile.ZipFile(archive) as z:
            data = z.read(DB_NAME)
            saved_receipts = z.read(RECEIPTS_NAME) if RECEIPTS_NAME in z.namelist() else None
        recorded = info.get("receipts")
        if recorded is not None and (
            saved_receipts is None
            or hashlib.sha256(saved_receipts).hexdigest() != recorded["sha256"]
        ):
            raise BackupError("the backup's receipts do not match its record (SHA-256)")
        _write_private(part, data)
        if hashlib.sha256(part.read_bytes()).hexdigest() != info["sha256"]:
            raise BackupError("the backup's database does not match its record (SHA-256)")
        got = facts(part, own=True)
        for key in ("revision", "rows", "heads"):
            if got[key] != info[key]:
                raise BackupError(f"the restored database differs from the backup's {key}")
        if saved_receipts is not None:
            make_folder(receipts.parent)
            wrote_receipts = True
            _write_private(receipts, saved_receipts)
        os.replace(part, db_path)
    except (BackupError, OSError, sqlite3.Error, zipfile.BadZipFile, KeyError) as exc:
        removed = discard(db_path, receipts if wrote_receipts else None)
        said = f" (the restore removed what it wrote: {', '.join(removed)})" if removed else ""
        raise BackupError(f"{exc}{said}") from exc
    except BaseException:
        discard(db_path, receipts if wrote_receipts else None)
        raise
    return info
