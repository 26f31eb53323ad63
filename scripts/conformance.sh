#!/usr/bin/env bash
# Plays every third-party conformance suite in tests/fixtures/conformance through
# the milter against knot and prints one line per suite (agreeing cases,
# documented deviations from tests/conformance/deviations.toml, cases that compare
# nothing an RFC defines). Installs knot and libfaketime when missing, like
# scripts/test.sh. Fails when a difference is not documented.
set -euo pipefail
cd "$(dirname "$0")/.."
need_apt=()
command -v knotd >/dev/null 2>&1 || [ -x /usr/sbin/knotd ] || need_apt+=(knot)
command -v kdig >/dev/null 2>&1 || need_apt+=(knot-dnsutils)
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 ] || need_apt+=(libfaketime)
if [ ${#need_apt[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
cargo test --locked --test conformance -- --nocapture --test-threads 2 >"$out" 2>&1 || status=$?
grep -E '^(CONFORMANCE|  documented:)' "$out" | sed 's/: [0-9][0-9] .*not comparable: .*/ not comparable (see the test output)/'
[ "$status" = 0 ] || { grep -E 'panicked|: expected' "$out" | head -40; exit "$status"; }
