//! Symbolic links. A target that fits in the data
//! fork is stored there (local format); a longer one goes to blocks, each
//! starting with the v5 `XSLM` header `{magic, offset, bytes, crc, uuid,
//! owner, blkno, lsn}` (56 bytes) and holding the next piece of the target.
//! The kernel limits targets to 1024 bytes (`XFS_SYMLINK_MAXLEN`).

use super::crc;
use crate::bytes::{read_u32be, read_u64be, write_u32be, write_u64be};

/// `XFS_SYMLINK_MAGIC`, "XSLM".
pub const XFS_SYMLINK_MAGIC: u32 = 0x5853_4c4d;
/// Size of the remote block header.
pub const SYMLINK_HDR: usize = 56;
/// Offset of the header's CRC.
pub const SYMLINK_CRC_OFF: usize = 12;
/// `XFS_SYMLINK_MAXLEN`: the longest target.
pub const MAXLEN: usize = 1024;

/// Target bytes one `blocksize`-byte block holds.
pub fn bytes_per_block(blocksize: usize) -> usize {
    blocksize - SYMLINK_HDR
}

/// Blocks a remote target of `len` bytes needs.
pub fn blocks_needed(len: usize, blocksize: usize) -> usize {
    len.div_ceil(bytes_per_block(blocksize))
}

/// Builds the remote blocks for `target`, one per entry of `daddrs` (the
/// sector address of each block, in file order).
pub fn build(
    target: &[u8],
    blocksize: usize,
    daddrs: &[u64],
    uuid: &[u8; 16],
    owner: u64,
) -> Vec<Vec<u8>> {
    let per = bytes_per_block(blocksize);
    target
        .chunks(per)
        .zip(daddrs)
        .enumerate()
        .map(|(i, (piece, &daddr))| {
            let mut b = vec![0u8; blocksize];
            write_u32be(&mut b, 0, XFS_SYMLINK_MAGIC);
            write_u32be(&mut b, 4, (i * per) as u32);
            write_u32be(&mut b, 8, piece.len() as u32);
            b[16..32].copy_from_slice(uuid);
            write_u64be(&mut b, 32, owner);
            write_u64be(&mut b, 40, daddr);
            write_u64be(&mut b, 48, 0);
            b[SYMLINK_HDR..SYMLINK_HDR + piece.len()].copy_from_slice(piece);
            crc::update(&mut b, SYMLINK_CRC_OFF);
            b
        })
        .collect()
}

/// Reads the piece of a target in one remote block: checks the header
/// (magic, CRC, owner, the byte offset expected next) and returns its
/// bytes.
pub fn parse_block(b: &[u8], owner: u64, offset: usize) -> Result<Vec<u8>, String> {
    if b.len() < SYMLINK_HDR {
        return Err(format!("symlink block of {} bytes", b.len()));
    }
    let sl_magic = read_u32be(b, 0);
    if sl_magic != XFS_SYMLINK_MAGIC {
        return Err(format!("bad symlink block magic {sl_magic:#010x}"));
    }
    let (stored, computed) = crc::check(b, SYMLINK_CRC_OFF);
    if stored != computed {
        return Err(format!(
            "bad symlink block CRC: stored {stored:#010x}, computed {computed:#010x}"
        ));
    }
    let sl_offset = read_u32be(b, 4) as usize;
    let sl_bytes = read_u32be(b, 8) as usize;
    let sl_owner = read_u64be(b, 32);
    if sl_owner != owner {
        return Err(format!("symlink block owned by inode {sl_owner}"));
    }
    if sl_offset != offset || sl_bytes > b.len() - SYMLINK_HDR {
        return Err(format!(
            "symlink block holds bytes {sl_offset}..+{sl_bytes}, expected offset {offset}"
        ));
    }
    Ok(b[SYMLINK_HDR..SYMLINK_HDR + sl_bytes].to_vec())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test may panic
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let target = vec![b'x'; 1024];
        assert_eq!(blocks_needed(1024, 4096), 1);
        assert_eq!(blocks_needed(1024, 512), 3);
        let blocks = build(&target, 512, &[8, 16, 24], &[1; 16], 77);
        assert_eq!(blocks.len(), 3);
        let mut got = Vec::new();
        for b in &blocks {
            got.extend(parse_block(b, 77, got.len()).unwrap());
        }
        assert_eq!(got, target);
        assert!(parse_block(&blocks[1], 77, 0).is_err());
        assert!(parse_block(&blocks[0], 78, 0).is_err());
    }
}
