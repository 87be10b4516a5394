//! Directory blocks of a fresh filesystem (root and lost+found), linear
//! format with the metadata_csum tail entry.

use crate::bytes::{write_u16le, write_u32le};

/// `file_type` of a directory entry that is a directory.
pub const FT_DIR: u8 = 2;
/// Size of the checksum tail (`ext4_dir_entry_tail`).
pub const TAIL_LEN: usize = 12;

/// Writes one entry at `off`: inode, rec_len, name.
fn entry(b: &mut [u8], off: usize, ino: u32, rec_len: usize, name: &[u8], ft: u8) {
    write_u32le(b, off, ino);
    write_u16le(b, off + 4, rec_len as u16);
    b[off + 6] = name.len() as u8;
    b[off + 7] = ft;
    b[off + 8..off + 8 + name.len()].copy_from_slice(name);
}

/// Adds the checksum tail: {inode 0, rec_len 12, name_len 0, 0xDE, crc}.
fn finish(b: &mut [u8], csum_seed: Option<u32>) {
    if let Some(seed) = csum_seed {
        super::files::dirent::write_tail(b, seed);
    }
}

/// The usable length of a block (the tail excluded when checksummed).
fn usable(bs: usize, csum: bool) -> usize {
    if csum { bs - TAIL_LEN } else { bs }
}

/// A directory's first block: `.`, `..`, then `children` (name, inode),
/// the last entry taking the rest of the block. `inode_seed` is the
/// directory inode's checksum seed (None without metadata_csum).
pub fn first_block(
    bs: usize,
    ino: u32,
    parent: u32,
    children: &[(&[u8], u32)],
    inode_seed: Option<u32>,
) -> Vec<u8> {
    let mut b = vec![0u8; bs];
    let end = usable(bs, inode_seed.is_some());
    entry(&mut b, 0, ino, 12, b".", FT_DIR);
    let mut off = 12;
    let mut items: Vec<(&[u8], u32)> = vec![(b"..", parent)];
    items.extend_from_slice(children);
    for (i, (name, child)) in items.iter().enumerate() {
        let rec = if i + 1 == items.len() {
            end - off
        } else {
            (8 + name.len()).div_ceil(4) * 4
        };
        entry(&mut b, off, *child, rec, name, FT_DIR);
        off += rec;
    }
    finish(&mut b, inode_seed);
    b
}

/// An empty directory block (one unused entry spanning it).
pub fn empty_block(bs: usize, inode_seed: Option<u32>) -> Vec<u8> {
    let mut b = vec![0u8; bs];
    let end = usable(bs, inode_seed.is_some());
    write_u16le(&mut b, 4, end as u16);
    finish(&mut b, inode_seed);
    b
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::bytes::read_u16le;

    #[test]
    fn root_layout() {
        let b = first_block(4096, 2, 2, &[(b"lost+found", 11)], Some(7));
        assert_eq!(read_u16le(&b, 4), 12);
        assert_eq!(read_u16le(&b, 16), 12);
        assert_eq!(read_u16le(&b, 28), 4096 - 12 - 24);
        assert_eq!(&b[32..42], b"lost+found");
        assert_eq!(b[4096 - 12 + 7], 0xDE);
        let l = first_block(4096, 11, 2, &[], Some(7));
        assert_eq!(read_u16le(&l, 16), 4096 - 24);
    }
}
