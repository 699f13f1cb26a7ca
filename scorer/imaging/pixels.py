"""Stored pixel values of a radiograph, the modality transform, and its display polarity.

The display pipeline follows PS3.3 C.11 in order: stored values → Modality LUT (or Rescale
Slope/Intercept) → VOI LUT or window (``windowing``) → polarity (MONOCHROME1, Presentation LUT
Shape INVERSE, the reader's own invert). This module holds the first and last steps' facts;
the pixels themselves stay as stored integers so that the whole chain can be folded into one
lookup table over the stored range.

Multi-frame images: frame 0 is shown, as the importer's readers' copy does; colour images
are refused with :class:`ImageFormatError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom import uid
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.errors import InvalidDicomError
from pydicom.pixels.utils import pixel_array

GREYSCALE = ("MONOCHROME1", "MONOCHROME2")


class ImageFormatError(ValueError):
    """A file or dataset that cannot be shown as a greyscale radiograph, with the reason."""


def read_dataset(path: str | os.PathLike[str] | BinaryIO, *, pixels: bool = True) -> Dataset:
    """A DICOM file's dataset (without its pixel data when ``pixels`` is False), from its path
    or an open binary file (a film fetched into memory).

    Only DICOM Part 10 files (with the "DICM" preamble) are read; anything else, or a header
    pydicom cannot parse, raises :class:`ImageFormatError`. A missing file raises OSError.
    """
    name = os.fspath(path) if isinstance(path, str | os.PathLike) else "the film"
    try:
        return pydicom.dcmread(path, stop_before_pixels=not pixels)
    except InvalidDicomError as exc:
        reason = _first_line(exc)
        raise ImageFormatError(f"{name}: not a DICOM file ({reason})") from None
    except OSError:
        raise
    except Exception as exc:  # hostile or damaged files raise many kinds inside pydicom
        raise ImageFormatError(
            f"{name}: the DICOM header cannot be read ({_first_line(exc)})"
        ) from None


def _whole(exc: BaseException) -> str:
    """The whole text on one line: a decoder's message lists each plugin's on lines of its own."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return " ".join([lines[0], "; ".join(lines[1:])]) if len(lines) > 1 else lines[0]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def photometric_interpretation(ds: Dataset) -> str:
    """The dataset's Photometric Interpretation, refusing anything but greyscale."""
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if photometric not in GREYSCALE or samples != 1:
        raise ImageFormatError(
            f"photometric interpretation {photometric or 'missing'} with {samples} sample(s) "
            "per pixel: only greyscale (MONOCHROME1 or MONOCHROME2) radiographs are shown"
        )
    return photometric


def stored_values(ds: Dataset, *, decoding_plugin: str = "") -> npt.NDArray[np.integer[Any]]:
    """The stored pixel values of a greyscale radiograph as a 2-D integer array.

    Every transfer syntax the installed pydicom plugins decode is accepted (``decoding_plugin``
    forces one, for comparing decoders). Frame 0 of a multi-frame image is returned. Float
    pixel data, colour images and undecodable pixel data raise :class:`ImageFormatError`.
    """
    photometric_interpretation(ds)
    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise ImageFormatError("float pixel data is not a radiograph the scorer can show")
        raise ImageFormatError("the dataset holds no pixel data")
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    try:
        values = pixel_array(ds, index=0, decoding_plugin=decoding_plugin)
    except Exception as exc:  # decoders raise RuntimeError, ValueError, NotImplementedError...
        if syntax == uid.JPEGExtended12Bit and decoding_plugin in ("", "gdcm"):
            values = _jpeg_12bit_frame(ds)
        else:
            name = getattr(syntax, "name", None) or str(syntax or "unknown transfer syntax")
            reason = _whole(exc)
            raise ImageFormatError(f"pixel data ({name}) cannot be decoded: {reason}") from None
    if values.ndim != 2 or values.dtype.kind not in "iu":
        raise ImageFormatError(
            f"decoded pixel data has shape {values.shape} and type {values.dtype}; a 2-D "
            "integer image was expected"
        )
    rows, cols = int(ds.get("Rows", 0)), int(ds.get("Columns", 0))
    if values.shape != (rows, cols):
        raise ImageFormatError(
            f"decoded pixel data is {values.shape[0]} x {values.shape[1]}, the header says "
            f"{rows} x {cols}"
        )
    return np.ascontiguousarray(values)


