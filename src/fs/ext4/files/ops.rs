//! The file operations: checks first, then allocation inside a
//! transaction (rolled back when space runs out), then the in-memory
//! changes, which cannot fail.

use super::block_map::{self, Indirect, Shape, Slot};
use super::directory::{Dir, DirBlock};
use super::dirent::Entry;
use super::error::FileError;
use super::extent_tree::{MAX_LBLK_END, tree_blocks_for};
use super::inode::{DiskInode, EXTENTS_FL, INDEX_FL, Stamp};
use super::map::{FileMap, Piece, Run};
use super::{Ext4Files, Format, Node, format_of, is_fast_symlink};
use crate::blockdev::BlockDevice;
use crate::bytes::{read_u32le, write_u32le};
use crate::fs::ext4::checksum::crc32c_raw;
use crate::fs::ext4::extent::write_header;
use crate::fs::ext4::inode::ROOT_INO;
use crate::fs::node::{
    Attr, Cred, Ctx, DirEntry, ErrorKind, FallocateMode, FileType, Ino, NodeError, NodeResult,
    RenameFlags, SetAttr, Timespec,
};

/// The most links an inode (or subdirectories a linear directory) may
/// have (`EXT4_LINK_MAX`).
const LINK_MAX: u16 = 65000;
/// Magic of an extended attribute block.
const XATTR_MAGIC: u32 = 0xEA02_0000;

/// What new blocks of a file become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NewBlocks {
    /// Written blocks of an extent file.
    Written,
    /// Unwritten (preallocated) blocks of an extent file.
    Unwritten,
    /// Blocks of a block-mapped file: written, and numbered below 2^32.
    BlockMap,
}

/// Which allocation rule applies (see the module documentation).
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// An ordinary allocation on behalf of `Cred`.
    Normal(Cred),
    /// Metadata the kernel takes from its reserve (`EXT4_MB_USE_RESERVED`).
    Reserved,
}

fn ft_of(kind: FileType) -> u8 {
    match kind {
        FileType::Regular => 1,
        FileType::Directory => 2,
        FileType::CharDevice => 3,
        FileType::BlockDevice => 4,
        FileType::Fifo => 5,
        FileType::Socket => 6,
        FileType::Symlink => 7,
    }
}

fn kind_of_ft(ft: u8) -> Option<FileType> {
    Some(match ft {
        1 => FileType::Regular,
        2 => FileType::Directory,
        3 => FileType::CharDevice,
        4 => FileType::BlockDevice,
        5 => FileType::Fifo,
        6 => FileType::Socket,
        7 => FileType::Symlink,
        _ => return None,
    })
}

fn err(kind: ErrorKind) -> NodeError {
    NodeError::new(kind)
}

/// A name must be 1..=255 bytes, without `/` or NUL, and not `.` or `..`.
fn check_name(name: &[u8]) -> NodeResult<()> {
    if name.len() > 255 {
        return Err(err(ErrorKind::NameTooLong));
    }
    if name.is_empty() || name == b"." || name == b".." || name.iter().any(|&c| c == b'/' || c == 0)
    {
        return Err(err(ErrorKind::InvalidArgument));
    }
    Ok(())
}

fn ino32(ino: Ino) -> NodeResult<u32> {
    match u32::try_from(ino) {
        Ok(i) if i != 0 => Ok(i),
        _ => Err(err(ErrorKind::NotFound)),
    }
}

/// An internal inconsistency: never expected.
fn internal(ino: u32, why: &str) -> NodeError {
    FileError::BadInode {
        ino,
        why: format!("internal inconsistency: {why}"),
    }
    .into()
}

/// What to create.
struct New<'a> {
    kind: FileType,
    perm: u16,
    rdev: u32,
    /// A symlink's target.
    target: Option<&'a [u8]>,
}

/// A directory being changed: its inode and entries, taken out of the
/// cache, with working copies of its map, tree and indirect blocks.
struct DirEdit {
    ino: u32,
    node: Node,
    dir: Dir,
    /// The originals when taking it un-indexed them (restored on cancel).
    orig: Option<(Node, Dir)>,
    map: FileMap,
    tree: Vec<u64>,
    ind: Indirect,
    map_changed: bool,
}

/// What a change of a block-mapped file's map does to its indirect
/// blocks: allocated and freed inside the operation's transaction by
/// [`Ext4Files::plan_ind`], applied to the inode's [`Indirect`] once the
/// transaction commits (so a rolled-back operation leaves it as it was).
#[derive(Debug)]
struct IndChange {
    add: Vec<(Slot, u64)>,
    drop: Vec<Slot>,
    lo: u64,
    hi: u64,
}

impl IndChange {
    fn apply(self, ind: &mut Indirect) {
        for s in self.drop {
            ind.remove(s);
        }
        for (s, b) in self.add {
            ind.insert(s, b);
        }
        ind.mark(self.lo, self.hi);
    }
}

/// Decodes a device number from `i_block` (old 16-bit or new encoding)
/// into the 32-bit `dev_t` userspace sees.
fn rdev_of(i_block: &[u8; 60]) -> u32 {
    let old = read_u32le(i_block, 0);
    if old != 0 {
        let (major, minor) = ((old >> 8) & 0xFF, old & 0xFF);
        (minor & 0xFF) | (major << 8) | ((minor & !0xFF) << 12)
    } else {
        read_u32le(i_block, 4)
    }
}

/// Encodes a device number into `i_block` as the kernel does.
fn rdev_to(rdev: u32) -> [u8; 60] {
    let major = (rdev >> 8) & 0xFFF;
    let minor = (rdev & 0xFF) | ((rdev >> 12) & 0xF_FF00);
    let mut b = [0u8; 60];
    if major < 256 && minor < 256 {
        write_u32le(&mut b, 0, (major << 8) | minor);
    } else {
        write_u32le(&mut b, 4, rdev);
    }
    b
}

/// Adds `d` to a directory's link count. A count of 1 means "too many
/// subdirectories to count" (`dir_nlink`) and stays 1; otherwise a
/// directory has at least 2 (`.` and its entry).
fn dir_links_add(inode: &mut DiskInode, d: i32) {
    let l = inode.links();
    if l == 1 {
        return;
    }
    let n = (i32::from(l) + d).clamp(2, i32::from(LINK_MAX));
    inode.set_links(n as u16);
}

fn empty_extent_root() -> [u8; 60] {
    let mut b = [0u8; 60];
    write_header(&mut b, 0, 4, 0);
    b
}

impl<D: BlockDevice> Ext4Files<D> {
    /// Records the time and syncs past the threshold after a successful
    /// operation.
    pub(super) fn after<T>(&mut self, ctx: Ctx, r: NodeResult<T>) -> NodeResult<T> {
        let v = r?;
        self.last_time = Some(ctx.now);
        self.maybe_sync()?;
        Ok(v)
    }

    fn writable(&self) -> NodeResult<()> {
        match &self.poisoned {
            Some(p) => Err(FileError::Poisoned(p.clone()).into()),
            None => Ok(()),
        }
    }

    /// Root, the reserved-blocks user, or a member of a non-root
    /// reserved-blocks group may use the root reserve.
    fn privileged(&self, cred: Cred) -> bool {
        cred.uid == 0 || cred.uid == self.resuid || (self.resgid != 0 && cred.gid == self.resgid)
    }

    /// How many blocks `rule` may still take.
    fn afford(&self, rule: Rule) -> u64 {
        let keep = match rule {
            Rule::Reserved => 0,
            Rule::Normal(c) if self.privileged(c) => self.resv,
            Rule::Normal(_) => self.resv + self.r_blocks,
        };
        self.groups.free_blocks().saturating_sub(keep)
    }

    fn group_start_of(&self, ino: u32) -> u64 {
        self.geo.group_first(self.geo.inode_group(ino))
    }

