//! Fuzzing the ext4 file layer's readers (proptest): directory blocks,
//! extent tree nodes, block maps, inodes, and whole filesystems (ext4 and
//! ext3) with damaged metadata. No input may panic; damage is reported as a named error.

use ebsim::blockdev::{BlockDevice, MemDevice, WriteBatch};
use ebsim::fs::ext4::files::Ext4Files;
use ebsim::fs::ext4::files::block_map::{self, Bounds, Shape};
use ebsim::fs::ext4::files::dirent::{self, BlockKind, Entry};
use ebsim::fs::ext4::files::extent_tree::{self, TreeGeometry};
use ebsim::fs::ext4::files::inode::DiskInode;
use ebsim::fs::ext4::files::map::{FileMap, Run};
use ebsim::fs::ext4::geometry::{GeometryRequest, SizeType};
use ebsim::fs::ext4::mkfs;
use ebsim::fs::node::{Cred, Ctx, ErrorKind, FileSystem, FileType, Ino, Timespec};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
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

/// A valid directory block to mutate.
fn dir_block(bs: usize, seed: Option<u32>) -> Vec<u8> {
    let mut es = vec![
        Entry {
            ino: 2,
            ft: 2,
            name: b".".to_vec(),
        },
        Entry {
            ino: 2,
            ft: 2,
            name: b"..".to_vec(),
        },
    ];
    for i in 0..20u32 {
        es.push(Entry {
            ino: 20 + i,
            ft: 1,
            name: format!("name-{i}").into_bytes(),
        });
    }
    dirent::write_block(&es, bs, seed).expect("fits")
}

/// A valid depth-2 tree (1 KiB blocks) to mutate: root and blocks.
fn tree() -> ([u8; 60], HashMap<u64, Vec<u8>>) {
    let mut m = FileMap::new();
    for i in 0..400u64 {
        m.insert(Run {
            lblk: i * 3,
            len: 2,
            pblk: 2000 + i * 5,
            unwritten: i % 2 == 0,
        });
    }
    let ex = m.disk_extents();
    let need = extent_tree::tree_blocks_for(ex.len() as u64, 1024);
    let blocks: Vec<u64> = (0..need).map(|i| 100 + i).collect();
    let b = extent_tree::build(&ex, &blocks, 1024, Some(7)).expect("build");
    (b.root, b.blocks.into_iter().collect())
}

/// A valid block map (1 KiB blocks) through the triple indirect block:
/// `i_block` and the indirect blocks.
fn block_map_image() -> ([u8; 60], HashMap<u64, Vec<u8>>) {
    let shape = Shape::new(1024);
    let mut m = FileMap::new();
    for (lblk, len, pblk) in [
        (0u64, 20u64, 5000u64),
        (300, 600, 6000),
        (12 + 256 + 65536 + 70_000, 3, 9000),
    ] {
        m.insert(Run {
            lblk,
            len,
            pblk,
            unwritten: false,
        });
    }
    let plan = block_map::plan(shape, &m);
    let mut ind = block_map::Indirect::default();
    for (k, s) in plan.iter().enumerate() {
        ind.insert(*s, 100 + k as u64);
    }
    let root = block_map::encode_root(shape, &m, &ind).expect("root");
    let blocks = ind
        .iter()
        .map(|(s, b)| {
            (
                b,
                block_map::encode_block(shape, s, &m, &ind).expect("block"),
            )
        })
        .collect();
    (root, blocks)
}

/// ext3's features (no extent, flex_bg, 64bit, checksums, huge_file).
fn ext3_profile() -> ebsim::fs::ext4::geometry::Profile {
    use ebsim::fs::ext4::features::{compat, incompat, ro_compat};
    ebsim::fs::ext4::geometry::Profile {
        feature_compat: compat::HAS_JOURNAL
            | compat::EXT_ATTR
            | compat::RESIZE_INODE
            | compat::DIR_INDEX,
        feature_incompat: incompat::FILETYPE,
        feature_ro_compat: ro_compat::SPARSE_SUPER | ro_compat::LARGE_FILE,
        ..ebsim::fs::ext4::geometry::Profile::EXT4
    }
}

