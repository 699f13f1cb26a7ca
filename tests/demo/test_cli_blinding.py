"""Blinding over the command line (issue 12): every command that opens the database, run as
every role on the demo's own files (two patients, their planted names, IDs, birth dates, study
dates, accession numbers, institutions and UIDs; two readers' signed reads).

Each role works on its own copy of the demo and runs the whole table below, reads first and
changes last (so every refusal and every success is seen). Everything the command line gives
that role is collected — standard output and error, log records, and every file it wrote
(CSV, JSON, HTML, PDF text, XLSX and ZIP members, PNG metadata) — and searched:

- a reader or an adjudicator obtains no real identifier, patient code, date, visit label, read
  type, other reader's name or read code, nor anything planted in the files;
- a monitor (before unblinding) no real identifier, date or planted identifier: case and
  patient codes only;
- a coordinator or an administrator, who set up the trial and so know patients' real IDs and
  visit dates, still never obtain what de-identification removed (names, birth dates,
  accession numbers, institutions, physicians, the original UIDs);
- and nobody's output carries the arm: the allocation is not in the reading database.

A command added to the command line without a row here fails
``test_the_walk_covers_every_command``.
"""

from __future__ import annotations

import argparse
import io
import logging
import re
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from scorer.cli import build_parser, main
from scorer.demo import READERS, TRIAL
from scorer.workspace import Workspace
from tests.blinding import build_mini_demo, deidentified_away, planted

#: Commands that never open the reading database (nothing of a trial to leak), and the two
#: that open a window: the windows have their own walks (tests/gui/test_blinding_walk.py,
#: tests/gui/test_window_blinding.py).
OUTSIDE = {
    "analyze": "reads a CSV the caller already has",
    "methods": "lists the scoring methods",
    "example": "writes the specification's worked example",
    "report endpoints": "works on a locked export and the allocation, without the database",
    "demo": "builds its own demo database",
    "gui": "opens the workstation: the window walks cover it",
    "server": "serves the services over HTTPS: tests/server walks a reader's answers over the wire",
    "health": "asks a server's /health, which answers no trial data (tests/server/test_health.py)",
    "pg-backup": "PostgreSQL only, on the server host, no log-in (tests/deploy/test_pg_backup.py)",
    "pg-restore": "PostgreSQL only, into an empty database (tests/deploy/test_pg_backup.py)",
}

USER_OF_ROLE = {
    "reader": "reader3",
    "adjudicator": "adjud",
    "monitor": "monitor",
    "coordinator": "coord",
    "admin": "admin",
}

#: Words that tell a visit or the kind of read.
VISIT_WORDS = re.compile(r"\b(W0|W24|W52|reread|re-read|primary|Week \d+)\b", re.I)


@dataclass
class Walk:
    """One role's run over its own copy of the demo."""

    role: str
    folder: Path
    db: str
    passwords: dict[str, str]
    trial: str
    context: dict[str, Any]
    texts: list[tuple[str, str]] = field(default_factory=list)  # (command, text)
    outcomes: dict[str, list[int]] = field(default_factory=dict)

    @property
    def user(self) -> str:
        return USER_OF_ROLE[self.role]

    def out(self, name: str) -> str:
        return str(self.folder / "out" / name)


Step = tuple[str, list[str], list[str]]  # (command, argv after the command words, extra stdin)


