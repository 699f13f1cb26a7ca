"""The reads CSV (spec §9): strict import with every problem reported, canonical export."""

from __future__ import annotations

import csv
import io
import os
import pickle
import random
import stat
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scorer.core.methods import REASONS, Area, Method, builtin_methods, get_method
from scorer.core.reads import READ_STATUSES, READ_TYPES, AreaScore, Read, ReadError
from scorer.core.readscsv import (
    HEADER,
    MAX_ERRORS,
    CsvProblem,
    ReadsCsvError,
    _parse_checked,
    _parse_clean,
    format_reads_csv,
    parse_reads_csv,
    read_reads_csv,
    write_reads_csv,
)

SVH = get_method("svh")
LARSEN = get_method("larsen1995")
HEADER_LINE = ",".join(HEADER)

# A valid in-progress svh read in canonical order; physical lines 2-5.
BASE_ROWS: list[list[str]] = [
    ["T1", "P01", "W0", "2024-01-15", "alice", "svh", "primary", "LH", "MCP1", "ERO", "0", "1",
     "", "R1", "in_progress"],
    ["T1", "P01", "W0", "2024-01-15", "alice", "svh", "primary", "LH", "MCP2", "ERO", "3", "1",
     "", "R1", "in_progress"],
    ["T1", "P01", "W0", "2024-01-15", "alice", "svh", "primary", "LH", "MCP1", "JSN", "", "0",
     "not_visible", "R1", "in_progress"],
    ["T1", "P01", "W0", "2024-01-15", "alice", "svh", "primary", "LF", "MTP1", "ERO", "10", "1",
     "", "R1", "in_progress"],
]  # fmt: skip


def render(rows: list[list[str]], header: tuple[str, ...] | list[str] = HEADER) -> str:
    out = io.StringIO(newline="")
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return out.getvalue()


def edited(changes: Mapping[tuple[int, str], str], rows: list[list[str]] | None = None) -> str:
    """BASE_ROWS (or ``rows``) with cells changed, keyed by (physical line, column)."""
    new = [list(r) for r in (BASE_ROWS if rows is None else rows)]
    for (line, col), value in changes.items():
        new[line - 2][HEADER.index(col)] = value
    return render(new)


def problems(text: str | bytes) -> list[CsvProblem]:
    with pytest.raises(ReadsCsvError) as info:
        parse_reads_csv(text)
    return info.value.errors


def assert_problem(
    text: str | bytes, line: int, column: str | None, fragment: str
) -> ReadsCsvError:
    with pytest.raises(ReadsCsvError) as info:
        parse_reads_csv(text)
    err = info.value
    hits = [
        e for e in err.errors if e.line == line and e.column == column and fragment in e.message
    ]
    assert hits, f"no problem at line {line}, column {column} with {fragment!r} in:\n{err}"
    prefix = f"line {line}, column {column}: " if column else f"line {line}: "
    assert any(s.startswith(prefix) and fragment in s for s in str(err).splitlines())
    return err


def full_read(method: Method, read_id: str = "S1", score: int = 1, **kw: object) -> Read:
    base: dict[str, object] = {
        "trial": "T1",
        "patient": "P01",
        "visit": "W0",
        "reader": "alice",
        "method": method.id,
        "read_id": read_id,
        "status": "signed",
        "scores": {a.area: AreaScore(score=min(score, a.max)) for a in method.areas},
    }
    base.update(kw)
    return Read(**base)  # type: ignore[arg-type]


# --- hypothesis: round trip ------------------------------------------------------------------

IDS = st.one_of(
    st.text(
        st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=12
    ).filter(lambda s: s.strip() != "" and s[0] not in "-+=@"),  # no formula lead (§9)
    st.sampled_from(
        ["a,b", 'say "hi"', '"', ",", '","', "Zürich-01", "患者 7", " lead", "tail ", "x\u2028y",
         "😀", "'", "#1", "x=1+1", "W0", "'=1"]
    ),
)  # fmt: skip


@st.composite
def area_scores(draw: st.DrawFn, method: Method, complete: bool) -> dict[Area, AreaScore]:
    n = len(method.areas)
    chosen: list[int]
    if complete:
        chosen = list(range(n))
    else:
        chosen = sorted(draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=n)))
    scores: dict[Area, AreaScore] = {}
    for i in chosen:
        d = method.areas[i]
        scores[d.area] = draw(
            st.one_of(
                st.integers(d.min, d.max).map(AreaScore.scored),
                st.sampled_from(REASONS).map(AreaScore.not_assessable),
            )
        )
    return scores


