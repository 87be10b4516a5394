//! `sha256sum` (coreutils 9.1) inside an instance: sums of guest files and
//! standard input (`HASH  NAME`, a name with a newline or backslash
//! escaped and the line marked with `\`), and -c FILE: `NAME: OK`,
//! `NAME: FAILED`, `NAME: FAILED open or read`, then the warnings; with
//! --quiet, --status, --strict, -w.

use super::common::{HostDev, Session, Stdout, start, strerror};
use super::opts::{self, Flag};
use crate::cli::error::{AppletError, finish};
use crate::cli::output::err;
use ebsim::guest::vfs::OpenFlags;
use sha2::{Digest, Sha256};
use std::ffi::OsString;

const HELP: &str = "Usage: sha256sum [OPTION]... [FILE]...
Prints or checks SHA-256 sums of files of the instance (standard input
for - or no FILE).

  -b, --binary          read in binary mode (the same here)
  -c, --check           check the sums listed in the FILEs
  -t, --text            read in text mode (the default)
      --ignore-missing  with -c, no report for missing files
      --quiet           with -c, no OK lines
      --status          with -c, only the exit status
      --strict          with -c, improperly formatted lines fail
  -w, --warn            with -c, warn about improperly formatted lines
      --help            show this help
      --version         show the version
