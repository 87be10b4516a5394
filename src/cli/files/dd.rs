//! `dd` (coreutils 9.1) inside an instance: if= of= bs= ibs= obs= count=
//! skip= seek= conv= (notrunc sync noerror excl nocreat sparse fsync
//! fdatasync) iflag= (fullblock count_bytes skip_bytes) oflag= (append
//! seek_bytes; the others accepted) status= (none noxfer progress).
//! Sources and sinks: guest files, standard input and output, and the
//! host's /dev/zero, /dev/null, /dev/urandom. The final lines as 9.1
//! prints them: records in and out, then bytes, SI and IEC sizes, the
//! time (`%g` seconds) and the rate.

use super::common::{HostDev, Session, start, strerror};
use crate::cli::error::{AppletError, finish};
use crate::cli::output::err;
use ebsim::compat::quote::{quote, quoteaf};
use ebsim::compat::{XstrtolError, xstrtoimax};
use ebsim::fs::node::{ErrorKind, NodeError};
use ebsim::guest::human::{self, opts as hopts};
use ebsim::guest::vfs::{Loc, OpenFlags};
use std::ffi::OsString;
use std::io::Write;
use std::time::Instant;

const HELP: &str = "Usage: dd [OPERAND]...
Copies a file (standard input by default) to a file of the instance
(standard output by default), in blocks.

  bs=BYTES      read and write BYTES at a time (default 512)
  count=N       copy only N input blocks
  ibs=BYTES     read BYTES at a time
  if=FILE       read FILE (/dev/zero, /dev/urandom, or a guest file)
  obs=BYTES     write BYTES at a time
  of=FILE       write FILE
  seek=N        skip N output blocks first
  skip=N        skip N input blocks first
  conv=LIST     notrunc, sync, noerror, excl, nocreat, sparse, fsync,
                fdatasync
  iflag=LIST    fullblock, count_bytes, skip_bytes
  oflag=LIST    append, seek_bytes
  status=LEVEL  none, noxfer or progress

BYTES and N take the suffixes c (1), w (2), b (512), kB (1000), K (1024),
MB, M, GB, G and so on, and xN products (2x512).
";

enum Input {
    Host(HostDev),
    Guest { loc: Loc, off: u64, size: u64 },
}

enum Output {
    Host(HostDev),
    Guest { loc: Loc, off: u64 },
}

/// A dd number as coreutils 9.1's `parse_integer` reads it: gnulib's
/// `xstrtoumax` with the suffixes b c w k K M G T P E Z Y (KB, KiB ...
/// as in gnulib), and `x` products (`2x512`); no sign. `Err(true)` when
/// it is too large (dd then adds `Value too large for defined data
/// type`), `Err(false)` when it is no number.
fn parse_num(s: &str) -> Result<u64, bool> {
    let mut total: u64 = 1;
    let mut overflow = false;
    for part in s.split('x') {
        if part
            .trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r'])
            .starts_with('-')
        {
            return Err(false);
        }
        let n = match xstrtoimax(part, "bcEGkKMPTwYZ0") {
            Ok(n) => u64::try_from(n).map_err(|_| false)?,
            Err(XstrtolError::Invalid) => return Err(false),
            Err(XstrtolError::Overflow) => {
                overflow = true;
                u64::MAX
            }
        };
        match total.checked_mul(n) {
            Some(t) => total = t,
            None => overflow = true,
        }
    }
    if overflow || total > i64::MAX as u64 {
        return Err(true);
    }
    Ok(total)
}

