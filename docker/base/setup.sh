#!/bin/sh
# Runs inside the debootstrap root (scripts/images.sh): installs the stack's
# packages without starting any service, then drops what an image does not need.
set -eu
mirror=$1
shift
printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$mirror" "$mirror" >/etc/apt/sources.list
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod 0755 /usr/sbin/policy-rc.d
export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -q
apt-get install -y -q --no-install-recommends "$@"
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/*
# freshclam's signatures are fetched at run time (or replaced by a test set).
rm -f /var/lib/clamav/*.cvd /var/lib/clamav/*.cld
