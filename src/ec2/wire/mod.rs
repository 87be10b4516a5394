//! The model as the EC2 API returns it: keys and nesting of its
//! responses,
//! in the member order of botocore's service model (which is the order the
//! real CLI prints; checked against aws-cli 1.45 / botocore 1.43 fed the
//! same responses from a local endpoint). Timestamps as CLI v2 prints them.

pub mod json;

use crate::ec2::guest;
use crate::ec2::instances::{CheckStatus, InstanceStatus};
use crate::ec2::model::{
    Attachment, Image, Instance, InstanceState, Modification, OWNER_ID, Snapshot, State, Tag,
    Volume,
};
use crate::ec2::network;
use crate::ec2::time::Millis;
use crate::ec2::types::VolumeType;
use json::{J, Obj};

/// `[{"Key": .., "Value": ..}]`.
pub fn tags(t: &[Tag]) -> J {
    J::Arr(
        t.iter()
            .map(|t| Obj::new().put("Key", &t.key).put("Value", &t.value).done())
            .collect(),
    )
}

fn opt_tags(t: &[Tag]) -> Option<J> {
    (!t.is_empty()).then(|| tags(t))
}

/// A volume; `with_attachments` for DescribeVolumes (CreateVolume's
/// response has no attachment set).
pub fn volume(v: &Volume, with_attachments: bool) -> J {
    // CreateVolume answers an empty `tagSet` for an untagged volume (the
    // CLI prints `"Tags": []`); DescribeVolumes leaves it out.
    let t = if with_attachments {
        opt_tags(&v.tags)
    } else {
        Some(tags(&v.tags))
    };
    Obj::new()
        .opt("Iops", v.shown_iops())
        .opt("Tags", t)
        .put("VolumeType", v.volume_type.as_str())
        .put("MultiAttachEnabled", v.multi_attach)
        .opt("Throughput", v.throughput)
        .put("VolumeId", &v.id)
        .put("Size", v.size)
        .put("SnapshotId", v.snapshot_id.clone().unwrap_or_default())
        .put("AvailabilityZone", &v.az)
        .put("State", v.state.as_str())
        .put("CreateTime", v.create_time.to_cli())
        .opt(
            "Attachments",
            with_attachments.then(|| {
                J::Arr(
                    v.attachments
                        .iter()
                        .map(|a| attachment(&v.id, a, true))
                        .collect(),
                )
            }),
        )
        .put("Encrypted", v.encrypted)
        .opt("KmsKeyId", v.kms_key_id.clone())
        .done()
}

/// An attachment (`with_dot`: DescribeVolumes shows DeleteOnTermination,
/// the Attach/DetachVolume responses do not).
pub fn attachment(volume_id: &str, a: &Attachment, with_dot: bool) -> J {
    Obj::new()
        .opt(
            "DeleteOnTermination",
            with_dot.then_some(a.delete_on_termination),
        )
        .put("VolumeId", volume_id)
        .put("InstanceId", &a.instance_id)
        .put("Device", &a.device)
        .put("State", a.state.as_str())
        .put("AttachTime", a.attach_time.whole_seconds().to_cli())
        .done()
}

/// A volume modification at `now`.
pub fn modification(m: &Modification, now: Millis) -> J {
    Obj::new()
        .put("VolumeId", &m.volume_id)
        .put("ModificationState", m.state.as_str())
        .opt("StatusMessage", m.status_message.clone())
        .put("TargetSize", m.target_size)
        .opt("TargetIops", m.shown_target_iops())
        .put("TargetVolumeType", m.target_type.as_str())
        .opt("TargetThroughput", m.target_throughput)
        .put("TargetMultiAttachEnabled", m.target_multi_attach)
        .put("OriginalSize", m.original_size)
        .opt("OriginalIops", m.original_iops)
        .put("OriginalVolumeType", m.original_type.as_str())
        .opt("OriginalThroughput", m.original_throughput)
        .put("OriginalMultiAttachEnabled", m.original_multi_attach)
        .put("Progress", m.progress(now))
        .put("StartTime", m.start_time.whole_seconds().to_cli())
        .opt("EndTime", m.end_time.map(|t| t.whole_seconds().to_cli()))
        .done()
}

