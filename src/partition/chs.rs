//! Cylinder/head/sector addresses as libfdisk writes them: geometry 255 heads × 63 sectors; cylinders past 1023 are stored as
//! the "too big" marker `fe ff ff`.

const HEADS: u64 = 255;
const SECTORS: u64 = 63;

/// The three CHS bytes of an MBR entry for `lba`.
pub fn encode(lba: u64) -> [u8; 3] {
    let c = lba / (HEADS * SECTORS);
    if c > 1023 {
        return [0xfe, 0xff, 0xff];
    }
    let h = (lba / SECTORS) % HEADS;
    let s = lba % SECTORS + 1;
    // Bits 8-9 of the cylinder ride in the top of the sector byte.
    [
        h as u8,
        (s as u8) | (((c >> 2) & 0xc0) as u8),
        (c & 0xff) as u8,
    ]
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn matches_sfdisk_examples() {
        assert_eq!(encode(2048), [0x20, 0x21, 0x00]);
        assert_eq!(encode(1_026_047), [0xdd, 0x1e, 0x3f]);
        assert_eq!(encode(4_194_270), [0x14, 0x6e, 0x05]);
        assert_eq!(encode(41_943_006), [0xfe, 0xff, 0xff]);
    }
}
