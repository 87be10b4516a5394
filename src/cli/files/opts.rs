//! Command lines of the file commands: glibc's getopt_long (permutation,
//! clusters, long-option prefixes, its messages), `--help` and
//! `--version`, and coreutils' "Try 'PROG --help'" line after a usage
//! error. File names stay bytes (they need not be UTF-8).

use crate::cli::error::AppletError;
use crate::cli::getopt::{self, LongOpt};
use crate::cli::output::out;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// A long option.
pub type Flag = LongOpt;

/// A parsed command line.
#[derive(Debug)]
pub struct Parsed {
    /// The options in order.
    pub opts: Vec<getopt::Opt>,
    /// The operands in order, as given.
    pub operands: Vec<OsString>,
}

/// The private values of `--help` and `--version`.
const HELP: char = '\u{f001}';
const VERSION: char = '\u{f002}';

/// Parses `args` (`args[0]` the program) as coreutils does; `Err` ends the
/// command: after `--help` or `--version` (status 0, printed here), or a
/// usage error (its message, status 1).
pub fn parse(
    prog: &str,
    args: &[OsString],
    optstring: &str,
    long: &[Flag],
    help: &str,
) -> Result<Parsed, AppletError> {
    parse_with(prog, args, optstring, long, help, 1)
}

/// [`parse`] with the status of a usage error (`ls`: 2).
pub fn parse_with(
    prog: &str,
    args: &[OsString],
    optstring: &str,
    long: &[Flag],
    help: &str,
    usage_code: i32,
) -> Result<Parsed, AppletError> {
    // Arguments that are not UTF-8 stand in as a NUL-led index (no real
    // argument holds a NUL) and are given back as they were.
    let rest = args.get(1..).unwrap_or_default();
    let texts: Vec<String> = rest
        .iter()
        .enumerate()
        .map(|(i, a)| match a.to_str() {
            Some(s) => s.to_string(),
            None => format!("\0{i}"),
        })
        .collect();
    let mut table: Vec<LongOpt> = long.to_vec();
    table.push(LongOpt::flag("help", HELP));
    table.push(LongOpt::flag("version", VERSION));
    let (opts, operands) = match getopt::getopt_long(&texts, optstring, &table).strict() {
        Ok(v) => v,
        Err(e) => {
            return Err(AppletError::new(
                usage_code,
                format!(
                    "{}Try '{prog} --help' for more information.\n",
                    e.message(prog)
                ),
            ));
        }
    };
    if opts.iter().any(|o| o.val == HELP) {
        out(help);
        return Err(AppletError::new(0, ""));
    }
    if opts.iter().any(|o| o.val == VERSION) {
        out(&format!(
            "{prog} (ebsim {}): the coreutils 9.1 command inside an ebsim instance\n",
            env!("CARGO_PKG_VERSION")
        ));
        return Err(AppletError::new(0, ""));
    }
    let back = |s: String| -> OsString {
        if let Some(i) = s.strip_prefix('\0').and_then(|i| i.parse::<usize>().ok()) {
            if let Some(a) = rest.get(i) {
                return a.clone();
            }
        }
        OsString::from(s)
    };
    Ok(Parsed {
        opts,
        operands: operands.into_iter().map(back).collect(),
    })
}

/// A missing operand: `PROG: missing operand` and the Try line.
pub fn missing_operand(prog: &str) -> AppletError {
    usage_error(prog, "missing operand", 1)
}

/// `PROG: MESSAGE` and the Try line; status `code`.
pub fn usage_error(prog: &str, msg: &str, code: i32) -> AppletError {
    AppletError::new(
        code,
        format!("{prog}: {msg}\nTry '{prog} --help' for more information.\n"),
    )
}

/// An operand as bytes.
pub fn bytes(a: &OsStr) -> &[u8] {
    a.as_bytes()
}
