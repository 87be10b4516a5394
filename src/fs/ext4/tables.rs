//! Writing the per-filesystem tables shared by mkfs and resize2fs: the
//! superblock and its backups, the group descriptor table and its copies,
//! and group bitmaps rendered from a [`BlockSet`].
//!
//! A 16 TiB filesystem has 131072 groups: 8 MiB of descriptors, written in
//! every one of 25 superblock groups. So nothing here holds a table: a
//! plan describes its groups through [`Groups`] (a descriptor or bitmap
//! computed on demand from compact state), and the writers below render
//! the descriptor table once per walk, in chunks, each chunk written to
//! every copy.

use super::bitmap::{BlockSet, bitmap_csum, render};
use super::features::incompat;
use super::group_desc::{BG_BLOCK_UNINIT, BG_INODE_UNINIT, GroupDesc};
use super::superblock::{STATE_VALID, SUPERBLOCK_OFFSET, Superblock};
use crate::blockdev::{Error, Sink};
use std::ops::Range;

/// Bytes of descriptor table rendered at a time.
const GDT_CHUNK: usize = 256 * 1024;
/// Groups whose descriptors are computed at a time.
pub const DESC_BATCH: u64 = 1024;

/// A filesystem's groups as a plan will write them.
pub trait Groups {
    /// The superblock being written (the primary's fields).
    fn sb(&self) -> &Superblock;
    /// The descriptors of the groups in `groups` (checksums included),
    /// appended to `out`. Called with ranges of at most [`DESC_BATCH`]
    /// groups, so an implementation can count a range's used blocks in one
    /// walk.
    fn descs(&self, groups: Range<u64>, out: &mut Vec<GroupDesc>);
    /// Group `g`'s block bitmap (called for groups without
    /// `BLOCK_UNINIT`).
    fn block_bitmap(&self, g: u64) -> Vec<u8>;
    /// Group `g`'s inode bitmap (called for groups without
    /// `INODE_UNINIT`), or `None` when the bitmap on disk stays as it is
    /// (it still counts as written in `s_kbytes_written`, as resize2fs
    /// rewrites it unchanged).
    fn inode_bitmap(&self, g: u64) -> Option<Vec<u8>>;
    /// The bytes after the last group's descriptor to the end of its
    /// descriptor block, when they are not zeros: libext2fs writes its
    /// descriptor memory, read from disk in whole blocks, so a shrink
    /// leaves the removed groups' old descriptors there.
    fn desc_tail(&self) -> &[u8] {
        &[]
    }
}

/// The groups holding a superblock copy (group 0 first).
pub fn super_groups(sb: &Superblock) -> Vec<u64> {
    (0..sb.group_count())
        .filter(|&g| sb.group_has_super(g))
        .collect()
}

/// The groups holding a copy of the classic descriptor table: the
/// superblock groups, but with `meta_bg` only those before the first meta
/// group (a superblock group inside a meta group holds just the
/// superblock, and its meta group's descriptor block when it is the
/// first, second or last group: libext2fs `ext2fs_super_and_bgd_loc2`).
pub fn classic_table_groups(sb: &Superblock) -> Vec<u64> {
    let dpb = sb.descs_per_block().max(1);
    let first_meta = u64::from(sb.s_first_meta_bg);
    (0..sb.group_count())
        .filter(|&g| sb.group_has_super(g) && (!sb.meta_bg() || g / dpb < first_meta))
        .collect()
}

/// Calls `f` with every group's number and descriptor, in order, a batch
/// at a time.
pub fn each_desc(src: &dyn Groups, f: &mut dyn FnMut(u64, &GroupDesc)) {
    let groups = src.sb().group_count();
    let mut batch = Vec::new();
    let mut g0 = 0;
    while g0 < groups {
        let g1 = (g0 + DESC_BATCH).min(groups);
        batch.clear();
        src.descs(g0..g1, &mut batch);
        for (i, d) in batch.iter().enumerate() {
            f(g0 + i as u64, d);
        }
        g0 = g1;
    }
}

