//! MBR ("dos") on disk: the boot sector, its four entries, and the chain of
//! extended boot records (EBRs) holding logical partitions, read the way
//! libfdisk does.
//!
//! Sector layout: boot code 0x000..0x1B8, disk signature u32le at 0x1B8,
//! two reserved bytes, four 16-byte entries at 0x1BE, 0x55 0xAA at 0x1FE.
//! Entry layout: boot indicator 0x0, start CHS 0x1..0x4, type 0x4,
//! end CHS 0x5..0x8, start LBA u32le 0x8, sector count u32le 0xC.
//! An EBR uses entry 0 for its logical partition (start relative to the
//! EBR) and entry 1 for the link to the next EBR (start relative to the
//! extended partition).

use super::{Error, SECTOR};
use crate::blockdev::BlockDevice;
use crate::bytes::{read_u32le, write_u32le};

/// Offset of the first entry.
pub const ENTRIES_OFFSET: usize = 0x1BE;
/// Offset of the disk signature.
pub const DISK_ID_OFFSET: usize = 0x1B8;
/// Bytes of boot code sfdisk keeps when it rewrites the sector.
pub const BOOTBITS: usize = 440;
/// libfdisk's limit on the number of partitions it tracks.
pub const MAXIMUM_PARTS: usize = 60;
/// Type code of the DOS extended partition libfdisk writes into EBR links.
pub const EXTENDED: u8 = 0x05;

/// True for the extended types libfdisk follows (0x05, 0x0F, 0x85).
pub fn is_extended(sys: u8) -> bool {
    matches!(sys, 0x05 | 0x0F | 0x85)
}

/// One 16-byte partition entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MbrEntry {
    /// 0x0
    pub boot_ind: u8,
    /// 0x1..0x4
    pub start_chs: [u8; 3],
    /// 0x4
    pub sys_ind: u8,
    /// 0x5..0x8
    pub end_chs: [u8; 3],
    /// 0x8: relative to the structure holding the entry.
    pub start_lba: u32,
    /// 0xC
    pub nr_sects: u32,
}

impl MbrEntry {
    /// Decodes 16 bytes.
    pub fn from_bytes(b: &[u8]) -> MbrEntry {
        MbrEntry {
            boot_ind: b[0],
            start_chs: [b[1], b[2], b[3]],
            sys_ind: b[4],
            end_chs: [b[5], b[6], b[7]],
            start_lba: read_u32le(b, 8),
            nr_sects: read_u32le(b, 12),
        }
    }

    /// Encodes 16 bytes.
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0] = self.boot_ind;
        b[1..4].copy_from_slice(&self.start_chs);
        b[4] = self.sys_ind;
        b[5..8].copy_from_slice(&self.end_chs);
        write_u32le(&mut b, 8, self.start_lba);
        write_u32le(&mut b, 12, self.nr_sects);
        b
    }

    /// libfdisk: an entry is "cleared" when all its bytes are zero.
    pub fn is_cleared(&self) -> bool {
        *self == MbrEntry::default()
    }

    /// An entry built from absolute sectors, CHS as libfdisk computes it.
    /// `base` is the LBA the stored start is relative to.
    pub fn new(base: u64, start: u64, size: u64, sys: u8, boot: bool) -> MbrEntry {
        let end = start.saturating_add(size.saturating_sub(1));
        MbrEntry {
            boot_ind: if boot { 0x80 } else { 0 },
            start_chs: super::chs::encode(start),
            sys_ind: sys,
            end_chs: super::chs::encode(end),
            start_lba: start.saturating_sub(base) as u32,
            nr_sects: size as u32,
        }
    }
}

/// Reads the four entries of a boot sector or EBR.
pub fn entries(sector: &[u8]) -> [MbrEntry; 4] {
    let e = |i: usize| MbrEntry::from_bytes(&sector[ENTRIES_OFFSET + 16 * i..][..16]);
    [e(0), e(1), e(2), e(3)]
}

/// True when the sector ends with 0x55 0xAA.
pub fn has_magic(sector: &[u8]) -> bool {
    sector.len() >= 512 && sector[510] == 0x55 && sector[511] == 0xAA
}

/// One partition of a DOS label as libfdisk lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DosPartition {
    /// 1-based number (5 and up for logicals).
    pub number: u32,
    /// Absolute first sector.
    pub start: u64,
    /// Sectors.
    pub size: u64,
    /// Type code.
    pub sys: u8,
    /// Boot indicator byte.
    pub boot_ind: u8,
    /// For a logical, the LBA of its EBR.
    pub ebr_lba: Option<u64>,
}

impl DosPartition {
    /// Last sector, as libfdisk computes it.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.size) - u64::from(self.size != 0)
    }
}

/// A DOS label as libfdisk holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DosLabel {
    /// Disk signature.
    pub disk_id: u32,
    /// Listed partitions (not-cleared entries), primaries then logicals.
    pub partitions: Vec<DosPartition>,
    /// Number of the extended partition, if any.
    pub extended: Option<u32>,
    /// Warnings and notes libfdisk prints while reading.
    pub warnings: Vec<String>,
}

/// AIX boot sectors are not DOS labels.
const AIX_MAGIC: [u8; 4] = [0xC9, 0xC2, 0xD4, 0xC1];

