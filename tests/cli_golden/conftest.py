"""Fixtures of the golden tests: the small store (built once per worker) and ``cli``, which
runs ``scorer ARGV`` in-process on the test's own copy of it."""

from __future__ import annotations

import shlex
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.cli_golden.store import PASSWORDS, GoldenStore, build_store, film
from tests.conftest import REPO
from tests.test_cli_hostile import Runner, _cheap_hashing

#: The terminal width help is wrapped at (argparse reads COLUMNS).
COLUMNS = "100"


@pytest.fixture(scope="session")
def golden_store(tmp_path_factory: pytest.TempPathFactory) -> GoldenStore:
    return build_store(tmp_path_factory.mktemp("cli-golden") / "store")


@dataclass
class Cli:
    """``scorer`` on the test's own copy of the golden store.

    ``run("trial show T1 --format json @coord1")`` splits the line like a shell, fills in
    the placeholders ({db} {tmp} {image} {flag} {case} {patient} {repo} {pacs} {busy_port}
    {pw[USER]}), and
    turns ``@USER`` into ``--db DB --user USER --password-stdin`` with USER's password as the
    first line of standard input (``stdin`` adds what follows it, placeholders filled in).
    Steps joined by `` ;; `` run in turn (``stdin`` too is split by ``;;``, one part a
    step); every step but the last must succeed. Returns the last step's exit code, standard
    output and standard error."""

    runner: Runner
    values: dict[str, object]
    db: str
    log: list[str] = field(default_factory=list)

    def argv(self, line: str) -> tuple[list[str], list[str]]:
        argv: list[str] = []
        stdin: list[str] = []
        for token in shlex.split(line):
            if token.startswith("@") and token[1:] in PASSWORDS:
                user = token[1:]
                argv += ["--db", self.db, "--user", user, "--password-stdin"]
                stdin.append(PASSWORDS[user])
            else:
                argv.append(token.format(**self.values))
        return argv, stdin

    def run(self, line: str, stdin: str = "") -> tuple[int, str, str]:
        rc, out, err = 0, "", ""
        steps = line.split(" ;; ")
        extras = [x.strip(" ") for x in stdin.split(";;")] if stdin else []
        for i, step in enumerate(steps):
            argv, lines = self.argv(step)
            extra = extras[i].format(**self.values) if i < len(extras) else ""
            text = "".join(f"{x}\n" for x in lines) + extra
            rc, out, err = self.runner(argv, text)
            if i < len(steps) - 1:
                assert rc == 0, f"set-up step `{step}` exited {rc}:\n{err}"
        return rc, out, err


@pytest.fixture
def cli(
    golden_store: GoldenStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Cli]:
    _cheap_hashing(monkeypatch)
    for var in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(var, raising=False)  # scorer gui must not open a window here
    monkeypatch.setenv("COLUMNS", COLUMNS)
    store = golden_store.copy_to(tmp_path / "store")
    monkeypatch.setenv("SCORER_DATA_DIR", str(store / "data"))
    monkeypatch.chdir(tmp_path)
    film(tmp_path / "film2.dcm", 2, patient="HOSP-0002", visit="W24")  # for scorer import
    restored = tmp_path / "restored"  # where scorer restore finds the audit key
    restored.mkdir()
    shutil.copy2(store / "populated.audit-key", restored)
    busy = socket.socket()  # a port taken: scorer receive cannot listen and stays
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    closed = socket.socket()  # a port no one listens on: scorer pull is refused at once
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    values: dict[str, object] = {
        "db": str(store / "populated.sqlite"),
        "tmp": str(tmp_path),
        "image": golden_store.image,
        "flag": golden_store.flag,
        "case": golden_store.case,
        "patient": golden_store.patient,
        "repo": str(REPO),
        "pacs": f"PACS@127.0.0.1:{closed_port}",
        "busy_port": busy.getsockname()[1],
        "pw": PASSWORDS,
    }
    yield Cli(Runner(capsys, monkeypatch), values, str(values["db"]))
    busy.close()
