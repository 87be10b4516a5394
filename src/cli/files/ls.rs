//! `ls` (coreutils 9.1) inside an instance.
//!
//! Options: -a -A -b -B -c -C -d -f -F[WHEN] -g -G -h -H -i -I PATTERN -k
//! -l -L -m -n -N -o -p -q -Q -r -R -s -S -t -T COLS -u -U -v -w COLS -x
//! -X -1, --author, --block-size, --color[=WHEN] (never colours),
//! --dereference-command-line-symlink-to-dir, --file-type, --format,
//! --full-time, --group-directories-first, --hide, --indicator-style,
//! --quoting-style, --show-control-chars, --si, --sort, --time,
//! --time-style, --zero. Not taken: -D/--dired, -Z/--context,
//! --hyperlink.
//!
//! Output as 9.1 prints it. One name a line when stdout is not a terminal,
//! columns when it is (the width from `-w`, the terminal, `COLUMNS`, else
//! 80; 0 is no limit), names padded with tabs of `-T`/`TABSIZE` (8)
//! columns. Every listing sizes its columns over the entries it gathered
//! (for the command line: the directories it then lists too). Dates as
//! `--time-style` says (`locale` by default: `Mon DD HH:MM` within six
//! months before now, else `Mon DD  YYYY`), in the guest's zone (UTC).
//! Sizes through gnulib's `human_readable` with `--block-size`/`-h`/`--si`
//! (`-k` only for the block counts). Names as they are when stdout is not
//! a terminal, shell-escaped on one (the quoting of 8.25 and later: the
//! AMIs' 8.22 and 8.32 differ only there). Names sort by byte value (the
//! AMIs' `C.UTF-8` collation), `-v` by gnulib's `filevercmp`. Exit status
//! 2 for a command-line operand that cannot be listed and for bad `-w`,
//! `-T`, `--block-size` and `--time-style`; 1 for a problem inside a
//! listing and for an argument no option's list holds (`--sort=foo`).

use super::common::{Session, Stdout, start, strerror};
use super::opts::{self, Flag};
use crate::cli::error::AppletError;
use crate::cli::error::finish;
use crate::cli::output::err;
use ebsim::compat::date;
use ebsim::compat::filevercmp::filevercmp;
use ebsim::compat::mode::type_letter;
use ebsim::compat::quote::{self, quote, quoteaf, quotef};
use ebsim::fs::node::{FileType, NodeError, Timespec, split_rdev};
use ebsim::guest::df::{BlockSizeError, parse_block_size};
use ebsim::guest::human::{self, opts as hopts};
use ebsim::guest::vfs::Stat;
use std::cmp::Ordering;
use std::ffi::OsString;

