"""Files only their owner reads (issue 22): everything the demo, an import and every export,
report and backup write is owner-only — files 0600, folders 0700 — whatever the umask; the
readers' copies are read-only (0400). With ``audit_group`` in the site config the database,
its WAL files, the audit key, the receipts and the readers' store take that group, and the
exports stay owner-only.

The demo is the demo's own code on two patients' committed files (tests/blinding.py); the
commands are the command line's, run as the coordinator.
"""

from __future__ import annotations

import grp
import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scorer.cli import main
from scorer.demo import TRIAL
from scorer.workspace import Workspace
from tests.blinding import build_mini_demo
from tests.intake.dicom_maker import make_dx, write

pytestmark = [
    pytest.mark.posix,
    pytest.mark.skipif(os.name != "posix", reason="file modes and groups are POSIX"),
]

USER = "coord"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def wide_umask() -> Iterator[None]:
    """A umask that would leave everything readable by all: the modes must not depend on it."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def run(
    monkeypatch: pytest.MonkeyPatch, db: str, password: str, argv: list[str], *extra: str
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join([password, *extra]) + "\n"))
    command = [*argv, "--db", db, "--user", USER, "--password-stdin"]
    assert main(command) == 0, command


def write_everything(demo: dict[str, Any], out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An import, then every export, report and backup the command line writes, into ``out``
    (which exists, as a user's folder would), and a restore of the backup."""
    db, pw = str(demo["db"]), demo["passwords"][USER]

    def o(name: str) -> str:
        return str(out / name)

    film = write(make_dx(patient_id="DEMO-201", visit="W0"), out.parent / "in" / "a.dcm")
    run(monkeypatch, db, pw, ["import", str(film), "--trial", TRIAL, "--quiet"])
    ws = Workspace.open(db)
    try:
        image = ws.images.list_images(ws.accounts.login(USER, pw), TRIAL)[0].code
    finally:
        ws.close()
    run(monkeypatch, db, pw, ["image", "export-png", image, "--out", o("image.png")])
    for ext in ("html", "pdf", "json", "xlsx"):
        name = o(f"agreement.{ext}")
        run(monkeypatch, db, pw, ["report", "agreement", "--trial", TRIAL, "--out", name])
    run(monkeypatch, db, pw, ["export", "totals", "--trial", TRIAL, "--out", o("totals.csv")])
    run(monkeypatch, db, pw, ["export", "audit", "--out", o("audit.csv")])
    run(monkeypatch, db, pw, ["backup", "--out", o("backup.zip")])
    run(monkeypatch, db, pw, ["trial", "lock", TRIAL], pw)
    run(monkeypatch, db, pw, ["export", "reads", "--trial", TRIAL, "--out", o("reads.csv")])
    run(monkeypatch, db, pw, ["export", "package", "--trial", TRIAL, "--out", o("package.zip")])
    # No database: the analysis of an export and the endpoint report.
    assert main(["analyze", o("reads.csv"), "--out", o("analysis.txt")]) == 0
    arms = str(demo["allocation"])
    endpoints = ["--reads", o("reads.csv"), "--arms", arms, "--out", o("endpoints.html")]
    assert main(["report", "endpoints", *endpoints]) == 0
    # A restore needs the key in place beside the new database (it is never in a backup).
    restored = out / "restored"
    restored.mkdir(mode=0o700)
    key = Path(db).with_name(Path(db).stem + ".audit-key")
    (restored / "r.audit-key").write_bytes(key.read_bytes())
    (restored / "r.audit-key").chmod(0o600)
    assert main(["restore", o("backup.zip"), "--db", str(restored / "r.sqlite")]) == 0


EXPORTS = {
    "image.png",
    *(f"agreement.{ext}" for ext in ("html", "pdf", "json", "xlsx")),
    "totals.csv",
    "audit.csv",
    "backup.zip",
    "reads.csv",
    "reads.csv.manifest.json",
    "package.zip",
    "analysis.txt",
    "endpoints.html",
}


def store_files(base: Path) -> dict[str, Path]:
    """The database, its WAL files, key and receipts of the demo in ``base``."""
    db = base / "demo.sqlite"
    return {
        "database": db,
        "wal": db.with_name("demo.sqlite-wal"),
        "shm": db.with_name("demo.sqlite-shm"),
        "key": db.with_name("demo.audit-key"),
        "receipts": db.with_name("demo.receipts"),
    }


