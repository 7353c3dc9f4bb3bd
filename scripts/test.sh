#!/usr/bin/env bash
# The whole test suite, as a newcomer runs it (README: "Run the tests").
# Installs what the tests need when it is missing; the test helpers
# themselves (loopback servers) are started and stopped by the tests, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

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
