#!/bin/sh
set -eu
if [ "${FRESHCLAM:-no}" = yes ]; then
    rm -f /var/lib/clamav/test.hdb /var/lib/clamav/test.ndb
    freshclam --foreground=yes --stdout
    freshclam -d --stdout
fi
exec clamd -c /etc/clamav/clamd.conf
