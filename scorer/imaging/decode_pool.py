"""Decoding untrusted images in a small pool of persistent worker processes.

A codec fed a hostile file may crash, hang or try to allocate without bound. Each worker runs
with an address-space limit (POSIX) and each task with a time limit; a worker that dies or
overruns is killed and replaced, and that file is refused. The workers also make the readers'
de-identified copy, so a decoder fault can never take the importing process down with it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import multiprocessing as mp
import os
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from scorer.core.private_files import create_file, make_folder

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MEMORY_MB = 4096
ASSUMED_PIXEL_MM = 0.15
"""The pixel size the joint locator assumes for a film whose header gives none (CR and DX
detectors sample at 0.1 to 0.2 mm)."""


@dataclass(frozen=True)
class DecodeTask:
    """One file to decode and, if it decodes, to write as a readers' copy."""

    data: bytes
    out_path: str
    secret: bytes
    kind: str = "dicom"  # dicom | raster
    #: Where to keep the original, byte-identical, once it decodes ("" for the caller to).
    original_path: str = ""
    #: Whether to run the automatic joint locator on the decoded film, and the regions the
    #: import believes it shows (from the manifest or the header; empty if unknown).
    locate: bool = False
    regions: tuple[str, ...] = ()


@dataclass(frozen=True)
class DecodeResult:
    """What a worker reports: success with image facts, or the reason it failed."""

    ok: bool
    reason: str = ""
    rows: int = 0
    columns: int = 0
    minimum: float = 0.0
    maximum: float = 0.0
    seconds: float = 0.0
    #: The SHA-256 of the readers' copy as written, and whether the original was kept.
    sha256: str = ""
    original_kept: bool = False
    #: The SHA-256 of the decoded stored values (see :func:`pixel_hash`).
    pixel_sha256: str = ""
    #: The joint locator's result (:class:`scorer.imaging.locator.Location`), when asked for.
    location: Any = None


def pixel_hash(arr: Any) -> str:
    """SHA-256 of decoded stored pixel values with their shape and sample type, whatever
    byte order they came in: the same image sent in two lossless transfer syntaxes hashes
    the same."""
    import numpy as np

    a = np.ascontiguousarray(arr)
    little = a.astype(a.dtype.newbyteorder("<"), copy=False)
    h = hashlib.sha256(f"{a.shape[0]}x{a.shape[1]}:{a.dtype.kind}{a.dtype.itemsize};".encode())
    h.update(little.tobytes())
    return h.hexdigest()


def whole_message(exc: BaseException) -> str:
    """An exception's whole text on one line (a decoder's message lists every plugin that
    failed on lines of their own)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return " ".join([lines[0], "; ".join(lines[1:])]) if len(lines) > 1 else lines[0]


def write_durably(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` whole or not at all: a temporary file beside it, flushed
    to disk, then moved over it. A file already there with the same size is kept (the
    originals store is content-addressed: same name, same bytes)."""
    if target.exists() and target.stat().st_size == len(data):
        return
    make_folder(target.parent)
    fd, tmp = tempfile.mkstemp(prefix=".part-", dir=target.parent)  # owner-only
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


#: What a decoder writes to standard error when it made up pixels for data it could not read
#: and still reported success (IJG libjpeg's corrupt-data warnings, which GDCM prints and
#: otherwise ignores: a truncated frame with an end marker decodes to rows of garbage).
DAMAGE_MESSAGES = (
    "corrupt jpeg data",
    "premature end of jpeg file",
    "invalid sos parameters",
    "inconsistent progression sequence",
    "bogus",
)


@contextlib.contextmanager
def decoder_messages() -> Iterator[list[str]]:
    """Capture what C decoders print to standard error (file descriptor 2) while the block
    runs: the lines land in the list yielded, not unattributed on the console."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read(1 << 16).decode("utf-8", "replace")
            lines.extend(line.strip() for line in text.splitlines() if line.strip())


def damage_reported(lines: list[str]) -> str:
    """The decoder's messages that say the data was damaged, joined; "" if none does."""
    bad = [line for line in lines if any(m in line.lower() for m in DAMAGE_MESSAGES)]
    return "; ".join(dict.fromkeys(bad))


def _limit_memory(megabytes: int) -> None:
    if sys.platform == "win32" or megabytes <= 0:
        return
    import resource

    limit = megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _run(task: Any) -> Any:
    """A worker's task: a film to decode, or a patient's films to register across visits
    (:class:`scorer.imaging.visit_registration.RegisterTask`)."""
    from scorer.imaging.visit_registration import RegisterTask, run_register_task

    if isinstance(task, RegisterTask):
        return run_register_task(task)
    return _decode(task)


