"""Decode-and-display benchmark: per transfer syntax, how fast a radiograph gets on screen.

For a synthetic 3000 x 2400 12-bit radiograph-like image (smooth anatomy-like structures,
cortex, trabecular texture and detector noise, drawn from a seed with numpy, so compression
ratios are realistic) encoded in each transfer syntax, it measures:

- decode: reading the file and decoding the stored values (scorer.imaging.pixels);
- first display: decode + pyramid build + header facts and automatic window + the first
  render of a 1600 x 1000 viewport at fit zoom;
- reopen: opening the same file again with its pyramid in the disk cache (memory-mapped),
  plus the first render;
- window/level: re-rendering the 1600 x 1000 viewport with a new window each time (median of
  30), at fit zoom and at 1:1 zoom (viewport full of image), and with the sampled viewport
  kept (what a viewer does while only the window changes); beside it, the floor of copying
  the same number of pixels with numpy.

Usage (from the repository root):

    .venv/bin/python benchmarks/display.py [--quick] [--json PATH]

``--quick`` is a smoke run on a small image with 3 repeats. DCMTK's dcmcjpeg, if installed,
adds the JPEG lossless and JPEG extended rows. Results go to the terminal as a table and to
JSON (default benchmarks/results/display.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom import uid
from pydicom.dataset import Dataset, FileMetaDataset

from scorer.imaging.pixels import read_dataset, stored_values
from scorer.imaging.pyramid import build_pyramid
from scorer.imaging.radiograph import open_radiograph, radiograph_from_dataset
from scorer.imaging.render import (
    ViewState,
    fit_view,
    render_viewport,
    sample_viewport,
    window_samples,
)
from scorer.imaging.windowing import Window

VIEWPORT = (1600, 1000)  # width, height
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "display.json"


def gaussian_blur(values: npt.NDArray[np.float64], sigma: float) -> npt.NDArray[np.float64]:
    """A Gaussian blur by FFT (periodic edges; the image borders are air anyway)."""
    rows, cols = values.shape
    fy = np.fft.fftfreq(rows)[:, None]
    fx = np.fft.rfftfreq(cols)[None, :]
    kernel = np.exp(-2 * (np.pi * sigma) ** 2 * (fx**2 + fy**2))
    blurred: npt.NDArray[np.float64] = np.fft.irfft2(np.fft.rfft2(values) * kernel, s=values.shape)
    return blurred


def add_capsule(
    target: npt.NDArray[np.float64],
    weight: float,
    start: tuple[float, float],
    end: tuple[float, float],
    radius: float,
) -> None:
    """Add ``weight`` × the path length through a capsule (a rod with round ends) seen side-on."""
    (y0, x0), (y1, x1) = start, end
    rows, cols = target.shape
    top, bottom = max(0, int(min(y0, y1) - radius)), min(rows, int(max(y0, y1) + radius) + 2)
    left, right = max(0, int(min(x0, x1) - radius)), min(cols, int(max(x0, x1) + radius) + 2)
    if top >= bottom or left >= right:
        return
    yy, xx = np.mgrid[top:bottom, left:right].astype(np.float64)
    dy, dx = y1 - y0, x1 - x0
    t = np.clip(((yy - y0) * dy + (xx - x0) * dx) / max(dy * dy + dx * dx, 1e-9), 0, 1)
    distance_squared = (yy - (y0 + t * dy)) ** 2 + (xx - (x0 + t * dx)) ** 2
    thickness = 2 * np.sqrt(np.clip(radius**2 - distance_squared, 0, None))
    target[top:bottom, left:right] += weight * thickness


def synthetic_radiograph(rows: int, cols: int, seed: int) -> npt.NDArray[np.uint16]:
    """A 12-bit hand-radiograph-like image, bone bright (MONOCHROME2), from ``seed``."""
    rng = np.random.default_rng(seed)
    scale = rows / 3000
    soft = np.zeros((rows, cols))
    bone = np.zeros((rows, cols))
    palm_y, palm_x = 0.68 * rows, 0.5 * cols
    add_capsule(
        soft, 1.0, (palm_y, palm_x - 0.12 * cols), (palm_y, palm_x + 0.12 * cols), 0.2 * cols
    )
    add_capsule(soft, 1.0, (0.85 * rows, palm_x), (1.1 * rows, palm_x), 0.16 * cols)  # forearm
    for finger in range(5):
        angle = np.deg2rad(-40 + 20 * finger + rng.normal(0, 4))
        base = (palm_y - 0.12 * rows, palm_x + (finger - 2) * 0.1 * cols)
        length = (0.45 + 0.08 * rng.random()) * rows * (0.7 if finger == 0 else 1.0)
        tip = (base[0] - length * np.cos(angle), base[1] + length * np.sin(angle) * 0.6)
        add_capsule(soft, 1.0, base, tip, 0.035 * cols)
        # a metacarpal and three phalanges: cortex (outer minus inner rod) and marrow
        joints = [base[0] + 0.25 * rows, base[0], *(np.linspace(base[0], tip[0], 4)[1:])]
        xs = [base[1], base[1], *(np.linspace(base[1], tip[1], 4)[1:])]
        for k in range(4):
            start = (joints[k] - 8 * scale, xs[k])
            end = (joints[k + 1] + 8 * scale, xs[k + 1])
            add_capsule(bone, 1.8, start, end, 0.018 * cols)
            add_capsule(bone, -1.2, start, end, 0.012 * cols)
    texture = gaussian_blur(rng.normal(0, 1, (rows, cols)), 2.5 * scale)
    attenuation = 0.0012 * soft + 0.005 * bone * (1 + 0.35 * texture)
    attenuation = gaussian_blur(attenuation, 1.2 * scale)
    heel = 0.08 * np.linspace(0, 1, rows)[:, None]  # anode heel effect: a gentle gradient
    signal = 300 + 1200 * attenuation + 120 * heel
    noise = rng.normal(0, 1, (rows, cols)) * np.sqrt(4 + 0.02 * signal)
    return np.clip(np.round(signal + noise), 0, 4095).astype(np.uint16)


def dataset_for(values: npt.NDArray[np.uint16]) -> Dataset:
    """A DX-like dataset holding 12-bit MONOCHROME2 ``values`` with a header window."""
    ds = Dataset()
    ds.SOPClassUID = uid.DigitalXRayImageStorageForPresentation
    ds.SOPInstanceUID = uid.generate_uid()
    ds.Modality = "DX"
    ds.Rows, ds.Columns = values.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PresentationLUTShape = "IDENTITY"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = 1200, 2000
    ds.ImagerPixelSpacing = [0.1, 0.1]
    ds.PixelData = values.tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


@dataclass
class Encoding:
    """One transfer syntax to benchmark and how to make its file."""

    name: str
    syntax: str
    make: Callable[[Path, Path], None]


def _pydicom_encoder(syntax: str, **options: Any) -> Callable[[Path, Path], None]:
    def make(source: Path, target: Path) -> None:
        ds = pydicom.dcmread(source)
        ds.compress(syntax, **options)
        ds.save_as(target, enforce_file_format=True)

    return make


def _dcmtk_encoder(*arguments: str) -> Callable[[Path, Path], None]:
    def make(source: Path, target: Path) -> None:
        subprocess.run([*arguments, str(source), str(target)], check=True, capture_output=True)

    return make


def encodings() -> tuple[list[Encoding], list[str]]:
    """The syntaxes to measure, and notes on any left out."""
    chosen = [
        Encoding("Uncompressed (explicit VR LE)", uid.ExplicitVRLittleEndian, shutil.copyfile),
        Encoding(
            "RLE Lossless",
            uid.RLELossless,
            _pydicom_encoder(uid.RLELossless, encoding_plugin="pylibjpeg"),
        ),
    ]
    notes: list[str] = []
    if shutil.which("dcmcjpeg"):
        chosen.append(
            Encoding("JPEG Lossless SV1", uid.JPEGLosslessSV1, _dcmtk_encoder("dcmcjpeg", "+e1"))
        )
    else:
        notes.append("JPEG lossless and extended left out: DCMTK's dcmcjpeg is not installed")
    chosen += [
        Encoding("JPEG-LS Lossless", uid.JPEGLSLossless, _pydicom_encoder(uid.JPEGLSLossless)),
        Encoding(
            "JPEG 2000 Lossless", uid.JPEG2000Lossless, _pydicom_encoder(uid.JPEG2000Lossless)
        ),
        Encoding("JPEG 2000 lossy 10:1", uid.JPEG2000, _pydicom_encoder(uid.JPEG2000, j2k_cr=[10])),
    ]
    if shutil.which("dcmcjpeg"):
        chosen.append(
            Encoding(
                "JPEG Extended 12-bit q90",
                uid.JPEGExtended12Bit,
                _dcmtk_encoder("dcmcjpeg", "+ee", "+sr", "+q", "90"),
            )
        )
    return chosen, notes


def median_ms(action: Callable[[], object], repeats: int) -> float:
    """The median wall time of ``action`` over ``repeats`` runs, in milliseconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


