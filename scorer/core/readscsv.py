"""The reads CSV: the exchange format for reads, imported and exported (spec §9).

One row per scored area, comma-separated, with the header row :data:`HEADER`; written as UTF-8
without BOM with LF line endings, read also with a UTF-8 BOM and CRLF line endings (what Excel,
R on Windows and Python's csv module write), to the same reads. :func:`parse_reads_csv`
validates strictly and reports every problem it finds (up to :data:`MAX_ERRORS`) with its
physical line and column; :func:`format_reads_csv` writes a canonical, deterministic text, so
export -> import -> export gives byte-identical files.

The CSV carries neither the side scores of areas graded in parts (only the area score, their
sum: foot erosion in ``svh``) nor the free-text note of a not-assessable area: reads parsed
from a CSV have ``sides=None`` and ``note=""``.

The file keeps raw values (no ``'`` is added for a spreadsheet's sake: the round trip stays
byte-identical), so its IDs and codes may not start with ``-``, ``+``, ``=`` or ``@``, which a
spreadsheet would run as a formula: such an ID is refused on import (line and column) and on
export; no method may define such a code (:mod:`scorer.core.methods`).
"""

from __future__ import annotations

import contextlib
import csv
import gc
import io
import os
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import NamedTuple

from scorer.core.cells import formula_lead
from scorer.core.methods import REASONS, Area, Method, builtin_methods
from scorer.core.private_files import FILE_MODE, set_mode
from scorer.core.reads import (
    READ_STATUSES,
    READ_TYPES,
    AreaScore,
    Read,
    ReadError,
    ScoreChecks,
    validate_read,
)
from scorer.core.visits import natural_key

HEADER: tuple[str, ...] = (
    "trial",
    "patient",
    "visit",
    "visit_date",
    "reader",
    "method",
    "read_type",
    "region",
    "joint",
    "feature",
    "score",
    "assessable",
    "reason",
    "read_id",
    "read_status",
)

#: Problems kept in a :class:`ReadsCsvError`; the rest are only counted.
MAX_ERRORS = 200

#: Free-text identifier columns: required, no control characters, not starting with - + = @
#: (the file keeps raw values, so no ID may be one a spreadsheet runs: scorer.core.cells).
_TEXT_COLUMNS: tuple[str, ...] = ("trial", "patient", "visit", "reader", "read_id")
#: Columns that every row of one read must repeat unchanged.
_READ_COLUMNS: tuple[str, ...] = (
    "trial",
    "patient",
    "visit",
    "visit_date",
    "reader",
    "method",
    "read_type",
    "read_status",
)
_BOM = "\ufeff"
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INT_RE = re.compile(r"-?[0-9]+")


class CsvProblem(NamedTuple):
    """One problem in a reads CSV: physical line (the header is line 1), column, message."""

    line: int
    column: str | None
    message: str

    def __str__(self) -> str:
        if self.column is None:
            return f"line {self.line}: {self.message}"
        return f"line {self.line}, column {self.column}: {self.message}"


class ReadsCsvError(ValueError):
    """A reads CSV that cannot be imported; ``errors`` lists the problems, in line order.

    At most :data:`MAX_ERRORS` problems are kept; ``total`` counts all of them.
    """

    def __init__(self, errors: Iterable[CsvProblem], total: int | None = None) -> None:
        self.errors: list[CsvProblem] = list(errors)
        self.total: int = max(total or 0, len(self.errors))
        super().__init__(self._text())

    def _text(self) -> str:
        lines = [str(e) for e in self.errors]
        if self.total > len(self.errors):
            lines.append(f"... and {self.total - len(self.errors)} more")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self._text()

    def __reduce__(self) -> tuple[type[ReadsCsvError], tuple[list[CsvProblem], int]]:
        return (type(self), (self.errors, self.total))


