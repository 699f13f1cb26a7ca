"""Two checks on what an untrusted DICOM file holds, before its pixels are decoded.

``as_part10`` gives a DICOM dataset stored without the 128-byte preamble and ``DICM`` (a raw
dataset, or one starting with its file meta group) the Part 10 form the importer reads, and
takes nothing else for DICOM. ``codestream_problem`` compares the image size a compressed
frame declares (JPEG and JPEG-LS SOF, JPEG 2000 SIZ or JP2 ihdr, RLE segment lengths) with
the header's Rows and Columns: a decoder fed a frame larger than the header says may write
past its buffer, and "size disagrees" is a better reason than a decoder's message. It first
counts the frames the pixel data holds: a single-frame header over two codestreams (another
patient's radiograph after the first's end marker) is refused, not decoded as its first.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
from typing import Any

PREAMBLE = b"\0" * 128 + b"DICM"
_UID = re.compile(r"^[0-9]+(\.[0-9]+)+$")
# The first tag of a dataset without a preamble: a file meta group (0002) or, in a raw
# dataset, the first element of group 0008, little or big endian.
_STARTS = (b"\x02\x00", b"\x08\x00", b"\x00\x08")


def as_part10(data: bytes) -> bytes | None:
    """``data`` as a Part 10 file if it is a DICOM dataset without the preamble, else None.

    Taken as DICOM only if it starts with a group 0002 or 0008 tag and parses to a dataset
    with a SOP Class UID that is a UID: random bytes and text are not."""
    if len(data) < 8 or data[:2] not in _STARTS:
        return None
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info
    from pydicom.uid import (
        PYDICOM_IMPLEMENTATION_UID,
        UID,
        ExplicitVRBigEndian,
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
    )

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=True)
    except Exception:
        return None
    sop_class = str(ds.get("SOPClassUID", "") or "")
    if not _UID.match(sop_class):
        return None
    if data[:2] == b"\x02\x00":
        return PREAMBLE + data
    implicit, little = getattr(ds, "original_encoding", (True, True))
    if implicit:
        syntax = ImplicitVRLittleEndian
    else:
        syntax = ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(str(ds.get("SOPInstanceUID", "") or ""))
    meta.TransferSyntaxUID = syntax
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    fp = DicomBytesIO()
    try:
        write_file_meta_info(fp, meta, enforce_standard=True)
    except Exception:
        return None
    return PREAMBLE + fp.getvalue() + data


def dicom_part10(data: bytes) -> bytes | None:
    """A DICOM file's bytes as import reads them: ``data`` itself when it has the preamble and
    ``DICM``, its Part 10 form when it is a dataset without them (:func:`as_part10`), else
    None. Every reader of a stored original (import, reissue, the re-send check) goes through
    here, so an original import took is never one they cannot read."""
    return data if data[128:132] == b"DICM" else as_part10(data)


# JPEG start-of-frame markers (not DHT C4, JPG C8, DAC CC), and JPEG-LS SOF55 (F7).
_SOF = frozenset({*range(0xC0, 0xD0)} - {0xC4, 0xC8, 0xCC}) | {0xF7}


def _jpeg_size(frame: bytes) -> tuple[int, int] | None:
    if frame[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= len(frame):
        if frame[i] != 0xFF:
            return None
        marker = frame[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        (length,) = struct.unpack(">H", frame[i + 2 : i + 4])
        if marker in _SOF:
            if i + 9 > len(frame):
                return None
            rows, cols = struct.unpack(">HH", frame[i + 5 : i + 9])
            return rows, cols
        if marker == 0xDA:  # start of scan before any frame header
            return None
        i += 2 + length
    return None


def _j2k_size(frame: bytes) -> tuple[int, int] | None:
    if frame[:4] == b"\xff\x4f\xff\x51" and len(frame) >= 24:
        xsiz, ysiz, xo, yo = struct.unpack(">IIII", frame[8:24])
        return ysiz - yo, xsiz - xo
    at = frame.find(b"ihdr", 0, 4096)
    if frame[4:8] == b"jP  " and at >= 0 and at + 12 <= len(frame):
        rows, cols = struct.unpack(">II", frame[at + 4 : at + 12])
        return rows, cols
    return None


def _rle_problem(frame: bytes, rows: int, cols: int) -> str | None:
    from pydicom.pixels.decoders.rle import _rle_decode_segment, _rle_parse_header

    try:
        offsets = _rle_parse_header(frame[:64])
    except Exception:
        return None  # the decoder says what is wrong
    ends = [*offsets[1:], len(frame)]
    lengths = {len(_rle_decode_segment(frame[a:b])) for a, b in zip(offsets, ends, strict=True)}
    if len(lengths) == 1:
        (n,) = lengths
        if n != rows * cols and n % cols == 0 and n:
            return (
                f"the compressed image is {n // cols} x {cols} pixels but the header says "
                f"{rows} x {cols} (Rows x Columns)"
            )
    return None


def _frames_held(value: bytes, syntax: str) -> int:
    """How many frames encapsulated pixel data holds, whatever the header says: the Basic
    Offset Table's entries, an RLE frame per fragment, and for JPEG, JPEG-LS and JPEG 2000
    every codestream in the fragments joined (a second image appended after the first's end
    marker, in its fragment or another, is a second frame). 1 if it cannot be told (the
    decoder says what is wrong)."""
    from pydicom.encaps import generate_fragments, parse_basic_offsets

    from scorer.imaging.codestream import count_codestreams

    try:
        buffer = io.BytesIO(value)
        offsets = parse_basic_offsets(buffer)
        fragments = list(generate_fragments(buffer))
    except Exception:
        return 1
    if syntax == "1.2.840.10008.1.2.5":  # RLE Lossless: one fragment per frame (PS3.5 A.4.2)
        codestreams = len(fragments)
    else:
        codestreams = count_codestreams(b"".join(fragments), syntax)
    return max(1, len(offsets), codestreams)


def codestream_problem(ds: Any) -> str | None:
    """Why the compressed pixel data is refused before decoding: it holds more frames than the
    header says (a second image hidden after the first), or the first frame's size disagrees
    with Rows and Columns; None if neither, the data is not compressed, or the frame does not
    say (the decoder decides)."""
    from pydicom import uid
    from pydicom.encaps import generate_frames

    syntax = uid.UID(str(ds.file_meta.get("TransferSyntaxUID", "")))
    if not syntax.is_compressed or "PixelData" not in ds:
        return None
    rows, cols = int(ds.Rows), int(ds.Columns)
    hidden = _frames_held(ds.PixelData, str(syntax))
    declared = int(ds.get("NumberOfFrames", 1) or 1)
    if hidden > max(1, declared):
        says = f"says {declared}" if "NumberOfFrames" in ds else "gives no Number of Frames"
        return (
            f"the pixel data holds {hidden} frames, but the header {says}: multi-frame images "
            "are refused"
        )
    try:
        frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    except Exception:
        return None  # the decoder says what is wrong
    if syntax == uid.RLELossless:
        return _rle_problem(frame, rows, cols)
    size = _j2k_size(frame) if syntax in uid.JPEG2000TransferSyntaxes else _jpeg_size(frame)
    if size is None or size == (rows, cols):
        return None
    return (
        f"the compressed image is {size[0]} x {size[1]} pixels but the header says "
        f"{rows} x {cols} (Rows x Columns)"
    )
