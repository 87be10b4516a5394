//! Sparse raw image files, and the crash-safe commit.
//!
//! A commit walks its [`WritePlan`] twice. The first walk saves, for every
//! range the plan writes, what is there now (the bytes of allocated ranges,
//! "a hole" for holes, "past the end" beyond the old length) together with a
//! CRC32C of each 4 KiB piece of what will be written, into the undo log
//! beside the image (format and name in `undo.rs`); bytes a shorter length
//! cuts off are saved too. The log is streamed through a bounded buffer, then
//! fsynced with its directory. The second walk applies the plan: the new
//! length, then the writes (coalesced), then an fsync. Without discards the
//! log is then removed and the commit is done.
//!
//! Discards come after that commit point, so the old bytes they destroy are
//! never read or saved: the undo log is atomically replaced by a small
//! roll-forward log naming the written ranges (with their checksums) and the
//! ranges still to punch, the punches are made, and that log is removed.
//!
//! Opening an image with a leftover log replays it, but only when the image
//! is exactly in a state the log predicts: the same file (device, inode,
//! name), its length the old or the new one, every saved piece holding
//! either its old bytes or its new ones (each piece independently), nothing
//! but the change's own writes past the old end, and, for a roll-forward
//! log, every written piece holding its new bytes. Anything else is refused
//! with [`Error::UndoLogMismatch`] naming both files and the first range
//! that differs, and nothing is changed. A log without its footer was being
//! written when the process stopped, so it was never acted on and is
//! removed (once its header shows it is this image's). Every read-write
//! open replays; a read-only open does too when it may write the file, and
//! otherwise fails with [`Error::UndoLogPending`] instead of reading a
//! half-changed image.
//!
//! The fault-injection hook ([`FAULT_ENV`]) counts every write step of a
//! commit (the length change, each coalesced write, the switch to the
//! roll-forward log, each punch) and fails the N+1-th as if the process
//! died there, leaving the log for the next open. Replays are not counted.

use super::lock;
use super::segmented::{self, Seek, Segmented, seek_file};
use super::undo::{
    self, DATA_CUT, DATA_NEW, HOLE_CUT, HOLE_NEW, Header, HeaderRead, LOG_FORWARD, LOG_UNDO,
    LogReader, LogWriter, PAST_END_NEW, PIECE, PUNCH, WRITTEN,
};
use super::{
    BlockDevice, CommitOutcome, Error, WriteBatch, WritePlan, check_range, for_each_coalesced,
    merge_disjoint, subtract,
};
use nix::fcntl::{FallocateFlags, Flock, fallocate};
use nix::unistd::{Whence, lseek};
use std::fs::{File, OpenOptions};
use std::ops::Range;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

pub use super::undo::undo_log_path;

/// The environment variable of the fault-injection test hook: a commit fails
/// (as if the process died) when this many writes have been made.
pub const FAULT_ENV: &str = "EBSIM_FAULT_AFTER_WRITES";

/// How an image is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads only; commits are refused.
    ReadOnly,
    /// Reads and commits, under an exclusive lock held while open.
    ReadWrite,
}

/// Where an image's bytes are: one file (or block device), or a
/// directory of segment files when the host caps a file's length below the
/// image's (see [`segmented`]).
#[derive(Debug)]
enum Backing {
    File(File),
    Segmented(Segmented),
}

impl Backing {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        match self {
            Backing::File(f) => f.read_exact_at(buf, offset),
            Backing::Segmented(s) => s.read_exact_at(buf, offset),
        }
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        match self {
            Backing::File(f) => f.write_all_at(buf, offset),
            Backing::Segmented(s) => s.write_all_at(buf, offset),
        }
    }

    fn sync_all(&self) -> std::io::Result<()> {
        match self {
            Backing::File(f) => f.sync_all(),
            Backing::Segmented(s) => s.sync_all(),
        }
    }

    /// `st_dev` and `st_ino` of the file, or of the segments' directory
    /// (which outlives every manifest and segment change).
    fn identity(&self) -> std::io::Result<(u64, u64)> {
        let m = match self {
            Backing::File(f) => f.metadata()?,
            Backing::Segmented(s) => s.dir_file().metadata()?,
        };
        Ok((m.dev(), m.ino()))
    }

    fn allocated(&self) -> std::io::Result<u64> {
        match self {
            Backing::File(f) => Ok(f.metadata()?.blocks().saturating_mul(512)),
            Backing::Segmented(s) => s.allocated(),
        }
    }

    fn seek(&self, path: &Path, pos: u64) -> Result<Seek, Error> {
        match self {
            Backing::File(f) => seek_file(f, path, pos),
            Backing::Segmented(s) => s.seek(pos),
        }
    }

    fn punch(&self, offset: i64, len: i64) -> Result<(), nix::errno::Errno> {
        match self {
            Backing::File(f) => {
                let flags =
                    FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
                fallocate(f, flags, offset, len)
            }
            Backing::Segmented(s) => s.punch(offset as u64, len as u64).map_err(|e| {
                nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(nix::libc::EIO))
            }),
        }
    }
}

/// A raw disk image in a regular file, kept sparse.
#[derive(Debug)]
pub struct ImageFile {
    /// The path as the caller named it (for messages).
    path: PathBuf,
    /// The real file (symlinks resolved): its log lives beside it.
    real: PathBuf,
    /// The undo log's path.
    log: PathBuf,
    file: Backing,
    size: u64,
    access: Access,
    _lock: Option<Flock<File>>,
    fault_after: Option<u64>,
    writes_made: u64,
}

/// Where a failed commit stopped.
enum Stage {
    /// Before the first write: the image is unchanged.
    Before,
    /// While the undo log is in force.
    Applying,
    /// After the commit point: the roll-forward log is in force.
    Forward,
}

impl ImageFile {
    /// Opens an existing image. With [`Access::ReadWrite`] it waits for an
    /// exclusive lock (for a bounded time: [`lock::wait_limit`], then
    /// [`Error::Busy`] naming the holder) and finishes any change a crashed
    /// ebsim left half done (after checking the image is in a state its log
    /// predicts). A
    /// read-only open of an image with a leftover log does the same when it
    /// may write the file, and fails with [`Error::UndoLogPending`]
    /// otherwise.
    pub fn open(path: impl AsRef<Path>, access: Access) -> Result<Self, Error> {
        Self::open_waiting(path, access, lock::wait_limit())
    }

    /// [`ImageFile::open`], waiting up to `limit` for the lock.
    pub fn open_waiting(
        path: impl AsRef<Path>,
        access: Access,
        limit: std::time::Duration,
    ) -> Result<Self, Error> {
        let path = path.as_ref();
        // A file opened just before another process converted it into a
        // segmented image is no longer the image: open again.
        for _ in 0..3 {
            if let Some(img) = Self::open_once(path, access, limit)? {
                return Ok(img);
            }
        }
        Err(Error::io(
            path,
            "open",
            std::io::Error::other("the image keeps being replaced while it is opened"),
        ))
    }

