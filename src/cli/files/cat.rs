//! `cat` (coreutils 9.1) inside an instance: guest files, `-` (stdin) and
//! the host's harmless devices, with -A -b -e -E -n -s -t -T -u -v.

use super::common::{HostDev, Session, Stdout, arg_bytes, start, strerror};
use crate::cli::error::{AppletError, finish};
use crate::cli::files::opts::{self, Flag};
use crate::cli::output::err;
use ebsim::compat::quote::quotef;
use ebsim::fs::node::{ErrorKind, NodeError};
use ebsim::guest::vfs::{Loc, OpenFlags};
use std::ffi::OsString;

const HELP: &str = "Usage: cat [OPTION]... [FILE]...
Writes each FILE of the instance (or standard input for - or no FILE) to
standard output.

  -A, --show-all           same as -vET
  -b, --number-nonblank    number the lines that are not empty
  -e                       same as -vE
  -E, --show-ends          show $ at the end of each line
  -n, --number             number every line
  -s, --squeeze-blank      print one empty line for several
  -t                       same as -vT
  -T, --show-tabs          show tabs as ^I
  -u                       ignored
  -v, --show-nonprinting   show control and high bytes as ^X and M-X
      --help               show this help
      --version            show the version
";

const LONG: &[Flag] = &[
    Flag::flag("show-all", 'A'),
    Flag::flag("number-nonblank", 'b'),
    Flag::flag("show-ends", 'E'),
    Flag::flag("number", 'n'),
    Flag::flag("squeeze-blank", 's'),
    Flag::flag("show-tabs", 'T'),
    Flag::flag("show-nonprinting", 'v'),
];

#[derive(Default)]
struct Opts {
    number: bool,
    nonblank: bool,
    ends: bool,
    squeeze: bool,
    tabs: bool,
    nonprinting: bool,
}

impl Opts {
    fn plain(&self) -> bool {
        !(self.number
            || self.nonblank
            || self.ends
            || self.squeeze
            || self.tabs
            || self.nonprinting)
    }
}

/// The state of the line-by-line rendering across files (cat numbers
/// lines across its inputs).
struct Render {
    line: u64,
    at_line_start: bool,
    blanks: u32,
}

impl Render {
    fn feed(&mut self, o: &Opts, data: &[u8], out: &mut Vec<u8>) {
        for &b in data {
            if self.at_line_start {
                if b == b'\n' {
                    self.blanks += 1;
                    if o.squeeze && self.blanks > 1 {
                        continue;
                    }
                } else {
                    self.blanks = 0;
                }
                if o.nonblank {
                    if b != b'\n' {
                        self.line += 1;
                        out.extend_from_slice(format!("{:>6}\t", self.line).as_bytes());
                    }
                } else if o.number {
                    self.line += 1;
                    out.extend_from_slice(format!("{:>6}\t", self.line).as_bytes());
                }
                self.at_line_start = false;
            }
            match b {
                b'\n' => {
                    if o.ends {
                        out.push(b'$');
                    }
                    out.push(b'\n');
                    self.at_line_start = true;
                }
                b'\t' if o.tabs => out.extend_from_slice(b"^I"),
                b'\t' => out.push(b'\t'),
                _ if o.nonprinting => {
                    let mut c = b;
                    if c >= 128 {
                        out.extend_from_slice(b"M-");
                        c -= 128;
                    }
                    if c < 32 {
                        out.push(b'^');
                        out.push(c + 64);
                    } else if c == 127 {
                        out.extend_from_slice(b"^?");
                    } else {
                        out.push(c);
                    }
                }
                _ => out.push(b),
            }
        }
    }
}

/// `cat`.
pub fn run(args: Vec<OsString>) -> i32 {
    finish(main(args), String::new)
}

fn main(args: Vec<OsString>) -> Result<i32, AppletError> {
    let prog = "cat";
    let parsed = opts::parse(prog, &args, "AbeEnstTuv", LONG, HELP)?;
    let mut o = Opts::default();
    for p in &parsed.opts {
        match p.val {
            'A' => {
                o.nonprinting = true;
                o.ends = true;
                o.tabs = true;
            }
            'b' => o.nonblank = true,
            'e' => {
                o.nonprinting = true;
                o.ends = true;
            }
            'E' => o.ends = true,
            'n' => o.number = true,
            's' => o.squeeze = true,
            't' => {
                o.nonprinting = true;
                o.tabs = true;
            }
            'T' => o.tabs = true,
            'v' => o.nonprinting = true,
            _ => {}
        }
    }
    let mut files = arg_bytes(&parsed.operands);
    if files.is_empty() {
        files.push(b"-".to_vec());
    }
    let needs_guest = files.iter().any(|f| f != b"-" && HostDev::of(f).is_none());
    let mut session = if needs_guest {
        Some(start(prog, false)?)
    } else {
        None
    };
    let mut out = Stdout::new();
    let mut render = Render {
        line: 0,
        at_line_start: true,
        blanks: 0,
    };
    let mut code = 0;
    for f in &files {
        if let Err(msg) = cat_one(session.as_mut(), f, &o, &mut render, &mut out) {
            out.flush();
            err(&format!(
                "{prog}: {}: {msg}\n",
                quotef(f, super::common::utf8_locale())
            ));
            code = 1;
        }
        if out.failed() {
            break;
        }
    }
    Ok(out.finish(prog, code))
}

fn cat_one(
    session: Option<&mut Session>,
    name: &[u8],
    o: &Opts,
    render: &mut Render,
    out: &mut Stdout,
) -> Result<(), String> {
    let mut buf = vec![0u8; 128 << 10];
    let mut rendered = Vec::new();
    let mut emit = |data: &[u8], out: &mut Stdout| {
        if o.plain() {
            out.bytes(data);
        } else {
            rendered.clear();
            render.feed(o, data, &mut rendered);
            out.bytes(&rendered);
        }
    };
    let host = if name == b"-" {
        Some(HostDev::Stdin)
    } else {
        HostDev::of(name)
    };
    if let Some(dev) = host {
        if dev == HostDev::Zero || dev == HostDev::Random {
            // Endless: until stdout fails, as the real cat.
            loop {
                let n = dev
                    .read(&mut buf)
                    .map_err(|e| super::common::io_strerror(&e))?;
                emit(&buf[..n], out);
                if out.failed() || n == 0 {
                    return Ok(());
                }
            }
        }
        loop {
            let n = dev
                .read(&mut buf)
                .map_err(|e| super::common::io_strerror(&e))?;
            if n == 0 {
                return Ok(());
            }
            emit(&buf[..n], out);
        }
    }
    let Some(s) = session else {
        return Err(strerror(&NodeError::new(ErrorKind::NotFound)));
    };
    let f = s
        .vfs
        .open(name, OpenFlags::read())
        .map_err(|e| strerror(&e))?;
    let loc: Loc = f.stat.loc;
    let mut off = 0u64;
    loop {
        let n = s.vfs.read(loc, off, &mut buf).map_err(|e| strerror(&e))?;
        if n == 0 {
            return Ok(());
        }
        off += n as u64;
        emit(&buf[..n], out);
        if out.failed() {
            return Ok(());
        }
    }
}
