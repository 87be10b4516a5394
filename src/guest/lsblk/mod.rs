//! lsblk's output, to the byte: columns, widths as
//! libsmartcols computes them when stdout is not a terminal, tree art and
//! its continuation lines, list/raw/pairs/JSON formats, row order, sizes as
//! util-linux rounds them, and the differences between util-linux versions
//! (MOUNTPOINT vs MOUNTPOINTS, `-f` columns, size rounding before 2.36,
//! JSON layouts, which columns exist).
//!
//! The model follows lsblk 2.38: devices become *lines* (a line per device
//! per place it is shown, so a partition named on the command line next to
//! its disk shows twice), lines are sorted by device number (`makedev`, as
//! lsblk's default sort), then printed as a tree, a flat list or in tree
//! order without art (`-P`, `-r`).
//!
//! By concern: `columns` (what a column is called, exists since, holds
//! and how its cell reads), `tree` (lines, their order and the tree art),
//! `table` (the aligned layout), `json` and `raw` (`-J`, `-r`, `-P`).

use serde::{Deserialize, Serialize};

use crate::ec2::release::Version;

mod columns;
mod json;
mod raw;
mod table;
mod tree;

pub use columns::{Column, ColumnListError, default_columns, fs_columns};
pub use raw::raw_escape;
use tree::{Line, add_line, walk};

/// Which util-linux the instance's image ships (it decides headers, size
/// rounding, the JSON layout and which columns exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum UtilLinux {
    /// 2.23 (CentOS 7).
    V2_23,
    /// 2.30 (Amazon Linux 2).
    V2_30,
    /// 2.33–2.36 (Ubuntu 20.04 ships 2.34).
    V2_34,
    /// 2.37 (Ubuntu 22.04, Amazon Linux 2023) and later.
    V2_37,
}

impl UtilLinux {
    /// The generation of a util-linux version string (`2.37.2`); an
    /// unreadable one is the newest.
    pub fn from_version(v: &str) -> UtilLinux {
        UtilLinux::of(Version::parse(v).unwrap_or(crate::ec2::release::DEBIAN_12.util_linux))
    }

    /// The generation of a util-linux version, rounded down to a known one.
    pub fn of(v: Version) -> UtilLinux {
        match (v.major, v.minor) {
            (2, m) if m < 30 => UtilLinux::V2_23,
            (2, m) if m < 33 => UtilLinux::V2_30,
            (2, m) if m < 37 => UtilLinux::V2_34,
            _ => UtilLinux::V2_37,
        }
    }

    /// The version string `lsblk --version` prints.
    pub fn release(self) -> &'static str {
        match self {
            UtilLinux::V2_23 => "2.23.2",
            UtilLinux::V2_30 => "2.30.2",
            UtilLinux::V2_34 => "2.34",
            UtilLinux::V2_37 => "2.38.1",
        }
    }
}

/// Filesystem usage of a mounted device, from statfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsUsage {
    /// f_frsize
    pub frsize: u64,
    /// f_blocks
    pub blocks: u64,
    /// f_bfree
    pub bfree: u64,
    /// f_bavail
    pub bavail: u64,
}

/// One block device as lsblk sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Device {
    /// Kernel name (`xvda1`, `nvme0n1p1`).
    pub name: String,
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
    /// Removable.
    pub removable: bool,
    /// Read-only.
    pub read_only: bool,
    /// Size in bytes.
    pub size: u64,
    /// `disk`, `part`, `loop`.
    pub kind: String,
    /// Mount points, most recently mounted first.
    pub mountpoints: Vec<String>,
    /// FSTYPE
    pub fstype: Option<String>,
    /// FSVER
    pub fsver: Option<String>,
    /// LABEL
    pub label: Option<String>,
    /// UUID
    pub uuid: Option<String>,
    /// PARTUUID
    pub partuuid: Option<String>,
    /// PARTLABEL
    pub partlabel: Option<String>,
    /// PARTTYPE
    pub parttype: Option<String>,
    /// PTUUID (udev gives partitions their disk's, as EC2 shows)
    pub ptuuid: Option<String>,
    /// PTTYPE (likewise inherited by partitions)
    pub pttype: Option<String>,
    /// SERIAL (lsblk shows it for whole disks only)
    pub serial: Option<String>,
    /// MODEL (whole disks only)
    pub model: Option<String>,
    /// Usage when mounted.
    pub fs: Option<FsUsage>,
    /// Partitions.
    pub children: Vec<Device>,
}

