//! resize2fs 1.47.0 growing the classic descriptor table past its
//! reserved blocks, offline: the table grows in place in group 0 and every
//! backup group, so whatever sits in
//! `group start + 1 + old (descriptor + reserved) blocks .. + 1 + new
//! descriptor blocks` has to move first. This module plans that move, as
//! resize2fs's `blocks_to_move`, `block_mover`, `inode_scan_and_fix` and
//! `move_itables` do it:
//!
//! - Every block of the new table area in an old superblock group is
//!   claimed (`mark_fs_metablock`): a block, or the first block of an inode
//!   bitmap or table, found there sets that table's location to 0 (to be
//!   placed again); any other block in use that is no old metadata is to be
//!   moved. Claiming a group's area clears its `BLOCK_UNINIT`.
//! - The old groups whose tables were unset get new ones from the flex_bg
//!   allocator (`ext2fs_allocate_group_table`) run on a "reserve" map that
//!   holds only metadata (the new superblock and descriptor areas, every
//!   table, old and new): a new table may land on data, which is then to
//!   be moved too. Every group receiving a block loses `BLOCK_UNINIT`.
//! - The blocks to move, in ascending order, each go to the first block
//!   (from the first data block on) that is used neither by the old nor by
//!   the new filesystem (`get_new_block`); none left is resize2fs's
//!   "No space left on device". Their contents are copied.
//! - Every inode in use (the initialized part of each initialized inode
//!   table) has its block references rewritten: extent trees block by
//!   block as `ext2fs_block_iterate3` calls `ext2fs_extent_set_bmap`, so a
//!   moved run becomes one extent of all but its last block plus a
//!   one-block extent (a moved single block replaces its extent entry; a
//!   block next to a moved neighbour joins the neighbour's extent), and a
//!   moved tree block gets its index entry changed. A change that would
//!   split a full extent node (resize2fs would allocate a new tree block),
//!   an extended attribute block, or an indirectly mapped file that would
//!   have to move, is refused before anything is written.
//! - Relocated inode tables are copied whole (`move_itables`) and their old
//!   blocks freed where they are no new metadata; relocated inode bitmaps
//!   of initialized groups are copied.
//!
//! Everything is planned against the filesystem as it is; the results are
//! whole blocks to write and blocks to make read as zeros (a moved block or
//! inode table block that is all zeros becomes a hole, never written
//! zeros). Only the non-zero blocks that move are held in memory, so the
//! plan grows with the data that has to move, not with the volume.

use super::bitmap::BlockSet;
use super::error::{Error, GrowError};
use super::extent::{EXTENT_MAGIC, read_header};
use super::fs::Ext4;
use super::group_desc::{BG_INODE_UNINIT, GroupDesc};
use super::inode::{EXT4_EXTENTS_FL, Inode, JOURNAL_INO, RESIZE_INO, inode_seed};
use super::layout::{Allocator, GroupTables, TableList};
use super::superblock::Superblock;
use crate::blockdev::BlockDevice;
use crate::bytes::{read_u16le, read_u32le, write_u16le, write_u32le};
use std::collections::{BTreeMap, HashSet};

/// What the old filesystem looked like and what the grow has decided so
/// far (`adjust_fs_info`): the new superblock, the used-block map of the
/// new filesystem (old blocks, new superblock and descriptor areas, new
/// groups' tables) and the old one.
pub(super) struct Input<'a> {
    /// The new superblock (group count, descriptor blocks, no reserve).
    pub sb: &'a Superblock,
    /// Used blocks of the old filesystem (uninitialized groups computed).
    pub old_used: &'a BlockSet,
    /// Used blocks of the new filesystem; updated.
    pub used: &'a mut BlockSet,
    /// The old groups' descriptors; their table locations are updated.
    pub old: &'a mut [GroupDesc],
    /// The new groups' tables.
    pub new_tables: &'a TableList,
    /// Bit g set: group g gets a block allocated or freed, so it loses
    /// `BLOCK_UNINIT`; updated.
    pub touched: &'a mut Vec<u64>,
}

/// The planned relocation.
#[derive(Debug, Clone, Default)]
pub(super) struct Relocation {
    /// Final contents of whole blocks: moved data, copied inode tables and
    /// inode bitmaps, rewritten inodes and extent tree blocks.
    pub blocks: BTreeMap<u64, Vec<u8>>,
    /// Blocks that must read as zeros afterwards (holes where possible).
    pub zeros: BlockSet,
    /// Moved blocks, (old, new), sorted by old.
    pub(super) moves: Vec<(u64, u64)>,
    /// Inode tables: (old, new) first block of every old group.
    pub(super) itables: Vec<(u64, u64)>,
    /// The journal inode's new `i_block`, when it changed.
    pub journal_blocks: Option<[u8; 60]>,
}

/// The kind of a table found at a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    BlockBitmap,
    InodeBitmap,
    InodeTable,
}

/// Sets bit `g` of a group bitmap kept as 64-bit words (out of range: no-op).
pub(super) fn set_bit(bits: &mut [u64], g: u64) {
    if let Some(w) = bits.get_mut((g / 64) as usize) {
        *w |= 1 << (g % 64);
    }
}

fn unsupported(why: String) -> Error {
    Error::Unsupported(why)
}

impl Relocation {
    /// Where block `b` of the old filesystem is now.
    pub fn map_block(&self, b: u64) -> u64 {
        match self.moves.binary_search_by_key(&b, |m| m.0) {
            Ok(i) => self.moves[i].1,
            Err(_) => b,
        }
    }

    pub(super) fn moved(&self, b: u64) -> Option<u64> {
        self.moves
            .binary_search_by_key(&b, |m| m.0)
            .ok()
            .map(|i| self.moves[i].1)
    }

    /// True when an inode table moved (resize2fs then flushes the new
    /// filesystem's bitmaps before its final recount).
    pub fn itables_moved(&self) -> bool {
        self.itables.iter().any(|(o, n)| o != n)
    }

    /// Bytes resize2fs writes for this (for `s_kbytes_written`): every
    /// moved block (its block mover copies zero blocks too, where ebsim
    /// leaves a hole) and every other block rewritten.
    pub fn bytes(&self, bs: u64) -> u64 {
        let moved_zero = self
            .moves
            .iter()
            .filter(|&&(_, dst)| !self.blocks.contains_key(&dst))
            .count() as u64;
        (self.blocks.len() as u64 + moved_zero) * bs
    }

