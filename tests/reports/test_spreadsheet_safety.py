"""Exports a spreadsheet opens safely (OWASP's CSV injection): a text starting with = + - @, tab
or carriage return is never run as a formula. Every CSV but the reads CSV puts ``'`` before
such a text; every XLSX holds it as a string cell (never a formula) with Excel's quote prefix;
numbers are never touched; control characters XLSX cannot hold are written ``\\xNN``. The
reads CSV keeps raw values (its round trip stays byte-identical), so its IDs and codes may not
start with - + = @: refused on import (line and column) and where they are made.

The store: a reader whose printed name is ``=cmd`` writes a note ``@SUM(1+1)`` and a tab-led
note, reopens reads giving the reasons ``-2`` and ``+1``, and grades one patient lower at W52
(a negative change); the trial is locked; allocation arms are ``=cmd`` and ``@SUM(1+1)``. Then
every export: reads, totals, audit trail (coordinator's and monitor's), agreement report XLSX,
endpoints XLSX, the transfer package (its CSVs and XLSX), the monitor's session and trail CSVs
through its window, and the session and audit documents as XLSX."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import zipfile
from collections.abc import Collection, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from pytestqt.qtbot import QtBot

from scorer.cli import main
from scorer.core.cells import FORMULA_LEADS, csv_text, set_xlsx_cell
from scorer.core.methods import MethodError, parse_method
from scorer.core.protocol import Protocol, ProtocolError, VisitDef
from scorer.core.protocol import validate as validate_protocol
from scorer.core.readscsv import HEADER, ReadsCsvError, format_reads_csv, parse_reads_csv
from scorer.reports.document import Document, Section, Table, table_csv, write
from scorer.workspace import InvalidInput, UserSession, Workspace
from tests.desk.conftest import PASSWORD, scores

NOTE = "@SUM(1+1)"
TAB_NOTE = "\tTab-led note"
REASONS = ("-2", "+1")
# Patient -> ((W0, W52) of the reader =cmd, (W0, W52) of r2); P6 is graded lower at W52.
DATA = {
    "P1": ((0, 1), (0, 2)),
    "P2": ((3, 3), (3, 5)),
    "P3": ((1, 2), (1, 1)),
    "P4": ((6, 5), (6, 9)),
    "P5": ((2, 2), (2, 4)),
    "P6": ((4, 2), (5, 3)),
}
ARMS = {"P1": "=cmd", "P2": "=cmd", "P3": "=cmd", "P4": NOTE, "P5": NOTE, "P6": NOTE}


@pytest.fixture
def trial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    ws = Workspace.initialize("ada", "Ada Admin", "Sunflower-Meadow-7", db=str(tmp_path / "d.db"))
    admin = ws.accounts.login("ada", "Sunflower-Meadow-7")

    def user(name: str, printed: str, role: str) -> UserSession:
        ws.accounts.add_user(admin, name, printed, role, "Temporary-pass-0")
        s = ws.accounts.login(name, "Temporary-pass-0")
        ws.accounts.change_password(s, "Temporary-pass-0", PASSWORD)
        return s

    coord = user("cora", "Cora Coordinator", "coordinator")
    rcmd = user("rcmd", "=cmd", "reader")
    r2 = user("r2", "Rita Two", "reader")
    mona = user("mona", "Mona Monitor", "monitor")
    ws.trials.create_trial(coord, "SAFE", "Spreadsheet safety", visits=[("W0", 0.0), ("W52", 52.0)])
    for real in DATA:
        ws.trials.add_patient(coord, "SAFE", real)
    codes = {p.real_id: p.code for p in ws.trials.list_patients(coord, "SAFE")}
    first = {rcmd.username: True, r2.username: True}
    for s in (rcmd, r2):  # a reader reads their own worklist's cases
        ws.worklists.assign_reader(coord, "SAFE", s.username)
    ws.worklists.generate_worklists(coord, "SAFE")

    def sign(s: UserSession, code: str) -> None:
        ws.reading.sign_read(s, code, PASSWORD, username=s.username if first[s.username] else None)
        first[s.username] = False

    for i, s in enumerate((rcmd, r2)):
        for n, (real, visits) in enumerate(DATA.items()):
            for visit, total in zip(("W0", "W52"), visits[i], strict=True):
                code = ws.reading.start_read(s, "SAFE", codes[real], visit)
                ws.reading.set_scores(s, code, scores(total, base=n % 3))
                if s is rcmd and real == "P1":
                    ws.reading.set_note(s, code, NOTE if visit == "W0" else TAB_NOTE)
                sign(s, code)
                if s is rcmd and real == "P2":
                    ws.reading.reopen_read(s, code, REASONS[visit == "W52"])
                    sign(s, code)
    ws.accounts.logout(rcmd)  # the session's last event: its timeline spans the work above
    ws.trials.lock_trial(coord, "SAFE", PASSWORD, username="cora")
    yield {"ws": ws, "coord": coord, "rcmd": rcmd, "mona": mona, "codes": codes}
    ws.close()


def leads(text: str) -> bool:
    return text[:1] in FORMULA_LEADS


def check_csv(
    text: str, numeric: Collection[str] = (), prefixed: tuple[str, ...] = ()
) -> list[dict[str, str]]:
    """Every cell of a text column that a spreadsheet would run is ``'``-prefixed; a numeric
    column's cells are numbers, unprefixed; each of ``prefixed`` is there with its ``'``."""
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert rows
    cells = []
    for row in rows:
        for column, cell in row.items():
            cells.append(cell)
            if column in numeric:
                assert not cell or math.isfinite(float(cell)), (column, cell)
            else:
                assert not leads(cell), (column, cell)
    for want in prefixed:
        assert "'" + want in cells, want
    return rows


def check_xlsx(
    data: bytes, strings: tuple[str, ...] = (), containing: tuple[str, ...] = ()
) -> list[Any]:
    """No cell is a formula; every text starting with a formula lead is a quote-prefixed
    string cell; each of ``strings`` is there as a string cell, each of ``containing`` in one.
    Returns the numeric cells."""
    wb = load_workbook(io.BytesIO(data))
    found: set[str] = set()
    numbers = []
    for sheet in wb.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert cell.data_type == "s"
                    found.add(cell.value)
                    if leads(cell.value):
                        assert cell.quotePrefix, (sheet.title, cell.coordinate, cell.value)
                elif isinstance(cell.value, int | float) and not isinstance(cell.value, bool):
                    assert cell.data_type == "n"
                    numbers.append(cell.value)
    for want in strings:
        assert want in found, want
    for part in containing:
        assert any(part in text for text in found), part
    return numbers


def test_cells_a_spreadsheet_shows_as_text(tmp_path: Path) -> None:
    hostile = ["=cmd", NOTE, "+1", "-2", "\tx", "\rx", "a\x01b", "-1.5", "plain", "'quoted"]
    assert [csv_text(v) for v in hostile] == [
        "'=cmd",
        "'@SUM(1+1)",
        "'+1",
        "'-2",
        "'\tx",
        "'\rx",
        "a\x01b",
        "'-1.5",  # a text column's text, even when it reads as a number
        "plain",
        "'quoted",
    ]
    for number in (-1.5, -2, Decimal("-1.5"), 0, None):
        assert csv_text(number) is number
    # One table through the CSV and XLSX writers of the reports.
    row = [*hostile, -1.5, 3, Decimal("-2.5")]
    doc = Document(
        "=cmd",
        [("Printed name", "=cmd"), ("Note", NOTE)],
        [Section("S", [Table("T", "=caption", [f"c{i}" for i in range(len(row))], [row])])],
    )
    lines = list(csv.reader(io.StringIO(table_csv(doc.tables()[0]), newline="")))
    assert lines[1] == [*map(csv_text, hostile), "-1.5", "3", "-2.5"]
    path = write(doc, tmp_path / "t.xlsx")
    wb = load_workbook(path)
    assert wb["About"]["A1"].value == "=cmd" and wb["About"]["B2"].value == "=cmd"
    cells = wb["T"][3]
    got = [c.value for c in cells]
    # A carriage return reads back as a line feed (XML 1.0 normalises line ends); \x01, which
    # XLSX cannot hold, is written as the four characters \x01.
    assert got == [
        "=cmd",
        NOTE,
        "+1",
        "-2",
        "\tx",
        "\nx",
        "a\\x01b",
        "-1.5",
        "plain",
        "'quoted",
        -1.5,
        3,
        -2.5,
    ]
    assert [c.data_type for c in cells] == ["s"] * len(hostile) + ["n"] * 3
    assert [bool(c.quotePrefix) for c in cells[: len(hostile)]] == [
        True,
        True,
        True,
        True,
        True,
        True,
        False,
        True,
        False,
        False,
    ]
    check_xlsx(path.read_bytes(), ("=cmd", NOTE, "=caption"))
    # The cell writer on its own: a formula-looking text is never a formula.
    from openpyxl import Workbook

    ws = Workbook().active
    set_xlsx_cell(ws["A1"], "=1+1")
    assert ws["A1"].data_type == "s" and ws["A1"].value == "=1+1"


def test_every_export_opens_as_text(trial: dict[str, Any], tmp_path: Path, qtbot: QtBot) -> None:
    ws, coord, mona = trial["ws"], trial["coord"], trial["mona"]

    # The reads CSV: raw values, byte-identical round trip; the reader is a user ID.
    reads_text, manifest = ws.exchange.export_reads_with_manifest(coord, "SAFE")
    assert format_reads_csv(parse_reads_csv(reads_text)) == reads_text
    rows = list(csv.DictReader(io.StringIO(reads_text, newline="")))
    assert {r["reader"] for r in rows} == {"rcmd", "r2"}
    assert not any(leads(c) or c.startswith("'") for r in rows for c in r.values())

    # Totals: texts neutralised, totals as numbers (P6's change is negative, unprefixed).
    numeric = {"mtss", "erosion", "jsn", "change_mtss", "change_erosion", "change_jsn"}
    totals = check_csv(ws.exchange.export_totals(coord, "SAFE"), numeric)
    p6 = {r["reader"]: r["change_mtss"] for r in totals if r["patient"] == "P6"}
    assert p6 == {"rcmd": "-2", "r2": "-2"}

    # The audit trail, the coordinator's and the monitor's.
    for who in (coord, mona):
        audit = check_csv(ws.exchange.export_audit(who), {"seq"}, (NOTE, TAB_NOTE, *REASONS))
        assert any('"full_name":"=cmd"' in r["new"] for r in audit)  # the reader's printed
        assert any('"printed_name":"=cmd"' in r["new"] for r in audit)  # name, as text
        note = next(r for r in audit if r["action"] == "read.note")
        assert note["new"] == "'" + NOTE

    # The agreement report's XLSX: no formula; its numbers numbers (some negative).
    doc = ws.exchange.agreement_report(coord, "SAFE")
    agreement = write(doc, tmp_path / "agreement.xlsx").read_bytes()
    assert min(check_xlsx(agreement)) < 0

    # The endpoint report's XLSX, through `scorer report endpoints`: the arms are texts.
    (tmp_path / "reads.csv").write_text(reads_text, encoding="utf-8")
    manifest_json = json.dumps(manifest.to_dict())
    (tmp_path / "reads.csv.manifest.json").write_text(manifest_json, encoding="utf-8")
    with (tmp_path / "arms.csv").open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("patient", "arm"), *ARMS.items()])
    with contextlib.redirect_stdout(io.StringIO()):
        rc = main(
            [
                "report",
                "endpoints",
                "--reads",
                str(tmp_path / "reads.csv"),
                "--arms",
                str(tmp_path / "arms.csv"),
                "--out",
                str(tmp_path / "endpoints.xlsx"),
            ]
        )
    assert rc == 0
    endpoints = (tmp_path / "endpoints.xlsx").read_bytes()
    assert min(check_xlsx(endpoints, ("=cmd", NOTE))) < 0

    # The transfer package: its CSVs and its XLSX.
    ws.exchange.transfer_package(coord, "SAFE", tmp_path / "package.zip")
    with zipfile.ZipFile(tmp_path / "package.zip") as z:
        assert z.read("reads.csv").decode() == reads_text
        check_csv(z.read("totals.csv").decode(), numeric)
        check_csv(z.read("audit-trail.csv").decode(), {"seq"}, (NOTE, *REASONS))
        check_xlsx(z.read("agreement.xlsx"))

    # The monitor's exports, through its window: the reader's session and the whole trail.
    from scorer.gui.monitor import MonitorWindow

    window = MonitorWindow(ws, mona)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: bool(window.sessions), timeout=30000)
    window.user.setCurrentIndex(window.user.findData("rcmd"))
    with qtbot.waitSignal(window.sessionsLoaded, timeout=20000):
        window.load_sessions()
    sid = trial["rcmd"].id
    row = next(i for i, r in enumerate(window.sessions) if r.session == sid)
    with qtbot.waitSignal(window.timelineLoaded, timeout=20000):
        window.sessions_table.selectRow(row)
    chosen = window.selected_session()
    assert chosen is not None and chosen.session == sid
    for what in ("session", "trail"):
        with qtbot.waitSignal(window.exported, timeout=60000):
            window.export(what, "csv", tmp_path / f"monitor-{what}.csv")
    session = check_csv(
        (tmp_path / "monitor-session.csv").read_text(encoding="utf-8"),
        prefixed=(NOTE, TAB_NOTE, *REASONS),
    )
    assert {"Detail", "Reason"} <= set(session[0])
    check_csv((tmp_path / "monitor-trail.csv").read_text(encoding="utf-8"), {"seq"}, REASONS)
    window.close()

    # The same documents as XLSX: the note and the reasons are string cells.
    check_xlsx(
        write(ws.oversight.session_document(mona, sid), tmp_path / "s.xlsx").read_bytes(),
        (NOTE, TAB_NOTE, *REASONS),
    )
    check_xlsx(
        write(ws.oversight.audit_document(mona), tmp_path / "a.xlsx").read_bytes(),
        REASONS,
        containing=('"full_name":"=cmd"',),
    )


def _reads_csv(**change: str) -> str:
    row = dict.fromkeys(HEADER, "")
    row.update(
        trial="T",
        patient="P1",
        visit="W0",
        reader="r1",
        method="larsen1995",
        read_type="primary",
        region="LH",
        joint="MCP2",
        feature="LAR",
        score="1",
        assessable="1",
        read_id="R1",
        read_status="in_progress",
    )
    row.update(change)
    return ",".join(HEADER) + "\n" + ",".join(row[h] for h in HEADER) + "\n"


def test_ids_a_spreadsheet_would_run_are_refused_on_import() -> None:
    assert len(parse_reads_csv(_reads_csv())) == 1
    for column in ("trial", "patient", "visit", "reader", "read_id"):
        for bad in ("=cmd", "-1", "+1", "@SUM(1+1)"):
            with pytest.raises(ReadsCsvError) as err:
                parse_reads_csv(_reads_csv(**{column: bad}))
            (problem,) = err.value.errors
            assert (problem.line, problem.column) == (2, column)
            assert "a spreadsheet runs as a formula" in problem.message
            assert f"line 2, column {column}" in str(err.value)
    # Codes: no method defines one that starts so, so it is unknown, with its line and column.
    for column, bad in (("method", "=svh"), ("joint", "-MCP2"), ("feature", "+ERO")):
        with pytest.raises(ReadsCsvError) as err:
            parse_reads_csv(_reads_csv(**{column: bad}))
        assert [(p.line, p.column) for p in err.value.errors] == [(2, column)]
    with pytest.raises(ReadsCsvError) as err:
        parse_reads_csv(_reads_csv(score="", assessable="0", reason="@x"))
    assert [(p.line, p.column) for p in err.value.errors] == [(2, "reason")]


def test_ids_a_spreadsheet_would_run_are_refused_where_they_are_made(tmp_path: Path) -> None:
    ws = Workspace.initialize("ada", "Ada Admin", "Sunflower-Meadow-7", db=str(tmp_path / "d.db"))
    try:
        admin = ws.accounts.login("ada", "Sunflower-Meadow-7")
        with pytest.raises(InvalidInput, match="user ID may not start with '-'"):
            ws.accounts.add_user(admin, "-cmd", "Minus", "reader", "Temporary-pass-0")
        ws.accounts.add_user(
            admin, "cora", "=cmd", "coordinator", "Temporary-pass-0"
        )  # a printed name
        coord = ws.accounts.login("cora", "Temporary-pass-0")
        ws.accounts.change_password(coord, "Temporary-pass-0", PASSWORD)
        with pytest.raises(InvalidInput, match="trial code may not start with '-'"):
            ws.trials.create_trial(coord, "-T", "x")
        with pytest.raises(InvalidInput, match="visit label"):
            ws.trials.create_trial(coord, "T2", "x", visits=[("-W0", 0.0)])
        ws.trials.create_trial(coord, "T", "=cmd")  # a trial's name is not in the reads CSV
        with pytest.raises(InvalidInput, match="visit label may not start with '-'"):
            ws.trials.add_visit(coord, "T", "-W4")
        for bad in ("=cmd", "-1", "+1", "@SUM(1+1)"):
            with pytest.raises(InvalidInput, match="patient identifier may not start with"):
                ws.trials.add_patient(coord, "T", bad)
        ws.trials.add_patient(coord, "T", "P=1")  # inside is fine
        with pytest.raises(InvalidInput, match="line 2, column patient: '=cmd' starts with"):
            ws.exchange.import_reads(coord, "T", _reads_csv(trial="T", patient="=cmd"))
        assert [t.code for t in ws.trials.list_trials(coord)] == ["T"]
        assert [p.real_id for p in ws.trials.list_patients(coord, "T")] == ["P=1"]
    finally:
        ws.close()
    with pytest.raises(ProtocolError, match="starts with '-'"):
        validate_protocol(Protocol(code="T", visits=(VisitDef("-W0", 0.0),)))
    method = {
        "id": "=m",
        "name": "M",
        "citation": "c",
        "features": {"ERO": {"name": "Erosion", "min": 0, "max": 5}},
        "areas": [{"regions": ["LH"], "feature": "ERO", "joints": ["MCP1"]}],
    }
    with pytest.raises(MethodError, match="id: id '=m' starts with '='"):
        parse_method(method, "m.toml")
    with pytest.raises(MethodError, match="joint '@J' starts with '@'"):
        areas = [{"regions": ["LH"], "feature": "ERO", "joints": ["@J"]}]
        parse_method({**method, "id": "m", "areas": areas}, "m.toml")
    assert parse_method({**method, "id": "m"}, "m.toml").id == "m"
