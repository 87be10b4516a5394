//! df's output (coreutils 9.1), to the byte (spec views.md §2): fields,
//! headers per mode, widths, rounding up, Use% as a ceiling.

use super::human;

/// statfs numbers of one mounted filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatFs {
    /// f_frsize (the unit of the block counts).
    pub frsize: u64,
    /// f_blocks
    pub blocks: u64,
    /// f_bfree
    pub bfree: u64,
    /// f_bavail
    pub bavail: u64,
    /// f_files
    pub files: u64,
    /// f_ffree
    pub ffree: u64,
}

/// One mounted filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
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
        use Field::*;
        Some(match s {
            "source" => Source,
            "fstype" => Fstype,
            "itotal" => Itotal,
            "iused" => Iused,
            "iavail" => Iavail,
            "ipcent" => Ipcent,
            "size" => Size,
            "used" => Used,
            "avail" => Avail,
            "pcent" => Pcent,
            "file" => File,
            "target" => Target,
            _ => return None,
        })
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

/// How numbers are shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Units {
    /// `-h` (1024) or `-H` (1000).
    Human(u128),
    /// A fixed block size; `suffix` is appended to each number when the -B
    /// argument had a unit letter (`-BG` → `8G`).
    Blocks {
        /// Bytes per block.
        size: u128,
        /// The suffix shown after numbers.
        suffix: String,
        /// The header (`1K-blocks`, `1024-blocks`, ...).
        header: String,
    },
}

/// df's options (the row selection is the caller's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Fields in order.
    pub fields: Vec<Field>,
    /// Units.
    pub units: Units,
    /// `-P`.
    pub posix: bool,
    /// `--output` given (changes the Avail header).
    pub output_given: bool,
    /// `--total`.
    pub total: bool,
}

