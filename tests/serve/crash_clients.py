"""Crash safety of `ebsim serve`: 16 boto3 clients create, tag, modify
and delete volumes while the server is SIGKILLed at random moments and
restarted on the same port, then stopped by SIGTERM with requests in
flight (a change the draining server applied must have been answered).
Afterwards (one more restart) the state must hold every change a
client got a 200 for, nothing the clients did not ask for, and exactly
the files it names; no client may ever see a 5xx (a killed server shows
as a connection error: the request may or may not have been applied, and
the checks allow both).

usage: crash_clients.py EBSIM_BIN PORT SEED   (EBSIM_HOME, EBSIM_CLOCK set)
"""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

EBSIM, PORT, SEED = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
URL = f"http://127.0.0.1:{PORT}"
HOME = os.environ["EBSIM_HOME"]
CLIENTS, KILLS = 16, 4
rng = random.Random(SEED)
lock = threading.Lock()
stop = threading.Event()
failures = []
# Per client, in order: (op, volume, value, outcome) with outcome "ok" (a
# 200) or "lost" (a connection error: applied or not).
journal = {n: [] for n in range(CLIENTS)}
counts = {"ok": 0, "lost": 0, "refused": 0}
kinds = {}  # the connection errors seen, by class
phase = ["kill"]  # "term" from the SIGTERM on: lost answers are counted apart


