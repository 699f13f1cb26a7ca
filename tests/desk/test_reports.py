"""The agreement report and the exports: the report's numbers are `scorer analyze`'s on the
exported reads CSV; every format writes (the PDF renders page by page with pdftoppm and its
plots are not empty; the XLSX has one sheet per table); each export carries the audit head
and is audited; the transfer package's checksums hold."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from openpyxl import load_workbook
from PIL import Image

from scorer.cli import main
from scorer.reports.document import render_figure, write
from tests.desk.conftest import PASSWORD, Desk, scores

# Patient -> per visit (W0, W52) the totals of readers r1 and r2; the grades sit on different
# areas (``base``) so per-area agreement varies too.
DATA = {
    "P1": ((0, 1), (2, 2)),
    "P2": ((3, 3), (5, 8)),
    "P3": ((1, 0), (1, 2)),
    "P4": ((6, 5), (9, 9)),
    "P5": ((2, 2), (2, 4)),
    "P6": ((4, 6), (10, 9)),
}


def build(desk: Desk, rereads: bool = True) -> None:
    ws, coord = desk.ws, desk.coord
    ws.trials.create_trial(coord, "REP", "Report test", visits=[("W0", 0.0), ("W52", 52.0)])
    for real in DATA:
        ws.trials.add_patient(coord, "REP", real)
    codes = desk.patient_codes("REP")
    sessions = [desk.user(reader, "reader") for reader in ("r1", "r2")]
    for s in sessions:  # a reader reads their own worklist's cases
        ws.worklists.assign_reader(coord, "REP", s.username)
    if rereads:  # every patient re-read, so that P2 and P4 are
        ws.trials.set_trial_setting(coord, "REP", "reread_share", 1.0, "re-read cases for all")
    ws.worklists.generate_worklists(coord, "REP")
    if rereads:
        ws.trials.set_trial_setting(coord, "REP", "reread_share", 0.1, "back to the protocol's")
    for i, s in enumerate(sessions):
        reader = s.username
        for n, (real, visits) in enumerate(DATA.items()):
            for visit, totals in zip(("W0", "W52"), visits, strict=True):
                code = ws.reading.start_read(s, "REP", codes[real], visit)
                ws.reading.set_scores(s, code, scores(totals[i], base=(n + i) % 3))
                desk.sign(s, code)
        if rereads and reader == "r1":
            for real in ("P2", "P4"):
                for visit, totals in zip(("W0", "W52"), DATA[real], strict=True):
                    code = ws.reading.start_read(s, "REP", codes[real], visit, read_type="reread")
                    ws.reading.set_scores(s, code, scores(totals[0] + 1))
                    desk.sign(s, code)


def test_the_report_equals_scorer_analyze_on_the_exported_csv(desk: Desk, tmp_path: Path) -> None:
    build(desk)
    ws, coord = desk.ws, desk.coord
    doc = ws.exchange.agreement_report(coord, "REP")
    exported = tmp_path / "reads.csv"
    exported.write_text(ws.exchange.export_reads(coord, "REP", blinded=True), encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["analyze", str(exported), "--format", "json"]) == 0
    cli = json.loads(out.getvalue())
    mine = doc.data["analysis"]
    for key in (
        "n_patients",
        "readers",
        "visits",
        "totals",
        "change",
        "sdc",
        "icc",
        "bland_altman",
        "kappa",
        "progression",
        "cumulative_probability",
    ):
        assert json.loads(json.dumps(mine[key])) == cli[key], key
    # The tables print those numbers.
    icc = next(t for t in doc.tables() if t.name == "ICC")
    pooled = next(r for r in icc.rows if r[0].startswith("status, pooled") and r[1] == "ICC(2,1)")
    assert pooled[3] == cli["icc"]["status"]["ICC(2,1)"]["value"]
    assert pooled[6] == cli["icc"]["status_n"] == 12
    sdc = next(t for t in doc.tables() if t.name == "SDC")
    assert sdc.rows[0][2] == cli["sdc"]["value"]
    # Intra-reader: r1's two re-read patients (four patient-visit targets).
    (intra,) = doc.data["intra_reader"]
    assert intra["reader"] == "r1" and intra["targets"] == 4
    assert intra["bland_altman"]["mean_diff"] == pytest.approx(-1.0)  # every re-read is +1
    # Every figure and table states its n.
    assert all("n =" in f.caption for f in doc.figures())
    assert all("n" in t.caption for t in doc.tables())
    # The report is audited with the audit head it was made at.
    rows = [r for r in ws.oversight.audit_trail(coord) if r.action == "export"]
    assert any(json.loads(r.new)["what"] == "agreement report" for r in rows)


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) missing")
def test_every_format_writes_and_the_pdf_renders_with_its_plots(desk: Desk, tmp_path: Path) -> None:
    build(desk)
    doc = desk.ws.exchange.agreement_report(desk.coord, "REP")
    paths = {
        ext: write(doc, tmp_path / f"agreement.{ext}") for ext in ("html", "pdf", "json", "xlsx")
    }
    html = paths["html"].read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == len(doc.figures()) >= 3
    assert json.loads(paths["json"].read_text())["tables"]["ICC"]["rows"]
    wb = load_workbook(paths["xlsx"])
    assert set(wb.sheetnames) == {"About", *(t.name for t in doc.tables())}
    sheet = wb["ICC"]
    assert [c.value for c in sheet[2]] == next(t for t in doc.tables() if t.name == "ICC").columns
    # pdftoppm renders every page; each page has ink on it.
    info = subprocess.run(
        ["pdfinfo", str(paths["pdf"])], capture_output=True, text=True, check=True
    )
    pages = int(next(ln.split()[-1] for ln in info.stdout.splitlines() if ln.startswith("Pages:")))
    assert pages >= 3
    run = subprocess.run(
        ["pdftoppm", "-r", "40", "-png", str(paths["pdf"]), str(tmp_path / "page")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    rendered = sorted(tmp_path.glob("page-*.png"))
    assert len(rendered) == pages
    for png in rendered:
        with Image.open(png) as im:
            assert np.asarray(im.convert("L")).min() < 128  # text or plot on every page
    # The plots are not empty: points and lines, not a blank canvas.
    for figure in doc.figures():
        with Image.open(io.BytesIO(render_figure(figure))) as im:
            grey = np.asarray(im.convert("L"), dtype=float)
        assert grey.std() > 10, figure.name
        assert figure.data.get("n", 1) and (
            figure.data.get("difference") or figure.data.get("curves")
        )


def test_exports_carry_the_audit_head_and_the_package_checksums_hold(
    desk: Desk, tmp_path: Path
) -> None:
    build(desk, rereads=False)
    ws, coord = desk.ws, desk.coord
    text, manifest = ws.exchange.export_reads_with_manifest(coord, "REP")
    assert manifest.sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert manifest.audit_head["rows"] > 0 and not manifest.locked
    totals = ws.exchange.export_totals(coord, "REP").splitlines()
    header = totals[0].split(",")
    rows = [dict(zip(header, ln.split(","), strict=True)) for ln in totals[1:]]
    p2 = [r for r in rows if r["patient"] == "P2" and r["reader"] == "r2"]
    assert [(r["visit"], r["mtss"], r["change_mtss"]) for r in p2] == [
        ("W0", "3", "5"),
        ("W52", "8", "5"),
    ]
    audit = ws.exchange.export_audit(coord).splitlines()
    assert audit[0].startswith("seq,at,username,action")
    whats = [
        json.loads(r.new)["what"] for r in ws.oversight.audit_trail(coord) if r.action == "export"
    ]
    assert "totals" in whats and "audit trail" in whats
    with pytest.raises(Exception, match="not locked"):
        ws.exchange.transfer_package(coord, "REP", tmp_path / "p.zip")
    ws.trials.lock_trial(coord, "REP", PASSWORD, username="cora")
    sums = ws.exchange.transfer_package(coord, "REP", tmp_path / "package.zip")
    with zipfile.ZipFile(tmp_path / "package.zip") as z:
        names = set(z.namelist())
        assert {
            "reads.csv",
            "reads.csv.manifest.json",
            "totals.csv",
            "protocol.json",
            "audit-trail.csv",
            "MANIFEST.sha256",
            "agreement.pdf",
            "agreement.xlsx",
            "agreement.html",
            "agreement.json",
        } == names
        for line in z.read("MANIFEST.sha256").decode().splitlines():
            digest, name = line.split("  ", 1)
            assert hashlib.sha256(z.read(name)).hexdigest() == digest == sums[name]
        locked = json.loads(z.read("reads.csv.manifest.json"))
        assert locked["locked"] and locked["lock"]["meaning"] == "approved"
    assert ws.verify().ok


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) missing")
def test_a_long_table_goes_to_pdf_whole_from_worker_threads(tmp_path: Path) -> None:
    """A 600-row table over several pages, its heading repeated, every cell in the text;
    two written at once on worker threads (Figure API, no pyplot state shared)."""
    import threading
    import time

    from scorer.reports.document import Document, Section, Table

    def doc(tag: str) -> Document:
        rows = [
            [i, f"2025-03-01T10:{i % 60:02d}:00Z", f"{tag}-user{i % 3}", "score.set", f"R{i:05d}"]
            for i in range(1, 601)
        ]
        table = Table(
            "Trail", "The trail (n = 600 rows)", ["Seq", "At", "User", "Action", "Entity"], rows
        )
        return Document(f"Trail {tag}", [("Rows", "600")], [Section("Rows", [table])])

    errors: list[BaseException] = []

    def run(tag: str) -> None:
        try:
            write(doc(tag), tmp_path / f"{tag}.pdf")
        except BaseException as exc:  # reported below
            errors.append(exc)

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(tag,)) for tag in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    print(f"\ntwo 600-row tables to PDF at once: {time.perf_counter() - started:.1f} s")
    assert errors == []
    for tag in ("a", "b"):
        text = subprocess.run(
            ["pdftotext", "-layout", str(tmp_path / f"{tag}.pdf"), "-"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert text.count("The trail (n = 600 rows) (continued)") >= 10
        assert text.count("Seq") == text.count("The trail (n = 600 rows)")  # heading each page
        for i in (1, 2, 299, 600):
            assert f"R{i:05d}" in text and f"{tag}-user{i % 3}" in text
        assert len([ln for ln in text.splitlines() if "score.set" in ln]) == 600
        other = "b" if tag == "a" else "a"
        assert f"{other}-user" not in text
