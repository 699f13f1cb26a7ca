"""PNG, JPEG and TIFF radiographs (scanned films) as Secondary Capture datasets."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

MAX_PIXELS = 512_000_000
RASTER_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def raster_kind(data: bytes) -> str | None:
    """PNG, JPEG or TIFF from the file's first bytes; None for anything else."""
    for magic, kind in RASTER_MAGIC:
        if data.startswith(magic):
            return kind
    return None


def check_raster(data: bytes, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """Rows and columns from the raster header, refusing a decompression bomb before decoding."""
    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
    if w * h > max_pixels:
        raise ValueError(
            f"declared image size {h} x {w} is over the budget of {max_pixels / 1e6:.0f} megapixels"
        )
    return h, w


def raster_to_dataset(data: bytes) -> Dataset:
    """A greyscale Secondary Capture dataset of a raster image (colour becomes luminance)."""
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(im, dtype=np.int64)
            arr = np.clip(arr, 0, 65535).astype(np.uint16)
            bits = 16
        else:
            arr = np.asarray(im.convert("L"), dtype=np.uint8)
            bits = 8
    ds = Dataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "OT"
    ds.ConversionType = "DF"
    ds.Rows, ds.Columns = int(arr.shape[0]), int(arr.shape[1])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.PixelData = arr.tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    return ds
