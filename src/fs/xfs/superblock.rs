//! The superblock, `struct xfs_dsb`: sector 0 of every AG.
//! AG 0 holds the primary; the others hold secondaries, copies of the
//! geometry that xfs_repair falls back on.

use super::crc;
use super::error::{Error, Result, Structure};
use crate::bytes::{read_u16be, read_u32be, read_u64be, write_u16be, write_u32be, write_u64be};

/// `XFS_SB_MAGIC`, "XFSB".
pub const XFS_SB_MAGIC: u32 = 0x5846_5342;
/// Size of the on-disk structure; the rest of the sector is zero.
pub const SB_STRUCT_SIZE: usize = 0x108;
/// Offset of `sb_crc`.
pub const SB_CRC_OFF: usize = 0xe0;
/// `NULLFSINO`.
pub const NULLFSINO: u64 = u64::MAX;

/// `sb_versionnum` bits.
pub mod version {
    /// The version number lives in the low 4 bits.
    pub const NUMBITS: u16 = 0x000f;
    /// v5: CRCs, the only format ebsim handles.
    pub const V5: u16 = 5;
    /// `XFS_SB_VERSION_NLINKBIT` .. `MOREBITSBIT`: what mkfs 6.1 sets.
    pub const NLINK: u16 = 0x0020;
    /// Inode chunks are aligned.
    pub const ALIGN: u16 = 0x0080;
    /// Log v2.
    pub const LOGV2: u16 = 0x0400;
    /// `XFS_SB_VERSION_SECTORBIT`: sectors other than 512 bytes.
    pub const SECTOR: u16 = 0x0800;
    /// Unwritten extents.
    pub const EXTFLG: u16 = 0x1000;
    /// Directory v2.
    pub const DIRV2: u16 = 0x2000;
    /// `sb_features2` is valid.
    pub const MOREBITS: u16 = 0x8000;
}

/// `sb_features2` bits.
pub mod features2 {
    /// Lazy superblock counters.
    pub const LAZYSBCOUNT: u32 = 0x0002;
    /// Attr v2.
    pub const ATTR2: u32 = 0x0008;
    /// 32-bit project ids.
    pub const PROJID32: u32 = 0x0080;
    /// Metadata CRCs.
    pub const CRC: u32 = 0x0100;
    /// File type in directory entries.
    pub const FTYPE: u32 = 0x0200;
}

/// `sb_features_ro_compat` bits.
pub mod ro_compat {
    /// Free inode btree.
    pub const FINOBT: u32 = 0x1;
    /// Reverse-mapping btree.
    pub const RMAPBT: u32 = 0x2;
    /// Reflink (refcount btree).
    pub const REFLINK: u32 = 0x4;
    /// Inode btree block counts in the AGI.
    pub const INOBTCNT: u32 = 0x8;
    /// Every bit known to xfsprogs 6.1.
    pub const ALL: u32 = FINOBT | RMAPBT | REFLINK | INOBTCNT;
}

/// `sb_features_incompat` bits.
pub mod incompat {
    /// File type in directory entries.
    pub const FTYPE: u32 = 0x01;
    /// Sparse inode chunks.
    pub const SPINODES: u32 = 0x02;
    /// Metadata uuid differs from the user-visible uuid.
    pub const META_UUID: u32 = 0x04;
    /// 64-bit timestamps.
    pub const BIGTIME: u32 = 0x08;
    /// Needs xfs_repair before it may be mounted.
    pub const NEEDSREPAIR: u32 = 0x10;
    /// 64-bit extent counters.
    pub const NREXT64: u32 = 0x20;
    /// Every bit known to xfsprogs 6.1.
    pub const ALL: u32 = FTYPE | SPINODES | META_UUID | BIGTIME | NEEDSREPAIR | NREXT64;
}

/// A filesystem block number in XFS's segmented form,
/// `(agno << agblklog) | agbno`: not a linear block index unless
/// the AG size is a power of two. Convert with [`Superblock::fsb_to_ag`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SegmentedFsb(pub u64);

