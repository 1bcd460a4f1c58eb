#!/usr/bin/env bash
# Set up needleplan in ./.venv and run the demo or the test suite.
#
#   bash tools/setup.sh demo   install, then plan the bundled sample_data/ (GUI if a display)
#   bash tools/setup.sh test   install, then run the whole test suite (headless)
#
# On a bare headless Debian/Ubuntu run as root it first installs the system libraries
# Qt/VTK need (plus Xvfb, poppler-utils, plastimatch).  As a normal user it never asks
# for root: it lists what is missing and carries on.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-}
shift || true
case "$what" in demo|test|install) ;; *) echo "usage: bash tools/setup.sh demo|test|install" >&2; exit 2;; esac

APT_PACKAGES="libegl1 libegl-mesa0 libgl1 libglx-mesa0 libgl1-mesa-dri libglib2.0-0 libdbus-1-3
 libfontconfig1 libfreetype6 fonts-dejavu-core libxkbcommon0 libxkbcommon-x11-0 libx11-xcb1
 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-randr0 libxcb-render-util0
 libxcb-shape0 libxcb-xfixes0 libxcb-xkb1 xvfb xauth poppler-utils plastimatch"

if command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  missing=""
  for p in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
      echo "setup: installing system packages:$missing" >&2
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    else
      echo "setup: not root, skipping system packages; if Qt or the tests complain, install:$missing" >&2
    fi
  fi
fi

PY=${PYTHON:-python3}
VENV=${NEEDLEPLAN_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[gui,test]"

case "$what" in
  install)
    echo "setup: installed into $VENV (run $VENV/bin/needleplan --help)" >&2 ;;
  demo)
    exec "$VENV/bin/needleplan" demo "$@" ;;
  test)
    export QT_API=pyqt6
    if [ -z "${DISPLAY:-}" ] && command -v xvfb-run >/dev/null 2>&1; then
      exec xvfb-run -a -s "-screen 0 1280x1024x24" "$VENV/bin/python" -m pytest "$@"
    fi
    exec "$VENV/bin/python" -m pytest "$@" ;;
esac
