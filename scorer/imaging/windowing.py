"""Window presets from the header, the automatic window, and display lookup tables.

A VOI transform (PS3.3 C.11.2) is either a :class:`Window` (centre, width and VOI LUT
Function) or a VOI :class:`~scorer.imaging.pixels.LookupTable`. Both map modality values to a
fraction of the display range; :func:`display_lut` folds the modality transform, the VOI
transform and the polarity into one 8-bit table over the stored values, so redrawing a
window is a single table lookup per screen pixel instead of float math.

8-bit rounding rule: a fraction f in [0, 1] becomes floor(255 · f + 0.5); inversion is
255 minus that, so inverting twice gives back the same pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from scorer.imaging.pixels import LookupTable, ModalityTransform, PaddingRange, lookup_table

VoiFunction = Literal["LINEAR", "LINEAR_EXACT", "SIGMOID"]
VOI_FUNCTIONS: tuple[VoiFunction, ...] = ("LINEAR", "LINEAR_EXACT", "SIGMOID")
PresetSource = Literal["VOI LUT", "header window", "automatic"]

AUTOMATIC_PERCENTILES = (0.5, 99.5)
AUTOMATIC_MAX_SAMPLES = 1 << 18
_LUT_BAND_ELEMENTS = 1 << 16


@dataclass(frozen=True)
class Window:
    """A window centre and width in modality units, and the VOI LUT Function applying them.

    LINEAR needs a width of at least 1; LINEAR_EXACT and SIGMOID any positive width
    (PS3.3 C.11.2.1.2 and C.11.2.1.3).
    """

    center: float
    width: float
    function: VoiFunction = "LINEAR"

    def __post_init__(self) -> None:
        if self.function not in VOI_FUNCTIONS:
            raise ValueError(f"unknown VOI LUT Function {self.function!r}")
        if not (math.isfinite(self.center) and math.isfinite(self.width)):
            raise ValueError(f"window centre {self.center} / width {self.width} is not finite")
        minimum_ok = self.width >= 1 if self.function == "LINEAR" else self.width > 0
        if not minimum_ok:
            raise ValueError(f"window width {self.width} is too small for {self.function}")

    @property
    def lower(self) -> float:
        """The value at and below which the display is at its minimum (LINEAR_EXACT sense)."""
        return self.center - self.width / 2

    @property
    def upper(self) -> float:
        """The value above which the display is at its maximum (LINEAR_EXACT sense)."""
        return self.center + self.width / 2


VoiTransform = Window | LookupTable


@dataclass(frozen=True, eq=False)
class Preset:
    """A named way to show an image's values: a VOI LUT, a header window or the automatic one."""

    name: str
    voi: VoiTransform
    source: PresetSource


def header_presets(ds: Dataset) -> tuple[Preset, ...]:
    """The VOI presets the header offers, in the order a reader should be offered them.

    VOI LUT Sequence items come first (a CR/DX vendor's tone curve, named by LUT
    Explanation), then each Window Center/Width pair named by its Window Center & Width
    Explanation. The VOI LUT Function (default LINEAR) applies to every window. Presets the
    header spells wrongly (an unreadable LUT, a width below the function's minimum) are left
    out rather than shown wrong.
    """
    presets: list[Preset] = []
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    for number, item in enumerate(ds.get("VOILUTSequence") or [], start=1):
        try:
            table = lookup_table(item, signed_input=signed)
        except (ValueError, TypeError, KeyError):
            continue
        presets.append(Preset(table.explanation or f"VOI LUT {number}", table, "VOI LUT"))
    centers = _floats(ds.get("WindowCenter"))
    widths = _floats(ds.get("WindowWidth"))
    explanations = _texts(ds.get("WindowCenterWidthExplanation"))
    function_name = str(ds.get("VOILUTFunction", "") or "LINEAR").strip().upper()
    function: VoiFunction = "LINEAR"
    for candidate in VOI_FUNCTIONS:
        if candidate == function_name:
            function = candidate
    for index, (center, width) in enumerate(zip(centers, widths, strict=False)):
        if center is None or width is None:
            continue
        try:
            window = Window(center, width, function)
        except ValueError:
            continue
        name = explanations[index] if index < len(explanations) else ""
        presets.append(Preset(name or f"Window {center:g}/{width:g}", window, "header window"))
    return tuple(presets)


def _items(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, MultiValue | list | tuple) else [value]


def _floats(value: Any) -> list[float | None]:
    out: list[float | None] = []
    for item in _items(value):
        try:
            number = float(item)
        except (TypeError, ValueError):
            number = math.nan
        out.append(number if math.isfinite(number) else None)
    return out


def _texts(value: Any) -> list[str]:
    return [str(item).strip() for item in _items(value)]


