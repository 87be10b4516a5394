"""The operations scripts call first beyond the basic ones, through the
real boto3 (and the real `aws` for the status waiters) against `ebsim
serve`: DescribeInstanceStatus and its waiters, DescribeTags/DeleteTags,
DescribeInstanceAttribute, termination protection, user data,
DeregisterImage, CopySnapshot, resolve:ssm image ids, the default network
on instances, KmsKeyId on snapshots, the describe-instances filters and the
moto reset endpoint. Usage: ops2.py URL. Prints one line per check and
'N passed, 0 failed' at the end; exits 1 on the first failure."""

import base64
import os
import subprocess
import sys
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

URL = sys.argv[1]
UBUNTU = "ami-080e1f13689e07408"
UBUNTU_SSM = "/aws/service/canonical/ubuntu/server/22.04/stable/current/amd64/hvm/ebs-gp2/ami-id"
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
AWS = os.path.join(os.path.dirname(sys.executable), "aws")
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


def aws(*args):
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID="AKIDEBSIMTEST0000001",
        AWS_SECRET_ACCESS_KEY="secret",
        AWS_DEFAULT_REGION="us-east-1",
    )
    return subprocess.run([AWS, "--endpoint-url", URL, *args], capture_output=True, text=True, env=env)


# Launch by an SSM parameter, with user data, in the default network.
r = ec2.run_instances(ImageId=f"resolve:ssm:{UBUNTU_SSM}", InstanceType="t3.micro", MinCount=1, MaxCount=1,
                      UserData="#!/bin/sh\necho hi\n")
inst = r["Instances"][0]
iid = inst["InstanceId"]
ok(inst["ImageId"] == UBUNTU, "resolve:ssm: names the catalog AMI")
ok(inst["StateReason"] == {"Code": "pending", "Message": "pending"}, "run_instances StateReason pending")
ok(inst["VpcId"].startswith("vpc-") and inst["SubnetId"].startswith("subnet-"), "default VPC and subnet")
ok(inst["SecurityGroups"] == [{"GroupId": inst["SecurityGroups"][0]["GroupId"], "GroupName": "default"}], "default security group")
eni = inst["NetworkInterfaces"][0]
ok(eni["PrivateIpAddress"] == inst["PrivateIpAddress"] and eni["SubnetId"] == inst["SubnetId"]
   and eni["VpcId"] == inst["VpcId"] and eni["Attachment"]["DeviceIndex"] == 0
   and eni["PrivateIpAddresses"][0]["Primary"] is True, "primary network interface")
ok(inst["PrivateDnsName"] == "ip-" + inst["PrivateIpAddress"].replace(".", "-") + ".ec2.internal", "private DNS name")
fails("InvalidParameterValue", 400, ec2.run_instances, ImageId="resolve:ssm:/aws/service/nothing/here", MinCount=1, MaxCount=1)
r2 = ec2.run_instances(ImageId=UBUNTU, InstanceType="t3.micro", MinCount=1, MaxCount=1, SubnetId=inst["SubnetId"])
iid2 = r2["Instances"][0]["InstanceId"]
ok(r2["Instances"][0]["Placement"]["AvailabilityZone"] == inst["Placement"]["AvailabilityZone"], "SubnetId picks its zone")
fails("InvalidSubnetID.NotFound", 400, ec2.run_instances, ImageId=UBUNTU, MinCount=1, MaxCount=1, SubnetId="subnet-0000000000000000f")

# DescribeInstanceStatus and its waiters.
dry(ec2.describe_instance_status)
ec2.get_waiter("instance_status_ok").wait(InstanceIds=[iid], WaiterConfig=W)
ok(True, "waiter instance_status_ok")
ec2.get_waiter("system_status_ok").wait(InstanceIds=[iid, iid2], WaiterConfig=W)
ok(True, "waiter system_status_ok")
st = ec2.describe_instance_status(InstanceIds=[iid])["InstanceStatuses"]
ok(len(st) == 1 and st[0]["InstanceState"] == {"Code": 16, "Name": "running"}
   and st[0]["InstanceStatus"] == {"Details": [{"Name": "reachability", "Status": "passed"}], "Status": "ok"}
   and st[0]["SystemStatus"]["Status"] == "ok" and st[0]["Events"] == [], "describe_instance_status")
fails("InvalidInstanceID.NotFound", 400, ec2.describe_instance_status, InstanceIds=["i-0000000000000000f"])
for cli in ("instance-status-ok", "system-status-ok", "instance-exists"):
    p = aws("ec2", "wait", cli, "--instance-ids", iid)
    ok(p.returncode == 0 and p.stdout == "" and p.stderr == "", f"aws ec2 wait {cli} ({p.returncode} {p.stderr.strip()})")
