#!/usr/bin/env bash
# Side-by-side: newsboat, rss2email and wirewatch each poll the same loopback
# corpus (benches/scale.rs in `serve` mode: 200 RSS 2.0 / Atom feeds of
# 20-100 items) from fresh state, RUNS times each in one session; prints the
# median wall time and peak RSS (GNU time's %e and %M) of every tool in one
# table, plus what the server answered, so a tool that skipped feeds shows.
#
#   benches/compare.sh                 # FEEDS=200 RUNS=3
#   FEEDS=500 RUNS=5 benches/compare.sh
#
# Installs what is missing: newsboat and GNU time from Debian (apt-get; as
# root or through sudo) and rss2email from PyPI into a virtualenv under
# ${XDG_CACHE_HOME:-~/.cache}/wirewatch-bench. How each tool is run:
#   wirewatch  `wirewatch once` with the corpus config (8 rules, a jsonl
#              sink; max_concurrent_fetches default 8; per-host limits lifted
#              when the binary has them, since the corpus is one host)
#   newsboat   `newsboat -x reload` with a urls file, an empty config
#              (reload-threads 1, its default), and again with
#              reload-threads 8 to match wirewatch's fetch concurrency
#   rss2email  `r2e run --no-send`: fetches, parses and records every feed
#              but sends no mail (its first run would mail every item)
# Results are in docs/performance.md.
set -euo pipefail

