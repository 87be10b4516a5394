//! What went wrong inside the file layer, in words that name the structure
//! and where it is. Each converts into the [`NodeError`] the
//! [`FileSystem`](crate::fs::node::FileSystem) trait returns, with the
//! errno-like kind the kernel would give (`EUCLEAN` for damaged metadata,
//! `EOPNOTSUPP` for what ebsim reads but does not write, `EIO`).

use crate::blockdev;
use crate::fs::node::{ErrorKind, NodeError};

/// A damaged structure, a feature ebsim does not handle, or a device error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The device failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being read or written ("inode 12", "block 4242").
        what: String,
        /// The device's error.
        source: blockdev::Error,
    },
    /// The filesystem could not be opened (superblock or descriptors).
    #[error(transparent)]
    Open(crate::fs::ext4::Error),
    /// An inode's checksum does not match its bytes.
    #[error("inode {ino}: checksum does not match")]
    InodeChecksum {
        /// Inode number.
        ino: u32,
    },
    /// An inode makes no sense for what it should be.
    #[error("inode {ino}: {why}")]
    BadInode {
        /// Inode number.
        ino: u32,
        /// What is wrong.
        why: String,
    },
    /// An extent tree node is damaged.
    #[error("inode {ino}: extent tree {at}: {why}")]
    ExtentTree {
        /// Inode number.
        ino: u32,
        /// "root (in the inode)" or "block N".
        at: String,
        /// What is wrong.
        why: String,
    },
    /// A block map (`i_block` or an indirect block) is damaged.
    #[error("inode {ino}: block map, {at}: {why}")]
    BlockMap {
        /// Inode number.
        ino: u32,
        /// "i_block[N]", "indirect block B, entry I" or "the whole map".
        at: String,
        /// What is wrong.
        why: String,
    },
    /// A directory block is damaged.
    #[error("directory inode {dir}, logical block {lblk}: {why}")]
    DirBlock {
        /// Directory inode.
        dir: u32,
        /// Block index in the directory.
        lblk: u64,
        /// What is wrong.
        why: String,
    },
    /// A group's bitmap or counters disagree.
    #[error("block group {group}: {why}")]
    Group {
        /// Group number.
        group: u32,
        /// What is wrong.
        why: String,
    },
    /// An extended-attribute block is damaged.
    #[error("inode {ino}: extended attribute block {block}: {why}")]
    XattrBlock {
        /// Owning inode.
        ino: u32,
        /// Block number.
        block: u64,
        /// What is wrong.
        why: String,
    },
    /// The filesystem has a feature the file layer does not handle.
    #[error("the filesystem has the {0} feature, which ebsim's ext4 file layer does not support")]
    Feature(&'static str),
    /// The filesystem lacks a feature the file layer needs.
    #[error("the filesystem lacks the {0} feature, which ebsim's ext4 file layer needs")]
    MissingFeature(&'static str),
    /// The filesystem is in a state that must be repaired or replayed
    /// first (like the kernel's refusal to mount, or e2fsck's advice).
    #[error("{0}")]
    State(String),
    /// An inode uses a format the file layer reads but does not write (or
    /// does not read).
    #[error("inode {ino} uses {what}, which ebsim's ext4 file layer does not support")]
    InodeFormat {
        /// Inode number.
        ino: u32,
        /// The format ("inline data", "an extended attribute inode", ...).
        what: &'static str,
    },
    /// An earlier sync failed; the staged changes were not written and
    /// the filesystem must be reopened.
    #[error("an earlier sync failed ({0}); reopen the filesystem")]
    Poisoned(String),
}

impl FileError {
    /// The errno-like kind the kernel would report.
    pub fn kind(&self) -> ErrorKind {
        match self {
            FileError::Io { .. } | FileError::Poisoned(_) => ErrorKind::Io,
            FileError::Open(crate::fs::ext4::Error::Io(_)) => ErrorKind::Io,
            FileError::Feature(_)
            | FileError::MissingFeature(_)
            | FileError::InodeFormat { .. }
            | FileError::State(_) => ErrorKind::Unsupported,
            FileError::Open(_)
            | FileError::InodeChecksum { .. }
            | FileError::BadInode { .. }
            | FileError::ExtentTree { .. }
            | FileError::BlockMap { .. }
            | FileError::DirBlock { .. }
            | FileError::Group { .. }
            | FileError::XattrBlock { .. } => ErrorKind::Corrupt,
        }
    }

    /// A device error while handling `what`.
    pub fn io(what: impl Into<String>, source: blockdev::Error) -> Self {
        FileError::Io {
            what: what.into(),
            source,
        }
    }
}

impl From<FileError> for NodeError {
    fn from(e: FileError) -> Self {
        NodeError::with(e.kind(), e)
    }
}