/// Writes the block bitmaps, then the inode bitmaps, of every group whose
/// bitmap is initialized (in group order, so a flex group's bitmaps, which
/// lie side by side, coalesce into one write).
pub fn write_bitmaps(src: &dyn Groups, sink: &mut Sink<'_>) -> Result<(), Error> {
    let bs = u64::from(src.sb().block_size());
    let mut inode_bitmaps = Vec::new();
    let mut r = Ok(());
    each_desc(src, &mut |g, d| {
        if r.is_err() {
            return;
        }
        if !d.has_flag(BG_BLOCK_UNINIT) {
            r = sink(d.bg_block_bitmap * bs, &src.block_bitmap(g));
        }
        if !d.has_flag(BG_INODE_UNINIT) {
            inode_bitmaps.push((g, d.bg_inode_bitmap));
        }
    });
    r?;
    for (g, b) in inode_bitmaps {
        if let Some(bm) = src.inode_bitmap(g) {
            sink(b * bs, &bm)?;
        }
    }
    Ok(())
}

/// Bytes [`write_bitmaps`] writes (counting the inode bitmaps kept as they
/// are).
pub fn bitmap_bytes(src: &dyn Groups) -> u64 {
    let bs = u64::from(src.sb().block_size());
    let mut n = 0;
    each_desc(src, &mut |_, d| {
        n += bs
            * (u64::from(!d.has_flag(BG_BLOCK_UNINIT)) + u64::from(!d.has_flag(BG_INODE_UNINIT)));
    });
    n
}

/// Writes, in libext2fs's content (closefs.c `ext2fs_flush2`), every backup
/// superblock, every copy of the descriptor table, then the primary
/// superblock last. Backups carry `s_block_group_nr` = their group (capped
/// at 65535), the VALID bit and `needs_recovery` cleared, and their own
/// checksum.
pub fn write_super_and_gdt(src: &dyn Groups, sink: &mut Sink<'_>) -> Result<(), Error> {
    let sb = src.sb();
    let bs = u64::from(sb.block_size());
    let fdb = u64::from(sb.s_first_data_block);
    let bpg = u64::from(sb.s_blocks_per_group);
    let copies = super_groups(sb);
    for &g in copies.iter().filter(|&&g| g != 0) {
        let mut b = sb.clone();
        b.s_block_group_nr = u16::try_from(g).unwrap_or(u16::MAX);
        b.s_state &= !STATE_VALID;
        b.s_feature_incompat &= !incompat::RECOVER;
        // With 1 KiB blocks the group's first block is the superblock;
        // with larger blocks it sits at byte 0 of the group's block.
        sink((fdb + g * bpg) * bs, &b.to_bytes())?;
    }
    let size = sb.desc_size() as usize;
    let groups = sb.group_count();
    // The classic table goes to every superblock group; with meta_bg the
    // later blocks each go to their meta group's first, second and last
    // group.
    let classic = sb.classic_desc_blocks();
    let table_copies = classic_table_groups(sb);
    let table = sb.desc_blocks() * bs;
    let chunk_len = (GDT_CHUNK as u64 / bs).max(1) * bs;
    let mut chunk = Vec::new();
    let mut descs = Vec::new();
    let mut off = 0u64;
    while off < table {
        let len = chunk_len.min(table - off) as usize;
        chunk.clear();
        chunk.resize(len, 0);
        let first = (off / size as u64).min(groups);
        let end = (first + (len / size) as u64).min(groups);
        let mut g = first;
        while g < end {
            let g1 = (g + DESC_BATCH).min(end);
            descs.clear();
            src.descs(g..g1, &mut descs);
            for (i, d) in descs.iter().enumerate() {
                let at = (g - first) as usize * size + i * size;
                d.write_to(&mut chunk[at..at + size], size);
            }
            g = g1;
        }
        let tail = src.desc_tail();
        let tail_at = groups * size as u64;
        let (from, to) = (
            tail_at.max(off),
            (tail_at + tail.len() as u64).min(off + len as u64),
        );
        if from < to {
            chunk[(from - off) as usize..(to - off) as usize]
                .copy_from_slice(&tail[(from - tail_at) as usize..(to - tail_at) as usize]);
        }
        // Chunks are whole blocks; split a chunk at the classic table's end.
        let blocks = (len as u64 / bs).max(1);
        let b0 = off / bs;
        for k in 0..blocks {
            let i = b0 + k;
            let piece = &chunk[(k * bs) as usize..(((k + 1) * bs) as usize).min(len)];
            if i < classic {
                continue;
            }
            for at in sb.meta_group_desc_copies(i) {
                sink(at * bs, piece)?;
            }
        }
        let classic_len = ((classic.saturating_sub(b0)).min(blocks) * bs) as usize;
        if classic_len > 0 {
            for &g in &table_copies {
                sink(
                    (fdb + g * bpg + 1) * bs + off,
                    &chunk[..classic_len.min(len)],
                )?;
            }
        }
        off += len as u64;
    }
    let mut p = sb.clone();
    p.s_block_group_nr = 0;
    sink(SUPERBLOCK_OFFSET, &p.to_bytes())
}

