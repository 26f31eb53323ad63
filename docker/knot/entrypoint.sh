#!/bin/sh
set -eu
install -d -o knot -g knot /run/knot /var/lib/knot /var/lib/knot/zones
for z in /etc/knot/zones/*.zone; do
    cp "$z" /var/lib/knot/zones/
done
# DKIM records: <domain>.<selector>.zone files written by mailwarden's start.
for zone in /var/lib/knot/zones/*.zone; do
    for r in "/keys/keys/$(basename "$zone" .zone)".*.zone; do
        [ -e "$r" ] && cat "$r" >>"$zone"
    done
done
chown -R knot:knot /var/lib/knot
exec knotd -c /etc/knot/knot.conf
