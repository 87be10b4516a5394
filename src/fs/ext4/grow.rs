//! resize2fs (offline grow): plan, then apply, as resize2fs 1.47.0 does
//! it (`resize_fs`, `adjust_fs_info`, `fix_resize_inode`,
//! `ext2fs_set_gdt_csum`).
//!
//! The planner reads the filesystem (superblock, descriptors, bitmaps,
//! resize inode), computes the new geometry exactly as resize2fs does
//! (last-group trimming, reserved-GDT consumption, compounding reserved
//! percentage), places the new groups' bitmaps and inode tables with the
//! same allocator as mkfs on the live block map, recounts every group and
//! sets the flags resize2fs sets, rebuilds the resize inode, and collects
//! every write in one plan. Shrinking is refused.
//!
//! Offline growth that needs more descriptor blocks than the table and
//! its reserve hold grows the classic table in place, as resize2fs does
//! (it never converts to meta_bg offline): the reserve becomes 0
//! (`resize_inode` stays), and what sits in the new table's blocks of
//! group 0 and every backup group moves first: bitmaps and inode tables
//! are placed again, data blocks are copied and every extent tree
//! rewritten, inode tables copied (see `relocate`). When inode tables
//! moved, resize2fs flushes the bitmaps before its final recount, so a
//! group that only then becomes `BLOCK_UNINIT` keeps the checksum of an
//! empty bitmap (and an empty bitmap block).
//!
//! Every feature set mke2fs makes grows (see `check_features` for what is
//! refused): 32- or 64-byte descriptors; group checksums by
//! `metadata_csum` (crc32c, bitmap checksums too), `uninit_bg` (crc16) or
//! none, in which case no group is flagged uninitialized and a new group's
//! block and inode bitmaps are written out; tables packed per flex group,
//! or each group's own at its start (offset by the RAID stride that
//! resize2fs's `determine_fs_stride` reads off the old groups' layout).
//!
//! A mounted filesystem (the instance model) grows with the same plan;
//! [`GrowRequest::online`] skips the offline-only precondition checks
//! and file-size quirks, and the CLI renders the online lines from
//! [`GrowPlan::old_desc_blocks`] / [`GrowPlan::new_desc_blocks`]. Online,
//! growth past the reserve converts the filesystem to `meta_bg` as the
//! kernel's online resizer does (`ext4_convert_meta_bg`): the classic
//! descriptor table fills the reserve (`s_first_meta_bg` = its blocks,
//! `s_reserved_gdt_blocks` = 0), `resize_inode` is cleared and the resize
//! inode's double indirect block freed (the inode keeps its mode, size and
//! times, with no blocks), and each later descriptor block lives in the
//! first, second and last group of its meta group (64 groups), after the
//! group's superblock backup if it has one. The new groups' bitmaps and
//! inode tables are placed by ebsim's allocator (resize2fs's), not by the
//! kernel's `ext4_alloc_group_tables`, which packs them at the start of
//! each batch of added groups: the result is valid (e2fsck, the kernel's
//! statfs) but not laid out block for block as the kernel would. A
//! superblock backup group inside a meta group holds only the superblock
//! (and its meta group's descriptor block when it is the first, second or
//! last group), never a copy of the classic table.
//!
//! A filesystem that already has `meta_bg` (mke2fs made it so, or an
//! earlier online grow converted it) grows online and offline alike: the
//! classic table, `s_first_meta_bg` and the (zero) reserve stay, and each
//! new descriptor block goes to its new meta group, so nothing moves
//! (resize2fs's `blocks_to_move` finds the descriptor area unchanged).

use super::bitmap::{self, BlockSet};
use super::error::{Error, GrowError};
use super::features::{compat, incompat, ro_compat};
use super::fs::Ext4;
use super::group_desc::{BG_BLOCK_UNINIT, BG_INODE_UNINIT, GroupDesc, has_group_csum};
use super::inode::{Inode, RESIZE_INO};
use super::io_count;
use super::layout::{Allocator, GroupTables, TableList};
use super::relocate::{self, Relocation};
use super::resize_inode::{self, ResizeGeometry};
use super::superblock::{STATE_ERROR, STATE_VALID, Superblock};
use super::tables::{self, Groups};
use crate::blockdev::{BlockDevice, Sink, WriteBatch, WritePlan};
use std::collections::BTreeMap;
use std::ops::Range;

mod shrink;

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GrowRequest {
    /// New size in filesystem blocks; None = the device's size (rounded
    /// down to a page).
    pub size: Option<u64>,
    /// `-f`: skip the "run e2fsck first" checks and the device-size check.
    pub force: bool,
    /// The filesystem is mounted (online resize): no fsck checks, no file
    /// size quirks.
    pub online: bool,
    /// The device is a plain image file: copy resize2fs's handling of the
    /// file size (extend a too short file by writing one '0' byte at the
    /// new end; truncate a longer one to the requested size afterwards).
    pub image_file: bool,
    /// Time for `s_wtime` and the resize inode (E2FSPROGS_FAKE_TIME or now).
    pub now: u64,
    /// `-S`: the RAID stride to record in the superblock and to place new
    /// groups' tables by without flex_bg (None: the one the superblock or
    /// the layout shows). Must be below the blocks per group.
    pub stride: Option<u32>,
    /// resize2fs's estimate of the minimum size (`-P`): a smaller size is
    /// refused unless forced. None: not checked.
    pub minimum: Option<u64>,
}

/// The outcome of planning.
#[derive(Debug, Clone)]
pub enum GrowOutcome {
    /// Already that size ("Nothing to do!"). The batch may still extend the
    /// image file, as resize2fs does before it finds out.
    NothingToDo {
        /// Current (= adjusted requested) block count.
        blocks: u64,
        /// Block size in bytes.
        block_size: u32,
        /// Writes (possibly empty).
        batch: WriteBatch,
    },
    /// A grow.
    Grow(Box<GrowPlan>),
}

/// A planned grow.
#[derive(Debug, Clone)]
pub struct GrowPlan {
    /// Blocks before.
    pub old_blocks: u64,
    /// Blocks after.
    pub new_blocks: u64,
    /// Block size in bytes.
    pub block_size: u32,
    /// Group descriptor blocks before (resize2fs online: `old_desc_blocks`).
    pub old_desc_blocks: u64,
    /// Group descriptor blocks after (`new_desc_blocks`).
    pub new_desc_blocks: u64,
    /// Groups before.
    pub old_groups: u64,
    /// Groups after.
    pub new_groups: u64,
    /// resize2fs's progress passes after the first (`-p`), as (pass, the
    /// count it goes to): 2 relocating blocks, 3 scanning the inode
    /// table, 4 updating inode references, 5 moving inode tables.
    pub passes: Vec<(u32, u64)>,
    /// The new superblock (primary).
    pub superblock: Superblock,
    /// Every write, generated on demand, the superblocks last.
    pub batch: GrowWrites,
}

