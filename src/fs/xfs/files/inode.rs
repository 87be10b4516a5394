//! Inodes in memory: the on-disk inode with its data fork decoded (a
//! device number, local bytes, or an extent list with the blocks of its
//! bmap btree), loaded on demand and checked; attributes as `stat` shows
//! them; and keeping a fork's bmap btree at exactly the blocks its extent
//! count needs.

use super::super::bmap::{self, BmapError, Extent};
use super::super::dinode::{Dinode, flags, flags2, format};
use super::alloc::AllocReq;
use super::{Undo, XfsFiles, corrupt_inode, kind_of, unsupported};
use crate::blockdev::BlockDevice;
use crate::fs::node::{Attr, ErrorKind, FileType, NodeError, NodeResult, Timespec};
use std::borrow::Cow;

/// A decoded data fork.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fork {
    /// A device number (`xfs_dev_t`: major << 18 | minor).
    Dev(u32),
    /// Bytes in the inode: a symlink target or a short-form directory.
    Local(Vec<u8>),
    /// Extents, sorted by file offset, and the bmap btree's blocks.
    Blocks {
        /// The mappings.
        exts: Vec<Extent>,
        /// Blocks of the bmap btree (segmented), empty in extents format.
        bmbt: Vec<u64>,
    },
}

/// An inode in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InodeState {
    /// The inode as read (its fork area is rebuilt from `fork` on sync).
    pub di: Dinode,
    /// The data fork.
    pub fork: Fork,
    /// Blocks of the attribute fork (counted in `di_nblocks`).
    pub attr_blocks: u64,
    /// Changed since the last sync.
    pub dirty: bool,
    /// Freed since the last sync: written back as a free inode.
    pub freed: bool,
}

impl InodeState {
    /// The file type.
    pub fn kind(&self) -> NodeResult<FileType> {
        kind_of(self.di.ino, self.di.mode)
    }

    /// The extents of a block-mapped fork (empty otherwise).
    pub fn exts(&self) -> &[Extent] {
        match &self.fork {
            Fork::Blocks { exts, .. } => exts,
            _ => &[],
        }
    }

    /// Recomputes `di_nblocks` and `di_nextents` from the fork.
    pub fn recount(&mut self) {
        let (data, n) = match &self.fork {
            Fork::Blocks { exts, bmbt } => (
                exts.iter().map(|e| e.len).sum::<u64>() + bmbt.len() as u64,
                exts.len() as u64,
            ),
            _ => (0, 0),
        };
        self.di.nblocks = data + self.attr_blocks;
        self.di.set_nextents(n);
    }
}

