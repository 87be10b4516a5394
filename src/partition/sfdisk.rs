//! Writing a table from an sfdisk script, as `sfdisk --force DEV < script`
//! (util-linux 2.38) does: a new label is created from the script headers,
//! the partitions are added one by one with libfdisk's checks, and the
//! result is written. This is the write half of growpart's sfdisk resizer.
//!
//! Facts this follows (measured on sfdisk 2.38):
//! - GPT: headers are built fresh (revision 1.0, header size 92, 128-byte
//!   entries, primary entries at LBA 2, backup header at N-1 with its
//!   entries just before it, last usable = N-2-entry sectors); the disk
//!   GUID, first usable LBA and table length come from the script. The
//!   protective MBR keeps the first 440 bytes of boot code and nothing
//!   else of sector 0. Writes go backup entries, backup header, primary
//!   entries, primary header, PMBR. The old backup is not wiped.
//! - DOS: sector 0 keeps its 440 bytes of boot code, gets the script's disk
//!   signature, zeros at 0x1BC, the four entries with CHS recomputed; each
//!   logical gets a fresh EBR at `start - first_lba` (the first one at the
//!   start of the extended partition).
//! - Lines without a start or a size (see `first_in_largest`,
//!   `DosState::default_start`, `aligned_end`): placement on the 1 MiB
//!   grain as libfdisk 2.38 does it, measured case by case against it.

use super::SECTOR;
use super::gpt::{self, GptEntry, GptHeader};
use super::guid::Guid;
use super::mbr::{self, MbrEntry};
use super::script::{Script, ScriptPartition};
use crate::blockdev::{BlockDevice, WriteBatch};

/// sfdisk refused the script; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// What sfdisk printed, one line each (warnings, then the failure).
    pub messages: Vec<String>,
}

impl Rejection {
    fn new(warnings: Vec<String>, last: String) -> Rejection {
        let mut messages = warnings;
        messages.push(last);
        messages.push("Leaving.".into());
        Rejection { messages }
    }
}

/// C library error texts sfdisk prints after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Errno {
    NoSpace,
    Range,
    Invalid,
}

impl Errno {
    fn text(self) -> &'static str {
        match self {
            Errno::NoSpace => "No space left on device",
            Errno::Range => "Numerical result out of range",
            Errno::Invalid => "Invalid argument",
        }
    }
}

struct AddError {
    warning: Option<String>,
    errno: Errno,
}

fn fail(warning: impl Into<String>, errno: Errno) -> AddError {
    AddError {
        warning: Some(warning.into()),
        errno,
    }
}

/// The sector size sfdisk uses for image files.
const SS: u64 = SECTOR;
/// libfdisk's first LBA for a 1 MiB grain on 512-byte sectors.
const DEFAULT_FIRST_LBA: u64 = 2048;
/// libfdisk's alignment grain for image files: 1 MiB in sectors.
const GRAIN: u64 = 2048;

fn align_up(lba: u64) -> u64 {
    lba.div_ceil(GRAIN).saturating_mul(GRAIN)
}

fn align_down(lba: u64) -> u64 {
    lba / GRAIN * GRAIN
}

/// The nearest grain boundary; a tie goes up.
fn align_nearest(lba: u64) -> u64 {
    align_down(lba.saturating_add(GRAIN / 2))
}

/// The end sfdisk gives a partition whose size had a unit: the last sector
/// `end` asked for moves to the nearest grain boundary, kept within
/// `[align_up(start), align_down(limit)]`, minus one. Small sizes (up to a
/// grain past the start) are kept as asked.
fn aligned_end(start: u64, end: u64, limit: u64) -> u64 {
    if end.saturating_sub(start) < GRAIN {
        return end;
    }
    let e = align_nearest(end)
        .min(align_down(limit))
        .max(align_up(start));
    if e > start { e - 1 } else { e }
}

