//! Version 3 directories: short-form in the inode,
//! one block with its leaf at the end, data blocks with one leaf block
//! (LEAF1), and node format (a da-btree of LEAFN blocks under node blocks,
//! free-index blocks). Reading takes the entries from the data blocks
//! only, which holds for every format the kernel writes; writing lays a
//! whole entry list out again in the smallest format it fits
//! ([`layout`]).
//!
//! The three address spaces of a directory file are 32 GiB apart: data
//! blocks from offset 0, the leaf/node space from 32 GiB, the free index
//! from 64 GiB.

pub mod block;
pub mod layout;
pub mod sf;

/// One directory entry (never `.` or `..`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    /// The name (1..=255 bytes, no `/` or NUL).
    pub name: Vec<u8>,
    /// The inode it names.
    pub ino: u64,
    /// `XFS_DIR3_FT_*`.
    pub ftype: u8,
}

/// `XFS_DIR3_FT_*` file types.
pub mod ftype {
    /// Unknown (no ftype feature).
    pub const UNKNOWN: u8 = 0;
    /// Regular file.
    pub const REG_FILE: u8 = 1;
    /// Directory.
    pub const DIR: u8 = 2;
    /// Character device.
    pub const CHRDEV: u8 = 3;
    /// Block device.
    pub const BLKDEV: u8 = 4;
    /// FIFO.
    pub const FIFO: u8 = 5;
    /// Socket.
    pub const SOCK: u8 = 6;
    /// Symbolic link.
    pub const SYMLINK: u8 = 7;
    /// One past the largest valid value.
    pub const MAX: u8 = 9;
}

/// Why a directory cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirError {
    /// The short-form directory in the inode is damaged.
    #[error("short-form directory: {0}")]
    ShortForm(String),
    /// A directory block is damaged.
    #[error("directory block {dablk}: {detail}")]
    Block {
        /// The logical directory block.
        dablk: u64,
        /// What is wrong.
        detail: String,
    },
}

/// Directory geometry: block size and where the spaces start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirGeo {
    /// Directory block size in bytes (`blocksize << dirblklog`).
    pub blksize: usize,
    /// Filesystem blocks per directory block.
    pub fsbcount: u64,
    /// Whether entries carry a file type byte.
    pub has_ftype: bool,
}

/// Byte offset of the leaf/node space in the directory file.
pub const LEAF_OFFSET: u64 = 1 << 35;
/// Byte offset of the free-index space.
pub const FREE_OFFSET: u64 = 1 << 36;
/// Size of every v3 directory block header (data, leaf, node, free).
pub const DIR3_HDR: usize = 64;

impl DirGeo {
    /// The geometry of a filesystem with these block sizes.
    pub fn new(blocksize: u32, dirblklog: u8, has_ftype: bool) -> Self {
        DirGeo {
            blksize: (blocksize as usize) << dirblklog,
            fsbcount: 1 << dirblklog,
            has_ftype,
        }
    }

    /// First directory block of the leaf space.
    pub fn leaf_first(&self) -> u64 {
        LEAF_OFFSET / self.blksize as u64
    }

    /// First directory block of the free-index space.
    pub fn free_first(&self) -> u64 {
        FREE_OFFSET / self.blksize as u64
    }

    /// Bytes a data entry with a `namelen`-byte name takes (8-aligned).
    pub fn entsize(&self, namelen: usize) -> usize {
        (8 + 1 + namelen + usize::from(self.has_ftype) + 2 + 7) & !7
    }

    /// Offset of the first entry after `.` and `..` in data block 0.
    pub fn data_first_offset(&self) -> usize {
        DIR3_HDR + self.entsize(1) + self.entsize(2)
    }
}

/// `xfs_da_hashname`: the directory name hash.
pub fn hashname(name: &[u8]) -> u32 {
    let mut hash: u32 = 0;
    let mut chunks = name.chunks_exact(4);
    for c in &mut chunks {
        hash = (u32::from(c[0]) << 21)
            ^ (u32::from(c[1]) << 14)
            ^ (u32::from(c[2]) << 7)
            ^ u32::from(c[3])
            ^ hash.rotate_left(28);
    }
    let r = chunks.remainder();
    match r.len() {
        3 => {
            (u32::from(r[0]) << 14)
                ^ (u32::from(r[1]) << 7)
                ^ u32::from(r[2])
                ^ hash.rotate_left(21)
        }
        2 => (u32::from(r[0]) << 7) ^ u32::from(r[1]) ^ hash.rotate_left(14),
        1 => u32::from(r[0]) ^ hash.rotate_left(7),
        _ => hash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_of_dot_entries() {
        assert_eq!(hashname(b"."), 0x2e);
        assert_eq!(hashname(b".."), 0x172e);
        assert_eq!(hashname(b""), 0);
    }

    #[test]
    fn geometry() {
        let g = DirGeo::new(4096, 0, true);
        assert_eq!(g.entsize(1), 16);
        assert_eq!(g.entsize(2), 16);
        assert_eq!(g.entsize(10), 24);
        assert_eq!(g.data_first_offset(), 0x60);
        assert_eq!(g.leaf_first(), 8388608);
        assert_eq!(g.free_first(), 16777216);
    }
}
