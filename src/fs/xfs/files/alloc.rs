//! Free space: per AG, the free extents (bnobt and cntbt records), the
//! AGFL, and the blocks the free-space and inode btrees occupy; the
//! allocator; the kernel's space checks; and statfs.
//!
//! The kernel's rules, as `xfs_alloc_space_available` and
//! `xfs_alloc_fix_freelist` apply them: an allocation in an AG must leave
//! the AG's unused per-AG metadata reservation (`hidden_resv`: the
//! refcount and finobt reservations not yet used), enough blocks to refill
//! the AGFL to its minimum (one more than the height of each free-space
//! tree) and the caller's `minleft` (the blocks a bmap btree split may
//! need). After every change the AGFL is refilled to, or trimmed back to,
//! that minimum, and the free-space trees are given exactly the blocks
//! their record counts need (from the AGFL first), which is also what
//! `agf_btreeblks` counts (all blocks but the two roots).

use super::super::Xfs;
use super::super::agf::Agf;
use super::super::agfl::agfl_size;
use super::super::agi::Agi;
use super::super::btree::{AllocRec, InobtRec};
use super::super::error::{Error, Result, Structure};
use super::super::sbtree::{self, BNO, CNT, FINO, INO};
use super::super::statfs::{self, AgUsage, MountMode, StatFs};
use super::super::superblock::ro_compat;
use super::{Geo, Undo, XfsFiles, nospc};
use crate::blockdev::BlockDevice;
use crate::bytes::{read_u16be, read_u32be, read_u64be, write_u16be, write_u32be, write_u64be};
use crate::fs::node::{ErrorKind, NodeError, NodeResult};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Free extents of one AG, by start and by (length, start).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FreeSpace {
    by_bno: BTreeMap<u32, u32>,
    by_cnt: BTreeSet<(u32, u32)>,
    total: u64,
}

impl FreeSpace {
    /// Adds `[start, start+len)`, merging with its neighbours. Fails if
    /// any of it is already free.
    pub fn insert(&mut self, start: u32, len: u32) -> std::result::Result<(), String> {
        if len == 0 {
            return Ok(());
        }
        let end = start
            .checked_add(len)
            .ok_or_else(|| format!("extent {start}+{len} overflows"))?;
        let mut new_start = start;
        let mut new_end = end;
        if let Some((&s, &l)) = self.by_bno.range(..=start).next_back() {
            if s + l > start {
                return Err(format!("block {start} is already free (in {s}+{l})"));
            }
            if s + l == start {
                new_start = s;
            }
        }
        if let Some((&s, &l)) = self.by_bno.range(start..).next() {
            if s < end {
                return Err(format!("blocks {s}.. are already free"));
            }
            if s == end {
                new_end = s + l;
                self.by_bno.remove(&s);
                self.by_cnt.remove(&(l, s));
            }
        }
        if new_start != start {
            if let Some(l) = self.by_bno.remove(&new_start) {
                self.by_cnt.remove(&(l, new_start));
            }
        }
        self.by_bno.insert(new_start, new_end - new_start);
        self.by_cnt.insert((new_end - new_start, new_start));
        self.total += u64::from(len);
        Ok(())
    }

    /// Removes `[start, start+len)`, which must lie in one free extent.
    pub fn remove(&mut self, start: u32, len: u32) -> std::result::Result<(), String> {
        if len == 0 {
            return Ok(());
        }
        let (s, l) = self
            .by_bno
            .range(..=start)
            .next_back()
            .map(|(&s, &l)| (s, l))
            .filter(|&(s, l)| u64::from(s) + u64::from(l) >= u64::from(start) + u64::from(len))
            .ok_or_else(|| format!("blocks {start}+{len} are not free"))?;
        self.by_bno.remove(&s);
        self.by_cnt.remove(&(l, s));
        if start > s {
            self.by_bno.insert(s, start - s);
            self.by_cnt.insert((start - s, s));
        }
        let tail_start = start + len;
        let tail = s + l - tail_start;
        if tail > 0 {
            self.by_bno.insert(tail_start, tail);
            self.by_cnt.insert((tail, tail_start));
        }
        self.total -= u64::from(len);
        Ok(())
    }

    /// The longest free extent.
    pub fn longest(&self) -> u32 {
        self.by_cnt.iter().next_back().map_or(0, |&(l, _)| l)
    }

    /// Number of free extents (records of each tree).
    pub fn count(&self) -> usize {
        self.by_bno.len()
    }