    /// `block_mover`: each block of `to_move`, in ascending order, to the
    /// block `mover` gives next, its contents copied (a zero block becomes
    /// a hole).
    pub(super) fn move_blocks<D: BlockDevice>(
        &mut self,
        fs: &Ext4<D>,
        mover: &mut Mover<'_>,
        to_move: &BlockSet,
    ) -> Result<(), Error> {
        for run in to_move.runs() {
            for b in run {
                let dst = mover.next()?;
                self.moves.push((b, dst));
            }
        }
        for &(src, dst) in &self.moves {
            let content = fs.read_block(src)?;
            if content.iter().all(|&x| x == 0) {
                self.zeros.insert_block(dst);
            } else {
                self.blocks.insert(dst, content);
            }
        }
        Ok(())
    }

    /// Makes block `b` read as zeros (dropping any content planned there).
    pub fn zero_block(&mut self, b: u64) {
        self.blocks.remove(&b);
        self.zeros.insert_block(b);
    }

    /// Puts inode `ino`'s new bytes into its inode table block at the
    /// table's new place.
    pub fn patch_inode<D: BlockDevice>(
        &mut self,
        fs: &Ext4<D>,
        ino: u32,
        bytes: &[u8],
    ) -> Result<(), Error> {
        let sb = fs.superblock();
        let bs = u64::from(sb.block_size());
        let ipg = u64::from(sb.s_inodes_per_group);
        let isz = u64::from(sb.inode_size());
        let idx = u64::from(ino) - 1;
        let (g, k) = (idx / ipg, idx % ipg);
        let (old, new) = self
            .itables
            .get(g as usize)
            .copied()
            .ok_or(Error::BadInode {
                ino,
                why: "beyond the inode tables".into(),
            })?;
        let blk = k * isz / bs;
        let off = (k * isz % bs) as usize;
        let at = new + blk;
        if let std::collections::btree_map::Entry::Vacant(v) = self.blocks.entry(at) {
            let content = if old == new {
                fs.read_block(old + blk)?
            } else {
                // A moved table's zero block (nothing planned there).
                vec![0u8; bs as usize]
            };
            v.insert(content);
        }
        if let Some(b) = self.blocks.get_mut(&at) {
            if let Some(dst) = b.get_mut(off..off + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
        }
        Ok(())
    }
}

/// resize2fs's block allocator while it moves things (`get_new_block`):
/// the first block, from where it last stopped, that neither filesystem
/// uses.
pub(super) struct Mover<'a> {
    pub used: &'a mut BlockSet,
    pub touched: &'a mut Vec<u64>,
    pub cursor: u64,
    pub end: u64,
    pub fdb: u64,
    pub bpg: u64,
}

impl Mover<'_> {
    pub(super) fn next(&mut self) -> Result<u64, Error> {
        let b = self
            .used
            .first_free(self.cursor, self.end)
            .ok_or(Error::Grow(GrowError::NoSpace))?;
        self.used.insert_block(b);
        set_bit(self.touched, (b - self.fdb) / self.bpg);
        self.cursor = b;
        Ok(b)
    }
}

/// `mark_table_blocks`: every group's superblock and descriptor area,
/// bitmaps and inode table.
pub(super) fn mark_table_blocks<D: BlockDevice>(fs: &Ext4<D>) -> BlockSet {
    let sb = fs.superblock();
    let fdb = u64::from(sb.s_first_data_block);
    let bpg = u64::from(sb.s_blocks_per_group);
    let itb = sb.inode_table_blocks();
    let mut meta = BlockSet::new();
    for (g, d) in (0u64..).zip(fs.descriptors()) {
        let first = fdb + g * bpg;
        meta.insert(first..first + sb.base_meta_blocks(g));
        meta.insert_block(d.bg_block_bitmap);
        meta.insert_block(d.bg_inode_bitmap);
        meta.insert(d.bg_inode_table..d.bg_inode_table + itb);
    }
    meta
}

