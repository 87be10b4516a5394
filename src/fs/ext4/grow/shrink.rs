//! resize2fs 1.47.0 shrinking a filesystem offline (`resize_fs` to a
//! smaller size; online, the kernel refuses and so does resize2fs).
//!
//! What it does, in its order, and what this module plans the same way:
//!
//! - `adjust_fs_info`: the groups past the new end go; the inode count
//!   follows (`inodes per group x groups`; the inodes in use must fit, or
//!   "No space left on device"); with a resize inode the reserved GDT
//!   blocks grow by the descriptor blocks saved (at most a quarter of a
//!   block's worth of block numbers), so each superblock group's
//!   metadata area keeps its size; the reserved-block ratio is kept. The
//!   removed groups' bitmaps and inode tables that lie inside the new
//!   filesystem (flex_bg packs them there) are freed, and kept out of
//!   reach of the block mover.
//! - `blocks_to_move`: every block in use past the new end that is no
//!   group metadata, skipping groups whose block bitmap was never
//!   initialized. Without a resize inode, descriptor blocks no longer
//!   needed are freed.
//! - `block_mover`: each, in ascending order, to the first block from the
//!   first data block on that the old filesystem does not use and the new
//!   one has not taken (`get_new_block`; resize2fs's "desperation" second
//!   pass over blocks the old filesystem used is not modelled: it can only
//!   matter without a resize inode, and then ebsim reports no space).
//! - `inode_scan_and_fix`: every inode in use, in inode order. One past
//!   `new groups x inodes per group` gets the first free inode number from
//!   the first non-reserved inode on (`ext2fs_new_inode` with no parent; a
//!   group never initialized loses both its uninit flags), its `i_ctime`
//!   set to the resize time, its checksum, and with metadata_csum every
//!   extent tree block's, recomputed for the new number. Every block
//!   reference is remapped as for a relocating grow (see `relocate`).
//! - `inode_ref_fix` (when an inode moved): every directory block, in
//!   block order; each entry naming a moved inode is renumbered and its
//!   directory's `i_mtime` and `i_ctime` set to the resize time; a changed
//!   block gets its checksum again (leaf tail or htree node tail), and with
//!   metadata_csum every block of a renumbered directory is rewritten so.
//! - The summary counts, group flags and checksums are recounted as for a
//!   grow (`resize2fs_calculate_summary_stats`, `ext2fs_set_gdt_csum`); the
//!   resize inode is rebuilt for the new geometry; the superblock's backup
//!   of the journal's block map follows a moved journal; a longer image
//!   file is cut to the new size after everything else.
//!
//! Refused before anything is written, each by name: meta_bg filesystems,
//! a surviving group whose tables lie past the new end, renumbering with
//! inline-data directories present (their entries live in the inode), more
//! than 2 GiB of blocks to move (the plan holds what it moves in memory:
//! the image file is cut before the writes), and what the relocation
//! refuses (a full extent tree block that would have to split).
//!
//! `s_kbytes_written` grows by the bytes of ebsim's own batch, not by
//! what resize2fs's write cache would count.

use super::{
    GrowBody, GrowGroups, GrowOutcome, GrowRequest, finish, fs_stride, kept_reserve,
    load_block_map, load_inode_groups, rebuilt_resize_inode,
};
use crate::blockdev::{BlockDevice, WriteBatch};
use crate::bytes::{read_u16le, read_u32le, write_u32le};
use crate::fs::ext4::bitmap::{BlockSet, count_and_last, set_bits, test_bit};
use crate::fs::ext4::checksum::crc32c_raw;
use crate::fs::ext4::error::{Error, GrowError};
use crate::fs::ext4::features::compat;
use crate::fs::ext4::files::dirent;
use crate::fs::ext4::fs::Ext4;
use crate::fs::ext4::group_desc::{BG_BLOCK_UNINIT, BG_INODE_UNINIT, GroupDesc, has_group_csum};
use crate::fs::ext4::inode::{Inode, JOURNAL_INO, RESIZE_INO, inode_seed};
use crate::fs::ext4::relocate::{self, Mover, Relocation, set_bit};
use crate::fs::ext4::resize_inode::ResizeGeometry;
use crate::fs::ext4::superblock::STATE_ERROR;
use crate::fs::ext4::tables;
use std::collections::{BTreeMap, BTreeSet};

