//! GPT on disk: the header, the entry array, and reading a disk the way
//! libfdisk (sfdisk 2.38) does, including which copy it trusts.
//!
//! Header layout (UEFI 2.x §5.3.2), little-endian:
//!
//! | off  | field                         |
//! |------|-------------------------------|
//! | 0x00 | signature "EFI PART"          |
//! | 0x08 | revision (0x00010000)         |
//! | 0x0C | header_size (92)              |
//! | 0x10 | header_crc32                  |
//! | 0x14 | reserved                      |
//! | 0x18 | my_lba                        |
//! | 0x20 | alternate_lba                 |
//! | 0x28 | first_usable_lba              |
//! | 0x30 | last_usable_lba               |
//! | 0x38 | disk_guid                     |
//! | 0x48 | partition_entry_lba           |
//! | 0x50 | num_partition_entries         |
//! | 0x54 | sizeof_partition_entry        |
//! | 0x58 | partition_entry_array_crc32   |

use super::guid::Guid;
use super::{Error, SECTOR};
use crate::blockdev::BlockDevice;
use crate::bytes::{read_u32le, read_u64le, write_u32le, write_u64le};

/// "EFI PART".
pub const SIGNATURE: &[u8; 8] = b"EFI PART";
/// Revision 1.0.
pub const REVISION_1_0: u32 = 0x0001_0000;
/// The header size libfdisk writes (the structure without its padding).
pub const HEADER_SIZE: u32 = 92;
/// The size of one entry as libfdisk writes it.
pub const ENTRY_SIZE: u32 = 128;
/// The default number of entries.
pub const DEFAULT_ENTRIES: u32 = 128;
/// UTF-16 code units in an entry name.
pub const NAME_UNITS: usize = 36;

/// A GPT header, field by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptHeader {
    /// 0x08
    pub revision: u32,
    /// 0x0C
    pub header_size: u32,
    /// 0x10 (as read; recomputed by `to_bytes`)
    pub header_crc32: u32,
    /// 0x18
    pub my_lba: u64,
    /// 0x20
    pub alternate_lba: u64,
    /// 0x28
    pub first_usable_lba: u64,
    /// 0x30
    pub last_usable_lba: u64,
    /// 0x38
    pub disk_guid: Guid,
    /// 0x48
    pub partition_entry_lba: u64,
    /// 0x50
    pub num_partition_entries: u32,
    /// 0x54
    pub sizeof_partition_entry: u32,
    /// 0x58
    pub partition_entry_array_crc32: u32,
}

/// Why a header was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderProblem {
    /// The sector could not be read (past the end of the device).
    Unreadable,
    /// No "EFI PART".
    Signature,
    /// header_size outside 92..=sector size.
    HeaderSize(u32),
    /// The header CRC does not match.
    HeaderCrc,
    /// The entry array could not be read or has no entries.
    Entries,
    /// The entry array CRC does not match.
    EntriesCrc,
    /// first/last usable LBAs are impossible for this disk.
    LbaRange,
    /// my_lba is not where the header was found.
    MyLba(u64),
}

impl std::fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderProblem::Unreadable => write!(f, "cannot be read (past the end of the disk)"),
            HeaderProblem::Signature => write!(f, "has no \"EFI PART\" signature"),
            HeaderProblem::HeaderSize(s) => write!(f, "has an impossible header size {s}"),
            HeaderProblem::HeaderCrc => write!(f, "has a bad header CRC32"),
            HeaderProblem::Entries => write!(f, "points at an unreadable partition entry array"),
            HeaderProblem::EntriesCrc => write!(f, "has a bad partition entry array CRC32"),
            HeaderProblem::LbaRange => write!(f, "has usable LBAs outside the disk"),
            HeaderProblem::MyLba(l) => write!(f, "says it lives at LBA {l}"),
        }
    }
}

