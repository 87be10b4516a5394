//! growpart's planner (cloud-utils growpart 0.33 by default, 0.34 on
//! request, 0.29, 0.31 or 0.32 in the guests that ship them): how far a
//! partition can grow, and the table that results.
//!
//! What differs between the versions (cloud-utils `bin/growpart` at each
//! tag), on the sfdisk path:
//!
//! | | 0.29 | 0.31, 0.32 | 0.33 | 0.34 |
//! |---|---|---|---|---|
//! | end sectors | one past the end (`end = start + size`) | one past | last sector | last sector |
//! | 2 TiB cap | every table | MBR only | MBR only | MBR only |
//! | past-2-TiB line | `-v`: `WARN: disk is larger than 2TB. additional space will go unused.` (any table) | always, MBR: `WARNING: MBR/dos partitioned disk is larger than 2TB. Additional space will go unused.` | as 0.31 | as 0.31 |
//! | CHANGE line | `new: size=N,end=E` | `new: size=N end=E` | same | same |
//! | sizes | as computed | as computed | as computed | rounded down to 1 MiB |
//!
//! With the old end the GPT pad leaves the same last sector (the sizes
//! written are equal); only the printed ends are one higher. The
//! front end ([`Compat`]'s other methods) covers the rest: the FLOCK lines
//! (0.32 on), `resize of DISK returned 0.` and symlink resolution (0.31
//! on), `--free-percent` (0.33 on) and the restore message's wording.
//!
//! `plan_grow` is pure: it takes the table as read, the disk size and the
//! options, and returns either a [`GrowPlan`] (with the writes to make, or
//! the reason sfdisk would refuse them) or a [`NoChange`]. `apply` makes the
//! writes. The arithmetic follows growpart's shell code line by line,
//! including its quirks (the fixed 33-sector pad on GPT and MBR alike, the
//! 0.33 MBR cap one past libfdisk's limit, the sgdisk path's off-by-one).

use super::gpt::{GptEntry, GptLabel};
use super::script::{self, Script};
use super::sfdisk::{self, Rejection};
use super::{Label, SECTOR};
use crate::blockdev::{BlockDevice, WriteBatch};

/// Which growpart to behave like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Compat {
    /// cloud-utils 0.29 (CentOS 7): ends one past the partition, the
    /// 2 TiB cap on every table, `new: size=N,end=E`.
    V0_29,
    /// cloud-utils 0.31 (Amazon Linux 2 and 2023): ends one past, the cap
    /// on MBR only.
    V0_31,
    /// cloud-utils 0.32 (Ubuntu 22.04): as 0.31, and growpart locks the
    /// disk (the FLOCK lines).
    V0_32,
    /// cloud-utils 0.33 (Debian 12, Fedora 42): no alignment.
    #[default]
    V0_33,
    /// cloud-utils 0.34 (upstream): sizes rounded down to 1 MiB.
    V0_34,
}

impl Compat {
    /// The version as `growpart` calls it.
    pub fn version(self) -> &'static str {
        match self {
            Compat::V0_29 => "0.29",
            Compat::V0_31 => "0.31",
            Compat::V0_32 => "0.32",
            Compat::V0_33 => "0.33",
            Compat::V0_34 => "0.34",
        }
    }

    /// Before 0.33, `end` is one past the partition's last sector.
    pub fn end_past(self) -> bool {
        self < Compat::V0_33
    }

    /// 0.32 on locks the disk with flock and says so at `-v`.
    pub fn flock(self) -> bool {
        self >= Compat::V0_32
    }

    /// 0.31 on resolves a symlinked DISK and logs `resize of DISK
    /// returned 0.`.
    pub fn resolves_links(self) -> bool {
        self >= Compat::V0_31
    }

    /// 0.33 on knows `--free-percent`.
    pub fn free_percent(self) -> bool {
        self >= Compat::V0_33
    }

    /// The line after a successful restore (`Appears to have gone OK`
    /// before 0.31).
    pub fn restore_ok(self) -> &'static str {
        if self < Compat::V0_31 {
            "***** Appears to have gone OK ****"
        } else {
            "***** Restore appears to have gone OK ****"
        }
    }
}

/// Which tool growpart would drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resizer {
    /// sfdisk (the default with util-linux ≥ 2.26.3).
    #[default]
    Sfdisk,
    /// sgdisk (`GROWPART_RESIZER=sgdisk`).
    Sgdisk,
}

