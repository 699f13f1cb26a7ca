"""Two ``scorer server`` instances on one PostgreSQL, behind one address (the tests'
round-robin proxy), with one site config (one audit key, receipts file and image stores):
a session made on one instance is valid on the other; workstations saving to the same reads
at once through the proxy lose no update and get conflicts as conflicts; the audit chains
verify and the receipts hold each commit once, whichever instance made it; and an instance
killed mid-load leaves the other serving, nothing acknowledged lost."""

from __future__ import annotations

import contextlib
import os
import random
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from scorer.cli.demo_server import LocalServer, local_server
from tests.pg import PgServer, pg_server  # noqa: F401  (the fixture)
from tests.server.roundrobin import RoundRobin

pytestmark = [pytest.mark.posix, pytest.mark.slow]

READER = "reader3"
WORKSTATIONS = 4


@dataclass
class Centre:
    db: str
    site: Path
    passwords: dict[str, str]
    instances: list[LocalServer]
    proxy: RoundRobin
    verify: ssl.SSLContext
    env: dict[str, str] = field(default_factory=dict)
    #: One session of reader3 per workstation, logged in once (the account's log-in limit).
    tokens: list[str] = field(default_factory=list)
    #: Each chain's last row before the instances started.
    heads_at_start: dict[str, int] = field(default_factory=dict)

    def url(self, i: int | None = None) -> str:
        """The proxy's address, or instance ``i``'s own."""
        return f"https://127.0.0.1:{self.proxy.port}" if i is None else self.instances[i].url

    def client(self, i: int | None = None) -> httpx.Client:
        # No keep-alive through the proxy: every request is a connection of its own, so
        # consecutive requests of one workstation go to the instances in turn.
        keep = 0 if i is None else 10
        return httpx.Client(
            base_url=self.url(i),
            verify=self.verify,
            timeout=30,
            limits=httpx.Limits(max_keepalive_connections=keep),
        )


@pytest.fixture(scope="module")
def centre(
    pg_server: PgServer,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Centre]:
    from scorer.demo import repo_samples_dir, run_demo

    folder = tmp_path_factory.mktemp("two-instances")
    site = folder / "site"
    config = folder / "scorer.toml"
    config.write_text(
        f'audit_key = "{site / "audit.key"}"\n'
        f'receipts = "{site / "receipts"}"\n'
        f'readers_store = "{site / "readers"}"\n'
        f'originals_store = "{site / "originals"}"\n',
        encoding="utf-8",
    )
    url = pg_server.new_database()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCORER_DATA_DIR", str(folder / "server-data"))
        mp.setenv("SCORER_CONFIG", str(config))
        mp.delenv("SCORER_DB", raising=False)
        made = run_demo(url, samples=repo_samples_dir(), say=lambda _t: None)
        heads = {
            chain: max(places)
            for t in ("audit_events", "events")
            for chain, places in _commit_heads(url, t).items()
        }
        with contextlib.ExitStack() as stack:
            # One after the other: the first makes the certificate, the second reuses it.
            instances = [
                stack.enter_context(local_server(url, folder / f"server-{i}.log")) for i in range(2)
            ]
            assert instances[0].fingerprint == instances[1].fingerprint
            ports = [int(s.url.rsplit(":", 1)[1]) for s in instances]
            proxy = stack.enter_context(RoundRobin(ports, lifetime_s=600))
            verify = ssl.create_default_context(cafile=str(instances[0].cert))
            c = Centre(url, site, made.passwords, instances, proxy, verify, dict(os.environ))
            c.heads_at_start = heads
            with c.client() as client:
                c.tokens = [_log_in(c, client) for _ in range(WORKSTATIONS)]
            yield c
    pg_server.drop_database(url)


# ------------------------------------------------------------------ helpers


def _log_in(c: Centre, client: httpx.Client, user: str = READER) -> str:
    r = client.post("/api/login", json={"username": user, "password": c.passwords[user]})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def _call(client: httpx.Client, token: str, name: str, **kwargs: Any) -> Any:
    r = client.post(f"/api/call/{name}", headers={"Authorization": f"Bearer {token}"}, json=kwargs)
    assert r.status_code == 200, r.text
    return r.json()["result"]


def _areas_of_case(c: Centre) -> list[tuple[str, dict[str, str], int]]:
    """(read, area, highest score) of every single-part area of reader3's first case."""
    from scorer.core.methods import get_method

    with c.client() as client:
        token = c.tokens[0]
        rows = _call(client, token, "worklists.worklist", trial="DEMO-RA")
        opened = _call(client, token, "reading.open_case", case_code=rows[0]["code"])
        reads = list(opened["reads"].values())
        method = get_method(_call(client, token, "reading.get_read", code=reads[0])["method"])
    areas = [d for d in method.areas if not d.sides]
    return [(r, d.area._asdict(), d.max) for r in reads for d in areas]