impl GptHeader {
    /// Decodes a header from its sector, checking signature, size and CRC
    /// (the checks that need nothing but the sector).
    pub fn from_bytes(sector: &[u8]) -> Result<GptHeader, HeaderProblem> {
        if sector.len() < HEADER_SIZE as usize || &sector[0..8] != SIGNATURE {
            return Err(HeaderProblem::Signature);
        }
        let header_size = read_u32le(sector, 0x0C);
        if header_size < HEADER_SIZE || header_size as usize > sector.len() {
            return Err(HeaderProblem::HeaderSize(header_size));
        }
        let header_crc32 = read_u32le(sector, 0x10);
        if header_crc(&sector[..header_size as usize]) != header_crc32 {
            return Err(HeaderProblem::HeaderCrc);
        }
        let mut disk_guid = [0u8; 16];
        disk_guid.copy_from_slice(&sector[0x38..0x48]);
        Ok(GptHeader {
            revision: read_u32le(sector, 0x08),
            header_size,
            header_crc32,
            my_lba: read_u64le(sector, 0x18),
            alternate_lba: read_u64le(sector, 0x20),
            first_usable_lba: read_u64le(sector, 0x28),
            last_usable_lba: read_u64le(sector, 0x30),
            disk_guid: Guid(disk_guid),
            partition_entry_lba: read_u64le(sector, 0x48),
            num_partition_entries: read_u32le(sector, 0x50),
            sizeof_partition_entry: read_u32le(sector, 0x54),
            partition_entry_array_crc32: read_u32le(sector, 0x58),
        })
    }

    /// Encodes the header into a whole zero-padded sector, computing its
    /// CRC (over `header_size` bytes with the CRC field as zero).
    pub fn to_bytes(&self, sector_size: usize) -> Vec<u8> {
        let mut b = vec![0u8; sector_size.max(HEADER_SIZE as usize)];
        b[0..8].copy_from_slice(SIGNATURE);
        write_u32le(&mut b, 0x08, self.revision);
        write_u32le(&mut b, 0x0C, self.header_size);
        write_u64le(&mut b, 0x18, self.my_lba);
        write_u64le(&mut b, 0x20, self.alternate_lba);
        write_u64le(&mut b, 0x28, self.first_usable_lba);
        write_u64le(&mut b, 0x30, self.last_usable_lba);
        b[0x38..0x48].copy_from_slice(&self.disk_guid.0);
        write_u64le(&mut b, 0x48, self.partition_entry_lba);
        write_u32le(&mut b, 0x50, self.num_partition_entries);
        write_u32le(&mut b, 0x54, self.sizeof_partition_entry);
        write_u32le(&mut b, 0x58, self.partition_entry_array_crc32);
        let size = (self.header_size as usize).clamp(HEADER_SIZE as usize, b.len());
        let crc = header_crc(&b[..size]);
        write_u32le(&mut b, 0x10, crc);
        b
    }

    /// Bytes of the entry array (`None` when zero or absurd).
    pub fn entries_bytes(&self) -> Option<u64> {
        if self.num_partition_entries == 0 || self.sizeof_partition_entry == 0 {
            return None;
        }
        Some(u64::from(self.num_partition_entries) * u64::from(self.sizeof_partition_entry))
    }
}

/// CRC32 of a header with its CRC field (0x10..0x14) taken as zero.
fn header_crc(header: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&header[..0x10]);
    h.update(&[0; 4]);
    h.update(&header[0x14..]);
    h.finalize()
}

/// One partition entry. Layout: type GUID 0x00, unique GUID 0x10,
/// first LBA 0x20, last LBA 0x28, attributes 0x30, name (UTF-16LE) 0x38.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptEntry {
    /// 0x00
    pub type_guid: Guid,
    /// 0x10
    pub unique_guid: Guid,
    /// 0x20
    pub first_lba: u64,
    /// 0x28 (inclusive)
    pub last_lba: u64,
    /// 0x30
    pub attributes: u64,
    /// 0x38: the name's UTF-16 units up to the first NUL.
    pub name: Vec<u16>,
}

impl GptEntry {
    /// Decodes one entry (at least 128 bytes).
    pub fn from_bytes(b: &[u8]) -> GptEntry {
        let mut t = [0u8; 16];
        t.copy_from_slice(&b[0x00..0x10]);
        let mut u = [0u8; 16];
        u.copy_from_slice(&b[0x10..0x20]);
        let name = (0..NAME_UNITS)
            .map(|i| u16::from_le_bytes([b[0x38 + 2 * i], b[0x39 + 2 * i]]))
            .take_while(|&c| c != 0)
            .collect();
        GptEntry {
            type_guid: Guid(t),
            unique_guid: Guid(u),
            first_lba: read_u64le(b, 0x20),
            last_lba: read_u64le(b, 0x28),
            attributes: read_u64le(b, 0x30),
            name,
        }
    }

