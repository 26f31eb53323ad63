#!/bin/sh
# POSTFIX_ROLE=mx: accepts mail for RELAY_DOMAINS from anywhere and relays mail from
#   MYNETWORKS anywhere, through the milter at MILTER; everything is delivered to
#   NEXT_HOP (the mailbox container).
# POSTFIX_ROLE=mailbox: final destination for MAILBOX_DOMAINS, every recipient into
#   one Maildir, /var/mail/vhosts/inbox/.
# No chroot: Postfix's daemons then resolve the other containers through Docker's
# DNS (inside the chroot they could not read /etc/resolv.conf or /etc/hosts).
set -eu
role=${POSTFIX_ROLE:-mx}
hostname=${POSTFIX_HOSTNAME:-mx.example.test}
printf '%s\n' "$hostname" >/etc/mailname
postconf -e \
    "compatibility_level = 3.6" \
    "maillog_file = /dev/stdout" \
    "inet_interfaces = all" \
    "inet_protocols = ipv4" \
    "myhostname = $hostname" \
    "mydestination =" \
    "alias_maps =" \
    "mynetworks = 127.0.0.0/8 ${MYNETWORKS:-}" \
    "smtp_host_lookup = native" \
    "smtputf8_enable = no"
postconf -F '*/*/chroot = n'
postconf -M -e "postlog/unix-dgram=postlog unix-dgram n - n - 1 postlogd"
case $role in
mx)
    postconf -e \
        "relay_domains = ${RELAY_DOMAINS:-example.test}" \
        "transport_maps = static:smtp:${NEXT_HOP:-[mailbox]:25}" \
        "smtpd_milters = inet:${MILTER:-mailwarden:8891}" \
        "non_smtpd_milters = inet:${MILTER:-mailwarden:8891}" \
        "milter_default_action = tempfail" \
        "milter_connect_timeout = 10s" \
        "milter_protocol = 6"
    ;;
mailbox)
    install -d -o 5000 -g 5000 -m 0750 /var/mail/vhosts
    postconf -e \
        "virtual_mailbox_domains = ${MAILBOX_DOMAINS:-example.test example.net}" \
        "virtual_mailbox_base = /var/mail/vhosts" \
        "virtual_mailbox_maps = static:inbox/" \
        "virtual_uid_maps = static:5000" \
        "virtual_gid_maps = static:5000"
    ;;
*)
    echo "postfix-entrypoint: POSTFIX_ROLE=$role: use mx or mailbox" >&2
    exit 2
    ;;
esac
postfix check
exec postfix start-fg
