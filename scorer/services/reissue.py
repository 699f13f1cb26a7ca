"""Rebuilding a trial's readers' copies under the current rules (``scorer image reissue``).

Part of the images service: ``ImagesService.reissue_readers_copies`` calls :func:`reissue`. Each
image's readers' copy is written again from its original by the decode workers, as an import
writes it — the current keep-list, UIDs from a secret drawn for that image alone — and the
coordinator's masks are painted on it again. Only when every image has its new copy are the
image rows changed, in one transaction with one audit row per image and one for the trial;
then the old copies are removed. A failure anywhere before the commit removes the new copies
and changes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scorer.imaging.decode_pool import DecodePool, DecodeTask
from scorer.imaging.streams import dicom_part10
from scorer.services.errors import InvalidInput
from scorer.services.lookups import find_trial, refuse_if_locked
from scorer.services.session import new_code
from scorer.store import repository as repo

if TYPE_CHECKING:
    from scorer.services.images import ImagesService
    from scorer.services.operation import Op

Progress = Callable[[int, int, str], None]
#: Originals read into memory at once: a batch of this many goes to the decode workers.
BATCH = 16


@dataclass(frozen=True)
class ReissuedCopy:
    """One image whose readers' copy was written again: the old and the new copy's SHA-256."""

    image: str
    old_sha256: str
    new_sha256: str


@dataclass(frozen=True)
class ReissueReport:
    """A trial's readers' copies written again: how many, how many with their masks painted
    again, and each image's old and new copy."""

    trial: str
    images: int
    masked: int
    copies: tuple[ReissuedCopy, ...]


@dataclass
class _Copy:
    code: str
    original: Path
    kind: str
    old_path: str
    old_sha: str
    masks: list[list[int]]
    new: Path | None = None
    new_sha: str = ""


def _discard(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            path.chmod(0o600)
            path.unlink()


def reissue(
    ws: ImagesService,
    op: Op,
    trial: str,
    progress: Progress | None = None,
    workers: int = 2,
    timeout_s: float = 60.0,
    memory_mb: int = 4096,
) -> ReissueReport:
    """Write every readers' copy of ``trial`` again from its original; see the module
    docstring. ``op`` is the coordinator's operation (its role checked by
    ``ImagesService.reissue_readers_copies``). Returns the counts and, per image, the old and
    new copy's SHA-256."""
    loc = ws.store.location
    with op.read() as db:
        t = find_trial(db, trial)
        refuse_if_locked(t)
        copies = [
            _Copy(
                img.code,
                loc.image_file(img.original_path, original=True),
                "raster" if img.transfer_syntax == "raster" else "dicom",
                img.reader_path,
                img.reader_sha256 or "",
                json.loads(img.masks or "[]"),
            )
            for img in repo.images_of(db, t)
        ]
    missing = [c.code for c in copies if not c.original.is_file()]
    if missing:
        raise InvalidInput(
            f"the original of image(s) {', '.join(missing[:10])} is not in the originals store "
            f"({loc.originals_store}): nothing was changed"
        )
    total = len(copies)
    made: list[Path] = []
    try:
        if copies:
            with DecodePool(
                workers=min(workers, total), timeout_s=timeout_s, memory_mb=memory_mb
            ) as pool:
                for start in range(0, total, BATCH):
                    batch = copies[start : start + BATCH]
                    for k, c in enumerate(_write_batch(ws, pool, batch, made)):
                        if progress:
                            progress(start + k + 1, total, c.code)
        with op.write() as tx:
            t = find_trial(tx.session, trial)
            refuse_if_locked(t)
            for c in copies:
                img = repo.image_by_code(tx.session, c.code)
                if img is None or img.reader_path != c.old_path:
                    raise InvalidInput(
                        f"image {c.code} changed while its copy was written again; run it again"
                    )
                assert c.new is not None
                img.reader_path = loc.stored_name(c.new)
                img.reader_sha256 = c.new_sha
                tx.audit(
                    "image.reissue",
                    "image",
                    c.code,
                    trial_id=t.id,
                    old={"reader_sha256": c.old_sha},
                    new={"reader_sha256": c.new_sha, "masks": len(c.masks)},
                )
            tx.audit(
                "images.reissue",
                "trial",
                trial,
                trial_id=t.id,
                new={"images": total, "masked": sum(1 for c in copies if c.masks)},
                reason="readers' copies written again under the current rules",
            )
    except BaseException:
        # The workers may have written copies whose results never came back: those too.
        for path in made + [c.new for c in copies if c.new is not None]:
            _discard(path)
        raise
    for c in copies:
        old = loc.image_file(c.old_path)
        if c.new is not None and old != c.new:
            _discard(old)
    if progress:
        progress(total, total, "")
    return ReissueReport(
        trial,
        total,
        sum(1 for c in copies if c.masks),
        tuple(ReissuedCopy(c.code, c.old_sha, c.new_sha) for c in copies),
    )


def _write_batch(
    ws: ImagesService, pool: DecodePool, batch: list[_Copy], made: list[Path]
) -> Iterator[_Copy]:
    """Write the new copies of ``batch`` (each new file into ``made`` as it appears), yielding
    each image as its copy is sealed."""
    from scorer.imaging.masking import MaskError, mask_rectangles
    from scorer.services.intake import make_readers_folder, seal_readers_copy

    loc = ws.store.location
    tasks = []
    for c in batch:
        data = c.original.read_bytes()
        if c.kind == "dicom":
            # Read as import read it: an original without the preamble or file meta too.
            part10 = dicom_part10(data)
            if part10 is None:
                raise InvalidInput(
                    f"image {c.code}: its original is not a DICOM file; nothing was changed"
                )
            data = part10
        c.new = loc.readers_store / c.code[:2] / f"{new_code(16)}.dcm"
        make_readers_folder(c.new.parent, loc)
        tasks.append(DecodeTask(data, str(c.new), secrets.token_bytes(32), c.kind))
    for k, result in pool.stream(tasks):
        c = batch[k]
        assert c.new is not None
        if not result.ok:
            raise InvalidInput(f"image {c.code}: {result.reason}; nothing was changed")
        made.append(c.new)
        if c.masks:
            masked = c.new.with_name(f"{new_code(16)}.dcm")
            try:
                mask_rectangles(c.new, masked, c.masks)
            except MaskError as exc:
                raise InvalidInput(
                    f"image {c.code}: its masks cannot be painted again: {exc}; nothing was changed"
                ) from exc
            made.append(masked)
            _discard(c.new)
            c.new = masked
        c.new_sha = hashlib.sha256(c.new.read_bytes()).hexdigest()
        seal_readers_copy(c.new, loc)
        yield c
