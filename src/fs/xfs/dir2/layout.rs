//! Laying a directory out from its entry list, in the smallest format it
//! fits: short-form in the inode; one block (`XDB3`: entries, then the
//! leaf array and tail at the block's end); data blocks plus one `LEAF1`
//! block (hash-sorted leaf entries, then each data block's best free
//! length); or node format (`LEAFN` blocks under da-node blocks, and
//! free-index blocks). `plan` decides the format and the blocks (so the
//! caller can allocate them before anything changes); `build` produces
//! the bytes.
//!
//! Entries are packed in list order, `.` and `..` first in data block 0;
//! every data block keeps its free space as one region at its end, which
//! is then its only `bestfree` entry.

use super::block::{
    DA_CRC_OFF, DATA_CRC_OFF, FREE_TAG, XFS_DA3_NODE_MAGIC, XFS_DIR3_BLOCK_MAGIC,
    XFS_DIR3_DATA_MAGIC, XFS_DIR3_FREE_MAGIC, XFS_DIR3_LEAF1_MAGIC, XFS_DIR3_LEAFN_MAGIC,
};
use super::{DIR3_HDR, DirGeo, Entry, hashname};
use crate::bytes::{write_u16be, write_u32be, write_u64be};
use crate::fs::xfs::crc;

/// The format a directory is laid out in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// In the inode.
    Short,
    /// One block with its own leaf.
    Block,
    /// Data blocks and one leaf block.
    Leaf,
    /// Data blocks, a da-btree of leaf blocks, free-index blocks.
    Node,
}

/// A directory's layout: its format and blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The format.
    pub format: Format,
    /// For each data block, the range of entries it holds.
    pub data: Vec<(usize, usize)>,
    /// Leaf-node-space blocks: the LEAF1 block, or in node format the
    /// root (a node, or the one LEAFN), the leaves, then lower nodes.
    pub leaf_space: usize,
    /// Leaf blocks (node format).
    pub leaves: usize,
    /// Free-index blocks (node format).
    pub free: usize,
    /// `di_size`: short-form bytes, or the data space's length.
    pub size: u64,
}

impl Plan {
    /// Every directory block the layout occupies, ascending.
    pub fn dablks(&self, geo: &DirGeo) -> Vec<u64> {
        let mut v: Vec<u64> = (0..self.data.len() as u64).collect();
        let lf = geo.leaf_first();
        v.extend((0..self.leaf_space as u64).map(|i| lf + i));
        let ff = geo.free_first();
        v.extend((0..self.free as u64).map(|i| ff + i));
        v
    }
}

fn leafn_max(geo: &DirGeo) -> usize {
    (geo.blksize - DIR3_HDR) / 8
}

fn node_max(geo: &DirGeo) -> usize {
    (geo.blksize - DIR3_HDR) / 8
}

fn free_max(geo: &DirGeo) -> usize {
    (geo.blksize - DIR3_HDR) / 2
}

/// How entries are packed into data blocks: the entry range of each
/// block, and the bytes used in the last one. Appending an entry updates
/// it in place (the packing is greedy, in list order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packing {
    /// For each data block, the range of entries it holds.
    pub data: Vec<(usize, usize)>,
    /// Bytes used in the last block.
    pub last_used: usize,
}

impl Packing {
    /// No entries: data block 0 holds `.` and `..`.
    pub fn new(geo: &DirGeo) -> Self {
        Packing {
            data: vec![(0, 0)],
            last_used: geo.data_first_offset(),
        }
    }

    /// Appends entry `i` of `entsize` bytes.
    pub fn push(&mut self, i: usize, entsize: usize, geo: &DirGeo) {
        if self.last_used + entsize > geo.blksize {
            self.data.push((i, i + 1));
            self.last_used = DIR3_HDR + entsize;
        } else {
            if let Some(last) = self.data.last_mut() {
                last.1 = i + 1;
            }
            self.last_used += entsize;
        }
    }

