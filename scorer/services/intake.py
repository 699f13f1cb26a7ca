"""Image intake: files, folders and zips in; blinded readers' copies and originals out.

Part of the images service: ``ImagesService.import_images`` calls :func:`import_images`. For each
file: a cheap header check in this process, then decoding and the de-identified copy in the
worker pool, then the original into the content-addressed originals store, and only then one
database transaction with the image and its audit row. A file that fails anywhere is refused
with its reason and nothing of it is kept; the other files go on.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scorer.core.cells import formula_lead
from scorer.core.private_files import FOLDER_MODE, make_folder, set_mode
from scorer.imaging.decode_pool import (
    DecodePool,
    DecodeResult,
    DecodeTask,
    cleanup_partial,
    pixel_hash,
    write_durably,
)
from scorer.imaging.dicom_header import (
    DEFAULT_MAX_MEGAPIXELS,
    FOOT_PARTS,
    HAND_PARTS,
    RADIOGRAPH_CLASSES,
    SUPPORTED_SYNTAXES,
    HeaderFacts,
    RefusedFile,
    read_header,
    shown,
)
from scorer.imaging.manifest import Manifest, ManifestRow
from scorer.imaging.raster import check_raster, raster_kind
from scorer.imaging.sources import SourceFile, find_files, release_archive
from scorer.imaging.streams import dicom_part10
from scorer.services.errors import InvalidInput, ScorerError
from scorer.services.import_report import (
    FileOutcome,
    ImportReport,
    Progress,
)
from scorer.services.located_joints import located_summary, record_location
from scorer.services.lookups import find_trial, protocol_of, refuse_if_locked, unique_patient_code
from scorer.services.session import new_code
from scorer.store import repository as repo
from scorer.store.audit import shared_gid
from scorer.store.location import Location

if TYPE_CHECKING:
    from scorer.services.images import ImagesService
    from scorer.services.operation import Op

#: Files larger than this (MB) are refused from their size, unread (``scorer import --max-mb``).
DEFAULT_MAX_MB = 1024.0
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
#: The flags that hold an image for QC which no reassignment clears.
SECONDARY_CAPTURE_FLAG = "secondary capture: review it is a hand or foot radiograph"
BURNED_IN_UNKNOWN = "burned-in text unknown"
#: Readers' copies no image names (an import was interrupted between writing one and saving
#: its image) are removed when older than this: a younger one may be another workstation's
#: import about to save its image.
LEFTOVER_AGE_S = 120.0


@dataclass
class _Candidate:
    source: SourceFile
    data: bytes
    sha256: str
    kind: str  # dicom | raster
    facts: HeaderFacts | None
    manifest: ManifestRow | None
    patient_id: str | None = None
    visit: str | None = None
    when: date | None = None
    regions: tuple[str, ...] = ()
    flags: list[str] = field(default_factory=list)
    code: str = ""
    #: The file as it came when ``data`` is another form of it (a DICOM dataset without the
    #: preamble, given one): the original kept and hashed.
    raw: bytes | None = None
    #: Its SOP Instance UID is an image's of this trial already (or an earlier file's of this
    #: import), with other bytes: a duplicate if its decoded pixels are the same.
    resend: bool = False


def make_readers_folder(folder: Path, loc: Location) -> None:
    """Create a folder of the readers' store if missing: owner-only (0700), or with the site
    config's ``audit_group`` readable by the workstations' group (0750, that group)."""
    gid = shared_gid(loc.audit_group)
    make_folder(folder, FOLDER_MODE if gid is None else 0o750, gid)


def seal_readers_copy(path: Path, loc: Location) -> None:
    """Make a readers' copy read-only, as it stays after import: its owner's only (0400), or
    with ``audit_group`` the workstations' group's to read too (0440, that group)."""
    gid = shared_gid(loc.audit_group)
    set_mode(path, 0o400 if gid is None else 0o440, gid)


def _original_file(root: Path, c: _Candidate) -> Path:
    """Where the original is kept: content-addressed, so a file imported twice is one file."""
    suffix = ".dcm" if c.kind == "dicom" else f".{(raster_kind(c.data) or 'img').lower()}"
    return root / c.sha256[:2] / f"{c.sha256}{suffix}"


@dataclass(frozen=True)
class _Trial:
    """What an import needs of its trial, read once before the files: its code and id, its
    visits' labels, and the modalities its protocol says carry no burned-in text."""

    code: str
    id: int
    visit_labels: set[str]
    no_burned_in: frozenset[str]


