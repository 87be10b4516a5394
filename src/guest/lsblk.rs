//! lsblk's output, to the byte (spec views.md §1): columns, widths as
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

use serde::{Deserialize, Serialize};

use super::human;
use crate::ec2::release::Version;

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

    fn is_partition(&self) -> bool {
        self.kind == "part"
    }
}

/// A column lsblk can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Column {
    Name,
    Kname,
    Path,
    Pkname,
    MajMin,
    Rm,
    Size,
    Ro,
    Type,
    Mountpoint,
    Mountpoints,
    Fstype,
    Fsver,
    Label,
    Uuid,
    Partuuid,
    Partlabel,
    Parttype,
    Ptuuid,
    Pttype,
    Fssize,
    Fsused,
    Fsavail,
    Fsuse,
    Serial,
    Model,
}

/// How a column's cells are typed in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonType {
    String,
    Bool,
    /// A size: a string, or a number with `-b`.
    Size,
    /// MOUNTPOINTS: an array.
    Array,
}

struct Info {
    header: &'static str,
    /// Width hint: ≥ 1 absolute, < 1 relative (only used on terminals).
    hint: f64,
    right: bool,
    json: JsonType,
}

const ALL_COLUMNS: &[Column] = &[
    Column::Name,
    Column::Kname,
    Column::Path,
    Column::Pkname,
    Column::MajMin,
    Column::Rm,
    Column::Size,
    Column::Ro,
    Column::Type,
    Column::Mountpoint,
    Column::Mountpoints,
    Column::Fstype,
    Column::Fsver,
    Column::Label,
    Column::Uuid,
    Column::Partuuid,
    Column::Partlabel,
    Column::Parttype,
    Column::Ptuuid,
    Column::Pttype,
    Column::Fssize,
    Column::Fsused,
    Column::Fsavail,
    Column::Fsuse,
    Column::Serial,
    Column::Model,
];

/// Why an `-o` column list was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnListError {
    /// An empty name (lsblk fails without a message).
    Empty,
    /// An unknown name: the rest of the list from it, as lsblk prints it.
    Unknown(String),
}

impl Column {
    /// An `-o` list as util-linux's `string_to_idarray` reads it with
    /// lsblk's `column_name_to_id`: a trailing comma sticks to the last
    /// name, an empty name fails, an unknown one is reported with the rest
    /// of the list.
    pub fn parse_list(list: &str, v: UtilLinux) -> Result<Vec<Column>, ColumnListError> {
        let b = list.as_bytes();
        if b.is_empty() {
            return Err(ColumnListError::Empty);
        }
        let mut out = Vec::new();
        let mut begin: Option<usize> = None;
        for p in 0..b.len() {
            if begin.is_none() {
                begin = Some(p);
            }
            let mut end = None;
            if b[p] == b',' {
                end = Some(p);
            }
            if p + 1 == b.len() {
                end = Some(p + 1);
            }
            let (Some(s), Some(e)) = (begin, end) else {
                continue;
            };
            if e <= s {
                return Err(ColumnListError::Empty);
            }
            let (Some(name), Some(rest)) = (list.get(s..e), list.get(s..)) else {
                return Err(ColumnListError::Empty);
            };
            match Column::parse(name, v) {
                Some(c) => out.push(c),
                None => return Err(ColumnListError::Unknown(rest.to_string())),
            }
            begin = None;
            if e == b.len() {
                break;
            }
        }
        Ok(out)
    }

    /// Parses a column name as `-o` takes it (case-insensitive), among the
    /// columns util-linux `v` has.
    pub fn parse(s: &str, v: UtilLinux) -> Option<Column> {
        ALL_COLUMNS
            .iter()
            .copied()
            .find(|c| c.info().header.eq_ignore_ascii_case(s) && c.exists_in(v))
    }