    /// Maps `n` new blocks at logical `lblk` (all unmapped), allocated
    /// from `goal` on.
    fn map_new(
        &mut self,
        rule: Rule,
        map: &mut FileMap,
        lblk: u64,
        n: u64,
        goal: u64,
        how: NewBlocks,
    ) -> NodeResult<()> {
        if self.afford(rule) < n {
            return Err(err(ErrorKind::NoSpace));
        }
        let ngroups = self.alloc_groups(how == NewBlocks::BlockMap);
        let (mut l, mut left, mut goal) = (lblk, n, goal);
        while left > 0 {
            let Some((start, len)) = self
                .groups
                .alloc_in(&self.dev, &self.geo, goal, left, ngroups)?
            else {
                return Err(err(ErrorKind::NoSpace));
            };
            if !map.insert(Run {
                lblk: l,
                len,
                pblk: start,
                unwritten: how == NewBlocks::Unwritten,
            }) {
                return Err(internal(0, "mapping over mapped blocks"));
            }
            l += len;
            left -= len;
            goal = start + len;
        }
        Ok(())
    }

    /// Gives the tree exactly the blocks its extents need.
    fn fit_tree(
        &mut self,
        rule: Rule,
        map: &FileMap,
        tree: &mut Vec<u64>,
        goal: u64,
    ) -> NodeResult<()> {
        let need = tree_blocks_for(map.disk_extent_count(), self.geo.bs) as usize;
        while tree.len() > need {
            if let Some(b) = tree.pop() {
                self.groups.free(&self.dev, &self.geo, b, 1)?;
            }
        }
        if tree.len() < need {
            if self.afford(rule) < (need - tree.len()) as u64 {
                return Err(err(ErrorKind::NoSpace));
            }
            while tree.len() < need {
                let Some((b, _)) = self.groups.alloc(&self.dev, &self.geo, goal, 1)? else {
                    return Err(err(ErrorKind::NoSpace));
                };
                tree.push(b);
            }
        }
        Ok(())
    }

    /// After a punch or truncate took `freed` out of `map` within logical
    /// `range`: the inode's extent tree blocks refitted to the map, or a
    /// block-mapped file's indirect blocks planned, then the freed blocks
    /// released, all in the open allocation transaction, committed on
    /// success and rolled back on failure.
    fn refit_after_removal(
        &mut self,
        ino: u32,
        node: &Node,
        map: &FileMap,
        tree: &mut Vec<u64>,
        range: std::ops::Range<u64>,
        freed: &[(u64, u64)],
    ) -> NodeResult<Option<IndChange>> {
        let gstart = self.group_start_of(ino);
        let r = (|| -> NodeResult<Option<IndChange>> {
            let c = if self.block_mapped(node) {
                let (lo, hi) = (range.start, range.end);
                Some(self.plan_ind(Rule::Reserved, map, &node.ind, lo, hi, gstart)?)
            } else {
                let goal = map.runs().next().map_or(gstart, |r| r.pblk);
                self.fit_tree(Rule::Reserved, map, tree, goal)?;
                None
            };
            self.free_runs(freed)?;
            Ok(c)
        })();
        match r {
            Ok(c) => {
                self.groups.commit();
                Ok(c)
            }
            Err(e) => {
                self.groups.rollback();
                Err(e)
            }
        }
    }

    /// Allocates the indirect blocks a block-mapped file's `map` (as it
    /// is after a change within logical `lo..hi`) newly needs, and frees
    /// those it no longer needs, in the open transaction. A new indirect
    /// block goes near the first data block it maps (the kernel puts it
    /// just before its data; after it reads as well, and e2fsck does not
    /// mind either).
    fn plan_ind(
        &mut self,
        rule: Rule,
        map: &FileMap,
        ind: &Indirect,
        lo: u64,
        hi: u64,
        gstart: u64,
    ) -> NodeResult<IndChange> {
        let shape = Shape::new(self.geo.bs);
        let (add, drop) = block_map::changes(shape, map, ind, lo, hi);
        for &(_, b) in &drop {
            self.groups.free(&self.dev, &self.geo, b, 1)?;
        }
        if self.afford(rule) < add.len() as u64 {
            return Err(err(ErrorKind::NoSpace));
        }
        let mut added = Vec::with_capacity(add.len());
        let ngroups = self.alloc_groups(true);
        for s in add {
            let goal = map
                .first_in(s.start, shape.slot_end(s))
                .map_or(gstart, |r| r.pblk);
            let Some((b, _)) = self
                .groups
                .alloc_in(&self.dev, &self.geo, goal, 1, ngroups)?
            else {
                return Err(err(ErrorKind::NoSpace));
            };
            added.push((s, b));
        }
        Ok(IndChange {
            add: added,
            drop: drop.into_iter().map(|(s, _)| s).collect(),
            lo,
            hi,
        })
    }

    /// The groups a file may take blocks from: all, or for a block map
    /// those whose blocks have 32-bit numbers (`s_blockfile_groups`).
    fn alloc_groups(&self, block_map: bool) -> u32 {
        if block_map {
            let g = 0xFFFF_FFFF / self.geo.bpg.max(1);
            self.geo.groups.min(u32::try_from(g).unwrap_or(u32::MAX))
        } else {
            self.geo.groups
        }
    }

    /// New blocks of `node`: a block map's, or an extent file's written
    /// ones.
    fn new_blocks(&self, node: &Node) -> NewBlocks {
        if self.block_mapped(node) {
            NewBlocks::BlockMap
        } else {
            NewBlocks::Written
        }
    }

    /// How many of the new data blocks `needs` (logical, ascending) of a
    /// block-mapped file fit in the free space together with the
    /// indirect blocks they add to `ind`.
    fn bm_fit(&self, ind: &Indirect, needs: &[u64]) -> u64 {
        let shape = Shape::new(self.geo.bs);
        let free = self.afford(Rule::Reserved);
        let mut added = std::collections::HashSet::new();
        for (k, &l) in needs.iter().enumerate() {
            for s in shape.chain(l) {
                if ind.get(s).is_none() {
                    added.insert(s);
                }
            }
            if (k + 1 + added.len()) as u64 > free {
                return k as u64;
            }
        }
        needs.len() as u64
    }

    /// True when inode `ino`'s blocks are a block map.
    fn block_mapped(&self, node: &Node) -> bool {
        format_of(&node.inode, self.geo.bs) == Some(Format::BlockMap)
    }

    /// The largest size a file of `node`'s format may reach.
    fn max_size(&self, node: &Node) -> u64 {
        if self.block_mapped(node) {
            self.geo.bitmap_max_bytes.min(self.geo.max_bytes)
        } else {
            self.geo.max_bytes
        }
    }

    /// Frees physical runs and drops what was staged for them.
    fn free_runs(&mut self, runs: &[(u64, u64)]) -> NodeResult<()> {
        for &(start, len) in runs {
            self.groups.free(&self.dev, &self.geo, start, len)?;
            self.data.remove(start, start + len);
            let keys: Vec<u64> = self
                .meta
                .range(start..start + len)
                .map(|(&k, _)| k)
                .collect();
            for k in keys {
                self.meta.remove(&k);
            }
        }
        Ok(())
    }

    /// `i_blocks` from the map, tree or indirect blocks, and xattr block.
    fn set_sectors(&self, node: &mut Node) {
        let data = node.map.as_ref().map_or(0, FileMap::blocks);
        let xattr = u64::from(node.inode.file_acl() != 0);
        let meta = (node.tree.len() + node.ind.len()) as u64;
        node.inode
            .set_sectors((data + meta + xattr) * (self.geo.bs / 512));
    }

