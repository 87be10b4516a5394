"""Every operation of `ebsim serve` through the real boto3: success and
error paths, DryRun, the waiters, paging and STS. Usage: boto3_suite.py URL.
Prints one line per check and 'N passed, 0 failed' at the end; exits 1 on
the first failure."""

import datetime
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, WaiterError

URL = sys.argv[1]
UBUNTU = "ami-080e1f13689e07408"
# One attempt: a 5xx must surface, not be retried away.
CFG = Config(retries={"max_attempts": 1, "mode": "standard"})
KW = dict(
    endpoint_url=URL,
    region_name="us-east-1",
    aws_access_key_id="AKIDEBSIMTEST0000001",
    aws_secret_access_key="secret",
    config=CFG,
)
ec2 = boto3.client("ec2", **KW)
W = {"Delay": 1, "MaxAttempts": 60}
passed = 0


def ok(cond, what):
    global passed
    if not cond:
        print(f"FAILED: {what}", flush=True)
        sys.exit(1)
    passed += 1
    print(f"ok: {what}", flush=True)


def fails(code, status, fn, **kw):
    try:
        fn(**kw)
    except ClientError as e:
        err = e.response["Error"]
        meta = e.response["ResponseMetadata"]
        ok(
            err["Code"] == code and meta["HTTPStatusCode"] == status,
            f"{fn.__name__} {sorted(kw)} -> {code} {status} (got {err['Code']} {meta['HTTPStatusCode']}: {err.get('Message')})",
        )
        return err["Message"]
    ok(False, f"{fn.__name__} {kw} should fail with {code}")


def dry(fn, **kw):
    return fails("DryRunOperation", 412, fn, DryRun=True, **kw)


# Zones, types, images.
zones = ec2.describe_availability_zones()["AvailabilityZones"]
ok("us-east-1a" in [z["ZoneName"] for z in zones], "describe_availability_zones")
ok(zones[0]["State"] == "available" and zones[0]["RegionName"] == "us-east-1", "zone fields")
dry(ec2.describe_availability_zones)
eu = boto3.client("ec2", **{**KW, "region_name": "eu-west-1"})
ok(
    all(z["ZoneName"].startswith("eu-west-1") for z in eu.describe_availability_zones()["AvailabilityZones"]),
    "region from the credential scope",
)
t = ec2.describe_instance_types(InstanceTypes=["t3.micro"])["InstanceTypes"]
ok(t[0]["InstanceType"] == "t3.micro" and t[0]["Hypervisor"] == "nitro", "describe_instance_types")
img = ec2.describe_images(ImageIds=[UBUNTU])["Images"][0]
ok(img["State"] == "available" and isinstance(img["CreationDate"], str), "describe_images")
ok(img["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 8, "image mapping")
fails("InvalidAMIID.NotFound", 400, ec2.describe_images, ImageIds=["ami-0000000000000000f"])

# Volumes.
v = ec2.create_volume(
    Size=8,
    AvailabilityZone="us-east-1a",
    VolumeType="gp3",
    TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": "data & <more>"}]}],
)
vid = v["VolumeId"]
ok(v["State"] == "creating" and v["Size"] == 8 and v["Iops"] == 3000 and v["Throughput"] == 125, "create_volume")
ok(isinstance(v["CreateTime"], datetime.datetime) and v["CreateTime"].utcoffset() == datetime.timedelta(0), "CreateTime is UTC")
ok(v["Encrypted"] is False and v["SnapshotId"] == "", "booleans and empty strings")
ok(v["Tags"] == [{"Key": "Name", "Value": "data & <more>"}], "tags escaped and back")
ok("Attachments" not in v, "CreateVolume has no attachment set")
dry(ec2.create_volume, Size=8, AvailabilityZone="us-east-1a")
fails("InvalidParameterValue", 400, ec2.create_volume, Size=0, AvailabilityZone="us-east-1a")
fails("InvalidParameterValue", 400, ec2.create_volume, Size=8, AvailabilityZone="us-east-1a", VolumeType="gp9")
ec2.get_waiter("volume_available").wait(VolumeIds=[vid], WaiterConfig=W)
ok(True, "waiter volume_available")
d = ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]
ok(d["State"] == "available" and d["Attachments"] == [], "describe_volumes by id")
fails("InvalidVolume.NotFound", 400, ec2.describe_volumes, VolumeIds=["vol-0000000000000000f"])
fails("InvalidParameterValue", 400, ec2.describe_volumes, Filters=[{"Name": "no-such-filter", "Values": ["x"]}])
dry(ec2.describe_volumes)
got = ec2.describe_volumes(Filters=[{"Name": "tag:Name", "Values": ["data*"]}, {"Name": "status", "Values": ["available", "in-use"]}])
ok([x["VolumeId"] for x in got["Volumes"]] == [vid], "describe_volumes filters")
fails("IncorrectState", 400, ec2.detach_volume, VolumeId=vid)

# Instances.
r = ec2.run_instances(ImageId=UBUNTU, InstanceType="t2.micro", MinCount=1, MaxCount=1,
                      TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "role", "Value": "web"}]}])