/// The writes of a grow, as a [`WritePlan`]: the image file's length (and
/// resize2fs's '0' byte at its new end), every initialized block bitmap,
/// the resize inode's blocks, every superblock and descriptor table copy,
/// the primary superblock last. Kept compact: the new groups' table
/// locations (24 bytes a group) and the used-block runs; bitmaps and
/// descriptors are rendered when the device walks the plan.
#[derive(Debug, Clone)]
pub struct GrowWrites {
    head: WriteBatch,
    body: Option<GrowBody>,
}

#[derive(Debug, Clone)]
struct GrowBody {
    groups: GrowGroups,
    /// The resize inode's dind block (block number, contents), its
    /// reserved GDT blocks, and the inode itself (offset, bytes).
    dind: Option<(u64, Vec<u8>)>,
    reserved: Option<ResizeGeometry>,
    resize_inode: Option<(u64, Vec<u8>)>,
    /// Growing past the reserve offline: what moves out of the way.
    reloc: Option<Relocation>,
}

impl GrowBody {
    fn data(&self, sink: &mut Sink<'_>) -> Result<(), crate::blockdev::Error> {
        let bs = u64::from(self.groups.sb.block_size());
        if let Some(r) = &self.reloc {
            for (b, bytes) in &r.blocks {
                sink(b * bs, bytes)?;
            }
        }
        tables::write_bitmaps(&self.groups, sink)?;
        if let Some((b, bytes)) = &self.dind {
            sink(b * bs, bytes)?;
        }
        if let Some(r) = &self.reserved {
            resize_inode::write_reserved(r, sink)?;
        }
        if let Some((off, bytes)) = &self.resize_inode {
            sink(*off, bytes)?;
        }
        Ok(())
    }

    /// Bytes written before the superblocks and descriptor tables.
    fn data_bytes(&self) -> u64 {
        let bs = u64::from(self.groups.sb.block_size());
        tables::bitmap_bytes(&self.groups)
            + self.reloc.as_ref().map_or(0, |r| r.bytes(bs))
            + self.dind.as_ref().map_or(0, |(_, b)| b.len() as u64)
            + self.reserved.map_or(0, |r| r.reserved_gdt_blocks * bs)
            + self
                .resize_inode
                .as_ref()
                .map_or(0, |(_, b)| b.len() as u64)
    }
}

impl WritePlan for GrowWrites {
    fn new_len(&self) -> Option<u64> {
        self.head.new_len
    }

    fn for_each_write(&self, sink: &mut Sink<'_>) -> Result<(), crate::blockdev::Error> {
        self.head.for_each_write(sink)?;
        if let Some(b) = &self.body {
            b.data(sink)?;
            tables::write_super_and_gdt(&b.groups, sink)?;
        }
        Ok(())
    }

    fn discards(&self) -> Vec<Range<u64>> {
        let mut out = self.head.discards();
        if let Some(r) = self.body.as_ref().and_then(|b| b.reloc.as_ref()) {
            let bs = u64::from(
                self.body
                    .as_ref()
                    .map_or(4096, |b| b.groups.sb.block_size()),
            );
            out.extend(r.zeros.runs().map(|x| x.start * bs..x.end * bs));
        }
        out
    }
}

/// Every group after the grow, computed on demand: the old groups from
/// their descriptors, the new ones from their table locations, both
/// recounted from the used-block runs with resize2fs's flag rules
/// (`ext2fs_set_gdt_csum`).
#[derive(Debug, Clone)]
struct GrowGroups {
    sb: Superblock,
    old: Vec<GroupDesc>,
    /// (free inodes, 1-based index of the last used inode) of old groups.
    inodes: Vec<(u64, u64)>,
    new_tables: TableList,
    /// Bit g: group g holds a new group's bitmap or inode table, or had
    /// a block allocated or freed by the relocation: not `BLOCK_UNINIT`
    /// before the final recount.
    gets_tables: Vec<u64>,
    /// When resize2fs moved inode tables it flushed every initialized
    /// bitmap before the final recount: the checksum of an empty block
    /// bitmap, for the groups that only then become `BLOCK_UNINIT`.
    flushed_csum: Option<u32>,
    used: BlockSet,
    /// The filesystem keeps group descriptor checksums (metadata_csum or
    /// uninit_bg): only then are groups flagged uninitialized.
    csum: bool,
    /// Old groups whose inode bitmaps change (a shrink moving inodes into
    /// them): the new bitmaps.
    inode_maps: BTreeMap<u64, Vec<u8>>,
    /// What follows the last descriptor in its block (a shrink keeps the
    /// removed groups' old descriptors there).
    desc_tail: Vec<u8>,
}

impl GrowGroups {
    fn groups(&self) -> u64 {
        self.sb.group_count()
    }

    /// Free blocks and free inodes over every group.
    fn totals(&self) -> (u64, u64) {
        let (mut blocks, mut inodes) = (0, 0);
        let mut batch = Vec::new();
        let mut g0 = 0;
        while g0 < self.groups() {
            let g1 = (g0 + tables::DESC_BATCH).min(self.groups());
            batch.clear();
            self.bare(g0..g1, &mut batch);
            for d in &batch {
                blocks += u64::from(d.bg_free_blocks_count);
                inodes += u64::from(d.bg_free_inodes_count);
            }
            g0 = g1;
        }
        (blocks, inodes)
    }

    /// The descriptors of `groups` without checksums of their own.
    fn bare(&self, groups: Range<u64>, out: &mut Vec<GroupDesc>) {
        let sb = &self.sb;
        let fdb = u64::from(sb.s_first_data_block);
        let bpg = u64::from(sb.s_blocks_per_group);
        let ipg = u64::from(sb.s_inodes_per_group);
        let ng = self.groups();
        let last = ng - 1;
        let ng0 = self.old.len() as u64;
        let used =
            self.used
                .count_per_group(fdb + groups.start * bpg, bpg, groups.end - groups.start);
        for (g, used_here) in groups.zip(used) {
            let mut d = if g < ng0 {
                self.old[g as usize]
            } else {
                let t = self.new_tables.get((g - ng0) as usize).unwrap_or_default();
                // Without group checksums a new group has no flags and
                // initialized bitmaps (adjust_fs_info sets them only with
                // csum_flag).
                let mut flags = 0;
                if self.csum {
                    flags |= BG_INODE_UNINIT;
                    if g != last && sb.base_meta_blocks(g) == 0 {
                        flags |= BG_BLOCK_UNINIT;
                    }
                }
                GroupDesc {
                    bg_flags: flags,
                    bg_itable_unused: if self.csum { ipg as u32 } else { 0 },
                    bg_block_bitmap: t.block_bitmap,
                    bg_inode_bitmap: t.inode_bitmap,
                    bg_inode_table: t.inode_table,
                    ..GroupDesc::default()
                }
            };
            // Groups receiving metadata blocks are no longer computable.
            let gets = self
                .gets_tables
                .get((g / 64) as usize)
                .is_some_and(|w| w & (1 << (g % 64)) != 0);
            if gets || g == last {
                d.bg_flags &= !BG_BLOCK_UNINIT;
            }
            let was_init = !d.has_flag(BG_BLOCK_UNINIT);
            // Recount.
            let first = fdb + g * bpg;
            let end = (first + bpg).min(sb.s_blocks_count);
            let free = (end - first) - used_here;
            d.bg_free_blocks_count = free as u32;
            let (fi, last_used) = self.inodes.get(g as usize).copied().unwrap_or((ipg, 0));
            d.bg_free_inodes_count = fi as u32;
            if !self.csum {
                // ext2fs_set_gdt_csum does nothing without group checksums.
                out.push(d);
                continue;
            }
            if free == bpg && g != last {
                d.bg_flags |= BG_BLOCK_UNINIT;
                if was_init {
                    if let Some(c) = self.flushed_csum {
                        // resize2fs flushed this group's (empty) bitmap
                        // after moving inode tables, before it became
                        // BLOCK_UNINIT.
                        d.bg_block_bitmap_csum = c;
                    }
                }
            }
            if fi == ipg {
                d.bg_flags |= BG_INODE_UNINIT;
                d.bg_itable_unused = ipg as u32;
            } else {
                d.bg_flags &= !BG_INODE_UNINIT;
                d.bg_itable_unused = (ipg - last_used) as u32;
            }
            out.push(d);
        }
    }
}

