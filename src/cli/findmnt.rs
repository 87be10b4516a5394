//! `findmnt` (util-linux 2.38) inside an instance: the guest's own mount
//! table (the filesystems `mount` lists), not the sandbox's FUSE mounts the
//! host's findmnt would read from `/proc/self/mountinfo`.
//!
//! Output as findmnt prints it off a terminal: a tree on TARGET (a mount's
//! parent is the latest earlier mount whose target contains it), columns as
//! wide as their widest cell or header, one space apart, the last one not
//! padded; `-l` a flat list, `-r` raw (blanks and backslashes as `\x20`),
//! `-n` no header. Filters (`-t`, `-S`, `-T`, `-M`, a source or target
//! argument) give a list of what matched, and exit 1 when nothing did.
//!
//! Supported: `-n -l -r -f -o LIST (+LIST) -t TYPES -S SOURCE -T PATH -M DIR
//! [SOURCE|TARGET] [SOURCE TARGET] -h -V`; columns TARGET SOURCE FSTYPE
//! OPTIONS FSROOT UUID LABEL. Other options are refused by name.

use super::error::AppletError;
use super::getopt::{LongOpt, getopt_long};
use super::output::out;
use ebsim::ec2::model::Mount;
use ebsim::guest::lsblk::raw_escape;
use ebsim::guest::mount::{libmount_source, type_matches};
use ebsim::guest::{Context, normalize_path, path_within};
use std::ffi::OsString;

const OPTSTRING: &str = "AabCcDd:ehiJfF:M:o:O:p::PQ:klmnN:rst:uvRS:T:Uw:VxyH";

const LONGOPTS: &[LongOpt] = &[
    LongOpt::flag("all", 'A'),
    LongOpt::flag("ascii", 'a'),
    LongOpt::flag("bytes", 'b'),
    LongOpt::flag("canonicalize", 'c'),
    LongOpt::flag("df", 'D'),
    LongOpt::arg("direction", 'd'),
    LongOpt::flag("evaluate", 'e'),
    LongOpt::flag("first-only", 'f'),
    LongOpt::flag("fstab", 's'),
    LongOpt::flag("help", 'h'),
    LongOpt::flag("invert", 'i'),
    LongOpt::flag("json", 'J'),
    LongOpt::flag("kernel", 'k'),
    LongOpt::flag("list", 'l'),
    LongOpt::arg("mountpoint", 'M'),
    LongOpt::flag("mtab", 'm'),
    LongOpt::flag("noheadings", 'n'),
    LongOpt::flag("notruncate", 'u'),
    LongOpt::arg("options", 'O'),
    LongOpt::arg("output", 'o'),
    LongOpt::flag("output-all", '\u{80}'),
    LongOpt::optional("poll", 'p'),
    LongOpt::flag("pairs", 'P'),
    LongOpt::flag("raw", 'r'),
    LongOpt::arg("types", 't'),
    LongOpt::flag("nofsroot", 'v'),
    LongOpt::flag("submounts", 'R'),
    LongOpt::arg("source", 'S'),
    LongOpt::arg("tab-file", 'F'),
    LongOpt::arg("task", 'N'),
    LongOpt::arg("target", 'T'),
    LongOpt::flag("uniq", 'U'),
    LongOpt::flag("verify", 'x'),
    LongOpt::flag("version", 'V'),
    LongOpt::flag("shadowed", '\u{81}'),
    LongOpt::flag("real", '\u{82}'),
    LongOpt::flag("pseudo", '\u{83}'),
];

/// The columns ebsim fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Target,
    Source,
    FsType,
    Options,
    FsRoot,
    Uuid,
    Label,
}

impl Column {
    fn of(name: &str) -> Option<Column> {
        Some(match name.to_ascii_uppercase().as_str() {
            "TARGET" => Column::Target,
            "SOURCE" => Column::Source,
            "FSTYPE" => Column::FsType,
            "OPTIONS" => Column::Options,
            "FSROOT" => Column::FsRoot,
            "UUID" => Column::Uuid,
            "LABEL" => Column::Label,
            _ => return None,
        })
    }

