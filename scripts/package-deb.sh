#!/usr/bin/env bash
# Builds the Debian package: target/debian/wirewatch_VERSION-1_ARCH.deb
# (under $CARGO_TARGET_DIR when that is set).
#
#   ./scripts/package-deb.sh            # needs cargo-deb: cargo install cargo-deb --locked
#
# Steps: a release build of the binary; the manual pages generated from its
# own command line (`wirewatch man`, one page per command) into
# TARGET/release/man/, gzipped, and a changelog.Debian entry for the build;
# then `cargo deb --no-build`, which packs
# what [package.metadata.deb] in Cargo.toml lists (the binary, both systemd
# units, the example config as conffiles in /etc/wirewatch, the pages, the
# docs). Extra arguments go to cargo deb (e.g. --output DIR).
#
# Plain `cargo deb` does not work on its own: it knows nothing of the man
# pages and stops on the missing TARGET/release/man/*.1.gz.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deb --version >/dev/null 2>&1; then
  echo "cargo-deb is missing: cargo install cargo-deb --locked" >&2
  exit 1
fi

# Where cargo puts its output (CARGO_TARGET_DIR, a config's build.target-dir,
# or ./target), as cargo itself reports it.
target_dir=$(cargo metadata --format-version 1 --no-deps --locked |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
if [[ -z $target_dir ]]; then
  echo "cannot find cargo's target directory (cargo metadata)" >&2
  exit 1
fi

echo "== cargo build --release"
cargo build --release --locked --bin wirewatch

echo "== manual pages"
man_dir="$target_dir/release/man"
rm -rf "$man_dir"
"$target_dir/release/wirewatch" man --out "$man_dir" >/dev/null
# -n: no name or time stamp in the header, so the same pages give the same
# bytes.
gzip -9 -n "$man_dir"/*.1
ls "$man_dir"

# Debian wants a changelog.Debian in every package: one entry for this
# build (version and revision as cargo deb writes them, the commit it was
# built from), dated by that commit so the same commit gives the same file.
version=$(cargo pkgid --locked)
version=${version##*[#@]}
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "unknown")
date=$(git log -1 --format=%cD 2>/dev/null || date -R)
maintainer=$(sed -n 's/^maintainer = "\(.*\)"$/\1/p' Cargo.toml)
revision=$(sed -n 's/^revision = "\(.*\)"$/\1/p' Cargo.toml)
{
  echo "wirewatch ($version-$revision) unstable; urgency=medium"
  echo
  echo "  * Built from commit $commit of the wirewatch repository."
  echo
  echo " -- $maintainer  $date"
} | gzip -9 -n >"$target_dir/release/changelog.Debian.gz"

echo "== cargo deb"
# --strip: the release profile keeps line tables for backtraces and
# profiling; the package ships a stripped binary.
cargo deb --no-build --locked --strip "$@"
