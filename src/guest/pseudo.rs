//! The memory-backed mounts a real instance shows in `df` (tmpfs,
//! devtmpfs, efivarfs), per distribution and instance type, in the order
//! the instance mounts them (df lists /proc/mounts' order).
//!
//! Sizes follow the kernel: a tmpfs without `size=` gets half of
//! `MemTotal` (`/dev/shm`, and `/tmp` on Amazon Linux 2023); systemd mounts
//! `/run` with `size=20%` (Ubuntu 22.04, Amazon Linux 2023) or without a
//! size (Amazon Linux 2, CentOS 7: half), `/run/user/UID` with 10 %,
//! `/run/lock` with `size=5M`; devtmpfs is made early at boot, while
//! memory the kernel frees later is still reserved, so it is half of a
//! smaller total (8 MiB less on the 5.10 kernel of Amazon Linux 2, 24 MiB
//! less on CentOS 7's 3.10), except where systemd mounts it with
//! `size=4m` (Amazon Linux 2023). Ubuntu's `udev` devtmpfs and the
//! cgroup2 mounts do not appear in their published `df` outputs.
//!
//! `MemTotal` is less than the instance's memory (the kernel keeps some):
//! [`mem_total_kib`] holds it for the published t2.micro and t3.micro
//! outputs of each AMI, chosen inside the range every published df figure
//! of that AMI allows (df -h rounds up), and scales it with the nominal
//! memory for other types. The used figures of `/run` and `/run/user` are
//! modelled (a few files the running system keeps there).

use super::df::{Mount as DfMount, StatFs};
use super::lsblk::{Device, FsUsage};
use crate::ec2::instance_types::{Hypervisor, hypervisor};

