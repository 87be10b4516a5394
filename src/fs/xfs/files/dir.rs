//! Directories in memory: the entry list read from any format, changed
//! entry by entry, and after each change given exactly the blocks of the
//! smallest format it fits (short-form, block, leaf or node); the blocks
//! themselves are laid out on sync.
//!
//! Entries live in slots (a removed entry leaves an empty slot until the
//! next sync compacts the list), with a name index for lookups and the
//! sums and data-block packing that decide the format kept up to date, so
//! that adding an entry costs the same in a directory of any size.

use super::super::bmap::Extent;
use super::super::dinode::format;
use super::super::dir2::layout::{self, Format, Packing, Plan, Sums};
use super::super::dir2::{DirError, Entry, block, sf};
use super::inode::Fork;
use super::{Undo, XfsFiles, corrupt_inode, kind_of};
use crate::blockdev::BlockDevice;
use crate::fs::node::{DirEntry, ErrorKind, FileType, NodeError, NodeResult};
use std::collections::HashMap;
use std::sync::Arc;

/// A directory's entries.
#[derive(Debug, Clone)]
pub struct DirState {
    /// The inode `..` names.
    pub parent: u64,
    /// Entries in order; `None` where one was removed.
    pub slots: Vec<Option<Entry>>,
    /// Slot of each name.
    pub index: HashMap<Vec<u8>, usize>,
    /// What decides the format.
    pub sums: Sums,
    /// The data-block packing of the live entries, when known.
    pub packing: Option<Packing>,
    /// Changed since the last sync.
    pub dirty: bool,
}

/// A directory change to roll back.
#[derive(Debug)]
pub enum DirUndo {
    /// An entry was appended.
    Push(u64),
    /// The entry in a slot was removed.
    Remove(u64, usize, Entry),
    /// The entry in a slot was replaced.
    Set(u64, usize, Entry),
    /// The parent, the packing and the dirty flag before a change.
    Meta(u64, u64, Option<Packing>, bool),
    /// A new directory was added to the live set.
    Created(u64),
    /// A freed directory was dropped from the live set.
    Dropped(u64, Box<DirState>),
}

impl DirState {
    pub(super) fn new(parent: u64, entries: Vec<Entry>, geo: &super::super::dir2::DirGeo) -> Self {
        let mut index = HashMap::with_capacity(entries.len());
        let mut sums = Sums::default();
        let mut packing = Packing::new(geo);
        for (i, e) in entries.iter().enumerate() {
            index.insert(e.name.clone(), i);
            sums.add(e, geo, 1);
            packing.push(i, geo.entsize(e.name.len()), geo);
        }
        DirState {
            parent,
            slots: entries.into_iter().map(Some).collect(),
            index,
            sums,
            packing: Some(packing),
            dirty: false,
        }
    }

    /// The live entries in order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.slots.iter().flatten()
    }

    /// The entry named `name`.
    pub fn get(&self, name: &[u8]) -> Option<&Entry> {
        self.index.get(name).and_then(|&i| self.slots[i].as_ref())
    }

    /// Drops empty slots.
    pub fn compact(&mut self) {
        if self.slots.len() == self.sums.n {
            return;
        }
        self.slots.retain(Option::is_some);
        self.index.clear();
        for (i, e) in self.slots.iter().flatten().enumerate() {
            self.index.insert(e.name.clone(), i);
        }
    }
}

/// A directory borrowed from the live set or read for a lookup.
pub enum DirView<'a> {
    /// Loaded (and maybe changed).
    Live(&'a DirState),
    /// Read from the device (and kept in the read cache).
    Read(Arc<DirState>),
}

impl std::ops::Deref for DirView<'_> {
    type Target = DirState;
    fn deref(&self) -> &DirState {
        match self {
            DirView::Live(d) => d,
            DirView::Read(d) => d,
        }
    }
}

/// Clean directories kept for lookups made through `&self`.
pub(super) const DIR_CACHE: usize = 64;

fn dir_err(ino: u64, e: DirError) -> NodeError {
    corrupt_inode(ino, e)
}