    /// A generation number for a new inode (deterministic).
    fn next_generation(&mut self, ino: u32, now: Timespec) -> u32 {
        self.generation_seq = self.generation_seq.wrapping_add(1);
        let mut b = [0u8; 20];
        b[..4].copy_from_slice(&ino.to_le_bytes());
        b[4..12].copy_from_slice(&now.sec.to_le_bytes());
        b[12..16].copy_from_slice(&now.nsec.to_le_bytes());
        b[16..20].copy_from_slice(&self.generation_seq.to_le_bytes());
        crc32c_raw(!0, &b)
    }

    /// The attributes of a node.
    fn attr_of(&self, ino: u32, n: &Node) -> Attr {
        let i = &n.inode;
        let kind = i.kind().unwrap_or(FileType::Regular);
        Attr {
            ino: Ino::from(ino),
            kind,
            perm: i.mode() & 0o7777,
            nlink: u32::from(i.links()),
            uid: i.uid(),
            gid: i.gid(),
            size: i.size(),
            blocks: i.sectors(self.geo.bs),
            atime: i.time(Stamp::Atime),
            mtime: i.time(Stamp::Mtime),
            ctime: i.time(Stamp::Ctime),
            crtime: i.time(Stamp::Crtime),
            rdev: match kind {
                FileType::CharDevice | FileType::BlockDevice => rdev_of(&i.i_block()),
                _ => 0,
            },
            blksize: self.geo.bs as u32,
        }
    }

    pub(super) fn getattr_inner(&self, ino: Ino) -> NodeResult<Attr> {
        let i = ino32(ino)?;
        let n = self.node(i, false)?;
        Ok(self.attr_of(i, &n))
    }

    pub(super) fn lookup_inner(&self, dir: Ino, name: &[u8]) -> NodeResult<Attr> {
        check_name(name)?;
        let d = self.dir(ino32(dir)?)?;
        let e = d.lookup(name).ok_or(err(ErrorKind::NotFound))?;
        self.getattr_inner(Ino::from(e.ino))
    }

    /// The entries in the order the kernel's readdir returns them: by
    /// name hash for an indexed directory and for a one-block directory
    /// (with `dir_index`), else in block order.
    pub(super) fn readdir_inner(&self, dir: Ino) -> NodeResult<Vec<DirEntry>> {
        let dino = ino32(dir)?;
        let d = self.dir(dino)?;
        let node = self.node(dino, false)?;
        let hashed = self
            .sb
            .has_compat(crate::fs::ext4::features::compat::DIR_INDEX)
            && (node.inode.flags() & super::inode::INDEX_FL != 0
                || node.inode.size() == self.geo.bs);
        let hash = super::dirhash::HashKind::from_version(self.sb.s_def_hash_version)
            .filter(|_| hashed)
            .map(|kind| {
                let unsigned = self.sb.s_flags & 0x2 != 0;
                let seed = super::dirhash::seed_words(&self.sb.s_hash_seed);
                move |name: &[u8]| super::dirhash::name_hash(kind, unsigned, seed, name)
            });
        let mut out = Vec::with_capacity(d.len());
        for e in d.entries() {
            let kind = match kind_of_ft(e.ft) {
                Some(k) => k,
                None => self
                    .node(e.ino, false)?
                    .inode
                    .kind()
                    .unwrap_or(FileType::Regular),
            };
            out.push(DirEntry {
                name: e.name.clone(),
                ino: Ino::from(e.ino),
                kind,
            });
        }
        if let Some(h) = hash {
            out.sort_by_cached_key(|e| h(&e.name));
        }
        Ok(out)
    }

