#!/usr/bin/env bash
# Metrics and anomaly tracking on (an [admin] endpoint and [alerts] configured, so
# every decision is counted and fed to the detector) against both off, on the
# accept-all milter path from 127.0.0.1: two mailwarden processes,
# measured in alternating rounds (this machine's speed drifts).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bins

work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT
printf 'perf-token-0123456789abcdef\n' >"$work/tokens"
chmod 600 "$work/tokens"
off=${PORT:-18896}
on=$((off + 1))
printf '[server]\nlisten = ["inet:127.0.0.1:%s"]\n' "$off" >"$work/off.toml"
printf '[server]\nlisten = ["inet:127.0.0.1:%s"]\n[admin]\nlisten = "inet:127.0.0.1:%s"\ntoken_file = "%s"\n[alerts]\nmin_messages = 1000000\n' \
    "$on" "$((on + 100))" "$work/tokens" >"$work/on.toml"
for mode in off on; do
    ./target/release/mailwarden serve -c "$work/$mode.toml" 2>"$work/$mode.log" &
    pids+=($!)
    eval "pid_$mode=$!"
done
. scripts/lib/cpu.sh
sleep 1
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
: >"$work/rates"
: >"$work/ratios"
: >"$work/cpu"
# Each round measures both, back to back, in alternating order; the result is the
# median of the per-round ratios, which the machine's drift between rounds does not
# move.
for round in $(seq "${ROUNDS:-7}"); do
    [ "${INSTRUCTIONS_ONLY:-0}" = 1 ] && break
    order="off on"
    [ $((round % 2)) = 0 ] && order="on off"
    for mode in $order; do
        port=$off
        [ "$mode" = on ] && port=$on
        pid=$pid_off
        [ "$mode" = on ] && pid=$pid_on
        before=$(cpu "$pid")
        out=$(./target/release/mailwarden-load --target "inet:127.0.0.1:$port" --connections 64 \
            --duration "${DURATION:-5}" --client-ip 127.0.0.1)
        rate=$(awk '/^throughput/ {print $2}' <<<"$out")
        # Daemon CPU per message, warm-up second included on both sides.
        sent=$(awk -v r="$rate" -v d="${DURATION:-5}" 'BEGIN{print r * (d + 1)}')
        us=$(awk -v a="$(cpu "$pid")" -v b="$before" -v n="$sent" 'BEGIN{printf "%.2f", 1e6 * (a - b) / n}')
        echo "round $round, metrics $mode: $rate messages/s, $us us of daemon CPU per message"
        echo "$mode $rate" >>"$work/rates"
        echo "$mode $us" >>"$work/cpu"
        eval "rate_$mode=$rate"
    done
    awk -v a="$rate_on" -v b="$rate_off" 'BEGIN{printf "%.2f\n", 100 * (a - b) / b}' >>"$work/ratios"
done
median() { grep "^$1 " "$work/rates" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
[ "${INSTRUCTIONS_ONLY:-0}" = 1 ] || {
echo "per-round change with metrics and alerts on: $(tr '\n' ' ' <"$work/ratios")"
cpu_median() { grep "^$1 " "$work/cpu" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
echo "daemon CPU per message, median: off $(cpu_median off) us, on $(cpu_median on) us ($(awk -v a="$(cpu_median on)" -v b="$(cpu_median off)" 'BEGIN{printf "%+.1f%%", 100 * (a - b) / b}'))"
echo "median per-round change: $(sort -n "$work/ratios" | awk '{a[NR]=$1} END {printf "%+.1f%%", a[int((NR + 1) / 2)]}') (medians: off $(median off)/s, on $(median on)/s)"
curl -s -H "Authorization: Bearer perf-token-0123456789abcdef" "http://127.0.0.1:$((on + 100))/metrics" | grep '^mailwarden_messages_total' || true
}

# Throughput on a shared 2-core machine swings by more than the effect measured, so
# the cost is also counted in instructions, which do not swing: each config runs
# under callgrind for 8 s of 16 connections, and the instructions spent in the
# milter sessions (everything a message costs but the log writer thread and the
# kernel) are divided by the messages decided. Three configs: accept-all with
# metrics and alerts off and on, and full inbound authentication (SPF, DKIM, ARC,
# iprev and DMARC against knot serving the fixture zones, dkimpy-signed corpus).
# INSTRUCTIONS_ONLY=1 skips the throughput rounds above.
if command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null; then
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
    . scripts/lib/auth-fixture.sh
    auth_fixture_knot "$work/knot" "${DNS_PORT:-15354}"
    auth_fixture_corpus "$work/corpus"
    auth=$((on + 1))
    printf '[server]\nlisten = ["inet:127.0.0.1:%s"]\n[dns]\nnameservers = ["127.0.0.1:%s"]\n[inbound]\nauthserv_id = "mx.perf.test"\n' \
        "$auth" "${DNS_PORT:-15354}" >"$work/auth.toml"
    for mode in off on auth; do
        port=$off
        [ "$mode" = on ] && port=$on
        load_args=(--client-ip 127.0.0.1)
        if [ "$mode" = auth ]; then
            port=$auth
            load_args=(--corpus "$work/corpus" --client-ip 192.0.2.10 --helo mail.sender.test --mail-from alice@sender.test)
        fi
        valgrind --tool=callgrind --callgrind-out-file="$work/$mode.cg" \
            ./target/release/mailwarden serve -c "$work/$mode.toml" 2>"$work/$mode.vg.log" &
        pids+=($!)
        for _ in $(seq 100); do
            grep -q 'listening for milter connections' "$work/$mode.vg.log" 2>/dev/null && break
            sleep 0.2
        done
        ./target/release/mailwarden-load --target "inet:127.0.0.1:$port" --connections 16 \
            --duration 8 --threads 1 "${load_args[@]}" >/dev/null
        kill "${pids[-1]}"
        wait "${pids[-1]}" 2>/dev/null || true
        n=$(grep -c 'message decided' "$work/$mode.vg.log" || true)
        label="accept-all, metrics and alerts $mode"
        [ "$mode" = auth ] && label="full inbound auth"
        # awk reads to the end: a reader that quits early would fail the pipe.
        callgrind_annotate --inclusive=yes "$work/$mode.cg" 2>/dev/null |
            awk -v n="$n" -v m="$label" 'index($0, "accept_loop::{{closure}}::{{closure}} [") && !done {
                done = 1; gsub(",", "", $1)
                printf "instructions per message in the sessions, %s: %d (%d messages)\n", m, $1 / n, n
            }'
    done
else
    echo "valgrind is not installed: no instruction counts (apt-get install valgrind)"
fi
