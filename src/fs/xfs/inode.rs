//! v3 inodes: the first inode chunk mkfs allocates in AG 0,
//! holding the root directory (ino 128 with 6.1's defaults, 64 with
//! CentOS 7's, whose chunk alignment is smaller), the realtime bitmap
//! and summary inodes after it, and 61 free inodes.

use super::crc;
use crate::bytes::{write_u16be, write_u32be, write_u64be};

/// `XFS_DINODE_MAGIC`, "IN".
pub const XFS_DINODE_MAGIC: u16 = 0x494e;
/// Offset of `di_crc`.
pub const DI_CRC_OFF: usize = 0x64;
/// Offset of the data fork (literal area) of a v3 inode.
pub const DI_LITERAL_OFF: usize = 0xb0;
/// Inodes per chunk (`XFS_INODES_PER_CHUNK`).
pub const XFS_INODES_PER_CHUNK: u64 = 64;
/// `XFS_DIFLAG_NEWRTBM`: the realtime bitmap uses the new format.
const XFS_DIFLAG_NEWRTBM: u16 = 0x0004;
/// `XFS_DIFLAG2_BIGTIME`.
const XFS_DIFLAG2_BIGTIME: u64 = 0x8;
/// `XFS_DINODE_FMT_LOCAL` / `EXTENTS`.
const FMT_LOCAL: u8 = 1;
const FMT_EXTENTS: u8 = 2;

/// A point in time: seconds and nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    pub sec: i64,
    pub nsec: u32,
}

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp { sec: 0, nsec: 0 };

    /// The on-disk form: [`Timestamp::bigtime`] on a bigtime filesystem,
    /// else the classic pair (signed 32-bit seconds, then nanoseconds),
    /// clamped to what 32 bits hold as the kernel clamps.
    pub fn encode(self, bigtime: bool) -> u64 {
        if bigtime {
            return self.bigtime();
        }
        let sec = self.sec.clamp(i64::from(i32::MIN), i64::from(i32::MAX));
        // OK to convert: clamped to i32 above.
        let sec = i32::try_from(sec).unwrap_or(0) as u32;
        (u64::from(sec) << 32) | u64::from(self.nsec)
    }

    /// The bigtime encoding: nanoseconds since 1901-12-13 (Unix − 2^31 s).
    pub fn bigtime(self) -> u64 {
        let secs = self.sec.saturating_add(1 << 31).max(0).unsigned_abs();
        secs.saturating_mul(1_000_000_000)
            .saturating_add(u64::from(self.nsec))
    }
}

/// The three timestamps mkfs gives the inodes it makes (each gets "now"
/// when created; real mkfs reads the clock three times).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MkfsTimes {
    pub root: Timestamp,
    pub rbm: Timestamp,
    pub rsum: Timestamp,
}

/// What distinguishes one in-use mkfs inode from another.
struct InodeSpec {
    mode: u16,
    format: u8,
    nlink: u32,
    size: u64,
    flags: u16,
    now: Timestamp,
    bigtime: bool,
}

fn free_inode(buf: &mut [u8], ino: u64, uuid: &[u8; 16]) {
    write_u16be(buf, 0x00, XFS_DINODE_MAGIC); // di_magic
    buf[0x04] = 3; // di_version
    write_u32be(buf, 0x60, u32::MAX); // di_next_unlinked: NULLAGINO
    write_u64be(buf, 0x98, ino); // di_ino
    buf[0xa0..0xb0].copy_from_slice(uuid); // di_uuid
}

