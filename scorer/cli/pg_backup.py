"""Backups of a reading centre's PostgreSQL database, on the server's host: pg-backup (run by
a timer, resources/deploy/scorer-backup.timer) and pg-restore (into an empty database, then
the audit trail verified).

A backup is a folder ``scorer-YYYYMMDDTHHMMSSZ`` holding ``database.dump`` (pg_dump's custom
format, taken in a snapshot exported by :mod:`scorer.store.pg_snapshot`), ``receipts`` (the
receipts file up to that snapshot's chain heads, as an SQLite backup keeps them) and
``manifest.json`` (when, the schema revision, every table's row count, the chain heads, the
SHA-256 of both files and the audit key's fingerprint, never the key). It is written under a
hidden name and renamed when whole, so a folder with that name is always a complete backup.
pg_dump and pg_restore are PostgreSQL's own client tools (Debian: postgresql-client), run here
and nowhere in scorer's core.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from scorer.cli.output import EXIT_ERROR, EXIT_OK, EXIT_USAGE, err
from scorer.cli.registry import Opt, command

KIND = "scorer postgresql backup"
DUMP = "database.dump"
RECEIPTS = "receipts"
MANIFEST = "manifest.json"
#: A finished backup's folder name (a backup being written has a hidden name).
NAME = re.compile(r"^scorer-(\d{8}T\d{6}Z)$")


class BackupFailed(Exception):
    """A backup or restore that cannot go on, with the reason for the administrator."""


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupFailed(f"{name} is not installed: apt-get install postgresql-client")
    return found


def _run(argv: list[str], password: str | None) -> str:
    """Run a PostgreSQL client tool, never prompting (a timer has no one to answer)."""
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = password  # from the URL: kept off the command line
    done = subprocess.run([*argv, "--no-password"], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise BackupFailed(f"{Path(argv[0]).name} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _postgresql(db: str | None) -> Any:
    from scorer.store.location import resolve

    loc = resolve(db)
    if loc.is_sqlite:
        raise BackupFailed(
            f"{loc.shown} is an SQLite file: back it up with scorer backup (this command is for "
            "a reading centre's PostgreSQL database)"
        )
    return loc


def _key_fingerprint(key_path: Path) -> str | None:
    try:
        return hashlib.sha256(key_path.read_bytes()).hexdigest()[:16]
    except OSError:
        return None


def make_backup(db: str | None, to: Path, now: datetime) -> tuple[Path, dict[str, Any]]:
    """Dump the database, its receipts and manifest into a new folder under ``to``."""
    from scorer.core.private_files import make_folder
    from scorer.store.backup import receipts_up_to
    from scorer.store.pg_snapshot import exported_snapshot, libpq_target

    loc = _postgresql(db)
    pg_dump = _tool("pg_dump")
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    at = now.isoformat(timespec="seconds")
    make_folder(to)
    final = to / f"scorer-{stamp}"
    if final.exists():
        raise BackupFailed(f"{final} exists already (a backup in this very second)")
    part = to / f".scorer-{stamp}.partial"
    make_folder(part)
    try:
        target, password = libpq_target(loc.url)
        with exported_snapshot(loc.url) as snap:
            _run(
                [
                    pg_dump,
                    "--format=custom",
                    f"--snapshot={snap.id}",
                    f"--file={part / DUMP}",
                    f"--dbname={target}",
                ],
                password,
            )
        # pg_dump creates its file by the umask; its folder is owner-only all along.
        os.chmod(part / DUMP, 0o600)
        kept = receipts_up_to(loc.receipts_path, snap.facts["heads"], at)
        fd = os.open(part / RECEIPTS, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(kept)
        version = _run([pg_dump, "--version"], None).strip()
        manifest = {
            "kind": KIND,
            "made_at": at,
            "source": loc.shown,
            "pg_dump": version,
            **snap.facts,
            "dump": {
                "file": DUMP,
                "sha256": _sha256(part / DUMP),
                "bytes": (part / DUMP).stat().st_size,
            },
            "receipts": {
                "file": RECEIPTS,
                "sha256": hashlib.sha256(kept).hexdigest(),
                "lines": kept.count(b"\n"),
            },
            "key": {"fingerprint": _key_fingerprint(loc.key_path)},
        }
        fd = os.open(part / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps(manifest, indent=2) + "\n")
        for name in (DUMP, RECEIPTS, MANIFEST):
            with (part / name).open("rb") as fh:
                os.fsync(fh.fileno())
        os.replace(part, final)
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise
    return final, manifest


def prune(to: Path, keep_days: int, now: datetime, spare: Path) -> list[str]:
    """Remove the backups under ``to`` made more than ``keep_days`` ago (never ``spare``, the
    newest), and backups left half written by a run that died; the names removed."""
    removed: list[str] = []
    cut = now - timedelta(days=keep_days)
    for folder in sorted(to.iterdir()):
        if folder == spare or not folder.is_dir():
            continue
        named = NAME.match(folder.name)
        if named:
            made = datetime.strptime(named.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            if made >= cut:
                continue
        elif not (folder.name.startswith(".scorer-") and folder.name.endswith(".partial")):
            continue  # not scorer's: left alone
        shutil.rmtree(folder)
        removed.append(folder.name)
    return removed


@command("pg-backup")
def pg_backup(
    *,
    to: Annotated[str, Opt(metavar="FOLDER")],
    keep_days: Annotated[int, Opt(metavar="N")] = 14,
    db: Annotated[str | None, Opt(metavar="URL")] = None,
) -> int:
    """back up the reading centre's PostgreSQL database (pg_dump) with its receipts

    On the server's host, as the account that runs the server (it reads the receipts and the
    audit key's fingerprint). Writes FOLDER/scorer-YYYYMMDDTHHMMSSZ/ (database.dump,
    receipts, manifest.json), consistent while the server keeps writing, then removes the
    backups older than --keep-days (never the one just made). Restore with scorer pg-restore.

    Args:
        to: the folder that keeps the backups (created owner-only)
        keep_days: remove backups made more than this many days ago (default 14)
        db: the database URL (default: SCORER_DB or db in the site config)
    """
    from scorer.workspace import ScorerError

    if not 1 <= keep_days <= 3650:
        err(f"--keep-days {keep_days}: give 1 to 3650 days")
        return EXIT_USAGE
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        folder, manifest = make_backup(db, Path(to), now)
        removed = prune(Path(to), keep_days, now, folder)
    except (BackupFailed, ScorerError, ValueError, OSError) as exc:
        err(f"no backup was made: {exc}")
        return EXIT_ERROR
    head = manifest["heads"].get("audit_events", {"rows": 0, "mac": ""})
    print(
        f"wrote {folder}: {sum(manifest['rows'].values())} rows, audit head {head['rows']} rows "
        f"{head['mac'][:16]}…, {manifest['dump']['bytes']} bytes"
    )
    if manifest["key"]["fingerprint"] is None:
        print("warning: the audit key could not be read: its fingerprint is not recorded")
    print(
        f"  removed {len(removed)} backup(s) older than {keep_days} days"
        + (f": {', '.join(removed)}" if removed else "")
    )
    return EXIT_OK


def read_manifest(folder: Path) -> dict[str, Any]:
    """A backup folder's manifest, after checking both files against their SHA-256."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackupFailed(f"{folder} is not a scorer PostgreSQL backup: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
        raise BackupFailed(f"{folder} is not a scorer PostgreSQL backup (no {KIND} manifest)")
    for part in ("dump", "receipts"):
        name = manifest[part]["file"]
        try:
            digest = _sha256(folder / name)
        except OSError as exc:
            raise BackupFailed(f"the backup's {name} cannot be read: {exc}") from None
        if digest != manifest[part]["sha256"]:
            raise BackupFailed(f"the backup's {name} does not match its manifest (SHA-256)")
    return manifest


