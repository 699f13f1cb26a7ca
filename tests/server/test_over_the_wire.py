"""The real ``scorer server`` process on loopback over a database made here, talked to with
httpx over TLS pinned to the certificate it generated: log-in, every operation as every role,
other readers' codes, the blinding of a reader's answers, a client that does not trust the
server, and a clean stop."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import types
import typing
from collections import abc
from collections.abc import Iterator
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import httpx
import pytest
import trustme

from scorer.server.calls import Call, operations
from scorer.store.migrate import head_revision
from tests.pg import pg_server  # noqa: F401  (the fixture)
from tests.store.conftest import (
    POPULATED_REAL_IDS,
    POPULATED_USERS,
    POPULATED_VISITS,
    USER_OF_ROLE,
    PopulatedTemplate,
    _build_populated,
)

pytestmark = pytest.mark.posix
ROLES = ("reader", "adjudicator", "coordinator", "monitor", "admin")
#: Own-session operations that change the caller's session (locking it, ending it, a new
#: password): each is tested on its own, not in the table.
SESSION_CHANGING = {"accounts.lock", "accounts.unlock", "accounts.change_password"}
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Running:
    url: str
    cert: Path
    proc: subprocess.Popen[str]
    template: PopulatedTemplate
    tokens: dict[str, str]
    env: dict[str, str]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=pinned(self.cert), timeout=30)


def pinned(cert: Path) -> ssl.SSLContext:
    """A TLS context that trusts exactly the server's certificate."""
    return ssl.create_default_context(cafile=str(cert))


def start(
    db: str, env: dict[str, str], port: int | None = None, logs_in: Path | None = None
) -> tuple[subprocess.Popen[str], str, Path]:
    """The real server process on loopback over ``db`` (a free port, or ``port``: a server
    started again where its clients know it); its output in files beside an SQLite ``db``
    (or in ``logs_in``); its certificate where it says it put it."""
    port = port or _free_port()
    # Its output goes to files: a pipe nobody reads would fill and stall the server.
    logs = (logs_in / "server" if logs_in else Path(db)).with_name(f"server-{port}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "scorer", "server", "--db", db, "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=logs.with_suffix(".out").open("w"),
        stderr=logs.with_suffix(".err").open("w"),
        text=True,
    )
    proc.args = [*proc.args, str(logs)]  # where stop() finds the output
    url = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server stopped: {_output(proc)[1][-2000:]}")
        said = re.search(r"certificate \([^)]*\): (.+)", logs.with_suffix(".out").read_text())
        if said:
            cert = Path(said.group(1).strip())
            try:
                r = httpx.get(url + "/health", verify=pinned(cert), timeout=2)
                if r.status_code == 200:
                    return proc, url, cert
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    stop(proc)
    raise AssertionError("the server did not answer /health within 30 s")


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> tuple[int, str, str]:
    proc.send_signal(sig)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
        raise AssertionError("the server did not stop within 15 s") from None
    return (proc.returncode, *_output(proc))


