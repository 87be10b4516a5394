//! A directory in memory: its blocks as entry lists, a name index, and
//! which blocks changed. Changed blocks are written back whole, entries
//! packed in order (the kernel packs a block the same way when it
//! compacts one). Directories are written linear; a directory the kernel
//! indexed (htree) is un-indexed before its first change: every entry
//! collected, then the same blocks rewritten as linear ones, `.` and `..`
//! first (leftover blocks become empty blocks). e2fsck accepts linear
//! directories of any size, and the kernel reads and appends to them.

use super::dirent::{self, Entry};
use std::collections::HashMap;

/// One block.
#[derive(Debug, Clone, Default)]
pub struct DirBlock {
    /// Live entries in order (block 0 starts with `.` and `..`).
    pub entries: Vec<Entry>,
    /// Bytes the entries take.
    pub used: usize,
    /// Changed since loaded or written.
    pub dirty: bool,
}

impl DirBlock {
    /// A block holding `entries`.
    pub fn new(entries: Vec<Entry>, dirty: bool) -> Self {
        let used = dirent::used(&entries);
        DirBlock {
            entries,
            used,
            dirty,
        }
    }
}

/// A directory.
#[derive(Debug, Clone, Default)]
pub struct Dir {
    /// Block i of the directory (`None`: a hole, never used).
    pub blocks: Vec<Option<DirBlock>>,
    /// Name → block index (every name but `.` and `..`).
    index: HashMap<Vec<u8>, usize>,
    /// Space for entries in a block.
    capacity: usize,
    /// Read from an htree directory and not yet un-indexed.
    pub indexed: bool,
}

impl Dir {
    /// A directory of these blocks. Returns the first duplicate name as
    /// an error.
    pub fn new(
        blocks: Vec<Option<DirBlock>>,
        capacity: usize,
        indexed: bool,
    ) -> Result<Self, Vec<u8>> {
        let mut index = HashMap::new();
        for (i, b) in blocks.iter().enumerate() {
            let Some(b) = b else { continue };
            for e in &b.entries {
                if e.name == b"." || e.name == b".." {
                    continue;
                }
                if index.insert(e.name.clone(), i).is_some() {
                    return Err(e.name.clone());
                }
            }
        }
        Ok(Dir {
            blocks,
            index,
            capacity,
            indexed,
        })
    }

    /// The entry `name`.
    pub fn lookup(&self, name: &[u8]) -> Option<&Entry> {
        let i = *self.index.get(name)?;
        self.blocks
            .get(i)?
            .as_ref()?
            .entries
            .iter()
            .find(|e| e.name == name)
    }

    /// The parent (`..`), if block 0 has it.
    pub fn parent(&self) -> Option<u32> {
        self.blocks
            .first()?
            .as_ref()?
            .entries
            .iter()
            .find(|e| e.name == b"..")
            .map(|e| e.ino)
    }

