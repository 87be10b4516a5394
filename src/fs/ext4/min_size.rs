//! `resize2fs -P`: the estimate of the smallest size a filesystem could be
//! shrunk to, as e2fsprogs 1.47.0's `calculate_minimum_resize_size`
//! computes it from the superblock and the group descriptors alone (no
//! bitmap or inode is read).
//!
//! The estimate: enough groups for the inodes in use; enough blocks for
//! the data in use (every group's size less its free blocks and metadata);
//! with flex_bg a whole flex group of slack for the inode tables; the last
//! group's metadata plus the data that spills into it (at least 50
//! blocks); never short of the last needed group's inode table; and with
//! extents a safety margin for extent blocks a shrink may add. The
//! arithmetic keeps C's unsigned wrap-around where the original has it.

use super::features::incompat;
use super::group_desc::GroupDesc;
use super::superblock::Superblock;
use crate::ec2::release::Version;

/// `calc_group_overhead`: group `grp`'s bitmaps and inode table, its
/// superblock copy (group 0 always counts one), and its descriptor blocks
/// (the classic table and reserve where it has a backup; one block in a
/// meta group's first, second and last group).
fn group_overhead(sb: &Superblock, grp: u64, old_desc_blocks: u64) -> u64 {
    let has_super = sb.group_has_super(grp);
    let mut overhead = sb.inode_table_blocks() + 2;
    if grp == 0 || has_super {
        overhead += 1;
    }
    let dpb = sb.descs_per_block().max(1);
    let meta_group = grp / dpb;
    if !sb.meta_bg() || meta_group < u64::from(sb.s_first_meta_bg) {
        if has_super {
            overhead += old_desc_blocks;
        }
    } else {
        let r = grp % dpb;
        if r == 0 || r == 1 || r == dpb - 1 {
            overhead += 1;
        }
    }
    overhead
}

/// The classic descriptor table's blocks as resize2fs counts them in each
/// backup group: `s_first_meta_bg` with meta_bg, else every descriptor
/// block and the reserve.
fn old_desc_blocks(sb: &Superblock) -> u64 {
    if sb.meta_bg() {
        u64::from(sb.s_first_meta_bg)
    } else {
        sb.desc_blocks() + u64::from(sb.s_reserved_gdt_blocks)
    }
}

/// The estimate as resize2fs of e2fsprogs `version` computes it: 1.42's
/// rules before 1.43, today's (the same from 1.45.6 on) otherwise.
pub fn minimum_size_as(sb: &Superblock, descs: &[GroupDesc], version: Version) -> u64 {
    if version < Version::new(1, 43, 0) {
        minimum_size_1_42(sb, descs)
    } else {
        minimum_size(sb, descs)
    }
}

