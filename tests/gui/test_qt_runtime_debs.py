"""`scripts/setup.sh` installs every Debian package the workstation's window needs at run time.

PySide6's wheels bundle Qt but not the system libraries Qt links against: the xcb platform
plugin in particular needs libxcb-icccm4, libxcb-keysyms1, libxcb-cursor0 and more, and
without them the window never opens. The GUI tests run offscreen, so nothing else notices.
This test runs ``ldd`` on every Qt library scorer loads (the PySide6 modules scorer imports,
the xcb platform plugin, its GL integrations and the input contexts xcb loads) and fails on a
library that is not found, or one whose Debian package (``dpkg -S``) is neither named in
setup.sh's base list, nor pulled in by what it names (the recursive Depends closure), nor of
Priority required.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import PySide6
import pytest

REPO = Path(__file__).resolve().parents[2]
SETUP = REPO / "scripts" / "setup.sh"
PYSIDE = Path(PySide6.__file__).resolve().parent
PLUGINS = PYSIDE / "Qt" / "plugins"

pytestmark = [
    pytest.mark.posix,
    pytest.mark.skipif(
        not sys.platform.startswith("linux") or shutil.which("dpkg") is None,
        reason="checks Debian packages: needs Linux with dpkg",
    ),
]


def setup_base_packages() -> list[str]:
    """The Debian packages setup.sh installs for the workstation (its ``debs=(...)`` list)."""
    match = re.search(r"^debs=\(([^)]*)\)", SETUP.read_text(encoding="utf-8"), re.MULTILINE)
    assert match, "scripts/setup.sh has no debs=(...) list"
    return match.group(1).split()


def qt_modules_scorer_imports() -> list[str]:
    """The PySide6 modules named anywhere under scorer/ (QtCore, QtGui, QtWidgets, ...)."""
    names: set[str] = set()
    for source in (REPO / "scorer").rglob("*.py"):
        names.update(re.findall(r"PySide6\.(Qt\w+)", source.read_text(encoding="utf-8")))
    return sorted(names)


def qt_libraries_scorer_loads() -> list[Path]:
    modules = [PYSIDE / f"{name}.abi3.so" for name in qt_modules_scorer_imports()]
    assert {"QtCore", "QtGui", "QtWidgets"} <= set(qt_modules_scorer_imports())
    plugins = [
        PLUGINS / "platforms" / "libqxcb.so",
        *sorted((PLUGINS / "xcbglintegrations").glob("*.so")),
        PLUGINS / "platforminputcontexts" / "libcomposeplatforminputcontextplugin.so",
        PLUGINS / "platforminputcontexts" / "libibusplatforminputcontextplugin.so",
    ]
    absent = [p for p in modules + plugins if not p.exists()]
    assert not absent, f"missing from PySide6: {absent}"
    return modules + plugins


def ldd(library: Path) -> tuple[set[str], set[Path]]:
    """(sonames not found, system paths resolved) for ``library`` and everything it needs."""
    out = subprocess.run(["ldd", str(library)], capture_output=True, text=True, check=True).stdout
    missing: set[str] = set()
    resolved: set[Path] = set()
    for line in out.splitlines():
        if "=>" not in line:
            continue
        soname, _, target = (part.strip() for part in line.partition("=>"))
        if target.startswith("not found"):
            missing.add(soname)
        elif target.startswith("/"):
            path = Path(target.split(" (")[0])
            if "site-packages" not in path.parts:  # bundled with the wheels, not Debian's
                resolved.add(path)
    return missing, resolved


def owning_packages(paths: set[Path]) -> dict[Path, str]:
    """Each path's Debian package by ``dpkg -S``, trying the path as ldd gave it, its real
    path, and its twin across the merged /usr (dpkg knows /lib/... or /usr/lib/..., not both)."""
    variants: dict[str, Path] = {}
    for path in paths:
        for v in (path, path.resolve()):
            text = str(v)
            variants[text] = path
            twin = text.removeprefix("/usr") if text.startswith("/usr/") else "/usr" + text
            variants[twin] = path
    out = subprocess.run(
        ["dpkg", "-S", *sorted(variants)], capture_output=True, text=True, check=False
    ).stdout
    owner: dict[Path, str] = {}
    for line in out.splitlines():
        packages, sep, file = line.rpartition(": ")
        if sep and file in variants:
            owner[variants[file]] = packages.split(",")[0].strip().split(":")[0]
    return owner


def installed_packages() -> dict[str, dict[str, str]]:
    fields = ["Package", "Status", "Priority", "Provides", "Depends", "Pre-Depends"]
    fmt = "\\x1f".join(f"${{{f}}}" for f in fields)
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", fmt.replace("\\x1f", "\x1f") + "\x1e"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    packages: dict[str, dict[str, str]] = {}
    for record in out.split("\x1e"):
        values = record.split("\x1f")
        if len(values) == len(fields) and values[1].endswith(" installed"):
            packages[values[0]] = dict(zip(fields, values, strict=True))
    return packages


def _names(relation: str) -> list[str]:
    """Package names in a Depends-style field: every alternative, without versions or arch."""
    return [
        re.split(r"[\s(:]", alt.strip(), maxsplit=1)[0]
        for group in relation.split(",")
        for alt in group.split("|")
        if alt.strip()
    ]


def depends_closure(roots: list[str], packages: dict[str, dict[str, str]]) -> set[str]:
    providers: dict[str, set[str]] = {}
    for name, info in packages.items():
        for virtual in _names(info["Provides"]):
            providers.setdefault(virtual, set()).add(name)
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        for real in ({name} if name in packages else set()) | providers.get(name, set()):
            if real not in seen:
                seen.add(real)
                info = packages[real]
                todo.extend(_names(info["Depends"]) + _names(info["Pre-Depends"]))
    return seen


def test_setup_sh_installs_every_library_qt_loads() -> None:
    base = setup_base_packages()
    packages = installed_packages()
    not_installed = [p for p in base if p not in packages]
    assert not not_installed, (
        f"setup.sh names {not_installed} but they are not installed: run scripts/setup.sh as root"
    )

    not_found: dict[str, set[str]] = {}
    system: set[Path] = set()
    for library in qt_libraries_scorer_loads():
        missing, resolved = ldd(library)
        for soname in missing:
            not_found.setdefault(soname, set()).add(library.name)
        system |= resolved
    assert not not_found, "ldd finds no " + "; ".join(
        f"{soname} (needed by {', '.join(sorted(by))})" for soname, by in sorted(not_found.items())
    )

    owner = owning_packages(system)
    assert set(owner) == system, f"no Debian package owns {sorted(system - set(owner))}"
    allowed = depends_closure(base, packages)
    unnamed = {
        path: package
        for path, package in owner.items()
        if package not in allowed and packages.get(package, {}).get("Priority") != "required"
    }
    assert not unnamed, "setup.sh's debs=(...) neither names nor pulls in " + "; ".join(
        f"{package} (for {path.name})" for path, package in sorted(unnamed.items())
    )


def test_the_checks_see_what_they_look_for() -> None:
    """The closure follows Depends, alternatives and Provides; ldd reports libc as resolved."""
    packages = {
        "a": {"Provides": "", "Depends": "b (>= 1), c:any | d", "Pre-Depends": ""},
        "b": {"Provides": "virt", "Depends": "", "Pre-Depends": ""},
        "c": {"Provides": "", "Depends": "", "Pre-Depends": "virt"},
        "x": {"Provides": "", "Depends": "", "Pre-Depends": ""},
    }
    assert depends_closure(["a"], packages) == {"a", "b", "c"}
    _, resolved = ldd(PLUGINS / "platforms" / "libqxcb.so")
    assert any(p.name.startswith("libc.so") for p in resolved)
    assert any(owning_packages({p}) for p in resolved if p.name.startswith("libc.so"))


def test_the_message_names_the_packages_dpkg_does() -> None:
    """scorer.gui.qt_runtime's table (what `scorer gui` tells to install) agrees with dpkg on
    every library the Qt libraries load here, and knows each xcb and X11 one."""
    from scorer.gui.qt_runtime import DEBIAN_PACKAGES

    system: set[Path] = set()
    for library in qt_libraries_scorer_loads():
        system |= ldd(library)[1]
    owner = owning_packages(system)
    sonames = {path.name: package for path, package in owner.items()}
    wrong = {
        soname: (DEBIAN_PACKAGES[soname], package)
        for soname, package in sonames.items()
        if soname in DEBIAN_PACKAGES and DEBIAN_PACKAGES[soname] != package
    }
    assert not wrong, f"soname: (table, dpkg) {wrong}"
    unknown = [s for s in sonames if s.startswith(("libxcb", "libX", "libxkb"))]
    assert set(unknown) <= set(DEBIAN_PACKAGES), set(unknown) - set(DEBIAN_PACKAGES)
