"""Measures one endpoint through boto3 (called by scripts/bench-serve.sh):
create-volume throughput (sequential calls), then, with the volume count
raised to TOTAL by parallel creates, the time of one DescribeVolumes over
all of them (the median of RUNS). Prints one JSON line."""

import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

url, creates, total, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])


def client():
    return boto3.session.Session().client(
        "ec2", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id="AKIDEBSIM", aws_secret_access_key="secret",
        config=Config(retries={"max_attempts": 10}, max_pool_connections=16))


ec2 = client()
ec2.describe_availability_zones()  # connection and client warm
t0 = time.perf_counter()
for _ in range(creates):
    ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")
create_s = time.perf_counter() - t0


def seed(n):
    c = client()
    for _ in range(n):
        c.create_volume(Size=1, AvailabilityZone="us-east-1a")


left = max(0, total - creates)
with ThreadPoolExecutor(8) as ex:
    list(ex.map(seed, [left // 8 + (1 if i < left % 8 else 0) for i in range(8)]))
times = []
for _ in range(runs):
    t0 = time.perf_counter()
    n = len(ec2.describe_volumes()["Volumes"])
    times.append(time.perf_counter() - t0)
print(json.dumps({"creates_per_s": creates / create_s, "describe_s": statistics.median(times), "volumes": n}))
