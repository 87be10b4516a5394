//! File block maps: the 16-byte extent record
//! (`xfs_bmbt_rec`), a data or attribute fork in extents format (an array
//! of records in the inode) or btree format (`xfs_bmdr_block` root in the
//! inode, long-form `BMA3` blocks below it, any number of levels), how to
//! read either into a sorted extent list, and how to lay a list out again.
//!
//! The btree is always rebuilt whole from the extent list: leaves hold
//! records evenly spread (so every block below the root's children is at
//! least half full, as xfs_repair requires), nodes likewise, and the root
//! in the inode holds at most `(fork size − 4) / 16` pointers. The format
//! follows the count exactly: extents format iff the records fit in the
//! fork, as the kernel and xfs_repair insist.

use super::crc;
use crate::bytes::{read_u16be, read_u32be, read_u64be, write_u16be, write_u32be, write_u64be};

/// `XFS_BMAP_CRC_MAGIC`, "BMA3".
pub const XFS_BMAP_CRC_MAGIC: u32 = 0x424d_4133;
/// Size of the long-form CRC btree block header.
pub const XFS_BTREE_LBLOCK_CRC_LEN: usize = 72;
/// Offset of `bb_crc` in a long-form block.
pub const LBLOCK_CRC_OFF: usize = 64;
/// `XFS_MAX_BMBT_EXTLEN`: the longest extent one record holds (21 bits).
pub const MAX_EXTLEN: u64 = (1 << 21) - 1;
/// `NULLFSBLOCK`.
pub const NULLFSBLOCK: u64 = u64::MAX;
/// Size of an extent record.
pub const REC_SIZE: usize = 16;
/// Size of the in-inode root header (`xfs_bmdr_block`).
pub const BMDR_HDR: usize = 4;
/// Deepest bmap btree the kernel builds for a data fork of 2^32 extents
/// is 5 levels; refuse anything deeper as corrupt.
pub const MAX_LEVELS: u16 = 9;

/// One mapping of file blocks to disk blocks (`struct xfs_bmbt_irec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Extent {
    /// First file block.
    pub off: u64,
    /// First disk block, segmented (`agno << agblklog | agbno`).
    pub start: u64,
    /// Number of blocks.
    pub len: u64,
    /// Allocated but never written: reads as zeros.
    pub unwritten: bool,
}

impl Extent {
    /// One past the last file block.
    pub fn end(&self) -> u64 {
        self.off + self.len
    }

    /// Decodes a record (big-endian 128 bits: flag, 54-bit offset, 52-bit
    /// start block, 21-bit count).
    pub fn decode(b: &[u8]) -> Self {
        let l0 = read_u64be(b, 0);
        let l1 = read_u64be(b, 8);
        Extent {
            unwritten: l0 >> 63 != 0,
            off: (l0 >> 9) & ((1 << 54) - 1),
            start: ((l0 & 0x1ff) << 43) | (l1 >> 21),
            len: l1 & MAX_EXTLEN,
        }
    }

    /// Encodes a record (offset, start and length must fit their fields).
    pub fn encode(&self) -> [u8; 16] {
        let l0 = (u64::from(self.unwritten) << 63)
            | ((self.off & ((1 << 54) - 1)) << 9)
            | ((self.start >> 43) & 0x1ff);
        let l1 = (self.start << 21) | (self.len & MAX_EXTLEN);
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&l0.to_be_bytes());
        b[8..].copy_from_slice(&l1.to_be_bytes());
        b
    }
}

/// Why a block map cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BmapError {
    /// A btree block is damaged.
    #[error("bmap btree block {fsb}: {detail}")]
    Block {
        /// The block (segmented).
        fsb: u64,
        /// What is wrong.
        detail: String,
    },
    /// The in-inode part is damaged.
    #[error("{0}")]
    Fork(String),
    /// The extents overlap, are unsorted, or point outside the filesystem.
    #[error("extent {index} ({ext:?}): {detail}")]
    Extent {
        /// Its position in the fork.
        index: usize,
        /// The record.
        ext: Extent,
        /// What is wrong.
        detail: String,
    },
}

