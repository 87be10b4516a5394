//! The path operations, one per system call a command makes, with the
//! kernel's order of checks (so the first failing check names the errno
//! the kernel would return): the walk (`ENOENT`, `ENOTDIR`, `EACCES`,
//! `ELOOP`), the kind of the last component, `EEXIST`, `EROFS`, then the
//! permission checks, then what the filesystem itself refuses.

use super::perm::{
    Want, chmod_bits, chown_kills, may_link, new_owner, permitted, sticky_denies, write_kills,
};
use super::walk::{Frame, Last, Parent, join, path_of};
use super::{Loc, Stat, VIRTUAL, Vfs, virtual_ino};
use crate::fs::node::{
    Cred, Ctx, DirEntry, ErrorKind, FallocateMode, FileType, NodeError, NodeResult, RenameFlags,
    SetAttr, Timespec,
};
use crate::fs::{FsKind, StatFs};

fn err(k: ErrorKind) -> NodeError {
    NodeError::new(k)
}

/// `open(2)` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenFlags {
    /// Open for reading.
    pub read: bool,
    /// Open for writing.
    pub write: bool,
    /// `O_CREAT`
    pub create: bool,
    /// `O_EXCL`
    pub excl: bool,
    /// `O_TRUNC`
    pub trunc: bool,
    /// `O_NOFOLLOW`
    pub nofollow: bool,
    /// `O_DIRECTORY`
    pub directory: bool,
    /// The mode of a new file (before the umask).
    pub mode: u16,
}

impl OpenFlags {
    /// `O_RDONLY`.
    pub fn read() -> OpenFlags {
        OpenFlags {
            read: true,
            ..OpenFlags::default()
        }
    }

    /// `O_WRONLY | O_CREAT | O_TRUNC`, mode 0666 (what `>` and coreutils
    /// use to write a file).
    pub fn write_create() -> OpenFlags {
        OpenFlags {
            write: true,
            create: true,
            trunc: true,
            mode: 0o666,
            ..OpenFlags::default()
        }
    }
}

/// An open file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The file as it is after the open (created, truncated).
    pub stat: Stat,
    /// `O_CREAT` created it.
    pub created: bool,
}

/// One of the times `utimensat` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSet {
    /// `UTIME_NOW`
    Now,
    /// `UTIME_OMIT`
    Omit,
    /// This time.
    At(Timespec),
}

impl Vfs {
    fn check_writable_mount(&self, dev: usize) -> NodeResult<()> {
        if self.read_only(dev) {
            return Err(err(ErrorKind::ReadOnly));
        }
        Ok(())
    }

    /// `stat(2)`: follows symlinks.
    pub fn stat(&mut self, path: &[u8]) -> NodeResult<Stat> {
        let frames = self.walk(path, true)?;
        self.stat_frame(&frames)
    }

    /// `lstat(2)`: a final symlink is described itself.
    pub fn lstat(&mut self, path: &[u8]) -> NodeResult<Stat> {
        let frames = self.walk(path, false)?;
        self.stat_frame(&frames)
    }

    fn stat_frame(&mut self, frames: &[Frame]) -> NodeResult<Stat> {
        let f = frames.last().ok_or_else(|| err(ErrorKind::NotFound))?;
        self.getattr(f.loc)
    }

    /// `access(2)`-like: may the caller access `st` as `want` asks (write
    /// on a read-only mount: no)?
    pub fn permitted(&self, st: &Stat, want: Want) -> bool {
        if want.write && self.read_only(st.loc.dev) {
            return false;
        }
        permitted(&self.creds, &st.attr, want)
    }

    /// `readlink(2)`.
    pub fn readlink(&mut self, path: &[u8]) -> NodeResult<Vec<u8>> {
        let st = self.lstat(path)?;
        if st.attr.kind != FileType::Symlink {
            return Err(err(ErrorKind::InvalidArgument));
        }
        self.fs(st.loc.dev)?.readlink(st.loc.ino)
    }

