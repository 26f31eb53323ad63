#!/usr/bin/env bash
# Reproduces the milter-path numbers in README's Performance section (the client is
# 127.0.0.1, a trusted network, so no inbound checks run): builds release binaries,
# starts mailwarden on its built-in pipeline (TCP and unix listeners, logging every
# decision to a file), drives it with mailwarden-load on the same machine, then
# measures the daemon's RSS while 1,000 idle milter connections are open.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bins

port=${PORT:-18891}
work=$(mktemp -d)
sock="$work/milter.sock"
./target/release/mailwarden serve --listen "inet:127.0.0.1:$port" --listen "unix:$sock" 2>"$work/mailwarden.log" &
mw=$!
trap 'kill $mw 2>/dev/null; wait $mw 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done

. scripts/lib/cpu.sh
# Runs the load tool with the given arguments and prints the daemon's share of it.
run() {
    local before
    before=$(cpu "$mw")
    ./target/release/mailwarden-load --connections 64 --per-connection 20 --duration "${DURATION:-10}" --client-ip 127.0.0.1 "$@"
    echo "daemon CPU        $(cpu_since "$mw" "$before") s (of 2 cores x $((${DURATION:-10} + 1)) s)"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo
echo "== accept-all pipeline, 64 connections, 5 KB message, TCP"
run --target "inet:127.0.0.1:$port"
echo
echo "== the same, writing every event separately as Postfix does"
run --target "inet:127.0.0.1:$port" --flush-each-event
echo
echo "== the same over the unix socket"
run --target "unix:$sock"
echo
echo "== RSS with 1,000 idle milter connections"
sleep 1
echo "before: $(grep VmRSS /proc/$mw/status | awk '{print $2}') kB"
./target/release/mailwarden-load --target "inet:127.0.0.1:$port" --idle 1000 --hold 6 &
load=$!
sleep 4
echo "with 1000 idle: $(grep VmRSS /proc/$mw/status | awk '{print $2}') kB, open descriptors: $(ls /proc/$mw/fd | wc -l)"
wait $load
echo "decision log lines written: $(grep -c 'message decided' "$work/mailwarden.log")"
