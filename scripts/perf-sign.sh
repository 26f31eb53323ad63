#!/usr/bin/env bash
# Reproduces README's signing numbers: `openssl speed` gives this machine's raw
# RSA-2048 and ed25519 signing rates (one core, and both cores with -multi), then
# mailwarden signs the load tool's generated 5 KB message (From: noreply@load.test,
# client 127.0.0.1, a trusted network, so it is outbound and signed) with a key made
# by `mailwarden genkey`: RSA-2048, ed25519, and both at once (two signatures).
# The load tool runs on one thread so it takes as little as it can of the two cores
# the daemon's signing competes for.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bins

work=$(mktemp -d)
port=${PORT:-18893}
mw=
trap '[ -n "$mw" ] && kill "$mw" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
seconds=${SECONDS_OPENSSL:-5}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "$(openssl version)"
# sign/s from the last line of `openssl speed`: column 6 for rsa, 7 for EdDSA.
rate() { openssl speed -seconds "$seconds" "$@" 2>/dev/null | tail -1; }
rsa1=$(rate rsa2048 | awk '{print $6}')
rsa2=$(rate -multi 2 rsa2048 | awk '{print $6}')
ed1=$(rate ed25519 | awk '{print $7}')
ed2=$(rate -multi 2 ed25519 | awk '{print $7}')
echo "openssl rsa2048 sign/s: one core $rsa1, two cores (-multi 2) $rsa2, one core x 2 = $(awk -v a="$rsa1" 'BEGIN{printf "%.0f", a * 2}')"
echo "openssl ed25519 sign/s: one core $ed1, two cores (-multi 2) $ed2"

./target/release/mailwarden genkey --domain load.test --selector rsa --algorithm rsa-sha256 --bits 2048 --out "$work" >/dev/null
./target/release/mailwarden genkey --domain load.test --selector ed --algorithm ed25519-sha256 --out "$work" >/dev/null

cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$mw/stat"; }

# measure NAME KEYS...: starts mailwarden with those [[signing.keys]] selectors,
# drives it for DURATION seconds, prints the load tool's report and the daemon's CPU.
measure() {
    local name=$1 before
    shift
    {
        printf '[server]\nlisten = ["inet:127.0.0.1:%s", "unix:%s"]\n' "$port" "$work/mw.sock"
        for sel in "$@"; do
            local alg=rsa-sha256
            [ "$sel" = ed ] && alg=ed25519-sha256
            printf '[[signing.keys]]\ndomain = "load.test"\nselector = "%s"\nkey_file = "load.test.%s.pem"\nalgorithm = "%s"\n' "$sel" "$sel" "$alg"
        done
    } >"$work/mailwarden.toml"
    ./target/release/mailwarden serve -c "$work/mailwarden.toml" 2>"$work/$name.log" &
    mw=$!
    for _ in $(seq 50); do [ -S "$work/mw.sock" ] && break; sleep 0.1; done
    for target in "inet:127.0.0.1:$port" "unix:$work/mw.sock"; do
        echo
        echo "== $name: 64 connections, 5 KB message, ${target%%:*}"
        before=$(cpu)
        ./target/release/mailwarden-load --target "$target" --connections 64 --per-connection 20 \
            --duration "${DURATION:-10}" --client-ip 127.0.0.1 --size 5120 --threads 1
        echo "daemon CPU        $(awk -v a="$(cpu)" -v b="$before" 'BEGIN{printf "%.1f", a - b}') s (of 2 cores x $((${DURATION:-10} + 1)) s)"
    done
    echo "sample decision:  $(grep -m1 'message decided' "$work/$name.log" | grep -o 'reason=.*' | cut -c1-120)"
    kill "$mw"
    wait "$mw" 2>/dev/null || true
    mw=
}

measure "RSA-2048" rsa
measure "ed25519" ed
measure "RSA-2048 + ed25519 (dual)" rsa ed