    /// The header, which is also the name `-o` takes.
    pub fn header(self) -> &'static str {
        self.info().header
    }

    /// Whether util-linux `v`'s lsblk knows this column.
    pub fn exists_in(self, v: UtilLinux) -> bool {
        use Column::*;
        let since = match self {
            Parttype | Serial => UtilLinux::V2_30,
            Path | Fssize | Fsused | Fsavail | Fsuse | Ptuuid | Pttype => UtilLinux::V2_34,
            Fsver | Mountpoints => UtilLinux::V2_37,
            _ => UtilLinux::V2_23,
        };
        v >= since
    }

    fn info(self) -> Info {
        use Column::*;
        let (header, hint, right, json) = match self {
            Name => ("NAME", 0.25, false, JsonType::String),
            Kname => ("KNAME", 0.3, false, JsonType::String),
            Path => ("PATH", 0.3, false, JsonType::String),
            Pkname => ("PKNAME", 0.3, false, JsonType::String),
            MajMin => ("MAJ:MIN", 6.0, false, JsonType::String),
            Rm => ("RM", 1.0, true, JsonType::Bool),
            Size => ("SIZE", 5.0, true, JsonType::Size),
            Ro => ("RO", 1.0, true, JsonType::Bool),
            Type => ("TYPE", 4.0, false, JsonType::String),
            Mountpoint => ("MOUNTPOINT", 0.1, false, JsonType::String),
            Mountpoints => ("MOUNTPOINTS", 0.1, false, JsonType::Array),
            Fstype => ("FSTYPE", 0.1, false, JsonType::String),
            Fsver => ("FSVER", 0.1, false, JsonType::String),
            Label => ("LABEL", 0.1, false, JsonType::String),
            Uuid => ("UUID", 36.0, false, JsonType::String),
            Partuuid => ("PARTUUID", 36.0, false, JsonType::String),
            Partlabel => ("PARTLABEL", 0.1, false, JsonType::String),
            Parttype => ("PARTTYPE", 36.0, false, JsonType::String),
            Ptuuid => ("PTUUID", 36.0, false, JsonType::String),
            Pttype => ("PTTYPE", 0.1, false, JsonType::String),
            Fssize => ("FSSIZE", 5.0, true, JsonType::Size),
            Fsused => ("FSUSED", 5.0, true, JsonType::Size),
            Fsavail => ("FSAVAIL", 5.0, true, JsonType::Size),
            Fsuse => ("FSUSE%", 3.0, true, JsonType::String),
            Serial => ("SERIAL", 0.1, false, JsonType::String),
            Model => ("MODEL", 0.1, false, JsonType::String),
        };
        Info {
            header,
            hint,
            right,
            json,
        }
    }
}

/// The default columns for a util-linux version.
pub fn default_columns(v: UtilLinux) -> Vec<Column> {
    use Column::*;
    let mp = if v >= UtilLinux::V2_37 {
        Mountpoints
    } else {
        Mountpoint
    };
    vec![Name, MajMin, Rm, Size, Ro, Type, mp]
}

/// The `-f` columns for a util-linux version.
pub fn fs_columns(v: UtilLinux) -> Vec<Column> {
    use Column::*;
    match v {
        UtilLinux::V2_37 => vec![
            Name,
            Fstype,
            Fsver,
            Label,
            Uuid,
            Fsavail,
            Fsuse,
            Mountpoints,
        ],
        UtilLinux::V2_34 => vec![Name, Fstype, Label, Uuid, Fsavail, Fsuse, Mountpoint],
        _ => vec![Name, Fstype, Label, Uuid, Mountpoint],
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
        }
    }

    /// `-P` and `-r` print in tree order without art.
    fn tree_order(&self) -> bool {
        !self.tree && matches!(self.format, Format::Raw | Format::Pairs)
    }
}

fn size_string(bytes: u64, o: &Options) -> String {
    if o.bytes {
        bytes.to_string()
    } else if o.version >= UtilLinux::V2_34 {
        // 2.36 changed the rounding; 2.34 (Ubuntu 20.04) still has the old.
        if o.version >= UtilLinux::V2_37 {
            human::lsblk_size(bytes)
        } else {
            human::lsblk_size_old(bytes)
        }
    } else {
        human::lsblk_size_old(bytes)
    }
}

/// FS* sizes print `0` (not `0B`) when zero.
fn fs_size_string(bytes: u64, o: &Options) -> String {
    if bytes == 0 {
        "0".into()
    } else {
        size_string(bytes, o)
    }
}

