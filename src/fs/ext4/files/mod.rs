//! Files inside an ext4 filesystem: the native read and write path
//! behind [`FileSystem`].
//!
//! [`Ext4Files::open`] takes any [`BlockDevice`] (an image, or a partition
//! `Slice` of one) and refuses what it cannot write safely, naming the
//! feature or state: a journal that needs recovery (`needs_recovery`, or a
//! journal superblock with `s_start` ≠ 0), orphans pending, errors
//! recorded, and the features `inline_data`, `orphan_file`,
//! `bigalloc`, `quota`, `project`, `verity`,
//! `ea_inode`, `mmp`, `sparse_super2`, `journal_dev`, `compression`,
//! `dirdata` or any unknown incompatible bit; it needs `filetype`. ext2
//! and ext3 (no `extent`, `flex_bg`, `64bit`, `metadata_csum` or
//! `huge_file`; 32-byte descriptors without checksums, every group
//! initialized) open like ext4. Neither the journal nor the backup
//! superblocks and descriptor tables are touched (the kernel leaves the
//! backups alone too). A `meta_bg` filesystem (made so, or converted by an online grow
//! past the reserved GDT blocks) is written like any other: a descriptor
//! past the classic table is in its meta group's first group.
//!
//! Reading covers what the kernel writes: extent trees of any depth (each
//! tree block's checksum verified), unwritten extents (read as zeros),
//! block maps through the triple indirect block ([`block_map`]: every
//! pointer checked against the filesystem's end and its group metadata),
//! linear and hash-indexed directories (the latter read as linear
//! blocks), fast and slow symlinks (told apart as the kernel does, by
//! `i_blocks`), device numbers in either encoding. Inline data, encrypted,
//! casefolded and verity inodes are refused by name (a filesystem with
//! `encrypt` or `casefold` opens: only such inodes need what is missing).
//!
//! An inode keeps its format when written, as in the kernel: a
//! block-mapped file stays block-mapped on an ext4 filesystem too. New
//! regular files, directories and slow symlinks get an extent tree when
//! the filesystem has `extent`, else a block map. A block map has no
//! unwritten blocks: preallocating in one is `EOPNOTSUPP` (punching
//! works), and it stops at the kernel's `s_bitmap_maxbytes` (`EFBIG`;
//! about 16 GiB with 1 KiB blocks, 2 TiB with 4 KiB blocks without
//! `huge_file`).
//!
//! Writing stages everything in memory: allocation state ([`alloc`]),
//! inodes, directories, file data by physical block. Blocks and inodes are
//! allocated when an operation runs, so `statfs` is exact after every
//! operation and "no space" is found where the kernel finds it; an
//! operation that fails changes nothing (its allocations run in a
//! transaction that is rolled back). [`FileSystem::sync`] writes it all in
//! one commit through the blockdev write path (crash safe: the image holds
//! everything before or everything after), in the order: data blocks,
//! extent tree and indirect blocks, xattr blocks, bitmaps, group
//! descriptors, directory blocks, inodes, superblock. Staged data past
//! [`DEFAULT_SYNC_THRESHOLD`] syncs on its own after the operation that
//! crossed it.
//!
//! Space: an allocation of n blocks needs, as the kernel's
//! `ext4_has_free_clusters` checks, `free ≥ n + s_resv_clusters` for root
//! (or `s_def_resuid`, or a member of a non-root `s_def_resgid`), and
//! `free ≥ n + s_r_blocks_count + s_resv_clusters` for everyone else,
//! where `s_resv_clusters = min(blocks / 50, 4096)` is the kernel's own
//! reserve (with extents; 0 without). Extent tree and indirect blocks
//! needed by a write (the kernel allocates them at writeback) and by a
//! punch only need `free ≥ n`; a preallocation's tree blocks are
//! ordinary allocations.
//!
//! Placement (e2fsck does not care, the kernel neither): inodes in the
//! parent's group or the next with a free one; data from the first free
//! block of the inode's group on, contiguous where the free space is; a
//! new indirect block at the first free block from the first data block
//! it maps; deterministic.

pub mod alloc;
pub mod block_map;
pub mod directory;
pub mod dirent;
pub mod dirhash;
pub mod error;
pub mod extent_tree;
pub mod inode;
pub mod map;
mod ops;
pub mod staged;
#[cfg(test)]
mod tests;

pub use error::FileError;

use self::alloc::Groups;
use self::block_map::Indirect;
use self::directory::{Dir, DirBlock};
use self::extent_tree::TreeGeometry;
use self::inode::{DiskInode, EXTENTS_FL, INDEX_FL};
use self::map::FileMap;
use crate::blockdev::{BlockDevice, Sink, WriteBatch, WriteOp, WritePlan};
use crate::bytes::{read_u16le, read_u32be};
use crate::fs::StatFs;
use crate::fs::ext4::features::{compat, incompat, ro_compat};
use crate::fs::ext4::fs::Ext4;
use crate::fs::ext4::superblock::{STATE_ERROR, STATE_VALID, Superblock, has_super_sparse};
use crate::fs::node::{
    Attr, Ctx, DirEntry, FallocateMode, FileSystem, FileType, Ino, NodeError, NodeResult,
    RenameFlags, SetAttr, Timespec,
};
use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Staged data that makes an operation sync on its own (64 MiB).
pub const DEFAULT_SYNC_THRESHOLD: u64 = 64 << 20;

/// Cached clean inodes and directories kept before the cache is emptied.
const CACHE_LIMIT: usize = 8192;

