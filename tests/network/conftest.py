"""Fixtures for the DICOM network tests: the intake tests' coordinator desk, films in every
transfer syntax the tests send, and dcmtk's tools (installed by scripts/setup.sh --test)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless, generate_uid

from tests.intake.conftest import COORD_PW, Desk, desk  # noqa: F401
from tests.intake.dicom_maker import make_dx, small_radiograph, write

__all__ = ["COORD_PW", "Desk", "dcmtk", "films"]


def dcmtk(tool: str) -> str:
    """A dcmtk tool's path; fails (never skips) without it: CI installs dcmtk."""
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"dcmtk's {tool} is not installed (scripts/setup.sh --test installs dcmtk)")
    return path


def films(folder: Path, patient: str = "SYN-NET-1", seed: int = 3) -> dict[str, Path]:
    """One hand film of ``patient`` per transfer syntax: uncompressed, JPEG lossless (dcmtk's
    encoder, process 14 SV1: the default lossless syntax), JPEG-LS, JPEG 2000 and RLE
    (pydicom's); each its own SOP Instance UID."""
    folder.mkdir(parents=True, exist_ok=True)
    plain = write(
        make_dx(small_radiograph(96, 80, seed=seed), patient_id=patient), folder / "plain.dcm"
    )
    out = {"uncompressed": plain}
    for name, syntax in (
        ("jpeg-ls", JPEGLSLossless),
        ("j2k", JPEG2000Lossless),
        ("rle", RLELossless),
    ):
        ds = pydicom.dcmread(plain)
        ds.SOPInstanceUID = generate_uid()
        ds.compress(syntax, generate_instance_uid=False)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(folder / f"{name}.dcm", enforce_file_format=True)
        out[name] = folder / f"{name}.dcm"
    ds = pydicom.dcmread(plain)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    src = write(ds, folder / "jpeg-src.tmp")
    subprocess.run(
        [dcmtk("dcmcjpeg"), "+e1", str(src), str(folder / "jpeg-lossless.dcm")],
        check=True,
        capture_output=True,
    )
    src.unlink()
    out["jpeg-lossless"] = folder / "jpeg-lossless.dcm"
    return out