@st.composite
def reads(draw: st.DrawFn) -> Read:
    method = get_method(draw(st.sampled_from(["svh", "larsen1995"])))
    status = draw(st.sampled_from(READ_STATUSES))
    return Read(
        trial=draw(IDS),
        patient=draw(IDS),
        visit=draw(IDS),
        reader=draw(IDS),
        method=method.id,
        read_type=draw(st.sampled_from(READ_TYPES)),
        read_id=draw(IDS),
        status=status,
        visit_date=draw(st.none() | st.dates()),
        scores=draw(area_scores(method, complete=status == "signed")),
    )


READ_LISTS = st.lists(reads(), max_size=4, unique_by=lambda r: r.read_id)
ROUND_TRIP = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@ROUND_TRIP
@given(READ_LISTS)
def test_round_trip_gives_equal_reads(original: list[Read]) -> None:
    text = format_reads_csv(original)
    back = parse_reads_csv(text)
    assert {r.read_id: r for r in back} == {r.read_id: r for r in original}
    assert len(back) == len(original)
    assert parse_reads_csv(text.encode("utf-8")) == back


@ROUND_TRIP
@given(READ_LISTS)
def test_export_import_export_is_byte_identical(original: list[Read]) -> None:
    text = format_reads_csv(original)
    again = format_reads_csv(parse_reads_csv(text))
    assert again.encode("utf-8") == text.encode("utf-8")
    assert text.startswith(HEADER_LINE + "\n")
    assert "\r" not in text and text.endswith("\n")
    assert text.count("\n") == 1 + sum(len(r.scores) for r in original)


@ROUND_TRIP
@given(READ_LISTS, st.randoms(use_true_random=False))
def test_export_does_not_depend_on_input_order(original: list[Read], rnd: object) -> None:
    shuffled = list(original)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert format_reads_csv(shuffled) == format_reads_csv(original)


# --- valid files -----------------------------------------------------------------------------


def test_base_file_parses() -> None:
    text = render(BASE_ROWS)
    [read] = parse_reads_csv(text)
    assert read == Read(
        trial="T1",
        patient="P01",
        visit="W0",
        reader="alice",
        method="svh",
        read_type="primary",
        read_id="R1",
        status="in_progress",
        visit_date=date(2024, 1, 15),
        scores={
            Area("LH", "MCP1", "ERO"): AreaScore(score=0),
            Area("LH", "MCP2", "ERO"): AreaScore(score=3),
            Area("LH", "MCP1", "JSN"): AreaScore(reason="not_visible"),
            Area("LF", "MTP1", "ERO"): AreaScore(score=10),
        },
    )
    assert all(v.sides is None for v in read.scores.values())
    assert format_reads_csv([read]) == text


def test_header_only_is_an_empty_table() -> None:
    assert parse_reads_csv(HEADER_LINE + "\n") == []
    assert parse_reads_csv((HEADER_LINE + "\n").encode()) == []
    assert format_reads_csv([]) == HEADER_LINE + "\n"


def test_missing_final_newline_is_accepted() -> None:
    text = render(BASE_ROWS)
    assert parse_reads_csv(text.rstrip("\n")) == parse_reads_csv(text)
    assert parse_reads_csv(HEADER_LINE) == []


def test_reads_come_back_in_order_of_first_appearance() -> None:
    rows = [list(r) for r in BASE_ROWS]
    other = [list(r) for r in BASE_ROWS[:2]]
    for r in other:
        r[HEADER.index("read_id")] = "R0"
        r[HEADER.index("reader")] = "bob"
    mixed = [rows[0], other[0], rows[1], other[1], rows[2], rows[3]]
    got = parse_reads_csv(render(mixed))
    assert [r.read_id for r in got] == ["R1", "R0"]
    assert len(got[0].scores) == 4 and len(got[1].scores) == 2


def test_empty_visit_date_and_quoted_fields() -> None:
    text = edited({(2, "visit_date"): "", (3, "visit_date"): "", (4, "visit_date"): "",
                   (5, "visit_date"): ""})  # fmt: skip
    assert parse_reads_csv(text)[0].visit_date is None
    rows = [list(r) for r in BASE_ROWS]
    for r in rows:
        r[0] = 'Trial "A", phase 3'
    text = render(rows)
    assert '"Trial ""A"", phase 3"' in text
    assert parse_reads_csv(text)[0].trial == 'Trial "A", phase 3'


def test_signed_complete_read_and_larsen() -> None:
    reads_ = [full_read(SVH, "S1", 3), full_read(LARSEN, "L1", 5, reader="bob")]
    text = format_reads_csv(reads_)
    assert text.count("\n") == 1 + 86 + 32
    assert parse_reads_csv(text) == reads_


