"""Multi-resolution copies of a radiograph's stored values, and their cache on disk.

Level 0 is the stored values in a compact unsigned array (uint8 or uint16): stored value =
level value + ``offset``, where the offset is 0 for unsigned data and the minimum for signed
or 32-bit data. Keeping stored values (not modality values) lets the display table cover the
whole modality → VOI → polarity chain exactly, whatever the rescale or Modality LUT.

Each further level halves the one before by 2 × 2 means until the longer side is at most
:data:`SMALLEST_LEVEL` pixels. Rounding rule: the mean of four values is
floor((a + b + c + d + 2) / 4), i.e. rounded half up. An odd last row or column is repeated
before halving, so level k has ceil(rows / 2^k) × ceil(columns / 2^k) pixels and its pixel
(i, j) covers full-resolution rows i·2^k … (i+1)·2^k − 1 (clipped to the image). For a linear
modality transform the mean of stored values maps to the mean of modality values.

The cache keeps each level as a ``.npy`` file named by the SHA-256 of the source file's bytes
and :data:`FORMAT_VERSION`, with a JSON manifest written last; files are written to a
temporary name, flushed and renamed into place, so a crash never leaves a half file under a
final name. Levels are loaded memory-mapped. A manifest or level that does not match (wrong
version, shape, type, size, or checksum when verified) is rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from scorer.core.private_files import make_folder
from scorer.imaging.pixels import ImageFormatError

FORMAT_VERSION = 1
SMALLEST_LEVEL = 256
_SHA256 = re.compile(r"[0-9a-f]{64}")

CompactValues = npt.NDArray[np.unsignedinteger[Any]]


@dataclass(frozen=True, eq=False)
class Pyramid:
    """A radiograph's stored values at full resolution and at successive halvings.

    ``levels[k]`` has 1/2^k of the full resolution; stored value = level value + ``offset``;
    ``maximum`` is the largest level-0 value (no level exceeds it).
    """

    levels: tuple[CompactValues, ...]
    offset: int
    maximum: int

    @property
    def shape(self) -> tuple[int, int]:
        """Rows and columns at full resolution."""
        rows, cols = self.levels[0].shape
        return int(rows), int(cols)

    def level_for_zoom(self, zoom: float) -> int:
        """The coarsest level still at least as detailed as the screen at ``zoom``.

        ``zoom`` is screen pixels per full-resolution pixel; level k is chosen with
        zoom · 2^k in (0.5, 1], or level 0 when magnifying.
        """
        if not (math.isfinite(zoom) and zoom > 0):
            raise ValueError(f"zoom {zoom} must be a positive number")
        level = math.floor(math.log2(1.0 / zoom) + 1e-9)
        return min(max(level, 0), len(self.levels) - 1)


def compact_values(stored: npt.NDArray[np.integer[Any]]) -> tuple[CompactValues, int]:
    """Stored values as an unsigned 8- or 16-bit array and the offset to add back.

    Unsigned 8- and 16-bit data is kept as it is (offset 0); other integer data is shifted by
    its minimum, and refused when its range does not fit 16 bits.
    """
    if stored.ndim != 2 or stored.size == 0:
        raise ImageFormatError(f"an image must be 2-D and not empty, not {stored.shape}")
    if stored.dtype == np.uint8:
        return np.ascontiguousarray(stored, dtype=np.uint8), 0
    if stored.dtype == np.uint16:
        return np.ascontiguousarray(stored, dtype=np.uint16), 0
    if stored.dtype.kind not in "iu":
        raise ImageFormatError(f"stored values of type {stored.dtype} are not integers")
    low, high = int(stored.min()), int(stored.max())
    if high - low > 0xFFFF:
        raise ImageFormatError(
            f"stored values span {low}..{high}, more than 16 bits: not a radiograph the "
            "scorer can display"
        )
    shifted = stored.astype(np.int64) - low
    compact: CompactValues = shifted.astype(np.uint16 if high - low > 0xFF else np.uint8)
    return compact, low


def halve(values: CompactValues) -> CompactValues:
    """The next pyramid level: 2 × 2 means rounded half up, an odd edge row/column repeated."""
    rows, cols = values.shape
    if rows % 2 or cols % 2:
        values = np.pad(values, ((0, rows % 2), (0, cols % 2)), mode="edge")
    total = values[0::2, 0::2].astype(np.uint32)
    total += values[1::2, 0::2]
    total += values[0::2, 1::2]
    total += values[1::2, 1::2]
    total += 2
    total >>= 2
    halved: CompactValues = total.astype(values.dtype)
    return halved


def build_pyramid(
    stored: npt.NDArray[np.integer[Any]], *, smallest: int = SMALLEST_LEVEL
) -> Pyramid:
    """A pyramid of ``stored``, halved until the longer side is at most ``smallest`` pixels."""
    base, offset = compact_values(stored)
    levels: list[CompactValues] = [base]
    while max(levels[-1].shape) > smallest:
        levels.append(halve(levels[-1]))
    return Pyramid(tuple(levels), offset, int(base.max()))


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes, as lowercase hex: the key of its pyramid cache."""
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def _check_key(content_sha256: str) -> str:
    if not _SHA256.fullmatch(content_sha256):
        raise ValueError(f"not a SHA-256 in lowercase hex: {content_sha256!r}")
    return content_sha256


