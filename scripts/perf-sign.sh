#!/usr/bin/env bash
# Reproduces README's signing numbers. The machine's speed drifts from minute to
# minute, so the RSA-2048 comparison is made in ROUNDS rounds of the load tool against
# mailwarden over a unix socket, each between two runs of `openssl speed rsa2048` (one
# core, OpenSSL's raw signing rate): a round's ratio is mailwarden's messages/s over the
# mean of the openssl runs just before and just after it, times 2 cores, and the median
# of the rounds' ratios is the result (a drift during the round moves both runs that
# bracket it). After the rounds: TCP, ed25519, and both keys at once (two signatures),
# once each.
# The load tool's generated 5 KB message (From: noreply@load.test, client 127.0.0.1, a
# trusted network, so it is outbound and signed) is signed with keys made by
# `mailwarden genkey`. The load tool runs on one thread so it takes as little as it
# can of the two cores the daemon's signing competes for.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bins

work=$(mktemp -d)
port=${PORT:-18893}
rounds=${ROUNDS:-5}
duration=${DURATION:-10}
seconds=${SECONDS_OPENSSL:-5}
mw=
trap '[ -n "$mw" ] && kill "$mw" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "$(openssl version)"
# sign/s from the last line of `openssl speed`: column 6 for rsa, 7 for EdDSA.
rate() { openssl speed -seconds "$seconds" "$@" 2>/dev/null | tail -1; }
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

./target/release/mailwarden genkey --domain load.test --selector rsa --algorithm rsa-sha256 --bits 2048 --out "$work" >/dev/null
./target/release/mailwarden genkey --domain load.test --selector ed --algorithm ed25519-sha256 --out "$work" >/dev/null

. scripts/lib/cpu.sh

# start KEYS...: starts mailwarden with those [[signing.keys]] selectors.
start() {
    {
        printf '[server]\nlisten = ["inet:127.0.0.1:%s", "unix:%s"]\n' "$port" "$work/mw.sock"
        for sel in "$@"; do
            local alg=rsa-sha256
            [ "$sel" = ed ] && alg=ed25519-sha256
            printf '[[signing.keys]]\ndomain = "load.test"\nselector = "%s"\nkey_file = "load.test.%s.pem"\nalgorithm = "%s"\n' "$sel" "$sel" "$alg"
        done
    } >"$work/mailwarden.toml"
    rm -f "$work/mw.sock"
    ./target/release/mailwarden serve -c "$work/mailwarden.toml" 2>"$work/$1.log" &
    mw=$!
    for _ in $(seq 50); do [ -S "$work/mw.sock" ] && break; sleep 0.1; done
}

stop() {
    echo "sample decision:  $(grep -m1 'message decided' "$work/$1.log" | grep -o 'reason=.*' | cut -c1-120)"
    kill "$mw"
    wait "$mw" 2>/dev/null || true
    mw=
}

# load TARGET: drives the running daemon for $duration seconds, keeps the report in
# $work/load.out and prints its messages/s.
load() {
    ./target/release/mailwarden-load --target "$1" --connections 64 --per-connection 20 \
        --duration "$duration" --client-ip 127.0.0.1 --size 5120 --threads 1 >"$work/load.out"
    awk '/^throughput/ {print $2}' "$work/load.out"
}

# report NAME TARGET: one run with the full load-tool report and the daemon's CPU.
report() {
    local before
    echo
    echo "== $1: 64 connections, 5 KB message, ${2%%:*}"
    before=$(cpu "$mw")
    load "$2" >/dev/null
    cat "$work/load.out"
    echo "daemon CPU        $(cpu_since "$mw" "$before") s (of 2 cores x $((duration + 1)) s)"
}

echo
echo "== RSA-2048, $rounds rounds of mailwarden over a unix socket (${duration} s), each between two runs of openssl speed rsa2048 (${seconds} s)"
start rsa
: >"$work/rounds"
prev=$(rate rsa2048 | awk '{print $6}')
for r in $(seq "$rounds"); do
    got=$(load "unix:$work/mw.sock")
    after=$(rate rsa2048 | awk '{print $6}')
    one=$(awk -v a="$prev" -v b="$after" 'BEGIN{printf "%.1f", (a + b) / 2}')
    pct=$(awk -v g="$got" -v o="$one" 'BEGIN{printf "%.1f", 100 * g / (2 * o)}')
    echo "$one $got $pct" >>"$work/rounds"
    echo "round $r: openssl $prev and $after sign/s (mean x 2 = $(awk -v o="$one" 'BEGIN{printf "%.0f", 2 * o}')), mailwarden $got msg/s: $pct%"
    prev=$after
done
echo "median: openssl $(cut -d' ' -f1 "$work/rounds" | median) sign/s, mailwarden $(cut -d' ' -f2 "$work/rounds" | median) msg/s, ratio $(cut -d' ' -f3 "$work/rounds" | median)%"
report "RSA-2048" "unix:$work/mw.sock"
report "RSA-2048" "inet:127.0.0.1:$port"
stop rsa

echo
echo "openssl rsa2048 sign/s, two cores (-multi 2): $(rate -multi 2 rsa2048 | awk '{print $6}')"
echo "openssl ed25519 sign/s: one core $(rate ed25519 | awk '{print $7}'), two cores (-multi 2) $(rate -multi 2 ed25519 | awk '{print $7}')"
start ed
report "ed25519" "unix:$work/mw.sock"
report "ed25519" "inet:127.0.0.1:$port"
stop ed
start rsa ed
report "RSA-2048 + ed25519 (dual)" "unix:$work/mw.sock"
report "RSA-2048 + ed25519 (dual)" "inet:127.0.0.1:$port"
stop rsa
