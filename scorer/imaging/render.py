"""Drawing a radiograph: the viewer's view state, viewport rendering, full renders and PNG export.

Geometry. Image coordinates are full-resolution pixels with pixel (row r, column c) covering
x in [c, c + 1) and y in [r, r + 1). A :class:`ViewState` puts the image point
(``center_x``, ``center_y``) at the centre of an ``out_w`` × ``out_h`` screen, scales by
``zoom`` screen pixels per image pixel, turns the image ``rotation`` quarter turns clockwise
and then mirrors the screen left-right when ``flip_h``. Each screen pixel shows the pyramid
pixel under its centre (nearest neighbour) from the coarsest level still at least as
detailed as the screen (see :meth:`Pyramid.level_for_zoom`); screen pixels off the image are
black.

Speed. Only the screen's pixels are touched: the level is cropped and sampled with two 1-D
index arrays (the transforms are axis-aligned), then one 8-bit table lookup applies modality,
window and polarity. A viewer that keeps :func:`sample_viewport`'s result while only the
window changes redraws with :func:`window_samples` alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from scorer.core.private_files import replacing
from scorer.imaging.pyramid import CompactValues, Pyramid
from scorer.imaging.radiograph import Radiograph
from scorer.imaging.windowing import VoiTransform, apply_lut

BACKGROUND = 0


@dataclass
class ViewState:
    """What part of a radiograph is on screen and how: the plain object a viewer binds to.

    ``center_x``/``center_y``: the image point (full-resolution pixels) at the screen centre;
    ``zoom``: screen pixels per image pixel; ``rotation``: quarter turns clockwise;
    ``flip_h``: mirror left-right after rotating; ``invert``: the reader's inversion on top of
    the bone-bright polarity; ``voi``: the window or VOI LUT, None for the default preset.
    """

    center_x: float
    center_y: float
    zoom: float = 1.0
    rotation: int = 0
    flip_h: bool = False
    invert: bool = False
    voi: VoiTransform | None = None


def fit_view(
    shape: tuple[int, int], out_w: int, out_h: int, *, rotation: int = 0, flip_h: bool = False
) -> ViewState:
    """A view showing the whole image, centred, as large as fits the screen."""
    rows, cols = shape
    shown_w, shown_h = (rows, cols) if rotation % 2 else (cols, rows)
    zoom = min(out_w / shown_w, out_h / shown_h)
    return ViewState(cols / 2, rows / 2, zoom, rotation % 4, flip_h)


def _axis_plan(view: ViewState) -> tuple[bool, int, int]:
    """(screen rows follow image columns?, sign of image x, sign of image y) for the view.

    The screen offset (dx, dy) maps back to the image offset (u, v) by undoing the mirror
    (dx → −dx) and then each clockwise quarter turn ((dx, dy) → (dy, −dx)).
    """
    mirror = -1 if view.flip_h else 1
    turns = view.rotation % 4
    if turns == 0:
        return False, mirror, 1  # u = ±dx, v = dy
    if turns == 1:
        return True, 1, -mirror  # u = dy, v = ∓dx
    if turns == 2:
        return False, -mirror, -1  # u = ∓dx, v = −dy
    return True, -1, mirror  # u = −dy, v = ±dx


def screen_to_image(
    view: ViewState, out_w: int, out_h: int, x: float, y: float
) -> tuple[float, float]:
    """The image point (x, y in full-resolution pixels) under the screen point (x, y)."""
    dx, dy = (x - out_w / 2) / view.zoom, (y - out_h / 2) / view.zoom
    swapped, sign_u, sign_v = _axis_plan(view)
    u, v = (sign_u * dy, sign_v * dx) if swapped else (sign_u * dx, sign_v * dy)
    return view.center_x + u, view.center_y + v


def image_to_screen(
    view: ViewState, out_w: int, out_h: int, x: float, y: float
) -> tuple[float, float]:
    """The screen point showing the image point (x, y): the inverse of screen_to_image."""
    u, v = x - view.center_x, y - view.center_y
    swapped, sign_u, sign_v = _axis_plan(view)
    dx, dy = (sign_v * v, sign_u * u) if swapped else (sign_u * u, sign_v * v)
    return out_w / 2 + dx * view.zoom, out_h / 2 + dy * view.zoom


@dataclass(frozen=True)
class ViewportSamples:
    """The compact stored values under the screen pixels that show the image.

    The screen is ``shape`` (rows, columns); its pixels ``rows`` × ``cols`` show the image
    and ``values`` holds their pyramid values (from level ``level``); every other screen
    pixel is off the image.
    """

    values: CompactValues
    rows: slice
    cols: slice
    shape: tuple[int, int]
    level: int


def _indices(
    count: int, center: float, zoom: float, sign: int, scale: int, limit: int
) -> tuple[npt.NDArray[np.intp], slice]:
    """Level indices under the on-image run of ``count`` screen pixels along one axis."""
    offsets = (np.arange(count, dtype=np.float64) + (0.5 - count / 2)) * (sign / zoom)
    index = np.floor((center + offsets) / scale).astype(np.intp)
    inside = np.flatnonzero((index >= 0) & (index < limit))
    if not inside.size:
        return index[:0], slice(0, 0)
    run = slice(int(inside[0]), int(inside[-1]) + 1)  # a run: the index is monotonic
    return index[run], run


def _take(values: npt.NDArray[Any], index: npt.NDArray[np.intp], axis: int) -> npt.NDArray[Any]:
    """``values`` sampled at ``index`` along ``axis``; a view when the index is a plain run."""
    first = int(index[0])
    if index.size == 1 or bool(np.all(np.diff(index) == 1)):
        run = slice(first, first + index.size)
        return values[run] if axis == 0 else values[:, run]
    return np.take(values, index, axis=axis)


def sample_viewport(pyramid: Pyramid, view: ViewState, out_w: int, out_h: int) -> ViewportSamples:
    """The pyramid values under each on-image pixel of an ``out_w`` × ``out_h`` screen."""
    if out_w < 1 or out_h < 1:
        raise ValueError(f"a viewport of {out_w} x {out_h} pixels is empty")
    level = pyramid.level_for_zoom(view.zoom)
    values = pyramid.levels[level]
    scale = 1 << level
    swapped, sign_u, sign_v = _axis_plan(view)
    level_rows, level_cols = values.shape
    if swapped:  # screen rows walk image columns, screen columns walk image rows
        source: npt.NDArray[Any] = values.T
        down, rows = _indices(out_h, view.center_x, view.zoom, sign_u, scale, level_cols)
        across, cols = _indices(out_w, view.center_y, view.zoom, sign_v, scale, level_rows)
    else:
        source = values
        down, rows = _indices(out_h, view.center_y, view.zoom, sign_v, scale, level_rows)
        across, cols = _indices(out_w, view.center_x, view.zoom, sign_u, scale, level_cols)
    if not (down.size and across.size):
        empty: CompactValues = values[:0, :0]
        return ViewportSamples(empty, slice(0, 0), slice(0, 0), (out_h, out_w), level)
    left, right = int(across.min()), int(across.max()) + 1
    block = _take(source[:, left:right], down, axis=0)
    sampled = _take(block, across - left, axis=1)
    return ViewportSamples(sampled, rows, cols, (out_h, out_w), level)


def window_samples(samples: ViewportSamples, lut: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Display pixels for sampled values through a display table; off-image pixels black."""
    pixels = np.full(samples.shape, BACKGROUND, dtype=np.uint8)
    if samples.values.size:
        apply_lut(samples.values, lut, out=pixels[samples.rows, samples.cols])
    return pixels


