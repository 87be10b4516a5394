//! The FUSE operations over a [`Backing`]: the kernel's requests mapped to
//! [`FileSystem`] calls, inode numbers to FUSE node ids, errors to errnos.
//!
//! - Node ids are inode numbers, except the root, which FUSE calls 1
//!   (neither ext4 nor XFS has an inode 1 a directory entry can name).
//! - The kernel holds an inode as long as its lookup count is above zero.
//!   An inode number freed and reused while the kernel still holds the old
//!   inode gets a new generation in the replies, so the kernel treats it as
//!   a new file rather than the old one.
//! - A regular file unlinked (or replaced by a rename) while open keeps
//!   its data as POSIX wants: its last name is moved to a hidden entry of
//!   the root directory (`.ebsim-unlinked.INO`, never listed or looked up)
//!   and removed when the last handle is released; a crash leaves it for
//!   the next mount to remove, as ext4 orphans are.
//! - Permission checks are the kernel's (`default_permissions`).
//! - Commits are batched as a journal batches them: an fsync, fsyncdir,
//!   the unmount, the control channel's `sync`, and the commit timer
//!   (staged changes older than the commit interval, or idle for a moment)
//!   commit; the file layer also commits on its own past its staged-data
//!   bound. A close commits nothing.

use super::volume::Volume;
use crate::fs::StatFs;
use crate::fs::node::{
    Attr, Cred, Ctx, ErrorKind, FallocateMode, FileSystem, FileType, Ino, NodeError, NodeResult,
    RenameFlags, SetAttr, Timespec,
};
use fuser::{
    Errno, FileAttr, FileHandle, FopenFlags, Generation, INodeNo, KernelConfig, OpenFlags,
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long the kernel may cache attributes and entries. Only this server
/// changes the filesystem, and the kernel invalidates what its own
/// operations change, so this only bounds staleness after an online grow.
const TTL: Duration = Duration::from_secs(1);

/// Name prefix of open-but-unlinked files parked in the root directory.
pub const HIDDEN_PREFIX: &[u8] = b".ebsim-unlinked.";

/// What a server serves: a file layer, and optionally the device work only
/// the owner of a mounted filesystem may do.
pub trait Backing: Send {
    /// The file layer.
    fn fs(&self) -> NodeResult<&dyn FileSystem>;
    /// The file layer, to change it.
    fn fs_mut(&mut self) -> NodeResult<&mut dyn FileSystem>;
    /// The online grow (`Unsupported` where there is no device).
    fn grow(&mut self, _args: super::GrowArgs) -> NodeResult<super::GrowReport> {
        Err(NodeError::with(
            ErrorKind::Unsupported,
            "this filesystem cannot be grown",
        ))
    }
    /// Writes a partition table change to the disk the served partition
    /// lives on (`Unsupported` where there is no such disk): as the kernel
    /// takes growpart's table while the partition is mounted.
    fn write_table(&mut self, _writes: &[(u64, Vec<u8>)]) -> NodeResult<()> {
        Err(NodeError::with(
            ErrorKind::Unsupported,
            "this filesystem is not a partition of a served disk",
        ))
    }
    /// The primary superblock's bytes as on the device.
    fn superblock_bytes(&self) -> NodeResult<Vec<u8>> {
        Err(ErrorKind::Unsupported.into())
    }
    /// The filesystem's type name (`ext4`, `xfs`).
    fn fs_type(&self) -> &'static str {
        "unknown"
    }
    /// Bytes the device holds now, as a grow would see it (0: none).
    fn device_size(&self) -> u64 {
        0
    }
}

impl Backing for Volume {
    fn fs(&self) -> NodeResult<&dyn FileSystem> {
        Volume::fs(self)
    }
    fn fs_mut(&mut self) -> NodeResult<&mut dyn FileSystem> {
        Volume::fs_mut(self)
    }
    fn grow(&mut self, args: super::GrowArgs) -> NodeResult<super::GrowReport> {
        Volume::grow(self, args)
    }
    fn superblock_bytes(&self) -> NodeResult<Vec<u8>> {
        Volume::superblock_bytes(self)
    }
    fn write_table(&mut self, writes: &[(u64, Vec<u8>)]) -> NodeResult<()> {
        Volume::write_table(self, writes)
    }
    fn fs_type(&self) -> &'static str {
        self.kind().name()
    }
    fn device_size(&self) -> u64 {
        self.current_size()
    }
}

