"""Finding the files of an import: single files, folders (recursive) and zip archives."""

from __future__ import annotations

import threading
import zipfile
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_MEMBER_BYTES = 2 * 1024**3
MAX_RATIO = 200  # a zip member expanding more than this is treated as a bomb
#: Files skipped by name, each reported with why: never examined as images.
SKIP_NAMES: dict[str, str] = {
    "dicomdir": "a DICOMDIR index, not an image",
    "thumbs.db": "a system file, not an image",
    "desktop.ini": "a system file, not an image",
}
#: A file whose name or folder (inside what was imported) starts with a dot, and what macOS
#: puts in zips (``__MACOSX/``, ``._name``).
HIDDEN_SKIPPED = "hidden file"
#: A file of this name (any case) in an imported folder or zip is an import manifest: it is
#: reported as skipped, never examined as an image; so is a file named like the ``--manifest``.
MANIFEST_NAME = "manifest.csv"
MANIFEST_SKIPPED = "a manifest, not an image"
#: A symbolic link in an imported folder that leads out of it (to /etc/passwd, another
#: patient's folder): not followed, so a folder gives only what it holds.
LINK_OUTSIDE = "a link to outside the folder"
#: An archive member whose name climbs out of the archive (``../``) or uses backslashes: its
#: bytes are never read (nothing is ever written from an archive either).
UNSAFE_MEMBER = "an unsafe name in the archive (.. or backslashes)"


@dataclass(frozen=True)
class SourceFile:
    """One candidate file: the name shown in reports and a way to read its bytes."""

    name: str
    read: Callable[[], bytes]
    problem: str = ""
    skipped: str = ""  # why the file is reported as skipped and not examined
    size: int | None = None  # bytes, when known before reading (refused over --max-mb unread)


def skip_reason(parts: tuple[str, ...], manifest_names: frozenset[str]) -> str:
    """Why a file at these path parts (inside what was imported) is skipped; "" if not."""
    name = parts[-1]
    if any(p.startswith(".") for p in parts) or "__MACOSX" in parts[:-1]:
        return HIDDEN_SKIPPED
    if name.lower() in SKIP_NAMES:
        return SKIP_NAMES[name.lower()]
    if _is_manifest(name, manifest_names):
        return MANIFEST_SKIPPED
    return ""


def _is_manifest(name: str, manifest_names: frozenset[str]) -> bool:
    low = name.lower()
    return low == MANIFEST_NAME or low in manifest_names


def _zip_members(path: Path, manifest_names: frozenset[str] = frozenset()) -> Iterator[SourceFile]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        yield SourceFile(str(path), lambda: b"", f"not a readable zip archive: {exc}")
        return
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
    for info in infos:
        shown = f"{path}!{info.filename}"
        parts = tuple(p for p in info.filename.split("/") if p)
        unsafe = ".." in parts or "\\" in info.filename
        why = UNSAFE_MEMBER if unsafe else skip_reason(parts, manifest_names)
        if why:
            yield SourceFile(shown, lambda: b"", skipped=why)
            continue
        if info.file_size > MAX_MEMBER_BYTES:
            yield SourceFile(shown, lambda: b"", "the archive member is larger than 2 GB")
            continue
        if info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
            yield SourceFile(
                shown, lambda: b"", "the archive member expands more than 200-fold (a zip bomb?)"
            )
            continue

        def reader(p: Path = path, name: str = info.filename, size: int = info.file_size) -> bytes:
            data = _read_member(p, name, size + 1)
            if len(data) > size:
                raise ValueError("the archive member is longer than its header says")
            return data

        yield SourceFile(shown, reader, size=info.file_size)


class _OpenZip:
    """The archive members are read from: kept open from one member to the next (opening a
    zip parses its whole central directory, so opening it again for each of 10,000 members
    took minutes), opened again when it is another archive or it changed."""

    lock = threading.Lock()
    key: tuple[str, int, int, int, int] | None = None
    zf: zipfile.ZipFile | None = None


def release_archive() -> None:
    """Close the archive kept open (an import calls it when it ends: the file may then be
    deleted, its space freed, or on Windows moved)."""
    with _OpenZip.lock:
        if _OpenZip.zf is not None:
            _OpenZip.zf.close()
        _OpenZip.zf, _OpenZip.key = None, None


def _read_member(path: Path, name: str, limit: int) -> bytes:
    """Up to ``limit`` bytes of member ``name`` of the archive at ``path``."""
    with _OpenZip.lock:
        st = path.stat()
        key = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if _OpenZip.key != key or _OpenZip.zf is None:
            if _OpenZip.zf is not None:
                _OpenZip.zf.close()
                _OpenZip.zf, _OpenZip.key = None, None
            _OpenZip.zf = zipfile.ZipFile(path)
            _OpenZip.key = key
        with _OpenZip.zf.open(name) as fh:
            return fh.read(limit)


def _resolves_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` (a link, or in a linked folder) leads to a file inside ``folder``."""
    try:
        return path.resolve().is_relative_to(folder)
    except (OSError, RuntimeError):  # a link loop
        return False


def find_files(paths: list[Path], manifest_names: Collection[str] = ()) -> Iterator[SourceFile]:
    """Every file under the given paths, zip members included, in a stable order.

    A file named ``manifest.csv`` or one of ``manifest_names`` (the ``--manifest`` file's
    name; any case) comes back marked skipped: it is the import's manifest, not an image; so
    do hidden files and the system files of ``SKIP_NAMES``, each with why, and a link in a
    folder that leads out of it (``LINK_OUTSIDE``: not read)."""
    names = frozenset(n.lower() for n in manifest_names)
    for root in paths:
        if not root.exists():
            yield SourceFile(str(root), lambda: b"", "no such file or folder")
            continue
        candidates = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        inside = root.resolve()
        for p in candidates:
            why = skip_reason(p.relative_to(root).parts if p != root else (p.name,), names)
            if not why and p != root and not _resolves_inside(p, inside):
                why = LINK_OUTSIDE
            if why:
                yield SourceFile(str(p), lambda: b"", skipped=why)
            elif p.suffix.lower() == ".zip" and zipfile.is_zipfile(p):
                yield from _zip_members(p, names)
            else:
                try:
                    size: int | None = p.stat().st_size
                except OSError:
                    size = None
                yield SourceFile(str(p), p.read_bytes, size=size)
