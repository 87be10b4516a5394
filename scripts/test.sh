#!/bin/sh
# The test command of README.md: installs the real tools the differential
# tests compare against (when missing and apt-get is available), checks
# formatting and lints (rustfmt, and clippy with warnings as errors; the
# library warns on unwrap/expect/panic), then runs the whole test suite.
# CI (.ci/run) calls exactly this.
set -eu
cd "$(dirname "$0")/.."

# command -> Debian package
need=""
for pair in \
    growpart:cloud-guest-utils \
    sfdisk:fdisk \
    sgdisk:gdisk \
    mkfs.ext4:e2fsprogs \
    mkfs.xfs:xfsprogs \
    faketime:faketime \
    hyperfine:hyperfine \
    losetup:mount \
    chattr:e2fsprogs
do
    cmd=${pair%%:*}
    pkg=${pair#*:}
    if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/sbin/$cmd" ] && [ ! -x "/usr/sbin/$cmd" ]; then
        need="$need $pkg"
    fi
done
if [ -n "$need" ]; then
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        echo "installing:$need" >&2
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
    else
        echo "warning: missing tools ($need) and no apt-get; differential tests will skip (or fail under CI)" >&2
    fi
fi

# rustfmt and clippy come with the toolchain; install them when missing.
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
cargo fmt --check
cargo clippy --all-targets --release -- -D warnings

cargo test --release "$@"
