//! df's output (coreutils 9.1), to the byte (spec views.md §2): fields,
//! headers per mode, widths, numbers through gnulib's `human_readable`
//! (rounding up), Use% as a ceiling, `--total`, and which mounts df shows
//! (pseudo filesystems, duplicates of one device, FILE arguments).

use super::normalize_path;
use serde::{Deserialize, Serialize};

use super::human::{self, opts};

/// statfs numbers of one mounted filesystem (the filesystem layer's).
pub use crate::fs::StatFs;

/// One mounted filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// The mount source (`/dev/xvda1`).
    pub source: String,
    /// Filesystem type.
    pub fstype: String,
    /// Mount point.
    pub target: String,
    /// Its numbers.
    pub stat: StatFs,
}

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

    fn min_width(self) -> usize {
        use Field::*;
        match self {
            Source => 14,
            Fstype | Pcent | Ipcent => 4,
            Size | Used | Avail | Itotal | Iused | Iavail => 5,
            File | Target => 0,
        }
    }

    fn left(self) -> bool {
        matches!(
            self,
            Field::Source | Field::Fstype | Field::File | Field::Target
        )
    }
}

/// Which header set df prints (df.c `header_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeaderMode {
    /// `df`, `-k`, `-B`.
    #[default]
    Default,
    /// `-h`, `-H` (also with `-P`).
    Human,
    /// `-i`.
    Inodes,
    /// `-P` without a human option.
    Posix,
    /// `--output`.
    Output,
}

/// df's options (the row selection is [`select`]'s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Fields in order.
    pub fields: Vec<Field>,
    /// The header set.
    pub header_mode: HeaderMode,
    /// gnulib `human_readable` options ([`opts`]).
    pub human_opts: u32,
    /// The output block size (1 with -h/-H).
    pub block_size: u64,
    /// `--total`.
    pub total: bool,
}

impl Options {
    /// `df` with no options.
    pub fn new() -> Options {
        Options {
            fields: default_fields(false, false),
            header_mode: HeaderMode::Default,
            human_opts: 0,
            block_size: 1024,
            total: false,
        }
    }

