"""The demo: synthetic sample radiographs and a demo trial a new user can open at once.

``generate_samples`` renders the sample set (hands and feet films of about a dozen fictional
patients at three visits, some progressing) with its manifest and ground truth, from a seed.
``run_demo`` builds or reuses a demo database: accounts for every role, a paired-blinded svh
trial, the sample images imported, worklists, and signed primary reads of two readers made from
the ground truth with realistic disagreement; the third reader's worklist is left for the user.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scorer.core.methods import Area, get_method
from scorer.core.private_files import create_file, make_folder, write_file
from scorer.core.randomness import Stream
from scorer.core.reads import AreaScore, Read
from scorer.core.readscsv import format_reads_csv, parse_reads_csv

if TYPE_CHECKING:
    from scorer.imaging.synthetic import Damage
    from scorer.imaging.synthetic_dicom import FakePatient, FakeSite

SAMPLE_SEED = 2026
N_PATIENTS = 12
N_PROGRESSORS = 5
VISITS: tuple[tuple[str, int], ...] = (("W0", 0), ("W24", 24), ("W52", 52))
TRIAL = "DEMO-RA"
LOSSY_RATIO = 10.0
READERS = ("reader1", "reader2", "reader3")
ACCOUNTS: tuple[tuple[str, str, str], ...] = (
    ("admin", "Ada Administrator", "admin"),
    ("coord", "Cora Coordinator", "coordinator"),
    ("adjud", "Adam Adjudicator", "adjudicator"),
    ("monitor", "Mona Monitor", "monitor"),
    ("reader1", "Rita Reader", "reader"),
    ("reader2", "Ravi Reader", "reader"),
    ("reader3", "Rosa Reader", "reader"),
)
Say = Callable[[str], None]


def repo_samples_dir() -> Path:
    """``sample_images/`` of a source checkout (absent from an installed wheel)."""
    return Path(__file__).resolve().parents[1] / "sample_images"


def _subject(i: int) -> str:
    return f"DEMO-{101 + i:03d}"


def generate_samples(
    out: Path,
    seed: int = SAMPLE_SEED,
    n_patients: int = N_PATIENTS,
    only: set[int] | None = None,
    say: Say | None = None,
) -> None:
    """Render the sample set into ``out``: DICOM films (JPEG 2000 at 10:1, DX, some
    MONOCHROME1 as many CR systems send), ``manifest.csv``, ground truth as reads CSVs for
    svh and larsen1995, and a README saying how it was made."""
    from scorer.imaging.synthetic import damage_course
    from scorer.imaging.synthetic_dicom import fake_patient, fake_site

    out.mkdir(parents=True, exist_ok=True)
    progressors = demo_progressors(seed, n_patients)
    manifest_rows: list[list[str]] = []
    joint_rows: list[list[str]] = []
    truth_svh: list[Read] = []
    truth_larsen: list[Read] = []
    for i in range(n_patients):
        if only is not None and i not in only:
            continue
        subject = _subject(i)
        pseed = seed * 1000 + i
        course = damage_course(pseed, visits=len(VISITS), progressor=i in progressors)
        patient = fake_patient(pseed)
        site = fake_site(seed * 10 + i % 3)
        dates = Stream(str(seed), f"demo-dates-{i}")  # per patient: any subset regenerates
        start = dt.date(2023, 1, 9) + dt.timedelta(days=7 * i + int(dates.below(5)))
        for vi, (label, week) in enumerate(VISITS):
            when = start + dt.timedelta(days=7 * week + (int(dates.below(9)) - 4 if vi else 0))
            damage = course.visits[vi]
            films = _write_visit_films(out, i, pseed, vi, when, damage, patient, site, say)
            manifest_rows += films[0]
            joint_rows += films[1]
            svh, larsen = _truth_reads(subject, label, when, damage)
            truth_svh.append(svh)
            truth_larsen.append(larsen)
    _write_sample_tables(out, manifest_rows, truth_svh, truth_larsen)
    _write_joint_positions(out, joint_rows)
    (out / "README.md").write_text(_samples_readme(seed, n_patients, progressors), encoding="utf-8")


def _write_visit_films(
    out: Path,
    i: int,
    pseed: int,
    vi: int,
    when: dt.date,
    damage: Damage,
    patient: FakePatient,
    site: FakeSite,
    say: Say | None,
) -> tuple[list[list[str]], list[list[str]]]:
    """Render sample patient ``i``'s hands and feet films of visit ``vi`` and write them as
    DICOM under ``out``; returns their manifest rows and their joint-position rows."""
    from scorer.imaging.synthetic import render_feet_film, render_hands_film
    from scorer.imaging.synthetic_dicom import TrialInfo, build_dataset, fake_study, write_dicom

    subject = _subject(i)
    label = VISITS[vi][0]
    mono1 = i % 3 == 2  # a third of the sites send MONOCHROME1, as many CR systems do
    study = fake_study(pseed * 10 + vi, patient, when)
    trial = TrialInfo(
        sponsor="Demo Pharma",
        protocol_id=TRIAL,
        site_id=f"S{i % 3 + 1}",
        subject_id=subject,
        time_point_id=label,
    )
    films = (
        ("hands", render_hands_film(damage, pseed * 10 + vi, anatomy_seed=pseed)),
        ("feet", render_feet_film(damage, pseed * 10 + vi, anatomy_seed=pseed)),
    )
    rows: list[list[str]] = []
    joint_rows: list[list[str]] = []
    for n, (part, img) in enumerate(films, start=1):
        ds = build_dataset(
            img,
            patient,
            study,
            site,
            modality="CR" if mono1 else "DX",
            photometric="MONOCHROME1" if mono1 else "MONOCHROME2",
            series_number=n,
            instance_number=1,
            trial=trial,
        )
        rel = Path(subject) / f"{label}-{part}.dcm"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        write_dicom(ds, out / rel, "j2k-lossy", ratio=LOSSY_RATIO)
        rows.append([rel.as_posix(), subject, label, when.isoformat(), " ".join(img.regions)])
        for (region, joint), (x, y) in img.joints.items():
            joint_rows.append([rel.as_posix(), region, joint, f"{x:.2f}", f"{y:.2f}"])
        if say:
            say(f"  {rel}")
    return rows, joint_rows


def _truth_reads(subject: str, label: str, when: dt.date, damage: Damage) -> tuple[Read, Read]:
    """The ground truth of one visit's films: the svh and the larsen1995 read they were drawn
    from, reader ``ground-truth``."""
    from scorer.imaging.synthetic import larsen_truth, svh_truth

    regions = ("LH", "RH", "LF", "RF")
    svh, larsen = (
        Read(
            trial=TRIAL,
            patient=subject,
            visit=label,
            reader="ground-truth",
            method=method,
            read_type="imported",
            read_id=f"truth-{subject}-{label}",
            status="signed",
            visit_date=when,
            scores={a: AreaScore(score=v) for a, v in scores.items()},
        )
        for method, scores in (
            ("svh", svh_truth(damage, regions)),
            ("larsen1995", larsen_truth(damage, regions)),
        )
    )
    return svh, larsen


def _write_sample_tables(
    out: Path, manifest_rows: list[list[str]], truth_svh: list[Read], truth_larsen: list[Read]
) -> None:
    """Write the sample set's manifest and its ground truth as reads CSVs."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["file", "patient", "visit", "date", "regions"])
    w.writerows(manifest_rows)
    (out / "manifest.csv").write_text(buf.getvalue(), encoding="utf-8")
    (out / "ground-truth-svh.csv").write_text(format_reads_csv(truth_svh), encoding="utf-8")
    (out / "ground-truth-larsen1995.csv").write_text(
        format_reads_csv(truth_larsen), encoding="utf-8"
    )