/// growpart's options that affect the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrowOptions {
    /// `--fudge` / `GROWPART_FUDGE`, in bytes (default 1 MiB).
    pub fudge_bytes: i64,
    /// `--free-percent` (1..=99).
    pub free_percent: Option<u32>,
    /// Version to copy.
    pub compat: Compat,
    /// Resizer to copy.
    pub resizer: Resizer,
}

impl Default for GrowOptions {
    fn default() -> Self {
        GrowOptions {
            fudge_bytes: 1024 * 1024,
            free_percent: None,
            compat: Compat::V0_33,
            resizer: Resizer::Sfdisk,
        }
    }
}

/// The disk as growpart sees it.
#[derive(Debug, Clone, Copy)]
pub struct DiskView<'a> {
    /// The DISK argument (after symlink resolution), used in names and
    /// messages exactly as growpart uses it.
    pub name: &'a str,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Sector 0 as on disk (the rewrite keeps its boot code).
    pub sector0: &'a [u8],
    /// The table libfdisk reads.
    pub label: &'a Label,
}

/// A line of growpart's debug output, printed when `-v` is given `level`
/// times (level 0: always).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Debug {
    /// Verbosity needed.
    pub level: u8,
    /// The text.
    pub text: String,
}

fn debug(v: &mut Vec<Debug>, level: u8, text: impl Into<String>) {
    v.push(Debug {
        level,
        text: text.into(),
    });
}

/// A partition that can grow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrowPlan {
    /// The PART argument as typed.
    pub partition: String,
    /// First sector.
    pub start: u64,
    /// Sectors before.
    pub old_size: u64,
    /// Last sector before.
    pub old_end: u64,
    /// Sectors after.
    pub new_size: u64,
    /// Last sector after, as growpart reports it.
    pub new_end: u64,
    /// sfdisk resizer: the dump fed to sfdisk before and after the edit
    /// (without `last-lba:` for GPT), as `-N` prints them.
    pub dumps: Option<(String, String)>,
    /// The writes, or why the tool would refuse them (the dry run cannot
    /// know: growpart -N reports CHANGE either way).
    pub writes: Result<WriteBatch, Rejection>,
    /// Debug lines, in order.
    pub debug: Vec<Debug>,
    /// Which resizer made the plan.
    pub resizer: Resizer,
    /// Which growpart made it.
    pub compat: Compat,
}

impl GrowPlan {
    /// The text after `CHANGE:`/`CHANGED:` (0.29 puts a comma before the
    /// new end).
    pub fn change_info(&self) -> String {
        let sep = if self.compat == Compat::V0_29 {
            ","
        } else {
            " "
        };
        format!(
            "partition={} start={} old: size={} end={} new: size={}{sep}end={}",
            self.partition, self.start, self.old_size, self.old_end, self.new_size, self.new_end
        )
    }
}

/// Nothing to do: growpart prints `NOCHANGE: {message}` and exits 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoChange {
    /// The text after `NOCHANGE: `.
    pub message: String,
    /// Debug lines, in order.
    pub debug: Vec<Debug>,
}

/// What growpart would do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    /// It can grow.
    Grow(GrowPlan),
    /// It cannot.
    NoChange(NoChange),
}

/// growpart stops with `FAILED: {message}` (exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct GrowFailure {
    /// The text after `FAILED: `.
    pub message: String,
    /// Debug lines printed before the failure.
    pub debug: Vec<Debug>,
}

/// growpart's name for the partition in sfdisk's output (`get_diskpart_path`
/// for a regular file): DISK + PART, with `p` between when DISK ends in a
/// digit.
pub fn diskpart_path(disk: &str, part: &str) -> String {
    if disk.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{disk}p{part}")
    } else {
        format!("{disk}{part}")
    }
}

const MBR_MAX_512: i128 = 4_294_967_296;

/// Plans growing partition `part` (digits, as typed) of `disk`.
pub fn plan_grow(
    disk: &DiskView<'_>,
    part: &str,
    opts: &GrowOptions,
) -> Result<Outcome, GrowFailure> {
    match opts.resizer {
        Resizer::Sfdisk => plan_sfdisk(disk, part, opts),
        Resizer::Sgdisk => plan_sgdisk(disk, part, opts),
    }
}