/// Plans the relocation. `fs` is the filesystem before the grow.
pub(super) fn plan<D: BlockDevice>(fs: &Ext4<D>, inp: Input<'_>) -> Result<Relocation, Error> {
    let sb0 = fs.superblock();
    let sb = inp.sb;
    let fdb = u64::from(sb.s_first_data_block);
    let bpg = u64::from(sb.s_blocks_per_group);
    let itb = sb.inode_table_blocks();
    let blocks0 = sb0.s_blocks_count;
    let new_blocks = sb.s_blocks_count;
    let ng0 = fs.descriptors().len() as u64;
    let ng = sb.group_count();
    let flex = 1u64 << sb.s_log_groups_per_flex;
    let group_of = |b: u64| (b - fdb) / bpg;
    let first_of = |g: u64| fdb + g * bpg;
    let old_locs: Vec<GroupTables> = fs
        .descriptors()
        .iter()
        .map(|d| GroupTables {
            block_bitmap: d.bg_block_bitmap,
            inode_bitmap: d.bg_inode_bitmap,
            inode_table: d.bg_inode_table,
        })
        .collect();

    // The old filesystem's metadata (`mark_table_blocks` on the old one).
    let old_meta = mark_table_blocks(fs);
    // The reserve map: the new filesystem's metadata where the old
    // groups' tables may be placed again (their flex groups), the old
    // tables included.
    let flex_end = (((ng0 - 1) | (flex - 1)) + 1).min(ng);
    let mut reserve = BlockSet::new();
    for g in 0..flex_end {
        let first = first_of(g);
        reserve.insert(first..first + sb.base_meta_blocks(g));
        let t = if g < ng0 {
            old_locs.get(g as usize).copied()
        } else {
            inp.new_tables.get((g - ng0) as usize)
        };
        if let Some(t) = t {
            reserve.insert_block(t.block_bitmap);
            reserve.insert_block(t.inode_bitmap);
            reserve.insert(t.inode_table..t.inode_table + itb);
        }
    }

    // Tables by first block, for the claim below.
    let mut at: BTreeMap<u64, (u64, Kind)> = BTreeMap::new();
    for (g, t) in old_locs.iter().enumerate() {
        at.insert(t.block_bitmap, (g as u64, Kind::BlockBitmap));
        at.insert(t.inode_bitmap, (g as u64, Kind::InodeBitmap));
        at.insert(t.inode_table, (g as u64, Kind::InodeTable));
    }
    let mut locs = old_locs.clone();
    let mut unset_itable = false;
    let mut to_move = BlockSet::new();
    let new_area = 1 + sb.desc_blocks() + u64::from(sb.s_reserved_gdt_blocks);
    for g in 0..ng0 {
        if !sb.group_has_super(g) {
            continue;
        }
        let first = first_of(g);
        let area = first..(first + new_area).min(new_blocks);
        reserve.insert(area.clone());
        inp.used.insert(area.clone());
        set_bit(inp.touched, g);
        for b in area {
            // A table at or over this block?
            let hit = at.range(..=b).next_back().and_then(|(&s, &(tg, k))| {
                let len = if k == Kind::InodeTable { itb } else { 1 };
                (b < s + len).then_some((s, tg, k))
            });
            if let Some((s, tg, k)) = hit {
                at.remove(&s);
                let t = &mut locs[tg as usize];
                match k {
                    Kind::BlockBitmap => t.block_bitmap = 0,
                    Kind::InodeBitmap => t.inode_bitmap = 0,
                    Kind::InodeTable => {
                        t.inode_table = 0;
                        unset_itable = true;
                    }
                }
                continue;
            }
            // libext2fs's range test on an unset (0) inode table covers
            // blocks 0 .. inode table blocks: such a block is left alone.
            if unset_itable && b < itb {
                continue;
            }
            if b < blocks0 && inp.old_used.contains(b) && !old_meta.contains(b) {
                to_move.insert_block(b);
            }
        }
    }

    // Place the unset tables again, in group order, on the reserve map.
    let mut alloc = Allocator {
        used: reserve,
        blocks: new_blocks,
        fdb,
        bpg,
        groups: ng,
        flex,
        itb,
    };
    let claim = |b: u64, used: &mut BlockSet, to_move: &mut BlockSet, touched: &mut [u64]| {
        used.insert_block(b);
        set_bit(touched, group_of(b));
        if b < blocks0 && inp.old_used.contains(b) && !old_meta.contains(b) {
            to_move.insert_block(b);
        }
    };
    for g in 0..ng0 as usize {
        let cur = locs[g];
        if cur.block_bitmap != 0 && cur.inode_bitmap != 0 && cur.inode_table != 0 {
            continue;
        }
        let prev = g.checked_sub(1).map(|p| locs[p]);
        let t = alloc
            .allocate_missing(g as u64, cur, prev)
            .map_err(|_| Error::Grow(GrowError::NoSpace))?;
        let old = old_locs[g];
        if t.block_bitmap != old.block_bitmap {
            claim(t.block_bitmap, inp.used, &mut to_move, inp.touched);
        }
        if t.inode_bitmap != old.inode_bitmap {
            claim(t.inode_bitmap, inp.used, &mut to_move, inp.touched);
        }
        if t.inode_table != old.inode_table {
            for b in t.inode_table..t.inode_table + itb {
                claim(b, inp.used, &mut to_move, inp.touched);
            }
        }
        locs[g] = t;
        let d = &mut inp.old[g];
        d.bg_block_bitmap = t.block_bitmap;
        d.bg_inode_bitmap = t.inode_bitmap;
        d.bg_inode_table = t.inode_table;
    }

    // block_mover: each block to move, in order, to the first block free
    // in both filesystems.
    let mut r = Relocation {
        itables: old_locs
            .iter()
            .zip(&locs)
            .map(|(o, n)| (o.inode_table, n.inode_table))
            .collect(),
        ..Relocation::default()
    };
    let mut mover = Mover {
        used: &mut *inp.used,
        touched: &mut *inp.touched,
        cursor: fdb,
        end: new_blocks,
        fdb,
        bpg,
    };
    r.move_blocks(fs, &mut mover, &to_move)?;

    // inode_scan_and_fix: rewrite the references to moved blocks.
    let mut patches: Vec<(u32, Vec<u8>)> = Vec::new();
    if !r.moves.is_empty() {
        scan_inodes(fs, &mut r, &mut mover, &mut patches)?;
    }

    // move_itables: copy each relocated inode table; free its old blocks
    // that are no new metadata.
    let mut new_meta: BTreeMap<u64, u64> = BTreeMap::new();
    for t in &locs {
        new_meta.insert(t.block_bitmap, 1);
        new_meta.insert(t.inode_bitmap, 1);
        new_meta.insert(t.inode_table, itb);
    }
    let is_new_meta = |b: u64| {
        let g = group_of(b);
        b < first_of(g) + sb.base_meta_blocks(g)
            || new_meta
                .range(..=b)
                .next_back()
                .is_some_and(|(&s, &len)| b < s + len)
    };
    for (g, (o, n)) in old_locs.iter().zip(&locs).enumerate() {
        if o.inode_table != n.inode_table {
            for j in 0..itb {
                let content = fs.read_block(o.inode_table + j)?;
                if content.iter().all(|&x| x == 0) {
                    r.zeros.insert_block(n.inode_table + j);
                } else {
                    r.blocks.insert(n.inode_table + j, content);
                }
            }
            let mut b = o.inode_table;
            while b < o.inode_table + itb {
                if is_new_meta(b) {
                    b += 1;
                    continue;
                }
                let mut e = b + 1;
                while e < o.inode_table + itb && !is_new_meta(e) {
                    e += 1;
                }
                inp.used.remove(b..e);
                b = e;
            }
            // Every old block was freed (and the metadata marked again).
            for x in o.inode_table..o.inode_table + itb {
                set_bit(inp.touched, group_of(x));
            }
        }
        let d = &fs.descriptors()[g];
        if o.inode_bitmap != n.inode_bitmap && !d.has_flag(BG_INODE_UNINIT) {
            let content = fs.read_block(o.inode_bitmap)?;
            r.blocks.insert(n.inode_bitmap, content);
        }
    }
    for (ino, bytes) in patches {
        r.patch_inode(fs, ino, &bytes)?;
    }
    Ok(r)
}

