#!/bin/sh
# Benchmark `ebsim serve` against moto's server (boto3 and moto[server],
# installed into a virtual environment of this benchmark's own,
# target/bench-pyenv), in the same run, both driven by boto3:
#   1. create-volume throughput: CREATES sequential calls from one client,
#      then CREATES calls from CLIENTS concurrent clients;
#   2. DescribeVolumes over VOLUMES volumes (raised by CLIENTS parallel
#      clients): the median time of RUNS calls answering all of them, whole
#      and until the answer is received (before boto3 parses it).
#   3. boto3 alone: the same sequential creates against a canned endpoint
#      that answers without doing anything (scripts/bench_canned.py), the
#      bound on any server's create rate through boto3.
# Prints both servers' numbers and the ratios (ebsim's speed over moto's),
# including each server's own time per create (from the request written
# to the response received, as boto3's events see it), and the load average.
#
#   scripts/bench-serve.sh    (VOLUMES=10000 CREATES=500 RUNS=5 CLIENTS=16)
#   VOLUMES=2000 scripts/bench-serve.sh
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$here/target}
cargo build --release --manifest-path "$here/Cargo.toml" >/dev/null
ebsim="$target/release/ebsim"
py="$target/bench-pyenv"
if ! "$py/bin/python" -c 'import boto3, moto.server' >/dev/null 2>&1; then
    [ -x "$py/bin/python" ] || python3 -m venv "$py"
    "$py/bin/pip" install -q --disable-pip-version-check boto3 'moto[server]'
fi
volumes=${VOLUMES:-10000}
creates=${CREATES:-500}
runs=${RUNS:-5}
clients=${CLIENTS:-16}
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
"$py/bin/python" "$here/scripts/bench_canned.py" >"$work/canned.url" &
pids="$pids $!"
for _ in $(seq 100); do [ -s "$work/canned.url" ] && break; sleep 0.1; done
canned_url=$(head -1 "$work/canned.url")

echo "boto3 against each server: $creates create-volume calls from one client, then from $clients; DescribeVolumes over $volumes volumes (median of $runs)"
e=$("$py/bin/python" "$here/scripts/bench_serve.py" "$ebsim_url" "$creates" "$volumes" "$runs" "$clients")
m=$("$py/bin/python" "$here/scripts/bench_serve.py" "http://127.0.0.1:$port" "$creates" "$volumes" "$runs" "$clients")
c=$("$py/bin/python" "$here/scripts/bench_serve.py" "$canned_url" "$creates" 0 1 1 creates)
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$py/bin/python" - "$e" "$m" "$c" <<'PY'
import json, sys
e, m, c = (json.loads(a) for a in sys.argv[1:4])
rows = [
    ("create-volume /s, 1 client", "creates_per_s", True),
    ("create-volume ms, whole call", "create_ms", False),
    ("create-volume ms, in server", "create_server_ms", False),
    ("create-volume /s, concurrent", "concurrent_creates_per_s", True),
    ("DescribeVolumes s, whole", "describe_s", False),
    ("DescribeVolumes s, received", "describe_wire_s", False),
]
print(f"{'':32}{'ebsim serve':>14}{'moto server':>14}{'ebsim/moto':>12}")
for name, key, rate in rows:
    ratio = e[key] / m[key] if rate else m[key] / e[key]
    print(f"{name:32}{e[key]:>14.3f}{m[key]:>14.3f}{ratio:>11.2f}x")
print(f"volumes listed: ebsim {e['volumes']}, moto {m['volumes']}")
print(f"boto3 alone (canned endpoint): {c['creates_per_s']:.1f} creates/s, "
      f"{c['create_ms']:.2f} ms a call ({c['create_server_ms']:.2f} ms send to received); "
      f"so through boto3 ebsim can be at most {m['create_ms'] / c['create_ms']:.2f}x moto's create rate")
PY