p = aws("ec2", "wait", "image-exists", "--image-ids", UBUNTU)
ok(p.returncode == 0, f"aws ec2 wait image-exists ({p.stderr.strip()})")
f = ec2.describe_instance_status(Filters=[{"Name": "instance-status.status", "Values": ["ok"]}])["InstanceStatuses"]
ok(sorted(x["InstanceId"] for x in f) == sorted([iid, iid2]), "instance status filter")

# Instance attributes.
att = ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")
ok(base64.b64decode(att["UserData"]["Value"]) == b"#!/bin/sh\necho hi\n", "userData as sent (base64)")
ok(ec2.describe_instance_attribute(InstanceId=iid2, Attribute="userData")["UserData"] == {}, "no userData")
ok(ec2.describe_instance_attribute(InstanceId=iid, Attribute="instanceType")["InstanceType"] == {"Value": "t3.micro"}, "instanceType")
bdm = ec2.describe_instance_attribute(InstanceId=iid, Attribute="blockDeviceMapping")["BlockDeviceMappings"]
ok(bdm[0]["DeviceName"] == "/dev/sda1" and bdm[0]["Ebs"]["Status"] == "attached", "blockDeviceMapping")
ok(ec2.describe_instance_attribute(InstanceId=iid, Attribute="groupSet")["Groups"] == inst["SecurityGroups"], "groupSet")
ok(ec2.describe_instance_attribute(InstanceId=iid, Attribute="rootDeviceName")["RootDeviceName"] == {"Value": "/dev/sda1"}, "rootDeviceName")
ok(ec2.describe_instance_attribute(InstanceId=iid, Attribute="kernel")["KernelId"] == {}, "kernel")
ok(ec2.describe_instance_attribute(InstanceId=iid, Attribute="enclaveOptions")["EnclaveOptions"] == {"Enabled": False}, "enclaveOptions")
for a in ("ramdisk", "instanceInitiatedShutdownBehavior", "productCodes", "sourceDestCheck", "ebsOptimized",
          "sriovNetSupport", "enaSupport", "disableApiStop"):
    got = ec2.describe_instance_attribute(InstanceId=iid, Attribute=a)
    ok(got["InstanceId"] == iid and len(got) == 3, f"attribute {a}: {got}")
fails("InvalidParameterValue", 400, ec2.describe_instance_attribute, InstanceId=iid, Attribute="nonsense")
fails("InvalidInstanceID.NotFound", 400, ec2.describe_instance_attribute, InstanceId="i-0000000000000000f", Attribute="instanceType")
dry(ec2.describe_instance_attribute, InstanceId=iid, Attribute="instanceType")

# Termination protection.
ok(ec2.describe_instance_attribute(InstanceId=iid2, Attribute="disableApiTermination")["DisableApiTermination"] == {"Value": False}, "protection off")
ec2.modify_instance_attribute(InstanceId=iid2, DisableApiTermination={"Value": True})
ok(ec2.describe_instance_attribute(InstanceId=iid2, Attribute="disableApiTermination")["DisableApiTermination"] == {"Value": True}, "protection on")
fails("OperationNotPermitted", 400, ec2.terminate_instances, InstanceIds=[iid2])
ec2.modify_instance_attribute(InstanceId=iid2, Attribute="disableApiTermination", Value="false")
fails("IncorrectInstanceState", 400, ec2.modify_instance_attribute, InstanceId=iid2, UserData={"Value": b"eA=="})

# describe-instances filters.
def ids(filters):
    return sorted(i["InstanceId"] for res in ec2.describe_instances(Filters=filters)["Reservations"] for i in res["Instances"])

both = sorted([iid, iid2])
ok(ids([{"Name": "vpc-id", "Values": [inst["VpcId"]]}]) == both, "filter vpc-id")
ok(ids([{"Name": "subnet-id", "Values": [inst["SubnetId"]]}]) == both, "filter subnet-id")
ok(ids([{"Name": "private-dns-name", "Values": [inst["PrivateDnsName"]]}]) == [iid], "filter private-dns-name")
ok(ids([{"Name": "private-ip-address", "Values": [inst["PrivateIpAddress"]]}]) == [iid], "filter private-ip-address")
ok(ids([{"Name": "instance-type", "Values": ["t3.*"]}]) == both, "filter instance-type wildcard")
ok(ids([{"Name": "image-id", "Values": [UBUNTU]}, {"Name": "availability-zone", "Values": ["us-east-1?"]}]) == both, "filter image-id and zone")
ok(ids([{"Name": "block-device-mapping.device-name", "Values": ["/dev/sda1"]}]) == both, "filter block-device-mapping.device-name")
ok(ids([{"Name": "tag-key", "Values": ["nothing"]}]) == [], "filter tag-key")
ok(ids([{"Name": "network-interface.network-interface-id", "Values": [eni["NetworkInterfaceId"]]}]) == [iid], "filter eni id")

