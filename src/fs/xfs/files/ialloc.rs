//! Inode allocation (the kernel's `xfs_dialloc` and
//! `xfs_difree`). Inodes come from chunks of 64, each described by an
//! inobt record `{startino, holemask, count, freecount, free}` (bit set =
//! free; sparse chunks mark their holes free too). The finobt holds
//! exactly the records with a free inode, so it is rebuilt from these.
//!
//! A new inode goes to the parent's AG (a directory to the next AG in
//! turn, as the kernel spreads directories), into the chunk with a free
//! inode nearest the parent, else into a new chunk: `ialloc_blks` blocks
//! aligned to `sb_inoalignmt`, placed after the last chunk if possible,
//! written out as 64 free inodes. A chunk whose inodes are all free again
//! is given back to free space, as the kernel does without `ikeep`.

use super::super::btree::InobtRec;
use super::super::dinode::Dinode;
use super::super::superblock::incompat;
use super::alloc::{AllocReq, alloc_mask};
use super::{Undo, XfsFiles, corrupt_inode, nospc};
use crate::blockdev::BlockDevice;
use crate::fs::node::{ErrorKind, NodeResult};

impl<D: BlockDevice> XfsFiles<D> {
    /// Replaces (or removes, with `None`) the chunk record at `startino`.
    fn set_ino_rec(&mut self, agno: u32, startino: u32, rec: Option<InobtRec>) {
        self.touch_ag(agno);
        let ag = &mut self.ags[agno as usize];
        let old = match rec {
            Some(r) => ag.inos.insert(startino, r),
            None => ag.inos.remove(&startino),
        };
        ag.note_rec(startino);
        self.log(Undo::InoRec {
            agno,
            startino,
            old,
        });
    }

    /// The chunk record holding inode `ino`, if its chunk exists.
    pub(super) fn chunk_of(&self, ino: u64) -> Option<InobtRec> {
        let (agno, agino) = self.geo.ino_to_ag(ino);
        let ag = self.ags.get(agno as usize)?;
        let (_, rec) = ag.inos.range(..=agino).next_back()?;
        (agino < rec.startino + 64).then_some(*rec)
    }

    /// Whether inode `ino` is allocated (its chunk exists, it is not in a
    /// hole, and it is not free).
    pub(super) fn ino_in_use(&self, ino: u64) -> bool {
        let (_, agino) = self.geo.ino_to_ag(ino);
        self.chunk_of(ino).is_some_and(|r| {
            let bit = 1u64 << (agino - r.startino);
            alloc_mask(r.holemask) & bit != 0 && r.free & bit == 0
        })
    }

    /// Whether inode `ino`'s slot exists on disk (allocated or free).
    pub(super) fn ino_slot_exists(&self, ino: u64) -> bool {
        let (_, agino) = self.geo.ino_to_ag(ino);
        self.chunk_of(ino)
            .is_some_and(|r| alloc_mask(r.holemask) & (1u64 << (agino - r.startino)) != 0)
    }

    /// The largest inode count the filesystem allows (`imaxpct`), rounded
    /// to whole chunks as a mount rounds it.
    fn maxicount(&self) -> u64 {
        let pct = u64::from(self.sb.imax_pct);
        if pct == 0 {
            return u64::MAX;
        }
        let d = self.sb.dblocks;
        let blocks = d / 100 * pct + d % 100 * pct / 100;
        let chunk = u64::from(self.geo.ialloc_blks);
        (blocks / chunk * chunk) << self.geo.inopblog
    }