def steps(w: Walk) -> list[Step]:
    """The walk: every database command, with arguments that make sense for the demo; the
    first stdin line is always the caller's own password."""
    t, c = w.trial, w.context
    second = "coord" if w.user == "admin" else "admin"
    return [
        # Looking.
        ("trial list", ["--format", "json"], []),
        ("trial show", [t, "--format", "json"], []),
        ("user list", ["--format", "json"], []),
        ("worklist show", ["--trial", t, "--format", "json"], []),
        ("worklist show", ["--trial", t, "--reader", "reader1", "--format", "json"], []),
        ("worklist verify", ["--trial", t], []),
        ("image list", ["--trial", t, "--format", "json"], []),
        ("image joints", ["--trial", t, "--format", "json"], []),
        ("image register", ["--trial", t, "--patient", "NOBODY"], []),
        ("image export-png", [c["own_image"], "--out", w.out("own.png")], []),
        ("image export-png", [c["other_image"], "--out", w.out("other.png")], []),
        ("progress", ["--trial", t, "--format", "json"], []),
        ("flags list", ["--trial", t, "--all", "--format", "json"], []),
        ("calibration show", ["--trial", t, "--format", "json"], []),
        ("adjudication show", ["--trial", t, "--format", "json"], []),
        ("audit verify", ["--format", "json"], []),
        ("audit sessions", ["--format", "json"], []),
        ("audit timeline", [c["session"], "--format", "json"], []),
        ("drift", ["--trial", t, "--format", "json"], []),
        # Exports and reports.
        ("export reads", ["--trial", t, "--out", w.out("reads.csv")], []),
        ("export reads", ["--trial", t, "--blinded", "--out", w.out("reads-blinded.csv")], []),
        ("export totals", ["--trial", t, "--out", w.out("totals.csv")], []),
        ("export audit", ["--out", w.out("audit.csv")], []),
        ("report agreement", ["--trial", t, "--out", w.out("agreement.json")], []),
        ("report agreement", ["--trial", t, "--out", w.out("agreement.pdf")], []),
        ("backup", ["--out", w.out("backup.zip")], []),
        # Changes.
        ("import", [str(c["dicom"]), "--trial", t, "--quiet"], []),
        ("reads import", [str(c["reads_csv"]), "--trial", t], []),
        # DICOM: no sender allowed for the trial, so the receiver says so and does not listen;
        # the PACS address answers nothing (port 9 on loopback), so the pull says so.
        ("receive", ["--trial", t, "--port", "0", "--host", "127.0.0.1"], []),
        ("pull", ["--trial", t, "--from", "PACS@127.0.0.1:9", "--patient", "P-1", "--quiet"], []),
        ("flags answer", ["1", "--answer", "checked", "--trial", t], []),
        ("trial set", [t, "reread_share", "0.2", "--reason", "walk"], []),
        ("trial assign", [t, "reader3"], []),
        ("trial campaign", [t, "late", "--visits", "W104"], []),
        ("trial create", ["WALK-T", "--name", "Walk", "--visits", "W0,W24"], []),
        ("worklist generate", ["--trial", t], []),
        (
            "calibration set",
            ["--trial", t, "--patients", c["patient"], "--reference", "reader1", "--reason", "x"],
            [],
        ),
        ("calibration worklists", ["--trial", t], []),
        ("calibration release", ["reader3", "--reason", "walk", "--trial", t], []),
        ("adjudication freeze-sdc", ["--reason", "walk", "--trial", t], [w.passwords[w.user]]),
        ("adjudication update", ["--trial", t], []),
        ("adjudication assign", ["adjud", "--trial", t], []),
        (
            "image reassign",
            [c["other_image"], "--regions", "LH,RH", "--reason", "walk"],
            [],
        ),
        ("image mask", [c["other_image"], "--rect", "0,0,40,20", "--reason", "walk"], []),
        ("image qc", [c["other_image"], "passed", "--reason", "walk"], []),
        ("image reissue", ["--trial", t, "--quiet"], []),
        (
            "image region-missing",
            [
                "--trial",
                t,
                "--patient",
                c["patient"],
                "--visit",
                "W52",
                "--region",
                "LF",
                "--reason",
                "walk",
            ],
            [],
        ),
        ("user add", ["walker", "--name", "Walt Walker", "--role", "reader"], ["Temp-pass-2024"]),
        ("user reset-password", ["walker", "--reason", "walk"], ["Other-pass-2024"]),
        ("user disable", ["walker", "--reason", "walk"], []),
        ("trial lock", [t], [w.passwords[w.user]]),
        ("export package", ["--trial", t, "--out", w.out("package.zip")], []),
        ("trial unlock", [t, "--reason", "walk", "--second", second], [w.passwords[w.user]]),
        # Last of the logged-in steps: the caller's password changes.
        ("user passwd", [], ["Changed-by-walk-77", "Changed-by-walk-77"]),
        # No log-in: these act on files.
        ("restore", [w.out("backup.zip"), "--db", w.out("restored.sqlite")], []),
        ("migrate", [], []),
        ("grant", ["workstations"], []),  # refused on SQLite, with a message
        ("revoke", ["workstations"], []),  # refused on SQLite, with a message
        ("init", ["--admin", "eve", "--password-stdin"], []),
    ]


