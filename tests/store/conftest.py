"""Shared fixtures for the store and facade tests: a settable clock, and one populated database
built once per test session and copied (database, audit key, receipts) for each test.

Argon2 hashing costs a noticeable fraction of a second per call, so the users, the trial and the
reads are made once; a test that changes data works on its own copy in its ``tmp_path``.

Every test of ``populated_copy`` runs twice: on an SQLite file (copied) and on a PostgreSQL
server (a database created from the template database), with the audit key and receipts
copied beside it and named in a config file, as a reading centre's workstations name them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from scorer.core.methods import Area, get_method
from scorer.core.reads import AreaScore
from scorer.store.schema import User
from scorer.workspace import UserSession, Workspace
from tests.behind import behind
from tests.pg import PgServer, pg_server  # noqa: F401  (the fixture)

#: The time every populated database is built at (a Monday morning, UTC).
POPULATED_START = datetime(2025, 3, 3, 9, 0, 0, tzinfo=UTC)

#: The trial of the populated database, its visits and its patients (real identifiers).
POPULATED_TRIAL = "T1"
POPULATED_VISITS = (("W0", 0.0), ("W24", 24.0))
POPULATED_REAL_IDS = ("HOSP-0001", "HOSP-0002", "HOSP-0003")

#: username -> (full name, role, password). None of the passwords contains its user ID.
POPULATED_USERS: dict[str, tuple[str, str, str]] = {
    "admin": ("Ada Admin", "admin", "Sunflower-Meadow-7"),
    "reader1": ("Rita Reader", "reader", "Tulip-Garden-2024"),
    "reader2": ("Rob Reader", "reader", "Maple-Harbour-2024"),
    "adjud1": ("Judith Adjudicator", "adjudicator", "Cedar-Lantern-2024"),
    "coord1": ("Cora Coordinator", "coordinator", "Willow-Compass-2024"),
    "monitor1": ("Moe Monitor", "monitor", "Granite-Beacon-2024"),
}

#: One user per role.
USER_OF_ROLE: dict[str, str] = {
    "reader": "reader1",
    "adjudicator": "adjud1",
    "coordinator": "coord1",
    "monitor": "monitor1",
    "admin": "admin",
}

SVH = get_method("svh")
#: The areas the "partial" reads score (the first three of the method's order).
PARTIAL_AREAS: tuple[Area, ...] = tuple(a.area for a in SVH.areas[:3])


class SettableClock:
    """A clock for ``Workspace(clock=...)`` that moves only when a test moves it."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now = self.now + timedelta(**kwargs)
        return self.now


def complete_scores(seed: int = 0) -> dict[Area, AreaScore]:
    """A valid entry for every svh area: two sides for foot erosion, one area not assessable."""
    out: dict[Area, AreaScore] = {}
    for i, d in enumerate(SVH.areas):
        if i == 5:
            out[d.area] = AreaScore.not_assessable("image_quality")
        elif d.sides:
            out[d.area] = AreaScore.from_sides([(i + seed) % 2, (i + seed + 1) % 3])
        else:
            out[d.area] = AreaScore.scored((i + seed) % (d.max + 1))
    return out


def fill_read(ws: Workspace, s: UserSession, code: str, seed: int = 0) -> None:
    """Score every area of an svh read through the facade."""
    for area, value in complete_scores(seed).items():
        ws.reading.set_score(s, code, area, value)


@dataclass
class PopulatedTemplate:
    """The built database: its folder and file stem, and what is in it."""

    folder: Path
    stem: str
    db: str  # the SQLite file's path, or the template database's URL
    patients: dict[str, str]  # real ID -> code
    reads: dict[str, dict[str, str]]  # username -> label -> read code
    cases: dict[str, list[str]]  # username -> worklist case codes
    sessions: dict[str, UserSession]  # username -> a fresh session logged in at the start
    start: datetime = POPULATED_START

    @property
    def backend(self) -> str:
        return "postgresql" if self.db.startswith("postgresql") else "sqlite"


