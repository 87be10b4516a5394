//! Files inside an XFS: the [`FileSystem`](crate::fs::node::FileSystem)
//! operations on a v5 filesystem as mkfs.xfs 6.1 makes it and the kernel
//! leaves it (crc, finobt, sparse inodes, reflink, bigtime, inobtcount).
//!
//! Opening reads every AG's headers and its free-space and inode btrees
//! (any height) into memory and checks them against each other and the
//! counters, so that nothing is ever written on top of a state ebsim did
//! not understand. Every operation then works on that in-memory model:
//!
//! - free space per AG as a map by start and a set by (length, start) —
//!   the bnobt and cntbt records — plus the AGFL and the blocks each tree
//!   occupies ([`alloc`]); inode chunks as the inobt records, the finobt
//!   being the records with free inodes ([`ialloc`]);
//! - inodes read on demand, with their data fork as an extent list
//!   ([`inode`]); directories as entry lists laid out again in the
//!   smallest format on every change ([`dir`]); file data staged per disk
//!   block until `sync` ([`data`]).
//!
//! Every allocation, inode and directory change made during an operation
//! is recorded in an undo log; an operation that fails (no space, a bad
//! name, damaged metadata) rolls all of it back, so an error means nothing
//! changed. After each operation the free-space and inode trees of every
//! touched AG are given exactly the blocks they will need (from and to the
//! AGFL, refilled as the kernel refills it), so `statfs` is exact at all
//! times and `sync` only serializes ([`sync`]).
//!
//! Space is checked as the kernel checks it: each operation reserves its
//! worst case against the free blocks statfs shows (the reserve pool, the
//! per-AG metadata reservations and the allocation set-aside are never
//! available), and each allocation in an AG leaves that AG's reservation,
//! its AGFL refill and the caller's `minleft` in place.

mod alloc;
mod data;
mod dir;
mod ialloc;
mod inode;
mod namei;
mod staged;
mod sync;

use super::bmap::BmbtGeometry;
use super::dir2::DirGeo;
use super::error::Error;
use super::superblock::{Superblock, incompat, ro_compat};
use crate::blockdev::BlockDevice;
use crate::fs::node::{
    Attr, Ctx, DirEntry, ErrorKind, FallocateMode, FileSystem, FileType, Ino, NodeError,
    NodeResult, RenameFlags, SetAttr,
};
use std::collections::{HashMap, HashSet};

pub use alloc::Ag;

/// Staged file data past which an operation syncs on its own (like the
/// kernel's writeback): 64 MiB.
pub const AUTO_SYNC_BYTES: u64 = 64 << 20;

/// Constants of the filesystem the operations need.
#[derive(Debug, Clone)]
pub(crate) struct Geo {
    pub bs: u64,
    pub blocklog: u32,
    pub inodesize: usize,
    pub inopblog: u32,
    pub agblocks: u32,
    pub agblklog: u32,
    pub agcount: u32,
    pub dir: DirGeo,
    pub bmbt: BmbtGeometry,
    /// Blocks of a full 64-inode chunk.
    pub ialloc_blks: u32,
    /// Chunk alignment in blocks (`sb_inoalignmt`, at least 1).
    pub inoalign: u32,
    /// `XFS_BM_MAXLEVELS` of a data fork.
    pub bm_maxlevels: u64,
    /// `m_in_maxlevels`.
    pub inobt_maxlevels: u64,
    /// `m_alloc_maxlevels`.
    pub alloc_maxlevels: u32,
    pub uuid: [u8; 16],
    pub finobt: bool,
    /// Sparse inode chunks (and the inobt record format that has holes).
    pub sparse: bool,
    pub inobtcnt: bool,
    pub bigtime: bool,
    pub nrext64: bool,
}

