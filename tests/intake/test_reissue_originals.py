"""``scorer image reissue`` reads each original as import read it (issue 25, F3).

An original imported from a file without the 128-byte preamble (its file meta first), or from
a bare dataset without file meta, is kept byte for byte as it came; reissue once read it with
a plain ``dcmread`` and refused the whole trial, blaming the pixel data. Now both go through
the one reader of originals (:func:`scorer.imaging.streams.dicom_part10`).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from scorer.cli import main
from scorer.services.lookups import find_trial
from scorer.store import repository as repo
from scorer.workspace import Workspace
from tests.intake.conftest import COORD_PW, Desk
from tests.intake.dicom_maker import dicom_bytes, make_dx, small_radiograph


def _originals_without_preamble(folder: Path) -> dict[str, np.ndarray]:
    """Three films of one patient: a Part 10 file, one without its preamble, one a bare
    implicit VR dataset without file meta; their pixels by file name."""
    folder.mkdir(parents=True)
    films = {}
    for k, (name, visit) in enumerate(
        (("whole.dcm", "W0"), ("meta-first.dcm", "W52"), ("bare-dataset", "W0"))
    ):
        pixels = small_radiograph(seed=40 + k)
        ds = make_dx(pixels, patient_id="RE-1", visit=visit, laterality="L" if k else "R")
        if name == "bare-dataset":
            del ds.file_meta
            fp = DicomBytesIO()
            fp.is_little_endian, fp.is_implicit_VR = True, True
            write_dataset(fp, ds)
            data = fp.getvalue()
        else:
            data = dicom_bytes(ds)
            data = data[132:] if name == "meta-first.dcm" else data
        (folder / name).write_bytes(data)
        films[name] = pixels
    return films


def test_reissue_reads_originals_without_preamble_or_file_meta(
    desk: Desk, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, s = desk.ws, desk.s
    films = _originals_without_preamble(tmp_path / "in")
    res = ws.images.import_images(s, "T1", [tmp_path / "in"], workers=1).to_dict()
    by = {Path(f["file"]).name: f for f in res["files"]}
    assert {n: f["status"] for n, f in by.items()} == dict.fromkeys(films, "imported")
    loc = ws.store.location
    with ws.store.read() as db:
        kept = {
            i.source_name: loc.image_file(i.original_path, original=True).read_bytes()
            for i in repo.images_of(db, find_trial(db, "T1"))
        }
    # The originals are kept as they came: no preamble, no file meta.
    assert kept[str(tmp_path / "in" / "meta-first.dcm")][128:132] != b"DICM"
    assert kept[str(tmp_path / "in" / "bare-dataset")][:2] == b"\x08\x00"
    ws.close()
    monkeypatch.setattr("sys.stdin", io.StringIO(COORD_PW + "\n"))
    argv = ["image", "reissue", "--trial", "T1", "--quiet"]
    rc = main([*argv, "--db", str(desk.db), "--user", "cora", "--password-stdin"])
    _, err = capsys.readouterr()
    assert rc == 0, err
    ws2 = Workspace.open(db=str(desk.db))
    try:
        with ws2.store.read() as db:
            copies = {
                Path(i.source_name).name: ws2.store.location.image_file(i.reader_path)
                for i in repo.images_of(db, find_trial(db, "T1"))
            }
        for name, pixels in films.items():
            copy = pydicom.dcmread(copies[name])
            np.testing.assert_array_equal(copy.pixel_array, pixels)
            assert "Doe" not in str(copy.get("PatientName", ""))
            assert copy.get("PatientID") != "RE-1" and "StudyDate" not in copy
        trail = [r for r in ws2.oversight.audit_trail(ws2.accounts.login("cora", COORD_PW))]
        assert sum(r.action == "image.reissue" for r in trail) == 3
    finally:
        ws2.close()