    pub(super) fn read_inner(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> NodeResult<usize> {
        let i = ino32(ino)?;
        let n = self.node(i, true)?;
        match n.inode.kind() {
            Some(FileType::Regular) => {}
            Some(FileType::Directory) => return Err(err(ErrorKind::IsADirectory)),
            _ => return Err(err(ErrorKind::InvalidArgument)),
        }
        let size = n.inode.size();
        if offset >= size || buf.is_empty() {
            return Ok(0);
        }
        let len = (buf.len() as u64).min(size - offset) as usize;
        let out = &mut buf[..len];
        out.fill(0);
        let bs = self.geo.bs;
        let Some(map) = n.map.as_ref() else {
            return Ok(len);
        };
        let end = offset + len as u64;
        for p in map.pieces(offset / bs, end.div_ceil(bs)) {
            let Piece::Mapped(r) = p else { continue };
            if r.unwritten {
                continue;
            }
            // The piece's bytes within the request.
            let s = (r.lblk * bs).max(offset);
            let e = (r.end() * bs).min(end);
            let phys = r.pblk * bs + (s - r.lblk * bs);
            let dst = &mut out[(s - offset) as usize..(e - offset) as usize];
            self.dev
                .read_at(phys, dst)
                .map_err(|x| FileError::io(format!("inode {i} data"), x))?;
            // Staged blocks over it.
            for (pb, data) in self.data.blocks_in(r.pblk, r.pblk + r.len) {
                let lb = r.lblk + (pb - r.pblk);
                let bs_ = (lb * bs).max(s);
                let be = ((lb + 1) * bs).min(e);
                if bs_ >= be {
                    continue;
                }
                let from = (bs_ - lb * bs) as usize;
                out[(bs_ - offset) as usize..(be - offset) as usize]
                    .copy_from_slice(&data[from..from + (be - bs_) as usize]);
            }
        }
        Ok(len)
    }

    pub(super) fn readlink_inner(&self, ino: Ino) -> NodeResult<Vec<u8>> {
        let i = ino32(ino)?;
        let n = self.node(i, true)?;
        if n.inode.kind() != Some(FileType::Symlink) {
            return Err(err(ErrorKind::InvalidArgument));
        }
        let size = n.inode.size();
        if is_fast_symlink(&n.inode, self.geo.bs) {
            if size >= 60 {
                return Err(FileError::BadInode {
                    ino: i,
                    why: format!("fast symlink of {size} bytes (at most 59 fit)"),
                }
                .into());
            }
            return Ok(n.inode.i_block()[..size as usize].to_vec());
        }
        if size > self.geo.bs || size == 0 {
            return Err(FileError::BadInode {
                ino: i,
                why: format!("symlink of {size} bytes"),
            }
            .into());
        }
        let r = n
            .map
            .as_ref()
            .and_then(|m| m.find(0))
            .ok_or_else(|| FileError::BadInode {
                ino: i,
                why: "slow symlink without a block".into(),
            })?;
        let b = match self.data.get(r.pblk) {
            Some(b) => b.to_vec(),
            None => self.read_block(r.pblk)?,
        };
        Ok(b[..size as usize].to_vec())
    }

    /// Takes directory `ino` and its inode out for changing (un-indexing
    /// an htree directory on the copies).
    fn edit_dir(&mut self, ino: u32) -> NodeResult<DirEdit> {
        let mut dir = self.take_dir(ino)?;
        let mut node = match self.take(ino) {
            Ok(n) => n,
            Err(e) => {
                self.put_dir(ino, dir);
                return Err(e);
            }
        };
        let orig = if dir.indexed {
            let o = (node.clone(), dir.clone());
            dir.unindex();
            node.inode.set_flags(node.inode.flags() & !INDEX_FL);
            node.dirty = true;
            Some(o)
        } else {
            None
        };
        let map = node.map.clone().unwrap_or_default();
        let tree = node.tree.clone();
        let ind = node.ind.clone();
        Ok(DirEdit {
            ino,
            node,
            dir,
            orig,
            map,
            tree,
            ind,
            map_changed: false,
        })
    }

    /// Puts a directory back unchanged.
    fn cancel_edit(&mut self, e: DirEdit) {
        let (node, dir) = e.orig.unwrap_or((e.node, e.dir));
        self.put(e.ino, node);
        self.put_dir(e.ino, dir);
    }

    /// Puts a changed directory back (stamping its times).
    fn finish_edit(&mut self, mut e: DirEdit, now: Timespec) {
        if e.map_changed {
            e.node.map = Some(e.map);
            e.node.tree = e.tree;
            e.node.ind = e.ind;
            e.node.tree_dirty = true;
            self.set_sectors(&mut e.node);
        }
        e.node.inode.set_time(Stamp::Mtime, now);
        e.node.inode.set_time(Stamp::Ctime, now);
        e.node.dirty = true;
        self.staged += 512;
        self.put(e.ino, e.node);
        self.put_dir(e.ino, e.dir);
    }

    /// Makes room for an entry named with `name_len` bytes: nothing when
    /// a block has room, else a new block at the end (allocated now).
    fn dir_room(&mut self, rule: Rule, e: &mut DirEdit, name_len: usize) -> NodeResult<()> {
        if e.dir.room_for(name_len).is_some() {
            return Ok(());
        }
        let lblk = e.dir.blocks.len() as u64;
        let goal = e
            .map
            .before(lblk)
            .map_or(self.group_start_of(e.ino), |r| r.pblk + r.len);
        let mut map = std::mem::take(&mut e.map);
        let mut tree = std::mem::take(&mut e.tree);
        let bm = self.block_mapped(&e.node);
        let how = self.new_blocks(&e.node);
        let r = self
            .map_new(rule, &mut map, lblk, 1, goal, how)
            .and_then(|()| {
                if bm {
                    // The working copy takes the change now: a failure
                    // discards the whole edit.
                    let c = self.plan_ind(rule, &map, &e.ind, lblk, lblk + 1, goal)?;
                    c.apply(&mut e.ind);
                    Ok(())
                } else {
                    self.fit_tree(rule, &map, &mut tree, goal)
                }
            });
        e.map = map;
        e.tree = tree;
        e.map_changed = true;
        r
    }

    /// Adds an entry (room made by [`Ext4Files::dir_room`]).
    fn dir_add(&self, e: &mut DirEdit, entry: Entry) {
        match e.dir.room_for(entry.name.len()) {
            Some(i) => e.dir.insert_in(i, entry),
            None => {
                e.dir.push_block(entry);
                let size = e.node.inode.size() + self.geo.bs;
                e.node.inode.set_size(size);
            }
        }
    }

    fn new_inode(&mut self, ctx: Ctx, ino: u32, mode: u16, links: u16) -> DiskInode {
        let mut i = DiskInode::new(self.geo.inode_size, self.geo.extra_isize);
        i.set_mode(mode);
        i.set_uid(ctx.cred.uid);
        i.set_gid(ctx.cred.gid);
        i.set_links(links);
        for s in [Stamp::Atime, Stamp::Ctime, Stamp::Mtime, Stamp::Crtime] {
            i.set_time(s, ctx.now);
        }
        let g = self.next_generation(ino, ctx.now);
        i.set_generation(g);
        i
    }

    /// mknod, mkdir and symlink.
    fn create(&mut self, ctx: Ctx, dir: Ino, name: &[u8], new: New<'_>) -> NodeResult<Attr> {
        let New {
            kind,
            perm,
            rdev,
            target,
        } = new;
        self.writable()?;
        check_name(name)?;
        let dino = ino32(dir)?;
        if self.dir(dino)?.lookup(name).is_some() {
            return Err(err(ErrorKind::Exists));
        }
        let is_dir = kind == FileType::Directory;
        let slow = target.is_some_and(|t| t.len() >= 60);
        let mut pe = self.edit_dir(dino)?;
        if is_dir && pe.node.inode.links() >= LINK_MAX {
            self.cancel_edit(pe);
            return Err(err(ErrorKind::TooManyLinks));
        }
        let rule = Rule::Normal(ctx.cred);
        self.groups.begin();
        let alloc = (|| -> NodeResult<(u32, FileMap, Vec<u64>)> {
            let ino = self
                .groups
                .alloc_inode(&self.dev, &self.geo, self.geo.inode_group(dino), is_dir)?
                .ok_or(err(ErrorKind::NoSpace))?;
            let mut map = FileMap::new();
            let tree = Vec::new();
            if is_dir || slow {
                let goal = pe
                    .map
                    .runs()
                    .last()
                    .map_or(self.group_start_of(ino), |r| r.pblk + r.len);
                let how = if self.geo.extents {
                    NewBlocks::Written
                } else {
                    NewBlocks::BlockMap
                };
                self.map_new(rule, &mut map, 0, 1, goal, how)?;
            }
            self.dir_room(rule, &mut pe, name.len())?;
            Ok((ino, map, tree))
        })();
        let (ino, map, tree) = match alloc {
            Ok(x) => {
                self.groups.commit();
                x
            }
            Err(e) => {
                self.groups.rollback();
                self.cancel_edit(pe);
                return Err(e);
            }
        };
        let now = ctx.now;
        let mode = kind.mode_bits() | (perm & 0o7777);
        let mut inode = self.new_inode(ctx, ino, mode, if is_dir { 2 } else { 1 });
        let bs = self.geo.bs;
        // Without the extent feature, files are block-mapped: no flag,
        // and i_block all zeros until blocks are mapped (e2fsck takes an
        // extent flag there for corruption).
        let extents = self.geo.extents;
        match kind {
            FileType::Regular | FileType::Directory => {
                if extents {
                    inode.set_flags(EXTENTS_FL);
                    inode.set_i_block(&empty_extent_root());
                }
            }
            FileType::Symlink => {
                let t = target.unwrap_or_default();
                inode.set_size(t.len() as u64);
                if slow {
                    if extents {
                        inode.set_flags(EXTENTS_FL);
                        inode.set_i_block(&empty_extent_root());
                    }
                } else {
                    let mut b = [0u8; 60];
                    b[..t.len()].copy_from_slice(t);
                    inode.set_i_block(&b);
                }
            }
            FileType::CharDevice | FileType::BlockDevice => inode.set_i_block(&rdev_to(rdev)),
            FileType::Fifo | FileType::Socket => {}
        }
        if is_dir {
            inode.set_size(bs);
        }
        let first_block = map.find(0).map(|r| r.pblk);
        let mut node = Node {
            inode,
            tree_dirty: !map.is_empty(),
            map: Some(map),
            tree,
            ind: Indirect::default(),
            dirty: true,
        };
        self.set_sectors(&mut node);
        if is_dir {
            let b0 = DirBlock::new(
                vec![
                    Entry {
                        ino,
                        ft: 2,
                        name: b".".to_vec(),
                    },
                    Entry {
                        ino: dino,
                        ft: 2,
                        name: b"..".to_vec(),
                    },
                ],
                true,
            );
            let cap = super::dirent::capacity(bs as usize, self.geo.seed.is_some());
            let d = Dir::new(vec![Some(b0)], cap, false).map_err(|_| internal(ino, "new dir"))?;
            self.put_dir(ino, d);
            dir_links_add(&mut pe.node.inode, 1);
        }
        if let (Some(t), Some(pb)) = (target, first_block) {
            let mut b = vec![0u8; bs as usize];
            b[..t.len()].copy_from_slice(t);
            self.data.put(pb, &b);
        }
        self.dir_add(
            &mut pe,
            Entry {
                ino,
                ft: ft_of(kind),
                name: name.to_vec(),
            },
        );
        self.finish_edit(pe, now);
        let attr = self.attr_of(ino, &node);
        self.put(ino, node);
        self.staged += 512;
        Ok(attr)
    }

    pub(super) fn mknod_inner(
        &mut self,
        ctx: Ctx,
        dir: Ino,
        name: &[u8],
        kind: FileType,
        perm: u16,
        rdev: u32,
    ) -> NodeResult<Attr> {
        if matches!(kind, FileType::Directory | FileType::Symlink) {
            return Err(err(ErrorKind::InvalidArgument));
        }
        self.create(
            ctx,
            dir,
            name,
            New {
                kind,
                perm,
                rdev,
                target: None,
            },
        )
    }

    pub(super) fn mkdir_inner(
        &mut self,
        ctx: Ctx,
        dir: Ino,
        name: &[u8],
        perm: u16,
    ) -> NodeResult<Attr> {
        self.create(
            ctx,
            dir,
            name,
            New {
                kind: FileType::Directory,
                perm,
                rdev: 0,
                target: None,
            },
        )
    }

    pub(super) fn symlink_inner(
        &mut self,
        ctx: Ctx,
        dir: Ino,
        name: &[u8],
        target: &[u8],
    ) -> NodeResult<Attr> {
        if target.is_empty() {
            return Err(err(ErrorKind::NotFound));
        }
        if target.contains(&0) {
            return Err(err(ErrorKind::InvalidArgument));
        }
        // The kernel stores the target with its NUL: at most a block.
        if target.len() as u64 >= self.geo.bs || target.len() > 4095 {
            return Err(err(ErrorKind::NameTooLong));
        }
        self.create(
            ctx,
            dir,
            name,
            New {
                kind: FileType::Symlink,
                perm: 0o777,
                rdev: 0,
                target: Some(target),
            },
        )
    }

    pub(super) fn link_inner(
        &mut self,
        ctx: Ctx,
        ino: Ino,
        newdir: Ino,
        newname: &[u8],
    ) -> NodeResult<Attr> {
        self.writable()?;
        check_name(newname)?;
        let i = ino32(ino)?;
        let dino = ino32(newdir)?;
        let n = self.node(i, false)?;
        match n.inode.kind() {
            Some(FileType::Directory) => return Err(err(ErrorKind::NotPermitted)),
            None => return Err(err(ErrorKind::InvalidArgument)),
            _ => {}
        }
        if n.inode.links() >= LINK_MAX {
            return Err(err(ErrorKind::TooManyLinks));
        }
        if self.dir(dino)?.lookup(newname).is_some() {
            return Err(err(ErrorKind::Exists));
        }
        let ft = ft_of(n.inode.kind().unwrap_or(FileType::Regular));
        let mut pe = self.edit_dir(dino)?;
        self.groups.begin();
        if let Err(e) = self.dir_room(Rule::Normal(ctx.cred), &mut pe, newname.len()) {
            self.groups.rollback();
            self.cancel_edit(pe);
            return Err(e);
        }
        self.groups.commit();
        self.dir_add(
            &mut pe,
            Entry {
                ino: i,
                ft,
                name: newname.to_vec(),
            },
        );
        self.finish_edit(pe, ctx.now);
        let mut node = self.take(i)?;
        node.inode.set_links(node.inode.links() + 1);
        node.inode.set_time(Stamp::Ctime, ctx.now);
        node.dirty = true;
        let attr = self.attr_of(i, &node);
        self.put(i, node);
        Ok(attr)
    }

    /// Drops one link of `ino` (the entry is already gone); frees the
    /// inode and its blocks with the last.
    fn drop_link(&mut self, ino: u32, now: Timespec) -> NodeResult<()> {
        let mut node = self.take(ino)?;
        let is_dir = node.inode.kind() == Some(FileType::Directory);
        let links = node.inode.links();
        if is_dir || links <= 1 {
            let r = self.release(ino, &mut node, now);
            self.put(ino, node);
            return r;
        }
        node.inode.set_links(links - 1);
        node.inode.set_time(Stamp::Ctime, now);
        node.dirty = true;
        self.put(ino, node);
        Ok(())
    }

    /// Frees an inode's blocks, xattr block and the inode itself.
    fn release(&mut self, ino: u32, node: &mut Node, now: Timespec) -> NodeResult<()> {
        let is_dir = node.inode.kind() == Some(FileType::Directory);
        let bm = self.block_mapped(node);
        if let Some(map) = node.map.as_mut() {
            let runs = map.remove(0, u64::MAX);
            self.free_runs(&runs)?;
        }
        let tree: Vec<(u64, u64)> = node.tree.drain(..).map(|b| (b, 1)).collect();
        self.free_runs(&tree)?;
        let ind: Vec<(u64, u64)> = node.ind.clear().into_iter().map(|b| (b, 1)).collect();
        self.free_runs(&ind)?;
        let acl = node.inode.file_acl();
        if acl != 0 {
            self.release_xattr(ino, acl)?;
            node.inode.set_file_acl(0);
        }
        self.groups.free_inode(&self.dev, &self.geo, ino, is_dir)?;
        let i = &mut node.inode;
        i.set_links(0);
        i.set_dtime((now.sec & 0xFFFF_FFFF) as u32);
        i.set_time(Stamp::Ctime, now);
        i.set_size(0);
        if i.flags() & EXTENTS_FL != 0 {
            i.set_i_block(&empty_extent_root());
        } else if bm {
            // The kernel's truncate clears a block map's pointers.
            i.set_i_block(&[0u8; 60]);
        }
        i.set_sectors(0);
        node.tree_dirty = false;
        node.dirty = true;
        if is_dir {
            self.dirs.get_mut().remove(&ino);
        }
        self.staged += 512;
        Ok(())
    }

    /// Drops one reference to an extended attribute block.
    fn release_xattr(&mut self, ino: u32, blk: u64) -> NodeResult<()> {
        let bad = |why: &str| -> NodeError {
            FileError::XattrBlock {
                ino,
                block: blk,
                why: why.into(),
            }
            .into()
        };
        let mut b = match self.meta.get(&blk) {
            Some(b) => b.clone(),
            None => self.read_block(blk)?,
        };
        if read_u32le(&b, 0) != XATTR_MAGIC {
            return Err(bad("bad magic number"));
        }
        let seed = self.geo.seed;
        let csum = |b: &[u8]| -> u32 {
            let mut c = b.to_vec();
            write_u32le(&mut c, 0x10, 0);
            let s = crc32c_raw(seed.unwrap_or(0), &blk.to_le_bytes());
            crc32c_raw(s, &c)
        };
        if seed.is_some() && csum(&b) != read_u32le(&b, 0x10) {
            return Err(bad("checksum does not match"));
        }
        let refs = read_u32le(&b, 4);
        if refs <= 1 {
            self.free_runs(&[(blk, 1)])?;
        } else {
            write_u32le(&mut b, 4, refs - 1);
            if seed.is_some() {
                let c = csum(&b);
                write_u32le(&mut b, 0x10, c);
            }
            self.meta.insert(blk, b);
        }
        Ok(())
    }

    /// unlink and rmdir.
    pub(super) fn remove_inner(
        &mut self,
        ctx: Ctx,
        dir: Ino,
        name: &[u8],
        want_dir: bool,
    ) -> NodeResult<()> {
        self.writable()?;
        check_name(name)?;
        let dino = ino32(dir)?;
        let e = self
            .dir(dino)?
            .lookup(name)
            .cloned()
            .ok_or(err(ErrorKind::NotFound))?;
        let n = self.node(e.ino, false)?;
        let is_dir = n.inode.kind() == Some(FileType::Directory);
        if want_dir && !is_dir {
            return Err(err(ErrorKind::NotADirectory));
        }
        if !want_dir && is_dir {
            return Err(err(ErrorKind::IsADirectory));
        }
        if is_dir && !self.dir(e.ino)?.is_empty() {
            return Err(err(ErrorKind::DirectoryNotEmpty));
        }
        let mut pe = self.edit_dir(dino)?;
        self.groups.begin();
        pe.dir.remove(name);
        if is_dir {
            dir_links_add(&mut pe.node.inode, -1);
        }
        match self.drop_link(e.ino, ctx.now) {
            Ok(()) => self.groups.commit(),
            Err(x) => {
                self.groups.rollback();
                self.cancel_edit(pe);
                return Err(x);
            }
        }
        self.finish_edit(pe, ctx.now);
        Ok(())
    }

    /// True when directory `a` is `d` or one of its ancestors.
    fn is_ancestor(&self, a: u32, d: u32) -> NodeResult<bool> {
        let mut cur = d;
        // Deeper than any path the kernel resolves (PATH_MAX / 2 levels):
        // a loop in damaged metadata.
        for _ in 0..=4096 {
            if cur == a {
                return Ok(true);
            }
            if cur == ROOT_INO {
                return Ok(false);
            }
            cur = self.dir(cur)?.parent().ok_or_else(|| FileError::DirBlock {
                dir: cur,
                lblk: 0,
                why: "no .. entry".into(),
            })?;
        }
        Err(internal(d, "directory loop"))
    }

    /// The edit for directory `ino` in `edits`.
    fn edit_index(edits: &[DirEdit], ino: u32) -> usize {
        edits.iter().position(|e| e.ino == ino).unwrap_or(0)
    }

    pub(super) fn rename_inner(
        &mut self,
        ctx: Ctx,
        olddir: Ino,
        oldname: &[u8],
        newdir: Ino,
        newname: &[u8],
        flags: RenameFlags,
    ) -> NodeResult<()> {
        self.writable()?;
        check_name(oldname)?;
        check_name(newname)?;
        if flags.noreplace && flags.exchange {
            return Err(err(ErrorKind::InvalidArgument));
        }
        let od = ino32(olddir)?;
        let nd = ino32(newdir)?;
        let src = self
            .dir(od)?
            .lookup(oldname)
            .cloned()
            .ok_or(err(ErrorKind::NotFound))?;
        let dst = self.dir(nd)?.lookup(newname).cloned();
        if flags.exchange && dst.is_none() {
            return Err(err(ErrorKind::NotFound));
        }
        if flags.noreplace && dst.is_some() {
            return Err(err(ErrorKind::Exists));
        }
        let src_dir = self.node(src.ino, false)?.inode.kind() == Some(FileType::Directory);
        let mut dst_dir = false;
        if let Some(d) = &dst {
            if d.ino == src.ino {
                return Ok(());
            }
            dst_dir = self.node(d.ino, false)?.inode.kind() == Some(FileType::Directory);
            if !flags.exchange {
                if src_dir && !dst_dir {
                    return Err(err(ErrorKind::NotADirectory));
                }
                if !src_dir && dst_dir {
                    return Err(err(ErrorKind::IsADirectory));
                }
                if dst_dir && !self.dir(d.ino)?.is_empty() {
                    return Err(err(ErrorKind::DirectoryNotEmpty));
                }
            }
        }
        if od != nd {
            if src_dir && self.is_ancestor(src.ino, nd)? {
                return Err(err(ErrorKind::InvalidArgument));
            }
            if let Some(d) = &dst {
                if flags.exchange && dst_dir && self.is_ancestor(d.ino, od)? {
                    return Err(err(ErrorKind::InvalidArgument));
                }
            }
            let gains =
                (src_dir && !(dst.is_some() && dst_dir)) || (flags.exchange && dst_dir && !src_dir);
            if gains && self.node(nd, false)?.inode.links() >= LINK_MAX {
                return Err(err(ErrorKind::TooManyLinks));
            }
            if flags.exchange
                && dst_dir
                && !src_dir
                && self.node(od, false)?.inode.links() >= LINK_MAX
            {
                return Err(err(ErrorKind::TooManyLinks));
            }
        }
        // The directories that change: old and new parents, and a moved
        // directory (its ..) when it changes parents.
        let mut want = vec![od];
        if nd != od {
            want.push(nd);
            if src_dir {
                want.push(src.ino);
            }
            if let Some(d) = &dst {
                if flags.exchange && dst_dir {
                    want.push(d.ino);
                }
            }
        }
        let mut edits: Vec<DirEdit> = Vec::new();
        for &w in &want {
            match self.edit_dir(w) {
                Ok(e) => edits.push(e),
                Err(x) => {
                    for e in edits {
                        self.cancel_edit(e);
                    }
                    return Err(x);
                }
            }
        }
        self.groups.begin();
        let r = (|| -> NodeResult<()> {
            let ni = Self::edit_index(&edits, nd);
            if dst.is_none() {
                self.dir_room(Rule::Normal(ctx.cred), &mut edits[ni], newname.len())?;
            }
            Ok(())
        })();
        if let Err(x) = r {
            self.groups.rollback();
            for e in edits {
                self.cancel_edit(e);
            }
            return Err(x);
        }
        let now = ctx.now;
        let oi = Self::edit_index(&edits, od);
        let ni = Self::edit_index(&edits, nd);
        let link_delta = |e: &mut DirEdit, d: i32| dir_links_add(&mut e.node.inode, d);
        let mut released = Ok(());
        if let (true, Some(d)) = (flags.exchange, dst.clone()) {
            edits[oi].dir.repoint(oldname, d.ino, d.ft);
            edits[ni].dir.repoint(newname, src.ino, src.ft);
            if od != nd {
                if src_dir {
                    let si = Self::edit_index(&edits, src.ino);
                    edits[si].dir.set_parent(nd);
                    link_delta(&mut edits[oi], -1);
                    link_delta(&mut edits[ni], 1);
                }
                if dst_dir {
                    let di = Self::edit_index(&edits, d.ino);
                    edits[di].dir.set_parent(od);
                    link_delta(&mut edits[ni], -1);
                    link_delta(&mut edits[oi], 1);
                }
            }
            for i in [src.ino, d.ino] {
                self.touch_ctime(&mut edits, i, now)?;
            }
        } else {
            edits[oi].dir.remove(oldname);
            match &dst {
                Some(d) => {
                    edits[ni].dir.repoint(newname, src.ino, src.ft);
                    if dst_dir {
                        link_delta(&mut edits[ni], -1);
                    }
                    released = self.drop_link(d.ino, now);
                }
                None => self.dir_add(
                    &mut edits[ni],
                    Entry {
                        ino: src.ino,
                        ft: src.ft,
                        name: newname.to_vec(),
                    },
                ),
            }
            if src_dir && od != nd {
                let si = Self::edit_index(&edits, src.ino);
                edits[si].dir.set_parent(nd);
                link_delta(&mut edits[oi], -1);
                link_delta(&mut edits[ni], 1);
            }
            if released.is_ok() {
                released = self.touch_ctime(&mut edits, src.ino, now);
            }
        }
        if let Err(x) = released {
            self.groups.rollback();
            for e in edits {
                self.cancel_edit(e);
            }
            return Err(x);
        }
        self.groups.commit();
        for e in edits {
            let is_parent = e.ino == od || e.ino == nd;
            if is_parent {
                self.finish_edit(e, now);
            } else {
                // A moved directory: only its .. block changed.
                let mut e = e;
                e.node.dirty = true;
                let (ino, node, dir) = (e.ino, e.node, e.dir);
                self.put(ino, node);
                self.put_dir(ino, dir);
            }
        }
        Ok(())
    }

    /// Stamps ctime on `ino` (taken out in `edits`, or in the cache).
    fn touch_ctime(&mut self, edits: &mut [DirEdit], ino: u32, now: Timespec) -> NodeResult<()> {
        if let Some(e) = edits.iter_mut().find(|e| e.ino == ino) {
            e.node.inode.set_time(Stamp::Ctime, now);
            e.node.dirty = true;
            return Ok(());
        }
        if let Some(n) = self.nodes.get_mut().get_mut(&ino) {
            let n = std::sync::Arc::make_mut(n);
            n.inode.set_time(Stamp::Ctime, now);
            n.dirty = true;
            return Ok(());
        }
        let mut n = self.take(ino)?;
        n.inode.set_time(Stamp::Ctime, now);
        n.dirty = true;
        self.put(ino, n);
        Ok(())
    }

    /// The current contents of a mapped, written block (staged or on
    /// disk).
    fn block_contents(&self, pblk: u64) -> NodeResult<Vec<u8>> {
        match self.data.get(pblk) {
            Some(b) => Ok(b.to_vec()),
            None => Ok(self.read_block(pblk)?),
        }
    }

    fn regular(&self, ino: u32) -> NodeResult<()> {
        match self.node(ino, false)?.inode.kind() {
            Some(FileType::Regular) => Ok(()),
            Some(FileType::Directory) => Err(err(ErrorKind::IsADirectory)),
            _ => Err(err(ErrorKind::InvalidArgument)),
        }
    }

    pub(super) fn write_inner(
        &mut self,
        ctx: Ctx,
        ino: Ino,
        offset: u64,
        data: &[u8],
    ) -> NodeResult<usize> {
        self.writable()?;
        let i = ino32(ino)?;
        self.regular(i)?;
        if data.is_empty() {
            return Ok(0);
        }
        // A block-mapped file stops at s_bitmap_maxbytes (the kernel's
        // ext4_write_checks: EFBIG at it, a short write before it).
        let max = self.max_size(&*self.node(i, false)?);
        if offset >= max {
            return Err(err(ErrorKind::FileTooBig));
        }
        let mut len = (data.len() as u64).min(max - offset);
        let bs = self.geo.bs;
        let node = self.take(i)?;
        let map = node.map.clone().unwrap_or_default();
        // Pass 1: the new contents of the edge blocks, and which blocks
        // need allocating (holes getting non-zero data).
        let first = offset / bs;
        let mut edge: std::collections::HashMap<u64, Vec<u8>> = std::collections::HashMap::new();
        let last = (offset + len).div_ceil(bs);
        for lblk in [first, last - 1] {
            let bstart = lblk * bs;
            let full = offset <= bstart && offset + len >= bstart + bs;
            if full || edge.contains_key(&lblk) {
                continue;
            }
            let mut b = match map.find(lblk) {
                Some(r) if !r.unwritten => match self.block_contents(r.pblk + lblk - r.lblk) {
                    Ok(b) => b,
                    Err(e) => {
                        self.put(i, node);
                        return Err(e);
                    }
                },
                _ => vec![0u8; bs as usize],
            };
            let s = offset.max(bstart);
            let e = (offset + len).min(bstart + bs);
            b[(s - bstart) as usize..(e - bstart) as usize]
                .copy_from_slice(&data[(s - offset) as usize..(e - offset) as usize]);
            edge.insert(lblk, b);
        }
        let block_of = |lblk: u64| -> &[u8] {
            match edge.get(&lblk) {
                Some(b) => b,
                None => {
                    let s = (lblk * bs - offset) as usize;
                    &data[s..s + bs as usize]
                }
            }
        };
        let zero = |b: &[u8]| b.iter().all(|&x| x == 0);
        // Holes that get data, in order.
        let mut needs: Vec<u64> = Vec::new();
        for p in map.pieces(first, last) {
            if let Piece::Hole { start, end } = p {
                for lblk in start..end {
                    if !zero(block_of(lblk)) {
                        needs.push(lblk);
                    }
                }
            }
        }
        // Short write when space runs out (as the kernel's write returns
        // the bytes it could place).
        let rule = Rule::Normal(ctx.cred);
        let mut afford = self.afford(rule);
        if self.block_mapped(&node) {
            // The indirect blocks come out of the same space: place as
            // many data blocks as fit with the indirect blocks they need
            // (the kernel allocates each branch with its data).
            afford = afford.min(self.bm_fit(&node.ind, &needs));
        }
        let mut last_excl = last;
        if needs.len() as u64 > afford {
            let cut = needs[afford as usize];
            if cut * bs <= offset {
                self.put(i, node);
                return Err(err(ErrorKind::NoSpace));
            }
            len = cut * bs - offset;
            last_excl = cut;
            needs.truncate(afford as usize);
        }
        // Pass 2: allocate (runs of consecutive logical blocks together).
        self.groups.begin();
        let mut newmap = map.clone();
        let mut tree = node.tree.clone();
        let gstart = self.group_start_of(i);
        let bm = self.block_mapped(&node);
        let how = self.new_blocks(&node);
        let r = (|| -> NodeResult<Option<IndChange>> {
            let mut k = 0;
            while k < needs.len() {
                let mut j = k + 1;
                while j < needs.len() && needs[j] == needs[j - 1] + 1 {
                    j += 1;
                }
                let lblk = needs[k];
                let goal = newmap.before(lblk).map_or(gstart, |r| r.pblk + r.len);
                self.map_new(rule, &mut newmap, lblk, (j - k) as u64, goal, how)?;
                k = j;
            }
            // Unwritten blocks that get data become written.
            for p in map.pieces(first, last_excl) {
                if let Piece::Mapped(r) = p {
                    if r.unwritten {
                        for lblk in r.lblk..r.end() {
                            if !zero(block_of(lblk)) {
                                newmap.set_written(lblk, lblk + 1);
                            }
                        }
                    }
                }
            }
            if bm {
                let c =
                    self.plan_ind(Rule::Reserved, &newmap, &node.ind, first, last_excl, gstart)?;
                return Ok(Some(c));
            }
            let goal = newmap.runs().next().map_or(gstart, |r| r.pblk);
            self.fit_tree(Rule::Reserved, &newmap, &mut tree, goal)?;
            Ok(None)
        })();
        let ind_change = match r {
            Ok(c) => c,
            Err(e) => {
                self.groups.rollback();
                self.put(i, node);
                return Err(e);
            }
        };
        self.groups.commit();
        // Pass 3: stage the data.
        let mut node = node;
        for lblk in first..last_excl {
            let Some(r) = newmap.find(lblk) else { continue };
            if r.unwritten {
                continue;
            }
            let pblk = r.pblk + (lblk - r.lblk);
            self.data.put(pblk, block_of(lblk));
        }
        let changed = newmap != map || tree != node.tree;
        if let (true, Some(c)) = (changed, ind_change) {
            c.apply(&mut node.ind);
        }
        node.map = Some(newmap);
        node.tree = tree;
        if changed {
            node.tree_dirty = true;
        }
        let end = offset + len;
        if end > node.inode.size() {
            node.inode.set_size(end);
        }
        node.inode.set_time(Stamp::Mtime, ctx.now);
        node.inode.set_time(Stamp::Ctime, ctx.now);
        node.dirty = true;
        self.set_sectors(&mut node);
        self.put(i, node);
        Ok(len as usize)
    }

    pub(super) fn fallocate_inner(
        &mut self,
        ctx: Ctx,
        ino: Ino,
        offset: u64,
        len: u64,
        mode: FallocateMode,
    ) -> NodeResult<()> {
        self.writable()?;
        let i = ino32(ino)?;
        self.regular(i)?;
        if len == 0 {
            return Err(err(ErrorKind::InvalidArgument));
        }
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= self.geo.max_bytes)
            .ok_or(err(ErrorKind::FileTooBig))?;
        let bs = self.geo.bs;
        match mode {
            FallocateMode::Allocate { keep_size } => {
                // A block map has no unwritten blocks: the kernel's
                // ext4_fallocate preallocates in extent files only.
                if self.block_mapped(&*self.node(i, false)?) {
                    return Err(err(ErrorKind::Unsupported));
                }
                let node = self.take(i)?;
                let map = node.map.clone().unwrap_or_default();
                let (first, last) = (offset / bs, end.div_ceil(bs).min(MAX_LBLK_END));
                let holes: Vec<(u64, u64)> = map
                    .pieces(first, last)
                    .into_iter()
                    .filter_map(|p| match p {
                        Piece::Hole { start, end } => Some((start, end)),
                        Piece::Mapped(_) => None,
                    })
                    .collect();
                let need: u64 = holes.iter().map(|(s, e)| e - s).sum();
                let rule = Rule::Normal(ctx.cred);
                if self.afford(rule) < need {
                    self.put(i, node);
                    return Err(err(ErrorKind::NoSpace));
                }
                self.groups.begin();
                let mut newmap = map.clone();
                let mut tree = node.tree.clone();
                let gstart = self.group_start_of(i);
                let r = (|| -> NodeResult<()> {
                    for &(s, e) in &holes {
                        let goal = newmap.before(s).map_or(gstart, |r| r.pblk + r.len);
                        self.map_new(rule, &mut newmap, s, e - s, goal, NewBlocks::Unwritten)?;
                    }
                    let goal = newmap.runs().next().map_or(gstart, |r| r.pblk);
                    self.fit_tree(rule, &newmap, &mut tree, goal)
                })();
                if let Err(e) = r {
                    self.groups.rollback();
                    self.put(i, node);
                    return Err(e);
                }
                self.groups.commit();
                let mut node = node;
                if need > 0 {
                    node.map = Some(newmap);
                    node.tree = tree;
                    node.tree_dirty = true;
                }
                // ctime always; mtime when the size grows (the kernel's
                // ext4_alloc_file_blocks).
                node.inode.set_time(Stamp::Ctime, ctx.now);
                if !keep_size && end > node.inode.size() {
                    node.inode.set_size(end);
                    node.inode.set_time(Stamp::Mtime, ctx.now);
                }
                node.dirty = true;
                self.set_sectors(&mut node);
                self.put(i, node);
                self.staged += 512;
                Ok(())
            }
            FallocateMode::PunchHole => {
                let node = self.take(i)?;
                let size = node.inode.size();
                if offset >= size {
                    self.put(i, node);
                    return Ok(());
                }
                // Past EOF the hole ends after the page holding i_size.
                let end = if end > size {
                    size.div_ceil(4096) * 4096
                } else {
                    end
                };
                self.punch(ctx, i, node, offset, end)
            }
        }
    }

