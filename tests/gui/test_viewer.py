"""The image viewer: each reader action changes the view state and the drawn pixels as
expected, the ruler measures in mm on a constructed image, and frames render at physical
pixels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

import scorer.gui.viewer_state as viewer_state
from scorer.gui.viewer import ImageViewer
from scorer.gui.viewer_state import NO_CALIBRATION, ViewerModel
from scorer.imaging.radiograph import Radiograph
from scorer.imaging.windowing import Window
from tests.gui.conftest import COLS, ROWS, drag, grab_gray, make_radiograph, wheel

# The viewer is 480 x 400 and the image 240 x 200, so the fitted zoom is exactly 2 and the
# image fills the viewer: image point (x, y) shows at screen (240 + 2(x - 120), 200 + 2(y - 100)).
# The bright square (columns 100-139, rows 80-119) shows at x 200-279, y 160-239.
SIZE = (480, 400)


@pytest.fixture
def viewer(qtbot: QtBot, radiograph: Radiograph) -> ImageViewer:
    widget = ImageViewer()
    qtbot.addWidget(widget)
    widget.resize(*SIZE)
    widget.show_readout = False  # only the radiograph's pixels in the grabs
    widget.set_image(radiograph)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def bright_run(pixels: np.ndarray, row: int) -> tuple[int, int]:
    """First and last column of full-white pixels on a screen row."""
    columns = np.flatnonzero(pixels[row] == 255)
    return int(columns[0]), int(columns[-1])


def test_the_image_is_fitted_bone_bright_with_the_header_window(viewer: ImageViewer) -> None:
    view = viewer.model.view
    assert view.zoom == pytest.approx(2.0)
    assert (view.center_x, view.center_y) == (COLS / 2, ROWS / 2)
    pixels = grab_gray(viewer)
    assert pixels.shape == (400, 480)
    assert pixels[200, 240] == 255  # the square (3000) is white
    assert pixels[10, 10] == 0  # the background (1000) is black
    assert pixels[60, 80] == 128  # the patch (2000) is mid-grey
    assert bright_run(pixels, 200) == (200, 279)


def test_wheel_zooms_about_the_cursor(viewer: ImageViewer) -> None:
    wheel(viewer, (200, 160), 1)  # one notch at the square's top-left corner
    view = viewer.model.view
    assert view.zoom == pytest.approx(2.5)
    assert viewer.model.to_image(200, 160) == pytest.approx((100, 80))  # the corner stayed
    pixels = grab_gray(viewer)
    assert bright_run(pixels, 200) == (200, 299)  # 40 image pixels x 2.5
    wheel(viewer, (200, 160), -1)
    assert viewer.model.view.zoom == pytest.approx(2.0)


def test_keys_zoom_fit_and_show_one_to_one(viewer: ImageViewer) -> None:
    QTest.keyClick(viewer, Qt.Key.Key_Plus)
    assert viewer.model.view.zoom == pytest.approx(2.5)
    assert viewer.model.fitted is False
    QTest.keyClick(viewer, Qt.Key.Key_Minus)
    QTest.keyClick(viewer, Qt.Key.Key_Minus)
    assert viewer.model.view.zoom == pytest.approx(1.6)
    assert bright_run(grab_gray(viewer), 200) == (208, 271)  # 40 x 1.6 = 64 columns
    QTest.keyClick(viewer, Qt.Key.Key_1)
    assert viewer.model.view.zoom == pytest.approx(1.0)
    assert bright_run(grab_gray(viewer), 200) == (220, 259)
    QTest.keyClick(viewer, Qt.Key.Key_F)
    assert viewer.model.view.zoom == pytest.approx(2.0)
    assert viewer.model.fitted is True


def test_left_drag_pans_the_image(viewer: ImageViewer) -> None:
    before = grab_gray(viewer)
    drag(viewer, Qt.MouseButton.LeftButton, (100, 100), (130, 120))
    view = viewer.model.view
    assert (view.center_x, view.center_y) == pytest.approx((120 - 15, 100 - 10))
    after = grab_gray(viewer)
    assert bright_run(after, 220) == (230, 309)
    # Everything moved 30 right and 20 down; what was on screen is unchanged.
    assert np.array_equal(after[20:, 30:], before[:-20, :-30])
    QTest.keyClick(viewer, Qt.Key.Key_Left)  # the arrows pan too
    assert viewer.model.view.center_x < 105


def test_right_drag_sets_the_window_horizontal_width_vertical_centre(viewer: ImageViewer) -> None:
    drag(viewer, Qt.MouseButton.RightButton, (100, 100), (356, 100))  # one width to the right
    window = viewer.model.view.voi
    assert isinstance(window, Window)
    assert window.width == pytest.approx(2 * 2001)
    assert window.center == pytest.approx(2000)
    assert viewer.model.preset_index is None
    pixels = grab_gray(viewer)
    assert pixels[200, 240] == 191  # 3000 at (3000 - 1999.5) / 4001 + 0.5 = 0.75
    assert pixels[60, 80] == 128  # the centre value stays mid-grey
    QTest.keyClick(viewer, Qt.Key.Key_Escape)
    drag(viewer, Qt.MouseButton.RightButton, (100, 100), (100, 228))  # half a width down
    window = viewer.model.view.voi
    assert isinstance(window, Window)
    assert (window.center, window.width) == pytest.approx((2000 + 2001 / 2, 2001))
    pixels = grab_gray(viewer)
    assert pixels[60, 80] == 0  # darker: the patch is now at the window's bottom
    assert pixels[200, 240] == 128


def test_window_drag_reuses_the_sampled_viewport(
    viewer: ImageViewer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Window/level redraws with a table lookup only; a pan samples the screen again."""
    calls = []
    original = viewer_state.sample_viewport

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(viewer_state, "sample_viewport", counted)
    viewer.model.render()
    first = len(calls)
    for dx in range(10, 200, 10):
        viewer.model.drag_window(dx, dx / 2)
        viewer.model.render()
    assert len(calls) == first
    viewer.model.pan_by(5, 0)
    viewer.model.render()
    assert len(calls) == first + 1


