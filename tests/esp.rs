//! The EFI system partitions of the catalog images (issue 13 item 6): real
//! FATs written with the `fatfs` crate, checked by the real `fsck.vfat`,
//! `blkid` and a kernel mount; mounted at `/boot/efi` at boot and shown by
//! ebsim's lsblk and df as the kernel shows the same bytes.

#![allow(clippy::unwrap_used)]

mod common;
mod ec2_util;
mod guest_fs_util;

use common::{stderr, stdout};
use ebsim::ec2::catalog::{self, CATALOG, ImageBuilder, NativeImageBuilder};
use ec2_util::Cloud;
use guest_fs_util::{LoopMount, copy_range, partition};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// (catalog key, ESP partition, FSVER, LABEL, files with their sizes,
/// published `df -h` Size, Used, Avail, Use%).
struct Esp {
    key: &'static str,
    part: u32,
    version: &'static str,
    label: Option<&'static str>,
    df: [&'static str; 4],
}

const ESPS: &[Esp] = &[
    Esp {
        key: "ubuntu-22.04",
        part: 15,
        version: "FAT32",
        label: Some("UEFI"),
        df: ["105M", "6.1M", "99M", "6%"],
    },
    Esp {
        key: "al2023",
        part: 128,
        version: "FAT16",
        label: None,
        df: ["10M", "1.3M", "8.7M", "13%"],
    },
];

/// Every file and directory under `root` with its size (0 for
/// directories), relative and upper-cased as FAT stores short names.
fn tree(root: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            let rel = e
                .path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .to_string();
            if m.is_dir() {
                out.insert(rel, 0);
                stack.push(e.path());
            } else {
                out.insert(rel, m.len());
            }
        }
    }
    out
}

fn df_h(path: &Path) -> Vec<String> {
    let o = common::run(Command::new("df").arg("-h").arg(path));
    stdout(&o)
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .take(4)
        .map(str::to_string)
        .collect()
}

/// The kernel can mount FAT (the test machine's may be built without it:
/// then the real checker's cluster counts and mtools' listing stand in).
fn kernel_has_vfat() -> bool {
    let has = std::fs::read_to_string("/proc/filesystems")
        .unwrap_or_default()
        .lines()
        .any(|l| l.trim_start_matches("nodev").trim() == "vfat");
    if !has {
        eprintln!("this kernel has no vfat: checked with fsck.vfat and mtools only");
    }
    has
}