    /// The packing of a whole list.
    pub fn of(entries: &[&Entry], geo: &DirGeo) -> Self {
        let mut p = Packing::new(geo);
        for (i, e) in entries.iter().enumerate() {
            p.push(i, geo.entsize(e.name.len()), geo);
        }
        p
    }
}

/// Sums over a directory's entries that decide its format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    /// Entries (without `.` and `..`).
    pub n: usize,
    /// Total name bytes.
    pub names: usize,
    /// Total data-entry bytes.
    pub entsize: usize,
    /// Entries whose inode number needs 8 bytes.
    pub big: usize,
}

impl Sums {
    /// Adds (`sign` > 0) or removes an entry.
    pub fn add(&mut self, e: &Entry, geo: &DirGeo, sign: i8) {
        let big = usize::from(e.ino > 0xffff_ffff);
        let es = geo.entsize(e.name.len());
        if sign > 0 {
            self.n += 1;
            self.names += e.name.len();
            self.entsize += es;
            self.big += big;
        } else {
            self.n -= 1;
            self.names -= e.name.len();
            self.entsize -= es;
            self.big -= big;
        }
    }

    /// The sums of a whole list.
    pub fn of(entries: &[&Entry], geo: &DirGeo) -> Self {
        let mut s = Sums::default();
        for e in entries {
            s.add(e, geo, 1);
        }
        s
    }

    /// Bytes of the short-form directory.
    pub fn sf_size(&self, parent: u64, geo: &DirGeo) -> usize {
        let inosize = if self.big + usize::from(parent > 0xffff_ffff) > 0 {
            8
        } else {
            4
        };
        2 + inosize + self.n * (3 + usize::from(geo.has_ftype) + inosize) + self.names
    }
}

/// Chooses the smallest format for entries with these sums and packing,
/// with a data fork of `fork_size` bytes.
pub fn choose(parent: u64, sums: &Sums, packing: &Packing, geo: &DirGeo, fork_size: usize) -> Plan {
    let sf_size = sums.sf_size(parent, geo);
    let sf_last = geo.data_first_offset() + sums.entsize;
    if sums.n <= 255 && sf_size <= fork_size && sf_last + (sums.n + 2) * 8 + 8 <= geo.blksize {
        return Plan {
            format: Format::Short,
            data: Vec::new(),
            leaf_space: 0,
            leaves: 0,
            free: 0,
            size: sf_size as u64,
        };
    }
    let n = sums.n + 2;
    if geo.data_first_offset() + sums.entsize + 8 * n + 8 <= geo.blksize {
        return Plan {
            format: Format::Block,
            data: vec![(0, sums.n)],
            leaf_space: 0,
            leaves: 0,
            free: 0,
            size: geo.blksize as u64,
        };
    }
    let data = packing.data.clone();
    let k = data.len();
    let size = (k * geo.blksize) as u64;
    if DIR3_HDR + 8 * n + 2 * k + 4 <= geo.blksize {
        return Plan {
            format: Format::Leaf,
            data,
            leaf_space: 1,
            leaves: 1,
            free: 0,
            size,
        };
    }
    let leaves = n.div_ceil(leafn_max(geo));
    let mut leaf_space = leaves;
    let mut count = leaves;
    while count > 1 {
        count = count.div_ceil(node_max(geo));
        leaf_space += count;
    }
    Plan {
        format: Format::Node,
        data,
        leaf_space,
        leaves,
        free: k.div_ceil(free_max(geo)),
        size,
    }
}

/// Chooses the smallest format for `entries` with a data fork of
/// `fork_size` bytes.
pub fn plan(parent: u64, entries: &[&Entry], geo: &DirGeo, fork_size: usize) -> Plan {
    choose(
        parent,
        &Sums::of(entries, geo),
        &Packing::of(entries, geo),
        geo,
        fork_size,
    )
}

/// What the blocks' headers need: the directory, the uuid, and where each
/// directory block lies (its 512-byte sector address).
pub struct Ctx<'a> {
    /// The directory inode.
    pub owner: u64,
    /// The metadata uuid.
    pub uuid: [u8; 16],
    /// The sector address of a directory block.
    pub daddr: &'a dyn Fn(u64) -> u64,
}

/// A `xfs_dir3_blk_hdr` (data, block and free blocks).
fn blk_hdr(b: &mut [u8], magic: u32, dablk: u64, ctx: &Ctx) {
    write_u32be(b, 0, magic);
    write_u64be(b, 8, (ctx.daddr)(dablk));
    write_u64be(b, 16, 0);
    b[24..40].copy_from_slice(&ctx.uuid);
    write_u64be(b, 40, ctx.owner);
}

/// A `xfs_da3_blkinfo` (leaf and node blocks).
fn da_hdr(b: &mut [u8], magic: u16, forw: u32, back: u32, dablk: u64, ctx: &Ctx) {
    write_u32be(b, 0, forw);
    write_u32be(b, 4, back);
    write_u16be(b, 8, magic);
    write_u64be(b, 16, (ctx.daddr)(dablk));
    write_u64be(b, 24, 0);
    b[32..48].copy_from_slice(&ctx.uuid);
    write_u64be(b, 48, ctx.owner);
}

fn put_entry(b: &mut [u8], pos: usize, ino: u64, name: &[u8], ftype: u8, geo: &DirGeo) -> usize {
    let size = geo.entsize(name.len());
    write_u64be(b, pos, ino);
    b[pos + 8] = name.len() as u8;
    b[pos + 9..pos + 9 + name.len()].copy_from_slice(name);
    if geo.has_ftype {
        b[pos + 9 + name.len()] = ftype;
    }
    write_u16be(b, pos + size - 2, pos as u16);
    size
}

/// Marks `[pos, end)` unused and records it as the block's best free
/// region; returns its length.
fn put_free(b: &mut [u8], pos: usize, end: usize) -> u16 {
    let len = end - pos;
    if len == 0 {
        return 0;
    }
    write_u16be(b, pos, FREE_TAG);
    write_u16be(b, pos + 2, len as u16);
    write_u16be(b, end - 2, pos as u16);
    // bestfree[0] at 48; [1] and [2] stay zero.
    write_u16be(b, 48, pos as u16);
    write_u16be(b, 50, len as u16);
    len as u16
}

/// Writes the entries of data block `db`, returning its leaf entries
/// (hash, address) and the data area's end.
fn fill_data(
    b: &mut [u8],
    db: usize,
    range: (usize, usize),
    parent: u64,
    entries: &[&Entry],
    geo: &DirGeo,
    ctx: &Ctx,
) -> (Vec<(u32, u32)>, usize) {
    let mut leaf = Vec::with_capacity(range.1 - range.0 + 2);
    let base = db * geo.blksize;
    let addr = |pos: usize| ((base + pos) >> 3) as u32;
    let mut pos = DIR3_HDR;
    if db == 0 {
        leaf.push((hashname(b"."), addr(pos)));
        pos += put_entry(b, pos, ctx.owner, b".", super::ftype::DIR, geo);
        leaf.push((hashname(b".."), addr(pos)));
        pos += put_entry(b, pos, parent, b"..", super::ftype::DIR, geo);
    }
    for e in &entries[range.0..range.1] {
        leaf.push((hashname(&e.name), addr(pos)));
        pos += put_entry(b, pos, e.ino, &e.name, e.ftype, geo);
    }
    (leaf, pos)
}

/// Builds every block of a block-, leaf- or node-format layout: (dablk,
/// bytes) pairs, CRCs computed. Short-form layouts have no blocks (use
/// [`super::sf::build`]).
pub fn build(
    plan: &Plan,
    parent: u64,
    entries: &[&Entry],
    geo: &DirGeo,
    ctx: &Ctx,
) -> Vec<(u64, Vec<u8>)> {
    let bs = geo.blksize;
    let mut out = Vec::new();
    match plan.format {
        Format::Short => {}
        Format::Block => {
            let mut b = vec![0u8; bs];
            blk_hdr(&mut b, XFS_DIR3_BLOCK_MAGIC, 0, ctx);
            let (mut leaf, end) =
                fill_data(&mut b, 0, (0, entries.len()), parent, entries, geo, ctx);
            leaf.sort_by_key(|l| l.0);
            let leaf_start = bs - 8 - 8 * leaf.len();
            put_free(&mut b, end, leaf_start);
            for (i, (h, a)) in leaf.iter().enumerate() {
                write_u32be(&mut b, leaf_start + 8 * i, *h);
                write_u32be(&mut b, leaf_start + 8 * i + 4, *a);
            }
            write_u32be(&mut b, bs - 8, leaf.len() as u32);
            write_u32be(&mut b, bs - 4, 0);
            crc::update(&mut b, DATA_CRC_OFF);
            out.push((0, b));
        }
        Format::Leaf | Format::Node => {
            let mut leaf = Vec::with_capacity(entries.len() + 2);
            let mut bests = Vec::with_capacity(plan.data.len());
            for (db, &range) in plan.data.iter().enumerate() {
                let mut b = vec![0u8; bs];
                blk_hdr(&mut b, XFS_DIR3_DATA_MAGIC, db as u64, ctx);
                let (l, end) = fill_data(&mut b, db, range, parent, entries, geo, ctx);
                leaf.extend(l);
                bests.push(put_free(&mut b, end, bs));
                crc::update(&mut b, DATA_CRC_OFF);
                out.push((db as u64, b));
            }
            leaf.sort_by_key(|l| l.0);
            if plan.format == Format::Leaf {
                out.push(leaf1(&leaf, &bests, geo, ctx));
            } else {
                out.extend(node_blocks(plan, &leaf, geo, ctx));
                out.extend(free_blocks(&bests, geo, ctx));
            }
        }
    }
    out
}

fn leaf_entries(b: &mut [u8], leaf: &[(u32, u32)]) {
    write_u16be(b, 56, leaf.len() as u16);
    write_u16be(b, 58, 0);
    for (i, (h, a)) in leaf.iter().enumerate() {
        write_u32be(b, DIR3_HDR + 8 * i, *h);
        write_u32be(b, DIR3_HDR + 8 * i + 4, *a);
    }
}

fn leaf1(leaf: &[(u32, u32)], bests: &[u16], geo: &DirGeo, ctx: &Ctx) -> (u64, Vec<u8>) {
    let bs = geo.blksize;
    let dablk = geo.leaf_first();
    let mut b = vec![0u8; bs];
    da_hdr(&mut b, XFS_DIR3_LEAF1_MAGIC, 0, 0, dablk, ctx);
    leaf_entries(&mut b, leaf);
    let bests_at = bs - 4 - 2 * bests.len();
    for (i, v) in bests.iter().enumerate() {
        write_u16be(&mut b, bests_at + 2 * i, *v);
    }
    write_u32be(&mut b, bs - 4, bests.len() as u32);
    crc::update(&mut b, DA_CRC_OFF);
    (dablk, b)
}

/// Splits `leaf` (hash-sorted) into `parts` runs of near-equal length,
/// moving each cut off a run of equal hashes when the capacity allows, so
/// that one hash value stays in one leaf.
fn split_leaf(leaf: &[(u32, u32)], parts: usize, cap: usize) -> Vec<(usize, usize)> {
    let n = leaf.len();
    let mut cuts = vec![0usize];
    for i in 1..parts {
        let ideal = i * n / parts;
        let prev = cuts[cuts.len() - 1];
        let mut c = ideal.max(prev + 1);
        let fwd = (c..n).find(|&p| leaf[p].0 != leaf[p - 1].0);
        let back = (prev + 1..=c).rev().find(|&p| leaf[p].0 != leaf[p - 1].0);
        match (fwd, back) {
            (Some(f), _) if f - prev <= cap && parts - i <= n - f && n - f <= (parts - i) * cap => {
                c = f
            }
            (_, Some(bk)) if n - bk <= (parts - i) * cap => c = bk,
            _ => {}
        }
        cuts.push(c);
    }
    cuts.push(n);
    cuts.windows(2).map(|w| (w[0], w[1])).collect()
}