/// Linux's `new_encode_dev` number (what `st_rdev` holds) from XFS's.
pub fn rdev_from_xfs(x: u32) -> u32 {
    let major = x >> 18;
    let minor = x & 0x3ffff;
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

/// XFS's device number (`sysv_encode_dev`) from Linux's.
pub fn rdev_to_xfs(r: u32) -> u32 {
    let (major, minor) = crate::fs::node::split_rdev(r);
    (major << 18) | (minor & 0x3ffff)
}

impl<D: BlockDevice> XfsFiles<D> {
    /// Reads `len` bytes at `off`, with staged blocks laid over the
    /// device's contents.
    pub(super) fn read_bytes(&self, off: u64, len: usize) -> NodeResult<Vec<u8>> {
        let mut v = self
            .dev
            .read_vec(off, len)
            .map_err(|e| NodeError::with(ErrorKind::Io, e))?;
        self.staged.overlay(off, &mut v);
        Ok(v)
    }

    /// Reads one filesystem block (segmented number).
    pub(super) fn read_fsb(&self, fsb: u64) -> NodeResult<Vec<u8>> {
        let (agno, agbno) = self.geo.fsb_to_ag(fsb);
        if agno >= self.geo.agcount || agbno >= self.ags[agno as usize].agf.length {
            return Err(NodeError::with(
                ErrorKind::Corrupt,
                super::super::error::Error::Invalid(format!(
                    "block {fsb} lies outside the filesystem"
                )),
            ));
        }
        self.read_bytes(
            self.geo.fsb_to_lin(fsb) << self.geo.blocklog,
            self.geo.bs as usize,
        )
    }

    /// Stages a whole block for the next sync.
    pub(super) fn stage(&mut self, lin: u64, block: &[u8]) {
        let old = self.staged.put(lin, block);
        self.log(Undo::Staged(lin, old));
    }

    /// Stages a run of whole blocks starting at `lin`.
    pub(super) fn stage_run(&mut self, lin: u64, data: Vec<u8>) {
        let bs = self.geo.bs as usize;
        let n = (data.len() / bs) as u64;
        if self.staged.any_in(lin, n) {
            for (i, b) in data.chunks_exact(bs).enumerate() {
                self.stage(lin + i as u64, b);
            }
            return;
        }
        self.staged.put_run(lin, data);
        self.log(Undo::StagedRun(lin, n));
    }

    /// Whether segmented range `[fsb, fsb+len)` lies inside one AG of
    /// the filesystem.
    fn valid_range(&self, fsb: u64, len: u64) -> bool {
        let (agno, agbno) = self.geo.fsb_to_ag(fsb);
        agno < self.geo.agcount
            && u64::from(agbno) + len <= u64::from(self.ags[agno as usize].agf.length)
    }

    /// Reads inode `ino` from the device (staged blocks included).
    pub(super) fn load_inode(&self, ino: u64) -> NodeResult<InodeState> {
        let (agno, _) = self.geo.ino_to_ag(ino);
        if agno >= self.geo.agcount || !self.ino_in_use(ino) {
            return Err(NodeError::new(ErrorKind::NotFound));
        }
        let raw = self.read_bytes(self.geo.ino_byte(ino), self.geo.inodesize)?;
        let di = Dinode::from_bytes(&raw, ino).map_err(|e| corrupt_inode(ino, e))?;
        if di.mode == 0 {
            return Err(corrupt_inode(ino, "in use per the inode btree, but mode 0"));
        }
        let kind = kind_of(ino, di.mode)?;
        let fork_bytes = di.data_fork();
        let bad = |e: BmapError| corrupt_inode(ino, e);
        let fork = match (di.format, kind) {
            (
                format::DEV,
                FileType::CharDevice | FileType::BlockDevice | FileType::Fifo | FileType::Socket,
            ) => Fork::Dev(crate::bytes::read_u32be(fork_bytes, 0)),
            (format::LOCAL, FileType::Directory | FileType::Symlink) => {
                let n = usize::try_from(di.size).unwrap_or(usize::MAX);
                if n > fork_bytes.len() {
                    return Err(corrupt_inode(
                        ino,
                        format!("local fork of {n} bytes does not fit"),
                    ));
                }
                Fork::Local(fork_bytes[..n].to_vec())
            }
            (format::EXTENTS, FileType::Regular | FileType::Directory | FileType::Symlink) => {
                let exts = bmap::read_extents(fork_bytes, di.nextents()).map_err(bad)?;
                Fork::Blocks {
                    exts,
                    bmbt: Vec::new(),
                }
            }
            (format::BTREE, FileType::Regular | FileType::Directory | FileType::Symlink) => {
                let (exts, bmbt) = bmap::read_btree(fork_bytes, ino, &self.geo.bmbt, |fsb| {
                    if !self.valid_range(fsb, 1) {
                        return Err(format!("block {fsb} lies outside the filesystem"));
                    }
                    self.read_fsb(fsb).map_err(|e| e.to_string())
                })
                .map_err(bad)?;
                if exts.len() as u64 != di.nextents() {
                    return Err(corrupt_inode(
                        ino,
                        format!(
                            "{} extents in the btree, di_nextents {}",
                            exts.len(),
                            di.nextents()
                        ),
                    ));
                }
                if exts.len() <= bmap::BmbtGeometry::inline_max(fork_bytes.len()) {
                    return Err(corrupt_inode(
                        ino,
                        "btree format for extents that fit in the inode",
                    ));
                }
                Fork::Blocks { exts, bmbt }
            }
            (f, k) => {
                return Err(corrupt_inode(
                    ino,
                    format!("data fork format {f} for a {k:?}"),
                ));
            }
        };
        let mut data_blocks = 0u64;
        if let Fork::Blocks { exts, bmbt } = &fork {
            bmap::check_extents(exts, |s, l| self.valid_range(s, l)).map_err(bad)?;
            data_blocks = exts.iter().map(|e| e.len).sum::<u64>() + bmbt.len() as u64;
        }
        let attr_blocks = di.nblocks.checked_sub(data_blocks).ok_or_else(|| {
            corrupt_inode(
                ino,
                format!(
                    "di_nblocks {} is less than the {data_blocks} mapped",
                    di.nblocks
                ),
            )
        })?;
        if attr_blocks > 0 && !matches!(di.aformat, format::EXTENTS | format::BTREE) {
            return Err(corrupt_inode(
                ino,
                format!("{attr_blocks} blocks not mapped by the data fork"),
            ));
        }
        Ok(InodeState {
            di,
            fork,
            attr_blocks,
            dirty: false,
            freed: false,
        })
    }

    /// Inode `ino`, from the cache or the device.
    pub(super) fn inode_ro(&self, ino: u64) -> NodeResult<Cow<'_, InodeState>> {
        match self.inodes.get(&ino) {
            Some(s) if s.freed => Err(NodeError::new(ErrorKind::NotFound)),
            Some(s) => Ok(Cow::Borrowed(s)),
            None => Ok(Cow::Owned(self.load_inode(ino)?)),
        }
    }

    /// Loads inode `ino` into the cache.
    pub(super) fn inode_get(&mut self, ino: u64) -> NodeResult<&InodeState> {
        if !self.inodes.contains_key(&ino) {
            let st = self.load_inode(ino)?;
            self.inodes.insert(ino, st);
        }
        match self.inodes.get(&ino) {
            Some(s) if s.freed => Err(NodeError::new(ErrorKind::NotFound)),
            Some(s) => Ok(s),
            None => Err(NodeError::new(ErrorKind::NotFound)),
        }
    }

    /// Inode `ino` for changing: saved for rollback once per operation and
    /// marked dirty.
    pub(super) fn inode_mut(&mut self, ino: u64) -> NodeResult<&mut InodeState> {
        self.inode_get(ino)?;
        self.save_inode(ino);
        match self.inodes.get_mut(&ino) {
            Some(s) => {
                s.dirty = true;
                Ok(s)
            }
            None => Err(NodeError::new(ErrorKind::NotFound)),
        }
    }

    /// Records inode `ino`'s state for rollback (once per operation).
    pub(super) fn save_inode(&mut self, ino: u64) {
        let first = match self.undo.as_mut() {
            Some(t) => t.inodes.insert(ino),
            None => false,
        };
        if first {
            let old = self.inodes.get(&ino).map(|s| Box::new(s.clone()));
            self.log(Undo::Inode(ino, old));
        }
    }

    /// What `stat` shows of inode `ino`.
    pub(super) fn attr_of(&self, ino: u64) -> NodeResult<Attr> {
        let st = self.inode_ro(ino)?;
        let di = &st.di;
        let kind = st.kind()?;
        let rdev = match st.fork {
            Fork::Dev(x) if matches!(kind, FileType::CharDevice | FileType::BlockDevice) => {
                rdev_from_xfs(x)
            }
            _ => 0,
        };
        Ok(Attr {
            ino,
            kind,
            perm: di.mode & 0o7777,
            nlink: di.nlink,
            uid: di.uid,
            gid: di.gid,
            size: di.size,
            blocks: di.nblocks << (self.geo.blocklog - 9),
            atime: di.time(di.atime),
            mtime: di.time(di.mtime),
            ctime: di.time(di.ctime),
            crtime: di.time(di.crtime),
            rdev,
            blksize: self.geo.bs as u32,
        })
    }

    /// Stamps times on an inode being changed, switching it to the bigtime
    /// encoding first when the filesystem has it (as the kernel does when
    /// it logs an inode).
    pub(super) fn stamp(
        st: &mut InodeState,
        bigtime: bool,
        a: Option<Timespec>,
        m: Option<Timespec>,
        c: Option<Timespec>,
    ) {
        if bigtime && !st.di.bigtime() {
            let (at, mt, ct, crt) = (
                st.di.time(st.di.atime),
                st.di.time(st.di.mtime),
                st.di.time(st.di.ctime),
                st.di.time(st.di.crtime),
            );
            st.di.flags2 |= flags2::BIGTIME;
            st.di.atime = st.di.encode_time(at);
            st.di.mtime = st.di.encode_time(mt);
            st.di.ctime = st.di.encode_time(ct);
            st.di.crtime = st.di.encode_time(crt);
        }
        if let Some(t) = a {
            st.di.atime = st.di.encode_time(t);
        }
        if let Some(t) = m {
            st.di.mtime = st.di.encode_time(t);
        }
        if let Some(t) = c {
            st.di.ctime = st.di.encode_time(t);
        }
        st.di.changecount = st.di.changecount.wrapping_add(1);
    }

    /// EPERM for an immutable inode, or an append-only one unless
    /// `append_ok` (the VFS's `IS_IMMUTABLE`/`IS_APPEND` checks).
    pub(super) fn check_mutable(&mut self, ino: u64, append_ok: bool) -> NodeResult<()> {
        let f = self.inode_get(ino)?.di.flags;
        if f & flags::IMMUTABLE != 0 || (f & flags::APPEND != 0 && !append_ok) {
            return Err(NodeError::new(ErrorKind::NotPermitted));
        }
        Ok(())
    }

    /// Refuses changes to the blocks of a file that may share them with
    /// another (reflink), which would need the refcount btree updated.
    pub(super) fn check_unshared(&self, st: &InodeState) -> NodeResult<()> {
        if st.di.flags2 & flags2::REFLINK != 0 {
            return Err(unsupported(format!(
                "changing the blocks of inode {}, which may share them with other files (reflink)",
                st.di.ino
            )));
        }
        Ok(())
    }

    /// Sets inode `ino`'s extents, giving its bmap btree exactly the blocks
    /// that many extents need (allocated near the inode, or freed).
    pub(super) fn set_extents(&mut self, ino: u64, mut exts: Vec<Extent>) -> NodeResult<()> {
        bmap::merge_adjacent(&mut exts);
        let max_ext: u64 = if self.geo.nrext64 {
            (1 << 48) - 1
        } else {
            (1 << 31) - 1
        };
        if exts.len() as u64 > max_ext {
            return Err(NodeError::new(ErrorKind::FileTooBig));
        }
        let (fork_size, mut bmbt) = {
            let st = self.inode_mut(ino)?;
            let bmbt = match &mut st.fork {
                Fork::Blocks { bmbt, .. } => std::mem::take(bmbt),
                _ => Vec::new(),
            };
            (st.di.data_fork_size(), bmbt)
        };
        let need = self.geo.bmbt.blocks_needed(exts.len(), fork_size);
        while bmbt.len() > need {
            if let Some(b) = bmbt.pop() {
                self.free_fsb(b, 1)?;
            }
        }
        let (agno, agino) = self.geo.ino_to_ag(ino);
        while bmbt.len() < need {
            let goal = Some(agino >> self.geo.inopblog);
            let (a, b, _) = self.alloc(AllocReq::near(agno, goal, 1))?;
            bmbt.push(self.geo.ag_to_fsb(a, b));
        }
        let st = self.inode_mut(ino)?;
        st.fork = Fork::Blocks { exts, bmbt };
        st.recount();
        Ok(())
    }

    /// Frees every block inode `ino` holds: data, bmap btree, attribute
    /// fork.
    pub(super) fn free_inode_blocks(&mut self, ino: u64) -> NodeResult<()> {
        let st = self.inode_get(ino)?.clone();
        if let Fork::Blocks { exts, bmbt } = &st.fork {
            if !exts.is_empty() {
                self.check_unshared(&st)?;
            }
            for e in exts {
                self.free_fsb(e.start, e.len)?;
            }
            for &b in bmbt {
                self.free_fsb(b, 1)?;
            }
        }
        if st.attr_blocks > 0 {
            let afork = st.di.attr_fork();
            let (aexts, abmbt) = match st.di.aformat {
                format::EXTENTS => (
                    bmap::read_extents(afork, st.di.anextents())
                        .map_err(|e| corrupt_inode(ino, e))?,
                    Vec::new(),
                ),
                format::BTREE => bmap::read_btree(afork, ino, &self.geo.bmbt, |fsb| {
                    self.read_fsb(fsb).map_err(|e| e.to_string())
                })
                .map_err(|e| corrupt_inode(ino, e))?,
                _ => (Vec::new(), Vec::new()),
            };
            let counted = aexts.iter().map(|e| e.len).sum::<u64>() + abmbt.len() as u64;
            if counted != st.attr_blocks {
                return Err(corrupt_inode(
                    ino,
                    format!(
                        "attribute fork maps {counted} blocks, di_nblocks says {}",
                        st.attr_blocks
                    ),
                ));
            }
            bmap::check_extents(&aexts, |s, l| self.valid_range(s, l))
                .map_err(|e| corrupt_inode(ino, e))?;
            for e in &aexts {
                self.free_fsb(e.start, e.len)?;
            }
            for &b in &abmbt {
                self.free_fsb(b, 1)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers() {
        // /dev/null: 1:3; a large minor.
        for (major, minor) in [(1u32, 3u32), (8, 0x12345), (259, 7)] {
            let linux = (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12);
            let x = rdev_to_xfs(linux);
            assert_eq!(x, (major << 18) | minor);
            assert_eq!(rdev_from_xfs(x), linux);
        }
    }
}
