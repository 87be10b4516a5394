//! lsblk's columns: names and headers, the util-linux version each
//! appeared in, `-o` list parsing, the default and `-f` sets, and the text
//! of a cell (sizes rounded as each util-linux version rounds them).

use super::super::human;
use super::{Device, Format, Options, UtilLinux};

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
pub(super) enum JsonType {
    String,
    Bool,
    /// A size: a string, or a number with `-b`.
    Size,
    /// MOUNTPOINTS: an array.
    Array,
}

pub(super) struct Info {
    pub(super) header: &'static str,
    /// Width hint: ≥ 1 absolute, < 1 relative (only used on terminals).
    pub(super) hint: f64,
    pub(super) right: bool,
    pub(super) json: JsonType,
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

    pub(super) fn info(self) -> Info {
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
pub(super) fn cell(d: &Device, parent: Option<&Device>, c: Column, o: &Options) -> String {
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