/// The geometry every structure's location comes from.
#[derive(Debug, Clone)]
pub struct Geo {
    /// Block size.
    pub bs: u64,
    /// Blocks per group.
    pub bpg: u64,
    /// Inodes per group.
    pub ipg: u32,
    /// `s_first_data_block`.
    pub fdb: u64,
    /// `s_blocks_count`.
    pub blocks: u64,
    /// Groups.
    pub groups: u32,
    /// `s_inodes_count`.
    pub inodes: u32,
    /// Inode size.
    pub inode_size: usize,
    /// `s_want_extra_isize` for new inodes.
    pub extra_isize: u16,
    /// Group descriptor size.
    pub desc_size: usize,
    /// Descriptor table blocks.
    pub desc_blocks: u64,
    /// `s_reserved_gdt_blocks`.
    pub rsv_gdt: u64,
    /// Descriptor blocks in the classic table (all of them without
    /// `meta_bg`, `s_first_meta_bg` with it).
    pub classic_desc: u64,
    /// `meta_bg`: the descriptor blocks past the classic table live in
    /// their meta groups.
    pub meta_bg: bool,
    /// Descriptors per block.
    pub descs_per_block: u64,
    /// Inode table blocks per group.
    pub itb: u64,
    /// Checksum seed with metadata_csum.
    pub seed: Option<u32>,
    /// Group flags (`*_UNINIT`) are meaningful (metadata_csum or uninit_bg).
    pub group_csum: bool,
    /// `sparse_super`.
    pub sparse_super: bool,
    /// `s_first_ino`.
    pub first_ino: u32,
    /// The largest file size (`s_maxbytes`, an extent file's limit).
    pub max_bytes: u64,
    /// The largest block-mapped file (`s_bitmap_maxbytes`).
    pub bitmap_max_bytes: u64,
    /// `extent`: new files get extent trees (block maps without it).
    pub extents: bool,
}

impl Geo {
    fn new(sb: &Superblock) -> Self {
        let bs = u64::from(sb.block_size());
        let huge_file = sb.has_ro_compat(ro_compat::HUGE_FILE);
        let extra = if sb.inode_size() > 128 {
            sb.s_want_extra_isize.max(sb.s_min_extra_isize).max(32)
        } else {
            0
        };
        Geo {
            bs,
            bpg: u64::from(sb.s_blocks_per_group),
            ipg: sb.s_inodes_per_group,
            fdb: u64::from(sb.s_first_data_block),
            blocks: sb.s_blocks_count,
            groups: sb.group_count() as u32,
            inodes: sb.s_inodes_count,
            inode_size: sb.inode_size() as usize,
            extra_isize: extra,
            desc_size: sb.desc_size() as usize,
            desc_blocks: sb.desc_blocks(),
            rsv_gdt: u64::from(sb.s_reserved_gdt_blocks),
            classic_desc: sb.classic_desc_blocks(),
            meta_bg: sb.meta_bg(),
            descs_per_block: sb.descs_per_block().max(1),
            itb: sb.inode_table_blocks(),
            seed: sb.has_metadata_csum().then(|| sb.csum_seed()),
            group_csum: crate::fs::ext4::group_desc::has_group_csum(sb),
            sparse_super: sb.sparse_super(),
            first_ino: sb.s_first_ino.max(11),
            // ext4_max_size for extent files: 2^32 − 1 blocks, and what
            // i_blocks counts: 2^48 − 1 sectors with huge_file, else
            // 2^32 − 1 sectors rounded down to whole blocks.
            max_bytes: (((1u64 << 32) - 1) * bs).min(if huge_file {
                ((1u64 << 48) - 1) * 512
            } else {
                (((1u64 << 32) - 1) * 512) / bs * bs
            }),
            bitmap_max_bytes: block_map::max_file_blocks(bs, huge_file) * bs,
            extents: sb.has_incompat(incompat::EXTENTS),
        }
    }

    /// First block of group `g`.
    pub fn group_first(&self, g: u32) -> u64 {
        self.fdb + u64::from(g) * self.bpg
    }

    /// Blocks in group `g` (the last may be short).
    pub fn group_blocks(&self, g: u32) -> u64 {
        self.blocks
            .saturating_sub(self.group_first(g))
            .min(self.bpg)
    }

    /// (group, index in group) of block `b`.
    pub fn locate(&self, b: u64) -> (u32, u64) {
        let r = b.saturating_sub(self.fdb);
        ((r / self.bpg) as u32, r % self.bpg)
    }

    /// Whether group `g` holds a superblock backup.
    pub fn has_super(&self, g: u32) -> bool {
        !self.sparse_super || has_super_sparse(u64::from(g))
    }

    /// Blocks at the start of group `g` that hold its superblock backup
    /// and descriptor blocks: with the classic table, the superblock, the
    /// table and the reserved GDT blocks in a backup group; in a meta
    /// group (`meta_bg`), the superblock backup if any, and one
    /// descriptor block in the meta group's first, second and last group
    /// (the kernel's `ext4_num_base_meta_blocks`).
    pub fn base_meta_blocks(&self, g: u32) -> u64 {
        let g = u64::from(g);
        let sup = u64::from(self.has_super(g as u32));
        let dpb = self.descs_per_block;
        if !self.meta_bg || g / dpb < self.classic_desc {
            return if sup == 0 {
                0
            } else {
                1 + self.classic_desc + self.rsv_gdt
            };
        }
        let r = g % dpb;
        sup + u64::from(r == 0 || r == 1 || r == dpb - 1)
    }

    /// Where descriptor block `i` (its primary copy) lives: after the
    /// primary superblock in the classic table, else in the first group
    /// of its meta group after that group's superblock backup.
    pub fn desc_block_location(&self, i: u64) -> u64 {
        if i < self.classic_desc {
            return self.fdb + 1 + i;
        }
        let g = i * self.descs_per_block;
        let sup = self.has_super(u32::try_from(g).unwrap_or(u32::MAX));
        self.fdb + g * self.bpg + u64::from(sup)
    }

