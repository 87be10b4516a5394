//! Writing the per-filesystem tables shared by mkfs and resize2fs: the
//! superblock and its backups, the group descriptor table and its copies,
//! and group bitmaps rendered from a [`BlockSet`].

use super::bitmap::{BlockSet, bitmap_csum, render};
use super::features::incompat;
use super::group_desc::GroupDesc;
use super::superblock::{STATE_VALID, SUPERBLOCK_OFFSET, Superblock};
use crate::blockdev::WriteBatch;

/// The descriptor table: `desc_blocks` blocks, descriptors packed.
pub fn gdt_bytes(sb: &Superblock, descs: &[GroupDesc]) -> Vec<u8> {
    let size = sb.desc_size() as usize;
    let bs = sb.block_size() as usize;
    let blocks = (descs.len() * size).div_ceil(bs);
    let mut out = vec![0u8; blocks * bs];
    for (i, d) in descs.iter().enumerate() {
        d.write_to(&mut out[i * size..(i + 1) * size], size);
    }
    out
}

/// Adds, in libext2fs's flush order, every backup superblock with its
/// descriptor table copy, the primary descriptor table, then the primary
/// superblock. Backups carry `s_block_group_nr` = their group (capped at
/// 65535), the VALID bit and `needs_recovery` cleared, and their own
/// checksum (closefs.c `ext2fs_flush2`).
pub fn write_super_and_gdt(batch: &mut WriteBatch, sb: &Superblock, descs: &[GroupDesc]) {
    let bs = u64::from(sb.block_size());
    let gdt = gdt_bytes(sb, descs);
    let fdb = u64::from(sb.s_first_data_block);
    let bpg = u64::from(sb.s_blocks_per_group);
    for g in 0..sb.group_count() {
        if !sb.group_has_super(g) {
            continue;
        }
        let first = fdb + g * bpg;
        if g != 0 {
            let mut b = sb.clone();
            b.s_block_group_nr = u16::try_from(g).unwrap_or(u16::MAX);
            b.s_state &= !STATE_VALID;
            b.s_feature_incompat &= !incompat::RECOVER;
            // With 1 KiB blocks the group's first block is the superblock;
            // with larger blocks it sits at byte 0 of the group's block.
            batch.write(first * bs, b.to_bytes().to_vec());
        }
        batch.write((first + 1) * bs, gdt.clone());
    }
    let mut p = sb.clone();
    p.s_block_group_nr = 0;
    batch.write(SUPERBLOCK_OFFSET, p.to_bytes().to_vec());
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