fn plan_sfdisk(
    disk: &DiskView<'_>,
    part: &str,
    opts: &GrowOptions,
) -> Result<Outcome, GrowFailure> {
    let mut dbg = Vec::new();
    let disk_size = i128::from(disk.size_bytes);
    let sector_num = disk_size / i128::from(SECTOR);
    let sector_size = if sector_num > 0 {
        disk_size / sector_num
    } else {
        512
    };
    let format = disk.label.kind();
    debug(
        &mut dbg,
        1,
        format!("{sector_num} sectors of {sector_size}. total size={disk_size} bytes"),
    );
    if opts.compat == Compat::V0_29 && disk_size / 512 > MBR_MAX_512 {
        debug(
            &mut dbg,
            1,
            "WARN: disk is larger than 2TB. additional space will go unused.",
        );
    }
    // Before 0.33 `end` is one past the last sector, and so is max_end.
    let past = i128::from(opts.compat.end_past());
    let dump = script::dump(disk.label, disk.name, disk.size_bytes / SECTOR);
    let dump_text = script::render(&dump);
    debug(
        &mut dbg,
        1,
        format!(
            "## sfdisk --unit=S --dump {}\n{}",
            disk.name,
            dump_text.trim_end_matches('\n')
        ),
    );
    let dpart = diskpart_path(disk.name, part);
    let Some(line) = dump.partitions.iter().find(|p| p.device == dpart) else {
        return Err(GrowFailure {
            message: format!("failed to get start and end for {dpart} in {}", disk.name),
            debug: dbg,
        });
    };
    let pt_start = i128::from(line.start.unwrap_or(0));
    let pt_size = i128::from(line.size.unwrap_or(0));
    let pt_end = pt_size + pt_start - 1 + past;
    let mut max_end = dump
        .partitions
        .iter()
        .filter_map(|p| p.start)
        .map(i128::from)
        .filter(|&s| s >= pt_end)
        .fold(sector_num, i128::min)
        - 1
        + past;
    if opts.compat == Compat::V0_29 {
        // 0.29 caps every table at the MBR limit.
        let mbr_max_sectors = MBR_MAX_512 * (sector_size / 512);
        if max_end > mbr_max_sectors {
            max_end = mbr_max_sectors;
        }
    } else if format == "dos" {
        let mbr_max_sectors = MBR_MAX_512 * (sector_size / 512);
        if max_end > mbr_max_sectors {
            max_end = mbr_max_sectors;
        }
        if disk_size / 512 > MBR_MAX_512 {
            debug(
                &mut dbg,
                0,
                "WARNING: MBR/dos partitioned disk is larger than 2TB. Additional space will go unused.",
            );
        }
    }
    let gpt_second_size = 33;
    if max_end > sector_num - gpt_second_size {
        debug(
            &mut dbg,
            1,
            format!("padding {gpt_second_size} sectors for gpt secondary header"),
        );
        max_end = sector_num - gpt_second_size - 1 + past;
    }
    let sectors_per_align = (1024 * 1024) / sector_size.max(1);
    if opts.compat == Compat::V0_34 {
        let max_size_align = ((max_end + 1 - pt_start) / sectors_per_align) * sectors_per_align;
        max_end = max_size_align + pt_start - 1;
    }
    if let Some(free_percent) = opts.free_percent {
        let fp = i128::from(free_percent);
        let free_percent_sectors = sector_num / 100 * fp;
        if format == "dos" && disk_size / 512 >= MBR_MAX_512 + free_percent_sectors {
            debug(
                &mut dbg,
                1,
                "WARNING: Additional unused space on MBR/dos partitioned disk is larger than requested percent of overprovisioning.",
            );
        } else if format == "dos" && sector_num > MBR_MAX_512 {
            let remaining = free_percent_sectors - (sector_num - MBR_MAX_512);
            debug(
                &mut dbg,
                1,
                format!("reserving {remaining} sectors from MBR maximum for overprovisioning"),
            );
            max_end -= remaining;
        } else {
            debug(
                &mut dbg,
                1,
                format!(
                    "reserving {free_percent_sectors} sectors ({free_percent}%) for overprovisioning"
                ),
            );
            max_end -= free_percent_sectors;
        }
        if opts.compat == Compat::V0_34 {
            // Shell arithmetic truncates toward zero, as `/` does.
            max_end = max_end / sectors_per_align * sectors_per_align - 1;
        }
        if max_end < pt_end {
            return Ok(Outcome::NoChange(NoChange {
                message: format!(
                    "partition {part} could not be grown while leaving {free_percent}% ({free_percent_sectors} sectors) free on device"
                ),
                debug: dbg,
            }));
        }
    }
    let info = format!(
        "max_end={max_end} tot={sector_num} pt_end={pt_end} pt_start={pt_start} pt_size={pt_size}"
    );
    let limits = Limits {
        pt_end,
        pt_size,
        max_end,
        sector_size,
    };
    if let Some(message) = nochange(&limits, opts, info, &Wording::Sfdisk(part), &mut dbg) {
        return Ok(Outcome::NoChange(NoChange {
            message,
            debug: dbg,
        }));
    }
    let new_size = max_end - pt_start + 1 - past;
    // growpart edits the dump with sed and feeds it back to sfdisk; so do we.
    let mut old_lines: Vec<String> = dump_text.lines().map(str::to_string).collect();
    if format == "gpt" {
        old_lines.retain(|l| !l.starts_with("last-lba:"));
    }
    let new_lines: Vec<String> = old_lines
        .iter()
        .map(|l| {
            if l.trim_start().starts_with(&format!("{dpart} ")) {
                sed_replace_last(l, &format!("{pt_size},"), &format!("{new_size},"))
            } else {
                l.clone()
            }
        })
        .collect();
    let old_dump = join_lines(&old_lines);
    let new_dump = join_lines(&new_lines);
    let writes = match script::parse(&new_dump) {
        Ok(s) => sfdisk_writes(disk, &s),
        Err(e) => Err(Rejection {
            messages: vec![format!("line {}: {}", e.line, e.what)],
        }),
    };
    Ok(Outcome::Grow(GrowPlan {
        partition: part.to_string(),
        start: pt_start as u64,
        old_size: pt_size as u64,
        old_end: pt_end as u64,
        new_size: new_size as u64,
        new_end: max_end as u64,
        dumps: Some((old_dump, new_dump)),
        writes,
        debug: dbg,
        resizer: Resizer::Sfdisk,
        compat: opts.compat,
    }))
}

