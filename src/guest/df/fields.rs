//! df's output fields: their `--output` names, minimum widths, alignment,
//! the default sets, and the header each prints in each header mode.

use super::sizes::blocks_header;
use super::{HeaderMode, Options};
use crate::guest::human::opts;

/// A df output field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Field {
    Source,
    Fstype,
    Itotal,
    Iused,
    Iavail,
    Ipcent,
    Size,
    Used,
    Avail,
    Pcent,
    File,
    Target,
}

impl Field {
    /// Parses an `--output` field name.
    pub fn parse(s: &str) -> Option<Field> {
        Field::all().into_iter().find(|f| f.name() == s)
    }

    /// The name `--output` takes.
    pub fn name(self) -> &'static str {
        use Field::*;
        match self {
            Source => "source",
            Fstype => "fstype",
            Itotal => "itotal",
            Iused => "iused",
            Iavail => "iavail",
            Ipcent => "ipcent",
            Size => "size",
            Used => "used",
            Avail => "avail",
            Pcent => "pcent",
            File => "file",
            Target => "target",
        }
    }

    /// Every field, in `--output`'s order.
    pub fn all() -> Vec<Field> {
        use Field::*;
        vec![
            Source, Fstype, Itotal, Iused, Iavail, Ipcent, Size, Used, Avail, Pcent, File, Target,
        ]
    }

    pub(super) fn min_width(self) -> usize {
        use Field::*;
        match self {
            Source => 14,
            Fstype | Pcent | Ipcent => 4,
            Size | Used | Avail | Itotal | Iused | Iavail => 5,
            File | Target => 0,
        }
    }

    pub(super) fn left(self) -> bool {
        matches!(
            self,
            Field::Source | Field::Fstype | Field::File | Field::Target
        )
    }
}

/// The fields of `df` (`-T` adds the type, `-i` shows inodes).
pub fn default_fields(inodes: bool, with_type: bool) -> Vec<Field> {
    use Field::*;
    let mut v = vec![Source];
    if with_type {
        v.push(Fstype);
    }
    if inodes {
        v.extend([Itotal, Iused, Iavail, Ipcent]);
    } else {
        v.extend([Size, Used, Avail, Pcent]);
    }
    v.push(Target);
    v
}

pub(super) fn header(f: Field, o: &Options) -> String {
    use Field::*;
    let human = o.human_opts & opts::AUTOSCALE != 0;
    match f {
        Source => "Filesystem".into(),
        Fstype => "Type".into(),
        Itotal => "Inodes".into(),
        Iused => "IUsed".into(),
        Iavail => "IFree".into(),
        Ipcent => "IUse%".into(),
        Size => match o.header_mode {
            HeaderMode::Default | HeaderMode::Posix => blocks_header(o),
            HeaderMode::Output if !human => blocks_header(o),
            _ => "Size".into(),
        },
        Used => "Used".into(),
        Avail => match o.header_mode {
            HeaderMode::Human | HeaderMode::Output => "Avail".into(),
            _ => "Available".into(),
        },
        Pcent => match o.header_mode {
            HeaderMode::Posix => "Capacity".into(),
            _ => "Use%".into(),
        },
        File => "File".into(),
        Target => "Mounted on".into(),
    }
}