/// Descriptor blocks libext2fs writes when it flushes only the primary
/// superblock (`EXT2_FLAG_MASTER_SB_ONLY`): the classic table in group 0,
/// and every copy of each meta group's block (those are written whatever
/// the flag).
pub fn primary_flush_desc_blocks(sb: &Superblock) -> u64 {
    let classic = sb.classic_desc_blocks();
    let meta: u64 = (classic..sb.desc_blocks())
        .map(|m| sb.meta_group_desc_copies(m).count() as u64)
        .sum();
    classic + meta
}

/// Bytes [`write_super_and_gdt`] writes.
pub fn super_and_gdt_bytes(sb: &Superblock) -> u64 {
    let copies = super_groups(sb).len() as u64;
    let tables = classic_table_groups(sb).len() as u64;
    let bs = u64::from(sb.block_size());
    let meta = sb.desc_blocks() - sb.classic_desc_blocks();
    copies * 1024 + tables * sb.classic_desc_blocks() * bs + meta * 3 * bs
}

/// Group `g`'s block bitmap block: its blocks' bits, padding set past the
/// end of the filesystem and past `blocks_per_group`.
pub fn block_bitmap(used: &BlockSet, sb: &Superblock, g: u64) -> Vec<u8> {
    let fdb = u64::from(sb.s_first_data_block);
    let bpg = u64::from(sb.s_blocks_per_group);
    let first = fdb + g * bpg;
    let nbits = sb.s_blocks_count.saturating_sub(first).min(bpg);
    render(used, first, nbits, sb.block_size() as usize)
}

/// True when a bitmap checksum kept in a descriptor matches the computed
/// one: all 32 bits in a 64-byte descriptor, the low 16 in a 32-byte one
/// (it has no high halves).
pub fn bitmap_csum_matches(sb: &Superblock, computed: u32, stored: u32) -> bool {
    if sb.desc_size() >= 64 {
        computed == stored
    } else {
        computed & 0xFFFF == stored & 0xFFFF
    }
}

/// Checksum of a block bitmap (over `clusters_per_group / 8` bytes).
pub fn block_bitmap_csum(sb: &Superblock, bm: &[u8]) -> u32 {
    bitmap_csum(sb.csum_seed(), bm, (sb.s_clusters_per_group / 8) as usize)
}

/// Checksum of an inode bitmap (over `inodes_per_group / 8` bytes).
pub fn inode_bitmap_csum(sb: &Superblock, bm: &[u8]) -> u32 {
    bitmap_csum(sb.csum_seed(), bm, (sb.s_inodes_per_group / 8) as usize)
}

/// An inode bitmap with the first `used` inodes marked and the padding
/// past `inodes_per_group` set.
pub fn inode_bitmap(sb: &Superblock, used: u64) -> Vec<u8> {
    let mut set = BlockSet::new();
    set.insert(0..used);
    render(
        &set,
        0,
        u64::from(sb.s_inodes_per_group),
        sb.block_size() as usize,
    )
}
