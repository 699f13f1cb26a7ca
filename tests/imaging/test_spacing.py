"""Pixel spacing and the plane its millimetres belong to (scorer.imaging.spacing)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset

from scorer.imaging.pixels import read_dataset
from scorer.imaging.spacing import Spacing, pixel_spacing

MakeDataset = Callable[..., Dataset]


@pytest.fixture
def header(make_dataset: MakeDataset) -> Dataset:
    return make_dataset(np.zeros((2, 2), np.uint16))


def test_no_spacing_means_none(header: Dataset) -> None:
    assert pixel_spacing(header) is None


def test_zero_spacing_on_a_real_cr_file_counts_as_absent(testdata: Callable[[str], Path]) -> None:
    ds = read_dataset(testdata("RG1_UNCR.dcm"), pixels=False)
    assert [float(v) for v in ds.PixelSpacing] == [0.0, 0.0]
    assert pixel_spacing(ds) is None


@pytest.mark.parametrize("value", [[0, 0.1], [0.1], [-0.1, 0.1], [0.1, 0.1, 0.1]])
def test_unusable_spacing_counts_as_absent(header: Dataset, value: list[object]) -> None:
    header.ImagerPixelSpacing = value
    assert pixel_spacing(header) is None


@pytest.mark.parametrize("damaged", [b"x.1", b"nan", b"inf"])
def test_unreadable_spacing_in_a_file_counts_as_absent(
    header: Dataset, tmp_path: Path, damaged: bytes
) -> None:
    header.ImagerPixelSpacing = [0.1, 0.2]
    path = tmp_path / "damaged.dcm"
    header.save_as(path, enforce_file_format=True)
    path.write_bytes(path.read_bytes().replace(b"0.1\\0.2", damaged + b"\\0.2"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the invalid DS value
        assert pixel_spacing(read_dataset(path, pixels=False)) is None


def test_imager_pixel_spacing_is_at_the_detector(header: Dataset) -> None:
    header.ImagerPixelSpacing = [0.15, 0.1]
    spacing = pixel_spacing(header)
    assert spacing is not None
    assert (spacing.row_mm, spacing.col_mm) == (0.15, 0.1)
    assert spacing.source == "ImagerPixelSpacing"
    assert "detector" in spacing.note and "no magnification factor" in spacing.note
    assert spacing.magnification is None


def test_imager_pixel_spacing_with_magnification_factor(header: Dataset) -> None:
    header.ImagerPixelSpacing = [0.1, 0.1]
    header.EstimatedRadiographicMagnificationFactor = 1.08
    spacing = pixel_spacing(header)
    assert spacing is not None and spacing.magnification == pytest.approx(1.08)
    assert "x1.08" in spacing.note


def test_pixel_spacing_calibrated_by_geometry(header: Dataset) -> None:
    header.ImagerPixelSpacing = [0.1, 0.1]
    header.PixelSpacing = [0.0926, 0.0926]
    header.PixelSpacingCalibrationType = "GEOMETRY"
    header.PixelSpacingCalibrationDescription = "SID 110 cm"
    spacing = pixel_spacing(header)
    assert spacing is not None and spacing.source == "PixelSpacing"
    assert spacing.row_mm == pytest.approx(0.0926)
    assert "GEOMETRY" in spacing.note and "SID 110 cm" in spacing.note
    assert "at the patient" in spacing.note


def test_pixel_spacing_calibrated_on_a_fiducial(header: Dataset) -> None:
    header.PixelSpacing = [0.09, 0.09]
    header.PixelSpacingCalibrationType = "FIDUCIAL"
    spacing = pixel_spacing(header)
    assert spacing is not None and "FIDUCIAL" in spacing.note and "fiducial" in spacing.note


def test_pixel_spacing_equal_to_imager_spacing_is_still_the_detector(header: Dataset) -> None:
    header.PixelSpacing = [0.1, 0.1]
    header.ImagerPixelSpacing = [0.1, 0.1]
    spacing = pixel_spacing(header)
    assert spacing is not None and spacing.source == "PixelSpacing"
    assert "equals Imager Pixel Spacing" in spacing.note and "detector" in spacing.note


def test_pixel_spacing_explained_by_the_magnification_factor(header: Dataset) -> None:
    header.ImagerPixelSpacing = [0.108, 0.108]
    header.EstimatedRadiographicMagnificationFactor = 1.08
    header.PixelSpacing = [0.1, 0.1]
    spacing = pixel_spacing(header)
    assert spacing is not None and "divided by the Estimated Radiographic" in spacing.note


def test_pixel_spacing_differing_without_explanation(header: Dataset) -> None:
    header.ImagerPixelSpacing = [0.2, 0.2]
    header.PixelSpacing = [0.1, 0.1]
    spacing = pixel_spacing(header)
    assert spacing is not None and "plane of the millimetres is unknown" in spacing.note


def test_pixel_spacing_alone(header: Dataset) -> None:
    header.PixelSpacing = [0.1, 0.2]
    spacing = pixel_spacing(header)
    assert spacing is not None and (spacing.row_mm, spacing.col_mm) == (0.1, 0.2)
    assert "no calibration information" in spacing.note


def test_zero_pixel_spacing_falls_back_to_imager_spacing(header: Dataset) -> None:
    header.PixelSpacing = [0, 0]
    header.ImagerPixelSpacing = [0.1, 0.1]
    spacing = pixel_spacing(header)
    assert spacing is not None and spacing.source == "ImagerPixelSpacing"


def test_scanned_film_spacing(header: Dataset) -> None:
    header.NominalScannedPixelSpacing = [0.1, 0.1]
    spacing = pixel_spacing(header)
    assert spacing is not None and spacing.source == "NominalScannedPixelSpacing"


def test_distance_uses_row_and_column_spacing() -> None:
    spacing = Spacing(0.2, 0.1, "PixelSpacing", "")
    assert spacing.distance_mm(rows=3, cols=4) == pytest.approx(np.hypot(0.6, 0.4))
    assert spacing.distance_mm(rows=0, cols=10) == pytest.approx(1.0)
