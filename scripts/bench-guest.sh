#!/bin/sh
# Benchmark of the guest namespace (`ebsim shell`/`ebsim exec`, issue 12),
# with hyperfine, in one run:
#  1. start-up: `ebsim exec I -- true` (build the namespaces, serve the
#     root filesystem and the data volume over FUSE, bind the host's
#     userland, /dev, /proc; run `true`; commit and unmount everything).
#     Target: under 100 ms.
#  2. a sequential write of 1 GiB + fsync (dd conv=fsync) into the data
#     volume (XFS, mounted at /var/lib in the guest), and
#  3. `tar -x` of many small files (a tarball of /usr/include) into it,
#     made durable by an fsync of one file (which commits the server's
#     staged changes, as a journal commit does),
#     both inside the guest, against a kernel loop mount of the same image
#     doing the same. The guest's numbers include its start-up (item 1).
#     Targets: sequential >= 0.5x the kernel, small files >= 0.25x.
#
# Usage: scripts/bench-guest.sh [WORKDIR]   (default: a new directory in $TMPDIR)
# Needs: root (loop mounts, /dev/fuse), hyperfine, tar.
set -eu

cd "$(dirname "$0")/.."
cargo build --release --quiet
BIN="$(realpath "${CARGO_TARGET_DIR:-target}/release/ebsim")"
WORK="${1:-$(mktemp -d "${TMPDIR:-/tmp}/bench-guest.XXXXXX")}"
mkdir -p "$WORK"
WORK="$(realpath "$WORK")"
echo "work directory: $WORK"
export EBSIM_HOME="$WORK/home" EBSIM_CLOCK=manual
RUNS="${RUNS:-5}"
MNT="$WORK/mnt"
mkdir -p "$MNT" "$EBSIM_HOME/bench"
SRC="$EBSIM_HOME/bench/src.bin"
TAR="$EBSIM_HOME/bench/include.tar"
[ -f "$SRC" ] || head -c 1073741824 /dev/urandom >"$SRC"
[ -f "$TAR" ] || tar -C /usr -cf "$TAR" include
cat "$SRC" "$TAR" >/dev/null

cleanup() {
    mountpoint -q "$MNT" && umount "$MNT"
    true
}
trap cleanup EXIT

I=$("$BIN" aws ec2 run-instances --image-id ami-080e1f13689e07408 --instance-type t2.micro \
    --query 'Instances[0].InstanceId' --output text)
V=$("$BIN" aws ec2 create-volume --size 200 --availability-zone us-east-1a --query VolumeId --output text)
"$BIN" clock advance 30s >/dev/null
"$BIN" aws ec2 attach-volume --volume-id "$V" --instance-id "$I" --device /dev/sdf >/dev/null
"$BIN" clock advance 30s >/dev/null
"$BIN" exec "$I" -- sh -c 'sudo mkfs.xfs -q /dev/xvdf && sudo mount /dev/xvdf /var/lib'
IMG="$EBSIM_HOME/volumes/$V.img"
GSRC=/run/ebsim/home/bench/src.bin
GTAR=/run/ebsim/home/bench/include.tar

hyperfine --runs "$((RUNS * 4))" --warmup 2 --export-markdown "$WORK/startup.md" \
    -n "ebsim exec I -- true" "$BIN exec $I -- true"

hyperfine --runs "$RUNS" --export-markdown "$WORK/seq.md" \
    --prepare "(! mountpoint -q $MNT || umount $MNT); mount -o loop $IMG $MNT && rm -f $MNT/big && umount $MNT" \
    -n "guest: dd 1 GiB + fsync" \
    "$BIN exec $I -- dd if=$GSRC of=/var/lib/big bs=1M conv=fsync status=none"
hyperfine --runs "$RUNS" --export-markdown "$WORK/seq-kernel.md" \
    --prepare "(! mountpoint -q $MNT || umount $MNT); mount -o loop $IMG $MNT && rm -f $MNT/big" \
    --cleanup "umount $MNT" \
    -n "kernel loop mount: dd 1 GiB + fsync" \
    "dd if=$SRC of=$MNT/big bs=1M conv=fsync status=none"

hyperfine --runs "$RUNS" --export-markdown "$WORK/tar.md" \
    --prepare "(! mountpoint -q $MNT || umount $MNT); mount -o loop $IMG $MNT && rm -rf $MNT/t && umount $MNT" \
    -n "guest: tar -x /usr/include" \
    "$BIN exec $I -- sh -c 'mkdir /var/lib/t && tar -C /var/lib/t -xf $GTAR && sync /var/lib/t/include/stdio.h'"
hyperfine --runs "$RUNS" --export-markdown "$WORK/tar-kernel.md" \
    --prepare "(! mountpoint -q $MNT || umount $MNT); mount -o loop $IMG $MNT && rm -rf $MNT/t" \
    --cleanup "umount $MNT" \
    -n "kernel loop mount: tar -x /usr/include" \
    "mkdir $MNT/t && tar -C $MNT/t -xf $TAR && sync -f $MNT && sync $MNT/t/include/stdio.h"
cat "$WORK"/startup.md "$WORK"/seq.md "$WORK"/seq-kernel.md "$WORK"/tar.md "$WORK"/tar-kernel.md
