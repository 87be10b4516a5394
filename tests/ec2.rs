//! The cloud side (issue 5): every rule and error of volumes, their types,
//! modifications and attachments with AWS's text, the AWS CLI output shapes, the modification state
//! machine, DeleteOnTermination, snapshots, waiters and concurrency.

#![allow(clippy::unwrap_used)]

mod common;
mod ec2_util;

use common::{stderr, stdout};
use ec2_util::{Cloud, normalise};

const AL2023: &str = "ami-051f8a213df8bc089";
const UBUNTU: &str = "ami-080e1f13689e07408";
const AL2: &str = "ami-0a3c3a20c09d6f377";

// ---------------------------------------------------------------------
// Volume type rules and CreateVolume errors

#[test]
fn create_volume_defaults_to_gp2_with_baseline_iops() {
    let c = Cloud::new();
    let v = c.ok(&[
        "create-volume",
        "--size",
        "100",
        "--availability-zone",
        "us-east-1a",
    ]);
    assert_eq!(v["VolumeType"], "gp2");
    assert_eq!(v["Iops"], 300);
    assert_eq!(v["State"], "creating");
    assert!(v.get("Throughput").is_none());
    let g = c.ok(&[
        "create-volume",
        "--size",
        "10",
        "--volume-type",
        "gp3",
        "--availability-zone",
        "us-east-1a",
    ]);
    assert_eq!(
        (g["Iops"].as_u64(), g["Throughput"].as_u64()),
        (Some(3000), Some(125))
    );
    // The image is a sparse file of the volume's size.
    let id = v["VolumeId"].as_str().unwrap();
    let img = c.image_of(id);
    assert_eq!(std::fs::metadata(&img).unwrap().len(), 100 << 30);
    assert!(common::allocated(&img) < 1 << 20);
}

#[test]
fn create_volume_needs_size_or_snapshot() {
    Cloud::new().api_err(
        &["create-volume", "--availability-zone", "us-east-1a"],
        "CreateVolume",
        "MissingParameter",
        "The request must contain the parameter size/snapshot",
    );
}

#[test]
fn create_volume_unknown_zone() {
    Cloud::new().api_err(
        &[
            "create-volume",
            "--size",
            "8",
            "--availability-zone",
            "us-west-2a",
        ],
        "CreateVolume",
        "InvalidZone.NotFound",
        "The zone 'us-west-2a' does not exist.",
    );
}

#[test]
fn size_limits_per_type() {
    // tmpfs: the host's ext4 cannot hold a 64 TiB sparse file.
    let c = Cloud::on_tmpfs();
    let az = ["--availability-zone", "us-east-1a"];
    let create = |extra: &[&'static str]| {
        let mut a = vec!["create-volume"];
        a.extend_from_slice(&az);
        a.extend_from_slice(extra);
        a
    };
    c.api_err(
        &create(&["--size", "20000"]),
        "CreateVolume",
        "InvalidParameterValue",
        "Volume of 20000GiB is too large for volume type gp2; maximum is 16384GiB",
    );
    c.api_err(
        &create(&["--size", "100", "--volume-type", "st1"]),
        "CreateVolume",
        "InvalidParameterValue",
        "The volume size is invalid for st1 volumes: 100 GiB. st1 volumes must be at least 125 GiB in size. Please specify a volume size above the minimum limit.",
    );
    c.api_err(
        &create(&["--size", "100", "--volume-type", "sc1"]),
        "CreateVolume",
        "InvalidParameterValue",
        "The volume size is invalid for sc1 volumes: 100 GiB. sc1 volumes must be at least 125 GiB in size. Please specify a volume size above the minimum limit.",
    );
    c.api_err(
        &create(&["--size", "2000", "--volume-type", "standard"]),
        "CreateVolume",
        "InvalidParameterValue",
        "Volume of 2000GiB is too large for volume type standard; maximum is 1024GiB",
    );
    c.api_err(
        &create(&["--size", "70000", "--volume-type", "gp3"]),
        "CreateVolume",
        "InvalidParameterValue",
        "Volume of 70000GiB is too large for volume type gp3; maximum is 65536GiB",
    );
    // The current limits: gp3 and io2 up to 64 TiB.
    c.ok(&create(&["--size", "65536", "--volume-type", "gp3"]));
    c.ok(&create(&["--size", "125", "--volume-type", "st1"]));
}

#[test]
fn iops_ranges_and_ratios() {
    let c = Cloud::new();
    let mk = |extra: &[&'static str]| {
        let mut a = vec!["create-volume", "--availability-zone", "us-east-1a"];
        a.extend_from_slice(extra);
        a
    };
    c.api_err(
        &mk(&["--size", "10", "--volume-type", "io1", "--iops", "90"]),
        "CreateVolume",
        "InvalidParameterValue",
        "Volume iops of 90 is too low; minimum is 100.",
    );
    c.api_err(
        &mk(&["--size", "2000", "--volume-type", "io1", "--iops", "70000"]),
        "CreateVolume",
        "InvalidParameterValue",
        "Volume iops of 70000 is too high; maximum is 64000.",
    );
    c.api_err(
        &mk(&["--size", "2000", "--volume-type", "gp3", "--iops", "90000"]),
        "CreateVolume",
        "InvalidParameterValue",
        "Volume iops of 90000 is too high; maximum is 80000.",
    );
    c.api_err(
        &mk(&["--size", "8", "--volume-type", "gp3", "--iops", "6000"]),
        "CreateVolume",
        "InvalidParameterValue",
        "Iops to volume size ratio of 750.000000 is too high; maximum is 500",
    );
    c.api_err(
        &mk(&["--size", "10", "--volume-type", "io1", "--iops", "600"]),
        "CreateVolume",
        "InvalidParameterValue",
        "Iops to volume size ratio of 60.000000 is too high; maximum is 50",
    );
    c.api_err(
        &mk(&["--size", "10", "--volume-type", "io2", "--iops", "20000"]),
        "CreateVolume",
        "InvalidParameterValue",
        "Iops to volume size ratio of 2000.000000 is too high; maximum is 1000",
    );
    // 3,000 IOPS on gp3 at any size; io2 at 1000:1.
    c.ok(&mk(&[
        "--size",
        "1",
        "--volume-type",
        "gp3",
        "--iops",
        "3000",
    ]));
    c.ok(&mk(&[
        "--size",
        "10",
        "--volume-type",
        "io2",
        "--iops",
        "10000",
    ]));
}

#[test]
fn throughput_ranges_and_ratio() {
    let c = Cloud::new();
    let mk = |extra: &[&'static str]| {
        let mut a = vec![
            "create-volume",
            "--availability-zone",
            "us-east-1a",
            "--volume-type",
            "gp3",
            "--size",
            "100",
        ];
        a.extend_from_slice(extra);
        a
    };
    c.api_err(
        &mk(&["--iops", "3000", "--throughput", "1000"]),
        "CreateVolume",
        "InvalidParameterValue",
        "Throughput (MiBps) to iops ratio of 0.333333 is too high; maximum is 0.250000 MiBps per iops",
    );
    c.api_err(
        &mk(&["--throughput", "100"]),
        "CreateVolume",
        "InvalidParameterValue",
        "Volume throughput of 100 is too low; minimum is 125.",
    );
    c.api_err(
        &mk(&["--iops", "16000", "--throughput", "2500"]),
        "CreateVolume",
        "InvalidParameterValue",
        "Volume throughput of 2500 is too high; maximum is 2000.",
    );
    let v = c.ok(&mk(&["--iops", "4000", "--throughput", "1000"]));
    assert_eq!(v["Throughput"], 1000);
}

#[test]
fn parameters_per_type() {
    let c = Cloud::new();
    let mk = |extra: &[&'static str]| {
        let mut a = vec![
            "create-volume",
            "--availability-zone",
            "us-east-1a",
            "--size",
            "200",
        ];
        a.extend_from_slice(extra);
        a
    };
    c.api_err(
        &mk(&["--iops", "300"]),
        "CreateVolume",
        "InvalidParameterCombination",
        "The parameter iops is not supported for gp2 volumes.",
    );
    c.api_err(
        &mk(&["--volume-type", "st1", "--iops", "300"]),
        "CreateVolume",
        "InvalidParameterCombination",
        "The parameter iops is not supported for st1 volumes.",
    );
    c.api_err(
        &mk(&["--volume-type", "io1"]),
        "CreateVolume",
        "InvalidParameterCombination",
        "The parameter iops must be specified for io1 volumes.",
    );
    c.api_err(
        &mk(&["--volume-type", "io2"]),
        "CreateVolume",
        "InvalidParameterCombination",
        "The parameter iops must be specified for io2 volumes.",
    );
    c.api_err(
        &mk(&["--throughput", "200"]),
        "CreateVolume",
        "InvalidParameterCombination",
        "The throughput parameter is not supported for gp2 volumes.",
    );
    c.api_err(
        &mk(&[
            "--volume-type",
            "io1",
            "--iops",
            "1000",
            "--throughput",
            "200",
        ]),
        "CreateVolume",
        "InvalidParameterCombination",
        "The throughput parameter is not supported for io1 volumes.",
    );
}