/// [`populated_with`] for ext4.
fn populated() -> &'static (Vec<u8>, Vec<u64>) {
    static IMG: OnceLock<(Vec<u8>, Vec<u64>)> = OnceLock::new();
    IMG.get_or_init(|| populated_with(ebsim::fs::ext4::geometry::Profile::EXT4))
}

/// [`populated_with`] for ext3: every file block-mapped.
fn populated_ext3() -> &'static (Vec<u8>, Vec<u64>) {
    static IMG: OnceLock<(Vec<u8>, Vec<u64>)> = OnceLock::new();
    IMG.get_or_init(|| populated_with(ext3_profile()))
}

/// A small filesystem (16 MiB, 1 KiB blocks) with a multi-block
/// directory, a fragmented file (a depth-2 extent tree, or a block map
/// through the double indirect block), symlinks and data; returned with
/// the blocks that hold metadata worth damaging.
fn populated_with(profile: ebsim::fs::ext4::geometry::Profile) -> (Vec<u8>, Vec<u64>) {
    {
        let bytes = 16u64 << 20;
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
        let plan = mkfs::plan(bytes, &opts).expect("mkfs plan");
        mkfs::apply(&mut dev, &plan).expect("mkfs");
        let mut fs = Ext4Files::open(dev).expect("open");
        let r = fs.root();
        let d = fs.mkdir(ctx(), r, b"dir", 0o755).expect("mkdir").ino;
        for i in 0..150 {
            let f = fs
                .mknod(
                    ctx(),
                    d,
                    format!("file-{i:03}").as_bytes(),
                    FileType::Regular,
                    0o644,
                    0,
                )
                .expect("create");
            fs.write(ctx(), f.ino, 0, &[i as u8 + 1; 100])
                .expect("write");
        }
        // Every other block written: one extent per block, a deep tree.
        let frag = fs
            .mknod(ctx(), r, b"frag", FileType::Regular, 0o644, 0)
            .expect("create");
        for i in 0..500u64 {
            fs.write(ctx(), frag.ino, i * 2048, &[7u8; 1024])
                .expect("write");
        }
        fs.symlink(ctx(), r, b"fast", b"dir/file-001")
            .expect("symlink");
        fs.symlink(ctx(), r, b"slow", &[b'y'; 300])
            .expect("symlink");
        fs.sync().expect("sync");
        let dev = fs.into_device();
        // Metadata blocks: inode table of group 0 (first blocks), and
        // every block the tree walk reads (dir blocks, tree blocks).
        let fs = Ext4Files::open(dev).expect("reopen");
        let mut meta: Vec<u64> = Vec::new();
        let sb = fs.superblock().clone();
        let bs = u64::from(sb.block_size());
        let descs = ebsim::fs::ext4::Ext4::open(fs.device())
            .expect("ext4")
            .descriptors()
            .to_vec();
        for b in 0..8 {
            meta.push(descs[0].bg_inode_table + b);
        }
        let dev = fs.into_device();
        // Blocks that differ from a fresh mkfs are what the writes made.
        let mut fresh = MemDevice::new(bytes as usize);
        mkfs::apply(&mut fresh, &plan).expect("mkfs");
        for b in 0..bytes / bs {
            let a = dev.read_vec(b * bs, bs as usize).expect("read");
            let f = fresh.read_vec(b * bs, bs as usize).expect("read");
            if a != f && a.iter().any(|&x| x != 7 && x != 0) {
                meta.push(b);
            }
        }
        meta.sort_unstable();
        meta.dedup();
        (dev.bytes().to_vec(), meta)
    }
}

