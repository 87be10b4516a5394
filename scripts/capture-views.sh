#!/usr/bin/env bash
# Captures the real lsblk (util-linux) and df (coreutils) output for the
# golden tests of tests/views.rs: fixtures/views/<case>/.
#
# Usage (as root): scripts/capture-views.sh [CASE...]      (default: all)
#
# Each case is a recipe (fixtures/views/<case>/recipe): image files built
# with the real tools and fixed ids, then attached as loop devices, mounted,
# maybe grown, and looked at. The script
#   - builds every image as a plain file exactly as tests/views.rs rebuilds
#     it (filesystems are made in a file of the partition's size and copied
#     in at the partition's offset, so no step needs a block device),
#   - attaches the images (losetup; partx -a adds the partitions: this
#     kernel does not scan partition tables itself), mounts them in a private
#     mount namespace under a chroot holding only lsblk, df and their
#     libraries, so the mount points read /mnt/... and df without arguments
#     sees only these mounts,
#   - gives lsblk a fake udev database (/run/udev/data in the chroot, from
#     `blkid -p -o udev`; partitions first get their disk's ID_* values, as
#     udev's 60-persistent-storage.rules IMPORT{parent}="ID_*" does), since
#     there is no udev here and lsblk would leave FSTYPE/UUID/... empty,
#   - records what the kernel gave (loop names, MAJ:MIN, sizes, mount
#     order, `stat -f` numbers) in `observed`, and every command's stdout,
#     stderr and exit code (`commands`, <id>.out, <id>.err).
# Everything is undone on exit, also on failure (trap): mounts die with the
# namespace, loop devices are detached.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/fixtures/views
FAKE_TIME=1700000000

if [ "$(id -u)" != 0 ]; then
    echo "capture-views.sh: run as root (loop devices and mounts)" >&2
    exit 1
fi
for t in losetup partx mount sgdisk sfdisk growpart mkfs.ext4 resize2fs mkfs.xfs \
         xfs_growfs faketime blkid unshare chroot lsblk df stat dd; do
    command -v "$t" >/dev/null || { echo "capture-views.sh: missing tool $t" >&2; exit 1; }
done

if [ -z "${EBSIM_VIEWS_NS:-}" ]; then
    # The tests' mount lock (tests/common mount_lock), held by fd 9 across
    # the exec into a private mount namespace.
    exec 9>/tmp/ebsim-mount.lock
    flock 9
    export EBSIM_VIEWS_NS=1
    exec unshare -m --propagation private "$0" "$@"
fi

WORK=$(mktemp -d /var/tmp/ebsim-views.XXXXXX)
CROOT=$WORK/root
LOOPS=()