    fn header(self) -> &'static str {
        match self {
            Column::Target => "TARGET",
            Column::Source => "SOURCE",
            Column::FsType => "FSTYPE",
            Column::Options => "OPTIONS",
            Column::FsRoot => "FSROOT",
            Column::Uuid => "UUID",
            Column::Label => "LABEL",
        }
    }
}

const DEFAULT_COLUMNS: [Column; 4] = [
    Column::Target,
    Column::Source,
    Column::FsType,
    Column::Options,
];

/// What the command line asks for.
#[derive(Debug, Default)]
struct Cli {
    columns: Vec<Column>,
    noheadings: bool,
    list: bool,
    raw: bool,
    first_only: bool,
    types: Option<String>,
    source: Option<String>,
    target: Option<String>,
    mountpoint: Option<String>,
    operands: Vec<String>,
}

fn fail(msg: impl Into<String>) -> AppletError {
    AppletError::new(1, msg.into())
}

fn parse(args: &[String]) -> Result<Option<Cli>, AppletError> {
    let try_help = "Try 'findmnt --help' for more information.\n";
    let (opts, operands) = getopt_long(args, OPTSTRING, LONGOPTS)
        .strict()
        .map_err(|e| fail(format!("{}{try_help}", e.message("findmnt"))))?;
    let mut c = Cli {
        columns: DEFAULT_COLUMNS.to_vec(),
        operands,
        ..Cli::default()
    };
    for o in opts {
        let arg = o.arg.clone().unwrap_or_default();
        match o.val {
            'n' => c.noheadings = true,
            'l' => c.list = true,
            'r' => c.raw = true,
            'f' => c.first_only = true,
            't' => c.types = Some(arg),
            'S' => c.source = Some(arg),
            'T' => c.target = Some(arg),
            'M' => c.mountpoint = Some(arg),
            'o' => {
                let (list, append) = match arg.strip_prefix('+') {
                    Some(rest) => (rest, true),
                    None => (arg.as_str(), false),
                };
                let mut cols = Vec::new();
                for name in list.split(',').filter(|n| !n.is_empty()) {
                    cols.push(
                        Column::of(name)
                            .ok_or_else(|| fail(format!("findmnt: unknown column: {name}\n")))?,
                    );
                }
                if append {
                    c.columns.extend(cols);
                } else {
                    c.columns = cols;
                }
            }
            'h' => {
                out(USAGE);
                return Ok(None);
            }
            'V' => {
                out(&super::mount::version_line("findmnt"));
                return Ok(None);
            }
            _ => {
                return Err(fail(format!(
                    "findmnt: option {} is not supported by ebsim\n{try_help}",
                    o.spelling()
                )));
            }
        }
    }
    if c.operands.len() > 2 {
        return Err(fail(format!("findmnt: bad usage\n{try_help}")));
    }
    Ok(Some(c))
}

const USAGE: &str = "
Usage:
 findmnt [options]
 findmnt [options] <device> | <mountpoint>
 findmnt [options] <device> <mountpoint>
 findmnt [options] [--source <device>] [--target <path> | --mountpoint <dir>]

Find a (mounted) filesystem (ebsim: the mounts of the emulated instance).

Options:
 -f, --first-only       print the first found filesystem only
 -M, --mountpoint <dir> the mountpoint directory
 -n, --noheadings       don't print column headings
 -o, --output <list>    the output columns to be shown
 -r, --raw              use raw output format
 -l, --list             use list format output
 -S, --source <string>  the device to mount (by name, UUID= or LABEL=)
 -T, --target <path>    the path to the filesystem to use
 -t, --types <list>     limit the set of filesystems by FS types

 -h, --help             display this help
 -V, --version          display version

Available output columns:
 TARGET SOURCE FSTYPE OPTIONS FSROOT UUID LABEL
";

