"""Which film each visit of a case shows: the region pages of a case (hands, feet), Qt-free.

A case gives each visit letter a list of films, each covering one or more regions (a PA film
of both hands covers LH and RH). The viewer shows one *page* at a time: a region group (hands
or feet) and, when a visit has more than one film of that group (separate left and right
films), which of them. Every visit shows its film for the same page side by side, so the
reader compares like with like; a film covering both hands serves both hand regions.

How the visits' panes are arranged on the case view (:func:`best_arrangement`) is plain
arithmetic too: for the view's size and the shape of the films shown, the row, column or grid
of panes in which the smallest film is drawn largest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

REGION_GROUPS: dict[str, tuple[str, ...]] = {"hands": ("LH", "RH"), "feet": ("LF", "RF")}
GROUP_TITLES = {"hands": "Hands", "feet": "Feet"}
REGION_ORDER = ("LH", "RH", "LF", "RF")


class HasRegions(Protocol):
    """Anything that says which regions it covers (a film entry, a prepared image)."""

    @property
    def regions(self) -> tuple[str, ...]: ...


Film = TypeVar("Film", bound=HasRegions)


@dataclass(frozen=True)
class Page:
    """One region group and which of a visit's films of that group (0 for the first)."""

    group: str
    index: int = 0

    @property
    def title(self) -> str:
        """What the page is called on screen: "Hands", or "Hands 2" for a second film."""
        name = GROUP_TITLES.get(self.group, self.group.title())
        return f"{name} {self.index + 1}" if self.index else name


def group_of(regions: Sequence[str]) -> str | None:
    """The region group a film belongs to (by its first region in the standard order)."""
    for region in REGION_ORDER:
        if region in regions:
            return next(g for g, members in REGION_GROUPS.items() if region in members)
    return None


def films_of_group(films: Sequence[Film], group: str) -> list[Film]:
    """A visit's films of one group, left before right (a both-sides film first)."""
    members = REGION_GROUPS[group]

    def order(film: Film) -> tuple[int, int]:
        covered = [REGION_ORDER.index(r) for r in film.regions if r in members]
        return (-len(covered), min(covered))

    return sorted((f for f in films if group_of(f.regions) == group), key=order)


def pages(visits: Mapping[str, Sequence[Film]]) -> list[Page]:
    """The pages of a case in reading order: hands before feet, then any further films."""
    out: list[Page] = []
    for group in REGION_GROUPS:
        most = max((len(films_of_group(films, group)) for films in visits.values()), default=0)
        out += [Page(group, i) for i in range(most)]
    return out


def film_for_page(films: Sequence[Film], page: Page) -> Film | None:
    """The film a visit shows on ``page``, or None when it has no film of that group."""
    of_group = films_of_group(films, page.group)
    if not of_group:
        return None
    return of_group[min(page.index, len(of_group) - 1)]


def film_for_region(films: Sequence[Film], region: str) -> Film | None:
    """The film that covers ``region`` (a both-hands film serves LH and RH)."""
    covering = [f for f in films if region in f.regions]
    return min(covering, key=lambda f: len(f.regions)) if covering else None


def page_for_region(visits: Mapping[str, Sequence[Film]], region: str) -> Page | None:
    """The page on which the most visits show a film covering ``region``, if any."""
    group = group_of([region])
    if group is None:
        return None
    best: tuple[int, Page] | None = None
    for page in pages(visits):
        if page.group != group:
            continue
        shown = [film_for_page(films, page) for films in visits.values()]
        covering = sum(f is not None and region in f.regions for f in shown)
        if covering and (best is None or covering > best[0]):
            best = (covering, page)
    return best[1] if best else None


def next_page(all_pages: Sequence[Page], current: Page | None, step: int = 1) -> Page | None:
    """The page ``step`` after ``current``, wrapping round; the first page when none is set."""
    if not all_pages:
        return None
    if current is None or current not in all_pages:
        return all_pages[0]
    return all_pages[(list(all_pages).index(current) + step) % len(all_pages)]


# ====================================================================== arranging the panes


@dataclass(frozen=True)
class Arrangement:
    """The visits' panes in ``rows`` rows of ``columns`` panes, filled row by row (a last row
    with fewer panes shares its width among them)."""

    columns: int
    rows: int

    @property
    def name(self) -> str:
        """``row``, ``column`` or ``grid``: what a reader would call it."""
        if self.rows == 1:
            return "row"
        return "column" if self.columns == 1 else "grid"


def arrangements(count: int) -> list[Arrangement]:
    """Every useful arrangement of ``count`` panes, a single row first: for each number of
    rows, the fewest columns that hold them all (a 3 x 2 grid of 4 panes is no better than
    2 x 2)."""
    if count < 1:
        return [Arrangement(1, 1)]
    out: list[Arrangement] = []
    for columns in range(count, 0, -1):
        rows = math.ceil(count / columns)
        if not out or out[-1].rows != rows:
            out.append(Arrangement(columns, rows))
        else:
            out[-1] = Arrangement(columns, rows)
    return out


def pane_size(
    arrangement: Arrangement, width: float, height: float, gap: float = 0
) -> tuple[float, float]:
    """The width and height of one pane of a full row, in a ``width`` x ``height`` view whose
    panes are ``gap`` apart (the splitter's handles)."""
    columns, rows = arrangement.columns, arrangement.rows
    return (
        max(0.0, (width - gap * (columns - 1)) / columns),
        max(0.0, (height - gap * (rows - 1)) / rows),
    )


def fitted_area(pane_w: float, pane_h: float, film_w: float, film_h: float) -> float:
    """The area, in screen pixels, of a ``film_w`` x ``film_h`` film fitted whole into a
    ``pane_w`` x ``pane_h`` pane (aspect kept)."""
    if film_w <= 0 or film_h <= 0:
        return 0.0
    scale = min(pane_w / film_w, pane_h / film_h)
    return film_w * film_h * scale * scale


def smallest_film_area(
    arrangement: Arrangement,
    width: float,
    height: float,
    films: Sequence[tuple[float, float]],
    gap: float = 0,
) -> float:
    """The area of the smallest of ``films`` (width, height each) fitted into a pane of
    ``arrangement``; a pane's area when no film is shown."""
    pane_w, pane_h = pane_size(arrangement, width, height, gap)
    if not films:
        return pane_w * pane_h
    return min(fitted_area(pane_w, pane_h, w, h) for w, h in films)


def best_arrangement(
    count: int,
    width: float,
    height: float,
    films: Sequence[tuple[float, float]] = (),
    gap: float = 0,
    min_pane: tuple[float, float] = (0.0, 0.0),
) -> Arrangement:
    """The arrangement of ``count`` panes in a ``width`` x ``height`` view that draws the
    smallest of ``films`` (each film's width and height, in any unit) largest: landscape
    films on a wide screen go into a grid or a column rather than narrow portrait panes. A
    tie (within half a percent) keeps the arrangement with fewer rows. Arrangements whose
    panes are smaller than ``min_pane`` (width, height) are chosen only when none is larger."""
    every = arrangements(count)
    roomy = [
        a
        for a in every
        if all(x >= m for x, m in zip(pane_size(a, width, height, gap), min_pane, strict=True))
    ]
    best: tuple[float, Arrangement] | None = None
    for arrangement in roomy or every:
        area = smallest_film_area(arrangement, width, height, films, gap)
        if best is None or area > best[0] * 1.005:
            best = (area, arrangement)
    assert best is not None
    return best[1]
