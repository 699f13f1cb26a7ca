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
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

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


def platform_candidates(env: Mapping[str, str]) -> list[str]:
    """The platform plugins Qt will try, in order (the first that starts wins): those
    QT_QPA_PLATFORM names (";"-separated, options after ":" dropped); unset, Wayland then X11
    in a Wayland session (WAYLAND_DISPLAY set, or XDG_SESSION_TYPE=wayland), else X11."""
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform:
        names = [part.split(":")[0].strip().lower() for part in platform.split(";")]
        return [n for n in names if n] or ["xcb"]
    if env.get("WAYLAND_DISPLAY") or env.get("XDG_SESSION_TYPE") == "wayland":
        return ["wayland", "xcb"]
    return ["xcb"]


def _uses_xcb(env: Mapping[str, str]) -> bool:
    return "xcb" in platform_candidates(env)


#: Platform keys a plugin file answers to beyond the one in its name.
_PLUGIN_ALIASES = {"wayland": ("wayland-egl", "wayland-brcm")}


def platform_plugins(folder: Path) -> list[str]:
    """The platform names the plugins in ``folder`` (PySide6's plugins/platforms) answer to."""
    names: list[str] = []
    for file in sorted(folder.glob("libq*.so")):
        name = file.name[len("libq") : -len(".so")]
        names += [name, *_PLUGIN_ALIASES.get(name, ())]
    return names


HINT = (
    "Run scorer in a desktop session on this machine; over ssh, connect with `ssh -X`; for a "
    "virtual screen, start Xvfb and set DISPLAY to it."
)
NO_DISPLAY = (
    "the workstation's window cannot open: there is no display here (DISPLAY and "
    f"WAYLAND_DISPLAY are unset). {HINT}"
)

#: xcb_connection_has_error's codes that name the display's own fault (libxcb's xcb.h).
_XCB_CONN_ERROR, _XCB_PARSE_ERR, _XCB_INVALID_SCREEN = 1, 5, 6
_X_DISPLAY = re.compile(r"^(?P<host>[^:/]*):(?P<number>\d+)(?:\.(?P<screen>\d+))?$")
_TCP_TIMEOUT = 5.0


#: Displays connected to, each connection kept open for the process's life: an X server
#: with no other client (a bare Xvfb) resets when its last client leaves, and refuses
#: connections for a moment while it does, Qt's among them.
_KEPT: dict[str, int] = {}
_TRIES, _PAUSE = 3, 0.25


def _xcb_connect(display: str) -> int | None:
    """libxcb's verdict on connecting to ``display`` (it reads XAUTHORITY as Qt will):
    0 connected (the connection kept, see ``_KEPT``), else xcb_connection_has_error's code
    after a few tries; None when libxcb cannot be loaded."""
    if display in _KEPT:
        return 0
    code: int | None = None
    for attempt in range(_TRIES):
        if attempt:
            time.sleep(_PAUSE)
        code = _xcb_try(display)
        if code != _XCB_CONN_ERROR:
            break
    return code


def _xcb_try(display: str) -> int | None:
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError:
        return None
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
    xcb.xcb_connection_has_error.restype = ctypes.c_int
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.restype = None
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    xcb.xcb_get_setup.restype = ctypes.c_void_p
    xcb.xcb_get_setup.argtypes = [ctypes.c_void_p]
    xcb.xcb_setup_roots_length.restype = ctypes.c_int
    xcb.xcb_setup_roots_length.argtypes = [ctypes.c_void_p]
    screen = ctypes.c_int(0)
    connection = xcb.xcb_connect(os.fsencode(display), ctypes.byref(screen))
    code = int(xcb.xcb_connection_has_error(connection))
    if code == 0 and screen.value >= xcb.xcb_setup_roots_length(xcb.xcb_get_setup(connection)):
        code = _XCB_INVALID_SCREEN  # libxcb connects; Qt then aborts
    if code == 0:
        _KEPT[display] = connection
    else:
        xcb.xcb_disconnect(connection)  # safe on the error connection too
    return code


def _socket_answers(family: int, address: Any) -> bool:
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(_TCP_TIMEOUT)
        try:
            sock.connect(address)
        except OSError:
            return False
    return True


def _x_socket_answers(host: str, number: int) -> bool:
    """Whether an X server listens for display ``number`` on ``host`` (local: its Unix
    socket, abstract or in /tmp/.X11-unix; else TCP port 6000 + number)."""
    if host in ("", "unix"):
        path = f"/tmp/.X11-unix/X{number}"
        if sys.platform.startswith("linux") and _socket_answers(socket.AF_UNIX, "\0" + path):
            return True
        return _socket_answers(socket.AF_UNIX, path)
    try:
        socket.create_connection((host, 6000 + number), timeout=_TCP_TIMEOUT).close()
    except (OSError, UnicodeError):
        return False
    return True


