"""Reads CSVs of any size generated from a seed, for the tests and benchmark of a large
`scorer reads import`: every area scored (a few not assessable), signed, imported read IDs,
patients ``IMP-00001``..., two visits and readers of an earlier system."""

from __future__ import annotations

import random
from datetime import date, timedelta

from scorer.core.methods import get_method
from scorer.core.reads import AreaScore, Read
from scorer.core.readscsv import format_reads_csv


def generated_reads(
    trial: str,
    n: int,
    seed: int,
    method: str = "svh",
    visits: tuple[str, ...] = ("W0", "W24"),
    readers: tuple[str, ...] = ("legacy1", "legacy2"),
) -> list[Read]:
    """``n`` signed reads of ``trial``: each patient read at every visit by every reader, in
    that order (so ``n`` reads cover ``n / (visits x readers)`` patients); scores from ``seed``."""
    rng = random.Random(seed)
    m = get_method(method)
    per_patient = len(visits) * len(readers)
    out: list[Read] = []
    for i in range(n):
        patient, rest = divmod(i, per_patient)
        v, r = divmod(rest, len(readers))
        scores = {
            d.area: AreaScore.not_assessable("image_quality")
            if rng.random() < 0.02
            else AreaScore.scored(rng.randint(d.min, d.max))
            for d in m.areas
        }
        out.append(
            Read(
                trial=trial,
                patient=f"IMP-{patient:05d}",
                visit=visits[v],
                reader=readers[r],
                method=method,
                read_type="primary",
                read_id=f"IMP-{seed}-{i:06d}",
                status="signed",
                visit_date=date(2024, 1, 1) + timedelta(weeks=24 * v, days=patient % 7),
                scores=scores,
            )
        )
    return out


def generated_csv(trial: str, n: int, seed: int, method: str = "svh") -> str:
    """The reads CSV (spec §9) of :func:`generated_reads`."""
    return format_reads_csv(generated_reads(trial, n, seed, method))