impl Groups for GrowGroups {
    fn sb(&self) -> &Superblock {
        &self.sb
    }

    fn descs(&self, groups: Range<u64>, out: &mut Vec<GroupDesc>) {
        let start = out.len();
        let g0 = groups.start;
        self.bare(groups, out);
        for (i, d) in out[start..].iter_mut().enumerate() {
            let g = g0 + i as u64;
            // Bitmaps of initialized groups: checksums into the descriptor
            // (BLOCK_UNINIT groups keep whatever checksum field they had; an
            // old inode bitmap is kept, and its checksum was verified).
            if !d.has_flag(BG_BLOCK_UNINIT) && self.sb.has_metadata_csum() {
                d.bg_block_bitmap_csum = tables::block_bitmap_csum(&self.sb, &self.block_bitmap(g));
            }
            if let (Some(bm), true) = (self.inode_maps.get(&g), self.sb.has_metadata_csum()) {
                d.bg_inode_bitmap_csum = tables::inode_bitmap_csum(&self.sb, bm);
            }
            d.set_checksum(&self.sb, g as u32);
        }
    }

    fn block_bitmap(&self, g: u64) -> Vec<u8> {
        tables::block_bitmap(&self.used, &self.sb, g)
    }

    fn inode_bitmap(&self, g: u64) -> Option<Vec<u8>> {
        // Old groups keep their inode bitmaps (a grow does not change
        // them). Without group checksums a new group's inode bitmap is
        // initialized: no inode used, the padding past the group's inodes
        // set.
        if let Some(bm) = self.inode_maps.get(&g) {
            return Some(bm.clone());
        }
        (g >= self.old.len() as u64).then(|| tables::inode_bitmap(&self.sb, 0))
    }

    fn desc_tail(&self) -> &[u8] {
        &self.desc_tail
    }
}

/// Features the grow planner handles; anything else is refused by name.
fn check_features(sb: &Superblock) -> Result<(), Error> {
    let refuse = |state: &'static str, feature: &str| {
        Err(Error::UnsupportedFeature {
            state,
            feature: feature.to_string(),
            operation: "resize2fs",
        })
    };
    // meta_bg with resize_inode is a combination mke2fs never makes and
    // the kernel's resizer refuses.
    if sb.meta_bg() && sb.has_compat(compat::RESIZE_INODE) {
        return refuse("has the", "meta_bg and resize_inode");
    }
    let bad_incompat =
        incompat::JOURNAL_DEV | incompat::MMP | incompat::COMPRESSION | incompat::DIRDATA;
    let known_incompat = incompat::FILETYPE
        | incompat::RECOVER
        | incompat::EXTENTS
        | incompat::BIT64
        | incompat::FLEX_BG
        | incompat::META_BG
        | incompat::EA_INODE
        | incompat::CSUM_SEED
        | incompat::LARGEDIR
        | incompat::INLINE_DATA
        | incompat::ENCRYPT
        | incompat::CASEFOLD;
    let word = super::features::Word::Incompat;
    for b in (0..32)
        .map(|i| 1u32 << i)
        .filter(|b| sb.s_feature_incompat & b != 0)
    {
        if b & bad_incompat != 0 || b & known_incompat == 0 {
            return refuse("has the", &super::features::name(word, b));
        }
    }
    let bad_ro = ro_compat::BIGALLOC
        | ro_compat::HAS_SNAPSHOT
        | ro_compat::REPLICA
        | ro_compat::SHARED_BLOCKS;
    let word = super::features::Word::RoCompat;
    if let Some(b) = (0..32)
        .map(|i| 1u32 << i)
        .find(|b| sb.s_feature_ro_compat & b & bad_ro != 0)
    {
        return refuse("has the", &super::features::name(word, b));
    }
    let bad_compat = compat::SPARSE_SUPER2 | compat::EXCLUDE_BITMAP | compat::LAZY_BG;
    let word = super::features::Word::Compat;
    if let Some(b) = (0..32)
        .map(|i| 1u32 << i)
        .find(|b| sb.s_feature_compat & b & bad_compat != 0)
    {
        return refuse("has the", &super::features::name(word, b));
    }
    if sb.has_incompat(incompat::FLEX_BG) && sb.s_log_groups_per_flex > 31 {
        return Err(Error::Unsupported(format!(
            "s_log_groups_per_flex {} is out of range",
            sb.s_log_groups_per_flex
        )));
    }
    if !sb.sparse_super() {
        return refuse("lacks the", "sparse_super");
    }
    if sb.s_log_cluster_size != sb.s_log_block_size {
        return refuse("has the", "bigalloc");
    }
    if sb.s_rev_level < 1 || (sb.has_incompat(incompat::BIT64) && sb.s_desc_size != 64) {
        return Err(Error::Unsupported(format!(
            "group descriptor size {} is not supported by ebsim's resize2fs (only 32, or 64 with 64bit)",
            sb.s_desc_size
        )));
    }
    Ok(())
}

