"""Finding the files of an import: single files, folders (recursive) and zip archives."""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_MEMBER_BYTES = 2 * 1024**3
MAX_RATIO = 200  # a zip member expanding more than this is treated as a bomb
SKIP_NAMES = frozenset({"DICOMDIR", ".DS_Store", "Thumbs.db", "desktop.ini"})


@dataclass(frozen=True)
class SourceFile:
    """One candidate file: the name shown in reports and a way to read its bytes."""

    name: str
    read: Callable[[], bytes]
    problem: str = ""


def _zip_members(path: Path) -> Iterator[SourceFile]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        yield SourceFile(str(path), lambda: b"", f"not a readable zip archive: {exc}")
        return
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
    for info in infos:
        shown = f"{path}!{info.filename}"
        if Path(info.filename).name in SKIP_NAMES or Path(info.filename).name.startswith("._"):
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
            with zipfile.ZipFile(p) as z, z.open(name) as fh:
                data = fh.read(size + 1)
            if len(data) > size:
                raise ValueError("the archive member is longer than its header says")
            return data

        yield SourceFile(shown, reader)


def find_files(paths: list[Path]) -> Iterator[SourceFile]:
    """Every file under the given paths, zip members included, in a stable order."""
    for root in paths:
        if not root.exists():
            yield SourceFile(str(root), lambda: b"", "no such file or folder")
            continue
        candidates = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for p in candidates:
            if p.name in SKIP_NAMES or p.name.startswith("."):
                continue
            if p.suffix.lower() == ".zip" and zipfile.is_zipfile(p):
                yield from _zip_members(p)
            else:
                yield SourceFile(str(p), p.read_bytes)
