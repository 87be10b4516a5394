//! File contents: reading through the extent map (holes and unwritten
//! extents read as zeros), writing (all-zero blocks over a hole or an
//! unwritten extent stay as they are; writes into unwritten extents
//! convert the blocks they touch), fallocate (unwritten extents, the
//! kernel's per-transaction reservation of `min(rest, MAXEXTLEN) + 4`
//! blocks; punching holes) and truncation.

use super::super::bmap::{Extent, MAX_EXTLEN};
use super::super::dinode::flags;
use super::alloc::AllocReq;
use super::{Undo, XfsFiles, nospc};
use crate::blockdev::BlockDevice;
use crate::fs::node::{Ctx, ErrorKind, FallocateMode, FileType, NodeError, NodeResult};

const S_ISUID: u16 = 0o4000;
const S_ISGID: u16 = 0o2000;
const S_IXGRP: u16 = 0o0010;

/// Splits the extent that straddles file block `at`.
fn split_at(exts: &mut Vec<Extent>, at: u64) {
    let i = exts.partition_point(|e| e.end() <= at);
    if let Some(e) = exts.get(i).copied() {
        if e.off < at && at < e.end() {
            let cut = at - e.off;
            exts[i].len = cut;
            exts.insert(
                i + 1,
                Extent {
                    off: at,
                    start: e.start + cut,
                    len: e.len - cut,
                    unwritten: e.unwritten,
                },
            );
        }
    }
}

/// Splits at both ends of `[lo, hi)` and returns the index range of the
/// extents inside.
fn carve(exts: &mut Vec<Extent>, lo: u64, hi: u64) -> std::ops::Range<usize> {
    split_at(exts, lo);
    split_at(exts, hi);
    let a = exts.partition_point(|e| e.end() <= lo);
    let b = exts.partition_point(|e| e.off < hi);
    a..b.max(a)
}

/// The extent mapping file block `lblk`.
fn lookup(exts: &[Extent], lblk: u64) -> Option<&Extent> {
    let i = exts.partition_point(|e| e.end() <= lblk);
    exts.get(i).filter(|e| e.off <= lblk)
}

/// Inserts `e` in file order.
fn insert(exts: &mut Vec<Extent>, e: Extent) {
    let i = exts.partition_point(|x| x.off < e.off);
    exts.insert(i, e);
}

/// A block's new contents: a whole block of the caller's data (by its
/// offset there), or a block assembled from old contents and new data.
enum Bytes {
    Data(usize),
    Own(Vec<u8>),
}

impl Bytes {
    fn get<'a>(&'a self, data: &'a [u8], bs: usize) -> &'a [u8] {
        match self {
            Bytes::Data(at) => &data[*at..*at + bs],
            Bytes::Own(v) => v,
        }
    }
}

/// What a write does to one block.
enum Action {
    /// Nothing (zeros over a hole or an unwritten extent).
    Skip,
    /// Allocate a block and write it.
    Alloc(Bytes),
    /// Convert an unwritten block and write it.
    Convert(u64, Bytes),
    /// Overwrite a written block.
    Overwrite(u64, Bytes),
}

impl<D: BlockDevice> XfsFiles<D> {
    fn regular(&mut self, ino: u64) -> NodeResult<()> {
        match self.inode_get(ino)?.kind()? {
            FileType::Regular => Ok(()),
            FileType::Directory => Err(NodeError::new(ErrorKind::IsADirectory)),
            _ => Err(NodeError::new(ErrorKind::InvalidArgument)),
        }
    }

