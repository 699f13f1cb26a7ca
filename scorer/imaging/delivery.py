"""The films of a case as its reader receives them: one file per (case, image).

The readers' store keeps one de-identified copy of each image, its UIDs drawn at random when it
was written. A reader is never handed that file: when a case's films are listed, each is
delivered as a file of the case's own — the same bytes of pixel data, every instance UID of
the header (at any depth, the file meta included) rewritten from (case, image) under a key,
under a name derived the same way, with a neutral modification time, owner-only. So a hidden
re-read's films share no UID, name or time with the original reading's, and neither the names
nor the times of a case's files sort by visit. The pyramid cache is keyed on the SHA-256 of the
pixel data (:func:`pixel_data_sha256`), which is the same in every case that shows the film.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.uid import UID

from scorer.core.private_files import FILE_MODE, create_file, make_folder, set_mode

#: Every delivered film's access and modification time: 2000-01-01 00:00:00 UTC.
NEUTRAL_TIME = 946_684_800


class DeliveryError(ValueError):
    """A film could not be delivered as it must be (its pixel data would change)."""


def _token(key: bytes, purpose: str, case_code: str, image_code: str) -> bytes:
    message = f"film\x1f{purpose}\x1f{case_code}\x1f{image_code}".encode()
    return hmac.new(key, message, hashlib.sha256).digest()


def film_name(key: bytes, case_code: str, image_code: str) -> str:
    """The film's name in its case (32 hex digits): random-looking, the same every time for
    one (case, image), unrelated between cases."""
    return _token(key, "name", case_code, image_code)[:16].hex()


def film_uid(token: bytes, stored: str) -> UID:
    """The delivered UID (2.25 form) for a UID of the stored copy, under the film's token: the
    same stored UID gives the same new one within a film, so the file stays consistent."""
    digest = hmac.new(token, stored.encode(), hashlib.sha256).digest()
    return UID(f"2.25.{int.from_bytes(digest[:16], 'big')}")


def _is_instance_uid(elem: DataElement) -> bool:
    """A UID that names an instance (rewritten), not a class, syntax or implementation."""
    if elem.VR != "UI" or elem.value in (None, ""):
        return False
    keyword = elem.keyword or ""
    if keyword.endswith(("ClassUID", "TransferSyntaxUID")) or keyword == "CodingSchemeUID":
        return False
    values = elem.value if isinstance(elem.value, list | tuple) else [elem.value]
    # A UID the standard names (a class, a syntax, a coding scheme) has a name of its own.
    return not all(UID(str(v).strip()).name != str(v).strip() for v in values)


def _rewrite_uids(ds: Dataset, token: bytes) -> None:
    for elem in ds.iterall():
        if not _is_instance_uid(elem):
            continue
        if isinstance(elem.value, list | tuple):
            elem.value = [film_uid(token, str(v).strip()) for v in elem.value]
        else:
            elem.value = film_uid(token, str(elem.value).strip())


def pixel_data_sha256(ds: Dataset) -> str:
    """The SHA-256 of a dataset's pixel data bytes as stored (encapsulated or not)."""
    return hashlib.sha256(bytes(ds.PixelData)).hexdigest()


def deliver_film(stored: Path, target: Path, key: bytes, case_code: str, image_code: str) -> str:
    """Write ``stored`` (a readers' copy) to ``target`` as the film of ``image_code`` in case
    ``case_code``: instance UIDs rewritten, pixel data and transfer syntax untouched,
    owner-only, neutral time. Returns the pixel data's SHA-256. ``target`` appears whole or
    not at all."""
    ds = pydicom.dcmread(stored)
    if "PixelData" not in ds:
        raise DeliveryError(f"{stored.name} holds no pixel data")
    pixels = bytes(ds.PixelData)
    token = _token(key, "uids", case_code, image_code)
    _rewrite_uids(ds, token)
    _rewrite_uids(ds.file_meta, token)
    make_folder(target.parent)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    fd = create_file(temporary, FILE_MODE, exclusive=True)
    try:
        with os.fdopen(fd, "wb") as fh:
            ds.save_as(fh, enforce_file_format=True)
        written = pydicom.dcmread(temporary)
        if bytes(written.PixelData) != pixels:
            raise DeliveryError(f"{stored.name}: the delivered film's pixel data differs")
        set_mode(temporary, FILE_MODE)
        os.utime(temporary, (NEUTRAL_TIME, NEUTRAL_TIME))
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return hashlib.sha256(pixels).hexdigest()


def remove_other_films(folder: Path, keep: set[str]) -> int:
    """Delete the films of a case's folder that are not in ``keep`` (names), e.g. a film moved
    to another patient or visit; returns how many."""
    removed = 0
    if not folder.is_dir():
        return 0
    for f in folder.iterdir():
        if f.is_file() and f.name not in keep and not f.name.endswith(".part"):
            with contextlib.suppress(OSError):
                f.unlink()
                removed += 1
    return removed


#: Case folders kept on a workstation: the cases around the one on screen (the reading window
#: prepares a few ahead and keeps a few behind); older ones are written again if listed again.
KEEP_CASES = 16


def prune_cases(root: Path, current: Path, keep: int = KEEP_CASES) -> int:
    """Mark ``current`` (a case's folder under ``root``) as just used and delete the films of
    all but the ``keep`` case folders used last; returns how many folders went."""
    with contextlib.suppress(OSError):
        os.utime(current)
    try:
        folders = [f for f in root.iterdir() if f.is_dir()]
    except OSError:
        return 0

    def used(folder: Path) -> float:
        try:
            return folder.stat().st_mtime
        except OSError:
            return 0.0

    folders.sort(key=used, reverse=True)
    removed = 0
    for folder in folders[keep:]:
        if folder == current:
            continue
        remove_other_films(folder, set())
        with contextlib.suppress(OSError):
            folder.rmdir()
            removed += 1
    return removed
