//! Errors of the cloud layer.
//!
//! Two kinds: an [`ApiError`] is what AWS itself would answer (a code and a
//! message); an [`Error`] is everything else that can go
//! wrong on this machine (the state file, the image files, the chunk store).

use std::path::PathBuf;

/// An error AWS would return: the code and the message, exactly as the AWS
/// CLI prints them ("An error occurred (CODE) when calling ...: MESSAGE").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The error code, e.g. `InvalidVolume.NotFound`.
    pub code: String,
    /// The message, to the character.
    pub message: String,
}

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        ApiError {
            code: code.to_string(),
            message: message.into(),
        }
    }

    /// `InvalidParameterValue`.
    pub fn invalid_value(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterValue", message)
    }

    /// `InvalidParameterCombination`.
    pub fn invalid_combination(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterCombination", message)
    }

    /// `InvalidVolume.NotFound` [V].
    pub fn volume_not_found(id: &str) -> Self {
        Self::new(
            "InvalidVolume.NotFound",
            format!("The volume '{id}' does not exist."),
        )
    }

    /// `InvalidSnapshot.NotFound` [V].
    pub fn snapshot_not_found(id: &str) -> Self {
        Self::new(
            "InvalidSnapshot.NotFound",
            format!("The snapshot '{id}' does not exist."),
        )
    }

    /// `InvalidInstanceID.NotFound` [V].
    pub fn instance_not_found(id: &str) -> Self {
        Self::new(
            "InvalidInstanceID.NotFound",
            format!("The instance ID '{id}' does not exist"),
        )
    }

    /// `InvalidAMIID.NotFound` [V] (the brackets are AWS's).
    pub fn image_not_found(id: &str) -> Self {
        Self::new(
            "InvalidAMIID.NotFound",
            format!("The image id '[{id}]' does not exist"),
        )
    }

    /// A malformed id (`InvalidVolumeID.Malformed` and friends) [U].
    pub fn malformed(code: &str, id: &str, prefix: &str) -> Self {
        Self::new(
            code,
            format!("Invalid id: \"{id}\" (expecting \"{prefix}-...\")"),
        )
    }

    /// `DryRunOperation` [V]: the request would have succeeded.
    pub fn dry_run_ok() -> Self {
        Self::new(
            "DryRunOperation",
            "Request would have succeeded, but DryRun flag is set.",
        )
    }
}

/// Everything that stops an operation other than an AWS answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// AWS would refuse the request.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The error of a group commit, reported to every request in it.
    #[error(transparent)]
    Shared(std::sync::Arc<Error>),
    /// The operating system refused a file operation.
    #[error("{path}: {op}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        op: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The state document exists but cannot be used; it is left untouched.
    #[error(
        "{path}: the ebsim state is damaged ({reason}); it was left untouched. Restore it from a backup, or move it away to start from an empty state"
    )]
    StateDamaged {
        /// The state file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The state document is missing but the directory holds ebsim data,
    /// so starting from an empty state would lose track of it.
    #[error(
        "{path}: the ebsim state is missing but {home} holds volumes or snapshots; refusing to start from an empty state (restore state.json, or remove {home})"
    )]
    StateMissing {
        /// The state file that should be there.
        path: PathBuf,
        /// The EBSIM_HOME directory.
        home: PathBuf,
    },
    /// The state was written by a newer ebsim.
    #[error(
        "{path}: state version {found} is newer than this ebsim understands ({supported}); it was left untouched"
    )]
    StateVersion {
        /// The state file.
        path: PathBuf,
        /// The version found.
        found: u64,
        /// The newest version this build reads.
        supported: u64,
    },
    /// The state claims a version no ebsim wrote.
    #[error(
        "{path}: state version {found} was never written by ebsim (this ebsim reads versions {oldest} to {supported}); it was left untouched"
    )]
    StateVersionUnknown {
        /// The state file.
        path: PathBuf,
        /// The version found.
        found: u64,
        /// The oldest version this build reads.
        oldest: u64,
        /// The newest version this build reads.
        supported: u64,
    },
    /// EBSIM_HOME cannot be written (a read-only mount, no permission) and
    /// the command would change the state or its files.
    #[error(
        "{home}: EBSIM_HOME is read-only ({reason}); this command would change the state. describe-* commands and `ebsim clock` still work"
    )]
    ReadOnlyHome {
        /// The EBSIM_HOME directory.
        home: PathBuf,
        /// Why it cannot be written.
        reason: String,
    },
    /// Something other than a regular file sits where ebsim keeps a volume
    /// image, and the operation would have to remove or replace it.
    #[error("{path}: {reason}")]
    NotAnImage {
        /// The volume image path.
        path: PathBuf,
        /// What is there and what ebsim does about it.
        reason: String,
    },
    /// A write of the state failed on purpose (the `EBSIM_STATE_FAULT` test
    /// hook), as if the process had died at that point.
    #[error("injected fault while writing the state after {0} bytes")]
    InjectedFault(usize),
    /// Publishing a transaction's staged files stopped on purpose (the
    /// `EBSIM_PUBLISH_FAULT` test hook) after this many renames, as if the
    /// process had died there: the state is committed, the rest is left for
    /// the next transaction.
    #[error("injected fault while publishing staged files after {0} renames")]
    InjectedPublishFault(usize),
    /// An image file could not be created, read or changed.
    #[error(transparent)]
    Blockdev(#[from] crate::blockdev::Error),
    /// A snapshot's chunk or manifest is missing or does not match its hash.
    #[error("snapshot store: {path}: {reason}")]
    ChunkStore {
        /// The chunk or manifest file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Building a catalog image failed.
    #[error("building image {image}: {reason}")]
    Build {
        /// The AMI id.
        image: String,
        /// Why.
        reason: String,
    },
    /// A clock advance that would pass [`super::time::LATEST`].
    #[error(
        "cannot advance the clock by {}: the virtual clock stops at 9999-12-31T23:59:59.999Z (the last time AWS tools can print); it is {}, at most {} from there (`ebsim clock reset` brings it back to the real time)",
        super::time::format_duration(*by),
        now.to_wire(),
        super::time::format_duration(*left)
    )]
    ClockLimit {
        /// The advance asked for, in milliseconds.
        by: i64,
        /// The virtual now.
        now: super::time::Millis,
        /// The most the clock can still advance, in milliseconds.
        left: i64,
    },
    /// Neither EBSIM_HOME nor a home directory is known.
    #[error("cannot find where to keep the ebsim state: set EBSIM_HOME (or HOME)")]
    NoHome,
    /// An environment setting has a value ebsim does not understand.
    #[error("{var}={value}: {reason}")]
    BadSetting {
        /// The variable.
        var: String,
        /// Its value.
        value: String,
        /// What was expected.
        reason: String,
    },
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

    /// The AWS error inside, if this is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            Error::Shared(e) => e.api(),
            _ => None,
        }
    }
}

/// Results of this layer.
pub type Result<T> = std::result::Result<T, Error>;
