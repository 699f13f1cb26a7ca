"""Masking burned-in text on a readers' copy: rectangles painted black, a new file written.

The stored pixels inside each rectangle are set to the value that displays black under the
image's photometric interpretation (the lowest for MONOCHROME2, the highest for MONOCHROME1),
and the copy is written uncompressed (explicit VR little endian) with Burned In Annotation set
to NO. The source file is never touched: the caller keeps it (the original is in its own
store anyway).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import ExplicitVRLittleEndian

from scorer.core.private_files import create_file


class MaskError(ValueError):
    """The rectangles do not fit the image, or the file cannot be masked."""


def mask_rectangles(source: Path, target: Path, rectangles: Sequence[Sequence[int]]) -> None:
    """Write ``target``: ``source`` with every (x, y, width, height) rectangle blacked out."""
    try:
        ds = pydicom.dcmread(source)
        pixels = np.array(ds.pixel_array)
    except Exception as exc:  # pydicom raises many kinds for a file it cannot decode
        raise MaskError(f"the readers' copy cannot be decoded: {exc}") from exc
    if pixels.ndim != 2:
        raise MaskError("only single-frame greyscale images can be masked")
    rows, cols = pixels.shape
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    bits = int(ds.get("BitsStored", pixels.dtype.itemsize * 8))
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    low = -(1 << (bits - 1)) if signed else 0
    high = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    black = high if photometric == "MONOCHROME1" else low
    for rect in rectangles:
        x, y, w, h = (int(v) for v in rect)
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > cols or y + h > rows:
            raise MaskError(
                f"rectangle {x},{y} {w}x{h} is not inside the image ({cols} x {rows} pixels)"
            )
        pixels[y : y + h, x : x + w] = black
    ds.set_pixel_data(pixels, photometric, bits)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.BurnedInAnnotation = "NO"
    temporary = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        os.close(create_file(temporary))  # owner-only before the first byte
        ds.save_as(temporary, enforce_file_format=True)
        with open(temporary, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