    /// The group of inode `ino`.
    pub fn inode_group(&self, ino: u32) -> u32 {
        (ino.saturating_sub(1)) / self.ipg
    }

    fn tree(&self) -> TreeGeometry {
        TreeGeometry {
            bs: self.bs,
            first_data_block: self.fdb,
            blocks: self.blocks,
        }
    }
}

/// How an inode maps its blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// An extent tree (`EXTENTS_FL`).
    Extents,
    /// Direct and indirect block pointers (ext2/ext3).
    BlockMap,
}

/// How `inode` maps its blocks (of `bs` bytes): None for the inodes
/// without blocks (devices, FIFOs, sockets, fast symlinks).
fn format_of(inode: &DiskInode, bs: u64) -> Option<Format> {
    let kind = inode.kind()?;
    let blocks = match kind {
        FileType::Regular | FileType::Directory => true,
        FileType::Symlink => !is_fast_symlink(inode, bs),
        _ => false,
    };
    match (blocks, inode.flags() & EXTENTS_FL != 0) {
        (false, _) => None,
        (true, true) => Some(Format::Extents),
        (true, false) => Some(Format::BlockMap),
    }
}

/// A symlink whose target is in `i_block`: the kernel's test (no blocks
/// counted in `i_blocks` but an extended attribute block's), which is
/// what tells it apart from a block-mapped slow symlink.
fn is_fast_symlink(inode: &DiskInode, bs: u64) -> bool {
    let ea = if inode.file_acl() != 0 { bs / 512 } else { 0 };
    inode.kind() == Some(FileType::Symlink) && inode.sectors(bs) == ea
}

/// An inode in memory.
#[derive(Debug, Clone)]
struct Node {
    inode: DiskInode,
    /// The mapping (loaded on first use).
    map: Option<FileMap>,
    /// The extent tree's blocks (extent inodes).
    tree: Vec<u64>,
    /// The indirect blocks (block-mapped inodes).
    ind: Indirect,
    /// Must be written.
    dirty: bool,
    /// The mapping changed: the tree (or i_block and the dirty indirect
    /// blocks) must be rebuilt.
    tree_dirty: bool,
}

/// A mapping read from disk.
#[derive(Debug, Clone, Default)]
struct LoadedMap {
    map: FileMap,
    tree: Vec<u64>,
    ind: Indirect,
}

/// An ext4 filesystem open for file operations.
#[derive(Debug)]
pub struct Ext4Files<D: BlockDevice> {
    dev: D,
    sb: Superblock,
    geo: Geo,
    groups: Groups,
    nodes: RefCell<HashMap<u32, Arc<Node>>>,
    dirs: RefCell<HashMap<u32, Arc<Dir>>>,
    /// Staged file data.
    data: staged::Staged,
    /// Staged metadata blocks (extended attribute blocks).
    meta: BTreeMap<u64, Vec<u8>>,
    /// An estimate of the metadata bytes staged (file data: `data`).
    staged: u64,
    sync_threshold: u64,
    /// statfs's `f_blocks` (blocks minus overhead: fixed).
    statfs_blocks: u64,
    /// `s_resv_clusters`.
    resv: u64,
    /// `s_r_blocks_count`.
    r_blocks: u64,
    resuid: u32,
    resgid: u32,
    last_time: Option<Timespec>,
    generation_seq: u32,
    poisoned: Option<String>,
    /// Blocks no file may map (built on the first block map read).
    zones: OnceCell<Vec<(u64, u64)>>,
}

fn io(what: impl Into<String>) -> impl FnOnce(crate::blockdev::Error) -> FileError {
    let what = what.into();
    move |e| FileError::io(what, e)
}

impl<D: BlockDevice> Ext4Files<D> {
    /// Opens the filesystem on `dev` for reading and writing files,
    /// checking the preconditions in the module documentation.
    pub fn open(dev: D) -> NodeResult<Self> {
        let fs = Ext4::open(dev).map_err(FileError::Open)?;
        let sb = fs.superblock().clone();
        check_features(&sb)?;
        let st = crate::fs::ext4::statfs(&fs).map_err(FileError::Open)?;
        let descs = fs.descriptors().to_vec();
        let dev = fs.into_device();
        let geo = Geo::new(&sb);
        let raw = sb.to_bytes();
        let bs = geo.bs as usize;
        let resv = if sb.has_incompat(incompat::EXTENTS) {
            (sb.s_blocks_count / 50).min(4096)
        } else {
            0
        };
        let files = Ext4Files {
            dev,
            geo,
            groups: Groups::new(descs),
            nodes: RefCell::new(HashMap::new()),
            dirs: RefCell::new(HashMap::new()),
            data: staged::Staged::new(bs),
            meta: BTreeMap::new(),
            staged: 0,
            sync_threshold: DEFAULT_SYNC_THRESHOLD,
            statfs_blocks: st.blocks,
            resv,
            r_blocks: sb.s_r_blocks_count,
            resuid: u32::from(read_u16le(&raw, 0x50)),
            resgid: u32::from(read_u16le(&raw, 0x52)),
            last_time: None,
            generation_seq: 0,
            poisoned: None,
            zones: OnceCell::new(),
            sb,
        };
        files.check_journal()?;
        Ok(files)
    }

    /// Changes how much staged data makes an operation sync on its own.
    pub fn set_sync_threshold(&mut self, bytes: u64) {
        self.sync_threshold = bytes;
    }

    /// The device (for reading it while open).
    pub fn device(&self) -> &D {
        &self.dev
    }

    /// The superblock as opened (counters are updated at sync).
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// Gives the device back, dropping anything not synced.
    pub fn into_device(self) -> D {
        self.dev
    }