    /// Free blocks.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The extents by start.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.by_bno.iter().map(|(&s, &l)| (s, l))
    }

    /// The extents by (length, start).
    pub fn iter_cnt(&self) -> impl DoubleEndedIterator<Item = (u32, u32)> + '_ {
        self.by_cnt.iter().map(|&(l, s)| (s, l))
    }

    /// The free extent containing `agbno`, if any.
    pub fn containing(&self, agbno: u32) -> Option<(u32, u32)> {
        self.by_bno
            .range(..=agbno)
            .next_back()
            .map(|(&s, &l)| (s, l))
            .filter(|&(s, l)| s + l > agbno)
    }

    /// The first extent starting at or after `agbno` with at least `len`
    /// blocks, by start.
    pub fn first_fit_from(&self, agbno: u32, len: u32) -> Option<(u32, u32)> {
        self.by_bno
            .range(agbno..)
            .map(|(&s, &l)| (s, l))
            .find(|&(_, l)| l >= len)
    }

    /// The smallest extent of at least `len` blocks (lowest start among
    /// equals).
    pub fn best_fit(&self, len: u32) -> Option<(u32, u32)> {
        self.by_cnt.range((len, 0)..).next().map(|&(l, s)| (s, l))
    }
}

/// The parts of an AG's state saved whole before an operation changes
/// them (all small).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgSmall {
    /// The AGFL ring: blocks from `flfirst` on.
    pub agfl: VecDeque<u32>,
    /// The ring position of the first block.
    pub agfl_first: u32,
    /// Blocks of the bnobt, root first.
    pub bno: Vec<u32>,
    /// Blocks of the cntbt, root first.
    pub cnt: Vec<u32>,
    /// Blocks of the inobt, root first.
    pub ino: Vec<u32>,
    /// Blocks of the finobt, root first.
    pub fino: Vec<u32>,
    /// Heights of the bno and cnt trees.
    pub bno_levels: u32,
    pub cnt_levels: u32,
    /// `agi_newino`.
    pub newino: u32,
    /// Inodes in chunks (`agi_count`).
    pub icount: u32,
    /// Free inodes (`agi_freecount`).
    pub ifree: u32,
    /// Changed since the last sync.
    pub dirty: bool,
}

/// One allocation group in memory.
#[derive(Debug, Clone)]
pub struct Ag {
    /// Its number.
    pub agno: u32,
    /// The AGF as read (counters are recomputed when written).
    pub agf: Agf,
    /// The AGI as read.
    pub agi: Agi,
    /// Free extents.
    pub free: FreeSpace,
    /// Inode chunk records by `startino`.
    pub inos: BTreeMap<u32, InobtRec>,
    /// The chunks with a free inode (the finobt's keys).
    pub with_free: BTreeSet<u32>,
    /// AGFL, tree blocks, counters.
    pub small: AgSmall,
    /// Blocks of the AGFL ring.
    pub agfl_slots: u32,
    /// Blocks of the AG usable for data (the log excluded).
    pub usable: u64,
    /// The per-AG metadata reservation the kernel asks for (refcount and
    /// finobt).
    pub resv_ask: u64,
}

fn alloc_rec(r: &[u8]) -> AllocRec {
    AllocRec {
        startblock: read_u32be(r, 0),
        blockcount: read_u32be(r, 4),
    }
}

/// Decodes an inobt record: `{startino, holemask, count, freecount,
/// free}` on a filesystem with sparse inodes, else `{startino, freecount
/// (32 bits), free}` (a whole chunk: no holes, 64 inodes).
pub fn ino_rec(r: &[u8], sparse: bool) -> InobtRec {
    if !sparse {
        return InobtRec {
            startino: read_u32be(r, 0),
            holemask: 0,
            count: 64,
            freecount: u8::try_from(read_u32be(r, 4)).unwrap_or(u8::MAX),
            free: read_u64be(r, 8),
        };
    }
    InobtRec {
        startino: read_u32be(r, 0),
        holemask: read_u16be(r, 4),
        count: r[6],
        freecount: r[7],
        free: read_u64be(r, 8),
    }
}

/// Encodes an inobt record in the format of [`ino_rec`].
pub fn ino_rec_bytes(r: &InobtRec, sparse: bool) -> [u8; 16] {
    let mut b = [0u8; 16];
    write_u32be(&mut b, 0, r.startino);
    if sparse {
        write_u16be(&mut b, 4, r.holemask);
        b[6] = r.count;
        b[7] = r.freecount;
    } else {
        write_u32be(&mut b, 4, u32::from(r.freecount));
    }
    write_u64be(&mut b, 8, r.free);
    b
}

/// Inodes of a chunk that exist (not in a sparse hole): one bit each.
pub fn alloc_mask(holemask: u16) -> u64 {
    let mut m = 0u64;
    for i in 0..16 {
        if holemask & (1 << i) == 0 {
            m |= 0xf << (4 * i);
        }
    }
    m
}