/// The text of one cell; multi-valued cells (MOUNTPOINTS) are joined by a
/// newline as lsblk builds them.
fn cell(d: &Device, parent: Option<&Device>, c: Column, o: &Options) -> String {
    use Column::*;
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let mk_name = |n: &str| {
        if o.paths {
            format!("/dev/{n}")
        } else {
            n.to_string()
        }
    };
    let bool_cell = |b: bool| if b { "1" } else { "0" }.to_string();
    match c {
        Name | Kname => mk_name(&d.name),
        Path => format!("/dev/{}", d.name),
        Pkname => parent.map(|p| mk_name(&p.name)).unwrap_or_default(),
        MajMin => {
            if o.format == Format::Table {
                format!("{:>3}:{:<3}", d.major, d.minor)
            } else {
                format!("{}:{}", d.major, d.minor)
            }
        }
        Rm => bool_cell(d.removable),
        Ro => bool_cell(d.read_only),
        Size => size_string(d.size, o),
        Type => d.kind.clone(),
        Mountpoint => d.mountpoints.first().cloned().unwrap_or_default(),
        Mountpoints => d.mountpoints.join("\n"),
        Fstype => opt(&d.fstype),
        Fsver => opt(&d.fsver),
        Label => opt(&d.label),
        Uuid => opt(&d.uuid),
        Partuuid => opt(&d.partuuid),
        Partlabel => opt(&d.partlabel),
        Parttype => opt(&d.parttype),
        Ptuuid => opt(&d.ptuuid),
        Pttype => opt(&d.pttype),
        Serial if !d.is_partition() => opt(&d.serial),
        Model if !d.is_partition() => opt(&d.model),
        Serial | Model => String::new(),
        Fssize | Fsused | Fsavail | Fsuse => match d.fs {
            None => String::new(),
            Some(f) => {
                let used_blocks = f.blocks.saturating_sub(f.bfree);
                match c {
                    Fssize => fs_size_string(f.frsize.saturating_mul(f.blocks), o),
                    Fsavail => fs_size_string(f.frsize.saturating_mul(f.bavail), o),
                    Fsused => fs_size_string(f.frsize.saturating_mul(used_blocks), o),
                    _ if f.blocks == 0 => "-".into(),
                    _ => format!(
                        "{}%",
                        round_half_even(used_blocks as f64 / f.blocks as f64 * 100.0)
                    ),
                }
            }
        },
    }
}

/// printf("%.0f"): round half to even.
fn round_half_even(x: f64) -> i64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && (r as i64) % 2 != 0 {
        (r - x.signum()) as i64
    } else {
        r as i64
    }
}

/// One output line (libsmartcols' `libscols_line`).
struct Line<'a> {
    dev: &'a Device,
    /// The device whose data PKNAME shows (the disk of a partition, also
    /// when the partition is shown on its own).
    parent_dev: Option<&'a Device>,
    /// Index of the parent line, in tree output.
    parent: Option<usize>,
    children: Vec<usize>,
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
/// their partitions as children), as `lsblk` without device arguments.
/// RAM disks (major 1) are left out, as lsblk does by default.
pub fn render(devs: &[Device], o: &Options) -> String {
    let roots: Vec<Root> = devs
        .iter()
        .filter(|d| d.major != 1)
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
        Format::Table => render_table(&lines, &order, o, is_tree),
        Format::Raw => render_raw(&lines, &order, o),
        Format::Pairs => render_pairs(&lines, &order, o),
        Format::Json => {
            if is_tree {
                let mut tops: Vec<usize> = top.clone();
                tops.sort_by_key(key);
                render_json(&lines, &tops, o, true)
            } else {
                let flat: Vec<usize> = order.iter().map(|&(i, _)| i).collect();
                render_json(&lines, &flat, o, false)
            }
        }
    }
}

/// Adds `dev`'s line and, unless `-d`, its partitions' lines. In a flat
/// list (`-l`), a device already shown is not shown again.
fn add_line<'a>(
    lines: &mut Vec<Line<'a>>,
    printed: &mut Vec<u64>,
    dev: &'a Device,
    parent_dev: Option<&'a Device>,
    parent: Option<usize>,
    o: &Options,
) -> Option<usize> {
    if !o.tree && !o.tree_order() && printed.contains(&dev.devno()) {
        return None;
    }
    printed.push(dev.devno());
    let idx = lines.len();
    lines.push(Line {
        dev,
        parent_dev,
        parent,
        children: Vec::new(),
    });
    if let Some(p) = parent {
        lines[p].children.push(idx);
    }
    if !o.nodeps {
        for c in &dev.children {
            add_line(lines, printed, c, Some(dev), Some(idx), o);
        }
    }
    Some(idx)
}