impl Backing for Box<dyn FileSystem + Send> {
    fn fs(&self) -> NodeResult<&dyn FileSystem> {
        Ok(self.as_ref())
    }
    fn fs_mut(&mut self) -> NodeResult<&mut dyn FileSystem> {
        Ok(self.as_mut())
    }
}

/// When the commit timer commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitPolicy {
    /// Changes staged longer than this are committed (ext4's `commit=`,
    /// 5 s by default).
    pub interval: Duration,
    /// Changes are committed once no request changed anything for this
    /// long (so a finished `tar -x` is durable soon after it ends).
    pub idle: Duration,
}

impl Default for CommitPolicy {
    fn default() -> Self {
        CommitPolicy {
            interval: Duration::from_secs(5),
            idle: Duration::from_millis(500),
        }
    }
}

struct Known {
    lookups: u64,
    generation: u64,
}

pub(crate) struct State {
    pub(crate) backing: Box<dyn Backing>,
    read_only: bool,
    /// Inodes the kernel holds: lookup count and generation.
    known: HashMap<Ino, Known>,
    next_generation: u64,
    /// Open handles per inode.
    open: HashMap<Ino, u32>,
    /// Open-but-unlinked regular files parked in the root.
    orphans: HashSet<Ino>,
    /// Directory snapshots by handle.
    dirs: HashMap<u64, Vec<(Vec<u8>, Ino, FileType)>>,
    next_fh: u64,
    /// Parent of each directory the kernel has seen (for `..`).
    parents: HashMap<Ino, Ino>,
    /// First change since the last commit.
    dirty_since: Option<Instant>,
    last_change: Instant,
    /// The first commit failure (the file layer refuses changes after it).
    pub(crate) failed: Option<String>,
    pub(crate) commits: u64,
}

impl State {
    fn root(&self) -> NodeResult<Ino> {
        Ok(self.backing.fs()?.root())
    }

    fn node_to_ino(&self, n: INodeNo) -> NodeResult<Ino> {
        if n.0 == 1 { self.root() } else { Ok(n.0) }
    }

    fn ino_to_node(&self, ino: Ino) -> INodeNo {
        match self.root() {
            Ok(r) if r == ino => INodeNo(1),
            _ => INodeNo(ino),
        }
    }

    fn generation(&self, ino: Ino) -> Generation {
        Generation(self.known.get(&ino).map_or(0, |k| k.generation))
    }

    /// Counts one lookup of `ino` by the kernel.
    fn remember(&mut self, ino: Ino) {
        self.known
            .entry(ino)
            .or_insert(Known {
                lookups: 0,
                generation: 0,
            })
            .lookups += 1;
    }

    /// A newly created inode: if the kernel still holds an old inode of
    /// the same number, this one is a new generation.
    fn created(&mut self, ino: Ino) {
        if let Some(k) = self.known.get_mut(&ino) {
            self.next_generation += 1;
            k.generation = self.next_generation;
        }
    }

    fn changed(&mut self) {
        let now = Instant::now();
        self.dirty_since.get_or_insert(now);
        self.last_change = now;
    }

    /// Commits every staged change.
    pub(crate) fn commit(&mut self) -> NodeResult<()> {
        if self.read_only {
            return Ok(());
        }
        if let Some(why) = &self.failed {
            return Err(NodeError::with(ErrorKind::Io, why.clone()));
        }
        let r = self.backing.fs_mut().and_then(|fs| fs.sync());
        match r {
            Ok(()) => {
                self.dirty_since = None;
                self.commits += 1;
                Ok(())
            }
            Err(e) => {
                self.failed = Some(e.to_string());
                Err(e)
            }
        }
    }

    fn attr(&self, a: &Attr) -> FileAttr {
        let mut attr = to_file_attr(a, self.ino_to_node(a.ino));
        if self.orphans.contains(&a.ino) {
            attr.nlink = attr.nlink.saturating_sub(1);
        }
        attr
    }

    /// The filesystem to change, or EROFS.
    fn writable(&mut self) -> NodeResult<&mut dyn FileSystem> {
        if self.read_only {
            return Err(ErrorKind::ReadOnly.into());
        }
        if let Some(why) = &self.failed {
            return Err(NodeError::with(ErrorKind::Io, why.clone()));
        }
        self.backing.fs_mut()
    }

