"""A planted-identifier corpus: radiographs with a unique marker everywhere an identifier could
hide, in every transfer syntax the importer takes, and a search of readers' copies for any.

Where markers go, in each file:

- every attribute of pydicom's data dictionary that can hold text or a number (a superset of
  the attributes PS3.15 Annex E's basic profile lists), retired ones included: a marker in
  every string VR (Latin-1 text beside it in LO, PN and the long texts), a unique date, time or
  date-time in DA, TM and DT, a UID under :data:`ROOT` in UI, a unique number in DS and IS,
  marker bytes (ASCII and UTF-16) in OB, OW, OF, OD, OL, OV and UN;
- every sequence holds an item nested three deep (marker, UID, date-time, private tag at each
  level); the kept sequences (Modality LUT, VOI LUT) hold working LUTs with a marker in LUT
  Explanation and Modality LUT Type, private tags, and a Referenced Image Sequence three deep;
- private tags at the top: a creator and its block (LO, UT, OB and a sequence), and one with
  no creator;
- the file meta group (Implementation Version Name, Source AE Title) and the 128-byte preamble;
- each compressed frame's COM and APPn segments (JPEG 2000: COM in the main and a tile-part
  header) and the bytes after its end marker.

Only what a radiograph needs to be read stays valid: the SOP class, the image pixel module,
the windows and rescale numbers, pixel spacing. Everything else is a marker.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy.typing as npt
import pydicom
from pydicom import config, uid
from pydicom._dicom_dict import DicomDictionary
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence

from tests.intake.codestreams import COMPRESSED, NATIVE, encode, plant_in_pixel_data, sample_image

PREFIX = "QZMKX"
ROOT = "1.2.826.0.1.3680043.10.543."
LATIN = "DO\u00c9^JANE"  # the É is one byte in Latin-1
NAME = "DOE^JANE"
#: Attributes given valid values, not markers: what the importer needs to read the image.
VALID = frozenset(
    {
        "SpecificCharacterSet",
        "SOPClassUID",
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
        "FloatPixelData",
        "DoubleFloatPixelData",
        "ExtendedOffsetTable",
        "ExtendedOffsetTableLengths",
        "WindowCenter",
        "WindowWidth",
        "RescaleIntercept",
        "RescaleSlope",
        "PixelSpacing",
        "ImagerPixelSpacing",
        "EstimatedRadiographicMagnificationFactor",
        "LossyImageCompressionRatio",
        "PixelAspectRatio",
        "ModalityLUTSequence",
        "VOILUTSequence",
    }
)
#: Sequences whose item nests three deep (every other sequence holds a one-level item).
NESTED = frozenset(
    {
        "ReferencedImageSequence",
        "SourceImageSequence",
        "RequestAttributesSequence",
        "ReferencedStudySequence",
        "ReferencedPatientSequence",
        "ContentSequence",
        "OtherPatientIDsSequence",
        "ReferencedPerformedProcedureStepSequence",
    }
)
_TEXT = {"AE", "CS", "SH", "LO", "PN", "LT", "ST", "UT", "UC", "UR"}
_BYTES = {"OB", "OW", "OF", "OD", "OL", "OV", "UN"}
MARKER = re.compile(rf"{PREFIX}\d+".encode())


@dataclass
class Planted:
    """What was planted, to be searched for: markers (all start with :data:`PREFIX`), UIDs
    (all under :data:`ROOT`), dates and times, and numbers."""

    markers: set[str] = field(default_factory=set)
    uids: set[str] = field(default_factory=set)
    dates: set[str] = field(default_factory=set)
    numbers: set[str] = field(default_factory=set)
    counter: int = 0
    day: int = 0

    def marker(self, file: int) -> str:
        self.counter += 1
        text = f"{PREFIX}{file:02d}{self.counter:05d}"
        self.markers.add(text)
        return text

    def uid(self, file: int) -> str:
        self.counter += 1
        value = f"{ROOT}{file}.{self.counter}"
        self.uids.add(value)
        return value

    def when(self, vr: str) -> str:
        self.day += 1
        self.counter += 1
        d = (date(1931, 1, 1) + timedelta(days=self.day)).strftime("%Y%m%d")
        t = f"{self.day % 24:02d}{self.day % 60:02d}17.{self.counter:06d}"
        value = {"DA": d, "TM": t, "DT": d + t}[vr]
        self.dates.add(value)
        return value

    def number(self, vr: str) -> str:
        self.counter += 1
        value = f"86{self.counter:06d}" if vr == "IS" else f"87{self.counter:06d}.25"
        self.numbers.add(value)
        return value


def _value(vr: str, planted: Planted, file: int) -> Any:
    """A planted value for an element of this VR, or None when the VR holds no text."""
    if vr in _TEXT:
        m = planted.marker(file)
        if vr in ("AE", "CS", "SH"):
            return m
        if vr == "UR":
            return f"http://example.org/{m}"
        if vr == "PN":
            return f"{m}^{LATIN}"
        if vr == "LO":
            return f"{m} {LATIN} MRN"
        return f"{m} PATIENT {LATIN} MRN 4711, DR. M\u00dcLLER, ST. ANNA"
    if vr in ("DA", "TM", "DT"):
        return planted.when(vr)
    if vr == "UI":
        return planted.uid(file)
    if vr in ("DS", "IS"):
        return planted.number(vr)
    if vr in _BYTES:
        m = planted.marker(file)
        raw = f"{m} {NAME}".encode() + f"{m}".encode("utf-16-le")
        return raw + b"\0" * (-len(raw) % 8)
    return None


def _private(ds: Dataset, planted: Planted, file: int, depth: int = 3) -> None:
    block = ds.private_block(0x0011, f"{planted.marker(file)} CREATOR", create=True)
    block.add_new(0x01, "LO", planted.marker(file))
    block.add_new(0x02, "UT", f"{planted.marker(file)} {LATIN}")
    block.add_new(0x03, "OB", planted.marker(file).encode("utf-16-be"))
    if depth > 1:
        inner = Dataset()
        inner.add_new(0x00091001, "LO", planted.marker(file))  # no creator
        _private(inner, planted, file, depth - 1)
        block.add_new(0x04, "SQ", Sequence([inner]))
    ds.add_new(0x00191010, "LO", planted.marker(file))  # a private tag with no creator


def nested_item(planted: Planted, file: int, depth: int = 1) -> Dataset:
    """An item with a marker, a UID, a date-time and private tags, and (down to depth 3) a
    Referenced Image Sequence holding the next level."""
    item = Dataset()
    item.CodeValue = planted.marker(file)
    item.CodeMeaning = f"{planted.marker(file)} {LATIN}"
    item.PatientName = f"{planted.marker(file)}^{LATIN}"
    item.ReferencedSOPClassUID = uid.DigitalXRayImageStorageForPresentation
    item.ReferencedSOPInstanceUID = planted.uid(file)
    item.ObservationDateTime = planted.when("DT")
    item.add_new(0x00191010, "LO", planted.marker(file))
    item.private_block(0x0013, f"{planted.marker(file)} ITEM", create=True).add_new(
        0x01, "LO", planted.marker(file)
    )
    if depth < 3:
        item.ReferencedImageSequence = Sequence([nested_item(planted, file, depth + 1)])
    return item


def shallow_item(planted: Planted, file: int) -> Dataset:
    """An item with a marker, a UID and a date."""
    item = Dataset()
    item.CodeMeaning = f"{planted.marker(file)} {LATIN}"
    item.ReferencedSOPInstanceUID = planted.uid(file)
    item.StudyDate = planted.when("DA")
    return item


def _lut_item(planted: Planted, file: int, modality: bool) -> Dataset:
    item = Dataset()
    item.add_new(0x00283002, "US", [4096, 0, 12])  # LUT Descriptor
    item.add_new(0x00283006, "US", list(range(4096)))  # LUT Data: identity
    item.LUTExplanation = f"{planted.marker(file)} {LATIN}"
    if modality:
        item.ModalityLUTType = planted.marker(file)
    item.ReferencedImageSequence = Sequence([nested_item(planted, file)])
    item.add_new(0x00191010, "LO", planted.marker(file))
    item.private_block(0x0015, f"{planted.marker(file)} LUT", create=True).add_new(
        0x01, "UT", f"{planted.marker(file)} {NAME}"
    )
    return item


SYNTAXES: dict[str, str] = {**NATIVE, **{k: v[0] for k, v in COMPRESSED.items()}}


def planted_radiograph(
    name: str, file: int, planted: Planted
) -> tuple[Dataset, npt.NDArray[Any], dict[str, bool]]:
    """A DX hand film in the syntax ``name`` (a key of :data:`SYNTAXES`) with markers
    everywhere, the stored values it must decode to, and the save_as encoding arguments."""
    syntax = uid.UID(SYNTAXES[name])
    bits = COMPRESSED[name][1] if name in COMPRESSED else 12
    values = sample_image(bits=bits, seed=file)
    ds = Dataset()
    with warnings.catch_warnings(), config.disable_value_validation():
        warnings.simplefilter("ignore")
        for tag, (vr, _vm, _name, _retired, keyword) in sorted(DicomDictionary.items()):
            group = tag >> 16
            if not keyword or keyword in VALID or group in (0x0000, 0x0002, 0x0004, 0x7FE0):
                continue
            if group == 0xFFFE:
                continue
            if vr == "SQ":
                deep = keyword in NESTED
                item = nested_item(planted, file) if deep else shallow_item(planted, file)
                ds.add(DataElement(tag, "SQ", Sequence([item])))
                continue
            value = _value(vr, planted, file)
            if value is not None:
                ds.add(DataElement(tag, vr, value))
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.SOPClassUID = uid.DigitalXRayImageStorageForPresentation
        ds.SOPInstanceUID = planted.uid(file)
        ds.WindowCenter = [2048, 1024]
        ds.WindowWidth = [4096, 2048]
        ds.WindowCenterWidthExplanation = [planted.marker(file), f"{planted.marker(file)} {NAME}"]
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelSpacing = ds.ImagerPixelSpacing = [0.1, 0.1]
        ds.EstimatedRadiographicMagnificationFactor = 1.0
        ds.PixelAspectRatio = [1, 1]
        ds.ModalityLUTSequence = Sequence([_lut_item(planted, file, True)])
        ds.VOILUTSequence = Sequence(
            [_lut_item(planted, file, False), _lut_item(planted, file, False)]
        )
        _private(ds, planted, file)
        if syntax.is_compressed:
            encoded = encode(values, syntax, bits)
            for keyword in ("Rows", "Columns", "SamplesPerPixel", "PhotometricInterpretation"):
                setattr(ds, keyword, encoded.get(keyword))
            for keyword in ("BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation"):
                setattr(ds, keyword, encoded.get(keyword))
            ds.PixelData = encoded.PixelData
            ds["PixelData"].is_undefined_length = True
            ds.LossyImageCompressionRatio = 10
        else:
            ds.Rows, ds.Columns = values.shape
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits, bits - 1
            ds.PixelRepresentation = 0
            order = ">" if syntax == uid.ExplicitVRBigEndian else "<"
            ds.PixelData = values.astype(f"{order}u2").tobytes()
            ds["PixelData"].VR = "OW"
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = syntax
        meta.ImplementationClassUID = uid.UID(ROOT + "1")
        meta.ImplementationVersionName = planted.marker(file)
        meta.SourceApplicationEntityTitle = planted.marker(file)
        ds.file_meta = meta
        ds.preamble = (f"{planted.marker(file)} {NAME} ".encode() * 8)[:128]
        if syntax.is_compressed:
            texts = [
                f"PATIENT {planted.marker(file)} {NAME} MRN 4711".encode(),
                f"{planted.marker(file)} {LATIN}".encode("latin-1"),
                f"{planted.marker(file)} {NAME}".encode("utf-16-le"),
            ]
            plant_in_pixel_data(ds, texts, f"{planted.marker(file)} {NAME}".encode())
    encoding = {
        "little_endian": syntax != uid.ExplicitVRBigEndian,
        "implicit_vr": syntax == uid.ImplicitVRLittleEndian,
    }
    return ds, values, encoding


def write_corpus(folder: Path, planted: Planted) -> dict[str, tuple[Path, npt.NDArray[Any]]]:
    """One planted radiograph per syntax under ``folder``, in sub-folders and files whose
    names hold markers: syntax name → (path, stored values it must decode to)."""
    out: dict[str, tuple[Path, npt.NDArray[Any]]] = {}
    for file, name in enumerate(SYNTAXES, start=1):
        ds, values, encoding = planted_radiograph(name, file, planted)
        sub = folder / f"{planted.marker(file)} {NAME}" / f"visit {planted.marker(file)}"
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"{planted.marker(file)} {name} {NAME}.dcm"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds.save_as(path, enforce_file_format=True, **encoding)
        out[name] = (path, values)
    return out


def leaks(data: bytes, planted: Planted, own_uids: list[str]) -> list[str]:
    """Every planted thing found in ``data`` (a readers' copy's bytes): markers, the planted
    names, original UIDs in ASCII, Latin-1, UTF-16-LE and -BE; planted dates, times and
    numbers once the copy's own (replaced) UIDs are taken out."""
    found: list[str] = []
    for text in (PREFIX, NAME, LATIN, ROOT):
        for encoding in ("ascii", "latin-1", "utf-8", "utf-16-le", "utf-16-be"):
            try:
                needle = text.encode(encoding)
            except UnicodeEncodeError:
                continue
            if needle in data:
                where = data.index(needle)
                found.append(
                    f"{text!r} in {encoding} at byte {where}: {data[where : where + 40]!r}"
                )
    rest = data
    for value in own_uids:
        rest = rest.replace(value.encode(), b"")
    for value in sorted(planted.dates | planted.numbers):
        if value.encode() in rest:
            found.append(f"planted date/time/number {value}")
    return found


