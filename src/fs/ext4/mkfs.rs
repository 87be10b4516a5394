//! mkfs.ext4 (and mkfs.ext3, mkfs.ext2): plan a new filesystem (pure),
//! then write it in one commit.
//!
//! The planner reproduces mke2fs 1.47.0 on a regular file, for any
//! feature [`super::geometry::Profile`] it supports (checksums only with
//! metadata_csum; groups flagged uninitialized only with group checksums,
//! else every bitmap written; tables packed per flex group or in each
//! group; files mapped by extents, or without `extent` by `i_block`'s
//! direct and indirect pointers): geometry ([`super::geometry`]), table
//! placement, root and lost+found, the resize inode, the journal (near
//! the middle with extents; block by block after lost+found without, as
//! libext2fs's fallocate ignores the goal then), per-group
//! flags and counts, and only the blocks mke2fs writes (everything else a
//! hole, after discarding the filesystem's range as mke2fs does).
//!
//! The plan keeps compact state (the geometry, each group's table
//! locations, the used-block runs) and generates the bitmaps, descriptor
//! tables and superblocks on demand when the device walks it, so memory
//! does not grow with the filesystem's size beyond 24 bytes a group. The
//! discard is the device's post-commit discard: the old contents of the
//! range are destroyed only once the new filesystem is complete, so they
//! are never read or saved.

use super::bitmap::BlockSet;
use super::dir;
use super::error::{Error, MkfsError};
use super::extent::{self, Extent};
use super::features::incompat;
use super::files::block_map::{self, Shape};
use super::files::map::Run;
use super::geometry::{FIRST_INO, Geometry, GeometryRequest, plan as plan_geometry};
use super::group_desc::{
    BG_BLOCK_UNINIT, BG_INODE_UNINIT, BG_INODE_ZEROED, GroupDesc, has_group_csum,
};
use super::inode::{self, EXT4_EXTENTS_FL, Inode, S_IFDIR, S_IFREG};
use super::io_count;
use super::journal;
use super::layout::{Allocator, BlockMapped, TableList};
use super::resize_inode::{self, ResizeGeometry};
use super::superblock::{FLAGS_SIGNED_HASH, FLAGS_TEST_FILESYS, STATE_VALID, Superblock};
use super::tables::{self, Groups};
use crate::blockdev::{BlockDevice, Sink, WritePlan};
use std::ops::Range;

/// What to make.
#[derive(Debug, Clone, PartialEq)]
pub struct MkfsOptions {
    /// Geometry request (size, block size, inode options, reserved %).
    pub geometry: GeometryRequest,
    /// `s_uuid`.
    pub uuid: [u8; 16],
    /// `s_hash_seed`.
    pub hash_seed: [u8; 16],
    /// `s_volume_name` (NUL padded).
    pub label: [u8; 16],
    /// Creation time (E2FSPROGS_FAKE_TIME or now), seconds.
    pub now: u64,
    /// Whether the device had a size before mkfs: mke2fs then discards the
    /// filesystem's range and, since a discarded file reads as zeros, marks
    /// every inode table zeroed (`ITABLE_ZEROED`). A file mke2fs creates
    /// itself is not discarded and gets no such flag.
    pub discard: bool,
    /// The rest of what mke2fs's options set.
    pub tunables: Tunables,
}

/// Superblock and root-inode settings of mke2fs options that change no
/// geometry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunables {
    /// `-e`: `s_errors` (1 continue, 2 remount read-only, 3 panic).
    pub errors: u16,
    /// `-M`: `s_last_mounted` (cut at 64 bytes, NUL padded).
    pub last_mounted: Vec<u8>,
    /// `-E test_fs`: `EXT2_FLAGS_TEST_FILESYS` in `s_flags`.
    pub test_fs: bool,
    /// `-E root_owner`: the root directory's uid and gid.
    pub root_owner: (u32, u32),
}

impl Default for Tunables {
    fn default() -> Self {
        Tunables {
            errors: 1,
            last_mounted: Vec::new(),
            test_fs: false,
            root_owner: (0, 0),
        }
    }
}

