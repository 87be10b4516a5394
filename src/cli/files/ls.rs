//! `ls` (coreutils 9.1) inside an instance.
//!
//! Options: -a -A -d -R -l -n -g -o -G -h -i -s -1 -C -x -t -S -U -r -F -p
//! --color[=WHEN] (never colours), --full-time, --group-directories-first
//! is not taken. Output as 9.1 prints it: one name a line when stdout is
//! not a terminal, columns (aligned with tabs, the terminal's width or
//! `COLUMNS`) when it is; `-l` with the columns' widths computed over each
//! listing, dates as `Mon DD HH:MM` within six months before now else
//! `Mon DD  YYYY`, `total` in 1 KiB blocks (rounded up), `-h` sizes as
//! `human_readable`, device numbers as `MAJ, MIN`; names as they are when
//! stdout is not a terminal, shell-quoted when it is (the quoting of 8.25
//! and later: the AMIs' 8.22 and 8.32 differ only there, 8.22 printing
//! names on a terminal as they are). Names sort by byte value (the AMIs'
//! `C.UTF-8` collation). Exit status 2 for a command-line operand that
//! cannot be listed, 1 for a problem inside a listing.

use super::common::{Session, Stdout, start, strerror};
use super::opts::{self, Flag};
use crate::cli::error::{AppletError, finish};
use crate::cli::output::err;
use ebsim::compat::date;
use ebsim::compat::quote::{quote, quoteaf, quotef};
use ebsim::fs::node::{FileType, NodeError};
use ebsim::guest::human::{self, opts as hopts};
use ebsim::guest::vfs::Stat;
use std::ffi::OsString;