NO_LOGIN = {"restore", "migrate", "grant", "revoke", "audit verify", "init"}


def run_step(w: Walk, step: Step, capsys: pytest.CaptureFixture[str], mp: Any) -> None:
    command, argv, extra = step
    words = command.split()
    full = [*words, *argv]
    if command != "restore":  # restore's --db is where it restores to
        full += ["--db", w.db]
    if command not in NO_LOGIN:
        full += ["--user", w.user, "--password-stdin"]
        stdin = "\n".join([w.passwords[w.user], *extra]) + "\n"
    else:
        stdin = "Unused-pass-2024\n"
    mp.setattr("sys.stdin", io.StringIO(stdin))
    rc = main(full)
    out, err = capsys.readouterr()
    w.outcomes.setdefault(command, []).append(rc)
    w.texts += [(command, out), (command, err)]


def file_texts(folder: Path) -> list[tuple[str, str]]:
    """The text of every file the walk wrote."""
    texts: list[tuple[str, str]] = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        name, suffix = path.name, path.suffix.lower()
        if suffix in (".csv", ".json", ".html", ".txt", ".sha256"):
            texts.append((name, path.read_text(encoding="utf-8", errors="replace")))
        elif suffix == ".pdf":
            pdf = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True)
            assert pdf.returncode == 0, pdf.stderr
            texts.append((name, pdf.stdout))
        elif suffix in (".zip", ".xlsx"):
            with zipfile.ZipFile(path) as z:
                for member in z.namelist():
                    data = z.read(member)
                    if member.endswith(".sqlite") or member.endswith(".png"):
                        continue  # the database itself (a backup) and pictures
                    texts.append((f"{name}:{member}", data.decode("utf-8", errors="replace")))
        elif suffix == ".png":
            with Image.open(path) as im:
                texts.append((name, repr(im.info)))
    return texts


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_mini_demo(tmp_path_factory.mktemp("cli-blinding"))


def own_copy(demo: dict[str, Any], folder: Path) -> str:
    base: Path = demo["base"]
    shutil.copytree(base, folder, ignore=shutil.ignore_patterns("data", "samples"))
    return str(folder / Path(demo["db"]).name)


def context_of(db: str, passwords: dict[str, str], demo: dict[str, Any]) -> dict[str, Any]:
    """What the walk needs to name: the images of reader3's first case and of another
    patient's, a patient code, and the secrets that go with each role."""
    ws = Workspace.open(db)
    try:
        coord = ws.accounts.login("coord", passwords["coord"])
        patients = {p.code: p.real_id for p in ws.trials.list_patients(coord, TRIAL)}
        images = ws.images.list_images(coord, TRIAL)
        mine = ws.worklists.worklist(coord, TRIAL, "reader3")
        first = mine[0]
        own = next(i.code for i in images if i.patient == first.patient)
        other = next(i.code for i in images if i.patient != first.patient)
        others_cases = {
            r.code for reader in READERS[:2] for r in ws.worklists.worklist(coord, TRIAL, reader)
        }
        # A session of another reader: its timeline names cases, not patients or visits' order.
        sessions = ws.oversight.reading_sessions(coord)
        session = next(s.session for s in sessions if s.user == "reader1")
        ws.accounts.logout(coord)
        others_reads: set[str] = set()
        for reader in READERS[:2]:
            s = ws.accounts.login(reader, passwords[reader])
            others_reads |= {r.code for r in ws.worklists.my_reads(s, TRIAL)}
            ws.accounts.logout(s)
    finally:
        ws.close()
    dicom = next(demo["samples"].rglob("*.dcm"))
    reads_csv = Path(__file__).resolve().parents[2] / "examples" / "worked-example.csv"
    return {
        "patients": patients,
        "patient": first.patient,
        "own_image": own,
        "other_image": other,
        "others_cases": others_cases,
        "others_reads": others_reads,
        "dicom": dicom,
        "reads_csv": reads_csv,
        "session": session,
    }


