"""Untrusted text made safe to show on one line: a terminal's or a table's.

A file name, an AE title or a header value quoted in a reason comes from outside: a name with
a line feed in it would forge an outcome line of ``scorer import``, an escape sequence would
drive the terminal, a bidi override would show a name backwards. :func:`printable` escapes
each such character as ``\\xNN`` (below U+0100) or ``\\uNNNN`` and leaves the rest as it is;
JSON output needs none of this (JSON escapes control characters itself).
"""

from __future__ import annotations

import re

#: Control characters (C0 with the line feed and tab, DEL, C1), the line and paragraph
#: separators, the bidi marks, embeddings, overrides and isolates, and lone surrogates.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(m: re.Match[str]) -> str:
    o = ord(m.group())
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


def printable(text: object) -> str:
    """``text`` with every character that could forge a line, move the cursor or reorder what
    is shown escaped (``\\n`` as ``\\x0a``, ESC as ``\\x1b``, RLO as ``\\u202e``)."""
    return UNSAFE.sub(_escape, str(text))
