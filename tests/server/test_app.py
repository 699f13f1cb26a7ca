"""The server's application in this process (no TLS): log-in rate limits, sessions that lock
and expire by the workspace's clock, the error answers, and request logs without secrets."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

with warnings.catch_warnings():
    # Starlette would rather its test client ran on "httpx2"; httpx is what it runs on today.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from scorer.server.app import ServerSettings, make_app
from scorer.store.location import resolve
from scorer.workspace import Workspace

PASSWORD = "Sunflower-Meadow-7"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, Clock]]:
    clock = Clock()
    db = str(tmp_path / "db.sqlite")
    Workspace.initialize("admin", "Ada Admin", PASSWORD, db=db).close()
    ws = Workspace.open(db=db, clock=clock)
    settings = ServerSettings(login_window_s=60, login_per_account=3, login_per_address=5)
    app = make_app(resolve(db), settings, workspace=ws)
    with TestClient(app, base_url="https://testserver") as client:
        yield client, clock


def _login(client: TestClient, username: str = "admin", password: str = PASSWORD) -> str:
    r = client.post("/api/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def test_login_attempts_are_limited_per_account_and_per_address(
    served: tuple[TestClient, Clock],
) -> None:
    client, _ = served
    for _ in range(3):
        client.post("/api/login", json={"username": "admin", "password": "wrong"})
    r = client.post("/api/login", json={"username": "admin", "password": PASSWORD})
    assert r.status_code == 429 and r.json()["error"] == "TooManyAttempts"
    assert r.headers["retry-after"] == "60"
    # The address's limit (5) is reached with other IDs too.
    r = client.post("/api/login", json={"username": "nobody", "password": "x"})
    assert r.status_code == 401
    r = client.post("/api/login", json={"username": "nobody2", "password": "x"})
    assert r.status_code == 429


def test_log_ins_that_succeed_do_not_count_against_their_address(tmp_path: Path) -> None:
    """Workstations behind one NAT or proxy share an address: eight readers all log in from
    it (the address's limit is 5), while failed log-ins from it are still limited, and each
    account keeps its own limit, successes included."""
    db = str(tmp_path / "db.sqlite")
    ws = Workspace.initialize("admin", "Ada Admin", PASSWORD, db=db)
    admin = ws.accounts.login("admin", PASSWORD)
    readers = [f"reader{i}" for i in range(1, 9)]
    for user in readers:
        ws.accounts.add_user(admin, user, f"Reader {user}", "reader", PASSWORD)
    ws.close()
    settings = ServerSettings(login_window_s=60, login_per_account=3, login_per_address=5)
    app = make_app(resolve(db), settings)
    with TestClient(app, base_url="https://testserver") as client:
        for user in readers:
            _login(client, user)
        for _ in range(2):
            _login(client, "reader1")  # then its account's limit (3) holds, successes counted
        r = client.post("/api/login", json={"username": "reader1", "password": PASSWORD})
        assert r.status_code == 429
        # That refused attempt and four guesses from the address: its limit (5).
        for user in readers[1:5]:
            r = client.post("/api/login", json={"username": user, "password": "guess"})
            assert r.status_code == 401
        r = client.post("/api/login", json={"username": "reader7", "password": PASSWORD})
        assert r.status_code == 429 and r.json()["error"] == "TooManyAttempts"


def test_an_idle_session_locks_then_expires(served: tuple[TestClient, Clock]) -> None:
    client, clock = served
    token = _login(client)
    auth = {"Authorization": f"Bearer {token}"}
    answer = client.post("/api/call/trials.list_trials", headers=auth).json()
    assert answer["result"] == [] and answer["session"]["locked"] is False
    clock.now += timedelta(minutes=16)
    r = client.post("/api/call/trials.list_trials", headers=auth)
    assert r.status_code == 423 and r.json()["error"] == "SessionLocked"
    assert r.json()["session"]["locked"] is True  # the client's copy follows
    # The lock is kept between requests: it stays locked until unlocked with the password.
    assert client.post("/api/call/trials.list_trials", headers=auth).status_code == 423
    r = client.post("/api/call/accounts.unlock", headers=auth, json={"password": PASSWORD})
    assert r.status_code == 200, r.text
    assert client.post("/api/call/trials.list_trials", headers=auth).status_code == 200
    clock.now += timedelta(hours=13)
    r = client.post("/api/call/trials.list_trials", headers=auth)
    assert r.status_code == 401 and "expired" in r.json()["message"]


def test_logout_ends_the_token(served: tuple[TestClient, Clock]) -> None:
    client, _ = served
    auth = {"Authorization": f"Bearer {_login(client)}"}
    assert client.post("/api/logout", headers=auth).status_code == 200
    r = client.post("/api/call/trials.list_trials", headers=auth)
    assert r.status_code == 401 and r.json()["error"] == "AuthError"
    assert client.post("/api/logout", headers=auth).status_code == 401


@pytest.mark.parametrize(
    ("path", "headers", "body", "status", "kind"),
    [
        ("/api/call/trials.list_trials", {}, None, 401, "AuthError"),
        ("/api/call/trials.list_trials", {"Authorization": "Bearer nope"}, None, 401, "AuthError"),
        ("/api/call/no.such", "auth", None, 404, "NotFound"),
        ("/api/call/trials.add_visit", "auth", {"trial": "T9", "label": "W0"}, 404, "NotFound"),
        ("/api/call/trials.add_visit", "auth", {"trial": 1, "label": "W0"}, 400, "BadRequest"),
        (
            "/api/call/accounts.add_user",
            "auth",
            {"username": "x", "full_name": "X", "role": "reader", "password": "short"},
            422,
            "InvalidInput",
        ),
        ("/api/call/accounts.login", "auth", None, 501, "NotOffered"),
        ("/api/call/database.backup", "auth", {}, 501, "NotOffered"),
    ],
)
def test_errors_answer_with_kind_and_status(
    served: tuple[TestClient, Clock],
    path: str,
    headers: object,
    body: object,
    status: int,
    kind: str,
) -> None:
    client, _ = served
    h = {"Authorization": f"Bearer {_login(client)}"} if headers == "auth" else headers
    r = client.post(path, headers=h, json=body)  # type: ignore[arg-type]
    assert (r.status_code, r.json()["error"]) == (status, kind), r.text
    assert "Traceback" not in r.text


def test_request_logs_are_json_lines_without_secrets(
    served: tuple[TestClient, Clock], caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = served
    with caplog.at_level(logging.INFO, logger="scorer.server.access"):
        token = _login(client)
        client.post("/api/login", json={"username": "admin", "password": "Wrong-Password-1"})
        client.post("/api/call/trials.list_trials", headers={"Authorization": f"Bearer {token}"})
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name.endswith("access")]
    assert [(x["path"], x["status"]) for x in lines] == [
        ("/api/login", 200),
        ("/api/login", 401),
        ("/api/call/trials.list_trials", 200),
    ]
    assert lines[2]["operation"] == "trials.list_trials" and lines[2]["user"] == "admin"
    assert set(lines[0]) == {
        "time",
        "method",
        "path",
        "operation",
        "status",
        "ms",
        "user",
        "client",
    }
    text = caplog.text
    assert token not in text and PASSWORD not in text and "Wrong-Password-1" not in text


def test_bodies_too_large_too_deep_or_with_text_no_column_holds_are_refused(
    served: tuple[TestClient, Clock],
) -> None:
    """Security review's findings: a huge body, JSON nested past the parser's recursion, a NUL
    (PostgreSQL's text cannot hold one) or a lone surrogate answered 500 or ran the server
    out of memory; each is a 4xx naming the problem now."""
    client, _ = served
    big = b'{"username": "' + b"A" * (70 * 1024) + b'", "password": "x"}'
    r = client.post("/api/login", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "TooLarge"
    auth = {"Authorization": f"Bearer {_login(client)}"}
    deep = "[" * 5000 + "]" * 5000
    r = client.post("/api/call/trials.list_trials", content=deep, headers=auth)
    assert r.status_code == 400 and "nested too deeply" in r.json()["message"]
    for text, why in (('"adm\\u0000in"', "NUL"), ('"\\ud800"', "surrogate")):
        body = '{"username": ' + text + ', "password": "x"}'
        r = client.post("/api/login", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400 and why in r.json()["message"], r.text


def test_concurrent_log_ins_cannot_slip_past_the_account_limit(
    served: tuple[TestClient, Clock],
) -> None:
    """Counting and recording an attempt is one write transaction: of 12 log-ins at once for
    one account (limit 3 a minute), at most 3 get past the limit (security review: all did)."""
    import threading

    client, _ = served
    statuses: list[int] = []
    lock = threading.Lock()

    def attempt() -> None:
        r = client.post("/api/login", json={"username": "admin", "password": "wrong"})
        with lock:
            statuses.append(r.status_code)

    threads = [threading.Thread(target=attempt) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(statuses) == 12
    assert sum(s != 429 for s in statuses) <= 3, statuses


def test_sessions_idle_past_the_expiry_are_forgotten_at_the_next_log_in(
    served: tuple[TestClient, Clock],
) -> None:
    """A workstation that went away never sends its token again: its session row goes at
    the next log-in once idle past the expiry, and a recent one stays."""
    from scorer.server.app import token_hash
    from scorer.store import server_sessions

    client, clock = served
    old = _login(client)
    clock.now += timedelta(hours=6)
    recent = _login(client)
    clock.now += timedelta(hours=7)
    _login(client)
    store = client.app.state.server.ws.store  # type: ignore[attr-defined]
    assert server_sessions.get(store, token_hash(old)) is None
    assert server_sessions.get(store, token_hash(recent)) is not None


def test_overlapping_requests_do_not_undo_each_others_session_change(
    served: tuple[TestClient, Clock],
) -> None:
    """A save that loaded the session before a lock, answered after it and 45 s later, writes
    its time of activity and leaves the lock: only the columns a request changed are written
    (the reviewer saw the lock undone by the last writer)."""
    from dataclasses import replace as changed

    from scorer.server.app import token_hash
    from scorer.services.session import parse_time
    from scorer.store import server_sessions

    client, _clock = served
    token = _login(client)
    store = client.app.state.server.ws.store  # type: ignore[attr-defined]
    digest = token_hash(token)
    loaded = server_sessions.get(store, digest)
    assert loaded is not None and not loaded.locked
    # Request A locks; request B, loaded before A, only moved the time of activity.
    server_sessions.save(store, digest, changed(loaded, locked=True), loaded)
    later = (parse_time(loaded.last_active) + timedelta(seconds=45)).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )
    server_sessions.save(store, digest, changed(loaded, last_active=later), loaded)
    now = server_sessions.get(store, digest)
    assert now is not None and now.locked and now.last_active == later
    # An older time of activity never overwrites a newer one.
    server_sessions.save(store, digest, changed(now, last_active=loaded.last_active), now)
    again = server_sessions.get(store, digest)
    assert again is not None and again.last_active == later
    r = client.post("/api/call/trials.list_trials", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 423
