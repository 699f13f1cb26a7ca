"""Server benchmark: reading workstations through `scorer server` on PostgreSQL, by size.

A PostgreSQL server is started on loopback in a temporary folder (as in the tests), the demo
trial is made in it (`scorer.demo.run_demo`) with 47 more reader accounts, so that reader3 to
reader52 are 50 readers each with a worklist of their own (reader1 and reader2 have signed all
theirs), and two real ``scorer server`` processes are started on 127.0.0.1 over it, one site
(one data folder: the same audit key, receipts and self-signed certificate, the only one the
clients trust), with the tests' round-robin proxy (``tests/server/roundrobin.py``, a process
of its own) in front of them. The 50 readers log in once, through the proxy (fifty
workstations behind one address); their sessions serve on either instance. Then:

- **Load.** 20 simulated workstations on the first instance, one ``httpx.AsyncClient`` and one
  log-in each (20 readers, 20 sessions), open the next case of their worklist and save one score
  (``reading.set_score`` with ``expected``: the area must still hold what this workstation last
  saw, as the GUI's score writer sends it) at Poisson times, one every 2 s on average, for
  ``--seconds``; every 10th save they move on to their next case. Figures: the save round trip
  (request sent to answer read) and "next case through the server": ``reading.open_case`` +
  ``images.case_images`` + downloading its films in one request (``POST /api/films/<case>``, a
  zip of them, as the workstation's client does), timed from asking to having every film. That
  is the case without prefetch: a workstation that prefetches does this while the previous case
  is read, so the reader waits less.
- **By size.** 1, 5, 20 and 50 workstations (``--size-seconds`` each), over the first
  instance alone and over both behind the proxy: after every workstation has opened its
  first case and prefetched the next one's films (starting within one mean gap: the start
  burst, timed apart as ``start_burst``), each saves at Poisson times, one every 2 s
  on average, and moves on every 10th save; the next case's films are prefetched while the
  current one is read (as the reading window does), and "next case" is what the reader waits
  when moving on: the prefetch's unfinished part, opening the case and listing its films.
  Per row: save round trip p50/p95, next case p50/p95, saves per second, the instances'
  user + system CPU over the row as % of one core (``/proc/PID/stat``), and each instance's
  peak RSS over the row (``/proc/PID/status`` VmHWM, reset at the row's start).
- **Saturation.** The offered save rate is ramped in stages (``--stage-seconds`` each): each
  stage runs ``2 s x rate`` virtual workstations (each the same Poisson saver, one save in
  flight at a time, each on a read of its own), sharing the 20 sessions and clients (so
  several workstations per session), until the stage's save p95 passes 100 ms or the
  highest rate is reached. The client runs on the same 2 cores as the server and PostgreSQL,
  so this is a floor of what the server alone does.

Everything talks to 127.0.0.1 only, is bounded in count and time, and stops by itself: the
server and PostgreSQL are stopped in ``finally`` blocks. Without PostgreSQL's binaries the
benchmark says so and writes no figures.

Usage (from the repository root):

    .venv/bin/python benchmarks/server.py [--quick] [--seconds 60] [--size-seconds 30]
        [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from common import machine, quantile, write_json  # noqa: E402

from scorer.core.methods import get_method  # noqa: E402
from scorer.demo import READERS, TRIAL  # noqa: E402

WORKSTATIONS = 20
MEAN_GAP_S = 2.0
SAVES_PER_CASE = 10
PW = "Bench-mark-pass-2024"
#: The figures by size: workstations, over one instance and two behind the proxy.
SIZES = (1, 5, 20, 50)
QUICK_SIZES = (1, 5)
INSTANCES = (1, 2)
#: The demo's reader3 and 49 more: 50 readers with untouched worklists (the load and
#: saturation phases use the first 20).
BENCH_READERS = tuple(f"reader{i}" for i in range(3, 3 + max(SIZES)))
SAVE_TARGETS_MS = (20.0, 50.0)  # p50, p95
NEXT_CASE_TARGET_MS = 150.0
SATURATION_P95_MS = 100.0
FILM_ATTEMPTS = 5
RATES = (10, 20, 40, 60, 80, 100, 120, 160, 200, 240, 320)
QUICK_RATES = (10, 40)
AREAS = [d for d in get_method("svh").areas if not d.sides]


# ------------------------------------------------------------------ set-up


def make_trial(db: str, readers: tuple[str, ...] = BENCH_READERS) -> dict[str, str]:
    """The demo trial at ``db`` plus ``readers`` (reader3 and on), each assigned and with a
    worklist; reader -> password of every one of them."""
    from scorer.demo import run_demo
    from scorer.workspace import InvalidInput, Workspace

    result = run_demo(db, say=lambda _m: None)
    passwords = dict(result.passwords)
    ws = Workspace.open(db=db)
    try:
        admin = ws.accounts.login("admin", passwords["admin"])
        coord = ws.accounts.login("coord", passwords["coord"])
        for user in readers:
            if user in READERS:
                continue
            ws.accounts.add_user(admin, user, f"Bench {user}", "reader", PW[::-1])
            s = ws.accounts.login(user, PW[::-1])
            ws.accounts.change_password(s, PW[::-1], PW)
            ws.accounts.logout(s)
            passwords[user] = PW
            with contextlib.suppress(InvalidInput):  # already assigned
                ws.worklists.assign_reader(coord, TRIAL, user)
        ws.worklists.generate_worklists(coord, TRIAL)
    finally:
        ws.close()
    return {u: passwords[u] for u in readers}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    url: str
    cert: Path
    proc: subprocess.Popen[bytes]
    log: Path


def start_server(db: str, data: Path, env: dict[str, str]) -> Served:
    """``scorer server`` on a free loopback port, once its /health answers over TLS pinned to
    the certificate it generated beside the database (in the data folder: PostgreSQL)."""
    port = _free_port()
    log = data / f"server-{port}.log"
    with log.open("wb") as out:  # a file, not a pipe nobody reads (it would stall the server)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scorer",
                "server",
                "--db",
                db,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    served = Served(f"https://127.0.0.1:{port}", data / "scorer.server-cert.pem", proc, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server stopped: " + log.read_text(errors="replace")[-2000:])
        if served.cert.exists():
            try:
                ctx = ssl.create_default_context(cafile=str(served.cert))
                if httpx.get(served.url + "/health", verify=ctx, timeout=2).status_code == 200:
                    return served
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    stop_server(served)
    raise RuntimeError("the server did not answer /health within 60 s")


def stop_server(served: Served) -> None:
    if served.proc.poll() is None:
        served.proc.send_signal(signal.SIGTERM)
        try:
            served.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            served.proc.kill()
            served.proc.wait(timeout=10)


# ------------------------------------------------------------------ workstations


class CallFailed(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


@dataclass
class Station:
    """One logged-in session over its own client, and what it learnt of its reads."""

    reader: str
    client: httpx.AsyncClient
    token: str = ""
    cases: list[str] = field(default_factory=list)
    next_index: int = 0

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def call(self, name: str, **kwargs: Any) -> Any:
        try:
            r = await self.client.post(f"/api/call/{name}", headers=self.auth, json=kwargs)
        except httpx.TransportError:  # a keep-alive connection closed as the request left
            r = await self.client.post(f"/api/call/{name}", headers=self.auth, json=kwargs)
        if r.status_code != 200:
            raise CallFailed(r.status_code, r.json())
        return r.json()["result"]


@dataclass
class Tally:
    """Every timed save and next case, with what went wrong."""

    saves: list[float] = field(default_factory=list)
    first_cases: list[float] = field(default_factory=list)
    next_cases: list[float] = field(default_factory=list)
    prefetched_cases: list[float] = field(default_factory=list)
    films: list[int] = field(default_factory=list)
    film_bytes: list[int] = field(default_factory=list)
    conflicts: int = 0
    errors: list[str] = field(default_factory=list)
    film_endpoint: bool | None = None  # None: not tried yet
    films_missing: int = 0  # not delivered in FILM_ATTEMPTS tries
    resent: int = 0  # requests sent again after a connection closed without an answer


#: What every read's areas hold as far as this client knows (read code, area) -> score
#: (None: not entered); one writer per read at a time, so it is what the server holds.
Known = dict[tuple[str, int], int | None]


async def save_one(st: Station, read: str, rng: random.Random, known: Known, tally: Tally) -> None:
    """Save one score on ``read`` with the conflict check the GUI sends (``expected``: the
    area still holds what this workstation last saw); time it."""
    i = rng.randrange(len(AREAS))
    d = AREAS[i]
    seen = known.get((read, i))
    value = rng.choice([v for v in range(d.max + 1) if v != seen])
    body = {
        "code": read,
        "area": d.area._asdict(),
        "value": {"score": value},
        "expected": [[d.area._asdict(), None if seen is None else {"score": seen}]],
    }
    started = time.perf_counter()
    r = await send(st, "/api/call/reading.set_score", body, tally)
    took = time.perf_counter() - started
    if r.status_code == 200:
        tally.saves.append(took)
        known[(read, i)] = value
    elif r.status_code == 409 and r.json().get("error") == "Conflict":
        # One writer per read: after a resend, its own first sending that was committed.
        now = [v for a, v in r.json()["current"] if a == d.area._asdict()]
        known[(read, i)] = now[0]["score"] if now and now[0] else None
        if known[(read, i)] == value:
            tally.saves.append(took)
        else:
            tally.conflicts += 1
    else:
        tally.errors.append(f"set_score {r.status_code}: {r.text[:200]}")


async def send(st: Station, path: str, body: Any, tally: Tally) -> httpx.Response:
    """POST ``body``, sent again when the connection was closed under it without an answer
    (a keep-alive connection the server closed as the request left, more often through a
    proxy), as the workstation's score writer sends an unanswered entry again."""
    for attempt in range(FILM_ATTEMPTS):
        try:
            return await st.client.post(path, headers=st.auth, json=body)
        except httpx.TransportError:
            if attempt == FILM_ATTEMPTS - 1:
                raise
            tally.resent += 1
            await asyncio.sleep(0.02 * (attempt + 1))
    raise AssertionError("unreachable")


