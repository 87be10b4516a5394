use std::ops::Range;
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
    /// A segmented image (a directory of segment files) whose manifest or
    /// segments are not as they must be; nothing was changed.
    #[error("{path}: segmented image: {problem}")]
    Segmented {
        /// The image directory.
        path: PathBuf,
        /// What is wrong, naming the file.
        problem: String,
    },
    /// A device named on an instance's command line is no longer what the
    /// command's checks saw (detached, mounted, resized, its partition
    /// moved): found once the image was locked, before anything was
    /// written.
    #[error(
        "{device} changed while the command was starting ({detail}); nothing was written, run it again"
    )]
    DeviceChanged {
        /// The device name (`/dev/nvme1n1p1`).
        device: String,
        /// What changed.
        detail: String,
    },
    /// Another process holds the image's lock (a writer, or the server of
    /// a mounted filesystem) for longer than the opener would wait.
    #[error(
        "{}: in use by {}; gave up after waiting {} s for it",
        path.display(),
        holder.as_deref().unwrap_or("another process"),
        super::lock::seconds(*waited)
    )]
    Busy {
        /// The image.
        path: PathBuf,
        /// Who holds it ("process PID (COMMAND)"), when the kernel tells.
        holder: Option<String>,
        /// How long the opener waited.
        waited: std::time::Duration,
    },
    /// The path is a directory, not an image.
    #[error("{0}: is a directory")]
    IsADirectory(PathBuf),
    /// The path does not exist.
    #[error("{0}: does not exist")]
    NotFound(PathBuf),
    /// The undo log beside an image is not one ebsim can read.
    #[error("{path}: undo log is damaged ({reason}); the image may hold a half-applied change")]
    UndoLogCorrupt {
        /// The log file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The undo log beside an image does not describe the image as it is
    /// now, so replaying it would destroy newer data. Nothing was changed.
    #[error("{log} does not match {image}: {detail}. Remove the log to keep the image as it is.")]
    UndoLogMismatch {
        /// The image.
        image: PathBuf,
        /// The log.
        log: PathBuf,
        /// What differs, and where.
        detail: String,
    },
    /// A read-only open found an interrupted change it may not undo.
    #[error(
        "{image}: an interrupted change is pending (undo log {log}); open the image \
         read-write (as root or its owner) to finish or undo it"
    )]
    UndoLogPending {
        /// The image.
        image: PathBuf,
        /// The log.
        log: PathBuf,
    },
    /// A plan whose writes overlap (a bug in the writer); nothing was written.
    #[error("the writes {}..{} and {}..{} overlap", first.start, first.end, second.start, second.end)]
    OverlappingWrites {
        /// One write.
        first: Range<u64>,
        /// Another that overlaps it.
        second: Range<u64>,
    },
    /// A write failed on purpose (the `EBSIM_FAULT_AFTER_WRITES` test hook).
    #[error("injected fault after {0} writes")]
    InjectedFault(u64),
    /// A commit to an image file failed; `outcome` says what the image holds
    /// now.
    #[error("{source}{}", outcome.note())]
    Commit {
        /// What failed.
        source: Box<Error>,
        /// The state the failure left.
        outcome: CommitOutcome,
    },
    /// A write through a read-only view.
    #[error("{0}: opened read-only")]
    ReadOnlyView(String),
    /// The device cannot change size.
    #[error("{0}: the device cannot change size")]
    FixedSize(String),
}

/// What a failed commit left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The image is exactly as it was (nothing written, or rolled back).
    Unchanged,
    /// The image holds part of the change; the undo log `log` rolls it back
    /// the next time the image is opened.
    RollBackPending {
        /// The log.
        log: PathBuf,
    },
    /// The change is complete but for discards; the log `log` finishes them
    /// the next time the image is opened.
    RollForwardPending {
        /// The log.
        log: PathBuf,
    },
}

impl CommitOutcome {
    fn note(&self) -> String {
        match self {
            CommitOutcome::Unchanged => String::new(),
            CommitOutcome::RollBackPending { log } => format!(
                " (the change was not made: the next open of the image undoes it with {})",
                log.display()
            ),
            CommitOutcome::RollForwardPending { log } => format!(
                " (the change was made: the next open of the image finishes discarding free \
                 space with {})",
                log.display()
            ),
        }
    }
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
            Error::Commit { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// The error a failed commit started from (itself for other errors).
    pub fn root_cause(&self) -> &Error {
        match self {
            Error::Commit { source, .. } => source.root_cause(),
            other => other,
        }
    }

    /// True when this error, returned by [`super::BlockDevice::commit`], may
    /// have left the device holding part of the change with nothing to undo
    /// it, so a filesystem tool should advise a check. Image files never do:
    /// every failed commit either changed nothing, or left a log that the
    /// next open replays ([`Error::Commit`]). Refusals made before writing
    /// (bounds, read-only views, overlapping writes) changed nothing either.
    pub fn may_leave_partial_change(&self) -> bool {
        !matches!(
            self,
            Error::Commit { .. }
                | Error::OutOfRange { .. }
                | Error::ReadOnlyView(_)
                | Error::FixedSize(_)
                | Error::OverlappingWrites { .. }
        )
    }
}
