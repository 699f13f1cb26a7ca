"""The reads CSV read as columns (scorer.reports.reads_columns) against the row-by-row reading:
the same reads, the same analysis to the byte, and every problem still named."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import date

import numpy as np
import pytest
from hypothesis import given

from scorer.core.methods import Method, builtin_methods, get_method
from scorer.core.reads import AreaScore, Read
from scorer.core.readscsv import (
    HEADER,
    ReadsCsvError,
    _parse_checked,
    _parse_clean,
    format_reads_csv,
    header_end,
    parse_reads_csv,
)
from scorer.reports.analysis import AnalysisOptions, analyze
from scorer.reports.reads_columns import ColumnScores, fast_reads, read_reads
from scorer.reports.score_matrix import ScoreMatrix
from tests.core.test_readscsv import READ_LISTS, ROUND_TRIP
from tests.generated_reads import generated_reads

METHODS = dict(builtin_methods())
SVH = get_method("svh")


def trial_reads(patients: int, seed: int, method: Method = SVH) -> list[Read]:
    """Three visits by three readers, primary and signed, with some areas not assessable
    (operated among them) and dates a visit apart."""
    rng = random.Random(seed)
    out: list[Read] = []
    for p in range(patients):
        for v, visit in enumerate(("W0", "W52", "W104")):
            for reader in ("R1", "R2", "R3"):
                scores = {
                    d.area: AreaScore.not_assessable(rng.choice(("operated", "image_quality")))
                    if rng.random() < 0.03
                    else AreaScore.scored(rng.randint(d.min, min(d.max, d.min + v + 2)))
                    for d in method.areas
                }
                out.append(
                    Read(
                        trial="T1",
                        patient=f"P{p:03d}",
                        visit=visit,
                        reader=reader,
                        method=method.id,
                        read_id=f"P{p:03d}-{visit}-{reader}",
                        visit_date=date(2024, 1, 1 + p % 28).replace(year=2024 + v),
                        scores=scores,
                    )
                )
    return out


def both(data: bytes) -> list[Read]:
    """The reads of ``data`` by the column reading, checked equal to the row-by-row one's."""
    fast = fast_reads(data, METHODS)
    assert fast is not None, "a file of the common shape fell back to the row-by-row reading"
    assert fast == parse_reads_csv(data, METHODS)
    return fast


def analysis_json(reads: list[Read], **options: object) -> str:
    return json.dumps(analyze(reads, METHODS, AnalysisOptions(**options)), indent=2)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_analysis_is_byte_identical_on_generated_trials(seed: int) -> None:
    data = format_reads_csv(trial_reads(12, seed)).encode()
    fast = both(data)
    slow = parse_reads_csv(data, METHODS)
    for options in ({}, {"rules": replace(AnalysisOptions().rules, operated="max")}):
        assert analysis_json(fast, **options) == analysis_json(slow, **options)


def test_analysis_is_byte_identical_on_the_import_generator() -> None:
    data = format_reads_csv(generated_reads("T9", 48, seed=5)).encode()
    assert analysis_json(both(data)) == analysis_json(parse_reads_csv(data, METHODS))


def test_larsen_and_two_methods_in_one_file() -> None:
    larsen = get_method("larsen1995")
    mixed = trial_reads(4, 7) + [
        replace(r, read_id=r.read_id + "-L") for r in trial_reads(4, 8, larsen)
    ]
    data = format_reads_csv(mixed).encode()
    reads = both(data)
    slow = parse_reads_csv(data, METHODS)
    for method in ("svh", "larsen1995"):
        assert analysis_json(reads, method=method) == analysis_json(slow, method=method)


ODD_VARIANTS = {
    "crlf": lambda t: t.replace("\n", "\r\n"),
    "bom": lambda t: "\ufeff" + t,
    "bom and crlf": lambda t: "\ufeff" + t.replace("\n", "\r\n"),
}


@pytest.mark.parametrize("variant", list(ODD_VARIANTS))
def test_crlf_and_bom_files_are_read_by_columns(variant: str) -> None:
    text = format_reads_csv(trial_reads(3, 11))
    assert both(ODD_VARIANTS[variant](text).encode()) == parse_reads_csv(text.encode())


def test_unsigned_void_adjudicated_and_undated_reads() -> None:
    base = trial_reads(2, 12)
    partial = {a: s for i, (a, s) in enumerate(base[0].scores.items()) if i % 3}
    odd = [
        replace(base[0], status="in_progress", scores=partial),
        replace(base[1], status="void", scores=partial),
        replace(base[2], read_type="adjudication"),
        replace(base[3], read_type="reread", visit_date=None),
        *base[4:],
    ]
    data = format_reads_csv(odd).encode()
    reads = both(data)
    assert len(reads[0].scores) == len(partial)
    assert analysis_json(reads) == analysis_json(parse_reads_csv(data, METHODS))


