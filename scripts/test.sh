#!/usr/bin/env bash
# The whole test suite, as a newcomer runs it (README: "Run the tests").
# Installs nothing today: the suite needs only cargo and loopback networking.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked "$@"
