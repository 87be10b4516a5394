//! df's output (coreutils 9.1), to the byte: fields,
//! headers per mode, widths, numbers through gnulib's `human_readable`
//! (rounding up), Use% as a ceiling, `--total`, and which mounts df shows
//! (pseudo filesystems, duplicates of one device, FILE arguments).
//!
//! By concern: `fields` (the columns and their headers), `sizes` (`-B`
//! arguments, the block-size header, Use% and the numbers of a row),
//! `table` (cells, `--total` and the aligned layout) and `selection`
//! (which mounts a df without or with FILE arguments shows).

use serde::{Deserialize, Serialize};

use super::human::opts;

mod fields;
mod selection;
mod sizes;
mod table;

pub use fields::{Field, default_fields};
pub use selection::{
    FileResult, Selection, is_dummy, is_remote, mount_of_device, mount_of_path, select_all,
    select_file,
};
pub use sizes::{BlockSizeError, parse_block_size};
pub use table::render;

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

/// df's options (the row selection is [`Selection`]'s).
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

#[cfg(test)]
mod tests {
    use super::super::human;
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