def _jpeg_12bit_frame(ds: Dataset) -> npt.NDArray[np.integer[Any]]:
    """Frame 0 of JPEG Extended pixel data with 12-bit samples, decoded by GDCM directly.

    pydicom's GDCM plugin declines 12-bit JPEG Extended, and its only other 12-bit decoder is
    GPL-licensed and not installed; GDCM's own 12-bit IJG codec decodes it (and agrees with
    DCMTK's dcmdjpeg bit for bit). Declaring 12 bits allocated makes GDCM pick that codec
    first; it still returns 16-bit words.
    """
    rows, cols = int(ds.Rows), int(ds.Columns)
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    try:
        import gdcm  # type: ignore[import-untyped]

        frames = int(ds.get("NumberOfFrames", 1) or 1)
        encoded = next(generate_frames(ds.PixelData, number_of_frames=frames))
        fragment = gdcm.Fragment()
        fragment.SetByteStringValue(encoded)
        fragments = gdcm.SequenceOfFragments.New()
        fragments.AddFragment(fragment)
        element = gdcm.DataElement(gdcm.Tag(0x7FE0, 0x0010))
        element.SetValue(fragments.__ref__())
        image = gdcm.Image()
        image.SetNumberOfDimensions(2)
        image.SetDimensions((cols, rows, 1))
        image.SetDataElement(element)
        image.SetPhotometricInterpretation(
            gdcm.PhotometricInterpretation(gdcm.PhotometricInterpretation.MONOCHROME2)
        )
        image.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.JPEGExtendedProcess2_4))
        image.SetPixelFormat(gdcm.PixelFormat(1, 12, 12, 11, 1 if signed else 0))
        buffer = image.GetBuffer().encode("utf-8", "surrogateescape")
    except Exception as exc:
        raise ImageFormatError(
            f"12-bit JPEG Extended pixel data cannot be decoded: {_whole(exc)}"
        ) from None
    if len(buffer) != rows * cols * 2:
        raise ImageFormatError(
            f"12-bit JPEG Extended pixel data decoded to {len(buffer)} bytes, expected "
            f"{rows * cols * 2}"
        )
    decoded: npt.NDArray[np.integer[Any]] = np.frombuffer(
        buffer, dtype="<i2" if signed else "<u2"
    ).reshape(rows, cols)
    return decoded


