"""The operations the server offers: every name in the rights table, with the method that runs
it and its wire signature.

An operation is called as ``POST /api/call/<name>`` (``reading.set_score``). A checked
operation's method takes the caller's session first (the ``@operation`` wrapper checks it); an
own-session one (lock, unlock, change_password, keep_alive) takes it too and checks what it
needs itself. Log-in and log-out are the server's own endpoints, which make and end the
session the other calls use.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scorer.server.documents import DOCUMENT_OPERATIONS, FILE_OPERATIONS
from scorer.server.wire import Signature, signature
from scorer.services.operation import RIGHTS, Rights
from scorer.services.rights import all_rights
from scorer.workspace import Workspace

#: Own-session operations the server runs through its own endpoints, not /api/call.
ENDPOINTS = {"accounts.login": "POST /api/login", "accounts.logout": "POST /api/logout"}
#: Operations whose result or output file crosses the wire in another form.
CARRIED = DOCUMENT_OPERATIONS | FILE_OPERATIONS


@dataclass(frozen=True)
class Call:
    """One operation as the server offers it."""

    rights: Rights
    service: str
    method: str
    signature: Signature
    #: Every parameter's name in the method's order (the caller's positional arguments).
    order: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.rights.name

    @property
    def reachable(self) -> bool:
        """Whether it can be called over the wire (its types can cross it, or it is one of
        :mod:`scorer.server.documents`' operations, carried in another form)."""
        if self.name in ENDPOINTS:
            return False
        return not self.signature.problems or self.name in CARRIED

    @property
    def carried(self) -> str:
        """ "document", "file" (see :mod:`scorer.server.documents`), or "" for plain ones."""
        if self.name in DOCUMENT_OPERATIONS:
            return "document"
        return "file" if self.name in FILE_OPERATIONS else ""

    def bound(self, ws: Workspace) -> Callable[..., Any]:
        return getattr(getattr(ws, self.service), self.method)  # type: ignore[no-any-return]


def _method(service: str, method: str) -> Callable[..., Any]:
    """The service class's method (the facade's ``ws.<service>`` is an instance of it)."""
    module = importlib.import_module(f"scorer.services.{service}")
    for obj in vars(module).values():
        if (
            inspect.isclass(obj)
            and obj.__module__ == module.__name__
            and obj.__name__.endswith("Service")
            and hasattr(obj, method)
        ):
            return getattr(obj, method)  # type: ignore[no-any-return]
    raise LookupError(f"no service method {service}.{method}")


def operations() -> dict[str, Call]:
    """Every operation of the rights table, by name."""
    out: dict[str, Call] = {}
    for rights in all_rights():
        service, method = rights.name.split(".", 1)
        fn = _method(service, method)
        # self and the session (a checked operation's Op); log-in has no session.
        skip = 1 if rights.name == "accounts.login" else 2
        params = list(inspect.signature(inspect.unwrap(fn)).parameters.values())[skip:]
        order = tuple(
            p.name
            for p in params
            if p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
        )
        out[rights.name] = Call(rights, service, method, signature(fn, skip), order)
    missing = set(RIGHTS) - set(out)
    if missing:
        raise LookupError(f"operations without a service method: {sorted(missing)}")
    return out