@ROUND_TRIP
@given(READ_LISTS)
def test_any_reads_come_back_the_same(original: list[Read]) -> None:
    data = format_reads_csv(original).encode()
    assert read_reads(data, METHODS) == parse_reads_csv(data, METHODS)


def _lines(reads: list[Read]) -> list[str]:
    return format_reads_csv(reads).splitlines(keepends=True)


@pytest.mark.parametrize(
    "shape",
    ["quoted field", "areas shuffled", "reads interleaved", "no final newline", "long id"],
)
def test_other_valid_layouts_fall_back_to_the_same_reads(shape: str) -> None:
    reads = trial_reads(2, 13)
    lines = _lines(reads)
    rng = random.Random(3)
    if shape == "quoted field":
        lines = _lines([replace(reads[0], patient='say "hi", P', read_id="a,b"), *reads[1:]])
    elif shape == "areas shuffled":
        body = lines[1:87]
        rng.shuffle(body)
        lines = [lines[0], *body, *lines[87:]]
    elif shape == "reads interleaved":
        pairs = zip(lines[1:87], lines[87:173], strict=True)
        lines = [lines[0], *[x for pair in pairs for x in pair]]
        lines += _lines(reads)[173:]
    elif shape == "no final newline":
        lines[-1] = lines[-1].rstrip("\n")
    elif shape == "long id":
        lines = _lines([replace(reads[0], read_id="R" * 300), *reads[1:]])
    data = "".join(lines).encode()
    assert fast_reads(data, METHODS) is None
    assert read_reads(data, METHODS) == parse_reads_csv(data, METHODS)


BAD_EDITS = {
    "score out of range": (",3,1,,", ",99,1,,"),
    "unknown method": (",svh,", ",svx,"),
    "control character": ("P001", "P\x01001"),
    "formula lead": ("P001-", "=P001-"),
    "bad date": ("2024-01-02", "2024-02-31"),
    "bad utf-8": ("P001", "P\udcff01"),
    "cr inside a line": ("W52,", "W\r52,"),
    "field missing": (",primary,", ",primary"),
    "read column changes within a read": ("R2,svh", "R9,svh"),
}


