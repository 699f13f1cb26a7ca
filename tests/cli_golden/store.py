"""The small store the golden tests run the command line against: the store tests' populated
database (six users, trial T1 with visits W0 and W24 and three patients, reads of two readers
and an adjudicator, reader1's worklist; built at a fixed clock), plus one small imported film
and one flag raised by reader1, and trial EXAMPLE with spec §10's worked example's signed
reads (readers R1 and R2, ten patients, W0 and W52), so every ``--format json`` command has
rows to print.

Passwords are hashed with argon2id at its lowest cost (as in tests/test_cli_hostile.py): the
golden tests log in a few hundred times.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from pydicom.uid import UID

from scorer.workspace import UserSession, Workspace
from tests.conftest import REPO
from tests.intake.dicom_maker import make_dx, write
from tests.store import conftest as populated
from tests.store.conftest import (
    POPULATED_START,
    POPULATED_TRIAL,
    POPULATED_USERS,
    SettableClock,
    _build_populated,
    complete_scores,
)
from tests.test_cli_hostile import _cheap_hashing

TRIAL = POPULATED_TRIAL
#: username -> password, for --password-stdin.
PASSWORDS = {user: pw for user, (_, _, pw) in POPULATED_USERS.items()}
#: The fixed UIDs of the films made here (a random UID would change the JSON each run).
STUDY_UID = "1.2.826.0.1.3680043.10.1042.1"


def film(path: Path, n: int, patient: str = "HOSP-0001", visit: str = "W0") -> Path:
    """A small DX hand film with fixed UIDs (``n`` tells films apart)."""
    ds = make_dx(patient_id=patient, visit=visit, study_uid=STUDY_UID)
    ds.SeriesInstanceUID = f"{STUDY_UID}.{n}"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = UID(f"{STUDY_UID}.{n}.1")
    return write(ds, path)


def _fill_read(ws: Workspace, s: UserSession, code: str, seed: int = 0) -> None:
    ws.reading.set_scores(s, code, complete_scores(seed))


@dataclass(frozen=True)
class GoldenStore:
    """The built store: its folder (database, audit key, receipts, data directory)."""

    folder: Path
    image: str  # the imported film's code
    flag: int  # reader1's flag
    case: str  # a case of reader1's worklist
    patient: str  # the code of patient HOSP-0001

    def copy_to(self, target: Path) -> Path:
        """A copy of the whole folder (database, key, receipts, image stores) in ``target``."""
        shutil.copytree(self.folder, target)
        return target


def build_store(folder: Path) -> GoldenStore:
    folder.mkdir(parents=True)
    with pytest.MonkeyPatch.context() as mp:
        _cheap_hashing(mp)
        # the same scores as the store tests' reads, each read in one transaction, not one
        # per area (600 transactions, each synced to disk, were most of the time)
        mp.setattr(populated, "fill_read", _fill_read)
        mp.setenv("SCORER_DATA_DIR", str(folder / "data"))
        mp.setenv("SCORER_CONFIG", str(folder / "no-site-config.toml"))
        mp.delenv("SCORER_DB", raising=False)
        template = _build_populated(folder, str(folder / "populated.sqlite"))
        # the film and the flag an hour after the template, at a fixed time too
        ws = Workspace.open(
            db=template.db, clock=SettableClock(POPULATED_START + timedelta(hours=1))
        )
        try:
            coord = ws.accounts.login("coord1", PASSWORDS["coord1"])
            f = film(folder / "incoming" / "film1.dcm", 1)
            report = ws.images.import_images(coord, TRIAL, [f], workers=1).to_dict()
            image = report["files"][0]["image"]
            assert image, report
            ws.trials.create_trial(
                coord, "EXAMPLE", "Worked example", visits=[("W0", 0), ("W52", 52)]
            )
            # One batch whatever the machine's load: a batch closes after a quarter of a
            # second, and the golden output counts the audit rows.
            from scorer.services import exchange

            quarter, exchange.READS_BATCH_S = exchange.READS_BATCH_S, 3600.0
            try:
                ws.exchange.import_reads(
                    coord, "EXAMPLE", (REPO / "examples" / "worked-example.csv").read_bytes()
                )
            finally:
                exchange.READS_BATCH_S = quarter
            reader = ws.accounts.login("reader1", PASSWORDS["reader1"])
            # The same case whatever the worklists' random order: reader1's case of patient
            # HOSP-0001 (a flag on the whole case: the letters' order is random too).
            case = _case_of(ws, template.cases["reader1"], "HOSP-0001")
            flag = ws.reading.raise_flag(reader, case, "visit B may be another patient")
            assert ws.verify().ok
        finally:
            ws.close()
    shutil.rmtree(folder / "incoming")
    return GoldenStore(folder, image, flag, case, template.patients["HOSP-0001"])


def _case_of(ws: Workspace, cases: list[str], real_id: str) -> str:
    """The case of ``cases`` showing the patient ``real_id`` (read behind the services: the
    golden store's own set-up)."""
    from scorer.store import repository as repo
    from scorer.store.schema import Patient

    with ws.store.read() as db:
        for code in cases:
            c = repo.case_by_code(db, code)
            p = db.get(Patient, c.patient_id) if c is not None else None
            if p is not None and p.real_id == real_id:
                return code
    raise AssertionError(f"no case of {real_id}")
