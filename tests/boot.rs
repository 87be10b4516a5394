//! Instances that behave like their AMIs (issue 13): ssh's refusal of an
//! instance that is not running, cloud-init's growpart and resizefs at
//! every boot, a swapped root volume, the API device names each AMI's udev
//! rules create.

#![allow(clippy::unwrap_used)]

mod common;
mod ec2_util;
mod guest_fs_util;

use common::{stderr, stdout};
use ec2_util::Cloud;
use guest_fs_util::{LoopMount, copy_range, partition};

const UBUNTU: &str = "ami-080e1f13689e07408";
const AL2: &str = "ami-0a3c3a20c09d6f377";
const AL2023: &str = "ami-051f8a213df8bc089";
const CENTOS7: &str = "ami-002070d43b0a4f171";

fn exec(c: &Cloud, id: &str, cmd: &[&str]) -> (String, String, i32) {
    let o = c
        .cmd("exec")
        .arg(id)
        .arg("--")
        .args(cmd)
        .output()
        .expect("run ebsim exec");
    (stdout(&o), stderr(&o), o.status.code().unwrap_or(-1))
}

fn private_ip(c: &Cloud, id: &str) -> String {
    let d = c.ok(&["describe-instances", "--instance-ids", id]);
    d["Reservations"][0]["Instances"][0]["PrivateIpAddress"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `exec` and `shell` reach only a running instance; otherwise ssh's own
/// line (refused while the host boots or shuts down, timed out when it is
/// off), the state on a second line, status 255, and nothing run.
#[test]
fn shell_and_exec_refuse_an_instance_that_is_not_running() {
    let c = Cloud::new();
    let r = c.ok(&[
        "run-instances",
        "--image-id",
        UBUNTU,
        "--instance-type",
        "t2.micro",
    ]);
    let id = r["Instances"][0]["InstanceId"]
        .as_str()
        .unwrap()
        .to_string();
    let ip = private_ip(&c, &id);
    let line = |why: &str, state: &str| {
        format!(
            "ssh: connect to host {ip} port 22: {why}\n(ebsim: instance {id} is {state}; commands run only while it is running)\n"
        )
    };
    // pending
    assert_eq!(
        exec(&c, &id, &["lsblk"]),
        (String::new(), line("Connection refused", "pending"), 255)
    );
    let o = c.cmd("shell").arg(&id).output().unwrap();
    assert_eq!(stderr(&o), line("Connection refused", "pending"));
    assert_eq!(o.status.code(), Some(255));
    c.ok(&["wait", "instance-running", "--instance-ids", &id]);
    let (out, _, code) = exec(&c, &id, &["lsblk", "-o", "NAME"]);
    assert_eq!(code, 0);
    assert!(out.contains("xvda1"), "{out}");
    // stopping, stopped
    c.ok(&["stop-instances", "--instance-ids", &id]);
    assert_eq!(
        exec(&c, &id, &["lsblk"]),
        (String::new(), line("Connection refused", "stopping"), 255)
    );
    c.ok(&["wait", "instance-stopped", "--instance-ids", &id]);
    assert_eq!(
        exec(&c, &id, &["df"]),
        (String::new(), line("Connection timed out", "stopped"), 255)
    );
    // shutting-down, terminated
    c.ok(&["terminate-instances", "--instance-ids", &id]);
    assert_eq!(
        exec(&c, &id, &["lsblk"]),
        (
            String::new(),
            line("Connection refused", "shutting-down"),
            255
        )
    );
    c.ok(&["wait", "instance-terminated", "--instance-ids", &id]);
    assert_eq!(
        exec(&c, &id, &["lsblk"]),
        (
            String::new(),
            line("Connection timed out", "terminated"),
            255
        )
    );
}

/// Launches `image` (root `root_gib` GiB when given) with `user_data`,
/// waits until it runs; returns (instance, root volume).
fn launch(
    c: &Cloud,
    image: &str,
    itype: &str,
    root: Option<(&str, u32)>,
    user_data: Option<&str>,
) -> (String, String) {
    let mut args = vec![
        "run-instances".to_string(),
        "--image-id".into(),
        image.into(),
        "--instance-type".into(),
        itype.into(),
    ];
    if let Some((dev, gib)) = root {
        args.push("--block-device-mappings".into());
        args.push(format!(
            r#"[{{"DeviceName":"{dev}","Ebs":{{"VolumeSize":{gib}}}}}]"#
        ));
    }
    if let Some(u) = user_data {
        args.push("--user-data".into());
        args.push(u.into());
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = c.ok(&a);
    let id = r["Instances"][0]["InstanceId"]
        .as_str()
        .unwrap()
        .to_string();
    c.ok(&["wait", "instance-running", "--instance-ids", &id]);
    let d = c.ok(&["describe-instances", "--instance-ids", &id]);
    let vol = d["Reservations"][0]["Instances"][0]["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
        .as_str()
        .unwrap()
        .to_string();
    (id, vol)
}

fn ok(c: &Cloud, id: &str, cmd: &[&str]) -> String {
    let (out, err, code) = exec(c, id, cmd);
    assert_eq!(code, 0, "{cmd:?}: {err}");
    out
}

/// The guest's cloud-init.log without the timestamps.
fn cloud_init_log(c: &Cloud, id: &str) -> Vec<String> {
    ok(c, id, &["sudo", "cat", "/var/log/cloud-init.log"])
        .lines()
        .map(|l| l.split_once(" - ").map_or(l, |(_, r)| r).to_string())
        .collect()
}

/// The root partition's size and `/`'s df numbers as ebsim's guest shows
/// them equal what the real sfdisk and a kernel mount of the same bytes
/// show.
fn assert_root_matches_kernel(c: &Cloud, id: &str, vol: &str, part_dev: &str, n: u32) {
    let img = c.image_of(vol);
    let (off, len) = partition(&img, n);
    let lsblk = ok(c, id, &["lsblk", "-b", "-n", "-o", "SIZE", part_dev]);
    assert_eq!(lsblk.trim(), len.to_string(), "lsblk -b of {part_dev}");
    let ours = ok(c, id, &["df", "-B1", "--output=size,used,avail", "/"]);
    let _lock = common::mount_lock();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("root.img");
    copy_range(&img, off, len, &copy);
    let m = LoopMount::new(&copy, Some("rw"));
    let o = common::run(
        std::process::Command::new("df")
            .args(["-B1", "--output=size,used,avail"])
            .arg(m.path()),
    );
    assert_eq!(
        ours,
        stdout(&o),
        "df -B1 of / against the kernel's mount of {part_dev}"
    );
}

/// (AMI, type, root device, root partition device, partition number,
/// default root GiB, resizefs lines for `val`).
const AMIS: &[(&str, &str, &str, &str, u32, u32)] = &[
    (UBUNTU, "t2.micro", "/dev/sda1", "/dev/xvda1", 1, 8),
    (AL2, "t3.micro", "/dev/xvda", "/dev/nvme0n1p1", 1, 8),
    (AL2023, "t3.micro", "/dev/xvda", "/dev/nvme0n1p1", 1, 8),
    (CENTOS7, "t2.micro", "/dev/sda1", "/dev/xvda1", 1, 10),
];

const GROWPART_DEFAULT: &str = "cc_growpart.py[DEBUG]: No 'growpart' entry in cfg.  Using default: {'mode': 'auto', 'devices': ['/'], 'ignore_growroot_disabled': False}";

fn resizefs_lines(image: &str, part_dev: &str, partuuid: &str) -> Vec<String> {
    match image {
        UBUNTU => vec![
            "cc_resizefs.py[DEBUG]: resize_info: dev=/dev/root mnt_point=/ path=/".into(),
            format!(
                "cc_resizefs.py[DEBUG]: Converted /dev/root to '/dev/disk/by-partuuid/{partuuid}' per kernel cmdline"
            ),
            format!(
                "cc_resizefs.py[DEBUG]: Resizing / (ext4) using resize2fs /dev/disk/by-partuuid/{partuuid}"
            ),
            "cc_resizefs.py[DEBUG]: Resized root filesystem (type=ext4, val=True)".into(),
        ],
        CENTOS7 => vec![
            format!("cc_resizefs.py[DEBUG]: resize_info: dev={part_dev} mnt_point=/ path=/"),
            "cc_resizefs.py[DEBUG]: Resizing / (xfs) using xfs_growfs /".into(),
            "cc_resizefs.py[DEBUG]: Resized root filesystem (type=xfs, val=True)".into(),
        ],
        _ => vec![
            format!("cc_resizefs.py[DEBUG]: resize_info: dev={part_dev} mnt_point=/ path=/"),
            "cc_resizefs.py[DEBUG]: Resizing / (xfs) using xfs_growfs /".into(),
            "cc_resizefs.py[DEBUG]: Resizing (via forking) root filesystem (type=xfs, val=noblock)"
                .into(),
        ],
    }
}

fn partuuid(img: &std::path::Path, n: u32) -> String {
    let o = common::run(
        std::process::Command::new("sfdisk")
            .arg("--part-uuid")
            .arg(img)
            .arg(n.to_string()),
    );
    stdout(&o).trim().to_lowercase()
}

/// cloud-init on every AMI: a launch with a larger root boots with `/`
/// grown to the disk; a launch at the AMI's size changes nothing; a
/// reboot after modify-volume grows again. Each boot's growpart and
/// resizefs lines are in the guest's /var/log/cloud-init.log, and lsblk
/// and df equal the real sfdisk and a kernel mount of the same bytes.
#[test]
fn cloud_init_grows_the_root_at_every_boot_on_each_ami() {
    if !common::require_tools(&["sfdisk", "losetup", "mount", "df"]) || !common::require_mount() {
        return;
    }
    for &(image, itype, root_dev, part_dev, n, default) in AMIS {
        let disk = part_dev
            .strip_suffix("p1")
            .unwrap_or_else(|| part_dev.trim_end_matches('1'));
        let c = Cloud::on_tmpfs();
        // At the AMI's size: NOCHANGE.
        let (id, vol0) = launch(&c, image, itype, None, None);
        let uuid = partuuid(&c.image_of(&vol0), n);
        let mut want = vec![
            GROWPART_DEFAULT.to_string(),
            format!("cc_growpart.py[DEBUG]: '/' NOCHANGE: no change necessary ({disk}, {n})"),
        ];
        want.extend(resizefs_lines(image, part_dev, &uuid));
        assert_eq!(cloud_init_log(&c, &id), want, "{image} at its size");
        assert_root_matches_kernel(&c, &id, &vol0, part_dev, n);

        // Larger root at launch: grown before the first command.
        let big = default + 4;
        let (id, vol) = launch(&c, image, itype, Some((root_dev, big)), None);
        let img = c.image_of(&vol);
        let (_, len) = partition(&img, n);
        let (_, old) = partition(&c.image_of(&vol0), n);
        let uuid = partuuid(&img, n);
        let mut want = vec![
            GROWPART_DEFAULT.to_string(),
            format!("cc_growpart.py[INFO]: '/' resized: changed ({disk}, {n}) from {old} to {len}"),
        ];
        want.extend(resizefs_lines(image, part_dev, &uuid));
        assert_eq!(
            cloud_init_log(&c, &id),
            want,
            "{image} launched at {big} GiB"
        );
        assert!(len > u64::from(big - 1) << 30, "{image}: partition {len}");
        assert_root_matches_kernel(&c, &id, &vol, part_dev, n);

        // modify-volume, then reboot: grown again.
        c.ok(&[
            "modify-volume",
            "--volume-id",
            &vol,
            "--size",
            &(big + 4).to_string(),
        ]);
        c.advance("10m");
        c.ok(&["reboot-instances", "--instance-ids", &id]);
        let (_, len2) = partition(&img, n);
        let log = cloud_init_log(&c, &id);
        assert_eq!(log.len(), 2 * want.len(), "{image}: {log:?}");
        assert_eq!(
            log[want.len() + 1],
            format!(
                "cc_growpart.py[INFO]: '/' resized: changed ({disk}, {n}) from {len} to {len2}"
            )
        );
        assert!(len2 > u64::from(big + 3) << 30);
        assert_root_matches_kernel(&c, &id, &vol, part_dev, n);
    }
}

/// `#cloud-config` user data that turns both modules off (the real way to
/// practise the manual runbook): the root stays at the AMI's size on a
/// larger volume, the log says why, and the typed growpart and resize2fs
/// grow it by hand.
#[test]
fn user_data_turns_cloud_init_growth_off() {
    let c = Cloud::on_tmpfs();
    let ud = "#cloud-config\ngrowpart: {mode: off}\nresize_rootfs: false\n";
    let (id, vol) = launch(&c, UBUNTU, "t2.micro", Some(("/dev/sda1", 16)), Some(ud));
    assert_eq!(
        cloud_init_log(&c, &id),
        [
            "cc_growpart.py[DEBUG]: growpart disabled: mode=False",
            "cc_resizefs.py[DEBUG]: Skipping module named resizefs, resizing disabled",
        ]
    );
    let (_, len) = partition(&c.image_of(&vol), 1);
    assert_eq!(len, 16_549_855 * 512, "the AMI's partition");
    assert_eq!(
        ok(&c, &id, &["df", "-h", "--output=size", "/"]),
        " Size\n 7.6G\n"
    );
    let grown = ok(&c, &id, &["sudo", "growpart", "/dev/xvda", "1"]);
    assert!(
        grown.starts_with("CHANGED: partition=1 start=227328 old: size=16549855"),
        "{grown}"
    );
    ok(&c, &id, &["sudo", "resize2fs", "/dev/xvda1"]);
    assert_eq!(
        ok(&c, &id, &["df", "-h", "--output=size", "/"]),
        " Size\n  16G\n"
    );
    // A reboot keeps the opt-out (user data is read at every boot).
    c.ok(&["modify-volume", "--volume-id", &vol, "--size", "20"]);
    c.advance("10m");
    c.ok(&["reboot-instances", "--instance-ids", &id]);
    assert_eq!(cloud_init_log(&c, &id).len(), 4);
    assert_eq!(
        ok(&c, &id, &["df", "-h", "--output=size", "/"]),
        " Size\n  16G\n"
    );
    // mode: 'off' quoted, in block form, and the API's base64 stored as sent.
    let ud2 = "#cloud-config\ngrowpart:\n  mode: 'off'\n";
    let (id2, _) = launch(&c, AL2023, "t3.micro", Some(("/dev/xvda", 12)), Some(ud2));
    let log = cloud_init_log(&c, &id2);
    assert_eq!(log[0], "cc_growpart.py[DEBUG]: growpart disabled: mode=off");
    assert_eq!(
        ok(&c, &id2, &["lsblk", "-n", "-o", "SIZE", "/dev/nvme0n1p1"]),
        "  8G\n"
    );
}

/// Restoring the root from a snapshot: stop, detach the root, attach the
/// restored (larger) volume as the root device, start: `/` is mounted from
/// it, grown by cloud-init, and df shows it; a reboot keeps it.
#[test]
fn a_swapped_root_volume_boots_mounted() {
    for (image, itype, root_dev, part_dev) in [
        (UBUNTU, "t2.micro", "/dev/sda1", "/dev/root"),
        (AL2023, "t3.micro", "/dev/xvda", "/dev/nvme0n1p1"),
    ] {
        let c = Cloud::on_tmpfs();
        let (id, vol) = launch(&c, image, itype, None, None);
        ok(&c, &id, &["sudo", "touch", "/restored-marker"]);
        let s = c.ok(&["create-snapshot", "--volume-id", &vol]);
        let snap = s["SnapshotId"].as_str().unwrap().to_string();
        c.ok(&["wait", "snapshot-completed", "--snapshot-ids", &snap]);
        let az =
            c.ok(&["describe-instances", "--instance-ids", &id])["Reservations"][0]["Instances"][0]
                ["Placement"]["AvailabilityZone"]
                .as_str()
                .unwrap()
                .to_string();
        let new = c.ok(&[
            "create-volume",
            "--snapshot-id",
            &snap,
            "--availability-zone",
            &az,
            "--size",
            "12",
        ])["VolumeId"]
            .as_str()
            .unwrap()
            .to_string();
        c.ok(&["wait", "volume-available", "--volume-ids", &new]);
        c.ok(&["stop-instances", "--instance-ids", &id]);
        c.ok(&["wait", "instance-stopped", "--instance-ids", &id]);
        c.ok(&["detach-volume", "--volume-id", &vol]);
        c.ok(&["wait", "volume-available", "--volume-ids", &vol]);
        c.ok(&[
            "attach-volume",
            "--volume-id",
            &new,
            "--instance-id",
            &id,
            "--device",
            root_dev,
        ]);
        c.ok(&["start-instances", "--instance-ids", &id]);
        c.ok(&["wait", "instance-running", "--instance-ids", &id]);
        let df = ok(&c, &id, &["df", "-h", "--output=source,size,target", "/"]);
        assert_eq!(
            df.lines()
                .nth(1)
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>(),
            [part_dev, "12G", "/"],
            "{image}: {df}"
        );
        ok(&c, &id, &["ls", "/restored-marker"]);
        c.ok(&["reboot-instances", "--instance-ids", &id]);
        let df2 = ok(&c, &id, &["df", "-h", "--output=source,size,target", "/"]);
        assert_eq!(df, df2);
    }
}

/// `/dev/sdf` exists only where udev rules make it: Amazon Linux (Xen: the
/// `sd` name of `xvdf`; Nitro: the mapping name of `nvme1n1`); on Ubuntu
/// and CentOS 7 `mkfs.xfs /dev/sdf` fails as the real one does on a
/// missing file (its message compared with the real mkfs.xfs's).
#[test]
fn api_device_names_resolve_only_on_amis_with_udev_links() {
    if !common::require_tools(&["mkfs.xfs"]) {
        return;
    }
    let real = common::run(std::process::Command::new("mkfs.xfs").arg("/dev/sdf-ebsim-missing"));
    let real_err = stderr(&real).replace("/dev/sdf-ebsim-missing", "/dev/sdf");
    for (image, itype, kernel, links) in [
        (UBUNTU, "t2.micro", "xvdf", false),
        (UBUNTU, "t3.micro", "nvme1n1", false),
        (CENTOS7, "t2.micro", "xvdf", false),
        (AL2, "t2.micro", "xvdf", true),
        (AL2023, "t3.micro", "nvme1n1", true),
    ] {
        let c = Cloud::on_tmpfs();
        let (id, _) = launch(&c, image, itype, None, None);
        let az =
            c.ok(&["describe-instances", "--instance-ids", &id])["Reservations"][0]["Instances"][0]
                ["Placement"]["AvailabilityZone"]
                .as_str()
                .unwrap()
                .to_string();
        let v = c.ok(&["create-volume", "--availability-zone", &az, "--size", "1"])["VolumeId"]
            .as_str()
            .unwrap()
            .to_string();
        c.ok(&["wait", "volume-available", "--volume-ids", &v]);
        c.ok(&[
            "attach-volume",
            "--volume-id",
            &v,
            "--instance-id",
            &id,
            "--device",
            "/dev/sdf",
        ]);
        c.advance("1m");
        let (out, err, code) = exec(&c, &id, &["sudo", "mkfs.xfs", "-q", "/dev/sdf"]);
        if links {
            assert_eq!(
                (out.as_str(), err.as_str(), code),
                ("", "", 0),
                "{image} {itype}"
            );
        } else {
            assert_eq!(err, real_err, "{image} {itype}");
            assert_eq!(code, real.status.code().unwrap(), "{image} {itype}");
            let (_, _, code) = exec(
                &c,
                &id,
                &["sudo", "mkfs.xfs", "-q", &format!("/dev/{kernel}")],
            );
            assert_eq!(code, 0, "{image}: the kernel's name");
        }
        let f = ok(
            &c,
            &id,
            &["lsblk", "-n", "-o", "FSTYPE", &format!("/dev/{kernel}")],
        );
        assert_eq!(f, "xfs\n", "{image} {itype}");
    }
}

/// The tools name themselves as typed (`resize2fs: ...`, not the path of
/// ebsim's link), an online shrink gets resize2fs's own refusal, and
/// `aws --help` is help with status 0.
#[test]
fn tool_names_online_shrink_and_aws_help() {
    let c = Cloud::new();
    let (id, _) = launch(&c, UBUNTU, "t2.micro", None, None);
    let (out, err, code) = exec(&c, &id, &["sudo", "resize2fs", "/dev/xvda1", "4G"]);
    assert_eq!(
        (out.as_str(), err.as_str(), code),
        (
            "Filesystem at /dev/xvda1 is mounted on /; on-line resizing required\n",
            "resize2fs 1.46.5 (30-Dec-2021)\nresize2fs: On-line shrinking not supported\n",
            1
        )
    );
    let (_, err, code) = exec(&c, &id, &["resize2fs", "-Q"]);
    assert!(
        err.starts_with("resize2fs 1.46.5 (30-Dec-2021)\nresize2fs: invalid option -- 'Q'\n"),
        "{err}"
    );
    assert_eq!(code, 1);
    let o = c.cmd("aws").arg("--help").output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stderr(&o), "");
    assert!(stdout(&o).contains("describe-volumes"));
}