@dataclass(frozen=True, eq=False)
class LookupTable:
    """A DICOM lookup table (Modality or VOI LUT): entries for inputs from ``first_mapped`` on.

    Inputs below ``first_mapped`` take the first entry and inputs past the last entry take the
    last one (PS3.3 C.11.1.1 and C.11.2.1.1). Entries are unsigned with ``bits_per_entry`` bits.
    """

    first_mapped: int
    bits_per_entry: int
    entries: npt.NDArray[np.int64]
    explanation: str = ""

    def __post_init__(self) -> None:
        if self.entries.ndim != 1 or self.entries.size == 0:
            raise ValueError("a lookup table needs at least one entry")
        if not 1 <= self.bits_per_entry <= 16:
            raise ValueError(f"LUT bits per entry {self.bits_per_entry} is not in 1..16")

    @property
    def max_output(self) -> int:
        """The largest value an entry can hold (2^bits − 1), the top of the output range."""
        return int((1 << self.bits_per_entry) - 1)

    def apply(self, values: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """The table's output for each input value (non-integers are truncated toward −∞)."""
        index = np.floor(np.asarray(values, dtype=np.float64)) - self.first_mapped
        index = np.clip(index, 0, self.entries.size - 1).astype(np.intp)
        result: npt.NDArray[np.int64] = self.entries[index]
        return result


def lookup_table(item: Dataset, *, signed_input: bool = False) -> LookupTable:
    """A :class:`LookupTable` from an item of a Modality or VOI LUT Sequence.

    ``signed_input`` says whether the descriptor's first mapped value is a signed 16-bit
    number (PS3.3 C.11.1.1: SS when the input values are signed). Raises ValueError when the
    descriptor and data disagree.
    """
    descriptor = [int(v) for v in _values(item.get("LUTDescriptor"))]
    if len(descriptor) != 3:
        raise ValueError("LUT Descriptor must hold three values")
    count = descriptor[0] or 65536  # 0 means 2^16 entries
    first = descriptor[1]
    if signed_input and first >= 32768:
        first -= 65536
    bits = descriptor[2]
    if bits not in range(8, 17):
        raise ValueError(f"LUT Descriptor bits per entry {bits} is not 8 to 16")
    element = item.data_element("LUTData")
    if element is None or element.value is None:
        raise ValueError("the LUT has no LUT Data")
    raw = element.value
    if isinstance(raw, bytes | bytearray):
        encoding = getattr(item, "original_encoding", (None, None))
        order = ">" if encoding[1] is False else "<"
        if bits == 8 and len(raw) in (count, count + 1):
            entries = np.frombuffer(bytes(raw[:count]), dtype=np.uint8).astype(np.int64)
        else:
            entries = np.frombuffer(bytes(raw[: len(raw) // 2 * 2]), dtype=f"{order}u2")
            entries = entries.astype(np.int64)
    else:
        entries = np.asarray([int(v) for v in _values(raw)], dtype=np.int64)
    if bits == 8 and entries.size * 2 == count:
        # 8-bit entries packed two to a 16-bit word, low byte first.
        pairs = entries.astype("<u2").view(np.uint8)
        entries = pairs.astype(np.int64)
    if entries.size < count:
        raise ValueError(f"LUT Data has {entries.size} entries, the descriptor says {count}")
    entries = np.clip(entries[:count], 0, (1 << bits) - 1)
    explanation = str(item.get("LUTExplanation", "") or "").strip()
    return LookupTable(first, bits, entries, explanation)


def _values(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | bytes | int | float):
        return [value]
    return list(value)


@dataclass(frozen=True, eq=False)
class ModalityTransform:
    """How stored values become modality values: a Modality LUT, or slope × value + intercept.

    With no Modality LUT Sequence and no Rescale Slope/Intercept the transform is the
    identity (PS3.3 C.11.1).
    """

    slope: float = 1.0
    intercept: float = 0.0
    lut: LookupTable | None = None

    @property
    def is_identity(self) -> bool:
        """True when modality values equal stored values."""
        return self.lut is None and self.slope == 1.0 and self.intercept == 0.0

    def apply(self, stored: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Modality values for stored values."""
        if self.lut is not None:
            return self.lut.apply(stored).astype(np.float64)
        values = np.asarray(stored, dtype=np.float64)
        if self.slope != 1.0:
            values = values * self.slope
        if self.intercept != 0.0:
            values = values + self.intercept
        return values


def modality_transform(ds: Dataset) -> ModalityTransform:
    """The dataset's modality transform: its Modality LUT Sequence, else its rescale.

    A Modality LUT Sequence that cannot be read raises :class:`ImageFormatError`: values
    could not be interpreted without it.
    """
    sequence = ds.get("ModalityLUTSequence")
    if sequence:
        try:
            table = lookup_table(
                sequence[0], signed_input=int(ds.get("PixelRepresentation", 0) or 0) == 1
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise ImageFormatError(f"the Modality LUT Sequence is unusable: {exc}") from None
        return ModalityTransform(lut=table)
    try:
        slope = _number(ds.get("RescaleSlope"), 1.0)
        intercept = _number(ds.get("RescaleIntercept"), 0.0)
    except (TypeError, ValueError) as exc:
        raise ImageFormatError(f"Rescale Slope/Intercept is not a number: {exc}") from None
    if not (np.isfinite(slope) and np.isfinite(intercept)) or slope == 0.0:
        raise ImageFormatError(f"Rescale Slope {slope} / Intercept {intercept} is unusable")
    return ModalityTransform(slope=slope, intercept=intercept)


def _number(value: Any, default: float) -> float:
    """A DS value as a float; ``default`` when absent or empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    return float(value)


@dataclass(frozen=True)
class Polarity:
    """Whether values must be inverted for bone to show bright, the reason, and any doubt."""

    invert: bool
    reason: str
    warning: str = ""


def bone_bright_polarity(ds: Dataset) -> Polarity:
    """Decide the inversion that shows bone bright (X-ray attenuators white).

    MONOCHROME1 means the lowest value is white, and Presentation LUT Shape INVERSE asks for
    the same inversion (PS3.3 C.11.6: DX images pair MONOCHROME1 with INVERSE), so either one
    inverts and both together still invert once. MONOCHROME2 with IDENTITY (or no shape) is
    shown as stored. When Pixel Intensity Relationship Sign disagrees (+1 says low values are
    less X-ray intensity, i.e. bone, −1 the opposite) the decision stands, by the standard,
    but a warning says so.
    """
    photometric = photometric_interpretation(ds)
    shape = str(ds.get("PresentationLUTShape", "") or "").strip().upper()
    if photometric == "MONOCHROME1" and shape == "INVERSE":
        invert, reason = True, "MONOCHROME1 with Presentation LUT Shape INVERSE: lowest value white"
    elif photometric == "MONOCHROME1":
        invert, reason = True, "MONOCHROME1: the lowest value is shown white"
    elif shape == "INVERSE":
        invert, reason = True, "Presentation LUT Shape INVERSE: values are inverted for display"
    else:
        invert, reason = False, "MONOCHROME2: the highest value is shown white"
    warning = ""
    sign = ds.get("PixelIntensityRelationshipSign")
    if sign is not None and str(sign).strip() in ("1", "-1", "+1"):
        bone_low = int(str(sign).strip()) == 1
        if bone_low != invert:
            warning = (
                f"Pixel Intensity Relationship Sign {int(str(sign).strip()):+d} implies bone "
                "shows dark with this photometric interpretation; shown as the standard "
                "says, check the polarity"
            )
    return Polarity(invert=invert, reason=reason, warning=warning)


@dataclass(frozen=True)
class PaddingRange:
    """Stored values that are padding, not image (Pixel Padding Value and Range Limit)."""

    low: int
    high: int

    def mask(self, stored: npt.NDArray[np.integer[Any]]) -> npt.NDArray[np.bool_]:
        """True where a stored value is padding."""
        return (stored >= self.low) & (stored <= self.high)


def padding_range(ds: Dataset) -> PaddingRange | None:
    """The padding values of the image (PS3.3 C.7.5.1.1.2), or None when it has none."""
    value = ds.get("PixelPaddingValue")
    if value is None:
        return None
    limit = ds.get("PixelPaddingRangeLimit")
    try:
        first = int(value)
        last = int(limit) if limit is not None else first
    except (TypeError, ValueError):
        return None
    if int(ds.get("PixelRepresentation", 0) or 0) == 1:
        first = first - 65536 if first >= 32768 else first
        last = last - 65536 if last >= 32768 else last
    return PaddingRange(min(first, last), max(first, last))