/// The leaf-space blocks of a node-format directory.
fn node_blocks(plan: &Plan, leaf: &[(u32, u32)], geo: &DirGeo, ctx: &Ctx) -> Vec<(u64, Vec<u8>)> {
    let bs = geo.blksize;
    let lf = geo.leaf_first();
    let mut out = Vec::new();
    let runs = split_leaf(leaf, plan.leaves, leafn_max(geo));
    // Block numbers: a lone leaf is the root; else the root node first,
    // the leaves next, lower nodes after them.
    let leaf_dablks: Vec<u64> = if plan.leaves == 1 {
        vec![lf]
    } else {
        (0..plan.leaves as u64).map(|i| lf + 1 + i).collect()
    };
    let mut level_items: Vec<(u32, u32)> = Vec::new(); // (max hash, dablk)
    for (i, &(s, e)) in runs.iter().enumerate() {
        let dablk = leaf_dablks[i];
        let forw = leaf_dablks.get(i + 1).map_or(0, |&d| d as u32);
        let back = if i == 0 { 0 } else { leaf_dablks[i - 1] as u32 };
        let mut b = vec![0u8; bs];
        da_hdr(&mut b, XFS_DIR3_LEAFN_MAGIC, forw, back, dablk, ctx);
        leaf_entries(&mut b, &leaf[s..e]);
        crc::update(&mut b, DA_CRC_OFF);
        out.push((dablk, b));
        let max_hash = leaf[s..e].last().map_or(0, |l| l.0);
        level_items.push((max_hash, dablk as u32));
    }
    if plan.leaves == 1 {
        return out;
    }
    let mut next_free = lf + 1 + plan.leaves as u64;
    let mut level = 1u16;
    while level_items.len() > 1 {
        let count = level_items.len().div_ceil(node_max(geo));
        let dablks: Vec<u64> = if count == 1 {
            vec![lf]
        } else {
            let v = (0..count as u64).map(|i| next_free + i).collect();
            next_free += count as u64;
            v
        };
        let mut next = Vec::with_capacity(count);
        let mut idx = 0;
        for (j, &dablk) in dablks.iter().enumerate() {
            let n = level_items.len() / count + usize::from(j < level_items.len() % count);
            let kids = &level_items[idx..idx + n];
            idx += n;
            let forw = dablks.get(j + 1).map_or(0, |&d| d as u32);
            let back = if j == 0 { 0 } else { dablks[j - 1] as u32 };
            let mut b = vec![0u8; bs];
            da_hdr(&mut b, XFS_DA3_NODE_MAGIC, forw, back, dablk, ctx);
            write_u16be(&mut b, 56, kids.len() as u16);
            write_u16be(&mut b, 58, level);
            for (i, (h, before)) in kids.iter().enumerate() {
                write_u32be(&mut b, DIR3_HDR + 8 * i, *h);
                write_u32be(&mut b, DIR3_HDR + 8 * i + 4, *before);
            }
            crc::update(&mut b, DA_CRC_OFF);
            out.push((dablk, b));
            next.push((kids.last().map_or(0, |k| k.0), dablk as u32));
        }
        level_items = next;
        level += 1;
    }
    out
}