const HELP: &str = "Usage: ls [OPTION]... [FILE]...
Lists the files of the instance (the current directory by default), sorted
by name.

  -a, --all                  include names starting with .
  -A, --almost-all           the same, without . and ..
  -C                         in columns (the default on a terminal)
      --color[=WHEN]         accepted; ebsim never colours
  -d, --directory            list directories themselves
  -F, --classify             append */=>@| by type
      --full-time            -l with full dates
  -g                         -l without the owner
  -G, --no-group             -l without the group
  -h, --human-readable       sizes like 1K 234M 2G
  -i, --inode                inode numbers
  -l                         long listing
  -n, --numeric-uid-gid      -l with numeric owner and group
  -o                         -l without the group
  -p                         append / to directories
  -r, --reverse              reverse the order
  -R, --recursive            list subdirectories too
  -s, --size                 allocated size in blocks
  -S                         sort by size, largest first
  -t                         sort by modification time, newest first
  -U                         do not sort
  -x                         in rows across
  -1                         one name a line (the default off a terminal)
      --help                 show this help
      --version              show the version
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Long,
    One,
    Columns,
    Across,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sort {
    Name,
    Time,
    Size,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dots {
    Normal,
    Almost,
    All,
}

struct Opts {
    all: Dots,
    format: Format,
    dirs_as_files: bool,
    recursive: bool,
    human: bool,
    inode: bool,
    size: bool,
    sort: Sort,
    reverse: bool,
    numeric: bool,
    owner: bool,
    group: bool,
    classify: bool,
    slash: bool,
    full_time: bool,
    tty: bool,
    width: usize,
}

/// One name to print.
struct Entry {
    /// The name as shown.
    name: Vec<u8>,
    /// Its stat (lstat, or stat for a followed command-line link).
    st: Option<Stat>,
    /// A symlink's target.
    target: Option<Vec<u8>>,
    /// The target's stat (for -F and for a link's classification).
    kind_hint: Option<FileType>,
}

/// `ls`.
pub fn run(args: Vec<OsString>) -> i32 {
    finish(main(args), String::new)
}

fn main(args: Vec<OsString>) -> Result<i32, AppletError> {
    let prog = "ls";
    let long = [
        Flag::flag("all", 'a'),
        Flag::flag("almost-all", 'A'),
        Flag::optional("color", '\u{1}'),
        Flag::flag("directory", 'd'),
        Flag::flag("classify", 'F'),
        Flag::flag("full-time", '\u{2}'),
        Flag::flag("no-group", 'G'),
        Flag::flag("human-readable", 'h'),
        Flag::flag("inode", 'i'),
        Flag::flag("numeric-uid-gid", 'n'),
        Flag::flag("reverse", 'r'),
        Flag::flag("recursive", 'R'),
        Flag::flag("size", 's'),
    ];
    let parsed = opts::parse_with(prog, &args, "aACdFgGhilnoprRsStUx1", &long, HELP, 2)?;
    let utf8 = super::common::utf8_locale();
    use std::io::IsTerminal;
    let tty = std::io::stdout().is_terminal();
    let mut o = Opts {
        all: Dots::Normal,
        format: if tty { Format::Columns } else { Format::One },
        dirs_as_files: false,
        recursive: false,
        human: false,
        inode: false,
        size: false,
        sort: Sort::Name,
        reverse: false,
        numeric: false,
        owner: true,
        group: true,
        classify: false,
        slash: false,
        full_time: false,
        tty,
        width: width(),
    };
    for p in &parsed.opts {
        match p.val {
            'a' => o.all = Dots::All,
            'A' => o.all = Dots::Almost,
            'C' => o.format = Format::Columns,
            'x' => o.format = Format::Across,
            '1' => o.format = Format::One,
            'l' => o.format = Format::Long,
            'g' => {
                o.format = Format::Long;
                o.owner = false;
            }
            'o' => {
                o.format = Format::Long;
                o.group = false;
            }
            'G' => o.group = false,
            'n' => {
                o.format = Format::Long;
                o.numeric = true;
            }
            'd' => o.dirs_as_files = true,
            'F' => o.classify = true,
            'p' => o.slash = true,
            'h' => o.human = true,
            'i' => o.inode = true,
            's' => o.size = true,
            'r' => o.reverse = true,
            'R' => o.recursive = true,
            'S' => o.sort = Sort::Size,
            't' => o.sort = Sort::Time,
            'U' => o.sort = Sort::None,
            '\u{2}' => {
                o.format = Format::Long;
                o.full_time = true;
            }
            '\u{1}' => match p.arg.as_deref() {
                None
                | Some(
                    "always" | "yes" | "force" | "never" | "no" | "none" | "auto" | "tty"
                    | "if-tty",
                ) => {}
                Some(w) => {
                    let (l, r) = super::common::quote_marks(utf8);
                    return Err(AppletError::new(
                        1,
                        format!(
                            "{prog}: invalid argument {} for {l}--color{r}\nValid arguments are:\n  - {l}always{r}, {l}yes{r}, {l}force{r}\n  - {l}never{r}, {l}no{r}, {l}none{r}\n  - {l}auto{r}, {l}tty{r}, {l}if-tty{r}\n{}",
                            quote(w.as_bytes(), utf8),
                            super::common::try_help(prog)
                        ),
                    ));
                }
            },
            _ => {}
        }
    }
    let mut s = start(prog, false)?;
    let mut out = Stdout::new();
    let mut ls = Ls {
        o,
        utf8,
        code: 0,
        printed_any: false,
        width_extra: Vec::new(),
    };
    let operands: Vec<Vec<u8>> = if parsed.operands.is_empty() {
        vec![b".".to_vec()]
    } else {
        super::common::arg_bytes(&parsed.operands)
    };
    ls.main(&mut s, &operands, &mut out);
    let code = ls.code;
    Ok(out.finish(prog, code))
}

/// The terminal's width (`COLUMNS` first, as ls reads it), else 80.
fn width() -> usize {
    if let Some(c) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .filter(|&c| c > 0)
    {
        return c;
    }
    match rustix::termios::tcgetwinsize(std::io::stdout()) {
        Ok(w) if w.ws_col > 0 => usize::from(w.ws_col),
        _ => 80,
    }
}

struct Ls {
    o: Opts,
    utf8: bool,
    code: i32,
    printed_any: bool,
    /// Extra (inode, blocks, nlink, size) widths the long format's
    /// columns must fit.
    width_extra: Vec<[usize; 4]>,
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = dir.to_vec();
    if !p.ends_with(b"/") {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

fn mode_string(st: &Stat) -> String {
    ebsim::compat::mode::mode_string(st.attr.kind, st.attr.perm)
}

fn type_char(k: FileType) -> char {
    match k {
        FileType::Regular => '-',
        FileType::Directory => 'd',
        FileType::Symlink => 'l',
        FileType::CharDevice => 'c',
        FileType::BlockDevice => 'b',
        FileType::Fifo => 'p',
        FileType::Socket => 's',
    }
}

/// The number of columns a name takes on a terminal.
fn display_width(s: &str) -> usize {
    s.chars().count()
}

impl Ls {
    /// A name as printed: as is off a terminal, shell-quoted on one.
    fn shown(&self, name: &[u8]) -> String {
        if self.o.tty {
            quotef(name, self.utf8)
        } else {
            String::from_utf8_lossy(name).into_owned()
        }
    }

    fn fail(&mut self, msg: String, code: i32, out: &mut Stdout) {
        out.flush();
        err(&msg);
        self.code = self.code.max(code);
    }

    fn main(&mut self, s: &mut Session, operands: &[Vec<u8>], out: &mut Stdout) {
        let follow_dirs =
            !(self.o.format == Format::Long || self.o.dirs_as_files || self.o.classify);
        let mut files: Vec<Entry> = Vec::new();
        let mut dirs: Vec<(Vec<u8>, Stat)> = Vec::new();
        for op in operands {
            let lst = match s.vfs.lstat(op) {
                Ok(st) => st,
                Err(e) => {
                    self.fail(
                        format!(
                            "ls: cannot access {}: {}\n",
                            quoteaf(op, self.utf8),
                            strerror(&e)
                        ),
                        2,
                        out,
                    );
                    continue;
                }
            };
            let mut st = lst.clone();
            if lst.attr.kind == FileType::Symlink && !self.o.dirs_as_files && follow_dirs {
                if let Ok(t) = s.vfs.stat(op) {
                    if t.attr.kind == FileType::Directory {
                        st = t;
                    }
                }
            }
            if st.attr.kind == FileType::Directory && !self.o.dirs_as_files {
                dirs.push((op.clone(), st));
            } else {
                let e = self.entry(s, op.clone(), op, Some(st));
                files.push(e);
            }
        }
        self.sort(&mut files);
        let mut sorted_dirs: Vec<Entry> = dirs
            .into_iter()
            .map(|(n, st)| Entry {
                name: n,
                st: Some(st),
                target: None,
                kind_hint: None,
            })
            .collect();
        if !files.is_empty() {
            // ls sizes the columns over every operand it stat'ed, the
            // directories it then lists separately included.
            self.width_extra = sorted_dirs.iter().map(|d| self.width_entry(d)).collect();
            self.print_entries(s, &files, out);
            self.width_extra.clear();
            self.printed_any = true;
        }
        self.sort(&mut sorted_dirs);
        let many = operands.len() > 1 || self.o.recursive || !files.is_empty();
        for (i, d) in sorted_dirs.iter().enumerate() {
            let first = i == 0 && files.is_empty();
            self.list_dir(s, &d.name, many, first, true, out);
            if out.failed() {
                return;
            }
        }
    }

    /// An entry for `name` (shown) at `path`, with its lstat (`st`, or
    /// looked up now; None when it cannot be).
    fn entry(&mut self, s: &mut Session, name: Vec<u8>, path: &[u8], st: Option<Stat>) -> Entry {
        let st = st.or_else(|| s.vfs.lstat(path).ok());
        let (target, kind_hint) = match &st {
            Some(x) if x.attr.kind == FileType::Symlink => {
                let t = s.vfs.readlink(path).ok();
                let k = s.vfs.stat(path).ok().map(|t| t.attr.kind);
                (t, k)
            }
            _ => (None, None),
        };
        Entry {
            name,
            st,
            target,
            kind_hint,
        }
    }

    fn sort(&self, v: &mut [Entry]) {
        let by_name = |a: &Entry, b: &Entry| a.name.cmp(&b.name);
        match self.o.sort {
            Sort::None => {}
            Sort::Name => v.sort_by(by_name),
            Sort::Time => v.sort_by(|a, b| {
                let ta = a.st.as_ref().map(|s| s.attr.mtime);
                let tb = b.st.as_ref().map(|s| s.attr.mtime);
                tb.cmp(&ta).then_with(|| by_name(a, b))
            }),
            Sort::Size => v.sort_by(|a, b| {
                let sa = a.st.as_ref().map(|s| s.attr.size);
                let sb = b.st.as_ref().map(|s| s.attr.size);
                sb.cmp(&sa).then_with(|| by_name(a, b))
            }),
        }
        if self.o.reverse && self.o.sort != Sort::None {
            v.reverse();
        }
    }

    fn list_dir(
        &mut self,
        s: &mut Session,
        path: &[u8],
        header: bool,
        first: bool,
        command_line: bool,
        out: &mut Stdout,
    ) {
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
                return;
            }
        };
        let _ = first;
        if header {
            if self.printed_any {
                out.str("\n");
            }
            out.str(&format!("{}:\n", self.shown(path)));
        }
        self.printed_any = true;
        let mut list: Vec<Entry> = Vec::new();
        if self.o.all == Dots::All {
            for dot in [&b"."[..], &b".."[..]] {
                let p = join(path, dot);
                let e = self.entry(s, dot.to_vec(), &p, None);
                list.push(e);
            }
        }
        for d in entries {
            if d.name.starts_with(b".") && self.o.all == Dots::Normal {
                continue;
            }
            let p = join(path, &d.name);
            let st = match s.vfs.lstat(&p) {
                Ok(st) => Some(st),
                Err(e) => {
                    self.report_access(&p, &e, out);
                    None
                }
            };
            let mut e = self.entry(s, d.name.clone(), &p, st);
            if e.st.is_none() {
                e.kind_hint = Some(d.kind);
            }
            list.push(e);
        }
        self.sort(&mut list);
        if self.o.format == Format::Long || self.o.size {
            let total: u64 = list
                .iter()
                .filter_map(|e| e.st.as_ref())
                .map(|st| st.attr.blocks)
                .sum();
            let t = if self.o.human {
                human::human_readable(
                    total,
                    hopts::AUTOSCALE | hopts::SI | hopts::BASE_1024,
                    512,
                    1,
                )
            } else {
                human::human_readable(total, 0, 512, 1024)
            };
            out.str(&format!("total {t}\n"));
        }
        self.print_entries(s, &list, out);
        if self.o.recursive {
            let subdirs: Vec<Vec<u8>> = list
                .iter()
                .filter(|e| {
                    e.name != b"."
                        && e.name != b".."
                        && e.st
                            .as_ref()
                            .is_some_and(|st| st.attr.kind == FileType::Directory)
                })
                .map(|e| join(path, &e.name))
                .collect();
            for d in subdirs {
                self.list_dir(s, &d, true, false, false, out);
                if out.failed() {
                    return;
                }
            }
        }
    }

    /// The (inode, blocks, nlink, size) widths of an entry.
    fn width_entry(&self, e: &Entry) -> [usize; 4] {
        match &e.st {
            Some(st) => [
                st.attr.ino.to_string().len(),
                self.blocks_str(st).len(),
                st.attr.nlink.to_string().len(),
                if self.o.human {
                    human::human_readable(
                        st.attr.size,
                        hopts::AUTOSCALE | hopts::SI | hopts::BASE_1024,
                        1,
                        1,
                    )
                    .len()
                } else {
                    st.attr.size.to_string().len()
                },
            ],
            None => [1, 1, 1, 1],
        }
    }

    fn report_access(&mut self, p: &[u8], e: &NodeError, out: &mut Stdout) {
        self.fail(
            format!(
                "ls: cannot access {}: {}\n",
                quoteaf(p, self.utf8),
                strerror(e)
            ),
            1,
            out,
        );
    }

    fn classify_char(&self, e: &Entry) -> Option<char> {
        let st = e.st.as_ref()?;
        if self.o.classify {
            return match st.attr.kind {
                FileType::Directory => Some('/'),
                FileType::Symlink => {
                    if self.o.format == Format::Long {
                        None
                    } else {
                        Some('@')
                    }
                }
                FileType::Fifo => Some('|'),
                FileType::Socket => Some('='),
                FileType::Regular if st.attr.perm & 0o111 != 0 => Some('*'),
                _ => None,
            };
        }
        if self.o.slash && st.attr.kind == FileType::Directory {
            return Some('/');
        }
        None
    }

    fn blocks_str(&self, st: &Stat) -> String {
        if self.o.human {
            human::human_readable(
                st.attr.blocks,
                hopts::AUTOSCALE | hopts::SI | hopts::BASE_1024,
                512,
                1,
            )
        } else {
            human::human_readable(st.attr.blocks, 0, 512, 1024)
        }
    }

    fn print_entries(&mut self, s: &mut Session, list: &[Entry], out: &mut Stdout) {
        if list.is_empty() {
            return;
        }
        match self.o.format {
            Format::Long => self.print_long(s, list, out),
            Format::One => {
                let prefix_w = self.prefix_widths(list);
                for e in list {
                    let line = self.name_with_frills(e, prefix_w);
                    out.str(&line);
                    out.str("\n");
                }
            }
            Format::Columns | Format::Across => self.print_columns(list, out),
        }
    }

    /// Widths of the inode and block columns of the short formats.
    fn prefix_widths(&self, list: &[Entry]) -> (usize, usize) {
        let iw = if self.o.inode {
            list.iter()
                .map(|e| e.st.as_ref().map_or(1, |s| s.attr.ino.to_string().len()))
                .max()
                .unwrap_or(0)
        } else {
            0
        };
        let bw = if self.o.size {
            list.iter()
                .map(|e| e.st.as_ref().map_or(1, |s| self.blocks_str(s).len()))
                .max()
                .unwrap_or(0)
        } else {
            0
        };
        (iw, bw)
    }

    fn name_with_frills(&self, e: &Entry, (iw, bw): (usize, usize)) -> String {
        let mut line = String::new();
        if self.o.inode {
            let i = e.st.as_ref().map_or("?".into(), |s| s.attr.ino.to_string());
            line.push_str(&format!("{i:>iw$} "));
        }
        if self.o.size {
            let b = e.st.as_ref().map_or("?".into(), |s| self.blocks_str(s));
            line.push_str(&format!("{b:>bw$} "));
        }
        line.push_str(&self.shown(&e.name));
        if let Some(c) = self.classify_char(e) {
            line.push(c);
        }
        line
    }

    fn print_columns(&mut self, list: &[Entry], out: &mut Stdout) {
        let prefix = self.prefix_widths(list);
        let names: Vec<String> = list
            .iter()
            .map(|e| self.name_with_frills(e, prefix))
            .collect();
        let lens: Vec<usize> = names.iter().map(|n| display_width(n)).collect();
        let by_columns = self.o.format == Format::Columns;
        let n = names.len();
        let line_length = self.o.width;
        let max_idx = (line_length / 3).max(1);
        let max_cols = max_idx.min(n);
        // Column widths for 1..=max_cols columns, as calculate_columns.
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
                if ci.2[idx] < real {
                    ci.1 += real - ci.2[idx];
                    ci.2[idx] = real;
                    ci.0 = ci.1 < line_length;
                }
            }
        }
        let mut cols = max_cols;
        while cols > 1 && !info[cols - 1].0 {
            cols -= 1;
        }
        let widths = &info[cols.max(1) - 1].2;
        let indent = |out: &mut Stdout, mut from: usize, to: usize| {
            while from < to {
                if to / 8 > (from + 1) / 8 {
                    out.str("\t");
                    from += 8 - from % 8;
                } else {
                    out.str(" ");
                    from += 1;
                }
            }
        };
        if by_columns {
            let rows = n.div_ceil(cols);
            for row in 0..rows {
                let (mut col, mut i, mut pos) = (0, row, 0);
                loop {
                    out.str(&names[i]);
                    let maxw = widths[col];
                    col += 1;
                    i += rows;
                    if i >= n {
                        break;
                    }
                    indent(out, pos + lens[i - rows], pos + maxw);
                    pos += maxw;
                }
                out.str("\n");
            }
        } else {
            let (mut pos, mut col) = (0, 0);
            for i in 0..n {
                if i > 0 {
                    if col == 0 {
                        out.str("\n");
                        pos = 0;
                    } else {
                        let maxw = widths[col - 1];
                        indent(out, pos + lens[i - 1], pos + maxw);
                        pos += maxw;
                    }
                }
                out.str(&names[i]);
                col = (col + 1) % cols;
            }
            out.str("\n");
        }
    }

    fn print_long(&mut self, s: &mut Session, list: &[Entry], out: &mut Stdout) {
        struct Row {
            ino: String,
            blocks: String,
            mode: String,
            nlink: String,
            owner: String,
            group: String,
            size: String,
            major: Option<String>,
            minor: Option<String>,
            date: String,
            name: String,
        }
        let now = s.vfs.now();
        let mut rows = Vec::with_capacity(list.len());
        for e in list {
            let row = match &e.st {
                Some(st) => {
                    let a = &st.attr;
                    let owner = if self.o.numeric {
                        a.uid.to_string()
                    } else {
                        s.users.user_or_id(&mut s.vfs, a.uid)
                    };
                    let group = if self.o.numeric {
                        a.gid.to_string()
                    } else {
                        s.users.group_or_id(&mut s.vfs, a.gid)
                    };
                    let dev = matches!(a.kind, FileType::CharDevice | FileType::BlockDevice);
                    let (major, minor) = if dev {
                        let (ma, mi) = split_rdev(a.rdev);
                        (Some(ma.to_string()), Some(mi.to_string()))
                    } else {
                        (None, None)
                    };
                    let size = if self.o.human {
                        human::human_readable(
                            a.size,
                            hopts::AUTOSCALE | hopts::SI | hopts::BASE_1024,
                            1,
                            1,
                        )
                    } else {
                        a.size.to_string()
                    };
                    let date = if self.o.full_time {
                        date::stat_time(a.mtime)
                    } else {
                        date::ls_date(a.mtime, now)
                    };
                    let mut name = self.shown(&e.name);
                    if let Some(c) = self.classify_char(e) {
                        name.push(c);
                    }
                    if let Some(t) = &e.target {
                        name.push_str(" -> ");
                        name.push_str(&self.shown(t));
                        if self.o.classify {
                            match e.kind_hint {
                                Some(FileType::Directory) => name.push('/'),
                                Some(FileType::Fifo) => name.push('|'),
                                Some(FileType::Socket) => name.push('='),
                                _ => {}
                            }
                        }
                    }
                    Row {
                        ino: a.ino.to_string(),
                        blocks: self.blocks_str(st),
                        mode: mode_string(st),
                        nlink: a.nlink.to_string(),
                        owner,
                        group,
                        size,
                        major,
                        minor,
                        date,
                        name,
                    }
                }
                None => Row {
                    ino: "?".into(),
                    blocks: "?".into(),
                    mode: format!("{}?????????", e.kind_hint.map_or('?', type_char)),
                    nlink: "?".into(),
                    owner: "?".into(),
                    group: "?".into(),
                    size: "?".into(),
                    major: None,
                    minor: None,
                    date: "?".into(),
                    name: self.shown(&e.name),
                },
            };
            rows.push(row);
        }
        let w = |f: &dyn Fn(&Row) -> usize| rows.iter().map(f).max().unwrap_or(0);
        let extra = |i: usize| self.width_extra.iter().map(|x| x[i]).max().unwrap_or(0);
        let iw = w(&|r| r.ino.len()).max(extra(0));
        let bw = w(&|r| r.blocks.len()).max(extra(1));
        let nw = w(&|r| r.nlink.len()).max(extra(2));
        let ow = w(&|r| display_width(&r.owner));
        let gw = w(&|r| display_width(&r.group));
        let maj_w = w(&|r| r.major.as_ref().map_or(0, String::len));
        let min_w = w(&|r| r.minor.as_ref().map_or(0, String::len));
        let dev_w = if maj_w > 0 { maj_w + 2 + min_w } else { 0 };
        let sw = w(&|r| r.size.len()).max(dev_w).max(extra(3));
        let dw = w(&|r| r.date.len());
        for r in &rows {
            let mut line = String::new();
            if self.o.inode {
                line.push_str(&format!("{:>iw$} ", r.ino));
            }
            if self.o.size {
                line.push_str(&format!("{:>bw$} ", r.blocks));
            }
            line.push_str(&r.mode);
            line.push_str(&format!(" {:>nw$} ", r.nlink));
            if self.o.owner {
                line.push_str(&format!("{:<ow$} ", r.owner));
            }
            if self.o.group {
                line.push_str(&format!("{:<gw$} ", r.group));
            }
            match (&r.major, &r.minor) {
                (Some(ma), Some(mi)) => {
                    let pad = sw.saturating_sub(dev_w);
                    line.push_str(&format!("{:pad$}{ma:>maj_w$}, {mi:>min_w$}", ""));
                }
                _ => line.push_str(&format!("{:>sw$}", r.size)),
            }
            line.push_str(&format!(" {:>dw$} ", r.date));
            line.push_str(&r.name);
            line.push('\n');
            out.str(&line);
        }
    }
}

/// glibc's `major`/`minor` of a device number as ebsim's filesystems keep
/// it (the kernel's new encoding).
fn split_rdev(rdev: u32) -> (u32, u32) {
    let major = (rdev >> 8) & 0xfff;
    let minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
    (major, minor)
}