class _Problems:
    def __init__(self) -> None:
        self.items: list[CsvProblem] = []

    def add(self, line: int, column: str | None, message: str) -> None:
        self.items.append(CsvProblem(line, column, message))

    def __bool__(self) -> bool:
        return bool(self.items)

    def error(self) -> ReadsCsvError:
        ordered = sorted(self.items, key=lambda p: p.line)  # stable: file order within a line
        return ReadsCsvError(ordered[:MAX_ERRORS], len(ordered))


@dataclass
class _Group:
    """The rows of one read_id seen so far."""

    first_line: int
    values: dict[str, str]
    method: Method | None
    scores: dict[Area, AreaScore] = field(default_factory=dict)
    lines: dict[Area, int] = field(default_factory=dict)


#: Unicode's control characters (category Cc): exactly U+0000-U+001F and U+007F-U+009F.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _has_control(s: str) -> bool:
    return _CONTROL.search(s) is not None


def _known_methods(methods: Mapping[str, Method]) -> str:
    return ", ".join(sorted(m for m, v in methods.items() if not v.is_derived))


# --- import ---------------------------------------------------------------------------------


def _decode(data: str | bytes, p: _Problems) -> str:
    if isinstance(data, str):
        text = data
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            for i, chunk in enumerate(data.split(b"\n"), start=1):
                try:
                    chunk.decode("utf-8")
                except UnicodeDecodeError as exc:
                    p.add(
                        i,
                        None,
                        f"not valid UTF-8 (byte 0x{chunk[exc.start]:02x} at byte {exc.start + 1}"
                        " of the line); the reads CSV is UTF-8",
                    )
            text = data.decode("utf-8", errors="replace")
    if text.startswith(_BOM):
        text = text[len(_BOM) :]  # Excel's "CSV UTF-8" starts with one
    return text


def _physical_lines(text: str, p: _Problems) -> list[str | None]:
    """The file's lines without terminators; None for a line that cannot be read as CSV.

    A line ends with LF or CR LF (both may appear in one file); a CR anywhere else is refused.
    """
    raw = text.split("\n")
    if raw and raw[-1] == "":
        raw.pop()  # the file's final LF; a missing final LF is accepted
    last_ended = text.endswith("\n")
    lines: list[str | None] = []
    for i, line in enumerate(raw, start=1):
        if line.endswith("\r") and (last_ended or i < len(raw)):
            line = line[:-1]  # CR LF
        if "\r" in line:
            p.add(i, None, "carriage return (CR) inside the line; the reads CSV uses LF")
            lines.append(None)
            continue
        lines.append(line)
    return lines


def _split(line: str, line_no: int, p: _Problems) -> list[str] | None:
    try:
        rows = list(csv.reader([line], strict=True))
    except csv.Error as exc:
        msg = str(exc)
        if "unexpected end of data" in msg:
            msg = "a quoted field is not closed on this line (a field cannot span lines)"
        p.add(line_no, None, f"not valid CSV: {msg}")
        return None
    return rows[0] if rows else []


def _check_header(fields: list[str], p: _Problems) -> dict[str, int] | None:
    """Column positions by name, or None when the rows cannot be read at all."""
    if tuple(fields) == HEADER:
        return {name: i for i, name in enumerate(HEADER)}
    if fields in ([], [""]):
        p.add(1, None, f"the header row is empty; expected {','.join(HEADER)}")
        return None
    missing = [name for name in HEADER if name not in fields]
    for name in missing:
        p.add(1, name, "missing column")
    seen: set[str] = set()
    duplicated = False
    for pos, name in enumerate(fields, start=1):
        if name in seen:
            if name in HEADER:
                duplicated = True
                p.add(1, name, f"column appears more than once (again at position {pos})")
            continue
        seen.add(name)
        if name not in HEADER:
            hint = ""
            if name.strip().lower() in HEADER and name.strip().lower() in missing:
                hint = f"; did you mean {name.strip().lower()!r}?"
            p.add(1, name or None, f"unexpected column {name!r} at position {pos}{hint}")
    if missing or duplicated:
        return None
    present = [name for name in fields if name in HEADER]
    if present != list(HEADER):
        first = next(a for a, b in zip(present, HEADER, strict=True) if a != b)
        p.add(1, first, f"column out of order; the header is {','.join(HEADER)}")
    return {name: fields.index(name) for name in HEADER}


