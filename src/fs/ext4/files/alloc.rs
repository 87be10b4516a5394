//! Allocation state: the group descriptors, and the block and inode
//! bitmaps of the groups an operation touches, loaded on demand and kept
//! in memory until [`Groups::flush`].
//!
//! A group flagged `BLOCK_UNINIT` has no block bitmap on disk; its bitmap
//! is computed as the kernel's `ext4_init_block_bitmap` does: the
//! superblock backup and descriptor blocks at the group's start (the
//! superblock, table and reserved GDT blocks in a backup group of the
//! classic table; with `meta_bg`, a meta group's descriptor block in its
//! first, second and last group),
//! the group's own bitmaps and inode table when
//! they lie inside it, and the bits past the end of the filesystem. An
//! `INODE_UNINIT` group's inode bitmap is all zeros. Using a group clears
//! the flag, so its bitmap is written at the next flush. With
//! metadata_csum every bitmap read is checked against the checksum in its
//! descriptor, and the free counts against the bits.
//!
//! A bitmap of a full group is kept as a marker, not 4 KiB, so a
//! preallocation of most of a 16 TiB filesystem stays small in memory.
//!
//! An operation can run inside a transaction ([`Groups::begin`]): every
//! group it changes is saved first, and [`Groups::rollback`] puts them
//! back, so an operation that runs out of space changes nothing.

use super::Geo;
use super::error::FileError;
use crate::blockdev::{BlockDevice, WriteBatch};
use crate::fs::ext4::bitmap::{count_and_last, set_bits};
use crate::fs::ext4::checksum::crc32c_raw;
use crate::fs::ext4::group_desc::{BG_BLOCK_UNINIT, BG_INODE_UNINIT, GroupDesc};
use crate::fs::ext4::superblock::Superblock;
use std::collections::{BTreeSet, HashMap};

/// A group's block bitmap.
#[derive(Debug, Clone)]
enum Bits {
    /// Every block used (the on-disk bitmap is all ones).
    Full,
    /// The bitmap block.
    Map(Vec<u8>),
}

fn test(bm: &[u8], i: u64) -> bool {
    bm[(i / 8) as usize] & (1 << (i % 8)) != 0
}

fn clear_bits(bm: &mut [u8], from: u64, to: u64) {
    let mut i = from;
    while i < to {
        if i % 8 == 0 && i + 8 <= to {
            bm[(i / 8) as usize] = 0;
            i += 8;
        } else {
            bm[(i / 8) as usize] &= !(1 << (i % 8));
            i += 1;
        }
    }
}