def start():
    p = subprocess.Popen([EBSIM, "serve", "--port", str(PORT)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = p.stdout.readline().decode().strip()
    if line != URL:
        raise SystemExit(f"ebsim serve said {line!r}: {p.stderr.read().decode()}")
    return p


def client():
    return boto3.session.Session().client(
        "ec2", endpoint_url=URL, region_name="us-east-1",
        aws_access_key_id="AKIDEBSIM", aws_secret_access_key="secret",
        # One attempt, no retry (legacy mode's max_attempts counts
        # retries): a 5xx or a dropped connection surfaces.
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2,
                      read_timeout=30, tcp_keepalive=False))


def call(n, op, vol, value, fn, **kw):
    """Runs one request: its answer, or None when the connection failed
    (journalled as lost) or was refused (the server was down: nothing was
    sent)."""
    try:
        r = fn(**kw)
    except ClientError as e:
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        if status >= 500:
            with lock:
                failures.append(f"client {n} {op}: {status} {e.response['Error']}")
        raise
    except BotoCoreError as e:
        # Refused: the connection could not be made, nothing was sent.
        refused = isinstance(e, EndpointConnectionError)
        with lock:
            counts["refused" if refused else "lost"] += 1
            kinds[type(e).__name__] = kinds.get(type(e).__name__, 0) + 1
            if not refused and phase[0] == "term":
                counts["lost_term"] = counts.get("lost_term", 0) + 1
        if not refused:
            journal[n].append((op, vol, value, "lost" if phase[0] == "kill" else "lost-term"))
        time.sleep(0.05)
        return None
    with lock:
        counts["ok"] += 1
    if op == "create":
        vol = r["VolumeId"]
    journal[n].append((op, vol, value, "ok"))
    return r


def worker(n):
    ec2 = client()
    r = 0
    try:
        while not stop.is_set():
            r += 1
            v = call(n, "create", None, None, ec2.create_volume, Size=1,
                     AvailabilityZone="us-east-1a",
                     TagSpecifications=[{"ResourceType": "volume", "Tags": [
                         {"Key": "owner", "Value": f"c{n}"}]}])
            if v is None:
                continue
            vid = v["VolumeId"]
            if call(n, "tag", vid, str(r), ec2.create_tags, Resources=[vid],
                    Tags=[{"Key": "round", "Value": str(r)}]) is None:
                continue
            for _ in range(100):
                try:
                    if call(n, "modify", vid, 2 + r % 5, ec2.modify_volume,
                            VolumeId=vid, Size=2 + r % 5) is None:
                        break
                    break
                except ClientError as e:
                    if e.response["Error"]["Code"] != "IncorrectState":
                        raise
                    time.sleep(0.02)
            if r % 2 == 0:
                call(n, "delete", vid, None, ec2.delete_volume, VolumeId=vid)
    except Exception as e:  # noqa: BLE001 - every failure is reported
        with lock:
            failures.append(f"client {n}: {e!r}")


server = start()
threads = [threading.Thread(target=worker, args=(n,)) for n in range(CLIENTS)]
for t in threads:
    t.start()
kills = 0
for k in range(KILLS):
    time.sleep(rng.uniform(0.3, 1.5))
    server.send_signal(signal.SIGKILL)
    server.wait()
    kills += 1
    time.sleep(rng.uniform(0.0, 0.3))
    server = start()
# SIGTERM with requests in flight: every one answered is kept, the server
# exits 0.
time.sleep(rng.uniform(0.3, 1.0))
phase[0] = "term"
server.send_signal(signal.SIGTERM)
rc = server.wait(timeout=30)
if rc != 0:
    failures.append(f"SIGTERM: ebsim serve exited {rc}: {server.stderr.read().decode()}")
time.sleep(0.2)
server = start()
time.sleep(0.5)
stop.set()
for t in threads:
    t.join()

# The state, through the restarted server (its first transaction also
# sweeps what the kills left).
ec2 = client()
vols = [v for p in ec2.get_paginator("describe_volumes").paginate(
    Filters=[{"Name": "tag-key", "Values": ["owner"]}]) for v in p["Volumes"]]
have = {v["VolumeId"]: v for v in vols}
mods = {m["VolumeId"]: m
        for p in ec2.get_paginator("describe_volumes_modifications").paginate()
        for m in p["VolumesModifications"] if m["VolumeId"] in have}
server.send_signal(signal.SIGTERM)
if server.wait(timeout=30) != 0:
    failures.append("the last SIGTERM: exit status not 0")

# A request lost around the SIGTERM whose change is nevertheless in the
# state would be one the drain applied but did not answer.
applied_term = []
for n, ops in journal.items():
    for op, vol, value, outcome in ops:
        if outcome != "lost-term" or vol is None:
            continue
        v = have.get(vol)
        tags = {t["Key"]: t["Value"] for t in (v or {}).get("Tags", [])}
        if (op == "delete" and v is None) or (op == "tag" and tags.get("round") == value) \
                or (op == "modify" and mods.get(vol, {}).get("TargetSize") == value):
            applied_term.append((op, vol, value))
if applied_term:
    failures.append(f"applied by the draining server but not answered: {applied_term}")

acked = 0
for n, ops in journal.items():
    known = {}  # volume -> its ops, in order
    lost_creates = 0
    for op, vol, value, outcome in ops:
        if op == "create":
            if outcome != "ok":
                lost_creates += 1
            else:
                known[vol] = []
            continue
        known[vol].append((op, value, outcome))
    created = list(known)
    acked += sum(1 for o in ops if o[3] == "ok")
    for vol in created:
        history = known[vol]
        deleted = [o for o in history if o[0] == "delete"]
        v = have.get(vol)
        if deleted and deleted[-1][2] == "ok":
            if v is not None:
                failures.append(f"{vol}: deleted (200) but still there")
            continue
        if v is None:
            if not deleted:
                failures.append(f"{vol}: created (200) but missing")
            continue
        tags = {t["Key"]: t["Value"] for t in v.get("Tags", [])}
        if tags.get("owner") != f"c{n}":
            failures.append(f"{vol}: owner tag {tags}")
        for op, key in (("tag", "round"), ("modify", None)):
            seen = [(val, out) for o, val, out in history if o == op]
            if not seen:
                continue
            # The last value answered 200, or one sent after it whose
            # answer was lost.
            last_ok = max((i for i, (_, out) in enumerate(seen) if out == "ok"), default=-1)
            allowed = {val for i, (val, out) in enumerate(seen) if i >= last_ok}
            if last_ok < 0:
                allowed.add(None)
            if op == "tag":
                got = tags.get("round")
            else:
                m = mods.get(vol)
                got = m["TargetSize"] if m else None
            if got not in allowed:
                failures.append(f"{vol}: {op} is {got!r}, allowed {sorted(map(str, allowed))}")
    # Volumes of this client nobody got an id for: at most its lost creates.
    extra = [vid for vid, v in have.items()
             if {"Key": "owner", "Value": f"c{n}"} in v.get("Tags", []) and vid not in known]
    for vid in extra:
        t = {x["Key"] for x in have[vid].get("Tags", [])}
        if t != {"owner"} or vid in mods:
            failures.append(f"{vid}: a lost create has more than its own tags: {have[vid]}")
    if len(extra) > lost_creates:
        failures.append(f"client {n}: {len(extra)} unknown volumes, {lost_creates} lost creates")

# Exactly the files the committed state names.
state = json.load(open(os.path.join(HOME, "state.json")))
want = {"state.json", "state.lock"} | {f"volumes/{v}.img" for v in state.get("volumes", {})}
got = set()
for root, _, files in os.walk(HOME):
    for f in files:
        got.add(os.path.relpath(os.path.join(root, f), HOME))
if got != want:
    failures.append(f"files: unaccounted {sorted(got - want)}, missing {sorted(want - got)}")
if set(state.get("volumes", {})) != set(have):
    failures.append("the state file and the answers differ")

print(f"{kills} SIGKILLs and a SIGTERM; {counts['ok']} requests answered 200, "
      f"{counts['lost']} lost to a kill ({counts.get('lost_term', 0)} around the SIGTERM: "
      f"an idle keep-alive connection closed as a request went out), "
      f"{counts['refused']} refused while down; "
      f"{len(have)} volumes at the end; connection errors {kinds}")
if counts["lost"] + counts["ok"] == 0 or acked == 0:
    failures.append("no request was answered")
if failures:
    print("FAILED:", *failures[:50], sep="\n  ")
    sys.exit(1)
print("1 passed, 0 failed")