def _check_ids(row: Mapping[str, str], line: int, p: _Problems) -> None:
    """Check a row's free-text identifiers and its visit date."""
    for col in _TEXT_COLUMNS:
        text = row[col]
        if not text.strip():
            p.add(line, col, "must not be empty")
        elif _has_control(text):
            p.add(line, col, f"contains a control character: {text!r}")
        elif formula_lead(text):
            p.add(line, col, _formula_message(text))

    vd = row["visit_date"]
    if vd:
        ok = _DATE_RE.fullmatch(vd) is not None
        if ok:
            try:
                date.fromisoformat(vd)
            except ValueError:
                ok = False
        if not ok:
            p.add(line, "visit_date", f"{vd!r} is not a date YYYY-MM-DD (ISO 8601) or empty")


def _row_method(
    row: Mapping[str, str], line: int, methods: Mapping[str, Method], p: _Problems
) -> Method | None:
    """The row's method if reads may use it (known, not derived); else None, problem noted."""
    mid = row["method"]
    if mid not in methods:
        p.add(line, "method", f"unknown method {mid!r} (known: {_known_methods(methods)})")
    elif methods[mid].is_derived:
        p.add(
            line,
            "method",
            f"method {mid!r} is derived from {methods[mid].derived_from!r}; it is computed, "
            "not imported",
        )
    else:
        return methods[mid]
    return None


def _row_area(row: Mapping[str, str], line: int, method: Method, p: _Problems) -> Area | None:
    """The row's area if its region, joint and feature name one of ``method``; else None."""
    region, joint, feature = row["region"], row["joint"], row["feature"]
    if region not in method.regions:
        p.add(
            line,
            "region",
            f"{region!r} is not a region of method {method.id} "
            f"(known: {', '.join(method.regions)})",
        )
    elif feature not in method.features:
        p.add(
            line,
            "feature",
            f"{feature!r} is not a feature of method {method.id} "
            f"(known: {', '.join(method.features)})",
        )
    elif not method.has_area(Area(region, joint, feature)):
        p.add(line, "joint", f"{joint!r} is not a {region} {feature} area of method {method.id}")
    else:
        return Area(region, joint, feature)
    return None


def _row_score(
    row: Mapping[str, str],
    line: int,
    method: Method | None,
    area: Area | None,
    p: _Problems,
) -> AreaScore | None:
    """The row's score, or reason for not scoring, if its columns agree and it is in range."""
    score_text, reason = row["score"], row["reason"]
    value: AreaScore | None = None
    assessable = row["assessable"]
    if assessable == "1":
        if reason:
            p.add(line, "reason", f"must be empty when assessable is 1, not {reason!r}")
        if not score_text:
            p.add(line, "score", "is empty; an assessable area (assessable 1) needs a score")
        elif _INT_RE.fullmatch(score_text) is None:
            p.add(line, "score", f"{score_text!r} is not a whole number")
        else:
            n = _whole_number(score_text)
            if area is not None and method is not None:
                d = method.area(area)
                if n is None:
                    shown = _long_number(score_text)
                    p.add(line, "score", f"{shown} is outside {d.min}-{d.max} for {area}")
                elif not d.min <= n <= d.max:
                    p.add(line, "score", f"{n} is outside {d.min}-{d.max} for {area}")
                elif not reason:
                    value = AreaScore(score=n)
    elif assessable == "0":
        if score_text:
            p.add(line, "score", f"must be empty when assessable is 0, not {score_text!r}")
        if not reason:
            p.add(
                line,
                "reason",
                f"is empty; a not-assessable area needs a reason (one of {', '.join(REASONS)})",
            )
        elif reason not in REASONS:
            p.add(line, "reason", f"unknown reason {reason!r} (known: {', '.join(REASONS)})")
        elif not score_text:
            value = AreaScore(reason=reason)
    else:
        p.add(line, "assessable", f"must be 1 or 0, not {assessable!r}")
    return value