/// Rewrites every in-use inode's references to moved blocks (the resize
/// inode is left to the caller, which rebuilds it).
fn scan_inodes<D: BlockDevice>(
    fs: &Ext4<D>,
    r: &mut Relocation,
    mover: &mut Mover<'_>,
    patches: &mut Vec<(u32, Vec<u8>)>,
) -> Result<(), Error> {
    let sb = fs.superblock();
    let seed = sb.has_metadata_csum().then(|| sb.csum_seed());
    each_inode_in_use(fs, &mut |ino, raw| {
        if ino == RESIZE_INO {
            return Ok(());
        }
        if let Some(new) = fix_inode(fs, r, mover, ino, ino, raw, seed)? {
            if ino == JOURNAL_INO {
                let mut ib = [0u8; 60];
                ib.copy_from_slice(&new[0x28..0x64]);
                r.journal_blocks = Some(ib);
            }
            patches.push((ino, new));
        }
        Ok(())
    })
}

/// A callback given an inode's number and bytes.
pub(super) type InodeVisitor<'a> = dyn FnMut(u32, &[u8]) -> Result<(), Error> + 'a;

/// Calls `f` with the number and bytes of every inode in use (links count
/// not 0), in inode order, as libext2fs's inode scan finds them: with
/// group checksums, the initialized part of each initialized inode table;
/// without, every inode.
pub(super) fn each_inode_in_use<D: BlockDevice>(
    fs: &Ext4<D>,
    f: &mut InodeVisitor<'_>,
) -> Result<(), Error> {
    let sb = fs.superblock();
    let bs = u64::from(sb.block_size());
    let ipg = u64::from(sb.s_inodes_per_group);
    let isz = u64::from(sb.inode_size());
    let per_block = bs / isz;
    let lazy = super::group_desc::has_group_csum(sb);
    for (g, d) in fs.descriptors().iter().enumerate() {
        if lazy && d.has_flag(BG_INODE_UNINIT) {
            continue;
        }
        let n = if lazy {
            ipg.saturating_sub(u64::from(d.bg_itable_unused))
        } else {
            ipg
        };
        let mut k = 0;
        while k < n {
            let blk = fs.read_block(d.bg_inode_table + k / per_block)?;
            let end = (k - k % per_block + per_block).min(n);
            while k < end {
                let off = ((k % per_block) * isz) as usize;
                let raw = &blk[off..off + isz as usize];
                let ino = u32::try_from(g as u64 * ipg + k + 1).unwrap_or(u32::MAX);
                k += 1;
                if read_u16le(raw, 0x1A) != 0 {
                    f(ino, raw)?;
                }
            }
        }
    }
    Ok(())
}

const S_IFMT: u16 = 0o170000;
const S_IFLNK: u16 = 0o120000;
const S_IFREG: u16 = 0o100000;
const S_IFDIR: u16 = 0o040000;
const EXT4_INLINE_DATA_FL: u32 = 0x1000_0000;

/// One inode: its new bytes when a reference changed, or when it is to be
/// written as inode `new_ino` instead of `ino` (a shrink moving it out of
/// a removed group: its checksum, and with metadata_csum every extent tree
/// block's, then belong to the new number, as `ext2fs_fix_extents_checksums`
/// rewrites them).
pub(super) fn fix_inode<D: BlockDevice>(
    fs: &Ext4<D>,
    r: &mut Relocation,
    mover: &mut Mover<'_>,
    ino: u32,
    new_ino: u32,
    raw: &[u8],
    seed: Option<u32>,
) -> Result<Option<Vec<u8>>, Error> {
    let renumbered = ino != new_ino;
    let sb = fs.superblock();
    // migrate_ea_block: a moved extended attribute block is referred to
    // at its new place, its checksum (which covers its block number)
    // recomputed there.
    let mut raw = std::borrow::Cow::Borrowed(raw);
    let acl = u64::from(read_u32le(&raw, 0x68)) | (u64::from(read_u16le(&raw, 0x76)) << 32);
    let mut acl_moved = false;
    if let Some(new_acl) = (acl != 0).then(|| r.moved(acl)).flatten() {
        let b = raw.to_mut();
        write_u32le(b, 0x68, (new_acl & 0xFFFF_FFFF) as u32);
        write_u16le(b, 0x76, (new_acl >> 32) as u16);
        if sb.has_metadata_csum() {
            let mut blk = match r.blocks.get(&new_acl) {
                Some(c) => c.clone(),
                None => fs.read_block(acl)?,
            };
            write_u32le(&mut blk, 0x10, 0);
            let c = super::checksum::crc32c_raw(sb.csum_seed(), &new_acl.to_le_bytes());
            let c = super::checksum::crc32c_raw(c, &blk);
            write_u32le(&mut blk, 0x10, c);
            r.zeros.remove(new_acl..new_acl + 1);
            r.blocks.insert(new_acl, blk);
        }
        acl_moved = true;
    }
    let raw: &[u8] = &raw;
    let as_is =
        || (renumbered || acl_moved).then(|| Inode::from_bytes(raw).to_bytes(new_ino, seed));
    let mode = read_u16le(raw, 0);
    let kind = mode & S_IFMT;
    let flags = read_u32le(raw, 0x20);
    if !matches!(kind, S_IFREG | S_IFDIR | S_IFLNK) || flags & EXT4_INLINE_DATA_FL != 0 {
        return Ok(as_is());
    }
    if flags & EXT4_EXTENTS_FL == 0 {
        let size = u64::from(read_u32le(raw, 0x04));
        if kind == S_IFLNK && size < 60 {
            return Ok(as_is());
        }
        return match remap_block_map(fs, r, raw, ino)? {
            Some(i_block) => {
                let mut ino_s = Inode::from_bytes(raw);
                ino_s.i_block = i_block;
                Ok(Some(ino_s.to_bytes(new_ino, seed)))
            }
            None => Ok(as_is()),
        };
    }
    let generation = read_u32le(raw, 0x64);
    let tree_seed = seed.map(|s| inode_seed(s, new_ino, generation));
    let mut tree = Tree::read(fs, ino, raw)?;
    if !tree.remap(r, mover, ino)? && !renumbered {
        return Ok(as_is());
    }
    let bs = u64::from(sb.block_size());
    let mut i_block = [0u8; 60];
    for node in &mut tree.nodes {
        if node.loc.is_none() {
            node.render();
            i_block.copy_from_slice(&node.buf[..60]);
            continue;
        }
        if !(node.changed || renumbered && tree_seed.is_some()) {
            continue;
        }
        node.render();
        if let Some(s) = tree_seed {
            let tail = (12 + 12 * ((bs - 12) / 12)) as usize;
            if let Some(head) = node.buf.get(..tail) {
                let c = super::checksum::crc32c_raw(s, head);
                write_u32le(&mut node.buf, tail, c);
            }
        }
        if let Some(b) = node.loc {
            r.zeros.remove(b..b + 1);
            r.blocks.insert(b, node.buf.clone());
        }
    }
    let mut ino_s = Inode::from_bytes(raw);
    ino_s.i_block = i_block;
    // ext2fs_iblk_add_blocks: one block (in 512-byte units) per tree block
    // a split added.
    ino_s.i_blocks += tree.added * (bs / 512);
    Ok(Some(ino_s.to_bytes(new_ino, seed)))
}

