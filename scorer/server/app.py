"""The HTTPS API over the services: log-in, log-out, and every operation of the rights table.

``make_app(location)`` is an ASGI application (FastAPI):

- ``GET /health`` (no log-in): ``{"ok", "status", "schema", "checks"}`` from
  :mod:`scorer.server.health`, 200 while nothing is critical and 503 when something is;
- ``POST /api/login`` ``{"username", "password"}`` -> ``{"token", "session": {...}}``;
- ``POST /api/logout`` with ``Authorization: Bearer <token>``;
- ``POST /api/call/<operation>`` with the bearer token and a JSON object of keyword arguments
  -> ``{"result": ..., "session": {...}}``; the operation is its rights-table name
  (``reading.set_score``), the session the caller's as the call left it;
- ``GET /api/film/<case>/<film>`` with the bearer token: the DICOM file of one film of one of
  the caller's cases (as ``images.case_images`` names it), recorded as ``image.served``.

Every role and ownership decision is the services' own, made here on the server: the caller's
session is loaded from the database by its token's SHA-256 and passed to the operation, which
checks it in its own transaction. The server keeps nothing between requests but the database
(:mod:`scorer.store.server_sessions`), so several instances can serve one database.

Errors come as ``{"error": kind, "message": text}``: AuthError 401, PermissionDenied 403,
NotFound 404, InvalidInput 422, Conflict and Locked 409 (a Conflict adds ``version`` and
``current``), SessionLocked 423, too many log-ins 429, anything else 500 with no traceback
(the traceback goes to the server's log with an incident number).

Log-in attempts are limited per account and per client address over a sliding window kept in
the database (``server_login_attempts``), so the limit holds across instances; a log-in that
succeeds is taken back from its address's count (workstations behind one NAT share an address).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from scorer import __version__
from scorer.server import documents, health, uploads
from scorer.server.calls import Call, operations
from scorer.server.health import DiskLimits
from scorer.server.receivers import Receivers
from scorer.server.wire import WireError, decode, decode_arguments, encode
from scorer.services.errors import (
    AuthError,
    Conflict,
    InvalidInput,
    Locked,
    NotFound,
    PermissionDenied,
    ScorerError,
    SessionLocked,
)
from scorer.services.session import UserSession, format_time, parse_time, with_article
from scorer.store import repository as repo
from scorer.store import server_sessions as stored
from scorer.store.location import Location
from scorer.workspace import Workspace

log = logging.getLogger("scorer.server")
access = logging.getLogger("scorer.server.access")

STATUS: tuple[tuple[type[ScorerError], int], ...] = (
    (SessionLocked, 423),
    (AuthError, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (InvalidInput, 422),
    (Conflict, 409),
    (Locked, 409),
)


@dataclass(frozen=True)
class ServerSettings:
    """The server's own settings: when an idle session is forgotten (it locks much earlier,
    by the workspace's inactivity rule), and the log-in rate limits."""

    session_expiry_hours: float = 12.0
    login_window_s: float = 60.0
    login_per_account: int = 10
    login_per_address: int = 30
    #: Free space on the receipts' and the stores' disks that /health warns of, or calls
    #: critical.
    disk: DiskLimits = field(default_factory=DiskLimits)
    #: How long /health waits for its checks (the database's answer) before it says critical.
    health_timeout_s: float = 5.0


