"""De-identification of the readers' copy by keeping only what display needs.

A keep-list (not a remove-list), applied at every depth: an attribute is copied only when the
keep-list names it for its level — the top, or the items of one kept sequence — so an
identifier in an attribute nobody thought of cannot survive. Private tags and every sequence
not named are dropped, and a kept sequence's items are rebuilt from their own keep-list. What
is kept is treated by its kind (:data:`KEEP` says which):

- ``uid``: replaced under the ``secret`` given, which import draws at random for each image
  (the same original UID maps to the same new one within the file; nothing ties two images of
  one patient, study or visit together); the SOP Class UID, a class, is kept when it is one of
  the radiograph classes the importer takes. A reader receives each film with its UIDs
  rewritten again for the case (:mod:`scorer.imaging.delivery`).
- ``text``: free text kept for display (the window and LUT explanations, the calibration
  description; LO, LT, SH, ST, UT, PN, UC) is replaced by neutral generated text ("window 1").
- ``code``: a coded string is kept only when it is one of the values the standard defines for
  it (anything else is dropped); ``number``: kept only when every value reads as a number.
- ``binary``: numbers and tables (US, SS, OB, OW), kept when their VR is the dictionary's.
- ``items``: a kept sequence, its items rebuilt from the keep-list for its items.
- ``pixels``: the pixel data; compressed frames lose their comment and application segments
  (:mod:`scorer.imaging.codestream`), the entropy-coded data unchanged.

No date or time (DA, DT, TM) is kept at any depth: the coordinator's intervals between visits
come from the database, where import stores the acquisition date from the original header.
(0012,0062) Patient Identity Removed is YES and (0012,0063)/(0012,0064) name the method, per
DICOM PS3.15 Annex E.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydicom import uid as uids
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID

from scorer.imaging.codestream import clean_pixel_data
from scorer.imaging.dicom_header import FOOT_PARTS, HAND_PARTS, RADIOGRAPH_CLASSES

# (0012,0063) is LO, at most 64 characters; the code sequence below says it in full.
METHOD = "scorer keep-list: PS3.15 E basic, clean descriptors, no dates"
DEID_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113105", "Clean Descriptors Option"),
)
FREE_TEXT_VRS = frozenset({"LO", "LT", "SH", "ST", "UT", "PN", "UC"})
DATE_VRS = frozenset({"DA", "DT", "TM"})


@dataclass(frozen=True)
class Kept:
    """How one kept attribute is carried into the readers' copy."""

    module: str
    treatment: str  # uid | text | code | number | binary | items | pixels | class
    #: For ``text``: the neutral word ("window" gives "window 1"); for ``code``: the values
    #: the standard defines.
    label: str = ""
    codes: frozenset[str] = frozenset()


def _codes(*values: str) -> frozenset[str]:
    return frozenset(values)


LUT_TYPES = _codes("OD", "HU", "US", "MGML", "Z_EFF", "ED", "EDW", "HU_MOD", "PCT")
COMPRESSION_METHODS = _codes(
    "ISO_10918_1", "ISO_14495_1", "ISO_15444_1", "ISO_15444_15", "ISO_18181_1"
)
BODY_PARTS = HAND_PARTS | FOOT_PARTS | {"EXTREMITY"}