FEEDS=${FEEDS:-200}
RUNS=${RUNS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/wirewatch-bench
WORK=$(mktemp -d /tmp/wirewatch-compare.XXXXXX)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

say() { printf '%s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- tools -------------------------------------------------------------------
need_apt=()
command -v newsboat >/dev/null || need_apt+=(newsboat)
[ -x /usr/bin/time ] || need_apt+=(time)
command -v curl >/dev/null || need_apt+=(curl)
if [ ${#need_apt[@]} -gt 0 ]; then
    say "installing ${need_apt[*]} (apt-get)"
    as_root apt-get update -q >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}" >&2
fi
if [ ! -x "$CACHE/venv/bin/r2e" ]; then
    say "installing rss2email (pip, into $CACHE/venv)"
    mkdir -p "$CACHE"
    python3 -m venv "$CACHE/venv"
    "$CACHE/venv/bin/pip" install -q rss2email >&2
fi
R2E=$CACHE/venv/bin/r2e

# --- wirewatch and the corpus server -----------------------------------------
cd "$ROOT"
say "building the corpus server and wirewatch (cargo bench --no-run: release profile)"
BENCH=$(cargo bench -q --bench scale --no-run --message-format=json 2>/dev/null |
    grep -o '"executable":"[^"]*"' | grep scale | tail -n 1 | cut -d'"' -f4)
TARGET=$(cargo metadata -q --format-version 1 --no-deps | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)
WIREWATCH=$TARGET/release/wirewatch
[ -x "$BENCH" ] && [ -x "$WIREWATCH" ] || { say "build outputs not found"; exit 1; }

"$BENCH" serve --feeds "$FEEDS" --out "$WORK/corpus" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 600); do [ -f "$WORK/corpus/urls.txt" ] && break; sleep 0.1; done
[ -f "$WORK/corpus/urls.txt" ] || { say "corpus server did not start"; cat "$WORK/server.log" >&2; exit 1; }
BASE=$(head -n 1 "$WORK/corpus/urls.txt" | sed 's#/feed/0$##')

stats() { curl -s "$BASE/_stats" | awk '{printf "%s ", $2}'; }

# --- one measured run ----------------------------------------------------------
# run NAME DIR CMD...: fresh DIR, GNU time around CMD; appends
# "NAME wall_s maxrss_kib ok304other" to $WORK/results.
run() {
    local name=$1 dir=$2
    shift 2
    local before after rc=0
    before=$(stats)
    /usr/bin/time -f '%e %M' -o "$dir/time" "$@" >"$dir/out" 2>"$dir/err" || rc=$?
    if [ "$rc" != 0 ]; then
        say "  $name: exit status $rc"
        tail -n 5 "$dir/err" >&2
    fi
    after=$(stats)
    read -r b200 b304 bother _ <<<"$before"
    read -r a200 a304 aother _ <<<"$after"
    local served="$((a200 - b200))/$((a304 - b304))/$((aother - bother))"
    read -r wall kib <"$dir/time"
    say "  $name: ${wall} s, $((kib / 1024)) MiB, served 200/304/other = $served"
    echo "$name $wall $kib $served" >>"$WORK/results"
}

wirewatch_run() {
    local d=$WORK/run/ww-$1
    mkdir -p "$d"
    cp "$WORK/corpus/wirewatch.toml" "$WORK/corpus/rules.toml" "$d/"
    (cd "$d" && run wirewatch "$d" "$WIREWATCH" once --config "$d/wirewatch.toml")
}

newsboat_run() {
    local label=$1 threads=$2 d=$WORK/run/nb-$2-$3
    mkdir -p "$d/home"
    if [ "$threads" -gt 1 ]; then echo "reload-threads $threads" >"$d/config"; else : >"$d/config"; fi
    HOME=$d/home XDG_CONFIG_HOME=$d/home/.config XDG_DATA_HOME=$d/home/.local/share \
        run "$label" "$d" newsboat -q -u "$WORK/corpus/urls.txt" -c "$d/cache.db" -C "$d/config" -x reload
}

r2e_run() {
    local d=$WORK/run/r2e-$1
    mkdir -p "$d/home"
    {
        printf '[DEFAULT]\nto = bench@example.invalid\nemail-protocol = sendmail\nsendmail = /bin/true\n'
        n=0
        while read -r url; do
            printf '\n[feed.f%05d]\nurl = %s\n' "$n" "$url"
            n=$((n + 1))
        done <"$WORK/corpus/urls.txt"
    } >"$d/r2e.cfg"
    HOME=$d/home XDG_CONFIG_HOME=$d/home/.config XDG_DATA_HOME=$d/home/.local/share \
        run rss2email "$d" "$R2E" -c "$d/r2e.cfg" -d "$d/r2e.json" run --no-send
}

say "corpus: $FEEDS feeds at $BASE; $RUNS runs per tool, fresh state each"
: >"$WORK/results"
for i in $(seq 1 "$RUNS"); do
    say "round $i (load $(cut -d' ' -f1-3 /proc/loadavg))"
    wirewatch_run "$i"
    newsboat_run newsboat 1 "$i"
    newsboat_run newsboat-8-threads 8 "$i"
    r2e_run "$i"
done

# --- table -------------------------------------------------------------------
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
{
    echo
    echo "$FEEDS feeds on loopback, fresh state, median of $RUNS runs"
    echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo); load at end $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "versions: $("$WIREWATCH" --version), $(newsboat --version | head -n 1 | cut -d' ' -f1-2), rss2email $("$R2E" --version 2>&1 | awk '{print $2}'), $(python3 --version)"
    echo
    printf '| %-28s | %13s | %17s | %-20s | %s |\n' tool "wall (median)" "peak RSS (median)" "runs (s)" "served 200/304/other"
    printf '|%s|%s|%s|%s|%s|\n' ------------------------------ --------------- ------------------- ---------------------- ----------------------
    for tool in wirewatch newsboat newsboat-8-threads rss2email; do
        grep "^$tool " "$WORK/results" >"$WORK/t" || continue
        wall=$(cut -d' ' -f2 "$WORK/t" | median)
        kib=$(cut -d' ' -f3 "$WORK/t" | median)
        runs=$(cut -d' ' -f2 "$WORK/t" | paste -sd' ')
        served=$(cut -d' ' -f4 "$WORK/t" | sort -u | paste -sd' ')
        label=$tool
        [ "$tool" = newsboat-8-threads ] && label="newsboat (reload-threads 8)"
        printf '| %-28s | %11.2f s | %13.1f MiB | %-20s | %s |\n' "$label" "$wall" "$(echo "$kib" | awk '{print $1/1024}')" "$runs" "$served"
    done
}
