"""A tamper suite by class (issue 27 item 2): the audit trail is the record and the tables its
projection, so every row changed behind scorer's back is named by ``scorer audit verify``.

For every projected table (``projected_tables()``, so a new table is covered as soon as it is
in the schema): an UPDATE of every column that is neither in the primary key nor exempt, the
DELETE of a row nothing references and the INSERT of a copy of a row under a fresh key, each
named by table, key and column in ``Verification.differences``; once per table
``scorer audit verify`` exits 1 naming the table. On SQLite the attacker holds the file (and
drops the append-only triggers, as anyone holding it can); on PostgreSQL the attacker is the
role the workstations connect with (``scorer grant``), which the server refuses any UPDATE or
DELETE of a signature.

Then the nine changes issue 27 found undetected, each by name; and the two attacks
verification cannot see (a tail of the trail cut together with its receipts and the tables put
back as they were; a change written into the trail with the stolen key), shown passing.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Boolean, CheckConstraint, Table, UniqueConstraint, create_engine, select

from scorer.cli import main
from scorer.store.audit import (
    Head,
    Verification,
    append_receipts,
    audit_content,
    compute_mac,
    load_key,
)
from scorer.store.grants import grant_workstation
from scorer.store.projection import EXEMPT_COLUMNS, projected_tables
from scorer.store.schema import (
    Adjudication,
    Assignment,
    AssignmentPatient,
    Campaign,
    Case,
    DriftAlert,
    Image,
    ImageRegion,
    JointPosition,
    JointProposal,
    LocatedJoint,
    LocatorRun,
    MissingRegion,
    Patient,
    Read,
    ReaderFlag,
    Release,
    Trial,
    User,
    Visit,
    Worklist,
)
from scorer.workspace import Workspace
from tests.behind import Behind, behind
from tests.pg import PgServer
from tests.store.conftest import POPULATED_TRIAL, PopulatedTemplate, _key_config

TABLES: dict[str, Table] = projected_tables()

#: Columns the signature check also covers: a change to one of them fails verification with the
#: signature check's error as well as the difference that names the column.
SIGNATURE_CHECKED: dict[tuple[str, str], str] = {
    ("trials", "locked"): "marked locked without a lock signature",
    ("signatures", "entity"): "is marked signed without a valid signature",
    ("signatures", "entity_id"): "does not match the audit trail",
    ("signatures", "kind"): "does not match the audit trail",
    ("signatures", "content_hash"): "does not match the audit trail",
}


# ------------------------------------------------------------------ the database under attack


@dataclass
class Copy:
    """A test's own copy of the extended populated database, with its key and receipts."""

    db: str  # the SQLite file or the server database's URL (the owner's login)
    folder: Path
    template: PopulatedTemplate
    role: str | None  # the workstations' PostgreSQL role

    @property
    def backend(self) -> str:
        return self.template.backend

    @property
    def key_path(self) -> Path:
        return self.folder / "populated.audit-key"

    @property
    def receipts_path(self) -> Path:
        return self.folder / "populated.receipts"

    @property
    def ws_url(self) -> str:
        """The database as the workstations' role logs in to it."""
        assert self.role is not None
        return self.db.replace("postgres@", f"{self.role}@", 1)


