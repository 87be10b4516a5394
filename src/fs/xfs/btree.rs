//! Short-form CRC btree blocks, `struct xfs_btree_block` with the
//! `bb_u.s` header: the per-AG btrees (free space by block and by
//! size, inodes, free inodes, refcounts, reverse mappings). ebsim writes
//! single-leaf trees and reads leaves of the free-space trees.

use super::crc;
use super::error::{Error, Result, Structure};
use super::verify::Problem;
use crate::bytes::{read_u16be, read_u32be, read_u64be, write_u16be, write_u32be, write_u64be};

/// `XFS_ABTB_CRC_MAGIC`, "AB3B": free space by block number.
pub const XFS_ABTB_CRC_MAGIC: u32 = 0x4142_3342;
/// `XFS_ABTC_CRC_MAGIC`, "AB3C": free space by size.
pub const XFS_ABTC_CRC_MAGIC: u32 = 0x4142_3343;
/// `XFS_IBT_CRC_MAGIC`, "IAB3": inodes.
pub const XFS_IBT_CRC_MAGIC: u32 = 0x4941_4233;
/// `XFS_FIBT_CRC_MAGIC`, "FIB3": inodes with free slots.
pub const XFS_FIBT_CRC_MAGIC: u32 = 0x4649_4233;
/// `XFS_REFC_CRC_MAGIC`, "R3FC": refcounts.
pub const XFS_REFC_CRC_MAGIC: u32 = 0x5233_4643;
/// `XFS_RMAP_CRC_MAGIC`, "RMB3": reverse mappings.
pub const XFS_RMAP_CRC_MAGIC: u32 = 0x524d_4233;
/// Size of the short-form CRC header.
pub const XFS_BTREE_SBLOCK_CRC_LEN: usize = 0x38;
/// Offset of `bb_crc`.
pub const BTREE_CRC_OFF: usize = 0x34;
/// `NULLAGBLOCK`.
pub const NULLAGBLOCK: u32 = u32::MAX;

/// A free extent: `struct xfs_alloc_rec` (bnobt and cntbt records).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AllocRec {
    pub startblock: u32,
    pub blockcount: u32,
}

/// An inode chunk record, sparse format: `struct xfs_inobt_rec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InobtRec {
    pub startino: u32,
    pub holemask: u16,
    pub count: u8,
    pub freecount: u8,
    /// Bit set = inode free.
    pub free: u64,
}

/// A reverse-mapping record: `struct xfs_rmap_rec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RmapRec {
    pub startblock: u32,
    pub blockcount: u32,
    pub owner: u64,
    pub offset: u64,
}

/// Special rmap owners (`XFS_RMAP_OWN_*`).
pub mod owner {
    /// Static fs metadata (the AG headers).
    pub const FS: u64 = -3i64 as u64;
    /// The internal log.
    pub const LOG: u64 = -4i64 as u64;
    /// AG metadata: free-space btrees and the AGFL.
    pub const AG: u64 = -5i64 as u64;
    /// Inode btrees.
    pub const INOBT: u64 = -6i64 as u64;
    /// Inode chunks.
    pub const INODES: u64 = -7i64 as u64;
    /// Refcount btree.
    pub const REFC: u64 = -8i64 as u64;
}

/// The header of a short-form CRC btree block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockHeader {
    pub magic: u32,
    pub level: u16,
    pub numrecs: u16,
    pub leftsib: u32,
    pub rightsib: u32,
    /// The block's own address in 512-byte sectors.
    pub blkno: u64,
    pub lsn: u64,
    pub uuid: [u8; 16],
    /// The AG number.
    pub owner: u32,
}

/// Records that fit in one leaf of `blocksize` bytes with `recsize`-byte
/// records (505 alloc records in 4 KiB).
pub fn leaf_capacity(blocksize: usize, recsize: usize) -> usize {
    blocksize.saturating_sub(XFS_BTREE_SBLOCK_CRC_LEN) / recsize.max(1)
}