/// CreateSnapshot's response: `Progress` is empty, `Tags` always there.
pub fn snapshot_created(s: &Snapshot) -> J {
    Obj::new()
        .put("Tags", tags(&s.tags))
        .put("SnapshotId", &s.id)
        .put("VolumeId", &s.volume_id)
        .put("State", s.state.as_str())
        .put("StartTime", s.start_time.whole_seconds().to_cli())
        .put("Progress", "")
        .put("OwnerId", &s.owner_id)
        .put("Description", &s.description)
        .put("VolumeSize", s.volume_size)
        .put("Encrypted", s.encrypted)
        .opt("KmsKeyId", s.kms_key_id.clone())
        .done()
}

/// A snapshot in DescribeSnapshots.
pub fn snapshot(s: &Snapshot, progress: String) -> J {
    Obj::new()
        .opt("OwnerAlias", s.owner_alias.clone())
        .opt("Tags", opt_tags(&s.tags))
        .put("StorageTier", "standard")
        .put("SnapshotId", &s.id)
        .put("VolumeId", &s.volume_id)
        .put("State", s.state.as_str())
        .put("StartTime", s.start_time.whole_seconds().to_cli())
        .put("Progress", progress)
        .put("OwnerId", &s.owner_id)
        .put("Description", &s.description)
        .put("VolumeSize", s.volume_size)
        .put("Encrypted", s.encrypted)
        .opt("KmsKeyId", s.kms_key_id.clone())
        .done()
}

fn state_obj(s: InstanceState) -> J {
    Obj::new()
        .put("Code", s.code())
        .put("Name", s.as_str())
        .done()
}

/// A state change of Start/Stop/TerminateInstances.
pub fn state_change(id: &str, current: InstanceState, previous: InstanceState) -> J {
    Obj::new()
        .put("InstanceId", id)
        .put("CurrentState", state_obj(current))
        .put("PreviousState", state_obj(previous))
        .done()
}

/// `StateReason` of an instance: `pending` while it starts, the user's
/// shutdown once stopping, stopped or terminated, none while running.
pub fn state_reason(i: &Instance) -> Option<(&'static str, &'static str)> {
    match i.state {
        InstanceState::Pending => Some(("pending", "pending")),
        InstanceState::Running => None,
        InstanceState::Stopping
        | InstanceState::Stopped
        | InstanceState::ShuttingDown
        | InstanceState::Terminated => Some((
            "Client.UserInitiatedShutdown",
            "Client.UserInitiatedShutdown: User initiated shutdown",
        )),
    }
}

/// `StateTransitionReason`: when the user stopped or terminated it.
pub fn state_transition_reason(i: &Instance) -> String {
    let stopped = matches!(
        i.state,
        InstanceState::Stopping
            | InstanceState::Stopped
            | InstanceState::ShuttingDown
            | InstanceState::Terminated
    );
    if stopped {
        let (y, mo, d, h, mi, s, _) = i.state_changed.civil();
        format!("User initiated ({y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} GMT)")
    } else {
        String::new()
    }
}

/// The default security group as an instance lists it.
fn security_groups(region: &str) -> J {
    J::Arr(vec![
        Obj::new()
            .put("GroupId", network::security_group_id(region))
            .put("GroupName", network::SECURITY_GROUP_NAME)
            .done(),
    ])
}

/// The instance's primary network interface in the default subnet.
fn network_interface(i: &Instance) -> J {
    let region = crate::ec2::model::region_of(&i.az);
    let dns = network::instance_dns_name(i);
    Obj::new()
        .put(
            "Attachment",
            Obj::new()
                .put("AttachTime", i.launch_time.whole_seconds().to_cli())
                .put("AttachmentId", network::eni_attachment_id(&i.id))
                .put("DeleteOnTermination", true)
                .put("DeviceIndex", 0u64)
                .put("Status", "attached")
                .put("NetworkCardIndex", 0u64)
                .done(),
        )
        .put("Description", "")
        .put("Groups", security_groups(region))
        .put("Ipv6Addresses", J::Arr(Vec::new()))
        .put("MacAddress", network::mac_address(&i.id))
        .put("NetworkInterfaceId", network::eni_id(&i.id))
        .put("OwnerId", OWNER_ID)
        .put("PrivateDnsName", dns.clone())
        .put("PrivateIpAddress", &i.private_ip)
        .put(
            "PrivateIpAddresses",
            J::Arr(vec![
                Obj::new()
                    .put("Primary", true)
                    .put("PrivateDnsName", dns)
                    .put("PrivateIpAddress", &i.private_ip)
                    .done(),
            ]),
        )
        .put("SourceDestCheck", true)
        .put("Status", "in-use")
        .put("SubnetId", network::subnet_id(&i.az))
        .put("VpcId", network::vpc_id(region))
        .put("InterfaceType", "interface")
        .done()
}

