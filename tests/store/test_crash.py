"""Crash safety: kill a scoring process with SIGKILL hundreds of times; nothing committed is lost.

Worker processes (``crash_child.py``) score through the facade and print each score only after
``set_score`` returned. The parent kills each worker with SIGKILL at a random moment and starts
a fresh one on the same database. Each area of each read is written exactly once, with a value
derived from the read and the area, so the check is strict: every reported score is in the
database with exactly the reported value, every stored score is the planned one, each stored
score has exactly one audit row, an SQLite file passes ``PRAGMA integrity_check`` and the
audit chains, receipts and signatures verify. It runs on an SQLite file and on a PostgreSQL
server (where a killed client's transaction is rolled back by the server and its write lock,
an advisory lock held by that transaction, goes with it).

Start-up cost: a fresh interpreter spends about a second importing SQLAlchemy and Alembic and
logging in (argon2), which for 200 kills would take minutes on two cores. So most workers are
forked from a fork server (itself a ``subprocess.Popen`` of ``sys.executable`` running
``crash_child.py``) that has paid for the imports and one log-in; every ``EXEC_EVERY``-th worker
is a freshly exec'd interpreter that logs in itself, and a share of the forked workers log in
themselves and are killed at a random moment from their start (so kills land in the log-in's
transaction too). Either way the worker is its own process, opens its own database connection
and dies by a real SIGKILL. ``LANES`` readers score side by side, each in its own lane, so the
kills also land while the other process holds or waits for the write lock.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from scorer.core.methods import Area
from scorer.workspace import Workspace
from tests.behind import behind
from tests.pg import PgServer, pg_server  # noqa: F401  (the fixture)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CHILD = HERE / "crash_child.py"

KILLS = 200  # SIGKILLs in total, over all lanes
LANES = 2  # readers scoring at the same time, one worker process each
EXEC_EVERY = 20  # every EXEC_EVERY-th worker of a lane is a fresh interpreter, not a fork
MAX_SCORES_BEFORE_SLEEP = 10  # wait for 0..this many reported scores after ready, then
MAX_SLEEP = 0.150  # kill 0..MAX_SLEEP s later
EARLY_KILL_SHARE = 0.15  # share of forked workers that log in and are killed 0..EARLY_MAX_SLEEP
EARLY_MAX_SLEEP = 0.600  # s after their start, ready or not
MIN_SCORES = 3 * KILLS  # reported scores in total: the test must not pass vacuously
MIN_SIGNED = 4  # reads completed and signed
PATIENTS = 40
VISITS = (("W0", 0.0), ("W52", 52.0))
TRIAL = "CRASH"
ADMIN = ("admin", "Ada Admin", "Sunflower-Meadow-7")
READERS = {
    "reader1": ("Rita Reader", "Tulip-Garden-2024"),
    "reader2": ("Rob Reader", "Maple-Harbour-2024"),
}
COORD = ("coord1", "Cora Coordinator", "Willow-Compass-2024")
LANE_DEADLINE_S = 900.0


def _load_child() -> Any:
    spec = importlib.util.spec_from_file_location("crash_child", CHILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


child = _load_child()


def _set_up(tmp_path: Path, db: str) -> Path:
    """The database at ``db`` (a file path or a server URL): admin, a coordinator, readers past
    their first password change, a trial with two visits and PATIENTS patients; returns the
    child's configuration file."""
    ws = Workspace.initialize(*ADMIN, db=db)
    try:
        admin = ws.accounts.login(ADMIN[0], ADMIN[2])
        users = {COORD[0]: (COORD[1], "coordinator", COORD[2])}
        users.update({u: (name, "reader", pw) for u, (name, pw) in READERS.items()})
        for username, (full_name, role, pw) in users.items():
            first = pw[::-1]
            ws.accounts.add_user(admin, username, full_name, role, first)
            s = ws.accounts.login(username, first)
            ws.accounts.change_password(s, first, pw)
            ws.accounts.logout(s)
        ws.trials.create_trial(admin, TRIAL, "Crash trial", visits=list(VISITS))
        coord = ws.accounts.login(COORD[0], COORD[2])
        patients = [ws.trials.add_patient(coord, TRIAL, f"HOSP-{i:04d}") for i in range(PATIENTS)]
        # A reader starts reads only of their own worklist's cases.
        for reader in READERS:
            ws.worklists.assign_reader(coord, TRIAL, reader)
        ws.worklists.generate_worklists(coord, TRIAL)
        ws.accounts.logout(coord)
        ws.accounts.logout(admin)
    finally:
        ws.close()
    cfg = {
        "db": db,
        "trial": TRIAL,
        "cases": [[p, v] for p in patients for v, _ in VISITS],
        "passwords": {u: pw for u, (_, pw) in READERS.items()},
    }
    path = tmp_path / "crash-config.json"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    return path


