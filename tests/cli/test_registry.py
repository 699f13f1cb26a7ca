"""The command registry builds a command's parser from its function's signature and docstring
(tests of the registry itself, over commands registered here under a private group)."""

from __future__ import annotations

import argparse
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

import pytest

from scorer.cli.registry import Opt, OptionSet, Registry, Subcommands

#: The registry of these tests' own commands (the command line's is not touched).
TESTS = Registry()

TESTED: dict[str, object] = {}


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclass(frozen=True)
class Where(OptionSet):
    """Shared options.

    Args:
        place: where it goes
    """

    place: Annotated[str | None, Opt(metavar="URL")] = None
    loud: bool = False


TESTS.group("zz-test", help="commands of the registry's own tests", dest="zz_cmd")


@TESTS.command("zz-test", "paint")
def paint(
    target: str,
    extra: str | None = None,
    *,
    colour: Colour = Colour.RED,
    size: Annotated[int, Opt(metavar="PX", help="in pixels")] = 3,
    dry_run: bool = False,
    tag: list[str] | None = None,
    mode: Literal["fast", "slow"] = "slow",
    level: Annotated[int, Opt(choices=lambda: (95, 80))] = 95,
    visit_from: Annotated[str | None, Opt(flag="--from", metavar="VISIT")] = None,
    where: Where,
    reason: str,
) -> int:
    """paint a target

    Paint it, with a description argparse wraps as it likes.

    Args:
        target: what to paint
        dry_run: say what would be painted,
            paint nothing
    """
    TESTED["paint"] = {
        "target": target,
        "extra": extra,
        "colour": colour,
        "size": size,
        "dry_run": dry_run,
        "tag": tag,
        "mode": mode,
        "level": level,
        "visit_from": visit_from,
        "where": where,
        "reason": reason,
    }
    return 7


@TESTS.command("zz-test", "hidden", listed=False, epilog="the small print")
def hidden(
    files: Sequence[str] = (), *, many: Annotated[Sequence[str], Opt(nargs="+")] = ()
) -> int:
    """not listed in the group's help"""
    TESTED["hidden"] = {"files": files, "many": many}
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scorer")
    sub = p.add_subparsers(dest="command", action=Subcommands)
    assert isinstance(sub, Subcommands)
    TESTS.add_command(sub, "zz-test")
    return p


def _sub(p: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    found: argparse.ArgumentParser = subs[0].choices[name]
    return found


def _actions(p: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in p._actions}


def test_a_parser_is_built_from_the_signature() -> None:
    paint_parser = _sub(_sub(_parser(), "zz-test"), "paint")
    a = _actions(paint_parser)
    assert a["target"].option_strings == [] and a["target"].nargs is None
    assert a["extra"].option_strings == [] and a["extra"].nargs == "?"
    assert a["size"].option_strings == ["--size"] and a["size"].type is int
    assert (a["size"].default, a["size"].metavar, a["size"].help) == (3, "PX", "in pixels")
    assert a["tag"].option_strings == ["--tag"] and isinstance(a["tag"], argparse._AppendAction)
    assert a["visit_from"].option_strings == ["--from"] and a["visit_from"].metavar == "VISIT"
    assert a["reason"].required and not a["size"].required
    # The option set's options stand where its parameter stands, in its fields' order.
    order = [x.dest for x in paint_parser._actions]
    assert order.index("visit_from") < order.index("place") < order.index("loud")
    assert order.index("loud") < order.index("reason")
    assert (a["place"].metavar, a["place"].help) == ("URL", "where it goes")


def test_choices_come_from_an_enum_a_literal_or_the_domain() -> None:
    a = _actions(_sub(_sub(_parser(), "zz-test"), "paint"))
    assert a["colour"].choices == ("red", "green")
    assert a["mode"].choices == ("fast", "slow")
    assert a["level"].choices == (95, 80) and a["level"].type is int


def test_bool_parameters_are_flags() -> None:
    a = _actions(_sub(_sub(_parser(), "zz-test"), "paint"))
    assert isinstance(a["dry_run"], argparse._StoreTrueAction)
    assert a["dry_run"].option_strings == ["--dry-run"] and a["dry_run"].default is False
    assert isinstance(a["loud"], argparse._StoreTrueAction)


def test_help_comes_from_the_docstring() -> None:
    group_parser = _sub(_parser(), "zz-test")
    text = group_parser.format_help()
    assert "paint a target" in text
    assert "hidden" in text and "not listed" not in text  # listed=False: no line of help
    paint_parser = _sub(group_parser, "paint")
    assert paint_parser.description == "Paint it, with a description argparse wraps as it likes."
    a = _actions(paint_parser)
    assert a["target"].help == "what to paint"
    assert a["dry_run"].help == "say what would be painted, paint nothing"
    assert _sub(group_parser, "hidden").epilog == "the small print"


def test_lists_take_several_values() -> None:
    a = _actions(_sub(_sub(_parser(), "zz-test"), "hidden"))
    assert a["files"].nargs == "*" and a["many"].nargs == "+"


def test_the_function_runs_with_the_parsed_values() -> None:
    p = _parser()
    args = p.parse_args(
        [
            *("zz-test", "paint", "wall", "--colour", "green", "--tag", "a", "--tag", "b"),
            *("--size", "5", "--dry-run", "--from", "W0", "--place", "x.db", "--reason", "why"),
        ]
    )
    assert args.func(args) == 7
    got = TESTED["paint"]
    assert got == {
        "target": "wall",
        "extra": None,
        "colour": Colour.GREEN,
        "size": 5,
        "dry_run": True,
        "tag": ["a", "b"],
        "mode": "slow",
        "level": 95,
        "visit_from": "W0",
        "where": Where(place="x.db", loud=False),
        "reason": "why",
    }
    args = p.parse_args(["zz-test", "hidden", "f1", "f2", "--many", "m1", "m2"])
    assert args.func(args) == 0
    assert TESTED["hidden"] == {"files": ["f1", "f2"], "many": ["m1", "m2"]}


def test_a_bad_choice_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        _parser().parse_args(["zz-test", "paint", "wall", "--reason", "x", "--level", "90"])
    assert ended.value.code == 2
    assert "invalid choice: 90 (choose from 95, 80)" in capsys.readouterr().err


#: Each time the choices of ``zz-test counted --n`` were asked for.
CALLS: list[str] = []


def _counted_choices() -> tuple[int, ...]:
    CALLS.append("choices")
    return (1, 2)


@TESTS.command("zz-test", "counted")
def counted(*, n: Annotated[int, Opt(choices=_counted_choices)] = 1) -> int:
    """counts"""
    return n


def test_arguments_are_added_when_the_command_is_first_used() -> None:
    CALLS.clear()
    p = _parser()
    assert CALLS == []  # the group and its commands exist; their arguments wait
    assert "counted" in _sub(p, "zz-test").format_help()
    assert CALLS == []
    args = p.parse_args(["zz-test", "counted", "--n", "2"])
    assert CALLS == ["choices"] and args.func(args) == 2


def test_a_command_is_registered_once_under_a_declared_group() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        TESTS.command("zz-test", "paint")(paint)
    with pytest.raises(ValueError, match="declared group"):
        TESTS.command("no-such-group", "x")