/// The result of planning: the geometry, where things went, and the
/// writes.
#[derive(Debug, Clone)]
pub struct MkfsPlan {
    /// Resolved geometry.
    pub geometry: Geometry,
    /// The superblock as written (primary).
    pub superblock: Superblock,
    /// Block numbers of the backup superblocks (for mke2fs's message).
    pub backup_blocks: Vec<u64>,
    /// Journal extents (start, length).
    pub journal_extents: Vec<(u64, u64)>,
    /// The writes, generated on demand.
    pub writes: MkfsWrites,
}

/// The writes of a new filesystem, as a [`WritePlan`]: the device length,
/// the few fixed blocks (directories, journal superblock, inode table
/// head, resize inode), the primary reserved GDT blocks, every
/// initialized bitmap, every superblock and descriptor table copy, the
/// primary superblock last; then the discard of the filesystem's range.
#[derive(Debug, Clone)]
pub struct MkfsWrites {
    new_len: Option<u64>,
    discard: Option<Range<u64>>,
    /// Blocks written as they are (at most a few dozen KiB in all).
    fixed: Vec<(u64, Vec<u8>)>,
    /// The resize inode's reserved GDT blocks.
    resize: Option<ResizeGeometry>,
    groups: MkfsGroups,
}

/// What every group's descriptor and bitmaps are computed from.
#[derive(Debug, Clone)]
struct MkfsGroups {
    g: Geometry,
    sb: Superblock,
    tables: TableList,
    used: BlockSet,
    discard: bool,
    /// Group descriptor checksums (metadata_csum or uninit_bg): only then
    /// are groups flagged uninitialized.
    csum: bool,
    /// Block bitmap checksums of the initialized groups, by group.
    bb_csums: Vec<(u64, u32)>,
    /// Every descriptor's `bg_checksum`, by group (empty until
    /// [`MkfsGroups::checksum_bitmaps`] fills it).
    desc_csums: Vec<u16>,
}

impl MkfsGroups {
    /// The descriptors of `groups` without any checksum.
    fn bare(&self, groups: Range<u64>, out: &mut Vec<GroupDesc>) {
        let g = &self.g;
        let ipg = u64::from(g.inodes_per_group);
        let used = self.used.count_per_group(
            g.group_first(groups.start),
            g.blocks_per_group,
            groups.end - groups.start,
        );
        for (grp, used_here) in groups.zip(used) {
            let t = self.tables.get(grp as usize).unwrap_or_default();
            let mut flags = 0u16;
            if self.discard {
                flags |= BG_INODE_ZEROED;
            }
            // Without group checksums nothing is uninitialized.
            if grp != 0 && self.csum {
                flags |= BG_INODE_UNINIT;
            }
            // Only its own superblock copy (and, without flex_bg, its own
            // tables) in it: the bitmap can be computed.
            let own_tables = if g.log_groups_per_flex == 0 {
                2 + g.inode_table_blocks
            } else {
                0
            };
            if grp != g.groups - 1 && used_here == g.super_overhead(grp) + own_tables && self.csum {
                flags |= BG_BLOCK_UNINIT;
            }
            let reserved = if grp == 0 { u64::from(FIRST_INO) } else { 0 };
            out.push(GroupDesc {
                bg_block_bitmap: t.block_bitmap,
                bg_inode_bitmap: t.inode_bitmap,
                bg_inode_table: t.inode_table,
                bg_free_blocks_count: (g.group_blocks(grp) - used_here) as u32,
                bg_free_inodes_count: (ipg - reserved) as u32,
                bg_used_dirs_count: if grp == 0 { 2 } else { 0 },
                bg_flags: flags,
                bg_itable_unused: if self.csum {
                    (ipg - reserved) as u32
                } else {
                    0
                },
                ..GroupDesc::default()
            });
        }
    }

