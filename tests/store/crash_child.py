"""The child of the crash test (``test_crash.py``): scores through the facade until killed.

A worker opens the workspace, then scores the reader's cases in order: it continues the
reader's open read (or starts the next case), prints ``ready`` before its first score, scores
every area not yet in the database in a random order, signs the read when it is complete, and
goes on. Each area of each read is written exactly once, with a value derived from the read
code and the area (:func:`planned`), and each score is printed on standard output only after
``set_score`` returned, that is after its commit. The parent kills the worker with SIGKILL at
a random moment; the next worker carries on where the database says the last one stopped.

Two ways to run it (the configuration is a JSON file the parent writes: database path, trial,
cases, reader passwords):

``python crash_child.py worker CONFIG READER SEED``
    one worker in a fresh interpreter; it logs in itself.

``python crash_child.py server CONFIG READER``
    a fork server: pays for the imports and the reader's log-in (argon2) once, then answers
    JSON commands on stdin, one a line:
    ``{"cmd": "fork", "n": N, "out": PATH, "err": PATH, "seed": S, "login": BOOL}`` forks a
    worker whose stdout and stderr are the files OUT and ERR (answer ``pid N PID``); it logs in
    itself when ``login`` is set, else it uses the server's session. ``{"cmd": "reap", "n": N,
    "pid": PID}`` waits for a worker (answer ``exit N STATUS``). The server closes its
    database connections before each fork; the worker opens the database afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import traceback
from typing import Any

from scorer.core.methods import Area, get_method
from scorer.core.reads import AreaScore

SVH = get_method("svh")
REASONS = ("not_visible", "image_quality")


def planned(code: str, area: Area) -> AreaScore:
    """The one value a worker ever writes to ``area`` of read ``code``."""
    d = SVH.area(area)
    h = int.from_bytes(hashlib.sha256(f"{code}|{area}".encode()).digest()[:8], "big")
    if h % 23 == 0:
        return AreaScore.not_assessable(REASONS[(h >> 5) % 2])
    if d.sides:
        f = SVH.features[area.feature]
        return AreaScore.from_sides(((h >> 8) % (f.max + 1), (h >> 16) % (f.max + 1)))
    return AreaScore.scored((h >> 8) % (d.max + 1))


def encode(value: AreaScore) -> str:
    """A score as one token: ``3``, ``7=4+3`` (sides), ``na:image_quality``."""
    if value.score is None:
        return f"na:{value.reason}"
    if value.sides is not None:
        return f"{value.score}=" + "+".join(str(x) for x in value.sides)
    return str(value.score)


def encode_row(score: int | None, sides: str | None, reason: str | None) -> str:
    """The same token from an ``area_scores`` row (``sides`` is stored as JSON)."""
    if score is None:
        return f"na:{reason}"
    if sides:
        return f"{score}=" + "+".join(str(x) for x in json.loads(sides))
    return str(score)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def work(cfg: dict[str, Any], reader: str, seed: int, session: Any = None) -> None:
    """Score until killed (or until the reader's cases run out: ``done``). Logs in unless
    given the session the fork server logged in with."""
    from scorer.workspace import Workspace

    rng = random.Random(seed)
    password = cfg["passwords"][reader]
    trial = cfg["trial"]
    cases = cfg["cases"]
    ws = Workspace.open(db=cfg["db"])
    s = session if session is not None else ws.accounts.login(reader, password)
    ready = False
    while True:
        mine = ws.worklists.my_reads(s, trial)
        open_reads = [r.code for r in mine if r.status == "in_progress"]
        if len(open_reads) > 1:
            raise AssertionError(f"{reader} has {len(open_reads)} open reads: {open_reads}")
        if open_reads:
            code = open_reads[0]
        elif len(mine) < len(cases):
            patient, visit = cases[len(mine)]
            code = ws.reading.start_read(s, trial, patient, visit)
            say(f"started {code} {patient} {visit}")
        else:
            say("done")
            return
        view = ws.reading.get_read(s, code)
        todo = [d.area for d in SVH.areas if d.area not in view.scores]
        if not todo:
            ws.reading.sign_read(s, code, password, username=reader)
            say(f"signed {code}")
            continue
        if not ready:
            say(f"ready {os.getpid()}")  # about to score: the parent starts its kill timer
            ready = True
        rng.shuffle(todo)
        for area in todo:
            value = planned(code, area)
            ws.reading.set_score(s, code, area, value)
            say(f"score {code} {area.region} {area.joint} {area.feature} {encode(value)}")


def _redirect(path: str, fd: int) -> None:
    new = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(new, fd)
    os.close(new)


def serve(cfg: dict[str, Any], reader: str) -> None:
    """The fork server: import once and log in once, fork a worker per command."""
    from scorer.workspace import Workspace

    ws = Workspace.open(db=cfg["db"])
    session = ws.accounts.login(reader, cfg["passwords"][reader])
    say("server ready")
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "fork":
            # Use the session (keeps it active), then close every connection: no SQLite
            # connection may cross a fork. The worker opens the database afresh.
            ws.worklists.my_reads(session, cfg["trial"])
            ws.store.engine.dispose()
            pid = os.fork()
            if pid == 0:
                status = 1
                try:
                    _redirect(cmd["out"], 1)
                    _redirect(cmd["err"], 2)
                    work(cfg, reader, int(cmd["seed"]), None if cmd["login"] else session)
                    status = 0
                except BaseException:
                    traceback.print_exc()
                    sys.stderr.flush()
                finally:
                    os._exit(status)
            say(f"pid {cmd['n']} {pid}")
        elif cmd["cmd"] == "reap":
            _, status = os.waitpid(int(cmd["pid"]), 0)
            say(f"exit {cmd['n']} {status}")
        else:
            raise ValueError(f"unknown command {cmd!r}")
    ws.close()


def main(argv: list[str]) -> int:
    mode, config = argv[0], argv[1]
    with open(config, encoding="utf-8") as fh:
        cfg = json.load(fh)
    if mode == "worker":
        work(cfg, argv[2], int(argv[3]))
    elif mode == "server":
        serve(cfg, argv[2])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
