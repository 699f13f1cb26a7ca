"""scorer: a radiographic scoring workstation for rheumatoid-arthritis trials."""

__version__ = "0.1.0"


class ScorerWarning(UserWarning):
    """A warning raised by scorer itself (tests turn these into errors)."""
