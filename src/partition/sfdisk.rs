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
/// libfdisk's alignment on an image file (no I/O hints, no alignment
/// offset): a grain of 1 MiB and a first LBA of 2048, except on a device
/// of at most 4 MiB (8192 sectors), where both shrink to one sector. A
/// script's `grain:` header (bytes, a multiple of 512) replaces the grain.
#[derive(Debug, Clone, Copy)]
struct Align {
    /// The grain in sectors.
    grain: u64,
    /// The first LBA the topology offers (the DOS label starts there).
    first_lba: u64,
}

/// Which way [`Align::lba`] moves an unaligned sector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Up,
    Down,
    Nearest,
}

impl Align {
    /// A device of at most this many sectors gets a one-sector grain.
    const SMALL_DISK: u64 = 4 * 2048;

    fn for_disk(total: u64, script: &Script) -> Result<Align, Rejection> {
        let small = total <= Self::SMALL_DISK;
        let mut al = if small {
            Align {
                grain: 1,
                first_lba: 1,
            }
        } else {
            Align {
                grain: 2048,
                first_lba: 2048,
            }
        };
        if let Some(v) = script.header("grain") {
            let bytes = super::script::parse_size_bytes(v)
                .filter(|b| b % SS == 0)
                .ok_or_else(|| {
                    Rejection::new(
                        Vec::new(),
                        format!(
                            "Failed to apply script headers, disk label not created: {}",
                            Errno::Invalid.text()
                        ),
                    )
                })?;
            // A grain of 0 is no grain asked for.
            if bytes > 0 {
                al.grain = bytes / SS;
            }
        }
        Ok(al)
    }

    /// True when an end given with a unit is aligned (libfdisk's
    /// `alignment_required`: the grain is more than a sector).
    fn required(&self) -> bool {
        self.grain != 1
    }

    /// libfdisk's `fdisk_align_lba`: an unaligned sector below `first`
    /// becomes `first`; others move to a grain boundary.
    fn lba(&self, lba: u64, dir: Dir, first: u64) -> u64 {
        let g = self.grain;
        if lba % g == 0 {
            return lba;
        }
        if lba < first {
            return first;
        }
        match dir {
            Dir::Up => (lba / g + 1).saturating_mul(g),
            Dir::Down => lba / g * g,
            Dir::Nearest => lba.saturating_add(g / 2) / g * g,
        }
    }

    /// libfdisk's `fdisk_align_lba_in_range`: `lba` aligned to the
    /// nearest boundary within `[start, stop]` (both aligned inwards), or
    /// left alone when that range holds less than a grain.
    fn in_range(&self, lba: u64, start: u64, stop: u64, first: u64) -> u64 {
        let (mut start, mut stop) = (start, stop);
        if start.saturating_add(self.grain) <= stop {
            start = self.lba(start, Dir::Up, first);
            stop = self.lba(stop, Dir::Down, first);
        }
        if start.saturating_add(self.grain) > stop {
            return lba;
        }
        self.lba(lba, Dir::Nearest, first).clamp(start, stop)
    }
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

/// What sfdisk would do with a script it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The writes to make.
    pub batch: WriteBatch,
    /// libfdisk's warnings on the way, one line each.
    pub warnings: Vec<String>,
}

/// Applies `script` to `dev` as sfdisk would; returns the writes to make.
pub fn apply(dev: &dyn BlockDevice, script: &Script) -> Result<Applied, Rejection> {
    let mut sector0 = vec![0u8; SS as usize];
    dev.read_at(0, &mut sector0).map_err(|e| Rejection {
        messages: vec![format!("cannot read sector 0: {e}")],
    })?;
    apply_to(dev.size() / SS, &sector0, script)
}