const HELP: &str = "Usage: ls [OPTION]... [FILE]...
Lists the files of the instance (the current directory by default), sorted
by name.

  -a, --all                  include names starting with .
  -A, --almost-all           the same, without . and ..
      --author               with -l, the author (the owner) too
  -b, --escape               C-style escapes for nongraphic characters
      --block-size=SIZE      scale sizes by SIZE (e.g. K, M, 1K)
  -B, --ignore-backups       leave out names ending with ~
  -c                         ctime: sort by it (with -t, or without -l),
                             show it (with -l)
  -C                         in columns (the default on a terminal)
      --color[=WHEN]         accepted; ebsim never colours
  -d, --directory            list directories themselves
  -f                         -a -U, and not -l or -s
  -F, --classify[=WHEN]      append */=>@| by type
      --file-type            the same without *
      --format=WORD          across -x, commas -m, horizontal -x, long -l,
                             single-column -1, verbose -l, vertical -C
      --full-time            -l --time-style=full-iso
  -g                         -l without the owner
      --group-directories-first  directories before files
  -G, --no-group             -l without the group
  -h, --human-readable       sizes like 1K 234M 2G
      --si                   the same in powers of 1000
  -H, --dereference-command-line  follow links on the command line
      --dereference-command-line-symlink-to-dir
      --hide=PATTERN         leave out names matching PATTERN (not with -a/-A)
      --indicator-style=WORD none, slash (-p), file-type, classify (-F)
  -i, --inode                inode numbers
  -I, --ignore=PATTERN       leave out names matching PATTERN
  -k, --kibibytes            block counts in 1024-byte blocks
  -l                         long listing
  -L, --dereference          show what links point to
  -m                         names separated by commas
  -n, --numeric-uid-gid      -l with numeric owner and group
  -N, --literal              names as they are
  -o                         -l without the group
  -p, --indicator-style=slash  append / to directories
  -q, --hide-control-chars   ? for nongraphic characters
      --show-control-chars   nongraphic characters as they are
  -Q, --quote-name           names in double quotes
      --quoting-style=WORD   literal, locale, shell, shell-always,
                             shell-escape, shell-escape-always, c, escape
  -r, --reverse              reverse the order
  -R, --recursive            list subdirectories too
  -s, --size                 allocated size in blocks
  -S                         sort by size, largest first
      --sort=WORD            none (-U), size (-S), time (-t), version (-v),
                             extension (-X), width
      --time=WORD            atime, access, use (-u); ctime, status (-c);
                             birth, creation
      --time-style=STYLE     full-iso, long-iso, iso, locale, +FORMAT
  -t                         sort by time, newest first
  -T, --tabsize=COLS         tab stops every COLS (0: no tabs)
  -u                         atime: sort by it (with -t, or without -l),
                             show it (with -l)
  -U                         do not sort
  -v                         natural sort of version numbers
  -w, --width=COLS           the output width (0: no limit)
  -x                         in rows across
  -X                         sort by extension
  -1                         one name a line (the default off a terminal)
      --zero                 end each line with NUL
      --help                 show this help
      --version              show the version
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Long,
    One,
    Many,
    Horizontal,
    Commas,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sort {
    Name,
    Extension,
    Width,
    Size,
    Version,
    Time,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeType {
    Mtime,
    Ctime,
    Atime,
    Birth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Indicator {
    None,
    Slash,
    FileType,
    Classify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ignore {
    Default,
    DotAndDotdot,
    Minimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deref {
    Never,
    CommandLine,
    CommandLineSymlinkToDir,
    Always,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quoting {
    Literal,
    Shell,
    ShellAlways,
    ShellEscape,
    ShellEscapeAlways,
    C,
    CMaybe,
    Escape,
    Locale,
    CLocale,
}

struct Opts {
    ignore: Ignore,
    ignore_patterns: Vec<Vec<u8>>,
    hide_patterns: Vec<Vec<u8>>,
    format: Format,
    immediate_dirs: bool,
    recursive: bool,
    inode: bool,
    block_size: bool,
    owner: bool,
    group: bool,
    author: bool,
    numeric: bool,
    human: u32,
    block: u64,
    file_human: u32,
    file_block: u64,
    sort: Sort,
    reverse: bool,
    dirs_first: bool,
    time: TimeType,
    indicator: Indicator,
    deref: Deref,
    quoting: Quoting,
    qmark: bool,
    align_quotes: bool,
    /// Bytes quoted with a backslash in the styles that escape.
    quote_too: Vec<u8>,
    line_length: usize,
    tabsize: usize,
    /// `--time-style` formats: [not recent, recent].
    time_fmt: [Vec<u8>; 2],
    eol: u8,
}

/// One name to print.
struct Entry {
    /// The name as given or read.
    name: Vec<u8>,
    /// Its stat, when it was needed and could be had.
    st: Option<Stat>,
    /// Its type (from the stat, else the directory entry).
    kind: Option<FileType>,
    /// A command-line directory to be listed.
    arg_dir: bool,
    /// A symlink's target.
    target: Option<Vec<u8>>,
    /// The target's type and permissions, when looked up.
    link_mode: Option<(FileType, u16)>,
    /// A symlink to a directory (looked up for
    /// --group-directories-first).
    link_dir: bool,
    /// The name as shown (quoted) and whether quoting changed it.
    shown: Vec<u8>,
    quoted: bool,
}

/// The widths of a listing's columns.
#[derive(Default, Clone)]
struct Widths {
    inode: usize,
    blocks: usize,
    nlink: usize,
    owner: usize,
    group: usize,
    author: usize,
    major: usize,
    minor: usize,
    size: usize,
    some_quoted: bool,
}

/// `ls`.
pub fn run(args: Vec<OsString>) -> i32 {
    finish(main(args), String::new)
}

fn long_options() -> Vec<Flag> {
    vec![
        Flag::flag("all", 'a'),
        Flag::flag("escape", 'b'),
        Flag::flag("directory", 'd'),
        Flag::flag("full-time", '\u{e001}'),
        Flag::flag("group-directories-first", '\u{e002}'),
        Flag::flag("human-readable", 'h'),
        Flag::flag("inode", 'i'),
        Flag::flag("kibibytes", 'k'),
        Flag::flag("numeric-uid-gid", 'n'),
        Flag::flag("no-group", 'G'),
        Flag::flag("hide-control-chars", 'q'),
        Flag::flag("reverse", 'r'),
        Flag::flag("size", 's'),
        Flag::arg("width", 'w'),
        Flag::flag("almost-all", 'A'),
        Flag::flag("ignore-backups", 'B'),
        Flag::optional("classify", 'F'),
        Flag::flag("file-type", '\u{e003}'),
        Flag::flag("si", '\u{e004}'),
        Flag::flag("dereference-command-line", 'H'),
        Flag::flag("dereference-command-line-symlink-to-dir", '\u{e005}'),
        Flag::arg("hide", '\u{e006}'),
        Flag::arg("ignore", 'I'),
        Flag::arg("indicator-style", '\u{e007}'),
        Flag::flag("dereference", 'L'),
        Flag::flag("literal", 'N'),
        Flag::flag("quote-name", 'Q'),
        Flag::arg("quoting-style", '\u{e008}'),
        Flag::flag("recursive", 'R'),
        Flag::arg("format", '\u{e009}'),
        Flag::flag("show-control-chars", '\u{e00a}'),
        Flag::arg("sort", '\u{e00b}'),
        Flag::arg("tabsize", 'T'),
        Flag::arg("time", '\u{e00c}'),
        Flag::arg("time-style", '\u{e00d}'),
        Flag::flag("zero", '\u{e00e}'),
        Flag::optional("color", '\u{e00f}'),
        Flag::arg("block-size", '\u{e010}'),
        Flag::flag("author", '\u{e011}'),
    ]
}

/// gnulib `argmatch`: an exact name, or a prefix of names that all mean
/// the same; else the "invalid/ambiguous argument" message (status 1)
/// with the valid ones, those of one value on one line.
fn argmatch<T: Copy + PartialEq>(
    context: &str,
    arg: &str,
    table: &[(&str, T)],
    utf8: bool,
) -> Result<T, AppletError> {
    if let Some(&(_, v)) = table.iter().find(|(n, _)| *n == arg) {
        return Ok(v);
    }
    let hits: Vec<T> = table
        .iter()
        .filter(|(n, _)| n.starts_with(arg))
        .map(|&(_, v)| v)
        .collect();
    let ambiguous = match hits.first() {
        Some(&first) if hits.iter().all(|&v| v == first) => return Ok(first),
        Some(_) => true,
        None => false,
    };
    let (l, r) = super::common::quote_marks(utf8);
    let mut msg = format!(
        "ls: {} argument {} for {}\nValid arguments are:",
        if ambiguous { "ambiguous" } else { "invalid" },
        quote(arg.as_bytes(), utf8),
        quote(context.as_bytes(), utf8)
    );
    let mut last: Option<T> = None;
    for &(n, v) in table {
        if last == Some(v) {
            msg.push_str(&format!(", {l}{n}{r}"));
        } else {
            msg.push_str(&format!("\n  - {l}{n}{r}"));
        }
        last = Some(v);
    }
    msg.push('\n');
    msg.push_str(&super::common::try_help("ls"));
    Err(AppletError::new(1, msg))
}

/// `decode_line_length`: Some(0) is no limit; None when invalid.
fn line_length_arg(s: &str) -> Option<usize> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    if t.starts_with('-') || t.is_empty() {
        return None;
    }
    let r = ebsim::compat::strtoull(s, 0);
    if r.end != s.len() || r.end == 0 {
        return None;
    }
    if r.overflow || r.value > isize::MAX as u64 {
        return Some(0);
    }
    usize::try_from(r.value).ok().or(Some(0))
}

const WHEN: &[(&str, u8)] = &[
    ("always", 0),
    ("yes", 0),
    ("force", 0),
    ("never", 1),
    ("no", 1),
    ("none", 1),
    ("auto", 2),
    ("tty", 2),
    ("if-tty", 2),
];

fn main(args: Vec<OsString>) -> Result<i32, AppletError> {
    let prog = "ls";
    let long = long_options();
    let parsed = opts::parse_with(
        prog,
        &args,
        "abcdfghiklmnopqrstuvw:xABCFGHI:LNQRST:UX1",
        &long,
        HELP,
        2,
    )?;
    let utf8 = super::common::utf8_locale();
    use std::io::IsTerminal;
    let tty = std::io::stdout().is_terminal();
    let bad = |what: &str, a: &str| {
        AppletError::new(2, format!("ls: {what}: {}\n", quote(a.as_bytes(), utf8)))
    };
    let mut format_opt: Option<Format> = None;
    let mut sort_opt: Option<Sort> = None;
    let mut explicit_time = false;
    let mut kibibytes = false;
    let mut width_opt: Option<usize> = None;
    let mut tabsize_opt: Option<usize> = None;
    let mut quoting_opt: Option<Quoting> = None;
    let mut hide_control: Option<bool> = None;
    let mut time_style: Option<String> = None;
    let mut block_set = false;
    let mut o = Opts {
        ignore: Ignore::Default,
        ignore_patterns: Vec::new(),
        hide_patterns: Vec::new(),
        format: Format::One,
        immediate_dirs: false,
        recursive: false,
        inode: false,
        block_size: false,
        owner: true,
        group: true,
        author: false,
        numeric: false,
        human: 0,
        block: 1024,
        file_human: 0,
        file_block: 1,
        sort: Sort::Name,
        reverse: false,
        dirs_first: false,
        time: TimeType::Mtime,
        indicator: Indicator::None,
        deref: Deref::Never,
        quoting: Quoting::Literal,
        qmark: false,
        align_quotes: false,
        quote_too: Vec::new(),
        line_length: 80,
        tabsize: 8,
        time_fmt: [b"%b %e  %Y".to_vec(), b"%b %e %H:%M".to_vec()],
        eol: b'\n',
    };
    let mut deref: Option<Deref> = None;
    for p in &parsed.opts {
        let arg = p.arg.clone().unwrap_or_default();
        match p.val {
            'a' => o.ignore = Ignore::Minimal,
            'b' => quoting_opt = Some(Quoting::Escape),
            'c' => {
                o.time = TimeType::Ctime;
                explicit_time = true;
            }
            'd' => o.immediate_dirs = true,
            'f' => {
                o.ignore = Ignore::Minimal;
                sort_opt = Some(Sort::None);
                if format_opt == Some(Format::Long) {
                    format_opt = None;
                }
                o.block_size = false;
            }
            '\u{e003}' => o.indicator = Indicator::FileType,
            'g' => {
                format_opt = Some(Format::Long);
                o.owner = false;
            }
            'h' => {
                o.human = hopts::AUTOSCALE | hopts::SI | hopts::BASE_1024;
                o.file_human = o.human;
                o.block = 1;
                o.file_block = 1;
                block_set = true;
            }
            'i' => o.inode = true,
            'k' => kibibytes = true,
            'l' => format_opt = Some(Format::Long),
            'm' => format_opt = Some(Format::Commas),
            'n' => {
                o.numeric = true;
                format_opt = Some(Format::Long);
            }
            'o' => {
                format_opt = Some(Format::Long);
                o.group = false;
            }
            'p' => o.indicator = Indicator::Slash,
            'q' => hide_control = Some(true),
            'r' => o.reverse = true,
            's' => o.block_size = true,
            't' => sort_opt = Some(Sort::Time),
            'u' => {
                o.time = TimeType::Atime;
                explicit_time = true;
            }
            'v' => sort_opt = Some(Sort::Version),
            'w' => match line_length_arg(&arg) {
                Some(w) => width_opt = Some(w),
                None => return Err(bad("invalid line width", &arg)),
            },
            'x' => format_opt = Some(Format::Horizontal),
            'A' => o.ignore = Ignore::DotAndDotdot,
            'B' => {
                o.ignore_patterns.push(b"*~".to_vec());
                o.ignore_patterns.push(b".*~".to_vec());
            }
            'C' => format_opt = Some(Format::Many),
            'F' => {
                let w = match &p.arg {
                    Some(a) => argmatch("--classify", a, WHEN, utf8)?,
                    None => 0,
                };
                if w == 0 || (w == 2 && tty) {
                    o.indicator = Indicator::Classify;
                }
            }
            'G' => o.group = false,
            'H' => deref = Some(Deref::CommandLine),
            '\u{e005}' => deref = Some(Deref::CommandLineSymlinkToDir),
            'I' => o.ignore_patterns.push(arg.into_bytes()),
            'L' => deref = Some(Deref::Always),
            'N' => quoting_opt = Some(Quoting::Literal),
            'Q' => quoting_opt = Some(Quoting::C),
            'R' => o.recursive = true,
            'S' => sort_opt = Some(Sort::Size),
            'T' => {
                let r = ebsim::compat::strtoull(&arg, 0);
                let neg = arg.trim_start().starts_with('-');
                if neg || r.end != arg.len() || r.end == 0 || r.overflow {
                    return Err(bad("invalid tab size", &arg));
                }
                tabsize_opt = usize::try_from(r.value).ok();
                if tabsize_opt.is_none() {
                    return Err(bad("invalid tab size", &arg));
                }
            }
            'U' => sort_opt = Some(Sort::None),
            'X' => sort_opt = Some(Sort::Extension),
            // -1 after -l changes nothing.
            '1' if format_opt != Some(Format::Long) => format_opt = Some(Format::One),
            '\u{e011}' => o.author = true,
            '\u{e006}' => o.hide_patterns.push(arg.into_bytes()),
            '\u{e00b}' => {
                sort_opt = Some(argmatch(
                    "--sort",
                    &arg,
                    &[
                        ("none", Sort::None),
                        ("time", Sort::Time),
                        ("size", Sort::Size),
                        ("extension", Sort::Extension),
                        ("version", Sort::Version),
                        ("width", Sort::Width),
                    ],
                    utf8,
                )?)
            }
            '\u{e002}' => o.dirs_first = true,
            '\u{e00c}' => {
                o.time = argmatch(
                    "--time",
                    &arg,
                    &[
                        ("atime", TimeType::Atime),
                        ("access", TimeType::Atime),
                        ("use", TimeType::Atime),
                        ("ctime", TimeType::Ctime),
                        ("status", TimeType::Ctime),
                        ("birth", TimeType::Birth),
                        ("creation", TimeType::Birth),
                    ],
                    utf8,
                )?;
                explicit_time = true;
            }
            '\u{e009}' => {
                format_opt = Some(argmatch(
                    "--format",
                    &arg,
                    &[
                        ("verbose", Format::Long),
                        ("long", Format::Long),
                        ("commas", Format::Commas),
                        ("horizontal", Format::Horizontal),
                        ("across", Format::Horizontal),
                        ("vertical", Format::Many),
                        ("single-column", Format::One),
                    ],
                    utf8,
                )?)
            }
            '\u{e001}' => {
                format_opt = Some(Format::Long);
                time_style = Some("full-iso".into());
            }
            '\u{e00f}' => {
                if let Some(a) = &p.arg {
                    argmatch("--color", a, WHEN, utf8)?;
                }
            }
            '\u{e007}' => {
                o.indicator = argmatch(
                    "--indicator-style",
                    &arg,
                    &[
                        ("none", Indicator::None),
                        ("slash", Indicator::Slash),
                        ("file-type", Indicator::FileType),
                        ("classify", Indicator::Classify),
                    ],
                    utf8,
                )?
            }
            '\u{e008}' => {
                quoting_opt = Some(argmatch(
                    "--quoting-style",
                    &arg,
                    &[
                        ("literal", Quoting::Literal),
                        ("shell", Quoting::Shell),
                        ("shell-always", Quoting::ShellAlways),
                        ("shell-escape", Quoting::ShellEscape),
                        ("shell-escape-always", Quoting::ShellEscapeAlways),
                        ("c", Quoting::C),
                        ("c-maybe", Quoting::CMaybe),
                        ("escape", Quoting::Escape),
                        ("locale", Quoting::Locale),
                        ("clocale", Quoting::CLocale),
                    ],
                    utf8,
                )?)
            }
            '\u{e00d}' => time_style = Some(arg),
            '\u{e00a}' => hide_control = Some(false),
            '\u{e010}' => match parse_block_size(&arg) {
                Ok((h, b)) => {
                    o.human = h;
                    o.block = b;
                    o.file_human = h;
                    o.file_block = b;
                    block_set = true;
                }
                Err(e) => {
                    let msg = match e {
                        BlockSizeError::Invalid => {
                            format!("invalid --block-size argument '{arg}'")
                        }
                        BlockSizeError::InvalidSuffix => {
                            format!("invalid suffix in --block-size argument '{arg}'")
                        }
                        BlockSizeError::Overflow => {
                            format!("--block-size argument '{arg}' too large")
                        }
                    };
                    return Err(AppletError::new(2, format!("ls: {msg}\n")));
                }
            },
            '\u{e004}' => {
                o.human = hopts::AUTOSCALE | hopts::SI;
                o.file_human = o.human;
                o.block = 1;
                o.file_block = 1;
                block_set = true;
            }
            '\u{e00e}' => {
                o.eol = 0;
                hide_control = Some(false);
                if format_opt != Some(Format::Long) {
                    format_opt = Some(Format::One);
                }
                quoting_opt = Some(Quoting::Literal);
            }
            _ => {}
        }
    }
    // LS_BLOCK_SIZE/BLOCK_SIZE would be read here (ebsim's guest has no
    // such variables); -k then sets the block counts' unit.
    if !block_set && kibibytes {
        o.human = 0;
        o.block = 1024;
    }
    o.format = format_opt.unwrap_or(if tty { Format::Many } else { Format::One });
    if matches!(o.format, Format::Many | Format::Horizontal | Format::Commas) {
        o.line_length = match width_opt {
            Some(w) => w,
            None => terminal_width(tty, utf8),
        };
        o.tabsize = tabsize_opt.unwrap_or(8);
    } else if let Some(w) = width_opt {
        o.line_length = w;
    }
    o.qmark = hide_control.unwrap_or(tty);
    o.quoting = quoting_opt.unwrap_or(if tty {
        Quoting::ShellEscape
    } else {
        Quoting::Literal
    });
    o.align_quotes = (o.format == Format::Long
        || (matches!(o.format, Format::Many | Format::Horizontal) && o.line_length > 0))
        && matches!(
            o.quoting,
            Quoting::Shell | Quoting::ShellEscape | Quoting::CMaybe
        );
    if o.quoting == Quoting::Escape {
        o.quote_too.push(b' ');
    }
    match o.indicator {
        // ls.c indexes "*=>@|" by the style: --file-type from '*',
        // classify from '='.
        Indicator::FileType => o.quote_too.extend_from_slice(b"*=>@|"),
        Indicator::Classify => o.quote_too.extend_from_slice(b"=>@|"),
        _ => {}
    }
    o.sort = sort_opt.unwrap_or(if o.format != Format::Long && explicit_time {
        Sort::Time
    } else {
        Sort::Name
    });
    if o.format == Format::Long {
        let mut style = time_style.unwrap_or_else(|| "locale".to_string());
        // "posix-STYLE" is STYLE outside the C locale (C.UTF-8 is not
        // it); in the C locale the default formats stay.
        let mut posix_c = false;
        while let Some(rest) = style.strip_prefix("posix-") {
            if !utf8 {
                posix_c = true;
                break;
            }
            style = rest.to_string();
        }
        if posix_c {
        } else if let Some(f) = style.strip_prefix('+') {
            let mut parts = f.splitn(2, '\n');
            let p0 = parts.next().unwrap_or_default().as_bytes().to_vec();
            match parts.next() {
                Some(p1) => {
                    if p1.contains('\n') {
                        return Err(AppletError::new(
                            2,
                            format!(
                                "ls: invalid time style format {}\n",
                                quote(f.as_bytes(), utf8)
                            ),
                        ));
                    }
                    o.time_fmt = [p0, p1.as_bytes().to_vec()];
                }
                None => o.time_fmt = [p0.clone(), p0],
            }
        } else {
            let styles: [(&str, [&[u8]; 2]); 4] = [
                (
                    "full-iso",
                    [b"%Y-%m-%d %H:%M:%S.%N %z", b"%Y-%m-%d %H:%M:%S.%N %z"],
                ),
                ("long-iso", [b"%Y-%m-%d %H:%M", b"%Y-%m-%d %H:%M"]),
                ("iso", [b"%Y-%m-%d ", b"%m-%d %H:%M"]),
                ("locale", [b"%b %e  %Y", b"%b %e %H:%M"]),
            ];
            let exact = styles.iter().find(|(n, _)| *n == style);
            let prefixed: Vec<_> = styles
                .iter()
                .filter(|(n, _)| n.starts_with(&style))
                .collect();
            let chosen = match (exact, prefixed.as_slice()) {
                (Some(s), _) => Some(s),
                (None, [one]) => Some(*one),
                _ => None,
            };
            match chosen {
                Some((_, f)) => o.time_fmt = [f[0].to_vec(), f[1].to_vec()],
                None => {
                    let (l, r) = super::common::quote_marks(utf8);
                    return Err(AppletError::new(
                        2,
                        format!(
                            "ls: {} argument {} for {l}time style{r}\nValid arguments are:\n  - [posix-]full-iso\n  - [posix-]long-iso\n  - [posix-]iso\n  - [posix-]locale\n  - +FORMAT (e.g., +%H:%M) for a 'date'-style format\n{}",
                            if prefixed.len() > 1 {
                                "ambiguous"
                            } else {
                                "invalid"
                            },
                            quote(style.as_bytes(), utf8),
                            super::common::try_help(prog)
                        ),
                    ));
                }
            }
        }
    }
    o.deref = deref.unwrap_or(
        if o.immediate_dirs || o.indicator == Indicator::Classify || o.format == Format::Long {
            Deref::Never
        } else {
            Deref::CommandLineSymlinkToDir
        },
    );
    let mut s = start(prog, false)?;
    let mut out = Stdout::new();
    let mut ls = Ls {
        o,
        utf8,
        code: 0,
        first_header: true,
        now: s.vfs.now(),
    };
    let operands: Vec<Vec<u8>> = super::common::arg_bytes(&parsed.operands);
    ls.main(&mut s, &operands, &mut out);
    let code = ls.code;
    Ok(out.finish(prog, code))
}

/// The width when no `-w` is given: the terminal's, else `COLUMNS`, else
/// 80 (an invalid `COLUMNS` is reported and ignored).
fn terminal_width(tty: bool, utf8: bool) -> usize {
    if tty {
        if let Ok(w) = rustix::termios::tcgetwinsize(std::io::stdout()) {
            if w.ws_col > 0 {
                return usize::from(w.ws_col);
            }
        }
    }
    if let Ok(c) = std::env::var("COLUMNS") {
        if !c.is_empty() {
            match line_length_arg(&c) {
                Some(w) => return w,
                None => err(&format!(
                    "ls: ignoring invalid width in environment variable COLUMNS: {}\n",
                    quote(c.as_bytes(), utf8)
                )),
            }
        }
    }
    80
}

/// `fnmatch(pattern, name, FNM_PERIOD)`: `*`, `?`, bracket expressions
/// (`!`/`^`, ranges, `[:class:]`), backslash escapes; a leading `.` only
/// matches a `.` written in the pattern.
fn fnmatch(p: &[u8], n: &[u8]) -> bool {
    fn class(name: &[u8], c: u8) -> Option<bool> {
        Some(match name {
            b"alnum" => c.is_ascii_alphanumeric(),
            b"alpha" => c.is_ascii_alphabetic(),
            b"blank" => c == b' ' || c == b'\t',
            b"cntrl" => c.is_ascii_control(),
            b"digit" => c.is_ascii_digit(),
            b"graph" => c.is_ascii_graphic(),
            b"lower" => c.is_ascii_lowercase(),
            b"print" => c.is_ascii_graphic() || c == b' ',
            b"punct" => c.is_ascii_punctuation(),
            b"space" => c.is_ascii_whitespace() || c == 0x0b,
            b"upper" => c.is_ascii_uppercase(),
            b"xdigit" => c.is_ascii_hexdigit(),
            _ => return None,
        })
    }
    /// A bracket expression at `p[0] == '['` against `c`: (matched,
    /// length), or None when it is not one (then `[` is literal).
    fn bracket(p: &[u8], c: u8) -> Option<(bool, usize)> {
        let mut i = 1;
        let neg = matches!(p.get(i), Some(b'!' | b'^'));
        if neg {
            i += 1;
        }
        let mut hit = false;
        let mut first = true;
        loop {
            let b = *p.get(i)?;
            if b == b']' && !first {
                return Some((hit != neg, i + 1));
            }
            first = false;
            if b == b'[' && p.get(i + 1) == Some(&b':') {
                let rest = p.get(i + 2..)?;
                let end = rest.windows(2).position(|w| w == b":]")?;
                hit |= class(&rest[..end], c)?;
                i += 2 + end + 2;
                continue;
            }
            let mut lo = b;
            if b == b'\\' {
                lo = *p.get(i + 1)?;
                i += 1;
            }
            i += 1;
            if p.get(i) == Some(&b'-') && p.get(i + 1).is_some_and(|&x| x != b']') {
                let mut hi = *p.get(i + 1)?;
                i += 2;
                if hi == b'\\' {
                    hi = *p.get(i)?;
                    i += 1;
                }
                hit |= lo <= c && c <= hi;
            } else {
                hit |= lo == c;
            }
        }
    }
    fn go(p: &[u8], n: &[u8], at_start: bool) -> bool {
        let leading_dot = at_start && n.first() == Some(&b'.');
        match p.first() {
            None => n.is_empty(),
            Some(b'*') => {
                if leading_dot {
                    return false;
                }
                let rest = &p[1..];
                (0..=n.len()).any(|k| go(rest, &n[k..], false))
            }
            Some(b'?') => !n.is_empty() && !leading_dot && go(&p[1..], &n[1..], false),
            Some(b'[') => {
                let Some(&c) = n.first() else { return false };
                match bracket(p, c) {
                    Some((ok, len)) => ok && !leading_dot && go(&p[len..], &n[1..], false),
                    None => c == b'[' && go(&p[1..], &n[1..], false),
                }
            }
            Some(b'\\') if p.len() > 1 => n.first() == p.get(1) && go(&p[2..], &n[1..], false),
            Some(&c) => n.first() == Some(&c) && go(&p[1..], &n[1..], false),
        }
    }
    go(p, n, true)
}

struct Ls {
    o: Opts,
    utf8: bool,
    code: i32,
    /// No directory header printed yet.
    first_header: bool,
    now: Timespec,
}

/// ls's `attach`: the path of a directory's entry as it stats it and
/// names it in messages (an entry of `.` is just its name).
fn attach(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir == b"." {
        name.to_vec()
    } else {
        join(dir, name)
    }
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = dir.to_vec();
    if !p.ends_with(b"/") {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

/// The columns text takes on a terminal.
fn display_width(s: &[u8]) -> usize {
    String::from_utf8_lossy(s).chars().count()
}

impl Ls {
    /// A name quoted in the chosen style; whether quoting changed it.
    fn quote_name(&self, name: &[u8], also: &[u8]) -> (Vec<u8>, bool) {
        let u = self.utf8;
        let q: Vec<u8> = match self.o.quoting {
            Quoting::Literal => {
                if self.o.qmark {
                    quote::qmark(name, u)
                } else {
                    name.to_vec()
                }
            }
            Quoting::Shell | Quoting::ShellEscape => {
                let colon = also.contains(&b':');
                if colon {
                    quotef(name, u).into_bytes()
                } else {
                    quote::shell_escape_name(name, false, u).into_bytes()
                }
            }
            Quoting::ShellAlways | Quoting::ShellEscapeAlways => {
                quote::shell_escape_name(name, true, u).into_bytes()
            }
            Quoting::C => quote::c_style(name, u, true, also).into_bytes(),
            Quoting::Escape => quote::c_style(name, u, false, also).into_bytes(),
            Quoting::CMaybe => {
                let bare = quote::c_style(name, u, false, also);
                if bare.as_bytes() == name {
                    bare.into_bytes()
                } else {
                    quote::c_style(name, u, true, also).into_bytes()
                }
            }
            Quoting::Locale => quote(name, u).into_bytes(),
            Quoting::CLocale => {
                if u {
                    quote(name, u).into_bytes()
                } else {
                    let inner = quote(name, u);
                    let t = inner
                        .strip_prefix('\'')
                        .and_then(|x| x.strip_suffix('\''))
                        .unwrap_or(&inner);
                    format!("\"{t}\"").into_bytes()
                }
            }
        };
        let changed = q != name;
        (q, changed)
    }

    fn fail(&mut self, msg: String, code: i32, out: &mut Stdout) {
        out.flush();
        err(&msg);
        self.code = self.code.max(code);
    }

    fn time_of(&self, st: &Stat) -> Timespec {
        match self.o.time {
            TimeType::Mtime => st.attr.mtime,
            TimeType::Ctime => st.attr.ctime,
            TimeType::Atime => st.attr.atime,
            TimeType::Birth => st.attr.crtime,
        }
    }

    /// Whether entries read from a directory need a stat.
    fn need_stat(&self) -> bool {
        self.o.format == Format::Long
            || self.o.block_size
            || matches!(self.o.sort, Sort::Size | Sort::Time)
            || matches!(self.o.indicator, Indicator::Classify | Indicator::FileType)
            || self.o.deref == Deref::Always
            || self.o.inode
    }

    /// gobble_file: an entry for `name` at `path`. `kind` is the
    /// directory entry's type (None on the command line). Err: it could
    /// not be stat'ed on the command line (reported).
    fn gobble(
        &mut self,
        s: &mut Session,
        name: &[u8],
        path: &[u8],
        kind: Option<FileType>,
        out: &mut Stdout,
    ) -> Option<Entry> {
        let command_line = kind.is_none();
        let mut st: Option<Stat> = None;
        if command_line || self.need_stat() {
            let r = match self.o.deref {
                Deref::Always => s.vfs.stat(path),
                Deref::CommandLine if command_line => s.vfs.stat(path),
                Deref::CommandLineSymlinkToDir if command_line => match s.vfs.stat(path) {
                    Ok(t) if t.attr.kind == FileType::Directory => Ok(t),
                    Ok(_) => s.vfs.lstat(path),
                    Err(e)
                        if matches!(
                            e.kind(),
                            ebsim::fs::node::ErrorKind::NotFound
                                | ebsim::fs::node::ErrorKind::TooManySymlinks
                        ) =>
                    {
                        s.vfs.lstat(path)
                    }
                    Err(e) => Err(e),
                },
                _ => s.vfs.lstat(path),
            };
            match r {
                Ok(x) => st = Some(x),
                Err(e) => {
                    self.report_access(path, &e, if command_line { 2 } else { 1 }, out);
                    if command_line {
                        return None;
                    }
                }
            }
        }
        let kind = st.as_ref().map(|x| x.attr.kind).or(kind);
        let mut target = None;
        let mut link_mode = None;
        if kind == Some(FileType::Symlink) && st.is_some() && self.o.format == Format::Long {
            target = s.vfs.readlink(path).ok();
            if target.is_some() && self.o.indicator >= Indicator::FileType {
                if let Ok(t) = s.vfs.stat(path) {
                    link_mode = Some((t.attr.kind, t.attr.perm));
                }
            }
        }
        let link_dir = self.o.dirs_first
            && kind == Some(FileType::Symlink)
            && s.vfs
                .stat(path)
                .is_ok_and(|t| t.attr.kind == FileType::Directory);
        let arg_dir = command_line && kind == Some(FileType::Directory) && !self.o.immediate_dirs;
        let also = self.o.quote_too.clone();
        let (shown, quoted) = self.quote_name(name, &also);
        Some(Entry {
            name: name.to_vec(),
            st,
            kind,
            arg_dir,
            target,
            link_mode,
            link_dir,
            shown,
            quoted,
        })
    }

    fn report_access(&mut self, p: &[u8], e: &NodeError, code: i32, out: &mut Stdout) {
        self.fail(
            format!(
                "ls: cannot access {}: {}\n",
                quoteaf(p, self.utf8),
                strerror(e)
            ),
            code,
            out,
        );
    }

    fn main(&mut self, s: &mut Session, operands: &[Vec<u8>], out: &mut Stdout) {
        let mut pending: Vec<(Vec<u8>, bool)> = Vec::new();
        let mut files: Vec<Entry> = Vec::new();
        if operands.is_empty() {
            if self.o.immediate_dirs {
                if let Some(e) = self.gobble(s, b".", b".", None, out) {
                    files.push(e);
                }
            } else {
                pending.push((b".".to_vec(), true));
            }
        }
        for op in operands {
            if let Some(e) = self.gobble(s, op, op, None, out) {
                files.push(e);
            }
        }
        let mut print_dir_name = true;
        if !files.is_empty() {
            self.sort(&mut files);
            // Widths over everything gathered, the directories included.
            let w = self.widths(s, &files);
            let (dirs, rest): (Vec<Entry>, Vec<Entry>) = if self.o.immediate_dirs {
                (Vec::new(), files)
            } else {
                files.into_iter().partition(|e| e.arg_dir)
            };
            pending.extend(dirs.into_iter().map(|d| (d.name, true)));
            if !rest.is_empty() {
                self.print_current(s, &rest, &w, out);
                if !pending.is_empty() {
                    out.bytes(b"\n");
                }
            } else if operands.len() <= 1 && pending.len() == 1 {
                print_dir_name = false;
            }
        } else if operands.len() <= 1 && pending.len() == 1 {
            print_dir_name = false;
        }
        // A stack in GNU; here the same order: each directory, then
        // (with -R) its subdirectories, before the next operand.
        let mut stack: Vec<(Vec<u8>, bool)> = pending.into_iter().rev().collect();
        while let Some((d, command_line)) = stack.pop() {
            let subdirs = self.print_dir(s, &d, command_line, print_dir_name, out);
            stack.extend(subdirs.into_iter().rev().map(|p| (p, false)));
            if out.failed() {
                return;
            }
        }
    }

    /// Lists directory `path`; returns the subdirectories to list next
    /// (with -R).
    fn print_dir(
        &mut self,
        s: &mut Session,
        path: &[u8],
        command_line: bool,
        print_dir_name: bool,
        out: &mut Stdout,
    ) -> Vec<Vec<u8>> {
        let entries = match s.vfs.readdir(path) {
            Ok((_, e)) => e,
            Err(e) => {
                self.fail(
                    format!(
                        "ls: cannot open directory {}: {}\n",
                        quoteaf(path, self.utf8),
                        strerror(&e)
                    ),
                    if command_line { 2 } else { 1 },
                    out,
                );
                return Vec::new();
            }
        };
        if self.o.recursive || print_dir_name {
            if !self.first_header {
                out.bytes(b"\n");
            }
            self.first_header = false;
            let mut also = self.o.quote_too.clone();
            also.push(b':');
            let (shown, _) = self.quote_name(path, &also);
            out.bytes(&shown);
            out.bytes(b":");
            out.bytes(&[self.o.eol]);
        }
        let mut names: Vec<(Vec<u8>, FileType)> = Vec::new();
        names.push((b".".to_vec(), FileType::Directory));
        names.push((b"..".to_vec(), FileType::Directory));
        names.extend(entries.into_iter().map(|d| (d.name, d.kind)));
        let mut list: Vec<Entry> = Vec::new();
        for (name, kind) in names {
            if self.ignored(&name) {
                continue;
            }
            let p = attach(path, &name);
            if let Some(e) = self.gobble(s, &name, &p, Some(kind), out) {
                list.push(e);
            }
        }
        self.sort(&mut list);
        let w = self.widths(s, &list);
        if self.o.format == Format::Long || self.o.block_size {
            let total: u64 = list
                .iter()
                .filter_map(|e| e.st.as_ref())
                .map(|st| st.attr.blocks)
                .sum();
            let t = human::human_readable(total, self.o.human, 512, self.o.block);
            out.bytes(format!("total {t}").as_bytes());
            out.bytes(&[self.o.eol]);
        }
        self.print_current(s, &list, &w, out);
        if !self.o.recursive {
            return Vec::new();
        }
        list.iter()
            .filter(|e| e.kind == Some(FileType::Directory) && e.name != b"." && e.name != b"..")
            .map(|e| join(path, &e.name))
            .collect()
    }

    fn ignored(&self, name: &[u8]) -> bool {
        let o = &self.o;
        (o.ignore != Ignore::Minimal
            && name.first() == Some(&b'.')
            && (o.ignore == Ignore::Default || name == b"." || name == b".."))
            || (o.ignore == Ignore::Default && o.hide_patterns.iter().any(|p| fnmatch(p, name)))
            || o.ignore_patterns.iter().any(|p| fnmatch(p, name))
    }

    fn sort(&self, v: &mut [Entry]) {
        if self.o.sort == Sort::None {
            return;
        }
        let name = |a: &Entry, b: &Entry| a.name.cmp(&b.name);
        let size = |e: &Entry| e.st.as_ref().map_or(0, |s| s.attr.size);
        let time = |e: &Entry| e.st.as_ref().map(|s| self.time_of(s));
        let ext = |e: &Entry| -> Vec<u8> {
            match e.name.iter().rposition(|&c| c == b'.') {
                Some(i) => e.name[i..].to_vec(),
                None => Vec::new(),
            }
        };
        let key = |a: &Entry, b: &Entry| -> Ordering {
            match self.o.sort {
                Sort::Name | Sort::None => name(a, b),
                Sort::Extension => ext(a).cmp(&ext(b)).then_with(|| name(a, b)),
                Sort::Width => display_width(&a.shown)
                    .cmp(&display_width(&b.shown))
                    .then_with(|| name(a, b)),
                Sort::Size => size(b).cmp(&size(a)).then_with(|| name(a, b)),
                Sort::Time => time(b).cmp(&time(a)).then_with(|| name(a, b)),
                Sort::Version => filevercmp(&a.name, &b.name).then_with(|| name(a, b)),
            }
        };
        let is_dir = |e: &Entry| e.kind == Some(FileType::Directory) || e.link_dir;
        v.sort_by(|a, b| {
            if self.o.dirs_first {
                match (is_dir(a), is_dir(b)) {
                    (true, false) => return Ordering::Less,
                    (false, true) => return Ordering::Greater,
                    _ => {}
                }
            }
            if self.o.reverse { key(b, a) } else { key(a, b) }
        });
    }

    fn blocks_str(&self, st: &Stat) -> String {
        human::human_readable(st.attr.blocks, self.o.human, 512, self.o.block)
    }

    fn size_str(&self, st: &Stat) -> String {
        human::human_readable(st.attr.size, self.o.file_human, 1, self.o.file_block)
    }

    fn owner_str(&self, s: &mut Session, uid: u32) -> (String, bool) {
        if self.o.numeric {
            return (uid.to_string(), true);
        }
        match s.users.user(&mut s.vfs, uid) {
            Some(n) => (n, false),
            None => (uid.to_string(), true),
        }
    }

    fn group_str(&self, s: &mut Session, gid: u32) -> (String, bool) {
        if self.o.numeric {
            return (gid.to_string(), true);
        }
        match s.users.group(&mut s.vfs, gid) {
            Some(n) => (n, false),
            None => (gid.to_string(), true),
        }
    }

    /// The column widths over the entries gathered for one listing.
    fn widths(&self, s: &mut Session, list: &[Entry]) -> Widths {
        let mut w = Widths::default();
        if self.o.format == Format::Long {
            self.name_widths(s, list, &mut w);
        }
        for e in list {
            if self.o.align_quotes && e.quoted {
                w.some_quoted = true;
            }
            let Some(st) = &e.st else { continue };
            if self.o.format == Format::Long || self.o.block_size {
                w.blocks = w.blocks.max(self.blocks_str(st).len());
            }
            if self.o.inode {
                w.inode = w.inode.max(st.attr.ino.to_string().len());
            }
            if self.o.format == Format::Long {
                w.nlink = w.nlink.max(st.attr.nlink.to_string().len());
                if matches!(st.attr.kind, FileType::CharDevice | FileType::BlockDevice) {
                    let (ma, mi) = split_rdev(st.attr.rdev);
                    w.major = w.major.max(ma.to_string().len());
                    w.minor = w.minor.max(mi.to_string().len());
                    w.size = w.size.max(w.major + 2 + w.minor);
                } else {
                    w.size = w.size.max(self.size_str(st).len());
                }
            }
        }
        w
    }

    /// Owner/group/author widths need the names (looked up once per
    /// listing).
    fn name_widths(&self, s: &mut Session, list: &[Entry], w: &mut Widths) {
        for e in list {
            let Some(st) = &e.st else { continue };
            if self.o.owner || self.o.author {
                let n = display_width(self.owner_str(s, st.attr.uid).0.as_bytes());
                if self.o.owner {
                    w.owner = w.owner.max(n);
                }
                if self.o.author {
                    w.author = w.author.max(n);
                }
            }
            if self.o.group {
                let n = display_width(self.group_str(s, st.attr.gid).0.as_bytes());
                w.group = w.group.max(n);
            }
        }
    }

    fn print_current(&mut self, s: &mut Session, list: &[Entry], w: &Widths, out: &mut Stdout) {
        if list.is_empty() {
            return;
        }
        match self.o.format {
            Format::Long => self.print_long(s, list, w, out),
            Format::One => {
                for e in list {
                    let line = self.frills(e, w, false);
                    out.bytes(&line);
                    out.bytes(&[self.o.eol]);
                }
            }
            Format::Many | Format::Horizontal if self.o.line_length == 0 => {
                self.print_with_separator(list, w, b' ', out)
            }
            Format::Many | Format::Horizontal => self.print_columns(list, w, out),
            Format::Commas => self.print_with_separator(list, w, b',', out),
        }
    }

    /// The name as printed in the listing (the alignment space, quoting).
    fn name_out(&self, e: &Entry, w: &Widths) -> Vec<u8> {
        let mut v = Vec::new();
        if self.o.align_quotes && w.some_quoted && !e.quoted {
            v.push(b' ');
        }
        v.extend_from_slice(&e.shown);
        v
    }

    /// get_type_indicator.
    fn indicator(&self, kind: Option<FileType>, perm: Option<u16>) -> Option<u8> {
        let ind = self.o.indicator;
        if ind == Indicator::None {
            return None;
        }
        match kind? {
            FileType::Regular => {
                (ind == Indicator::Classify && perm.is_some_and(|p| p & 0o111 != 0)).then_some(b'*')
            }
            FileType::Directory => Some(b'/'),
            _ if ind == Indicator::Slash => None,
            FileType::Symlink => Some(b'@'),
            FileType::Fifo => Some(b'|'),
            FileType::Socket => Some(b'='),
            _ => None,
        }
    }

    /// An entry's inode, blocks, name and indicator (short formats);
    /// `commas`: the numbers unpadded.
    fn frills(&self, e: &Entry, w: &Widths, commas: bool) -> Vec<u8> {
        let mut line = Vec::new();
        if self.o.inode {
            let i = e.st.as_ref().map_or("?".into(), |s| s.attr.ino.to_string());
            let iw = if commas { 0 } else { w.inode };
            line.extend_from_slice(format!("{i:>iw$} ").as_bytes());
        }
        if self.o.block_size {
            let b = e.st.as_ref().map_or("?".into(), |s| self.blocks_str(s));
            let bw = if commas { 0 } else { w.blocks };
            line.extend_from_slice(format!("{b:>bw$} ").as_bytes());
        }
        line.extend_from_slice(&self.name_out(e, w));
        if let Some(c) = self.indicator(e.kind, e.st.as_ref().map(|s| s.attr.perm)) {
            line.push(c);
        }
        line
    }

    fn indent(&self, out: &mut Stdout, mut from: usize, to: usize) {
        let tab = self.o.tabsize;
        while from < to {
            if tab != 0 && to / tab > (from + 1) / tab {
                out.bytes(b"\t");
                from += tab - from % tab;
            } else {
                out.bytes(b" ");
                from += 1;
            }
        }
    }

    fn print_with_separator(&mut self, list: &[Entry], w: &Widths, sep: u8, out: &mut Stdout) {
        let ll = self.o.line_length;
        let mut pos = 0usize;
        for (i, e) in list.iter().enumerate() {
            let text = self.frills(e, w, true);
            let len = if ll > 0 { display_width(&text) } else { 0 };
            if i != 0 {
                if ll == 0 || pos + len + 2 < ll {
                    pos += 2;
                    out.bytes(&[sep, b' ']);
                } else {
                    pos = 0;
                    out.bytes(&[sep, self.o.eol]);
                }
            }
            out.bytes(&text);
            pos += len;
        }
        out.bytes(&[self.o.eol]);
    }

    fn print_columns(&mut self, list: &[Entry], w: &Widths, out: &mut Stdout) {
        let names: Vec<Vec<u8>> = list.iter().map(|e| self.frills(e, w, false)).collect();
        let lens: Vec<usize> = names.iter().map(|n| display_width(n)).collect();
        let by_columns = self.o.format == Format::Many;
        let n = names.len();
        let ll = self.o.line_length;
        let max_idx = ll / 3 + usize::from(ll % 3 != 0);
        let max_cols = if max_idx > 0 && max_idx < n {
            max_idx
        } else {
            n
        };
        // calculate_columns: (valid, line length, column widths) for
        // 1..=max_cols columns.
        let mut info: Vec<(bool, usize, Vec<usize>)> = (0..max_cols)
            .map(|i| (true, (i + 1) * 3, vec![3; i + 1]))
            .collect();
        for (filesno, &len) in lens.iter().enumerate() {
            for (i, ci) in info.iter_mut().enumerate() {
                if !ci.0 {
                    continue;
                }
                let idx = if by_columns {
                    filesno / n.div_ceil(i + 1)
                } else {
                    filesno % (i + 1)
                };
                let real = len + if idx == i { 0 } else { 2 };
                if let Some(slot) = ci.2.get_mut(idx) {
                    if *slot < real {
                        ci.1 += real - *slot;
                        *slot = real;
                        ci.0 = ll == 0 || ci.1 < ll;
                    }
                }
            }
        }
        let mut cols = max_cols;
        while cols > 1 && !info.get(cols - 1).is_some_and(|c| c.0) {
            cols -= 1;
        }
        let cols = cols.max(1);
        let widths = info.get(cols - 1).map(|c| c.2.clone()).unwrap_or_default();
        let wd = |c: usize| widths.get(c).copied().unwrap_or(0);
        if by_columns {
            let rows = n.div_ceil(cols);
            for row in 0..rows {
                let (mut col, mut i, mut pos) = (0, row, 0);
                loop {
                    out.bytes(&names[i]);
                    let maxw = wd(col);
                    col += 1;
                    let printed = lens[i];
                    i += rows;
                    if i >= n {
                        break;
                    }
                    self.indent(out, pos + printed, pos + maxw);
                    pos += maxw;
                }
                out.bytes(&[self.o.eol]);
            }
        } else {
            let mut pos = 0;
            out.bytes(&names[0]);
            let mut prev_len = lens[0];
            let mut prev_max = wd(0);
            for i in 1..n {
                let col = i % cols;
                if col == 0 {
                    out.bytes(&[self.o.eol]);
                    pos = 0;
                } else {
                    self.indent(out, pos + prev_len, pos + prev_max);
                    pos += prev_max;
                }
                out.bytes(&names[i]);
                prev_len = lens[i];
                prev_max = wd(col);
            }
            out.bytes(&[self.o.eol]);
        }
    }

    fn date_str(&self, t: Timespec) -> Vec<u8> {
        const SIX_MONTHS: i64 = 31_556_952 / 2;
        let now = self.now;
        let six_ago = Timespec {
            sec: now.sec - SIX_MONTHS,
            nsec: now.nsec,
        };
        // ls reads the clock again for a time in the future; the virtual
        // clock may stand still between commands, so now counts as past.
        let recent = six_ago < t && t <= now;
        date::strftime(&self.o.time_fmt[usize::from(recent)], t)
    }

    fn print_long(&mut self, s: &mut Session, list: &[Entry], w: &Widths, out: &mut Stdout) {
        let w = w.clone();
        // The width of a date, for the `?` of an entry without one.
        let date_w = display_width(&self.date_str(self.now));
        for e in list {
            let mut line: Vec<u8> = Vec::new();
            let push = |line: &mut Vec<u8>, t: &str| line.extend_from_slice(t.as_bytes());
            match &e.st {
                Some(st) => {
                    let a = &st.attr;
                    if self.o.inode {
                        push(&mut line, &format!("{:>iw$} ", a.ino, iw = w.inode));
                    }
                    if self.o.block_size {
                        push(
                            &mut line,
                            &format!("{:>bw$} ", self.blocks_str(st), bw = w.blocks),
                        );
                    }
                    push(&mut line, &ebsim::compat::mode::mode_string(a.kind, a.perm));
                    push(&mut line, &format!(" {:>nw$} ", a.nlink, nw = w.nlink));
                    let id_col =
                        |line: &mut Vec<u8>, (t, numeric): (String, bool), width: usize| {
                            if numeric {
                                push(line, &format!("{t:>width$} "));
                            } else {
                                let pad = width.saturating_sub(display_width(t.as_bytes()));
                                push(line, &format!("{t}{} ", " ".repeat(pad)));
                            }
                        };
                    if self.o.owner {
                        id_col(&mut line, self.owner_str(s, a.uid), w.owner);
                    }
                    if self.o.group {
                        id_col(&mut line, self.group_str(s, a.gid), w.group);
                    }
                    if self.o.author {
                        id_col(&mut line, self.owner_str(s, a.uid), w.author);
                    }
                    if matches!(a.kind, FileType::CharDevice | FileType::BlockDevice) {
                        let (ma, mi) = split_rdev(a.rdev);
                        let blanks = w.size.saturating_sub(w.major + 2 + w.minor);
                        push(
                            &mut line,
                            &format!(
                                "{ma:>maw$}, {mi:>miw$} ",
                                maw = w.major + blanks,
                                miw = w.minor
                            ),
                        );
                    } else {
                        push(
                            &mut line,
                            &format!("{:>sw$} ", self.size_str(st), sw = w.size),
                        );
                    }
                    line.extend_from_slice(&self.date_str(self.time_of(st)));
                    line.push(b' ');
                }
                None => {
                    if self.o.inode {
                        push(&mut line, &format!("{:>iw$} ", "?", iw = w.inode));
                    }
                    if self.o.block_size {
                        push(&mut line, &format!("{:>bw$} ", "?", bw = w.blocks));
                    }
                    push(
                        &mut line,
                        &format!("{}?????????", e.kind.map_or('?', type_letter)),
                    );
                    push(&mut line, &format!(" {:>nw$} ", "?", nw = w.nlink));
                    if self.o.owner {
                        push(&mut line, &format!("{:<ow$} ", "?", ow = w.owner));
                    }
                    if self.o.group {
                        push(&mut line, &format!("{:<gw$} ", "?", gw = w.group));
                    }
                    if self.o.author {
                        push(&mut line, &format!("{:<aw$} ", "?", aw = w.author));
                    }
                    push(&mut line, &format!("{:>sw$} ", "?", sw = w.size));
                    push(&mut line, &format!("{:>date_w$} ", "?"));
                }
            }
            line.extend_from_slice(&self.name_out(e, &w));
            if e.kind == Some(FileType::Symlink) && e.st.is_some() {
                if let Some(t) = &e.target {
                    line.extend_from_slice(b" -> ");
                    let also = self.o.quote_too.clone();
                    let (shown, _) = self.quote_name(t, &also);
                    line.extend_from_slice(&shown);
                    if let Some(c) =
                        self.indicator(e.link_mode.map(|m| m.0), e.link_mode.map(|m| m.1))
                    {
                        line.push(c);
                    }
                }
            } else if let Some(c) = self.indicator(e.kind, e.st.as_ref().map(|s| s.attr.perm)) {
                line.push(c);
            }
            line.push(self.o.eol);
            out.bytes(&line);
        }
    }
}
