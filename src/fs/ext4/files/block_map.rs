//! Block maps: how ext2 and ext3 files (and ext4 inodes without
//! `EXTENTS_FL`) map their blocks, read into a [`FileMap`] and written
//! back from one.
//!
//! `i_block` holds 15 little-endian u32 block numbers: entries 0..11 map
//! logical blocks 0..11; entry 12 (`EXT2_IND_BLOCK`) points at an indirect
//! block of `apb = bs / 4` pointers mapping the next `apb` blocks; entry 13
//! (`EXT2_DIND_BLOCK`) at a block of pointers to such indirect blocks (the
//! next `apb²`); entry 14 (`EXT2_TIND_BLOCK`) one level more (`apb³`).
//! Logical block numbers are 32 bits, so nothing maps at or past
//! 2^32 − 1 whatever the block size. A 0 pointer is a hole, and an absent
//! indirect block makes its whole range a hole. Indirect blocks carry no
//! checksum, even with metadata_csum, and a block map has no unwritten
//! blocks (the kernel refuses to preallocate in one).
//!
//! Every indirect block is a [`Slot`]: the logical range it covers and its
//! height (1: points at data, 2: at height-1 blocks, 3: at height-2
//! blocks). A file needs exactly the slots whose range holds a mapped
//! block, and [`Indirect`] keeps each one's physical block. The writer
//! never edits indirect blocks in place: a change of the map within a
//! logical range marks that range dirty, and at sync the slots meeting a
//! dirty range are encoded whole from the map ([`encode_block`]), along
//! with the inode's `i_block` ([`encode_root`]). Slots outside every dirty
//! range are unchanged on disk and not rewritten, so appending to a large
//! file rewrites only the indirect blocks at its end.

use super::error::FileError;
use super::map::{FileMap, Run};
use crate::bytes::{read_u32le, write_u32le};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

/// Logical blocks mapped straight from `i_block` (`EXT2_NDIR_BLOCKS`).
pub const NDIR: u64 = 12;
/// One past the last logical block any file may map (block numbers are
/// 32 bits; the kernel's `EXT_MAX_BLOCKS`).
pub const LBLK_LIMIT: u64 = 0xFFFF_FFFF;

/// An indirect block's place in the map: the first logical block it
/// covers and its height (1 maps data blocks, 2 and 3 map the level
/// below). Ordered by start, the taller first: the order of a depth-first
/// walk from `i_block`, parents before their children.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slot {
    /// First logical block covered.
    pub start: u64,
    /// 1, 2 or 3.
    pub height: u8,
}

impl Ord for Slot {
    fn cmp(&self, o: &Self) -> Ordering {
        self.start
            .cmp(&o.start)
            .then_with(|| o.height.cmp(&self.height))
    }
}

impl PartialOrd for Slot {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// The shape of block maps for one block size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Pointers per indirect block (`bs / 4`).
    apb: u64,
}

impl Shape {
    /// The shape for blocks of `bs` bytes.
    pub fn new(bs: u64) -> Self {
        Shape {
            apb: (bs / 4).max(2),
        }
    }

    /// Pointers per indirect block.
    pub fn apb(&self) -> u64 {
        self.apb
    }

    /// Logical blocks under one slot of `height` (`apb^height`).
    pub fn span(&self, height: u8) -> u64 {
        self.apb.saturating_pow(u32::from(height))
    }

    /// The three indirect regions: first logical block, height of the
    /// slot at the top, and its `i_block` index.
    fn regions(&self) -> [(u64, u8, usize); 3] {
        let a = self.apb;
        [
            (NDIR, 1, 12),
            (NDIR + a, 2, 13),
            (NDIR + a + a.saturating_mul(a), 3, 14),
        ]
    }

    /// One past the last logical block a block map can address.
    pub fn end(&self) -> u64 {
        let (b, h, _) = self.regions()[2];
        b.saturating_add(self.span(h)).min(LBLK_LIMIT)
    }

    /// One past the last logical block of `s`.
    pub fn slot_end(&self, s: Slot) -> u64 {
        s.start.saturating_add(self.span(s.height))
    }

