#!/bin/sh
# Benchmarks ebsim's XFS file write path against the kernel, in the same
# hyperfine run (needs root and loop devices for the kernel side):
#   1. fallocate -l 150G on a fresh 200 GiB XFS: ebsim
#      (examples/xfs_files IMAGE fallocate) versus losetup + mount +
#      fallocate + umount + losetup -d; and how much each grows the image;
#   2. writing 1 GiB of random data into a new file: ebsim
#      (examples/xfs_files IMAGE copyin) versus a loop mount and
#      `dd bs=1M conv=fsync`, both reading the same host file (in the page
#      cache).
# Usage: scripts/bench-files-xfs.sh [DIR]   (DIR: scratch directory, default
# a new one under /var/tmp; it needs about 3 GiB free). Results go to
# DIR/*.md and are printed.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/target}"
cargo build --release --manifest-path "$here/Cargo.toml" --example xfs_files >/dev/null
cargo build --release --manifest-path "$here/Cargo.toml" >/dev/null
ebsim="$CARGO_TARGET_DIR/release/ebsim"
files="$CARGO_TARGET_DIR/release/examples/xfs_files"
dir=${1:-$(mktemp -d /var/tmp/bench-files-xfs.XXXXXX)}
mkdir -p "$dir"
cd "$dir"
runs=${RUNS:-10}
PATH=/usr/sbin:/sbin:$PATH

for tool in hyperfine losetup fallocate dd; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
if [ "$(id -u)" != 0 ] || [ ! -e /dev/loop-control ]; then
    echo "needs root and loop devices for the kernel side" >&2
    exit 1
fi

rm -f base.img
truncate -s 200G base.img
"$ebsim" mkfs.xfs -q base.img
mkdir -p mnt
cat > kernel-fallocate.sh <<EOS
#!/bin/sh
set -e
dev=\$(losetup -f --show "$dir/work.img")
mount "\$dev" "$dir/mnt"
fallocate -l 150G "$dir/mnt/data"
umount "$dir/mnt"
losetup -d "\$dev"
EOS
cat > kernel-write.sh <<EOS
#!/bin/sh
set -e
dev=\$(losetup -f --show "$dir/work.img")
mount "\$dev" "$dir/mnt"
dd if="$dir/random.bin" of="$dir/mnt/data" bs=1M conv=fsync status=none
umount "$dir/mnt"
losetup -d "\$dev"
EOS
chmod +x kernel-fallocate.sh kernel-write.sh
prep="sh -c 'rm -f work.img; cp --sparse=always base.img work.img'"

hyperfine -N --warmup 1 --runs "$runs" --prepare "$prep" \
    --export-markdown fallocate-150g.md --export-json fallocate-150g.json \
    -n "kernel: loop mount + fallocate -l 150G + umount" "$dir/kernel-fallocate.sh" \
    -n "ebsim: fallocate -l 150G" "$files work.img fallocate /data 150G"

# Image growth of one run each.
growth() {
    sh -c "$prep"
    before=$(du -B1 work.img | cut -f1)
    "$@" >/dev/null
    after=$(du -B1 work.img | cut -f1)
    echo $((after - before))
}
kg=$(growth "$dir/kernel-fallocate.sh")
eg=$(growth "$files" work.img fallocate /data 150G)

head -c 1G /dev/urandom > random.bin
cat random.bin > /dev/null
hyperfine -N --warmup 1 --runs "$runs" --prepare "$prep" \
    --export-markdown write-1g.md --export-json write-1g.json \
    -n "kernel: loop mount + dd 1 GiB conv=fsync + umount" "$dir/kernel-write.sh" \
    -n "ebsim: write 1 GiB" "$files work.img copyin random.bin /data"
rm -f work.img random.bin

cat fallocate-150g.md
echo
echo "image growth of fallocate -l 150G: kernel $kg bytes, ebsim $eg bytes"
echo
cat write-1g.md
