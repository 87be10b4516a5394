//! `s_kbytes_written` ("Lifetime writes") as e2fsprogs 1.47.0 counts it.
//!
//! libext2fs adds to the superblock's lifetime-write counter, when it
//! closes a filesystem opened read-write whose counter is not 0, the bytes
//! its Unix I/O manager has written to the device so far, in KiB, plus
//! `(descriptor blocks + 1) / (block size / 1 KiB)` for the superblock
//! and descriptors it is about to write. It samples the count after
//! writing the bitmaps and before the superblocks and descriptor tables.
//!
//! The manager writes through a cache of 8 blocks: a write of 1–4 blocks
//! lands in the cache and reaches the device only when its entry is
//! reused for another block (least recently used first) or the cache is
//! flushed; a read of 1–4 blocks that misses the cache takes an entry too.
//! Larger or sub-block I/O goes straight to the device (after writing the
//! dirty entries). So what the counter says depends on the order in which
//! the tool touched blocks: [`WriteCache`] replays that order, and
//! [`mke2fs`] is mke2fs's order for a new filesystem. Zeroing (of inode
//! tables, the journal, the device's tail) goes through `fallocate` and
//! counts nothing.

use super::files::block_map::{Shape, Slot};
use super::group_desc::{BG_BLOCK_UNINIT, BG_INODE_UNINIT};
use super::layout::BlockMapped;
use super::tables::{self, Groups};

/// Entries in libext2fs's Unix I/O cache.
const CACHE_SIZE: usize = 8;
/// Transfers of more blocks than this bypass the cache.
const DIRECT_OVER: u64 = 4;

/// The Unix I/O manager's block cache, counting the bytes that reach the
/// device.
#[derive(Debug, Clone)]
pub struct WriteCache {
    block_size: u64,
    /// (block, last access, dirty), at most [`CACHE_SIZE`].
    entries: Vec<(u64, u64, bool)>,
    clock: u64,
    /// Bytes written to the device.
    pub bytes_written: u64,
}

impl WriteCache {
    /// An empty cache for blocks of `block_size` bytes.
    pub fn new(block_size: u64) -> WriteCache {
        WriteCache {
            block_size,
            entries: Vec::with_capacity(CACHE_SIZE),
            clock: 0,
            bytes_written: 0,
        }
    }

    fn touch(&mut self, block: u64, write: bool) {
        self.clock += 1;
        if let Some(e) = self.entries.iter_mut().find(|e| e.0 == block) {
            e.1 = self.clock;
            e.2 |= write;
            return;
        }
        if self.entries.len() == CACHE_SIZE {
            // The least recently used entry makes room.
            let lru = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.1)
                .map(|(i, e)| (i, e.2));
            if let Some((i, dirty)) = lru {
                if dirty {
                    self.bytes_written += self.block_size;
                }
                self.entries.swap_remove(i);
            }
        }
        self.entries.push((block, self.clock, write));
    }

    /// A read of `count` blocks from `block`.
    pub fn read(&mut self, block: u64, count: u64) {
        if count > DIRECT_OVER {
            self.flush();
            return;
        }
        for b in block..block + count {
            self.touch(b, false);
        }
    }

    /// A write of `count` blocks at `block`.
    pub fn write(&mut self, block: u64, count: u64) {
        if count > DIRECT_OVER {
            self.flush();
            self.entries.clear();
            self.bytes_written += count * self.block_size;
            return;
        }
        for b in block..block + count {
            self.touch(b, true);
        }
    }

    /// A write of `bytes` that is no whole number of blocks (it bypasses
    /// the cache, which is written out and emptied first).
    pub fn write_bytes(&mut self, bytes: u64) {
        self.invalidate();
        self.bytes_written += bytes;
    }

    /// Writes every dirty entry and empties the cache (what a write by
    /// byte offset does first; its own bytes are not counted).
    pub fn invalidate(&mut self) {
        self.flush();
        self.entries.clear();
    }

    /// Writes every dirty entry.
    pub fn flush(&mut self) {
        for e in &mut self.entries {
            if e.2 {
                self.bytes_written += self.block_size;
                e.2 = false;
            }
        }
    }
}

