"""Import benchmark: radiographs per second through the whole import, beside copying the bytes.

Two folders of DX hand and foot films (12-bit, ``--rows`` x ``--cols``, drawn from a seed by
the display benchmark's generator) are made: ``--files`` uncompressed (Explicit VR Little
Endian) and ``--files`` JPEG 2000 Lossless. Every file is its own instance (own patient, UIDs
and dates); a handful of pixel arrays is encoded once and shared, which the import cannot
tell (it hashes whole files).

Each folder is imported as a coordinator does (``Workspace.import_images``: validation, decode,
de-identification, the readers' copy, the original kept byte-identical, deduplication, the
audit row per image) into a fresh database, and copied with ``cp -r`` to the same disk. The
figure is the source bytes per second, and the import's share of ``cp``'s throughput.

Usage (from the repository root):

    .venv/bin/python benchmarks/imports.py [--files N] [--runs N] [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pydicom
from pydicom.uid import JPEG2000Lossless

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from common import machine, write_json  # noqa: E402
from display import synthetic_radiograph  # noqa: E402

from tests.intake.dicom_maker import make_dx  # noqa: E402  (the tests' valid DX film)

PW = "Bench-mark-pass-2024"
DISTINCT = 4  # pixel arrays drawn (and encoded) per folder


def make_folder(folder: Path, files: int, shape: tuple[int, int], syntax: str | None) -> int:
    """``files`` DICOM files in ``folder``; returns their total bytes."""
    folder.mkdir(parents=True)
    bases = [synthetic_radiograph(*shape, seed=i) for i in range(DISTINCT)]
    encoded: dict[int, tuple[bytes, str]] = {}
    total = 0
    for n in range(files):
        k = n % DISTINCT
        ds = make_dx(bases[k], f"BENCH-{n:04d}", body_part="HAND" if n % 2 == 0 else "FOOT")
        if syntax is not None:
            if k not in encoded:
                ds.compress(syntax)
                encoded[k] = (ds.PixelData, ds.file_meta.TransferSyntaxUID)
            else:
                ds.PixelData, ds.file_meta.TransferSyntaxUID = encoded[k]
                ds["PixelData"].is_undefined_length = True
        path = folder / f"{n:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        total += path.stat().st_size
    return total


def fresh_desk(db: Path) -> tuple[Any, Any]:
    from scorer.workspace import Workspace

    ws = Workspace.initialize("admin", "Ada Admin", PW, db=str(db))
    admin = ws.accounts.login("admin", PW)
    ws.accounts.add_user(admin, "coord", "Coordinator", "coordinator", PW[::-1])
    s = ws.accounts.login("coord", PW[::-1])
    ws.accounts.change_password(s, PW[::-1], PW)
    s = ws.accounts.login("coord", PW)
    ws.trials.create_trial(
        s, "B1", "Benchmark", visits=[("W0", 0.0), ("W24", 24.0), ("W52", 52.0)]
    )
    return ws, s


def import_once(source: Path, work: Path, locate: bool = True, manifest: Any = None) -> float:
    """One import of ``source`` into a fresh database, with or without the joint locator (and
    the registration across visits that follows it); its wall time."""
    ws, s = fresh_desk(work / "db.sqlite")
    ws.images.locate_joints = locate
    try:
        started = time.perf_counter()
        report = ws.images.import_images(s, "B1", [source], manifest).to_dict()
        took = time.perf_counter() - started
    finally:
        ws.close()
    if report["refused"]:
        raise RuntimeError(f"files refused: {report['files'][:3]}")
    return took


def cp_once(source: Path, target: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["cp", "-r", str(source), str(target)], check=True)
    os.sync()
    return time.perf_counter() - started


def locator_cost(tmp: Path, runs: int, quick: bool) -> dict[str, Any]:
    """The joint locator's cost at import: the demo's hand and foot films (``sample_images``,
    JPEG 2000) imported with the locator and registration and without, interleaved."""
    from scorer.demo import repo_samples_dir
    from scorer.imaging.manifest import parse_manifest

    samples = repo_samples_dir()
    manifest = parse_manifest((samples / "manifest.csv").read_text(encoding="utf-8"))
    rows = manifest.rows[:12] if quick else manifest.rows
    source = tmp / "demo-films"
    source.mkdir()
    for row in rows:
        (source / row.file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(samples / row.file, source / row.file)
    lines = (samples / "manifest.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    kept = {row.file for row in rows}
    text = lines[0] + "".join(ln for ln in lines[1:] if ln.split(",")[0] in kept)
    (source / "manifest.csv").write_text(text, encoding="utf-8")
    manifest = parse_manifest(text)
    on: list[float] = []
    off: list[float] = []
    for r in range(runs):
        for locate, into in ((True, on), (False, off)):
            work = tmp / f"work-demo-{r}-{locate}"
            work.mkdir()
            into.append(import_once(source, work, locate, manifest))
            shutil.rmtree(tmp / "data", ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)
    files = len(rows)
    with_locator, without = statistics.median(on), statistics.median(off)
    print(
        f"{files} demo films (hands and feet, JPEG 2000): import {with_locator:.1f} s with the "
        f"joint locator and registration across visits, {without:.1f} s without: "
        f"{1000 * (with_locator - without) / files:.0f} ms a film "
        f"({100 * (with_locator / without - 1):.0f} % more), median of {runs}",
        flush=True,
    )
    return {
        "files": files,
        "with_locator_median_s": with_locator,
        "without_locator_median_s": without,
        "locator_ms_per_film": 1000 * (with_locator - without) / files,
        "runs": runs,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--cols", type=int, default=1600)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="a smoke run: 8 small files, one run")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "imports.json")
    args = ap.parse_args()
    files, shape, runs = (
        (8, (400, 320), 1) if args.quick else (args.files, (args.rows, args.cols), args.runs)
    )
    tmp = Path(tempfile.mkdtemp(prefix="scorer-bench-import-", dir=os.environ.get("TMPDIR")))
    os.environ["SCORER_DATA_DIR"] = str(tmp / "data")
    os.environ["SCORER_CONFIG"] = str(tmp / "no-config.toml")
    os.environ.pop("SCORER_DB", None)
    out: dict[str, Any] = {
        "machine": machine(pydicom=pydicom.__version__),
        "files": files,
        "shape": list(shape),
    }
    try:
        for name, syntax in (("uncompressed", None), ("jpeg2000_lossless", JPEG2000Lossless)):
            source = tmp / name
            made = time.perf_counter()
            size = make_folder(source, files, shape, syntax)
            print(
                f"{files} {name} files, {size / 1e6:.0f} MB, made in "
                f"{time.perf_counter() - made:.0f} s",
                flush=True,
            )
            imports, copies = [], []
            for r in range(runs):
                work = tmp / f"work-{name}-{r}"
                work.mkdir()
                imports.append(import_once(source, work))
                shutil.rmtree(tmp / "data", ignore_errors=True)
                copies.append(cp_once(source, tmp / f"copy-{name}-{r}"))
                shutil.rmtree(work, ignore_errors=True)
                shutil.rmtree(tmp / f"copy-{name}-{r}", ignore_errors=True)
            imp, cp = statistics.median(imports), statistics.median(copies)
            out[name] = {
                "bytes": size,
                "import_median_s": imp,
                "import_spread_s": [min(imports), max(imports)],
                "import_mb_s": size / 1e6 / imp,
                "import_files_s": files / imp,
                "cp_median_s": cp,
                "cp_spread_s": [min(copies), max(copies)],
                "cp_mb_s": size / 1e6 / cp,
                "share_of_cp": cp / imp,
                "runs": runs,
            }
            o = out[name]
            print(
                f"  import {o['import_mb_s']:.0f} MB/s ({o['import_files_s']:.1f} files/s), "
                f"cp {o['cp_mb_s']:.0f} MB/s: import at {100 * o['share_of_cp']:.0f} % of cp",
                flush=True,
            )
            shutil.rmtree(source, ignore_errors=True)
        out["demo_films"] = locator_cost(tmp, 1 if args.quick else runs, args.quick)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