const S_IFMT: u16 = 0o170000;
const S_IFDIR: u16 = 0o040000;
/// `EXT4_EA_INODE_FL`: an inode holding an xattr value keeps a reference
/// count in `i_ctime`, which a move leaves alone.
const EXT4_EA_INODE_FL: u32 = 0x0020_0000;
/// `EXT4_INLINE_DATA_FL`: the file's data (a directory's entries) lives
/// in the inode.
const EXT4_INLINE_DATA_FL: u32 = 0x1000_0000;

/// The most data a shrink moves (held in memory until written).
const MAX_MOVED_BYTES: u64 = 2 << 30;

/// `ext2fs_new_inode(fs, 0, ...)` over the new filesystem's inode bitmaps,
/// loaded as the search reaches them. Nothing is freed while inodes move,
/// so the search only ever goes forward.
struct InodeAlloc {
    ipg: u64,
    groups: u64,
    /// (group, index in group) to look from.
    group: u64,
    index: u64,
    /// Bitmaps of the groups looked at.
    maps: BTreeMap<u64, Vec<u8>>,
    /// The groups that received an inode.
    taken: BTreeSet<u64>,
}

impl InodeAlloc {
    fn bitmap<D: BlockDevice>(&mut self, fs: &Ext4<D>, g: u64) -> Result<&mut Vec<u8>, Error> {
        match self.maps.entry(g) {
            std::collections::btree_map::Entry::Occupied(e) => Ok(e.into_mut()),
            std::collections::btree_map::Entry::Vacant(v) => {
                let sb = fs.superblock();
                let d = &fs.descriptors()[g as usize];
                let bm = if has_group_csum(sb) && d.has_flag(BG_INODE_UNINIT) {
                    // check_inode_uninit: an uninitialized group's inodes
                    // are all free.
                    tables::inode_bitmap(sb, 0)
                } else {
                    // Checksum verified when the groups were loaded.
                    fs.read_block(d.bg_inode_bitmap)?
                };
                Ok(v.insert(bm))
            }
        }
    }

    /// The next free inode number (marked used), or None when the new
    /// filesystem has none.
    fn next<D: BlockDevice>(&mut self, fs: &Ext4<D>) -> Result<Option<u32>, Error> {
        while self.group < self.groups {
            let (g, ipg) = (self.group, self.ipg);
            let mut i = self.index;
            let bm = self.bitmap(fs, g)?;
            while i < ipg && test_bit(bm, i) {
                i += 1;
            }
            if i < ipg {
                set_bits(bm, i, i + 1);
                self.index = i + 1;
                self.taken.insert(g);
                return Ok(u32::try_from(g * ipg + i + 1).ok());
            }
            if !self.taken.contains(&g) {
                // A full group stays unchanged: forget its bitmap again.
                self.maps.remove(&g);
            }
            self.group += 1;
            self.index = 0;
        }
        Ok(None)
    }
}

fn rec_len(b: &[u8], off: usize, bs: usize) -> usize {
    dirent::rec_len_from_disk(read_u16le(b, off + 4), bs)
}

/// True when the block ends in a leaf checksum tail (`__get_dirent_tail`).
fn has_leaf_tail(b: &[u8]) -> bool {
    let bs = b.len();
    let top = bs - 12;
    let mut off = 0;
    while off < top {
        let r = rec_len(b, off, bs);
        if r < 8 || r % 4 != 0 {
            return false;
        }
        off += r;
    }
    off == top
        && read_u32le(b, top) == 0
        && read_u16le(b, top + 4) == 12
        && read_u16le(b, top + 6) == 0xDE00
}