class ApiError(Exception):
    """An error answered with its status, kind and message."""

    def __init__(self, status: int, kind: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.extra = extra


def token_hash(token: str) -> str:
    """What the database keeps of a bearer token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _to_stored(s: UserSession) -> stored.StoredSession:
    return stored.StoredSession(
        session_id=s.id,
        user_id=s.user_id,
        username=s.username,
        full_name=s.full_name,
        role=s.role,
        started=format_time(s.started),
        last_active=format_time(s.last_active),
        must_change_password=s.must_change_password,
        locked=s.locked,
        signed_once=s.signed_once,
        password_mark=s.password_mark,
    )


def _from_stored(r: stored.StoredSession) -> UserSession:
    return UserSession(
        user_id=r.user_id,
        username=r.username,
        full_name=r.full_name,
        role=r.role,
        id=r.session_id,
        started=parse_time(r.started),
        last_active=parse_time(r.last_active),
        must_change_password=r.must_change_password,
        locked=r.locked,
        signed_once=r.signed_once,
        password_mark=r.password_mark,
    )


def session_json(s: UserSession) -> dict[str, Any]:
    """What a client learns of its session (sent with every answer, so that a client's copy
    follows what the call changed: a lock, a first signature, a password changed)."""
    return {
        "id": s.id,
        "username": s.username,
        "full_name": s.full_name,
        "role": s.role,
        "must_change_password": s.must_change_password,
        "locked": s.locked,
        "signed_once": s.signed_once,
        "closed": s.closed,
        "ended_because": s.ended_because,
    }


def error_of(exc: ScorerError, session: dict[str, Any] | None = None) -> ApiError:
    """The answer to a service's error (with the caller's session as the call left it)."""
    for cls, status in STATUS:
        if isinstance(exc, cls):
            extra: dict[str, Any] = {"session": session} if session is not None else {}
            if isinstance(exc, Conflict):
                from scorer.core.methods import Area
                from scorer.core.reads import AreaScore

                extra |= {
                    "version": exc.version,
                    "current": encode(dict[Area, AreaScore | None], exc.current),
                }
            return ApiError(status, cls.__name__, str(exc), **extra)
    return ApiError(500, "ScorerError", str(exc))


class Server:
    """The state one server process holds: the open workspace, the operations, the settings
    (nothing of any session: that is in the database)."""

    def __init__(
        self,
        ws: Workspace,
        settings: ServerSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ws = ws
        self.settings = settings
        self.calls: dict[str, Call] = operations()
        self.clock = clock
        self.receivers = Receivers(ws)
        # Films are delivered here for every reader at once: keep many cases' (about 1.5 MB
        # each), so that one reader's delivery does not prune another's case being fetched.
        ws.images.keep_cases = SERVER_KEEP_CASES

    # ------------------------------------------------------------- sessions

    def now(self) -> datetime:
        return self.ws.accounts._now()

    def load(self, request: Request) -> tuple[str, UserSession]:
        """The caller's session from its bearer token; 401 for none, unknown or expired."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(
                401, "AuthError", "log in first: send Authorization: Bearer <token from /api/login>"
            )
        digest = token_hash(token.strip())
        row = stored.get(self.ws.store, digest)
        if row is None:
            raise ApiError(
                401, "AuthError", "unknown or ended session token (logged out, or ended); log in"
            )
        s = _from_stored(row)
        request.state.loaded = row
        expiry = timedelta(hours=self.settings.session_expiry_hours)
        if self.now() - s.last_active > expiry:
            stored.drop(self.ws.store, digest)
            raise ApiError(
                401,
                "AuthError",
                f"this session expired after {self.settings.session_expiry_hours:g} hours "
                "without activity; log in again",
            )
        request.state.user = s.username
        return digest, s

    def keep(self, digest: str, s: UserSession, request: Request) -> None:
        """Write the session's state back after a call, or forget it once it has ended. A
        call that changed nothing but the time of activity, by less than
        :data:`ACTIVITY_STEP_S`, writes nothing (a write per save would double the writes that
        queue for the database's one write lock)."""
        if s.closed:
            stored.drop(self.ws.store, digest)
            return
        now = _to_stored(s)
        before = getattr(request.state, "loaded", None)
        if before is not None and replace(before, last_active=now.last_active) == now:
            moved = parse_time(now.last_active) - parse_time(before.last_active)
            if moved.total_seconds() < ACTIVITY_STEP_S:
                return
        stored.save(self.ws.store, digest, now, before)

    # ------------------------------------------------------------- log-in

    def limit_login(self, username: str, address: str) -> float:
        """Count this attempt; 429 when the account or the address has had too many. The
        time it was counted at (to take it back from the address once it succeeds)."""
        cfg = self.settings
        now = self.clock()
        since = now - cfg.login_window_s
        keys = [f"user:{username}"[:128], _address_key(address)]
        counts = stored.record_attempt(self.ws.store, keys, now, since)
        over = counts[keys[0]] >= cfg.login_per_account or counts[keys[1]] >= cfg.login_per_address
        if over:
            raise ApiError(
                429,
                "TooManyAttempts",
                f"too many log-in attempts; wait {cfg.login_window_s:g} seconds and try again",
                retry_after=cfg.login_window_s,
            )
        return now

    def login(
        self, username: str, password: str, address: str, workstation: str = ""
    ) -> dict[str, Any]:
        """Log in for a client: the login event names the workstation the client sent (its
        own name) and the address it called from."""
        counted_at = self.limit_login(username, address)
        s = self.ws.accounts.login(username, password, workstation, address)
        # A log-in that succeeded no longer counts against its address: a centre's fifty
        # workstations behind one NAT or proxy all log in, while guesses (which fail) from one
        # address stay limited. It counted until now, so concurrent guesses cannot slip past.
        stored.forget_attempt(self.ws.store, _address_key(address), counted_at)
        # Sessions idle past the expiry are forgotten here too, not only when their token
        # comes back (a workstation that went away never sends it again).
        expiry = timedelta(hours=self.settings.session_expiry_hours)
        stored.drop_idle(self.ws.store, format_time(self.now() - expiry))
        token = secrets.token_urlsafe(32)
        stored.put(self.ws.store, token_hash(token), _to_stored(s))
        return {"token": token, "session": session_json(s)}

    def logout(self, request: Request) -> None:
        digest, s = self.load(request)
        try:
            self.ws.accounts.logout(s)
        finally:
            stored.drop(self.ws.store, digest)

    # ------------------------------------------------------------- operations

    def call(self, request: Request, name: str, body: Any) -> dict[str, Any]:
        """Run one operation for the caller: ``{"result": ..., "session": ...}``. The role is
        checked before the arguments, so a caller without the right learns nothing of them."""
        digest, s = self.load(request)
        call = self.calls.get(name)
        if call is None:
            raise ApiError(404, "NotFound", f"no operation {name!r} (see docs/roles.md)")
        request.state.operation = name
        roles = call.rights.roles
        if roles and s.role not in roles:
            raise ApiError(
                403,
                "PermissionDenied",
                f"{with_article(s.role)} may not do this (needs: {' or '.join(roles)})",
            )
        if not call.reachable:
            why = "; ".join(call.signature.problems) or f"use {_endpoint(name)}"
            raise ApiError(501, "NotOffered", f"{name} is not offered over the server yet: {why}")
        suffix = ""
        if call.carried == "file" and isinstance(body, dict):
            suffix = str(body.pop("suffix", ""))
            if not (1 < len(suffix) <= 8 and suffix[0] == "." and suffix[1:].isalnum()):
                raise ApiError(400, "BadRequest", f"{name}: send the out file's suffix (.png)")
        try:
            kwargs = decode_arguments(call.signature, body)
        except WireError as exc:
            raise ApiError(400, "BadRequest", f"{name}: {exc}") from None
        answer: dict[str, Any] = {}
        try:
            if suffix:
                result, data = documents.run_to_bytes(
                    lambda out: call.bound(self.ws)(s, out=out, **kwargs), suffix
                )
                answer["file"] = base64.b64encode(data).decode("ascii")
            else:
                result = call.bound(self.ws)(s, **kwargs)
        except ScorerError as exc:
            # The error says how the call left the session (locked, ended, or as it was).
            raise error_of(exc, session_json(s)) from None
        finally:
            self.keep(digest, s, request)
        if name == "images.case_images":
            # The films come from /api/film; where the server keeps them is its own business.
            result = {k: [replace(f, path="") for f in v] for k, v in result.items()}
        if call.carried == "document":
            answer["result"] = documents.encode_document(result)
        elif isinstance(result, Path):
            answer["result"] = None  # the file itself came back
        else:
            answer["result"] = encode(call.signature.returns, result)
        return answer | {"session": session_json(s)}

    def films(self, request: Request, case_code: str, names: list[str]) -> dict[str, bytes]:
        """The files of films of one of the caller's cases, authorised as ``case_images`` is
        (a reader gets only the films of their own worklist's cases), each recorded as an
        ``image.served`` event (in one write)."""
        digest, s = self.load(request)
        request.state.operation = "images.film"
        if not names or len(names) > MAX_FILMS or len(set(names)) != len(names):
            raise ApiError(400, "BadRequest", f"name from 1 to {MAX_FILMS} films, each once")

        def listed() -> dict[str, Any]:
            try:
                films = self.ws.images.case_images(s, case_code)
            except ScorerError as exc:
                raise error_of(exc, session_json(s)) from None
            return {f.image: f for fs in films.values() for f in fs}

        try:
            known = listed()
        finally:
            self.keep(digest, s, request)
        if not set(names) <= set(known):
            raise ApiError(404, "NotFound", "no such film in this case")
        out: dict[str, bytes] = {}
        for name in names:
            try:
                out[name] = Path(known[name].path).read_bytes()
            except FileNotFoundError:
                # Pruned by another reader's delivery in between: delivered again, read again.
                known = listed()
                try:
                    out[name] = Path(known[name].path).read_bytes()
                except (OSError, KeyError):
                    raise ApiError(
                        409, "Unavailable", "this film cannot be delivered now; try again"
                    ) from None
        # In the case's trial (its lookup binds the transaction to it), so that serving films
        # does not wait for other trials' work, nor make every trial's work wait for it.
        with self.ws.store.write(s.username, s.id, scoped=True) as tx:
            repo.case_by_code(tx.session, case_code)
            for name in names:
                tx.event(
                    "image.served", case_code, {"film": name, "sha256": known[name].sha256}, s.id
                )
        return out

    # ------------------------------------------------------------- uploads for an import

    def open_batch(self, request: Request) -> str:
        """A new upload batch for the caller, who must be allowed to import."""
        _, s = self.load(request)
        request.state.operation = "images.upload"
        roles = self.calls["images.import_images"].rights.roles
        if roles and s.role not in roles:
            raise ApiError(
                403,
                "PermissionDenied",
                f"{with_article(s.role)} may not do this (needs: {' or '.join(roles)})",
            )
        return uploads.new_batch(self.ws.store.location.data_dir, s.id)

    def batch(self, request: Request, batch: str) -> tuple[str, UserSession, Path]:
        digest, s = self.load(request)
        try:
            return digest, s, uploads.batch_folder(self.ws.store.location.data_dir, batch, s.id)
        except uploads.UploadError as exc:
            raise ApiError(404, "NotFound", str(exc)) from None

    def import_batch(self, request: Request, batch: str, body: Any) -> dict[str, Any]:
        """Import the batch's roots as ``images.import_images`` does, then remove the batch;
        each file reported by its name in the batch."""
        from scorer.imaging.manifest import Manifest
        from scorer.services.import_report import ImportReport

        digest, s, folder = self.batch(request, batch)
        request.state.operation = "images.import_images"
        wanted = {"trial": str, "roots": list[str], "manifest": Manifest | None,
                  "manifest_names": list[str], "workers": int, "timeout_s": float,
                  "max_mb": float}  # fmt: skip
        if not isinstance(body, dict) or not {"trial", "roots"} <= set(body) <= set(wanted):
            raise ApiError(400, "BadRequest", f"send {{{', '.join(wanted)}}} (trial, roots needed)")
        try:
            args = {k: decode(wanted[k], v, f"argument {k!r}") for k, v in body.items()}
            paths = uploads.roots(folder, args.pop("roots"))
        except (WireError, uploads.UploadError) as exc:
            raise ApiError(400, "BadRequest", str(exc)) from None
        if not 1 <= args.get("workers", 1) <= 8:
            raise ApiError(400, "BadRequest", "workers: from 1 to 8")
        trial, manifest = args.pop("trial"), args.pop("manifest", None)
        try:
            report = self.ws.images.import_images(s, trial, paths, manifest, None, **args)
        except ScorerError as exc:
            raise error_of(exc, session_json(s)) from None
        finally:
            self.keep(digest, s, request)
            uploads.remove(folder)
        for f in report.files:
            f.file = uploads.shown_name(folder, f.file)
        return {"result": encode(ImportReport, report), "session": session_json(s)}

    # ------------------------------------------------------------- DICOM receivers

    def receiver(self, request: Request, trial: str, action: str, body: Any) -> dict[str, Any]:
        """Start, stop or ask about the server's DICOM receiver for ``trial``."""
        digest, s = self.load(request)
        request.state.operation = f"receiver.{action}"
        try:
            if action == "start":
                if not isinstance(body, dict):
                    raise ApiError(400, "BadRequest", "send the receiver's options as an object")
                state = self.receivers.start(s, trial, body)
            elif action == "stop":
                state = self.receivers.stop(s, trial)
            else:
                # Polling what arrived is not the coordinator's activity: it must not keep
                # an unattended desk's session from locking.
                idle_since = s.last_active
                state = self.receivers.status(s, trial, int(body))
                s.last_active = idle_since
        except ScorerError as exc:
            raise error_of(exc, session_json(s)) from None
        except (TypeError, ValueError) as exc:
            raise ApiError(400, "BadRequest", f"receiver: {exc}") from None
        finally:
            self.keep(digest, s, request)
        return {"result": state, "session": session_json(s)}