/// resize2fs's `determine_fs_stride`: the RAID stride recorded in the
/// superblock, or else the one the groups' layout shows. Between two
/// neighbouring groups that agree on having a superblock copy, the block
/// and inode bitmaps each moving by the same non-negative distance beyond
/// a whole group count as one sample (not at a flex group's start); the
/// stride is the samples' mean, or 0 when a filesystem of more than 12
/// groups gives fewer than 3. A flex_bg filesystem packs its bitmaps, so
/// it finds none. The differences are taken in 64 bits and kept as a C
/// `int`, as the tool does.
fn fs_stride(sb: &Superblock, descs: &[GroupDesc]) -> u32 {
    if sb.s_raid_stride != 0 {
        return u32::from(sb.s_raid_stride);
    }
    let flex = 1u64 << sb.s_log_groups_per_flex.min(31);
    let bpg = u64::from(sb.s_blocks_per_group);
    let (mut sum, mut num) = (0u64, 0u64);
    let stride_of = |a: u64, b: u64| b.wrapping_sub(a).wrapping_sub(bpg) as u32 as i32;
    for (g, pair) in (1u64..).zip(descs.windows(2)) {
        if sb.group_has_super(g) != sb.group_has_super(g - 1) || (flex > 1 && g % flex == 0) {
            continue;
        }
        let b = stride_of(pair[0].bg_block_bitmap, pair[1].bg_block_bitmap);
        let i = stride_of(pair[0].bg_inode_bitmap, pair[1].bg_inode_bitmap);
        if b == i && b >= 0 {
            sum += b as u64;
            num += 1;
        }
    }
    if descs.len() > 12 && num < 3 {
        sum = 0;
    }
    sum.checked_div(num).map_or(0, |s| s as u32)
}

/// resize2fs's refusal to touch a filesystem that needs checking.
fn check_clean(sb: &Superblock) -> Result<(), Error> {
    match needs_check(sb, true) {
        Some(why) => Err(Error::Grow(GrowError::NeedsCheck(why))),
        None => Ok(()),
    }
}

/// Why resize2fs would ask for `e2fsck -f` first, if it would: errors
/// recorded, not cleanly unmounted, free counts past the totals, orphans
/// or a journal to recover, and (`since_mount`: for a resize, not for
/// `-P`) mounted since the last check.
pub fn needs_check(sb: &Superblock, since_mount: bool) -> Option<&'static str> {
    if sb.s_state & STATE_ERROR != 0 {
        return Some("errors recorded");
    }
    if sb.s_state & STATE_VALID == 0 {
        return Some("not cleanly unmounted");
    }
    if since_mount && sb.s_lastcheck < sb.s_mtime {
        return Some("mounted since the last check");
    }
    if sb.s_free_blocks_count > sb.s_blocks_count || sb.s_free_inodes_count > sb.s_inodes_count {
        return Some("free counts exceed totals");
    }
    if sb.s_last_orphan != 0 || sb.has_incompat(incompat::RECOVER) {
        return Some("orphans or journal recovery pending");
    }
    None
}

/// `adjust_new_size`: drop a last group too small for its metadata (+50
/// blocks), and a group that would overflow the inode count.
fn adjust_size(sb: &Superblock, mut size: u64) -> Result<u64, Error> {
    let fdb = u64::from(sb.s_first_data_block);
    let bpg = u64::from(sb.s_blocks_per_group);
    let ipg = u64::from(sb.s_inodes_per_group);
    let itb = sb.inode_table_blocks();
    let rsv = u64::from(sb.s_reserved_gdt_blocks);
    loop {
        let groups = size.saturating_sub(fdb).div_ceil(bpg);
        if groups == 0 {
            return Ok(size);
        }
        let desc = groups.div_ceil(sb.descs_per_block());
        let mut overhead = 2 + itb;
        if sb.group_has_super(groups - 1) {
            overhead += 1 + desc + rsv;
        }
        let rem = (size - fdb) % bpg;
        if groups == 1 && rem != 0 && rem < overhead {
            return Ok(size);
        }
        if groups > 1 && rem != 0 && rem < overhead + 50 {
            size -= rem;
            continue;
        }
        if ipg * groups > 0xFFFF_FFFF {
            if ipg * (groups - 1) > 0xFFFF_FFFF {
                return Err(Error::Grow(GrowError::TooManyInodes {
                    inodes: ipg * groups,
                    max: 0xFFFF_FFFF,
                }));
            }
            size = bpg * (groups - 1) + fdb;
            continue;
        }
        return Ok(size);
    }
}

/// The used-block map of the filesystem: initialized groups from their
/// bitmaps (checksums verified), `BLOCK_UNINIT` groups synthesized from
/// their own metadata (resize2fs `fix_uninit_block_bitmaps`).
fn load_block_map<D: BlockDevice>(fs: &Ext4<D>) -> Result<BlockSet, Error> {
    let sb = fs.superblock();
    let fdb = u64::from(sb.s_first_data_block);
    let bpg = u64::from(sb.s_blocks_per_group);
    let itb = sb.inode_table_blocks();
    let mut used = BlockSet::new();
    let descs = fs.descriptors();
    // In group order, so the set mostly grows at its end.
    for (g, d) in descs.iter().enumerate() {
        let g = g as u64;
        let first = fdb + g * bpg;
        let nbits = sb.s_blocks_count.saturating_sub(first).min(bpg);
        if d.has_flag(BG_BLOCK_UNINIT) {
            let end = (first + sb.base_meta_blocks(g)).min(sb.s_blocks_count);
            used.insert(first..end);
            used.insert_block(d.bg_block_bitmap);
            used.insert_block(d.bg_inode_bitmap);
            used.insert(d.bg_inode_table..d.bg_inode_table + itb);
            continue;
        }
        let bm = fs.read_block(d.bg_block_bitmap)?;
        if sb.has_metadata_csum() {
            let c = tables::block_bitmap_csum(sb, &bm);
            if !tables::bitmap_csum_matches(sb, c, d.bg_block_bitmap_csum) {
                return Err(Error::BitmapChecksum {
                    what: "block bitmap",
                    group: g as u32,
                    block: d.bg_block_bitmap,
                });
            }
        }
        used.insert_bitmap(first, &bm, nbits);
    }
    Ok(used)
}

/// Per group: (free inodes, 1-based index of the last used inode) from the
/// inode bitmaps of initialized groups (checksums verified).
fn load_inode_groups<D: BlockDevice>(fs: &Ext4<D>) -> Result<Vec<(u64, u64)>, Error> {
    let sb = fs.superblock();
    let ipg = u64::from(sb.s_inodes_per_group);
    let mut out = Vec::with_capacity(fs.descriptors().len());
    for (g, d) in fs.descriptors().iter().enumerate() {
        if d.has_flag(BG_INODE_UNINIT) {
            out.push((ipg, 0));
            continue;
        }
        let bm = fs.read_block(d.bg_inode_bitmap)?;
        if sb.has_metadata_csum() {
            let c = tables::inode_bitmap_csum(sb, &bm);
            if !tables::bitmap_csum_matches(sb, c, d.bg_inode_bitmap_csum) {
                return Err(Error::BitmapChecksum {
                    what: "inode bitmap",
                    group: g as u32,
                    block: d.bg_inode_bitmap,
                });
            }
        }
        let (used, last) = bitmap::count_and_last(&bm, ipg);
        out.push((ipg - used, last));
    }
    Ok(out)
}

