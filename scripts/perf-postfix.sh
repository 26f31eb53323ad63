#!/usr/bin/env bash
# End-to-end throughput through a real Postfix: Postfix's smtp-source -> Postfix
# (private instance on loopback) -> milters -> smtp-sink, side by side in one run:
#   none        Postfix alone
#   mailwarden  SPF, DKIM, DMARC, ARC, iprev, rules, outbound signing (+ ClamAV)
#   classic     OpenDKIM (verify + sign) + OpenDMARC (SPF too) (+ clamav-milter)
#   null        (only when CONFIGS names it) scripts/lib/null-milter.py, in Python:
#               takes what mailwarden takes, checks nothing; its Postfix CPU is what
#               any such milter costs Postfix (its own speed bounds its msg/s)
#   empty       (only when CONFIGS names it) null-milter.py --empty: asks for no
#               event and changes nothing; the least any milter costs Postfix
# each with AV off and on (clamd with the EICAR test set; its CPU counted), on one
# corpus: inbound plain, inbound DKIM-signed, inbound with a 40 KB attachment,
# inbound EICAR, and outbound (over ::1, the trusted network: signed).
# Reports msg/s, the SMTP transaction time a probe client sees under the load
# (p50/p99), and CPU seconds per 1,000 messages of Postfix and of the milters.
#   scripts/perf-postfix.sh            MESSAGES=5000 ROUNDS=3 SESSIONS=20
#                                      MILTER=tcp|unix CLAMD=tcp|unix
# MILTER: how Postfix reaches every milter; CLAMD: how both AV milters reach clamd.
# Needs root (Postfix, knot on 127.0.53.53:53, a private mount namespace for the
# classic milters' resolv.conf). Installs what is missing from Debian.
set -euo pipefail
cd "$(dirname "$0")/.."
messages=${MESSAGES:-5000}
rounds=${ROUNDS:-3}
sessions=${SESSIONS:-20}
configs=${CONFIGS:-"none mailwarden classic mailwarden+av classic+av"}
ns=127.0.53.53

