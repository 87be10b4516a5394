//! The instance the guest applets (lsblk, df) look at, and what a pure
//! applet run returns.
//!
//! `guest_snapshot` is the instance model's view (`cli::guest::snapshot`:
//! the instance named by EBSIM_INSTANCE, or the only running one), with one
//! hidden test hook in front:
//!
//! **EBSIM_GUEST_SNAPSHOT=path.json** (test hook, not a user feature): the
//! snapshot is read from that JSON file (`ebsim::guest::Snapshot` with
//! serde's derived layout) instead of from an instance. The integration
//! tests (tests/views.rs) and scripts/bench-views.sh use it; it is also
//! handy for debugging a rendering by hand.

use ebsim::guest::Snapshot;

/// What an applet run produced: its two streams and its exit code.
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
            super::output::err(&self.stderr);
        }
        if !self.stdout.is_empty() {
            super::output::out(&self.stdout);
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

/// The test hook's variable (see the module docs).
pub const SNAPSHOT_HOOK: &str = "EBSIM_GUEST_SNAPSHOT";

/// The current instance's view. The error is the message without the
/// program name (the applet prefixes it and exits 1).
pub fn guest_snapshot() -> Result<Snapshot, String> {
    if let Some(path) = std::env::var_os(SNAPSHOT_HOOK) {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("{}: {e}", std::path::Path::new(&path).display()))?;
        return serde_json::from_str(&text)
            .map_err(|e| format!("{}: {e}", std::path::Path::new(&path).display()));
    }
    super::guest::snapshot().map_err(|e| e.0)
}

/// Whether the locale's character set is UTF-8 (glibc: the first set of
/// LC_ALL, LC_CTYPE, LANG; none means the C locale).
pub fn utf8_locale() -> bool {
    for var in ["LC_ALL", "LC_CTYPE", "LANG"] {
        if let Ok(v) = std::env::var(var) {
            if !v.is_empty() {
                let v = v.to_ascii_lowercase();
                return v.contains("utf-8") || v.contains("utf8");
            }
        }
    }
    false
}
