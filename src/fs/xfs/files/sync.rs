//! Writing everything staged as one crash-safe batch, in the order the
//! write path promises: new and rewritten data blocks (file data, new
//! inode chunks, remote symlinks) first, then bmap btree blocks and the
//! per-AG btree blocks, then the AGFL, AGF and AGI, then directory blocks
//! and inodes, and the primary superblock last. Every metadata block
//! carries LSN 0. All-zero data blocks are written as discards, so that an
//! image file keeps its holes.

use super::super::agfl::{AGFL_BNO_OFF, Agfl};
use super::super::bmap::{self, BlockAddr};
use super::super::dinode::{Dinode, format};
use super::super::dir2::Entry;
use super::super::dir2::layout::{self, Format};
use super::super::sbtree::{self, BNO, CNT, FINO, INO};
use super::alloc::ino_rec_bytes;
use super::inode::{Fork, InodeState};
use super::{Geo, XfsFiles, corrupt_inode};
use crate::blockdev::{BlockDevice, WriteBatch, WriteOp};
use crate::bytes::write_u32be;
use crate::fs::node::{ErrorKind, NodeError, NodeResult};

/// Clean directories kept in memory after a sync.
const MAX_CLEAN_DIRS: usize = 1024;

/// Blocks to write: (address, bytes).
type Blocks<A> = Vec<(A, Vec<u8>)>;

impl BlockAddr for Geo {
    fn daddr(&self, fsb: u64) -> u64 {
        self.fsb_to_daddr(fsb)
    }
}

impl<D: BlockDevice> XfsFiles<D> {
    /// The inode's bytes and its bmap btree blocks.
    fn inode_image(&self, st: &InodeState) -> NodeResult<(Vec<u8>, Blocks<u64>)> {
        let ino = st.di.ino;
        if st.freed {
            let di = Dinode::free(
                ino,
                self.geo.uuid,
                st.di.generation.wrapping_add(1),
                self.geo.inodesize,
            );
            return Ok((di.to_bytes(), Vec::new()));
        }
        let mut di = st.di.clone();
        let mut blocks = Vec::new();
        match &st.fork {
            Fork::Dev(x) => {
                di.format = format::DEV;
                di.set_data_fork(&x.to_be_bytes());
            }
            Fork::Local(b) => {
                di.format = format::LOCAL;
                di.set_data_fork(b);
            }
            Fork::Blocks { exts, bmbt } => {
                let built = bmap::build(
                    exts,
                    di.data_fork_size(),
                    &self.geo.bmbt,
                    bmbt,
                    &self.geo,
                    &self.geo.uuid,
                    ino,
                )
                .map_err(|d| corrupt_inode(ino, d))?;
                di.format = built.format;
                di.set_data_fork(&built.fork);
                blocks = built.blocks;
            }
        }
        let mut st2 = InodeState {
            di,
            fork: st.fork.clone(),
            attr_blocks: st.attr_blocks,
            dirty: false,
            freed: false,
        };
        st2.recount();
        Ok((st2.di.to_bytes(), blocks))
    }

    /// A directory's blocks, at their disk addresses.
    fn dir_image(&self, ino: u64) -> NodeResult<Blocks<u64>> {
        let (Some(d), Some(st)) = (self.dirs.get(&ino), self.inodes.get(&ino)) else {
            return Ok(Vec::new());
        };
        let live: Vec<&Entry> = d.entries().collect();
        let g = self.geo.dir;
        let plan = layout::plan(d.parent, &live, &g, st.di.data_fork_size());
        if plan.format == Format::Short {
            return Ok(Vec::new());
        }
        let exts = st.exts();
        let phys = |dablk: u64| -> Option<u64> {
            let lblk = dablk * g.fsbcount;
            let i = exts.partition_point(|e| e.end() <= lblk);
            exts.get(i)
                .filter(|e| e.off <= lblk)
                .map(|e| e.start + (lblk - e.off))
        };
        for dablk in plan.dablks(&g) {
            if phys(dablk).is_none() {
                return Err(corrupt_inode(
                    ino,
                    format!("directory block {dablk} has no block"),
                ));
            }
        }
        let daddr = |dablk: u64| phys(dablk).map_or(0, |f| self.geo.fsb_to_daddr(f));
        let ctx = layout::Ctx {
            owner: ino,
            uuid: self.geo.uuid,
            daddr: &daddr,
        };
        let blocks = layout::build(&plan, d.parent, &live, &g, &ctx);
        Ok(blocks
            .into_iter()
            .map(|(dablk, b)| {
                let off = phys(dablk).map_or(0, |f| self.geo.fsb_to_lin(f) << self.geo.blocklog);
                (off, b)
            })
            .collect())
    }

