//! Partition tables: GPT and MBR, read and written as util-linux's sfdisk
//! (libfdisk 2.38) reads and writes them, and growpart's planner on top.
//!
//! - [`gpt`], [`mbr`]: the on-disk structures and libfdisk's probing rules
//!   (which header it trusts, how it walks the EBR chain).
//! - [`script`]: the `sfdisk --dump` text, rendered and parsed.
//! - [`sfdisk`]: writing a table from such a script, with libfdisk's checks.
//! - [`grow`]: growpart (cloud-utils 0.33, or 0.34 on request): the pure
//!   planner `plan_grow` and `apply`.
//!
//! Image files always use 512-byte logical sectors here, as sfdisk does for
//! regular files.

pub mod chs;
pub mod gpt;
pub mod grow;
pub mod guid;
pub mod mbr;
pub mod script;
pub mod sfdisk;

use crate::blockdev::{self, BlockDevice};

/// The logical sector size of image files.
pub const SECTOR: u64 = 512;

/// Errors of the partition layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The device could not be read or written.
    #[error(transparent)]
    Device(#[from] blockdev::Error),
    /// The device is smaller than one sector.
    #[error("{0}: too small to hold a partition table ({1} bytes)")]
    TooSmall(String, u64),
}

/// A partition table as libfdisk sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Label {
    /// GUID partition table.
    Gpt(gpt::GptLabel),
    /// MBR ("dos") table.
    Dos(mbr::DosLabel),
}

impl Label {
    /// `gpt` or `dos`, as sfdisk names the label.
    pub fn kind(&self) -> &'static str {
        match self {
            Label::Gpt(_) => "gpt",
            Label::Dos(_) => "dos",
        }
    }

    /// Warnings printed while reading it.
    pub fn warnings(&self) -> &[String] {
        match self {
            Label::Gpt(g) => &g.warnings,
            Label::Dos(d) => &d.warnings,
        }
    }

    /// Partitions as `(number, first sector, sectors)`.
    pub fn partitions(&self) -> Vec<(u32, u64, u64)> {
        match self {
            Label::Gpt(g) => g
                .partitions()
                .map(|(n, e)| (n, e.first_lba, e.size()))
                .collect(),
            Label::Dos(d) => d
                .partitions
                .iter()
                .map(|p| (p.number, p.start, p.size))
                .collect(),
        }
    }
}

/// What a disk holds, as the tools growpart asks see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The label libfdisk (sfdisk) finds, GPT tried first.
    pub label: Option<Label>,
    /// What `blkid -o value -s PTTYPE` prints: `gpt`, `dos`, `PMBR` (a
    /// protective MBR without a valid GPT), or nothing.
    pub blkid_pttype: Option<&'static str>,
    /// Messages sfdisk's GPT probe prints when the GPT is not usable but a
    /// PMBR is (e.g. the PMBR size mismatch).
    pub gpt_probe_warnings: Vec<String>,
}

/// How growpart's `get_table_format` names a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    /// blkid said `gpt` or `dos`.
    Blkid(&'static str),
    /// blkid had no answer; sfdisk --list's "Disklabel type" did.
    Sfdisk(&'static str),
    /// Neither: growpart warns "unknown label" and goes on with `dos`.
    Unknown,
}

impl TableFormat {
    /// The name growpart goes on with.
    pub fn name(self) -> &'static str {
        match self {
            TableFormat::Blkid(n) | TableFormat::Sfdisk(n) => n,
            TableFormat::Unknown => "dos",
        }
    }
}

impl Probe {
    /// growpart's `get_table_format`: blkid's PTTYPE first, else sfdisk's.
    pub fn table_format(&self) -> TableFormat {
        match (self.blkid_pttype, &self.label) {
            (Some(t @ ("gpt" | "dos")), _) => TableFormat::Blkid(t),
            (_, Some(l)) => TableFormat::Sfdisk(l.kind()),
            (_, None) => TableFormat::Unknown,
        }
    }
}

/// Reads the partition table of `dev` as libfdisk does: GPT first (it needs
/// a protective MBR and one valid header), then DOS.
pub fn probe(dev: &dyn BlockDevice) -> Result<Probe, Error> {
    if dev.size() < SECTOR {
        return Err(Error::TooSmall(dev.name(), dev.size()));
    }
    let mut sector0 = dev.read_vec(0, SECTOR as usize)?;
    let pmbr = gpt::pmbr_kind(&sector0).is_some();
    let (gpt, gpt_probe_warnings) = gpt::probe(dev, &mut sector0)?;
    if let Some(g) = gpt {
        return Ok(Probe {
            label: Some(Label::Gpt(g)),
            blkid_pttype: Some("gpt"),
            gpt_probe_warnings,
        });
    }
    let dos = mbr::probe(dev, &sector0)?;
    let blkid = if pmbr {
        Some("PMBR")
    } else if dos.is_some() && blkid_accepts_dos(&sector0) {
        Some("dos")
    } else {
        None
    };
    Ok(Probe {
        label: dos.map(Label::Dos),
        blkid_pttype: blkid,
        gpt_probe_warnings,
    })
}

/// libblkid's DOS prober refuses a sector whose boot indicators are not
/// 0x00 or 0x80.
fn blkid_accepts_dos(sector0: &[u8]) -> bool {
    mbr::entries(sector0)
        .iter()
        .all(|e| e.boot_ind == 0 || e.boot_ind == 0x80)
}