def import_images(
    ws: ImagesService,
    op: Op,
    trial: str,
    paths: Sequence[Path],
    manifest: Manifest | None = None,
    progress: Progress | None = None,
    workers: int = 2,
    timeout_s: float = 60.0,
    memory_mb: int = 4096,
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
    max_mb: float = DEFAULT_MAX_MB,
    sources: Sequence[SourceFile] | None = None,
    pool: DecodePool | None = None,
    housekeeping: bool = True,
    origin: dict[str, Any] | None = None,
    manifest_names: Collection[str] = (),
) -> ImportReport:
    """Import every file under ``paths`` into ``trial``; see the module docstring.

    ``op`` is the coordinator's operation (its role checked by ``ImagesService.import_images``);
    ``sources`` are files in hand instead (the network receiver's instances); ``pool`` a
    decoding pool kept open across calls; ``housekeeping=False`` skips the sweep of partial
    and orphaned readers' copies (a receiver does it once when it starts); ``origin`` is
    written into the import's audit row (where the files came from); a file named
    ``manifest.csv`` or one of ``manifest_names`` (the manifest given) is skipped, not examined.
    A file over ``max_mb`` megabytes is refused from its size, unread.
    """
    if not 0 < max_mb < float("inf"):
        raise InvalidInput(f"--max-mb must be a positive number of megabytes, not {max_mb:g}")
    loc = ws.store.location
    _prepare_stores(loc)
    report = ImportReport()
    if housekeeping:
        report.partial_removed, report.orphans_removed = _sweep_interrupted(ws, loc)
    into = _import_trial(ws, trial)
    sources = list(find_files(list(paths), manifest_names)) if sources is None else list(sources)
    total = len(sources)
    # The decode workers start now and load their codecs while the files are examined.
    own = (
        DecodePool(
            workers=min(workers, len(sources)),
            timeout_s=timeout_s,
            memory_mb=memory_mb,
            wait=False,
        )
        if pool is None and sources
        else None
    )
    try:
        outcomes, candidates = _examine_all(
            ws, into, sources, manifest, progress, max_mb, max_megapixels
        )
        # Patients first (one transaction), so each image row can name its patient.
        _ensure_patients(ws, op, trial, [c for _, c in candidates])
        tasks = _decode_tasks(loc, candidates, ws.locate_joints)
        decoder = pool or own
        _commit_decoded(ws, op, into, decoder, candidates, tasks, outcomes, progress, False)
        _commit_decoded(ws, op, into, decoder, candidates, tasks, outcomes, progress, True)
        if ws.locate_joints and decoder is not None:
            try:
                report.registration = _register_imported(ws, op, trial, outcomes, decoder)
            except ScorerError as exc:  # the films are in: their positions are placed by hand
                report.registration = f"registration across visits failed: {exc}"
    finally:
        if own is not None:
            own.close()
        release_archive()  # the zip it read from is not held open after the import
    report.files = [o for o in outcomes if o is not None]
    _audit_import(ws, op, into, total, report, origin)
    if progress:
        progress(total, total, "")
    return report