def test_invert_complements_the_pixels(viewer: ImageViewer) -> None:
    before = grab_gray(viewer)
    QTest.keyClick(viewer, Qt.Key.Key_I)
    assert viewer.model.view.invert is True
    after = grab_gray(viewer)
    assert np.array_equal(after, 255 - before)
    QTest.keyClick(viewer, Qt.Key.Key_I)
    assert np.array_equal(grab_gray(viewer), before)


def test_w_cycles_the_presets(viewer: ImageViewer) -> None:
    presets = viewer.model.presets
    assert [p.source for p in presets] == ["header window", "automatic"]
    QTest.keyClick(viewer, Qt.Key.Key_W)
    assert viewer.model.preset_index == 1
    assert viewer.model.view.voi is presets[1].voi
    QTest.keyClick(viewer, Qt.Key.Key_W)
    assert viewer.model.preset_index == 0
    menu = viewer.preset_menu()
    names = [a.text() for a in menu.actions() if a.text()]
    assert names[:2] == [p.name for p in presets] and "Invert" in names


def test_rotate_and_flip_move_the_square_where_expected(viewer: ImageViewer) -> None:
    QTest.keyClick(viewer, Qt.Key.Key_R)
    model = viewer.model
    assert model.view.rotation == 1
    assert model.view.zoom == pytest.approx(min(480 / 200, 400 / 240))  # refitted upright
    pixels = grab_gray(viewer)
    # A quarter turn clockwise: image (x, y) -> screen (centre - (y - 100) z, centre + (x - 120) z)
    x, y = model.to_screen(120, 100)  # the square's centre
    assert (x, y) == pytest.approx((240, 200))
    assert pixels[int(y), int(x)] == 255
    top_left = model.to_screen(100, 80)
    assert top_left[0] > x and top_left[1] < y  # its top-left corner is now top-right
    QTest.keyClick(viewer, Qt.Key.Key_H)
    assert model.view.flip_h is True
    assert model.to_screen(100, 80)[0] < x  # mirrored back to the left
    QTest.keyClick(viewer, Qt.Key.Key_R, Qt.KeyboardModifier.ShiftModifier)
    assert model.view.rotation == 0


def test_escape_resets_everything(viewer: ImageViewer) -> None:
    before = grab_gray(viewer)
    wheel(viewer, (100, 100), 3)
    drag(viewer, Qt.MouseButton.LeftButton, (100, 100), (150, 150))
    drag(viewer, Qt.MouseButton.RightButton, (100, 100), (150, 150))
    for key in (Qt.Key.Key_I, Qt.Key.Key_R, Qt.Key.Key_H, Qt.Key.Key_L):
        QTest.keyClick(viewer, key)
    QTest.keyClick(viewer, Qt.Key.Key_Escape)
    model = viewer.model
    assert (model.view.rotation, model.view.flip_h, model.view.invert) == (0, False, False)
    assert model.view.voi is None and model.fitted and not model.loupe_on
    assert np.array_equal(grab_gray(viewer), before)
    QTest.keyClick(viewer, Qt.Key.Key_Plus)
    QTest.keyClick(viewer, Qt.Key.Key_0)  # 0 resets as well
    assert model.view.zoom == pytest.approx(2.0)


