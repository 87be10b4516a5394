//! Namespace operations: create (files, devices, directories, symlinks),
//! link, unlink, rmdir, rename and setattr, with the kernel's checks and
//! its transaction space reservations (`xfs_trans_space.h`).

use super::super::bmap::Extent;
use super::super::dinode::{Dinode, flags2, format};
use super::super::dir2::{Entry, ftype, sf};
use super::super::symlink;
use super::alloc::AllocReq;
use super::dir::{DirState, DirUndo, check_ftype};
use super::inode::{Fork, InodeState, rdev_to_xfs};
use super::{Undo, XfsFiles, check_name, ftype_of};
use crate::blockdev::BlockDevice;
use crate::fs::node::{
    Attr, Ctx, ErrorKind, FileType, NodeError, NodeResult, RenameFlags, SetAttr,
};

/// `XFS_MAXLINK`.
const MAXLINK: u32 = (1 << 31) - 1;
const S_ISUID: u16 = 0o4000;
const S_ISGID: u16 = 0o2000;
const S_IXGRP: u16 = 0o0010;

fn err(kind: ErrorKind) -> NodeError {
    NodeError::new(kind)
}

impl<D: BlockDevice> XfsFiles<D> {
    /// `XFS_DIRENTER_SPACE_RES`: blocks adding one directory entry may
    /// need (a split at every da-btree level, and bmap btree splits).
    fn direnter_res(&self) -> u64 {
        let fsbcount = self.geo.dir.fsbcount;
        let dbs = 5 + 2; // XFS_DA_NODE_MAXDEPTH + 2 for the data fork
        // XFS_NEXTENTADD_SPACE_RES for fsbcount blocks: one bmap btree
        // split per (mxr - mnr) new extents.
        let per = (self.geo.bs.saturating_sub(56) / 8) / 2;
        let bmap1b = fsbcount.div_ceil(per.max(1)) * (self.geo.bm_maxlevels - 1);
        fsbcount * dbs + dbs * bmap1b
    }

    /// `XFS_IALLOC_SPACE_RES`: a new inode chunk and inobt/finobt splits.
    fn ialloc_res(&self) -> u64 {
        let trees = if self.geo.finobt { 2 } else { 1 };
        u64::from(self.geo.ialloc_blks) + trees * self.geo.inobt_maxlevels
    }

    /// Checks that `dir` is a live directory.
    fn check_dir(&mut self, dir: u64) -> NodeResult<()> {
        let st = self.inode_get(dir)?;
        if st.kind()? != FileType::Directory {
            return Err(err(ErrorKind::NotADirectory));
        }
        if st.di.nlink == 0 {
            return Err(err(ErrorKind::NotFound));
        }
        Ok(())
    }

    /// Stamps mtime and ctime on directory `dir`.
    fn touch_dir(&mut self, dir: u64, now: crate::fs::node::Timespec) -> NodeResult<()> {
        let bigtime = self.geo.bigtime;
        let st = self.inode_mut(dir)?;
        Self::stamp(st, bigtime, None, Some(now), Some(now));
        Ok(())
    }

