"""Locator and registration benchmark: how far the automatic joint locator and the registration
across visits put each joint from its true position, on hard synthetic films (issue 32).

Synthetic only: no real hand or foot film is available offline, so the figures say how the
locator and the registration do on the generator's hard films (per-visit rotation up to 15
degrees, magnification up to 10 %, shift, finger and toe spread, bone texture, soft tissue,
damage drawn by ``damage_course``), not on patients' films.

The films come from seeds that neither the tests (2000-2999) nor the tuning (1000-1999) use:
patient ``p`` has anatomy seed ``50000 + 100 p``; its hands film of visit ``v`` seed
``50000 + 100 p + v``, its feet film ``50000 + 100 p + 50 + v``. Per patient: 3 visits x
(hands film, feet film).

- The locator: every film through ``locate_joints``; the error in mm of every joint it is
  sure of, per area kind (hand MCP, hand PIP, thumb IP, wrist, foot MTP, foot IP), with the
  share of joints it left unsure (or did not return), and the films it did not recognise as
  hands or feet.
- The registration: visit 1's true positions, as if placed by hand, proposed on visits 2 and 3
  of the same patient and film by ``propose_from``; the same statistics.
- pydicom-data's CR files (a chest and a lower leg, never hands or feet) through the locator:
  each must come back as neither.
- Time per film for the locator and per proposal for the registration (median).
- Per area kind: median <= 1.5 mm and p95 <= 4 mm, met or NOT met.

Usage (from the repository root):

    .venv/bin/python benchmarks/locator.py [--patients N] [--quick] [--json PATH]

``--quick``: 2 patients. ``--stand-in`` checks the harness alone, with a stand-in for the
locator and the registration (the truth plus noise): its figures mean nothing and say so.
Results go to the terminal and to JSON (default benchmarks/results/locator.json).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import machine, quantile, write_json
from scorer.imaging import synthetic as syn

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "locator.json"
FIRST_SEED = 50_000
"""Seeds from here up are the benchmark's alone: tuning uses 1000-1999, tests 2000-2999."""
TARGET_MEDIAN_MM = 1.5
TARGET_P95_MM = 4.0
CR_FILES = ("RG1_UNCR.dcm", "RG3_UNCR.dcm")
"""pydicom-data's distinct CR images (the other RG files are these, compressed)."""
CR_FALLBACK_PIXEL_MM = 0.2
"""Neither CR file states its pixel spacing; 0.2 mm is a common CR plate's."""

Key = tuple[str, str]
Locate = Callable[[syn.SyntheticImage | None, NDArray[Any], float, bool], Any]
Propose = Callable[[syn.SyntheticImage, Mapping[Key, tuple[float, float]], syn.SyntheticImage], Any]


def area_kind(region: str, joint: str) -> str:
    """The area kind a joint's error is grouped under, from its region and code (see the
    spec's joint codes and :func:`scorer.core.joint_fit.region_joints`)."""
    if region.endswith("F"):
        return "foot MTP" if joint.startswith("MTP") else "foot IP"
    if joint.startswith("MCP"):
        return "hand MCP"
    if joint.startswith("PIP"):
        return "hand PIP"
    if joint == "IP1":
        return "thumb IP"
    return "wrist"  # RAD ULN NAV LUN MUL CMC1 CMC3-5 RCA MNA CNL and the quadrants WQ1-4


KINDS = ("hand MCP", "hand PIP", "thumb IP", "wrist", "foot MTP", "foot IP")


