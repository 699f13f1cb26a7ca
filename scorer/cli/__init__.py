"""The command line: ``scorer COMMAND ...`` over the same code the workstation uses."""

from __future__ import annotations

from scorer.cli.legacy import EXIT_ERROR, EXIT_OK, EXIT_USAGE, _scorer_command, build_parser, main

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "_scorer_command", "build_parser", "main"]
