"""Where a workstation keeps its window layout and view options (a light module: the log-in
window needs it before the heavy ones are imported)."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings

from scorer.core.private_files import make_folder

#: The INI file, in the workstation's user-data folder.
LAYOUT_FILE = "gui-layout.ini"


def layout_settings(folder: str | os.PathLike[str]) -> QSettings:
    """The INI file in ``folder`` that remembers window layout and view options."""
    make_folder(folder)  # owner-only if it is made here, as the data folder always is
    return QSettings(str(Path(folder) / LAYOUT_FILE), QSettings.Format.IniFormat)
