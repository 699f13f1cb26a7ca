"""A cell a spreadsheet shows as text: CSV and XLSX cells that never run as a formula.

A spreadsheet opening a CSV runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a
formula, and a tab or carriage return in front of one hides it (OWASP, "CSV Injection"). The
product's exports follow one rule, decided per column by the writer, which knows what each
column holds:

- A column of numbers is written as numbers (``int``, ``float``, ``Decimal``, or the writer's
  own formatting of one, such as the totals' ``-1.5``) and is never touched.
- A column of text (names, codes, reasons, notes, audit details) goes through
  :func:`csv_text`, which puts an apostrophe in front of a text that starts with one of
  :data:`FORMULA_LEADS` (``-2`` written as a reason becomes ``'-2``): a spreadsheet shows it
  as text, and a reader of the file sees where it was added.
- The reads CSV (spec §9) is the exception: it is read back by the product and must round-trip
  byte for byte, so it keeps raw values; instead its IDs and codes may not start with ``-``,
  ``+``, ``=`` or ``@`` (:func:`formula_lead` names the character), refused where they are made
  and when a file is imported.

In XLSX (:func:`set_xlsx_cell`) a text is always a string cell, never a formula (openpyxl takes a
string starting with ``=`` for one), with Excel's quote prefix when it starts with a formula
lead, so that editing the cell keeps it text; characters that XLSX cannot hold (C0 controls but
tab, line feed and carriage return) are written as ``\\xNN``, the way Python writes them, never
an ``IllegalCharacterError``.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

#: The characters that make a spreadsheet run a cell as a formula when it starts with one.
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")

#: Characters an XLSX (XML 1.0) cell cannot hold: openpyxl's ILLEGAL_CHARACTERS_RE.
_XLSX_ILLEGAL = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")


def formula_lead(text: str) -> str | None:
    """The formula character ``text`` starts with, described (``'='``, ``tab``); else None."""
    if not text or text[0] not in FORMULA_LEADS:
        return None
    return {"\t": "a tab", "\r": "a carriage return"}.get(text[0], repr(text[0]))


def csv_text(value: Any) -> Any:
    """A text-column value as a CSV cell a spreadsheet shows as text: ``'`` before a text
    starting with a formula lead; anything that is not a ``str`` (numbers, None) unchanged."""
    if isinstance(value, str) and value[:1] in FORMULA_LEADS:
        return "'" + value
    return value


def csv_row(values: list[Any] | tuple[Any, ...]) -> list[Any]:
    """:func:`csv_text` of every value of a row whose strings are all text (numbers are kept
    as numbers by their type)."""
    return [csv_text(v) for v in values]


def xlsx_text(text: str) -> str:
    """``text`` with each character XLSX cannot hold written as ``\\xNN``."""
    return _XLSX_ILLEGAL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def set_xlsx_cell(cell: Any, value: Any) -> None:
    """Put ``value`` in an openpyxl cell: numbers as numbers; a text as a string cell (never a
    formula), escaped by :func:`xlsx_text`, quote-prefixed when it starts with a formula lead."""
    if isinstance(value, Decimal):
        value = float(value)
    if not isinstance(value, str):
        cell.value = value
        return
    text = xlsx_text(value)
    cell.value = text
    cell.data_type = "s"
    if text[:1] in FORMULA_LEADS:
        cell.quotePrefix = True
