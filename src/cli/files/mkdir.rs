//! `mkdir` (coreutils 9.1) inside an instance: `-p` (parents as
//! needed, no error for an existing directory), `-m MODE` (the exact mode,
//! octal or symbolic, of the last directory), `-v`.

use super::common::{Session, start, strerror};
use super::opts::{self, Flag};
use crate::cli::error::{AppletError, finish};
use crate::cli::output::{err, out};
use ebsim::compat::mode;
use ebsim::compat::quote::{quote, quoteaf};
use ebsim::fs::node::{ErrorKind, FileType};
use std::ffi::OsString;

const HELP: &str = "Usage: mkdir [OPTION]... DIRECTORY...
Makes each DIRECTORY in the instance's filesystems.

  -m, --mode=MODE   the mode of the new directories (as chmod takes it),
                    instead of 0777 less the umask
  -p, --parents     make the parent directories as needed; an existing
                    directory is not an error
  -v, --verbose     say which directory was made
      --help        show this help
      --version     show the version
";

/// `mkdir`.
pub fn run(args: Vec<OsString>) -> i32 {
    finish(main(args), String::new)
}

fn main(args: Vec<OsString>) -> Result<i32, AppletError> {
    let prog = "mkdir";
    let long = [
        Flag::arg("mode", 'm'),
        Flag::flag("parents", 'p'),
        Flag::flag("verbose", 'v'),
        Flag::optional("context", 'Z'),
    ];
    let parsed = opts::parse(prog, &args, "pm:vZ", &long, HELP)?;
    let (mut parents, mut verbose, mut mode_arg) = (false, false, None);
    for o in &parsed.opts {
        match o.val {
            'p' => parents = true,
            'v' => verbose = true,
            'm' => mode_arg = o.arg.clone(),
            _ => {}
        }
    }
    if parsed.operands.is_empty() {
        return Err(opts::missing_operand(prog));
    }
    let utf8 = super::common::utf8_locale();
    let mode = match &mode_arg {
        Some(m) => match mode::parse(m) {
            Some(v) => Some(v),
            None => {
                return Err(AppletError::new(
                    1,
                    format!("{prog}: invalid mode {}\n", quote(m.as_bytes(), utf8)),
                ));
            }
        },
        None => None,
    };
    let mut s = start(prog, true)?;
    let mut code = 0;
    for d in &parsed.operands {
        let path = opts::bytes(d);
        if let Err((at, e)) = make(&mut s, path, parents, verbose, mode.as_ref()) {
            err(&format!(
                "{prog}: cannot create directory {}: {e}\n",
                quote(&at, utf8)
            ));
            code = 1;
        }
    }
    super::common::sync(prog, &mut s, code)
}

fn announce(path: &[u8], verbose: bool) {
    if verbose {
        out(&format!(
            "mkdir: created directory {}\n",
            quoteaf(path, super::common::utf8_locale())
        ));
    }
}

/// Makes `path`; Err: the directory that failed and why.
fn make(
    s: &mut Session,
    path: &[u8],
    parents: bool,
    verbose: bool,
    mode: Option<&mode::Mode>,
) -> Result<(), (Vec<u8>, String)> {
    let umask = s.vfs.umask();
    if parents {
        // Each ancestor: made (0777 less the umask, plus u+wx), or an
        // existing directory.
        let mut prefix: Vec<u8> = Vec::new();
        let comps: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
        let last_real = comps.iter().rposition(|c| !c.is_empty()).unwrap_or(0);
        if path.starts_with(b"/") {
            prefix.push(b'/');
        }
        for (i, c) in comps.iter().enumerate() {
            if c.is_empty() {
                continue;
            }
            if i >= last_real {
                break;
            }
            if !prefix.is_empty() && !prefix.ends_with(b"/") {
                prefix.push(b'/');
            }
            prefix.extend_from_slice(c);
            if *c == b"." || *c == b".." {
                continue;
            }
            match s.vfs.mkdir(&prefix, (0o777 & !umask) | 0o300) {
                Ok(st) => {
                    let want = (0o777 & !umask) | 0o300;
                    if st.attr.perm & 0o777 != want {
                        let _ = s.vfs.chmod(&prefix, want | (st.attr.perm & 0o7000), true);
                    }
                    announce(&prefix, verbose);
                }
                Err(e) if e.kind() == ErrorKind::Exists => match s.vfs.stat(&prefix) {
                    Ok(st) if st.attr.kind == FileType::Directory => {}
                    Ok(_) => return Err((prefix, ErrorKind::NotADirectory.message().into())),
                    Err(e) => return Err((prefix, strerror(&e))),
                },
                Err(e) => return Err((prefix, strerror(&e))),
            }
        }
    }
    let perm = match mode {
        Some(m) => mode::apply(m, 0o777, true, umask),
        None => 0o777,
    };
    match s.vfs.mkdir(path, perm & 0o1777) {
        Ok(st) => {
            announce(path, verbose);
            if mode.is_some() && st.attr.perm != perm {
                s.vfs
                    .chmod(path, perm, true)
                    .map_err(|e| (path.to_vec(), strerror(&e)))?;
            }
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::Exists && parents => match s.vfs.stat(path) {
            Ok(st) if st.attr.kind == FileType::Directory => Ok(()),
            _ => Err((path.to_vec(), strerror(&e))),
        },
        Err(e) => Err((path.to_vec(), strerror(&e))),
    }
}
