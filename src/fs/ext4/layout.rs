//! Block allocation as libext2fs does it: `ext2fs_get_free_blocks2`,
//! `flexbg_offset` and `ext2fs_allocate_group_table` (flex_bg placement of
//! bitmaps and inode tables), `ext2fs_new_block2`, and the journal's extent
//! allocation. mkfs and the resize2fs grow planner both place new group
//! metadata with [`Allocator::allocate_group_table`], on a [`BlockSet`] of
//! used blocks.

use super::bitmap::BlockSet;
use super::files::block_map::{Indirect, Shape, Slot};
use super::files::map::{FileMap, Run};

/// The allocator's view of a filesystem: geometry and the used-block set.
#[derive(Debug, Clone)]
pub struct Allocator {
    /// Used blocks.
    pub used: BlockSet,
    /// Total blocks.
    pub blocks: u64,
    /// `s_first_data_block`.
    pub fdb: u64,
    /// Blocks per group.
    pub bpg: u64,
    /// Number of groups.
    pub groups: u64,
    /// Groups per flex group (1 << s_log_groups_per_flex).
    pub flex: u64,
    /// Inode table blocks per group.
    pub itb: u64,
}

/// Where one group's bitmaps and inode table went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupTables {
    /// Block bitmap.
    pub block_bitmap: u64,
    /// Inode bitmap.
    pub inode_bitmap: u64,
    /// First inode table block.
    pub inode_table: u64,
}

/// Every group's table locations, 12 bytes a group while every block
/// number fits in 32 bits (16 TiB of 4 KiB blocks), 24 beyond: a plan of a
/// 16 TiB filesystem keeps 131072 of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableList {
    narrow: Vec<[u32; 3]>,
    wide: Vec<GroupTables>,
}

impl TableList {
    /// An empty list with room for `n`.
    pub fn with_capacity(n: usize) -> Self {
        TableList {
            narrow: Vec::with_capacity(n),
            wide: Vec::new(),
        }
    }

    /// Appends a group's tables.
    pub fn push(&mut self, t: GroupTables) {
        let narrow = (
            u32::try_from(t.block_bitmap),
            u32::try_from(t.inode_bitmap),
            u32::try_from(t.inode_table),
        );
        match narrow {
            (Ok(b), Ok(i), Ok(it)) if self.wide.is_empty() => self.narrow.push([b, i, it]),
            _ => {
                if self.wide.is_empty() {
                    self.wide = self.narrow.drain(..).map(widen).collect();
                    self.narrow = Vec::new();
                }
                self.wide.push(t);
            }
        }
    }

    /// Group `i`'s tables.
    pub fn get(&self, i: usize) -> Option<GroupTables> {
        if self.wide.is_empty() {
            self.narrow.get(i).copied().map(widen)
        } else {
            self.wide.get(i).copied()
        }
    }

    /// The last group's tables.
    pub fn last(&self) -> Option<GroupTables> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.narrow.len().max(self.wide.len())
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn widen(t: [u32; 3]) -> GroupTables {
    GroupTables {
        block_bitmap: u64::from(t[0]),
        inode_bitmap: u64::from(t[1]),
        inode_table: u64::from(t[2]),
    }
}

/// A file's allocation: extents (start, length) and the extent tree's
/// index block, if any.
pub type FileExtents = (Vec<(u64, u64)>, Option<u64>);

/// No room for a group's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoSpace {
    /// The group whose tables did not fit.
    pub group: u64,
}

impl Allocator {
    /// First block of group `g`.
    pub fn group_first(&self, g: u64) -> u64 {
        self.fdb + g * self.bpg
    }

    /// Last block of group `g`.
    pub fn group_last(&self, g: u64) -> u64 {
        if g + 1 >= self.groups {
            self.blocks - 1
        } else {
            self.group_first(g) + self.bpg - 1
        }
    }

    /// The group holding block `b`.
    pub fn group_of(&self, b: u64) -> u64 {
        (b - self.fdb) / self.bpg
    }

