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
use ebsim::compat::{XstrtolError, xstrtoimax};
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

/// The suffixes truncate gives gnulib's `xstrtoimax`: K M G T P E Z Y
/// (lower-case g m t and k too) in 1024s, KiB ... likewise, KB MB ... in
/// 1000s; not dd's b, c and w.
const SUFFIXES: &str = "EgGkKmMPtTYZ0";

/// A size as coreutils 9.1's truncate reads `-s`: leading blanks, one of
/// the modifiers `< > / %`, blanks, then a signed number (a sign makes it
/// relative, `+`/`-`, and is refused after another modifier) with
/// [`SUFFIXES`]. Returns the mode (`=` for an absolute size) and the
/// number, or the message truncate dies with.
fn parse_spec(prog: &str, arg: &str, utf8: bool) -> Result<(char, i64), AppletError> {
    let blank = |c: char| c == ' ' || ('\t'..='\r').contains(&c);
    let mut a = arg.trim_start_matches(blank);
    let mut mode = '=';
    if let Some(c @ ('<' | '>' | '/' | '%')) = a.chars().next() {
        mode = c;
        a = &a[1..];
    }
    a = a.trim_start_matches(blank);
    if let Some(c @ ('+' | '-')) = a.chars().next() {
        if mode != '=' {
            return Err(opts::usage_error(
                prog,
                "multiple relative modifiers specified",
                1,
            ));
        }
        mode = c;
    }
    let v = match xstrtoimax(a, SUFFIXES) {
        Ok(v) => v,
        Err(e) => {
            let why = match e {
                XstrtolError::Overflow => ": Value too large for defined data type",
                XstrtolError::Invalid => "",
            };
            return Err(AppletError::new(
                1,
                format!(
                    "{prog}: Invalid number: {}{why}\n",
                    quote(a.as_bytes(), utf8)
                ),
            ));
        }
    };
    if (mode == '/' || mode == '%') && v == 0 {
        return Err(AppletError::new(1, format!("{prog}: division by zero\n")));
    }
    Ok((mode, v))
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
    // (modifier, amount); `+`/`-` amounts carry their sign.
    let mut spec: Option<(char, i64)> = None;
    let mut reference: Option<String> = None;
    for p in &parsed.opts {
        match p.val {
            'c' => no_create = true,
            'o' => io_blocks = true,
            'r' => reference = p.arg.clone(),
            's' => spec = Some(parse_spec(prog, p.arg.as_deref().unwrap_or(""), utf8)?),
            _ => {}
        }
    }
    let (l, r) = super::common::quote_marks(utf8);
    let usage = |msg: String| Err(opts::usage_error(prog, &msg, 1));
    if spec.is_none() && reference.is_none() {
        return usage(format!(
            "you must specify either {l}--size{r} or {l}--reference{r}"
        ));
    }
    if reference.is_some() && spec.is_some_and(|(m, _)| m == '=') {
        return usage(format!(
            "you must specify a relative {l}--size{r} with {l}--reference{r}"
        ));
    }
    if io_blocks && spec.is_none() {
        return usage(format!(
            "{l}--io-blocks{r} was specified but {l}--size{r} was not"
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
                    '+' | '-' => base.saturating_add(v),
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
    use super::parse_spec;

    #[test]
    fn sizes() {
        let p = |a: &str| parse_spec("truncate", a, true).map_err(|e| e.to_string());
        assert_eq!(p("10K"), Ok(('=', 10240)));
        assert_eq!(p("1KB"), Ok(('=', 1000)));
        assert_eq!(p("2MiB"), Ok(('=', 2 << 20)));
        assert_eq!(p("1g"), Ok(('=', 1 << 30)));
        assert_eq!(p("K"), Ok(('=', 1024)));
        assert_eq!(p(" <  5"), Ok(('<', 5)));
        assert_eq!(p("-5"), Ok(('-', -5)));
        assert_eq!(p("+5"), Ok(('+', 5)));
        assert!(p("1E").is_ok());
        for bad in [
            "1x", "1b", "1c", "1w", "8E", "1Y", "+-5", "<-1", "%0", "abc",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }
}