fn free_blocks(bests: &[u16], geo: &DirGeo, ctx: &Ctx) -> Vec<(u64, Vec<u8>)> {
    let per = free_max(geo);
    let ff = geo.free_first();
    bests
        .chunks(per)
        .enumerate()
        .map(|(i, chunk)| {
            let dablk = ff + i as u64;
            let mut b = vec![0u8; geo.blksize];
            blk_hdr(&mut b, XFS_DIR3_FREE_MAGIC, dablk, ctx);
            write_u32be(&mut b, 48, (i * per) as u32); // firstdb
            write_u32be(&mut b, 52, chunk.len() as u32); // nvalid
            write_u32be(&mut b, 56, chunk.len() as u32); // nused
            for (j, v) in chunk.iter().enumerate() {
                write_u16be(&mut b, DIR3_HDR + 2 * j, *v);
            }
            crc::update(&mut b, DATA_CRC_OFF);
            (dablk, b)
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test may panic
mod tests {
    use super::super::block::{parse_data, read_dir};
    use super::*;

    fn names(n: usize, len: usize) -> Vec<Entry> {
        (0..n)
            .map(|i| Entry {
                name: format!("{i:0len$}").into_bytes(),
                ino: 1000 + i as u64,
                ftype: 1,
            })
            .collect()
    }

    type Laid = (Plan, Vec<(u64, Vec<u8>)>, Vec<Entry>);

    fn layout_of(n: usize) -> Laid {
        let g = DirGeo::new(4096, 0, true);
        let v = names(n, 10);
        let refs: Vec<&Entry> = v.iter().collect();
        let p = plan(128, &refs, &g, 336);
        let daddr = |d: u64| d * 8;
        let ctx = Ctx {
            owner: 200,
            uuid: [5; 16],
            daddr: &daddr,
        };
        let blocks = build(&p, 128, &refs, &g, &ctx);
        (p, blocks, v)
    }

    #[test]
    fn thresholds_match_mkfs_observations() {
        // 10-character names: <= 18 short-form, about 120 block, about
        // 480 leaf, node beyond.
        assert_eq!(layout_of(18).0.format, Format::Short);
        assert_eq!(layout_of(19).0.format, Format::Block);
        assert_eq!(layout_of(100).0.format, Format::Block);
        assert_eq!(layout_of(130).0.format, Format::Leaf);
        assert_eq!(layout_of(480).0.format, Format::Leaf);
        assert_eq!(layout_of(520).0.format, Format::Node);
        let (p, _, _) = layout_of(3000);
        assert_eq!(p.format, Format::Node);
        assert_eq!(p.leaves, 6);
        assert_eq!(p.leaf_space, 7);
        assert_eq!(p.free, 1);
    }

    #[test]
    fn blocks_read_back() {
        let g = DirGeo::new(4096, 0, true);
        for n in [19, 100, 130, 480, 520, 3000, 70000] {
            let (p, blocks, v) = layout_of(n);
            let dablks = p.dablks(&g);
            assert_eq!(
                blocks.iter().map(|b| b.0).collect::<Vec<_>>().len(),
                dablks.len(),
                "n = {n}"
            );
            let data: Vec<u64> = (0..p.data.len() as u64).collect();
            let map: std::collections::HashMap<u64, Vec<u8>> = blocks.into_iter().collect();
            for d in &dablks {
                assert!(map.contains_key(d), "n = {n}: missing block {d}");
            }
            let (parent, got) = read_dir(&data, &g, 200, |d| Ok(map[&d].clone())).unwrap();
            assert_eq!(parent, 128);
            assert_eq!(got, v, "n = {n}");
            assert!(parse_data(&map[&0], &g, 201, 0).is_err());
        }
    }

    #[test]
    fn equal_hashes_stay_together() {
        let leaf: Vec<(u32, u32)> = [1, 2, 2, 2, 3, 4, 4, 5].iter().map(|&h| (h, 0)).collect();
        let runs = split_leaf(&leaf, 2, 6);
        assert_eq!(runs, vec![(0, 4), (4, 8)]);
        let runs = split_leaf(&leaf, 3, 3);
        for (s, e) in &runs {
            assert!(e - s <= 3);
        }
        assert_eq!(runs.last().unwrap().1, 8);
    }
}
