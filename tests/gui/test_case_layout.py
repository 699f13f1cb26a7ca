"""Which film each visit shows: hands and feet pages, and films covering several regions."""

from __future__ import annotations

from dataclasses import dataclass

from scorer.gui.case_layout import (
    Page,
    film_for_page,
    film_for_region,
    group_of,
    next_page,
    page_for_region,
    pages,
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