async def fetch_films(st: Station, code: str, films: list[str], tally: Tally) -> list[bytes]:
    """A case's films in one request (``POST /api/films/<case>``, a zip of them), as the
    workstation's client asks for them; an answer that fails is tallied and asked again, up
    to FILM_ATTEMPTS times."""
    import io
    import zipfile

    for attempt in range(FILM_ATTEMPTS):
        r = await send(st, f"/api/films/{code}", {"films": films}, tally)
        if r.status_code == 200:
            with zipfile.ZipFile(io.BytesIO(r.content)) as z:
                return [z.read(name) for name in films]
        tally.errors.append(f"films {r.status_code} (attempt {attempt + 1}): {r.text[:200]}")
        await asyncio.sleep(0.02 * (attempt + 1))
    tally.films_missing += len(films)
    return []


async def next_case(st: Station, tally: Tally, first: bool = False) -> list[str]:
    """Open the station's next case, ask for its films and download each; time it all
    (``first``: the workstation's first case, tallied apart). The case's read codes."""
    code = st.cases[st.next_index % len(st.cases)]
    st.next_index += 1
    if not first and st.next_index % 2 == 0:
        # Every other next case as the reading window meets it: its films were prefetched
        # while the case before was read (untimed here), so moving on lists them, all here.
        listed = await st.call("images.case_images", case_code=code)
        await fetch_films(st, code, [f["image"] for v in listed.values() for f in v], tally)
        started = time.perf_counter()
        opened = await st.call("reading.open_case", case_code=code)
        await st.call("images.case_images", case_code=code)
        tally.prefetched_cases.append(time.perf_counter() - started)
        return list(opened["reads"].values())
    started = time.perf_counter()
    opened = await st.call("reading.open_case", case_code=code)
    films = await st.call("images.case_images", case_code=code)
    names = [film["image"] for visit in films.values() for film in visit]
    got = await fetch_films(st, code, names, tally)
    tally.film_endpoint = True
    n, size = len(got), sum(len(d) for d in got)
    (tally.first_cases if first else tally.next_cases).append(time.perf_counter() - started)
    tally.films.append(n)
    tally.film_bytes.append(size)
    return list(opened["reads"].values())


