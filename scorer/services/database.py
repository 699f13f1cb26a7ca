"""The database itself: where it is, creating, opening, migrating, granting, backing up and
restoring it."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scorer.services.errors import ScorerError
from scorer.services.operation import Op, Service, operation
from scorer.services.oversight import verify_store
from scorer.services.validation import check_name, check_password, check_username
from scorer.store import repository as repo
from scorer.store.database import (
    OperationalError,
    SQLAlchemyError,
    Store,
    StoreError,
    describe_operational_error,
)
from scorer.store.database import database_exists as _database_exists
from scorer.store.location import Location, LocationError
from scorer.store.location import resolve as _resolve
from scorer.store.migrate import current_revision, head_revision, upgrade
from scorer.store.passwords import (
    HISTORY,
    hash_password,
)


@dataclass(frozen=True)
class ChainHead:
    """The last row of a MAC chain (the audit trail, the event log): its number and MAC."""

    rows: int
    mac: str


@dataclass(frozen=True)
class KeyPlace:
    """Where the audit key lives (a backup never holds the key): its path, and the first 16
    hex digits of its SHA-256 when it was there."""

    path: str
    fingerprint: str | None


@dataclass(frozen=True)
class BackupRecord:
    """What a backup records of itself (its ``backup.json``): who made it, when, of which
    file, the copy's SHA-256, where the key is, the schema revision, every table's row count
    and the chain heads by table."""

    kind: str
    made_by: str
    made_at: str
    source: str
    sha256: str
    key: KeyPlace
    revision: str | None
    rows: dict[str, int]
    heads: dict[str, ChainHead]

    @classmethod
    def from_dict(cls, info: Mapping[str, Any]) -> BackupRecord:
        """The record from its JSON form (:mod:`scorer.store.backup`'s ``backup.json``)."""
        key = info["key"]
        return cls(
            kind=str(info["kind"]),
            made_by=str(info["made_by"]),
            made_at=str(info["made_at"]),
            source=str(info["source"]),
            sha256=str(info["sha256"]),
            key=KeyPlace(str(key["path"]), key.get("fingerprint")),
            revision=info["revision"],
            rows={str(t): int(n) for t, n in info["rows"].items()},
            heads={
                str(t): ChainHead(int(h["rows"]), str(h["mac"])) for t, h in info["heads"].items()
            },
        )

    def to_dict(self) -> dict[str, Any]:
        """The record's JSON form, keys in ``backup.json``'s order."""
        return asdict(self)


@dataclass(frozen=True)
class Restored:
    """A restore's outcome: the backup's record, and how many of the images the database
    names the readers' store (its path) does not have (backups hold no images)."""

    record: BackupRecord
    images: int
    images_missing: int
    readers_store: str


def resolve(db: str | None = None) -> Location:
    """The database's location (scorer.store.location.resolve), an unusable one (a bad URL,
    an in-memory database, a bad config file) refused as a ScorerError."""
    try:
        return _resolve(db)
    except LocationError as exc:
        raise ScorerError(str(exc)) from None


def database_exists(loc: Location) -> bool:
    """Whether a scorer database is at ``loc``; a server that cannot be reached or refuses
    the log-in is a ScorerError saying which."""
    try:
        return _database_exists(loc)
    except StoreError as exc:
        raise ScorerError(str(exc)) from None


@contextlib.contextmanager
def existing_store(loc: Location) -> Iterator[Store]:
    """The store at ``loc`` for a maintenance command (migrate, grant): it must exist; opening
    and store errors become ScorerError; closed afterwards."""
    if not database_exists(loc):
        raise ScorerError(f"no scorer database at {loc.shown} (from {loc.source})")
    try:
        store = Store(loc)
    except Exception as exc:
        raise ScorerError(str(exc)) from exc
    try:
        yield store
    except StoreError as exc:
        raise ScorerError(str(exc)) from exc
    finally:
        store.close()


def open_store(location: Location) -> Store:
    """Open an existing database at its current schema; refuse an old or missing one."""
    loc = location
    if not database_exists(loc):
        raise ScorerError(
            f"no scorer database at {loc.shown} (from {loc.source}); create one with `scorer init`"
        )
    try:
        store = Store(loc)
    except Exception as exc:
        raise ScorerError(str(exc)) from exc
    rev = current_revision(store.engine)
    if rev != head_revision():
        store.close()
        raise ScorerError(
            f"the database at {loc.shown} is at schema revision {rev}, this scorer needs "
            f"{head_revision()}: run `scorer migrate` (after a backup)"
        )
    return store


def create_store(
    admin_username: str,
    admin_full_name: str,
    admin_password: str,
    location: Location,
    now: str,
) -> Store:
    """Create the database, the audit key and the first admin account."""
    loc = location
    if database_exists(loc):
        raise ScorerError(f"a scorer database already exists at {loc.shown}")
    if loc.receipts_path.exists() and loc.receipts_path.stat().st_size > 0:
        raise ScorerError(
            f"the receipts file {loc.receipts_path} already holds another database's chain "
            "heads, and a new database needs its own: give --db a file of its own (its "
            "receipts go beside it), or name another receipts file in the config file "
            '(receipts = "...")'
        )
    check_username(admin_username)
    check_name(admin_full_name, "printed name")
    check_password(admin_password, admin_username, admin_full_name)
    try:
        store = Store(loc, create_key=True)  # it makes the file and folder owner-only
    except Exception as exc:
        raise ScorerError(str(exc)) from exc
    upgrade(store.engine, key=store.key)
    with store.write(admin_username) as tx:
        tx.now = now
        hashed = hash_password(admin_password)
        user = repo.add_user(
            tx.session,
            admin_username,
            admin_full_name,
            "admin",
            hashed,
            must_change=False,
            now=tx.now,
        )
        repo.set_password(tx.session, user, hashed, tx.now, HISTORY)
        tx.audit("database.init", "database", "1", new={"schema": head_revision()})
        tx.audit(
            "user.add",
            "user",
            user.username,
            new={"role": "admin", "full_name": admin_full_name},
        )
    return store


def migrate(db: str | None = None, location: Location | None = None) -> tuple[str | None, str]:
    """Upgrade a database's schema to this scorer's (audited); (before, after)."""
    with existing_store(location or resolve(db)) as store:
        before = current_revision(store.engine)
        if before is not None and before < BASELINE_REVISION:
            _check_before_baseline(store)
        upgrade(store.engine, key=store.key)
        if before != head_revision():
            with store.write("system") as tx:
                tx.audit(
                    "database.migrate",
                    "database",
                    "1",
                    old={"schema": before},
                    new={"schema": head_revision()},
                )
    return before, head_revision()


#: The revision that writes the audit trail's baseline (scorer.store.projection).
BASELINE_REVISION = "0008"


def _check_before_baseline(store: Store) -> None:
    """The baseline makes the tables as they are the start of the record: refuse to write it
    over a trail that does not verify (its chains and receipts), which would take in whatever
    was changed behind scorer."""
    from scorer.store.audit import verify as verify_chains

    with store.read() as session:
        result = verify_chains(session, store.key, store.location.receipts_path)
    if not result.ok:
        raise ScorerError(
            "nothing was migrated: the audit trail does not verify ("
            + "; ".join(result.errors[:3])
            + "), and the migration would write the tables as they are now into it as its "
            "baseline; find out what happened first, with the scorer this database was made by"
        )


def grant_workstation(
    role: str, db: str | None = None, location: Location | None = None
) -> list[str]:
    """Give a PostgreSQL role what the reading centre's server needs (the role only the
    server's host holds), with the audit trail, event log and signatures append-only at the
    privilege level (run as the database's owner; audited in the same transaction). Returns
    the statements run."""
    from scorer.store.grants import GrantError, grant_workstation

    with existing_store(location or resolve(db)) as store, store.write("system") as tx:
        try:
            statements = grant_workstation(tx.session.connection(), role)
        except GrantError as exc:
            raise ScorerError(f"nothing was granted: {exc}") from exc
        tx.audit(
            "database.grant",
            "database",
            "1",
            new={"role": role, "statements": statements},
        )
    return statements


def revoke_workstation(
    role: str, drop: bool = False, db: str | None = None, location: Location | None = None
) -> list[str]:
    """Take every privilege on the database away from a PostgreSQL role (a reading centre's
    old workstation role, once its server holds the database), and drop the role when asked
    (run as the database's owner; a drop needs a superuser or CREATEROLE; audited in the same
    transaction, nothing done if any statement fails). Returns the statements run."""
    from scorer.store.grants import GrantError, revoke_workstation

    with existing_store(location or resolve(db)) as store, store.write("system") as tx:
        try:
            statements = revoke_workstation(tx.session.connection(), role, drop)
        except GrantError as exc:
            raise ScorerError(f"nothing was revoked: {exc}") from exc
        tx.audit(
            "database.revoke",
            "database",
            "1",
            new={"role": role, "dropped": drop, "statements": statements},
        )
    return statements


def restore(archive: Path, db: str | None = None, location: Location | None = None) -> Restored:
    """Restore a backup to a new database path, checked by row counts and chain heads,
    then verify the audit trail with the key at its configured place. A restore that fails
    removes everything it wrote (the database, its WAL files, the receipts) and says so."""
    from scorer.store.backup import BackupError, read_info
    from scorer.store.backup import restore as unpack

    loc = location or resolve(db)
    if loc.sqlite_path is None:
        raise ScorerError("backups restore to an SQLite path")
    try:
        recorded = read_info(Path(archive))
    except BackupError as exc:
        raise ScorerError(f"nothing was restored: {exc}") from exc
    from scorer.store.audit import load_key

    if not loc.key_path.exists():
        raise ScorerError(
            f"nothing was restored: the audit key is not at {loc.key_path} (backups never "
            "hold it): copy it there from its secured place, or set audit_key in the config"
        )
    try:
        load_key(
            loc.key_path, group=loc.audit_group
        )  # present, owner-only and well formed, before anything moves
    except Exception as exc:
        raise ScorerError(f"nothing was restored: {exc}") from exc
    fingerprint = hashlib.sha256(loc.key_path.read_bytes()).hexdigest()[:16]
    if recorded["key"].get("fingerprint") not in (None, fingerprint):
        raise ScorerError(
            f"nothing was restored: the key at {loc.key_path} is not this database's key"
        )
    try:
        info = unpack(Path(archive), loc.sqlite_path, loc.receipts_path)
    except (BackupError, OSError, sqlite3.Error) as exc:
        raise ScorerError(f"nothing was restored: {exc}") from exc
    # The unpacking refuses a receipts file already there: one there now is the restore's.
    wrote_receipts = loc.receipts_path.exists()
    try:
        store = open_store(loc)
    except (ScorerError, SQLAlchemyError) as exc:
        raise ScorerError(
            f"nothing was restored: {_said(exc, loc)}{_removed(loc, wrote_receipts)}"
        ) from exc
    try:
        result = verify_store(store)
        if not result.ok:
            raise ScorerError(
                "the restored audit trail does not verify with the key at "
                f"{loc.key_path}: {'; '.join(result.errors[:3])}"
            )
        with store.write("system") as tx:
            tx.audit(
                "database.restore",
                "database",
                "1",
                new={"from": Path(archive).name, "sha256": info["sha256"]},
            )
        # Backups hold no images, and the database names them relative to the stores:
        # say how many the configured readers' store does not have.
        with store.read() as session:
            stored = repo.reader_paths(session)
        return Restored(
            BackupRecord.from_dict(info),
            images=len(stored),
            images_missing=sum(1 for p in stored if not store.location.image_file(p).exists()),
            readers_store=str(store.location.readers_store),
        )
    except (ScorerError, StoreError, OSError, sqlite3.Error, SQLAlchemyError) as exc:
        # SQLAlchemy's errors too: a disk that fills while the restore's audit row or its
        # checks run raises OperationalError (outsider's finding: it left a half-restored file)
        store.close()  # first: SQLite's files go with the connections
        raise ScorerError(
            f"nothing was restored: {_said(exc, loc)}{_removed(loc, wrote_receipts)}"
        ) from exc
    finally:
        store.close()


def _said(exc: BaseException, loc: Location) -> str:
    """An error of the restore for the person at the desk (a disk error as such)."""
    if isinstance(exc, OperationalError):
        return describe_operational_error(exc, loc.sqlite_path)
    return str(exc)


def _removed(loc: Location, wrote_receipts: bool) -> str:
    """Remove what a restore wrote at ``loc`` after unpacking (the database with its WAL
    files, and the receipts when it wrote them); what to add to its message."""
    from scorer.store.backup import BackupError, discard

    assert loc.sqlite_path is not None
    try:
        removed = discard(loc.sqlite_path, loc.receipts_path if wrote_receipts else None)
    except BackupError as exc:
        return f"; {exc}"
    return f" (the restore removed what it wrote: {', '.join(removed)})" if removed else ""


class DatabaseService(Service):
    """Backups of the open database (the other database operations need no session)."""

    # No transaction of its own: the copy is long work, and SQLite's online backup takes a
    # consistent copy while others write; its audit row is written after, in a short one.
    @operation("admin", "coordinator", write=True, transaction=False)
    def backup(self, op: Op, out: Path) -> BackupRecord:
        """An online backup of the SQLite store, with its receipts and the key's location
        (never the key), in one zip; audited with the row counts and heads it recorded."""
        from scorer.store.backup import BackupError
        from scorer.store.backup import backup as make_backup

        loc = self.store.location
        if loc.sqlite_path is None:
            raise ScorerError(
                "scorer backup copies an SQLite file; on the server's host a PostgreSQL "
                "database is backed up with scorer pg-backup --to FOLDER (pg_dump, with the "
                "receipts and a manifest; README: Running the server as a service)"
            )
        try:
            info = make_backup(
                loc.sqlite_path,
                loc.receipts_path,
                loc.key_path,
                Path(out),
                op.user.username,
                self._now_str(),
            )
        except (BackupError, OSError, sqlite3.Error) as exc:
            raise ScorerError(f"the backup was not made: {exc}") from exc
        with op.write() as tx:
            tx.audit(
                "database.backup",
                "database",
                "1",
                new={"file": Path(out).name, "sha256": info["sha256"], "heads": info["heads"]},
            )
        return BackupRecord.from_dict(info)
