"""The C-STORE receiver: modalities and PACS send radiographs straight into a trial.

``Receiver`` listens on a port as an AE title, answers C-ECHO, and accepts CR, DX (for
presentation and for processing) and Secondary Capture in every transfer syntax the importer
decodes. Only calling AE titles allowed for the trial (its ``dicom_senders`` setting) or named
when starting are accepted; any other association is refused. Each instance goes through the
import pipeline and is answered with what came of it: success (imported, or a duplicate of an
image the trial has), or a failure status with the reason in the Error Comment — a malformed
or oversized instance affects nothing else. Each association is logged and audited on the
trial with its calling AE title, address and counts.

Stopping (``stop``, or SIGTERM in ``scorer receive``) closes the port, lets the instance being
imported finish, answers any later one "out of resources", then ends the associations still
open: nothing is left half-imported.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scorer.network.common import (
    DEFAULT_MAX_MB,
    OUT_OF_RESOURCES,
    VERIFICATION,
    Arrival,
    Importer,
    NetworkError,
    check_ae_title,
    status_dataset,
    storage_contexts,
)

if TYPE_CHECKING:
    from scorer.workspace import UserSession, Workspace

log = logging.getLogger("scorer.network")

#: How long stopping waits for open associations to end by themselves.
STOP_GRACE_S = 10.0
#: The receiver's session is kept active this often (it would lock for inactivity).
KEEP_ALIVE_S = 30.0


@dataclass
class _Association:
    calling_aet: str
    peer: str
    received: int = 0
    counts: dict[str, int] = field(
        default_factory=lambda: {"imported": 0, "duplicate": 0, "refused": 0}
    )


class Receiver:
    """A C-STORE SCP importing into one trial; see the module docstring."""

    def __init__(
        self,
        ws: Workspace,
        s: UserSession,
        trial: str,
        *,
        aet: str = "SCORER",
        port: int = 11112,
        host: str = "0.0.0.0",
        allow: Sequence[str] = (),
        max_mb: int = DEFAULT_MAX_MB,
        workers: int = 1,
        on_arrival: Callable[[Arrival], None] | None = None,
        on_association: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.ws, self.s, self.trial = ws, s, trial
        self.aet = check_ae_title(aet, "--aet")
        if not 0 <= port <= 65535:
            raise NetworkError(f"port {port} is outside 0-65535")
        self.host, self.port = host, port
        settings = ws.images.dicom_settings(s, trial)  # a coordinator, and the trial exists
        if settings.locked:
            raise NetworkError(f"trial {trial} is locked: it takes no more images")
        senders = {check_ae_title(a, "--allow") for a in allow}
        senders |= set(settings.dicom_senders)
        if not senders:
            raise NetworkError(
                f"no sender is allowed to send to trial {trial}: name their AE titles with "
                f"--allow AET, or in the trial's dicom_senders setting"
            )
        self.allowed = tuple(sorted(senders))
        self.importer = Importer(ws, s, trial, max_bytes=max_mb * 1024 * 1024, workers=workers)
        self.arrivals: deque[Arrival] = deque(maxlen=10_000)
        self.on_arrival = on_arrival
        self.on_association = on_association
        self._assocs: dict[int, _Association] = {}
        self._assoc_lock = threading.Lock()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._server: Any = None
        self._ae: Any = None
        self._keeper: threading.Thread | None = None

    # ------------------------------------------------------------------ life

    def start(self) -> None:
        """Open the decoding pool and the port; raises NetworkError if the port is taken."""
        from pynetdicom import AE, evt

        ae = AE(ae_title=self.aet)
        ae.add_supported_context(VERIFICATION)
        storage_contexts(ae)
        ae.require_calling_aet = list(self.allowed)
        ae.maximum_pdu_size = 0  # no limit on the peer's PDUs
        ae.dimse_timeout = 120
        ae.network_timeout = 120
        self.importer.open()
        handlers: list[Any] = [
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_REJECTED, self._on_rejected),
            (evt.EVT_RELEASED, self._on_ended),
            (evt.EVT_ABORTED, self._on_ended),
        ]
        try:
            self._server = ae.start_server(
                (self.host, self.port), block=False, evt_handlers=handlers
            )
        except OSError as exc:
            self.importer.close()
            raise NetworkError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
            ) from exc
        self._ae = ae
        self.port = self._server.server_address[1]  # the port given, or the one chosen for 0
        self.importer.call(
            self.ws.images.audit_dicom,
            self.s,
            self.trial,
            "dicom.receive.start",
            {"aet": self.aet, "host": self.host, "port": self.port, "allowed": list(self.allowed)},
        )
        log.info(
            "receiving for trial %s as %s on %s:%d from %s",
            self.trial,
            self.aet,
            self.host,
            self.port,
            ", ".join(self.allowed),
        )
        self._keeper = threading.Thread(target=self._keep_alive, name="receiver-keep-alive")
        self._keeper.daemon = True
        self._keeper.start()

    @property
    def running(self) -> bool:
        return self._server is not None and not self._stopping.is_set()

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Stop receiving: close the port, finish the instance in hand, end associations."""
        if self._server is None or self._stopping.is_set():
            self._stopped.wait(grace_s + 5)
            return
        self._stopping.set()
        self._server.shutdown()
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and self._ae.active_associations:
            time.sleep(0.05)
        for assoc in self._ae.active_associations:
            assoc.abort()
        self.importer.close()  # waits for an import in progress; later ones are refused
        counts = {"imported": 0, "duplicate": 0, "refused": 0}
        for a in self.arrivals:
            counts[a.status] = counts.get(a.status, 0) + 1
        try:
            self.ws.images.audit_dicom(
                self.s,
                self.trial,
                "dicom.receive.stop",
                {"aet": self.aet, "port": self.port, **counts},
            )
        except Exception as exc:  # the session may have ended: say so, stop anyway
            log.warning("could not audit the receiver's stop: %s", exc)
        log.info("stopped receiving for trial %s", self.trial)
        self._stopped.set()

    def wait(self, stop_event: threading.Event) -> None:
        """Run until ``stop_event`` is set (by SIGTERM or Ctrl-C), then stop."""
        while not stop_event.wait(0.5):
            pass
        self.stop()

    def _keep_alive(self) -> None:
        while not self._stopping.wait(KEEP_ALIVE_S):
            try:
                self.importer.call(self.ws.accounts.keep_alive, self.s)
            except Exception as exc:
                log.error("the receiver's session ended (%s): stopping", exc)
                threading.Thread(target=self.stop, name="receiver-stop").start()
                return

    # ------------------------------------------------------------------ events

    @staticmethod
    def _who(event: Any) -> tuple[str, str]:
        req = event.assoc.requestor
        aet = req.ae_title if isinstance(req.ae_title, str) else req.ae_title.decode()
        return aet.strip(), f"{req.address}:{req.port}"

    def _on_echo(self, event: Any) -> int:
        aet, peer = self._who(event)
        log.info("C-ECHO from %s (%s)", aet, peer)
        return 0x0000

    def _on_accepted(self, event: Any) -> None:
        aet, peer = self._who(event)
        with self._assoc_lock:
            self._assocs[id(event.assoc)] = _Association(aet, peer)
        log.info("association from %s (%s) accepted", aet, peer)

    def _on_rejected(self, event: Any) -> None:
        aet, peer = self._who(event)
        why = "calling AE title not allowed" if aet not in self.allowed else "too many associations"
        log.warning("association from %s (%s) refused: %s", aet, peer, why)
        self._audit_association(
            {"calling_aet": aet, "peer": peer, "result": "refused", "reason": why}
        )

    def _on_ended(self, event: Any) -> None:
        with self._assoc_lock:
            a = self._assocs.pop(id(event.assoc), None)
        if a is None:
            return
        how = "released" if event.event.name == "EVT_RELEASED" else "aborted"
        log.info(
            "association from %s (%s) %s: %d instance(s), %s",
            a.calling_aet,
            a.peer,
            how,
            a.received,
            ", ".join(f"{n} {k}" for k, n in a.counts.items()),
        )
        self._audit_association(
            {
                "calling_aet": a.calling_aet,
                "peer": a.peer,
                "result": how,
                "received": a.received,
                **a.counts,
            }
        )

    def _audit_association(self, details: dict[str, Any]) -> None:
        try:
            self.importer.call(
                self.ws.images.audit_dicom, self.s, self.trial, "dicom.association", details
            )
        except Exception as exc:
            log.error("could not audit an association (%s): %s", details, exc)
        if self.on_association:
            self.on_association(details)

    def _on_store(self, event: Any) -> Any:
        aet, peer = self._who(event)
        sop_uid = str(getattr(event.request, "AffectedSOPInstanceUID", "") or "")
        with self._assoc_lock:
            a = self._assocs.get(id(event.assoc))
            if a is not None:
                a.received += 1
        if self._stopping.is_set():
            return status_dataset(OUT_OF_RESOURCES, "the receiver is stopping; send again later")
        status, arrival = self.importer.take(
            event.encoded_dataset(), aet, peer, sop_uid, {"dicom_from": aet, "peer": peer}
        )
        if a is not None:
            with self._assoc_lock:
                a.counts[arrival.status] = a.counts.get(arrival.status, 0) + 1
        self.arrivals.append(arrival)
        if arrival.status == "refused":
            log.warning("instance %s from %s refused: %s", sop_uid, aet, arrival.reason)
        else:
            log.info("instance %s from %s %s as %s", sop_uid, aet, arrival.status, arrival.image)
        if self.on_arrival:
            self.on_arrival(arrival)
        return status_dataset(status, arrival.reason)
