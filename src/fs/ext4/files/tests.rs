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
    fresh_with(bytes, crate::fs::ext4::geometry::Profile::EXT4)
}

/// ext3 as mke2fs makes it: no extent, flex_bg, 64bit, metadata_csum or
/// huge_file; 32-byte descriptors, no group checksums.
fn fresh_ext3(bytes: u64, inode_size: u32) -> MemDevice {
    use crate::fs::ext4::features::{compat, incompat, ro_compat};
    let profile = crate::fs::ext4::geometry::Profile {
        feature_compat: compat::HAS_JOURNAL
            | compat::EXT_ATTR
            | compat::RESIZE_INODE
            | compat::DIR_INDEX,
        feature_incompat: incompat::FILETYPE,
        feature_ro_compat: ro_compat::SPARSE_SUPER | ro_compat::LARGE_FILE,
        inode_size,
        ..crate::fs::ext4::geometry::Profile::EXT4
    };
    fresh_with(bytes, profile)
}

fn fresh_with(bytes: u64, profile: crate::fs::ext4::geometry::Profile) -> MemDevice {
    let opts = mkfs::MkfsOptions {
        geometry: GeometryRequest {
            block_size: 1024,
            blocks: bytes / 1024,
            size_type: SizeType::Small,
            inodes: None,
            inode_ratio: None,
            reserved_ratio: 5.0,
            profile,
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

/// Reads all of a file.
fn read_all<D: BlockDevice>(fs: &Ext4Files<D>, ino: Ino) -> Vec<u8> {
    let size = fs.getattr(ino).unwrap().size as usize;
    let mut b = vec![0u8; size];
    assert_eq!(fs.read(ino, 0, &mut b).unwrap(), size);
    b
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1)
        .collect()
}

#[test]
fn ext3_files_are_block_mapped_through_every_level() {
    let mut fs = Ext4Files::open(fresh_ext3(32 << 20, 256)).unwrap();
    assert!(!fs.geo.extents);
    let r = fs.root();
    let free0 = fs.statfs().unwrap().bfree;
    let f = fs
        .mknod(ctx(), r, b"f", FileType::Regular, 0o644, 0)
        .unwrap();
    // 1 KiB blocks: direct to 12 KiB, IND to 268 KiB, DIND to 64 MiB +
    // 268 KiB, TIND past it.
    let data = pattern(1, 700 * 1024 + 5);
    assert_eq!(fs.write(ctx(), f.ino, 0, &data).unwrap(), data.len());
    let tind_at = (12 + 256 + 65536 + 70) * 1024;
    fs.write(ctx(), f.ino, tind_at, b"far").unwrap();
    let n = fs.node(f.ino as u32, true).unwrap();
    assert_eq!(n.inode.flags() & EXTENTS_FL, 0);
    // IND; DIND and two children; TIND, a height-2 and a height-1 block.
    assert_eq!(n.ind.len(), 1 + 3 + 3);
    assert!(n.tree.is_empty());
    let blocks = 701 + 1 + 7;
    assert_eq!(fs.getattr(f.ino).unwrap().blocks, blocks * 2);
    assert_eq!(fs.statfs().unwrap().bfree, free0 - blocks);
    // Preallocation is the kernel's EOPNOTSUPP; punching works.
    let e = fs
        .fallocate(
            ctx(),
            f.ino,
            0,
            4096,
            FallocateMode::Allocate { keep_size: true },
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    fs.fallocate(
        ctx(),
        f.ino,
        10 * 1024,
        300 * 1024,
        FallocateMode::PunchHole,
    )
    .unwrap();
    // Past s_bitmap_maxbytes (16 GiB and a bit with 1 KiB blocks).
    let max = fs.geo.bitmap_max_bytes;
    assert_eq!(max, (12 + 256 + 65536 + 16_777_216) * 1024);
    let e = fs.write(ctx(), f.ino, max, b"x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FileTooBig);
    assert_eq!(fs.write(ctx(), f.ino, max - 1, b"xy").unwrap(), 1);
    let e = fs
        .setattr(
            ctx(),
            f.ino,
            SetAttr {
                size: Some(max + 1),
                ..SetAttr::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FileTooBig);
    fs.setattr(
        ctx(),
        f.ino,
        SetAttr {
            size: Some(tind_at + 3),
            ..SetAttr::default()
        },
    )
    .unwrap();
    // A slow symlink and a directory of more than 12 blocks.
    let target = vec![b'y'; 300];
    let l = fs.symlink(ctx(), r, b"slow", &target).unwrap();
    let d = fs.mkdir(ctx(), r, b"d", 0o755).unwrap();
    for i in 0..400 {
        fs.mknod(
            ctx(),
            d.ino,
            format!("entry-with-a-long-name-{i:04}").as_bytes(),
            FileType::Regular,
            0o644,
            0,
        )
        .unwrap();
    }
    assert!(fs.getattr(d.ino).unwrap().size > 13 * 1024);
    fs.sync().unwrap();
    // Read back from the device.
    let mut fs = Ext4Files::open(fs.into_device()).unwrap();
    let mut want = data.clone();
    want[10 * 1024..310 * 1024].fill(0);
    want.resize(tind_at as usize, 0);
    want.extend_from_slice(b"far");
    assert_eq!(read_all(&fs, f.ino), want);
    assert_eq!(fs.readlink(l.ino).unwrap(), target);
    assert_eq!(fs.readdir(d.ino).unwrap().len(), 400);
    let n = fs.node(f.ino as u32, true).unwrap();
    // The punch emptied the IND block (logical 12..267) but block 10,
    // 11 and 268.. stay: DIND and its two children, the TIND chain.
    assert_eq!(n.ind.len(), 3 + 3);
    let mapped = n.map.as_ref().unwrap().blocks();
    assert_eq!(fs.getattr(f.ino).unwrap().blocks, (mapped + 6) * 2);
    // Truncating into the DIND range frees the TIND chain and a child.
    fs.setattr(
        ctx(),
        f.ino,
        SetAttr {
            size: Some(400 * 1024),
            ..SetAttr::default()
        },
    )
    .unwrap();
    fs.sync().unwrap();
    let mut fs = Ext4Files::open(fs.into_device()).unwrap();
    assert_eq!(read_all(&fs, f.ino), want[..400 * 1024]);
    assert_eq!(fs.node(f.ino as u32, true).unwrap().ind.len(), 2);
    // Removing everything gives every block back.
    fs.unlink(ctx(), r, b"f").unwrap();
    fs.unlink(ctx(), r, b"slow").unwrap();
    for i in 0..400 {
        fs.unlink(
            ctx(),
            d.ino,
            format!("entry-with-a-long-name-{i:04}").as_bytes(),
        )
        .unwrap();
    }
    fs.rmdir(ctx(), r, b"d").unwrap();
    fs.sync().unwrap();
    let fs = Ext4Files::open(fs.into_device()).unwrap();
    assert_eq!(fs.statfs().unwrap().bfree, free0);
}

#[test]
fn ext3_with_128_byte_inodes_and_appends_rewrite_only_the_tail() {
    let mut fs = Ext4Files::open(fresh_ext3(16 << 20, 128)).unwrap();
    let r = fs.root();
    let f = fs
        .mknod(ctx(), r, b"f", FileType::Regular, 0o644, 0)
        .unwrap();
    let data = pattern(9, 2 << 20);
    for (k, c) in data.chunks(64 * 1024).enumerate() {
        fs.write(ctx(), f.ino, (k * 64 * 1024) as u64, c).unwrap();
        if k == 15 {
            fs.sync().unwrap();
        }
    }
    // After the sync at 1 MiB, only the slots from there on are dirty.
    let n = fs.node(f.ino as u32, true).unwrap();
    assert_eq!(n.ind.clone().take_dirty(), vec![(1024, 2048)]);
    fs.sync().unwrap();
    let fs = Ext4Files::open(fs.into_device()).unwrap();
    assert_eq!(read_all(&fs, f.ino), data);
}

#[test]
fn damaged_block_map_is_an_error_not_a_panic() {
    let mut fs = Ext4Files::open(fresh_ext3(16 << 20, 256)).unwrap();
    let r = fs.root();
    let f = fs
        .mknod(ctx(), r, b"f", FileType::Regular, 0o644, 0)
        .unwrap();
    fs.write(ctx(), f.ino, 0, &pattern(3, 100 * 1024)).unwrap();
    fs.sync().unwrap();
    let off = fs.inode_offset(f.ino as u32).unwrap() as usize;
    let ind = {
        let n = fs.node(f.ino as u32, false).unwrap();
        u64::from(crate::bytes::read_u32le(&n.inode.i_block(), 48))
    };
    let itable = fs.groups.descs()[0].bg_inode_table;
    let mut bytes = fs.into_device().bytes().to_vec();
    // The IND block's first entry into the inode table.
    let at = (ind * 1024) as usize;
    bytes[at..at + 4].copy_from_slice(&(itable as u32).to_le_bytes());
    let fs = Ext4Files::open(MemDevice::from_bytes(bytes)).unwrap();
    let e = fs.read(f.ino, 0, &mut [0u8; 16]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt);
    let msg = e.to_string();
    assert!(msg.contains(&format!("inode {}", f.ino)), "{msg}");
    assert!(msg.contains("group metadata"), "{msg}");
    // i_block[1] past the end of the filesystem.
    let mut bytes = fs.into_device().bytes().to_vec();
    bytes[off + 0x28 + 4..off + 0x28 + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    let fs = Ext4Files::open(MemDevice::from_bytes(bytes)).unwrap();
    let msg = fs.read(f.ino, 0, &mut [0u8; 16]).unwrap_err().to_string();
    assert!(
        msg.contains("i_block[1]") && msg.contains("outside the filesystem"),
        "{msg}"
    );
}

#[test]
fn ext3_write_fills_the_disk_with_its_indirect_blocks() {
    let mut fs = Ext4Files::open(fresh_ext3(8 << 20, 128)).unwrap();
    let r = fs.root();
    let f = fs
        .mknod(ctx(), r, b"fill", FileType::Regular, 0o644, 0)
        .unwrap();
    let free = fs.statfs().unwrap().bfree;
    // One write asking for more than there is: short, every block used.
    let data = vec![5u8; (free as usize + 100) * 1024];
    let n = fs.write(ctx(), f.ino, 0, &data).unwrap();
    assert!(n > 0 && n < data.len());
    assert_eq!(fs.statfs().unwrap().bfree, 0);
    let e = fs.write(ctx(), f.ino, n as u64, b"more").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSpace);
    fs.sync().unwrap();
    let fs = Ext4Files::open(fs.into_device()).unwrap();
    let back = read_all(&fs, f.ino);
    assert_eq!(back.len(), n);
    assert!(back.iter().all(|&x| x == 5));
    // Data and indirect blocks account for every block.
    let a = fs.getattr(f.ino).unwrap();
    assert_eq!(a.blocks / 2, free);
}