JOINT_POSITIONS_CSV = "joint-positions.csv"
"""The sample set's true joint positions: file, region, joint, x, y (stored-image pixels)."""


def _write_joint_positions(out: Path, rows: list[list[str]]) -> None:
    """Write the films' true joint positions (kept beside the films, never in the DICOM)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["file", "region", "joint", "x", "y"])
    w.writerows(rows)
    (out / JOINT_POSITIONS_CSV).write_text(buf.getvalue(), encoding="utf-8")


def read_joint_positions(path: Path) -> dict[str, list[tuple[str, str, float, float]]]:
    """The true joint positions of a sample set's ``joint-positions.csv``, by film file:
    ``(region, joint, x, y)`` in pixels."""
    out: dict[str, list[tuple[str, str, float, float]]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            point = (row["region"], row["joint"], float(row["x"]), float(row["y"]))
            out.setdefault(row["file"], []).append(point)
    return out


def _samples_readme(seed: int, n: int, progressors: set[int]) -> str:
    prog = ", ".join(_subject(i) for i in sorted(progressors))
    return f"""# Sample radiographs (synthetic)

Fictional patients and synthetic films: no real person's radiograph or data is here. Made by

    scorer demo --samples-only --samples-dir sample_images --seed {seed}

from seed {seed}: {n} patients, visits {", ".join(v for v, _ in VISITS)}, one film of both hands
(ImageLaterality B) and one of both feet per visit, 1200 x 1000 pixels at 0.25 mm, 12-bit, as
DX (MONOCHROME2) or, for a third of the patients, CR (MONOCHROME1), stored as JPEG 2000 at
{LOSSY_RATIO:g}:1 (error below the detector noise). Progressing patients: {prog}.