/// `fsck.vfat -n -v`'s (cluster size, data clusters, used clusters).
fn fsck_counts(img: &Path) -> (u64, u64, u64) {
    let o = common::run(Command::new("fsck.vfat").args(["-n", "-v"]).arg(img));
    let text = stdout(&o);
    assert!(o.status.success(), "fsck.vfat -n -v\n{text}{}", stderr(&o));
    let cluster = text
        .lines()
        .find(|l| l.ends_with("bytes per cluster"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    let last = text.lines().last().unwrap();
    let counts = last.rsplit(' ').nth(1).unwrap();
    let (used, total) = counts.split_once('/').unwrap();
    (cluster, total.parse().unwrap(), used.parse().unwrap())
}

/// mtools' recursive listing of the FAT in `img`.
fn mdir(img: &Path) -> Vec<String> {
    let o = common::run(
        Command::new("mdir")
            .env("MTOOLS_SKIP_CHECK", "1")
            .args(["-/", "-b", "-i"])
            .arg(img)
            .arg("::/"),
    );
    assert!(o.status.success(), "mdir: {}", stderr(&o));
    stdout(&o)
        .lines()
        .map(|l| l.trim_start_matches("::/").to_string())
        .collect()
}

#[test]
fn catalog_esps_are_real_fats() {
    if !common::require_tools(&["fsck.vfat", "blkid", "mdir", "mtype"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for esp in ESPS {
        let c = CATALOG.iter().find(|c| c.key == esp.key).unwrap();
        let img = dir.path().join(format!("{}.img", c.key));
        NativeImageBuilder.build(c, &img).unwrap();
        let (off, len) = partition(&img, esp.part);
        let copy = dir.path().join(format!("{}-esp.img", c.key));
        copy_range(&img, off, len, &copy);
        // Sparse: the FATs' zeros and the binaries' zeros are holes.
        let alloc = common::allocated(&copy);
        assert!(alloc < 256 << 10, "{}: {alloc} bytes allocated", c.key);

        let o = common::run(Command::new("fsck.vfat").arg("-n").arg(&copy));
        assert!(
            o.status.success(),
            "{}: fsck.vfat -n\n{}{}",
            c.key,
            stdout(&o),
            stderr(&o)
        );
        assert!(!stdout(&o).contains("differ"), "{}", stdout(&o));

        let id = catalog::fat_volume_id(c, esp.part);
        let o = common::run(
            Command::new("blkid")
                .args(["-p", "-o", "export"])
                .arg(&copy),
        );
        let blkid = stdout(&o);
        assert!(blkid.contains("TYPE=vfat\n"), "{blkid}");
        assert!(blkid.contains(&format!("UUID={id}\n")), "{blkid}");
        assert!(
            blkid.contains(&format!("VERSION={}\n", esp.version)),
            "{blkid}"
        );
        match esp.label {
            Some(l) => assert!(blkid.contains(&format!("\nLABEL={l}\n")), "{blkid}"),
            None => {
                assert!(!blkid.contains("\nLABEL="), "{blkid}");
                assert!(blkid.contains("SEC_TYPE=msdos\n"), "{blkid}");
            }
        }

        // ebsim's own reading: blkid's fields and the kernel's statfs.
        let dev = ebsim::blockdev::ImageFile::open(&copy, ebsim::blockdev::image::Access::ReadOnly)
            .unwrap();
        let info = ebsim::fs::probe(&dev).unwrap().unwrap();
        assert_eq!(info.kind, ebsim::fs::FsKind::Vfat);
        assert_eq!(info.uuid, id);
        assert_eq!(info.version.as_deref(), Some(esp.version));
        assert_eq!(info.label, esp.label.unwrap_or(""));
        let ours = ebsim::fs::statfs(&dev, info.kind, true).unwrap();
        drop(dev);
        // The real checker's counts are statfs's.
        let (cluster, total, used) = fsck_counts(&copy);
        assert_eq!(
            [ours.frsize, ours.blocks, ours.bfree, ours.bavail],
            [cluster, total, total - used, total - used],
            "{}: statfs against fsck.vfat's counts",
            c.key
        );
        let listed = mdir(&copy);
        assert!(
            listed.iter().any(|l| l == "EFI/BOOT/BOOTX64.EFI"),
            "{listed:?}"
        );
        if c.key.starts_with("ubuntu") {
            for f in [
                "EFI/ubuntu/grub.cfg",
                "EFI/ubuntu/shimx64.efi",
                "EFI/ubuntu/grubx64.efi",
            ] {
                assert!(listed.iter().any(|l| l == f), "{f}: {listed:?}");
            }
            let o = common::run(
                Command::new("mtype")
                    .env("MTOOLS_SKIP_CHECK", "1")
                    .arg("-i")
                    .arg(&copy)
                    .arg("::/EFI/ubuntu/grub.cfg"),
            );
            let root = catalog::uuid_text(&catalog::fs_uuid(c, 1));
            assert!(
                stdout(&o).starts_with(&format!("search.fs_uuid {root} root\n")),
                "{}",
                stdout(&o)
            );
        }
        if !(kernel_has_vfat()
            && common::require_tools(&["losetup", "mount", "df"])
            && common::require_mount())
        {
            continue;
        }
        let _lock = common::mount_lock();
        let m = LoopMount::new(&copy, Some("ro"));
        let s = nix::sys::statvfs::statvfs(m.dir.path()).unwrap();
        assert_eq!(
            [ours.frsize, ours.blocks, ours.bfree, ours.bavail],
            [
                s.fragment_size(),
                s.blocks(),
                s.blocks_free(),
                s.blocks_available()
            ],
            "{}: statfs against the kernel's",
            c.key
        );
        assert_eq!(df_h(m.dir.path()), esp.df, "{}: df -h", c.key);
        let files = tree(m.dir.path());
        assert!(files.contains_key("EFI/BOOT/BOOTX64.EFI"), "{files:?}");
        if c.key.starts_with("ubuntu") {
            for f in [
                "EFI/ubuntu/grub.cfg",
                "EFI/ubuntu/shimx64.efi",
                "EFI/ubuntu/grubx64.efi",
            ] {
                assert!(files.contains_key(f), "{f}: {files:?}");
            }
            let cfg = std::fs::read_to_string(m.dir.path().join("EFI/ubuntu/grub.cfg")).unwrap();
            let root = catalog::uuid_text(&catalog::fs_uuid(c, 1));
            assert!(
                cfg.starts_with(&format!("search.fs_uuid {root} root\n")),
                "{cfg}"
            );
        }
        drop(m);
    }
}

const UBUNTU: &str = "ami-080e1f13689e07408";
const AL2023: &str = "ami-051f8a213df8bc089";

fn exec(c: &Cloud, id: &str, cmd: &[&str]) -> String {
    let o = c.cmd("exec").arg(id).arg("--").args(cmd).output().unwrap();
    assert!(o.status.success(), "{cmd:?}: {}", stderr(&o));
    stdout(&o)
}

fn launch(c: &Cloud, image: &str, itype: &str) -> (String, String) {
    let r = c.ok(&[
        "run-instances",
        "--image-id",
        image,
        "--instance-type",
        itype,
    ]);
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

/// At boot the ESP is mounted at /boot/efi as the AMI's fstab says; lsblk
/// shows its FAT and df its published row, the same numbers as the
/// kernel's mount of the same bytes; a reboot mounts it again.
#[test]
fn esp_is_mounted_at_boot_efi() {
    if !common::require_tools(&["fsck.vfat"]) {
        return;
    }
    let c = Cloud::new();
    for (image, key, itype, dev, part, size, pct) in [
        (
            UBUNTU,
            "ubuntu-22.04",
            "t2.micro",
            "/dev/xvda15",
            15,
            "105M",
            "6%",
        ),
        (
            AL2023,
            "al2023",
            "t3.micro",
            "/dev/nvme0n1p128",
            128,
            "10M",
            "13%",
        ),
    ] {
        let cat = CATALOG.iter().find(|x| x.key == key).unwrap();
        let uuid = catalog::fat_volume_id(cat, part);
        let (id, vol) = launch(&c, image, itype);
        let esp = ESPS.iter().find(|e| e.key == key).unwrap();
        let df = exec(&c, &id, &["df", "-h", "/boot/efi"]);
        let want = format!("{dev} {size} {} {} {pct} /boot/efi", esp.df[1], esp.df[2]);
        let got = df
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(got, want, "{df}");
        let name = dev.trim_start_matches("/dev/");
        let l = exec(
            &c,
            &id,
            &[
                "lsblk",
                "-n",
                "-o",
                "NAME,FSTYPE,FSVER,LABEL,UUID,MOUNTPOINT",
                "-r",
                dev,
            ],
        );
        let label = esp.label.unwrap_or("");
        assert_eq!(
            l,
            format!("{name} vfat {} {label} {uuid} /boot/efi\n", esp.version),
            "lsblk -r"
        );
        let f = exec(&c, &id, &["lsblk", "-f", dev]);
        assert!(
            f.contains("vfat") && f.contains(&uuid) && f.contains("/boot/efi"),
            "{f}"
        );
        let mounts = exec(&c, &id, &["mount", "-t", "vfat"]);
        assert!(
            mounts.starts_with(&format!("{dev} on /boot/efi type vfat (rw,"))
                && mounts.contains(",fmask=0077,dmask=0077,codepage=437,")
                && mounts.lines().count() == 1,
            "mount -t vfat: {mounts}"
        );

        // df -B1 equals the kernel's for the same bytes.
        let ours = exec(
            &c,
            &id,
            &["df", "-B1", "--output=size,used,avail", "/boot/efi"],
        );
        let img = c.image_of(&vol);
        let (off, len) = partition(&img, part);
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("esp.img");
        copy_range(&img, off, len, &copy);
        let (cluster, total, used) = fsck_counts(&copy);
        let nums: Vec<u64> = ours
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        assert_eq!(
            nums,
            [total * cluster, used * cluster, (total - used) * cluster],
            "{key}: df -B1 /boot/efi against fsck.vfat's counts"
        );
        if kernel_has_vfat() {
            let _lock = common::mount_lock();
            let m = LoopMount::new(&copy, Some("ro"));
            let o = common::run(
                Command::new("df")
                    .args(["-B1", "--output=size,used,avail"])
                    .arg(m.path()),
            );
            assert_eq!(
                ours,
                stdout(&o),
                "{key}: df -B1 /boot/efi against the kernel"
            );
        }

        c.ok(&["reboot-instances", "--instance-ids", &id]);
        c.ok(&["wait", "instance-running", "--instance-ids", &id]);
        let df = exec(&c, &id, &["df", "-h", "/boot/efi"]);
        let got = df
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(got, want, "after a reboot: {df}");
    }
}
