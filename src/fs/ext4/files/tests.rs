//! Unit tests of the file layer on an in-memory filesystem (16 MiB, 1 KiB
//! blocks). The differential tests against e2fsck and the kernel are in
//! tests/ext4_files.rs.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::blockdev::MemDevice;
use crate::fs::ext4::geometry::{GeometryRequest, SizeType};
use crate::fs::ext4::mkfs;
use crate::fs::node::{Cred, ErrorKind};

fn fresh(bytes: u64) -> MemDevice {
    let opts = mkfs::MkfsOptions {
        geometry: GeometryRequest {
            block_size: 1024,
            blocks: bytes / 1024,
            size_type: SizeType::Small,
            inodes: None,
            inode_ratio: None,
            reserved_ratio: 5.0,
            profile: crate::fs::ext4::geometry::Profile::EXT4,
        },
        uuid: [3; 16],
        hash_seed: [4; 16],
        label: [0; 16],
        now: 1_700_000_000,
        discard: true,
        tunables: Default::default(),
    };
    let mut dev = MemDevice::new(bytes as usize);
    let plan = mkfs::plan(bytes, &opts).unwrap();
    mkfs::apply(&mut dev, &plan).unwrap();
    dev
}

fn ctx() -> Ctx {
    Ctx {
        cred: Cred::ROOT,
        now: Timespec {
            sec: 1_700_000_100,
            nsec: 42,
        },
    }
}

#[test]
fn staged_until_sync_then_one_commit() {
    let mut fs = Ext4Files::open(fresh(16 << 20)).unwrap();
    let r = fs.root();
    let f = fs
        .mknod(ctx(), r, b"f", FileType::Regular, 0o644, 0)
        .unwrap();
    fs.write(ctx(), f.ino, 0, &[1u8; 5000]).unwrap();
    assert_eq!(fs.device().commits, 1, "only mkfs committed so far");
    assert!(fs.is_dirty());
    // Readable before the sync.
    let mut b = vec![0u8; 6000];
    assert_eq!(fs.read(f.ino, 0, &mut b).unwrap(), 5000);
    assert!(b[..5000].iter().all(|&x| x == 1));
    fs.sync().unwrap();
    assert_eq!(fs.device().commits, 2);
    assert!(!fs.is_dirty());
    fs.sync().unwrap();
    assert_eq!(fs.device().commits, 2, "a clean sync commits nothing");
    let fs = Ext4Files::open(fs.into_device()).unwrap();
    assert_eq!(fs.lookup(r, b"f").unwrap().size, 5000);
}

#[test]
fn staged_data_past_the_threshold_syncs_itself() {
    let mut fs = Ext4Files::open(fresh(16 << 20)).unwrap();
    fs.set_sync_threshold(256 << 10);
    let r = fs.root();
    let f = fs
        .mknod(ctx(), r, b"f", FileType::Regular, 0o644, 0)
        .unwrap();
    for i in 0..8u64 {
        fs.write(ctx(), f.ino, i * 100_000, &[7u8; 100_000])
            .unwrap();
    }
    // 800 kB staged in steps of 100 kB: a sync at about every third.
    assert!(fs.device().commits >= 3, "{} commits", fs.device().commits);
    fs.sync().unwrap();
    let fs = Ext4Files::open(fs.into_device()).unwrap();
    let mut b = vec![0u8; 800_000];
    assert_eq!(fs.read(f.ino, 0, &mut b).unwrap(), 800_000);
    assert!(b.iter().all(|&x| x == 7));
}

#[test]
fn no_space_changes_nothing() {
    let mut fs = Ext4Files::open(fresh(16 << 20)).unwrap();
    let r = fs.root();
    let f = fs
        .mknod(ctx(), r, b"f", FileType::Regular, 0o644, 0)
        .unwrap();
    fs.sync().unwrap();
    let commits = fs.device().commits;
    let before = fs.statfs().unwrap();
    let e = fs
        .fallocate(
            ctx(),
            f.ino,
            0,
            1 << 30,
            FallocateMode::Allocate { keep_size: false },
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSpace);
    assert_eq!(fs.statfs().unwrap(), before);
    assert_eq!(fs.getattr(f.ino).unwrap().size, 0);
    assert!(!fs.is_dirty(), "a refused fallocate left something staged");
    fs.sync().unwrap();
    assert_eq!(fs.device().commits, commits);
    // As much as root may take, in one go: then nothing is left but the
    // kernel's own reserve.
    let avail = before.bfree - fs.resv;
    // The tree's leaf blocks come out of the same space.
    let mut n = avail;
    loop {
        match fs.fallocate(
            ctx(),
            f.ino,
            0,
            n * 1024,
            FallocateMode::Allocate { keep_size: false },
        ) {
            Ok(()) => break,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::NoSpace);
                n -= 1;
            }
        }
    }
    assert!(avail - n <= 2, "{avail} available, {n} allocated");
    assert_eq!(fs.statfs().unwrap().bfree, fs.resv);
    // A user gets nothing more, root nothing either (the kernel's reserve).
    let g = fs
        .mknod(ctx(), r, b"g", FileType::Regular, 0o644, 0)
        .unwrap();
    let e = fs.write(ctx(), g.ino, 0, &[1u8; 1024]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSpace);
}