def test_rows_are_ordered_by_trial_patient_visit_reader_read_id_then_area() -> None:
    def one(trial: str, patient: str, visit: str, reader: str, rid: str) -> Read:
        areas = [a.area for a in LARSEN.areas]
        # scores given in reverse canonical order: the writer restores the method's order
        scores = {areas[5]: AreaScore(score=1), areas[0]: AreaScore(score=2)}
        return Read(
            trial, patient, visit, reader, "larsen1995", read_id=rid, status="in_progress",
            scores=scores,
        )  # fmt: skip

    keys = [
        ("T2", "P1", "W0", "a", "r1"),
        ("T1", "P2", "W0", "a", "r2"),
        ("T1", "P1", "W24", "a", "r3"),
        ("T1", "P1", "W0", "b", "r4"),
        ("T1", "P1", "W0", "a", "r6"),
        ("T1", "P1", "W0", "a", "r5"),
    ]
    text = format_reads_csv([one(*k) for k in keys])
    rows = list(csv.reader(io.StringIO(text)))[1:]
    order = [r[HEADER.index("read_id")] for r in rows[::2]]
    assert order == ["r5", "r6", "r4", "r3", "r2", "r1"]
    joints = [r[HEADER.index("joint")] for r in rows[:2]]
    assert joints == [LARSEN.areas[0].joint, LARSEN.areas[5].joint]


def test_not_assessable_rows_have_empty_score() -> None:
    read = full_read(LARSEN).with_score(Area("RF", "MTP5", "LAR"), AreaScore.not_assessable(
        "operated", note="arthrodesis"))  # fmt: skip
    text = format_reads_csv([read])
    assert "RF,MTP5,LAR,,0,operated,S1,signed\n" in text
    back = parse_reads_csv(text)[0]
    assert back.scores[Area("RF", "MTP5", "LAR")] == AreaScore(reason="operated")


def test_foot_erosion_sides_export_as_their_sum() -> None:
    read = full_read(SVH).with_score(Area("LF", "MTP1", "ERO"), AreaScore.from_sides((4, 5)))
    back = parse_reads_csv(format_reads_csv([read]))[0]
    assert back.scores[Area("LF", "MTP1", "ERO")] == AreaScore(score=9)


def test_custom_methods_mapping() -> None:
    only_larsen = {"larsen1995": LARSEN}
    with pytest.raises(ReadsCsvError) as info:
        parse_reads_csv(render(BASE_ROWS), only_larsen)
    assert "known: larsen1995" in str(info.value)
    read = full_read(LARSEN)
    assert parse_reads_csv(format_reads_csv([read], only_larsen), only_larsen) == [read]


# --- one test per rule -----------------------------------------------------------------------


@pytest.mark.parametrize("empty", ["", b""])
def test_wholly_empty_file_is_an_error(empty: str | bytes) -> None:
    assert_problem(empty, 1, None, "the file is empty")


@pytest.mark.parametrize("bom", [b"\xef\xbb\xbf", "\ufeff"], ids=["bytes", "str"])
def test_a_bom_is_read_past(bom: str | bytes) -> None:
    text = render(BASE_ROWS)
    data: str | bytes = bom + text.encode() if isinstance(bom, bytes) else bom + text
    assert parse_reads_csv(data) == parse_reads_csv(text)


def test_invalid_utf8_names_the_line() -> None:
    data = render(BASE_ROWS).encode().replace(b"alice", b"al\xe9ce")
    err = problems(data)
    assert [(e.line, e.column) for e in err if "UTF-8" in e.message] == [
        (2, None), (3, None), (4, None), (5, None)
    ]  # fmt: skip
    assert "byte 0xe9" in err[0].message


def test_crlf_lines_are_read_like_lf_ones() -> None:
    text = render(BASE_ROWS)
    assert parse_reads_csv(text.replace("\n", "\r\n")) == parse_reads_csv(text)
    # one CRLF line among LF lines
    lines = text.split("\n")
    lines[2] += "\r"
    assert parse_reads_csv("\n".join(lines)) == parse_reads_csv(text)


def test_a_cr_that_ends_no_line_is_an_error() -> None:
    text = render(BASE_ROWS)
    assert_problem(text[:-1] + "\r", 5, None, "carriage return (CR) inside the line")
    assert_problem(text.replace("\n", "\r"), 1, None, "carriage return (CR) inside the line")


def test_lone_cr_is_an_error() -> None:
    text = render(BASE_ROWS).replace("alice", "al\rice", 1)
    assert_problem(text, 2, None, "carriage return (CR) inside the line")


