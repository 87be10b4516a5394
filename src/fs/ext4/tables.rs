//! Writing the per-filesystem tables shared by mkfs and resize2fs: the
//! superblock and its backups, the group descriptor table and its copies,
//! and group bitmaps rendered from a [`BlockSet`].

use super::bitmap::{BlockSet, bitmap_csum, render};
use super::features::incompat;
use super::group_desc::GroupDesc;
use super::superblock::{STATE_VALID, SUPERBLOCK_OFFSET, Superblock};
use crate::blockdev::{WriteBatch, WriteOp};

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

/// Sorts the data writes of `batch` by offset and merges touching ones
/// (a flex group's 16 bitmaps, the reserved GDT blocks, ... become one
/// write each), keeping discards first and the last write (the primary
/// superblock) last. Within one commit the blockdev layer's undo log makes
/// the order irrelevant for crash safety; the superblock stays last anyway
/// so a filesystem never points at metadata not yet written. When two
/// writes overlap, the batch is returned unchanged (order would matter).
pub fn coalesce(batch: WriteBatch) -> WriteBatch {
    // Plan on references first: leading discards, then data writes only.
    let lead = batch
        .ops
        .iter()
        .take_while(|op| matches!(op, WriteOp::Discard { .. }))
        .count();
    let mut spans: Vec<(u64, u64, usize)> = Vec::new();
    for (i, op) in batch.ops.iter().enumerate().skip(lead) {
        match op {
            WriteOp::Data { offset, bytes } => spans.push((*offset, bytes.len() as u64, i)),
            WriteOp::Discard { .. } => return batch,
        }
    }
    let Some(last) = spans.pop() else {
        return batch;
    };
    spans.sort_unstable_by_key(|&(o, _, _)| o);
    // Runs of touching writes; any overlap (also with the last write)
    // keeps the batch as it is.
    let mut runs: Vec<(u64, u64, Vec<usize>)> = Vec::new();
    for &(off, len, idx) in &spans {
        if off < last.0 + last.1 && last.0 < off + len {
            return batch;
        }
        match runs.last_mut() {
            Some((o, l, v)) if *o + *l == off => {
                *l += len;
                v.push(idx);
            }
            Some((o, l, _)) if *o + *l > off => return batch,
            _ => runs.push((off, len, vec![idx])),
        }
    }
    // Move the bytes: a run of one write keeps its buffer, longer runs get
    // one buffer allocated at its final size.
    let mut ops: Vec<WriteOp> = batch.ops;
    let mut take = |i: usize| match std::mem::replace(&mut ops[i], WriteOp::Discard { range: 0..0 })
    {
        WriteOp::Data { bytes, .. } => bytes,
        WriteOp::Discard { .. } => Vec::new(),
    };
    let mut out_ops: Vec<WriteOp> = Vec::with_capacity(runs.len() + lead + 1);
    let mut merged = Vec::with_capacity(runs.len());
    for (off, len, idxs) in runs {
        let bytes = if idxs.len() == 1 {
            take(idxs[0])
        } else {
            let mut b = Vec::with_capacity(len as usize);
            for i in idxs {
                b.extend_from_slice(&take(i));
            }
            b
        };
        merged.push(WriteOp::Data { offset: off, bytes });
    }
    let last_bytes = take(last.2);
    out_ops.extend(ops.drain(..lead));
    out_ops.extend(merged);
    out_ops.push(WriteOp::Data {
        offset: last.0,
        bytes: last_bytes,
    });
    WriteBatch {
        new_len: batch.new_len,
        ops: out_ops,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn coalesce_merges_and_keeps_last() {
        let mut b = WriteBatch::new();
        b.discard(0..100);
        b.write(20, vec![2; 10]);
        b.write(10, vec![1; 10]);
        b.write(40, vec![4; 5]);
        b.write(1024, vec![9; 4]);
        let c = coalesce(b.clone());
        assert_eq!(c.ops.len(), 4);
        assert_eq!(
            c.ops[1],
            WriteOp::Data {
                offset: 10,
                bytes: [vec![1; 10], vec![2; 10]].concat()
            }
        );
        assert_eq!(
            c.ops[3],
            WriteOp::Data {
                offset: 1024,
                bytes: vec![9; 4]
            }
        );
        let mut o = WriteBatch::new();
        o.write(0, vec![1; 10]);
        o.write(5, vec![2; 10]);
        o.write(100, vec![3; 1]);
        assert_eq!(coalesce(o.clone()), o);
    }
}
