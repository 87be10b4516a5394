#!/bin/sh
# Benchmarks of the cloud side (issue 5), with hyperfine:
#  1. describe-volumes over 10,000 volumes (JSON, --query, --output text);
#  2. snapshot and restore of a 200 GiB volume holding 1 GiB of data,
#     against `cp --sparse=always` of the same image.
#
# Usage: scripts/bench-ec2.sh [WORKDIR]   (default: a new directory in $TMPDIR)
# Needs: hyperfine, python3, a release build (made here).
set -eu

cd "$(dirname "$0")/.."
cargo build --release --quiet
BIN="${CARGO_TARGET_DIR:-target}/release/ebsim"
BIN="$(realpath "$BIN")"
WORK="${1:-$(mktemp -d "${TMPDIR:-/tmp}/bench-ec2.XXXXXX")}"
mkdir -p "$WORK"
echo "work directory: $WORK"
export EBSIM_CLOCK=manual
E="$BIN ec2"

# ---------------------------------------------------------------- 1
export EBSIM_HOME="$WORK/many"
rm -rf "$EBSIM_HOME"
$E create-volume --size 8 --availability-zone us-east-1a --tag-specifications 'ResourceType=volume,Tags=[{Key=Name,Value=bench}]' >/dev/null
# Clone the one volume ebsim wrote into 10,000 (the state's own format),
# each with its sparse image file.
python3 - "$EBSIM_HOME" <<'PY'
import json, os, sys, random
home = sys.argv[1]
path = os.path.join(home, "state.json")
st = json.load(open(path))
(vid, v), = st["volumes"].items()
rnd = random.Random(1)
vols = {}
image = lambda i: os.path.join(home, "volumes", i + ".img")
for n in range(10000):
    nid = "vol-0%016x" % rnd.getrandbits(64)
    nv = dict(v, id=nid, state="available")
    vols[nid] = nv
    with open(image(nid), "wb") as f:
        f.truncate(v["size"] << 30)
os.remove(image(vid))
st["volumes"] = vols
tmp = path + ".bench"
json.dump(st, open(tmp, "w"))
os.rename(tmp, path)
PY
echo "state.json: $(du -h "$EBSIM_HOME/state.json" | cut -f1) for $($E describe-volumes --query 'length(Volumes)') volumes"
hyperfine --warmup 2 --export-markdown "$WORK/describe.md" \
    -n 'describe-volumes (10,000, JSON)' "$E describe-volumes" \
    -n 'describe-volumes --query Volumes[].VolumeId --output text' "$E describe-volumes --query 'Volumes[].VolumeId' --output text" \
    -n 'describe-volumes --filters status=available (text)' "$E describe-volumes --filters Name=status,Values=available --query 'length(Volumes)'" \
    -n 'describe-volumes --volume-ids (one)' "$E describe-volumes --volume-ids $($E describe-volumes --query 'Volumes[0].VolumeId' --output text)"

# ---------------------------------------------------------------- 2
export EBSIM_HOME="$WORK/snap"
rm -rf "$EBSIM_HOME"
V=$($E create-volume --size 200 --availability-zone us-east-1a --query VolumeId --output text)
$E wait volume-available --volume-ids "$V"
IMG="$EBSIM_HOME/volumes/$V.img"
# 1 GiB of random data: 64 runs of 16 MiB spread over the 200 GiB.
python3 - "$IMG" <<'PY'
import os, sys
f = os.open(sys.argv[1], os.O_WRONLY)
for k in range(64):
    os.pwrite(f, os.urandom(16 << 20), k * 3 * (1 << 30) + 7 * (1 << 20))
os.fsync(f)
os.close(f)
PY
echo "image: $(du -h --apparent-size "$IMG" | cut -f1) apparent, $(du -h "$IMG" | cut -f1) allocated"
SNAPS="$EBSIM_HOME/snapshots"
cat > "$WORK/clear-snapshots.sh" <<SH
#!/bin/sh
for s in \$($E describe-snapshots --query 'Snapshots[].SnapshotId' --output text); do $E delete-snapshot --snapshot-id \$s; done
SH
cat > "$WORK/clear-restores.sh" <<SH
#!/bin/sh
for v in \$($E describe-volumes --filters Name=snapshot-id,Values='snap-*' --query 'Volumes[].VolumeId' --output text); do $E delete-volume --volume-id \$v; done
SH
chmod +x "$WORK/clear-snapshots.sh" "$WORK/clear-restores.sh"
hyperfine --runs 10 --export-markdown "$WORK/snapshot.md" \
    -n 'cp --sparse=always (200 GiB image, 1 GiB data)' --prepare "rm -f $WORK/copy.img; sync" "cp --sparse=always $IMG $WORK/copy.img" \
    -n 'ebsim create-snapshot (full: empty chunk store)' --prepare "$WORK/clear-snapshots.sh; sync" "$E create-snapshot --volume-id $V" \
    -n 'ebsim create-snapshot (incremental: nothing changed)' --prepare "$BIN clock advance 1h >/dev/null; sync" "$E create-snapshot --volume-id $V"
S=$($E create-snapshot --volume-id "$V" --query SnapshotId --output text)
$E wait snapshot-completed --snapshot-ids "$S"
hyperfine --runs 10 --export-markdown "$WORK/restore.md" \
    -n 'cp --sparse=always (200 GiB image, 1 GiB data)' --prepare "rm -f $WORK/copy.img; sync" "cp --sparse=always $IMG $WORK/copy.img" \
    -n 'cp --sparse=always + sync (durable, as ebsim)' --prepare "rm -f $WORK/copy.img; sync" "cp --sparse=always $IMG $WORK/copy.img && sync" \
    -n 'ebsim create-volume --snapshot-id (restore)' --prepare "$WORK/clear-restores.sh; sync" "$E create-volume --availability-zone us-east-1a --snapshot-id $S"
echo "chunk store: $(du -sh "$SNAPS" | cut -f1)"
rm -f "$WORK/copy.img"
echo "results: $WORK/describe.md $WORK/snapshot.md $WORK/restore.md"