/// What resize2fs writes when it stops after settling the RAID stride
/// without resizing ("Nothing to do!", the 64-bit answers, a device too
/// small): the stride marked the superblock dirty, so closing the
/// filesystem rewrites the primary superblock with a new write time and
/// that stride (`-S`, or `determine_fs_stride`'s guess). Measured.
pub fn closing_write<D: BlockDevice>(fs: &Ext4<D>, req: &GrowRequest, batch: &mut WriteBatch) {
    let sb0 = fs.superblock();
    let mut sb = sb0.clone();
    sb.s_wtime = req.now;
    sb.s_raid_stride = req
        .stride
        .unwrap_or_else(|| fs_stride(sb0, fs.descriptors())) as u16;
    batch.write(super::superblock::SUPERBLOCK_OFFSET, sb.to_bytes().to_vec());
}

/// The size decision alone (resize2fs main.c, before `resize_fs`): the
/// adjusted new block count, or nothing to do, or a refusal. The CLI
/// prints "Resizing the filesystem on ..." between this and [`plan`],
/// like resize2fs, so errors found while reading bitmaps come after it.
pub fn target<D: BlockDevice>(fs: &Ext4<D>, req: &GrowRequest) -> Result<GrowOutcome, Error> {
    decide(fs, req)
}

/// Plans a grow of the opened filesystem.
pub fn plan<D: BlockDevice>(fs: &Ext4<D>, req: &GrowRequest) -> Result<GrowOutcome, Error> {
    match decide(fs, req)? {
        o @ GrowOutcome::NothingToDo { .. } => Ok(o),
        GrowOutcome::Grow(p) if p.new_blocks < p.old_blocks => {
            shrink::build(fs, req, p.new_blocks, p.batch.head)
        }
        GrowOutcome::Grow(p) => build(fs, req, p.new_blocks, p.batch.head),
    }
}

/// Size checks in resize2fs's order; on a grow, returns a stub plan with
/// the new size and the file-size writes.
fn decide<D: BlockDevice>(fs: &Ext4<D>, req: &GrowRequest) -> Result<GrowOutcome, Error> {
    let sb0 = fs.superblock();
    if !req.force && !req.online {
        check_clean(sb0)?;
    }
    check_features(sb0)?;
    let bs = u64::from(sb0.block_size());
    let blocks0 = sb0.s_blocks_count;
    let dev_size = fs.device().size();
    let mut max_size = dev_size / bs;
    let requested = match req.size {
        Some(n) => n,
        None => {
            // Rounded down to a whole page (4 KiB).
            if bs < 4096 {
                max_size & !((4096 / bs) - 1)
            } else {
                max_size
            }
        }
    };
    // Without 64bit a block number has 32 bits: 16 TiB of 4 KiB blocks
    // is taken down by one block, more is refused.
    let requested = if sb0.has_incompat(incompat::BIT64) {
        requested
    } else if requested == 1 << 32 {
        requested - 1
    } else if requested > 1 << 32 {
        return Err(Error::Grow(GrowError::TooLargeFor32Bit));
    } else {
        requested
    };
    let fdb = u64::from(sb0.s_first_data_block);
    let bpg = u64::from(sb0.s_blocks_per_group);
    let groups_req = requested.saturating_sub(fdb).div_ceil(bpg);
    // With meta_bg the descriptor blocks are spread over the meta groups:
    // no table has to fit in a group (resize2fs main.c checks only
    // without it).
    if !sb0.meta_bg() && groups_req.div_ceil(sb0.descs_per_block()) + fdb > bpg {
        return Err(Error::Grow(GrowError::TooManyDescriptors));
    }
    if let Some(minimum) = req.minimum {
        if !req.force && requested < minimum {
            return Err(Error::Grow(GrowError::BelowMinimum { minimum }));
        }
    }
    if req.stride.is_some_and(|s| u64::from(s) >= bpg) {
        return Err(Error::Grow(GrowError::InvalidStride));
    }
    let mut batch = WriteBatch::new();
    let new_file_size = requested.saturating_mul(bs);
    if req.image_file && !req.online && new_file_size > dev_size {
        // resize2fs extends a short image file by writing "0" at its new
        // last byte (main.c), then trusts it to be that large.
        batch.new_len = Some(new_file_size);
        batch.write(new_file_size - 1, b"0".to_vec());
        max_size = requested;
    }
    if !req.force && requested > max_size {
        return Err(Error::Grow(GrowError::DeviceTooSmall {
            device_blocks: max_size,
            block_kib: bs / 1024,
            requested,
        }));
    }
    let new_blocks = adjust_size(sb0, requested)?;
    if new_blocks == blocks0 {
        if !req.online {
            closing_write(fs, req, &mut batch);
        }
        return Ok(GrowOutcome::NothingToDo {
            blocks: blocks0,
            block_size: sb0.block_size(),
            batch,
        });
    }
    if new_blocks < blocks0 {
        if sb0.has_compat(compat::STABLE_INODES) {
            return Err(Error::Grow(GrowError::StableInodes));
        }
        if req.online {
            // The kernel cannot shrink; resize2fs refuses (online.c).
            return Err(Error::Grow(GrowError::Shrink {
                current: blocks0,
                requested: new_blocks,
            }));
        }
    }
    if req.image_file && !req.online && dev_size > new_file_size && batch.new_len.is_none() {
        // resize2fs truncates a longer image file to the requested size.
        batch.new_len = Some(new_file_size);
    }
    let ng0 = sb0.group_count();
    let desc0 = sb0.desc_blocks();
    let ng = new_blocks.saturating_sub(fdb).div_ceil(bpg);
    let desc = ng.div_ceil(sb0.descs_per_block());
    let reserve = if sb0.has_compat(compat::RESIZE_INODE) {
        u64::from(sb0.s_reserved_gdt_blocks)
    } else {
        0
    };
    // Offline past the reserve, resize2fs moves what is in the bigger
    // table's way; ebsim does that for flex_bg filesystems (resize2fs
    // places the tables of the others by a RAID stride, not ported here).
    let flex = sb0.has_incompat(incompat::FLEX_BG) && sb0.s_log_groups_per_flex > 0;
    if desc > desc0 + reserve && !req.online && !sb0.meta_bg() && !flex {
        return Err(Error::Unsupported(format!(
            "growing to {new_blocks} blocks needs {desc} group descriptor blocks, but only {} exist; moving what is in their way is supported by ebsim's resize2fs only with flex_bg (up to {} blocks grow without moving anything)",
            desc0 + reserve,
            adjust_size(sb0, (desc0 + reserve) * sb0.descs_per_block() * bpg + fdb)?
        )));
    }
    let stub = GrowPlan {
        old_blocks: blocks0,
        new_blocks,
        block_size: sb0.block_size(),
        old_desc_blocks: desc0,
        new_desc_blocks: desc,
        old_groups: ng0,
        new_groups: ng,
        passes: Vec::new(),
        superblock: sb0.clone(),
        batch: GrowWrites {
            head: batch,
            body: None,
        },
    };
    Ok(GrowOutcome::Grow(Box::new(stub)))
}

