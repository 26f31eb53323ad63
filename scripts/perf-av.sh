#!/usr/bin/env bash
# Reproduces README's antivirus numbers. A private clamd (signatures from
# docker/clamd/test-signatures.sh: EICAR by MD5 and by body pattern, as in the
# tests) on a unix socket; a corpus of 20 messages of about 100 KB, each with a
# text part, a binary attachment and a zip attachment. With the same load tool and the same number of concurrent
# connections it measures: the corpus sent straight to clamd with INSTREAM (no
# milter), and mailwarden scanning it as a milter (client 127.0.0.1, trusted, so no
# DNS checks: the antivirus step alone). COMPARE=1 adds Debian's clamav-milter on
# the same clamd.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bins

work=$(mktemp -d)
conns=${CONNECTIONS:-8}
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT

mkdir -p "$work/db" "$work/corpus"
./docker/clamd/test-signatures.sh "$work/db"
python3 - "$work" <<'PY'
import sys, random, io, zipfile, base64
work = sys.argv[1]
rng = random.Random(7)
words = "invoice payment account order shipping total amount please find attached regards".split()
def b64(data):
    return "\r\n".join(base64.b64encode(data).decode()[i:i+76] for i in range(0, len(base64.b64encode(data)), 76))
for n in range(20):
    pdf = b"%PDF-1.4\n" + bytes(rng.getrandbits(8) for _ in range(58000)) + b"\n%%EOF\n"
    text = " ".join(rng.choice(words) for _ in range(4000)).encode()
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"statement-{n}.txt", text)
        zf.writestr(f"data-{n}.bin", bytes(rng.getrandbits(8) for _ in range(12000)))
    msg = (f"From: Billing <billing@vendor.test>\r\nTo: bob@dest.test\r\nSubject: Invoice {n}\r\n"
           f"Date: Tue, 24 Nov 2026 08:00:00 +0000\r\nMessage-ID: <av-{n}@vendor.test>\r\n"
           "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
           "--b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
           + " ".join(rng.choice(words) for _ in range(300)) + "\r\n"
           f"--b\r\nContent-Type: application/pdf; name=\"invoice-{n}.pdf\"\r\n"
           f"Content-Disposition: attachment; filename=\"invoice-{n}.pdf\"\r\n"
           "Content-Transfer-Encoding: base64\r\n\r\n" + b64(pdf) + "\r\n"
           f"--b\r\nContent-Type: application/zip; name=\"statement-{n}.zip\"\r\n"
           f"Content-Disposition: attachment; filename=\"statement-{n}.zip\"\r\n"
           "Content-Transfer-Encoding: base64\r\n\r\n" + b64(z.getvalue()) + "\r\n--b--\r\n")
    open(f"{work}/corpus/{n:02d}.eml", "w").write(msg)
PY
echo "corpus: $(ls "$work/corpus" | wc -l) messages, $(du -b "$work/corpus" | cut -f1 | awk '{printf "%d", $1 / 20 / 1024}') KB average"

cat >"$work/clamd.conf" <<CONF
DatabaseDirectory $work/db
LocalSocket $work/clamd.sock
Foreground yes
LogFile $work/clamd.log
User root
StreamMaxLength 30M
MaxThreads $conns
CONF
clamd -c "$work/clamd.conf" >/dev/null 2>&1 &
clamd_pid=$!
pids+=($clamd_pid)
for _ in $(seq 100); do [ -S "$work/clamd.sock" ] && break; sleep 0.1; done
echo "clamd: $(clamd --version)"

. scripts/lib/cpu.sh
# measured NAME PID ARGS...: one load run, then the CPU that PID and clamd used.
measured() {
    local name=$1 pid=$2 before clamd_before
    shift 2
    [ "$pid" = - ] || before=$(cpu "$pid")
    clamd_before=$(cpu "$clamd_pid")
    ./target/release/mailwarden-load --connections "$conns" --per-connection 20 \
        --duration "${DURATION:-10}" --corpus "$work/corpus" --client-ip 127.0.0.1 "$@"
    local clamd_cpu
    clamd_cpu=$(cpu_since "$clamd_pid" "$clamd_before")
    if [ "$pid" = - ]; then
        echo "clamd CPU $clamd_cpu s"
    else
        echo "$name CPU $(cpu_since "$pid" "$before") s, clamd CPU $clamd_cpu s"
    fi
}

cat >"$work/mailwarden.toml" <<TOML
[server]
listen = ["unix:$work/mw.sock"]
[antivirus]
clamd = "unix:$work/clamd.sock"
max_concurrent_scans = $conns
TOML
./target/release/mailwarden serve -c "$work/mailwarden.toml" 2>"$work/mailwarden.log" &
mw=$!
pids+=($mw)
for _ in $(seq 50); do [ -S "$work/mw.sock" ] && break; sleep 0.1; done

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
# This machine's speed drifts by 20% from minute to minute, so the two are measured
# in alternating rounds and compared by their medians.
rounds=${ROUNDS:-3}
: >"$work/rates"
for round in $(seq "$rounds"); do
    echo
    echo "== round $round: straight to clamd, INSTREAM, $conns connections"
    measured direct - --clamd "unix:$work/clamd.sock" | tee "$work/out"
    echo "direct $(awk '/^throughput/ {print $2}' "$work/out")" >>"$work/rates"
    echo
    echo "== round $round: mailwarden as a milter, scanning the whole message, $conns connections"
    measured mailwarden "$mw" --target "unix:$work/mw.sock" | tee "$work/out"
    echo "mailwarden $(awk '/^throughput/ {print $2}' "$work/out")" >>"$work/rates"
done
echo "sample decision:  $(grep -m1 'message decided' "$work/mailwarden.log" | grep -o 'reason=.*' | cut -c1-120)"
median() { grep "^$1 " "$work/rates" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
echo
echo "median of $rounds rounds: straight to clamd $(median direct)/s, through mailwarden $(median mailwarden)/s ($(awk -v m="$(median mailwarden)" -v d="$(median direct)" 'BEGIN{printf "%.1f", 100 * m / d}')%)"

if [ "${COMPARE:-0}" = 1 ]; then
    command -v clamav-milter >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends clamav-milter >/dev/null
    cat >"$work/clamav-milter.conf" <<CONF
MilterSocket unix:$work/cm.sock
ClamdSocket unix:$work/clamd.sock
Foreground yes
User root
LogFile $work/clamav-milter.log
MaxFileSize 30M
OnInfected Reject
AddHeader Replace
CONF
    clamav-milter -c "$work/clamav-milter.conf" >/dev/null 2>&1 &
    cm=$!
    pids+=($cm)
    for _ in $(seq 50); do [ -S "$work/cm.sock" ] && break; sleep 0.1; done
    echo
    echo "== clamav-milter $(clamav-milter --version 2>&1 | head -1 | awk '{print $NF}') (Debian), same clamd, $conns connections"
    measured clamav-milter "$cm" --target "unix:$work/cm.sock"
fi