@pytest.mark.parametrize("fault", list(BAD_EDITS))
def test_a_bad_file_still_gets_every_problem_named(fault: str) -> None:
    old, new = BAD_EDITS[fault]
    text = format_reads_csv(trial_reads(3, 17))
    lines = text.splitlines(keepends=True)
    # The fault on three lines far apart (first, middle, last that have the text to change):
    # each must be named.
    having = [i for i in range(1, len(lines)) if old in lines[i]]
    faulty = [having[0], having[len(having) // 2], having[-1]]
    for i in faulty:
        lines[i] = lines[i].replace(old, new, 1)
    data = "".join(lines).encode("utf-8", errors="surrogateescape")
    with pytest.raises(ReadsCsvError) as fast:
        read_reads(data, METHODS)
    with pytest.raises(ReadsCsvError) as slow:
        parse_reads_csv(data, METHODS)
    assert fast.value.errors == slow.value.errors
    named = {e.line for e in fast.value.errors}
    # (a read's first line changed: its other lines are the ones that differ from it)
    assert all(i + 1 in named or i + 2 in named for i in faulty), (faulty, named)


@pytest.mark.parametrize("score", ["9" * 5000, "0" * 5000 + "3"])
def test_a_score_of_thousands_of_digits_reads_as_the_streaming_reading_has_it(score: str) -> None:
    lines = _lines(trial_reads(2, 23))
    cells = lines[5].split(",")
    cells[10] = score
    lines[5] = ",".join(cells)
    data = "".join(lines).encode()
    try:
        slow: list[Read] | str = parse_reads_csv(data, METHODS)
    except ReadsCsvError as exc:
        slow = str(exc)
    try:
        fast: list[Read] | str = read_reads(data, METHODS)
    except ReadsCsvError as exc:
        fast = str(exc)
    assert fast == slow
    assert isinstance(slow, str) == score.startswith("9")


def _quoted(line: bytes) -> bytes:
    """A line with every field quoted but the numbers (as R's write.csv writes a file)."""
    end = b"\r\n" if line.endswith(b"\r\n") else b"\n"
    cells = line.removesuffix(end).split(b",")
    return b",".join(c if c.isdigit() else b'"' + c + b'"' for c in cells) + end


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_a_quoted_header_is_read_as_the_plain_one(line_end: str) -> None:
    reads = trial_reads(3, 29)
    plain = format_reads_csv(reads).replace("\n", line_end).encode()
    header, body = plain.split(line_end.encode(), 1)
    quoted_header = _quoted(header + line_end.encode()) + body
    quoted_all = b"".join(_quoted(x) for x in plain.splitlines(keepends=True))
    assert quoted_header.startswith(b'"trial","patient",')
    # A plain body under a quoted header: the columns' reading takes it.
    assert both(quoted_header) == both(plain)
    # A quoted body: the streaming reading (not the row-by-row one) takes it, the same reads.
    assert fast_reads(quoted_all, METHODS) is None
    assert _parse_clean(quoted_all, METHODS) == _parse_clean(plain, METHODS) == both(plain)
    assert read_reads(quoted_all, METHODS) == both(plain)
    strict = analysis_json(parse_reads_csv(plain, METHODS))
    assert analysis_json(read_reads(quoted_all, METHODS)) == strict


@pytest.mark.parametrize(
    "header",
    [
        '"trial","patient","visit"\n',  # columns missing
        '"Trial",' + ",".join(HEADER[1:]) + "\n",  # a name misspelt
        ",".join(f'"{h}"' for h in HEADER) + ' \n',  # a space after the last quote
    ],
)
def test_a_quoted_header_that_is_not_the_header_is_still_named(header: str) -> None:
    body = format_reads_csv(trial_reads(1, 31)).split("\n", 1)[1]
    data = (header + body).encode()
    assert header_end(data, 0) is None
    with pytest.raises(ReadsCsvError) as fast:
        read_reads(data, METHODS)
    with pytest.raises(ReadsCsvError) as slow:
        _parse_checked(data, METHODS)
    assert fast.value.errors == slow.value.errors


def test_a_duplicate_area_is_named() -> None:
    lines = _lines(trial_reads(2, 19))
    lines.insert(10, lines[9])
    data = "".join(lines).encode()
    with pytest.raises(ReadsCsvError, match="appears twice"):
        read_reads(data, METHODS)


def test_column_scores_are_a_mapping_equal_to_the_dict() -> None:
    data = format_reads_csv(trial_reads(2, 23)).encode()
    fast = both(data)
    slow = parse_reads_csv(data, METHODS)
    for f, s in zip(fast, slow, strict=True):
        assert isinstance(f.scores, ColumnScores)
        assert len(f.scores) == len(s.scores)
        assert list(f.scores) == list(s.scores)
        assert all(f.scores[a] == v for a, v in s.scores.items())
        assert f.scores == s.scores and s.scores == f.scores


def test_score_matrix_from_columns_equals_the_one_from_dicts() -> None:
    data = format_reads_csv(trial_reads(5, 29)).encode()
    fast = both(data)
    slow = parse_reads_csv(data, METHODS)
    order = list(range(len(fast)))
    random.Random(1).shuffle(order)
    pick = order[: len(order) // 2]  # some reads, in another order
    a = ScoreMatrix.of(SVH, [fast[i] for i in pick])
    b = ScoreMatrix.of(SVH, [slow[i] for i in pick])
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.operated, b.operated)
    assert a.operated.any() and np.isnan(a.scores).any()


@pytest.mark.parametrize("slot_count", [2, 1 << 16])
@pytest.mark.parametrize("same_digest", [False, True])
def test_texts_that_share_a_slot_or_a_digest_still_get_their_own_leader(
    slot_count: int, same_digest: bool
) -> None:
    from scorer.reports.reads_columns import _leaders, _mix

    rng = np.random.default_rng(5)
    texts = rng.integers(0, 2**63, size=(12, 3), dtype=np.uint64)
    pick = rng.integers(0, len(texts), size=500)
    middle = texts[pick]
    # Few slots: texts meet in them every try; one digest for all: no try separates them,
    # and the sort at the end must.
    digest = np.zeros(len(middle), np.uint64) if same_digest else _mix(middle[:, 0])
    rows = np.arange(len(middle))
    first = _leaders(middle, digest, rows, np.zeros(slot_count, dtype=np.int32))
    assert (first[first] == first).all()  # a leader leads itself
    assert (middle[first] == middle).all()  # a row's leader has its text
    assert len(set(first.tolist())) == len({tuple(t) for t in middle.tolist()})  # one per text