/// The block-size dependent capacities of a bmap btree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BmbtGeometry {
    /// Filesystem block size.
    pub blocksize: usize,
    /// Records per leaf block.
    pub leaf_max: usize,
    /// Key/pointer pairs per node block.
    pub node_max: usize,
}

impl BmbtGeometry {
    /// The capacities for `blocksize`-byte blocks.
    pub fn new(blocksize: usize) -> Self {
        let space = blocksize.saturating_sub(XFS_BTREE_LBLOCK_CRC_LEN);
        BmbtGeometry {
            blocksize,
            leaf_max: (space / REC_SIZE).max(2),
            node_max: (space / 16).max(2),
        }
    }

    /// Key/pointer pairs an in-inode root of `fork_size` bytes holds.
    pub fn root_max(fork_size: usize) -> usize {
        fork_size.saturating_sub(BMDR_HDR) / 16
    }

    /// Records an extents-format fork of `fork_size` bytes holds.
    pub fn inline_max(fork_size: usize) -> usize {
        fork_size / REC_SIZE
    }

    /// The block count of each level below the root (leaves first) of a
    /// btree holding `nrecs` records under a root of `fork_size` bytes;
    /// empty when the records fit in the fork (extents format).
    pub fn shape(&self, nrecs: usize, fork_size: usize) -> Vec<usize> {
        if nrecs <= Self::inline_max(fork_size) {
            return Vec::new();
        }
        let root_max = Self::root_max(fork_size).max(1);
        let mut levels = vec![nrecs.div_ceil(self.leaf_max)];
        let mut n = levels[0];
        while n > root_max {
            n = n.div_ceil(self.node_max);
            levels.push(n);
        }
        levels
    }

    /// Blocks (below the in-inode root) a fork of `nrecs` records needs.
    pub fn blocks_needed(&self, nrecs: usize, fork_size: usize) -> usize {
        self.shape(nrecs, fork_size).iter().sum()
    }
}

/// Where a btree block is and what owns it, for its header.
pub trait BlockAddr {
    /// The 512-byte sector address (`blkno`) of segmented block `fsb`.
    fn daddr(&self, fsb: u64) -> u64;
}

/// Reads a fork in extents format: `nextents` records from `fork`.
pub fn read_extents(fork: &[u8], nextents: u64) -> Result<Vec<Extent>, BmapError> {
    let n = usize::try_from(nextents).unwrap_or(usize::MAX);
    if n > fork.len() / REC_SIZE {
        return Err(BmapError::Fork(format!(
            "{nextents} extents do not fit in a {}-byte fork",
            fork.len()
        )));
    }
    Ok((0..n)
        .map(|i| Extent::decode(&fork[i * REC_SIZE..]))
        .collect())
}

/// The root of a btree-format fork: its level and child pointers.
fn parse_root(fork: &[u8]) -> Result<(u16, Vec<u64>), BmapError> {
    if fork.len() < BMDR_HDR {
        return Err(BmapError::Fork(
            "btree root does not fit in the fork".into(),
        ));
    }
    let bb_level = read_u16be(fork, 0);
    let bb_numrecs = usize::from(read_u16be(fork, 2));
    let maxrecs = BmbtGeometry::root_max(fork.len());
    if bb_level == 0 || bb_level > MAX_LEVELS {
        return Err(BmapError::Fork(format!("btree root level {bb_level}")));
    }
    if bb_numrecs == 0 || bb_numrecs > maxrecs {
        return Err(BmapError::Fork(format!(
            "btree root holds {bb_numrecs} pointers (at most {maxrecs})"
        )));
    }
    let ptr_off = BMDR_HDR + maxrecs * 8;
    let ptrs = (0..bb_numrecs)
        .map(|i| read_u64be(fork, ptr_off + 8 * i))
        .collect();
    Ok((bb_level, ptrs))
}

