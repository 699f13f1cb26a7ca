"""The domain: scoring methods, reads, totals, change and progression. Pure Python."""
