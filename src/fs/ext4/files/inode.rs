//! An inode as raw bytes with typed accessors for every field the file
//! layer reads or writes (the on-disk layout of ext4's `struct ext4_inode`,
//! little endian). Unnamed bytes (in-inode extended attributes after
//! `i_extra_isize`, `i_version`, project id) are kept as read.
//!
//! Field offsets: 0x00 mode, 0x02 uid, 0x04 size, 0x08 atime, 0x0C ctime,
//! 0x10 mtime, 0x14 dtime, 0x18 gid, 0x1A links, 0x1C blocks, 0x20 flags,
//! 0x28 i_block (60 bytes), 0x64 generation, 0x68 file_acl, 0x6C size_high,
//! 0x74 blocks_high, 0x76 file_acl_high, 0x78 uid_high, 0x7A gid_high,
//! 0x7C checksum_lo, 0x80 extra_isize, 0x82 checksum_hi, 0x84 ctime_extra,
//! 0x88 mtime_extra, 0x8C atime_extra, 0x90 crtime, 0x94 crtime_extra.
//! Timestamps: the low 32 bits of the seconds as a signed number, and in
//! the matching `_extra` field `nsec << 2 | epoch` (bits 32-33 of the
//! seconds), present when `128 + i_extra_isize` covers the field.

use crate::bytes::{read_u16le, read_u32le, write_u16le, write_u32le};
use crate::fs::ext4::checksum::crc32c_raw;
use crate::fs::node::{FileType, Timespec};

/// `i_flags`: directory is hash-indexed (htree).
pub const INDEX_FL: u32 = 0x1000;
/// `i_flags`: i_blocks counts filesystem blocks, not sectors.
pub const HUGE_FILE_FL: u32 = 0x40000;
/// `i_flags`: the inode's blocks are an extent tree.
pub const EXTENTS_FL: u32 = 0x80000;
/// `i_flags`: encrypted contents.
pub const ENCRYPT_FL: u32 = 0x800;
/// `i_flags`: fs-verity file.
pub const VERITY_FL: u32 = 0x10_0000;
/// `i_flags`: the inode stores a large extended attribute value.
pub const EA_INODE_FL: u32 = 0x20_0000;
/// `i_flags`: data inline in the inode.
pub const INLINE_DATA_FL: u32 = 0x1000_0000;
/// `i_flags`: case-insensitive directory.
pub const CASEFOLD_FL: u32 = 0x4000_0000;

/// The standard 128 bytes before the extra fields.
const GOOD_OLD_SIZE: usize = 128;

/// A raw inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskInode {
    raw: Vec<u8>,
}

/// Which timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// Last access (0x08 / 0x8C).
    Atime,
    /// Inode change (0x0C / 0x84).
    Ctime,
    /// Data change (0x10 / 0x88).
    Mtime,
    /// Creation (0x90 / 0x94, extra area only).
    Crtime,
}

impl Stamp {
    fn offsets(self) -> (usize, usize) {
        match self {
            Stamp::Atime => (0x08, 0x8C),
            Stamp::Ctime => (0x0C, 0x84),
            Stamp::Mtime => (0x10, 0x88),
            Stamp::Crtime => (0x90, 0x94),
        }
    }
}