# The keep-list of the top level, by module (PS3.3), with each attribute's treatment.
KEEP: dict[str, Kept] = {
    "SOPClassUID": Kept("SOP Common", "class"),
    "SOPInstanceUID": Kept("SOP Common", "uid"),
    "StudyInstanceUID": Kept("General Study", "uid"),
    "SeriesInstanceUID": Kept("General Series", "uid"),
    "Modality": Kept("General Series", "code", codes=_codes("CR", "DX", "RG", "OT", "XA")),
    "Laterality": Kept("General Series", "code", codes=_codes("L", "R")),
    "BodyPartExamined": Kept("General Series", "code", codes=frozenset(BODY_PARTS)),
    "FrameOfReferenceUID": Kept("Frame of Reference", "uid"),
    "ImageType": Kept(
        "General Image", "code", codes=_codes("ORIGINAL", "DERIVED", "PRIMARY", "SECONDARY")
    ),
    "PatientOrientation": Kept("General Image", "code", label="orientation"),
    "ImageLaterality": Kept("General Image", "code", codes=_codes("L", "R", "U", "B")),
    "BurnedInAnnotation": Kept("General Image", "code", codes=_codes("YES", "NO")),
    "LossyImageCompression": Kept("General Image", "code", codes=_codes("00", "01")),
    "LossyImageCompressionRatio": Kept("General Image", "number"),
    "LossyImageCompressionMethod": Kept("General Image", "code", codes=COMPRESSION_METHODS),
    "PresentationLUTShape": Kept("General Image", "code", codes=_codes("IDENTITY", "INVERSE")),
    "SamplesPerPixel": Kept("Image Pixel", "binary"),
    "PhotometricInterpretation": Kept(
        "Image Pixel", "code", codes=_codes("MONOCHROME1", "MONOCHROME2")
    ),
    "Rows": Kept("Image Pixel", "binary"),
    "Columns": Kept("Image Pixel", "binary"),
    "BitsAllocated": Kept("Image Pixel", "binary"),
    "BitsStored": Kept("Image Pixel", "binary"),
    "HighBit": Kept("Image Pixel", "binary"),
    "PixelRepresentation": Kept("Image Pixel", "binary"),
    "PlanarConfiguration": Kept("Image Pixel", "binary"),
    "PixelAspectRatio": Kept("Image Pixel", "number"),
    "SmallestImagePixelValue": Kept("Image Pixel", "binary"),
    "LargestImagePixelValue": Kept("Image Pixel", "binary"),
    "PixelPaddingRangeLimit": Kept("Image Pixel", "binary"),
    "PixelData": Kept("Image Pixel", "pixels"),
    "PixelPaddingValue": Kept("General Equipment", "binary"),
    "NumberOfFrames": Kept("Multi-frame", "number"),
    "PresentationIntentType": Kept(
        "DX Series / DX Image", "code", codes=_codes("FOR PRESENTATION", "FOR PROCESSING")
    ),
    "PixelIntensityRelationshipSign": Kept("DX Image", "binary"),
    "ViewPosition": Kept(
        "DX Positioning / CR Series",
        "code",
        codes=_codes("AP", "PA", "LL", "RL", "RLD", "LLD", "RLO", "LLO"),
    ),
    "ImagerPixelSpacing": Kept("DX Detector / CR Image", "number"),
    "PixelSpacing": Kept("DX Detector / Basic Pixel Spacing Calibration", "number"),
    "PixelSpacingCalibrationType": Kept(
        "Basic Pixel Spacing Calibration", "code", codes=_codes("GEOMETRY", "FIDUCIAL")
    ),
    "PixelSpacingCalibrationDescription": Kept(
        "Basic Pixel Spacing Calibration", "text", label="calibration"
    ),
    "EstimatedRadiographicMagnificationFactor": Kept("DX Positioning", "number"),
    "RescaleIntercept": Kept("Modality LUT", "number"),
    "RescaleSlope": Kept("Modality LUT", "number"),
    "RescaleType": Kept("Modality LUT", "code", codes=LUT_TYPES),
    "ModalityLUTSequence": Kept("Modality LUT", "items", label="modality LUT"),
    "VOILUTSequence": Kept("VOI LUT", "items", label="VOI LUT"),
    "WindowCenter": Kept("VOI LUT", "number"),
    "WindowWidth": Kept("VOI LUT", "number"),
    "WindowCenterWidthExplanation": Kept("VOI LUT", "text", label="window"),
    "VOILUTFunction": Kept("VOI LUT", "code", codes=_codes("LINEAR", "LINEAR_EXACT", "SIGMOID")),
}
# The keep-list of the items of each kept sequence.
ITEM_KEEP: dict[str, dict[str, Kept]] = {
    "ModalityLUTSequence": {
        "LUTDescriptor": Kept("Modality LUT", "binary"),
        "ModalityLUTType": Kept("Modality LUT", "code", codes=LUT_TYPES),
        "LUTExplanation": Kept("Modality LUT", "text", label="modality LUT"),
        "LUTData": Kept("Modality LUT", "binary"),
    },
    "VOILUTSequence": {
        "LUTDescriptor": Kept("VOI LUT", "binary"),
        "LUTExplanation": Kept("VOI LUT", "text", label="VOI LUT"),
        "LUTData": Kept("VOI LUT", "binary"),
    },
}
# Type 2 attributes of the patient and study modules, written present and empty. (The Type 2
# dates — Patient's Birth Date, Study Date and Time — are left out: no date is kept.)
EMPTY_TYPE_2 = (
    "PatientName",
    "PatientID",
    "PatientSex",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
)
_ORIENTATION = re.compile(r"[APRLHF]{1,3}")
_DS = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_IS = re.compile(r"[+-]?\d+")


def replace_uid(secret: bytes, original: str) -> UID:
    """A new UID (2.25 form) for an original UID, the same every time for one secret."""
    digest = hmac.new(secret, original.encode(), hashlib.sha256).digest()
    return UID(f"2.25.{int.from_bytes(digest[:16], 'big')}")


def _values(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, MultiValue | list | tuple):
        return list(value)
    return [value]


def _one_or_many(values: list[Any]) -> Any:
    return values[0] if len(values) == 1 else values


def _dictionary_vrs(elem: DataElement) -> set[str]:
    try:
        return set(dictionary_VR(elem.tag).split(" or "))
    except KeyError:
        return set()


