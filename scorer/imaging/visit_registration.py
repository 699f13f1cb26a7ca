"""Registering one patient's films of a region across visits, as a task a worker can run.

A :class:`RegisterTask` names a reference film (the readers' copy whose joint positions are
trusted most), its positions, and the other films of the same patient showing the same
regions; :func:`run_register_task` decodes them and asks :mod:`scorer.imaging.registration`
where the reference's joints lie on each other film. It is plain data in and out, so it runs
in the importing process or on a worker alike.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Point = tuple[str, str, float, float]  # region, joint, x, y


@dataclass(frozen=True)
class RegisterTask:
    """A reference film with its positions, and the films to propose them on (paths of
    readers' copies)."""

    reference: str
    points: tuple[Point, ...]
    targets: tuple[str, ...]


@dataclass(frozen=True)
class ProposedPoint:
    """Where a reference joint lies on one target film (index into the task's targets)."""

    target: int
    region: str
    joint: str
    x: float
    y: float
    quality: float
    sure: bool


@dataclass(frozen=True)
class RegisterOutcome:
    """The proposals for every target, each target's pixel size (mm), and why a film could
    not be registered (``problems``: target index, or -1 for the reference, and the reason)."""

    proposals: tuple[ProposedPoint, ...]
    target_mm: tuple[float, ...]
    problems: tuple[tuple[int, str], ...]
    seconds: float


@dataclass(frozen=True)
class FilmPixels:
    """A film decoded for registration: stored values, the pixel size in mm, and whether the
    stored values show bone dark (MONOCHROME1 or an inverting presentation)."""

    pixels: npt.NDArray[Any]
    pixel_mm: float
    monochrome1: bool


def film_pixels(path: str | os.PathLike[str]) -> FilmPixels:
    """Decode a readers' copy for registration. ValueError when it has no pixel spacing."""
    from scorer.imaging.pixels import bone_bright_polarity, read_dataset, stored_values
    from scorer.imaging.spacing import pixel_spacing

    ds = read_dataset(path)
    spacing = pixel_spacing(ds)
    if spacing is None:
        raise ValueError("the film's pixel spacing is unknown")
    arr = np.asarray(stored_values(ds))
    return FilmPixels(arr, (spacing.row_mm + spacing.col_mm) / 2.0, bone_bright_polarity(ds).invert)


def run_register_task(task: RegisterTask) -> RegisterOutcome:
    """Propose the reference's positions on every target film."""
    from scorer.imaging.registration import propose_from

    started = time.perf_counter()
    try:
        ref = film_pixels(task.reference)
    except Exception as exc:  # the reference cannot be read: nothing is proposed
        return RegisterOutcome((), (), ((-1, f"the reference film cannot be read: {exc}"),), 0.0)
    points = {(r, j): (x, y) for r, j, x, y in task.points}
    out: list[ProposedPoint] = []
    sizes: list[float] = []
    problems: list[tuple[int, str]] = []
    for k, path in enumerate(task.targets):
        try:
            target = film_pixels(path)
            proposal = propose_from(
                ref.pixels,
                ref.pixel_mm,
                points,
                target.pixels,
                target.pixel_mm,
                reference_monochrome1=ref.monochrome1,
                target_monochrome1=target.monochrome1,
            )
        except Exception as exc:  # one film that cannot be registered leaves the others
            sizes.append(0.0)
            problems.append((k, f"not registered: {exc}"))
            continue
        sizes.append(target.pixel_mm)
        for (region, joint), p in sorted(proposal.joints.items()):
            out.append(
                ProposedPoint(k, region, joint, float(p.x), float(p.y), float(p.quality), p.sure)
            )
    return RegisterOutcome(tuple(out), tuple(sizes), tuple(problems), time.perf_counter() - started)