impl std::fmt::Display for SegmentedFsb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A superblock, field for field. Names follow `struct xfs_dsb` without the
/// `sb_` prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    pub blocksize: u32,
    pub dblocks: u64,
    pub rblocks: u64,
    pub rextents: u64,
    pub uuid: [u8; 16],
    /// Where the internal log starts (0: external log).
    pub logstart: SegmentedFsb,
    pub rootino: u64,
    pub rbmino: u64,
    pub rsumino: u64,
    pub rextsize: u32,
    pub agblocks: u32,
    pub agcount: u32,
    pub rbmblocks: u32,
    pub logblocks: u32,
    pub versionnum: u16,
    pub sectsize: u16,
    pub inodesize: u16,
    pub inopblock: u16,
    pub fname: [u8; 12],
    pub blocklog: u8,
    pub sectlog: u8,
    pub inodelog: u8,
    pub inopblog: u8,
    pub agblklog: u8,
    pub rextslog: u8,
    pub inprogress: u8,
    pub imax_pct: u8,
    pub icount: u64,
    pub ifree: u64,
    pub fdblocks: u64,
    pub frextents: u64,
    pub uquotino: u64,
    pub gquotino: u64,
    pub qflags: u16,
    pub flags: u8,
    pub shared_vn: u8,
    pub inoalignmt: u32,
    pub unit: u32,
    pub width: u32,
    pub dirblklog: u8,
    pub logsectlog: u8,
    pub logsectsize: u16,
    pub logsunit: u32,
    pub features2: u32,
    pub bad_features2: u32,
    pub features_compat: u32,
    pub features_ro_compat: u32,
    pub features_incompat: u32,
    pub features_log_incompat: u32,
    pub spino_align: u32,
    pub pquotino: u64,
    pub lsn: u64,
    pub meta_uuid: [u8; 16],
}

fn uuid_at(b: &[u8], off: usize) -> [u8; 16] {
    let mut u = [0u8; 16];
    u.copy_from_slice(&b[off..off + 16]);
    u
}

impl Superblock {
    /// Parses a superblock sector of AG `agno` (for messages). Checks the
    /// length and the magic only: see [`Superblock::verify_crc`] and
    /// [`Superblock::validate`].
    pub fn from_bytes(b: &[u8], agno: u32) -> Result<Self> {
        if b.len() < SB_STRUCT_SIZE {
            return Err(Error::corrupt(
                Structure::Superblock,
                agno,
                format!("only {} bytes", b.len()),
            ));
        }
        let sb_magicnum = read_u32be(b, 0x00);
        if sb_magicnum != XFS_SB_MAGIC {
            return Err(Error::NotXfs { magic: sb_magicnum });
        }
        let mut fname = [0u8; 12];
        fname.copy_from_slice(&b[0x6c..0x78]);
        Ok(Superblock {
            blocksize: read_u32be(b, 0x04),
            dblocks: read_u64be(b, 0x08),
            rblocks: read_u64be(b, 0x10),
            rextents: read_u64be(b, 0x18),
            uuid: uuid_at(b, 0x20),
            logstart: SegmentedFsb(read_u64be(b, 0x30)),
            rootino: read_u64be(b, 0x38),
            rbmino: read_u64be(b, 0x40),
            rsumino: read_u64be(b, 0x48),
            rextsize: read_u32be(b, 0x50),
            agblocks: read_u32be(b, 0x54),
            agcount: read_u32be(b, 0x58),
            rbmblocks: read_u32be(b, 0x5c),
            logblocks: read_u32be(b, 0x60),
            versionnum: read_u16be(b, 0x64),
            sectsize: read_u16be(b, 0x66),
            inodesize: read_u16be(b, 0x68),
            inopblock: read_u16be(b, 0x6a),
            fname,
            blocklog: b[0x78],
            sectlog: b[0x79],
            inodelog: b[0x7a],
            inopblog: b[0x7b],
            agblklog: b[0x7c],
            rextslog: b[0x7d],
            inprogress: b[0x7e],
            imax_pct: b[0x7f],
            icount: read_u64be(b, 0x80),
            ifree: read_u64be(b, 0x88),
            fdblocks: read_u64be(b, 0x90),
            frextents: read_u64be(b, 0x98),
            uquotino: read_u64be(b, 0xa0),
            gquotino: read_u64be(b, 0xa8),
            qflags: read_u16be(b, 0xb0),
            flags: b[0xb2],
            shared_vn: b[0xb3],
            inoalignmt: read_u32be(b, 0xb4),
            unit: read_u32be(b, 0xb8),
            width: read_u32be(b, 0xbc),
            dirblklog: b[0xc0],
            logsectlog: b[0xc1],
            logsectsize: read_u16be(b, 0xc2),
            logsunit: read_u32be(b, 0xc4),
            features2: read_u32be(b, 0xc8),
            bad_features2: read_u32be(b, 0xcc),
            features_compat: read_u32be(b, 0xd0),
            features_ro_compat: read_u32be(b, 0xd4),
            features_incompat: read_u32be(b, 0xd8),
            features_log_incompat: read_u32be(b, 0xdc),
            // 0xe0 sb_crc: checked by verify_crc, recomputed by to_bytes.
            spino_align: read_u32be(b, 0xe4),
            pquotino: read_u64be(b, 0xe8),
            lsn: read_u64be(b, 0xf0),
            meta_uuid: uuid_at(b, 0xf8),
        })
    }

