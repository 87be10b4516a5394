//! The guest's own xfsprogs layout (issue 13 item 5, the part done): on
//! each AMI, mkfs.xfs, xfs_info and xfs_growfs print the geometry block
//! as that AMI's xfsprogs version does (the format strings of
//! `mkfs/xfs_mkfs.c` and `growfs/xfs_growfs.c` at v4.5.0, of
//! `libfrog/fsgeom.c` at v5.13.0 and v5.18.0), with the features that
//! version's mkfs.xfs turns on (tests/guest_versions.rs checks the bits).
//! Only 6.1 runs here; the older layouts are checked against their
//! sources.

mod common;
mod ec2_util;

use common::{run, stderr, stdout};
use ec2_util::Cloud;

fn guest(cloud: &Cloud, id: &str, argv: &[&str]) -> String {
    let o = run(cloud
        .cmd(argv[0])
        .args(&argv[1..])
        .env("EBSIM_INSTANCE", id));
    assert!(
        o.status.success(),
        "{argv:?} failed: {}{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// (AMI, instance type, data device, version, the third and fourth lines
/// of mkfs.xfs, of xfs_info; the naming line's ascii-ci part; the log
/// name of xfs_info).
type Case<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
    &'a str,
    Option<&'a str>,
    &'a str,
    &'a str,
);

#[test]
fn each_ami_prints_its_xfsprogs_layout() {
    let cloud = Cloud::new();
    // (AMI, instance type, data device, version, the third and fourth
    // lines of mkfs.xfs, of xfs_info; the naming line's ascii-ci part; the
    // log name of xfs_info).
    let v5_third = "crc=1        finobt=1, sparse=1, rmapbt=0";
    let cases: &[Case] = &[
        (
            "ami-002070d43b0a4f171",
            "t2.micro",
            "/dev/xvdf",
            "4.5.0",
            // Red Hat's 4.5 defaults: no finobt, no sparse inodes.
            "crc=1        finobt=0, sparse=0",
            None,
            "crc=1        finobt=0 spinodes=0",
            None,
            "ascii-ci=0 ftype=1",
            "internal ",
        ),
        (
            // Amazon's 5.0.0: 5.0's defaults (finobt and sparse inodes,
            // no reflink), printed with the backported bigtime and
            // inobtcount fields.
            "ami-0a3c3a20c09d6f377",
            "t3.micro",
            "/dev/nvme1n1",
            "5.0.0",
            v5_third,
            Some("reflink=0    bigtime=0 inobtcount=0\n"),
            v5_third,
            Some("reflink=0    bigtime=0 inobtcount=0\n"),
            "ascii-ci=0, ftype=1",
            "internal log",
        ),
        (
            "ami-080e1f13689e07408",
            "t3.micro",
            "/dev/nvme1n1",
            "5.13.0",
            v5_third,
            // 5.13: reflink on, bigtime and inobtcount off.
            Some("reflink=1    bigtime=0 inobtcount=0\n"),
            v5_third,
            Some("reflink=1    bigtime=0 inobtcount=0\n"),
            "ascii-ci=0, ftype=1",
            "internal log",
        ),
        (
            "ami-051f8a213df8bc089",
            "t3.micro",
            "/dev/nvme1n1",
            "5.18.0",
            v5_third,
            Some("reflink=1    bigtime=1 inobtcount=1\n"),
            v5_third,
            Some("reflink=1    bigtime=1 inobtcount=1\n"),
            "ascii-ci=0, ftype=1",
            "internal log",
        ),
    ];
    let pad = "         =                       ";
    for &(ami, itype, dev, version, m3, m4, i3, i4, naming, logname) in cases {
        let inst = cloud.instance(ami, itype);
        let vol = cloud.volume(&["--size", "10"]);
        cloud.ok(&[
            "attach-volume",
            "--volume-id",
            &vol,
            "--instance-id",
            &inst,
            "--device",
            "/dev/sdf",
        ]);
        cloud.advance("10s");
        let v = guest(&cloud, &inst, &["mkfs.xfs", "-V"]);
        assert_eq!(v, format!("mkfs.xfs version {version}\n"), "{ami}");
        let lines = if m4.is_some() { 10 } else { 9 };
        let mkfs = guest(&cloud, &inst, &["sudo", "mkfs.xfs", dev]);
        let want = format!(
            "{pad}{m3}\n{}",
            m4.map(|l| format!("{pad}{l}")).unwrap_or_default()
        );
        assert!(mkfs.contains(&want), "{ami} mkfs:\n{mkfs}");
        assert_eq!(mkfs.lines().count(), lines, "{ami} mkfs:\n{mkfs}");
        assert!(mkfs.contains(naming), "{ami} mkfs:\n{mkfs}");
        assert!(mkfs.contains("log      =internal log "), "{ami}:\n{mkfs}");
        guest(&cloud, &inst, &["sudo", "mkdir", "-p", "/data"]);
        guest(&cloud, &inst, &["sudo", "mount", dev, "/data"]);
        let info = guest(&cloud, &inst, &["xfs_info", "/data"]);
        let want = format!(
            "{pad}{i3}\n{}",
            i4.map(|l| format!("{pad}{l}")).unwrap_or_default()
        );
        assert!(info.contains(&want), "{ami} xfs_info:\n{info}");
        assert_eq!(info.lines().count(), lines, "{ami} xfs_info:\n{info}");
        assert!(info.contains(naming), "{ami} xfs_info:\n{info}");
        assert!(
            info.contains(&format!("log      ={logname:<22} bsize=4096")),
            "{ami} xfs_info:\n{info}"
        );
        // xfs_growfs prints the same block first.
        let grow = guest(&cloud, &inst, &["sudo", "xfs_growfs", "/data"]);
        assert!(grow.starts_with(&info), "{ami} xfs_growfs:\n{grow}");
        assert!(!info.contains("nrext64"), "{ami}");
        // A smaller size: xfsprogs before 5.12 refuses it itself; later
        // ones try, and the kernel takes the free tail of the last AG.
        let o = run(cloud
            .cmd("sudo")
            .args(["xfs_growfs", "-D", "2500000", "/data"])
            .env("EBSIM_INSTANCE", &inst));
        if version < "5.12" {
            assert_eq!(o.status.code(), Some(1), "{ami}: {}", stderr(&o));
            assert_eq!(
                stderr(&o),
                "data size 2500000 too small, old size is 2621440\n",
                "{ami}"
            );
        } else {
            assert_eq!(o.status.code(), Some(0), "{ami}: {}", stderr(&o));
            assert_eq!(
                stderr(&o),
                "[EXPERIMENTAL] try to shrink unused space 2500000, old size is 2621440\n",
                "{ami}"
            );
            assert!(
                stdout(&o).ends_with("data blocks changed from 2621440 to 2500000\n"),
                "{ami}: {}",
                stdout(&o)
            );
        }
    }
}