def _register_imported(
    ws: ImagesService,
    op: Op,
    trial: str,
    outcomes: list[FileOutcome | None],
    pool: DecodePool,
) -> str:
    """Register the films of the patients this import brought films of across their visits,
    on the decode workers; what it did, in words ("" if there was nothing to register)."""
    from scorer.imaging.visit_registration import RegisterOutcome, RegisterTask
    from scorer.services.joint_registration import register_patients

    codes = [o.image for o in outcomes if o is not None and o.status == "imported" and o.image]
    if not codes:
        return ""
    with op.read() as db:
        patients = {
            img.patient_id
            for img in (repo.image_by_code(db, code) for code in codes)
            if img is not None and img.patient_id is not None
        }

    def on_workers(tasks: Sequence[RegisterTask]) -> list[RegisterOutcome]:
        out: list[RegisterOutcome] = []
        results: list[Any] = pool.run(list(tasks))  # type: ignore[arg-type]
        for result in results:
            if isinstance(result, RegisterOutcome):
                out.append(result)
            else:  # the worker died or ran past its time: nothing proposed for that patient
                out.append(RegisterOutcome((), (), ((-1, result.reason),), 0.0))
        return out

    summary = register_patients(op, ws.store.location, trial, patients, on_workers)
    return summary.describe()


def _prepare_stores(loc: Location) -> None:
    """Check the readers' store and the originals store are apart and create them: the
    readers' as :func:`make_readers_folder` does, the originals the importing account's only."""
    readers_root = loc.readers_store
    originals_root = loc.originals_store
    if readers_root.resolve() == originals_root.resolve():
        raise InvalidInput("the readers' store and the originals store must be apart")
    make_readers_folder(readers_root, loc)
    make_folder(originals_root)  # the originals stay the importing account's only


def _sweep_interrupted(ws: ImagesService, loc: Location) -> tuple[int, int]:
    """Remove what an interrupted import left: its partial files, and readers' copies no
    image names. Returns (partial files removed, copies removed)."""
    # (A partial file lost by an import in flight only has that file refused.)
    partial = cleanup_partial(loc.readers_store) + cleanup_partial(
        loc.originals_store, pattern=".part-*"
    )
    return partial, _remove_orphans(ws, loc.readers_store, LEFTOVER_AGE_S)


def _import_trial(ws: ImagesService, trial: str) -> _Trial:
    """The trial the files go into, refused if it is locked."""
    with ws._ctx.read() as db:
        t = find_trial(db, trial)
        refuse_if_locked(t)
        return _Trial(
            trial,
            t.id,
            {v.label for v in t.visits},
            frozenset(protocol_of(t).no_burned_in_text),
        )


def _examine_all(
    ws: ImagesService,
    into: _Trial,
    sources: list[SourceFile],
    manifest: Manifest | None,
    progress: Progress | None,
    max_mb: float,
    max_megapixels: float,
) -> tuple[list[FileOutcome | None], list[tuple[int, _Candidate]]]:
    """Read, hash and check every file: the outcome of each refused, skipped or duplicate
    file by its place, and the candidates to decode with their places (re-sent ones last)."""
    total = len(sources)
    with ws._ctx.read() as db:
        # Duplicates are of this trial: the same file into another trial is its image too.
        known_hashes = repo.image_hashes(db, into.id)
        known_sops = repo.image_sop_uids(db, into.id)
    batch_hashes: set[str] = set()
    batch_sops: set[str] = set()
    max_bytes = int(max_mb * 1024 * 1024)
    candidates: list[tuple[int, _Candidate]] = []
    outcomes: list[FileOutcome | None] = [None] * total
    # Reading and hashing release the GIL: two threads read and hash files side by side while
    # the decode workers are still idle (the header checks stay on this thread: they silence
    # pydicom's warnings, which is not thread-safe). Results come back in file order.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="examine") as reader:
        loaded = reader.map(lambda src: _load(src, max_bytes), sources)
        for i, src in enumerate(sources):
            if progress:
                progress(i, total, src.name)
            outcome, cand = _examine(src, next(loaded), manifest, max_megapixels)
            if outcome is not None:
                outcomes[i] = outcome
                continue
            assert cand is not None
            if cand.sha256 in known_hashes or cand.sha256 in batch_hashes:
                prev = known_hashes.get(cand.sha256)
                outcomes[i] = FileOutcome(
                    src.name, "duplicate", prev, "the same file was imported already"
                )
                continue
            sop = cand.facts.sop_instance_uid if cand.facts else None
            # Other bytes under a SOP Instance UID the trial has (a re-send in another
            # transfer syntax?): decoded after the others, then compared by its pixels.
            cand.resend = bool(sop) and (sop in known_sops or sop in batch_sops)
            if sop:
                batch_sops.add(sop)
            batch_hashes.add(cand.sha256)
            _resolve_identity(cand, into.visit_labels, into.no_burned_in)
            candidates.append((i, cand))
    candidates.sort(key=lambda ic: ic[1].resend)  # stable: file order otherwise
    return outcomes, candidates


