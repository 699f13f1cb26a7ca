"""The DICOM receivers a server runs for its coordinators: the desk's Receive page starts and
stops them over the API, and asks what arrived.

A receiver runs in the server process (it imports into the server's stores), one per trial,
with a session of its own copied from the coordinator who started it (so the coordinator's
log-out does not stop it; the receiver keeps that session alive and stops if its account is
disabled or its password changed). Its state is this process's: behind several server
instances, the coordinator's requests for one trial must reach the instance that runs it.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import replace
from typing import Any

from scorer.network.common import Arrival, NetworkError
from scorer.network.receiver import Receiver
from scorer.services.errors import InvalidInput, NotFound
from scorer.services.session import UserSession, new_code
from scorer.workspace import Workspace

#: At most this many arrivals in one status answer (the newest after ``since``).
MAX_ARRIVALS = 500


class Receivers:
    """The receivers of one server process, by trial."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._running: dict[str, Receiver] = {}
        self._lock = threading.Lock()
        # What arrived, per trial, numbered from 0 for as long as this process runs (the
        # receiver's own list keeps the last 10,000 only): a poll asks for those after ``since``.
        self._arrived: dict[str, list[dict[str, Any]]] = {}

    def _check(self, s: UserSession, trial: str) -> None:
        """Only a coordinator, of a trial that exists (the service's own check)."""
        self.ws.images.dicom_settings(s, trial)

    def start(self, s: UserSession, trial: str, options: dict[str, Any]) -> dict[str, Any]:
        self._check(s, trial)
        with self._lock:
            if trial in self._running and self._running[trial].running:
                raise InvalidInput(f"the server already receives for trial {trial}")
            own = replace(s, id=new_code(16))  # the receiver's session, not the request's
            try:
                r = Receiver(
                    self.ws,
                    own,
                    trial,
                    aet=str(options.get("aet") or "SCORER"),
                    port=int(options.get("port", 11112)),
                    host=str(options.get("host") or "0.0.0.0"),
                    allow=[str(a) for a in options.get("allow", [])],
                    on_arrival=functools.partial(self._note, trial),
                )
                r.start()
            except NetworkError as exc:
                raise InvalidInput(str(exc)) from None
            self._running[trial] = r
        return self._state(r, 0, trial)

    def stop(self, s: UserSession, trial: str) -> dict[str, Any]:
        self._check(s, trial)
        with self._lock:
            r = self._running.pop(trial, None)
        if r is None:
            raise NotFound(f"the server does not receive for trial {trial}")
        r.stop()
        return self._state(r, 0, trial)

    def status(self, s: UserSession, trial: str, since: int) -> dict[str, Any]:
        self._check(s, trial)
        with self._lock:
            r = self._running.get(trial)
        if r is None:
            return {"running": False, "arrivals": [], "count": 0}
        return self._state(r, since, trial)

    def _note(self, trial: str, arrival: Arrival) -> None:
        with self._lock:
            self._arrived.setdefault(trial, []).append(arrival.to_dict())

    def stop_all(self) -> None:
        with self._lock:
            running, self._running = list(self._running.values()), {}
        for r in running:
            r.stop()

    def _state(self, r: Receiver, since: int, trial: str) -> dict[str, Any]:
        """The receiver's state and the arrivals after the first ``since`` (at most
        MAX_ARRIVALS: ``more`` says that more wait, asked for with the next ``since``)."""
        with self._lock:
            arrived = self._arrived.get(trial, [])
            count = len(arrived)
            new = arrived[max(0, since) :][:MAX_ARRIVALS]
        return {
            "running": r.running,
            "aet": r.aet,
            "host": r.host,
            "port": r.port,
            "allowed": list(r.allowed),
            "count": min(count, max(0, since) + len(new)),
            "more": max(0, since) + len(new) < count,
            "arrivals": new,
        }
