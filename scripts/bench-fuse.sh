#!/bin/sh
# Benchmark of `ebsim mount` (the FUSE server, issue 12) against a kernel
# loop mount of the same kind of image, in the same run, with hyperfine:
#  1. sequential write of 1 GiB + fsync (dd conv=fsync);
#  2. `tar -x` of many small files (a tarball of /usr/include, ~8,700
#     entries) made durable: `sync -f` (syncfs, which the kernel's
#     filesystems honour) and an fsync of one file (which commits every
#     staged change of the FUSE server, as a journal commit does; FUSE has
#     no syncfs request for a server like this one).
# Each run starts from a freshly made filesystem (hyperfine --prepare makes
# it and mounts it; --cleanup unmounts), so both sides do the same work.
# Targets (issue 12): sequential >= 0.5x the kernel, small files >= 0.25x.
#
# Usage: scripts/bench-fuse.sh [WORKDIR]   (default: a new directory in $TMPDIR)
# Needs: root (loop mounts, /dev/fuse), hyperfine, mkfs.ext4, mkfs.xfs, tar.
set -eu

cd "$(dirname "$0")/.."
cargo build --release --quiet
BIN="$(realpath "${CARGO_TARGET_DIR:-target}/release/ebsim")"
WORK="${1:-$(mktemp -d "${TMPDIR:-/tmp}/bench-fuse.XXXXXX")}"
mkdir -p "$WORK"
WORK="$(realpath "$WORK")"
echo "work directory: $WORK"
export EBSIM_HOME="$WORK/home"
RUNS="${RUNS:-5}"

IMG="$WORK/fs.img"
MNT="$WORK/mnt"
mkdir -p "$MNT"
SRC="$WORK/src.bin"
TAR="$WORK/include.tar"
[ -f "$SRC" ] || head -c 1073741824 /dev/urandom >"$SRC"
[ -f "$TAR" ] || tar -C /usr -cf "$TAR" include
cat "$SRC" "$TAR" >/dev/null   # in the page cache for every run

cleanup() {
    mountpoint -q "$MNT" && { "$BIN" umount "$MNT" 2>/dev/null || umount "$MNT"; }
    true
}
trap cleanup EXIT

for fs in ext4 xfs; do
    case $fs in
        ext4) MKFS="mkfs.ext4 -q -F $IMG" ;;
        xfs) MKFS="mkfs.xfs -q -f $IMG" ;;
    esac
    MAKE="rm -f $IMG && truncate -s 4G $IMG && $MKFS"
    # --prepare runs before each run, --cleanup once after the last: each
    # prepare unmounts what the previous run left.
    KMOUNT="(! mountpoint -q $MNT || umount $MNT) && $MAKE && mount -o loop $IMG $MNT"
    EMOUNT="(! mountpoint -q $MNT || $BIN umount $MNT) && $MAKE && $BIN mount $IMG $MNT"
    UMOUNT_K="umount $MNT"
    UMOUNT_E="$BIN umount $MNT"
    DD="dd if=$SRC of=$MNT/big bs=1M conv=fsync status=none"
    UNTAR="tar -C $MNT -xf $TAR && sync -f $MNT && sync $MNT/include/stdio.h"
    # This hyperfine takes one --cleanup per invocation: one per side.
    hyperfine --runs "$RUNS" --export-markdown "$WORK/seq-$fs-kernel.md" \
        --prepare "$KMOUNT" --cleanup "$UMOUNT_K" -n "kernel $fs: dd 1 GiB + fsync" "$DD"
    hyperfine --runs "$RUNS" --export-markdown "$WORK/seq-$fs-ebsim.md" \
        --prepare "$EMOUNT" --cleanup "$UMOUNT_E" -n "ebsim mount $fs: dd 1 GiB + fsync" "$DD"
    hyperfine --runs "$RUNS" --export-markdown "$WORK/tar-$fs-kernel.md" \
        --prepare "$KMOUNT" --cleanup "$UMOUNT_K" -n "kernel $fs: tar -x /usr/include + sync" "$UNTAR"
    hyperfine --runs "$RUNS" --export-markdown "$WORK/tar-$fs-ebsim.md" \
        --prepare "$EMOUNT" --cleanup "$UMOUNT_E" -n "ebsim mount $fs: tar -x /usr/include + sync" "$UNTAR"
done
cat "$WORK"/seq-*.md "$WORK"/tar-*.md | sort -u -r
