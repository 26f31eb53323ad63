#!/usr/bin/env bash
# Prints which top-level modules under src/ each module imports (crate:: paths,
# test modules aside) and fails on an import cycle or a source file over 500 lines.
# The check itself is tests/layers.rs, so the test suite enforces the same thing.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked --test layers -- --nocapture --test-threads 1 2>&1 |
    grep -E '^[a-z_]+ -> |import cycle|over 500 lines'