    /// The slot of `height` in the region starting at `base` that holds
    /// `lblk`.
    fn slot_at(&self, base: u64, lblk: u64, height: u8) -> Slot {
        let span = self.span(height);
        Slot {
            start: base + (lblk - base) / span * span,
            height,
        }
    }

    /// The region holding `lblk` (None for the direct blocks).
    fn region_of(&self, lblk: u64) -> Option<(u64, u8, usize)> {
        self.regions()
            .into_iter()
            .find(|&(b, h, _)| lblk >= b && lblk < b.saturating_add(self.span(h)))
    }

    /// The slots on `lblk`'s path from `i_block`, the top first (empty
    /// for the direct blocks).
    pub fn chain(&self, lblk: u64) -> Vec<Slot> {
        let Some((base, top, _)) = self.region_of(lblk) else {
            return Vec::new();
        };
        (1..=top)
            .rev()
            .map(|h| self.slot_at(base, lblk, h))
            .collect()
    }

    /// The slot pointing at `s` (None for a region's top slot).
    fn parent(&self, s: Slot) -> Option<Slot> {
        let (base, top, _) = self.region_of(s.start)?;
        (s.height < top).then(|| self.slot_at(base, s.start, s.height + 1))
    }

    /// Adds every slot meeting logical `a..b` to `out`.
    fn slots_meeting(&self, a: u64, b: u64, out: &mut BTreeSet<Slot>) {
        for (base, top, _) in self.regions() {
            let end = base.saturating_add(self.span(top));
            let (lo, hi) = (a.max(base), b.min(end));
            if lo >= hi {
                continue;
            }
            for h in 1..=top {
                let span = self.span(h);
                let mut c = (lo - base) / span;
                let last = (hi - 1 - base) / span;
                while c <= last {
                    out.insert(Slot {
                        start: base + c * span,
                        height: h,
                    });
                    c += 1;
                }
            }
        }
    }
}

/// The indirect blocks of one file: each slot's physical block, and the
/// logical ranges changed since the last sync.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Indirect {
    slots: BTreeMap<Slot, u64>,
    /// Changed logical ranges (sorted by start, merged when they touch
    /// the last one).
    dirty: Vec<(u64, u64)>,
}

impl Indirect {
    /// Indirect blocks held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True without indirect blocks.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The physical block of `s`.
    pub fn get(&self, s: Slot) -> Option<u64> {
        self.slots.get(&s).copied()
    }

    /// Every slot and its block, in walk order.
    pub fn iter(&self) -> impl Iterator<Item = (Slot, u64)> + '_ {
        self.slots.iter().map(|(&s, &b)| (s, b))
    }

    /// Gives `s` block `b`.
    pub fn insert(&mut self, s: Slot, b: u64) {
        self.slots.insert(s, b);
    }

    /// Drops `s`, returning its block.
    pub fn remove(&mut self, s: Slot) -> Option<u64> {
        self.slots.remove(&s)
    }

    /// Drops every slot, returning their blocks.
    pub fn clear(&mut self) -> Vec<u64> {
        self.dirty.clear();
        std::mem::take(&mut self.slots).into_values().collect()
    }

    /// Records that the map changed within logical `lo..hi`.
    pub fn mark(&mut self, lo: u64, hi: u64) {
        if lo >= hi {
            return;
        }
        if let Some(last) = self.dirty.last_mut() {
            if lo >= last.0 && lo <= last.1 {
                last.1 = last.1.max(hi);
                return;
            }
        }
        self.dirty.push((lo, hi));
    }

    /// The changed ranges, forgotten.
    pub fn take_dirty(&mut self) -> Vec<(u64, u64)> {
        std::mem::take(&mut self.dirty)
    }

    /// The slots held whose range meets logical `lo..hi`, in walk order.
    pub fn meeting(&self, shape: Shape, lo: u64, hi: u64) -> Vec<Slot> {
        if lo >= hi {
            return Vec::new();
        }
        // Slots starting before `lo` that reach into the range are on
        // `lo`'s chain; the rest start inside it.
        let mut out: Vec<Slot> = shape
            .chain(lo)
            .into_iter()
            .filter(|s| s.start < lo && self.slots.contains_key(s))
            .collect();
        let from = Slot {
            start: lo,
            height: u8::MAX,
        };
        out.extend(
            self.slots
                .range(from..)
                .map(|(&s, _)| s)
                .take_while(|s| s.start < hi),
        );
        out
    }
}

