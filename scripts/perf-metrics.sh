#!/usr/bin/env bash
# Metrics and anomaly tracking on (an [admin] endpoint and [alerts] configured, so
# every decision is counted and fed to the detector) against both off, on the accept-all milter path from 127.0.0.1: two mailwarden processes,
# measured in alternating rounds (this machine's speed drifts), compared by median.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bins

work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT
printf 'perf-token-0123456789abcdef\n' >"$work/tokens"
chmod 600 "$work/tokens"
off=${PORT:-18896}
on=$((off + 1))
printf '[server]\nlisten = ["inet:127.0.0.1:%s"]\n' "$off" >"$work/off.toml"
printf '[server]\nlisten = ["inet:127.0.0.1:%s"]\n[admin]\nlisten = "inet:127.0.0.1:%s"\ntoken_file = "%s"\n[alerts]\nmin_messages = 1000000\n' \
    "$on" "$((on + 100))" "$work/tokens" >"$work/on.toml"
for mode in off on; do
    ./target/release/mailwarden serve -c "$work/$mode.toml" 2>"$work/$mode.log" &
    pids+=($!)
done
sleep 1
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
: >"$work/rates"
for round in $(seq "${ROUNDS:-5}"); do
    for mode in off on; do
        port=$off
        [ "$mode" = on ] && port=$on
        rate=$(./target/release/mailwarden-load --target "inet:127.0.0.1:$port" --connections 64 \
            --duration "${DURATION:-5}" --client-ip 127.0.0.1 | awk '/^throughput/ {print $2}')
        echo "round $round, metrics $mode: $rate messages/s"
        echo "$mode $rate" >>"$work/rates"
    done
done
median() { grep "^$1 " "$work/rates" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
echo "median: metrics off $(median off)/s, on $(median on)/s ($(awk -v a="$(median on)" -v b="$(median off)" 'BEGIN{printf "%+.1f", 100 * (a - b) / b}')%)"
curl -s -H "Authorization: Bearer perf-token-0123456789abcdef" "http://127.0.0.1:$((on + 100))/metrics" | grep '^mailwarden_messages_total' || true