    /// True when changes await [`FileSystem::sync`].
    pub fn is_dirty(&self) -> bool {
        self.groups.is_dirty()
            || !self.data.is_empty()
            || !self.meta.is_empty()
            || self
                .nodes
                .borrow()
                .values()
                .any(|n| n.dirty || n.tree_dirty)
            || self.dirs.borrow().values().any(|d| d.is_dirty())
    }

    /// The byte ranges of a file that hold data, as `SEEK_DATA` /
    /// `SEEK_HOLE` on ext4 see them (unwritten extents count as holes),
    /// clipped to the file's size, in order and merged.
    pub fn data_ranges(&self, ino: Ino) -> NodeResult<Vec<std::ops::Range<u64>>> {
        let i =
            u32::try_from(ino).map_err(|_| NodeError::new(crate::fs::node::ErrorKind::NotFound))?;
        let n = self.node(i, true)?;
        let size = n.inode.size();
        let bs = self.geo.bs;
        let mut out: Vec<std::ops::Range<u64>> = Vec::new();
        for r in n.map.iter().flat_map(|m| m.runs()) {
            if r.unwritten {
                continue;
            }
            let s = (r.lblk * bs).min(size);
            let e = (r.end() * bs).min(size);
            if s >= e {
                continue;
            }
            match out.last_mut() {
                Some(l) if l.end == s => l.end = e,
                _ => out.push(s..e),
            }
        }
        Ok(out)
    }

    /// The journal must be clean: its superblock's `s_start` is 0.
    fn check_journal(&self) -> Result<(), FileError> {
        let sb = &self.sb;
        if !sb.has_journal() || sb.s_journal_inum == 0 {
            return Ok(());
        }
        let node = self.load_node(sb.s_journal_inum)?;
        let map = self.load_map(sb.s_journal_inum, &node.inode)?;
        let Some(first) = map.map.find(0) else {
            return Err(FileError::BadInode {
                ino: sb.s_journal_inum,
                why: "the journal has no block 0".into(),
            });
        };
        let b = self.read_block(first.pblk)?;
        if read_u32be(&b, 0) != crate::fs::ext4::journal::JBD2_MAGIC {
            return Err(FileError::BadInode {
                ino: sb.s_journal_inum,
                why: "the journal superblock has a bad magic number".into(),
            });
        }
        if read_u32be(&b, 0x1C) != 0 {
            return Err(FileError::State(
                "the journal is not empty (it needs recovery): mount the filesystem once or run e2fsck first"
                    .into(),
            ));
        }
        Ok(())
    }

    fn read_block(&self, b: u64) -> Result<Vec<u8>, FileError> {
        if b >= self.geo.blocks {
            return Err(FileError::Group {
                group: self.geo.locate(b).0,
                why: format!("block {b} is outside the filesystem"),
            });
        }
        self.dev
            .read_vec(b * self.geo.bs, self.geo.bs as usize)
            .map_err(io(format!("block {b}")))
    }

    /// Where inode `ino` lives (byte offset).
    fn inode_offset(&self, ino: u32) -> Result<u64, FileError> {
        if ino == 0 || ino > self.geo.inodes {
            return Err(FileError::BadInode {
                ino,
                why: format!("no such inode (the filesystem has {})", self.geo.inodes),
            });
        }
        let g = self.geo.inode_group(ino);
        let idx = u64::from((ino - 1) % self.geo.ipg);
        let d = self
            .groups
            .descs()
            .get(g as usize)
            .ok_or(FileError::BadInode {
                ino,
                why: "its group does not exist".into(),
            })?;
        Ok(d.bg_inode_table * self.geo.bs + idx * self.geo.inode_size as u64)
    }

    /// Reads inode `ino` from the device (checksum verified).
    fn load_node(&self, ino: u32) -> Result<Node, FileError> {
        let off = self.inode_offset(ino)?;
        let b = self
            .dev
            .read_vec(off, self.geo.inode_size)
            .map_err(io(format!("inode {ino}")))?;
        let inode = DiskInode::from_bytes(&b).ok_or(FileError::BadInode {
            ino,
            why: "shorter than 128 bytes".into(),
        })?;
        if inode.links() == 0 || inode.mode() == 0 {
            return Err(FileError::BadInode {
                ino,
                why: "a directory entry names it but it is not in use".into(),
            });
        }
        if let Some(seed) = self.geo.seed {
            if !inode.verify(ino, seed) {
                return Err(FileError::InodeChecksum { ino });
            }
        }
        if inode.kind().is_none() {
            return Err(FileError::BadInode {
                ino,
                why: format!("mode {:#o} has no valid file type", inode.mode()),
            });
        }
        for (flag, what) in [
            (inode::INLINE_DATA_FL, "inline data"),
            (inode::ENCRYPT_FL, "encryption"),
            (inode::VERITY_FL, "fs-verity"),
            (inode::EA_INODE_FL, "an extended attribute inode"),
            (inode::CASEFOLD_FL, "case-insensitive names"),
        ] {
            if inode.flags() & flag != 0 {
                return Err(FileError::InodeFormat { ino, what });
            }
        }
        Ok(Node {
            inode,
            map: None,
            tree: Vec::new(),
            ind: Indirect::default(),
            dirty: false,
            tree_dirty: false,
        })
    }

    /// The block checksum seed of inode `ino` (directory and tree blocks).
    fn block_seed(&self, ino: u32, inode: &DiskInode) -> Option<u32> {
        self.geo
            .seed
            .map(|s| inode::block_seed(s, ino, inode.generation()))
    }

