//! The resize inode (inode 7, `resize_inode` feature): a block-mapped file
//! whose double-indirect block lists the primary reserved GDT blocks, each
//! of which lists its copies in the backup groups. The kernel's online
//! resizer and resize2fs take new descriptor blocks from here. Built as
//! libext2fs's `ext2fs_create_resize_inode` builds it, and rebuilt after a
//! grow.

use super::inode::{Inode, S_IFREG};
use super::superblock::has_super_sparse;
use crate::bytes::write_u32le;

/// `i_block` index of the double-indirect pointer.
pub const DIND_BLOCK: usize = 13;

/// The geometry the reserved-GDT structure depends on.
#[derive(Debug, Clone, Copy)]
pub struct ResizeGeometry {
    /// Block size.
    pub block_size: u64,
    /// First data block (the superblock's block).
    pub first_data_block: u64,
    /// Group descriptor blocks.
    pub desc_blocks: u64,
    /// Reserved GDT blocks.
    pub reserved_gdt_blocks: u64,
    /// Groups.
    pub groups: u64,
    /// Blocks per group.
    pub blocks_per_group: u64,
}

/// The blocks to write for a resize inode: its dind block, and where the
/// primary reserved GDT blocks are (their contents come from
/// [`reserved_block`], one at a time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResizeBlocks {
    /// The dind block's contents.
    pub dind: Vec<u8>,
    /// The primary reserved GDT blocks, which are contiguous: (first
    /// block, how many).
    pub reserved: (u64, u64),
    /// Blocks the inode maps (its `i_blocks` in fs blocks).
    pub mapped_blocks: u64,
}

/// The groups holding backups of the reserved GDT blocks (groups with a
/// superblock copy, ascending, excluding group 0), as many as one block
/// can list.
fn backups(g: &ResizeGeometry) -> impl Iterator<Item = u64> {
    let per_block = (g.block_size / 4) as usize;
    (1..g.groups)
        .filter(|&grp| has_super_sparse(grp))
        .take(per_block)
}

/// Builds the dind block and counts the mapped blocks.
pub fn build(g: &ResizeGeometry) -> ResizeBlocks {
    let bs = g.block_size as usize;
    let apb = g.block_size / 4;
    let mut dind = vec![0u8; bs];
    let first = g.first_data_block + 1 + g.desc_blocks;
    let per_block = backups(g).count() as u64;
    for k in 0..g.reserved_gdt_blocks {
        let gdt_blk = first + k;
        let off = ((g.desc_blocks + k) % apb) as usize;
        // Block numbers of a resize_inode filesystem fit in 32 bits.
        write_u32le(&mut dind, off * 4, (gdt_blk & 0xFFFF_FFFF) as u32);
    }
    ResizeBlocks {
        dind,
        reserved: (first, g.reserved_gdt_blocks),
        mapped_blocks: 1 + g.reserved_gdt_blocks * (1 + per_block),
    }
}

impl ResizeGeometry {
    /// The geometry a superblock describes (its group count, descriptor
    /// blocks and reserved GDT blocks), as resize2fs rebuilds the inode
    /// for the resized filesystem.
    pub fn of(sb: &super::superblock::Superblock) -> Self {
        ResizeGeometry {
            block_size: u64::from(sb.block_size()),
            first_data_block: u64::from(sb.s_first_data_block),
            desc_blocks: sb.desc_blocks(),
            reserved_gdt_blocks: u64::from(sb.s_reserved_gdt_blocks),
            groups: sb.group_count(),
            blocks_per_group: u64::from(sb.s_blocks_per_group),
        }
    }

    /// The primary reserved GDT blocks: right after group 0's descriptors.
    pub fn primary_reserved(&self) -> std::ops::Range<u64> {
        let first = self.first_data_block + 1 + self.desc_blocks;
        first..first + self.reserved_gdt_blocks
    }
}

/// Writes every primary reserved GDT block (see [`reserved_block`]).
pub fn write_reserved(
    g: &ResizeGeometry,
    sink: &mut crate::blockdev::Sink<'_>,
) -> Result<(), crate::blockdev::Error> {
    let mut blk = vec![0u8; g.block_size as usize];
    for (k, b) in g.primary_reserved().enumerate() {
        reserved_block(g, k as u64, &mut blk);
        sink(b * g.block_size, &blk)?;
    }
    Ok(())
}

/// Fills `out` (one block) with primary reserved GDT block `k`: the list of
/// its copies in the backup groups.
pub fn reserved_block(g: &ResizeGeometry, k: u64, out: &mut [u8]) {
    out.fill(0);
    let gdt_blk = g.primary_reserved().start + k;
    for (i, grp) in backups(g).enumerate() {
        let expect = gdt_blk + grp * g.blocks_per_group;
        if i * 4 + 4 <= out.len() {
            write_u32le(out, i * 4, (expect & 0xFFFF_FFFF) as u32);
        }
    }
}

/// The inode for a fresh filesystem: regular 0600, one link, block-mapped,
/// size (apb² + apb + 12) × bs, times `now`.
pub fn new_inode(inode_size: usize, bs: u64, dind: u64, mapped_blocks: u64, now: u32) -> Inode {
    let apb = bs / 4;
    let mut ino = Inode::zeroed(inode_size);
    ino.i_mode = S_IFREG | 0o600;
    ino.i_links_count = 1;
    ino.i_size = (apb * apb + apb + 12) * bs;
    ino.i_blocks = mapped_blocks * (bs / 512);
    set_dind(&mut ino, dind);
    ino.i_atime = now;
    ino.i_ctime = now;
    ino.i_mtime = now;
    ino.i_extra_isize = 32;
    ino.i_crtime = now;
    ino
}

/// Writes the dind pointer into `i_block[13]`.
pub fn set_dind(ino: &mut Inode, dind: u64) {
    let off = DIND_BLOCK * 4;
    write_u32le(&mut ino.i_block, off, (dind & 0xFFFF_FFFF) as u32);
}

/// The dind pointer.
pub fn dind_of(ino: &Inode) -> u64 {
    u64::from(crate::bytes::read_u32le(&ino.i_block, DIND_BLOCK * 4))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::bytes::read_u32le;

    #[test]
    fn one_gib_resize_inode() {
        // mke2fs 1.47.0 on 1 GiB: 127 reserved GDT blocks, backups in groups
        // 1, 3, 5, 7 → i_blocks 5088 = (1 + 127 + 127·4)·8.
        let g = ResizeGeometry {
            block_size: 4096,
            first_data_block: 0,
            desc_blocks: 1,
            reserved_gdt_blocks: 127,
            groups: 8,
            blocks_per_group: 32768,
        };
        let r = build(&g);
        assert_eq!(r.mapped_blocks * 8, 5088);
        assert_eq!(read_u32le(&r.dind, 4), 2);
        assert_eq!(r.reserved, (2, 127));
        let mut b = vec![0u8; 4096];
        reserved_block(&g, 0, &mut b);
        assert_eq!(read_u32le(&b, 0), 32770);
        assert_eq!(read_u32le(&b, 12), 229378);
        reserved_block(&g, 1, &mut b);
        assert_eq!(read_u32le(&b, 12), 229379);
    }
}
