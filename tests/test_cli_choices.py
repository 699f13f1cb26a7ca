"""A word argparse does not take in a command's place is never printed back: it may be a
password typed where a command was expected."""

from __future__ import annotations

import pytest

from scorer.cli import EXIT_USAGE, main


@pytest.mark.parametrize(
    "argv",
    [
        ["user", "TopSecret-9Q7"],
        ["trial", "hunter2hunter2"],
        ["TopSecret-9Q7"],
    ],
)
def test_an_invalid_choice_is_refused_without_printing_it(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as ended:
        main(argv)
    assert ended.value.code == EXIT_USAGE
    out, err = capsys.readouterr()
    assert argv[-1] not in out + err
    assert "invalid choice (not printed, in case it is a password)" in err
    assert "choose from" in err


def test_a_numeric_choice_is_still_named(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        main(["analyze", "reads.csv", "--sdc-level", "90"])
    assert ended.value.code == EXIT_USAGE
    assert "invalid choice: 90 (choose from 95, 80)" in capsys.readouterr().err