async def first_case(st: Station, rng: random.Random, tally: Tally) -> list[str]:
    """The workstation's first case, after a start spread over one mean gap."""
    await asyncio.sleep(rng.uniform(0, MEAN_GAP_S))
    return await next_case(st, tally, first=True)


async def reading_station(
    st: Station,
    reads: list[str],
    until: float,
    per_case: int,
    rng: random.Random,
    known: Known,
    tally: Tally,
) -> None:
    """One reader on its case's ``reads``: Poisson saves, the next case every ``per_case``
    saves, until ``until`` (monotonic)."""
    due = time.monotonic()
    saved = 0
    while True:
        due += rng.expovariate(1 / MEAN_GAP_S)
        if due >= until:
            return
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        await save_one(st, rng.choice(reads), rng, known, tally)
        saved += 1
        if saved % per_case == 0 and time.monotonic() < until:
            reads = await next_case(st, tally)


async def saver(
    st: Station,
    read: str,
    until: float,
    mean_gap: float,
    rng: random.Random,
    known: Known,
    tally: Tally,
) -> None:
    """A virtual workstation of the saturation stages: Poisson saves on one read."""
    due = time.monotonic() + rng.expovariate(1 / mean_gap)
    while due < until:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        await save_one(st, read, rng, known, tally)
        due += rng.expovariate(1 / mean_gap)