# Tags: create, describe, delete.
v = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")
vid = v["VolumeId"]
ok(v["Tags"] == [], "create_volume answers Tags: [] untagged")
ec2.create_tags(Resources=[vid, iid], Tags=[{"Key": "team", "Value": "a"}, {"Key": "env", "Value": "dev"}])
fails("InvalidInstanceID.NotFound", 400, ec2.create_tags, Resources=["i-0000000000000000f"], Tags=[{"Key": "a", "Value": "b"}])
dry(ec2.describe_tags)
t = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [vid]}])["Tags"]
ok(t == [{"Key": "env", "ResourceId": vid, "ResourceType": "volume", "Value": "dev"},
         {"Key": "team", "ResourceId": vid, "ResourceType": "volume", "Value": "a"}], f"describe_tags by resource: {t}")
t = ec2.describe_tags(Filters=[{"Name": "key", "Values": ["team"]}, {"Name": "resource-type", "Values": ["instance"]}])["Tags"]
ok([(x["ResourceId"], x["Value"]) for x in t] == [(iid, "a")], "describe_tags by key and type")
pages = list(ec2.get_paginator("describe_tags").paginate(PaginationConfig={"PageSize": 1}))
ok(sum(len(p["Tags"]) for p in pages) == 4 and len(pages) == 4, "describe_tags pages")
dry(ec2.delete_tags, Resources=[vid])
ec2.delete_tags(Resources=[vid], Tags=[{"Key": "team", "Value": "other"}])
ok(len(ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [vid]}])["Tags"]) == 2, "delete_tags keeps another value")
ec2.delete_tags(Resources=[vid], Tags=[{"Key": "team"}])
ok([x["Key"] for x in ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [vid]}])["Tags"]] == ["env"], "delete_tags by key")
ec2.delete_tags(Resources=[vid, iid])
ok(ec2.describe_tags()["Tags"] == [], "delete_tags without tags removes all")
fails("InvalidVolume.NotFound", 400, ec2.delete_tags, Resources=["vol-0000000000000000f"])

# Encrypted snapshots, CopySnapshot.
ev = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a", Encrypted=True)
ec2.get_waiter("volume_available").wait(VolumeIds=[ev["VolumeId"], vid], WaiterConfig=W)
es = ec2.create_snapshot(VolumeId=ev["VolumeId"])
ok(es["KmsKeyId"] == ev["KmsKeyId"] and es["Encrypted"] is True, "KmsKeyId on an encrypted snapshot")
ps = ec2.create_snapshot(VolumeId=vid)
ok("KmsKeyId" not in ps, "no KmsKeyId unencrypted")
fails("IncorrectState", 400, ec2.copy_snapshot, SourceRegion="us-east-1", SourceSnapshotId=ps["SnapshotId"])
ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[es["SnapshotId"], ps["SnapshotId"]], WaiterConfig=W)
dry(ec2.copy_snapshot, SourceRegion="us-east-1", SourceSnapshotId=ps["SnapshotId"])
c = ec2.copy_snapshot(SourceRegion="us-east-1", SourceSnapshotId=ps["SnapshotId"], Description="copy",
                      TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "c", "Value": "1"}]}])
ok(c["SnapshotId"] != ps["SnapshotId"] and c["Tags"] == [{"Key": "c", "Value": "1"}], "copy_snapshot")
ce = ec2.copy_snapshot(SourceRegion="us-east-1", SourceSnapshotId=ps["SnapshotId"], Encrypted=True)
ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[c["SnapshotId"], ce["SnapshotId"]], WaiterConfig=W)
cs = ec2.describe_snapshots(SnapshotIds=[c["SnapshotId"], ce["SnapshotId"]])["Snapshots"]
by = {x["SnapshotId"]: x for x in cs}
ok(by[c["SnapshotId"]]["Description"] == "copy" and by[c["SnapshotId"]]["VolumeSize"] == 1, "copy described")
ok(by[ce["SnapshotId"]]["Encrypted"] is True and by[ce["SnapshotId"]]["KmsKeyId"].startswith("arn:aws:kms:"), "encrypted copy")
fails("InvalidSnapshot.NotFound", 400, ec2.copy_snapshot, SourceRegion="us-east-1", SourceSnapshotId="snap-0000000000000000f")
fails("InvalidSnapshot.NotFound", 400, ec2.copy_snapshot, SourceRegion="eu-west-1", SourceSnapshotId=ps["SnapshotId"])
eu = boto3.client("ec2", **{**KW, "region_name": "eu-west-1"})
x = eu.copy_snapshot(SourceRegion="us-east-1", SourceSnapshotId=ps["SnapshotId"])
eu.get_waiter("snapshot_completed").wait(SnapshotIds=[x["SnapshotId"]], WaiterConfig=W)
ok(True, "cross-region copy completes in the destination region")
rv = ec2.create_volume(SnapshotId=c["SnapshotId"], AvailabilityZone="us-east-1b")
ec2.get_waiter("volume_available").wait(VolumeIds=[rv["VolumeId"]], WaiterConfig=W)
ok(True, "a volume restores from a copy")
ec2.delete_snapshot(SnapshotId=ps["SnapshotId"])
rv2 = ec2.create_volume(SnapshotId=c["SnapshotId"], AvailabilityZone="us-east-1b")
ec2.get_waiter("volume_available").wait(VolumeIds=[rv2["VolumeId"]], WaiterConfig=W)
ok(True, "the copy outlives its source")

