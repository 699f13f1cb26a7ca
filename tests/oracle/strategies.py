"""Hypothesis strategies of whole trials, written out as reads CSVs (spec §9).

A trial: any scoring method, 1-4 visits on irregular dates (some intervals under 30 days, a
visit now and then without a date), 2-5 readers of whom some skip patients or visits, areas not
assessable for every reason (a whole region now and then), joints operated on from some visit
on, re-reads, adjudication, calibration and imported reads, reads in progress (partial) and void
reads, another method's reads, and scores over the whole range of every area. The structure
(method, sizes, rules, rates) is drawn by hypothesis; the bulk of the scores comes from a seeded
generator it draws, so a trial of ten thousand rows costs a handful of draws.

Nothing here imports :mod:`scorer`: areas and ranges come from the method files.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from datetime import date, timedelta

from hypothesis import strategies as st

from tests.oracle.oracle import OArea, Rules, method_areas, natural_key

HEADER = [
    *("trial", "patient", "visit", "visit_date", "reader", "method", "read_type", "region"),
    *("joint", "feature", "score", "assessable", "reason", "read_id", "read_status"),
]
LABELS = ("W0", "W4", "W12", "W24", "W52", "W104")
READER_NAMES = ("R1", "R2", "R3", "R4", "R5", "ann", "Bo", "dr. Chen", "reader 10", "Zoë")
REASONS = ("not_visible", "image_quality", "other")


@dataclass(frozen=True)
class Trial:
    """A generated trial: its reads CSV text and the rules to analyse it under."""

    csv_text: str
    rules: Rules
    method: str
    n_rows: int


@dataclass
class _Read:
    patient: str
    visit: str
    visit_date: date | None
    reader: str
    method: str
    read_type: str
    status: str
    read_id: str
    rows: list[tuple[OArea, int | None, str]]  # area, score (None: not assessable), reason


rules_strategy = st.builds(
    Rules,
    areas=st.sampled_from(("paired_proportional", "mean_imputation", "missing")),
    max_unused_percent=st.sampled_from(("25", "0", "10", "50")),
    operated=st.sampled_from(("missing", "max")),
    visits=st.sampled_from(("missing", "locf", "linear")),
)


def _scores(
    rng: random.Random,
    areas: list[OArea],
    truth: dict[tuple[str, str, str], int],
    gone: set[tuple[str, str, str]],
    not_assessable: float,
) -> list[tuple[OArea, int | None, str]]:
    """One read's rows: operated areas (``gone``), now and then a whole region not
    assessable, other areas not assessable at the given rate, the rest near the truth."""
    noise = rng.choice((0.0, 0.1, 0.3))
    region_gone = rng.choice(("LH", "RH", "LF", "RF")) if rng.random() < 0.03 else ""
    rows: list[tuple[OArea, int | None, str]] = []
    for a in areas:
        if a.key in gone:
            rows.append((a, None, "operated"))
        elif a.region == region_gone or rng.random() < not_assessable:
            rows.append((a, None, rng.choice(REASONS)))
        else:
            s = truth[a.key]
            u = rng.random()
            if u < 0.02:
                s = rng.randint(a.lo, a.hi)
            elif u < noise:
                s = min(a.hi, max(a.lo, s + rng.choice((-2, -1, 1, 2))))
            rows.append((a, s, ""))
    return rows


def _part(rng: random.Random, rows: list[tuple[OArea, int | None, str]]) -> list:
    """The first areas of a read not finished (or voided part-way)."""
    return rows[: rng.randint(1, len(rows))]


@st.composite
def trials(draw: st.DrawFn, max_readers: int = 5) -> Trial:
    """A whole trial (see the module's docstring); ``max_readers`` 2-5."""
    method = draw(st.sampled_from(("svh", "larsen1995")))
    n_visits = draw(st.sampled_from((1, 2, 3, 4, 2, 3, 4)))
    labels = sorted(
        draw(st.lists(st.sampled_from(LABELS), min_size=n_visits, max_size=n_visits, unique=True)),
        key=natural_key,
    )
    n_readers = draw(st.sampled_from(tuple(range(2, max_readers + 1))))
    readers = sorted(draw(st.permutations(READER_NAMES))[:n_readers])
    n_patients = draw(st.sampled_from((2, 3, 4, 5, 6, 6)))
    rules = draw(st.one_of(st.just(Rules()), rules_strategy))
    # A complete design half the time: every reader signs every visit of every patient.
    complete = draw(st.booleans())
    coverage = 1.0 if complete else draw(st.sampled_from((1.0, 0.9, 0.6)))
    not_assessable = draw(st.sampled_from((0.0, 0.0, 0.01, 0.05, 0.3)))
    extras = draw(st.sampled_from((0.0, 0.1, 0.3)))
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    areas = method_areas(method)
    reads: list[_Read] = []
    ids = iter(rng.sample(range(10_000, 100_000), 3000))
    for i in range(n_patients):
        patient = rng.choice(("P", "S1-", "x")) + f"{i + 1:03d}" + rng.choice(("", "", ",b"))
        severity = rng.choice((0.0, 0.15, 0.5, 0.95))
        operated = {a.key for a in areas if rng.random() < 0.03}
        operated_from = rng.randrange(n_visits)
        day = date(2023, 1, 2) + timedelta(days=rng.randrange(120))
        truth = {a.key: 0 if rng.random() >= severity else rng.randint(a.lo, a.hi) for a in areas}
        for vi, visit in enumerate(labels):
            if vi:  # irregular intervals, some under the 30 days annualisation needs
                day += timedelta(days=rng.choice((rng.randint(1, 29), rng.randint(30, 800))))
                for a in areas:
                    if rng.random() < 0.2:
                        truth[a.key] = min(a.hi, truth[a.key] + rng.randint(1, 3))
            when = None if rng.random() < 0.05 else day
            gone = operated if vi >= operated_from else set()

            def read(who: str, kind: str, status: str, rows: list, how: str = method) -> None:
                reads.append(_Read(patient, visit, when, who, how, kind, status, "", rows))  # noqa: B023

            for reader in readers:
                first = i == 0 and vi == 0 and reader == readers[0]  # one read to analyse
                if not first and rng.random() >= coverage:
                    continue
                rows = _scores(rng, areas, truth, gone, not_assessable)
                if first or complete or rng.random() >= extras / 2:
                    read(reader, "primary", "signed", rows)
                else:
                    read(reader, "primary", "in_progress", _part(rng, rows))
                if rng.random() < extras:
                    read(reader, "primary", "void", _part(rng, _scores(rng, areas, truth, gone, 0)))
                if rng.random() < extras:
                    rows = _scores(rng, areas, truth, gone, not_assessable)
                    read(reader, "reread", rng.choice(("signed", "in_progress")), rows)
                if rng.random() < extras / 3:
                    rows = _scores(rng, areas, truth, gone, not_assessable)
                    read(reader, rng.choice(("imported", "calibration")), "signed", rows)
            if rng.random() < extras:
                exact = [(a, truth[a.key], "") for a in areas]
                read("adjudicator", "adjudication", "signed", exact)
            if method == "svh" and rng.random() < extras:
                other = [(a, rng.randint(a.lo, a.hi), "") for a in method_areas("larsen1995")]
                read(readers[0], "primary", "signed", other, "larsen1995")
    for r in reads:
        r.read_id = f"rd{next(ids)}"
    return Trial(_write(reads), rules, method, sum(len(r.rows) for r in reads))


def _write(reads: list[_Read]) -> str:
    """The reads CSV: header, rows ordered by trial, patient, visit, reader, read_id, area."""
    out = io.StringIO(newline="")
    w = csv.writer(out, lineterminator="\n")
    w.writerow(HEADER)
    for r in sorted(
        reads, key=lambda r: (r.patient, natural_key(r.visit), r.visit, r.reader, r.read_id)
    ):
        vd = "" if r.visit_date is None else r.visit_date.isoformat()
        for a, score, reason in r.rows:
            w.writerow(
                [
                    "ORACLE-TRIAL",
                    r.patient,
                    r.visit,
                    vd,
                    r.reader,
                    r.method,
                    r.read_type,
                    a.region,
                    a.joint,
                    a.feature,
                    "" if score is None else score,
                    "0" if score is None else "1",
                    reason,
                    r.read_id,
                    r.status,
                ]
            )
    return out.getvalue()