def server_times(
    log: Path, offset: int, times: dict[str, list[float]] | None = None
) -> dict[str, dict[str, float]]:
    """Median and p95 of the time the server itself took (its request log's ``ms``) per
    operation, over the log written since ``offset`` (added to ``times``: several
    instances' logs together)."""
    times = {} if times is None else times
    with log.open("rb") as f:
        f.seek(offset)
        for line in f:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and "ms" in entry:
                times.setdefault(entry["operation"] or entry["path"], []).append(entry["ms"])
    return {
        op: {"n": len(v), "median_ms": quantile(v, 0.5), "p95_ms": quantile(v, 0.95)}
        for op, v in sorted(times.items())
    }


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median_ms": 1000 * quantile(values, 0.5),
        "p95_ms": 1000 * quantile(values, 0.95),
        "max_ms": 1000 * max(values),
    }


async def log_in(url: str, cert: Path, passwords: dict[str, str]) -> list[Station]:
    """Every benchmark reader logged in once, one after the other, through ``url`` (the
    proxy: fifty workstations behind one address), each on a client of its own to ``url``;
    the sessions are the database's, valid on every instance."""
    ctx = ssl.create_default_context(cafile=str(cert))
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    stations = []
    for user in passwords:
        client = httpx.AsyncClient(base_url=url, verify=ctx, timeout=30, limits=limits)
        st = Station(user, client)
        stations.append(st)
        r = await client.post("/api/login", json={"username": user, "password": passwords[user]})
        if r.status_code != 200:
            raise RuntimeError(f"log-in of {user}: {r.status_code} {r.text}")
        st.token = r.json()["token"]
        rows = await st.call("worklists.worklist", trial=TRIAL)
        st.cases = [row["code"] for row in rows if row["status"] != "signed"]
        if not st.cases:
            raise RuntimeError(f"{user} has no case to read")
    return stations


async def moved_to(stations: list[Station], url: str, cert: Path) -> list[Station]:
    """The same sessions on new clients to ``url`` (one instance, or the proxy)."""
    ctx = ssl.create_default_context(cafile=str(cert))
    for st in stations:
        await st.client.aclose()
        st.client = httpx.AsyncClient(base_url=url, verify=ctx, timeout=30)
    return stations


async def load(
    stations: list[Station], seconds: float, per_case: int, known: Known, log: Path
) -> dict[str, Any]:
    """Every workstation's first case (all starting within one mean gap: a burst, timed
    apart), then ``seconds`` of Poisson saves and next cases."""
    tally = Tally()
    rng = random.Random(28)
    rngs = [random.Random(rng.random()) for _ in stations]
    firsts = await asyncio.gather(
        *(first_case(st, r, tally) for st, r in zip(stations, rngs, strict=True))
    )
    offset = log.stat().st_size
    started = time.monotonic()
    until = started + seconds
    await asyncio.gather(
        *(
            reading_station(st, reads, until, per_case, r, known, tally)
            for st, reads, r in zip(stations, firsts, rngs, strict=True)
        )
    )
    took = time.monotonic() - started
    return {
        "seconds": took,
        "server_ms": server_times(log, offset),
        "saves_per_s": len(tally.saves) / took,
        "save": summary(tally.saves),
        "next_case": {
            **summary(tally.next_cases),
            "films_downloaded": bool(tally.film_endpoint),
            "films_per_case": sum(tally.films) / max(1, len(tally.films)),
            "mb_per_case": sum(tally.film_bytes) / max(1, len(tally.film_bytes)) / 1e6,
        },
        "first_case": summary(tally.first_cases),
        "prefetched_case": summary(tally.prefetched_cases),
        "conflicts": tally.conflicts,
        "errors": len(tally.errors),
        "films_missing": tally.films_missing,
        "first_errors": tally.errors[:3],
    }