    fn open_once(
        path: &Path,
        access: Access,
        limit: std::time::Duration,
    ) -> Result<Option<Self>, Error> {
        segmented::settle(path)?;
        let meta = std::fs::metadata(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotFound(path.to_path_buf())
            } else {
                Error::io(path, "stat", e)
            }
        })?;
        let is_segmented = meta.is_dir() && segmented::is_segmented(path);
        if meta.is_dir() && !is_segmented {
            return Err(Error::IsADirectory(path.to_path_buf()));
        }
        let real = undo::real_path(path);
        let log = undo::log_path_for(&real);
        let pending = log.symlink_metadata().is_ok()
            || undo::forward_tmp_path(&log).symlink_metadata().is_ok();
        let effective = if pending { Access::ReadWrite } else { access };
        let opened = if is_segmented {
            File::open(path)
        } else {
            OpenOptions::new()
                .read(true)
                .write(effective == Access::ReadWrite)
                .open(path)
        };
        let file = match opened {
            Ok(f) => f,
            Err(e)
                if access == Access::ReadOnly
                    && pending
                    && matches!(
                        e.raw_os_error(),
                        Some(libc_errno::EACCES | libc_errno::EROFS | libc_errno::EPERM)
                    ) =>
            {
                return Err(Error::UndoLogPending {
                    image: path.to_path_buf(),
                    log,
                });
            }
            Err(e) => return Err(Error::io(path, "open", e)),
        };
        let lock = if effective == Access::ReadWrite {
            let dup = file.try_clone().map_err(|e| Error::io(path, "dup", e))?;
            Some(lock::lock_within(dup, path, lock::Kind::Exclusive, limit)?)
        } else {
            None
        };
        // Under the lock: is the name still this file?
        let held = file.metadata().map_err(|e| Error::io(path, "stat", e))?;
        match std::fs::metadata(path) {
            Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {}
            _ => return Ok(None),
        }
        let backing = if is_segmented {
            let writable = effective == Access::ReadWrite;
            match Segmented::open(path, file, writable, writable && pending) {
                Ok(s) => Backing::Segmented(s),
                Err(Error::Io { source, .. })
                    if access == Access::ReadOnly
                        && pending
                        && matches!(
                            source.raw_os_error(),
                            Some(libc_errno::EACCES | libc_errno::EROFS | libc_errno::EPERM)
                        ) =>
                {
                    return Err(Error::UndoLogPending {
                        image: path.to_path_buf(),
                        log,
                    });
                }
                Err(e) => return Err(e),
            }
        } else {
            Backing::File(file)
        };
        let size = match &backing {
            Backing::File(f) => device_size(f, path)?,
            Backing::Segmented(s) => s.len(),
        };
        let mut img = ImageFile {
            path: path.to_path_buf(),
            real,
            log,
            size,
            file: backing,
            access: effective,
            _lock: lock,
            fault_after: fault_limit(),
            writes_made: 0,
        };
        if effective == Access::ReadWrite {
            img.recover()?;
        }
        img.access = access;
        Ok(Some(img))
    }

    /// Creates a new, empty (all-hole) image of `len` bytes. Fails if the
    /// path exists. The image is one sparse file where the host allows a
    /// file that long, else a segmented image (a directory of sparse
    /// segment files, see [`segmented`]).
    pub fn create(path: impl AsRef<Path>, len: u64) -> Result<Self, Error> {
        let path = path.as_ref();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| Error::io(path, "create", e))?;
        match file.set_len(len) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(nix::libc::EFBIG) => {
                drop(file);
                std::fs::remove_file(path).map_err(|e| Error::io(path, "remove", e))?;
                return Self::create_segmented(path, len, None);
            }
            Err(e) => return Err(Error::io(path, "set length", e)),
        }
        file.sync_all().map_err(|e| Error::io(path, "fsync", e))?;
        drop(file);
        Self::open(path, Access::ReadWrite)
    }

    /// Creates a new, empty segmented image of `len` bytes at `path` (a
    /// directory of sparse segment files). `segment_size`: the most bytes a
    /// segment holds, a multiple of 4096; `None` takes the largest power of
    /// two from 8 TiB down that the host allows a file.
    pub fn create_segmented(
        path: impl AsRef<Path>,
        len: u64,
        segment_size: Option<u64>,
    ) -> Result<Self, Error> {
        let path = path.as_ref();
        segmented::create(path, len, segment_size)?;
        Self::open(path, Access::ReadWrite)
    }

    /// Where the image's bytes are: one file, or a segmented image's
    /// manifest, with the bytes they occupy on the host.
    pub fn layout(&self) -> Result<segmented::Layout, Error> {
        let allocated = self.allocated_bytes()?;
        Ok(match &self.file {
            Backing::File(_) => segmented::Layout::File {
                length: self.size,
                allocated,
            },
            Backing::Segmented(s) => segmented::Layout::Segmented {
                manifest: s.manifest().clone(),
                allocated,
            },
        })
    }

    /// The segment files of a segmented image, in order (none for a file).
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        match &self.file {
            Backing::File(_) => Vec::new(),
            Backing::Segmented(s) => (0..s.manifest().segments.len())
                .map(|i| s.dir().join(segmented::segment_name(i)))
                .collect(),
        }
    }

    /// The image's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of this image's undo log (which exists only while a change
    /// is in progress or was interrupted).
    pub fn undo_log_path(&self) -> &Path {
        &self.log
    }

    /// Bytes of storage the file really occupies (`st_blocks` × 512).
    pub fn allocated_bytes(&self) -> Result<u64, Error> {
        self.file
            .allocated()
            .map_err(|e| Error::io(&self.path, "stat", e))
    }

    /// Grows or shrinks the image without writing data (a crash-safe
    /// `truncate`; bytes a shorter length cuts off are saved until the
    /// change is durable).
    pub fn set_len(&mut self, len: u64) -> Result<(), Error> {
        let batch = WriteBatch {
            new_len: Some(len),
            ops: Vec::new(),
        };
        self.commit(&batch)
    }

    /// Reads the file's length again (after someone grew it with
    /// `truncate` while it was open, as `losetup -c` makes a loop device
    /// see a grown backing file) and returns it.
    pub fn reread_size(&mut self) -> Result<u64, Error> {
        self.size = match &self.file {
            Backing::File(f) => device_size(f, &self.path)?,
            Backing::Segmented(s) => s.len(),
        };
        Ok(self.size)
    }

    fn note_write(&mut self) -> Result<(), Error> {
        if let Some(limit) = self.fault_after {
            if self.writes_made >= limit {
                return Err(Error::InjectedFault(self.writes_made));
            }
        }
        self.writes_made += 1;
        Ok(())
    }

    fn io(&self, op: impl Into<String>, e: std::io::Error) -> Error {
        Error::io(&self.path, op, e)
    }

    /// Sets the image's length; `counted`: each step goes through the
    /// fault-injection hook (a file's length is one step; a segmented
    /// image's, one per file changed).
    fn set_file_len(&mut self, len: u64, counted: bool) -> Result<(), Error> {
        let limit = self.fault_after.filter(|_| counted);
        let made = &mut self.writes_made;
        let mut step = || -> Result<(), Error> {
            if counted {
                if limit.is_some_and(|l| *made >= l) {
                    return Err(Error::InjectedFault(*made));
                }
                *made += 1;
            }
            Ok(())
        };
        match &mut self.file {
            Backing::File(f) => {
                step()?;
                f.set_len(len)
                    .map_err(|e| Error::io(&self.path, "set length", e))?;
            }
            Backing::Segmented(s) => s.set_len(len, &mut step)?,
        }
        self.size = len;
        Ok(())
    }

    fn punch(&self, range: Range<u64>) -> Result<(), Error> {
        let end = range.end.min(self.size);
        if range.start >= end {
            return Ok(());
        }
        let (Ok(off), Ok(len)) = (i64::try_from(range.start), i64::try_from(end - range.start))
        else {
            return Err(Error::OutOfRange {
                offset: range.start,
                len: end - range.start,
                size: self.size,
            });
        };
        match self.file.punch(off, len) {
            Ok(()) => Ok(()),
            // No hole punching here (some filesystems): write zeros instead.
            Err(nix::errno::Errno::EOPNOTSUPP) => self.write_zeros(range.start..end),
            Err(e) => Err(self.io(format!("punch hole at {}", range.start), e.into())),
        }
    }

    fn write_zeros(&self, range: Range<u64>) -> Result<(), Error> {
        let zeros = vec![0u8; undo::BUF];
        let mut pos = range.start;
        while pos < range.end {
            let n = (range.end - pos).min(zeros.len() as u64) as usize;
            self.file
                .write_all_at(&zeros[..n], pos)
                .map_err(|e| self.io(format!("write at {pos}"), e))?;
            pos += n as u64;
        }
        Ok(())
    }

    fn fsync(&self) -> Result<(), Error> {
        self.file.sync_all().map_err(|e| self.io("fsync", e))
    }

    fn remove_log(&self) -> Result<(), Error> {
        std::fs::remove_file(&self.log).map_err(|e| Error::io(&self.log, "remove undo log", e))?;
        sync_dir(&self.log)
    }

    /// The header a log of this image carries.
    fn header(&self, kind: u32, old_len: u64, new_len: u64) -> Result<Header, Error> {
        let (dev, ino) = self
            .file
            .identity()
            .map_err(|e| Error::io(&self.path, "stat", e))?;
        Ok(Header {
            kind,
            dev,
            ino,
            old_len,
            new_len,
            name: self.real_name(),
        })
    }

    fn real_name(&self) -> Vec<u8> {
        self.real
            .file_name()
            .map(undo::os_bytes)
            .unwrap_or_default()
    }

    /// Allocated ranges inside `discards`, clipped to `limit`: what the
    /// discards will punch (minus what the plan writes).
    fn stale_data(&self, discards: &[Range<u64>], limit: u64) -> Result<Vec<Range<u64>>, Error> {
        let mut out = Vec::new();
        for d in discards {
            let r = d.start.min(limit)..d.end.min(limit);
            if !r.is_empty() {
                out.extend(self.data_ranges(r)?);
            }
        }
        out.sort_unstable_by_key(|r| r.start);
        Ok(merge_touching(out))
    }

    /// Pass 1: the undo log of `plan`. Returns the plan's write ranges,
    /// sorted and merged (refusing overlaps). On failure the partial log is
    /// removed.
    fn write_undo_log(
        &self,
        plan: &dyn WritePlan,
        old_len: u64,
        new_len: u64,
        mut cursor: DataCursor<'_>,
    ) -> Result<Vec<Range<u64>>, Error> {
        let header = self.header(LOG_UNDO, old_len, new_len)?;
        let mut w = LogWriter::create(&self.log, &header)?;
        match self.undo_records(&mut w, plan, old_len, new_len, &mut cursor) {
            Ok(written) => {
                w.finish()?;
                sync_dir(&self.log)?;
                Ok(written)
            }
            Err(e) => {
                drop(w);
                let _ = std::fs::remove_file(&self.log);
                Err(e)
            }
        }
    }

    fn undo_records(
        &self,
        w: &mut LogWriter,
        plan: &dyn WritePlan,
        old_len: u64,
        new_len: u64,
        cursor: &mut DataCursor<'_>,
    ) -> Result<Vec<Range<u64>>, Error> {
        let mut written: Vec<Range<u64>> = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        for_each_coalesced(plan, &mut |off, bytes| {
            let len = bytes.len() as u64;
            let end = match off.checked_add(len) {
                Some(e) if e <= new_len => e,
                _ => {
                    return Err(Error::OutOfRange {
                        offset: off,
                        len,
                        size: new_len,
                    });
                }
            };
            match written.last_mut() {
                Some(last) if last.end == off => last.end = end,
                _ => written.push(off..end),
            }
            let mid = end.min(old_len);
            if off < mid {
                cursor.split(off..mid, &mut |seg, hole| {
                    let new = &bytes[(seg.start - off) as usize..(seg.end - off) as usize];
                    match hole {
                        None => {
                            w.record(DATA_NEW, &seg)?;
                            w.crcs(seg.start, new)?;
                            self.copy_out(w, &seg, &mut buf)
                        }
                        Some(h) => {
                            // A rollback punches whole 4 KiB blocks of the
                            // hole, so a sector written into a hole does
                            // not leave its block allocated.
                            let p0 = (seg.start / PIECE * PIECE).max(h.start);
                            let p1 = seg.end.div_ceil(PIECE).saturating_mul(PIECE);
                            let p1 = p1.min(h.end).min(old_len).max(seg.end);
                            w.record(HOLE_NEW, &seg)?;
                            w.u64(p0)?;
                            w.u64(p1)?;
                            w.crcs(seg.start, new)
                        }
                    }
                })?;
            }
            let past = off.max(old_len);
            if past < end {
                let seg = past..end;
                w.record(PAST_END_NEW, &seg)?;
                w.crcs(past, &bytes[(past - off) as usize..])?;
            }
            Ok(())
        })?;
        if new_len < old_len {
            cursor.split(new_len..old_len, &mut |seg, hole| match hole {
                None => {
                    w.record(DATA_CUT, &seg)?;
                    self.copy_out(w, &seg, &mut buf)
                }
                Some(_) => w.record(HOLE_CUT, &seg),
            })?;
        }
        merge_disjoint(written)
    }

    /// Appends the image's bytes of `range` to the log, through `buf`.
    fn copy_out(
        &self,
        w: &mut LogWriter,
        range: &Range<u64>,
        buf: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let mut pos = range.start;
        while pos < range.end {
            let n = (range.end - pos).min(undo::BUF as u64) as usize;
            if buf.len() < n {
                buf.resize(n, 0);
            }
            self.file
                .read_exact_at(&mut buf[..n], pos)
                .map_err(|e| self.io(format!("read at {pos}"), e))?;
            w.bytes(&buf[..n])?;
            pos += n as u64;
        }
        Ok(())
    }

    /// Pass 2: the new length, the writes, an fsync.
    fn apply(&mut self, plan: &dyn WritePlan) -> Result<(), Error> {
        if let Some(len) = plan.new_len() {
            self.set_file_len(len, true)?;
        }
        let limit = self.fault_after;
        let mut made = self.writes_made;
        let size = self.size;
        let (file, path) = (&self.file, &self.path);
        let r = for_each_coalesced(plan, &mut |off, bytes| {
            if limit.is_some_and(|l| made >= l) {
                return Err(Error::InjectedFault(made));
            }
            made += 1;
            check_range(off, bytes.len() as u64, size)?;
            file.write_all_at(bytes, off)
                .map_err(|e| Error::io(path, format!("write at {off}"), e))
        });
        self.writes_made = made;
        r?;
        self.fsync()
    }

    /// Writes the roll-forward log of a plan with discards under its
    /// temporary name (the caller renames it over the undo log: the commit
    /// point). On failure the temporary file is removed and the undo log
    /// still rules.
    fn write_forward_log(
        &mut self,
        plan: &dyn WritePlan,
        punches: &[Range<u64>],
        old_len: u64,
        new_len: u64,
    ) -> Result<(), Error> {
        let tmp = undo::forward_tmp_path(&self.log);
        let _ = std::fs::remove_file(&tmp);
        let header = self.header(LOG_FORWARD, old_len, new_len)?;
        let mut w = LogWriter::create(&tmp, &header)?;
        let r = for_each_coalesced(plan, &mut |off, bytes| {
            w.record(WRITTEN, &(off..off + bytes.len() as u64))?;
            w.crcs(off, bytes)
        })
        .and_then(|()| {
            for p in punches {
                w.record(PUNCH, p)?;
            }
            Ok(())
        });
        match r.and_then(|()| w.finish()) {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Before a change grows a file image past what the host allows a
    /// file (`ftruncate` fails with `EFBIG` on a scratch file), converts
    /// the image into a segmented one holding the same bytes, and takes
    /// the lock of its directory.
    fn make_room(&mut self, new_len: u64) -> Result<(), Error> {
        let Backing::File(f) = &self.file else {
            return Ok(());
        };
        let is_file = f
            .metadata()
            .map_err(|e| Error::io(&self.path, "stat", e))?
            .is_file();
        if !is_file || segmented::host_takes(&self.real, new_len)? {
            return Ok(());
        }
        segmented::convert(&self.real, f, self.size)?;
        let dir = File::open(&self.real).map_err(|e| Error::io(&self.real, "open", e))?;
        let dup = dir
            .try_clone()
            .map_err(|e| Error::io(&self.real, "dup", e))?;
        let lock = lock::lock(dup, &self.real, lock::Kind::Exclusive)?;
        let seg = Segmented::open(&self.real, dir, true, false)?;
        self.file = Backing::Segmented(seg);
        self._lock = Some(lock);
        Ok(())
    }

    fn commit_staged(&mut self, plan: &dyn WritePlan) -> Result<(), (Error, Stage)> {
        let old_len = self.size;
        let new_len = plan.new_len().unwrap_or(old_len);
        if new_len > old_len {
            self.make_room(new_len).map_err(|e| (e, Stage::Before))?;
        }
        let discards = plan.discards();
        let limit = old_len.min(new_len);
        let stale = self
            .stale_data(&discards, limit)
            .map_err(|e| (e, Stage::Before))?;
        // What the discards' walk found is known to the first pass too.
        let mut cursor = DataCursor::new(&self.file, &self.path);
        for d in &discards {
            let within = d.start.min(limit)..d.end.min(limit);
            let first = stale.partition_point(|s| s.end <= within.start);
            let inside: Vec<Range<u64>> = stale[first..]
                .iter()
                .take_while(|s| s.start < within.end)
                .map(|s| s.start.max(within.start)..s.end.min(within.end))
                .collect();
            cursor.seed(within, &inside);
        }
        let written = self
            .write_undo_log(plan, old_len, new_len, cursor)
            .map_err(|e| (e, Stage::Before))?;
        let applying = |e| (e, Stage::Applying);
        self.apply(plan).map_err(applying)?;
        let punches = subtract(&stale, &written);
        if punches.is_empty() {
            return self.remove_log().map_err(applying);
        }
        self.write_forward_log(plan, &punches, old_len, new_len)
            .map_err(applying)?;
        let tmp = undo::forward_tmp_path(&self.log);
        // The commit point.
        self.note_write().map_err(applying)?;
        std::fs::rename(&tmp, &self.log)
            .map_err(|e| (Error::io(&self.log, "replace undo log", e), Stage::Applying))?;
        let forward = |e| (e, Stage::Forward);
        sync_dir(&self.log).map_err(forward)?;
        for p in &punches {
            self.note_write().map_err(forward)?;
            self.punch(p.clone()).map_err(forward)?;
        }
        self.fsync().map_err(forward)?;
        self.remove_log().map_err(forward)
    }

    /// Finishes a change a crashed process left: rolls an undo log back or a
    /// roll-forward log forward, after checking the image is in a state the
    /// log predicts.
    fn recover(&mut self) -> Result<(), Error> {
        // A roll-forward log that never replaced the undo log was never
        // acted on.
        let tmp = undo::forward_tmp_path(&self.log);
        match std::fs::remove_file(&tmp) {
            Ok(()) => sync_dir(&tmp)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&tmp, "remove", e)),
        }
        let mut f = match File::open(&self.log) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&self.log, "open undo log", e)),
        };
        let read = Header::read(&mut f).map_err(|e| Error::io(&self.log, "read undo log", e))?;
        let (header, header_len) = match read {
            // Created but its header not yet written: never acted on.
            HeaderRead::Torn => return self.remove_log(),
            HeaderRead::Invalid(reason) => {
                return Err(Error::UndoLogCorrupt {
                    path: self.log.clone(),
                    reason,
                });
            }
            HeaderRead::Valid(h, n) => (h, n),
        };
        self.check_identity(&header)?;
        let Some((body_end, count)) = undo::check_footer(&mut f, &self.log)? else {
            if header.kind == LOG_UNDO {
                // Being written when the process stopped: the image was
                // not touched yet.
                return self.remove_log();
            }
            return Err(Error::UndoLogCorrupt {
                path: self.log.clone(),
                reason: "the roll-forward log has no valid footer".into(),
            });
        };
        self.verify(&mut f, &header, header_len, body_end, count)?;
        self.replay(&mut f, &header, header_len, body_end)?;
        drop(f);
        self.remove_log()
    }

    fn mismatch(&self, detail: String) -> Error {
        Error::UndoLogMismatch {
            image: self.path.clone(),
            log: self.log.clone(),
            detail,
        }
    }

    fn check_identity(&self, h: &Header) -> Result<(), Error> {
        let (dev, ino) = self
            .file
            .identity()
            .map_err(|e| Error::io(&self.path, "stat", e))?;
        let name = self.real_name();
        if h.dev != dev || h.ino != ino || h.name != name {
            return Err(self.mismatch(format!(
                "it was written for the file {:?} (device {}, inode {}), but this is {:?} \
                 (device {}, inode {}): the image was replaced after the interrupted write",
                String::from_utf8_lossy(&h.name),
                h.dev,
                h.ino,
                String::from_utf8_lossy(&name),
                dev,
                ino
            )));
        }
        Ok(())
    }

    /// Reads `range` of the image into `buf` (resized).
    fn read_into(&self, range: &Range<u64>, buf: &mut Vec<u8>) -> Result<(), Error> {
        let n = (range.end - range.start) as usize;
        buf.resize(n, 0);
        self.file
            .read_exact_at(&mut buf[..n], range.start)
            .map_err(|e| self.io(format!("read at {}", range.start), e))
    }

    /// Checks every record against the image; changes nothing.
    fn verify(
        &self,
        f: &mut File,
        h: &Header,
        header_len: u64,
        body_end: u64,
        count: u64,
    ) -> Result<(), Error> {
        let cur = self.size;
        let changed = "the image changed after the interrupted write";
        let lens_ok = match h.kind {
            LOG_UNDO => cur == h.old_len || cur == h.new_len,
            _ => cur == h.new_len,
        };
        if !lens_ok {
            return Err(self.mismatch(format!(
                "the image is {cur} bytes long, but the interrupted change went from {} to {} \
                 bytes; {changed}",
                h.old_len, h.new_len
            )));
        }
        let mut r = LogReader::new(f, &self.log, header_len, body_end)?;
        let mut past_end: Vec<Range<u64>> = Vec::new();
        // Every record's range, and the bytes a rollback punches beyond a
        // record's own (the rest of a 4 KiB block that was a hole): those
        // must be another record's, or still zeros.
        let mut ranges: Vec<Range<u64>> = Vec::new();
        let mut margins: Vec<Range<u64>> = Vec::new();
        let mut old = Vec::new();
        let mut now = Vec::new();
        let mut seen = 0u64;
        let neither = |p: &Range<u64>| {
            self.mismatch(format!(
                "bytes {}..{} are neither the old nor the new contents; {changed}",
                p.start, p.end
            ))
        };
        while let Some(rec) = r.next()? {
            seen += 1;
            let range = rec.range.clone();
            let allowed = match h.kind {
                LOG_UNDO => matches!(
                    rec.kind,
                    DATA_NEW | HOLE_NEW | PAST_END_NEW | DATA_CUT | HOLE_CUT
                ),
                _ => matches!(rec.kind, WRITTEN | PUNCH),
            };
            if !allowed {
                return Err(Error::UndoLogCorrupt {
                    path: self.log.clone(),
                    reason: format!("record kind {} in a log of kind {}", rec.kind, h.kind),
                });
            }
            let present = range.end <= cur;
            if !present && range.start < cur {
                return Err(self.mismatch(format!(
                    "bytes {}..{} cross the end of the image; {changed}",
                    range.start, range.end
                )));
            }
            if rec.kind == HOLE_NEW {
                let p = r.u64()?..r.u64()?;
                if p.start < range.start {
                    margins.push(p.start..range.start);
                }
                if p.end > range.end {
                    margins.push(range.end..p.end);
                }
            }
            if h.kind == LOG_UNDO {
                ranges.push(range.clone());
            }
            let crcs = if undo::has_crcs(rec.kind) {
                r.crcs(undo::piece_count(&range))?
            } else {
                Vec::new()
            };
            match rec.kind {
                PUNCH => {}
                HOLE_CUT => {
                    if present {
                        for d in self.data_ranges(range.clone())? {
                            for p in undo::pieces(d) {
                                self.read_into(&p, &mut now)?;
                                if now.iter().any(|&b| b != 0) {
                                    return Err(self.mismatch(format!(
                                        "bytes {}..{}, cut off by the change, hold data; {changed}",
                                        p.start, p.end
                                    )));
                                }
                            }
                        }
                    }
                }
                DATA_NEW | DATA_CUT => {
                    if !present {
                        r.skip(range.end - range.start)?;
                        if rec.kind == DATA_NEW {
                            return Err(self.mismatch(format!(
                                "bytes {}..{} are missing; {changed}",
                                range.start, range.end
                            )));
                        }
                        continue;
                    }
                    let mut i = 0usize;
                    let mut chunk_start = range.start;
                    while chunk_start < range.end {
                        // Whole pieces, at most BUF bytes.
                        let limit = chunk_start.saturating_add(undo::BUF as u64);
                        let chunk_end = if limit >= range.end {
                            range.end
                        } else {
                            (limit / PIECE * PIECE).max(chunk_start + 1)
                        };
                        let chunk = chunk_start..chunk_end;
                        old.resize((chunk.end - chunk.start) as usize, 0);
                        r.read(&mut old)?;
                        self.read_into(&chunk, &mut now)?;
                        for p in undo::pieces(chunk.clone()) {
                            let s = (p.start - chunk.start) as usize;
                            let e = (p.end - chunk.start) as usize;
                            let ok = now[s..e] == old[s..e]
                                || match rec.kind {
                                    DATA_NEW => crcs
                                        .get(i)
                                        .is_some_and(|&c| crc32c::crc32c(&now[s..e]) == c),
                                    // A rollback in progress: extended, not
                                    // yet restored.
                                    _ => now[s..e].iter().all(|&b| b == 0),
                                };
                            if !ok {
                                return Err(neither(&p));
                            }
                            i += 1;
                        }
                        chunk_start = chunk_end;
                    }
                }
                _ => {
                    // HOLE_NEW, PAST_END_NEW (old: zeros) and WRITTEN (new
                    // only).
                    if rec.kind == PAST_END_NEW {
                        // Whole blocks: a write allocates the block it
                        // touches.
                        let s = (range.start / PIECE * PIECE).max(h.old_len);
                        let e = range.end.div_ceil(PIECE).saturating_mul(PIECE);
                        past_end.push(s..e);
                    }
                    if !present {
                        if rec.kind == PAST_END_NEW {
                            continue;
                        }
                        return Err(self.mismatch(format!(
                            "bytes {}..{} are missing; {changed}",
                            range.start, range.end
                        )));
                    }
                    let mut i = 0usize;
                    let mut chunk_start = range.start;
                    while chunk_start < range.end {
                        let limit = chunk_start.saturating_add(undo::BUF as u64);
                        let chunk_end = if limit >= range.end {
                            range.end
                        } else {
                            (limit / PIECE * PIECE).max(chunk_start + 1)
                        };
                        let chunk = chunk_start..chunk_end;
                        self.read_into(&chunk, &mut now)?;
                        for p in undo::pieces(chunk.clone()) {
                            let s = (p.start - chunk.start) as usize;
                            let e = (p.end - chunk.start) as usize;
                            let is_new = crcs
                                .get(i)
                                .is_some_and(|&c| crc32c::crc32c(&now[s..e]) == c);
                            let is_old = rec.kind != WRITTEN && now[s..e].iter().all(|&b| b == 0);
                            if !(is_new || is_old) {
                                if rec.kind == WRITTEN {
                                    return Err(self.mismatch(format!(
                                        "bytes {}..{} do not hold what the finished change \
                                         wrote; {changed}",
                                        p.start, p.end
                                    )));
                                }
                                return Err(neither(&p));
                            }
                            i += 1;
                        }
                        chunk_start = chunk_end;
                    }
                }
            }
        }
        if !margins.is_empty() {
            ranges.sort_unstable_by_key(|r| r.start);
            for m in subtract(&margins, &merge_touching(ranges)) {
                let m = m.start.min(cur)..m.end.min(cur);
                if m.is_empty() {
                    continue;
                }
                self.read_into(&m, &mut now)?;
                if now.iter().any(|&b| b != 0) {
                    return Err(self.mismatch(format!(
                        "bytes {}..{}, in a block that was a hole, hold data; {changed}",
                        m.start, m.end
                    )));
                }
            }
        }
        if seen != count {
            return Err(Error::UndoLogCorrupt {
                path: self.log.clone(),
                reason: format!("{seen} records where the footer counts {count}"),
            });
        }
        if h.kind == LOG_UNDO && cur > h.old_len {
            past_end.sort_unstable_by_key(|r| r.start);
            let covered = merge_touching(past_end);
            let data = self.data_ranges(h.old_len..cur)?;
            if let Some(extra) = subtract(&data, &covered).first() {
                return Err(self.mismatch(format!(
                    "bytes {}..{}, past the image's old end, hold data the interrupted change \
                     did not write; {changed}",
                    extra.start, extra.end
                )));
            }
        }
        Ok(())
    }

    /// Replays a verified log.
    fn replay(
        &mut self,
        f: &mut File,
        h: &Header,
        header_len: u64,
        body_end: u64,
    ) -> Result<(), Error> {
        if h.kind == LOG_UNDO && self.size < h.old_len {
            self.set_file_len(h.old_len, false)?;
        }
        let mut r = LogReader::new(f, &self.log, header_len, body_end)?;
        let mut buf = Vec::new();
        while let Some(rec) = r.next()? {
            let range = rec.range.clone();
            let mut punch = None;
            if rec.kind == HOLE_NEW {
                punch = Some(r.u64()?..r.u64()?);
            }
            if undo::has_crcs(rec.kind) {
                r.skip(undo::piece_count(&range) * 4)?;
            }
            match rec.kind {
                DATA_NEW | DATA_CUT => {
                    let mut pos = range.start;
                    while pos < range.end {
                        let n = (range.end - pos).min(undo::BUF as u64) as usize;
                        buf.resize(n, 0);
                        r.read(&mut buf)?;
                        self.file
                            .write_all_at(&buf, pos)
                            .map_err(|e| self.io(format!("restore at {pos}"), e))?;
                        pos += n as u64;
                    }
                }
                HOLE_NEW => {
                    if let Some(p) = punch {
                        self.punch(p.start.min(range.start)..p.end.max(range.end))?;
                    }
                }
                HOLE_CUT | PUNCH => self.punch(range)?,
                _ => {}
            }
        }
        if h.kind == LOG_UNDO && self.size != h.old_len {
            self.set_file_len(h.old_len, false)?;
        }
        self.fsync()
    }
}