need=()
for p in postfix:smtp-source knot:knotd opendkim:opendkim opendkim-tools:opendkim-genkey \
    opendmarc:opendmarc clamav-milter:clamav-milter clamav-daemon:clamd; do
    command -v "${p#*:}" >/dev/null 2>&1 || [ -x "/usr/sbin/${p#*:}" ] || need+=("${p%%:*}")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "perf-postfix: installing ${need[*]}"
    # Installed, not started (policy-rc.d): each run starts its own instances.
    made_policy=
    [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; made_policy=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
    [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
fi
python3 -c 'import dkim' 2>/dev/null || python3 -m pip install -q dkimpy
cargo build --release --locked --bin mailwarden

# Not under /tmp: OpenDKIM refuses files below a world-writable directory.
mkdir -p target
work=$(mktemp -d "$PWD/target/perf-postfix.XXXXXX")
chmod 0755 "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    postfix -c "$work/postfix/conf" stop >/dev/null 2>&1 || true
    wait 2>/dev/null || true
    [ -n "${KEEP:-}" ] && echo "perf-postfix: kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0; sleep 0.1; done; echo "perf-postfix: nothing on $1:$2" >&2; return 1; }
. scripts/lib/cpu.sh

# --- keys, DNS ---------------------------------------------------------------
mkdir -p "$work/keys" "$work/knot" "$work/corpus"
./target/release/mailwarden genkey --domain example.test --selector s1 --out "$work/keys" >"$work/keys/example.txt"
./target/release/mailwarden genkey --domain sender.test --selector s1 --out "$work/keys" >"$work/keys/sender.txt"
record() { sed -n '/_domainkey.* IN TXT/,/)/p' "$1"; }
cat >"$work/knot/zones" <<EOF
\$ORIGIN test.
\$TTL 3600
@ SOA ns.test. h.test. 1 3600 600 86400 300
@ NS ns.test.
ns A $ns
sender.test. TXT "v=spf1 ip4:127.0.0.1 -all"
_dmarc.sender.test. TXT "v=DMARC1; p=reject"
mail.sender.test. A 127.0.0.1
example.test. TXT "v=spf1 ip6:::1 -all"
_dmarc.example.test. TXT "v=DMARC1; p=reject"
$(record "$work/keys/example.txt")
$(record "$work/keys/sender.txt")
EOF
printf '$ORIGIN 127.in-addr.arpa.\n$TTL 3600\n@ SOA ns.test. h.test. 1 3600 600 86400 300\n@ NS ns.test.\n1.0.0 PTR mail.sender.test.\n' >"$work/knot/rev"
cat >"$work/knot/knot.conf" <<EOF
server:
    listen: [ $ns@53 ]
    rundir: $work/knot
database:
    storage: $work/knot
zone:
  - domain: test
    file: $work/knot/zones
  - domain: 127.in-addr.arpa
    file: $work/knot/rev
log:
  - target: $work/knot/log
    any: warning
EOF
knotd -c "$work/knot/knot.conf" &
pids+=($!)
printf 'nameserver %s\n' "$ns" >"$work/resolv.conf"
wait_port "$ns" 53 || { cat "$work/knot/log" >&2; exit 1; }

# --- corpus ------------------------------------------------------------------
python3 - "$work" <<'EOF'
import base64, os, sys, dkim
work = sys.argv[1]
def msg(frm, to, subj, body, extra=""):
    return (f"From: <{frm}>\r\nTo: <{to}>\r\nSubject: {subj}\r\nDate: Thu, 03 Dec 2026 12:00:00 +0000\r\n"
            f"Message-ID: <{subj}@perf.test>\r\nMIME-Version: 1.0\r\n{extra}").encode() + body
plain = b"Content-Type: text/plain\r\n\r\n" + b"Hello, this is a plain message.\r\n" * 40
key = open(f"{work}/keys/sender.test.s1.pem", "rb").read()
def sign(m):
    return dkim.sign(m, b"s1", b"sender.test", key, include_headers=[b"from", b"to", b"subject", b"date", b"message-id"]) + m
att = base64.encodebytes(os.urandom(30000)).replace(b"\n", b"\r\n")
eicar = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
def mixed(part, name):
    return (b"Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
            b"--b1\r\nContent-Type: application/octet-stream; name=" + name + b"\r\nContent-Disposition: attachment; filename="
            + name + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + part + b"\r\n--b1--\r\n")
files = {
    "plain": msg("alice@sender.test", "bob@example.test", "plain", plain),
    "signed": sign(msg("alice@sender.test", "bob@example.test", "signed", plain)),
    "attachment": msg("alice@sender.test", "bob@example.test", "attachment", mixed(att, b"report.pdf")),
    "eicar": msg("alice@sender.test", "bob@example.test", "eicar", mixed(base64.encodebytes(eicar).replace(b"\n", b"\r\n"), b"eicar.com")),
    "outbound": msg("app@example.test", "user@remote.test", "outbound", plain),
}
for name, m in files.items():
    open(f"{work}/corpus/{name}", "wb").write(m.replace(b"\r\n", b"\n"))
EOF

# --- clamd, the milters --------------------------------------------------------
mkdir -p "$work/clamd/db"
chown clamav "$work/clamd"
./docker/clamd/test-signatures.sh "$work/clamd/db"
clamd_port=$(port)
case ${CLAMD:-tcp} in # how both milters reach clamd
tcp) clamd_addr=tcp:127.0.0.1:$clamd_port ;;
unix) clamd_addr=unix:$work/clamd/clamd.ctl ;;
*) echo "perf-postfix: CLAMD is tcp or unix, not ${CLAMD}" >&2; exit 2 ;;
esac
printf 'Foreground yes\nLocalSocket %s/clamd/clamd.ctl\nLocalSocketMode 666\nTCPSocket %s\nTCPAddr 127.0.0.1\nDatabaseDirectory %s/clamd/db\nUser clamav\nMaxThreads 10\nStreamMaxLength 25M\nLogFile %s/clamd/log\n' \
    "$work" "$clamd_port" "$work" "$work" >"$work/clamd/clamd.conf"
clamd -c "$work/clamd/clamd.conf" >/dev/null 2>&1 &
clamd_pid=$!
pids+=("$clamd_pid")
wait_port 127.0.0.1 "$clamd_port" || exit 1

