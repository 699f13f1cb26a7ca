"""The facade the GUI and the CLI hold: one open database and its services, one per job.

``ws.reading.set_scores(session, ...)``, ``ws.trials.create_trial(session, ...)``: each service
lives in its own module under :mod:`scorer.services`, and each of its operations is declared
with :func:`scorer.services.operation.operation`, which checks the caller's session and role,
opens one transaction, writes the change and its audit row together, and commits once.
``docs/roles.md`` lists every operation and the roles that may run it.

=================  ====================================================================
``accounts``       log in and out, lock, passwords, users            services/accounts.py
``trials``         trials, their settings, visits, patients, lock    services/trials.py
``worklists``      readers' assignments, campaigns, worklists        services/worklists.py
``reading``        reads, scores, notes, signatures, cases, events   services/reading.py
``images``         import, QC, masks, films, regions missing         services/images.py
``coordination``   progress and reader flags                         services/coordination.py
``calibration``    calibration worklists, feedback, release          services/calibration.py
``adjudication``   SDC, the adjudication queue and its results       services/adjudication.py
``exchange``       reads in and out, totals, reports, the package    services/exchange.py
``oversight``      the monitor's sessions, trail and verification    services/oversight.py
``drift``          readers' drift charts, alerts, acknowledgements   services/drift.py
``joints``         located joints, registration across visits, QC   services/joints.py
``database``       backups (init, migrate, grant, restore below)     services/database.py
=================  ====================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from scorer.services import database
from scorer.services.accounts import AccountsService
from scorer.services.adjudication import (
    Adjudications,
    AdjudicationService,
    AdjudicationUpdate,
    SdcPreview,
)
from scorer.services.calibration import (
    CalibrationFeedback,
    CalibrationReport,
    CalibrationService,
    CalibrationWorklists,
)
from scorer.services.coordination import CoordinationService, Flag, Progress
from scorer.services.database import DatabaseService, Restored, database_exists, resolve
from scorer.services.drift import DriftReport, DriftService
from scorer.services.errors import (
    AuthError,
    Conflict,
    InvalidInput,
    Locked,
    NotFound,
    PermissionDenied,
    ScorerError,
    SessionLocked,
    Unavailable,
)
from scorer.services.exchange import ExchangeService
from scorer.services.images import ImagesService, QcImpact
from scorer.services.joints import JointsService
from scorer.services.operation import Context
from scorer.services.oversight import OversightService, TimelineEntry, verify_store
from scorer.services.read_views import OpenedCase, ReadView, ScoreAck, content_hash
from scorer.services.reading import MEANINGS, ReadingService
from scorer.services.session import Settings, UserSession, format_time, new_code
from scorer.services.sessions import ImageTime, ReadingSession
from scorer.services.trials import DESIGNS, TrialsService
from scorer.services.validation import MAX_NAME, MAX_TEXT
from scorer.services.worklists import WorklistRow, WorklistsService
from scorer.store.audit import Verification
from scorer.store.database import Store
from scorer.store.location import Location

__all__ = [
    "DESIGNS",
    "MAX_NAME",
    "MAX_TEXT",
    "MEANINGS",
    "QC_STATES",
    "AdjudicationUpdate",
    "Adjudications",
    "AuthError",
    "CalibrationFeedback",
    "CalibrationReport",
    "CalibrationWorklists",
    "Conflict",
    "DriftReport",
    "Flag",
    "ImageTime",
    "InvalidInput",
    "Locked",
    "NotFound",
    "OpenedCase",
    "PermissionDenied",
    "Progress",
    "QcImpact",
    "ReadView",
    "ReadingSession",
    "ScoreAck",
    "ScorerError",
    "SdcPreview",
    "SessionLocked",
    "Settings",
    "TimelineEntry",
    "Unavailable",
    "UserSession",
    "WorklistRow",
    "Workspace",
    "content_hash",
    "database_exists",
    "new_code",
    "resolve",
]

#: An image's QC states (passed, pending, failed), as the images service keeps them.
QC_STATES = ImagesService.QC_STATES


class Workspace:
    """One open database and its services. Create with :meth:`open` or :meth:`initialize`."""

    def __init__(
        self,
        store: Store,
        settings: Settings | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        ctx = Context(store, settings or Settings())
        if clock is not None:
            ctx.clock = clock
        self.store = store
        self.settings = ctx.settings
        self.accounts = AccountsService(ctx)
        self.trials = TrialsService(ctx)
        self.worklists = WorklistsService(ctx)
        self.reading = ReadingService(ctx)
        self.images = ImagesService(ctx)
        self.coordination = CoordinationService(ctx)
        self.calibration = CalibrationService(ctx)
        self.adjudication = AdjudicationService(ctx, self.trials)
        self.exchange = ExchangeService(ctx, self.calibration)
        self.oversight = OversightService(ctx)
        self.drift = DriftService(ctx)
        self.joints = JointsService(ctx)
        self.database = DatabaseService(ctx)

    # ----------------------------------------------------------------- the database itself

    @classmethod
    def open(
        cls,
        db: str | None = None,
        settings: Settings | None = None,
        clock: Callable[[], datetime] | None = None,
        location: Location | None = None,
    ) -> Workspace:
        """Open an existing database at its current schema; refuse an old or missing one."""
        return cls(database.open_store(location or resolve(db)), settings, clock)

    @classmethod
    def initialize(
        cls,
        admin_username: str,
        admin_full_name: str,
        admin_password: str,
        db: str | None = None,
        settings: Settings | None = None,
        clock: Callable[[], datetime] | None = None,
        location: Location | None = None,
    ) -> Workspace:
        """Create the database, the audit key and the first admin account."""
        now = format_time(clock() if clock else datetime.now(UTC))
        store = database.create_store(
            admin_username, admin_full_name, admin_password, location or resolve(db), now
        )
        return cls(store, settings, clock)

    @staticmethod
    def migrate(db: str | None = None, location: Location | None = None) -> tuple[str | None, str]:
        """Upgrade a database's schema to this scorer's (audited); (before, after)."""
        return database.migrate(db, location)

    @staticmethod
    def grant_workstation(
        role: str, db: str | None = None, location: Location | None = None
    ) -> list[str]:
        """Give a PostgreSQL role what a reading centre's server needs (see
        :func:`scorer.services.database.grant_workstation`)."""
        return database.grant_workstation(role, db, location)

    @staticmethod
    def revoke_workstation(
        role: str, drop: bool = False, db: str | None = None, location: Location | None = None
    ) -> list[str]:
        """Take a PostgreSQL role's privileges away, and drop it when asked (see
        :func:`scorer.services.database.revoke_workstation`)."""
        return database.revoke_workstation(role, drop, db, location)

    @staticmethod
    def restore(archive: Path, db: str | None = None, location: Location | None = None) -> Restored:
        """Restore a backup to a new database path, checked, then verified."""
        return database.restore(archive, db, location)

    def verify(self) -> Verification:
        """Verify the audit chain, the event chain, the receipts and every signature."""
        return verify_store(self.store)

    def close(self) -> None:
        self.store.close()