cleanup() {
    set +e
    # Unmount everything under the chroot, deepest first.
    if [ -d "$CROOT" ]; then
        awk -v r="$CROOT" '$5 == r || index($5, r "/") == 1 { print $5 }' /proc/self/mountinfo \
            | sort -r | while read -r m; do umount -l "$m"; done
    fi
    for l in "${LOOPS[@]}"; do
        partx -d "$l" 2>/dev/null
        losetup -d "$l" 2>/dev/null
    done
    LOOPS=()
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- chroot
make_chroot() {
    mkdir -p "$CROOT"/{dev,proc,sys,mnt,run/udev/data,usr/bin,usr/lib/locale}
    ln -s usr/bin "$CROOT/bin"
    ln -s usr/lib "$CROOT/lib"
    ln -s usr/lib64 "$CROOT/lib64"
    mkdir -p "$CROOT/usr/lib64"
    local bin lib
    for bin in /usr/bin/lsblk /usr/bin/df; do
        cp "$bin" "$CROOT/usr/bin/"
        for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
            mkdir -p "$CROOT$(dirname "$(readlink -f "$lib")")" "$CROOT$(dirname "$lib")"
            cp -L "$lib" "$CROOT$(readlink -f "$lib")" 2>/dev/null || true
            [ -e "$CROOT$lib" ] || cp -L "$lib" "$CROOT$lib"
        done
    done
    cp -r /usr/lib/locale/C.utf8 "$CROOT/usr/lib/locale/"
    mount -t proc proc "$CROOT/proc"
    mount -t sysfs sysfs "$CROOT/sys"
}

# ---------------------------------------------------------------- recipe steps
# Images are files in $WORK named after the recipe's disk names.
declare -A DEV      # disk name -> /dev/loopN
declare -A MNT      # "disk part" -> mount targets (space separated)

img() { echo "$WORK/$1.img"; }

# Byte offset and size of partition $2 of image/device $1 (0: whole disk).
part_geom() {
    if [ "$2" = 0 ]; then
        echo "0 $(blockdev --getsize64 "$1" 2>/dev/null || stat -c %s "$1")"
    else
        local start size
        read -r start size < <(partx -g -b -o START,SIZE --nr "$2" "$1")
        echo "$((start * 512)) $size"
    fi
}

partdev() { # disk part -> device node
    if [ "$2" = 0 ]; then echo "${DEV[$1]}"; else echo "${DEV[$1]}p$2"; fi
}

step() {
    local op=$1; shift
    case $op in
    image) truncate -s "$2" "$(img "$1")" ;;
    sgdisk) local d=$1; shift; sgdisk "$@" "$(img "$d")" >/dev/null ;;
    sfdisk) printf '%b' "$2" | sfdisk -q "$(img "$1")" >/dev/null ;;
    mkfs)
        local d=$1 p=$2 t=$3; shift 3
        local f off size
        read -r off size < <(part_geom "$(img "$d")" "$p")
        if [ "$p" = 0 ]; then f=$(img "$d"); else f=$WORK/fs.tmp; rm -f "$f"; truncate -s "$size" "$f"; fi
        case $t in
        ext4) E2FSPROGS_FAKE_TIME=$FAKE_TIME mkfs.ext4 -q -F "$@" "$f" ;;
        xfs) faketime '2023-11-14 22:13:20' mkfs.xfs -q -f "$@" "$f" ;;
        esac
        if [ "$p" != 0 ]; then
            dd if="$f" of="$(img "$d")" bs=1M oflag=seek_bytes seek="$off" conv=notrunc,sparse status=none
            rm -f "$f"
        fi
        ;;
    attach)
        local d
        for d in $DISKS_IN_ORDER; do
            DEV[$d]=$(losetup -f --show "$(img "$d")")
            LOOPS+=("${DEV[$d]}")
            partx -a "${DEV[$d]}" 2>/dev/null || true
        done
        ;;
    mount)
        mkdir -p "$CROOT$3"
        mount "$(partdev "$1" "$2")" "$CROOT$3"
        ;;
    grow-image)
        truncate -s "$2" "$(img "$1")"
        losetup -c "${DEV[$1]}"
        ;;
    growpart) growpart "${DEV[$1]}" "$2" >/dev/null ;;
    resize2fs)
        # Online resize2fs needs CAP_SYS_RESOURCE, which root lacks here:
        # unmount, grow offline, mount again at the same places.
        local dev targets t
        dev=$(partdev "$1" "$2")
        targets=$(awk -v d="$dev" -v r="$CROOT" '$0 ~ " - " { split($0, a, " - "); split(a[2], b, " "); if (b[2] == d) print substr($5, length(r) + 1) }' /proc/self/mountinfo)
        for t in $targets; do umount "$CROOT$t"; done
        E2FSPROGS_FAKE_TIME=$FAKE_TIME resize2fs -f "$dev" >/dev/null 2>&1
        for t in $targets; do mount "$dev" "$CROOT$t"; done
        ;;
    xfs_growfs)
        local dev t
        dev=$(partdev "$1" "$2")
        t=$(awk -v d="$dev" -v r="$CROOT" '{ split($0, a, " - "); split(a[2], b, " "); if (b[2] == d) { print substr($5, length(r) + 1); exit } }' /proc/self/mountinfo)
        xfs_growfs -d "$CROOT$t" >/dev/null
        ;;
    *) echo "unknown step $op" >&2; exit 1 ;;
    esac
}