fn used_inode(buf: &mut [u8], ino: u64, uuid: &[u8; 16], s: &InodeSpec) {
    free_inode(buf, ino, uuid);
    write_u16be(buf, 0x02, s.mode); // di_mode
    buf[0x05] = s.format; // di_format
    write_u32be(buf, 0x10, s.nlink); // di_nlink
    let t = |ts: Timestamp| ts.encode(s.bigtime);
    write_u64be(buf, 0x20, t(Timestamp::EPOCH)); // di_atime
    write_u64be(buf, 0x28, t(s.now)); // di_mtime
    write_u64be(buf, 0x30, t(s.now)); // di_ctime
    write_u64be(buf, 0x38, s.size); // di_size
    buf[0x53] = FMT_EXTENTS; // di_aformat
    write_u16be(buf, 0x5a, s.flags); // di_flags
    write_u64be(buf, 0x68, 2); // di_changecount
    let flags2 = if s.bigtime { XFS_DIFLAG2_BIGTIME } else { 0 };
    write_u64be(buf, 0x78, flags2); // di_flags2
    write_u64be(buf, 0x90, t(s.now)); // di_crtime
}

/// The first inode chunk: `64 × inodesize` bytes for inodes
/// `first_ino..first_ino+64`, the first three in use, their times in the
/// bigtime form when `bigtime`.
pub fn mkfs_chunk(
    first_ino: u64,
    inodesize: usize,
    uuid: &[u8; 16],
    t: &MkfsTimes,
    bigtime: bool,
) -> Vec<u8> {
    let n = XFS_INODES_PER_CHUNK as usize;
    let mut chunk = vec![0u8; n * inodesize];
    for (i, buf) in chunk.chunks_exact_mut(inodesize).enumerate() {
        let ino = first_ino + i as u64;
        match i {
            0 => {
                used_inode(
                    buf,
                    ino,
                    uuid,
                    &InodeSpec {
                        mode: 0o040755,
                        format: FMT_LOCAL,
                        nlink: 2,
                        size: 6,
                        flags: 0,
                        now: t.root,
                        bigtime,
                    },
                );
                // Short-form directory header: count 0, i8count 0, parent
                // (itself) as a 4-byte inode number.
                let parent = u32::try_from(ino).unwrap_or(u32::MAX);
                write_u32be(buf, DI_LITERAL_OFF + 2, parent);
            }
            1 | 2 => used_inode(
                buf,
                ino,
                uuid,
                &InodeSpec {
                    mode: 0o100000,
                    format: FMT_EXTENTS,
                    nlink: 1,
                    size: 0,
                    flags: if i == 1 { XFS_DIFLAG_NEWRTBM } else { 0 },
                    now: if i == 1 { t.rbm } else { t.rsum },
                    bigtime,
                },
            ),
            _ => free_inode(buf, ino, uuid),
        }
        crc::update(buf, DI_CRC_OFF);
    }
    chunk
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test may panic
mod tests {
    use super::*;

    #[test]
    fn bigtime_encoding() {
        assert_eq!(Timestamp::EPOCH.bigtime(), 0x1DCD_6500_0000_0000);
        let t = Timestamp {
            sec: 1704164645,
            nsec: 0,
        }; // 2024-01-02 03:04:05 UTC
        assert_eq!(t.bigtime(), 0x3573_cdb7_3001_3200);
    }

    #[test]
    fn root_inode_bytes() {
        let now = Timestamp {
            sec: 1704164645,
            nsec: 0,
        };
        let t = MkfsTimes {
            root: now,
            rbm: now,
            rsum: now,
        };
        let uuid = [0x11; 16];
        let chunk = mkfs_chunk(128, 512, &uuid, &t, true);
        assert_eq!(chunk.len(), 64 * 512);
        let root = &chunk[..512];
        assert_eq!(&root[0..8], &[0x49, 0x4e, 0x41, 0xed, 3, 1, 0, 0]);
        assert_eq!(&root[0xb0..0xb6], &[0, 0, 0, 0, 0, 0x80]);
        let (stored, computed) = crc::check(root, DI_CRC_OFF);
        assert_eq!(stored, computed);
        let free = &chunk[5 * 512..6 * 512];
        assert_eq!(crate::bytes::read_u64be(free, 0x98), 133);
        assert_eq!(crate::bytes::read_u16be(free, 0x02), 0);
    }
}
