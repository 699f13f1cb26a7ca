"""Files and folders only their owner can read: how scorer creates everything it writes.

The database, the audit key and receipts, the images, every export and report hold trial
data or secrets, so each is created owner-only — files 0600, folders 0700 — whatever the
umask (which may narrow a mode, or have been left wide). A reading centre's shared files
(the database, the audit key, the receipts, the readers' store) are then given the
workstations' group (``audit_group`` in the site config) by the code that creates them, with
``gid`` here. Folders that exist already are left as they are: they are the user's own, or a
share the centre has set up. On Windows the modes do not apply (the user's profile folders
are private already) and groups are not set.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

#: An owner-only file, and folder.
FILE_MODE = 0o600
FOLDER_MODE = 0o700

POSIX = sys.platform != "win32"


def set_mode(path: str | os.PathLike[str] | int, mode: int, gid: int | None = None) -> None:
    """Give a file (a path or an open descriptor) ``mode`` and, unless None, the group
    ``gid``: the group first, so the file is never open to a group it is not meant for."""
    if not POSIX:
        return
    if isinstance(path, int):
        if gid is not None:
            os.fchown(path, -1, gid)
        os.fchmod(path, mode)
    else:
        if gid is not None:
            os.chown(path, -1, gid)
        os.chmod(path, mode)


def make_folder(
    path: str | os.PathLike[str], mode: int = FOLDER_MODE, gid: int | None = None
) -> Path:
    """Create ``path`` and its missing parents, each one created with ``mode`` (and group
    ``gid``) set explicitly, the umask aside; folders already there keep their modes."""
    folder = Path(path)
    missing: list[Path] = []
    p = folder
    while not p.is_dir():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode)
        except FileExistsError:
            if not d.is_dir():
                raise
            continue  # made meanwhile by another process: theirs to set
        set_mode(d, mode, gid)
    return folder


def create_file(
    path: str | os.PathLike[str],
    mode: int = FILE_MODE,
    gid: int | None = None,
    exclusive: bool = False,
    flags: int = 0,
) -> int:
    """Open ``path`` for writing, created (or truncated) with ``mode`` and group ``gid``;
    returns the descriptor. An existing file is given ``mode`` too; ``exclusive`` refuses
    one (FileExistsError)."""
    how = os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0) | flags
    how |= os.O_EXCL if exclusive else os.O_TRUNC
    fd = os.open(path, how, mode)
    try:
        set_mode(fd, mode, gid)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _sync_folder(folder: Path) -> None:
    if not POSIX:
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def replacing(
    target: str | os.PathLike[str], mode: int = FILE_MODE, gid: int | None = None
) -> Iterator[Path]:
    """Write ``target`` whole or not at all: yields a temporary path beside it, already
    created owner-only (``mode``, group ``gid``), for the caller or a library to write by
    name (opening an existing file for writing keeps its mode); then flushes it to disk and
    moves it over ``target``. On an error the temporary file is removed and ``target`` kept."""
    final = Path(target)
    while True:
        temporary = final.with_name(f".{final.name}.{secrets.token_hex(4)}.part")
        try:
            os.close(create_file(temporary, mode, gid, exclusive=True))
        except FileExistsError:
            continue
        break
    try:
        yield temporary
        fd = os.open(temporary, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        # A library may have replaced the file rather than written into it: the mode again.
        set_mode(temporary, mode, gid)
        os.replace(temporary, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_folder(final.parent)


def write_file(
    target: str | os.PathLike[str],
    data: bytes | str,
    mode: int = FILE_MODE,
    gid: int | None = None,
) -> Path:
    """Write ``data`` (text is UTF-8 with the newlines as given) to ``target`` whole or not
    at all, owner-only (or ``mode`` and group ``gid``)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with replacing(target, mode, gid) as temporary, open(temporary, "wb") as fh:
        fh.write(raw)
    return Path(target)