    /// Parks `name` in `dir` (an open regular file losing its last link)
    /// in the root instead of removing it. False: not needed (or not
    /// possible: then the caller unlinks as usual).
    fn park_if_open(&mut self, ctx: Ctx, dir: Ino, name: &[u8]) -> NodeResult<bool> {
        let fs = self.backing.fs()?;
        let Ok(a) = fs.lookup(dir, name) else {
            return Ok(false);
        };
        if a.kind != FileType::Regular
            || a.nlink != 1
            || self.open.get(&a.ino).copied().unwrap_or(0) == 0
        {
            return Ok(false);
        }
        let root = fs.root();
        let hidden = hidden_name(a.ino);
        let parked = self
            .writable()?
            .rename(ctx, dir, name, root, &hidden, RenameFlags::default());
        if parked.is_ok() {
            self.orphans.insert(a.ino);
            self.changed();
        }
        Ok(parked.is_ok())
    }

    /// Removes a parked file once nothing holds it open.
    fn reap(&mut self, ino: Ino) {
        if !self.orphans.contains(&ino) || self.open.get(&ino).copied().unwrap_or(0) > 0 {
            return;
        }
        self.orphans.remove(&ino);
        let ctx = ctx_now(Cred::ROOT);
        let hidden = hidden_name(ino);
        if let Ok(root) = self.root() {
            if let Ok(fs) = self.writable() {
                if fs.unlink(ctx, root, &hidden).is_ok() {
                    self.changed();
                }
            }
        }
    }
}

fn hidden_name(ino: Ino) -> Vec<u8> {
    let mut n = HIDDEN_PREFIX.to_vec();
    n.extend_from_slice(ino.to_string().as_bytes());
    n
}

fn is_hidden(dir_is_root: bool, name: &[u8]) -> bool {
    dir_is_root && name.starts_with(HIDDEN_PREFIX)
}

/// Removes files a crash left parked in the root (they had no name left).
pub(crate) fn remove_parked(fs: &mut dyn FileSystem) -> NodeResult<usize> {
    let root = fs.root();
    let names: Vec<Vec<u8>> = fs
        .readdir(root)?
        .into_iter()
        .filter(|e| e.name.starts_with(HIDDEN_PREFIX) && e.kind == FileType::Regular)
        .map(|e| e.name)
        .collect();
    let ctx = ctx_now(Cred::ROOT);
    for n in &names {
        fs.unlink(ctx, root, n)?;
    }
    Ok(names.len())
}

/// The state shared by the FUSE session, the commit timer and the control
/// channel.
pub struct Shared {
    pub(crate) state: Mutex<State>,
    /// A control client waits for the answer to its `unmount`: the
    /// session's end waits until it is written.
    pub(crate) reply_pending: Mutex<bool>,
    pub(crate) reply_done: Condvar,
    stop: Mutex<bool>,
    wake: Condvar,
    policy: CommitPolicy,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shared")
    }
}

impl Shared {
    /// A server's state over `backing`.
    pub fn new(backing: Box<dyn Backing>, read_only: bool, policy: CommitPolicy) -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(State {
                backing,
                read_only,
                known: HashMap::new(),
                next_generation: 0,
                open: HashMap::new(),
                orphans: HashSet::new(),
                dirs: HashMap::new(),
                next_fh: 1,
                parents: HashMap::new(),
                dirty_since: None,
                last_change: Instant::now(),
                failed: None,
                commits: 0,
            }),
            reply_pending: Mutex::new(false),
            reply_done: Condvar::new(),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            policy,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state as it was at the
        // last completed operation (every operation checks first, then
        // changes): keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Commits every staged change now.
    pub fn sync(&self) -> NodeResult<()> {
        self.lock().commit()
    }

    /// statfs now.
    pub fn statfs(&self) -> NodeResult<StatFs> {
        self.lock().backing.fs()?.statfs()
    }

    /// The online grow (commits first).
    pub fn grow(&self, args: super::GrowArgs) -> NodeResult<super::GrowReport> {
        let mut st = self.lock();
        if st.read_only {
            return Err(ErrorKind::ReadOnly.into());
        }
        st.commit()?;
        let r = st.backing.grow(args);
        if r.is_ok() {
            st.commits += 1;
        }
        r
    }

    /// Writes a partition table change to the served partition's disk
    /// (after a commit of what is staged).
    pub fn write_table(&self, writes: &[(u64, Vec<u8>)]) -> NodeResult<()> {
        let mut st = self.lock();
        if st.read_only {
            return Err(ErrorKind::ReadOnly.into());
        }
        st.commit()?;
        st.backing.write_table(writes)
    }