/// Merges sorted ranges that overlap or touch.
fn merge_touching(sorted: Vec<Range<u64>>) -> Vec<Range<u64>> {
    let mut out: Vec<Range<u64>> = Vec::with_capacity(sorted.len());
    for r in sorted {
        match out.last_mut() {
            Some(last) if last.end >= r.start => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// Answers "where is the next data extent" for a file with `SEEK_DATA` and
/// `SEEK_HOLE`, remembering every answer: a seek on tmpfs costs time in
/// proportion to the extent it crosses, and a plan's writes revisit the
/// same regions (a descriptor table chunk goes to every copy in turn).
/// Memory: two entries per seek made.
struct DataCursor<'a> {
    file: &'a Backing,
    path: &'a Path,
    /// Known regions, sorted and disjoint: (range, holds data). A data
    /// region is a whole extent unless it was clipped when seeded.
    known: Vec<(Range<u64>, bool)>,
    /// The filesystem cannot tell: everything is data.
    all_data: bool,
}

impl<'a> DataCursor<'a> {
    fn new(file: &'a Backing, path: &'a Path) -> Self {
        DataCursor {
            file,
            path,
            known: Vec::new(),
            all_data: false,
        }
    }

    /// Records that `within` holds exactly the data extents `data` (sorted,
    /// inside it) and holes elsewhere.
    fn seed(&mut self, within: Range<u64>, data: &[Range<u64>]) {
        let mut pos = within.start;
        for d in data {
            if d.start > pos {
                self.learn(pos..d.start, false);
            }
            self.learn(d.clone(), true);
            pos = d.end;
        }
        if pos < within.end {
            self.learn(pos..within.end, false);
        }
    }

    /// Adds a known region, merging it with overlapping or touching ones of
    /// its kind; where a region of the other kind overlaps it, the new
    /// knowledge wins.
    fn learn(&mut self, r: Range<u64>, data: bool) {
        if r.is_empty() {
            return;
        }
        let i = self.known.partition_point(|(k, _)| k.end < r.start);
        let j = i + self.known[i..].partition_point(|(k, _)| k.start <= r.end);
        let (mut start, mut end) = (r.start, r.end);
        let mut left = None;
        let mut right = None;
        for (k, kd) in &self.known[i..j] {
            if *kd == data {
                start = start.min(k.start);
                end = end.max(k.end);
            } else {
                if k.start < r.start {
                    left = Some((k.start..r.start.min(k.end), *kd));
                }
                if k.end > r.end {
                    right = Some((r.end.max(k.start)..k.end, *kd));
                }
            }
        }
        let repl: Vec<(Range<u64>, bool)> = left
            .into_iter()
            .chain([(start..end, data)])
            .chain(right)
            .collect();
        self.known.splice(i..j, repl);
    }

    fn region_at(&self, pos: u64) -> Option<(Range<u64>, bool)> {
        let i = self.known.partition_point(|(k, _)| k.end <= pos);
        self.known.get(i).filter(|(k, _)| k.start <= pos).cloned()
    }

    /// The data extent at or after `pos`, and the start of the hole region
    /// known to reach `pos` (when `pos` is in a hole).
    fn next_data(&mut self, pos: u64) -> Result<(Option<Range<u64>>, u64), Error> {
        // Each round learns something new; four always suffice.
        for round in 0..4 {
            if self.all_data {
                return Ok((Some(pos..u64::MAX), pos));
            }
            match self.region_at(pos) {
                Some((r, true)) => return Ok((Some(r), pos)),
                Some((r, false)) => {
                    if r.end == u64::MAX {
                        return Ok((None, r.start));
                    }
                    if let Some((d, true)) = self.region_at(r.end) {
                        return Ok((Some(d), r.start));
                    }
                    self.seek_from(r.end)?;
                }
                // From the start of pos's 4 KiB block first, so a hole
                // found there is known to cover that whole block.
                None if round == 0 => self.seek_from(pos / PIECE * PIECE)?,
                None => self.seek_from(pos)?,
            }
        }
        Err(Error::io(
            self.path,
            format!("seek data at {pos}"),
            std::io::Error::other("SEEK_DATA and SEEK_HOLE disagree"),
        ))
    }

    fn seek_from(&mut self, at: u64) -> Result<(), Error> {
        match self.file.seek(self.path, at)? {
            Seek::Data(d) => {
                self.learn(at..d.start, false);
                self.learn(d, true);
            }
            Seek::NoMore => self.learn(at..u64::MAX, false),
            Seek::Unsupported => self.all_data = true,
        }
        Ok(())
    }

    /// Splits `r` into data and hole segments: `f(segment, None)` for data,
    /// `f(segment, Some(hole))` for a hole, with `hole` a range known to be
    /// all hole around it.
    fn split(
        &mut self,
        r: Range<u64>,
        f: &mut dyn FnMut(Range<u64>, Option<Range<u64>>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut pos = r.start;
        while pos < r.end {
            match self.next_data(pos)? {
                (Some(d), _) if d.start <= pos => {
                    let e = d.end.min(r.end);
                    f(pos..e, None)?;
                    pos = e;
                }
                (other, hole_start) => {
                    let hole_end = other.map_or(u64::MAX, |d| d.start);
                    let e = hole_end.min(r.end);
                    f(pos..e, Some(hole_start..hole_end))?;
                    pos = e;
                }
            }
        }
        Ok(())
    }
}

/// The errno values an open for writing fails with when it may not write.
mod libc_errno {
    pub const EPERM: i32 = nix::errno::Errno::EPERM as i32;
    pub const EACCES: i32 = nix::errno::Errno::EACCES as i32;
    pub const EROFS: i32 = nix::errno::Errno::EROFS as i32;
}

fn sync_dir(path: &Path) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, "fsync directory", e))
}