# DeregisterImage.
ami = ec2.create_image(InstanceId=iid, Name="to-go", NoReboot=True)["ImageId"]
ec2.get_waiter("image_available").wait(ImageIds=[ami], WaiterConfig=W)
snap = ec2.describe_images(ImageIds=[ami])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
dry(ec2.deregister_image, ImageId=ami)
fails("AuthFailure", 401, ec2.deregister_image, ImageId=UBUNTU)
d = ec2.deregister_image(ImageId=ami, DeleteAssociatedSnapshots=True)
ok(d["Return"] is True and d["DeleteSnapshotResults"] == [{"SnapshotId": snap, "ReturnCode": "success"}], "deregister_image with snapshots")
fails("InvalidAMIID.NotFound", 400, ec2.describe_images, ImageIds=[ami])
fails("InvalidSnapshot.NotFound", 400, ec2.describe_snapshots, SnapshotIds=[snap])
ami2 = ec2.create_image(InstanceId=iid, Name="keep-snaps", NoReboot=True)["ImageId"]
ok(ec2.deregister_image(ImageId=ami2)["Return"] is True, "deregister_image")
ok(ec2.describe_images(Owners=["self"])["Images"] == [], "no image left")
fails("InvalidAMIID.NotFound", 400, ec2.deregister_image, ImageId=ami2)

# Idempotency tokens.
a = ec2.create_volume(Size=2, AvailabilityZone="us-east-1a", ClientToken="tok-vol-1")
b = ec2.create_volume(Size=2, AvailabilityZone="us-east-1a", ClientToken="tok-vol-1")
ok(a["VolumeId"] == b["VolumeId"], "create_volume ClientToken: the same volume again")
fails("IdempotentParameterMismatch", 400, ec2.create_volume, Size=3, AvailabilityZone="us-east-1a", ClientToken="tok-vol-1")
ok(ec2.create_volume(Size=2, AvailabilityZone="us-east-1a")["VolumeId"] != a["VolumeId"], "no token: a new volume")
r1 = ec2.run_instances(ImageId=UBUNTU, InstanceType="t3.micro", MinCount=2, MaxCount=2, ClientToken="tok-run-1")
r2 = ec2.run_instances(ImageId=UBUNTU, InstanceType="t3.micro", MinCount=2, MaxCount=2, ClientToken="tok-run-1")
ok(r1["ReservationId"] == r2["ReservationId"]
   and [i["InstanceId"] for i in r1["Instances"]] == [i["InstanceId"] for i in r2["Instances"]], "run_instances ClientToken")
ok(r1["Instances"][0]["ClientToken"] == "tok-run-1", "ClientToken shown")
ec2.terminate_instances(InstanceIds=[i["InstanceId"] for i in r1["Instances"]])

# STS through the CLI.
p = aws("sts", "get-caller-identity", "--query", "Account", "--output", "text")
ok(p.returncode == 0 and p.stdout == "123456789012\n", f"aws sts get-caller-identity ({p.stderr.strip()})")

# The moto reset endpoint.
req = urllib.request.Request(URL.rstrip("/") + "/moto-api/reset", data=b"", method="POST")
with urllib.request.urlopen(req) as resp:
    ok(resp.status == 200, "POST /moto-api/reset")
ok(ec2.describe_volumes()["Volumes"] == [] and ec2.describe_instances()["Reservations"] == []
   and ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"] == [], "reset forgets everything")
ok(ec2.describe_images(ImageIds=[UBUNTU])["Images"][0]["State"] == "available", "the catalog stays")
v = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")
ok(v["State"] == "creating", "usable after reset")

print(f"{passed} passed, 0 failed")