def _score_of(area: dict[str, str], pairs: list[list[Any]]) -> int | None:
    """The score an encoded ``[[area, value], ...]`` holds for ``area`` (None: not entered)."""
    for a, value in pairs:
        if a == area:
            return None if value is None else int(value["score"])
    raise AssertionError(f"{area} not in {pairs}")


@dataclass
class Tally:
    """What the workstations were told: acknowledged increments per area, conflicts, and
    anything else."""

    acks: dict[tuple[str, str], int] = field(default_factory=dict)
    conflicts: int = 0
    resent: int = 0
    other: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _increment(
    c: Centre,
    client: httpx.Client,
    token: str,
    target: tuple[str, dict[str, str], int],
    seen: dict[tuple[str, str], int | None],
    tally: Tally,
) -> None:
    """One save as the score writer sends it: the area's next value, with ``expected`` what
    this workstation last saw there; sent again until answered (an instance that dies takes
    its answer with it). A lost update would show as an area holding less than its count of
    acknowledged increments."""
    read, area, _ = target
    key = (read, str(sorted(area.items())))
    was = seen.get(key)
    value = 0 if was is None else was + 1
    body = {
        "code": read,
        "area": area,
        "value": {"score": value},
        "expected": [[area, None if was is None else {"score": was}]],
    }
    auth = {"Authorization": f"Bearer {token}"}
    for attempt in range(20):
        try:
            r = client.post("/api/call/reading.set_score", headers=auth, json=body)
        except httpx.TransportError:
            with tally.lock:
                tally.resent += 1
            time.sleep(0.05 * (attempt + 1))
            continue
        if r.status_code == 200:
            mine = True
        elif r.status_code == 409 and r.json().get("error") == "Conflict":
            now = _score_of(area, r.json()["current"])
            seen[key] = now
            # Its own first sending committed (answer lost): acknowledged by its own value.
            # Only so when this workstation is the area's one writer (the kill phase).
            mine = attempt > 0 and now == value
            if not mine:
                with tally.lock:
                    tally.conflicts += 1
                return
        else:
            with tally.lock:
                tally.other.append(f"{r.status_code}: {r.text[:200]}")
            return
        if mine:
            seen[key] = value
            with tally.lock:
                tally.acks[key] = tally.acks.get(key, 0) + 1
        return
    with tally.lock:
        tally.other.append("no answer in 20 sendings")


def _workstation(
    c: Centre,
    targets: list[tuple[str, dict[str, str], int]],
    saves: int,
    index: int,
    tally: Tally,
    stop_at: float,
) -> None:
    rng = random.Random(index)
    seen: dict[tuple[str, str], int | None] = {}
    with c.client() as client:
        token = c.tokens[index]
        for _ in range(saves):
            if time.monotonic() > stop_at:
                tally.other.append("out of time")
                return
            open_ = [
                t for t in targets if (seen.get((t[0], str(sorted(t[1].items())))) or 0) < t[2]
            ]
            if not open_:
                return
            _increment(c, client, token, rng.choice(open_), seen, tally)


