//! Extent trees of any depth: read (every node's header, order and range
//! checked, tree blocks' checksums verified, each tree block used once) and
//! built from a file's whole extent list.
//!
//! A node is a 12-byte header `{magic 0xF30A, entries, max, depth,
//! generation}` and `entries` 12-byte records: leaf extents `{ee_block
//! u32, ee_len u16, ee_start_hi u16, ee_start_lo u32}` at depth 0, index
//! records `{ei_block u32, ei_leaf_lo u32, ei_leaf_hi u16, unused u16}`
//! above. The root lives in the inode's 60-byte `i_block` (max 4); a tree
//! block holds `(bs − 12) / 12` records and, after them, a CRC32C of the
//! block so far seeded with the inode's checksum seed. `ee_len` above
//! 32768 marks an unwritten extent of `ee_len − 32768` blocks. The kernel
//! allows depth 5 at most.
//!
//! Trees are never edited in place: the writer rebuilds a changed file's
//! tree from its complete extent list, reusing the file's tree blocks.
//! Each level has as few nodes as its entries need, with the entries
//! spread evenly over them. (Packing every node full, as the kernel does
//! when it appends, would make the kernel split a full leaf at its first
//! write into a preallocated range; with a full root that adds a level
//! whose leaves e2fsck then reports as "could be narrower". Even nodes
//! keep some room in each, and e2fsck's narrowness test, unused slots of
//! a level fewer than one node's worth, holds either way.)

use super::error::FileError;
use super::map::{FileMap, Run};
use crate::bytes::{read_u16le, read_u32le, write_u32le};
use crate::fs::ext4::checksum::crc32c_raw;
use crate::fs::ext4::extent::{EXTENT_MAGIC, Extent, write_header, write_index, write_leaf};
use std::collections::HashSet;

/// The deepest tree the kernel accepts.
pub const MAX_DEPTH: u16 = 5;
/// Records in the inode's root.
pub const ROOT_ENTRIES: usize = 4;
/// One past the last logical block a file may map (`EXT_MAX_BLOCKS`).
pub const MAX_LBLK_END: u64 = 0xFFFF_FFFF;

/// Records in a tree block of `bs` bytes.
pub fn entries_per_block(bs: u64) -> usize {
    (bs as usize).saturating_sub(12) / 12
}

/// Tree blocks a file of `n` on-disk extents needs (0 when they fit in the
/// inode).
pub fn tree_blocks_for(n: u64, bs: u64) -> u64 {
    let per = entries_per_block(bs).max(1) as u64;
    if n <= ROOT_ENTRIES as u64 {
        return 0;
    }
    let mut level = n.div_ceil(per);
    let mut total = level;
    while level > ROOT_ENTRIES as u64 {
        level = level.div_ceil(per);
        total += level;
    }
    total
}

/// A tree read from disk.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The file's mapping.
    pub map: FileMap,
    /// The tree's blocks (index and leaf nodes below the root).
    pub tree_blocks: Vec<u64>,
}

/// What a reader needs to know of the filesystem.
#[derive(Debug, Clone, Copy)]
pub struct TreeGeometry {
    /// Block size.
    pub bs: u64,
    /// `s_first_data_block`: nothing maps below it.
    pub first_data_block: u64,
    /// `s_blocks_count`.
    pub blocks: u64,
}

struct Walker<'a> {
    ino: u32,
    geo: TreeGeometry,
    seed: Option<u32>,
    read: &'a mut dyn FnMut(u64) -> Result<Vec<u8>, FileError>,
    seen: HashSet<u64>,
    runs: Vec<Run>,
    tree_blocks: Vec<u64>,
}

