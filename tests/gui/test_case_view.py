"""The case view: visits side by side labelled only A, B, C, hands and feet one key apart,
synchronised zoom and pan, tabs on a narrow screen, and nothing from the data on screen."""

from __future__ import annotations

import re

import pydicom
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from scorer.core.case_films import CaseFilm
from scorer.gui.case_layout import Arrangement
from scorer.gui.case_view import NO_FILM, CaseView, VisitPanel
from scorer.gui.prefetch import PreparedCase, prepare_case
from scorer.gui.sample_case import SampleFilm
from scorer.imaging.radiograph import open_radiograph
from tests.gui.conftest import drag, wheel


def prepared(images: dict[str, list[CaseFilm]], code: str = "K7Q5Y87Y") -> PreparedCase:
    return prepare_case(code, lambda _code: images, lambda path, _sha: open_radiograph(path))


@pytest.fixture
def view(qtbot: QtBot, case_images: dict[str, list[CaseFilm]]) -> CaseView:
    widget = CaseView()
    qtbot.addWidget(widget)
    widget.resize(1200, 600)
    widget.show()
    qtbot.waitExposed(widget)
    widget.show_case(prepared(case_images))
    return widget


def test_every_visit_shows_side_by_side_labelled_by_its_letter(view: CaseView) -> None:
    assert list(view.panels) == ["A", "B", "C"]
    assert not view.tabs_mode
    for letter, panel in view.panels.items():
        assert panel.isVisible() and panel.letter_label.text() == letter
        assert panel.model.image is not None
        assert panel.shown is not None and panel.shown.regions == ("LH", "RH")
    xs = [panel.geometry().x() for panel in view.panels.values()]
    assert xs == sorted(xs) and len(set(xs)) == 3


def test_tab_switches_every_visit_between_hands_and_feet(view: CaseView) -> None:
    assert view.page is not None and view.page.group == "hands"
    view.panels["B"].setFocus()
    QTest.keyClick(view.panels["B"], Qt.Key.Key_Tab)
    assert view.page is not None and view.page.group == "feet"
    assert all(
        p.shown is not None and p.shown.regions == ("LF", "RF") for p in view.panels.values()
    )
    QTest.keyClick(view.panels["B"], Qt.Key.Key_Tab)
    assert view.page.group == "hands"
    assert view.show_region("RF") and view.page.group == "feet"
    film = view.film_for_region("A", "LH")
    assert film is not None and film.regions == ("LH", "RH")  # one film for both hands


def test_a_region_page_remembers_each_visits_view(view: CaseView) -> None:
    panel = view.panels["A"]
    QTest.keyClick(panel, Qt.Key.Key_Plus)
    QTest.keyClick(panel, Qt.Key.Key_I)
    zoomed = panel.model.view
    view.step_page()
    assert panel.model.view != zoomed
    view.step_page()
    assert panel.model.view == zoomed


def test_a_visit_without_a_film_of_the_region_says_so(
    qtbot: QtBot, case_images: dict[str, list[CaseFilm]]
) -> None:
    images = {k: list(v) for k, v in case_images.items()}
    images["C"] = [e for e in images["C"] if "LH" in e.regions]  # no feet film at C
    view = CaseView()
    qtbot.addWidget(view)
    view.resize(1200, 600)
    view.show_case(prepared(images))
    view.step_page()
    assert view.panels["C"].model.image is None
    assert view.panels["C"].placeholder == NO_FILM


def test_sync_moves_every_visit_together(view: CaseView) -> None:
    a, b, c = view.panels.values()
    wheel(a, (100, 100), 2)
    assert a.model.view.zoom > b.model.view.zoom  # independent by default
    view.set_sync(True)
    assert b.model.relative_geometry() == pytest.approx(a.model.relative_geometry())
    drag(b, Qt.MouseButton.LeftButton, (150, 150), (100, 120))
    assert a.model.relative_geometry() == pytest.approx(b.model.relative_geometry())
    assert c.model.relative_geometry() == pytest.approx(b.model.relative_geometry())
    QTest.keyClick(c, Qt.Key.Key_I)  # the window stays each visit's own
    assert c.model.view.invert and not a.model.view.invert
    QTest.keyClick(c, Qt.Key.Key_S)
    assert not view.sync


