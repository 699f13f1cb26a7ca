"""Why the workstation's window cannot open here, said before Qt tries.

Qt's own message when its platform plugin cannot load ("could not load the Qt platform plugin
xcb") names neither the missing library nor what to install, and it aborts the process. On
Linux, before the first window, :func:`window_problem` checks what Qt's X11 (xcb) platform
plugin needs: a display to talk to, and every system library the plugin and the Qt libraries
behind it link against. It reads the libraries' needs from their ELF headers (the PySide6
wheels bundle Qt but not the system libraries), tries to load each system library the way
the dynamic loader would, and names what is missing with the one ``apt-get install`` command
that installs it (``scripts/setup.sh`` installs the same packages).

Standard library only, so it runs even when Qt itself cannot load.
"""

from __future__ import annotations

import ctypes
import importlib.util
import mmap
import os
import re
import struct
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

# The Debian package (bookworm and later) of each system library Qt's xcb plugin, QtGui and
# QtWidgets link against, directly or through each other.
DEBIAN_PACKAGES: dict[str, str] = {
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libGLX.so.0": "libglx0",
    "libGLdispatch.so.0": "libglvnd0",
    "libOpenGL.so.0": "libopengl0",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libXau.so.6": "libxau6",
    "libXdmcp.so.6": "libxdmcp6",
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-glx.so.0": "libxcb-glx0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libpng16.so.16": "libpng16-16",
    "libbrotlidec.so.1": "libbrotli1",
    "libbrotlicommon.so.1": "libbrotli1",
    "libexpat.so.1": "libexpat1",
    "libz.so.1": "zlib1g",
    "libzstd.so.1": "libzstd1",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libgobject-2.0.so.0": "libglib2.0-0",
    "libgio-2.0.so.0": "libglib2.0-0",
    "libpcre2-8.so.0": "libpcre2-8-0",
    "libstdc++.so.6": "libstdc++6",
    "libgcc_s.so.1": "libgcc-s1",
}

_DT_NULL, _DT_NEEDED, _SHT_DYNAMIC = 0, 1, 6


class WindowCannotOpen(RuntimeError):
    """The workstation's window cannot open here; the message says why and what to do."""


def elf_needed(path: Path) -> list[str]:
    """The libraries an ELF shared object names as needed (its DT_NEEDED entries)."""
    with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data[:4] != b"\x7fELF":
            raise ValueError(f"{path} is not an ELF file")
        return _needed(data)


def _needed(data: mmap.mmap) -> list[str]:
    wide = data[4] == 2  # ELFCLASS64
    order = "<" if data[5] == 1 else ">"
    if wide:
        shoff, shentsize, shnum = (
            struct.unpack_from(order + "Q", data, 0x28)[0],
            *struct.unpack_from(order + "HH", data, 0x3A),
        )
        section = order + "IIQQQQIIQQ"  # name type flags addr offset size link info align entsize
        dyn = order + "qQ"
    else:
        shoff, shentsize, shnum = (
            struct.unpack_from(order + "I", data, 0x20)[0],
            *struct.unpack_from(order + "HH", data, 0x2E),
        )
        section = order + "IIIIIIIIII"
        dyn = order + "iI"
    sections = [struct.unpack_from(section, data, shoff + i * shentsize) for i in range(shnum)]
    needed: list[str] = []
    for _name, kind, _flags, _addr, offset, size, link, _info, _align, _entsize in sections:
        if kind != _SHT_DYNAMIC:
            continue
        strtab = sections[link][4]
        step = struct.calcsize(dyn)
        for at in range(offset, offset + size, step):
            tag, value = struct.unpack_from(dyn, data, at)
            if tag == _DT_NULL:
                break
            if tag == _DT_NEEDED:
                end = data.find(b"\0", strtab + value)
                needed.append(data[strtab + value : end].decode())
    return needed


def _try_load(soname: str) -> str | None:
    """None if the dynamic loader loads ``soname`` (and what it needs); else the library it
    could not find (``soname`` itself or one it needs)."""
    try:
        ctypes.CDLL(soname)
    except OSError as exc:
        found = re.search(r"([\w.+-]+\.so[\w.]*): cannot open shared object file", str(exc))
        return found.group(1) if found else soname
    return None