    /// Writes everything staged in one batch.
    pub(super) fn sync_now(&mut self) -> NodeResult<()> {
        for d in self.dirs.values_mut().filter(|d| d.dirty) {
            d.compact();
        }
        let bs = self.geo.bs;
        let blocklog = self.geo.blocklog;
        let mut batch = WriteBatch::new();

        // 1. Data blocks, a run per write; zero blocks become discards.
        // Runs move into the batch (no copy); on failure they move back.
        let runs = self.staged.take();
        let mut kept = std::collections::BTreeMap::new();
        let mut moved = Vec::new();
        let bsz = bs as usize;
        for (lin, run) in runs {
            let nblk = run.len() / bsz;
            let zero: Vec<bool> = run.chunks_exact(bsz).map(crate::bytes::is_zero).collect();
            if !zero.iter().any(|&z| z) {
                moved.push((batch.ops.len(), lin));
                batch.write(lin << blocklog, run);
                continue;
            }
            let mut i = 0;
            while i < nblk {
                let mut j = i + 1;
                while j < nblk && zero[j] == zero[i] {
                    j += 1;
                }
                let (a, b) = ((lin + i as u64) << blocklog, (lin + j as u64) << blocklog);
                if zero[i] {
                    batch.discard(a..b);
                } else {
                    batch.write(a, run[i * bsz..j * bsz].to_vec());
                }
                i = j;
            }
            kept.insert(lin, run);
        }
        // 2. Inode images and their bmap btree blocks; directory blocks.
        let mut inode_writes = Vec::new();
        let mut dir_writes = Vec::new();
        let mut dirty: Vec<u64> = self
            .inodes
            .iter()
            .filter(|(_, s)| s.dirty)
            .map(|(&i, _)| i)
            .collect();
        dirty.sort_unstable();
        for ino in &dirty {
            let Some(st) = self.inodes.get(ino) else {
                continue;
            };
            if !self.ino_slot_exists(*ino) {
                // Its chunk was freed: nothing to write.
                continue;
            }
            let (bytes, blocks) = self.inode_image(st)?;
            for (fsb, b) in blocks {
                batch.write(self.geo.fsb_to_lin(fsb) << blocklog, b);
            }
            inode_writes.push((self.geo.ino_byte(*ino), bytes));
            if !st.freed && self.dirs.get(ino).is_some_and(|d| d.dirty) {
                dir_writes.extend(self.dir_image(*ino)?);
            }
        }

        // 3. Per-AG btrees, then 4. AGFL, AGF, AGI.
        let mut headers = Vec::new();
        for agno in 0..self.geo.agcount {
            if !self.ags[agno as usize].small.dirty {
                continue;
            }
            let (blocks, hdrs) = self.ag_image(agno)?;
            for (agbno, b) in blocks {
                batch.write(self.geo.ag_to_lin(agno, agbno) << blocklog, b);
            }
            headers.extend(hdrs);
        }
        for (off, b) in headers {
            batch.write(off, b);
        }
        // 5. Directories and inodes.
        for (off, b) in dir_writes {
            batch.write(off, b);
        }
        for (off, b) in inode_writes {
            batch.write(off, b);
        }
        // 6. The primary superblock.
        let mut sb = self.superblock();
        sb.lsn = 0;
        if !batch.is_empty() {
            batch.write(0, sb.to_bytes());
        }
        if batch.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.dev.commit(&batch) {
            for (i, lin) in moved {
                let op = std::mem::replace(&mut batch.ops[i], WriteOp::Discard { range: 0..0 });
                if let WriteOp::Data { bytes, .. } = op {
                    kept.insert(lin, bytes);
                }
            }
            self.staged.restore(kept);
            return Err(NodeError::with(ErrorKind::Io, e));
        }

        // Committed: everything is clean. Inodes are cheap to read again;
        // directories are kept (parsing a large one costs) up to a bound.
        self.sb = sb;
        self.inodes.clear();
        if self.dirs.len() > MAX_CLEAN_DIRS {
            self.dirs.clear();
        }
        for d in self.dirs.values_mut() {
            d.dirty = false;
        }
        for ag in &mut self.ags {
            ag.small.dirty = false;
        }
        Ok(())
    }

