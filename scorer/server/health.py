"""What ``GET /health`` checks, for a monitoring system that polls it without a log-in.

Each check is ``ok``, ``warning`` (the server works, someone should look) or ``critical`` (the
server cannot do its work: the answer is 503). The checks are those a reading centre's server
fails by in practice: the database does not answer, its schema is not the one this code
expects (an upgrade half done), the audit key is gone or changed, the receipts file cannot be
appended to, a disk holding the receipts or the image stores is filling up. The answer names
no path, account or database URL: whoever can reach the port learns only that a check failed,
and the administrator finds the reason in the server's log and on its host.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from scorer.store.audit import load_key
from scorer.store.database import audit_trail_has_rows
from scorer.store.location import Location
from scorer.store.migrate import current_revision, head_revision
from scorer.workspace import Workspace

OK = "ok"
WARNING = "warning"
CRITICAL = "critical"
_RANK = {OK: 0, WARNING: 1, CRITICAL: 2}

GIB = 1024**3

#: Why a check failed goes to the server's log, on its host, never into the answer.
log = logging.getLogger("scorer.server")


@dataclass(frozen=True)
class DiskLimits:
    """When free space on a disk the server writes to is a warning (under 2 GiB the server
    already refuses uploads: :data:`scorer.server.uploads.RESERVE`), and when it is critical
    (a new workstation then cannot connect; those connected go on)."""

    warning_bytes: int = 10 * GIB
    critical_bytes: int = 1 * GIB


@dataclass(frozen=True)
class Check:
    """One check's outcome: its name, ``ok``/``warning``/``critical``, and a short reason that
    names no path."""

    name: str
    status: str
    detail: str


@dataclass(frozen=True)
class Health:
    """All checks, the worst status among them, and the schema revision found."""

    checks: tuple[Check, ...]
    schema: str | None

    @property
    def status(self) -> str:
        return max((c.status for c in self.checks), key=_RANK.__getitem__, default=OK)

    def as_json(self) -> dict[str, object]:
        """The answer's body; when something is critical, a ``message`` a workstation shows
        when it cannot connect (what failed, whom to ask). No software version: nothing that
        polls needs it, and it would tell anyone who reaches the port what to try."""
        body: dict[str, object] = {
            "ok": self.status != CRITICAL,
            "status": self.status,
            "schema": self.schema,
            "checks": {c.name: {"status": c.status, "detail": c.detail} for c in self.checks},
        }
        failed = [f"{c.name}: {c.detail}" for c in self.checks if c.status == CRITICAL]
        if failed:
            body["message"] = (
                f"the server cannot work now ({'; '.join(failed)}); tell its administrator"
            )
        return body


def database_down(reason: str) -> Health:
    """The answer when the database check itself did not come back (a timeout)."""
    return Health((Check("database", CRITICAL, reason),), None)


def examine(ws: Workspace, limits: DiskLimits) -> Health:
    """Run every check against the server's open workspace (blocking: run it in a thread)."""
    loc = ws.store.location
    found: list[Check] = []
    try:
        schema = current_revision(ws.store.engine)
    except Exception as exc:  # any driver error: the database did not answer
        log.warning("health: the database does not answer: %s", exc)
        said = f"the database does not answer ({type(exc).__name__})"
        found.append(Check("database", CRITICAL, said))
        schema = None
    else:
        found.append(Check("database", OK, "answers"))
        expected = head_revision()
        if schema == expected:
            found.append(Check("schema", OK, f"at {schema}"))
        else:
            found.append(
                Check(
                    "schema",
                    CRITICAL,
                    f"the database is at {schema}, this server's code at {expected} (an "
                    "upgrade half done: scorer migrate, then restart the server)",
                )
            )
    found.append(_key(ws, loc))
    found.append(_receipts(loc.receipts_path, ws if schema is not None else None))
    found.extend(_disks(loc, limits))
    return Health(tuple(found), schema)


def _key(ws: Workspace, loc: Location) -> Check:
    """The audit key file is still there, owner-only, and the key the server signs with."""
    try:
        key = load_key(loc.key_path, group=loc.audit_group)
    except Exception as exc:  # missing, unreadable, loosened permissions: load_key says which
        log.warning("health: %s", exc)
        return Check("audit_key", CRITICAL, "the audit key cannot be read (see the server's host)")
    if key != ws.store.key:
        return Check("audit_key", CRITICAL, "the audit key file changed since the server started")
    return Check("audit_key", OK, "readable")


def _receipts(path: Path, ws: Workspace | None) -> Check:
    """The receipts file opens for appending (or, before the first commit, can be created);
    nothing is written. Missing or empty while the audit trail has rows (``ws``: the database
    answered) is a warning: the server still works, but a cut tail is no longer detected."""
    try:
        if path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
        elif not os.access(path.parent, os.W_OK | os.X_OK):
            raise PermissionError(path.parent)
    except OSError as exc:
        log.warning("health: the receipts file %s cannot be appended to: %s", path, exc)
        return Check("receipts", CRITICAL, "the receipts file cannot be appended to")
    if ws is not None and (not path.exists() or path.stat().st_size == 0):
        try:
            lost = audit_trail_has_rows(ws.store.engine)
        except Exception as exc:  # the database stopped answering since its own check
            log.warning("health: the audit trail could not be read: %s", exc)
            lost = False
        if lost:
            log.warning("health: the receipts file %s is missing or empty", path)
            return Check(
                "receipts",
                WARNING,
                "the receipts file is missing or empty while the audit trail has rows: a cut "
                "tail of the trail can no longer be detected (restore it from a backup)",
            )
    return Check("receipts", OK, "appendable")


def _disks(loc: Location, limits: DiskLimits) -> list[Check]:
    """Free space of each disk the server writes to (once per disk)."""
    places = {
        "receipts": loc.receipts_path.parent,
        "readers_store": loc.readers_store,
        "originals_store": loc.originals_store,
    }
    seen: dict[int, str] = {}
    out: list[Check] = []
    for name, folder in places.items():
        existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
        if existing is None:
            continue
        device = existing.stat().st_dev
        if device in seen:
            continue
        seen[device] = name
        free = shutil.disk_usage(existing).free
        shown = f"{free / GIB:.1f} GiB free"
        if free < limits.critical_bytes:
            status = CRITICAL
        elif free < limits.warning_bytes:
            status = WARNING
        else:
            status = OK
        out.append(Check(f"disk_{name}", status, shown))
    return out
