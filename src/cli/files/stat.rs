//! `stat` (coreutils 9.1) inside an instance: the default format, -c /
//! --format (a newline after each file), --printf (escapes, no newline),
//! -L, -t, and -f (the filesystem: `statfs`). The `Device:` line prints
//! the guest's device number as 9.1 does (`202,1`; the AMIs' 8.22 and 8.32
//! print it as `ca01h/51713d`). Birth times come from ext4's creation
//! time.

use super::common::{Session, Stdout, start, strerror};
use super::opts::{self, Flag};
use crate::cli::error::{AppletError, finish};
use crate::cli::output::err;
use ebsim::compat::date;
use ebsim::compat::quote::{quoteaf, quotef};
use ebsim::fs::node::{FileType, Timespec, split_rdev};
use ebsim::fs::{FsKind, StatFs};
use ebsim::guest::vfs::Stat;
use std::ffi::OsString;

const HELP: &str = "Usage: stat [OPTION]... FILE...
Shows the status of each FILE of the instance, or of its filesystem.

  -L, --dereference     follow links
  -f, --file-system     show the filesystem's status instead
  -c  --format=FORMAT   use FORMAT (a newline after each file)
      --printf=FORMAT   use FORMAT with backslash escapes, no newline
  -t, --terse           the terse form
      --help            show this help
      --version         show the version
";

const DEFAULT_FS: &str = "  File: \"%n\"\n    ID: %-8i Namelen: %-7l Type: %T\nBlock size: %-10s Fundamental block size: %S\nBlocks: Total: %-10b Free: %-10f Available: %a\nInodes: Total: %-10c Free: %d\n";
const TERSE_FS: &str = "%n %i %l %t %s %S %b %f %a %c %d\n";
const TERSE: &str = "%n %s %b %f %u %g %D %i %h %t %T %X %Y %Z %W %o\n";

/// `stat`.
pub fn run(args: Vec<OsString>) -> i32 {
    finish(main(args), String::new)
}

fn main(args: Vec<OsString>) -> Result<i32, AppletError> {
    let prog = "stat";
    let long = [
        Flag::flag("dereference", 'L'),
        Flag::flag("file-system", 'f'),
        Flag::arg("format", 'c'),
        Flag::arg("printf", '\u{1}'),
        Flag::flag("terse", 't'),
        Flag::optional("cached", '\u{2}'),
    ];
    let parsed = opts::parse(prog, &args, "c:fLt", &long, HELP)?;
    let (mut deref, mut fs_mode, mut terse) = (false, false, false);
    let mut format: Option<(String, bool)> = None;
    for p in &parsed.opts {
        match p.val {
            'L' => deref = true,
            'f' => fs_mode = true,
            't' => terse = true,
            'c' => format = p.arg.clone().map(|f| (f + "\n", false)),
            '\u{1}' => format = p.arg.clone().map(|f| (f, true)),
            _ => {}
        }
    }
    if parsed.operands.is_empty() {
        return Err(opts::missing_operand(prog));
    }
    let utf8 = super::common::utf8_locale();
    let mut s = start(prog, false)?;
    let mut out = Stdout::new();
    let mut code = 0;
    for f in &parsed.operands {
        let name = opts::bytes(f);
        if fs_mode {
            match s.vfs.statfs(name) {
                Ok((st, sf, kind)) => {
                    let fsid = s.vfs.fsid(st.loc.dev).unwrap_or(0);
                    let (fmt, esc) = match &format {
                        Some((f, e)) => (f.clone(), *e),
                        None if terse => (TERSE_FS.to_string(), false),
                        None => (DEFAULT_FS.to_string(), false),
                    };
                    let text = render(&fmt, esc, &mut |spec, c, o: &mut String| {
                        fs_directive(spec, c, name, &sf, kind, fsid, o)
                    });
                    out.bytes(&text);
                }
                Err(e) => {
                    out.flush();
                    err(&format!(
                        "{prog}: cannot read file system information for {}: {}\n",
                        quoteaf(name, utf8),
                        strerror(&e)
                    ));
                    code = 1;
                }
            }
            continue;
        }
        let st = if deref {
            s.vfs.stat(name)
        } else {
            s.vfs.lstat(name)
        };
        let st = match st {
            Ok(st) => st,
            Err(e) => {
                out.flush();
                err(&format!(
                    "{prog}: cannot statx {}: {}\n",
                    quoteaf(name, utf8),
                    strerror(&e)
                ));
                code = 1;
                continue;
            }
        };
        let target = if st.attr.kind == FileType::Symlink {
            s.vfs.readlink(name).ok()
        } else {
            None
        };
        let default;
        let (fmt, esc, quote_always) = match &format {
            Some((f, e)) => (f.as_str(), *e, true),
            None if terse => (TERSE, false, true),
            None => {
                default = default_format(&st);
                (default.as_str(), false, false)
            }
        };
        let mut ctx = FileCtx {
            s: &mut s,
            name,
            st: &st,
            target: target.as_deref(),
            utf8,
            quote_always,
        };
        let text = render(fmt, esc, &mut |spec, c, o: &mut String| {
            ctx.directive(spec, c, o)
        });
        out.bytes(&text);
    }
    Ok(out.finish(prog, code))
}

