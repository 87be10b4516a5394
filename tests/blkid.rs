//! `ebsim blkid` against the real blkid (util-linux 2.38.1): image files
//! made by the real mkfs tools, sgdisk and sfdisk probed by both with the
//! same arguments (stdout, stderr, exit code); partitions through a loop
//! device against the library's tags for the same disk; and inside
//! instances, against what the AMI's devices hold (ebsim's lsblk -f).

#![allow(clippy::unwrap_used)]

mod common;
mod ec2_util;

use common::*;
use ec2_util::Cloud;
use std::path::Path;
use std::process::Command;

/// stdout, stderr and exit code of a command.
fn triple(c: &mut Command) -> (String, String, i32) {
    let o = run(c);
    (stdout(&o), stderr(&o), o.status.code().unwrap_or(-1))
}

/// The real blkid and ebsim's, in `dir`, without a cache file (the real
/// one would otherwise remember files between runs), with `args`.
fn both(dir: &Path, home: &Path, args: &[&str]) {
    let mut a = vec!["-c", "/dev/null"];
    a.extend_from_slice(args);
    let real = triple(Command::new("blkid").args(&a).current_dir(dir));
    let ours = triple(
        ebsim("blkid")
            .args(&a)
            .current_dir(dir)
            .env("EBSIM_HOME", home)
            .env_remove("EBSIM_INSTANCE"),
    );
    assert_eq!(ours, real, "blkid {a:?}");
}

fn make_images(dir: &Path) {
    let s = |script: &str| {
        sh(&format!("cd {} && {script}", dir.display()));
    };
    s("truncate -s 64M e4.img && mkfs.ext4 -q -L 'my data' e4.img");
    s("truncate -s 64M e4b.img && mkfs.ext4 -q -b 4096 e4b.img");
    // The ext family by its features: ext2, ext3 (SEC_TYPE ext2), a test
    // filesystem (ext4dev), ext4 without extents, revision 0.
    s("truncate -s 64M e2.img && mkfs.ext2 -q e2.img");
    s("truncate -s 64M e3.img && mkfs.ext3 -q e3.img");
    s("truncate -s 64M e4dev.img && mkfs.ext4 -q -E test_fs e4dev.img");
    s(
        "truncate -s 64M e4ne.img && mkfs.ext4 -q -O ^extent,^64bit,^flex_bg,^metadata_csum e4ne.img",
    );
    s("truncate -s 64M r0.img && mke2fs -q -r 0 r0.img");
    s("truncate -s 300M x.img && mkfs.xfs -q -L xl x.img");
    s("truncate -s 300M xs.img && mkfs.xfs -q -f -s size=4096 xs.img");
    s("truncate -s 64M f16.img && mkfs.vfat -n EFI f16.img >/dev/null");
    s("truncate -s 300M f32.img && mkfs.vfat -F 32 -n 'BIG ESP' f32.img >/dev/null");
    s("truncate -s 64M fnl.img && mkfs.vfat fnl.img >/dev/null");
    s("truncate -s 64M s.img && mkswap -L sw s.img >/dev/null 2>&1");
    s("truncate -s 64M s0.img && mkswap s0.img >/dev/null 2>&1");
    // A label needing every escape: spaces, quotes, $, UTF-8.
    s("truncate -s 32M q.img && mkfs.ext4 -q -L 'a \"b\" $c\u{b4}\u{e9}' q.img");
    s("truncate -s 32M z.img");
    s(
        "truncate -s 200M g.img && sgdisk -n 1:2048:+50M -c 1:'root fs' -t 1:8300 \
       -n 2:0:+30M -c 2:EFI -t 2:ef00 -A 2:set:2 -n 3:0:+20M g.img >/dev/null",
    );
    s(
        "truncate -s 200M m.img && printf 'label: dos\\n,50M,83,*\\n,20M,82\\n,,5\\n,30M,83\\n,20M,b\\n' \
       | sfdisk -q m.img",
    );
    // Damaged ones: an ext4 cut after its superblock, one with its magic
    // gone, an XFS cut to 4 KiB.
    s("head -c 4096 e4.img > cut.img");
    s("cp --sparse=always e4.img nomagic.img && printf '\\0\\0' \
       | dd of=nomagic.img bs=1 seek=1080 conv=notrunc status=none");
    s("head -c 4096 x.img > xcut.img");
}

