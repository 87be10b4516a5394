//! Fuzzing the FAT file layer that serves `/boot/efi` inside a guest:
//! damage to an ESP holding nested directories, long names and files of
//! several cluster counts (FAT16 and FAT32), then the layer walks, reads
//! and writes it. ebsim's own reader parses the boot sector, the FAT and
//! the directories; the writes go through the `fatfs` crate. Nothing may
//! panic; errors are fine.

use ebsim::blockdev::{BlockDevice, MemDevice};
use ebsim::fs::node::{Cred, Ctx, FileSystem, FileType, Ino, SetAttr, Timespec};
use ebsim::fs::vfat::{BuildOptions, Content, FatType, build};
use ebsim::fs::vfat_files::{FatFiles, FatOptions};
use proptest::prelude::*;
use std::sync::OnceLock;

fn ctx() -> Ctx {
    Ctx {
        cred: Cred::ROOT,
        now: Timespec {
            sec: 1_700_000_000,
            nsec: 0,
        },
    }
}

/// An ESP like the catalog's, with more in it: a deep tree, a directory
/// of many long names, files of 0 B to several clusters.
fn esp(fat_type: FatType, cluster: u32, size: u64) -> Vec<u8> {
    let mut dirs = vec!["EFI".to_string(), "EFI/BOOT".into(), "EFI/ubuntu".into()];
    let mut deep = String::from("EFI");
    for i in 0..6 {
        deep.push_str(&format!("/level {i} with a long name"));
        dirs.push(deep.clone());
    }
    dirs.push("many".into());
    let mut files = vec![
        ("EFI/BOOT/BOOTX64.EFI".to_string(), Content::Zeros(100_000)),
        (
            "EFI/ubuntu/grub.cfg".into(),
            Content::Bytes(b"search --fs-uuid --set=dev 1234\n".to_vec()),
        ),
        ("EFI/ubuntu/empty".into(), Content::Bytes(Vec::new())),
        (format!("{deep}/leaf.bin"), Content::Bytes(vec![0x5a; 9000])),
    ];
    for i in 0..60 {
        files.push((
            format!("many/A file with a rather long name {i:03}.txt"),
            Content::Bytes(vec![i as u8; 1 + i * 37]),
        ));
    }
    let opts = BuildOptions {
        fat_type,
        cluster,
        volume_id: 0x1234_abcd,
        label: Some("UEFI".into()),
        dirs,
        files,
        time: (2024, 3, 1, 12, 0, 4),
    };
    let batch = build(size, &opts).expect("build");
    let mut dev = MemDevice::new(size as usize);
    dev.commit(&batch).expect("commit");
    dev.bytes().to_vec()
}

fn fat16() -> &'static Vec<u8> {
    static IMG: OnceLock<Vec<u8>> = OnceLock::new();
    IMG.get_or_init(|| esp(FatType::Fat16, 2048, 10 << 20))
}

fn fat32() -> &'static Vec<u8> {
    static IMG: OnceLock<Vec<u8>> = OnceLock::new();
    IMG.get_or_init(|| esp(FatType::Fat32, 512, 34 << 20))
}

/// The offsets of the 512-byte sectors that are not all zero: the boot
/// sectors, the FATs, the directories and the files.
fn used_sectors(img: &[u8]) -> Vec<usize> {
    img.chunks(512)
        .enumerate()
        .filter(|(_, s)| s.iter().any(|&b| b != 0))
        .map(|(i, _)| i * 512)
        .collect()
}

