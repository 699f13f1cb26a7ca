"""The import manifest: which patient, visit, date and regions each file holds.

A CSV with the header ``file,patient,visit,date,regions``: ``file`` is the file's name or its
path relative to the imported folder; ``regions`` is one or more of LH RH LF RF separated by
spaces or semicolons; ``date`` is ISO 8601 (YYYY-MM-DD) or empty. Any of patient, visit, date
and regions may be left empty to take it from the DICOM header.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from pathlib import PurePath

from scorer.core.methods import REGIONS

HEADER = ("file", "patient", "visit", "date", "regions")


class ManifestError(ValueError):
    """A manifest that cannot be used; the message lists every problem by line."""


@dataclass(frozen=True)
class ManifestRow:
    """One manifest line."""

    line: int
    file: str
    patient: str | None
    visit: str | None
    date: date | None
    regions: tuple[str, ...]


@dataclass(frozen=True)
class Manifest:
    """Rows by file name, matched by relative path or by base name."""

    rows: tuple[ManifestRow, ...]

    def lookup(self, shown_name: str) -> ManifestRow | None:
        name = shown_name.split("!")[-1].replace("\\", "/")
        best: ManifestRow | None = None
        for row in self.rows:
            target = row.file.replace("\\", "/")
            if name == target or name.endswith("/" + target):
                return row
            if best is None and PurePath(name).name == PurePath(target).name:
                best = row
        return best


def parse_manifest(text: str) -> Manifest:
    """Parse and check a manifest; ManifestError listing every problem with its line."""
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.reader(io.StringIO(text))
    problems: list[str] = []
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise ManifestError("the manifest is empty") from None
    if tuple(header) != HEADER:
        raise ManifestError(
            f"line 1: the header must be {','.join(HEADER)}, not {','.join(header)}"
        )
    rows: list[ManifestRow] = []
    seen: set[str] = set()
    for i, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(HEADER):
            problems.append(f"line {i}: {len(cells)} columns, expected {len(HEADER)}")
            continue
        file, patient, visit, when, regions = (c.strip() for c in cells)
        if not file:
            problems.append(f"line {i}, column file: empty")
            continue
        if file in seen:
            problems.append(f"line {i}, column file: {file} is listed twice")
        seen.add(file)
        parsed_date = None
        if when:
            try:
                parsed_date = date.fromisoformat(when)
            except ValueError:
                problems.append(f"line {i}, column date: {when!r} is not YYYY-MM-DD")
        regs = tuple(r for r in regions.replace(";", " ").split() if r)
        bad = [r for r in regs if r not in REGIONS]
        if bad:
            problems.append(
                f"line {i}, column regions: unknown region(s) {', '.join(bad)} "
                f"(use {' '.join(REGIONS)})"
            )
        rows.append(
            ManifestRow(
                i, file, patient or None, visit or None, parsed_date, tuple(dict.fromkeys(regs))
            )
        )
    if problems:
        raise ManifestError("\n".join(problems))
    return Manifest(tuple(rows))