impl Geo {
    fn new(sb: &Superblock) -> Self {
        let bs = u64::from(sb.blocksize);
        let inopblock = u32::from(sb.inopblock).max(1);
        let ialloc_blks = (64 / inopblock).max(1);
        let agino_bits = u32::from(sb.agblklog) + u32::from(sb.inopblog);
        let inobt_recs = (1u64 << agino_bits.min(40)) >> 6;
        let space = bs.saturating_sub(56);
        let inobt_mnr = [space / 16 / 2, space / 8 / 2];
        let alloc_mnr = [space / 8 / 2, space / 12 / 2];
        let bmbt = BmbtGeometry::new(bs as usize);
        Geo {
            bs,
            blocklog: u32::from(sb.blocklog),
            inodesize: usize::from(sb.inodesize),
            inopblog: u32::from(sb.inopblog),
            agblocks: sb.agblocks,
            agblklog: u32::from(sb.agblklog),
            agcount: sb.agcount,
            dir: DirGeo::new(sb.blocksize, sb.dirblklog, sb.has_incompat(incompat::FTYPE)),
            bmbt,
            ialloc_blks,
            inoalign: sb.inoalignmt.max(1),
            bm_maxlevels: bm_maxlevels(&bmbt, usize::from(sb.inodesize) - 176, sb),
            inobt_maxlevels: compute_maxlevels(inobt_mnr, inobt_recs),
            alloc_maxlevels: compute_maxlevels(alloc_mnr, u64::from(sb.agblocks).div_ceil(2))
                as u32,
            uuid: sb.metadata_uuid(),
            finobt: sb.has_ro_compat(ro_compat::FINOBT),
            sparse: sb.has_incompat(incompat::SPINODES),
            inobtcnt: sb.has_ro_compat(ro_compat::INOBTCNT),
            bigtime: sb.has_incompat(incompat::BIGTIME),
            nrext64: sb.has_incompat(incompat::NREXT64),
        }
    }

    /// Literal area of an inode.
    pub fn lit(&self) -> usize {
        self.inodesize - super::dinode::DINODE_CORE_SIZE
    }

    /// Splits an inode number into (AG, AG inode number).
    pub fn ino_to_ag(&self, ino: u64) -> (u32, u32) {
        let bits = self.agblklog + self.inopblog;
        ((ino >> bits) as u32, (ino & ((1 << bits) - 1)) as u32)
    }

    /// The inode number of (AG, AG inode number).
    pub fn ag_to_ino(&self, agno: u32, agino: u32) -> u64 {
        (u64::from(agno) << (self.agblklog + self.inopblog)) | u64::from(agino)
    }

    /// Splits a segmented block number.
    pub fn fsb_to_ag(&self, fsb: u64) -> (u32, u32) {
        (
            (fsb >> self.agblklog) as u32,
            (fsb & ((1 << self.agblklog) - 1)) as u32,
        )
    }

    /// The segmented block number of (AG, AG block).
    pub fn ag_to_fsb(&self, agno: u32, agbno: u32) -> u64 {
        (u64::from(agno) << self.agblklog) | u64::from(agbno)
    }

    /// The linear block index (byte offset / block size) of (AG, AG block).
    pub fn ag_to_lin(&self, agno: u32, agbno: u32) -> u64 {
        u64::from(agno) * u64::from(self.agblocks) + u64::from(agbno)
    }

    /// The linear block index of a segmented block number.
    pub fn fsb_to_lin(&self, fsb: u64) -> u64 {
        let (a, b) = self.fsb_to_ag(fsb);
        self.ag_to_lin(a, b)
    }

    /// The 512-byte sector address of a segmented block number.
    pub fn fsb_to_daddr(&self, fsb: u64) -> u64 {
        self.fsb_to_lin(fsb) << (self.blocklog - 9)
    }

    /// Byte offset of inode `ino`.
    pub fn ino_byte(&self, ino: u64) -> u64 {
        let (agno, agino) = self.ino_to_ag(ino);
        let agbno = agino >> self.inopblog;
        let slot = u64::from(agino & ((1 << self.inopblog) - 1));
        (self.ag_to_lin(agno, agbno) << self.blocklog) + slot * self.inodesize as u64
    }
}