@dataclass
class PopulatedCopy:
    """A test's own copy of the populated database, opened with a settable clock."""

    ws: Workspace
    clock: SettableClock
    db: str  # what --db takes: the SQLite file's path or the server database's URL
    folder: Path  # the test's own folder: the copy's key and receipts, files it writes
    template: PopulatedTemplate
    _sessions: dict[str, UserSession] = field(default_factory=dict)

    @property
    def backend(self) -> str:
        return self.template.backend

    @property
    def path(self) -> Path:
        """The SQLite file (SQLite copies only)."""
        assert self.backend == "sqlite", "a PostgreSQL copy has no file: use .db"
        return Path(self.db)

    @property
    def key_path(self) -> Path:
        return self.folder / f"{self.template.stem}.audit-key"

    @property
    def receipts_path(self) -> Path:
        return self.folder / f"{self.template.stem}.receipts"

    @property
    def trial(self) -> str:
        return POPULATED_TRIAL

    @property
    def patients(self) -> dict[str, str]:
        return self.template.patients

    def patient(self, i: int) -> str:
        """The code of the i-th patient (0, 1, or 2 who has no reads)."""
        return self.template.patients[POPULATED_REAL_IDS[i]]

    def read(self, username: str, label: str) -> str:
        return self.template.reads[username][label]

    def cases(self, username: str) -> list[str]:
        """The user's worklist case codes (reader1's and reader2's: all three patients)."""
        return self.template.cases.get(username, [])

    def password(self, username: str) -> str:
        return POPULATED_USERS[username][2]

    def full_name(self, username: str) -> str:
        return POPULATED_USERS[username][0]

    def session(self, username: str) -> UserSession:
        """The user's session, logged in when the template was built (this copy's own object;
        the same object on every call within one test)."""
        if username not in self._sessions:
            self._sessions[username] = replace(self.template.sessions[username])
        return self._sessions[username]

    def session_of_role(self, role: str) -> UserSession:
        return self.session(USER_OF_ROLE[role])

    def user_of_role(self, role: str) -> str:
        return USER_OF_ROLE[role]

    def new_session(self, username: str) -> UserSession:
        """Log in afresh (costs an argon2 verification)."""
        return self.ws.accounts.login(username, self.password(username))

    @staticmethod
    def complete_scores(seed: int = 0) -> dict[Area, AreaScore]:
        return complete_scores(seed)

    def fill_read(self, s: UserSession, code: str, seed: int = 0) -> None:
        fill_read(self.ws, s, code, seed)

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a read-only query on the copy behind the facade (``?`` placeholders)."""
        with behind(self.db, readonly=True) as con:
            return con.rows(query, params)

    def sql_write(self, query: str, params: tuple[Any, ...] = ()) -> None:
        """Change the copy behind the facade (test set-up only)."""
        with behind(self.db) as con:
            con.execute(query, params)

    def audit(self, action: str | None = None) -> list[tuple[Any, ...]]:
        """Audit rows (seq, username, action, entity_id, old, new, reason), optionally of one
        action, straight from the database."""
        q = "SELECT seq, username, action, entity_id, old, new, reason FROM audit_events"
        if action is None:
            return self.sql(q + " ORDER BY seq")
        return self.sql(q + " WHERE action = ? ORDER BY seq", (action,))

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table: to show that a refused call changed nothing."""
        with behind(self.db, readonly=True) as con:
            return con.dump()


def _build_populated(folder: Path, db: str) -> PopulatedTemplate:
    clock = SettableClock(POPULATED_START)
    admin_name, _, admin_pw = POPULATED_USERS["admin"]
    ws = Workspace.initialize("admin", admin_name, admin_pw, db=str(db), clock=clock)
    try:
        admin = ws.accounts.login("admin", admin_pw)
        for username, (full_name, role, pw) in POPULATED_USERS.items():
            if username != "admin":
                ws.accounts.add_user(admin, username, full_name, role, pw)
    finally:
        ws.close()
    # The first-log-in password change costs four argon2 runs per user; test_accounts tests it
    # through the facade, so here it is cleared in one audited transaction of the store's own.
    ws = Workspace.open(db=str(db), clock=clock)
    with ws.store.write("system") as tx:
        for user in tx.session.scalars(select(User)):
            user.must_change_password = False
        tx.audit("test.setup", "users", "*", reason="the first-log-in change skipped")
    try:
        admin = ws.accounts.login("admin", admin_pw)
        coord = ws.accounts.login("coord1", POPULATED_USERS["coord1"][2])
        ws.trials.create_trial(coord, POPULATED_TRIAL, "Populated trial", visits=POPULATED_VISITS)
        patients = {
            real: ws.trials.add_patient(coord, POPULATED_TRIAL, real) for real in POPULATED_REAL_IDS
        }
        p0, p1 = (patients[r] for r in POPULATED_REAL_IDS[:2])
        # A reader starts reads only of their worklist's cases: both readers get a worklist.
        ws.worklists.assign_reader(coord, POPULATED_TRIAL, "reader1")
        ws.worklists.assign_reader(coord, POPULATED_TRIAL, "reader2")
        ws.worklists.generate_worklists(coord, POPULATED_TRIAL)

        reads: dict[str, dict[str, str]] = {}

        def make(username: str, plan: dict[str, tuple[str, str, str, str]]) -> None:
            pw = POPULATED_USERS[username][2]
            s = ws.accounts.login(username, pw)
            reads[username] = {}
            for label, (patient, visit, read_type, state) in plan.items():
                code = ws.reading.start_read(
                    s, POPULATED_TRIAL, patient, visit, read_type=read_type
                )
                reads[username][label] = code
                if state == "partial":
                    for area in PARTIAL_AREAS:
                        ws.reading.set_score(s, code, area, AreaScore.scored(1))
                else:
                    fill_read(ws, s, code, seed=len(reads[username]))
                if state == "signed":
                    ws.reading.sign_read(s, code, pw, username=username)
            ws.accounts.logout(s)

        make(
            "reader1",
            {
                "partial": (p0, "W0", "primary", "partial"),
                "complete": (p0, "W24", "primary", "complete"),
                "complete2": (p1, "W24", "primary", "complete"),
                "signed": (p1, "W0", "primary", "signed"),
            },
        )
        make(
            "reader2",
            {
                "partial": (p0, "W0", "primary", "partial"),
                "signed": (p0, "W24", "primary", "signed"),
            },
        )
        make(
            "adjud1",
            {
                "partial": (p1, "W0", "adjudication", "partial"),
                "complete": (p0, "W0", "adjudication", "complete"),
                "complete2": (p1, "W24", "adjudication", "complete"),
                "signed": (p0, "W24", "adjudication", "signed"),
            },
        )
        cases = {
            u: [row.code for row in ws.worklists.worklist(coord, POPULATED_TRIAL, reader=u)]
            for u in ("reader1", "reader2")
        }
        assert all(cases.values())
        # Fresh sessions (no signature given yet) for the tests.
        sessions = {"admin": admin, "coord1": coord}
        for u in POPULATED_USERS:
            if u not in sessions:
                sessions[u] = ws.accounts.login(u, POPULATED_USERS[u][2])
        assert ws.verify().ok
    finally:
        ws.close()
    for suffix in ("-wal", "-shm"):
        assert not (folder / f"populated.sqlite{suffix}").exists(), "WAL left after close"
    return PopulatedTemplate(folder, "populated", db, patients, reads, cases, sessions)