def test_header_missing_column() -> None:
    header = [h for h in HEADER if h != "visit_date"]
    rows = [[c for i, c in enumerate(r) if HEADER[i] != "visit_date"] for r in BASE_ROWS]
    err = assert_problem(render(rows, header), 1, "visit_date", "missing column")
    assert all(e.line == 1 for e in err.errors)


def test_header_unexpected_column() -> None:
    header = [*HEADER, "comment"]
    rows = [[*r, "x"] for r in BASE_ROWS]
    err = assert_problem(render(rows, header), 1, "comment", "unexpected column 'comment'")
    assert len(err.errors) == 1  # the rows are still read, by column name


def test_header_wrong_case_hints() -> None:
    header = ["Trial", *HEADER[1:]]
    err = assert_problem(render(BASE_ROWS, header), 1, "Trial", "did you mean 'trial'?")
    assert any(e.column == "trial" and e.message == "missing column" for e in err.errors)


def test_header_misordered_columns() -> None:
    header = list(HEADER)
    header[3], header[4] = header[4], header[3]  # reader before visit_date
    rows = [list(r) for r in BASE_ROWS]
    for r in rows:
        r[3], r[4] = r[4], r[3]
    err = assert_problem(render(rows, header), 1, "reader", "column out of order")
    assert len(err.errors) == 1


def test_header_duplicate_column() -> None:
    header = [*HEADER, "score"]
    rows = [[*r, "1"] for r in BASE_ROWS]
    assert_problem(render(rows, header), 1, "score", "more than once")


def test_header_empty() -> None:
    assert_problem("\n" + render(BASE_ROWS), 1, None, "header row is empty")


def test_wrong_field_count() -> None:
    lines = render(BASE_ROWS).split("\n")
    lines[2] += ",extra"
    lines[3] = lines[3].rsplit(",", 1)[0]
    err = assert_problem("\n".join(lines), 3, None, "expected 15 fields, found 16")
    assert_problem("\n".join(lines), 4, None, "expected 15 fields, found 14")
    assert len(err.errors) == 2


def test_empty_line() -> None:
    lines = render(BASE_ROWS).split("\n")
    lines.insert(3, "")
    assert_problem("\n".join(lines), 4, None, "empty line")


def test_unclosed_quote() -> None:
    text = render(BASE_ROWS).replace("alice", '"alice', 1)
    assert_problem(text, 2, None, "not valid CSV")


@pytest.mark.parametrize("column", ["trial", "patient", "visit", "reader", "read_id"])
@pytest.mark.parametrize("value", ["", "  "])
def test_required_text_fields(column: str, value: str) -> None:
    assert_problem(edited({(3, column): value}), 3, column, "must not be empty")


def test_control_character_in_text_field() -> None:
    assert_problem(edited({(2, "patient"): "P\x0701"}), 2, "patient", "control character")


def test_unknown_method() -> None:
    assert_problem(edited({(2, "method"): "sharp"}), 2, "method", "unknown method 'sharp'")


def test_derived_method_cannot_be_imported() -> None:
    rows = [[*r[:5], "sens", *r[6:]] for r in BASE_ROWS[:2]]
    err = assert_problem(render(rows), 2, "method", "derived")
    assert_problem(render(rows), 3, "method", "computed, not imported")
    assert "sens" in str(err)


def test_unknown_read_type() -> None:
    assert_problem(edited({(4, "read_type"): "second"}), 4, "read_type", "unknown read type")


def test_unknown_read_status() -> None:
    assert_problem(edited({(4, "read_status"): "done"}), 4, "read_status", "unknown read status")


def test_region_not_of_method() -> None:
    assert_problem(edited({(3, "region"): "XH"}), 3, "region", "'XH' is not a region of")


def test_feature_not_of_method() -> None:
    assert_problem(edited({(3, "feature"): "LAR"}), 3, "feature", "'LAR' is not a feature of")


def test_joint_not_of_method() -> None:
    assert_problem(edited({(3, "joint"): "MCP9"}), 3, "joint", "'MCP9' is not a LH ERO area")
    # a real joint of another region or feature
    assert_problem(edited({(3, "joint"): "MTP1"}), 3, "joint", "'MTP1' is not a LH ERO area")
    assert_problem(edited({(4, "joint"): "IP1"}), 4, "joint", "'IP1' is not a LH JSN area")


@pytest.mark.parametrize(
    "value", ["2024/01/15", "20240115", "2024-1-15", "2024-02-30", "15-01-2024", "2024-W03-1",
              "2024-01-15T00:00", "２０２４-01-15"]
)  # fmt: skip
def test_bad_visit_date(value: str) -> None:
    text = edited({(line, "visit_date"): value for line in (2, 3, 4, 5)})
    err = assert_problem(text, 2, "visit_date", "is not a date YYYY-MM-DD")
    assert {e.line for e in err.errors} == {2, 3, 4, 5}


