"""Fixtures for the GUI tests: constructed radiographs of known content and spacing, synthetic
films of a paired case, and helpers to read back what a widget drew."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from scorer.core.case_films import CaseFilm
from scorer.gui.sample_case import SampleFilm, sample_case_images, write_sample_films
from scorer.imaging.radiograph import Radiograph, radiograph_from_dataset
from scorer.workspace import OpenedCase, WorklistRow
from tests.intake.dicom_maker import make_dx

BACKGROUND, MID, BONE = 1000, 2000, 3000
ROWS, COLS = 200, 240
SQUARE = (slice(80, 120), slice(100, 140))  # rows, columns of the bright square
PATCH = (slice(20, 40), slice(20, 60))  # the mid-grey patch


def known_pixels() -> np.ndarray:
    """200 x 240 12-bit pixels: background 1000, a 40 x 40 square of 3000 at rows 80-119 and
    columns 100-139, and a 20 x 40 patch of 2000 at rows 20-39, columns 20-59."""
    pixels = np.full((ROWS, COLS), BACKGROUND, dtype=np.uint16)
    pixels[SQUARE] = BONE
    pixels[PATCH] = MID
    return pixels


def make_radiograph(
    pixels: np.ndarray | None = None,
    spacing: tuple[float, float] | None = (0.2, 0.2),
    window: tuple[float, float] = (2000, 2001),
) -> Radiograph:
    """A radiograph of ``pixels`` (default :func:`known_pixels`) with a header window and,
    unless None, an Imager Pixel Spacing of (row mm, column mm)."""
    ds = make_dx(known_pixels() if pixels is None else pixels)
    del ds.ImagerPixelSpacing
    if spacing is not None:
        ds.ImagerPixelSpacing = [f"{spacing[0]:g}", f"{spacing[1]:g}"]
    ds.WindowCenter, ds.WindowWidth = f"{window[0]:g}", f"{window[1]:g}"
    return radiograph_from_dataset(ds)


@pytest.fixture
def radiograph() -> Radiograph:
    return make_radiograph()


@pytest.fixture(scope="session")
def sample_films(tmp_path_factory: pytest.TempPathFactory) -> list[SampleFilm]:
    """Small synthetic films (1 mm pixels) of one patient: hands and feet at three visits."""
    return write_sample_films(tmp_path_factory.mktemp("films"), visits=3, pixel_mm=1.0)


@pytest.fixture
def case_images(sample_films: list[SampleFilm]) -> dict[str, list[CaseFilm]]:
    return sample_case_images(sample_films)


@pytest.fixture(autouse=True)
def _no_stray_windows() -> Iterator[None]:
    yield
    for widget in QApplication.topLevelWidgets():
        widget.close()


def grab_gray(widget: QWidget) -> np.ndarray:
    """What ``widget`` drew, as 8-bit grey rows x columns (physical pixels)."""
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_Grayscale8)
    width, height, stride = image.width(), image.height(), image.bytesPerLine()
    raw = np.frombuffer(image.constBits(), dtype=np.uint8, count=stride * height)
    return raw.reshape(height, stride)[:, :width].copy()


def drag(
    widget: QWidget,
    button: Qt.MouseButton,
    start: tuple[float, float],
    end: tuple[float, float],
    steps: int = 5,
) -> None:
    """Press ``button`` at ``start``, move to ``end`` in steps, release."""
    a, b = QPoint(*map(round, start)), QPoint(*map(round, end))
    QTest.mousePress(widget, button, Qt.KeyboardModifier.NoModifier, a)
    for i in range(1, steps + 1):
        x = round(a.x() + (b.x() - a.x()) * i / steps)
        y = round(a.y() + (b.y() - a.y()) * i / steps)
        QTest.mouseMove(widget, QPoint(x, y))
    QTest.mouseRelease(widget, button, Qt.KeyboardModifier.NoModifier, b)


def wheel(widget: QWidget, at: tuple[float, float], clicks: float) -> None:
    """Turn the mouse wheel by ``clicks`` notches (positive: away from the user) at ``at``."""
    pos = QPointF(*at)
    event = QWheelEvent(
        pos,
        QPointF(widget.mapToGlobal(pos)),
        QPoint(0, 0),
        QPoint(0, round(120 * clicks)),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, event)


class FakeReadingDesk:
    """A stand-in for the workspace in reading-window tests: three cases of the sample films,
    and a record of every call with whether it ran on the UI thread."""

    def __init__(self, films: list[SampleFilm], cache_dir: Path, cases: int = 3) -> None:
        self.cache_dir = cache_dir
        self.ui_thread = threading.get_ident()
        self.calls: list[tuple[str, bool]] = []
        labels = [f.visit for f in films][::2]
        self.cases = {
            f"CASE{n}": sample_case_images(films, order=labels[n % 3 :] + labels[: n % 3])
            for n in range(1, cases + 1)
        }

    # The window reaches the workspace's services by name; this stand-in plays each of them.
    @property
    def images(self) -> FakeReadingDesk:
        return self

    @property
    def worklists(self) -> FakeReadingDesk:
        return self

    @property
    def reading(self) -> FakeReadingDesk:
        return self

    def _record(self, name: str) -> None:
        self.calls.append((name, threading.get_ident() == self.ui_thread))

    def worklist(self, s: Any, trial: str) -> list[WorklistRow]:
        self._record("worklist")
        n = len(self.cases)
        return [
            WorklistRow(code, f"{i} of {n}", "not started")
            for i, code in enumerate(self.cases, start=1)
        ]

    def open_case(self, s: Any, case_code: str) -> OpenedCase:
        self._record("open_case")
        letters = self.cases[case_code]
        return OpenedCase(case_code, {k: f"R{k}" for k in letters}, "svh", "in progress")

    def case_images(self, s: Any, case_code: str) -> dict[str, list[CaseFilm]]:
        self._record("case_images")
        return self.cases[case_code]