def _extend(ws: Workspace) -> None:
    """Rows for the tables the populated database leaves empty, and rows nothing references
    (to delete) where it has none: written through the store, so captured in the trail."""
    with ws.store.write("system") as tx:
        s = tx.session
        now = tx.now
        trial = s.scalars(select(Trial).where(Trial.code == POPULATED_TRIAL)).one()
        users = {u.username: u for u in s.scalars(select(User))}
        patients = list(s.scalars(select(Patient).order_by(Patient.id)))
        visits = list(s.scalars(select(Visit).order_by(Visit.id)))
        assignments = list(s.scalars(select(Assignment).order_by(Assignment.id)))
        cases = list(s.scalars(select(Case).order_by(Case.id)))
        campaign = s.scalars(select(Campaign)).first()
        assert campaign is not None and cases and len(assignments) == 2
        s.add_all(
            [Trial(code=c, name="Empty trial", methods="svh", created_at=now) for c in ("T2", "T3")]
        )
        s.add_all([Visit(trial_id=trial.id, label=v, nominal_week=52.0) for v in ("W52", "W104")])
        s.add(Patient(trial_id=trial.id, code="P-LEAF", real_id="HOSP-0099", created_at=now))
        s.add(
            User(
                username="spare1",
                full_name="Sam Spare",
                role="reader",
                password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
                must_change_password=True,
                created_at=now,
            )
        )
        images = [
            Image(
                trial_id=trial.id,
                patient_id=patients[0].id,
                visit_id=visits[0].id,
                code=f"IMG{i}",
                sha256=f"{i}" * 64,
                sop_instance_uid=f"1.2.826.0.1.{i}",
                acquisition_date="2024-05-0" + str(i),
                reader_path=f"readers/IMG{i}.dcm",
                original_path=f"/import/hosp/{i}.dcm",
                flags="",
                reader_sha256=f"{i + 2}" * 64,
                transfer_syntax="1.2.840.10008.1.2.1",
                rows=100 + i,
                columns=200 + i,
                source_name=f"film-{i}.dcm",
                created_at=now,
                masks="[[1,2,3,4]]",
                qc_state="passed",
                qc_reason="",
                pixel_sha256=f"{i + 4}" * 64,
            )
            for i in (1, 2, 3)
        ]
        s.add_all(images)
        s.flush()
        s.add_all([ImageRegion(image_id=images[0].id, region=r) for r in ("LH", "RH")])
        s.add_all(
            [
                JointPosition(
                    image_id=images[0].id,
                    region="LH",
                    joint=joint,
                    x=40.5 + n,
                    y=60.25,
                    source="fit",
                    placed_at=now,
                )
                for n, joint in enumerate(("MCP2", "MCP5"))
            ]
        )
        s.add_all(
            [
                JointProposal(
                    image_id=images[0].id,
                    region="LH",
                    joint=joint,
                    reference_id=images[0].id,  # images[1] stays unreferenced, to delete
                    x=41.5 + n,
                    y=61.0,
                    quality=0.875,
                    sure=n == 0,
                    distance_mm=0.25 if n == 0 else None,
                    computed_at=now,
                )
                for n, joint in enumerate(("MCP2", "MCP5"))
            ]
        )
        imported = images[2]  # (images[1] stays unreferenced, to delete)
        s.add_all(
            [
                LocatorRun(
                    image_id=img.id,
                    version="1",
                    kind=kind,
                    regions=regions,
                    reason=reason,
                    seconds=0.25,
                    ran_at=now,
                )
                for img, kind, regions, reason in (
                    (images[0], "hand", "LH RH", ""),
                    (imported, "other", "", "no hand or foot found on the film"),
                )
            ]
        )
        s.add_all(
            [
                LocatedJoint(
                    image_id=images[0].id,
                    region="LH",
                    joint=joint,
                    x=40.0 + n,
                    y=60.0,
                    confidence=0.5 + n / 4,
                    sure=n == 1,
                )
                for n, joint in enumerate(("MCP2", "MCP5"))
            ]
        )
        subset = assignments[1]
        s.add_all(
            [AssignmentPatient(assignment_id=subset.id, patient_id=p.id) for p in patients[:2]]
        )
        extra = [
            Campaign(trial_id=trial.id, number=n, name=f"Year {n}", visits='["W0"]', created_at=now)
            for n in (2, 3)
        ]
        s.add_all(extra)
        s.flush()
        s.add(
            Worklist(
                campaign_id=extra[0].id,
                reader_id=users["reader2"].id,
                seed="ab" * 8,
                inputs='{"patients":[]}',
                generated_at=now,
            )
        )
        s.add_all(
            [
                ReaderFlag(
                    case_id=cases[0].id,
                    raised_by=users["reader1"].id,
                    message=f"film {i} is blurred",
                    raised_at=now,
                    answer="rescanned" if i else "",
                    answered_by=users["coord1"].id if i else None,
                    closed_at=now if i else None,
                )
                for i in (0, 1)
            ]
        )
        s.add_all(
            [
                DriftAlert(
                    trial_id=trial.id,
                    reader_id=users["reader1"].id,
                    measure="difference",
                    direction=direction,
                    statistic=11.2,
                    limit=10.5,
                    reads=30 + n,
                    raised_at=now,
                    acknowledged_by=users["coord1"].id if n else None,
                    acknowledged_at=now if n else None,
                    note="spoke to the reader" if n else "",
                )
                for n, direction in enumerate(("up", "down"))
            ]
        )
        s.add_all(
            [
                MissingRegion(
                    trial_id=trial.id,
                    patient_id=patients[0].id,
                    visit_id=visits[0].id,
                    region=region,
                    reason="not sent",
                    created_by=users["coord1"].id,
                    created_at=now,
                )
                for region in ("LF", "RF")
            ]
        )
        s.add_all(
            [
                Release(
                    trial_id=trial.id,
                    user_id=users[u].id,
                    released_by=users["coord1"].id,
                    released_at=now,
                    reason="calibration passed",
                )
                for u in ("reader1", "reader2")
            ]
        )
        s.add_all(
            [
                Adjudication(
                    trial_id=trial.id,
                    patient_id=p.id,
                    reasons='["change differs"]',
                    changes='{"reader1": 1}',
                    rule='{"trigger": "change"}',
                    status="assigned" if i else "queued",
                    adjudicator_id=users["adjud1"].id if i else None,
                    case_id=cases[0].id if i else None,
                    result="",
                    queued_at=now,
                    done_at=None,
                )
                for i, p in enumerate(patients[:2])
            ]
        )
        # A read with no scores yet (nothing references it).
        s.add(
            Read(
                code="R-LEAF",
                trial_id=trial.id,
                patient_id=patients[1].id,
                visit_id=visits[0].id,
                reader_id=users["reader2"].id,
                method="svh",
                read_type="primary",
                status="in_progress",
                note="",
                origin="entered",
                created_at=now,
                updated_at=now,
            )
        )
        tx.audit("test.setup", "database", "*", reason="rows for the tamper suite")


