#!/usr/bin/env bash
# Set up scorer on this machine: Debian packages the product and its tests need (when run as
# root on Debian/Ubuntu), a virtual environment in .venv, and scorer installed into it.
#   scripts/setup.sh          the workstation
#   scripts/setup.sh --test   the workstation and everything the test suite needs
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
for arg in "$@"; do
  case "$arg" in
    --test) with_tests=1 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

# Qt's runtime libraries (PySide6 wheels do not bundle them): what Qt itself and the xcb platform
# plugin that opens the window link against (tests/gui/test_qt_runtime_debs.py checks this list
# against ldd; scorer/gui/qt_runtime.py names the same packages when one is missing).
debs=(libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libglib2.0-0
  libx11-6 libx11-xcb1 libxcb1 libxcb-cursor0 libxcb-glx0 libxcb-icccm4 libxcb-image0
  libxcb-keysyms1 libxcb-randr0 libxcb-render0 libxcb-render-util0 libxcb-shape0 libxcb-shm0
  libxcb-sync1 libxcb-util1 libxcb-xfixes0 libxcb-xkb1 libxkbcommon-x11-0)
if [ "$with_tests" = 1 ]; then
  debs+=(dcmtk orthanc poppler-utils e2fsprogs mount postgresql)
  # The deployment's checks (tests/deploy): systemd-analyze on the units, logrotate on the
  # request log's configuration.
  debs+=(systemd logrotate)
  # A real X display for the tests that open windows on the xcb platform, and its tools:
  # xwd takes the screenshot, xwininfo lists the windows' titles.
  debs+=(xvfb x11-apps x11-utils)
fi

if command -v dpkg >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  missing=()
  for p in "${debs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      echo "setup: installing Debian packages: ${missing[*]}"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      echo "setup: please install these Debian packages (as root): ${missing[*]}" >&2
    fi
  fi
fi

python=${PYTHON:-python3}
"$python" - <<'PY' || { echo "setup: scorer needs Python 3.11 or newer" >&2; exit 1; }
import sys
raise SystemExit(0 if sys.version_info >= (3, 11) else 1)
PY

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "$with_tests" = 1 ]; then
  .venv/bin/python -m pip install -q -e ".[test]"
else
  .venv/bin/python -m pip install -q -e .
fi
echo "setup: ready (.venv/bin/scorer)"