def _decode(task: DecodeTask) -> DecodeResult:
    import pydicom

    from scorer.imaging.codestream import CodestreamError
    from scorer.imaging.deidentify import deidentify

    start = time.perf_counter()
    if task.kind == "raster":
        from scorer.imaging.raster import raster_to_dataset

        ds = raster_to_dataset(task.data)
        arr = ds.pixel_array
        out = ds
    else:
        from pydicom import uid

        from scorer.imaging.pixels import stored_values
        from scorer.imaging.streams import codestream_problem

        try:
            ds = pydicom.dcmread(io.BytesIO(task.data))
        except Exception as exc:
            return DecodeResult(False, f"the DICOM file cannot be read: {whole_message(exc)}")
        problem = codestream_problem(ds)
        if problem:
            return DecodeResult(False, problem)
        # The display pipeline's decoder: every syntax the viewer shows (12-bit JPEG extended
        # included), frame 0 of a multi-frame image. A decoder that only warns of damaged data
        # (on standard error) has still failed.
        try:
            with decoder_messages() as messages:
                arr = stored_values(ds)
            damage = damage_reported(messages)
            if damage:
                raise ValueError(f"the decoder reported: {damage}")
        except Exception as exc:
            syntax = uid.UID(str(ds.file_meta.get("TransferSyntaxUID", "")))
            if not syntax.is_compressed:
                raise
            return DecodeResult(
                False, f"the compressed pixel data is truncated or damaged: {whole_message(exc)}"
            )
        try:
            out = deidentify(ds, task.secret)
        except CodestreamError as exc:
            return DecodeResult(False, f"the compressed pixel data cannot be cleaned: {exc}")
        if out.PixelData is not ds.PixelData and not _same_pixels(out, arr):
            # Comment or application segments were cut from the codestream: the copy must
            # still decode to the very same pixels.
            return DecodeResult(
                False, "the pixel data decodes differently once its comments are removed"
            )
    if arr.ndim != 2 or arr.shape != (int(ds.Rows), int(ds.Columns)):
        return DecodeResult(
            False,
            f"decoded pixels have shape {arr.shape}, the header says {ds.Rows} x {ds.Columns}",
        )
    tmp = task.out_path + ".part"
    os.close(create_file(tmp))  # owner-only before the first byte; importing sets its last mode
    out.save_as(tmp, enforce_file_format=True)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    # The copy must carry exactly the pixel data that decoded, before it replaces anything.
    # (Comparing the encoded bytes is as strict as decoding again, at a fraction of the cost.)
    with open(tmp, "rb") as fh:
        copy = fh.read()
    written = pydicom.dcmread(io.BytesIO(copy))
    if written.PixelData != out.PixelData:
        os.unlink(tmp)
        return DecodeResult(False, "the de-identified copy does not hold the same pixel data")
    os.replace(tmp, task.out_path)
    # Here rather than in the importing process: the workers run side by side, it does not.
    if task.original_path:
        write_durably(Path(task.original_path), task.data)
    seconds = time.perf_counter() - start
    return DecodeResult(
        True,
        "",
        int(arr.shape[0]),
        int(arr.shape[1]),
        float(arr.min()),
        float(arr.max()),
        seconds,
        hashlib.sha256(copy).hexdigest(),
        bool(task.original_path),
        pixel_hash(arr),
        _locate(ds, arr, task.regions) if task.locate else None,
    )


def _locate(ds: Any, arr: Any, regions: tuple[str, ...]) -> Any:
    """The joint locator's result on a decoded film. It never refuses a film: a film it
    cannot work on (no pixel spacing, an error of its own) gets a result that says why."""
    from scorer.imaging.locator import Location, locate_joints
    from scorer.imaging.pixels import bone_bright_polarity
    from scorer.imaging.spacing import pixel_spacing

    started = time.perf_counter()
    try:
        spacing = pixel_spacing(ds)
        # Without a spacing in the header, a detector's usual pitch: positions are in pixels
        # either way, and the locator's sizes in mm are only a search range.
        pixel_mm = (spacing.row_mm + spacing.col_mm) / 2.0 if spacing else ASSUMED_PIXEL_MM
        invert = bone_bright_polarity(ds).invert
        found = locate_joints(arr, pixel_mm, monochrome1=invert, regions=regions or None)
        if spacing is None:
            note = f"pixel spacing unknown: {ASSUMED_PIXEL_MM:g} mm assumed"
            found = replace(found, reason=f"{found.reason} ({note})" if found.reason else note)
        return found
    except MemoryError:
        raise
    except Exception as exc:  # the import goes on: the joints are placed by hand instead
        reason = f"the joint locator failed: {whole_message(exc)}"
        return Location("other", (), (), reason, time.perf_counter() - started)


def _same_pixels(ds: Any, arr: Any) -> bool:
    """Whether ``ds`` decodes, without a damage warning, to the pixels ``arr``."""
    import numpy as np

    from scorer.imaging.pixels import stored_values

    with decoder_messages() as messages:
        again = stored_values(ds)
    return not damage_reported(messages) and bool(np.array_equal(again, arr))


def _worker(conn: Connection, memory_mb: int) -> None:
    _limit_memory(memory_mb)
    # Import the decoders now, so a task's time limit measures decoding, not start-up.
    import numpy  # noqa: F401
    import pydicom
    import pydicom.pixels  # noqa: F401

    from scorer.imaging import deidentify, pixels, streams  # noqa: F401

    conn.send("ready")
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = _run(task)
        except MemoryError:
            result = DecodeResult(False, "decoding needs more memory than the worker's limit")
        except Exception as exc:
            result = DecodeResult(False, f"the pixel data cannot be decoded: {whole_message(exc)}")
            if os.environ.get("SCORER_DEBUG_DECODE"):
                traceback.print_exc()
        out_path = getattr(task, "out_path", "")  # a registration task writes no file
        if out_path and not result.ok and os.path.exists(out_path + ".part"):
            os.unlink(out_path + ".part")
        conn.send(result)


