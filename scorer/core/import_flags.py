"""The kinds of flag an import puts on an image, for the desk's filter of flagged imports.

Intake (``scorer.services.intake``) writes each flag as a sentence; the desk groups them in the
three kinds a coordinator works through separately: burned-in text (to mask or clear), a
Secondary Capture or scanned film (to check it is a hand or foot radiograph at all), and
missing header data (patient, visit or regions to assign).
"""

from __future__ import annotations

from collections.abc import Iterable

BURNED_IN = "burned-in text"
SECONDARY_CAPTURE = "secondary capture"
MISSING_HEADER = "missing header data"
OTHER = "other"

FLAG_KINDS: tuple[str, ...] = (BURNED_IN, SECONDARY_CAPTURE, MISSING_HEADER, OTHER)
"""Every kind, in the order the desk offers them."""

# Flag texts as intake words them (prefixes): a new flag there falls under OTHER until it is
# named here, so it is still listed, never hidden.
_MISSING_PREFIXES = ("patient unknown", "patient ID not taken", "visit ", "regions unknown")


def flag_kind(flag: str) -> str:
    """The kind of one import flag (one of :data:`FLAG_KINDS`)."""
    text = flag.strip()
    if text.startswith("secondary capture"):
        return SECONDARY_CAPTURE
    if text.startswith("burned-in"):
        return BURNED_IN
    if text.startswith(_MISSING_PREFIXES):
        return MISSING_HEADER
    return OTHER


def flag_kinds(flags: Iterable[str]) -> frozenset[str]:
    """The kinds among an image's import flags. A burned-in flag on a scanned film or a
    Secondary Capture ("burned-in annotation unknown (scanned image)") counts under both:
    such a film is checked as a capture too."""
    out = set()
    for f in flags:
        out.add(flag_kind(f))
        if f.rstrip().endswith(("(scanned image)", "(secondary capture)")):
            out.add(SECONDARY_CAPTURE)
    return frozenset(out)