    /// Punches `offset..end` of inode `i` (zeroing partial blocks).
    fn punch(&mut self, ctx: Ctx, i: u32, node: Node, offset: u64, end: u64) -> NodeResult<()> {
        let bs = self.geo.bs;
        let map = node.map.clone().unwrap_or_default();
        // Partial blocks at the edges are zeroed where written.
        let mut zeroed: Vec<(u64, Vec<u8>)> = Vec::new();
        let (fb, lb) = (offset.div_ceil(bs), end / bs);
        let edges: Vec<(u64, u64, u64)> = if offset / bs == (end.saturating_sub(1)) / bs && fb > lb
        {
            vec![(offset / bs, offset, end)]
        } else {
            let mut v = Vec::new();
            if offset % bs != 0 {
                v.push((offset / bs, offset, ((offset / bs) + 1) * bs));
            }
            if end % bs != 0 && end / bs >= fb {
                v.push((end / bs, (end / bs) * bs, end));
            }
            v
        };
        for (lblk, s, e) in edges {
            if let Some(r) = map.find(lblk) {
                if !r.unwritten {
                    let pblk = r.pblk + lblk - r.lblk;
                    let mut b = match self.block_contents(pblk) {
                        Ok(b) => b,
                        Err(x) => {
                            self.put(i, node);
                            return Err(x);
                        }
                    };
                    b[(s - lblk * bs) as usize..(e - lblk * bs) as usize].fill(0);
                    zeroed.push((pblk, b));
                }
            }
        }
        self.groups.begin();
        let mut newmap = map.clone();
        let mut tree = node.tree.clone();
        let freed = if lb > fb {
            newmap.remove(fb, lb)
        } else {
            Vec::new()
        };
        let refit = self.refit_after_removal(i, &node, &newmap, &mut tree, fb..lb.max(fb), &freed);
        let ind_change = match refit {
            Ok(c) => c,
            Err(e) => {
                self.put(i, node);
                return Err(e);
            }
        };
        let mut node = node;
        for (pblk, b) in zeroed {
            self.data.put(pblk, &b);
        }
        if !freed.is_empty() || tree != node.tree {
            node.tree_dirty = true;
            if let Some(c) = ind_change {
                c.apply(&mut node.ind);
            }
        }
        node.map = Some(newmap);
        node.tree = tree;
        node.inode.set_time(Stamp::Mtime, ctx.now);
        node.inode.set_time(Stamp::Ctime, ctx.now);
        node.dirty = true;
        self.set_sectors(&mut node);
        self.put(i, node);
        Ok(())
    }