    /// Reads the mapping of an inode: its extent tree or block map (an
    /// empty map for inodes without blocks: fast symlinks, devices).
    fn load_map(&self, ino: u32, inode: &DiskInode) -> Result<LoadedMap, FileError> {
        match format_of(inode, self.geo.bs) {
            None => Ok(LoadedMap::default()),
            Some(Format::Extents) => {
                let seed = self.block_seed(ino, inode);
                let mut read = |b: u64| self.read_block(b);
                let l = extent_tree::read_tree(
                    ino,
                    &inode.i_block(),
                    seed,
                    self.geo.tree(),
                    &mut read,
                )?;
                Ok(LoadedMap {
                    map: l.map,
                    tree: l.tree_blocks,
                    ind: Indirect::default(),
                })
            }
            Some(Format::BlockMap) => {
                let bounds = block_map::Bounds {
                    bs: self.geo.bs,
                    first_data_block: self.geo.fdb,
                    blocks: self.geo.blocks,
                    zones: self.zones.get_or_init(|| self.metadata_zones()),
                };
                let mut read = |b: u64| self.read_block(b);
                let l = block_map::read(ino, &inode.i_block(), bounds, &mut read)?;
                Ok(LoadedMap {
                    map: l.map,
                    tree: Vec::new(),
                    ind: l.ind,
                })
            }
        }
    }

    /// The blocks of every group's superblock copy and descriptor blocks,
    /// bitmaps and inode table (the kernel's "system zone", less the
    /// journal), sorted and merged.
    fn metadata_zones(&self) -> Vec<(u64, u64)> {
        let geo = &self.geo;
        let mut z: Vec<(u64, u64)> = Vec::new();
        for (g, d) in self.groups.descs().iter().enumerate() {
            let g = g as u32;
            let first = geo.group_first(g);
            // The superblock and descriptor blocks, not the reserved GDT
            // blocks (the resize inode's, which the kernel does not
            // guard either).
            let mut base = geo.base_meta_blocks(g);
            let classic = !geo.meta_bg || u64::from(g) / geo.descs_per_block < geo.classic_desc;
            if classic && base > 0 {
                base -= geo.rsv_gdt.min(base);
            }
            if g == 0 {
                // Block 0 and the boot block before a 1 KiB superblock.
                z.push((0, first + base));
            } else if base > 0 {
                z.push((first, first + base));
            }
            z.push((d.bg_block_bitmap, d.bg_block_bitmap + 1));
            z.push((d.bg_inode_bitmap, d.bg_inode_bitmap + 1));
            z.push((d.bg_inode_table, d.bg_inode_table + geo.itb));
        }
        z.sort_unstable();
        let mut out: Vec<(u64, u64)> = Vec::with_capacity(z.len());
        for (a, b) in z {
            match out.last_mut() {
                Some(l) if a <= l.1 => l.1 = l.1.max(b),
                _ => out.push((a, b)),
            }
        }
        out
    }

    /// The inode `ino` (staged, cached or read now), its map loaded when
    /// `with_map`.
    fn node(&self, ino: u32, with_map: bool) -> NodeResult<Arc<Node>> {
        if let Some(n) = self.nodes.borrow().get(&ino) {
            if !with_map || n.map.is_some() {
                return Ok(n.clone());
            }
        }
        let mut n = match self.nodes.borrow().get(&ino) {
            Some(n) => (**n).clone(),
            None => self.load_node(ino)?,
        };
        if with_map && n.map.is_none() {
            let l = self.load_map(ino, &n.inode)?;
            n.map = Some(l.map);
            n.tree = l.tree;
            n.ind = l.ind;
        }
        let n = Arc::new(n);
        let mut cache = self.nodes.borrow_mut();
        if cache.len() >= CACHE_LIMIT {
            cache.retain(|_, v| v.dirty || v.tree_dirty);
        }
        cache.insert(ino, n.clone());
        Ok(n)
    }

    /// Takes inode `ino` out of the cache to change it (map loaded);
    /// [`Ext4Files::put`] puts it back.
    fn take(&mut self, ino: u32) -> NodeResult<Node> {
        self.node(ino, true)?;
        let arc = self
            .nodes
            .get_mut()
            .remove(&ino)
            .ok_or_else(|| NodeError::from(crate::fs::node::ErrorKind::Io))?;
        Ok(Arc::try_unwrap(arc).unwrap_or_else(|a| (*a).clone()))
    }

    fn put(&mut self, ino: u32, node: Node) {
        self.nodes.get_mut().insert(ino, Arc::new(node));
    }

    /// The directory `ino` (staged, cached, or read now).
    fn dir(&self, ino: u32) -> NodeResult<Arc<Dir>> {
        if let Some(d) = self.dirs.borrow().get(&ino) {
            return Ok(d.clone());
        }
        let node = self.node(ino, true)?;
        if node.inode.kind() != Some(FileType::Directory) {
            return Err(crate::fs::node::ErrorKind::NotADirectory.into());
        }
        let d = Arc::new(self.load_dir(ino, &node)?);
        let mut cache = self.dirs.borrow_mut();
        if cache.len() >= CACHE_LIMIT {
            cache.retain(|_, v| v.is_dirty());
        }
        cache.insert(ino, d.clone());
        Ok(d)
    }

    fn take_dir(&mut self, ino: u32) -> NodeResult<Dir> {
        self.dir(ino)?;
        let arc = self
            .dirs
            .get_mut()
            .remove(&ino)
            .ok_or_else(|| NodeError::from(crate::fs::node::ErrorKind::Io))?;
        Ok(Arc::try_unwrap(arc).unwrap_or_else(|a| (*a).clone()))
    }

    fn put_dir(&mut self, ino: u32, dir: Dir) {
        self.dirs.get_mut().insert(ino, Arc::new(dir));
    }