    /// The superblock bytes (after a commit, so they are current).
    pub fn superblock(&self) -> NodeResult<(String, Vec<u8>)> {
        let mut st = self.lock();
        st.commit()?;
        Ok((
            st.backing.fs_type().to_string(),
            st.backing.superblock_bytes()?,
        ))
    }

    /// Bytes of the served device.
    pub fn device_size(&self) -> u64 {
        self.lock().backing.device_size()
    }

    /// Number of commits made so far (diagnostics and tests).
    pub fn commits(&self) -> u64 {
        self.lock().commits
    }

    /// The first commit failure, if any.
    pub fn failure(&self) -> Option<String> {
        self.lock().failed.clone()
    }

    /// Runs the commit timer until [`Shared::stop`].
    pub fn commit_timer(self: &Arc<Self>) {
        let tick = self
            .policy
            .idle
            .min(self.policy.interval)
            .max(Duration::from_millis(20));
        let mut stopped = self.stop.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if *stopped {
                return;
            }
            let (g, _) = self
                .wake
                .wait_timeout(stopped, tick)
                .unwrap_or_else(|p| p.into_inner());
            stopped = g;
            if *stopped {
                return;
            }
            let mut st = self.lock();
            if let Some(since) = st.dirty_since {
                if since.elapsed() >= self.policy.interval
                    || st.last_change.elapsed() >= self.policy.idle
                {
                    let _ = st.commit();
                }
            }
        }
    }

    /// Marks (or clears) a control answer the process must not exit
    /// before writing.
    pub(crate) fn set_reply_pending(&self, on: bool) {
        *self.reply_pending.lock().unwrap_or_else(|p| p.into_inner()) = on;
        self.reply_done.notify_all();
    }

    /// Waits (up to `limit`) for a pending control answer to be written.
    pub(crate) fn wait_reply(&self, limit: Duration) {
        let g = self.reply_pending.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self
            .reply_done
            .wait_timeout_while(g, limit, |pending| *pending)
            .unwrap_or_else(|p| p.into_inner());
    }

    /// Stops the commit timer.
    pub fn stop(&self) {
        *self.stop.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.wake.notify_all();
    }

    /// Lets go of the filesystem and its image once the session is over
    /// (after the final commit): the image's lock is released even while
    /// a control thread still holds this state, so the image can be served
    /// again by the same process.
    pub fn close(&self) {
        let mut st = self.lock();
        st.backing = Box::new(Closed);
    }
}

/// What a closed server holds instead of its filesystem.
struct Closed;

impl Backing for Closed {
    fn fs(&self) -> NodeResult<&dyn FileSystem> {
        Err(NodeError::with(ErrorKind::Io, "the server has ended"))
    }
    fn fs_mut(&mut self) -> NodeResult<&mut dyn FileSystem> {
        Err(NodeError::with(ErrorKind::Io, "the server has ended"))
    }
}

/// The FUSE filesystem: fuser's callbacks over the shared state.
#[derive(Debug)]
pub struct FuseFs {
    shared: Arc<Shared>,
    /// Written to when the kernel's INIT has been answered.
    max_write: u32,
}

impl FuseFs {
    /// The callbacks over `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        FuseFs {
            shared,
            max_write: 1 << 20,
        }
    }
}

fn errno(e: &NodeError) -> Errno {
    Errno::from_i32(e.errno())
}

fn ts(t: Timespec) -> SystemTime {
    if t.sec >= 0 {
        UNIX_EPOCH + Duration::new(t.sec.unsigned_abs(), t.nsec.min(999_999_999))
    } else {
        UNIX_EPOCH - Duration::from_secs(t.sec.unsigned_abs())
            + Duration::from_nanos(u64::from(t.nsec.min(999_999_999)))
    }
}

fn from_system(t: SystemTime) -> Timespec {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => Timespec {
            sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nsec: d.subsec_nanos(),
        },
        Err(e) => {
            let d = e.duration();
            let mut sec = -i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            let mut nsec = d.subsec_nanos();
            if nsec > 0 {
                sec -= 1;
                nsec = 1_000_000_000 - nsec;
            }
            Timespec { sec, nsec }
        }
    }
}

fn ctx_now(cred: Cred) -> Ctx {
    Ctx {
        cred,
        now: from_system(SystemTime::now()),
    }
}

