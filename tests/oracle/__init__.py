"""A second, deliberately plain implementation of `scorer analyze`, for property tests.

Nothing here imports :mod:`scorer`: the oracle reads the reads CSV text and the method files
in ``resources/methods`` itself, and works the statistics out from their definitions.
"""
