#!/usr/bin/env bash
# Runs mailwarden's whole test suite: installs the Debian packages the integration
# tests start for real (Postfix and its smtp-sink; docker-compose to validate the
# compose file) when they are missing, then `cargo test`. Needs root for apt and
# for starting Postfix.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
{ have postfix && have smtp-sink && have sendmail; } || need_apt+=(postfix)
have docker-compose || need_apt+=(docker-compose)
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

cargo test --locked "$@"