@dataclass
class Tally:
    """Errors (mm) of the joints a method was sure of, and counts of the ones it was not."""

    errors: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    unsure: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    total: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    spurious: int = 0  # joints returned that the film does not have
    seconds: list[float] = field(default_factory=list)

    def add(
        self,
        truth: Mapping[Key, tuple[float, float]],
        found: Mapping[Key, tuple[float, float, bool]],
        pixel_mm: float,
    ) -> None:
        """Score one film: ``found`` maps a joint to (x, y, sure)."""
        for key, (tx, ty) in truth.items():
            kind = area_kind(*key)
            self.total[kind] += 1
            hit = found.get(key)
            if hit is None or not hit[2]:
                self.unsure[kind] += 1
                continue
            self.errors[kind].append(math.hypot(hit[0] - tx, hit[1] - ty) * pixel_mm)
        self.spurious += sum(1 for key in found if key not in truth)

    def summary(self) -> dict[str, Any]:
        kinds: dict[str, Any] = {}
        for kind in KINDS:
            errs, total = self.errors[kind], self.total[kind]
            if not total:
                continue
            row: dict[str, Any] = {
                "joints": total,
                "sure": len(errs),
                "unsure_share": self.unsure[kind] / total,
            }
            if errs:
                row |= {
                    "median_mm": statistics.median(errs),
                    "p95_mm": quantile(errs, 0.95),
                    "worst_mm": max(errs),
                }
                row["target_met"] = (
                    row["median_mm"] <= TARGET_MEDIAN_MM and row["p95_mm"] <= TARGET_P95_MM
                )
            else:
                row["target_met"] = False
            kinds[kind] = row
        secs = self.seconds
        return {
            "kinds": kinds,
            "spurious_joints": self.spurious,
            "median_s": statistics.median(secs) if secs else None,
            "p95_s": quantile(secs, 0.95) if secs else None,
        }


# --------------------------------------------------------------------------------------------
# The films


@dataclass(frozen=True)
class PatientFilms:
    """One patient's hard films: hands and feet, per visit."""

    hands: tuple[syn.SyntheticImage, ...]
    feet: tuple[syn.SyntheticImage, ...]


def patient_films(patient: int, visits: int = 3) -> PatientFilms:
    """Patient ``patient``'s hard films, damage drawn over the visits (progressors included)."""
    base = FIRST_SEED + 100 * patient
    course = syn.damage_course(base, visits)
    hands = tuple(
        syn.render_hands_film(course.visits[v], base + v, anatomy_seed=base, hard=True)
        for v in range(visits)
    )
    feet = tuple(
        syn.render_feet_film(course.visits[v], base + 50 + v, anatomy_seed=base, hard=True)
        for v in range(visits)
    )
    return PatientFilms(hands, feet)


# --------------------------------------------------------------------------------------------
# The methods measured (the real ones, or the harness's stand-in)


def real_methods() -> tuple[Locate, Propose]:
    """The locator and the registration of scorer.imaging (issue 32)."""
    from scorer.imaging.locator import locate_joints
    from scorer.imaging.registration import propose_from

    def locate(_img: syn.SyntheticImage | None, pixels: Any, pixel_mm: float, mono1: bool) -> Any:
        return locate_joints(pixels, pixel_mm, monochrome1=mono1)

    def propose(
        ref: syn.SyntheticImage,
        points: Mapping[Key, tuple[float, float]],
        target: syn.SyntheticImage,
    ) -> Any:
        return propose_from(ref.pixels, ref.pixel_mm, points, target.pixels, target.pixel_mm)

    return locate, propose


@dataclass(frozen=True)
class _StandInJoint:
    region: str
    joint: str
    x: float
    y: float
    confidence: float
    sure: bool


@dataclass(frozen=True)
class _StandInLocation:
    kind: str
    joints: tuple[_StandInJoint, ...]


@dataclass(frozen=True)
class _StandInProposed:
    x: float
    y: float
    quality: float
    sure: bool


@dataclass(frozen=True)
class _StandInProposal:
    joints: dict[Key, _StandInProposed]