/// The slots a map needs, in walk order.
pub fn plan(shape: Shape, map: &FileMap) -> Vec<Slot> {
    needed_in(shape, map, 0, u64::MAX).into_iter().collect()
}

/// The slots meeting logical `lo..hi` that hold a mapped block of it.
fn needed_in(shape: Shape, map: &FileMap, lo: u64, hi: u64) -> BTreeSet<Slot> {
    let mut out = BTreeSet::new();
    for r in map.mapped_in(lo.max(NDIR), hi.min(shape.end())) {
        shape.slots_meeting(r.lblk, r.end(), &mut out);
    }
    out
}

/// What a change of the map within logical `lo..hi` does to the indirect
/// blocks, `map` being the map after it: the slots now needed that are
/// missing (in walk order, so a parent is placed before its children),
/// and the slots held that no longer map anything.
pub fn changes(
    shape: Shape,
    map: &FileMap,
    ind: &Indirect,
    lo: u64,
    hi: u64,
) -> (Vec<Slot>, Vec<(Slot, u64)>) {
    let add = needed_in(shape, map, lo, hi)
        .into_iter()
        .filter(|s| !ind.slots.contains_key(s))
        .collect();
    let drop = ind
        .meeting(shape, lo, hi)
        .into_iter()
        .filter(|&s| !map.any_mapped(s.start, shape.slot_end(s)))
        .filter_map(|s| ind.get(s).map(|b| (s, b)))
        .collect();
    (add, drop)
}

/// The largest file a block map holds, in blocks: what its pointers
/// address, less what keeps the data and indirect blocks countable in
/// `i_blocks` (32 bits of 512-byte units, or 48 bits of blocks with
/// `huge_file`), as the kernel's `s_bitmap_maxbytes`.
pub fn max_file_blocks(bs: u64, huge_file: bool) -> u64 {
    let shape = Shape::new(bs);
    let ppb = shape.apb;
    let bits = u64::from(bs.max(512).trailing_zeros());
    let mut upper = if huge_file {
        (1u64 << 48) - 1
    } else {
        ((1u64 << 32) - 1) >> (bits - 9)
    };
    let tree = shape.end();
    let meta = 1 + (1 + ppb) + (1 + ppb + ppb.saturating_mul(ppb));
    if tree.saturating_add(meta) <= upper {
        return tree;
    }
    let res = upper;
    upper = upper.saturating_sub(NDIR + ppb);
    let mut meta = 1;
    let pp = ppb.saturating_mul(ppb);
    if upper < pp {
        meta += 1 + upper.div_ceil(ppb);
        return res.saturating_sub(meta).min(tree);
    }
    meta += 1 + ppb;
    upper -= pp;
    meta += 1 + upper.div_ceil(ppb) + upper.div_ceil(pp);
    res.saturating_sub(meta).min(tree)
}

/// What a reader needs to know of the filesystem.
#[derive(Debug, Clone, Copy)]
pub struct Bounds<'a> {
    /// Block size.
    pub bs: u64,
    /// `s_first_data_block`: nothing maps at or below it.
    pub first_data_block: u64,
    /// `s_blocks_count`.
    pub blocks: u64,
    /// Blocks no file may map (superblocks, descriptor tables, bitmaps,
    /// inode tables): sorted, disjoint `start..end` ranges.
    pub zones: &'a [(u64, u64)],
}

impl Bounds<'_> {
    /// The first block of `a..b` inside a zone.
    fn zone_hit(&self, a: u64, b: u64) -> Option<u64> {
        let i = self.zones.partition_point(|z| z.1 <= a);
        let z = self.zones.get(i)?;
        (z.0 < b).then(|| z.0.max(a))
    }
}

