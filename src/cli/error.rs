//! Why an applet stopped, in uucore's manner: one error type whose
//! [`code`](AppletError::code) is the exit status and whose
//! [`usage`](AppletError::usage) says whether the tool's usage text follows
//! the message. Every applet's `main` returns `Result<i32, AppletError>`;
//! [`finish`] prints the error as the real tool would and returns the
//! status. The messages are the real tools' own, to the character.

use super::output::{err, out};

/// Where an applet's usage text goes after its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageTo {
    /// Not printed.
    None,
    /// On stderr (mke2fs, resize2fs, xfsprogs).
    Stderr,
}

/// An applet's failure: the text it prints and its exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppletError {
    /// Text for stderr, complete lines.
    stderr: String,
    /// Text for stdout, printed after stderr (`FAILED: ...` of growpart,
    /// resize2fs's "Couldn't find valid filesystem superblock.").
    stdout: String,
    /// Exit status.
    code: i32,
    /// Whether the usage text follows.
    usage: UsageTo,
}

impl AppletError {
    /// `text` on stderr (with its newlines), exit status `code`.
    pub fn new(code: i32, text: impl Into<String>) -> AppletError {
        AppletError {
            stderr: text.into(),
            stdout: String::new(),
            code,
            usage: UsageTo::None,
        }
    }

    /// The common form: `PROG: MESSAGE` on stderr, status 1.
    pub fn prog(prog: &str, message: &str) -> AppletError {
        AppletError::new(1, format!("{prog}: {message}\n"))
    }

    /// Only the usage text, status `code`.
    pub fn usage_only(code: i32) -> AppletError {
        AppletError::new(code, "").with_usage()
    }

    /// The usage text follows the message on stderr.
    pub fn with_usage(mut self) -> AppletError {
        self.usage = UsageTo::Stderr;
        self
    }

    /// Also prints `text` on stdout, after the stderr part.
    pub fn with_stdout(mut self, text: impl Into<String>) -> AppletError {
        self.stdout = text.into();
        self
    }

    /// Puts `text` before the stderr part.
    pub fn prepend_stderr(&mut self, text: &str) {
        self.stderr.insert_str(0, text);
    }

    /// The exit status.
    pub fn code(&self) -> i32 {
        self.code
    }

    /// Whether the tool's usage text follows the message.
    pub fn usage(&self) -> bool {
        self.usage != UsageTo::None
    }
}

impl std::fmt::Display for AppletError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.stderr.trim_end())
    }
}

impl std::error::Error for AppletError {}

/// The exit status of an applet's `main`, after printing its error (and
/// then `usage()`, when the error asks for it).
pub fn finish(result: Result<i32, AppletError>, usage: impl FnOnce() -> String) -> i32 {
    match result {
        Ok(code) => code,
        Err(e) => {
            let mut text = e.stderr.clone();
            if e.usage() {
                text.push_str(&usage());
            }
            if !text.is_empty() {
                err(&text);
            }
            if !e.stdout.is_empty() {
                out(&e.stdout);
            }
            e.code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AppletError;

    #[test]
    fn codes_and_usage() {
        let e = AppletError::prog("mkfs.ext4", "bad");
        assert_eq!(
            (e.code(), e.usage(), e.to_string()),
            (1, false, "mkfs.ext4: bad".into())
        );
        let e = AppletError::usage_only(2);
        assert_eq!((e.code(), e.usage()), (2, true));
    }
}