def _address_key(address: str) -> str:
    """The rate limit's key for a client address."""
    return f"addr:{address}"[:128]


def _endpoint(name: str) -> str:
    from scorer.server.calls import ENDPOINTS

    return ENDPOINTS.get(name, "another endpoint")


def _answer(exc: ApiError) -> JSONResponse:
    headers = {}
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if "retry_after" in exc.extra:
        headers["Retry-After"] = str(round(exc.extra["retry_after"]))
    body = {"error": exc.kind, "message": exc.message}
    body.update({k: v for k, v in exc.extra.items() if k != "retry_after"})
    return JSONResponse(body, status_code=exc.status, headers=headers)


#: The time of a session's activity is written back when it moved by this much (or with any
#: other change): the inactivity lock counts in minutes, so seconds lost cost nothing.
ACTIVITY_STEP_S = 30.0

#: The most films one request may ask for.
MAX_FILMS = 64

#: How many cases' delivered films the server keeps (the most recently asked for).
SERVER_KEEP_CASES = 400

#: The largest request body taken (a reads CSV travels in one): anything longer is refused
#: before it is read whole.
MAX_BODY = 64 * 1024 * 1024


async def _json_body(request: Request, limit: int = MAX_BODY) -> Any:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "TooLarge", f"the request is larger than {limit // 1024} KiB")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "TooLarge", f"the request is larger than {limit // 1024} KiB")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, "BadRequest", f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "BadRequest", "the body is nested too deeply") from None
    _check_text(value)
    return value