impl Walker<'_> {
    fn err(&self, at: Option<u64>, why: impl Into<String>) -> FileError {
        FileError::ExtentTree {
            ino: self.ino,
            at: match at {
                None => "root (in the inode)".into(),
                Some(b) => format!("block {b}"),
            },
            why: why.into(),
        }
    }

    /// Walks the node in `buf` (the root when `at` is None), whose
    /// extents must lie in logical `lo..hi`.
    fn node(
        &mut self,
        buf: &[u8],
        at: Option<u64>,
        want_depth: Option<u16>,
        lo: u64,
        hi: u64,
    ) -> Result<(), FileError> {
        if buf.len() < 12 || read_u16le(buf, 0) != EXTENT_MAGIC {
            let m = if buf.len() >= 2 {
                read_u16le(buf, 0)
            } else {
                0
            };
            return Err(self.err(at, format!("bad magic {m:#06x} (expected 0xf30a)")));
        }
        let entries = usize::from(read_u16le(buf, 2));
        let max = usize::from(read_u16le(buf, 4));
        let depth = read_u16le(buf, 6);
        let want_max = if at.is_none() {
            ROOT_ENTRIES
        } else {
            entries_per_block(self.geo.bs)
        };
        if max != want_max {
            return Err(self.err(at, format!("eh_max is {max}, expected {want_max}")));
        }
        if entries > max {
            return Err(self.err(at, format!("{entries} entries, more than eh_max {max}")));
        }
        if depth > MAX_DEPTH {
            return Err(self.err(at, format!("depth {depth} exceeds {MAX_DEPTH}")));
        }
        if let Some(d) = want_depth {
            if depth != d {
                return Err(self.err(at, format!("depth {depth}, expected {d}")));
            }
        }
        if 12 + 12 * entries > buf.len() {
            return Err(self.err(at, "entries overrun the node"));
        }
        if depth == 0 {
            let mut prev_end = lo;
            for i in 0..entries {
                let e = &buf[12 + 12 * i..24 + 12 * i];
                let lblk = u64::from(read_u32le(e, 0));
                let raw = u64::from(read_u16le(e, 4));
                let pblk = u64::from(read_u16le(e, 6)) << 32 | u64::from(read_u32le(e, 8));
                if raw == 0 {
                    return Err(self.err(at, format!("extent {i} has length 0")));
                }
                let unwritten = raw > 32768;
                let len = if unwritten { raw - 32768 } else { raw };
                if lblk < prev_end {
                    return Err(self.err(
                        at,
                        format!("extent {i} (logical {lblk}) overlaps or is out of order"),
                    ));
                }
                if lblk + len > hi {
                    return Err(self.err(
                        at,
                        format!("extent {i} (logical {lblk}+{len}) is outside its index range"),
                    ));
                }
                if pblk <= self.geo.first_data_block
                    || pblk.checked_add(len).is_none_or(|e| e > self.geo.blocks)
                {
                    return Err(self.err(
                        at,
                        format!(
                            "extent {i} maps blocks {pblk}+{len}, outside the filesystem ({} blocks)",
                            self.geo.blocks
                        ),
                    ));
                }
                self.runs.push(Run {
                    lblk,
                    len,
                    pblk,
                    unwritten,
                });
                prev_end = lblk + len;
            }
            return Ok(());
        }
        if entries == 0 {
            return Err(self.err(at, format!("index node at depth {depth} has no entries")));
        }
        let mut idx = Vec::with_capacity(entries);
        for i in 0..entries {
            let e = &buf[12 + 12 * i..24 + 12 * i];
            let lblk = u64::from(read_u32le(e, 0));
            let child = u64::from(read_u32le(e, 4)) | u64::from(read_u16le(e, 8)) << 32;
            idx.push((lblk, child));
        }
        for (i, &(lblk, child)) in idx.iter().enumerate() {
            let next = idx.get(i + 1).map_or(hi, |x| x.0);
            if lblk < lo || lblk >= next || lblk >= hi {
                return Err(self.err(
                    at,
                    format!("index {i} (logical {lblk}) is out of order or outside its range"),
                ));
            }
            if child <= self.geo.first_data_block || child >= self.geo.blocks {
                return Err(self.err(
                    at,
                    format!("index {i} points at block {child}, outside the filesystem"),
                ));
            }
            if !self.seen.insert(child) {
                return Err(self.err(at, format!("index {i} points at block {child} twice")));
            }
            self.tree_blocks.push(child);
            let b = (self.read)(child)?;
            self.check_csum(&b, child)?;
            self.node(&b, Some(child), Some(depth - 1), lblk, next)?;
        }
        Ok(())
    }

    fn check_csum(&self, b: &[u8], block: u64) -> Result<(), FileError> {
        let Some(seed) = self.seed else { return Ok(()) };
        let tail = 12 + 12 * entries_per_block(self.geo.bs);
        if b.len() < tail + 4 {
            return Err(self.err(Some(block), "block too small for its checksum"));
        }
        let stored = read_u32le(b, tail);
        let computed = crc32c_raw(seed, &b[..tail]);
        if stored != computed {
            return Err(self.err(
                Some(block),
                format!("checksum {stored:#010x} does not match (computed {computed:#010x})"),
            ));
        }
        Ok(())
    }
}

