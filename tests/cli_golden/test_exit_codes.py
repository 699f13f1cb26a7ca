"""The command line's exit codes, from one table: golden/exit_codes.txt.

Every command (found by walking the parser) has a row there with a usage error (an unknown
option, exit 2); most have a row that is refused (1) and one that succeeds (0). With
SCORER_GOLDEN_UPDATE=1 (and -n 0) each row's exit is rewritten to what the command returns
now, and a usage row is added for a new command."""

from __future__ import annotations

import pytest

from tests.cli_golden.conftest import Cli
from tests.cli_golden.golden import GOLDEN, UPDATE
from tests.cli_golden.walk import leaves

TABLE = GOLDEN / "exit_codes.txt"
USAGE = "--no-such-option"


def _rows() -> list[tuple[int, str, str]]:
    rows = []
    for raw in TABLE.read_text(encoding="utf-8").splitlines():
        if raw.strip() and not raw.startswith("#"):
            code, line, *stdin = (x.strip() for x in raw.split("|", 2))
            rows.append((int(code), line, stdin[0] if stdin else ""))
    return rows


ROWS = _rows()


def _rewrite(line: str, stdin: str, rc: int) -> None:
    """Set the exit of the row of ``line`` and ``stdin`` to ``rc`` (SCORER_GOLDEN_UPDATE=1, run
    with -n 0)."""
    out = []
    for raw in TABLE.read_text(encoding="utf-8").splitlines():
        if not raw.startswith("#") and raw.strip():
            parts = raw.split("|", 2)
            theirs = parts[2].strip() if len(parts) > 2 else ""
            if (parts[1].strip(), theirs) == (line, stdin):
                raw = "|".join([f"{rc} ", *parts[1:]])
        out.append(raw)
    TABLE.write_text("\n".join(out) + "\n", encoding="utf-8")


def test_every_command_has_a_usage_row() -> None:
    lines = {line for _, line, _ in ROWS}
    missing = [" ".join(p) for p in leaves() if f"{' '.join(p)} {USAGE}" not in lines]
    if UPDATE and missing:
        with TABLE.open("a", encoding="utf-8") as fh:
            fh.writelines(f"2 | {m} {USAGE}\n" for m in missing)
        return
    assert not missing, f"commands without a row in golden/exit_codes.txt: {missing}"


def test_every_command_has_a_row_beyond_usage() -> None:
    """A refusal (1) or a success (0) of each command: its last step names it."""
    last = {line.split(" ;; ")[-1] for code, line, _ in ROWS if code != 2}
    bare = [" ".join(p) for p in leaves() if not any(x.startswith(" ".join(p) + " ") for x in last)]
    assert not bare, f"commands with neither a refusal nor a success in the table: {bare}"
    cases = [(line, stdin) for _, line, stdin in ROWS]
    assert len(set(cases)) == len(cases), "a command line with the same input twice"


@pytest.mark.parametrize(("expected", "line", "stdin"), ROWS, ids=[r[1] or "(none)" for r in ROWS])
def test_exit_code(expected: int, line: str, stdin: str, cli: Cli) -> None:
    rc, _, err = cli.run(line, stdin.replace("\\n", "\n"))
    if UPDATE:
        if rc != expected:
            _rewrite(line, stdin, rc)
        return
    assert rc == expected, f"scorer {line}: exit {rc}, the table says {expected}\n{err[-2000:]}"