def test_the_loupe_magnifies_around_the_cursor(viewer: ImageViewer) -> None:
    QTest.keyClick(viewer, Qt.Key.Key_L)
    QTest.mouseMove(viewer, QPoint(240, 200))  # the square's centre
    model = viewer.model
    assert model.loupe_on and model.loupe_at == (240, 200)
    frame = model.render_loupe(ImageViewer.LOUPE_SIZE)
    assert frame is not None and frame.shape == (240, 240)
    # 2x on top of the zoom of 2: the 40-pixel square spans 160 loupe pixels.
    assert np.count_nonzero(frame[120] == 255) == 160
    model.set_loupe_factor(9)
    assert model.loupe_factor == 4.0  # kept within 2 to 4
    before = grab_gray(viewer)
    assert before[200, 240] == 255
    QTest.keyClick(viewer, Qt.Key.Key_L)
    assert model.render_loupe(ImageViewer.LOUPE_SIZE) is None


@pytest.mark.parametrize(
    ("spacing", "zoom_key_presses"),
    [((0.2, 0.1), 0), ((0.15, 0.15), 2), ((0.1, 0.25), -1)],
)
def test_the_ruler_measures_a_known_image_within_one_pixel(
    qtbot: QtBot, spacing: tuple[float, float], zoom_key_presses: int
) -> None:
    """Measure the bright square found in the drawn pixels (40 columns, 40 rows) and a
    diagonal between two known image points."""
    viewer = ImageViewer()
    qtbot.addWidget(viewer)
    viewer.resize(*SIZE)
    viewer.show_readout = False
    viewer.set_image(make_radiograph(spacing=spacing))
    viewer.show()
    qtbot.waitExposed(viewer)
    key = Qt.Key.Key_Plus if zoom_key_presses > 0 else Qt.Key.Key_Minus
    for _ in range(abs(zoom_key_presses)):
        QTest.keyClick(viewer, key)
    row_mm, col_mm = spacing
    one_pixel = max(row_mm, col_mm)

    pixels = grab_gray(viewer)
    rows, cols = np.nonzero(pixels == 255)
    y_mid = int(np.median(rows))
    x_first, x_last = bright_run(pixels, y_mid)
    QTest.keyClick(viewer, Qt.Key.Key_M)
    assert viewer.ruler_mode
    drag(viewer, Qt.MouseButton.LeftButton, (x_first, y_mid), (x_last + 1, y_mid))
    measured = viewer.model.ruler_mm()
    assert measured is not None
    assert abs(measured - 40 * col_mm) <= one_pixel
    x_mid = int(np.median(cols))
    column = np.flatnonzero(pixels[:, x_mid] == 255)
    drag(viewer, Qt.MouseButton.LeftButton, (x_mid, column[0]), (x_mid, column[-1] + 1))
    measured = viewer.model.ruler_mm()
    assert measured is not None
    assert abs(measured - 40 * row_mm) <= one_pixel

    a = viewer.model.to_screen(60, 40)
    b = viewer.model.to_screen(160, 90)
    drag(viewer, Qt.MouseButton.LeftButton, a, b)
    expected = math.hypot(50 * row_mm, 100 * col_mm)
    measured = viewer.model.ruler_mm()
    assert measured is not None
    assert abs(measured - expected) <= one_pixel
    assert viewer.model.view.center_x == COLS / 2  # measuring does not pan
    assert viewer.message == ""


def test_the_ruler_refuses_to_measure_without_spacing(qtbot: QtBot) -> None:
    viewer = ImageViewer()
    qtbot.addWidget(viewer)
    viewer.resize(*SIZE)
    viewer.set_image(make_radiograph(spacing=None))
    viewer.show()
    qtbot.waitExposed(viewer)
    assert viewer.model.image is not None and viewer.model.image.spacing is None
    QTest.keyClick(viewer, Qt.Key.Key_M)
    assert viewer.message == NO_CALIBRATION
    view_before = viewer.model.view
    drag(viewer, Qt.MouseButton.LeftButton, (100, 100), (300, 300))
    assert viewer.model.ruler is None
    assert viewer.model.ruler_mm() is None
    assert viewer.model.start_ruler(10, 10) is False
    assert viewer.model.view == view_before
    assert viewer.message == NO_CALIBRATION
    QTest.keyClick(viewer, Qt.Key.Key_M)
    assert viewer.message == NO_CALIBRATION  # the click's notice lingers a moment
    viewer._clear_message()
    assert viewer.message == ""


def test_frames_render_at_physical_pixels() -> None:
    """At a device pixel ratio of 2 a 240 x 200 viewer renders 480 x 400 pixels, and 1:1
    puts one image pixel on one physical pixel."""
    image = make_radiograph(window=(2000, 4001))  # background grey, not black
    model = ViewerModel(image, width=240, height=200, device_pixel_ratio=2.0)
    assert model.view.zoom == pytest.approx(1.0)
    frame = model.render()
    assert frame.shape == (400, 480)
    assert np.count_nonzero(frame) == 400 * 480  # the image fills the screen
    model.one_to_one()
    assert model.view.zoom == pytest.approx(0.5)
    frame = model.render()
    assert np.count_nonzero(frame) == ROWS * COLS  # each image pixel once
    assert model.readout().endswith("100%")