#[test]
fn image_files_as_the_real_blkid_sees_them() {
    if !require_tools(&[
        "blkid",
        "mkfs.ext4",
        "mkfs.xfs",
        "mkfs.vfat",
        "mkswap",
        "sgdisk",
        "sfdisk",
    ]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let d = tmp.path();
    make_images(d);
    let h = home.path();
    let files = [
        "e4.img",
        "e4b.img",
        "e2.img",
        "e3.img",
        "e4dev.img",
        "e4ne.img",
        "r0.img",
        "x.img",
        "xs.img",
        "f16.img",
        "f32.img",
        "fnl.img",
        "s.img",
        "s0.img",
        "q.img",
        "z.img",
        "g.img",
        "m.img",
        "cut.img",
        "nomagic.img",
        "xcut.img",
        "nonexistent.img",
    ];
    for f in files {
        for args in [
            &[][..],
            &["-p"],
            &["-p", "-o", "export"],
            &["-p", "-o", "udev"],
            &["-p", "-o", "value"],
            &["-o", "value", "-s", "UUID"],
            &["-o", "export"],
            &["-o", "udev"],
            &["-o", "full"],
            &["-o", "device"],
            &["-o", "list"],
            &["-d"],
            &["-s", "TYPE", "-s", "LABEL"],
            &["-p", "-s", "VERSION", "-o", "value"],
        ] {
            let mut a = args.to_vec();
            a.push(f);
            both(d, h, &a);
        }
    }
    // Several at once: the listing skips what has no tags; -p stops there.
    for args in [
        &["e4.img", "z.img", "x.img", "nonexistent.img", "f16.img"][..],
        &["-p", "e4.img", "x.img", "s.img", "g.img", "m.img"],
        &["-p", "e4.img", "z.img", "x.img"],
        &["-p", "nonexistent.img", "e4.img"],
        &["-p", "z.img"],
        &["-p", "nonexistent.img"],
        &["-p", "-o", "device", "e4.img", "z.img"],
        &["-p", "-o", "export", "e4.img", "f32.img", "q.img"],
        &["-p", "-o", "udev", "e4.img", "f32.img"],
        &["-o", "export", "-s", "TYPE", "e4.img", "z.img", "x.img"],
        &["-o", "udev", "e4.img", "s.img"],
        &["-o", "list", "e4.img", "q.img", "f16.img", "z.img"],
        &["-o", "value", "e4.img", "f16.img"],
        &["-s", "NOPE", "e4.img", "x.img"],
        &["-p", "-s", "NOPE", "e4.img", "x.img"],
        &["-p", "-o", "export", "-s", "NOPE", "e4.img", "x.img"],
        &["-t", "TYPE=vfat", "e4.img", "f16.img", "f32.img"],
        &[
            "-l",
            "-t",
            "TYPE=vfat",
            "-o",
            "device",
            "e4.img",
            "f16.img",
            "f32.img",
        ],
        &["-t", "LABEL=zz", "e4.img"],
        &["-p", "-D", "e4.img"],
        &["-g", "e4.img"],
        &[".", "e4.img"],
    ] {
        both(d, h, args);
    }
    // Usage errors, version, help.
    for args in [
        &["-o", "bogus", "e4.img"][..],
        &["-p", "-o", "list", "e4.img"],
        &["-p"],
        &["-p", "-o", "list"],
        &["-t", "bad", "e4.img"],
        &["-q"],
        &["--bogus"],
        &["-o"],
        &["-L"],
        &["-V"],
        &["--version"],
        &["-h"],
    ] {
        both(d, h, args);
    }
}

/// The tags of each partition of a disk image, compared with the real
/// blkid on a loop device of the same image (the library's probe given the
/// loop device's name and numbers, so whole lines compare).
#[test]
fn partitions_as_the_real_blkid_sees_them_on_a_loop_device() {
    use ebsim::blockdev::ImageFile;
    use ebsim::blockdev::image::Access;
    use ebsim::guest::blkid::{Printer, probe_disk};
    use ebsim::guest::lsblk::UtilLinux;
    if !(require_tools(&[
        "blkid",
        "losetup",
        "partx",
        "mkfs.ext4",
        "mkfs.vfat",
        "mkswap",
        "mkfs.xfs",
        "sgdisk",
        "sfdisk",
    ]) && require_mount())
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    make_images(d);
    for img in ["g.img", "m.img"] {
        let path = d.join(img);
        let _lock = mount_lock();
        let dev = stdout(&sh(&format!("losetup -P --show -f {}", path.display())))
            .trim()
            .to_string();
        let result = std::panic::catch_unwind(|| {
            // The kernel's scan may not have run here: partx adds them.
            if !Path::new(&format!("{dev}p1")).exists() {
                let _ = run(Command::new("partx").args(["-a", &dev]));
            }
            let parts: Vec<String> = (1..=6)
                .map(|n| format!("{dev}p{n}"))
                .filter(|p| Path::new(p).exists())
                .collect();
            assert!(parts.len() >= 3, "{img}: partitions of {dev}: {parts:?}");
            // Filesystems on the partitions, made by the real tools.
            sh(&format!("mkfs.ext4 -q -L rootfs {}", parts[0]));
            sh(&format!("mkswap -L sw {} >/dev/null 2>&1", parts[1]));
            if img == "g.img" {
                sh(&format!("mkfs.vfat -n ESP {} >/dev/null", parts[2]));
            }
            sh("sync");
            let name = dev.trim_start_matches("/dev/");
            let devno = stdout(&sh(&format!("cat /sys/block/{name}/dev")));
            let (maj, min) = devno.trim().split_once(':').unwrap();
            let devno = (maj.parse().unwrap(), min.parse().unwrap());
            let image = ImageFile::open(&path, Access::ReadOnly).unwrap();
            let probed = probe_disk(&image, name, devno, UtilLinux::V2_37, &|_| None);
            let ours_of = |p: &str| {
                probed
                    .iter()
                    .find(|(_, d)| d.path == p)
                    .map(|(_, d)| d.clone())
                    .unwrap_or_else(|| panic!("{img}: ebsim has no {p}"))
            };
            // An extended partition is probed as the kernel's 1 KiB stub
            // there; ebsim lists only the partitions that hold data.
            let data_parts: Vec<&String> = parts
                .iter()
                .filter(|p| !(img == "m.img" && p.ends_with("p3")))
                .collect();
            for p in &data_parts {
                for (low, format) in [
                    (false, "full"),
                    (true, "full"),
                    (true, "udev"),
                    (false, "export"),
                ] {
                    let mut a = vec!["-c", "/dev/null", "-o", format];
                    if low {
                        a.push("-p");
                    }
                    a.push(p);
                    let real = stdout(&run(Command::new("blkid").args(&a)));
                    let mut printer = Printer {
                        format: match format {
                            "udev" => ebsim::guest::blkid::Format::Udev,
                            "export" => ebsim::guest::blkid::Format::Export,
                            _ => ebsim::guest::blkid::Format::Full,
                        },
                        ..Printer::default()
                    };
                    let mut ours = String::new();
                    if low {
                        printer.low_device(&mut ours, &ours_of(p));
                    } else {
                        printer.cache_device(&mut ours, &ours_of(p));
                    }
                    assert_eq!(ours, real, "blkid {a:?}");
                }
            }
            // The whole disk.
            let real = stdout(&run(Command::new("blkid").args([
                "-c",
                "/dev/null",
                "-p",
                &dev,
            ])));
            let mut ours = String::new();
            Printer::default().low_device(&mut ours, &ours_of(&dev));
            assert_eq!(ours, real, "blkid -p {dev}");
        });
        let _ = run(Command::new("partx").args(["-d", &dev]));
        detach_loop(&dev);
        if let Err(e) = result {
            std::panic::resume_unwind(e);
        }
    }
}

fn exec(c: &Cloud, id: &str, cmd: &[&str]) -> (String, String, i32) {
    triple(c.cmd("exec").arg(id).arg("--").args(cmd))
}

/// The root filesystem's LABEL and UUID as the instance's lsblk shows them.
fn lsblk_root(c: &Cloud, id: &str, dev: &str) -> (String, String) {
    let (out, _, code) = exec(c, id, &["lsblk", "-no", "LABEL,UUID", "-P", dev]);
    assert_eq!(code, 0);
    let field = |k: &str| {
        let start = out.find(&format!("{k}=\"")).unwrap() + k.len() + 2;
        let end = out[start..].find('"').unwrap() + start;
        out[start..end].to_string()
    };
    (field("LABEL"), field("UUID"))
}

#[test]
fn inside_an_ubuntu_instance() {
    let c = Cloud::new();
    let id = c.instance("ami-080e1f13689e07408", "t2.micro");
    let (label, uuid) = lsblk_root(&c, &id, "/dev/xvda1");
    assert_eq!(label, "cloudimg-rootfs");

    let (out, err, code) = exec(&c, &id, &["blkid"]);
    assert_eq!((err.as_str(), code), ("", 0));
    let root = out.lines().find(|l| l.starts_with("/dev/xvda1: ")).unwrap();
    assert!(
        root.starts_with(&format!(
            "/dev/xvda1: LABEL=\"cloudimg-rootfs\" UUID=\"{uuid}\" BLOCK_SIZE=\"4096\" TYPE=\"ext4\" PARTUUID=\""
        )),
        "{out}"
    );
    // Every partition once; the snaps' squashfs loops; no whole disk with
    // partitions.
    for dev in [
        "/dev/xvda1: ",
        "/dev/xvda14: ",
        "/dev/xvda15: ",
        "/dev/loop0: ",
    ] {
        assert_eq!(
            out.lines().filter(|l| l.starts_with(dev)).count(),
            1,
            "{out}"
        );
    }
    assert!(!out.contains("/dev/xvda: "), "{out}");
    assert!(out.contains("/dev/loop0: TYPE=\"squashfs\"\n"), "{out}");
    let esp = out
        .lines()
        .find(|l| l.starts_with("/dev/xvda15: "))
        .unwrap();
    assert!(
        esp.contains(" LABEL_FATBOOT=\"UEFI\" LABEL=\"UEFI\" "),
        "{esp}"
    );

    assert_eq!(
        exec(&c, &id, &["blkid", "-L", "cloudimg-rootfs"]),
        ("/dev/xvda1\n".into(), String::new(), 0)
    );
    assert_eq!(
        exec(&c, &id, &["blkid", "-U", &uuid]),
        ("/dev/xvda1\n".into(), String::new(), 0)
    );
    assert_eq!(
        exec(&c, &id, &["blkid", "-L", "nope"]),
        (String::new(), String::new(), 2)
    );
    assert_eq!(
        exec(
            &c,
            &id,
            &["blkid", "-o", "value", "-s", "UUID", "/dev/xvda1"]
        ),
        (format!("{uuid}\n"), String::new(), 0)
    );
    assert_eq!(
        exec(&c, &id, &["blkid", "-o", "device", "-t", "TYPE=vfat"]),
        ("/dev/xvda15\n".into(), String::new(), 0)
    );
    let (out, _, code) = exec(&c, &id, &["blkid", "-p", "-o", "export", "/dev/xvda1"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("DEVNAME=/dev/xvda1\nLABEL=cloudimg-rootfs\n"),
        "{out}"
    );
    assert!(
        out.contains("\nVERSION=1.0\n") && out.contains("\nPART_ENTRY_SCHEME=gpt\n"),
        "{out}"
    );
    assert!(out.ends_with("\nPART_ENTRY_DISK=202:0\n"), "{out}");
    let (out, _, _) = exec(&c, &id, &["blkid", "-p", "/dev/xvda"]);
    assert!(
        out.starts_with("/dev/xvda: PTUUID=\"") && out.ends_with("\" PTTYPE=\"gpt\"\n"),
        "{out}"
    );
    // A link under /dev/disk is printed as given.
    let (out, _, _) = exec(&c, &id, &["blkid", "-s", "TYPE", "/dev/disk/by-label/UEFI"]);
    assert_eq!(out, "/dev/disk/by-label/UEFI: TYPE=\"vfat\"\n");
    // -o list: the mount points.
    let (out, _, _) = exec(&c, &id, &["blkid", "-o", "list"]);
    assert!(
        out.starts_with("device     fs_type label    mount point    UUID\n\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "/dev/xvda1 ext4    cloudimg-rootfs /       {uuid}\n"
        )),
        "{out}"
    );
    // A device the instance lacks; nothing for -p.
    assert_eq!(
        exec(&c, &id, &["blkid", "/dev/xvdz"]),
        (String::new(), String::new(), 2)
    );
    assert_eq!(
        exec(&c, &id, &["blkid", "-p", "/dev/xvdz"]),
        (String::new(), String::new(), 2)
    );
}

#[test]
fn inside_amazon_linux_2_on_nitro() {
    let c = Cloud::new();
    let id = c.instance("ami-0a3c3a20c09d6f377", "t3.micro");
    let (label, uuid) = lsblk_root(&c, &id, "/dev/nvme0n1p1");
    assert_eq!(label, "/");
    // util-linux 2.30: no BLOCK_SIZE.
    let (out, _, code) = exec(&c, &id, &["blkid", "/dev/nvme0n1p1"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with(&format!(
            "/dev/nvme0n1p1: LABEL=\"/\" UUID=\"{uuid}\" TYPE=\"xfs\" PARTLABEL=\"Linux\" PARTUUID=\""
        )),
        "{out}"
    );
    assert_eq!(
        exec(&c, &id, &["blkid", "-L", "/"]),
        ("/dev/nvme0n1p1\n".into(), String::new(), 0)
    );
}

#[test]
fn on_the_host_a_device_name_is_the_running_instances() {
    let c = Cloud::new();
    let _id = c.instance("ami-080e1f13689e07408", "t2.micro");
    let o = run(c
        .cmd("blkid")
        .args(["-L", "UEFI"])
        .env_remove("EBSIM_INSTANCE"));
    assert_eq!(
        (stdout(&o).as_str(), o.status.code()),
        ("/dev/xvda15\n", Some(0))
    );
}