@dataclass
class Row:
    """The figures for one transfer syntax."""

    syntax: str
    uid: str
    file_mb: float
    ratio: float
    decode_ms: float
    first_display_ms: float
    reopen_cached_ms: float
    window_fit_ms: float
    window_1to1_ms: float
    window_kept_samples_ms: float
    copy_floor_u8_ms: float
    copy_floor_u16_ms: float


def measure(encoding: Encoding, source: Path, work: Path, repeats: int, window_repeats: int) -> Row:
    """Make the file for one encoding and time decoding and display on it."""
    path = work / f"{encoding.syntax}.dcm"
    encoding.make(source, path)
    width, height = VIEWPORT

    def decode() -> npt.NDArray[Any]:
        return stored_values(read_dataset(path))

    def first_display() -> npt.NDArray[np.uint8]:
        ds = read_dataset(path)
        image = radiograph_from_dataset(ds, pyramid=build_pyramid(stored_values(ds)))
        return render_viewport(image, fit_view(image.shape, width, height), width, height)

    cache = work / f"cache-{encoding.syntax}"
    image = open_radiograph(path, cache_dir=cache)  # builds the cache once

    def reopen() -> npt.NDArray[np.uint8]:
        again = open_radiograph(path, cache_dir=cache)
        return render_viewport(again, fit_view(again.shape, width, height), width, height)

    windows = [Window(1000 + 7 * k, 1500 + 11 * k) for k in range(window_repeats)]
    fit = fit_view(image.shape, width, height)
    one_to_one = ViewState(image.shape[1] / 2, image.shape[0] / 2, 1.0)

    def window_series(view: ViewState) -> float:
        times = []
        for window in windows:
            view.voi = window
            start = time.perf_counter()
            render_viewport(image, view, width, height)
            times.append(time.perf_counter() - start)
        return 1000 * statistics.median(times)

    samples = sample_viewport(image.pyramid, one_to_one, width, height)

    def kept_samples() -> float:
        times = []
        for window in windows:
            start = time.perf_counter()
            window_samples(samples, image.display_lut(window))
            times.append(time.perf_counter() - start)
        return 1000 * statistics.median(times)

    source_u8 = np.zeros((height, width), np.uint8)
    source_u16 = np.zeros((height, width), np.uint16)
    raw_bytes = image.shape[0] * image.shape[1] * 2
    return Row(
        syntax=encoding.name,
        uid=encoding.syntax,
        file_mb=path.stat().st_size / 1e6,
        ratio=raw_bytes / path.stat().st_size,
        decode_ms=median_ms(decode, repeats),
        first_display_ms=median_ms(first_display, repeats),
        reopen_cached_ms=median_ms(reopen, repeats),
        window_fit_ms=window_series(fit),
        window_1to1_ms=window_series(one_to_one),
        window_kept_samples_ms=kept_samples(),
        copy_floor_u8_ms=median_ms(source_u8.copy, window_repeats),
        copy_floor_u16_ms=median_ms(source_u16.copy, window_repeats),
    )


