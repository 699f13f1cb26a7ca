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

import contextlib
import hashlib
import hmac
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


class RestoreLeftBehind(BackupFailed):
    """A restore refused after pg_restore ran, whose objects could not all be dropped again."""


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


#: What the manifest's MAC key is derived for, so that the audit key signs nothing else with it.
_MAC_PURPOSE = b"scorer pg-backup manifest"


def manifest_mac(key: bytes, manifest: dict[str, Any]) -> str:
    """The HMAC-SHA256 of the manifest (all of it but its ``mac``, as sorted compact JSON) under
    a key derived from the audit key: an edit of any figure or date in it is found."""
    body = {k: v for k, v in manifest.items() if k != "mac"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")
    derived = hmac.digest(key, _MAC_PURPOSE, "sha256")
    return hmac.digest(derived, canonical, "sha256").hex()


def _audit_key(loc: Any) -> bytes | None:
    from scorer.store.audit import load_key

    try:
        return load_key(loc.key_path, group=loc.audit_group)
    except Exception:  # missing or loosened: the backup goes on, its manifest unsigned
        return None


def _finish(part: Path, pg_dump: str, loc: Any, facts: dict[str, Any], at: str) -> dict[str, Any]:
    """Beside the dump in ``part``: the receipts up to the snapshot's chain heads and the
    manifest, all three synced to disk; the manifest."""
    from scorer.store.backup import receipts_up_to

    # pg_dump creates its file by the umask; its folder is owner-only all along.
    os.chmod(part / DUMP, 0o600)
    kept = receipts_up_to(loc.receipts_path, facts["heads"], at)
    fd = os.open(part / RECEIPTS, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(kept)
    version = _run([pg_dump, "--version"], None).strip()
    manifest = {
        "kind": KIND,
        "made_at": at,
        "source": loc.shown,
        "pg_dump": version,
        **facts,
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
    key = _audit_key(loc)
    if key is not None:
        manifest["mac"] = manifest_mac(key, manifest)
    fd = os.open(part / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(json.dumps(manifest, indent=2) + "\n")
    for name in (DUMP, RECEIPTS, MANIFEST):
        with (part / name).open("rb") as fh:
            os.fsync(fh.fileno())
    return manifest


def make_backup(db: str | None, to: Path, now: datetime) -> tuple[Path, dict[str, Any]]:
    """Dump the database, its receipts and manifest into a new folder under ``to``."""
    from scorer.core.private_files import make_folder
    from scorer.store.audit import read_receipts
    from scorer.store.backup import BackupError, refuse_cut_tails
    from scorer.store.pg_snapshot import exported_snapshot, libpq_target

    loc = _postgresql(db)
    pg_dump = _tool("pg_dump")
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    at = now.isoformat(timespec="seconds")
    target, password = libpq_target(loc.url)
    fresh = not to.exists()
    # Read before the snapshot: every receipt here is of a commit the snapshot holds.
    earlier, _problems = read_receipts(loc.receipts_path)
    # Connected before any folder is made: a database that does not answer leaves none.
    with exported_snapshot(loc.url) as snap:
        try:
            refuse_cut_tails(earlier, snap.facts["heads"])
        except BackupError as exc:
            raise BackupFailed(str(exc)) from None
        make_folder(to)
        final = to / f"scorer-{stamp}"
        part = to / f".scorer-{stamp}.partial"
        try:
            if final.exists():
                raise BackupFailed(f"{final} exists already (a backup in this very second)")
            make_folder(part)
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
            manifest = _finish(part, pg_dump, loc, snap.facts, at)
            os.replace(part, final)
        except BaseException:
            shutil.rmtree(part, ignore_errors=True)
            if fresh:
                with contextlib.suppress(OSError):
                    to.rmdir()  # made for this backup, and empty: not left behind
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
    from scorer.store.database import StoreError
    from scorer.workspace import ScorerError

    if not 1 <= keep_days <= 3650:
        err(f"--keep-days {keep_days}: give 1 to 3650 days")
        return EXIT_USAGE
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        folder, manifest = make_backup(db, Path(to), now)
        removed = prune(Path(to), keep_days, now, folder)
    except (BackupFailed, StoreError, ScorerError, ValueError, OSError) as exc:
        err(f"no backup was made: {exc}")
        return EXIT_ERROR
    head = manifest["heads"].get("audit_events", {"rows": 0, "mac": ""})
    print(
        f"wrote {folder}: {sum(manifest['rows'].values())} rows, audit head {head['rows']} rows "
        f"{head['mac'][:16]}…, {manifest['dump']['bytes']} bytes"
    )
    if "mac" not in manifest:
        print(
            "warning: the audit key could not be read: its fingerprint is not recorded and the "
            "manifest is not signed"
        )
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


def _check_key(loc: Any, manifest: dict[str, Any]) -> bool:
    """The audit key is in place, owner-only, and the backed-up database's; and the manifest
    is the one the backup wrote (its MAC). False: a manifest with no MAC (written by a scorer
    before manifests were signed, or without the key), checked against the restore only."""
    from scorer.store.audit import load_key

    try:
        key = load_key(loc.key_path, group=loc.audit_group)
    except Exception as exc:
        raise BackupFailed(
            f"{exc} (backups never hold the key: copy it there from its secured place)"
        ) from None
    recorded = manifest["key"].get("fingerprint")
    if recorded is not None and _key_fingerprint(loc.key_path) != recorded:
        raise BackupFailed(f"the key at {loc.key_path} is not the backed-up database's key")
    mac = manifest.get("mac")
    if mac is None:
        return False
    if not (isinstance(mac, str) and hmac.compare_digest(manifest_mac(key, manifest), mac)):
        raise BackupFailed(
            f"the backup's {MANIFEST} was changed after the backup was made (its MAC does not "
            "match: a date, a row count or a chain head in it was edited)"
        )
    return True


#: A table in pg_restore --list: "ID; OID OID TABLE schema name owner".
_TOC_TABLE = re.compile(r"^\d+; \d+ \d+ TABLE (\S+) (\S+) ", re.M)


def _check_dump(pg_restore: str, folder: Path, manifest: dict[str, Any]) -> None:
    """Before anything is restored: the manifest's schema revision is one this code knows, and
    the dump holds the tables the manifest counts rows of, no more and no fewer."""
    from scorer.store.migrate import head_revision, revisions

    if manifest["revision"] not in revisions():
        raise BackupFailed(
            f"the backup is at schema revision {manifest['revision']}, which this scorer does "
            f"not know (it goes up to {head_revision()}): restore it with the scorer that made "
            "it, or a newer one"
        )
    listing = _run([pg_restore, "--list", str(folder / DUMP)], None)
    dumped = {name for schema, name in _TOC_TABLE.findall(listing) if schema == "public"}
    counted = set(manifest["rows"])
    if dumped != counted:
        said = [f"{t} (in the dump, not the manifest)" for t in sorted(dumped - counted)]
        said += [f"{t} (in the manifest, not the dump)" for t in sorted(counted - dumped)]
        raise BackupFailed(f"the backup's dump and manifest name other tables: {', '.join(said)}")


def _shown(fact: Any) -> str:
    """A row count, or a chain head as its rows and the start of its MAC."""
    if isinstance(fact, dict):
        return f"{fact.get('rows')} rows, MAC {str(fact.get('mac'))[:12]}…"
    return "none" if fact is None else str(fact)


def differences(manifest: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """How the restored database's facts differ from the manifest's, each naming the table,
    chain or revision: "rows of reads: 120 in the manifest, 121 restored"."""
    said: list[str] = []
    if got["revision"] != manifest["revision"]:
        said.append(
            f"schema revision: {manifest['revision']} in the manifest, {got['revision']} restored"
        )
    for kind, key in (("rows of", "rows"), ("chain head", "heads")):
        ours, theirs = manifest[key], got[key]
        for name in sorted(set(ours) | set(theirs)):
            was, now = ours.get(name), theirs.get(name)
            if was != now:
                said.append(f"{kind} {name}: {_shown(was)} in the manifest, {_shown(now)} restored")
    return said


def restore_backup(folder: Path, db: str | None) -> tuple[dict[str, Any], Any, bool]:
    """Restore the backup into the empty database ``db``, with its receipts; then verify the
    audit trail. Returns the manifest, the verification and whether the manifest was signed.
    A restore whose figures differ from the manifest's is dropped again (BackupFailed)."""
    from scorer.store.database import StoreError
    from scorer.store.pg_snapshot import (
        database_objects,
        drop_objects_since,
        facts,
        libpq_target,
        user_tables,
    )
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
    signed = _check_key(loc, manifest)
    _check_dump(pg_restore, folder, manifest)
    before = database_objects(loc.url)
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
    differ = differences(manifest, facts(loc.url))
    if differ:
        try:
            drop_objects_since(loc.url, before)
        except StoreError as exc:
            raise RestoreLeftBehind(
                f"the restored database differs from the backup's manifest ({'; '.join(differ)})"
                f", and {exc}: drop {loc.shown} and restore again into a new database"
            ) from None
        raise BackupFailed(
            f"the restored database differs from the backup's manifest ({'; '.join(differ)}): "
            f"what the restore made was dropped again, {loc.shown} is empty as it was found"
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
        return manifest, ws.verify(), signed
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
    from scorer.store.database import StoreError
    from scorer.workspace import ScorerError

    try:
        manifest, result, signed = restore_backup(Path(folder), db)
    except (BackupFailed, StoreError, ScorerError, ValueError, OSError) as exc:
        err(str(exc) if isinstance(exc, RestoreLeftBehind) else f"nothing was restored: {exc}")
        return EXIT_ERROR
    head = manifest["heads"].get("audit_events", {"rows": 0, "mac": ""})
    print(
        f"restored {sum(manifest['rows'].values())} rows made {manifest['made_at']} (audit head "
        f"{head['rows']} rows, {head['mac'][:16]}…), checked against the manifest"
    )
    if not signed:
        print(
            "warning: the manifest is not signed (made by an older scorer, or without the audit "
            "key): its figures were checked against the restored database, its date was not"
        )
    for e in result.errors:
        print(f"FAILED: {e}")
    if not result.ok:
        print("the restored audit trail does NOT verify")
        return EXIT_ERROR
    print("the restored audit trail verifies; now run scorer grant ROLE for the server's role")
    return EXIT_OK
