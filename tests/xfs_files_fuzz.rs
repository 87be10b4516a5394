//! Fuzzing the readers of the XFS file write path: directory blocks of
//! every format, short-form directories, bmap btree blocks and forks,
//! inodes, symlink blocks — as raw bytes, and as damage (with CRCs fixed
//! up, so that the checks behind the CRC are reached) to a filesystem
//! holding every format, which is then walked, read and written. Nothing
//! may panic; errors are fine.

use ebsim::blockdev::BlockDevice;
use ebsim::fs::node::{Cred, Ctx, FallocateMode, FileSystem, FileType, Ino, Timespec};
use ebsim::fs::xfs::{self, XfsFiles, bmap, dinode, dir2};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// A sparse in-memory device: 4 KiB blocks in a map, the rest zeros.
#[derive(Clone, Default)]
struct SparseMem {
    size: u64,
    blocks: BTreeMap<u64, Vec<u8>>,
}

impl BlockDevice for SparseMem {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), ebsim::blockdev::Error> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.size)
        {
            return Err(ebsim::blockdev::Error::OutOfRange {
                offset,
                len: buf.len() as u64,
                size: self.size,
            });
        }
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let (blk, within) = (at / 4096, (at % 4096) as usize);
            let n = (4096 - within).min(buf.len() - done);
            match self.blocks.get(&blk) {
                Some(b) => buf[done..done + n].copy_from_slice(&b[within..within + n]),
                None => buf[done..done + n].fill(0),
            }
            done += n;
        }
        Ok(())
    }
    fn commit(
        &mut self,
        plan: &dyn ebsim::blockdev::WritePlan,
    ) -> Result<(), ebsim::blockdev::Error> {
        let size = self.size;
        plan.for_each_write(&mut |offset, bytes| {
            if offset
                .checked_add(bytes.len() as u64)
                .is_none_or(|e| e > size)
            {
                return Err(ebsim::blockdev::Error::OutOfRange {
                    offset,
                    len: bytes.len() as u64,
                    size,
                });
            }
            Ok(())
        })?;
        // Discards spare the written bytes: drop them first, write after.
        for range in plan.discards() {
            for blk in range.start / 4096..range.end.div_ceil(4096) {
                self.blocks.remove(&blk);
            }
        }
        let blocks = &mut self.blocks;
        plan.for_each_write(&mut |offset, bytes| {
            let mut done = 0usize;
            while done < bytes.len() {
                let at = offset + done as u64;
                let (blk, within) = (at / 4096, (at % 4096) as usize);
                let n = (4096 - within).min(bytes.len() - done);
                blocks.entry(blk).or_insert_with(|| vec![0; 4096])[within..within + n]
                    .copy_from_slice(&bytes[done..done + n]);
                done += n;
            }
            Ok(())
        })
    }
    fn data_ranges(
        &self,
        range: std::ops::Range<u64>,
    ) -> Result<Vec<std::ops::Range<u64>>, ebsim::blockdev::Error> {
        Ok(self
            .blocks
            .keys()
            .map(|b| b * 4096..(b + 1) * 4096)
            .filter(|r| r.start < range.end && r.end > range.start)
            .collect())
    }
    fn name(&self) -> String {
        "sparse-memory".into()
    }
}

fn ctx() -> Ctx {
    Ctx {
        cred: Cred::ROOT,
        now: Timespec {
            sec: 1_700_000_000,
            nsec: 1,
        },
    }
}