    /// Checks the CRC of a superblock sector (`sectsize` bytes).
    pub fn verify_crc(b: &[u8], agno: u32) -> Result<()> {
        let (stored, computed) = crc::check(b, SB_CRC_OFF);
        if stored != computed {
            return Err(Error::BadCrc {
                structure: Structure::Superblock,
                agno,
                stored,
                computed,
            });
        }
        Ok(())
    }

    /// The sector image (`sectsize` bytes, zero after the structure), CRC
    /// included.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; usize::from(self.sectsize).max(SB_STRUCT_SIZE)];
        write_u32be(&mut b, 0x00, XFS_SB_MAGIC);
        write_u32be(&mut b, 0x04, self.blocksize);
        write_u64be(&mut b, 0x08, self.dblocks);
        write_u64be(&mut b, 0x10, self.rblocks);
        write_u64be(&mut b, 0x18, self.rextents);
        b[0x20..0x30].copy_from_slice(&self.uuid);
        write_u64be(&mut b, 0x30, self.logstart.0);
        write_u64be(&mut b, 0x38, self.rootino);
        write_u64be(&mut b, 0x40, self.rbmino);
        write_u64be(&mut b, 0x48, self.rsumino);
        write_u32be(&mut b, 0x50, self.rextsize);
        write_u32be(&mut b, 0x54, self.agblocks);
        write_u32be(&mut b, 0x58, self.agcount);
        write_u32be(&mut b, 0x5c, self.rbmblocks);
        write_u32be(&mut b, 0x60, self.logblocks);
        write_u16be(&mut b, 0x64, self.versionnum);
        write_u16be(&mut b, 0x66, self.sectsize);
        write_u16be(&mut b, 0x68, self.inodesize);
        write_u16be(&mut b, 0x6a, self.inopblock);
        b[0x6c..0x78].copy_from_slice(&self.fname);
        b[0x78] = self.blocklog;
        b[0x79] = self.sectlog;
        b[0x7a] = self.inodelog;
        b[0x7b] = self.inopblog;
        b[0x7c] = self.agblklog;
        b[0x7d] = self.rextslog;
        b[0x7e] = self.inprogress;
        b[0x7f] = self.imax_pct;
        write_u64be(&mut b, 0x80, self.icount);
        write_u64be(&mut b, 0x88, self.ifree);
        write_u64be(&mut b, 0x90, self.fdblocks);
        write_u64be(&mut b, 0x98, self.frextents);
        write_u64be(&mut b, 0xa0, self.uquotino);
        write_u64be(&mut b, 0xa8, self.gquotino);
        write_u16be(&mut b, 0xb0, self.qflags);
        b[0xb2] = self.flags;
        b[0xb3] = self.shared_vn;
        write_u32be(&mut b, 0xb4, self.inoalignmt);
        write_u32be(&mut b, 0xb8, self.unit);
        write_u32be(&mut b, 0xbc, self.width);
        b[0xc0] = self.dirblklog;
        b[0xc1] = self.logsectlog;
        write_u16be(&mut b, 0xc2, self.logsectsize);
        write_u32be(&mut b, 0xc4, self.logsunit);
        write_u32be(&mut b, 0xc8, self.features2);
        write_u32be(&mut b, 0xcc, self.bad_features2);
        write_u32be(&mut b, 0xd0, self.features_compat);
        write_u32be(&mut b, 0xd4, self.features_ro_compat);
        write_u32be(&mut b, 0xd8, self.features_incompat);
        write_u32be(&mut b, 0xdc, self.features_log_incompat);
        write_u32be(&mut b, 0xe4, self.spino_align);
        write_u64be(&mut b, 0xe8, self.pquotino);
        write_u64be(&mut b, 0xf0, self.lsn);
        b[0xf8..0x108].copy_from_slice(&self.meta_uuid);
        crc::update(&mut b, SB_CRC_OFF);
        b
    }

    /// True for a v5 (CRC) superblock.
    pub fn is_v5(&self) -> bool {
        self.versionnum & version::NUMBITS == version::V5
    }

    /// Tests a `sb_features_ro_compat` bit.
    pub fn has_ro_compat(&self, bit: u32) -> bool {
        self.features_ro_compat & bit != 0
    }

    /// Tests a `sb_features_incompat` bit.
    pub fn has_incompat(&self, bit: u32) -> bool {
        self.features_incompat & bit != 0
    }

    /// The uuid stamped into metadata blocks (`sb_meta_uuid` when the
    /// META_UUID feature is on, else `sb_uuid`).
    pub fn metadata_uuid(&self) -> [u8; 16] {
        if self.has_incompat(incompat::META_UUID) {
            self.meta_uuid
        } else {
            self.uuid
        }
    }

    /// The label: `sb_fname` up to its first NUL.
    pub fn label(&self) -> String {
        let end = self.fname.iter().position(|&c| c == 0).unwrap_or(12);
        String::from_utf8_lossy(&self.fname[..end]).into_owned()
    }

    /// The checks ebsim relies on before it trusts the geometry (a subset of
    /// the kernel's `xfs_validate_sb_common`): nothing later divides by
    /// zero or indexes past a buffer on account of these fields.
    pub fn validate(&self, agno: u32) -> Result<()> {
        let bad = |detail: String| Err(Error::corrupt(Structure::Superblock, agno, detail));
        if !self.is_v5() {
            return Err(Error::Unsupported(format!(
                "XFS version {} (v4 or older); only v5 (crc=1) filesystems are supported",
                self.versionnum & version::NUMBITS
            )));
        }
        let unknown = self.features_incompat & !incompat::ALL;
        if unknown != 0 {
            return Err(Error::Unsupported(format!(
                "unknown incompatible feature bits {unknown:#x}"
            )));
        }
        if self.has_incompat(incompat::NEEDSREPAIR) {
            return Err(Error::Unsupported(
                "the filesystem is marked as needing repair (run xfs_repair)".into(),
            ));
        }
        let unknown_ro = self.features_ro_compat & !ro_compat::ALL;
        if unknown_ro != 0 {
            return Err(Error::Unsupported(format!(
                "unknown read-only-compatible feature bits {unknown_ro:#x}"
            )));
        }
        if self.features_log_incompat != 0 {
            return Err(Error::Unsupported(format!(
                "log incompatible feature bits {:#x} are set (the log needs recovery)",
                self.features_log_incompat
            )));
        }
        if !(9..=16).contains(&self.blocklog) || self.blocksize != 1 << self.blocklog {
            return bad(format!(
                "block size {} does not match blocklog {}",
                self.blocksize, self.blocklog
            ));
        }
        if !(9..=15).contains(&self.sectlog)
            || u32::from(self.sectsize) != 1 << self.sectlog
            || u32::from(self.sectsize) > self.blocksize
        {
            return bad(format!(
                "sector size {} does not match sectlog {}",
                self.sectsize, self.sectlog
            ));
        }
        if !(8..=11).contains(&self.inodelog)
            || u32::from(self.inodesize) != 1 << self.inodelog
            || u32::from(self.inodesize) > self.blocksize
            || Some(self.inopblog) != self.blocklog.checked_sub(self.inodelog)
            || u32::from(self.inopblock) != 1 << self.inopblog
        {
            return bad(format!(
                "inode size {} / {} per block is inconsistent",
                self.inodesize, self.inopblock
            ));
        }
        // XFS_MIN_AG_BLOCKS .. XFS_MAX_AG_BLOCKS ((1 TiB - 1) / blocksize).
        let max_ag = ((1u64 << 40) - 1) >> self.blocklog;
        if self.agblocks < 64 || u64::from(self.agblocks) > max_ag {
            return bad(format!("AG size {} blocks is out of range", self.agblocks));
        }
        if u32::from(self.agblklog) != ceil_log2(self.agblocks) {
            return bad(format!(
                "agblklog {} does not match AG size {}",
                self.agblklog, self.agblocks
            ));
        }
        if self.agcount == 0 {
            return bad("AG count is 0".into());
        }
        let full = u64::from(self.agcount) * u64::from(self.agblocks);
        let prior = full - u64::from(self.agblocks);
        if self.dblocks > full || self.dblocks <= prior {
            return bad(format!(
                "{} data blocks do not fit {} AGs of {} blocks",
                self.dblocks, self.agcount, self.agblocks
            ));
        }
        // Byte offsets of every AG must fit in 64 bits.
        if full.checked_mul(u64::from(self.blocksize)).is_none() {
            return bad(format!(
                "{} AGs of {} blocks do not fit 64-bit byte offsets",
                self.agcount, self.agblocks
            ));
        }
        if self.logstart.0 == 0 {
            return Err(Error::Unsupported("external log".into()));
        }
        if self.logblocks == 0 {
            return bad("log size is 0".into());
        }
        let (lag, lbno) = self.fsb_to_ag(self.logstart);
        if lag >= self.agcount
            || u64::from(lbno) + u64::from(self.logblocks) > u64::from(self.ag_length(lag))
        {
            return bad(format!(
                "log at {} ({} blocks) is outside AG {lag}",
                self.logstart, self.logblocks
            ));
        }
        // Secondaries keep mkfs's "in progress" flag; a primary with it
        // set is a mkfs that never finished.
        if agno == 0 && self.inprogress != 0 {
            return Err(Error::Unsupported(
                "mkfs did not finish on this filesystem (sb_inprogress is set)".into(),
            ));
        }
        if self.rblocks != 0 {
            return Err(Error::Unsupported("realtime subvolume".into()));
        }
        Ok(())
    }

    /// Splits a segmented FSB number into (AG, AG block).
    pub fn fsb_to_ag(&self, fsb: SegmentedFsb) -> (u32, u32) {
        let fsb = fsb.0;
        let shift = u32::from(self.agblklog).min(63);
        let agno = u32::try_from(fsb >> shift).unwrap_or(u32::MAX);
        let agbno = u32::try_from(fsb & ((1u64 << shift) - 1)).unwrap_or(u32::MAX);
        (agno, agbno)
    }

    /// The segmented FSB number of (AG, AG block).
    pub fn ag_to_fsb(&self, agno: u32, agbno: u32) -> SegmentedFsb {
        SegmentedFsb((u64::from(agno) << self.agblklog.min(63)) | u64::from(agbno))
    }

    /// The length in blocks of AG `agno` (the last one may be short).
    pub fn ag_length(&self, agno: u32) -> u32 {
        let start = u64::from(agno) * u64::from(self.agblocks);
        let len = self.dblocks.saturating_sub(start);
        u32::try_from(len.min(u64::from(self.agblocks))).unwrap_or(self.agblocks)
    }

    /// The byte offset of (AG, AG block) in the device.
    pub fn ag_byte(&self, agno: u32, agbno: u32) -> u64 {
        (u64::from(agno) * u64::from(self.agblocks) + u64::from(agbno)) << self.blocklog
    }

    /// The AG holding the internal log.
    pub fn log_ag(&self) -> u32 {
        self.fsb_to_ag(self.logstart).0
    }
}