/// The minimum size in blocks `resize2fs -P` prints for a filesystem with
/// superblock `sb` and group descriptors `descs` (one per group).
pub fn minimum_size(sb: &Superblock, descs: &[GroupDesc]) -> u64 {
    let blocks_count = sb.s_blocks_count;
    let bpg = u64::from(sb.s_blocks_per_group).max(1);
    let ipg = u64::from(sb.s_inodes_per_group).max(1);
    let group_count = descs.len() as u64;
    let flex_bg = sb.has_incompat(incompat::FLEX_BG);
    let flexbg_size = 1u64 << sb.s_log_groups_per_flex.min(31);
    let overhead_of = |grp: u64, old: u64| group_overhead(sb, grp, old);

    // Groups for the inodes in use.
    let inode_count = u64::from(sb.s_inodes_count.wrapping_sub(sb.s_free_inodes_count));
    if descs.is_empty() {
        return blocks_count;
    }
    let mut groups = inode_count.div_ceil(ipg);
    // More inodes in use than the groups hold: counts that do not add up
    // (C would walk past its descriptors); the current size.
    if groups > group_count {
        return blocks_count;
    }

    let old_desc_blocks = old_desc_blocks(sb);

    // Blocks holding data: everything not free and not metadata.
    let mut data_needed = blocks_count;
    for (grp, d) in descs.iter().enumerate() {
        let n =
            u64::from(d.bg_free_blocks_count).min(bpg) + overhead_of(grp as u64, old_desc_blocks);
        if data_needed < n {
            // "file system appears inconsistent": the current size.
            return blocks_count;
        }
        data_needed -= n;
    }

    // A flex group of slack for the inode tables.
    let round_up_flex = |groups: u64| -> u64 {
        let remainder = groups & (flexbg_size - 1);
        (groups + flexbg_size - remainder).min(group_count)
    };
    let mut flex_groups = if flex_bg {
        round_up_flex(groups)
    } else {
        groups
    };

    // Data room in those groups, and in all but the last of them.
    let mut data_blocks = groups.saturating_mul(bpg);
    let mut last_start = 0u64;
    for grp in 0..flex_groups {
        let overhead = overhead_of(grp, old_desc_blocks);
        if grp < groups.wrapping_sub(1) {
            last_start = last_start.wrapping_add(bpg.wrapping_sub(overhead));
        }
        data_blocks = data_blocks.saturating_sub(overhead);
    }

    // More groups until the data fits.
    let blks_needed = data_needed;
    while blks_needed > data_blocks {
        let remainder = blks_needed - data_blocks;
        let extra = remainder.div_ceil(bpg);
        data_blocks = data_blocks.saturating_add(extra.saturating_mul(bpg));
        let overhead = overhead_of(groups.wrapping_sub(1), old_desc_blocks);
        last_start = last_start.wrapping_add(bpg.wrapping_sub(overhead));
        let mut grp = flex_groups;
        groups += extra;
        // More groups than the filesystem has: only counts that do not
        // add up get here (C would read past its descriptors); answer the
        // current size, as for an inconsistent filesystem.
        if groups > group_count {
            return blocks_count;
        }
        if !flex_bg {
            flex_groups = groups;
        } else if groups > flex_groups {
            flex_groups = round_up_flex(groups);
        }
        while grp < flex_groups {
            let overhead = overhead_of(grp, old_desc_blocks);
            if grp < groups - 1 {
                last_start = last_start.wrapping_add(bpg.wrapping_sub(overhead));
            }
            data_blocks = data_blocks.wrapping_sub(overhead);
            grp += 1;
        }
    }

    // The last group: its (flex group's) metadata and the data in it.
    let mut grp = groups.wrapping_sub(1);
    if flex_bg && (grp & !(flexbg_size - 1)) == 0 {
        grp &= !(flexbg_size - 1);
    }
    let mut overhead = 0u64;
    while grp < flex_groups {
        overhead = overhead.saturating_add(overhead_of(grp, old_desc_blocks));
        grp += 1;
    }
    // 50: the fewest data blocks mke2fs and resize2fs keep a last group for.
    overhead += if last_start < blks_needed {
        (blks_needed - last_start).max(50)
    } else {
        50
    };
    overhead += u64::from(sb.s_first_data_block);
    let cluster_ratio = 1u64
        << sb
            .s_log_cluster_size
            .saturating_sub(sb.s_log_block_size)
            .min(31);
    if cluster_ratio > 1 {
        overhead += cluster_ratio * 2;
    }

    let mut needed = groups
        .saturating_sub(1)
        .saturating_mul(bpg)
        .saturating_add(overhead);
    // Never short of the end of the last group's inode table.
    if let Some(d) = descs.get(usize::try_from(groups.wrapping_sub(1)).unwrap_or(usize::MAX)) {
        needed = needed.max(d.bg_inode_table.saturating_add(sb.inode_table_blocks()));
    }
    if needed >= blocks_count {
        return blocks_count;
    }
    // Room for the extent blocks a shrink may add.
    if sb.has_incompat(incompat::EXTENTS) {
        let exts_per_block = u64::from(sb.block_size()) / 12 - 1;
        let worst_case = data_needed.div_ceil(exts_per_block).max(inode_count);
        let safe_margin = ((blocks_count - needed) / 500).min(worst_case);
        needed += safe_margin;
    }
    needed
}

