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

. scripts/lib/ab-load.sh
ab_before() {
    redis_before=$(cpu "$redis_pid")
    redis-cli -p "$redis_port" CONFIG RESETSTAT >/dev/null
}
# ab_run's $out is the load tool's report: its message count against Redis's own
# count of script calls and the time it spent in them.
ab_after() {
    local messages stat
    messages=$(awk '/^messages/ {print $2}' <<<"$out")
    stat=$(redis-cli -p "$redis_port" INFO commandstats | tr -d '\r' | grep '^cmdstat_evalsha:' || true)
    printf ', redis-server CPU %s s' "$(cpu_since "$redis_pid" "$redis_before")"
    [ -z "$stat" ] || awk -F'[=,]' -v m="$messages" '{printf ", %d script calls (%.1f messages each, %.1f us each in Redis)", $2, m / $2, $6}' <<<"$stat"
    echo
}
ab_compare "limits in" memory redis
echo "redis: $(grep -c 'rate limits not counted in Redis' "$work/redis.log" || true) messages fell back; \
$(grep -o 'verdict="[a-z]*"' "$work/redis.log" | sort | uniq -c | tr '\n' ' ')"
