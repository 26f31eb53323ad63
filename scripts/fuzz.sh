#!/usr/bin/env bash
# Coverage-guided fuzzing of everything that parses what the outside sends: the
# milter packet decoder and session state machine, the MIME walk and attachment
# stripping, the config parser, Authentication-Results reading, DMARC and SPF
# records. Runs each target for SECONDS (default 600) with the committed seed
# seeds (fuzz/seeds/TARGET; what it finds goes to fuzz/corpus/TARGET) and prints target, seconds, executions and result.
# A crash leaves its input in fuzz/artifacts/TARGET/; make it a named unit test.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(milter mime config authres dmarc_record spf_record auth_fields)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cd fuzz
cargo +nightly fuzz build -O 2>&1 | tail -1
printf '%-14s %8s %14s  %s\n' target seconds executions result
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    log=$(mktemp)
    if cargo +nightly fuzz run -O "$t" "corpus/$t" "seeds/$t" -- -max_total_time="$seconds" -rss_limit_mb=2048 \
        -max_len=65536 >"$log" 2>&1; then
        result=ok
    else
        result="CRASH (see fuzz/artifacts/$t)"
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    printf '%-14s %8s %14s  %s\n' "$t" "$seconds" "${execs:-?}" "$result"
    rm -f "$log"
done
