//! `rm` (coreutils 9.1) inside an instance: -f, -i, -I, -r/-R, -d, -v,
//! --preserve-root (the default) and --no-preserve-root. Recursive removal
//! is depth first; a directory whose entry could not be removed is left
//! without a second message, as rm's traversal does. Without -f, a file the
//! caller may not write is removed only after a yes when standard input is
//! a terminal (rm asks only then).

use super::common::{Session, start, strerror};
use super::opts::{self, Flag};
use crate::cli::error::{AppletError, finish};
use crate::cli::output::err;
use ebsim::compat::quote::quoteaf;
use ebsim::fs::node::{ErrorKind, FileType, NodeError};
use ebsim::guest::vfs::Stat;
use ebsim::guest::vfs::perm::Want;
use std::ffi::OsString;
use std::io::{BufRead, IsTerminal};

const HELP: &str = "Usage: rm [OPTION]... [FILE]...
Removes each FILE of the instance (directories with -r or, when empty, -d).

  -f, --force           ignore missing files, never ask
  -i                    ask before every removal
  -I                    ask once before removing more than three files or
                        recursively
  -r, -R, --recursive   remove directories and what they hold
  -d, --dir             remove empty directories
  -v, --verbose         say what was removed
      --no-preserve-root  do not treat / specially
      --preserve-root   refuse to remove / recursively (the default)
      --help            show this help
      --version         show the version
";

#[derive(Clone, Copy)]
struct Opts {
    force: bool,
    interactive: bool,
    recursive: bool,
    dir: bool,
    verbose: bool,
    preserve_root: bool,
    tty: bool,
    utf8: bool,
}

/// `rm`.
pub fn run(args: Vec<OsString>) -> i32 {
    finish(main(args), String::new)
}

fn main(args: Vec<OsString>) -> Result<i32, AppletError> {
    let prog = "rm";
    let long = [
        Flag::flag("force", 'f'),
        Flag::flag("recursive", 'r'),
        Flag::flag("dir", 'd'),
        Flag::flag("verbose", 'v'),
        Flag::optional("interactive", '\u{1}'),
        Flag::flag("no-preserve-root", '\u{2}'),
        Flag::optional("preserve-root", '\u{3}'),
        Flag::flag("one-file-system", '\u{4}'),
    ];
    let parsed = opts::parse(prog, &args, "dfirvIR", &long, HELP)?;
    let mut o = Opts {
        force: false,
        interactive: false,
        recursive: false,
        dir: false,
        verbose: false,
        preserve_root: true,
        tty: std::io::stdin().is_terminal(),
        utf8: super::common::utf8_locale(),
    };
    let mut prompt_once = false;
    for p in &parsed.opts {
        match p.val {
            'f' => {
                o.force = true;
                o.interactive = false;
                prompt_once = false;
            }
            'i' => {
                o.interactive = true;
                o.force = false;
            }
            'I' => {
                prompt_once = true;
                o.interactive = false;
                o.force = false;
            }
            '\u{1}' => match p.arg.as_deref() {
                None | Some("always" | "yes") => {
                    o.interactive = true;
                    o.force = false;
                }
                Some("once") => prompt_once = true,
                _ => {}
            },
            'r' | 'R' => o.recursive = true,
            'd' => o.dir = true,
            'v' => o.verbose = true,
            '\u{2}' => o.preserve_root = false,
            '\u{3}' => o.preserve_root = true,
            _ => {}
        }
    }
    if parsed.operands.is_empty() {
        if o.force {
            return Ok(0);
        }
        return Err(opts::missing_operand(prog));
    }
    let files = super::common::arg_bytes(&parsed.operands);
    if prompt_once && (o.recursive || files.len() > 3) {
        let what = if o.recursive {
            format!(
                "{prog}: remove {} argument{} recursively? ",
                files.len(),
                if files.len() == 1 { "" } else { "s" }
            )
        } else {
            format!("{prog}: remove {} arguments? ", files.len())
        };
        if !ask(&what) {
            return Ok(0);
        }
    }
    let mut s = start(prog, true)?;
    let mut code = 0;
    for f in &files {
        if !remove_top(&mut s, f, o) {
            code = 1;
        }
    }
    super::common::sync(prog, &mut s, code)
}

/// Asks on stderr; true for an answer starting with y or Y.
fn ask(question: &str) -> bool {
    err(question);
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim_start().chars().next(), Some('y' | 'Y'))
}

fn last_component(p: &[u8]) -> &[u8] {
    let t = {
        let mut e = p.len();
        while e > 1 && p[e - 1] == b'/' {
            e -= 1;
        }
        &p[..e]
    };
    match t.iter().rposition(|&b| b == b'/') {
        Some(i) if i + 1 < t.len() => &t[i + 1..],
        _ => t,
    }
}

