# Sourced by perf-reports.sh and perf-fleet.sh: the full inbound-auth load
# (mailwarden-load, CONNECTIONS (default 64) connections, the auth fixture's corpus) against the daemon
# run on $work/MODE.toml, alternating two modes for ROUNDS (default 3) rounds,
# then the medians. The caller owns $work, $port and pids; it may define
# ab_before MODE and ab_after MODE (whose output ends that run's line).

. scripts/lib/cpu.sh

declare -A ab_rates ab_p99s

# ab_run LABEL MODE: one run, printed as "LABEL MODE: N messages/s, p99 X ms".
ab_run() {
    local label=$1 mode=$2 out mw rate p99 extra=""
    if declare -F ab_before >/dev/null; then ab_before "$mode"; fi
    ./target/release/mailwarden serve -c "$work/$mode.toml" 2>>"$work/$mode.log" &
    mw=$!
    pids+=($mw)
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    out=$(./target/release/mailwarden-load --target "inet:127.0.0.1:$port" --connections "${CONNECTIONS:-64}" \
        --per-connection 20 --duration "${DURATION:-10}" --corpus "$work/corpus" \
        --client-ip 192.0.2.10 --helo mail.sender.test --mail-from alice@sender.test)
    mw_cpu=$(cpu_since "$mw" 0)
    kill -TERM "$mw"
    wait "$mw" 2>/dev/null || true
    rate=$(awk '/^throughput/ {print $2}' <<<"$out")
    p99=$(awk '/^latency ms/ {print $8}' <<<"$out")
    if declare -F ab_after >/dev/null; then extra=$(ab_after "$mode"); fi
    echo "$label $mode: $rate messages/s, p99 $p99 ms, mailwarden CPU $mw_cpu s$extra"
    ab_rates[$mode]+="$rate "
    ab_p99s[$mode]+="$p99 "
}

ab_median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# ab_compare LABEL MODE_A MODE_B: the alternating rounds, then both medians.
ab_compare() {
    local label=$1 mode
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    for _ in $(seq "${ROUNDS:-3}"); do
        ab_run "$label" "$2"
        ab_run "$label" "$3"
    done
    for mode in "$2" "$3"; do
        echo "median, $label $mode: $(ab_median <<<"${ab_rates[$mode]}") messages/s, p99 $(ab_median <<<"${ab_p99s[$mode]}") ms"
    done
    # Each round runs both modes back to back: their ratio round by round cancels
    # the drift of a shared machine between rounds.
    local ratios
    ratios=$(paste <(tr ' ' '\n' <<<"${ab_rates[$3]}" | grep .) <(tr ' ' '\n' <<<"${ab_rates[$2]}" | grep .) |
        awk '{printf "%.1f ", 100 * $1 / $2}')
    echo "per round, $3 against $2: $ratios(median $(ab_median <<<"$ratios")%)"
}