def _check_row(
    row: Mapping[str, str],
    line: int,
    methods: Mapping[str, Method],
    p: _Problems,
) -> tuple[Method | None, Area | None, AreaScore | None]:
    """Check one row on its own; returns its method, area and score where they are valid."""
    _check_ids(row, line, p)
    method = _row_method(row, line, methods, p)
    if row["read_type"] not in READ_TYPES:
        p.add(
            line,
            "read_type",
            f"unknown read type {row['read_type']!r} (known: {', '.join(READ_TYPES)})",
        )
    if row["read_status"] not in READ_STATUSES:
        p.add(
            line,
            "read_status",
            f"unknown read status {row['read_status']!r} (known: {', '.join(READ_STATUSES)})",
        )
    area = _row_area(row, line, method, p) if method is not None else None
    return method, area, _row_score(row, line, method, area, p)


def parse_reads_csv(text: str | bytes, methods: Mapping[str, Method] | None = None) -> list[Read]:
    """Read a reads CSV into reads, one per read_id in the order of first appearance.

    ``methods`` are the methods reads may use (default: the built-in ones; derived methods
    such as ``sens`` are refused, they are computed). Raises :class:`ReadsCsvError` listing
    every problem found, each with its physical line (the header is line 1) and column.

    A file without a problem is read in one streaming pass that checks each distinct value
    once (a trial's file has a million rows but a few hundred distinct areas and scores); at
    the first sign of anything wrong the file is read again row by row, to name every problem.
    """
    methods = builtin_methods() if methods is None else methods
    collecting = gc.isenabled()
    gc.disable()  # a million short-lived rows: the collector would rescan them all, for nothing
    try:
        reads = _parse_clean(text, methods)
    finally:
        if collecting:
            gc.enable()
    return reads if reads is not None else _parse_checked(text, methods)


_HEADER_BYTES = (",".join(HEADER) + "\n").encode("ascii")
_HEADER_CRLF_BYTES = (",".join(HEADER) + "\r\n").encode("ascii")
_BOM_BYTES = _BOM.encode("utf-8")


#: More digits than any score has (past leading zeros): such a number is out of every range,
#: and is not made an int (Python refuses a text of over 4,300 digits).
_MAX_SCORE_DIGITS = 18


def _whole_number(text: str) -> int | None:
    """The value of a whole number's text (``_INT_RE``), or None if it has more than
    :data:`_MAX_SCORE_DIGITS` digits past its leading zeros."""
    digits = text.lstrip("-").lstrip("0")
    if len(digits) > _MAX_SCORE_DIGITS:
        return None
    # Leading zeros count towards Python's limit too: read without them.
    n = int(digits or "0")
    return -n if text.startswith("-") else n


def _long_number(text: str) -> str:
    """A whole number too long to quote in a message, described."""
    digits = text.lstrip("-").lstrip("0")
    return f"{text[:12]!r}... (a whole number of {len(digits):,} digits)"


def _check_combo(
    combo: tuple[str, str, str, str, str, str, str], methods: Mapping[str, Method]
) -> tuple[Area, AreaScore, Method] | None:
    """The area and score of a row's (method, region, joint, feature, score, assessable,
    reason), or None if :func:`_check_row` would find a problem with them."""
    mid, region, joint, feature, score_text, assessable, reason = combo
    method = methods.get(mid)
    if method is None or method.is_derived:
        return None
    area = Area(region, joint, feature)
    if region not in method.regions or feature not in method.features:
        return None
    if not method.has_area(area):
        return None
    if assessable == "1":
        if reason or _INT_RE.fullmatch(score_text) is None:
            return None
        n = _whole_number(score_text)
        d = method.area(area)
        if n is None or not d.min <= n <= d.max:
            return None
        return area, AreaScore(score=n), method
    if assessable == "0" and not score_text and reason in REASONS:
        return area, AreaScore(reason=reason), method
    return None


