"""scorer.gui (filled in by later issues)."""
