//! Inodes (`s_inode_size` bytes each, 256 by default; inode n lives in the
//! inode table of group (n-1)/ipg at index (n-1)%ipg).

use super::checksum::crc32c_raw;
use crate::bytes::{read_u16le, read_u32le, u64_from_hilo, write_u16le, write_u32le};

/// `i_flags`: the inode uses an extent tree.
pub const EXT4_EXTENTS_FL: u32 = 0x80000;
/// `i_flags`: i_blocks is in file-system blocks (huge_file).
pub const EXT4_HUGE_FILE_FL: u32 = 0x40000;
/// Directory mode bits.
pub const S_IFDIR: u16 = 0o040000;
/// Regular file mode bits.
pub const S_IFREG: u16 = 0o100000;

/// Bad blocks inode.
pub const BAD_INO: u32 = 1;
/// Root directory.
pub const ROOT_INO: u32 = 2;
/// Resize inode (reserved GDT blocks).
pub const RESIZE_INO: u32 = 7;
/// Journal inode.
pub const JOURNAL_INO: u32 = 8;
/// lost+found in a fresh filesystem (the first non-reserved inode).
pub const LPF_INO: u32 = 11;

/// An inode. Names are the kernel's; times are seconds (ebsim writes no
/// sub-second parts, like mke2fs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inode {
    /// 0x00
    pub i_mode: u16,
    /// 0x04 lo, 0x6C hi
    pub i_size: u64,
    /// 0x08
    pub i_atime: u32,
    /// 0x0C
    pub i_ctime: u32,
    /// 0x10
    pub i_mtime: u32,
    /// 0x1A
    pub i_links_count: u16,
    /// 0x1C lo, 0x74 hi (u16): in 512-byte units
    pub i_blocks: u64,
    /// 0x20
    pub i_flags: u32,
    /// 0x28: 60 bytes (block map or extent tree root)
    pub i_block: [u8; 60],
    /// 0x64
    pub i_generation: u32,
    /// 0x80
    pub i_extra_isize: u16,
    /// 0x90
    pub i_crtime: u32,
    /// The bytes it was read from; unnamed fields are kept.
    raw: Vec<u8>,
}

impl Inode {
    /// Sets the owner: `i_uid` (0x02) and `i_gid` (0x18), whose high halves
    /// are `l_i_uid_high` (0x78) and `l_i_gid_high` (0x7A).
    pub fn set_owner(&mut self, uid: u32, gid: u32) {
        write_u16le(&mut self.raw, 0x02, (uid & 0xFFFF) as u16);
        write_u16le(&mut self.raw, 0x78, (uid >> 16) as u16);
        write_u16le(&mut self.raw, 0x18, (gid & 0xFFFF) as u16);
        write_u16le(&mut self.raw, 0x7A, (gid >> 16) as u16);
    }

    /// An all-zero inode of `size` bytes.
    pub fn zeroed(size: usize) -> Self {
        Self::from_bytes(&vec![0u8; size.max(128)])
    }

    /// Parses an inode (at least 128 bytes; the extra fields are read when
    /// present).
    pub fn from_bytes(b: &[u8]) -> Self {
        let large = b.len() > 128;
        let mut i_block = [0u8; 60];
        i_block.copy_from_slice(&b[0x28..0x64]);
        let extra = if large { read_u16le(b, 0x80) } else { 0 };
        Inode {
            i_mode: read_u16le(b, 0x00),
            i_size: u64_from_hilo(read_u32le(b, 0x6C), read_u32le(b, 0x04)),
            i_atime: read_u32le(b, 0x08),
            i_ctime: read_u32le(b, 0x0C),
            i_mtime: read_u32le(b, 0x10),
            i_links_count: read_u16le(b, 0x1A),
            i_blocks: u64_from_hilo(u32::from(read_u16le(b, 0x74)), read_u32le(b, 0x1C)),
            i_flags: read_u32le(b, 0x20),
            i_block,
            i_generation: read_u32le(b, 0x64),
            i_extra_isize: extra,
            i_crtime: if large && b.len() >= 0x94 && extra >= 0x14 {
                read_u32le(b, 0x90)
            } else {
                0
            },
            raw: b.to_vec(),
        }
    }

