//! The AG free-space header, `struct xfs_agf`: sector 1 of each
//! AG. It roots the free-space btrees and counts the AG's free blocks.

use super::crc;
use super::error::{Error, Result, Structure};
use super::verify::Problem;
use crate::bytes::{read_u32be, read_u64be, write_u32be, write_u64be};

/// `XFS_AGF_MAGIC`, "XAGF".
pub const XFS_AGF_MAGIC: u32 = 0x5841_4746;
/// `XFS_AGF_VERSION`.
pub const XFS_AGF_VERSION: u32 = 1;
/// Size of the on-disk structure.
pub const AGF_STRUCT_SIZE: usize = 0xe0;
/// Offset of `agf_crc`.
pub const AGF_CRC_OFF: usize = 0xd8;

/// An AGF. Names follow `struct xfs_agf` without the `agf_` prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agf {
    pub seqno: u32,
    pub length: u32,
    /// Roots of the bno, cnt and rmap btrees.
    pub roots: [u32; 3],
    /// Levels of the bno, cnt and rmap btrees.
    pub levels: [u32; 3],
    pub flfirst: u32,
    pub fllast: u32,
    pub flcount: u32,
    pub freeblks: u32,
    pub longest: u32,
    pub btreeblks: u32,
    pub uuid: [u8; 16],
    pub rmap_blocks: u32,
    pub refcount_blocks: u32,
    pub refcount_root: u32,
    pub refcount_level: u32,
    pub lsn: u64,
}

impl Agf {
    /// Parses the AGF sector of AG `agno` and makes the context-free
    /// checks of the kernel's read verifier, in its order: CRC, magic,
    /// version, sequence number. The checks that need the superblock are
    /// [`super::verify::check_agf`].
    pub fn from_bytes(b: &[u8], agno: u32) -> Result<Self> {
        let bad = |p: Problem| Error::metadata(Structure::Agf, agno, p);
        if b.len() < AGF_STRUCT_SIZE {
            return Err(bad(Problem::TooShort { len: b.len() }));
        }
        let (stored, computed) = crc::check(b, AGF_CRC_OFF);
        if stored != computed {
            return Err(bad(Problem::BadCrc { stored, computed }));
        }
        let agf_magicnum = read_u32be(b, 0x00);
        if agf_magicnum != XFS_AGF_MAGIC {
            return Err(bad(Problem::BadMagic {
                found: agf_magicnum,
                expected: XFS_AGF_MAGIC,
            }));
        }
        let agf_versionnum = read_u32be(b, 0x04);
        if agf_versionnum != XFS_AGF_VERSION {
            return Err(bad(Problem::BadVersion {
                found: agf_versionnum,
            }));
        }
        let agf_seqno = read_u32be(b, 0x08);
        if agf_seqno != agno {
            return Err(bad(Problem::BadSeqno { found: agf_seqno }));
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[0x40..0x50]);
        Ok(Agf {
            seqno: agf_seqno,
            length: read_u32be(b, 0x0c),
            roots: [
                read_u32be(b, 0x10),
                read_u32be(b, 0x14),
                read_u32be(b, 0x18),
            ],
            levels: [
                read_u32be(b, 0x1c),
                read_u32be(b, 0x20),
                read_u32be(b, 0x24),
            ],
            flfirst: read_u32be(b, 0x28),
            fllast: read_u32be(b, 0x2c),
            flcount: read_u32be(b, 0x30),
            freeblks: read_u32be(b, 0x34),
            longest: read_u32be(b, 0x38),
            btreeblks: read_u32be(b, 0x3c),
            uuid,
            rmap_blocks: read_u32be(b, 0x50),
            refcount_blocks: read_u32be(b, 0x54),
            refcount_root: read_u32be(b, 0x58),
            refcount_level: read_u32be(b, 0x5c),
            // 0x60 agf_spare64[14]: zero.
            lsn: read_u64be(b, 0xd0),
        })
    }

    /// The sector image (`sectsize` bytes), CRC included.
    pub fn to_bytes(&self, sectsize: usize) -> Vec<u8> {
        let mut b = vec![0u8; sectsize.max(AGF_STRUCT_SIZE)];
        write_u32be(&mut b, 0x00, XFS_AGF_MAGIC);
        write_u32be(&mut b, 0x04, XFS_AGF_VERSION);
        write_u32be(&mut b, 0x08, self.seqno);
        write_u32be(&mut b, 0x0c, self.length);
        for i in 0..3 {
            write_u32be(&mut b, 0x10 + 4 * i, self.roots[i]);
            write_u32be(&mut b, 0x1c + 4 * i, self.levels[i]);
        }
        write_u32be(&mut b, 0x28, self.flfirst);
        write_u32be(&mut b, 0x2c, self.fllast);
        write_u32be(&mut b, 0x30, self.flcount);
        write_u32be(&mut b, 0x34, self.freeblks);
        write_u32be(&mut b, 0x38, self.longest);
        write_u32be(&mut b, 0x3c, self.btreeblks);
        b[0x40..0x50].copy_from_slice(&self.uuid);
        write_u32be(&mut b, 0x50, self.rmap_blocks);
        write_u32be(&mut b, 0x54, self.refcount_blocks);
        write_u32be(&mut b, 0x58, self.refcount_root);
        write_u32be(&mut b, 0x5c, self.refcount_level);
        write_u64be(&mut b, 0xd0, self.lsn);
        crc::update(&mut b, AGF_CRC_OFF);
        b
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test may panic
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let agf = Agf {
            seqno: 2,
            length: 65536,
            roots: [1, 2, 0],
            levels: [1, 1, 0],
            flfirst: 1,
            fllast: 4,
            flcount: 4,
            freeblks: 49142,
            longest: 49142,
            btreeblks: 0,
            uuid: [7; 16],
            rmap_blocks: 0,
            refcount_blocks: 1,
            refcount_root: 5,
            refcount_level: 1,
            lsn: 0,
        };
        let b = agf.to_bytes(512);
        assert_eq!(Agf::from_bytes(&b, 2).unwrap(), agf);
        assert!(Agf::from_bytes(&b, 1).is_err());
        let mut bad = b.clone();
        bad[0x34] ^= 0x80;
        assert!(matches!(
            Agf::from_bytes(&bad, 2),
            Err(Error::Metadata(c)) if matches!(c.problem, Problem::BadCrc { .. })
        ));
        assert!(Agf::from_bytes(&b[..100], 2).is_err());
    }
}
