"""Measures one endpoint through boto3 (called by scripts/bench-serve.sh):
create-volume throughput from one client making sequential calls, then
from CLIENTS concurrent clients; then, with the volume count raised to
TOTAL by parallel creates, the time of one DescribeVolumes over all of
them (the median of RUNS), both whole (boto3's parse included) and until
the answer is received (botocore's `before-parse` event, so without the
client's own parsing). For every create it also takes the time from
botocore's `before-send` (the request is signed and about to be written)
to `before-parse` (the whole response has arrived): the server's time per
create plus a loopback round trip, the rest of the call being boto3's own.
With a sixth argument `creates`, only the sequential creates are run (for
the canned endpoint, which measures boto3 alone). Prints one JSON line."""

import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

url, creates, total, runs, clients = (
    sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
creates_only = sys.argv[6:] == ["creates"]


def client():
    return boto3.session.Session().client(
        "ec2", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id="AKIDEBSIM", aws_secret_access_key="secret",
        config=Config(retries={"max_attempts": 10}, max_pool_connections=16))


def make(c, n):
    for _ in range(n):
        c.create_volume(Size=1, AvailabilityZone="us-east-1a")


ec2 = client()
ec2.describe_availability_zones()  # connection and client warm
sent, got = [], []
ec2.meta.events.register(
    "before-send.ec2.CreateVolume", lambda **_: sent.append(time.perf_counter()))
ec2.meta.events.register(
    "before-parse.ec2.CreateVolume", lambda **_: got.append(time.perf_counter()))
t0 = time.perf_counter()
make(ec2, creates)
create_s = time.perf_counter() - t0
# Retried calls send twice: pair each response with the send before it.
server_ms = statistics.median(
    (g - max(s for s in sent if s <= g)) * 1000 for g in got) if got else 0.0
if creates_only:
    print(json.dumps({
        "creates_per_s": creates / create_s,
        "create_ms": create_s / creates * 1000,
        "create_server_ms": server_ms,
    }))
    sys.exit(0)

pool = [client() for _ in range(clients)]
for c in pool:
    c.describe_availability_zones()
t0 = time.perf_counter()
with ThreadPoolExecutor(clients) as ex:
    list(ex.map(lambda c: make(c, creates // clients), pool))
concurrent_s = time.perf_counter() - t0
concurrent_n = (creates // clients) * clients

left = max(0, total - creates - concurrent_n)
with ThreadPoolExecutor(clients) as ex:
    list(ex.map(lambda i: make(pool[i], left // clients + (1 if i < left % clients else 0)),
                range(clients)))

received = []
ec2.meta.events.register(
    "before-parse.ec2.DescribeVolumes", lambda **_: received.append(time.perf_counter()))
times, wire = [], []
for _ in range(runs):
    received.clear()
    t0 = time.perf_counter()
    n = len(ec2.describe_volumes()["Volumes"])
    times.append(time.perf_counter() - t0)
    wire.append(received[0] - t0)
print(json.dumps({
    "creates_per_s": creates / create_s,
    "create_ms": create_s / creates * 1000,
    "create_server_ms": server_ms,
    "concurrent_creates_per_s": concurrent_n / concurrent_s,
    "describe_s": statistics.median(times),
    "describe_wire_s": statistics.median(wire),
    "volumes": n,
}))
