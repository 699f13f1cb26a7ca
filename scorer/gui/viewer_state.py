"""The image viewer's state and what each reader action does to it, without Qt.

:class:`ViewerModel` holds one radiograph, the :class:`~scorer.imaging.render.ViewState` the
widget binds to, the screen size and the overlays (ruler, loupe). Every reader action is a
method here, so a test can drive the viewer without a window; the Qt widget only turns mouse
and keys into these calls and paints :meth:`ViewerModel.render`'s pixels.

Coordinates. Screen positions are the widget's logical pixels; ``view.zoom`` is logical
pixels per image pixel. Frames are rendered at physical pixels (logical × device pixel
ratio), so a display at ratio 2 gets full detail; "1:1" means one image pixel per physical
pixel. Image positions are (x, y) = (column, row) in full-resolution pixels.

Speed. :meth:`ViewerModel.render` keeps the sampled viewport while only the window or the
polarity changes, so a window/level drag redraws with one table lookup per screen pixel; a
pan or zoom samples only what is on screen from the pyramid level that matches the zoom.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import numpy.typing as npt

from scorer.imaging.radiograph import Radiograph, patient_left_vector
from scorer.imaging.render import (
    ViewportSamples,
    ViewState,
    fit_view,
    image_to_screen,
    render_viewport,
    sample_viewport,
    screen_to_image,
    window_samples,
)
from scorer.imaging.windowing import Preset, VoiTransform, Window

ViewChange = Literal["geometry", "window", "image", "overlay"]
"""What a change touched: zoom/pan/rotation, window/polarity, the image, or an overlay."""

ZOOM_STEP = 1.25
MIN_ZOOM_OF_FIT = 0.25  # zoom out to a quarter of the fitted size at most
MAX_PHYSICAL_ZOOM = 16.0  # screen pixels per image pixel at the most
WINDOW_DRAG_PIXELS = 256.0  # a drag this long changes the window by its own width
LOUPE_FACTORS = (2.0, 2.5, 3.0, 3.5, 4.0)
NO_CALIBRATION = "no calibration: cannot measure"
DEFAULT_FIELD_MM = 25.0  # joint view: about one joint and its neighbours' margins across
NO_SPACING_FIELD_FRACTION = 0.1  # without a spacing, the default field is this share of the width

Point = tuple[float, float]


@dataclass(frozen=True)
class Ruler:
    """A measured line between two image points (x, y in full-resolution pixels)."""

    start: Point
    end: Point


class ViewerModel:
    """One radiograph on screen: view state, screen size, overlays and the reader's actions.

    Listeners (``add_listener``) are called with a :data:`ViewChange` after each change.
    """

    def __init__(
        self,
        image: Radiograph | None = None,
        *,
        width: int = 1,
        height: int = 1,
        device_pixel_ratio: float = 1.0,
    ) -> None:
        self._listeners: list[Callable[[ViewChange], None]] = []
        self._width = max(1, int(width))
        self._height = max(1, int(height))
        self._dpr = float(device_pixel_ratio) if device_pixel_ratio > 0 else 1.0
        self._image: Radiograph | None = None
        self._samples: tuple[tuple[object, ...], ViewportSamples] | None = None
        self._drag_window: Window | None = None
        self.view = ViewState(0.5, 0.5)
        self.fitted = True
        self.preset_index: int | None = 0
        self.ruler: Ruler | None = None
        self.loupe_on = False
        self.loupe_factor = LOUPE_FACTORS[0]
        self.loupe_at: Point | None = None  # screen point under the loupe
        self.set_image(image)

    # ------------------------------------------------------------------ listeners

    def add_listener(self, listener: Callable[[ViewChange], None]) -> None:
        """Call ``listener(change)`` after every change."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[ViewChange], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _changed(self, change: ViewChange) -> None:
        for listener in list(self._listeners):
            listener(change)

    # ------------------------------------------------------------------ image and screen

    @property
    def image(self) -> Radiograph | None:
        return self._image

    def set_image(self, image: Radiograph | None) -> None:
        """Show ``image`` fitted, with its default preset; overlays are cleared."""
        self._image = image
        self._samples = None
        self.ruler = None
        self.preset_index = 0
        self.fitted = True
        if image is not None:
            self.view = fit_view(image.shape, self._width, self._height)
        else:
            self.view = ViewState(0.5, 0.5)
        self._changed("image")

    @property
    def size(self) -> tuple[int, int]:
        """The screen's logical width and height."""
        return self._width, self._height

    @property
    def device_pixel_ratio(self) -> float:
        return self._dpr

    def physical_size(self) -> tuple[int, int]:
        """The rendered frame's width and height in physical pixels."""
        return max(1, round(self._width * self._dpr)), max(1, round(self._height * self._dpr))

    def set_screen(self, width: int, height: int, device_pixel_ratio: float = 1.0) -> None:
        """Tell the model the widget's logical size and pixel ratio; a fitted view refits."""
        width, height = max(1, int(width)), max(1, int(height))
        dpr = float(device_pixel_ratio) if device_pixel_ratio > 0 else 1.0
        if (width, height, dpr) == (self._width, self._height, self._dpr):
            return
        self._width, self._height, self._dpr = width, height, dpr
        if self.fitted:
            self._refit()

    def _refit(self) -> None:
        if self._image is None:
            return
        fitted = fit_view(
            self._image.shape,
            self._width,
            self._height,
            rotation=self.view.rotation,
            flip_h=self.view.flip_h,
        )
        self.view = replace(fitted, voi=self.view.voi, invert=self.view.invert)

    def fit_zoom(self) -> float:
        """The zoom at which the whole image just fits the screen."""
        if self._image is None:
            return 1.0
        return fit_view(
            self._image.shape, self._width, self._height, rotation=self.view.rotation
        ).zoom

    # ------------------------------------------------------------------ mapping

    def to_image(self, x: float, y: float) -> Point:
        """The image point (x, y) under the screen point (x, y)."""
        return screen_to_image(self.view, self._width, self._height, x, y)

    def to_screen(self, x: float, y: float) -> Point:
        """The screen point showing the image point (x, y)."""
        return image_to_screen(self.view, self._width, self._height, x, y)

    def value_at(self, x: float, y: float) -> float | None:
        """The modality value of the image pixel under the screen point, None off the image."""
        if self._image is None:
            return None
        ix, iy = self.to_image(x, y)
        rows, cols = self._image.shape
        if not (0 <= ix < cols and 0 <= iy < rows):
            return None
        return self._image.value_at(int(iy), int(ix))

    # ------------------------------------------------------------------ zoom and pan

    def _zoom_limits(self) -> tuple[float, float]:
        fit = self.fit_zoom()
        low = min(fit * MIN_ZOOM_OF_FIT, 1.0 / self._dpr)
        return low, max(MAX_PHYSICAL_ZOOM / self._dpr, fit * 2)

    def zoom_at(self, factor: float, x: float | None = None, y: float | None = None) -> None:
        """Zoom by ``factor`` keeping the image point under screen (x, y) (default: centre)."""
        if self._image is None or not (math.isfinite(factor) and factor > 0):
            return
        sx = self._width / 2 if x is None else x
        sy = self._height / 2 if y is None else y
        low, high = self._zoom_limits()
        # A joint view may be closer than the wheel's limit: zooming in from it must not zoom out.
        high = max(high, self.view.zoom)
        self._set_zoom_keeping(min(high, max(low, self.view.zoom * factor)), sx, sy)

    def _set_zoom_keeping(self, zoom: float, sx: float, sy: float) -> None:
        before = self.to_image(sx, sy)
        self.view = replace(self.view, zoom=zoom)
        after = self.to_image(sx, sy)
        self._set_center(
            self.view.center_x + before[0] - after[0], self.view.center_y + before[1] - after[1]
        )
        self.fitted = False
        self._changed("geometry")

    def zoom_in(self) -> None:
        self.zoom_at(ZOOM_STEP)

    def zoom_out(self) -> None:
        self.zoom_at(1 / ZOOM_STEP)

    def fit(self) -> None:
        """Show the whole image, as large as fits."""
        self.fitted = True
        self._refit()
        self._changed("geometry")

    def one_to_one(self) -> None:
        """One image pixel per physical screen pixel, about the screen centre."""
        if self._image is None:
            return
        self._set_zoom_keeping(1.0 / self._dpr, self._width / 2, self._height / 2)

    def field_pixels(self, field_mm: float) -> float | None:
        """How many image pixels a field ``field_mm`` across spans on this film: from the pixel
        spacing, so every film shows the same millimetres; without one, the default field is
        :data:`NO_SPACING_FIELD_FRACTION` of the film's width (and other fields in proportion).
        None without an image or with a field that is not a positive number."""
        if self._image is None or not (math.isfinite(field_mm) and field_mm > 0):
            return None
        spacing = self._image.spacing
        if spacing is None:
            cols = self._image.shape[1]
            return cols * NO_SPACING_FIELD_FRACTION * field_mm / DEFAULT_FIELD_MM
        return field_mm / math.sqrt(spacing.row_mm * spacing.col_mm)

    def focus_on(self, x: float, y: float, field_mm: float) -> bool:
        """Centre the image point (x, y) on the screen, zoomed so that a field ``field_mm``
        across fills the screen's shorter side (rotation, flip and window are kept). False
        (nothing changed) without an image or a usable field."""
        field = self.field_pixels(field_mm)
        if field is None or not (math.isfinite(x) and math.isfinite(y)):
            return False
        zoom = min(self._width, self._height) / field
        self.view = replace(self.view, zoom=zoom)
        self._set_center(x, y)
        self.fitted = False
        self._changed("geometry")
        return True

    def shown_field_mm(self) -> float | None:
        """The millimetres across the screen's shorter side now (None without a spacing)."""
        if self._image is None or self._image.spacing is None:
            return None
        spacing = self._image.spacing
        return (
            min(self._width, self._height)
            / self.view.zoom
            * math.sqrt(spacing.row_mm * spacing.col_mm)
        )

    def pan_by(self, dx: float, dy: float) -> None:
        """Move the image by (dx, dy) screen pixels (a drag to the right moves it right)."""
        if self._image is None or (dx == 0 and dy == 0):
            return
        cx, cy = self.to_image(self._width / 2 - dx, self._height / 2 - dy)
        self._set_center(cx, cy)
        self.fitted = False
        self._changed("geometry")

    def _set_center(self, cx: float, cy: float) -> None:
        # The screen centre stays on the image, so the image can never be panned out of sight.
        rows, cols = self._image.shape if self._image is not None else (1, 1)
        cx, cy = min(max(cx, 0.0), float(cols)), min(max(cy, 0.0), float(rows))
        self.view = replace(self.view, center_x=cx, center_y=cy)

    # ------------------------------------------------------------------ sync

    def relative_geometry(self) -> tuple[float, float, float]:
        """Zoom relative to fit and the centre as fractions of the image: for synchronising
        visits whose films differ in size."""
        if self._image is None:
            return 1.0, 0.5, 0.5
        rows, cols = self._image.shape
        zoom = self.view.zoom / self.fit_zoom()
        return zoom, self.view.center_x / cols, self.view.center_y / rows

    def set_relative_geometry(self, geometry: tuple[float, float, float]) -> None:
        """Apply another viewer's :meth:`relative_geometry` (zoom and pan only)."""
        if self._image is None:
            return
        relative_zoom, fx, fy = geometry
        rows, cols = self._image.shape
        self.view = replace(self.view, zoom=relative_zoom * self.fit_zoom())
        self._set_center(fx * cols, fy * rows)
        self.fitted = max(abs(relative_zoom - 1.0), abs(fx - 0.5), abs(fy - 0.5)) < 1e-9
        self._changed("geometry")

    # ------------------------------------------------------------------ window and polarity

    @property
    def presets(self) -> tuple[Preset, ...]:
        """The header's presets, then the automatic window."""
        if self._image is None:
            return ()
        return (*self._image.presets, self._image.automatic)

    def current_voi(self) -> VoiTransform | None:
        """The window or VOI LUT in use."""
        if self._image is None:
            return None
        return self._image.default_preset.voi if self.view.voi is None else self.view.voi

    def current_window(self) -> Window | None:
        """The window in use, or the automatic window when a VOI LUT is in use."""
        if self._image is None:
            return None
        voi = self.current_voi()
        return voi if isinstance(voi, Window) else self._image.automatic.voi  # type: ignore[return-value]

    def set_preset(self, index: int) -> None:
        """Use preset ``index`` of :attr:`presets`."""
        presets = self.presets
        if not presets:
            return
        index %= len(presets)
        self.view = replace(self.view, voi=presets[index].voi)
        self.preset_index = index
        self._changed("window")

    def cycle_preset(self, step: int = 1) -> None:
        """The next (or previous) preset; from a dragged window, the first."""
        if not self.presets:
            return
        start = -1 if self.preset_index is None and step > 0 else (self.preset_index or 0)
        self.set_preset(start + step)

    def set_window(self, window: Window) -> None:
        """Use a window of the reader's own (centre and width in modality units)."""
        if self._image is None:
            return
        self.view = replace(self.view, voi=window)
        self.preset_index = None
        self._changed("window")

    def begin_window_drag(self) -> None:
        """Start a window/level drag from the window now in use."""
        self._drag_window = self.current_window()

    def drag_window(self, dx: float, dy: float) -> None:
        """The window after dragging (dx, dy) screen pixels from :meth:`begin_window_drag`.

        Right widens the window (less contrast), left narrows it; down raises the centre
        (darker), up lowers it. A drag of :data:`WINDOW_DRAG_PIXELS` changes either by the
        starting width, so the feel is the same for 8-bit and 16-bit images.
        """
        start = self._drag_window or self.current_window()
        if start is None:
            return
        step = max(start.width, 1.0) / WINDOW_DRAG_PIXELS
        minimum = 1.0 if start.function == "LINEAR" else 1e-3
        width = max(minimum, start.width + dx * step)
        self.set_window(Window(start.center + dy * step, width, start.function))

    def end_window_drag(self) -> None:
        self._drag_window = None

    def toggle_invert(self) -> None:
        """Swap black and white (on top of the bone-bright polarity)."""
        self.view = replace(self.view, invert=not self.view.invert)
        self._changed("window")

    # ------------------------------------------------------------------ orientation

    def rotate(self, quarter_turns: int = 1) -> None:
        """Turn the image clockwise by quarter turns (negative: counter-clockwise)."""
        if self._image is None:
            return
        self.view = replace(self.view, rotation=(self.view.rotation + quarter_turns) % 4)
        if self.fitted:
            self._refit()
        self._changed("geometry")

    def flip(self) -> None:
        """Mirror the image left-right."""
        if self._image is None:
            return
        self.view = replace(self.view, flip_h=not self.view.flip_h)
        self._changed("geometry")

    def patient_right_on_left(self) -> bool:
        """Whether the patient's right shows on the viewer's left now: from the header's
        Patient Orientation, then the reader's rotation and flip. A header that says nothing
        of left and right (or no image) means the conventional display as stored: the
        patient's right on the image's left, so only the reader's own turns change it."""
        dx, dy = patient_left_vector(self._image.patient_orientation if self._image else ())
        if (dx, dy) == (0, 0):
            dx = 1  # silent: stored as conventionally displayed
        x0, _ = self.to_screen(0.0, 0.0)
        x_col, _ = self.to_screen(1.0, 0.0)
        x_row, _ = self.to_screen(0.0, 1.0)
        towards_left = dx * (x_col - x0) + dy * (x_row - x0)  # screen x of the patient's left
        return towards_left > 0 if abs(towards_left) > 1e-12 else True

    def reset(self) -> None:
        """Back to how the image first showed: fitted, upright, default preset, no overlays."""
        if self._image is not None:
            self.view = fit_view(self._image.shape, self._width, self._height)
        self.fitted = True
        self.preset_index = 0
        self.ruler = None
        self.loupe_on = False
        self._changed("geometry")
        self._changed("window")

    # ------------------------------------------------------------------ ruler and loupe

    @property
    def can_measure(self) -> bool:
        """Whether the image has a pixel spacing to measure with."""
        return self._image is not None and self._image.spacing is not None

    def _clamped_image_point(self, x: float, y: float) -> Point:
        ix, iy = self.to_image(x, y)
        rows, cols = self._image.shape if self._image is not None else (1, 1)
        return min(max(ix, 0.0), float(cols)), min(max(iy, 0.0), float(rows))

    def start_ruler(self, x: float, y: float) -> bool:
        """Start a ruler at the screen point; False (and no ruler) without a spacing."""
        if not self.can_measure:
            self.ruler = None
            return False
        point = self._clamped_image_point(x, y)
        self.ruler = Ruler(point, point)
        self._changed("overlay")
        return True

    def move_ruler(self, x: float, y: float) -> None:
        """Move the ruler's free end to the screen point."""
        if self.ruler is None:
            return
        self.ruler = Ruler(self.ruler.start, self._clamped_image_point(x, y))
        self._changed("overlay")

    def clear_ruler(self) -> None:
        self.ruler = None
        self._changed("overlay")

    def ruler_mm(self) -> float | None:
        """The ruler's length in mm; None with no ruler or no spacing."""
        if self.ruler is None or self._image is None or self._image.spacing is None:
            return None
        spacing = self._image.spacing
        dx = self.ruler.end[0] - self.ruler.start[0]
        dy = self.ruler.end[1] - self.ruler.start[1]
        return spacing.distance_mm(dy, dx)

    def toggle_loupe(self) -> None:
        self.loupe_on = not self.loupe_on
        self._changed("overlay")

    def set_loupe_factor(self, factor: float) -> None:
        """The loupe's magnification, kept within 2 to 4."""
        self.loupe_factor = min(LOUPE_FACTORS[-1], max(LOUPE_FACTORS[0], factor))
        self._changed("overlay")

    def move_loupe(self, x: float, y: float) -> None:
        self.loupe_at = (x, y)
        if self.loupe_on:
            self._changed("overlay")

    # ------------------------------------------------------------------ pixels

    def physical_view(self) -> ViewState:
        """The view at physical pixels (the zoom times the pixel ratio)."""
        width, _ = self.physical_size()
        return replace(self.view, zoom=self.view.zoom * width / self._width)

    def render(self) -> npt.NDArray[np.uint8]:
        """The frame: physical rows × columns of 8-bit pixels (black where no image)."""
        out_w, out_h = self.physical_size()
        if self._image is None:
            return np.zeros((out_h, out_w), dtype=np.uint8)
        view = self.physical_view()
        key = (
            id(self._image),
            view.center_x,
            view.center_y,
            view.zoom,
            view.rotation,
            view.flip_h,
            out_w,
            out_h,
        )
        if self._samples is not None and self._samples[0] == key:
            samples = self._samples[1]
        else:
            samples = sample_viewport(self._image.pyramid, view, out_w, out_h)
            self._samples = (key, samples)
        return window_samples(samples, self._image.display_lut(view.voi, invert=view.invert))

    def render_loupe(self, size: int) -> npt.NDArray[np.uint8] | None:
        """The loupe's frame (``size`` logical pixels square, at physical pixels) magnified
        ``loupe_factor`` times around :attr:`loupe_at`; None when the loupe is off."""
        if not self.loupe_on or self.loupe_at is None or self._image is None:
            return None
        side = max(1, round(size * self._dpr))
        cx, cy = self.to_image(*self.loupe_at)
        zoom = self.view.zoom * self.loupe_factor * self._dpr
        view = replace(self.view, center_x=cx, center_y=cy, zoom=zoom)
        return render_viewport(self._image, view, side, side)

    def readout(self) -> str:
        """A one-line summary: window, zoom, inversion (nothing about the patient)."""
        if self._image is None:
            return ""
        voi = self.current_voi()
        if isinstance(voi, Window):
            text = f"W {voi.width:.0f}  L {voi.center:.0f}"
        elif self.preset_index is not None and self.preset_index < len(self.presets):
            text = self.presets[self.preset_index].name
        else:
            text = "VOI LUT"
        text += f"   {self.view.zoom * self._dpr * 100:.0f}%"
        if self.view.invert:
            text += "   inverted"
        return text