/// Reads a btree-format fork: every leaf record in key order, and every
/// block of the tree (for freeing or reuse). `read_block(fsb)` returns a
/// block's bytes, or an error message; `owner` is the inode.
pub fn read_btree(
    fork: &[u8],
    owner: u64,
    geo: &BmbtGeometry,
    mut read_block: impl FnMut(u64) -> Result<Vec<u8>, String>,
) -> Result<(Vec<Extent>, Vec<u64>), BmapError> {
    let (root_level, mut level_ptrs) = parse_root(fork)?;
    let mut blocks = Vec::new();
    let mut extents = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for level in (0..root_level).rev() {
        let mut next = Vec::new();
        for &fsb in &level_ptrs {
            if !seen.insert(fsb) {
                return Err(BmapError::Block {
                    fsb,
                    detail: "block appears twice in the tree".into(),
                });
            }
            let bad = |detail: String| BmapError::Block { fsb, detail };
            let b = read_block(fsb).map_err(bad)?;
            if b.len() != geo.blocksize {
                return Err(bad(format!(
                    "{} bytes, not a {}-byte block",
                    b.len(),
                    geo.blocksize
                )));
            }
            check_block(&b, owner, level).map_err(bad)?;
            blocks.push(fsb);
            let numrecs = usize::from(read_u16be(&b, 6));
            if level == 0 {
                if numrecs > geo.leaf_max {
                    return Err(bad(format!("{numrecs} records do not fit")));
                }
                for i in 0..numrecs {
                    extents.push(Extent::decode(
                        &b[XFS_BTREE_LBLOCK_CRC_LEN + i * REC_SIZE..],
                    ));
                }
            } else {
                if numrecs == 0 || numrecs > geo.node_max {
                    return Err(bad(format!("{numrecs} pointers in a node")));
                }
                let ptr_off = XFS_BTREE_LBLOCK_CRC_LEN + geo.node_max * 8;
                next.extend((0..numrecs).map(|i| read_u64be(&b, ptr_off + 8 * i)));
            }
        }
        level_ptrs = next;
    }
    Ok((extents, blocks))
}

/// Checks a long-form bmbt block's magic, CRC, level and owner.
fn check_block(b: &[u8], owner: u64, level: u16) -> Result<(), String> {
    if b.len() < XFS_BTREE_LBLOCK_CRC_LEN {
        return Err(format!("only {} bytes", b.len()));
    }
    let bb_magic = read_u32be(b, 0);
    if bb_magic != XFS_BMAP_CRC_MAGIC {
        return Err(format!("bad magic {bb_magic:#010x}"));
    }
    let (stored, computed) = crc::check(b, LBLOCK_CRC_OFF);
    if stored != computed {
        return Err(format!(
            "bad CRC: stored {stored:#010x}, computed {computed:#010x}"
        ));
    }
    let bb_level = read_u16be(b, 4);
    if bb_level != level {
        return Err(format!("level {bb_level} where {level} was expected"));
    }
    let bb_owner = read_u64be(b, 56);
    if bb_owner != owner {
        return Err(format!("owned by inode {bb_owner}"));
    }
    Ok(())
}

/// Checks that extents are sorted, non-empty, non-overlapping and fit the
/// 54-bit offset field; `valid_start(start, len)` says whether the disk
/// range lies inside the filesystem.
pub fn check_extents(
    exts: &[Extent],
    valid_start: impl Fn(u64, u64) -> bool,
) -> Result<(), BmapError> {
    let mut prev_end = 0u64;
    for (index, ext) in exts.iter().enumerate() {
        let bad = |detail: &str| BmapError::Extent {
            index,
            ext: *ext,
            detail: detail.into(),
        };
        if ext.len == 0 {
            return Err(bad("zero length"));
        }
        if index > 0 && ext.off < prev_end {
            return Err(bad("overlaps or precedes the previous extent"));
        }
        if !valid_start(ext.start, ext.len) {
            return Err(bad("lies outside the filesystem"));
        }
        prev_end = ext.off.saturating_add(ext.len);
        if prev_end > 1 << 54 {
            return Err(bad("ends past the largest file offset"));
        }
    }
    Ok(())
}

/// A fork laid out: the bytes for the inode's fork area, the format, and
/// the btree blocks to write (segmented address, bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltFork {
    /// `di_format` (EXTENTS or BTREE).
    pub format: u8,
    /// The fork area's contents.
    pub fork: Vec<u8>,
    /// Btree blocks, if any.
    pub blocks: Vec<(u64, Vec<u8>)>,
}