def _decode_tasks(
    loc: Location, candidates: list[tuple[int, _Candidate]], ws_locates: bool
) -> list[DecodeTask]:
    """Give each candidate its image code and its decode task: where its readers' copy goes,
    the secret its UIDs come from, whether the worker keeps the original, and whether it runs
    the joint locator (``ws_locates``) on the film."""
    tasks: list[DecodeTask] = []
    for _, cand in candidates:
        cand.code = new_code(12)
        # The readers' copy's UIDs come from a secret drawn for this image alone: nothing
        # in them ties two images of one patient, study or visit together.
        secret = secrets.token_bytes(32)
        out = loc.readers_store / cand.code[:2] / f"{cand.code}.dcm"
        make_readers_folder(out.parent, loc)
        # The worker keeps the original as it decodes it, unless the file came in another
        # form (kept from ``raw`` on commit) or may be a re-sent duplicate (kept if not).
        originals = loc.originals_store
        original = "" if cand.raw is not None or cand.resend else _original_file(originals, cand)
        tasks.append(
            DecodeTask(
                cand.data,
                str(out),
                secret,
                cand.kind,
                str(original),
                locate=ws_locates,
                regions=tuple(cand.regions),
            )
        )
    return tasks


def _commit_decoded(
    ws: ImagesService,
    op: Op,
    into: _Trial,
    decoder: DecodePool | None,
    candidates: list[tuple[int, _Candidate]],
    tasks: list[DecodeTask],
    outcomes: list[FileOutcome | None],
    progress: Progress | None,
    resend: bool,
) -> None:
    """Decode the candidates that are (or are not) re-sends and commit each as soon as it is
    decoded, while the workers go on; each file's outcome goes into its place."""
    ks = [k for k, (_, c) in enumerate(candidates) if c.resend == resend]
    if not ks:
        return
    assert decoder is not None, "a decoding pool is open whenever there are files"
    total = len(outcomes)
    originals_root = ws.store.location.originals_store
    for j, result in decoder.stream([tasks[k] for k in ks]):
        k = ks[j]
        i, cand = candidates[k]
        task = tasks[k]
        if progress:
            progress(i, total, cand.source.name)
        if not result.ok:
            Path(task.out_path).unlink(missing_ok=True)
            outcomes[i] = FileOutcome(cand.source.name, "refused", reason=result.reason)
            continue
        same = _same_image(ws, into.id, cand, Path(task.out_path), result)
        outcomes[i] = same or _commit(
            ws, op, into.code, cand, Path(task.out_path), originals_root, result
        )


def _audit_import(
    ws: ImagesService,
    op: Op,
    into: _Trial,
    total: int,
    report: ImportReport,
    origin: dict[str, Any] | None,
) -> None:
    """The import's own audit row on the trial: the counts, and where the files came from."""
    with op.write() as tx:
        tx.audit(
            "images.import",
            "trial",
            into.code,
            trial_id=into.id,
            new={
                "files": total,
                "imported": report.count("imported"),
                "duplicates": report.count("duplicate"),
                "refused": report.count("refused"),
                **({"skipped": report.count("skipped")} if report.count("skipped") else {}),
                "flagged": sum(1 for f in report.files if f.status == "imported" and f.flags),
                **({"origin": origin} if origin else {}),
            },
        )


def _too_large(size: int, max_bytes: int) -> str:
    """Why a file is over ``--max-mb``: its size in MB with the decimals that show it over the
    limit (never "1.0 MB, over the limit of 1 MB"), and in bytes."""
    limit = max_bytes / 2**20
    for decimals in range(1, 7):
        shown_mb = f"{size / 2**20:.{decimals}f}"
        if float(shown_mb) > limit:
            break
    return (
        f"the file is {shown_mb} MB ({size:,} bytes), over the limit of "
        f"{round(limit, 2):g} MB (--max-mb)"
    )


