//! Per-AG btrees of any height (free space by block and by size, inodes,
//! free inodes): reading every record by walking down from the root, and
//! building a whole tree again from a sorted record list.
//!
//! Short-form blocks have a 56-byte header; leaves hold
//! records, nodes hold keys (the first record's key fields) and then, at
//! `56 + maxrecs·keysize`, 4-byte AG block pointers. A rebuilt tree
//! spreads records evenly over `ceil(n / maxrecs)` leaves (every block but
//! the root at least half full, as xfs_repair requires) and links the
//! blocks of each level through their sibling pointers.

use super::btree::{BTREE_CRC_OFF, NULLAGBLOCK, XFS_BTREE_SBLOCK_CRC_LEN, parse_header};
use super::crc;
use super::error::{Error, Result, Structure};
use crate::bytes::{read_u16be, read_u32be, write_u16be, write_u32be, write_u64be};

/// What kind of records a tree holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeKind {
    /// The block magic.
    pub magic: u32,
    /// For messages.
    pub structure: Structure,
    /// Bytes per record.
    pub recsize: usize,
    /// Bytes per key (a prefix of the record's fields).
    pub keysize: usize,
}

/// Free space by block number (`AB3B`).
pub const BNO: TreeKind = TreeKind {
    magic: super::btree::XFS_ABTB_CRC_MAGIC,
    structure: Structure::Bnobt,
    recsize: 8,
    keysize: 8,
};
/// Free space by size (`AB3C`).
pub const CNT: TreeKind = TreeKind {
    magic: super::btree::XFS_ABTC_CRC_MAGIC,
    structure: Structure::Cntbt,
    recsize: 8,
    keysize: 8,
};
/// Inode chunks (`IAB3`).
pub const INO: TreeKind = TreeKind {
    magic: super::btree::XFS_IBT_CRC_MAGIC,
    structure: Structure::Inobt,
    recsize: 16,
    keysize: 4,
};
/// Inode chunks with free inodes (`FIB3`).
pub const FINO: TreeKind = TreeKind {
    magic: super::btree::XFS_FIBT_CRC_MAGIC,
    structure: Structure::Finobt,
    recsize: 16,
    keysize: 4,
};
/// Deepest per-AG btree accepted (the kernel's limits are below 10).
pub const MAX_LEVELS: u32 = 10;

impl TreeKind {
    /// Records per leaf of a `blocksize`-byte block.
    pub fn leaf_max(&self, blocksize: usize) -> usize {
        (blocksize.saturating_sub(XFS_BTREE_SBLOCK_CRC_LEN) / self.recsize).max(2)
    }

    /// Keys (and pointers) per node.
    pub fn node_max(&self, blocksize: usize) -> usize {
        (blocksize.saturating_sub(XFS_BTREE_SBLOCK_CRC_LEN) / (self.keysize + 4)).max(2)
    }

    /// The number of blocks on each level (leaves first) of a tree of
    /// `nrecs` records.
    pub fn shape(&self, nrecs: usize, blocksize: usize) -> Vec<usize> {
        let mut levels = vec![nrecs.div_ceil(self.leaf_max(blocksize)).max(1)];
        while levels[levels.len() - 1] > 1 {
            let n = levels[levels.len() - 1].div_ceil(self.node_max(blocksize));
            levels.push(n);
        }
        levels
    }

    /// Total blocks of a tree of `nrecs` records.
    pub fn blocks(&self, nrecs: usize, blocksize: usize) -> usize {
        self.shape(nrecs, blocksize).iter().sum()
    }
}