def _key_config(folder: Path, stem: str) -> Path:
    """A config file naming the audit key and receipts in ``folder`` (a server database keeps
    them outside the database, where the config says)."""
    config = folder / "scorer.toml"
    config.write_text(
        f'audit_key = "{folder / (stem + ".audit-key")}"\n'
        f'receipts = "{folder / (stem + ".receipts")}"\n',
        encoding="utf-8",
    )
    return config


@pytest.fixture(scope="session")
def populated_template(tmp_path_factory: pytest.TempPathFactory) -> PopulatedTemplate:
    """One SQLite database for the whole run: six users (one per role, plus a second reader),
    all past their first password change; trial T1 with visits W0 and W24 and three patients
    (the third without reads); reader1 and reader2 assigned to T1 with a worklist each; reads
    of reader1, reader2 (of their cases' visits, started outside the cases) and adjud1
    labelled partial / complete / complete2 / signed."""
    folder = tmp_path_factory.mktemp("populated")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCORER_DATA_DIR", str(folder / "data"))
        mp.setenv("SCORER_CONFIG", str(folder / "no-site-config.toml"))
        mp.delenv("SCORER_DB", raising=False)
        return _build_populated(folder, str(folder / "populated.sqlite"))


@pytest.fixture(scope="session")
def populated_pg_template(
    tmp_path_factory: pytest.TempPathFactory,
    pg_server: PgServer,  # noqa: F811
) -> PopulatedTemplate:
    """The same database on the PostgreSQL server, used as the template of each test's copy."""
    folder = tmp_path_factory.mktemp("populated-pg")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCORER_DATA_DIR", str(folder / "data"))
        mp.setenv("SCORER_CONFIG", str(_key_config(folder, "populated")))
        mp.delenv("SCORER_DB", raising=False)
        return _build_populated(folder, pg_server.new_database())


@pytest.fixture(params=["sqlite", "postgresql"])
def populated_copy(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[PopulatedCopy]:
    """The test's own copy of the populated database (with its audit key and receipts), opened
    with a clock one minute after the template's sessions logged in; once on SQLite, once on
    PostgreSQL."""
    template: PopulatedTemplate = request.getfixturevalue(
        "populated_template" if request.param == "sqlite" else "populated_pg_template"
    )
    folder = tmp_path / "populated-copy"
    folder.mkdir()
    for f in template.folder.iterdir():
        if f.is_file() and f.name.startswith(template.stem + "."):
            shutil.copy2(f, folder / f.name)
    server: PgServer | None = None
    if template.backend == "sqlite":
        db = str(folder / f"{template.stem}.sqlite")
    else:
        server = request.getfixturevalue("pg_server")
        db = server.new_database(template=template.db)
        monkeypatch.setenv("SCORER_CONFIG", str(_key_config(folder, template.stem)))
    clock = SettableClock(template.start + timedelta(minutes=1))
    ws = Workspace.open(db=db, clock=clock)
    try:
        yield PopulatedCopy(ws, clock, db, folder, template)
    finally:
        ws.close()
        if server is not None:
            server.drop_database(db)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a test makes its own database, once on each backend: an SQLite path in the test's
    folder, or a new empty database on the PostgreSQL server (its URL)."""
    if request.param == "sqlite":
        yield str(tmp_path / "t.sqlite")
        return
    server: PgServer = request.getfixturevalue("pg_server")
    url = server.new_database()
    try:
        yield url
    finally:
        server.drop_database(url)


@pytest.fixture
def settable_clock() -> SettableClock:
    """A clock at the populated database's start time, moved only by the test."""
    return SettableClock(POPULATED_START)


@pytest.fixture
def make_settable_clock() -> type[SettableClock]:
    """The clock class itself, for a test that wants its own start time."""
    return SettableClock
