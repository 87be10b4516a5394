//! Filesystems: ext4 and XFS, each with mkfs, open, grow and statfs.
pub mod ext4;
