"""The command line: ``scorer COMMAND ...`` over the same code the workstation uses.

Each command is a function registered with ``@command`` in the module of its group (see
:mod:`scorer.cli.registry`); :data:`COMMANDS` is the table of contents: the order
``scorer --help`` lists them in, and where each lives.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from scorer import __version__
from scorer.cli import (
    accounts,
    analysis,
    coordination,
    database,
    exchange,
    images,
    oversight,
    pg_backup,
    server,
    trials,
    worklists,
    workstation,
)
from scorer.cli.arguments import ScorerParser, password_on_command_line, unreadable_argument
from scorer.cli.output import EXIT_ERROR, EXIT_OK, EXIT_USAGE, err
from scorer.cli.registry import REGISTRY, Subcommands
from scorer.cli.workstation import scorer_command as _scorer_command

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "_scorer_command", "build_parser", "main"]

#: The commands in the order ``scorer --help`` lists them, by the module that holds them.
COMMANDS = (
    (analysis, ("analyze", "methods", "example")),
    (database, ("init", "migrate", "grant", "revoke")),
    (accounts, ("user",)),
    (trials, ("trial",)),
    (worklists, ("worklist",)),
    (exchange, ("reads", "export")),
    (database, ("backup", "restore")),
    (pg_backup, ("pg-backup", "pg-restore")),
    (exchange, ("report",)),
    (images, ("import", "receive", "pull", "image")),
    (coordination, ("progress", "flags", "calibration", "adjudication", "drift")),
    (workstation, ("demo", "gui")),
    (oversight, ("audit",)),
    (server, ("server", "health")),
)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``scorer`` and every command (each command's arguments added when used)."""
    listed = [name for _, names in COMMANDS for name in names]
    unlisted = REGISTRY.top_level_names() - set(listed)
    if unlisted:
        raise RuntimeError(f"commands registered but not in COMMANDS: {sorted(unlisted)}")
    p = ScorerParser(
        prog="scorer",
        description="Radiographic scoring workstation for rheumatoid-arthritis trials.",
    )
    p.add_argument("--version", action="version", version=f"scorer {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", action=Subcommands)
    assert isinstance(sub, Subcommands)
    for name in listed:
        REGISTRY.add_command(sub, name)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Exit codes: 0 done, 1 input or data refused, 2 usage error."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    said_its_way = REGISTRY.usage_error_of(args_in)
    refused = password_on_command_line(args_in)
    if refused is not None:
        # Refuse before argparse, whose errors would print the value back.
        why = (
            f"{refused}: passwords are never taken on the command line: use the prompt "
            "or --password-stdin"
        )
        if said_its_way is not None:
            return said_its_way(why)
        err(why)
        return EXIT_USAGE
    parser = build_parser()
    problem = unreadable_argument(args_in)
    if problem:
        parser.print_usage(sys.stderr)
        if said_its_way is not None:
            return said_its_way(problem)
        err(problem)
        return EXIT_USAGE
    args = parser.parse_args(args_in)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        result: int = args.func(args)
    except OSError as exc:  # a file or folder that cannot be used: a name too long, a folder
        what = f"{exc.filename}: " if exc.filename else ""
        err(f"{what}{exc.strerror or exc}")
        return EXIT_ERROR
    return result