    pub(super) fn setattr_inner(&mut self, ctx: Ctx, ino: Ino, attr: SetAttr) -> NodeResult<Attr> {
        self.writable()?;
        let i = ino32(ino)?;
        if let Some(size) = attr.size {
            self.regular(i)?;
            if size > self.max_size(&*self.node(i, false)?) {
                return Err(err(ErrorKind::FileTooBig));
            }
            let node = self.take(i)?;
            let old = node.inode.size();
            if size < old {
                // Everything from the block after the new end goes
                // (preallocated blocks past the old end too), and the
                // rest of the last block reads as zeros.
                self.truncate_blocks(ctx, i, node, size)?;
            } else {
                self.put(i, node);
            }
            let mut node = self.take(i)?;
            node.inode.set_size(size);
            node.inode.set_time(Stamp::Mtime, ctx.now);
            node.dirty = true;
            self.put(i, node);
        }
        let mut node = self.take(i)?;
        let inode = &mut node.inode;
        if let Some(p) = attr.perm {
            inode.set_mode((inode.mode() & 0o170000) | (p & 0o7777));
        }
        if let Some(u) = attr.uid {
            inode.set_uid(u);
        }
        if let Some(g) = attr.gid {
            inode.set_gid(g);
        }
        if let Some(t) = attr.atime {
            inode.set_time(Stamp::Atime, t);
        }
        if let Some(t) = attr.mtime {
            inode.set_time(Stamp::Mtime, t);
        }
        inode.set_time(Stamp::Ctime, ctx.now);
        node.dirty = true;
        self.staged += 512;
        let a = self.attr_of(i, &node);
        self.put(i, node);
        Ok(a)
    }

