"""Why the window cannot open, said before Qt aborts: no display, or the system libraries Qt's
xcb platform plugin lacks, by name, with the one command that installs them.

The missing-library cases use fabricated plugins: small ELF files written here whose needed
libraries are absent from this machine (one Debian knows, one nobody does), linked through
a fabricated bundled library and through the real bundled Qt libraries."""

from __future__ import annotations

import ctypes
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from scorer.gui.qt_runtime import (
    NO_DISPLAY,
    _x_socket_answers,
    elf_needed,
    install_command,
    missing_libraries,
    pyside_dirs,
    window_problem,
    x_display_problem,
)
from tests.gui.xvfb import xvfb

REPO = Path(__file__).resolve().parents[2]
ABSENT_KNOWN = "libxcb-xinput.so.0"  # Debian's libxcb-xinput0: setup.sh has no use for it
ABSENT_UNKNOWN = "libscorer-absent.so.7"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's xcb")


@pytest.fixture(scope="module")
def xserver() -> Iterator[str]:
    """An Xvfb server (scripts/setup.sh --test installs it) on a free display it picks."""
    with xvfb("640x480x24") as display:
        yield display


def free_display() -> str:
    """An X display number no server listens on here."""
    number = next(
        n
        for n in range(4242, 4342)
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not _x_socket_answers("", n)
    )
    return f":{number}"