/// A block map read from disk.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The file's mapping (all written).
    pub map: FileMap,
    /// Its indirect blocks (none dirty).
    pub ind: Indirect,
}

/// Where a pointer was found (for errors).
#[derive(Debug, Clone, Copy)]
enum At {
    /// `i_block[i]`.
    Inode(usize),
    /// Entry `i` of indirect block `b`.
    Entry(u64, u64),
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            At::Inode(i) => write!(f, "i_block[{i}]"),
            At::Entry(b, i) => write!(f, "indirect block {b}, entry {i}"),
        }
    }
}

struct Walker<'a, 'b> {
    ino: u32,
    shape: Shape,
    bounds: Bounds<'b>,
    read: &'a mut dyn FnMut(u64) -> Result<Vec<u8>, FileError>,
    seen: HashSet<u64>,
    runs: Vec<Run>,
    /// Where each run's first pointer was (for errors).
    run_at: Vec<At>,
    ind: BTreeMap<Slot, u64>,
}

impl Walker<'_, '_> {
    fn err(&self, at: impl fmt::Display, why: impl Into<String>) -> FileError {
        FileError::BlockMap {
            ino: self.ino,
            at: at.to_string(),
            why: why.into(),
        }
    }

    /// A pointer must name a block of the filesystem past the first data
    /// block, outside the group metadata.
    fn check(&self, at: At, p: u64) -> Result<(), FileError> {
        if p <= self.bounds.first_data_block || p >= self.bounds.blocks {
            return Err(self.err(
                at,
                format!(
                    "points at block {p}, outside the filesystem (blocks {}..{})",
                    self.bounds.first_data_block + 1,
                    self.bounds.blocks
                ),
            ));
        }
        Ok(())
    }

    fn data(&mut self, at: At, lblk: u64, p: u64) -> Result<(), FileError> {
        if lblk >= self.shape.end() {
            return Err(self.err(
                at,
                format!(
                    "maps logical block {lblk}, past the last a block map addresses ({})",
                    self.shape.end() - 1
                ),
            ));
        }
        self.check(at, p)?;
        if let Some(r) = self.runs.last_mut() {
            if r.end() == lblk && r.pblk + r.len == p {
                r.len += 1;
                return Ok(());
            }
        }
        self.runs.push(Run {
            lblk,
            len: 1,
            pblk: p,
            unwritten: false,
        });
        self.run_at.push(at);
        Ok(())
    }

    fn node(&mut self, at: At, s: Slot, p: u64) -> Result<(), FileError> {
        if s.start >= self.shape.end() {
            return Err(self.err(
                at,
                format!(
                    "an indirect block for logical blocks from {}, past the last a block map addresses ({})",
                    s.start,
                    self.shape.end() - 1
                ),
            ));
        }
        self.check(at, p)?;
        if self.bounds.zone_hit(p, p + 1).is_some() {
            return Err(self.err(at, format!("indirect block {p} lies in the group metadata")));
        }
        if !self.seen.insert(p) {
            return Err(self.err(at, format!("indirect block {p} is used twice")));
        }
        self.ind.insert(s, p);
        let buf = (self.read)(p)?;
        let apb = self.shape.apb;
        if (buf.len() as u64) < apb * 4 {
            return Err(self.err(at, format!("indirect block {p} is short")));
        }
        let child_span = self.shape.span(s.height - 1);
        for i in 0..apb {
            let c = u64::from(read_u32le(&buf, (i * 4) as usize));
            if c == 0 {
                continue;
            }
            let start = s.start + i * child_span;
            let here = At::Entry(p, i);
            if s.height == 1 {
                self.data(here, start, c)?;
            } else {
                let child = Slot {
                    start,
                    height: s.height - 1,
                };
                self.node(here, child, c)?;
            }
        }
        Ok(())
    }
}