/// Every mapped (logical, physical) block of inode `ino`'s data, in
/// logical order, from its extent tree or its (indirect) block map as it
/// is on disk, and the number of tree or indirect blocks; an inode whose
/// data lives in the inode (inline data, a fast symlink) has none.
pub(super) fn mapped_blocks<D: BlockDevice>(
    fs: &Ext4<D>,
    ino: u32,
    raw: &[u8],
) -> Result<(Vec<(u64, u64)>, u64), Error> {
    let flags = read_u32le(raw, 0x20);
    if flags & EXT4_INLINE_DATA_FL != 0 {
        return Ok((Vec::new(), 0));
    }
    let mut out = Vec::new();
    if flags & EXT4_EXTENTS_FL != 0 {
        let tree = Tree::read(fs, ino, raw)?;
        for &l in &tree.leaves {
            for e in &tree.nodes[l].entries {
                out.extend((0..e.len).map(|i| (e.lblk + i, e.pblk + i)));
            }
        }
        let meta = tree.nodes.iter().filter(|n| n.loc.is_some()).count() as u64;
        return Ok((out, meta));
    }
    let bs = u64::from(fs.superblock().block_size());
    let blocks = fs.superblock().s_blocks_count;
    let per = bs / 4;
    let bad = |why: String| Error::BadInode { ino, why };
    // (block, level, first logical block it maps)
    let mut stack: Vec<(u64, u32, u64)> = Vec::new();
    let mut lblk_base = 0u64;
    for i in 0..15usize {
        let b = u64::from(read_u32le(raw, 0x28 + i * 4));
        let level = i.saturating_sub(11) as u32;
        let span = per.pow(level);
        if b != 0 {
            stack.push((b, level, lblk_base));
        }
        lblk_base += if i < 12 { 1 } else { span };
    }
    stack.reverse();
    let mut seen = 0u64;
    let mut meta = 0u64;
    while let Some((b, level, lblk)) = stack.pop() {
        if b >= blocks {
            return Err(bad(format!("block {b} is beyond the filesystem")));
        }
        if level == 0 {
            out.push((lblk, b));
            continue;
        }
        seen += 1;
        meta += 1;
        if seen > 1 << 20 {
            return Err(bad("too many indirect blocks".into()));
        }
        let blk = fs.read_block(b)?;
        let span = per.pow(level - 1);
        for i in (0..per).rev() {
            let c = u64::from(read_u32le(&blk, (i * 4) as usize));
            if c != 0 {
                stack.push((c, level - 1, lblk + i * span));
            }
        }
    }
    Ok((out, meta))
}

/// `ext2fs_block_iterate3` rewriting a block-mapped inode's references to
/// moved blocks: every pointer, in the inode and in its indirect blocks,
/// goes to where its block moved; an indirect block whose pointers change
/// is written at its (possibly new) place. The inode's new block map, or
/// None when nothing it refers to moved.
fn remap_block_map<D: BlockDevice>(
    fs: &Ext4<D>,
    r: &mut Relocation,
    raw: &[u8],
    ino: u32,
) -> Result<Option<[u8; 60]>, Error> {
    struct Walk<'a, D> {
        fs: &'a Ext4<D>,
        bs: u64,
        blocks: u64,
        seen: u64,
        ino: u32,
        writes: Vec<(u64, Vec<u8>)>,
    }
    impl<D: BlockDevice> Walk<'_, D> {
        /// Remaps the tree under indirect block `b` (at `level` > 0) whose
        /// contents are read at its old place; writes it at `at` when a
        /// pointer in it changed.
        fn walk(&mut self, r: &Relocation, b: u64, at: u64, level: u32) -> Result<(), Error> {
            self.seen += 1;
            if self.seen > 1 << 20 {
                return Err(Error::BadInode {
                    ino: self.ino,
                    why: "too many indirect blocks".into(),
                });
            }
            let mut blk = match r.blocks.get(&at) {
                Some(c) if at != b => c.clone(),
                _ => self.fs.read_block(b)?,
            };
            let mut changed = false;
            for i in 0..(self.bs / 4) as usize {
                let c = u64::from(read_u32le(&blk, i * 4));
                if c == 0 {
                    continue;
                }
                if c >= self.blocks {
                    return Err(Error::BadInode {
                        ino: self.ino,
                        why: format!("block {c} is beyond the filesystem"),
                    });
                }
                let n = r.map_block(c);
                if n != c {
                    write_u32le(&mut blk, i * 4, n as u32);
                    changed = true;
                }
                if level > 1 {
                    self.walk(r, c, n, level - 1)?;
                }
            }
            if changed {
                self.writes.push((at, blk));
            }
            Ok(())
        }
    }
    let mut w = Walk {
        fs,
        bs: u64::from(fs.superblock().block_size()),
        blocks: fs.superblock().s_blocks_count,
        seen: 0,
        ino,
        writes: Vec::new(),
    };
    let mut i_block = [0u8; 60];
    i_block.copy_from_slice(&raw[0x28..0x64]);
    let mut changed = false;
    for i in 0..15usize {
        let b = u64::from(read_u32le(&i_block, i * 4));
        if b == 0 {
            continue;
        }
        if b >= w.blocks {
            return Err(Error::BadInode {
                ino,
                why: format!("block {b} is beyond the filesystem"),
            });
        }
        let n = r.map_block(b);
        if n != b {
            write_u32le(&mut i_block, i * 4, n as u32);
            changed = true;
        }
        let level = i.saturating_sub(11) as u32;
        if level > 0 {
            w.walk(r, b, n, level)?;
        }
    }
    let writes = std::mem::take(&mut w.writes);
    changed |= !writes.is_empty();
    for (at, blk) in writes {
        r.zeros.remove(at..at + 1);
        r.blocks.insert(at, blk);
    }
    Ok(changed.then_some(i_block))
}

