#!/bin/sh
# Benchmarks ebsim's XFS tools against the real ones with hyperfine:
#   1. mkfs.xfs of a 1 TiB and a 16 TiB - 4 KiB sparse file,
#   2. growing an 8 GiB filesystem to 8 TiB: ebsim offline on the image
#      versus the kernel through a loop mount (losetup + mount + xfs_growfs
#      + umount + losetup -d; needs root).
# Usage: scripts/bench-xfs.sh [DIR]   (DIR: scratch directory, default a
# new one under /tmp; it needs room for a few hundred MiB of allocated
# blocks). Results go to DIR/*.md and are printed.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/target}"
cargo build --release --manifest-path "$here/Cargo.toml" >/dev/null
ebsim="$CARGO_TARGET_DIR/release/ebsim"
dir=${1:-$(mktemp -d /tmp/bench-xfs.XXXXXX)}
mkdir -p "$dir"
cd "$dir"
runs=${RUNS:-20}

for tool in hyperfine mkfs.xfs xfs_growfs; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

for size in 1T 17592186040320; do
    hyperfine -N --warmup 2 --runs "$runs" \
        --prepare "sh -c 'rm -f fs.img; truncate -s $size fs.img'" \
        --export-markdown "mkfs-$size.md" --export-json "mkfs-$size.json" \
        -n "real mkfs.xfs $size" "mkfs.xfs -q fs.img" \
        -n "ebsim mkfs.xfs $size" "$ebsim mkfs.xfs -q fs.img"
done
rm -f fs.img

if [ "$(id -u)" = 0 ] && [ -e /dev/loop-control ]; then
    rm -f base.img
    truncate -s 8G base.img
    mkfs.xfs -q base.img
    mkdir -p mnt
    cat > kernel-grow.sh <<EOS
#!/bin/sh
set -e
dev=\$(losetup -f --show "$dir/grow.img")
mount -o nouuid "\$dev" "$dir/mnt"
xfs_growfs -d "$dir/mnt" >/dev/null
umount "$dir/mnt"
losetup -d "\$dev"
EOS
    chmod +x kernel-grow.sh
    prep="sh -c 'rm -f grow.img; cp --sparse=always base.img grow.img; truncate -s 8T grow.img'"
    hyperfine -N --warmup 1 --runs "$runs" --prepare "$prep" \
        --export-markdown grow-8g-8t.md --export-json grow-8g-8t.json \
        -n "kernel grow 8G->8T (loop mount)" "$dir/kernel-grow.sh" \
        -n "ebsim offline grow 8G->8T" "$ebsim xfs_growfs -d grow.img"
    rm -f grow.img base.img
else
    echo "skipping the grow benchmark: it needs root and loop devices" >&2
fi
cat ./*.md
# Medians resist the noise of a shared machine better than means.
if command -v jq >/dev/null; then
    echo
    echo "median seconds (min):"
    for j in ./*.json; do
        jq -r '.results[] | "  \(.command): \(.median) (\(.min))"' "$j"
    done
fi
