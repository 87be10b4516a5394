//! `touch` (coreutils 9.1) inside an instance: create or stamp files,
//! with -a, -c, -d DATE, -h, -m, -r FILE, -t STAMP, --time=WORD. As the
//! real one: open with `O_CREAT` (its failure reported only when setting
//! the times fails too, as "cannot touch"), then `futimens` or
//! `utimensat`.

use super::common::{start, strerror};
use super::opts::{self, Flag};
use crate::cli::error::{AppletError, finish};
use crate::cli::output::err;
use ebsim::compat::date;
use ebsim::compat::quote::{quote, quoteaf};
use ebsim::fs::node::{ErrorKind, Timespec};
use ebsim::guest::vfs::{OpenFlags, TimeSet};
use std::ffi::OsString;

const HELP: &str = "Usage: touch [OPTION]... FILE...
Sets the access and modification times of each FILE in the instance to now
(or to a given time), making an empty FILE when there is none.

  -a                     change only the access time
  -c, --no-create        make no file
  -d, --date=STRING      use STRING (2024-01-31 12:00, @SECONDS, 2 days ago)
  -f                     ignored
  -h, --no-dereference   change a symlink itself
  -m                     change only the modification time
  -r, --reference=FILE   use FILE's times
  -t STAMP               use [[CC]YY]MMDDhhmm[.ss]
      --time=WORD        access, atime, use: as -a; modify, mtime: as -m
      --help             show this help
      --version          show the version
";

/// `touch`.
pub fn run(args: Vec<OsString>) -> i32 {
    finish(main(args), String::new)
}

fn main(args: Vec<OsString>) -> Result<i32, AppletError> {
    let prog = "touch";
    let long = [
        Flag::flag("no-create", 'c'),
        Flag::arg("date", 'd'),
        Flag::flag("no-dereference", 'h'),
        Flag::arg("reference", 'r'),
        Flag::arg("time", '\u{1}'),
    ];
    let parsed = opts::parse(prog, &args, "acd:fhmr:t:", &long, HELP)?;
    let utf8 = super::common::utf8_locale();
    let (mut atime, mut mtime, mut no_create, mut no_deref) = (false, false, false, false);
    let mut date: Option<String> = None;
    let mut stamp: Option<String> = None;
    let mut reference: Option<String> = None;
    let mut sources = 0;
    for o in &parsed.opts {
        match o.val {
            'a' => atime = true,
            'm' => mtime = true,
            'c' => no_create = true,
            'h' => no_deref = true,
            'd' => {
                date = o.arg.clone();
                sources += 1;
            }
            't' => {
                stamp = o.arg.clone();
                sources += 1;
            }
            'r' => {
                reference = o.arg.clone();
                sources += 1;
            }
            '\u{1}' => match o.arg.as_deref() {
                Some("access" | "atime" | "use") => atime = true,
                Some("modify" | "mtime") => mtime = true,
                Some(w) => {
                    let list = "Valid arguments are:\n  - \u{2018}atime\u{2019}, \u{2018}access\u{2019}, \u{2018}use\u{2019}\n  - \u{2018}mtime\u{2019}, \u{2018}modify\u{2019}\n";
                    let list = if utf8 {
                        list.to_string()
                    } else {
                        list.replace(['\u{2018}', '\u{2019}'], "'")
                    };
                    return Err(AppletError::new(
                        1,
                        format!(
                            "{prog}: invalid argument {} for \u{2018}--time\u{2019}\n{list}{}",
                            quote(w.as_bytes(), utf8),
                            super::common::try_help(prog)
                        ),
                    ));
                }
                None => {}
            },
            _ => {}
        }
    }
    if sources > 1 {
        return Err(opts::usage_error(
            prog,
            "cannot specify times from more than one source",
            1,
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
    if !atime && !mtime {
        atime = true;
        mtime = true;
    }
    let mut s = start(prog, true)?;
    let now = s.vfs.now();
    // The times to set: (atime, mtime); None means now.
    let (at, mt): (Option<Timespec>, Option<Timespec>) = if let Some(d) = &date {
        match date::parse_date(d, now) {
            Some(t) => (Some(t), Some(t)),
            None => {
                return Err(AppletError::new(
                    1,
                    format!(
                        "{prog}: invalid date format {}\n",
                        quote(d.as_bytes(), utf8)
                    ),
                ));
            }
        }
    } else if let Some(t) = &stamp {
        match date::parse_stamp(t, now) {
            Some(t) => (Some(t), Some(t)),
            None => {
                return Err(AppletError::new(
                    1,
                    format!(
                        "{prog}: invalid date format {}\n",
                        quote(t.as_bytes(), utf8)
                    ),
                ));
            }
        }
    } else if let Some(r) = &reference {
        let st = if no_deref {
            s.vfs.lstat(r.as_bytes())
        } else {
            s.vfs.stat(r.as_bytes())
        };
        match st {
            Ok(st) => (Some(st.attr.atime), Some(st.attr.mtime)),
            Err(e) => {
                return Err(AppletError::new(
                    1,
                    format!(
                        "{prog}: failed to get attributes of {}: {}\n",
                        quoteaf(r.as_bytes(), utf8),
                        strerror(&e)
                    ),
                ));
            }
        }
    } else {
        (None, None)
    };
    let pick = |on: bool, t: Option<Timespec>| match (on, t) {
        (false, _) => TimeSet::Omit,
        (true, None) => TimeSet::Now,
        (true, Some(t)) => TimeSet::At(t),
    };
    let (a, m) = (pick(atime, at), pick(mtime, mt));
    let mut code = 0;
    for f in &parsed.operands {
        let path = opts::bytes(f);
        let mut open_err = None;
        let mut opened = None;
        if !no_create && !no_deref {
            let flags = OpenFlags {
                write: true,
                create: true,
                mode: 0o666,
                ..OpenFlags::default()
            };
            match s.vfs.open(path, flags) {
                Ok(o) => opened = Some(o.stat.loc),
                Err(e) => open_err = Some(e),
            }
        }
        let r = match opened {
            Some(loc) => s.vfs.futimens(loc, a, m),
            None => s.vfs.utimens(path, a, m, !no_deref),
        };
        if let Err(e) = r {
            if let Some(oe) = open_err {
                err(&format!(
                    "{prog}: cannot touch {}: {}\n",
                    quoteaf(path, utf8),
                    strerror(&oe)
                ));
            } else if no_create && e.kind() == ErrorKind::NotFound {
                continue;
            } else {
                err(&format!(
                    "{prog}: setting times of {}: {}\n",
                    quoteaf(path, utf8),
                    strerror(&e)
                ));
            }
            code = 1;
        }
    }
    super::common::sync(prog, &mut s, code)
}
