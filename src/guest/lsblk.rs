//! lsblk's output, to the byte (spec views.md §1): columns, widths as
//! libsmartcols computes them when stdout is not a terminal, tree art,
//! list/raw/pairs/JSON modes, sizes as util-linux rounds them, and the
//! differences between util-linux versions (MOUNTPOINT vs MOUNTPOINTS,
//! size rounding before 2.36, JSON layouts).

use super::human;

/// Which util-linux the instance's image ships (it decides headers, size
/// rounding and the JSON layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum UtilLinux {
    /// 2.23 (CentOS 7).
    V2_23,
    /// 2.30 (Amazon Linux 2).
    V2_30,
    /// 2.34 (Ubuntu 20.04).
    V2_34,
    /// 2.37 (Ubuntu 22.04, Amazon Linux 2023) and later.
    V2_37,
}

impl UtilLinux {
    /// The version for a `major.minor` string, rounded down to a known one.
    pub fn from_version(v: &str) -> UtilLinux {
        let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let (maj, min) = (it.next().unwrap_or(2), it.next().unwrap_or(38));
        match (maj, min) {
            (2, m) if m < 30 => UtilLinux::V2_23,
            (2, m) if m < 33 => UtilLinux::V2_30,
            (2, m) if m < 37 => UtilLinux::V2_34,
            _ => UtilLinux::V2_37,
        }
    }
}

/// Filesystem usage of a mounted device, from statfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq, Default)]
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
    /// PTUUID
    pub ptuuid: Option<String>,
    /// PTTYPE
    pub pttype: Option<String>,
    /// SERIAL
    pub serial: Option<String>,
    /// MODEL
    pub model: Option<String>,
    /// Usage when mounted.
    pub fs: Option<FsUsage>,
    /// Partitions.
    pub children: Vec<Device>,
}

/// A column lsblk can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Name,
    Kname,
    Path,
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
    Pkname,
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

impl Column {
    /// Parses a column name as `-o` takes it (case-insensitive).
    pub fn parse(s: &str) -> Option<Column> {
        use Column::*;
        Some(match s.to_ascii_uppercase().as_str() {
            "NAME" => Name,
            "KNAME" => Kname,
            "PATH" => Path,
            "MAJ:MIN" => MajMin,
            "RM" => Rm,
            "SIZE" => Size,
            "RO" => Ro,
            "TYPE" => Type,
            "MOUNTPOINT" => Mountpoint,
            "MOUNTPOINTS" => Mountpoints,
            "FSTYPE" => Fstype,
            "FSVER" => Fsver,
            "LABEL" => Label,
            "UUID" => Uuid,
            "PARTUUID" => Partuuid,
            "PARTLABEL" => Partlabel,
            "PARTTYPE" => Parttype,
            "PTUUID" => Ptuuid,
            "PTTYPE" => Pttype,
            "FSSIZE" => Fssize,
            "FSUSED" => Fsused,
            "FSAVAIL" => Fsavail,
            "FSUSE%" => Fsuse,
            "SERIAL" => Serial,
            "MODEL" => Model,
            "PKNAME" => Pkname,
            _ => return None,
        })
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
    if v >= UtilLinux::V2_37 {
        vec![
            Name,
            Fstype,
            Fsver,
            Label,
            Uuid,
            Fsavail,
            Fsuse,
            Mountpoints,
        ]
    } else {
        vec![Name, Fstype, Label, Uuid, Mountpoint]
    }
}

/// Output mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Aligned table with tree art.
    #[default]
    Tree,
    /// `-l`: aligned flat list.
    List,
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
    /// Output mode.
    pub mode: Mode,
    /// `-b`: sizes in bytes.
    pub bytes: bool,
    /// `-n`: no header line.
    pub noheadings: bool,
    /// `-d`: no partitions.
    pub nodeps: bool,
    /// `-i`: ASCII tree art (also without a UTF-8 locale).
    pub ascii: bool,
    /// `-p`: full paths in NAME.
    pub paths: bool,
    /// The util-linux version to copy.
    pub version: UtilLinux,
}