async def saturation(
    stations: list[Station], rates: tuple[int, ...], stage_s: float, known: Known
) -> dict[str, Any]:
    """Ramp the offered rate until the stage's save p95 passes SATURATION_P95_MS."""
    # Every case of every station opened, so that each virtual workstation has a read.
    reads: list[tuple[Station, str]] = []

    async def open_all(st: Station) -> None:
        for code in st.cases:
            opened = await st.call("reading.open_case", case_code=code)
            reads.extend((st, r) for r in opened["reads"].values())

    await asyncio.gather(*(open_all(st) for st in stations))
    rng = random.Random(6)
    rng.shuffle(reads)  # each stage's workstations spread over the sessions
    stages = []
    passed_at = None
    for rate in rates:
        n = min(len(reads), max(1, round(rate * MEAN_GAP_S)))
        mean_gap = n / rate
        tally = Tally()
        started = time.monotonic()
        until = started + stage_s
        await asyncio.gather(
            *(
                saver(st, read, until, mean_gap, random.Random(rng.random()), known, tally)
                for st, read in reads[:n]
            )
        )
        took = time.monotonic() - started
        stage = {
            "offered_per_s": rate,
            "workstations": n,
            "achieved_per_s": len(tally.saves) / took,
            **summary(tally.saves),
            "conflicts": tally.conflicts,
            "errors": len(tally.errors),
        }
        stages.append(stage)
        print(
            f"  saturation: offered {rate:>4}/s by {n:>3} workstations, achieved "
            f"{stage['achieved_per_s']:6.1f}/s, p50 {stage.get('median_ms', 0):6.1f} ms, "
            f"p95 {stage.get('p95_ms', 0):7.1f} ms, errors {len(tally.errors)}",
            flush=True,
        )
        if tally.errors:
            print(f"    first error: {tally.errors[0]}", flush=True)
        if stage.get("p95_ms", math.inf) > SATURATION_P95_MS:
            passed_at = stage["achieved_per_s"]
            break
    under = [s for s in stages if s.get("p95_ms", math.inf) <= SATURATION_P95_MS]
    return {
        "stage_s": stage_s,
        "stages": stages,
        "p95_passed_100ms_at_saves_per_s": passed_at,
        "highest_under_100ms_saves_per_s": max((s["achieved_per_s"] for s in under), default=None),
    }


@dataclass(frozen=True)
class Plan:
    """How long each phase runs."""

    seconds: float  # the load phase
    per_case: int  # saves per case, load phase and by size
    rates: tuple[int, ...]  # the saturation stages' offered saves per second
    stage_s: float
    sizes: tuple[int, ...]
    size_s: float  # each row by size


async def drive(
    servers: list[Served], proxy: Proxy, passwords: dict[str, str], plan: Plan
) -> dict[str, Any]:
    cert = servers[0].cert
    stations = await log_in(proxy.url, cert, passwords)
    known: Known = {}
    try:
        first = await moved_to(stations[:WORKSTATIONS], servers[0].url, cert)
        print(f"load: {len(first)} workstations for {plan.seconds:g} s ...", flush=True)
        out = {"load": await load(first, plan.seconds, plan.per_case, known, servers[0].log)}
        print(f"by size, {plan.size_s:g} s each:\n{SIZE_HEAD}", flush=True)
        out["by_size"] = await by_size(
            stations, servers, proxy, plan.sizes, plan.size_s, plan.per_case, known
        )
        print("saturation ...", flush=True)
        first = await moved_to(stations[:WORKSTATIONS], servers[0].url, cert)
        out["saturation"] = await saturation(first, plan.rates, plan.stage_s, known)
        for st in stations:
            await st.client.post("/api/logout", headers=st.auth)
        return out
    finally:
        for st in stations:
            await st.client.aclose()


# ------------------------------------------------------------------ by size


def cpu_seconds(pid: int) -> float:
    """A process's user + system CPU so far, in seconds (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak_rss(pid: int) -> bool:
    """Start a process's peak RSS afresh (Linux's clear_refs); False where it cannot be."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mb(pid: int) -> float | None:
    """A process's peak resident memory (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


async def prefetch(st: Station, code: str, tally: Tally) -> None:
    """What the workstation does while the current case is read: the next case's film list
    and its films."""
    listed = await st.call("images.case_images", case_code=code)
    await fetch_films(st, code, [f["image"] for v in listed.values() for f in v], tally)


def _advance(st: Station) -> str:
    """The station's next case code (and it moves on)."""
    st.next_index += 1
    return st.cases[(st.next_index - 1) % len(st.cases)]


def _upcoming(st: Station) -> str:
    return st.cases[st.next_index % len(st.cases)]


async def warm_up(st: Station, rng: random.Random, tally: Tally) -> list[str]:
    """The workstation's first case opened and the next one's films prefetched, after a start
    spread over one mean gap (the row's start burst, timed apart); the case's read codes."""
    await asyncio.sleep(rng.uniform(0, MEAN_GAP_S))
    started = time.perf_counter()
    reads = list((await st.call("reading.open_case", case_code=_advance(st)))["reads"].values())
    await prefetch(st, _upcoming(st), tally)
    tally.first_cases.append(time.perf_counter() - started)
    return reads