#[test]
fn dry_run_answers_dry_run_operation() {
    let c = Cloud::new();
    c.api_err(
        &[
            "create-volume",
            "--size",
            "8",
            "--availability-zone",
            "us-east-1a",
            "--dry-run",
        ],
        "CreateVolume",
        "DryRunOperation",
        "Request would have succeeded, but DryRun flag is set.",
    );
    assert_eq!(
        c.ok(&["describe-volumes"])["Volumes"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let v = c.volume(&["--size", "8"]);
    c.api_err(
        &[
            "modify-volume",
            "--volume-id",
            &v,
            "--size",
            "9",
            "--dry-run",
        ],
        "ModifyVolume",
        "DryRunOperation",
        "Request would have succeeded, but DryRun flag is set.",
    );
    c.api_err(
        &["describe-volumes-modifications", "--volume-ids", &v],
        "DescribeVolumesModifications",
        "InvalidVolumeModification.NotFound",
        &format!("Modification for volume '{v}' does not exist."),
    );
    // DescribeVolumes answers a dry run once its ids are known to exist.
    c.api_err(
        &["describe-volumes", "--volume-ids", &v, "--dry-run"],
        "DescribeVolumes",
        "DryRunOperation",
        "Request would have succeeded, but DryRun flag is set.",
    );
    c.api_err(
        &[
            "describe-volumes",
            "--volume-ids",
            "vol-0123456789abcdef0",
            "--dry-run",
        ],
        "DescribeVolumes",
        "InvalidVolume.NotFound",
        "The volume 'vol-0123456789abcdef0' does not exist.",
    );
}

// ---------------------------------------------------------------------
// Not found

#[test]
fn unknown_ids() {
    let c = Cloud::new();
    c.api_err(
        &["describe-volumes", "--volume-ids", "vol-0123456789abcdef0"],
        "DescribeVolumes",
        "InvalidVolume.NotFound",
        "The volume 'vol-0123456789abcdef0' does not exist.",
    );
    c.api_err(
        &["delete-volume", "--volume-id", "vol-0123456789abcdef0"],
        "DeleteVolume",
        "InvalidVolume.NotFound",
        "The volume 'vol-0123456789abcdef0' does not exist.",
    );
    c.api_err(
        &[
            "describe-snapshots",
            "--snapshot-ids",
            "snap-0123456789abcdef0",
        ],
        "DescribeSnapshots",
        "InvalidSnapshot.NotFound",
        "The snapshot 'snap-0123456789abcdef0' does not exist.",
    );
    c.api_err(
        &[
            "create-volume",
            "--availability-zone",
            "us-east-1a",
            "--snapshot-id",
            "snap-0123456789abcdef0",
        ],
        "CreateVolume",
        "InvalidSnapshot.NotFound",
        "The snapshot 'snap-0123456789abcdef0' does not exist.",
    );
    c.api_err(
        &[
            "describe-instances",
            "--instance-ids",
            "i-0123456789abcdef0",
        ],
        "DescribeInstances",
        "InvalidInstanceID.NotFound",
        "The instance ID 'i-0123456789abcdef0' does not exist",
    );
    c.api_err(
        &["run-instances", "--image-id", "ami-0123456789abcdef0"],
        "RunInstances",
        "InvalidAMIID.NotFound",
        "The image id '[ami-0123456789abcdef0]' does not exist",
    );
    c.api_err(
        &["describe-volumes", "--filters", "Name=colour,Values=red"],
        "DescribeVolumes",
        "InvalidParameterValue",
        "The filter 'colour' is invalid",
    );
    // A volume of another region is not found here.
    let v = c.volume(&["--size", "1"]);
    c.api_err(
        &[
            "describe-volumes",
            "--volume-ids",
            &v,
            "--region",
            "eu-west-1",
        ],
        "DescribeVolumes",
        "InvalidVolume.NotFound",
        &format!("The volume '{v}' does not exist."),
    );
}

// ---------------------------------------------------------------------
// ModifyVolume

#[test]
fn modify_volume_cannot_shrink() {
    let c = Cloud::new();
    let v = c.volume(&["--size", "16"]);
    c.api_err(
        &["modify-volume", "--volume-id", &v, "--size", "8"],
        "ModifyVolume",
        "InvalidParameterValue",
        "New size cannot be smaller than existing size",
    );
}

#[test]
fn modify_volume_needs_a_change() {
    let c = Cloud::new();
    let v = c.volume(&["--size", "16"]);
    c.api_err(
        &["modify-volume", "--volume-id", &v],
        "ModifyVolume",
        "InvalidParameterValue",
        "Invalid input: Must specify at least one of size, type, iops, throughput, multi_attach_enabled",
    );
}

#[test]
fn modify_volume_refused_while_previous_one_runs() {
    let c = Cloud::new();
    let v = c.volume(&["--size", "8"]);
    c.ok(&["modify-volume", "--volume-id", &v, "--size", "16"]);
    c.api_err(
        &["modify-volume", "--volume-id", &v, "--size", "20"],
        "ModifyVolume",
        "IncorrectModificationState",
        &format!("Volume {v} cannot be modified in modification state MODIFYING"),
    );
    c.advance("30s");
    c.api_err(
        &["modify-volume", "--volume-id", &v, "--size", "20"],
        "ModifyVolume",
        "IncorrectModificationState",
        &format!("Volume {v} cannot be modified in modification state OPTIMIZING"),
    );
    c.advance("1h");
    c.ok(&["modify-volume", "--volume-id", &v, "--size", "20"]);
}

#[test]
fn modify_volume_rate_rule_four_per_day() {
    let c = Cloud::new();
    let v = c.volume(&["--size", "8"]);
    let start = c.cmd("clock").output().unwrap();
    let start = stdout(&start).lines().next().unwrap().to_string();
    for size in ["9", "10", "11", "12"] {
        c.ok(&["modify-volume", "--volume-id", &v, "--size", size]);
        c.advance("2h");
    }
    // The first was at `start`: the window frees up 24 h after it.
    let t0 = ebsim::ec2::time::Millis::parse(&start).unwrap();
    let until = t0.plus(ebsim::ec2::time::DAY).to_wire();
    c.api_err(
        &["modify-volume", "--volume-id", &v, "--size", "13"],
        "ModifyVolume",
        "VolumeModificationRateExceeded",
        &format!(
            "You've reached the maximum modification rate per volume limit. Wait until {until} before you can issue the next modification request for this volume."
        ),
    );
    // A request that changes nothing also counts, and is also refused.
    c.api_err(
        &["modify-volume", "--volume-id", &v, "--size", "12"],
        "ModifyVolume",
        "VolumeModificationRateExceeded",
        &format!(
            "You've reached the maximum modification rate per volume limit. Wait until {until} before you can issue the next modification request for this volume."
        ),
    );
    c.advance("16h");
    c.ok(&["modify-volume", "--volume-id", &v, "--size", "13"]);
}

#[test]
fn modify_volume_rate_rule_legacy_cooldown() {
    let c = Cloud::new().with_env("EBSIM_MODIFY_RATE", "cooldown-6h");
    let v = c.volume(&["--size", "8"]);
    c.ok(&["modify-volume", "--volume-id", &v, "--size", "9"]);
    c.advance("2h");
    c.api_err(
        &["modify-volume", "--volume-id", &v, "--size", "10"],
        "ModifyVolume",
        "VolumeModificationRateExceeded",
        "You've reached the maximum modification rate per volume limit. Wait at least 6 hours between modifications per EBS volume.",
    );
    c.advance("4h");
    c.ok(&["modify-volume", "--volume-id", &v, "--size", "10"]);
}

#[test]
fn modify_volume_type_rules_and_defaults() {
    let c = Cloud::new();
    let v = c.volume(&["--size", "500"]);
    // gp2 → gp3 keeps at least the gp2 performance.
    let m = c.ok(&["modify-volume", "--volume-id", &v, "--volume-type", "gp3"]);
    let m = &m["VolumeModification"];
    assert_eq!(
        (m["TargetIops"].as_u64(), m["TargetThroughput"].as_u64()),
        (Some(3000), Some(250))
    );
    assert_eq!(
        (m["OriginalIops"].as_u64(), m["OriginalVolumeType"].as_str()),
        (Some(1500), Some("gp2"))
    );
    let w = c.volume(&["--size", "8"]);
    c.api_err(
        &["modify-volume", "--volume-id", &w, "--volume-type", "io1"],
        "ModifyVolume",
        "InvalidParameterValue",
        "Iops to volume size ratio of 375.000000 is too high; maximum is 50",
    );
    c.api_err(
        &["modify-volume", "--volume-id", &w, "--iops", "500"],
        "ModifyVolume",
        "InvalidParameterCombination",
        "The parameter iops is not supported for gp2 volumes.",
    );
    c.api_err(
        &["modify-volume", "--volume-id", &w, "--size", "20000"],
        "ModifyVolume",
        "InvalidParameterValue",
        "Volume of 20000GiB is too large for volume type gp2; maximum is 16384GiB",
    );
}

#[test]
fn root_volume_cannot_become_hdd() {
    let c = Cloud::new();
    let i = c.instance(AL2, "t2.micro");
    let d = c.ok(&["describe-instances", "--instance-ids", &i]);
    let root = d["Reservations"][0]["Instances"][0]["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
        .as_str()
        .unwrap()
        .to_string();
    c.api_err(
        &[
            "modify-volume",
            "--volume-id",
            &root,
            "--volume-type",
            "st1",
            "--size",
            "125",
        ],
        "ModifyVolume",
        "InvalidParameterValue",
        "This volume type is not compatible with root volumes.",
    );
    // Not at launch either.
    c.api_err(
        &[
            "run-instances",
            "--image-id",
            AL2,
            "--instance-type",
            "t2.micro",
            "--block-device-mappings",
            r#"[{"DeviceName":"/dev/xvda","Ebs":{"VolumeType":"st1","VolumeSize":500}}]"#,
        ],
        "RunInstances",
        "InvalidBlockDeviceMapping",
        "This volume type is not compatible with root volumes.",
    );
}

/// The state machine (issue 5 check): 8 → 16 GiB; at each clock step the
/// state and progress, and the image grows exactly when optimizing starts.
#[test]
fn modification_state_machine_and_image_growth() {
    let c = Cloud::new();
    let i = c.instance(UBUNTU, "t2.micro");
    let d = c.ok(&["describe-instances", "--instance-ids", &i]);
    let v = d["Reservations"][0]["Instances"][0]["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
        .as_str()
        .unwrap()
        .to_string();
    let img = c.image_of(&v);
    let len = || std::fs::metadata(&img).unwrap().len();
    let allocated_before = common::allocated(&img);
    assert_eq!(len(), 8 << 30);
    let m = c.ok(&["modify-volume", "--volume-id", &v, "--size", "16"]);
    assert_eq!(m["VolumeModification"]["ModificationState"], "modifying");
    assert_eq!(m["VolumeModification"]["Progress"], 0);
    let step = |adv: &str, state: &str, progress: u64, size: u64, file: u64| {
        if !adv.is_empty() {
            c.advance(adv);
        }
        let d = c.ok(&["describe-volumes-modifications", "--volume-ids", &v]);
        let m = &d["VolumesModifications"][0];
        assert_eq!(m["ModificationState"], state, "after {adv}");
        assert_eq!(m["Progress"].as_u64(), Some(progress), "after {adv}");
        assert_eq!(m["TargetSize"], 16);
        assert_eq!(m["OriginalSize"], 8);
        assert_eq!(
            c.describe_volume(&v)["Size"].as_u64(),
            Some(size),
            "after {adv}"
        );
        assert_eq!(len(), file << 30, "image after {adv}");
        m.clone()
    };
    step("", "modifying", 0, 8, 8);
    step("29s", "modifying", 0, 8, 8);
    // 30 s: optimizing starts, the new size is visible, the file grew.
    step("1s", "optimizing", 0, 16, 16);
    step("15s", "optimizing", 25, 16, 16);
    step("30s", "optimizing", 75, 16, 16);
    let done = step("15s", "completed", 100, 16, 16);
    assert!(done.get("EndTime").is_some());
    // Growing wrote no data.
    assert_eq!(common::allocated(&img), allocated_before);
    // The volume stayed in-use throughout.
    assert_eq!(c.describe_volume(&v)["State"], "in-use");
}

#[test]
fn describe_volumes_modifications_without_ids_lists_latest() {
    let c = Cloud::new();
    let a = c.volume(&["--size", "8"]);
    let _b = c.volume(&["--size", "8"]);
    c.ok(&["modify-volume", "--volume-id", &a, "--size", "9"]);
    c.advance("2h");
    c.ok(&["modify-volume", "--volume-id", &a, "--size", "10"]);
    let d = c.ok(&["describe-volumes-modifications"]);
    let mods = d["VolumesModifications"].as_array().unwrap();
    assert_eq!(mods.len(), 1);
    assert_eq!(mods[0]["TargetSize"], 10);
    let f = c.ok(&[
        "describe-volumes-modifications",
        "--filters",
        "Name=modification-state,Values=completed",
    ]);
    assert_eq!(f["VolumesModifications"].as_array().unwrap().len(), 0);
}

// ---------------------------------------------------------------------
// Attach, detach, delete

#[test]
fn attach_rules() {
    let c = Cloud::new();
    let i = c.instance(AL2023, "t3.micro");
    let v = c.volume(&["--size", "10"]);
    // A volume still `creating` cannot be attached.
    let fresh = c.ok(&[
        "create-volume",
        "--size",
        "1",
        "--availability-zone",
        "us-east-1a",
    ]);
    let fresh = fresh["VolumeId"].as_str().unwrap().to_string();
    c.api_err(
        &[
            "attach-volume",
            "--volume-id",
            &fresh,
            "--instance-id",
            &i,
            "--device",
            "/dev/sdg",
        ],
        "AttachVolume",
        "IncorrectState",
        &format!("{fresh} is not 'available'."),
    );
    // Another zone.
    let far = c.ok(&[
        "create-volume",
        "--size",
        "1",
        "--availability-zone",
        "us-east-1b",
    ]);
    let far = far["VolumeId"].as_str().unwrap().to_string();
    c.advance("1m");
    c.api_err(
        &[
            "attach-volume",
            "--volume-id",
            &far,
            "--instance-id",
            &i,
            "--device",
            "/dev/sdg",
        ],
        "AttachVolume",
        "InvalidVolume.ZoneMismatch",
        &format!("The volume '{far}' is not in the same availability zone as instance '{i}'"),
    );
    // A bad device name.
    c.api_err(
        &["attach-volume", "--volume-id", &v, "--instance-id", &i, "--device", "/dev/sdf1"],
        "AttachVolume",
        "InvalidParameterValue",
        "Value (/dev/sdf1) for parameter device is invalid. /dev/sdf1 is not a valid EBS device name.",
    );
    let a = c.ok(&[
        "attach-volume",
        "--volume-id",
        &v,
        "--instance-id",
        &i,
        "--device",
        "/dev/sdf",
    ]);
    assert_eq!(a["State"], "attaching");
    assert!(a.get("DeleteOnTermination").is_none());
    // Already attached.
    c.api_err(
        &[
            "attach-volume",
            "--volume-id",
            &v,
            "--instance-id",
            &i,
            "--device",
            "/dev/sdh",
        ],
        "AttachVolume",
        "VolumeInUse",
        &format!("{v} is already attached to an instance"),
    );
    // Device taken.
    let w = c.volume(&["--size", "2"]);
    c.api_err(
        &[
            "attach-volume",
            "--volume-id",
            &w,
            "--instance-id",
            &i,
            "--device",
            "/dev/sdf",
        ],
        "AttachVolume",
        "InvalidParameterValue",
        "Invalid value '/dev/sdf' for unixDevice. Attachment point /dev/sdf is already in use",
    );
    c.ok(&["wait", "volume-in-use", "--volume-ids", &v]);
    let d = c.describe_volume(&v);
    assert_eq!(d["State"], "in-use");
    assert_eq!(d["Attachments"][0]["State"], "attached");
    // Attached later: DeleteOnTermination false.
    assert_eq!(d["Attachments"][0]["DeleteOnTermination"], false);
}

#[test]
fn attach_refused_while_modifying() {
    let c = Cloud::new();
    let i = c.instance(AL2023, "t3.micro");
    let v = c.volume(&["--size", "10"]);
    c.ok(&["modify-volume", "--volume-id", &v, "--size", "20"]);
    c.api_err(
        &[
            "attach-volume",
            "--volume-id",
            &v,
            "--instance-id",
            &i,
            "--device",
            "/dev/sdf",
        ],
        "AttachVolume",
        "OperationNotPermitted",
        &format!("Cannot attach volume {v} when it is in modification state: MODIFYING"),
    );
    // Once optimizing it may attach.
    c.advance("30s");
    c.ok(&[
        "attach-volume",
        "--volume-id",
        &v,
        "--instance-id",
        &i,
        "--device",
        "/dev/sdf",
    ]);
}

#[test]
fn attach_to_a_pending_instance_is_refused() {
    let c = Cloud::new();
    let r = c.ok(&[
        "run-instances",
        "--image-id",
        AL2023,
        "--instance-type",
        "t3.micro",
    ]);
    let i = r["Instances"][0]["InstanceId"]
        .as_str()
        .unwrap()
        .to_string();
    let v = c.volume(&["--size", "1"]);
    c.api_err(
        &[
            "attach-volume",
            "--volume-id",
            &v,
            "--instance-id",
            &i,
            "--device",
            "/dev/sdf",
        ],
        "AttachVolume",
        "IncorrectState",
        &format!("Instance '{i}' is not 'running'."),
    );
}

#[test]
fn detach_rules() {
    let c = Cloud::new();
    let i = c.instance(UBUNTU, "t2.micro");
    let d = c.ok(&["describe-instances", "--instance-ids", &i]);
    let root = d["Reservations"][0]["Instances"][0]["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
        .as_str()
        .unwrap()
        .to_string();
    c.api_err(
        &["detach-volume", "--volume-id", &root],
        "DetachVolume",
        "IncorrectState",
        &format!("Unable to detach root volume '{root}' from instance '{i}'"),
    );
    let v = c.volume(&["--size", "1"]);
    c.api_err(
        &["detach-volume", "--volume-id", &v],
        "DetachVolume",
        "IncorrectState",
        &format!("Volume '{v}'is in the 'available' state."),
    );
    c.ok(&[
        "attach-volume",
        "--volume-id",
        &v,
        "--instance-id",
        &i,
        "--device",
        "/dev/sdf",
    ]);
    c.api_err(
        &[
            "detach-volume",
            "--volume-id",
            &v,
            "--instance-id",
            &i,
            "--device",
            "/dev/sdg",
        ],
        "DetachVolume",
        "InvalidAttachment.NotFound",
        &format!("The volume {v} is not attached to instance {i} as device /dev/sdg"),
    );
    c.api_err(
        &["delete-volume", "--volume-id", &v],
        "DeleteVolume",
        "VolumeInUse",
        &format!("Volume {v} is currently attached to {i}"),
    );
    let out = c.ok(&["detach-volume", "--volume-id", &v]);
    assert_eq!(out["State"], "detaching");
    c.ok(&["wait", "volume-available", "--volume-ids", &v]);
    c.ok(&["delete-volume", "--volume-id", &v]);
    assert!(!c.image_of(&v).exists());
    // The root comes off once the instance is stopped.
    c.ok(&["stop-instances", "--instance-ids", &i]);
    c.ok(&["wait", "instance-stopped", "--instance-ids", &i]);
    c.ok(&["detach-volume", "--volume-id", &root]);
    c.ok(&["wait", "volume-available", "--volume-ids", &root]);
}

#[test]
fn detach_of_a_mounted_volume_stays_busy_until_forced() {
    let c = Cloud::new();
    let i = c.instance(UBUNTU, "t2.micro");
    // The root is mounted at / by the image's fstab: stop not needed with --force.
    let d = c.ok(&["describe-instances", "--instance-ids", &i]);
    let root = d["Reservations"][0]["Instances"][0]["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
        .as_str()
        .unwrap()
        .to_string();
    c.ok(&["detach-volume", "--volume-id", &root, "--force"]);
    c.ok(&["wait", "volume-available", "--volume-ids", &root]);
}

// ---------------------------------------------------------------------
// Snapshots — errors; the store is tested below

#[test]
fn volume_from_snapshot_size_rules() {
    let c = Cloud::new();
    let v = c.volume(&["--size", "30"]);
    let s = c.ok(&["create-snapshot", "--volume-id", &v, "--description", "d"]);
    let s = s["SnapshotId"].as_str().unwrap().to_string();
    c.ok(&["wait", "snapshot-completed", "--snapshot-ids", &s]);
    c.api_err(
        &[
            "create-volume",
            "--availability-zone",
            "us-east-1a",
            "--snapshot-id",
            &s,
            "--size",
            "15",
        ],
        "CreateVolume",
        "InvalidParameterValue",
        &format!("Volume of size 15GB is smaller than snapshot '{s}', expect size >= 30GB"),
    );
    let n = c.ok(&[
        "create-volume",
        "--availability-zone",
        "us-east-1a",
        "--snapshot-id",
        &s,
    ]);
    assert_eq!(
        (n["Size"].as_u64(), n["SnapshotId"].as_str()),
        (Some(30), Some(s.as_str()))
    );
    c.api_err(
        &[
            "run-instances",
            "--image-id",
            AL2023,
            "--instance-type",
            "t3.micro",
            "--block-device-mappings",
            &format!("DeviceName=/dev/sdf,Ebs={{SnapshotId={s},VolumeSize=15}}"),
        ],
        "RunInstances",
        "InvalidBlockDeviceMapping",
        &format!("Volume of size 15GB is smaller than snapshot '{s}', expect size >= 30GB"),
    );
    c.api_err(
        &[
            "run-instances",
            "--image-id",
            AL2023,
            "--instance-type",
            "t3.micro",
            "--block-device-mappings",
            "DeviceName=/dev/sdf,Ebs={DeleteOnTermination=true}",
        ],
        "RunInstances",
        "InvalidBlockDeviceMapping",
        "Either snapshot ID or volume size must be provided for: /dev/sdf",
    );
    c.api_err(
        &[
            "run-instances",
            "--image-id",
            AL2023,
            "--instance-type",
            "t3.micro",
            "--block-device-mappings",
            "DeviceName=/dev/sde1,Ebs={VolumeSize=1}",
        ],
        "RunInstances",
        "InvalidBlockDeviceMapping",
        "Invalid device name /dev/sde1",
    );
}

#[test]
fn concurrent_snapshot_limit() {
    let c = Cloud::new();
    let v = c.volume(&["--size", "125", "--volume-type", "st1"]);
    c.ok(&["create-snapshot", "--volume-id", &v]);
    c.api_err(
        &["create-snapshot", "--volume-id", &v],
        "CreateSnapshot",
        "ConcurrentSnapshotLimitExceeded",
        &format!(
            "Maximum number of active snapshots in progress has been reached for volume '{v}'."
        ),
    );
    let g = c.volume(&["--size", "1"]);
    for _ in 0..5 {
        c.ok(&["create-snapshot", "--volume-id", &g]);
    }
    c.api_err(
        &["create-snapshot", "--volume-id", &g],
        "CreateSnapshot",
        "ConcurrentSnapshotLimitExceeded",
        &format!(
            "Maximum number of active snapshots in progress has been reached for volume '{g}'."
        ),
    );
}

// ---------------------------------------------------------------------
// Instances

#[test]
fn instance_state_machine_and_errors() {
    let c = Cloud::new();
    let r = c.ok(&[
        "run-instances",
        "--image-id",
        AL2023,
        "--instance-type",
        "t3.micro",
    ]);
    let inst = &r["Instances"][0];
    assert_eq!(inst["State"]["Name"], "pending");
    assert_eq!(inst["State"]["Code"], 0);
    let i = inst["InstanceId"].as_str().unwrap().to_string();
    c.api_err(
        &["stop-instances", "--instance-ids", &i],
        "StopInstances",
        "IncorrectInstanceState",
        &format!("Instance '{i}' cannot be stopped as it has never reached the 'running' state."),
    );
    c.advance("30s");
    let s = c.ok(&["stop-instances", "--instance-ids", &i]);
    let ch = &s["StoppingInstances"][0];
    assert_eq!(
        (
            ch["CurrentState"]["Code"].as_u64(),
            ch["PreviousState"]["Code"].as_u64()
        ),
        (Some(64), Some(16))
    );
    c.api_err(
        &["start-instances", "--instance-ids", &i],
        "StartInstances",
        "IncorrectInstanceState",
        &format!("The instance '{i}' is not in a state from which it can be started."),
    );
    c.api_err(
        &[
            "modify-instance-attribute",
            "--instance-id",
            &i,
            "--instance-type",
            "Value=m5.large",
        ],
        "ModifyInstanceAttribute",
        "IncorrectInstanceState",
        &format!("The instance '{i}' is not in the 'stopped' state."),
    );
    c.ok(&["wait", "instance-stopped", "--instance-ids", &i]);
    c.api_err(
        &[
            "modify-instance-attribute",
            "--instance-id",
            &i,
            "--instance-type",
            "Value=t4g.micro",
        ],
        "ModifyInstanceAttribute",
        "InvalidInstanceAttributeValue",
        "Modifying the instance type from t3.micro to t4g.micro is not allowed.",
    );
    c.ok(&[
        "modify-instance-attribute",
        "--instance-id",
        &i,
        "--instance-type",
        r#"{"Value": "m5.large"}"#,
    ]);
    let s = c.ok(&["start-instances", "--instance-ids", &i]);
    assert_eq!(s["StartingInstances"][0]["CurrentState"]["Name"], "pending");
    c.ok(&["wait", "instance-running", "--instance-ids", &i]);
    let d = c.ok(&["describe-instances", "--instance-ids", &i]);
    assert_eq!(
        d["Reservations"][0]["Instances"][0]["InstanceType"],
        "m5.large"
    );
    c.ok(&["reboot-instances", "--instance-ids", &i]);
    let t = c.ok(&["terminate-instances", "--instance-ids", &i]);
    assert_eq!(
        t["TerminatingInstances"][0]["CurrentState"]["Name"],
        "shutting-down"
    );
    assert_eq!(t["TerminatingInstances"][0]["CurrentState"]["Code"], 32);
    c.ok(&["wait", "instance-terminated", "--instance-ids", &i]);
    c.api_err(
        &["stop-instances", "--instance-ids", &i],
        "StopInstances",
        "IncorrectInstanceState",
        &format!("This instance '{i}' is not in a state from which it can be stopped."),
    );
    c.api_err(
        &["start-instances", "--instance-ids", &i],
        "StartInstances",
        "IncorrectInstanceState",
        &format!("The instance '{i}' is not in a state from which it can be started."),
    );
    let d = c.ok(&["describe-instances", "--instance-ids", &i]);
    assert_eq!(d["Reservations"][0]["Instances"][0]["State"]["Code"], 48);
    // Terminated instances vanish after a while.
    c.advance("2h");
    c.api_err(
        &["describe-instances", "--instance-ids", &i],
        "DescribeInstances",
        "InvalidInstanceID.NotFound",
        &format!("The instance ID '{i}' does not exist"),
    );
}

#[test]
fn run_instances_checks_type_zone_and_architecture() {
    let c = Cloud::new();
    c.api_err(
        &[
            "run-instances",
            "--image-id",
            AL2023,
            "--instance-type",
            "t3.nano2",
        ],
        "RunInstances",
        "InvalidParameterValue",
        "Invalid value 't3.nano2' for InstanceType.",
    );
    c.api_err(
        &[
            "run-instances",
            "--image-id",
            AL2023,
            "--instance-type",
            "t3.micro",
            "--placement",
            "AvailabilityZone=us-east-1z",
        ],
        "RunInstances",
        "InvalidParameterValue",
        "Invalid availability zone: [us-east-1z]",
    );
    c.api_err(
        &["run-instances", "--image-id", AL2023, "--instance-type", "t4g.micro"],
        "RunInstances",
        "InvalidParameterValue",
        "The architecture 'arm64' of the specified instance type does not match the architecture 'x86_64' of the specified AMI. Specify an instance type and an AMI that have matching architectures, and try again. You can use 'describe-instance-types' or 'describe-images' to discover the architecture of the instance type or AMI.",
    );
}

/// Xen vs Nitro device names, as the guest layer reads them.
#[test]
fn guest_device_names_xen_and_nitro() {
    use ebsim::ec2::{ClockMode, Ec2, Home};
    let c = Cloud::new();
    let xen = c.instance(UBUNTU, "t2.micro");
    let nitro = c.instance(AL2023, "t3.micro");
    let v1 = c.volume(&["--size", "1"]);
    let v2 = c.volume(&["--size", "1"]);
    let v3 = c.volume(&["--size", "1"]);
    c.ok(&[
        "attach-volume",
        "--volume-id",
        &v1,
        "--instance-id",
        &xen,
        "--device",
        "/dev/sdf",
    ]);
    c.ok(&[
        "attach-volume",
        "--volume-id",
        &v2,
        "--instance-id",
        &nitro,
        "--device",
        "/dev/sdf",
    ]);
    c.ok(&[
        "attach-volume",
        "--volume-id",
        &v3,
        "--instance-id",
        &nitro,
        "--device",
        "/dev/sdg",
    ]);
    c.advance("10s");
    let ec2 = Ec2::new(Home::at(c.path()), ClockMode::Manual, "us-east-1");
    ec2.transact(|t| {
        let x = t.instance_disks(&xen);
        let names: Vec<(String, u32, u32)> = x
            .iter()
            .map(|d| (d.name.clone(), d.major, d.minor))
            .collect();
        assert_eq!(
            names,
            vec![("xvda".into(), 202, 0), ("xvdf".into(), 202, 80)]
        );
        assert!(x[0].root && !x[1].root);
        let n = t.instance_disks(&nitro);
        let names: Vec<(String, u32)> = n.iter().map(|d| (d.name.clone(), d.major)).collect();
        assert_eq!(
            names,
            vec![
                ("nvme0n1".into(), 259),
                ("nvme1n1".into(), 259),
                ("nvme2n1".into(), 259)
            ]
        );
        assert_eq!(n[1].serial.as_deref(), Some(v2.replace('-', "").as_str()));
        // AL2023: nvme0n1 259:0, p1 259:1, p127 259:2, p128 259:3 (blkext
        // minors in the order the kernel scans partitions); the volume
        // attached later takes the next minor.
        assert_eq!(n[0].minor, 0);
        let inst = &t.state().instances[&nitro];
        let parts: Vec<(&u32, &String)> = inst.blkext_minors.iter().collect();
        assert_eq!(parts[1], (&1, &"nvme0n1p1".to_string()));
        assert_eq!(parts[3], (&3, &"nvme0n1p128".to_string()));
        assert_eq!(n[1].minor, 4);
        // What the image mounts: /, then its EFI system partition at
        // /boot/efi.
        let m: Vec<(&str, &str, &str)> = inst
            .mounts
            .iter()
            .map(|m| (m.source.as_str(), m.target.as_str(), m.fstype.as_str()))
            .collect();
        assert_eq!(
            m,
            vec![
                ("/dev/nvme0n1p1", "/", "xfs"),
                ("/dev/nvme0n1p128", "/boot/efi", "vfat")
            ]
        );
        assert_eq!(inst.util_linux, "2.37.4");
        assert_eq!(t.state().instances[&xen].util_linux, "2.37.2");
        Ok(())
    })
    .unwrap();
    // Detaching frees nvme1n1; the next attach takes the lowest free index.
    c.ok(&["detach-volume", "--volume-id", &v2]);
    c.ok(&["wait", "volume-available", "--volume-ids", &v2]);
    let v4 = c.volume(&["--size", "1"]);
    c.ok(&[
        "attach-volume",
        "--volume-id",
        &v4,
        "--instance-id",
        &nitro,
        "--device",
        "/dev/sdh",
    ]);
    c.advance("10s");
    ec2.transact(|t| {
        let names: Vec<String> = t
            .instance_disks(&nitro)
            .iter()
            .map(|d| d.name.clone())
            .collect();
        assert_eq!(names, vec!["nvme0n1", "nvme2n1", "nvme1n1"]);
        Ok(())
    })
    .unwrap();
}

/// DeleteOnTermination (issue 5 check): launch, attach two more volumes,
/// set one to true through the seed's JSON file, terminate.
#[test]
fn delete_on_termination() {
    let c = Cloud::new();
    let i = c.instance(UBUNTU, "t2.micro");
    let d = c.ok(&["describe-instances", "--instance-ids", &i]);
    let root = d["Reservations"][0]["Instances"][0]["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        d["Reservations"][0]["Instances"][0]["BlockDeviceMappings"][0]["Ebs"]["DeleteOnTermination"],
        true
    );
    let a = c.volume(&["--size", "2"]);
    let b = c.volume(&["--size", "3"]);
    c.ok(&[
        "attach-volume",
        "--volume-id",
        &a,
        "--instance-id",
        &i,
        "--device",
        "/dev/sdf",
    ]);
    c.ok(&[
        "attach-volume",
        "--volume-id",
        &b,
        "--instance-id",
        &i,
        "--device",
        "/dev/sdg",
    ]);
    c.ok(&["wait", "volume-in-use", "--volume-ids", &a, &b]);
    // The seed's file keeps the root; a second file marks /dev/sdf.
    let seed = c.path().join("example.json");
    std::fs::write(
        &seed,
        r#"[{"DeviceName": "/dev/sda1", "Ebs": {"DeleteOnTermination": false}}]"#,
    )
    .unwrap();
    let seed_arg = format!("file://{}", seed.display());
    let out = c.run(&[
        "modify-instance-attribute",
        "--instance-id",
        &i,
        "--block-device-mappings",
        &seed_arg,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    let mark = c.path().join("mark.json");
    std::fs::write(
        &mark,
        r#"[{"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": true}}]"#,
    )
    .unwrap();
    c.ok(&[
        "modify-instance-attribute",
        "--instance-id",
        &i,
        "--block-device-mappings",
        &format!("file://{}", mark.display()),
    ]);
    let f = c.ok(&[
        "describe-volumes",
        "--filters",
        "Name=attachment.delete-on-termination,Values=true",
    ]);
    let ids: Vec<&str> = f["Volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["VolumeId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![a.as_str()]);
    let images = [c.image_of(&root), c.image_of(&a), c.image_of(&b)];
    assert!(images.iter().all(|p| p.exists()));
    c.ok(&["terminate-instances", "--instance-ids", &i]);
    c.ok(&["wait", "instance-terminated", "--instance-ids", &i]);
    // Exactly /dev/sdf's volume is gone; the root and /dev/sdg are available.
    assert!(!images[1].exists());
    assert!(images[0].exists() && images[2].exists());
    c.api_err(
        &["describe-volumes", "--volume-ids", &a],
        "DescribeVolumes",
        "InvalidVolume.NotFound",
        &format!("The volume '{a}' does not exist."),
    );
    for v in [&root, &b] {
        let d = c.describe_volume(v);
        assert_eq!(d["State"], "available");
        assert_eq!(d["Attachments"].as_array().unwrap().len(), 0);
    }
    // Inline JSON and shorthand work too (on another instance).
    let j = c.instance(AL2023, "t3.micro");
    c.ok(&[
        "modify-instance-attribute",
        "--instance-id",
        &j,
        "--block-device-mappings",
        r#"[{"DeviceName": "/dev/xvda", "Ebs": {"DeleteOnTermination": false}}]"#,
    ]);
    c.ok(&[
        "modify-instance-attribute",
        "--instance-id",
        &j,
        "--block-device-mappings",
        "DeviceName=/dev/xvda,Ebs={DeleteOnTermination=true}",
    ]);
    let d = c.ok(&["describe-instances", "--instance-ids", &j]);
    assert_eq!(
        d["Reservations"][0]["Instances"][0]["BlockDeviceMappings"][0]["Ebs"]["DeleteOnTermination"],
        true
    );
}

// ---------------------------------------------------------------------
// AMIs

#[test]
fn catalog_images_and_create_image() {
    let c = Cloud::new();
    let imgs = c.ok(&[
        "describe-images",
        "--owners",
        "amazon",
        "--query",
        "Images[].Name",
    ]);
    let names: Vec<&str> = imgs
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(names.iter().any(|n| n.starts_with("al2023-ami-")));
    assert!(names.iter().any(|n| n.starts_with("amzn2-ami-")));
    let all = c.ok(&["describe-images"])["Images"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(all, 7);
    let ub = c.ok(&["describe-images", "--image-ids", UBUNTU]);
    let ub = &ub["Images"][0];
    assert_eq!(ub["RootDeviceName"], "/dev/sda1");
    assert_eq!(ub["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"], 8);
    let centos = c.ok(&["describe-images", "--filters", "Name=name,Values=CentOS-7*"]);
    assert_eq!(
        centos["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"],
        10
    );
    let al2023 = c.ok(&["describe-images", "--image-ids", AL2023]);
    assert_eq!(
        al2023["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["VolumeType"],
        "gp3"
    );

    let i = c.instance(UBUNTU, "t2.micro");
    let data = c.volume(&["--size", "4"]);
    c.ok(&[
        "attach-volume",
        "--volume-id",
        &data,
        "--instance-id",
        &i,
        "--device",
        "/dev/sdf",
    ]);
    c.advance("10s");
    let r = c.ok(&[
        "create-image",
        "--instance-id",
        &i,
        "--name",
        "my-server",
        "--no-reboot",
    ]);
    let ami = r["ImageId"].as_str().unwrap().to_string();
    c.api_err(
        &["create-image", "--instance-id", &i, "--name", "my-server"],
        "CreateImage",
        "InvalidAMIName.Duplicate",
        &format!("AMI name my-server is already in use by AMI {ami}"),
    );
    let d = c.ok(&["describe-images", "--image-ids", &ami]);
    assert_eq!(d["Images"][0]["State"], "pending");
    c.ok(&["wait", "image-available", "--image-ids", &ami]);
    let d = c.ok(&["describe-images", "--owners", "self"]);
    let img = &d["Images"][0];
    let bdm = img["BlockDeviceMappings"].as_array().unwrap();
    assert_eq!(bdm.len(), 2);
    assert_eq!(
        (bdm[0]["DeviceName"].as_str(), bdm[1]["DeviceName"].as_str()),
        (Some("/dev/sda1"), Some("/dev/sdf"))
    );
    assert_eq!(bdm[0]["Ebs"]["DeleteOnTermination"], true);
    assert_eq!(bdm[1]["Ebs"]["DeleteOnTermination"], false);
    let snap = bdm[1]["Ebs"]["SnapshotId"].as_str().unwrap().to_string();
    let s = c.ok(&["describe-snapshots", "--snapshot-ids", &snap]);
    assert_eq!(
        s["Snapshots"][0]["Description"],
        format!("Created by CreateImage({i}) for {ami}")
    );
    c.api_err(
        &["delete-snapshot", "--snapshot-id", &snap],
        "DeleteSnapshot",
        "InvalidSnapshot.InUse",
        &format!("The snapshot {snap} is currently in use by {ami}"),
    );
    // Launch from it: two volumes, from the two snapshots.
    let j = c.instance(&ami, "t2.small");
    let d = c.ok(&["describe-instances", "--instance-ids", &j]);
    assert_eq!(
        d["Reservations"][0]["Instances"][0]["BlockDeviceMappings"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

// ---------------------------------------------------------------------
// The command line: usage errors, --query, --output text

#[test]
fn usage_errors_exit_252() {
    let c = Cloud::new();
    let o = c.run(&["modify-volume", "--size", "9"]);
    assert_eq!(o.status.code(), Some(252));
    assert!(
        stderr(&o).ends_with("aws: error: the following arguments are required: --volume-id\n"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).starts_with(
        "usage: aws [options] <command> <subcommand> [<subcommand> ...] [parameters]\n"
    ));
    let o = c.run(&["describe-volumes", "--foo", "1"]);
    assert_eq!(o.status.code(), Some(252));
    assert!(
        stderr(&o).ends_with("\nUnknown options: --foo, 1\n"),
        "{}",
        stderr(&o)
    );
    let o = c.run(&["describe-volumez"]);
    assert_eq!(o.status.code(), Some(252));
    assert!(
        stderr(&o).contains("aws: error: argument operation: Invalid choice, valid choices are:")
    );
    let o = c.run(&["create-volume", "--size", "abc"]);
    assert_eq!(o.status.code(), Some(252));
    assert_eq!(
        stderr(&o),
        "\ninvalid literal for int() with base 10: 'abc'\n"
    );
    let o = c.run(&[
        "modify-instance-attribute",
        "--instance-id",
        "i-0123456789abcdef0",
        "--instance-type",
        "m5.large",
    ]);
    assert_eq!(o.status.code(), Some(252));
    assert_eq!(
        stderr(&o),
        "\nError parsing parameter '--instance-type': Expected: '=', received: 'EOF' for input:\nm5.large\n        ^\n"
    );
    let o = c.run(&["describe-volumes", "--query", "Volumes["]);
    assert_eq!(o.status.code(), Some(252));
    assert!(
        stderr(&o).starts_with("\nBad value for --query Volumes[: Invalid jmespath expression:"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn aws_link_and_text_output() {
    let c = Cloud::new();
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("aws");
    std::os::unix::fs::symlink(common::ebsim_bin(), &link).unwrap();
    let run = |args: &[&str]| {
        let mut cmd = std::process::Command::new(&link);
        cmd.env("EBSIM_HOME", c.path())
            .env("EBSIM_CLOCK", "manual")
            .args(args);
        cmd.output().unwrap()
    };
    let o = run(&[
        "ec2",
        "create-volume",
        "--size",
        "8",
        "--availability-zone",
        "us-east-1a",
        "--query",
        "VolumeId",
        "--output",
        "text",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    assert!(id.starts_with("vol-0") && id.len() == 21, "{id}");
    let o = run(&[
        "--region",
        "us-east-1",
        "ec2",
        "describe-volumes",
        "--volume-ids",
        &id,
        "--query",
        "Volumes[0].[Size,State]",
        "--output",
        "text",
    ]);
    assert_eq!(stdout(&o), "8\tcreating\n");
    let o = run(&["ec2", "describe-volumes", "--output", "text"]);
    let t = stdout(&o);
    assert!(t.starts_with("VOLUMES\tus-east-1a\t"), "{t}");
    let o = run(&["ec2", "describe-volumes", "--query", "Volumes[0].Nope"]);
    assert_eq!(stdout(&o), "null\n");
    let o = run(&["s3", "ls"]);
    assert_eq!(o.status.code(), Some(252));
}

#[test]
fn waiter_failure_and_timeout() {
    let c = Cloud::new();
    let r = c.ok(&[
        "run-instances",
        "--image-id",
        AL2023,
        "--instance-type",
        "t3.micro",
    ]);
    let i = r["Instances"][0]["InstanceId"]
        .as_str()
        .unwrap()
        .to_string();
    let o = c.run(&["wait", "instance-terminated", "--instance-ids", &i]);
    assert_eq!(o.status.code(), Some(255));
    assert_eq!(
        stderr(&o),
        "\nWaiter InstanceTerminated failed: Waiter encountered a terminal failure state: For expression \"Reservations[].Instances[].State.Name\" we matched expected path: \"pending\" at least once\n"
    );
    // An empty answer never satisfies a waiter: 40 polls, then give up.
    let o = c.run(&[
        "wait",
        "volume-available",
        "--filters",
        "Name=size,Values=999",
    ]);
    assert_eq!(o.status.code(), Some(255));
    assert_eq!(
        stderr(&o),
        "\nWaiter VolumeAvailable failed: Max attempts exceeded\n"
    );
    let o = c.run(&[
        "wait",
        "volume-available",
        "--volume-ids",
        "vol-0123456789abcdef0",
    ]);
    assert_eq!(o.status.code(), Some(255));
    assert_eq!(
        stderr(&o),
        "\nWaiter VolumeAvailable failed: An error occurred (InvalidVolume.NotFound): The volume 'vol-0123456789abcdef0' does not exist.\n"
    );
    let o = c.run(&[
        "wait",
        "volume-deleted",
        "--volume-ids",
        "vol-0123456789abcdef0",
    ]);
    assert!(o.status.success());
}

#[test]
fn clock_shows_time_mode_and_next_transitions() {
    let c = Cloud::new();
    let v = c.ok(&[
        "create-volume",
        "--size",
        "8",
        "--availability-zone",
        "us-east-1a",
    ]);
    let v = v["VolumeId"].as_str().unwrap().to_string();
    let o = c.cmd("clock").output().unwrap();
    let s = stdout(&o);
    let lines: Vec<&str> = s.lines().collect();
    assert!(ebsim::ec2::time::Millis::parse(lines[0]).is_some(), "{s}");
    assert!(lines[1].starts_with("mode: manual"), "{s}");
    assert_eq!(
        lines[3],
        format!("  in      10s  {v} creating -> available")
    );
    let o = c.cmd("clock").args(["advance", "soon"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = c.cmd("clock").arg("--help").output().unwrap();
    assert!(stdout(&o).contains("EBSIM_CLOCK"));
}

#[test]
fn damaged_or_missing_state_is_reported_and_kept() {
    let c = Cloud::new();
    c.volume(&["--size", "1"]);
    let state = c.path().join("state.json");
    std::fs::write(
        &state,
        b"{\"format\": \"ebsim-state\", \"version\": 1, \"volu",
    )
    .unwrap();
    let o = c.run(&["describe-volumes"]);
    assert_eq!(o.status.code(), Some(255));
    assert!(
        stderr(&o).contains("the ebsim state is damaged"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read(&state).unwrap(),
        b"{\"format\": \"ebsim-state\", \"version\": 1, \"volu"
    );
    std::fs::remove_file(&state).unwrap();
    let o = c.run(&["describe-volumes"]);
    assert_eq!(o.status.code(), Some(255));
    assert!(
        stderr(&o).contains("the ebsim state is missing"),
        "{}",
        stderr(&o)
    );
    assert!(!state.exists());
    std::fs::write(&state, b"{\"format\": \"ebsim-state\", \"version\": 99}").unwrap();
    let o = c.run(&["describe-volumes"]);
    assert!(
        stderr(&o).contains("state version 99 is newer"),
        "{}",
        stderr(&o)
    );
}

// ---------------------------------------------------------------------
// Golden output shapes (keys, nesting and order as the AWS CLI prints)

/// Compares normalised output with `tests/ec2_golden/NAME`; with
/// `EBSIM_BLESS=1` writes it instead (review the diff before committing).
fn check_golden(name: &str, got: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/ec2_golden")
        .join(name);
    if std::env::var_os("EBSIM_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(got, want, "{name}:\n{got}");
}

fn golden(c: &Cloud, args: &[&str], name: &str) {
    let o = c.run(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    check_golden(name, &normalise(&stdout(&o)));
}

/// Replaces an instance's private address (random) by `IP`.
fn strip_ip(s: &str) -> String {
    let mut out = String::new();
    for line in s.lines() {
        let comma = if line.ends_with(',') { "," } else { "" };
        let l = if let Some(p) = line.find("\"ip-172-31-") {
            format!("{}\"ip-IP.ec2.internal\"{comma}", &line[..p])
        } else if let Some(p) = line.find("\"172.31.") {
            format!("{}\"IP\"{comma}", &line[..p])
        } else if let Some(p) = line.find("\"MacAddress\": ") {
            format!("{}\"MacAddress\": \"MAC\"{comma}", &line[..p])
        } else {
            line.to_string()
        };
        out.push_str(&l);
        out.push('\n');
    }
    out
}

#[test]
fn golden_volume_shapes() {
    let c = Cloud::new();
    let tags = "ResourceType=volume,Tags=[{Key=Name,Value=data}]";
    golden(
        &c,
        &[
            "create-volume",
            "--size",
            "8",
            "--availability-zone",
            "us-east-1a",
            "--volume-type",
            "gp3",
            "--tag-specifications",
            tags,
        ],
        "create-volume.json",
    );
    let v = c.ok(&["describe-volumes", "--query", "Volumes[0].VolumeId"]);
    let v = v.as_str().unwrap().to_string();
    let i = c.instance(UBUNTU, "t2.micro");
    c.advance("10s");
    golden(
        &c,
        &[
            "attach-volume",
            "--volume-id",
            &v,
            "--instance-id",
            &i,
            "--device",
            "/dev/sdf",
        ],
        "attach-volume.json",
    );
    c.advance("10s");
    golden(
        &c,
        &["describe-volumes", "--volume-ids", &v],
        "describe-volumes.json",
    );
    golden(
        &c,
        &["modify-volume", "--volume-id", &v, "--size", "16"],
        "modify-volume.json",
    );
    c.advance("45s");
    golden(
        &c,
        &["describe-volumes-modifications", "--volume-ids", &v],
        "describe-volumes-modifications.json",
    );
    c.advance("1h");
    let done = normalise(&stdout(&c.run(&[
        "describe-volumes-modifications",
        "--volume-ids",
        &v,
    ])));
    assert!(done.contains("\"Progress\": 100,\n            \"StartTime\": \"TIME\",\n            \"EndTime\": \"TIME\"\n"), "{done}");
    golden(
        &c,
        &["detach-volume", "--volume-id", &v],
        "detach-volume.json",
    );
    c.ok(&["wait", "volume-available", "--volume-ids", &v]);
    let o = c.run(&["delete-volume", "--volume-id", &v]);
    assert!(o.status.success());
    assert_eq!(stdout(&o), "");
}

#[test]
fn golden_snapshot_shapes() {
    let c = Cloud::new();
    let v = c.volume(&["--size", "8"]);
    golden(
        &c,
        &[
            "create-snapshot",
            "--volume-id",
            &v,
            "--description",
            "test",
        ],
        "create-snapshot.json",
    );
    golden(&c, &["describe-snapshots"], "describe-snapshots.json");
    c.ok(&[
        "wait",
        "snapshot-completed",
        "--filters",
        &format!("Name=volume-id,Values={v}"),
    ]);
    let s = normalise(&stdout(&c.run(&[
        "describe-snapshots",
        "--owner-ids",
        "self",
    ])));
    assert!(s.contains("\"State\": \"completed\",\n            \"StartTime\": \"TIME\",\n            \"Progress\": \"100%\","), "{s}");
}

#[test]
fn golden_instance_shapes() {
    let c = Cloud::new();
    let o = c.run(&[
        "run-instances",
        "--image-id",
        UBUNTU,
        "--instance-type",
        "t2.micro",
        "--key-name",
        "k",
    ]);
    check_golden("run-instances.json", &strip_ip(&normalise(&stdout(&o))));
    let i = c.ok(&[
        "describe-instances",
        "--query",
        "Reservations[0].Instances[0].InstanceId",
    ]);
    let i = i.as_str().unwrap().to_string();
    c.ok(&["wait", "instance-running", "--instance-ids", &i]);
    let o = c.run(&["describe-instances", "--instance-ids", &i]);
    check_golden(
        "describe-instances.json",
        &strip_ip(&normalise(&stdout(&o))),
    );
    golden(
        &c,
        &["stop-instances", "--instance-ids", &i],
        "stop-instances.json",
    );
    c.ok(&["wait", "instance-stopped", "--instance-ids", &i]);
    golden(
        &c,
        &["start-instances", "--instance-ids", &i],
        "start-instances.json",
    );
    golden(
        &c,
        &["terminate-instances", "--instance-ids", &i],
        "terminate-instances.json",
    );
    let o = c.run(&["reboot-instances", "--instance-ids", &i]);
    assert_eq!((o.status.code(), stdout(&o)), (Some(254), String::new()));
}

#[test]
fn golden_image_shapes() {
    let c = Cloud::new();
    golden(
        &c,
        &["describe-images", "--image-ids", AL2023],
        "describe-images-catalog.json",
    );
    let i = c.instance(AL2023, "t3.micro");
    let r = c.run(&[
        "create-image",
        "--instance-id",
        &i,
        "--name",
        "img-1",
        "--description",
        "mine",
    ]);
    assert_eq!(
        normalise(&stdout(&r)),
        "{\n    \"ImageId\": \"ami-ID\"\n}\n"
    );
    c.ok(&["wait", "image-available", "--owners", "self"]);
    golden(
        &c,
        &["describe-images", "--owners", "self"],
        "describe-images-own.json",
    );
}

// ---------------------------------------------------------------------
// Snapshots: the chunk store (issue 5 check)

/// The bytes of one 1 MiB piece of test data starting at `p`: a
/// pseudo-random pattern of the seed, each 4 KiB block stamped with its
/// offset and the seed, so no two 512 KiB chunks are alike.
fn piece(seed: u64, p: u64, n: usize) -> Vec<u8> {
    thread_local! {
        static PATTERNS: std::cell::RefCell<std::collections::HashMap<u64, std::rc::Rc<Vec<u8>>>> =
            std::cell::RefCell::new(std::collections::HashMap::new());
    }
    let pattern = PATTERNS.with(|m| {
        m.borrow_mut()
            .entry(seed)
            .or_insert_with(|| {
                let mut buf = vec![0u8; 1 << 20];
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ seed;
                for b in buf.chunks_mut(8) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    b.copy_from_slice(&x.to_le_bytes());
                }
                std::rc::Rc::new(buf)
            })
            .clone()
    });
    let mut buf = pattern[..n].to_vec();
    for (k, blk) in buf.chunks_mut(4096).enumerate() {
        if blk.len() >= 16 {
            blk[..8].copy_from_slice(&(p + (k as u64) * 4096).to_le_bytes());
            blk[8..16].copy_from_slice(&seed.to_le_bytes());
        }
    }
    buf
}

/// A write of test data: offset, length, seed.
type Write = (u64, u64, u64);

/// Writes test data through the one write path, 32 MiB per commit.
fn write_data(img: &std::path::Path, w: Write) {
    use ebsim::blockdev::image::{Access, ImageFile};
    use ebsim::blockdev::{BlockDevice, WriteBatch};
    let (offset, len, seed) = w;
    let mut f = ImageFile::open(img, Access::ReadWrite).unwrap();
    let mut pos = offset;
    let end = offset + len;
    while pos < end {
        let mut batch = WriteBatch::new();
        for _ in 0..32 {
            if pos >= end {
                break;
            }
            let n = (end - pos).min(1 << 20) as usize;
            batch.write(pos, piece(seed, pos, n));
            pos += n as u64;
        }
        f.commit(&batch).unwrap();
    }
    assert!(f.size() >= end);
}

/// What `history` left at `x..x+n` (later writes over earlier ones).
fn expected(history: &[Write], x: u64, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    let end = x + n as u64;
    for &(o, len, seed) in history {
        if o + len <= x || o >= end {
            continue;
        }
        let mut p = o + (x.max(o) - o) / (1 << 20) * (1 << 20);
        while p < (o + len).min(end) {
            let pn = (o + len - p).min(1 << 20) as usize;
            let data = piece(seed, p, pn);
            let from = x.max(p);
            let to = end.min(p + pn as u64);
            if from < to {
                out[(from - x) as usize..(to - x) as usize]
                    .copy_from_slice(&data[(from - p) as usize..(to - p) as usize]);
            }
            p += pn as u64;
        }
    }
    out
}

/// Checks an image holds exactly what `history` wrote: the bytes of every
/// written range, and no data anywhere else.
fn check_content(img: &std::path::Path, history: &[Write]) {
    use ebsim::blockdev::BlockDevice;
    use ebsim::blockdev::image::{Access, ImageFile};
    let f = ImageFile::open(img, Access::ReadOnly).unwrap();
    for r in f.data_ranges(0..f.size()).unwrap() {
        let covered = history
            .iter()
            .any(|&(o, len, _)| o <= r.start && r.end <= o + len)
            || history
                .iter()
                .filter(|&&(o, len, _)| o < r.end && r.start < o + len)
                .map(|&(o, len, _)| o.max(r.start)..(o + len).min(r.end))
                .fold(0, |acc, q| acc + (q.end - q.start))
                >= r.end - r.start;
        assert!(covered, "{}: data at {:?} nothing wrote", img.display(), r);
    }
    let mut ranges: Vec<(u64, u64)> = history.iter().map(|&(o, l, _)| (o, o + l)).collect();
    ranges.sort();
    for (start, end) in ranges {
        let mut pos = start;
        while pos < end {
            let n = (end - pos).min(8 << 20) as usize;
            assert!(
                f.read_vec(pos, n).unwrap() == expected(history, pos, n),
                "{}: bytes differ at {pos}",
                img.display()
            );
            pos += n as u64;
        }
    }
}

#[test]
fn snapshots_are_incremental_shared_and_restore_exactly() {
    use ebsim::ec2::Home;
    use ebsim::ec2::snapshots::{read_manifest, store_usage};
    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;
    // tmpfs: no disk writes for the GiBs this moves.
    let c = Cloud::on_tmpfs();
    let home = Home::at(c.path());
    let v = c.volume(&["--size", "200"]);
    let img = c.image_of(&v);
    // 1 GiB of data: 64 runs of 16 MiB spread over the 200 GiB.
    let mut history: Vec<Write> = (0..64u64)
        .map(|k| (k * 3 * GIB + 7 * MIB, 16 * MIB, k))
        .collect();
    for w in &history {
        write_data(&img, *w);
    }
    assert!(common::allocated(&img) >= GIB && common::allocated(&img) < GIB + 64 * MIB);

    let s1 = c.ok(&[
        "create-snapshot",
        "--volume-id",
        &v,
        "--description",
        "first",
    ]);
    let s1 = s1["SnapshotId"].as_str().unwrap().to_string();
    let (n1, bytes1) = store_usage(&home);
    assert_eq!(bytes1, GIB, "first snapshot stores exactly the data");
    assert_eq!(n1, 2048);
    let at_first = history.clone();

    // 10 MiB, unaligned, half over the last run's data, half past it.
    let w: Write = (
        63 * 3 * GIB + 7 * MIB + 16 * MIB - 5 * MIB + 4096 * 3,
        10 * MIB,
        1000,
    );
    write_data(&img, w);
    history.push(w);
    let s2 = c.ok(&[
        "create-snapshot",
        "--volume-id",
        &v,
        "--description",
        "second",
    ]);
    let s2 = s2["SnapshotId"].as_str().unwrap().to_string();
    let (_, bytes2) = store_usage(&home);
    let added = bytes2 - bytes1;
    assert!(
        added <= 10 * MIB + MIB / 2,
        "second snapshot added {added} bytes"
    );
    assert!(
        added >= 10 * MIB,
        "second snapshot added only {added} bytes"
    );
    check_content(&img, &history);

    c.ok(&["wait", "snapshot-completed", "--snapshot-ids", &s1, &s2]);
    let r1 = c.ok(&[
        "create-volume",
        "--availability-zone",
        "us-east-1a",
        "--snapshot-id",
        &s1,
    ]);
    let r1 = r1["VolumeId"].as_str().unwrap().to_string();
    check_content(&c.image_of(&r1), &at_first);
    // Restores write only the data.
    assert!(common::allocated(&c.image_of(&r1)) <= GIB + MIB);
    c.ok(&["wait", "volume-available", "--volume-ids", &r1]);
    c.ok(&["delete-volume", "--volume-id", &r1]);

    // Deleting the first frees only what the second does not use.
    let m2 = read_manifest(&home, &s2).unwrap();
    c.ok(&["delete-snapshot", "--snapshot-id", &s1]);
    let (_, bytes3) = store_usage(&home);
    assert!(bytes3 < bytes2, "the overwritten chunks went");
    let unique: std::collections::HashSet<&String> = m2.chunks.values().collect();
    assert_eq!(bytes3, unique.len() as u64 * 512 * 1024);
    assert!(!c.path().join(format!("snapshots/{s1}.manifest")).exists());
    // A bigger volume from the second snapshot reads back as the source.
    let r2 = c.ok(&[
        "create-volume",
        "--availability-zone",
        "us-east-1a",
        "--snapshot-id",
        &s2,
        "--size",
        "250",
    ]);
    let r2 = r2["VolumeId"].as_str().unwrap().to_string();
    assert_eq!(std::fs::metadata(c.image_of(&r2)).unwrap().len(), 250 * GIB);
    check_content(&c.image_of(&r2), &history);
    c.ok(&["delete-snapshot", "--snapshot-id", &s2]);
    assert_eq!(store_usage(&home), (0, 0));
}

// ---------------------------------------------------------------------
// Concurrency and crash safety of the state store (issue 5 check)

#[test]
fn sixteen_processes_create_and_modify_at_once() {
    let c = Cloud::new();
    let bin = common::ebsim_bin();
    let script = format!(
        "set -e; id=$({bin} ec2 create-volume --size 1 --availability-zone us-east-1a --query VolumeId --output text); \
         {bin} ec2 wait volume-available --volume-ids $id; \
         {bin} ec2 modify-volume --volume-id $id --size 2 --query VolumeModification.VolumeId --output text",
        bin = bin.display()
    );
    let children: Vec<std::process::Child> = (0..16)
        .map(|_| {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(&script)
                .env("EBSIM_HOME", c.path())
                .env("EBSIM_CLOCK", "manual")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut ids = Vec::new();
    for ch in children {
        let o = ch.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        ids.push(stdout(&o).trim().to_string());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 16);
    let all = c.ok(&["describe-volumes", "--query", "Volumes[].VolumeId"]);
    let mut listed: Vec<String> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, ids, "every volume recorded");
    let mods = c.ok(&[
        "describe-volumes-modifications",
        "--query",
        "VolumesModifications[].VolumeId",
    ]);
    assert_eq!(
        mods.as_array().unwrap().len(),
        16,
        "every modification recorded"
    );
    // The document is valid, and no temporary file is left.
    let raw = std::fs::read(c.path().join("state.json")).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(v["volumes"].as_object().unwrap().len(), 16);
    for e in std::fs::read_dir(c.path()).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!n.contains(".tmp."), "left behind: {n}");
    }
}

#[test]
fn a_state_write_that_dies_leaves_the_old_state() {
    let c = Cloud::new();
    c.volume(&["--size", "1"]);
    let state = c.path().join("state.json");
    let old = std::fs::read(&state).unwrap();
    let len = old.len();
    for n in [0, 1, 17, len / 2, len - 1, len + 500] {
        let o = c
            .cmd("ec2")
            .env("EBSIM_STATE_FAULT", n.to_string())
            .args([
                "create-volume",
                "--size",
                "1",
                "--availability-zone",
                "us-east-1a",
            ])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(255), "fault at {n}");
        assert!(
            stderr(&o).contains("injected fault while writing the state"),
            "{}",
            stderr(&o)
        );
        assert_eq!(
            std::fs::read(&state).unwrap(),
            old,
            "fault at {n}: state changed"
        );
        // The new volume's image went with the failed write.
        assert_eq!(
            std::fs::read_dir(c.path().join("volumes")).unwrap().count(),
            1,
            "fault at {n}"
        );
    }
    // The next write cleans up and goes through.
    c.volume(&["--size", "1"]);
    assert_eq!(c.ok(&["describe-volumes", "--query", "length(Volumes)"]), 2);
    for e in std::fs::read_dir(c.path()).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!n.contains(".tmp."), "left behind: {n}");
    }
}

#[test]
fn sigkill_at_random_moments_never_breaks_the_state() {
    use ebsim::ec2::volumes::CreateVolume;
    use ebsim::ec2::{ClockMode, Ec2, Home};
    let c = Cloud::new();
    // A big document (a few MB), so that kills often land mid-write.
    let ec2 = Ec2::new(Home::at(c.path()), ClockMode::Manual, "us-east-1");
    ec2.transact(|t| {
        for _ in 0..2000 {
            t.create_volume(&CreateVolume {
                size: Some(1),
                availability_zone: Some("us-east-1a".into()),
                ..Default::default()
            })?;
        }
        Ok(())
    })
    .unwrap();
    let state = c.path().join("state.json");
    // How long one uninterrupted write takes: kills are spread over it.
    let t0 = std::time::Instant::now();
    c.ok(&[
        "create-volume",
        "--size",
        "1",
        "--availability-zone",
        "us-east-1a",
    ]);
    let mut span = t0.elapsed().as_micros() as u64 * 6 / 5;
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut counts: Vec<usize> = Vec::new();
    // At least 40 kills, and on until both sides of the rename were hit: the
    // kill delay adapts to how fast the machine is right now.
    for _ in 0..400 {
        if counts.len() >= 40 && counts.contains(&0) && counts.contains(&1) {
            break;
        }
        let before: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
        let n_before = before["volumes"].as_object().unwrap().len();
        let mut child = c
            .cmd("ec2")
            .args([
                "create-volume",
                "--size",
                "1",
                "--availability-zone",
                "us-east-1a",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::thread::sleep(std::time::Duration::from_micros(x % span.max(1)));
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = child.wait();
        let raw = std::fs::read(&state).unwrap();
        let after: serde_json::Value = serde_json::from_slice(&raw)
            .unwrap_or_else(|e| panic!("state broken after a kill: {e}"));
        let n_after = after["volumes"].as_object().unwrap().len();
        assert!(
            n_after == n_before || n_after == n_before + 1,
            "{n_before} -> {n_after}"
        );
        counts.push(n_after - n_before);
        span = if n_after > n_before {
            (span * 3 / 4).max(1)
        } else {
            span * 5 / 4 + 1
        };
    }
    // Afterwards everything still works.
    c.ok(&[
        "create-volume",
        "--size",
        "1",
        "--availability-zone",
        "us-east-1a",
    ]);
    let landed = counts.iter().sum::<usize>();
    let n = counts.len();
    eprintln!("kills that landed after the write: {landed}/{n} (last span {span} us)");
    // Some kills came before the rename and some after: both sides seen.
    assert!(landed > 0 && landed < n, "{landed}/{n}");
}

#[test]
fn a_modification_that_cannot_grow_the_image_fails_alone() {
    let c = Cloud::new();
    let v = c.volume(&["--size", "8"]);
    let w = c.volume(&["--size", "8"]);
    c.ok(&["modify-volume", "--volume-id", &v, "--size", "16"]);
    c.ok(&["modify-volume", "--volume-id", &w, "--size", "16"]);
    // A directory where the image was (a missing empty image would be
    // made again by the next transaction, as after a crash).
    std::fs::remove_file(c.image_of(&v)).unwrap();
    std::fs::create_dir(c.image_of(&v)).unwrap();
    c.advance("30s");
    let d = c.ok(&["describe-volumes-modifications", "--volume-ids", &v]);
    let m = &d["VolumesModifications"][0];
    assert_eq!(m["ModificationState"], "failed");
    assert!(
        m["StatusMessage"]
            .as_str()
            .unwrap()
            .starts_with("ebsim could not grow the volume's image")
    );
    assert_eq!(c.describe_volume(&v)["Size"], 8);
    // The other volume went on.
    assert_eq!(c.describe_volume(&w)["Size"], 16);
    assert_eq!(std::fs::metadata(c.image_of(&w)).unwrap().len(), 16 << 30);
}

/// The catalog's root volumes carry the image's partition table, written by
/// ebsim's partition layer: byte-identical to the real sfdisk given the same
/// script, and clean for the real sgdisk.
#[test]
fn catalog_root_volumes_have_the_image_tables() {
    if !common::require_tools(&["sfdisk", "sgdisk", "e2fsck"]) {
        return;
    }
    let c = Cloud::new();
    for (ami, itype) in [
        (AL2023, "t3.micro"),
        (UBUNTU, "t2.micro"),
        (AL2, "t2.micro"),
        ("ami-002070d43b0a4f171", "t2.micro"),
    ] {
        let i = c.instance(ami, itype);
        let d = c.ok(&["describe-instances", "--instance-ids", &i]);
        let v = d["Reservations"][0]["Instances"][0]["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
            .as_str()
            .unwrap()
            .to_string();
        let img = c.image_of(&v);
        let dump = common::run(std::process::Command::new("sfdisk").arg("--dump").arg(&img));
        assert!(dump.status.success(), "{}", stderr(&dump));
        let script = stdout(&dump).replace(&img.display().to_string(), "disk");
        let reference = c.path().join("reference.img");
        let _ = std::fs::remove_file(&reference);
        std::fs::File::create(&reference)
            .unwrap()
            .set_len(std::fs::metadata(&img).unwrap().len())
            .unwrap();
        let mut sf = std::process::Command::new("sfdisk")
            .arg("-q")
            .arg(&reference)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        sf.stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let o = sf.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        // The table's sectors (the filesystems are elsewhere): the first
        // 34 and, for GPT, the last 33.
        let read = |p: &std::path::Path, off: u64, n: usize| {
            use std::os::unix::fs::FileExt;
            let mut b = vec![0u8; n];
            std::fs::File::open(p)
                .unwrap()
                .read_exact_at(&mut b, off)
                .unwrap();
            b
        };
        let size = std::fs::metadata(&img).unwrap().len();
        assert!(
            read(&img, 0, 34 * 512) == read(&reference, 0, 34 * 512),
            "{ami}: table differs from sfdisk's"
        );
        assert!(
            read(&img, size - 33 * 512, 33 * 512) == read(&reference, size - 33 * 512, 33 * 512),
            "{ami}: backup table differs from sfdisk's"
        );
        if script.contains("label: gpt") {
            let v = common::run(std::process::Command::new("sgdisk").arg("-v").arg(&img));
            assert!(
                stdout(&v).contains("No problems found."),
                "{ami}: {}",
                stdout(&v)
            );
        } else {
            assert!(
                script.contains("start=        2048, size=    20969472, type=83, bootable"),
                "{script}"
            );
        }
    }
}