impl Options {
    /// Defaults of util-linux `v`.
    pub fn new(v: UtilLinux) -> Options {
        Options {
            columns: default_columns(v),
            mode: Mode::Tree,
            bytes: false,
            noheadings: false,
            nodeps: false,
            ascii: false,
            paths: false,
            version: v,
        }
    }
}

/// One output row: its cells (a cell may hold several lines) and tree info.
struct Row {
    cells: Vec<Vec<String>>,
    /// Tree prefix for NAME (already drawn).
    prefix: String,
}

fn size_string(bytes: u64, o: &Options) -> String {
    if o.bytes {
        bytes.to_string()
    } else if o.version >= UtilLinux::V2_37 {
        human::lsblk_size(bytes)
    } else {
        human::lsblk_size_old(bytes)
    }
}

/// FS* sizes print `0` (not `0B`) when zero.
fn fs_size_string(bytes: u64, o: &Options) -> String {
    if !o.bytes && bytes == 0 {
        "0".into()
    } else {
        size_string(bytes, o)
    }
}

fn cell(d: &Device, parent: Option<&Device>, c: Column, o: &Options) -> Vec<String> {
    use Column::*;
    let opt = |v: &Option<String>| v.clone().into_iter().collect::<Vec<_>>();
    let path = format!("/dev/{}", d.name);
    let bool_cell = |b: bool| vec![if b { "1" } else { "0" }.to_string()];
    match c {
        Name => vec![if o.paths { path } else { d.name.clone() }],
        Kname => vec![d.name.clone()],
        Path => vec![path],
        Pkname => parent.map(|p| p.name.clone()).into_iter().collect(),
        MajMin => {
            let tabular = matches!(o.mode, Mode::Tree | Mode::List);
            vec![if tabular {
                format!("{:>3}:{:<3}", d.major, d.minor)
            } else {
                format!("{}:{}", d.major, d.minor)
            }]
        }
        Rm => bool_cell(d.removable),
        Ro => bool_cell(d.read_only),
        Size => vec![size_string(d.size, o)],
        Type => vec![d.kind.clone()],
        Mountpoint => d.mountpoints.first().cloned().into_iter().collect(),
        Mountpoints => d.mountpoints.clone(),
        Fstype => opt(&d.fstype),
        Fsver => opt(&d.fsver),
        Label => opt(&d.label),
        Uuid => opt(&d.uuid),
        Partuuid => opt(&d.partuuid),
        Partlabel => opt(&d.partlabel),
        Parttype => opt(&d.parttype),
        Ptuuid => opt(&d.ptuuid),
        Pttype => opt(&d.pttype),
        Serial => opt(&d.serial),
        Model => opt(&d.model),
        Fssize | Fsused | Fsavail | Fsuse => match d.fs {
            None => Vec::new(),
            Some(f) => vec![match c {
                Fssize => fs_size_string(f.frsize * f.blocks, o),
                Fsavail => fs_size_string(f.frsize * f.bavail, o),
                Fsused => fs_size_string(f.frsize * (f.blocks - f.bfree.min(f.blocks)), o),
                _ => {
                    if f.blocks == 0 {
                        "-".into()
                    } else {
                        let used = (f.blocks - f.bfree.min(f.blocks)) as f64;
                        format!("{}%", round_half_even(used / f.blocks as f64 * 100.0))
                    }
                }
            }],
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

fn sorted(devs: &[Device]) -> Vec<&Device> {
    let mut v: Vec<&Device> = devs.iter().collect();
    v.sort_by_key(|d| (d.major, d.minor));
    v
}

fn collect_rows(
    devs: &[Device],
    o: &Options,
    rows: &mut Vec<Row>,
    parent: Option<&Device>,
    depth: usize,
    ancestors_last: &mut Vec<bool>,
) {
    let list = sorted(devs);
    let n = list.len();
    for (i, d) in list.into_iter().enumerate() {
        let last = i + 1 == n;
        let mut prefix = String::new();
        if o.mode == Mode::Tree && depth > 0 {
            let (vert, mid, end) = if o.ascii {
                ("| ", "|-", "`-")
            } else {
                ("\u{2502} ", "\u{251c}\u{2500}", "\u{2514}\u{2500}")
            };
            for &al in ancestors_last.iter().skip(1) {
                prefix.push_str(if al { "  " } else { vert });
            }
            prefix.push_str(if last { end } else { mid });
        }
        let cells = o.columns.iter().map(|&c| cell(d, parent, c, o)).collect();
        rows.push(Row { cells, prefix });
        if !o.nodeps && !d.children.is_empty() {
            ancestors_last.push(last);
            collect_rows(&d.children, o, rows, Some(d), depth + 1, ancestors_last);
            ancestors_last.pop();
        }
    }
}

/// Display width (box-drawing characters are one column each).
fn width(s: &str) -> usize {
    s.chars().count()
}

/// Renders lsblk's output for `devs` (top-level disks with their
/// partitions as children).
pub fn render(devs: &[Device], o: &Options) -> String {
    let mut rows = Vec::new();
    if o.mode == Mode::List {
        // A flat list sorted by MAJ:MIN only.
        let mut flat: Vec<(Device, Option<Device>)> = Vec::new();
        for d in devs {
            let mut top = d.clone();
            top.children.clear();
            flat.push((top, None));
            if !o.nodeps {
                for c in &d.children {
                    flat.push((c.clone(), Some(d.clone())));
                }
            }
        }
        flat.sort_by_key(|(d, _)| (d.major, d.minor));
        for (d, p) in &flat {
            rows.push(Row {
                cells: o
                    .columns
                    .iter()
                    .map(|&c| cell(d, p.as_ref(), c, o))
                    .collect(),
                prefix: String::new(),
            });
        }
    } else {
        collect_rows(devs, o, &mut rows, None, 0, &mut Vec::new());
    }
    match o.mode {
        Mode::Tree | Mode::List => render_table(&rows, o),
        Mode::Raw => render_raw(&rows, o),
        Mode::Pairs => render_pairs(&rows, o),
        Mode::Json => render_json(devs, o),
    }
}

fn name_col(o: &Options) -> Option<usize> {
    o.columns.iter().position(|&c| c == Column::Name)
}

fn render_table(rows: &[Row], o: &Options) -> String {
    let ncol = o.columns.len();
    let name_idx = name_col(o);
    let mut widths = vec![0usize; ncol];
    for (i, &c) in o.columns.iter().enumerate() {
        let info = c.info();
        let hdr = width(info.header);
        let data = rows
            .iter()
            .map(|r| {
                let extra = if Some(i) == name_idx {
                    width(&r.prefix)
                } else {
                    0
                };
                r.cells[i]
                    .iter()
                    .map(|s| width(s) + extra)
                    .max()
                    .unwrap_or(extra)
            })
            .max()
            .unwrap_or(0);
        widths[i] = if data < hdr {
            hdr
        } else if info.hint >= 1.0 && (data as f64) < info.hint && (hdr as f64) < info.hint {
            info.hint as usize
        } else {
            data
        };
    }
    let mut out = String::new();
    let line = |cells: &[String], out: &mut String, header: bool| {
        let mut s = String::new();
        for (i, &c) in o.columns.iter().enumerate() {
            let right = c.info().right;
            let text = &cells[i];
            let w = widths[i];
            let pad = w.saturating_sub(width(text));
            let last = i + 1 == ncol;
            if i > 0 {
                s.push(' ');
            }
            if right {
                s.push_str(&" ".repeat(pad));
                s.push_str(text);
            } else {
                s.push_str(text);
                if !last {
                    s.push_str(&" ".repeat(pad));
                }
            }
        }
        if header {
            while s.ends_with(' ') {
                s.pop();
            }
        }
        out.push_str(&s);
        out.push('\n');
    };
    if !o.noheadings {
        let hdrs: Vec<String> = o
            .columns
            .iter()
            .map(|c| c.info().header.to_string())
            .collect();
        line(&hdrs, &mut out, true);
    }
    for r in rows {
        let lines = r.cells.iter().map(Vec::len).max().unwrap_or(1).max(1);
        for l in 0..lines {
            let cells: Vec<String> = r
                .cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let v = c.get(l).cloned().unwrap_or_default();
                    if Some(i) == name_idx && l == 0 {
                        format!("{}{}", r.prefix, v)
                    } else {
                        v
                    }
                })
                .collect();
            line(&cells, &mut out, false);
        }
    }
    out
}

fn joined(cell: &[String]) -> String {
    cell.join("\\x0a")
}

fn render_raw(rows: &[Row], o: &Options) -> String {
    let mut out = String::new();
    if !o.noheadings {
        let h: Vec<&str> = o.columns.iter().map(|c| c.info().header).collect();
        out.push_str(&h.join(" "));
        out.push('\n');
    }
    for r in rows {
        let v: Vec<String> = r.cells.iter().map(|c| raw_escape(&joined(c))).collect();
        out.push_str(&v.join(" "));
        out.push('\n');
    }
    out
}

/// Raw mode escapes blanks and unsafe characters as `\xNN`.
fn raw_escape(s: &str) -> String {
    let mut o = String::new();
    for ch in s.chars() {
        if ch == ' ' || ch == '"' || ch.is_control() {
            o.push_str(&format!("\\x{:02x}", ch as u32));
        } else {
            o.push(ch);
        }
    }
    o
}

fn render_pairs(rows: &[Row], o: &Options) -> String {
    let mut out = String::new();
    for r in rows {
        let v: Vec<String> = o
            .columns
            .iter()
            .zip(&r.cells)
            .map(|(c, cell)| format!("{}=\"{}\"", pair_key(c.info().header), joined(cell)))
            .collect();
        out.push_str(&v.join(" "));
        out.push('\n');
    }
    out
}

/// `-P` keys are the headers (2.38 keeps `MAJ:MIN` and `FSUSE%`).
fn pair_key(h: &str) -> String {
    h.to_string()
}

fn json_escape(s: &str) -> String {
    let mut o = String::new();
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o
}

fn render_json(devs: &[Device], o: &Options) -> String {
    let mut out = String::new();
    match o.version {
        UtilLinux::V2_37 => {
            out.push_str("{\n   \"blockdevices\": [\n");
            json_new(&sorted(devs), None, o, 2, &mut out);
            out.push_str("   ]\n}\n");
        }
        v => {
            out.push_str("{\n   \"blockdevices\": [\n");
            json_old(&sorted(devs), None, o, 2, v, &mut out);
            out.push_str("   ]\n}\n");
        }
    }
    out
}

fn json_value(
    d: &Device,
    parent: Option<&Device>,
    c: Column,
    o: &Options,
    indent: usize,
) -> String {
    let cells = cell(d, parent, c, o);
    let info = c.info();
    match info.json {
        JsonType::Bool => (cells.first().map(String::as_str) == Some("1")).to_string(),
        JsonType::Size if o.bytes => cells.first().cloned().unwrap_or_else(|| "null".into()),
        JsonType::Array => {
            let pad = " ".repeat(indent + 4);
            let inner = if cells.is_empty() {
                "null".to_string()
            } else {
                cells
                    .iter()
                    .map(|s| format!("\"{}\"", json_escape(s)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!("[\n{pad}{inner}\n{}]", " ".repeat(indent))
        }
        _ => match cells.first() {
            Some(s) if !s.is_empty() => {
                let s = if c == Column::MajMin {
                    format!("{}:{}", d.major, d.minor)
                } else {
                    s.clone()
                };
                format!("\"{}\"", json_escape(&s))
            }
            _ => "null".into(),
        },
    }
}

fn json_new(
    devs: &[&Device],
    parent: Option<&Device>,
    o: &Options,
    level: usize,
    out: &mut String,
) {
    let ind = |n: usize| " ".repeat(3 * n);
    for (i, d) in devs.iter().enumerate() {
        if i == 0 {
            out.push_str(&ind(level));
            out.push_str("{\n");
        }
        let kids: Vec<&Device> = if o.nodeps {
            Vec::new()
        } else {
            sorted(&d.children)
        };
        let n = o.columns.len();
        for (k, &c) in o.columns.iter().enumerate() {
            let key = c.info().header.to_ascii_lowercase();
            let val = json_value(d, parent, c, o, 3 * (level + 1));
            let comma = if k + 1 < n || !kids.is_empty() {
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
            json_new(&kids, Some(d), o, level + 2, out);
            out.push_str(&format!("{}]\n", ind(level + 1)));
        }
        out.push_str(&ind(level));
        if i + 1 < devs.len() {
            out.push_str("},{\n");
        } else {
            out.push_str("}\n");
        }
    }
}

/// util-linux 2.30–2.36: one object per line (2.33+: typed values without a
/// space after the colon; before: every value a string).
fn json_old(
    devs: &[&Device],
    parent: Option<&Device>,
    o: &Options,
    level: usize,
    v: UtilLinux,
    out: &mut String,
) {
    let ind = " ".repeat(3 * level);
    for (i, d) in devs.iter().enumerate() {
        let kids: Vec<&Device> = if o.nodeps {
            Vec::new()
        } else {
            sorted(&d.children)
        };
        let mut parts = Vec::new();
        for &c in &o.columns {
            let key = c.info().header.to_ascii_lowercase();
            let cells = cell(d, parent, c, o);
            let raw = match c {
                Column::MajMin => Some(format!("{}:{}", d.major, d.minor)),
                _ => cells.first().cloned().filter(|s| !s.is_empty()),
            };
            let val = match (v, c.info().json, raw) {
                (UtilLinux::V2_34, JsonType::Bool, Some(s)) => (s == "1").to_string(),
                (UtilLinux::V2_34, JsonType::Size, Some(s)) if o.bytes => s,
                (_, _, Some(s)) => format!("\"{}\"", json_escape(&s)),
                (_, _, None) => "null".into(),
            };
            parts.push(if v == UtilLinux::V2_34 {
                format!("\"{key}\":{val}")
            } else {
                format!("\"{key}\": {val}")
            });
        }
        let sep = ", ";
        out.push_str(&ind);
        out.push('{');
        out.push_str(&parts.join(sep));
        if kids.is_empty() {
            out.push('}');
        } else {
            out.push_str(",\n");
            out.push_str(&format!("{ind}   \"children\": [\n"));
            json_old(&kids, Some(d), o, level + 2, v, out);
            out.push_str(&format!("{ind}   ]\n{ind}}}"));
        }
        out.push_str(if i + 1 < devs.len() { ",\n" } else { "\n" });
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
        o.mode = Mode::Pairs;
        let s = render(&loopdisk(), &o);
        assert!(s.starts_with(
            "NAME=\"loop7\" MAJ:MIN=\"7:7\" RM=\"0\" SIZE=\"8G\" RO=\"0\" TYPE=\"loop\" MOUNTPOINTS=\"\"\n\
             NAME=\"loop7p1\" MAJ:MIN=\"259:0\" RM=\"0\" SIZE=\"8G\" RO=\"0\" TYPE=\"part\" MOUNTPOINTS=\"/mnt/root\"\n"
        ), "{s}");
    }

    #[test]
    fn json_layout() {
        let mut o = Options::new(UtilLinux::V2_37);
        o.mode = Mode::Json;
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
}
