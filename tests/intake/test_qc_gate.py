"""The import refuses what is not a radiograph, each refusal with its exact reason, and holds
the doubtful for QC: a flagged image reaches no case until the coordinator passes it, a failed
one never. Duplicates are per trial, a re-sent file is known by its pixels, and the next
import removes what an interrupted one left."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, get_frame
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
)

from scorer.gui.sample_case import SampleReading, build_sample_workspace
from scorer.imaging.manifest import parse_manifest
from scorer.imaging.sources import SourceFile
from scorer.services.images import CaseShown, QcDecision
from scorer.services.intake import BURNED_IN_UNKNOWN, SECONDARY_CAPTURE_FLAG, _load
from scorer.workspace import InvalidInput
from tests.intake.conftest import COORD_PW, Desk
from tests.intake.dicom_maker import dicom_bytes, make_dx, small_radiograph, write

TRUNCATED = "the compressed pixel data is truncated or damaged: "


def outcomes(desk: Desk, *paths: Path, **kw: Any) -> dict[str, dict[str, Any]]:
    res = desk.ws.images.import_images(desk.s, "T1", list(paths), workers=1, **kw).to_dict()
    return {Path(f["file"].split("!")[-1]).name: f for f in res["files"]}


def compressed(syntax: str, tmp: Path) -> Dataset:
    """A 96 x 80 hand film in a compressed syntax: pydicom's encoders, dcmtk's for JPEG."""
    if syntax == "jpeg":
        b8 = make_dx((small_radiograph(96, 80, seed=4) // 16).astype(np.uint8), patient_id="Z-1")
        b8.BitsAllocated, b8.BitsStored, b8.HighBit = 8, 8, 7
        src = write(b8, tmp / "b8-src.dcm")
        subprocess.run(
            ["dcmcjpeg", "+eb", str(src), str(tmp / "b8.dcm")], check=True, capture_output=True
        )
        return pydicom.dcmread(tmp / "b8.dcm")
    ds = make_dx(small_radiograph(96, 80), patient_id="Z-1")
    uid = {"j2k": JPEG2000Lossless, "jpeg-ls": JPEGLSLossless, "rle": RLELossless}[syntax]
    ds.compress(uid, generate_instance_uid=False)
    return ds


# ------------------------------------------------------------------ refusals


def test_a_multi_frame_image_is_refused(desk: Desk, tmp_path: Path) -> None:
    ds = make_dx(small_radiograph(64, 48), patient_id="MF-1")
    ds.NumberOfFrames = 2
    ds.PixelData = np.concatenate([small_radiograph(64, 48)] * 2).tobytes()
    by = outcomes(desk, write(ds, tmp_path / "in" / "cine.dcm"))
    assert by["cine.dcm"] == {
        "file": str(tmp_path / "in" / "cine.dcm"),
        "status": "refused",
        "reason": "a multi-frame image (2 frames): only single-frame radiographs are imported",
    }


def secondary_capture(body_part: str | None, colour: bool = False) -> Dataset:
    ds = make_dx(small_radiograph(64, 48), patient_id="SC-1")
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.Modality = "OT"
    if body_part is None:
        del ds.BodyPartExamined
    else:
        ds.BodyPartExamined = body_part
    if colour:
        rgb = np.zeros((64, 48, 3), np.uint8)
        rgb[..., 0] = 200
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.PixelData = rgb.tobytes()
    return ds


def test_secondary_capture_only_greyscale_hand_or_foot_and_always_held_for_qc(
    desk: Desk, tmp_path: Path
) -> None:
    src = tmp_path / "in"
    write(secondary_capture("HAND", colour=True), src / "photo.dcm")
    write(secondary_capture("CHEST"), src / "chest.dcm")
    write(secondary_capture(None), src / "nopart.dcm")
    write(secondary_capture("HAND"), src / "hand.dcm")
    write(secondary_capture(None), src / "listed.dcm")
    manifest = parse_manifest("file,patient,visit,date,regions\nlisted.dcm,SC-2,W0,,LF\n")
    by = outcomes(desk, src, manifest=manifest)
    assert by["photo.dcm"]["reason"] == (
        "photometric interpretation RGB: only greyscale (MONOCHROME1 or MONOCHROME2) "
        "radiographs are scored"
    )
    assert by["chest.dcm"]["reason"] == (
        "a Secondary Capture image is imported only with a body part of the hand or foot or a "
        "manifest row (its Body Part Examined is CHEST)"
    )
    assert by["nopart.dcm"]["reason"] == (
        "a Secondary Capture image is imported only with a body part of the hand or foot or a "
        "manifest row (its Body Part Examined is missing)"
    )
    for name in ("hand.dcm", "listed.dcm"):
        assert by[name]["status"] == "imported" and by[name]["qc"] == "pending"
        assert SECONDARY_CAPTURE_FLAG in by[name]["flags"]
    assert by["listed.dcm"]["regions"] == ["LF"]
    qc = {i.code: i.qc for i in desk.ws.images.list_images(desk.s, "T1")}
    assert qc == {by["hand.dcm"]["image"]: "pending", by["listed.dcm"]["image"]: "pending"}


def test_cr_and_dx_without_burned_in_annotation_are_held_unless_the_trial_says_so(
    desk: Desk, tmp_path: Path
) -> None:
    def films(folder: Path, seed: int) -> None:
        dx = make_dx(small_radiograph(seed=seed), patient_id="B-1", burned_in=None)
        cr = make_dx(small_radiograph(seed=seed + 1), patient_id="B-1", burned_in=None)
        cr.SOPClassUID = cr.file_meta.MediaStorageSOPClassUID = ComputedRadiographyImageStorage
        write(dx, folder / "dx.dcm")
        write(cr, folder / "cr.dcm")
        write(make_dx(small_radiograph(seed=seed + 2), patient_id="B-1"), folder / "says-no.dcm")

    films(tmp_path / "a", 1)
    by = outcomes(desk, tmp_path / "a")
    for name in ("dx.dcm", "cr.dcm"):
        assert by[name]["flags"] == [BURNED_IN_UNKNOWN] and by[name]["qc"] == "pending"
    assert "flags" not in by["says-no.dcm"] and by["says-no.dcm"]["qc"] == "passed"

    with pytest.raises(InvalidInput, match="no_burned_in_text: 'MR' is not one of CR, DX"):
        desk.ws.trials.set_trial_setting(desk.s, "T1", "no_burned_in_text", "MR", "sites checked")
    desk.ws.trials.set_trial_setting(
        desk.s, "T1", "no_burned_in_text", "dx", "the sites' DX systems write no text"
    )
    assert desk.ws.trials.trial_settings(desk.s, "T1").protocol.no_burned_in_text == ("DX",)
    films(tmp_path / "b", 10)
    by = outcomes(desk, tmp_path / "b")
    assert "flags" not in by["dx.dcm"] and by["dx.dcm"]["qc"] == "passed"
    assert by["cr.dcm"]["flags"] == [BURNED_IN_UNKNOWN] and by["cr.dcm"]["qc"] == "pending"


def test_a_file_over_max_mb_is_refused_from_its_size_unread(desk: Desk, tmp_path: Path) -> None:
    def never(*_: object) -> bytes:
        raise AssertionError("read")

    assert _load(SourceFile("huge.dcm", never, size=3 * 2**20), max_bytes=2**20) == (
        "the file is 3.0 MB (3,145,728 bytes), over the limit of 1 MB (--max-mb)"
    )
    # Just over the limit: enough decimals to show it over, and the bytes.
    assert _load(SourceFile("near.dcm", never, size=1_050_540), max_bytes=2**20) == (
        "the file is 1.002 MB (1,050,540 bytes), over the limit of 1 MB (--max-mb)"
    )
    big = write(make_dx(small_radiograph(400, 300), patient_id="BIG-1"), tmp_path / "in" / "b.dcm")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.write(big, "in-zip.dcm")
    (tmp_path / "in" / "films.zip").write_bytes(buf.getvalue())
    write(make_dx(patient_id="SMALL-1"), tmp_path / "in" / "small.dcm")
    by = outcomes(desk, tmp_path / "in", max_mb=0.1)
    for name in ("b.dcm", "in-zip.dcm"):
        assert by[name]["reason"].startswith("the file is 0.2 MB (")
        assert by[name]["reason"].endswith(" bytes), over the limit of 0.1 MB (--max-mb)")
    assert by["small.dcm"]["status"] == "imported"
    with pytest.raises(InvalidInput, match="--max-mb must be a positive number"):
        outcomes(desk, tmp_path / "in", max_mb=0)


@pytest.mark.parametrize("syntax", ["j2k", "jpeg", "jpeg-ls", "rle"])
def test_truncated_or_wrongly_sized_compressed_pixel_data_is_refused_so(
    desk: Desk, tmp_path: Path, syntax: str
) -> None:
    ds = compressed(syntax, tmp_path)
    whole = dicom_bytes(ds)
    src = tmp_path / "in"
    src.mkdir()
    (src / "cut-short.dcm").write_bytes(whole[:-300])  # the file ends inside the pixel data
    frame = get_frame(ds.PixelData, 0, number_of_frames=1)
    half = pydicom.dcmread(io.BytesIO(whole))
    half.PixelData = encapsulate([frame[: len(frame) // 2]])  # a damaged codestream
    half.SOPInstanceUID = half.file_meta.MediaStorageSOPInstanceUID = f"{ds.SOPInstanceUID}.1"
    write(half, src / "half.dcm")
    taller = pydicom.dcmread(io.BytesIO(whole))
    taller.Rows = 100
    taller.SOPInstanceUID = taller.file_meta.MediaStorageSOPInstanceUID = f"{ds.SOPInstanceUID}.2"
    write(taller, src / "taller.dcm")
    by = outcomes(desk, src)
    assert by["cut-short.dcm"]["reason"] == (
        TRUNCATED + "End of file reached before delimiter (FFFE,E0DD) found"
    )
    reason = by["half.dcm"]["reason"]
    # The decoders' whole message: every plugin's, not "... raised by all available plugins:"
    assert reason.startswith(TRUNCATED + "pixel data (") and not reason.endswith(":"), reason
    if "plugins:" in reason:
        assert reason.split("plugins:", 1)[1].strip(), reason
    assert by["taller.dcm"]["reason"] == (
        "the compressed image is 96 x 80 pixels but the header says 100 x 80 (Rows x Columns)"
    )
    assert desk.ws.images.list_images(desk.s, "T1") == []


def test_a_dicom_without_preamble_is_read_as_dicom_and_kept_as_it_came(
    desk: Desk, tmp_path: Path
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    part10 = dicom_bytes(make_dx(patient_id="NP-1"))
    (src / "meta-only.dcm").write_bytes(part10[132:])  # file meta, no preamble or DICM
    raw = make_dx(small_radiograph(seed=3), patient_id="NP-1", visit="W52")
    del raw.file_meta
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, True
    write_dataset(fp, raw)
    (src / "raw-dataset").write_bytes(fp.getvalue())  # a bare implicit VR dataset
    (src / "noise.bin").write_bytes(b"\x08\x00" + os.urandom(3000))
    (src / "notes.txt").write_bytes(b"\x08\x00 not DICOM at all\n" * 20)
    by = outcomes(desk, src)
    for name in ("noise.bin", "notes.txt"):
        assert by[name]["reason"] == "not a DICOM, PNG, JPEG or TIFF file"
    loc = desk.ws.store.location
    from scorer.store import repository as repo

    for name in ("meta-only.dcm", "raw-dataset"):
        assert by[name]["status"] == "imported", by[name]
        with desk.ws.store.read() as db:
            img = repo.image_by_code(db, by[name]["image"])
            assert img is not None
            kept = loc.image_file(img.original_path, original=True).read_bytes()
            copy = pydicom.dcmread(loc.image_file(img.reader_path))
            sha = img.sha256
        assert kept == (src / name).read_bytes()  # the original, byte for byte
        assert sha == hashlib.sha256(kept).hexdigest()
        assert copy.file_meta.TransferSyntaxUID in (ExplicitVRLittleEndian, ImplicitVRLittleEndian)


def test_hidden_and_system_files_get_an_outcome_line(
    desk: Desk, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from scorer.cli import main

    films = tmp_path / "films"
    write(make_dx(patient_id="H-1"), films / "a.dcm")
    write(make_dx(patient_id="H-2"), films / ".b.dcm")
    (films / ".git").mkdir()
    (films / ".git" / "config").write_text("[core]\n")
    (films / "Thumbs.db").write_bytes(b"\0" * 10)
    (films / "DICOMDIR").write_bytes(b"\0" * 10)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("__MACOSX/._a.dcm", b"\0" * 10)
        zf.writestr("batch/.DS_Store", b"\0" * 10)
    (films / "mac.zip").write_bytes(buf.getvalue())
    desk.ws.close()
    monkeypatch.setattr("sys.stdin", io.StringIO(COORD_PW + "\n"))
    rc = main(
        [
            *("import", str(films), "--trial", "T1", "--db", str(desk.db), "--user", "cora"),
            *("--password-stdin", "--quiet"),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    lines = {ln.split()[1].split("films/")[-1]: ln for ln in out.splitlines()[:-1]}
    assert lines["a.dcm"].startswith("imported")
    for name in (".b.dcm", ".git/config", "mac.zip!__MACOSX/._a.dcm", "mac.zip!batch/.DS_Store"):
        assert lines[name].startswith("skipped") and lines[name].endswith("(hidden file)")
    assert lines["Thumbs.db"].endswith("(a system file, not an image)")
    assert lines["DICOMDIR"].endswith("(a DICOMDIR index, not an image)")
    assert out.splitlines()[-1].endswith("skipped 6")


@pytest.mark.posix
def test_a_link_out_of_the_imported_folder_is_skipped_unread(desk: Desk, tmp_path: Path) -> None:
    """A symbolic link in the folder to a file outside it (another patient's film, a system
    file) is not followed; one to a file inside the folder is read as that file."""
    films = tmp_path / "films"
    write(make_dx(patient_id="L-1"), films / "a.dcm")
    outside = write(make_dx(small_radiograph(seed=8), patient_id="OTHER-1"), tmp_path / "x.dcm")
    (tmp_path / "secret.txt").write_text("root:x:0:0\n")
    (films / "to-film.dcm").symlink_to(outside)
    (films / "to-secret.dcm").symlink_to(tmp_path / "secret.txt")
    (films / "sub").mkdir()
    (films / "sub" / "up.dcm").symlink_to("../../x.dcm")
    (films / "same.dcm").symlink_to("a.dcm")
    (films / "loop").symlink_to(".")
    (films / "dir-out").symlink_to(tmp_path, target_is_directory=True)
    by = {
        f["file"].split("films/")[-1]: f
        for f in desk.ws.images.import_images(desk.s, "T1", [films], workers=1).to_dict()["files"]
    }
    for name in ("to-film.dcm", "to-secret.dcm", "sub/up.dcm"):
        assert (by[name]["status"], by[name]["reason"]) == (
            "skipped",
            "a link to outside the folder",
        ), by[name]
    assert by["a.dcm"]["status"] == "imported"
    assert by["same.dcm"]["status"] == "duplicate"  # a link inside the folder is that file
    assert len(by) == 5  # no file through the loop or the linked folder
    assert len(desk.ws.images.list_images(desk.s, "T1")) == 1


# ------------------------------------------------------------------ duplicates


def test_the_same_file_in_a_second_trial_is_an_image_of_that_trial(
    desk: Desk, tmp_path: Path
) -> None:
    desk.ws.trials.create_trial(desk.s, "T2", "Second trial", visits=[("W0", 0.0)])
    film = write(make_dx(patient_id="TWO-1"), tmp_path / "in" / "a.dcm")
    first = outcomes(desk, film)["a.dcm"]
    again = outcomes(desk, film)["a.dcm"]
    assert again["status"] == "duplicate" and again["image"] == first["image"]
    second = desk.ws.images.import_images(desk.s, "T2", [film], workers=1).to_dict()["files"][0]
    assert second["status"] == "imported" and second["image"] != first["image"]
    from scorer.store import repository as repo

    with desk.ws.store.read() as db:
        a = repo.image_by_code(db, first["image"])
        b = repo.image_by_code(db, second["image"])
        assert a is not None and b is not None and a.trial_id != b.trial_id
        assert a.original_path == b.original_path  # the original stored once
        assert a.reader_path != b.reader_path  # each trial its own readers' copy
    originals = [p for p in desk.ws.store.location.originals_store.rglob("*") if p.is_file()]
    assert len(originals) == 1
    assert [p.real_id for p in desk.ws.trials.list_patients(desk.s, "T2")] == ["TWO-1"]


def test_a_file_sent_again_in_another_syntax_is_a_duplicate_by_its_pixels(
    desk: Desk, tmp_path: Path
) -> None:
    base = make_dx(small_radiograph(96, 80, seed=7), patient_id="RS-1")
    first = outcomes(desk, write(base, tmp_path / "a" / "plain.dcm"))["plain.dcm"]
    sop = base.SOPInstanceUID
    rle = pydicom.dcmread(tmp_path / "a" / "plain.dcm")
    rle.compress(RLELossless, generate_instance_uid=False)
    write(rle, tmp_path / "b" / "rle.dcm")
    implicit = pydicom.dcmread(tmp_path / "a" / "plain.dcm")
    implicit.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    implicit.save_as(tmp_path / "b" / "implicit.dcm", enforce_file_format=True, implicit_vr=True)
    changed = pydicom.dcmread(tmp_path / "a" / "plain.dcm")
    changed.PixelData = small_radiograph(96, 80, seed=8).tobytes()
    write(changed, tmp_path / "b" / "changed.dcm")
    by = outcomes(desk, tmp_path / "b")
    for name in ("rle.dcm", "implicit.dcm"):
        assert by[name] == {
            "file": str(tmp_path / "b" / name),
            "status": "duplicate",
            "image": first["image"],
            "reason": f"the same image (SOP Instance UID {sop}, the same pixels) was imported "
            "already",
        }
    assert by["changed.dcm"]["reason"] == (
        f"another file with SOP Instance UID {sop} was imported already (image "
        f"{first['image']}) with different pixel data"
    )
    assert len(desk.ws.images.list_images(desk.s, "T1")) == 1
    originals = [p for p in desk.ws.store.location.originals_store.rglob("*") if p.is_file()]
    readers = [p for p in desk.ws.store.location.readers_store.rglob("*") if p.is_file()]
    assert len(originals) == 1 and len(readers) == 1  # nothing of the re-sends kept
    # An image imported before the pixels' hash was kept: its original is decoded instead.
    con = sqlite3.connect(desk.db)
    con.execute("UPDATE images SET pixel_sha256 = NULL")
    con.commit()
    con.close()
    again = outcomes(desk, tmp_path / "b" / "rle.dcm")["rle.dcm"]
    assert again["status"] == "duplicate" and again["image"] == first["image"]


# ------------------------------------------------------------------ leftovers


def test_the_next_import_removes_what_an_interrupted_one_left(
    desk: Desk, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from scorer.cli import main

    loc = desk.ws.store.location
    old = time.time() - 600
    (loc.readers_store / "AB").mkdir(parents=True)
    part = loc.readers_store / "AB" / "ABCDEF123456.dcm.part"
    orphan = loc.readers_store / "AB" / "ABCDEF654321.dcm"
    young = loc.readers_store / "AB" / "ABCDEF000000.dcm"
    (loc.originals_store / "ff").mkdir(parents=True)
    original_part = loc.originals_store / "ff" / ".part-x1y2z3"
    for f in (part, orphan, young, original_part):
        f.write_bytes(b"half a film")
    for f in (part, orphan, original_part):
        os.utime(f, (old, old))
    write(make_dx(patient_id="L-1"), tmp_path / "in" / "a.dcm")
    desk.ws.close()
    monkeypatch.setattr("sys.stdin", io.StringIO(COORD_PW + "\n"))
    rc = main(
        [
            *("import", str(tmp_path / "in"), "--trial", "T1", "--db", str(desk.db)),
            *("--user", "cora", "--password-stdin", "--quiet"),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert out.splitlines()[0] == (
        "removed what an interrupted import left: 2 partial file(s), 1 readers' copy(ies) "
        "without an image"
    )
    assert not part.exists() and not orphan.exists() and not original_part.exists()
    assert young.exists()  # perhaps another workstation's import about to save its image


# ------------------------------------------------------------------ the QC gate


@pytest.fixture
def sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SampleReading]:
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    s = build_sample_workspace(tmp_path / "trial", patients=1, visits=2, pixel_mm=1.0)
    yield s
    s.workspace.close()


def test_a_held_image_reaches_no_case_until_passed_and_a_failed_one_never(
    sample: SampleReading, tmp_path: Path
) -> None:
    ws, trial, rita = sample.workspace, sample.trial, sample.session
    coord = ws.accounts.login("cora", "Willow-Compass-2024")
    (patient,) = ws.trials.list_patients(coord, trial)
    (case,) = ws.worklists.worklist(rita, trial)
    before = {k: len(v) for k, v in ws.images.case_images(rita, case.code).items()}
    film = make_dx(patient_id=patient.real_id, visit="W0", burned_in=None)
    res = ws.images.import_images(coord, trial, [write(film, tmp_path / "late.dcm")], workers=1)
    code = res.files[0].image
    assert res.files[0].qc == "pending" and res.files[0].flags == [BURNED_IN_UNKNOWN]
    assert ws.images.list_images(coord, trial)[-1].qc == "pending"

    def shown() -> dict[str, int]:
        return {k: len(v) for k, v in ws.images.case_images(rita, case.code).items()}

    assert shown() == before  # pending: in no case
    with pytest.raises(InvalidInput, match="passed or failed"):
        ws.images.image_qc(coord, code, "pending")
    with pytest.raises(InvalidInput, match="a reason is required"):
        ws.images.image_qc(coord, code, "failed", " ")
    assert ws.images.image_qc(coord, code, "passed") == QcDecision(
        image=code, qc="passed", qc_reason="", cases=()
    )
    grown = shown()
    assert sum(grown.values()) == sum(before.values()) + 1  # it reaches the case at once
    failed = ws.images.image_qc(coord, code, "failed", "a bone scan, not a radiograph")
    assert failed.cases == (CaseShown(case=case.code, reader="rita"),)
    assert shown() == before
    with pytest.raises(InvalidInput, match="a failed image stays failed"):
        ws.images.image_qc(coord, code, "passed", "looked again")
    rows = [e for e in ws.oversight.audit_trail(coord) if e.action == "image.qc"]
    assert [json.loads(str(e.new))["qc"] for e in rows] == ["passed", "failed"]
    assert rows[-1].reason == "a bone scan, not a radiograph"
    assert json.loads(str(rows[-1].new))["cases"] == [case.code]
    assert ws.verify().ok


def test_scorer_image_qc_and_image_list(
    desk: Desk, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from scorer.cli import main

    held = make_dx(patient_id="Q-1", burned_in=None)
    code = outcomes(desk, write(held, tmp_path / "in" / "a.dcm"))["a.dcm"]["image"]
    desk.ws.close()
    base = ["--db", str(desk.db), "--user", "cora", "--password-stdin"]

    def cli(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(COORD_PW + "\n"))
        rc = main([*args, *base])
        out, err = capsys.readouterr()
        return rc, out, err

    rc, out, _ = cli("image", "list", "--trial", "T1")
    assert rc == 0 and f"QC pending  {BURNED_IN_UNKNOWN}" in out
    rc, _, err = cli("image", "qc", code, "failed")
    assert rc == 1 and "a reason is required" in err
    rc, out, _ = cli("image", "qc", code, "failed", "--reason", "a test pattern")
    assert rc == 0 and out.strip() == f"{code}: QC failed (a test pattern)"
    rc, out, _ = cli("image", "list", "--trial", "T1", "--format", "json")
    (image,) = json.loads(out)
    assert (image["qc"], image["qc_reason"]) == ("failed", "a test pattern")


# ------------------------------------------------------------------ damage decoders only warn of


def test_a_truncated_jpeg_frame_with_an_end_marker_is_refused_not_half_garbage(
    desk: Desk, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """GDCM decodes JPEG lossless (and baseline) with libjpeg, which only warns on standard
    error of a frame cut short and makes up the missing rows; the worker takes the warning for
    the failure it is, and it does not reach the console unattributed."""
    from pydicom import uid

    from tests.intake.codestreams import encode, sample_image

    src = tmp_path / "in"
    for name, syntax, bits in (
        ("sv1.dcm", uid.JPEGLosslessSV1, 12),
        ("baseline.dcm", uid.JPEGBaseline8Bit, 8),
    ):
        ds = encode(sample_image(96, 80, bits, seed=25), syntax, bits)
        frame = get_frame(ds.PixelData, 0, number_of_frames=1)
        ds.PixelData = encapsulate([frame[: len(frame) // 2] + b"\xff\xd9"])
        ds.PatientID, ds.BurnedInAnnotation = "TR-1", "NO"
        write(ds, src / name)
    capfd.readouterr()
    by = outcomes(desk, src)
    for name in ("sv1.dcm", "baseline.dcm"):
        assert by[name]["status"] == "refused", by[name]
        assert by[name]["reason"] == (
            TRUNCATED + "the decoder reported: Corrupt JPEG data: premature end of data segment"
        )
    assert "Corrupt JPEG" not in capfd.readouterr().err
    assert desk.ws.images.list_images(desk.s, "T1") == []


# ------------------------------------------------------------------ a second image hidden


def _j2k(arr: np.ndarray) -> bytes:
    ds = make_dx(arr, patient_id="OTHER-9")
    ds.compress(JPEG2000Lossless, generate_instance_uid=False)
    return get_frame(ds.PixelData, 0, number_of_frames=1)


def test_a_second_image_hidden_in_single_frame_pixel_data_is_refused(
    desk: Desk, tmp_path: Path
) -> None:
    """A film whose pixel data holds another radiograph after its own (a fragment of its own,
    listed in the offset table or not, or appended after the end marker in the same fragment)
    is refused: it would have reached every reader inside the copy."""
    film = small_radiograph(64, 48, seed=1)
    mine, other = _j2k(film), _j2k(small_radiograph(120, 100, seed=2))
    src = tmp_path / "in"
    layouts: dict[str, tuple[bytes, str | None]] = {
        "two-fragments-no-bot.dcm": (encapsulate([mine, other], has_bot=False), None),
        "two-frames-bot.dcm": (encapsulate([mine, mine], has_bot=True), None),
        "appended-after-eoc.dcm": (encapsulate([mine + other]), None),
        "appended-says-1.dcm": (encapsulate([mine + b"\0junk" + other]), "1"),
    }
    for k, (name, (pixel_data, number)) in enumerate(layouts.items()):
        ds = make_dx(film, patient_id=f"HID-{k}")
        ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
        ds.PixelData = pixel_data
        ds["PixelData"].VR = "OB"
        if number is not None:
            ds.NumberOfFrames = number
        write(ds, src / name)
    # One codestream split over two fragments is one frame: imported.
    split = make_dx(film, patient_id="SPLIT-1")
    split.file_meta.TransferSyntaxUID = JPEG2000Lossless
    split.PixelData = encapsulate([mine], fragments_per_frame=2, has_bot=False)
    split["PixelData"].VR = "OB"
    write(split, src / "split.dcm")
    by = outcomes(desk, src)
    for name, (_, number) in layouts.items():
        says = "says 1" if number else "gives no Number of Frames"
        assert by[name]["status"] == "refused", by[name]
        assert by[name]["reason"] == (
            f"the pixel data holds 2 frames, but the header {says}: multi-frame images are "
            "refused"
        )
    assert by["split.dcm"]["status"] == "imported", by["split.dcm"]
    (image,) = desk.ws.images.list_images(desk.s, "T1")
    assert image.code == by["split.dcm"]["image"]


@pytest.mark.parametrize("syntax", ["jpeg-ls", "rle"])
def test_a_second_frame_in_jpeg_ls_or_rle_pixel_data_is_refused(
    desk: Desk, tmp_path: Path, syntax: str
) -> None:
    ds = compressed(syntax, tmp_path)
    frame = get_frame(ds.PixelData, 0, number_of_frames=1)
    if syntax == "rle":  # an RLE frame is one fragment: a second fragment is a second frame
        ds.PixelData = encapsulate([frame, frame], has_bot=False)
    else:
        ds.PixelData = encapsulate([frame + frame])
    by = outcomes(desk, write(ds, tmp_path / "in" / "two.dcm"))
    assert by["two.dcm"]["reason"] == (
        "the pixel data holds 2 frames, but the header gives no Number of Frames: multi-frame "
        "images are refused"
    )