/// `ceil(log2(n))`, 0 for n <= 1 (the kernel's `xfs_highbit32(n - 1) + 1`).
pub fn ceil_log2(n: u32) -> u32 {
    if n <= 1 {
        0
    } else {
        32 - (n - 1).leading_zeros()
    }
}

/// A fresh 1G superblock's sector, for unit tests of other modules.
#[cfg(test)]
pub(crate) fn tests_sample() -> Vec<u8> {
    tests::sample().to_bytes()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test may panic
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Superblock {
        Superblock {
            blocksize: 4096,
            dblocks: 262144,
            rblocks: 0,
            rextents: 0,
            uuid: [0x11; 16],
            logstart: SegmentedFsb(131078),
            rootino: 128,
            rbmino: 129,
            rsumino: 130,
            rextsize: 1,
            agblocks: 65536,
            agcount: 4,
            rbmblocks: 0,
            logblocks: 16384,
            versionnum: 0xb4a5,
            sectsize: 512,
            inodesize: 512,
            inopblock: 8,
            fname: [0; 12],
            blocklog: 12,
            sectlog: 9,
            inodelog: 9,
            inopblog: 3,
            agblklog: 16,
            rextslog: 0,
            inprogress: 0,
            imax_pct: 25,
            icount: 64,
            ifree: 61,
            fdblocks: 245728,
            frextents: 0,
            uquotino: 0,
            gquotino: 0,
            qflags: 0,
            flags: 0,
            shared_vn: 0,
            inoalignmt: 8,
            unit: 0,
            width: 0,
            dirblklog: 0,
            logsectlog: 0,
            logsectsize: 0,
            logsunit: 1,
            features2: 0x18a,
            bad_features2: 0x18a,
            features_compat: 0,
            features_ro_compat: 0xd,
            features_incompat: 0xb,
            features_log_incompat: 0,
            spino_align: 4,
            pquotino: 0,
            lsn: 0,
            meta_uuid: [0; 16],
        }
    }

    #[test]
    fn round_trip_and_crc() {
        let sb = sample();
        let b = sb.to_bytes();
        assert_eq!(b.len(), 512);
        Superblock::verify_crc(&b, 0).unwrap();
        assert_eq!(Superblock::from_bytes(&b, 0).unwrap(), sb);
        sb.validate(0).unwrap();
        let mut bad = b.clone();
        bad[0x90] ^= 1;
        assert!(matches!(
            Superblock::verify_crc(&bad, 0),
            Err(Error::BadCrc { .. })
        ));
        bad[0] = 0;
        assert!(matches!(
            Superblock::from_bytes(&bad, 0),
            Err(Error::NotXfs { .. })
        ));
    }

    #[test]
    fn segmented_numbers() {
        let mut sb = sample();
        sb.agblocks = 13107200;
        sb.agblklog = 24;
        assert_eq!(sb.ag_to_fsb(2, 6), SegmentedFsb(33554438));
        assert_eq!(sb.fsb_to_ag(SegmentedFsb(33554438)), (2, 6));
        assert_eq!(ceil_log2(65536), 16);
        assert_eq!(ceil_log2(65537), 17);
        assert_eq!(ceil_log2(19200), 15);
        assert_eq!(ceil_log2(268435455), 28);
    }

    #[test]
    fn rejects_v4_and_unknown_features() {
        let mut sb = sample();
        sb.versionnum = 0xb4a4;
        assert!(matches!(sb.validate(0), Err(Error::Unsupported(_))));
        let mut sb = sample();
        sb.features_incompat |= 0x8000;
        assert!(matches!(sb.validate(0), Err(Error::Unsupported(_))));
        let mut sb = sample();
        sb.agblocks = 0;
        assert!(sb.validate(0).is_err());
        let mut sb = sample();
        sb.inprogress = 1;
        assert!(matches!(sb.validate(0), Err(Error::Unsupported(_))));
        sb.validate(1).unwrap();
    }
}
