//! Writing to stdout and stderr. A closed pipe is not an error (ripgrep's
//! rule): the reader went away, so there is no one to tell.

use std::io::Write;

/// Writes `s` to stdout and flushes it.
pub fn out(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes());
    let _ = o.flush();
}

/// Writes `s` to stderr.
pub fn err(s: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(s.as_bytes());
    let _ = e.flush();
}

/// The C library's wording of an I/O error (`strerror`), without Rust's
/// " (os error N)" suffix.
pub fn strerror(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    }
}