impl Device {
    /// glibc `makedev(major, minor)`: lsblk's sort key for MAJ:MIN. For
    /// minors above 255 it does not order like (major, minor).
    pub fn devno(&self) -> u64 {
        let (ma, mi) = (u64::from(self.major), u64::from(self.minor));
        ((ma & 0xffff_f000) << 32) | ((ma & 0xfff) << 8) | ((mi & 0xffff_ff00) << 12) | (mi & 0xff)
    }

    pub(super) fn is_partition(&self) -> bool {
        self.kind == "part"
    }
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Aligned columns (with tree art unless `tree` is off).
    #[default]
    Table,
    /// `-r`: raw.
    Raw,
    /// `-P`: KEY="value" pairs.
    Pairs,
    /// `-J`: JSON.
    Json,
}

/// lsblk's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Columns in order.
    pub columns: Vec<Column>,
    /// Output format.
    pub format: Format,
    /// lsblk's tree flag: on by default, off with `-l`, `-r`, `-P`. A
    /// JSON tree nests `children`; without it JSON is a flat list.
    pub tree: bool,
    /// `-b`: sizes in bytes.
    pub bytes: bool,
    /// `-n`: no header line.
    pub noheadings: bool,
    /// `-d`: no partitions.
    pub nodeps: bool,
    /// `-i`: ASCII tree art (also without a UTF-8 locale).
    pub ascii: bool,
    /// `-p`: full paths in NAME, KNAME and PKNAME.
    pub paths: bool,
    /// The util-linux version to copy.
    pub version: UtilLinux,
    /// `-e`: majors left out of a full listing (none given: RAM disks,
    /// major 1, unless `-a` or `-I`).
    pub excludes: Vec<u32>,
    /// `-I`: the only majors a full listing shows (none: all).
    pub includes: Vec<u32>,
    /// `-a`: all devices (no default exclusion of RAM disks).
    pub all: bool,
}

impl Options {
    /// Defaults of util-linux `v`.
    pub fn new(v: UtilLinux) -> Options {
        Options {
            columns: default_columns(v),
            format: Format::Table,
            tree: true,
            bytes: false,
            noheadings: false,
            nodeps: false,
            ascii: false,
            paths: false,
            version: v,
            excludes: Vec::new(),
            includes: Vec::new(),
            all: false,
        }
    }

    /// Whether a full listing shows devices of major `maj` (lsblk's
    /// `is_maj_excluded` and `is_maj_included`).
    pub fn shows_major(&self, maj: u32) -> bool {
        let default_exclusion = !self.all && self.excludes.is_empty() && self.includes.is_empty();
        let excluded = if default_exclusion {
            maj == 1
        } else {
            self.excludes.contains(&maj)
        };
        !excluded && (self.includes.is_empty() || self.includes.contains(&maj))
    }

    /// `-P` and `-r` print in tree order without art.
    pub(super) fn tree_order(&self) -> bool {
        !self.tree && matches!(self.format, Format::Raw | Format::Pairs)
    }
}

/// A device shown at the top level: a disk with its partitions, or a
/// partition on its own (named on the command line), with its disk.
#[derive(Debug, Clone, Copy)]
pub struct Root<'a> {
    /// The device.
    pub dev: &'a Device,
    /// The disk a partition belongs to.
    pub disk: Option<&'a Device>,
}

/// Renders lsblk's output for every disk of `devs` (top-level disks with
/// their partitions as children), as `lsblk` without device arguments:
/// only the majors `-e` and `-I` let through (by default all but RAM
/// disks, major 1). Devices named on the command line are not filtered.
pub fn render(devs: &[Device], o: &Options) -> String {
    let roots: Vec<Root> = devs
        .iter()
        .filter(|d| o.shows_major(d.major))
        .map(|d| Root { dev: d, disk: None })
        .collect();
    render_roots(&roots, o)
}