impl<D: BlockDevice> XfsFiles<D> {
    /// Reads directory `ino` from the device.
    fn load_dir(&self, ino: u64) -> NodeResult<DirState> {
        let st = self.inode_ro(ino)?;
        if st.kind()? != FileType::Directory {
            return Err(NodeError::new(ErrorKind::NotADirectory));
        }
        let geo = self.geo.dir;
        let (parent, entries) = match &st.fork {
            Fork::Local(b) => sf::parse(b, st.di.size, &geo).map_err(|e| dir_err(ino, e))?,
            Fork::Blocks { exts, .. } => {
                let leaf_first = geo.leaf_first() * geo.fsbcount;
                let mut dablks = Vec::new();
                for e in exts.iter().filter(|e| e.off < leaf_first) {
                    let end = e.end().min(leaf_first);
                    let mut d = e.off / geo.fsbcount;
                    while d * geo.fsbcount < end {
                        if dablks.last() != Some(&d) {
                            dablks.push(d);
                        }
                        d += 1;
                    }
                }
                block::read_dir(&dablks, &geo, ino, |dablk| {
                    self.read_dir_block(exts, dablk)
                        .map_err(|e| DirError::Block {
                            dablk,
                            detail: e.to_string(),
                        })
                })
                .map_err(|e| dir_err(ino, e))?
            }
            Fork::Dev(_) => return Err(corrupt_inode(ino, "a directory with a device fork")),
        };
        let mut seen = std::collections::HashSet::with_capacity(entries.len());
        for e in &entries {
            if !seen.insert(e.name.as_slice()) {
                return Err(corrupt_inode(
                    ino,
                    format!(
                        "the name {:?} appears twice",
                        String::from_utf8_lossy(&e.name)
                    ),
                ));
            }
        }
        Ok(DirState::new(parent, entries, &geo))
    }

    /// One directory block's bytes (its filesystem blocks in order).
    fn read_dir_block(&self, exts: &[Extent], dablk: u64) -> NodeResult<Vec<u8>> {
        let g = self.geo.dir;
        let mut out = Vec::with_capacity(g.blksize);
        for i in 0..g.fsbcount {
            let lblk = dablk * g.fsbcount + i;
            let pos = exts.partition_point(|e| e.end() <= lblk);
            let e = exts.get(pos).filter(|e| e.off <= lblk).ok_or_else(|| {
                corrupt_inode(0, format!("directory block {dablk} is not mapped"))
            })?;
            out.extend(self.read_fsb(e.start + (lblk - e.off))?);
        }
        Ok(out)
    }