/// Walks everything through the trait, bounded (damage may make cycles).
fn walk(fs: &dyn FileSystem) -> Result<usize, ErrorKind> {
    let mut seen = HashSet::new();
    let mut stack: Vec<Ino> = vec![fs.root()];
    let mut n = 0;
    let mut buf = vec![0u8; 65536];
    while let Some(d) = stack.pop() {
        if !seen.insert(d) || seen.len() > 1000 {
            continue;
        }
        for e in fs.readdir(d).map_err(|e| e.kind())? {
            n += 1;
            let a = match fs.getattr(e.ino) {
                Ok(a) => a,
                Err(x) => return Err(x.kind()),
            };
            match a.kind {
                FileType::Directory => stack.push(e.ino),
                FileType::Regular => {
                    let mut off = 0;
                    while off < a.size.min(1 << 20) {
                        let r = fs.read(e.ino, off, &mut buf).map_err(|x| x.kind())?;
                        if r == 0 {
                            break;
                        }
                        off += r as u64;
                    }
                }
                FileType::Symlink => {
                    fs.readlink(e.ino).map_err(|x| x.kind())?;
                }
                _ => {}
            }
        }
    }
    Ok(n)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn dir_blocks_never_panic(
        raw in proptest::collection::vec(any::<u8>(), 1024),
        kind in prop_oneof![Just(BlockKind::Leaf), Just(BlockKind::HtreeRoot)],
        csum in any::<bool>(),
    ) {
        let _ = dirent::parse_block(&raw, kind, csum.then_some(5), 1000);
    }

    #[test]
    fn damaged_dir_blocks_are_named(
        at in 0usize..4096, val in any::<u8>(), csum in any::<bool>(),
    ) {
        let seed = csum.then_some(9);
        let mut b = dir_block(4096, seed);
        b[at] = val;
        match dirent::parse_block(&b, BlockKind::Leaf, seed, 1000) {
            Ok(es) => prop_assert!(es.len() <= 22),
            Err(why) => prop_assert!(!why.is_empty()),
        }
    }

    #[test]
    fn extent_trees_never_panic(
        root in proptest::collection::vec(any::<u8>(), 60),
        blocks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1024), 1..4),
    ) {
        let mut r = [0u8; 60];
        r.copy_from_slice(&root);
        let geo = TreeGeometry { bs: 1024, first_data_block: 1, blocks: 1 << 20 };
        let mut read = |b: u64| Ok(blocks[(b % blocks.len() as u64) as usize].clone());
        let _ = extent_tree::read_tree(12, &r, None, geo, &mut read);
        let _ = extent_tree::read_tree(12, &r, Some(3), geo, &mut read);
    }

    #[test]
    fn damaged_extent_trees_are_named(
        which in 0usize..8, at in 0usize..1024, val in any::<u8>(), in_root in any::<bool>(),
    ) {
        let (mut root, mut blocks) = tree();
        if in_root {
            root[at % 60] = val;
        } else {
            let keys: Vec<u64> = blocks.keys().copied().collect();
            let k = keys[which % keys.len()];
            if let Some(b) = blocks.get_mut(&k) {
                b[at] = val;
            }
        }
        let geo = TreeGeometry { bs: 1024, first_data_block: 1, blocks: 1 << 20 };
        let mut read = |b: u64| {
            blocks.get(&b).cloned().ok_or_else(|| ebsim::fs::ext4::files::FileError::Group {
                group: 0,
                why: format!("no block {b}"),
            })
        };
        if let Err(e) = extent_tree::read_tree(12, &root, Some(7), geo, &mut read) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn block_maps_never_panic(
        root in proptest::collection::vec(any::<u8>(), 60),
        blocks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1024), 1..4),
        small in any::<bool>(),
    ) {
        let mut r = [0u8; 60];
        r.copy_from_slice(&root);
        // Small pointers land inside the filesystem more often.
        if small {
            for i in 0..15 {
                r[i * 4 + 2] = 0;
                r[i * 4 + 3] = 0;
            }
        }
        let zones = [(0u64, 50u64), (60_000, 60_100)];
        let bounds = Bounds { bs: 1024, first_data_block: 1, blocks: 1 << 20, zones: &zones };
        let mut read = |b: u64| Ok(blocks[(b % blocks.len() as u64) as usize].clone());
        if let Err(e) = block_map::read(12, &r, bounds, &mut read) {
            prop_assert!(e.to_string().contains("inode 12"));
        }
    }

    #[test]
    fn damaged_block_maps_are_named(
        which in 0usize..16, at in 0usize..1024, val in any::<u8>(), in_root in any::<bool>(),
    ) {
        let (mut root, mut blocks) = block_map_image();
        if in_root {
            root[at % 60] = val;
        } else {
            let mut keys: Vec<u64> = blocks.keys().copied().collect();
            keys.sort_unstable();
            let k = keys[which % keys.len()];
            if let Some(b) = blocks.get_mut(&k) {
                b[at] = val;
            }
        }
        let bounds = Bounds { bs: 1024, first_data_block: 1, blocks: 1 << 24, zones: &[] };
        let mut read = |b: u64| {
            Ok(blocks.get(&b).cloned().unwrap_or_else(|| vec![0u8; 1024]))
        };
        if let Err(e) = block_map::read(12, &root, bounds, &mut read) {
            prop_assert!(e.to_string().contains("inode 12"), "{e}");
        }
    }

    #[test]
    fn inodes_never_panic(raw in proptest::collection::vec(any::<u8>(), 128..=512)) {
        let Some(i) = DiskInode::from_bytes(&raw) else { return Ok(()) };
        let _ = (i.mode(), i.uid(), i.gid(), i.size(), i.links(), i.sectors(4096), i.flags());
        let _ = (i.i_block(), i.generation(), i.file_acl(), i.extra_isize());
        for s in [
            ebsim::fs::ext4::files::inode::Stamp::Atime,
            ebsim::fs::ext4::files::inode::Stamp::Ctime,
            ebsim::fs::ext4::files::inode::Stamp::Mtime,
            ebsim::fs::ext4::files::inode::Stamp::Crtime,
        ] {
            let _ = i.time(s);
        }
        let _ = i.verify(12, 1);
        let _ = i.to_bytes(12, Some(1));
    }

    /// A populated filesystem with bytes of its metadata damaged: open and
    /// a full walk either work or fail with a named error of kind Corrupt
    /// (or NotFound/NotADirectory/InvalidArgument for a changed type).
    #[test]
    fn damaged_filesystems_are_named(
        picks in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..1024, any::<u8>()), 1..6),
        ext3 in any::<bool>(),
    ) {
        let (img, meta) = if ext3 { populated_ext3() } else { populated() };
        let mut dev = MemDevice::from_bytes(img.clone());
        let mut batch = WriteBatch::new();
        for (idx, at, val) in &picks {
            let b = meta[idx.index(meta.len())];
            batch.write(b * 1024 + *at as u64, vec![*val]);
        }
        dev.commit(&batch).expect("damage");
        match Ext4Files::open(dev) {
            Err(e) => prop_assert!(!e.to_string().is_empty()),
            Ok(fs) => {
                if let Err(k) = walk(&fs) {
                    prop_assert!(matches!(
                        k,
                        ErrorKind::Corrupt
                            | ErrorKind::NotFound
                            | ErrorKind::NotADirectory
                            | ErrorKind::IsADirectory
                            | ErrorKind::InvalidArgument
                            | ErrorKind::Unsupported
                            | ErrorKind::Io
                    ), "{k:?}");
                }
            }
        }
    }
}

#[test]
fn the_populated_image_walks_clean() {
    let (img, meta) = populated();
    assert!(
        meta.len() > 10,
        "too few metadata blocks to damage: {}",
        meta.len()
    );
    let fs = Ext4Files::open(MemDevice::from_bytes(img.clone())).expect("open");
    // lost+found, dir and its 150 files, frag, fast, slow.
    assert_eq!(walk(&fs).expect("walk"), 155);
    let (img, meta) = populated_ext3();
    assert!(meta.len() > 10, "ext3: {} metadata blocks", meta.len());
    let fs = Ext4Files::open(MemDevice::from_bytes(img.clone())).expect("open ext3");
    assert_eq!(walk(&fs).expect("walk ext3"), 155);
}
