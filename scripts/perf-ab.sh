#!/usr/bin/env bash
# A/B throughput of two mailwarden binaries on this machine: BASE (an earlier build,
# e.g. a copy of target/release/mailwarden from main before a change) against the
# current release build, both serving at once, measured in alternating rounds with
# the same load tool (this machine's speed drifts; the per-round ratio does not).
# Two workloads: accept-all (client 127.0.0.1, trusted) and full inbound auth (SPF,
# DKIM, ARC, iprev, DMARC against knot serving the fixture zones).
#   scripts/perf-ab.sh /path/to/old/mailwarden [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: perf-ab.sh BASE_BINARY [ROUNDS]}
rounds=${2:-5}
cargo build --release --locked --bins
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT
. scripts/lib/auth-fixture.sh
dns=${DNS_PORT:-15355}
auth_fixture_knot "$work/knot" "$dns"
auth_fixture_corpus "$work/corpus"
port=${PORT:-18900}
start() { # NAME BINARY PORT
    printf '[server]\nlisten = ["inet:127.0.0.1:%s"]\n[dns]\nnameservers = ["127.0.0.1:%s"]\n[inbound]\nauthserv_id = "mx.perf.test"\n' \
        "$3" "$dns" >"$work/$1.toml"
    "$2" serve -c "$work/$1.toml" 2>"$work/$1.log" &
    pids+=($!)
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$3") 2>/dev/null && return; sleep 0.1; done
}
start base "$base" "$port"
start new ./target/release/mailwarden $((port + 1))
load() { # PORT WORKLOAD
    local args=(--client-ip 127.0.0.1)
    [ "$2" = auth ] && args=(--corpus "$work/corpus" --client-ip 192.0.2.10 --helo mail.sender.test --mail-from alice@sender.test)
    ./target/release/mailwarden-load --target "inet:127.0.0.1:$1" --connections 64 \
        --duration "${DURATION:-5}" "${args[@]}" | awk '/^throughput/ {print $2}'
}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for workload in accept-all auth; do
    : >"$work/ratios"
    : >"$work/rates"
    for round in $(seq "$rounds"); do
        order="base new"
        [ $((round % 2)) = 0 ] && order="new base"
        for who in $order; do
            p=$port
            [ "$who" = new ] && p=$((port + 1))
            eval "rate_$who=$(load "$p" "$workload")"
        done
        echo "$workload round $round: base $rate_base/s, new $rate_new/s"
        echo "$rate_base $rate_new" >>"$work/rates"
        awk -v a="$rate_new" -v b="$rate_base" 'BEGIN{printf "%.2f\n", 100 * (a - b) / b}' >>"$work/ratios"
    done
    median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
    echo "$workload: median base $(awk '{print $1}' "$work/rates" | median)/s, new $(awk '{print $2}' "$work/rates" | median)/s, median per-round change $(median <"$work/ratios")% (rounds: $(tr '\n' ' ' <"$work/ratios"))"
done
