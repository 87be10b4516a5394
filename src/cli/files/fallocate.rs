//! `fallocate` (util-linux 2.38) inside an instance: -l, -o, -n, -p, -d,
//! -x, -v (-c, -i and -z are refused as the filesystem layer has no such
//! modes: "Operation not supported"). A preallocation is unwritten
//! extents: the guest's `df` counts it, the image on the host stays sparse.
//! With no space for all of it, nothing is allocated and the command says
//! "fallocate failed: No space left on device", the file it created
//! staying empty.

use super::common::{start, strerror};
use super::opts::{self, Flag};
use crate::cli::error::{AppletError, finish};
use crate::cli::output::{err, out};
use ebsim::fs::node::{ErrorKind, FallocateMode, NodeError};
use ebsim::guest::human::size_3letter as human;
use ebsim::guest::vfs::{Loc, OpenFlags};
use std::ffi::OsString;

const HELP: &str = "Usage: fallocate [options] <filename>
Preallocates space to, or deallocates space from, a file of the instance.

 -d, --dig-holes      turn runs of zero blocks into holes
 -l, --length <num>   length in bytes (K, M, G ... KiB, KB suffixes)
 -n, --keep-size      keep the file's size
 -o, --offset <num>   offset in bytes
 -p, --punch-hole     free the range (keeps the size)
 -x, --posix          the same as a plain preallocation here
 -v, --verbose        say what was done
 -h, --help           show this help
 -V, --version        show the version
";

/// util-linux's `strtosize`: a number (with an optional decimal
/// fraction) and an optional suffix K M G T P E (either case; `iB` or
/// nothing: powers of 1024; `B`: powers of 1000).
pub fn strtosize(s: &str) -> Option<u64> {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(end);
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int: u64 = int.parse().ok()?;
    let (mult, _) = match suffix {
        "" => (1u64, 0),
        _ => {
            let mut ch = suffix.chars();
            let letter = ch.next()?.to_ascii_uppercase();
            let rest: String = ch.collect();
            let e = "KMGTPE".find(letter)? as u32 + 1;
            let base: u64 = match rest.as_str() {
                "" | "iB" => 1024,
                "B" => 1000,
                _ => return None,
            };
            (base.checked_pow(e)?, e)
        }
    };
    let mut v = int.checked_mul(mult)?;
    if !frac.is_empty() && mult > 1 {
        let digits = frac.len().min(18) as u32;
        let f: u64 = frac[..digits as usize].parse().ok()?;
        let add = u128::from(f) * u128::from(mult) / 10u128.pow(digits);
        v = v.checked_add(u64::try_from(add).ok()?)?;
    }
    Some(v)
}

/// `fallocate`.
pub fn run(args: Vec<OsString>) -> i32 {
    finish(main(args), String::new)
}

