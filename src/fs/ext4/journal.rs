//! The jbd2 journal superblock (big endian; first block of the journal
//! inode).

use crate::bytes::write_u32be;

/// `h_magic`.
pub const JBD2_MAGIC: u32 = 0xC03B_3998;
/// `h_blocktype` of a v2 superblock.
pub const JBD2_SUPERBLOCK_V2: u32 = 4;

/// A clean, empty v2 journal superblock for an internal journal of
/// `maxlen` blocks of `bs` bytes on the filesystem with `uuid`.
pub fn superblock(bs: u32, maxlen: u32, uuid: &[u8; 16]) -> Vec<u8> {
    let mut b = vec![0u8; bs as usize];
    write_u32be(&mut b, 0x00, JBD2_MAGIC);
    write_u32be(&mut b, 0x04, JBD2_SUPERBLOCK_V2);
    write_u32be(&mut b, 0x08, 0); // h_sequence
    write_u32be(&mut b, 0x0C, bs); // s_blocksize
    write_u32be(&mut b, 0x10, maxlen); // s_maxlen
    write_u32be(&mut b, 0x14, 1); // s_first
    write_u32be(&mut b, 0x18, 1); // s_sequence
    write_u32be(&mut b, 0x1C, 0); // s_start: 0 = clean
    b[0x30..0x40].copy_from_slice(uuid);
    write_u32be(&mut b, 0x40, 1); // s_nr_users
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::read_u32be;

    #[test]
    fn clean_v2_superblock() {
        let b = superblock(4096, 8192, &[0x11; 16]);
        assert_eq!(read_u32be(&b, 0), JBD2_MAGIC);
        assert_eq!(read_u32be(&b, 4), 4);
        assert_eq!(read_u32be(&b, 0x10), 8192);
        assert_eq!(read_u32be(&b, 0x1C), 0);
        assert_eq!(&b[0x30..0x40], &[0x11; 16]);
        assert_eq!(read_u32be(&b, 0x40), 1);
    }
}