def _clean_text(text: str) -> bool:
    return bool(text.strip()) and not _has_control(text) and formula_lead(text) is None


def clean_text(text: str) -> bool:
    """Whether ``text`` is an ID the reads CSV accepts (the checks of :func:`_check_ids`)."""
    return _clean_text(text)


def clean_date(text: str) -> bool:
    """Whether ``text`` is a visit date the reads CSV accepts: empty or YYYY-MM-DD."""
    return _clean_date(text)


def row_area_score(
    combo: tuple[str, str, str, str, str, str, str], methods: Mapping[str, Method]
) -> tuple[Area, AreaScore, Method] | None:
    """The area, score and method of a row's (method, region, joint, feature, score,
    assessable, reason), or None if the row has a problem with any of them; for readers of
    the file's columns that check each distinct combination once, as the streaming one does.
    """
    return _check_combo(combo, methods)


def _formula_message(text: str) -> str:
    return (
        f"{text!r} starts with {formula_lead(text)}, which a spreadsheet runs as a formula; "
        "IDs may not start with - + = or @"
    )


def _clean_date(text: str) -> bool:
    if not text:
        return True
    if _DATE_RE.fullmatch(text) is None:
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _parse_clean(data: str | bytes, methods: Mapping[str, Method]) -> list[Read] | None:
    """The reads of a file that has no problem at all; None as soon as anything is amiss.

    Agrees with :func:`_parse_checked` on every file it accepts (tests/core hold it to that).
    """
    if isinstance(data, str):
        try:
            data = data.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: the checked reading names the line
            return None
    start = len(_BOM_BYTES) if data.startswith(_BOM_BYTES) else 0
    if header_end(data, start) is None:
        return None  # another header, an empty file: the checked reading says which
    crs = data.count(b"\r")
    if crs and crs != data.count(b"\r\n"):
        return None  # a CR that does not end a line: the checked reading names it
    groups = _clean_groups(data, start, methods)
    return None if groups is None else _clean_reads(groups, methods)


def header_end(data: bytes, start: int) -> int | None:
    """Where the rows begin if the line at byte ``start`` is the header :data:`HEADER`, plain
    or with its names quoted (R's write.csv quotes every one); None for any other first line
    (the checked reading then says what is wrong with it, or reads a header in another
    order)."""
    for plain in (_HEADER_BYTES, _HEADER_CRLF_BYTES):
        if data.startswith(plain, start):
            return start + len(plain)
    # A header line is a few hundred bytes even quoted: a longer first line is not one.
    lf = data.find(b"\n", start, start + 1024)
    if lf == -1:
        return None
    line = data[start:lf].removesuffix(b"\r")
    try:
        names = next(csv.reader([line.decode("ascii")], strict=True))
    except (csv.Error, UnicodeDecodeError):
        return None
    return lf + 1 if tuple(names) == HEADER else None


#: read_id -> (its read columns, its scores), as the one-pass reading collects them.
_CleanGroups = dict[str, tuple[tuple[str, ...], dict[Area, AreaScore]]]


