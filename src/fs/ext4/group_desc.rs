//! Block group descriptors (32 bytes, or `s_desc_size` = 64 with `64bit`),
//! in a table starting at block `s_first_data_block + 1`.

use super::checksum::{crc16, crc32c_raw};
use super::error::Error;
use super::superblock::Superblock;
use crate::bytes::{read_u16le, read_u32le, u64_from_hilo, write_u16le, write_u32le};

/// `bg_flags`: inode table and bitmap not initialized.
pub const BG_INODE_UNINIT: u16 = 1;
/// `bg_flags`: block bitmap not initialized (computed from the layout).
pub const BG_BLOCK_UNINIT: u16 = 2;
/// `bg_flags`: inode table zeroed.
pub const BG_INODE_ZEROED: u16 = 4;

/// One group descriptor. Field names are the kernel's; the 64-bit halves
/// are joined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupDesc {
    /// 0x00 lo, 0x20 hi
    pub bg_block_bitmap: u64,
    /// 0x04 lo, 0x24 hi
    pub bg_inode_bitmap: u64,
    /// 0x08 lo, 0x28 hi
    pub bg_inode_table: u64,
    /// 0x0C lo u16, 0x2C hi u16
    pub bg_free_blocks_count: u32,
    /// 0x0E lo, 0x2E hi
    pub bg_free_inodes_count: u32,
    /// 0x10 lo, 0x30 hi
    pub bg_used_dirs_count: u32,
    /// 0x12
    pub bg_flags: u16,
    /// 0x14 lo, 0x34 hi
    pub bg_exclude_bitmap: u64,
    /// 0x18 lo u16, 0x38 hi u16
    pub bg_block_bitmap_csum: u32,
    /// 0x1A lo, 0x3A hi
    pub bg_inode_bitmap_csum: u32,
    /// 0x1C lo, 0x32 hi
    pub bg_itable_unused: u32,
    /// 0x1E
    pub bg_checksum: u16,
}

fn lo16(v: u32) -> u16 {
    (v & 0xFFFF) as u16
}
fn hi16(v: u32) -> u16 {
    (v >> 16) as u16
}
fn lo32(v: u64) -> u32 {
    (v & 0xFFFF_FFFF) as u32
}
fn hi32(v: u64) -> u32 {
    (v >> 32) as u32
}

impl GroupDesc {
    /// Parses one descriptor of `size` bytes (32 or ≥ 64).
    pub fn from_bytes(b: &[u8], size: usize) -> Self {
        let w = |lo: u16, hi_off: usize| -> u32 {
            let hi = if size >= 64 { read_u16le(b, hi_off) } else { 0 };
            u32::from(lo) | (u32::from(hi) << 16)
        };
        let d = |lo_off: usize, hi_off: usize| -> u64 {
            let hi = if size >= 64 { read_u32le(b, hi_off) } else { 0 };
            u64_from_hilo(hi, read_u32le(b, lo_off))
        };
        GroupDesc {
            bg_block_bitmap: d(0x00, 0x20),
            bg_inode_bitmap: d(0x04, 0x24),
            bg_inode_table: d(0x08, 0x28),
            bg_free_blocks_count: w(read_u16le(b, 0x0C), 0x2C),
            bg_free_inodes_count: w(read_u16le(b, 0x0E), 0x2E),
            bg_used_dirs_count: w(read_u16le(b, 0x10), 0x30),
            bg_flags: read_u16le(b, 0x12),
            bg_exclude_bitmap: d(0x14, 0x34),
            bg_block_bitmap_csum: w(read_u16le(b, 0x18), 0x38),
            bg_inode_bitmap_csum: w(read_u16le(b, 0x1A), 0x3A),
            bg_itable_unused: w(read_u16le(b, 0x1C), 0x32),
            bg_checksum: read_u16le(b, 0x1E),
        }
    }

    /// Serializes into `out` (`size` bytes: 32, or 64 and more). Bytes past
    /// 64 are left as they are.
    pub fn write_to(&self, out: &mut [u8], size: usize) {
        write_u32le(out, 0x00, lo32(self.bg_block_bitmap));
        write_u32le(out, 0x04, lo32(self.bg_inode_bitmap));
        write_u32le(out, 0x08, lo32(self.bg_inode_table));
        write_u16le(out, 0x0C, lo16(self.bg_free_blocks_count));
        write_u16le(out, 0x0E, lo16(self.bg_free_inodes_count));
        write_u16le(out, 0x10, lo16(self.bg_used_dirs_count));
        write_u16le(out, 0x12, self.bg_flags);
        write_u32le(out, 0x14, lo32(self.bg_exclude_bitmap));
        write_u16le(out, 0x18, lo16(self.bg_block_bitmap_csum));
        write_u16le(out, 0x1A, lo16(self.bg_inode_bitmap_csum));
        write_u16le(out, 0x1C, lo16(self.bg_itable_unused));
        write_u16le(out, 0x1E, self.bg_checksum);
        if size >= 64 {
            write_u32le(out, 0x20, hi32(self.bg_block_bitmap));
            write_u32le(out, 0x24, hi32(self.bg_inode_bitmap));
            write_u32le(out, 0x28, hi32(self.bg_inode_table));
            write_u16le(out, 0x2C, hi16(self.bg_free_blocks_count));
            write_u16le(out, 0x2E, hi16(self.bg_free_inodes_count));
            write_u16le(out, 0x30, hi16(self.bg_used_dirs_count));
            write_u16le(out, 0x32, hi16(self.bg_itable_unused));
            write_u32le(out, 0x34, hi32(self.bg_exclude_bitmap));
            write_u16le(out, 0x38, hi16(self.bg_block_bitmap_csum));
            write_u16le(out, 0x3A, hi16(self.bg_inode_bitmap_csum));
            // 0x3C: bg_reserved, always zero.
            write_u32le(out, 0x3C, 0);
        }
    }

