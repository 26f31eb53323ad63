#!/usr/bin/env bash
# Runs mailwarden's whole test suite: installs the Debian packages the integration
# tests start for real (Postfix and its smtp-sink; knot for DNS; redis-server for
# fleet mode; prometheus for promtool, which checks contrib/'s alert rules;
# libfaketime to pin
# the daemon clock for one DKIM vector; docker-compose and debootstrap for the
# container stack, whose images scripts/images.sh builds) and the Python tools that check our output
# independently (authres, dkimpy, parsedmarc) when they are missing, then `cargo test`. Needs
# root for apt and for starting Postfix.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
{ have postfix && have smtp-sink && have sendmail; } || need_apt+=(postfix)
{ have knotd && have knotc; } || need_apt+=(knot)
have kdig || need_apt+=(knot-dnsutils)
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 ] || need_apt+=(libfaketime)
have clamd || need_apt+=(clamav-daemon)
have docker-compose || need_apt+=(docker-compose)
{ have redis-server && have redis-cli; } || need_apt+=(redis-server redis-tools)
have promtool || need_apt+=(prometheus)
have lintian || need_apt+=(lintian)
have rsyslogd || need_apt+=(rsyslog)
have debootstrap || need_apt+=(debootstrap)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "test.sh: installing ${need_apt[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "test.sh: need root to apt-get install ${need_apt[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi

need_pip=()
python3 -c 'import authres' 2>/dev/null || need_pip+=(authres)
python3 -c 'import dkim, nacl' 2>/dev/null || need_pip+=(dkimpy pynacl)
python3 -c 'import parsedmarc' 2>/dev/null || need_pip+=(parsedmarc)
if [ ${#need_pip[@]} -gt 0 ]; then
    echo "test.sh: pip installing ${need_pip[*]}"
    python3 -m pip install -q --disable-pip-version-check "${need_pip[@]}"
fi

# cargo-deb builds the package tests/package_deb.rs installs.
if ! cargo deb --version >/dev/null 2>&1; then
    echo "test.sh: cargo install cargo-deb"
    cargo install --locked -q cargo-deb --version 3.8.0
fi

cargo test --locked "$@"
