"""Stored values, modality transform and bone-bright polarity (scorer.imaging.pixels)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut

from scorer.imaging.pixels import (
    ImageFormatError,
    LookupTable,
    ModalityTransform,
    bone_bright_polarity,
    lookup_table,
    modality_transform,
    padding_range,
    read_dataset,
    stored_values,
)

MakeDataset = Callable[..., Dataset]


def test_read_dataset_refuses_a_file_that_is_not_dicom(tmp_path: Path) -> None:
    path = tmp_path / "note.dcm"
    path.write_bytes(b"not a radiograph at all" * 20)
    with pytest.raises(ImageFormatError, match="not a DICOM file"):
        read_dataset(path)


def test_read_dataset_without_pixels_keeps_the_header(rg3_path: Path) -> None:
    ds = read_dataset(rg3_path, pixels=False)
    assert "PixelData" not in ds
    assert ds.PhotometricInterpretation == "MONOCHROME1"


def test_stored_values_of_a_real_cr_file(rg3_path: Path) -> None:
    values = stored_values(read_dataset(rg3_path))
    assert values.shape == (1760, 1760)
    assert values.dtype == np.uint16
    assert values.min() >= 0 and values.max() <= 1023  # Bits Stored 10
    assert values.flags.c_contiguous


def test_colour_images_are_refused(make_dataset: MakeDataset) -> None:
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    with pytest.raises(ImageFormatError, match="only greyscale"):
        stored_values(make_dataset(rgb, photometric="RGB"))


def test_palette_colour_is_refused(make_dataset: MakeDataset) -> None:
    ds = make_dataset(np.zeros((4, 4), np.uint8), photometric="PALETTE COLOR")
    with pytest.raises(ImageFormatError, match="PALETTE COLOR"):
        stored_values(ds)


def test_multi_frame_images_show_frame_zero(make_dataset: MakeDataset) -> None:
    frames = np.stack([np.full((6, 5), 7, np.uint16), np.full((6, 5), 9, np.uint16)])
    values = stored_values(make_dataset(frames, bits_stored=12))
    assert values.shape == (6, 5)
    assert (values == 7).all()


def test_a_dataset_without_pixels_is_refused(make_dataset: MakeDataset) -> None:
    ds = make_dataset(np.zeros((4, 4), np.uint16))
    del ds.PixelData
    with pytest.raises(ImageFormatError, match="no pixel data"):
        stored_values(ds)


def test_signed_stored_values_are_sign_extended(make_dataset: MakeDataset) -> None:
    values = np.array([[-2048, -1, 0, 2047]], dtype=np.int16)
    decoded = stored_values(make_dataset(values, bits_stored=12))
    assert decoded.dtype == np.int16
    np.testing.assert_array_equal(decoded, values)


def test_rescale_slope_and_intercept(make_dataset: MakeDataset) -> None:
    values = np.array([[0, 1, 100, 4095]], dtype=np.uint16)
    ds = make_dataset(values, bits_stored=12, RescaleSlope="0.5", RescaleIntercept="-1024")
    transform = modality_transform(ds)
    expected = np.array([[-1024.0, -1023.5, -974.0, 1023.5]])
    np.testing.assert_array_equal(transform.apply(values), expected)
    np.testing.assert_allclose(transform.apply(values), apply_modality_lut(values, ds))


def test_no_rescale_is_the_identity(make_dataset: MakeDataset) -> None:
    transform = modality_transform(make_dataset(np.zeros((2, 2), np.uint16)))
    assert transform.is_identity
    np.testing.assert_array_equal(transform.apply([3, 9]), [3.0, 9.0])


def test_zero_rescale_slope_is_refused(make_dataset: MakeDataset) -> None:
    ds = make_dataset(np.zeros((2, 2), np.uint16), RescaleSlope="0", RescaleIntercept="0")
    with pytest.raises(ImageFormatError, match="Rescale"):
        modality_transform(ds)


def _lut_item(descriptor: list[int], data: Any, explanation: str = "") -> Dataset:
    item = Dataset()
    item.LUTDescriptor = descriptor
    item.LUTData = data
    if explanation:
        item.LUTExplanation = explanation
    item.ModalityLUTType = "US"
    return item


def test_modality_lut_sequence_maps_stored_values(make_dataset: MakeDataset) -> None:
    # Four entries starting at stored value 10: below 10 → first entry, above 13 → last.
    values = np.array([[0, 10, 11, 12, 13, 14, 400]], dtype=np.uint16)
    ds = make_dataset(values, bits_stored=12)
    ds.ModalityLUTSequence = [_lut_item([4, 10, 16], [100, 200, 300, 65535])]
    transform = modality_transform(ds)
    assert transform.lut is not None
    expected = [[100, 100, 200, 300, 65535, 65535, 65535]]
    np.testing.assert_array_equal(transform.apply(values), expected)
    np.testing.assert_array_equal(transform.apply(values), apply_modality_lut(values, ds))


def test_modality_lut_wins_over_rescale(make_dataset: MakeDataset) -> None:
    ds = make_dataset(np.zeros((2, 2), np.uint16), RescaleSlope="2", RescaleIntercept="5")
    ds.ModalityLUTSequence = [_lut_item([2, 0, 16], [7, 8])]
    np.testing.assert_array_equal(modality_transform(ds).apply([0, 1, 2]), [7, 8, 8])


def test_lut_descriptor_with_signed_first_value() -> None:
    # 65534 read as US is −2 when the input values are signed.
    table = lookup_table(_lut_item([3, 65534, 16], [1, 2, 3]), signed_input=True)
    assert table.first_mapped == -2
    np.testing.assert_array_equal(table.apply([-5, -2, -1, 0, 9]), [1, 1, 2, 3, 3])


def test_lut_with_zero_descriptor_count_has_65536_entries() -> None:
    entries = np.arange(65536, dtype=np.uint16)[::-1]
    table = lookup_table(_lut_item([0, 0, 16], entries.tobytes()))
    assert table.entries.size == 65536
    assert table.apply([0])[0] == 65535


def test_lut_data_shorter_than_its_descriptor_is_an_error() -> None:
    with pytest.raises(ValueError, match="entries"):
        lookup_table(_lut_item([8, 0, 16], [1, 2, 3]))


def test_lookup_table_clamps_outside_its_range() -> None:
    table = LookupTable(5, 8, np.array([10, 20, 30], dtype=np.int64))
    np.testing.assert_array_equal(table.apply([0, 5, 6.7, 7, 1000]), [10, 10, 20, 30, 30])
    assert table.max_output == 255


@pytest.mark.parametrize(
    ("photometric", "shape", "invert"),
    [
        ("MONOCHROME1", None, True),
        ("MONOCHROME1", "INVERSE", True),  # DX pairs them: still one inversion
        ("MONOCHROME1", "IDENTITY", True),
        ("MONOCHROME2", None, False),
        ("MONOCHROME2", "IDENTITY", False),
        ("MONOCHROME2", "INVERSE", True),
    ],
)
def test_polarity_for_bone_bright(
    make_dataset: MakeDataset, photometric: str, shape: str | None, invert: bool
) -> None:
    ds = make_dataset(np.zeros((2, 2), np.uint16), photometric=photometric)
    if shape:
        ds.PresentationLUTShape = shape
    polarity = bone_bright_polarity(ds)
    assert polarity.invert is invert
    assert polarity.reason
    assert polarity.warning == ""


def test_polarity_warns_when_intensity_sign_disagrees(make_dataset: MakeDataset) -> None:
    ds = make_dataset(np.zeros((2, 2), np.uint16), photometric="MONOCHROME2")
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = 1  # low values are bone, yet shown dark
    polarity = bone_bright_polarity(ds)
    assert polarity.invert is False
    assert "check the polarity" in polarity.warning
    ds.PixelIntensityRelationshipSign = -1
    assert bone_bright_polarity(ds).warning == ""


def test_polarity_of_the_real_cr_file(rg3_path: Path) -> None:
    assert bone_bright_polarity(read_dataset(rg3_path, pixels=False)).invert


def test_padding_range(make_dataset: MakeDataset) -> None:
    ds = make_dataset(np.zeros((2, 2), np.uint16))
    assert padding_range(ds) is None
    ds.PixelPaddingValue = 0
    ds.PixelPaddingRangeLimit = 10
    padding = padding_range(ds)
    assert padding is not None and (padding.low, padding.high) == (0, 10)
    np.testing.assert_array_equal(padding.mask(np.array([0, 10, 11])), [True, True, False])


def test_modality_transform_default_is_identity() -> None:
    assert ModalityTransform().is_identity
    assert not ModalityTransform(slope=2.0).is_identity