/// Reads every record of a tree rooted at `root` with `levels` levels:
/// the records (raw, `recsize` bytes each, in key order) and every block
/// of the tree. `daddr(agbno)` gives a block's sector address and
/// `read(agbno)` its bytes.
#[allow(clippy::too_many_arguments)]
pub fn read(
    kind: &TreeKind,
    agno: u32,
    root: u32,
    levels: u32,
    blocksize: usize,
    uuid: &[u8; 16],
    daddr: impl Fn(u32) -> u64,
    mut read: impl FnMut(u32) -> Result<Vec<u8>>,
) -> Result<(Vec<Vec<u8>>, Vec<u32>)> {
    let corrupt = |d: String| Error::corrupt(kind.structure, agno, d);
    if levels == 0 || levels > MAX_LEVELS {
        return Err(corrupt(format!("tree of {levels} levels")));
    }
    let mut recs = Vec::new();
    let mut blocks = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut ptrs = vec![root];
    for level in (0..levels).rev() {
        let mut next = Vec::new();
        for &agbno in &ptrs {
            if agbno == NULLAGBLOCK || !seen.insert(agbno) {
                return Err(corrupt(format!("block {agbno} is null or appears twice")));
            }
            let b = read(agbno)?;
            let h = parse_header(&b, kind.structure, agno, kind.magic, uuid, daddr(agbno))?;
            if u32::from(h.level) != level {
                return Err(corrupt(format!(
                    "block {agbno} has level {} where {level} was expected",
                    h.level
                )));
            }
            blocks.push(agbno);
            let n = usize::from(h.numrecs);
            if level == 0 {
                if n > kind.leaf_max(blocksize) {
                    return Err(corrupt(format!("block {agbno} holds {n} records")));
                }
                for i in 0..n {
                    let o = XFS_BTREE_SBLOCK_CRC_LEN + i * kind.recsize;
                    recs.push(b[o..o + kind.recsize].to_vec());
                }
            } else {
                let max = kind.node_max(blocksize);
                if n == 0 || n > max {
                    return Err(corrupt(format!("node {agbno} holds {n} pointers")));
                }
                let at = XFS_BTREE_SBLOCK_CRC_LEN + max * kind.keysize;
                next.extend((0..n).map(|i| read_u32be(&b, at + 4 * i)));
            }
        }
        ptrs = next;
    }
    Ok((recs, blocks))
}

/// A built tree block: its AG block and bytes.
pub type Block = (u32, Vec<u8>);

/// Builds a whole tree of `recs` (raw records, in key order) into exactly
/// the blocks `blocks` (as many as [`TreeKind::blocks`] says; the first
/// becomes the root). Returns the blocks and the tree's height.
pub fn build(
    kind: &TreeKind,
    agno: u32,
    recs: &[&[u8]],
    blocks: &[u32],
    blocksize: usize,
    uuid: &[u8; 16],
    daddr: impl Fn(u32) -> u64,
) -> std::result::Result<(Vec<Block>, u32), String> {
    let shape = kind.shape(recs.len(), blocksize);
    let need: usize = shape.iter().sum();
    if need != blocks.len() {
        return Err(format!(
            "{} records need {need} blocks, {} were given",
            recs.len(),
            blocks.len()
        ));
    }
    // Assign blocks top-down so that the root is blocks[0].
    let mut per_level: Vec<Vec<u32>> = vec![Vec::new(); shape.len()];
    let mut pool = blocks.iter().copied();
    for (level, &n) in shape.iter().enumerate().rev() {
        per_level[level] = pool.by_ref().take(n).collect();
    }
    let mut out = Vec::with_capacity(need);
    // (first key, agbno) of the level just built.
    let mut items: Vec<(Vec<u8>, u32)> = Vec::new();
    for (level, addrs) in per_level.iter().enumerate() {
        let count = if level == 0 { recs.len() } else { items.len() };
        let nblocks = addrs.len();
        let mut next = Vec::with_capacity(nblocks);
        let mut idx = 0;
        for (j, &agbno) in addrs.iter().enumerate() {
            let n = count / nblocks + usize::from(j < count % nblocks);
            let mut b = vec![0u8; blocksize];
            write_u32be(&mut b, 0x00, kind.magic);
            write_u16be(&mut b, 0x04, level as u16);
            write_u16be(&mut b, 0x06, n as u16);
            let left = if j == 0 { NULLAGBLOCK } else { addrs[j - 1] };
            let right = addrs.get(j + 1).copied().unwrap_or(NULLAGBLOCK);
            write_u32be(&mut b, 0x08, left);
            write_u32be(&mut b, 0x0c, right);
            write_u64be(&mut b, 0x10, daddr(agbno));
            write_u64be(&mut b, 0x18, 0);
            b[0x20..0x30].copy_from_slice(uuid);
            write_u32be(&mut b, 0x30, agno);
            let first_key;
            if level == 0 {
                let mine = &recs[idx..idx + n];
                first_key = mine
                    .first()
                    .map_or_else(|| vec![0u8; kind.keysize], |r| r[..kind.keysize].to_vec());
                for (i, r) in mine.iter().enumerate() {
                    let o = XFS_BTREE_SBLOCK_CRC_LEN + i * kind.recsize;
                    b[o..o + kind.recsize].copy_from_slice(r);
                }
            } else {
                let kids = &items[idx..idx + n];
                first_key = kids.first().map_or_else(Vec::new, |k| k.0.clone());
                let max = kind.node_max(blocksize);
                let at = XFS_BTREE_SBLOCK_CRC_LEN + max * kind.keysize;
                for (i, (key, ptr)) in kids.iter().enumerate() {
                    let o = XFS_BTREE_SBLOCK_CRC_LEN + i * kind.keysize;
                    b[o..o + kind.keysize].copy_from_slice(key);
                    write_u32be(&mut b, at + 4 * i, *ptr);
                }
            }
            crc::update(&mut b, BTREE_CRC_OFF);
            out.push((agbno, b));
            next.push((first_key, agbno));
            idx += n;
        }
        items = next;
    }
    Ok((out, shape.len() as u32))
}

