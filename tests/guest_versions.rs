//! Issue 13 item 5: mkfs.xfs's default features and log size, and
//! growpart's arithmetic and wording, follow each guest's own versions
//! (xfsprogs 4.5 on CentOS 7, 5.0 on Amazon Linux 2, 5.13 on Ubuntu 22.04,
//! 5.18 on Amazon Linux 2023; growpart 0.29, 0.31, 0.32 and 0.31).
//!
//! Only xfsprogs 6.1 and growpart 0.33 are installed here: the older
//! versions are checked against what their sources say (the tables below
//! cite them), and every filesystem ebsim makes for them is checked by the
//! real xfs_db 6.1, `xfs_repair -n` and a kernel loop mount. The 6.1 row is
//! also checked against the real mkfs.xfs.

mod common;
mod ec2_util;

use common::{require_mount, require_tools, run, stderr, stdout};
use ec2_util::Cloud;
use std::path::Path;
use std::process::{Command, Output};

const CENTOS_7: &str = "ami-002070d43b0a4f171";
const AL2: &str = "ami-0a3c3a20c09d6f377";
const UBUNTU: &str = "ami-080e1f13689e07408";
const AL2023: &str = "ami-051f8a213df8bc089";

/// A command in the guest: its output, whatever the status.
fn guest(cloud: &Cloud, id: &str, argv: &[&str]) -> Output {
    run(cloud
        .cmd(argv[0])
        .args(&argv[1..])
        .env("EBSIM_INSTANCE", id))
}