    /// Allocates an inode for a child of `parent`.
    pub(super) fn ialloc(&mut self, parent: u64, is_dir: bool) -> NodeResult<u64> {
        let agcount = self.geo.agcount;
        let (pag, pagino) = self.geo.ino_to_ag(parent);
        let start = if is_dir {
            let r = self.rotor % agcount;
            self.log(Undo::Rotor(self.rotor));
            self.rotor = (r + 1) % agcount;
            r
        } else {
            pag.min(agcount - 1)
        };
        let (icount, _, _) = self.counters();
        let ok_alloc = icount + 64 <= self.maxicount();
        // Near ENOSPC (free blocks under 1 % of the filesystem), the first
        // pass only takes free inodes.
        let low_space = self.free_incore() < self.sb.dblocks / 100;
        // Blocks a chunk needs at least: a sparse part when the filesystem
        // has them; the first pass adds the alignment slack.
        let sparse = self.sb.has_incompat(incompat::SPINODES) && self.sb.spino_align > 0;
        let min_blks = if sparse {
            u64::from(self.sb.spino_align)
        } else {
            u64::from(self.geo.ialloc_blks)
        };
        for first_pass in [true, false] {
            let may_alloc = ok_alloc && !(first_pass && low_space);
            let ineed = if first_pass && min_blks > 1 {
                min_blks + u64::from(self.geo.inoalign)
            } else {
                min_blks
            };
            for i in 0..agcount {
                let agno = (start + i) % agcount;
                let ag = &self.ags[agno as usize];
                if ag.small.ifree > 0 {
                    let near = if agno == pag { pagino } else { 0 };
                    return self.take_free_inode(agno, near);
                }
                // xfs_dialloc_good_ag: room for the file's first block and
                // a chunk.
                let longest = match u64::from(ag.free.longest()) {
                    0 => u64::from(!ag.small.agfl.is_empty()),
                    l => l,
                };
                if !may_alloc || ag.free.total() < 1 + ineed || longest < ineed {
                    continue;
                }
                if self.new_chunk(agno)? {
                    return self.take_free_inode(agno, 0);
                }
            }
        }
        Err(nospc())
    }

    /// Takes the lowest free inode of the chunk with free inodes nearest
    /// `near` in AG `agno`.
    fn take_free_inode(&mut self, agno: u32, near: u32) -> NodeResult<u64> {
        let rec = {
            let ag = &self.ags[agno as usize];
            let key = near & !63;
            let below = ag.with_free.range(..=key).next_back();
            let above = ag.with_free.range(key..).next();
            let pick = match (below, above) {
                (Some(&b), Some(&a)) => Some(if key - b <= a - key { b } else { a }),
                (b, a) => b.or(a).copied(),
            };
            pick.and_then(|s| ag.inos.get(&s)).copied()
        };
        let Some(mut rec) = rec else {
            return Err(corrupt_inode(
                self.geo.ag_to_ino(agno, 0),
                format!("AG {agno} counts free inodes but no chunk has one"),
            ));
        };
        let free = rec.free & alloc_mask(rec.holemask);
        let slot = free.trailing_zeros();
        rec.free &= !(1u64 << slot);
        rec.freecount = rec.freecount.saturating_sub(1);
        let startino = rec.startino;
        self.set_ino_rec(agno, startino, Some(rec));
        self.ags[agno as usize].small.ifree -= 1;
        Ok(self.geo.ag_to_ino(agno, startino + slot))
    }

    /// Allocates and stages a new chunk of 64 free inodes in AG `agno`;
    /// when no aligned full chunk fits and the filesystem has sparse inode
    /// chunks, a sparse part of one (`sb_spino_align` blocks), as the
    /// kernel does. Returns false when the AG has no room for either.
    fn new_chunk(&mut self, agno: u32) -> NodeResult<bool> {
        let blks = self.geo.ialloc_blks;
        let newino = self.ags[agno as usize].small.newino;
        let goal = if newino == super::super::agi::NULLAGINO {
            None
        } else {
            Some((newino >> self.geo.inopblog) + blks)
        };
        let mut req = AllocReq {
            agno,
            goal,
            minlen: blks,
            maxlen: u64::from(blks),
            align: self.geo.inoalign,
            resv: super::alloc::Resv::None,
            minleft: self.geo.inobt_maxlevels,
            this_ag: true,
        };
        match self.alloc(req) {
            Ok((_, agbno, _)) => {
                let startino = agbno << self.geo.inopblog;
                self.stage_free_inodes(agno, agbno, blks);
                self.set_ino_rec(
                    agno,
                    startino,
                    Some(InobtRec {
                        startino,
                        holemask: 0,
                        count: 64,
                        freecount: 64,
                        free: u64::MAX,
                    }),
                );
                self.chunk_added(agno, startino, 64);
                return Ok(true);
            }
            Err(e) if e.kind() == ErrorKind::NoSpace => {}
            Err(e) => return Err(e),
        }
        let sp = self.sb.spino_align;
        if !self.sb.has_incompat(incompat::SPINODES) || sp == 0 || sp >= blks || blks % sp != 0 {
            return Ok(false);
        }
        req.minlen = sp;
        req.maxlen = u64::from(sp);
        req.align = sp;
        let agbno = match self.alloc(req) {
            Ok((_, agbno, _)) => agbno,
            Err(e) if e.kind() == ErrorKind::NoSpace => return Ok(false),
            Err(e) => return Err(e),
        };
        let chunk_start = agbno / self.geo.inoalign * self.geo.inoalign;
        if chunk_start + blks > self.ags[agno as usize].agf.length {
            // The whole chunk's inode numbers must lie in the AG.
            self.free_insert(agno, agbno, sp)?;
            return Ok(false);
        }
        self.stage_free_inodes(agno, agbno, sp);
        let startino = chunk_start << self.geo.inopblog;
        let first = (agbno - chunk_start) << self.geo.inopblog;
        let n = sp << self.geo.inopblog;
        // Holemask bits cover 4 inodes each.
        let bits: u16 = (first / 4..(first + n) / 4).fold(0, |m, b| m | (1 << b));
        let rec = match self.ags[agno as usize].inos.get(&startino).copied() {
            Some(mut r) => {
                if r.holemask & bits != bits {
                    return Err(corrupt_inode(
                        self.geo.ag_to_ino(agno, startino),
                        "a sparse chunk's new part is not a hole",
                    ));
                }
                r.holemask &= !bits;
                r.count += n as u8;
                r.freecount += n as u8;
                r
            }
            None => InobtRec {
                startino,
                holemask: !bits,
                count: n as u8,
                freecount: n as u8,
                free: u64::MAX,
            },
        };
        self.set_ino_rec(agno, startino, Some(rec));
        self.chunk_added(agno, startino, n);
        Ok(true)
    }