/// Reads the block map of inode `ino` from its `i_block`, checking every
/// pointer (inside the filesystem, not in group metadata, no block used
/// twice, nothing past the last addressable logical block). `read`
/// returns a filesystem block.
pub fn read(
    ino: u32,
    i_block: &[u8; 60],
    bounds: Bounds<'_>,
    read: &mut dyn FnMut(u64) -> Result<Vec<u8>, FileError>,
) -> Result<Loaded, FileError> {
    let shape = Shape::new(bounds.bs);
    let mut w = Walker {
        ino,
        shape,
        bounds,
        read,
        seen: HashSet::new(),
        runs: Vec::new(),
        run_at: Vec::new(),
        ind: BTreeMap::new(),
    };
    for i in 0..NDIR as usize {
        let p = u64::from(read_u32le(i_block, i * 4));
        if p != 0 {
            w.data(At::Inode(i), i as u64, p)?;
        }
    }
    for (base, top, idx) in shape.regions() {
        let p = u64::from(read_u32le(i_block, idx * 4));
        if p != 0 {
            let s = Slot {
                start: base,
                height: top,
            };
            w.node(At::Inode(idx), s, p)?;
        }
    }
    // Data in group metadata, and blocks used twice (as data and as an
    // indirect block, or by two logical blocks).
    for (r, at) in w.runs.iter().zip(&w.run_at) {
        if let Some(b) = w.bounds.zone_hit(r.pblk, r.pblk + r.len) {
            return Err(w.err(
                at,
                format!(
                    "logical block {} points at block {b}, which lies in the group metadata",
                    r.lblk + (b - r.pblk)
                ),
            ));
        }
    }
    let mut phys: Vec<(u64, u64)> = w.runs.iter().map(|r| (r.pblk, r.len)).collect();
    phys.extend(w.ind.values().map(|&b| (b, 1)));
    phys.sort_unstable();
    for pair in phys.windows(2) {
        if pair[0].0 + pair[0].1 > pair[1].0 {
            return Err(w.err(
                "the whole map",
                format!("block {} is mapped twice", pair[1].0),
            ));
        }
    }
    let mut map = FileMap::new();
    for r in &w.runs {
        if !map.insert(*r) {
            return Err(w.err(
                "the whole map",
                format!("logical block {} is mapped twice", r.lblk),
            ));
        }
    }
    Ok(Loaded {
        map,
        ind: Indirect {
            slots: w.ind,
            dirty: Vec::new(),
        },
    })
}

/// Checks that the mapped blocks of logical `lo..hi` can be encoded: all
/// written, below [`Shape::end`], and each with every slot of its chain.
pub fn check_covered(
    shape: Shape,
    map: &FileMap,
    ind: &Indirect,
    lo: u64,
    hi: u64,
) -> Result<(), String> {
    for r in map.mapped_in(lo, hi) {
        if r.unwritten {
            return Err(format!(
                "logical block {} is unwritten, which a block map cannot hold",
                r.lblk
            ));
        }
        if r.end() > shape.end() {
            return Err(format!(
                "logical block {} is past the last a block map addresses",
                r.end() - 1
            ));
        }
        let mut need = BTreeSet::new();
        shape.slots_meeting(r.lblk.max(NDIR), r.end(), &mut need);
        if let Some(s) = need.iter().find(|s| !ind.slots.contains_key(s)) {
            return Err(format!(
                "no indirect block for logical blocks {}..{} (height {})",
                s.start,
                shape.slot_end(*s),
                s.height
            ));
        }
    }
    Ok(())
}

/// `i_block` for `map`: the direct pointers and the three top slots.
pub fn encode_root(shape: Shape, map: &FileMap, ind: &Indirect) -> Result<[u8; 60], String> {
    let mut b = [0u8; 60];
    for r in map.mapped_in(0, NDIR) {
        if r.unwritten {
            return Err(format!("logical block {} is unwritten", r.lblk));
        }
        for k in 0..r.len {
            let p = u32::try_from(r.pblk + k)
                .map_err(|_| format!("block {} does not fit a 32-bit pointer", r.pblk + k))?;
            write_u32le(&mut b, ((r.lblk + k) * 4) as usize, p);
        }
    }
    for (base, top, idx) in shape.regions() {
        let s = Slot {
            start: base,
            height: top,
        };
        if let Some(p) = ind.get(s) {
            let p =
                u32::try_from(p).map_err(|_| format!("block {p} does not fit a 32-bit pointer"))?;
            write_u32le(&mut b, idx * 4, p);
        }
    }
    Ok(b)
}

