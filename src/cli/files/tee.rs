//! `tee` (coreutils 9.1) inside an instance: standard input to standard
//! output and to each FILE (truncated, or appended to with -a); `-` is a
//! file named `-`, as in 9.1. A file that cannot be opened or written is
//! reported (`tee: FILE: REASON`) and dropped; the others go on.

use super::common::{HostDev, start, strerror};
use super::opts::{self, Flag};
use crate::cli::error::{AppletError, finish};
use crate::cli::output::err;
use ebsim::compat::quote::quotef;
use ebsim::guest::vfs::{Loc, OpenFlags};
use std::ffi::OsString;
use std::io::{Read, Write};

const HELP: &str = "Usage: tee [OPTION]... [FILE]...
Copies standard input to standard output and to each FILE of the instance.

  -a, --append              append to the FILEs instead of overwriting them
  -i, --ignore-interrupts   ignored
  -p                        ignored
      --output-error[=MODE] ignored
      --help                show this help
      --version             show the version
";

enum Sink {
    Guest { loc: Loc, off: u64 },
    Host(HostDev),
}

/// `tee`.
pub fn run(args: Vec<OsString>) -> i32 {
    finish(main(args), String::new)
}

fn main(args: Vec<OsString>) -> Result<i32, AppletError> {
    let prog = "tee";
    let long = [
        Flag::flag("append", 'a'),
        Flag::flag("ignore-interrupts", 'i'),
        Flag::optional("output-error", '\u{1}'),
    ];
    let parsed = opts::parse(prog, &args, "aip", &long, HELP)?;
    let append = parsed.opts.iter().any(|o| o.val == 'a');
    let utf8 = super::common::utf8_locale();
    let names = super::common::arg_bytes(&parsed.operands);
    let needs_guest = names.iter().any(|n| HostDev::of(n).is_none());
    let mut session = if needs_guest {
        Some(start(prog, true)?)
    } else {
        None
    };
    let mut code = 0;
    let mut sinks: Vec<(Vec<u8>, Option<Sink>)> = Vec::new();
    for n in &names {
        if let Some(d) = HostDev::of(n) {
            sinks.push((n.clone(), Some(Sink::Host(d))));
            continue;
        }
        let Some(s) = session.as_mut() else { continue };
        let flags = OpenFlags {
            write: true,
            create: true,
            trunc: !append,
            mode: 0o666,
            ..OpenFlags::default()
        };
        match s.vfs.open(n, flags) {
            Ok(o) => {
                let off = if append { o.stat.attr.size } else { 0 };
                sinks.push((
                    n.clone(),
                    Some(Sink::Guest {
                        loc: o.stat.loc,
                        off,
                    }),
                ));
            }
            Err(e) => {
                err(&format!("{prog}: {}: {}\n", quotef(n, utf8), strerror(&e)));
                code = 1;
            }
        }
    }
    let mut stdout_ok = true;
    let mut buf = vec![0u8; 8192];
    let mut stdin = std::io::stdin().lock();
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                err(&format!("{prog}: -: {}\n", super::common::io_strerror(&e)));
                code = 1;
                break;
            }
        };
        let data = &buf[..n];
        if stdout_ok {
            let mut o = std::io::stdout().lock();
            if let Err(e) = o.write_all(data).and_then(|()| o.flush()) {
                stdout_ok = false;
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    err(&format!(
                        "{prog}: 'standard output': {}\n",
                        super::common::io_strerror(&e)
                    ));
                }
                code = 1;
            }
        }
        for (name, sink) in sinks.iter_mut() {
            let failed = match sink {
                None => continue,
                Some(Sink::Host(d)) => d
                    .write_all(data)
                    .err()
                    .map(|e| super::common::io_strerror(&e)),
                Some(Sink::Guest { loc, off }) => {
                    let Some(s) = session.as_mut() else { continue };
                    let mut done = 0;
                    let mut failure = None;
                    while done < data.len() {
                        match s.vfs.write(*loc, *off, &data[done..]) {
                            Ok(0) => {
                                failure = Some(strerror(&ebsim::fs::node::NodeError::new(
                                    ebsim::fs::node::ErrorKind::NoSpace,
                                )));
                                break;
                            }
                            Ok(w) => {
                                done += w;
                                *off += w as u64;
                            }
                            Err(e) => {
                                failure = Some(strerror(&e));
                                break;
                            }
                        }
                    }
                    failure
                }
            };
            if let Some(why) = failed {
                err(&format!("{prog}: {}: {why}\n", quotef(name, utf8)));
                code = 1;
                *sink = None;
            }
        }
        if !stdout_ok && sinks.iter().all(|(_, s)| s.is_none()) {
            break;
        }
    }
    match session.as_mut() {
        Some(s) => super::common::sync(prog, s, code),
        None => Ok(code),
    }
}
