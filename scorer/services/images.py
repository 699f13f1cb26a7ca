"""Images: import and reissue, QC, masks, reassignment, regions without image, and the films
readers see."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from scorer.core.case_films import CaseFilm
from scorer.core.joints import JointPoint
from scorer.core.json_value import JsonValue
from scorer.core.methods import REGIONS
from scorer.core.worklist import LETTERS
from scorer.services.errors import InvalidInput, NotFound, ScorerError
from scorer.services.joint_positions import checked_points, joint_points, place_points
from scorer.services.lookups import (
    case_state,
    find_trial,
    must_calibrate,
    own_case,
    protocol_of,
    refuse_if_locked,
)
from scorer.services.operation import Op, Service, operation
from scorer.services.reading import apply_missing
from scorer.services.session import new_code
from scorer.services.validation import need_reason
from scorer.store import repository as repo
from scorer.store.schema import (
    ImageRegion,
    MissingRegion,
    Patient,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from scorer.imaging.manifest import Manifest
    from scorer.services.import_report import DecodeLimits, ImportLimits, ImportReport, Progress
    from scorer.services.reissue import ReissueReport


def case_film_key(key: bytes, case_code: str, pixel_sha256: str) -> str:
    """A film's key in the pyramid cache of one case: its pixel data's SHA-256 under the case
    and the store's key (64 lowercase hex digits), so that a hidden re-read's films share no
    key with the original case's (the same pixel data gave them away: the outsider grouped
    the cases by it), while a case shown again finds its pyramids."""
    import hmac

    return hmac.new(
        key, f"film\x1f{case_code}\x1f{pixel_sha256}".encode(), hashlib.sha256
    ).hexdigest()


@dataclass(frozen=True)
class ImageRow:
    """One image of a trial as the coordinator lists it: code, patient code, visit, regions,
    flags, date, size, the source file name (which may identify the patient), whether its
    readers' copy is masked, and its QC state."""

    code: str
    patient: str | None
    visit: str | None
    regions: tuple[str, ...]
    flags: tuple[str, ...]
    acquisition_date: str | None
    rows: int | None
    columns: int | None
    source: str
    masked: bool
    qc: str
    qc_reason: str

    def to_dict(self) -> dict[str, Any]:
        """The row as ``scorer image list --format json`` prints it."""
        return {
            "code": self.code,
            "patient": self.patient,
            "visit": self.visit,
            "regions": list(self.regions),
            "flags": list(self.flags),
            "acquisition_date": self.acquisition_date,
            "rows": self.rows,
            "columns": self.columns,
            "source": self.source,
            "masked": self.masked,
            "qc": self.qc,
            "qc_reason": self.qc_reason,
        }


@dataclass(frozen=True)
class DicomSettings:
    """What the DICOM receiver and puller need of a trial: the calling AE titles it allows,
    and whether it is locked."""

    dicom_senders: tuple[str, ...]
    locked: bool


@dataclass(frozen=True)
class ImagePlace:
    """Where an image belongs: patient code, visit, regions, and the flags still on it."""

    patient: str | None
    visit: str | None
    regions: tuple[str, ...]
    flags: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """As the reassignment's audit row records it."""
        return {
            "patient": self.patient,
            "visit": self.visit,
            "regions": list(self.regions),
            "flags": list(self.flags),
        }


@dataclass(frozen=True)
class CaseShown:
    """A reader's case that showed an image."""

    case: str
    reader: str


@dataclass(frozen=True)
class QcDecision:
    """An image's new QC state and reason, and the cases that showed it until then (an image
    that had passed and now fails), for the coordinator to follow up."""

    image: str
    qc: str
    qc_reason: str
    cases: tuple[CaseShown, ...]


@dataclass(frozen=True)
class CaseImpact:
    """A reader's case that shows an image, as failing the image would touch it: the case's
    progress ("not started", "in progress" or "signed") and the codes of its signed reads of
    the image's visit (their scores were given with the image on screen)."""

    case: str
    reader: str
    status: str
    signed_reads: tuple[str, ...]