def test_a_narrow_view_shows_the_visits_as_tabs(view: CaseView, qtbot: QtBot) -> None:
    view.resize(550, 550)  # no pane of any arrangement 300 wide and 200 high
    qtbot.waitUntil(lambda: view.tabs_mode)
    assert [view.tab_bar.tabText(i) for i in range(view.tab_bar.count())] == ["A", "B", "C"]
    assert [p.isVisible() for p in view.panels.values()] == [True, False, False]
    view.tab_bar.setCurrentIndex(2)
    assert [p.isVisible() for p in view.panels.values()] == [False, False, True]
    assert view.active_viewer() is view.panels["C"]
    view.resize(1200, 600)
    qtbot.waitUntil(lambda: not view.tabs_mode)
    assert view.arrangement == Arrangement(3, 1)
    assert all(p.isVisible() for p in view.panels.values())


def test_toolbar_acts_on_the_active_visit(view: CaseView) -> None:
    drag(view.panels["B"], Qt.MouseButton.LeftButton, (50, 50), (50, 50))  # a click
    assert view.active_viewer() is view.panels["B"]
    view._tool_actions["invert"].trigger()
    assert view.panels["B"].model.view.invert and not view.panels["A"].model.view.invert
    view._tool_actions["ruler"].trigger()
    assert view.panels["B"].ruler_mode


UI_WORDS = {
    "Hands", "Feet", "Invert", "Loupe", "Window", "Ruler", "View", "Sync", "Image tools",
    "Next region", "Previous region", "No case open", "FULL RANGE", "No image",
    "Fit, 1:1, rotate, flip, reset and one visit", "One visit",
    "Joints", "Place joints", "Narrower field", "Wider field",
}  # fmt: skip
ALLOWED = [
    re.compile(r"[A-Z]"),  # a visit letter
    re.compile(r"W \d+  L -?\d+   \d+%(   inverted)?"),  # the window and zoom read-out
    re.compile(r"Automatic \(0\.5-99\.5 percentiles\)"),
    re.compile(r"[A-Z][a-z0-9 °\-,:]+ \([A-Z]\)"),  # a tooltip naming its key
    re.compile(r"[A-Za-z0-9: \-]+\t[A-Za-z0-9+]+"),  # a menu entry with its key
    re.compile(r"Magnifier at the cursor \(L; Shift\+wheel: 2× to 4×\)"),
    re.compile(r"Show every visit's (hands|feet) film \(Tab switches\)"),
    re.compile(r"Measure in mm: drag with the left button \(M\)"),
    re.compile(r"Window presets \(W cycles; right-drag adjusts\)"),
    re.compile(r"Zoom and pan all visits together \(S\)"),
    re.compile(r"\d+ mm"),  # joint view's field
    re.compile(r"Joint view's field: millimetres across each pane's shorter side \(\[ / \]\)"),
]


def identifiers(films: list[SampleFilm]) -> set[str]:
    """Everything in the source files that would betray the patient, the visit or its date."""
    found: set[str] = set()
    for film in films:
        ds = pydicom.dcmread(film.path)
        found |= {str(ds.PatientName), ds.PatientName.family_name, ds.PatientName.given_name}
        found |= {str(ds.PatientID), str(ds.StudyDate), str(ds.AcquisitionDate)}
        found |= {str(ds.AccessionNumber), str(ds.InstitutionName), str(ds.StudyInstanceUID)}
        found |= {str(ds.ClinicalTrialTimePointID), str(ds.ClinicalTrialTimePointDescription)}
        found |= {film.visit, film.path.name, film.path.stem, film.sha256[:10].upper()}
        found |= {f"Week {w}" for w in (0, 24, 52)}
    return {f for f in found if f}


def test_nothing_from_the_data_is_shown_but_the_letters(
    view: CaseView, sample_films: list[SampleFilm]
) -> None:
    for panel in view.panels.values():  # exercise the overlays that write text
        panel.set_ruler_mode(True)
        panel.model.toggle_invert()
    view.step_page()
    texts = view.all_text()
    assert {"A", "B", "C"} <= set(texts)
    secrets = identifiers(sample_films)
    assert "W0" in secrets and any(len(s) == 8 and s.isdigit() for s in secrets)
    for text in texts:
        for secret in secrets:
            assert secret.lower() not in text.lower(), (secret, text)
        assert text in UI_WORDS or any(p.fullmatch(text) for p in ALLOWED), text
    assert view.windowTitle() == ""