def _check_text(value: Any, depth: int = 0) -> None:
    """Refuse text no column can hold: a NUL character, or a lone surrogate (not UTF-8)."""
    if depth > 64:
        raise ApiError(400, "BadRequest", "the body is nested too deeply")
    if isinstance(value, str):
        if "\x00" in value:
            raise ApiError(400, "BadRequest", "text may not contain a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(
                400, "BadRequest", "text is not valid Unicode (a lone surrogate)"
            ) from None
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_text(k, depth + 1)
            _check_text(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_text(v, depth + 1)


def _install_request_log(app: FastAPI) -> None:
    """One JSON line per request (time, method, path, operation, status, ms, user, client);
    an unexpected error answers 500 with an incident number, its traceback only in the log."""

    @app.middleware("http")
    async def logged(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        request.state.user = ""
        request.state.operation = ""
        try:
            response = await call_next(request)
        except ApiError as exc:
            response = _answer(exc)
        except Exception:
            incident = secrets.token_hex(4)
            log.exception("incident %s: %s %s failed", incident, request.method, request.url.path)
            response = _answer(
                ApiError(500, "InternalError", f"internal error (incident {incident}, logged)")
            )
        access.info(
            json.dumps(
                {
                    "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "method": request.method,
                    "path": request.url.path,
                    "operation": request.state.operation,
                    "status": response.status_code,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                    "user": request.state.user,
                    "client": request.client.host if request.client else "",
                },
                ensure_ascii=False,
            )
        )
        return response


def make_app(
    location: Location,
    settings: ServerSettings | None = None,
    workspace: Workspace | None = None,
) -> FastAPI:
    """The server's ASGI application over the database at ``location`` (or an open
    ``workspace``, which the application then owns and closes at shutdown)."""
    ws = workspace or Workspace.open(location=location)
    server = Server(ws, settings or ServerSettings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(server.receivers.stop_all)
        ws.close()

    app = FastAPI(
        lifespan=lifespan,
        title="scorer server",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.server = server

    async def run(fn: Callable[[], Any]) -> Any:
        try:
            return await run_in_threadpool(fn)
        except ScorerError as exc:
            raise error_of(exc) from None

    _install_request_log(app)

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return _answer(exc)

    @app.get("/health")
    async def healthy() -> JSONResponse:
        limit = server.settings.health_timeout_s
        try:
            found = await asyncio.wait_for(
                run_in_threadpool(health.examine, ws, server.settings.disk), limit
            )
        except TimeoutError:
            found = health.database_down(f"no answer within {limit:g} s")
        status = 503 if found.status == health.CRITICAL else 200
        headers = {"Cache-Control": "no-store"}
        return JSONResponse(found.as_json(), status_code=status, headers=headers)

    @app.post("/api/login")
    async def login(request: Request) -> dict[str, Any]:
        body = await _json_body(request, limit=64 * 1024)
        if not (
            isinstance(body, dict)
            and {"username", "password"} <= set(body) <= {"username", "password", "workstation"}
            and all(isinstance(v, str) for v in body.values())
        ):
            raise ApiError(
                400,
                "BadRequest",
                'send {"username": "...", "password": "...", "workstation": "..." (optional)}',
            )
        request.state.operation = "accounts.login"
        request.state.user = body["username"][:64]
        address = request.client.host if request.client else ""
        result: dict[str, Any] = await run(
            lambda: server.login(
                body["username"], body["password"], address, body.get("workstation", "")
            )
        )
        return result

    @app.post("/api/logout")
    async def logout(request: Request) -> dict[str, Any]:
        request.state.operation = "accounts.logout"
        await run(lambda: server.logout(request))
        return {"result": None}

    @app.post("/api/call/{name}")
    async def call(name: str, request: Request) -> dict[str, Any]:
        body = await _json_body(request)
        answer: dict[str, Any] = await run(lambda: server.call(request, name, body))
        return answer

    _install_uploads(app, server, run)

    _install_receivers(app, server, run)

    _install_films(app, server, run)

    return app


def _install_uploads(
    app: FastAPI, server: Server, run: Callable[[Callable[[], Any]], Awaitable[Any]]
) -> None:
    """The upload endpoints of an import (:mod:`scorer.server.uploads`)."""

    @app.post("/api/upload")
    async def open_upload(request: Request) -> dict[str, Any]:
        return {"batch": await run(lambda: server.open_batch(request))}

    @app.delete("/api/upload/{batch}")
    async def cancel_upload(batch: str, request: Request) -> dict[str, Any]:
        _, _, folder = await run(lambda: server.batch(request, batch))
        await run_in_threadpool(uploads.remove, folder)
        return {"result": None}

    @app.put("/api/upload/{batch}/{name:path}")
    async def upload_file(batch: str, name: str, request: Request) -> dict[str, Any]:
        _, _, folder = await run(lambda: server.batch(request, batch))
        try:
            path = uploads.target(folder, name)
            fd = await run_in_threadpool(uploads.open_target, folder, path)
        except uploads.UploadError as exc:
            raise ApiError(400, "BadRequest", str(exc)) from None
        size = 0
        digest = hashlib.sha256()
        try:
            room = await run_in_threadpool(uploads.room_left, folder)
            async for chunk in request.stream():
                size += len(chunk)
                if size > uploads.MAX_FILE:
                    raise ApiError(
                        413, "TooLarge", f"a file may be {uploads.MAX_FILE >> 20} MiB at most"
                    )
                if size > room:
                    raise ApiError(
                        507,
                        "NoRoom",
                        "the server has no room for more uploads in this batch "
                        f"(a batch takes {uploads.MAX_BATCH >> 30} GiB at most, and the server "
                        f"keeps {uploads.RESERVE >> 30} GiB free); import what is sent, then "
                        "the rest",
                    )
                digest.update(chunk)
                await run_in_threadpool(os.write, fd, chunk)
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        os.close(fd)
        return {"size": size, "sha256": digest.hexdigest()}

    @app.post("/api/upload/{batch}/import")
    async def import_upload(batch: str, request: Request) -> dict[str, Any]:
        body = await _json_body(request)
        answer: dict[str, Any] = await run(lambda: server.import_batch(request, batch, body))
        return answer


def _install_receivers(
    app: FastAPI, server: Server, run: Callable[[Callable[[], Any]], Awaitable[Any]]
) -> None:
    """The endpoints of the server's DICOM receivers (:mod:`scorer.server.receivers`)."""

    @app.post("/api/receiver/{trial}/{action}")
    async def receiver(trial: str, action: str, request: Request) -> dict[str, Any]:
        if action not in ("start", "stop"):
            raise ApiError(404, "NotFound", "the receiver is started or stopped")
        body = await _json_body(request, limit=64 * 1024)
        answer: dict[str, Any] = await run(lambda: server.receiver(request, trial, action, body))
        return answer

    @app.get("/api/receiver/{trial}")
    async def receiving(trial: str, request: Request, since: int = 0) -> dict[str, Any]:
        answer: dict[str, Any] = await run(lambda: server.receiver(request, trial, "status", since))
        return answer


def _install_films(
    app: FastAPI, server: Server, run: Callable[[Callable[[], Any]], Awaitable[Any]]
) -> None:
    """The film endpoints: a case's films for its reader (:meth:`Server.films`)."""

    @app.post("/api/films/{case_code}")
    async def films(case_code: str, request: Request) -> Response:
        body = await _json_body(request, limit=64 * 1024)
        names = body.get("films") if isinstance(body, dict) else None
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise ApiError(400, "BadRequest", 'send {"films": ["<film>", ...]}')
        found: dict[str, bytes] = await run(lambda: server.films(request, case_code, names))
        data = await run_in_threadpool(documents.zipped, found)
        return Response(data, media_type="application/zip", headers={"Cache-Control": "no-store"})

    @app.get("/api/film/{case_code}/{film}")
    async def film(case_code: str, film: str, request: Request) -> Response:
        found: dict[str, bytes] = await run(lambda: server.films(request, case_code, [film]))
        data = found[film]
        return Response(
            data,
            media_type="application/dicom",
            headers={
                "Cache-Control": "no-store",
                "X-Content-SHA256": hashlib.sha256(data).hexdigest(),
            },
        )