/// `xfs_btree_compute_maxlevels`: the height of a tree of `records` whose
/// blocks are all at their minimum fill.
fn compute_maxlevels(mnr: [u64; 2], records: u64) -> u64 {
    let mut blocks = records.div_ceil(mnr[0].max(1));
    let mut level = 1;
    while blocks > 1 {
        blocks = blocks.div_ceil(mnr[1].max(1));
        level += 1;
    }
    level
}

/// `xfs_bmap_compute_maxlevels` for the data fork: the tallest bmap btree
/// of the most extents a fork may have, with the smallest possible root.
fn bm_maxlevels(g: &BmbtGeometry, _lit: usize, sb: &Superblock) -> u64 {
    let max_ext: u64 = if sb.has_incompat(incompat::NREXT64) {
        (1 << 48) - 1
    } else {
        (1 << 31) - 1
    };
    // A root of MINDBTPTRS (3) pointers.
    let maxrootrecs = BmbtGeometry::root_max(4 + 3 * 16) as u64;
    let minleaf = (g.leaf_max / 2) as u64;
    let minnode = (g.node_max / 2) as u64;
    let mut blocks = max_ext.div_ceil(minleaf);
    let mut level = 1;
    while blocks > 1 {
        if blocks <= maxrootrecs {
            blocks = 1;
        } else {
            blocks = blocks.div_ceil(minnode);
        }
        level += 1;
    }
    level
}

/// An XFS open for file operations. See the module documentation.
pub struct XfsFiles<D: BlockDevice> {
    dev: D,
    sb: Superblock,
    geo: Geo,
    ags: Vec<Ag>,
    inodes: HashMap<u64, inode::InodeState>,
    dirs: HashMap<u64, dir::DirState>,
    /// Clean directories read through `&self` (lookups, readdir).
    dir_cache: std::cell::RefCell<HashMap<u64, std::sync::Arc<dir::DirState>>>,
    /// File data (and new inode chunks, remote symlink blocks) waiting for
    /// `sync`, by linear block.
    staged: staged::Staged,
    undo: Option<Txn>,
    read_only: bool,
    /// The AG the next directory goes to (the kernel spreads them).
    rotor: u32,
    /// Staged data past which an operation syncs.
    auto_sync: u64,
    /// State of the generation-number generator.
    rng: u64,
}

/// The undo log of the operation in progress.
#[derive(Default)]
struct Txn {
    log: Vec<Undo>,
    ags: HashSet<u32>,
    inodes: HashSet<u64>,
    /// The operation runs without a block reservation: it may not
    /// allocate.
    no_alloc: bool,
}

/// One change to roll back.
enum Undo {
    /// A free extent was inserted (`true`) or removed.
    Free {
        agno: u32,
        start: u32,
        len: u32,
        inserted: bool,
    },
    /// An AG's small state before the operation touched it.
    AgSmall(u32, Box<alloc::AgSmall>),
    /// An inode chunk record before it changed.
    InoRec {
        agno: u32,
        startino: u32,
        old: Option<super::btree::InobtRec>,
    },
    /// An inode before the operation touched it (`None`: not loaded).
    Inode(u64, Option<Box<inode::InodeState>>),
    /// A directory change.
    Dir(dir::DirUndo),
    /// A staged block before it was replaced (`None`: not staged).
    Staged(u64, Option<Vec<u8>>),
    /// A run of blocks newly staged.
    StagedRun(u64, u64),
    /// A staged block dropped (its blocks were freed).
    Unstaged(u64, Vec<u8>),
    /// The directory rotor.
    Rotor(u32),
}

/// Maps an XFS-layer error to a node error.
pub(crate) fn xerr(e: Error) -> NodeError {
    let kind = match &e {
        Error::Io(_) => ErrorKind::Io,
        Error::Unsupported(_) | Error::DirtyLog(_) => ErrorKind::Unsupported,
        Error::NotXfs { .. } | Error::Invalid(_) => ErrorKind::InvalidArgument,
        _ => ErrorKind::Corrupt,
    };
    NodeError::with(kind, e)
}

/// A corruption error about inode `ino`.
pub(crate) fn corrupt_inode(ino: u64, detail: impl std::fmt::Display) -> NodeError {
    NodeError::with(
        ErrorKind::Corrupt,
        Error::Invalid(format!("corrupt inode {ino}: {detail}")),
    )
}