def _child_env() -> dict[str, str]:
    env = os.environ.copy()  # the test's SCORER_DATA_DIR and SCORER_CONFIG
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def complete_lines(path: Path) -> tuple[list[str], bool]:
    """The lines of a worker's output that were written whole; and whether a torn line (cut
    by the kill mid-write) followed them."""
    data = path.read_bytes() if path.exists() else b""
    *whole, tail = data.split(b"\n")
    return [w.decode("utf-8") for w in whole], bool(tail)


@dataclass
class Lane:
    """One reader's stream of workers, each killed in turn."""

    index: int
    reader: str
    config: Path
    work: Path
    rng: random.Random
    kills_wanted: int
    kills: int = 0
    early_kills: int = 0
    exec_kills: int = 0
    torn: int = 0
    waited_for: int = 0  # scores the lane waited for before its sleeps: a floor for the total
    lines: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)  # another lane failed
    _server: subprocess.Popen[str] | None = None

    def run(self) -> None:
        self.work.mkdir()
        err = open(self.work / "server.err", "w", encoding="utf-8")  # noqa: SIM115
        self._server = subprocess.Popen(
            [sys.executable, str(CHILD), "server", str(self.config), self.reader],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=_child_env(),
        )
        try:
            assert self._reply() == "server ready", self._server_failure()
            deadline = time.monotonic() + LANE_DEADLINE_S
            n = 0
            while self.kills < self.kills_wanted and not self.stop.is_set():
                assert time.monotonic() < deadline, f"lane {self.index}: too slow"
                n += 1
                self._one(n)
        finally:
            assert self._server.stdin is not None
            self._server.stdin.close()
            try:
                self._server.wait(timeout=30)
            finally:
                if self._server.poll() is None:
                    self._server.kill()
                    self._server.wait()
                err.close()

    def _reply(self) -> str:
        assert self._server is not None and self._server.stdout is not None
        return self._server.stdout.readline().rstrip("\n")

    def _send(self, **cmd: Any) -> None:
        assert self._server is not None and self._server.stdin is not None
        self._server.stdin.write(json.dumps(cmd) + "\n")
        self._server.stdin.flush()

    def _server_failure(self) -> str:
        return (self.work / "server.err").read_text(encoding="utf-8", errors="replace")

    def _one(self, n: int) -> None:
        out = self.work / f"{n}.out"
        err = self.work / f"{n}.err"
        seed = self.rng.randrange(2**32)
        proc: subprocess.Popen[bytes] | None = None
        early = False  # killed at a random moment from its start, ready or not
        if n % EXEC_EVERY == 0:
            with open(out, "wb") as fo, open(err, "wb") as fe:
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        str(CHILD),
                        "worker",
                        str(self.config),
                        self.reader,
                        str(seed),
                    ],
                    stdout=fo,
                    stderr=fe,
                    env=_child_env(),
                )
            pid = proc.pid
        else:
            early = self.rng.random() < EARLY_KILL_SHARE
            self._send(cmd="fork", n=n, out=str(out), err=str(err), seed=seed, login=early)
            reply = self._reply()
            assert reply.startswith(f"pid {n} "), f"{reply!r}\n{self._server_failure()}"
            pid = int(reply.split()[2])

        if early:
            time.sleep(self.rng.uniform(0.0, EARLY_MAX_SLEEP))
        else:
            wanted = self.rng.randint(0, MAX_SCORES_BEFORE_SLEEP)
            self._wait_for(out, err, proc, wanted)
            self.waited_for += wanted
            time.sleep(self.rng.uniform(0.0, MAX_SLEEP))
        os.kill(pid, signal.SIGKILL)

        if proc is not None:
            code = proc.wait(timeout=60)
        else:
            self._send(cmd="reap", n=n, pid=pid)
            reply = self._reply()
            assert reply.startswith(f"exit {n} "), f"{reply!r}\n{self._server_failure()}"
            code = os.waitstatus_to_exitcode(int(reply.split()[2]))
        lines, torn = complete_lines(out)
        assert code == -signal.SIGKILL, (
            f"worker {self.index}.{n} ended with {code}, not by SIGKILL:\n"
            + "\n".join(lines[-5:])
            + "\n"
            + err.read_text(encoding="utf-8", errors="replace")
        )
        self.kills += 1
        self.early_kills += early
        self.exec_kills += proc is not None
        self.torn += torn
        self.lines.extend(lines)

    def _wait_for(
        self, out: Path, err: Path, proc: subprocess.Popen[bytes] | None, scores: int
    ) -> None:
        """Until the worker reported ready and then ``scores`` scores."""
        deadline = time.monotonic() + 60
        while True:
            lines, _ = complete_lines(out)
            ready = [i for i, x in enumerate(lines) if x.startswith("ready ")]
            if ready and sum(x.startswith("score ") for x in lines[ready[0] :]) >= scores:
                return
            problem = err.exists() and "Traceback" in err.read_text(errors="replace")
            if problem or (proc is not None and proc.poll() is not None) or "done" in lines:
                pytest.fail(f"worker stopped early: {lines}\n{err.read_text(errors='replace')}")
            assert time.monotonic() < deadline, f"a worker is stuck: {lines[-3:]}"
            time.sleep(0.002)