    /// Fills in the block bitmap checksums (one render per initialized
    /// group) and every descriptor's own checksum. Each descriptor table
    /// copy is the same bytes, written once per copy and generated twice
    /// per write (for the undo log, then for the image), so its checksums
    /// are computed here once: two bytes a group instead of a CRC per
    /// descriptor per copy.
    fn checksum_bitmaps(&mut self) {
        let groups = self.g.groups;
        let mut csums = Vec::new();
        let mut desc_csums = Vec::with_capacity(usize::try_from(groups).unwrap_or(0));
        let mut batch = Vec::new();
        let mut g0 = 0;
        while g0 < groups {
            let g1 = (g0 + tables::DESC_BATCH).min(groups);
            batch.clear();
            self.bare(g0..g1, &mut batch);
            for (i, d) in batch.iter_mut().enumerate() {
                let grp = g0 + i as u64;
                if !d.has_flag(BG_BLOCK_UNINIT) && self.sb.has_metadata_csum() {
                    let c = tables::block_bitmap_csum(&self.sb, &self.block_bitmap(grp));
                    d.bg_block_bitmap_csum = c;
                    csums.push((grp, c));
                }
                self.inode_bitmap_csum(d, grp);
                d.set_checksum(&self.sb, grp as u32);
                desc_csums.push(d.bg_checksum);
            }
            g0 = g1;
        }
        self.bb_csums = csums;
        self.desc_csums = desc_csums;
    }

    /// Fills in `d`'s inode bitmap checksum when its bitmap is written.
    fn inode_bitmap_csum(&self, d: &mut GroupDesc, grp: u64) {
        if !d.has_flag(BG_INODE_UNINIT) && self.sb.has_metadata_csum() {
            if let Some(bm) = self.inode_bitmap(grp) {
                d.bg_inode_bitmap_csum = tables::inode_bitmap_csum(&self.sb, &bm);
            }
        }
    }
}

impl Groups for MkfsGroups {
    fn sb(&self) -> &Superblock {
        &self.sb
    }

    fn descs(&self, groups: Range<u64>, out: &mut Vec<GroupDesc>) {
        let start = out.len();
        let g0 = groups.start;
        self.bare(groups, out);
        for (i, d) in out[start..].iter_mut().enumerate() {
            let grp = g0 + i as u64;
            if !d.has_flag(BG_BLOCK_UNINIT) && self.sb.has_metadata_csum() {
                let i = self.bb_csums.partition_point(|&(g, _)| g < grp);
                d.bg_block_bitmap_csum = match self.bb_csums.get(i) {
                    Some(&(g, c)) if g == grp => c,
                    _ => 0,
                };
            }
            self.inode_bitmap_csum(d, grp);
            match self.desc_csums.get(grp as usize) {
                Some(&c) => d.bg_checksum = c,
                None => d.set_checksum(&self.sb, grp as u32),
            }
        }
    }

    fn block_bitmap(&self, grp: u64) -> Vec<u8> {
        tables::block_bitmap(&self.used, &self.sb, grp)
    }

    fn inode_bitmap(&self, grp: u64) -> Option<Vec<u8>> {
        let used = if grp == 0 { u64::from(FIRST_INO) } else { 0 };
        Some(tables::inode_bitmap(&self.sb, used))
    }
}

impl MkfsWrites {
    /// Everything but the superblocks and descriptor tables.
    fn data(&self, sink: &mut Sink<'_>) -> Result<(), crate::blockdev::Error> {
        for (off, bytes) in &self.fixed {
            sink(*off, bytes)?;
        }
        if let Some(r) = &self.resize {
            resize_inode::write_reserved(r, sink)?;
        }
        tables::write_bitmaps(&self.groups, sink)
    }
}

impl WritePlan for MkfsWrites {
    fn new_len(&self) -> Option<u64> {
        self.new_len
    }

    fn for_each_write(&self, sink: &mut Sink<'_>) -> Result<(), crate::blockdev::Error> {
        self.data(sink)?;
        tables::write_super_and_gdt(&self.groups, sink)
    }

    fn discards(&self) -> Vec<Range<u64>> {
        self.discard.clone().into_iter().collect()
    }
}

/// Where the fixed objects of a fresh filesystem went.
#[derive(Debug, Clone)]
struct Placement {
    tables: TableList,
    used: BlockSet,
    overhead_tables: u64,
    root: u64,
    lpf: Vec<u64>,
    dind: Option<u64>,
    journal: Vec<(u64, u64)>,
    journal_etb: Option<u64>,
    /// The journal's `i_block` and indirect blocks without `extent`.
    journal_map: Option<BlockMapped>,
}