/// libext2fs's one-block inode buffer in front of the cache: writing an
/// inode reads its inode table block first unless that block is the one
/// last read or written for an inode.
struct Inodes<'a> {
    io: &'a mut WriteCache,
    table: u64,
    per_block: u64,
    buffer: Option<u64>,
}

impl Inodes<'_> {
    fn block(&self, ino: u32) -> u64 {
        self.table + (u64::from(ino) - 1) / self.per_block
    }

    fn read(&mut self, ino: u32) {
        let b = self.block(ino);
        if self.buffer != Some(b) {
            self.io.read(b, 1);
            self.buffer = Some(b);
        }
    }

    fn write(&mut self, ino: u32) {
        self.read(ino);
        self.io.write(self.block(ino), 1);
    }
}

/// How the journal is mapped.
#[derive(Debug, Clone, Copy)]
pub enum Journal<'a> {
    /// By extents: its first block and the extent tree's leaf, if any.
    Extents { start: u64, leaf: Option<u64> },
    /// Block by block (without `extent`), with indirect blocks.
    Blocks(&'a BlockMapped),
}

/// What [`mke2fs`] needs to know of the new filesystem.
#[derive(Clone)]
pub struct NewFs<'a> {
    pub block_size: u64,
    pub inode_size: u64,
    /// First block of group 0's inode table.
    pub inode_table: u64,
    /// metadata_csum: mke2fs writes the reserved inodes 1–10 first.
    pub metadata_csum: bool,
    /// `-E root_owner` other than 0:0 rewrites the root inode.
    pub root_owner: bool,
    pub root_block: u64,
    /// lost+found's blocks in order.
    pub lpf_blocks: &'a [u64],
    /// The resize inode's double-indirect block and the primary reserved
    /// descriptor blocks it fills.
    pub resize: Option<(u64, std::ops::Range<u64>)>,
    /// The journal, if any.
    pub journal: Option<Journal<'a>>,
    /// The groups, whose initialized bitmaps are written at close.
    pub groups: &'a dyn Groups,
    pub desc_blocks: u64,
}

/// `s_kbytes_written` of a filesystem mke2fs 1.47.0 has just made,
/// counting from mke2fs's start value 1.
pub fn mke2fs(fs: &NewFs<'_>) -> u64 {
    let bs = fs.block_size;
    let mut io = WriteCache::new(bs);
    // The old superblock's sectors 2–7, then the boot sectors 0–1.
    io.write_bytes(3072);
    io.write_bytes(1024);
    let mut ino = Inodes {
        io: &mut io,
        table: fs.inode_table,
        per_block: (bs / fs.inode_size).max(1),
        buffer: None,
    };
    if fs.metadata_csum {
        for i in 1..11 {
            ino.write(i);
        }
    }
    // ext2fs_mkdir of the root: the new inode, its block, the inode as
    // mapped, then with its link count.
    ino.write(2);
    ino.io.write(fs.root_block, 1);
    ino.write(2);
    ino.write(2);
    if fs.root_owner {
        ino.read(2);
        ino.write(2);
    }
    // lost+found, linked into the root, looked up, then expanded.
    let (first, more) = fs.lpf_blocks.split_first().unwrap_or((&0, &[]));
    ino.write(11);
    ino.io.write(*first, 1);
    ino.write(11);
    ino.write(11);
    ino.io.read(fs.root_block, 1);
    ino.io.write(fs.root_block, 1);
    ino.write(2);
    ino.io.read(fs.root_block, 1);
    for &b in more {
        ino.io.write(b, 1);
        ino.write(11);
        ino.write(11);
    }
    // The bad blocks inode.
    ino.write(1);
    if let Some((dind, reserved)) = &fs.resize {
        ino.read(7);
        for b in reserved.clone() {
            ino.io.write(b, 1);
        }
        ino.io.write(*dind, 1);
        ino.write(7);
    }
    match fs.journal {
        Some(Journal::Extents { start, leaf }) => {
            for _ in 0..3 {
                ino.write(8);
            }
            if let Some(leaf) = leaf {
                // ext2fs_fallocate growing the tree into its leaf block:
                // the leaf and the inode in turn, the leaf last.
                ino.io.write(leaf, 1);
                ino.write(8);
                ino.io.read(leaf, 1);
            }
            ino.io.write(start, 1);
        }
        Some(Journal::Blocks(m)) => {
            // ext2fs_bmap2 allocating one block at a time: each new
            // indirect block written (zeroed) and linked into its parent,
            // the path read, the data block written, its indirect block
            // and the inode updated.
            let shape = Shape::new(bs);
            let block = |s: Slot| m.indirect.get(s).unwrap_or(0);
            let mut first = None;
            for run in m.map.runs() {
                for k in 0..run.len {
                    let (l, data) = (run.lblk + k, run.pblk + k);
                    first.get_or_insert(data);
                    let chain = shape.chain(l);
                    for (i, &s) in chain.iter().enumerate() {
                        if s.start == l {
                            ino.io.write(block(s), 1);
                            if i > 0 {
                                ino.io.write(block(chain[i - 1]), 1);
                            }
                        }
                        ino.io.read(block(s), 1);
                    }
                    ino.io.write(data, 1);
                    if let Some(&s) = chain.last() {
                        ino.io.write(block(s), 1);
                    }
                    ino.write(8);
                }
            }
            ino.write(8);
            if let Some(b) = first {
                ino.io.write(b, 1);
            }
        }
        None => {}
    }
    write_bitmaps(&mut io, fs.groups);
    1 + (io.bytes_written >> 10) + (fs.desc_blocks + 1) / (bs / 1024)
}

