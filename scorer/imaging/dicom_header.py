"""Checking an untrusted DICOM file against its own header before any pixel is decoded.

The checks are cheap and run in the importing process: the SOP class is a radiograph, the
transfer syntax is one we decode, the image geometry is sane, native pixel data has exactly
the length the header promises, and the decoded size fits the budget. What the header says
about patient, visit and regions is read here too.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pydicom
from pydicom import uid
from pydicom.errors import InvalidDicomError

RADIOGRAPH_CLASSES: dict[str, str] = {
    uid.ComputedRadiographyImageStorage: "CR",
    uid.DigitalXRayImageStorageForPresentation: "DX (for presentation)",
    uid.DigitalXRayImageStorageForProcessing: "DX (for processing)",
    uid.SecondaryCaptureImageStorage: "Secondary Capture",
}
SUPPORTED_SYNTAXES: dict[str, str] = {
    uid.ImplicitVRLittleEndian: "implicit VR little endian",
    uid.ExplicitVRLittleEndian: "explicit VR little endian",
    uid.ExplicitVRBigEndian: "explicit VR big endian",
    uid.DeflatedExplicitVRLittleEndian: "deflated explicit VR little endian",
    uid.JPEGBaseline8Bit: "JPEG baseline (8-bit)",
    uid.JPEGExtended12Bit: "JPEG extended (12-bit)",
    uid.JPEGLossless: "JPEG lossless (process 14)",
    uid.JPEGLosslessSV1: "JPEG lossless SV1",
    uid.JPEGLSLossless: "JPEG-LS lossless",
    uid.JPEGLSNearLossless: "JPEG-LS near-lossless",
    uid.JPEG2000Lossless: "JPEG 2000 lossless",
    uid.JPEG2000: "JPEG 2000",
    uid.RLELossless: "RLE lossless",
}
DEFAULT_MAX_MEGAPIXELS = 512.0
HAND_PARTS = frozenset({"HAND", "WRIST", "FINGER", "THUMB"})
FOOT_PARTS = frozenset({"FOOT", "TOE", "ANKLE", "FOREFOOT"})


class RefusedFile(ValueError):
    """A file that will not be imported, with the reason for the coordinator."""


@dataclass(frozen=True)
class HeaderFacts:
    """What an untrusted file's header tells, once its geometry has been checked."""

    sop_class: str
    sop_instance_uid: str
    transfer_syntax: str
    rows: int
    columns: int
    frames: int
    samples: int
    bits_allocated: int
    photometric: str
    patient_id: str | None
    visit: str | None
    study_date: date | None
    acquisition_date: date | None
    body_part: str | None
    laterality: str | None
    view_position: str | None
    burned_in: str | None
    regions: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def megapixels(self) -> float:
        return self.rows * self.columns * self.frames / 1e6