/// One extent (`ext2fs_extent` fields) or index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ext {
    lblk: u64,
    len: u64,
    pblk: u64,
    uninit: bool,
}

#[derive(Debug, Clone)]
struct Node {
    /// Tree block (None: the inode's root).
    loc: Option<u64>,
    /// Its bytes (60 for the root, a block otherwise); entries are
    /// rendered over them, the rest kept as it was.
    buf: Vec<u8>,
    depth: u16,
    max: u16,
    /// Leaf extents, or index entries (lblk, pblk = child, len unused).
    entries: Vec<Ext>,
    /// Child node ids of an index node.
    children: Vec<usize>,
    parent: Option<(usize, usize)>,
    changed: bool,
}

impl Node {
    /// Writes the header's entry count and depth and the entries over
    /// `buf`, keeping everything else.
    fn render(&mut self) {
        let b = &mut self.buf;
        write_u16le(b, 2, self.entries.len() as u16);
        write_u16le(b, 6, self.depth);
        for (i, e) in self.entries.iter().enumerate() {
            let o = 12 + 12 * i;
            if o + 12 > b.len() {
                break;
            }
            write_u32le(b, o, (e.lblk & 0xFFFF_FFFF) as u32);
            if self.depth == 0 {
                let len = if e.uninit { e.len + 32768 } else { e.len };
                write_u16le(b, o + 4, len as u16);
                write_u16le(b, o + 6, ((e.pblk >> 32) & 0xFFFF) as u16);
                write_u32le(b, o + 8, (e.pblk & 0xFFFF_FFFF) as u32);
            } else {
                write_u32le(b, o + 4, (e.pblk & 0xFFFF_FFFF) as u32);
                write_u16le(b, o + 8, ((e.pblk >> 32) & 0xFFFF) as u16);
                write_u16le(b, o + 10, 0);
            }
        }
    }
}

/// An extent tree being remapped.
struct Tree {
    nodes: Vec<Node>,
    /// Leaf node ids in logical order.
    leaves: Vec<usize>,
    /// Tree blocks added by splits.
    added: u64,
    bs: u64,
}

const EXT_INIT_MAX_LEN: u64 = 32768;
const EXT_UNINIT_MAX_LEN: u64 = 32767;

fn split_refused(ino: u32) -> Error {
    unsupported(format!(
        "moving blocks of inode {ino} would split a full extent tree block; ebsim's resize2fs splits only the tree's root in the inode"
    ))
}

