//! A whole v3 on-disk inode, `struct xfs_dinode`: the core
//! fields by name, and the literal area that holds the data fork and,
//! past `di_forkoff`, the attribute fork. `from_bytes` checks what a reader
//! needs (magic, version, CRC, the inode's own number, fork offsets);
//! `to_bytes` writes every field back with LSN 0 and a fresh CRC.

use super::crc;
use crate::bytes::{read_u16be, read_u32be, read_u64be, write_u16be, write_u32be, write_u64be};
use crate::fs::node::Timespec;

/// `XFS_DINODE_MAGIC`, "IN".
pub const XFS_DINODE_MAGIC: u16 = 0x494e;
/// Size of the v3 inode core: the literal area starts here.
pub const DINODE_CORE_SIZE: usize = 0xb0;
/// Offset of `di_crc`.
pub const DI_CRC_OFF: usize = 0x64;
/// `NULLAGINO`, the end of an unlinked list.
pub const NULLAGINO: u32 = u32::MAX;

/// `di_format` / `di_aformat` values.
pub mod format {
    /// A device number (special files).
    pub const DEV: u8 = 0;
    /// Data in the literal area (short-form directory, fast symlink).
    pub const LOCAL: u8 = 1;
    /// An array of extent records in the literal area.
    pub const EXTENTS: u8 = 2;
    /// The root of a bmap btree in the literal area.
    pub const BTREE: u8 = 3;
}

/// `di_flags` bits.
pub mod flags {
    /// Preallocated space (fallocate) may lie past EOF.
    pub const PREALLOC: u16 = 0x0002;
    /// `chattr +i`: no change at all.
    pub const IMMUTABLE: u16 = 0x0008;
    /// `chattr +a`: writes only at the end, never removed.
    pub const APPEND: u16 = 0x0010;
}

/// `di_flags2` bits.
pub mod flags2 {
    /// Some extents are shared (reflink).
    pub const REFLINK: u64 = 0x2;
    /// 64-bit nanosecond timestamps.
    pub const BIGTIME: u64 = 0x8;
    /// 64-bit extent counters.
    pub const NREXT64: u64 = 0x10;
}

/// Why an inode cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DinodeError {
    /// The buffer is not an inode of this size.
    #[error("only {0} bytes")]
    Short(usize),
    /// `di_magic` is not "IN".
    #[error("bad magic {0:#06x}")]
    Magic(u16),
    /// Not a v3 inode.
    #[error("version {0}, not 3")]
    Version(u8),
    /// The CRC does not match.
    #[error("bad CRC: stored {stored:#010x}, computed {computed:#010x}")]
    Crc {
        /// The CRC on disk.
        stored: u32,
        /// The CRC of the contents.
        computed: u32,
    },
    /// `di_ino` names another inode.
    #[error("claims to be inode {0}")]
    Number(u64),
    /// The attribute fork offset lies outside the literal area.
    #[error("attribute fork offset {0} is outside the inode")]
    ForkOffset(u8),
}

/// A v3 inode. Field names follow `struct xfs_dinode` without `di_`.
/// Timestamps are kept raw (see [`Dinode::time`]); `literal` is the whole
/// literal area, data fork first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dinode {
    pub mode: u16,
    pub version: u8,
    pub format: u8,
    pub onlink: u16,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub projid_lo: u16,
    pub projid_hi: u16,
    /// `di_big_nextents` with NREXT64, else padding.
    pub v3_pad: u64,
    pub atime: u64,
    pub mtime: u64,
    pub ctime: u64,
    pub size: u64,
    pub nblocks: u64,
    pub extsize: u32,
    /// `di_nextents` (or `di_big_anextents` with NREXT64).
    pub nextents32: u32,
    /// `di_anextents` (or `di_nrext64_pad` with NREXT64).
    pub anextents16: u16,
    pub forkoff: u8,
    pub aformat: u8,
    pub dmevmask: u32,
    pub dmstate: u16,
    pub flags: u16,
    pub generation: u32,
    pub next_unlinked: u32,
    pub changecount: u64,
    pub lsn: u64,
    pub flags2: u64,
    pub cowextsize: u32,
    pub pad2: [u8; 12],
    pub crtime: u64,
    pub ino: u64,
    pub uuid: [u8; 16],
    /// The literal area (`inodesize - 176` bytes).
    pub literal: Vec<u8>,
}