def test_everything_the_demo_an_import_and_the_exports_write_is_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wide_umask: None
) -> None:
    base = tmp_path / "demo"
    base.mkdir()
    demo = build_mini_demo(base)
    out = tmp_path / "out"
    out.mkdir(mode=0o755)
    monkeypatch.setenv("SCORER_DATA_DIR", str(base / "data"))
    monkeypatch.setenv("SCORER_CONFIG", str(base / "no-site-config.toml"))
    monkeypatch.delenv("SCORER_DB", raising=False)
    ws = Workspace.open(str(demo["db"]))
    try:
        assert ws.verify().ok  # an open connection keeps the WAL files to look at
        write_everything(demo, out, monkeypatch)
        for name, path in store_files(base).items():
            assert path.is_file(), name
        readers = base / "demo-images" / "readers"
        copies = [p for p in readers.rglob("*") if p.is_file()]
        assert len(copies) == 13  # the two patients' 12 films and the one imported
        assert (base / "data" / "cache").is_dir()  # the pyramid caches of the PNG export
        assert {p.name for p in out.iterdir()} == EXPORTS | {"restored"}
        wrong = []
        for root in (base, out):
            for path in root.rglob("*"):
                if path.is_relative_to(base / "samples"):
                    continue  # the test's input: the committed sample radiographs
                if path.is_dir():
                    expected = 0o700
                elif path.is_relative_to(readers):
                    expected = 0o400  # the readers' copies are read-only after import
                else:
                    expected = 0o600
                if mode(path) != expected:
                    wrong.append(f"{path.relative_to(tmp_path)} {mode(path):o}")
        assert wrong == []
        assert mode(out) == 0o755  # the user's own folder is left as it was
        names = {p.name for p in base.rglob("*")}
        assert {"demo-accounts.txt", "demo-allocation.csv", "demo.sqlite-wal"} <= names
        assert {"r.sqlite", "r.receipts"} <= {p.name for p in (out / "restored").iterdir()}
    finally:
        ws.close()


def other_group() -> grp.struct_group:
    """A group this process may give its files: as root any group but its own (so the test
    sees the group change), else one of its groups."""
    if os.geteuid() == 0:
        return next(g for g in grp.getgrall() if g.gr_gid != os.getegid())
    gids = [g for g in os.getgroups() if g != os.getegid()] or [os.getegid()]
    return grp.getgrgid(gids[0])


def test_with_audit_group_the_shared_files_take_the_group_and_exports_stay_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wide_umask: None
) -> None:
    group = other_group()
    base = tmp_path / "centre"
    base.mkdir()
    # The site config the mini demo reads names the workstations' group.
    (base / "no-site-config.toml").write_text(
        f'audit_group = "{group.gr_name}"\n', encoding="utf-8"
    )
    demo = build_mini_demo(base)
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv("SCORER_DATA_DIR", str(base / "data"))
    monkeypatch.setenv("SCORER_CONFIG", str(base / "no-site-config.toml"))
    monkeypatch.delenv("SCORER_DB", raising=False)
    ws = Workspace.open(str(demo["db"]))
    try:
        assert ws.verify().ok
        write_everything(demo, out, monkeypatch)
        shared = store_files(base)
        for name, expected in (
            ("database", 0o660),
            ("wal", 0o660),
            ("shm", 0o660),
            ("key", 0o640),
            ("receipts", 0o660),
        ):
            path = shared[name]
            assert (name, mode(path), path.stat().st_gid) == (name, expected, group.gr_gid)
        readers = base / "demo-images" / "readers"
        for path in [readers, *readers.rglob("*")]:
            expected = 0o750 if path.is_dir() else 0o440
            assert (mode(path), path.stat().st_gid) == (expected, group.gr_gid), path
        # The originals are the importing account's only; so are the exports, the cache,
        # the demo's accounts and allocation.
        originals = base / "demo-images" / "originals"
        private = [originals, *originals.rglob("*"), *(base / "data").rglob("*")]
        private += [base / "demo-accounts.txt", base / "demo-allocation.csv"]
        private += [p for p in out.rglob("*")]
        assert {p.name for p in out.iterdir()} == EXPORTS | {"restored"}
        wrong = [
            f"{p.relative_to(tmp_path)} {mode(p):o}"
            for p in private
            if mode(p) != (0o700 if p.is_dir() else 0o600)
        ]
        assert wrong == []
    finally:
        ws.close()
