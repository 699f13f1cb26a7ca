"""Golden ``--help`` of ``scorer`` and of every command and subcommand, found by walking the
parser, wrapped at COLUMNS=100 (argparse's wrapping differs between Python versions; these
files are of the Python the project's machines run, 3.11)."""

from __future__ import annotations

import pytest

from tests.cli_golden.conftest import COLUMNS
from tests.cli_golden.golden import check, check_no_stale
from tests.cli_golden.walk import walk
from tests.test_cli_hostile import Runner

COMMANDS = [path for path, _ in walk()]


def _file(path: tuple[str, ...]) -> str:
    return f"help/{'-'.join(path) or 'scorer'}.txt"


def test_every_command_has_one_help_file() -> None:
    names = [_file(p) for p in COMMANDS]
    assert len(set(names)) == len(names), "two commands would share a help file"
    check_no_stale("help", set(names))


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "scorer")
def test_help(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", COLUMNS)
    monkeypatch.setattr("sys.argv", ["somewhere/else/scorer"])  # the name is the parser's
    rc, out, err = Runner(capsys, monkeypatch)([*path, "--help"])
    assert (rc, err) == (0, "")
    check(_file(path), out)
