//! ext4: make (mkfs.ext4), grow (resize2fs), statfs, and read.
//!
//! Everything here sees only a [`BlockDevice`](crate::blockdev::BlockDevice)
//! (a whole image or a partition slice), plans first (pure functions
//! returning a plan with its [`WriteBatch`](crate::blockdev::WriteBatch))
//! and applies second, in one commit. The facts (mke2fs 1.47.0 defaults,
//! on-disk formats, checksum seeds, resize2fs's grow algorithm, the
//! kernel's statfs) are in `spec/ext4.md`; module docs cite its sections.
//!
//! Library API for later layers:
//! - [`probe`]: is there an ext2/3/4 magic here;
//! - [`Ext4::open`] / [`info`]: validated superblock and descriptors,
//!   [`Ext4Info`] (uuid, label, sizes, free counts, clean state);
//! - [`statfs`]: what a mounted filesystem would report to `df`;
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
pub mod journal;
pub mod layout;
pub mod mkfs;
pub mod resize_inode;
pub mod statfs;
pub mod superblock;
pub mod tables;

pub use error::{Error, GrowError, MkfsError};
pub use fs::{Ext4, Ext4Info, info, probe, read_superblock};
pub use statfs::{StatFs, statfs};

/// The time e2fsprogs uses: `E2FSPROGS_FAKE_TIME` parsed like
/// `strtoul(s, NULL, 0)` (decimal, 0x hex or 0 octal; garbage reads as
/// its valid prefix), when set and nonzero; else the clock.
pub fn e2fsprogs_now() -> u64 {
    if let Ok(s) = std::env::var("E2FSPROGS_FAKE_TIME") {
        let t = parse_c_ulong(&s);
        if t != 0 {
            return t;
        }
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `strtoul(s, NULL, 0)`: leading whitespace and sign, base prefix, the
/// longest valid digit run; 0 when none.
pub fn parse_c_ulong(s: &str) -> u64 {
    let s = s.trim_start();
    let (neg, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(r) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (16, r)
    } else if s.starts_with('0') {
        (8, s)
    } else {
        (10, s)
    };
    let mut v: u64 = 0;
    for c in digits.chars() {
        let Some(d) = c.to_digit(radix) else { break };
        v = v
            .saturating_mul(u64::from(radix))
            .saturating_add(u64::from(d));
    }
    if neg { v.wrapping_neg() } else { v }
}
