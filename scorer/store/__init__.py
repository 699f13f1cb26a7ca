"""scorer.store (filled in by later issues)."""