    /// `ext2fs_get_free_blocks2`: the first `b` (in the library's scan
    /// order) such that `b..b+num` is free. With `finish > start` the scan
    /// covers `start..finish` and fails at the end of the filesystem;
    /// otherwise it wraps to the first data block and stops at `finish`.
    pub fn get_free(&self, start: u64, finish: u64, num: u64) -> Option<u64> {
        let num = num.max(1);
        let b0 = if start == 0 { self.fdb } else { start };
        let finish = if finish == 0 { start } else { finish };
        // Last b with b + num - 1 < blocks.
        let end = (self.blocks + 1).checked_sub(num)?;
        if finish > start {
            return self.used.find_fit(b0, finish.min(end), num);
        }
        if let Some(b) = self.used.find_fit(b0, end, num) {
            return Some(b);
        }
        // Wrapped: from the first data block up to `finish` (the library
        // would loop forever if `finish` were never reached again; a full
        // pass is the same answer).
        let stop = if finish > self.fdb {
            finish.min(end)
        } else {
            end
        };
        self.used.find_fit(self.fdb, stop, num)
    }

    /// `flexbg_offset`: where to start looking for `elem` blocks of group
    /// `g`'s metadata (0 when nothing fits).
    fn flexbg_offset(&self, g: u64, start_blk: u64, rem_grp: u64, elem: u64) -> u64 {
        let flexbg = g / self.flex;
        let size = (rem_grp * elem).min(self.bpg / 4);
        if start_blk != 0 && start_blk < self.blocks {
            if let Some(b) = self.get_free(start_blk, start_blk + size, elem) {
                return b;
            }
        }
        let start = self.group_first(self.flex * flexbg);
        let last_grp = (g | (self.flex - 1)).min(self.groups - 1);
        let last_blk = self.group_last(last_grp);
        self.get_free(start, last_blk, size)
            .or_else(|| self.get_free(start, last_blk, elem))
            .or_else(|| self.get_free(0, last_blk, elem))
            .unwrap_or(0)
    }

    /// `ext2fs_allocate_group_table` with flex_bg: places group `g`'s block
    /// bitmap, inode bitmap and inode table, marking them used. `prev` is
    /// group `g-1`'s placement (used when `g` is not the first of its flex
    /// group).
    pub fn allocate_group_table(
        &mut self,
        g: u64,
        prev: Option<GroupTables>,
    ) -> Result<GroupTables, NoSpace> {
        self.allocate_missing(g, GroupTables::default(), prev)
    }

    /// `ext2fs_allocate_group_table` for a group some of whose tables are
    /// already placed: a location of 0 in `have` is allocated (and marked
    /// used), the others are kept and only steer where the next one is
    /// looked for, as in the library (resize2fs relocating the tables that
    /// sit where a bigger descriptor table goes).
    pub fn allocate_missing(
        &mut self,
        g: u64,
        have: GroupTables,
        prev: Option<GroupTables>,
    ) -> Result<GroupTables, NoSpace> {
        let fail = NoSpace { group: g };
        let group_blk = self.group_first(g);
        let last_grp = (g | (self.flex - 1)).min(self.groups - 1);
        let rem_grps = last_grp - g + 1;
        let in_flex = g % self.flex != 0;
        let prev = if in_flex { prev } else { None };
        let mut table_offset = self.flex;
        if !in_flex && last_grp == self.groups - 1 {
            // The last flex group keeps its tables contiguous.
            let t = last_grp & (self.flex - 1);
            table_offset = if t == 0 { self.flex } else { t + 1 };
        }
        let last_blk = self.group_last(last_grp);

        // Block bitmap.
        let prev_block = prev.map_or(0, |p| p.block_bitmap + 1);
        let start = self.flexbg_offset(g, prev_block, rem_grps, 1);
        let bb = if have.block_bitmap != 0 {
            have.block_bitmap
        } else {
            let bb = self
                .get_free(start, last_blk, 1)
                .or_else(|| self.get_free(group_blk, last_blk, 1))
                .ok_or(fail)?;
            self.used.insert_block(bb);
            bb
        };

        // Inode bitmap.
        let prev_block = match prev {
            Some(p) => p.inode_bitmap + 1,
            None => bb + table_offset,
        };
        let start = self.flexbg_offset(g, prev_block, rem_grps, 1);
        let ib = if have.inode_bitmap != 0 {
            have.inode_bitmap
        } else {
            let ib = self
                .get_free(start, last_blk, 1)
                .or_else(|| self.get_free(group_blk, last_blk, 1))
                .ok_or(fail)?;
            self.used.insert_block(ib);
            ib
        };

        // Inode table.
        let prev_block = match prev {
            Some(p) => p.inode_table + self.itb,
            None => ib + table_offset,
        };
        let start = self.flexbg_offset(g, prev_block, rem_grps, self.itb);
        let it = if have.inode_table != 0 {
            have.inode_table
        } else {
            let it = self.get_free(start, last_blk, self.itb).ok_or(fail)?;
            self.used.insert(it..it + self.itb);
            it
        };
        Ok(GroupTables {
            block_bitmap: bb,
            inode_bitmap: ib,
            inode_table: it,
        })
    }

