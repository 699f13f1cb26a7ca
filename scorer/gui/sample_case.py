"""Synthetic patients' films for the windows' previews, the GUI tests and the viewer benchmark.

Qt-free. :func:`write_sample_films` writes one fictional patient's hands and feet films (DICOM,
with realistic fake identifiers, so blinding has something to hide) for each visit;
:func:`sample_case_images` turns them into what ``Workspace.case_images`` returns, without a
database; :func:`build_sample_workspace` makes a throw-away database with a trial, a reader and
the films imported, for the reading window's preview.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scorer.core.case_films import CaseFilm
from scorer.core.joints import JointPoint
from scorer.core.worklist import LETTERS
from scorer.imaging.synthetic import damage_course, render_feet_film, render_hands_film
from scorer.imaging.synthetic_dicom import (
    TrialInfo,
    build_dataset,
    fake_patient,
    fake_site,
    fake_study,
    write_dicom,
)

SAMPLE_VISITS: tuple[tuple[str, float], ...] = (("W0", 0.0), ("W24", 24.0), ("W52", 52.0))
SAMPLE_TRIAL = "DEMO-RA"
SAMPLE_READER = "rita"
SAMPLE_READER_PASSWORD = "Tulip-Garden-2024"
DEMO_PIXEL_MM = 0.25  # a 300 x 250 mm film of both hands is 1200 x 1000 pixels


@dataclass(frozen=True)
class SampleFilm:
    """One written film: where, which visit, which regions, its content hash, and the true
    positions of its joints (the generator's, source ``truth``; never in the DICOM)."""

    path: Path
    patient_id: str
    visit: str
    regions: tuple[str, ...]
    sha256: str
    joints: tuple[JointPoint, ...] = ()


def write_sample_films(
    folder: str | os.PathLike[str],
    *,
    seed: int = 11,
    visits: int = 3,
    pixel_mm: float = DEMO_PIXEL_MM,
    feet: bool = True,
) -> list[SampleFilm]:
    """Write a progressing patient's both-hands (and both-feet) films for ``visits`` visits.

    File names are the films' content hashes, so nothing in a path betrays visit or order.
    """
    if not 1 <= visits <= len(SAMPLE_VISITS):
        raise ValueError(f"visits must be 1 to {len(SAMPLE_VISITS)}")
    out_dir = Path(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    course = damage_course(seed, visits, progressor=True, severity="moderate")
    patient = fake_patient(seed)
    site = fake_site(seed)
    first_day = dt.date(2021, 3, 1) + dt.timedelta(days=seed % 200)
    films: list[SampleFilm] = []
    for number, ((label, week), damage) in enumerate(
        zip(SAMPLE_VISITS, course.visits, strict=False)
    ):
        study = fake_study(seed * 10 + number, patient, first_day + dt.timedelta(weeks=week))
        trial = TrialInfo(
            sponsor="Demo Pharma",
            protocol_id=SAMPLE_TRIAL,
            site_id="S01",
            subject_id=patient.patient_id,
            time_point_id=label,
            time_point_description=f"Week {week:g}",
        )
        renders = [render_hands_film(damage, seed * 100 + number, pixel_mm, anatomy_seed=seed)]
        if feet:
            renders.append(
                render_feet_film(damage, seed * 100 + 50 + number, pixel_mm, anatomy_seed=seed)
            )
        for series, image in enumerate(renders, start=1):
            ds = build_dataset(image, patient, study, site, series_number=series, trial=trial)
            temporary = out_dir / f".writing-{os.getpid()}.dcm"
            write_dicom(ds, temporary)
            digest = hashlib.sha256(temporary.read_bytes()).hexdigest()
            path = out_dir / f"{digest[:16]}.dcm"
            os.replace(temporary, path)
            truth = tuple(
                JointPoint(region, joint, x, y, "truth")
                for (region, joint), (x, y) in image.joints.items()
            )
            films.append(SampleFilm(path, patient.patient_id, label, image.regions, digest, truth))
    return films


def sample_case_images(
    films: Sequence[SampleFilm], order: Sequence[str] | None = None
) -> dict[str, list[CaseFilm]]:
    """The films as ``Workspace.case_images`` gives them: by letter A, B, C in ``order``,
    each with its true joint positions as placed ones.

    ``order`` lists visit labels as this reader sees them (default: reversed, so the letters
    do not follow time); the entries carry no label, date or name.
    """
    labels = list(dict.fromkeys(f.visit for f in films))
    shown = list(order) if order is not None else labels[::-1]
    out: dict[str, list[CaseFilm]] = {}
    for letter, label in zip(LETTERS, shown, strict=False):
        out[letter] = [
            CaseFilm(
                f.sha256[:10].upper(), tuple(sorted(f.regions)), str(f.path), f.sha256, f.joints
            )
            for f in films
            if f.visit == label
        ]
    return out


@dataclass
class SampleReading:
    """A throw-away database with a trial, its films imported and a reader's worklist."""

    workspace: Any  # scorer.workspace.Workspace
    session: Any  # the reader's UserSession
    trial: str
    films: list[SampleFilm]


def build_sample_workspace(
    folder: str | os.PathLike[str],
    *,
    patients: int = 3,
    visits: int = 3,
    pixel_mm: float = DEMO_PIXEL_MM,
    design: str = "paired_blinded",
    before_import: Callable[[list[SampleFilm]], None] | None = None,
    locate_joints: bool = True,
) -> SampleReading:
    """A new database in ``folder`` with ``patients`` synthetic patients imported and one
    reader (``rita``) assigned, worklist generated and logged in. ``before_import`` may
    change the written films (e.g. their headers) before they are imported;
    ``locate_joints=False`` imports them without the joint locator (films without positions,
    as a centre that turned it off, or a database from before it, has them).

    The database and its image stores live in ``folder``; the pyramid cache follows the data
    directory (``SCORER_DATA_DIR``), so point that at a temporary folder too.
    """
    from scorer.workspace import Workspace

    root = Path(folder)
    films: list[SampleFilm] = []
    for number in range(patients):
        films += write_sample_films(
            root / "incoming", seed=11 + number, visits=visits, pixel_mm=pixel_mm
        )
    if before_import is not None:
        before_import(films)
    ws = Workspace.initialize("ada", "Ada Admin", "Sunflower-Meadow-7", db=str(root / "demo.db"))
    admin = ws.accounts.login("ada", "Sunflower-Meadow-7")
    ws.accounts.add_user(admin, "cora", "Cora Coordinator", "coordinator", "Temporary-pass-1")
    ws.accounts.add_user(admin, SAMPLE_READER, "Rita Reader", "reader", "Temporary-pass-2")
    coordinator = ws.accounts.login("cora", "Temporary-pass-1")
    ws.accounts.change_password(coordinator, "Temporary-pass-1", "Willow-Compass-2024")
    ws.trials.create_trial(
        coordinator,
        SAMPLE_TRIAL,
        "Demo trial",
        design=design,
        visits=list(SAMPLE_VISITS[:visits]),
    )
    ws.images.locate_joints = locate_joints
    ws.images.import_images(coordinator, SAMPLE_TRIAL, [root / "incoming"], workers=1)
    ws.worklists.assign_reader(coordinator, SAMPLE_TRIAL, SAMPLE_READER)
    ws.worklists.generate_worklists(coordinator, SAMPLE_TRIAL)
    reader = ws.accounts.login(SAMPLE_READER, "Temporary-pass-2")
    ws.accounts.change_password(reader, "Temporary-pass-2", SAMPLE_READER_PASSWORD)
    return SampleReading(ws, reader, SAMPLE_TRIAL, films)


def _pixel_digest(path: str | os.PathLike[str]) -> str:
    import pydicom

    return hashlib.sha256(pydicom.dcmread(path).pixel_array.tobytes()).hexdigest()


def case_images_with_truth(sample: SampleReading) -> Callable[[str], dict[str, list[CaseFilm]]]:
    """The reader's ``case_images`` of a sample workspace with each film given the generator's
    true joint positions, matched to the written films by their pixels (the case's own file
    of a film has other bytes but the same pixels): the films as they come once positions are
    placed, for the joint view's tests and benchmark."""
    truth = {_pixel_digest(f.path): f.joints for f in sample.films}

    def case_images(code: str) -> dict[str, list[CaseFilm]]:
        films = sample.workspace.images.case_images(sample.session, code)
        return {
            letter: [
                CaseFilm(f.image, f.regions, f.path, f.sha256, truth.get(_pixel_digest(f.path), ()))
                for f in entries
            ]
            for letter, entries in films.items()
        }

    return case_images
