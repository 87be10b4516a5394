//! ext4's checksums.
//!
//! ext4 uses CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) but, like
//! the kernel's `crc32c_le` and e2fsprogs' `ext2fs_crc32c_le`, *without* the
//! usual pre- and post-inversion: [`crc32c_raw`] continues a running value
//! as-is. The per-filesystem seed is `crc32c_raw(!0, s_uuid)` (or
//! `s_checksum_seed` with the `metadata_csum_seed` feature), and each
//! structure chains its own identifiers (group number, inode number,
//! generation) into it before hashing its bytes.

/// CRC-32C continued from `crc` over `data`, with no inversion on either
/// side (the kernel's `crc32c_le`).
pub fn crc32c_raw(crc: u32, data: &[u8]) -> u32 {
    // The crate computes the standard (inverted) form: undo both inversions.
    !crc32c::crc32c_append(!crc, data)
}

/// The superblock checksum: over the first 0x3FC bytes, seeded with !0.
pub fn superblock_csum(sb: &[u8]) -> u32 {
    crc32c_raw(!0, &sb[..0x3FC])
}

/// The filesystem seed every other metadata checksum starts from.
pub fn fs_seed(uuid: &[u8; 16]) -> u32 {
    crc32c_raw(!0, uuid)
}

/// CRC-16 (ANSI, reflected 0xA001) as used by the old `uninit_bg`
/// (`gdt_csum`) group descriptor checksum.
pub fn crc16(mut crc: u16, data: &[u8]) -> u16 {
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn raw_is_uninverted_crc32c() {
        // Standard CRC-32C check value of "123456789" is 0xE3069283.
        assert_eq!(!crc32c_raw(!0, b"123456789"), 0xE306_9283);
        // Chaining equals hashing the concatenation.
        let a = crc32c_raw(0x1234_5678, b"abc");
        assert_eq!(crc32c_raw(a, b"def"), crc32c_raw(0x1234_5678, b"abcdef"));
    }

    #[test]
    fn crc16_check_value() {
        // CRC-16/ARC of "123456789" with init 0 is 0xBB3D.
        assert_eq!(crc16(0, b"123456789"), 0xBB3D);
    }
}