def _load(src: SourceFile, max_bytes: int = 0) -> tuple[bytes, str] | str:
    """A file's bytes and SHA-256, or why it cannot be read. A file over ``max_bytes`` is
    refused from the size its folder or zip gives, before it is read."""
    if src.problem or src.skipped:
        return src.problem or src.skipped
    if max_bytes and src.size is not None and src.size > max_bytes:
        return _too_large(src.size, max_bytes)
    try:
        data = src.read()
    except Exception as exc:
        return f"cannot read the file: {exc}"
    if max_bytes and len(data) > max_bytes:
        return _too_large(len(data), max_bytes)
    return data, hashlib.sha256(data).hexdigest()


def _examine(
    src: SourceFile,
    loaded: tuple[bytes, str] | str,
    manifest: Manifest | None,
    max_megapixels: float,
) -> tuple[FileOutcome | None, _Candidate | None]:
    if src.skipped:
        return FileOutcome(src.name, "skipped", reason=src.skipped), None
    if isinstance(loaded, str):
        return FileOutcome(src.name, "refused", reason=loaded), None
    data, sha = loaded
    row = manifest.lookup(src.name) if manifest else None
    kind = raster_kind(data)
    # A DICOM dataset stored without the preamble is read as the Part 10 file it would be.
    dicom = None if kind and data[128:132] != b"DICM" else dicom_part10(data)
    if dicom is not None:
        try:
            facts = read_header(dicom, max_megapixels)
        except RefusedFile as exc:
            return FileOutcome(src.name, "refused", reason=str(exc)), None
        problem = _secondary_capture_problem(facts, row)
        if problem:
            return FileOutcome(src.name, "refused", reason=problem), None
        raw = None if dicom is data else data
        return None, _Candidate(src, dicom, sha, "dicom", facts, row, raw=raw)
    if kind is not None:
        if row is None:
            return FileOutcome(
                src.name,
                "refused",
                reason=(
                    f"a {kind} file needs a manifest row (file, patient, visit, date, regions)"
                ),
            ), None
        try:
            check_raster(data, int(max_megapixels * 1e6))
        except Exception as exc:
            return FileOutcome(src.name, "refused", reason=f"unreadable {kind}: {exc}"), None
        return None, _Candidate(src, data, sha, "raster", None, row)
    return FileOutcome(src.name, "refused", reason=("not a DICOM, PNG, JPEG or TIFF file")), None


def _secondary_capture_problem(f: HeaderFacts, row: ManifestRow | None) -> str:
    """Why a Secondary Capture file is refused: it must say it is a hand or foot, or a
    manifest row must. (Single-frame greyscale is the header check's, for every class.)"""
    if f.sop_class != SECONDARY_CAPTURE or row is not None:
        return ""
    if f.body_part in HAND_PARTS or f.body_part in FOOT_PARTS:
        return ""
    part = f"is {shown(f.body_part)}" if f.body_part else "is missing"
    return (
        "a Secondary Capture image is imported only with a body part of the hand or foot "
        f"or a manifest row (its Body Part Examined {part})"
    )


