//! CRC32C of v5 metadata: the standard Castagnoli CRC of the
//! object with its 4-byte CRC field taken as zero, stored little-endian.

use crate::bytes::{read_u32le, write_u32le};

/// The CRC of `buf` with the 4 bytes at `crc_off` counted as zeros.
pub fn compute(buf: &[u8], crc_off: usize) -> u32 {
    let crc = crc32c::crc32c(&buf[..crc_off]);
    let crc = crc32c::crc32c_append(crc, &[0u8; 4]);
    crc32c::crc32c_append(crc, &buf[crc_off + 4..])
}

/// Computes and stores the CRC of `buf`.
pub fn update(buf: &mut [u8], crc_off: usize) {
    let crc = compute(buf, crc_off);
    write_u32le(buf, crc_off, crc);
}

/// The stored and the computed CRC of `buf`.
pub fn check(buf: &[u8], crc_off: usize) -> (u32, u32) {
    (read_u32le(buf, crc_off), compute(buf, crc_off))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test may panic
mod tests {
    use super::*;

    #[test]
    fn standard_crc32c() {
        // The check value of CRC-32C.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        let mut b = *b"1234\0\0\0\x0056789";
        update(&mut b, 4);
        let (stored, computed) = check(&b, 4);
        assert_eq!(stored, computed);
    }
}
