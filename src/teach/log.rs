//! The command log of an instance: every ebsim applet run inside it
//! (through `ebsim shell`, `ebsim exec` or a link on the shell's PATH)
//! appends one JSON line to `EBSIM_HOME/teach/log/INSTANCE.jsonl`, so a
//! lab's grader can check the order of the commands. Recorded by the
//! applet itself, so it works however the shell runs its commands.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Wall-clock time, milliseconds since the epoch.
    pub time_ms: i64,
    /// The applet and its arguments (as typed after `sudo`).
    pub argv: Vec<String>,
    /// Its exit status.
    pub status: i32,
    /// Run as the guest's root (through sudo).
    #[serde(default)]
    pub root: bool,
}

/// Errors of the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The instance id is not one (it names the file).
    #[error("not an instance id: {0:?}")]
    BadInstance(String),
    /// The file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn valid_id(id: &str) -> bool {
    id.strip_prefix("i-").is_some_and(|h| {
        !h.is_empty() && h.len() <= 32 && h.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// The log file of `instance` under `home`.
pub fn path(home: &Path, instance: &str) -> Result<PathBuf, LogError> {
    if !valid_id(instance) {
        return Err(LogError::BadInstance(instance.to_string()));
    }
    Ok(home
        .join("teach")
        .join("log")
        .join(format!("{instance}.jsonl")))
}

/// Appends `e` (one `write` of one line, with `O_APPEND`: concurrent
/// commands never interleave inside a line).
pub fn append(home: &Path, instance: &str, e: &Entry) -> Result<(), LogError> {
    let p = path(home, instance)?;
    let io = |source| LogError::Io {
        path: p.clone(),
        source,
    };
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut line = serde_json::to_string(e).map_err(|e| io(std::io::Error::other(e)))?;
    line.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)
        .map_err(io)?;
    f.write_all(line.as_bytes()).map_err(io)
}

/// The log of `instance` (empty when nothing was recorded); lines that do
/// not parse are skipped.
pub fn read(home: &Path, instance: &str) -> Result<Vec<Entry>, LogError> {
    let p = path(home, instance)?;
    match std::fs::read_to_string(&p) {
        Ok(t) => Ok(t
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(LogError::Io { path: p, source }),
    }
}

/// Removes the logs (a lab's start and reset).
pub fn clear(home: &Path) -> Result<(), LogError> {
    let dir = home.join("teach").join("log");
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(LogError::Io { path: dir, source }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_reads_back() {
        let d = tempfile::tempdir().unwrap();
        let e = Entry {
            time_ms: 1,
            argv: vec!["growpart".into(), "/dev/xvda".into(), "1".into()],
            status: 0,
            root: false,
        };
        append(d.path(), "i-0abc", &e).unwrap();
        append(d.path(), "i-0abc", &e).unwrap();
        assert_eq!(read(d.path(), "i-0abc").unwrap(), vec![e.clone(), e]);
        assert!(
            append(
                d.path(),
                "../x",
                &Entry {
                    time_ms: 0,
                    argv: vec![],
                    status: 0,
                    root: false
                }
            )
            .is_err()
        );
        clear(d.path()).unwrap();
        assert!(read(d.path(), "i-0abc").unwrap().is_empty());
    }
}