async def prefetching_station(
    st: Station,
    reads: list[str],
    until: float,
    per_case: int,
    rng: random.Random,
    known: Known,
    tally: Tally,
) -> None:
    """One reader as the reading window works, from its first case (``reads``, the next
    one's films already here): Poisson saves; the next case's films prefetched while the
    current case is read; moving on is timed from the reader's click to the case shown (the
    prefetch's unfinished part waited for, the case opened and its films listed)."""
    ahead: asyncio.Future[None] | None = None
    due = time.monotonic()
    saved = 0
    try:
        while True:
            due += rng.expovariate(1 / MEAN_GAP_S)
            if due >= until:
                return
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            await save_one(st, rng.choice(reads), rng, known, tally)
            saved += 1
            if saved % per_case:
                continue
            started = time.perf_counter()
            if ahead is not None:
                await ahead
            code = _advance(st)
            opened = await st.call("reading.open_case", case_code=code)
            await st.call("images.case_images", case_code=code)
            tally.prefetched_cases.append(time.perf_counter() - started)
            reads = list(opened["reads"].values())
            ahead = asyncio.ensure_future(prefetch(st, _upcoming(st), tally))
    finally:
        if ahead is not None:
            ahead.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError, CallFailed):
                await ahead


async def size_row(
    stations: list[Station],
    url: str,
    cert: Path,
    servers: list[Served],
    seconds: float,
    per_case: int,
    known: Known,
) -> dict[str, Any]:
    """``len(stations)`` workstations reading through ``url`` for ``seconds``: the save
    round trip, the next case with prefetch, saves per second, and the server's processes'
    CPU (user + system, as % of one core) and peak memory over the row, and the servers' own
    time per request (their logs)."""
    pids = [s.proc.pid for s in servers]
    await moved_to(stations, url, cert)
    tally = Tally()
    rng = random.Random(1000 + len(stations))
    rngs = [random.Random(rng.random()) for _ in stations]
    # Every workstation's first case and prefetch first (the start burst, timed apart), so
    # that the row measures readers at work.
    firsts = await asyncio.gather(
        *(warm_up(st, r, tally) for st, r in zip(stations, rngs, strict=True))
    )
    offsets = [(s.log, s.log.stat().st_size) for s in servers]
    peaks_of_row = all([reset_peak_rss(p) for p in pids])
    cpu_before = sum(cpu_seconds(p) for p in pids)
    started = time.monotonic()
    until = started + seconds
    await asyncio.gather(
        *(
            prefetching_station(st, reads, until, per_case, r, known, tally)
            for st, reads, r in zip(stations, firsts, rngs, strict=True)
        )
    )
    took = time.monotonic() - started
    cpu = sum(cpu_seconds(p) for p in pids) - cpu_before
    times: dict[str, list[float]] = {}
    own: dict[str, dict[str, float]] = {}
    for log, offset in offsets:
        own = server_times(log, offset, times)
    return {
        "server_ms": own,
        "workstations": len(stations),
        "instances": len(pids),
        "seconds": took,
        "saves_per_s": len(tally.saves) / took,
        "save": summary(tally.saves),
        "next_case_prefetched": summary(tally.prefetched_cases),
        "start_burst": summary(tally.first_cases),
        "server_cpu_pct_of_one_core": 100 * cpu / took,
        "peak_rss_mb": [peak_rss_mb(p) for p in pids],
        "peak_rss_over": "the row" if peaks_of_row else "the process's life",
        "conflicts": tally.conflicts,
        "errors": len(tally.errors),
        "resent": tally.resent,
        "films_missing": tally.films_missing,
        "first_errors": tally.errors[:3],
    }


async def by_size(
    stations: list[Station],
    servers: list[Served],
    proxy: Proxy,
    sizes: tuple[int, ...],
    seconds: float,
    per_case: int,
    known: Known,
) -> list[dict[str, Any]]:
    """Every size over one instance (its own address) and over two (behind the proxy)."""
    rows = []
    for instances in INSTANCES:
        url = servers[0].url if instances == 1 else proxy.url
        used = servers[:instances]
        for n in sizes:
            proxy_cpu = cpu_seconds(proxy.proc.pid)
            row = await size_row(stations[:n], url, servers[0].cert, used, seconds, per_case, known)
            if instances > 1:
                row["proxy_cpu_pct_of_one_core"] = (
                    100 * (cpu_seconds(proxy.proc.pid) - proxy_cpu) / row["seconds"]
                )
            rows.append(row)
            print(size_line(row), flush=True)
            for e in row["first_errors"]:
                print(f"    error: {e}", flush=True)
    return rows