/// Builds the grow to `new_blocks` (already decided), after the writes of
/// `head` (the image file's length).
fn build<D: BlockDevice>(
    fs: &Ext4<D>,
    req: &GrowRequest,
    new_blocks: u64,
    head: WriteBatch,
) -> Result<GrowOutcome, Error> {
    let sb0 = fs.superblock();
    let bs = u64::from(sb0.block_size());
    let blocks0 = sb0.s_blocks_count;
    let fdb = u64::from(sb0.s_first_data_block);
    let bpg = u64::from(sb0.s_blocks_per_group);

    // New geometry.
    let ng0 = sb0.group_count();
    let desc0 = sb0.desc_blocks();
    let rsv0 = u64::from(sb0.s_reserved_gdt_blocks);
    let ng = new_blocks.saturating_sub(fdb).div_ceil(bpg);
    let desc = ng.div_ceil(sb0.descs_per_block());
    let resize_inode = sb0.has_compat(compat::RESIZE_INODE);
    let reserve = if resize_inode { rsv0 } else { 0 };
    // Beyond the reserve (online only, see `decide`): meta_bg, with the
    // descriptor blocks there are once the reserve is used up as the
    // classic table.
    // A meta_bg filesystem (made so, or converted by an earlier online
    // grow) keeps its classic table and `s_first_meta_bg`: each new
    // descriptor block goes to its meta group, both online and offline
    // (resize2fs's blocks_to_move has nothing to move when
    // `s_first_meta_bg` does not change).
    let beyond = desc > desc0 + reserve && !sb0.meta_bg();
    let convert = beyond && req.online;
    // Offline, resize2fs grows the classic table in place instead, moving
    // what is in its way (`relocate`); the reserve is used up.
    let relocating = beyond && !req.online;
    let rsv = if convert {
        0
    } else if resize_inode {
        (rsv0 + desc0).saturating_sub(desc).min(bs / 4)
    } else {
        rsv0
    };
    let ipg = u64::from(sb0.s_inodes_per_group);
    let itb = sb0.inode_table_blocks();

    // Current state.
    let mut used = load_block_map(fs)?;
    let old_used = if relocating {
        used.clone()
    } else {
        BlockSet::new()
    };
    let inodes = load_inode_groups(fs)?;

    let mut sb = sb0.clone();
    sb.s_blocks_count = new_blocks;
    sb.s_overhead_clusters = 0;
    sb.s_inodes_count = u32::try_from(ipg * ng).map_err(|_| {
        Error::Grow(GrowError::TooManyInodes {
            inodes: ipg * ng,
            max: 0xFFFF_FFFF,
        })
    })?;
    sb.s_r_blocks_count = kept_reserve(sb0, new_blocks);
    sb.s_reserved_gdt_blocks = rsv as u16;
    if convert {
        sb.s_feature_compat &= !compat::RESIZE_INODE;
        sb.s_feature_incompat |= incompat::META_BG;
        sb.s_first_meta_bg = u32::try_from(desc0 + reserve).unwrap_or(u32::MAX);
    }
    sb.s_state &= !STATE_ERROR;
    sb.s_wtime = req.now;

    // Old groups' superblock areas with the new descriptor count (the
    // same blocks: descriptors grow into reserved GDT blocks).
    for g in 0..ng0 {
        let first = fdb + g * bpg;
        used.insert(first..(first + sb.base_meta_blocks(g)).min(new_blocks));
    }

    let mut old: Vec<GroupDesc> = fs.descriptors().to_vec();
    let flex_bg = sb0.has_incompat(incompat::FLEX_BG) && sb0.s_log_groups_per_flex > 0;
    let stride = req.stride.unwrap_or_else(|| fs_stride(sb0, &old));
    // resize2fs records the stride it found (a u16 field).
    sb.s_raid_stride = stride as u16;
    let mut prev = old.last().map(|d| GroupTables {
        block_bitmap: d.bg_block_bitmap,
        inode_bitmap: d.bg_inode_bitmap,
        inode_table: d.bg_inode_table,
    });
    let mut alloc = Allocator {
        used,
        blocks: new_blocks,
        fdb,
        bpg,
        groups: ng,
        flex: 1u64 << sb0.s_log_groups_per_flex,
        itb,
    };
    let mut new_tables = TableList::with_capacity(usize::try_from(ng - ng0).unwrap_or(0));
    let mut gets_tables = vec![0u64; usize::try_from(ng.div_ceil(64)).unwrap_or(0)];
    for i in ng0..ng {
        let first = fdb + i * bpg;
        alloc
            .used
            .insert(first..(first + sb.base_meta_blocks(i)).min(new_blocks));
        let placed = if flex_bg {
            alloc.allocate_group_table(i, prev)
        } else {
            alloc.allocate_group_table_in_group(i, stride)
        };
        let t = placed.map_err(|e| {
            Error::Unsupported(format!(
                "no room for the bitmaps and inode table of new group {}",
                e.group
            ))
        })?;
        prev = Some(t);
        new_tables.push(t);
        if !flex_bg {
            // A group's own tables keep it computable (BLOCK_UNINIT stays).
            continue;
        }
        for b in [
            t.block_bitmap,
            t.inode_bitmap,
            t.inode_table,
            t.inode_table + itb - 1,
        ] {
            let g = (b - fdb) / bpg;
            if let Some(w) = gets_tables.get_mut((g / 64) as usize) {
                *w |= 1 << (g % 64);
            }
        }
    }
    let reloc = if relocating {
        Some(relocate::plan(
            fs,
            relocate::Input {
                sb: &sb,
                old_used: &old_used,
                used: &mut alloc.used,
                old: &mut old,
                new_tables: &new_tables,
                touched: &mut gets_tables,
            },
        )?)
    } else {
        None
    };
    if convert && resize_inode {
        // The conversion frees the resize inode's double indirect block
        // (its reserved blocks were all used by descriptors by then).
        let dind = resize_inode::dind_of(&fs.read_inode(RESIZE_INO)?);
        if dind != 0 && dind < blocks0 {
            alloc.used.remove_block(dind);
        }
    }
    let mut reloc = reloc;
    let mut groups = GrowGroups {
        sb,
        old,
        inodes,
        new_tables,
        gets_tables,
        flushed_csum: None,
        used: alloc.used,
        csum: has_group_csum(sb0),
        inode_maps: BTreeMap::new(),
        desc_tail: Vec::new(),
    };
    let flushed = reloc.as_ref().is_some_and(|r| r.itables_moved());
    if flushed && groups.sb.has_metadata_csum() {
        let zero = vec![0u8; (bpg / 8) as usize];
        groups.flushed_csum = Some(tables::block_bitmap_csum(&groups.sb, &zero));
    }

    // Totals.
    let mut free_blocks = 0u64;
    let mut free_inodes = 0u64;
    let mut batch = Vec::new();
    let mut g0 = 0;
    while g0 < ng {
        let g1 = (g0 + tables::DESC_BATCH).min(ng);
        batch.clear();
        groups.bare(g0..g1, &mut batch);
        for (i, d) in batch.iter().enumerate() {
            free_blocks += u64::from(d.bg_free_blocks_count);
            free_inodes += u64::from(d.bg_free_inodes_count);
            let g = g0 + i as u64;
            if let (true, Some(r)) = (flushed, reloc.as_mut()) {
                let touched = groups
                    .gets_tables
                    .get((g / 64) as usize)
                    .is_some_and(|w| w & (1 << (g % 64)) != 0);
                let was_init =
                    g < ng0 && (touched || !fs.descriptors()[g as usize].has_flag(BG_BLOCK_UNINIT));
                if d.has_flag(BG_BLOCK_UNINIT) && was_init {
                    // That flush left an empty bitmap block.
                    r.zero_block(d.bg_block_bitmap);
                }
            }
        }
        g0 = g1;
    }
    groups.sb.s_free_blocks_count = free_blocks;
    groups.sb.s_free_inodes_count = free_inodes as u32;

    // The resize inode, rebuilt for the new group count.
    let mut body = GrowBody {
        groups,
        dind: None,
        reserved: None,
        resize_inode: None,
        reloc,
    };
    if let Some(ib) = body.reloc.as_ref().and_then(|r| r.journal_blocks) {
        // fix_sb_journal_backup: the superblock's copy of the journal
        // inode's block map follows it.
        body.groups.sb.set_jnl_blocks(&ib);
    }
    if convert && resize_inode {
        // ext4_convert_meta_bg: the resize inode keeps its mode, size and
        // times and loses its blocks.
        let sb = &body.groups.sb;
        let raw = fs.read_inode_bytes(RESIZE_INO)?;
        let mut ino = Inode::from_bytes(&raw);
        ino.i_block = [0; 60];
        ino.i_blocks = 0;
        let mut d0 = Vec::new();
        body.groups.bare(0..1, &mut d0);
        let itable0 = d0.first().map_or(0, |d| d.bg_inode_table);
        let off = itable0 * bs + u64::from(RESIZE_INO - 1) * u64::from(sb.inode_size());
        body.resize_inode = Some((
            off,
            ino.to_bytes(RESIZE_INO, sb.has_metadata_csum().then(|| sb.csum_seed())),
        ));
    } else if resize_inode {
        let geo = ResizeGeometry::of(&body.groups.sb);
        if let Some(mut r) = body.reloc.take() {
            let (ino, dind, _) = resize_inode_fields(fs, &body, req, &geo)?;
            // The double indirect block may have moved; it ends up zeroed
            // (no reserve left), which a hole does.
            let new_dind = r.map_block(dind);
            if new_dind >= blocks0 {
                return Err(Error::Grow(GrowError::BadDindBlock));
            }
            let mut ino = ino;
            resize_inode::set_dind(&mut ino, new_dind);
            let sb = &body.groups.sb;
            let ino_bytes =
                ino.to_bytes(RESIZE_INO, sb.has_metadata_csum().then(|| sb.csum_seed()));
            r.patch_inode(fs, RESIZE_INO, &ino_bytes)?;
            r.zero_block(new_dind);
            body.reloc = Some(r);
        } else {
            rebuilt_resize_inode(fs, &mut body, req, geo)?;
        }
    }

    // Lifetime writes. Offline without a move, replayed through
    // libext2fs's write cache (see `io_count`); otherwise (the kernel's
    // online resizer, or resize2fs moving blocks) the bytes of the batch.
    let added = if !req.online && body.reloc.is_none() {
        let resize = match (&body.dind, &body.resize_inode) {
            (Some((dind, _)), Some((off, _))) => {
                // No reserve left: no reserved block to write.
                let reserved = body.reserved.map(|r| r.primary_reserved());
                Some((off / bs, *dind, reserved.unwrap_or_default()))
            }
            _ => None,
        };
        io_count::resize2fs(&io_count::Grow {
            block_size: bs,
            flushed_desc_blocks: tables::primary_flush_desc_blocks(sb0),
            new_desc_blocks: desc,
            resize,
            groups: &body.groups,
        })
    } else {
        (head.data_bytes() + body.data_bytes() + tables::super_and_gdt_bytes(&body.groups.sb)) >> 10
    };
    let mut passes = Vec::new();
    if let Some(r) = &body.reloc {
        if !r.moves.is_empty() {
            passes.push((2, r.moves.len() as u64));
            passes.push((3, ng0));
        }
        let itables = r.itables.iter().filter(|(o, n)| o != n).count() as u64;
        if itables > 0 {
            passes.push((5, itables));
        }
    }
    Ok(finish(head, body, added, (blocks0, desc0, ng0), passes))
}