    /// Encodes into 128 bytes.
    pub fn to_bytes(&self) -> [u8; 128] {
        let mut b = [0u8; 128];
        b[0x00..0x10].copy_from_slice(&self.type_guid.0);
        b[0x10..0x20].copy_from_slice(&self.unique_guid.0);
        write_u64le(&mut b, 0x20, self.first_lba);
        write_u64le(&mut b, 0x28, self.last_lba);
        write_u64le(&mut b, 0x30, self.attributes);
        for (i, c) in self.name.iter().take(NAME_UNITS).enumerate() {
            b[0x38 + 2 * i..0x3A + 2 * i].copy_from_slice(&c.to_le_bytes());
        }
        b
    }

    /// A slot is in use when its type GUID is not zero.
    pub fn is_used(&self) -> bool {
        !self.type_guid.is_zero()
    }

    /// Sectors covered, as libfdisk computes it (wrapping on nonsense).
    pub fn size(&self) -> u64 {
        self.last_lba.wrapping_sub(self.first_lba).wrapping_add(1)
    }

    /// The name as text (lossy for unpaired surrogates).
    pub fn name_string(&self) -> String {
        String::from_utf16_lossy(&self.name)
    }
}

/// Kind of protective MBR found in sector 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PmbrKind {
    /// One 0xEE entry and nothing else.
    Protective,
    /// 0xEE plus other partitions.
    Hybrid,
}

/// Classifies sector 0 as libfdisk's `valid_pmbr` does. Returns the kind and
/// the index of the 0xEE entry, or `None` when there is no protective entry.
pub fn pmbr_kind(sector0: &[u8]) -> Option<(PmbrKind, usize)> {
    if sector0.len() < 512 || sector0[510] != 0x55 || sector0[511] != 0xAA {
        return None;
    }
    let sys = |i: usize| sector0[446 + 16 * i + 4];
    let part = (0..4).find(|&i| sys(i) == 0xEE)?;
    if (0..4).any(|i| sys(i) != 0xEE && sys(i) != 0) {
        return Some((PmbrKind::Hybrid, part));
    }
    Some((PmbrKind::Protective, part))
}

/// A GPT as libfdisk holds it after probing: the header it works from, the
/// entries, and what it had to repair in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptLabel {
    /// The primary header (a copy of the backup when the primary was bad).
    pub primary: GptHeader,
    /// Whether the primary on disk was valid.
    pub primary_valid: bool,
    /// Whether a valid backup was found.
    pub backup_valid: bool,
    /// All entries, slot `i` is partition `i + 1` (unused ones included).
    pub entries: Vec<GptEntry>,
    /// Warnings libfdisk prints while reading (without the program prefix).
    pub warnings: Vec<String>,
    /// The PMBR kind.
    pub pmbr: PmbrKind,
}

impl GptLabel {
    /// Used partitions as `(number, entry)`, in slot order.
    pub fn partitions(&self) -> impl Iterator<Item = (u32, &GptEntry)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.is_used())
            .map(|(i, e)| (i as u32 + 1, e))
    }
}

/// Reads the header at `lba` and its entry array, with libfdisk's checks.
fn read_header(
    dev: &dyn BlockDevice,
    lba: u64,
    total_sectors: u64,
) -> Result<(GptHeader, Vec<u8>), HeaderProblem> {
    let mut sector = vec![0u8; SECTOR as usize];
    let off = lba.checked_mul(SECTOR).ok_or(HeaderProblem::Unreadable)?;
    dev.read_at(off, &mut sector)
        .map_err(|_| HeaderProblem::Unreadable)?;
    let h = GptHeader::from_bytes(&sector)?;
    let n = h.entries_bytes().ok_or(HeaderProblem::Entries)?;
    // An array bigger than the disk cannot be read; refuse before allocating.
    if n > dev.size() {
        return Err(HeaderProblem::Entries);
    }
    let eoff = h
        .partition_entry_lba
        .checked_mul(SECTOR)
        .ok_or(HeaderProblem::Entries)?;
    let mut ents = vec![0u8; n as usize];
    dev.read_at(eoff, &mut ents)
        .map_err(|_| HeaderProblem::Entries)?;
    if crc32fast::hash(&ents) != h.partition_entry_array_crc32 {
        return Err(HeaderProblem::EntriesCrc);
    }
    let last_lba = total_sectors.saturating_sub(1);
    let (fu, lu) = (h.first_usable_lba, h.last_usable_lba);
    if lu < fu || fu > last_lba || lu > last_lba || (fu < 1 && 1 < lu) {
        return Err(HeaderProblem::LbaRange);
    }
    if h.my_lba != lba {
        return Err(HeaderProblem::MyLba(h.my_lba));
    }
    Ok((h, ents))
}