/// An instance's block device mapping: its attached volumes.
fn instance_bdm(st: &State, i: &Instance) -> Vec<J> {
    st.attached_to(&i.id)
        .iter()
        .map(|(v, a)| {
            Obj::new()
                .put("DeviceName", &a.device)
                .put(
                    "Ebs",
                    Obj::new()
                        .put("AttachTime", a.attach_time.whole_seconds().to_cli())
                        .put("DeleteOnTermination", a.delete_on_termination)
                        .put("Status", a.state.as_str())
                        .put("VolumeId", &v.id)
                        .done(),
                )
                .done()
        })
        .collect()
}

fn check_summary(c: CheckStatus) -> J {
    let details = match c.reachability {
        Some(r) => vec![
            Obj::new()
                .put("Name", "reachability")
                .put("Status", r)
                .done(),
        ],
        None => Vec::new(),
    };
    Obj::new()
        .put("Details", J::Arr(details))
        .put("Status", c.status)
        .done()
}

/// One row of DescribeInstanceStatus.
pub fn instance_status(r: &InstanceStatus) -> J {
    let i = &r.instance;
    let zone_id = crate::ec2::zones::describe_availability_zones(
        crate::ec2::model::region_of(&i.az),
        std::slice::from_ref(&i.az),
    )
    .ok()
    .and_then(|z| z.into_iter().next())
    .map(|z| z.id);
    Obj::new()
        .put("AvailabilityZone", &i.az)
        .opt("AvailabilityZoneId", zone_id)
        .put("Events", J::Arr(Vec::new()))
        .put("InstanceId", &i.id)
        .put("InstanceState", state_obj(i.state))
        .put("InstanceStatus", check_summary(r.instance_check))
        .put("SystemStatus", check_summary(r.check))
        .put("AttachedEbsStatus", check_summary(r.check))
        .done()
}

fn value_of(v: impl Into<J>) -> J {
    Obj::new().put("Value", v).done()
}

/// DescribeInstanceAttribute's answer for `attribute` (one the caller
/// checked is an attribute EC2 has): the instance id and one member.
pub fn instance_attribute(st: &State, i: &Instance, attribute: &str) -> J {
    let region = crate::ec2::model::region_of(&i.az);
    let nitro = guest::hypervisor(&i.instance_type) == guest::Hypervisor::Nitro;
    let (key, v): (&str, J) = match attribute {
        "blockDeviceMapping" => ("BlockDeviceMappings", J::Arr(instance_bdm(st, i))),
        "disableApiTermination" => ("DisableApiTermination", value_of(i.disable_api_termination)),
        "enaSupport" => ("EnaSupport", value_of(true)),
        "enclaveOptions" => ("EnclaveOptions", Obj::new().put("Enabled", false).done()),
        "ebsOptimized" => ("EbsOptimized", value_of(nitro)),
        "instanceInitiatedShutdownBehavior" => {
            ("InstanceInitiatedShutdownBehavior", value_of("stop"))
        }
        "instanceType" => ("InstanceType", value_of(i.instance_type.as_str())),
        "kernel" => ("KernelId", Obj::new().done()),
        "productCodes" => ("ProductCodes", J::Arr(Vec::new())),
        "ramdisk" => ("RamdiskId", Obj::new().done()),
        "rootDeviceName" => ("RootDeviceName", value_of(i.root_device_name.as_str())),
        "sourceDestCheck" => ("SourceDestCheck", value_of(true)),
        "sriovNetSupport" => ("SriovNetSupport", value_of("simple")),
        "userData" => (
            "UserData",
            match &i.user_data {
                Some(d) => value_of(d.as_str()),
                None => Obj::new().done(),
            },
        ),
        "disableApiStop" => ("DisableApiStop", value_of(false)),
        _ => ("Groups", security_groups(region)),
    };
    // botocore's member order puts Groups last and InstanceId in the
    // middle (after EbsOptimized).
    let before_id = matches!(
        key,
        "BlockDeviceMappings"
            | "DisableApiTermination"
            | "EnaSupport"
            | "EnclaveOptions"
            | "EbsOptimized"
    );
    if before_id {
        Obj::new().put(key, v).put("InstanceId", &i.id).done()
    } else {
        Obj::new().put("InstanceId", &i.id).put(key, v).done()
    }
}

