#!/usr/bin/env bash
# Builds the Debian package into target/debian/ with cargo-deb (installed with
# `cargo install cargo-deb` when missing): the release binary, the configuration
# as a conffile, the systemd units, sysusers.d and tmpfiles.d entries, man pages,
# shell completions and the docs ([package.metadata.deb] in Cargo.toml).
# Prints the path of the .deb last.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo deb --version >/dev/null 2>&1; then
    echo "package.sh: installing cargo-deb" >&2
    cargo install --locked cargo-deb --version 3.8.0 >&2
fi
# PROFILE=dev packages the debug build (what the package test does, so CI does
# not build everything a second time); the default is the release build.
profile=${PROFILE:-release}
dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
cargo build --profile "$profile" --locked --bin mailwarden >&2
mkdir -p target/completions
for shell in bash zsh fish; do
    "./target/$dir/mailwarden" completions "$shell" >"target/completions/$shell.out"
done
mv target/completions/bash.out target/completions/mailwarden
mv target/completions/zsh.out target/completions/_mailwarden
mv target/completions/fish.out target/completions/mailwarden.fish
cargo deb --no-build --locked --profile "$profile" >&2
ls -t target/debian/*.deb | head -1
