"""The workstation's windows on a real X display: Qt's xcb platform, not offscreen.

Every other GUI test draws offscreen, which needs none of the libraries Qt's xcb platform
plugin loads; these run ``scorer demo`` and ``scorer gui`` as a person would, as subprocesses
on an Xvfb server this module starts (Xvfb comes from ``scripts/setup.sh --test``), and check
from the X server's side that each window is there, by its title, and has drawn content:
the log-in (the README's first command, and ``scorer gui``), the reading window (reader3),
the coordinator's desk (coord) and the monitor's window (monitor); the last three log in
with ``scorer gui --password-stdin``.

Set SCORER_XCB_SHOTS to a folder to keep each window's screenshot there as PNG (the
README's docs/login-xcb.png is the first command's). The reading window, at a reader's first
session, fills the 1920 x 1080 screen with the visits' films arranged for their shape.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QImage

from tests.gui.xvfb import xvfb

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.posix,
    pytest.mark.slow,
    pytest.mark.skipif(
        not sys.platform.startswith("linux") or shutil.which("Xvfb") is None,
        reason="needs Linux with Xvfb, xwd and xwininfo (scripts/setup.sh --test installs them)",
    ),
]


@dataclass
class Demo:
    db: Path
    passwords: dict[str, str]
    env: dict[str, str]


@pytest.fixture(scope="module")
def xserver() -> Iterator[str]:
    """An Xvfb server on a free display (Xvfb picks it and says which), 1920 x 1080 x 24."""
    with xvfb("1920x1080x24") as display:
        yield display


@pytest.fixture(scope="module")
def demo(xserver: str, tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """The demo trial, set up once by ``scorer demo --no-gui`` (about a minute)."""
    base = tmp_path_factory.mktemp("xcb-demo")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WAYLAND_DISPLAY", "SCORER_DB", "QT_QPA_PLATFORM", "QT_SCALE_FACTOR")
    }
    env |= {
        "DISPLAY": xserver,
        "QT_QPA_PLATFORM": "xcb",
        "SCORER_DATA_DIR": str(base / "data"),
        "SCORER_CONFIG": str(base / "no-site-config.toml"),
    }
    db = base / "demo.sqlite"
    r = subprocess.run(
        [sys.executable, "-m", "scorer", "demo", "--no-gui", "--db", str(db)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=900,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    passwords = {}
    for line in db.with_name("demo-accounts.txt").read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            user, _role, password = line.split()
            passwords[user] = password
    return Demo(db, passwords, env)


@dataclass
class Window:
    id: str
    title: str
    x: int
    y: int
    width: int
    height: int


def windows(display: str) -> list[Window]:
    """The X server's top-level windows that are mapped, with their titles and places."""
    tree = subprocess.run(
        ["xwininfo", "-display", display, "-root", "-children"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = []
    for line in tree.splitlines():
        line = line.strip()
        if not line.startswith("0x") or '"' not in line:
            continue
        wid = line.split()[0]
        info = subprocess.run(
            ["xwininfo", "-display", display, "-id", wid],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        fields = {
            k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in info.splitlines()) if v
        }
        if fields.get("Map State") != "IsViewable":
            continue
        title = info.split('"', 2)[1] if info.count('"') >= 2 else ""
        found.append(
            Window(
                wid,
                title,
                int(fields["Absolute upper-left X"]),
                int(fields["Absolute upper-left Y"]),
                int(fields["Width"]),
                int(fields["Height"]),
            )
        )
    return found


def screenshot(display: str) -> np.ndarray:
    """The whole screen as the X server holds it (``xwd -root``), rows x columns x RGB."""
    data = subprocess.run(
        ["xwd", "-display", display, "-root", "-silent"], capture_output=True, check=True
    ).stdout
    header = struct.unpack(">25I", data[:100])
    size, width, height, lsb_first, per_line, ncolors = (
        header[0],
        header[4],
        header[5],
        header[7] == 0,
        header[12],
        header[19],
    )
    step = header[11] // 8  # bytes per pixel (rows may be padded beyond width x step)
    raw = np.frombuffer(data, np.uint8, count=per_line * height, offset=size + 12 * ncolors)
    cells = raw.reshape(height, per_line)[:, : width * step].reshape(height, width, step)
    if not lsb_first:
        cells = cells[..., ::-1]
    value = sum(cells[..., i].astype(np.uint32) << (8 * i) for i in range(step))
    channels = []
    for mask in header[14:17]:  # red, green, blue
        channels.append(((value & mask) >> ((mask & -mask).bit_length() - 1)).astype(np.uint8))
    return np.stack(channels, axis=-1)


def save_png(pixels: np.ndarray, path: Path) -> None:
    rows = np.ascontiguousarray(pixels)
    image = QImage(
        rows.data, rows.shape[1], rows.shape[0], rows.strides[0], QImage.Format.Format_RGB888
    )
    assert image.save(str(path)), path


@dataclass
class Shown:
    window: Window
    pixels: np.ndarray


def wait_for_window(
    display: str, title: str, process: subprocess.Popen[str], timeout: float = 120
) -> Shown:
    """The window whose title starts with ``title`` once it is mapped and has stopped
    changing (its images load after it shows): what the X server shows of it."""
    deadline = time.monotonic() + timeout
    window = None
    while window is None:
        if process.poll() is not None:
            pytest.fail(f"scorer exited with {process.returncode} before showing {title!r}")
        assert time.monotonic() < deadline, f"no window {title!r}; there are {windows(display)}"
        window = next((w for w in windows(display) if w.title.startswith(title)), None)
        if window is None:
            time.sleep(0.3)
    before: np.ndarray | None = None
    while True:
        time.sleep(1.0)
        shot = screenshot(display)
        w = next((w for w in windows(display) if w.id == window.id), window)
        pixels = shot[w.y : w.y + w.height, w.x : w.x + w.width]
        if before is not None and before.shape == pixels.shape and (before == pixels).all():
            return Shown(w, pixels)
        if time.monotonic() > deadline:
            return Shown(w, pixels)
        before = pixels


def assert_drawn(shown: Shown, min_width: int, min_height: int) -> None:
    """Not a blank frame: many colours (text is anti-aliased), no one colour nearly all of it."""
    pixels = shown.pixels
    assert shown.window.width >= min_width and shown.window.height >= min_height, shown.window
    flat = pixels.reshape(-1, 3)
    colours, counts = np.unique(flat, axis=0, return_counts=True)
    assert len(colours) >= 32, f"{shown.window.title}: only {len(colours)} colours"
    assert counts.max() / len(flat) < 0.9, f"{shown.window.title}: one colour covers it"


def run_scorer(
    demo: Demo, args: list[str], log: Path, password: str | None = None
) -> subprocess.Popen[str]:
    """``scorer ARGS`` on the X display, with ``password`` on its standard input and its
    output in ``log``."""
    read, write = os.pipe()
    os.write(write, f"{password}\n".encode() if password is not None else b"")
    os.close(write)
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "scorer", *args],
            stdin=read,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env=demo.env,
            cwd=REPO,
        )
    os.close(read)
    return process