/// A 300 MiB filesystem holding every directory format, a bmap btree
/// file, local and remote symlinks, a preallocation and a device.
fn base() -> SparseMem {
    static BASE: std::sync::OnceLock<SparseMem> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let mut dev = SparseMem {
            size: 300 << 20,
            ..Default::default()
        };
        let opts = xfs::mkfs::MkfsOptions {
            uuid: [0x42; 16],
            label: Vec::new(),
            dblocks: None,
            times: xfs::inode::MkfsTimes {
                root: xfs::inode::Timestamp::EPOCH,
                rbm: xfs::inode::Timestamp::EPOCH,
                rsum: xfs::inode::Timestamp::EPOCH,
            },
            features: None,
            ask: Default::default(),
        };
        let plan = xfs::mkfs::plan(&dev, &opts).expect("plan");
        xfs::mkfs::apply(&mut dev, &plan).expect("mkfs");
        let mut fs = XfsFiles::open(dev).expect("open");
        let c = ctx();
        let root = fs.root();
        for (name, n) in [("sf", 3usize), ("block", 30), ("leaf", 150), ("node", 700)] {
            let d = fs
                .mkdir(c, root, name.as_bytes(), 0o755)
                .expect("mkdir")
                .ino;
            for i in 0..n {
                let f = fs
                    .mknod(
                        c,
                        d,
                        format!("e{i:04}").as_bytes(),
                        FileType::Regular,
                        0o644,
                        0,
                    )
                    .expect("create")
                    .ino;
                if i % 50 == 0 {
                    fs.write(c, f, 0, &[i as u8 + 1; 5000]).expect("write");
                }
            }
        }
        let frag = fs
            .mknod(c, root, b"frag", FileType::Regular, 0o644, 0)
            .expect("create")
            .ino;
        for i in 0..30u64 {
            fs.write(c, frag, i * 8192, &[7u8; 4096]).expect("write");
        }
        fs.symlink(c, root, b"short", b"node/e0001")
            .expect("symlink");
        fs.symlink(c, root, b"long", &[b'y'; 900]).expect("symlink");
        let p = fs
            .mknod(c, root, b"pre", FileType::Regular, 0o644, 0)
            .expect("create")
            .ino;
        fs.fallocate(
            c,
            p,
            0,
            20 << 20,
            FallocateMode::Allocate { keep_size: false },
        )
        .expect("fallocate");
        fs.mknod(c, root, b"null", FileType::CharDevice, 0o666, 0x103)
            .expect("mknod");
        fs.sync().expect("sync");
        fs.into_inner()
    })
    .clone()
}

/// Recomputes the CRC of whatever metadata a 4 KiB block holds.
fn fix_crcs(b: &mut [u8]) {
    let set = |b: &mut [u8], off: usize| {
        b[off..off + 4].fill(0);
        let c = crc32c::crc32c(b);
        b[off..off + 4].copy_from_slice(&c.to_le_bytes());
    };
    let magic32 = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let magic16_at8 = u16::from_be_bytes([b[8], b[9]]);
    match magic32 {
        // Directory data, block and free blocks; symlink blocks.
        0x5844_4433 | 0x5844_4233 | 0x5844_4633 => set(b, 4),
        0x5853_4c4d => set(b, 12),
        // bmbt.
        0x424d_4133 => set(b, 64),
        // AG btrees.
        0x4142_3342 | 0x4142_3343 | 0x4941_4233 | 0x4649_4233 | 0x5233_4643 => set(b, 0x34),
        _ if matches!(magic16_at8, 0x3df1 | 0x3dff | 0x3ebe) => set(b, 12),
        _ => {
            // Inode chunk blocks: fix each inode; AG header sectors.
            for i in 0..8 {
                let ino = &mut b[i * 512..(i + 1) * 512];
                if ino[0..2] == [0x49, 0x4e] {
                    set(ino, 0x64);
                }
            }
            let sect = |b: &mut [u8], at: usize, magic: u32, off: usize| {
                if b[at..at + 4] == magic.to_be_bytes() {
                    set(&mut b[at..at + 512], off);
                }
            };
            sect(b, 0, 0x5846_5342, 0xe0);
            sect(b, 512, 0x5841_4746, 0xd8);
            sect(b, 1024, 0x5841_4749, 0x138);
            sect(b, 1536, 0x5841_464c, 0x20);
        }
    }
}

