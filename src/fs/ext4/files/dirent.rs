//! Directory blocks: parsing (linear blocks, and the blocks of a
//! hash-indexed "htree" directory read as linear ones) and writing linear
//! blocks.
//!
//! A directory entry is `{inode u32, rec_len u16, name_len u8, file_type
//! u8, name}`; `rec_len` is a multiple of 4, at least `8 + name_len`
//! rounded up to 4, and entries never cross a block. With metadata_csum
//! every leaf block ends in a 12-byte tail `{0, rec_len 12, 0, 0xDE,
//! crc32c}` whose CRC covers the block before it, seeded with the
//! directory inode's checksum seed. An entry with inode 0 is unused.
//!
//! In an htree directory, block 0 is the index root: `.` (rec_len 12) and
//! `..` whose rec_len covers the rest of the block, hiding the index
//! after it; interior index blocks are one unused entry of rec_len equal
//! to the block size (no tail: the index has its own checksum). Every
//! other block is an ordinary leaf. So reading an htree directory as
//! linear blocks sees exactly its entries.

use crate::bytes::{read_u16le, read_u32le, write_u16le, write_u32le};
use crate::fs::ext4::checksum::crc32c_raw;

/// The checksum tail's length.
pub const TAIL_LEN: usize = 12;
/// `file_type` of the tail entry.
const TAIL_FT: u8 = 0xDE;

/// One entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Inode number.
    pub ino: u32,
    /// `file_type` (1 regular, 2 dir, 3 chr, 4 blk, 5 fifo, 6 sock, 7 symlink).
    pub ft: u8,
    /// The name.
    pub name: Vec<u8>,
}

/// Bytes an entry with a name of `n` bytes needs.
pub fn rec_len(n: usize) -> usize {
    (8 + n + 3) & !3
}

/// How the kernel stores a rec_len of `len` in a block of `bs` bytes
/// (64 KiB blocks need a special code for 65536).
fn rec_len_to_disk(len: usize, bs: usize) -> u16 {
    if bs < 65536 {
        len as u16
    } else if len == 65536 {
        0xFFFF
    } else {
        ((len & 65532) | ((len >> 16) & 3)) as u16
    }
}

/// A rec_len as stored (`ext2fs_get_rec_len`), in bytes.
pub fn rec_len_from_disk(v: u16, bs: usize) -> usize {
    if bs < 65536 {
        usize::from(v)
    } else if v == 0xFFFF || v == 0 {
        bs
    } else {
        (usize::from(v) & 65532) | ((usize::from(v) & 3) << 16)
    }
}

/// Which kind of block a directory block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// An ordinary leaf (linear directories: every block).
    Leaf,
    /// Block 0 of an htree directory: only `.` and `..` are entries.
    HtreeRoot,
}

/// The space for entries in a block (the tail excluded with checksums).
pub fn capacity(bs: usize, csum: bool) -> usize {
    if csum { bs - TAIL_LEN } else { bs }
}

/// Parses one directory block. `seed` is the directory's checksum seed
/// with metadata_csum; `inodes` the filesystem's inode count. Returns the
/// live entries in order, or why the block is damaged.
pub fn parse_block(
    b: &[u8],
    kind: BlockKind,
    seed: Option<u32>,
    inodes: u32,
) -> Result<Vec<Entry>, String> {
    let bs = b.len();
    if bs < 12 {
        return Err("block too small".into());
    }
    // An htree interior node: one empty entry spanning the block.
    if kind == BlockKind::Leaf
        && read_u32le(b, 0) == 0
        && rec_len_from_disk(read_u16le(b, 4), bs) == bs
        && b[6] == 0
    {
        return Ok(Vec::new());
    }
    let end = match (kind, seed) {
        (BlockKind::Leaf, Some(seed)) => {
            let t = bs - TAIL_LEN;
            if read_u32le(b, t) != 0
                || read_u16le(b, t + 4) != TAIL_LEN as u16
                || b[t + 6] != 0
                || b[t + 7] != TAIL_FT
            {
                return Err("no checksum tail at the end of the block".into());
            }
            let stored = read_u32le(b, t + 8);
            let computed = crc32c_raw(seed, &b[..t]);
            if stored != computed {
                return Err(format!(
                    "checksum {stored:#010x} does not match (computed {computed:#010x})"
                ));
            }
            t
        }
        _ => bs,
    };
    let mut out = Vec::new();
    let mut off = 0usize;
    while off < end {
        if off + 8 > end {
            return Err(format!("entry at offset {off} overruns the block"));
        }
        let ino = read_u32le(b, off);
        let rl = rec_len_from_disk(read_u16le(b, off + 4), bs);
        let nl = usize::from(b[off + 6]);
        let ft = b[off + 7];
        if rl < 12 {
            return Err(format!(
                "rec_len {rl} at offset {off} is smaller than minimal"
            ));
        }
        if rl % 4 != 0 {
            return Err(format!(
                "rec_len {rl} at offset {off} is not a multiple of 4"
            ));
        }
        if rl < rec_len(nl) {
            return Err(format!(
                "rec_len {rl} at offset {off} is too small for name_len {nl}"
            ));
        }
        if off + rl > end {
            return Err(format!(
                "entry at offset {off} (rec_len {rl}) overruns the block"
            ));
        }
        if ino > inodes {
            return Err(format!(
                "entry at offset {off} names inode {ino}, out of bounds"
            ));
        }
        if ino != 0 {
            if nl == 0 {
                return Err(format!("entry at offset {off} has an empty name"));
            }
            out.push(Entry {
                ino,
                ft,
                name: b[off + 8..off + 8 + nl].to_vec(),
            });
        }
        off += rl;
        if kind == BlockKind::HtreeRoot && out.len() == 2 {
            // The rest of the block is the index.
            break;
        }
    }
    if kind == BlockKind::HtreeRoot
        && (out.len() != 2 || out[0].name != b"." || out[1].name != b"..")
    {
        return Err("htree root does not start with . and ..".into());
    }
    Ok(out)
}

