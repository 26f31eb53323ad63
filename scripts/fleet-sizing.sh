#!/usr/bin/env bash
# Redis memory of fleet-mode rate limits (docs/fleet.md's sizing): runs the very
# script src/fleet/limits.rs sends (read from that file) in a private redis-server,
# SENDERS (default 100,000) senders with a one-hour window, each admitted once, then
# each PER (default 5) times in separate calls, and prints used_memory for both.
set -euo pipefail
cd "$(dirname "$0")/.."
senders=${SENDERS:-100000}
per=${PER:-5}
port=${REDIS_PORT:-16390}
work=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null &
redis_pid=$!
trap 'kill "$redis_pid" 2>/dev/null || true; wait 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do redis-cli -p "$port" PING 2>/dev/null | grep -q PONG && break; sleep 0.1; done

used() { redis-cli -p "$port" INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory" {print $2}'; }
# calls ROUNDS: every sender admitted once per round, one script call each, in
# Redis's wire format (as mailwarden's keys and members look).
calls() {
    python3 - "$senders" "$1" <<'PY'
import hashlib, re, sys
senders, rounds = int(sys.argv[1]), int(sys.argv[2])
lua = re.search(r'const SLIDING_WINDOW: &str = r"(.*?)";\n', open("src/fleet/limits.rs").read(), re.S).group(1)
def resp(*args):
    out = [f"*{len(args)}\r\n"]
    for a in map(str, args):
        out.append(f"${len(a.encode())}\r\n{a}\r\n")
    return "".join(out)
out = sys.stdout
out.write(resp("SCRIPT", "LOAD", lua))
sha, seq = hashlib.sha1(lua.encode()).hexdigest(), 0
for _ in range(rounds):
    for i in range(senders):
        seq += 1
        out.write(resp("EVALSHA", sha, 1, f"mailwarden:rate:{{per-sender:sender{i:07d}@example.com}}",
                       f"mx1.example.net-12345-{seq}", 3600000, 100))
PY
}
base=$(used)
calls 1 | redis-cli -p "$port" --pipe >/dev/null
one=$(used)
calls $((per - 1)) | redis-cli -p "$port" --pipe >/dev/null
all=$(used)
awk -v s="$senders" -v p="$per" -v b="$base" -v o="$one" -v a="$all" 'BEGIN {
    printf "%d senders, one admission each: %.1f MB (%.0f MB per million)\n", s, (o - b) / 1e6, (o - b) / s
    printf "%d admissions each (separate calls): %.1f MB, %.0f bytes per further call\n", p, (a - b) / 1e6, (a - o) / (s * (p - 1))
}'