def automatic_window(
    stored: npt.NDArray[np.integer[Any]],
    modality: ModalityTransform,
    *,
    padding: PaddingRange | None = None,
    percentiles: tuple[float, float] = AUTOMATIC_PERCENTILES,
    max_samples: int = AUTOMATIC_MAX_SAMPLES,
) -> Window:
    """A LINEAR window spanning the given percentiles of the image's modality values.

    For images whose header offers no preset. The percentiles (default 0.5 and 99.5) are taken
    on a regular subsample of at most ``max_samples`` stored values, padding values left out,
    so a few hot or dead pixels and the collimator edge do not stretch the window.
    """
    step = max(1, math.ceil(math.sqrt(stored.size / max_samples)))
    sample = np.asarray(stored[::step, ::step]).ravel()
    if padding is not None:
        kept = sample[~padding.mask(sample)]
        if kept.size:
            sample = kept
    if sample.size == 0:
        raise ValueError("an empty image has no automatic window")
    low, high = np.percentile(modality.apply(sample), percentiles)
    width = max(float(high - low), 1.0)
    return Window(float(low + high) / 2, width, "LINEAR")


def voi_fraction(values: npt.ArrayLike, voi: VoiTransform) -> npt.NDArray[np.float64]:
    """The VOI output for modality values as a fraction of the output range, 0 to 1.

    Windows follow PS3.3 C.11.2.1.2 (LINEAR), C.11.2.1.3.2 (LINEAR_EXACT) and C.11.2.1.3.1
    (SIGMOID) with y_min = 0 and y_max = 1; a VOI LUT's entries are divided by 2^bits − 1.
    """
    x = np.asarray(values, dtype=np.float64)
    if isinstance(voi, LookupTable):
        fraction = voi.apply(x).astype(np.float64) / voi.max_output
        return np.clip(fraction, 0.0, 1.0)
    c, w = voi.center, voi.width
    if voi.function == "LINEAR":
        if w <= 1.0:  # a threshold: everything above c − 0.5 is white
            return (x > c - 0.5).astype(np.float64)
        return np.clip((x - (c - 0.5)) / (w - 1.0) + 0.5, 0.0, 1.0)
    if voi.function == "LINEAR_EXACT":
        return np.clip((x - c) / w + 0.5, 0.0, 1.0)
    # 1 / (1 + exp(−4(x − c)/w)) written with tanh, which cannot overflow.
    result: npt.NDArray[np.float64] = 0.5 * (1.0 + np.tanh(2.0 * (x - c) / w))
    return result


def to_display(fraction: npt.NDArray[np.float64], *, invert: bool) -> npt.NDArray[np.uint8]:
    """8-bit display values for VOI fractions: floor(255 f + 0.5), complemented if inverted."""
    levels = np.floor(np.clip(fraction, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if invert:
        np.subtract(255, levels, out=levels)
    return levels


def display_lut(
    modality: ModalityTransform,
    voi: VoiTransform,
    *,
    invert: bool,
    first_stored: int,
    count: int,
) -> npt.NDArray[np.uint8]:
    """The 8-bit display value of each stored value from ``first_stored`` on (``count`` of them).

    One table holds the whole chain: modality transform, VOI transform, polarity. Index a
    compact image (stored value − ``first_stored``) with :func:`apply_lut`.
    """
    if count <= 0:
        raise ValueError("a display table needs at least one entry")
    stored = np.arange(first_stored, first_stored + count, dtype=np.int64)
    return to_display(voi_fraction(modality.apply(stored), voi), invert=invert)


def apply_lut(
    indices: npt.NDArray[np.unsignedinteger[Any]],
    lut: npt.NDArray[np.uint8],
    out: npt.NDArray[np.uint8] | None = None,
) -> npt.NDArray[np.uint8]:
    """Display pixels for compact stored values (indices into ``lut``), in ``out`` if given.

    Indices past the table's end take its last entry. The lookup runs in bands of rows small
    enough for the CPU cache, which is faster than one pass over a whole viewport.
    """
    if out is None:
        out = np.empty(indices.shape, dtype=np.uint8)
    if indices.ndim != 2:
        np.take(lut, indices, mode="clip", out=out)
        return out
    band = max(1, _LUT_BAND_ELEMENTS // max(1, indices.shape[1]))
    for start in range(0, indices.shape[0], band):
        np.take(lut, indices[start : start + band], mode="clip", out=out[start : start + band])
    return out


def parse_window(text: str) -> Window:
    """A LINEAR window from "CENTER,WIDTH" text (as on the command line)."""
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError(f"a window is CENTER,WIDTH, not {text!r}")
    try:
        center, width = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f"a window is two numbers CENTER,WIDTH, not {text!r}") from None
    return Window(center, width)