    /// `-h` (1024) or `-H` (1000).
    pub fn human(base: u64, fields: Vec<Field>) -> Options {
        let b = if base == 1024 { opts::BASE_1024 } else { 0 };
        Options {
            fields,
            header_mode: HeaderMode::Human,
            human_opts: opts::AUTOSCALE | opts::SI | b,
            block_size: 1,
            total: false,
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self::new()
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

/// Why a `-B` argument was refused (gnulib `strtol_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockSizeError {
    /// `invalid -B argument 'x'`
    Invalid,
    /// `invalid suffix in -B argument 'x'`
    InvalidSuffix,
    /// `-B argument 'x' too large`
    Overflow,
}

/// Parses a `-B`/`--block-size` argument as gnulib `human_options` does:
/// returns the `human_readable` options and the block size.
pub fn parse_block_size(spec: &str) -> Result<(u32, u64), BlockSizeError> {
    let mut o = 0;
    let mut spec = spec;
    if let Some(rest) = spec.strip_prefix('\'') {
        o |= opts::GROUP_DIGITS;
        spec = rest;
    }
    // ARGMATCH against "human-readable" and "si": an exact name or a
    // prefix of only one.
    let names = [
        (
            "human-readable",
            opts::AUTOSCALE | opts::SI | opts::BASE_1024,
        ),
        ("si", opts::AUTOSCALE | opts::SI),
    ];
    let hits: Vec<u32> = names
        .iter()
        .filter(|(n, _)| n.starts_with(spec))
        .map(|&(_, v)| v)
        .collect();
    if let Some(&(_, v)) = names.iter().find(|(n, _)| *n == spec) {
        return Ok((o | v, 1));
    }
    if hits.len() == 1 {
        return Ok((o | hits[0], 1));
    }
    let trimmed = spec.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    if trimmed.starts_with('-') {
        return Err(BlockSizeError::Invalid);
    }
    const VALID: &str = "eEgGkKmMpPtTyYzZ0";
    // strtoumax(s, &end, 0) on the unsigned path of gnulib's xstrtol (a
    // leading '-' was refused before).
    let r = crate::compat::strtoull(spec, 0);
    let (mut val, used, mut overflow) = (r.value, r.end, r.overflow);
    let rest = &spec[used..];
    if used == 0 {
        match rest.chars().next() {
            Some(c) if VALID.contains(c) => val = 1,
            _ => return Err(BlockSizeError::Invalid),
        }
    }
    let mut bad_suffix = false;
    let mut suffix_len = 0;
    if let Some(c) = rest.chars().next() {
        if !VALID.contains(c) {
            bad_suffix = true;
        } else {
            let mut base: u64 = 1024;
            let mut n = 1;
            let next = &rest.as_bytes()[1..];
            if matches!(
                c,
                'E' | 'G' | 'g' | 'k' | 'K' | 'M' | 'm' | 'P' | 'T' | 't' | 'Y' | 'Z'
            ) {
                match next.first() {
                    Some(b'i') if next.get(1) == Some(&b'B') => n += 2,
                    Some(b'B') | Some(b'D') => {
                        base = 1000;
                        n += 1;
                    }
                    _ => {}
                }
            }
            let power = match c {
                'k' | 'K' => Some(1),
                'M' | 'm' => Some(2),
                'G' | 'g' => Some(3),
                'T' | 't' => Some(4),
                'P' => Some(5),
                'E' => Some(6),
                'Z' => Some(7),
                'Y' => Some(8),
                _ => None, // 'e', 'y', 'z', '0': valid but not a unit
            };
            match power {
                None => bad_suffix = true,
                Some(p) => {
                    for _ in 0..p {
                        match val.checked_mul(base) {
                            Some(x) => val = x,
                            None => {
                                overflow = true;
                                val = u64::MAX;
                            }
                        }
                    }
                    suffix_len = n;
                    if rest.len() > n {
                        bad_suffix = true;
                    }
                }
            }
        }
    }
    if val == 0 {
        return Err(BlockSizeError::Invalid);
    }
    if bad_suffix {
        return Err(BlockSizeError::InvalidSuffix);
    }
    if overflow {
        return Err(BlockSizeError::Overflow);
    }
    // A unit without a number shows the unit on every number.
    if used == 0 {
        o |= opts::SI;
        let last = rest.as_bytes()[suffix_len - 1];
        if last == b'B' {
            o |= opts::B;
        }
        if last != b'B' || (suffix_len >= 2 && rest.as_bytes()[suffix_len - 2] == b'i') {
            o |= opts::BASE_1024;
        }
    }
    Ok((o, val))
}

/// The `N-blocks` header (df.c get_header): `human_readable(block size)`
/// in the base that shows it more exactly.
fn blocks_header(o: &Options) -> String {
    if o.header_mode == HeaderMode::Posix {
        return format!("{}-blocks", o.block_size);
    }
    let mut hopts = opts::SUPPRESS_POINT_ZERO
        | opts::AUTOSCALE
        | opts::SI
        | (o.human_opts & (opts::GROUP_DIGITS | opts::BASE_1024 | opts::B));
    let (mut q1000, mut q1024) = (o.block_size, o.block_size);
    let (mut d1000, mut d1024);
    loop {
        d1000 = q1000 % 1000 == 0;
        q1000 /= 1000;
        d1024 = q1024 % 1024 == 0;
        q1024 /= 1024;
        if !(d1000 && d1024) {
            break;
        }
    }
    if !d1000 && d1024 {
        hopts |= opts::BASE_1024;
    }
    if !d1024 && d1000 {
        hopts &= !opts::BASE_1024;
    }
    if hopts & opts::BASE_1024 == 0 {
        hopts |= opts::B;
    }
    format!(
        "{}-blocks",
        human::human_readable(o.block_size, hopts, 1, 1)
    )
}

fn header(f: Field, o: &Options) -> String {
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

/// `(100·used) / (used + avail)` rounded up, or `-`.
fn percent(used: u128, avail: u128) -> String {
    if used + avail == 0 {
        "-".into()
    } else {
        format!("{}%", (100 * used).div_ceil(used + avail))
    }
}

/// One row df will print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Filesystem.
    pub source: String,
    /// Type (`-` when unknown).
    pub fstype: String,
    /// Mounted on.
    pub target: String,
    /// The FILE argument, or `-`.
    pub file: String,
    /// The numbers; `None` prints `-` everywhere (df -a on an over-mounted
    /// entry).
    pub stat: Option<StatFs>,
}

impl Row {
    /// A row for `m` without a FILE argument.
    pub fn of(m: &Mount) -> Row {
        Row {
            source: m.source.clone(),
            fstype: m.fstype.clone(),
            target: m.target.clone(),
            file: "-".into(),
            stat: Some(m.stat),
        }
    }
}

/// Values of one row: (input units, total, used, available) for blocks and
/// (total, used, available) for inodes.
struct Values {
    unit: u64,
    blocks: u64,
    bused: u64,
    bavail: u64,
    files: u64,
    iused: u64,
    ifree: u64,
}

fn cells(
    source: &str,
    fstype: &str,
    target: &str,
    file: &str,
    v: Option<&Values>,
    o: &Options,
) -> Vec<String> {
    use Field::*;
    o.fields
        .iter()
        .map(|f| match (f, v) {
            (Source, _) => source.to_string(),
            (Fstype, _) => fstype.to_string(),
            (File, _) => file.to_string(),
            (Target, _) => target.to_string(),
            (_, None) => "-".to_string(),
            (Itotal, Some(v)) => human::human_readable(v.files, o.human_opts, 1, 1),
            (Iused, Some(v)) => human::human_readable(v.iused, o.human_opts, 1, 1),
            (Iavail, Some(v)) => human::human_readable(v.ifree, o.human_opts, 1, 1),
            (Ipcent, Some(v)) => percent(u128::from(v.iused), u128::from(v.ifree)),
            (Size, Some(v)) => human::human_readable(v.blocks, o.human_opts, v.unit, o.block_size),
            (Used, Some(v)) => human::human_readable(v.bused, o.human_opts, v.unit, o.block_size),
            (Avail, Some(v)) => human::human_readable(v.bavail, o.human_opts, v.unit, o.block_size),
            (Pcent, Some(v)) => percent(u128::from(v.bused), u128::from(v.bavail)),
        })
        .collect()
}

/// Renders df's table for `rows`.
pub fn render(rows: &[Row], o: &Options) -> String {
    let mut table: Vec<Vec<String>> = vec![o.fields.iter().map(|&f| header(f, o)).collect()];
    // --total sums bytes (df.c add_to_grand_total) and prints them in
    // units of 1 byte.
    let (mut tb, mut tbfree, mut tbavail, mut tfiles, mut tffree) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for r in rows {
        let v = r.stat.map(|s| Values {
            unit: s.frsize,
            blocks: s.blocks,
            bused: s.blocks.saturating_sub(s.bfree),
            bavail: s.bavail,
            files: s.files,
            iused: s.files.saturating_sub(s.ffree),
            ifree: s.ffree,
        });
        if let Some(s) = r.stat {
            tb = tb.wrapping_add(s.frsize.wrapping_mul(s.blocks));
            tbfree = tbfree.wrapping_add(s.frsize.wrapping_mul(s.bfree));
            tbavail = tbavail.wrapping_add(s.frsize.wrapping_mul(s.bavail));
            tfiles = tfiles.wrapping_add(s.files);
            tffree = tffree.wrapping_add(s.ffree);
        }
        table.push(cells(
            &r.source,
            &r.fstype,
            &r.target,
            &r.file,
            v.as_ref(),
            o,
        ));
    }
    if o.total {
        let v = Values {
            unit: 1,
            blocks: tb,
            bused: tb.saturating_sub(tbfree),
            bavail: tbavail,
            files: tfiles,
            iused: tfiles.saturating_sub(tffree),
            ifree: tffree,
        };
        let target = if o.fields.contains(&Field::Source) {
            "-"
        } else {
            "total"
        };
        table.push(cells("total", "-", target, "-", Some(&v), o));
    }
    let widths: Vec<usize> = o
        .fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            table
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
                .max(f.min_width())
        })
        .collect();
    let mut out = String::new();
    for r in &table {
        let mut line = String::new();
        for (i, f) in o.fields.iter().enumerate() {
            if i > 0 {
                line.push(' ');
            }
            let pad = widths[i].saturating_sub(r[i].chars().count());
            let last = i + 1 == o.fields.len();
            if f.left() {
                line.push_str(&r[i]);
                if !last {
                    line.push_str(&" ".repeat(pad));
                }
            } else {
                line.push_str(&" ".repeat(pad));
                line.push_str(&r[i]);
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// gnulib's "dummy" filesystem types (mountlist.c `ME_DUMMY`): df hides
/// them unless `-a`.
pub fn is_dummy(fstype: &str) -> bool {
    matches!(
        fstype,
        "autofs"
            | "proc"
            | "subfs"
            | "debugfs"
            | "devpts"
            | "fusectl"
            | "fuse.portal"
            | "mqueue"
            | "rpc_pipefs"
            | "sysfs"
            | "devfs"
            | "kernfs"
            | "ignore"
            | "none"
    )
}

/// gnulib's `ME_REMOTE`: df -l hides these.
pub fn is_remote(source: &str, fstype: &str) -> bool {
    source.contains(':')
        || (source.starts_with("//") && matches!(fstype, "smbfs" | "smb3" | "cifs"))
        || matches!(
            fstype,
            "acfs" | "afs" | "coda" | "auristorfs" | "fhgfs" | "gpfs" | "ibrix" | "ocfs2" | "vxfs"
        )
        || source == "-hosts"
}

/// Which filesystems df shows: `-a`, `-l`, `-t`, `-x`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// `-a`
    pub all: bool,
    /// `-l`
    pub local: bool,
    /// `-t TYPE` (any of them; empty: all)
    pub types: Vec<String>,
    /// `-x TYPE`
    pub exclude: Vec<String>,
}

impl Selection {
    fn type_ok(&self, fstype: &str) -> bool {
        (self.types.is_empty() || self.types.iter().any(|t| t == fstype))
            && !self.exclude.iter().any(|t| t == fstype)
    }

    /// df.c get_dev's filters (`listed`: a FILE argument named it).
    fn shows(&self, m: &Mount, stat: Option<&StatFs>, listed: bool) -> bool {
        if self.local && is_remote(&m.source, &m.fstype) {
            return false;
        }
        if is_dummy(&m.fstype) && !self.all && !listed {
            return false;
        }
        if !self.type_ok(&m.fstype) {
            return false;
        }
        if !m.target.starts_with('/') {
            return false;
        }
        !(stat.is_some_and(|s| s.blocks == 0) && !self.all && !listed)
    }
}

/// The device a mount point shows now: the source of the last mount on
/// that target (what `stat(target).st_dev` finds). Mounts of a block device
/// are keyed by its name, others by their own position.
fn visible_key(mounts: &[Mount], target: &str) -> Option<(usize, String)> {
    mounts
        .iter()
        .enumerate()
        .rev()
        .find(|(_, m)| m.target == target)
        .map(|(i, m)| (i, m.source.clone()))
}

fn device_key(mounts: &[Mount], target: &str) -> String {
    match visible_key(mounts, target) {
        Some((_, s)) if s.starts_with('/') => format!("dev:{s}"),
        Some((i, _)) => format!("mount:{i}"),
        None => format!("target:{target}"),
    }
}

/// The rows of `df` without FILE arguments (df.c filter_mount_list and
/// get_all_entries): every mount in mount order, pseudo filesystems and
/// empty ones hidden unless `-a`, one row per device (the mount nearest the
/// root wins, in the place of the first), type filters applied.
pub fn select_all(mounts: &[Mount], sel: &Selection) -> Vec<Row> {
    if sel.all {
        // -a keeps every entry; an over-mounted one shows `-` values.
        return mounts
            .iter()
            .enumerate()
            .filter(|(_, m)| sel.shows(m, Some(&m.stat), false))
            .map(|(i, m)| {
                let hidden =
                    visible_key(mounts, &m.target).is_some_and(|(j, s)| j != i && s != m.source);
                let mut r = Row::of(m);
                if hidden {
                    r.fstype = "-".into();
                    r.stat = None;
                }
                r
            })
            .collect();
    }
    // (device key, index of the mount shown for it)
    let mut kept: Vec<(Option<String>, usize)> = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        let filtered = (sel.local && is_remote(&m.source, &m.fstype))
            || is_dummy(&m.fstype)
            || !sel.type_ok(&m.fstype);
        if filtered {
            kept.push((None, i));
            continue;
        }
        let key = device_key(mounts, &m.target);
        match kept
            .iter_mut()
            .find(|(k, _)| k.as_deref() == Some(key.as_str()))
        {
            None => kept.push((Some(key), i)),
            Some(slot) => {
                let seen = &mounts[slot.1];
                let new_wins = (m.source.contains('/') && !seen.source.contains('/'))
                    || seen.target.len() > m.target.len()
                    || (seen.source != m.source && seen.target == m.target);
                if new_wins {
                    slot.1 = i;
                }
            }
        }
    }
    kept.into_iter()
        .map(|(_, i)| &mounts[i])
        .filter(|m| sel.shows(m, Some(&m.stat), false))
        .map(Row::of)
        .collect()
}

/// df.c get_point: the mount holding `path` (the longest mount point that
/// is a prefix of it; among equal ones the last mounted; a pseudo
/// filesystem does not replace a real one).
pub fn mount_of_path<'a>(mounts: &'a [Mount], path: &str) -> Option<&'a Mount> {
    let resolved = normalize_path(path);
    let mut best: Option<&Mount> = None;
    let mut best_len = 0;
    for m in mounts {
        if m.fstype == "lofs" {
            continue;
        }
        if best.is_some_and(|b| !is_dummy(&b.fstype)) && is_dummy(&m.fstype) {
            continue;
        }
        let t = normalize_path(&m.target);
        let len = if t == "/" { 1 } else { t.len() };
        let matches = t == "/"
            || (resolved.starts_with(&t)
                && (resolved.len() == t.len() || resolved.as_bytes().get(t.len()) == Some(&b'/')));
        if best_len <= len && len <= resolved.len() && matches {
            best = Some(m);
            best_len = len;
        }
    }
    best
}