    /// `open(2)`.
    pub fn open(&mut self, path: &[u8], flags: OpenFlags) -> NodeResult<Opened> {
        if !flags.create {
            let frames = self.walk(path, !flags.nofollow)?;
            let st = self.stat_frame(&frames)?;
            return self.may_open(st, flags, false);
        }
        if path.is_empty() {
            return Err(err(ErrorKind::NotFound));
        }
        let mut links = 0;
        let start = self.start(path)?;
        let mut p = self.parent_from(start, path, &mut links)?;
        loop {
            let name = match &p.last {
                Last::Name(n) => n.clone(),
                _ => return Err(err(ErrorKind::IsADirectory)),
            };
            match self.child(&p.frames, &name)? {
                Some(f) => {
                    if flags.excl {
                        return Err(err(ErrorKind::Exists));
                    }
                    if f.attr.kind == FileType::Symlink {
                        if flags.nofollow {
                            return Err(err(ErrorKind::TooManySymlinks));
                        }
                        // O_CREAT follows the link, creating its target
                        // when that is missing.
                        let target = self.fs(f.loc.dev)?.readlink(f.loc.ino)?;
                        links += 1;
                        if links > super::walk::MAX_SYMLINKS {
                            return Err(err(ErrorKind::TooManySymlinks));
                        }
                        if target.is_empty() {
                            return Err(err(ErrorKind::NotFound));
                        }
                        p = self.parent_from(p.frames, &target, &mut links)?;
                        continue;
                    }
                    if f.attr.kind == FileType::Directory {
                        return Err(err(ErrorKind::IsADirectory));
                    }
                    let st = self.getattr(f.loc)?;
                    return self.may_open(st, flags, p.trailing_slash);
                }
                None => {
                    if p.trailing_slash {
                        return Err(err(ErrorKind::IsADirectory));
                    }
                    let st = self.create_in(&p, &name, FileType::Regular, flags.mode)?;
                    return Ok(Opened {
                        stat: st,
                        created: true,
                    });
                }
            }
        }
    }

    /// `may_open` and `O_TRUNC` on an existing file.
    fn may_open(&mut self, st: Stat, flags: OpenFlags, slash: bool) -> NodeResult<Opened> {
        let kind = st.attr.kind;
        if slash && kind != FileType::Directory {
            return Err(err(ErrorKind::NotADirectory));
        }
        if flags.directory && kind != FileType::Directory {
            return Err(err(ErrorKind::NotADirectory));
        }
        match kind {
            FileType::Symlink => return Err(err(ErrorKind::TooManySymlinks)),
            FileType::Directory if flags.write => return Err(err(ErrorKind::IsADirectory)),
            _ => {}
        }
        let want = Want {
            read: flags.read,
            write: flags.write || flags.trunc,
            exec: false,
        };
        if want.write && matches!(kind, FileType::Regular | FileType::Directory) {
            self.check_writable_mount(st.loc.dev)?;
        }
        if !permitted(&self.creds, &st.attr, want) {
            return Err(err(ErrorKind::PermissionDenied));
        }
        if matches!(kind, FileType::Regular) && !flags.read && !flags.write && !flags.trunc {
            return Ok(Opened {
                stat: st,
                created: false,
            });
        }
        if !matches!(kind, FileType::Regular | FileType::Directory) {
            return Err(NodeError::with(
                ErrorKind::Unsupported,
                "ebsim opens only regular files and directories inside an instance",
            ));
        }
        if flags.trunc && kind == FileType::Regular {
            let st = self.ftruncate(st.loc, 0)?;
            return Ok(Opened {
                stat: st,
                created: false,
            });
        }
        Ok(Opened {
            stat: st,
            created: false,
        })
    }

