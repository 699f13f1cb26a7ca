"""Every command's every option fed hostile values: never a traceback, one convention of exit
codes (0 done, 1 input or data refused, 2 usage error), and a line naming the problem.

The commands are found by walking ``build_parser()``'s subparsers, so a new command or option
is covered without touching this file. Each command runs in-process against its own copy of a
small database (an admin, a coordinator, a reader, trial T1 with two visits and a patient).
Passwords are hashed with argon2id at its lowest cost here (the algorithm is the same; the
default costs half a second a log-in, and this test logs in a thousand times).
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from scorer.cli import build_parser, main

PASSWORD = "Sunflower-Meadow-7"
USERS = {"admin": "admin", "coord": "coordinator", "reader1": "reader", "adjud1": "adjudicator"}

BIDI = ("\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069")
#: Hostile values, by name. Bidi overrides and isolates take turns over the options.
BINARY = b"\xff\xfe\x00\x01\x80bin".decode("utf-8", "surrogateescape")
VALUES: dict[str, str] = {
    "binary": BINARY,
    "nul": "a\x00b",
    "overlong": "A" * 100_000,
    "controls": "a\x1b[2J\x07\x08\r\n\x7f\x85\x9bz",
}
#: These take turns too: a spreadsheet formula, and letters of another script.
TURNS = ("=cmd|' /C calc'!A0", "محمد الأحمد")
#: Options whose value is a file or folder name also get these.
PATHISH = re.compile(r"FILE|PATH|DIR|URL|\.csv|\.zip|\.json|\.toml|\.png", re.IGNORECASE)
PATH_DESTS = {"reads", "file", "files", "paths", "out", "db", "protocol", "manifest", "arms"}


def _leaves(
    p: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, p
        return
    for a in subs:
        for name, sp in a.choices.items():
            yield from _leaves(sp, (*path, name))


LEAVES = dict(_leaves(build_parser()))


def _takes_value(a: argparse.Action) -> bool:
    return a.nargs != 0 and not isinstance(a, argparse._HelpAction | argparse._VersionAction)


def _is_path(a: argparse.Action) -> bool:
    return a.dest in PATH_DESTS or bool(a.metavar and PATHISH.search(str(a.metavar)))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small database: four users (passwords changed), trial T1 (W0, W24), one patient,
    the reader assigned, worklists made."""
    folder = tmp_path_factory.mktemp("hostile-template")
    with pytest.MonkeyPatch.context() as mp:
        _cheap_hashing(mp)
        mp.setenv("SCORER_DATA_DIR", str(folder / "data"))
        mp.setenv("SCORER_CONFIG", str(folder / "no-config.toml"))
        from scorer.workspace import Workspace

        ws = Workspace.initialize("admin", "Ada Admin", PASSWORD, db=str(folder / "db" / "s.db"))
        admin = ws.accounts.login("admin", PASSWORD)
        for user, role in USERS.items():
            if user != "admin":
                ws.accounts.add_user(admin, user, user.title(), role, "Temporary-pass-0")
                s = ws.accounts.login(user, "Temporary-pass-0")
                ws.accounts.change_password(s, "Temporary-pass-0", PASSWORD)
        coord = ws.accounts.login("coord", PASSWORD)
        ws.trials.create_trial(coord, "T1", "Trial one", visits=[("W0", 0.0), ("W24", 24.0)])
        ws.trials.add_patient(coord, "T1", "HOSP-1")
        ws.worklists.assign_reader(coord, "T1", "reader1")
        ws.worklists.generate_worklists(coord, "T1")
        ws.close()
    return folder / "db"


