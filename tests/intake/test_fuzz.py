"""Fuzzing the importer with mutated files: no crash, no hang, every file accounted for.

At least 2,000 mutated files in CI; set SCORER_FUZZ_FILES for more.
"""

from __future__ import annotations

import io
import os
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from tests.intake.conftest import Desk
from tests.intake.dicom_maker import dicom_bytes, make_dx, small_radiograph

N_FILES = int(os.environ.get("SCORER_FUZZ_FILES", "2000"))


def seed_files(tmp: Path) -> dict[str, bytes]:
    """Valid small radiographs in several transfer syntaxes."""
    out: dict[str, bytes] = {}
    base = make_dx(small_radiograph(40, 32, seed=1), patient_id="FUZZ-1")
    out["explicit-le"] = dicom_bytes(base)
    for name, syntax in (
        ("implicit-le", ImplicitVRLittleEndian),
        ("big-endian", ExplicitVRBigEndian),
        ("deflate", DeflatedExplicitVRLittleEndian),
    ):
        ds = make_dx(small_radiograph(40, 32, seed=2), patient_id="FUZZ-1")
        buf = io.BytesIO()
        ds.file_meta.TransferSyntaxUID = syntax
        ds.save_as(
            buf,
            enforce_file_format=True,
            little_endian=syntax != ExplicitVRBigEndian,
            implicit_vr=syntax == ImplicitVRLittleEndian,
        )
        out[name] = buf.getvalue()
    for name, syntax in (
        ("rle", RLELossless),
        ("jpeg-ls", JPEGLSLossless),
        ("j2k", JPEG2000Lossless),
    ):
        ds = make_dx(small_radiograph(40, 32, seed=3), patient_id="FUZZ-1")
        ds.compress(syntax)
        out[name] = dicom_bytes(ds)
    # JPEG lossless (process 14, SV1) from dcmtk, a real encoder.
    src = tmp / "seed-explicit.dcm"
    src.write_bytes(out["explicit-le"])
    dst = tmp / "seed-jpegll.dcm"
    subprocess.run(["dcmcjpeg", "+e1", str(src), str(dst)], check=True, capture_output=True)
    out["jpeg-lossless-sv1"] = dst.read_bytes()
    for name, data in out.items():
        ds = pydicom.dcmread(io.BytesIO(data))
        assert ds.pixel_array.shape == (40, 32), name
    return out


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(data)
    kind = int(rng.integers(0, 7))
    if kind == 0:  # flip random bytes anywhere
        for _ in range(int(rng.integers(1, 20))):
            b[int(rng.integers(132, len(b)))] = int(rng.integers(0, 256))
    elif kind == 1:  # flip bytes in the header
        for _ in range(int(rng.integers(1, 8))):
            b[int(rng.integers(132, min(len(b), 900)))] = int(rng.integers(0, 256))
    elif kind == 2:  # truncate
        b = b[: int(rng.integers(132, len(b)))]
    elif kind == 3:  # absurd Rows / Columns
        for tag in (b"\x28\x00\x10\x00", b"\x28\x00\x11\x00", b"\x00\x28\x00\x10"):
            i = bytes(b).find(tag)
            if i >= 0 and i + 10 <= len(b):
                b[i + 8 : i + 10] = int(rng.integers(0, 65536)).to_bytes(2, "little")
    elif kind == 4:  # huge element length
        i = int(rng.integers(132, len(b) - 4))
        b[i : i + 4] = b"\xff\xff\xff\x7f"
    elif kind == 5:  # duplicate a chunk
        i = int(rng.integers(132, len(b)))
        j = min(len(b), i + int(rng.integers(1, 200)))
        b[j:j] = b[i:j]
    else:  # garbage in the pixel data end
        n = int(rng.integers(1, 64))
        b[-n:] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    return bytes(b)


@pytest.mark.slow
def test_mutated_files_are_imported_or_refused_never_crash(desk: Desk, tmp_path: Path) -> None:
    seeds = seed_files(tmp_path)
    rng = np.random.default_rng(20261122)
    folder = tmp_path / "fuzz"
    folder.mkdir()
    names = sorted(seeds)
    for i in range(N_FILES):
        name = names[i % len(names)]
        (folder / f"{i:05d}-{name}.dcm").write_bytes(mutate(seeds[name], rng))
    report = desk.ws.images.import_images(desk.s, "T1", [folder], workers=2, timeout_s=10.0)
    res = report.to_dict()
    assert len(res["files"]) == N_FILES
    assert res["imported"] + res["refused"] + res["duplicates"] == N_FILES
    for f in res["files"]:
        assert f["status"] in ("imported", "refused", "duplicate")
        if f["status"] == "refused":
            assert f["reason"] and len(f["reason"]) < 400, f
    # Real variety: both outcomes happen in numbers.
    assert res["imported"] > 50 and res["refused"] > 200, (res["imported"], res["refused"])
    from scorer.store import repository as repo

    with desk.ws.store.read() as db:
        for img in repo.images_of(db, repo.trial_by_code(db, "T1")):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # mutated-but-decodable data makes pydicom chatty
                copy = pydicom.dcmread(desk.ws.store.location.image_file(img.reader_path))
                arr = copy.pixel_array
            assert arr.shape == (img.rows, img.columns)
    assert not list(desk.ws.store.location.readers_store.rglob("*.part"))
    assert desk.ws.verify().ok
