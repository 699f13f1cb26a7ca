"""The worked example of spec §10 as reads: ten patients, two readers, two visits.

Each reader's change in mTSS equals the spec's R1 and R2 exactly; baselines carry some damage
so status statistics have content. Deterministic from its seed.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from scorer.core.methods import Area, Method, get_method
from scorer.core.reads import AreaScore, Read

R1: tuple[int, ...] = (0, 3, 6, 0, 14, 4, 1, 20, 8, 2)
R2: tuple[int, ...] = (2, 2, 8, 1, 12, 7, 1, 24, 9, 5)
SEED = 20001


def _spread(
    method: Method, base: dict[Area, int], amount: int, rng: random.Random
) -> dict[Area, int]:
    """Add ``amount`` grade steps to random areas without passing any area's maximum."""
    scores = dict(base)
    order = [a.area for a in method.areas]
    while amount > 0:
        area = rng.choice(order)
        d = method.area(area)
        if scores[area] < d.max:
            scores[area] += 1
            amount -= 1
    return scores


def worked_example_reads(seed: int = SEED) -> list[Read]:
    """Signed primary svh reads at W0 and W52 whose changes are spec §10's R1 and R2."""
    method = get_method("svh")
    rng = random.Random(seed)
    zero = {a.area: 0 for a in method.areas}
    reads: list[Read] = []
    for i, (c1, c2) in enumerate(zip(R1, R2, strict=True)):
        patient = f"P{i + 1:02d}"
        start = date(2024, 1, 8) + timedelta(days=7 * i)
        end = start + timedelta(days=364 + rng.randint(-10, 10))
        baseline = _spread(method, zero, rng.randint(0, 40), rng)
        for reader, change in (("R1", c1), ("R2", c2)):
            # Readers differ a little at baseline, as real readers do.
            b = _spread(method, baseline, rng.randint(0, 3), rng)
            follow = _spread(method, b, change, rng)
            for visit, when, scores in (("W0", start, b), ("W52", end, follow)):
                reads.append(
                    Read(
                        trial="EXAMPLE",
                        patient=patient,
                        visit=visit,
                        reader=reader,
                        method="svh",
                        read_type="primary",
                        read_id=f"{patient}-{visit}-{reader}",
                        status="signed",
                        visit_date=when,
                        scores={a: AreaScore(score=s) for a, s in scores.items()},
                    )
                )
    return reads