/// Whether mount `m` is the device `spec` names (as given, or resolved:
/// `UUID=`, `LABEL=`, a udev link).
fn source_is(ctx: &Context, m: &Mount, spec: &str) -> bool {
    m.source == spec
        || libmount_source(ctx, m) == spec
        || ctx
            .resolve(spec)
            .zip(ctx.resolve(&m.source))
            .is_some_and(|(a, b)| a.dev_path() == b.dev_path())
}

/// The mount `path` is on: the latest mount whose target contains it.
fn mount_of<'a>(mounts: &[&'a Mount], path: &str) -> Option<&'a Mount> {
    let p = normalize_path(path);
    mounts
        .iter()
        .rev()
        .copied()
        .find(|m| path_within(&p, &m.target))
}

/// The cell of `col` for mount `m`.
fn cell(ctx: &Context, m: &Mount, col: Column) -> String {
    let probe = || ctx.resolve(&m.source).and_then(|r| r.probe());
    match col {
        Column::Target => m.target.clone(),
        Column::Source => libmount_source(ctx, m),
        Column::FsType => m.fstype.clone(),
        Column::Options => m.options.clone(),
        Column::FsRoot => "/".to_string(),
        Column::Uuid => probe().map(|i| i.uuid).unwrap_or_default(),
        Column::Label => probe().map(|i| i.label).unwrap_or_default(),
    }
}

/// Each mount's parent in the tree: the latest earlier mount containing it.
fn parents(mounts: &[&Mount]) -> Vec<Option<usize>> {
    mounts
        .iter()
        .enumerate()
        .map(|(i, m)| {
            (0..i).rev().find(|&j| {
                mounts[j].target != m.target && path_within(&m.target, &mounts[j].target)
            })
        })
        .collect()
}

/// The rows of a tree listing: findmnt's `create_treenode` from the root,
/// keeping the mounts `keep` accepts; a dropped mount's children go to the
/// top level. Each row: (tree art, mount).
fn tree_rows<'a>(mounts: &[&'a Mount], keep: &dyn Fn(&Mount) -> bool) -> Vec<(String, &'a Mount)> {
    let parent = parents(mounts);
    // The shown rows as (mount index, shown parent row).
    let mut shown: Vec<(usize, Option<usize>)> = Vec::new();
    fn visit(
        i: usize,
        parent_row: Option<usize>,
        parent: &[Option<usize>],
        mounts: &[&Mount],
        keep: &dyn Fn(&Mount) -> bool,
        shown: &mut Vec<(usize, Option<usize>)>,
    ) {
        let row = keep(mounts[i]).then(|| {
            shown.push((i, parent_row));
            shown.len() - 1
        });
        for c in (0..mounts.len()).filter(|&c| parent[c] == Some(i)) {
            visit(c, row, parent, mounts, keep, shown);
        }
    }
    for r in (0..mounts.len()).filter(|&i| parent[i].is_none()) {
        visit(r, None, &parent, mounts, keep, &mut shown);
    }
    // Tree art: each ancestor row that has later siblings draws "│ ".
    let is_last = |k: usize| !shown[k + 1..].iter().any(|&(_, p)| p == shown[k].1);
    (0..shown.len())
        .map(|k| {
            let mut chain = Vec::new();
            let mut p = shown[k].1;
            while let Some(row) = p {
                chain.push(row);
                p = shown[row].1;
            }
            let mut art = String::new();
            // Ancestors below the top level, outermost first.
            for &row in chain.iter().rev().skip(1) {
                art.push_str(if is_last(row) { "  " } else { "│ " });
            }
            if shown[k].1.is_some() {
                art.push_str(if is_last(k) { "└─" } else { "├─" });
            }
            (art, mounts[shown[k].0])
        })
        .collect()
}

