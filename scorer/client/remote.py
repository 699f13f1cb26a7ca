"""The workspace over a reading-centre server: ``RemoteWorkspace.open("https://HOST:PORT")``.

It offers what the windows and commands use of :class:`scorer.workspace.Workspace` —
``ws.reading.set_scores(session, ...)``, ``ws.accounts.login(...)`` and the rest — and runs
every operation on the server (``POST /api/call/<operation>``), so the workstation holds no
database URL, no audit key and no patient file: only its log-in token and the films of the case
on screen, fetched per request (``GET /api/film/...``) into an owner-only folder.

Arguments and results cross the wire in the server's own codec (:mod:`scorer.server.wire`),
driven by the services' type hints; the server's errors come back as the services' own
exceptions (a Conflict with its version and current values), and a server that cannot be
reached raises :class:`ServerUnavailable`, which the score writer waits out.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import platform
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx

from scorer.client.trust import TrustError, base_url, trust_for
from scorer.core.case_films import CaseFilm
from scorer.imaging.delivery import prune_cases
from scorer.server.calls import Call, operations
from scorer.server.documents import decode_document
from scorer.server.wire import WireError, decode, encode
from scorer.services.errors import (
    AuthError,
    Conflict,
    InvalidInput,
    Locked,
    NotFound,
    PermissionDenied,
    ScorerError,
    SessionLocked,
    Unavailable,
)
from scorer.services.session import UserSession
from scorer.store.location import data_dir

#: The errors the server names, as the services raise them.
ERRORS: dict[str, type[ScorerError]] = {
    "AuthError": AuthError,
    "PermissionDenied": PermissionDenied,
    "NotFound": NotFound,
    "InvalidInput": InvalidInput,
    "Locked": Locked,
    "SessionLocked": SessionLocked,
}

#: What a session learns from each answer (the server's copy is the one that counts).
SESSION_FIELDS = (
    "role",
    "full_name",
    "must_change_password",
    "locked",
    "signed_once",
    "closed",
    "ended_because",
)


#: How long an import may run on the server before the workstation stops waiting for it.
IMPORT_TIMEOUT_S = 3600.0


class ServerUnavailable(Unavailable):
    """The server did not answer (down, unreachable, timed out): nothing was acknowledged."""


class Connection:
    """One HTTPS connection pool to the server, shared by the workstation's threads."""

    def __init__(
        self,
        url: str,
        cafile: str | None = None,
        fingerprint: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.url = base_url(url)
        self.client = httpx.Client(
            base_url=self.url,
            verify=trust_for(self.url, cafile, fingerprint),
            timeout=httpx.Timeout(timeout, connect=10.0),
            headers={"User-Agent": "scorer-workstation"},
        )

    def request(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        extra: dict[str, Any] = {}
        if timeout is not None:
            extra["timeout"] = httpx.Timeout(timeout, connect=10.0)
        try:
            response = self.client.request(method, path, json=body, headers=headers, **extra)
        except httpx.ConnectError as exc:
            cause = str(exc)
            if "CERTIFICATE_VERIFY_FAILED" in cause or "certificate" in cause.lower():
                raise TrustError(
                    f"the certificate of {self.url} is not trusted ({cause}): give the "
                    "fingerprint scorer server printed (--fingerprint) or the site's CA "
                    "certificate (--cacert)"
                ) from None
            raise ServerUnavailable(f"the server {self.url} cannot be reached: {cause}") from None
        except httpx.TransportError as exc:
            raise ServerUnavailable(
                f"the server {self.url} did not answer ({type(exc).__name__}: {exc}); "
                "nothing of this request was acknowledged"
            ) from None
        if not response.is_success:  # a redirect too: nothing here follows one
            raise _error(response)
        return response

    def upload(self, path: str, token: str, data: BinaryIO) -> None:
        """Send one file's bytes (streamed) with PUT."""
        try:
            response = self.client.put(
                path,
                content=iter(lambda: data.read(1 << 20), b""),
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx.TransportError as exc:
            raise ServerUnavailable(f"the upload to {self.url} broke off: {exc}") from None
        if not response.is_success:  # a redirect too: nothing here follows one
            raise _error(response)

    def close(self) -> None:
        self.client.close()


def _error(response: httpx.Response) -> ScorerError:
    """The service's exception for an error answer."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    kind = body.get("error", "") if isinstance(body, dict) else ""
    message = body.get("message", "") if isinstance(body, dict) else ""
    message = message or f"the server answered {response.status_code}"
    exc: ScorerError
    if kind == "Conflict":
        from scorer.core.methods import Area
        from scorer.core.reads import AreaScore

        current = decode(dict[Area, AreaScore | None], body.get("current") or [], "current")
        exc = Conflict(message, body.get("version"), current)
    elif response.status_code in (502, 503, 504) or kind == "Unavailable":
        exc = ServerUnavailable(f"the server is not available ({response.status_code}): {message}")
    else:
        exc = ERRORS.get(kind, ScorerError)(message)
    if isinstance(body, dict) and isinstance(body.get("session"), dict):
        exc.session = body["session"]  # type: ignore[attr-defined]
    return exc


class RemoteService:
    """One service of the facade (``ws.reading``...) whose methods run on the server."""

    def __init__(self, workspace: RemoteWorkspace, name: str) -> None:
        self._ws = workspace
        self._name = name

    def __getattr__(self, method: str) -> Callable[..., Any]:
        call = self._ws.calls.get(f"{self._name}.{method}")
        if call is None:
            raise AttributeError(f"{self._name} has no operation {method!r}")

        def run(session: UserSession, *args: Any, **kwargs: Any) -> Any:
            return self._ws.call(call, session, args, kwargs)

        run.__name__ = method
        run.__doc__ = f"{call.name}, run on the server."
        return run


class RemoteImages(RemoteService):
    """``ws.images``: as the server's, and the films of a case fetched to this workstation."""

    @property
    def cache_dir(self) -> Path:
        """This workstation's pyramid cache for this server (local, owner-only)."""
        return self._ws.local_dir / "cache"

    @property
    def films_dir(self) -> Path:
        return self._ws.local_dir / "films"

    def case_images(self, session: UserSession, case_code: str) -> dict[str, list[CaseFilm]]:
        """The films of one of the reader's cases, each fetched from the server into this
        workstation's owner-only folder of that case (kept while its content is the same)."""
        call = self._ws.calls["images.case_images"]
        films: dict[str, list[CaseFilm]] = self._ws.call(call, session, (case_code,), {})
        folder = self.films_dir / _safe(case_code)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        kept: set[str] = set()
        out: dict[str, list[CaseFilm]] = {}
        wanted: dict[str, tuple[Path, str]] = {}
        for letter, items in films.items():
            out[letter] = []
            for film in items:
                target = folder / f"{_safe(film.image)}.dcm"
                kept.add(target.name)
                if not _have(target, film.sha256):
                    wanted[film.image] = (target, film.sha256)
                out[letter].append(
                    CaseFilm(film.image, film.regions, str(target), film.sha256, film.joints)
                )
        if wanted:
            try:
                self._fetch(session, case_code, wanted)
            except ScorerError as exc:
                self._ws._after_error(session, exc)
                raise
        for old in folder.glob("*.dcm"):
            if old.name not in kept:
                old.unlink(missing_ok=True)
        # The films of the few cases shown last stay; the others go (as on a station of its
        # own: scorer.imaging.delivery.prune_cases).
        prune_cases(self.films_dir, folder)
        return out

    def _fetch(
        self, session: UserSession, case_code: str, wanted: dict[str, tuple[Path, str]]
    ) -> None:
        """The films named, in one request (a zip of them), each written owner-only."""
        import zipfile

        response = self._ws.connection.request(
            "POST",
            f"/api/films/{quote(case_code, safe='')}",
            token=self._ws.token(session),
            body={"films": list(wanted)},
        )
        try:
            with zipfile.ZipFile(io.BytesIO(response.content)) as z:
                for name, (target, sha) in wanted.items():
                    _write_private(target, z.read(name))
                    _write_private(target.with_suffix(".sha256"), sha.encode("ascii"))
        except (zipfile.BadZipFile, KeyError, zlib.error) as exc:
            raise ServerUnavailable(
                f"the films of case {case_code} arrived damaged ({exc}); try again"
            ) from None

    def import_images(
        self,
        session: UserSession,
        trial: str,
        paths: Sequence[Path],
        manifest: Any = None,
        progress: Callable[[int, int, str], None] | None = None,
        **limits: Any,
    ) -> Any:
        """Upload the files of ``paths`` (files, folders, zips) to the server and import them
        there; the report names each file by its path here, as a local import does."""
        from scorer.imaging.manifest import Manifest
        from scorer.imaging.sources import LINK_OUTSIDE
        from scorer.services.import_report import FileOutcome, ImportReport

        conn, token = self._ws.connection, self._ws.token(session)
        links: list[Path] = []
        files = list(_upload_plan(paths, links))
        batch = conn.request("POST", "/api/upload", token=token, body={}).json()["batch"]
        try:
            for n, (local, name) in enumerate(files):
                if progress is not None:
                    progress(n, len(files), f"sending {local.name}")
                with local.open("rb") as data:
                    conn.upload(f"/api/upload/{batch}/{quote(name)}", token, data)
        except BaseException:
            # Interrupted (Ctrl-C, a file that cannot be read, the server gone): the batch
            # is removed on the server, as far as it can be.
            with contextlib.suppress(Exception):
                conn.request("DELETE", f"/api/upload/{batch}", token=token)
            raise
        if progress is not None:
            progress(len(files), len(files), "importing on the server")
        body: dict[str, Any] = {
            "trial": trial,
            "roots": [Path(p).name or "root" for p in paths],
            "manifest": encode(Manifest | None, manifest),
        }
        for key in ("workers", "timeout_s", "max_mb", "manifest_names"):
            if limits.get(key) is not None:
                body[key] = list(limits[key]) if key == "manifest_names" else limits[key]
        try:
            answer = conn.request(
                "POST",
                f"/api/upload/{batch}/import",
                token=token,
                body=body,
                timeout=IMPORT_TIMEOUT_S,
            ).json()
        except Unavailable as exc:
            raise Unavailable(
                f"{exc} — the server may still be importing what was sent: look at the "
                "trial's images (scorer image list) before importing the same files again"
            ) from None
        except ScorerError as exc:
            self._ws._after_error(session, exc)
            raise
        self._ws._update(session, answer.get("session"))
        report = decode(ImportReport, answer["result"], "import report")
        for f in report.files:
            f.file = _local_name(f.file, paths)
        report.files += [FileOutcome(str(p), "skipped", reason=LINK_OUTSIDE) for p in links]
        return report


def _upload_plan(paths: Sequence[Path], links: list[Path]) -> Iterator[tuple[Path, str]]:
    """(local file, name in the upload batch) for every regular file of the paths: root ``i``
    as ``i/<its name>``, a folder's files under it by their relative path. A link in a folder
    that leads out of it is not followed: it goes to ``links``, reported as a local import
    reports it."""
    for i, root in enumerate(Path(p) for p in paths):
        name = root.name or "root"
        if root.is_file():
            yield root, f"{i}/{name}"
        elif root.is_dir():
            inside = root.resolve()
            for p in sorted(root.rglob("*")):
                if not p.is_file():
                    continue
                if p.resolve().is_relative_to(inside):
                    yield p, f"{i}/{name}/{p.relative_to(root).as_posix()}"
                else:
                    links.append(p)


def _local_name(shown: str, paths: Sequence[Path]) -> str:
    """A file the server reported as ``i/<root name>...`` by its path here."""
    head, _, rest = shown.partition("/")
    if head.isdigit() and int(head) < len(paths):
        root = Path(paths[int(head)])
        name = root.name or "root"
        if rest == name or rest.startswith((name + "/", name + "!")):
            return str(root) + rest[len(name) :]
    return shown


class RemoteOversight(RemoteService):
    """``ws.oversight`` (verification runs on the server, for the caller's role)."""


def _arguments(call: Call, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments by name, positional ones in the method's order; an argument
    left at None, or a callback (progress), that the wire does not take is the server's."""
    if len(args) > len(call.order):
        raise TypeError(f"{call.name} takes {len(call.order)} arguments, {len(args)} given")
    body = dict(zip(call.order, args, strict=False))
    for name, value in kwargs.items():
        if name in body:
            raise TypeError(f"{call.name} got {name!r} twice")
        body[name] = value
    taken = set(call.signature.parameters) | ({"out"} if call.carried == "file" else set())
    for name in list(body):
        if name not in taken:
            if body[name] is None or callable(body[name]):
                del body[name]  # the server keeps its default (no progress over the wire)
                continue
            raise TypeError(f"{call.name} does not take {name!r} over the server")
    return body


def _write_out(path: Path, data: bytes) -> None:
    """A file the server made, written here owner-only, whole or not at all."""
    from scorer.core.private_files import replacing

    with replacing(path) as temporary:
        temporary.write_bytes(data)


def _have(target: Path, sha256: str) -> bool:
    """Whether the film at ``target`` is the one with this pixel hash (fetched before)."""
    marker = target.with_suffix(".sha256")
    try:
        return target.is_file() and marker.read_text(encoding="ascii") == sha256
    except (OSError, UnicodeDecodeError):
        return False


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:80] or "_"


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


class RemoteWorkspace:
    """What the windows and commands use of the facade, over a server."""

    remote = True

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.calls: dict[str, Call] = operations()
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        tag = hashlib.sha256(f"server\x1f{connection.url}".encode()).hexdigest()[:16]
        self.local_dir = data_dir() / "remote" / tag
        self.accounts = RemoteAccounts(self, "accounts")
        self.trials = RemoteService(self, "trials")
        self.images = RemoteImages(self, "images")
        self.worklists = RemoteService(self, "worklists")
        self.reading = RemoteService(self, "reading")
        self.adjudication = RemoteService(self, "adjudication")
        self.calibration = RemoteService(self, "calibration")
        self.coordination = RemoteService(self, "coordination")
        self.drift = RemoteService(self, "drift")
        self.joints = RemoteService(self, "joints")
        self.exchange = RemoteService(self, "exchange")
        self.oversight = RemoteOversight(self, "oversight")
        self.database = RemoteService(self, "database")

    @classmethod
    def open(
        cls, url: str, cafile: str | None = None, fingerprint: str | None = None
    ) -> RemoteWorkspace:
        """Connect to the server at ``url`` (checked with ``GET /health``)."""
        connection = Connection(url, cafile, fingerprint)
        try:
            health = connection.request("GET", "/health").json()
        except BaseException:
            connection.close()
            raise
        if not (isinstance(health, dict) and health.get("ok") is True):
            connection.close()
            raise ServerUnavailable(f"{connection.url} does not answer as a scorer server")
        return cls(connection)

    @property
    def url(self) -> str:
        return self.connection.url

    def token(self, session: UserSession) -> str:
        with self._lock:
            token = self._tokens.get(session.id)
        if token is None:
            raise AuthError("this session has ended; log in again")
        return token

    def remember(self, session: UserSession, token: str) -> None:
        with self._lock:
            self._tokens[session.id] = token

    def forget(self, session: UserSession) -> None:
        with self._lock:
            self._tokens.pop(session.id, None)

    def call(
        self, call: Call, session: UserSession, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Run ``call`` on the server for ``session``; its answer decoded, the session updated."""
        if not call.reachable:
            raise InvalidInput(
                f"{call.name} runs on the server's host only, not over the server: "
                f"{'; '.join(call.signature.problems) or 'it has its own endpoint'}"
            )
        body = _arguments(call, args, kwargs)
        out = body.pop("out", None) if call.carried == "file" else None
        wire = {name: encode(call.signature.parameters[name].hint, v) for name, v in body.items()}
        if out is not None:
            wire["suffix"] = Path(out).suffix or ".bin"
        try:
            answer = self.connection.request(
                "POST", f"/api/call/{call.name}", token=self.token(session), body=wire
            ).json()
        except ScorerError as exc:
            self._after_error(session, exc)
            raise
        self._update(session, answer.get("session"))
        try:
            if call.carried == "document":
                return decode_document(answer.get("result"))
            if out is not None:
                _write_out(Path(out), base64.b64decode(answer.get("file") or "", validate=True))
                if answer.get("result") is None:
                    return Path(out)
            return decode(call.signature.returns, answer.get("result"), f"{call.name} result")
        except (WireError, ValueError, KeyError, TypeError) as exc:
            raise ScorerError(
                f"the server's answer to {call.name} is not understood: {exc}"
            ) from None

    def _after_error(self, session: UserSession, exc: ScorerError) -> None:
        """The session as an error left it: the state the server sent with it, or, for a
        refused token (no state), ended."""
        state = getattr(exc, "session", None)
        if state is not None:
            self._update(session, state)
        elif isinstance(exc, AuthError):
            session.closed = True
            self.forget(session)

    def _update(self, session: UserSession, state: Any) -> None:
        if not isinstance(state, dict):
            return
        for name in SESSION_FIELDS:
            if name in state:
                setattr(session, name, state[name])
        if session.closed:
            self.forget(session)

    # ------------------------------------------------------------- the server's receivers

    def receiver(self, session: UserSession, trial: str, action: str, **options: Any) -> Any:
        """Start (``options``: aet, port, host, allow) or stop the server's DICOM receiver for
        ``trial``, or ("status", ``since``) ask what arrived after the first ``since``."""
        token = self.token(session)
        path = f"/api/receiver/{quote(trial, safe='')}"
        try:
            if action == "status":
                answer = self.connection.request(
                    "GET", f"{path}?since={int(options.get('since', 0))}", token=token
                ).json()
            else:
                answer = self.connection.request(
                    "POST", f"{path}/{action}", token=token, body=options
                ).json()
        except ScorerError as exc:
            self._after_error(session, exc)
            raise
        self._update(session, answer.get("session"))
        return answer["result"]

    def verify(self) -> Any:
        raise InvalidInput(
            "verification runs on the server: a monitor asks for it (oversight.verify), or "
            "run scorer audit verify on the server's host"
        )

    def close(self) -> None:
        self.connection.close()


class RemoteAccounts(RemoteService):
    """``ws.accounts``: log-in and log-out through the server's own endpoints."""

    def login(self, username: str, password: str) -> UserSession:
        answer = self._ws.connection.request(
            "POST",
            "/api/login",
            # The server records which workstation logged in: this computer's name.
            body={"username": username, "password": password, "workstation": platform.node()},
        ).json()
        state = answer["session"]
        now = datetime.now(UTC)
        session = UserSession(
            user_id=0,
            username=state["username"],
            full_name=state["full_name"],
            role=state["role"],
            id=state.get("id") or hashlib.sha256(answer["token"].encode()).hexdigest()[:16],
            started=now,
            last_active=now,
        )
        self._ws.remember(session, answer["token"])
        self._ws._update(session, state)
        return session

    def logout(self, session: UserSession) -> None:
        try:
            token = self._ws.token(session)
        except AuthError:
            return  # already ended
        try:
            self._ws.connection.request("POST", "/api/logout", token=token)
        except AuthError:
            pass  # the server had ended it already
        finally:
            session.closed = True
            self._ws.forget(session)
