"""What the golden JSON files keep of a command's output: its structure and its stable values.

:func:`normalise` replaces what changes from run to run by a placeholder, by these rules:

- the random codes of patients, images, reads and cases (looked up in the test's own copy of
  the database, so nothing else is mistaken for one) by ``<patient REAL-ID>``, ``<image>``,
  ``<read>``, ``<case>``; a list whose items held such a code is sorted (its order came from
  the codes, or from a worklist's random shuffle);
- a worklist case's random draws (the blinding): its ``position`` and ``original_position``
  by ``<position>``, the place in its ``progress`` ("2 of 3") by ``<k>``, and the order its
  ``visits`` are shown in (sorted);
- ISO date-times (``2025-03-03T09:00:00.000000Z``; dates alone stay) by ``<datetime>``;
- hexadecimal strings of 16 characters or more (hashes, MACs) by ``<hex>``;
- the test's temporary folders by ``<tmp>``;
- log-in session ids by ``<session>`` and this computer's name (the workstation a log-in
  records) by ``<workstation>``;
- numbers under a key naming a duration (``seconds``, ``elapsed``, ``duration``) by
  ``<number>``;
- floats rounded to 10 significant digits (a last-digit change of a numeric library is not a
  change of the command line).
"""

from __future__ import annotations

import json
import platform
import re
import sqlite3
from pathlib import Path
from typing import Any

DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"
)
HEX = re.compile(r"\b[0-9a-fA-F]{16,}\b")
DURATION_KEY = re.compile(r"seconds|elapsed|duration", re.IGNORECASE)
RANDOM_CODE = re.compile(r"[A-HJ-NP-Z2-9]{8,16}")  # scorer.workspace.new_code's alphabet
PLACEHOLDER = re.compile(r"<(patient|image|read|case)\b")


def codes(db: str) -> dict[str, str]:
    """Every random code in the SQLite database ``db`` -> its placeholder."""
    con = sqlite3.connect(f"{Path(db).as_uri()}?mode=ro", uri=True)
    try:
        out = {
            code: f"<patient {real}>"
            for code, real in con.execute("SELECT code, real_id FROM patients")
        }
        for table in ("images", "reads", "cases"):
            out.update({c: f"<{table[:-1]}>" for (c,) in con.execute(f"SELECT code FROM {table}")})
        sessions = con.execute("SELECT DISTINCT session FROM events WHERE session != ''")
        out.update({sid: "<session>" for (sid,) in sessions})
    finally:
        con.close()
    # only what new_code drew (an imported read keeps its own read_id: not random)
    return {code: v for code, v in out.items() if RANDOM_CODE.fullmatch(code)}


class Normaliser:
    def __init__(self, db: str, temporary: Path) -> None:
        self.codes = codes(db)
        self.code = re.compile("|".join(map(re.escape, sorted(self.codes, key=len, reverse=True))))
        self.tmp = re.compile(re.escape(str(temporary)) + r"/[^/\"]+")
        self.workstation = platform.node()  # what a log-in records as its workstation

    def text(self, s: str) -> str:
        s = self.tmp.sub("<tmp>", s)
        if s == self.workstation:
            return "<workstation>"
        s = self.code.sub(lambda m: self.codes[m.group()], s) if self.codes else s
        s = DATETIME.sub("<datetime>", s)
        return HEX.sub("<hex>", s)

    def value(self, v: Any, key: str = "") -> Any:
        if isinstance(v, dict):
            out = {self.text(k): self.value(x, k) for k, x in v.items()}
            if "position" in out:  # a worklist case
                for k in ("position", "original_position"):
                    if isinstance(out.get(k), int):
                        out[k] = "<position>"
                if isinstance(out.get("progress"), str):
                    out["progress"] = re.sub(r"^\d+ of", "<k> of", out["progress"])
                if isinstance(out.get("visits"), list):
                    out["visits"] = sorted(out["visits"])
            return out
        if isinstance(v, list):
            items = [self.value(x, key) for x in v]
            dumped = [json.dumps(x, sort_keys=True) for x in items]
            if any(PLACEHOLDER.search(d) for d in dumped):
                items = [x for _, x in sorted(zip(dumped, items, strict=True), key=lambda p: p[0])]
            return items
        if isinstance(v, bool) or v is None:
            return v
        if isinstance(v, int | float) and DURATION_KEY.search(key):
            return "<number>"
        if isinstance(v, float):
            return float(f"{v:.10g}")
        if isinstance(v, str):
            return self.text(v)
        return v


def normalise(data: Any, db: str, temporary: Path) -> Any:
    """``data`` (a command's parsed JSON) with what changes between runs replaced; see the
    module's docstring. ``db`` is the SQLite database the command ran on, ``temporary`` the
    base of pytest's temporary folders."""
    return Normaliser(db, temporary).value(data)