/// Renders lsblk's output for the given top-level devices (lsblk's device
/// arguments, in argument order; a device named twice shows once).
pub fn render_roots(roots: &[Root], o: &Options) -> String {
    let mut lines: Vec<Line> = Vec::new();
    let mut top: Vec<usize> = Vec::new();
    let mut printed: Vec<u64> = Vec::new();
    let mut seen_roots: Vec<u64> = Vec::new();
    for r in roots {
        if seen_roots.contains(&r.dev.devno()) {
            continue;
        }
        seen_roots.push(r.dev.devno());
        if let Some(i) = add_line(&mut lines, &mut printed, r.dev, r.disk, None, o) {
            top.push(i);
        }
    }
    if lines.is_empty() {
        // libsmartcols prints nothing for an empty table, except JSON.
        return if o.format == Format::Json {
            "{\n   \"blockdevices\": [\n\n   ]\n}\n".into()
        } else {
            String::new()
        };
    }
    let has_tree_col = o.columns.contains(&Column::Name);
    let is_tree = o.tree && has_tree_col;
    // The print order: lsblk sorts all lines by MAJ:MIN (a stable merge
    // sort), then a tree prints from its roots with each level's children
    // sorted; -P and -r re-sort into tree order; else the flat order stays.
    let key = |i: &usize| lines[*i].dev.devno();
    let order: Vec<(usize, usize)> = if is_tree || o.tree_order() {
        let mut out = Vec::new();
        let mut roots_sorted: Vec<usize> = if is_tree {
            top.clone()
        } else {
            (0..lines.len())
                .filter(|&i| lines[i].parent.is_none())
                .collect()
        };
        roots_sorted.sort_by_key(key);
        for r in roots_sorted {
            walk(&lines, r, 0, &mut out);
        }
        out
    } else {
        let mut all: Vec<usize> = (0..lines.len()).collect();
        all.sort_by_key(key);
        all.into_iter().map(|i| (i, 0)).collect()
    };
    match o.format {
        Format::Table => table::render_table(&lines, &order, o, is_tree),
        Format::Raw => raw::render_raw(&lines, &order, o),
        Format::Pairs => raw::render_pairs(&lines, &order, o),
        Format::Json => {
            if is_tree {
                let mut tops: Vec<usize> = top.clone();
                tops.sort_by_key(key);
                json::render_json(&lines, &tops, o, true)
            } else {
                let flat: Vec<usize> = order.iter().map(|&(i, _)| i).collect();
                json::render_json(&lines, &flat, o, false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopdisk() -> Vec<Device> {
        let part = |name: &str, minor, size, mp: &[&str]| Device {
            name: name.into(),
            major: 259,
            minor,
            size,
            kind: "part".into(),
            mountpoints: mp.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        vec![Device {
            name: "loop7".into(),
            major: 7,
            minor: 7,
            size: 8 << 30,
            kind: "loop".into(),
            children: vec![
                part("loop7p1", 0, 8577334784, &["/mnt/root"]),
                part("loop7p127", 1, 1 << 20, &[]),
                part("loop7p128", 2, 10 << 20, &[]),
            ],
            ..Default::default()
        }]
    }

    #[test]
    fn default_tree_matches_capture() {
        let o = Options::new(UtilLinux::V2_37);
        assert_eq!(
            render(&loopdisk(), &o),
            "NAME        MAJ:MIN RM SIZE RO TYPE MOUNTPOINTS\n\
             loop7         7:7    0   8G  0 loop \n\
             \u{251c}\u{2500}loop7p1   259:0    0   8G  0 part /mnt/root\n\
             \u{251c}\u{2500}loop7p127 259:1    0   1M  0 part \n\
             \u{2514}\u{2500}loop7p128 259:2    0  10M  0 part \n"
        );
    }

    #[test]
    fn bytes_and_pairs() {
        let mut o = Options::new(UtilLinux::V2_37);
        o.bytes = true;
        let s = render(&loopdisk(), &o);
        assert!(
            s.starts_with("NAME        MAJ:MIN RM       SIZE RO TYPE MOUNTPOINTS\n"),
            "{s}"
        );
        assert!(
            s.contains("loop7         7:7    0 8589934592  0 loop \n"),
            "{s}"
        );
        assert!(
            s.contains("\u{251c}\u{2500}loop7p127 259:1    0    1048576  0 part \n"),
            "{s}"
        );
        let mut o = Options::new(UtilLinux::V2_37);
        o.format = Format::Pairs;
        o.tree = false;
        let s = render(&loopdisk(), &o);
        assert!(s.starts_with(
            "NAME=\"loop7\" MAJ:MIN=\"7:7\" RM=\"0\" SIZE=\"8G\" RO=\"0\" TYPE=\"loop\" MOUNTPOINTS=\"\"\n\
             NAME=\"loop7p1\" MAJ:MIN=\"259:0\" RM=\"0\" SIZE=\"8G\" RO=\"0\" TYPE=\"part\" MOUNTPOINTS=\"/mnt/root\"\n"
        ), "{s}");
    }

    #[test]
    fn json_layout() {
        let mut o = Options::new(UtilLinux::V2_37);
        o.format = Format::Json;
        let s = render(&loopdisk(), &o);
        assert!(s.starts_with("{\n   \"blockdevices\": [\n      {\n         \"name\": \"loop7\",\n         \"maj:min\": \"7:7\",\n         \"rm\": false,\n         \"size\": \"8G\",\n"), "{s}");
        assert!(s.contains("         \"mountpoints\": [\n             null\n         ],\n         \"children\": [\n            {\n"), "{s}");
        assert!(s.contains("               \"mountpoints\": [\n                   \"/mnt/root\"\n               ]\n            },{\n"), "{s}");
        assert!(s.ends_with("         ]\n      }\n   ]\n}\n"), "{s}");
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["blockdevices"][0]["children"][0]["name"], "loop7p1");
    }

    #[test]
    fn ascii_tree_and_old_header() {
        let mut o = Options::new(UtilLinux::V2_30);
        o.ascii = true;
        let s = render(&loopdisk(), &o);
        assert!(
            s.starts_with("NAME        MAJ:MIN RM SIZE RO TYPE MOUNTPOINT\n"),
            "{s}"
        );
        assert!(
            s.contains("|-loop7p1   259:0    0   8G  0 part /mnt/root\n"),
            "{s}"
        );
        assert!(s.contains("`-loop7p128 259:2    0  10M  0 part \n"), "{s}");
    }

    #[test]
    fn multi_mountpoints_continue_under_the_tree() {
        let mut disks = loopdisk();
        disks[0].children[0].mountpoints = vec!["/mnt/b".into(), "/mnt/a".into()];
        let o = Options::new(UtilLinux::V2_37);
        let s = render(&disks, &o);
        assert!(
            s.contains(
                "\u{251c}\u{2500}loop7p1   259:0    0   8G  0 part /mnt/b\n\
                 \u{2502}                                   /mnt/a\n"
            ),
            "{s}"
        );
    }

    #[test]
    fn list_sorts_by_devno_and_shows_once() {
        let disks = loopdisk();
        let mut o = Options::new(UtilLinux::V2_37);
        o.tree = false;
        o.columns = vec![Column::Name];
        let roots = [
            Root {
                dev: &disks[0].children[0],
                disk: Some(&disks[0]),
            },
            Root {
                dev: &disks[0],
                disk: None,
            },
        ];
        assert_eq!(
            render_roots(&roots, &o),
            "NAME\nloop7\nloop7p1\nloop7p127\nloop7p128\n"
        );
        o.tree = true;
        assert_eq!(
            render_roots(&roots, &o),
            "NAME\nloop7\n\u{251c}\u{2500}loop7p1\n\u{251c}\u{2500}loop7p127\n\u{2514}\u{2500}loop7p128\nloop7p1\n"
        );
    }

    #[test]
    fn devno_orders_like_makedev() {
        let d = |major, minor| Device {
            major,
            minor,
            ..Default::default()
        };
        assert!(d(7, 255).devno() < d(259, 0).devno());
        assert!(d(7, 256).devno() > d(259, 0).devno());
    }
}