# ---------------------------------------------------------------- observing
fake_udev() {
    local d p dev disk_props
    rm -f "$CROOT"/run/udev/data/*
    for d in $DISKS_IN_ORDER; do
        dev=${DEV[$d]}
        disk_props=$(blkid -p -o udev "$dev" 2>/dev/null || true)
        printf '%s\n' "$disk_props" | grep . | sed 's/^/E:/' > "$CROOT/run/udev/data/b$(cat /sys/class/block/$(basename "$dev")/dev)" || true
        for p in /sys/class/block/$(basename "$dev")/$(basename "$dev")p*; do
            [ -e "$p" ] || continue
            {
                printf '%s\n' "$disk_props" | grep '^ID_' || true
                blkid -p -o udev "/dev/$(basename "$p")" 2>/dev/null || true
            } | grep . | sed 's/^/E:/' > "$CROOT/run/udev/data/b$(cat "$p/dev")"
        done
    done
}

copy_nodes() {
    local d p
    rm -f "$CROOT"/dev/loop*
    for d in $DISKS_IN_ORDER; do
        cp -a "${DEV[$d]}" "$CROOT/dev/"
        for p in "${DEV[$d]}"p*; do [ -e "$p" ] && cp -a "$p" "$CROOT/dev/"; done
    done
    return 0
}

observe() { # case dir
    local o=$1/observed d p dev n
    {
        echo "util-linux $(lsblk --version | awk '{ print $NF }')"
        echo "coreutils $(df --version | head -1 | awk '{ print $NF }')"
        for d in $DISKS_IN_ORDER; do
            dev=$(basename "${DEV[$d]}")
            echo "disk $d $dev $(cat /sys/class/block/$dev/dev) $(($(cat /sys/class/block/$dev/size) * 512))"
            for p in /sys/class/block/$dev/${dev}p*; do
                [ -e "$p" ] || continue
                n=$(cat "$p/partition")
                echo "part $d $n $(basename "$p") $(cat "$p/dev") $(($(cat "$p/size") * 512))"
            done
        done
        # Mounts in mount order: disk part target fstype, then stat -f.
        awk -v r="$CROOT" 'index($5, r "/mnt/") == 1 { split($0, a, " - "); split(a[2], b, " "); print b[2], substr($5, length(r) + 1), b[1] }' /proc/self/mountinfo |
        while read -r src target fstype; do
            local dd pp
            for dd in $DISKS_IN_ORDER; do
                if [ "$src" = "${DEV[$dd]}" ]; then echo "mount $dd 0 $target $fstype $(stat -f -c '%b %f %a %c %d %S' "$CROOT$target")"; fi
                case $src in "${DEV[$dd]}"p*) pp=${src#"${DEV[$dd]}"p}; echo "mount $dd $pp $target $fstype $(stat -f -c '%b %f %a %c %d %S' "$CROOT$target")" ;; esac
            done
        done
    } > "$o"
}

# run ID TOOL ARGS... : runs the tool in the chroot, records its output.
run() {
    local id=$1; shift
    local rc=0
    LANG=C.UTF-8 LC_ALL= chroot "$CROOT" "$@" > "$CASEDIR/$id.out" 2> "$CASEDIR/$id.err" || rc=$?
    [ -s "$CASEDIR/$id.err" ] || rm -f "$CASEDIR/$id.err"
    echo "$id $rc $*" >> "$CASEDIR/commands"
}

capture_commands() {
    local disks="" d first_part="" first_disk="" mounts="" first_mounted_dev=""
    for d in $DISKS_IN_ORDER; do
        disks="$disks ${DEV[$d]}"
        [ -n "$first_disk" ] || first_disk=${DEV[$d]}
        if [ -z "$first_part" ] && [ -e "${DEV[$d]}p1" ]; then first_part=${DEV[$d]}p1; fi
    done
    mounts=$(awk '$1 == "mount" { print $4 }' "$CASEDIR/observed" | awk '!seen[$0]++' | tr '\n' ' ')
    first_mounted_dev=$(awk '$1 == "mount" { print $2, $3; exit }' "$CASEDIR/observed")
    # shellcheck disable=SC2086
    {
        run lsblk lsblk $disks
        run lsblk-b lsblk -b $disks
        run lsblk-f lsblk -f $disks
        run lsblk-J lsblk -J $disks
        run lsblk-Jf lsblk -J -f $disks
        run lsblk-Jb lsblk -Jb $disks
        run lsblk-Jl lsblk -J -l $disks
        run lsblk-l lsblk -l $disks
        run lsblk-P lsblk -P $disks
        run lsblk-r lsblk -r $disks
        run lsblk-d lsblk -d $disks
        run lsblk-n lsblk -n $disks
        run lsblk-i lsblk -i $disks
        run lsblk-p lsblk -p $disks
        run lsblk-ofs lsblk -o NAME,SIZE,FSTYPE,FSSIZE,FSUSED,FSAVAIL,FSUSE%,MOUNTPOINT $disks
        run lsblk-ofsb lsblk -b -o NAME,FSSIZE,FSUSED,FSAVAIL,FSUSE% $disks
        run lsblk-oids lsblk -o NAME,KNAME,PATH,PKNAME,MAJ:MIN,RM,RO,TYPE,PTTYPE,PTUUID,PARTUUID,PARTLABEL,PARTTYPE $disks
        run lsblk-oplus lsblk -o +UUID,LABEL,FSVER $disks
        run lsblk-Pf lsblk -P -o NAME,FSTYPE,LABEL,UUID,PARTLABEL,MOUNTPOINTS $disks
        run lsblk-rf lsblk -r -o NAME,FSTYPE,LABEL,PARTLABEL,MOUNTPOINTS $disks
        run lsblk-lnpo lsblk -lnpo NAME,SIZE $disks
        run lsblk-long lsblk --bytes --nodeps --noheadings --output NAME,SIZE $disks
        run lsblk-wrapfirst lsblk -o MOUNTPOINTS,NAME,SIZE $disks
        run lsblk-noname lsblk -o SIZE,TYPE,MAJ:MIN $disks
        run lsblk-iwrap lsblk -i -o NAME,MOUNTPOINTS $disks
        run lsblk-Jp lsblk -Jp -o NAME,PKNAME,MOUNTPOINT $disks
        run lsblk-Pb lsblk -Pb $disks
        run lsblk-serial lsblk -o NAME,SERIAL,MODEL $disks
        run lsblk-dnsize lsblk -dn -o SIZE $disks
        run lsblk-missing lsblk /dev/nonexistent
        run lsblk-somemissing lsblk $first_disk /dev/nonexistent
        run lsblk-badcol lsblk -o NAME,FOO $disks
        if [ -n "$first_part" ]; then
            run lsblk-part lsblk $first_part
            run lsblk-partdisk lsblk -o NAME,PKNAME,SIZE $first_part $first_disk
        fi
        run df df
        run df-h df -h
        run df-H df -H
        run df-T df -T
        run df-hT df -hT
        run df-i df -i
        run df-hi df -hi
        run df-k df -k
        run df-m df -m
        run df-B1 df -B1
        run df-BG df -BG
        run df-BKB df -BKB
        run df-B1000 df -B 1000
        run df-P df -P
        run df-output df --output
        run df-outputlist df --output=source,fstype,size,used,avail,pcent,target
        run df-total df --total
        run df-htotal df -h --total
        run df-files df -h $mounts
        run df-dot df -h $(echo "$mounts" | awk '{ print $1 "/." }')
        run df-file-field df --output=file,target,pcent $mounts
        run df-l df -l
        run df-Ph df -Ph
        run df-BKiB df -B KiB
        run df-BM df -BM
        run df-x-tmpfs df -x tmpfs
        run df-total-t df -h --total -t ext4
        run df-both df -t ext4 -x ext4
        run df-t-ext4 df -t ext4
        run df-x-ext4 df -x ext4
        run df-t-none df -t nosuchfs
        run df-missing df /nonexistent
        run df-badfield df --output=foo
        run df-badB df -B 0
        if [ -n "$first_mounted_dev" ]; then
            set -- $first_mounted_dev
            run df-dev df -hT "$(partdev "$1" "$2")"
        fi
    }
}

# ---------------------------------------------------------------- cases
# Fixed ids.
U_DISK=5b2a8c3e-1d4f-4a6b-9c7d-0e1f2a3b4c5d
G1=6c3b9d4f-2e5a-4b7c-8d9e-1f2a3b4c5d01
G127=6c3b9d4f-2e5a-4b7c-8d9e-1f2a3b4c5d7f
G128=6c3b9d4f-2e5a-4b7c-8d9e-1f2a3b4c5d80
HASH=a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d
AL2023_GPT="-U $U_DISK -n 128:2048:+10M -t 128:ef00 -c 128:\"EFI System Partition\" -u 128:$G128 -n 127:22528:+1M -t 127:ef02 -c 127:\"BIOS Boot Partition\" -u 127:$G127 -n 1:24576:0 -t 1:8300 -c 1:Linux -u 1:$G1"

recipe() { # case name -> recipe text (one step per line)
    case $1 in
    gpt-xfs-8g) cat <<EOF
image root 8589934592
sgdisk root $AL2023_GPT
mkfs root 1 xfs -L / -m uuid=1e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b
attach
mount root 1 /mnt/root
EOF
    ;;
    gpt-xfs-16g-modified) recipe gpt-xfs-8g; echo "grow-image root 17179869184" ;;
    gpt-xfs-16g-grown) recipe gpt-xfs-16g-modified; echo "growpart root 1"; echo "xfs_growfs root 1" ;;
    mbr-ext4-8g) cat <<EOF
image root 8589934592
sfdisk root "label: dos\nlabel-id: 0xa1b2c3d4\nstart=2048, type=83, bootable\n"
mkfs root 1 ext4 -L cloudimg-rootfs -U 2f3a4b5c-6d7e-4f8a-9b0c-1d2e3f4a5b6c -E hash_seed=$HASH
attach
mount root 1 /mnt/root
EOF
    ;;
    mbr-ext4-16g-grown) recipe mbr-ext4-8g; echo "grow-image root 17179869184"; echo "growpart root 1"; echo "resize2fs root 1" ;;
    whole-xfs-200g) cat <<EOF
image data 214748364800
mkfs data 0 xfs -L data -m uuid=3a4b5c6d-7e8f-4a9b-8c0d-1e2f3a4b5c6d
attach
mount data 0 /mnt/data
EOF
    ;;
    whole-xfs-400g-grown) recipe whole-xfs-200g; echo "grow-image data 429496729600"; echo "xfs_growfs data 0" ;;
    whole-ext4-16g) cat <<EOF
image data 17179869184
mkfs data 0 ext4 -U 4b5c6d7e-8f9a-4b0c-9d1e-2f3a4b5c6d7e -E hash_seed=$HASH
attach
mount data 0 /mnt/data
EOF
    ;;
    whole-ext4-32g-grown) recipe whole-ext4-16g; echo "grow-image data 34359738368"; echo "resize2fs data 0" ;;
    gpt-multi) cat <<EOF
image disk 4294967296
sgdisk disk -U 7d8e9f0a-1b2c-4d3e-8f4a-5b6c7d8e9f0a -n 1:2048:+2G -c 1:root -u 1:7d8e9f0a-1b2c-4d3e-8f4a-5b6c7d8e9f01 -n 2:0:+1G -c 2:var -u 2:7d8e9f0a-1b2c-4d3e-8f4a-5b6c7d8e9f02 -n 3:0:+500M -c 3:boot -u 3:7d8e9f0a-1b2c-4d3e-8f4a-5b6c7d8e9f03 -n 4:0:0 -t 4:8200 -c 4:swap -u 4:7d8e9f0a-1b2c-4d3e-8f4a-5b6c7d8e9f04
mkfs disk 1 ext4 -L root -U 5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f -E hash_seed=$HASH
mkfs disk 2 xfs -L var -m uuid=6d7e8f9a-0b1c-4d2e-9f3a-4b5c6d7e8f9a
mkfs disk 3 ext4 -L boot -U 7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b -E hash_seed=$HASH
attach
mount disk 1 /mnt/a
mount disk 2 /mnt/var
mount disk 3 /mnt/boot
mount disk 3 /mnt/boot2
EOF
    ;;
    two-disks) cat <<EOF
image root 8589934592
sgdisk root $AL2023_GPT
mkfs root 1 xfs -L / -m uuid=1e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b
image data 107374182400
mkfs data 0 ext4 -L data -U 8f9a0b1c-2d3e-4f4a-9b5c-6d7e8f9a0b1c -E hash_seed=$HASH
image empty 1073741824
attach
mount root 1 /mnt/root
mount data 0 /mnt/data
EOF
    ;;
    mbr-extended) cat <<EOF
image disk 2147483648
sfdisk disk "label: dos\nlabel-id: 0x0badcafe\nstart=2048, size=1024000, type=83\nsize=716800, type=83\ntype=5\nsize=409600, type=83\ntype=82\n"
mkfs disk 1 ext4 -L small -U 9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d -E hash_seed=$HASH
mkfs disk 2 xfs -m uuid=0b1c2d3e-4f5a-4b6c-9d7e-8f9a0b1c2d3e
mkfs disk 5 ext4 -U 1c2d3e4f-5a6b-4c7d-8e8f-9a0b1c2d3e4f -E hash_seed=$HASH
attach
mount disk 1 /mnt/small
mount disk 5 /mnt/logical
mount disk 2 /mnt/xfs
EOF
    ;;
    *) echo "unknown case $1" >&2; return 1 ;;
    esac
}

ALL_CASES="gpt-xfs-8g gpt-xfs-16g-modified gpt-xfs-16g-grown mbr-ext4-8g mbr-ext4-16g-grown
whole-xfs-200g whole-xfs-400g-grown whole-ext4-16g whole-ext4-32g-grown gpt-multi two-disks
mbr-extended"

capture_case() {
    local c=$1
    CASEDIR=$OUT/$c
    rm -rf "$CASEDIR"
    mkdir -p "$CASEDIR"
    recipe "$c" > "$CASEDIR/recipe"
    DISKS_IN_ORDER=$(awk '$1 == "image" { print $2 }' "$CASEDIR/recipe" | tr '\n' ' ')
    DEV=()
    local line
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        eval "step $line"
    done < "$CASEDIR/recipe"
    copy_nodes
    fake_udev
    observe "$CASEDIR"
    capture_commands
    # Undo this case.
    awk -v r="$CROOT" 'index($5, r "/mnt/") == 1 { print $5 }' /proc/self/mountinfo | sort -r |
        while read -r m; do umount "$m"; done
    rm -rf "${CROOT:?}"/mnt/*
    local l
    for l in "${LOOPS[@]}"; do partx -d "$l" 2>/dev/null || true; losetup -d "$l"; done
    LOOPS=()
    rm -f "$WORK"/*.img
    echo "captured $c ($(wc -l < "$CASEDIR/commands") commands)"
}

make_chroot
cases=${*:-$ALL_CASES}
for c in $cases; do capture_case "$c"; done