def _clean_groups(data: bytes, start: int, methods: Mapping[str, Method]) -> _CleanGroups | None:
    """The rows after the header (at byte ``start``) grouped by read_id, each row's area and
    score checked once per distinct value; None at the first row that is not clean."""
    # Decoded a few kilobytes at a time: the file's text is never held whole (a str of a
    # trial's file, or a StringIO of it at four bytes a character, would cost hundreds of MB).
    # With newline="" a line ends at LF or CR LF (every CR was checked to be one), and the csv
    # module takes either as the end of a row.
    buffer = io.BytesIO(data)
    buffer.seek(start)
    rows = csv.reader(io.TextIOWrapper(buffer, encoding="utf-8", newline=""), strict=True)
    # read_id -> (its read columns, its scores); values shared by every row that has them.
    groups: _CleanGroups = {}
    combos: dict[tuple[str, str, str, str, str, str, str], tuple[Area, AreaScore, Method]] = {}
    n_rows = 1
    try:
        next(rows)  # the header, checked above
        for row in rows:
            n_rows += 1
            if len(row) != 15:
                return None
            rid = row[13]
            key = (row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[14])
            combo = (row[5], row[7], row[8], row[9], row[10], row[11], row[12])
            found = combos.get(combo)
            if found is None:
                found = _check_combo(combo, methods)
                if found is None:
                    return None
                combos[combo] = found
            group = groups.get(rid)
            if group is None:
                group = groups[rid] = (key, {})
            elif group[0] != key:
                return None
            scores = group[1]
            area = found[0]
            if area in scores:
                return None
            scores[area] = found[1]
    except (csv.Error, UnicodeDecodeError):
        return None
    if rows.line_num != n_rows:
        return None  # a quoted field ran over a line end (or the last line did not end)
    return groups


def _clean_reads(groups: _CleanGroups, methods: Mapping[str, Method]) -> list[Read] | None:
    """The reads of the one-pass reading's groups, once each distinct ID, date, read type and
    status is checked and every signed read found complete; None if any is not."""
    checked: dict[str, bool] = {}

    def ok(text: str, check: Callable[[str], bool]) -> bool:
        found = checked.get(text)
        if found is None:
            found = checked[text] = check(text)
        return found

    dates: dict[str, date | None] = {}
    order: dict[str, tuple[Area, ...]] = {}
    reads: list[Read] = []
    for rid, (
        (trial, patient, visit, vd, reader, mid, read_type, status),
        scores,
    ) in groups.items():
        if not (
            _clean_text(rid)
            and ok(trial, _clean_text)
            and ok(patient, _clean_text)
            and ok(visit, _clean_text)
            and ok(reader, _clean_text)
            and ok(vd, _clean_date)
            and read_type in READ_TYPES
            and status in READ_STATUSES
        ):
            return None
        m = methods[mid]  # checked with the row's area
        areas = order.get(mid)
        if areas is None:
            areas = order[mid] = tuple(d.area for d in m.areas)
        if status == "signed" and len(scores) != len(areas):
            return None  # no duplicates and no foreign areas: a shortfall is a missing area
        if vd not in dates:
            dates[vd] = date.fromisoformat(vd) if vd else None
        reads.append(
            Read(
                trial=trial,
                patient=patient,
                visit=visit,
                reader=reader,
                method=mid,
                read_type=read_type,
                read_id=rid,
                status=status,
                visit_date=dates[vd],
                scores={a: scores[a] for a in areas if a in scores},
            )
        )
    return reads