/// Everything the file layer does with a filesystem: walk, stat, read,
/// readlink, statfs, then a few changes and a sync. Errors are fine.
fn exercise(dev: SparseMem) {
    let Ok(mut fs) = XfsFiles::open(dev) else {
        return;
    };
    let _ = fs.statfs();
    let root = fs.root();
    let mut stack: Vec<(Ino, u32)> = vec![(root, 0)];
    let mut seen = 0;
    let mut files = Vec::new();
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = fs.readdir(d) else { continue };
        for e in entries {
            seen += 1;
            if seen > 5000 {
                break;
            }
            let _ = fs.lookup(d, &e.name);
            let Ok(a) = fs.getattr(e.ino) else { continue };
            match a.kind {
                FileType::Directory if depth < 8 => stack.push((e.ino, depth + 1)),
                FileType::Regular => {
                    let mut buf = vec![0u8; 70_000];
                    let _ = fs.read(e.ino, 0, &mut buf);
                    let _ = fs.read(e.ino, a.size.saturating_sub(10), &mut buf);
                    files.push((d, e.name.clone(), e.ino));
                }
                FileType::Symlink => {
                    let _ = fs.readlink(e.ino);
                }
                _ => {}
            }
        }
    }
    let c = ctx();
    if let Ok(a) = fs.mknod(c, root, b"fuzz-new", FileType::Regular, 0o644, 0) {
        let _ = fs.write(c, a.ino, 4096, &[1u8; 10_000]);
    }
    let _ = fs.mkdir(c, root, b"fuzz-dir", 0o755);
    for (d, name, ino) in files.iter().take(5) {
        let _ = fs.write(c, *ino, 100, b"fuzz");
        let _ = fs.fallocate(c, *ino, 0, 1 << 20, FallocateMode::PunchHole);
        let _ = fs.unlink(c, *d, name);
    }
    for d in ["sf", "block", "leaf", "node"] {
        let _ = fs.rmdir(c, root, d.as_bytes());
        let _ = fs.rename(c, root, d.as_bytes(), root, b"renamed", Default::default());
    }
    let _ = fs.sync();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Damage to any block of a filesystem holding every format.
    #[test]
    fn damaged_filesystems_never_panic(
        hits in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..4096, 1u8..=255), 1..6),
    ) {
        let mut dev = base();
        let keys: Vec<u64> = dev.blocks.keys().copied().collect();
        for (which, at, x) in hits {
            let k = keys[which.index(keys.len())];
            if let Some(b) = dev.blocks.get_mut(&k) {
                b[at] ^= x;
                fix_crcs(b);
            }
        }
        exercise(dev);
    }

    /// Raw bytes as a directory data block, a single-block directory and
    /// a short-form directory.
    #[test]
    fn directory_parsers_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..4200),
        magic in prop::sample::select(vec![0x5844_4433u32, 0x5844_4233]),
        size in 0u64..400,
    ) {
        let g = dir2::DirGeo::new(4096, 0, true);
        let mut b = bytes.clone();
        b.resize(4096, 0);
        b[..4].copy_from_slice(&magic.to_be_bytes());
        fix_crcs(&mut b);
        let _ = dir2::block::parse_data(&b, &g, u64::from_be_bytes([b[40], b[41], b[42], b[43], b[44], b[45], b[46], b[47]]), 0);
        let _ = dir2::block::parse_data(&bytes, &g, 0, 0);
        let _ = dir2::sf::parse(&bytes, size, &g);
        let _ = dir2::sf::parse(&bytes, bytes.len() as u64, &dir2::DirGeo::new(4096, 0, false));
    }

    /// Raw bytes as an extents-format fork, a btree root and its blocks,
    /// and an inode.
    #[test]
    fn fork_and_inode_parsers_never_panic(
        fork in proptest::collection::vec(any::<u8>(), 0..400),
        blocks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 4096), 1..4),
        n in 0u64..40,
        inode in proptest::collection::vec(any::<u8>(), 512),
    ) {
        let _ = bmap::read_extents(&fork, n);
        let g = bmap::BmbtGeometry::new(4096);
        let mut blocks = blocks;
        for b in &mut blocks {
            b[..4].copy_from_slice(&0x424d_4133u32.to_be_bytes());
            fix_crcs(b);
        }
        let mut calls = 0usize;
        let _ = bmap::read_btree(&fork, 131, &g, |fsb| {
            calls += 1;
            if calls > 64 {
                return Err("too many reads".into());
            }
            Ok(blocks[(fsb % blocks.len() as u64) as usize].clone())
        });
        let mut ino = inode;
        ino[0..2].copy_from_slice(&[0x49, 0x4e]);
        ino[4] = 3;
        ino[0x64..0x68].fill(0);
        let c = crc32c::crc32c(&ino);
        ino[0x64..0x68].copy_from_slice(&c.to_le_bytes());
        let num = u64::from_be_bytes([ino[0x98], ino[0x99], ino[0x9a], ino[0x9b], ino[0x9c], ino[0x9d], ino[0x9e], ino[0x9f]]);
        if let Ok(d) = dinode::Dinode::from_bytes(&ino, num) {
            let _ = d.data_fork();
            let _ = d.attr_fork();
            let _ = d.time(d.mtime);
            let _ = d.to_bytes();
        }
    }
}

#[test]
fn the_base_filesystem_exercises_cleanly() {
    // The fuzz base itself reads back whole.
    let dev = base();
    let fs = XfsFiles::open(dev).expect("open");
    let root = fs.root();
    let names: Vec<Vec<u8>> = fs
        .readdir(root)
        .expect("readdir")
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(names.contains(&b"node".to_vec()));
    let node = fs.lookup(root, b"node").expect("lookup").ino;
    assert_eq!(fs.readdir(node).expect("readdir").len(), 700);
    assert_eq!(
        fs.readlink(fs.lookup(root, b"long").expect("lookup").ino)
            .expect("readlink"),
        vec![b'y'; 900]
    );
    exercise(base());
}