    /// Creates `name` in the parent walked to (checks `EROFS` and the
    /// directory's write and search permission; the name is known not to
    /// exist).
    fn create_in(
        &mut self,
        p: &Parent,
        name: &[u8],
        kind: FileType,
        mode: u16,
    ) -> NodeResult<Stat> {
        let dir = p.dir().clone();
        self.check_writable_mount(dir.loc.dev)?;
        if !permitted(&self.creds, &dir.attr, Want::WRITE_EXEC) {
            return Err(err(ErrorKind::PermissionDenied));
        }
        let is_dir = kind == FileType::Directory;
        let mask = if is_dir { 0o1777 } else { 0o7777 };
        let perm = mode & mask & !self.umask;
        let (perm, gid) = new_owner(&self.creds, &dir.attr, perm, is_dir);
        let ctx = Ctx {
            cred: Cred {
                uid: self.creds.uid,
                gid,
            },
            now: self.now,
        };
        let fs = self.fs_mut(dir.loc.dev)?;
        let attr = if is_dir {
            fs.mkdir(ctx, dir.loc.ino, name, perm)?
        } else {
            fs.mknod(ctx, dir.loc.ino, name, kind, perm, 0)?
        };
        let loc = Loc {
            dev: dir.loc.dev,
            ino: attr.ino,
        };
        Ok(self.stat_of(loc, attr))
    }

    /// `read` at `offset` (`pread`).
    pub fn read(&mut self, loc: Loc, offset: u64, buf: &mut [u8]) -> NodeResult<usize> {
        if loc.dev == VIRTUAL {
            return Err(err(ErrorKind::IsADirectory));
        }
        let fs = self.fs(loc.dev)?;
        match fs.getattr(loc.ino)?.kind {
            FileType::Directory => return Err(err(ErrorKind::IsADirectory)),
            FileType::Regular => {}
            _ => return Err(err(ErrorKind::InvalidArgument)),
        }
        fs.read(loc.ino, offset, buf)
    }

    /// The byte ranges of a file holding data (`SEEK_DATA`/`SEEK_HOLE`).
    pub fn data_ranges(&mut self, loc: Loc) -> NodeResult<Vec<std::ops::Range<u64>>> {
        self.fs(loc.dev)?.data_ranges(loc.ino)
    }

