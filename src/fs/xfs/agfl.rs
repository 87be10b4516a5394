//! The AG free list, `struct xfs_agfl`: sector 3 of each AG. A
//! ring of block numbers the free-space btrees draw on when they split.

use super::crc;
use super::error::{Error, Result, Structure};
use super::verify::Problem;
use crate::bytes::{read_u32be, read_u64be, write_u32be, write_u64be};

/// `XFS_AGFL_MAGIC`, "XAFL".
pub const XFS_AGFL_MAGIC: u32 = 0x5841_464c;
/// Offset of `agfl_crc`.
pub const AGFL_CRC_OFF: usize = 0x20;
/// Offset of the block-number array.
pub const AGFL_BNO_OFF: usize = 0x24;
/// `NULLAGBLOCK`.
pub const NULLAGBLOCK: u32 = u32::MAX;

/// An AGFL: its header and the block-number ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agfl {
    pub seqno: u32,
    pub uuid: [u8; 16],
    pub lsn: u64,
    /// `agfl_bno[]`: `(sectsize - 36) / 4` slots, unused ones NULLAGBLOCK.
    pub bno: Vec<u32>,
}

/// Slots in the AGFL of a `sectsize`-byte sector (119 for 512 bytes).
pub fn agfl_size(sectsize: usize) -> usize {
    sectsize.saturating_sub(AGFL_BNO_OFF) / 4
}

impl Agfl {
    /// An AGFL with every slot empty.
    pub fn empty(seqno: u32, uuid: [u8; 16], sectsize: usize) -> Self {
        Agfl {
            seqno,
            uuid,
            lsn: 0,
            bno: vec![NULLAGBLOCK; agfl_size(sectsize)],
        }
    }

    /// Parses the AGFL sector of AG `agno` and makes the context-free
    /// checks of the kernel's read verifier, in its order: CRC, magic,
    /// sequence number. The checks that need the superblock are
    /// [`super::verify::check_agfl`].
    pub fn from_bytes(b: &[u8], agno: u32) -> Result<Self> {
        let bad = |p: Problem| Error::metadata(Structure::Agfl, agno, p);
        if b.len() < AGFL_BNO_OFF {
            return Err(bad(Problem::TooShort { len: b.len() }));
        }
        let (stored, computed) = crc::check(b, AGFL_CRC_OFF);
        if stored != computed {
            return Err(bad(Problem::BadCrc { stored, computed }));
        }
        let agfl_magicnum = read_u32be(b, 0x00);
        if agfl_magicnum != XFS_AGFL_MAGIC {
            return Err(bad(Problem::BadMagic {
                found: agfl_magicnum,
                expected: XFS_AGFL_MAGIC,
            }));
        }
        let agfl_seqno = read_u32be(b, 0x04);
        if agfl_seqno != agno {
            return Err(bad(Problem::BadSeqno { found: agfl_seqno }));
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[0x08..0x18]);
        let bno = (0..agfl_size(b.len()))
            .map(|i| read_u32be(b, AGFL_BNO_OFF + 4 * i))
            .collect();
        Ok(Agfl {
            seqno: agfl_seqno,
            uuid,
            lsn: read_u64be(b, 0x18),
            bno,
        })
    }

    /// The sector image (`sectsize` bytes), CRC included.
    pub fn to_bytes(&self, sectsize: usize) -> Vec<u8> {
        let mut b = vec![0u8; sectsize.max(AGFL_BNO_OFF)];
        write_u32be(&mut b, 0x00, XFS_AGFL_MAGIC);
        write_u32be(&mut b, 0x04, self.seqno);
        b[0x08..0x18].copy_from_slice(&self.uuid);
        write_u64be(&mut b, 0x18, self.lsn);
        for (i, v) in self.bno.iter().take(agfl_size(b.len())).enumerate() {
            write_u32be(&mut b, AGFL_BNO_OFF + 4 * i, *v);
        }
        crc::update(&mut b, AGFL_CRC_OFF);
        b
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test may panic
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut agfl = Agfl::empty(3, [9; 16], 512);
        assert_eq!(agfl.bno.len(), 119);
        agfl.bno[1..5].copy_from_slice(&[6, 7, 8, 9]);
        let b = agfl.to_bytes(512);
        assert_eq!(Agfl::from_bytes(&b, 3).unwrap(), agfl);
        let mut bad = b.clone();
        bad[0x30] ^= 0x40;
        assert!(matches!(
            Agfl::from_bytes(&bad, 3),
            Err(Error::Metadata(c)) if matches!(c.problem, Problem::BadCrc { .. })
        ));
    }
}