def _parse_checked(text: str | bytes, methods: Mapping[str, Method]) -> list[Read]:
    """Read a reads CSV row by row, collecting every problem (see :func:`parse_reads_csv`)."""
    p = _Problems()
    decoded = _decode(text, p)
    if decoded == "":
        p.add(
            1, None, f"the file is empty; a reads CSV starts with the header row {','.join(HEADER)}"
        )
        raise p.error()
    lines = _physical_lines(decoded, p)

    header_line = lines[0]
    header = _split(header_line, 1, p) if header_line is not None else None
    columns = _check_header(header, p) if header is not None else None
    if columns is None or header is None:
        raise p.error()
    width = len(header)

    groups: dict[str, _Group] = {}
    for line_no, line in enumerate(lines[1:], start=2):
        if line is None:
            continue
        if line == "":
            p.add(line_no, None, "empty line")
            continue
        fields = _split(line, line_no, p)
        if fields is None:
            continue
        if len(fields) != width:
            p.add(line_no, None, f"expected {width} fields, found {len(fields)}")
            continue
        row = {name: fields[i] for name, i in columns.items()}
        method, area, value = _check_row(row, line_no, methods, p)

        rid = row["read_id"]
        if not rid.strip():
            continue
        group = groups.get(rid)
        if group is None:
            group = _Group(line_no, {c: row[c] for c in _READ_COLUMNS}, method)
            groups[rid] = group
        else:
            for col in _READ_COLUMNS:
                if row[col] != group.values[col]:
                    p.add(
                        line_no,
                        col,
                        f"read {rid!r} has {col} {group.values[col]!r} on its first line "
                        f"{group.first_line}, not {row[col]!r}",
                    )
        if area is not None:
            if area in group.lines:
                p.add(
                    line_no,
                    None,
                    f"{area} appears twice in read {rid!r} (first on line {group.lines[area]})",
                )
            else:
                group.lines[area] = line_no
                if value is not None:
                    group.scores[area] = value

    for rid, group in groups.items():
        m = group.method
        if group.values["read_status"] == "signed" and m is not None:
            missing = [a.area for a in m.areas if a.area not in group.lines]
            if missing:
                p.add(
                    group.first_line,
                    "read_status",
                    f"read {rid!r} is signed but does not cover every area of {m.id}: "
                    f"{len(missing)} missing, first {missing[0]}",
                )
    if p:
        raise p.error()

    reads: list[Read] = []
    for rid, group in groups.items():
        m = group.method
        assert m is not None  # no problems: every row named a usable method
        v = group.values
        scores = dict(sorted(group.scores.items(), key=lambda kv: m.order(kv[0])))
        reads.append(
            Read(
                trial=v["trial"],
                patient=v["patient"],
                visit=v["visit"],
                reader=v["reader"],
                method=v["method"],
                read_type=v["read_type"],
                read_id=rid,
                status=v["read_status"],
                visit_date=date.fromisoformat(v["visit_date"]) if v["visit_date"] else None,
                scores=scores,
            )
        )
    return reads


def read_reads_csv(
    path: str | os.PathLike[str], methods: Mapping[str, Method] | None = None
) -> list[Read]:
    """Read and parse a reads CSV file (see :func:`parse_reads_csv`)."""
    return parse_reads_csv(Path(path).read_bytes(), methods)


# --- export ---------------------------------------------------------------------------------


def _read_problems(
    read: Read, methods: Mapping[str, Method], checked: dict[str, ScoreChecks]
) -> list[str]:
    problems: list[str] = []
    for col, value in (
        ("trial", read.trial),
        ("patient", read.patient),
        ("visit", read.visit),
        ("reader", read.reader),
        ("read_id", read.read_id),
    ):
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{col} must not be empty")
        elif _has_control(value):
            problems.append(f"{col} contains a control character: {value!r}")
        elif formula_lead(value):
            problems.append(f"{col} {_formula_message(value)}")
    if read.visit_date is not None and (
        isinstance(read.visit_date, datetime) or not isinstance(read.visit_date, date)
    ):
        problems.append(f"visit_date must be a date or None, not {read.visit_date!r}")
    method = methods.get(read.method)
    if method is None:
        problems.append(f"unknown method {read.method!r} (known: {_known_methods(methods)})")
    elif method.is_derived:
        problems.append(f"method {read.method!r} is derived; it is computed, not exported")
    else:
        problems.extend(validate_read(read, method, checked.setdefault(method.id, {})))
        if not read.scores:
            problems.append("a read without scores has no rows in a reads CSV")
    return problems