def _check_key(loc: Any, manifest: dict[str, Any]) -> None:
    """The audit key is in place, owner-only, and the backed-up database's."""
    from scorer.store.audit import load_key

    try:
        load_key(loc.key_path, group=loc.audit_group)
    except Exception as exc:
        raise BackupFailed(
            f"{exc} (backups never hold the key: copy it there from its secured place)"
        ) from None
    recorded = manifest["key"].get("fingerprint")
    if recorded is not None and _key_fingerprint(loc.key_path) != recorded:
        raise BackupFailed(f"the key at {loc.key_path} is not the backed-up database's key")


def restore_backup(folder: Path, db: str | None) -> tuple[dict[str, Any], Any]:
    """Restore the backup into the empty database ``db``, with its receipts; then verify the
    audit trail. Returns the manifest and the verification."""
    from scorer.store.pg_snapshot import facts, libpq_target, user_tables
    from scorer.workspace import Workspace

    manifest = read_manifest(folder)
    loc = _postgresql(db)
    pg_restore = _tool("pg_restore")
    tables = user_tables(loc.url)
    if tables:
        raise BackupFailed(
            f"{loc.shown} is not empty ({len(tables)} tables): restore into a new, empty "
            "database (CREATE DATABASE ... OWNER scorer_owner)"
        )
    if loc.receipts_path.exists():
        raise BackupFailed(
            f"a receipts file exists at {loc.receipts_path}: it belongs to another database; "
            "move it away, or set receipts in the site config"
        )
    _check_key(loc, manifest)
    target, password = libpq_target(loc.url)
    _run(
        [
            pg_restore,
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={target}",
            str(folder / DUMP),
        ],
        password,
    )
    got = facts(loc.url)
    for key in ("revision", "rows", "heads"):
        if got[key] != manifest[key]:
            raise BackupFailed(
                f"the restored database differs from the backup's {key}: drop it, and restore "
                "again into a new database"
            )
    from scorer.core.private_files import make_folder

    make_folder(loc.receipts_path.parent)
    fd = os.open(loc.receipts_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write((folder / RECEIPTS).read_bytes())
        fh.flush()
        os.fsync(fh.fileno())
    ws = Workspace.open(location=loc)
    try:
        return manifest, ws.verify()
    finally:
        ws.close()


@command("pg-restore")
def pg_restore(
    folder: Annotated[str, Opt(metavar="BACKUP")],
    *,
    db: Annotated[str | None, Opt(metavar="URL")] = None,
) -> int:
    """restore a pg-backup into an empty PostgreSQL database, then verify the audit trail

    Checks the backup's files against its manifest, the audit key against the one the backup
    was made with, and that the database is empty; restores with pg_restore (in one
    transaction, owned by the role you connect as), compares the row counts and chain heads
    with the manifest, writes the receipts where the site config puts them and verifies the
    audit trail as scorer audit verify --maintenance does. Run scorer grant for the server's
    role afterwards.

    Args:
        folder: the backup folder (scorer-YYYYMMDDTHHMMSSZ)
        db: the empty database to restore into (default: SCORER_DB or db in the site config)
    """
    from scorer.workspace import ScorerError

    try:
        manifest, result = restore_backup(Path(folder), db)
    except (BackupFailed, ScorerError, ValueError, OSError) as exc:
        err(f"nothing was restored: {exc}" if "differs" not in str(exc) else str(exc))
        return EXIT_ERROR
    head = manifest["heads"].get("audit_events", {"rows": 0, "mac": ""})
    print(
        f"restored {sum(manifest['rows'].values())} rows made {manifest['made_at']} (audit head "
        f"{head['rows']} rows, {head['mac'][:16]}…), checked against the manifest"
    )
    for e in result.errors:
        print(f"FAILED: {e}")
    if not result.ok:
        print("the restored audit trail does NOT verify")
        return EXIT_ERROR
    print("the restored audit trail verifies; now run scorer grant ROLE for the server's role")
    return EXIT_OK