    /// `ext2fs_allocate_group_table` without flex_bg: group `g`'s block
    /// bitmap, inode bitmap and inode table inside the group, from its
    /// first free block. With a RAID `stride` the bitmaps start `itb`
    /// blocks past the group's first free block plus `stride * g` (in 32
    /// bits, as the library computes it) modulo what is left of the group,
    /// so that they rotate over the disks; the inode table still takes the
    /// group's first free run.
    pub fn allocate_group_table_in_group(
        &mut self,
        g: u64,
        stride: u32,
    ) -> Result<GroupTables, NoSpace> {
        let fail = NoSpace { group: g };
        let group_blk = self.group_first(g);
        let last_blk = self.group_last(g);
        let mut start = group_blk;
        if stride != 0 {
            start = self.get_free(group_blk, last_blk, 1).ok_or(fail)?;
            start += self.itb;
            let span = (last_blk + 1).saturating_sub(start).max(1);
            start += u64::from(stride.wrapping_mul(g as u32)) % span;
            if start >= last_blk {
                start = group_blk;
            }
        }
        let one = |a: &mut Self| -> Result<u64, NoSpace> {
            let b = a
                .get_free(start, last_blk, 1)
                .or_else(|| a.get_free(group_blk, last_blk, 1))
                .ok_or(fail)?;
            a.used.insert_block(b);
            Ok(b)
        };
        let bb = one(self)?;
        let ib = one(self)?;
        let it = self.get_free(group_blk, last_blk, self.itb).ok_or(fail)?;
        self.used.insert(it..it + self.itb);
        Ok(GroupTables {
            block_bitmap: bb,
            inode_bitmap: ib,
            inode_table: it,
        })
    }

    /// `ext2fs_new_block2`: the first free block at or after `goal`,
    /// wrapping to the first data block. Marks it used.
    pub fn new_block(&mut self, goal: u64) -> Option<u64> {
        let goal = if goal < self.fdb || goal >= self.blocks {
            self.fdb
        } else {
            goal
        };
        let b = self
            .used
            .first_free(goal, self.blocks)
            .or_else(|| self.used.first_free(self.fdb, goal))?;
        self.used.insert_block(b);
        Some(b)
    }

    /// Allocates `count` blocks for a file as libext2fs's fallocate does
    /// for the journal: maximal free runs (at most 32768 blocks each) from
    /// the first free block at or after `goal`; when the fifth extent is
    /// added the in-inode tree splits and an index block is taken with goal
    /// "just before the first extent". Returns (extents, index block).
    pub fn allocate_extents(&mut self, goal: u64, count: u64) -> Option<FileExtents> {
        let mut extents: Vec<(u64, u64)> = Vec::new();
        let mut etb = None;
        let mut goal = goal;
        let mut left = count;
        while left > 0 {
            let g = if goal < self.fdb || goal >= self.blocks {
                self.fdb
            } else {
                goal
            };
            let s = self
                .used
                .first_free(g, self.blocks)
                .or_else(|| self.used.first_free(self.fdb, g))?;
            let len = self
                .used
                .free_run_len(s, left.min(super::extent::MAX_INIT_LEN), self.blocks);
            self.used.insert(s..s + len);
            extents.push((s, len));
            left -= len;
            goal = s + len;
            if extents.len() == 5 && etb.is_none() {
                let first = extents[0].0;
                etb = Some(self.new_block(first.saturating_sub(1))?);
            }
        }
        Some((extents, etb))
    }
}

