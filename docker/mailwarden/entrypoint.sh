#!/bin/sh
# Before `mailwarden serve`: makes what the stack's configuration refers to and
# no image should carry, once, in the state volume (shared by replicas, so under
# a lock):
#   DKIM_DOMAIN / DKIM_SELECTOR: a key in /var/lib/mailwarden/keys and its DNS
#     record beside it (<domain>.<selector>.zone, which the knot container serves);
#   /var/lib/mailwarden/admin-token: the admin endpoint's bearer token.
set -eu
state=/var/lib/mailwarden
umask 077
(
    flock 9
    if [ -n "${DKIM_DOMAIN:-}" ]; then
        selector=${DKIM_SELECTOR:-s1}
        key=$state/keys/$DKIM_DOMAIN.$selector.pem
        if [ ! -e "$key" ]; then
            mkdir -p "$state/keys"
            mailwarden genkey --domain "$DKIM_DOMAIN" --selector "$selector" \
                --out "$state/keys" >"$state/keys/genkey.out"
            # The record: from its name to the closing parenthesis.
            sed -n '/_domainkey.* IN TXT/,/)/p' "$state/keys/genkey.out" \
                >"$state/keys/$DKIM_DOMAIN.$selector.zone.tmp"
            chmod 0644 "$state/keys/$DKIM_DOMAIN.$selector.zone.tmp"
            mv "$state/keys/$DKIM_DOMAIN.$selector.zone.tmp" "$state/keys/$DKIM_DOMAIN.$selector.zone"
            echo "mailwarden-entrypoint: new DKIM key $key; publish:" >&2
            cat "$state/keys/$DKIM_DOMAIN.$selector.zone" >&2
        fi
    fi
    if [ ! -s "$state/admin-token" ]; then
        head -c 24 /dev/urandom | od -An -v -tx1 | tr -d ' \n' >"$state/admin-token.tmp"
        mv "$state/admin-token.tmp" "$state/admin-token"
    fi
) 9>"$state/.lock"
exec mailwarden "$@"