    /// The serialized bytes (`size` long).
    pub fn to_bytes(&self, size: usize) -> Vec<u8> {
        let mut v = vec![0u8; size];
        self.write_to(&mut v, size);
        v
    }

    /// The checksum this descriptor should carry as group `group` of `sb`
    /// (metadata_csum: crc32c low 16 bits; uninit_bg: crc16; else 0).
    pub fn compute_checksum(&self, sb: &Superblock, group: u32) -> u16 {
        let size = sb.desc_size() as usize;
        let mut bytes = self.to_bytes(size);
        // The checksum field is hashed as zeroes.
        write_u16le(&mut bytes, 0x1E, 0);
        if sb.has_metadata_csum() {
            let c = crc32c_raw(sb.csum_seed(), &group.to_le_bytes());
            (crc32c_raw(c, &bytes) & 0xFFFF) as u16
        } else if sb.has_ro_compat(super::features::ro_compat::GDT_CSUM) {
            // crc16 over uuid, group, the descriptor without its checksum.
            let mut c = crc16(!0, &sb.s_uuid);
            c = crc16(c, &group.to_le_bytes());
            c = crc16(c, &bytes[..0x1E]);
            if size > 0x20 {
                c = crc16(c, &bytes[0x20..]);
            }
            c
        } else {
            0
        }
    }

    /// Sets `bg_checksum` for group `group`.
    pub fn set_checksum(&mut self, sb: &Superblock, group: u32) {
        self.bg_checksum = self.compute_checksum(sb, group);
    }

    /// True when the group has flag `f`.
    pub fn has_flag(&self, f: u16) -> bool {
        self.bg_flags & f != 0
    }
}

/// True when the filesystem keeps group descriptor checksums at all.
pub fn has_group_csum(sb: &Superblock) -> bool {
    sb.has_metadata_csum() || sb.has_ro_compat(super::features::ro_compat::GDT_CSUM)
}

/// Parses a whole descriptor table and verifies each checksum and
/// location (`bytes` = the table's blocks).
pub fn parse_table(sb: &Superblock, bytes: &[u8]) -> Result<Vec<GroupDesc>, Error> {
    let size = sb.desc_size() as usize;
    let groups = sb.group_count();
    let mut out = Vec::with_capacity(usize::try_from(groups).unwrap_or(0));
    for g in 0..groups {
        let g32 = u32::try_from(g).map_err(|_| Error::BadSuperblock {
            field: "s_blocks_count",
            value: sb.s_blocks_count,
            why: "more than 2^32 groups",
        })?;
        let off = usize::try_from(g).ok().and_then(|g| g.checked_mul(size));
        let Some(chunk) = off.and_then(|o| bytes.get(o..o + size)) else {
            return Err(Error::BadSuperblock {
                field: "s_blocks_count",
                value: sb.s_blocks_count,
                why: "group descriptor table does not fit",
            });
        };
        let d = GroupDesc::from_bytes(chunk, size);
        if has_group_csum(sb) {
            let computed = d.compute_checksum(sb, g32);
            if computed != d.bg_checksum {
                return Err(Error::DescriptorChecksum {
                    group: g32,
                    stored: d.bg_checksum,
                    computed,
                });
            }
        }
        for (what, block) in [
            ("block bitmap", d.bg_block_bitmap),
            ("inode bitmap", d.bg_inode_bitmap),
            ("inode table", d.bg_inode_table),
        ] {
            let end = if what == "inode table" {
                block.checked_add(sb.inode_table_blocks())
            } else {
                block.checked_add(1)
            };
            if block < u64::from(sb.s_first_data_block) || end.is_none_or(|e| e > sb.s_blocks_count)
            {
                return Err(Error::BadDescriptor {
                    group: g32,
                    what,
                    block,
                    blocks: sb.s_blocks_count,
                });
            }
        }
        out.push(d);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_64() {
        let d = GroupDesc {
            bg_block_bitmap: 0x1_0000_0081,
            bg_inode_bitmap: 137,
            bg_inode_table: 145,
            bg_free_blocks_count: 0x1_2345,
            bg_free_inodes_count: 8181,
            bg_used_dirs_count: 2,
            bg_flags: BG_INODE_ZEROED,
            bg_exclude_bitmap: 0,
            bg_block_bitmap_csum: 0xDEAD_BEEF,
            bg_inode_bitmap_csum: 0x1234_5678,
            bg_itable_unused: 8181,
            bg_checksum: 0xED21,
        };
        let b = d.to_bytes(64);
        assert_eq!(GroupDesc::from_bytes(&b, 64), d);
        assert_eq!(read_u16le(&b, 0x0C), 0x2345);
        assert_eq!(read_u16le(&b, 0x2C), 1);
    }
}
