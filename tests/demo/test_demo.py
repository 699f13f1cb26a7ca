"""The sample radiographs and `scorer demo`: reproducible, idempotent, with realistic content."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from scorer.cli import main
from scorer.demo import READERS, TRIAL, generate_samples, repo_samples_dir

SAMPLES = repo_samples_dir()


def test_the_committed_samples_are_what_the_seed_makes(tmp_path: Path) -> None:
    """Regenerating one patient from the recorded seed gives the committed bytes."""
    generate_samples(tmp_path, only={0, 7})
    for name in ("DEMO-101", "DEMO-108"):
        made = sorted((tmp_path / name).glob("*.dcm"))
        assert [p.name for p in made] == [
            "W0-feet.dcm",
            "W0-hands.dcm",
            "W24-feet.dcm",
            "W24-hands.dcm",
            "W52-feet.dcm",
            "W52-hands.dcm",
        ]
        for p in made:
            assert p.read_bytes() == (SAMPLES / name / p.name).read_bytes(), p.name
    committed = (SAMPLES / "manifest.csv").read_text(encoding="utf-8").splitlines()
    for line in (tmp_path / "manifest.csv").read_text(encoding="utf-8").splitlines()[1:]:
        assert line in committed
    # The films' true joint positions are committed beside them (never in the DICOM).
    joints = set((SAMPLES / "joint-positions.csv").read_text(encoding="utf-8").splitlines())
    made_joints = (tmp_path / "joint-positions.csv").read_text(encoding="utf-8").splitlines()
    assert len(made_joints) == 1 + 2 * 3 * (2 * 26 + 2 * 6)  # hands: 26 joints, feet: 6
    assert set(made_joints) <= joints
    total = sum(p.stat().st_size for p in SAMPLES.rglob("*") if p.is_file())
    assert total < 40 * 1024 * 1024


def test_sample_headers_pass_dcmdump() -> None:
    for path in (SAMPLES / "DEMO-101" / "W0-hands.dcm", SAMPLES / "DEMO-103" / "W52-feet.dcm"):
        r = subprocess.run(
            ["dcmdump", "+E", str(path)], capture_output=True, text=True, encoding="latin-1"
        )  # ISO_IR 100 names
        assert r.returncode == 0, r.stderr
        assert not [
            ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith(("W:", "E:", "F:"))
        ]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    base = tmp_path_factory.mktemp("demo")
    db = base / "demo.sqlite"
    out = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(out):
        rc = main(["demo", "--no-gui", "--db", str(db)])
    assert rc == 0, out.getvalue()
    yield {"db": db, "out": out.getvalue(), "base": base}


def _dump(db: Path) -> list[str]:
    con = sqlite3.connect(db)
    try:
        return list(con.iterdump())
    finally:
        con.close()


def test_demo_twice_gives_identical_database_content(demo: dict[str, object]) -> None:
    db = demo["db"]
    assert isinstance(db, Path)
    before = _dump(db)
    receipts = db.with_name("demo.receipts").read_bytes()
    out = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(out):
        assert main(["demo", "--no-gui", "--db", str(db)]) == 0
    assert "reused" in out.getvalue()
    assert _dump(db) == before
    assert db.with_name("demo.receipts").read_bytes() == receipts


def test_demo_content_and_passwords_printed_once(demo: dict[str, object]) -> None:
    text = str(demo["out"])
    accounts = Path(str(demo["base"])) / "demo-accounts.txt"
    lines = [
        ln.split()
        for ln in accounts.read_text(encoding="utf-8").splitlines()
        if not ln.startswith("#")
    ]
    assert {ln[0] for ln in lines} == {"admin", "coord", "adjud", "monitor", *READERS}
    assert accounts.stat().st_mode & 0o077 == 0
    for user, _role, password in lines:
        assert password in text, user
    from scorer.workspace import Workspace

    ws = Workspace.open(db=str(demo["db"]))
    try:
        pw = {ln[0]: ln[2] for ln in lines}
        coord = ws.accounts.login("coord", pw["coord"])
        images = ws.images.list_images(coord, TRIAL)
        assert len(images) == 72 and not any(i.flags for i in images)
        full = ws.worklists.worklist(coord, TRIAL)
        for reader in READERS[:2]:
            rows = [r for r in full if r.reader == reader]
            assert rows and all(r.status == "signed" for r in rows)
        third = [r for r in full if r.reader == READERS[2]]
        assert third and all(r.status == "not started" for r in third)
        assert ws.verify().ok
    finally:
        ws.close()


def test_analyze_on_the_demo_export_has_realistic_agreement(
    demo: dict[str, object],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    accounts = Path(str(demo["base"])) / "demo-accounts.txt"
    pw = {
        ln.split()[0]: ln.split()[2]
        for ln in accounts.read_text().splitlines()
        if not ln.startswith("#")
    }
    out = tmp_path / "reads.csv"
    monkeypatch.setattr("sys.stdin", io.StringIO(pw["coord"] + "\n"))
    assert (
        main(
            [
                "export",
                "reads",
                "--trial",
                TRIAL,
                "--out",
                str(out),
                "--db",
                str(demo["db"]),
                "--user",
                "coord",
                "--password-stdin",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["analyze", str(out), "--format", "json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n_patients"] == 12 and res["readers"] == ["reader1", "reader2"]
    icc = res["icc"]["status"]["ICC(2,1)"]["value"]
    assert 0.80 <= icc <= 0.999, icc
    assert 0.5 <= res["sdc"]["value"] <= 10, res["sdc"]
    # Some patients progress and some do not.
    prog = res["progression"]["thresholds"][0]
    assert 0 < prog["n_progressors"] < prog["n"]


def test_without_a_display_the_demo_says_how_to_open_the_window(
    demo: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's first command on a machine with no screen: the demo stays set up, the
    error says there is no display, the next line where to open the window; the exit status
    is 1, since the window did not open."""
    import contextlib

    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    db = demo["db"]
    assert isinstance(db, Path)
    before = _dump(db)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["demo", "--db", str(db)])
    assert rc == 1, out.getvalue() + err.getvalue()
    assert "there is no display here (DISPLAY and WAYLAND_DISPLAY are unset)" in err.getvalue()
    assert "The demo is set up" in out.getvalue() and "scorer gui --db" in out.getvalue()
    assert _dump(db) == before


