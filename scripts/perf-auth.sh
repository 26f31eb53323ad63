#!/usr/bin/env bash
# Reproduces README's inbound-authentication numbers: knot serves the test zones
# (tests/fixtures/auth/zones), dkimpy signs a corpus of 10 KB messages with the
# fixture RSA-2048 key, mailwarden verifies SPF + DKIM + DMARC + iprev (+ ARC) for
# each, driven by mailwarden-load as a non-trusted client. The load tool's first
# second is a warm-up, so the DNS caches are warm when measuring starts.
# With COMPARE=1 it also measures OpenDKIM (verify mode) and OpenDMARC (Debian
# packages, installed if missing) on the same corpus with the same tool.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bins

work=$(mktemp -d)
dns_port=${DNS_PORT:-15353}
port=${PORT:-18892}
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT

. scripts/lib/auth-fixture.sh
auth_fixture_knot "$work/knot" "$dns_port"
auth_fixture_corpus "$work/corpus"
echo "corpus: $(ls "$work/corpus" | wc -l) messages of $(stat -c %s "$work/corpus/00.eml") bytes"

cat >"$work/mailwarden.toml" <<TOML
[server]
listen = ["inet:127.0.0.1:$port", "unix:$work/mw.sock"]
[dns]
nameservers = ["127.0.0.1:$dns_port"]
[inbound]
authserv_id = "mx.perf.test"
TOML
./target/release/mailwarden serve -c "$work/mailwarden.toml" 2>"$work/mailwarden.log" &
mw=$!
pids+=($mw)
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

load() {
    ./target/release/mailwarden-load --connections 64 --per-connection 20 \
        --duration "${DURATION:-10}" --corpus "$work/corpus" \
        --client-ip 192.0.2.10 --helo mail.sender.test --mail-from alice@sender.test "$@"
}
. scripts/lib/cpu.sh
# measured NAME PID TARGET: one load run against TARGET, then the CPU that PID used.
measured() {
    local before
    before=$(cpu "$2")
    load --target "$3"
    echo "$1 CPU $(cpu_since "$2" "$before") s"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo
echo "== mailwarden: SPF (MAIL FROM + HELO) + DKIM + ARC + iprev + DMARC, 64 connections"
measured mailwarden "$mw" "inet:127.0.0.1:$port"
echo "sample decision:  $(grep -m1 'message decided' "$work/mailwarden.log" | grep -o 'reason=.*' | cut -c1-160)"
echo
echo "== the same, writing every event separately as Postfix does"
load --target "inet:127.0.0.1:$port" --flush-each-event
echo
echo "== the same over the unix socket"
load --target "unix:$work/mw.sock"

if [ "${COMPARE:-0}" = 1 ]; then
    for pkg in opendkim opendmarc; do
        command -v "$pkg" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$pkg" >/dev/null
    done
    # OpenDKIM, verify mode; its keys come from a file instead of DNS.
    awk '/^rsa2048._domainkey/ { sub(/^rsa2048._domainkey TXT \( /, ""); sub(/ \)$/, ""); gsub(/" "/, ""); gsub(/"/, ""); print "rsa2048._domainkey.sender.test " $0 }' \
        tests/fixtures/auth/zones/sender.test.zone >"$work/opendkim.keys"
    cat >"$work/opendkim.conf" <<CONF
Mode v
Socket local:$work/opendkim.sock
Background no
Syslog no
TestPublicKeys $work/opendkim.keys
AuthservID mx.perf.test
UserID root
CONF
    opendkim -f -x "$work/opendkim.conf" 2>"$work/opendkim.log" &
    dk=$!
    pids+=($dk)
    sleep 1
    echo
    echo "== OpenDKIM $(opendkim -V 2>&1 | head -1 | awk '{print $NF}') (verify only, keys from a file), same corpus and tool, unix socket"
    echo "   (over TCP it sits near 1,300/s with ~45 ms p50: Nagle against delayed ACK, see testenv NOTES)"
    measured opendkim "$dk" "unix:$work/opendkim.sock"

    # OpenDMARC with its own SPF check, resolving through knot: it uses the
    # system resolver, so it runs in a mount namespace whose resolv.conf points at a
    # knot listening on 127.0.0.1:53.
    sed "s/127.0.0.1@$dns_port/127.0.0.1@53/" "$work/knot/knot.conf" | sed "s|rundir: \"$work/knot\"|rundir: \"$work/knot53\"|" >"$work/knot53.conf"
    mkdir -p "$work/knot53"
    knotd -c "$work/knot53.conf" >"$work/knot53.log" 2>&1 &
    pids+=($!)
    echo "nameserver 127.0.0.1" >"$work/resolv.conf"
    cat >"$work/opendmarc.conf" <<CONF
Socket local:$work/opendmarc.sock
Background false
AuthservID mx.perf.test
SPFSelfValidate true
SPFIgnoreResults true
RejectFailures false
UserID root
PidFile $work/opendmarc.pid
CONF
    unshare -m sh -c "mount --bind $work/resolv.conf /etc/resolv.conf && exec opendmarc -f -c $work/opendmarc.conf" 2>"$work/opendmarc.log" &
    dm=$!
    pids+=($dm)
    sleep 1
    echo
    echo "== OpenDMARC $(opendmarc -V 2>&1 | head -1 | awk '{print $NF}') (SPF + DMARC policy; no DKIM of its own), same corpus and tool, unix socket"
    measured opendmarc "$dm" "unix:$work/opendmarc.sock"
fi