def _copy_files(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file() and f.name.startswith("populated."):
            shutil.copy2(f, dst / f.name)


@pytest.fixture(scope="session")
def workstation_role(pg_server: PgServer) -> str:
    """A PostgreSQL role of this test run, to be granted as the workstations' role."""
    role = "ws_" + uuid.uuid4().hex[:8]
    with behind(pg_server.url()) as con:
        con.execute(f"CREATE ROLE {role} LOGIN")
    return role


def _build(
    template: PopulatedTemplate, folder: Path, db: str, role: str | None
) -> PopulatedTemplate:
    ws = Workspace.open(db=db)
    try:
        _extend(ws)
        result = ws.verify()
        assert result.ok, result.errors
    finally:
        ws.close()
    if role is not None:
        eng = create_engine(db)
        try:
            with eng.begin() as conn:
                grant_workstation(conn, role)
        finally:
            eng.dispose()
    return PopulatedTemplate(
        folder, "populated", db, template.patients, template.reads, template.cases, {}
    )


@pytest.fixture(scope="session")
def extended_template(
    populated_template: PopulatedTemplate, tmp_path_factory: pytest.TempPathFactory
) -> PopulatedTemplate:
    folder = tmp_path_factory.mktemp("tamper-classes")
    _copy_files(populated_template.folder, folder)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCORER_DATA_DIR", str(folder / "data"))
        mp.setenv("SCORER_CONFIG", str(folder / "no-site-config.toml"))
        mp.delenv("SCORER_DB", raising=False)
        return _build(populated_template, folder, str(folder / "populated.sqlite"), None)


@pytest.fixture(scope="session")
def extended_pg_template(
    populated_pg_template: PopulatedTemplate,
    tmp_path_factory: pytest.TempPathFactory,
    pg_server: PgServer,
    workstation_role: str,
) -> PopulatedTemplate:
    folder = tmp_path_factory.mktemp("tamper-classes-pg")
    _copy_files(populated_pg_template.folder, folder)
    db = pg_server.new_database(template=populated_pg_template.db)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCORER_DATA_DIR", str(folder / "data"))
        mp.setenv("SCORER_CONFIG", str(_key_config(folder, "populated")))
        mp.delenv("SCORER_DB", raising=False)
        return _build(populated_pg_template, folder, db, workstation_role)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Copy]:
    """The test's own copy of the extended populated database, on SQLite and on PostgreSQL."""
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SCORER_DB", raising=False)
    folder = tmp_path / "copy"
    if request.param == "sqlite":
        template: PopulatedTemplate = request.getfixturevalue("extended_template")
        monkeypatch.setenv("SCORER_CONFIG", str(tmp_path / "no-site-config.toml"))
        _copy_files(template.folder, folder)
        yield Copy(str(folder / "populated.sqlite"), folder, template, None)
        return
    template = request.getfixturevalue("extended_pg_template")
    server: PgServer = request.getfixturevalue("pg_server")
    role: str = request.getfixturevalue("workstation_role")
    _copy_files(template.folder, folder)
    monkeypatch.setenv("SCORER_CONFIG", str(_key_config(folder, "populated")))
    url = server.new_database(template=template.db)
    try:
        yield Copy(url, folder, template, role)
    finally:
        server.drop_database(url)


@contextmanager
def attacker(db: Copy) -> Iterator[Behind]:
    """The attacker's connection: the SQLite file with the append-only triggers dropped, or
    the PostgreSQL database as the workstations' role (which cannot drop them)."""
    if db.backend == "sqlite":
        with behind(db.db) as con:
            con.drop_append_only_triggers()
            yield con
    else:
        with behind(db.ws_url) as con:
            assert con.rows("SELECT current_user")[0][0] == db.role
            yield con


@contextmanager
def owner(db: Copy) -> Iterator[Behind]:
    """The database as its owner (SQLite: the file), the append-only triggers dropped."""
    with behind(db.db) as con:
        con.drop_append_only_triggers()
        yield con


def verify(db: Copy) -> Verification:
    ws = Workspace.open(db=db.db)
    try:
        return ws.verify()
    finally:
        ws.close()


def named(result: Verification) -> set[tuple[str, str, str]]:
    return {(t, k, c) for t, k, c, _ in result.differences}