    /// Reads file data.
    pub(super) fn read_file(&self, ino: u64, offset: u64, buf: &mut [u8]) -> NodeResult<usize> {
        let st = self.inode_ro(ino)?;
        match st.kind()? {
            FileType::Regular => {}
            FileType::Directory => return Err(NodeError::new(ErrorKind::IsADirectory)),
            _ => return Err(NodeError::new(ErrorKind::InvalidArgument)),
        }
        let size = st.di.size;
        if offset >= size || buf.is_empty() {
            return Ok(0);
        }
        let n = (size - offset).min(buf.len() as u64) as usize;
        let out = &mut buf[..n];
        out.fill(0);
        let bs = self.geo.bs;
        let end = offset + n as u64;
        let exts = st.exts();
        let mut i = exts.partition_point(|e| e.end() * bs <= offset);
        while let Some(e) = exts.get(i) {
            let e_start = e.off * bs;
            if e_start >= end {
                break;
            }
            if !e.unwritten {
                let from = e_start.max(offset);
                let to = (e.end() * bs).min(end);
                let disk = (self.geo.fsb_to_lin(e.start) << self.geo.blocklog) + (from - e_start);
                let bytes = self.read_bytes(disk, (to - from) as usize)?;
                out[(from - offset) as usize..(to - offset) as usize].copy_from_slice(&bytes);
            }
            i += 1;
        }
        Ok(n)
    }

    /// The byte ranges of a file that hold written data (unwritten extents
    /// and holes read as zeros and are left out), merged.
    pub fn data_extents(&self, ino: u64) -> NodeResult<Vec<(u64, u64)>> {
        let st = self.inode_ro(ino)?;
        let bs = self.geo.bs;
        let mut out: Vec<(u64, u64)> = Vec::new();
        for e in st.exts().iter().filter(|e| !e.unwritten) {
            let (s, t) = (e.off * bs, (e.end() * bs).min(st.di.size.max(e.off * bs)));
            if s >= t {
                continue;
            }
            match out.last_mut() {
                Some(last) if last.1 == s => last.1 = t,
                _ => out.push((s, t)),
            }
        }
        Ok(out)
    }

    /// The current contents of written block `phys` (segmented).
    fn block_bytes(&self, phys: u64) -> NodeResult<Vec<u8>> {
        self.read_fsb(phys)
    }

    /// Clears set-user-ID and set-group-ID as a write by a non-root user
    /// does (`file_remove_privs`).
    fn kill_privs(&mut self, ino: u64, uid: u32) -> NodeResult<()> {
        if uid == 0 {
            return Ok(());
        }
        let mode = self.inode_get(ino)?.di.mode;
        let mut new = mode & !S_ISUID;
        if mode & S_IXGRP != 0 {
            new &= !S_ISGID;
        }
        if new != mode {
            self.inode_mut(ino)?.di.mode = new;
        }
        Ok(())
    }

