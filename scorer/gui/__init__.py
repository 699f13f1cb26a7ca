"""scorer.gui: the windows (the only package that imports PySide6)."""

from scorer.gui.pyside_workarounds import guard_singleton_refcounts

guard_singleton_refcounts()