def _cheap_hashing(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(
        "scorer.store.passwords.hasher",
        lambda: PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
    )


class Runner:
    """``scorer ARGV`` in-process: exit code, standard output, standard error."""

    def __init__(self, capsys: pytest.CaptureFixture[str], mp: pytest.MonkeyPatch) -> None:
        self.capsys, self.mp = capsys, mp

    def __call__(self, argv: list[str], stdin: str = "") -> tuple[int, str, str]:
        self.mp.setattr(sys, "stdin", io.StringIO(stdin))
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse: usage errors (2)
            rc = exc.code if isinstance(exc.code, int) else 1
        out, err = self.capsys.readouterr()
        return rc, out, err


@pytest.fixture
def world(
    template: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, object]]:
    _cheap_hashing(monkeypatch)
    for var in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(var, raising=False)  # scorer gui must not open a window here
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "db"
    shutil.copytree(template, db)
    files = tmp_path / "files"
    files.mkdir()
    (files / "reads.csv").write_text("trial,patient\nT1,P1\n", encoding="utf-8")
    (files / "arms.csv").write_text("patient,arm\nP1,A\n", encoding="utf-8")
    (files / "protocol.toml").write_bytes(b"code = 'T9'\nname = 'Caf\xe9'\n")  # Latin-1
    (files / "manifest.json").write_text("{}", encoding="utf-8")
    (files / "backup.zip").write_bytes(b"not a zip")
    busy = socket.socket()  # a port taken: scorer receive cannot start listening and stays
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    closed = socket.socket()  # a port no one listens on: scorer pull is refused at once
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    yield {
        "run": Runner(capsys, monkeypatch),
        "db": str(db / "s.db"),
        "files": files,
        "tmp": tmp_path,
        "busy_port": str(busy.getsockname()[1]),
        "pacs": f"PACS@127.0.0.1:{closed_port}",
    }
    busy.close()


def _default(a: argparse.Action, leaf: tuple[str, ...], w: dict[str, object]) -> list[str]:
    """A valid-looking value for an option the command needs."""
    files: Path = w["files"]  # type: ignore[assignment]
    tmp: Path = w["tmp"]  # type: ignore[assignment]
    if a.choices:
        return [str(next(iter(a.choices)))]
    if a.type in (int, float):
        return [w["busy_port"]] if a.dest == "port" else ["1"]  # type: ignore[list-item]
    if a.dest == "out":
        m = re.search(r"\.\{?(\w+)", str(a.metavar or ""))
        return [str(tmp / f"out.{m.group(1) if m else 'txt'}")]
    if a.dest == "db":
        fresh = leaf[0] in ("init", "restore", "demo")
        return [str(tmp / "fresh" / "new.db") if fresh else str(w["db"])]
    by_dest = {
        "trial": "T1",
        "code": "T1",
        "reader": "reader1",
        "username": "reader1",
        "adjudicator": "adjud1",
        "reference": "reader1",
        "second": "admin",
        "reason": "checked",
        "answer": "answered",
        "name": "A name",
        "admin": "newadmin",
        "setting": "sdc_level",
        "value": "95",
        "visits": "W52",
        "visit": "W0",
        "patient": "HOSP-1",
        "patients": "HOSP-1",
        "image": "IMG1",
        "rect": "0,0,1,1",
        "source": w["pacs"],
        "allow": "PACS",
        "host": "127.0.0.1",
        "reads": str(files / "reads.csv"),
        "file": str(files / ("backup.zip" if leaf == ("restore",) else "reads.csv")),
        "arms": str(files / "arms.csv"),
        "manifest": str(files / "manifest.json"),
        "protocol": str(files / "protocol.toml"),
        "paths": str(files / "reads.csv"),
        "files": str(files / "reads.csv"),
        "role": "scorer_app",
    }
    return [str(by_dest.get(a.dest, "x"))]


def _argv(
    leaf: tuple[str, ...],
    p: argparse.ArgumentParser,
    w: dict[str, object],
    target: argparse.Action | None = None,
    value: str = "",
) -> list[str]:
    args = list(leaf)
    for a in p._actions:
        if not _takes_value(a):
            continue
        needed = not a.option_strings or a.required or a.dest in ("db", "user", "port", "host")
        if a is target:
            vals = [value]
        elif needed:
            vals = (
                (["coord"] if leaf[0] != "user" else ["admin"])
                if a.dest == "user"
                else _default(a, leaf, w)
            )
        else:
            continue
        args += vals if not a.option_strings else [a.option_strings[0], *vals]
    if any(a.dest == "password_stdin" for a in p._actions):
        args.append("--password-stdin")
    if leaf == ("demo",):
        args.append("--no-gui")
    return args


def _values(a: argparse.Action, n: int, tmp: Path) -> dict[str, str]:
    values = dict(VALUES)
    values["bidi"] = f"abc{BIDI[n % len(BIDI)]}cba"
    values["formula" if n % 2 == 0 else "arabic"] = TURNS[n % 2]
    if _is_path(a):
        values["missing path"] = str(tmp / "no" / "such" / "thing.csv")
        values["a folder"] = str(tmp)
    return values