/// Pre-order walk with each line's children sorted by MAJ:MIN.
fn walk(lines: &[Line], i: usize, depth: usize, out: &mut Vec<(usize, usize)>) {
    out.push((i, depth));
    let mut kids = lines[i].children.clone();
    kids.sort_by_key(|k| lines[*k].dev.devno());
    for k in kids {
        walk(lines, k, depth + 1, out);
    }
}

fn sorted_children(lines: &[Line], i: usize) -> Vec<usize> {
    let mut kids = lines[i].children.clone();
    kids.sort_by_key(|k| lines[*k].dev.devno());
    kids
}

fn is_last_child(lines: &[Line], i: usize) -> bool {
    match lines[i].parent {
        None => false,
        Some(p) => sorted_children(lines, p).last() == Some(&i),
    }
}

struct Art {
    vert: &'static str,
    branch: &'static str,
    right: &'static str,
}

fn art(o: &Options) -> Art {
    if o.ascii {
        Art {
            vert: "| ",
            branch: "|-",
            right: "`-",
        }
    } else {
        Art {
            vert: "\u{2502} ",
            branch: "\u{251c}\u{2500}",
            right: "\u{2514}\u{2500}",
        }
    }
}

/// libsmartcols' `tree_ascii_art_to_buffer(ln)`: for each ancestor-or-self
/// below the root, two blanks if it is a last child, else the vertical.
fn ancestors_art(lines: &[Line], i: usize, a: &Art) -> String {
    match lines[i].parent {
        None => String::new(),
        Some(p) => {
            let mut s = ancestors_art(lines, p, a);
            s.push_str(if is_last_child(lines, i) {
                "  "
            } else {
                a.vert
            });
            s
        }
    }
}

/// The tree prefix of a line's NAME cell.
fn name_prefix(lines: &[Line], i: usize, a: &Art) -> String {
    match lines[i].parent {
        None => String::new(),
        Some(p) => {
            let mut s = ancestors_art(lines, p, a);
            s.push_str(if is_last_child(lines, i) {
                a.right
            } else {
                a.branch
            });
            s
        }
    }
}

/// Display width (box-drawing characters are one column each).
fn width(s: &str) -> usize {
    s.chars().count()
}

fn render_table(lines: &[Line], order: &[(usize, usize)], o: &Options, is_tree: bool) -> String {
    let ncol = o.columns.len();
    let tree_idx = if is_tree {
        o.columns.iter().position(|&c| c == Column::Name)
    } else {
        None
    };
    let a = art(o);
    // Cells of every row: (chunks per column, tree prefix).
    let rows: Vec<(Vec<Vec<String>>, String)> = order
        .iter()
        .map(|&(i, _)| {
            let l = &lines[i];
            let cells = o
                .columns
                .iter()
                .map(|&c| {
                    let s = cell(l.dev, l.parent_dev, c, o);
                    if c == Column::Mountpoints {
                        s.split('\n').map(str::to_string).collect()
                    } else {
                        vec![s]
                    }
                })
                .collect();
            let prefix = if tree_idx.is_some() {
                name_prefix(lines, i, &a)
            } else {
                String::new()
            };
            (cells, prefix)
        })
        .collect();
    let mut widths = vec![0usize; ncol];
    for (ci, &c) in o.columns.iter().enumerate() {
        let info = c.info();
        let hdr = width(info.header);
        let data = rows
            .iter()
            .map(|(cells, prefix)| {
                let extra = if Some(ci) == tree_idx {
                    width(prefix)
                } else {
                    0
                };
                cells[ci].iter().map(|s| width(s)).max().unwrap_or(0) + extra
            })
            .max()
            .unwrap_or(0);
        // libsmartcols count_column_width() when not on a terminal.
        widths[ci] = if data < hdr {
            hdr
        } else if info.hint >= 1.0 && (data as f64) < info.hint && (hdr as f64) < info.hint {
            info.hint as usize
        } else {
            data
        };
    }
    let mut out = String::new();
    let push_cell = |s: &mut String, ci: usize, text: &str| {
        let c = o.columns[ci];
        let w = widths[ci];
        let pad = w.saturating_sub(width(text));
        let last = ci + 1 == ncol;
        if c.info().right {
            if !text.is_empty() {
                s.push_str(&" ".repeat(pad));
                s.push_str(text);
            } else if !last {
                s.push_str(&" ".repeat(w));
            }
        } else {
            s.push_str(text);
            if !last {
                s.push_str(&" ".repeat(pad));
            }
        }
        if !last {
            s.push(' ');
        }
    };
    if !o.noheadings {
        let mut s = String::new();
        for (ci, c) in o.columns.iter().enumerate() {
            push_cell(&mut s, ci, c.info().header);
        }
        out.push_str(&s);
        out.push('\n');
    }
    for (ri, (cells, prefix)) in rows.iter().enumerate() {
        let nlines = cells.iter().map(Vec::len).max().unwrap_or(1).max(1);
        for ln in 0..nlines {
            let mut s = String::new();
            for (ci, cell) in cells.iter().enumerate() {
                let chunk = cell.get(ln);
                if ln == 0 {
                    let v = chunk.map(String::as_str).unwrap_or("");
                    if Some(ci) == tree_idx {
                        push_cell(&mut s, ci, &format!("{prefix}{v}"));
                    } else {
                        push_cell(&mut s, ci, v);
                    }
                } else if let Some(v) = chunk {
                    push_cell(&mut s, ci, v);
                } else if Some(ci) == tree_idx {
                    // print_empty_cell(): the line's own tree art, and a
                    // vertical when it has children below.
                    let i = order[ri].0;
                    let mut t = ancestors_art(lines, i, &a);
                    if !lines[i].children.is_empty() {
                        t.push_str(a.vert);
                    }
                    push_cell(&mut s, ci, &t);
                } else {
                    push_cell(&mut s, ci, "");
                }
            }
            out.push_str(&s);
            out.push('\n');
        }
    }
    out
}