/// The length of the image at `path` without opening it: a file's length,
/// or what a segmented image's manifest says. `None` when neither can be
/// read.
pub fn image_len(path: &Path) -> Option<u64> {
    if segmented::is_segmented(path) {
        return segmented::read_manifest(path).ok().map(|m| m.length);
    }
    std::fs::metadata(path).ok().map(|m| m.len())
}

/// The fault-injection limit from the environment (the only place it is
/// read).
fn fault_limit() -> Option<u64> {
    std::env::var(FAULT_ENV).ok()?.trim().parse().ok()
}

/// The size of a regular file, or of a block device (its length by seeking
/// to the end).
fn device_size(file: &File, path: &Path) -> Result<u64, Error> {
    let meta = file.metadata().map_err(|e| Error::io(path, "stat", e))?;
    if meta.is_file() {
        return Ok(meta.len());
    }
    let end = lseek(file, 0, Whence::SeekEnd).map_err(|e| Error::io(path, "seek", e.into()))?;
    u64::try_from(end).map_err(|_| Error::io(path, "seek", std::io::Error::other("negative size")))
}

impl BlockDevice for ImageFile {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        check_range(offset, buf.len() as u64, self.size)?;
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| self.io(format!("read at {offset}"), e))
    }

    fn commit(&mut self, plan: &dyn WritePlan) -> Result<(), Error> {
        if plan.is_empty() {
            return Ok(());
        }
        if self.access != Access::ReadWrite {
            return Err(self.io(
                "write",
                std::io::Error::from(std::io::ErrorKind::PermissionDenied),
            ));
        }
        let (e, stage) = match self.commit_staged(plan) {
            Ok(()) => return Ok(()),
            Err(x) => x,
        };
        let injected = matches!(e, Error::InjectedFault(_));
        let outcome = match stage {
            Stage::Before => CommitOutcome::Unchanged,
            // A simulated crash leaves the log for the next open; a real
            // error is undone (or finished) now, and if that fails too the
            // log stays for the next open.
            Stage::Applying if !injected && self.recover().is_ok() => CommitOutcome::Unchanged,
            Stage::Applying => CommitOutcome::RollBackPending {
                log: self.log.clone(),
            },
            Stage::Forward if !injected && self.recover().is_ok() => return Ok(()),
            Stage::Forward => CommitOutcome::RollForwardPending {
                log: self.log.clone(),
            },
        };
        Err(Error::Commit {
            source: Box::new(e),
            outcome,
        })
    }

    fn data_ranges(&self, range: Range<u64>) -> Result<Vec<Range<u64>>, Error> {
        let end = range.end.min(self.size);
        let mut out = Vec::new();
        let mut pos = range.start;
        while pos < end {
            match self.file.seek(&self.path, pos)? {
                Seek::NoMore => break,
                // No SEEK_DATA support: treat everything as data.
                Seek::Unsupported => {
                    out.push(pos..end);
                    break;
                }
                Seek::Data(d) => {
                    if d.start >= end {
                        break;
                    }
                    let (s, e) = (d.start, d.end.min(end));
                    match out.last_mut() {
                        // Extents meeting at a segment boundary are one.
                        Some(last) if last.end == s => last.end = e,
                        _ => out.push(s..e),
                    }
                    pos = d.end;
                }
            }
        }
        Ok(out)
    }

    fn name(&self) -> String {
        self.path.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blockdev::WriteOp;

    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    fn injected(r: Result<(), Error>) -> bool {
        matches!(
            r,
            Err(Error::Commit { ref source, outcome: CommitOutcome::RollBackPending { .. } | CommitOutcome::RollForwardPending { .. } })
                if matches!(**source, Error::InjectedFault(_))
        )
    }

    fn layout(p: &Path) -> Vec<Range<u64>> {
        let img = ImageFile::open(p, Access::ReadOnly).unwrap();
        img.data_ranges(0..img.size()).unwrap()
    }

    #[test]
    fn create_is_sparse_and_grows_without_data() {
        // ext4 caps a file at 16 TiB - 4 KiB; tmpfs takes 64 TiB.
        let d = tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tmp());
        let p = d.path().join("a.img");
        let mut img = ImageFile::create(&p, 1 << 30).unwrap();
        assert_eq!(img.size(), 1 << 30);
        let big = if img.set_len(64 << 40).is_ok() {
            64 << 40
        } else {
            (16 << 40) - 4096
        };
        img.set_len(big).unwrap();
        assert_eq!(img.size(), big);
        assert!(img.allocated_bytes().unwrap() < 1 << 20);
        assert!(img.data_ranges(0..img.size()).unwrap().is_empty());
        assert!(!undo_log_path(&p).exists());
    }

    #[test]
    fn commit_writes_and_reports_data_ranges() {
        let d = tmp();
        let p = d.path().join("a.img");
        let mut img = ImageFile::create(&p, 16 << 20).unwrap();
        let mut b = WriteBatch::new();
        b.write(8 << 20, vec![7u8; 4096]);
        img.commit(&b).unwrap();
        assert_eq!(img.read_vec(8 << 20, 4).unwrap(), [7, 7, 7, 7]);
        let r = img.data_ranges(0..img.size()).unwrap();
        assert_eq!(r.len(), 1);
        assert!(r[0].contains(&(8 << 20)));
    }

    #[test]
    fn out_of_range_or_overlapping_writes_are_refused_and_change_nothing() {
        let d = tmp();
        let p = d.path().join("a.img");
        let mut img = ImageFile::create(&p, 8192).unwrap();
        let mut b = WriteBatch::new();
        b.write(4000, vec![1u8; 200]);
        b.write(8000, vec![1u8; 200]);
        let e = img.commit(&b).unwrap_err();
        assert!(matches!(e.root_cause(), Error::OutOfRange { .. }), "{e}");
        assert!(!e.may_leave_partial_change());
        // A plan whose writes overlap (a WriteBatch resolves its own).
        struct Overlapping;
        impl WritePlan for Overlapping {
            fn for_each_write(&self, sink: &mut crate::blockdev::Sink<'_>) -> Result<(), Error> {
                sink(0, &[1u8; 200])?;
                sink(100, &[2u8; 200])
            }
        }
        let e = img.commit(&Overlapping).unwrap_err();
        assert!(
            matches!(e.root_cause(), Error::OverlappingWrites { .. }),
            "{e}"
        );
        assert!(img.data_ranges(0..8192).unwrap().is_empty());
        assert!(!undo_log_path(&p).exists());
        // The same writes in a batch: the later one wins.
        let mut b = WriteBatch::new();
        b.write(0, vec![1u8; 200]);
        b.write(100, vec![2u8; 200]);
        img.commit(&b).unwrap();
        let mut want = vec![1u8; 100];
        want.extend([2u8; 200]);
        assert_eq!(img.read_vec(0, 300).unwrap(), want);
        assert!(!undo_log_path(&p).exists());
    }

    #[test]
    fn interrupted_commit_rolls_back_on_next_open() {
        let d = tmp();
        let p = d.path().join("a.img");
        {
            let mut img = ImageFile::create(&p, 1 << 20).unwrap();
            let mut b = WriteBatch::new();
            b.write(0, vec![1u8; 4096]);
            img.commit(&b).unwrap();
        }
        let before = std::fs::read(&p).unwrap();
        let before_layout = layout(&p);
        for limit in 0..4u64 {
            {
                let mut img = ImageFile::open(&p, Access::ReadWrite).unwrap();
                img.fault_after = Some(limit);
                let mut b = WriteBatch {
                    new_len: Some(2 << 20),
                    ops: vec![],
                };
                b.write(0, vec![2u8; 512]);
                b.write(1 << 19, vec![4u8; 512]);
                b.write(1 << 20, vec![3u8; 512]);
                assert!(injected(img.commit(&b)), "limit {limit}");
                assert!(undo_log_path(&p).exists());
            }
            let img = ImageFile::open(&p, Access::ReadOnly).unwrap();
            assert_eq!(img.size(), 1 << 20);
            drop(img);
            assert_eq!(std::fs::read(&p).unwrap(), before, "limit {limit}");
            assert_eq!(layout(&p), before_layout, "limit {limit}: sparse layout");
            assert!(!undo_log_path(&p).exists());
        }
    }

    #[test]
    fn shortening_saves_the_cut_bytes() {
        let d = tmp();
        let p = d.path().join("a.img");
        {
            let mut img = ImageFile::create(&p, 4 << 20).unwrap();
            let mut b = WriteBatch::new();
            b.write(3 << 20, (0..8192u32).map(|i| i as u8).collect::<Vec<_>>());
            b.write(0, vec![5u8; 4096]);
            img.commit(&b).unwrap();
        }
        let before = std::fs::read(&p).unwrap();
        let before_layout = layout(&p);
        // Two steps: the length, the write.
        for limit in 0..2u64 {
            {
                let mut img = ImageFile::open(&p, Access::ReadWrite).unwrap();
                img.fault_after = Some(limit);
                let mut b = WriteBatch {
                    new_len: Some(1 << 20),
                    ops: vec![],
                };
                b.write(0, vec![6u8; 4096]);
                assert!(injected(img.commit(&b)), "limit {limit}");
            }
            drop(ImageFile::open(&p, Access::ReadWrite).unwrap());
            assert_eq!(std::fs::read(&p).unwrap(), before, "limit {limit}");
            assert_eq!(layout(&p), before_layout, "limit {limit}");
        }
    }

    #[test]
    fn torn_undo_logs_are_discarded() {
        let d = tmp();
        let p = d.path().join("a.img");
        drop(ImageFile::create(&p, 4096).unwrap());
        // Created, header not yet written.
        std::fs::write(undo_log_path(&p), b"").unwrap();
        drop(ImageFile::open(&p, Access::ReadWrite).unwrap());
        assert!(!undo_log_path(&p).exists());
        // A complete header for this image, no footer.
        let mut img = ImageFile::open(&p, Access::ReadWrite).unwrap();
        let h = img.header(LOG_UNDO, 4096, 8192).unwrap().to_bytes();
        std::fs::write(undo_log_path(&p), &h).unwrap();
        img.fault_after = None;
        drop(img);
        let img = ImageFile::open(&p, Access::ReadWrite).unwrap();
        assert_eq!(img.size(), 4096);
        assert!(!undo_log_path(&p).exists());
        // Not a log at all: refused, left alone.
        std::fs::write(undo_log_path(&p), b"hello").unwrap();
        drop(img);
        assert!(matches!(
            ImageFile::open(&p, Access::ReadOnly),
            Err(Error::UndoLogCorrupt { .. })
        ));
        assert_eq!(std::fs::read(undo_log_path(&p)).unwrap(), b"hello");
    }

    #[test]
    fn a_changed_image_is_refused_and_left_alone() {
        let d = tmp();
        let p = d.path().join("a.img");
        {
            let mut img = ImageFile::create(&p, 1 << 20).unwrap();
            img.fault_after = Some(1);
            let mut b = WriteBatch::new();
            b.write(0, vec![1u8; 4096]);
            b.write(8192, vec![2u8; 4096]);
            assert!(injected(img.commit(&b)));
        }
        // Someone writes over the half-changed image.
        let f = OpenOptions::new().write(true).open(&p).unwrap();
        f.write_all_at(&[9u8; 10], 100).unwrap();
        drop(f);
        let img_before = std::fs::read(&p).unwrap();
        let log_before = std::fs::read(undo_log_path(&p)).unwrap();
        let e = ImageFile::open(&p, Access::ReadOnly).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::UndoLogMismatch { .. }), "{msg}");
        assert!(
            msg.contains("bytes 0..4096 are neither the old nor the new contents"),
            "{msg}"
        );
        assert!(msg.contains("a.img"), "{msg}");
        assert_eq!(std::fs::read(&p).unwrap(), img_before);
        assert_eq!(std::fs::read(undo_log_path(&p)).unwrap(), log_before);
    }

    #[test]
    fn a_sector_written_beside_a_rolled_back_one_is_kept() {
        let d = tmp();
        let p = d.path().join("a.img");
        {
            let mut img = ImageFile::create(&p, 1 << 20).unwrap();
            img.fault_after = Some(0);
            let mut b = WriteBatch::new();
            b.write(8192 + 512, vec![1u8; 512]);
            assert!(injected(img.commit(&b)));
        }
        // The rollback would punch the whole block 8192..12288; someone
        // wrote another sector of it after the crash.
        let f = OpenOptions::new().write(true).open(&p).unwrap();
        f.write_all_at(&[7u8; 512], 8192 + 2048).unwrap();
        drop(f);
        let e = ImageFile::open(&p, Access::ReadWrite).unwrap_err();
        assert!(
            e.to_string()
                .contains("bytes 9216..12288, in a block that was a hole, hold data"),
            "{e}"
        );
        assert_eq!(std::fs::read(&p).unwrap()[8192 + 2048], 7);
    }

    #[test]
    fn a_log_of_another_file_is_refused() {
        let d = tmp();
        let p = d.path().join("a.img");
        {
            let mut img = ImageFile::create(&p, 1 << 20).unwrap();
            img.fault_after = Some(0);
            let mut b = WriteBatch::new();
            b.write(0, vec![1u8; 4096]);
            assert!(injected(img.commit(&b)));
        }
        // The image is replaced by another file of the same name.
        let log = std::fs::read(undo_log_path(&p)).unwrap();
        std::fs::remove_file(&p).unwrap();
        let other = d.path().join("keep");
        std::fs::write(&other, b"").unwrap();
        drop(ImageFile::create(&p, 2 << 20).unwrap_err());
        let e = ImageFile::open(&p, Access::ReadOnly);
        assert!(e.is_err());
        // create refused because it opened read-write and the log is
        // another file's: the new file exists, log untouched.
        assert_eq!(std::fs::read(undo_log_path(&p)).unwrap(), log);
        // Refused by identity, or (when the filesystem reused the inode
        // number) by the length.
        let e = ImageFile::open(&p, Access::ReadWrite).unwrap_err();
        assert!(matches!(e, Error::UndoLogMismatch { .. }), "{e}");
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 2 << 20);
    }

    #[test]
    fn discards_happen_after_the_commit_point_and_roll_forward() {
        let d = tmp();
        let p = d.path().join("a.img");
        {
            let mut img = ImageFile::create(&p, 4 << 20).unwrap();
            let mut b = WriteBatch::new();
            b.write(0, vec![9u8; 4 << 20]);
            img.commit(&b).unwrap();
        }
        let plan = || {
            let mut b = WriteBatch::new();
            b.discard(0..4 << 20);
            b.write(1 << 20, vec![1u8; 512]);
            b.write(3 << 20, vec![3u8; 4096]);
            b
        };
        let before = std::fs::read(&p).unwrap();
        let clean = {
            let q = d.path().join("clean.img");
            std::fs::copy(&p, &q).unwrap();
            ImageFile::open(&q, Access::ReadWrite)
                .unwrap()
                .commit(&plan())
                .unwrap();
            (std::fs::read(&q).unwrap(), layout(&q))
        };
        assert!(clean.1.iter().map(|r| r.end - r.start).sum::<u64>() <= 8192);
        let mut saw_forward = false;
        for limit in 0..10u64 {
            let q = d.path().join(format!("t{limit}.img"));
            std::fs::copy(&p, &q).unwrap();
            let r = {
                let mut img = ImageFile::open(&q, Access::ReadWrite).unwrap();
                img.fault_after = Some(limit);
                img.commit(&plan())
            };
            if r.is_ok() {
                assert_eq!(std::fs::read(&q).unwrap(), clean.0);
                assert!(limit >= 4, "too few steps: {limit}");
                assert!(saw_forward);
                return;
            }
            if let Err(Error::Commit {
                outcome: CommitOutcome::RollForwardPending { .. },
                ..
            }) = r
            {
                saw_forward = true;
            }
            assert!(injected(r));
            drop(ImageFile::open(&q, Access::ReadOnly).unwrap());
            let now = std::fs::read(&q).unwrap();
            assert!(now == before || now == clean.0, "limit {limit}");
            if now == clean.0 {
                assert_eq!(layout(&q), clean.1, "limit {limit}");
            }
        }
        panic!("never finished");
    }

    #[test]
    fn only_a_device_without_an_undo_log_may_leave_a_partial_change() {
        let d = tmp();
        let p = d.path().join("a.img");
        let mut img = ImageFile::create(&p, 1 << 20).unwrap();
        img.fault_after = Some(0);
        let mut b = WriteBatch::new();
        b.write(0, vec![1u8; 4096]);
        let e = img.commit(&b).unwrap_err();
        // The log undoes it: no advice to check the filesystem.
        assert!(!e.may_leave_partial_change(), "{e}");
        assert!(
            e.to_string().contains("injected fault after 0 writes"),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("the next open of the image undoes it"),
            "{e}"
        );
        // The same fault from a device that keeps no log would.
        assert!(Error::InjectedFault(0).may_leave_partial_change());
        assert!(!Error::ReadOnlyView("x".into()).may_leave_partial_change());
    }

    #[test]
    fn the_fault_counter_sees_every_step() {
        let d = tmp();
        let p = d.path().join("a.img");
        let mut img = ImageFile::create(&p, 1 << 20).unwrap();
        let mut b = WriteBatch::new();
        b.ops.push(WriteOp::Data {
            offset: 0,
            bytes: vec![1; 10],
        });
        b.write(4096, vec![2; 10]);
        img.writes_made = 0;
        img.commit(&b).unwrap();
        assert_eq!(img.writes_made, 2);
    }

    #[test]
    fn the_data_cursor_agrees_with_seek_data_in_any_order() {
        let d = tmp();
        let p = d.path().join("a.img");
        let mut img = ImageFile::create(&p, 64 << 20).unwrap();
        let mut b = WriteBatch::new();
        for (off, len) in [
            (0u64, 4096u64),
            (1 << 20, 3 << 20),
            (9 << 20, 8192),
            (40 << 20, 1 << 20),
        ] {
            b.write(off, vec![1u8; len as usize]);
        }
        img.commit(&b).unwrap();
        let truth = img.data_ranges(0..img.size()).unwrap();
        let is_data = |x: u64| truth.iter().any(|r| r.contains(&x));
        let mut x = 12345u64;
        for seeded in [false, true] {
            let mut c = DataCursor::new(&img.file, &img.path);
            if seeded {
                let within = 2 << 20..41 << 20;
                let inside: Vec<Range<u64>> = truth
                    .iter()
                    .filter(|r| r.end > within.start && r.start < within.end)
                    .map(|r| r.start.max(within.start)..r.end.min(within.end))
                    .collect();
                c.seed(within, &inside);
            }
            for _ in 0..300 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let a = x % (64 << 20);
                let len = (x >> 32) % (3 << 20) + 1;
                let r = a..(a + len).min(64 << 20);
                let mut pos = r.start;
                c.split(r.clone(), &mut |seg, hole| {
                    assert_eq!(seg.start, pos);
                    pos = seg.end;
                    assert_eq!(is_data(seg.start), hole.is_none(), "{seg:?}");
                    assert_eq!(is_data(seg.end - 1), hole.is_none(), "{seg:?}");
                    if let Some(h) = hole {
                        assert!(h.start <= seg.start && h.end >= seg.end);
                        assert!(
                            !truth
                                .iter()
                                .any(|t| t.start < h.end.min(64 << 20) && t.end > h.start)
                        );
                    }
                    Ok(())
                })
                .unwrap();
                assert_eq!(pos, r.end);
            }
        }
    }

    #[test]
    fn directory_and_missing_file_are_named() {
        let d = tmp();
        assert!(matches!(
            ImageFile::open(d.path(), Access::ReadOnly),
            Err(Error::IsADirectory(_))
        ));
        assert!(matches!(
            ImageFile::open(d.path().join("nope"), Access::ReadOnly),
            Err(Error::NotFound(_))
        ));
    }
}

#[cfg(test)]
mod seg_tests;
