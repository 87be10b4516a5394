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

/// mtools' listing of one directory of the FAT in `img`: name (the long
/// name, else the short one) to (size or `<DIR>`, `YYYY-MM-DD H:MM`).
fn mdir_entries(img: &Path, dir: &str) -> BTreeMap<String, (String, String)> {
    let o = common::run(
        Command::new("mdir")
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-i")
            .arg(img)
            .arg(format!("::/{dir}")),
    );
    assert!(o.status.success(), "mdir ::/{dir}: {}", stderr(&o));
    let mut out = BTreeMap::new();
    for line in stdout(&o).lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        let Some(i) = t
            .iter()
            .position(|x| x.len() == 10 && x.as_bytes()[4] == b'-' && x.as_bytes()[7] == b'-')
        else {
            continue;
        };
        if i < 2 || t.len() < i + 2 {
            continue;
        }
        let name = if t.len() > i + 2 {
            t[i + 2..].join(" ")
        } else {
            t[..i - 1].join(".")
        };
        if name == "." || name == ".." {
            continue;
        }
        out.insert(
            name,
            (t[i - 1].to_string(), format!("{} {}", t[i], t[i + 1])),
        );
    }
    out
}

/// A copy of the ESP of volume `vol`.
fn esp_copy(c: &Cloud, vol: &str, part: u32, dir: &Path) -> std::path::PathBuf {
    let img = c.image_of(vol);
    let (off, len) = partition(&img, part);
    let copy = dir.join("esp.img");
    let _ = std::fs::remove_file(&copy);
    copy_range(&img, off, len, &copy);
    copy
}