/// An instance. `launching`: RunInstances' response, where the volumes are
/// not attached yet (an empty mapping, as AWS answers).
pub fn instance(st: &State, i: &Instance, launching: bool) -> J {
    let bdm: Vec<J> = if launching {
        Vec::new()
    } else {
        instance_bdm(st, i)
    };
    let region = crate::ec2::model::region_of(&i.az);
    // A terminated instance has lost its interface, groups and addresses.
    let gone = i.state == InstanceState::Terminated;
    let running = matches!(i.state, InstanceState::Pending | InstanceState::Running);
    Obj::new()
        .put("Architecture", &i.architecture)
        .put("BlockDeviceMappings", J::Arr(bdm))
        .put("ClientToken", i.client_token.clone().unwrap_or_default())
        .put(
            "EbsOptimized",
            guest::hypervisor(&i.instance_type) == guest::Hypervisor::Nitro,
        )
        .put("EnaSupport", true)
        .put("Hypervisor", "xen")
        .put(
            "NetworkInterfaces",
            J::Arr(if gone {
                Vec::new()
            } else {
                vec![network_interface(i)]
            }),
        )
        .put("RootDeviceName", &i.root_device_name)
        .put("RootDeviceType", "ebs")
        .put(
            "SecurityGroups",
            if gone {
                J::Arr(Vec::new())
            } else {
                security_groups(region)
            },
        )
        .put("SourceDestCheck", true)
        .opt(
            "StateReason",
            state_reason(i).map(|(c, m)| Obj::new().put("Code", c).put("Message", m).done()),
        )
        .opt("Tags", opt_tags(&i.tags))
        .put("VirtualizationType", "hvm")
        .put("PlatformDetails", "Linux/UNIX")
        .put("UsageOperation", "RunInstances")
        .put(
            "UsageOperationUpdateTime",
            i.launch_time.whole_seconds().to_cli(),
        )
        .put("InstanceId", &i.id)
        .put("ImageId", &i.image_id)
        .put("State", state_obj(i.state))
        .put("PrivateDnsName", network::instance_dns_name(i))
        .put("PublicDnsName", "")
        .put("StateTransitionReason", state_transition_reason(i))
        .opt("KeyName", i.key_name.clone())
        .put("AmiLaunchIndex", i.launch_index)
        .put("ProductCodes", J::Arr(Vec::new()))
        .put("InstanceType", &i.instance_type)
        .put("LaunchTime", i.launch_time.whole_seconds().to_cli())
        .put(
            "Placement",
            Obj::new()
                .put("GroupName", "")
                .put("Tenancy", "default")
                .put("AvailabilityZone", &i.az)
                .done(),
        )
        .put("Monitoring", Obj::new().put("State", "disabled").done())
        .opt("SubnetId", (!gone).then(|| network::subnet_id(&i.az)))
        .opt("VpcId", (!gone).then(|| network::vpc_id(region)))
        .opt(
            "PrivateIpAddress",
            (running || i.state == InstanceState::Stopped || i.state == InstanceState::Stopping)
                .then(|| i.private_ip.clone()),
        )
        .done()
}

/// A reservation holding `instances`.
pub fn reservation(reservation_id: &str, instances: Vec<J>) -> J {
    Obj::new()
        .put("ReservationId", reservation_id)
        .put("OwnerId", OWNER_ID)
        .put("Groups", J::Arr(Vec::new()))
        .put("Instances", J::Arr(instances))
        .done()
}