- `manifest.csv`: file, patient, visit, date, regions of each film (the headers say the same).
- `ground-truth-svh.csv`, `ground-truth-larsen1995.csv`: the damage each film was drawn with,
  in the reads CSV format, reader `ground-truth`.
- `joint-positions.csv`: where each joint of each film truly lies (file, region, joint, x, y):
  x the column and y the row in the stored image's pixels, from the top-left pixel's centre;
  a joint scored for narrowing at the middle of its joint space, the wrist's bones where a
  reader points at them (RAD, ULN, CMC1 at the centre of their articular end, NAV, LUN, MUL at
  the bones' centre), Larsen's wrist quadrants at the mean of their areas' positions.
  `scorer demo` loads them as placed positions (source `truth`), so joint view works on the
  demo at once. They are never written into the DICOM.
- The headers carry realistic fake identifiers (names, IDs, dates, institution, private tags,
  nested sequences), so blinding and de-identification are tested against something.
"""


# ------------------------------------------------------------------ the demo database


@dataclass
class DemoResult:
    """What the demo made or found."""

    db: str
    accounts_file: Path
    created: bool
    passwords: dict[str, str] = field(default_factory=dict)


def demo_location(db: str | None) -> str:
    """The demo database: ``--db``, else SCORER_DB, else a demo folder in the data directory."""
    from scorer.store.location import data_dir

    if db:
        return db
    if os.environ.get("SCORER_DB"):
        return os.environ["SCORER_DB"]
    return str(data_dir() / "demo" / "scorer-demo.sqlite")


def _reader_read(
    truth: dict[Area, int], reader: str, patient: str, visit: str
) -> dict[Area, AreaScore]:
    """A reader's scores from the truth: a persistent opinion per joint (the same at every
    visit of a patient) and a little visit-to-visit noise, as real readers disagree."""
    method = get_method("svh")
    persistent = Stream(f"{reader}|{patient}", "demo-reader-opinion")
    noise = Stream(f"{reader}|{patient}|{visit}", "demo-reader-noise")
    out: dict[Area, AreaScore] = {}
    for d in method.areas:
        value = truth.get(d.area, 0)
        if persistent.below(100) < 10:
            value += 1 if persistent.below(2) else -1
        if noise.below(100) < 3:
            value += 1 if noise.below(2) else -1
        value = max(d.min, min(d.max, value))
        if d.sides:
            a = min(5, value)
            out[d.area] = AreaScore.from_sides([a, value - a])
        else:
            out[d.area] = AreaScore(score=value)
    return out


def run_demo(
    db: str | None = None, reset: bool = False, samples: Path | None = None, say: Say = print
) -> DemoResult:
    """Create (or reuse) the demo database; see the module docstring."""
    from scorer.store.location import resolve
    from scorer.workspace import Workspace

    url = demo_location(db)
    loc = resolve(url)
    accounts_file = (
        loc.sqlite_path.parent if loc.sqlite_path else loc.data_dir
    ) / "demo-accounts.txt"
    if reset:
        _remove_demo(loc, accounts_file, say)
    _upgrade_old_demo(loc, say)
    if _demo_complete(url):
        _joints_on_reuse(loc, accounts_file, samples, say)
        say(f"The demo database is ready at {loc.shown} (reused; --reset starts over).")
        return DemoResult(url, accounts_file, False)
    samples = _samples_dir(loc, samples, say)
    passwords = _read_accounts(accounts_file)
    fresh = not passwords
    if fresh:
        passwords = {user: _password() for user, _, _ in ACCOUNTS}
    if loc.sqlite_path is not None:
        make_folder(loc.sqlite_path.parent)
    _write_accounts(accounts_file, passwords)
    try:
        ws = Workspace.open(location=loc)
    except Exception:
        ws = Workspace.initialize("admin", "Ada Administrator", passwords["admin"], location=loc)
    try:
        _build(ws, passwords, samples, say)
    finally:
        ws.close()
    write_allocation(accounts_file.with_name("demo-allocation.csv"))
    return DemoResult(url, accounts_file, True, passwords)


def _samples_dir(loc: Any, samples: Path | None, say: Say) -> Path:
    """The sample set: the one given, the repository's, or one generated into the data
    directory."""
    if samples is None:
        samples = repo_samples_dir()
        if not (samples / "manifest.csv").exists():
            samples = loc.data_dir / "demo" / "sample_images"
            if not (samples / "manifest.csv").exists():
                say(f"Generating the sample radiographs into {samples} ...")
                generate_samples(samples)
    return samples


def _joints_on_reuse(loc: Any, accounts_file: Path, samples: Path | None, say: Say) -> None:
    """A demo made before films kept joint positions (upgraded by ``scorer migrate``) gets
    the films' true positions, so joint view works on it too; nothing else changes."""
    from scorer.store import repository as repo
    from scorer.workspace import Workspace

    password = _read_accounts(accounts_file).get("coord")
    if password is None:
        return
    ws = Workspace.open(location=loc)
    try:
        with ws.store.read() as db:
            if repo.has_joint_positions(db):
                return  # the usual reuse: nothing is written, not even a log-in
        coord = ws.accounts.login("coord", password)
        try:
            images = ws.images.list_images(coord, TRIAL)
            if images and not any(ws.images.joint_positions(coord, i.code) for i in images):
                say("The demo's films have no joint positions yet: placing the true ones.")
                _place_true_joints(ws, coord, _samples_dir(loc, samples, say), say)
        finally:
            ws.accounts.logout(coord)
    finally:
        ws.close()


