#!/bin/sh
# The Debian/Ubuntu packages pip cannot install: python3-venv (README's commands make a .venv; stock
# Debian/Ubuntu refuse `pip install` outside one) and the libraries Qt's X11 (xcb) platform plugin loads.
# Idempotent: installs only what is missing. Run as root or with sudo. Does nothing on other systems.
set -e
command -v apt-get >/dev/null 2>&1 || exit 0
PKGS="python3-venv libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-randr0
libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0 libxkbcommon0 libegl1 libgl1 libfontconfig1
libdbus-1-3 fonts-dejavu-core"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing
