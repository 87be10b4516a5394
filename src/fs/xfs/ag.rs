//! The fixed layout of an allocation group and the contents of
//! a freshly initialised one (`xfs_ag_init_headers`): header
//! sectors (SB, AGF, AGI, AGFL) in the first block(s), then one root block
//! per btree. mkfs and growfs both build AGs here.

use super::agf::Agf;
use super::agfl::Agfl;
use super::agi::{Agi, NULLAGINO, XFS_AGI_UNLINKED_BUCKETS};
use super::btree::{self, AllocRec, InobtRec, RmapRec, owner};
use super::superblock::{Superblock, incompat, ro_compat};

/// Where the header sectors and the btree roots sit in every AG, for a
/// given superblock's geometry and features.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgLayout {
    pub blocksize: u32,
    pub sectsize: u32,
    /// First block after the four header sectors (`XFS_BNO_BLOCK`).
    pub bno_block: u32,
    pub cnt_block: u32,
    pub ino_block: u32,
    pub fino_block: Option<u32>,
    pub rmap_block: Option<u32>,
    pub refc_block: Option<u32>,
    /// The first block not used by fixed metadata (`xfs_prealloc_blocks`).
    pub prealloc: u32,
}

impl AgLayout {
    /// The layout for `sb`'s block and sector sizes and btree features.
    pub fn new(sb: &Superblock) -> Self {
        let blocksize = sb.blocksize.max(1);
        let sectsize = u32::from(sb.sectsize);
        // XFS_AGFL_BLOCK: the block holding sector 3.
        let agfl_block = (3 * sectsize) / blocksize;
        let bno_block = agfl_block + 1;
        let cnt_block = bno_block + 1;
        let ino_block = cnt_block + 1;
        let mut next = ino_block + 1;
        let mut take = |on: bool| {
            on.then(|| {
                next += 1;
                next - 1
            })
        };
        let fino_block = take(sb.has_ro_compat(ro_compat::FINOBT));
        let rmap_block = take(sb.has_ro_compat(ro_compat::RMAPBT));
        let refc_block = take(sb.has_ro_compat(ro_compat::REFLINK));
        AgLayout {
            blocksize,
            sectsize,
            bno_block,
            cnt_block,
            ino_block,
            fino_block,
            rmap_block,
            refc_block,
            prealloc: next,
        }
    }

    /// Blocks the free list must hold for single-level free-space (and
    /// rmap) btrees (`xfs_alloc_min_freelist`).
    pub fn min_freelist(&self, levels: &[u32; 3]) -> u32 {
        // Each tree needs room for a full split: (level + 1) * 2 - 2.
        let need = |level: u32| (level + 1) * 2 - 2;
        need(levels[0]) + need(levels[1]) + self.rmap_block.map_or(0, |_| need(levels[2]))
    }
}

/// What goes into a new AG besides its fixed layout.
#[derive(Debug, Clone, Default)]
pub struct AgContent {
    /// Free extents in block order (the bnobt records).
    pub free: Vec<AllocRec>,
    /// Blocks on the free list (AGFL slots 1..).
    pub agfl: Vec<u32>,
    /// The inode chunk record (AG 0 after mkfs).
    pub inodes: Option<InobtRec>,
    /// The log, when this AG holds it: (agbno, blocks).
    pub log: Option<(u32, u32)>,
}

/// A built AG: its headers as structures and the bytes of blocks
/// `0..prealloc`, ready to write at the AG's first block.
#[derive(Debug, Clone)]
pub struct BuiltAg {
    pub agf: Agf,
    pub agi: Agi,
    pub bytes: Vec<u8>,
}