/// An AMI. `CreationDate` is a string in the API, so it keeps the wire
/// format even in CLI v2.
pub fn image(img: &Image) -> J {
    let bdm: Vec<J> = img
        .bdm
        .iter()
        .map(|b| {
            let gp3 = b.volume_type == VolumeType::Gp3;
            Obj::new()
                .put(
                    "Ebs",
                    Obj::new()
                        .put("DeleteOnTermination", b.delete_on_termination)
                        .opt(
                            "Iops",
                            b.iops.filter(|_| gp3 || b.volume_type.reports_iops()),
                        )
                        .put("SnapshotId", &b.snapshot_id)
                        .put("VolumeSize", b.volume_size)
                        .put("VolumeType", b.volume_type.as_str())
                        .opt("Throughput", b.throughput)
                        .put("Encrypted", b.encrypted)
                        .done(),
                )
                .put("DeviceName", &b.device)
                .done()
        })
        .collect();
    let location = match &img.owner_alias {
        Some(a) => format!("{a}/{}", img.name),
        None => format!("{}/{}", img.owner_id, img.name),
    };
    Obj::new()
        .put("PlatformDetails", "Linux/UNIX")
        .put("UsageOperation", "RunInstances")
        .put("BlockDeviceMappings", J::Arr(bdm))
        .opt("Description", img.description.clone())
        .put("EnaSupport", true)
        .put("Hypervisor", "xen")
        .opt("ImageOwnerAlias", img.owner_alias.clone())
        .put("Name", &img.name)
        .put("RootDeviceName", &img.root_device_name)
        .put("RootDeviceType", "ebs")
        .put("SriovNetSupport", "simple")
        .opt("Tags", opt_tags(&img.tags))
        .put("VirtualizationType", "hvm")
        .opt("SourceInstanceId", img.source_instance_id.clone())
        .put("ImageId", &img.id)
        .put("ImageLocation", location)
        .put("State", &img.state)
        .put("OwnerId", &img.owner_id)
        .put("CreationDate", img.creation_date.to_wire())
        .put("Public", img.public)
        .put("Architecture", &img.architecture)
        .put("ImageType", "machine")
        .done()
}

/// One instance type in DescribeInstanceTypes, members in botocore's
/// order (a metal size names no hypervisor, as EC2 answers).
pub fn instance_type(t: &crate::ec2::instance_types::InstanceTypeInfo) -> J {
    use crate::ec2::instance_types as it;
    let nitro = t.hypervisor == guest::Hypervisor::Nitro;
    let strs = |v: Vec<String>| J::Arr(v.into_iter().map(J::Str).collect());
    Obj::new()
        .put("InstanceType", t.name.as_str())
        .put("CurrentGeneration", t.current_generation)
        .put("FreeTierEligible", t.free_tier)
        .put(
            "SupportedUsageClasses",
            strs(vec!["on-demand".to_string(), "spot".to_string()]),
        )
        .put("SupportedRootDeviceTypes", strs(it::root_device_types(t)))
        .put(
            "SupportedVirtualizationTypes",
            strs(it::virtualization_types(t)),
        )
        .put("BareMetal", t.bare_metal)
        .opt(
            "Hypervisor",
            (!t.bare_metal).then_some(if nitro { "nitro" } else { "xen" }),
        )
        .put(
            "ProcessorInfo",
            Obj::new()
                .put(
                    "SupportedArchitectures",
                    J::Arr(t.architectures.iter().map(|a| J::from(*a)).collect()),
                )
                .done(),
        )
        .put(
            "VCpuInfo",
            Obj::new().put("DefaultVCpus", u64::from(t.vcpus)).done(),
        )
        .put(
            "MemoryInfo",
            Obj::new().put("SizeInMiB", t.memory_mib).done(),
        )
        .put("InstanceStorageSupported", t.instance_storage)
        .put(
            "EbsInfo",
            Obj::new()
                .put("EbsOptimizedSupport", it::ebs_optimized_support(t))
                .put("EncryptionSupport", "supported")
                .put(
                    "NvmeSupport",
                    if nitro { "required" } else { "unsupported" },
                )
                .done(),
        )
        .put("BurstablePerformanceSupported", t.burstable)
        .done()
}

/// One zone in DescribeAvailabilityZones.
pub fn availability_zone(z: &crate::ec2::zones::Zone) -> J {
    Obj::new()
        .put("OptInStatus", "opt-in-not-required")
        .put("Messages", J::Arr(Vec::new()))
        .put("RegionName", z.region.as_str())
        .put("ZoneName", z.name.as_str())
        .put("ZoneId", z.id.as_str())
        .put("GroupName", z.region.as_str())
        .put("NetworkBorderGroup", z.region.as_str())
        .put("ZoneType", "availability-zone")
        .put("State", "available")
        .done()
}
