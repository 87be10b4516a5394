//! Offline growth of the data section, as the kernel's
//! `xfs_growfs_data_private` does it on a mounted filesystem: new AGs get fresh headers and one free extent, a short last AG is
//! extended (its new blocks merged into the free-space btrees), and every
//! superblock is rewritten, the primary last.
//!
//! Planning reads and checks everything it depends on (superblock, the
//! clean log, every AG header as the kernel's verifiers check it) and
//! decides every write; applying commits them in one commit, so an
//! interrupted grow is rolled back whole by the device's undo log. The new
//! AGs' headers (a grow to many TiB adds thousands of AGs) are built again
//! when the device walks the writes, not held; they go first, then the
//! extension of the old last AG, every old secondary superblock and the
//! primary last.
//!
//! Shrinking is refused, as are free-space btrees deeper than one level in
//! the AG that must be extended (that needs btree insertion).

use super::Xfs;
use super::ag::{self, AgContent, AgLayout};
use super::agf::Agf;
use super::agfl::{Agfl, NULLAGBLOCK};
use super::agi::Agi;
use super::btree::{self, AllocRec};
use super::error::{Error, Result, Structure};
use super::superblock::{Superblock, ro_compat};
use crate::blockdev::{BlockDevice, Sink, WritePlan};
use std::ops::Range;

/// `XFS_MIN_AG_BLOCKS`: the smallest last AG the kernel will add.
pub const XFS_MIN_AG_BLOCKS: u64 = 64;

/// What to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrowRequest {
    /// The new size in blocks (before the 64-block rule).
    pub newblocks: u64,
    /// A new `imaxpct`, if any (`xfs_growfs -m`).
    pub imaxpct: Option<u8>,
}

/// The extension of the old last AG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgExtension {
    pub agno: u32,
    pub old_length: u32,
    pub new_length: u32,
}

/// A planned grow.
#[derive(Debug, Clone)]
pub struct GrowPlan {
    /// The primary superblock before.
    pub old: Superblock,
    /// The primary superblock after.
    pub new: Superblock,
    /// The old last AG's extension, if any.
    pub extension: Option<AgExtension>,
    /// Every write, as one plan.
    pub writes: GrowWrites,
}

impl GrowPlan {
    /// True when the size stays the same (a tail under 64 blocks is
    /// dropped silently, as the kernel does).
    pub fn keeps_size(&self) -> bool {
        self.new.dblocks == self.old.dblocks
    }

    /// The new AGs as (agno, length).
    pub fn new_ags(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.writes
            .new_ags
            .clone()
            .map(|agno| (agno, self.new.ag_length(agno)))
    }
}

/// The writes of a grow, as a [`WritePlan`]: the new AGs' headers, highest
/// first (built when walked), the old last AG's extension, the superblock
/// sector written to every old secondary, and the primary last.
#[derive(Debug, Clone)]
pub struct GrowWrites {
    /// The superblock the new AGs are built for.
    new: Superblock,
    new_ags: Range<u32>,
    /// The extension's headers and btree leaves (offset, bytes).
    extension: Vec<(u64, Vec<u8>)>,
    /// The sector written over the secondaries of AGs `1..old_agcount`.
    sector: Vec<u8>,
    old_agcount: u32,
    /// Whether the primary is written too.
    primary: bool,
}