/// C's `%g`: six significant digits, trailing zeros dropped, an exponent
/// below 1e-4 or from 1e6.
pub fn fmt_g(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let exp = v.abs().log10().floor() as i32;
    let e = format!("{v:.5e}");
    // Rounding may carry into the next power of ten.
    let (mant, exp) = match e.split_once('e') {
        Some((m, x)) => (m.to_string(), x.parse::<i32>().unwrap_or(exp)),
        None => (e.clone(), exp),
    };
    if !(-4..6).contains(&exp) {
        let m = trim_zeros(&mant);
        return format!("{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    let decimals = (5 - exp).max(0) as usize;
    trim_zeros(&format!("{v:.decimals$}"))
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

struct Stats {
    full_in: u64,
    part_in: u64,
    full_out: u64,
    part_out: u64,
    bytes: u64,
    start: Instant,
}

impl Stats {
    fn transfer_line(&self) -> String {
        let elapsed = self.start.elapsed();
        let ns = elapsed.as_nanos().max(1) as u64;
        let base = hopts::AUTOSCALE
            | hopts::ROUND_TO_NEAREST
            | hopts::SPACE_BEFORE_UNIT
            | hopts::SI
            | hopts::B;
        let b = self.bytes;
        let sizes = if b < 1000 {
            String::new()
        } else if b < 1024 {
            format!(" ({})", human::human_readable(b, base, 1, 1))
        } else {
            format!(
                " ({}, {})",
                human::human_readable(b, base, 1, 1),
                human::human_readable(b, base | hopts::BASE_1024, 1, 1)
            )
        };
        let rate = human::human_readable(b, base, 1_000_000_000, ns);
        format!(
            "{b} byte{}{sizes} copied, {} s, {rate}/s",
            if b == 1 { "" } else { "s" },
            fmt_g(elapsed.as_secs_f64())
        )
    }

    fn report(&self, status: &str) {
        if status == "none" {
            return;
        }
        let mut t = format!(
            "{}+{} records in\n{}+{} records out\n",
            self.full_in, self.part_in, self.full_out, self.part_out
        );
        if status != "noxfer" {
            t.push_str(&self.transfer_line());
            t.push('\n');
        }
        err(&t);
    }
}

struct Dd<'a> {
    s: Option<&'a mut Session>,
}

impl Dd<'_> {
    fn read(&mut self, input: &mut Input, buf: &mut [u8]) -> Result<usize, String> {
        match input {
            Input::Host(d) => d.read(buf).map_err(|e| super::common::io_strerror(&e)),
            Input::Guest { loc, off, size } => {
                if *off >= *size {
                    return Ok(0);
                }
                let s = self.s.as_mut().ok_or("no instance")?;
                let n = s.vfs.read(*loc, *off, buf).map_err(|e| strerror(&e))?;
                *off += n as u64;
                Ok(n)
            }
        }
    }

    /// Writes `data`; Ok(bytes written) — short when space ran out, with
    /// the error.
    fn write(&mut self, output: &mut Output, data: &[u8], sparse: bool) -> (usize, Option<String>) {
        match output {
            Output::Host(d) => match d.write_all(data) {
                Ok(()) => (data.len(), None),
                Err(e) => (0, Some(super::common::io_strerror(&e))),
            },
            Output::Guest { loc, off } => {
                let Some(s) = self.s.as_mut() else {
                    return (0, Some("no instance".into()));
                };
                if sparse && data.iter().all(|&b| b == 0) {
                    *off += data.len() as u64;
                    return (data.len(), None);
                }
                let mut done = 0;
                while done < data.len() {
                    match s.vfs.write(*loc, *off, &data[done..]) {
                        Ok(0) => {
                            return (done, Some(strerror(&NodeError::new(ErrorKind::NoSpace))));
                        }
                        Ok(n) => {
                            done += n;
                            *off += n as u64;
                        }
                        Err(e) => return (done, Some(strerror(&e))),
                    }
                }
                (done, None)
            }
        }
    }
}

/// `dd`.
pub fn run(args: Vec<OsString>) -> i32 {
    finish(main(args), String::new)
}

fn main(args: Vec<OsString>) -> Result<i32, AppletError> {
    let prog = "dd";
    let utf8 = super::common::utf8_locale();
    // dd takes only --help and --version as options (getopt_long, so
    // `-y` and `--bogus` get getopt's messages); the rest are operands.
    let parsed = super::opts::parse(prog, &args, "", &[], HELP)?;
    let argv: Vec<String> = parsed
        .operands
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut ops: std::collections::HashMap<&str, String> = std::collections::HashMap::new();
    for a in &argv {
        let Some((k, v)) = a.split_once('=') else {
            return Err(AppletError::new(
                1,
                format!(
                    "{prog}: unrecognized operand {}\n{}",
                    quote(a.as_bytes(), utf8),
                    super::common::try_help(prog)
                ),
            ));
        };
        match k {
            "if" | "of" | "bs" | "ibs" | "obs" | "cbs" | "count" | "skip" | "iseek" | "seek"
            | "oseek" | "conv" | "iflag" | "oflag" | "status" => {
                let key: &str = match k {
                    "iseek" => "skip",
                    "oseek" => "seek",
                    other => other,
                };
                let key: &'static str = match key {
                    "if" => "if",
                    "of" => "of",
                    "bs" => "bs",
                    "ibs" => "ibs",
                    "obs" => "obs",
                    "cbs" => "cbs",
                    "count" => "count",
                    "skip" => "skip",
                    "seek" => "seek",
                    "conv" => "conv",
                    "iflag" => "iflag",
                    "oflag" => "oflag",
                    _ => "status",
                };
                if matches!(key, "conv" | "iflag" | "oflag") {
                    let e = ops.entry(key).or_default();
                    if !e.is_empty() {
                        e.push(',');
                    }
                    e.push_str(v);
                } else {
                    ops.insert(key, v.to_string());
                }
            }
            _ => {
                return Err(AppletError::new(
                    1,
                    format!(
                        "{prog}: unrecognized operand {}\n{}",
                        quote(a.as_bytes(), utf8),
                        super::common::try_help(prog)
                    ),
                ));
            }
        }
    }
    let num = |k: &str| -> Result<Option<u64>, AppletError> {
        let Some(v) = ops.get(k) else {
            return Ok(None);
        };
        // Block sizes are at least 1 (dd's n_min), the others at least 0.
        let min = u64::from(matches!(k, "bs" | "ibs" | "obs" | "cbs"));
        match parse_num(v) {
            Ok(n) if n >= min => Ok(Some(n)),
            r => Err(AppletError::new(
                1,
                format!(
                    "{prog}: invalid number: {}{}\n",
                    quote(v.as_bytes(), utf8),
                    if r == Err(true) {
                        ": Value too large for defined data type"
                    } else {
                        ""
                    }
                ),
            )),
        }
    };
    let (bs, ibs, obs, cbs, count, skip, seek) = (
        num("bs")?,
        num("ibs")?,
        num("obs")?,
        num("cbs")?,
        num("count")?,
        num("skip")?,
        num("seek")?,
    );
    let ibs = bs.or(ibs).unwrap_or(512) as usize;
    let obs = bs.or(obs).unwrap_or(512) as usize;
    let reblock = bs.is_none() && ibs != obs;
    let list = |k: &str| -> Vec<String> {
        ops.get(k)
            .map(|v| v.split(',').map(str::to_string).collect())
            .unwrap_or_default()
    };
    let conv = list("conv");
    let iflag = list("iflag");
    let oflag = list("oflag");
    let known_conv = [
        "notrunc",
        "sync",
        "noerror",
        "excl",
        "nocreat",
        "sparse",
        "fsync",
        "fdatasync",
        "ascii",
        "ebcdic",
        "ibm",
        "block",
        "unblock",
        "lcase",
        "ucase",
        "swab",
    ];
    for c in &conv {
        if !known_conv.contains(&c.as_str()) {
            return Err(AppletError::new(
                1,
                format!(
                    "{prog}: invalid conversion: {}\n{}",
                    quote(c.as_bytes(), utf8),
                    super::common::try_help(prog)
                ),
            ));
        }
    }
    // dd's checks of the combination, after every operand was read.
    let any2 = |set: &[&str]| conv.iter().filter(|c| set.contains(&c.as_str())).count() > 1;
    let combo = if any2(&["ascii", "ebcdic", "ibm"]) {
        Some("cannot combine any two of {ascii,ebcdic,ibm}")
    } else if cbs.is_some() && any2(&["block", "unblock"]) {
        // Without cbs= dd drops block and unblock before this check.
        Some("cannot combine block and unblock")
    } else if any2(&["lcase", "ucase"]) {
        Some("cannot combine lcase and ucase")
    } else if any2(&["excl", "nocreat"]) {
        Some("cannot combine excl and nocreat")
    } else {
        None
    };
    let known_flags = [
        "append",
        "direct",
        "directory",
        "dsync",
        "sync",
        "fullblock",
        "nonblock",
        "noatime",
        "nocache",
        "noctty",
        "nofollow",
        "count_bytes",
        "skip_bytes",
        "seek_bytes",
        "binary",
        "text",
    ];
    for (name, l) in [("input", &iflag), ("output", &oflag)] {
        for f in l.iter() {
            if !known_flags.contains(&f.as_str()) {
                return Err(AppletError::new(
                    1,
                    format!(
                        "{prog}: invalid {name} flag: {}\n{}",
                        quote(f.as_bytes(), utf8),
                        super::common::try_help(prog)
                    ),
                ));
            }
        }
    }
    let status = ops.get("status").cloned().unwrap_or_default();
    if !matches!(status.as_str(), "" | "none" | "noxfer" | "progress") {
        return Err(AppletError::new(
            1,
            format!(
                "{prog}: invalid status level: {}\n{}",
                quote(status.as_bytes(), utf8),
                super::common::try_help(prog)
            ),
        ));
    }
    if let Some(msg) = combo {
        return Err(AppletError::new(1, format!("{prog}: {msg}\n")));
    }
    let has = |l: &[String], f: &str| l.iter().any(|x| x == f);
    let if_name = ops.get("if").map(|s| s.as_bytes().to_vec());
    let of_name = ops.get("of").map(|s| s.as_bytes().to_vec());
    let guest_in = if_name.as_ref().is_some_and(|n| HostDev::of(n).is_none());
    let guest_out = of_name.as_ref().is_some_and(|n| HostDev::of(n).is_none());
    let mut session = if guest_in || guest_out {
        Some(start(prog, guest_out)?)
    } else {
        None
    };
    let shown_in = if_name.clone();
    let shown_out = of_name.clone();
    // The input.
    let mut input = match &if_name {
        None => Input::Host(HostDev::Stdin),
        Some(n) => match HostDev::of(n) {
            Some(d) => Input::Host(d),
            None => {
                let Some(s) = session.as_mut() else {
                    return Ok(1);
                };
                match s.vfs.open(n, OpenFlags::read()) {
                    Ok(o) => Input::Guest {
                        loc: o.stat.loc,
                        off: 0,
                        size: o.stat.attr.size,
                    },
                    Err(e) => {
                        return Err(AppletError::new(
                            1,
                            format!(
                                "{prog}: failed to open {}: {}\n",
                                quoteaf(n, utf8),
                                strerror(&e)
                            ),
                        ));
                    }
                }
            }
        },
    };
    // The output.
    let seek_bytes = seek.map_or(0, |n| {
        if has(&oflag, "seek_bytes") {
            n
        } else {
            n * obs as u64
        }
    });
    let notrunc = has(&conv, "notrunc");
    let append = has(&oflag, "append");
    let mut output = match &of_name {
        None => Output::Host(HostDev::Stdout),
        Some(n) => match HostDev::of(n) {
            Some(d) => Output::Host(d),
            None => {
                let Some(s) = session.as_mut() else {
                    return Ok(1);
                };
                let flags = OpenFlags {
                    write: true,
                    create: !has(&conv, "nocreat"),
                    excl: has(&conv, "excl"),
                    trunc: seek_bytes == 0 && !notrunc && !append,
                    mode: 0o666,
                    ..OpenFlags::default()
                };
                match s.vfs.open(n, flags) {
                    Ok(o) => {
                        let loc = o.stat.loc;
                        let mut size = o.stat.attr.size;
                        if seek_bytes > 0 && !notrunc && !append && size != seek_bytes {
                            if let Err(e) = s.vfs.ftruncate(loc, seek_bytes) {
                                err(&format!(
                                    "{prog}: failed to truncate to {seek_bytes} bytes in output file {}: {}\n",
                                    quoteaf(n, utf8),
                                    strerror(&e)
                                ));
                                return super::common::sync(prog, s, 1);
                            }
                            size = seek_bytes;
                        }
                        Output::Guest {
                            loc,
                            off: if append { size } else { seek_bytes },
                        }
                    }
                    Err(e) => {
                        err(&format!(
                            "{prog}: failed to open {}: {}\n",
                            quoteaf(n, utf8),
                            strerror(&e)
                        ));
                        return super::common::sync(prog, s, 1);
                    }
                }
            }
        },
    };
    let mut dd = Dd {
        s: session.as_mut(),
    };
    let mut stats = Stats {
        full_in: 0,
        part_in: 0,
        full_out: 0,
        part_out: 0,
        bytes: 0,
        start: Instant::now(),
    };
    let in_name = |n: &Option<Vec<u8>>| match n {
        Some(n) => quoteaf(n, utf8),
        None => "'standard input'".into(),
    };
    let out_name = |n: &Option<Vec<u8>>| match n {
        Some(n) => quoteaf(n, utf8),
        None => "'standard output'".into(),
    };
    let mut code = 0;
    // Skip input.
    if let Some(k) = skip {
        let bytes = if has(&iflag, "skip_bytes") {
            k
        } else {
            k * ibs as u64
        };
        match &mut input {
            Input::Guest { off, .. } => *off = bytes,
            Input::Host(_) => {
                let mut left = bytes;
                let mut b = vec![0u8; ibs.min(1 << 20)];
                while left > 0 {
                    let n = (left as usize).min(b.len());
                    match dd.read(&mut input, &mut b[..n]) {
                        Ok(0) | Err(_) => break,
                        Ok(r) => left -= r as u64,
                    }
                }
            }
        }
    }
    let count_bytes = has(&iflag, "count_bytes");
    let fullblock = has(&iflag, "fullblock");
    let sync_conv = has(&conv, "sync");
    let sparse = has(&conv, "sparse");
    let progress = status == "progress";
    let mut last_progress = Instant::now();
    let mut progress_shown = false;
    let mut ibuf = vec![0u8; ibs];
    let mut pending: Vec<u8> = Vec::new();
    let mut copied_in: u64 = 0;
    'copy: loop {
        // How much to read now.
        let want = match count {
            Some(c) if count_bytes => {
                if copied_in >= c {
                    break;
                }
                ((c - copied_in) as usize).min(ibs)
            }
            Some(c) => {
                if stats.full_in + stats.part_in >= c {
                    break;
                }
                ibs
            }
            None => ibs,
        };
        let mut got = 0;
        loop {
            match dd.read(&mut input, &mut ibuf[got..want]) {
                Ok(0) => break,
                Ok(n) => {
                    got += n;
                    if !fullblock || got == want {
                        break;
                    }
                }
                Err(e) => {
                    err(&format!(
                        "{prog}: error reading {}: {e}\n",
                        in_name(&shown_in)
                    ));
                    code = 1;
                    break 'copy;
                }
            }
        }
        if got == 0 {
            break;
        }
        copied_in += got as u64;
        if got == ibs {
            stats.full_in += 1;
        } else {
            stats.part_in += 1;
        }
        let mut block = ibuf[..got].to_vec();
        if sync_conv && got < ibs {
            block.resize(ibs, 0);
        }
        let chunks: Vec<Vec<u8>> = if reblock {
            pending.extend_from_slice(&block);
            let mut v = Vec::new();
            while pending.len() >= obs {
                v.push(pending.drain(..obs).collect());
            }
            v
        } else {
            vec![block]
        };
        for c in chunks {
            let (n, e) = dd.write(&mut output, &c, sparse);
            stats.bytes += n as u64;
            if n == obs {
                stats.full_out += 1;
            } else if n > 0 {
                stats.part_out += 1;
            }
            if let Some(e) = e {
                err(&format!(
                    "{prog}: error writing {}: {e}\n",
                    out_name(&shown_out)
                ));
                code = 1;
                break 'copy;
            }
        }
        if progress && last_progress.elapsed().as_secs() >= 1 {
            let _ = std::io::stderr().write_all(format!("\r{}", stats.transfer_line()).as_bytes());
            progress_shown = true;
            last_progress = Instant::now();
        }
    }
    if code == 0 && !pending.is_empty() {
        let (n, e) = dd.write(&mut output, &pending, sparse);
        stats.bytes += n as u64;
        if n > 0 {
            stats.part_out += 1;
        }
        if let Some(e) = e {
            err(&format!(
                "{prog}: error writing {}: {e}\n",
                out_name(&shown_out)
            ));
            code = 1;
        }
    }
    // A sparse copy that ended in a hole sets the size.
    if sparse {
        if let (Output::Guest { loc, off }, Some(s)) = (&output, dd.s.as_mut()) {
            if let Ok(st) = s.vfs.getattr(*loc) {
                if st.attr.size < *off {
                    let _ = s.vfs.ftruncate(*loc, *off);
                }
            }
        }
    }
    // A failed sync is reported before the statistics, as dd does.
    let synced = match session.as_mut() {
        Some(s) => finish(super::common::sync(prog, s, code), String::new),
        None => code,
    };
    if progress_shown {
        err("\n");
    }
    stats.report(&status);
    let _ = std::io::stdout().flush();
    Ok(synced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_num("1M"), Ok(1 << 20));
        assert_eq!(parse_num("2x512"), Ok(1024));
        assert_eq!(parse_num("1kB"), Ok(1000));
        assert_eq!(parse_num("1KB"), Ok(1000));
        assert_eq!(parse_num("4b"), Ok(2048));
        assert_eq!(parse_num("x"), Err(false));
        assert_eq!(parse_num("1Q"), Err(false));
        assert_eq!(parse_num("-1"), Err(false));
        assert_eq!(parse_num("99999999999999999999"), Err(true));
        assert_eq!(parse_num("8E"), Err(true));
        assert_eq!(parse_num("1Ex16"), Err(true));
    }

    #[test]
    fn percent_g() {
        assert_eq!(fmt_g(0.00100988), "0.00100988");
        assert_eq!(fmt_g(1.2705e-05), "1.2705e-05");
        assert_eq!(fmt_g(1.84212), "1.84212");
        assert_eq!(fmt_g(123.4567), "123.457");
        assert_eq!(fmt_g(1234567.0), "1.23457e+06");
    }
}