/// The first clear bit in `from..to`.
fn first_clear(bm: &[u8], from: u64, to: u64) -> Option<u64> {
    let mut i = from;
    while i < to {
        if i % 64 == 0 && i + 64 <= to {
            let k = (i / 8) as usize;
            if bm[k..k + 8].iter().all(|&x| x == 0xFF) {
                i += 64;
                continue;
            }
        }
        if i % 8 == 0 && i + 8 <= to && bm[(i / 8) as usize] == 0xFF {
            i += 8;
            continue;
        }
        if !test(bm, i) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// How many clear bits follow `from` (inclusive), up to `to`.
fn clear_run(bm: &[u8], from: u64, to: u64) -> u64 {
    let mut i = from;
    while i < to {
        if i % 64 == 0 && i + 64 <= to {
            let k = (i / 8) as usize;
            if bm[k..k + 8].iter().all(|&x| x == 0) {
                i += 64;
                continue;
            }
        }
        if i % 8 == 0 && i + 8 <= to && bm[(i / 8) as usize] == 0 {
            i += 8;
            continue;
        }
        if test(bm, i) {
            break;
        }
        i += 1;
    }
    i - from
}

/// What a transaction saved of a group before changing it.
#[derive(Debug, Clone)]
struct Saved {
    desc: GroupDesc,
    bb: Option<Bits>,
    ib: Option<Vec<u8>>,
    dirty_desc: bool,
    dirty_bb: bool,
    dirty_ib: bool,
}

#[derive(Debug, Default)]
struct Txn {
    saved: HashMap<u32, Saved>,
    free_blocks: u64,
    free_inodes: u64,
}

/// The allocation state of a filesystem.
#[derive(Debug)]
pub struct Groups {
    descs: Vec<GroupDesc>,
    bb: HashMap<u32, Bits>,
    ib: HashMap<u32, Vec<u8>>,
    dirty_desc: BTreeSet<u32>,
    dirty_bb: BTreeSet<u32>,
    dirty_ib: BTreeSet<u32>,
    free_blocks: u64,
    free_inodes: u64,
    txn: Option<Txn>,
}

impl Groups {
    /// The state of a filesystem with these descriptors.
    pub fn new(descs: Vec<GroupDesc>) -> Self {
        let free_blocks = descs
            .iter()
            .map(|d| u64::from(d.bg_free_blocks_count))
            .sum();
        let free_inodes = descs
            .iter()
            .map(|d| u64::from(d.bg_free_inodes_count))
            .sum();
        Groups {
            descs,
            bb: HashMap::new(),
            ib: HashMap::new(),
            dirty_desc: BTreeSet::new(),
            dirty_bb: BTreeSet::new(),
            dirty_ib: BTreeSet::new(),
            free_blocks,
            free_inodes,
            txn: None,
        }
    }

    /// Σ group free blocks (what statfs reports as `f_bfree`).
    pub fn free_blocks(&self) -> u64 {
        self.free_blocks
    }

    /// Σ group free inodes.
    pub fn free_inodes(&self) -> u64 {
        self.free_inodes
    }

    /// The descriptors.
    pub fn descs(&self) -> &[GroupDesc] {
        &self.descs
    }

    /// True when something awaits a flush.
    pub fn is_dirty(&self) -> bool {
        !self.dirty_desc.is_empty() || !self.dirty_bb.is_empty() || !self.dirty_ib.is_empty()
    }

    fn desc(&self, geo: &Geo, g: u32) -> Result<&GroupDesc, FileError> {
        self.descs.get(g as usize).ok_or_else(|| FileError::Group {
            group: g,
            why: format!("no such group (the filesystem has {})", geo.groups),
        })
    }

    /// Starts a transaction (nested calls join the open one).
    pub fn begin(&mut self) {
        if self.txn.is_none() {
            self.txn = Some(Txn {
                saved: HashMap::new(),
                free_blocks: self.free_blocks,
                free_inodes: self.free_inodes,
            });
        }
    }

    /// Ends the transaction keeping its changes.
    pub fn commit(&mut self) {
        self.txn = None;
    }

    /// Ends the transaction undoing its changes.
    pub fn rollback(&mut self) {
        let Some(t) = self.txn.take() else { return };
        for (g, s) in t.saved {
            if let Some(d) = self.descs.get_mut(g as usize) {
                *d = s.desc;
            }
            match s.bb {
                Some(b) => {
                    self.bb.insert(g, b);
                }
                None => {
                    self.bb.remove(&g);
                }
            }
            match s.ib {
                Some(b) => {
                    self.ib.insert(g, b);
                }
                None => {
                    self.ib.remove(&g);
                }
            }
            for (set, was) in [
                (&mut self.dirty_desc, s.dirty_desc),
                (&mut self.dirty_bb, s.dirty_bb),
                (&mut self.dirty_ib, s.dirty_ib),
            ] {
                if was {
                    set.insert(g);
                } else {
                    set.remove(&g);
                }
            }
        }
        self.free_blocks = t.free_blocks;
        self.free_inodes = t.free_inodes;
    }

    /// Saves group `g` in the open transaction before its first change.
    fn touch(&mut self, g: u32) {
        let Some(t) = self.txn.as_mut() else { return };
        if t.saved.contains_key(&g) {
            return;
        }
        let Some(desc) = self.descs.get(g as usize) else {
            return;
        };
        t.saved.insert(
            g,
            Saved {
                desc: *desc,
                bb: self.bb.get(&g).cloned(),
                ib: self.ib.get(&g).cloned(),
                dirty_desc: self.dirty_desc.contains(&g),
                dirty_bb: self.dirty_bb.contains(&g),
                dirty_ib: self.dirty_ib.contains(&g),
            },
        );
    }

    /// Loads (or computes) group `g`'s block bitmap.
    fn load_bb<D: BlockDevice>(&mut self, dev: &D, geo: &Geo, g: u32) -> Result<(), FileError> {
        if self.bb.contains_key(&g) {
            return Ok(());
        }
        // Saved as "not loaded" (a rollback drops it), not as a copy.
        self.touch(g);
        let d = *self.desc(geo, g)?;
        let first = geo.group_first(g);
        let nbits = geo.group_blocks(g);
        let bs = geo.bs as usize;
        let bm = if geo.group_csum && d.has_flag(BG_BLOCK_UNINIT) {
            let mut bm = vec![0u8; bs];
            let n = geo.base_meta_blocks(g).min(nbits);
            set_bits(&mut bm, 0, n);
            for (blk, len) in [
                (d.bg_block_bitmap, 1),
                (d.bg_inode_bitmap, 1),
                (d.bg_inode_table, geo.itb),
            ] {
                for b in blk..blk.saturating_add(len) {
                    if b >= first && b < first + nbits {
                        set_bits(&mut bm, b - first, b - first + 1);
                    }
                }
            }
            set_bits(&mut bm, nbits, bs as u64 * 8);
            bm
        } else {
            let bm = read_block(dev, geo, d.bg_block_bitmap, || {
                format!("block bitmap of group {g}")
            })?;
            if let Some(seed) = geo.seed {
                let n = (geo.bpg / 8) as usize;
                let c = crc32c_raw(seed, &bm[..n.min(bm.len())]);
                let stored = if geo.desc_size >= 64 {
                    d.bg_block_bitmap_csum
                } else {
                    d.bg_block_bitmap_csum & 0xFFFF
                };
                let c = if geo.desc_size >= 64 { c } else { c & 0xFFFF };
                if c != stored {
                    return Err(FileError::Group {
                        group: g,
                        why: format!(
                            "block bitmap at block {} does not match its checksum",
                            d.bg_block_bitmap
                        ),
                    });
                }
            }
            bm
        };
        let (used, _) = count_and_last(&bm, nbits);
        if nbits - used != u64::from(d.bg_free_blocks_count) {
            return Err(FileError::Group {
                group: g,
                why: format!(
                    "{} free blocks in the descriptor, {} in the bitmap",
                    d.bg_free_blocks_count,
                    nbits - used
                ),
            });
        }
        let bits = if used == nbits {
            Bits::Full
        } else {
            Bits::Map(bm)
        };
        self.bb.insert(g, bits);
        Ok(())
    }

    /// Loads (or computes) group `g`'s inode bitmap.
    fn load_ib<D: BlockDevice>(&mut self, dev: &D, geo: &Geo, g: u32) -> Result<(), FileError> {
        if self.ib.contains_key(&g) {
            return Ok(());
        }
        self.touch(g);
        let d = *self.desc(geo, g)?;
        let ipg = u64::from(geo.ipg);
        let bm = if geo.group_csum && d.has_flag(BG_INODE_UNINIT) {
            let mut bm = vec![0u8; geo.bs as usize];
            set_bits(&mut bm, ipg, geo.bs * 8);
            bm
        } else {
            let bm = read_block(dev, geo, d.bg_inode_bitmap, || {
                format!("inode bitmap of group {g}")
            })?;
            if let Some(seed) = geo.seed {
                let c = crc32c_raw(seed, &bm[..(ipg / 8) as usize]);
                let (c, stored) = if geo.desc_size >= 64 {
                    (c, d.bg_inode_bitmap_csum)
                } else {
                    (c & 0xFFFF, d.bg_inode_bitmap_csum & 0xFFFF)
                };
                if c != stored {
                    return Err(FileError::Group {
                        group: g,
                        why: format!(
                            "inode bitmap at block {} does not match its checksum",
                            d.bg_inode_bitmap
                        ),
                    });
                }
            }
            bm
        };
        let (used, _) = count_and_last(&bm, ipg);
        if ipg - used != u64::from(d.bg_free_inodes_count) {
            return Err(FileError::Group {
                group: g,
                why: format!(
                    "{} free inodes in the descriptor, {} in the bitmap",
                    d.bg_free_inodes_count,
                    ipg - used
                ),
            });
        }
        self.ib.insert(g, bm);
        Ok(())
    }

    /// True when block `b` is in use.
    pub fn is_used<D: BlockDevice>(
        &mut self,
        dev: &D,
        geo: &Geo,
        b: u64,
    ) -> Result<bool, FileError> {
        let (g, i) = geo.locate(b);
        self.load_bb(dev, geo, g)?;
        Ok(match self.bb.get(&g) {
            Some(Bits::Map(bm)) => test(bm, i),
            _ => true,
        })
    }

    /// Marks `len` blocks from bit `i` of group `g` used (they are free).
    fn take(&mut self, geo: &Geo, g: u32, i: u64, len: u64) {
        self.touch(g);
        let nbits = geo.group_blocks(g);
        if let Some(bits) = self.bb.get_mut(&g) {
            if let Bits::Map(bm) = bits {
                set_bits(bm, i, i + len);
            }
            if let Some(d) = self.descs.get_mut(g as usize) {
                d.bg_free_blocks_count = d.bg_free_blocks_count.saturating_sub(len as u32);
                d.bg_flags &= !BG_BLOCK_UNINIT;
                if d.bg_free_blocks_count == 0 || nbits == 0 {
                    *bits = Bits::Full;
                }
            }
        }
        self.free_blocks = self.free_blocks.saturating_sub(len);
        self.dirty_bb.insert(g);
        self.dirty_desc.insert(g);
    }

    /// Allocates the first free block at or after `goal` (wrapping to the
    /// start of the filesystem) and as many free blocks after it as are
    /// contiguous, up to `max`. Returns (start, length), or `None` when no
    /// block is free.
    pub fn alloc<D: BlockDevice>(
        &mut self,
        dev: &D,
        geo: &Geo,
        goal: u64,
        max: u64,
    ) -> Result<Option<(u64, u64)>, FileError> {
        self.alloc_in(dev, geo, goal, max, geo.groups)
    }

    /// [`Groups::alloc`] within the first `ngroups` groups only (a
    /// block-mapped file's blocks must have 32-bit numbers: the kernel's
    /// `s_blockfile_groups`).
    pub fn alloc_in<D: BlockDevice>(
        &mut self,
        dev: &D,
        geo: &Geo,
        goal: u64,
        max: u64,
        ngroups: u32,
    ) -> Result<Option<(u64, u64)>, FileError> {
        let ngroups = ngroups.min(geo.groups);
        if max == 0 || self.free_blocks == 0 || ngroups == 0 {
            return Ok(None);
        }
        let end = geo.group_first(ngroups).min(geo.blocks);
        let goal = if goal < geo.fdb || goal >= end {
            geo.fdb
        } else {
            goal
        };
        let (g0, i0) = geo.locate(goal);
        // Every group once from the goal's, then the goal's group again
        // below the goal.
        let mut found = None;
        for k in 0..=ngroups {
            let g = ((u64::from(g0) + u64::from(k)) % u64::from(ngroups)) as u32;
            let (from, to) = if k == 0 {
                (i0, geo.group_blocks(g))
            } else if k == ngroups {
                (0, i0)
            } else {
                (0, geo.group_blocks(g))
            };
            if from >= to || self.desc(geo, g)?.bg_free_blocks_count == 0 {
                continue;
            }
            self.load_bb(dev, geo, g)?;
            if let Some(Bits::Map(bm)) = self.bb.get(&g) {
                if let Some(i) = first_clear(bm, from, to) {
                    found = Some((g, i));
                    break;
                }
            }
        }
        let Some((mut g, mut i)) = found else {
            return Ok(None);
        };
        let start = geo.group_first(g) + i;
        let mut got = 0u64;
        loop {
            let nbits = geo.group_blocks(g);
            let n = match self.bb.get(&g) {
                Some(Bits::Map(bm)) => clear_run(bm, i, nbits.min(i + (max - got))),
                _ => 0,
            };
            if n == 0 {
                break;
            }
            self.take(geo, g, i, n);
            got += n;
            if got >= max || i + n < nbits || g + 1 >= ngroups {
                break;
            }
            // The run reached the end of the group: go on into the next
            // one if its first block is free.
            g += 1;
            i = 0;
            if self.desc(geo, g)?.bg_free_blocks_count == 0 {
                break;
            }
            self.load_bb(dev, geo, g)?;
        }
        Ok((got > 0).then_some((start, got)))
    }

    /// Frees blocks `start..start+len` (all must be in use).
    pub fn free<D: BlockDevice>(
        &mut self,
        dev: &D,
        geo: &Geo,
        start: u64,
        len: u64,
    ) -> Result<(), FileError> {
        let end = start.saturating_add(len);
        if start < geo.fdb || end > geo.blocks {
            return Err(FileError::Group {
                group: 0,
                why: format!("freeing blocks {start}..{end}, outside the filesystem"),
            });
        }
        let mut b = start;
        while b < end {
            let (g, i) = geo.locate(b);
            let nbits = geo.group_blocks(g);
            let n = (nbits - i).min(end - b);
            self.load_bb(dev, geo, g)?;
            self.touch(g);
            let bs = geo.bs as usize;
            let Some(bits) = self.bb.get_mut(&g) else {
                break;
            };
            if let Bits::Full = bits {
                // Bits past the group's blocks stay set.
                *bits = Bits::Map(vec![0xFFu8; bs]);
            }
            if let Bits::Map(bm) = bits {
                if let Some(j) = (i..i + n).find(|&j| !test(bm, j)) {
                    return Err(FileError::Group {
                        group: g,
                        why: format!(
                            "freeing block {}, which is already free",
                            geo.group_first(g) + j
                        ),
                    });
                }
                clear_bits(bm, i, i + n);
            }
            if let Some(d) = self.descs.get_mut(g as usize) {
                d.bg_free_blocks_count += n as u32;
                d.bg_flags &= !BG_BLOCK_UNINIT;
            }
            self.free_blocks += n;
            self.dirty_bb.insert(g);
            self.dirty_desc.insert(g);
            b += n;
        }
        Ok(())
    }

    /// Allocates an inode in the first group from `start` with a free one
    /// (inode numbers below `first_ino` are never given out). Returns its
    /// number, or `None` when none is free.
    pub fn alloc_inode<D: BlockDevice>(
        &mut self,
        dev: &D,
        geo: &Geo,
        start: u32,
        dir: bool,
    ) -> Result<Option<u32>, FileError> {
        if self.free_inodes == 0 {
            return Ok(None);
        }
        let ipg = u64::from(geo.ipg);
        for k in 0..geo.groups {
            let g = ((u64::from(start) + u64::from(k)) % u64::from(geo.groups)) as u32;
            if self.desc(geo, g)?.bg_free_inodes_count == 0 {
                continue;
            }
            self.load_ib(dev, geo, g)?;
            let base = u64::from(g) * ipg;
            // Skip the reserved inodes (1..first_ino-1).
            let from = u64::from(geo.first_ino)
                .saturating_sub(1)
                .saturating_sub(base)
                .min(ipg);
            let Some(i) = self.ib.get(&g).and_then(|bm| first_clear(bm, from, ipg)) else {
                continue;
            };
            self.touch(g);
            if let Some(bm) = self.ib.get_mut(&g) {
                set_bits(bm, i, i + 1);
            }
            // A group whose inodes are used has its block bitmap
            // initialized too (as the kernel's ext4_new_inode does).
            if geo.group_csum && self.desc(geo, g)?.has_flag(BG_BLOCK_UNINIT) {
                self.load_bb(dev, geo, g)?;
                self.dirty_bb.insert(g);
            }
            let Some(d) = self.descs.get_mut(g as usize) else {
                continue;
            };
            d.bg_free_inodes_count = d.bg_free_inodes_count.saturating_sub(1);
            if dir {
                d.bg_used_dirs_count += 1;
            }
            d.bg_flags &= !(BG_INODE_UNINIT | BG_BLOCK_UNINIT);
            let unused = u64::from(d.bg_itable_unused);
            if i + 1 > ipg.saturating_sub(unused) {
                d.bg_itable_unused = (ipg - (i + 1)) as u32;
            }
            self.free_inodes = self.free_inodes.saturating_sub(1);
            self.dirty_ib.insert(g);
            self.dirty_desc.insert(g);
            return Ok(Some((base + i + 1) as u32));
        }
        Ok(None)
    }

    /// Frees inode `ino` (a directory when `dir`).
    pub fn free_inode<D: BlockDevice>(
        &mut self,
        dev: &D,
        geo: &Geo,
        ino: u32,
        dir: bool,
    ) -> Result<(), FileError> {
        let g = ino.saturating_sub(1) / geo.ipg;
        let i = u64::from(ino.saturating_sub(1) % geo.ipg);
        self.load_ib(dev, geo, g)?;
        self.touch(g);
        let Some(bm) = self.ib.get_mut(&g) else {
            return Ok(());
        };
        if !test(bm, i) {
            return Err(FileError::Group {
                group: g,
                why: format!("freeing inode {ino}, which is already free"),
            });
        }
        clear_bits(bm, i, i + 1);
        let Some(d) = self.descs.get_mut(g as usize) else {
            return Ok(());
        };
        d.bg_free_inodes_count += 1;
        if dir {
            d.bg_used_dirs_count = d.bg_used_dirs_count.saturating_sub(1);
        }
        self.free_inodes += 1;
        self.dirty_ib.insert(g);
        self.dirty_desc.insert(g);
        Ok(())
    }

    /// True when inode `ino` is marked in use.
    pub fn inode_in_use<D: BlockDevice>(
        &mut self,
        dev: &D,
        geo: &Geo,
        ino: u32,
    ) -> Result<bool, FileError> {
        let g = ino.saturating_sub(1) / geo.ipg;
        let i = u64::from(ino.saturating_sub(1) % geo.ipg);
        self.load_ib(dev, geo, g)?;
        Ok(self.ib.get(&g).is_some_and(|bm| test(bm, i)))
    }

    /// Adds the dirty bitmaps (with their checksums set in the
    /// descriptors) to `batch`, except the block bitmaps of full groups:
    /// those are all ones, and only their byte offsets go to `ones` (the
    /// sync's plan writes them from one shared block when walked, so
    /// preallocating terabytes does not hold a 4 KiB copy per group).
    pub fn flush_bitmaps(&mut self, geo: &Geo, batch: &mut WriteBatch, ones: &mut Vec<u64>) {
        let bs = geo.bs as usize;
        let full_csum = geo
            .seed
            .map(|seed| crc32c_raw(seed, &vec![0xFFu8; bs][..(geo.bpg / 8) as usize]));
        for &g in &self.dirty_bb {
            let Some(bits) = self.bb.get(&g) else {
                continue;
            };
            let Some(d) = self.descs.get_mut(g as usize) else {
                continue;
            };
            match bits {
                Bits::Map(bm) => {
                    if let Some(seed) = geo.seed {
                        d.bg_block_bitmap_csum = crc32c_raw(seed, &bm[..(geo.bpg / 8) as usize]);
                    }
                    batch.write(d.bg_block_bitmap * geo.bs, bm.clone());
                }
                Bits::Full => {
                    if let Some(c) = full_csum {
                        d.bg_block_bitmap_csum = c;
                    }
                    ones.push(d.bg_block_bitmap * geo.bs);
                }
            }
        }
        for &g in &self.dirty_ib {
            let Some(bm) = self.ib.get(&g) else { continue };
            let Some(d) = self.descs.get_mut(g as usize) else {
                continue;
            };
            if let Some(seed) = geo.seed {
                d.bg_inode_bitmap_csum = crc32c_raw(seed, &bm[..(geo.ipg / 8) as usize]);
            }
            batch.write(d.bg_inode_bitmap * geo.bs, bm.clone());
        }
    }

    /// Adds the descriptor blocks holding dirty descriptors (checksums
    /// recomputed) to `batch`: the primary copy only, as the kernel (with
    /// `meta_bg`, a meta group's block in its first group).
    pub fn flush_descs(&mut self, geo: &Geo, sb: &Superblock, batch: &mut WriteBatch) {
        let per = (geo.bs / geo.desc_size as u64) as u32;
        let mut blocks = BTreeSet::new();
        for &g in &self.dirty_desc {
            if let Some(d) = self.descs.get_mut(g as usize) {
                d.set_checksum(sb, g);
            }
            blocks.insert(g / per);
        }
        for blk in blocks {
            let mut b = vec![0u8; geo.bs as usize];
            for k in 0..per {
                let g = blk * per + k;
                let Some(d) = self.descs.get(g as usize) else {
                    break;
                };
                let off = (k as usize) * geo.desc_size;
                d.write_to(&mut b[off..off + geo.desc_size], geo.desc_size);
            }
            batch.write(geo.desc_block_location(u64::from(blk)) * geo.bs, b);
        }
    }

    /// Forgets what was flushed, and the cached bitmaps.
    pub fn clean(&mut self) {
        self.dirty_bb.clear();
        self.dirty_ib.clear();
        self.dirty_desc.clear();
        self.bb.clear();
        self.ib.clear();
    }
}

fn read_block<D: BlockDevice>(
    dev: &D,
    geo: &Geo,
    b: u64,
    what: impl FnOnce() -> String,
) -> Result<Vec<u8>, FileError> {
    if b >= geo.blocks {
        return Err(FileError::Group {
            group: 0,
            why: format!("{} at block {b} is outside the filesystem", what()),
        });
    }
    dev.read_vec(b * geo.bs, geo.bs as usize)
        .map_err(|e| FileError::io(what(), e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bit_scans() {
        let mut bm = vec![0u8; 4096];
        set_bits(&mut bm, 0, 1000);
        set_bits(&mut bm, 1010, 1020);
        assert_eq!(first_clear(&bm, 0, 32768), Some(1000));
        assert_eq!(clear_run(&bm, 1000, 32768), 10);
        assert_eq!(first_clear(&bm, 1010, 32768), Some(1020));
        assert_eq!(clear_run(&bm, 1020, 32768), 32768 - 1020);
        assert_eq!(clear_run(&bm, 1020, 2000), 980);
        clear_bits(&mut bm, 3, 900);
        assert_eq!(first_clear(&bm, 0, 100), Some(3));
        assert_eq!(clear_run(&bm, 3, 32768), 897);
        set_bits(&mut bm, 0, 32768);
        assert_eq!(first_clear(&bm, 0, 32768), None);
    }
}