def _kept(
    elem: DataElement, keyword: str, spec: Kept, secret: bytes, syntax: str, where: tuple[int, int]
) -> DataElement | None:
    """The element as the readers' copy holds it, or None when it is not kept. ``where`` is
    the item's number in its sequence (0 at the top) and the dataset's number of frames."""
    ordinal, frames = where
    vrs = _dictionary_vrs(elem)
    vr = next(iter(vrs)) if len(vrs) == 1 else elem.VR
    if vr in DATE_VRS:
        return None
    values = _values(elem.value) if vr != "SQ" else []
    how = spec.treatment
    if how == "class":
        value = str(elem.value or "").strip()
        return DataElement(elem.tag, "UI", value) if value in RADIOGRAPH_CLASSES else None
    if how == "uid":
        new = [replace_uid(secret, str(v).strip()) for v in values if str(v).strip()]
        return DataElement(elem.tag, "UI", _one_or_many(new)) if new else None
    if how == "text":
        first = ordinal if ordinal else 1
        words = [f"{spec.label} {first + k}" for k in range(len(values))]
        return DataElement(elem.tag, vr, _one_or_many(words)) if words else None
    if how == "code":
        texts = [str(v).strip() for v in values]
        if spec.label == "orientation":
            ok = len(texts) == 2 and all(_ORIENTATION.fullmatch(t) for t in texts)
        else:
            ok = bool(texts) and all(t in spec.codes for t in texts)
        if not ok and keyword == "ImageType":
            texts = [t for t in texts[:2] if t in spec.codes]  # the rest is free to vendors
            ok = bool(texts)
        return DataElement(elem.tag, vr, _one_or_many(texts)) if ok else None
    if how == "number":
        texts = [str(v).strip() for v in values]
        pattern = _IS if vr == "IS" else _DS
        if vr not in ("IS", "DS") or not texts or not all(pattern.fullmatch(t) for t in texts):
            return None
        return DataElement(elem.tag, vr, _one_or_many(texts))
    if how == "binary":
        if elem.VR not in vrs or not all(isinstance(v, int | bytes) for v in values):
            return None
        return elem
    if how == "pixels":
        if elem.VR not in vrs or not isinstance(elem.value, bytes):
            return None
        if not uids.UID(syntax).is_compressed:
            return elem
        cleaned = clean_pixel_data(elem.value, syntax, frames)
        if cleaned is elem.value:
            return elem
        return DataElement(elem.tag, "OB", cleaned, is_undefined_length=True)
    return None


def _rebuild(
    ds: Dataset,
    keep: Mapping[str, Kept],
    secret: bytes,
    syntax: str,
    ordinal: int = 0,
) -> Dataset:
    """A new dataset with only ``ds``'s attributes that ``keep`` names, each as its treatment
    says; kept sequences' items rebuilt from their own keep-lists."""
    out = Dataset()
    frames = _number_of_frames(ds)
    for elem in ds:
        keyword = elem.keyword
        if not keyword or elem.tag.is_private or keyword not in keep:
            continue
        spec = keep[keyword]
        if spec.treatment == "items":
            if elem.VR != "SQ":
                continue
            items = [
                _rebuild(item, ITEM_KEEP[keyword], secret, syntax, n)
                for n, item in enumerate(elem.value or [], start=1)
            ]
            items = [item for item in items if len(item)]
            if items:
                out.add(DataElement(elem.tag, "SQ", Sequence(items)))
            continue
        new = _kept(elem, keyword, spec, secret, syntax, (ordinal, frames))
        if new is not None:
            out.add(new)
    return out


def _number_of_frames(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def deidentify(ds: Dataset, secret: bytes) -> Dataset:
    """The readers' copy: a new dataset built from the keep-list at every depth, with the
    de-identification recorded. ``ds`` is not changed."""
    src_meta = getattr(ds, "file_meta", None)
    syntax = UID(str(src_meta.get("TransferSyntaxUID", "")) if src_meta is not None else "")
    if not syntax or syntax == uids.DeflatedExplicitVRLittleEndian:
        # Deflated is written inflated: the same pixels, and a copy anyone can search.
        syntax = uids.ExplicitVRLittleEndian
    out = _rebuild(ds, KEEP, secret, syntax)
    for keyword in EMPTY_TYPE_2:
        setattr(out, keyword, "")
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
    out.LongitudinalTemporalInformationModified = "REMOVED"
    meta = FileMetaDataset()
    if "SOPClassUID" not in out and src_meta is not None:
        sop_class = str(src_meta.get("MediaStorageSOPClassUID", ""))
        if sop_class in RADIOGRAPH_CLASSES:
            out.SOPClassUID = sop_class
    meta.MediaStorageSOPClassUID = out.SOPClassUID
    meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    meta.TransferSyntaxUID = syntax
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    out.file_meta = meta
    return out