def test_the_film_clock_counts_each_film_on_screen_and_nothing_while_paused() -> None:
    from scorer.gui.case_view import FilmClock

    t = [100.0]
    clock = FilmClock(now=lambda: t[0])
    clock.show(["H1", "H2"])
    t[0] += 2.0
    clock.show(["F1"])  # the feet page
    t[0] += 1.0
    clock.pause(True)
    t[0] += 50.0  # locked
    clock.pause(False)
    t[0] += 0.5
    assert clock.take() == {"H1": 2.0, "H2": 2.0, "F1": 1.5}
    t[0] += 3.0
    clock.show([])
    t[0] += 9.0
    assert clock.take() == {"F1": 3.0}
    assert clock.take() == {}


# ---------------------------------------------------------------- arrangement and one visit


def film_area_on_screen(panel: VisitPanel) -> float:
    """The area, in logical pixels, of the pane's film as drawn: its corners mapped to the
    screen, clipped to the pane."""
    image = panel.model.image
    assert image is not None
    rows, cols = image.shape[:2]
    x0, y0 = panel.model.to_screen(0, 0)
    x1, y1 = panel.model.to_screen(cols, rows)
    left, right = max(0.0, min(x0, x1)), min(float(panel.width()), max(x0, x1))
    top, bottom = max(0.0, min(y0, y1)), min(float(panel.height()), max(y0, y1))
    return max(0.0, right - left) * max(0.0, bottom - top)


def test_landscape_films_on_a_wide_view_are_stacked_in_a_grid(view: CaseView, qtbot: QtBot) -> None:
    image = view.panels["A"].model.image
    assert image is not None and image.shape[1] > image.shape[0]  # landscape: both hands
    view.resize(1250, 950)  # the case view of a 1920 x 1080 reading window
    qtbot.waitUntil(lambda: view.arrangement == Arrangement(2, 2))
    a, b, c = (view.panels[x] for x in "ABC")
    assert a.y() == b.y() and a.x() < b.x()  # A and B side by side, C below them
    assert c.mapTo(view, c.rect().topLeft()).y() > a.mapTo(view, a.rect().bottomLeft()).y()
    assert all(p.isVisible() for p in view.panels.values()) and not view.tabs_mode
    grid = {x: film_area_on_screen(p) for x, p in view.panels.items()}
    view.force_arrangement(Arrangement(3, 1))  # the single row of before
    qtbot.waitUntil(lambda: abs(a.width() - c.width()) <= 1 and a.y() == c.y())
    row = {x: film_area_on_screen(p) for x, p in view.panels.items()}
    assert all(grid[x] > 1.7 * row[x] for x in "ABC"), (grid, row)  # 2x: test_reading
    view.force_arrangement(None)
    qtbot.waitUntil(lambda: view.arrangement == Arrangement(2, 2))


def test_the_arrangement_follows_the_views_shape(view: CaseView, qtbot: QtBot) -> None:
    view.resize(700, 1400)  # tall and narrow: one above the other
    qtbot.waitUntil(lambda: view.arrangement == Arrangement(1, 3))
    xs = {p.mapTo(view, p.rect().topLeft()).x() for p in view.panels.values()}
    assert len(xs) == 1 and not view.tabs_mode
    view.resize(1800, 500)  # wide and low: side by side
    qtbot.waitUntil(lambda: view.arrangement == Arrangement(3, 1))
    assert all(p.isVisible() for p in view.panels.values())


def test_v_shows_the_active_visit_alone_and_v_again_brings_the_others_back(
    view: CaseView, qtbot: QtBot
) -> None:
    view.resize(1250, 950)
    qtbot.waitUntil(lambda: view.arrangement == Arrangement(2, 2))
    b = view.panels["B"]
    drag(b, Qt.MouseButton.LeftButton, (50, 50), (50, 50))  # a click makes B active
    before = film_area_on_screen(b)
    QTest.keyClick(b, Qt.Key.Key_V)
    assert view.one_visit and view._tool_actions["one_visit"].isChecked()
    assert [p.isVisible() for p in view.panels.values()] == [False, True, False]
    qtbot.waitUntil(lambda: b.width() >= view.width() - 2)
    assert b.height() >= view.splitter.height() - 2
    assert b.letter_label.isVisible() and b.letter_label.text() == "B"  # the letter stays
    assert film_area_on_screen(b) > 3 * before
    view.set_active("C")  # the grid moving to another visit shows that one alone
    assert [p.isVisible() for p in view.panels.values()] == [False, False, True]
    QTest.keyClick(view.panels["C"], Qt.Key.Key_V)
    assert not view.one_visit
    assert all(p.isVisible() for p in view.panels.values())
    assert view.arrangement == Arrangement(2, 2)