impl Ag {
    /// Reads AG `agno`: headers, every free-space and inode btree record,
    /// and checks them against each other and the header counters.
    pub(super) fn load<D: BlockDevice>(xfs: &Xfs<&D>, geo: &Geo, agno: u32) -> Result<Ag> {
        let sb = xfs.sb();
        let agf = xfs.read_agf(agno)?;
        let agi = xfs.read_agi(agno)?;
        let agfl = xfs.read_agfl(agno)?;
        let bs = geo.bs as usize;
        let corrupt = |s: Structure, d: String| Error::corrupt(s, agno, d);
        let read = |agbno: u32| -> Result<Vec<u8>> {
            if agbno >= agf.length {
                return Err(corrupt(
                    Structure::Agf,
                    format!("tree block {agbno} past the AG"),
                ));
            }
            xfs.read_blocks(agno, agbno, bs, Structure::Bnobt)
        };
        let daddr = |agbno: u32| geo.ag_to_lin(agno, agbno) << (geo.blocklog - 9);
        let (bno_recs, bno_blocks) = sbtree::read(
            &BNO,
            agno,
            agf.roots[0],
            agf.levels[0],
            bs,
            &geo.uuid,
            daddr,
            read,
        )?;
        let (cnt_recs, cnt_blocks) = sbtree::read(
            &CNT,
            agno,
            agf.roots[1],
            agf.levels[1],
            bs,
            &geo.uuid,
            daddr,
            read,
        )?;
        let mut free = FreeSpace::default();
        let mut prev_end = 0u64;
        let bno: Vec<AllocRec> = bno_recs.iter().map(|r| alloc_rec(r)).collect();
        for r in &bno {
            let end = u64::from(r.startblock) + u64::from(r.blockcount);
            if r.blockcount == 0
                || u64::from(r.startblock) < prev_end
                || end > u64::from(agf.length)
            {
                return Err(corrupt(
                    Structure::Bnobt,
                    format!(
                        "record [{}, {}] out of order or range",
                        r.startblock, r.blockcount
                    ),
                ));
            }
            prev_end = end;
            // Adjacent records (the kernel always merges them) merge here.
            free.insert(r.startblock, r.blockcount)
                .map_err(|d| corrupt(Structure::Bnobt, d))?;
        }
        let mut cnt: Vec<AllocRec> = cnt_recs.iter().map(|r| alloc_rec(r)).collect();
        let mut want = bno.clone();
        want.sort_by_key(|r| (r.blockcount, r.startblock));
        cnt.sort_by_key(|r| (r.blockcount, r.startblock));
        if cnt != want {
            return Err(corrupt(
                Structure::Cntbt,
                "the by-size tree does not hold the same extents as the by-block tree".into(),
            ));
        }
        if u64::from(agf.freeblks) != free.total() {
            return Err(corrupt(
                Structure::Agf,
                format!("agf_freeblks {}, counted {}", agf.freeblks, free.total()),
            ));
        }
        let longest = bno.iter().map(|r| r.blockcount).max().unwrap_or(0);
        if agf.longest != longest {
            return Err(corrupt(
                Structure::Agf,
                format!("agf_longest {}, counted {longest}", agf.longest),
            ));
        }
        let btreeblks = bno_blocks.len() + cnt_blocks.len() - 2;
        let rmap = sb.has_ro_compat(ro_compat::RMAPBT);
        if !rmap && agf.btreeblks as usize != btreeblks {
            return Err(corrupt(
                Structure::Agf,
                format!("agf_btreeblks {}, counted {btreeblks}", agf.btreeblks),
            ));
        }
        // The AGFL ring.
        let slots = agfl_size(usize::from(sb.sectsize)) as u32;
        if agf.flcount > slots || (agf.flcount > 0 && (agf.flfirst >= slots || agf.fllast >= slots))
        {
            return Err(corrupt(
                Structure::Agfl,
                format!(
                    "flfirst {} fllast {} flcount {}",
                    agf.flfirst, agf.fllast, agf.flcount
                ),
            ));
        }
        let mut ring = VecDeque::new();
        for i in 0..agf.flcount {
            let slot = (agf.flfirst + i) % slots;
            let b = agfl.bno[slot as usize];
            if b >= agf.length || free.containing(b).is_some() {
                return Err(corrupt(
                    Structure::Agfl,
                    format!("slot {slot} holds block {b}"),
                ));
            }
            ring.push_back(b);
        }
        if agf.flcount > 0 && (agf.flfirst + agf.flcount - 1) % slots != agf.fllast {
            return Err(corrupt(
                Structure::Agfl,
                format!(
                    "flfirst {} and flcount {} do not end at fllast {}",
                    agf.flfirst, agf.flcount, agf.fllast
                ),
            ));
        }
        // Inode btrees.
        let (ino_recs, ino_blocks) =
            sbtree::read(&INO, agno, agi.root, agi.level, bs, &geo.uuid, daddr, read)?;
        let mut inos = BTreeMap::new();
        let (mut icount, mut ifree) = (0u32, 0u32);
        let max_agino = u64::from(agf.length) << geo.inopblog;
        // Chunks start at `sb_inoalignmt` (8 blocks with sparse inodes,
        // a 4-block cluster without).
        let chunk_align = (u64::from(geo.inoalign) << geo.inopblog).max(1);
        for r in ino_recs.iter().map(|r| ino_rec(r, geo.sparse)) {
            let mask = alloc_mask(r.holemask);
            let real_free = (r.free & mask).count_ones();
            if u64::from(r.startino) % chunk_align != 0
                || u64::from(r.startino) + 64 > max_agino
                || u32::from(r.count) != mask.count_ones()
                || u32::from(r.freecount) != real_free
                || inos.contains_key(&r.startino)
            {
                return Err(corrupt(
                    Structure::Inobt,
                    format!("record for inode {} is inconsistent", r.startino),
                ));
            }
            icount += u32::from(r.count);
            ifree += u32::from(r.freecount);
            inos.insert(r.startino, r);
        }
        if icount != agi.count || ifree != agi.freecount {
            return Err(corrupt(
                Structure::Agi,
                format!(
                    "agi_count {} / agi_freecount {}, counted {icount} / {ifree}",
                    agi.count, agi.freecount
                ),
            ));
        }
        let fino_blocks = if geo.finobt {
            let (frecs, fblocks) = sbtree::read(
                &FINO,
                agno,
                agi.free_root,
                agi.free_level,
                bs,
                &geo.uuid,
                daddr,
                read,
            )?;
            let got: Vec<InobtRec> = frecs.iter().map(|r| ino_rec(r, geo.sparse)).collect();
            let want: Vec<InobtRec> = inos.values().filter(|r| r.freecount > 0).copied().collect();
            if got != want {
                return Err(corrupt(
                    Structure::Finobt,
                    "the free inode tree does not match the inode tree".into(),
                ));
            }
            fblocks
        } else {
            Vec::new()
        };
        if geo.inobtcnt
            && (agi.iblocks as usize != ino_blocks.len()
                || agi.fblocks as usize != fino_blocks.len())
        {
            return Err(corrupt(
                Structure::Agi,
                format!(
                    "agi_iblocks {} / agi_fblocks {}, counted {} / {}",
                    agi.iblocks,
                    agi.fblocks,
                    ino_blocks.len(),
                    fino_blocks.len()
                ),
            ));
        }
        let holds_log = sb.log_ag() == agno;
        let mut usable = u64::from(agf.length);
        if holds_log {
            usable = usable.saturating_sub(u64::from(sb.logblocks));
        }
        let resv_ask = resv_ask(
            geo,
            sb.inopblock,
            usable,
            sb.has_ro_compat(ro_compat::REFLINK),
        );
        let small = AgSmall {
            agfl: ring,
            agfl_first: agf.flfirst,
            bno: bno_blocks,
            cnt: cnt_blocks,
            ino: ino_blocks,
            fino: fino_blocks,
            bno_levels: agf.levels[0],
            cnt_levels: agf.levels[1],
            newino: agi.newino,
            icount,
            ifree,
            dirty: false,
        };
        Ok(Ag {
            agno,
            agf,
            agi,
            free,
            with_free: inos
                .values()
                .filter(|r| r.freecount > 0)
                .map(|r| r.startino)
                .collect(),
            inos,
            small,
            agfl_slots: slots,
            usable,
            resv_ask,
        })
    }