/// Serializes `entries` as one linear block: packed in order, the last
/// taking the rest of the space, and the checksum tail when `seed` is
/// given. An empty list gives one unused entry spanning the block.
/// `None` when the entries do not fit in [`capacity`] (or a name is
/// longer than 255 bytes).
pub fn write_block(entries: &[Entry], bs: usize, seed: Option<u32>) -> Option<Vec<u8>> {
    let end = capacity(bs, seed.is_some());
    if used(entries) > end || entries.iter().any(|e| e.name.len() > 255) {
        return None;
    }
    let mut b = vec![0u8; bs];
    if entries.is_empty() {
        write_u16le(&mut b, 4, rec_len_to_disk(end, bs));
    }
    let mut off = 0;
    for (i, e) in entries.iter().enumerate() {
        let rl = if i + 1 == entries.len() {
            end - off
        } else {
            rec_len(e.name.len())
        };
        write_u32le(&mut b, off, e.ino);
        write_u16le(&mut b, off + 4, rec_len_to_disk(rl, bs));
        b[off + 6] = e.name.len() as u8;
        b[off + 7] = e.ft;
        b[off + 8..off + 8 + e.name.len()].copy_from_slice(&e.name);
        off += rl;
    }
    if let Some(seed) = seed {
        write_tail(&mut b, seed);
    }
    Some(b)
}

/// Writes the checksum tail over the last 12 bytes of a leaf block: an
/// entry of inode 0, rec_len 12, name_len 0 and file type 0xDE, ending in
/// the CRC32C (from the directory's seed) of everything before it.
pub fn write_tail(b: &mut [u8], seed: u32) {
    let t = b.len() - TAIL_LEN;
    write_u32le(b, t, 0);
    write_u16le(b, t + 4, TAIL_LEN as u16);
    b[t + 6] = 0;
    b[t + 7] = TAIL_FT;
    let c = crc32c_raw(seed, &b[..t]);
    write_u32le(b, t + 8, c);
}

/// Bytes `entries` take in a block.
pub fn used(entries: &[Entry]) -> usize {
    entries.iter().map(|e| rec_len(e.name.len())).sum()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn e(ino: u32, ft: u8, name: &str) -> Entry {
        Entry {
            ino,
            ft,
            name: name.as_bytes().to_vec(),
        }
    }

    #[test]
    fn write_then_parse() {
        let es = vec![
            e(2, 2, "."),
            e(2, 2, ".."),
            e(12, 1, "hello"),
            e(13, 7, "l"),
        ];
        for (bs, seed) in [(4096, Some(9)), (1024, None), (1024, Some(3))] {
            let b = write_block(&es, bs, seed).unwrap();
            assert_eq!(parse_block(&b, BlockKind::Leaf, seed, 100).unwrap(), es);
            let empty = write_block(&[], bs, seed).unwrap();
            assert!(
                parse_block(&empty, BlockKind::Leaf, seed, 100)
                    .unwrap()
                    .is_empty()
            );
        }
        // The root of a fresh filesystem, as mkfs writes it, reads back.
        let root = crate::fs::ext4::dir::first_block(4096, 2, 2, &[(b"lost+found", 11)], Some(5));
        let got = parse_block(&root, BlockKind::Leaf, Some(5), 100).unwrap();
        assert_eq!(got[2], e(11, 2, "lost+found"));
    }

    #[test]
    fn damage_is_named() {
        let es = vec![e(2, 2, "."), e(2, 2, "..")];
        let mut b = write_block(&es, 1024, Some(1)).unwrap();
        b[100] = 1;
        let err = parse_block(&b, BlockKind::Leaf, Some(1), 100).unwrap_err();
        assert!(err.contains("checksum"), "{err}");
        let mut b = write_block(&es, 1024, None).unwrap();
        write_u16le(&mut b, 4, 6);
        assert!(parse_block(&b, BlockKind::Leaf, None, 100).is_err());
        let b = write_block(&[e(500, 1, "x")], 1024, None).unwrap();
        let many: Vec<Entry> = (0..100).map(|i| e(i + 1, 1, "a-longer-name")).collect();
        assert!(write_block(&many, 1024, None).is_none());
        assert!(
            parse_block(&b, BlockKind::Leaf, None, 100)
                .unwrap_err()
                .contains("out of bounds")
        );
    }
}