/// Lays out `exts` in a fork of `fork_size` bytes, using exactly the
/// blocks in `blocks` (as many as [`BmbtGeometry::blocks_needed`] says)
/// for the btree. `uuid` is the metadata uuid, `owner` the inode.
pub fn build(
    exts: &[Extent],
    fork_size: usize,
    geo: &BmbtGeometry,
    blocks: &[u64],
    addr: &dyn BlockAddr,
    uuid: &[u8; 16],
    owner: u64,
) -> Result<BuiltFork, String> {
    let shape = geo.shape(exts.len(), fork_size);
    let need: usize = shape.iter().sum();
    if need != blocks.len() {
        return Err(format!(
            "{} extents need {need} bmap btree blocks, {} were given",
            exts.len(),
            blocks.len()
        ));
    }
    let mut fork = vec![0u8; fork_size];
    if shape.is_empty() {
        for (i, e) in exts.iter().enumerate() {
            fork[i * REC_SIZE..(i + 1) * REC_SIZE].copy_from_slice(&e.encode());
        }
        return Ok(BuiltFork {
            format: super::dinode::format::EXTENTS,
            fork,
            blocks: Vec::new(),
        });
    }
    let mut out = Vec::with_capacity(need);
    let mut pool = blocks.iter().copied();
    // Current level's entries: (first key, pointer to the block).
    let mut items: Vec<(u64, u64)> = Vec::new();
    for (level, &nblocks) in shape.iter().enumerate() {
        let addrs: Vec<u64> = pool.by_ref().take(nblocks).collect();
        let count = if level == 0 { exts.len() } else { items.len() };
        let mut next = Vec::with_capacity(nblocks);
        let mut idx = 0usize;
        for (j, &fsb) in addrs.iter().enumerate() {
            let n = count / nblocks + usize::from(j < count % nblocks);
            let mut b = vec![0u8; geo.blocksize];
            write_u32be(&mut b, 0, XFS_BMAP_CRC_MAGIC);
            write_u16be(&mut b, 4, level as u16);
            write_u16be(&mut b, 6, n as u16);
            let left = if j == 0 { NULLFSBLOCK } else { addrs[j - 1] };
            let right = addrs.get(j + 1).copied().unwrap_or(NULLFSBLOCK);
            write_u64be(&mut b, 8, left);
            write_u64be(&mut b, 16, right);
            write_u64be(&mut b, 24, addr.daddr(fsb));
            write_u64be(&mut b, 32, 0);
            b[40..56].copy_from_slice(uuid);
            write_u64be(&mut b, 56, owner);
            let first_key;
            if level == 0 {
                let recs = &exts[idx..idx + n];
                first_key = recs.first().map_or(0, |e| e.off);
                for (i, e) in recs.iter().enumerate() {
                    let o = XFS_BTREE_LBLOCK_CRC_LEN + i * REC_SIZE;
                    b[o..o + REC_SIZE].copy_from_slice(&e.encode());
                }
            } else {
                let kids = &items[idx..idx + n];
                first_key = kids.first().map_or(0, |k| k.0);
                let ptr_off = XFS_BTREE_LBLOCK_CRC_LEN + geo.node_max * 8;
                for (i, (key, ptr)) in kids.iter().enumerate() {
                    write_u64be(&mut b, XFS_BTREE_LBLOCK_CRC_LEN + 8 * i, *key);
                    write_u64be(&mut b, ptr_off + 8 * i, *ptr);
                }
            }
            crc::update(&mut b, LBLOCK_CRC_OFF);
            out.push((fsb, b));
            next.push((first_key, fsb));
            idx += n;
        }
        items = next;
    }
    // The root in the inode points at the top level.
    let root_max = BmbtGeometry::root_max(fork_size);
    write_u16be(&mut fork, 0, shape.len() as u16);
    write_u16be(&mut fork, 2, items.len() as u16);
    let ptr_off = BMDR_HDR + root_max * 8;
    for (i, (key, ptr)) in items.iter().enumerate() {
        write_u64be(&mut fork, BMDR_HDR + 8 * i, *key);
        write_u64be(&mut fork, ptr_off + 8 * i, *ptr);
    }
    Ok(BuiltFork {
        format: super::dinode::format::BTREE,
        fork,
        blocks: out,
    })
}

