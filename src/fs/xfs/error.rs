//! Errors of the XFS layer. Each names the structure and, where it has one,
//! the allocation group, so a user can see what is wrong and where.

use super::verify::{Corruption, Problem};
use std::fmt;

/// An on-disk structure, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Structure {
    /// A superblock (primary in AG 0, secondaries elsewhere).
    Superblock,
    /// The free-space header of an AG.
    Agf,
    /// The inode header of an AG.
    Agi,
    /// The free-list block of an AG.
    Agfl,
    /// The free-space btree by block number.
    Bnobt,
    /// The free-space btree by size.
    Cntbt,
    /// The inode btree.
    Inobt,
    /// The free inode btree.
    Finobt,
    /// The internal log.
    Log,
}

impl fmt::Display for Structure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Structure::Superblock => "superblock",
            Structure::Agf => "AGF",
            Structure::Agi => "AGI",
            Structure::Agfl => "AGFL",
            Structure::Bnobt => "bnobt block",
            Structure::Cntbt => "cntbt block",
            Structure::Inobt => "inobt block",
            Structure::Finobt => "finobt block",
            Structure::Log => "log",
        })
    }
}

/// Errors of the XFS layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing the device failed.
    #[error(transparent)]
    Io(#[from] crate::blockdev::Error),
    /// The device does not start with an XFS superblock.
    #[error("not an XFS filesystem (unexpected SB magic number {magic:#010x})")]
    NotXfs {
        /// The four bytes found where `XFSB` belongs.
        magic: u32,
    },
    /// The device is shorter than the structure being read.
    #[error(
        "image truncated: {structure} of AG {agno} lies at byte {offset}, past the end ({size} bytes)"
    )]
    Truncated {
        /// What was being read.
        structure: Structure,
        /// Its allocation group.
        agno: u32,
        /// Where it lies.
        offset: u64,
        /// The device size.
        size: u64,
    },
    /// A structure's CRC32C does not match its contents.
    #[error(
        "bad CRC in {structure} of AG {agno}: stored {stored:#010x}, computed {computed:#010x}"
    )]
    BadCrc {
        /// The structure.
        structure: Structure,
        /// Its allocation group.
        agno: u32,
        /// The CRC on disk.
        stored: u32,
        /// The CRC of the contents.
        computed: u32,
    },
    /// A metadata block the kernel's read verifier rejects (see
    /// [`super::verify`]): where it is and what is wrong.
    #[error("{0}")]
    Metadata(Box<Corruption>),
    /// A structure holds values that cannot be right.
    #[error("corrupt {structure} in AG {agno}: {detail}")]
    Corrupt {
        /// The structure.
        structure: Structure,
        /// Its allocation group.
        agno: u32,
        /// What is wrong.
        detail: String,
    },
    /// A valid XFS that ebsim does not handle.
    #[error("unsupported filesystem: {0}")]
    Unsupported(String),
    /// The log holds changes not yet written to the filesystem.
    #[error(
        "the log is dirty (not cleanly unmounted: {0}); mount and unmount it to replay the log, \
         or run xfs_repair"
    )]
    DirtyLog(String),
    /// A grow or mkfs request that cannot be satisfied (the kernel's
    /// EINVAL).
    #[error("{0}")]
    Invalid(String),
    /// Space a shrink needs free is not (the kernel's ENOSPC).
    #[error("{0}")]
    NoSpace(String),
}

impl Error {
    /// A [`Error::Metadata`] for `problem` in `structure` of AG `agno`.
    pub(crate) fn metadata(structure: Structure, agno: u32, problem: Problem) -> Self {
        Error::Metadata(Box::new(Corruption::new(structure, agno, problem)))
    }

    /// The same error, located at sector `daddr` when it is a
    /// [`Error::Metadata`] without an address.
    pub(crate) fn at(self, daddr: u64) -> Self {
        match self {
            Error::Metadata(c) if c.daddr.is_none() => Error::Metadata(Box::new(c.at(daddr))),
            e => e,
        }
    }

    pub(crate) fn corrupt(structure: Structure, agno: u32, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            structure,
            agno,
            detail: detail.into(),
        }
    }
}

/// Result of the XFS layer.
pub type Result<T> = std::result::Result<T, Error>;