def demo_progressors(seed: int = SAMPLE_SEED, n_patients: int = N_PATIENTS) -> set[int]:
    """The indices of the sample patients whose films show progression (by the seed)."""
    return set(Stream(str(seed), "demo-progressors").sample(range(n_patients), N_PROGRESSORS))


PLACEBO_PROGRESSORS = 4


def write_allocation(path: Path, n: int = N_PATIENTS) -> Path:
    """The demo's arm allocation (``patient,arm``), kept apart from the reading database as a
    trial's randomisation list is: half the patients "active", half "placebo", by a seed, with
    4 of the 5 progressing patients on placebo, so the endpoint report tells the story of the
    trials it imitates (less progression on the active arm). Only the allocation says so: the
    films are the same."""
    progressing = sorted(demo_progressors(SAMPLE_SEED, n) & set(range(n)))
    stable = [i for i in range(n) if i not in progressing]
    stream = Stream("demo-allocation", "arms")
    progressing = stream.shuffled(progressing)
    stable = stream.shuffled(stable)
    on_placebo = min(PLACEBO_PROGRESSORS, len(progressing), n // 2)
    placebo = set(progressing[:on_placebo]) | set(stable[: max(0, n // 2 - on_placebo)])
    arms = {_subject(i): ("placebo" if i in placebo else "active") for i in range(n)}
    lines = ["patient,arm"] + [f"{p},{arms[p]}" for p in sorted(arms)]
    write_file(path, "\n".join(lines) + "\n")  # owner-only, as the trial's real list would be
    return path


def _password() -> str:
    return "demo-" + secrets.token_urlsafe(9)


def _read_accounts(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] in {u for u, _, _ in ACCOUNTS}:
                out[parts[0]] = parts[-1]
    return out if len(out) == len(ACCOUNTS) else {}


def _write_accounts(path: Path, passwords: dict[str, str]) -> None:
    make_folder(path.parent)
    lines = ["# scorer demo accounts: user ID, role, password (demo only; keep private)"]
    lines += [f"{u:<10} {role:<12} {passwords[u]}" for u, _, role in ACCOUNTS]
    with os.fdopen(create_file(path), "w", encoding="utf-8") as fh:  # owner-only (0600)
        fh.write("\n".join(lines) + "\n")


def _remove_demo(loc: object, accounts_file: Path, say: Say) -> None:
    from scorer.store.location import Location

    assert isinstance(loc, Location)
    path = loc.sqlite_path
    if path is None:
        raise ValueError("--reset works on a SQLite demo database only")
    for p in (
        path,
        path.with_name(path.name + "-wal"),
        path.with_name(path.name + "-shm"),
        loc.key_path,
        loc.receipts_path,
        accounts_file,
    ):
        p.unlink(missing_ok=True)
    for d in (loc.readers_store, loc.originals_store):
        if d.exists():
            for f in d.rglob("*"):
                if f.is_file():
                    f.chmod(0o600)
            shutil.rmtree(d, ignore_errors=True)
    say(f"Removed the demo database at {path}.")


def _upgrade_old_demo(loc: object, say: Say) -> None:
    """A demo database made by an earlier scorer is brought up to this one's schema."""
    from scorer.store.database import database_exists
    from scorer.store.location import Location
    from scorer.workspace import ScorerError, Workspace

    assert isinstance(loc, Location)
    if not database_exists(loc):
        return
    try:
        Workspace.open(location=loc).close()
    except ScorerError as exc:
        if "scorer migrate" in str(exc):
            before, after = Workspace.migrate(location=loc)
            say(f"Upgraded the demo database's schema from {before} to {after}.")


def _demo_complete(url: str) -> bool:
    """True when the demo trial exists with its two readers' reads all signed."""
    from scorer.store.database import database_exists
    from scorer.store.location import resolve

    loc = resolve(url)
    if not database_exists(loc):
        return False
    from scorer.workspace import Workspace

    try:
        ws = Workspace.open(location=loc)
    except Exception:
        return False
    try:
        return demo_state(ws) == "complete"
    finally:
        ws.close()


def demo_state(ws: object) -> str:
    """ "missing", "partial" or "complete": the demo trial and its two readers' signed cases."""
    from scorer.store import repository as repo
    from scorer.workspace import Workspace

    assert isinstance(ws, Workspace)
    with ws.store.read() as db:
        t = repo.trial_by_code(db, TRIAL)
        if t is None:
            return "missing"
        camps = repo.campaigns_of(db, t)
        if not camps:
            return "partial"
        done = 0
        for w in repo.worklists_of(db, camps[0]):
            user = repo.user_by_id(db, w.reader_id)
            if user.username not in READERS[:2]:
                continue
            cases = repo.cases_of(db, w)
            reads = [r for c in cases for r in repo.reads_of_case(db, c)]
            n_visits = sum(len(json.loads(c.visits)) for c in cases)
            if cases and len(reads) == n_visits and all(r.status == "signed" for r in reads):
                done += 1
        return "complete" if done == 2 else "partial"


def _build(ws: object, passwords: dict[str, str], samples: Path, say: Say) -> None:
    from scorer.imaging.manifest import parse_manifest
    from scorer.workspace import InvalidInput, Workspace

    assert isinstance(ws, Workspace)
    admin = ws.accounts.login("admin", passwords["admin"])
    existing = {u.username for u in ws.accounts.list_users(admin)}
    for user, name, role in ACCOUNTS:
        if user in existing:
            continue
        temporary = _password()
        ws.accounts.add_user(admin, user, name, role, temporary)
        s = ws.accounts.login(user, temporary)
        ws.accounts.change_password(s, temporary, passwords[user])
        ws.accounts.logout(s)
    ws.accounts.logout(admin)
    say("Accounts ready.")
    coord = ws.accounts.login("coord", passwords["coord"])
    if TRIAL not in {t.code for t in ws.trials.list_trials(coord)}:
        from scorer.core.protocol import Protocol, VisitDef

        proto = Protocol(
            code=TRIAL,
            name="Demo RA trial (synthetic radiographs)",
            methods=("svh",),
            design="paired_blinded",
            visits=tuple(VisitDef(v, float(w)) for v, w in VISITS),
            reread_share=0.10,
        )
        ws.trials.create_trial(coord, TRIAL, protocol=proto)
    if not ws.images.list_images(coord, TRIAL):
        say(f"Importing the sample radiographs from {samples} ...")
        manifest = parse_manifest((samples / "manifest.csv").read_text(encoding="utf-8"))
        files = [samples / row.file for row in manifest.rows]
        report = ws.images.import_images(coord, TRIAL, files, manifest).to_dict()
        say(f"  imported {report['imported']}, refused {report['refused']}")
        if report.get("registration"):
            say(f"  {report['registration']}")
    _place_true_joints(ws, coord, samples, say)
    for reader in READERS:
        with contextlib.suppress(InvalidInput):
            ws.worklists.assign_reader(coord, TRIAL, reader)
    ws.worklists.generate_worklists(coord, TRIAL)
    # A coordinator's lists carry every patient's real identifier and every case's patient.
    patients = {p.code: p.real_id or "" for p in ws.trials.list_patients(coord, TRIAL)}
    worklists = {r: ws.worklists.worklist(coord, TRIAL, r) for r in READERS[:2]}
    ws.accounts.logout(coord)
    truth = _truth(samples)
    for reader in READERS[:2]:
        s = ws.accounts.login(reader, passwords[reader])
        full = {row.code: row for row in worklists[reader]}
        signed = 0
        for row in ws.worklists.worklist(s, TRIAL):
            if row.status == "signed":
                continue
            case = ws.reading.open_case(s, row.code)
            patient = patients[full[row.code].patient or ""]
            for letter, read_code in case.reads.items():
                if ws.reading.get_read(s, read_code).status == "signed":
                    continue  # an interrupted earlier set-up signed this one already
                visit = full[row.code].visits["ABC".index(letter)]
                scores = _reader_read(truth[(patient, visit)], reader, patient, visit)
                ws.reading.set_scores(s, read_code, scores)
                ws.reading.sign_read(
                    s, read_code, passwords[reader], username=reader if not s.signed_once else None
                )
            signed += 1
        ws.accounts.logout(s)
        say(f"{reader}: {signed} case(s) scored and signed.")


def _place_true_joints(ws: object, coord: Any, samples: Path, say: Say) -> None:
    """Place the true joint positions (``joint-positions.csv``, source ``truth``) of every
    joint the import left without one (the locator was unsure of it, and no other visit's film
    gave it), through the coordinator's operation, audited, so joint view works on the demo at
    once: the truth stands in for the coordinator's three-click fit. Joints placed already
    (by the locator, by registration, or by an interrupted earlier set-up) are left alone."""
    from scorer.core.joints import JointPoint
    from scorer.imaging.manifest import parse_manifest
    from scorer.workspace import Workspace

    assert isinstance(ws, Workspace)
    path = samples / JOINT_POSITIONS_CSV
    if not path.exists():
        say(f"  no {JOINT_POSITIONS_CSV} in {samples}: films keep no joint positions")
        return
    truth = read_joint_positions(path)
    manifest = parse_manifest((samples / "manifest.csv").read_text(encoding="utf-8"))
    files = {(row.patient, row.visit, frozenset(row.regions)): row.file for row in manifest.rows}
    real = {p.code: p.real_id or "" for p in ws.trials.list_patients(coord, TRIAL)}
    placed = 0
    for img in ws.images.list_images(coord, TRIAL):
        file = files.get((real.get(img.patient or "", ""), img.visit or "", frozenset(img.regions)))
        if file is None or file not in truth:
            continue
        have = {(p.region, p.joint) for p in ws.images.joint_positions(coord, img.code)}
        points = [
            JointPoint(r, j, x, y, "truth") for r, j, x, y in truth[file] if (r, j) not in have
        ]
        if points:
            placed += ws.images.place_image_joints(coord, img.code, points)
    say(f"  placed {placed} true joint positions where the import left none")


def _truth(samples: Path) -> dict[tuple[str, str], dict[Area, int]]:
    reads = parse_reads_csv((samples / "ground-truth-svh.csv").read_bytes())
    return {(r.patient, r.visit): {a: s.score or 0 for a, s in r.scores.items()} for r in reads}