@pytest.mark.parametrize("value", ["yes", "", "2", "01", "true"])
def test_assessable_is_1_or_0(value: str) -> None:
    assert_problem(edited({(3, "assessable"): value}), 3, "assessable", "must be 1 or 0")


def test_score_outside_range_message() -> None:
    err = assert_problem(edited({(3, "score"): "12"}), 3, "score", "12 is outside 0-5")
    assert str(err) == "line 3, column score: 12 is outside 0-5 for LH MCP2 ERO"


def test_score_range_is_per_area() -> None:
    assert_problem(edited({(5, "score"): "11"}), 5, "score", "11 is outside 0-10 for LF MTP1 ERO")
    assert_problem(edited({(2, "score"): "-1"}), 2, "score", "-1 is outside 0-5")


@pytest.mark.parametrize("sign", ["", "-"])
def test_a_score_of_thousands_of_digits_is_out_of_range_not_a_crash(sign: str) -> None:
    # Past Python's 4,300-digit limit of int(): named like any score out of range.
    huge = sign + "9" * 5000
    err = assert_problem(edited({(3, "score"): huge}), 3, "score", "is outside 0-5")
    assert str(err) == (
        f"line 3, column score: {huge[:12]!r}... (a whole number of 5,000 digits)"
        " is outside 0-5 for LH MCP2 ERO"
    )
    assert_problem(edited({(3, "score"): "1" + "0" * 18}), 3, "score", "is outside 0-5")


def test_a_score_with_thousands_of_leading_zeros_is_its_value() -> None:
    text = edited({(3, "score"): "0" * 5000 + "3"})
    assert parse_reads_csv(text)[0].scores[Area("LH", "MCP2", "ERO")] == AreaScore(score=3)
    assert_problem(edited({(3, "score"): "-" + "0" * 5000 + "6"}), 3, "score", "-6 is outside")


@pytest.mark.parametrize("value", ["2.0", "two", "1e0", " 2", "+"])
def test_score_must_be_whole_number(value: str) -> None:
    assert_problem(edited({(3, "score"): value}), 3, "score", "is not a whole number")


def test_score_empty_when_assessable() -> None:
    assert_problem(edited({(3, "score"): ""}), 3, "score", "needs a score")


def test_score_given_when_not_assessable() -> None:
    assert_problem(edited({(4, "score"): "2"}), 4, "score", "must be empty when assessable is 0")


def test_reason_given_when_assessable() -> None:
    text = edited({(3, "reason"): "operated"})
    assert_problem(text, 3, "reason", "must be empty when assessable is 1")


def test_reason_missing_when_not_assessable() -> None:
    assert_problem(edited({(4, "reason"): ""}), 4, "reason", "needs a reason")


def test_unknown_reason() -> None:
    assert_problem(edited({(4, "reason"): "blurry"}), 4, "reason", "unknown reason 'blurry'")


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("trial", "T2"),
        ("patient", "P02"),
        ("visit", "W24"),
        ("visit_date", "2024-01-16"),
        ("reader", "bob"),
        ("method", "larsen1995"),
        ("read_type", "reread"),
        ("read_status", "void"),
    ],
)
def test_rows_of_a_read_must_agree(column: str, value: str) -> None:
    err = assert_problem(edited({(4, column): value}), 4, column, "on its first line 2")
    assert "read 'R1'" in str(err)


def test_duplicate_area_in_a_read() -> None:
    rows = [*BASE_ROWS, list(BASE_ROWS[1])]
    rows[-1][HEADER.index("score")] = "4"
    assert_problem(
        render(rows), 6, None, "LH MCP2 ERO appears twice in read 'R1' (first on line 3)"
    )


def test_same_area_in_two_reads_is_fine() -> None:
    rows = [list(r) for r in BASE_ROWS] + [list(r) for r in BASE_ROWS]
    for r in rows[4:]:
        r[HEADER.index("read_id")] = "R2"
    assert len(parse_reads_csv(render(rows))) == 2


def test_signed_read_must_cover_every_area() -> None:
    text = edited({(line, "read_status"): "signed" for line in (2, 3, 4, 5)})
    err = assert_problem(text, 2, "read_status", "read 'R1' is signed but does not cover")
    assert "82 missing, first LH MCP3 ERO" in str(err)
    assert len(err.errors) == 1