fn no_space(g: &Geometry) -> Error {
    Error::Mkfs(MkfsError::TooSmall { blocks: g.blocks })
}

/// Runs mke2fs's allocation order on the geometry.
fn place(g: &Geometry) -> Result<Placement, Error> {
    let mut used = BlockSet::new();
    for grp in 0..g.groups {
        let n = g.super_overhead(grp);
        if n > 0 {
            let first = g.group_first(grp);
            used.insert(first..first + n);
        }
    }
    let mut a = Allocator {
        used,
        blocks: g.blocks,
        fdb: g.first_data_block,
        bpg: g.blocks_per_group,
        groups: g.groups,
        flex: g.flex_size(),
        itb: g.inode_table_blocks,
    };
    let mut tables = TableList::with_capacity(usize::try_from(g.groups).unwrap_or(0));
    for grp in 0..g.groups {
        let t = if g.log_groups_per_flex > 0 {
            a.allocate_group_table(grp, tables.last())
        } else {
            a.allocate_group_table_in_group(grp, g.raid_stride)
        };
        tables.push(t.map_err(|_| no_space(g))?);
    }
    let overhead_tables = a.used.count_in(g.first_data_block..g.blocks);
    // Root directory: goal = first block of the inode's flex group (0).
    let root = a.new_block(0).ok_or_else(|| no_space(g))?;
    // lost+found: mkdir (goal: the group's first block), then expand_dir
    // (goal prev + 1) until it is 16 KiB and at least 2 blocks, at most 12
    // blocks (mke2fs create_lost_and_found).
    let mut lpf = vec![a.new_block(0).ok_or_else(|| no_space(g))?];
    let bs = u64::from(g.block_size);
    let mut lpf_size = 0u64;
    for _ in 1..12 {
        lpf_size += bs;
        if lpf_size >= 16 * 1024 && lpf_size >= 2 * bs {
            break;
        }
        let prev = *lpf.last().unwrap_or(&0);
        lpf.push(a.new_block(prev + 1).ok_or_else(|| no_space(g))?);
    }
    let dind = if g.has_resize_inode() {
        let goal =
            g.first_data_block + g.desc_blocks + g.reserved_gdt_blocks + 2 + g.inode_table_blocks;
        Some(a.new_block(goal).ok_or_else(|| no_space(g))?)
    } else {
        None
    };
    let (journal, journal_etb, journal_map) = if g.journal_blocks == 0 {
        (Vec::new(), None, None)
    } else if g.has_extents() {
        let goal = journal_goal(g, &a);
        let (extents, etb) = a
            .allocate_extents(goal, g.journal_blocks)
            .ok_or_else(|| no_space(g))?;
        (extents, etb, None)
    } else {
        // libext2fs's fallocate ignores the goal without extents: each
        // block follows the one before, from the first block of inode 8's
        // group (0).
        let m = a
            .allocate_block_mapped(g.first_data_block, g.journal_blocks, Shape::new(bs))
            .ok_or_else(|| no_space(g))?;
        let runs = m.map.runs().map(|r| (r.pblk, r.len)).collect();
        (runs, None, Some(m))
    };
    Ok(Placement {
        tables,
        used: a.used,
        overhead_tables,
        root,
        lpf,
        dind,
        journal,
        journal_etb,
        journal_map,
    })
}

/// `get_midpoint_journal_block`: the first block of the group with the
/// most free blocks around the middle of the filesystem.
fn journal_goal(g: &Geometry, a: &Allocator) -> u64 {
    let free =
        |grp: u64| g.group_blocks(grp) - a.used.count_in(g.group_first(grp)..g.group_last(grp) + 1);
    let mid = (g.blocks - g.first_data_block) / 2;
    let mut group = mid.saturating_sub(g.first_data_block) / g.blocks_per_group;
    let flex = g.flex_size();
    let start;
    if g.log_groups_per_flex > 0 && group > flex {
        group &= !(flex - 1);
        while group < g.groups && free(group) == 0 {
            group += 1;
        }
        if group == g.groups {
            group = 0;
        }
        start = group;
    } else {
        start = group.saturating_sub(1);
    }
    let end = if group + 1 < g.groups {
        group + 1
    } else {
        group
    };
    let mut best = start;
    for i in start + 1..=end {
        if free(i) > free(best) {
            best = i;
        }
    }
    g.group_first(best)
}

