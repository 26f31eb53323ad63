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

. scripts/lib/ab-load.sh
ab_compare reports off on
decided=$(grep -c 'message decided' "$work/on.log" || true)
rows=$(./target/release/mailwarden reports list -c "$work/on.toml" | awk '/ records / {print $2}')
echo "with [reports]: $decided messages decided, $rows rows in the store (all runs; equal when every row was kept)"