    /// Creates a file of any type in `dir`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn create_node(
        &mut self,
        ctx: Ctx,
        dir: u64,
        name: &[u8],
        kind: FileType,
        perm: u16,
        rdev: u32,
        target: Option<&[u8]>,
    ) -> NodeResult<Attr> {
        check_name(name)?;
        self.check_dir(dir)?;
        if self.dir_lookup(dir, name)?.is_some() {
            return Err(err(ErrorKind::Exists));
        }
        self.check_mutable(dir, true)?;
        let is_dir = kind == FileType::Directory;
        let (pmode, pgid, pnlink) = {
            let p = &self.inode_get(dir)?.di;
            (p.mode, p.gid, p.nlink)
        };
        if is_dir && pnlink >= MAXLINK {
            return Err(err(ErrorKind::TooManyLinks));
        }
        let lit = self.geo.lit();
        let mut remote_blocks = 0u64;
        if let Some(t) = target {
            if t.is_empty() {
                return Err(err(ErrorKind::NotFound));
            }
            if t.len() > symlink::MAXLEN {
                return Err(err(ErrorKind::NameTooLong));
            }
            if t.len() > lit {
                remote_blocks = symlink::blocks_needed(t.len(), self.geo.bs as usize) as u64;
            }
        }
        self.reserve(self.ialloc_res() + self.direnter_res() + remote_blocks)?;
        let ino = self.ialloc(dir, is_dir)?;

        // The new inode (xfs_init_new_inode).
        let generation = self.next_gen();
        let mut di = Dinode::free(ino, self.geo.uuid, generation, self.geo.inodesize);
        let mut mode = kind.mode_bits() | (perm & 0o7777);
        let mut gid = ctx.cred.gid;
        if pmode & S_ISGID != 0 {
            gid = pgid;
            if is_dir {
                mode |= S_ISGID;
            }
        }
        di.mode = mode;
        di.uid = ctx.cred.uid;
        di.gid = gid;
        di.nlink = if is_dir { 2 } else { 1 };
        di.aformat = format::EXTENTS;
        if self.geo.bigtime {
            di.flags2 |= flags2::BIGTIME;
        }
        if self.geo.nrext64 {
            di.flags2 |= flags2::NREXT64;
        }
        di.changecount = 1;
        let t = di.encode_time(ctx.now);
        (di.atime, di.mtime, di.ctime, di.crtime) = (t, t, t, t);
        let mut fork = Fork::Blocks {
            exts: Vec::new(),
            bmbt: Vec::new(),
        };
        di.format = format::EXTENTS;
        match kind {
            FileType::Directory => {
                let bytes = sf::build(dir, &[], &self.geo.dir);
                di.size = bytes.len() as u64;
                di.format = format::LOCAL;
                fork = Fork::Local(bytes);
            }
            FileType::Symlink => {
                let t = target.unwrap_or_default();
                di.size = t.len() as u64;
                if remote_blocks == 0 {
                    di.format = format::LOCAL;
                    fork = Fork::Local(t.to_vec());
                }
            }
            FileType::CharDevice | FileType::BlockDevice => {
                di.format = format::DEV;
                fork = Fork::Dev(rdev_to_xfs(rdev));
            }
            FileType::Fifo | FileType::Socket => {
                di.format = format::DEV;
                fork = Fork::Dev(0);
            }
            FileType::Regular => {}
        }
        self.save_inode(ino);
        let old = self.inodes.insert(
            ino,
            InodeState {
                di,
                fork,
                attr_blocks: 0,
                dirty: true,
                freed: false,
            },
        );
        // A cached state of a freed inode is replaced; the save above
        // restores it on rollback.
        drop(old);
        if remote_blocks > 0 {
            self.write_remote_symlink(ino, target.unwrap_or_default())?;
        }
        if is_dir {
            self.dirs
                .insert(ino, DirState::new(dir, Vec::new(), &self.geo.dir));
            self.log(Undo::Dir(DirUndo::Created(ino)));
            if let Some(d) = self.dirs.get_mut(&ino) {
                d.dirty = true;
            }
        }
        self.dir_add(
            dir,
            Entry {
                name: name.to_vec(),
                ino,
                ftype: ftype_of(kind),
            },
        )?;
        self.touch_dir(dir, ctx.now)?;
        if is_dir {
            self.inode_mut(dir)?.di.nlink += 1;
        }
        self.fix_touched()?;
        self.attr_of(ino)
    }

    /// Allocates and stages the blocks of a remote symlink target.
    fn write_remote_symlink(&mut self, ino: u64, target: &[u8]) -> NodeResult<()> {
        let bs = self.geo.bs as usize;
        let n = symlink::blocks_needed(target.len(), bs) as u64;
        let (agno, agino) = self.geo.ino_to_ag(ino);
        let mut exts = Vec::new();
        let mut off = 0u64;
        while off < n {
            let goal = Some(agino >> self.geo.inopblog);
            let (a, b, got) = self.alloc(AllocReq::near(agno, goal, n - off))?;
            exts.push(Extent {
                off,
                start: self.geo.ag_to_fsb(a, b),
                len: u64::from(got),
                unwritten: false,
            });
            off += u64::from(got);
        }
        let fsbs: Vec<u64> = exts
            .iter()
            .flat_map(|e| (0..e.len).map(move |i| e.start + i))
            .collect();
        let daddrs: Vec<u64> = fsbs.iter().map(|&f| self.geo.fsb_to_daddr(f)).collect();
        let blocks = symlink::build(target, bs, &daddrs, &self.geo.uuid, ino);
        for (fsb, b) in fsbs.iter().zip(blocks) {
            let lin = self.geo.fsb_to_lin(*fsb);
            self.stage(lin, &b);
        }
        self.set_extents(ino, exts)
    }

    /// A symlink's target.
    pub(super) fn readlink_ro(&self, ino: u64) -> NodeResult<Vec<u8>> {
        let st = self.inode_ro(ino)?;
        if st.kind()? != FileType::Symlink {
            return Err(err(ErrorKind::InvalidArgument));
        }
        match &st.fork {
            Fork::Local(b) => Ok(b.clone()),
            Fork::Blocks { exts, .. } => {
                let len = usize::try_from(st.di.size).unwrap_or(usize::MAX);
                if len == 0 || len > symlink::MAXLEN {
                    return Err(super::corrupt_inode(ino, format!("symlink of {len} bytes")));
                }
                let mut out = Vec::with_capacity(len);
                for e in exts.iter() {
                    for i in 0..e.len {
                        let b = self.read_fsb(e.start + i)?;
                        let piece = symlink::parse_block(&b, ino, out.len())
                            .map_err(|d| super::corrupt_inode(ino, d))?;
                        out.extend(piece);
                    }
                }
                if out.len() != len {
                    return Err(super::corrupt_inode(
                        ino,
                        format!("symlink blocks hold {} bytes, size is {len}", out.len()),
                    ));
                }
                Ok(out)
            }
            Fork::Dev(_) => Err(super::corrupt_inode(ino, "symlink with a device fork")),
        }
    }

    /// Adds a hard link.
    pub(super) fn link_node(
        &mut self,
        ctx: Ctx,
        ino: u64,
        newdir: u64,
        name: &[u8],
    ) -> NodeResult<Attr> {
        check_name(name)?;
        self.check_dir(newdir)?;
        let (kind, nlink) = {
            let st = self.inode_get(ino)?;
            (st.kind()?, st.di.nlink)
        };
        if kind == FileType::Directory {
            return Err(err(ErrorKind::NotPermitted));
        }
        if nlink >= MAXLINK {
            return Err(err(ErrorKind::TooManyLinks));
        }
        self.check_mutable(ino, false)?;
        self.check_mutable(newdir, true)?;
        if self.dir_lookup(newdir, name)?.is_some() {
            return Err(err(ErrorKind::Exists));
        }
        self.reserve_or_no_alloc(self.direnter_res());
        self.dir_add(
            newdir,
            Entry {
                name: name.to_vec(),
                ino,
                ftype: ftype_of(kind),
            },
        )?;
        let bigtime = self.geo.bigtime;
        let st = self.inode_mut(ino)?;
        st.di.nlink += 1;
        Self::stamp(st, bigtime, None, None, Some(ctx.now));
        self.touch_dir(newdir, ctx.now)?;
        self.fix_touched()?;
        self.attr_of(ino)
    }

    /// Drops one link of `ino` (all of a directory's); frees it with its
    /// last.
    fn drop_link(&mut self, ino: u64, now: crate::fs::node::Timespec) -> NodeResult<()> {
        let bigtime = self.geo.bigtime;
        let is_dir = self.inode_get(ino)?.kind()? == FileType::Directory;
        let st = self.inode_mut(ino)?;
        if is_dir {
            st.di.nlink = 0;
        } else {
            st.di.nlink = st.di.nlink.saturating_sub(1);
        }
        Self::stamp(st, bigtime, None, None, Some(now));
        if st.di.nlink == 0 {
            self.free_inode_blocks(ino)?;
            self.ifree(ino)?;
            let st = self.inode_mut(ino)?;
            st.fork = Fork::Blocks {
                exts: Vec::new(),
                bmbt: Vec::new(),
            };
            st.attr_blocks = 0;
            st.freed = true;
            if let Some(d) = self.dirs.remove(&ino) {
                self.log(Undo::Dir(DirUndo::Dropped(ino, Box::new(d))));
            }
        }
        Ok(())
    }

    /// Whether directory `dir` is empty.
    fn dir_is_empty(&mut self, dir: u64) -> NodeResult<bool> {
        Ok(self.dir_get(dir)?.sums.n == 0)
    }

    /// unlink and rmdir.
    pub(super) fn remove_node(
        &mut self,
        ctx: Ctx,
        dir: u64,
        name: &[u8],
        rmdir: bool,
    ) -> NodeResult<()> {
        check_name(name)?;
        self.check_dir(dir)?;
        let (ino, ft) = self
            .dir_lookup(dir, name)?
            .ok_or_else(|| err(ErrorKind::NotFound))?;
        let mode = self.inode_get(ino)?.di.mode;
        check_ftype(dir, ft, mode, ino)?;
        let is_dir = ft == ftype::DIR;
        if rmdir && !is_dir {
            return Err(err(ErrorKind::NotADirectory));
        }
        if !rmdir && is_dir {
            return Err(err(ErrorKind::IsADirectory));
        }
        if is_dir && !self.dir_is_empty(ino)? {
            return Err(err(ErrorKind::DirectoryNotEmpty));
        }
        self.check_mutable(dir, false)?;
        self.check_mutable(ino, false)?;
        // Removal never fails for want of space: the kernel retries
        // without a reservation.
        self.dir_remove(dir, name)?;
        if is_dir {
            let st = self.inode_mut(dir)?;
            st.di.nlink = st.di.nlink.saturating_sub(1);
        }
        self.touch_dir(dir, ctx.now)?;
        self.drop_link(ino, ctx.now)?;
        self.fix_touched()
    }

    /// Whether `anc` is `dir` or one of its ancestors (walking `..`).
    fn is_ancestor(&mut self, anc: u64, mut dir: u64) -> NodeResult<bool> {
        let root = self.sb.rootino;
        for _ in 0..100_000 {
            if dir == anc {
                return Ok(true);
            }
            if dir == root {
                return Ok(false);
            }
            let parent = self.dir_get(dir)?.parent;
            if parent == dir {
                return Ok(false);
            }
            dir = parent;
        }
        Err(super::corrupt_inode(dir, "directory loop through `..`"))
    }

    /// rename and renameat2.
    pub(super) fn rename_node(
        &mut self,
        ctx: Ctx,
        olddir: u64,
        oldname: &[u8],
        newdir: u64,
        newname: &[u8],
        flags: RenameFlags,
    ) -> NodeResult<()> {
        check_name(oldname)?;
        check_name(newname)?;
        if flags.exchange && flags.noreplace {
            return Err(err(ErrorKind::InvalidArgument));
        }
        self.check_dir(olddir)?;
        self.check_dir(newdir)?;
        let (sino, sft) = self
            .dir_lookup(olddir, oldname)?
            .ok_or_else(|| err(ErrorKind::NotFound))?;
        let smode = self.inode_get(sino)?.di.mode;
        check_ftype(olddir, sft, smode, sino)?;
        let target = self.dir_lookup(newdir, newname)?;
        if flags.exchange && target.is_none() {
            return Err(err(ErrorKind::NotFound));
        }
        if flags.noreplace && target.is_some() {
            return Err(err(ErrorKind::Exists));
        }
        if olddir == newdir && oldname == newname {
            return Ok(());
        }
        if let Some((tino, _)) = target {
            if tino == sino {
                return Ok(());
            }
        }
        self.check_mutable(olddir, false)?;
        self.check_mutable(newdir, target.is_none())?;
        self.check_mutable(sino, false)?;
        if let Some((tino, _)) = target {
            self.check_mutable(tino, false)?;
        }
        let s_dir = sft == ftype::DIR;
        let moving = olddir != newdir;
        if s_dir && moving && self.is_ancestor(sino, newdir)? {
            return Err(err(ErrorKind::InvalidArgument));
        }
        let now = ctx.now;
        let bigtime = self.geo.bigtime;
        if flags.exchange {
            let (tino, tft) = target.ok_or_else(|| err(ErrorKind::NotFound))?;
            let tmode = self.inode_get(tino)?.di.mode;
            check_ftype(newdir, tft, tmode, tino)?;
            let t_dir = tft == ftype::DIR;
            if t_dir && moving && self.is_ancestor(tino, olddir)? {
                return Err(err(ErrorKind::InvalidArgument));
            }
            self.reserve_or_no_alloc(2 * self.direnter_res());
            self.dir_set(olddir, oldname, tino, tft)?;
            self.dir_set(newdir, newname, sino, sft)?;
            if moving {
                if s_dir {
                    self.dir_set_parent(sino, newdir)?;
                }
                if t_dir {
                    self.dir_set_parent(tino, olddir)?;
                }
                if s_dir != t_dir {
                    let (gain, lose) = if s_dir {
                        (newdir, olddir)
                    } else {
                        (olddir, newdir)
                    };
                    let g = self.inode_mut(gain)?;
                    if g.di.nlink >= MAXLINK {
                        return Err(err(ErrorKind::TooManyLinks));
                    }
                    g.di.nlink += 1;
                    let l = self.inode_mut(lose)?;
                    l.di.nlink = l.di.nlink.saturating_sub(1);
                }
            }
            for i in [sino, tino] {
                let st = self.inode_mut(i)?;
                Self::stamp(st, bigtime, None, None, Some(now));
            }
            self.touch_dir(olddir, now)?;
            self.touch_dir(newdir, now)?;
            return self.fix_touched();
        }
        if let Some((tino, tft)) = target {
            let tmode = self.inode_get(tino)?.di.mode;
            check_ftype(newdir, tft, tmode, tino)?;
            let t_dir = tft == ftype::DIR;
            if s_dir && !t_dir {
                return Err(err(ErrorKind::NotADirectory));
            }
            if !s_dir && t_dir {
                return Err(err(ErrorKind::IsADirectory));
            }
            if t_dir && !self.dir_is_empty(tino)? {
                return Err(err(ErrorKind::DirectoryNotEmpty));
            }
            self.reserve_or_no_alloc(self.direnter_res());
            self.dir_set(newdir, newname, sino, sft)?;
            if t_dir {
                // The replaced directory's `..` link to newdir goes.
                let st = self.inode_mut(newdir)?;
                st.di.nlink = st.di.nlink.saturating_sub(1);
            }
            self.drop_link(tino, now)?;
        } else {
            self.reserve_or_no_alloc(self.direnter_res());
            self.dir_add(
                newdir,
                Entry {
                    name: newname.to_vec(),
                    ino: sino,
                    ftype: sft,
                },
            )?;
        }
        self.dir_remove(olddir, oldname)?;
        if s_dir && moving {
            let st = self.inode_mut(newdir)?;
            if st.di.nlink >= MAXLINK {
                return Err(err(ErrorKind::TooManyLinks));
            }
            st.di.nlink += 1;
            let st = self.inode_mut(olddir)?;
            st.di.nlink = st.di.nlink.saturating_sub(1);
            self.dir_set_parent(sino, newdir)?;
        }
        let st = self.inode_mut(sino)?;
        Self::stamp(st, bigtime, None, None, Some(now));
        self.touch_dir(olddir, now)?;
        self.touch_dir(newdir, now)?;
        self.fix_touched()
    }

    /// chmod, chown, utimes, truncate.
    pub(super) fn setattr_node(&mut self, ctx: Ctx, ino: u64, a: SetAttr) -> NodeResult<Attr> {
        let kind = self.inode_get(ino)?.kind()?;
        self.check_mutable(ino, a.size.is_none())?;
        if let Some(size) = a.size {
            match kind {
                FileType::Directory => return Err(err(ErrorKind::IsADirectory)),
                FileType::Regular => {}
                _ => return Err(err(ErrorKind::InvalidArgument)),
            }
            if size > i64::MAX as u64 {
                return Err(err(ErrorKind::FileTooBig));
            }
            self.truncate_file(ino, size)?;
        }
        let bigtime = self.geo.bigtime;
        let st = self.inode_mut(ino)?;
        if let Some(p) = a.perm {
            st.di.mode = (st.di.mode & 0o170000) | (p & 0o7777);
        }
        let chown = a.uid.is_some_and(|u| u != st.di.uid) || a.gid.is_some_and(|g| g != st.di.gid);
        if let Some(u) = a.uid {
            st.di.uid = u;
        }
        if let Some(g) = a.gid {
            st.di.gid = g;
        }
        if chown && a.perm.is_none() && kind != FileType::Directory {
            // A change of owner drops set-user-ID, and set-group-ID where
            // it means "execute as group" (the VFS's ATTR_KILL_S*ID).
            st.di.mode &= !S_ISUID;
            if st.di.mode & S_IXGRP != 0 {
                st.di.mode &= !S_ISGID;
            }
        }
        let m = if a.size.is_some() && a.mtime.is_none() {
            Some(ctx.now)
        } else {
            a.mtime
        };
        Self::stamp(st, bigtime, a.atime, m, Some(ctx.now));
        self.fix_touched()?;
        self.attr_of(ino)
    }
}
