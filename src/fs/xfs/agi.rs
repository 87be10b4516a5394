//! The AG inode header, `struct xfs_agi`: sector 2 of each AG.
//! It roots the inode btrees and counts the AG's inodes.

use super::crc;
use super::error::{Error, Result, Structure};
use super::verify::Problem;
use crate::bytes::{read_u32be, read_u64be, write_u32be, write_u64be};

/// `XFS_AGI_MAGIC`, "XAGI".
pub const XFS_AGI_MAGIC: u32 = 0x5841_4749;
/// `XFS_AGI_VERSION`.
pub const XFS_AGI_VERSION: u32 = 1;
/// Size of the on-disk structure.
pub const AGI_STRUCT_SIZE: usize = 0x158;
/// Offset of `agi_crc`.
pub const AGI_CRC_OFF: usize = 0x138;
/// `NULLAGINO`.
pub const NULLAGINO: u32 = u32::MAX;
/// Buckets of the unlinked-inode hash.
pub const XFS_AGI_UNLINKED_BUCKETS: usize = 64;

/// An AGI. Names follow `struct xfs_agi` without the `agi_` prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agi {
    pub seqno: u32,
    pub length: u32,
    pub count: u32,
    pub root: u32,
    pub level: u32,
    pub freecount: u32,
    pub newino: u32,
    pub dirino: u32,
    pub unlinked: [u32; XFS_AGI_UNLINKED_BUCKETS],
    pub uuid: [u8; 16],
    pub lsn: u64,
    pub free_root: u32,
    pub free_level: u32,
    pub iblocks: u32,
    pub fblocks: u32,
}

impl Agi {
    /// Parses the AGI sector of AG `agno` and makes the context-free
    /// checks of the kernel's read verifier, in its order: CRC, magic,
    /// version, sequence number. The checks that need the superblock are
    /// [`super::verify::check_agi`].
    pub fn from_bytes(b: &[u8], agno: u32) -> Result<Self> {
        let bad = |p: Problem| Error::metadata(Structure::Agi, agno, p);
        if b.len() < AGI_STRUCT_SIZE {
            return Err(bad(Problem::TooShort { len: b.len() }));
        }
        let (stored, computed) = crc::check(b, AGI_CRC_OFF);
        if stored != computed {
            return Err(bad(Problem::BadCrc { stored, computed }));
        }
        let agi_magicnum = read_u32be(b, 0x00);
        if agi_magicnum != XFS_AGI_MAGIC {
            return Err(bad(Problem::BadMagic {
                found: agi_magicnum,
                expected: XFS_AGI_MAGIC,
            }));
        }
        let agi_versionnum = read_u32be(b, 0x04);
        if agi_versionnum != XFS_AGI_VERSION {
            return Err(bad(Problem::BadVersion {
                found: agi_versionnum,
            }));
        }
        let agi_seqno = read_u32be(b, 0x08);
        if agi_seqno != agno {
            return Err(bad(Problem::BadSeqno { found: agi_seqno }));
        }
        let mut unlinked = [0u32; XFS_AGI_UNLINKED_BUCKETS];
        for (i, u) in unlinked.iter_mut().enumerate() {
            *u = read_u32be(b, 0x28 + 4 * i);
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[0x128..0x138]);
        Ok(Agi {
            seqno: agi_seqno,
            length: read_u32be(b, 0x0c),
            count: read_u32be(b, 0x10),
            root: read_u32be(b, 0x14),
            level: read_u32be(b, 0x18),
            freecount: read_u32be(b, 0x1c),
            newino: read_u32be(b, 0x20),
            dirino: read_u32be(b, 0x24),
            unlinked,
            uuid,
            lsn: read_u64be(b, 0x140),
            free_root: read_u32be(b, 0x148),
            free_level: read_u32be(b, 0x14c),
            iblocks: read_u32be(b, 0x150),
            fblocks: read_u32be(b, 0x154),
        })
    }

    /// The sector image (`sectsize` bytes), CRC included.
    pub fn to_bytes(&self, sectsize: usize) -> Vec<u8> {
        let mut b = vec![0u8; sectsize.max(AGI_STRUCT_SIZE)];
        write_u32be(&mut b, 0x00, XFS_AGI_MAGIC);
        write_u32be(&mut b, 0x04, XFS_AGI_VERSION);
        write_u32be(&mut b, 0x08, self.seqno);
        write_u32be(&mut b, 0x0c, self.length);
        write_u32be(&mut b, 0x10, self.count);
        write_u32be(&mut b, 0x14, self.root);
        write_u32be(&mut b, 0x18, self.level);
        write_u32be(&mut b, 0x1c, self.freecount);
        write_u32be(&mut b, 0x20, self.newino);
        write_u32be(&mut b, 0x24, self.dirino);
        for (i, u) in self.unlinked.iter().enumerate() {
            write_u32be(&mut b, 0x28 + 4 * i, *u);
        }
        b[0x128..0x138].copy_from_slice(&self.uuid);
        write_u64be(&mut b, 0x140, self.lsn);
        write_u32be(&mut b, 0x148, self.free_root);
        write_u32be(&mut b, 0x14c, self.free_level);
        write_u32be(&mut b, 0x150, self.iblocks);
        write_u32be(&mut b, 0x154, self.fblocks);
        crc::update(&mut b, AGI_CRC_OFF);
        b
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test may panic
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let agi = Agi {
            seqno: 0,
            length: 65536,
            count: 64,
            root: 3,
            level: 1,
            freecount: 61,
            newino: 128,
            dirino: NULLAGINO,
            unlinked: [NULLAGINO; 64],
            uuid: [3; 16],
            lsn: 0,
            free_root: 4,
            free_level: 1,
            iblocks: 1,
            fblocks: 1,
        };
        let b = agi.to_bytes(512);
        assert_eq!(Agi::from_bytes(&b, 0).unwrap(), agi);
        let mut bad = b.clone();
        bad[0x1c] = 9;
        assert!(matches!(
            Agi::from_bytes(&bad, 0),
            Err(Error::Metadata(c)) if matches!(c.problem, Problem::BadCrc { .. })
        ));
        assert!(Agi::from_bytes(&b[..0x100], 0).is_err());
    }
}
