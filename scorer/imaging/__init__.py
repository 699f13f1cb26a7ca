"""scorer.imaging (filled in by later issues)."""