def write_elf(path: Path, needed: list[str]) -> Path:
    """A minimal 64-bit little-endian shared object: no code, a .dynstr and a .dynamic
    naming ``needed`` (what the dynamic loader and :func:`elf_needed` read)."""
    dynstr = b"\0"
    offsets = []
    for name in needed:
        offsets.append(len(dynstr))
        dynstr += name.encode() + b"\0"
    dynstr += b"\0" * (-len(dynstr) % 8)
    dynamic = b"".join(struct.pack("<qQ", 1, off) for off in offsets) + struct.pack("<qQ", 0, 0)
    dynstr_at = 64
    dynamic_at = dynstr_at + len(dynstr)
    sections_at = dynamic_at + len(dynamic)
    header = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header += struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, 0, sections_at, 0, 64, 0, 0, 64, 3, 0)
    section = "<IIQQQQIIQQ"
    sections = (
        struct.pack(section, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        + struct.pack(section, 0, 3, 0, 0, dynstr_at, len(dynstr), 0, 0, 1, 0)
        + struct.pack(section, 0, 6, 0, 0, dynamic_at, len(dynamic), 1, 0, 8, 16)
    )
    path.write_bytes(header + dynstr + dynamic + sections)
    return path


def test_the_absent_libraries_are_absent() -> None:
    for soname in (ABSENT_KNOWN, ABSENT_UNKNOWN):
        with pytest.raises(OSError):
            ctypes.CDLL(soname)


def test_the_needed_libraries_are_read_from_the_elf_headers(tmp_path: Path) -> None:
    fake = write_elf(tmp_path / "libfake.so", ["libc.so.6", ABSENT_KNOWN, "libQt6Core.so.6"])
    assert elf_needed(fake) == ["libc.so.6", ABSENT_KNOWN, "libQt6Core.so.6"]
    found = pyside_dirs()
    assert found is not None
    xcb = elf_needed(found[1] / "plugins" / "platforms" / "libqxcb.so")
    assert {"libQt6XcbQpa.so.6", "libxcb-icccm.so.4", "libxcb-keysyms.so.1"} <= set(xcb)
    with pytest.raises(ValueError, match="not an ELF file"):
        elf_needed(REPO / "README.md")


def test_a_plugin_lacking_libraries_is_told_with_their_names_and_the_install_command(
    tmp_path: Path, xserver: str
) -> None:
    """The plugin needs a bundled library (fabricated) that needs one absent library Debian
    packages, and the real bundled QtGui; and, itself, a library nobody packages."""
    found = pyside_dirs()
    assert found is not None
    bundled = tmp_path / "bundled"
    bundled.mkdir()
    write_elf(bundled / "libQt6Fake.so.6", [ABSENT_KNOWN, "libc.so.6"])
    plugin = write_elf(
        tmp_path / "libqxcb.so",
        ["libQt6Fake.so.6", "libQt6Gui.so.6", ABSENT_UNKNOWN, "libc.so.6", ABSENT_KNOWN],
    )
    dirs = [bundled, found[1] / "lib"]
    assert missing_libraries([plugin], dirs) == [ABSENT_UNKNOWN, ABSENT_KNOWN]

    message = window_problem({"DISPLAY": xserver}, plugin=plugin, bundled_dirs=dirs)
    assert message is not None
    assert message.startswith(
        "the workstation's window cannot open: Qt's X11 (xcb) platform plugin needs these "
        f"libraries, not installed on this machine: {ABSENT_UNKNOWN}, {ABSENT_KNOWN}."
    )
    assert "Install them as root with:\n    apt-get install libxcb-xinput0\n" in message
    assert f"`apt-file search {ABSENT_UNKNOWN}` finds it" in message
    assert "libc.so.6" not in message and "libQt6" not in message

    only_known = write_elf(tmp_path / "libqxcb2.so", ["libQt6Fake.so.6"])
    message = window_problem({"DISPLAY": xserver}, plugin=only_known, bundled_dirs=dirs)
    assert message is not None
    assert "needs this library, not installed on this machine: libxcb-xinput.so.0." in message
    assert "apt-file" not in message


def test_the_packages_are_named_once_in_the_order_met() -> None:
    assert install_command(
        ["libxcb-icccm.so.4", "libglib-2.0.so.0", "libgthread-2.0.so.0", "libxcb-keysyms.so.1"]
    ) == ("apt-get install libxcb-icccm4 libglib2.0-0 libxcb-keysyms1", [])
    assert install_command([ABSENT_UNKNOWN]) == (None, [ABSENT_UNKNOWN])


def test_no_display_is_said_and_other_platforms_are_left_to_qt() -> None:
    assert window_problem({}) == NO_DISPLAY
    forced = window_problem({"QT_QPA_PLATFORM": "xcb", "WAYLAND_DISPLAY": "wayland-0"})
    assert forced is not None
    assert forced.startswith(
        "the workstation's window cannot open: there is no X display (DISPLAY is unset)."
    )
    assert window_problem({"QT_QPA_PLATFORM": "offscreen"}) is None
    assert window_problem({"QT_QPA_PLATFORM": "minimal"}) is None


def test_on_this_machine_the_xcb_plugin_has_what_it_needs(xserver: str) -> None:
    """scripts/setup.sh installed every library (tests/gui/test_qt_runtime_debs.py checks that
    it names them)."""
    assert window_problem({"DISPLAY": xserver}) is None
    assert window_problem({"DISPLAY": xserver, "QT_QPA_PLATFORM": "xcb"}) is None
    assert window_problem({"DISPLAY": f"unix{xserver}.0", "QT_QPA_PLATFORM": "XCB"}) is None


def test_an_x_display_nobody_answers_on_is_named(xserver: str) -> None:
    """DISPLAY set but no X server there (or not an X display name at all, or a screen the
    server lacks): said before Qt aborts with its misleading "xcb-cursor0 is needed"."""
    nobody = free_display()
    message = window_problem({"DISPLAY": nobody})
    assert message == (
        f"the workstation's window cannot open: cannot connect to the X display '{nobody}' "
        "(is an X server running there, and may this account use it?). Run scorer in a "
        "desktop session on this machine; over ssh, connect with `ssh -X`; for a virtual "
        "screen, start Xvfb and set DISPLAY to it."
    )
    assert "cannot connect to the X display 'localhost" in (
        window_problem({"DISPLAY": "localhost" + nobody}) or ""
    )
    assert "DISPLAY='garbage' is not an X display name (like :0, host:0 or unix:0)" in (
        window_problem({"DISPLAY": "garbage"}) or ""
    )
    assert x_display_problem(f"{xserver}.7") == f"the X display '{xserver}.7' has no such screen"
    assert x_display_problem(xserver) is None
    # Without libxcb, the server's socket alone answers.
    assert _x_socket_answers("", int(xserver[1:])) is True
    assert _x_socket_answers("unix", int(xserver[1:])) is True
    assert _x_socket_answers("", int(nobody[1:])) is False


def test_wayland_needs_its_compositor_and_falls_back_to_x11(tmp_path: Path, xserver: str) -> None:
    """Qt tries Wayland then X11 in a Wayland session: either answering is enough; neither
    answering names both problems."""
    runtime = {"XDG_RUNTIME_DIR": str(tmp_path)}
    both = window_problem({"WAYLAND_DISPLAY": "wayland-9", **runtime})
    assert both == (
        "the workstation's window cannot open: no Wayland compositor answers on the Wayland "
        f"display 'wayland-9' ({tmp_path / 'wayland-9'}); and there is no X display (DISPLAY is "
        "unset). Run scorer in a desktop session on this machine; over ssh, connect with "
        "`ssh -X`; for a virtual screen, start Xvfb and set DISPLAY to it."
    )
    only = window_problem({"QT_QPA_PLATFORM": "wayland", "DISPLAY": xserver})
    assert only is not None
    assert "the Wayland display 'wayland-0' cannot be found: XDG_RUNTIME_DIR" in only
    assert window_problem({"WAYLAND_DISPLAY": "wayland-9", "DISPLAY": xserver, **runtime}) is None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as compositor:
        compositor.bind(str(tmp_path / "wayland-9"))
        compositor.listen(1)
        assert window_problem({"WAYLAND_DISPLAY": "wayland-9", **runtime}) is None
        assert (
            window_problem(
                {"QT_QPA_PLATFORM": "wayland-egl", "WAYLAND_DISPLAY": "wayland-9", **runtime}
            )
            is None
        )


def test_an_unknown_platform_plugin_is_named_with_the_installed_ones(xserver: str) -> None:
    message = window_problem({"QT_QPA_PLATFORM": "bogus", "DISPLAY": xserver})
    assert message is not None
    assert message.startswith(
        "the workstation's window cannot open: Qt has no platform plugin 'bogus' "
        "(QT_QPA_PLATFORM='bogus'); the ones installed: "
    )
    assert "offscreen" in message and "xcb" in message and "wayland-egl" in message
    assert message.endswith(": unset QT_QPA_PLATFORM or name one of them.")
    assert window_problem({"QT_QPA_PLATFORM": "bogus;xcb", "DISPLAY": xserver}) is None


def test_no_display_and_missing_libraries_are_both_said(tmp_path: Path) -> None:
    found = pyside_dirs()
    assert found is not None
    plugin = write_elf(tmp_path / "libqxcb.so", [ABSENT_KNOWN, "libc.so.6"])
    message = window_problem({}, plugin=plugin, bundled_dirs=[found[1] / "lib"])
    assert message == (
        f"{NO_DISPLAY}\nAlso, Qt's X11 (xcb) platform plugin needs this library, not installed "
        f"on this machine: {ABSENT_KNOWN}.\nInstall it as root with:\n    apt-get install "
        "libxcb-xinput0\n(scripts/setup.sh, run as root, installs everything the workstation "
        "needs.)"
    )


@pytest.mark.parametrize(
    "env",
    [
        {"DISPLAY": "FREE"},
        {"DISPLAY": "garbage"},
        {"WAYLAND_DISPLAY": "wayland-9"},
        {"QT_QPA_PLATFORM": "wayland"},
        {"QT_QPA_PLATFORM": "bogus"},
    ],
    ids=["unreachable", "garbage", "wayland-9", "wayland", "bogus"],
)
@pytest.mark.parametrize(
    "command",
    [["-m", "scorer", "gui"], ["-m", "scorer.gui.workstation"]],
    ids=["scorer gui", "python -m scorer.gui.workstation"],
)
def test_an_unusable_display_is_one_line_and_exit_1_not_an_abort(
    env: dict[str, str], command: list[str], tmp_path: Path
) -> None:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM", "XDG_RUNTIME_DIR")
    }
    env = {k: free_display() if v == "FREE" else v for k, v in env.items()}
    r = subprocess.run(
        [sys.executable, *command, "--db", str(tmp_path / "none.sqlite")],
        capture_output=True,
        text=True,
        env=base | env,
        cwd=REPO,
        timeout=120,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "scorer: error: the workstation's window cannot open: "
    ), r.stderr
    assert "xcb-cursor" not in r.stderr and "qt.qpa" not in r.stderr
    assert not (tmp_path / "none.sqlite").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["-m", "scorer", "gui", "--user", "reader3"],
        ["-m", "scorer.gui.workstation", "--user", "reader3"],
    ],
    ids=["scorer gui", "python -m scorer.gui.workstation"],
)
def test_without_a_display_the_window_commands_say_so_and_fail(
    command: list[str], tmp_path: Path
) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    r = subprocess.run(
        [sys.executable, *command, "--db", str(tmp_path / "none.sqlite")],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.strip() == f"scorer: error: {NO_DISPLAY}"
    assert not (tmp_path / "none.sqlite").exists()


def test_password_stdin_needs_a_user_and_a_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`scorer gui --password-stdin` logs --user in with the first line of standard input; no
    user, or nothing to read, is said before any window."""
    import io

    from scorer.cli import main

    assert main(["gui", "--password-stdin"]) == 2
    assert "--password-stdin logs in as --user" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["gui", "--user", "reader3", "--password-stdin"]) == 1
    assert "standard input has no more password lines" in capsys.readouterr().err