/// Builds the headers and btree roots of AG `agno` of `length` blocks.
/// `sb_sector` is the superblock sector to put first.
pub fn build(
    sb: &Superblock,
    agno: u32,
    length: u32,
    sb_sector: &[u8],
    content: &AgContent,
) -> BuiltAg {
    let l = AgLayout::new(sb);
    let bs = l.blocksize as usize;
    let ss = l.sectsize as usize;
    let uuid = sb.metadata_uuid();
    let daddr = |agbno: u32| sb.ag_byte(agno, agbno) / 512;

    let freeblks: u32 = content.free.iter().map(|r| r.blockcount).sum();
    let longest = content.free.iter().map(|r| r.blockcount).max().unwrap_or(0);
    let flcount = u32::try_from(content.agfl.len()).unwrap_or(0);
    let agf = Agf {
        seqno: agno,
        length,
        roots: [l.bno_block, l.cnt_block, l.rmap_block.unwrap_or(0)],
        levels: [1, 1, u32::from(l.rmap_block.is_some())],
        // xfs_agfblock_init starts the ring at slot 1 (fllast 0, empty).
        flfirst: 1,
        fllast: flcount,
        flcount,
        freeblks,
        longest,
        btreeblks: 0,
        uuid,
        rmap_blocks: u32::from(l.rmap_block.is_some()),
        refcount_blocks: u32::from(l.refc_block.is_some()),
        refcount_root: l.refc_block.unwrap_or(0),
        refcount_level: u32::from(l.refc_block.is_some()),
        lsn: 0,
    };
    let inobtcnt = sb.has_ro_compat(ro_compat::INOBTCNT);
    let sparse = sb.has_incompat(incompat::SPINODES);
    let rec = content.inodes;
    let agi = Agi {
        seqno: agno,
        length,
        count: rec.map_or(0, |r| u32::from(r.count)),
        root: l.ino_block,
        level: 1,
        freecount: rec.map_or(0, |r| u32::from(r.freecount)),
        newino: rec.map_or(NULLAGINO, |r| r.startino),
        dirino: NULLAGINO,
        unlinked: [NULLAGINO; XFS_AGI_UNLINKED_BUCKETS],
        uuid,
        lsn: 0,
        free_root: l.fino_block.unwrap_or(0),
        free_level: u32::from(l.fino_block.is_some()),
        iblocks: u32::from(inobtcnt),
        fblocks: u32::from(inobtcnt && l.fino_block.is_some()),
    };
    let mut agfl = Agfl::empty(agno, uuid, ss);
    for (i, b) in content.agfl.iter().enumerate() {
        if let Some(slot) = agfl.bno.get_mut(i + 1) {
            *slot = *b;
        }
    }

    let mut bytes = vec![0u8; l.prealloc as usize * bs];
    let mut put = |off: usize, b: &[u8]| {
        let n = b.len().min(bytes.len().saturating_sub(off));
        bytes[off..off + n].copy_from_slice(&b[..n]);
    };
    put(0, &sb_sector[..sb_sector.len().min(ss)]);
    put(ss, &agf.to_bytes(ss));
    put(2 * ss, &agi.to_bytes(ss));
    put(3 * ss, &agfl.to_bytes(ss));
    let at = |b: u32| b as usize * bs;
    let bno = btree::alloc_leaf(
        bs,
        btree::XFS_ABTB_CRC_MAGIC,
        daddr(l.bno_block),
        &uuid,
        agno,
        &content.free,
    );
    put(at(l.bno_block), &bno);
    let cnt = btree::alloc_leaf(
        bs,
        btree::XFS_ABTC_CRC_MAGIC,
        daddr(l.cnt_block),
        &uuid,
        agno,
        &btree::cnt_order(&content.free),
    );
    put(at(l.cnt_block), &cnt);
    let ino_recs: Vec<InobtRec> = rec.into_iter().collect();
    let ino = btree::inobt_leaf(
        bs,
        btree::XFS_IBT_CRC_MAGIC,
        daddr(l.ino_block),
        &uuid,
        agno,
        &ino_recs,
        sparse,
    );
    put(at(l.ino_block), &ino);
    if let Some(fb) = l.fino_block {
        let free_recs: Vec<InobtRec> = ino_recs
            .iter()
            .copied()
            .filter(|r| r.freecount > 0)
            .collect();
        let fino = btree::inobt_leaf(
            bs,
            btree::XFS_FIBT_CRC_MAGIC,
            daddr(fb),
            &uuid,
            agno,
            &free_recs,
            sparse,
        );
        put(at(fb), &fino);
    }
    if let Some(rb) = l.rmap_block {
        let recs = rmap_records(&l, content, sb.inopblog);
        put(at(rb), &btree::rmap_leaf(bs, daddr(rb), &uuid, agno, &recs));
    }
    if let Some(cb) = l.refc_block {
        let refc = btree::empty_leaf(bs, btree::XFS_REFC_CRC_MAGIC, daddr(cb), &uuid, agno);
        put(at(cb), &refc);
    }
    BuiltAg { agf, agi, bytes }
}