/// `-r` escapes blanks, backslashes and unprintable bytes as `\xNN`
/// (`fputs_nonblank`); bytes above 0x7f count as unprintable.
fn raw_escape(s: &str) -> String {
    let mut o = String::new();
    for &b in s.as_bytes() {
        if b == b' ' || b == b'\t' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            o.push_str(&format!("\\x{b:02x}"));
        } else {
            o.push(b as char);
        }
    }
    o
}

/// `-P` quotes values and escapes `"`, `\`, `` ` ``, `$` and unprintable
/// bytes as `\xNN` (`fputs_quoted`).
fn pairs_quote(s: &str) -> String {
    let mut o = String::from("\"");
    for &b in s.as_bytes() {
        if matches!(b, b'"' | b'\\' | b'`' | b'$') || !(0x20..0x7f).contains(&b) {
            o.push_str(&format!("\\x{b:02x}"));
        } else {
            o.push(b as char);
        }
    }
    o.push('"');
    o
}

fn render_raw(lines: &[Line], order: &[(usize, usize)], o: &Options) -> String {
    let mut out = String::new();
    if !o.noheadings {
        let h: Vec<String> = o
            .columns
            .iter()
            .map(|c| raw_escape(c.info().header))
            .collect();
        out.push_str(&h.join(" "));
        out.push('\n');
    }
    for &(i, _) in order {
        let l = &lines[i];
        let v: Vec<String> = o
            .columns
            .iter()
            .map(|&c| raw_escape(&cell(l.dev, l.parent_dev, c, o)))
            .collect();
        out.push_str(&v.join(" "));
        out.push('\n');
    }
    out
}

fn render_pairs(lines: &[Line], order: &[(usize, usize)], o: &Options) -> String {
    let mut out = String::new();
    for &(i, _) in order {
        let l = &lines[i];
        let v: Vec<String> = o
            .columns
            .iter()
            .map(|&c| {
                format!(
                    "{}={}",
                    c.info().header,
                    pairs_quote(&cell(l.dev, l.parent_dev, c, o))
                )
            })
            .collect();
        out.push_str(&v.join(" "));
        out.push('\n');
    }
    out
}