def _endpoint_tables(ep: dict[str, object]) -> str:
    """The README's endpoint tables, made from the report's JSON (``endpoints``)."""
    an: dict[str, object] = ep["analysis"]  # type: ignore[assignment]
    control = an["control"]
    lines = [
        f"| Measure | Arm | n | LS mean (95 % CI) | Difference from {control} (95 % CI) | p |",
        "|---|---|---|---|---|---|",
    ]
    for a in an["ancova"]:  # type: ignore[attr-defined]
        diff = {d["arm"]: d for d in a["differences"]}
        for m in a["means"]:
            d = diff.get(m["arm"])
            tail = (
                f"{d['estimate']:.2f} ({d['low']:.2f} to {d['high']:.2f}) | {d['p']:.2f} |"
                if d
                else "| |"
            )
            lines.append(
                f"| {a['name']} | {m['arm']} | {m['n']} | {m['mean']:.2f} ({m['low']:.2f} to "
                f"{m['high']:.2f}) | " + tail
            )
    lines += [
        "",
        f"| Non-progressor | Arm | Non-progressors | {control} | Difference, points (95 % CI) "
        "| p (test) |",
        "|---|---|---|---|---|---|",
    ]
    for t in an["non_progression"]:  # type: ignore[attr-defined]
        for c in t["comparisons"]:
            lines.append(
                f"| {t['non_progressor']} | {c['arm']} | {c['x']}/{c['n']} | "
                f"{c['x_control']}/{c['n_control']} | {100 * c['difference']:.1f} "
                f"({100 * c['low']:.1f} to {100 * c['high']:.1f}) | {c['p']:.2f} "
                f"({c['test'].split(' ')[0]}) |"
            )
    return "\n".join(lines)