def _parse(lines: list[str]) -> tuple[dict[tuple[str, Area], str], set[str], Counter[str]]:
    """Reported scores by (read, area), signed reads, and line kinds."""
    scores: dict[tuple[str, Area], str] = {}
    signed: set[str] = set()
    kinds: Counter[str] = Counter()
    for line in lines:
        parts = line.split()
        kinds[parts[0]] += 1
        if parts[0] == "score":
            assert len(parts) == 6, line
            key = (parts[1], Area(parts[2], parts[3], parts[4]))
            assert key not in scores, f"{key} was written twice: {scores[key]}, {parts[5]}"
            scores[key] = parts[5]
        elif parts[0] == "signed":
            signed.add(parts[1])
        else:
            assert parts[0] in ("ready", "started"), line
    return scores, signed, kinds


@pytest.mark.posix
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_sigkill_while_scoring_loses_no_committed_score(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        db = str(tmp_path / "crash.sqlite")
    else:
        server: PgServer = request.getfixturevalue("pg_server")
        db = server.new_database()
    config = _set_up(tmp_path, db)
    seed = random.SystemRandom().randrange(2**32)
    master = random.Random(seed)
    per_lane = -(-KILLS // LANES)
    lanes = [
        Lane(i, reader, config, tmp_path / f"lane{i}", random.Random(master.random()), per_lane)
        for i, reader in enumerate(list(READERS)[:LANES])
    ]
    errors: list[BaseException] = []
    stop = threading.Event()
    for lane in lanes:
        lane.stop = stop

    def run(lane: Lane) -> None:
        try:
            lane.run()
        except BaseException as exc:  # reported below, with the seed
            errors.append(exc)
            stop.set()

    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(lane,)) for lane in lanes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    if errors:
        raise AssertionError(f"seed {seed}: a lane failed: {errors[0]}") from errors[0]

    lines = [x for lane in lanes for x in lane.lines]
    reported, signed, kinds = _parse(lines)
    kills = sum(lane.kills for lane in lanes)
    summary = (
        f"seed {seed}: {kills} kills ({sum(x.early_kills for x in lanes)} before ready, "
        f"{sum(x.exec_kills for x in lanes)} of fresh interpreters) in {elapsed:.0f} s, "
        f"{len(reported)} scores reported, {len(signed)} reads signed, "
        f"{sum(x.torn for x in lanes)} torn lines, {dict(kinds)}"
    )
    print(summary)
    assert kills >= KILLS, summary
    assert len(reported) >= max(MIN_SCORES, sum(x.waited_for for x in lanes)), summary
    assert len(signed) >= MIN_SIGNED, summary

    # The database itself after all those kills (an SQLite file checked as SQLite sees it; the
    # server keeps its own integrity, its foreign keys are enforced on every commit).
    with behind(db, readonly=True) as con:
        if con.dialect == "sqlite":
            assert con.rows("PRAGMA integrity_check") == [("ok",)], summary
            assert con.rows("PRAGMA foreign_key_check") == [], summary
        stored = {
            (code, Area(region, joint, feature)): child.encode_row(score, sides, reason)
            for code, region, joint, feature, score, sides, reason in con.rows(
                "SELECT r.code, a.region, a.joint, a.feature, a.score, a.sides, a.reason "
                "FROM area_scores a JOIN reads r ON r.id = a.read_id"
            )
        }
        status = dict(con.rows("SELECT code, status FROM reads"))
        audited = Counter(
            (code, json.loads(new)["area"])
            for code, new in con.rows(
                "SELECT entity_id, new FROM audit_events WHERE action = 'score.set'"
            )
        )

    # Every reported score is stored, unchanged.
    lost = {k: v for k, v in reported.items() if stored.get(k) != v}
    assert not lost, f"{summary}\n{len(lost)} reported scores lost or changed: " + str(
        [(k, v, stored.get(k)) for k, v in list(lost.items())[:5]]
    )
    # Every stored score is the one value ever written there (committed, maybe unreported).
    wrong = {k: v for k, v in stored.items() if v != child.encode(child.planned(k[0], k[1]))}
    assert not wrong, f"{summary}\nstored scores never written: {list(wrong.items())[:5]}"
    assert len(stored) >= len(reported)
    # Each stored score committed together with exactly one audit row, and no audit row
    # without its score.
    assert audited == Counter((code, str(area)) for code, area in stored), summary
    assert all(status[code] == "signed" for code in signed), summary

    ws = Workspace.open(db=db)
    try:
        result = ws.verify()
    finally:
        ws.close()
    assert result.ok, f"{summary}\n{result.errors}"
    # A kill between a commit and its receipt leaves the receipts one step behind the head;
    # a kill while a receipt line is written leaves that line torn (the next writer ends it).
    assert all("behind the head" in w or " is torn " in w for w in result.warnings), (
        result.warnings
    )
    assert result.signatures >= len(signed)
    assert result.rows["audit_events"] >= len(stored)
