#!/usr/bin/env bash
# The daemon's RSS with N idle negotiated milter sessions (default 10,000), held
# by mailwarden-load --idle. Needs an open-file limit above N for both processes.
#   scripts/perf-idle.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
cargo build --release --locked --bins
work=$(mktemp -d)
port=${PORT:-18950}
printf '[server]\nlisten = ["inet:127.0.0.1:%s"]\nmax_sessions = %s\n' "$port" "$((n + 100))" >"$work/idle.toml"
./target/release/mailwarden serve -c "$work/idle.toml" 2>"$work/mailwarden.log" &
mw=$!
trap 'kill $mw 2>/dev/null; wait $mw 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
rss() { awk '/^VmRSS/ {print $2}' "/proc/$mw/status"; }
before=$(rss)
fds_before=$(ls "/proc/$mw/fd" | wc -l)
./target/release/mailwarden-load --target "inet:127.0.0.1:$port" --idle "$n" --hold 8 >"$work/load.log" 2>&1 &
load=$!
sleep 6
with=$(rss)
sessions=$(($(ls "/proc/$mw/fd" | wc -l) - fds_before))
wait $load || true
echo "RSS before: $before kB; with $sessions idle sessions: $with kB ($(( (with - before) * 1024 / (sessions > 0 ? sessions : 1) )) bytes per session)"
