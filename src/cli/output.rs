//! Writing to stdout and stderr, and write errors reported as coreutils
//! reports them.
//!
//! A failed write to stdout is remembered (the first one); when the applet
//! is done, [`close_stdout`] turns it into `PROG: write error: REASON` and
//! exit status 1, as gnulib's and util-linux's `close_stdout` do (`df`
//! writing to /dev/full: "df: write error: No space left on device"). Their reason
//! comes from the final `fclose`: when the output outgrew the stdio buffer
//! (`st_blksize` of stdout), an earlier flush already failed, `errno` is
//! cleared and the line is only `PROG: write error` (`lsblk --help`, 4110
//! bytes, on /dev/full, whose block size is 4096). A closed pipe
//! is not reported (ripgrep's rule: the reader went away, so there is no one
//! to tell). Tools whose real counterpart does not check its output
//! (e2fsprogs, xfsprogs, growpart) skip the check and keep their status.
//! Errors writing to stderr cannot be reported anywhere and are dropped.

use std::io::Write;
use std::sync::Mutex;

/// The first error writing to stdout, if any: its kind and OS error.
static STDOUT_ERROR: Mutex<Option<(std::io::ErrorKind, Option<i32>)>> = Mutex::new(None);
/// Bytes written (or attempted) to stdout.
static STDOUT_BYTES: Mutex<usize> = Mutex::new(0);

fn remember(e: &std::io::Error) {
    if let Ok(mut first) = STDOUT_ERROR.lock() {
        first.get_or_insert((e.kind(), e.raw_os_error()));
    }
}

/// Writes `s` to stdout and flushes it; a failure is remembered for
/// [`close_stdout`].
pub fn out(s: &str) {
    if let Ok(mut n) = STDOUT_BYTES.lock() {
        *n = n.saturating_add(s.len());
    }
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(s.as_bytes()).and_then(|()| o.flush()) {
        remember(&e);
    }
}

/// Writes bytes to stdout (file contents need not be text); a failure is
/// remembered for [`close_stdout`].
pub fn out_bytes(b: &[u8]) {
    if let Ok(mut n) = STDOUT_BYTES.lock() {
        *n = n.saturating_add(b.len());
    }
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(b).and_then(|()| o.flush()) {
        remember(&e);
    }
}

/// True once a write to stdout failed (a closed pipe included).
pub fn stdout_failed() -> bool {
    STDOUT_ERROR.lock().map(|k| k.is_some()).unwrap_or(false)
}

/// Writes `s` to stderr.
pub fn err(s: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(s.as_bytes());
    let _ = e.flush();
}

/// coreutils' `close_stdout` for `prog`: when a write to stdout failed
/// (other than a closed pipe), prints `PROG: write error: REASON` and
/// returns 1; otherwise returns `code`.
pub fn close_stdout(prog: &str, code: i32) -> i32 {
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.flush() {
        remember(&e);
    }
    let first = STDOUT_ERROR.lock().ok().and_then(|k| *k);
    match first {
        None | Some((std::io::ErrorKind::BrokenPipe, _)) => code,
        Some((kind, errno)) => {
            let written = STDOUT_BYTES.lock().map_or(0, |n| *n);
            let buffer = nix::sys::stat::fstat(std::io::stdout())
                .map_or(4096, |st| usize::try_from(st.st_blksize).unwrap_or(4096));
            let why = match errno {
                _ if written > buffer => String::new(),
                Some(n) => format!(": {}", nix::errno::Errno::from_raw(n).desc()),
                None => format!(": {}", std::io::Error::from(kind)),
            };
            err(&format!("{prog}: write error{why}\n"));
            1
        }
    }
}

/// The C library's wording of an I/O error (`strerror`), without Rust's
/// " (os error N)" suffix.
pub fn strerror(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    }
}

/// What an applet run produced, before it is printed: its two streams and
/// its exit code (lsblk and df build one, so tests can read it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Text for stdout.
    pub stdout: String,
    /// Text for stderr.
    pub stderr: String,
    /// Exit code.
    pub code: i32,
}

impl Output {
    /// Prints both streams and returns the exit code.
    pub fn emit(&self) -> i32 {
        if !self.stderr.is_empty() {
            err(&self.stderr);
        }
        if !self.stdout.is_empty() {
            out(&self.stdout);
        }
        self.code
    }

    /// Only a message on stderr, with `code`.
    pub fn error(stderr: String, code: i32) -> Output {
        Output {
            stdout: String::new(),
            stderr,
            code,
        }
    }
}