fn remove_top(s: &mut Session, path: &[u8], o: Opts) -> bool {
    let last = last_component(path);
    if o.recursive && (last == b"." || last == b"..") {
        err(&format!(
            "rm: refusing to remove '.' or '..' directory: skipping {}\n",
            quoteaf(path, o.utf8)
        ));
        return false;
    }
    if o.recursive && o.preserve_root && s.vfs.realpath(path).ok().as_deref() == Some(b"/") {
        if path == b"/" {
            err("rm: it is dangerous to operate recursively on '/'\n");
        } else {
            err(&format!(
                "rm: it is dangerous to operate recursively on {} (same as '/')\n",
                quoteaf(path, o.utf8)
            ));
        }
        err("rm: use --no-preserve-root to override this failsafe\n");
        return false;
    }
    let st = match s.vfs.lstat(path) {
        Ok(st) => st,
        Err(e) => {
            if o.force && e.kind() == ErrorKind::NotFound {
                return true;
            }
            fail(path, &e, o);
            return false;
        }
    };
    remove(s, path, &st, o)
}

fn fail(path: &[u8], e: &NodeError, o: Opts) {
    err(&format!(
        "rm: cannot remove {}: {}\n",
        quoteaf(path, o.utf8),
        strerror(e)
    ));
}

fn type_words(st: &Stat) -> &'static str {
    match st.attr.kind {
        FileType::Regular if st.attr.size == 0 => "regular empty file",
        FileType::Regular => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symbolic link",
        FileType::Fifo => "fifo",
        FileType::Socket => "socket",
        FileType::CharDevice => "character special file",
        FileType::BlockDevice => "block special file",
    }
}

/// Whether to go on with `path` after asking, as rm's `prompt` decides.
fn confirm(s: &mut Session, path: &[u8], st: &Stat, o: Opts, descend: bool) -> bool {
    if o.force {
        return true;
    }
    let protected = st.attr.kind != FileType::Symlink && !s.vfs.permitted(st, Want::WRITE);
    if !(o.interactive || (protected && o.tty)) {
        return true;
    }
    let q = if descend {
        format!(
            "rm: descend into {}directory {}? ",
            if protected { "write-protected " } else { "" },
            quoteaf(path, o.utf8)
        )
    } else {
        format!(
            "rm: remove {}{} {}? ",
            if protected { "write-protected " } else { "" },
            type_words(st),
            quoteaf(path, o.utf8)
        )
    };
    ask(&q)
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = dir.to_vec();
    if !p.ends_with(b"/") {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

fn verbose(path: &[u8], dir: bool, o: Opts) {
    if o.verbose {
        crate::cli::output::out(&format!(
            "removed {}{}\n",
            if dir { "directory " } else { "" },
            quoteaf(path, o.utf8)
        ));
    }
}

/// Removes `path` (lstat `st`); false when it (or something in it) stays.
fn remove(s: &mut Session, path: &[u8], st: &Stat, o: Opts) -> bool {
    if st.attr.kind != FileType::Directory {
        if !confirm(s, path, st, o, false) {
            return true;
        }
        return match s.vfs.unlink(path) {
            Ok(()) => {
                verbose(path, false, o);
                true
            }
            Err(e) => {
                fail(path, &e, o);
                false
            }
        };
    }
    if !o.recursive {
        if o.dir {
            if !confirm(s, path, st, o, false) {
                return true;
            }
            return match s.vfs.rmdir(path) {
                Ok(()) => {
                    verbose(path, true, o);
                    true
                }
                Err(e) => {
                    fail(path, &e, o);
                    false
                }
            };
        }
        fail(path, &NodeError::new(ErrorKind::IsADirectory), o);
        return false;
    }
    let entries = match s.vfs.readdir(path) {
        Ok((_, e)) => Ok(e),
        Err(e) => Err(e),
    };
    if let Ok(e) = &entries {
        if !e.is_empty() && !confirm(s, path, st, o, true) {
            return true;
        }
    }
    let mut ok = true;
    match entries {
        Ok(list) => {
            for d in list {
                let p = join(path, &d.name);
                match s.vfs.lstat(&p) {
                    Ok(cst) => {
                        if !remove(s, &p, &cst, o) {
                            ok = false;
                        }
                    }
                    Err(e) => {
                        fail(&p, &e, o);
                        ok = false;
                    }
                }
            }
        }
        Err(read_err) => {
            // An unreadable directory: removed when empty, else its read
            // error is the one reported.
            if !confirm(s, path, st, o, false) {
                return true;
            }
            return match s.vfs.rmdir(path) {
                Ok(()) => {
                    verbose(path, true, o);
                    true
                }
                Err(e) => {
                    let shown = if e.kind() == ErrorKind::DirectoryNotEmpty {
                        read_err
                    } else {
                        e
                    };
                    fail(path, &shown, o);
                    false
                }
            };
        }
    }
    if !ok {
        return false;
    }
    if o.interactive && !confirm(s, path, st, o, false) {
        return true;
    }
    match s.vfs.rmdir(path) {
        Ok(()) => {
            verbose(path, true, o);
            true
        }
        Err(e) => {
            fail(path, &e, o);
            false
        }
    }
}