# Where milter NAME listens (Postfix's notation), by MILTER: TCP on loopback or a
# unix socket in the work directory (Postfix runs unchrooted here).
case ${MILTER:-tcp} in tcp | unix) ;; *) echo "perf-postfix: MILTER is tcp or unix, not ${MILTER}" >&2; exit 2 ;; esac
mkdir -p "$work/sock"
declare -A milter_ports
milter_addr() { # $1: name
    [ -n "${milter_ports[$1]:-}" ] || milter_ports[$1]=$(port)
    if [ "${MILTER:-tcp}" = unix ]; then echo "unix:$work/sock/$1"; else echo "inet:127.0.0.1:${milter_ports[$1]}"; fi
}
# The same address as OpenDKIM and OpenDMARC (local:, PORT@HOST) write it.
milter_addr_sendmail() {
    local a
    a=$(milter_addr "$1")
    case $a in unix:*) echo "local:${a#unix:}" ;; *) echo "inet:${milter_ports[$1]}@127.0.0.1" ;; esac
}
wait_milter() { # $1: name
    local a
    a=$(milter_addr "$1")
    case $a in
    unix:*) for _ in $(seq 100); do [ -S "${a#unix:}" ] && return 0; sleep 0.1; done
        echo "perf-postfix: no socket $a" >&2; return 1 ;;
    *) wait_port 127.0.0.1 "${milter_ports[$1]}" ;;
    esac
}
for m in mailwarden null opendkim opendmarc clamav-milter; do milter_addr "$m" >/dev/null; done
mw() { # $1: av or noav
    local conf=$work/mailwarden-$1.toml
    cat >"$conf" <<EOF
[server]
listen = ["$(milter_addr mailwarden)"]
socket_mode = "0666"
max_sessions = 500
[dns]
nameservers = ["$ns:53"]
[inbound]
authserv_id = "mx.perf.test"
trusted_networks = ["::1/128"]
[[signing.keys]]
domain = "example.test"
selector = "s1"
key_file = "$work/keys/example.test.s1.pem"
[[rules]]
name = "no-executables"
when = { attachment_ext = ["exe", "scr", "js", "vbs"] }
then = { action = "reject", code = 554, text = "5.7.1 executable attachments are not accepted" }
[[rules]]
name = "tag-external"
when = { direction = "inbound", subject = { regex = "(?i)invoice|payment" } }
then = { action = "prefix_subject", prefix = "[EXTERNAL]" }
EOF
    [ "$1" = av ] && printf '[antivirus]\nclamd = "%s"\n' "$clamd_addr" >>"$conf"
    ./target/release/mailwarden serve -c "$conf" >/dev/null 2>>"$work/mailwarden-$1.log" &
    echo $!
}
cp "$work/keys/example.test.s1.pem" "$work/keys/opendkim.pem"
printf '::1\n' >"$work/internal-hosts"
cat >"$work/opendkim.conf" <<EOF
Mode sv
Socket $(milter_addr_sendmail opendkim)
UMask 000
Domain example.test
Selector s1
KeyFile $work/keys/opendkim.pem
InternalHosts $work/internal-hosts
Canonicalization relaxed/relaxed
AuthservID mx.perf.test
Nameservers $ns
Background no
Syslog no
PidFile $work/opendkim.pid
EOF
cat >"$work/opendmarc.conf" <<EOF
Socket $(milter_addr_sendmail opendmarc)
UMask 000
AuthservID mx.perf.test
TrustedAuthservIDs mx.perf.test
IgnoreHosts $work/internal-hosts
RejectFailures true
SPFSelfValidate true
PublicSuffixList /usr/share/publicsuffix/public_suffix_list.dat
Background false
Syslog false
PidFile $work/opendmarc.pid
EOF
cat >"$work/clamav-milter.conf" <<EOF
MilterSocket $(milter_addr_sendmail clamav-milter | sed 's/^local:/unix:/')
MilterSocketMode 666
ClamdSocket $clamd_addr
Foreground yes
OnInfected Reject
OnFail Defer
AddHeader Replace
MaxFileSize 25M
LogFile $work/clamav-milter.log
EOF
# The classic milters resolve through libresolv, which reads /etc/resolv.conf (port
# 53 only): give them one naming our knot in a mount namespace of their own.
# exec: started with &, the milter keeps the PID $! names, and its CPU is counted.
private_dns() { exec unshare -m sh -c "mount --bind $work/resolv.conf /etc/resolv.conf && exec \"\$@\"" sh "$@"; }