    /// `pwrite` on a file opened for writing; a non-root writer clears the
    /// set-user-ID (and executable set-group-ID) bits first.
    ///
    /// Every block a write touches is allocated, as the kernel allocates
    /// it: blocks whose new contents are all zero become unwritten extents
    /// (allocated, read as zeros, no zero bytes written into the image),
    /// so `du` and `df` see a `dd if=/dev/zero` fill as the guest would.
    /// When space runs out the write is short, as write(2) is.
    pub fn write(&mut self, loc: Loc, offset: u64, data: &[u8]) -> NodeResult<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        self.kill_privs(loc)?;
        let ctx = self.ctx();
        let bs = u64::from(self.fs(loc.dev)?.getattr(loc.ino)?.blksize.max(512));
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or_else(|| err(ErrorKind::FileTooBig))?;
        // Runs of blocks whose part of `data` is all zero.
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut b = offset / bs;
        while b * bs < end {
            let s = (b * bs).max(offset);
            let e = ((b + 1) * bs).min(end);
            let part = &data[(s - offset) as usize..(e - offset) as usize];
            if part.iter().all(|&x| x == 0) {
                match runs.last_mut() {
                    Some(r) if r.1 == b * bs => r.1 = (b + 1) * bs,
                    _ => runs.push((b * bs, (b + 1) * bs)),
                }
            }
            b += 1;
        }
        let mut limit = data.len();
        'runs: for (s, e) in runs {
            let mut cur = s;
            let mut chunk = e - s;
            while cur < e {
                let len = chunk.min(e - cur);
                let fs = self.fs_mut(loc.dev)?;
                match fs.fallocate(
                    ctx,
                    loc.ino,
                    cur,
                    len,
                    FallocateMode::Allocate { keep_size: true },
                ) {
                    Ok(()) => cur += len,
                    Err(x) if x.kind() == ErrorKind::NoSpace && chunk > bs => {
                        chunk = (chunk / 2).div_ceil(bs) * bs;
                    }
                    Err(x) if x.kind() == ErrorKind::NoSpace => {
                        limit = cur.saturating_sub(offset) as usize;
                        break 'runs;
                    }
                    Err(x) => return Err(x),
                }
            }
        }
        if limit == 0 {
            return Err(err(ErrorKind::NoSpace));
        }
        self.fs_mut(loc.dev)?
            .write(ctx, loc.ino, offset, &data[..limit])
    }

    fn kill_privs(&mut self, loc: Loc) -> NodeResult<()> {
        let a = self.fs(loc.dev)?.getattr(loc.ino)?;
        if let Some(perm) = write_kills(&self.creds, &a) {
            let ctx = self.ctx();
            self.fs_mut(loc.dev)?.setattr(
                ctx,
                loc.ino,
                SetAttr {
                    perm: Some(perm),
                    ..SetAttr::default()
                },
            )?;
        }
        Ok(())
    }

    /// `ftruncate` on a file opened for writing (mtime and ctime stamped,
    /// as ftruncate always does).
    pub fn ftruncate(&mut self, loc: Loc, size: u64) -> NodeResult<Stat> {
        self.kill_privs(loc)?;
        let ctx = self.ctx();
        let now = self.now;
        let attr = self.fs_mut(loc.dev)?.setattr(
            ctx,
            loc.ino,
            SetAttr {
                size: Some(size),
                mtime: Some(now),
                ..SetAttr::default()
            },
        )?;
        Ok(self.stat_of(loc, attr))
    }

    /// `fallocate` on a file opened for writing.
    pub fn fallocate(
        &mut self,
        loc: Loc,
        offset: u64,
        len: u64,
        mode: FallocateMode,
    ) -> NodeResult<()> {
        if len == 0 {
            return Err(err(ErrorKind::InvalidArgument));
        }
        if offset.checked_add(len).is_none_or(|e| e > i64::MAX as u64) {
            return Err(err(ErrorKind::FileTooBig));
        }
        let a = self.fs(loc.dev)?.getattr(loc.ino)?;
        match a.kind {
            FileType::Regular => {}
            FileType::Directory => return Err(err(ErrorKind::IsADirectory)),
            _ => return Err(NodeError::new(ErrorKind::Unsupported)),
        }
        self.kill_privs(loc)?;
        let ctx = self.ctx();
        self.fs_mut(loc.dev)?
            .fallocate(ctx, loc.ino, offset, len, mode)
    }

    /// `opendir` and every entry (`getdents`): the directory must be
    /// readable.
    pub fn readdir(&mut self, path: &[u8]) -> NodeResult<(Stat, Vec<DirEntry>)> {
        let frames = self.walk(path, true)?;
        let st = self.stat_frame(&frames)?;
        if st.attr.kind != FileType::Directory {
            return Err(err(ErrorKind::NotADirectory));
        }
        if !permitted(&self.creds, &st.attr, Want::READ) {
            return Err(err(ErrorKind::PermissionDenied));
        }
        let mut entries = if st.loc.dev == VIRTUAL {
            Vec::new()
        } else {
            self.fs(st.loc.dev)?.readdir(st.loc.ino)?
        };
        for name in self.mount_children(&path_of(&frames)) {
            if !entries.iter().any(|e| e.name == name) {
                let ino = virtual_ino(&join(&path_of(&frames), &name));
                entries.push(DirEntry {
                    name,
                    ino,
                    kind: FileType::Directory,
                });
            }
        }
        Ok((st, entries))
    }

    /// `mkdir(2)`.
    pub fn mkdir(&mut self, path: &[u8], mode: u16) -> NodeResult<Stat> {
        let p = self.walk_parent(path)?;
        let Last::Name(name) = p.last.clone() else {
            return Err(err(ErrorKind::Exists));
        };
        if self.child(&p.frames, &name)?.is_some() {
            return Err(err(ErrorKind::Exists));
        }
        self.create_in(&p, &name, FileType::Directory, mode)
    }

    /// `mknod(2)` of a regular file (`O_CREAT | O_EXCL` without opening).
    pub fn mknod_regular(&mut self, path: &[u8], mode: u16) -> NodeResult<Stat> {
        let p = self.walk_parent(path)?;
        let Last::Name(name) = p.last.clone() else {
            return Err(err(ErrorKind::Exists));
        };
        if self.child(&p.frames, &name)?.is_some() {
            return Err(err(ErrorKind::Exists));
        }
        if p.trailing_slash {
            return Err(err(ErrorKind::NotFound));
        }
        self.create_in(&p, &name, FileType::Regular, mode)
    }

    /// `symlink(2)`: `path` becomes a link to `target`.
    pub fn symlink(&mut self, target: &[u8], path: &[u8]) -> NodeResult<Stat> {
        if target.is_empty() {
            return Err(err(ErrorKind::NotFound));
        }
        if target.len() > 4095 {
            return Err(err(ErrorKind::NameTooLong));
        }
        let p = self.walk_parent(path)?;
        let Last::Name(name) = p.last.clone() else {
            return Err(err(ErrorKind::Exists));
        };
        if self.child(&p.frames, &name)?.is_some() {
            return Err(err(ErrorKind::Exists));
        }
        if p.trailing_slash {
            return Err(err(ErrorKind::NotFound));
        }
        let dir = p.dir().clone();
        self.check_writable_mount(dir.loc.dev)?;
        if !permitted(&self.creds, &dir.attr, Want::WRITE_EXEC) {
            return Err(err(ErrorKind::PermissionDenied));
        }
        let (_, gid) = new_owner(&self.creds, &dir.attr, 0o777, false);
        let ctx = Ctx {
            cred: Cred {
                uid: self.creds.uid,
                gid,
            },
            now: self.now,
        };
        let attr = self
            .fs_mut(dir.loc.dev)?
            .symlink(ctx, dir.loc.ino, &name, target)?;
        let loc = Loc {
            dev: dir.loc.dev,
            ino: attr.ino,
        };
        Ok(self.stat_of(loc, attr))
    }

    /// `link(2)` (`linkat` without `AT_SYMLINK_FOLLOW`: a symlink is linked
    /// itself).
    pub fn link(&mut self, old: &[u8], new: &[u8]) -> NodeResult<()> {
        let src = self.lstat(old)?;
        let p = self.walk_parent(new)?;
        let Last::Name(name) = p.last.clone() else {
            return Err(err(ErrorKind::Exists));
        };
        if self.child(&p.frames, &name)?.is_some() {
            return Err(err(ErrorKind::Exists));
        }
        if p.trailing_slash {
            return Err(err(ErrorKind::NotFound));
        }
        let dir = p.dir().clone();
        self.check_writable_mount(dir.loc.dev)?;
        if dir.loc.dev != src.loc.dev {
            return Err(err(ErrorKind::CrossDevice));
        }
        if !may_link(&self.creds, &src.attr) {
            return Err(err(ErrorKind::NotPermitted));
        }
        if !permitted(&self.creds, &dir.attr, Want::WRITE_EXEC) {
            return Err(err(ErrorKind::PermissionDenied));
        }
        if src.attr.kind == FileType::Directory {
            return Err(err(ErrorKind::NotPermitted));
        }
        let ctx = self.ctx();
        self.fs_mut(dir.loc.dev)?
            .link(ctx, src.loc.ino, dir.loc.ino, &name)?;
        Ok(())
    }

    /// `may_delete`: may the caller remove `victim` from `dir`?
    fn may_delete(&self, dir: &Frame, victim: &Frame, is_dir: bool) -> NodeResult<()> {
        if !permitted(&self.creds, &dir.attr, Want::WRITE_EXEC) {
            return Err(err(ErrorKind::PermissionDenied));
        }
        if sticky_denies(&self.creds, &dir.attr, &victim.attr) {
            return Err(err(ErrorKind::NotPermitted));
        }
        let v_dir = victim.attr.kind == FileType::Directory;
        if is_dir && !v_dir {
            return Err(err(ErrorKind::NotADirectory));
        }
        if !is_dir && v_dir {
            return Err(err(ErrorKind::IsADirectory));
        }
        Ok(())
    }

    /// `unlink(2)`.
    pub fn unlink(&mut self, path: &[u8]) -> NodeResult<()> {
        let p = self.walk_parent(path)?;
        let Last::Name(name) = p.last.clone() else {
            return Err(err(ErrorKind::IsADirectory));
        };
        let dir = p.dir().clone();
        self.check_writable_mount(dir.loc.dev)?;
        let Some(victim) = self.child(&p.frames, &name)? else {
            return Err(err(ErrorKind::NotFound));
        };
        if p.trailing_slash {
            return Err(err(if victim.attr.kind == FileType::Directory {
                ErrorKind::IsADirectory
            } else {
                ErrorKind::NotADirectory
            }));
        }
        self.may_delete(&dir, &victim, false)?;
        if self.is_mount_point(&p.frames, &name) {
            return Err(err(ErrorKind::Busy));
        }
        let ctx = self.ctx();
        self.fs_mut(dir.loc.dev)?.unlink(ctx, dir.loc.ino, &name)
    }

    /// `rmdir(2)`.
    pub fn rmdir(&mut self, path: &[u8]) -> NodeResult<()> {
        let p = self.walk_parent(path)?;
        let name = match &p.last {
            Last::Name(n) => n.clone(),
            Last::DotDot => return Err(err(ErrorKind::DirectoryNotEmpty)),
            Last::Dot => return Err(err(ErrorKind::InvalidArgument)),
            Last::Root => return Err(err(ErrorKind::Busy)),
        };
        let dir = p.dir().clone();
        self.check_writable_mount(dir.loc.dev)?;
        let Some(victim) = self.child(&p.frames, &name)? else {
            return Err(err(ErrorKind::NotFound));
        };
        self.may_delete(&dir, &victim, true)?;
        if self.is_mount_point(&p.frames, &name) {
            return Err(err(ErrorKind::Busy));
        }
        let ctx = self.ctx();
        self.fs_mut(dir.loc.dev)?.rmdir(ctx, dir.loc.ino, &name)
    }

    /// `renameat2(2)`.
    pub fn rename(&mut self, old: &[u8], new: &[u8], flags: RenameFlags) -> NodeResult<()> {
        let op = self.walk_parent(old)?;
        let np = self.walk_parent(new)?;
        let (odir, ndir) = (op.dir().clone(), np.dir().clone());
        if odir.loc.dev != ndir.loc.dev {
            return Err(err(ErrorKind::CrossDevice));
        }
        let Last::Name(oname) = op.last.clone() else {
            return Err(err(ErrorKind::Busy));
        };
        let Last::Name(nname) = np.last.clone() else {
            return Err(err(if flags.noreplace {
                ErrorKind::Exists
            } else {
                ErrorKind::Busy
            }));
        };
        self.check_writable_mount(odir.loc.dev)?;
        let Some(src) = self.child(&op.frames, &oname)? else {
            return Err(err(ErrorKind::NotFound));
        };
        let is_dir = src.attr.kind == FileType::Directory;
        if !is_dir && (op.trailing_slash || np.trailing_slash) {
            return Err(err(ErrorKind::NotADirectory));
        }
        // A directory cannot move below itself; a target that is an
        // ancestor of the source is not empty.
        if np.frames.iter().any(|f| f.loc == src.loc) {
            return Err(err(ErrorKind::InvalidArgument));
        }
        let dst = self.child(&np.frames, &nname)?;
        if let Some(d) = &dst {
            if op.frames.iter().any(|f| f.loc == d.loc) {
                return Err(err(ErrorKind::DirectoryNotEmpty));
            }
            if flags.noreplace {
                return Err(err(ErrorKind::Exists));
            }
        } else if flags.exchange {
            return Err(err(ErrorKind::NotFound));
        }
        if dst.as_ref().is_some_and(|d| d.loc == src.loc) {
            return Ok(());
        }
        self.may_delete(&odir, &src, is_dir)?;
        match &dst {
            Some(d) if flags.exchange => {
                let d_dir = d.attr.kind == FileType::Directory;
                self.may_delete(&ndir, d, d_dir)?;
            }
            Some(d) => self.may_delete(&ndir, d, is_dir)?,
            None => {
                if !permitted(&self.creds, &ndir.attr, Want::WRITE_EXEC) {
                    return Err(err(ErrorKind::PermissionDenied));
                }
            }
        }
        if is_dir && odir.loc != ndir.loc && !permitted(&self.creds, &src.attr, Want::WRITE) {
            return Err(err(ErrorKind::PermissionDenied));
        }
        if self.is_mount_point(&op.frames, &oname) || self.is_mount_point(&np.frames, &nname) {
            return Err(err(ErrorKind::Busy));
        }
        let ctx = self.ctx();
        self.fs_mut(odir.loc.dev)?
            .rename(ctx, odir.loc.ino, &oname, ndir.loc.ino, &nname, flags)
    }

    /// The inode `path` names for an attribute change, and the checks
    /// every such change makes (`EROFS`).
    fn attr_target(&mut self, path: &[u8], follow: bool) -> NodeResult<Stat> {
        let frames = self.walk(path, follow)?;
        let st = self.stat_frame(&frames)?;
        self.check_writable_mount(st.loc.dev)?;
        Ok(st)
    }

    /// `chmod(2)` (`follow`) or `fchmodat` on the link itself.
    pub fn chmod(&mut self, path: &[u8], perm: u16, follow: bool) -> NodeResult<Stat> {
        let st = self.attr_target(path, follow)?;
        self.fchmod(st.loc, perm)
    }

    /// `fchmod`.
    pub fn fchmod(&mut self, loc: Loc, perm: u16) -> NodeResult<Stat> {
        let st = self.getattr(loc)?;
        self.check_writable_mount(loc.dev)?;
        if !self.creds.owner_or_root(&st.attr) {
            return Err(err(ErrorKind::NotPermitted));
        }
        let perm = chmod_bits(&self.creds, &st.attr, perm & 0o7777);
        self.setattr(
            loc,
            SetAttr {
                perm: Some(perm),
                ..SetAttr::default()
            },
        )
    }

    /// `chown(2)` (`follow`) or `lchown`.
    pub fn chown(
        &mut self,
        path: &[u8],
        uid: Option<u32>,
        gid: Option<u32>,
        follow: bool,
    ) -> NodeResult<Stat> {
        let st = self.attr_target(path, follow)?;
        self.fchown(st.loc, uid, gid)
    }

    /// `fchown`: root may give a file to anyone; its owner may only change
    /// its group to one of their own groups.
    pub fn fchown(&mut self, loc: Loc, uid: Option<u32>, gid: Option<u32>) -> NodeResult<Stat> {
        let st = self.getattr(loc)?;
        self.check_writable_mount(loc.dev)?;
        let a = &st.attr;
        let uid = uid.filter(|&u| u != a.uid || self.creds.is_root());
        if !self.creds.is_root() {
            if uid.is_some() {
                return Err(err(ErrorKind::NotPermitted));
            }
            if let Some(g) = gid {
                if self.creds.uid != a.uid || (g != a.gid && !self.creds.in_group(g)) {
                    return Err(err(ErrorKind::NotPermitted));
                }
            }
        }
        if uid.is_none() && gid.is_none() {
            // chown(-1, -1) still stamps ctime.
            return self.setattr(loc, SetAttr::default());
        }
        let perm = chown_kills(a);
        self.setattr(
            loc,
            SetAttr {
                uid,
                gid,
                perm,
                ..SetAttr::default()
            },
        )
    }

    /// `utimensat(2)` (`follow`, else `AT_SYMLINK_NOFOLLOW`).
    pub fn utimens(
        &mut self,
        path: &[u8],
        atime: TimeSet,
        mtime: TimeSet,
        follow: bool,
    ) -> NodeResult<Stat> {
        let st = self.attr_target(path, follow)?;
        self.futimens(st.loc, atime, mtime)
    }

    /// `futimens`: setting both to now needs ownership or write
    /// permission; any other time needs ownership.
    pub fn futimens(&mut self, loc: Loc, atime: TimeSet, mtime: TimeSet) -> NodeResult<Stat> {
        let st = self.getattr(loc)?;
        self.check_writable_mount(loc.dev)?;
        if atime == TimeSet::Omit && mtime == TimeSet::Omit {
            return Ok(st);
        }
        let owner = self.creds.owner_or_root(&st.attr);
        let explicit = matches!(atime, TimeSet::At(_)) || matches!(mtime, TimeSet::At(_));
        if !owner {
            if explicit {
                return Err(err(ErrorKind::NotPermitted));
            }
            if !permitted(&self.creds, &st.attr, Want::WRITE) {
                return Err(err(ErrorKind::PermissionDenied));
            }
        }
        let now = self.now;
        let pick = |t: TimeSet| match t {
            TimeSet::Now => Some(now),
            TimeSet::Omit => None,
            TimeSet::At(t) => Some(t),
        };
        self.setattr(
            loc,
            SetAttr {
                atime: pick(atime),
                mtime: pick(mtime),
                ..SetAttr::default()
            },
        )
    }

    fn setattr(&mut self, loc: Loc, attr: SetAttr) -> NodeResult<Stat> {
        let ctx = self.ctx();
        let a = self.fs_mut(loc.dev)?.setattr(ctx, loc.ino, attr)?;
        Ok(self.stat_of(loc, a))
    }

    /// `statfs(2)` of the filesystem holding `path`, with its type.
    pub fn statfs(&mut self, path: &[u8]) -> NodeResult<(Stat, StatFs, FsKind)> {
        let st = self.stat(path)?;
        let s = self.statfs_of(st.loc)?;
        let kind = self.kind(st.loc.dev)?;
        Ok((st, s, kind))
    }

    /// Changes the working directory (`chdir`): a directory the caller
    /// may search. Returns its physical path.
    pub fn chdir(&mut self, path: &[u8]) -> NodeResult<Vec<u8>> {
        let frames = self.walk(path, true)?;
        let f = frames.last().ok_or_else(|| err(ErrorKind::NotFound))?;
        if f.attr.kind != FileType::Directory {
            return Err(err(ErrorKind::NotADirectory));
        }
        if !permitted(&self.creds, &f.attr, Want::EXEC) {
            return Err(err(ErrorKind::PermissionDenied));
        }
        let p = path_of(&frames);
        self.cwd = p.clone();
        Ok(p)
    }

    /// The next component of every mount target strictly below the
    /// directory `dir` (a physical path), once each: a mount point inside
    /// it, or a directory leading to one.
    pub fn mount_children(&self, dir: &[u8]) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        for m in &self.mounts {
            let t = m.target.as_bytes();
            let Some(rest) = t.strip_prefix(dir) else {
                continue;
            };
            let rest = if dir.ends_with(b"/") {
                rest
            } else if let Some(r) = rest.strip_prefix(b"/") {
                r
            } else {
                continue;
            };
            let first = rest.split(|&b| b == b'/').next().unwrap_or_default();
            if first.is_empty() {
                continue;
            }
            if !out.iter().any(|n| n == first) {
                out.push(first.to_vec());
            }
        }
        out
    }
}