/// The reverse mappings of a new AG: its fixed metadata
/// (`xfs_rmaproot_init`), then what `content` places in it — the free-list
/// blocks (owned by the AG, merged with a neighbour of the same owner as
/// `xfs_rmap_map` merges them) and the inode chunk.
fn rmap_records(l: &AgLayout, content: &AgContent, inopblog: u8) -> Vec<RmapRec> {
    let rec = |startblock, blockcount, owner| RmapRec {
        startblock,
        blockcount,
        owner,
        offset: 0,
    };
    let rmap = l.rmap_block.unwrap_or(l.prealloc);
    let mut v = vec![
        rec(0, l.bno_block, owner::FS),
        rec(l.bno_block, 2, owner::AG),
        rec(l.ino_block, rmap - l.ino_block, owner::INOBT),
        rec(rmap, 1, owner::AG),
    ];
    if let Some(c) = l.refc_block {
        v.push(rec(c, 1, owner::REFC));
    }
    if let Some((start, len)) = content.log {
        v.push(rec(start, len, owner::LOG));
    }
    for &b in &content.agfl {
        v.push(rec(b, 1, owner::AG));
    }
    if let Some(chunk) = &content.inodes {
        let start = chunk.startino >> inopblog;
        let blocks = u32::from(chunk.count) >> inopblog;
        v.push(rec(start, blocks, owner::INODES));
    }
    v.sort_by_key(|r| r.startblock);
    let mut merged: Vec<RmapRec> = Vec::with_capacity(v.len());
    for r in v {
        match merged.last_mut() {
            Some(last)
                if last.owner == r.owner
                    && r.owner == owner::AG
                    && last.startblock + last.blockcount == r.startblock =>
            {
                last.blockcount += r.blockcount;
            }
            _ => merged.push(r),
        }
    }
    merged
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test may panic
mod tests {
    use super::*;
    use crate::fs::xfs::superblock::tests::sample;

    #[test]
    fn default_layout() {
        let sb = sample();
        let l = AgLayout::new(&sb);
        assert_eq!(
            (
                l.bno_block,
                l.cnt_block,
                l.ino_block,
                l.fino_block,
                l.refc_block,
                l.prealloc
            ),
            (1, 2, 3, Some(4), Some(5), 6)
        );
        assert_eq!(l.min_freelist(&[1, 1, 0]), 4);
        let mut rsb = sample();
        rsb.features_ro_compat |= ro_compat::RMAPBT;
        let r = AgLayout::new(&rsb);
        assert_eq!(
            (r.rmap_block, r.refc_block, r.prealloc),
            (Some(5), Some(6), 7)
        );
        assert_eq!(r.min_freelist(&[1, 1, 1]), 6);
    }

    #[test]
    fn new_ag_headers_parse_back() {
        let sb = sample();
        let content = AgContent {
            free: vec![AllocRec {
                startblock: 6,
                blockcount: 65530,
            }],
            ..Default::default()
        };
        let sbs = sb.to_bytes();
        let ag = build(&sb, 5, 65536, &sbs, &content);
        assert_eq!(ag.bytes.len(), 6 * 4096);
        let agf = Agf::from_bytes(&ag.bytes[512..1024], 5).unwrap();
        assert_eq!((agf.flfirst, agf.fllast, agf.flcount), (1, 0, 0));
        assert_eq!((agf.freeblks, agf.longest), (65530, 65530));
        let agi = Agi::from_bytes(&ag.bytes[1024..1536], 5).unwrap();
        assert_eq!(
            (agi.count, agi.newino, agi.iblocks, agi.fblocks),
            (0, NULLAGINO, 1, 1)
        );
        Agfl::from_bytes(&ag.bytes[1536..2048], 5).unwrap();
        let (_, recs) = btree::parse_alloc_leaf(
            &ag.bytes[4096..8192],
            super::super::error::Structure::Bnobt,
            5,
            btree::XFS_ABTB_CRC_MAGIC,
            &sb.metadata_uuid(),
            sb.ag_byte(5, 1) / 512,
        )
        .unwrap();
        assert_eq!(recs, content.free);
    }
}