# --- Postfix --------------------------------------------------------------------
pf=$work/postfix
mkdir -p "$pf/conf" "$pf/data"
chown postfix "$pf/data"
smtp_port=$(port)
sink_port=$(port)
smtp-sink -u postfix -c "127.0.0.1:$sink_port" 512 >/dev/null 2>&1 &
pids+=($!)
awk -v p="$smtp_port" '
    /^[^# \t]/ && NF >= 8 { $5 = "n" }
    /^smtp[ \t]+inet/ { $1 = "127.0.0.1:" p; print; $1 = "[::1]:" p }
    { print }' /etc/postfix/master.cf.proto >"$pf/conf/master.cf"
postfix_main() { # $1: smtpd_milters
    cat >"$pf/conf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $pf/queue
data_directory = $pf/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1, [::1]
inet_protocols = all
myhostname = mx.perf.test
mydestination =
mynetworks = 127.0.0.0/8 [::1]/128
relayhost = [127.0.0.1]:$sink_port
smtpd_milters = $1
non_smtpd_milters = $1
milter_default_action = tempfail
milter_protocol = 6
maillog_file = $pf/maillog
maillog_file_prefixes = $pf
smtp_tls_security_level = none
smtpd_tls_security_level = none
alias_maps =
alias_database =
smtputf8_enable = no
EOF
}

# Postfix's CPU seconds: master (itself and the children it reaped) plus its live
# children.
postfix_cpu() {
    local master
    master=$(tr -d ' ' <"$pf/queue/pid/master.pid")
    { cat "/proc/$master/stat"; for c in $(cat /proc/"$master"/task/*/children); do cat "/proc/$c/stat" 2>/dev/null; done; } |
        awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); t += $12 + $13 + $14 + $15 } END { printf "%.3f", t / hz }'
}
cpus_of() { local p; for p in "$@"; do cpu "$p"; echo; done | awk '{ t += $1 } END { printf "%.3f", t }'; }
queued() { find "$pf/queue/incoming" "$pf/queue/active" "$pf/queue/maildrop" -type f 2>/dev/null | wc -l; }

# Corpus: class, share of messages and sessions (percent), client side.
classes="plain:40:127.0.0.1 signed:25:127.0.0.1 attachment:15:127.0.0.1 eicar:5:127.0.0.1 outbound:15:[::1]"
probe() { # sequential transactions beside the load, until $1 exists; prints p50 p99 (ms)
    python3 - "$smtp_port" "$work/corpus/plain" "$1" <<'EOF'
import os, smtplib, sys, time
port, path, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3]
msg = open(path, "rb").read()
times = []
while not os.path.exists(stop):
    t = time.perf_counter()
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
            s.sendmail("alice@sender.test", ["bob@example.test"], msg)
    except Exception:
        pass
    times.append((time.perf_counter() - t) * 1000)
times.sort()
q = lambda p: times[min(len(times) - 1, int(len(times) * p))] if times else 0
print(f"{q(0.5):.1f} {q(0.99):.1f} {len(times)}")
EOF
}

bulk() { # $1 sessions at once, $2 messages, $3 file: one transaction per connection
    python3 - "$smtp_port" "$@" <<'EOF'
import smtplib, sys, threading
port, sessions, total, path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
msg = open(path, "rb").read()
left = [total]
lock = threading.Lock()
codes = {}
def worker():
    while True:
        with lock:
            if left[0] == 0:
                return
            left[0] -= 1
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
                s.sendmail("alice@sender.test", ["bob@example.test"], msg)
            code = 250
        except smtplib.SMTPDataError as e:
            code = e.smtp_code
        except Exception:
            code = 0
        with lock:
            codes[code] = codes.get(code, 0) + 1
threads = [threading.Thread(target=worker) for _ in range(sessions)]
for t in threads: t.start()
for t in threads: t.join()
print("bulk", path, codes)
EOF
}

run() { # $1 config $2 round: one line of results
    local config=$1 av=noav milters="" mpids=() p
    case $config in *+av) av=av ;; esac
    # A socket left by the last run would pass wait_milter before the milter listens.
    rm -f "$work"/sock/*
    case $config in
    none) ;;
    mailwarden*)
        p=$(mw "$av"); mpids+=("$p"); wait_milter mailwarden
        milters=$(milter_addr mailwarden) ;;
    null | empty)
        if [ "$config" = empty ]; then p=--empty; else p=; fi
        python3 scripts/lib/null-milter.py "$(milter_addr null)" $p &
        mpids+=($!)
        wait_milter null
        milters=$(milter_addr null) ;;
    classic*)
        private_dns opendkim -f -x "$work/opendkim.conf" 2>>"$work/opendkim.log" &
        mpids+=($!)
        private_dns opendmarc -f -c "$work/opendmarc.conf" 2>>"$work/opendmarc.log" &
        mpids+=($!)
        wait_milter opendkim; wait_milter opendmarc
        milters="$(milter_addr opendkim), $(milter_addr opendmarc)"
        if [ "$av" = av ]; then
            clamav-milter -c "$work/clamav-milter.conf" &
            mpids+=($!)
            wait_milter clamav-milter
            milters="$milters, $(milter_addr clamav-milter)"
        fi ;;
    esac
    rm -rf "$pf/queue"; mkdir -p "$pf/queue"
    postfix_main "$milters"
    postfix -c "$pf/conf" start-fg >>"$work/postfix.log" 2>&1 &
    local pf_pid=$!
    wait_port 127.0.0.1 "$smtp_port" || { cat "$work/postfix.log" "$pf/maillog" >&2; exit 1; }
    sleep 1
    local pf0 m0 c0 t0 stop=$work/stop.$config.$2
    pf0=$(postfix_cpu); m0=$(cpus_of "${mpids[@]}"); c0=$(cpu "$clamd_pid")
    probe "$stop" >"$work/probe.out" &
    local probe_pid=$! loads=() class name share host n s
    t0=$(date +%s.%N)
    for class in $classes; do
        IFS=: read -r name share host <<<"$class"
        n=$((messages * share / 100)); s=$(((sessions * share + 99) / 100))
        local from=alice@sender.test to=bob@example.test
        [ "$name" = outbound ] && from=app@example.test to=user@remote.test
        if [ "$name" = eicar ]; then
            # smtp-source stops at the first refusal: a client that goes on.
            bulk "$s" "$n" "$work/corpus/$name" >>"$work/smtp-source.log" 2>&1 &
        else
            smtp-source -s "$s" -m "$n" -f "$from" -t "$to" -F "$work/corpus/$name" "$host:$smtp_port" \
                >>"$work/smtp-source.log" 2>&1 &
        fi
        loads+=($!)
    done
    for p in "${loads[@]}"; do wait "$p" || true; done
    while [ "$(queued)" -gt 0 ]; do sleep 0.05; done
    local t1 pf1 m1 c1
    t1=$(date +%s.%N)
    pf1=$(postfix_cpu); m1=$(cpus_of "${mpids[@]}"); c1=$(cpu "$clamd_pid")
    touch "$stop"; wait "$probe_pid" || true
    postfix -c "$pf/conf" stop >/dev/null 2>&1 || true
    wait "$pf_pid" 2>/dev/null || true
    for p in "${mpids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    local rejected
    rejected=$(grep -c 'milter-reject: END-OF-MESSAGE' "$pf/maillog" || true)
    mv "$pf/maillog" "$work/maillog.$config.$2"
    # config round msg/s p50 p99 postfix-cpu/1000 milter-cpu/1000 clamd-cpu/1000 rejected
    awk -v c="$config" -v r="$2" -v n="$messages" -v t="$(echo "$t1 - $t0" | bc)" \
        -v pf="$(echo "$pf1 - $pf0" | bc)" -v m="$(echo "$m1 - $m0" | bc)" -v cl="$(echo "$c1 - $c0" | bc)" \
        -v probe="$(cat "$work/probe.out")" -v rej="$rejected" 'BEGIN {
        split(probe, q, " "); n += q[3]   # the probe'"'"'s messages are mail too
        printf "%-14s %d %8.0f %7.1f %7.1f %7.2f %7.2f %7.2f %d\n", c, r, n / t, q[1], q[2],
            pf / n * 1000, m / n * 1000, cl / n * 1000, rej }'
}

echo "perf-postfix: $messages messages x $rounds rounds, $sessions sessions; corpus: $classes"
echo "config        round   msg/s  p50_ms  p99_ms pf_cpu/1k milt_cpu/1k clamd/1k rejected"
for round in $(seq "$rounds"); do
    for config in $configs; do
        run "$config" "$round" | tee -a "$work/results"
    done
done
echo
echo "medians (CPU in seconds per 1,000 messages; ratio = msg/s against Postfix alone):"
sort -k1,1 -k3,3n "$work/results" | awk '
    { k = $1; v[k, ++c[k]] = $0 }
    END {
        for (k in c) { split(v[k, int((c[k] + 1) / 2)], f, " "); med[k] = f[3]; line[k] = v[k, int((c[k] + 1) / 2)] }
        for (k in c) { split(line[k], f, " ")
            printf "%-14s %8.0f msg/s  %5.1f%%  p50 %6.1f ms  p99 %6.1f ms  postfix %5.2f s  milters %5.2f s  clamd %5.2f s\n",
                k, f[3], ("none" in med) ? 100 * f[3] / med["none"] : 0, f[4], f[5], f[6], f[7], f[8] }
    }' | sort
# The same ratio round by round (each round runs every configuration back to
# back, so this pairing cancels the drift of a shared machine between rounds).
echo
echo "per round, msg/s against Postfix alone in the same round (median):"
awk '{ rate[$1, $2] = $3; if ($2 > last) last = $2; configs[$1] }
    END {
        for (c in configs) {
            if (c == "none") continue
            n = 0; list = ""
            for (r = 1; r <= last; r++) if (rate["none", r] > 0) { x[++n] = 100 * rate[c, r] / rate["none", r]; list = list sprintf(" %.0f%%", x[n]) }
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
            printf "%-14s%s  (median %.1f%%)\n", c, list, x[int((n + 1) / 2)]
        }
    }' "$work/results" | sort
