"""The endpoint table, recomputed independently on a constructed data set with known answers;
refused for an export not from a locked trial or altered after export; end to end from a
locked database export through `scorer report endpoints`."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import statistics
from datetime import date
from pathlib import Path

import openpyxl
import pytest

from scorer.cli import main
from scorer.core.reads import Read
from scorer.core.readscsv import format_reads_csv, parse_reads_csv
from scorer.reports.document import write
from scorer.reports.endpoints import (
    EndpointError,
    check_export,
    endpoint_document,
    endpoint_results,
    read_allocation,
)
from tests.desk.conftest import PASSWORD, Desk, scores

# Patient -> arm, (r1 change, r2 change); P3 is adjudicated (change 9).
PATIENTS = {
    "P1": ("A", (0, 0)),
    "P2": ("A", (2, 4)),
    "P3": ("A", (6, 8)),
    "P4": ("B", (1, 1)),
    "P5": ("B", (3, 5)),
    "P6": ("B", (10, 12)),
}
ADJUDICATED = {"P3": 9}
DAY0, DAY1 = date(2023, 1, 1), date(2024, 1, 1)
FROZEN = 2.0


def reads() -> list[Read]:
    out = []
    for patient, (_arm, changes) in PATIENTS.items():
        for i, reader in enumerate(("r1", "r2")):
            for visit, day, total in (("W0", DAY0, 0), ("W52", DAY1, changes[i])):
                out.append(
                    Read(
                        trial="EP",
                        patient=patient,
                        visit=visit,
                        reader=reader,
                        method="svh",
                        read_id=f"{patient}-{reader}-{visit}",
                        read_type="primary",
                        status="signed",
                        visit_date=day,
                        scores=scores(total),
                    )
                )
        if patient in ADJUDICATED:
            for visit, day, total in (("W0", DAY0, 0), ("W52", DAY1, ADJUDICATED[patient])):
                out.append(
                    Read(
                        trial="EP",
                        patient=patient,
                        visit=visit,
                        reader="adam",
                        method="svh",
                        read_id=f"{patient}-adam-{visit}",
                        read_type="adjudication",
                        status="signed",
                        visit_date=day,
                        scores=scores(total),
                    )
                )
    return out


def manifest(text: str, locked: bool = True) -> dict[str, object]:
    return {
        "kind": "scorer reads export",
        "trial": "EP",
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
        "locked": locked,
        "lock": {"by": "Cora", "at": "2026-12-01T00:00:00Z", "signature": 9} if locked else None,
        "protocol": {
            "methods": ["svh"],
            "final_rule": "closest_two",
            "sdc_level": 95,
            "frozen_sdc": FROZEN,
            "thresholds": ["sdc95", "sdc80", "0", "0.5"],
            "rapid_threshold": "rapid>=5",
        },
        "audit_head": {"rows": 1, "mac": "0" * 64},
    }


def by_hand() -> dict[str, dict[str, object]]:
    """Independently: final change per patient, then the per-arm table."""
    final = {}
    for p, (_arm, (a, b)) in PATIENTS.items():
        if p in ADJUDICATED:
            adj = ADJUDICATED[p]
            pairs = sorted(
                [(abs(a - b), (a, b)), (abs(a - adj), (a, adj)), (abs(b - adj), (b, adj))]
            )
            final[p] = sum(pairs[0][1]) / 2
        else:
            final[p] = (a + b) / 2
    d = [a - b for _, (a, b) in PATIENTS.values()]
    sdc80 = 1.2816 * statistics.stdev(d) / 2  # two readers averaged: z · SD(d) / (√2 · √2)
    years = (DAY1 - DAY0).days / 365.25
    out = {}
    for arm in ("A", "B"):
        vals = [final[p] for p, (a, _) in PATIENTS.items() if a == arm]
        out[arm] = {
            "n": len(vals),
            "mean": statistics.mean(vals),
            "sd": statistics.stdev(vals),
            "median": statistics.median(vals),
            "non": {
                "sdc95": 100 * sum(v <= FROZEN for v in vals) / len(vals),
                "sdc80": 100 * sum(v <= sdc80 for v in vals) / len(vals),
                "0": 100 * sum(v <= 0 for v in vals) / len(vals),
                "0.5": 100 * sum(v <= 0.5 for v in vals) / len(vals),
            },
            "rapid": 100 * sum(v / years >= 5 for v in vals) / len(vals),
            "sdc80": sdc80,
        }
    return out


def test_the_endpoint_table_matches_an_independent_computation() -> None:
    text = format_reads_csv(reads())
    m = manifest(text)
    arms = {p: a for p, (a, _) in PATIENTS.items()}
    result = endpoint_results(parse_reads_csv(text), m, arms)
    want = by_hand()
    assert result["sdc95"] == FROZEN
    assert result["sdc80"] == pytest.approx(want["A"]["sdc80"], abs=1e-4)
    finals = {p["patient"]: p["change_total"] for p in result["patients"]}
    assert finals == {"P1": 0, "P2": 3, "P3": 8.5, "P4": 1, "P5": 4, "P6": 11}
    assert next(p for p in result["patients"] if p["patient"] == "P3")["reads"] == [
        "adjudicator:adam",
        "r2",
    ]
    for entry in result["arms"]:
        w = want[entry["arm"]]
        assert entry["n"] == w["n"]
        assert entry["total"]["mean"] == pytest.approx(w["mean"])
        assert entry["total"]["sd"] == pytest.approx(w["sd"])
        assert entry["total"]["median"] == pytest.approx(w["median"])
        assert entry["ERO"]["mean"] == pytest.approx(w["mean"])  # every change is erosion
        assert entry["JSN"]["mean"] == 0
        got = {t["threshold"]: t["pct"] for t in entry["non_progressors"]}
        assert got["change > SDC95"] == pytest.approx(w["non"]["sdc95"])
        assert got["change > SDC80"] == pytest.approx(w["non"]["sdc80"])
        assert got["change > 0"] == pytest.approx(w["non"]["0"])
        assert got["change > 0.5"] == pytest.approx(w["non"]["0.5"])
        assert entry["rapid"]["pct"] == pytest.approx(w["rapid"])
        assert entry["rapid"]["n"] == 3


def test_an_unlocked_or_altered_export_is_refused(tmp_path: Path) -> None:
    text = format_reads_csv(reads())
    with pytest.raises(EndpointError, match="not from a locked reading"):
        check_export(text.encode(), manifest(text, locked=False))
    altered = text.replace("adjudication", "primary", 1)  # one byte-level change after export
    with pytest.raises(EndpointError, match="does not match its manifest"):
        check_export(altered.encode(), manifest(text))
    with pytest.raises(EndpointError, match="line 3: needs a patient and an arm"):
        read_allocation("patient,arm\nP1,A\nP2,\n")
    with pytest.raises(EndpointError, match="header: patient,arm"):
        read_allocation("subject;group\nP1;A\n")
    # Through the command line: a clear message, status 1, nothing written.
    (tmp_path / "reads.csv").write_text(text, encoding="utf-8")
    (tmp_path / "reads.csv.manifest.json").write_text(json.dumps(manifest(text, locked=False)))
    (tmp_path / "arms.csv").write_text("patient,arm\nP1,A\n")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(
            [
                "report",
                "endpoints",
                "--reads",
                str(tmp_path / "reads.csv"),
                "--arms",
                str(tmp_path / "arms.csv"),
                "--out",
                str(tmp_path / "e.json"),
            ]
        )
    assert rc == 1 and "not from a locked reading" in err.getvalue()
    assert not (tmp_path / "e.json").exists()


def test_end_to_end_from_a_locked_database(
    desk: Desk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, coord = desk.ws, desk.coord
    ws.trials.create_trial(coord, "EP", "Endpoint test", visits=[("W0", 0.0), ("W52", 52.0)])
    for real in PATIENTS:
        ws.trials.add_patient(coord, "EP", real)
    codes = desk.patient_codes("EP")
    sessions = [desk.user(reader, "reader") for reader in ("r1", "r2")]
    for s in sessions:  # a reader reads their own worklist's cases
        ws.worklists.assign_reader(coord, "EP", s.username)
    ws.worklists.generate_worklists(coord, "EP")
    for i, s in enumerate(sessions):
        for real, (_arm, changes) in PATIENTS.items():
            for visit, total in (("W0", 0), ("W52", changes[i])):
                code = ws.reading.start_read(s, "EP", codes[real], visit)
                ws.reading.set_scores(s, code, scores(total))
                desk.sign(s, code)
    ws.trials.lock_trial(coord, "EP", PASSWORD, username="cora")
    db = str(ws.store.location.sqlite_path)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(
            [
                "export",
                "reads",
                "--trial",
                "EP",
                "--out",
                str(tmp_path / "locked.csv"),
                "--user",
                "cora",
                "--db",
                db,
                "--password-stdin",
            ]
        )
    assert rc == 0, out.getvalue()
    assert "locked" in out.getvalue()
    with (tmp_path / "arms.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["patient", "arm"])
        w.writerows([(real, arm) for real, (arm, _) in PATIENTS.items()])
    for ext in ("json", "html", "xlsx", "pdf"):
        with contextlib.redirect_stdout(io.StringIO()):
            rc = main(
                [
                    "report",
                    "endpoints",
                    "--reads",
                    str(tmp_path / "locked.csv"),
                    "--arms",
                    str(tmp_path / "arms.csv"),
                    "--control",
                    "B",
                    "--out",
                    str(tmp_path / f"ep.{ext}"),
                ]
            )
        assert rc == 0 and (tmp_path / f"ep.{ext}").stat().st_size > 0
    data = json.loads((tmp_path / "ep.json").read_text())["endpoints"]
    assert {a["arm"]: a["n"] for a in data["arms"]} == {"A": 3, "B": 3}
    mean_a = statistics.mean((a + b) / 2 for _, (arm, (a, b)) in PATIENTS.items() if arm == "A")
    assert next(a for a in data["arms"] if a["arm"] == "A")["total"]["mean"] == pytest.approx(
        mean_a
    )
    # The comparison with the control arm named on the command line (issue 24).
    an = data["analysis"]
    assert an["control"] == "B" and an["control_chosen"] == "named with --control"
    (mtss,) = [a for a in an["ancova"] if a["measure"] == "total"]
    assert mtss["n"] == 6 and mtss["formula"].startswith(
        'change ~ C(arm, Treatment(reference="B"))'
    )
    assert [d["arm"] for d in mtss["differences"]] == ["A"]
    # An arm that is not in the allocation, or visits not in the export: one clear message.
    for extra, message in (
        (["--control", "C"], "--control C: no such arm with patients (arms: A, B)"),
        (["--to", "W99"], "no visit W99 in the export (visits: W0, W52)"),
    ):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = main(
                [
                    "report",
                    "endpoints",
                    "--reads",
                    str(tmp_path / "locked.csv"),
                    "--arms",
                    str(tmp_path / "arms.csv"),
                    *extra,
                    "--out",
                    str(tmp_path / "bad.json"),
                ]
            )
        assert rc == 1 and message in err.getvalue(), err.getvalue()
        assert not (tmp_path / "bad.json").exists()


def test_patients_left_out_are_counted_per_arm_and_the_absent_named(tmp_path: Path) -> None:
    """Under the missing-visit rule 'missing', P1 (arm A) and P4 (arm B) have no W52 read, and
    the allocation lists P7 and P8 (arm B) whom the export does not hold: A 1 and B 3 left out,
    in one note, in the JSON and in every format."""
    kept = [r for r in reads() if not (r.patient in ("P1", "P4") and r.visit == "W52")]
    text = format_reads_csv(kept)
    arms = {p: a for p, (a, _) in PATIENTS.items()} | {"P7": "B", "P8": "B"}
    result = endpoint_results(parse_reads_csv(text), manifest(text), arms)
    assert result["missing_visits"]["left_out"] == {"A": 1, "B": 3}
    assert {a["arm"]: a["n"] for a in result["arms"]} == {"A": 2, "B": 2}
    note = (
        "4 allocated patient(s) without a change from W0 to W52 left out, per arm: A 1, B 3; "
        "2 of them not in the export: P7, P8"
    )
    assert note in result["notes"]
    # One note for them (the generic count of patients without a change is not repeated).
    assert [n for n in result["notes"] if "without a change" in n or "no change" in n] == [note]
    doc = endpoint_document(parse_reads_csv(text), manifest(text), arms)
    per_arm = "allocated patients left out without a change, per arm: A 1, B 3"
    for ext in ("html", "json", "xlsx", "pdf"):
        write(doc, tmp_path / f"ep.{ext}")
    assert per_arm in (tmp_path / "ep.html").read_text(encoding="utf-8")
    data = json.loads((tmp_path / "ep.json").read_text(encoding="utf-8"))
    assert data["endpoints"]["missing_visits"]["left_out"] == {"A": 1, "B": 3}
    assert per_arm in data["facts"]["Missing visits"]
    book = openpyxl.load_workbook(tmp_path / "ep.xlsx")
    cells = [str(c.value) for ws in book.worksheets for row in ws.iter_rows() for c in row]
    assert any(per_arm in c for c in cells)
    assert (tmp_path / "ep.pdf").stat().st_size > 0


def test_the_absent_are_named_ten_at_most() -> None:
    text = format_reads_csv(reads())
    arms = {p: a for p, (a, _) in PATIENTS.items()} | {f"Q{i:02d}": "B" for i in range(12)}
    result = endpoint_results(parse_reads_csv(text), manifest(text), arms)
    (note,) = [n for n in result["notes"] if "not in the export" in n]
    named = ", ".join(f"Q{i:02d}" for i in range(10))
    assert note.endswith(f"12 of them not in the export: {named} and 2 more")
    assert result["missing_visits"]["left_out"] == {"A": 0, "B": 12}


def test_a_patient_listed_twice_in_the_allocation_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EndpointError) as exc:
        read_allocation("patient,arm\nP1,A\nP2,B\nP1,A\nP2,A\n")
    assert str(exc.value) == (
        "the allocation file has problems:\n"
        "line 4: patient P1 is listed again (first on line 2)\n"
        "line 5: patient P2 is in arms B and A (first on line 3)"
    )
    # Through the command line: status 1, the line named, nothing written.
    text = format_reads_csv(reads())
    (tmp_path / "reads.csv").write_text(text, encoding="utf-8")
    (tmp_path / "reads.csv.manifest.json").write_text(json.dumps(manifest(text)))
    rows = [f"{p},{a}" for p, (a, _) in PATIENTS.items()]
    (tmp_path / "arms.csv").write_text("\n".join(["patient,arm", *rows, rows[2]]) + "\n")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(
            [
                "report",
                "endpoints",
                "--reads",
                str(tmp_path / "reads.csv"),
                "--arms",
                str(tmp_path / "arms.csv"),
                "--out",
                str(tmp_path / "e.json"),
            ]
        )
    assert rc == 1 and "line 8: patient P3 is listed again (first on line 4)" in err.getvalue()
    assert not (tmp_path / "e.json").exists()