/// df.c get_device: the mount of block device `dev` (its mount nearest
/// the root that is not hidden by a later mount on the same point).
pub fn mount_of_device<'a>(mounts: &'a [Mount], dev: &str) -> Option<&'a Mount> {
    let dev = normalize_path(dev);
    let mut best: Option<&Mount> = None;
    for m in mounts {
        if normalize_path(&m.source) != dev {
            continue;
        }
        let eclipsed =
            visible_key(mounts, &m.target).is_some_and(|(_, s)| normalize_path(&s) != dev);
        if eclipsed {
            continue;
        }
        if m.target == "/" {
            return Some(m);
        }
        if best.is_none_or(|b| m.target.len() < b.target.len()) {
            best = Some(m);
        }
    }
    best
}

/// What one FILE argument gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileResult {
    /// A row (possibly filtered out by -t/-x/-l afterwards: `None`).
    Row(Option<Row>),
    /// `df: ARG: No such file or directory`
    NotFound,
    /// `df: cannot access ARG: over-mounted by another device`
    OverMounted,
}

/// The row for one FILE argument (df.c get_entry): a block device shows
/// the filesystem mounted from it, anything else the mount holding it.
/// `is_device` tells which arguments name a block device.
pub fn select_file(mounts: &[Mount], arg: &str, is_device: bool, sel: &Selection) -> FileResult {
    let found = if is_device {
        match mount_of_device(mounts, arg) {
            Some(m) => Some(m),
            None => {
                let n = normalize_path(arg);
                let hidden = mounts.iter().any(|m| normalize_path(&m.source) == n);
                if hidden {
                    return FileResult::OverMounted;
                }
                mount_of_path(mounts, arg)
            }
        }
    } else {
        mount_of_path(mounts, arg)
    };
    match found {
        None => FileResult::NotFound,
        Some(m) => {
            if !sel.shows(m, Some(&m.stat), true) {
                return FileResult::Row(None);
            }
            let mut r = Row::of(m);
            r.file = arg.to_string();
            FileResult::Row(Some(r))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(source: &str, fstype: &str, target: &str, st: [u64; 6]) -> Mount {
        Mount {
            source: source.into(),
            fstype: fstype.into(),
            target: target.into(),
            stat: StatFs {
                blocks: st[0],
                bfree: st[1],
                bavail: st[2],
                files: st[3],
                ffree: st[4],
                frsize: st[5],
            },
        }
    }

    fn six() -> Vec<Mount> {
        vec![
            m(
                "/dev/loop0",
                "ext4",
                "/mnt/e500m",
                [469328, 469314, 439618, 128016, 128005, 1024],
            ),
            m(
                "/dev/loop1",
                "ext4",
                "/mnt/e8g",
                [2038647, 2038641, 1929688, 524288, 524277, 4096],
            ),
            m(
                "/dev/loop2",
                "ext4",
                "/mnt/e16g",
                [4084447, 4084441, 3870630, 1048576, 1048565, 4096],
            ),
            m(
                "/dev/loop3",
                "xfs",
                "/mnt/x1g",
                [245760, 235783, 235783, 524288, 524285, 4096],
            ),
            m(
                "/dev/loop4",
                "xfs",
                "/mnt/x8g",
                [2080768, 2057996, 2057996, 4194304, 4194301, 4096],
            ),
            m(
                "/dev/loop5",
                "xfs",
                "/mnt/x200g",
                [52403200, 52029572, 52029572, 104857600, 104857597, 4096],
            ),
        ]
    }

    fn rows() -> Vec<Row> {
        six().iter().map(Row::of).collect()
    }

    fn with_bs(arg: &str) -> Options {
        let (h, b) = parse_block_size(arg).unwrap();
        Options {
            human_opts: h,
            block_size: b,
            ..Options::new()
        }
    }

    #[test]
    fn human_with_type() {
        let o = Options::human(1024, default_fields(false, true));
        assert_eq!(
            render(&rows(), &o),
            "Filesystem     Type  Size  Used Avail Use% Mounted on\n\
             /dev/loop0     ext4  459M   14K  430M   1% /mnt/e500m\n\
             /dev/loop1     ext4  7.8G   24K  7.4G   1% /mnt/e8g\n\
             /dev/loop2     ext4   16G   24K   15G   1% /mnt/e16g\n\
             /dev/loop3     xfs   960M   39M  922M   5% /mnt/x1g\n\
             /dev/loop4     xfs   8.0G   89M  7.9G   2% /mnt/x8g\n\
             /dev/loop5     xfs   200G  1.5G  199G   1% /mnt/x200g\n"
        );
    }

    #[test]
    fn kilobytes_bytes_and_inodes() {
        assert_eq!(
            render(&rows(), &Options::new()),
            "Filesystem     1K-blocks    Used Available Use% Mounted on\n\
             /dev/loop0        469328      14    439618   1% /mnt/e500m\n\
             /dev/loop1       8154588      24   7718752   1% /mnt/e8g\n\
             /dev/loop2      16337788      24  15482520   1% /mnt/e16g\n\
             /dev/loop3        983040   39908    943132   5% /mnt/x1g\n\
             /dev/loop4       8323072   91088   8231984   2% /mnt/x8g\n\
             /dev/loop5     209612800 1494512 208118288   1% /mnt/x200g\n"
        );
        let s = render(&rows(), &with_bs("1"));
        assert!(
            s.starts_with("Filesystem        1B-blocks       Used    Available Use% Mounted on\n"),
            "{s}"
        );
        assert!(
            s.contains("/dev/loop5     214643507200 1530380288 213113126912   1% /mnt/x200g\n"),
            "{s}"
        );
        let o = Options {
            fields: default_fields(true, false),
            header_mode: HeaderMode::Inodes,
            ..Options::new()
        };
        let s = render(&rows(), &o);
        assert!(
            s.starts_with("Filesystem        Inodes IUsed     IFree IUse% Mounted on\n"),
            "{s}"
        );
        assert!(
            s.contains("/dev/loop0        128016    11    128005    1% /mnt/e500m\n"),
            "{s}"
        );
    }

    #[test]
    fn block_size_headers_and_suffixes() {
        let hdr = |a: &str| {
            render(&[], &with_bs(a))
                .split(' ')
                .filter(|s| !s.is_empty())
                .nth(1)
                .unwrap()
                .to_string()
        };
        // Measured on coreutils 9.1.
        for (arg, h) in [
            ("1", "1B-blocks"),
            ("K", "1K-blocks"),
            ("k", "1K-blocks"),
            ("1M", "1M-blocks"),
            ("G", "1G-blocks"),
            ("GB", "1GB-blocks"),
            ("KB", "1kB-blocks"),
            ("KiB", "1KiB-blocks"),
            ("MiB", "1MiB-blocks"),
            ("1kiB", "1K-blocks"),
            ("KD", "1kB-blocks"),
            ("0x10", "16B-blocks"),
            ("010", "8B-blocks"),
            ("2048", "2K-blocks"),
            ("1000", "1kB-blocks"),
            ("512", "512B-blocks"),
            ("1500", "1.5kB-blocks"),
            ("1536", "1.6kB-blocks"),
            ("3M", "3M-blocks"),
            ("10G", "10G-blocks"),
            ("1024000", "1.1MB-blocks"),
            ("1048576000", "1000M-blocks"),
            ("5000", "5kB-blocks"),
        ] {
            assert_eq!(hdr(arg), h, "{arg}");
        }
        let mut o = Options::new();
        o.header_mode = HeaderMode::Posix;
        assert!(
            render(&rows(), &o)
                .starts_with("Filesystem     1024-blocks    Used Available Capacity Mounted on\n")
        );
        o.block_size = 1 << 30;
        assert!(render(&[], &o).starts_with("Filesystem     1073741824-blocks"));
        let one = |arg: &str, n: u64, unit: u64| {
            let (h, b) = parse_block_size(arg).unwrap();
            human::human_readable(n, h, unit, b)
        };
        assert_eq!(one("k", 264212084, 1024), "264212084K");
        assert_eq!(one("KB", 66053021, 4096), "270553175kB");
        assert_eq!(one("KiB", 264212084, 1024), "264212084KiB");
        assert_eq!(one("KD", 66053021, 4096), "270553175K");
        assert_eq!(one("MB", 66053021, 4096), "270554MB");
    }

    #[test]
    fn block_size_errors() {
        use BlockSizeError::*;
        for (arg, e) in [
            ("0", Invalid),
            ("foo", Invalid),
            ("-1", Invalid),
            ("", Invalid),
            ("iB", Invalid),
            ("B", Invalid),
            ("b", Invalid),
            ("08", Invalid),
            ("1Q", InvalidSuffix),
            ("1.5K", InvalidSuffix),
            ("K0", InvalidSuffix),
            ("1e3", InvalidSuffix),
            ("1,000", InvalidSuffix),
            ("1b", InvalidSuffix),
            ("99999999999999999999", Overflow),
            ("100000000E", Overflow),
        ] {
            assert_eq!(parse_block_size(arg), Err(e), "{arg}");
        }
        assert_eq!(parse_block_size("h").unwrap().1, 1);
        assert_eq!(
            parse_block_size("si").unwrap().0,
            opts::AUTOSCALE | opts::SI
        );
        assert_eq!(parse_block_size(" 1K").unwrap(), (0, 1024));
        assert_eq!(parse_block_size("'1K").unwrap(), (opts::GROUP_DIGITS, 1024));
    }

    #[test]
    fn total_and_output_headers() {
        let mut o = Options::human(1024, default_fields(false, false));
        o.total = true;
        let s = render(&rows()[..1], &o);
        assert!(
            s.ends_with("total           459M   14K  430M   1% -\n"),
            "{s}"
        );
        let o = Options {
            fields: vec![Field::Target, Field::Size],
            header_mode: HeaderMode::Output,
            total: true,
            ..Options::new()
        };
        let s = render(&rows()[..1], &o);
        assert_eq!(
            s,
            "Mounted on 1K-blocks\n/mnt/e500m    469328\ntotal         469328\n"
        );
    }

    #[test]
    fn rows_without_arguments() {
        let mut ms = six();
        ms.push(m("proc", "proc", "/proc", [0, 0, 0, 0, 0, 4096]));
        ms.push(m(
            "/dev/loop1",
            "ext4",
            "/e8g",
            [2038647, 2038641, 1929688, 524288, 524277, 4096],
        ));
        ms.push(m("tmpfs", "tmpfs", "/run", [100, 100, 100, 10, 9, 4096]));
        let sel = Selection::default();
        let r = select_all(&ms, &sel);
        let t: Vec<&str> = r.iter().map(|r| r.target.as_str()).collect();
        // loop1 shows once, at the shorter mount point, in the first place.
        assert_eq!(
            t,
            [
                "/mnt/e500m",
                "/e8g",
                "/mnt/e16g",
                "/mnt/x1g",
                "/mnt/x8g",
                "/mnt/x200g",
                "/run"
            ]
        );
        let sel = Selection {
            types: vec!["xfs".into()],
            ..Default::default()
        };
        assert_eq!(select_all(&ms, &sel).len(), 3);
        let sel = Selection {
            all: true,
            ..Default::default()
        };
        assert_eq!(select_all(&ms, &sel).len(), 9);
    }

    #[test]
    fn file_arguments() {
        let mut ms = six();
        ms.insert(0, m("/dev/root", "ext4", "/", [1, 0, 0, 1, 0, 4096]));
        let sel = Selection::default();
        let t = |a: &str, dev: bool| match select_file(&ms, a, dev, &sel) {
            FileResult::Row(Some(r)) => r.target,
            x => format!("{x:?}"),
        };
        assert_eq!(t("/mnt/x8g", false), "/mnt/x8g");
        assert_eq!(t("/mnt/x8g/a/b", false), "/mnt/x8g");
        assert_eq!(t("/mnt/x8gb", false), "/");
        assert_eq!(t("/mnt/./x1g/../x1g", false), "/mnt/x1g");
        assert_eq!(t("/dev/loop3", true), "/mnt/x1g");
        assert_eq!(t("/dev/loop9", true), "/");
        let sel = Selection {
            exclude: vec!["xfs".into()],
            ..Default::default()
        };
        assert_eq!(
            select_file(&ms, "/mnt/x1g", false, &sel),
            FileResult::Row(None)
        );
        assert_eq!(
            select_file(&ms[1..], "/nope", false, &sel),
            FileResult::NotFound
        );
    }
}