def stand_in_methods(seed: int = 0) -> tuple[Locate, Propose]:
    """A stand-in for checking the harness alone: the truth plus 0.3 mm of noise, one joint in
    ten unsure; anything that is not a synthetic film is "other". Its figures mean nothing."""
    rng = np.random.Generator(np.random.PCG64(seed))

    def jitter(img: syn.SyntheticImage, key: Key) -> tuple[float, float, bool]:
        x, y = img.joints[key]
        dx, dy = rng.normal(0.0, 0.3 / img.pixel_mm, 2)
        return float(x + dx), float(y + dy), bool(rng.random() > 0.1)

    def locate(img: syn.SyntheticImage | None, _p: Any, _mm: float, _m1: bool) -> Any:
        if img is None:
            return _StandInLocation("other", ())
        joints = []
        for key in img.joints:
            x, y, sure = jitter(img, key)
            joints.append(_StandInJoint(key[0], key[1], x, y, 0.9 if sure else 0.3, sure))
        return _StandInLocation("hand" if img.body_part == "HAND" else "foot", tuple(joints))

    def propose(
        _ref: syn.SyntheticImage,
        points: Mapping[Key, tuple[float, float]],
        target: syn.SyntheticImage,
    ) -> Any:
        out = {}
        for key in points:
            x, y, sure = jitter(target, key)
            out[key] = _StandInProposed(x, y, 0.9 if sure else 0.3, sure)
        return _StandInProposal(out)

    return locate, propose


# --------------------------------------------------------------------------------------------
# Measuring


def measure_locator(
    films: Iterable[syn.SyntheticImage], locate: Locate, tally: Tally
) -> list[dict[str, Any]]:
    """Run the locator on each film; score its sure joints; the films it misread."""
    misread: list[dict[str, Any]] = []
    for img in films:
        started = time.perf_counter()
        location = locate(img, img.pixels, img.pixel_mm, False)
        tally.seconds.append(time.perf_counter() - started)
        wanted = "hand" if img.body_part == "HAND" else "foot"
        if location.kind != wanted:
            misread.append({"seed": img.seed, "expected": wanted, "found": location.kind})
        found = {(j.region, j.joint): (j.x, j.y, bool(j.sure)) for j in location.joints}
        tally.add(img.joints, found, img.pixel_mm)
    return misread


def measure_registration(
    visits: tuple[syn.SyntheticImage, ...], propose: Propose, tally: Tally
) -> None:
    """Visit 1's true positions proposed on each later visit's film, scored against its truth."""
    reference = visits[0]
    for target in visits[1:]:
        started = time.perf_counter()
        proposal = propose(reference, dict(reference.joints), target)
        tally.seconds.append(time.perf_counter() - started)
        found = {key: (p.x, p.y, bool(p.sure)) for key, p in proposal.joints.items()}
        tally.add(target.joints, found, target.pixel_mm)


def measure_crs(locate: Locate) -> list[dict[str, Any]]:
    """pydicom-data's CR files through the locator: what each was taken for."""
    from pydicom.data import get_testdata_file

    from scorer.imaging.pixels import read_dataset, stored_values
    from scorer.imaging.spacing import pixel_spacing

    out: list[dict[str, Any]] = []
    for name in CR_FILES:
        path = get_testdata_file(name, download=False)
        if path is None:
            out.append({"file": name, "found": "not installed (pip install pydicom-data)"})
            continue
        ds = read_dataset(str(path))
        spacing = pixel_spacing(ds)
        pixel_mm = float(spacing.row_mm) if spacing is not None else CR_FALLBACK_PIXEL_MM
        mono1 = str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1"
        started = time.perf_counter()
        location = locate(None, stored_values(ds), pixel_mm, mono1)
        seconds = time.perf_counter() - started
        kind = str(location.kind)
        out.append(
            {
                "file": name,
                "body_part": str(ds.get("BodyPartExamined", "")),
                "found": kind,
                "joints": len(location.joints),
                "recognised_as_neither": kind == "other" and not location.joints,
                "seconds": seconds,
            }
        )
    return out


# --------------------------------------------------------------------------------------------
# Printing