    /// AG `agno`'s btree blocks and header sectors (byte offset, bytes).
    fn ag_image(&mut self, agno: u32) -> NodeResult<(Blocks<u32>, Blocks<u64>)> {
        let bs = self.geo.bs as usize;
        let geo = self.geo.clone();
        let daddr = |agbno: u32| geo.ag_to_lin(agno, agbno) << (geo.blocklog - 9);
        let ag = &self.ags[agno as usize];
        let bad =
            |d: String| NodeError::with(ErrorKind::Corrupt, super::super::error::Error::Invalid(d));
        let by_bno: Vec<[u8; 8]> = ag
            .free
            .iter()
            .map(|(s, l)| {
                let mut r = [0u8; 8];
                write_u32be(&mut r, 0, s);
                write_u32be(&mut r, 4, l);
                r
            })
            .collect();
        let by_cnt: Vec<[u8; 8]> = ag
            .free
            .iter_cnt()
            .map(|(s, l)| {
                let mut r = [0u8; 8];
                write_u32be(&mut r, 0, s);
                write_u32be(&mut r, 4, l);
                r
            })
            .collect();
        let sparse = self.geo.sparse;
        let inos: Vec<[u8; 16]> = ag.inos.values().map(|r| ino_rec_bytes(r, sparse)).collect();
        let finos: Vec<[u8; 16]> = ag
            .inos
            .values()
            .filter(|r| r.freecount > 0)
            .map(|r| ino_rec_bytes(r, sparse))
            .collect();
        let refs = |v: &[[u8; 8]]| v.iter().map(|r| r.as_slice().to_vec()).collect::<Vec<_>>();
        let bno_recs = refs(&by_bno);
        let cnt_recs = refs(&by_cnt);
        let ino_recs: Vec<Vec<u8>> = inos.iter().map(|r| r.to_vec()).collect();
        let fino_recs: Vec<Vec<u8>> = finos.iter().map(|r| r.to_vec()).collect();
        fn slices(v: &[Vec<u8>]) -> Vec<&[u8]> {
            v.iter().map(|r| r.as_slice()).collect()
        }
        let uuid = geo.uuid;
        let mut blocks = Vec::new();
        let (b, bno_levels) = sbtree::build(
            &BNO,
            agno,
            &slices(&bno_recs),
            &ag.small.bno,
            bs,
            &uuid,
            daddr,
        )
        .map_err(bad)?;
        blocks.extend(b);
        let (b, cnt_levels) = sbtree::build(
            &CNT,
            agno,
            &slices(&cnt_recs),
            &ag.small.cnt,
            bs,
            &uuid,
            daddr,
        )
        .map_err(bad)?;
        blocks.extend(b);
        let (b, ino_levels) = sbtree::build(
            &INO,
            agno,
            &slices(&ino_recs),
            &ag.small.ino,
            bs,
            &uuid,
            daddr,
        )
        .map_err(bad)?;
        blocks.extend(b);
        let mut fino_levels = 0;
        if geo.finobt {
            let (b, l) = sbtree::build(
                &FINO,
                agno,
                &slices(&fino_recs),
                &ag.small.fino,
                bs,
                &uuid,
                daddr,
            )
            .map_err(bad)?;
            blocks.extend(b);
            fino_levels = l;
        }

        let sectsize = usize::from(self.sb.sectsize);
        let mut agf = ag.agf.clone();
        agf.roots[0] = ag.small.bno[0];
        agf.roots[1] = ag.small.cnt[0];
        agf.levels[0] = bno_levels;
        agf.levels[1] = cnt_levels;
        let slots = ag.agfl_slots;
        let n = ag.small.agfl.len() as u32;
        agf.flfirst = ag.small.agfl_first % slots;
        agf.fllast = (agf.flfirst + slots + n - 1) % slots;
        agf.flcount = n;
        agf.freeblks = ag.free.total() as u32;
        agf.longest = ag.free.longest();
        agf.btreeblks = ag.btreeblks() as u32;
        agf.lsn = 0;
        let mut agfl = Agfl::empty(agno, uuid, sectsize);
        for (i, &b) in ag.small.agfl.iter().enumerate() {
            let slot = ((agf.flfirst + i as u32) % slots) as usize;
            agfl.bno[slot] = b;
        }
        let _ = AGFL_BNO_OFF;
        let mut agi = ag.agi.clone();
        agi.count = ag.small.icount;
        agi.freecount = ag.small.ifree;
        agi.root = ag.small.ino[0];
        agi.level = ino_levels;
        agi.newino = ag.small.newino;
        if geo.finobt {
            agi.free_root = ag.small.fino[0];
            agi.free_level = fino_levels;
        }
        if geo.inobtcnt {
            agi.iblocks = ag.small.ino.len() as u32;
            agi.fblocks = ag.small.fino.len() as u32;
        }
        agi.lsn = 0;
        let base = self.sb.ag_byte(agno, 0);
        let ss = sectsize as u64;
        let headers = vec![
            (base + 3 * ss, agfl.to_bytes(sectsize)),
            (base + ss, agf.to_bytes(sectsize)),
            (base + 2 * ss, agi.to_bytes(sectsize)),
        ];
        let ag = &mut self.ags[agno as usize];
        ag.agf = agf;
        ag.agi = agi;
        Ok((blocks, headers))
    }
}
