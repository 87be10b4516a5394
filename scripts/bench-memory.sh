#!/bin/sh
# Peak memory and wall time of ebsim's writers against the real tools, in
# the same run, on sparse images in tmpfs (the host's ext4 caps a file at
# 16 TiB - 4 KiB; tmpfs does not):
#
#   scripts/bench-memory.sh [WORKDIR]
#
# Cases: mkfs.ext4 16T-4K (on tmpfs, and on the disk holding DISKDIR);
# resize2fs 8G->8T and 8G->64T; mkfs.xfs 16T-4K
# and 64T; xfs_growfs 8G->8T and 8G->64T (the real one on a loop mount:
# needs root); growpart of a GPT disk 8G->64T; mkfs.ext4 -F over an image
# holding 2 GB of data (with the peak size of ebsim's undo log: sampled
# while it runs, and exactly, from a run stopped before its first write,
# which leaves the complete log).
#
# CASES (default: all) picks cases by name, separated by spaces: ext4,
# ext4-disk, xfs, resize2fs, xfs_growfs, growpart, ext4-data; e.g.
# CASES="ext4 ext4-disk" RUNS=5 scripts/bench-memory.sh.
#
# Each case runs RUNS times (default 5) per tool on a freshly prepared
# image; the table shows the median wall time, the median CPU time (user +
# system: less disturbed than wall time on a busy machine) and the largest
# peak RSS (/usr/bin/time %M). A benchmark, not a test: it asserts nothing.
#
# Needs e2fsprogs, xfsprogs, cloud-guest-utils, gdisk, root (for the
# mount), python3, /usr/bin/time, a release build (built here) and about
# 2.5 GB of free memory for WORKDIR (default: a directory in /dev/shm).
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$here/target}
cargo build --release --manifest-path "$here/Cargo.toml" >/dev/null
ebsim="$target/release/ebsim"
work=${1:-$(mktemp -d /dev/shm/ebsim-bench-memory.XXXXXX)}
mkdir -p "$work"
cd "$work"
work=$(pwd)
PATH=/usr/sbin:/sbin:$PATH
export E2FSPROGS_FAKE_TIME=1700000000
runs=${RUNS:-5}
cases=${CASES:-ext4 ext4-disk xfs resize2fs xfs_growfs growpart ext4-data}
want() {
    case " $cases " in
    *" $1 "*) return 0 ;;
    *) return 1 ;;
    esac
}
table="$work/memory.md"

avail_kb=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
if [ "$avail_kb" -lt 3000000 ]; then
    echo "only $((avail_kb / 1024)) MiB of memory available; need about 3 GiB" >&2
    exit 1
fi

T16=$((16 * 1024 * 1024 * 1024 * 1024 - 4096))

# measure PREP CMD...: runs PREP (a shell line) then CMD, RUNS times;
# prints "median-wall median-cpu max-rss-kb status" of CMD.
measure() {
    prep=$1
    shift
    : >times.txt
    i=0
    while [ "$i" -lt "$runs" ]; do
        sh -c "$prep"
        /usr/bin/time -o time.txt -f "%e %U %S %M %x" "$@" >/dev/null 2>&1 || true
        # A failing command gets a "Command exited ..." line first.
        tail -n 1 time.txt >>times.txt
        i=$((i + 1))
    done
    awk '{ print $2 + $3 }' times.txt | sort -n >cpu.txt
    cpu=$(awk -v n="$runs" 'NR == int((n + 1) / 2)' cpu.txt)
    sort -n times.txt | awk -v n="$runs" -v cpu="$cpu" '
        { wall[NR] = $1; if ($4 > rss) rss = $4; st = $5 }
        END { printf "%s %s %d %s\n", wall[int((n + 1) / 2)], cpu, rss, st }'
}

row() {
    # row CASE REAL-RESULT EBSIM-RESULT
    set -- "$1" $2 $3
    awk -v n="$1" -v rw="$2" -v rc="$3" -v rr="$4" -v rs="$5" \
        -v ew="$6" -v ec="$7" -v er="$8" -v es="$9" 'BEGIN {
        note = (es == 0) ? "" : " (exit " es ")"
        rnote = (rs == 0) ? "" : " (exit " rs ")"
        printf "| %s | %.2f s%s | %.2f s | %.1f MiB | %.2f s%s | %.2f s | %.1f MiB | %.2fx | %.2fx |\n",
            n, rw, rnote, rc, rr / 1024, ew, note, ec, er / 1024,
            (rw > 0 ? ew / rw : 0), er / rr
    }' >>"$table"
}

{
    echo "| case | real: wall | real: CPU | real: peak RSS | ebsim: wall | ebsim: CPU | ebsim: peak RSS | wall ebsim/real | RSS ebsim/real |"
    echo "|---|---|---|---|---|---|---|---|---|"
} >"$table"

fresh() { echo "rm -f img && truncate -s $1 img"; }

if want ext4; then
    echo "mkfs.ext4 16T-4K" >&2
    r=$(measure "$(fresh $T16)" mkfs.ext4 -q -F img)
    e=$(measure "$(fresh $T16)" "$ebsim" mkfs.ext4 -q -F img)
    row "mkfs.ext4 16T-4K" "$r" "$e"
fi