/// Extents of a list of blocks (contiguous runs).
fn extents_of(blocks: &[u64]) -> Vec<Extent> {
    let mut out: Vec<Extent> = Vec::new();
    for (i, &b) in blocks.iter().enumerate() {
        match out.last_mut() {
            Some(e) if e.start + u64::from(e.ee_len) == b => e.ee_len += 1,
            _ => out.push(Extent {
                ee_block: i as u32,
                ee_len: 1,
                start: b,
            }),
        }
    }
    out
}

/// The `i_block` of a block-mapped file (a pointer past 32 bits, which
/// the allocator never hands out to one, is an internal error).
fn block_map_root(shape: Shape, m: &BlockMapped) -> Result<[u8; 60], Error> {
    block_map::encode_root(shape, &m.map, &m.indirect).map_err(Error::Unsupported)
}

/// A small block-mapped file (root, lost+found: direct blocks only) of
/// `blocks` in logical order.
fn direct_blocks(blocks: &[u64]) -> BlockMapped {
    let mut m = BlockMapped::default();
    for (lblk, &pblk) in (0u64..).zip(blocks) {
        m.map.insert(Run {
            lblk,
            len: 1,
            pblk,
            unwritten: false,
        });
    }
    m
}

/// A directory or file inode whose `i_block` is `root`: an in-inode
/// extent tree when `extents`, else a block map.
#[allow(clippy::too_many_arguments)]
fn mapped_inode(
    isize: usize,
    mode: u16,
    links: u16,
    size: u64,
    blocks_512: u64,
    root: [u8; 60],
    extents: bool,
    now: u32,
) -> Inode {
    let mut i = Inode::zeroed(isize);
    i.i_mode = mode;
    i.i_links_count = links;
    i.i_size = size;
    i.i_blocks = blocks_512;
    i.i_flags = if extents { EXT4_EXTENTS_FL } else { 0 };
    i.i_block = root;
    i.i_atime = now;
    i.i_ctime = now;
    i.i_mtime = now;
    i.i_extra_isize = 32;
    i.i_crtime = now;
    i
}

