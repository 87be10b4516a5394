//! `truncate` (coreutils 9.1) inside an instance: -s SIZE with the
//! modifiers `+ - < > / %` and the suffixes K M G T P E (powers of 1024,
//! also KiB ...), KB MB ... (powers of 1000); -c, -o, -r FILE. Each FILE
//! is opened (created unless -c) and `ftruncate`d: shrinking frees
//! blocks, growing leaves a hole.

use super::common::{start, strerror};
use super::opts::{self, Flag};
use crate::cli::error::{AppletError, finish};
use crate::cli::output::err;
use ebsim::compat::quote::{quote, quoteaf};
use ebsim::fs::node::ErrorKind;
use ebsim::guest::vfs::OpenFlags;
use std::ffi::OsString;

const HELP: &str = "Usage: truncate OPTION... FILE...
Sets the size of each FILE of the instance, making it when missing.

  -c, --no-create        make no file
  -o, --io-blocks        SIZE counts I/O blocks
  -r, --reference=RFILE  the size of RFILE
  -s, --size=SIZE        the size, or +SIZE (more), -SIZE (less), <SIZE (at
                         most), >SIZE (at least), /SIZE (round down to a
                         multiple), %SIZE (round up to a multiple); suffixes
                         K M G T P E (1024s), KB MB ... (1000s)
      --help             show this help
      --version          show the version
";

/// A number with coreutils' `xstrtoimax` suffixes: K M G T P E Z Y (and
/// KiB ...) in 1024s, KB MB ... in 1000s, b (512), c/w? no. None when
/// invalid or too large.
pub fn parse_size(s: &str) -> Option<i64> {
    let end = s
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
        .map_or(s.len(), |(i, _)| i);
    let (num, suffix) = s.split_at(end);
    if num.is_empty() || num == "-" || num == "+" {
        return None;
    }
    let n: i64 = num.parse().ok()?;
    let pow = |base: i64, e: u32| base.checked_pow(e);
    let mult: i64 = match suffix {
        "" => 1,
        "b" => 512,
        "c" => 1,
        "w" => 2,
        _ => {
            let (letter, rest) = suffix.split_at(1);
            let e = match letter {
                "K" | "k" => 1,
                "M" => 2,
                "G" => 3,
                "T" => 4,
                "P" => 5,
                "E" => 6,
                _ => return None,
            };
            match rest {
                "" | "iB" => pow(1024, e)?,
                "B" => pow(1000, e)?,
                _ => return None,
            }
        }
    };
    n.checked_mul(mult)
}

/// `truncate`.
pub fn run(args: Vec<OsString>) -> i32 {
    finish(main(args), String::new)
}

