#!/bin/sh
# Benchmark ebsim's mkfs.ext4 and resize2fs against the real e2fsprogs
# 1.47.0 tools on sparse image files, in the same hyperfine run.
#
#   scripts/bench-ext4.sh [WORKDIR]
#
# Cases: mkfs of 1 TiB and 16 TiB - 4 KiB (fresh sparse file each run, as a
# user would start), and resize2fs 8 GiB -> 8 TiB (fresh copy of a real
# mkfs'd 8 GiB image each run). Needs hyperfine, e2fsprogs, a release build
# (built here) and a filesystem that takes 16 TiB - 4 KiB files (ext4, XFS,
# tmpfs). WORKDIR defaults to a temporary directory under /var/tmp.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$here/target}
cargo build --release --manifest-path "$here/Cargo.toml" >/dev/null
ebsim="$target/release/ebsim"
work=${1:-$(mktemp -d /var/tmp/ebsim-bench-ext4.XXXXXX)}
mkdir -p "$work"
cd "$work"
export E2FSPROGS_FAKE_TIME=1700000000
PATH=/usr/sbin:/sbin:$PATH
runs=${RUNS:-10}

for size in 1T $((16 * 1024 * 1024 * 1024 * 1024 - 4096)); do
    hyperfine --warmup 2 --runs "$runs" -N \
        --prepare "sh -c 'rm -f mkfs.img && truncate -s $size mkfs.img'" \
        --export-markdown "mkfs-$size.md" \
        -n "mkfs.ext4 $size (e2fsprogs)" "mkfs.ext4 -q -F mkfs.img" \
        -n "mkfs.ext4 $size (ebsim)" "$ebsim mkfs.ext4 -q -F mkfs.img"
done

rm -f src8g.img
truncate -s 8G src8g.img
mkfs.ext4 -q -F src8g.img
hyperfine --warmup 1 --runs "$runs" -N \
    --prepare "sh -c 'rm -f grow.img && cp --sparse=always src8g.img grow.img && truncate -s 8T grow.img'" \
    --export-markdown "resize2fs-8g-8t.md" \
    -n "resize2fs 8G->8T (e2fsprogs)" "resize2fs grow.img" \
    -n "resize2fs 8G->8T (ebsim)" "$ebsim resize2fs grow.img"

rm -f mkfs.img grow.img src8g.img
echo "results (markdown) in $work"