fn parse_entries(h: &GptHeader, raw: &[u8]) -> Vec<GptEntry> {
    let esz = h.sizeof_partition_entry as usize;
    if esz < 128 {
        // Entries smaller than the structure: libfdisk would read past each
        // one; nothing sane is there, so treat them all as unused.
        return Vec::new();
    }
    raw.chunks_exact(esz).map(GptEntry::from_bytes).collect()
}

/// Probes `dev` for a GPT exactly as libfdisk's `gpt_probe_label` does.
/// A `None` label means "not a GPT" (libfdisk then tries the DOS label);
/// the warnings are what the probe printed on the way, either way.
/// `sector0` is the first sector, which the PMBR check may repair in memory
/// (libfdisk fixes the PMBR size there, and the DOS probe then sees the fix).
pub fn probe(
    dev: &dyn BlockDevice,
    sector0: &mut [u8],
) -> Result<(Option<GptLabel>, Vec<String>), Error> {
    let total_sectors = dev.size() / SECTOR;
    let Some((pmbr, part)) = pmbr_kind(sector0) else {
        return Ok((None, Vec::new()));
    };
    let mut warnings = Vec::new();
    if pmbr == PmbrKind::Protective {
        let e = 446 + 16 * part;
        let starting_lba = read_u32le(sector0, e + 8);
        let size = u64::from(read_u32le(sector0, e + 12));
        let want = total_sectors.saturating_sub(1);
        if starting_lba == 1 && size != want && size != 0xFFFF_FFFF {
            warnings.push(format!(
                "GPT PMBR size mismatch ({size} != {want}) will be corrected by write."
            ));
            write_u32le(sector0, e + 12, want.min(0xFFFF_FFFF) as u32);
        }
    }
    let primary = read_header(dev, 1, total_sectors);
    let (primary, backup_ok, raw_entries) = match primary {
        Ok((p, ents)) => {
            let backup = read_header(dev, p.alternate_lba, total_sectors);
            if backup.is_err() {
                warnings.push(
                    "The backup GPT table is corrupt, but the primary appears OK, so that will be used."
                        .into(),
                );
            }
            (Some(p), backup.is_ok(), ents)
        }
        Err(_) => match read_header(dev, total_sectors.saturating_sub(1), total_sectors) {
            Ok((b, ents)) => {
                warnings.push(
                    "The primary GPT table is corrupt, but the backup appears OK, so that will be used."
                        .into(),
                );
                let mut p = b.clone();
                p.my_lba = 1;
                p.alternate_lba = total_sectors.saturating_sub(1);
                p.partition_entry_lba = 2;
                let label = finish(p, false, true, &ents, warnings, pmbr, total_sectors);
                return Ok((Some(label), Vec::new()));
            }
            Err(_) => return Ok((None, warnings)),
        },
    };
    let Some(p) = primary else {
        return Ok((None, warnings));
    };
    let label = finish(
        p,
        true,
        backup_ok,
        &raw_entries,
        warnings,
        pmbr,
        total_sectors,
    );
    Ok((Some(label), Vec::new()))
}

fn finish(
    primary: GptHeader,
    primary_valid: bool,
    backup_valid: bool,
    raw_entries: &[u8],
    mut warnings: Vec<String>,
    pmbr: PmbrKind,
    total_sectors: u64,
) -> GptLabel {
    let alt = primary.alternate_lba;
    if alt > total_sectors || alt < total_sectors.saturating_sub(1) {
        warnings.push("The backup GPT table is not on the end of the device.".into());
    }
    GptLabel {
        entries: parse_entries(&primary, raw_entries),
        primary,
        primary_valid,
        backup_valid,
        warnings,
        pmbr,
    }
}