def own_uids(ds: Dataset) -> list[str]:
    """Every UID value in a dataset and its file meta, at any depth."""
    values: list[str] = []
    for source in (ds, getattr(ds, "file_meta", Dataset())):
        for elem in source.iterall():
            if elem.VR == "UI" and elem.value:
                items = elem.value if elem.VM > 1 else [elem.value]
                values.extend(str(v) for v in items)
    return values


def check_copy(path: Path, planted: Planted) -> list[str]:
    """Everything wrong with one readers' copy: leaks, a date or time element, a private
    tag, an explanation that is not neutral."""
    data = path.read_bytes()
    ds = pydicom.dcmread(path)
    problems = leaks(data, planted, own_uids(ds))
    for elem in ds.iterall():
        if elem.VR in ("DA", "DT", "TM"):
            problems.append(f"{elem.tag} {elem.keyword} is a {elem.VR} element")
        if elem.tag.is_private:
            problems.append(f"private tag {elem.tag}")
        if elem.keyword in ("WindowCenterWidthExplanation", "LUTExplanation"):
            values = elem.value if elem.VM > 1 else [elem.value]
            for v in values:
                if not re.fullmatch(r"(window|VOI LUT|modality LUT) \d+", str(v)):
                    problems.append(f"{elem.keyword} holds {v!r}")
    return problems


__all__ = [
    "LATIN",
    "MARKER",
    "NAME",
    "PREFIX",
    "ROOT",
    "SYNTAXES",
    "Planted",
    "check_copy",
    "leaks",
    "planted_radiograph",
    "write_corpus",
]