/// Everything the file layer does: statfs, walk, stat, read; then
/// changes of every kind and a sync. Errors are fine.
fn exercise(img: Vec<u8>) {
    let dev = MemDevice::from_bytes(img);
    let Ok(mut fs) = FatFiles::open(dev, false, FatOptions::from_mount_options("umask=0077"))
    else {
        return;
    };
    let _ = fs.statfs();
    let root = fs.root();
    let mut stack: Vec<(Ino, u32)> = vec![(root, 0)];
    let mut seen = 0;
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = fs.readdir(d) else { continue };
        for e in entries {
            seen += 1;
            if seen > 3000 {
                break;
            }
            let _ = fs.lookup(d, &e.name);
            let Ok(a) = fs.getattr(e.ino) else { continue };
            match a.kind {
                FileType::Directory if depth < 12 => {
                    stack.push((e.ino, depth + 1));
                    dirs.push((d, e.name.clone()));
                }
                FileType::Regular => {
                    let mut buf = vec![0u8; 70_000];
                    let _ = fs.read(e.ino, 0, &mut buf);
                    let _ = fs.read(e.ino, a.size.saturating_sub(10), &mut buf);
                    files.push((d, e.name.clone(), e.ino));
                }
                _ => {}
            }
        }
    }
    let c = ctx();
    if let Ok(a) = fs.mknod(c, root, b"fuzz-new.bin", FileType::Regular, 0o600, 0) {
        let _ = fs.write(c, a.ino, 3000, &[1u8; 10_000]);
        let size = SetAttr {
            size: Some(100),
            ..SetAttr::default()
        };
        let _ = fs.setattr(c, a.ino, size);
    }
    if let Ok(d) = fs.mkdir(c, root, b"fuzz dir", 0o700) {
        let _ = fs.mknod(c, d.ino, b"inner", FileType::Regular, 0o600, 0);
    }
    for (d, name, ino) in files.iter().take(4) {
        let _ = fs.write(c, *ino, 100, b"fuzz");
        let _ = fs.rename(c, *d, name, root, b"moved", Default::default());
        let _ = fs.unlink(c, root, b"moved");
    }
    for (parent, name) in dirs.iter().rev().take(3) {
        let _ = fs.rename(c, *parent, name, root, b"moved dir", Default::default());
        let _ = fs.rmdir(c, root, b"moved dir");
    }
    let _ = fs.sync();
    let _ = fs.statfs();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Damage to the used sectors of a FAT16 ESP, or to any byte of its
    /// first 64 KiB (boot sector, FATs, root directory).
    #[test]
    fn damaged_fat16_never_panics(
        hits in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..512, 1u8..=255), 1..6),
        raw in proptest::collection::vec((0usize..65_536, any::<u8>()), 0..4),
    ) {
        let base = fat16();
        let sectors = used_sectors(base);
        let mut img = base.clone();
        for (which, at, x) in hits {
            img[sectors[which.index(sectors.len())] + at] ^= x;
        }
        for (at, v) in raw {
            img[at] = v;
        }
        exercise(img);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The same on a FAT32 ESP (its FSInfo sector and root cluster chain).
    #[test]
    fn damaged_fat32_never_panics(
        hits in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..512, 1u8..=255), 1..6),
    ) {
        let base = fat32();
        let sectors = used_sectors(base);
        let mut img = base.clone();
        for (which, at, x) in hits {
            img[sectors[which.index(sectors.len())] + at] ^= x;
        }
        exercise(img);
    }

    /// Raw bytes as the boot sector of an otherwise valid FAT16 ESP.
    #[test]
    fn any_boot_sector_never_panics(boot in proptest::collection::vec(any::<u8>(), 512)) {
        let mut img = fat16().clone();
        img[..512].copy_from_slice(&boot);
        img[510] = 0x55;
        img[511] = 0xaa;
        exercise(img);
    }
}

/// The base images are what the fuzzing damages: check they are whole.
#[test]
fn undamaged_esps_walk_cleanly() {
    for img in [fat16(), fat32()] {
        let fs = FatFiles::open(
            MemDevice::from_bytes(img.clone()),
            true,
            FatOptions::from_mount_options("umask=0077"),
        )
        .expect("open");
        let many = fs.lookup(fs.root(), b"many").expect("many");
        assert_eq!(fs.readdir(many.ino).expect("readdir").len(), 60);
    }
}