def x_display_problem(display: str) -> str | None:
    """Why the X display ``display`` (DISPLAY's value) cannot be used, as a clause; None when
    a connection to it succeeds. libxcb decides (as Qt will, authorisation included); the
    socket alone when libxcb cannot be loaded."""
    shown = repr(display)
    unreachable = (
        f"cannot connect to the X display {shown} (is an X server running there, and may "
        "this account use it?)"
    )
    parsed = _X_DISPLAY.match(display)
    host, number = (parsed["host"], int(parsed["number"])) if parsed else ("", 0)
    # A remote server first over TCP with a time limit: libxcb would wait for minutes.
    if host not in ("", "unix") and not _x_socket_answers(host, number):
        return unreachable
    code = _xcb_connect(display)
    if code is None:
        if parsed is None:
            return f"DISPLAY={shown} is not an X display name (like :0, host:0 or unix:0)"
        return None if _x_socket_answers(host, number) else unreachable
    if code == 0:
        return None
    if code == _XCB_PARSE_ERR:
        return f"DISPLAY={shown} is not an X display name (like :0, host:0 or unix:0)"
    if code == _XCB_INVALID_SCREEN:
        return f"the X display {shown} has no such screen"
    return unreachable


def wayland_problem(env: Mapping[str, str]) -> str | None:
    """Why no Wayland compositor can be reached (as a clause), or None: the socket
    $XDG_RUNTIME_DIR/$WAYLAND_DISPLAY (wayland-0 when unset) must answer."""
    if env.get("WAYLAND_SOCKET"):
        return None  # a connection handed over by the parent: nothing to check
    name = env.get("WAYLAND_DISPLAY") or "wayland-0"
    if name.startswith("/"):
        path = name
    elif env.get("XDG_RUNTIME_DIR"):
        path = str(Path(env["XDG_RUNTIME_DIR"]) / name)
    else:
        return (
            f"the Wayland display {name!r} cannot be found: XDG_RUNTIME_DIR, the folder "
            "holding its socket, is unset"
        )
    if not _socket_answers(socket.AF_UNIX, path):
        return f"no Wayland compositor answers on the Wayland display {name!r} ({path})"
    return None


def libraries_message(missing: list[str], also: bool = False) -> str:
    """What to tell the person: the missing libraries by name and the command that installs
    them (``also``: as a second problem, after the display's)."""
    command, unknown = install_command(missing)
    lead = "Also, " if also else "the workstation's window cannot open: "
    lines = [
        f"{lead}Qt's X11 (xcb) platform plugin needs "
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
    plugins_dir: Path | None = None,
) -> str | None:
    """Why the workstation's window cannot open here, in words a site's IT person can act on;
    None when, as far as can be told before Qt tries, it can (and always off Linux).

    For each platform Qt will try (:func:`platform_candidates`): a plugin by that name must be
    installed; X11 (xcb) needs a display it can connect to and every system library its plugin
    links against; Wayland a compositor's socket. Other platforms (offscreen, vnc...) are left
    to Qt. One platform that can start is enough; else every one's problem is said.

    ``plugin`` (default: PySide6's libqxcb.so) and ``bundled_dirs`` (default: PySide6's own
    library folders) are the xcb plugin to check and where its bundled Qt libraries are;
    ``plugins_dir`` (default: PySide6's plugins/platforms) where the platform plugins are."""
    env = os.environ if env is None else env
    if not sys.platform.startswith("linux"):
        return None
    found = pyside_dirs()
    if plugins_dir is None and found is not None:
        plugins_dir = found[1] / "plugins" / "platforms"
    installed = platform_plugins(plugins_dir) if plugins_dir is not None else None
    clauses: list[str] = []
    missing: list[str] = []
    for name in platform_candidates(env):
        if installed is not None and name not in installed:
            clauses.append(
                f"Qt has no platform plugin {name!r} (QT_QPA_PLATFORM="
                f"{env.get('QT_QPA_PLATFORM', '')!r}); the ones installed: "
                f"{', '.join(installed)}: unset QT_QPA_PLATFORM or name one of them"
            )
            continue
        if name == "xcb":
            lacking = _xcb_missing(plugin, bundled_dirs, found)
            display = env.get("DISPLAY", "")
            reach = (
                "there is no X display (DISPLAY is unset)"
                if not display
                else x_display_problem(display)
            )
            if reach is None and not lacking:
                return None
            if reach is not None:
                clauses.append(reach)
            missing += [m for m in lacking if m not in missing]
        elif name.startswith("wayland"):
            reach = wayland_problem(env)
            if reach is None:
                return None
            clauses.append(reach)
        else:
            return None  # offscreen, minimal, vnc, eglfs...: Qt's own
    if not clauses and not missing:
        return None
    if clauses == ["there is no X display (DISPLAY is unset)"] and not env.get("WAYLAND_DISPLAY"):
        message = NO_DISPLAY
    elif clauses:
        hint = "" if all(c.startswith("Qt has no") for c in clauses) else f" {HINT}"
        message = f"the workstation's window cannot open: {'; and '.join(clauses)}.{hint}"
    else:
        return libraries_message(missing)
    return message + ("\n" + libraries_message(missing, also=True) if missing else "")


def _xcb_missing(
    plugin: Path | None, bundled_dirs: Iterable[Path] | None, found: tuple[Path, Path] | None
) -> list[str]:
    """The system libraries Qt's xcb plugin (and QtWidgets) lack here."""
    if plugin is None or bundled_dirs is None:
        if found is None:
            return []  # reported by the import that follows
        package, qt = found
        shiboken = package.parent / "shiboken6"
        plugin = plugin or qt / "plugins" / "platforms" / "libqxcb.so"
        bundled_dirs = bundled_dirs or [qt / "lib", package, shiboken]
        roots = [plugin, qt / "lib" / "libQt6Widgets.so.6"]
    else:
        roots = [plugin]
    return missing_libraries(roots, bundled_dirs)
