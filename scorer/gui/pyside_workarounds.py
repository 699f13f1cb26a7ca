"""Workarounds for bugs of the installed PySide6, applied when ``scorer.gui`` is imported.

PySide6 6.12.0 on CPython 3.11 drops a reference to the object it returns in two common
cases: ``None`` from every Qt method that returns nothing (``update()``, ``setPen()``,
``processEvents()``…) and ``True`` from ``Signal.emit()``. These singletons are not immortal
before CPython 3.12, so after a few thousand such calls the interpreter aborts with "Fatal
Python error: none_dealloc" (or ``bool_dealloc``) — within minutes of reading. PySide6 6.11
does not do this. Until the dependency pin excludes 6.12.0, :func:`guard_singleton_refcounts`
detects the leak with probe calls and, only then, gives ``None``, ``True`` and ``False`` a
reference count too large to ever run down (what CPython 3.12 does for immortal objects).
Nothing is changed when the installed PySide6 does not leak or Python makes them immortal.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal

_HEADROOM = 1 << 40  # references: more calls than a workstation will ever make
_PROBE_CALLS = 64


class _Probe(QObject):
    pinged = Signal()


def references_lost_per_call() -> dict[str, float]:
    """How many references one void call drops from ``None`` and one ``emit()`` from
    ``True`` (0 each when the installed PySide6 is correct)."""
    probe = _Probe()
    probe.pinged.connect(lambda: None)
    lost: dict[str, float] = {}
    before = sys.getrefcount(None)
    for _ in range(_PROBE_CALLS):
        probe.setObjectName("probe")
    lost["None"] = (before - sys.getrefcount(None)) / _PROBE_CALLS
    before = sys.getrefcount(True)
    for _ in range(_PROBE_CALLS):
        probe.pinged.emit()
    lost["True"] = (before - sys.getrefcount(True)) / _PROBE_CALLS
    return lost


def guard_singleton_refcounts() -> bool:
    """Give ``None``, ``True`` and ``False`` ample references when the installed PySide6
    leaks them; True if it did."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False  # immortal there
    if max(references_lost_per_call().values()) <= 0:
        return False
    for singleton in (None, True, False):
        refcount = ctypes.c_ssize_t.from_address(id(singleton))
        # Only on the standard object layout, where the count is the object's first field.
        if refcount.value == sys.getrefcount(singleton) - 1:
            refcount.value += _HEADROOM
    return True
