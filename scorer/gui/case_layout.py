"""Which film each visit of a case shows: the region pages of a case (hands, feet), Qt-free.

A case gives each visit letter a list of films, each covering one or more regions (a PA film
of both hands covers LH and RH). The viewer shows one *page* at a time: a region group (hands
or feet) and, when a visit has more than one film of that group (separate left and right
films), which of them. Every visit shows its film for the same page side by side, so the
reader compares like with like; a film covering both hands serves both hand regions.
"""

from __future__ import annotations

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