impl DiskInode {
    /// Wraps the bytes of an inode (at least 128).
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() < GOOD_OLD_SIZE {
            return None;
        }
        Some(DiskInode { raw: b.to_vec() })
    }

    /// A zeroed inode of `size` bytes with `i_extra_isize` = `extra`
    /// (clamped to what fits).
    pub fn new(size: usize, extra: u16) -> Self {
        let size = size.max(GOOD_OLD_SIZE);
        let mut raw = vec![0u8; size];
        if size > GOOD_OLD_SIZE {
            let e = usize::from(extra).min(size - GOOD_OLD_SIZE) as u16;
            write_u16le(&mut raw, 0x80, e);
        }
        DiskInode { raw }
    }

    /// The bytes (without recomputing the checksum).
    pub fn bytes(&self) -> &[u8] {
        &self.raw
    }

    /// True when the extra area covers `off..off+len`.
    fn has(&self, off: usize, len: usize) -> bool {
        self.raw.len() > GOOD_OLD_SIZE
            && off + len <= GOOD_OLD_SIZE + usize::from(self.extra_isize())
            && off + len <= self.raw.len()
    }

    /// `i_extra_isize` (0 for 128-byte inodes).
    pub fn extra_isize(&self) -> u16 {
        if self.raw.len() > GOOD_OLD_SIZE + 2 {
            read_u16le(&self.raw, 0x80)
        } else {
            0
        }
    }

    /// `i_mode`.
    pub fn mode(&self) -> u16 {
        read_u16le(&self.raw, 0x00)
    }
    /// Sets `i_mode`.
    pub fn set_mode(&mut self, m: u16) {
        write_u16le(&mut self.raw, 0x00, m);
    }
    /// The type from the mode, if it is a valid one.
    pub fn kind(&self) -> Option<FileType> {
        FileType::from_mode(self.mode())
    }

    /// Owner (`i_uid` | `i_uid_high` << 16).
    pub fn uid(&self) -> u32 {
        u32::from(read_u16le(&self.raw, 0x02)) | u32::from(read_u16le(&self.raw, 0x78)) << 16
    }
    /// Sets the owner.
    pub fn set_uid(&mut self, v: u32) {
        write_u16le(&mut self.raw, 0x02, (v & 0xFFFF) as u16);
        write_u16le(&mut self.raw, 0x78, (v >> 16) as u16);
    }
    /// Group (`i_gid` | `i_gid_high` << 16).
    pub fn gid(&self) -> u32 {
        u32::from(read_u16le(&self.raw, 0x18)) | u32::from(read_u16le(&self.raw, 0x7A)) << 16
    }
    /// Sets the group.
    pub fn set_gid(&mut self, v: u32) {
        write_u16le(&mut self.raw, 0x18, (v & 0xFFFF) as u16);
        write_u16le(&mut self.raw, 0x7A, (v >> 16) as u16);
    }

    /// `i_size` | `i_size_high` << 32.
    pub fn size(&self) -> u64 {
        u64::from(read_u32le(&self.raw, 0x04)) | u64::from(read_u32le(&self.raw, 0x6C)) << 32
    }
    /// Sets the size.
    pub fn set_size(&mut self, v: u64) {
        write_u32le(&mut self.raw, 0x04, (v & 0xFFFF_FFFF) as u32);
        write_u32le(&mut self.raw, 0x6C, (v >> 32) as u32);
    }

    /// `i_links_count`.
    pub fn links(&self) -> u16 {
        read_u16le(&self.raw, 0x1A)
    }
    /// Sets `i_links_count`.
    pub fn set_links(&mut self, v: u16) {
        write_u16le(&mut self.raw, 0x1A, v);
    }

    /// `i_blocks` as stored (`i_blocks_lo` | `i_blocks_high` << 32).
    pub fn blocks_raw(&self) -> u64 {
        u64::from(read_u32le(&self.raw, 0x1C)) | u64::from(read_u16le(&self.raw, 0x74)) << 32
    }
    /// `i_blocks` in 512-byte units (scaled when `HUGE_FILE_FL` says the
    /// field counts filesystem blocks of `bs` bytes).
    pub fn sectors(&self, bs: u64) -> u64 {
        if self.flags() & HUGE_FILE_FL != 0 {
            self.blocks_raw().saturating_mul(bs / 512)
        } else {
            self.blocks_raw()
        }
    }
    /// Sets `i_blocks` in 512-byte units (clears `HUGE_FILE_FL`).
    pub fn set_sectors(&mut self, v: u64) {
        write_u32le(&mut self.raw, 0x1C, (v & 0xFFFF_FFFF) as u32);
        write_u16le(&mut self.raw, 0x74, ((v >> 32) & 0xFFFF) as u16);
        let f = self.flags() & !HUGE_FILE_FL;
        self.set_flags(f);
    }

    /// `i_flags`.
    pub fn flags(&self) -> u32 {
        read_u32le(&self.raw, 0x20)
    }
    /// Sets `i_flags`.
    pub fn set_flags(&mut self, v: u32) {
        write_u32le(&mut self.raw, 0x20, v);
    }

    /// `i_block` (60 bytes: extent root, fast symlink text or device
    /// numbers).
    pub fn i_block(&self) -> [u8; 60] {
        let mut b = [0u8; 60];
        b.copy_from_slice(&self.raw[0x28..0x64]);
        b
    }
    /// Sets `i_block`.
    pub fn set_i_block(&mut self, b: &[u8; 60]) {
        self.raw[0x28..0x64].copy_from_slice(b);
    }

    /// `i_generation`.
    pub fn generation(&self) -> u32 {
        read_u32le(&self.raw, 0x64)
    }
    /// Sets `i_generation`.
    pub fn set_generation(&mut self, v: u32) {
        write_u32le(&mut self.raw, 0x64, v);
    }

    /// `i_file_acl` (the extended attribute block, 0 if none).
    pub fn file_acl(&self) -> u64 {
        u64::from(read_u32le(&self.raw, 0x68)) | u64::from(read_u16le(&self.raw, 0x76)) << 32
    }
    /// Sets `i_file_acl`.
    pub fn set_file_acl(&mut self, v: u64) {
        write_u32le(&mut self.raw, 0x68, (v & 0xFFFF_FFFF) as u32);
        write_u16le(&mut self.raw, 0x76, ((v >> 32) & 0xFFFF) as u16);
    }

    /// `i_dtime`.
    pub fn dtime(&self) -> u32 {
        read_u32le(&self.raw, 0x14)
    }
    /// Sets `i_dtime`.
    pub fn set_dtime(&mut self, v: u32) {
        write_u32le(&mut self.raw, 0x14, v);
    }

    /// A timestamp (nanoseconds and epoch bits when the extra area has
    /// them; creation time is 0 without it).
    pub fn time(&self, which: Stamp) -> Timespec {
        let (lo, extra) = which.offsets();
        if which == Stamp::Crtime && !self.has(lo, 4) {
            return Timespec::default();
        }
        let mut sec = i64::from(read_u32le(&self.raw, lo) as i32);
        let mut nsec = 0;
        if self.has(extra, 4) {
            let x = read_u32le(&self.raw, extra);
            sec += i64::from(x & 3) << 32;
            nsec = (x >> 2).min(999_999_999);
        }
        Timespec { sec, nsec }
    }

    /// Sets a timestamp (the extra part only where the inode has room).
    pub fn set_time(&mut self, which: Stamp, t: Timespec) {
        let (lo, extra) = which.offsets();
        if which == Stamp::Crtime && !self.has(lo, 4) {
            return;
        }
        // Low 32 bits as stored (truncation intended), then the epoch bits.
        write_u32le(&mut self.raw, lo, (t.sec & 0xFFFF_FFFF) as u32);
        if self.has(extra, 4) {
            let epoch = ((t.sec - i64::from(t.sec as i32)) >> 32) & 3;
            write_u32le(
                &mut self.raw,
                extra,
                (t.nsec.min(999_999_999) << 2) | epoch as u32,
            );
        }
    }

    /// The bytes with the checksum for inode `ino` filled in (when `seed`
    /// is given: metadata_csum). The high half is stored only when the
    /// extra area reaches it.
    pub fn to_bytes(&self, ino: u32, seed: Option<u32>) -> Vec<u8> {
        let mut b = self.raw.clone();
        if let Some(seed) = seed {
            let has_hi = self.has(0x82, 2);
            write_u16le(&mut b, 0x7C, 0);
            if has_hi {
                write_u16le(&mut b, 0x82, 0);
            }
            let c = checksum(seed, ino, self.generation(), &b);
            write_u16le(&mut b, 0x7C, (c & 0xFFFF) as u16);
            if has_hi {
                write_u16le(&mut b, 0x82, (c >> 16) as u16);
            }
        }
        b
    }

    /// True when the stored checksum matches (metadata_csum).
    pub fn verify(&self, ino: u32, seed: u32) -> bool {
        let has_hi = self.has(0x82, 2);
        let stored_lo = read_u16le(&self.raw, 0x7C);
        let stored_hi = if has_hi {
            read_u16le(&self.raw, 0x82)
        } else {
            0
        };
        let mut b = self.raw.clone();
        write_u16le(&mut b, 0x7C, 0);
        if has_hi {
            write_u16le(&mut b, 0x82, 0);
        }
        let c = checksum(seed, ino, self.generation(), &b);
        if has_hi {
            c == (u32::from(stored_hi) << 16 | u32::from(stored_lo))
        } else {
            (c & 0xFFFF) as u16 == stored_lo
        }
    }
}

