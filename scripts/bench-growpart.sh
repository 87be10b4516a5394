#!/bin/sh
# Benchmark: ebsim growpart against the real growpart (cloud-utils, a shell
# script around sfdisk) on the same grow: a GPT disk made at 2 GiB, grown to
# 2 TiB, partition 1 grown into it. Each run starts from a fresh copy of
# the image (hyperfine --prepare). Prints hyperfine's table and the ratio.
set -eu
cd "$(dirname "$0")/.."
cargo build --release -q
EBSIM=$PWD/target/release/ebsim
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
truncate -s 2G "$W/base.img"
sgdisk -n 1:2048:+1G "$W/base.img" >/dev/null
truncate -s 2T "$W/base.img"
hyperfine --warmup 3 --runs "${RUNS:-30}" -N \
    --export-json "$W/bench.json" \
    --prepare "cp --sparse=always $W/base.img $W/disk.img" \
    -n "growpart (real, 0.33)" "growpart $W/disk.img 1" \
    -n "ebsim growpart" "$EBSIM growpart $W/disk.img 1"
python3 - "$W/bench.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
real, ours = r[0]["mean"], r[1]["mean"]
print(f"real growpart {real*1000:.2f} ms, ebsim {ours*1000:.2f} ms: ebsim is {real/ours:.1f}x faster")
PY