impl Options {
    /// `df` with no options.
    pub fn new() -> Options {
        Options {
            fields: default_fields(false, false),
            units: parse_block_size("1K").unwrap_or(Units::Human(1024)),
            posix: false,
            output_given: false,
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

/// Parses a `-B`/`--block-size` argument as coreutils does (`1`, `K`,
/// `1K`, `M`, `GB`, `1MiB`, `4096`...).
pub fn parse_block_size(arg: &str) -> Option<Units> {
    let digits: String = arg.chars().take_while(|c| c.is_ascii_digit()).collect();
    let rest = &arg[digits.len()..];
    let num: u128 = if digits.is_empty() {
        1
    } else {
        digits.parse().ok()?
    };
    let (mult, suffix): (u128, &str) = match rest {
        "" => (1, ""),
        "K" | "k" | "KiB" => (1 << 10, "K"),
        "M" | "MiB" => (1 << 20, "M"),
        "G" | "GiB" => (1 << 30, "G"),
        "T" | "TiB" => (1 << 40, "T"),
        "P" | "PiB" => (1 << 50, "P"),
        "E" | "EiB" => (1 << 60, "E"),
        "KB" | "kB" => (1000, "kB"),
        "MB" => (1000 * 1000, "MB"),
        "GB" => (1000 * 1000 * 1000, "GB"),
        "TB" => (1000u128.pow(4), "TB"),
        "PB" => (1000u128.pow(5), "PB"),
        _ => return None,
    };
    let size = num.checked_mul(mult)?;
    if size == 0 {
        return None;
    }
    // The suffix is shown on numbers only when the argument had no number.
    let shown = if digits.is_empty() {
        suffix.to_string()
    } else {
        String::new()
    };
    Some(Units::Blocks {
        size,
        suffix: shown,
        header: format!("{}-blocks", block_header(size)),
    })
}

/// `human_readable(block size)` with autoscale and no ".0", as df's header.
fn block_header(size: u128) -> String {
    let (base, sfx): (u128, &[&str]) = if size % 1024 == 0 {
        (1024, &["K", "M", "G", "T", "P", "E"])
    } else if size % 1000 == 0 {
        (1000, &["kB", "MB", "GB", "TB", "PB", "EB"])
    } else {
        return format!("{size}B");
    };
    let mut p = base;
    let mut e = 0;
    while e + 1 < sfx.len() && size % (p * base) == 0 {
        p *= base;
        e += 1;
    }
    format!("{}{}", size / p, sfx[e])
}

fn header(f: Field, o: &Options) -> String {
    use Field::*;
    match f {
        Source => "Filesystem".into(),
        Fstype => "Type".into(),
        Itotal => "Inodes".into(),
        Iused => "IUsed".into(),
        Iavail => "IFree".into(),
        Ipcent => "IUse%".into(),
        Size => match &o.units {
            Units::Human(_) => "Size".into(),
            Units::Blocks { header, .. } => {
                if o.posix && header == "1K-blocks" {
                    "1024-blocks".into()
                } else {
                    header.clone()
                }
            }
        },
        Used => "Used".into(),
        Avail => {
            if o.output_given || matches!(o.units, Units::Human(_)) {
                "Avail".into()
            } else {
                "Available".into()
            }
        }
        Pcent => {
            if o.posix && !matches!(o.units, Units::Human(_)) {
                "Capacity".into()
            } else {
                "Use%".into()
            }
        }
        File => "File".into(),
        Target => "Mounted on".into(),
    }
}

fn bytes_cell(bytes: u128, o: &Options) -> String {
    match &o.units {
        Units::Human(base) => human::df_human(bytes, *base),
        Units::Blocks { size, suffix, .. } => format!("{}{}", bytes.div_ceil(*size), suffix),
    }
}

fn count_cell(n: u128, o: &Options) -> String {
    match &o.units {
        Units::Human(base) => human::df_human(n, *base),
        Units::Blocks { .. } => n.to_string(),
    }
}

fn percent(used: u128, avail: u128) -> String {
    if used + avail == 0 {
        "-".into()
    } else {
        format!("{}%", (100 * used).div_ceil(used + avail))
    }
}

struct Numbers {
    size: u128,
    used: u128,
    avail: u128,
    files: u128,
    ifree: u128,
}

fn numbers(s: &StatFs) -> Numbers {
    let f = u128::from(s.frsize);
    Numbers {
        size: u128::from(s.blocks) * f,
        used: u128::from(s.blocks.saturating_sub(s.bfree)) * f,
        avail: u128::from(s.bavail) * f,
        files: u128::from(s.files),
        ifree: u128::from(s.ffree),
    }
}

fn cells(
    source: &str,
    fstype: &str,
    target: &str,
    file: &str,
    n: &Numbers,
    o: &Options,
) -> Vec<String> {
    use Field::*;
    let iused = n.files.saturating_sub(n.ifree);
    o.fields
        .iter()
        .map(|f| match f {
            Source => source.to_string(),
            Fstype => fstype.to_string(),
            Itotal => count_cell(n.files, o),
            Iused => count_cell(iused, o),
            Iavail => count_cell(n.ifree, o),
            Ipcent => percent(iused, n.ifree),
            Size => bytes_cell(n.size, o),
            Used => bytes_cell(n.used, o),
            Avail => bytes_cell(n.avail, o),
            Pcent => percent(n.used, n.avail),
            File => file.to_string(),
            Target => target.to_string(),
        })
        .collect()
}

/// Renders df's table for `rows`; `files` are the FILE arguments matched to
/// the rows (or `-` when none was given).
pub fn render(rows: &[(Mount, String)], o: &Options) -> String {
    let mut table: Vec<Vec<String>> = vec![o.fields.iter().map(|&f| header(f, o)).collect()];
    let mut total = Numbers {
        size: 0,
        used: 0,
        avail: 0,
        files: 0,
        ifree: 0,
    };
    for (m, file) in rows {
        let n = numbers(&m.stat);
        total.size += n.size;
        total.used += n.used;
        total.avail += n.avail;
        total.files += n.files;
        total.ifree += n.ifree;
        table.push(cells(&m.source, &m.fstype, &m.target, file, &n, o));
    }
    if o.total {
        table.push(cells("total", "-", "-", "-", &total, o));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn m(source: &str, fstype: &str, target: &str, st: [u64; 6]) -> (Mount, String) {
        (
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
            },
            "-".into(),
        )
    }

    fn six() -> Vec<(Mount, String)> {
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

    #[test]
    fn human_with_type() {
        let o = Options {
            fields: default_fields(false, true),
            units: Units::Human(1024),
            ..Options::new()
        };
        assert_eq!(
            render(&six(), &o),
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
            render(&six(), &Options::new()),
            "Filesystem     1K-blocks    Used Available Use% Mounted on\n\
             /dev/loop0        469328      14    439618   1% /mnt/e500m\n\
             /dev/loop1       8154588      24   7718752   1% /mnt/e8g\n\
             /dev/loop2      16337788      24  15482520   1% /mnt/e16g\n\
             /dev/loop3        983040   39908    943132   5% /mnt/x1g\n\
             /dev/loop4       8323072   91088   8231984   2% /mnt/x8g\n\
             /dev/loop5     209612800 1494512 208118288   1% /mnt/x200g\n"
        );
        let o = Options {
            units: parse_block_size("1").unwrap(),
            ..Options::new()
        };
        let s = render(&six(), &o);
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
            ..Options::new()
        };
        let s = render(&six(), &o);
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
    fn block_size_headers() {
        let hdr = |a: &str| match parse_block_size(a).unwrap() {
            Units::Blocks { header, .. } => header,
            Units::Human(_) => unreachable!(),
        };
        assert_eq!(hdr("1"), "1B-blocks");
        assert_eq!(hdr("K"), "1K-blocks");
        assert_eq!(hdr("1M"), "1M-blocks");
        assert_eq!(hdr("G"), "1G-blocks");
        assert_eq!(hdr("GB"), "1GB-blocks");
        let mut o = Options::new();
        o.posix = true;
        assert!(
            render(&six(), &o)
                .starts_with("Filesystem     1024-blocks    Used Available Capacity Mounted on\n")
        );
    }
}