@pytest.fixture
def scorer(demo: Demo) -> Iterator[list[subprocess.Popen[str]]]:
    """The scorer processes a test starts; each is stopped afterwards."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def keep(shown: Shown, name: str, tmp_path: Path) -> None:
    save_png(shown.pixels, tmp_path / f"{name}.png")
    folder = os.environ.get("SCORER_XCB_SHOTS")
    if folder:
        save_png(shown.pixels, Path(folder) / f"{name}.png")


def test_the_first_command_shows_the_log_in(
    demo: Demo, xserver: str, scorer: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    """`scorer demo` (the README's first command, after setup.sh) on the demo it set up:
    the log-in opens on the X display."""
    log = tmp_path / "scorer.log"
    process = run_scorer(demo, ["demo", "--db", str(demo.db)], log)
    scorer.append(process)
    shown = wait_for_window(xserver, "scorer — log in", process)
    keep(shown, "login-xcb", tmp_path)
    assert_drawn(shown, 300, 100)
    assert process.poll() is None, log.read_text()
    assert "Opening the workstation" in log.read_text()


@pytest.mark.parametrize(
    ("user", "title", "size"),
    [
        ("", "scorer — log in", (300, 100)),
        ("reader3", "scorer — reading", (1000, 600)),
        ("coord", "scorer — coordinator's desk — DEMO-RA", (800, 500)),
        ("monitor", "scorer — monitor", (600, 400)),
    ],
    ids=["log-in", "reading window", "coordinator's desk", "monitor's window"],
)
def test_scorer_gui_opens_the_window_on_xcb(
    demo: Demo,
    xserver: str,
    scorer: list[subprocess.Popen[str]],
    tmp_path: Path,
    user: str,
    title: str,
    size: tuple[int, int],
) -> None:
    args = ["gui", "--db", str(demo.db)]
    if user:
        args += ["--user", user, "--password-stdin"]
    log = tmp_path / "scorer.log"
    process = run_scorer(demo, args, log, demo.passwords[user] if user else None)
    scorer.append(process)
    shown = wait_for_window(xserver, title, process)
    keep(shown, f"gui-{user or 'login'}-xcb", tmp_path)
    assert_drawn(shown, *size)
    if user == "reader3":  # a reader's first session: the whole screen, the panes 2 x 2
        assert (shown.window.width, shown.window.height) == (1920, 1080), shown.window
    if user:  # logged in: the log-in is gone
        assert not [w for w in windows(xserver) if w.title.startswith("scorer — log in")]
    assert process.poll() is None, log.read_text()
    assert "could not load the Qt platform plugin" not in log.read_text()