def test_signed_read_first_missing_area_follows_method_order() -> None:
    text = format_reads_csv([full_read(LARSEN)])
    lines = text.split("\n")
    del lines[1 + 13]  # the 14th area
    err = assert_problem("\n".join(lines), 2, "read_status", "1 missing, first")
    assert f"first {LARSEN.areas[13].area}" in str(err)


@pytest.mark.parametrize("status", ["in_progress", "void"])
def test_incomplete_reads_that_are_not_signed_are_fine(status: str) -> None:
    text = edited({(line, "read_status"): status for line in (2, 3, 4, 5)})
    assert parse_reads_csv(text)[0].status == status


# --- many problems ---------------------------------------------------------------------------


def test_all_problems_are_reported() -> None:
    text = edited(
        {
            (2, "score"): "6",
            (3, "assessable"): "maybe",
            (4, "reason"): "lost",
            (5, "patient"): "P99",
        }
    )
    # as Excel saves it: a BOM and CRLF line endings leave the lines and columns named the same
    text = "\ufeff" + (text + "T1,P01\n").replace("\n", "\r\n")
    err = problems(text)
    got = [(e.line, e.column) for e in err]
    assert got == [
        (2, "score"),
        (3, "assessable"),
        (4, "reason"),
        (5, "patient"),
        (6, None),
    ]
    text_lines = str(ReadsCsvError(err)).splitlines()
    assert len(text_lines) == 5
    assert text_lines[0] == "line 2, column score: 6 is outside 0-5 for LH MCP1 ERO"
    assert text_lines[4] == "line 6: expected 15 fields, found 2"


def test_problems_are_capped() -> None:
    rows = [list(r) for r in BASE_ROWS]
    many = []
    for i in range(300):
        r = list(BASE_ROWS[0])
        r[HEADER.index("read_id")] = f"X{i}"
        r[HEADER.index("read_type")] = "nonsense"
        many.append(r)
    with pytest.raises(ReadsCsvError) as info:
        parse_reads_csv(render(rows + many))
    err = info.value
    assert len(err.errors) == MAX_ERRORS
    assert err.total == 300
    assert err.errors[0].line == 6 and err.errors[-1].line == 6 + MAX_ERRORS - 1
    assert str(err).splitlines()[-1] == "... and 100 more"


def test_error_is_a_value_error_and_pickles() -> None:
    err = ReadsCsvError([CsvProblem(7, "score", "bad"), CsvProblem(8, None, "worse")], 5)
    assert isinstance(err, ValueError)
    assert str(err) == "line 7, column score: bad\nline 8: worse\n... and 3 more"
    again = pickle.loads(pickle.dumps(err))
    assert again.errors == err.errors and str(again) == str(err)


# --- export refuses what import would refuse -------------------------------------------------


def test_format_refuses_invalid_reads() -> None:
    bad_score = full_read(LARSEN).with_score(Area("LH", "PIP2", "LAR"), AreaScore(score=9))
    with pytest.raises(ReadError) as info:
        format_reads_csv([bad_score])
    assert "LH PIP2 LAR: score 9 is outside 0-5" in str(info.value)

    incomplete = Read("T", "P", "V", "r", "larsen1995", read_id="I1", status="signed",
                      scores={Area("LH", "PIP2", "LAR"): AreaScore(score=1)})  # fmt: skip
    empty = Read("T", "P", "V", "r", "larsen1995", read_id="E1", status="in_progress")
    no_id = full_read(LARSEN, read_id="")
    newline = full_read(LARSEN, read_id="N1", patient="P\n1")
    derived = full_read(get_method("sens"), read_id="D1")
    stamp = full_read(LARSEN, read_id="S2", visit_date=datetime(2024, 1, 1, 12, 0))
    dup = [full_read(LARSEN, "U1"), full_read(LARSEN, "U1", reader="bob")]
    with pytest.raises(ReadError) as info:
        format_reads_csv([incomplete, empty, no_id, newline, derived, stamp, *dup])
    msg = str(info.value)
    for fragment in (
        "read 'I1': a signed read must cover every area",
        "read 'E1': a read without scores",
        "read '': read_id must not be empty",
        "read 'N1': patient contains a control character",
        "read 'D1': method 'sens' is derived",
        "read 'S2': visit_date must be a date",
        "read 'U1': read_id is used by more than one read",
    ):
        assert fragment in msg


# --- files -----------------------------------------------------------------------------------