    /// Brings [`Ag::with_free`] up to date for the record at `startino`.
    pub fn note_rec(&mut self, startino: u32) {
        match self.inos.get(&startino) {
            Some(r) if r.freecount > 0 => {
                self.with_free.insert(startino);
            }
            _ => {
                self.with_free.remove(&startino);
            }
        }
    }

    /// `agf_btreeblks`: free-space tree blocks but the roots.
    pub fn btreeblks(&self) -> u64 {
        (self.small.bno.len() + self.small.cnt.len()).saturating_sub(2) as u64
    }

    /// This AG's share of `sb_fdblocks`.
    pub fn fdblocks(&self) -> u64 {
        self.free.total() + self.small.agfl.len() as u64 + self.btreeblks()
    }

    /// The per-AG reservation still held (`ar_reserved`): what the kernel
    /// hides from statfs and keeps from ordinary allocations.
    pub fn resv_held(&self) -> u64 {
        let used = u64::from(self.agf.refcount_blocks) + self.small.fino.len() as u64;
        self.resv_ask.max(used) - used
    }

    /// `xfs_alloc_min_freelist`: blocks the AGFL must hold for a split
    /// of each free-space tree.
    pub fn min_freelist(&self, maxlevels: u32) -> u64 {
        u64::from((self.small.bno_levels + 1).min(maxlevels))
            + u64::from((self.small.cnt_levels + 1).min(maxlevels))
    }
}