fn default_format(st: &Stat) -> String {
    let dev = matches!(st.attr.kind, FileType::CharDevice | FileType::BlockDevice);
    let links = if dev {
        "Links: %-5h Device type: %Hr,%Lr"
    } else {
        "Links: %h"
    };
    format!(
        "  File: %N\n  Size: %-10s\tBlocks: %-10b IO Block: %-6o %F\nDevice: %Hd,%Ld\tInode: %-11i {links}\nAccess: (%04a/%10.10A)  Uid: (%5u/%8U)   Gid: (%5g/%8G)\nAccess: %x\nModify: %y\nChange: %z\n Birth: %w\n"
    )
}

/// One directive's flags, width and precision (`%-10s` → "-", 10).
#[derive(Debug, Default, Clone)]
struct Spec {
    flags: String,
    width: Option<usize>,
    precision: Option<usize>,
}

impl Spec {
    fn pad(&self, s: &str, numeric: bool) -> String {
        let mut v = s.to_string();
        if let Some(p) = self.precision {
            if !numeric {
                v = v.chars().take(p).collect();
            } else if v.len() < p {
                let neg = v.starts_with('-');
                let digits = v.trim_start_matches('-');
                v = format!("{}{:0>p$}", if neg { "-" } else { "" }, digits);
            }
        }
        let w = self.width.unwrap_or(0);
        let n = v.chars().count();
        if n >= w {
            return v;
        }
        if self.flags.contains('-') {
            format!("{v}{}", " ".repeat(w - n))
        } else if self.flags.contains('0') && numeric && self.precision.is_none() {
            let neg = v.starts_with('-');
            let digits = v.trim_start_matches('-');
            format!(
                "{}{}{digits}",
                if neg { "-" } else { "" },
                "0".repeat(w - n)
            )
        } else {
            format!("{}{v}", " ".repeat(w - n))
        }
    }
}

