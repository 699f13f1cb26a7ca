"""The films of a reader's case as the reading window receives them."""

from __future__ import annotations

from dataclasses import dataclass

from scorer.core.joints import JointPoint


@dataclass(frozen=True)
class CaseFilm:
    """One film of a case, under a visit letter: its name in this case (never the image's
    code), the regions it covers, the path of the case's own file of it, and its key in the
    pyramid cache (64 hex digits; a case's own: two cases that show the same film share no
    key, see ``scorer.services.images.case_film_key``), and the joint positions placed on it
    (:mod:`scorer.core.joints`; none yet: an empty tuple)."""

    image: str
    regions: tuple[str, ...]
    path: str
    sha256: str
    joints: tuple[JointPoint, ...] = ()