# The same on a disk filesystem (DISKDIR, default a directory under the
# build's target/), where the real mke2fs's discards and syncs cost more
# than on tmpfs. Skipped when that filesystem cannot hold the file.
if want ext4-disk; then
    diskdir=${DISKDIR:-$target/bench-memory}
    mkdir -p "$diskdir"
    if (cd "$diskdir" && rm -f img && truncate -s $T16 img) 2>/dev/null; then
        echo "mkfs.ext4 16T-4K on $diskdir" >&2
        cd "$diskdir"
        r=$(measure "$(fresh $T16) && sync" mkfs.ext4 -q -F img)
        e=$(measure "$(fresh $T16) && sync" "$ebsim" mkfs.ext4 -q -F img)
        rm -f img time.txt times.txt cpu.txt
        cd "$work"
        row "mkfs.ext4 16T-4K (disk: $(stat -f -c %T "$diskdir"))" "$r" "$e"
    fi
fi

if want xfs; then
    echo "mkfs.xfs 16T-4K, 64T" >&2
    for size in $T16 64T; do
        r=$(measure "$(fresh $size)" mkfs.xfs -q -f img)
        e=$(measure "$(fresh $size)" "$ebsim" mkfs.xfs -q -f img)
        label=$size
        [ "$size" = "$T16" ] && label="16T-4K"
        row "mkfs.xfs $label" "$r" "$e"
    done
fi

if want resize2fs; then
    echo "resize2fs 8G->8T, 8G->64T" >&2
    rm -f src8g.img
    truncate -s 8G src8g.img
    mkfs.ext4 -q -F src8g.img
    for size in 8T 64T; do
        prep="rm -f img && cp --sparse=always src8g.img img && truncate -s $size img"
        r=$(measure "$prep" resize2fs img)
        e=$(measure "$prep" "$ebsim" resize2fs img)
        row "resize2fs 8G->$size" "$r" "$e"
    done
    rm -f src8g.img
fi

if want xfs_growfs; then
    echo "xfs_growfs 8G->8T, 8G->64T" >&2
    # The real xfs_growfs grows a mounted filesystem (the kernel does the
    # work, inside its system call: counted in wall time, not in its RSS);
    # ebsim's grows the image file offline.
    mkdir -p mnt
    unmount() { if mountpoint -q mnt; then umount mnt; fi; }
    rm -f src8g.img
    truncate -s 8G src8g.img
    mkfs.xfs -q -f src8g.img
    for size in 8T 64T; do
        prep="rm -f img && cp --sparse=always src8g.img img && truncate -s $size img"
        r=$(measure "if mountpoint -q mnt; then umount mnt; fi; $prep && mount -o loop img mnt" xfs_growfs mnt)
        unmount
        e=$(measure "$prep" "$ebsim" xfs_growfs img)
        row "xfs_growfs 8G->$size" "$r" "$e"
    done
    rm -f src8g.img img
fi

if want growpart; then
    echo "growpart 8G->64T (GPT)" >&2
    rm -f src8g.img
    truncate -s 8G src8g.img
    sgdisk -n 1:2048:0 src8g.img >/dev/null
    prep="rm -f img && cp --sparse=always src8g.img img && truncate -s 64T img"
    r=$(measure "$prep" growpart img 1)
    e=$(measure "$prep" "$ebsim" growpart img 1)
    row "growpart 8G->64T (GPT)" "$r" "$e"
    rm -f src8g.img img
fi

if want ext4-data; then
    echo "mkfs.ext4 -F over 2 GB of data" >&2
    rm -f data.img
    truncate -s 4G data.img
    head -c 2000000000 /dev/urandom | dd of=data.img bs=1M seek=64 conv=notrunc status=none
    prep="rm -f img && cp --sparse=always data.img img"
    r=$(measure "$prep" mkfs.ext4 -q -F img)
    e=$(measure "$prep" "$ebsim" mkfs.ext4 -q -F img)
    row "mkfs.ext4 -F over 2 GB of data" "$r" "$e"

    # The undo log: sampled during a run (undo log plus roll-forward log),
    # and the complete undo log of a run stopped before its first write.
    sh -c "$prep"
    cat >poll.py <<'EOF'
import glob, os, sys, time
peak = 0
stop = sys.argv[1]
while not os.path.exists(stop):
    total = 0
    for f in glob.glob(".*.ebsim-undo*"):
        try:
            total += os.stat(f).st_size
        except OSError:
            pass
    peak = max(peak, total)
print(peak)
EOF
    rm -f stop
    python3 poll.py stop >peak.txt &
    poller=$!
    sleep 0.2
    "$ebsim" mkfs.ext4 -q -F img
    touch stop
    wait "$poller"
    sampled=$(cat peak.txt)
    sh -c "$prep"
    EBSIM_FAULT_AFTER_WRITES=0 "$ebsim" mkfs.ext4 -q -F img >/dev/null 2>&1 || true
    complete=$(stat -c %s .*.ebsim-undo)
    "$ebsim" xfs_info img >/dev/null 2>&1 || true
    rm -f img data.img poll.py peak.txt stop times.txt time.txt cpu.txt

    {
        echo
        echo "mkfs.ext4 -F over 2,000,000,000 bytes of data: ebsim's undo log peaked at $sampled bytes while sampled during a run; the complete undo log (run stopped before its first write) is $complete bytes, $(awk -v c="$complete" 'BEGIN { printf "%.4f", c * 100 / 2000000000 }')% of the data."
    } >>"$table"
fi

cat "$table"
echo "(table in $table)" >&2