/// Expands `fmt`, calling `dir` for each directive (its spec, its
/// letters, the output); `esc` interprets backslash escapes.
fn render(fmt: &str, esc: bool, dir: &mut dyn FnMut(&Spec, &str, &mut String)) -> Vec<u8> {
    let mut out = String::new();
    let mut raw: Vec<u8> = Vec::new();
    let b = fmt.as_bytes();
    let mut i = 0;
    let flush = |out: &mut String, raw: &mut Vec<u8>| {
        raw.extend_from_slice(out.as_bytes());
        out.clear();
    };
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            i += 1;
            let mut spec = Spec::default();
            while i < b.len() && b"-+ #0'I".contains(&b[i]) {
                spec.flags.push(b[i] as char);
                i += 1;
            }
            let ws = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i > ws {
                spec.width = fmt[ws..i].parse().ok();
            }
            if i < b.len() && b[i] == b'.' {
                i += 1;
                let ps = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                spec.precision = Some(fmt[ps..i].parse().unwrap_or(0));
            }
            if i >= b.len() {
                out.push('%');
                out.push_str(&spec.flags);
                break;
            }
            let letter =
                if (b[i] == b'H' || b[i] == b'L') && i + 1 < b.len() && b"dr".contains(&b[i + 1]) {
                    i += 2;
                    &fmt[i - 2..i]
                } else {
                    let ch = fmt[i..].chars().next().unwrap_or('%');
                    i += ch.len_utf8();
                    &fmt[i - ch.len_utf8()..i]
                };
            if letter == "%" {
                out.push('%');
            } else {
                dir(&spec, letter, &mut out);
            }
            continue;
        }
        if esc && c == b'\\' && i + 1 < b.len() {
            flush(&mut out, &mut raw);
            i += 1;
            let e = b[i];
            i += 1;
            match e {
                b'n' => raw.push(b'\n'),
                b't' => raw.push(b'\t'),
                b'\\' => raw.push(b'\\'),
                b'"' => raw.push(b'"'),
                b'a' => raw.push(7),
                b'b' => raw.push(8),
                b'e' => raw.push(27),
                b'f' => raw.push(12),
                b'r' => raw.push(b'\r'),
                b'v' => raw.push(11),
                b'0'..=b'7' => {
                    let mut v = u32::from(e - b'0');
                    let mut k = 0;
                    while k < 2 && i < b.len() && (b'0'..=b'7').contains(&b[i]) {
                        v = v * 8 + u32::from(b[i] - b'0');
                        i += 1;
                        k += 1;
                    }
                    raw.push(v as u8);
                }
                b'x' => {
                    let mut v = 0u32;
                    let mut k = 0;
                    while k < 2 && i < b.len() && b[i].is_ascii_hexdigit() {
                        v = v * 16 + (b[i] as char).to_digit(16).unwrap_or(0);
                        i += 1;
                        k += 1;
                    }
                    raw.push(v as u8);
                }
                other => {
                    raw.push(b'\\');
                    raw.push(other);
                }
            }
            continue;
        }
        let ch = fmt[i..].chars().next().unwrap_or('?');
        out.push(ch);
        i += ch.len_utf8();
    }
    flush(&mut out, &mut raw);
    raw
}

struct FileCtx<'a> {
    s: &'a mut Session,
    name: &'a [u8],
    st: &'a Stat,
    target: Option<&'a [u8]>,
    utf8: bool,
    quote_always: bool,
}

fn kind_words(st: &Stat) -> &'static str {
    match st.attr.kind {
        FileType::Regular if st.attr.size == 0 => "regular empty file",
        FileType::Regular => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symbolic link",
        FileType::CharDevice => "character special file",
        FileType::BlockDevice => "block special file",
        FileType::Fifo => "fifo",
        FileType::Socket => "socket",
    }
}

fn secs(t: Timespec, spec: &Spec) -> String {
    match spec.precision {
        Some(p) if p > 0 => {
            let frac = format!("{:09}", t.nsec);
            let p = p.min(9);
            format!("{}.{}", t.sec, &frac[..p])
        }
        _ => t.sec.to_string(),
    }
}

