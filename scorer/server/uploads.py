"""Files a coordinator's workstation uploads for an import, staged on the server.

``scorer import --server`` sends each file of the paths it was given into a batch folder of
its own (``<data>/uploads/<batch>/<root number>/<root name>/...``), then asks the server to
import the batch's roots: the server runs the same import over them and reports each file's
outcome by the name it had in the batch (``<root number>/<root name>/...``), which the
workstation turns back into its own paths. A batch belongs to the session that opened it,
is owner-only, is removed once imported, and a batch left behind (a workstation that went away)
is removed after :data:`STALE_AFTER_S`.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path, PurePosixPath

#: The largest file one upload takes (a DICOM of a whole leg is far below this).
MAX_FILE = 1024 * 1024 * 1024
#: The most one batch holds, and the free space the server keeps on its data disk.
MAX_BATCH = 50 * 1024 * 1024 * 1024
RESERVE = 2 * 1024 * 1024 * 1024
#: A batch not imported within this time is removed.
STALE_AFTER_S = 6 * 3600.0
OWNER = ".owner"


class UploadError(ValueError):
    """A batch or a file name that cannot be taken; the message says which."""


def uploads_dir(data_dir: Path) -> Path:
    return data_dir / "uploads"


def new_batch(data_dir: Path, session_id: str, now: float | None = None) -> str:
    """A new, empty batch folder owned by ``session_id``; stale batches are removed first."""
    root = uploads_dir(data_dir)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    sweep(root, now if now is not None else time.time())
    batch = secrets.token_hex(12)
    folder = root / batch
    folder.mkdir(mode=0o700)
    fd = os.open(folder / OWNER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(session_id)
    return batch


def sweep(root: Path, now: float) -> None:
    for folder in root.iterdir():
        try:
            if folder.is_dir() and now - folder.stat().st_mtime > STALE_AFTER_S:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue


def batch_folder(data_dir: Path, batch: str, session_id: str) -> Path:
    """The batch's folder, if it exists and belongs to this session (else UploadError, the
    same for both: a batch of another session is not told apart from none)."""
    if not (len(batch) == 24 and all(c in "0123456789abcdef" for c in batch)):
        raise UploadError("no such upload batch")
    folder = uploads_dir(data_dir) / batch
    try:
        owner = (folder / OWNER).read_text(encoding="utf-8")
    except OSError:
        raise UploadError("no such upload batch") from None
    if not secrets.compare_digest(owner, session_id):
        raise UploadError("no such upload batch")
    return folder


def room_left(folder: Path) -> int:
    """How many more bytes this batch may take: within MAX_BATCH, and leaving RESERVE free."""
    held = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    free = shutil.disk_usage(folder).free - RESERVE
    return max(0, min(MAX_BATCH - held, free))


def _private_dirs(folder: Path, path: Path) -> None:
    """The folders from ``folder`` down to ``path``'s, each owner-only."""
    current = folder
    for part in path.relative_to(folder).parts[:-1]:
        current = current / part
        try:
            current.mkdir(mode=0o700)
        except FileExistsError:
            if not current.is_dir():
                raise UploadError(f"{part} is a file in this batch, not a folder") from None


def target(folder: Path, name: str) -> Path:
    """Where a file named ``name`` (``<root number>/<path inside the root>``) goes in the batch:
    a relative path of plain parts, the first a root number."""
    if "\\" in name or "\x00" in name:
        raise UploadError("a file name in an upload uses / between its parts")
    parts = PurePosixPath(name).parts
    if len(parts) < 2 or not parts[0].isdigit() or len(parts[0]) > 6:
        raise UploadError("a file name in an upload starts with its root's number")
    if any(p in ("", ".", "..") or p.startswith("/") for p in parts) or len(name) > 4096:
        raise UploadError(f"not a plain relative file name: {name[:200]!r}")
    return folder.joinpath(*parts)


def open_target(folder: Path, path: Path) -> int:
    """A new owner-only file for writing (never one already there), its folders made
    owner-only; UploadError for a name the file system cannot take."""
    try:
        _private_dirs(folder, path)
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UploadError(f"{path.name[:200]} was uploaded twice in this batch") from None
    except OSError as exc:
        raise UploadError(
            f"the server cannot take the name {path.name[:200]!r}: {exc.strerror}"
        ) from None


def roots(folder: Path, names: list[str]) -> list[Path]:
    """The batch's roots in the order the workstation gave them: ``<i>/<name>``."""
    out = []
    for i, name in enumerate(names):
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise UploadError(f"root {i}: not a plain name: {name[:200]!r}")
        out.append(folder / str(i) / name)
    return out


def shown_name(folder: Path, file: str) -> str:
    """A reported file name relative to the batch (``<i>/<name>/...``)."""
    prefix = str(folder) + os.sep
    return file[len(prefix) :].replace(os.sep, "/") if file.startswith(prefix) else file


def remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