/// An error naming a feature ebsim does not write.
pub(crate) fn unsupported(what: impl Into<String>) -> NodeError {
    NodeError::with(ErrorKind::Unsupported, Error::Unsupported(what.into()))
}

/// ENOSPC.
pub(crate) fn nospc() -> NodeError {
    NodeError::new(ErrorKind::NoSpace)
}

impl<D: BlockDevice> XfsFiles<D> {
    /// Opens the filesystem on `dev` for reading and writing. Refuses a
    /// dirty log, and features whose metadata ebsim does not maintain
    /// (rmapbt, quotas, realtime, large directory blocks, case-insensitive
    /// names, inodes waiting on the unlinked list), naming them.
    pub fn open(dev: D) -> NodeResult<Self> {
        Self::open_mode(dev, false)
    }

    /// Opens the filesystem for reading only (every change fails with
    /// `ReadOnly`). The log must still be clean: a dirty log means the
    /// metadata on disk is not the filesystem's current state.
    pub fn open_read_only(dev: D) -> NodeResult<Self> {
        Self::open_mode(dev, true)
    }

    fn open_mode(dev: D, read_only: bool) -> NodeResult<Self> {
        let sb = super::read_primary(&dev).map_err(xerr)?;
        let xfs = super::Xfs::open(&dev).map_err(xerr)?;
        xfs.check_size().map_err(xerr)?;
        // A clean log, and every AG header as the kernel's read verifiers
        // check it.
        let head = xfs.log_head().map_err(xerr)?;
        xfs.verify_ags(&head).map_err(xerr)?;
        if sb.inopblock > 64 {
            return Err(unsupported(format!(
                "{} inodes per block (more than one inode chunk per block)",
                sb.inopblock
            )));
        }
        if !read_only {
            check_writable(&sb)?;
        }
        let geo = Geo::new(&sb);
        let mut ags = Vec::with_capacity(sb.agcount as usize);
        for agno in 0..sb.agcount {
            ags.push(Ag::load(&xfs, &geo, agno).map_err(xerr)?);
        }
        if !read_only {
            for ag in &ags {
                if ag.agi.unlinked.iter().any(|&u| u != super::agi::NULLAGINO) {
                    return Err(unsupported(format!(
                        "inodes on the unlinked list of AG {} (open-but-deleted files; mount and \
                         unmount the filesystem to clear them)",
                        ag.agno
                    )));
                }
            }
        }
        // Generation numbers only need to differ between the lives of an
        // inode number; deriving them from the filesystem's state keeps
        // runs reproducible.
        let counters = [sb.icount, sb.ifree, sb.fdblocks]
            .map(u64::to_le_bytes)
            .concat();
        let rng = u64::from(crc32c::crc32c_append(crc32c::crc32c(&sb.uuid), &counters)) | 1 << 40;
        let staged = staged::Staged::new(sb.blocksize as usize);
        Ok(XfsFiles {
            dev,
            sb,
            geo,
            ags,
            inodes: HashMap::new(),
            dirs: HashMap::new(),
            dir_cache: std::cell::RefCell::new(HashMap::new()),
            staged,
            undo: None,
            read_only,
            rotor: 0,
            auto_sync: AUTO_SYNC_BYTES,
            rng,
        })
    }

    /// The primary superblock as it will be written (counters staged).
    pub fn superblock(&self) -> Superblock {
        let mut sb = self.sb.clone();
        let (icount, ifree, fdblocks) = self.counters();
        sb.icount = icount;
        sb.ifree = ifree;
        sb.fdblocks = fdblocks;
        sb
    }

    /// The device.
    pub fn dev(&self) -> &D {
        &self.dev
    }

    /// Gives the device back, dropping anything not synced.
    pub fn into_inner(self) -> D {
        self.dev
    }

    /// Sets how much staged data makes an operation sync on its own.
    pub fn set_sync_threshold(&mut self, bytes: u64) {
        self.auto_sync = bytes;
    }