def secrets_of(role: str, demo: dict[str, Any], ctx: dict[str, Any]) -> tuple[set[str], bool]:
    """(strings the role must never obtain, whether visit words are forbidden too)."""
    never = deidentified_away(demo["samples"]) | {"placebo", "allocation"}
    if role in ("coordinator", "admin"):
        return never, False
    never |= planted(demo["samples"]) | set(ctx["patients"].values())
    if role == "monitor":
        return never, False
    never |= set(ctx["patients"]) | ctx["others_reads"] | ctx["others_cases"]
    never |= {"reader1", "reader2", "Rita Reader", "Ravi Reader"}
    return never, True


def leaf_commands() -> set[str]:
    found: set[str] = set()

    def walk(p: argparse.ArgumentParser, prefix: list[str]) -> None:
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            found.add(" ".join(prefix))
            return
        for name, sp in subs[0].choices.items():
            walk(sp, [*prefix, name])

    walk(build_parser(), [])
    return found


def test_the_walk_covers_every_command(tmp_path: Path) -> None:
    dummy = Walk(
        "reader",
        tmp_path,
        "x",
        {"reader3": "p"},
        TRIAL,
        dict.fromkeys(
            ("patient", "own_image", "other_image", "dicom", "reads_csv", "session"), "x"
        ),
    )
    walked = {command for command, _argv, _extra in steps(dummy)}
    assert walked | set(OUTSIDE) == leaf_commands()
    assert not walked & set(OUTSIDE)


@pytest.fixture
def walk_of(
    demo: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[[str], Walk]]:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SCORER_CONFIG", str(tmp_path / "no-site-config.toml"))
    monkeypatch.delenv("SCORER_DB", raising=False)
    monkeypatch.delenv("SCORER_USER", raising=False)

    def run(role: str) -> Walk:
        db = own_copy(demo, tmp_path / "copy")
        (tmp_path / "copy" / "out").mkdir()
        w = Walk(role, tmp_path / "copy", db, demo["passwords"], TRIAL, {})
        w.context = context_of(db, demo["passwords"], demo)
        caplog.clear()
        for step in steps(w):
            run_step(w, step, capsys, monkeypatch)
        w.texts += [("log", r.getMessage()) for r in caplog.records]
        w.texts += file_texts(tmp_path / "copy" / "out")
        return w

    yield run


@pytest.mark.parametrize("role", list(USER_OF_ROLE))
def test_no_command_gives_a_role_what_it_must_not_see(
    role: str, walk_of: Callable[[str], Walk], demo: dict[str, Any]
) -> None:
    w = walk_of(role)
    secrets, visit_words = secrets_of(role, demo, w.context)
    assert "DEMO-101" in secrets or role in ("coordinator", "admin")
    checked = 0
    for source, text in w.texts:
        lowered = text.lower()
        for secret in secrets:
            assert secret.lower() not in lowered, (role, source, secret, text[:2000])
        if visit_words:
            found = VISIT_WORDS.search(text)
            assert found is None, (role, source, found and found.group(0), text[:2000])
        checked += len(text)
    assert checked > 2000
    # The walk did real work: each role got past the log-in and had some commands succeed
    # and some refused (a reader cannot export, a monitor cannot change anything).
    codes = [rc for rcs in w.outcomes.values() for rc in rcs]
    assert 0 in codes and 1 in codes, w.outcomes
    allowed = {
        "reader": {"trial list", "worklist show"},
        "adjudicator": {"trial list", "worklist show"},
        "monitor": {"trial list", "export audit", "report agreement", "audit verify"},
        "coordinator": {
            "export reads",
            "export totals",
            "report agreement",
            "image list",
            "image joints",
        },
        "admin": {"user list", "user add", "backup"},
    }[role]
    for command in allowed:
        said = [t for source, t in w.texts if source == command]
        assert 0 in w.outcomes[command], (command, w.outcomes[command], said)
