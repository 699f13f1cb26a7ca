"""De-identification of the readers' copy by keeping only what display needs.

A keep-list (not a remove-list): every attribute not named here is dropped, private tags and
sequences included, so an identifier in an attribute nobody thought of cannot survive. UIDs are
replaced consistently per patient (the same original UID always maps to the same new one within
a patient, so series and studies still group); dates are shifted by one offset per patient so
intervals between visits survive. (0012,0062) Patient Identity Removed is YES and (0012,0063)
names the method, per DICOM PS3.15 Annex E.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from datetime import date, timedelta

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID

# (0012,0063) is LO, at most 64 characters; the code sequence below says it in full.
METHOD = "scorer keep-list: PS3.15 E basic, modified dates, clean descr."
DEID_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    ("113105", "Clean Descriptors Option"),
)

# What the display needs: the pixel module, LUTs and windows, geometry, laterality, view,
# body part, burned-in flag, and the class and (replaced) identity of the instance.
KEEP: frozenset[str] = frozenset(
    {
        "SOPClassUID",
        "Modality",
        "ImageType",
        "Rows",
        "Columns",
        "SamplesPerPixel",
        "PhotometricInterpretation",
        "BitsAllocated",
        "BitsStored",
        "HighBit",
        "PixelRepresentation",
        "PlanarConfiguration",
        "NumberOfFrames",
        "PixelData",
        "PixelPaddingValue",
        "PixelPaddingRangeLimit",
        "SmallestImagePixelValue",
        "LargestImagePixelValue",
        "LossyImageCompression",
        "LossyImageCompressionRatio",
        "LossyImageCompressionMethod",
        "RescaleIntercept",
        "RescaleSlope",
        "RescaleType",
        "ModalityLUTSequence",
        "VOILUTSequence",
        "WindowCenter",
        "WindowWidth",
        "WindowCenterWidthExplanation",
        "VOILUTFunction",
        "PresentationLUTShape",
        "PresentationIntentType",
        "PixelSpacing",
        "ImagerPixelSpacing",
        "PixelSpacingCalibrationType",
        "PixelSpacingCalibrationDescription",
        "EstimatedRadiographicMagnificationFactor",
        "PixelAspectRatio",
        "ImageLaterality",
        "Laterality",
        "ViewPosition",
        "BodyPartExamined",
        "PatientOrientation",
        "BurnedInAnnotation",
    }
)
UIDS: tuple[str, ...] = (
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "FrameOfReferenceUID",
)
DATES: tuple[str, ...] = ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")


def patient_secret(key: bytes, trial: str, patient_code: str) -> bytes:
    """A per-patient secret derived from the workstation key: UIDs and the date offset."""
    return hmac.new(key, f"deid\x1f{trial}\x1f{patient_code}".encode(), hashlib.sha256).digest()


def date_offset(secret: bytes, max_days: int = 3650) -> int:
    """The patient's date shift in days (backwards, 1 to max_days)."""
    return 1 + int.from_bytes(secret[:4], "big") % max_days


def replace_uid(secret: bytes, original: str) -> UID:
    """A new UID (2.25 form) for an original UID, the same every time for one patient."""
    digest = hmac.new(secret, original.encode(), hashlib.sha256).digest()
    return UID(f"2.25.{int.from_bytes(digest[:16], 'big')}")


def _shift(value: str, days: int) -> str:
    text = value.strip()
    if len(text) < 8 or not text[:8].isdigit():
        return ""
    try:
        d = date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return ""
    return (d - timedelta(days=days)).strftime("%Y%m%d")


def deidentify(ds: Dataset, secret: bytes, keep_extra: Iterable[str] = ()) -> Dataset:
    """The readers' copy: a new dataset with only the kept attributes, UIDs replaced,
    dates shifted and the de-identification recorded. ``ds`` is not changed."""
    keep = KEEP | set(keep_extra)
    days = date_offset(secret)
    out = Dataset()
    for elem in ds:
        kw = elem.keyword
        if not kw or elem.tag.is_private or kw not in keep:
            continue
        out.add(elem)
    for kw in UIDS:
        if kw in ds and str(ds.get(kw, "")).strip():
            setattr(out, kw, replace_uid(secret, str(ds.get(kw))))
    for kw in DATES:
        if kw in ds and str(ds.get(kw, "")).strip():
            shifted = _shift(str(ds.get(kw)), days)
            if shifted:
                setattr(out, kw, shifted)
    # Type 2 attributes of the patient and study modules, present and empty.
    out.PatientName = ""
    out.PatientID = ""
    out.PatientBirthDate = ""
    out.PatientSex = ""
    out.StudyID = ""
    out.AccessionNumber = ""
    out.ReferringPhysicianName = ""
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = METHOD
    seq = []
    for value, meaning in DEID_CODES:
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        seq.append(item)
    out.DeidentificationMethodCodeSequence = seq
    out.LongitudinalTemporalInformationModified = "MODIFIED"
    meta = FileMetaDataset()
    src_meta = getattr(ds, "file_meta", None)
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    meta.TransferSyntaxUID = (
        src_meta.TransferSyntaxUID if src_meta is not None else UID("1.2.840.10008.1.2.1")
    )
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    out.file_meta = meta
    return out