    /// Serializes with its checksum (for inode number `ino`) when `seed`
    /// is given (metadata_csum).
    pub fn to_bytes(&self, ino: u32, seed: Option<u32>) -> Vec<u8> {
        let mut b = self.raw.clone();
        let large = b.len() > 128;
        write_u16le(&mut b, 0x00, self.i_mode);
        write_u32le(&mut b, 0x04, (self.i_size & 0xFFFF_FFFF) as u32);
        write_u32le(&mut b, 0x6C, (self.i_size >> 32) as u32);
        write_u32le(&mut b, 0x08, self.i_atime);
        write_u32le(&mut b, 0x0C, self.i_ctime);
        write_u32le(&mut b, 0x10, self.i_mtime);
        write_u16le(&mut b, 0x1A, self.i_links_count);
        write_u32le(&mut b, 0x1C, (self.i_blocks & 0xFFFF_FFFF) as u32);
        write_u16le(&mut b, 0x74, ((self.i_blocks >> 32) & 0xFFFF) as u16);
        write_u32le(&mut b, 0x20, self.i_flags);
        b[0x28..0x64].copy_from_slice(&self.i_block);
        write_u32le(&mut b, 0x64, self.i_generation);
        if large {
            write_u16le(&mut b, 0x80, self.i_extra_isize);
            if self.i_extra_isize >= 0x14 && b.len() >= 0x94 {
                write_u32le(&mut b, 0x90, self.i_crtime);
            }
        }
        if let Some(seed) = seed {
            let has_hi = large && self.i_extra_isize >= 4;
            // Checksum fields are hashed as zeroes.
            write_u16le(&mut b, 0x7C, 0);
            if has_hi {
                write_u16le(&mut b, 0x82, 0);
            }
            let c = inode_csum(seed, ino, self.i_generation, &b);
            write_u16le(&mut b, 0x7C, (c & 0xFFFF) as u16);
            if has_hi {
                write_u16le(&mut b, 0x82, (c >> 16) as u16);
            }
        }
        b
    }

    /// True when the stored checksum matches (inode number `ino`).
    pub fn verify(bytes: &[u8], ino: u32, seed: u32) -> bool {
        let large = bytes.len() > 128;
        let extra = if large { read_u16le(bytes, 0x80) } else { 0 };
        let has_hi = large && extra >= 4;
        let mut b = bytes.to_vec();
        let stored_lo = read_u16le(&b, 0x7C);
        let stored_hi = if has_hi { read_u16le(&b, 0x82) } else { 0 };
        write_u16le(&mut b, 0x7C, 0);
        if has_hi {
            write_u16le(&mut b, 0x82, 0);
        }
        let c = inode_csum(seed, ino, read_u32le(bytes, 0x64), &b);
        if has_hi {
            c == (u32::from(stored_hi) << 16 | u32::from(stored_lo))
        } else {
            (c & 0xFFFF) as u16 == stored_lo
        }
    }
}

/// `crc(crc(crc(seed, ino), generation), inode)`.
fn inode_csum(seed: u32, ino: u32, generation: u32, bytes: &[u8]) -> u32 {
    let c = crc32c_raw(seed, &ino.to_le_bytes());
    let c = crc32c_raw(c, &generation.to_le_bytes());
    crc32c_raw(c, bytes)
}

/// The seed of per-inode checksums of directory and extent blocks:
/// `crc(crc(seed, ino), generation)`.
pub fn inode_seed(seed: u32, ino: u32, generation: u32) -> u32 {
    let c = crc32c_raw(seed, &ino.to_le_bytes());
    crc32c_raw(c, &generation.to_le_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_checksum() {
        let mut i = Inode::zeroed(256);
        i.i_mode = S_IFDIR | 0o755;
        i.i_size = 0x1_0000_1000;
        i.i_links_count = 3;
        i.i_blocks = 8;
        i.i_flags = EXT4_EXTENTS_FL;
        i.i_extra_isize = 32;
        i.i_crtime = 1_700_000_000;
        let b = i.to_bytes(2, Some(0x1234_5678));
        assert!(Inode::verify(&b, 2, 0x1234_5678));
        assert!(!Inode::verify(&b, 3, 0x1234_5678));
        let back = Inode::from_bytes(&b);
        assert_eq!(back.i_size, 0x1_0000_1000);
        assert_eq!(back.to_bytes(2, Some(0x1234_5678)), b);
    }
}