    /// Parses directory `ino` from its blocks.
    fn load_dir(&self, ino: u32, node: &Node) -> Result<Dir, FileError> {
        let bs = self.geo.bs;
        let size = node.inode.size();
        let bad = |lblk: u64, why: String| FileError::DirBlock {
            dir: ino,
            lblk,
            why,
        };
        if size % bs != 0 || size == 0 {
            return Err(bad(
                0,
                format!("directory size {size} is not a multiple of the block size"),
            ));
        }
        let nblocks = size / bs;
        let indexed = node.inode.flags() & INDEX_FL != 0;
        let seed = self.block_seed(ino, &node.inode);
        let Some(map) = node.map.as_ref() else {
            return Err(bad(0, "directory has no block map".into()));
        };
        if map.end() != nblocks {
            return Err(bad(
                map.end().min(nblocks),
                format!(
                    "the directory's size ({size} bytes) and its mapped blocks ({}) disagree",
                    map.end()
                ),
            ));
        }
        let mut blocks = Vec::with_capacity(nblocks as usize);
        for lblk in 0..nblocks {
            let Some(r) = map.find(lblk) else {
                blocks.push(None);
                continue;
            };
            if r.unwritten {
                return Err(bad(
                    lblk,
                    "directory block is unwritten (preallocated)".into(),
                ));
            }
            let b = self.read_block(r.pblk + (lblk - r.lblk))?;
            let kind = if lblk == 0 && indexed {
                dirent::BlockKind::HtreeRoot
            } else {
                dirent::BlockKind::Leaf
            };
            let entries =
                dirent::parse_block(&b, kind, seed, self.geo.inodes).map_err(|w| bad(lblk, w))?;
            blocks.push(Some(DirBlock::new(entries, false)));
        }
        match blocks.first() {
            Some(Some(b0))
                if b0.entries.len() >= 2
                    && b0.entries[0].name == b"."
                    && b0.entries[1].name == b".." => {}
            _ => return Err(bad(0, "does not start with . and ..".into())),
        }
        let cap = dirent::capacity(bs as usize, self.geo.seed.is_some());
        Dir::new(blocks, cap, indexed).map_err(|name| {
            bad(
                0,
                format!(
                    "the name {:?} appears twice",
                    String::from_utf8_lossy(&name)
                ),
            )
        })
    }

    /// Commits every staged change in one batch. Any failure leaves the
    /// staged state unusable (it may be half consumed): later changes
    /// are refused until the filesystem is reopened.
    fn sync_now(&mut self) -> Result<(), FileError> {
        if let Some(p) = &self.poisoned {
            return Err(FileError::Poisoned(p.clone()));
        }
        if !self.is_dirty() {
            return Ok(());
        }
        let r = self.commit_staged();
        if let Err(e) = &r {
            self.poisoned = Some(e.to_string());
        }
        r
    }

    fn commit_staged(&mut self) -> Result<(), FileError> {
        let bs = self.geo.bs;
        let mut batch = WriteBatch::new();
        // 1. File data, each staged run in one write.
        for (b, bytes) in self.data.take() {
            batch.write(b * bs, bytes);
        }
        // 2. Extent tree blocks of changed files.
        let mut trees = BTreeMap::new();
        let seed = self.geo.seed;
        for (&ino, arc) in self.nodes.get_mut().iter_mut() {
            if !arc.tree_dirty {
                continue;
            }
            let n = Arc::make_mut(arc);
            let Some(map) = n.map.as_ref() else { continue };
            if format_of(&n.inode, bs) == Some(Format::BlockMap) {
                let shape = block_map::Shape::new(bs);
                let bad = |why: String| FileError::BlockMap {
                    ino,
                    at: "rebuild".into(),
                    why: format!("internal inconsistency: {why}"),
                };
                let root = block_map::encode_root(shape, map, &n.ind).map_err(bad)?;
                for (lo, hi) in n.ind.take_dirty() {
                    block_map::check_covered(shape, map, &n.ind, lo, hi).map_err(bad)?;
                    for s in n.ind.meeting(shape, lo, hi) {
                        let b = block_map::encode_block(shape, s, map, &n.ind).map_err(bad)?;
                        if let Some(at) = n.ind.get(s) {
                            trees.insert(at, b);
                        }
                    }
                }
                n.inode.set_i_block(&root);
                n.dirty = true;
                n.tree_dirty = false;
                continue;
            }
            let ex = map.disk_extents();
            let bseed = seed.map(|s| inode::block_seed(s, ino, n.inode.generation()));
            let Some(built) = extent_tree::build(&ex, &n.tree, bs, bseed) else {
                return Err(FileError::ExtentTree {
                    ino,
                    at: "rebuild".into(),
                    why: format!(
                        "{} tree blocks reserved for {} extents",
                        n.tree.len(),
                        ex.len()
                    ),
                });
            };
            n.inode.set_i_block(&built.root);
            n.dirty = true;
            n.tree_dirty = false;
            trees.extend(built.blocks);
        }
        push_blocks(&mut batch, bs, trees);
        // 3. Extended attribute blocks.
        push_blocks(&mut batch, bs, std::mem::take(&mut self.meta));
        // 4. Bitmaps, then descriptors.
        let mut ones = Vec::new();
        self.groups.flush_bitmaps(&self.geo, &mut batch, &mut ones);
        self.groups.flush_descs(&self.geo, &self.sb, &mut batch);
        // 5. Directory blocks.
        let mut dir_blocks = BTreeMap::new();
        for (&ino, d) in self.dirs.get_mut().iter() {
            if !d.is_dirty() {
                continue;
            }
            let nodes = self.nodes.get_mut();
            let Some(n) = nodes.get(&ino) else {
                return Err(FileError::BadInode {
                    ino,
                    why: "changed directory without its inode".into(),
                });
            };
            let dseed = seed.map(|s| inode::block_seed(s, ino, n.inode.generation()));
            let Some(map) = n.map.as_ref() else { continue };
            for (lblk, b) in d.blocks.iter().enumerate() {
                let Some(b) = b else { continue };
                if !b.dirty {
                    continue;
                }
                let Some(r) = map.find(lblk as u64) else {
                    return Err(FileError::DirBlock {
                        dir: ino,
                        lblk: lblk as u64,
                        why: "changed block is not mapped".into(),
                    });
                };
                let pblk = r.pblk + (lblk as u64 - r.lblk);
                let Some(bytes) = dirent::write_block(&b.entries, bs as usize, dseed) else {
                    return Err(FileError::DirBlock {
                        dir: ino,
                        lblk: lblk as u64,
                        why: "internal inconsistency: the entries do not fit the block".into(),
                    });
                };
                dir_blocks.insert(pblk, bytes);
            }
        }
        push_blocks(&mut batch, bs, dir_blocks);
        // 6. Inodes.
        let mut inodes = BTreeMap::new();
        let dirty: Vec<(u32, Vec<u8>)> = self
            .nodes
            .get_mut()
            .iter()
            .filter(|(_, n)| n.dirty)
            .map(|(&ino, n)| (ino, n.inode.to_bytes(ino, seed)))
            .collect();
        for (ino, bytes) in dirty {
            inodes.insert(self.inode_offset(ino)?, bytes);
        }
        for (off, bytes) in inodes {
            push_merged(&mut batch, off, bytes);
        }
        // 7. The superblock.
        self.sb.s_free_blocks_count = self.groups.free_blocks();
        self.sb.s_free_inodes_count = self.groups.free_inodes() as u32;
        if let Some(t) = self.last_time {
            self.sb.s_wtime = u64::try_from(t.sec).unwrap_or(0);
        }
        batch.write(
            crate::fs::ext4::superblock::SUPERBLOCK_OFFSET,
            self.sb.to_bytes().to_vec(),
        );
        let plan = SyncPlan {
            batch: &batch,
            ones: &ones,
            block: vec![0xFFu8; bs as usize],
        };
        self.dev
            .commit(&plan)
            .map_err(|e| FileError::io("sync", e))?;
        for op in batch.ops {
            if let WriteOp::Data { bytes, .. } = op {
                self.data.recycle(bytes, self.sync_threshold);
            }
        }
        self.groups.clean();
        self.nodes.get_mut().clear();
        self.dirs.get_mut().clear();
        self.staged = 0;
        Ok(())
    }