/// Reads the tree rooted in `root` (an inode's `i_block`) of inode `ino`.
/// `seed` is the inode's checksum seed with metadata_csum; `read` returns
/// a filesystem block.
pub fn read_tree(
    ino: u32,
    root: &[u8; 60],
    seed: Option<u32>,
    geo: TreeGeometry,
    read: &mut dyn FnMut(u64) -> Result<Vec<u8>, FileError>,
) -> Result<Loaded, FileError> {
    let mut w = Walker {
        ino,
        geo,
        seed,
        read,
        seen: HashSet::new(),
        runs: Vec::new(),
        tree_blocks: Vec::new(),
    };
    w.node(root, None, None, 0, MAX_LBLK_END)?;
    let mut map = FileMap::new();
    for r in &w.runs {
        if !map.insert(*r) {
            return Err(FileError::ExtentTree {
                ino,
                at: "tree".into(),
                why: format!("extent at logical {} overlaps another", r.lblk),
            });
        }
    }
    Ok(Loaded {
        map,
        tree_blocks: w.tree_blocks,
    })
}

/// `v` cut into as few pieces of at most `per` as possible, their sizes
/// differing by at most one.
fn even_chunks<T>(v: &[T], per: usize) -> Vec<&[T]> {
    let per = per.max(1);
    let k = v.len().div_ceil(per).max(1);
    let (base, extra) = (v.len() / k, v.len() % k);
    let mut out = Vec::with_capacity(k);
    let mut at = 0;
    for i in 0..k {
        let n = base + usize::from(i < extra);
        out.push(&v[at..at + n]);
        at += n;
    }
    out
}

/// A built tree: the inode's new `i_block` and every tree block's bytes.
#[derive(Debug, Clone)]
pub struct Built {
    /// The root.
    pub root: [u8; 60],
    /// (block number, contents) of each tree block.
    pub blocks: Vec<(u64, Vec<u8>)>,
}