def format_reads_csv(reads: Iterable[Read], methods: Mapping[str, Method] | None = None) -> str:
    """The reads CSV text of ``reads``: header, then one LF-terminated row per area.

    Rows are ordered by trial, patient, visit, reader, read_id, then the method's area order.
    Raises :class:`ReadError` naming every invalid read (nothing is written for any of them).
    """
    methods = builtin_methods() if methods is None else methods
    reads = list(reads)
    problems: list[str] = []
    seen: set[str] = set()
    checked: dict[str, ScoreChecks] = {}
    for read in reads:
        for msg in _read_problems(read, methods, checked):
            problems.append(f"read {read.read_id!r}: {msg}")
        if read.read_id in seen:
            problems.append(f"read {read.read_id!r}: read_id is used by more than one read")
        seen.add(read.read_id)
    if problems:
        raise ReadError("cannot write the reads CSV:\n" + "\n".join(problems))

    cells = _Cells()
    out = [cells.line(HEADER) + "\n"]
    # Visits in natural order (W4 before W24): people read these files too.
    for read in sorted(
        reads,
        key=lambda r: (r.trial, r.patient, natural_key(r.visit), r.visit, r.reader, r.read_id),
    ):
        d = read.visit_date
        visit_date = "" if d is None else f"{d.year:04d}-{d.month:02d}-{d.day:02d}"
        # A row is the read's first seven cells, its area's six, its last two: each part
        # quoted as csv.writer quotes a row (QUOTE_MINIMAL quotes cell by cell), the area's
        # part made once per distinct (area, score, reason) of the file.
        head = cells.line(
            (
                read.trial,
                read.patient,
                read.visit,
                visit_date,
                read.reader,
                read.method,
                read.read_type,
            )
        )
        tail = cells.line((read.read_id, read.status))
        scores = read.scores
        out.append(head + ",")
        out.append(
            f",{tail}\n{head},".join(
                [cells.area(a, scores[a]) for a in cells.ordered(methods[read.method], scores)]
            )
        )
        out.append(f",{tail}\n")
    return "".join(out)


class _Cells:
    """The reads CSV's text of rows' parts, as ``csv.writer`` writes them (minimal quoting,
    LF), each distinct area entry and area order made once."""

    def __init__(self) -> None:
        self._buffer = io.StringIO(newline="")
        self._writer = csv.writer(self._buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        self._areas: dict[tuple[Area, int | None, str | None], str] = {}
        self._orders: dict[tuple[str, tuple[Area, ...]], list[Area]] = {}

    def line(self, cells: tuple[str, ...]) -> str:
        """The cells (two or more: a lone empty cell is written otherwise) without the LF."""
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.writerow(cells)
        return self._buffer.getvalue()[:-1]

    def area(self, area: Area, value: AreaScore) -> str:
        """Region .. reason of an area's row (valid entries only: a score is an int)."""
        key = (area, value.score, value.reason)
        text = self._areas.get(key)
        if text is None:
            text = self._areas[key] = self.line(
                (
                    area[0],
                    area[1],
                    area[2],
                    "" if value.score is None else str(value.score),
                    "1" if value.score is not None else "0",
                    "" if value.score is not None else (value.reason or ""),
                )
            )
        return text

    def ordered(self, method: Method, scores: Mapping[Area, AreaScore]) -> list[Area]:
        """The scores' areas in the method's order (reads of a trial share a few orders)."""
        key = (method.id, tuple(scores))
        found = self._orders.get(key)
        if found is None:
            found = self._orders[key] = sorted(scores, key=method.order)
        return found


def write_reads_csv(
    reads: Iterable[Read],
    path: str | os.PathLike[str],
    methods: Mapping[str, Method] | None = None,
) -> None:
    """Write a reads CSV file atomically: all of it, or nothing (an existing file is kept).

    The text is built and validated first, written to a temporary file in the same folder,
    flushed to disk, then moved over ``path``. A new file is owner-only (0600, whatever the
    umask); a file replaced keeps its mode.
    """
    data = format_reads_csv(reads, methods).encode("utf-8")
    target = Path(path)
    folder = target.parent
    while True:
        tmp = folder / f".{target.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), FILE_MODE
            )
        except FileExistsError:
            continue
        break
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            mode = os.stat(target).st_mode & 0o7777
        except OSError:
            mode = FILE_MODE
        set_mode(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if os.name == "posix":
        try:
            dir_fd = os.open(folder, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dir_fd)
        except OSError:
            pass
        finally:
            os.close(dir_fd)