/// Where a block-mapped file's blocks went (ext2/ext3 files, inodes
/// without `EXT4_EXTENTS_FL`): its data as a [`FileMap`] and its
/// indirect blocks by [`Slot`], as `files::block_map` encodes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockMapped {
    /// Logical to physical data blocks.
    pub map: FileMap,
    /// Each indirect block's physical block.
    pub indirect: Indirect,
}

impl Allocator {
    /// Allocates `count` blocks for a block-mapped file as libext2fs's
    /// `ext2fs_fallocate` does without extents (mke2fs's ext3 journal):
    /// one logical block at a time through `ext2fs_bmap2`, the indirect
    /// blocks on its path first, each new block the first free one at or
    /// after its goal. A data block's goal is the data block before it
    /// (the first's is `goal`), or its indirect block for the first entry
    /// there; an indirect block's, the block before it in its parent (the
    /// IND block follows the last direct block, DIND follows IND, TIND
    /// follows DIND), or its parent for the first entry. None when the
    /// filesystem is full or the file is longer than a block map reaches.
    pub fn allocate_block_mapped(
        &mut self,
        goal: u64,
        count: u64,
        shape: Shape,
    ) -> Option<BlockMapped> {
        let mut m = BlockMapped::default();
        let mut prev_data = goal;
        for lblk in 0..count {
            if lblk >= shape.end() {
                return None;
            }
            let chain = shape.chain(lblk);
            let mut parent: Option<(Slot, u64)> = None;
            for &s in &chain {
                let node = match m.indirect.get(s) {
                    Some(b) => b,
                    None => {
                        let g = match parent {
                            // A region's top: after the top before it, or
                            // after the last direct block.
                            None if s.height == 1 => prev_data,
                            None => m.indirect.get(Slot {
                                start: s.start - shape.span(s.height - 1),
                                height: s.height - 1,
                            })?,
                            Some((p, pb)) if s.start == p.start => pb,
                            Some(_) => m.indirect.get(Slot {
                                start: s.start - shape.span(s.height),
                                height: s.height,
                            })?,
                        };
                        let b = self.new_block32(g)?;
                        m.indirect.insert(s, b);
                        b
                    }
                };
                parent = Some((s, node));
            }
            let g = match parent {
                Some((p, pb)) if lblk == p.start => pb,
                _ => prev_data,
            };
            let b = self.new_block32(if lblk == 0 { goal } else { g })?;
            m.map.insert(Run {
                lblk,
                len: 1,
                pblk: b,
                unwritten: false,
            });
            prev_data = b;
        }
        Some(m)
    }

