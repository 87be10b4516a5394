#!/bin/sh
# Benchmark ebsim's native ext4 and XFS file layers against the kernel, in
# the same hyperfine run, on sparse image files.
#
#   scripts/bench-files.sh [WORKDIR]
#
# Cases, for ext4 and then XFS:
#   1. fallocate -l 150G on a fresh 200 GiB filesystem (made by ebsim's mkfs):
#      `ebsim debug-fs IMG fallocate 150G /pre` (the library staging the
#      preallocation and committing it in one crash-safe sync) against
#      losetup + mount + fallocate + umount + losetup -d. The image growth
#      of each is printed after.
#   2. 1 GiB of random data into a fresh 8 GiB filesystem: `ebsim debug-fs IMG
#      put rand.bin /f` against losetup + mount + dd bs=1M conv=fsync +
#      umount + losetup -d.
# Every run starts from a fresh sparse copy of the image (--prepare). Needs
# root (loop devices), hyperfine, e2fsprogs, xfsprogs and util-linux; builds the
# release binary. WORKDIR defaults to a temporary directory under /var/tmp.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$here/target}
cargo build --release --manifest-path "$here/Cargo.toml" >/dev/null
ebsim="$target/release/ebsim"
work=${1:-$(mktemp -d /var/tmp/ebsim-bench-files.XXXXXX)}
mkdir -p "$work"
cd "$work"
export E2FSPROGS_FAKE_TIME=1700000000
PATH=/usr/sbin:/sbin:$PATH
runs=${RUNS:-10}
mkdir -p mnt

cat >kernel.sh <<'SH'
#!/bin/sh
# kernel.sh IMAGE COMMAND...: loop-mount IMAGE on ./mnt, run COMMAND there,
# unmount and detach.
set -eu
img=$1
shift
dev=$(losetup -f --show "$img")
mount "$dev" mnt
"$@"
umount mnt
losetup -d "$dev"
SH
chmod +x kernel.sh

growth() { # growth BASE IMAGE: allocated bytes added
    echo $(( $(stat -c %b "$2") * 512 - $(stat -c %b "$1") * 512 ))
}

[ -s rand.bin ] || head -c 1G /dev/urandom >rand.bin
for fs in ext4 xfs; do
    case $fs in
    ext4) mkfs() { "$ebsim" mkfs.ext4 -q -F "$1"; } ;;
    xfs) mkfs() { "$ebsim" mkfs.xfs -q "$1"; } ;;
    esac

    # 1. fallocate 150G on 200 GiB.
    rm -f base200.img
    truncate -s 200G base200.img
    mkfs base200.img
    hyperfine --warmup 1 --runs "$runs" -N \
        --prepare "sh -c 'rm -f t.img && cp --sparse=always base200.img t.img'" \
        --export-markdown "fallocate-150g-$fs.md" \
        -n "$fs: fallocate 150G (kernel: mount, fallocate, umount)" "./kernel.sh t.img fallocate -l 150G mnt/pre" \
        -n "$fs: fallocate 150G (ebsim)" "$ebsim debug-fs t.img fallocate 150G /pre"
    rm -f t.img && cp --sparse=always base200.img t.img
    ./kernel.sh t.img fallocate -l 150G mnt/pre
    echo "$fs: image growth, kernel fallocate 150G: $(growth base200.img t.img) bytes"
    rm -f t.img && cp --sparse=always base200.img t.img
    "$ebsim" debug-fs t.img fallocate 150G /pre
    echo "$fs: image growth, ebsim fallocate 150G: $(growth base200.img t.img) bytes"

    # 2. 1 GiB of random data.
    rm -f base8.img
    truncate -s 8G base8.img
    mkfs base8.img
    hyperfine --warmup 1 --runs "$runs" -N \
        --prepare "sh -c 'rm -f t.img && cp --sparse=always base8.img t.img && sync'" \
        --export-markdown "write-1g-$fs.md" \
        -n "$fs: write 1 GiB (kernel: mount, dd conv=fsync, umount)" "./kernel.sh t.img dd if=rand.bin of=mnt/f bs=1M conv=fsync status=none" \
        -n "$fs: write 1 GiB (ebsim)" "$ebsim debug-fs t.img put rand.bin /f"
done

rm -f t.img base200.img base8.img
echo "results (markdown) in $work"