fn main(args: Vec<OsString>) -> Result<i32, AppletError> {
    let prog = "fallocate";
    let long = [
        Flag::flag("collapse-range", 'c'),
        Flag::flag("dig-holes", 'd'),
        Flag::flag("insert-range", 'i'),
        Flag::arg("length", 'l'),
        Flag::flag("keep-size", 'n'),
        Flag::arg("offset", 'o'),
        Flag::flag("punch-hole", 'p'),
        Flag::flag("zero-range", 'z'),
        Flag::flag("posix", 'x'),
        Flag::flag("verbose", 'v'),
    ];
    let args: Vec<OsString> = args
        .into_iter()
        .map(|a| match a.to_str() {
            Some("-h") => OsString::from("--help"),
            Some("-V") => OsString::from("--version"),
            _ => a,
        })
        .collect();
    let parsed = opts::parse(prog, &args, "cdil:no:pzxv", &long, HELP)?;
    let (mut dig, mut keep, mut punch, mut verbose, mut other) =
        (false, false, false, false, false);
    let mut length: Option<u64> = None;
    let mut offset: u64 = 0;
    for p in &parsed.opts {
        match p.val {
            'd' => dig = true,
            'n' => keep = true,
            'p' => {
                punch = true;
                keep = true;
            }
            'v' => verbose = true,
            'c' | 'i' | 'z' => other = true,
            'l' => match p.arg.as_deref().and_then(strtosize) {
                Some(v) => length = Some(v),
                None => {
                    return Err(AppletError::new(
                        1,
                        format!("{prog}: invalid length value specified\n"),
                    ));
                }
            },
            'o' => match p.arg.as_deref().and_then(strtosize) {
                Some(v) => offset = v,
                None => {
                    return Err(AppletError::new(
                        1,
                        format!("{prog}: invalid offset value specified\n"),
                    ));
                }
            },
            _ => {}
        }
    }
    let Some(file) = parsed.operands.first() else {
        return Err(AppletError::new(
            1,
            format!("{prog}: no filename specified\n"),
        ));
    };
    if !dig && length.is_none() {
        return Err(AppletError::new(
            1,
            format!("{prog}: no length argument specified\n"),
        ));
    }
    if !dig && length == Some(0) {
        return Err(AppletError::new(
            1,
            format!("{prog}: invalid length value specified\n"),
        ));
    }
    if parsed.operands.len() > 1 {
        // util-linux: errx, no "Try" line.
        return Err(AppletError::new(
            1,
            format!("{prog}: unexpected number of arguments\n"),
        ));
    }
    let name = opts::bytes(file);
    let shown = String::from_utf8_lossy(name).into_owned();
    let mut s = start(prog, true)?;
    let flags = OpenFlags {
        read: true,
        write: true,
        create: !(dig || punch),
        mode: 0o666,
        ..OpenFlags::default()
    };
    let o = match s.vfs.open(name, flags) {
        Ok(o) => o,
        Err(e) => {
            err(&format!("{prog}: cannot open {shown}: {}\n", strerror(&e)));
            return super::common::sync(prog, &mut s, 1);
        }
    };
    let loc = o.stat.loc;
    let result = if other {
        Err(NodeError::new(ErrorKind::Unsupported))
    } else if dig {
        dig_holes(&mut s.vfs, loc, offset, length).map(|n| {
            if verbose {
                out(&format!(
                    "{shown}: {} ({n} bytes) converted to sparse holes.\n",
                    human(n)
                ));
            }
        })
    } else {
        // OK to unwrap: checked above that a length was given.
        let len = length.unwrap_or(0);
        let mode = if punch {
            FallocateMode::PunchHole
        } else {
            FallocateMode::Allocate { keep_size: keep }
        };
        s.vfs.fallocate(loc, offset, len, mode).map(|()| {
            if verbose {
                let what = if punch { "hole created" } else { "allocated" };
                out(&format!("{shown}: {} ({len} bytes) {what}.\n", human(len)));
            }
        })
    };
    let code = match result {
        Ok(()) => 0,
        Err(e) => {
            err(&format!("{prog}: fallocate failed: {}\n", strerror(&e)));
            1
        }
    };
    super::common::sync(prog, &mut s, code)
}

/// `-d`: punches every block-aligned run of zeros in the data of the
/// file (within `offset`..`offset + length`); returns the bytes punched.
fn dig_holes(
    vfs: &mut ebsim::guest::vfs::Vfs,
    loc: Loc,
    offset: u64,
    length: Option<u64>,
) -> Result<u64, NodeError> {
    let st = vfs.getattr(loc)?;
    let bs = u64::from(st.attr.blksize.max(512));
    let end = length.map_or(st.attr.size, |l| offset.saturating_add(l).min(st.attr.size));
    let ranges = vfs.data_ranges(loc)?;
    let mut punched = 0u64;
    let mut buf = vec![0u8; bs as usize];
    for r in ranges {
        let s = r.start.max(offset).div_ceil(bs) * bs;
        let e = r.end.min(end);
        let mut b = s;
        let mut run: Option<u64> = None;
        while b + bs <= e {
            let n = vfs.read(loc, b, &mut buf)?;
            let zero = n == bs as usize && buf.iter().all(|&x| x == 0);
            match (zero, run) {
                (true, None) => run = Some(b),
                (false, Some(start)) => {
                    vfs.fallocate(loc, start, b - start, FallocateMode::PunchHole)?;
                    punched += b - start;
                    run = None;
                }
                _ => {}
            }
            b += bs;
        }
        if let Some(start) = run {
            vfs.fallocate(loc, start, b - start, FallocateMode::PunchHole)?;
            punched += b - start;
        }
    }
    Ok(punched)
}

#[cfg(test)]
mod tests {
    use super::strtosize;

    #[test]
    fn sizes() {
        assert_eq!(strtosize("1M"), Some(1 << 20));
        assert_eq!(strtosize("1m"), Some(1 << 20));
        assert_eq!(strtosize("1.5M"), Some(1_572_864));
        assert_eq!(strtosize("1KB"), Some(1000));
        assert_eq!(strtosize("1KiB"), Some(1024));
        assert_eq!(strtosize("150G"), Some(150 << 30));
        assert_eq!(strtosize("-1"), None);
        assert_eq!(strtosize("1x"), None);
    }
}
