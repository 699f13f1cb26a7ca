"""What the reading service gives back and signs: a score's acknowledgement, a read as its
caller may see it (and the SHA-256 a signature covers), a case as its reader opens it, and a
stored entry in JSON and in the grid's words."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from scorer.core.methods import Area
from scorer.core.reads import AreaScore


@dataclass(frozen=True)
class ScoreAck:
    """The acknowledgement of a committed score: the read's new version and status."""

    read_code: str
    area: Area
    version: int
    status: str


@dataclass(frozen=True)
class ReadView:
    """What the caller may see of a read."""

    code: str
    trial: str
    patient_code: str
    visit: str
    reader: str
    method: str
    read_type: str
    status: str
    version: int
    note: str
    scores: dict[Area, AreaScore] = field(default_factory=dict)
    reason_text: dict[Area, str] = field(default_factory=dict)


def content_hash(view: ReadView) -> str:
    """SHA-256 of a read's signed content: identity, method, type, every score and the note."""
    body = {
        "read": view.code,
        "trial": view.trial,
        "patient": view.patient_code,
        "visit": view.visit,
        "reader": view.reader,
        "method": view.method,
        "read_type": view.read_type,
        "note": view.note,
        "scores": [
            [
                a.region,
                a.joint,
                a.feature,
                s.score,
                list(s.sides) if s.sides else None,
                s.reason,
                view.reason_text.get(a, ""),
            ]
            for a, s in sorted(view.scores.items())
        ],
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def score_json(s: AreaScore | None, text: str = "") -> dict[str, Any] | None:
    if s is None:
        return None
    out: dict[str, Any] = {"score": s.score}
    if s.sides is not None:
        out["sides"] = list(s.sides)
    if s.reason is not None:
        out["reason"] = s.reason
        if text:
            out["reason_text"] = text
    return out


def shown(s: AreaScore | None) -> str:
    """A stored entry in the words the grid uses: 2, 1+2 (two sides), NA (reason)."""
    if s is None:
        return "not entered"
    if s.reason is not None:
        return f"NA ({s.reason})"
    if s.sides is not None:
        return "+".join(str(v) for v in s.sides) + f" = {s.score}"
    return str(s.score)


@dataclass(frozen=True)
class OpenedCase:
    """A case as its reader opens it: its visits as letters (A, B, C) with their read codes,
    the method read, and the case's state. Nothing else about the visits."""

    code: str
    reads: dict[str, str]
    method: str
    status: str