/// `adjust_fs_info`'s reserved blocks at `new_blocks`: the old share of
/// the blocks, in percent as a C double, applied to the new count.
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]
fn kept_reserve(sb0: &Superblock, new_blocks: u64) -> u64 {
    let percent = sb0.s_r_blocks_count as f64 * 100.0 / sb0.s_blocks_count as f64;
    (percent * new_blocks as f64 / 100.0) as u64
}

/// The finished plan of a resize from `old` (blocks, descriptor blocks,
/// groups) to what `body`'s superblock says, its `added` KiB counted
/// into the lifetime writes.
fn finish(
    head: WriteBatch,
    mut body: GrowBody,
    added: u64,
    old: (u64, u64, u64),
    passes: Vec<(u32, u64)>,
) -> GrowOutcome {
    let sb = &mut body.groups.sb;
    // libext2fs adds its I/O to the count only once one is kept (mke2fs
    // leaves it 0 for ext2 and ext3).
    if sb.s_kbytes_written != 0 {
        sb.s_kbytes_written = sb.s_kbytes_written.saturating_add(added);
    }
    let superblock = sb.clone();
    GrowOutcome::Grow(Box::new(GrowPlan {
        old_blocks: old.0,
        new_blocks: superblock.s_blocks_count,
        block_size: superblock.block_size(),
        old_desc_blocks: old.1,
        new_desc_blocks: superblock.desc_blocks(),
        old_groups: old.2,
        new_groups: superblock.group_count(),
        passes,
        superblock,
        batch: GrowWrites {
            head,
            body: Some(body),
        },
    }))
}