class _Worker:
    def __init__(self, ctx: Any, memory_mb: int) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, memory_mb), daemon=True)
        self.proc.start()
        child.close()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join(5)
        self.conn.close()


class DecodePool:
    """Persistent decode workers with per-task time and memory limits."""

    def __init__(
        self,
        workers: int = 2,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        memory_mb: int = DEFAULT_MEMORY_MB,
        wait: bool = True,
    ) -> None:
        """Start the workers; ``wait=False`` returns while they load their codecs (the first
        decode waits for them), so the caller can do other work meanwhile."""
        # spawn: a clean interpreter, safe beside Qt and database threads.
        self._ctx = mp.get_context("spawn")
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self._workers = [_Worker(self._ctx, memory_mb) for _ in range(max(1, workers))]
        self.replaced = 0
        self._ready = False
        if wait:
            self._all_ready()

    def _all_ready(self) -> None:
        if not self._ready:
            for i in range(len(self._workers)):
                self._await_ready(i)
            self._ready = True

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for w in self._workers:
            with contextlib.suppress(OSError):
                w.conn.send(None)
        for w in self._workers:
            w.proc.join(2)
            if w.proc.is_alive():
                w.kill()
        self._workers = []

    def run(self, tasks: list[DecodeTask]) -> list[DecodeResult]:
        """Decode tasks across the workers; results in task order."""
        results: list[DecodeResult | None] = [None] * len(tasks)
        for ti, result in self.stream(tasks):
            results[ti] = result
        return [r if r is not None else DecodeResult(False, "not decoded") for r in results]

    def stream(self, tasks: list[DecodeTask]) -> Iterator[tuple[int, DecodeResult]]:
        """Decode tasks across the workers, yielding (task index, result) as each finishes:
        the caller works on one result while the workers go on with the next tasks."""
        self._all_ready()
        pending = list(range(len(tasks)))
        busy: dict[int, tuple[int, float]] = {}  # worker index -> (task index, started)
        failed: list[tuple[int, DecodeResult]] = []

        def feed(wi: int) -> None:
            """Give an idle worker the next task, before the caller has the last result."""
            if pending and wi not in busy:
                ti = pending.pop(0)
                try:
                    self._workers[wi].conn.send(tasks[ti])
                    busy[wi] = (ti, time.monotonic())
                except OSError:
                    self._replace(wi)
                    failed.append((ti, DecodeResult(False, "the decode worker failed to start")))

        while pending or busy or failed:
            for wi in range(len(self._workers)):
                feed(wi)
            while failed:
                yield failed.pop(0)
            if busy:
                wait(
                    [self._workers[wi].conn for wi in busy]
                    + [self._workers[wi].proc.sentinel for wi in busy],
                    timeout=0.05,
                )
            for wi in list(busy):
                w = self._workers[wi]
                ti, started = busy[wi]
                remaining = self.timeout_s - (time.monotonic() - started)
                if w.conn.poll(0):
                    try:
                        result: DecodeResult = w.conn.recv()
                    except (EOFError, OSError):
                        result = self._died(wi)
                elif not w.proc.is_alive():
                    result = self._died(wi)
                elif remaining <= 0:
                    self._replace(wi)
                    result = DecodeResult(
                        False, f"decoding ran past the time limit of {self.timeout_s:g} s"
                    )
                else:
                    continue
                del busy[wi]
                feed(wi)
                yield ti, result

    def _await_ready(self, wi: int, wait_s: float = 60.0) -> None:
        w = self._workers[wi]
        try:
            ready = w.conn.poll(wait_s) and w.conn.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            w.kill()
            raise RuntimeError(
                "a decode worker process did not start (a program run from standard input "
                "cannot start worker processes; run it from a file)"
            )

    def _died(self, wi: int) -> DecodeResult:
        code = self._workers[wi].proc.exitcode
        self._replace(wi)
        return DecodeResult(False, f"the decoder crashed on this file (worker exit {code})")

    def _replace(self, wi: int) -> None:
        self._workers[wi].kill()
        self._workers[wi] = _Worker(self._ctx, self.memory_mb)
        self._await_ready(wi)
        self.replaced += 1


def cleanup_partial(folder: Path, min_age_s: float = 0.0, pattern: str = "*.part") -> int:
    """Remove files left half-written by a crash (readers' copies ``*.part``; originals
    ``.part-*``) at least ``min_age_s`` old (younger ones may be an import in flight);
    returns how many."""
    n = 0
    now = time.time()
    for p in folder.glob(f"**/{pattern}"):
        try:
            if now - p.stat().st_mtime < min_age_s:
                continue
            p.unlink()
        except OSError:
            continue
        n += 1
    return n