def manifest_path(cache_dir: str | os.PathLike[str], content_sha256: str) -> Path:
    """Where the cache manifest of an image's pyramid is kept."""
    return Path(cache_dir) / f"{_check_key(content_sha256)}.v{FORMAT_VERSION}.json"


def _level_name(content_sha256: str, level: int) -> str:
    return f"{content_sha256}.v{FORMAT_VERSION}.level{level}.npy"


def _values_sha256(values: npt.NDArray[Any]) -> str:
    return hashlib.sha256(np.ascontiguousarray(values).data).hexdigest()


def _replace_atomically(target: Path, write: Callable[[Any], None]) -> None:
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
    try:
        with os.fdopen(fd, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def save_pyramid(pyramid: Pyramid, cache_dir: str | os.PathLike[str], content_sha256: str) -> None:
    """Write a pyramid to the cache: each level, then the manifest, each atomically.

    Files of the same image in other format versions are removed.
    """
    directory = make_folder(cache_dir)  # owner-only; its files are too (mkstemp)
    manifest = manifest_path(directory, content_sha256)
    entries: list[dict[str, Any]] = []
    for number, values in enumerate(pyramid.levels):
        name = _level_name(content_sha256, number)
        array = np.ascontiguousarray(values)

        def write_level(stream: Any, level: CompactValues = array) -> None:
            np.save(stream, level)

        _replace_atomically(directory / name, write_level)
        entries.append(
            {
                "file": name,
                "shape": list(array.shape),
                "dtype": array.dtype.str,
                "sha256": _values_sha256(array),
            }
        )
    document = {
        "format": "scorer image pyramid",
        "version": FORMAT_VERSION,
        "source_sha256": content_sha256,
        "offset": pyramid.offset,
        "maximum": pyramid.maximum,
        "levels": entries,
    }
    text = json.dumps(document, indent=1).encode()
    _replace_atomically(manifest, lambda stream: stream.write(text))
    for stale in directory.glob(f"{content_sha256}.v*"):
        if not stale.name.startswith(f"{content_sha256}.v{FORMAT_VERSION}."):
            with contextlib.suppress(OSError):
                stale.unlink()


def load_pyramid(
    cache_dir: str | os.PathLike[str], content_sha256: str, *, verify: bool = False
) -> Pyramid | None:
    """The cached pyramid of an image, memory-mapped; None when missing, stale or corrupt.

    Every level's shape, type and file size are checked against the manifest; with
    ``verify`` each level's checksum is too (which reads every byte).
    """
    manifest = manifest_path(cache_dir, content_sha256)
    try:
        document = json.loads(manifest.read_bytes())
        if (
            document.get("format") != "scorer image pyramid"
            or document.get("version") != FORMAT_VERSION
            or document.get("source_sha256") != content_sha256
        ):
            return None
        offset, maximum = int(document["offset"]), int(document["maximum"])
        levels: list[CompactValues] = []
        expected: tuple[int, int] | None = None
        for number, entry in enumerate(document["levels"]):
            if entry["file"] != _level_name(content_sha256, number):
                return None
            values = np.load(manifest.parent / entry["file"], mmap_mode="r", allow_pickle=False)
            shape = tuple(int(n) for n in entry["shape"])
            if (
                not isinstance(values, np.memmap)
                or values.dtype.str != entry["dtype"]
                or values.dtype not in (np.dtype(np.uint8), np.dtype(np.uint16))
                or values.shape != shape
                or len(shape) != 2
                or (expected is not None and shape != expected)
                or os.path.getsize(manifest.parent / entry["file"]) != values.offset + values.nbytes
            ):
                return None
            if verify and _values_sha256(values) != entry["sha256"]:
                return None
            expected = ((shape[0] + 1) // 2, (shape[1] + 1) // 2)
            levels.append(values)
        if not levels or maximum > np.iinfo(levels[0].dtype).max or maximum < 0:
            return None
        return Pyramid(tuple(levels), offset, maximum)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def cached_pyramid(
    cache_dir: str | os.PathLike[str],
    content_sha256: str,
    decode: Callable[[], npt.NDArray[np.integer[Any]]],
    *,
    smallest: int = SMALLEST_LEVEL,
    verify: bool = False,
) -> Pyramid:
    """The image's pyramid from the cache, or built from ``decode()`` and cached when absent.

    A stale or corrupt cache is rebuilt. The pyramid returned after a build is the one
    loaded back from the cache (memory-mapped), so both paths give the same arrays.
    """
    found = load_pyramid(cache_dir, content_sha256, verify=verify)
    if found is not None:
        return found
    save_pyramid(build_pyramid(decode(), smallest=smallest), cache_dir, content_sha256)
    loaded = load_pyramid(cache_dir, content_sha256)
    if loaded is None:  # pragma: no cover - only if the disk lies right after a write
        raise OSError(f"the pyramid cache in {os.fspath(cache_dir)} cannot be read back")
    return loaded