/// Seconds from the bigtime epoch (1901-12-13) to the Unix epoch.
const BIGTIME_EPOCH_OFFSET: i64 = 1 << 31;

impl Dinode {
    /// Parses and checks an inode buffer that should hold inode `ino`.
    pub fn from_bytes(b: &[u8], ino: u64) -> Result<Self, DinodeError> {
        if b.len() < DINODE_CORE_SIZE + 8 {
            return Err(DinodeError::Short(b.len()));
        }
        let di_magic = read_u16be(b, 0x00);
        if di_magic != XFS_DINODE_MAGIC {
            return Err(DinodeError::Magic(di_magic));
        }
        let di_version = b[0x04];
        if di_version != 3 {
            return Err(DinodeError::Version(di_version));
        }
        let (stored, computed) = crc::check(b, DI_CRC_OFF);
        if stored != computed {
            return Err(DinodeError::Crc { stored, computed });
        }
        let di_ino = read_u64be(b, 0x98);
        if di_ino != ino {
            return Err(DinodeError::Number(di_ino));
        }
        let di_forkoff = b[0x52];
        let lit = b.len() - DINODE_CORE_SIZE;
        if usize::from(di_forkoff) * 8 > lit {
            return Err(DinodeError::ForkOffset(di_forkoff));
        }
        let mut pad2 = [0u8; 12];
        pad2.copy_from_slice(&b[0x84..0x90]);
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[0xa0..0xb0]);
        Ok(Dinode {
            mode: read_u16be(b, 0x02),
            version: di_version,
            format: b[0x05],
            onlink: read_u16be(b, 0x06),
            uid: read_u32be(b, 0x08),
            gid: read_u32be(b, 0x0c),
            nlink: read_u32be(b, 0x10),
            projid_lo: read_u16be(b, 0x14),
            projid_hi: read_u16be(b, 0x16),
            v3_pad: read_u64be(b, 0x18),
            atime: read_u64be(b, 0x20),
            mtime: read_u64be(b, 0x28),
            ctime: read_u64be(b, 0x30),
            size: read_u64be(b, 0x38),
            nblocks: read_u64be(b, 0x40),
            extsize: read_u32be(b, 0x48),
            nextents32: read_u32be(b, 0x4c),
            anextents16: read_u16be(b, 0x50),
            forkoff: di_forkoff,
            aformat: b[0x53],
            dmevmask: read_u32be(b, 0x54),
            dmstate: read_u16be(b, 0x58),
            flags: read_u16be(b, 0x5a),
            generation: read_u32be(b, 0x5c),
            next_unlinked: read_u32be(b, 0x60),
            changecount: read_u64be(b, 0x68),
            lsn: read_u64be(b, 0x70),
            flags2: read_u64be(b, 0x78),
            cowextsize: read_u32be(b, 0x80),
            pad2,
            crtime: read_u64be(b, 0x90),
            ino: di_ino,
            uuid,
            literal: b[DINODE_CORE_SIZE..].to_vec(),
        })
    }

    /// A free inode as mkfs and the kernel leave one: magic, version,
    /// generation, no unlinked successor, its number and uuid.
    pub fn free(ino: u64, uuid: [u8; 16], generation: u32, inodesize: usize) -> Self {
        Dinode {
            mode: 0,
            version: 3,
            format: 0,
            onlink: 0,
            uid: 0,
            gid: 0,
            nlink: 0,
            projid_lo: 0,
            projid_hi: 0,
            v3_pad: 0,
            atime: 0,
            mtime: 0,
            ctime: 0,
            size: 0,
            nblocks: 0,
            extsize: 0,
            nextents32: 0,
            anextents16: 0,
            forkoff: 0,
            aformat: 0,
            dmevmask: 0,
            dmstate: 0,
            flags: 0,
            generation,
            next_unlinked: NULLAGINO,
            changecount: 0,
            lsn: 0,
            flags2: 0,
            cowextsize: 0,
            pad2: [0; 12],
            crtime: 0,
            ino,
            uuid,
            literal: vec![0; inodesize.saturating_sub(DINODE_CORE_SIZE)],
        }
    }

    /// The inode buffer (LSN 0, CRC computed).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; DINODE_CORE_SIZE + self.literal.len()];
        write_u16be(&mut b, 0x00, XFS_DINODE_MAGIC);
        write_u16be(&mut b, 0x02, self.mode);
        b[0x04] = self.version;
        b[0x05] = self.format;
        write_u16be(&mut b, 0x06, self.onlink);
        write_u32be(&mut b, 0x08, self.uid);
        write_u32be(&mut b, 0x0c, self.gid);
        write_u32be(&mut b, 0x10, self.nlink);
        write_u16be(&mut b, 0x14, self.projid_lo);
        write_u16be(&mut b, 0x16, self.projid_hi);
        write_u64be(&mut b, 0x18, self.v3_pad);
        write_u64be(&mut b, 0x20, self.atime);
        write_u64be(&mut b, 0x28, self.mtime);
        write_u64be(&mut b, 0x30, self.ctime);
        write_u64be(&mut b, 0x38, self.size);
        write_u64be(&mut b, 0x40, self.nblocks);
        write_u32be(&mut b, 0x48, self.extsize);
        write_u32be(&mut b, 0x4c, self.nextents32);
        write_u16be(&mut b, 0x50, self.anextents16);
        b[0x52] = self.forkoff;
        b[0x53] = self.aformat;
        write_u32be(&mut b, 0x54, self.dmevmask);
        write_u16be(&mut b, 0x58, self.dmstate);
        write_u16be(&mut b, 0x5a, self.flags);
        write_u32be(&mut b, 0x5c, self.generation);
        write_u32be(&mut b, 0x60, self.next_unlinked);
        write_u64be(&mut b, 0x68, self.changecount);
        // 0x70 di_lsn: always 0 (a metadata LSN ahead of the log head
        // makes xfs_repair complain; mkfs writes 0 too).
        write_u64be(&mut b, 0x70, 0);
        write_u64be(&mut b, 0x78, self.flags2);
        write_u32be(&mut b, 0x80, self.cowextsize);
        b[0x84..0x90].copy_from_slice(&self.pad2);
        write_u64be(&mut b, 0x90, self.crtime);
        write_u64be(&mut b, 0x98, self.ino);
        b[0xa0..0xb0].copy_from_slice(&self.uuid);
        b[DINODE_CORE_SIZE..].copy_from_slice(&self.literal);
        crc::update(&mut b, DI_CRC_OFF);
        b
    }

    /// True when the 64-bit extent counters are in use.
    pub fn nrext64(&self) -> bool {
        self.flags2 & flags2::NREXT64 != 0
    }

    /// The data fork's extent count.
    pub fn nextents(&self) -> u64 {
        if self.nrext64() {
            self.v3_pad
        } else {
            u64::from(self.nextents32)
        }
    }

    /// Sets the data fork's extent count.
    pub fn set_nextents(&mut self, n: u64) {
        if self.nrext64() {
            self.v3_pad = n;
        } else {
            self.nextents32 = u32::try_from(n).unwrap_or(u32::MAX);
        }
    }

    /// The attribute fork's extent count.
    pub fn anextents(&self) -> u64 {
        if self.nrext64() {
            u64::from(self.nextents32)
        } else {
            u64::from(self.anextents16)
        }
    }

    /// Bytes of the data fork in the literal area.
    pub fn data_fork_size(&self) -> usize {
        if self.forkoff == 0 {
            self.literal.len()
        } else {
            (usize::from(self.forkoff) * 8).min(self.literal.len())
        }
    }

    /// The data fork's bytes.
    pub fn data_fork(&self) -> &[u8] {
        &self.literal[..self.data_fork_size()]
    }

    /// The attribute fork's bytes (empty without one).
    pub fn attr_fork(&self) -> &[u8] {
        if self.forkoff == 0 {
            &[]
        } else {
            &self.literal[self.data_fork_size()..]
        }
    }

    /// Replaces the data fork's bytes (zero-padded to its size).
    pub fn set_data_fork(&mut self, bytes: &[u8]) {
        let n = self.data_fork_size();
        let area = &mut self.literal[..n];
        area.fill(0);
        let k = bytes.len().min(n);
        area[..k].copy_from_slice(&bytes[..k]);
    }

    /// True when the timestamps use the 64-bit nanosecond encoding.
    pub fn bigtime(&self) -> bool {
        self.flags2 & flags2::BIGTIME != 0
    }

    /// Decodes a raw timestamp field of this inode.
    pub fn time(&self, raw: u64) -> Timespec {
        if self.bigtime() {
            let secs = (raw / 1_000_000_000) as i64 - BIGTIME_EPOCH_OFFSET;
            Timespec {
                sec: secs,
                nsec: (raw % 1_000_000_000) as u32,
            }
        } else {
            // struct xfs_legacy_timestamp: be32 seconds, be32 nanoseconds.
            Timespec {
                sec: i64::from((raw >> 32) as u32 as i32),
                nsec: ((raw & 0xffff_ffff) as u32).min(999_999_999),
            }
        }
    }

    /// Encodes a time for this inode's timestamp fields (clamped to the
    /// range the encoding holds, as the kernel clamps).
    pub fn encode_time(&self, t: Timespec) -> u64 {
        let nsec = u64::from(t.nsec.min(999_999_999));
        if self.bigtime() {
            let secs = t
                .sec
                .saturating_add(BIGTIME_EPOCH_OFFSET)
                .clamp(0, (u64::MAX / 1_000_000_000 - 1) as i64) as u64;
            secs * 1_000_000_000 + nsec
        } else {
            let secs = t.sec.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
            (u64::from(secs as u32) << 32) | nsec
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test may panic
mod tests {
    use super::*;
    use crate::fs::xfs::inode::{MkfsTimes, Timestamp, mkfs_chunk};

    #[test]
    fn parses_mkfs_root_and_round_trips() {
        let t = Timestamp {
            sec: 1704164645,
            nsec: 5,
        };
        let chunk = mkfs_chunk(
            128,
            512,
            &[0x11; 16],
            &MkfsTimes {
                root: t,
                rbm: t,
                rsum: t,
            },
            true,
        );
        let root = Dinode::from_bytes(&chunk[..512], 128).unwrap();
        assert_eq!(root.mode, 0o040755);
        assert_eq!(root.format, format::LOCAL);
        assert_eq!(root.size, 6);
        assert_eq!(root.data_fork_size(), 336);
        assert_eq!(
            root.time(root.mtime),
            Timespec {
                sec: 1704164645,
                nsec: 5
            }
        );
        assert_eq!(root.time(root.atime), Timespec { sec: 0, nsec: 0 });
        assert_eq!(root.to_bytes(), chunk[..512].to_vec());
        assert_eq!(root.encode_time(root.time(root.mtime)), root.mtime);
        let free = Dinode::from_bytes(&chunk[512 * 5..512 * 6], 133).unwrap();
        assert_eq!(Dinode::free(133, [0x11; 16], 0, 512), free);
        assert!(matches!(
            Dinode::from_bytes(&chunk[..512], 129),
            Err(DinodeError::Number(128))
        ));
        let mut bad = chunk[..512].to_vec();
        bad[0x40] ^= 1;
        assert!(matches!(
            Dinode::from_bytes(&bad, 128),
            Err(DinodeError::Crc { .. })
        ));
    }

    #[test]
    fn legacy_timestamps() {
        let mut d = Dinode::free(1, [0; 16], 0, 512);
        let t = Timespec { sec: -5, nsec: 7 };
        let raw = d.encode_time(t);
        assert_eq!(d.time(raw), t);
        d.flags2 = flags2::BIGTIME;
        let raw = d.encode_time(t);
        assert_eq!(d.time(raw), t);
        d.forkoff = 24;
        assert_eq!(d.data_fork_size(), 192);
        assert_eq!(d.attr_fork().len(), 144);
    }
}
