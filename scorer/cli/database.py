"""Commands of the database's host (a reading centre's server host, or a one-user
station) that make, upgrade, give the server its role on, back up and restore the database:
init, migrate, grant, revoke, backup, restore."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

from scorer.cli.options import CliError, Database, Login, Passwords, run_store
from scorer.cli.output import EXIT_ERROR, EXIT_OK, err
from scorer.cli.registry import Opt, command


@command("init")
def init(
    *,
    database: Database,
    admin: Annotated[str, Opt(metavar="NAME")],
    name: Annotated[str | None, Opt(metavar="FULL NAME")] = None,
    password_stdin: bool = False,
) -> int:
    """create the database and the first administrator

    Args:
        admin: the administrator's user ID
        name: printed name for signatures
    """
    from scorer.store.location import resolve
    from scorer.workspace import ScorerError, Workspace

    pw = Passwords(password_stdin)
    try:
        loc = resolve(database.db)
        password = pw.get(f"new password for {admin}: ", confirm=True)
        ws = Workspace.initialize(admin, name or admin, password, location=loc)
    except (ScorerError, CliError, ValueError) as exc:
        err(str(exc))
        return EXIT_ERROR
    ws.close()
    print(f"created the scorer database at {loc.shown}")
    print(f"  audit key: {loc.key_path} (keep a copy apart from the database)")
    print(f"  receipts:  {loc.receipts_path}")
    print(f"  administrator: {admin}")
    return EXIT_OK


@command("migrate")
def migrate(*, database: Database) -> int:
    """upgrade the database schema (back it up first)"""
    from scorer.workspace import ScorerError, Workspace

    try:
        before, after = Workspace.migrate(database.db)
    except ScorerError as exc:
        err(str(exc))
        return EXIT_ERROR
    print(f"schema: {before} -> {after}")
    from scorer.store.location import resolve

    if before != after and not resolve(database.db).is_sqlite:
        print("new tables: run scorer grant ROLE again for the server's role")
    return EXIT_OK


@command("grant")
def grant(role: str, *, database: Database) -> int:
    """PostgreSQL: give the role only the server holds its privileges (trail append-only)

    The reading centre's scorer server logs in to the database as this role (scorer server
    --db postgresql+psycopg://ROLE@HOST/DB); workstations hold no database login. Run it as
    the database's owner, and again after scorer migrate.

    Args:
        role: the PostgreSQL role the server logs in as
    """
    from scorer.workspace import ScorerError, Workspace

    try:
        statements = Workspace.grant_workstation(role, database.db)
    except ScorerError as exc:
        err(str(exc))
        return EXIT_ERROR
    for sql in statements:
        print(sql)
    print(
        f"{role} is now the server's role: trial data read and written, the audit trail, event "
        f"log and signatures append-only. Only scorer server logs in as {role} (--db "
        f"postgresql+psycopg://{role}@HOST/DATABASE); give its credentials to no workstation. "
        "Run this again after scorer migrate."
    )
    return EXIT_OK


@command("revoke")
def revoke(role: str, *, drop: bool = False, database: Database) -> int:
    """PostgreSQL: take a role's privileges away (the old workstations' role)

    For a reading centre whose workstations logged in to the database themselves: once they
    go through the server, their old role loses every privilege on the database (and, with
    --drop, is dropped). Run it as the database's owner; all or nothing; audited.

    Args:
        role: the PostgreSQL role to take the privileges from
        drop: drop the role too (needs a superuser or CREATEROLE)
    """
    from scorer.workspace import ScorerError, Workspace

    try:
        statements = Workspace.revoke_workstation(role, drop, database.db)
    except ScorerError as exc:
        err(str(exc))
        return EXIT_ERROR
    for sql in statements:
        print(sql)
    print(f"{role} was dropped." if drop else f"{role} has no privileges on this database now.")
    return EXIT_OK


@command("backup")
def backup(*, out: Annotated[str, Opt(metavar="FILE.zip")], login: Login) -> int:
    """an online backup of the SQLite store, in one zip"""

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        info = ws.database.backup(s, Path(out))
        rows = sum(info.rows.values())
        head = info.heads["audit_events"]
        print(f"wrote {out}: {rows} rows, audit head {head.rows} rows {head.mac[:16]}…")
        print(f"  the audit key is not in the backup; it stays at {info.key.path}")
        return EXIT_OK

    return run_store(login, body, on_server_host=True)


@command("restore")
def restore(
    file: Annotated[str, Opt(metavar="FILE.zip")],
    *,
    db: Annotated[str | None, Opt(metavar="PATH")] = None,
) -> int:
    """restore a backup to a new database path, checked

    Args:
        db: where to restore (must not exist)
    """
    from scorer.workspace import ScorerError, Workspace

    try:
        info = Workspace.restore(Path(file), db)
    except ScorerError as exc:
        err(str(exc))
        return EXIT_ERROR
    head = info.record.heads["audit_events"]
    print(
        f"restored {sum(info.record.rows.values())} rows (audit head {head.rows} rows, "
        f"{head.mac[:16]}…), checked against the backup; the audit trail verifies"
    )
    if info.images_missing:
        print(
            f"warning: {info.images_missing} of {info.images} images are not in the "
            f"readers' store at {info.readers_store} (backups hold no images): point "
            "readers_store and originals_store in the config (or SCORER_READERS_STORE and "
            "SCORER_ORIGINALS_STORE) at the image stores the database was using",
            file=sys.stderr,
        )
    return EXIT_OK
