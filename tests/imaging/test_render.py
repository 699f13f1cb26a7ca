"""Viewport rendering, bone-bright polarity and PNG export (scorer.imaging.render)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image
from pydicom.dataset import Dataset

from scorer.imaging.pixels import ModalityTransform, Polarity
from scorer.imaging.pyramid import build_pyramid
from scorer.imaging.radiograph import Radiograph, open_radiograph, radiograph_from_dataset
from scorer.imaging.render import (
    ViewState,
    export_png,
    fit_view,
    image_to_screen,
    render_full,
    render_viewport,
    sample_viewport,
    screen_to_image,
    window_samples,
)
from scorer.imaging.windowing import Preset, Window, automatic_window

MakeDataset = Callable[..., Dataset]


def reference_halving(values: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    rows, cols = values.shape
    padded = np.pad(values.astype(np.int64), ((0, rows % 2), (0, cols % 2)), mode="edge")
    total = padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2).sum(axis=(1, 3))
    return (total + 2) // 4


def reference_window(values: npt.NDArray[Any], window: Window, invert: bool) -> npt.NDArray[Any]:
    """PS3.3 LINEAR window to 8 bits, written out per pixel in float (no lookup table)."""
    x = values.astype(np.float64)
    c, w = window.center, window.width
    y = np.where(
        x <= c - 0.5 - (w - 1) / 2,
        0.0,
        np.where(x > c - 0.5 + (w - 1) / 2, 1.0, (x - (c - 0.5)) / (w - 1) + 0.5),
    )
    out = np.floor(y * 255 + 0.5).astype(np.int64)
    return 255 - out if invert else out


def make_radiograph(
    stored: npt.NDArray[Any], window: Window, *, invert: bool = False
) -> Radiograph:
    preset = Preset("test", window, "header window")
    return Radiograph(
        pyramid=build_pyramid(stored),
        modality=ModalityTransform(),
        polarity=Polarity(invert, "test"),
        presets=(preset,),
        automatic=preset,
        spacing=None,
    )


@pytest.mark.parametrize("invert", [False, True])
def test_window_on_the_cache_equals_window_on_the_full_image(
    rg3_values: npt.NDArray[np.uint16], invert: bool
) -> None:
    # RG3 is 1760 x 1760: levels 880, 440, 220 are exact halvings.
    window = Window(550, 1024)
    image = make_radiograph(rg3_values, window, invert=invert)
    rows, cols = image.shape
    reference: npt.NDArray[Any] = rg3_values
    for level in range(len(image.pyramid.levels)):
        if level:
            reference = reference_halving(reference)
        zoom = 1 / 2**level
        out_h, out_w = reference.shape
        view = ViewState(cols / 2, rows / 2, zoom)
        shown = render_viewport(image, view, out_w, out_h)
        assert sample_viewport(image.pyramid, view, out_w, out_h).level == level
        np.testing.assert_array_equal(shown, reference_window(reference, window, invert))


def test_window_on_a_cropped_viewport_equals_the_full_image_crop(
    rg3_values: npt.NDArray[np.uint16],
) -> None:
    window = Window(400, 700)
    image = make_radiograph(rg3_values, window)
    level1 = reference_halving(rg3_values)
    # A 300 x 200 viewport at zoom 1/2 whose top-left screen pixel shows level-1 pixel (50, 120).
    view = ViewState(center_x=(120 + 150) * 2, center_y=(50 + 100) * 2, zoom=0.5)
    shown = render_viewport(image, view, 300, 200)
    np.testing.assert_array_equal(shown, reference_window(level1[50:250, 120:420], window, False))


def test_render_from_the_disk_cache_equals_render_from_memory(
    rg3_path: Path, tmp_path: Path
) -> None:
    in_memory = open_radiograph(rg3_path)
    cached = open_radiograph(rg3_path, cache_dir=tmp_path)
    again = open_radiograph(rg3_path, cache_dir=tmp_path)
    assert isinstance(again.pyramid.levels[0], np.memmap)
    for image in (cached, again):
        for zoom in (1.0, 0.37, 0.11):
            view = ViewState(700.5, 900.25, zoom, rotation=1, flip_h=True)
            np.testing.assert_array_equal(
                render_viewport(image, view, 320, 240), render_viewport(in_memory, view, 320, 240)
            )
    assert cached.automatic.voi == in_memory.automatic.voi


@pytest.mark.parametrize("rotation", [0, 1, 2, 3])
@pytest.mark.parametrize("flip_h", [False, True])
def test_rotation_and_flip_match_numpy(rotation: int, flip_h: bool) -> None:
    stored = np.arange(7 * 5, dtype=np.uint16).reshape(7, 5) * 7
    image = make_radiograph(stored, Window(120, 241))
    upright = render_viewport(image, ViewState(2.5, 3.5, 1.0), 5, 7)
    expected = np.rot90(upright, k=-rotation)  # clockwise quarter turns
    if flip_h:
        expected = np.fliplr(expected)
    out_h, out_w = expected.shape
    view = ViewState(2.5, 3.5, 1.0, rotation=rotation, flip_h=flip_h)
    np.testing.assert_array_equal(render_viewport(image, view, out_w, out_h), expected)


@pytest.mark.parametrize("rotation", [0, 1, 2, 3])
@pytest.mark.parametrize("flip_h", [False, True])
def test_screen_and_image_coordinates_agree_with_the_sampler(rotation: int, flip_h: bool) -> None:
    stored = np.arange(40 * 30, dtype=np.uint16).reshape(40, 30)  # value = row * 30 + col
    image = make_radiograph(stored, Window(600, 1201))
    view = ViewState(13.3, 21.7, 2.5, rotation=rotation, flip_h=flip_h)
    samples = sample_viewport(image.pyramid, view, 50, 40)
    for sx, sy in [(0, 0), (49, 0), (0, 39), (25, 20), (31, 7)]:
        x, y = screen_to_image(view, 50, 40, sx + 0.5, sy + 0.5)
        value = samples.values[sy - samples.rows.start, sx - samples.cols.start]
        assert value == int(np.floor(y)) * 30 + int(np.floor(x))
        back = image_to_screen(view, 50, 40, x, y)
        assert back == pytest.approx((sx + 0.5, sy + 0.5))


def test_off_image_pixels_are_black_and_magnified_pixels_repeat() -> None:
    stored = np.full((4, 4), 1000, dtype=np.uint16)
    image = make_radiograph(stored, Window(0, 10))  # everything white
    shown = render_viewport(image, ViewState(2, 2, 2.0), 12, 10)  # 8 x 8 image in 12 x 10
    assert (shown[1:9, 2:10] == 255).all()
    shown[1:9, 2:10] = 0
    assert (shown == 0).all()
    far_away = render_viewport(image, ViewState(500, 500, 1.0), 10, 10)
    assert (far_away == 0).all()


def test_fit_view_shows_the_whole_image() -> None:
    view = fit_view((3000, 2400), 1600, 1000)
    assert view.zoom == pytest.approx(1000 / 3000)
    assert (view.center_x, view.center_y) == (1200, 1500)
    turned = fit_view((3000, 2400), 1600, 1000, rotation=1)
    assert turned.zoom == pytest.approx(min(1600 / 3000, 1000 / 2400))


def test_reader_invert_complements_the_default(rg3_path: Path) -> None:
    image = open_radiograph(rg3_path)
    view = fit_view(image.shape, 200, 150)
    normal = render_viewport(image, view, 200, 150)
    view.invert = True
    inverted = render_viewport(image, view, 200, 150)
    inside = (slice(0, 150), slice(25, 175))  # the image fills the middle 150 x 150
    np.testing.assert_array_equal(inverted[inside], 255 - normal[inside])


def test_window_samples_reuses_a_sampled_viewport(rg3_path: Path) -> None:
    image = open_radiograph(rg3_path)
    view = ViewState(880, 880, 0.3)
    samples = sample_viewport(image.pyramid, view, 400, 300)
    for window in (Window(500, 800), Window(300, 200)):
        view.voi = window
        redrawn = window_samples(samples, image.display_lut(window))
        np.testing.assert_array_equal(redrawn, render_viewport(image, view, 400, 300))


def test_display_table_is_reused_while_the_window_is_unchanged(rg3_path: Path) -> None:
    image = open_radiograph(rg3_path)
    first = image.display_lut(Window(500, 800))
    assert image.display_lut(Window(500, 800)) is first
    assert image.display_lut(Window(500, 801)) is not first
    assert image.display_lut(None) is image.display_lut(None)


def _mean(pixels: npt.NDArray[np.uint8], region: tuple[slice, slice]) -> float:
    return float(pixels[region].mean())


def test_bone_is_brighter_than_air_on_a_real_cr_file(rg3_path: Path, regions: Any) -> None:
    image = open_radiograph(rg3_path)
    assert image.polarity.invert  # MONOCHROME1
    shown = render_full(image)
    bone, air = _mean(shown, regions.rg3_bone), _mean(shown, regions.rg3_air)
    assert bone > air + 100, (bone, air)
    raw = image.pyramid.levels[0]
    assert raw[regions.rg3_bone].mean() < raw[regions.rg3_air].mean()  # stored: bone is low


def test_bone_is_brighter_than_air_on_the_real_chest_file(
    testdata: Callable[[str], Path], regions: Any
) -> None:
    for name in ("RG1_UNCR.dcm", "RG1_J2KI.dcm"):
        image = open_radiograph(testdata(name))
        shown = render_full(image)
        assert _mean(shown, regions.rg1_bone) > _mean(shown, regions.rg1_air) + 50, name


def test_bone_is_brighter_than_air_on_lossy_jpeg_2000_cr(
    testdata: Callable[[str], Path], regions: Any
) -> None:
    shown = render_full(open_radiograph(testdata("RG3_J2KI.dcm")))
    assert _mean(shown, regions.rg3_bone) > _mean(shown, regions.rg3_air) + 100


def phantom(low_for_bone: bool) -> npt.NDArray[np.uint16]:
    """A 64 x 64 phantom: a bone disc in soft tissue in air, as stored values."""
    yy, xx = np.mgrid[0:64, 0:64]
    attenuation = np.where((yy - 32) ** 2 + (xx - 32) ** 2 < 20**2, 1.0, 0.0)  # soft tissue
    attenuation = attenuation + np.where((yy - 32) ** 2 + (xx - 32) ** 2 < 8**2, 2.0, 0.0)
    exposure = 3000 * np.exp(-attenuation)  # air gets the most X-rays
    values = exposure if low_for_bone else 4095 - exposure
    return np.round(values).astype(np.uint16)


BONE, AIR = (slice(30, 34), slice(30, 34)), (slice(0, 4), slice(0, 4))


@pytest.mark.parametrize(
    ("photometric", "shape", "low_for_bone"),
    [
        ("MONOCHROME1", None, True),
        ("MONOCHROME1", "INVERSE", True),
        ("MONOCHROME2", "INVERSE", True),
        ("MONOCHROME2", None, False),
        ("MONOCHROME2", "IDENTITY", False),
    ],
)
@pytest.mark.parametrize("header_window", [True, False])
def test_bone_is_brighter_than_air_on_constructed_images(
    make_dataset: MakeDataset,
    photometric: str,
    shape: str | None,
    low_for_bone: bool,
    header_window: bool,
) -> None:
    ds = make_dataset(phantom(low_for_bone), bits_stored=12, photometric=photometric)
    if shape:
        ds.PresentationLUTShape = shape
    if header_window:
        ds.WindowCenter, ds.WindowWidth = 2048, 4096
    shown = render_full(radiograph_from_dataset(ds))
    assert _mean(shown, BONE) > _mean(shown, AIR) + 100


def test_default_preset_is_the_header_window_else_automatic(make_dataset: MakeDataset) -> None:
    stored = phantom(False)
    plain = radiograph_from_dataset(make_dataset(stored, bits_stored=12))
    assert plain.presets == () and plain.default_preset is plain.automatic
    assert plain.automatic.voi == automatic_window(stored, ModalityTransform())
    ds = make_dataset(stored, bits_stored=12, WindowCenter=1000, WindowWidth=500)
    assert radiograph_from_dataset(ds).default_preset.voi == Window(1000, 500)


def test_value_at_reads_modality_values(make_dataset: MakeDataset) -> None:
    stored = np.array([[-5, 0], [7, 100]], dtype=np.int16)
    ds = make_dataset(stored, bits_stored=16, RescaleSlope="2", RescaleIntercept="1")
    image = radiograph_from_dataset(ds)
    assert [image.value_at(r, c) for r in (0, 1) for c in (0, 1)] == [-9.0, 1.0, 15.0, 201.0]


def test_render_full_scales_to_max_size(rg3_path: Path) -> None:
    image = open_radiograph(rg3_path)
    assert render_full(image).shape == (1760, 1760)
    thumb = render_full(image, 440)
    assert thumb.shape == (440, 440)
    level2 = render_viewport(image, ViewState(880, 880, 0.25), 440, 440)
    np.testing.assert_array_equal(thumb, level2)


def test_export_png_is_exactly_the_default_display(rg3_path: Path, tmp_path: Path) -> None:
    image = open_radiograph(rg3_path)
    out = export_png(image, tmp_path / "rg3.png")
    with Image.open(out) as png:
        assert png.mode == "L" and png.size == (1760, 1760)
        text_chunks = {k for k in png.info if k not in ("dpi", "gamma", "transparency")}
        assert not text_chunks, png.info  # nothing identifying carried along
        pixels = np.asarray(png)
    np.testing.assert_array_equal(pixels, render_full(image))
    assert [p.name for p in tmp_path.iterdir()] == ["rg3.png"]


def test_export_png_with_a_window_and_size(rg3_path: Path, tmp_path: Path) -> None:
    image = open_radiograph(rg3_path)
    out = export_png(image, tmp_path / "small.png", voi=Window(300, 400), max_size=500)
    with Image.open(out) as png:
        pixels = np.asarray(png)
    np.testing.assert_array_equal(pixels, render_full(image, 500, Window(300, 400)))
    assert pixels.shape == (500, 500)