    /// Writes `data` at `offset`; on running out of space, writes what
    /// fits (whole blocks) and returns its length, as write(2) does.
    pub(super) fn write_file(
        &mut self,
        ctx: Ctx,
        ino: u64,
        offset: u64,
        data: &[u8],
    ) -> NodeResult<usize> {
        self.regular(ino)?;
        if data.is_empty() {
            return Ok(0);
        }
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&e| e <= i64::MAX as u64)
            .ok_or_else(|| NodeError::new(ErrorKind::FileTooBig))?;
        let size = self.inode_get(ino)?.di.size;
        self.check_mutable(ino, offset == size)?;
        let st = self.inode_get(ino)?.clone();
        self.check_unshared(&st)?;
        let bs = self.geo.bs;
        let first = offset / bs;
        let last = (end - 1) / bs;
        let mut actions: Vec<Action> = Vec::with_capacity((last - first + 1) as usize);
        for b in first..=last {
            let bstart = b * bs;
            let from = bstart.max(offset);
            let to = (bstart + bs).min(end);
            let piece = &data[(from - offset) as usize..(to - offset) as usize];
            let m = lookup(st.exts(), b).copied();
            let full = to - from == bs;
            let (block, zero) = if full {
                (
                    Bytes::Data((from - offset) as usize),
                    crate::bytes::is_zero(piece),
                )
            } else {
                let mut v = match m {
                    Some(e) if !e.unwritten => self.block_bytes(e.start + (b - e.off))?,
                    _ => vec![0u8; bs as usize],
                };
                v[(from - bstart) as usize..(to - bstart) as usize].copy_from_slice(piece);
                let zero = crate::bytes::is_zero(&v);
                (Bytes::Own(v), zero)
            };
            actions.push(match m {
                None if zero => Action::Skip,
                None => Action::Alloc(block),
                Some(e) if e.unwritten && zero => Action::Skip,
                Some(e) if e.unwritten => Action::Convert(e.start + (b - e.off), block),
                Some(e) => Action::Overwrite(e.start + (b - e.off), block),
            });
        }
        // Space: the new blocks and a bmap btree split.
        let overhead = self.geo.bm_maxlevels - 1;
        let allocs = actions
            .iter()
            .filter(|a| matches!(a, Action::Alloc(_)))
            .count() as u64;
        let mut keep = actions.len();
        if allocs > 0 {
            let avail = self.free_for_users().saturating_sub(overhead);
            if allocs > avail {
                // Cut before the first block that cannot be had.
                let mut n = 0u64;
                keep = actions
                    .iter()
                    .position(|a| {
                        if matches!(a, Action::Alloc(_)) {
                            n += 1;
                        }
                        n > avail
                    })
                    .unwrap_or(actions.len());
            }
        }
        loop {
            if keep == 0 {
                return Err(nospc());
            }
            let sp = self.savepoint();
            match self.apply_write(ino, first, &actions[..keep], data) {
                Ok(()) => break,
                Err(e) if e.kind() == ErrorKind::NoSpace => {
                    self.rollback_to(sp);
                    keep /= 2;
                }
                Err(e) => return Err(e),
            }
        }
        let written_end = if keep == actions.len() {
            end
        } else {
            (first + keep as u64) * bs
        };
        let bigtime = self.geo.bigtime;
        let st = self.inode_mut(ino)?;
        if written_end > st.di.size {
            st.di.size = written_end;
        }
        Self::stamp(st, bigtime, None, Some(ctx.now), Some(ctx.now));
        self.kill_privs(ino, ctx.cred.uid)?;
        self.fix_touched()?;
        Ok((written_end - offset) as usize)
    }

    /// Carries out the block actions of a write starting at file block
    /// `first`, with the caller's `data`.
    fn apply_write(
        &mut self,
        ino: u64,
        first: u64,
        actions: &[Action],
        data: &[u8],
    ) -> NodeResult<()> {
        let bs = self.geo.bs as usize;
        let mut exts = self.inode_get(ino)?.exts().to_vec();
        let (agno, agino) = self.geo.ino_to_ag(ino);
        let mut i = 0;
        while i < actions.len() {
            let b = first + i as u64;
            match &actions[i] {
                Action::Skip => i += 1,
                Action::Overwrite(phys, block) => {
                    let lin = self.geo.fsb_to_lin(*phys);
                    self.stage(lin, block.get(data, bs));
                    i += 1;
                }
                Action::Convert(phys, block) => {
                    let lin = self.geo.fsb_to_lin(*phys);
                    self.stage(lin, block.get(data, bs));
                    let r = carve(&mut exts, b, b + 1);
                    for e in &mut exts[r] {
                        e.unwritten = false;
                    }
                    i += 1;
                }
                Action::Alloc(_) => {
                    let mut j = i + 1;
                    while j < actions.len() && matches!(actions[j], Action::Alloc(_)) {
                        j += 1;
                    }
                    let mut lblk = b;
                    let mut k = i;
                    while k < j {
                        // Right after the block before, else near the inode.
                        let (gag, goal) = match lblk.checked_sub(1).and_then(|p| lookup(&exts, p)) {
                            Some(e) => {
                                let (a, g) = self.geo.fsb_to_ag(e.start + (lblk - e.off));
                                (a, Some(g))
                            }
                            None => (agno, Some(agino >> self.geo.inopblog)),
                        };
                        let want = (j - k) as u64;
                        let (a, s, n) = self.alloc_data(ino, gag, goal, want, &exts)?;
                        let fsb = self.geo.ag_to_fsb(a, s);
                        let mut run = Vec::with_capacity(n as usize * bs);
                        for act in &actions[k..k + n as usize] {
                            if let Action::Alloc(block) = act {
                                run.extend_from_slice(block.get(data, bs));
                            }
                        }
                        self.stage_run(self.geo.fsb_to_lin(fsb), run);
                        insert(
                            &mut exts,
                            Extent {
                                off: lblk,
                                start: fsb,
                                len: u64::from(n),
                                unwritten: false,
                            },
                        );
                        lblk += u64::from(n);
                        k += n as usize;
                    }
                    i = j;
                }
            }
        }
        self.set_extents(ino, exts)
    }

    /// Allocates up to `want` data blocks for a file whose extents are
    /// `exts`, leaving what a bmap btree split may need (`minleft`), and
    /// without it when space is short (the kernel's low-space retry).
    fn alloc_data(
        &mut self,
        ino: u64,
        agno: u32,
        goal: Option<u32>,
        want: u64,
        exts: &[Extent],
    ) -> NodeResult<(u32, u32, u32)> {
        let fork_size = self.inode_get(ino)?.di.data_fork_size();
        let shape = self.geo.bmbt.shape(exts.len(), fork_size);
        let minleft = if shape.is_empty() {
            1
        } else {
            shape.len() as u64 + 1
        };
        let mut req = AllocReq::near(agno, goal, want.min(MAX_EXTLEN));
        req.minleft = minleft;
        match self.alloc(req) {
            Err(e) if e.kind() == ErrorKind::NoSpace => {
                req.minleft = 0;
                req.goal = None;
                self.alloc(req)
            }
            r => r,
        }
    }

    /// fallocate(2).
    pub(super) fn fallocate_file(
        &mut self,
        ctx: Ctx,
        ino: u64,
        offset: u64,
        len: u64,
        mode: FallocateMode,
    ) -> NodeResult<()> {
        self.regular(ino)?;
        if len == 0 {
            return Err(NodeError::new(ErrorKind::InvalidArgument));
        }
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= i64::MAX as u64)
            .ok_or_else(|| NodeError::new(ErrorKind::FileTooBig))?;
        self.check_mutable(ino, matches!(mode, FallocateMode::Allocate { .. }))?;
        let st = self.inode_get(ino)?.clone();
        let bs = self.geo.bs;
        match mode {
            FallocateMode::Allocate { keep_size } => {
                let lo = offset / bs;
                let hi = end.div_ceil(bs);
                let mut exts = st.exts().to_vec();
                let overhead = self.geo.bm_maxlevels - 1;
                let (agno, agino) = self.geo.ino_to_ag(ino);
                let mut cur = lo;
                while cur < hi {
                    // One transaction: reserve, then map from `cur`.
                    self.reserve((hi - cur).min(MAX_EXTLEN) + overhead)?;
                    if let Some(e) = lookup(&exts, cur) {
                        cur = e.end().min(hi);
                        continue;
                    }
                    let next = exts
                        .get(exts.partition_point(|e| e.off < cur))
                        .map_or(hi, |e| e.off.min(hi));
                    let (gag, goal) = match cur.checked_sub(1).and_then(|p| lookup(&exts, p)) {
                        Some(e) => {
                            let (a, g) = self.geo.fsb_to_ag(e.start + e.len);
                            (a, Some(g))
                        }
                        None => (agno, Some(agino >> self.geo.inopblog)),
                    };
                    let (a, s, n) = self.alloc_data(ino, gag, goal, next - cur, &exts)?;
                    insert(
                        &mut exts,
                        Extent {
                            off: cur,
                            start: self.geo.ag_to_fsb(a, s),
                            len: u64::from(n),
                            unwritten: true,
                        },
                    );
                    self.set_extents(ino, exts.clone())?;
                    exts = self.inode_get(ino)?.exts().to_vec();
                    cur += u64::from(n);
                }
                let bigtime = self.geo.bigtime;
                let st = self.inode_mut(ino)?;
                if !keep_size && end > st.di.size {
                    st.di.size = end;
                }
                st.di.flags |= flags::PREALLOC;
                Self::stamp(st, bigtime, None, Some(ctx.now), Some(ctx.now));
            }
            FallocateMode::PunchHole => {
                self.check_unshared(&st)?;
                let lo_full = offset.div_ceil(bs);
                let hi_full = end / bs;
                let mut exts = st.exts().to_vec();
                if lo_full < hi_full {
                    let r = carve(&mut exts, lo_full, hi_full);
                    let gone: Vec<Extent> = exts.drain(r).collect();
                    for e in gone {
                        self.free_fsb(e.start, e.len)?;
                    }
                }
                // Partial blocks at either end: zero the punched bytes.
                let mut partial = Vec::new();
                if offset % bs != 0 || lo_full > hi_full {
                    partial.push(offset / bs);
                }
                if end % bs != 0 && end / bs >= lo_full && !partial.contains(&(end / bs)) {
                    partial.push(end / bs);
                }
                for b in partial {
                    if let Some(e) = lookup(&exts, b).copied() {
                        if !e.unwritten {
                            let phys = e.start + (b - e.off);
                            let mut v = self.block_bytes(phys)?;
                            let from = offset.max(b * bs) - b * bs;
                            let to = end.min((b + 1) * bs) - b * bs;
                            if !crate::bytes::is_zero(&v[from as usize..to as usize]) {
                                v[from as usize..to as usize].fill(0);
                                let lin = self.geo.fsb_to_lin(phys);
                                self.stage(lin, &v);
                            }
                        }
                    }
                }
                self.set_extents(ino, exts)?;
                let bigtime = self.geo.bigtime;
                let st = self.inode_mut(ino)?;
                Self::stamp(st, bigtime, None, Some(ctx.now), Some(ctx.now));
            }
        }
        self.kill_privs(ino, ctx.cred.uid)?;
        self.fix_touched()
    }

    /// Changes a regular file's size: shrinking frees every block past the
    /// new end (preallocations included) and zeroes the rest of the last
    /// block; growing zeroes what was past the old end in its last block.
    pub(super) fn truncate_file(&mut self, ino: u64, size: u64) -> NodeResult<()> {
        let st = self.inode_get(ino)?.clone();
        let old = st.di.size;
        let bs = self.geo.bs;
        let mut exts = st.exts().to_vec();
        let zero_tail = |fs: &mut Self, exts: &[Extent], at: u64| -> NodeResult<()> {
            if at % bs == 0 {
                return Ok(());
            }
            let b = at / bs;
            if let Some(e) = lookup(exts, b).copied() {
                if !e.unwritten {
                    let phys = e.start + (b - e.off);
                    let mut v = fs.block_bytes(phys)?;
                    let from = (at % bs) as usize;
                    if !crate::bytes::is_zero(&v[from..]) {
                        v[from..].fill(0);
                        let lin = fs.geo.fsb_to_lin(phys);
                        fs.stage(lin, &v);
                    }
                }
            }
            Ok(())
        };
        if size <= old {
            let lo = size.div_ceil(bs);
            if exts.last().is_some_and(|e| e.end() > lo) {
                self.check_unshared(&st)?;
                let r = carve(&mut exts, lo, u64::MAX >> 10);
                let gone: Vec<Extent> = exts.drain(r).collect();
                for e in gone {
                    self.free_fsb(e.start, e.len)?;
                }
                self.set_extents(ino, exts.clone())?;
            }
        }
        if size < old {
            zero_tail(self, &exts, size)?;
        } else if size > old {
            zero_tail(self, &exts, old)?;
        }
        self.inode_mut(ino)?.di.size = size;
        Ok(())
    }

    /// A point in the undo log to roll back to.
    pub(super) fn savepoint(&self) -> usize {
        self.undo.as_ref().map_or(0, |t| t.log.len())
    }

    /// Rolls back everything logged after `sp`.
    pub(super) fn rollback_to(&mut self, sp: usize) {
        let tail: Vec<Undo> = match self.undo.as_mut() {
            Some(t) => t.log.drain(sp..).collect(),
            None => return,
        };
        for u in tail.into_iter().rev() {
            if let Some(t) = self.undo.as_mut() {
                match &u {
                    Undo::AgSmall(agno, _) => {
                        t.ags.remove(agno);
                    }
                    Undo::Inode(ino, _) => {
                        t.inodes.remove(ino);
                    }
                    _ => {}
                }
            }
            self.undo_one(u);
        }
    }
}