def test_the_demo_endpoint_report_tells_the_trials_story(
    demo: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's walk from lock to the endpoint table, line by line, on a copy of the demo:
    the active arm has the smaller adjusted mean change and more non-progressors, in HTML,
    PDF, XLSX and JSON, and the README's tables are the report's."""
    import contextlib
    import re
    import shlex
    import shutil

    base = Path(str(demo["base"]))
    db = tmp_path / "demo.sqlite"
    src, dst = sqlite3.connect(demo["db"]), sqlite3.connect(db)  # type: ignore[arg-type]
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    for name in ("demo.audit-key", "demo-accounts.txt", "demo-allocation.csv"):
        shutil.copy(base / name, tmp_path / name)
    pw = {
        ln.split()[0]: ln.split()[2]
        for ln in (base / "demo-accounts.txt").read_text().splitlines()
        if not ln.startswith("#")
    }
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    walk = readme[readme.index("**The demo, from lock to the endpoint table.**") :]
    block = walk[walk.index("```\n") + 4 : walk.index("\n```", walk.index("```\n") + 4)]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCORER_DB", str(db))
    for line in block.splitlines():
        argv = shlex.split(line, comments=True)[1:]
        if "--user" in argv:
            argv.append("--password-stdin")
            monkeypatch.setattr("sys.stdin", io.StringIO(f"{pw['coord']}\n" * 3))
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            assert main(argv) == 0, line + "\n" + out.getvalue() + err.getvalue()
        if argv[:2] == ["report", "endpoints"]:
            for ext in ("pdf", "xlsx", "json"):
                again = [*argv[:-1], f"endpoints.{ext}"]
                with contextlib.redirect_stdout(io.StringIO()):
                    assert main(again) == 0, again
    ep = json.loads((tmp_path / "endpoints.json").read_text())["endpoints"]
    (mtss,) = [a for a in ep["analysis"]["ancova"] if a["measure"] == "total"]
    means = {m["arm"]: m["mean"] for m in mtss["means"]}
    assert means["active"] < means["placebo"]
    assert mtss["formula"] == 'change ~ C(arm, Treatment(reference="placebo")) + baseline'
    assert mtss["n"] == 12 and ep["missing_visits"]["filled"] == {"active": 0, "placebo": 0}
    pct = {a["arm"]: {t["threshold"]: t["pct"] for t in a["non_progressors"]} for a in ep["arms"]}
    assert pct["active"]["change > 0.5"] > pct["placebo"]["change > 0.5"]
    assert all(
        c["difference"] >= 0 for t in ep["analysis"]["non_progression"] for c in t["comparisons"]
    )
    assert ep["analysis"]["rank_sensitivity"][0]["method"].startswith(
        "sensitivity: ANCOVA on ranks"
    )
    html = (tmp_path / "endpoints.html").read_text(encoding="utf-8")
    for text in ("LS mean", "Newcombe", "Conover &amp; Iman", "cumulative-probability-by-arm"):
        assert text in html, text
    from openpyxl import load_workbook

    sheets = load_workbook(tmp_path / "endpoints.xlsx").sheetnames
    assert {"ANCOVA mTSS", "Non-progression by arm", "Rank sensitivity"} <= set(sheets)
    pdf = subprocess.run(
        ["pdftotext", str(tmp_path / "endpoints.pdf"), "-"], capture_output=True, text=True
    )
    assert pdf.returncode == 0 and "LS mean" in pdf.stdout and "Non-progression" in pdf.stdout
    tables = re.search(
        r"<!-- endpoint-tables: begin -->\n(.*?)\n<!-- endpoint-tables: end -->", readme, re.S
    )
    assert tables is not None
    assert tables.group(1) == _endpoint_tables(ep)
