"""What an import takes and gives: its limits, its progress callback, each file's outcome and
the report of them all (``scorer import --format json`` prints it)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from scorer.core.json_value import JsonValue
from scorer.imaging.decode_pool import DecodePool
from scorer.imaging.dicom_header import shown
from scorer.imaging.sources import SourceFile

#: Called with (files done, files in all, the file just done).
Progress = Callable[[int, int, str], None]
#: A reason is printed whole (a decoder's lists every plugin's); this only stops a runaway.
REASON_LIMIT = 4000


@dataclass
class FileOutcome:
    """What became of one file: imported (with its image code), duplicate, or refused."""

    file: str
    status: str
    image: str | None = None
    reason: str = ""
    flags: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    #: An imported image's QC state: "passed", or "pending" when flagged (it reaches no case
    #: until the coordinator passes it).
    qc: str = ""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"file": self.file, "status": self.status}
        if self.image:
            d["image"] = self.image
        if self.qc:
            d["qc"] = self.qc
        if self.reason:
            d["reason"] = shown(self.reason, REASON_LIMIT)
        if self.flags:
            d["flags"] = self.flags
        if self.regions:
            d["regions"] = self.regions
        return d


@dataclass
class ImportReport:
    """Every file's outcome and the counts."""

    files: list[FileOutcome] = field(default_factory=list)
    #: What the start of this import removed of an interrupted one: partial files and
    #: readers' copies without an image.
    partial_removed: int = 0
    orphans_removed: int = 0
    #: What registering the imported patients' films across visits did, in words ("" if
    #: nothing was registered).
    registration: str = ""

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    def to_dict(self) -> dict[str, Any]:
        return {
            "imported": self.count("imported"),
            "duplicates": self.count("duplicate"),
            "refused": self.count("refused"),
            "skipped": self.count("skipped"),
            "flagged": sum(1 for f in self.files if f.status == "imported" and f.flags),
            "partial_removed": self.partial_removed,
            "orphans_removed": self.orphans_removed,
            **({"registration": self.registration} if self.registration else {}),
            "files": [f.to_dict() for f in self.files],
        }


class DecodeLimits(TypedDict, total=False):
    """How the decode workers run: how many, and each file's time and memory."""

    workers: int
    timeout_s: float
    memory_mb: int


class ImportLimits(DecodeLimits, total=False):
    """What an import may take and where its files come from, beyond the decode limits: the
    largest image and file, files already listed (the DICOM receiver's), a running pool,
    whether leftovers are swept, the network origin, and the names a manifest lists."""

    max_megapixels: float
    max_mb: float
    sources: Sequence[SourceFile] | None
    pool: DecodePool | None
    housekeeping: bool
    origin: dict[str, JsonValue] | None
    manifest_names: Collection[str]
