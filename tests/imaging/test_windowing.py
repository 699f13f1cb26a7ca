"""Window presets, VOI functions, automatic window, display tables (scorer.imaging.windowing)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.pixels import apply_voi_lut, apply_windowing

from scorer.imaging.pixels import LookupTable, ModalityTransform, PaddingRange, read_dataset
from scorer.imaging.radiograph import radiograph_from_dataset
from scorer.imaging.render import render_full
from scorer.imaging.windowing import (
    Window,
    apply_lut,
    automatic_window,
    display_lut,
    header_presets,
    parse_window,
    to_display,
    voi_fraction,
)

MakeDataset = Callable[..., Dataset]


def _display(values: list[float], voi: Window | LookupTable) -> list[int]:
    return [int(v) for v in to_display(voi_fraction(values, voi), invert=False)]


def test_linear_window_known_values() -> None:
    # PS3.3 C.11.2.1.2.1 with c = 100, w = 51: black at or below 74.5, white above 124.5.
    window = Window(100, 51, "LINEAR")
    assert _display([74, 74.5, 75, 99.5, 124, 124.5, 125], window) == [0, 0, 3, 128, 252, 255, 255]


def test_linear_exact_window_known_values() -> None:
    window = Window(100, 50, "LINEAR_EXACT")
    assert _display([75, 76, 100, 124, 125, 126], window) == [0, 5, 128, 250, 255, 255]


def test_sigmoid_window_follows_the_standard_formula() -> None:
    window = Window(100, 50, "SIGMOID")
    x = np.linspace(-1000, 1200, 301)
    expected = 1 / (1 + np.exp(-4 * (x - 100) / 50))
    np.testing.assert_allclose(voi_fraction(x, window), expected, atol=1e-12)
    assert _display([75, 100, 125], window) == [30, 128, 225]


def test_linear_width_one_is_a_threshold() -> None:
    assert _display([99, 99.5, 99.6, 101], Window(100, 1)) == [0, 0, 255, 255]


@pytest.mark.parametrize(
    ("center", "width", "function"),
    [(100, 0.5, "LINEAR"), (100, 0, "LINEAR_EXACT"), (100, -3, "SIGMOID"), (math.nan, 5, "LINEAR")],
)
def test_invalid_windows_are_refused(center: float, width: float, function: str) -> None:
    with pytest.raises(ValueError):
        Window(center, width, function)  # type: ignore[arg-type]


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
def test_window_agrees_with_pydicom(make_dataset: MakeDataset, function: str) -> None:
    values = np.arange(0, 4096, 7, dtype=np.uint16).reshape(1, -1)
    ds = make_dataset(values, bits_stored=16)
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = 1500, 801, function
    theirs = apply_windowing(values.astype(np.float64), ds) / 65535.0
    ours = voi_fraction(values, header_presets(ds)[0].voi)
    np.testing.assert_allclose(ours, theirs, atol=1e-9)


def _voi_lut(first: int, entries: list[int], bits: int, explanation: str = "") -> Dataset:
    item = Dataset()
    item.LUTDescriptor = [len(entries), first, bits]
    item.LUTData = entries
    if explanation:
        item.LUTExplanation = explanation
    return item


def test_voi_lut_known_values() -> None:
    table = LookupTable(10, 8, np.array([0, 100, 200, 255], dtype=np.int64))
    assert _display([5, 10, 11, 12, 13, 20], table) == [0, 0, 100, 200, 255, 255]


def test_voi_lut_agrees_with_pydicom(make_dataset: MakeDataset) -> None:
    values = np.arange(0, 1024, dtype=np.uint16).reshape(32, 32)
    ds = make_dataset(values, bits_stored=10)
    entries = [int(4095 * (i / 599) ** 0.5) for i in range(600)]
    ds.VOILUTSequence = [_voi_lut(200, entries, 12, "Gamma")]
    preset = header_presets(ds)[0]
    assert preset.name == "Gamma" and preset.source == "VOI LUT"
    assert isinstance(preset.voi, LookupTable)
    theirs = apply_voi_lut(values, ds)
    np.testing.assert_array_equal(voi_fraction(values, preset.voi) * 4095, theirs)


def test_header_presets_multi_valued_windows_with_explanations(make_dataset: MakeDataset) -> None:
    ds = make_dataset(np.zeros((2, 2), np.uint16), bits_stored=12)
    ds.WindowCenter = [400, 1200, 50]
    ds.WindowWidth = [800, 2000, 0]  # the third is invalid for LINEAR_EXACT and left out
    ds.WindowCenterWidthExplanation = ["BONE", "SOFT", "BAD"]
    ds.VOILUTFunction = "LINEAR_EXACT"
    ds.VOILUTSequence = [_voi_lut(0, [0, 255], 8, "VENDOR CURVE"), _voi_lut(0, [255, 0], 8)]
    presets = header_presets(ds)
    assert [p.name for p in presets] == ["VENDOR CURVE", "VOI LUT 2", "BONE", "SOFT"]
    assert [p.source for p in presets] == ["VOI LUT", "VOI LUT", "header window", "header window"]
    assert presets[2].voi == Window(400, 800, "LINEAR_EXACT")
    assert presets[3].voi == Window(1200, 2000, "LINEAR_EXACT")


def test_header_preset_names_without_explanation(rg3_path: Path) -> None:
    presets = header_presets(read_dataset(rg3_path, pixels=False))
    assert len(presets) == 1
    assert presets[0].name == "Window 550/1024"
    assert presets[0].voi == Window(550, 1024, "LINEAR")


def test_no_header_window_gives_no_presets(make_dataset: MakeDataset) -> None:
    assert header_presets(make_dataset(np.zeros((2, 2), np.uint16))) == ()


def test_automatic_window_ignores_outliers() -> None:
    rng = np.random.default_rng(1)
    values = rng.integers(1000, 2001, size=(400, 400)).astype(np.uint16)
    values.flat[rng.choice(values.size, 200, replace=False)] = 65535  # hot pixels, 0.125 %
    values.flat[rng.choice(values.size, 200, replace=False)] = 0  # dead pixels
    window = automatic_window(values, ModalityTransform())
    assert 990 <= window.lower <= 1020 and 1980 <= window.upper <= 2010
    assert window.function == "LINEAR"


def test_automatic_window_is_in_modality_units_and_skips_padding() -> None:
    values = np.full((300, 300), 0, dtype=np.uint16)  # padding around the image
    values[100:200, 100:200] = np.arange(100 * 100).reshape(100, 100) % 101 + 500
    transform = ModalityTransform(slope=2.0, intercept=-1000.0)
    window = automatic_window(values, transform, padding=PaddingRange(0, 0))
    assert window.lower == pytest.approx(0.0, abs=2) and window.upper == pytest.approx(200, abs=2)
    unpadded = automatic_window(values, transform)
    assert unpadded.lower == pytest.approx(-1000.0)


def test_display_lut_folds_modality_window_and_inversion() -> None:
    transform = ModalityTransform(slope=2.0, intercept=-100.0)
    window = Window(0, 200, "LINEAR_EXACT")
    lut = display_lut(transform, window, invert=False, first_stored=0, count=101)
    assert (lut[0], lut[50], lut[100]) == (0, 128, 255)
    inverted = display_lut(transform, window, invert=True, first_stored=0, count=101)
    np.testing.assert_array_equal(inverted, 255 - lut)
    shifted = display_lut(transform, window, invert=False, first_stored=-10, count=111)
    np.testing.assert_array_equal(shifted[10:], lut)


def test_apply_lut_is_a_lookup_and_clamps_past_the_end() -> None:
    lut = np.arange(10, dtype=np.uint8) * 20
    indices = np.array([[0, 3, 9], [9, 12, 65535]], dtype=np.uint16)
    np.testing.assert_array_equal(apply_lut(indices, lut), [[0, 60, 180], [180, 180, 180]])
    big = np.random.default_rng(0).integers(0, 10, size=(700, 301)).astype(np.uint16)
    np.testing.assert_array_equal(apply_lut(big, lut), lut[big])


def test_parse_window() -> None:
    assert parse_window("550,1024") == Window(550, 1024)
    assert parse_window("-500.5, 2000") == Window(-500.5, 2000)
    for text in ("550", "a,b", "1,2,3", "100,0"):
        with pytest.raises(ValueError):
            parse_window(text)


def test_rescale_then_voi_lut_sequence_gives_known_pixels(make_dataset: MakeDataset) -> None:
    # Modality values 10 s + 5; VOI LUT of 64 8-bit entries 4 i for inputs 10, 11, ...
    stored = np.arange(8, dtype=np.uint16).reshape(2, 4)
    ds = make_dataset(stored, bits_stored=12, RescaleSlope="10", RescaleIntercept="5")
    ds.VOILUTSequence = [_voi_lut(10, [4 * i for i in range(64)], 8)]
    pixels = render_full(radiograph_from_dataset(ds))
    np.testing.assert_array_equal(pixels, [[0, 20, 60, 100], [140, 180, 220, 252]])
    ds.PhotometricInterpretation = "MONOCHROME1"
    inverted = render_full(radiograph_from_dataset(ds))
    np.testing.assert_array_equal(inverted, 255 - pixels)


def test_rescale_then_header_window_gives_known_pixels(make_dataset: MakeDataset) -> None:
    stored = np.array([[0, 924, 1024, 1124, 2048]], dtype=np.uint16)
    ds = make_dataset(stored, bits_stored=12, RescaleSlope="1", RescaleIntercept="-1024")
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = 0, 200, "LINEAR_EXACT"
    np.testing.assert_array_equal(render_full(radiograph_from_dataset(ds)), [[0, 0, 128, 255, 255]])


def test_signed_stored_values_with_window(make_dataset: MakeDataset) -> None:
    stored = np.array([[-1000, -100, 0, 100, 1000]], dtype=np.int16)
    ds = make_dataset(stored, bits_stored=16)
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = 0, 200, "LINEAR_EXACT"
    np.testing.assert_array_equal(render_full(radiograph_from_dataset(ds)), [[0, 0, 128, 255, 255]])


@pytest.mark.parametrize("option", ["+te", "+ti", "+tb"])
@pytest.mark.parametrize("as_words", [False, True])
def test_voi_lut_data_survives_every_byte_order(
    write_dataset: Callable[..., Path],
    dcmtk: Callable[..., None],
    tmp_path: Path,
    option: str,
    as_words: bool,
) -> None:
    entries = [(i * 37) % 4096 for i in range(300)]
    item = Dataset()
    item.LUTDescriptor = [300, 100, 12]
    if as_words:  # OW: raw 16-bit words
        item.add_new(0x00283006, "OW", np.asarray(entries, dtype="<u2").tobytes())
    else:  # US: a list of values
        item.add_new(0x00283006, "US", entries)
    path = write_dataset(np.zeros((4, 4), np.uint16), bits_stored=12, VOILUTSequence=[item])
    converted = tmp_path / "converted.dcm"
    dcmtk("dcmconv", option, path, converted)
    table = header_presets(read_dataset(converted))[0].voi
    assert isinstance(table, LookupTable)
    assert table.first_mapped == 100
    np.testing.assert_array_equal(table.entries, entries)