/// The kernel's per-AG metadata reservation request (`xfs_refcountbt_calc_reserves`
/// + `xfs_finobt_calc_reserves`), as statfs hides it.
fn resv_ask(geo: &Geo, inopblock: u16, usable: u64, reflink: bool) -> u64 {
    let bs = geo.bs;
    let calc = |recsize: u64, keyptr: u64, recs: u64| -> u64 {
        let space = bs.saturating_sub(56);
        let mnr = [space / recsize / 2, space / keyptr / 2];
        let mut level = recs.div_ceil(mnr[0].max(1));
        let mut blocks = level;
        while level > 1 {
            level = level.div_ceil(mnr[1].max(1));
            blocks += level;
        }
        blocks
    };
    let mut ask = 0;
    if reflink {
        ask += calc(12, 8, usable);
    }
    if geo.finobt {
        ask += calc(16, 8, usable * u64::from(inopblock) / 64);
    }
    ask
}

/// Which reservation an allocation may draw on (`enum xfs_ag_resv_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resv {
    /// Ordinary allocations: file data, directories, bmap btrees, inode
    /// chunks and the inobt. They must leave the per-AG reservation.
    None,
    /// The finobt, which the per-AG metadata reservation is for.
    Metadata,
}

/// An allocation request.
#[derive(Debug, Clone, Copy)]
pub struct AllocReq {
    /// The AG to try first (then the following ones, wrapping).
    pub agno: u32,
    /// A block in that AG to allocate at or near.
    pub goal: Option<u32>,
    /// Fewest blocks acceptable.
    pub minlen: u32,
    /// Most blocks wanted.
    pub maxlen: u64,
    /// Start alignment (1: none); an aligned request is all or nothing.
    pub align: u32,
    /// The reservation it may use.
    pub resv: Resv,
    /// Blocks to leave in the AG for the caller's later needs.
    pub minleft: u64,
    /// Only the first AG.
    pub this_ag: bool,
}

impl AllocReq {
    /// `len` blocks wanted for ordinary use near (`agno`, `goal`).
    pub fn near(agno: u32, goal: Option<u32>, maxlen: u64) -> Self {
        AllocReq {
            agno,
            goal,
            minlen: 1,
            maxlen,
            align: 1,
            resv: Resv::None,
            minleft: 0,
            this_ag: false,
        }
    }
}

/// Kernel limit: a free-space record's length (and a file extent's).
const MAX_ALLOC: u64 = super::super::bmap::MAX_EXTLEN;

impl<D: BlockDevice> XfsFiles<D> {
    /// Saves an AG's small state once per operation and marks it dirty.
    pub(super) fn touch_ag(&mut self, agno: u32) {
        let first = match self.undo.as_mut() {
            Some(t) => t.ags.insert(agno),
            None => false,
        };
        if first {
            let saved = Box::new(self.ags[agno as usize].small.clone());
            self.log(Undo::AgSmall(agno, saved));
        }
        self.ags[agno as usize].small.dirty = true;
    }

    /// Takes `[start, start+len)` of AG `agno` out of free space.
    pub(super) fn free_remove(&mut self, agno: u32, start: u32, len: u32) -> NodeResult<()> {
        self.touch_ag(agno);
        self.ags[agno as usize]
            .free
            .remove(start, len)
            .map_err(|d| corrupt_space(agno, d))?;
        self.log(Undo::Free {
            agno,
            start,
            len,
            inserted: false,
        });
        Ok(())
    }

    /// Returns `[start, start+len)` of AG `agno` to free space.
    pub(super) fn free_insert(&mut self, agno: u32, start: u32, len: u32) -> NodeResult<()> {
        self.touch_ag(agno);
        self.ags[agno as usize]
            .free
            .insert(start, len)
            .map_err(|d| corrupt_space(agno, d))?;
        self.log(Undo::Free {
            agno,
            start,
            len,
            inserted: true,
        });
        Ok(())
    }

    /// `xfs_alloc_space_available` for `req` in AG `agno`: the most blocks
    /// an allocation there may take, or `None` if it must go elsewhere.
    fn ag_space(&self, agno: u32, req: &AllocReq) -> Option<u64> {
        let ag = &self.ags[agno as usize];
        let reservation = match req.resv {
            Resv::None => ag.resv_held(),
            Resv::Metadata => 0,
        };
        let need = ag.min_freelist(self.geo.alloc_maxlevels);
        let flcount = ag.small.agfl.len() as u64;
        let freeblks = ag.free.total();
        let longest = u64::from(ag.free.longest());
        // xfs_alloc_longest_free_extent.
        let mut delta = need.saturating_sub(flcount);
        let others = freeblks - longest;
        if others < reservation {
            delta += reservation - others;
        }
        let usable_longest = if longest > delta {
            longest - delta
        } else {
            u64::from(flcount > 0 || longest > 0)
        };
        let alloc_len = u64::from(req.minlen) + u64::from(req.align) - 1;
        if usable_longest < alloc_len {
            return None;
        }
        let available = (freeblks + flcount.min(need)) as i128
            - reservation as i128
            - need as i128
            - req.minleft as i128;
        if available < alloc_len as i128 {
            return None;
        }
        Some(req.maxlen.min(available as u64).min(usable_longest))
    }