/// Plans a filesystem on a device of `dev_size` bytes (the device grows
/// to the filesystem's size when it is smaller and can).
pub fn plan(dev_size: u64, opts: &MkfsOptions) -> Result<MkfsPlan, Error> {
    let g = plan_geometry(&opts.geometry)?;
    let p = place(&g)?;
    let bs = u64::from(g.block_size);
    let bsz = g.block_size as usize;
    let now32 = (opts.now & 0xFFFF_FFFF) as u32;

    // Superblock.
    let mut sb = Superblock::zeroed();
    sb.s_inodes_count = g.inodes_count;
    sb.s_blocks_count = g.blocks;
    sb.s_r_blocks_count = g.r_blocks;
    sb.s_first_data_block = g.first_data_block as u32;
    sb.s_log_block_size = g.log_block_size;
    sb.s_log_cluster_size = g.log_block_size;
    sb.s_blocks_per_group = g.blocks_per_group as u32;
    sb.s_clusters_per_group = g.blocks_per_group as u32;
    sb.s_inodes_per_group = g.inodes_per_group;
    sb.s_wtime = opts.now;
    sb.s_max_mnt_count = 0xFFFF;
    sb.s_state = STATE_VALID;
    sb.s_errors = opts.tunables.errors;
    let lm = &opts.tunables.last_mounted;
    let n = lm.len().min(sb.s_last_mounted.len());
    sb.s_last_mounted[..n].copy_from_slice(&lm[..n]);
    sb.s_lastcheck = opts.now;
    sb.s_rev_level = 1;
    sb.s_first_ino = FIRST_INO;
    sb.s_inode_size = g.inode_size as u16;
    sb.s_feature_compat = g.feature_compat;
    sb.s_feature_incompat = g.feature_incompat;
    sb.s_feature_ro_compat = g.feature_ro_compat;
    sb.s_uuid = opts.uuid;
    sb.s_volume_name = opts.label;
    sb.s_reserved_gdt_blocks = g.reserved_gdt_blocks as u16;
    if g.journal_blocks > 0 {
        sb.s_journal_inum = inode::JOURNAL_INO;
    }
    sb.s_hash_seed = opts.hash_seed;
    sb.s_def_hash_version = 1; // half_md4
    // casefold names its encoding: mke2fs's default, UTF-8 12.1.
    if g.feature_incompat & incompat::CASEFOLD != 0 {
        sb.s_encoding = 1;
        sb.s_encoding_flags = g.encoding_flags;
    }
    // encrypt names the modes fscrypt may use: AES-256-XTS for contents,
    // AES-256-CTS for names.
    if g.feature_incompat & incompat::ENCRYPT != 0 {
        sb.s_encrypt_algos = [1, 4, 0, 0];
    }
    if g.journal_blocks > 0 {
        sb.s_jnl_backup_type = 1; // EXT3_JNL_BACKUP_BLOCKS
    }
    // Only a 64bit filesystem records its descriptor size.
    sb.s_desc_size = if g.feature_incompat & incompat::BIT64 != 0 {
        64
    } else {
        0
    };
    sb.s_default_mount_opts = 0x0C; // user_xattr, acl
    sb.s_mkfs_time = opts.now;
    // Room for the extra fields only in large inodes.
    if g.inode_size > 128 {
        sb.s_min_extra_isize = 32;
        sb.s_want_extra_isize = 32;
    }
    sb.s_flags = FLAGS_SIGNED_HASH;
    if opts.tunables.test_fs {
        sb.s_flags |= FLAGS_TEST_FILESYS;
    }
    sb.s_raid_stride = g.raid_stride as u16;
    sb.s_raid_stripe_width = g.raid_stripe_width;
    sb.s_log_groups_per_flex = g.log_groups_per_flex;
    if g.feature_ro_compat & super::features::ro_compat::METADATA_CSUM != 0 {
        sb.s_checksum_type = 1; // crc32c
    }
    sb.s_kbytes_written = 1;
    sb.s_overhead_clusters = (p.overhead_tables + g.journal_blocks + g.first_data_block) as u32;
    let seed = sb.csum_seed();
    // Inodes, directory blocks and extent blocks carry checksums only
    // with metadata_csum.
    let csum_seed = sb.has_metadata_csum().then_some(seed);

    // Free counts: every block of every group but the used ones.
    let free_total =
        (g.blocks - g.first_data_block) - p.used.count_in(g.first_data_block..g.blocks);
    sb.s_free_blocks_count = free_total;
    sb.s_free_inodes_count = g.inodes_count - FIRST_INO;

    // Inodes 1..=11 in the first inode table block of group 0.
    let isize = g.inode_size as usize;
    // Inodes 1..=11 (with 1 KiB blocks they span three blocks).
    let mut itable = vec![0u8; (FIRST_INO as usize * isize).div_ceil(bsz) * bsz];
    let mut put = |ino: u32, i: &Inode| {
        let off = (ino as usize - 1) * isize;
        itable[off..off + isize].copy_from_slice(&i.to_bytes(ino, csum_seed));
    };
    // 1: bad blocks inode, times only.
    let mut bad = Inode::zeroed(isize);
    bad.i_atime = now32;
    bad.i_ctime = now32;
    bad.i_mtime = now32;
    put(inode::BAD_INO, &bad);
    for ino in [3u32, 4, 5, 6, 9, 10] {
        put(ino, &Inode::zeroed(isize));
    }
    // 2: root.
    let ext = g.has_extents();
    let shape = Shape::new(bs);
    let small_map = |blocks: &[u64]| {
        if ext {
            Ok(extent::build_tree(&extents_of(blocks), None, bsz, None).0)
        } else {
            block_map_root(shape, &direct_blocks(blocks))
        }
    };
    let root_tree = small_map(&[p.root])?;
    let mut root_inode = mapped_inode(
        isize,
        S_IFDIR | 0o755,
        3,
        bs,
        bs / 512,
        root_tree,
        ext,
        now32,
    );
    let (uid, gid) = opts.tunables.root_owner;
    root_inode.set_owner(uid, gid);
    put(inode::ROOT_INO, &root_inode);
    // 11: lost+found.
    let lpf_tree = small_map(&p.lpf)?;
    let lpf_bytes = p.lpf.len() as u64 * bs;
    put(
        inode::LPF_INO,
        &mapped_inode(
            isize,
            S_IFDIR | 0o700,
            2,
            lpf_bytes,
            lpf_bytes / 512,
            lpf_tree,
            ext,
            now32,
        ),
    );
    // 8: journal (without one, inode 8 is reserved like 3..6).
    let mut jetb_block = None;
    if g.journal_blocks == 0 {
        put(inode::JOURNAL_INO, &Inode::zeroed(isize));
    } else {
        let jext: Vec<Extent> = {
            let mut v = Vec::new();
            let mut logical = 0u64;
            for &(s, l) in &p.journal {
                v.push(Extent {
                    ee_block: logical as u32,
                    ee_len: l as u16,
                    start: s,
                });
                logical += l;
            }
            v
        };
        let (jroot, map_blocks) = match &p.journal_map {
            Some(m) => (block_map_root(shape, m)?, m.indirect.len() as u64),
            None => {
                let jseed = csum_seed.map(|s| inode::inode_seed(s, inode::JOURNAL_INO, 0));
                let (root, etb) = extent::build_tree(&jext, p.journal_etb, bsz, jseed);
                jetb_block = etb;
                (root, u64::from(p.journal_etb.is_some()))
            }
        };
        let jblocks_512 = (g.journal_blocks + map_blocks) * (bs / 512);
        let jino = mapped_inode(
            isize,
            S_IFREG | 0o600,
            1,
            g.journal_blocks * bs,
            jblocks_512,
            jroot,
            ext,
            now32,
        );
        put(inode::JOURNAL_INO, &jino);
        sb.set_jnl_blocks(&jroot);
        sb.s_jnl_blocks[15] = ((g.journal_blocks * bs) >> 32) as u32;
        sb.s_jnl_blocks[16] = ((g.journal_blocks * bs) & 0xFFFF_FFFF) as u32;
    }
    // 7: resize inode.
    let resize_geo = ResizeGeometry {
        block_size: bs,
        first_data_block: g.first_data_block,
        desc_blocks: g.desc_blocks,
        reserved_gdt_blocks: g.reserved_gdt_blocks,
        groups: g.groups,
        blocks_per_group: g.blocks_per_group,
    };
    let resize = p.dind.map(|dind| {
        let rb = resize_inode::build(&resize_geo);
        let ino = resize_inode::new_inode(isize, bs, dind, rb.mapped_blocks, now32);
        (dind, rb, ino)
    });
    match &resize {
        Some((_, _, ino)) => put(inode::RESIZE_INO, ino),
        // Without the feature inode 7 is just reserved (zero, checksummed).
        None => put(inode::RESIZE_INO, &Inode::zeroed(isize)),
    }

    // The writes: data blocks first, then bitmaps, then descriptors and
    // superblocks.
    let fs_bytes = g.blocks * bs;
    let mut fixed: Vec<(u64, Vec<u8>)> = Vec::new();
    let root_seed = csum_seed.map(|s| inode::inode_seed(s, inode::ROOT_INO, 0));
    fixed.push((
        p.root * bs,
        dir::first_block(
            bsz,
            inode::ROOT_INO,
            inode::ROOT_INO,
            &[(b"lost+found", inode::LPF_INO)],
            root_seed,
        ),
    ));
    let lpf_seed = csum_seed.map(|s| inode::inode_seed(s, inode::LPF_INO, 0));
    for (i, &b) in p.lpf.iter().enumerate() {
        let blk = if i == 0 {
            dir::first_block(bsz, inode::LPF_INO, inode::ROOT_INO, &[], lpf_seed)
        } else {
            dir::empty_block(bsz, lpf_seed)
        };
        fixed.push((b * bs, blk));
    }
    let mut resize_blocks = None;
    if let Some((dind, rb, _)) = resize {
        fixed.push((dind * bs, rb.dind));
        if rb.reserved.1 > 0 {
            resize_blocks = Some(resize_geo);
        }
    }
    if let (Some(etb), Some(blk)) = (p.journal_etb, jetb_block) {
        fixed.push((etb * bs, blk));
    }
    // A block-mapped journal's indirect blocks.
    if let Some(m) = &p.journal_map {
        for (s, b) in m.indirect.iter() {
            let blk = block_map::encode_block(shape, s, &m.map, &m.indirect)
                .map_err(Error::Unsupported)?;
            fixed.push((b * bs, blk));
        }
    }
    if let Some(&(first, _)) = p.journal.first() {
        let jsb = journal::superblock(g.block_size, g.journal_blocks as u32, &opts.uuid);
        fixed.push((first * bs, jsb));
    }
    let itable0 = p.tables.get(0).map_or(0, |t| t.inode_table);
    fixed.push((itable0 * bs, itable));
    let backup_blocks = (1..g.groups)
        .filter(|&x| g.has_super(x))
        .map(|x| g.group_first(x))
        .collect();
    let csum = has_group_csum(&sb);
    let mut writes = MkfsWrites {
        new_len: (fs_bytes > dev_size).then_some(fs_bytes),
        discard: opts.discard.then(|| 0..fs_bytes.min(dev_size)),
        fixed,
        resize: resize_blocks,
        groups: MkfsGroups {
            g: g.clone(),
            sb,
            tables: p.tables,
            used: p.used,
            discard: opts.discard,
            csum,
            bb_csums: Vec::new(),
            desc_csums: Vec::new(),
        },
    };
    writes.groups.checksum_bitmaps();
    // Lifetime writes: counted by replaying mke2fs's I/O through
    // libext2fs's write cache (see `io_count`).
    let sb = &writes.groups.sb;
    // mke2fs starts the count (at 1) only on a filesystem with one of the
    // ext4 features flex_bg, huge_file, uninit_bg, dir_nlink,
    // metadata_csum or extra_isize; libext2fs adds to a count of 0 never.
    use super::features::ro_compat;
    let ext4ish = sb.has_incompat(incompat::FLEX_BG)
        || sb.has_ro_compat(
            ro_compat::HUGE_FILE
                | ro_compat::GDT_CSUM
                | ro_compat::DIR_NLINK
                | ro_compat::METADATA_CSUM
                | ro_compat::EXTRA_ISIZE,
        );
    let count = ext4ish.then(|| {
        io_count::mke2fs(&io_count::NewFs {
            block_size: bs,
            inode_size: u64::from(g.inode_size),
            inode_table: itable0,
            metadata_csum: sb.has_metadata_csum(),
            root_owner: opts.tunables.root_owner != (0, 0),
            root_block: p.root,
            lpf_blocks: &p.lpf,
            resize: p.dind.map(|d| (d, resize_geo.primary_reserved())),
            journal: match (&p.journal_map, p.journal.first()) {
                (Some(m), _) => Some(io_count::Journal::Blocks(m)),
                (None, Some(&(start, _))) => Some(io_count::Journal::Extents {
                    start,
                    leaf: p.journal_etb,
                }),
                (None, None) => None,
            },
            groups: &writes.groups,
            desc_blocks: g.desc_blocks,
        })
    });
    writes.groups.sb.s_kbytes_written = count.unwrap_or(0);
    Ok(MkfsPlan {
        geometry: g,
        superblock: writes.groups.sb.clone(),
        backup_blocks,
        journal_extents: p.journal,
        writes,
    })
}

/// Writes a planned filesystem.
pub fn apply<D: BlockDevice + ?Sized>(dev: &mut D, plan: &MkfsPlan) -> Result<(), Error> {
    dev.commit(&plan.writes)?;
    Ok(())
}