/// Applies `script` to a disk of `total` sectors whose sector 0 is
/// `sector0`, as sfdisk would; returns the writes to make. Pure.
pub fn apply_to(total: u64, sector0: &[u8], script: &Script) -> Result<Applied, Rejection> {
    if sector0.len() < SS as usize {
        return Err(Rejection {
            messages: vec!["sector 0 is incomplete".into()],
        });
    }
    match script.header("label") {
        Some("gpt") => apply_gpt(total, sector0, script).map(|batch| Applied {
            batch,
            warnings: Vec::new(),
        }),
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

/// A `first-lba:` or `last-lba:` header out of range: libfdisk checks the
/// script's value twice (as it creates the label and as it applies the
/// headers), warning each time.
fn lba_out_of_range(which: &str) -> Rejection {
    let msg = format!("{which} LBA specified by script is out of range.");
    let mut r = header_failure(&msg, Errno::Range);
    r.messages.insert(0, msg);
    r
}

fn entry_sectors(nents: u64) -> u64 {
    (nents * u64::from(gpt::ENTRY_SIZE)).div_ceil(SS)
}

fn apply_gpt(total: u64, sector0: &[u8], script: &Script) -> Result<WriteBatch, Rejection> {
    let al = Align::for_disk(total, script)?;
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
            return Err(lba_out_of_range("First"));
        }
        Some(f) => f,
        None if flba < al.first_lba && al.first_lba < llba => al.first_lba,
        None => flba,
    };
    let last = match header_u64(script, "last-lba")? {
        Some(l) if l > llba || l < flba => {
            return Err(lba_out_of_range("Last"));
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
    let mut next = 0usize;
    for p in &script.partitions {
        // sfdisk stops reading once the partition after the last one added
        // would be past a full table ("All partitions used.").
        if next > 0 && next == entries.len() && entries.iter().all(GptEntry::is_used) {
            break;
        }
        let partno = match p.partno {
            Some(n) if n >= entries.len() || entries[n].is_used() => None,
            Some(n) => Some(n),
            None => entries.iter().position(|e| !e.is_used()),
        };
        let added = match partno {
            Some(n) => gpt_add(&mut entries, &al, (first, last), n, p).map(|()| n),
            // libfdisk's `fdisk_partition_next_partno` found no number.
            None => Err(AddError {
                warning: None,
                errno: Errno::Range,
            }),
        };
        match added {
            Ok(n) => next = n + 1,
            Err(e) => return Err(add_failure(Vec::new(), e, next)),
        }
    }
    let used: Vec<&GptEntry> = entries.iter().filter(|e| e.is_used()).collect();
    for (i, a) in used.iter().enumerate() {
        for b in &used[..i] {
            if a.first_lba <= b.last_lba && b.first_lba <= a.last_lba {
                // libfdisk refuses to write overlapping partitions without a
                // word; sfdisk just fails.
                return Err(Rejection {
                    messages: Vec::new(),
                });
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

/// libfdisk's `find_last_free`: the last sector of the free area that
/// `start` is in (before the next partition, else the last usable LBA).
fn last_free(entries: &[GptEntry], last: u64, start: u64) -> u64 {
    entries
        .iter()
        .filter(|e| e.first_lba > start && e.first_lba < last)
        .map(|e| e.first_lba - 1)
        .min()
        .unwrap_or(last)
}

/// libfdisk's `find_first_in_largest`: the first sector of the largest
/// free area (the first of equal ones), or 0 when none is free.
fn first_in_largest(entries: &[GptEntry], first: u64, last: u64) -> u64 {
    let (mut start, mut best, mut best_size) = (0, 0, 0);
    loop {
        let f = first_available(entries, first, last, start);
        if f == 0 {
            return best;
        }
        let l = last_free(entries, last, f);
        let size = l - f + 1;
        if size > best_size {
            (best, best_size) = (f, size);
        }
        start = l + 1;
    }
}

/// libfdisk's `gpt_add_partition` for a script line (`first`..`last`: the
/// usable LBAs) into entry `partno`, which the caller found free (as
/// `fdisk_partition_next_partno` does, so libfdisk's "already defined" and
/// "all in use" warnings cannot arise from a script).
fn gpt_add(
    entries: &mut [GptEntry],
    al: &Align,
    (first, last): (u64, u64),
    partno: usize,
    p: &ScriptPartition,
) -> Result<(), AddError> {
    if first_available(entries, first, last, first) == 0 {
        return Err(fail("No free sectors available.", Errno::NoSpace));
    }
    // The default start: the largest free area, aligned within itself.
    let dflt_f = first_in_largest(entries, first, last);
    let dflt_l = last_free(entries, last, dflt_f);
    if p.start.is_none() && (dflt_l + 1).saturating_sub(dflt_f) < al.grain {
        return Err(fail("No enough free sectors available.", Errno::NoSpace));
    }
    let start = match p.start {
        None => al.in_range(dflt_f, dflt_f, dflt_l, first),
        Some(start) => {
            if first_available(entries, first, last, start) != start {
                return Err(fail(format!("Sector {start} already used."), Errno::Range));
            }
            start
        }
    };
    // The default end: the end of the free area `start` is in; in the last
    // area (up to the last usable LBA) one before its aligned end.
    let max_l = last_free(entries, last, start);
    let dflt_end = if max_l == last {
        al.in_range(max_l, start, max_l, first).wrapping_sub(1)
    } else {
        max_l
    };
    let end = match p.size {
        None => dflt_end,
        Some(size) => {
            let mut end = start.saturating_add(size).wrapping_sub(1);
            if end != dflt_end
                && p.size_aligned
                && al.required()
                && end.wrapping_sub(start) > al.grain
            {
                end = al.in_range(end, start, dflt_end, first);
                if end > start {
                    end -= 1;
                }
            }
            end
        }
    };
    if start > end {
        return Err(fail(
            format!("Could not create partition {}", partno + 1),
            Errno::Invalid,
        ));
    }
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
    al: Align,
    /// libfdisk's current first LBA (a script's start below it lowers it
    /// to 1 for the rest of the script).
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

    /// libfdisk's `find_first_free_sector`: from `start` to the end of
    /// the disk or of the extended partition.
    fn first_free(&self, logical: bool, start: u64) -> Option<u64> {
        let (_, end) = self.ranges(logical).ok()?;
        self.first_free_in_range(logical, start, end)
    }

    /// libfdisk's `add_partition` for a script line: slot `n` (0-3 a free
    /// primary, as `unused_primary` picks it; 4 and up the next logical).
    fn add(&mut self, n: usize, p: &ScriptPartition, sys: u8) -> Result<(), AddError> {
        let logical = n >= 4;
        let no_space = || fail("No free sectors available.", Errno::NoSpace);
        let errno = |e| AddError {
            warning: None,
            errno: e,
        };
        let (mut start, stop) = self.ranges(logical).map_err(errno)?;
        let mut limit = self
            .last_free_in_range(logical, start, stop)
            .ok_or_else(no_space)?;
        let low = if logical {
            self.ext.map_or(0, |(_, o)| o)
        } else {
            1
        };
        if p.start.is_some_and(|s| s >= low && s < start) {
            self.first_lba = 1;
            (start, _) = self.ranges(logical).map_err(errno)?;
        }
        // The search for the first sector: libfdisk's loop, with the
        // script's start (or the default) as the answer to its question.
        let mut read = false;
        loop {
            let mut temp = start;
            start = self.first_free(logical, start).ok_or_else(no_space)?;
            let mut dflt = start;
            if let Some(want) = p.start.filter(|_| logical && self.first_lba > 1) {
                if temp == start.wrapping_sub(self.first_lba) {
                    self.first_lba = 1;
                    start = want;
                }
            }
            // The default is aligned and unused.
            loop {
                let aligned = self.al.in_range(dflt, dflt, limit, self.first_lba);
                if let Some(d) = self.first_free(logical, aligned) {
                    dflt = d;
                }
                if !(dflt != aligned && dflt > aligned && dflt < limit) {
                    break;
                }
            }
            if dflt >= limit {
                dflt = start;
            }
            if start > limit {
                break;
            }
            if start > temp && read {
                // libfdisk says "Sector N is already allocated." (an
                // information sfdisk -q does not print).
                temp = start;
                read = false;
                if p.start.is_some() {
                    break;
                }
            }
            if !read && start == temp {
                start = match p.start {
                    None => dflt,
                    Some(s) if s < temp || s > limit => {
                        return Err(fail(
                            format!("Start sector {s} out of range."),
                            Errno::Range,
                        ));
                    }
                    Some(s) => s,
                };
                read = true;
            }
            if let Some(size) = p.size {
                let last = self.last_free(logical, start, limit).ok_or_else(no_space)?;
                if last.wrapping_sub(start).wrapping_add(1) < size {
                    if p.start.is_some_and(|s| s <= last) {
                        return Err(no_space());
                    }
                    start = last.saturating_add(1);
                }
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
        limit = self.last_free(logical, start, limit).ok_or_else(no_space)?;
        // The last sector.
        let mut aligned = false;
        let mut stop = match p.size {
            _ if start == limit => limit,
            None => limit,
            Some(size) => {
                // A size with a unit ends at `start + size`, aligned below;
                // without alignment (a one-sector grain) or without a unit,
                // one sector before.
                aligned = p.size_aligned;
                let end = start.saturating_add(size);
                if (!aligned || !self.al.required()) && end > start {
                    end - 1
                } else {
                    end
                }
            }
        };
        stop = stop.min(limit);
        if aligned && stop.wrapping_sub(start) < self.al.grain {
            aligned = false;
        }
        if stop < limit && aligned && self.al.required() {
            stop = self.al.in_range(stop, start, limit, self.first_lba);
            if stop > start {
                stop -= 1;
            }
            stop = stop.min(limit);
        }
        // libfdisk stores `stop - start + 1`: an empty partition when the
        // search ended past the limit. Anything below that would wrap.
        if stop.wrapping_add(1) < start {
            return Err(no_space());
        }
        let pte = Pte {
            offset,
            start,
            size: stop.wrapping_add(1) - start,
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

    /// libfdisk's `get_partition_unused_primary`: the line's number if it
    /// names a free primary slot, else the first free one.
    fn unused_primary(&self, p: &ScriptPartition) -> Result<usize, AddError> {
        let free = |i: usize| self.primaries[i].is_none_or(|p| !p.used());
        match p.partno {
            Some(n) if n < 4 && free(n) => Ok(n),
            Some(_) => Err(fail("Primary partition not available.", Errno::Range)),
            None => (0..4)
                .find(|&i| free(i))
                .ok_or_else(|| fail("Primary partition not available.", Errno::Range)),
        }
    }

    /// libfdisk's `add_logical`: the next logical slot.
    fn add_logical(&mut self, p: &ScriptPartition, sys: u8) -> Result<usize, AddError> {
        let n = 4 + self.logicals.len();
        self.add(n, p, sys).map(|()| n)
    }

    fn add_primary(&mut self, p: &ScriptPartition, sys: u8) -> Result<usize, AddError> {
        let n = self.unused_primary(p)?;
        self.add(n, p, sys).map(|()| n)
    }

    /// libfdisk's `dos_add_partition` for a script line: a primary or a
    /// logical, by the line's start and number, else by where there is
    /// room. Returns the slot used.
    fn add_line(&mut self, p: &ScriptPartition, sys: u8) -> Result<usize, AddError> {
        let invalid = || AddError {
            warning: None,
            errno: Errno::Invalid,
        };
        if 4 + self.logicals.len() >= MAX_DOS_PARTS {
            return Err(fail(
                "The maximum number of partitions has been created.",
                Errno::Invalid,
            ));
        }
        let ext = self.ext.map(|(_, off)| off).zip(self.ext_end());
        let exists = || fail("Extended partition already exists.", Errno::Invalid);
        match (p.start, ext, p.partno) {
            (Some(s), Some((off, end)), partno) if s >= off && s <= end => {
                if partno.is_some_and(|n| n < 4) {
                    return Err(invalid());
                }
                self.add_logical(p, sys)
            }
            (Some(_), Some(_), partno) => {
                if partno.is_some_and(|n| n >= 4) {
                    return Err(invalid());
                }
                if mbr::is_extended(sys) {
                    return Err(exists());
                }
                self.add_primary(p, sys)
            }
            (_, ext, Some(n)) if n < 4 => {
                if ext.is_some() && mbr::is_extended(sys) {
                    return Err(exists());
                }
                self.add_primary(p, sys)
            }
            (_, ext, Some(_)) => {
                if ext.is_none() {
                    return Err(fail(
                        "Extended partition does not exists. Failed to add logical partition.",
                        Errno::Invalid,
                    ));
                }
                self.add_logical(p, sys)
            }
            (_, ext, None) => {
                // Is there a free primary slot, and room outside the
                // primaries (a gap of at least a grain)?
                let grain = self.al.grain;
                let mut first = self.first_lba;
                let mut free_primary = false;
                let mut free_sectors = false;
                for slot in &self.primaries {
                    match slot.filter(Pte::used) {
                        Some(pte) => {
                            if first.saturating_add(grain) <= pte.start {
                                free_sectors = true;
                            }
                            first = pte.start.saturating_add(pte.size);
                        }
                        None => free_primary = true,
                    }
                }
                if first.saturating_add(grain) <= self.total {
                    free_sectors = true;
                }
                if free_primary && free_sectors {
                    return self.add_primary(p, sys);
                }
                if ext.is_none() {
                    return Err(invalid());
                }
                if p.start.is_some() {
                    let msg = if free_primary {
                        "All space for primary partitions is in use."
                    } else {
                        "All primary partitions are in use."
                    };
                    return Err(fail(msg, Errno::Invalid));
                }
                self.add_logical(p, sys)
            }
        }
    }

    /// True when every primary slot is used and none is an extended
    /// partition (so there are no logicals either): sfdisk then stops
    /// reading the script ("All partitions used.").
    fn full(&self) -> bool {
        self.ext.is_none() && self.primaries.iter().all(|p| p.is_some_and(|p| p.used()))
    }
}

/// libfdisk's limit on DOS partitions (primaries and logicals).
const MAX_DOS_PARTS: usize = 60;

fn apply_dos(total: u64, sector0: &[u8], script: &Script) -> Result<Applied, Rejection> {
    let al = Align::for_disk(total, script)?;
    // libfdisk warns as it sets up a DOS label on a disk past 2^32 sectors.
    let mut warnings = Vec::new();
    if total > u64::from(u32::MAX) {
        let bytes = total.saturating_mul(SS);
        warnings.push(format!(
            "The size of this disk is {} ({bytes} bytes). DOS partition table format cannot be \
             used on drives for volumes larger than {} bytes for {SS}-byte sectors. Use GUID \
             partition table format (GPT).",
            crate::guest::human::size_3letter(bytes),
            u64::from(u32::MAX) * SS
        ));
    }
    let disk_id = script
        .header("label-id")
        .and_then(|s| u32::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or_else(|| u32::from_le_bytes(Guid::random().0[..4].try_into().unwrap_or([0; 4])));
    let mut st = DosState {
        total,
        al,
        first_lba: al.first_lba,
        primaries: [None; 4],
        logicals: Vec::new(),
        ext: None,
    };
    let mut next = 0usize;
    for p in &script.partitions {
        if next > 0 && st.full() {
            break;
        }
        let sys = p
            .ptype
            .as_deref()
            .map(|t| shorthand(t, false).unwrap_or(t))
            .and_then(|t| u8::from_str_radix(t, 16).ok())
            .unwrap_or(0x83);
        match st.add_line(p, sys) {
            Ok(n) => next = n + 1,
            Err(e) => return Err(add_failure(warnings, e, next)),
        }
    }
    Ok(Applied {
        batch: dos_writes(sector0, disk_id, &st),
        warnings,
    })
}

/// sfdisk's failure for a line it could not add: libfdisk's warning, then
/// "Failed to add #N partition" with N one past the last partition added.
fn add_failure(mut warnings: Vec<String>, e: AddError, next: usize) -> Rejection {
    warnings.extend(e.warning);
    Rejection::new(
        warnings,
        format!(
            "Failed to add #{} partition: {}",
            next.saturating_add(1),
            e.errno.text()
        ),
    )
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