def table(rows: list[Row]) -> str:
    """The rows as a fixed-width text table."""
    header = (
        f"{'transfer syntax':<30} {'MB':>6} {'ratio':>5} {'decode':>8} {'first':>8} "
        f"{'reopen':>7} {'W/L fit':>8} {'W/L 1:1':>8} {'W/L kept':>8} {'copy u8':>8} "
        f"{'copy u16':>8}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.syntax:<30} {r.file_mb:6.2f} {r.ratio:5.2f} {r.decode_ms:8.1f} "
            f"{r.first_display_ms:8.1f} {r.reopen_cached_ms:7.1f} {r.window_fit_ms:8.2f} "
            f"{r.window_1to1_ms:8.2f} {r.window_kept_samples_ms:8.2f} "
            f"{r.copy_floor_u8_ms:8.2f} {r.copy_floor_u16_ms:8.2f}"
        )
    lines.append(
        "times in ms (median); first = decode + pyramid + first 1600x1000 render; "
        "reopen = from the pyramid cache"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small image, 3 repeats")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write JSON")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument(
        "--repeats", type=int, default=None, help="repeats for decode and first display (default 3)"
    )
    args = parser.parse_args(argv)
    rows, cols = (600, 480) if args.quick else (3000, 2400)
    repeats = args.repeats or 3
    window_repeats = 3 if args.quick else 30

    start = time.perf_counter()
    values = synthetic_radiograph(rows, cols, args.seed)
    made_s = time.perf_counter() - start
    chosen, notes = encodings()
    results: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="scorer-bench-") as temporary:
        work = Path(temporary)
        source = work / "source.dcm"
        dataset_for(values).save_as(source, enforce_file_format=True)
        for encoding in chosen:
            results.append(measure(encoding, source, work, repeats, window_repeats))
            print(f"  measured {encoding.name}", file=sys.stderr)
    print(
        f"Synthetic {rows} x {cols} 12-bit radiograph (seed {args.seed}, made in "
        f"{made_s:.1f} s); viewport {VIEWPORT[0]} x {VIEWPORT[1]}; "
        f"{window_repeats} window/level runs"
    )
    print(table(results))
    for note in notes:
        print(f"note: {note}")
    document = {
        "image": {"rows": rows, "columns": cols, "bits_stored": 12, "seed": args.seed},
        "viewport": {"width": VIEWPORT[0], "height": VIEWPORT[1]},
        "repeats": repeats,
        "window_repeats": window_repeats,
        "quick": args.quick,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pydicom": pydicom.__version__,
            "cpus": os.cpu_count(),
        },
        "notes": notes,
        "rows": [asdict(r) for r in results],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2) + "\n")
    print(f"JSON written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