fn kind(k: FileType) -> fuser::FileType {
    match k {
        FileType::Regular => fuser::FileType::RegularFile,
        FileType::Directory => fuser::FileType::Directory,
        FileType::Symlink => fuser::FileType::Symlink,
        FileType::CharDevice => fuser::FileType::CharDevice,
        FileType::BlockDevice => fuser::FileType::BlockDevice,
        FileType::Fifo => fuser::FileType::NamedPipe,
        FileType::Socket => fuser::FileType::Socket,
    }
}

fn to_file_attr(a: &Attr, node: INodeNo) -> FileAttr {
    FileAttr {
        ino: node,
        size: a.size,
        blocks: a.blocks,
        atime: ts(a.atime),
        mtime: ts(a.mtime),
        ctime: ts(a.ctime),
        crtime: ts(a.crtime),
        kind: kind(a.kind),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        blksize: a.blksize,
        flags: 0,
    }
}

fn cred(req: &Request) -> Cred {
    Cred {
        uid: req.uid(),
        gid: req.gid(),
    }
}

fn name_bytes(n: &OsStr) -> &[u8] {
    n.as_bytes()
}

/// Creator's credentials for a new entry in `dir`: a set-group-ID
/// directory gives its group (and, to a new directory, the bit itself).
fn creator(st: &State, req: &Request, dir: Ino) -> NodeResult<(Cred, bool)> {
    let d = st.backing.fs()?.getattr(dir)?;
    let mut c = cred(req);
    let sgid = d.perm & 0o2000 != 0;
    if sgid {
        c.gid = d.gid;
    }
    Ok((c, sgid))
}

impl FuseFs {
    fn entry(&self, st: &mut State, a: &Attr, reply: ReplyEntry) {
        st.remember(a.ino);
        let attr = st.attr(a);
        reply.entry(&TTL, &attr, st.generation(a.ino));
    }

    fn created_entry(&self, st: &mut State, parent: Ino, a: NodeResult<Attr>, reply: ReplyEntry) {
        match a {
            Ok(a) => {
                st.created(a.ino);
                st.changed();
                if a.kind == FileType::Directory {
                    st.parents.insert(a.ino, parent);
                }
                self.entry(st, &a, reply);
            }
            Err(e) => reply.error(errno(&e)),
        }
    }
}

