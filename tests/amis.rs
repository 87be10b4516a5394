//! The catalog's root filesystems, built by ebsim's own partition, mkfs
//! and file code: the real checker is silent, the kernel mounts each root
//! and sees what ebsim's reader sees, `df` shows the published first-boot
//! figures (within 5 % of the used space), and the images stay small on
//! the host.

mod common;

use common::manifest::{
    LoopMount, assert_fsck_clean, assert_same, ebsim_manifest, of_dir, partition_range,
};
use common::{mount_lock, require_mount, require_tools};
use ebsim::ec2::catalog::{CATALOG, ImageBuilder, NativeImageBuilder};
use ebsim::ec2::rootfs;

/// What `df -h` shows for `/` on first boot, as published for each AMI:
/// (key, Size, Used, Avail, Use%).
const PUBLISHED: &[(&str, &str, &str, &str, &str)] = &[
    ("ubuntu-22.04", "7.6G", "1.5G", "6.1G", "20%"),
    ("ubuntu-22.04-arm64", "7.6G", "1.5G", "6.1G", "20%"),
    ("amzn2", "8.0G", "1.6G", "6.5G", "20%"),
    ("amzn2-arm64", "8.0G", "1.6G", "6.5G", "20%"),
    ("al2023", "8.0G", "1.6G", "6.4G", "20%"),
    ("al2023-arm64", "8.0G", "1.6G", "6.4G", "20%"),
    ("centos7", "10G", "1.5G", "8.6G", "15%"),
];

#[test]
fn catalog_roots_are_real_filesystems() {
    if !(require_tools(&["e2fsck", "xfs_repair", "losetup", "df"]) && require_mount()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for c in CATALOG {
        let Some(spec) = rootfs::spec_for(c) else {
            continue;
        };
        let img = dir.path().join(format!("{}.img", c.key));
        NativeImageBuilder.build(c, &img).expect("build");
        let root = c.layout.root_partition().expect("root").number;
        // Small on the host: metadata and the small files only.
        let alloc = common::allocated(&img);
        assert!(alloc < 16 << 20, "{}: {alloc} bytes on the host", c.key);
        let range = partition_range(&img, root);
        assert_fsck_clean(&img, Some(range));
        // Ubuntu's root is made with `-E resize=536870912`: room to grow
        // to 2 TiB, 255 reserved GDT blocks (mke2fs's default would
        // reserve for 1024 times the size).
        if c.key.starts_with("ubuntu") {
            let dev =
                ebsim::blockdev::ImageFile::open(&img, ebsim::blockdev::image::Access::ReadOnly)
                    .expect("open");
            let slice = ebsim::blockdev::Slice::new(dev, range.0, range.1).expect("slice");
            let sb = ebsim::fs::ext4::read_superblock(&slice).expect("superblock");
            assert_eq!(sb.s_reserved_gdt_blocks, 255, "{}", c.key);
        }
        let ours = ebsim_manifest(&img, Some(root));
        // Used space as a read-write mount shows it (an instance mounts its
        // root read-write; XFS then holds back its per-AG reservations,
        // which a read-only mount does not).
        let o = ebsim::imgio::open(&img, Some(root), true).expect("open");
        let st = o.fs.statfs().expect("statfs");
        drop(o);
        let used = (st.blocks - st.bfree) * st.frsize;
        let want = spec.used_bytes;
        assert!(
            used.abs_diff(want) * 20 <= want,
            "{}: {used} bytes used, published {want}",
            c.key
        );
        // The files a user looks at.
        let home = format!("/home/{}", ebsim::ec2::catalog::login_user(Some(c.key)));
        let home = home.as_str();
        assert_eq!((ours[home].uid, ours[home].gid), (1000, 1000), "{}", c.key);
        assert_eq!(ours["/tmp"].perm, 0o1777);
        for p in [
            "/etc/os-release",
            "/etc/fstab",
            "/etc/hostname",
            "/etc/cloud/cloud.cfg",
        ] {
            assert!(ours.contains_key(p), "{}: {p}", c.key);
        }
        // The kernel mounts it (read-write, as on boot) and sees the same;
        // df shows the published first-boot line.
        let _lock = mount_lock();
        let m = LoopMount::new(&img, Some(range), false);
        assert_same(&ours, &of_dir(m.path()), &format!("{}: the kernel", c.key));
        let cfg = std::fs::read_to_string(m.path().join("etc/cloud/cloud.cfg")).expect("cfg");
        for module in ["- growpart", "- resizefs"] {
            assert!(
                cfg.lines().any(|l| l.trim() == module),
                "{}: cloud.cfg without {module}",
                c.key
            );
        }
        let release = std::fs::read_to_string(m.path().join("etc/os-release")).expect("os-release");
        assert!(release.contains("PRETTY_NAME="), "{release}");
        let df = common::run(std::process::Command::new("df").arg("-h").arg(m.path()));
        let line = common::stdout(&df);
        let cols: Vec<&str> = line
            .lines()
            .nth(1)
            .unwrap_or("")
            .split_whitespace()
            .skip(1)
            .take(4)
            .collect();
        if let Some(&(_, size, used, avail, pct)) = PUBLISHED.iter().find(|p| p.0 == c.key) {
            assert_eq!(cols, [size, used, avail, pct], "{}: df -h\n{line}", c.key);
        }
        m.umount();
        assert_fsck_clean(&img, Some(range));
    }
}