def size_line(row: dict[str, Any]) -> str:
    """One row of the table by size."""

    def ms(d: dict[str, float], k: str) -> str:
        return f"{d[k]:7.1f}" if k in d else "      -"

    save, nxt = row["save"], row["next_case_prefetched"]
    own = row["server_ms"].get("reading.set_score", {})
    rss = " ".join(f"{m:.0f}" for m in row["peak_rss_mb"] if m is not None)
    return (
        f"{row['instances']:>9} {row['workstations']:>12} {ms(save, 'median_ms')} "
        f"{ms(save, 'p95_ms')} {ms(own, 'p95_ms')} {ms(nxt, 'median_ms')} {ms(nxt, 'p95_ms')} "
        f"{row['saves_per_s']:7.1f} {row['server_cpu_pct_of_one_core']:6.0f}% {rss:>10}"
    )


SIZE_HEAD = (
    f"{'instances':>9} {'workstations':>12} {'save50':>7} {'save95':>7} {'own95':>7} "
    f"{'next50':>7} {'next95':>7} {'saves/s':>7} {'CPU':>7} {'RSS MB':>10}"
)


@dataclass
class Proxy:
    url: str
    proc: subprocess.Popen[bytes]


def start_proxy(servers: list[Served], data: Path) -> Proxy:
    """The tests' round-robin proxy (``tests/server/roundrobin.py``) in a process of its own
    in front of the instances, so that its copying is not the clients' CPU."""
    ports = [s.url.rsplit(":", 1)[1] for s in servers]
    with (data / "proxy.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.server.roundrobin", *ports, "--lifetime", "3600"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=log,
        )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"the proxy did not start: {line!r}")
    return Proxy(f"https://127.0.0.1:{line.rsplit(' ', 1)[1]}", proc)


def stop_proxy(proxy: Proxy) -> None:
    if proxy.proc.poll() is None:
        proxy.proc.terminate()
        try:
            proxy.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proxy.proc.kill()
            proxy.proc.wait(timeout=10)


# ------------------------------------------------------------------ report


def table(out: dict[str, Any]) -> list[tuple[str, float | None, float | None, str, str]]:
    """(figure, median, p95, target, PASS/MISS/"") rows."""
    save = out["load"]["save"]
    nxt = out["load"]["next_case"]
    first = out["load"]["first_case"]
    pre = out["load"]["prefetched_case"]
    sat = out["saturation"]

    def verdict(value: float | None, ceiling: float) -> str:
        return "" if value is None else ("PASS" if value <= ceiling else "MISS")

    what = "open + films" if nxt["films_downloaded"] else "open + film list; NO film download"
    return [
        (
            "save round trip p50",
            save.get("median_ms"),
            None,
            "<= 20 ms",
            verdict(save.get("median_ms"), SAVE_TARGETS_MS[0]),
        ),
        (
            "save round trip p95",
            save.get("p95_ms"),
            None,
            "<= 50 ms",
            verdict(save.get("p95_ms"), SAVE_TARGETS_MS[1]),
        ),
        (
            "next case, films prefetched (open + list)",
            pre.get("median_ms"),
            pre.get("p95_ms"),
            "<= 150 ms",
            verdict(pre.get("median_ms"), NEXT_CASE_TARGET_MS),
        ),
        (
            f"  next case without prefetch ({what})",
            nxt.get("median_ms"),
            nxt.get("p95_ms"),
            "",
            "",
        ),
        (
            "  first case, 20 workstations starting within 2 s",
            first.get("median_ms"),
            first.get("p95_ms"),
            "",
            "",
        ),
        (
            "saves/s at which p95 passes 100 ms",
            sat["p95_passed_100ms_at_saves_per_s"],
            None,
            "",
            "",
        ),
        (
            "highest saves/s with p95 <= 100 ms",
            sat["highest_under_100ms_saves_per_s"],
            None,
            "",
            "",
        ),
    ]