iid = r["Instances"][0]["InstanceId"]
ok(r["Instances"][0]["State"] == {"Code": 0, "Name": "pending"} and r["OwnerId"] == "123456789012", "run_instances")
dry(ec2.run_instances, ImageId=UBUNTU, InstanceType="t2.micro", MinCount=1, MaxCount=1)
fails("InvalidAMIID.NotFound", 400, ec2.run_instances, ImageId="ami-0000000000000000f", MinCount=1, MaxCount=1)
ec2.get_waiter("instance_exists").wait(InstanceIds=[iid], WaiterConfig=W)
ok(True, "waiter instance_exists")
ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=W)
ok(True, "waiter instance_running")
inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
ok(inst["State"]["Name"] == "running" and inst["RootDeviceName"] == "/dev/sda1", "describe_instances")
ok(isinstance(inst["LaunchTime"], datetime.datetime), "LaunchTime")
ok(inst["BlockDeviceMappings"][0]["Ebs"]["Status"] == "attached", "instance mapping attached")
root = inst["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
ok(ec2.describe_volumes(VolumeIds=[root])["Volumes"][0]["State"] == "in-use", "root volume in use")
ec2.get_waiter("volume_in_use").wait(VolumeIds=[root], WaiterConfig=W)
ok(True, "waiter volume_in_use (root)")
fails("InvalidInstanceID.NotFound", 400, ec2.describe_instances, InstanceIds=["i-0000000000000000f"])
f = ec2.describe_instances(Filters=[{"Name": "tag:role", "Values": ["web"]}, {"Name": "instance-state-name", "Values": ["running"]}])
ok([i["InstanceId"] for res in f["Reservations"] for i in res["Instances"]] == [iid], "describe_instances filters")
fails("IncorrectInstanceState", 400, ec2.modify_instance_attribute, InstanceId=iid, InstanceType={"Value": "t2.small"})

# Attach, modify, snapshot.
dry(ec2.attach_volume, VolumeId=vid, InstanceId=iid, Device="/dev/sdf")
a = ec2.attach_volume(VolumeId=vid, InstanceId=iid, Device="/dev/sdf")
ok(a["State"] == "attaching" and a["Device"] == "/dev/sdf", "attach_volume")
fails("VolumeInUse", 400, ec2.attach_volume, VolumeId=vid, InstanceId=iid, Device="/dev/sdg")
ec2.get_waiter("volume_in_use").wait(VolumeIds=[vid], WaiterConfig=W)
ok(True, "waiter volume_in_use")
fails("VolumeInUse", 400, ec2.delete_volume, VolumeId=vid)
dry(ec2.modify_volume, VolumeId=vid, Size=16)
fails("InvalidParameterValue", 400, ec2.modify_volume, VolumeId=vid, Size=4)
m = ec2.modify_volume(VolumeId=vid, Size=16, Iops=4000)["VolumeModification"]
ok(m["ModificationState"] == "modifying" and m["TargetSize"] == 16 and m["OriginalSize"] == 8 and m["Progress"] == 0, "modify_volume")
fails("IncorrectModificationState", 400, ec2.modify_volume, VolumeId=vid, Size=20)
mods = ec2.describe_volumes_modifications(VolumeIds=[vid])["VolumesModifications"]
ok(len(mods) == 1 and mods[0]["TargetIops"] == 4000, "describe_volumes_modifications")
fails("InvalidVolumeModification.NotFound", 400, ec2.describe_volumes_modifications, VolumeIds=[root])
dry(ec2.create_snapshot, VolumeId=vid)
s = ec2.create_snapshot(VolumeId=vid, Description="before", TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "k", "Value": "v"}]}])
sid = s["SnapshotId"]
ok(s["State"] == "pending" and s["VolumeSize"] in (8, 16) and s["Description"] == "before", "create_snapshot")
ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[sid], WaiterConfig=W)
ok(True, "waiter snapshot_completed")
snaps = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
ok([x["SnapshotId"] for x in snaps] == [sid] and snaps[0]["Progress"] == "100%", "describe_snapshots self")
ok(ec2.describe_snapshots(Filters=[{"Name": "tag:k", "Values": ["v"]}])["Snapshots"][0]["SnapshotId"] == sid, "snapshot filter")
fails("InvalidSnapshot.NotFound", 400, ec2.describe_snapshots, SnapshotIds=["snap-0000000000000000f"])

