"""Small DICOM files for intake tests: valid DX hand films with ordinary identifiers."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    generate_uid,
)


def small_radiograph(rows: int = 64, cols: int = 48, seed: int = 0) -> np.ndarray:
    """A small 12-bit test image with structure (not flat, so codecs have work to do)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols]
    img = 1500 + 800 * np.sin(x / 5.0) * np.cos(y / 7.0) + rng.normal(0, 40, (rows, cols))
    return np.clip(img, 0, 4095).astype(np.uint16)


def make_dx(
    pixels: np.ndarray | None = None,
    patient_id: str = "SITE1-0001",
    visit: str | None = "W0",
    laterality: str = "B",
    body_part: str = "HAND",
    study_uid: str | None = None,
    study_date: str = "20240115",
    burned_in: str | None = "NO",
) -> Dataset:
    """A valid DX for-presentation dataset of a hand film with ordinary identifiers (saying
    it has no burned-in text unless ``burned_in`` is None or "YES")."""
    arr = small_radiograph() if pixels is None else pixels
    ds = Dataset()
    ds.SOPClassUID = DigitalXRayImageStorageForPresentation
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "DX"
    ds.PatientName = "Doe^Jane"
    ds.PatientID = patient_id
    if visit:
        ds.ClinicalTrialSubjectID = patient_id
        ds.ClinicalTrialTimePointID = visit
    ds.StudyDate = study_date
    ds.AcquisitionDate = study_date
    ds.ContentDate = study_date
    ds.BodyPartExamined = body_part
    ds.ImageLaterality = laterality
    ds.ViewPosition = "PA"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ImagerPixelSpacing = [0.2, 0.2]
    ds.WindowCenter = 1600
    ds.WindowWidth = 2400
    ds.Rows, ds.Columns = arr.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    if burned_in is not None:
        ds.BurnedInAnnotation = burned_in
    ds.PixelData = arr.tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def dicom_bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def write(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(dicom_bytes(ds))
    return path


def read_copy(path: str | Path) -> Dataset:
    return pydicom.dcmread(path)