/// Builds a leaf block: header (level 0, no siblings, lsn 0) then the
/// records as produced by `put`, CRC last.
fn leaf(
    blocksize: usize,
    magic: u32,
    daddr: u64,
    uuid: &[u8; 16],
    agno: u32,
    numrecs: usize,
    put: impl Fn(&mut [u8]),
) -> Vec<u8> {
    let mut b = vec![0u8; blocksize];
    write_u32be(&mut b, 0x00, magic);
    write_u16be(&mut b, 0x04, 0);
    write_u16be(&mut b, 0x06, u16::try_from(numrecs).unwrap_or(u16::MAX));
    write_u32be(&mut b, 0x08, NULLAGBLOCK);
    write_u32be(&mut b, 0x0c, NULLAGBLOCK);
    write_u64be(&mut b, 0x10, daddr);
    write_u64be(&mut b, 0x18, 0);
    b[0x20..0x30].copy_from_slice(uuid);
    write_u32be(&mut b, 0x30, agno);
    put(&mut b[XFS_BTREE_SBLOCK_CRC_LEN..]);
    crc::update(&mut b, BTREE_CRC_OFF);
    b
}

/// A bnobt or cntbt leaf holding `recs` in the given order.
pub fn alloc_leaf(
    blocksize: usize,
    magic: u32,
    daddr: u64,
    uuid: &[u8; 16],
    agno: u32,
    recs: &[AllocRec],
) -> Vec<u8> {
    leaf(blocksize, magic, daddr, uuid, agno, recs.len(), |r| {
        for (i, rec) in recs.iter().enumerate() {
            write_u32be(r, 8 * i, rec.startblock);
            write_u32be(r, 8 * i + 4, rec.blockcount);
        }
    })
}

/// An inobt or finobt leaf.
pub fn inobt_leaf(
    blocksize: usize,
    magic: u32,
    daddr: u64,
    uuid: &[u8; 16],
    agno: u32,
    recs: &[InobtRec],
    sparse: bool,
) -> Vec<u8> {
    leaf(blocksize, magic, daddr, uuid, agno, recs.len(), |r| {
        for (i, rec) in recs.iter().enumerate() {
            let o = 16 * i;
            write_u32be(r, o, rec.startino);
            if sparse {
                write_u16be(r, o + 4, rec.holemask);
                r[o + 6] = rec.count;
                r[o + 7] = rec.freecount;
            } else {
                // Without sparse inodes: a 32-bit free count, no holes.
                write_u32be(r, o + 4, u32::from(rec.freecount));
            }
            write_u64be(r, o + 8, rec.free);
        }
    })
}

/// An rmapbt leaf.
pub fn rmap_leaf(
    blocksize: usize,
    daddr: u64,
    uuid: &[u8; 16],
    agno: u32,
    recs: &[RmapRec],
) -> Vec<u8> {
    leaf(
        blocksize,
        XFS_RMAP_CRC_MAGIC,
        daddr,
        uuid,
        agno,
        recs.len(),
        |r| {
            for (i, rec) in recs.iter().enumerate() {
                let o = 24 * i;
                write_u32be(r, o, rec.startblock);
                write_u32be(r, o + 4, rec.blockcount);
                write_u64be(r, o + 8, rec.owner);
                write_u64be(r, o + 16, rec.offset);
            }
        },
    )
}

/// An empty leaf (any btree).
pub fn empty_leaf(blocksize: usize, magic: u32, daddr: u64, uuid: &[u8; 16], agno: u32) -> Vec<u8> {
    leaf(blocksize, magic, daddr, uuid, agno, 0, |_| {})
}

/// Parses the header of a short-form btree block of AG `agno` that should
/// carry `magic`, belong to the filesystem with metadata uuid `uuid` and sit
/// at sector `daddr`, with the kernel's checks in its order: CRC, magic,
/// uuid, address, owner. The LSN, level, record count and sibling checks
/// need more context (see [`super::verify::check_inobt_block`]).
pub fn parse_header(
    b: &[u8],
    structure: Structure,
    agno: u32,
    magic: u32,
    uuid: &[u8; 16],
    daddr: u64,
) -> Result<BlockHeader> {
    let bad = |p: Problem| Error::metadata(structure, agno, p).at(daddr);
    if b.len() < XFS_BTREE_SBLOCK_CRC_LEN {
        return Err(bad(Problem::TooShort { len: b.len() }));
    }
    let (stored, computed) = crc::check(b, BTREE_CRC_OFF);
    if stored != computed {
        return Err(bad(Problem::BadCrc { stored, computed }));
    }
    let bb_magic = read_u32be(b, 0x00);
    if bb_magic != magic {
        return Err(bad(Problem::BadMagic {
            found: bb_magic,
            expected: magic,
        }));
    }
    let mut bb_uuid = [0u8; 16];
    bb_uuid.copy_from_slice(&b[0x20..0x30]);
    let h = BlockHeader {
        magic: bb_magic,
        level: read_u16be(b, 0x04),
        numrecs: read_u16be(b, 0x06),
        leftsib: read_u32be(b, 0x08),
        rightsib: read_u32be(b, 0x0c),
        blkno: read_u64be(b, 0x10),
        lsn: read_u64be(b, 0x18),
        uuid: bb_uuid,
        owner: read_u32be(b, 0x30),
    };
    if h.uuid != *uuid {
        return Err(bad(Problem::ForeignUuid { found: h.uuid }));
    }
    if h.blkno != daddr {
        return Err(bad(Problem::BlockAddress { found: h.blkno }));
    }
    if h.owner != agno {
        return Err(bad(Problem::BlockOwner { found: h.owner }));
    }
    Ok(h)
}

