"""Where a workstation keeps its window layout and view options (a light module: the log-in
window needs it before the heavy ones are imported).

One INI file per workstation (in its user-data folder) holds what belongs to the workstation
(the theme, which the log-in shows before anyone has logged in) and, under each user ID, what
belongs to the reader: :class:`ReaderLayout` (the reading window's geometry, its panels' sizes,
whether the worklist shows, synchronised zoom and pan), so readers sharing a workstation each
find the window as they left it.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from PySide6.QtCore import QByteArray, QSettings

from scorer.core.private_files import make_folder

#: The INI file, in the workstation's user-data folder.
LAYOUT_FILE = "gui-layout.ini"


def layout_settings(folder: str | os.PathLike[str]) -> QSettings:
    """The INI file in ``folder`` that remembers window layout and view options."""
    make_folder(folder)  # owner-only if it is made here, as the data folder always is
    return QSettings(str(Path(folder) / LAYOUT_FILE), QSettings.Format.IniFormat)


def _flag(value: object, default: bool) -> bool:
    """A boolean from QSettings (INI files give back the strings "true" and "false")."""
    if value is None:
        return default
    if isinstance(value, str):
        return value.lower() in ("true", "1", "yes")
    return bool(value)


def _bytes(value: object) -> QByteArray | None:
    """Saved Qt state (geometry, splitter sizes), or None when there is none."""
    return value if isinstance(value, QByteArray) and not value.isEmpty() else None


class ReaderLayout:
    """One reader's reading-window layout, kept in ``settings`` under their user ID: typed
    properties over the INI keys ``readers/<user ID>/...`` (the user ID percent-encoded, so
    any ID is one group of its own)."""

    def __init__(self, settings: QSettings, username: str) -> None:
        self.settings = settings
        self.username = username
        self._group = f"readers/{quote(username or '-', safe='')}"

    def _key(self, name: str) -> str:
        return f"{self._group}/{name}"

    @property
    def geometry(self) -> QByteArray | None:
        """The window's geometry (``QWidget.saveGeometry``), None before the first session."""
        return _bytes(self.settings.value(self._key("geometry")))

    @geometry.setter
    def geometry(self, value: QByteArray) -> None:
        self.settings.setValue(self._key("geometry"), value)

    @property
    def window_state(self) -> QByteArray | None:
        """The toolbars' places (``QMainWindow.saveState``)."""
        return _bytes(self.settings.value(self._key("state")))

    @window_state.setter
    def window_state(self, value: QByteArray) -> None:
        self.settings.setValue(self._key("state"), value)

    @property
    def panels(self) -> QByteArray | None:
        """The sizes of the worklist, the case view and the scores (``QSplitter.saveState``)."""
        return _bytes(self.settings.value(self._key("splitter")))

    @panels.setter
    def panels(self, value: QByteArray) -> None:
        self.settings.setValue(self._key("splitter"), value)

    @property
    def worklist(self) -> bool:
        """Whether the worklist panel shows (it does at first)."""
        return _flag(self.settings.value(self._key("worklist")), True)

    @worklist.setter
    def worklist(self, on: bool) -> None:
        self.settings.setValue(self._key("worklist"), bool(on))

    @property
    def sync(self) -> bool:
        """Whether the visits zoom and pan together (they do not at first)."""
        return _flag(self.settings.value(self._key("sync")), False)

    @sync.setter
    def sync(self, on: bool) -> None:
        self.settings.setValue(self._key("sync"), bool(on))