/// libext2fs's `write_bitmaps`: each group's block bitmap, then its inode
/// bitmap, those not flagged uninitialized.
fn write_bitmaps(io: &mut WriteCache, groups: &dyn Groups) {
    tables::each_desc(groups, &mut |_, d| {
        if !d.has_flag(BG_BLOCK_UNINIT) {
            io.write(d.bg_block_bitmap, 1);
        }
        if !d.has_flag(BG_INODE_UNINIT) {
            io.write(d.bg_inode_bitmap, 1);
        }
    });
}

/// What [`resize2fs`] needs to know of a grow that moves nothing.
#[derive(Clone)]
pub struct Grow<'a> {
    pub block_size: u64,
    /// Descriptor blocks the first flush writes (the classic table and,
    /// with meta_bg, every meta group block copy) and the new table's
    /// block count.
    pub flushed_desc_blocks: u64,
    pub new_desc_blocks: u64,
    /// The resize inode's inode table block, its double-indirect block
    /// and the primary reserved descriptor blocks after the grow.
    pub resize: Option<(u64, u64, std::ops::Range<u64>)>,
    /// The new filesystem's groups, whose initialized bitmaps are
    /// written at close.
    pub groups: &'a dyn Groups,
}

/// What resize2fs 1.47.0 adds to `s_kbytes_written` for a grow that
/// moves no block: it first marks the filesystem in error and flushes
/// its primary superblock and descriptors (the superblock goes out by
/// `io_channel_write_byte`, which empties the cache); later it rebuilds
/// the resize inode (reading the inode and its double-indirect block,
/// rewriting the reserved descriptor blocks, the block and the inode);
/// closing writes every initialized bitmap of the new filesystem.
pub fn resize2fs(g: &Grow<'_>) -> u64 {
    let bs = g.block_size;
    let mut io = WriteCache::new(bs);
    // (Which blocks does not matter: the cache is empty before and after.)
    io.write(1, g.flushed_desc_blocks);
    io.invalidate();
    if let Some((inode_block, dind, reserved)) = &g.resize {
        io.read(*inode_block, 1);
        io.write(*inode_block, 1);
        io.read(*dind, 1);
        // The block was zeroed, so every reserved block's pointers are
        // new: the block and the inode are rewritten, unless no reserved
        // block is left to point at.
        if !reserved.is_empty() {
            for b in reserved.clone() {
                io.write(b, 1);
            }
            io.write(*dind, 1);
            io.write(*inode_block, 1);
        }
    }
    write_bitmaps(&mut io, g.groups);
    (io.bytes_written >> 10) + (g.new_desc_blocks + 1) / (bs / 1024)
}

#[cfg(test)]
mod tests {
    use super::super::group_desc::GroupDesc;
    use super::super::superblock::Superblock;
    use super::*;