    /// Truncation: frees every block from the one after `size`'s last
    /// byte on and zeroes the rest of a partial last block.
    fn truncate_blocks(&mut self, ctx: Ctx, i: u32, node: Node, size: u64) -> NodeResult<()> {
        let bs = self.geo.bs;
        let map = node.map.clone().unwrap_or_default();
        let mut zeroed = None;
        if size % bs != 0 {
            let lblk = size / bs;
            if let Some(r) = map.find(lblk) {
                if !r.unwritten {
                    let pblk = r.pblk + lblk - r.lblk;
                    let mut b = match self.block_contents(pblk) {
                        Ok(b) => b,
                        Err(x) => {
                            self.put(i, node);
                            return Err(x);
                        }
                    };
                    b[(size % bs) as usize..].fill(0);
                    zeroed = Some((pblk, b));
                }
            }
        }
        self.groups.begin();
        let mut newmap = map.clone();
        let mut tree = node.tree.clone();
        let from = size.div_ceil(bs);
        let freed = newmap.remove(from, u64::MAX);
        let refit = self.refit_after_removal(i, &node, &newmap, &mut tree, from..u64::MAX, &freed);
        let ind_change = match refit {
            Ok(c) => c,
            Err(e) => {
                self.put(i, node);
                return Err(e);
            }
        };
        let mut node = node;
        if let Some((pblk, b)) = zeroed {
            self.data.put(pblk, &b);
        }
        if !freed.is_empty() || tree != node.tree {
            node.tree_dirty = true;
            if let Some(c) = ind_change {
                c.apply(&mut node.ind);
            }
        }
        node.map = Some(newmap);
        node.tree = tree;
        node.inode.set_time(Stamp::Ctime, ctx.now);
        node.dirty = true;
        self.set_sectors(&mut node);
        self.put(i, node);
        Ok(())
    }
}
