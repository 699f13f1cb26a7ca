"""What a command gives back: its output (text or JSON), its messages and its exit status."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal, TypeVar

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2

#: What ``--format`` chooses between: lines for people, or JSON for programs.
OutputFormat = Literal["text", "json"]

#: Characters never echoed raw to a terminal: control characters but the line feed, and the
#: bidi overrides and isolates (a message quoting hostile input must not rewrite the screen).
_UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
#: Longest message line printed; the rest is cut (a 100,000-character value echoed back).
_MAX_LINE = 1000

T = TypeVar("T")


def visible(msg: str) -> str:
    """``msg`` safe to print on a terminal: unsafe characters escaped, long lines cut."""

    def escape(m: re.Match[str]) -> str:
        o = ord(m.group())
        return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"

    lines = _UNSAFE.sub(escape, msg).split("\n")
    return "\n".join(x if len(x) <= _MAX_LINE else x[: _MAX_LINE - 1] + "…" for x in lines)


def err(msg: str) -> None:
    """Say what went wrong on standard error, as ``scorer: error: ...``."""
    print(f"scorer: error: {visible(msg)}", file=sys.stderr)


def to_json(data: Any) -> str:
    """The JSON every command prints (indented by two)."""
    return json.dumps(data, indent=2)


def emit(fmt: OutputFormat, data: T, lines: Callable[[T], Iterable[str]]) -> None:
    """Print ``data`` as JSON, or as the text lines ``lines(data)`` gives."""
    if fmt == "json":
        print(to_json(data))
        return
    for line in lines(data):
        print(line)


def write_atomic(path: Path, text: str) -> None:
    """Write a file whole or not at all, owner-only (0600)."""
    from scorer.core.private_files import write_file

    write_file(path.resolve(), text)