def test_write_and_read_file(tmp_path: Path) -> None:
    reads_ = [full_read(SVH, "S1", 2, visit_date=date(2023, 6, 1)), full_read(LARSEN, "L1")]
    path = tmp_path / "reads.csv"
    write_reads_csv(reads_, path)
    data = path.read_bytes()
    assert data == format_reads_csv(reads_).encode("utf-8")
    assert not data.startswith(b"\xef\xbb\xbf") and b"\r" not in data
    assert read_reads_csv(path) == sorted(reads_, key=lambda r: r.read_id)
    write_reads_csv(read_reads_csv(path), str(path))
    assert path.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reads.csv"]


def test_files_saved_by_excel_r_or_python_read_to_the_same_reads(tmp_path: Path) -> None:
    reads_ = [full_read(SVH, "S1", 2, visit_date=date(2023, 6, 1)), full_read(LARSEN, "L1")]
    path = tmp_path / "reads.csv"
    write_reads_csv(reads_, path)
    data = path.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf") and b"\r" not in data  # the writer: LF, no BOM
    expected = read_reads_csv(path)
    # Python's csv module writes CRLF by default; Excel's "CSV UTF-8" adds a BOM
    with (tmp_path / "python.csv").open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(csv.reader(io.StringIO(data.decode())))
    assert b"\r\n" in (tmp_path / "python.csv").read_bytes()
    variants = {
        "python.csv": (tmp_path / "python.csv").read_bytes(),
        "crlf.csv": data.replace(b"\n", b"\r\n"),
        "bom.csv": b"\xef\xbb\xbf" + data,
        "excel.csv": b"\xef\xbb\xbf" + data.replace(b"\n", b"\r\n"),
    }
    for name, content in variants.items():
        (tmp_path / name).write_bytes(content)
        assert read_reads_csv(tmp_path / name) == expected, name
        assert _parse_clean(content, builtin_methods()) == expected, f"{name}: not one pass"
        # written back, it is the canonical LF file without BOM
        write_reads_csv(read_reads_csv(tmp_path / name), tmp_path / name)
        assert (tmp_path / name).read_bytes() == data


def test_a_crlf_file_with_a_bom_names_lines_and_columns_as_an_lf_file() -> None:
    text = edited({(4, "score"): "9"})
    excel = b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode()
    assert [str(e) for e in problems(excel)] == [str(e) for e in problems(text)]
    assert str(problems(excel)[0]).startswith("line 4, column score:")


ORIGINAL = b"keep me\n"


@pytest.fixture
def existing(tmp_path: Path) -> Path:
    path = tmp_path / "reads.csv"
    path.write_bytes(ORIGINAL)
    return path


def _intact(path: Path) -> None:
    assert path.read_bytes() == ORIGINAL
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_atomic_write_invalid_read_leaves_file_intact(existing: Path) -> None:
    bad = full_read(LARSEN).with_score(Area("LH", "PIP2", "LAR"), AreaScore(score=9))
    with pytest.raises(ReadError):
        write_reads_csv([full_read(SVH), bad], existing)
    _intact(existing)