";

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of a guest file, stdin (`-`) or a host device; Err: why.
fn digest(s: Option<&mut Session>, name: &[u8]) -> Result<String, String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let host = if name == b"-" {
        Some(HostDev::Stdin)
    } else {
        HostDev::of(name)
    };
    if let Some(d) = host {
        if matches!(d, HostDev::Zero | HostDev::Random) {
            return Err("ebsim does not sum endless devices".into());
        }
        loop {
            let n = d
                .read(&mut buf)
                .map_err(|e| super::common::io_strerror(&e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        return Ok(hex(&h.finalize()));
    }
    let s = s.ok_or_else(|| "no instance".to_string())?;
    let f = s
        .vfs
        .open(name, OpenFlags::read())
        .map_err(|e| strerror(&e))?;
    let mut off = 0u64;
    loop {
        let n = s
            .vfs
            .read(f.stat.loc, off, &mut buf)
            .map_err(|e| strerror(&e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        off += n as u64;
    }
    Ok(hex(&h.finalize()))
}

/// `sha256sum`.
pub fn run(args: Vec<OsString>) -> i32 {
    finish(main(args), String::new)
}

fn main(args: Vec<OsString>) -> Result<i32, AppletError> {
    let prog = "sha256sum";
    let long = [
        Flag::flag("binary", 'b'),
        Flag::flag("check", 'c'),
        Flag::flag("text", 't'),
        Flag::flag("ignore-missing", '\u{1}'),
        Flag::flag("quiet", '\u{2}'),
        Flag::flag("status", '\u{3}'),
        Flag::flag("strict", '\u{4}'),
        Flag::flag("warn", 'w'),
        Flag::flag("tag", '\u{5}'),
        Flag::flag("zero", 'z'),
    ];
    let parsed = opts::parse(prog, &args, "bctwz", &long, HELP)?;
    let has = |v: char| parsed.opts.iter().any(|o| o.val == v);
    let (check, ignore_missing, quiet, status, strict, warn, tag) = (
        has('c'),
        has('\u{1}'),
        has('\u{2}'),
        has('\u{3}'),
        has('\u{4}'),
        has('w'),
        has('\u{5}'),
    );
    // -b/-t/--tag in order: --tag selects binary mode, as in md5sum.c.
    let mut binary: Option<bool> = None;
    for o in &parsed.opts {
        match o.val {
            'b' | '\u{5}' => binary = Some(true),
            't' => binary = Some(false),
            _ => {}
        }
    }
    // md5sum.c's checks of the combination, in its order.
    let conflict = if check && has('z') {
        Some("the --zero option is not supported when verifying checksums")
    } else if check && tag {
        Some("the --tag option is meaningless when verifying checksums")
    } else if check && binary.is_some() {
        Some("the --binary and --text options are meaningless when verifying checksums")
    } else if tag && binary == Some(false) {
        Some("--tag does not support --text mode")
    } else if ignore_missing && !check {
        Some("the --ignore-missing option is meaningful only when verifying checksums")
    } else if status && !check {
        Some("the --status option is meaningful only when verifying checksums")
    } else if warn && !check {
        Some("the --warn option is meaningful only when verifying checksums")
    } else if quiet && !check {
        Some("the --quiet option is meaningful only when verifying checksums")
    } else if strict && !check {
        Some("the --strict option is meaningful only when verifying checksums")
    } else {
        None
    };
    if let Some(msg) = conflict {
        return Err(opts::usage_error(prog, msg, 1));
    }
    let files: Vec<Vec<u8>> = if parsed.operands.is_empty() {
        vec![b"-".to_vec()]
    } else {
        super::common::arg_bytes(&parsed.operands)
    };
    let needs_guest = files.iter().any(|f| f != b"-" && HostDev::of(f).is_none()) || check;
    let mut session = if needs_guest {
        Some(start(prog, false)?)
    } else {
        None
    };
    let mut out = Stdout::new();
    let mut code = 0;
    if !check {
        for f in &files {
            match digest(session.as_mut(), f) {
                Ok(h) => {
                    let name = String::from_utf8_lossy(f);
                    let escaped = name.contains('\n') || name.contains('\\');
                    let shown = if escaped {
                        name.replace('\\', "\\\\").replace('\n', "\\n")
                    } else {
                        name.into_owned()
                    };
                    if tag {
                        out.str(&format!(
                            "{}SHA256 ({shown}) = {h}\n",
                            if escaped { "\\" } else { "" }
                        ));
                    } else {
                        out.str(&format!(
                            "{}{h}  {shown}\n",
                            if escaped { "\\" } else { "" }
                        ));
                    }
                }
                Err(e) => {
                    out.flush();
                    err(&format!("{prog}: {}: {e}\n", String::from_utf8_lossy(f)));
                    code = 1;
                }
            }
        }
        return Ok(out.finish(prog, code));
    }
    for list in &files {
        let text = match read_all(session.as_mut(), list) {
            Ok(t) => t,
            Err(e) => {
                out.flush();
                err(&format!("{prog}: {}: {e}\n", String::from_utf8_lossy(list)));
                code = 1;
                continue;
            }
        };
        let (mut bad_lines, mut unreadable, mut mismatched, mut good) = (0u64, 0u64, 0u64, 0u64);
        for (lineno, raw) in text.split(|&b| b == b'\n').enumerate() {
            if raw.is_empty() {
                continue;
            }
            let line = String::from_utf8_lossy(raw);
            let Some((want, name)) = parse_line(&line) else {
                bad_lines += 1;
                if warn {
                    out.flush();
                    err(&format!(
                        "{prog}: {}: {}: improperly formatted SHA256 checksum line\n",
                        String::from_utf8_lossy(list),
                        lineno + 1
                    ));
                }
                continue;
            };
            good += 1;
            match digest(session.as_mut(), name.as_bytes()) {
                Ok(h) => {
                    if h == want {
                        if !quiet && !status {
                            out.str(&format!("{name}: OK\n"));
                        }
                    } else {
                        mismatched += 1;
                        if !status {
                            out.str(&format!("{name}: FAILED\n"));
                        }
                    }
                }
                Err(e) => {
                    if ignore_missing && e == ebsim::fs::node::ErrorKind::NotFound.message() {
                        continue;
                    }
                    unreadable += 1;
                    out.flush();
                    err(&format!("{prog}: {name}: {e}\n"));
                    if !status {
                        out.str(&format!("{name}: FAILED open or read\n"));
                    }
                }
            }
        }
        out.flush();
        if good == 0 {
            err(&format!(
                "{prog}: {}: no properly formatted checksum lines found\n",
                String::from_utf8_lossy(list)
            ));
            code = 1;
            continue;
        }
        if !status {
            let plural = |n: u64, one: &str, many: &str| {
                if n == 1 {
                    one.to_string()
                } else {
                    many.to_string()
                }
            };
            if bad_lines > 0 {
                err(&format!(
                    "{prog}: WARNING: {bad_lines} {} improperly formatted\n",
                    plural(bad_lines, "line is", "lines are")
                ));
            }
            if unreadable > 0 {
                err(&format!(
                    "{prog}: WARNING: {unreadable} listed {} could not be read\n",
                    plural(unreadable, "file", "files")
                ));
            }
            if mismatched > 0 {
                err(&format!(
                    "{prog}: WARNING: {mismatched} computed {} did NOT match\n",
                    plural(mismatched, "checksum", "checksums")
                ));
            }
        }
        if unreadable > 0 || mismatched > 0 || (strict && bad_lines > 0) {
            code = 1;
        }
    }
    Ok(out.finish(prog, code))
}

fn read_all(s: Option<&mut Session>, name: &[u8]) -> Result<Vec<u8>, String> {
    if name == b"-" {
        use std::io::Read;
        let mut v = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut v)
            .map_err(|e| super::common::io_strerror(&e))?;
        return Ok(v);
    }
    let s = s.ok_or_else(|| "no instance".to_string())?;
    let f = s
        .vfs
        .open(name, OpenFlags::read())
        .map_err(|e| strerror(&e))?;
    let mut v = vec![0u8; f.stat.attr.size.min(64 << 20) as usize];
    let mut off = 0;
    while off < v.len() {
        let n = s
            .vfs
            .read(f.stat.loc, off as u64, &mut v[off..])
            .map_err(|e| strerror(&e))?;
        if n == 0 {
            break;
        }
        off += n;
    }
    v.truncate(off);
    Ok(v)
}

/// `HASH  NAME`, `HASH *NAME`, `SHA256 (NAME) = HASH`, with a leading `\`
/// for escaped names. Returns (hash, name).
fn parse_line(line: &str) -> Option<(String, String)> {
    let (escaped, l) = match line.strip_prefix('\\') {
        Some(r) => (true, r),
        None => (false, line),
    };
    let unescape = |n: &str| -> String {
        if !escaped {
            return n.to_string();
        }
        let mut o = String::new();
        let mut it = n.chars();
        while let Some(c) = it.next() {
            if c == '\\' {
                match it.next() {
                    Some('n') => o.push('\n'),
                    Some('\\') => o.push('\\'),
                    Some(x) => {
                        o.push('\\');
                        o.push(x);
                    }
                    None => o.push('\\'),
                }
            } else {
                o.push(c);
            }
        }
        o
    };
    let is_hash = |h: &str| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(rest) = l.strip_prefix("SHA256 (") {
        let (name, hash) = rest.rsplit_once(") = ")?;
        return is_hash(hash).then(|| (hash.to_ascii_lowercase(), unescape(name)));
    }
    let hash = l.get(..64)?;
    if !is_hash(hash) {
        return None;
    }
    let rest = &l[64..];
    let name = rest
        .strip_prefix("  ")
        .or_else(|| rest.strip_prefix(" *"))?;
    if name.is_empty() {
        return None;
    }
    Some((hash.to_ascii_lowercase(), unescape(name)))
}
