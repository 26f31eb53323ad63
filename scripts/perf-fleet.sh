#!/usr/bin/env bash
# Fleet mode's cost (README's performance page): the full inbound-authentication
# run of perf-auth.sh plus two rate limits (per client IP and per sender, high
# enough never to refuse), counted in memory against counted in a local
# redis-server ([cluster]), alternating ROUNDS (default 3) runs in one invocation.
# Prints each run and the medians (messages/s, p99 of MAIL-to-decision).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bins

work=$(mktemp -d)
dns_port=${DNS_PORT:-15357}
port=${PORT:-18895}
redis_port=${REDIS_PORT:-16379}
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT

. scripts/lib/auth-fixture.sh
auth_fixture_knot "$work/knot" "$dns_port"
auth_fixture_corpus "$work/corpus"
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null &
redis_pid=$!
pids+=($redis_pid)
for _ in $(seq 50); do redis-cli -p "$redis_port" PING 2>/dev/null | grep -q PONG && break; sleep 0.1; done

rules=$(printf '[[rate_limits]]\nname = "per-ip"\nkey = "client_ip"\nrate = "100000/second"\n[[rate_limits]]\nname = "per-sender"\nkey = "sender"\nrate = "100000/second"\n[[rules]]\nname = "limits"\nwhen = { any = [{ rate_limit = "per-ip" }, { rate_limit = "per-sender" }] }\nthen = { action = "tempfail" }\n')
base=$(printf '[server]\nlisten = ["inet:127.0.0.1:%s"]\n[dns]\nnameservers = ["127.0.0.1:%s"]\n[inbound]\nauthserv_id = "mx.perf.test"\n' "$port" "$dns_port")
printf '%s\n%s\n' "$base" "$rules" >"$work/memory.toml"
printf '%s\n[cluster]\nredis = "redis://127.0.0.1:%s/"\non_redis_error = { rate_limits = "tempfail" }\n%s\n' "$base" "$redis_port" "$rules" >"$work/redis.toml"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
declare -A rates p99s
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$1/stat"; }
run() {
    local mode=$1 out redis_before
    redis_before=$(cpu "$redis_pid")
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
    echo "limits in $mode: $rate messages/s, p99 $p99 ms, redis-server CPU $(awk -v a="$(cpu "$redis_pid")" -v b="$redis_before" 'BEGIN{printf "%.1f", a - b}') s"
    rates[$mode]+="$rate "
    p99s[$mode]+="$p99 "
}
for _ in $(seq "${ROUNDS:-3}"); do
    run memory
    run redis
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for mode in memory redis; do
    echo "median, limits in $mode: $(median <<<"${rates[$mode]}") messages/s, p99 $(median <<<"${p99s[$mode]}") ms"
done
echo "redis: $(grep -c 'rate limits not counted in Redis' "$work/redis.log" || true) messages fell back; \
$(grep -o 'verdict="[a-z]*"' "$work/redis.log" | sort | uniq -c | tr '\n' ' ')"