/// Builds the tree for `extents` (sorted, from [`FileMap::disk_extents`])
/// into `tree_blocks` (exactly [`tree_blocks_for`] of them, used in
/// ascending order: leaves first, then each index level). Returns `None`
/// when the count of blocks is wrong.
pub fn build(extents: &[Extent], tree_blocks: &[u64], bs: u64, seed: Option<u32>) -> Option<Built> {
    if tree_blocks.len() as u64 != tree_blocks_for(extents.len() as u64, bs) {
        return None;
    }
    let mut root = [0u8; 60];
    if extents.len() <= ROOT_ENTRIES {
        write_header(&mut root, extents.len() as u16, ROOT_ENTRIES as u16, 0);
        for (i, e) in extents.iter().enumerate() {
            write_leaf(&mut root[12 + 12 * i..], e);
        }
        return Some(Built {
            root,
            blocks: Vec::new(),
        });
    }
    let per = entries_per_block(bs);
    let mut free = {
        let mut v = tree_blocks.to_vec();
        v.sort_unstable();
        v.into_iter()
    };
    let mut blocks = Vec::with_capacity(tree_blocks.len());
    let finish = |b: &mut Vec<u8>| {
        if let Some(seed) = seed {
            let tail = 12 + 12 * per;
            let c = crc32c_raw(seed, &b[..tail]);
            write_u32le(b, tail, c);
        }
    };
    // Leaves.
    let mut index: Vec<(u32, u64)> = Vec::new();
    for chunk in even_chunks(extents, per) {
        let at = free.next()?;
        let mut b = vec![0u8; bs as usize];
        write_header(&mut b, chunk.len() as u16, per as u16, 0);
        for (i, e) in chunk.iter().enumerate() {
            write_leaf(&mut b[12 + 12 * i..], e);
        }
        finish(&mut b);
        index.push((chunk.first()?.ee_block, at));
        blocks.push((at, b));
    }
    let mut depth: u16 = 1;
    while index.len() > ROOT_ENTRIES {
        let mut up = Vec::new();
        for chunk in even_chunks(&index, per) {
            let at = free.next()?;
            let mut b = vec![0u8; bs as usize];
            write_header(&mut b, chunk.len() as u16, per as u16, depth);
            for (i, &(l, c)) in chunk.iter().enumerate() {
                write_index(&mut b[12 + 12 * i..], l, c);
            }
            finish(&mut b);
            up.push((chunk.first()?.0, at));
            blocks.push((at, b));
        }
        index = up;
        depth += 1;
    }
    write_header(&mut root, index.len() as u16, ROOT_ENTRIES as u16, depth);
    for (i, &(l, c)) in index.iter().enumerate() {
        write_index(&mut root[12 + 12 * i..], l, c);
    }
    Some(Built { root, blocks })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn map_of(n: u64, unwritten: bool) -> FileMap {
        let mut m = FileMap::new();
        for i in 0..n {
            // Physically discontiguous so that each run is one extent.
            m.insert(Run {
                lblk: i * 10,
                len: 5,
                pblk: 1000 + i * 20,
                unwritten,
            });
        }
        m
    }

    fn round_trip(n: u64, bs: u64) {
        let m = map_of(n, n % 2 == 0);
        let ex = m.disk_extents();
        let need = tree_blocks_for(ex.len() as u64, bs);
        let tb: Vec<u64> = (0..need).map(|i| 500_000 + i).collect();
        let built = build(&ex, &tb, bs, Some(0x1234)).unwrap();
        let store: HashMap<u64, Vec<u8>> = built.blocks.iter().cloned().collect();
        let geo = TreeGeometry {
            bs,
            first_data_block: 0,
            blocks: 1 << 30,
        };
        let mut read = |b: u64| Ok(store.get(&b).cloned().unwrap());
        let back = read_tree(12, &built.root, Some(0x1234), geo, &mut read).unwrap();
        assert_eq!(back.map, m, "{n} extents, bs {bs}");
        let mut got = back.tree_blocks.clone();
        got.sort_unstable();
        assert_eq!(got, tb);
    }

    #[test]
    fn trees_of_every_depth_read_back() {
        for n in [0, 1, 4, 5, 340, 341, 1360, 1361, 5000] {
            round_trip(n, 4096);
        }
        // 1 KiB blocks: 84 records per block, depth 3 at 84*84*4+1.
        for n in [85, 84 * 4 + 1, 84 * 84 * 4 + 1] {
            round_trip(n, 1024);
        }
        assert_eq!(tree_blocks_for(1296, 4096), 4);
        let v: Vec<u32> = (0..1233).collect();
        let c = even_chunks(&v, 340);
        assert_eq!(
            c.iter().map(|c| c.len()).collect::<Vec<_>>(),
            vec![309, 308, 308, 308]
        );
        assert_eq!(tree_blocks_for(1361, 4096), 5 + 1);
    }

    #[test]
    fn corrupt_checksum_and_shared_blocks_refused() {
        let m = map_of(10, false);
        let ex = m.disk_extents();
        let built = build(&ex, &[77], 4096, Some(1)).unwrap();
        let mut blk = built.blocks[0].1.clone();
        blk[20] ^= 1;
        let geo = TreeGeometry {
            bs: 4096,
            first_data_block: 0,
            blocks: 1 << 20,
        };
        let mut read = |_| Ok(blk.clone());
        let e = read_tree(12, &built.root, Some(1), geo, &mut read).unwrap_err();
        assert!(e.to_string().contains("checksum"), "{e}");
        // A root whose two index entries name one block.
        let mut root = built.root;
        crate::fs::ext4::extent::write_header(&mut root, 2, 4, 1);
        write_index(&mut root[24..], 100, 77);
        let good = built.blocks[0].1.clone();
        let mut read = |_| Ok(good.clone());
        assert!(read_tree(12, &root, Some(1), geo, &mut read).is_err());
    }
}