# Tags and instance attributes.
dry(ec2.create_tags, Resources=[vid], Tags=[{"Key": "a", "Value": "b"}])
ec2.create_tags(Resources=[vid, iid], Tags=[{"Key": "team", "Value": "x"}])
ok(ec2.describe_volumes(Filters=[{"Name": "tag:team", "Values": ["x"]}])["Volumes"][0]["VolumeId"] == vid, "create_tags")
fails("InvalidVolume.NotFound", 400, ec2.create_tags, Resources=["vol-0000000000000000f"], Tags=[{"Key": "a", "Value": "b"}])
ec2.modify_instance_attribute(InstanceId=iid, BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": True}}])
att = ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]["Attachments"][0]
ok(att["DeleteOnTermination"] is True, "modify_instance_attribute DeleteOnTermination")
dry(ec2.stop_instances, InstanceIds=[iid])
st = ec2.stop_instances(InstanceIds=[iid])["StoppingInstances"][0]
ok(st["CurrentState"]["Name"] == "stopping" and st["PreviousState"]["Name"] == "running", "stop_instances")
ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig=W)
ok(True, "waiter instance_stopped")
ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t2.small"})
ec2.modify_instance_attribute(InstanceId=iid, Attribute="instanceType", Value="t2.medium")
it = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["InstanceType"]
ok(it == "t2.medium", "modify_instance_attribute instance type (both forms)")
st = ec2.start_instances(InstanceIds=[iid])["StartingInstances"][0]
ok(st["CurrentState"]["Name"] == "pending" and st["PreviousState"]["Name"] == "stopped", "start_instances")
ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=W)
ok(True, "waiter instance_running after start")
dry(ec2.reboot_instances, InstanceIds=[iid])
ec2.reboot_instances(InstanceIds=[iid])
ok(True, "reboot_instances")

# Images.
dry(ec2.create_image, InstanceId=iid, Name="mine")
ami = ec2.create_image(InstanceId=iid, Name="mine", NoReboot=True)["ImageId"]
ok(ami.startswith("ami-"), "create_image")
ec2.get_waiter("image_available").wait(ImageIds=[ami], WaiterConfig=W)
ok(True, "waiter image_available")
ok([i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]] == [ami], "describe_images self")
ec2.get_waiter("image_exists").wait(ImageIds=[ami], WaiterConfig=W)
ok(True, "waiter image_exists")

