#!/usr/bin/env bash
# What recording DMARC report rows costs the full inbound-authentication run
# (README's performance page): the auth fixture of perf-auth.sh (knot, 20 signed
# 10 KB messages whose From domain publishes rua=, so every message is recorded),
# mailwarden-load with 64 connections, alternating ROUNDS (default 3) runs without
# and with [reports] in one invocation; prints each run and the medians. Then the
# row count in the store, which must equal the messages decided with [reports].
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bins

work=$(mktemp -d)
dns_port=${DNS_PORT:-15355}
port=${PORT:-18893}
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT

. scripts/lib/auth-fixture.sh
auth_fixture_knot "$work/knot" "$dns_port"
auth_fixture_corpus "$work/corpus"

base=$(printf '[server]\nlisten = ["inet:127.0.0.1:%s"]\n[dns]\nnameservers = ["127.0.0.1:%s"]\n[inbound]\nauthserv_id = "mx.perf.test"\n' "$port" "$dns_port")
printf '%s\n' "$base" >"$work/off.toml"
printf '%s\n[reports]\nstore = "%s/reports.db"\n' "$base" "$work" >"$work/on.toml"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
declare -A rates p99s
run() {
    local mode=$1 out
    ./target/release/mailwarden serve -c "$work/$mode.toml" 2>>"$work/$mode.log" &
    local mw=$!
    pids+=($mw)
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    out=$(./target/release/mailwarden-load --target "inet:127.0.0.1:$port" --connections 64 \
        --per-connection 20 --duration "${DURATION:-10}" --corpus "$work/corpus" \
        --client-ip 192.0.2.10 --helo mail.sender.test --mail-from alice@sender.test)
    kill -TERM "$mw"
    wait "$mw" 2>/dev/null || true
    local rate p99
    rate=$(awk '/^throughput/ {print $2}' <<<"$out")
    p99=$(awk '/^latency ms/ {print $8}' <<<"$out")
    echo "reports $mode: $rate messages/s, p99 $p99 ms"
    rates[$mode]+="$rate "
    p99s[$mode]+="$p99 "
}
for _ in $(seq "${ROUNDS:-3}"); do
    run off
    run on
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for mode in off on; do
    echo "median, reports $mode: $(median <<<"${rates[$mode]}") messages/s, p99 $(median <<<"${p99s[$mode]}") ms"
done
decided=$(grep -c 'message decided' "$work/on.log" || true)
rows=$(./target/release/mailwarden reports list -c "$work/on.toml" | awk '/ records / {print $2}')
echo "with [reports]: $decided messages decided, $rows rows in the store (all runs; equal when every row was kept)"