def render_viewport(
    image: Radiograph, view: ViewState, out_w: int, out_h: int
) -> npt.NDArray[np.uint8]:
    """What the screen shows: ``out_h`` × ``out_w`` 8-bit pixels of ``image`` under ``view``."""
    samples = sample_viewport(image.pyramid, view, out_w, out_h)
    return window_samples(samples, image.display_lut(view.voi, invert=view.invert))


def render_full(
    image: Radiograph,
    max_size: int | None = None,
    voi: VoiTransform | None = None,
    *,
    invert: bool = False,
) -> npt.NDArray[np.uint8]:
    """The whole image, bone bright, scaled down so its longer side is at most ``max_size``.

    ``max_size`` None keeps full resolution; ``voi`` None uses the default preset. Downscaled
    renders sample the pyramid exactly as the viewer does.
    """
    rows, cols = image.shape
    zoom = 1.0
    if max_size is not None:
        if max_size < 1:
            raise ValueError(f"max_size {max_size} must be at least 1")
        zoom = min(1.0, max_size / max(rows, cols))
    out_w = max(1, min(cols, round(cols * zoom)))
    out_h = max(1, min(rows, round(rows * zoom)))
    view = ViewState(cols / 2, rows / 2, zoom, voi=voi, invert=invert)
    return render_viewport(image, view, out_w, out_h)


def export_png(
    image: Radiograph,
    path: str | os.PathLike[str],
    *,
    voi: VoiTransform | None = None,
    max_size: int | None = None,
) -> Path:
    """Write what a reader sees by default to an 8-bit greyscale PNG; returns the path.

    Bone bright, the default preset unless ``voi`` is given, full resolution unless
    ``max_size`` is; nothing is drawn on the pixels and the PNG carries no text chunks, so it
    holds nothing the blinded reader would not see. Written to a temporary file and renamed.
    """
    pixels = render_full(image, max_size, voi)
    target = Path(path)
    with replacing(target) as temporary:  # owner-only, whole or not at all
        Image.fromarray(pixels).save(temporary, format="PNG")
    return target