fn main(args: Vec<OsString>) -> Result<i32, AppletError> {
    let prog = "truncate";
    let long = [
        Flag::flag("no-create", 'c'),
        Flag::flag("io-blocks", 'o'),
        Flag::arg("reference", 'r'),
        Flag::arg("size", 's'),
    ];
    let parsed = opts::parse(prog, &args, "cor:s:", &long, HELP)?;
    let utf8 = super::common::utf8_locale();
    let (mut no_create, mut io_blocks) = (false, false);
    let mut size: Option<String> = None;
    let mut reference: Option<String> = None;
    for p in &parsed.opts {
        match p.val {
            'c' => no_create = true,
            'o' => io_blocks = true,
            'r' => reference = p.arg.clone(),
            's' => size = p.arg.clone(),
            _ => {}
        }
    }
    // (modifier, amount)
    let mut spec: Option<(char, i64)> = None;
    if let Some(sz) = &size {
        let (m, rest) = match sz.chars().next() {
            Some(c @ ('+' | '-' | '<' | '>' | '/' | '%')) => (c, &sz[1..]),
            _ => ('=', sz.as_str()),
        };
        let rest = rest.trim_start();
        let v = match parse_size(rest) {
            Some(v) if !(m != '=' && m != '+' && m != '-' && v < 0) => v,
            _ => {
                return Err(AppletError::new(
                    1,
                    format!("{prog}: Invalid number: {}\n", quote(sz.as_bytes(), utf8)),
                ));
            }
        };
        if (m == '/' || m == '%') && v == 0 {
            return Err(AppletError::new(1, format!("{prog}: division by zero\n")));
        }
        spec = Some((m, v));
    }
    if spec.is_none() && reference.is_none() {
        let (l, r) = if utf8 {
            ("\u{2018}", "\u{2019}")
        } else {
            ("'", "'")
        };
        return Err(AppletError::new(
            1,
            format!(
                "{prog}: you must specify either {l}--size{r} or {l}--reference{r}\n{}",
                super::common::try_help(prog)
            ),
        ));
    }
    if io_blocks && spec.is_none() {
        let (l, r) = if utf8 {
            ("\u{2018}", "\u{2019}")
        } else {
            ("'", "'")
        };
        return Err(AppletError::new(
            1,
            format!(
                "{prog}: {l}--io-blocks{r} was specified but {l}--size{r} was not\n{}",
                super::common::try_help(prog)
            ),
        ));
    }
    if parsed.operands.is_empty() {
        return Err(AppletError::new(
            1,
            format!(
                "{prog}: missing file operand\n{}",
                super::common::try_help(prog)
            ),
        ));
    }
    let mut s = start(prog, true)?;
    let ref_size = match &reference {
        Some(r) => match s.vfs.stat(r.as_bytes()) {
            Ok(st) => Some(st.attr.size as i64),
            Err(e) => {
                return Err(AppletError::new(
                    1,
                    format!(
                        "{prog}: cannot stat {}: {}\n",
                        quoteaf(r.as_bytes(), utf8),
                        strerror(&e)
                    ),
                ));
            }
        },
        None => None,
    };
    let mut code = 0;
    for f in &parsed.operands {
        let path = opts::bytes(f);
        let flags = OpenFlags {
            write: true,
            create: !no_create,
            mode: 0o666,
            ..OpenFlags::default()
        };
        let o = match s.vfs.open(path, flags) {
            Ok(o) => o,
            Err(e) if no_create && e.kind() == ErrorKind::NotFound => continue,
            Err(e) => {
                err(&format!(
                    "{prog}: cannot open {} for writing: {}\n",
                    quoteaf(path, utf8),
                    strerror(&e)
                ));
                code = 1;
                continue;
            }
        };
        let cur = o.stat.attr.size as i64;
        let blk = i64::from(o.stat.attr.blksize.max(1));
        let new = match spec {
            None => ref_size.unwrap_or(cur),
            Some((m, v)) => {
                let v = if io_blocks { v.saturating_mul(blk) } else { v };
                let base = ref_size.unwrap_or(cur);
                match m {
                    '+' => base.saturating_add(v),
                    '-' => base.saturating_sub(v),
                    '<' => base.min(v),
                    '>' => base.max(v),
                    '/' => base / v * v,
                    '%' => base.saturating_add(v - 1) / v * v,
                    _ => v,
                }
            }
        };
        let new = new.max(0) as u64;
        if let Err(e) = s.vfs.ftruncate(o.stat.loc, new) {
            err(&format!(
                "{prog}: failed to truncate {} at {new} bytes: {}\n",
                quoteaf(path, utf8),
                strerror(&e)
            ));
            code = 1;
        }
    }
    super::common::sync(prog, &mut s, code)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10K"), Some(10240));
        assert_eq!(parse_size("1KB"), Some(1000));
        assert_eq!(parse_size("2MiB"), Some(2 << 20));
        assert_eq!(parse_size("1E"), Some(1 << 60));
        assert_eq!(parse_size("1x"), None);
        assert_eq!(parse_size("K"), None);
        assert_eq!(parse_size("8E"), None);
    }
}
