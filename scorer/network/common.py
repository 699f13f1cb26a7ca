"""What the receiver and the puller share: the SOP classes and transfer syntaxes scorer
takes, AE titles, peer addresses, and the import of one received instance."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset

from scorer.core.protocol import ae_title_problem
from scorer.imaging.decode_pool import DecodePool
from scorer.imaging.dicom_header import RADIOGRAPH_CLASSES, SUPPORTED_SYNTAXES
from scorer.imaging.sources import SourceFile

if TYPE_CHECKING:
    from scorer.workspace import UserSession, Workspace

VERIFICATION = "1.2.840.10008.1.1"
#: Every radiograph SOP class the importer takes, in every transfer syntax it decodes.
STORAGE_CLASSES: tuple[str, ...] = tuple(RADIOGRAPH_CLASSES)
TRANSFER_SYNTAXES: tuple[str, ...] = tuple(SUPPORTED_SYNTAXES)
#: An instance larger than this is refused (Out of Resources) before anything is imported.
DEFAULT_MAX_MB = 1024

# C-STORE statuses (PS3.4 B.2.3).
SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000
PROCESSING_FAILURE = 0x0110


class NetworkError(ValueError):
    """A DICOM network task that cannot run as asked; the message says why."""


def check_ae_title(aet: str, what: str = "AE title") -> str:
    problem = ae_title_problem(aet)
    if problem:
        raise NetworkError(f"{what}: {problem}")
    return aet.strip()


@dataclass(frozen=True)
class Peer:
    """A remote application entity: AE title, host and port."""

    aet: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Peer:
        """``AET@HOST:PORT``, e.g. ``ORTHANC@127.0.0.1:4242`` (``[::1]`` for IPv6)."""
        aet, at, rest = text.rpartition("@")
        host, colon, port = rest.rpartition(":")
        if not at or not colon or not aet or not host:
            raise NetworkError(f"{text!r} is not AET@HOST:PORT (for example PACS@10.0.0.5:104)")
        try:
            number = int(port)
        except ValueError:
            raise NetworkError(f"{text!r}: port {port!r} is not a number") from None
        if not 1 <= number <= 65535:
            raise NetworkError(f"{text!r}: port {number} is outside 1-65535")
        return cls(check_ae_title(aet, text), host.strip("[]"), number)

    def __str__(self) -> str:
        return f"{self.aet}@{self.host}:{self.port}"


@dataclass(frozen=True)
class Arrival:
    """One instance that arrived, and what the import made of it."""

    at: str
    calling_aet: str
    peer: str
    sop_instance_uid: str
    status: str  # imported | duplicate | refused
    image: str | None = None
    reason: str = ""
    flags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "calling_aet": self.calling_aet,
            "peer": self.peer,
            "sop_instance_uid": self.sop_instance_uid,
            "status": self.status,
            "image": self.image,
            "reason": self.reason,
            "flags": list(self.flags),
        }


@dataclass
class Importer:
    """Imports received instances one at a time into a trial, through one decoding pool
    kept open while it runs; safe to call from several association threads."""

    ws: Workspace
    s: UserSession
    trial: str
    max_bytes: int = DEFAULT_MAX_MB * 1024 * 1024
    workers: int = 1
    timeout_s: float = 60.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _pool: DecodePool | None = None
    _swept: bool = False

    def open(self) -> None:
        if self._pool is None:
            self._pool = DecodePool(workers=self.workers, timeout_s=self.timeout_s)

    def close(self) -> None:
        """Wait for the instance being imported, if any, then stop the pool."""
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def call(self, fn: Any, *args: Any) -> Any:
        """Run a workspace call under the importer's lock (one at a time)."""
        with self._lock:
            return fn(*args)

    def take(
        self, data: bytes, calling_aet: str, peer: str, sop_uid: str, origin: dict[str, Any]
    ) -> tuple[int, Arrival]:
        """Import one instance; its C-STORE status and what became of it."""
        at = datetime.now(UTC).isoformat(timespec="seconds")

        def refused(status: int, reason: str) -> tuple[int, Arrival]:
            return status, Arrival(at, calling_aet, peer, sop_uid, "refused", reason=reason)

        if len(data) > self.max_bytes:
            return refused(
                OUT_OF_RESOURCES,
                f"the instance is {len(data) / 1e6:.0f} MB, over the limit of "
                f"{self.max_bytes / 1e6:.0f} MB",
            )
        name = f"{calling_aet}:{sop_uid or 'no SOP Instance UID'}"
        with self._lock:
            if self._pool is None:
                return refused(OUT_OF_RESOURCES, "the receiver is stopping")
            try:
                report = self.ws.images.import_images(
                    self.s,
                    self.trial,
                    [],
                    sources=[SourceFile(name, lambda: data)],
                    pool=self._pool,
                    housekeeping=not self._swept,
                    origin=origin,
                )
            except Exception as exc:  # the database, the session, the disk: nothing kept
                return refused(PROCESSING_FAILURE, f"not imported: {exc}")
            self._swept = True
        outcome = report.files[0]
        arrival = Arrival(
            at,
            calling_aet,
            peer,
            sop_uid,
            outcome.status,
            outcome.image,
            outcome.reason,
            tuple(outcome.flags),
        )
        if outcome.status == "refused":
            return CANNOT_UNDERSTAND, arrival
        return SUCCESS, arrival


def status_dataset(status: int, comment: str = "") -> Dataset | int:
    """A C-STORE response status, with an Error Comment (64 characters at most) if failed."""
    if status == SUCCESS or not comment:
        return status
    ds = Dataset()
    ds.Status = status
    ds.ErrorComment = "".join(c if " " <= c <= "~" and c != "\\" else "?" for c in comment)[:64]
    return ds


def storage_contexts(ae: Any, syntaxes: Sequence[str] = TRANSFER_SYNTAXES) -> None:
    """Accept every radiograph storage class in every transfer syntax scorer decodes."""
    for sop_class in STORAGE_CLASSES:
        ae.add_supported_context(sop_class, list(syntaxes))