impl Tree {
    fn read<D: BlockDevice>(fs: &Ext4<D>, ino: u32, raw: &[u8]) -> Result<Tree, Error> {
        let bad = |why: String| Error::BadInode { ino, why };
        let bs = u64::from(fs.superblock().block_size());
        let blocks = fs.superblock().s_blocks_count;
        let mut t = Tree {
            nodes: Vec::new(),
            leaves: Vec::new(),
            added: 0,
            bs,
        };
        let mut seen = HashSet::new();
        // A node to read: its bytes, tree block, parent entry and the
        // depth the parent says it has.
        type Pending = (Vec<u8>, Option<u64>, Option<(usize, usize)>, Option<u16>);
        let mut stack: Vec<Pending> = vec![(raw[0x28..0x64].to_vec(), None, None, None)];
        while let Some((b, loc, parent, want_depth)) = stack.pop() {
            let (entries, max, depth) =
                read_header(&b).ok_or_else(|| bad("extent header without its magic".into()))?;
            let cap = (b.len() as u64 - 12) / 12;
            if depth > 5
                || u64::from(max) > cap
                || entries > max
                || want_depth.is_some_and(|d| d != depth)
            {
                return Err(bad(format!("extent node at {loc:?} is malformed")));
            }
            let id = t.nodes.len();
            let mut node = Node {
                loc,
                buf: Vec::new(),
                depth,
                max,
                entries: Vec::with_capacity(usize::from(entries)),
                children: Vec::new(),
                parent,
                changed: false,
            };
            for i in 0..usize::from(entries) {
                let o = 12 + 12 * i;
                let lblk = u64::from(read_u32le(&b, o));
                if depth == 0 {
                    let raw_len = u64::from(read_u16le(&b, o + 4));
                    let pblk =
                        (u64::from(read_u16le(&b, o + 6)) << 32) | u64::from(read_u32le(&b, o + 8));
                    let (len, uninit) = if raw_len > 32768 {
                        (raw_len - 32768, true)
                    } else {
                        (raw_len, false)
                    };
                    if len == 0 || pblk + len > blocks {
                        return Err(bad(format!("extent {lblk}+{len} at {pblk} is invalid")));
                    }
                    node.entries.push(Ext {
                        lblk,
                        len,
                        pblk,
                        uninit,
                    });
                } else {
                    let pblk =
                        u64::from(read_u32le(&b, o + 4)) | (u64::from(read_u16le(&b, o + 8)) << 32);
                    if pblk == 0 || pblk >= blocks || !seen.insert(pblk) {
                        return Err(bad(format!("extent index to block {pblk} is invalid")));
                    }
                    node.entries.push(Ext {
                        lblk,
                        len: 0,
                        pblk,
                        uninit: false,
                    });
                }
            }
            node.buf = b;
            t.nodes.push(node);
            if depth == 0 {
                t.leaves.push(id);
            } else {
                // Children pushed in reverse so they pop in order.
                let kids: Vec<(usize, u64)> = t.nodes[id]
                    .entries
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (i, e.pblk))
                    .collect();
                for (i, pblk) in kids.into_iter().rev() {
                    let child = fs.read_block(pblk)?;
                    if child.len() as u64 != bs || read_u16le(&child, 0) != EXTENT_MAGIC {
                        return Err(bad(format!("extent tree block {pblk} is invalid")));
                    }
                    stack.push((child, Some(pblk), Some((id, i)), Some(depth - 1)));
                }
            }
        }
        // Children ids: nodes were numbered in DFS pre-order.
        for id in 0..t.nodes.len() {
            if let Some((p, _)) = t.nodes[id].parent {
                t.nodes[p].children.push(id);
            }
        }
        Ok(t)
    }

    /// Applies the moves as `ext2fs_block_iterate3` does: index entries
    /// first, then leaf blocks one by one through `set_bmap`. True when
    /// anything changed.
    fn remap(&mut self, r: &Relocation, mover: &mut Mover<'_>, ino: u32) -> Result<bool, Error> {
        let mut changed = false;
        for id in 0..self.nodes.len() {
            let kids = self.nodes[id].children.clone();
            for (i, child) in kids.into_iter().enumerate() {
                let old = self.nodes[id].entries[i].pblk;
                if let Some(n) = r.moved(old) {
                    self.nodes[id].entries[i].pblk = n;
                    self.nodes[id].changed = true;
                    self.nodes[child].loc = Some(n);
                    changed = true;
                }
            }
        }
        // The original extents, in order: iteration walks these.
        let original: Vec<Ext> = self
            .leaves
            .iter()
            .flat_map(|&l| self.nodes[l].entries.clone())
            .collect();
        for e in original {
            // Only the moved blocks of the extent, in order.
            let from = r.moves.partition_point(|m| m.0 < e.pblk);
            let hits: Vec<(u64, u64)> = r.moves[from..]
                .iter()
                .take_while(|m| m.0 < e.pblk + e.len)
                .copied()
                .collect();
            for (old, n) in hits {
                self.set_bmap(e.lblk + (old - e.pblk), n, e.uninit, mover, ino)?;
                changed = true;
            }
        }
        Ok(changed)
    }

    /// (leaf index in `leaves`, entry index) of the extent mapping `lblk`.
    fn find(&self, lblk: u64) -> Option<(usize, usize)> {
        for (li, &l) in self.leaves.iter().enumerate() {
            for (i, e) in self.nodes[l].entries.iter().enumerate() {
                if lblk >= e.lblk && lblk < e.lblk + e.len {
                    return Some((li, i));
                }
            }
        }
        None
    }

    fn prev_of(&self, li: usize, i: usize) -> Option<(usize, usize)> {
        if i > 0 {
            return Some((li, i - 1));
        }
        (0..li)
            .rev()
            .find(|&k| !self.nodes[self.leaves[k]].entries.is_empty())
            .map(|k| (k, self.nodes[self.leaves[k]].entries.len() - 1))
    }

    fn next_of(&self, li: usize, i: usize) -> Option<(usize, usize)> {
        if i + 1 < self.nodes[self.leaves[li]].entries.len() {
            return Some((li, i + 1));
        }
        (li + 1..self.leaves.len())
            .find(|&k| !self.nodes[self.leaves[k]].entries.is_empty())
            .map(|k| (k, 0))
    }

    fn get(&self, (li, i): (usize, usize)) -> Ext {
        self.nodes[self.leaves[li]].entries[i]
    }

    fn set(&mut self, (li, i): (usize, usize), e: Ext) {
        let id = self.leaves[li];
        self.nodes[id].entries[i] = e;
        self.nodes[id].changed = true;
        if i == 0 {
            self.fix_parents(id);
        }
    }

    /// `ext2fs_extent_fix_parents`: a node's first logical block goes up
    /// the index entries that lead to it while they are first.
    fn fix_parents(&mut self, mut id: usize) {
        let Some(first) = self.nodes[id].entries.first().map(|e| e.lblk) else {
            return;
        };
        while let Some((p, pos)) = self.nodes[id].parent {
            if self.nodes[p].entries[pos].lblk == first {
                break;
            }
            self.nodes[p].entries[pos].lblk = first;
            self.nodes[p].changed = true;
            if pos != 0 {
                break;
            }
            id = p;
        }
    }

    /// `extent_node_split` of a root that is a full leaf: every entry moves
    /// to a new tree block (from resize2fs's allocator, zeroed, header
    /// copied with the block's capacity), and the root becomes one index
    /// entry to it, one level up; the root's other entry slots keep their
    /// old bytes.
    fn split_root(&mut self, li: usize, mover: &mut Mover<'_>, ino: u32) -> Result<(), Error> {
        let id = self.leaves[li];
        if self.nodes[id].loc.is_some() || self.nodes[id].depth != 0 {
            return Err(split_refused(ino));
        }
        let pblk = mover.next()?;
        self.added += 1;
        let root = &mut self.nodes[id];
        root.render();
        let mut buf = vec![0u8; self.bs as usize];
        buf[..12].copy_from_slice(&root.buf[..12]);
        let per = ((self.bs - 12) / 12) as u16;
        write_u16le(&mut buf, 4, per);
        let entries = std::mem::take(&mut root.entries);
        let first = entries.first().map_or(0, |e| e.lblk);
        let leaf = Node {
            loc: Some(pblk),
            buf,
            depth: 0,
            max: per,
            entries,
            children: Vec::new(),
            parent: Some((id, 0)),
            changed: true,
        };
        let new_id = self.nodes.len();
        self.nodes.push(leaf);
        let root = &mut self.nodes[id];
        root.depth = 1;
        root.entries = vec![Ext {
            lblk: first,
            len: 0,
            pblk,
            uninit: false,
        }];
        root.children = vec![new_id];
        root.changed = true;
        self.leaves[li] = new_id;
        Ok(())
    }

    fn insert(
        &mut self,
        li: usize,
        at: usize,
        e: Ext,
        mover: &mut Mover<'_>,
        ino: u32,
    ) -> Result<(), Error> {
        let id = self.leaves[li];
        if self.nodes[id].entries.len() >= usize::from(self.nodes[id].max) {
            self.split_root(li, mover, ino)?;
        }
        let id = self.leaves[li];
        if self.nodes[id].entries.len() >= usize::from(self.nodes[id].max) {
            return Err(split_refused(ino));
        }
        self.nodes[id].entries.insert(at, e);
        self.nodes[id].changed = true;
        if at == 0 {
            self.fix_parents(id);
        }
        Ok(())
    }

    /// `ext2fs_extent_set_bmap(logical, physical)` for a mapped block.
    fn set_bmap(
        &mut self,
        logical: u64,
        physical: u64,
        uninit: bool,
        mover: &mut Mover<'_>,
        ino: u32,
    ) -> Result<(), Error> {
        let Some(pos) = self.find(logical) else {
            return Ok(());
        };
        let (li, i) = pos;
        let cur = self.get(pos);
        let max_len = if uninit {
            EXT_UNINIT_MAX_LEN
        } else {
            EXT_INIT_MAX_LEN
        };
        let new = Ext {
            lblk: logical,
            len: 1,
            pblk: physical,
            uninit,
        };
        if cur.uninit == uninit && cur.pblk + (logical - cur.lblk) == physical {
            return Ok(());
        }
        if logical == cur.lblk && cur.len == 1 {
            self.set(pos, new);
        } else if logical == cur.lblk + cur.len - 1 {
            let next = self.next_of(li, i);
            match next.map(|p| (p, self.get(p))) {
                Some((np, n))
                    if logical + 1 == n.lblk
                        && physical + 1 == n.pblk
                        && uninit == n.uninit
                        && n.len < max_len - 1 =>
                {
                    self.set(
                        np,
                        Ext {
                            lblk: n.lblk - 1,
                            pblk: n.pblk - 1,
                            len: n.len + 1,
                            ..n
                        },
                    );
                }
                _ => self.insert(li, i + 1, new, mover, ino)?,
            }
            let mut c = cur;
            c.len -= 1;
            self.set(pos, c);
        } else if logical == cur.lblk {
            let prev = self.prev_of(li, i);
            let mut at = pos;
            match prev.map(|p| (p, self.get(p))) {
                Some((pp, p))
                    if logical == p.lblk + p.len
                        && physical == p.pblk + p.len
                        && uninit == p.uninit
                        && p.len < max_len - 1 =>
                {
                    self.set(
                        pp,
                        Ext {
                            len: p.len + 1,
                            ..p
                        },
                    );
                }
                _ => {
                    self.insert(li, i, new, mover, ino)?;
                    at = (li, i + 1);
                }
            }
            let c = Ext {
                lblk: cur.lblk + 1,
                pblk: cur.pblk + 1,
                len: cur.len - 1,
                ..cur
            };
            self.set(at, c);
        } else {
            // The middle: shorten, then the new block, then the rest.
            let head = logical - cur.lblk;
            self.set(pos, Ext { len: head, ..cur });
            self.insert(li, i + 1, new, mover, ino)?;
            let tail = Ext {
                lblk: logical + 1,
                pblk: cur.pblk + head + 1,
                len: cur.len - head - 1,
                uninit: cur.uninit,
            };
            self.insert(li, i + 2, tail, mover, ino)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ext(lblk: u64, len: u64, pblk: u64) -> Ext {
        Ext {
            lblk,
            len,
            pblk,
            uninit: false,
        }
    }

    /// A depth-0 tree in the inode holding `exts`.
    fn root(exts: &[Ext]) -> Tree {
        let mut buf = vec![0u8; 60];
        write_u16le(&mut buf, 0, EXTENT_MAGIC);
        write_u16le(&mut buf, 4, 4);
        let mut n = Node {
            loc: None,
            buf,
            depth: 0,
            max: 4,
            entries: exts.to_vec(),
            children: Vec::new(),
            parent: None,
            changed: false,
        };
        n.render();
        Tree {
            nodes: vec![n],
            leaves: vec![0],
            added: 0,
            bs: 4096,
        }
    }

    fn leaf_extents(t: &Tree) -> Vec<Ext> {
        t.leaves
            .iter()
            .flat_map(|&l| t.nodes[l].entries.clone())
            .collect()
    }

    fn remap(t: &mut Tree, moves: &[(u64, u64)], used: &mut BlockSet) {
        let r = Relocation {
            moves: moves.to_vec(),
            ..Relocation::default()
        };
        let mut touched = vec![0u64; 64];
        let mut mover = Mover {
            used,
            touched: &mut touched,
            cursor: 0,
            end: 1 << 20,
            fdb: 0,
            bpg: 32768,
        };
        assert!(t.remap(&r, &mut mover, 11).unwrap());
    }

    /// resize2fs 1.47.0 growing a fresh 8 GiB filesystem to 9 TiB moves
    /// lost+found's blocks 9250–9253 to 9794–9797: debugfs then shows
    /// `(0-2):9794-9796, (3):9797` (measured).
    #[test]
    fn a_moved_run_ends_as_two_extents() {
        let mut t = root(&[ext(0, 4, 9250)]);
        let moves: Vec<(u64, u64)> = (0..4).map(|i| (9250 + i, 9794 + i)).collect();
        remap(&mut t, &moves, &mut BlockSet::new());
        assert_eq!(leaf_extents(&t), vec![ext(0, 3, 9794), ext(3, 1, 9797)]);
        assert_eq!(t.added, 0);
    }

    /// Measured on a 1 GiB filesystem grown to 2 TiB: a 1280-block file at
    /// 4249 under the new inode bitmaps (4257–4264) and inode table
    /// (4273–4784), its blocks moving to 61526–61533 and 61534–62045,
    /// ends as five extents in a new tree block, the first block free
    /// after the moved ones: `(ETB0):62174, (0-7):4249-4256,
    /// (8-15):61526-61533, (16-23):4265-4272, (24-535):61534-62045,
    /// (536-1279):4785-5528`.
    #[test]
    fn a_full_root_splits_into_a_new_tree_block() {
        let mut t = root(&[ext(0, 1280, 4249)]);
        let mut moves: Vec<(u64, u64)> = (0..8).map(|i| (4257 + i, 61526 + i)).collect();
        moves.extend((0..512).map(|i| (4273 + i, 61534 + i)));
        let mut used = BlockSet::new();
        used.insert(0..62174);
        remap(&mut t, &moves, &mut used);
        assert_eq!(
            leaf_extents(&t),
            vec![
                ext(0, 8, 4249),
                ext(8, 8, 61526),
                ext(16, 8, 4265),
                ext(24, 512, 61534),
                ext(536, 744, 4785)
            ]
        );
        assert_eq!(t.added, 1);
        let root = &t.nodes[0];
        assert_eq!((root.depth, root.entries.len()), (1, 1));
        assert_eq!((root.entries[0].lblk, root.entries[0].pblk), (0, 62174));
        assert_eq!(t.nodes[t.leaves[0]].loc, Some(62174));
        assert!(used.contains(62174));
    }
}