def assert_named(db: Copy, *expected: tuple[str, str, str]) -> Verification:
    """Verification fails and its differences are exactly the expected (table, key,
    column)s."""
    result = verify(db)
    assert not result.ok, "tampering not detected"
    assert named(result) == set(expected), result.errors
    return result


def cli_verify(db: Copy, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(["audit", "verify", "--db", db.db, "--maintenance"])  # the server host's
    out, err = capsys.readouterr()
    return rc, out + err


# ------------------------------------------------------------------ rows and values


def q(name: str) -> str:
    return f'"{name}"'


def pk_columns(table: str) -> list[str]:
    return [c.name for c in TABLES[table].primary_key.columns]


def key_of(table: str, row: dict[str, Any]) -> str:
    """The key verification names a row by: its primary key values as a JSON list."""
    return json.dumps([row[c] for c in pk_columns(table)], separators=(",", ":"))


def rows_of(con: Behind, table: str) -> list[dict[str, Any]]:
    order = ", ".join(q(c) for c in pk_columns(table))
    cur = con.execute(f"SELECT * FROM {q(table)} ORDER BY {order}")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def where_key(table: str, row: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    cols = pk_columns(table)
    return " AND ".join(f"{q(c)} = ?" for c in cols), tuple(row[c] for c in cols)


def protected(con: Behind, table: str) -> set[str]:
    """Keys of rows a change to would be caught by the signature check before the tables are
    compared: signed reads (and reads with a signature), and their scores."""
    signed = con.rows(
        "SELECT id FROM reads WHERE status = 'signed' OR code IN "
        "(SELECT entity_id FROM signatures WHERE entity = 'read')"
    )
    ids = {r[0] for r in signed}
    if table == "reads":
        return {json.dumps([i]) for i in ids}
    if table == "area_scores":
        return {key_of(table, r) for r in rows_of(con, table) if r["read_id"] in ids}
    # A signed read's content names its trial, patient, visit and reader (by code, label and
    # username): the rows a signed read points at.
    out: set[str] = set()
    for fk in TABLES["reads"].foreign_keys:
        if fk.column.table.name == table and fk.parent.name != "case_id":
            for r in rows_of(con, "reads"):
                if r["id"] in ids:
                    out.add(json.dumps([r[fk.parent.name]]))
    return out


def referenced(con: Behind, table: str) -> set[str]:
    """Keys of the table's rows some foreign key points at."""
    keys: set[str] = set()
    for other in TABLES.values():
        for fk in other.foreign_keys:
            if fk.column.table.name != table:
                continue
            col = fk.column.name
            used = {r[0] for r in con.rows(f"SELECT {q(fk.parent.name)} FROM {q(other.name)}")}
            for row in rows_of(con, table):
                if row[col] in used:
                    keys.add(key_of(table, row))
    return keys


def enum_values(table: str, column: str) -> list[str]:
    """The values a CHECK constraint allows the column (``column IN (...)``), 'signed' last
    (a read marked signed without a signature is the signature check's)."""
    for c in TABLES[table].constraints:
        if isinstance(c, CheckConstraint):
            m = re.search(rf"\b{column} IN \(([^)]*)\)", str(c.sqltext))
            if m:
                return sorted(re.findall(r"'([^']*)'", m.group(1)), key=lambda v: v == "signed")
    return []


def changed_text(value: str, tag: str = "x") -> list[str]:
    """Other valid texts for a column: JSON stays JSON; the same length otherwise (columns
    have lengths on PostgreSQL)."""
    out: list[str] = []
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        out.append(json.dumps({**parsed, "tampered": tag}))
    elif isinstance(parsed, list):
        out.append(json.dumps([*parsed, 1]))
    if value:
        for c in (tag, "y", "z"):
            if value[-1] != c:
                out.append(value[:-1] + c)
                break
    else:
        out.append(tag)
    return out


def candidates(con: Behind, table: str, column: str, current: Any) -> list[Any]:
    """Values to try for a changed column, valid for the schema (foreign keys point at other
    existing rows, CHECK constraints hold)."""
    col = TABLES[table].c[column]
    if col.foreign_keys:
        target = next(iter(col.foreign_keys)).column
        ids = con.rows(f"SELECT {q(target.name)} FROM {q(target.table.name)} ORDER BY 1")
        return [v for (v,) in ids if v != current]
    allowed = enum_values(table, column)
    if allowed:
        return [v for v in allowed if v != current]
    if isinstance(col.type, Boolean):
        return [not bool(current)]
    py = col.type.python_type
    if py is int:
        return [(current or 0) + 1, (current or 0) + 1000]
    if py is float:
        return [(current or 0.0) + 1.5]
    if current is None:
        return ["2024-01-02", "x"]
    return changed_text(str(current))


def try_sql(con: Behind, sql: str, params: tuple[Any, ...]) -> bool:
    try:
        con.execute(sql, params)
    except con.Error:
        return False
    return True


def update_columns(
    con: Behind, table: str, columns: list[str], avoid: set[str]
) -> set[tuple[str, str, str]]:
    """Change each column in one row (a valid new value), rows in ``avoid`` left alone;
    returns the (table, key, column) changed. Fails naming a column no row could take a
    change of."""
    rows = [r for r in rows_of(con, table) if key_of(table, r) not in avoid]
    assert rows, f"{table}: no row to change (extend _extend)"
    done: set[tuple[str, str, str]] = set()
    for column in columns:
        # Rows with a value first: a value that must stay paired with another (score or
        # reason) can only change where it is set.
        ordered = sorted(rows, key=lambda r, c=column: r[c] is None)  # type: ignore[misc]
        hit = False
        for row in ordered:
            cond, params = where_key(table, row)
            for value in candidates(con, table, column, row[column]):
                sql = f"UPDATE {q(table)} SET {q(column)} = ? WHERE {cond}"
                if try_sql(con, sql, (value, *params)):
                    row[column] = value
                    done.add((table, key_of(table, row), column))
                    hit = True
                    break
            if hit:
                break
        assert hit, f"{table}.{column}: no valid change found in any row"
    return done


def unique_columns(table: str) -> set[str]:
    out: set[str] = set()
    for c in TABLES[table].constraints:
        if isinstance(c, UniqueConstraint):
            out.update(col.name for col in c.columns)
    out.update(c.name for c in TABLES[table].columns if c.unique)
    return out


def insert_copy(con: Behind, table: str, source: dict[str, Any]) -> str:
    """Insert a copy of ``source`` under a fresh key, with fresh values where they must be
    unique; returns the new row's key."""
    t = TABLES[table]
    row = dict(source)
    pk = pk_columns(table)
    fresh = [c for c in sorted(set(pk) | unique_columns(table)) if not t.c[c].foreign_keys]
    for c in fresh:
        if t.c[c].type.python_type is int:
            top = con.rows(f"SELECT max({q(c)}) FROM {q(table)}")[0][0] or 0
            row[c] = top + 1000
        elif row[c] is not None:
            row[c] = str(row[c])[:-2] + "Q9" if len(str(row[c])) > 2 else "Q9"
    cols = ", ".join(q(c) for c in row)
    marks = ", ".join("?" for _ in row)
    sql = f"INSERT INTO {q(table)} ({cols}) VALUES ({marks})"
    if try_sql(con, sql, tuple(row.values())):
        return key_of(table, row)
    # A key or unique set made of foreign keys only: point one of them elsewhere.
    for c in [
        c
        for c in t.columns
        if c.foreign_keys and (c.name in pk or c.name in fresh or c.name in unique_columns(table))
    ]:
        for value in candidates(con, table, c.name, source[c.name]):
            attempt = {**row, c.name: value}
            if try_sql(con, sql, tuple(attempt.values())):
                return key_of(table, attempt)
    raise AssertionError(f"{table}: no copy of {key_of(table, source)} could be inserted")


def signature_checked(db: Copy, table: str, column: str) -> None:
    """A column verification checks against the signatures (SIGNATURE_CHECKED): a change
    fails verification on the signature check and is named among the differences too; then
    it is undone. The workstations' role cannot change a signature at all."""
    with attacker(db) as con:
        row = rows_of(con, table)[0]
        cond, params = where_key(table, row)
        value = candidates(con, table, column, row[column])[0]
        sql = f"UPDATE {q(table)} SET {q(column)} = ? WHERE {cond}"
        if db.backend == "postgresql" and table == "signatures":
            with pytest.raises(con.Error, match="permission denied"):
                con.execute(sql, (value, *params))
            return
        con.execute(sql, (value, *params))
    result = verify(db)
    assert not result.ok
    assert any(SIGNATURE_CHECKED[(table, column)] in e for e in result.errors), result.errors
    assert (table, key_of(table, row), column) in named(result), result.errors
    with attacker(db) as con:
        con.execute(sql, (row[column], *params))


# ------------------------------------------------------------------ the class suite


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_change_to_a_projected_table_is_named(
    db: Copy, table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """UPDATE of each column, DELETE of a row, INSERT of a row: each named by table, key and
    column (cumulatively: every difference is reported on its own)."""
    pk = pk_columns(table)
    columns = [
        c.name
        for c in TABLES[table].columns
        if c.name not in pk
        and (table, c.name) not in EXEMPT_COLUMNS
        and (table, c.name) not in SIGNATURE_CHECKED
    ]
    pg_append_only = db.backend == "postgresql" and table == "signatures"
    with attacker(db) as con:
        rows = rows_of(con, table)
        assert rows, f"{table}: the populated database has no row (extend _extend)"
        avoid = protected(con, table)
        leaves = [r for r in rows if key_of(table, r) not in avoid | referenced(con, table)]
        assert leaves, f"{table}: no row nothing references, to delete (extend _extend)"
        victim = leaves[-1]
        source = next(r for r in rows if key_of(table, r) not in avoid)
        if pg_append_only:
            # The workstations' role may only append signatures: the server refuses the rest.
            cond, params = where_key(table, victim)
            for sql in (
                f"UPDATE signatures SET printed_name = 'Mallory' WHERE {cond}",
                f"DELETE FROM signatures WHERE {cond}",
            ):
                with pytest.raises(con.Error, match="permission denied"):
                    con.execute(sql, params)
            updated: set[tuple[str, str, str]] = set()
        else:
            updated = update_columns(con, table, columns, avoid | {key_of(table, victim)})
    expected = set(updated)
    if updated:
        assert {c for _, _, c in updated} == set(columns)
        assert_named(db, *expected)
        rc, out = cli_verify(db, capsys)
        assert rc == 1 and table in out, out
    for column in [c for t, c in SIGNATURE_CHECKED if t == table]:
        signature_checked(db, table, column)

    if not pg_append_only:
        with attacker(db) as con:
            cond, params = where_key(table, victim)
            con.execute(f"DELETE FROM {q(table)} WHERE {cond}", params)
        if table == "signatures":
            # A signature the trail knows is gone: the signature check's (SIGNATURE_CHECKED).
            result = verify(db)
            assert not result.ok
            gone = f"signature {victim['id']} of read {victim['entity_id']} is in the audit trail"
            assert any(gone in e for e in result.errors), result.errors
        else:
            expected.add((table, key_of(table, victim), ""))
            assert_named(db, *expected)

    with attacker(db) as con:
        new_key = insert_copy(con, table, source)
    if table == "signatures":
        # A signature the trail does not know: named by the signature check (and among the
        # differences, see SIGNATURE_CHECKED).
        result = verify(db)
        assert not result.ok
        assert any("does not match the audit trail" in e for e in result.errors), result.errors
        return
    expected.add((table, new_key, ""))
    assert_named(db, *expected)


# ------------------------------------------------------------------ the nine cases of issue 27


def read_id(con: Behind, code: str) -> int:
    return int(con.rows("SELECT id FROM reads WHERE code = ?", (code,))[0][0])


def user_id(con: Behind, username: str) -> int:
    return int(con.rows("SELECT id FROM users WHERE username = ?", (username,))[0][0])


def signature_of(con: Behind, code: str) -> int:
    found = con.rows(
        "SELECT id FROM signatures WHERE entity = 'read' AND entity_id = ? AND kind = 'sign' "
        "ORDER BY id DESC",
        (code,),
    )
    return int(found[0][0])


def assert_cli_names(
    db: Copy, capsys: pytest.CaptureFixture[str], table: str, key: str, column: str
) -> None:
    rc, out = cli_verify(db, capsys)
    assert rc == 1, out
    assert f"{table} {key}" + (f" column {column}" if column else "") in out, out


def test_a_signed_reads_scores_edited_after_its_origin_is_set_to_imported(
    db: Copy, capsys: pytest.CaptureFixture[str]
) -> None:
    """Signed reads of another origin than 'entered' are not compared with their signature;
    the trail still knows the origin and every score."""
    code = db.template.reads["reader1"]["signed"]
    with attacker(db) as con:
        rid = read_id(con, code)
        con.execute("UPDATE reads SET origin = 'imported' WHERE id = ?", (rid,))
        region, joint, feature, score = con.rows(
            "SELECT region, joint, feature, score FROM area_scores WHERE read_id = ? AND "
            "score IS NOT NULL AND sides IS NULL ORDER BY position",
            (rid,),
        )[0]
        con.execute(
            "UPDATE area_scores SET score = ? WHERE read_id = ? AND region = ? AND joint = ? "
            "AND feature = ?",
            (score + 1, rid, region, joint, feature),
        )
    score_key = json.dumps([rid, region, joint, feature], separators=(",", ":"))
    assert_named(db, ("reads", f"[{rid}]", "origin"), ("area_scores", score_key, "score"))
    assert_cli_names(db, capsys, "area_scores", score_key, "score")


def test_a_forged_signed_read_inserted(db: Copy, capsys: pytest.CaptureFixture[str]) -> None:
    """A copy of reader1's signed read under a new code, with its scores: as an entered read
    it fails the signature check; marked imported (so no signature is looked for), the
    tables name it and each of its scores."""
    code = db.template.reads["reader1"]["signed"]
    with attacker(db) as con:
        read = next(r for r in rows_of(con, "reads") if r["code"] == code)
        scores = [r for r in rows_of(con, "area_scores") if r["read_id"] == read["id"]]
        forged = {**read, "id": read["id"] + 500, "code": "FORGED000001"}
        cols = ", ".join(q(c) for c in forged)
        marks = ", ".join("?" for _ in forged)
        con.execute(f"INSERT INTO reads ({cols}) VALUES ({marks})", tuple(forged.values()))
        for s in scores:
            row = {**s, "read_id": forged["id"]}
            cols = ", ".join(q(c) for c in row)
            marks = ", ".join("?" for _ in row)
            con.execute(f"INSERT INTO area_scores ({cols}) VALUES ({marks})", tuple(row.values()))
    result = verify(db)
    assert not result.ok
    assert result.errors[0] == "read FORGED000001 is marked signed without a valid signature"
    assert ("reads", f"[{forged['id']}]", "") in named(result), result.errors
    with attacker(db) as con:
        con.execute("UPDATE reads SET origin = 'imported' WHERE code = 'FORGED000001'")
    expected = [("reads", f"[{forged['id']}]", "")] + [
        ("area_scores", key_of("area_scores", {**s, "read_id": forged["id"]}), "") for s in scores
    ]
    assert len(expected) > 10
    assert_named(db, *expected)
    assert_cli_names(db, capsys, "reads", f"[{forged['id']}]", "")


def _change_signature(db: Copy, column: str, value: Any) -> str:
    """Change a column of reader1's signature: refused to the workstations' role on
    PostgreSQL (append-only by privilege), so done there as the database's owner."""
    code = db.template.reads["reader1"]["signed"]
    with attacker(db) as con:
        sid = signature_of(con, code)
        sql = f"UPDATE signatures SET {q(column)} = ? WHERE id = ?"
        if db.backend == "postgresql":
            with pytest.raises(con.Error, match="permission denied"):
                con.execute(sql, (value, sid))
    if db.backend == "postgresql":
        with owner(db) as con:
            con.execute(sql, (value, sid))
    else:
        with attacker(db) as con:
            con.execute(sql, (value, sid))
    return f"[{sid}]"


def test_a_signatures_signer_changed(db: Copy, capsys: pytest.CaptureFixture[str]) -> None:
    with behind(db.db) as con:
        other = user_id(con, "reader2")
    key = _change_signature(db, "user_id", other)
    assert_named(db, ("signatures", key, "user_id"))
    assert_cli_names(db, capsys, "signatures", key, "user_id")


def test_a_signatures_printed_name_changed(db: Copy, capsys: pytest.CaptureFixture[str]) -> None:
    key = _change_signature(db, "printed_name", "Rob Reader")
    result = assert_named(db, ("signatures", key, "printed_name"))
    assert "'Rita Reader', the table 'Rob Reader'" in result.differences[0][3]
    assert_cli_names(db, capsys, "signatures", key, "printed_name")


def test_a_signatures_meaning_changed(db: Copy, capsys: pytest.CaptureFixture[str]) -> None:
    key = _change_signature(db, "meaning", "approved")
    assert_named(db, ("signatures", key, "meaning"))
    assert_cli_names(db, capsys, "signatures", key, "meaning")


def test_a_signatures_time_changed(db: Copy, capsys: pytest.CaptureFixture[str]) -> None:
    key = _change_signature(db, "signed_at", "2025-03-01T09:00:00.000000Z")
    assert_named(db, ("signatures", key, "signed_at"))
    assert_cli_names(db, capsys, "signatures", key, "signed_at")


def test_two_patients_real_ids_swapped(db: Copy, capsys: pytest.CaptureFixture[str]) -> None:
    """Real IDs are in the trail as HMAC digests: the swap is named, the IDs are not shown."""
    with attacker(db) as con:
        (a, ra), (b, rb) = con.rows(
            "SELECT id, real_id FROM patients WHERE real_id IN (?, ?) ORDER BY id",
            ("HOSP-0001", "HOSP-0002"),
        )
        con.execute("BEGIN")
        con.execute("UPDATE patients SET real_id = 'swap' WHERE id = ?", (a,))
        con.execute("UPDATE patients SET real_id = ? WHERE id = ?", (ra, b))
        con.execute("UPDATE patients SET real_id = ? WHERE id = ?", (rb, a))
        con.execute("COMMIT")
    result = assert_named(db, ("patients", f"[{a}]", "real_id"), ("patients", f"[{b}]", "real_id"))
    text = "\n".join(result.errors)
    assert "HOSP-000" not in text and "an identifying value: not shown" in text
    assert_cli_names(db, capsys, "patients", f"[{a}]", "real_id")


def test_a_trials_configuration_changed(db: Copy, capsys: pytest.CaptureFixture[str]) -> None:
    with attacker(db) as con:
        (tid, config), *_ = con.rows("SELECT id, config FROM trials WHERE code = 'T1'")
        changed = json.dumps({**json.loads(config), "adjudication_limit": 99})
        con.execute("UPDATE trials SET config = ? WHERE id = ?", (changed, tid))
    assert_named(db, ("trials", f"[{tid}]", "config"))
    assert_cli_names(db, capsys, "trials", f"[{tid}]", "config")


def test_a_users_role_changed(db: Copy, capsys: pytest.CaptureFixture[str]) -> None:
    with attacker(db) as con:
        uid = user_id(con, "reader1")
        con.execute("UPDATE users SET role = 'admin' WHERE id = ?", (uid,))
    result = assert_named(db, ("users", f"[{uid}]", "role"))
    assert "the audit trail says 'reader', the table 'admin'" in result.differences[0][3]
    assert_cli_names(db, capsys, "users", f"[{uid}]", "role")


# ------------------------------------------------------------------ what verification cannot see


def test_a_tail_cut_with_its_receipts_and_the_tables_put_back_verifies(db: Copy) -> None:
    """NOT DETECTED. The receipts are the only witness of how long the trail was: whoever
    can rewrite both the database (on PostgreSQL: as its owner; the workstations' role cannot
    delete audit rows) and the receipts file can cut the last transactions off the trail, cut
    their receipt lines, and put the rows those transactions changed back as they were. What
    is left is an intact shorter history, every table its projection. Only receipts kept out
    of the attacker's reach (an append-only attribute, another machine) would show it."""
    size = db.receipts_path.stat().st_size
    with behind(db.db) as con:
        audit_before = con.rows("SELECT max(seq) FROM audit_events")[0][0]
        events_before = con.rows("SELECT max(seq) FROM events")[0][0]
        rid = read_id(con, db.template.reads["reader1"]["partial"])
        saved = next(r for r in rows_of(con, "area_scores") if r["read_id"] == rid)
    ws = Workspace.open(db=db.db)
    try:
        from scorer.store.schema import AreaScoreRow

        with ws.store.write("reader1") as tx:
            pk = tuple(saved[c] for c in pk_columns("area_scores"))
            score = tx.session.get(AreaScoreRow, pk)
            assert score is not None
            score.score = (score.score or 0) + 1
            score.updated_at = tx.now
            tx.audit("read.score", "read", "x", reason="the change to hide")
    finally:
        ws.close()
    assert db.receipts_path.stat().st_size > size
    assert named(verify(db)) == set()
    with owner(db) as con:
        con.execute("DELETE FROM audit_events WHERE seq > ?", (audit_before,))
        con.execute("DELETE FROM events WHERE seq > ?", (events_before,))
        cond, params = where_key("area_scores", saved)
        cols = [c for c in saved if c not in pk_columns("area_scores")]
        sets = ", ".join(f"{q(c)} = ?" for c in cols)
        con.execute(
            f"UPDATE area_scores SET {sets} WHERE {cond}", (*[saved[c] for c in cols], *params)
        )
    with open(db.receipts_path, "r+b") as fh:
        fh.truncate(size)
    result = verify(db)
    assert result.ok, result.errors
    assert result.warnings == []


def test_a_change_written_into_the_trail_with_the_stolen_key_verifies(db: Copy) -> None:
    """NOT DETECTED. The audit key is what makes the trail trustworthy: whoever holds it
    (with the database and the receipts) writes a change into the trail exactly as scorer
    would (a ``data.rows`` audit row with a valid MAC, its receipt line) and the tables are
    the trail's projection again. On PostgreSQL the workstations' role can do it: it appends
    audit rows. Keeping the key from the workstations' OS accounts (or a signing service)
    is the only defence."""
    key = load_key(db.key_path)
    with attacker(db) as con:
        uid = user_id(con, "reader1")
        con.execute("UPDATE users SET role = 'admin' WHERE id = ?", (uid,))
        # An account's change goes into the centre's chain (0), after its head, with the next
        # seq of all the chains (the replay's order).
        (seq,) = con.rows("SELECT max(seq) FROM audit_events")[0]
        place, prev, at = con.rows(
            "SELECT coalesce(link, seq), mac, at FROM audit_events WHERE chain = 0 "
            "ORDER BY seq DESC"
        )[0]
        new = json.dumps(
            {"rows": [["users", "u", [uid], {"role": "admin"}]]},
            sort_keys=True,
            separators=(",", ":"),
        )
        # seq, at, username, action, entity, entity_id, old, new, reason, trial_id, session,
        # chain, link: the columns in the order the store's MAC covers them.
        columns: list[object] = [
            seq + 1,
            at,
            "admin",
            "data.rows",
            "transaction",
            "1",
            "",
            new,
            "",
            None,
            "",
            0,
            place + 1,
        ]
        mac = compute_mac(key, prev, audit_content(columns))
        con.execute(
            "INSERT INTO audit_events (seq, at, username, action, entity, entity_id, old, new, "
            "reason, trial_id, session, chain, link, mac) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*columns, mac),
        )
    append_receipts(db.receipts_path, [Head("audit_events", place + 1, mac)], at)
    result = verify(db)
    assert result.ok, result.errors
    assert result.warnings == []
    assert result.heads["audit_events"] == Head("audit_events", place + 1, mac)
    with behind(db.db) as con:
        assert con.rows("SELECT role FROM users WHERE id = ?", (uid,)) == [("admin",)]
