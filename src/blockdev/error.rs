use std::path::PathBuf;

/// Errors of the storage layer. Each says which file and what operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system refused an operation on a file.
    #[error("{path}: {op}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done ("open", "read at 512", ...).
        op: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An access outside the device.
    #[error("access of {len} bytes at offset {offset} is outside the device ({size} bytes)")]
    OutOfRange {
        /// Start of the access.
        offset: u64,
        /// Length of the access.
        len: u64,
        /// Size of the device.
        size: u64,
    },
    /// The path is a directory, not an image.
    #[error("{0}: is a directory")]
    IsADirectory(PathBuf),
    /// The path does not exist.
    #[error("{0}: does not exist")]
    NotFound(PathBuf),
    /// The undo log beside an image cannot be used to roll back.
    #[error("{path}: undo log is damaged ({reason}); the image may hold a half-applied change")]
    UndoLogCorrupt {
        /// The log file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A write failed on purpose (the `EBSIM_FAULT_AFTER_WRITES` test hook).
    #[error("injected fault after {0} writes")]
    InjectedFault(u64),
    /// A write through a read-only view.
    #[error("{0}: opened read-only")]
    ReadOnlyView(String),
    /// The device cannot change size.
    #[error("{0}: the device cannot change size")]
    FixedSize(String),
}

impl Error {
    pub(crate) fn io(
        path: &std::path::Path,
        op: impl Into<String>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            op: op.into(),
            source,
        }
    }

    /// The OS error number behind this error, if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}
