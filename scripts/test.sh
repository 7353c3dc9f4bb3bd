#!/usr/bin/env bash
# The whole test suite, as a newcomer runs it (README: "Run the tests").
# Besides cargo and loopback networking, the desktop sink's tests need a real
# session bus and notification server (tests/it/desktop.rs starts and stops
# its own dbus-daemon, Xvfb, dunst and dbus-monitor by PID); whatever of
# those is missing is installed here first (Debian/Ubuntu, apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."

# command that must exist -> the package that brings it
declare -A NEED=(
  [dbus-daemon]=dbus
  [dbus-send]=dbus
  [dbus-monitor]=dbus
  [dbus-launch]=dbus-x11
  [dunst]=dunst
  [Xvfb]=xvfb
  [notify-send]=libnotify-bin
)
missing=()
for cmd in "${!NEED[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    pkg=${NEED[$cmd]}
    [[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
  fi
done
if ((${#missing[@]})); then
  echo "== installing desktop test tools: ${missing[*]}" >&2
  if [[ $(id -u) -eq 0 ]]; then
    sudo=()
  elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cargo test --locked "$@"