/// Inside the guest, /boot/efi holds the ESP's files (served from the
/// image over FUSE): listing, stat, contents and statfs equal what the
/// real mtools and fsck.vfat read from the same partition, with the modes,
/// links, sizes and blocks the kernel's vfat driver derives under the
/// AMI's `umask=0077`. Files written inside the guest reach the image
/// through the commit path: after a stop `fsck.vfat -n` is clean and mtools
/// read the same bytes, and the next boot serves them again.
#[test]
fn esp_files_inside_the_guest() {
    if !common::require_tools(&["fsck.vfat", "mdir", "mtype", "sha256sum"]) {
        return;
    }
    let c = Cloud::new();
    for (image, key, itype, part, dir, cfg) in [
        (
            UBUNTU,
            "ubuntu-22.04",
            "t2.micro",
            15,
            "EFI/ubuntu",
            "EFI/ubuntu/grub.cfg",
        ),
        (
            AL2023,
            "al2023",
            "t3.micro",
            128,
            "EFI/BOOT",
            "EFI/amzn/grub.cfg",
        ),
    ] {
        let (id, vol) = launch(&c, image, itype);
        let tmp = tempfile::tempdir().unwrap();
        let copy = esp_copy(&c, &vol, part, tmp.path());
        let (cluster, total, used) = fsck_counts(&copy);

        // ls -la: names, sizes, times as mtools reads them; modes and
        // links as the kernel derives them.
        let ls = exec(
            &c,
            &id,
            &[
                "ls",
                "-la",
                "--time-style=+%Y-%m-%d %-H:%M",
                &format!("/boot/efi/{dir}"),
            ],
        );
        let want = mdir_entries(&copy, dir);
        let mut seen = BTreeMap::new();
        for line in ls.lines().skip(1) {
            let t: Vec<&str> = line.split_whitespace().collect();
            assert!(t.len() >= 8, "{line}");
            let name = t[7..].join(" ");
            if name == "." || name == ".." {
                assert_eq!(t[0], "drwx------", "{key}: {line}");
                continue;
            }
            let (mode, links, owner, group, size) = (t[0], t[1], t[2], t[3], t[4]);
            assert_eq!((owner, group), ("root", "root"), "{key}: {line}");
            let (wsize, wtime) = want
                .get(&name)
                .unwrap_or_else(|| panic!("{key}: {name} not in mdir: {want:?}"));
            if wsize == "<DIR>" {
                assert_eq!(mode, "drwx------", "{key}: {line}");
            } else {
                assert_eq!((mode, links), ("-rwx------", "1"), "{key}: {line}");
                assert_eq!(size, wsize.as_str(), "{key}: {line}");
            }
            assert_eq!(&format!("{} {}", t[5], t[6]), wtime, "{key}: {line}");
            seen.insert(name, ());
        }
        assert_eq!(
            seen.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{key}: ls -la /boot/efi/{dir} against mdir"
        );

        // stat: the root (no entry: epoch times, links 2 + subdirectories),
        // a directory and a file.
        let st = exec(
            &c,
            &id,
            &[
                "stat",
                "-c",
                "%A %h %s %b %B %o %u %g %Y",
                "/boot/efi",
                "/boot/efi/EFI",
                &format!("/boot/efi/{cfg}"),
            ],
        );
        let rows: Vec<&str> = st.lines().collect();
        let root_size = if key == "al2023" { 512 * 32 } else { cluster };
        assert_eq!(
            rows[0],
            format!(
                "drwx------ 3 {root_size} {} 512 {cluster} 0 0 0",
                root_size.div_ceil(cluster) * cluster / 512
            ),
            "{key}: stat /boot/efi"
        );
        let subdirs = mdir_entries(&copy, "EFI")
            .values()
            .filter(|(s, _)| s == "<DIR>")
            .count();
        assert!(
            rows[1].starts_with(&format!(
                "drwx------ {} {cluster} {} 512 {cluster} 0 0 ",
                subdirs + 2,
                cluster / 512
            )),
            "{key}: stat /boot/efi/EFI: {}",
            rows[1]
        );
        let body = common::run(
            Command::new("mtype")
                .env("MTOOLS_SKIP_CHECK", "1")
                .arg("-i")
                .arg(&copy)
                .arg(format!("::/{cfg}")),
        );
        let text = stdout(&body);
        let n = text.len() as u64;
        assert!(
            rows[2].starts_with(&format!(
                "-rwx------ 1 {n} {} 512 {cluster} 0 0 ",
                n.div_ceil(cluster) * cluster / 512
            )),
            "{key}: stat {cfg}: {}",
            rows[2]
        );

        // cat, and statfs as the kernel counts it.
        assert_eq!(exec(&c, &id, &["cat", &format!("/boot/efi/{cfg}")]), text);
        let sf = exec(&c, &id, &["stat", "-f", "-c", "%S %b %f %a", "/boot/efi"]);
        assert_eq!(
            sf.trim(),
            format!("{cluster} {total} {} {}", total - used, total - used),
            "{key}: stat -f /boot/efi against fsck.vfat's counts"
        );

        // Where the kernel has vfat: the same listing, stats and statfs
        // from a loop mount of the same bytes with the AMI's fstab options.
        if kernel_has_vfat()
            && common::require_tools(&["losetup", "mount"])
            && common::require_mount()
        {
            let _lock = common::mount_lock();
            let opts = if key == "al2023" {
                "ro,noatime,uid=0,gid=0,umask=0077,shortname=winnt"
            } else {
                "ro,umask=0077"
            };
            let m = LoopMount::new(&copy, Some(opts));
            let mp = m.path();
            let host = |c: &mut Command| stdout(&common::run(c));
            let kls = host(
                Command::new("ls")
                    .args(["-la", "--time-style=+%Y-%m-%d %-H:%M"])
                    .arg(mp.join(dir)),
            );
            assert_eq!(ls, kls, "{key}: ls -la against the kernel's");
            let kst = host(
                Command::new("stat")
                    .args(["-c", "%A %h %s %b %B %o %u %g %Y"])
                    .arg(&mp)
                    .arg(mp.join("EFI"))
                    .arg(mp.join(cfg)),
            );
            assert_eq!(st, kst, "{key}: stat against the kernel's");
            let ksf = host(
                Command::new("stat")
                    .args(["-f", "-c", "%S %b %f %a"])
                    .arg(&mp),
            );
            assert_eq!(sf, ksf, "{key}: stat -f against the kernel's");
            drop(m);
        }

        // Writes: a directory, a file of 70000 random bytes, a copy
        // renamed across directories, a file made and removed. They aim at
        // /boot/efi: nothing runs unless inside the guest.
        let script = "set -e
            hostname | grep -q '^ip-172-31-' || exit 99
            mkdir /boot/efi/EFI/test
            head -c 70000 /dev/urandom > /boot/efi/EFI/test/blob.bin
            cp /boot/efi/EFI/BOOT/BOOTX64.EFI /boot/efi/EFI/test/Shim.Copy.efi
            mv /boot/efi/EFI/test/Shim.Copy.efi /boot/efi/Shim.Copy.efi
            echo gone > /boot/efi/EFI/test/tmp.txt
            rm /boot/efi/EFI/test/tmp.txt
            sha256sum < /boot/efi/EFI/test/blob.bin
            stat -f -c '%f' /boot/efi";
        let out = exec(&c, &id, &["sh", "-c", script]);
        let mut lines = out.lines();
        let sum = lines
            .next()
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string();
        let free_live: u64 = lines.next().unwrap().trim().parse().unwrap();
        c.ok(&["stop-instances", "--instance-ids", &id]);
        c.ok(&["wait", "instance-stopped", "--instance-ids", &id]);
        let copy = esp_copy(&c, &vol, part, tmp.path());
        let o = common::run(Command::new("fsck.vfat").arg("-n").arg(&copy));
        let report = format!("{}{}", stdout(&o), stderr(&o));
        assert!(
            o.status.success(),
            "{key}: fsck.vfat -n after writes\n{report}"
        );
        assert!(
            !report.contains("differ") && !report.contains("Dirty") && !report.contains("orrect"),
            "{key}: {report}"
        );
        let (_, total2, used2) = fsck_counts(&copy);
        assert_eq!(
            total2 - used2,
            free_live,
            "{key}: statfs in the guest against fsck.vfat after the stop"
        );
        let blob = common::run(
            Command::new("sh")
                .arg("-c")
                .arg("MTOOLS_SKIP_CHECK=1 mtype -i \"$0\" ::/EFI/test/blob.bin | sha256sum")
                .arg(&copy),
        );
        assert_eq!(
            stdout(&blob).split_whitespace().next().unwrap(),
            sum,
            "{key}: the blob as mtools reads it"
        );
        let top = mdir_entries(&copy, "");
        assert!(top.contains_key("Shim.Copy.efi"), "{key}: {top:?}");
        let test = mdir_entries(&copy, "EFI/test");
        assert_eq!(
            test.keys().collect::<Vec<_>>(),
            ["blob.bin"],
            "{key}: {test:?}"
        );
        // The next boot serves what was written.
        c.ok(&["start-instances", "--instance-ids", &id]);
        c.ok(&["wait", "instance-running", "--instance-ids", &id]);
        let again = exec(
            &c,
            &id,
            &["sh", "-c", "sha256sum < /boot/efi/EFI/test/blob.bin"],
        );
        assert_eq!(again.split_whitespace().next().unwrap(), sum, "{key}");
        c.ok(&["terminate-instances", "--instance-ids", &id]);
    }
}