def _run_workstations(
    c: Centre, jobs: list[tuple[list[Any], int]], seconds: float, tally: Tally | None = None
) -> Tally:
    tally = tally or Tally()
    stop_at = time.monotonic() + seconds
    threads = [
        threading.Thread(target=_workstation, args=(c, targets, n, i, tally, stop_at))
        for i, (targets, n) in enumerate(jobs)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    assert not any(t.is_alive() for t in threads)
    return tally


def _held(c: Centre, targets: list[tuple[str, dict[str, str], int]]) -> dict[tuple[str, str], int]:
    """What the database holds in each area (through the server): entered scores only."""
    out: dict[tuple[str, str], int] = {}
    with c.client(0) as client:
        token = c.tokens[0]
        for read in sorted({t[0] for t in targets}):
            scores = _call(client, token, "reading.get_read", code=read)["scores"]
            for area, value in scores:
                if value is not None and value.get("score") is not None:
                    out[(read, str(sorted(area.items())))] = int(value["score"])
    return out


def _no_lost_update(c: Centre, targets: list[Any], tally: Tally) -> None:
    held = _held(c, targets)
    for key, n in tally.acks.items():
        # Increments from 0: n acknowledged saves leave n - 1 (each saw the one before it).
        assert held.get(key) == n - 1, (key, n, held.get(key))


def _verify(c: Centre) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "scorer", "audit", "verify", "--db", c.db, "--maintenance"],
        capture_output=True,
        text=True,
        env=c.env,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def _receipts_once_per_commit(c: Centre, killed: int = 0) -> None:
    """No commit receipted twice; every commit the instances made receipted but, after
    ``killed`` instances were killed, the one each may have committed without writing its
    receipt (of each table: audit and events). Receipts name each chain's row count."""
    from scorer.store.audit import read_receipts

    chains, problems = read_receipts(c.site / "receipts")
    if not killed:
        assert problems == []
    for chain, entries in chains.items():
        counts = [n for n, _ in entries]
        assert len(counts) == len(set(counts)), f"{chain}: a commit receipted twice"
    missing = {
        chain: [n for n in heads if n > c.heads_at_start.get(chain, 0)
                and n not in {m for m, _ in chains.get(chain, [])}]
        for table in ("audit_events", "events")
        for chain, heads in _commit_heads(c.db, table).items()
    }  # fmt: skip
    assert sum(len(m) for m in missing.values()) <= killed * 2, missing


def _commit_heads(db: str, table: str) -> dict[str, list[int]]:
    """Each chain's (by its name) last place of each commit (a commit's rows share their
    time and their chain), in order: what a receipt names."""
    from sqlalchemy import create_engine, text

    from scorer.store.audit import chain_name

    engine = create_engine(db)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    f"SELECT chain, max(coalesce(link, seq)) FROM {table} GROUP BY chain, at "
                    "ORDER BY 2"
                )
            )
            out: dict[str, list[int]] = {}
            for chain, head in rows:
                out.setdefault(chain_name(table, int(chain)), []).append(int(head))
            return out
    finally:
        engine.dispose()


# ------------------------------------------------------------------ tests


def test_a_session_made_on_one_instance_is_valid_on_the_other(centre: Centre) -> None:
    c = centre
    with c.client(0) as one, c.client(1) as two:
        token = _log_in(c, one)
        assert _call(two, token, "worklists.worklist", trial="DEMO-RA")
        assert _call(one, token, "worklists.worklist", trial="DEMO-RA")
        r = two.post("/api/logout", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        # Logged out on one, ended on both.
        r = one.post("/api/call/trials.list_trials", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401


def test_workstations_saving_to_the_same_reads_through_both_instances_lose_no_update(
    centre: Centre,
) -> None:
    c = centre
    targets = _areas_of_case(c)
    shared = targets[:10]  # four workstations on the same ten areas of one case: contention
    before = dict(c.proxy.served)
    tally = _run_workstations(c, [(shared, 30)] * WORKSTATIONS, seconds=120)
    assert tally.other == []
    assert tally.conflicts > 0  # they did meet, and were told so
    assert sum(tally.acks.values()) > 30
    _no_lost_update(c, shared, tally)
    served = {p: n - before.get(p, 0) for p, n in c.proxy.served.items()}
    assert len(served) == 2 and min(served.values()) > 30, served  # both instances served
    _verify(c)
    _receipts_once_per_commit(c)


def test_an_instance_killed_mid_load_leaves_the_other_serving_nothing_acknowledged_lost(
    centre: Centre,
) -> None:
    c = centre
    targets = _areas_of_case(c)
    # Each workstation the one writer of areas of its own (of the same reads): an answer lost
    # with the killed instance is then told apart by the area's value when sent again.
    mine = [targets[10 + i :: WORKSTATIONS] for i in range(WORKSTATIONS)]
    jobs = [(m, 60) for m in mine]
    tally = Tally()
    runner = threading.Thread(target=_run_workstations, args=(c, jobs, 120, tally))
    runner.start()
    time.sleep(1.5)
    killed = c.instances[1].proc
    with tally.lock:
        killed.kill()  # SIGKILL: no answer for what it had in hand
        acked_before = sum(tally.acks.values())
    killed.wait(10)
    runner.join(200)
    assert not runner.is_alive()
    assert 0 < acked_before < sum(tally.acks.values())  # killed mid-load, served on after
    assert tally.other == []
    assert sum(tally.acks.values()) >= 0.9 * 60 * WORKSTATIONS
    _no_lost_update(c, [t for m in mine for t in m], tally)
    # The proxy goes on through the one left.
    with c.client() as client:
        assert client.get("/health").status_code == 200
    _verify(c)
    _receipts_once_per_commit(c, killed=1)