def _text(ds: Any, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _date(text: str | None) -> date | None:
    if not text or len(text) < 8 or not text[:8].isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


def regions_from_header(body_part: str | None, laterality: str | None) -> tuple[str, ...]:
    """Scored regions an image covers from BodyPartExamined and ImageLaterality; () if unclear."""
    if body_part is None or laterality not in ("L", "R", "B"):
        return ()
    part = body_part.upper()
    if part in HAND_PARTS:
        prefix = "H"
    elif part in FOOT_PARTS:
        prefix = "F"
    else:
        return ()
    sides = ("L", "R") if laterality == "B" else (laterality,)
    return tuple(f"{s}{prefix}" for s in sides)


def read_header(data: bytes, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS) -> HeaderFacts:
    """Parse and check a DICOM file's header; RefusedFile with the reason when it fails."""
    try:
        with warnings.catch_warnings(record=True) as warned:
            # A hostile header makes pydicom warn about every bad value; the refusal says why.
            warnings.simplefilter("always")
            ds = pydicom.dcmread(io.BytesIO(data), defer_size=1024)
        ended = [str(w.message) for w in warned if "End of file reached" in str(w.message)]
        if ended and "PixelData" not in ds:
            # pydicom gives up on a dataset whose encapsulated pixel data the file cuts short.
            raise RefusedFile(
                "the compressed pixel data is truncated or damaged: "
                + ended[0].replace(" in file <no filename>", "")
            )
    except RefusedFile:
        raise
    except InvalidDicomError:
        raise RefusedFile("not a DICOM file (no DICM preamble or readable header)") from None
    except Exception as exc:  # pydicom raises many kinds on hostile input
        raise RefusedFile(f"the DICOM header cannot be read: {_short(exc)}") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _facts(ds, data, max_megapixels)
    except RefusedFile:
        raise
    except Exception as exc:
        raise RefusedFile(f"the DICOM header is malformed: {_short(exc)}") from None


def shown(value: object, limit: int = 80) -> str:
    """A header value safe to print in a report: printable ASCII, at most ``limit`` chars."""
    text = "".join(c if " " <= c <= "~" else "?" for c in str(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(exc: BaseException) -> str:
    """An exception's whole text on one printable line (long only if pydicom's is)."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return shown(text or type(exc).__name__, 2000)


def _facts(ds: Any, data: bytes, max_megapixels: float) -> HeaderFacts:
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    sop_class = str(
        ds.get("SOPClassUID", "")
        or (meta.get("MediaStorageSOPClassUID", "") if meta is not None else "")
    )
    if sop_class not in RADIOGRAPH_CLASSES:
        name = shown(uid.UID(sop_class).name) if sop_class else "none"
        raise RefusedFile(
            f"not a radiograph: SOP class {name} (accepted: CR, DX, Secondary Capture)"
        )
    if syntax not in SUPPORTED_SYNTAXES:
        name = shown(uid.UID(syntax).name) if syntax else "none"
        raise RefusedFile(f"unsupported transfer syntax {name}")
    sop_uid = _text(ds, "SOPInstanceUID")
    if not sop_uid:
        raise RefusedFile("the header has no SOP Instance UID")
    if "PixelData" not in ds:
        raise RefusedFile("the file holds no pixel data")

    def whole(keyword: str, lo: int, hi: int, default: int | None = None) -> int:
        value = ds.get(keyword, default)
        try:
            n = int(value)
        except (TypeError, ValueError):
            raise RefusedFile(f"{keyword} is missing or not a number") from None
        if not lo <= n <= hi:
            raise RefusedFile(f"{keyword} {n} is outside {lo}-{hi}")
        return n

    rows = whole("Rows", 1, 65535)
    cols = whole("Columns", 1, 65535)
    samples = whole("SamplesPerPixel", 1, 3, 1)
    bits = whole("BitsAllocated", 1, 32)
    if bits not in (1, 8, 16, 32):
        raise RefusedFile(f"BitsAllocated {bits} is not 1, 8, 16 or 32")
    frames = whole("NumberOfFrames", 1, 100000, 1)
    if frames > 1:
        raise RefusedFile(
            f"a multi-frame image ({frames} frames): only single-frame radiographs are imported"
        )
    whole("BitsStored", 1, bits, bits)
    photometric = (_text(ds, "PhotometricInterpretation") or "").upper()
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise RefusedFile(
            f"photometric interpretation {shown(photometric) or 'missing'}: only greyscale "
            "(MONOCHROME1 or MONOCHROME2) radiographs are scored"
        )
    megapixels = rows * cols * frames / 1e6
    if megapixels > max_megapixels:
        raise RefusedFile(
            f"declared image size {rows} x {cols} x {frames} frame(s) = {megapixels:.0f} "
            f"megapixels is over the budget of {max_megapixels:.0f}"
        )
    # The element as parsed, its value still deferred: only its length is needed here, and
    # reading the value would copy megabytes of pixels for nothing (decoding checks them).
    elem = ds.get_item("PixelData", keep_deferred=True)
    if not uid.UID(syntax).is_compressed:
        expected = rows * cols * samples * bits * frames // 8
        length = _pixel_length(elem, data)
        if length not in (expected, expected + 1):
            raise RefusedFile(
                f"pixel data is {length} bytes but the header promises {expected} "
                f"({rows} x {cols} x {samples} x {bits} bits x {frames} frame(s))"
            )
    laterality = (_text(ds, "ImageLaterality") or _text(ds, "Laterality") or "").upper() or None
    body = _text(ds, "BodyPartExamined")
    visit = _text(ds, "ClinicalTrialTimePointID")
    patient = _text(ds, "ClinicalTrialSubjectID") or _text(ds, "PatientID")
    study = _date(_text(ds, "StudyDate"))
    acq = _date(_text(ds, "AcquisitionDate")) or _date(_text(ds, "ContentDate")) or study
    return HeaderFacts(
        sop_class=sop_class,
        sop_instance_uid=sop_uid,
        transfer_syntax=syntax,
        rows=rows,
        columns=cols,
        frames=frames,
        samples=samples,
        bits_allocated=bits,
        photometric=photometric,
        patient_id=patient,
        visit=visit,
        study_date=study,
        acquisition_date=acq,
        body_part=body.upper() if body else None,
        laterality=laterality if laterality in ("L", "R", "B") else None,
        view_position=_text(ds, "ViewPosition"),
        burned_in=(_text(ds, "BurnedInAnnotation") or "").upper() or None,
        regions=regions_from_header(body, laterality),
    )


def _pixel_length(elem: Any, data: bytes) -> int:
    """The length of the (possibly deferred) native pixel data element."""
    value = elem.value
    if value is not None and not isinstance(value, int):
        return len(value)
    length = getattr(elem, "length", None)
    if isinstance(length, int) and length != 0xFFFFFFFF:
        return length
    return len(data)