#: scorer demo builds a whole trial from any new database path it is given (a minute's work):
#: it gets only the values that cannot make one.
DEMO_VALUES = {"binary", "nul", "overlong", "a folder", "controls"}


def _check(rc: int, out: str, err: str, what: str) -> None:
    assert rc in (0, 1, 2), f"{what}: exit code {rc}\n{err[-2000:]}"
    assert "Traceback" not in out + err, f"{what}:\n{err[-4000:]}"
    if rc != 0:
        lines = [x for x in err.splitlines() if x.strip()]
        assert lines, f"{what}: exit {rc} without a word on standard error"
        assert any(re.match(r"scorer( [\w-]+)*: error: \S", x) for x in lines), (
            f"{what}: no line naming the problem:\n{err[-2000:]}"
        )
        assert all(len(x) <= 2000 for x in lines), f"{what}: a line of {max(map(len, lines))}"


@pytest.mark.parametrize("leaf", list(LEAVES), ids=" ".join)
def test_hostile_option_values_get_one_clear_line_never_a_traceback(
    leaf: tuple[str, ...], world: dict[str, object]
) -> None:
    p = LEAVES[leaf]
    run: Runner = world["run"]  # type: ignore[assignment]
    stdin = f"{PASSWORD}\n" * 4
    n = 0
    for a in p._actions:
        if not _takes_value(a):
            continue
        for name, value in _values(a, n, world["tmp"]).items():  # type: ignore[arg-type]
            if leaf == ("demo",) and name not in DEMO_VALUES:
                continue
            argv = _argv(leaf, p, world, a, value)
            rc, out, err = run(argv, stdin)
            _check(rc, out, err, f"scorer {' '.join(leaf)} {a.dest}={name}")
        n += 1


@pytest.mark.parametrize("leaf", list(LEAVES), ids=" ".join)
def test_every_command_exits_2_on_a_usage_error(
    leaf: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main([*leaf, "--no-such-option"])
    # scorer health is a monitoring plugin: its own wrong arguments are a WARNING (1).
    assert info.value.code == (1 if leaf == ("health",) else 2)
    err = capsys.readouterr().err
    assert re.match(r"scorer( [\w-]+)*: error: \S", err.splitlines()[-1])


def test_exit_codes_0_done_1_refused_2_usage(world: dict[str, object]) -> None:
    run: Runner = world["run"]  # type: ignore[assignment]
    db, pw = str(world["db"]), f"{PASSWORD}\n"
    coord = ["--db", db, "--user", "coord", "--password-stdin"]
    assert run(["trial", "list", *coord], pw)[0] == 0
    rc, _, err = run(["trial", "show", "NOPE", *coord], pw)
    assert rc == 1 and err.strip().endswith("no trial 'NOPE'")
    assert run(["trial", "show", *coord], pw)[0] == 2  # the code is missing
    # no terminal to ask for a password on, and none piped
    rc, _, err = run(["trial", "list", "--db", db, "--user", "coord"])
    assert rc == 1
    assert err.strip().endswith(
        "no terminal to ask for the password on: pipe it with --password-stdin"
    )
    # a protocol file that is not UTF-8
    proto = str(world["files"]) + "/protocol.toml"
    rc, _, err = run(["trial", "create", "--protocol", proto, *coord], pw)
    assert rc == 1 and "is not UTF-8 text (byte 0xe9 at offset 23)" in err
    assert len(err.strip().splitlines()) == 1
    # bytes that are not UTF-8 in an argument
    rc, _, err = run(["trial", "show", BINARY, *coord], pw)
    assert rc == 2 and "byte 0xff is not UTF-8 text" in err.splitlines()[-1]


@pytest.mark.posix
def test_the_demo_hints_name_the_scorer_that_ran_when_scorer_is_not_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's "What to try next" lines must run as printed: `scorer` only when that is
    the command on PATH, else the path scorer was started by, or `PYTHON -m scorer`."""
    from scorer.cli import _scorer_command

    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "scorer"
    script.write_text("#!/bin/sh\n", encoding="utf-8")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr("sys.argv", [str(script), "demo"])
    assert _scorer_command() == str(script)
    monkeypatch.setattr("sys.argv", ["/somewhere/pytest"])
    assert _scorer_command() == f"{sys.executable} -m scorer"
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr("sys.argv", [str(script), "demo"])
    assert _scorer_command() == "scorer"
