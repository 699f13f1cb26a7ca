"""Which film each visit shows: hands and feet pages, and films covering several regions."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from scorer.gui.case_layout import (
    Arrangement,
    Page,
    arrangements,
    best_arrangement,
    film_for_page,
    film_for_region,
    fitted_area,
    group_of,
    next_page,
    page_for_region,
    pages,
    pane_size,
    smallest_film_area,
)


@dataclass(frozen=True)
class Film:
    name: str
    regions: tuple[str, ...]


BOTH_HANDS = Film("hands", ("LH", "RH"))
BOTH_FEET = Film("feet", ("LF", "RF"))
LEFT_HAND, RIGHT_HAND = Film("lh", ("LH",)), Film("rh", ("RH",))


def test_a_both_hands_film_serves_both_hand_regions() -> None:
    films = [BOTH_FEET, BOTH_HANDS]
    assert film_for_region(films, "LH") is BOTH_HANDS
    assert film_for_region(films, "RH") is BOTH_HANDS
    assert film_for_region(films, "RF") is BOTH_FEET
    assert film_for_region([BOTH_HANDS, LEFT_HAND], "LH") is LEFT_HAND  # the closer film


def test_pages_put_hands_before_feet_and_cover_separate_films() -> None:
    visits = {"A": [BOTH_FEET, BOTH_HANDS], "B": [LEFT_HAND, RIGHT_HAND, BOTH_FEET]}
    assert pages(visits) == [Page("hands", 0), Page("hands", 1), Page("feet", 0)]
    assert film_for_page(visits["A"], Page("hands", 1)) is BOTH_HANDS  # its only hands film
    assert film_for_page(visits["B"], Page("hands", 0)) is LEFT_HAND
    assert film_for_page(visits["B"], Page("hands", 1)) is RIGHT_HAND
    assert page_for_region(visits, "RH") == Page("hands", 1)
    assert page_for_region(visits, "LF") == Page("feet", 0)
    assert Page("hands", 1).title == "Hands 2" and Page("feet").title == "Feet"


def test_a_visit_without_feet_shows_nothing_on_the_feet_page() -> None:
    visits = {"A": [BOTH_HANDS], "B": [BOTH_HANDS, BOTH_FEET]}
    assert film_for_page(visits["A"], Page("feet")) is None
    assert group_of(("RF",)) == "feet" and group_of(()) is None


def test_next_page_wraps_round() -> None:
    all_pages = [Page("hands"), Page("feet")]
    assert next_page(all_pages, Page("hands")) == Page("feet")
    assert next_page(all_pages, Page("feet")) == Page("hands")
    assert next_page(all_pages, None) == Page("hands")
    assert next_page([], None) is None


# ---------------------------------------------------------------- arranging the panes

HANDS = (1200.0, 1000.0)  # the demo's both-hands film: landscape, 1200 x 1000 pixels


def test_every_useful_arrangement_of_the_panes_row_first() -> None:
    assert arrangements(1) == [Arrangement(1, 1)]
    assert arrangements(2) == [Arrangement(2, 1), Arrangement(1, 2)]
    assert arrangements(3) == [Arrangement(3, 1), Arrangement(2, 2), Arrangement(1, 3)]
    # 3 x 2 holds 4 panes no better than 2 x 2: only the fewest columns per row count
    assert arrangements(4) == [Arrangement(4, 1), Arrangement(2, 2), Arrangement(1, 4)]
    assert [a.name for a in arrangements(3)] == ["row", "grid", "column"]


def test_a_film_fitted_into_a_pane_keeps_its_aspect() -> None:
    assert fitted_area(400, 900, *HANDS) == pytest.approx(400 * 1000 * 400 / 1200)  # width-bound
    assert fitted_area(1200, 500, *HANDS) == pytest.approx(600 * 500)  # height-bound
    assert fitted_area(100, 100, 0, 10) == 0.0
    assert pane_size(Arrangement(2, 2), 1003, 803, gap=3) == (500, 400)


def test_landscape_films_on_a_wide_view_go_into_a_grid_not_portrait_columns() -> None:
    # the case view of a 1920 x 1080 reading window: about 1250 x 950 for three visits
    films = [HANDS] * 3
    best = best_arrangement(3, 1250, 950, films, gap=3)
    assert best == Arrangement(2, 2)
    row = smallest_film_area(Arrangement(3, 1), 1250, 950, films, gap=3)
    assert smallest_film_area(best, 1250, 950, films, gap=3) > 1.8 * row


def test_the_arrangement_follows_the_view_and_the_films_shape() -> None:
    portrait = [(1000.0, 1400.0)] * 3
    assert best_arrangement(3, 1800, 700, portrait) == Arrangement(3, 1)  # wide and low: a row
    assert best_arrangement(3, 700, 1800, [HANDS] * 3) == Arrangement(1, 3)  # tall: a column
    assert best_arrangement(2, 1250, 950, [HANDS] * 2) == Arrangement(2, 1)  # two: side by side
    assert best_arrangement(2, 1000, 1100, [HANDS] * 2) == Arrangement(1, 2)  # or stacked
    assert best_arrangement(1, 500, 500, [HANDS]) == Arrangement(1, 1)
    # the smallest film decides: one portrait film among landscape ones
    mixed = [HANDS, HANDS, (600.0, 1400.0)]
    assert smallest_film_area(best_arrangement(3, 1250, 950, mixed), 1250, 950, mixed) == max(
        smallest_film_area(a, 1250, 950, mixed) for a in arrangements(3)
    )


def test_without_films_or_on_a_tie_the_row_is_kept() -> None:
    assert best_arrangement(3, 1200, 400) == Arrangement(3, 1)  # panes 400 x 400 vs 600 x 200
    # square films in a square view: two panes side by side or stacked tie; the row stays
    assert best_arrangement(2, 900, 900, [(10.0, 10.0)] * 2) == Arrangement(2, 1)
    assert best_arrangement(3, 900, 900, [(10.0, 10.0)] * 3) == Arrangement(2, 2)


def test_an_arrangement_with_panes_too_small_is_passed_over_for_one_that_fits() -> None:
    """A 569 x 713 view (a laptop's, beside the grid) and three landscape films: a 2 x 2 grid
    draws them largest but its panes are 284 wide; a column of three fits 300 x 200 panes, so
    the visits are stacked instead of going to tabs."""
    films = [(1200.0, 1000.0)] * 3
    grid = best_arrangement(3, 569, 713, films, 3)
    assert (grid.columns, grid.rows) == (2, 2)
    roomy = best_arrangement(3, 569, 713, films, 3, (300, 200))
    assert (roomy.columns, roomy.rows) == (1, 3)
    # Nothing fits: the best of all, as before (the view then shows tabs).
    assert best_arrangement(3, 250, 300, films, 3, (300, 200)) == best_arrangement(
        3, 250, 300, films, 3
    )