    /// [`Allocator::new_block`] for a block-mapped file, whose pointers
    /// have 32 bits.
    fn new_block32(&mut self, goal: u64) -> Option<u64> {
        self.new_block(goal).filter(|&b| b <= u64::from(u32::MAX))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::fs::ext4::files::block_map;

    #[test]
    fn table_list_widens_when_it_must() {
        let t = |b: u64| GroupTables {
            block_bitmap: b,
            inode_bitmap: b + 1,
            inode_table: b + 2,
        };
        let mut l = TableList::with_capacity(2);
        l.push(t(5));
        l.push(t(7));
        assert_eq!((l.len(), l.get(1), l.last()), (2, Some(t(7)), Some(t(7))));
        l.push(t(1 << 33));
        assert_eq!(l.get(0), Some(t(5)));
        assert_eq!(l.get(2), Some(t(1 << 33)));
        assert_eq!(l.get(3), None);
        assert_eq!(l.len(), 3);
    }

    fn alloc_1g() -> Allocator {
        let mut used = BlockSet::new();
        // Backup groups 0, 1, 3, 5, 7: sb + 1 GDT + 127 reserved.
        for g in [0u64, 1, 3, 5, 7] {
            used.insert(g * 32768..g * 32768 + 129);
        }
        Allocator {
            used,
            blocks: 262144,
            fdb: 0,
            bpg: 32768,
            groups: 8,
            flex: 16,
            itb: 512,
        }
    }

    #[test]
    fn one_gib_tables_match_mke2fs() {
        // mke2fs 1.47.0 on 1 GiB (dumpe2fs): block bitmaps 129–136, inode
        // bitmaps 137–144, inode tables 145–4240.
        let mut a = alloc_1g();
        let mut prev = None;
        let mut all = Vec::new();
        for g in 0..8 {
            let t = a.allocate_group_table(g, prev).unwrap();
            prev = Some(t);
            all.push(t);
        }
        assert_eq!(
            all[0],
            GroupTables {
                block_bitmap: 129,
                inode_bitmap: 137,
                inode_table: 145
            }
        );
        assert_eq!(
            all[7],
            GroupTables {
                block_bitmap: 136,
                inode_bitmap: 144,
                inode_table: 145 + 7 * 512
            }
        );
        assert_eq!(a.new_block(0), Some(4241));
    }

    #[test]
    fn block_mapped_journal_matches_mke2fs_ext3() {
        // mke2fs 1.47.0's ext3 on 1 GiB (debugfs stat <8>): (0-11):585-596,
        // (IND):597, (12-1035):598-1621, (DIND):1622, (IND):1623,
        // (1036-2059):1624-2647, (IND):2648, ..., (7180-8191):7774-8785.
        let shape = Shape::new(4096);
        let mut a = alloc_1g();
        a.used.insert(0..585);
        let m = a.allocate_block_mapped(0, 8192, shape).unwrap();
        let root = block_map::encode_root(shape, &m.map, &m.indirect).unwrap();
        let ptr = |i: usize| crate::bytes::read_u32le(&root, i * 4);
        assert_eq!((ptr(0), ptr(1)), (585, 586));
        assert_eq!([ptr(11), ptr(12), ptr(13), ptr(14)], [596, 597, 1622, 0]);
        let mut ind: Vec<u64> = m.indirect.iter().map(|(_, b)| b).collect();
        ind.sort_unstable();
        assert_eq!(&ind[..4], &[597, 1622, 1623, 2648]);
        assert_eq!(*ind.last().unwrap(), 7773);
        let slot = |start, height| Slot { start, height };
        let first_ind = block_map::encode_block(shape, slot(12, 1), &m.map, &m.indirect).unwrap();
        assert_eq!(crate::bytes::read_u32le(&first_ind, 0), 598);
        let dind = block_map::encode_block(shape, slot(1036, 2), &m.map, &m.indirect).unwrap();
        let dptr = |i: usize| crate::bytes::read_u32le(&dind, i * 4);
        assert_eq!([dptr(0), dptr(1), dptr(2)], [1623, 2648, 3673]);
        let runs: Vec<(u64, u64)> = m.map.runs().map(|r| (r.pblk, r.len)).collect();
        assert_eq!(runs.first(), Some(&(585, 12)));
        assert_eq!(runs.last(), Some(&(7774, 1012)));
        assert_eq!(m.map.blocks(), 8192);
        // Past triple indirection (4 pointers a block): refused.
        let tiny = Shape::new(16);
        let mut small = alloc_1g();
        assert!(
            small
                .allocate_block_mapped(0, 12 + 4 + 16 + 64, tiny)
                .is_some()
        );
        assert!(
            small
                .allocate_block_mapped(0, 12 + 4 + 16 + 64 + 1, tiny)
                .is_none()
        );
    }

    #[test]
    fn get_free_wraps_only_when_finish_not_after_start() {
        let mut a = alloc_1g();
        a.used.insert(200..262144);
        assert_eq!(a.get_free(150, 160, 1), Some(150));
        assert_eq!(a.get_free(300, 400, 1), None);
        assert_eq!(a.get_free(300, 100, 1), None);
        assert_eq!(a.get_free(300, 150, 1), Some(129));
    }
}
