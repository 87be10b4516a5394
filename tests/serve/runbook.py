"""The seed runbook through boto3 against `ebsim serve`, with the guest's
commands run by `ebsim exec`: launch, add and attach a data volume, grow the
root volume (poll describe_volumes_modifications until optimizing), then
growpart and resize2fs inside, snapshot, keep the root volume on
termination through modify_instance_attribute. Usage: runbook.py URL EBSIM.
The EBSIM_HOME of the server is inherited."""

import subprocess
import sys
import time

import boto3
from botocore.config import Config

URL, EBSIM = sys.argv[1], sys.argv[2]
ec2 = boto3.client(
    "ec2",
    endpoint_url=URL,
    region_name="us-east-1",
    aws_access_key_id="AKIDEBSIM",
    aws_secret_access_key="secret",
    config=Config(retries={"max_attempts": 1}),
)
W = {"Delay": 1, "MaxAttempts": 120}
passed = 0


def ok(cond, what):
    global passed
    if not cond:
        print(f"FAILED: {what}", flush=True)
        sys.exit(1)
    passed += 1
    print(f"ok: {what}", flush=True)


def guest(iid, *cmd):
    r = subprocess.run([EBSIM, "exec", iid, "--", *cmd], capture_output=True, text=True)
    print(f"$ {' '.join(cmd)}\n{r.stdout}{r.stderr}", flush=True)
    ok(r.returncode == 0, f"ebsim exec {' '.join(cmd)} (rc {r.returncode})")
    return r.stdout


def sizes(iid):
    """NAME -> SIZE in bytes of every block device the guest's lsblk lists."""
    out = guest(iid, "lsblk", "-b", "-l", "-n", "-o", "NAME,SIZE")
    return {n: int(sz) for n, sz in (line.split() for line in out.splitlines() if line.strip())}


GIB = 1 << 30
iid = ec2.run_instances(ImageId="ami-080e1f13689e07408", InstanceType="t2.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=W)
inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
az = inst["Placement"]["AvailabilityZone"]
root = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])["Volumes"][0]["VolumeId"]
ok(sizes(iid)["xvda"] == 8 * GIB, "the guest sees the 8 GiB root")

data = ec2.create_volume(Size=20, VolumeType="gp3", AvailabilityZone=az)["VolumeId"]
ec2.get_waiter("volume_available").wait(VolumeIds=[data], WaiterConfig=W)
ec2.attach_volume(VolumeId=data, InstanceId=iid, Device="/dev/sdf")
ec2.get_waiter("volume_in_use").wait(VolumeIds=[data], WaiterConfig=W)
for _ in range(100):
    a = ec2.describe_volumes(VolumeIds=[data])["Volumes"][0]["Attachments"][0]["State"]
    if a == "attached":
        break
    time.sleep(0.2)
ok(a == "attached", "data volume attached")
ok(sizes(iid).get("xvdf") == 20 * GIB, "a volume made through boto3 is seen by the guest")

snap = ec2.create_snapshot(VolumeId=root, Description="before-resize")["SnapshotId"]
ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snap], WaiterConfig=W)
m = ec2.modify_volume(VolumeId=root, Size=16)["VolumeModification"]
ok(m["ModificationState"] == "modifying", "modify_volume root 8 -> 16")
state = None
for _ in range(600):
    state = ec2.describe_volumes_modifications(VolumeIds=[root])["VolumesModifications"][0]["ModificationState"]
    if state in ("optimizing", "completed"):
        break
    time.sleep(0.1)
ok(state in ("optimizing", "completed"), f"modification reached {state}")
ok(ec2.describe_volumes(VolumeIds=[root])["Volumes"][0]["Size"] == 16, "DescribeVolumes shows 16 GiB")
ok(sizes(iid)["xvda"] == 16 * GIB, "the guest sees the 16 GiB disk")
guest(iid, "sudo", "growpart", "/dev/xvda", "1")
guest(iid, "sudo", "resize2fs", "/dev/xvda1")
out = guest(iid, "df", "-B1", "--output=size", "/")
size = int(out.split()[-1])
ok(size > 15 * GIB, f"the root filesystem is {size} bytes after resize2fs")

s2 = ec2.create_snapshot(VolumeId=root, Description="after-resize")
ok(s2["VolumeSize"] == 16, "snapshot of the grown root")
ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[s2["SnapshotId"]], WaiterConfig=W)

dev = inst["RootDeviceName"]
ec2.modify_instance_attribute(InstanceId=iid, BlockDeviceMappings=[{"DeviceName": dev, "Ebs": {"DeleteOnTermination": False}}])
bdm = {b["DeviceName"]: b["Ebs"] for b in ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["BlockDeviceMappings"]}
ok(bdm[dev]["DeleteOnTermination"] is False, "DeleteOnTermination off for the root")
ec2.terminate_instances(InstanceIds=[iid])
ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig=W)
ec2.get_waiter("volume_available").wait(VolumeIds=[root, data], WaiterConfig=W)
vols = {v["VolumeId"]: v for v in ec2.describe_volumes(VolumeIds=[root, data])["Volumes"]}
ok(vols[root]["Size"] == 16 and vols[root]["State"] == "available", "the grown root outlives the instance")
print(f"{passed} passed, 0 failed")
