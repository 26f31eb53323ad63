# Sourced by the performance scripts: the inbound-authentication fixture that
# README's auth numbers use. knot serves tests/fixtures/auth/zones on a loopback
# port, and dkimpy signs a corpus of 10 KB messages with the fixture RSA-2048 key.
# The caller owns $work and the pids array (its EXIT trap stops what is started).

# auth_fixture_knot DIR PORT: starts knotd on 127.0.0.1:PORT serving the fixture
# zones from DIR, waits until it answers, and appends its PID to pids.
auth_fixture_knot() {
    local dir=$1 port=$2 z
    mkdir -p "$dir/zones" "$dir/db"
    cp tests/fixtures/auth/zones/*.zone "$dir/zones/"
    {
        printf 'server:\n  rundir: "%s"\n  user: root:root\n  listen: 127.0.0.1@%s\n' "$dir" "$port"
        printf 'database:\n  storage: "%s/db"\n' "$dir"
        printf 'template:\n  - id: default\n    storage: "%s/zones"\n    file: "%%s.zone"\n' "$dir"
        printf 'zone:\n'
        for z in tests/fixtures/auth/zones/*.zone; do printf '  - domain: %s\n' "$(basename "$z" .zone)"; done
    } >"$dir/knot.conf"
    knotd -c "$dir/knot.conf" >"$dir/knot.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 50); do
        kdig @127.0.0.1 -p "$port" +short TXT sender.test 2>/dev/null | grep -q spf1 && return 0
        sleep 0.1
    done
    echo "knot on port $port did not answer; see $dir/knot.log" >&2
    return 1
}

# auth_fixture_corpus DIR: 20 distinct 10 KB messages from alice@sender.test,
# DKIM-signed (rsa-sha256, relaxed/relaxed) by dkimpy.
auth_fixture_corpus() {
    mkdir -p "$1"
    python3 - "$1" <<'PY'
import sys, dkim
key = open("tests/fixtures/auth/keys/sender.test.rsa2048.pem", "rb").read()
line = "The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
for i in range(20):
    body = "".join(f"{n:04d} {line}" for n in range(10240 // (len(line) + 5)))
    msg = (f"From: Alice <alice@sender.test>\r\nTo: bob@dest.test\r\nSubject: load {i}\r\n"
           f"Date: Tue, 24 Nov 2026 08:00:00 +0000\r\nMessage-ID: <load-{i}@sender.test>\r\n"
           "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n" + body).encode()
    sig = dkim.sign(msg, b"rsa2048", b"sender.test", key, canonicalize=(b"relaxed", b"relaxed"))
    open(f"{sys.argv[1]}/{i:02d}.eml", "wb").write(sig + msg)
PY
}