    /// Syncs when the staged data passed the threshold.
    fn maybe_sync(&mut self) -> NodeResult<()> {
        if self.staged + self.data.bytes() >= self.sync_threshold {
            self.sync_now()?;
        }
        Ok(())
    }
}

/// A sync's plan: the batch of owned writes, then the block bitmaps of
/// full groups, each written from one shared all-ones block when walked
/// (no other write covers a bitmap block).
struct SyncPlan<'a> {
    batch: &'a WriteBatch,
    ones: &'a [u64],
    block: Vec<u8>,
}

impl WritePlan for SyncPlan<'_> {
    fn new_len(&self) -> Option<u64> {
        self.batch.new_len
    }

    fn for_each_write(&self, sink: &mut Sink<'_>) -> Result<(), crate::blockdev::Error> {
        self.batch.for_each_write(sink)?;
        for &off in self.ones {
            sink(off, &self.block)?;
        }
        Ok(())
    }

    fn discards(&self) -> Vec<std::ops::Range<u64>> {
        self.batch.discards()
    }

    fn is_empty(&self) -> bool {
        self.batch.is_empty() && self.ones.is_empty()
    }
}

/// Adds whole blocks to `batch`, contiguous ones as one write.
fn push_blocks(batch: &mut WriteBatch, bs: u64, blocks: BTreeMap<u64, Vec<u8>>) {
    for (b, bytes) in blocks {
        push_merged(batch, b * bs, bytes);
    }
}

/// Appends a write, joining it to the previous one when it continues it.
fn push_merged(batch: &mut WriteBatch, off: u64, bytes: Vec<u8>) {
    if let Some(WriteOp::Data {
        offset,
        bytes: prev,
    }) = batch.ops.last_mut()
    {
        if *offset + prev.len() as u64 == off && prev.len() < (8 << 20) {
            prev.extend_from_slice(&bytes);
            return;
        }
    }
    batch.write(off, bytes);
}