/// e2fsprogs 1.42's estimate (CentOS 7 and Amazon Linux 2 ship 1.42.9).
/// It differs from today's: the data in use is the superblock's block
/// count less its free count and every group's metadata; the flex_bg slack
/// is a flex group's worth of inode tables added to that data; the groups
/// added for data count their own metadata only; the last group's
/// overhead is its own; the extents margin is a flat 1/500 of what a
/// shrink would cut. Group and block products are C's 32-bit ones.
fn minimum_size_1_42(sb: &Superblock, descs: &[GroupDesc]) -> u64 {
    let blocks_count = sb.s_blocks_count;
    let bpg32 = sb.s_blocks_per_group.max(1);
    let bpg = u64::from(bpg32);
    let ipg = u64::from(sb.s_inodes_per_group).max(1);
    let group_count = descs.len() as u64;
    let flex_bg = sb.has_incompat(incompat::FLEX_BG);
    let flexbg_size = 1i64 << sb.s_log_groups_per_flex.min(30);
    let itb = i64::try_from(sb.inode_table_blocks()).unwrap_or(i64::MAX);
    if descs.is_empty() {
        return blocks_count;
    }
    let inode_count = u64::from(sb.s_inodes_count.wrapping_sub(sb.s_free_inodes_count));
    // dgrp_t: a 32-bit group count.
    let mut groups = u32::try_from(inode_count.div_ceil(ipg)).unwrap_or(u32::MAX);
    if u64::from(groups) > group_count {
        return blocks_count;
    }
    let old_desc_blocks = old_desc_blocks(sb);
    let overhead_of = |grp: u64| group_overhead(sb, grp, old_desc_blocks);

    let mut data_needed = blocks_count.wrapping_sub(sb.s_free_blocks_count);
    for grp in 0..group_count {
        data_needed = data_needed.wrapping_sub(overhead_of(grp));
    }
    let mut extra_groups: i64 = 0;
    if flex_bg {
        extra_groups = flexbg_size - (i64::from(groups) & (flexbg_size - 1));
        data_needed = data_needed.wrapping_add_signed(itb.wrapping_mul(extra_groups));
        extra_groups = i64::from(groups) % flexbg_size;
    }

    let mut data_blocks = u64::from(groups.wrapping_mul(bpg32));
    let mut last_start = 0u64;
    for grp in 0..u64::from(groups) {
        let overhead = overhead_of(grp);
        if grp != u64::from(groups.wrapping_sub(1)) {
            last_start = last_start.wrapping_add(bpg.wrapping_sub(overhead));
        }
        data_blocks = data_blocks.wrapping_sub(overhead);
    }

    while data_needed > data_blocks {
        let remainder = data_needed - data_blocks;
        let extra = u32::try_from(remainder.div_ceil(bpg)).unwrap_or(u32::MAX);
        data_blocks = data_blocks.wrapping_add(u64::from(extra.wrapping_mul(bpg32)));
        let overhead = overhead_of(u64::from(groups.wrapping_sub(1)));
        last_start = last_start.wrapping_add(bpg.wrapping_sub(overhead));
        let end = u64::from(groups) + u64::from(extra);
        // Only counts that do not add up need more groups than there are.
        if end > group_count {
            return blocks_count;
        }
        for grp in u64::from(groups)..end {
            let overhead = overhead_of(grp);
            if grp != end - 1 {
                last_start = last_start.wrapping_add(bpg.wrapping_sub(overhead));
            }
            data_blocks = data_blocks.wrapping_sub(overhead);
        }
        groups = groups.wrapping_add(extra);
        extra_groups += i64::from(extra);
        if flex_bg && extra_groups > flexbg_size {
            extra_groups = flexbg_size - (i64::from(groups) & (flexbg_size - 1));
            data_needed = data_needed.wrapping_add_signed(itb.wrapping_mul(extra_groups));
            extra_groups = i64::from(groups) % flexbg_size;
        }
    }

    let mut overhead = overhead_of(u64::from(groups.wrapping_sub(1)));
    overhead += if last_start < data_needed {
        (data_needed - last_start).max(50)
    } else {
        50
    };
    overhead += u64::from(sb.s_first_data_block);
    let mut needed = u64::from(groups.wrapping_sub(1).wrapping_mul(bpg32)).wrapping_add(overhead);
    if let Some(d) = descs.get(usize::try_from(groups.wrapping_sub(1)).unwrap_or(usize::MAX)) {
        needed = needed.max(d.bg_inode_table.saturating_add(sb.inode_table_blocks()));
    }
    if needed >= blocks_count {
        return blocks_count;
    }
    if sb.has_incompat(incompat::EXTENTS) {
        needed += (blocks_count - needed) / 500;
    }
    needed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the counts say, the estimate is computed without a panic
    /// or an endless loop, and never exceeds the current size.
    #[test]
    fn corrupt_counts_never_panic() {
        let mut sb = Superblock::zeroed();
        sb.s_blocks_count = 1 << 20;
        sb.s_blocks_per_group = 8;
        sb.s_inodes_per_group = 1;
        sb.s_inodes_count = u32::MAX;
        sb.s_log_block_size = 2;
        sb.s_log_groups_per_flex = 40;
        let descs = vec![
            GroupDesc {
                bg_free_blocks_count: u32::MAX,
                bg_inode_table: u64::MAX,
                ..GroupDesc::default()
            };
            3
        ];
        assert!(minimum_size(&sb, &descs) <= sb.s_blocks_count);
        assert_eq!(minimum_size(&sb, &[]), sb.s_blocks_count);
    }
}