def missing_libraries(
    roots: Iterable[Path],
    bundled_dirs: Iterable[Path],
    load: Callable[[str], str | None] = _try_load,
) -> list[str]:
    """The system libraries that ``roots`` need, directly or through the libraries bundled in
    ``bundled_dirs``, and that this machine cannot load (in the order first met)."""
    dirs = list(bundled_dirs)
    todo = [p for p in roots if p.exists()]
    seen: set[str] = set()
    missing: list[str] = []
    while todo:
        library = todo.pop(0)
        for soname in elf_needed(library):
            if soname in seen:
                continue
            seen.add(soname)
            bundled = next((d / soname for d in dirs if (d / soname).exists()), None)
            if bundled is not None:
                todo.append(bundled)
            elif (absent := load(soname)) is not None and absent not in missing:
                missing.append(absent)
    return missing


def install_command(sonames: Iterable[str]) -> tuple[str | None, list[str]]:
    """(the ``apt-get install`` command for the libraries' Debian packages, or None when none
    is known; the libraries whose package is not known)."""
    packages: list[str] = []
    unknown: list[str] = []
    for soname in sonames:
        package = DEBIAN_PACKAGES.get(soname)
        if package is None:
            unknown.append(soname)
        elif package not in packages:
            packages.append(package)
    return ("apt-get install " + " ".join(packages) if packages else None), unknown


def pyside_dirs() -> tuple[Path, Path] | None:
    """(PySide6's Qt folder, the folders holding its bundled libraries), found without
    loading Qt; None when PySide6 is not installed."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent, Path(spec.origin).parent / "Qt"


def _uses_xcb(env: Mapping[str, str]) -> bool:
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(":")[0] == "xcb"
    # Unset: Qt picks Wayland when there is a Wayland display, else X11.
    return not env.get("WAYLAND_DISPLAY")


NO_DISPLAY = (
    "the workstation's window cannot open: there is no display here (DISPLAY and "
    "WAYLAND_DISPLAY are unset). Run scorer in a desktop session on this machine; over ssh, "
    "connect with `ssh -X`; for a virtual screen, start Xvfb and set DISPLAY to it."
)


def libraries_message(missing: list[str]) -> str:
    """What to tell the person: the missing libraries by name and the command that installs
    them."""
    command, unknown = install_command(missing)
    lines = [
        "the workstation's window cannot open: Qt's X11 (xcb) platform plugin needs "
        f"{'this library' if len(missing) == 1 else 'these libraries'}, not installed on "
        f"this machine: {', '.join(missing)}."
    ]
    if command:
        lines.append(
            f"Install {'it' if len(missing) == 1 else 'them'} as root with:\n    {command}"
        )
    if unknown:
        lines.append(
            f"The Debian package of {', '.join(unknown)} is not known to scorer: "
            f"`apt-file search {unknown[0]}` finds it."
        )
    lines.append("(scripts/setup.sh, run as root, installs everything the workstation needs.)")
    return "\n".join(lines)


def window_problem(
    env: Mapping[str, str] | None = None,
    plugin: Path | None = None,
    bundled_dirs: Iterable[Path] | None = None,
) -> str | None:
    """Why the workstation's window cannot open here, in words a site's IT person can act on;
    None when, as far as can be told before Qt tries, it can (and always off Linux, or on a
    platform other than xcb: QT_QPA_PLATFORM=offscreen, Wayland).

    ``plugin`` (default: PySide6's libqxcb.so) and ``bundled_dirs`` (default: PySide6's own
    library folders) are the xcb plugin to check and where its bundled Qt libraries are."""
    env = os.environ if env is None else env
    if not sys.platform.startswith("linux") or not _uses_xcb(env):
        return None
    if not env.get("DISPLAY"):
        return NO_DISPLAY
    if plugin is None or bundled_dirs is None:
        found = pyside_dirs()
        if found is None:
            return None  # reported by the import that follows
        package, qt = found
        shiboken = package.parent / "shiboken6"
        plugin = plugin or qt / "plugins" / "platforms" / "libqxcb.so"
        bundled_dirs = bundled_dirs or [qt / "lib", package, shiboken]
        roots = [plugin, qt / "lib" / "libQt6Widgets.so.6"]
    else:
        roots = [plugin]
    missing = missing_libraries(roots, bundled_dirs)
    return libraries_message(missing) if missing else None