def _resolve_identity(
    c: _Candidate, visit_labels: set[str], no_burned_in: Collection[str] = ()
) -> None:
    """Patient, visit, date and regions from the manifest, else the header; flag the unknown.

    Every flag holds the image for QC. A Secondary Capture is always held (it may be a photo,
    a bone scan or a test pattern); a CR or DX without Burned In Annotation is, unless the
    trial's ``no_burned_in_text`` names its modality."""
    f, m = c.facts, c.manifest
    c.patient_id = (m.patient if m and m.patient else None) or (f.patient_id if f else None)
    lead = formula_lead(c.patient_id) if c.patient_id else None
    if lead:
        # Reads CSVs keep IDs raw: none may be one a spreadsheet runs (scorer.core.cells).
        c.flags.append(
            f"patient ID not taken: it starts with {lead}, which a spreadsheet runs as a formula"
        )
        c.patient_id = None
    visit = (m.visit if m and m.visit else None) or (f.visit if f else None)
    c.when = (m.date if m and m.date else None) or (f.acquisition_date if f else None)
    c.regions = (m.regions if m and m.regions else ()) or (f.regions if f else ())
    if not c.patient_id:
        c.flags.append("patient unknown")
    if visit is None:
        c.flags.append("visit unknown")
    elif visit not in visit_labels:
        c.flags.append(f"visit {visit} is not a visit of this trial")
        visit = None
    c.visit = visit
    if not c.regions:
        what = f" (body part {f.body_part or '?'}, laterality {f.laterality or '?'})" if f else ""
        c.flags.append(f"regions unknown{what}")
    if f is not None:
        secondary = f.sop_class == SECONDARY_CAPTURE
        if secondary:
            c.flags.append(SECONDARY_CAPTURE_FLAG)
        if f.burned_in == "YES":
            c.flags.append("burned-in annotation")
        elif f.burned_in is None and secondary:
            c.flags.append("burned-in annotation unknown (secondary capture)")
        elif f.burned_in is None and RADIOGRAPH_CLASSES[f.sop_class][:2] not in no_burned_in:
            c.flags.append(BURNED_IN_UNKNOWN)
    elif c.kind == "raster":
        c.flags.append("burned-in annotation unknown (scanned image)")


def _ensure_patients(
    ws: ImagesService, op: Op, trial: str, cands: list[_Candidate]
) -> dict[str, str]:
    """Real patient ID -> opaque code, registering new patients (audited, codes only)."""
    wanted = sorted({c.patient_id for c in cands if c.patient_id})
    codes: dict[str, str] = {}
    if not wanted:
        return codes
    with op.write() as tx:
        t = find_trial(tx.session, trial)
        for real in wanted:
            p = repo.patient_by_real_id(tx.session, t, real)
            if p is None:
                p = repo.add_patient(tx.session, t, real, unique_patient_code(tx, t), tx.now)
                tx.audit(
                    "patient.add",
                    "patient",
                    p.code,
                    trial_id=t.id,
                    new={"code": p.code},
                    reason="image import",
                )
            codes[real] = p.code
    return codes


