//! `statfs(2)` numbers as the kernel computes them for a mounted ext4
//! (fs/ext4/super.c `ext4_statfs`, `ext4_calculate_overhead`).
//! The kernel ignores `s_overhead_clusters` on non-bigalloc
//! filesystems and recomputes the overhead, so this does too.

use super::error::Error;
use super::features::{incompat, ro_compat};
use super::fs::Ext4;
use crate::blockdev::BlockDevice;

/// The statfs fields `df` and `stat -f` show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatFs {
    /// `f_bsize`.
    pub block_size: u32,
    /// `f_blocks`: blocks minus overhead.
    pub blocks: u64,
    /// `f_bfree`: Σ group free blocks.
    pub bfree: u64,
    /// `f_bavail`: free minus reserved (and the kernel's own reserve).
    pub bavail: u64,
    /// `f_files`.
    pub files: u64,
    /// `f_ffree`: Σ group free inodes.
    pub ffree: u64,
}

/// statfs of an opened filesystem.
pub fn statfs<D: BlockDevice>(fs: &Ext4<D>) -> Result<StatFs, Error> {
    let sb = fs.superblock();
    for (bit, name) in [(incompat::META_BG, "meta_bg")] {
        if sb.has_incompat(bit) {
            return Err(Error::UnsupportedFeature {
                state: "has the",
                feature: name.into(),
                operation: "statfs",
            });
        }
    }
    if sb.has_ro_compat(ro_compat::BIGALLOC) {
        return Err(Error::UnsupportedFeature {
            state: "has the",
            feature: "bigalloc".into(),
            operation: "statfs",
        });
    }
    let groups = sb.group_count();
    let desc = sb.desc_blocks();
    let rsv = u64::from(sb.s_reserved_gdt_blocks);
    let itb = sb.inode_table_blocks();
    let backups = (0..groups).filter(|&g| sb.group_has_super(g)).count() as u64;
    let mut overhead = u64::from(sb.s_first_data_block)
        .saturating_add(backups.saturating_mul(1 + desc + rsv))
        .saturating_add(groups.saturating_mul(itb + 2));
    if sb.has_journal() && sb.s_journal_inum != 0 && !sb.has_incompat(incompat::JOURNAL_DEV) {
        let j = fs.read_inode(sb.s_journal_inum)?;
        overhead = overhead.saturating_add(j.i_size / u64::from(sb.block_size()));
    }
    let bfree: u64 = fs
        .descriptors()
        .iter()
        .map(|d| u64::from(d.bg_free_blocks_count))
        .sum();
    let ffree: u64 = fs
        .descriptors()
        .iter()
        .map(|d| u64::from(d.bg_free_inodes_count))
        .sum();
    // s_resv_clusters: 2 % of the blocks, at most 4096, with extents.
    let resv = if sb.has_incompat(incompat::EXTENTS) {
        (sb.s_blocks_count / 50).min(4096)
    } else {
        0
    };
    let bavail = bfree.saturating_sub(sb.s_r_blocks_count.saturating_add(resv));
    Ok(StatFs {
        block_size: sb.block_size(),
        blocks: sb.s_blocks_count.saturating_sub(overhead),
        bfree,
        bavail,
        files: u64::from(sb.s_inodes_count),
        ffree,
    })
}
