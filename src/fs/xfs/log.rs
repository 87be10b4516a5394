//! The internal log: the clean log mkfs writes (one
//! record header and an unmount record), and the check that a log is clean
//! (a simplified `xlog_find_head` + `xlog_check_unmount_rec`).
//!
//! Log addresses are 512-byte "basic blocks" (BBs) from the start of the log.
//! Every BB starts with the cycle number of the pass that wrote it (the
//! record header keeps it at offset 4, after its magic).

use super::error::{Error, Result, Structure};
use super::superblock::Superblock;
use crate::blockdev::BlockDevice;
use crate::bytes::{read_u32be, write_u32be, write_u64be};

/// `XLOG_HEADER_MAGIC_NUM`.
pub const XLOG_HEADER_MAGIC_NUM: u32 = 0xFEED_BABE;
/// Bytes per basic block.
pub const BBSIZE: u64 = 512;
/// `XLOG_HEADER_CYCLE_SIZE`: bytes covered by one header's cycle data.
pub const XLOG_HEADER_CYCLE_SIZE: u32 = 32 * 1024;
/// `XLOG_UNMOUNT_TRANS` in `oh_flags`.
pub const XLOG_UNMOUNT_TRANS: u8 = 0x20;
/// `XFS_LOG` client id.
const XFS_LOG_CLIENTID: u8 = 0xAA;
/// `XLOG_FMT_LINUX_LE`.
const XLOG_FMT: u32 = 1;
/// `XFS_UNMOUNT_MAGIC`, stored in host (little-endian) order.
const XFS_UNMOUNT_MAGIC: u16 = 0x556e;
/// The transaction id mkfs gives its unmount record; it ends up as the
/// displaced first word of BB 1 in the header's cycle data.
const UNMOUNT_TID: u32 = 0xb0c0_d0d0;
/// How far around the head the check looks (the kernel's
/// `XLOG_TOTAL_REC_SHIFT` window, 2 MiB of log in flight at most).
const WINDOW_BBS: u64 = 4096;

/// The first record of a freshly made log (cycle 1), as
/// `libxfs_log_clear` writes it: a record header, an unmount record, and
/// as many cycle-stamped BBs as fill the log stripe unit `sunit` (bytes;
/// 0 for none, which gives two BBs). A unit over 32 KiB needs one
/// extended header per 32 KiB after the first, each starting with the
/// cycle. Everything after the record is zero.
pub fn clean_log(fs_uuid: &[u8; 16], sunit: u32) -> Vec<u8> {
    let bb = BBSIZE as usize;
    let sunit = sunit as usize;
    let cycle: u32 = 1;
    let lsn = u64::from(cycle) << 32; // (cycle 1, block 0)
    let hdrs = if sunit > XLOG_HEADER_CYCLE_SIZE as usize {
        sunit.div_ceil(XLOG_HEADER_CYCLE_SIZE as usize)
    } else {
        1
    };
    let record_bbs = (sunit / bb).max(1).max(hdrs + 1);
    let mut b = vec![0u8; record_bbs * bb];
    write_u32be(&mut b, 0x000, XLOG_HEADER_MAGIC_NUM); // h_magicno
    write_u32be(&mut b, 0x004, cycle); // h_cycle
    write_u32be(&mut b, 0x008, 2); // h_version: log v2
    // h_len: the record less its header BBs.
    let h_len = sunit.max(2 * bb) - hdrs * bb;
    write_u32be(&mut b, 0x00c, u32::try_from(h_len).unwrap_or(u32::MAX));
    write_u64be(&mut b, 0x010, lsn); // h_lsn
    write_u64be(&mut b, 0x018, lsn); // h_tail_lsn
    // 0x020 h_crc: mkfs leaves it 0; the kernel accepts that.
    write_u32be(&mut b, 0x024, u32::MAX); // h_prev_block
    write_u32be(&mut b, 0x028, 1); // h_num_logops
    write_u32be(&mut b, 0x02c, UNMOUNT_TID); // h_cycle_data[0]
    write_u32be(&mut b, 0x12c, XLOG_FMT); // h_fmt
    b[0x130..0x140].copy_from_slice(fs_uuid); // h_fs_uuid
    // h_size: the record buffer, at least 32 KiB.
    let h_size = sunit.max(XLOG_HEADER_CYCLE_SIZE as usize);
    write_u32be(&mut b, 0x140, u32::try_from(h_size).unwrap_or(u32::MAX));
    // Extended headers: xh_cycle first, no cycle data to keep.
    for i in 1..hdrs {
        write_u32be(&mut b, i * bb, cycle);
    }
    // The op header of the unmount record, its tid replaced by the cycle
    // stamp.
    let r = hdrs * bb;
    write_u32be(&mut b, r, cycle); // oh_tid -> cycle
    write_u32be(&mut b, r + 4, 8); // oh_len
    b[r + 8] = XFS_LOG_CLIENTID; // oh_clientid
    b[r + 9] = XLOG_UNMOUNT_TRANS; // oh_flags
    b[r + 12..r + 14].copy_from_slice(&XFS_UNMOUNT_MAGIC.to_le_bytes());
    // The rest of the record: zero, each BB stamped with the cycle.
    for i in hdrs + 1..record_bbs {
        write_u32be(&mut b, i * bb, cycle);
    }
    b
}