/// The type a shorthand letter stands for (`L`inux, `S`wap, `U`EFI system,
/// `R`AID, `V` LVM, `H`ome for GPT; `E`xtended and `X` Linux extended for
/// DOS), as sfdisk 2.38 maps them.
fn shorthand(t: &str, gpt: bool) -> Option<&'static str> {
    Some(match (t, gpt) {
        ("L", true) => "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
        ("S", true) => "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F",
        ("U", true) => "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
        ("R", true) => "A19D880F-05FC-4D3B-A006-743F0F84911E",
        ("V", true) => "E6D6D379-F507-44C2-A23C-238F2A3DF928",
        ("H", true) => "933AC7E1-2EB4-4F13-B844-0E14E2AEF915",
        ("L", false) => "83",
        ("S", false) => "82",
        ("U", false) => "ef",
        ("R", false) => "fd",
        ("V", false) => "8e",
        ("E", false) => "5",
        ("X", false) => "85",
        _ => return None,
    })
}

/// Applies `script` to `dev` as sfdisk would; returns the writes to make.
pub fn apply(dev: &dyn BlockDevice, script: &Script) -> Result<WriteBatch, Rejection> {
    let mut sector0 = vec![0u8; SS as usize];
    dev.read_at(0, &mut sector0).map_err(|e| Rejection {
        messages: vec![format!("cannot read sector 0: {e}")],
    })?;
    apply_to(dev.size() / SS, &sector0, script)
}

/// Applies `script` to a disk of `total` sectors whose sector 0 is
/// `sector0`, as sfdisk would; returns the writes to make. Pure.
pub fn apply_to(total: u64, sector0: &[u8], script: &Script) -> Result<WriteBatch, Rejection> {
    if sector0.len() < SS as usize {
        return Err(Rejection {
            messages: vec!["sector 0 is incomplete".into()],
        });
    }
    match script.header("label") {
        Some("gpt") => apply_gpt(total, sector0, script),
        Some("dos") => apply_dos(total, sector0, script),
        other => Err(Rejection {
            messages: vec![format!("unsupported label '{}'", other.unwrap_or_default())],
        }),
    }
}

fn header_u64(script: &Script, key: &str) -> Result<Option<u64>, Rejection> {
    match script.header(key) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| Rejection {
            messages: vec![format!("unsupported {key} value '{v}'")],
        }),
    }
}

fn header_failure(msg: &str, errno: Errno) -> Rejection {
    Rejection::new(
        vec![msg.to_string()],
        format!(
            "Failed to apply script headers, disk label not created: {}",
            errno.text()
        ),
    )
}

fn entry_sectors(nents: u64) -> u64 {
    (nents * u64::from(gpt::ENTRY_SIZE)).div_ceil(SS)
}

