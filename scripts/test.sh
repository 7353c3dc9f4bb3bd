#!/usr/bin/env bash
# The whole test suite, as a newcomer runs it (README: "Run the tests").
# Installs what the tests need when it is missing; the test helpers
# themselves (loopback servers, buses) are started and stopped by the tests,
# by PID.
#
# The desktop sink's tests need a real
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

# Email tests (tests/it/email.rs): a real SMTP server on loopback, Python's
# aiosmtpd, run from tests/it/smtp_server.py; certificates made with openssl.
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
    export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
    pip_install="python3 -m pip install --quiet"
    $pip_install aiosmtpd || $pip_install --break-system-packages aiosmtpd
fi
if ! command -v openssl >/dev/null; then
    apt-get update -qq && apt-get install -y -qq openssl
fi

cargo test --locked "$@"
