"""Compressed pixel data for tests, in every compressed syntax the importer takes, and text
planted in each frame's codestream at the marker level (JPEG / JPEG-LS COM and APPn segments,
JPEG 2000 COM segments in the main and a tile-part header, bytes after the end marker).

Encoders: DCMTK's dcmcjpeg for the four JPEG syntaxes (pydicom has no JPEG encoder here),
pydicom with pyjpegls for JPEG-LS, pylibjpeg-openjpeg for JPEG 2000, pylibjpeg-rle for RLE.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom import uid
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames

#: Every compressed transfer syntax the importer takes: name → (UID, bits stored).
COMPRESSED: dict[str, tuple[str, int]] = {
    "jpeg-baseline": (uid.JPEGBaseline8Bit, 8),
    "jpeg-extended": (uid.JPEGExtended12Bit, 12),
    "jpeg-lossless-14": (uid.JPEGLossless, 12),
    "jpeg-lossless-sv1": (uid.JPEGLosslessSV1, 12),
    "jpeg-ls-lossless": (uid.JPEGLSLossless, 12),
    "jpeg-ls-near-lossless": (uid.JPEGLSNearLossless, 12),
    "j2k-lossless": (uid.JPEG2000Lossless, 12),
    "j2k": (uid.JPEG2000, 12),
    "rle": (uid.RLELossless, 12),
}
#: Uncompressed ones: name → UID.
NATIVE: dict[str, str] = {
    "implicit-le": uid.ImplicitVRLittleEndian,
    "explicit-le": uid.ExplicitVRLittleEndian,
    "explicit-be": uid.ExplicitVRBigEndian,
    "deflated": uid.DeflatedExplicitVRLittleEndian,
}
_DCMCJPEG: dict[str, tuple[str, ...]] = {
    uid.JPEGBaseline8Bit: ("+eb", "+sr", "+q", "90"),
    uid.JPEGExtended12Bit: ("+ee", "+sr", "+q", "90"),
    uid.JPEGLossless: ("+el",),
    uid.JPEGLosslessSV1: ("+e1",),
}


def sample_image(rows: int = 64, cols: int = 64, bits: int = 12, seed: int = 0) -> npt.NDArray[Any]:
    """A small image with structure and noise (codecs have work to do), ``bits`` deep."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols]
    top = (1 << bits) - 1
    img = top * (0.5 + 0.3 * np.sin(x / 5.0) * np.cos(y / 7.0)) + rng.normal(0, top / 90, x.shape)
    dtype = np.uint8 if bits <= 8 else np.uint16
    out: npt.NDArray[Any] = np.clip(img, 0, top).astype(dtype)
    return out


def _plain(values: npt.NDArray[Any], bits: int) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = uid.DigitalXRayImageStorageForPresentation
    ds.SOPInstanceUID = uid.generate_uid()
    ds.Modality = "DX"
    ds.Rows, ds.Columns = values.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = values.dtype.itemsize * 8
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.PixelData = values.astype(values.dtype.newbyteorder("<")).tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def encode(values: npt.NDArray[Any], syntax: str, bits: int) -> Dataset:
    """A minimal DX dataset holding ``values`` compressed in ``syntax`` (with the lossy
    compression attributes the encoder sets)."""
    ds = _plain(values, bits)
    if syntax in _DCMCJPEG:
        tool = shutil.which("dcmcjpeg")
        assert tool, "DCMTK's dcmcjpeg is not installed (scripts/setup.sh --test installs it)"
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = Path(tmp) / "in.dcm", Path(tmp) / "out.dcm"
            ds.save_as(src, enforce_file_format=True)
            subprocess.run(
                [tool, *_DCMCJPEG[syntax], str(src), str(dst)], check=True, capture_output=True
            )
            return pydicom.dcmread(dst)
    if syntax == uid.JPEGLSNearLossless:
        ds.compress(syntax, jls_error=2, generate_instance_uid=False)
    elif syntax == uid.JPEG2000:
        ds.compress(syntax, j2k_cr=[10], generate_instance_uid=False)
    else:
        ds.compress(syntax, generate_instance_uid=False)
    return ds


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", marker, len(payload) + 2) + payload


def plant_in_jpeg(frame: bytes, texts: list[bytes], tail: bytes = b"") -> bytes:
    """A JPEG / JPEG-LS frame with a COM and an APP1 segment after SOI, an APP13 and another
    COM just before the first SOS, and ``tail`` after EOI (one text per place, cycling)."""
    assert frame[:2] == b"\xff\xd8"
    t = [texts[k % len(texts)] for k in range(4)]
    head = _segment(0xFFFE, t[0]) + _segment(0xFFE1, b"Exif\0\0" + t[1])
    sos = frame.index(b"\xff\xda")
    middle = _segment(0xFFED, b"Photoshop 3.0\0" + t[2]) + _segment(0xFFFE, t[3])
    end = frame.rindex(b"\xff\xd9") + 2
    return frame[:2] + head + frame[2:sos] + middle + frame[sos:end] + tail


def plant_in_j2k(frame: bytes, texts: list[bytes], tail: bytes = b"") -> bytes:
    """A JPEG 2000 codestream with COM segments (Rcom 1, Latin text) after SIZ in the main
    header and after SOT in the first tile-part's header (its Psot grown to match), and
    ``tail`` after EOC."""
    assert frame[:2] == b"\xff\x4f" and frame[2:4] == b"\xff\x51"
    siz_end = 4 + int.from_bytes(frame[4:6], "big")
    com1 = _segment(0xFF64, b"\x00\x01" + texts[0])
    com2 = _segment(0xFF64, b"\x00\x01" + texts[-1])
    sot = frame.index(b"\xff\x90", siz_end)
    isot, psot, tpsot, tnsot = struct.unpack(">HIBB", frame[sot + 4 : sot + 12])
    new_sot = b"\xff\x90\x00\x0a" + struct.pack(
        ">HIBB", isot, psot + len(com2) if psot else 0, tpsot, tnsot
    )
    end = frame.rindex(b"\xff\xd9") + 2
    return (
        frame[:siz_end] + com1 + frame[siz_end:sot] + new_sot + com2 + frame[sot + 12 : end] + tail
    )


def plant_in_pixel_data(ds: Dataset, texts: list[bytes], tail: bytes = b"") -> None:
    """Plant ``texts`` in every frame of ``ds``'s compressed pixel data (not RLE: it has no
    place for text), keeping its Basic Offset Table choice."""
    syntax = ds.file_meta.TransferSyntaxUID
    if syntax == uid.RLELossless or not syntax.is_compressed:
        return
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    planted = []
    for frame in generate_frames(ds.PixelData, number_of_frames=frames):
        if syntax in (uid.JPEG2000, uid.JPEG2000Lossless):
            planted.append(plant_in_j2k(frame, texts, tail))
        else:
            planted.append(plant_in_jpeg(frame, texts, tail))
    has_bot = int.from_bytes(ds.PixelData[4:8], "little") > 0
    ds.PixelData = encapsulate(planted, has_bot=has_bot)