fn apply_gpt(total: u64, sector0: &[u8], script: &Script) -> Result<WriteBatch, Rejection> {
    let mut nents = header_u64(script, "table-length")?.unwrap_or(u64::from(gpt::DEFAULT_ENTRIES));
    // libfdisk shrinks the table until it fits the device.
    let (flba, llba) = loop {
        if nents == 0 {
            return Err(header_failure(
                "Failed to create a new GPT header",
                Errno::NoSpace,
            ));
        }
        let es = entry_sectors(nents);
        if total >= 2 + es && total - 2 - es >= es + 2 {
            break (es + 2, total - 2 - es);
        }
        nents -= 1;
    };
    let first = match header_u64(script, "first-lba")? {
        Some(f) if f < flba || f > llba => {
            return Err(header_failure(
                "First LBA specified by script is out of range.",
                Errno::Range,
            ));
        }
        Some(f) => f,
        None if flba < DEFAULT_FIRST_LBA && DEFAULT_FIRST_LBA < llba => DEFAULT_FIRST_LBA,
        None => flba,
    };
    let last = match header_u64(script, "last-lba")? {
        Some(l) if l > llba || l < flba => {
            return Err(header_failure(
                "Last LBA specified by script is out of range.",
                Errno::Range,
            ));
        }
        Some(l) => l,
        None => llba,
    };
    let disk_guid = script
        .header("label-id")
        .and_then(Guid::parse)
        .unwrap_or_else(Guid::random);
    let empty = GptEntry {
        type_guid: Guid::ZERO,
        unique_guid: Guid::ZERO,
        first_lba: 0,
        last_lba: 0,
        attributes: 0,
        name: Vec::new(),
    };
    let mut entries = vec![empty; nents as usize];
    for p in &script.partitions {
        let partno = p
            .partno
            .or_else(|| entries.iter().position(|e| !e.is_used()))
            .unwrap_or(usize::MAX);
        if let Err(e) = gpt_add(&mut entries, first, last, partno, p) {
            let n = partno.saturating_add(1);
            return Err(Rejection::new(
                e.warning.into_iter().collect(),
                format!("Failed to add #{n} partition: {}", e.errno.text()),
            ));
        }
    }
    let used: Vec<&GptEntry> = entries.iter().filter(|e| e.is_used()).collect();
    for (i, a) in used.iter().enumerate() {
        for b in &used[..i] {
            if a.first_lba <= b.last_lba && b.first_lba <= a.last_lba {
                return Err(Rejection::new(
                    Vec::new(),
                    format!("Failed to write disklabel: {}", Errno::Invalid.text()),
                ));
            }
        }
    }
    Ok(gpt_writes(total, sector0, disk_guid, first, last, &entries))
}

