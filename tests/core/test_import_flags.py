"""The kinds of import flag the desk filters by, from the flag texts intake writes."""

from __future__ import annotations

from scorer.core.import_flags import (
    BURNED_IN,
    MISSING_HEADER,
    OTHER,
    SECONDARY_CAPTURE,
    flag_kind,
    flag_kinds,
)
from scorer.services.intake import BURNED_IN_UNKNOWN, SECONDARY_CAPTURE_FLAG


def test_each_intake_flag_has_its_kind() -> None:
    assert flag_kind(BURNED_IN_UNKNOWN) == BURNED_IN
    assert flag_kind("burned-in annotation") == BURNED_IN
    assert flag_kind(SECONDARY_CAPTURE_FLAG) == SECONDARY_CAPTURE
    for missing in (
        "patient unknown",
        "visit unknown",
        "visit W99 is not a visit of this trial",
        "regions unknown (body part HAND, laterality ?)",
        "patient ID not taken: it starts with =, which a spreadsheet runs as a formula",
    ):
        assert flag_kind(missing) == MISSING_HEADER, missing
    assert flag_kind("something intake says one day") == OTHER


def test_a_scanned_film_or_capture_without_burned_in_data_counts_under_both() -> None:
    assert flag_kinds(["burned-in annotation unknown (scanned image)", "patient unknown"]) == {
        BURNED_IN,
        SECONDARY_CAPTURE,
        MISSING_HEADER,
    }
    assert flag_kinds(
        [SECONDARY_CAPTURE_FLAG, "burned-in annotation unknown (secondary capture)"]
    ) == {
        SECONDARY_CAPTURE,
        BURNED_IN,
    }
    assert flag_kinds([]) == frozenset()