/// JSON string escaping of util-linux's jsonwrt (`"`, `\`, and controls).
fn json_escape(s: &str) -> String {
    let mut o = String::new();
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\u{8}' => o.push_str("\\b"),
            '\t' => o.push_str("\\t"),
            '\n' => o.push_str("\\n"),
            '\u{c}' => o.push_str("\\f"),
            '\r' => o.push_str("\\r"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o
}

fn json_string(s: &str) -> String {
    if s.is_empty() {
        "null".into()
    } else {
        format!("\"{}\"", json_escape(s))
    }
}

/// The value of one JSON key (2.37+ layout); `indent` is the key's.
fn json_value(l: &Line, c: Column, o: &Options, indent: usize) -> String {
    let text = cell(l.dev, l.parent_dev, c, o);
    match c.info().json {
        JsonType::Bool => (!(text.is_empty() || text.starts_with('0'))).to_string(),
        JsonType::Size if o.bytes => {
            if text.is_empty() {
                "null".into()
            } else {
                text
            }
        }
        JsonType::Array => {
            let pad = " ".repeat(indent + 4);
            let inner = if text.is_empty() {
                "null".to_string()
            } else {
                text.split('\n')
                    .map(json_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!("[\n{pad}{inner}\n{}]", " ".repeat(indent))
        }
        _ => json_string(&text),
    }
}

fn render_json(lines: &[Line], tops: &[usize], o: &Options, is_tree: bool) -> String {
    let mut out = String::from("{\n   \"blockdevices\": [\n");
    if o.version >= UtilLinux::V2_37 {
        json_new(lines, tops, o, 2, is_tree, &mut out);
    } else {
        json_old(lines, tops, o, 2, is_tree, &mut out);
    }
    out.push_str("   ]\n}\n");
    out
}

fn json_new(
    lines: &[Line],
    ids: &[usize],
    o: &Options,
    level: usize,
    is_tree: bool,
    out: &mut String,
) {
    let ind = |n: usize| " ".repeat(3 * n);
    for (n, &i) in ids.iter().enumerate() {
        if n == 0 {
            out.push_str(&ind(level));
            out.push_str("{\n");
        }
        let kids: Vec<usize> = if is_tree {
            sorted_children(lines, i)
        } else {
            Vec::new()
        };
        let ncol = o.columns.len();
        for (k, &c) in o.columns.iter().enumerate() {
            let key = c.info().header.to_ascii_lowercase();
            let val = json_value(&lines[i], c, o, 3 * (level + 1));
            let comma = if k + 1 < ncol || !kids.is_empty() {
                ","
            } else {
                ""
            };
            out.push_str(&format!(
                "{}\"{}\": {}{}\n",
                ind(level + 1),
                json_escape(&key),
                val,
                comma
            ));
        }
        if !kids.is_empty() {
            out.push_str(&format!("{}\"children\": [\n", ind(level + 1)));
            json_new(lines, &kids, o, level + 2, is_tree, out);
            out.push_str(&format!("{}]\n", ind(level + 1)));
        }
        out.push_str(&ind(level));
        if n + 1 < ids.len() {
            out.push_str("},{\n");
        } else {
            out.push_str("}\n");
        }
    }
}

/// util-linux 2.30–2.36: one object per line (2.33+: typed values without a
/// space after the colon; before: every value a string). [S, not run]
fn json_old(
    lines: &[Line],
    ids: &[usize],
    o: &Options,
    level: usize,
    is_tree: bool,
    out: &mut String,
) {
    let v = o.version;
    let ind = " ".repeat(3 * level);
    for (n, &i) in ids.iter().enumerate() {
        let l = &lines[i];
        let kids: Vec<usize> = if is_tree {
            sorted_children(lines, i)
        } else {
            Vec::new()
        };
        let mut parts = Vec::new();
        for &c in &o.columns {
            let key = c.info().header.to_ascii_lowercase();
            let raw = match c {
                Column::MajMin => format!("{}:{}", l.dev.major, l.dev.minor),
                _ => cell(l.dev, l.parent_dev, c, o),
            };
            let val = if raw.is_empty() {
                "null".to_string()
            } else {
                match (v, c.info().json) {
                    (UtilLinux::V2_34, JsonType::Bool) => (raw != "0").to_string(),
                    (UtilLinux::V2_34, JsonType::Size) if o.bytes => raw,
                    _ => format!("\"{}\"", json_escape(&raw)),
                }
            };
            parts.push(if v == UtilLinux::V2_34 {
                format!("\"{key}\":{val}")
            } else {
                format!("\"{key}\": {val}")
            });
        }
        out.push_str(&ind);
        out.push('{');
        out.push_str(&parts.join(", "));
        if kids.is_empty() {
            out.push('}');
        } else {
            out.push_str(",\n");
            out.push_str(&format!("{ind}   \"children\": [\n"));
            json_old(lines, &kids, o, level + 2, is_tree, out);
            out.push_str(&format!("{ind}   ]\n{ind}}}"));
        }
        out.push_str(if n + 1 < ids.len() { ",\n" } else { "\n" });
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
