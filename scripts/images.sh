#!/usr/bin/env bash
# Builds the stack's container images without a registry: a Debian bookworm root
# made by debootstrap from Debian's mirror is `docker import`ed as the base, and
# every image (postfix, clamd, knot, mailwarden) is a thin layer on it; redis runs
# on the base itself.
#   scripts/images.sh                 release binary (cargo build --release)
#   BIN=target/debug/mailwarden scripts/images.sh   an already built binary
#   scripts/images.sh base            only the base image
# Cached: the base is rebuilt only when its package list changes (tag
# mailwarden/base:<hash>, root tarball kept in ${CACHE:-~/.cache/mailwarden}),
# and the thin images reuse Docker's layer cache. Needs root (debootstrap).
set -euo pipefail
cd "$(dirname "$0")/.."
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=${CACHE:-$HOME/.cache/mailwarden}
# Everything any image runs. One root for all keeps one shared layer on disk.
packages=(postfix clamav-daemon clamav-freshclam knot knot-dnsutils redis-server
    swaks ca-certificates curl netbase)
hash=$(printf '%s\n' bookworm "$mirror" "${packages[@]}" "$(cat docker/base/setup.sh)" | sha256sum | cut -c1-12)
base=mailwarden/base:$hash
export DOCKER_BUILDKIT=0

need() { command -v "$1" >/dev/null 2>&1 || { echo "images.sh: $1 is missing${2:+ ($2)}" >&2; exit 1; }; }
need docker
if ! docker image inspect "$base" >/dev/null 2>&1; then
    tarball=$cache/base-$hash.tar
    if [ ! -s "$tarball" ]; then
        need debootstrap "apt-get install debootstrap"
        [ "$(id -u)" -eq 0 ] || { echo "images.sh: debootstrap needs root" >&2; exit 1; }
        mkdir -p "$cache"
        root=$(mktemp -d "$cache/root.XXXXXX")
        trap 'rm -rf "$root"' EXIT
        echo "images.sh: debootstrap bookworm into $root"
        debootstrap --variant=minbase bookworm "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
            { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
        cp docker/base/setup.sh "$root/setup.sh"
        cp /etc/resolv.conf "$root/etc/resolv.conf"
        echo "images.sh: installing ${packages[*]}"
        chroot "$root" /bin/sh /setup.sh "$mirror" "${packages[@]}" >>"$cache/debootstrap.log" 2>&1 ||
            { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
        rm -f "$root/setup.sh"
        : >"$root/etc/resolv.conf"
        tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
        mv "$tarball.tmp" "$tarball"
        rm -rf "$root"
        trap - EXIT
    fi
    echo "images.sh: docker import $base"
    docker import --change 'CMD ["/bin/bash"]' "$tarball" "$base" >/dev/null
fi
docker tag "$base" mailwarden/base:bookworm
[ "${1:-}" = base ] && exit 0

bin=${BIN:-}
if [ -z "$bin" ]; then
    cargo build --release --locked --bin mailwarden
    bin=target/release/mailwarden
fi
[ -x "$bin" ] || { echo "images.sh: $bin is not an executable" >&2; exit 1; }

# The thin images. Each build context is its docker/ folder; mailwarden's gets
# the binary copied in (the host build: same Debian, same libc).
build() {
    local name=$1 ctx=$2
    local log
    log=$(docker build -q -t "mailwarden/$name:latest" "$ctx" 2>&1) ||
        { printf '%s\n' "$log" >&2; echo "images.sh: building mailwarden/$name failed" >&2; exit 1; }
    echo "images.sh: mailwarden/$name:latest"
}
build postfix docker/postfix
build knot docker/knot
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp -r docker/clamd/. "$ctx/"
./docker/clamd/test-signatures.sh "$ctx/db"
build clamd "$ctx"
rm -rf "$ctx"
ctx=$(mktemp -d)
cp -r docker/mailwarden/. "$ctx/"
# Without debug info: the image needs the code, not 100 MB of DWARF.
strip --strip-debug -o "$ctx/mailwarden" "$bin"
build mailwarden "$ctx"
