#!/bin/sh
# Writes a two-signature ClamAV database that matches the EICAR test file (by
# MD5 and by content anywhere), for images whose clamd must not fetch ClamAV's.
#   docker/clamd/test-signatures.sh DIR
set -eu
mkdir -p "$1"
# The EICAR string in two halves, so this file is not itself a test virus.
a='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR'
b='-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
eicar=$(printf '%s%s' "$a" "$b")
md5=$(printf '%s' "$eicar" | md5sum | cut -d' ' -f1)
printf '%s:%s:Win.Test.EICAR_HDB-1\n' "$md5" "${#eicar}" >"$1/test.hdb"
printf 'Win.Test.EICAR_NDB-1:0:*:%s\n' "$(printf '%s' "$eicar" | od -An -v -tx1 | tr -d ' \n')" >"$1/test.ndb"