def _output(proc: subprocess.Popen[str]) -> tuple[str, str]:
    logs = Path(str(proc.args[-1]))  # type: ignore[index]
    return (
        logs.with_suffix(".out").read_text(encoding="utf-8"),
        logs.with_suffix(".err").read_text(encoding="utf-8"),
    )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def running(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    """The server over the populated database, on SQLite and on a real PostgreSQL."""
    folder = tmp_path_factory.mktemp("served")
    env = dict(os.environ)
    env.update(SCORER_DATA_DIR=str(folder / "data"), SCORER_CONFIG=str(folder / "none.toml"))
    env.pop("SCORER_DB", None)
    if request.param == "postgresql":
        db = request.getfixturevalue("pg_server").new_database()
    else:
        db = str(folder / "populated.sqlite")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCORER_DATA_DIR", env["SCORER_DATA_DIR"])
        mp.setenv("SCORER_CONFIG", env["SCORER_CONFIG"])
        template = _build_populated(folder, db)
    proc, url, cert = start(template.db, env, logs_in=folder)
    run = Running(url, cert, proc, template, {}, env)
    try:
        with run.client() as c:
            for role in ROLES:
                user = USER_OF_ROLE[role]
                r = c.post("/api/login", json={"username": user, "password": _pw(user)})
                assert r.status_code == 200, r.text
                run.tokens[role] = r.json()["token"]
        yield run
    finally:
        rc, _out, err = stop(proc)
        assert rc == 0, err[-2000:]


def _pw(user: str) -> str:
    return POPULATED_USERS[user][2]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ------------------------------------------------------------------ dummy arguments


def dummy(tp: Any) -> Any:
    """A value of the declared type that names nothing that exists."""
    if tp is str:
        return "NO-SUCH-THING"
    if tp is int:
        return 987654
    if tp is float:
        return 1.0
    if tp is bool:
        return False
    if tp is bytes:
        return ""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return args[0]
    if origin in (typing.Union, types.UnionType):
        return dummy(next(a for a in args if a is not type(None)))
    if origin is tuple and args and args[-1] is not Ellipsis:
        return [dummy(a) for a in args]
    if origin in (list, tuple, set, frozenset, abc.Sequence, abc.Set):
        return []
    if origin in (dict, abc.Mapping):
        return {} if args and args[0] is str else []
    if isinstance(tp, type) and is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        return {f.name: dummy(hints[f.name]) for f in fields(tp) if f.init}
    if isinstance(tp, type) and hasattr(tp, "_fields"):
        hints = typing.get_type_hints(tp)
        return {name: dummy(hints[name]) for name in tp._fields}
    return None


def dummy_arguments(call: Call) -> dict[str, Any]:
    args = {p.name: dummy(p.hint) for p in call.signature.parameters.values() if p.required}
    if call.carried == "file":
        args["suffix"] = ".png"  # the file comes back in the answer
    return args


CALLS = operations()
TABLE = [
    (name, role)
    for name, call in CALLS.items()
    if name not in SESSION_CHANGING and name not in ("accounts.login", "accounts.logout")
    for role in ROLES
]


@pytest.mark.parametrize(("name", "role"), TABLE, ids=[f"{n}-{r}" for n, r in TABLE])
def test_every_operation_as_every_role(running: Running, name: str, role: str) -> None:
    """Refused with 403 exactly when the rights table does not give the role the operation."""
    call = CALLS[name]
    with running.client() as c:
        r = c.post(
            f"/api/call/{name}", headers=_auth(running.tokens[role]), json=dummy_arguments(call)
        )
    allowed = not call.rights.roles or role in call.rights.roles
    body = r.json()
    if not allowed:
        assert (r.status_code, body["error"]) == (403, "PermissionDenied"), r.text
        return
    # Past the role check the service may still refuse the dummy arguments (not found,
    # invalid, a signature without its user ID: 401), but never for the role.
    assert r.status_code not in (400, 403, 423, 500), r.text
    if r.status_code == 401:
        assert "signature" in body["message"] or "password" in body["message"], r.text
    if not call.reachable:
        assert r.status_code == 501


def test_login_and_a_wrong_password(running: Running) -> None:
    with running.client() as c:
        admin = _auth(running.tokens["admin"])
        r = c.post(
            "/api/call/accounts.add_user",
            headers=admin,
            json={
                "username": "lockme",
                "full_name": "Lock Me",
                "role": "monitor",
                "password": "Harbour-Lights-2024",
            },
        )
        assert r.status_code == 200, r.text
        r = c.post("/api/login", json={"username": "lockme", "password": "Harbour-Lights-2024"})
        assert r.status_code == 200
        session = r.json()["session"]
        assert {k: session[k] for k in ("username", "full_name", "role")} == {
            "username": "lockme",
            "full_name": "Lock Me",
            "role": "monitor",
        }
        assert session["must_change_password"] is True and session["locked"] is False
        assert len(r.json()["token"]) >= 40
        for _ in range(5):
            r = c.post("/api/login", json={"username": "lockme", "password": "wrong-password"})
            assert (r.status_code, r.json()["error"]) == (401, "AuthError")
        r = c.post("/api/login", json={"username": "lockme", "password": "Harbour-Lights-2024"})
        assert r.status_code == 401 and "locked" in r.json()["message"]
        users = c.post("/api/call/accounts.list_users", headers=admin).json()["result"]
        assert {u["username"]: u["locked"] for u in users}["lockme"] is True
        trail = c.post("/api/call/oversight.audit_trail", headers=admin).json()["result"]
    failed = [e for e in trail if e["action"] == "user.login_failed" and e["entity_id"] == "lockme"]
    assert len(failed) >= 5


def test_a_reader_cannot_reach_another_readers_reads_or_cases(running: Running) -> None:
    t = running.template
    other = _auth(running.tokens["reader"])  # reader1
    with running.client() as c:
        r = c.post("/api/login", json={"username": "reader2", "password": _pw("reader2")})
        mine = _auth(r.json()["token"])
        theirs_read = t.reads["reader1"]["partial"]
        theirs_case = t.cases["reader1"][0]
        for name, args in [
            ("reading.get_read", {"code": theirs_read}),
            ("reading.set_note", {"code": theirs_read, "note": "mine now"}),
            (
                "reading.sign_read",
                {"code": theirs_read, "password": _pw("reader2"), "username": "reader2"},
            ),
            ("reading.reopen_read", {"code": t.reads["reader1"]["signed"], "reason": "x"}),
            ("reading.open_case", {"case_code": theirs_case}),
            ("images.case_images", {"case_code": theirs_case}),
            ("reading.raise_flag", {"case_code": theirs_case, "message": "hello"}),
            ("calibration.calibration_feedback", {"case_code": theirs_case}),
        ]:
            r = c.post(f"/api/call/{name}", headers=mine, json=args)
            assert r.status_code in (403, 404), (name, r.text)
        # reader1 still reaches their own.
        r = c.post("/api/call/reading.get_read", headers=other, json={"code": theirs_read})
        assert r.status_code == 200, r.text


def test_a_readers_answers_hold_no_patient(running: Running) -> None:
    t = running.template
    secrets_ = list(POPULATED_REAL_IDS) + list(t.patients.values())
    bodies: list[str] = []
    with running.client() as c:
        h = _auth(running.tokens["reader"])
        for name, args in [
            ("worklists.reading_trials", {}),
            ("trials.list_trials", {}),
            ("worklists.worklist", {"trial": "T1"}),
            ("worklists.my_reads", {"trial": "T1"}),
            ("coordination.flags", {"trial": "T1"}),
            *[("reading.open_case", {"case_code": code}) for code in t.cases["reader1"]],
            *[("images.case_images", {"case_code": code}) for code in t.cases["reader1"]],
            *[("reading.get_read", {"code": code}) for code in t.reads["reader1"].values()],
        ]:
            r = c.post(f"/api/call/{name}", headers=h, json=args)
            assert r.status_code == 200, (name, r.text)
            bodies.append(r.text)
        # Refusals too: a guessed patient code in a request is not echoed back.
        r = c.post(
            "/api/call/reading.start_read",
            headers=h,
            json={"trial": "T1", "patient_code": "ZZZZZZZZZZ", "visit": "W0"},
        )
        bodies.append(r.text)
    for text in bodies:
        for s in secrets_:
            assert s not in text
        # No value is a visit label, and no read or score of reader2 (the other reader).
        values = list(_strings(json.loads(text)))
        assert not {v for v in values if v in {label for label, _ in POPULATED_VISITS}}, text
        others = set(t.reads["reader2"].values()) | set(t.cases["reader2"])
        assert others and not others & set(values), text


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_a_client_that_does_not_trust_the_certificate_fails_closed(
    running: Running, tmp_path: Path
) -> None:
    other_ca = trustme.CA()
    pem = tmp_path / "other-ca.pem"
    other_ca.cert_pem.write_to_path(str(pem))
    for verify in (ssl.create_default_context(cafile=str(pem)), True):
        with pytest.raises(httpx.ConnectError), httpx.Client(verify=verify, timeout=5) as c:
            c.get(running.url + "/health")
    # Plain HTTP is not answered either.
    with pytest.raises(httpx.HTTPError), httpx.Client(timeout=5) as c:
        c.get(running.url.replace("https", "http") + "/health")


def test_the_server_stops_on_ctrl_c_and_reuses_its_certificate(
    running: Running, tmp_path: Path
) -> None:
    """A second server over the same database (and, for PostgreSQL, the same data folder,
    where its certificate is kept): the certificate made by the first is reused (same
    fingerprint), and SIGINT stops it cleanly."""
    before = running.cert.read_bytes()
    proc, url, cert = start(running.template.db, running.env, logs_in=tmp_path)
    assert cert == running.cert and cert.read_bytes() == before
    assert oct(cert.stat().st_mode & 0o777) == "0o600"
    key = cert.with_name(cert.name.replace("cert", "key"))
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    with httpx.Client(verify=pinned(cert), timeout=5) as c:
        assert c.get(url + "/health").json()["schema"] == head_revision()
    rc, out, _err = stop(proc, signal.SIGINT)
    assert rc == 0
    assert "SHA-256 fingerprint:" in out and "(in use)" in out and "stopped" in out