/// sfdisk's text for the attribute bits it knows (bits 0-2 and the 16
/// type-specific bits 48-63); other bits are not shown, and so are lost when
/// a table is rewritten from a dump.
pub fn attrs_to_string(attrs: u64) -> Option<String> {
    if attrs == 0 {
        return None;
    }
    let mut parts: Vec<String> = Vec::new();
    if attrs & 1 != 0 {
        parts.push("RequiredPartition".into());
    }
    if attrs & 2 != 0 {
        parts.push("NoBlockIOProtocol".into());
    }
    if attrs & 4 != 0 {
        parts.push("LegacyBIOSBootable".into());
    }
    let guid_bits: Vec<String> = (48..64)
        .filter(|b| attrs & (1u64 << b) != 0)
        .map(|b| b.to_string())
        .collect();
    if !guid_bits.is_empty() {
        parts.push(format!("GUID:{}", guid_bits.join(",")));
    }
    Some(parts.join(" "))
}

/// The attribute bits that survive a dump and rewrite.
pub const ATTRS_KEPT_BY_SFDISK: u64 = 0b111 | (0xFFFF << 48);

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> GptHeader {
        GptHeader {
            revision: REVISION_1_0,
            header_size: HEADER_SIZE,
            header_crc32: 0,
            my_lba: 1,
            alternate_lba: 2_097_151,
            first_usable_lba: 34,
            last_usable_lba: 2_097_118,
            disk_guid: Guid::parse("78E0D566-902F-4CE9-81F8-57221F52F510").unwrap(),
            partition_entry_lba: 2,
            num_partition_entries: 128,
            sizeof_partition_entry: 128,
            partition_entry_array_crc32: 0x1d0c_0779,
        }
    }

    #[test]
    fn header_round_trip_and_crc() {
        let h = header();
        let b = h.to_bytes(512);
        let back = GptHeader::from_bytes(&b).unwrap();
        assert_eq!(
            GptHeader {
                header_crc32: 0,
                ..back.clone()
            },
            h
        );
        let mut bad = b.clone();
        bad[0x30] ^= 1;
        assert_eq!(GptHeader::from_bytes(&bad), Err(HeaderProblem::HeaderCrc));
        bad[0] = b'X';
        assert_eq!(GptHeader::from_bytes(&bad), Err(HeaderProblem::Signature));
        let mut big = b;
        write_u32le(&mut big, 0x0C, 513);
        assert_eq!(
            GptHeader::from_bytes(&big),
            Err(HeaderProblem::HeaderSize(513))
        );
    }

    #[test]
    fn entry_round_trip() {
        let e = GptEntry {
            type_guid: Guid::parse(super::super::guid::types::LINUX_FS).unwrap(),
            unique_guid: Guid::random(),
            first_lba: 2048,
            last_lba: 1_026_047,
            attributes: 4 | (1 << 60),
            name: "root".encode_utf16().collect(),
        };
        assert_eq!(GptEntry::from_bytes(&e.to_bytes()), e);
        assert_eq!(e.size(), 1_024_000);
        assert_eq!(
            attrs_to_string(e.attributes).unwrap(),
            "LegacyBIOSBootable GUID:60"
        );
        assert_eq!(
            attrs_to_string(1 | 2 | (1 << 48) | (1 << 63)).unwrap(),
            "RequiredPartition NoBlockIOProtocol GUID:48,63"
        );
    }

    #[test]
    fn pmbr_kinds() {
        let mut s = vec![0u8; 512];
        assert_eq!(pmbr_kind(&s), None);
        s[510] = 0x55;
        s[511] = 0xAA;
        assert_eq!(pmbr_kind(&s), None);
        s[446 + 4] = 0xEE;
        assert_eq!(pmbr_kind(&s), Some((PmbrKind::Protective, 0)));
        s[446 + 16 + 4] = 0x83;
        assert_eq!(pmbr_kind(&s), Some((PmbrKind::Hybrid, 0)));
    }
}