impl WritePlan for GrowWrites {
    fn for_each_write(
        &self,
        sink: &mut Sink<'_>,
    ) -> std::result::Result<(), crate::blockdev::Error> {
        let layout = AgLayout::new(&self.new);
        let sb_sector = self.new.to_bytes();
        for agno in self.new_ags.clone().rev() {
            let len = self.new.ag_length(agno);
            let mut content = AgContent::default();
            if len > layout.prealloc {
                content.free.push(AllocRec {
                    startblock: layout.prealloc,
                    blockcount: len - layout.prealloc,
                });
            }
            let built = ag::build(&self.new, agno, len, &sb_sector, &content);
            sink(self.new.ag_byte(agno, 0), &built.bytes)?;
        }
        for (off, bytes) in &self.extension {
            sink(*off, bytes)?;
        }
        for agno in 1..self.old_agcount {
            sink(self.new.ag_byte(agno, 0), &self.sector)?;
        }
        if self.primary {
            sink(0, &self.sector)?;
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.new_ags.is_empty()
            && self.extension.is_empty()
            && self.old_agcount <= 1
            && !self.primary
    }
}

/// The size the kernel actually grows to for a request of `nb` blocks:
/// a last AG shorter than 64 blocks is dropped. Returns (blocks, agcount).
pub fn effective_size(agblocks: u32, nb: u64) -> (u64, u64) {
    let ag = u64::from(agblocks.max(1));
    let (q, r) = (nb / ag, nb % ag);
    if r >= XFS_MIN_AG_BLOCKS {
        (nb, q + 1)
    } else {
        (q * ag, q)
    }
}

/// Plans growing `xfs` to `req.newblocks` blocks. Before anything else the
/// log must be clean (the kernel would replay it at mount, on top of what
/// we write) and every AG's headers must pass the kernel's read verifiers
/// ([`Xfs::verify_ags`]): ebsim grows nothing the kernel would refuse to
/// mount or use.
pub fn plan<D: BlockDevice>(xfs: &Xfs<D>, req: &GrowRequest) -> Result<GrowPlan> {
    let old = xfs.sb().clone();
    xfs.check_size()?;
    let head = xfs.log_head()?;
    xfs.verify_ags(&head)?;
    let bs = u64::from(old.blocksize);
    let dev_blocks = xfs.dev().size() / bs;
    if req.newblocks > dev_blocks {
        return Err(Error::Invalid(format!(
            "data size {} too large, maximum is {dev_blocks}",
            req.newblocks
        )));
    }
    if let Some(p) = req.imaxpct {
        if p > 100 {
            return Err(Error::Invalid(format!("inode max percent {p} is over 100")));
        }
    }
    if req.newblocks < old.dblocks {
        return plan_shrink(xfs, req);
    }
    let (nb, nagcount) = effective_size(old.agblocks, req.newblocks);
    let nagcount = u32::try_from(nagcount)
        .map_err(|_| Error::Invalid(format!("{nagcount} AGs are more than XFS allows")))?;
    let mut new = kernel_sb(&old);
    if let Some(p) = req.imaxpct {
        new.imax_pct = p;
    }
    let mut plan = GrowPlan {
        old: old.clone(),
        new: new.clone(),
        extension: None,
        writes: GrowWrites {
            new: old.clone(),
            new_ags: 0..0,
            extension: Vec::new(),
            sector: kernel_sb(&old).to_bytes(),
            old_agcount: 0,
            primary: false,
        },
    };
    if req.newblocks == old.dblocks && new.imax_pct == old.imax_pct {
        return Ok(plan);
    }
    if nb <= old.dblocks && new.imax_pct == old.imax_pct {
        // A tail under 64 blocks: the kernel changes nothing but still
        // refreshes every secondary superblock from the primary.
        plan.writes.old_agcount = old.agcount;
        return Ok(plan);
    }
    let nb = nb.max(old.dblocks);
    new.dblocks = nb;
    new.agcount = nagcount.max(old.agcount);

    // Every existing AG's headers, checked, for the new counters.
    let layout = AgLayout::new(&old);
    let (mut fdblocks, icount, ifree) = ag_counters(xfs)?;

    // The old last AG grows first in the kernel's accounting, but its
    // writes go after the new AGs: nothing points at those yet.
    let last = old.agcount - 1;
    let last_len = old.ag_length(last);
    let full_last = u64::from(last) * u64::from(old.agblocks) + u64::from(old.agblocks);
    let mut ext_writes = Vec::new();
    if u64::from(last_len) < u64::from(old.agblocks) && nb > old.dblocks {
        let new_len = u32::try_from(nb.min(full_last) - u64::from(last) * u64::from(old.agblocks))
            .unwrap_or(old.agblocks);
        let (writes, delta_free) = extend_last_ag(xfs, &layout, last, last_len, new_len)?;
        fdblocks = (fdblocks + delta_free.0).saturating_sub(delta_free.1);
        ext_writes = writes;
        plan.extension = Some(AgExtension {
            agno: last,
            old_length: last_len,
            new_length: new_len,
        });
    }

    // New AGs: one free extent after the fixed metadata, no free list.
    for agno in old.agcount..new.agcount {
        let len = new.ag_length(agno);
        fdblocks += u64::from(len.saturating_sub(layout.prealloc));
    }
    new.fdblocks = fdblocks;
    new.icount = icount;
    new.ifree = ifree;
    new.inprogress = 0;
    // Every old secondary becomes a copy of the new primary, then the
    // primary itself.
    plan.writes = GrowWrites {
        new: new.clone(),
        new_ags: old.agcount..new.agcount,
        extension: ext_writes,
        sector: new.to_bytes(),
        old_agcount: old.agcount,
        primary: true,
    };
    plan.new = new;
    Ok(plan)
}

/// The superblock as the mounted kernel writes it back: a quota inode of
/// 0 (none) is NULLFSINO in memory (`xfs_sb_quota_from_disk`) and a v5
/// superblock stores the in-memory values, so every superblock a growfs
/// writes says "null" there (measured: even a mount and unmount turns
/// mkfs.xfs's 0 into null in the primary).
fn kernel_sb(old: &Superblock) -> Superblock {
    let mut sb = old.clone();
    for q in [&mut sb.uquotino, &mut sb.gquotino, &mut sb.pquotino] {
        if *q == 0 {
            *q = super::superblock::NULLFSINO;
        }
    }
    sb
}

/// An AG's blocks the superblock counts free: free space, the free list
/// and the free-space btrees' blocks beyond their roots.
fn agf_free(agf: &Agf) -> u64 {
    u64::from(agf.freeblks) + u64::from(agf.flcount) + u64::from(agf.btreeblks)
}

/// (free blocks, inodes, free inodes) over every AG, each AG's headers
/// read (and checked).
fn ag_counters<D: BlockDevice>(xfs: &Xfs<D>) -> Result<(u64, u64, u64)> {
    let (mut fdblocks, mut icount, mut ifree) = (0u64, 0u64, 0u64);
    for agno in 0..xfs.sb().agcount {
        let agf = xfs.read_agf(agno)?;
        let agi = xfs.read_agi(agno)?;
        fdblocks += agf_free(&agf);
        icount += u64::from(agi.count);
        ifree += u64::from(agi.freecount);
    }
    Ok((fdblocks, icount, ifree))
}

/// Commits a planned grow (one commit).
pub fn apply<D: BlockDevice>(dev: &mut D, plan: &GrowPlan) -> Result<()> {
    dev.commit(&plan.writes)?;
    Ok(())
}

/// Writes (offset, bytes) and the free-block change (added, removed).
type Extension = (Vec<(u64, Vec<u8>)>, (u64, u64));

/// The last AG's headers and free space, its free list brought to the
/// minimum the kernel wants first (`xfs_alloc_fix_freelist`, which both
/// freeing and allocating run): blocks taken off the list are free space
/// again, blocks put on it come from the free space.
struct LastAg {
    agf: Agf,
    agi: Agi,
    agfl: Agfl,
    agfl_changes: bool,
    /// Free extents after the fix, in block order.
    free: Vec<AllocRec>,
    /// Free blocks and free-list blocks before the fix.
    before: u64,
    bno_raw: Vec<u8>,
    cnt_raw: Vec<u8>,
}

fn last_ag_fixed<D: BlockDevice>(
    xfs: &Xfs<D>,
    layout: &AgLayout,
    agno: u32,
    old_len: u32,
    what: &str,
) -> Result<LastAg> {
    let sb = xfs.sb();
    let mut agf = xfs.read_agf(agno)?;
    let agi = xfs.read_agi(agno)?;
    let mut agfl = xfs.read_agfl(agno)?;
    if agf.levels[0] != 1 || agf.levels[1] != 1 {
        return Err(Error::Unsupported(format!(
            "the free-space btrees of AG {agno} have {} and {} levels; {what} this AG \
             needs btree insertion, which ebsim does not do yet",
            agf.levels[0], agf.levels[1]
        )));
    }
    let bs = sb.blocksize as usize;
    let bno_daddr = sb.ag_byte(agno, agf.roots[0]) / 512;
    let cnt_daddr = sb.ag_byte(agno, agf.roots[1]) / 512;
    check_root(agno, agf.roots[0], old_len, Structure::Bnobt)?;
    check_root(agno, agf.roots[1], old_len, Structure::Cntbt)?;
    let bno_raw = xfs.read_blocks(agno, agf.roots[0], bs, Structure::Bnobt)?;
    let cnt_raw = xfs.read_blocks(agno, agf.roots[1], bs, Structure::Cntbt)?;
    let uuid = sb.metadata_uuid();
    let (_, mut free) = btree::parse_alloc_leaf(
        &bno_raw,
        Structure::Bnobt,
        agno,
        btree::XFS_ABTB_CRC_MAGIC,
        &uuid,
        bno_daddr,
    )?;
    let (_, cnt) = btree::parse_alloc_leaf(
        &cnt_raw,
        Structure::Cntbt,
        agno,
        btree::XFS_ABTC_CRC_MAGIC,
        &uuid,
        cnt_daddr,
    )?;
    check_free_space(agno, &agf, &free, &cnt, old_len)?;

    let old_free: u64 = free.iter().map(|r| u64::from(r.blockcount)).sum();
    let old_fl = u64::from(agf.flcount);

    // Fix the free list to exactly what the kernel wants for these trees.
    let need = layout.min_freelist(&agf.levels);
    let ring = agfl.bno.len();
    if agf.flfirst as usize >= ring || agf.fllast as usize >= ring || agf.flcount as usize > ring {
        return Err(Error::corrupt(
            Structure::Agf,
            agno,
            "free list pointers out of range",
        ));
    }
    let agfl_changes = agf.flcount != need;
    if agfl_changes && sb.has_ro_compat(ro_compat::RMAPBT) {
        return Err(Error::Unsupported(format!(
            "AG {agno}'s free list would change, which needs rmapbt updates"
        )));
    }
    // Every block on the free list must be inside the AG and not also
    // free space: merging would otherwise write overlapping records.
    let mut slot = agf.flfirst;
    for _ in 0..agf.flcount {
        let b = agfl.bno[slot as usize];
        let in_free = free.iter().any(|r| {
            u64::from(b) >= u64::from(r.startblock)
                && u64::from(b) < u64::from(r.startblock) + u64::from(r.blockcount)
        });
        if b >= old_len || b < layout.prealloc || in_free {
            return Err(Error::corrupt(
                Structure::Agfl,
                agno,
                format!("free-list block {b} is outside the AG or also free space"),
            ));
        }
        slot = next_slot(slot, ring);
    }
    let mut freed = Vec::new();
    while agf.flcount > need {
        let b = agfl.bno[agf.flfirst as usize];
        agfl.bno[agf.flfirst as usize] = NULLAGBLOCK;
        agf.flfirst = next_slot(agf.flfirst, ring);
        agf.flcount -= 1;
        freed.push(AllocRec {
            startblock: b,
            blockcount: 1,
        });
    }
    while agf.flcount < need {
        let want = need - agf.flcount;
        let (start, len) = take_for_agfl(&mut free, want).ok_or_else(|| {
            Error::Unsupported(format!(
                "AG {agno} has no free space to refill its free list"
            ))
        })?;
        for b in start..start + len {
            agf.fllast = next_slot(agf.fllast, ring);
            agfl.bno[agf.fllast as usize] = b;
            agf.flcount += 1;
        }
    }
    let free = merge_free(&free, &freed);
    Ok(LastAg {
        agf,
        agi,
        agfl,
        agfl_changes,
        free,
        before: old_free + old_fl,
        bno_raw,
        cnt_raw,
    })
}

impl LastAg {
    /// The AG at `new_len` blocks with free extents `free`: its headers,
    /// free list and btree leaves (offset, bytes), and the change of free
    /// blocks (added, removed).
    fn finish(
        mut self,
        xfs_sb: &Superblock,
        agno: u32,
        new_len: u32,
        free: Vec<AllocRec>,
    ) -> Result<Extension> {
        let sb = xfs_sb;
        let bs = sb.blocksize as usize;
        if free.len() > btree::leaf_capacity(bs, 8) {
            return Err(Error::Unsupported(format!(
                "AG {agno}'s free space would need {} records, more than one btree leaf holds",
                free.len()
            )));
        }
        let agf = &mut self.agf;
        agf.length = new_len;
        self.agi.length = new_len;
        agf.freeblks = free.iter().map(|r| r.blockcount).sum();
        agf.longest = free.iter().map(|r| r.blockcount).max().unwrap_or(0);
        let new_free = u64::from(agf.freeblks) + u64::from(agf.flcount);
        let ss = usize::from(sb.sectsize);
        let hdr = sb.ag_byte(agno, 0);
        let mut writes = vec![
            (hdr + ss as u64, agf.to_bytes(ss)),
            (hdr + 2 * ss as u64, self.agi.to_bytes(ss)),
        ];
        if self.agfl_changes {
            writes.push((hdr + 3 * ss as u64, agfl_bytes(&self.agfl, ss)));
        }
        writes.push((
            sb.ag_byte(agno, agf.roots[0]),
            relabel(&self.bno_raw, &free),
        ));
        writes.push((
            sb.ag_byte(agno, agf.roots[1]),
            relabel(&self.cnt_raw, &btree::cnt_order(&free)),
        ));
        let before = self.before;
        Ok((
            writes,
            (
                new_free.saturating_sub(before),
                before.saturating_sub(new_free),
            ),
        ))
    }
}

/// Extends AG `agno` from `old_len` to `new_len` blocks: the AGF and AGI
/// lengths, the new range freed into single-leaf bno/cnt trees, and the
/// free list brought to its minimum first (`xfs_alloc_fix_freelist`, which
/// `xfs_free_extent` runs).
fn extend_last_ag<D: BlockDevice>(
    xfs: &Xfs<D>,
    layout: &AgLayout,
    agno: u32,
    old_len: u32,
    new_len: u32,
) -> Result<Extension> {
    let ag = last_ag_fixed(xfs, layout, agno, old_len, "growing")?;
    let free = merge_free(
        &ag.free,
        &[AllocRec {
            startblock: old_len,
            blockcount: new_len - old_len,
        }],
    );
    ag.finish(xfs.sb(), agno, new_len, free)
}

/// Plans the kernel's shrink of the data section (kernel 5.12 and later,
/// `xfs_growfs_data_private` with a smaller size): only the tail of the
/// last AG can go, so the new size must keep every AG (a last AG of at
/// least 64 blocks) and at least two, else EINVAL ([`Error::Invalid`]).
/// The space must be free: the filesystem's free blocks must cover it (the
/// transaction's reservation), no inode chunk of a sparse-inode filesystem
/// may reach past the new end, and after the free list is fixed the
/// removed range must lie in one free extent (an exact allocation); else
/// ENOSPC ([`Error::NoSpace`]). The AGF and AGI lose the length, the free
/// extent is cut, and the superblocks say the new size.
fn plan_shrink<D: BlockDevice>(xfs: &Xfs<D>, req: &GrowRequest) -> Result<GrowPlan> {
    let old = xfs.sb().clone();
    let (nb, nagcount) = effective_size(old.agblocks, req.newblocks);
    let mut new = kernel_sb(&old);
    if let Some(p) = req.imaxpct {
        new.imax_pct = p;
    }
    if nagcount < 2 {
        return Err(Error::Invalid(format!(
            "a shrink to {} blocks would leave fewer than two AGs",
            req.newblocks
        )));
    }
    if nagcount < u64::from(old.agcount) {
        return Err(Error::Invalid(format!(
            "a shrink to {} blocks would remove whole AGs, which the kernel does not do",
            req.newblocks
        )));
    }
    let delta = old.dblocks - nb;
    if delta == 0 {
        let mut plan = GrowPlan {
            old: old.clone(),
            new: new.clone(),
            extension: None,
            writes: GrowWrites {
                new: new.clone(),
                new_ags: 0..0,
                extension: Vec::new(),
                sector: new.to_bytes(),
                old_agcount: old.agcount,
                primary: new.imax_pct != old.imax_pct,
            },
        };
        plan.new = new;
        return Ok(plan);
    }
    let avail = xfs.statfs(super::statfs::MountMode::ReadWrite)?.f_bfree;
    if avail < delta {
        return Err(Error::NoSpace(format!(
            "{avail} blocks are free, fewer than the {delta} to remove"
        )));
    }
    let layout = AgLayout::new(&old);
    let last = old.agcount - 1;
    let old_len = old.ag_length(last);
    let new_len = old_len - u32::try_from(delta).unwrap_or(u32::MAX);
    if old.has_incompat(super::superblock::incompat::SPINODES) {
        check_inode_chunks_end_before(xfs, last, new_len)?;
    }
    // The longest extent an allocation may take (`m_ag_max_usable`): an
    // AG less its headers, free-list reserve and btree roots, less what AG
    // 0's reservations ask. Measured: a 131072-block AG of a 2 GiB
    // filesystem gives up at most 130144 blocks.
    let roots = 1
        + 4
        + 3
        + u64::from(old.has_ro_compat(ro_compat::FINOBT))
        + u64::from(old.has_ro_compat(ro_compat::RMAPBT))
        + u64::from(old.has_ro_compat(ro_compat::REFLINK));
    let headers = (4 * u64::from(old.sectsize)).div_ceil(u64::from(old.blocksize));
    let (ask0, rask0) = super::statfs::resv_asks(&old, old.ag_length(0), old.log_ag() == 0);
    let max_usable = u64::from(old.agblocks)
        .saturating_sub(roots - 1 + headers)
        .saturating_sub(ask0 + rask0);
    if delta > max_usable {
        return Err(Error::NoSpace(format!(
            "{delta} blocks are more than one allocation may take ({max_usable})"
        )));
    }
    let ag = last_ag_fixed(xfs, &layout, last, old_len, "shrinking")?;
    // The exact allocation of [new_len, old_len).
    let tail = ag
        .free
        .iter()
        .position(|r| r.startblock <= new_len && r.startblock + r.blockcount == old_len)
        .ok_or_else(|| {
            Error::NoSpace(format!(
                "blocks {new_len}..{old_len} of AG {last} are not all free"
            ))
        })?;
    let mut free = ag.free.clone();
    if free[tail].startblock == new_len {
        free.remove(tail);
    } else {
        free[tail].blockcount = new_len - free[tail].startblock;
    }
    // xfs_ag_resv_init on the shorter AG: its per-AG reservations must
    // still fit in its free space and free list. The kernel sizes them for
    // the AG as it was (its in-memory block count is not yet updated):
    // measured, a 131072-block last AG cut to 922 blocks keeps its 916
    // reserved blocks, to 921 fails with ENOSPC.
    let free_after: u64 =
        free.iter().map(|r| u64::from(r.blockcount)).sum::<u64>() + u64::from(ag.agf.flcount);
    let agi_last = &ag.agi;
    let usage = super::statfs::AgUsage {
        length: old_len,
        btreeblks: ag.agf.btreeblks,
        rmap_blocks: ag.agf.rmap_blocks,
        refcount_blocks: ag.agf.refcount_blocks,
        finobt_blocks: if old.has_ro_compat(ro_compat::INOBTCNT) {
            agi_last.fblocks
        } else {
            u32::from(agi_last.free_level > 0)
        },
        holds_log: last == old.log_ag(),
    };
    let resv = super::statfs::hidden_resv(&old, &usage);
    if resv > free_after {
        return Err(Error::NoSpace(format!(
            "AG {last} at {new_len} blocks would keep {free_after} free, less than its {resv} reserved"
        )));
    }
    let (writes, _) = ag.finish(&old, last, new_len, free)?;

    // Counters over every AG, the last as it will be.
    let (total, icount, ifree) = ag_counters(xfs)?;
    let fdblocks = total - agf_free(&xfs.read_agf(last)?);
    let hdr = old.ag_byte(last, 0) + u64::from(old.sectsize);
    let agf_new = writes
        .iter()
        .find(|(o, _)| *o == hdr)
        .map(|(_, b)| Agf::from_bytes(b, last))
        .transpose()?
        .ok_or_else(|| Error::Invalid("the last AG's AGF went missing".into()))?;
    let fdblocks = fdblocks + agf_free(&agf_new);
    new.dblocks = nb;
    new.fdblocks = fdblocks;
    new.icount = icount;
    new.ifree = ifree;
    new.inprogress = 0;
    Ok(GrowPlan {
        old: old.clone(),
        new: new.clone(),
        extension: Some(AgExtension {
            agno: last,
            old_length: old_len,
            new_length: new_len,
        }),
        writes: GrowWrites {
            new: new.clone(),
            new_ags: 0..0,
            extension: writes,
            sector: new.to_bytes(),
            old_agcount: old.agcount,
            primary: true,
        },
    })
}

/// `xfs_ialloc_check_shrink`: with sparse inodes, the inode btree record
/// at or before the new end's first inode number must not run past it.
fn check_inode_chunks_end_before<D: BlockDevice>(
    xfs: &Xfs<D>,
    agno: u32,
    new_len: u32,
) -> Result<()> {
    let sb = xfs.sb();
    let agi = xfs.read_agi(agno)?;
    let agino = u64::from(new_len) << sb.inopblog;
    let bs = sb.blocksize as usize;
    let hdr = btree::XFS_BTREE_SBLOCK_CRC_LEN;
    let mut block = agi.root;
    let mut depth = 0;
    loop {
        depth += 1;
        if block == 0 || block >= new_len.max(agi.length) || depth > 10 {
            return Err(Error::corrupt(
                Structure::Inobt,
                agno,
                format!("bad block {block}"),
            ));
        }
        let raw = xfs.read_blocks(agno, block, bs, Structure::Inobt)?;
        let level = crate::bytes::read_u16be(&raw, 0x04);
        let n = usize::from(crate::bytes::read_u16be(&raw, 0x06));
        if level == 0 {
            let cap = btree::leaf_capacity(bs, 16);
            let last = (0..n.min(cap))
                .map(|i| u64::from(crate::bytes::read_u32be(&raw, hdr + 16 * i)))
                .take_while(|&start| start <= agino)
                .last();
            return match last {
                Some(start) if start + 64 > agino => Err(Error::NoSpace(format!(
                    "the inode chunk at inode {start} of AG {agno} reaches past the new end"
                ))),
                _ => Ok(()),
            };
        }
        let max = (bs - hdr) / 8;
        let keys: Vec<u64> = (0..n.min(max))
            .map(|i| u64::from(crate::bytes::read_u32be(&raw, hdr + 4 * i)))
            .collect();
        let Some(i) = keys.iter().rposition(|&k| k <= agino) else {
            return Ok(());
        };
        block = crate::bytes::read_u32be(&raw, hdr + 4 * max + 4 * i);
    }
}

fn agfl_bytes(agfl: &Agfl, ss: usize) -> Vec<u8> {
    agfl.to_bytes(ss)
}

fn next_slot(i: u32, ring: usize) -> u32 {
    let n = i as usize + 1;
    if n >= ring { 0 } else { n as u32 }
}

fn check_root(agno: u32, root: u32, len: u32, s: Structure) -> Result<()> {
    if root == 0 || root >= len {
        return Err(Error::corrupt(
            s,
            agno,
            format!("root block {root} outside the AG"),
        ));
    }
    Ok(())
}

/// The bno and cnt leaves must describe the same extents, inside the AG,
/// sorted, not overlapping, and agree with the AGF.
fn check_free_space(
    agno: u32,
    agf: &Agf,
    bno: &[AllocRec],
    cnt: &[AllocRec],
    len: u32,
) -> Result<()> {
    let bad = |s: Structure, d: String| Err(Error::corrupt(s, agno, d));
    let mut end = 0u64;
    let mut total = 0u64;
    for r in bno {
        let s = u64::from(r.startblock);
        let e = s + u64::from(r.blockcount);
        if r.blockcount == 0 || s < end || e > u64::from(len) {
            return bad(
                Structure::Bnobt,
                format!("bad record [{}, {}]", r.startblock, r.blockcount),
            );
        }
        end = e;
        total += u64::from(r.blockcount);
    }
    if btree::cnt_order(bno) != cnt {
        return bad(Structure::Cntbt, "records differ from the bnobt".into());
    }
    if total != u64::from(agf.freeblks) {
        return bad(
            Structure::Agf,
            format!("{} free blocks where the bnobt holds {total}", agf.freeblks),
        );
    }
    Ok(())
}

/// Takes up to `want` blocks for the free list as `xfs_alloc_ag_vextent_size`
/// would: from the start of the smallest extent that holds them all, else
/// of the largest.
fn take_for_agfl(free: &mut Vec<AllocRec>, want: u32) -> Option<(u32, u32)> {
    let by_size = btree::cnt_order(free);
    let pick = by_size
        .iter()
        .find(|r| r.blockcount >= want)
        .or_else(|| by_size.last())
        .copied()?;
    let idx = free.iter().position(|r| *r == pick)?;
    let len = want.min(pick.blockcount);
    if len == pick.blockcount {
        free.remove(idx);
    } else {
        free[idx] = AllocRec {
            startblock: pick.startblock + len,
            blockcount: pick.blockcount - len,
        };
    }
    Some((pick.startblock, len))
}

/// The union of two sets of free extents, merged where they touch.
fn merge_free(a: &[AllocRec], b: &[AllocRec]) -> Vec<AllocRec> {
    let mut all: Vec<AllocRec> = a.iter().chain(b.iter()).copied().collect();
    all.sort();
    let mut out: Vec<AllocRec> = Vec::with_capacity(all.len());
    for r in all {
        match out.last_mut() {
            Some(last)
                if u64::from(last.startblock) + u64::from(last.blockcount)
                    == u64::from(r.startblock) =>
            {
                last.blockcount = last.blockcount.saturating_add(r.blockcount);
            }
            _ => out.push(r),
        }
    }
    out
}

/// A copy of a leaf block with new records (header kept, CRC redone).
fn relabel(raw: &[u8], recs: &[AllocRec]) -> Vec<u8> {
    let mut b = raw.to_vec();
    let hdr = btree::XFS_BTREE_SBLOCK_CRC_LEN;
    b[hdr..].fill(0);
    crate::bytes::write_u16be(&mut b, 0x06, u16::try_from(recs.len()).unwrap_or(u16::MAX));
    for (i, r) in recs.iter().enumerate() {
        crate::bytes::write_u32be(&mut b, hdr + 8 * i, r.startblock);
        crate::bytes::write_u32be(&mut b, hdr + 8 * i + 4, r.blockcount);
    }
    super::crc::update(&mut b, btree::BTREE_CRC_OFF);
    b
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test may panic
mod tests {
    use super::*;

    #[test]
    fn sixty_four_block_rule() {
        assert_eq!(effective_size(65536, 262144 + 63), (262144, 4));
        assert_eq!(effective_size(65536, 262144 + 64), (262208, 5));
        assert_eq!(effective_size(65536, 524288), (524288, 8));
        assert_eq!(effective_size(65537, 524288), (524288, 8));
    }

    #[test]
    fn merging() {
        let r = |s, c| AllocRec {
            startblock: s,
            blockcount: c,
        };
        assert_eq!(
            merge_free(&[r(10, 6), r(24, 100)], &[r(124, 3)]),
            vec![r(10, 6), r(24, 103)]
        );
        assert_eq!(
            merge_free(&[r(10, 6)], &[r(16, 1), r(30, 2)]),
            vec![r(10, 7), r(30, 2)]
        );
        let mut f = vec![r(10, 6), r(24, 100)];
        assert_eq!(take_for_agfl(&mut f, 4), Some((10, 4)));
        assert_eq!(f, vec![r(14, 2), r(24, 100)]);
    }
}