struct Ebr {
    offset: u64,
    pt: MbrEntry,
    ex: MbrEntry,
}

/// Probes a DOS label as libfdisk's `dos_probe_label` does, from `sector0`
/// (possibly repaired in memory by the GPT probe). `Ok(None)`: not DOS.
pub fn probe(dev: &dyn BlockDevice, sector0: &[u8]) -> Result<Option<DosLabel>, Error> {
    if sector0.len() < 512 || sector0[..4] == AIX_MAGIC || !has_magic(sector0) {
        return Ok(None);
    }
    let disk_id = read_u32le(sector0, DISK_ID_OFFSET);
    let prim = entries(sector0);
    let mut warnings = Vec::new();
    let mut partitions = Vec::new();
    let mut extended = None;
    let mut ebrs: Vec<Ebr> = Vec::new();
    let mut ext_offset = 0u64;
    for (i, e) in prim.iter().enumerate() {
        if !is_extended(e.sys_ind) {
            continue;
        }
        if extended.is_some() {
            warnings.push(format!("Ignoring extra extended partition {}", i + 1));
            continue;
        }
        extended = Some(i as u32 + 1);
        if e.start_lba == 0 {
            warnings.push("Bad offset in primary extended partition.".into());
            continue;
        }
        let mut link = *e;
        while is_extended(link.sys_ind) {
            if 4 + ebrs.len() >= MAXIMUM_PARTS {
                warnings.push(format!(
                    "Omitting partitions after #{}. They will be deleted if you save this partition table.",
                    4 + ebrs.len()
                ));
                if let Some(last) = ebrs.last_mut() {
                    last.ex = MbrEntry::default();
                }
                break;
            }
            let offset = ext_offset + u64::from(link.start_lba);
            let mut buf = vec![0u8; SECTOR as usize];
            if offset
                .checked_mul(SECTOR)
                .is_none_or(|o| dev.read_at(o, &mut buf).is_err())
            {
                warnings.push(format!(
                    "Failed to read extended partition table (offset={offset})"
                ));
                break;
            }
            if ext_offset == 0 {
                ext_offset = u64::from(link.start_lba);
            }
            let q = entries(&buf);
            let mut pt: Option<usize> = None;
            let mut ex: Option<usize> = None;
            for (k, p) in q.iter().enumerate() {
                if p.nr_sects == 0 {
                    continue;
                }
                if is_extended(p.sys_ind) {
                    if ex.is_some() {
                        warnings.push(format!(
                            "Extra link pointer in partition table {}.",
                            4 + ebrs.len() + 1
                        ));
                    } else {
                        ex = Some(k);
                    }
                } else if p.sys_ind != 0 {
                    if pt.is_some() {
                        warnings.push(format!(
                            "Ignoring extra data in partition table {}.",
                            4 + ebrs.len() + 1
                        ));
                    } else {
                        pt = Some(k);
                    }
                }
            }
            // libfdisk's fallback choice of slots when one is missing.
            let pt = pt.unwrap_or(if ex == Some(0) { 1 } else { 0 });
            let ex = ex.unwrap_or(if pt == 0 { 1 } else { 0 });
            ebrs.push(Ebr {
                offset,
                pt: q[pt],
                ex: q[ex],
            });
            link = q[ex];
        }
    }
    // Drop a trailing empty EBR, then empty links in the middle.
    if ebrs
        .last()
        .is_some_and(|e| e.pt.is_cleared() && e.ex.is_cleared())
    {
        ebrs.pop();
    }
    loop {
        let first_has_type = ebrs.first().is_some_and(|e| e.pt.sys_ind != 0);
        let n = 4 + ebrs.len();
        let Some(i) = ebrs
            .iter()
            .position(|e| e.pt.nr_sects == 0 && (n > 5 || first_has_type))
        else {
            break;
        };
        warnings.push(format!("omitting empty partition ({})", i + 5));
        ebrs.remove(i);
    }
    for (i, e) in prim.iter().enumerate() {
        if e.is_cleared() {
            continue;
        }
        partitions.push(DosPartition {
            number: i as u32 + 1,
            start: u64::from(e.start_lba),
            size: u64::from(e.nr_sects),
            sys: e.sys_ind,
            boot_ind: e.boot_ind,
            ebr_lba: None,
        });
    }
    for (i, e) in ebrs.iter().enumerate() {
        if e.pt.is_cleared() {
            continue;
        }
        partitions.push(DosPartition {
            number: i as u32 + 5,
            start: e.offset + u64::from(e.pt.start_lba),
            size: u64::from(e.pt.nr_sects),
            sys: e.pt.sys_ind,
            boot_ind: e.pt.boot_ind,
            ebr_lba: Some(e.offset),
        });
    }
    Ok(Some(DosLabel {
        disk_id,
        partitions,
        extended,
        warnings,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_round_trip_and_chs() {
        let e = MbrEntry::new(0, 2048, 1_024_000, 0x83, true);
        assert_eq!(e.start_chs, [0x20, 0x21, 0x00]);
        assert_eq!(e.end_chs, [0xdd, 0x1e, 0x3f]);
        assert_eq!(MbrEntry::from_bytes(&e.to_bytes()), e);
        assert!(!e.is_cleared());
        assert!(MbrEntry::default().is_cleared());
    }
}
