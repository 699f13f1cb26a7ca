"""Exchange: reads CSVs in and out, totals, the agreement report, audit exports and the sponsor's
package."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from scorer.core.cells import csv_row, csv_text
from scorer.core.json_value import JsonValue
from scorer.core.methods import builtin_methods, get_method
from scorer.core.reads import Read as CoreRead
from scorer.core.readscsv import ReadsCsvError, format_reads_csv, parse_reads_csv
from scorer.services.calibration import CalibrationService
from scorer.services.errors import InvalidInput, ScorerError
from scorer.services.lookups import (
    chain_head,
    csv_reads,
    find_trial,
    lock_info,
    protocol_of,
    refuse_if_locked,
    rules_of,
    unique_patient_code,
)
from scorer.services.operation import Context, Op, Service, operation
from scorer.services.oversight import shown_entity_id, trail_text
from scorer.services.validation import check_username
from scorer.store import repository as repo
from scorer.store.database import Session

if TYPE_CHECKING:
    from scorer.reports.document import Document


#: A reads import commits in batches of whole reads, each closed once it has taken this long
#: (or holds READS_BATCH_MAX reads): a reader's save waits at most about one batch.
READS_BATCH_S = 0.25
READS_BATCH_MAX = 2000
#: Between two batches on SQLite the write lock stays free this long: a writer waiting for it
#: polls (every 100 ms at most, SQLite's busy handler), it does not queue as on PostgreSQL.
READS_BATCH_PAUSE_S = 0.12

#: Called with (reads done, reads in the file, ""): done counts reads added and reads found
#: already there.
ReadsProgress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class ReadsImported:
    """What a reads import did: reads added, reads already there with the same content
    (skipped: a re-run after an interruption), and the batches it committed."""

    added: int
    already: int
    batches: int


def same_read(a: CoreRead, b: CoreRead) -> bool:
    return replace(a, read_id="") == replace(b, read_id="")


def total_cell(value: float | None) -> str:
    """A total in a CSV cell: integers as integers, scaled totals to 6 places, missing empty."""
    if value is None:
        return ""
    return f"{value:.0f}" if abs(value - round(value)) < 1e-9 else f"{value:.6f}"


def to_json_text(doc: Document) -> str:
    from scorer.reports.document import to_json

    return str(to_json(doc))


@dataclass(frozen=True)
class ReadsManifest:
    """What a reads export carries beside it (``reads.csv.manifest.json``): the trial, its lock
    signature when locked, the protocol settings, the audit head and the CSV's SHA-256 —
    what `scorer report endpoints` checks before it uses an export."""

    kind: ClassVar[str] = "scorer reads export"
    trial: str
    sha256: str
    blinded: bool
    locked: bool
    lock: dict[str, JsonValue] | None  # the lock's signature: id, by, at, meaning, hash
    protocol: dict[str, JsonValue]  # Protocol.to_dict()
    audit_head: dict[str, JsonValue]  # rows, MAC
    exported_by: str
    exported_at: str

    def to_dict(self) -> dict[str, JsonValue]:
        """The manifest as written to its JSON file ("kind" first, then the fields in order)."""
        return {"kind": self.kind, **asdict(self)}


class ExchangeService(Service):
    """Reads in and out, totals, reports and the transfer package, each export audited."""

    def __init__(self, ctx: Context, calibration: CalibrationService) -> None:
        super().__init__(ctx)
        self._calibration = calibration

    @operation("coordinator", write=True, transaction=False)
    def import_reads(
        self,
        op: Op,
        trial: str,
        data: bytes | str,
        source: str = "",
        progress: ReadsProgress | None = None,
    ) -> ReadsImported:
        """Import a reads CSV (spec §9) into a trial: the whole file checked first, then
        committed in batches; a re-run skips the reads already imported.

        Nothing is written unless every read passes (its trial, method and reader, and no read
        ID already there with other content). The reads then commit in batches of whole reads,
        each audited in its own short transaction, so a reader's save waits at most one batch;
        an import interrupted part-way is finished by running it again."""
        try:
            reads = parse_reads_csv(data, builtin_methods())
        except ReadsCsvError as exc:
            raise InvalidInput(f"{source or 'the file'} is not a valid reads CSV:\n{exc}") from exc
        raw = data.encode("utf-8") if isinstance(data, str) else data
        digest = hashlib.sha256(raw).hexdigest()
        name = Path(source).name if source else ""
        with op.read() as db:
            there = self._check_reads(db, trial, reads)
        pending = [r for r in reads if r.read_id not in there]
        already, added, batches = len(there), 0, 0
        pause = READS_BATCH_PAUSE_S if self.store.engine.dialect.name == "sqlite" else 0.0
        while pending:
            if batches:
                # SQLite has no queue for its write lock: a writer waiting for it polls, so the
                # lock is left free long enough for one poll before the next batch takes it.
                time.sleep(pause)
            try:
                done, same = self._import_batch(op, trial, pending, batches + 1, digest, name)
            except ScorerError as exc:
                if not batches:
                    raise
                raise type(exc)(
                    f"{exc}\n({added} read(s) were imported in {batches} batch(es) before "
                    f"this; run the import again to continue: it skips what is there)"
                ) from exc
            pending = pending[done + same :]
            added, already, batches = added + done, already + same, batches + (done > 0)
            if progress is not None:
                progress(added + already, len(reads), "")
        with op.write() as tx:
            t = find_trial(tx.session, trial)
            tx.audit(
                "reads.import",
                "trial",
                trial,
                trial_id=t.id,
                new={
                    "reads": added,
                    "rows": sum(len(r.scores) for r in reads),
                    "sha256": digest,
                    "source": name,
                    "batches": batches,
                    "already": already,
                },
            )
        return ReadsImported(added=added, already=already, batches=batches)

    @staticmethod
    def _check_reads(db: Session, trial: str, reads: list[CoreRead]) -> set[str]:
        """import_reads' check of the whole file, read-only: every read's trial, method and
        reader account name, and every read ID already there. Returns the read IDs already
        there with the same content; refuses (InvalidInput) anything else."""
        t = find_trial(db, trial)
        refuse_if_locked(t)
        for r in reads:
            if r.trial != trial:
                raise InvalidInput(f"read {r.read_id} belongs to trial {r.trial!r}, not {trial!r}")
            if r.method not in t.methods.split(","):
                raise InvalidInput(f"trial {trial} is not scored with {r.method}")
        first_read = {r.reader: r.read_id for r in reversed(reads)}
        for reader, read_id in sorted(first_read.items()):
            if repo.user_by_name(db, reader) is None:
                # A new reader becomes an account: the same user ID rules as `user add`.
                try:
                    check_username(reader)
                except InvalidInput as exc:
                    raise InvalidInput(
                        f"read {read_id}: the reader {reader!r} cannot be an account: {exc}"
                    ) from exc
        there: set[str] = set()
        for r in reads:
            existing = repo.read_by_code(db, r.read_id)
            if existing is not None:
                if not same_read(repo.to_core_read(db, existing, real_ids=True), r):
                    raise InvalidInput(f"read {r.read_id} exists with other content")
                there.add(r.read_id)
        return there

    def _import_batch(
        self, op: Op, trial: str, pending: list[CoreRead], batch: int, digest: str, name: str
    ) -> tuple[int, int]:
        """One batch of import_reads in its own write transaction: reads from the front of
        ``pending`` until the batch has taken READS_BATCH_S (or READS_BATCH_MAX reads), audited
        with their read IDs. Returns (reads added, reads found already there with the same
        content: another import's meanwhile)."""
        started = time.monotonic()
        ids: list[str] = []
        same = 0
        with op.write() as tx:
            t = find_trial(tx.session, trial)
            refuse_if_locked(t)
            for r in pending:
                if ids and (
                    len(ids) >= READS_BATCH_MAX or time.monotonic() - started >= READS_BATCH_S
                ):
                    break
                existing = repo.read_by_code(tx.session, r.read_id)
                if existing is not None:
                    if not same_read(repo.to_core_read(tx.session, existing, real_ids=True), r):
                        raise InvalidInput(f"read {r.read_id} exists with other content")
                    same += 1
                    continue
                repo.import_read(
                    tx,
                    t,
                    r,
                    unique_patient_code(tx, t)
                    if repo.patient_by_real_id(tx.session, t, r.patient) is None
                    else "",
                )
                ids.append(r.read_id)
            if ids:
                tx.audit(
                    "reads.import.batch",
                    "trial",
                    trial,
                    trial_id=t.id,
                    new={"batch": batch, "reads": ids, "sha256": digest, "source": name},
                )
        return len(ids), same

    @operation("coordinator", write=True)
    def export_reads(self, op: Op, trial: str, blinded: bool = False) -> str:
        """The trial's reads as the spec's CSV (coordinator); audited with the chain head."""
        return self._export_reads(op, trial, blinded)

    @staticmethod
    def _export_reads(op: Op, trial: str, blinded: bool) -> str:
        """export_reads inside an operation's write transaction."""
        tx = op.tx
        t = find_trial(tx.session, trial)
        reads = csv_reads(tx.session, t, real_ids=not blinded)
        text = format_reads_csv(reads)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        tx.audit(
            "reads.export",
            "trial",
            trial,
            trial_id=t.id,
            new={"reads": len(reads), "sha256": digest, "blinded": blinded},
        )
        tx.event("export", trial, {"what": "reads", "sha256": digest}, op.user.id, t.id)
        return text

    @operation("coordinator", write=True)
    def export_reads_with_manifest(
        self, op: Op, trial: str, blinded: bool = False
    ) -> tuple[str, ReadsManifest]:
        """The reads CSV and its manifest: trial, lock signature (when locked), protocol
        settings, the audit head and the CSV's SHA-256 — what `scorer report endpoints`
        checks before it uses an export."""
        text = self._export_reads(op, trial, blinded)
        db = op.db
        t = find_trial(db, trial)
        manifest = ReadsManifest(
            trial=trial,
            sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
            blinded=blinded,
            locked=bool(t.locked),
            lock=lock_info(db, t),
            protocol=protocol_of(t).to_dict(),
            audit_head=chain_head(db, t),
            exported_by=op.user.username,
            exported_at=op.now,
        )
        return text, manifest

    @operation("coordinator", write=True, transaction=False)
    def export_totals(self, op: Op, trial: str) -> str:
        """Per patient and reader: status totals per visit (mTSS, erosion, JSN) and the change
        from the first to the last visit, as CSV; audited with the audit head."""
        import csv
        import io

        from scorer.core.totals import change_totals, status_totals

        # Exports read in one transaction and record themselves in a short write of their own:
        # building the file never holds the lock readers' saves need.
        with op.read() as db:
            t = find_trial(db, trial)
            proto = protocol_of(t)
            method = get_method(proto.methods[0])
            rules = rules_of(proto)
            labels = [v.label for v in proto.visits] or [v.label for v in t.visits]
            by: dict[tuple[str, str, str], dict[str, CoreRead]] = {}
            for r in repo.reads_of_trial(db, t):
                if r.status != "signed" or r.method != method.id:
                    continue
                core = repo.to_core_read(db, r, real_ids=True)
                by.setdefault((core.patient, core.reader, core.read_type), {})[core.visit] = core
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(
            [
                "trial",
                "patient",
                "reader",
                "read_type",
                "visit",
                "mtss",
                "erosion",
                "jsn",
                "change_from",
                "change_to",
                "change_mtss",
                "change_erosion",
                "change_jsn",
            ]
        )
        for (patient, reader, read_type), visits in sorted(by.items()):
            present = [lbl for lbl in labels if lbl in visits]
            ch = None
            if len(present) >= 2:
                ch = change_totals(visits[present[0]], visits[present[-1]], method, rules)
            for lbl in present:
                st = status_totals(visits[lbl], method, rules)
                # IDs and codes as text a spreadsheet never runs (scorer.core.cells); the
                # totals are numbers, written as numbers, untouched.
                w.writerow(
                    [
                        *csv_row([trial, patient, reader, read_type, lbl]),
                        total_cell(st.total),
                        total_cell(st.by_feature.get("ERO")),
                        total_cell(st.by_feature.get("JSN")),
                        csv_text(present[0]) if ch else "",
                        csv_text(present[-1]) if ch else "",
                        total_cell(ch.total) if ch else "",
                        total_cell(ch.by_feature.get("ERO")) if ch else "",
                        total_cell(ch.by_feature.get("JSN")) if ch else "",
                    ]
                )
        text = out.getvalue()
        self._audit_export(op, trial, "totals", text)
        return text

    @operation("coordinator", "monitor", "admin", write=True, transaction=False)
    def export_audit(self, op: Op) -> str:
        """The whole audit trail as CSV (every row, with its MAC); audited itself. A monitor's
        copy leaves out what would tie a case to a patient or a visit (the worklists'
        randomisation inputs): their rows' MACs then cover more than the CSV shows."""
        import csv
        import io

        blind = op.user.role == "monitor"
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(
            [
                "seq",
                "at",
                "username",
                "action",
                "entity",
                "entity_id",
                "old",
                "new",
                "reason",
                "mac",
            ]
        )
        with op.read() as db:  # then the export is recorded in a write of its own
            for a in repo.audit_rows(db):
                # Every column but seq is text, written so a spreadsheet never runs it
                # (scorer.core.cells): a reason "-2" is written '-2.
                w.writerow(
                    [
                        a.seq,
                        *csv_row(
                            [
                                a.at,
                                a.username,
                                a.action,
                                a.entity,
                                shown_entity_id(a.entity, a.entity_id, blind),
                                trail_text(a.action, a.old, blind, entity=a.entity),
                                trail_text(a.action, a.new, blind, entity=a.entity),
                                a.reason,
                                a.mac,
                            ]
                        ),
                    ]
                )
        text = out.getvalue()
        self._audit_export(op, None, "audit trail", text)
        return text

    @operation("coordinator", "monitor", write=True, transaction=False)
    def agreement_report(self, op: Op, trial: str) -> Document:
        """The agreement report (a :class:`scorer.reports.document.Document`) of the trial's
        reads exactly as `scorer export reads --blinded` writes them, with calibration."""
        from scorer.core.progression import parse_threshold
        from scorer.reports.agreement_report import agreement_document
        from scorer.reports.analysis import AnalysisError, AnalysisOptions
        from scorer.reports.reads_columns import read_reads

        # The reads are read in one transaction, the statistics run outside any, and the
        # export is recorded in a short write of its own.
        with op.read() as db:
            t = find_trial(db, trial)
            proto = protocol_of(t)
            text = format_reads_csv(csv_reads(db, t, real_ids=False))
            head = chain_head(db, t)
            lock = lock_info(db, t)
        # The text is what `scorer export reads --blinded` writes: the columns' reading takes
        # it (and gives the same reads as the row-by-row parse_reads_csv, a test holds).
        data = text.encode("utf-8")
        reads = read_reads(data, builtin_methods())
        options = AnalysisOptions(
            method=proto.methods[0],
            sdc_level=proto.sdc_level,
            rules=rules_of(proto),
            thresholds=tuple(parse_threshold(x) for x in proto.thresholds),
            rapid=parse_threshold(proto.rapid_threshold),
        )
        calibration = (
            self._calibration.calibration_report(op.user, trial)
            if proto.calibration_patients
            else None
        )
        facts = [
            ("Reads CSV SHA-256", hashlib.sha256(data).hexdigest()),
            ("Audit head", f"{head['rows']} rows, MAC {head['mac'][:16]}…"),
            ("Locked", f"yes, by {lock['by']} at {lock['at']}" if lock else "no (reading open)"),
            ("Generated", self._now_str()),
        ]
        try:
            doc = agreement_document(
                reads,
                options,
                trial=trial,
                facts=facts,
                calibration=calibration,
                dates=op.user.role != "monitor",
            )
        except AnalysisError as exc:
            raise InvalidInput(f"the agreement report cannot be made yet: {exc}") from exc

        self._audit_export(op, trial, "agreement report", to_json_text(doc))
        return doc

    @operation("coordinator", write=True, transaction=False)
    def transfer_package(self, op: Op, trial: str, out: Path) -> dict[str, str]:
        """A zip for the sponsor: the locked reads export and its manifest, per-patient
        totals, the agreement report (HTML, PDF, JSON, XLSX), the protocol settings, the audit
        trail and MANIFEST.sha256 with every file's SHA-256. Only a locked trial."""
        import tempfile
        import zipfile

        from scorer.core.private_files import replacing
        from scorer.reports.document import write as write_document

        # Assembled from the export operations, each checked and audited on its own.
        s = op.user
        with op.read() as db:
            if not find_trial(db, trial).locked:
                raise InvalidInput(f"trial {trial} is not locked: lock the reading first")
        text, manifest = self.export_reads_with_manifest(s, trial)
        files: dict[str, bytes] = {
            "reads.csv": text.encode("utf-8"),
            "reads.csv.manifest.json": (json.dumps(manifest.to_dict(), indent=2) + "\n").encode(),
            "totals.csv": self.export_totals(s, trial).encode("utf-8"),
            "protocol.json": (json.dumps(manifest.protocol, indent=2) + "\n").encode("utf-8"),
        }
        doc = self.agreement_report(s, trial)
        with tempfile.TemporaryDirectory() as tmp:
            for ext in ("html", "pdf", "json", "xlsx"):
                path = write_document(doc, Path(tmp) / f"agreement.{ext}")
                files[f"agreement.{ext}"] = path.read_bytes()
        files["audit-trail.csv"] = self.export_audit(s).encode("utf-8")
        sums = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
        files["MANIFEST.sha256"] = "".join(f"{h}  {n}\n" for n, h in sorted(sums.items())).encode()
        # Owner-only (0600), whole or not at all.
        with (
            replacing(Path(out)) as temporary,
            zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as z,
        ):
            for name in sorted(files):
                z.writestr(name, files[name])
        self._audit_export(op, trial, "transfer package", json.dumps(sums, sort_keys=True))
        return sums