def print_tally(title: str, summary: Mapping[str, Any]) -> list[str]:
    """Print one method's table; return its target lines ("met" / "NOT met")."""
    print(f"\n{title}")
    print(f"  {'area kind':<10} {'joints':>6} {'unsure':>7} {'median':>7} {'p95':>7} {'worst':>7}")
    lines = []
    for kind, row in summary["kinds"].items():
        figures = (
            f"{row['median_mm']:>6.2f}  {row['p95_mm']:>6.2f}  {row['worst_mm']:>6.2f}"
            if "median_mm" in row
            else f"{'-':>6}  {'-':>6}  {'-':>6}"
        )
        print(f"  {kind:<10} {row['joints']:>6} {row['unsure_share']:>6.1%}  {figures}  mm")
        verdict = "met" if row["target_met"] else "NOT met"
        lines.append(
            f"  {title.split(':')[0]}, {kind}: median <= {TARGET_MEDIAN_MM} mm and "
            f"p95 <= {TARGET_P95_MM} mm: {verdict} ({row['unsure_share']:.0%} left unsure)"
        )
    if summary["spurious_joints"]:
        print(f"  joints returned that the films do not have: {summary['spurious_joints']}")
    if summary["median_s"] is not None:
        median_ms, p95_ms = summary["median_s"] * 1000, summary["p95_s"] * 1000
        print(f"  time: median {median_ms:.0f} ms, p95 {p95_ms:.0f} ms")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="2 patients (a smoke run)")
    parser.add_argument(
        "--stand-in",
        action="store_true",
        help="check the harness with the truth plus noise instead of the real methods",
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    patients = 2 if args.quick else args.patients
    if patients < 1:
        parser.error("--patients must be at least 1")
    if args.stand_in:
        locate, propose = stand_in_methods()
        print("STAND-IN: the truth plus noise, checking the harness; the figures mean nothing")
    else:
        try:
            locate, propose = real_methods()
        except ImportError as exc:
            print(
                f"the locator or the registration is missing ({exc}); --stand-in checks the harness"
            )
            return 2
    print("Synthetic hard films only: these figures say nothing about real patients' films.")
    print(f"{patients} patients x 3 visits x (hands, feet), seeds from {FIRST_SEED}")

    located, registered = Tally(), Tally()
    misread: list[dict[str, Any]] = []
    render_s: list[float] = []
    for patient in range(patients):
        started = time.perf_counter()
        films = patient_films(patient)
        render_s.append(time.perf_counter() - started)
        misread += measure_locator((*films.hands, *films.feet), locate, located)
        measure_registration(films.hands, propose, registered)
        measure_registration(films.feet, propose, registered)
        print(f"  patient {patient + 1}/{patients} done", flush=True)
    crs = measure_crs(locate)

    loc, reg = located.summary(), registered.summary()
    lines = print_tally("locator: error of the joints it was sure of", loc)
    print(f"  films not recognised as hands/feet: {len(misread)} of {len(located.seconds)}")
    for m in misread:
        print(f"    seed {m['seed']}: a {m['expected']} film taken for {m['found']}")
    lines += print_tally("registration: visit 1's truth proposed on visits 2 and 3", reg)
    print("\npydicom-data CR files (never hands or feet):")
    for cr in crs:
        verdict = "recognised as neither" if cr.get("recognised_as_neither") else "NOT recognised"
        print(f"  {cr['file']} ({cr.get('body_part', '')}): {cr['found']}, {verdict}")
    print("\ntargets" + (" (STAND-IN: meaningless)" if args.stand_in else "") + ":")
    for line in lines:
        print(line)
    crs_ok = all(cr.get("recognised_as_neither") for cr in crs)
    print(f"  pydicom-data CRs all left without positions: {'met' if crs_ok else 'NOT met'}")

    write_json(
        args.json,
        {
            "machine": machine(numpy=np.__version__),
            "quick": args.quick,
            "stand_in": args.stand_in,
            "synthetic_only": True,
            "patients": patients,
            "first_seed": FIRST_SEED,
            "targets_mm": {"median": TARGET_MEDIAN_MM, "p95": TARGET_P95_MM},
            "render_patient_median_s": statistics.median(render_s),
            "locator": loc | {"films": len(located.seconds), "misread_films": misread},
            "registration": reg | {"proposals": len(registered.seconds)},
            "pydicom_crs": crs,
            "crs_recognised_as_neither": crs_ok,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
