//! Extent trees (`EXT4_EXTENTS_FL` inodes): a 12-byte header, then leaf
//! entries (depth 0) or index entries. The root lives in `i_block` (4
//! entries); tree blocks hold `(bs-12)/12` entries and a 4-byte checksum
//! tail.

use super::checksum::crc32c_raw;
use crate::bytes::{read_u16le, read_u32le, write_u16le, write_u32le};

/// `eh_magic`.
pub const EXTENT_MAGIC: u16 = 0xF30A;
/// Longest initialized extent.
pub const MAX_INIT_LEN: u64 = 32768;

/// One mapping: file blocks `ee_block ..+ee_len` at `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// First logical block (`ee_block`, 0x00).
    pub ee_block: u32,
    /// Length (`ee_len`, 0x04; ≤ 32768 for initialized extents).
    pub ee_len: u16,
    /// Physical start (`ee_start_hi` 0x06, `ee_start_lo` 0x08).
    pub start: u64,
}

/// Writes an extent header at `b[0..12]`.
pub fn write_header(b: &mut [u8], entries: u16, max: u16, depth: u16) {
    write_u16le(b, 0x00, EXTENT_MAGIC);
    write_u16le(b, 0x02, entries);
    write_u16le(b, 0x04, max);
    write_u16le(b, 0x06, depth);
    write_u32le(b, 0x08, 0); // eh_generation
}

/// Writes a leaf entry at `b[0..12]`.
pub fn write_leaf(b: &mut [u8], e: &Extent) {
    write_u32le(b, 0x00, e.ee_block);
    write_u16le(b, 0x04, e.ee_len);
    write_u16le(b, 0x06, ((e.start >> 32) & 0xFFFF) as u16);
    write_u32le(b, 0x08, (e.start & 0xFFFF_FFFF) as u32);
}

/// Writes an index entry at `b[0..12]`: logical `block` → tree block `leaf`.
pub fn write_index(b: &mut [u8], block: u32, leaf: u64) {
    write_u32le(b, 0x00, block);
    write_u32le(b, 0x04, (leaf & 0xFFFF_FFFF) as u32);
    write_u16le(b, 0x08, ((leaf >> 32) & 0xFFFF) as u16);
    write_u16le(b, 0x0A, 0);
}

/// Parses a header: (entries, max, depth), or `None` without the magic.
pub fn read_header(b: &[u8]) -> Option<(u16, u16, u16)> {
    if b.len() < 12 || read_u16le(b, 0) != EXTENT_MAGIC {
        return None;
    }
    Some((read_u16le(b, 2), read_u16le(b, 4), read_u16le(b, 6)))
}

/// Parses a leaf entry.
pub fn read_leaf(b: &[u8]) -> Extent {
    Extent {
        ee_block: read_u32le(b, 0),
        ee_len: read_u16le(b, 4),
        start: (u64::from(read_u16le(b, 6)) << 32) | u64::from(read_u32le(b, 8)),
    }
}

/// Builds an inode's extent tree for `extents`: the 60-byte `i_block`, and,
/// when more than four extents, one leaf block at `etb` (bs bytes,
/// checksummed with `inode_seed`).
pub fn build_tree(
    extents: &[Extent],
    etb: Option<u64>,
    bs: usize,
    inode_seed: Option<u32>,
) -> ([u8; 60], Option<Vec<u8>>) {
    let mut root = [0u8; 60];
    match etb {
        None => {
            let n = extents.len().min(4);
            write_header(&mut root, n as u16, 4, 0);
            for (i, e) in extents.iter().take(4).enumerate() {
                write_leaf(&mut root[12 + 12 * i..], e);
            }
            (root, None)
        }
        Some(etb) => {
            write_header(&mut root, 1, 4, 1);
            write_index(&mut root[12..], 0, etb);
            // libext2fs splits a full in-inode leaf by copying it to the new
            // block and rewriting only the header and first slot: slots 1-3
            // keep the old leaf entries (dead bytes, but real mkfs has them).
            for (i, e) in extents.iter().enumerate().take(4).skip(1) {
                write_leaf(&mut root[12 + 12 * i..], e);
            }
            let max = (bs - 12) / 12;
            let mut blk = vec![0u8; bs];
            let n = extents.len().min(max);
            write_header(&mut blk, n as u16, max as u16, 0);
            for (i, e) in extents.iter().take(max).enumerate() {
                write_leaf(&mut blk[12 + 12 * i..], e);
            }
            // The tail checksum is written with metadata_csum only.
            if let Some(seed) = inode_seed {
                let tail = 12 + 12 * max;
                let c = crc32c_raw(seed, &blk[..tail]);
                write_u32le(&mut blk, tail, c);
            }
            (root, Some(blk))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn leaf_round_trip() {
        let e = Extent {
            ee_block: 7,
            ee_len: 32768,
            start: 0x1_0000_0010,
        };
        let mut b = [0u8; 12];
        write_leaf(&mut b, &e);
        assert_eq!(read_leaf(&b), e);
    }

    #[test]
    fn tree_with_index_block() {
        let ex: Vec<Extent> = (0..8)
            .map(|i| Extent {
                ee_block: i * 32768,
                ee_len: 32768,
                start: 1_000_000 + u64::from(i) * 32768,
            })
            .collect();
        let (root, blk) = build_tree(&ex, Some(999), 4096, Some(1));
        assert_eq!(read_header(&root), Some((1, 4, 1)));
        let blk = blk.unwrap();
        assert_eq!(read_header(&blk), Some((8, 340, 0)));
        assert_eq!(read_leaf(&blk[12 + 12 * 7..]), ex[7]);
    }
}
