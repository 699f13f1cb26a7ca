"""Pixel spacing of a projection radiograph, and which plane its millimetres belong to.

PS3.3 distinguishes (Basic Pixel Spacing Calibration Macro, 10.7.1.3, and the DX/CR modules):

- Imager Pixel Spacing: between pixel centres at the front of the image receptor. Anatomy
  nearer the tube is magnified on the receptor, by about the Estimated Radiographic
  Magnification Factor (source-to-image over source-to-object distance).
- Pixel Spacing: "in the patient". In projection radiography it means something calibrated
  only when Pixel Spacing Calibration Type says how: GEOMETRY (corrected for the geometric
  magnification) or FIDUCIAL (measured on an object of known size), with Pixel Spacing
  Calibration Description saying more. Equal to Imager Pixel Spacing it is still the
  detector plane.
- Nominal Scanned Pixel Spacing: a digitised film's scanner spacing on the film.

A spacing of zero (some CR writers store 0.000\\0.000) or anything unreadable counts as
absent; with no spacing :func:`pixel_spacing` returns None and a ruler must refuse to measure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

SpacingSource = Literal["PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing"]


@dataclass(frozen=True)
class Spacing:
    """Millimetres between pixel centres (down a column, across a row), their source and plane.

    ``row_mm`` is the distance between adjacent rows (vertical), ``col_mm`` between adjacent
    columns (horizontal): the DICOM value order. ``note`` says in words which plane the
    millimetres belong to; ``magnification`` is the header's Estimated Radiographic
    Magnification Factor when the spacing is at the detector and it is known.
    """

    row_mm: float
    col_mm: float
    source: SpacingSource
    note: str
    magnification: float | None = None

    def distance_mm(self, rows: float, cols: float) -> float:
        """The length in mm of a displacement of ``rows`` rows and ``cols`` columns."""
        return math.hypot(rows * self.row_mm, cols * self.col_mm)


def _get(ds: Dataset, keyword: str) -> Any:
    """An attribute's value, or None when absent or not decodable."""
    try:
        return ds.get(keyword)
    except (ValueError, TypeError, OverflowError):
        return None


def _pair(value: Any) -> tuple[float, float] | None:
    """Two positive finite numbers, or None."""
    if value is None:
        return None
    items = list(value) if isinstance(value, MultiValue | list | tuple) else [value]
    if len(items) != 2:
        return None
    try:
        row, col = float(items[0]), float(items[1])
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(row) and math.isfinite(col) and row > 0 and col > 0):
        return None
    return row, col


def _positive(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _same(a: tuple[float, float], b: tuple[float, float], tolerance: float = 1e-4) -> bool:
    return all(abs(x - y) <= tolerance * max(abs(x), abs(y)) for x, y in zip(a, b, strict=True))


def pixel_spacing(ds: Dataset) -> Spacing | None:
    """The dataset's pixel spacing with its meaning explained, or None when it has none."""
    pixel = _pair(_get(ds, "PixelSpacing"))
    imager = _pair(_get(ds, "ImagerPixelSpacing"))
    calibration = str(_get(ds, "PixelSpacingCalibrationType") or "").strip().upper()
    description = str(_get(ds, "PixelSpacingCalibrationDescription") or "").strip()
    magnification = _positive(_get(ds, "EstimatedRadiographicMagnificationFactor"))
    detail = f" ({description})" if description else ""
    if pixel is not None:
        if calibration == "GEOMETRY":
            note = (
                "Pixel Spacing calibrated for geometric magnification (GEOMETRY)"
                f"{detail}: millimetres at the patient"
            )
        elif calibration == "FIDUCIAL":
            note = (
                f"Pixel Spacing calibrated on a fiducial of known size (FIDUCIAL){detail}: "
                "millimetres at the fiducial's plane"
            )
        elif imager is not None and _same(pixel, imager):
            note = "Pixel Spacing equals Imager Pixel Spacing: " + _detector_note(magnification)
            return Spacing(pixel[0], pixel[1], "PixelSpacing", note, magnification)
        elif imager is not None:
            corrected = magnification is not None and _same(
                pixel, (imager[0] / magnification, imager[1] / magnification), 1e-3
            )
            if corrected:
                note = (
                    "Pixel Spacing is Imager Pixel Spacing divided by the Estimated "
                    f"Radiographic Magnification Factor {magnification:g}: millimetres at "
                    "the patient, as estimated from the geometry"
                )
            else:
                note = (
                    "Pixel Spacing differs from Imager Pixel Spacing "
                    f"({imager[0]:g} x {imager[1]:g} mm) but the header does not say how it "
                    "was calibrated: the plane of the millimetres is unknown"
                )
        else:
            note = (
                "Pixel Spacing with no calibration information: for a projection radiograph "
                "the header does not say whether millimetres are at the detector or the patient"
            )
        return Spacing(pixel[0], pixel[1], "PixelSpacing", note)
    if imager is not None:
        note = "Imager Pixel Spacing: " + _detector_note(magnification)
        return Spacing(imager[0], imager[1], "ImagerPixelSpacing", note, magnification)
    scanned = _pair(_get(ds, "NominalScannedPixelSpacing"))
    if scanned is not None:
        note = (
            "Nominal Scanned Pixel Spacing of a digitised film: millimetres on the film, "
            "whose magnification is not known"
        )
        return Spacing(scanned[0], scanned[1], "NominalScannedPixelSpacing", note)
    return None


def _detector_note(magnification: float | None) -> str:
    if magnification is None:
        return (
            "millimetres at the detector, not corrected for magnification (the header gives "
            "no magnification factor)"
        )
    return (
        "millimetres at the detector, not corrected for magnification; anatomy is "
        f"magnified about x{magnification:g} (Estimated Radiographic Magnification Factor), "
        "so patient-plane lengths are about the measured length divided by it"
    )