    /// Stages `nblocks` blocks of free inodes at `agbno`.
    fn stage_free_inodes(&mut self, agno: u32, agbno: u32, nblocks: u32) {
        let isize = self.geo.inodesize;
        let bs = self.geo.bs as usize;
        let per_block = bs / isize;
        let first = agbno << self.geo.inopblog;
        let mut chunk = vec![0u8; bs * nblocks as usize];
        for k in 0..per_block * nblocks as usize {
            let ino = self.geo.ag_to_ino(agno, first + k as u32);
            let generation = self.next_gen();
            let di = Dinode::free(ino, self.geo.uuid, generation, isize);
            chunk[k * isize..(k + 1) * isize].copy_from_slice(&di.to_bytes());
        }
        let lin = self.geo.ag_to_lin(agno, agbno);
        self.stage_run(lin, chunk);
    }

    /// Counts `n` new free inodes of the chunk at `startino`.
    fn chunk_added(&mut self, agno: u32, startino: u32, n: u32) {
        let s = &mut self.ags[agno as usize].small;
        s.newino = startino;
        s.icount += n;
        s.ifree += n;
    }

    /// Marks inode `ino` free; gives its chunk back to free space when the
    /// whole chunk is free.
    pub(super) fn ifree(&mut self, ino: u64) -> NodeResult<()> {
        let (agno, agino) = self.geo.ino_to_ag(ino);
        let Some(mut rec) = self.chunk_of(ino) else {
            return Err(corrupt_inode(ino, "freeing an inode outside any chunk"));
        };
        let bit = 1u64 << (agino - rec.startino);
        if rec.free & bit != 0 || alloc_mask(rec.holemask) & bit == 0 {
            return Err(corrupt_inode(ino, "freeing an inode that is not in use"));
        }
        rec.free |= bit;
        rec.freecount += 1;
        self.ags[agno as usize].small.ifree += 1;
        let startino = rec.startino;
        if rec.free == u64::MAX {
            // The whole chunk is free: give it back.
            self.set_ino_rec(agno, startino, None);
            {
                let s = &mut self.ags[agno as usize].small;
                s.icount -= u32::from(rec.count);
                s.ifree -= u32::from(rec.freecount);
            }
            let per_block = 1u32 << self.geo.inopblog;
            let mask = alloc_mask(rec.holemask);
            for b in 0..(64 / per_block) {
                let bits = ((1u64 << per_block) - 1) << (b * per_block);
                if mask & bits != 0 {
                    let agbno = (startino >> self.geo.inopblog) + b;
                    let fsb = self.geo.ag_to_fsb(agno, agbno);
                    self.free_fsb(fsb, 1)?;
                }
            }
        } else {
            self.set_ino_rec(agno, startino, Some(rec));
        }
        Ok(())
    }
}