    /// Allocates one extent for `req`: (AG, AG block, length). Tries the
    /// request's AG first, then the others in order.
    pub(super) fn alloc(&mut self, req: AllocReq) -> NodeResult<(u32, u32, u32)> {
        if self.undo.as_ref().is_some_and(|t| t.no_alloc) {
            return Err(nospc());
        }
        self.alloc_any(req)
    }

    /// [`Self::alloc`] for the AG's own trees, which the kernel never
    /// denies for want of a transaction reservation.
    fn alloc_any(&mut self, req: AllocReq) -> NodeResult<(u32, u32, u32)> {
        let agcount = self.geo.agcount;
        let start = req.agno.min(agcount - 1);
        let tries = if req.this_ag { 1 } else { agcount };
        for i in 0..tries {
            let agno = (start + i) % agcount;
            let goal = if i == 0 { req.goal } else { None };
            let Some(max) = self.ag_space(agno, &req) else {
                continue;
            };
            let max = max.min(MAX_ALLOC) as u32;
            if max < req.minlen {
                continue;
            }
            if let Some((bno, len)) = self.pick(agno, goal, req.minlen, max, req.align) {
                self.free_remove(agno, bno, len)?;
                return Ok((agno, bno, len));
            }
        }
        Err(nospc())
    }

    /// Chooses where in AG `agno` to take between `minlen` and `max`
    /// blocks: at the goal if it is free, else the first extent from the
    /// goal holding `max`, else the best fit, else the longest.
    fn pick(
        &self,
        agno: u32,
        goal: Option<u32>,
        minlen: u32,
        max: u32,
        align: u32,
    ) -> Option<(u32, u32)> {
        let fs = &self.ags[agno as usize].free;
        if align > 1 {
            // All or nothing, at an aligned start (inode chunks).
            let from = goal.unwrap_or(0);
            let fits = |&(s, l): &(u32, u32)| {
                let a = s.div_ceil(align) * align;
                (u64::from(a) + u64::from(max) <= u64::from(s) + u64::from(l)).then_some((a, max))
            };
            return fs
                .iter()
                .filter(|&(s, l)| s + l > from)
                .find_map(|e| fits(&e))
                .or_else(|| fs.iter().find_map(|e| fits(&e)));
        }
        if let Some(g) = goal {
            if let Some((s, l)) = fs.containing(g) {
                let len = (s + l - g).min(max);
                if len >= minlen {
                    return Some((g, len));
                }
            }
            if let Some((s, _)) = fs.first_fit_from(g, max) {
                return Some((s, max));
            }
        }
        if let Some((s, _)) = fs.best_fit(max) {
            return Some((s, max));
        }
        let (s, l) = fs.iter_cnt().next_back()?;
        let len = l.min(max);
        (len >= minlen).then_some((s, len))
    }

    /// Frees `len` blocks at segmented block `fsb` (dropping any data
    /// staged for them).
    pub(super) fn free_fsb(&mut self, fsb: u64, len: u64) -> NodeResult<()> {
        let (agno, agbno) = self.geo.fsb_to_ag(fsb);
        if agno >= self.geo.agcount {
            return Err(corrupt_space(
                agno,
                format!("freeing block {fsb} past the last AG"),
            ));
        }
        let lin = self.geo.fsb_to_lin(fsb);
        for (k, old) in self.staged.remove(lin, len) {
            self.log(Undo::Unstaged(k, old));
        }
        self.free_insert(agno, agbno, len as u32)
    }

    /// Fails with ENOSPC unless `blocks` are free for ordinary use (the
    /// transaction reservation the kernel takes before an operation).
    pub(super) fn reserve(&self, blocks: u64) -> NodeResult<()> {
        if blocks > self.free_for_users() {
            return Err(nospc());
        }
        Ok(())
    }

    /// The kernel's in-core free block counter: free blocks less the
    /// reserve pool and the per-AG reservations (statfs's `f_bfree` before
    /// the set-aside and the free-space btree blocks are taken off).
    pub(super) fn free_incore(&self) -> u64 {
        let s = self.statfs_now();
        let set_aside = u64::from(self.geo.agcount) * 8;
        let allocbt: u64 = self.ags.iter().map(Ag::btreeblks).sum();
        s.f_bfree + set_aside + allocbt
    }