def print_table(out: dict[str, Any]) -> None:
    load_ = out["load"]
    print()
    start, end = out["machine"]["load_average_at_start"], out["machine"]["load_average_at_end"]
    if start and end:
        print(f"this machine's load average: {start:.1f} at the start, {end:.1f} at the end")
    print(
        f"{WORKSTATIONS} workstations, {load_['seconds']:.0f} s: {load_['save']['n']} saves "
        f"({load_['saves_per_s']:.1f}/s), {load_['next_case']['n']} next cases "
        f"({load_['next_case']['films_per_case']:.1f} films, "
        f"{load_['next_case']['mb_per_case']:.2f} MB each), {load_['conflicts']} conflicts, "
        f"{load_['errors']} errors, {load_['films_missing']} films not delivered in "
        f"{FILM_ATTEMPTS} tries"
    )
    own = load_["server_ms"]
    print(
        "the server's own time per request (its log), median / p95: "
        + ", ".join(
            f"{op} {own[op]['median_ms']:.1f} / {own[op]['p95_ms']:.1f} ms"
            for op in (
                "reading.set_score",
                "reading.open_case",
                "images.case_images",
                "images.film",
            )
            if op in own
        )
    )
    for e in load_["first_errors"]:
        print(f"  error: {e}")
    if not load_["next_case"]["films_downloaded"]:
        print(
            "NOTE: GET /api/film/<case>/<film> did not answer (404/405): next case is timed "
            "without downloading the films"
        )
    print(
        "by size (ms; own95: the servers' own time of a save, p95, from their logs; CPU: the "
        "instances' user + system as % of one core; peak RSS of each)"
    )
    print(SIZE_HEAD)
    for row in out["by_size"]:
        print(size_line(row))
    head = f"{'figure':<52} {'median':>9} {'p95':>9} {'target':>10}  met"
    print(head)
    print("-" * len(head))
    for name, median, p95, target, met in table(out):
        m = "-" if median is None else f"{median:.1f}"
        p = "-" if p95 is None else f"{p95:.1f}"
        print(f"{name:<52} {m:>9} {p:>9} {target:>10}  {met}")


def _load() -> float | None:
    """The machine's 1-minute load average (the figures mean more on a quiet machine)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def serve_and_drive(
    db: str, data: Path, env: dict[str, str], passwords: dict[str, str], plan: Plan, json_path: Path
) -> Any:
    """Two ``scorer server`` instances on ``db`` (one site: the same data folder, so the
    same audit key, receipts and certificate) and the proxy in front of them; the phases;
    everything stopped in the end (a server's log kept beside the JSON if it failed)."""
    servers: list[Served] = []
    proxy: Proxy | None = None
    try:
        for _ in range(max(INSTANCES)):
            servers.append(start_server(db, data, env))  # one after the other: one certificate
        proxy = start_proxy(servers, data)
        return asyncio.run(drive(servers, proxy, passwords, plan))
    except BaseException:
        for i, served in enumerate(servers):  # the servers' logs outlive the temporary folder
            stop_server(served)
            kept = json_path.with_suffix(f".server{i}.log")
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(served.log, kept)
            print(f"a server's log: {kept}", file=sys.stderr)
        raise
    finally:
        if proxy is not None:
            stop_proxy(proxy)
        for served in servers:
            stop_server(served)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run: about 30 s of load")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the load phase")
    ap.add_argument("--stage-seconds", type=float, default=8.0, help="each saturation stage")
    ap.add_argument("--size-seconds", type=float, default=30.0, help="each row by size")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "server.json")
    args = ap.parse_args()
    plan = (
        Plan(10.0, 2, QUICK_RATES, 2.0, QUICK_SIZES, 6.0)
        if args.quick
        else Plan(args.seconds, SAVES_PER_CASE, RATES, args.stage_seconds, SIZES, args.size_seconds)
    )
    tmp = Path(tempfile.mkdtemp(prefix="scorer-bench-server-"))
    data = tmp / "data"
    env = {**os.environ, "SCORER_DATA_DIR": str(data), "SCORER_CONFIG": str(tmp / "none.toml")}
    env.pop("SCORER_DB", None)
    os.environ.update(SCORER_DATA_DIR=env["SCORER_DATA_DIR"], SCORER_CONFIG=env["SCORER_CONFIG"])
    os.environ.pop("SCORER_DB", None)
    from tests.pg import start_server as start_pg

    out: dict[str, Any] = {
        "machine": machine(load_average_at_start=_load()),
        "quick": args.quick,
        "workstations": WORKSTATIONS,
    }
    pg = start_pg()
    if pg is None:
        print("PostgreSQL: no server binaries installed; no figures")
        write_json(args.json, out)
        shutil.rmtree(tmp, ignore_errors=True)
        return 0
    server, stop_pg = pg
    try:
        db = server.new_database()
        t = time.perf_counter()
        passwords = make_trial(db, BENCH_READERS[: max(WORKSTATIONS, *plan.sizes)])
        print(f"set-up: demo trial and {len(passwords)} readers in {time.perf_counter() - t:.0f} s")
        out.update(serve_and_drive(db, data, env, passwords, plan, args.json))
    finally:
        stop_pg()
        shutil.rmtree(tmp, ignore_errors=True)
    out["machine"]["load_average_at_end"] = _load()
    print_table(out)
    out["figures"] = [
        {"figure": n, "median": m, "p95": p, "target": tg, "met": v}
        for n, m, p, tg, v in table(out)
    ]
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