/// The numrecs field of a block (for tests and checks).
pub fn numrecs(b: &[u8]) -> u16 {
    read_u16be(b, 0x06)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test may panic
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(BNO.shape(0, 4096), vec![1]);
        assert_eq!(BNO.shape(505, 4096), vec![1]);
        assert_eq!(BNO.shape(506, 4096), vec![2, 1]);
        assert_eq!(INO.leaf_max(4096), 252);
        assert_eq!(INO.node_max(4096), 505);
        assert_eq!(BNO.node_max(4096), 336);
    }

    #[test]
    fn build_and_read_every_height() {
        for n in [0usize, 1, 505, 506, 60_000] {
            let recs: Vec<Vec<u8>> = (0..n as u32)
                .map(|i| {
                    let mut r = vec![0u8; 8];
                    write_u32be(&mut r, 0, i * 3);
                    write_u32be(&mut r, 4, 1);
                    r
                })
                .collect();
            let refs: Vec<&[u8]> = recs.iter().map(|r| r.as_slice()).collect();
            let need = BNO.blocks(n, 1024);
            let blocks: Vec<u32> = (0..need as u32).map(|i| 100 + i).collect();
            let (built, levels) = build(&BNO, 2, &refs, &blocks, 1024, &[3; 16], |b| {
                u64::from(b) * 2
            })
            .unwrap();
            let map: std::collections::HashMap<u32, Vec<u8>> = built.into_iter().collect();
            let (got, used) = read(
                &BNO,
                2,
                100,
                levels,
                1024,
                &[3; 16],
                |b| u64::from(b) * 2,
                |b| Ok(map[&b].clone()),
            )
            .unwrap();
            assert_eq!(got, recs, "n = {n}");
            assert_eq!(used.len(), need);
            // Every non-root block is at least half full.
            for (agbno, b) in &map {
                if *agbno != 100 {
                    let half = if b[4..6] == [0, 0] {
                        BNO.leaf_max(1024) / 2
                    } else {
                        BNO.node_max(1024) / 2
                    };
                    assert!(usize::from(numrecs(b)) >= half);
                }
            }
        }
    }
}