impl fuser::Filesystem for FuseFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        use fuser::InitFlags;
        let _ = config.set_max_write(self.max_write);
        // No FUSE_WRITEBACK_CACHE: with it the kernel owns a regular
        // file's mtime, ctime and size while it caches the inode and never
        // takes the server's, so a change the filesystem times itself
        // (fallocate with KEEP_SIZE, which ext4 and XFS stamp) shows the
        // old mtime until the inode is dropped, then the new one.
        let wanted = InitFlags::FUSE_DO_READDIRPLUS
            | InitFlags::FUSE_READDIRPLUS_AUTO
            | InitFlags::FUSE_MAX_PAGES
            | InitFlags::FUSE_BIG_WRITES;
        let caps = config.capabilities();
        let _ = config.add_capabilities(wanted & caps);
        let _ = config.set_max_readahead(1 << 20);
        Ok(())
    }

    fn destroy(&mut self) {
        self.shared.stop();
        let _ = self.shared.sync();
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let _ = req;
        let mut st = self.shared.lock();
        let r = (|| {
            let dir = st.node_to_ino(parent)?;
            let n = name_bytes(name);
            if is_hidden(dir == st.root()?, n) {
                return Err(ErrorKind::NotFound.into());
            }
            let a = st.backing.fs()?.lookup(dir, n)?;
            if a.kind == FileType::Directory {
                st.parents.insert(a.ino, dir);
            }
            Ok(a)
        })();
        match r {
            Ok(a) => self.entry(&mut st, &a, reply),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        let mut st = self.shared.lock();
        let Ok(i) = st.node_to_ino(ino) else { return };
        if let Some(k) = st.known.get_mut(&i) {
            k.lookups = k.lookups.saturating_sub(nlookup);
            if k.lookups == 0 {
                st.known.remove(&i);
            }
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let st = self.shared.lock();
        let r = st
            .node_to_ino(ino)
            .and_then(|i| st.backing.fs()?.getattr(i));
        match r {
            Ok(a) => reply.attr(&TTL, &st.attr(&a)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut st = self.shared.lock();
        let ctx = ctx_now(cred(req));
        let t = |x: Option<TimeOrNow>| {
            x.map(|v| match v {
                TimeOrNow::Now => ctx.now,
                TimeOrNow::SpecificTime(s) => from_system(s),
            })
        };
        let set = SetAttr {
            perm: mode.map(|m| (m & 0o7777) as u16),
            uid,
            gid,
            size,
            atime: t(atime),
            mtime: t(mtime),
        };
        let r = st
            .node_to_ino(ino)
            .and_then(|i| st.writable()?.setattr(ctx, i, set));
        match r {
            Ok(a) => {
                st.changed();
                reply.attr(&TTL, &st.attr(&a));
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let st = self.shared.lock();
        match st
            .node_to_ino(ino)
            .and_then(|i| st.backing.fs()?.readlink(i))
        {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let mut st = self.shared.lock();
        let r = (|| {
            let dir = st.node_to_ino(parent)?;
            let Some(k) = FileType::from_mode((mode & 0o170000) as u16) else {
                return Err(NodeError::new(ErrorKind::InvalidArgument));
            };
            if matches!(k, FileType::Directory | FileType::Symlink) {
                return Err(NodeError::new(ErrorKind::InvalidArgument));
            }
            let (c, _) = creator(&st, req, dir)?;
            let perm = (mode & 0o7777) as u16;
            let a = st
                .writable()?
                .mknod(ctx_now(c), dir, name_bytes(name), k, perm, rdev)?;
            Ok((dir, a))
        })();
        match r {
            Ok((dir, a)) => self.created_entry(&mut st, dir, Ok(a), reply),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let mut st = self.shared.lock();
        let r = (|| {
            let dir = st.node_to_ino(parent)?;
            let (c, sgid) = creator(&st, req, dir)?;
            let mut perm = (mode & 0o7777) as u16;
            if sgid {
                perm |= 0o2000;
            }
            let a = st
                .writable()?
                .mkdir(ctx_now(c), dir, name_bytes(name), perm)?;
            Ok((dir, a))
        })();
        match r {
            Ok((dir, a)) => self.created_entry(&mut st, dir, Ok(a), reply),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut st = self.shared.lock();
        let ctx = ctx_now(cred(req));
        let r = (|| {
            let dir = st.node_to_ino(parent)?;
            let n = name_bytes(name);
            if is_hidden(dir == st.root()?, n) {
                return Err(ErrorKind::NotFound.into());
            }
            st.writable()?;
            if st.park_if_open(ctx, dir, n)? {
                return Ok(());
            }
            st.writable()?.unlink(ctx, dir, n)
        })();
        match r {
            Ok(()) => {
                st.changed();
                reply.ok();
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut st = self.shared.lock();
        let ctx = ctx_now(cred(req));
        let r = st
            .node_to_ino(parent)
            .and_then(|dir| st.writable()?.rmdir(ctx, dir, name_bytes(name)));
        match r {
            Ok(()) => {
                st.changed();
                reply.ok();
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let mut st = self.shared.lock();
        let r = (|| {
            let dir = st.node_to_ino(parent)?;
            let (c, _) = creator(&st, req, dir)?;
            let a = st.writable()?.symlink(
                ctx_now(c),
                dir,
                name_bytes(link_name),
                target.as_os_str().as_bytes(),
            )?;
            Ok((dir, a))
        })();
        match r {
            Ok((dir, a)) => self.created_entry(&mut st, dir, Ok(a), reply),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        let mut st = self.shared.lock();
        let ctx = ctx_now(cred(req));
        let r = (|| {
            let od = st.node_to_ino(parent)?;
            let nd = st.node_to_ino(newparent)?;
            let root = st.root()?;
            let (on, nn) = (name_bytes(name), name_bytes(newname));
            if is_hidden(od == root, on) || is_hidden(nd == root, nn) {
                return Err(NodeError::new(ErrorKind::NotFound));
            }
            let known = fuser::RenameFlags::RENAME_NOREPLACE | fuser::RenameFlags::RENAME_EXCHANGE;
            if !(flags - known).is_empty() {
                return Err(NodeError::new(ErrorKind::InvalidArgument));
            }
            let f = RenameFlags {
                noreplace: flags.contains(fuser::RenameFlags::RENAME_NOREPLACE),
                exchange: flags.contains(fuser::RenameFlags::RENAME_EXCHANGE),
            };
            st.writable()?;
            let moving = st.backing.fs()?.lookup(od, on)?;
            if !f.exchange && !f.noreplace {
                // An open target losing its last link keeps its data.
                if let Ok(target) = st.backing.fs()?.lookup(nd, nn) {
                    if target.ino != moving.ino
                        && target.kind == FileType::Regular
                        && moving.kind != FileType::Directory
                    {
                        st.park_if_open(ctx, nd, nn)?;
                    }
                }
            }
            st.writable()?.rename(ctx, od, on, nd, nn, f)?;
            if moving.kind == FileType::Directory {
                st.parents.insert(moving.ino, nd);
            }
            if f.exchange {
                if let Ok(other) = st.backing.fs()?.lookup(od, on) {
                    if other.kind == FileType::Directory {
                        st.parents.insert(other.ino, od);
                    }
                }
            }
            Ok(())
        })();
        match r {
            Ok(()) => {
                st.changed();
                reply.ok();
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let mut st = self.shared.lock();
        let ctx = ctx_now(cred(req));
        let r = (|| {
            let i = st.node_to_ino(ino)?;
            let nd = st.node_to_ino(newparent)?;
            if st.orphans.contains(&i) {
                // linkat of an unlinked open file: ENOENT, as the VFS says.
                return Err(NodeError::new(ErrorKind::NotFound));
            }
            st.writable()?.link(ctx, i, nd, name_bytes(newname))
        })();
        match r {
            Ok(a) => {
                st.changed();
                self.entry(&mut st, &a, reply);
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let mut st = self.shared.lock();
        let r = st.node_to_ino(ino).and_then(|i| {
            let a = st.backing.fs()?.getattr(i)?;
            let write = flags.0 & (libc_o::O_WRONLY | libc_o::O_RDWR) != 0;
            if write && st.read_only {
                return Err(ErrorKind::ReadOnly.into());
            }
            if a.kind == FileType::Directory && write {
                return Err(ErrorKind::IsADirectory.into());
            }
            Ok(i)
        });
        match r {
            Ok(i) => {
                *st.open.entry(i).or_insert(0) += 1;
                reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE);
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        let st = self.shared.lock();
        let mut buf = vec![0u8; size as usize];
        match st
            .node_to_ino(ino)
            .and_then(|i| st.backing.fs()?.read(i, offset, &mut buf))
        {
            Ok(n) => reply.data(&buf[..n.min(buf.len())]),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut st = self.shared.lock();
        let mut ctx = ctx_now(cred(req));
        if write_flags.contains(WriteFlags::FUSE_WRITE_CACHE) {
            // The page cache's writeback (a shared writable mmap): the
            // kernel checked the writer's permission when it mapped and
            // dropped set-user-ID at the fault (it sends a SETATTR for
            // that); this request carries no caller.
            ctx.cred = Cred::ROOT;
        }
        let r = st
            .node_to_ino(ino)
            .and_then(|i| st.writable()?.write(ctx, i, offset, data));
        match r {
            Ok(n) => {
                st.changed();
                reply.written(u32::try_from(n).unwrap_or(u32::MAX));
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: fuser::LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(2): nothing to commit (the timer and fsync do), and no
        // locks to drop. ENOSYS makes the kernel stop sending FLUSH for
        // good: one round trip less per close (writes reach the server
        // as write(2) makes them, so nothing waits for a FLUSH).
        reply.error(Errno::ENOSYS);
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let mut st = self.shared.lock();
        if let Ok(i) = st.node_to_ino(ino) {
            if let Some(n) = st.open.get_mut(&i) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    st.open.remove(&i);
                    st.reap(i);
                }
            }
        }
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.shared.sync() {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let mut st = self.shared.lock();
        let r = st.node_to_ino(ino).and_then(|i| {
            let a = st.backing.fs()?.getattr(i)?;
            if a.kind != FileType::Directory {
                return Err(ErrorKind::NotADirectory.into());
            }
            Ok(i)
        });
        match r {
            Ok(_) => {
                let fh = st.next_fh;
                st.next_fh += 1;
                reply.opened(FileHandle(fh), FopenFlags::empty());
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let mut st = self.shared.lock();
        let list = match listing(&mut st, ino, fh, offset) {
            Ok(l) => l,
            Err(e) => return reply.error(errno(&e)),
        };
        for (i, (name, child, k)) in list.iter().enumerate().skip(offset as usize) {
            if reply.add(
                st.ino_to_node(*child),
                i as u64 + 1,
                kind(*k),
                OsStr::from_bytes(name),
            ) {
                break;
            }
        }
        reply.ok();
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let mut st = self.shared.lock();
        let list = match listing(&mut st, ino, fh, offset) {
            Ok(l) => l,
            Err(e) => return reply.error(errno(&e)),
        };
        for (i, (name, child, _)) in list.iter().enumerate().skip(offset as usize) {
            let dots = name == b"." || name == b"..";
            let a = match st.backing.fs().and_then(|fs| fs.getattr(*child)) {
                Ok(a) => a,
                Err(_) if dots => continue,
                Err(e) => return reply.error(errno(&e)),
            };
            let attr = st.attr(&a);
            let full = reply.add(
                st.ino_to_node(*child),
                i as u64 + 1,
                OsStr::from_bytes(name),
                &TTL,
                &attr,
                st.generation(*child),
            );
            if full {
                break;
            }
            if !dots {
                // The kernel counts a lookup for every entry it took.
                st.remember(*child);
                if a.kind == FileType::Directory {
                    if let Ok(dir) = st.node_to_ino(ino) {
                        st.parents.insert(*child, dir);
                    }
                }
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.shared.lock().dirs.remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.shared.sync() {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.shared.statfs() {
            Ok(s) => {
                let bs = u32::try_from(s.frsize).unwrap_or(4096);
                reply.statfs(s.blocks, s.bfree, s.bavail, s.files, s.ffree, bs, 255, bs);
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        // default_permissions: the kernel checked.
        reply.ok();
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let mut st = self.shared.lock();
        let r = (|| {
            let dir = st.node_to_ino(parent)?;
            let (c, _) = creator(&st, req, dir)?;
            let perm = (mode & 0o7777) as u16;
            let _ = flags;
            st.writable()?.mknod(
                ctx_now(c),
                dir,
                name_bytes(name),
                FileType::Regular,
                perm,
                0,
            )
        })();
        match r {
            Ok(a) => {
                st.created(a.ino);
                st.changed();
                st.remember(a.ino);
                *st.open.entry(a.ino).or_insert(0) += 1;
                let attr = st.attr(&a);
                reply.created(
                    &TTL,
                    &attr,
                    st.generation(a.ino),
                    FileHandle(0),
                    FopenFlags::FOPEN_KEEP_CACHE,
                );
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn fallocate(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        const KEEP_SIZE: i32 = 0x01;
        const PUNCH_HOLE: i32 = 0x02;
        let m = match mode {
            0 => FallocateMode::Allocate { keep_size: false },
            KEEP_SIZE => FallocateMode::Allocate { keep_size: true },
            x if x == KEEP_SIZE | PUNCH_HOLE => FallocateMode::PunchHole,
            _ => return reply.error(Errno::EOPNOTSUPP),
        };
        let mut st = self.shared.lock();
        let ctx = ctx_now(cred(req));
        let r = st
            .node_to_ino(ino)
            .and_then(|i| st.writable()?.fallocate(ctx, i, offset, length, m));
        match r {
            Ok(()) => {
                st.changed();
                reply.ok();
            }
            Err(e) => reply.error(errno(&e)),
        }
    }
}

/// `O_WRONLY` and `O_RDWR` (the same on every Linux architecture).
mod libc_o {
    pub const O_WRONLY: i32 = 0o1;
    pub const O_RDWR: i32 = 0o2;
}

/// The directory's entries with `.` and `..` first, hidden ones left out;
/// a snapshot taken at offset 0 and kept per handle, so entries removed
/// while a reader walks the directory never make it skip others.
fn listing(
    st: &mut State,
    ino: INodeNo,
    fh: FileHandle,
    offset: u64,
) -> NodeResult<Vec<(Vec<u8>, Ino, FileType)>> {
    if offset != 0 {
        if let Some(l) = st.dirs.get(&fh.0) {
            return Ok(l.clone());
        }
    }
    let dir = st.node_to_ino(ino)?;
    let root = st.root()?;
    let parent = if dir == root {
        root
    } else {
        st.parents.get(&dir).copied().unwrap_or(root)
    };
    let mut list = vec![
        (b".".to_vec(), dir, FileType::Directory),
        (b"..".to_vec(), parent, FileType::Directory),
    ];
    for e in st.backing.fs()?.readdir(dir)? {
        if is_hidden(dir == root, &e.name) {
            continue;
        }
        list.push((e.name, e.ino, e.kind));
    }
    st.dirs.insert(fh.0, list.clone());
    Ok(list)
}