/// The count/limit offset of an htree root (32) or node (8) block
/// (`__get_dx_countlimit`), when it is one with sane numbers.
fn dx_count_offset(b: &[u8]) -> Option<usize> {
    let bs = b.len();
    let r = usize::from(read_u16le(b, 4));
    let off = if r == bs && read_u16le(b, 6) == 0 {
        8
    } else if r == 12 {
        if usize::from(read_u16le(b, 16)) != bs - 12 || read_u32le(b, 24) != 0 || b[29] != 8 {
            return None;
        }
        32
    } else {
        return None;
    };
    let max = (bs - off) / 8;
    let limit = usize::from(read_u16le(b, off));
    let count = usize::from(read_u16le(b, off + 2));
    (limit <= max && count <= max).then_some(off)
}

/// `ext2fs_dir_block_csum_set` for directory `dir_seed` (the directory's
/// inode seed): a leaf's tail, or an htree node's tail. A block with room
/// for neither is left as it is (resize2fs ignores checksum errors here).
fn set_dir_block_csum(b: &mut [u8], dir_seed: u32) {
    let bs = b.len();
    if has_leaf_tail(b) {
        dirent::write_tail(b, dir_seed);
        return;
    }
    let Some(off) = dx_count_offset(b) else {
        return;
    };
    let limit = usize::from(read_u16le(b, off));
    let count = usize::from(read_u16le(b, off + 2));
    if off + limit * 8 > bs - 8 {
        return;
    }
    let tail = off + limit * 8;
    let c = crc32c_raw(dir_seed, &b[..off + count * 8]);
    let c = crc32c_raw(c, &b[tail..tail + 4]);
    let c = crc32c_raw(c, &[0u8; 4]);
    write_u32le(b, tail + 4, c);
}