/// Parses a bnobt/cntbt leaf: its header and records. Fails on a node
/// (level > 0) or a record count past the block.
pub fn parse_alloc_leaf(
    b: &[u8],
    structure: Structure,
    agno: u32,
    magic: u32,
    uuid: &[u8; 16],
    daddr: u64,
) -> Result<(BlockHeader, Vec<AllocRec>)> {
    let h = parse_header(b, structure, agno, magic, uuid, daddr)?;
    if h.level != 0 {
        return Err(Error::corrupt(
            structure,
            agno,
            format!("level {} is not a leaf", h.level),
        ));
    }
    let n = usize::from(h.numrecs);
    if n > leaf_capacity(b.len(), 8) {
        return Err(Error::corrupt(
            structure,
            agno,
            format!("{n} records do not fit"),
        ));
    }
    let recs = (0..n)
        .map(|i| AllocRec {
            startblock: read_u32be(b, XFS_BTREE_SBLOCK_CRC_LEN + 8 * i),
            blockcount: read_u32be(b, XFS_BTREE_SBLOCK_CRC_LEN + 8 * i + 4),
        })
        .collect();
    Ok((h, recs))
}

/// Sorts free extents into cntbt order: by length, then start.
pub fn cnt_order(recs: &[AllocRec]) -> Vec<AllocRec> {
    let mut v = recs.to_vec();
    v.sort_by_key(|r| (r.blockcount, r.startblock));
    v
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test may panic
mod tests {
    use super::*;

    #[test]
    fn alloc_round_trip() {
        let recs = [
            AllocRec {
                startblock: 10,
                blockcount: 6,
            },
            AllocRec {
                startblock: 24,
                blockcount: 65512,
            },
        ];
        let b = alloc_leaf(4096, XFS_ABTB_CRC_MAGIC, 8, &[1; 16], 0, &recs);
        let u = [1; 16];
        let parse = |b: &[u8], magic, uuid: &[u8; 16], daddr| {
            parse_alloc_leaf(b, Structure::Bnobt, 0, magic, uuid, daddr)
        };
        let problem = |r: Result<(BlockHeader, Vec<AllocRec>)>| match r {
            Err(Error::Metadata(c)) => Some(c.problem),
            _ => None,
        };
        let (h, got) = parse(&b, XFS_ABTB_CRC_MAGIC, &u, 8).unwrap();
        assert_eq!(h.numrecs, 2);
        assert_eq!(got, recs);
        assert!(matches!(
            problem(parse(&b, XFS_ABTC_CRC_MAGIC, &u, 8)),
            Some(Problem::BadMagic { .. })
        ));
        assert_eq!(
            problem(parse(&b, XFS_ABTB_CRC_MAGIC, &u, 16)),
            Some(Problem::BlockAddress { found: 8 })
        );
        assert!(matches!(
            problem(parse(&b, XFS_ABTB_CRC_MAGIC, &[2; 16], 8)),
            Some(Problem::ForeignUuid { .. })
        ));
        let mut bad = b.clone();
        bad[0x40] ^= 1;
        assert!(matches!(
            problem(parse(&bad, XFS_ABTB_CRC_MAGIC, &u, 8)),
            Some(Problem::BadCrc { .. })
        ));
        assert_eq!(leaf_capacity(4096, 8), 505);
        assert_eq!(cnt_order(&[recs[1], recs[0]]), recs.to_vec());
    }
}
