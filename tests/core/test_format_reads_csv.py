"""``format_reads_csv`` writes rows from parts made once per distinct area entry and checks
each distinct (area, score, reason) once: its text is byte for byte what one ``csv.writer``
row per area writes, and what it refuses it refuses with the same messages as checking every
area of every read."""

from __future__ import annotations

import csv
import io
import random
from dataclasses import replace
from datetime import date

import pytest

from scorer.core.methods import Area, builtin_methods, get_method
from scorer.core.reads import AreaScore, Read, ReadError, validate_read
from scorer.core.readscsv import HEADER, format_reads_csv, parse_reads_csv
from scorer.core.visits import natural_key
from tests.generated_reads import generated_reads

SVH = get_method("svh")
LARSEN = get_method("larsen1995")


def _row_by_row(reads: list[Read]) -> str:
    """The reads CSV as written before: one csv.writer row per area."""
    methods = builtin_methods()
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(HEADER)
    for read in sorted(
        reads,
        key=lambda r: (r.trial, r.patient, natural_key(r.visit), r.visit, r.reader, r.read_id),
    ):
        method = methods[read.method]
        d = read.visit_date
        for area in sorted(read.scores, key=method.order):
            value = read.scores[area]
            writer.writerow(
                (
                    read.trial,
                    read.patient,
                    read.visit,
                    "" if d is None else d.isoformat(),
                    read.reader,
                    read.method,
                    read.read_type,
                    *area,
                    "" if value.score is None else str(value.score),
                    "1" if value.score is not None else "0",
                    "" if value.score is not None else (value.reason or ""),
                    read.read_id,
                    read.status,
                )
            )
    return out.getvalue()


def _varied_reads() -> list[Read]:
    """Reads of two methods, two trials, with cells that need quoting, shuffled areas, side
    scores, partial reads, reads without a visit date, unsigned and void reads, both read types."""
    rng = random.Random(7)
    reads = generated_reads("T1", 24, seed=1) + generated_reads("T0", 8, seed=2)
    odd = [
        ('P,1', "W4", "r1"),
        ('O"Brien', "W24", "r 2"),
        ("P 3", "Week 1, day 2", "r1"),
        ("P\u00e9", "W0", "r\u00e9"),
    ]
    for i, (patient, visit, reader) in enumerate(odd):
        method = LARSEN if i % 2 else SVH
        areas = [d for d in method.areas if rng.random() < 0.7]
        rng.shuffle(areas)
        scores: dict[Area, AreaScore] = {}
        for d in areas:
            if rng.random() < 0.1:
                scores[d.area] = AreaScore.not_assessable(rng.choice(["operated", "other"]))
            elif d.sides:
                scores[d.area] = AreaScore.from_sides([rng.randint(0, 2), rng.randint(0, 1)])
            else:
                scores[d.area] = AreaScore.scored(rng.randint(d.min, d.max))
        reads.append(
            Read(
                trial="T1",
                patient=patient,
                visit=visit,
                reader=reader,
                method=method.id,
                read_type=("primary", "adjudication")[i % 2],
                read_id=f"ODD-{i}",
                status=("in_progress", "void", "void", "in_progress")[i],
                visit_date=None if i % 2 else date(2024, 2, 29),
                scores=scores,
            )
        )
    return reads


def test_the_text_is_the_row_by_row_text() -> None:
    reads = _varied_reads()
    text = format_reads_csv(reads)
    assert text == _row_by_row(reads)
    assert '"P,1"' in text and '"O""Brien"' in text and '"Week 1, day 2"' in text
    # And back: the same reads (a read's areas in the method's order, sides not written).
    again = parse_reads_csv(text, builtin_methods())
    assert format_reads_csv(again) == text


def test_a_single_read_and_a_large_trial_too() -> None:
    one = generated_reads("T1", 1, seed=3)
    assert format_reads_csv(one) == _row_by_row(one)
    many = generated_reads("T1", 600, seed=4)
    assert format_reads_csv(many) == _row_by_row(many)


def _problems_one_by_one(reads: list[Read]) -> list[str]:
    """Every area's problems, each area checked afresh."""
    return [
        f"read {r.read_id!r}: {msg}"
        for r in reads
        for msg in validate_read(r, builtin_methods()[r.method])
    ]


def test_refusals_name_every_problem_as_checking_each_area_does() -> None:
    good = generated_reads("T1", 6, seed=5)
    area = SVH.areas[0].area
    foot = next(d.area for d in SVH.areas if d.sides)
    bad = [
        # True equals 1: it must not pass as the 1 checked before it.
        good[1].with_score(area, AreaScore(score=True)),
        good[2].with_score(area, AreaScore(score=99)),
        good[3].with_score(area, AreaScore(score=1, reason="other")),
        # The same out-of-range entry twice: named in both reads.
        good[4].with_score(area, AreaScore(score=99)),
        good[5].with_score(foot, AreaScore(score=3, sides=(1, 1))),
    ]
    reads = [good[0], *bad]
    with pytest.raises(ReadError) as caught:
        format_reads_csv(reads)
    said = str(caught.value).splitlines()[1:]
    assert said == _problems_one_by_one(reads)
    assert len(said) == 5


def test_an_area_given_as_a_plain_tuple_is_named_as_given() -> None:
    read = generated_reads("T1", 2, seed=6)
    wrong = ("LH", "NOPE", "ERO")
    first = read[0].with_score(Area(*wrong), AreaScore(score=1))
    second = replace(read[1], scores={**read[1].scores, wrong: AreaScore(score=1)})  # type: ignore[dict-item]
    with pytest.raises(ReadError) as caught:
        format_reads_csv([first, second])
    assert str(caught.value).splitlines()[1:] == _problems_one_by_one([first, second])