/// Plans the shrink of the opened filesystem to `new_blocks` (already
/// decided and adjusted), after the writes of `head` (the image file's
/// new length).
#[allow(clippy::too_many_lines)]
pub(super) fn build<D: BlockDevice>(
    fs: &Ext4<D>,
    req: &GrowRequest,
    new_blocks: u64,
    head: WriteBatch,
) -> Result<GrowOutcome, Error> {
    let sb0 = fs.superblock();
    if sb0.meta_bg() {
        return Err(Error::Unsupported(
            "shrinking a meta_bg filesystem is not supported by ebsim's resize2fs".into(),
        ));
    }
    let bs = u64::from(sb0.block_size());
    let blocks0 = sb0.s_blocks_count;
    let fdb = u64::from(sb0.s_first_data_block);
    let bpg = u64::from(sb0.s_blocks_per_group);
    let ipg = u64::from(sb0.s_inodes_per_group);
    let itb = sb0.inode_table_blocks();
    let ng0 = sb0.group_count();
    let ng = new_blocks.saturating_sub(fdb).div_ceil(bpg);
    let desc0 = sb0.desc_blocks();
    let desc = ng.div_ceil(sb0.descs_per_block());
    let resize_inode = sb0.has_compat(compat::RESIZE_INODE);
    let rsv0 = u64::from(sb0.s_reserved_gdt_blocks);
    // adjust_reserved_gdt_blocks: the area keeps its size.
    let rsv = if resize_inode {
        (rsv0 + desc0 - desc).min(bs / 4)
    } else {
        rsv0
    };
    // adjust_superblock: the inodes in use must fit.
    let used_inodes = u64::from(sb0.s_inodes_count.saturating_sub(sb0.s_free_inodes_count));
    if used_inodes > ipg * ng {
        return Err(Error::Grow(GrowError::NoSpace));
    }
    let descs0 = fs.descriptors();
    for (g, d) in descs0.iter().enumerate().take(ng as usize) {
        if d.bg_block_bitmap >= new_blocks
            || d.bg_inode_bitmap >= new_blocks
            || d.bg_inode_table + itb > new_blocks
        {
            return Err(Error::Unsupported(format!(
                "group {g}'s bitmaps or inode table lie past the new end; ebsim's resize2fs does not place them again"
            )));
        }
    }

    let mut sb = sb0.clone();
    sb.s_blocks_count = new_blocks;
    sb.s_overhead_clusters = 0;
    // OK: at most the old count.
    sb.s_inodes_count = (ipg * ng) as u32;
    sb.s_r_blocks_count = kept_reserve(sb0, new_blocks);
    sb.s_reserved_gdt_blocks = rsv as u16;
    sb.s_state &= !STATE_ERROR;
    sb.s_wtime = req.now;
    let stride = req.stride.unwrap_or_else(|| fs_stride(sb0, descs0));
    sb.s_raid_stride = stride as u16;

    // The old filesystem's blocks and metadata.
    let old_used = load_block_map(fs)?;
    let inodes0 = load_inode_groups(fs)?;
    let old_meta = relocate::mark_table_blocks(fs);
    let mut touched = vec![0u64; usize::try_from(ng.div_ceil(64)).unwrap_or(0)];
    let group_of = |b: u64| (b - fdb) / bpg;

    // free_gdp_blocks: the removed groups' tables inside the new end.
    let mut freed = BlockSet::new();
    for d in &descs0[ng as usize..] {
        for b in [d.bg_block_bitmap, d.bg_inode_bitmap] {
            if b != 0 && b < new_blocks {
                freed.insert_block(b);
            }
        }
        let t = d.bg_inode_table;
        if t < new_blocks {
            freed.insert(t..(t + itb).min(new_blocks));
        }
    }
    // Without a resize inode the descriptor blocks saved are freed.
    let area0 = desc0 + rsv0;
    let area = desc + rsv;
    if area0 > area {
        for g in (0..ng).filter(|&g| sb0.group_has_super(g)) {
            let first = fdb + g * bpg;
            freed.insert(first + 1 + area..first + 1 + area0);
        }
    }
    for r in freed.runs() {
        for b in r {
            set_bit(&mut touched, group_of(b));
        }
    }

    // blocks_to_move.
    let mut to_move = BlockSet::new();
    for run in old_used.runs_in(new_blocks..blocks0) {
        let mut b = run.start;
        while b < run.end {
            let g = group_of(b);
            let gend = (fdb + (g + 1) * bpg).min(run.end);
            let uninit = has_group_csum(sb0)
                && descs0
                    .get(g as usize)
                    .is_some_and(|d| d.has_flag(BG_BLOCK_UNINIT));
            if !uninit {
                to_move.insert(b..gend);
            }
            b = gend;
        }
    }
    for m in old_meta.runs_in(new_blocks..blocks0) {
        to_move.remove(m);
    }

    // block_mover: the allocator avoids everything the old filesystem used.
    let mut avoid = old_used.clone();
    avoid.remove(new_blocks..u64::MAX);
    let mut r = Relocation {
        itables: descs0[..ng as usize]
            .iter()
            .map(|d| (d.bg_inode_table, d.bg_inode_table))
            .collect(),
        ..Relocation::default()
    };
    let mut mover = Mover {
        used: &mut avoid,
        touched: &mut touched,
        cursor: fdb,
        end: new_blocks,
        fdb,
        bpg,
    };
    // The plan holds the contents it moves until it is written (the image
    // file is cut before the writes, so they cannot be read then).
    let moving = to_move.count_in(0..u64::MAX) * bs;
    if moving > MAX_MOVED_BYTES {
        return Err(Error::Unsupported(format!(
            "shrinking to {new_blocks} blocks moves {} MiB of data; ebsim's resize2fs holds what it moves in memory and stops at {} MiB",
            moving >> 20,
            MAX_MOVED_BYTES >> 20
        )));
    }
    r.move_blocks(fs, &mut mover, &to_move)?;

    // inode_scan_and_fix.
    let seed = sb0.has_metadata_csum().then(|| sb0.csum_seed());
    let start_to_move = ng * ipg;
    let mut alloc = InodeAlloc {
        ipg,
        groups: ng,
        group: u64::from(sb0.s_first_ino.saturating_sub(1)) / ipg,
        index: u64::from(sb0.s_first_ino.saturating_sub(1)) % ipg,
        maps: BTreeMap::new(),
        taken: BTreeSet::new(),
    };
    let mut imap: BTreeMap<u32, u32> = BTreeMap::new();
    let mut patches: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    // (number after the shrink, inode as read) of every directory.
    let mut dirs: Vec<(u32, Vec<u8>)> = Vec::new();
    let mut new_dirs = vec![0u32; ng as usize];
    let mut inline_dir = None;
    let now32 = (req.now & 0xFFFF_FFFF) as u32;
    relocate::each_inode_in_use(fs, &mut |ino, raw| {
        if ino == RESIZE_INO {
            return Ok(());
        }
        let mut raw = raw.to_vec();
        let is_dir = read_u16le(&raw, 0) & S_IFMT == S_IFDIR;
        let mut new_ino = ino;
        if u64::from(ino) > start_to_move {
            new_ino = alloc.next(fs)?.ok_or(Error::Grow(GrowError::NoSpace))?;
            let ng_new = u64::from(new_ino - 1) / ipg;
            if has_group_csum(sb0) && descs0[ng_new as usize].has_flag(BG_INODE_UNINIT) {
                // check_inode_uninit clears both uninit flags.
                set_bit(mover.touched, ng_new);
            }
            if is_dir {
                new_dirs[ng_new as usize] += 1;
            }
            if read_u32le(&raw, 0x20) & EXT4_EA_INODE_FL == 0 {
                write_u32le(&mut raw, 0x0C, now32);
            }
            imap.insert(ino, new_ino);
        }
        if let Some(bytes) = relocate::fix_inode(fs, &mut r, &mut mover, ino, new_ino, &raw, seed)?
        {
            if ino == JOURNAL_INO {
                let mut ib = [0u8; 60];
                ib.copy_from_slice(&bytes[0x28..0x64]);
                r.journal_blocks = Some(ib);
            }
            patches.insert(new_ino, bytes);
        }
        if is_dir {
            if read_u32le(&raw, 0x20) & EXT4_INLINE_DATA_FL != 0 {
                inline_dir = Some(new_ino);
            }
            dirs.push((new_ino, raw));
        }
        Ok(())
    })?;

    let mut passes = Vec::new();
    if !r.moves.is_empty() {
        passes.push((2, r.moves.len() as u64));
    }
    passes.push((3, ng0));
    // inode_ref_fix.
    if let (Some(dir), false) = (inline_dir, imap.is_empty()) {
        return Err(Error::Unsupported(format!(
            "inodes have to be renumbered, and directory inode {dir} keeps its entries in the inode (inline_data); ebsim's resize2fs does not rewrite those"
        )));
    }
    if !imap.is_empty() {
        let renumbered: BTreeSet<u32> = imap.values().copied().collect();
        let mut dblist: Vec<(u64, u32)> = Vec::new();
        // Its progress counts the directories' tree blocks too.
        let mut tree_blocks = 0;
        for (dir, raw) in &dirs {
            let (data, meta) = relocate::mapped_blocks(fs, *dir, raw)?;
            tree_blocks += meta;
            for (_, pblk) in data {
                dblist.push((r.map_block(pblk), *dir));
            }
        }
        passes.push((4, dblist.len() as u64 + tree_blocks));
        dblist.sort_unstable();
        let mut retimed: BTreeSet<u32> = BTreeSet::new();
        let bsz = bs as usize;
        for (pblk, dir) in dblist {
            let mut b = match r.blocks.get(&pblk) {
                Some(b) => b.clone(),
                None if r.zeros.contains(pblk) => vec![0u8; bsz],
                None => fs.read_block(pblk)?,
            };
            let rewrite = seed.is_some() && renumbered.contains(&dir);
            let mut changed = false;
            let mut off = 0;
            while off < bsz - 8 {
                let rl = rec_len(&b, off, bsz);
                let name_len = usize::from(b[off + 6]);
                if off + rl > bsz || rl < 8 || rl % 4 != 0 || name_len + 8 > rl {
                    return Err(Error::BadInode {
                        ino: dir,
                        why: format!("directory block {pblk} is corrupted"),
                    });
                }
                let inum = read_u32le(&b, off);
                let is_tail = inum == 0
                    && seed.is_some()
                    && off == bsz - 12
                    && rl == 12
                    && read_u16le(&b, off + 6) == 0xDE00;
                if !is_tail {
                    if rewrite {
                        changed = true;
                    }
                    if let Some(&to) = imap.get(&inum) {
                        write_u32le(&mut b, off, to);
                        retimed.insert(dir);
                        changed = true;
                    }
                }
                off += rl;
            }
            if changed {
                if let Some(s) = seed {
                    let generation = read_u32le(&current_inode(fs, &patches, dir)?, 0x64);
                    set_dir_block_csum(&mut b, inode_seed(s, dir, generation));
                }
                r.zeros.remove(pblk..pblk + 1);
                r.blocks.insert(pblk, b);
            }
        }
        for dir in retimed {
            let mut ino = Inode::from_bytes(&current_inode(fs, &patches, dir)?);
            ino.i_mtime = now32;
            ino.i_ctime = now32;
            patches.insert(dir, ino.to_bytes(dir, seed));
        }
    }
    for (ino, bytes) in &patches {
        r.patch_inode(fs, *ino, bytes)?;
    }

    // The new filesystem's block map.
    let mut used = avoid;
    used.remove(new_blocks..u64::MAX);
    for run in freed.runs() {
        used.remove(run);
    }

    // Groups after the shrink.
    let mut old: Vec<GroupDesc> = descs0[..ng as usize].to_vec();
    let mut inodes: Vec<(u64, u64)> = inodes0[..ng as usize].to_vec();
    let mut inode_maps = BTreeMap::new();
    for (g, bm) in alloc.maps {
        if !alloc.taken.contains(&g) {
            continue;
        }
        let (used_n, last) = count_and_last(&bm, ipg);
        inodes[g as usize] = (ipg - used_n, last);
        old[g as usize].bg_flags &= !BG_INODE_UNINIT;
        inode_maps.insert(g, bm);
    }
    for (d, n) in old.iter_mut().zip(&new_dirs) {
        d.bg_used_dirs_count += n;
    }
    let mut groups = GrowGroups {
        sb,
        old,
        inodes,
        new_tables: crate::fs::ext4::layout::TableList::with_capacity(0),
        gets_tables: touched,
        flushed_csum: None,
        used,
        csum: has_group_csum(sb0),
        inode_maps,
        desc_tail: old_desc_tail(fs, ng)?,
    };
    let (free_blocks, free_inodes) = groups.totals();
    groups.sb.s_free_blocks_count = free_blocks;
    groups.sb.s_free_inodes_count = free_inodes as u32;
    if let Some(ib) = r.journal_blocks {
        // fix_sb_journal_backup.
        groups.sb.set_jnl_blocks(&ib);
    }
    let mut body = GrowBody {
        groups,
        dind: None,
        reserved: None,
        resize_inode: None,
        reloc: Some(r),
    };
    if resize_inode {
        let geo = ResizeGeometry::of(&body.groups.sb);
        rebuilt_resize_inode(fs, &mut body, req, geo)?;
    }
    let added =
        (head.data_bytes() + body.data_bytes() + tables::super_and_gdt_bytes(&body.groups.sb))
            >> 10;
    Ok(finish(head, body, added, (blocks0, desc0, ng0), passes))
}

/// The primary descriptor table's bytes from group `ng`'s descriptor to
/// the end of its block (empty when `ng` starts a block).
fn old_desc_tail<D: BlockDevice>(fs: &Ext4<D>, ng: u64) -> Result<Vec<u8>, Error> {
    let sb = fs.superblock();
    let bs = u64::from(sb.block_size());
    let at = ng * sb.desc_size() as u64;
    if at % bs == 0 {
        return Ok(Vec::new());
    }
    let b = fs.read_block(u64::from(sb.s_first_data_block) + 1 + at / bs)?;
    Ok(b[(at % bs) as usize..].to_vec())
}

/// Inode `ino` as the plan has it so far.
fn current_inode<D: BlockDevice>(
    fs: &Ext4<D>,
    patches: &BTreeMap<u32, Vec<u8>>,
    ino: u32,
) -> Result<Vec<u8>, Error> {
    match patches.get(&ino) {
        Some(b) => Ok(b.clone()),
        None => fs.read_inode_bytes(ino),
    }
}
