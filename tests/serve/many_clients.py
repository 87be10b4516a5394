"""16 concurrent boto3 clients creating, tagging, modifying and deleting
volumes through `ebsim serve`; the final state must equal the sum of the
accepted requests, and no request may get a 5xx. Usage: many_clients.py URL."""

import sys
import threading
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

URL = sys.argv[1]
CLIENTS, ROUNDS = 16, 6
lock = threading.Lock()
created, deleted, tagged, modified, errors = {}, set(), {}, {}, []


def client():
    # One attempt (legacy mode's max_attempts counts retries, so
    # total_max_attempts): a 5xx surfaces instead of being retried.
    return boto3.session.Session().client(
        "ec2",
        endpoint_url=URL,
        region_name="us-east-1",
        aws_access_key_id="AKIDEBSIM",
        aws_secret_access_key="secret",
        config=Config(retries={"total_max_attempts": 1}),
    )


def call(fn, **kw):
    try:
        return fn(**kw)
    except ClientError as e:
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        code = e.response["Error"]["Code"]
        if status >= 500:
            with lock:
                errors.append(f"{fn.__name__}: {status} {code}")
        raise


def worker(n):
    ec2 = client()
    try:
        for r in range(ROUNDS):
            v = call(ec2.create_volume, Size=1, AvailabilityZone="us-east-1a",
                     TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "owner", "Value": f"c{n}"}]}])
            vid = v["VolumeId"]
            with lock:
                created[vid] = n
            call(ec2.create_tags, Resources=[vid], Tags=[{"Key": "round", "Value": str(r)}])
            with lock:
                tagged[vid] = str(r)
            # ModifyVolume is refused while the volume is creating; retry
            # until it is accepted (each accepted request is counted).
            for _ in range(200):
                try:
                    call(ec2.modify_volume, VolumeId=vid, Size=2 + r)
                    with lock:
                        modified[vid] = 2 + r
                    break
                except ClientError as e:
                    if e.response["Error"]["Code"] != "IncorrectState":
                        raise
                    time.sleep(0.05)
            if r % 2 == 1:
                call(ec2.delete_volume, VolumeId=vid)
                with lock:
                    deleted.add(vid)
    except Exception as e:  # noqa: BLE001 - every failure is reported
        with lock:
            errors.append(f"client {n}: {e!r}")


threads = [threading.Thread(target=worker, args=(n,)) for n in range(CLIENTS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if errors:
    print("FAILED:", *errors, sep="\n  ")
    sys.exit(1)

ec2 = client()
vols = [v for p in ec2.get_paginator("describe_volumes").paginate(
    Filters=[{"Name": "tag-key", "Values": ["owner"]}]) for v in p["Volumes"]]
have = {v["VolumeId"]: v for v in vols}
want = set(created) - deleted
assert len(created) == CLIENTS * ROUNDS, f"created {len(created)}"
assert set(have) == want, f"volumes {sorted(set(have) ^ want)} differ"
for vid, v in have.items():
    tags = {t["Key"]: t["Value"] for t in v.get("Tags", [])}
    assert tags == {"owner": f"c{created[vid]}", "round": tagged[vid]}, (vid, tags)
mods = {m["VolumeId"]: m for m in ec2.describe_volumes_modifications(VolumeIds=sorted(want))["VolumesModifications"]}
for vid in want:
    assert mods[vid]["TargetSize"] == modified[vid], (vid, mods[vid])
print(f"{len(created)} created, {len(deleted)} deleted, {len(tagged)} tagged, {len(modified)} modified by {CLIENTS} clients")
print("1 passed, 0 failed")
