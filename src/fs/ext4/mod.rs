//! ext4: make (mkfs.ext4), grow (resize2fs), statfs, and read.
//!
//! Everything here sees only a [`BlockDevice`](crate::blockdev::BlockDevice)
//! (a whole image or a partition slice), plans first (pure functions
//! returning a plan with its [`WriteBatch`](crate::blockdev::WriteBatch))
//! and applies second, in one commit. Each module's documentation states
//! the facts it follows (mke2fs 1.47.0's defaults, the on-disk formats,
//! checksum seeds, resize2fs's grow algorithm, the kernel's statfs), as
//! measured against the real tools; the differential tests keep them true.
//!
//! Library API for later layers:
//! - [`probe`]: is there an ext2/3/4 magic here;
//! - [`Ext4::open`] / [`info`]: validated superblock and descriptors,
//!   [`Ext4Info`] (uuid, label, sizes, free counts, clean state);
//! - [`statfs`]: what a mounted filesystem would report to `df`;
//! - [`mke2fs`]: what mke2fs makes of its size, `-E` and `-U` arguments;
//! - [`mkfs::plan`] / [`mkfs::apply`];
//! - [`grow::plan`] / [`grow::apply`], whose [`grow::GrowPlan`] carries
//!   what resize2fs prints offline and online (`old_desc_blocks`, ...);
//! - [`files::Ext4Files`]: files and directories, read and written
//!   natively (the [`FileSystem`](crate::fs::node::FileSystem) trait).

pub mod bitmap;
pub mod checksum;
pub mod dir;
pub mod error;
pub mod extent;
pub mod features;
pub mod files;
pub mod fs;
pub mod geometry;
pub mod group_desc;
pub mod grow;
pub mod inode;
pub mod io_count;
pub mod journal;
pub mod layout;
pub mod min_size;
pub mod mke2fs;
pub mod mkfs;
mod relocate;
pub mod resize_inode;
pub mod statfs;
pub mod superblock;
pub mod tables;

pub use error::{Error, GrowError, MkfsError};
pub use fs::{Ext4, Ext4Info, info, probe, read_superblock};
pub use statfs::{StatFs, statfs};