/// Sorts nothing, merges adjacent extents that continue each other on disk
/// with the same state (up to [`MAX_EXTLEN`] blocks per record).
pub fn merge_adjacent(exts: &mut Vec<Extent>) {
    let mut out: Vec<Extent> = Vec::with_capacity(exts.len());
    for e in exts.drain(..) {
        if let Some(last) = out.last_mut() {
            if last.end() == e.off
                && last.start + last.len == e.start
                && last.unwritten == e.unwritten
                && last.len + e.len <= MAX_EXTLEN
            {
                last.len += e.len;
                continue;
            }
        }
        out.push(e);
    }
    *exts = out;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test may panic
mod tests {
    use super::*;

    struct Lin;
    impl BlockAddr for Lin {
        fn daddr(&self, fsb: u64) -> u64 {
            fsb * 8
        }
    }

    #[test]
    fn record_codec() {
        let e = Extent {
            off: 0x12_3456_789a,
            start: (3 << 24) | 77,
            len: MAX_EXTLEN,
            unwritten: true,
        };
        assert_eq!(Extent::decode(&e.encode()), e);
        // A one-block file's extent, as xfs_db prints u3.bmx: [0,10,1,0]
        // (startoff, startblock, blockcount, extentflag).
        let one = Extent {
            off: 0,
            start: 10,
            len: 1,
            unwritten: false,
        };
        assert_eq!(
            one.encode(),
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x40, 0, 1]
        );
    }

    fn exts(n: usize) -> Vec<Extent> {
        (0..n as u64)
            .map(|i| Extent {
                off: i * 10,
                start: 1000 + i * 20,
                len: 5,
                unwritten: i % 2 == 0,
            })
            .collect()
    }

    #[test]
    fn shapes() {
        let g = BmbtGeometry::new(4096);
        assert_eq!((g.leaf_max, g.node_max), (251, 251));
        assert_eq!(BmbtGeometry::root_max(336), 20);
        assert!(g.shape(21, 336).is_empty());
        assert_eq!(g.shape(22, 336), vec![1]);
        assert_eq!(g.shape(20 * 251, 336), vec![20]);
        assert_eq!(g.shape(20 * 251 + 1, 336), vec![21, 1]);
        assert_eq!(g.shape(13, 192), vec![1]);
    }

    #[test]
    fn build_and_read_back_every_shape() {
        let g = BmbtGeometry::new(1024);
        for n in [0, 1, 21, 22, 200, 5000] {
            let e = exts(n);
            let need = g.blocks_needed(n, 336);
            let blocks: Vec<u64> = (0..need as u64).map(|i| 50_000 + i).collect();
            let built = build(&e, 336, &g, &blocks, &Lin, &[7; 16], 131).unwrap();
            let map: std::collections::HashMap<u64, Vec<u8>> =
                built.blocks.iter().cloned().collect();
            let (got, used) = if built.format == crate::fs::xfs::dinode::format::EXTENTS {
                (read_extents(&built.fork, n as u64).unwrap(), Vec::new())
            } else {
                read_btree(&built.fork, 131, &g, |fsb| {
                    map.get(&fsb).cloned().ok_or_else(|| "missing".to_string())
                })
                .unwrap()
            };
            assert_eq!(got, e, "n = {n}");
            let mut used = used;
            used.sort();
            assert_eq!(used, blocks);
            // A wrong owner is refused.
            if !built.blocks.is_empty() {
                assert!(
                    read_btree(&built.fork, 132, &g, |fsb| {
                        map.get(&fsb).cloned().ok_or_else(|| "missing".to_string())
                    })
                    .is_err()
                );
            }
        }
    }

    #[test]
    fn merging() {
        let mut v = vec![
            Extent {
                off: 0,
                start: 100,
                len: 4,
                unwritten: false,
            },
            Extent {
                off: 4,
                start: 104,
                len: 4,
                unwritten: false,
            },
            Extent {
                off: 8,
                start: 108,
                len: 4,
                unwritten: true,
            },
        ];
        merge_adjacent(&mut v);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].len, 8);
        assert!(check_extents(&v, |_, _| true).is_ok());
        v[1].off = 7;
        assert!(check_extents(&v, |_, _| true).is_err());
    }
}