# Detach, delete.
dry(ec2.detach_volume, VolumeId=vid)
dt = ec2.detach_volume(VolumeId=vid)
ok(dt["State"] == "detaching", "detach_volume")
ec2.get_waiter("volume_available").wait(VolumeIds=[vid], WaiterConfig=W)
ok(True, "waiter volume_available after detach")
dry(ec2.delete_volume, VolumeId=vid)
dry(ec2.delete_snapshot, SnapshotId=sid)
fails("InvalidSnapshot.InUse", 400, ec2.delete_snapshot, SnapshotId=ec2.describe_images(ImageIds=[ami])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"])
ec2.delete_snapshot(SnapshotId=sid)
ok(ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "snapshot-id", "Values": [sid]}])["Snapshots"] == [], "delete_snapshot")
ec2.delete_volume(VolumeId=vid)
ec2.get_waiter("volume_deleted").wait(VolumeIds=[vid], WaiterConfig=W)
ok(True, "waiter volume_deleted")
dry(ec2.terminate_instances, InstanceIds=[iid])
tm = ec2.terminate_instances(InstanceIds=[iid])["TerminatingInstances"][0]
ok(tm["CurrentState"]["Name"] == "shutting-down", "terminate_instances")
ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig=W)
ok(True, "waiter instance_terminated")
fails("InvalidVolume.NotFound", 400, ec2.describe_volumes, VolumeIds=[root])
try:
    ec2.get_waiter("volume_available").wait(VolumeIds=["vol-0000000000000000f"], WaiterConfig=W)
    ok(False, "waiter on a missing volume fails")
except WaiterError as e:
    ok("InvalidVolume.NotFound" in str(e), "waiter fails at once on NotFound")

# Paging: 25 volumes, one per page.
made = sorted(
    ec2.create_volume(Size=1, AvailabilityZone="us-east-1b",
                      TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "batch", "Value": "p"}]}])["VolumeId"]
    for _ in range(25)
)
pages = list(ec2.get_paginator("describe_volumes").paginate(
    Filters=[{"Name": "tag:batch", "Values": ["p"]}], PaginationConfig={"PageSize": 1}))
ok(len(pages) == 25 and all(len(p["Volumes"]) == 1 for p in pages), "25 pages of MaxResults 1")
ok([p["Volumes"][0]["VolumeId"] for p in pages] == made, "pages in id order, each volume once")
ok("NextToken" not in pages[-1] and all("NextToken" in p for p in pages[:-1]), "NextToken until the last page")
first = ec2.describe_volumes(MaxResults=5, Filters=[{"Name": "tag:batch", "Values": ["p"]}])
ec2.delete_volume(VolumeId=made[5])
rest = ec2.describe_volumes(MaxResults=5, NextToken=first["NextToken"], Filters=[{"Name": "tag:batch", "Values": ["p"]}])
ok([x["VolumeId"] for x in rest["Volumes"]] == made[6:11], "a token survives a deletion")
fails("InvalidParameterValue", 400, ec2.describe_volumes, MaxResults=5, NextToken="garbage")
fails("InvalidParameterCombination", 400, ec2.describe_instances, InstanceIds=[iid], MaxResults=5)
all_snaps = list(ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"], PaginationConfig={"PageSize": 1}))
ok(sum(len(p["Snapshots"]) for p in all_snaps) == len(ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]), "snapshot paginator")
inst_pages = list(ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": 1}))
ok(sum(len(r["Instances"]) for p in inst_pages for r in p["Reservations"]) >= 1, "instance paginator")
ec2.get_waiter("volume_available").wait(VolumeIds=made[:3], WaiterConfig=W)
for m in made[:3]:
    ec2.modify_volume(VolumeId=m, Size=2)
mod_pages = list(ec2.get_paginator("describe_volumes_modifications").paginate(PaginationConfig={"PageSize": 1}))
ok([p["VolumesModifications"][0]["VolumeId"] for p in mod_pages] == made[:3], "modification paginator")

# STS on the same endpoint.
who = boto3.client("sts", **KW).get_caller_identity()
ok(who["Account"] == "123456789012" and who["UserId"] == "AKIDEBSIMTEST0000001", "sts get_caller_identity")

print(f"{passed} passed, 0 failed")
