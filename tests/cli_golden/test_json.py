"""Golden JSON output of every command that has ``--format json``.

The commands are found from the parser (an option --format with "json" among its choices),
and each must have a case in CASES: a new one fails until it is given one."""

from __future__ import annotations

import json

import pytest

from tests.cli_golden.conftest import Cli
from tests.cli_golden.golden import check, check_no_stale
from tests.cli_golden.normalise import normalise
from tests.cli_golden.walk import json_commands

#: command path -> (set-up steps ;; the command line, extra standard input). Each runs on its
#: own copy of the golden store, so none depends on another or on the order they run in.
CASES: dict[str, tuple[str, str]] = {
    "analyze": ("analyze {repo}/examples/worked-example.csv --format json", ""),
    "user list": ("user list --format json @admin", ""),
    "trial list": ("trial list --format json @coord1", ""),
    "trial show": ("trial show T1 --format json @coord1", ""),
    "worklist show": ("worklist show --trial T1 --format json @coord1", ""),
    "import": ("import {tmp}/film2.dcm --trial T1 --format json --quiet @coord1", ""),
    "image list": ("image list --trial T1 --format json @coord1", ""),
    "image joints": ("image joints --trial T1 --format json @coord1", ""),
    "progress": ("progress --trial T1 --format json @coord1", ""),
    "flags list": ("flags list --trial T1 --all --format json @coord1", ""),
    "calibration show": (
        "calibration set --trial T1 --patients {patient} --reference reader1 --reason golden "
        "@coord1 ;; calibration worklists --trial T1 @coord1 ;; "
        "calibration show --trial T1 --format json @coord1",
        "",
    ),
    "adjudication show": (
        "adjudication freeze-sdc --trial EXAMPLE --reason golden @coord1 ;; "
        "adjudication update --trial EXAMPLE @coord1 ;; "
        "adjudication show --trial EXAMPLE --format json @coord1",
        "{pw[coord1]}\n",
    ),
    "drift": ("drift --trial EXAMPLE --format json @coord1", ""),
    "audit verify": ("audit verify --format json --db {db}", ""),
    "audit sessions": ("audit sessions --account reader1 --format json @coord1", ""),
}
#: Commands whose JSON is not golden-tested, and why.
NOT_COVERED = {
    "pull": "needs a PACS to answer (tests/network/test_pull.py runs one: Orthanc)",
    "audit timeline": "its argument is a session id drawn at log-in, which a fixed command "
    "line cannot name (the service's timeline is tested in tests/store/"
    "test_sessions_as_they_happened.py)",
}
#: Extra cases: the same command as another user (what a reader is shown differs).
EXTRA: dict[str, tuple[str, str]] = {
    "worklist show as reader1": ("worklist show --trial T1 --format json @reader1", ""),
}
ALL = {**CASES, **EXTRA}


def _file(name: str) -> str:
    return f"json/{name.replace(' ', '-')}.json"


def test_every_json_command_has_a_case() -> None:
    commands = {" ".join(path) for path in json_commands()}
    assert commands == set(CASES) | set(NOT_COVERED)
    check_no_stale("json", {_file(n) for n in ALL})


@pytest.mark.parametrize("name", list(ALL))
def test_json_output(name: str, cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> None:
    line, stdin = ALL[name]
    rc, out, err = cli.run(line, stdin)
    assert rc == 0, err
    data = json.loads(out)
    text = (
        json.dumps(
            normalise(data, cli.db, tmp_path_factory.getbasetemp()), indent=2, ensure_ascii=False
        )
        + "\n"
    )
    check(_file(name), text)