/// Where the log is: byte offset and length in BBs.
fn log_extent(sb: &Superblock) -> (u64, u64) {
    let (agno, agbno) = sb.fsb_to_ag(sb.logstart);
    let bbs = u64::from(sb.logblocks) << (sb.blocklog.saturating_sub(9));
    (sb.ag_byte(agno, agbno), bbs)
}

struct LogReader<'a, D: BlockDevice + ?Sized> {
    dev: &'a D,
    start: u64,
    bbs: u64,
}

impl<D: BlockDevice + ?Sized> LogReader<'_, D> {
    fn bb(&self, i: u64) -> Result<[u8; 512]> {
        let mut b = [0u8; 512];
        let off = self.start + (i % self.bbs) * BBSIZE;
        if off + BBSIZE > self.dev.size() {
            return Err(Error::Truncated {
                structure: Structure::Log,
                agno: 0,
                offset: off,
                size: self.dev.size(),
            });
        }
        self.dev.read_at(off, &mut b)?;
        Ok(b)
    }

    fn cycle(&self, i: u64) -> Result<u32> {
        let b = self.bb(i)?;
        Ok(cycle_of(&b))
    }

    /// The cycle numbers of BBs `range` (inside the log), read at once.
    fn cycles(&self, range: std::ops::Range<u64>) -> Result<Vec<u32>> {
        let len = range.end.saturating_sub(range.start);
        let off = self.start + range.start * BBSIZE;
        let bytes = len * BBSIZE;
        if off + bytes > self.dev.size() {
            return Err(Error::Truncated {
                structure: Structure::Log,
                agno: 0,
                offset: off,
                size: self.dev.size(),
            });
        }
        let buf = self
            .dev
            .read_vec(off, usize::try_from(bytes).unwrap_or(0))?;
        Ok(buf.chunks_exact(512).map(cycle_of).collect())
    }
}

fn cycle_of(b: &[u8]) -> u32 {
    if read_u32be(b, 0) == XLOG_HEADER_MAGIC_NUM {
        read_u32be(b, 4)
    } else {
        read_u32be(b, 0)
    }
}

/// Where the next log write goes, as the kernel finds it at mount
/// (`xlog_find_tail`): the head BB and the cycle of the pass writing it.
/// Metadata stamped with a log sequence number (LSN, `cycle << 32 | BB`)
/// beyond it was written by a log that no longer exists, and the kernel's
/// verifiers refuse it (`xfs_log_check_lsn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogHead {
    /// The current cycle: the last record's `h_cycle`, plus one when that
    /// record lies behind the head across the end of the log.
    pub cycle: u32,
    /// The head, in BBs from the start of the log.
    pub block: u64,
}

/// `NULLCOMMITLSN`: an LSN that is never checked.
pub const NULLCOMMITLSN: u64 = u64::MAX;

impl LogHead {
    /// The LSN of the head, `cycle:block`.
    pub fn lsn(&self) -> u64 {
        (u64::from(self.cycle) << 32) | (self.block & 0xffff_ffff)
    }

    /// True when `lsn` is not ahead of the head (`xlog_valid_lsn`): an
    /// older cycle, or this cycle at or before the head block. The null
    /// LSN always passes.
    pub fn allows(&self, lsn: u64) -> bool {
        lsn == NULLCOMMITLSN || lsn <= self.lsn()
    }
}

/// `cycle:block` as the kernel prints an LSN.
pub fn lsn_string(lsn: u64) -> String {
    format!("{}:{}", lsn >> 32, lsn & 0xffff_ffff)
}