@dataclass(frozen=True)
class QcImpact:
    """What failing an image would do, for the coordinator to read before failing it: its QC
    state now and every case that shows it (only a passed image reaches a case)."""

    image: str
    qc: str
    cases: tuple[CaseImpact, ...]

    @property
    def signed_reads(self) -> tuple[str, ...]:
        """Every signed read among the cases, in case order."""
        return tuple(r for c in self.cases for r in c.signed_reads)


@dataclass(frozen=True)
class MaskedImage:
    """An image masked: its new readers' copy's SHA-256 and every rectangle masked on it
    (x, y, width, height)."""

    image: str
    reader_sha256: str
    masks: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class RegionMarked:
    """A region marked as having no usable image: reads changed, and the signed reads left
    as they are (their readers reopen them)."""

    reads_changed: int
    signed_reads_left: tuple[str, ...]


@dataclass(frozen=True)
class RegionWithoutImage:
    """A region of a patient's visit marked as having no usable image, why, and when."""

    patient: str | None
    visit: str | None
    region: str
    reason: str
    at: str


class ImagesService(Service):
    """Everything done to a trial's images, and the films a reader's case shows."""

    #: Audited DICOM network actions (scorer.network): receiving started and stopped, each
    #: association (accepted with what it brought, or refused and why), each pull.
    DICOM_ACTIONS: tuple[str, ...] = (
        "dicom.receive.start",
        "dicom.receive.stop",
        "dicom.association",
        "dicom.pull",
    )

    #: An image's QC states: passed reaches cases, pending (flagged at import) waits for the
    #: coordinator, failed never reaches a case.
    QC_STATES: tuple[str, ...] = ("pending", "passed", "failed")

    # The import decodes files and commits each as it comes, in many transactions of its own.
    @operation("coordinator", write=True, transaction=False)
    def import_images(
        self,
        op: Op,
        /,
        trial: str,
        paths: Sequence[Path],
        manifest: Manifest | None = None,
        progress: Progress | None = None,
        **limits: Unpack[ImportLimits],
    ) -> ImportReport:
        """Import files, folders and zips (coordinator); every file's outcome is reported.

        See :mod:`scorer.services.intake` for the steps; ``limits`` pass to it (workers, timeout_s,
        memory_mb, max_megapixels)."""
        from scorer.services.intake import import_images

        return import_images(self, op, trial, paths, manifest, progress, **limits)

    # Every copy is written again by the decode workers before the one transaction that
    # changes the image rows: the writing stays outside any transaction.
    @operation("coordinator", write=True, transaction=False)
    def reissue_readers_copies(
        self,
        op: Op,
        /,
        trial: str,
        progress: Progress | None = None,
        **limits: Unpack[DecodeLimits],
    ) -> ReissueReport:
        """Write every readers' copy of a trial again from its original under the current
        rules (coordinator): the current keep-list, UIDs drawn for each image alone, its masks
        painted again; the image rows and one audit row per image in one transaction, then
        the old copies removed. See :mod:`scorer.services.reissue`; ``limits`` pass to it (workers,
        timeout_s, memory_mb)."""
        from scorer.services.reissue import reissue

        return reissue(self, op, trial, progress, **limits)

    @operation("coordinator", write=True)
    def audit_dicom(
        self, op: Op, trial: str, action: str, details: Mapping[str, JsonValue]
    ) -> None:
        """Record a DICOM network action on a trial (coordinator): who called, from where,
        what came of it. Instances themselves are audited by the import that takes them."""
        if action not in self.DICOM_ACTIONS:
            raise InvalidInput(f"unknown DICOM action {action!r}")
        t = find_trial(op.db, trial)
        op.tx.audit(action, "trial", trial, trial_id=t.id, new=dict(details))

    @operation("coordinator")
    def dicom_settings(self, op: Op, trial: str) -> DicomSettings:
        """What the DICOM receiver and puller need of a trial (coordinator): the calling AE
        titles it allows, and whether it is locked (a locked trial takes no images)."""
        t = find_trial(op.db, trial)
        p = protocol_of(t)
        return DicomSettings(tuple(p.dicom_senders), bool(t.locked))

    @operation("coordinator")
    def list_images(self, op: Op, trial: str) -> list[ImageRow]:
        """The trial's images for the coordinator: code, patient code, visit, regions, flags
        and the source file name (which may identify the patient)."""
        db = op.db
        t = find_trial(db, trial)
        out = []
        for img in repo.images_of(db, t):
            p = db.get(Patient, img.patient_id) if img.patient_id else None
            v = repo.visit_by_id(db, img.visit_id) if img.visit_id else None
            out.append(
                ImageRow(
                    code=img.code,
                    patient=p.code if p else None,
                    visit=v.label if v else None,
                    regions=tuple(sorted(r.region for r in img.regions)),
                    flags=tuple(f for f in img.flags.split("; ") if f),
                    acquisition_date=img.acquisition_date,
                    rows=img.rows,
                    columns=img.columns,
                    source=img.source_name,
                    masked=bool(img.masks and img.masks != "[]"),
                    qc=img.qc_state,
                    qc_reason=img.qc_reason,
                )
            )
        return out

    # Rendering the film is long work: it runs between a read and the write of the event.
    @operation("coordinator", "admin", write=True, transaction=False)
    def export_image_png(
        self,
        op: Op,
        image_code: str,
        out: Path,
        window: str | None = None,
        max_size: int | None = None,
    ) -> Path:
        """Write exactly what a reader sees of an image by default (blinded copy, bone bright,
        default window; or ``window`` "C,W") to a PNG, for quality control and teaching."""
        from scorer.imaging.radiograph import open_radiograph
        from scorer.imaging.render import export_png
        from scorer.imaging.windowing import parse_window

        try:
            voi = parse_window(window) if window else None
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
        path, sha = self._reader_copy(op, image_code)
        try:
            image = open_radiograph(path, cache_dir=self.cache_dir, content_sha256=sha)
            written = export_png(image, out, voi=voi, max_size=max_size)
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"image {image_code} cannot be exported: {exc}") from exc
        with op.write() as tx:
            tx.event("export", image_code, {"what": "image png", "window": window}, op.user.id)
        return written

    # Decoding and scaling the film is long work: it runs after the read, outside it.
    @operation("coordinator", transaction=False)
    def render_image(
        self, op: Op, image_code: str, max_size: int = 1600
    ) -> tuple[npt.NDArray[np.uint8], tuple[int, ...]]:
        """The readers' copy of an image as the display draws it (8-bit, bone bright, default
        window), scaled so its longer side is at most ``max_size``, with the stored size:
        ``(pixels, (rows, columns))``. For the coordinator's quality control (masking)."""
        from scorer.imaging.radiograph import open_radiograph
        from scorer.imaging.render import render_full

        path, sha = self._reader_copy(op, image_code)
        try:
            image = open_radiograph(path, cache_dir=self.cache_dir, content_sha256=sha)
            return render_full(image, max_size), tuple(image.shape)
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"image {image_code} cannot be shown: {exc}") from exc

    # Reading the file is long work for a big film: after the read, outside it.
    @operation("coordinator", transaction=False)
    def image_file(self, op: Op, image_code: str) -> bytes:
        """The readers' copy of an image as its DICOM file's bytes (coordinator): the desk's
        viewer opens it with the reading window's display pipeline (window/level, zoom,
        invert), locally or over the server."""
        path, _sha = self._reader_copy(op, image_code)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"image {image_code} cannot be read: {exc}") from exc

    def _reader_copy(self, op: Op, image_code: str) -> tuple[Path, str]:
        """The readers' copy of an image: its file and SHA-256 (NotFound for an unknown code)."""
        with op.read() as db:
            img = repo.image_by_code(db, image_code)
            if img is None:
                raise NotFound(f"no image {image_code!r}")
            return self.store.location.image_file(img.reader_path), str(img.reader_sha256)

    @property
    def cache_dir(self) -> Path:
        """Local, per-workstation cache of image pyramids (never on the shared store)."""
        return self.store.location.data_dir / "cache"

    # Delivering the films writes files: after the read, outside any transaction.
    @operation("reader", "adjudicator", transaction=False)
    def case_images(self, op: Op, case_code: str) -> dict[str, list[CaseFilm]]:
        """The films of one of the reader's cases, by visit letter (A, B, C): the film's name
        in this case, regions covered, the path of the case's own file of it and its cache key
        (:func:`case_film_key`: its pixel data's under the case). The files are delivered here
        (:mod:`scorer.imaging.delivery`): UIDs and names from (case, image), a neutral time,
        owner-only, so nothing in them, their names or their times tells the visit, its date,
        the patient, or another case that shows the same film."""
        from scorer.imaging.delivery import (
            deliver_film,
            film_name,
            prune_cases,
            remove_other_films,
        )

        with op.read() as db:
            c, _, t = own_case(op.user, db, case_code)
            must_calibrate(db, t, op.user, c)
            films: list[tuple[str, str, list[str], Path, str, int]] = []
            visits = json.loads(c.visits)
            for i, label in enumerate(visits):
                v = repo.visit_by_label(db, t, label)
                assert v is not None
                films += [
                    (
                        LETTERS[i],
                        img.code,
                        sorted(r.region for r in img.regions),
                        self.store.location.image_file(img.reader_path),
                        img.reader_sha256 or "",
                        img.id,
                    )
                    for img in repo.images_of_visit(db, c.patient_id, v.id)
                ]
            placed = joint_points(db, [f[5] for f in films])
        folder = self.films_dir / case_code
        key = self.store.key
        out: dict[str, list[CaseFilm]] = {LETTERS[i]: [] for i in range(len(visits))}
        names: set[str] = set()
        for letter, image_code, regions, stored, stored_sha, image_id in films:
            name = film_name(key, case_code, image_code)
            target = folder / f"{name}.dcm"
            names.add(target.name)
            known = self._ctx.delivered.get(str(target))
            pixel_sha = known[1] if known and known[0] == stored_sha else ""
            if not pixel_sha or not target.is_file():
                try:
                    pixel_sha = deliver_film(stored, target, key, case_code, image_code)
                    self._ctx.delivered[str(target)] = (stored_sha, pixel_sha)
                except (OSError, ValueError):
                    # Shown as a film that cannot be opened; the rest of the case still shows.
                    target.unlink(missing_ok=True)
                    pixel_sha = stored_sha
            out[letter].append(
                CaseFilm(
                    name,
                    tuple(regions),
                    str(target),
                    case_film_key(key, case_code, pixel_sha),
                    placed.get(image_id, ()),
                )
            )
        remove_other_films(folder, names)
        prune_cases(self.films_dir, folder, self.keep_cases)
        return out

    @operation("coordinator", "admin")
    def joint_positions(self, op: Op, image_code: str) -> tuple[JointPoint, ...]:
        """The joint positions placed on an image (desk QC), in (region, joint) order."""
        img = repo.image_by_code(op.db, image_code)
        if img is None:
            raise NotFound(f"no image {image_code!r}")
        return joint_points(op.db, [img.id]).get(img.id, ())

    @operation("coordinator", write=True)
    def place_image_joints(self, op: Op, image_code: str, points: Sequence[JointPoint]) -> int:
        """Place joints on an image (coordinator, desk QC): each point replaces its joint's
        position, the others stay. Every point is checked first (region shown by the image,
        joint of that region, x and y on the film, a known source); audited, one event per
        call. Returns how many were placed."""
        img = repo.image_by_code(op.db, image_code)
        if img is None:
            raise NotFound(f"no image {image_code!r}")
        t = repo.trial_by_id(op.db, img.trial_id)
        refuse_if_locked(t)
        checked = checked_points(img, points, f"image {img.code}")
        place_points(op.db, img, checked, op.now)
        op.tx.audit(
            "image.joints",
            "image",
            img.code,
            trial_id=t.id,
            new={
                "points": len(checked),
                "regions": sorted({p.region for p in checked}),
                "sources": sorted({p.source for p in checked}),
            },
        )
        return len(checked)

    #: How many cases' delivered films are kept (the most recently shown): a workstation's
    #: few; a server, which delivers for every reader at once, sets many more.
    keep_cases: int = 16

    #: Whether the decode workers run the automatic joint locator on every film imported
    #: (the import benchmark turns it off to show what it costs).
    locate_joints: bool = True

    @property
    def films_dir(self) -> Path:
        """Where the films of the readers' cases are delivered on this workstation (local,
        owner-only, beside the pyramid cache): a folder of this database's own, named from its
        URL under its key, so two databases used on one workstation never share (or prune)
        each other's case folders, and the name tells nothing of either."""
        import hmac

        loc = self.store.location
        tag = hmac.new(self.store.key, f"films\x1f{loc.url}".encode(), hashlib.sha256)
        return loc.data_dir / "films" / tag.hexdigest()[:16]

    @operation("coordinator", write=True)
    def reassign_image(
        self,
        op: Op,
        image_code: str,
        reason: str,
        patient: str | None = None,
        visit: str | None = None,
        regions: Sequence[str] | None = None,
    ) -> ImagePlace:
        """Move an image to another patient (code), visit (label) or regions, with a reason;
        the flags it resolves are cleared. Every reader's case follows at once."""
        need_reason(reason)
        if patient is None and visit is None and regions is None:
            raise InvalidInput("name the patient, the visit or the regions to assign")
        img = repo.image_by_code(op.db, image_code)
        if img is None:
            raise NotFound(f"no image {image_code!r}")
        t = repo.trial_by_id(op.db, img.trial_id)
        refuse_if_locked(t)
        old = image_place(op.db, img).to_dict()
        flags = [f for f in img.flags.split("; ") if f]
        if patient is not None:
            p = repo.patient_by_code(op.db, t, patient)
            if p is None:
                raise NotFound(f"no patient {patient!r} in trial {t.code}")
            img.patient_id = p.id
            flags = [f for f in flags if f != "patient unknown"]
        if visit is not None:
            v = repo.visit_by_label(op.db, t, visit)
            if v is None:
                raise NotFound(f"no visit {visit!r} in trial {t.code}")
            img.visit_id = v.id
            flags = [f for f in flags if not f.startswith("visit ")]
        if regions is not None:
            wanted = sorted({r.strip().upper() for r in regions if r.strip()})
            bad = [r for r in wanted if r not in REGIONS]
            if not wanted or bad:
                raise InvalidInput(f"regions are some of {', '.join(REGIONS)}")
            img.regions.clear()
            op.db.flush()
            for r in wanted:
                img.regions.append(ImageRegion(region=r))
            # A region the film no longer shows keeps no joints (they would be drawn, and
            # refused in every later correction).
            repo.drop_joint_positions(op.db, img, wanted)
            flags = [f for f in flags if not f.startswith("regions unknown")]
        img.flags = "; ".join(flags)
        if patient is not None or regions is not None:
            # Registration's proposals on this film, and those it gave the others, were made
            # for its patient and regions as they were: gone until the next registration.
            repo.drop_proposals_involving(op.db, img)
        op.db.flush()
        new = image_place(op.db, img)
        op.tx.audit(
            "image.reassign",
            "image",
            img.code,
            trial_id=t.id,
            old=old,
            new=new.to_dict(),
            reason=reason,
        )
        return new

    @operation("coordinator", write=True)
    def image_qc(self, op: Op, image_code: str, state: str, reason: str = "") -> QcDecision:
        """Set an image's QC state (coordinator), audited with the reason in the same
        transaction. ``passed`` lets it reach its patient's cases; ``failed`` (a reason is
        required) keeps it from every case for good, and the cases that showed it until then
        (it had passed) are listed (``cases``: code and reader) for the coordinator to follow
        up."""
        if state not in ("passed", "failed"):
            raise InvalidInput(f"an image's QC is passed or failed, not {state!r}")
        if state == "failed" or reason.strip():
            need_reason(reason)
        img = repo.image_by_code(op.db, image_code)
        if img is None:
            raise NotFound(f"no image {image_code!r}")
        t = repo.trial_by_id(op.db, img.trial_id)
        refuse_if_locked(t)
        if img.qc_state == "failed":
            raise InvalidInput(
                f"image {image_code} failed QC ({img.qc_reason}): a failed image stays "
                "failed; import a better film"
            )
        if img.qc_state == state:
            raise InvalidInput(f"image {image_code} has QC {state} already")
        cases: list[CaseShown] = []  # that showed it: only a passed image reached any
        if img.qc_state == "passed" and img.patient_id is not None and img.visit_id:
            v = repo.visit_by_id(op.db, img.visit_id)
            assert v is not None
            held = repo.cases_showing(op.db, img.patient_id, v.label)
            cases = [CaseShown(c, u) for c, u in held]
        old = {"qc": img.qc_state, "qc_reason": img.qc_reason}
        img.qc_state = state
        img.qc_reason = reason.strip()
        op.tx.audit(
            "image.qc",
            "image",
            img.code,
            trial_id=t.id,
            old=old,
            new={"qc": state, **({"cases": [c.case for c in cases]} if cases else {})},
            reason=reason.strip(),
        )
        return QcDecision(img.code, state, img.qc_reason, tuple(cases))

    @operation("coordinator")
    def qc_impact(self, op: Op, image_code: str) -> QcImpact:
        """What failing an image would do (coordinator; changes nothing): the cases that show
        it, each with its reader, progress and signed reads of the image's visit, as
        :meth:`image_qc` would list them after the image fails."""
        img = repo.image_by_code(op.db, image_code)
        if img is None:
            raise NotFound(f"no image {image_code!r}")
        if img.qc_state != "passed" or img.patient_id is None or not img.visit_id:
            return QcImpact(img.code, img.qc_state, ())
        v = repo.visit_by_id(op.db, img.visit_id)
        assert v is not None
        out = []
        for code, reader in repo.cases_showing(op.db, img.patient_id, v.label):
            c = repo.case_by_code(op.db, code)
            assert c is not None
            reads = [r for r in repo.reads_of_case(op.db, c) if r.status != "void"]
            signed = tuple(r.code for r in reads if r.visit_id == v.id and r.status == "signed")
            status = case_state([r.status for r in reads], c.visits)
            out.append(CaseImpact(code, reader, status, signed))
        return QcImpact(img.code, img.qc_state, tuple(out))

    # Painting the rectangles writes a new copy: after a read, before the write of its row.
    @operation("coordinator", write=True, transaction=False)
    def mask_image(
        self,
        op: Op,
        image_code: str,
        rectangles: Sequence[Sequence[int]],
        reason: str,
    ) -> MaskedImage:
        """Mask burned-in text: the rectangles (x, y, width, height in stored pixels) are
        painted black on a new readers' copy; the original is untouched. Audited with the
        rectangles and both copies' SHA-256."""
        from scorer.imaging.masking import MaskError, mask_rectangles
        from scorer.services.intake import seal_readers_copy

        need_reason(reason)
        rects = [tuple(int(v) for v in r) for r in rectangles]
        if not rects or any(len(r) != 4 for r in rects):
            raise InvalidInput("give each rectangle as x, y, width, height")
        with op.read() as db:
            img = repo.image_by_code(db, image_code)
            if img is None:
                raise NotFound(f"no image {image_code!r}")
            refuse_if_locked(repo.trial_by_id(db, img.trial_id))
            source = self.store.location.image_file(img.reader_path)
        target = source.with_name(f"{new_code(16)}.dcm")
        try:
            mask_rectangles(source, target, rects)
        except MaskError as exc:
            raise InvalidInput(f"image {image_code}: {exc}") from exc
        except OSError as exc:
            raise ScorerError(f"image {image_code} cannot be masked: {exc}") from exc
        digest = hashlib.sha256(target.read_bytes()).hexdigest()
        seal_readers_copy(target, self.store.location)
        try:
            with op.write() as tx:
                img = repo.image_by_code(tx.session, image_code)
                assert img is not None
                old = {"reader_sha256": img.reader_sha256, "masks": img.masks or "[]"}
                masks = json.loads(img.masks or "[]") + [list(r) for r in rects]
                img.reader_path = self.store.location.stored_name(target)
                img.reader_sha256 = digest
                img.masks = json.dumps(masks)
                img.flags = "; ".join(
                    f for f in img.flags.split("; ") if f and not f.startswith("burned-in")
                )
                tx.audit(
                    "image.mask",
                    "image",
                    img.code,
                    trial_id=img.trial_id,
                    old=old,
                    new={"reader_sha256": digest, "rectangles": [list(r) for r in rects]},
                    reason=reason,
                )
        except BaseException:
            target.chmod(0o600)
            target.unlink(missing_ok=True)
            raise
        return MaskedImage(image_code, digest, tuple(tuple(int(v) for v in m) for m in masks))

    @operation("coordinator", write=True)
    def mark_region_missing(
        self, op: Op, trial: str, patient: str, visit: str, region: str, reason: str
    ) -> RegionMarked:
        """A region of a patient's visit has no usable image: every reader's read of that visit
        gets the region's areas marked not assessable ("not visible"), now and when reads
        start later. Signed reads are left as they are and listed (their readers reopen them).
        """
        need_reason(reason)
        region = region.strip().upper()
        if region not in REGIONS:
            raise InvalidInput(f"a region is one of {', '.join(REGIONS)}")
        t = find_trial(op.db, trial)
        refuse_if_locked(t)
        p = repo.patient_by_code(op.db, t, patient)
        v = repo.visit_by_label(op.db, t, visit)
        if p is None or v is None:
            raise NotFound(f"no patient {patient!r} or visit {visit!r} in trial {trial}")
        if repo.missing_region(op.db, p.id, v.id, region) is not None:
            raise InvalidInput(f"{region} of {patient} at {visit} is marked already")
        op.db.add(
            MissingRegion(
                trial_id=t.id,
                patient_id=p.id,
                visit_id=v.id,
                region=region,
                reason=reason.strip(),
                created_by=op.user.user_id,
                created_at=op.now,
            )
        )
        op.tx.audit(
            "region.missing",
            "patient",
            p.code,
            trial_id=t.id,
            new={"visit": v.label, "region": region},
            reason=reason,
        )
        changed: list[str] = []
        skipped: list[str] = []
        for r in repo.reads_of_trial(op.db, t):
            if r.patient_id != p.id or r.visit_id != v.id or r.status == "void":
                continue
            if r.status == "signed":
                skipped.append(r.code)
                continue
            apply_missing(op.tx, r, [region], reason)
            changed.append(r.code)
        return RegionMarked(len(changed), tuple(skipped))

    @operation("coordinator", "monitor")
    def missing_regions(self, op: Op, trial: str) -> list[RegionWithoutImage]:
        """The regions of a trial's visits marked as having no usable image: patient, visit,
        region, reason and when."""
        db = op.db
        t = find_trial(db, trial)
        out = []
        for m in repo.missing_regions_of(db, t):
            p = db.get(Patient, m.patient_id)
            v = repo.visit_by_id(db, m.visit_id)
            out.append(
                RegionWithoutImage(
                    patient=p.code if p else None,
                    visit=v.label if v else None,
                    region=m.region,
                    reason=m.reason,
                    at=m.created_at,
                )
            )
        return out


def image_place(db: Any, img: Any) -> ImagePlace:
    """Where an image belongs now, as its reassignment reports and audits it."""
    p = db.get(Patient, img.patient_id) if img.patient_id else None
    v = repo.visit_by_id(db, img.visit_id) if img.visit_id else None
    return ImagePlace(
        patient=p.code if p else None,
        visit=v.label if v else None,
        regions=tuple(sorted(r.region for r in img.regions)),
        flags=tuple(f for f in img.flags.split("; ") if f),
    )
