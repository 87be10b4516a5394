#!/bin/sh
# Benchmark `ebsim serve` against moto's server (moto[server], installed
# into the test virtual environment here, for this benchmark only), in the
# same run, both driven by boto3:
#   1. create-volume throughput: CREATES sequential calls from one client;
#   2. DescribeVolumes over VOLUMES volumes (raised by 8 parallel clients):
#      the median time of RUNS calls answering all of them.
# Prints both servers' numbers and the ratios (moto time / ebsim time).
#
#   scripts/bench-serve.sh            (VOLUMES=10000 CREATES=500 RUNS=5)
#   VOLUMES=2000 scripts/bench-serve.sh
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$here/target}
cargo build --release --manifest-path "$here/Cargo.toml" >/dev/null
ebsim="$target/release/ebsim"
py="$target/pyenv"
if ! "$py/bin/python" -c 'import boto3, moto.server' >/dev/null 2>&1; then
    [ -x "$py/bin/python" ] || python3 -m venv "$py"
    "$py/bin/pip" install -q --disable-pip-version-check boto3 'moto[server]'
fi
volumes=${VOLUMES:-10000}
creates=${CREATES:-500}
runs=${RUNS:-5}
work=$(mktemp -d /var/tmp/ebsim-bench-serve.XXXXXX)
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

EBSIM_HOME="$work/home" "$ebsim" serve --port 0 >"$work/ebsim.url" &
pids="$pids $!"
port=$("$py/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MOTO_EC2_LOAD_DEFAULT_AMIS=false "$py/bin/moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
pids="$pids $!"
for _ in $(seq 100); do
    [ -s "$work/ebsim.url" ] && "$py/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" >/dev/null 2>&1 && break
    sleep 0.2
done
ebsim_url=$(head -1 "$work/ebsim.url")

echo "boto3 against each server: $creates sequential create-volume calls, then DescribeVolumes over $volumes volumes (median of $runs)"
e=$("$py/bin/python" "$here/scripts/bench_serve.py" "$ebsim_url" "$creates" "$volumes" "$runs")
m=$("$py/bin/python" "$here/scripts/bench_serve.py" "http://127.0.0.1:$port" "$creates" "$volumes" "$runs")
"$py/bin/python" - "$e" "$m" <<'PY'
import json, sys
e, m = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"{'':24}{'ebsim serve':>14}{'moto server':>14}{'ebsim/moto':>12}")
print(f"{'create-volume /s':24}{e['creates_per_s']:>14.1f}{m['creates_per_s']:>14.1f}{e['creates_per_s'] / m['creates_per_s']:>11.2f}x")
print(f"{'DescribeVolumes s':24}{e['describe_s']:>14.3f}{m['describe_s']:>14.3f}{m['describe_s'] / e['describe_s']:>11.2f}x")
print(f"volumes listed: ebsim {e['volumes']}, moto {m['volumes']}")
PY