/// Where the partition ends now and could end.
struct Limits {
    pt_end: i128,
    pt_size: i128,
    max_end: i128,
    sector_size: i128,
}

/// The two resizers word the same verdicts differently.
enum Wording<'a> {
    /// `partition N ...`
    Sfdisk(&'a str),
    /// `disk=D partition=N: ...`
    Sgdisk(&'a str),
}

/// growpart's last two checks, shared by both resizers: already at the end,
/// or growth under the fudge. Logs the limits line first (0.34 adds the size
/// in bytes to it).
fn nochange(
    l: &Limits,
    opts: &GrowOptions,
    mut info: String,
    wording: &Wording<'_>,
    dbg: &mut Vec<Debug>,
) -> Option<String> {
    let pt_size_bytes = l.pt_size * l.sector_size;
    if opts.compat == Compat::V0_34 {
        info.push_str(&format!(" pt_size_bytes={pt_size_bytes}"));
    }
    debug(dbg, 1, info);
    let (pt_size, ss) = (l.pt_size, l.sector_size);
    if l.pt_end == l.max_end {
        return Some(match (wording, opts.compat == Compat::V0_34) {
            (Wording::Sfdisk(p), false) => {
                format!("partition {p} is size {pt_size}. it cannot be grown")
            }
            (Wording::Sfdisk(p), true) => format!(
                "partition {p} size is {pt_size_bytes} bytes ({pt_size} sectors of {ss}). it cannot be grown"
            ),
            (Wording::Sgdisk(d), false) => {
                format!("{d}: size={pt_size}, it cannot be grown")
            }
            (Wording::Sgdisk(d), true) => format!(
                "{d}: size={pt_size_bytes} bytes ({pt_size} sectors of {ss}), it cannot be grown"
            ),
        });
    }
    let fudge = i128::from(opts.fudge_bytes) / ss.max(1);
    if l.pt_end + fudge > l.max_end {
        let by = l.max_end - l.pt_end;
        return Some(match wording {
            Wording::Sfdisk(p) => {
                format!("partition {p} could only be grown by {by} [fudge={fudge}]")
            }
            Wording::Sgdisk(d) => format!("{d}: could only be grown by {by} [fudge={fudge}]"),
        });
    }
    None
}

fn sfdisk_writes(disk: &DiskView<'_>, s: &Script) -> Result<WriteBatch, Rejection> {
    sfdisk::apply_to(disk.size_bytes / SECTOR, disk.sector0, s).map(|a| a.batch)
}

fn join_lines(lines: &[String]) -> String {
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

/// `s/\(.*\)OLD/\1NEW/`: replaces the last occurrence (greedy match).
fn sed_replace_last(line: &str, old: &str, new: &str) -> String {
    match line.rfind(old) {
        Some(i) => format!("{}{}{}", &line[..i], new, &line[i + old.len()..]),
        None => line.to_string(),
    }
}

// ----------------------------------------------------------- sgdisk ----

fn plan_sgdisk(
    disk: &DiskView<'_>,
    part: &str,
    opts: &GrowOptions,
) -> Result<Outcome, GrowFailure> {
    let mut dbg = Vec::new();
    let dev = format!("disk={} partition={part}", disk.name);
    let Label::Gpt(g) = disk.label else {
        return Err(GrowFailure {
            message: "unable to resize dos label with sgdisk".into(),
            debug: dbg,
        });
    };
    let total = (disk.size_bytes / SECTOR) as i128;
    let sector_size: i128 = 512;
    let partno: Option<usize> = part.parse::<usize>().ok().and_then(|n| n.checked_sub(1));
    let entry = partno
        .and_then(|i| g.entries.get(i))
        .filter(|e| e.is_used());
    let Some(entry) = entry else {
        return Err(GrowFailure {
            message: format!("{dev}: failed to get start sector"),
            debug: dbg,
        });
    };
    let pt_start = i128::from(entry.first_lba);
    let pt_end = i128::from(entry.last_lba);
    let pt_size = pt_end - pt_start + 1;
    // gdisk's MoveSecondHeaderToEnd: last usable = disk size − first usable.
    let last = total - i128::from(g.primary.first_usable_lba);
    let mut pt_max = g
        .partitions()
        .map(|(_, e)| i128::from(e.first_lba))
        .filter(|&s| s >= pt_end)
        .fold(last, i128::min)
        - 1;
    if opts.compat == Compat::V0_34 {
        let spa = (1024 * 1024) / sector_size;
        pt_max = ((pt_max + 1 - pt_start) / spa) * spa + pt_start - 1;
    }
    let info = format!(
        "{dev}: pt_start={pt_start} pt_end={pt_end} pt_size={pt_size} pt_max={pt_max} last={last}"
    );
    let limits = Limits {
        pt_end,
        pt_size,
        max_end: pt_max,
        sector_size,
    };
    if let Some(message) = nochange(&limits, opts, info, &Wording::Sgdisk(&dev), &mut dbg) {
        return Ok(Outcome::NoChange(NoChange {
            message,
            debug: dbg,
        }));
    }
    let new_size = pt_max - pt_start + 1;
    // 0.33 passes pt_max-1 to sgdisk while reporting pt_max.
    let written_end = match opts.compat {
        Compat::V0_34 => pt_max,
        _ => pt_max - 1,
    };
    let writes = Ok(sgdisk_writes(
        disk,
        g,
        partno.unwrap_or(0),
        written_end as u64,
    ));
    Ok(Outcome::Grow(GrowPlan {
        partition: part.to_string(),
        start: pt_start as u64,
        old_size: pt_size as u64,
        old_end: pt_end as u64,
        new_size: new_size as u64,
        new_end: pt_max as u64,
        dumps: None,
        writes,
        debug: dbg,
        resizer: Resizer::Sgdisk,
        compat: opts.compat,
    }))
}

/// What `sgdisk --move-second-header --delete=P --new=P:start:END
/// --typecode --partition-guid --change-name` leaves: the backup moved to
/// the end with last usable = N − first usable, partition P re-created
/// with its type and GUID, its name as growpart parsed it (single quotes
/// dropped, leading blanks lost) and no attributes.
fn sgdisk_writes(disk: &DiskView<'_>, g: &GptLabel, slot: usize, end: u64) -> WriteBatch {
    let total = disk.size_bytes / SECTOR;
    let h = &g.primary;
    let mut entries = g.entries.clone();
    if let Some(e) = entries.get_mut(slot) {
        let name: String = e.name_string().replace('\'', "");
        let name = name.trim_start().to_string();
        *e = GptEntry {
            last_lba: end,
            attributes: 0,
            name: name.encode_utf16().collect(),
            ..e.clone()
        };
    }
    let last_usable = total - h.first_usable_lba;
    let layout = sfdisk::GptLayout {
        total,
        disk_guid: h.disk_guid,
        first_usable: h.first_usable_lba,
        last_usable,
        primary_entries_lba: h.partition_entry_lba,
        backup_entries_lba: last_usable + 1,
    };
    let mut pmbr = sfdisk::protective_mbr(total, disk.sector0);
    // gdisk writes the real CHS of the last sector, not ff ff ff.
    let end_chs = super::chs::encode(total - 1);
    pmbr[super::mbr::ENTRIES_OFFSET + 5..super::mbr::ENTRIES_OFFSET + 8].copy_from_slice(&end_chs);
    sfdisk::gpt_writes_with(&layout, &pmbr, &entries)
}

/// Makes the planned writes.
pub fn apply(dev: &mut dyn BlockDevice, batch: &WriteBatch) -> Result<(), crate::blockdev::Error> {
    dev.commit(batch)
}