/// One entry of a boot's mount order.
#[derive(Debug, Clone)]
pub enum Slot {
    /// A memory-backed filesystem.
    Pseudo(DfMount),
    /// Where the fstab's mount of this target comes.
    Fstab(&'static str),
}

/// `MemTotal` in KiB of an instance of `itype` running the catalog image
/// `flavour` (see the module doc).
pub fn mem_total_kib(flavour: &str, itype: &str) -> Option<u64> {
    let xen = hypervisor(itype) == Hypervisor::Xen;
    // MemTotal of a 1 GiB instance, KiB.
    let micro: u64 = match (flavour, xen) {
        (f, true) if f.starts_with("ubuntu") => 990_000,
        (f, false) if f.starts_with("ubuntu") => 936_857,
        (f, true) if f.starts_with("amzn2") => 988_500,
        (f, false) if f.starts_with("amzn2") => 962_048,
        (f, true) if f.starts_with("al2023") => 972_288,
        (f, false) if f.starts_with("al2023") => 926_208,
        ("centos7", true) => 1_013_248,
        ("centos7", false) => 986_000,
        _ => return None,
    };
    let mib = crate::ec2::instance_types::memory_mib(itype)?;
    Some(micro * mib / 1024)
}

const PAGE: u64 = 4096;

/// A tmpfs of `pages` pages with `used` bytes in it, on an instance
/// with `inodes` inodes per tmpfs (half of its memory pages).
fn tmpfs(source: &str, target: &str, pages: u64, used: u64, inodes: u64) -> Slot {
    let used_pages = used.div_ceil(PAGE).min(pages);
    Slot::Pseudo(DfMount {
        source: source.to_string(),
        fstype: if source == "devtmpfs" {
            "devtmpfs"
        } else {
            "tmpfs"
        }
        .to_string(),
        target: target.to_string(),
        stat: StatFs {
            frsize: PAGE,
            blocks: pages,
            bfree: pages - used_pages,
            bavail: pages - used_pages,
            files: inodes,
            ffree: inodes.saturating_sub(1 + used_pages),
        },
    })
}

/// The boot's mounts of an instance of `itype` running `flavour`, in
/// mount order; empty for an image ebsim does not know.
pub fn boot_order(flavour: Option<&str>, itype: &str) -> Vec<Slot> {
    let Some(flavour) = flavour else {
        return Vec::new();
    };
    let Some(total) = mem_total_kib(flavour, itype) else {
        return Vec::new();
    };
    let pages = total / 4;
    let half = pages / 2;
    let pct = |p: u64| pages * p / 100;
    let mib = |m: u64| m * 256;
    let nitro = hypervisor(itype) == Hypervisor::Nitro;
    if flavour.starts_with("ubuntu") {
        let mut v = vec![
            Slot::Fstab("/"),
            tmpfs("tmpfs", "/dev/shm", half, 0, half),
            tmpfs("tmpfs", "/run", pct(20), 868 << 10, half),
            tmpfs("tmpfs", "/run/lock", mib(5), 0, half),
        ];
        if nitro {
            // EFI variable storage as the firmware reports it (bytes).
            v.push(Slot::Pseudo(DfMount {
                source: "efivarfs".into(),
                fstype: "efivarfs".into(),
                target: "/sys/firmware/efi/efivars".into(),
                stat: StatFs {
                    frsize: 1,
                    blocks: 131_072,
                    bfree: 131_072 - 3_891,
                    bavail: 122_700,
                    files: 0,
                    ffree: 0,
                },
            }));
        }
        v.push(Slot::Fstab("/boot/efi"));
        v.push(tmpfs("tmpfs", "/run/user/1000", pct(10), 4096, half));
        v
    } else if flavour.starts_with("al2023") {
        vec![
            tmpfs("devtmpfs", "/dev", mib(4), 0, half),
            tmpfs("tmpfs", "/dev/shm", half, 0, half),
            tmpfs("tmpfs", "/run", pct(20), 2_936 << 10, half),
            Slot::Fstab("/"),
            tmpfs("tmpfs", "/tmp", half, 0, half),
            Slot::Fstab("/boot/efi"),
            tmpfs("tmpfs", "/run/user/1000", pct(10), 0, half),
        ]
    } else {
        // Amazon Linux 2 and CentOS 7: cgroup v1, /run without a size.
        let early = if flavour == "centos7" { 24 } else { 8 };
        let used_run = if flavour == "centos7" {
            13 << 20
        } else {
            412 << 10
        };
        vec![
            tmpfs("devtmpfs", "/dev", half.saturating_sub(mib(early)), 0, half),
            tmpfs("tmpfs", "/dev/shm", half, 0, half),
            tmpfs("tmpfs", "/run", half, used_run, half),
            tmpfs("tmpfs", "/sys/fs/cgroup", half, 0, half),
            Slot::Fstab("/"),
            tmpfs("tmpfs", "/run/user/1000", pct(10), 0, half),
        ]
    }
}

/// The snaps a jammy EC2 instance has mounted: (name, revision, size in
/// 4 KiB pages of the squashfs image the loop device is backed by).
/// Modelled: the names, revisions and lsblk sizes are those of published
/// `lsblk` outputs of early-2024 jammy instances; the byte sizes are the
/// 4 KiB multiples nearest those figures (snap images are padded to 4 KiB).
const UBUNTU_SNAPS: [(&str, &str, u64); 5] = [
    ("amazon-ssm-agent", "7628", 6_374),
    ("core18", "2812", 14_259),
    ("core20", "2182", 16_358),
    ("lxd", "27037", 22_272),
    ("snapd", "20671", 10_342),
];

/// squashfs' block size as `mksquashfs` (snapcraft) makes it: statfs
/// reports it as the fragment size, and every block as used.
const SQUASHFS_BLOCK: u64 = 128 << 10;

/// The loop devices of the image's snaps, as lsblk shows them: loop0 up,
/// major 7, read-only squashfs 4.0 images mounted on `/snap/NAME/REV`,
/// full (statfs reports no free block). Only the Ubuntu images have snaps;
/// `df` does not list them (jammy's df hides squashfs mounts of loop
/// devices by default, as its published outputs show), and they are no
/// disk of the instance's: the guest's tools do not find them.
pub fn snap_loops(flavour: Option<&str>) -> Vec<Device> {
    if !flavour.is_some_and(|f| f.starts_with("ubuntu")) {
        return Vec::new();
    }
    UBUNTU_SNAPS
        .iter()
        .zip(0u32..)
        .map(|(&(name, rev, pages), i)| {
            let size = pages * PAGE;
            Device {
                name: format!("loop{i}"),
                major: 7,
                minor: i,
                removable: false,
                read_only: true,
                size,
                kind: "loop".into(),
                mountpoints: vec![format!("/snap/{name}/{rev}")],
                fstype: Some("squashfs".into()),
                fsver: Some("4.0".into()),
                fs: Some(FsUsage {
                    frsize: SQUASHFS_BLOCK,
                    blocks: size.div_ceil(SQUASHFS_BLOCK),
                    bfree: 0,
                    bavail: 0,
                }),
                ..Device::default()
            }
        })
        .collect()
}

/// Puts the boot's memory-backed mounts among `mounts` (the instance's
/// disk mounts, in mount order): each fstab slot takes the mount on its
/// target, the rest come after the last slot (mounted after login).
pub fn merge(order: &[Slot], mounts: Vec<DfMount>) -> Vec<DfMount> {
    if order.is_empty() {
        return mounts;
    }
    let mut rest = mounts;
    let mut out = Vec::new();
    for s in order {
        match s {
            Slot::Pseudo(m) => out.push(m.clone()),
            Slot::Fstab(t) => {
                if let Some(i) = rest.iter().position(|m| m.target == *t) {
                    out.push(rest.remove(i));
                }
            }
        }
    }
    out.extend(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snap_sizes_print_as_published() {
        let got: Vec<(String, String, String)> = snap_loops(Some("ubuntu-22.04"))
            .iter()
            .map(|d| {
                assert_eq!(d.size % 4096, 0);
                (
                    d.name.clone(),
                    crate::guest::human::lsblk_size(d.size),
                    d.mountpoints.join(","),
                )
            })
            .collect();
        let want = [
            ("loop0", "24.9M", "/snap/amazon-ssm-agent/7628"),
            ("loop1", "55.7M", "/snap/core18/2812"),
            ("loop2", "63.9M", "/snap/core20/2182"),
            ("loop3", "87M", "/snap/lxd/27037"),
            ("loop4", "40.4M", "/snap/snapd/20671"),
        ];
        let want: Vec<(String, String, String)> = want
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect();
        assert_eq!(got, want);
        assert!(snap_loops(Some("al2023")).is_empty());
        assert!(snap_loops(None).is_empty());
    }

    fn human(bytes: u64) -> String {
        crate::guest::human::df_human(bytes, 1024)
    }

    /// (flavour, type, [(target, df -h Size)]) as published.
    #[test]
    fn sizes_match_the_published_df() {
        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
        let cases: &[Case] = &[
            (
                "ubuntu-22.04",
                "t2.micro",
                &[
                    ("/dev/shm", "484M"),
                    ("/run", "194M"),
                    ("/run/lock", "5.0M"),
                    ("/run/user/1000", "97M"),
                ],
            ),
            (
                "amzn2",
                "t2.micro",
                &[
                    ("/dev", "475M"),
                    ("/dev/shm", "483M"),
                    ("/run", "483M"),
                    ("/sys/fs/cgroup", "483M"),
                    ("/run/user/1000", "97M"),
                ],
            ),
            (
                "amzn2",
                "t3.micro",
                &[
                    ("/dev", "462M"),
                    ("/dev/shm", "470M"),
                    ("/run", "470M"),
                    ("/sys/fs/cgroup", "470M"),
                    ("/run/user/1000", "94M"),
                ],
            ),
            (
                "al2023",
                "t2.micro",
                &[
                    ("/dev", "4.0M"),
                    ("/dev/shm", "475M"),
                    ("/run", "190M"),
                    ("/tmp", "475M"),
                    ("/run/user/1000", "95M"),
                ],
            ),
            (
                "al2023",
                "t3.micro",
                &[
                    ("/dev", "4.0M"),
                    ("/dev/shm", "453M"),
                    ("/run", "181M"),
                    ("/tmp", "453M"),
                    ("/run/user/1000", "91M"),
                ],
            ),
            (
                "centos7",
                "t2.micro",
                &[
                    ("/dev", "471M"),
                    ("/dev/shm", "495M"),
                    ("/run", "495M"),
                    ("/sys/fs/cgroup", "495M"),
                    ("/run/user/1000", "99M"),
                ],
            ),
        ];
        for (flavour, itype, rows) in cases {
            let order = boot_order(Some(flavour), itype);
            let got: Vec<(String, String)> = order
                .iter()
                .filter_map(|s| match s {
                    Slot::Pseudo(m) => {
                        Some((m.target.clone(), human(m.stat.blocks * m.stat.frsize)))
                    }
                    Slot::Fstab(_) => None,
                })
                .collect();
            let want: Vec<(String, String)> = rows
                .iter()
                .map(|(t, s)| (t.to_string(), s.to_string()))
                .collect();
            assert_eq!(got, want, "{flavour} {itype}");
        }
        // efivarfs only on Nitro, only on Ubuntu.
        let has_efivarfs = |f: &str, t: &str| {
            boot_order(Some(f), t)
                .iter()
                .any(|s| matches!(s, Slot::Pseudo(m) if m.fstype == "efivarfs"))
        };
        assert!(has_efivarfs("ubuntu-22.04", "t3.micro"));
        assert!(!has_efivarfs("ubuntu-22.04", "t2.micro"));
        assert!(!has_efivarfs("al2023", "t3.micro"));
    }
}
