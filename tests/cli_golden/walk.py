"""Every command and subcommand, found by walking ``scorer.cli.build_parser()``'s subparsers
(so a new command is golden-tested, or fails for want of a golden file, without a list here
to keep up)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from scorer.cli import build_parser


def _subparsers(p: argparse.ArgumentParser) -> list[argparse._SubParsersAction]:  # type: ignore[type-arg]
    return [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]


def walk(
    p: argparse.ArgumentParser | None = None, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """(command path, parser) of ``scorer`` itself (path ()) and of every command below it."""
    p = build_parser() if p is None else p
    yield path, p
    for action in _subparsers(p):
        for name, sp in action.choices.items():
            yield from walk(sp, (*path, name))


def leaves() -> list[tuple[str, ...]]:
    """The commands that run something (no subcommands below them)."""
    return [path for path, p in walk() if path and not _subparsers(p)]


def json_commands() -> list[tuple[str, ...]]:
    """The commands with an option --format that has "json" among its choices."""
    return [
        path
        for path, p in walk()
        if any(
            "--format" in a.option_strings and a.choices and "json" in a.choices for a in p._actions
        )
    ]