/// Checks that the log was cleanly unmounted: the last record before the
/// head is a lone unmount record. Returns the head; a dirty or unreadable
/// log is [`Error::DirtyLog`].
pub fn check_clean<D: BlockDevice + ?Sized>(dev: &D, sb: &Superblock) -> Result<LogHead> {
    let (start, n) = log_extent(sb);
    if n < 2 {
        return Err(Error::DirtyLog("the log is too small".into()));
    }
    let log = LogReader { dev, start, bbs: n };
    let c0 = log.cycle(0)?;
    if c0 == 0 {
        return Err(Error::DirtyLog("the log was never written".into()));
    }
    // Cycle numbers run c0 ... c0 then c0-1 (or 0 where never written):
    // the head is the first BB of the older pass.
    let head = if log.cycle(n - 1)? == c0 {
        0
    } else {
        let (mut lo, mut hi) = (0u64, n - 1);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if log.cycle(mid)? == c0 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        hi
    };
    // A crash can leave writes in flight around the head: insist on the
    // clean pattern in a window on both sides.
    let older = c0 - 1;
    let before = if head == 0 { n } else { head };
    let from = before.saturating_sub(WINDOW_BBS);
    if let Some(k) = log.cycles(from..before)?.iter().position(|&c| c != c0) {
        return Err(Error::DirtyLog(format!(
            "log block {} out of sequence",
            from + k as u64
        )));
    }
    if head != 0 {
        let cycles = log.cycles(head..(head + WINDOW_BBS).min(n))?;
        if let Some(k) = cycles.iter().position(|&c| c != older && c != 0) {
            return Err(Error::DirtyLog(format!(
                "log block {} out of sequence",
                head + k as u64
            )));
        }
    }
    // The last record header before the head.
    let mut rec = None;
    for k in 1..=WINDOW_BBS.min(n) {
        let i = (head + n - k) % n;
        if read_u32be(&log.bb(i)?, 0) == XLOG_HEADER_MAGIC_NUM {
            rec = Some(i);
            break;
        }
    }
    let Some(r) = rec else {
        return Err(Error::DirtyLog("no log record before the head".into()));
    };
    let hdr = log.bb(r)?;
    let h_cycle = read_u32be(&hdr, 0x004);
    let h_version = read_u32be(&hdr, 0x008);
    let h_len = u64::from(read_u32be(&hdr, 0x00c));
    let h_num_logops = read_u32be(&hdr, 0x028);
    let h_size = read_u32be(&hdr, 0x140);
    if hdr[0x130..0x140] != sb.uuid {
        return Err(Error::DirtyLog(
            "the log belongs to another filesystem".into(),
        ));
    }
    let hblks = if h_version & 2 != 0 && h_size > XLOG_HEADER_CYCLE_SIZE {
        u64::from(h_size.div_ceil(XLOG_HEADER_CYCLE_SIZE))
    } else {
        1
    };
    let end = (r + hblks + h_len.div_ceil(BBSIZE)) % n;
    let op = log.bb((r + hblks) % n)?;
    if end != head || h_num_logops != 1 || op[9] & XLOG_UNMOUNT_TRANS == 0 {
        return Err(Error::DirtyLog(format!(
            "the last log record (block {r}) is not an unmount record"
        )));
    }
    // The record was found behind the end of the log: the head is in the
    // next pass.
    let wrapped = r >= head;
    Ok(LogHead {
        cycle: h_cycle.wrapping_add(u32::from(wrapped)),
        block: head,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test may panic
mod tests {
    use super::*;
    use crate::blockdev::{MemDevice, WriteBatch};
    use crate::fs::xfs::superblock::tests::sample;

    fn small_sb() -> Superblock {
        let mut sb = sample();
        // A log of 64 blocks at AG 0 block 6, on a 1 MiB device.
        sb.agblocks = 256;
        sb.agblklog = 8;
        sb.agcount = 1;
        sb.dblocks = 256;
        sb.logstart = crate::fs::xfs::superblock::SegmentedFsb(6);
        sb.logblocks = 64;
        sb
    }

    #[test]
    fn fresh_log_is_clean() {
        let sb = small_sb();
        let mut dev = MemDevice::new(1 << 20);
        let mut b = WriteBatch::new();
        b.write(6 * 4096, clean_log(&sb.uuid, 0));
        dev.commit(&b).unwrap();
        let head = check_clean(&dev, &sb).unwrap();
        assert_eq!(head, LogHead { cycle: 1, block: 2 });
        assert_eq!(head.lsn(), 0x1_0000_0002);
        assert!(head.allows(0) && head.allows(0x1_0000_0002) && head.allows(NULLCOMMITLSN));
        assert!(!head.allows(0x1_0000_0003) && !head.allows(0x2_0000_0000));
        assert_eq!(lsn_string(0x5_0000_0000), "5:0");
    }

    #[test]
    fn zero_or_foreign_or_dirty_logs_are_refused() {
        let sb = small_sb();
        let dev = MemDevice::new(1 << 20);
        assert!(matches!(check_clean(&dev, &sb), Err(Error::DirtyLog(_))));
        let mut dev = MemDevice::new(1 << 20);
        let mut b = WriteBatch::new();
        b.write(6 * 4096, clean_log(&[0x55; 16], 0));
        dev.commit(&b).unwrap();
        assert!(matches!(check_clean(&dev, &sb), Err(Error::DirtyLog(_))));
        // A transaction record (not an unmount) at the head.
        let mut log = clean_log(&sb.uuid, 0);
        log[512 + 9] = 0x01;
        let mut dev = MemDevice::new(1 << 20);
        let mut b = WriteBatch::new();
        b.write(6 * 4096, log.to_vec());
        dev.commit(&b).unwrap();
        assert!(matches!(check_clean(&dev, &sb), Err(Error::DirtyLog(_))));
    }
}