    /// The reservation of link and rename: when it cannot be had, the
    /// kernel goes on without one, as long as nothing needs a new block
    /// (`xfs_dir_canenter`); from then on in this operation every
    /// allocation fails with ENOSPC.
    pub(super) fn reserve_or_no_alloc(&mut self, blocks: u64) {
        if self.reserve(blocks).is_err() {
            if let Some(t) = self.undo.as_mut() {
                t.no_alloc = true;
            }
        }
    }

    /// Free blocks for ordinary use: statfs's `f_bfree`.
    pub(super) fn free_for_users(&self) -> u64 {
        self.statfs_now().f_bfree
    }

    /// What statfs reports now (a read-write mount of the staged state).
    pub(super) fn statfs_now(&self) -> StatFs {
        let mut sb = self.sb.clone();
        let (icount, ifree, fd) = self.counters();
        sb.icount = icount;
        sb.ifree = ifree;
        sb.fdblocks = fd;
        let log_ag = sb.log_ag();
        let ags: Vec<AgUsage> = self
            .ags
            .iter()
            .map(|ag| AgUsage {
                length: ag.agf.length,
                btreeblks: ag.btreeblks() as u32,
                rmap_blocks: ag.agf.rmap_blocks,
                refcount_blocks: ag.agf.refcount_blocks,
                finobt_blocks: ag.small.fino.len() as u32,
                holds_log: ag.agno == log_ag,
            })
            .collect();
        let mode = if self.read_only {
            MountMode::ReadOnly
        } else {
            MountMode::ReadWrite
        };
        statfs::compute(&sb, &ags, mode)
    }

    /// After an operation: gives every touched AG's trees exactly the
    /// blocks they need and refills (or trims) its AGFL.
    pub(super) fn fix_touched(&mut self) -> NodeResult<()> {
        let touched: Vec<u32> = match self.undo.as_ref() {
            Some(t) => {
                let mut v: Vec<u32> = t.ags.iter().copied().collect();
                v.sort_unstable();
                v
            }
            None => Vec::new(),
        };
        for agno in touched {
            self.fix_ag(agno)?;
        }
        Ok(())
    }

    fn fix_ag(&mut self, agno: u32) -> NodeResult<()> {
        let bs = self.geo.bs as usize;
        // Inode trees: blocks from and back to free space.
        let (nino, nfino) = {
            let ag = &self.ags[agno as usize];
            let nfree = ag.with_free.len();
            (INO.blocks(ag.inos.len(), bs), FINO.blocks(nfree, bs))
        };
        self.resize_ino_tree(agno, false, nino)?;
        if self.geo.finobt {
            self.resize_ino_tree(agno, true, nfino)?;
        }
        // Free-space trees and the AGFL settle after a few rounds (each
        // round can only change the record count by the blocks moved).
        for _ in 0..16 {
            let (nbno, ncnt, levels) = {
                let ag = &self.ags[agno as usize];
                let n = ag.free.count();
                (
                    BNO.blocks(n, bs),
                    CNT.blocks(n, bs),
                    (BNO.shape(n, bs).len() as u32, CNT.shape(n, bs).len() as u32),
                )
            };
            let mut changed = self.resize_free_tree(agno, false, nbno)?;
            changed |= self.resize_free_tree(agno, true, ncnt)?;
            {
                let small = &mut self.ags[agno as usize].small;
                if (small.bno_levels, small.cnt_levels) != levels {
                    small.bno_levels = levels.0;
                    small.cnt_levels = levels.1;
                    changed = true;
                }
            }
            changed |= self.fix_freelist(agno)?;
            if !changed {
                return Ok(());
            }
        }
        Err(corrupt_space(agno, "free space did not settle".into()))
    }

    fn resize_ino_tree(&mut self, agno: u32, fino: bool, want: usize) -> NodeResult<()> {
        loop {
            let have = {
                let s = &self.ags[agno as usize].small;
                if fino { s.fino.len() } else { s.ino.len() }
            };
            if have == want {
                return Ok(());
            }
            self.touch_ag(agno);
            if have < want {
                let goal = self.ags[agno as usize].small.ino.first().copied();
                let mut req = AllocReq::near(agno, goal, 1);
                req.this_ag = true;
                req.resv = if fino { Resv::Metadata } else { Resv::None };
                let (_, bno, _) = self.alloc_any(req)?;
                let s = &mut self.ags[agno as usize].small;
                if fino {
                    s.fino.push(bno)
                } else {
                    s.ino.push(bno)
                }
            } else {
                let s = &mut self.ags[agno as usize].small;
                let b = if fino { s.fino.pop() } else { s.ino.pop() };
                if let Some(b) = b {
                    self.free_insert(agno, b, 1)?;
                }
            }
        }
    }