    #[test]
    fn cache_writes_back_the_least_recently_used() {
        let mut c = WriteCache::new(4096);
        for b in 0..8 {
            c.write(b, 1);
        }
        assert_eq!(c.bytes_written, 0);
        c.read(0, 1); // 0 is now the most recent
        c.write(8, 1); // evicts 1
        assert_eq!(c.bytes_written, 4096);
        c.read(9, 1); // evicts 2 (dirty)
        c.read(10, 1); // evicts 3 (dirty)
        assert_eq!(c.bytes_written, 3 * 4096);
        c.write_bytes(1024); // flushes 0, 4..8 dirty (5 + 1 = 6 blocks)
        assert_eq!(c.bytes_written, 3 * 4096 + 6 * 4096 + 1024);
        c.write(0, 5);
        assert_eq!(c.bytes_written, 9 * 4096 + 1024 + 5 * 4096);
    }

    /// Groups with the given initialized bitmaps: each entry is a group's
    /// (block bitmap, inode bitmap), 0 for one flagged uninitialized.
    struct Listed {
        sb: Superblock,
        descs: Vec<GroupDesc>,
    }

    impl Listed {
        fn new(groups: &[(u64, u64)]) -> Listed {
            let mut sb = Superblock::zeroed();
            sb.s_blocks_per_group = 32768;
            sb.s_blocks_count = 32768 * groups.len() as u64;
            let descs = groups
                .iter()
                .map(|&(bb, ib)| GroupDesc {
                    bg_block_bitmap: bb,
                    bg_inode_bitmap: ib,
                    bg_flags: if bb == 0 { BG_BLOCK_UNINIT } else { 0 }
                        | if ib == 0 { BG_INODE_UNINIT } else { 0 },
                    ..GroupDesc::default()
                })
                .collect();
            Listed { sb, descs }
        }
    }

    impl Groups for Listed {
        fn sb(&self) -> &Superblock {
            &self.sb
        }
        fn descs(&self, groups: std::ops::Range<u64>, out: &mut Vec<GroupDesc>) {
            out.extend_from_slice(&self.descs[groups.start as usize..groups.end as usize]);
        }
        fn block_bitmap(&self, _: u64) -> Vec<u8> {
            Vec::new()
        }
        fn inode_bitmap(&self, _: u64) -> Option<Vec<u8>> {
            None
        }
    }

    /// mke2fs 1.47.0 on a 3 GiB file, defaults: "Lifetime writes: 1561 kB"
    /// (blocks as dumpe2fs lists them; 24 groups, bitmaps written for
    /// group 0, the journal's group 11, group 16 holding the second flex
    /// group's tables, and the last).
    #[test]
    fn mke2fs_3g_defaults() {
        let lpf = [8610, 8611, 8612, 8613];
        let mut groups = vec![(0, 0); 24];
        groups[0] = (385, 401);
        groups[11] = (396, 0);
        groups[16] = (524288, 0);
        groups[23] = (524295, 0);
        let groups = Listed::new(&groups);
        let fs = NewFs {
            block_size: 4096,
            inode_size: 256,
            inode_table: 417,
            metadata_csum: true,
            root_owner: false,
            root_block: 8609,
            lpf_blocks: &lpf,
            resize: Some((8614, 2..385)),
            journal: Some(Journal::Extents {
                start: 360448,
                leaf: None,
            }),
            groups: &groups,
            desc_blocks: 1,
        };
        assert_eq!(mke2fs(&fs), 1561);
    }

    /// resize2fs 1.47.0 growing that mke2fs's 1 GiB filesystem to 20 GiB
    /// adds 565 KiB (533 kB before, 1098 kB after): 20 initialized bitmaps
    /// of 160 groups.
    #[test]
    fn resize2fs_1g_to_20g() {
        let written = [
            129, 137, 133, 136, 4761, 524288, 524297, 524299, 1048576, 1572864, 1572865, 2097152,
            2621440, 2621441, 3145728, 3670016, 3670029, 4194304, 4718592, 4718607,
        ];
        // Which group each belongs to does not change the count: one
        // block bitmap per group, in order.
        let mut groups: Vec<(u64, u64)> = written.iter().map(|&b| (b, 0)).collect();
        groups.resize(160, (0, 0));
        let groups = Listed::new(&groups);
        let g = Grow {
            block_size: 4096,
            flushed_desc_blocks: 1,
            new_desc_blocks: 3,
            resize: Some((145, 4246, 4..129)),
            groups: &groups,
        };
        assert_eq!(resize2fs(&g), 565);
    }
}