/// Refuses the features and states the file layer cannot handle.
fn check_features(sb: &Superblock) -> Result<(), FileError> {
    const KNOWN_INCOMPAT: u32 = incompat::FILETYPE
        | incompat::RECOVER
        | incompat::EXTENTS
        | incompat::BIT64
        | incompat::FLEX_BG
        | incompat::META_BG
        | incompat::CSUM_SEED
        | incompat::LARGEDIR
        // Only their inodes (encrypted, casefolded) need what the file
        // layer lacks, and those are refused one by one.
        | incompat::ENCRYPT
        | incompat::CASEFOLD;
    for (word, bit, name) in [
        (2, incompat::INLINE_DATA, "inline_data"),
        (2, incompat::EA_INODE, "ea_inode"),
        (2, incompat::MMP, "mmp"),
        (2, incompat::JOURNAL_DEV, "journal_dev"),
        (2, incompat::COMPRESSION, "compression"),
        (2, incompat::DIRDATA, "dirdata"),
        (1, compat::ORPHAN_FILE, "orphan_file"),
        (1, compat::SPARSE_SUPER2, "sparse_super2"),
        (3, ro_compat::BIGALLOC, "bigalloc"),
        (3, ro_compat::QUOTA, "quota"),
        (3, ro_compat::PROJECT, "project"),
        (3, ro_compat::VERITY, "verity"),
        (3, ro_compat::READONLY, "read-only"),
        (3, ro_compat::HAS_SNAPSHOT, "snapshot"),
        (3, ro_compat::SHARED_BLOCKS, "shared_blocks"),
        (3, ro_compat::ORPHAN_PRESENT, "orphan_present"),
    ] {
        let set = match word {
            1 => sb.has_compat(bit),
            2 => sb.has_incompat(bit),
            _ => sb.has_ro_compat(bit),
        };
        if set {
            return Err(FileError::Feature(name));
        }
    }
    let unknown = sb.s_feature_incompat & !KNOWN_INCOMPAT;
    if unknown != 0 {
        return Err(FileError::State(format!(
            "the filesystem has unknown incompatible features {unknown:#x}"
        )));
    }
    if !sb.has_incompat(incompat::FILETYPE) {
        return Err(FileError::MissingFeature("filetype"));
    }
    if sb.has_incompat(incompat::RECOVER) {
        return Err(FileError::State(
            "the filesystem needs journal recovery (needs_recovery is set): mount it once or run e2fsck first"
                .into(),
        ));
    }
    if sb.s_state & STATE_VALID == 0 || sb.s_state & STATE_ERROR != 0 {
        return Err(FileError::State(
            "the filesystem was not cleanly unmounted or has errors recorded: run e2fsck first"
                .into(),
        ));
    }
    if sb.s_last_orphan != 0 {
        return Err(FileError::State(format!(
            "the filesystem has orphan inodes pending (first {}): mount it once or run e2fsck first",
            sb.s_last_orphan
        )));
    }
    if sb.s_blocks_per_group == 0 || sb.s_inodes_per_group == 0 || sb.s_inodes_per_group % 8 != 0 {
        return Err(FileError::State(
            "the superblock's group geometry is invalid".into(),
        ));
    }
    Ok(())
}

impl<D: BlockDevice> FileSystem for Ext4Files<D> {
    fn root(&self) -> Ino {
        Ino::from(crate::fs::ext4::inode::ROOT_INO)
    }

    fn statfs(&self) -> NodeResult<StatFs> {
        let bfree = self.groups.free_blocks();
        Ok(StatFs {
            frsize: self.geo.bs,
            blocks: self.statfs_blocks,
            bfree,
            bavail: bfree.saturating_sub(self.r_blocks + self.resv),
            files: u64::from(self.geo.inodes),
            ffree: self.groups.free_inodes(),
        })
    }

    fn getattr(&self, ino: Ino) -> NodeResult<Attr> {
        self.getattr_inner(ino)
    }

    fn lookup(&self, dir: Ino, name: &[u8]) -> NodeResult<Attr> {
        self.lookup_inner(dir, name)
    }

    fn readdir(&self, dir: Ino) -> NodeResult<Vec<DirEntry>> {
        self.readdir_inner(dir)
    }

    fn read(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> NodeResult<usize> {
        self.read_inner(ino, offset, buf)
    }

    fn readlink(&self, ino: Ino) -> NodeResult<Vec<u8>> {
        self.readlink_inner(ino)
    }

    fn mknod(
        &mut self,
        ctx: Ctx,
        dir: Ino,
        name: &[u8],
        kind: FileType,
        perm: u16,
        rdev: u32,
    ) -> NodeResult<Attr> {
        let r = self.mknod_inner(ctx, dir, name, kind, perm, rdev);
        self.after(ctx, r)
    }

    fn mkdir(&mut self, ctx: Ctx, dir: Ino, name: &[u8], perm: u16) -> NodeResult<Attr> {
        let r = self.mkdir_inner(ctx, dir, name, perm);
        self.after(ctx, r)
    }

    fn symlink(&mut self, ctx: Ctx, dir: Ino, name: &[u8], target: &[u8]) -> NodeResult<Attr> {
        let r = self.symlink_inner(ctx, dir, name, target);
        self.after(ctx, r)
    }

    fn link(&mut self, ctx: Ctx, ino: Ino, newdir: Ino, newname: &[u8]) -> NodeResult<Attr> {
        let r = self.link_inner(ctx, ino, newdir, newname);
        self.after(ctx, r)
    }

    fn unlink(&mut self, ctx: Ctx, dir: Ino, name: &[u8]) -> NodeResult<()> {
        let r = self.remove_inner(ctx, dir, name, false);
        self.after(ctx, r)
    }

    fn rmdir(&mut self, ctx: Ctx, dir: Ino, name: &[u8]) -> NodeResult<()> {
        let r = self.remove_inner(ctx, dir, name, true);
        self.after(ctx, r)
    }

    fn rename(
        &mut self,
        ctx: Ctx,
        olddir: Ino,
        oldname: &[u8],
        newdir: Ino,
        newname: &[u8],
        flags: RenameFlags,
    ) -> NodeResult<()> {
        let r = self.rename_inner(ctx, olddir, oldname, newdir, newname, flags);
        self.after(ctx, r)
    }

    fn write(&mut self, ctx: Ctx, ino: Ino, offset: u64, data: &[u8]) -> NodeResult<usize> {
        let r = self.write_inner(ctx, ino, offset, data);
        self.after(ctx, r)
    }

    fn fallocate(
        &mut self,
        ctx: Ctx,
        ino: Ino,
        offset: u64,
        len: u64,
        mode: FallocateMode,
    ) -> NodeResult<()> {
        let r = self.fallocate_inner(ctx, ino, offset, len, mode);
        self.after(ctx, r)
    }

    fn setattr(&mut self, ctx: Ctx, ino: Ino, attr: SetAttr) -> NodeResult<Attr> {
        let r = self.setattr_inner(ctx, ino, attr);
        self.after(ctx, r)
    }

    fn data_ranges(&self, ino: Ino) -> NodeResult<Vec<std::ops::Range<u64>>> {
        Ext4Files::data_ranges(self, ino)
    }

    fn sync(&mut self) -> NodeResult<()> {
        Ok(self.sync_now()?)
    }
}