/// `crc(crc(crc(seed, le32 ino), le32 generation), inode bytes)`.
fn checksum(seed: u32, ino: u32, generation: u32, bytes: &[u8]) -> u32 {
    let c = crc32c_raw(seed, &ino.to_le_bytes());
    let c = crc32c_raw(c, &generation.to_le_bytes());
    crc32c_raw(c, bytes)
}

/// The seed of a directory's or extent tree's block checksums:
/// `crc(crc(seed, le32 ino), le32 generation)`.
pub fn block_seed(seed: u32, ino: u32, generation: u32) -> u32 {
    let c = crc32c_raw(seed, &ino.to_le_bytes());
    crc32c_raw(c, &generation.to_le_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let mut i = DiskInode::new(256, 32);
        i.set_mode(0o100644);
        i.set_uid(0x1234_5678);
        i.set_gid(70000);
        i.set_size(0x1_2345_6789);
        i.set_links(3);
        i.set_sectors(0x1_0000_0008);
        i.set_file_acl(0x1_0000_0001);
        assert_eq!(i.uid(), 0x1234_5678);
        assert_eq!(i.gid(), 70000);
        assert_eq!(i.size(), 0x1_2345_6789);
        assert_eq!(i.sectors(4096), 0x1_0000_0008);
        assert_eq!(i.file_acl(), 0x1_0000_0001);
        assert_eq!(i.kind(), Some(FileType::Regular));
        let b = i.to_bytes(12, Some(0xABCD));
        let back = DiskInode::from_bytes(&b).unwrap();
        assert!(back.verify(12, 0xABCD));
        assert!(!back.verify(13, 0xABCD));
        // The existing reader agrees on the checksum.
        assert!(crate::fs::ext4::inode::Inode::verify(&b, 12, 0xABCD));
    }

    #[test]
    fn times_with_nanoseconds_and_epochs() {
        let mut i = DiskInode::new(256, 32);
        for t in [
            Timespec {
                sec: 1_700_000_000,
                nsec: 123_456_789,
            },
            Timespec { sec: -5, nsec: 1 },
            // After 2038: bit 32 goes into the epoch bits.
            Timespec {
                sec: (1 << 32) + 77,
                nsec: 999_999_999,
            },
        ] {
            for s in [Stamp::Atime, Stamp::Mtime, Stamp::Ctime, Stamp::Crtime] {
                i.set_time(s, t);
                assert_eq!(i.time(s), t, "{s:?}");
            }
        }
        // A 128-byte inode has seconds only and no creation time.
        let mut small = DiskInode::new(128, 0);
        small.set_time(Stamp::Mtime, Timespec { sec: 10, nsec: 5 });
        assert_eq!(small.time(Stamp::Mtime), Timespec { sec: 10, nsec: 0 });
        small.set_time(Stamp::Crtime, Timespec { sec: 10, nsec: 5 });
        assert_eq!(small.time(Stamp::Crtime), Timespec::default());
    }
}