    /// The inode chunk records of AG `agno` (the inobt), for diagnostics.
    pub fn inode_chunks(&self, agno: u32) -> Vec<super::btree::InobtRec> {
        self.ags
            .get(agno as usize)
            .map(|ag| ag.inos.values().copied().collect())
            .unwrap_or_default()
    }

    /// The free extents of AG `agno` as (AG block, length), for
    /// diagnostics.
    pub fn free_extents(&self, agno: u32) -> Vec<(u32, u32)> {
        self.ags
            .get(agno as usize)
            .map(|ag| ag.free.iter().collect())
            .unwrap_or_default()
    }

    /// The AG an inode number lies in.
    pub fn ino_ag(&self, ino: u64) -> u32 {
        self.geo.ino_to_ag(ino).0
    }

    /// Bytes of file data staged for the next sync.
    pub fn staged_bytes(&self) -> u64 {
        self.staged.blocks() * self.geo.bs
    }

    /// `icount`, `ifree` and `fdblocks` as the superblock will carry them.
    fn counters(&self) -> (u64, u64, u64) {
        let mut icount = 0;
        let mut ifree = 0;
        let mut fd = 0;
        for ag in &self.ags {
            icount += u64::from(ag.small.icount);
            ifree += u64::from(ag.small.ifree);
            fd += ag.fdblocks();
        }
        (icount, ifree, fd)
    }

    fn next_gen(&mut self) -> u32 {
        // xorshift64*: generation numbers only need to differ.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    }

    /// Runs one operation: on error, everything it changed is rolled back.
    fn op<T>(&mut self, f: impl FnOnce(&mut Self) -> NodeResult<T>) -> NodeResult<T> {
        if self.read_only {
            return Err(NodeError::new(ErrorKind::ReadOnly));
        }
        self.undo = Some(Txn::default());
        let r = f(self);
        let txn = self.undo.take().unwrap_or_default();
        match r {
            Ok(v) => {
                if self.staged_bytes() >= self.auto_sync {
                    self.sync_now()?;
                }
                Ok(v)
            }
            Err(e) => {
                self.rollback(txn);
                Err(e)
            }
        }
    }

    fn log(&mut self, u: Undo) {
        if let Some(t) = self.undo.as_mut() {
            t.log.push(u);
        }
    }

    fn rollback(&mut self, txn: Txn) {
        for u in txn.log.into_iter().rev() {
            self.undo_one(u);
        }
    }

    fn undo_one(&mut self, u: Undo) {
        match u {
            Undo::Free {
                agno,
                start,
                len,
                inserted,
            } => {
                let fs = &mut self.ags[agno as usize].free;
                // The inverse of a change that succeeded cannot fail.
                let _ = if inserted {
                    fs.remove(start, len)
                } else {
                    fs.insert(start, len)
                };
            }
            Undo::AgSmall(agno, s) => self.ags[agno as usize].small = *s,
            Undo::InoRec {
                agno,
                startino,
                old,
            } => {
                let ag = &mut self.ags[agno as usize];
                match old {
                    Some(r) => {
                        ag.inos.insert(startino, r);
                    }
                    None => {
                        ag.inos.remove(&startino);
                    }
                }
                ag.note_rec(startino);
            }
            Undo::Inode(ino, old) => match old {
                Some(s) => {
                    self.inodes.insert(ino, *s);
                }
                None => {
                    self.inodes.remove(&ino);
                }
            },
            Undo::Dir(d) => self.undo_dir(d),
            Undo::Staged(lin, old) => match old {
                Some(b) => {
                    self.staged.put(lin, &b);
                }
                None => {
                    self.staged.remove(lin, 1);
                }
            },
            Undo::StagedRun(lin, n) => {
                self.staged.remove(lin, n);
            }
            Undo::Unstaged(lin, b) => {
                self.staged.put(lin, &b);
            }
            Undo::Rotor(r) => self.rotor = r,
        }
    }
}

/// Refuses what the write path does not maintain.
fn check_writable(sb: &Superblock) -> NodeResult<()> {
    if sb.has_ro_compat(ro_compat::RMAPBT) {
        return Err(unsupported(
            "reverse-mapping btree (rmapbt=1): ebsim does not update it",
        ));
    }
    // XFS_SB_VERSION_BORGBIT: ASCII case-insensitive names.
    if sb.versionnum & 0x4000 != 0 {
        return Err(unsupported(
            "ASCII case-insensitive directories (ascii-ci=1)",
        ));
    }
    if !sb.has_incompat(incompat::FTYPE) {
        return Err(unsupported("directories without file types (ftype=0)"));
    }
    if sb.dirblklog != 0 {
        return Err(unsupported(format!(
            "directory blocks of {} bytes (larger than the filesystem block)",
            sb.blocksize << sb.dirblklog
        )));
    }
    // Quota accounting flags: XFS_{U,G,P}QUOTA_ACCT.
    if sb.qflags & (0x0001 | 0x0040 | 0x0008) != 0 {
        return Err(unsupported(
            "quota accounting (ebsim does not update dquots)",
        ));
    }
    if sb.sectsize as u32 > sb.blocksize {
        return Err(unsupported("sectors larger than blocks"));
    }
    Ok(())
}

/// The file type a mode names, or a corruption error.
pub(crate) fn kind_of(ino: u64, mode: u16) -> NodeResult<FileType> {
    FileType::from_mode(mode).ok_or_else(|| corrupt_inode(ino, format!("mode {mode:#o}")))
}

/// The directory-entry file type of a kind.
pub(crate) fn ftype_of(kind: FileType) -> u8 {
    use super::dir2::ftype;
    match kind {
        FileType::Regular => ftype::REG_FILE,
        FileType::Directory => ftype::DIR,
        FileType::Symlink => ftype::SYMLINK,
        FileType::CharDevice => ftype::CHRDEV,
        FileType::BlockDevice => ftype::BLKDEV,
        FileType::Fifo => ftype::FIFO,
        FileType::Socket => ftype::SOCK,
    }
}

/// Checks a name given to an operation.
pub(crate) fn check_name(name: &[u8]) -> NodeResult<()> {
    if name.len() > 255 {
        return Err(NodeError::new(ErrorKind::NameTooLong));
    }
    if name.is_empty() || name == b"." || name == b".." || name.iter().any(|&c| c == b'/' || c == 0)
    {
        return Err(NodeError::new(ErrorKind::InvalidArgument));
    }
    Ok(())
}

impl<D: BlockDevice> FileSystem for XfsFiles<D> {
    fn root(&self) -> Ino {
        self.sb.rootino
    }