/// libfdisk's `find_first_available`: the first sector at or after `start`
/// outside every partition, or 0 when there is none.
fn first_available(entries: &[GptEntry], first: u64, last: u64, start: u64) -> u64 {
    let mut f = start.max(first);
    loop {
        let mut moved = false;
        for e in entries.iter().filter(|e| e.is_used()) {
            if f >= e.first_lba && f <= e.last_lba {
                f = e.last_lba.saturating_add(1);
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    if f > last { 0 } else { f }
}

/// libfdisk's default start: the aligned first sector of the largest free
/// area (the first of equal ones). Free areas are the gaps between
/// partitions from the first usable LBA, each starting at the grain
/// boundary at or after the gap; a gap of less than a grain does not count.
fn first_in_largest(entries: &[GptEntry], first: u64, last: u64) -> Option<u64> {
    let mut used: Vec<(u64, u64)> = entries
        .iter()
        .filter(|e| e.is_used())
        .map(|e| (e.first_lba, e.last_lba))
        .collect();
    used.sort_unstable();
    let mut areas = Vec::new();
    let mut cur = first;
    let mut nparts = 0u64;
    let area = |from: u64, to: u64, areas: &mut Vec<(u64, u64)>| {
        let s = align_up(from);
        if s <= to {
            areas.push((s, to - s + 1));
        }
    };
    for (s, e) in used {
        if cur.saturating_add(GRAIN) <= s {
            area(cur + u64::from(nparts > 0), s - 1, &mut areas);
        }
        cur = cur.max(e);
        nparts += 1;
    }
    if cur.saturating_add(GRAIN) < last {
        area(cur + u64::from(nparts > 0), last, &mut areas);
    }
    let mut best: Option<(u64, u64)> = None;
    for a in areas {
        if best.is_none_or(|b| a.1 > b.1) {
            best = Some(a);
        }
    }
    best.map(|b| b.0)
}

fn gpt_add(
    entries: &mut [GptEntry],
    first: u64,
    last: u64,
    partno: usize,
    p: &ScriptPartition,
) -> Result<(), AddError> {
    if partno >= entries.len() {
        return Err(AddError {
            warning: None,
            errno: Errno::Range,
        });
    }
    if entries[partno].is_used() {
        return Err(fail(
            format!(
                "Partition {} is already defined.  Delete it before re-adding it.",
                partno + 1
            ),
            Errno::Range,
        ));
    }
    if first_available(entries, first, last, first) == 0 {
        return Err(fail("No free sectors available.", Errno::NoSpace));
    }
    let start = match p.start {
        Some(start) => start,
        None => first_in_largest(entries, first, last)
            .ok_or_else(|| fail("No enough free sectors available.", Errno::NoSpace))?,
    };
    if first_available(entries, first, last, start) != start {
        return Err(fail(format!("Sector {start} already used."), Errno::Range));
    }
    // The end of the free area `start` is in; in the last area (up to the
    // last usable LBA) it is aligned down to the grain, minus one.
    let area_end = entries
        .iter()
        .filter(|e| e.is_used() && e.first_lba > start)
        .map(|e| e.first_lba - 1)
        .min()
        .unwrap_or(last);
    let dflt_end = if area_end == last && align_down(last) > start {
        align_down(last) - 1
    } else {
        area_end
    };
    let end = match p.size {
        None => dflt_end,
        Some(size) if size > 0 => {
            let end = start.saturating_add(size - 1);
            if p.size_aligned {
                aligned_end(start, end, dflt_end)
            } else {
                end
            }
        }
        Some(_) => {
            return Err(fail(
                format!("Could not create partition {}", partno + 1),
                Errno::Invalid,
            ));
        }
    };
    if end > last {
        return Err(fail(
            format!("The last usable GPT sector is {last}, but {end} is requested."),
            Errno::Invalid,
        ));
    }
    if start < first {
        return Err(fail(
            format!("The first usable GPT sector is {first}, but {start} is requested."),
            Errno::Invalid,
        ));
    }
    let type_guid = p
        .ptype
        .as_deref()
        .or(Some("L"))
        .map(|t| shorthand(t, true).unwrap_or(t))
        .and_then(Guid::parse)
        .ok_or(AddError {
            warning: None,
            errno: Errno::Invalid,
        })?;
    let unique_guid = p
        .uuid
        .as_deref()
        .and_then(Guid::parse)
        .unwrap_or_else(Guid::random);
    let name: Vec<u16> = p
        .name
        .as_deref()
        .unwrap_or("")
        .encode_utf16()
        .take(gpt::NAME_UNITS)
        .collect();
    let attributes = match &p.attrs {
        Some(a) => {
            parse_attrs(a).ok_or_else(|| fail("unsupported GPT attribute", Errno::Invalid))?
        }
        None => 0,
    };
    entries[partno] = GptEntry {
        type_guid,
        unique_guid,
        first_lba: start,
        last_lba: end,
        attributes,
        name,
    };
    Ok(())
}

/// Parses sfdisk's attribute text (the inverse of `gpt::attrs_to_string`).
fn parse_attrs(s: &str) -> Option<u64> {
    let mut bits = 0u64;
    for word in s.split([' ', ',']).filter(|w| !w.is_empty()) {
        let word = word.strip_prefix("GUID:").unwrap_or(word);
        bits |= match word {
            "RequiredPartition" => 1,
            "NoBlockIOProtocol" => 2,
            "LegacyBIOSBootable" => 4,
            n => {
                let b: u32 = n.parse().ok()?;
                if !(48..64).contains(&b) {
                    return None;
                }
                1u64 << b
            }
        };
    }
    Some(bits)
}

/// The protective MBR libfdisk writes: the old boot code, one 0xEE entry.
pub fn protective_mbr(total: u64, sector0: &[u8]) -> Vec<u8> {
    let mut s = vec![0u8; SS as usize];
    s[..mbr::BOOTBITS].copy_from_slice(&sector0[..mbr::BOOTBITS]);
    let e = MbrEntry {
        boot_ind: 0,
        start_chs: [0x00, 0x02, 0x00],
        sys_ind: 0xEE,
        end_chs: [0xff, 0xff, 0xff],
        start_lba: 1,
        nr_sects: total.saturating_sub(1).min(0xFFFF_FFFF) as u32,
    };
    s[mbr::ENTRIES_OFFSET..mbr::ENTRIES_OFFSET + 16].copy_from_slice(&e.to_bytes());
    s[510] = 0x55;
    s[511] = 0xAA;
    s
}

/// Where the parts of a GPT go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptLayout {
    /// Sectors on the disk.
    pub total: u64,
    /// The disk GUID.
    pub disk_guid: Guid,
    /// First usable LBA.
    pub first_usable: u64,
    /// Last usable LBA.
    pub last_usable: u64,
    /// LBA of the primary entry array.
    pub primary_entries_lba: u64,
    /// LBA of the backup entry array.
    pub backup_entries_lba: u64,
}

/// The writes of a complete GPT as libfdisk lays it out.
pub fn gpt_writes(
    total: u64,
    sector0: &[u8],
    disk_guid: Guid,
    first: u64,
    last: u64,
    entries: &[GptEntry],
) -> WriteBatch {
    let layout = GptLayout {
        total,
        disk_guid,
        first_usable: first,
        last_usable: last,
        primary_entries_lba: 2,
        backup_entries_lba: total - 1 - entry_sectors(entries.len() as u64),
    };
    gpt_writes_with(&layout, &protective_mbr(total, sector0), entries)
}

/// The writes of a GPT: backup entries, backup header, primary entries,
/// primary header, then sector 0 (`pmbr`), so that nothing points at an
/// incomplete structure while it is written.
pub fn gpt_writes_with(l: &GptLayout, pmbr: &[u8], entries: &[GptEntry]) -> WriteBatch {
    let total = l.total;
    let nents = entries.len() as u64;
    let mut array = Vec::with_capacity(entries.len() * gpt::ENTRY_SIZE as usize);
    for e in entries {
        array.extend_from_slice(&e.to_bytes());
    }
    let array_crc = crc32fast::hash(&array);
    let primary = GptHeader {
        revision: gpt::REVISION_1_0,
        header_size: gpt::HEADER_SIZE,
        header_crc32: 0,
        my_lba: 1,
        alternate_lba: total - 1,
        first_usable_lba: l.first_usable,
        last_usable_lba: l.last_usable,
        disk_guid: l.disk_guid,
        partition_entry_lba: l.primary_entries_lba,
        num_partition_entries: nents as u32,
        sizeof_partition_entry: gpt::ENTRY_SIZE,
        partition_entry_array_crc32: array_crc,
    };
    let backup = GptHeader {
        my_lba: total - 1,
        alternate_lba: 1,
        partition_entry_lba: l.backup_entries_lba,
        ..primary.clone()
    };
    let mut b = WriteBatch::new();
    b.write(backup.partition_entry_lba * SS, array.clone());
    b.write(backup.my_lba * SS, backup.to_bytes(SS as usize));
    b.write(primary.partition_entry_lba * SS, array);
    b.write(SS, primary.to_bytes(SS as usize));
    b.write(0, pmbr.to_vec());
    b
}

// ---------------------------------------------------------------- DOS ----

/// One slot of libfdisk's DOS partition list while a script is applied.
#[derive(Debug, Clone, Copy)]
struct Pte {
    /// EBR sector for logicals (0 for primaries).
    offset: u64,
    /// Absolute start and size of the partition (size 0: unused).
    start: u64,
    size: u64,
    sys: u8,
    boot: bool,
}

impl Pte {
    fn used(&self) -> bool {
        self.size != 0 || self.sys != 0 || self.start != 0
    }
    fn end(&self) -> u64 {
        self.start.saturating_add(self.size) - u64::from(self.size != 0)
    }
}

struct DosState {
    total: u64,
    first_lba: u64,
    primaries: [Option<Pte>; 4],
    logicals: Vec<Pte>,
    ext: Option<(usize, u64)>,
}

impl DosState {
    /// Every used slot a search looks at: primaries and logicals for a
    /// primary, logicals only for a logical.
    fn slots(&self, logical: bool) -> Vec<Pte> {
        let prim = self.primaries.iter().flatten().copied();
        let logi = self.logicals.iter().copied();
        if logical {
            logi.filter(Pte::used).collect()
        } else {
            prim.chain(logi).filter(Pte::used).collect()
        }
    }

    /// The area a slot blocks: an EBR and the gap before its logical count.
    fn blocked_start(&self, p: &Pte) -> u64 {
        if p.offset != 0 {
            p.start.saturating_sub(self.first_lba)
        } else {
            p.start
        }
    }

    fn ext_end(&self) -> Option<u64> {
        let (i, _) = self.ext?;
        self.primaries[i].map(|p| p.end())
    }

    fn ranges(&self, logical: bool) -> Result<(u64, u64), Errno> {
        if logical {
            let (_, off) = self.ext.ok_or(Errno::Invalid)?;
            Ok((off + self.first_lba, self.ext_end().ok_or(Errno::Invalid)?))
        } else {
            Ok((self.first_lba, (self.total - 1).min(u64::from(u32::MAX))))
        }
    }

    fn last_free_in_range(&self, logical: bool, begin: u64, end: u64) -> Option<u64> {
        let mut last = end;
        loop {
            let mut moved = false;
            for p in self.slots(logical) {
                let s = self.blocked_start(&p);
                if last >= s && last <= p.end() {
                    last = s.checked_sub(1)?;
                    moved = true;
                    if last < begin {
                        return None;
                    }
                }
            }
            if !moved {
                return Some(last);
            }
        }
    }

    fn first_free_in_range(&self, logical: bool, begin: u64, end: u64) -> Option<u64> {
        let mut first = begin;
        loop {
            let mut moved = false;
            for p in self.slots(logical) {
                let s = self.blocked_start(&p);
                if first < s {
                    continue;
                }
                if first <= p.end() {
                    first = p.end().saturating_add(1).saturating_add(if logical {
                        self.first_lba
                    } else {
                        0
                    });
                    moved = true;
                    if first > end {
                        return None;
                    }
                }
            }
            if !moved {
                return Some(first);
            }
        }
    }

    fn last_free(&self, logical: bool, begin: u64, stop: u64) -> Option<u64> {
        let mut last = stop;
        for p in self.slots(logical) {
            let s = self.blocked_start(&p);
            let e = p.end();
            if (s >= begin && s <= last) || (e >= begin && e <= last) {
                last = s.wrapping_sub(1);
            }
            if last < begin || last == u64::MAX {
                return None;
            }
        }
        Some(if last == begin { stop } else { last })
    }

    /// The start of a line without one: the first free sector, moved to
    /// the next grain boundary and past any partition there until it is
    /// both aligned and free (the first free sector itself when that
    /// search reaches `limit`).
    fn default_start(&self, logical: bool, begin: u64, end: u64, limit: u64) -> Option<u64> {
        let first = self.first_free_in_range(logical, begin, end)?;
        let mut d = first;
        loop {
            let aligned = align_up(d);
            match self.first_free_in_range(logical, aligned, end) {
                Some(next) if next == aligned => {
                    return Some(if aligned < limit { aligned } else { first });
                }
                Some(next) if next > aligned && next < limit => d = next,
                _ => return Some(first),
            }
        }
    }

    /// libfdisk's `add_partition` for a script line.
    fn add(&mut self, n: usize, p: &ScriptPartition, sys: u8) -> Result<(), AddError> {
        let logical = n >= 4;
        let no_space = || fail("No free sectors available.", Errno::NoSpace);
        let errno = |e| AddError {
            warning: None,
            errno: e,
        };
        let (mut start, mut stop) = self.ranges(logical).map_err(errno)?;
        let mut limit = self
            .last_free_in_range(logical, start, stop)
            .ok_or_else(no_space)?;
        let want_start = match p.start {
            Some(s) => s,
            None => self
                .default_start(logical, start, stop, limit)
                .ok_or_else(no_space)?,
        };
        let want_size = match p.size {
            Some(0) => {
                return Err(fail(
                    "partition with size=0 is not supported",
                    Errno::Invalid,
                ));
            }
            other => other,
        };
        let low = if logical {
            self.ext.map_or(0, |(_, o)| o)
        } else {
            1
        };
        if want_start >= low && want_start < start {
            self.first_lba = 1;
            (start, stop) = self.ranges(logical).map_err(errno)?;
        }
        let range_end = stop;
        let mut read = false;
        loop {
            let mut temp = start;
            start = self
                .first_free_in_range(logical, start, range_end)
                .ok_or_else(no_space)?;
            if logical && self.first_lba > 1 && temp == start.wrapping_sub(self.first_lba) {
                self.first_lba = 1;
                start = want_start;
            }
            if start > limit {
                break;
            }
            if start > temp && read {
                // "Sector N is already allocated." and the start moves on.
                temp = start;
                read = false;
                let _ = (temp, read);
                break;
            }
            if !read && start == temp {
                start = want_start;
                if start < temp || start > limit {
                    return Err(fail(
                        format!("Start sector {start} out of range."),
                        Errno::Range,
                    ));
                }
                read = true;
            }
            match self.last_free(logical, start, limit) {
                Some(last) if want_size.is_some_and(|w| last - start + 1 < w) => {
                    if want_start <= last {
                        return Err(no_space());
                    }
                    start = last + 1;
                }
                Some(_) => {}
                None => return Err(no_space()),
            }
            if start == temp && read {
                break;
            }
        }
        let mut offset = 0;
        if n == 4 {
            offset = self.ext.map_or(0, |(_, o)| o);
        } else if n > 4 {
            offset = start.saturating_sub(self.first_lba);
            if Some(offset) == self.ext.map(|(_, o)| o) {
                offset += 1;
                if self.first_lba == 1 {
                    start += 1;
                }
            }
        }
        let stop_limit = self.last_free(logical, start, limit).ok_or_else(no_space)?;
        limit = stop_limit;
        let mut end = match want_size {
            _ if start == limit => limit,
            None => limit,
            // A size with a unit: libfdisk takes `start + size` as the
            // end and aligns it (to the nearest grain boundary, minus one)
            // only when the size is at least a grain, so a small one ends
            // a sector past the size asked.
            Some(w) if p.size_aligned && w >= GRAIN => {
                aligned_end(start, start.saturating_add(w), limit)
            }
            Some(w) if p.size_aligned => start.saturating_add(w),
            Some(w) => start.saturating_add(w - 1),
        };
        if end > limit {
            end = limit;
        }
        if end < start {
            // libfdisk would store a wrapped size here; refuse instead.
            return Err(no_space());
        }
        let pte = Pte {
            offset,
            start,
            size: end - start + 1,
            sys,
            boot: p.bootable,
        };
        if logical {
            self.logicals.push(pte);
        } else {
            self.primaries[n] = Some(pte);
            if mbr::is_extended(sys) {
                self.ext = Some((n, start));
            }
        }
        Ok(())
    }
}

fn apply_dos(total: u64, sector0: &[u8], script: &Script) -> Result<WriteBatch, Rejection> {
    let disk_id = script
        .header("label-id")
        .and_then(|s| u32::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or_else(|| u32::from_le_bytes(Guid::random().0[..4].try_into().unwrap_or([0; 4])));
    let mut st = DosState {
        total,
        first_lba: DEFAULT_FIRST_LBA,
        primaries: [None; 4],
        logicals: Vec::new(),
        ext: None,
    };
    for p in &script.partitions {
        let sys = p
            .ptype
            .as_deref()
            .map(|t| shorthand(t, false).unwrap_or(t))
            .and_then(|t| u8::from_str_radix(t, 16).ok())
            .unwrap_or(0x83);
        let partno = p.partno.unwrap_or(usize::MAX);
        let in_ext = match (p.start, st.ext, st.ext_end()) {
            (Some(s), Some((_, off)), Some(end)) => s >= off && s <= end,
            _ => false,
        };
        // A line without a start or a number goes into the extended
        // partition once no primary slot or no space outside it is left.
        let no_primary = st.primaries.iter().all(Option::is_some)
            || st
                .ranges(false)
                .ok()
                .and_then(|(b, e)| st.first_free_in_range(false, b, e))
                .is_none();
        let defaulted = p.start.is_none() && p.partno.is_none() && st.ext.is_some() && no_primary;
        let logical = in_ext || defaulted || (partno >= 4 && partno != usize::MAX);
        let mut number = partno;
        let result = if logical {
            if st.ext.is_none() {
                Err(fail(
                    "Extended partition does not exists. Failed to add logical partition.",
                    Errno::Invalid,
                ))
            } else if partno < 4 {
                Err(AddError {
                    warning: None,
                    errno: Errno::Invalid,
                })
            } else {
                let n = 4 + st.logicals.len();
                if p.partno.is_none() {
                    number = n;
                }
                st.add(n, p, sys)
            }
        } else if st.ext.is_some() && mbr::is_extended(sys) {
            Err(fail("Extended partition already exists.", Errno::Invalid))
        } else {
            let n = if partno < 4 && st.primaries[partno].is_none() {
                Some(partno)
            } else {
                st.primaries.iter().position(Option::is_none)
            };
            match n {
                Some(n) => {
                    if p.partno.is_none() {
                        number = n;
                    }
                    st.add(n, p, sys)
                }
                None => Err(fail("All primary partitions are in use.", Errno::Invalid)),
            }
        };
        if let Err(e) = result {
            return Err(Rejection::new(
                e.warning.into_iter().collect(),
                format!(
                    "Failed to add #{} partition: {}",
                    number.saturating_add(1),
                    e.errno.text()
                ),
            ));
        }
    }
    Ok(dos_writes(sector0, disk_id, &st))
}

fn dos_writes(sector0: &[u8], disk_id: u32, st: &DosState) -> WriteBatch {
    let mut b = WriteBatch::new();
    let ext_offset = st.ext.map_or(0, |(_, o)| o);
    // EBRs first, so nothing points at a missing one.
    for (i, l) in st.logicals.iter().enumerate() {
        let mut s = vec![0u8; SS as usize];
        let data = MbrEntry::new(l.offset, l.start, l.size, l.sys, l.boot);
        s[mbr::ENTRIES_OFFSET..][..16].copy_from_slice(&data.to_bytes());
        if let Some(next) = st.logicals.get(i + 1) {
            let span = next.end() - next.offset + 1;
            let link = MbrEntry::new(ext_offset, next.offset, span, mbr::EXTENDED, false);
            s[mbr::ENTRIES_OFFSET + 16..][..16].copy_from_slice(&link.to_bytes());
        }
        s[510] = 0x55;
        s[511] = 0xAA;
        b.write(l.offset * SS, s);
    }
    if st.logicals.is_empty() && ext_offset != 0 {
        // An extended partition without logicals gets an empty EBR.
        let mut s = vec![0u8; SS as usize];
        s[510] = 0x55;
        s[511] = 0xAA;
        b.write(ext_offset * SS, s);
    }
    let mut s = vec![0u8; SS as usize];
    s[..mbr::BOOTBITS].copy_from_slice(&sector0[..mbr::BOOTBITS]);
    s[mbr::DISK_ID_OFFSET..mbr::DISK_ID_OFFSET + 4].copy_from_slice(&disk_id.to_le_bytes());
    for (i, p) in st.primaries.iter().enumerate() {
        if let Some(p) = p {
            let e = MbrEntry::new(0, p.start, p.size, p.sys, p.boot);
            s[mbr::ENTRIES_OFFSET + 16 * i..][..16].copy_from_slice(&e.to_bytes());
        }
    }
    s[510] = 0x55;
    s[511] = 0xAA;
    b.write(0, s);
    b
}