#[test]
fn unwritten_reads_as_zeros_and_splits_on_write() {
    let mut fs = Ext4Files::open(fresh(16 << 20)).unwrap();
    let r = fs.root();
    let f = fs
        .mknod(ctx(), r, b"f", FileType::Regular, 0o644, 0)
        .unwrap();
    fs.fallocate(
        ctx(),
        f.ino,
        0,
        1 << 20,
        FallocateMode::Allocate { keep_size: false },
    )
    .unwrap();
    let blocks = fs.getattr(f.ino).unwrap().blocks;
    fs.write(ctx(), f.ino, 300_000, b"hello").unwrap();
    assert_eq!(fs.getattr(f.ino).unwrap().blocks, blocks, "no new blocks");
    let mut b = vec![9u8; 1 << 20];
    fs.read(f.ino, 0, &mut b).unwrap();
    assert_eq!(&b[300_000..300_005], b"hello");
    b[300_000..300_005].fill(0);
    assert!(b.iter().all(|&x| x == 0));
    let n = fs.node(f.ino as u32, true).unwrap();
    let runs: Vec<bool> = n
        .map
        .as_ref()
        .unwrap()
        .runs()
        .map(|r| r.unwritten)
        .collect();
    assert_eq!(runs, vec![true, false, true]);
    assert!(fs.data_ranges(f.ino).unwrap().len() == 1);
}

#[test]
fn zeros_over_holes_stay_holes_and_keep_size_preallocates_past_eof() {
    let mut fs = Ext4Files::open(fresh(16 << 20)).unwrap();
    let r = fs.root();
    let f = fs
        .mknod(ctx(), r, b"f", FileType::Regular, 0o644, 0)
        .unwrap();
    fs.write(ctx(), f.ino, 10_000, &[0u8; 50_000]).unwrap();
    let a = fs.getattr(f.ino).unwrap();
    assert_eq!((a.size, a.blocks), (60_000, 0));
    fs.fallocate(
        ctx(),
        f.ino,
        0,
        200_000,
        FallocateMode::Allocate { keep_size: true },
    )
    .unwrap();
    let a = fs.getattr(f.ino).unwrap();
    assert_eq!(a.size, 60_000);
    assert_eq!(a.blocks, 196 * 2, "196 KiB of 1 KiB blocks, no tree block");
    // Truncating below the end frees the preallocation past it too.
    fs.setattr(
        ctx(),
        f.ino,
        SetAttr {
            size: Some(1500),
            ..SetAttr::default()
        },
    )
    .unwrap();
    assert_eq!(fs.getattr(f.ino).unwrap().blocks, 2 * 2);
}

#[test]
fn names_and_links() {
    let mut fs = Ext4Files::open(fresh(16 << 20)).unwrap();
    let r = fs.root();
    for bad in [&b""[..], b".", b"..", b"a/b", b"a\0b"] {
        let e = fs
            .mknod(ctx(), r, bad, FileType::Regular, 0o644, 0)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad:?}");
    }
    let e = fs
        .mknod(ctx(), r, &[b'x'; 256], FileType::Regular, 0o644, 0)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NameTooLong);
    fs.mknod(ctx(), r, &[b'x'; 255], FileType::Regular, 0o644, 0)
        .unwrap();
    let d = fs.mkdir(ctx(), r, b"d", 0o755).unwrap();
    assert_eq!(
        fs.getattr(r).unwrap().nlink,
        4,
        "root: ., .., lost+found/.., d/.."
    );
    let sub = fs.mkdir(ctx(), d.ino, b"sub", 0o755).unwrap();
    assert_eq!(fs.getattr(d.ino).unwrap().nlink, 3);
    fs.rename(ctx(), d.ino, b"sub", r, b"sub2", RenameFlags::default())
        .unwrap();
    assert_eq!(fs.getattr(d.ino).unwrap().nlink, 2);
    assert_eq!(fs.getattr(r).unwrap().nlink, 5);
    assert_eq!(
        fs.lookup(sub.ino, b"x").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let dd = fs.dir(sub.ino as u32).unwrap();
    assert_eq!(dd.parent(), Some(2));
}

#[test]
fn a_tree_block_that_does_not_fit_rolls_the_data_back() {
    let mut fs = Ext4Files::open(fresh(16 << 20)).unwrap();
    let r = fs.root();
    // Fragment the free space: 40 files of 8 blocks, every other removed.
    for i in 0..40u32 {
        let f = fs
            .mknod(
                ctx(),
                r,
                format!("f{i}").as_bytes(),
                FileType::Regular,
                0o644,
                0,
            )
            .unwrap();
        fs.write(ctx(), f.ino, 0, &[1u8; 8192]).unwrap();
    }
    for i in (0..40u32).step_by(2) {
        fs.unlink(ctx(), r, format!("f{i}").as_bytes()).unwrap();
    }
    let g = fs
        .mknod(ctx(), r, b"g", FileType::Regular, 0o644, 0)
        .unwrap();
    fs.sync().unwrap();
    let image = fs.device().bytes().to_vec();
    let before = fs.statfs().unwrap();
    // Exactly the blocks root may take: the data fits, in more than four
    // extents, so the tree needs a leaf block there is no room for.
    let n = before.bfree - fs.resv;
    let e = fs
        .fallocate(
            ctx(),
            g.ino,
            0,
            n * 1024,
            FallocateMode::Allocate { keep_size: false },
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSpace);
    assert_eq!(fs.statfs().unwrap(), before);
    assert!(!fs.is_dirty());
    fs.sync().unwrap();
    assert_eq!(
        fs.device().bytes(),
        &image[..],
        "the rolled-back fallocate wrote something"
    );
    // One block less leaves room for the leaf.
    fs.fallocate(
        ctx(),
        g.ino,
        0,
        (n - 1) * 1024,
        FallocateMode::Allocate { keep_size: false },
    )
    .unwrap();
    assert_eq!(fs.statfs().unwrap().bfree, fs.resv);
}

#[test]
fn can_move_to_another_thread() {
    // The FUSE layer serves requests from its own thread.
    fn assert_send<T: Send>() {}
    assert_send::<Ext4Files<MemDevice>>();
    assert_send::<Ext4Files<crate::blockdev::ImageFile>>();
}