    fn statfs(&self) -> NodeResult<crate::fs::StatFs> {
        let s = self.statfs_now();
        Ok(crate::fs::StatFs {
            frsize: s.f_bsize,
            blocks: s.f_blocks,
            bfree: s.f_bfree,
            bavail: s.f_bavail,
            files: s.f_files,
            ffree: s.f_ffree,
        })
    }

    fn getattr(&self, ino: Ino) -> NodeResult<Attr> {
        self.attr_of(ino)
    }

    fn lookup(&self, dir: Ino, name: &[u8]) -> NodeResult<Attr> {
        check_name(name)?;
        let (ino, _) = self
            .dir_lookup_ro(dir, name)?
            .ok_or_else(|| NodeError::new(ErrorKind::NotFound))?;
        self.attr_of(ino)
    }

    fn readdir(&self, dir: Ino) -> NodeResult<Vec<DirEntry>> {
        self.readdir_ro(dir)
    }

    fn read(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> NodeResult<usize> {
        self.read_file(ino, offset, buf)
    }

    fn readlink(&self, ino: Ino) -> NodeResult<Vec<u8>> {
        self.readlink_ro(ino)
    }

    fn mknod(
        &mut self,
        ctx: Ctx,
        dir: Ino,
        name: &[u8],
        kind: FileType,
        perm: u16,
        rdev: u32,
    ) -> NodeResult<Attr> {
        if matches!(kind, FileType::Directory | FileType::Symlink) {
            return Err(NodeError::new(ErrorKind::InvalidArgument));
        }
        self.op(|fs| fs.create_node(ctx, dir, name, kind, perm, rdev, None))
    }

    fn mkdir(&mut self, ctx: Ctx, dir: Ino, name: &[u8], perm: u16) -> NodeResult<Attr> {
        self.op(|fs| fs.create_node(ctx, dir, name, FileType::Directory, perm, 0, None))
    }

    fn symlink(&mut self, ctx: Ctx, dir: Ino, name: &[u8], target: &[u8]) -> NodeResult<Attr> {
        self.op(|fs| fs.create_node(ctx, dir, name, FileType::Symlink, 0o777, 0, Some(target)))
    }

    fn link(&mut self, ctx: Ctx, ino: Ino, newdir: Ino, newname: &[u8]) -> NodeResult<Attr> {
        self.op(|fs| fs.link_node(ctx, ino, newdir, newname))
    }

    fn unlink(&mut self, ctx: Ctx, dir: Ino, name: &[u8]) -> NodeResult<()> {
        self.op(|fs| fs.remove_node(ctx, dir, name, false))
    }

    fn rmdir(&mut self, ctx: Ctx, dir: Ino, name: &[u8]) -> NodeResult<()> {
        self.op(|fs| fs.remove_node(ctx, dir, name, true))
    }

    fn rename(
        &mut self,
        ctx: Ctx,
        olddir: Ino,
        oldname: &[u8],
        newdir: Ino,
        newname: &[u8],
        flags: RenameFlags,
    ) -> NodeResult<()> {
        self.op(|fs| fs.rename_node(ctx, olddir, oldname, newdir, newname, flags))
    }

    fn write(&mut self, ctx: Ctx, ino: Ino, offset: u64, data: &[u8]) -> NodeResult<usize> {
        self.op(|fs| fs.write_file(ctx, ino, offset, data))
    }

    fn fallocate(
        &mut self,
        ctx: Ctx,
        ino: Ino,
        offset: u64,
        len: u64,
        mode: FallocateMode,
    ) -> NodeResult<()> {
        self.op(|fs| fs.fallocate_file(ctx, ino, offset, len, mode))
    }

    fn setattr(&mut self, ctx: Ctx, ino: Ino, attr: SetAttr) -> NodeResult<Attr> {
        self.op(|fs| fs.setattr_node(ctx, ino, attr))
    }

    fn sync(&mut self) -> NodeResult<()> {
        if self.read_only {
            return Ok(());
        }
        self.sync_now()
    }

    /// As `SEEK_DATA`/`SEEK_HOLE` on XFS see a file at rest: written
    /// extents only (unwritten extents and holes are holes).
    fn data_ranges(&self, ino: Ino) -> NodeResult<Vec<std::ops::Range<u64>>> {
        Ok(self
            .data_extents(ino)?
            .into_iter()
            .map(|(s, t)| s..t)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_can_move_between_threads() {
        fn send<T: Send>() {}
        send::<XfsFiles<crate::blockdev::MemDevice>>();
    }

    #[test]
    fn names() {
        assert!(check_name(b"ok").is_ok());
        for bad in [&b""[..], b".", b"..", b"a/b", b"a\0b"] {
            assert_eq!(
                check_name(bad).map_err(|e| e.kind()),
                Err(ErrorKind::InvalidArgument)
            );
        }
        assert_eq!(
            check_name(&[b'x'; 256]).map_err(|e| e.kind()),
            Err(ErrorKind::NameTooLong)
        );
    }

    #[test]
    fn kernel_limits_of_a_1g_filesystem() {
        let sb = crate::fs::xfs::superblock::tests::sample();
        let g = Geo::new(&sb);
        assert_eq!(g.bm_maxlevels, 5);
        assert_eq!(g.inobt_maxlevels, 2);
        assert_eq!(g.alloc_maxlevels, 2);
        assert_eq!(g.ialloc_blks, 8);
        assert_eq!(g.lit(), 336);
        assert_eq!(g.ino_byte(131), (16 << 12) + 3 * 512);
        assert_eq!(g.fsb_to_daddr(g.ag_to_fsb(2, 6)), (2 * 65536 + 6) * 8);
    }
}