    /// Every entry but `.` and `..`, in on-disk order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.blocks
            .iter()
            .flatten()
            .flat_map(|b| b.entries.iter())
            .filter(|e| e.name != b"." && e.name != b"..")
    }

    /// Number of entries but `.` and `..`.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when only `.` and `..` are left.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The first block with room for an entry named with `name_len`
    /// bytes, or `None` when a block must be added.
    pub fn room_for(&self, name_len: usize) -> Option<usize> {
        let need = dirent::rec_len(name_len);
        self.blocks
            .iter()
            .position(|b| b.as_ref().is_some_and(|b| b.used + need <= self.capacity))
    }

    /// Adds an entry to block `i` (which [`Dir::room_for`] chose).
    pub fn insert_in(&mut self, i: usize, e: Entry) {
        if let Some(Some(b)) = self.blocks.get_mut(i) {
            b.used += dirent::rec_len(e.name.len());
            self.index.insert(e.name.clone(), i);
            b.entries.push(e);
            b.dirty = true;
        }
    }

    /// Appends a new block holding `e`; returns its index.
    pub fn push_block(&mut self, e: Entry) -> usize {
        let i = self.blocks.len();
        self.index.insert(e.name.clone(), i);
        self.blocks.push(Some(DirBlock::new(vec![e], true)));
        i
    }

    /// Removes the entry `name`.
    pub fn remove(&mut self, name: &[u8]) -> Option<Entry> {
        let i = self.index.remove(name)?;
        let b = self.blocks.get_mut(i)?.as_mut()?;
        let k = b.entries.iter().position(|e| e.name == name)?;
        let e = b.entries.remove(k);
        b.used -= dirent::rec_len(e.name.len());
        b.dirty = true;
        Some(e)
    }

    /// Points the existing entry `name` at another inode and type.
    pub fn repoint(&mut self, name: &[u8], ino: u32, ft: u8) -> bool {
        let Some(&i) = self.index.get(name) else {
            return false;
        };
        let Some(Some(b)) = self.blocks.get_mut(i) else {
            return false;
        };
        for e in &mut b.entries {
            if e.name == name {
                e.ino = ino;
                e.ft = ft;
                b.dirty = true;
                return true;
            }
        }
        false
    }

    /// Points `..` at `parent`.
    pub fn set_parent(&mut self, parent: u32) {
        if let Some(Some(b)) = self.blocks.first_mut() {
            for e in &mut b.entries {
                if e.name == b".." {
                    e.ino = parent;
                    b.dirty = true;
                }
            }
        }
    }

    /// Rewrites an htree directory as linear blocks (the same blocks).
    pub fn unindex(&mut self) {
        if !self.indexed {
            return;
        }
        let all: Vec<Entry> = self
            .blocks
            .iter()
            .flatten()
            .flat_map(|b| b.entries.iter().cloned())
            .collect();
        let slots: Vec<usize> = (0..self.blocks.len())
            .filter(|&i| self.blocks[i].is_some())
            .collect();
        let mut packed: Vec<Vec<Entry>> = vec![Vec::new()];
        let mut used = 0;
        for e in all {
            let n = dirent::rec_len(e.name.len());
            if used + n > self.capacity {
                packed.push(Vec::new());
                used = 0;
            }
            used += n;
            if let Some(last) = packed.last_mut() {
                last.push(e);
            }
        }
        self.index.clear();
        let mut packed = packed.into_iter();
        for &i in &slots {
            let entries = packed.next().unwrap_or_default();
            for e in &entries {
                if e.name != b"." && e.name != b".." {
                    self.index.insert(e.name.clone(), i);
                }
            }
            self.blocks[i] = Some(DirBlock::new(entries, true));
        }
        // Greedy packing in order never needs more blocks than the
        // original packing of the same entries; anything left (which
        // cannot happen) goes into appended blocks rather than be lost.
        for entries in packed {
            let i = self.blocks.len();
            for e in &entries {
                self.index.insert(e.name.clone(), i);
            }
            self.blocks.push(Some(DirBlock::new(entries, true)));
        }
        self.indexed = false;
    }

    /// Marks every block written.
    pub fn clean(&mut self) {
        for b in self.blocks.iter_mut().flatten() {
            b.dirty = false;
        }
    }

    /// True when a block changed.
    pub fn is_dirty(&self) -> bool {
        self.blocks.iter().flatten().any(|b| b.dirty)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn e(ino: u32, name: &str) -> Entry {
        Entry {
            ino,
            ft: 1,
            name: name.as_bytes().to_vec(),
        }
    }

    #[test]
    fn insert_remove_lookup() {
        let b0 = DirBlock::new(vec![e(2, "."), e(2, "..")], false);
        let mut d = Dir::new(vec![Some(b0)], 4084, false).unwrap();
        assert!(d.is_empty());
        for i in 0..400 {
            let name = format!("file-{i:05}");
            match d.room_for(name.len()) {
                Some(k) => d.insert_in(k, e(100 + i, &name)),
                None => {
                    d.push_block(e(100 + i, &name));
                }
            }
        }
        assert_eq!(d.len(), 400);
        assert!(d.blocks.len() > 1);
        assert_eq!(d.lookup(b"file-00399").unwrap().ino, 499);
        assert_eq!(d.remove(b"file-00000").unwrap().ino, 100);
        assert!(d.lookup(b"file-00000").is_none());
        assert_eq!(d.entries().count(), 399);
        assert_eq!(d.parent(), Some(2));
        // Duplicates are refused at load.
        let dup = DirBlock::new(vec![e(2, "."), e(2, ".."), e(5, "x"), e(6, "x")], false);
        assert_eq!(Dir::new(vec![Some(dup)], 4084, false).unwrap_err(), b"x");
    }

    #[test]
    fn unindex_packs_into_the_same_blocks() {
        let root = DirBlock::new(vec![e(2, "."), e(2, "..")], false);
        let leaf = |from: u32| {
            DirBlock::new(
                (from..from + 100)
                    .map(|i| e(i, &format!("name-{i:04}")))
                    .collect(),
                false,
            )
        };
        let mut d = Dir::new(
            vec![
                Some(root),
                Some(DirBlock::default()),
                Some(leaf(1000)),
                Some(leaf(2000)),
            ],
            4084,
            true,
        )
        .unwrap();
        d.unindex();
        assert!(!d.indexed);
        assert_eq!(d.blocks.len(), 4);
        assert_eq!(d.len(), 200);
        let first = d.blocks[0].as_ref().unwrap();
        assert_eq!(first.entries[0].name, b".");
        assert_eq!(first.entries[1].name, b"..");
        assert!(d.blocks.iter().flatten().all(|b| b.dirty && b.used <= 4084));
        assert_eq!(d.lookup(b"name-2099").unwrap().ino, 2099);
    }
}