/// A command in the guest that must succeed: its stdout.
fn guest_ok(cloud: &Cloud, id: &str, argv: &[&str]) -> String {
    let o = guest(cloud, id, argv);
    assert!(
        o.status.success(),
        "{argv:?} failed: {}{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// A new volume of `gib` GiB attached to `inst` as /dev/sdf (xvdf on the
/// t2 instances used here); `prepare` runs on its image first.
fn data_volume(cloud: &Cloud, inst: &str, gib: &str, prepare: impl FnOnce(&Path)) -> String {
    let vol = cloud.volume(&["--size", gib, "--volume-type", "gp3"]);
    prepare(&cloud.image_of(&vol));
    cloud.ok(&[
        "attach-volume",
        "--volume-id",
        &vol,
        "--instance-id",
        inst,
        "--device",
        "/dev/sdf",
    ]);
    cloud.advance("10s");
    vol
}

fn detach(cloud: &Cloud, vol: &str) {
    cloud.ok(&["detach-volume", "--volume-id", vol]);
    cloud.advance("10s");
}

/// Superblock fields as the real xfs_db prints them (`name = value`).
fn xfs_db_sb(image: &Path) -> std::collections::BTreeMap<String, String> {
    let o = run(Command::new("xfs_db")
        .args(["-r", "-c", "sb 0", "-c", "print"])
        .arg(image));
    assert!(o.status.success(), "xfs_db: {}", stderr(&o));
    stdout(&o)
        .lines()
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// What one xfsprogs version's defaults give a filesystem of `gib` GiB
/// (4 KiB blocks, 4 AGs).
struct Want {
    ro_compat: u32,
    incompat: u32,
    logblocks: u64,
    /// First block of the log in its AG: the fixed metadata before it.
    prealloc: u64,
    rootino: u64,
    inoalignmt: u32,
    spino_align: u32,
}

/// `sb_features_ro_compat`: finobt 1, rmapbt 2, reflink 4, inobtcount 8.
/// `sb_features_incompat`: ftype 1, sparse inodes 2, bigtime 8, nrext64
/// 0x20.
///
/// Per version, from `mkfs/xfs_mkfs.c` at each tag (the `sb_feat`
/// defaults, `calculate_log_size`) and Red Hat's 4.5 build:
/// - 4.5.0 (CentOS 7): crc on; finobt off in Red Hat's build (upstream
///   turns it on; every CentOS 7 mkfs printout says `finobt=0`); no sparse
///   inodes (`spinodes = 0`), so chunks align to the 16 KiB cluster (4
///   blocks): the root chunk follows the 4 header/root blocks and the 4
///   free-list blocks at block 8, root inode 64. Log: 10 MiB (2560
///   blocks) from 1 GiB to 16 GiB, 2048:1 above (`logblocks =
///   dblocks / 2048`, never under 2560).
/// - 5.0.0 (Amazon Linux 2): finobt and sparse inodes on, rmapbt and
///   reflink off. Sparse inodes align whole chunks (8 blocks): the root
///   chunk at block 16, root inode 128. Same log rule as 4.5.
/// - 5.13.0 (Ubuntu 22.04): as 5.0 plus reflink (one more root block);
///   bigtime and inobtcount off. Same log rule.
/// - 5.18.0 (Amazon Linux 2023) and 6.1.0: as 5.13 plus bigtime and
///   inobtcount; the log is 2048:1 with a 64 MiB (16384 blocks) floor
///   (the rule changed in 5.15).
fn want(version: &str, gib: u64) -> Want {
    let blocks = gib << 18;
    let ramp = if gib < 16 {
        2560
    } else {
        (blocks / 2048).max(2560)
    };
    let realistic = (blocks / 2048).max(16384);
    match version {
        "4.5.0" => Want {
            ro_compat: 0,
            incompat: 0x1,
            logblocks: ramp,
            prealloc: 4,
            rootino: 64,
            inoalignmt: 4,
            spino_align: 0,
        },
        "5.0.0" => Want {
            ro_compat: 0x1,
            incompat: 0x3,
            logblocks: ramp,
            prealloc: 5,
            rootino: 128,
            inoalignmt: 8,
            spino_align: 4,
        },
        "5.13.0" => Want {
            ro_compat: 0x5,
            incompat: 0x3,
            logblocks: ramp,
            prealloc: 6,
            rootino: 128,
            inoalignmt: 8,
            spino_align: 4,
        },
        _ => Want {
            ro_compat: 0xd,
            incompat: 0xb,
            logblocks: realistic,
            prealloc: 6,
            rootino: 128,
            inoalignmt: 8,
            spino_align: 4,
        },
    }
}

/// Checks the superblock of `image` (a fresh mkfs of `gib` GiB) against
/// what `version`'s defaults give.
fn check_sb(image: &Path, version: &str, gib: u64, who: &str) {
    let sb = xfs_db_sb(image);
    let w = want(version, gib);
    let get = |k: &str| -> u64 {
        let v = sb
            .get(k)
            .unwrap_or_else(|| panic!("{who}: no {k} in {sb:?}"));
        match v.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).unwrap(),
            None => v.parse().unwrap(),
        }
    };
    let blocks = gib << 18;
    let agblocks = blocks / 4;
    let agblklog = 64 - (agblocks - 1).leading_zeros() as u64;
    let got = (
        get("dblocks"),
        get("agcount"),
        get("agblocks"),
        get("features_ro_compat"),
        get("features_incompat"),
        get("logblocks"),
        get("logstart"),
        get("rootino"),
        get("inoalignmt"),
        get("spino_align"),
        get("versionnum"),
        get("features2"),
    );
    let expect = (
        blocks,
        4,
        agblocks,
        u64::from(w.ro_compat),
        u64::from(w.incompat),
        w.logblocks,
        (2 << agblklog) | w.prealloc,
        w.rootino,
        u64::from(w.inoalignmt),
        u64::from(w.spino_align),
        0xb4a5,
        0x18a,
    );
    assert_eq!(got, expect, "{who}: xfsprogs {version}, {gib} GiB");
}

/// `xfs_repair -n` is clean, and the kernel mounts the filesystem and sees
/// `entries` entries in its root directory.
fn repair_and_mount(image: &Path, who: &str, entries: usize) {
    let o = run(Command::new("xfs_repair").arg("-n").arg(image));
    assert!(
        o.status.success(),
        "{who}: xfs_repair -n:\n{}{}",
        stdout(&o),
        stderr(&o)
    );
    let _lock = common::mount_lock();
    let dir = tempfile::tempdir().unwrap();
    let o = run(Command::new("mount")
        .args(["-o", "loop"])
        .arg(image)
        .arg(dir.path()));
    assert!(o.status.success(), "{who}: mount: {}", stderr(&o));
    let listed = std::fs::read_dir(dir.path()).map(|d| d.count());
    let o = common::umount_retrying(dir.path());
    assert!(o.status.success(), "{who}: umount: {}", stderr(&o));
    assert_eq!(listed.ok(), Some(entries), "{who}: the root's entries");
}

#[test]
fn mkfs_xfs_defaults_follow_each_guest_xfsprogs() {
    if !require_tools(&["xfs_db", "xfs_repair", "mkfs.xfs"]) || !require_mount() {
        return;
    }
    let cloud = Cloud::new();
    for (ami, version) in [
        (CENTOS_7, "4.5.0"),
        (AL2, "5.0.0"),
        (UBUNTU, "5.13.0"),
        (AL2023, "5.18.0"),
    ] {
        let inst = cloud.instance(ami, "t2.micro");
        let v = guest_ok(&cloud, &inst, &["mkfs.xfs", "-V"]);
        assert_eq!(v, format!("mkfs.xfs version {version}\n"), "{ami}");
        // 10 GiB: the 1–16 GiB step of the old log rule; 40 GiB: 2048:1.
        for gib in [10u64, 40] {
            let vol = data_volume(&cloud, &inst, &gib.to_string(), |_| {});
            let who = format!("{ami} {gib} GiB");
            guest_ok(&cloud, &inst, &["sudo", "mkfs.xfs", "-q", "/dev/xvdf"]);
            if gib == 10 {
                // The guest writes to it in that version's formats (the
                // inode records without sparse inodes, old timestamps).
                guest_ok(&cloud, &inst, &["sudo", "mkdir", "-p", "/data"]);
                guest_ok(&cloud, &inst, &["sudo", "mount", "/dev/xvdf", "/data"]);
                guest_ok(&cloud, &inst, &["sudo", "mkdir", "/data/dir"]);
                guest_ok(&cloud, &inst, &["sudo", "touch", "/data/dir/file"]);
                guest_ok(&cloud, &inst, &["sudo", "umount", "/data"]);
            }
            detach(&cloud, &vol);
            let image = cloud.image_of(&vol);
            check_sb(&image, version, gib, &who);
            repair_and_mount(&image, &who, usize::from(gib == 10));
            cloud.ok(&["delete-volume", "--volume-id", &vol]);
        }
        cloud.ok(&["terminate-instances", "--instance-ids", &inst]);
    }
    // 6.1 on this machine: ebsim's host-mode mkfs.xfs and the real one
    // give the same superblock fields, and both equal the table.
    let dir = tempfile::tempdir().unwrap();
    for gib in [10u64, 40] {
        let ours = dir.path().join(format!("ours{gib}.img"));
        let real = dir.path().join(format!("real{gib}.img"));
        for p in [&ours, &real] {
            let f = std::fs::File::create(p).unwrap();
            f.set_len(gib << 30).unwrap();
        }
        let o = run(common::ebsim("mkfs.xfs").arg("-q").arg(&ours));
        assert!(o.status.success(), "ebsim mkfs.xfs: {}", stderr(&o));
        let o = run(Command::new("mkfs.xfs").arg("-q").arg(&real));
        assert!(o.status.success(), "mkfs.xfs: {}", stderr(&o));
        check_sb(&real, "6.1.0", gib, "real mkfs.xfs 6.1");
        check_sb(&ours, "6.1.0", gib, "ebsim mkfs.xfs (host)");
        repair_and_mount(&ours, "ebsim mkfs.xfs (host)", 0);
    }
}

#[test]
fn old_mkfs_xfs_refuses_what_it_cannot_size() {
    // Under 1 GiB xfsprogs before 5.15 gives the bare minimum log, which
    // ebsim does not compute: it says so instead of guessing.
    let cloud = Cloud::new();
    let inst = cloud.instance(CENTOS_7, "t2.micro");
    let vol = data_volume(&cloud, &inst, "1", |_| {});
    let o = guest(
        &cloud,
        &inst,
        &["sudo", "mkfs.xfs", "-d", "size=512m", "/dev/xvdf"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert_eq!(
        stderr(&o),
        "mkfs.xfs: ebsim cannot size the minimum log mkfs.xfs 4.5.0 gives a filesystem of \
         131072 blocks: make it at least 262144 blocks\n"
    );
    // A feature the version knows but does not default to is made when
    // asked for, and one it does not know is unknown to it.
    let o = guest(
        &cloud,
        &inst,
        &["sudo", "mkfs.xfs", "-m", "finobt=1", "/dev/xvdf"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("finobt=1"), "{}", stdout(&o));
    let o = guest(
        &cloud,
        &inst,
        &["sudo", "mkfs.xfs", "-m", "bigtime=1", "/dev/xvdf"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("unknown option -m bigtime=1\n"),
        "{}",
        stderr(&o)
    );
    detach(&cloud, &vol);
}

/// A GPT with partition 1 at sector 2048, 1 GiB long (the real sgdisk).
fn gpt_1g(image: &Path) {
    let o = run(Command::new("sgdisk").args(["-n", "1:2048:+1G"]).arg(image));
    assert!(o.status.success(), "sgdisk: {}", stderr(&o));
}

/// An MBR with partition 1 at sector 2048, 1 GiB long (the real sfdisk).
fn mbr_1g(image: &Path) {
    let mut child = Command::new("sfdisk")
        .args(["-q", "--no-reread"])
        .arg(image)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"label: dos\nstart=2048, size=2097152, type=83\n")
        .unwrap();
    assert!(child.wait().unwrap().success(), "sfdisk");
}

/// The partition table's first partition as the real sfdisk dumps it.
fn real_dump_line(image: &Path) -> String {
    let o = run(Command::new("sfdisk").arg("--dump").arg(image));
    assert!(o.status.success(), "sfdisk --dump: {}", stderr(&o));
    let text = stdout(&o);
    text.lines()
        .find(|l| l.contains("start="))
        .map(|l| {
            let l = l.split_once(':').map_or(l, |(_, r)| r);
            l.split(',')
                .take(2)
                .collect::<Vec<_>>()
                .join(",")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// growpart's wording and arithmetic per version, from cloud-utils'
/// `bin/growpart` at tags 0.29, 0.31, ubuntu/0.32-22-g45fe84a5-0ubuntu1
/// and 0.33:
/// - before 0.33 `end` is one past the partition (`pt_end = size +
///   start`, `max_end` is the disk's sector count or the next start, the
///   GPT pad leaves `sectors − 33`, `new_size = max_end − start`): the
///   sizes written are 0.33's, the printed ends one higher;
/// - 0.29 caps every table at 2^32 sectors, and says so only at `-v`
///   (`WARN: disk is larger than 2TB. additional space will go unused.`);
///   0.31 on caps MBR only and always prints `WARNING: MBR/dos
///   partitioned disk is larger than 2TB. Additional space will go
///   unused.`;
/// - 0.29 writes `new: size=N,end=E`, later versions a space;
/// - `--free-percent` is new in 0.33 (older ones fail on it as an unknown
///   option); the FLOCK lines at `-v` are new in 0.32.
#[test]
fn growpart_follows_each_guest_version() {
    if !require_tools(&["sgdisk", "sfdisk"]) {
        return;
    }
    let cloud = Cloud::new();
    // (AMI, growpart, comma before the new end, 0.29's GPT cap).
    for (ami, version) in [
        (CENTOS_7, "0.29"),
        (AL2, "0.31"),
        (UBUNTU, "0.32"),
        (AL2023, "0.31"),
    ] {
        let inst = cloud.instance(ami, "t2.micro");
        let old = version == "0.29";
        let sep = if old { "," } else { " " };

        // 20 GiB GPT: the end numbering and the separator.
        let vol = data_volume(&cloud, &inst, "20", gpt_1g);
        let o = guest(&cloud, &inst, &["sudo", "growpart", "-N", "/dev/xvdf", "1"]);
        assert_eq!(
            (o.status.code(), stdout(&o)),
            (
                Some(0),
                format!(
                    "CHANGE: partition=1 start=2048 old: size=2097152 end=2099200 \
                     new: size=41940959{sep}end=41943007\n"
                )
            ),
            "{ami} growpart {version} -N"
        );
        let o = guest(&cloud, &inst, &["sudo", "growpart", "-v", "/dev/xvdf", "1"]);
        assert_eq!(
            (o.status.code(), stdout(&o)),
            (
                Some(0),
                format!(
                    "CHANGED: partition=1 start=2048 old: size=2097152 end=2099200 \
                     new: size=41940959{sep}end=41943007\n"
                )
            ),
            "{ami} growpart {version}: {}",
            stderr(&o)
        );
        let err = stderr(&o);
        assert_eq!(
            err.contains("FLOCK: /dev/xvdf: obtained exclusive lock"),
            version == "0.32",
            "{ami} {version}:\n{err}"
        );
        assert_eq!(
            err.contains("resize of /dev/xvdf returned 0."),
            !old,
            "{ami} {version}:\n{err}"
        );
        let o = guest(&cloud, &inst, &["sudo", "growpart", "/dev/xvdf", "1"]);
        assert_eq!(
            (o.status.code(), stdout(&o)),
            (
                Some(1),
                "NOCHANGE: partition 1 is size 41940959. it cannot be grown\n".to_string()
            ),
            "{ami} {version}"
        );
        let o = guest(
            &cloud,
            &inst,
            &["sudo", "growpart", "--free-percent=10", "/dev/xvdf", "1"],
        );
        assert_eq!(
            (o.status.code(), stdout(&o)),
            (
                Some(2),
                "FAILED: unknown option --free-percent=10\n".to_string()
            ),
            "{ami} {version}"
        );
        detach(&cloud, &vol);
        // The table the real sfdisk reads back: the same size as 0.33's.
        assert_eq!(
            real_dump_line(&cloud.image_of(&vol)),
            "start=        2048, size=    41940959",
            "{ami} {version}"
        );
        cloud.ok(&["delete-volume", "--volume-id", &vol]);

        // 3 TiB GPT: 0.29 caps it at 2^32 sectors, quietly.
        let vol = data_volume(&cloud, &inst, "3072", gpt_1g);
        let o = guest(
            &cloud,
            &inst,
            &["sudo", "growpart", "-N", "-v", "/dev/xvdf", "1"],
        );
        let (size, end) = if old {
            (4294965248u64, 4294967296u64)
        } else {
            (6442448863, 6442450911)
        };
        assert_eq!(
            (o.status.code(), stdout(&o)),
            (
                Some(0),
                format!(
                    "CHANGE: partition=1 start=2048 old: size=2097152 end=2099200 \
                     new: size={size}{sep}end={end}\n"
                )
            ),
            "{ami} {version} 3 TiB GPT"
        );
        assert_eq!(
            stderr(&o)
                .contains("WARN: disk is larger than 2TB. additional space will go unused.\n"),
            old,
            "{ami} {version}:\n{}",
            stderr(&o)
        );
        assert!(!stderr(&o).contains("MBR/dos"), "{ami} {version}");
        detach(&cloud, &vol);
        cloud.ok(&["delete-volume", "--volume-id", &vol]);

        // 3 TiB MBR: every version caps it; from 0.31 the warning is
        // printed without -v.
        let vol = data_volume(&cloud, &inst, "3072", mbr_1g);
        let o = guest(&cloud, &inst, &["sudo", "growpart", "-N", "/dev/xvdf", "1"]);
        assert_eq!(
            (o.status.code(), stdout(&o)),
            (
                Some(0),
                format!(
                    "CHANGE: partition=1 start=2048 old: size=2097152 end=2099200 \
                     new: size=4294965248{sep}end=4294967296\n"
                )
            ),
            "{ami} {version} 3 TiB MBR"
        );
        assert_eq!(
            stderr(&o).contains(
                "WARNING: MBR/dos partitioned disk is larger than 2TB. Additional space will go unused.\n"
            ),
            !old,
            "{ami} {version}:\n{}",
            stderr(&o)
        );
        detach(&cloud, &vol);
        cloud.ok(&["delete-volume", "--volume-id", &vol]);
        cloud.ok(&["terminate-instances", "--instance-ids", &inst]);
    }
}