fn render(ctx: &Context, c: &Cli, rows: &[(String, &Mount)], tree: bool) -> String {
    // libsmartcols prints nothing at all, not even the header, for no rows.
    if rows.is_empty() {
        return String::new();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|(prefix, m)| {
            c.columns
                .iter()
                .map(|&col| {
                    let v = cell(ctx, m, col);
                    if c.raw {
                        raw_escape(&v)
                    } else if col == Column::Target && tree {
                        format!("{prefix}{v}")
                    } else {
                        v
                    }
                })
                .collect()
        })
        .collect();
    let mut text = String::new();
    let header: Vec<String> = c
        .columns
        .iter()
        .map(|col| col.header().to_string())
        .collect();
    let all: Vec<&Vec<String>> = if c.noheadings {
        cells.iter().collect()
    } else {
        std::iter::once(&header).chain(cells.iter()).collect()
    };
    if c.raw {
        for row in all {
            text.push_str(&row.join(" "));
            text.push('\n');
        }
        return text;
    }
    // The header counts in the widths even when it is not printed.
    let widths: Vec<usize> = (0..c.columns.len())
        .map(|i| {
            std::iter::once(&header)
                .chain(cells.iter())
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in all {
        let mut line = String::new();
        for (i, v) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(v);
            } else {
                line.push_str(v);
                let pad = widths[i] - v.chars().count();
                line.push_str(&" ".repeat(pad + 1));
            }
        }
        text.push_str(line.trim_end_matches(' '));
        text.push('\n');
    }
    text
}

fn main(args: &[String]) -> Result<i32, AppletError> {
    let Some(c) = parse(args.get(1..).unwrap_or(&[]))? else {
        return Ok(0);
    };
    let ctx = super::env::context().map_err(|why| fail(format!("findmnt: {why}\n")))?;
    let all: Vec<&Mount> = ctx.mounts.iter().collect();
    let (mut source, mut target) = (c.source.clone(), c.target.clone());
    let mut either: Option<String> = None;
    match c.operands.as_slice() {
        [] => {}
        [one] => either = Some(one.clone()),
        // `parse` refused more than two.
        [s, t, ..] => {
            source = Some(s.clone());
            target = Some(t.clone());
        }
    }
    // findmnt lists (no tree) with -f or a source or target to match.
    let tree = !c.list
        && !c.raw
        && !c.first_only
        && source.is_none()
        && target.is_none()
        && c.mountpoint.is_none()
        && either.is_none();
    let typed = |m: &Mount| {
        c.types
            .as_deref()
            .is_none_or(|t| type_matches(t, &m.fstype))
    };
    if tree {
        let rows = tree_rows(&all, &typed);
        let art = c.columns.contains(&Column::Target);
        out(&render(&ctx, &c, &rows, art));
        return Ok(0);
    }
    let mut picked: Vec<&Mount> = all
        .iter()
        .copied()
        .filter(|m| typed(m))
        .filter(|m| source.as_deref().is_none_or(|s| source_is(&ctx, m, s)))
        .filter(|m| {
            c.mountpoint
                .as_deref()
                .is_none_or(|d| m.target == normalize_path(d))
        })
        .filter(|m| {
            either
                .as_deref()
                .is_none_or(|a| m.target == normalize_path(a) || source_is(&ctx, m, a))
        })
        .collect();
    if let Some(t) = &target {
        // -T: the mount point itself, else (as findmnt does on the
        // kernel's table) the filesystem the path is on.
        let exact: Vec<&Mount> = picked
            .iter()
            .copied()
            .filter(|m| m.target == normalize_path(t))
            .collect();
        picked = if exact.is_empty() {
            mount_of(&picked, t).into_iter().collect()
        } else {
            exact
        };
    }
    if c.first_only {
        picked.truncate(1);
    }
    if picked.is_empty() {
        return Ok(1);
    }
    let rows: Vec<(String, &Mount)> = picked.into_iter().map(|m| (String::new(), m)).collect();
    out(&render(&ctx, &c, &rows, false));
    Ok(0)
}

/// `findmnt`.
pub fn run(args: Vec<OsString>) -> i32 {
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    super::error::finish(main(&args), String::new)
}