class _TakenMeanwhile(Exception):
    """The file was imported into the trial by another import since this one examined it."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _commit(
    ws: ImagesService,
    op: Op,
    trial: str,
    c: _Candidate,
    reader_copy: Path,
    originals_root: Path,
    decoded: DecodeResult,
) -> FileOutcome:
    loc = ws.store.location
    try:
        # The worker kept the original and hashed the copy it wrote, as it wrote them.
        original = _original_file(originals_root, c)
        if not decoded.original_kept:
            write_durably(original, c.raw if c.raw is not None else c.data)
        qc = "pending" if c.flags else "passed"
        reader_sha = decoded.sha256 or hashlib.sha256(reader_copy.read_bytes()).hexdigest()
        seal_readers_copy(reader_copy, loc)
        with op.write() as tx:
            t = find_trial(tx.session, trial)
            # Another import into the trial may have taken the same file since this one
            # examined it (two coordinators, or a receiver, at once): writes run one at a
            # time, so asking again here is the last word.
            twin = repo.image_by_sha256(tx.session, t.id, c.sha256)
            if twin is not None:
                raise _TakenMeanwhile(twin.code)
            p = repo.patient_by_real_id(tx.session, t, c.patient_id) if c.patient_id else None
            v = repo.visit_by_label(tx.session, t, c.visit) if c.visit else None
            img = repo.add_image(
                tx.session,
                t,
                p,
                v,
                code=c.code,
                sha256=c.sha256,
                sop_uid=c.facts.sop_instance_uid if c.facts else None,
                acquisition_date=c.when.isoformat() if c.when else None,
                reader_path=loc.stored_name(reader_copy),
                original_path=loc.stored_name(original, original=True),
                flags="; ".join(c.flags),
                reader_sha256=reader_sha,
                transfer_syntax=c.facts.transfer_syntax if c.facts else "raster",
                rows=c.facts.rows if c.facts else None,
                columns=c.facts.columns if c.facts else None,
                source_name=c.source.name,
                regions=c.regions,
                now=tx.now,
                qc_state=qc,
                pixel_sha256=decoded.pixel_sha256 or None,
            )
            tx.audit(
                "image.import",
                "image",
                img.code,
                trial_id=t.id,
                new={
                    "patient": p.code if p else None,
                    "visit": c.visit,
                    "regions": list(c.regions),
                    "sha256": c.sha256,
                    "syntax": SUPPORTED_SYNTAXES.get(c.facts.transfer_syntax, "")
                    if c.facts
                    else "raster",
                    "flags": c.flags,
                    "qc": qc,
                    **located_summary(decoded.location),
                },
            )
            if decoded.location is not None:
                record_location(tx.session, img, decoded.location, tx.now)
    except _TakenMeanwhile as exc:
        reader_copy.unlink(missing_ok=True)  # the original is the twin's (same bytes, same name)
        return FileOutcome(
            c.source.name,
            "duplicate",
            exc.code,
            "the same file was imported meanwhile (by another import into this trial)",
        )
    except Exception as exc:
        reader_copy.unlink(missing_ok=True)
        return FileOutcome(c.source.name, "refused", reason=f"not saved: {exc}")
    return FileOutcome(
        c.source.name, "imported", c.code, flags=list(c.flags), regions=list(c.regions), qc=qc
    )


def _same_image(
    ws: ImagesService, trial_id: int, c: _Candidate, reader_copy: Path, decoded: DecodeResult
) -> FileOutcome | None:
    """A re-sent file (its SOP Instance UID is an image's of the trial, its bytes are not):
    a duplicate of that image if its decoded pixels are the same, else refused; None if no
    image has the UID (an earlier file of this import with it was refused), to import it."""
    sop = c.facts.sop_instance_uid if c.facts else None
    if not c.resend or not sop:
        return None
    with ws._ctx.read() as db:
        img = repo.image_by_sop(db, trial_id, sop)
        if img is None:
            return None
        code, known, original = img.code, img.pixel_sha256, img.original_path
    reader_copy.unlink(missing_ok=True)  # either way nothing of this file is kept
    if known is None:  # imported before the pixels' hash was kept: decode the original
        known = _pixel_hash_of(ws.store.location.image_file(original, original=True))
    if known and known == decoded.pixel_sha256:
        return FileOutcome(
            c.source.name,
            "duplicate",
            code,
            f"the same image (SOP Instance UID {sop}, the same pixels) was imported already",
        )
    return FileOutcome(
        c.source.name,
        "refused",
        reason=(
            f"another file with SOP Instance UID {sop} was imported already (image {code}) "
            "with different pixel data"
        ),
    )


def _pixel_hash_of(path: Path) -> str:
    """The decoded pixels' hash of a stored original ("" if it cannot be read)."""
    import io as _io
    import warnings

    import pydicom

    from scorer.imaging.pixels import stored_values

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = path.read_bytes()
            data = dicom_part10(data) or data
            return pixel_hash(stored_values(pydicom.dcmread(_io.BytesIO(data))))
    except Exception:
        return ""


def _remove_orphans(
    ws: ImagesService, readers_root: Path, min_age_s: float = LEFTOVER_AGE_S
) -> int:
    """Delete readers' copies that no image row names: a crash came between writing the copy
    and committing its row. Only old ones, so another workstation's import in flight is safe."""
    with ws._ctx.read() as db:
        known = {Path(p).name for p in repo.reader_paths(db)}
    now = time.time()
    removed = 0
    for f in readers_root.glob("*/*.dcm"):
        try:
            old = now - f.stat().st_mtime > min_age_s
        except OSError:
            continue
        if f.name not in known and old:
            f.chmod(0o600)
            f.unlink(missing_ok=True)
            removed += 1
    return removed