    /// Grows or shrinks a free-space tree to `want` blocks, through the
    /// AGFL as the kernel does. Returns whether anything moved.
    fn resize_free_tree(&mut self, agno: u32, cnt: bool, want: usize) -> NodeResult<bool> {
        let mut changed = false;
        loop {
            let have = {
                let s = &self.ags[agno as usize].small;
                if cnt { s.cnt.len() } else { s.bno.len() }
            };
            if have == want {
                return Ok(changed);
            }
            self.touch_ag(agno);
            changed = true;
            if have < want {
                let b = match self.ags[agno as usize].small.agfl.pop_front() {
                    Some(b) => {
                        let ag = &mut self.ags[agno as usize];
                        ag.small.agfl_first = (ag.small.agfl_first + 1) % ag.agfl_slots;
                        b
                    }
                    None => {
                        let mut req = AllocReq::near(agno, None, 1);
                        req.this_ag = true;
                        req.resv = Resv::Metadata;
                        self.alloc_any(req)?.1
                    }
                };
                let s = &mut self.ags[agno as usize].small;
                if cnt { s.cnt.push(b) } else { s.bno.push(b) }
            } else {
                let ag = &mut self.ags[agno as usize];
                let b = if cnt {
                    ag.small.cnt.pop()
                } else {
                    ag.small.bno.pop()
                };
                if let Some(b) = b {
                    if (ag.small.agfl.len() as u32) < ag.agfl_slots {
                        ag.small.agfl.push_back(b);
                    } else {
                        self.free_insert(agno, b, 1)?;
                    }
                }
            }
        }
    }

    /// `xfs_alloc_fix_freelist`: trims the AGFL to its minimum (the extra
    /// blocks back to free space) or refills it from free space. Returns
    /// whether anything moved.
    fn fix_freelist(&mut self, agno: u32) -> NodeResult<bool> {
        let need = self.ags[agno as usize].min_freelist(self.geo.alloc_maxlevels) as usize;
        let mut changed = false;
        while self.ags[agno as usize].small.agfl.len() > need {
            self.touch_ag(agno);
            let ag = &mut self.ags[agno as usize];
            let Some(b) = ag.small.agfl.pop_front() else {
                break;
            };
            ag.small.agfl_first = (ag.small.agfl_first + 1) % ag.agfl_slots;
            self.free_insert(agno, b, 1)?;
            changed = true;
        }
        while self.ags[agno as usize].small.agfl.len() < need {
            let short = need - self.ags[agno as usize].small.agfl.len();
            // Prefer an extent that survives the cut, so that the record
            // count (and so the trees' shape) stays as it is.
            let pick = {
                let fs = &self.ags[agno as usize].free;
                fs.best_fit(short as u32 + 1)
                    .or_else(|| fs.best_fit(short as u32))
                    .map(|(s, _)| (s, short as u32))
                    .or_else(|| {
                        fs.iter_cnt()
                            .next_back()
                            .map(|(s, l)| (s, l.min(short as u32)))
                    })
            };
            // An AG with no free block left keeps a short AGFL (the kernel
            // would refuse the allocation that got it there).
            let Some((s, n)) = pick else { break };
            self.free_remove(agno, s, n)?;
            let ag = &mut self.ags[agno as usize];
            for b in s..s + n {
                ag.small.agfl.push_back(b);
            }
            changed = true;
        }
        Ok(changed)
    }
}

/// A corruption found while changing free space (a double free, an
/// allocation of blocks that are not free): the in-memory state no longer
/// matches what the metadata said.
fn corrupt_space(agno: u32, detail: String) -> NodeError {
    NodeError::with(
        ErrorKind::Corrupt,
        Error::corrupt(Structure::Bnobt, agno, detail),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test may panic
mod tests {
    use super::*;

    #[test]
    fn free_space_merges_and_splits() {
        let mut f = FreeSpace::default();
        f.insert(10, 5).unwrap();
        f.insert(20, 5).unwrap();
        f.insert(15, 5).unwrap();
        assert_eq!(f.iter().collect::<Vec<_>>(), vec![(10, 15)]);
        assert!(f.insert(12, 1).is_err());
        f.remove(12, 3).unwrap();
        assert_eq!(f.iter().collect::<Vec<_>>(), vec![(10, 2), (15, 10)]);
        assert_eq!(f.longest(), 10);
        assert_eq!(f.total(), 12);
        assert!(f.remove(11, 2).is_err());
        assert_eq!(f.best_fit(3), Some((15, 10)));
        assert_eq!(f.first_fit_from(0, 2), Some((10, 2)));
        assert_eq!(f.containing(16), Some((15, 10)));
        assert_eq!(f.containing(12), None);
    }

    #[test]
    fn holemask_to_allocated_inodes() {
        assert_eq!(alloc_mask(0), u64::MAX);
        assert_eq!(alloc_mask(0xff00), 0xffff_ffff);
        assert_eq!(alloc_mask(0xffff), 0);
    }
}
