"""scorer.reports (filled in by later issues)."""
