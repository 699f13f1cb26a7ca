"""Fixtures for the display pipeline: real CR radiographs (pydicom-data), crops and DICOM makers."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
import pytest
from pydicom import uid
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset

Region = tuple[slice, slice]


@dataclass(frozen=True)
class Regions:
    """Where bone and air are in the real CR files, and the crops used for codec round trips."""

    # RG3 (CR lower leg, MONOCHROME1, 10-bit): a band of air beside the leg (direct exposure,
    # high stored values) and the tibial shaft (bone, low stored values).
    rg3_air: Region = (slice(200, 600), slice(480, 600))
    rg3_bone: Region = (slice(200, 600), slice(830, 900))
    rg3_crop: Region = (slice(200, 712), slice(400, 912))  # 512 x 512, holds both
    # RG1 (CR chest, MONOCHROME1, 15-bit): air above the right shoulder, the thoracic spine.
    rg1_air: Region = (slice(0, 60), slice(0, 60))
    rg1_bone: Region = (slice(1000, 1400), slice(890, 950))
    rg1_crop: Region = (slice(900, 1412), slice(700, 1212))


@pytest.fixture(scope="session")
def regions() -> Regions:
    return Regions()


def _testdata(name: str) -> Path:
    found = get_testdata_file(name, download=False)
    assert found is not None, f"{name} is not installed: pip install pydicom-data"
    return Path(str(found))


@pytest.fixture(scope="session")
def testdata() -> Callable[[str], Path]:
    """A file of pydicom-data by name, never downloaded (the suite must not reach the internet)."""
    return _testdata


@pytest.fixture(scope="session")
def rg3_path() -> Path:
    return _testdata("RG3_UNCR.dcm")


@pytest.fixture(scope="session")
def rg1_path() -> Path:
    return _testdata("RG1_UNCR.dcm")


@pytest.fixture(scope="session")
def rg3_values(rg3_path: Path) -> npt.NDArray[np.uint16]:
    values: npt.NDArray[np.uint16] = pydicom.dcmread(rg3_path).pixel_array
    return values


@pytest.fixture(scope="session")
def rg1_values(rg1_path: Path) -> npt.NDArray[np.uint16]:
    values: npt.NDArray[np.uint16] = pydicom.dcmread(rg1_path).pixel_array
    return values


def _make_dataset(
    values: npt.NDArray[Any],
    *,
    bits_stored: int | None = None,
    photometric: str = "MONOCHROME2",
    syntax: str = uid.ExplicitVRLittleEndian,
    **attributes: Any,
) -> Dataset:
    """A minimal CR dataset holding ``values`` (2-D, or 3-D for frames) natively encoded."""
    ds = Dataset()
    ds.SOPClassUID = uid.ComputedRadiographyImageStorage
    ds.SOPInstanceUID = uid.generate_uid()
    ds.StudyInstanceUID = uid.generate_uid()
    ds.SeriesInstanceUID = uid.generate_uid()
    ds.Modality = "CR"
    ds.PatientID = "TEST"
    if values.ndim == 3 and values.shape[-1] != 3:
        ds.NumberOfFrames = values.shape[0]
    ds.Rows, ds.Columns = values.shape[1:3] if "NumberOfFrames" in ds else values.shape[:2]
    ds.SamplesPerPixel = 3 if photometric == "RGB" else 1
    if photometric == "RGB":
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    allocated = values.dtype.itemsize * 8
    ds.BitsAllocated = allocated
    ds.BitsStored = bits_stored or allocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if values.dtype.kind == "i" else 0
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.PixelData = np.ascontiguousarray(values).astype(values.dtype.newbyteorder("<")).tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = syntax
    ds.file_meta = meta
    return ds


@pytest.fixture(scope="session")
def make_dataset() -> Callable[..., Dataset]:
    """Build a minimal CR dataset: make_dataset(values, bits_stored=, photometric=, **attrs)."""
    return _make_dataset


@pytest.fixture
def write_dataset(tmp_path: Path) -> Callable[..., Path]:
    """Write a :func:`make_dataset` dataset to a new file in tmp_path and return its path."""
    counter = iter(range(1_000_000))

    def write(values: npt.NDArray[Any], **kwargs: Any) -> Path:
        path = tmp_path / f"made-{next(counter)}.dcm"
        _make_dataset(values, **kwargs).save_as(path, enforce_file_format=True)
        return path

    return write


def _dcmtk(tool: str, *args: str | Path) -> None:
    result = subprocess.run(
        [tool, *(str(a) for a in args)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"{tool} {args}: {result.stderr or result.stdout}"


@pytest.fixture(scope="session")
def dcmtk() -> Callable[..., None]:
    """Run a DCMTK tool (scripts/setup.sh --test installs DCMTK); the test fails if it fails."""
    return _dcmtk