    /// Directory `ino` for reading: live, or from the read cache (clean
    /// directories read by lookups), or read now.
    pub(super) fn dir_ro(&self, ino: u64) -> NodeResult<DirView<'_>> {
        if let Some(d) = self.dirs.get(&ino) {
            return Ok(DirView::Live(d));
        }
        if let Some(d) = self.dir_cache.borrow().get(&ino) {
            return Ok(DirView::Read(Arc::clone(d)));
        }
        let d = Arc::new(self.load_dir(ino)?);
        let mut cache = self.dir_cache.borrow_mut();
        if cache.len() >= DIR_CACHE {
            cache.clear();
        }
        cache.insert(ino, Arc::clone(&d));
        Ok(DirView::Read(d))
    }

    /// Loads directory `ino` into the live set (taking it from the read
    /// cache, which never holds a directory that is live).
    pub(super) fn dir_get(&mut self, ino: u64) -> NodeResult<&DirState> {
        let cached = self.dir_cache.get_mut().remove(&ino);
        if !self.dirs.contains_key(&ino) {
            let d = match cached {
                Some(d) => Arc::try_unwrap(d).unwrap_or_else(|a| (*a).clone()),
                None => self.load_dir(ino)?,
            };
            self.dirs.insert(ino, d);
        }
        self.dirs
            .get(&ino)
            .ok_or_else(|| NodeError::new(ErrorKind::NotFound))
    }

    /// The entry `name` of directory `dir`: (inode, file type).
    pub(super) fn dir_lookup(&mut self, dir: u64, name: &[u8]) -> NodeResult<Option<(u64, u8)>> {
        Ok(self.dir_get(dir)?.get(name).map(|e| (e.ino, e.ftype)))
    }

    /// Like [`Self::dir_lookup`], without loading into the live set.
    pub(super) fn dir_lookup_ro(&self, dir: u64, name: &[u8]) -> NodeResult<Option<(u64, u8)>> {
        Ok(self.dir_ro(dir)?.get(name).map(|e| (e.ino, e.ftype)))
    }

    /// Every entry of directory `dir`.
    pub(super) fn readdir_ro(&self, dir: u64) -> NodeResult<Vec<DirEntry>> {
        let d = self.dir_ro(dir)?;
        d.entries()
            .map(|e| {
                let kind = if e.ftype == super::super::dir2::ftype::UNKNOWN {
                    self.attr_of(e.ino)?.kind
                } else {
                    kind_of_ftype(dir, e.ftype)?
                };
                Ok(DirEntry {
                    name: e.name.clone(),
                    ino: e.ino,
                    kind,
                })
            })
            .collect()
    }

    fn dir_meta_undo(&mut self, dir: u64) {
        if let Some(d) = self.dirs.get(&dir) {
            let u = DirUndo::Meta(dir, d.parent, d.packing.clone(), d.dirty);
            self.log(Undo::Dir(u));
        }
    }

    fn dir_state_mut(&mut self, dir: u64) -> NodeResult<&mut DirState> {
        self.dir_get(dir)?;
        self.dir_meta_undo(dir);
        let d = self
            .dirs
            .get_mut(&dir)
            .ok_or_else(|| NodeError::new(ErrorKind::NotFound))?;
        d.dirty = true;
        Ok(d)
    }

    /// Adds an entry (the name must be new) and reshapes the directory.
    pub(super) fn dir_add(&mut self, dir: u64, e: Entry) -> NodeResult<()> {
        let g = self.geo.dir;
        let d = self.dir_state_mut(dir)?;
        let i = d.slots.len();
        d.index.insert(e.name.clone(), i);
        d.sums.add(&e, &g, 1);
        let live = d.sums.n - 1;
        if let Some(p) = d.packing.as_mut() {
            p.push(live, g.entsize(e.name.len()), &g);
        }
        d.slots.push(Some(e));
        self.log(Undo::Dir(DirUndo::Push(dir)));
        self.dir_reshape(dir)
    }

    /// Removes the entry `name` and reshapes the directory.
    pub(super) fn dir_remove(&mut self, dir: u64, name: &[u8]) -> NodeResult<Entry> {
        let g = self.geo.dir;
        let d = self.dir_state_mut(dir)?;
        let i = d
            .index
            .remove(name)
            .ok_or_else(|| NodeError::new(ErrorKind::NotFound))?;
        let e = d.slots[i]
            .take()
            .ok_or_else(|| NodeError::new(ErrorKind::NotFound))?;
        d.sums.add(&e, &g, -1);
        d.packing = None;
        self.log(Undo::Dir(DirUndo::Remove(dir, i, e.clone())));
        self.dir_reshape(dir)?;
        Ok(e)
    }

    /// Points the existing entry `name` at another inode.
    pub(super) fn dir_set(&mut self, dir: u64, name: &[u8], ino: u64, ftype: u8) -> NodeResult<()> {
        let g = self.geo.dir;
        let d = self.dir_state_mut(dir)?;
        let i = *d
            .index
            .get(name)
            .ok_or_else(|| NodeError::new(ErrorKind::NotFound))?;
        let slot = d.slots[i]
            .as_mut()
            .ok_or_else(|| NodeError::new(ErrorKind::NotFound))?;
        let old = slot.clone();
        let new = Entry {
            name: old.name.clone(),
            ino,
            ftype,
        };
        d.sums.add(&old, &g, -1);
        d.sums.add(&new, &g, 1);
        *slot = new;
        self.log(Undo::Dir(DirUndo::Set(dir, i, old)));
        self.dir_reshape(dir)
    }

    /// Changes a directory's `..`.
    pub(super) fn dir_set_parent(&mut self, dir: u64, parent: u64) -> NodeResult<()> {
        self.dir_state_mut(dir)?.parent = parent;
        self.dir_reshape(dir)
    }

    pub(super) fn undo_dir(&mut self, u: DirUndo) {
        let g = self.geo.dir;
        match u {
            DirUndo::Push(dir) => {
                if let Some(d) = self.dirs.get_mut(&dir) {
                    if let Some(Some(e)) = d.slots.pop() {
                        d.index.remove(&e.name);
                        d.sums.add(&e, &g, -1);
                    }
                }
            }
            DirUndo::Remove(dir, i, e) => {
                if let Some(d) = self.dirs.get_mut(&dir) {
                    d.index.insert(e.name.clone(), i);
                    d.sums.add(&e, &g, 1);
                    d.slots[i] = Some(e);
                }
            }
            DirUndo::Set(dir, i, old) => {
                if let Some(d) = self.dirs.get_mut(&dir) {
                    if let Some(cur) = d.slots[i].take() {
                        d.sums.add(&cur, &g, -1);
                    }
                    d.sums.add(&old, &g, 1);
                    d.slots[i] = Some(old);
                }
            }
            DirUndo::Created(dir) => {
                self.dirs.remove(&dir);
            }
            DirUndo::Dropped(dir, d) => {
                self.dirs.insert(dir, *d);
            }
            DirUndo::Meta(dir, parent, packing, dirty) => {
                if let Some(d) = self.dirs.get_mut(&dir) {
                    d.parent = parent;
                    d.packing = packing;
                    d.dirty = dirty;
                }
            }
        }
    }

    /// The layout the directory's current entries take.
    pub(super) fn dir_plan(&mut self, dir: u64) -> NodeResult<Plan> {
        let fork_size = self.inode_get(dir)?.di.data_fork_size();
        let g = self.geo.dir;
        let d = self
            .dirs
            .get_mut(&dir)
            .ok_or_else(|| NodeError::new(ErrorKind::NotFound))?;
        if d.packing.is_none() {
            let live: Vec<&Entry> = d.slots.iter().flatten().collect();
            d.packing = Some(Packing::of(&live, &g));
        }
        let packing = d
            .packing
            .as_ref()
            .ok_or_else(|| NodeError::new(ErrorKind::NotFound))?;
        Ok(layout::choose(d.parent, &d.sums, packing, &g, fork_size))
    }

    /// Gives directory `dir` the blocks of its current layout: frees what
    /// it no longer needs, allocates what is missing (near its other
    /// blocks), and sets its size and format.
    fn dir_reshape(&mut self, dir: u64) -> NodeResult<()> {
        let plan = self.dir_plan(dir)?;
        let g = self.geo.dir;
        if plan.format == Format::Short {
            let bytes = {
                let d = self.dir_get(dir)?;
                let live: Vec<&Entry> = d.entries().collect();
                sf::build(d.parent, &live, &g)
            };
            let old = self.inode_get(dir)?.exts().to_vec();
            if !old.is_empty() {
                self.set_extents(dir, Vec::new())?;
                for e in &old {
                    self.free_fsb(e.start, e.len)?;
                }
            }
            let st = self.inode_mut(dir)?;
            st.di.size = bytes.len() as u64;
            st.di.format = format::LOCAL;
            st.fork = Fork::Local(bytes);
            st.recount();
            return Ok(());
        }
        // Wanted filesystem blocks (directory blocks × fsbcount).
        let want: Vec<u64> = plan
            .dablks(&g)
            .into_iter()
            .flat_map(|d| (0..g.fsbcount).map(move |i| d * g.fsbcount + i))
            .collect();
        let old = self.inode_get(dir)?.exts().to_vec();
        let mut keep = Vec::with_capacity(old.len());
        let mut to_free = Vec::new();
        // Keep the mapped parts of wanted ranges; free the rest.
        for e in &old {
            let mut run: Option<Extent> = None;
            for lblk in e.off..e.end() {
                let wanted = want.binary_search(&lblk).is_ok();
                let phys = e.start + (lblk - e.off);
                match (&mut run, wanted) {
                    (Some(r), true) if r.end() == lblk => r.len += 1,
                    (_, true) => {
                        if let Some(r) = run.take() {
                            keep.push(r);
                        }
                        run = Some(Extent {
                            off: lblk,
                            start: phys,
                            len: 1,
                            unwritten: false,
                        });
                    }
                    (_, false) => {
                        if let Some(r) = run.take() {
                            keep.push(r);
                        }
                        to_free.push((phys, 1u64));
                    }
                }
            }
            if let Some(r) = run.take() {
                keep.push(r);
            }
        }
        let mapped = |lblk: u64, v: &[Extent]| {
            let p = v.partition_point(|e| e.end() <= lblk);
            v.get(p).is_some_and(|e| e.off <= lblk)
        };
        let missing: Vec<u64> = want
            .iter()
            .copied()
            .filter(|&l| !mapped(l, &keep))
            .collect();
        if missing.is_empty() && to_free.is_empty() {
            let st = self.inode_mut(dir)?;
            st.di.size = plan.size;
            return Ok(());
        }
        for (phys, len) in to_free {
            self.free_fsb(phys, len)?;
        }
        // Allocate missing blocks in runs of consecutive file blocks.
        let (agno, agino) = self.geo.ino_to_ag(dir);
        let mut i = 0;
        while i < missing.len() {
            let mut j = i + 1;
            while j < missing.len() && missing[j] == missing[j - 1] + 1 {
                j += 1;
            }
            let mut lblk = missing[i];
            let mut left = (j - i) as u64;
            while left > 0 {
                // Next to the block before, else near the inode.
                let prev = keep
                    .iter()
                    .rev()
                    .find(|e| e.end() <= lblk)
                    .map(|e| e.start + e.len);
                let (gag, goal) = match prev {
                    Some(p) => {
                        let (a, b) = self.geo.fsb_to_ag(p);
                        (a, Some(b))
                    }
                    None => (agno, Some(agino >> self.geo.inopblog)),
                };
                let mut req = super::alloc::AllocReq::near(gag, goal, left);
                // A directory block must be contiguous.
                req.minlen = g.fsbcount as u32;
                let (a, b, n) = self.alloc(req)?;
                let n = u64::from(n) / g.fsbcount * g.fsbcount;
                let e = Extent {
                    off: lblk,
                    start: self.geo.ag_to_fsb(a, b),
                    len: n,
                    unwritten: false,
                };
                let pos = keep.partition_point(|x| x.off < lblk);
                keep.insert(pos, e);
                lblk += n;
                left -= n;
            }
            i = j;
        }
        self.set_extents(dir, keep)?;
        let st = self.inode_mut(dir)?;
        st.di.size = plan.size;
        st.di.format = format::EXTENTS;
        Ok(())
    }
}

/// The file type of a directory entry's type byte.
pub(super) fn kind_of_ftype(dir: u64, ftype: u8) -> NodeResult<FileType> {
    use super::super::dir2::ftype as ft;
    Ok(match ftype {
        ft::REG_FILE => FileType::Regular,
        ft::DIR => FileType::Directory,
        ft::CHRDEV => FileType::CharDevice,
        ft::BLKDEV => FileType::BlockDevice,
        ft::FIFO => FileType::Fifo,
        ft::SOCK => FileType::Socket,
        ft::SYMLINK => FileType::Symlink,
        _ => {
            return Err(corrupt_inode(
                dir,
                format!("directory entry with file type {ftype}"),
            ));
        }
    })
}

/// Checks that an entry's type matches its inode's mode.
pub(super) fn check_ftype(dir: u64, ftype: u8, mode: u16, ino: u64) -> NodeResult<()> {
    let k = kind_of(ino, mode)?;
    if kind_of_ftype(dir, ftype)? != k {
        return Err(corrupt_inode(
            dir,
            format!("entry for inode {ino} has the wrong file type"),
        ));
    }
    Ok(())
}