impl FileCtx<'_> {
    fn directive(&mut self, spec: &Spec, letters: &str, o: &mut String) {
        let a = &self.st.attr;
        let num = |v: String| (v, true);
        let (v, numeric) = match letters {
            "a" => {
                if spec.flags.contains('#') {
                    num(format!("0{:o}", a.perm))
                } else {
                    num(format!("{:o}", a.perm))
                }
            }
            "A" => (mode_string(self.st), false),
            "b" => num(a.blocks.to_string()),
            "B" => num("512".into()),
            "C" => ("?".into(), false),
            "d" => num(self.st.st_dev().to_string()),
            "D" => num(format!("{:x}", self.st.st_dev())),
            "Hd" => num(self.st.major.to_string()),
            "Ld" => num(self.st.minor.to_string()),
            "f" => num(format!("{:x}", u32::from(a.kind.mode_bits() | a.perm))),
            "F" => (kind_words(self.st).into(), false),
            "g" => num(a.gid.to_string()),
            "G" => (self.s.users.group_or_id(&mut self.s.vfs, a.gid), false),
            "h" => num(a.nlink.to_string()),
            "i" => num(a.ino.to_string()),
            "m" => (
                self.s
                    .vfs
                    .mount_point(self.st.loc.dev)
                    .unwrap_or("/")
                    .to_string(),
                false,
            ),
            "n" => (String::from_utf8_lossy(self.name).into_owned(), false),
            "N" => {
                let q = |b: &[u8]| {
                    if self.quote_always {
                        quoteaf(b, self.utf8)
                    } else {
                        quotef(b, self.utf8)
                    }
                };
                let mut v = q(self.name);
                if let Some(t) = self.target {
                    v.push_str(" -> ");
                    v.push_str(&q(t));
                }
                (v, false)
            }
            "o" => num(a.blksize.to_string()),
            "s" => num(a.size.to_string()),
            "r" => num(rdev(a.rdev).to_string()),
            "R" => num(format!("{:x}", rdev(a.rdev))),
            "Hr" => num(split_rdev(a.rdev).0.to_string()),
            "Lr" => num(split_rdev(a.rdev).1.to_string()),
            "t" => num(format!("{:x}", split_rdev(a.rdev).0)),
            "T" => num(format!("{:x}", split_rdev(a.rdev).1)),
            "u" => num(a.uid.to_string()),
            "U" => (self.s.users.user_or_id(&mut self.s.vfs, a.uid), false),
            "w" => (
                if a.crtime == Timespec::default() {
                    "-".into()
                } else {
                    date::stat_time(a.crtime)
                },
                false,
            ),
            "W" => num(secs(a.crtime, spec)),
            "x" => (date::stat_time(a.atime), false),
            "X" => num(secs(a.atime, spec)),
            "y" => (date::stat_time(a.mtime), false),
            "Y" => num(secs(a.mtime, spec)),
            "z" => (date::stat_time(a.ctime), false),
            "Z" => num(secs(a.ctime, spec)),
            other => (format!("?{other}"), false),
        };
        let spec = if matches!(letters, "X" | "Y" | "Z" | "W") {
            Spec {
                precision: None,
                ..spec.clone()
            }
        } else {
            spec.clone()
        };
        o.push_str(&spec.pad(&v, numeric));
    }
}

fn fs_directive(
    spec: &Spec,
    letters: &str,
    name: &[u8],
    sf: &StatFs,
    kind: FsKind,
    fsid: u64,
    o: &mut String,
) {
    let (magic, tname) = match kind {
        FsKind::Ext4 => (0xef53u64, "ext2/ext3"),
        FsKind::Xfs => (0x5846_5342, "xfs"),
        FsKind::Vfat => (0x4d44, "msdos"),
        // Never mounted, so never a stat -f target.
        FsKind::Swap => (0, "UNKNOWN"),
    };
    let (v, numeric) = match letters {
        "a" => (sf.bavail.to_string(), true),
        "b" => (sf.blocks.to_string(), true),
        "c" => (sf.files.to_string(), true),
        "d" => (sf.ffree.to_string(), true),
        "f" => (sf.bfree.to_string(), true),
        // statfs's two 32-bit words of f_fsid, the first printed high.
        "i" => (format!("{:x}", fsid.rotate_left(32)), true),
        "l" => ("255".into(), true),
        "n" => (String::from_utf8_lossy(name).into_owned(), false),
        "s" | "S" => (sf.frsize.to_string(), true),
        "t" => (format!("{magic:x}"), true),
        "T" => (tname.into(), false),
        other => (format!("?{other}"), false),
    };
    o.push_str(&spec.pad(&v, numeric));
}

fn rdev(r: u32) -> u64 {
    let (ma, mi) = split_rdev(r);
    ebsim::guest::vfs::makedev(ma, mi)
}

fn mode_string(st: &Stat) -> String {
    ebsim::compat::mode::mode_string(st.attr.kind, st.attr.perm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_and_escapes() {
        let mut seen = Vec::new();
        let out = render("a%-5sb%04a\\t%%\\x41\\101", true, &mut |spec, l, o| {
            seen.push(l.to_string());
            o.push_str(&spec.pad(if l == "s" { "12" } else { "644" }, true));
        });
        assert_eq!(out, b"a12   b0644\t%AA");
        assert_eq!(seen, ["s", "a"]);
        let out = render("%Hd,%Ld %10.10A", false, &mut |spec, l, o| {
            o.push_str(&spec.pad(if l.len() == 2 { "7" } else { "-rw-r--r--x" }, l.len() == 2));
        });
        assert_eq!(out, b"7,7 -rw-r--r--");
    }
}