/// The resize inode rebuilt for `geo` as resize2fs's `fix_resize_inode`
/// and `ext2fs_create_resize_inode` leave it (its double indirect block
/// not yet moved), its double indirect block, and its byte offset.
fn resize_inode_fields<D: BlockDevice>(
    fs: &Ext4<D>,
    body: &GrowBody,
    req: &GrowRequest,
    geo: &ResizeGeometry,
) -> Result<(Inode, u64, u64), Error> {
    let sb = &body.groups.sb;
    let bs = geo.block_size;
    let old = fs.read_inode(RESIZE_INO)?;
    let dind = resize_inode::dind_of(&old);
    if dind == 0 || dind >= fs.superblock().s_blocks_count {
        return Err(Error::BadInode {
            ino: RESIZE_INO,
            why: format!("double indirect block {dind} is invalid"),
        });
    }
    let rb = resize_inode::build(geo);
    let now32 = (req.now & 0xFFFF_FFFF) as u32;
    let raw = fs.read_inode_bytes(RESIZE_INO)?;
    let ino = if geo.reserved_gdt_blocks == 0 {
        // No reserved blocks left: resize2fs only sets i_blocks to the
        // dind block (ext2fs_write_inode keeps the rest as it was).
        let mut ino = Inode::from_bytes(&raw);
        ino.i_blocks = bs / 512;
        ino
    } else {
        // resize2fs reads the 128-byte inode and writes it back as a
        // new large inode: the extra fields are rebuilt from zero.
        let mut fresh = vec![0u8; raw.len()];
        fresh[..128.min(raw.len())].copy_from_slice(&raw[..128.min(raw.len())]);
        let mut ino = Inode::from_bytes(&fresh);
        ino.i_blocks = rb.mapped_blocks * (bs / 512);
        ino.i_atime = now32;
        ino.i_mtime = now32;
        if raw.len() > 128 {
            ino.i_extra_isize = 32;
            ino.i_crtime = now32;
        }
        ino
    };
    let mut d0 = Vec::new();
    body.groups.bare(0..1, &mut d0);
    let itable0 = d0.first().map_or(0, |d| d.bg_inode_table);
    let off = itable0 * bs + u64::from(RESIZE_INO - 1) * u64::from(sb.inode_size());
    Ok((ino, dind, off))
}

/// Puts the resize inode rebuilt for `geo` into `body`: its double
/// indirect block's new contents (where the body's relocation put it, if
/// it moved), the reserved GDT blocks, and the inode. With a relocation,
/// the inode and the double indirect block go into its whole blocks (a
/// moved inode may share the inode's table block).
fn rebuilt_resize_inode<D: BlockDevice>(
    fs: &Ext4<D>,
    body: &mut GrowBody,
    req: &GrowRequest,
    geo: ResizeGeometry,
) -> Result<(), Error> {
    let (mut ino, dind, off) = resize_inode_fields(fs, body, req, &geo)?;
    let dind = match &body.reloc {
        Some(r) => {
            let d = r.map_block(dind);
            if d != dind {
                resize_inode::set_dind(&mut ino, d);
            }
            d
        }
        None => dind,
    };
    if dind >= body.groups.sb.s_blocks_count {
        return Err(Error::Grow(GrowError::BadDindBlock));
    }
    let sb = &body.groups.sb;
    let ino_bytes = ino.to_bytes(RESIZE_INO, sb.has_metadata_csum().then(|| sb.csum_seed()));
    let dind_bytes = resize_inode::build(&geo).dind;
    if geo.reserved_gdt_blocks > 0 {
        body.reserved = Some(geo);
    }
    match body.reloc.as_mut() {
        Some(r) => {
            r.zeros.remove(dind..dind + 1);
            r.blocks.insert(dind, dind_bytes);
            r.patch_inode(fs, RESIZE_INO, &ino_bytes)?;
        }
        None => {
            body.dind = Some((dind, dind_bytes));
            body.resize_inode = Some((off, ino_bytes));
        }
    }
    Ok(())
}

/// Writes a planned grow (one commit).
pub fn apply<D: BlockDevice + ?Sized>(dev: &mut D, batch: &dyn WritePlan) -> Result<(), Error> {
    dev.commit(batch)?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::blockdev::MemDevice;
    use crate::fs::ext4::geometry::{GeometryRequest, SizeType};
    use crate::fs::ext4::mkfs;

    /// A fresh 16 MiB filesystem (1 KiB blocks) in memory.
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

    fn req(size: Option<u64>) -> GrowRequest {
        GrowRequest {
            size,
            force: false,
            online: false,
            image_file: false,
            now: 1_700_000_100,
            ..Default::default()
        }
    }

    #[test]
    fn grows_in_memory_and_reopens() {
        let mut dev = fresh(16 << 20);
        let mut batch = WriteBatch::new();
        batch.new_len = Some(64 << 20);
        dev.commit(&batch).unwrap();
        let fs = Ext4::open(dev).unwrap();
        let before = crate::fs::ext4::statfs(&fs).unwrap();
        let GrowOutcome::Grow(plan) = plan(&fs, &req(None)).unwrap() else {
            panic!("nothing to do")
        };
        assert_eq!((plan.old_blocks, plan.new_blocks), (16384, 65536));
        assert_eq!((plan.old_groups, plan.new_groups), (2, 8));
        let mut dev = fs.into_device();
        apply(&mut dev, &plan.batch).unwrap();
        let fs = Ext4::open(dev).unwrap();
        let after = crate::fs::ext4::statfs(&fs).unwrap();
        assert!(after.blocks > before.blocks * 3);
        assert_eq!(after.files, 4 * before.files);
        // Growing again to the same size: nothing to do.
        assert!(matches!(
            plan_again(&fs),
            GrowOutcome::NothingToDo { blocks: 65536, .. }
        ));
    }

    fn plan_again(fs: &Ext4<MemDevice>) -> GrowOutcome {
        plan(fs, &req(None)).unwrap()
    }

    #[test]
    fn refuses_online_shrink_and_unclean() {
        let dev = fresh(16 << 20);
        let mut fs = Ext4::open(dev).unwrap();
        // Offline a smaller size is a shrink; online the kernel refuses.
        assert!(matches!(
            plan(&fs, &req(Some(8192))),
            Ok(GrowOutcome::Grow(p)) if p.new_blocks == 8192 && p.old_blocks > 8192
        ));
        let online = GrowRequest {
            online: true,
            ..req(Some(8192))
        };
        assert!(matches!(
            plan(&fs, &online),
            Err(Error::Grow(GrowError::Shrink { .. }))
        ));
        // Mounted since the last check.
        let mut sb = fs.superblock().clone();
        sb.s_mtime = sb.s_lastcheck + 1;
        let mut b = WriteBatch::new();
        b.write(1024, sb.to_bytes().to_vec());
        b.new_len = Some(32 << 20);
        fs.device_mut().commit(&b).unwrap();
        let fs = Ext4::open(fs.into_device()).unwrap();
        assert!(matches!(
            plan(&fs, &req(None)),
            Err(Error::Grow(GrowError::NeedsCheck(_)))
        ));
        let forced = GrowRequest {
            force: true,
            ..req(None)
        };
        assert!(matches!(plan(&fs, &forced), Ok(GrowOutcome::Grow(_))));
    }
}
