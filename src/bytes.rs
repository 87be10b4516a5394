//! Endian-named integer codecs for on-disk structures.
//!
//! Readers take a slice and an offset and return `None`-free values: the
//! callers check the slice length once (`from_bytes` validates the structure
//! size first), so these helpers panic only on a programming error, never on
//! input. Writers mirror them.

/// Reads a little-endian u16 at `off`.
pub fn read_u16le(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

/// Reads a little-endian u32 at `off`.
pub fn read_u32le(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Reads a little-endian u64 at `off`.
pub fn read_u64le(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

/// Reads a big-endian u16 at `off`.
pub fn read_u16be(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

/// Reads a big-endian u32 at `off`.
pub fn read_u32be(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Reads a big-endian u64 at `off`.
pub fn read_u64be(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_be_bytes(a)
}

/// Writes a little-endian u16 at `off`.
pub fn write_u16le(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

/// Writes a little-endian u32 at `off`.
pub fn write_u32le(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// Writes a little-endian u64 at `off`.
pub fn write_u64le(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// Writes a big-endian u16 at `off`.
pub fn write_u16be(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_be_bytes());
}

/// Writes a big-endian u32 at `off`.
pub fn write_u32be(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_be_bytes());
}

/// Writes a big-endian u64 at `off`.
pub fn write_u64be(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_be_bytes());
}

/// Joins a split 64-bit field (ext4 `_hi`/`_lo` pairs).
pub fn u64_from_hilo(hi: u32, lo: u32) -> u64 {
    (u64::from(hi) << 32) | u64::from(lo)
}

/// True when every byte is zero.
pub fn is_zero(b: &[u8]) -> bool {
    b.iter().all(|&x| x == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut b = [0u8; 16];
        write_u16le(&mut b, 0, 0x1234);
        write_u32be(&mut b, 2, 0xdead_beef);
        write_u64le(&mut b, 6, 0x0102_0304_0506_0708);
        assert_eq!(b[0..2], [0x34, 0x12]);
        assert_eq!(b[2..6], [0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(read_u16le(&b, 0), 0x1234);
        assert_eq!(read_u32be(&b, 2), 0xdead_beef);
        assert_eq!(read_u64le(&b, 6), 0x0102_0304_0506_0708);
        assert_eq!(u64_from_hilo(1, 2), (1 << 32) | 2);
    }
}