def test_atomic_write_failing_disk_leaves_file_intact(
    existing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_reads_csv([full_read(SVH)], existing)
    _intact(existing)


def test_atomic_write_failing_replace_leaves_file_intact(
    existing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(src: object, dst: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PermissionError):
        write_reads_csv([full_read(SVH)], existing)
    _intact(existing)


def test_atomic_write_unwritable_folder_leaves_file_intact(
    existing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def no_create(path: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
        if flags & os.O_CREAT:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, mode)

    # Simulated: the test may run as root, for whom folder permissions do not apply.
    monkeypatch.setattr(os, "open", no_create)
    with pytest.raises(PermissionError):
        write_reads_csv([full_read(SVH)], existing)
    _intact(existing)


@pytest.mark.posix
@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_atomic_write_read_only_folder_leaves_file_intact(existing: Path) -> None:
    folder = existing.parent
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):  # root: permissions do not apply, so simulate nothing
            write_reads_csv([full_read(SVH)], existing)
            assert existing.read_bytes() == format_reads_csv([full_read(SVH)]).encode()
        else:
            with pytest.raises(PermissionError):
                write_reads_csv([full_read(SVH)], existing)
            _intact(existing)
    finally:
        folder.chmod(0o755)


@pytest.mark.posix
@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_write_keeps_the_mode_of_an_existing_file(existing: Path) -> None:
    existing.chmod(0o640)
    write_reads_csv([full_read(SVH)], existing)
    assert stat.S_IMODE(existing.stat().st_mode) == 0o640


@pytest.mark.posix
@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_new_file_is_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    for umask in (0o027, 0o000):
        old = os.umask(umask)
        try:
            write_reads_csv([full_read(SVH)], tmp_path / f"new-{umask:o}.csv")
        finally:
            os.umask(old)
        assert stat.S_IMODE((tmp_path / f"new-{umask:o}.csv").stat().st_mode) == 0o600


def test_builtin_methods_are_the_default() -> None:
    assert "svh" in builtin_methods() and "larsen1995" in builtin_methods()
    assert parse_reads_csv(render(BASE_ROWS)) == parse_reads_csv(
        render(BASE_ROWS), builtin_methods()
    )


# --- the one-pass reading of a clean file ----------------------------------------------------


@ROUND_TRIP
@given(READ_LISTS, st.randoms(use_true_random=False))
def test_clean_files_take_the_one_pass_reading_and_agree_with_the_checked_one(
    original: list[Read], rnd: random.Random
) -> None:
    lines = format_reads_csv(original).split("\n")[:-1]  # not splitlines: IDS hold U+2028
    body = lines[1:]
    rnd.shuffle(body)  # areas out of the method's order, reads interleaved
    text = "\n".join([lines[0], *body, ""])
    fast = _parse_clean(text, builtin_methods())
    assert fast is not None, "a clean file fell back to the row-by-row reading"
    assert fast == _parse_checked(text, builtin_methods())
    assert _parse_clean(text.encode("utf-8"), builtin_methods()) == fast
    assert parse_reads_csv(text) == fast
    # as Excel, R on Windows or Python's csv module write it: the same reads, the same pass
    crlf = text.replace("\n", "\r\n")
    for variant in (crlf, "\ufeff" + text, "\ufeff" + crlf):
        assert _parse_clean(variant.encode("utf-8"), builtin_methods()) == fast
        assert _parse_checked(variant, builtin_methods()) == fast


SIGNED_ROWS = [
    ["T1", "P01", "W0", "2024-01-15", "alice", "svh", "primary", d.region, d.joint, d.feature,
     "1", "1", "", "S1", "signed"]
    for d in SVH.areas
]  # fmt: skip


@pytest.mark.parametrize(
    "changes",
    [
        {(2, "score"): "9"},  # out of range
        {(2, "score"): "x"},
        {(2, "assessable"): "0"},  # a score where none may be
        {(2, "reason"): "operated"},
        {(2, "region"): "XX"},
        {(2, "feature"): "XX"},
        {(2, "joint"): "MCP9"},
        {(2, "method"): "sens"},
        {(2, "method"): "nope"},
        {(3, "patient"): "P02"},  # rows of one read disagree
        {(3, "visit_date"): "2024-01-16"},
        {(3, "read_status"): "void"},
        {(2, "read_type"): "other"},
        {(2, "read_status"): "done"},
        {(2, "trial"): " "},
        {(2, "read_id"): ""},
        {(2, "reader"): "a\x01"},
        {(2, "visit_date"): "2024-02-30"},
        {(2, "visit_date"): "24-01-15"},
        {(3, "joint"): "MCP1"},  # the same area twice (and another missing)
    ],
)
def test_a_problem_sends_the_file_to_the_checked_reading(
    changes: dict[tuple[int, str], str],
) -> None:
    text = edited(changes, SIGNED_ROWS)
    assert _parse_clean(render(SIGNED_ROWS), builtin_methods()) is not None
    assert _parse_clean(text, builtin_methods()) is None
    with pytest.raises(ReadsCsvError):
        parse_reads_csv(text)


@pytest.mark.parametrize(
    "text",
    [
        render(SIGNED_ROWS[:-1]),  # signed, one area short
        render(SIGNED_ROWS).replace("alice", "al\rice", 1),  # a CR that ends no line
        render(SIGNED_ROWS)[:-1] + "\r",  # the last line ends with a lone CR
        render(SIGNED_ROWS) + "\n",  # an empty line
        render(SIGNED_ROWS).replace("S1,signed\n", 'S1,"signed\n', 1),  # a quote over a line end
        render(SIGNED_ROWS).replace(",signed\n", ",signed,\n", 1),  # a field too many
        render(SIGNED_ROWS, [*HEADER[:-1], "status"]),
        render(SIGNED_ROWS).encode("utf-8").replace(b"alice", b"al\xffce", 1),
        render(SIGNED_ROWS).replace("alice", "al\ud800ce", 1),
        render(SIGNED_ROWS).replace("alice", "al\x00ce", 1),
    ],
    ids=["short", "lone-cr", "final-cr", "empty-line", "open-quote", "width", "header", "utf8",
         "surrogate", "nul"],
)  # fmt: skip
def test_malformed_files_go_to_the_checked_reading(text: str | bytes) -> None:
    assert _parse_clean(text, builtin_methods()) is None
    with pytest.raises(ReadsCsvError):
        parse_reads_csv(text)