/// The contents of slot `s`'s block: pointers to the data of its range
/// (height 1) or to the child slots held.
pub fn encode_block(
    shape: Shape,
    s: Slot,
    map: &FileMap,
    ind: &Indirect,
) -> Result<Vec<u8>, String> {
    let apb = shape.apb;
    let mut b = vec![0u8; (apb * 4) as usize];
    let put = |b: &mut [u8], i: u64, p: u64| -> Result<(), String> {
        let p = u32::try_from(p).map_err(|_| format!("block {p} does not fit a 32-bit pointer"))?;
        write_u32le(b, (i * 4) as usize, p);
        Ok(())
    };
    if s.height == 1 {
        for r in map.mapped_in(s.start, shape.slot_end(s)) {
            if r.unwritten {
                return Err(format!("logical block {} is unwritten", r.lblk));
            }
            for k in 0..r.len {
                put(&mut b, r.lblk + k - s.start, r.pblk + k)?;
            }
        }
        return Ok(b);
    }
    let child_span = shape.span(s.height - 1);
    let from = Slot {
        start: s.start,
        height: u8::MAX,
    };
    for (&c, &p) in ind.slots.range(from..) {
        if c.start >= shape.slot_end(s) {
            break;
        }
        if c.height + 1 == s.height && shape.parent(c) == Some(s) {
            put(&mut b, (c.start - s.start) / child_span, p)?;
        }
    }
    Ok(b)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn run(lblk: u64, len: u64, pblk: u64) -> Run {
        Run {
            lblk,
            len,
            pblk,
            unwritten: false,
        }
    }

    /// Indirect blocks for every slot `map` needs, numbered from `at`.
    fn place(shape: Shape, map: &FileMap, at: u64) -> Indirect {
        let mut ind = Indirect::default();
        for (k, s) in plan(shape, map).into_iter().enumerate() {
            ind.insert(s, at + k as u64);
        }
        ind
    }

    /// Encodes every slot and `i_block`.
    fn encode_all(
        shape: Shape,
        map: &FileMap,
        ind: &Indirect,
    ) -> ([u8; 60], HashMap<u64, Vec<u8>>) {
        check_covered(shape, map, ind, 0, u64::MAX).unwrap();
        let root = encode_root(shape, map, ind).unwrap();
        let blocks = ind
            .iter()
            .map(|(s, b)| (b, encode_block(shape, s, map, ind).unwrap()))
            .collect();
        (root, blocks)
    }

    fn bounds(bs: u64, zones: &[(u64, u64)]) -> Bounds<'_> {
        Bounds {
            bs,
            first_data_block: 1,
            blocks: 1 << 31,
            zones,
        }
    }

    fn read_back(
        bs: u64,
        root: &[u8; 60],
        store: &HashMap<u64, Vec<u8>>,
        zones: &[(u64, u64)],
    ) -> Result<Loaded, FileError> {
        let mut rd = |b: u64| {
            Ok(store
                .get(&b)
                .cloned()
                .unwrap_or_else(|| vec![0u8; bs as usize]))
        };
        read(12, root, bounds(bs, zones), &mut rd)
    }

    fn round_trip(bs: u64, map: &FileMap) -> Indirect {
        let shape = Shape::new(bs);
        let ind = place(shape, map, 1 << 30);
        let (root, store) = encode_all(shape, map, &ind);
        let back = read_back(bs, &root, &store, &[]).unwrap();
        assert_eq!(&back.map, map, "bs {bs}");
        assert_eq!(back.ind, ind, "bs {bs}");
        ind
    }

    #[test]
    fn slots_sort_in_walk_order() {
        let shape = Shape::new(1024);
        let d = NDIR + 256;
        let t = d + 256 * 256;
        assert_eq!(shape.end(), t + 256 * 256 * 256);
        assert_eq!(shape.chain(5), vec![]);
        assert_eq!(
            shape.chain(12),
            vec![Slot {
                start: 12,
                height: 1
            }]
        );
        assert_eq!(
            shape.chain(d + 300),
            vec![
                Slot {
                    start: d,
                    height: 2
                },
                Slot {
                    start: d + 256,
                    height: 1
                }
            ]
        );
        let c = shape.chain(t + 256 * 256 + 5);
        assert_eq!(
            c,
            vec![
                Slot {
                    start: t,
                    height: 3
                },
                Slot {
                    start: t + 65536,
                    height: 2
                },
                Slot {
                    start: t + 65536,
                    height: 1
                },
            ]
        );
        assert!(c.windows(2).all(|w| w[0] < w[1]));
        // 4 KiB: 2^30 blocks through the triple indirect block, under
        // the 32-bit limit; 64 KiB: capped at it.
        assert_eq!(Shape::new(4096).end(), 12 + 1024 + (1 << 20) + (1 << 30));
        assert_eq!(Shape::new(65536).end(), LBLK_LIMIT);
    }

    #[test]
    fn maps_round_trip_across_every_boundary() {
        let bs = 1024;
        let d = NDIR + 256;
        let t = d + 256 * 256;
        // Direct only: no indirect block.
        let mut m = FileMap::new();
        m.insert(run(0, 12, 5000));
        assert!(round_trip(bs, &m).is_empty());
        // Every boundary: 11|12 (IND), 267|268 (DIND), the DIND's
        // second child, 65803|65804 (TIND), and a hole-ridden TIND.
        let mut m = FileMap::new();
        m.insert(run(3, 20, 10_000));
        m.insert(run(d - 2, 4, 20_000));
        m.insert(run(d + 256, 1, 30_000));
        m.insert(run(t - 1, 2, 40_000));
        m.insert(run(t + 65536 * 7 + 255, 2, 50_000));
        m.insert(run(t + 256 * 256 * 256 - 1, 1, 60_000));
        let ind = round_trip(bs, &m);
        let heights: Vec<u8> = ind.iter().map(|(s, _)| s.height).collect();
        // IND; DIND and its children 0, 1 and 255; TIND, its children 0,
        // 7, 255 and their children.
        assert_eq!(heights, vec![1, 2, 1, 1, 1, 3, 2, 1, 2, 1, 1, 2, 1]);
        // A dense file through the DIND (1 KiB blocks: 12 + 256 + 2
        // children).
        let mut m = FileMap::new();
        m.insert(run(0, 12 + 256 + 300, 100_000));
        assert_eq!(round_trip(bs, &m).len(), 1 + 1 + 2);
        // 4 KiB blocks, holes between runs, one at 4 GiB.
        let mut m = FileMap::new();
        m.insert(run(0, 1, 7));
        m.insert(run(1000, 100, 8000));
        m.insert(run(1 << 20, 3, 9000));
        round_trip(4096, &m);
        let mut empty = FileMap::new();
        assert!(round_trip(4096, &empty).is_empty());
        empty.insert(run(11, 1, 77));
        round_trip(4096, &empty);
    }

    #[test]
    fn changes_add_parents_first_and_drop_emptied_slots() {
        let shape = Shape::new(1024);
        let d = NDIR + 256;
        let mut m = FileMap::new();
        m.insert(run(0, 10, 1000));
        let mut ind = Indirect::default();
        m.insert(run(d + 5, 1, 2000));
        let (add, drop) = changes(shape, &m, &ind, d + 5, d + 6);
        assert_eq!(
            add,
            vec![
                Slot {
                    start: d,
                    height: 2
                },
                Slot {
                    start: d,
                    height: 1
                }
            ]
        );
        assert!(drop.is_empty());
        ind.insert(add[0], 3000);
        ind.insert(add[1], 3001);
        ind.mark(d + 5, d + 6);
        assert_eq!(ind.meeting(shape, d + 5, d + 6), add);
        assert_eq!(ind.meeting(shape, 0, 12), vec![]);
        m.remove(d + 5, d + 6);
        let (add, drop) = changes(shape, &m, &ind, d + 5, u64::MAX);
        assert!(add.is_empty());
        assert_eq!(drop.len(), 2);
        assert_eq!(ind.take_dirty(), vec![(d + 5, d + 6)]);
    }

    #[test]
    fn damaged_pointers_are_named_errors() {
        let bs = 1024;
        let shape = Shape::new(bs);
        let mut m = FileMap::new();
        m.insert(run(0, 300, 100_000));
        let ind = place(shape, &m, 200_000);
        let (root, store) = encode_all(shape, &m, &ind);
        let fails =
            |root: &[u8; 60], store: &HashMap<u64, Vec<u8>>, zones: &[(u64, u64)], want: &str| {
                let e = read_back(bs, root, store, zones).unwrap_err();
                let s = e.to_string();
                assert!(s.contains(want), "{s} (wanted {want})");
                assert!(s.contains("inode 12"), "{s}");
                assert_eq!(e.kind(), crate::fs::node::ErrorKind::Corrupt);
            };
        // A direct pointer past the end.
        let mut r = root;
        write_u32le(&mut r, 4, 0xFFFF_FFF0);
        fails(&r, &store, &[], "i_block[1]: points at block 4294967280");
        // Block 0 (below the first data block).
        let mut r = root;
        write_u32le(&mut r, 12 * 4, 1);
        fails(&r, &store, &[], "i_block[12]");
        // Into group metadata: data and indirect.
        fails(
            &root,
            &store,
            &[(100_005, 100_006)],
            "lies in the group metadata",
        );
        fails(
            &root,
            &store,
            &[(200_000, 200_001)],
            "indirect block 200000 lies in the group metadata",
        );
        // The DIND pointing at itself (a cycle), and at the IND block.
        let dind = ind
            .get(Slot {
                start: NDIR + 256,
                height: 2,
            })
            .unwrap();
        let mut s2 = store.clone();
        write_u32le(s2.get_mut(&dind).unwrap(), 4, dind as u32);
        fails(&root, &s2, &[], "is used twice");
        let mut s2 = store.clone();
        write_u32le(s2.get_mut(&dind).unwrap(), 4, 200_000);
        fails(&root, &s2, &[], "is used twice");
        // A data block mapped twice, and a data block that is an
        // indirect block.
        let indb = ind
            .get(Slot {
                start: NDIR,
                height: 1,
            })
            .unwrap();
        let mut s2 = store.clone();
        write_u32le(s2.get_mut(&indb).unwrap(), 0, 100_000);
        fails(&root, &s2, &[], "mapped twice");
        let mut s2 = store.clone();
        write_u32le(s2.get_mut(&indb).unwrap(), 0, dind as u32);
        fails(&root, &s2, &[], "mapped twice");
        // Arbitrary garbage in every indirect block never panics.
        for fill in [0x01u8, 0x7F, 0xFF] {
            let mut s2 = store.clone();
            for v in s2.values_mut() {
                v.fill(fill);
            }
            assert!(read_back(bs, &root, &s2, &[]).is_err());
        }
        // Past the last addressable block (64 KiB blocks: the TIND's
        // far end lies past 2^32).
        let bs = 65536;
        let shape = Shape::new(bs);
        let mut r = [0u8; 60];
        write_u32le(&mut r, 14 * 4, 500);
        let mut st = HashMap::new();
        let mut top = vec![0u8; bs as usize];
        write_u32le(&mut top, (shape.apb() - 1) as usize * 4, 501);
        st.insert(500u64, top);
        let e = read_back(bs, &r, &st, &[]).unwrap_err().to_string();
        assert!(e.contains("past the last"), "{e}");
    }

    #[test]
    fn max_file_sizes_are_the_kernels() {
        // 1 KiB: the pointers limit (about 16 GiB); 4 KiB without
        // huge_file: i_blocks' 2^32 sectors less the indirect blocks.
        assert_eq!(max_file_blocks(1024, false), 12 + 256 + 65536 + 16_777_216);
        assert_eq!(max_file_blocks(4096, false), 536_346_110);
        assert_eq!(
            max_file_blocks(4096, true),
            12 + 1024 + (1 << 20) + (1 << 30)
        );
        assert_eq!(max_file_blocks(65536, true), LBLK_LIMIT);
    }
}
