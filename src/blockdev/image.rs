//! Sparse raw image files, and the crash-safe commit.
//!
//! The undo log lives beside the image as `<image>.ebsim-undo`:
//!
//! ```text
//! 0x00  [u8; 8]  magic "EBSUNDO1"
//! 0x08  u64le    the image's length before the change
//! then records, each:
//!       u8       kind: 1 = data follows, 2 = the range was a hole
//!       u64le    offset
//!       u64le    length
//!       [u8]     the old bytes (kind 1 only)
//! then the footer:
//!       u8       0xFF
//!       u64le    number of records
//!       u32le    CRC32 of every byte before the footer
//! ```
//!
//! The log is written and fsynced (with its directory) before the first byte
//! of the image changes. A log without a valid footer was never acted on and
//! is simply removed; a log with one is rolled back: old bytes written back,
//! holes punched again, the length restored.

use super::{BlockDevice, Error, WriteBatch, WriteOp, check_range};
use nix::fcntl::{FallocateFlags, Flock, FlockArg, fallocate};
use nix::unistd::{Whence, lseek};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::ops::Range;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

const UNDO_MAGIC: &[u8; 8] = b"EBSUNDO1";
const KIND_DATA: u8 = 1;
const KIND_HOLE: u8 = 2;
const KIND_FOOTER: u8 = 0xFF;
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

/// A raw disk image in a regular file, kept sparse.
#[derive(Debug)]
pub struct ImageFile {
    path: PathBuf,
    file: File,
    size: u64,
    access: Access,
    _lock: Option<Flock<File>>,
    fault_after: Option<u64>,
    writes_made: u64,
}

/// The undo log's path for an image.
pub fn undo_log_path(image: &Path) -> PathBuf {
    let mut name = image
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".ebsim-undo");
    image.with_file_name(name)
}

impl ImageFile {
    /// Opens an existing image. With [`Access::ReadWrite`] it waits for an
    /// exclusive lock and rolls back any change a crashed ebsim left half
    /// done. A read-only open of an image with a leftover log rolls it back
    /// too when it may write the file, and fails otherwise.
    pub fn open(path: impl AsRef<Path>, access: Access) -> Result<Self, Error> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotFound(path.to_path_buf())
            } else {
                Error::io(path, "stat", e)
            }
        })?;
        if meta.is_dir() {
            return Err(Error::IsADirectory(path.to_path_buf()));
        }
        let log = undo_log_path(path);
        let effective = if access == Access::ReadOnly && log.exists() {
            Access::ReadWrite
        } else {
            access
        };
        let file = OpenOptions::new()
            .read(true)
            .write(effective == Access::ReadWrite)
            .open(path)
            .map_err(|e| Error::io(path, "open", e))?;
        let lock = if effective == Access::ReadWrite {
            let dup = file.try_clone().map_err(|e| Error::io(path, "dup", e))?;
            Some(
                Flock::lock(dup, FlockArg::LockExclusive)
                    .map_err(|(_, errno)| Error::io(path, "flock", errno.into()))?,
            )
        } else {
            None
        };
        let mut img = ImageFile {
            path: path.to_path_buf(),
            size: device_size(&file, path)?,
            file,
            access: effective,
            _lock: lock,
            fault_after: fault_limit(),
            writes_made: 0,
        };
        img.recover()?;
        img.access = access;
        Ok(img)
    }

    /// Creates a new, empty (all-hole) image of `len` bytes. Fails if the
    /// path exists.
    pub fn create(path: impl AsRef<Path>, len: u64) -> Result<Self, Error> {
        let path = path.as_ref();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| Error::io(path, "create", e))?;
        file.set_len(len)
            .map_err(|e| Error::io(path, "set length", e))?;
        file.sync_all().map_err(|e| Error::io(path, "fsync", e))?;
        drop(file);
        Self::open(path, Access::ReadWrite)
    }

    /// The image's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of storage the file really occupies (`st_blocks` × 512).
    pub fn allocated_bytes(&self) -> Result<u64, Error> {
        let meta = self
            .file
            .metadata()
            .map_err(|e| Error::io(&self.path, "stat", e))?;
        Ok(meta.blocks().saturating_mul(512))
    }

    /// Grows or shrinks the image without writing data (a crash-safe
    /// `truncate`).
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
        self.size = device_size(&self.file, &self.path)?;
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
        let flags = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
        match fallocate(&self.file, flags, off, len) {
            Ok(()) => Ok(()),
            // No hole punching here (some filesystems): write zeros instead.
            Err(nix::errno::Errno::EOPNOTSUPP) => self.write_zeros(range.start..end),
            Err(e) => Err(self.io(format!("punch hole at {}", range.start), e.into())),
        }
    }

    fn write_zeros(&self, range: Range<u64>) -> Result<(), Error> {
        let zeros = vec![0u8; 1 << 20];
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

    /// Saves the old contents of everything `batch` touches.
    fn build_undo(&self, batch: &WriteBatch) -> Result<Vec<u8>, Error> {
        let mut log = Vec::new();
        log.extend_from_slice(UNDO_MAGIC);
        log.extend_from_slice(&self.size.to_le_bytes());
        let mut records: u64 = 0;
        let op_range = |op: &WriteOp| {
            let r = match op {
                WriteOp::Data { offset, bytes } => *offset..offset + bytes.len() as u64,
                WriteOp::Discard { range } => range.clone(),
            };
            // Past the old end there is nothing to save: restoring the
            // length removes it.
            r.start.min(self.size)..r.end.min(self.size)
        };
        // One walk over the allocated extents of the whole span, rather
        // than a SEEK_DATA/SEEK_HOLE pair per op (a mkfs makes thousands).
        let span_start = batch
            .ops
            .iter()
            .map(|o| op_range(o).start)
            .min()
            .unwrap_or(0);
        let span_end = batch.ops.iter().map(|o| op_range(o).end).max().unwrap_or(0);
        let extents = self.data_ranges(span_start..span_end)?;
        for op in &batch.ops {
            let range = op_range(op);
            if range.is_empty() {
                continue;
            }
            let first = extents.partition_point(|e| e.end <= range.start);
            let within = extents[first..]
                .iter()
                .take_while(|e| e.start < range.end)
                .map(|e| e.start.max(range.start)..e.end.min(range.end));
            let mut pos = range.start;
            for data in within {
                if data.start > pos {
                    push_record(&mut log, KIND_HOLE, pos, data.start - pos, &[]);
                    records += 1;
                }
                let mut buf = vec![0u8; usize::try_from(data.end - data.start).unwrap_or(0)];
                self.read_at(data.start, &mut buf)?;
                push_record(&mut log, KIND_DATA, data.start, buf.len() as u64, &buf);
                records += 1;
                pos = data.end;
            }
            if pos < range.end {
                push_record(&mut log, KIND_HOLE, pos, range.end - pos, &[]);
                records += 1;
            }
        }
        let crc = crc32fast::hash(&log);
        log.push(KIND_FOOTER);
        log.extend_from_slice(&records.to_le_bytes());
        log.extend_from_slice(&crc.to_le_bytes());
        Ok(log)
    }

    fn write_log(&self, log: &[u8]) -> Result<(), Error> {
        let path = undo_log_path(&self.path);
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| Error::io(&path, "create undo log", e))?;
        f.write_all(log)
            .map_err(|e| Error::io(&path, "write undo log", e))?;
        f.sync_all()
            .map_err(|e| Error::io(&path, "fsync undo log", e))?;
        sync_dir(&path)
    }

    fn remove_log(&self) -> Result<(), Error> {
        let path = undo_log_path(&self.path);
        std::fs::remove_file(&path).map_err(|e| Error::io(&path, "remove undo log", e))?;
        sync_dir(&path)
    }

    fn apply(&mut self, batch: &WriteBatch) -> Result<(), Error> {
        if let Some(len) = batch.new_len {
            self.note_write()?;
            self.file
                .set_len(len)
                .map_err(|e| self.io("set length", e))?;
            self.size = len;
        }
        for op in &batch.ops {
            self.note_write()?;
            match op {
                WriteOp::Data { offset, bytes } => {
                    check_range(*offset, bytes.len() as u64, self.size)?;
                    self.file
                        .write_all_at(bytes, *offset)
                        .map_err(|e| self.io(format!("write at {offset}"), e))?;
                }
                WriteOp::Discard { range } => self.punch(range.clone())?,
            }
        }
        self.fsync()
    }

    /// Rolls back a change left half done by a crashed process.
    fn recover(&mut self) -> Result<(), Error> {
        let path = undo_log_path(&self.path);
        let mut raw = Vec::new();
        match File::open(&path) {
            Ok(mut f) => {
                f.read_to_end(&mut raw)
                    .map_err(|e| Error::io(&path, "read undo log", e))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&path, "open undo log", e)),
        }
        let Some(records) = parse_undo(&raw) else {
            // No valid footer: the log was being written when the process
            // stopped, so the image was never touched.
            return self.remove_log();
        };
        let corrupt = |reason: &str| Error::UndoLogCorrupt {
            path: path.clone(),
            reason: reason.to_string(),
        };
        let old_len = records.old_len;
        if self.size < old_len {
            self.file
                .set_len(old_len)
                .map_err(|e| self.io("set length", e))?;
            self.size = old_len;
        }
        for rec in &records.records {
            let end = rec
                .offset
                .checked_add(rec.len)
                .ok_or_else(|| corrupt("record past 2^64"))?;
            match rec.data {
                Some(bytes) => self
                    .file
                    .write_all_at(bytes, rec.offset)
                    .map_err(|e| self.io(format!("restore at {}", rec.offset), e))?,
                None => self.punch(rec.offset..end)?,
            }
        }
        if self.size != old_len {
            self.file
                .set_len(old_len)
                .map_err(|e| self.io("set length", e))?;
            self.size = old_len;
        }
        self.fsync()?;
        self.remove_log()
    }
}

struct UndoRecord<'a> {
    offset: u64,
    len: u64,
    data: Option<&'a [u8]>,
}

struct UndoLog<'a> {
    old_len: u64,
    records: Vec<UndoRecord<'a>>,
}

fn push_record(log: &mut Vec<u8>, kind: u8, offset: u64, len: u64, data: &[u8]) {
    log.push(kind);
    log.extend_from_slice(&offset.to_le_bytes());
    log.extend_from_slice(&len.to_le_bytes());
    log.extend_from_slice(data);
}

/// Parses a complete undo log; `None` when it has no valid footer.
fn parse_undo(raw: &[u8]) -> Option<UndoLog<'_>> {
    const FOOTER: usize = 1 + 8 + 4;
    if raw.len() < 16 + FOOTER || &raw[..8] != UNDO_MAGIC {
        return None;
    }
    let body_end = raw.len() - FOOTER;
    let footer = &raw[body_end..];
    if footer[0] != KIND_FOOTER {
        return None;
    }
    let count = crate::bytes::read_u64le(footer, 1);
    let crc = crate::bytes::read_u32le(footer, 9);
    if crc32fast::hash(&raw[..body_end]) != crc {
        return None;
    }
    let old_len = crate::bytes::read_u64le(raw, 8);
    let mut records = Vec::new();
    let mut pos = 16;
    while pos < body_end {
        if body_end - pos < 17 {
            return None;
        }
        let kind = raw[pos];
        let offset = crate::bytes::read_u64le(raw, pos + 1);
        let len = crate::bytes::read_u64le(raw, pos + 9);
        pos += 17;
        let data = match kind {
            KIND_DATA => {
                let n = usize::try_from(len).ok()?;
                if body_end - pos < n {
                    return None;
                }
                let d = &raw[pos..pos + n];
                pos += n;
                Some(d)
            }
            KIND_HOLE => None,
            _ => return None,
        };
        records.push(UndoRecord { offset, len, data });
    }
    if records.len() as u64 != count {
        return None;
    }
    Some(UndoLog { old_len, records })
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

    fn commit(&mut self, batch: &WriteBatch) -> Result<(), Error> {
        if batch.is_empty() {
            return Ok(());
        }
        if self.access != Access::ReadWrite {
            return Err(self.io(
                "write",
                std::io::Error::from(std::io::ErrorKind::PermissionDenied),
            ));
        }
        batch.check_bounds(self.size)?;
        let log = self.build_undo(batch)?;
        self.write_log(&log)?;
        match self.apply(batch) {
            Ok(()) => self.remove_log(),
            // A simulated crash leaves the log for the next open.
            Err(e @ Error::InjectedFault(_)) => Err(e),
            Err(e) => {
                // Best effort: put the old bytes back now; if that fails too
                // the log stays and the next open retries.
                let _ = self.recover();
                Err(e)
            }
        }
    }

    fn data_ranges(&self, range: Range<u64>) -> Result<Vec<Range<u64>>, Error> {
        let end = range.end.min(self.size);
        let mut out = Vec::new();
        let mut pos = range.start;
        while pos < end {
            let Ok(ipos) = i64::try_from(pos) else { break };
            let data = match lseek(&self.file, ipos, Whence::SeekData) {
                Ok(d) => d as u64,
                Err(nix::errno::Errno::ENXIO) => break,
                // No SEEK_DATA support: treat everything as data.
                Err(nix::errno::Errno::EINVAL) => {
                    out.push(pos..end);
                    break;
                }
                Err(e) => return Err(self.io("seek data", e.into())),
            };
            if data >= end {
                break;
            }
            let hole = match lseek(&self.file, data as i64, Whence::SeekHole) {
                Ok(h) => (h as u64).min(end),
                Err(e) => return Err(self.io("seek hole", e.into())),
            };
            out.push(data..hole);
            pos = hole;
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

    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
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
    fn out_of_range_write_is_refused_and_changes_nothing() {
        let d = tmp();
        let p = d.path().join("a.img");
        let mut img = ImageFile::create(&p, 4096).unwrap();
        let mut b = WriteBatch::new();
        b.write(4000, vec![1u8; 200]);
        assert!(matches!(img.commit(&b), Err(Error::OutOfRange { .. })));
        assert!(img.data_ranges(0..4096).unwrap().is_empty());
    }

    #[test]
    fn interrupted_commit_rolls_back_on_next_open() {
        let d = tmp();
        let p = d.path().join("a.img");
        {
            let mut img = ImageFile::create(&p, 1 << 20).unwrap();
            let mut b = WriteBatch::new();
            b.write(0, vec![1u8; 512]);
            img.commit(&b).unwrap();
        }
        let before = std::fs::read(&p).unwrap();
        for limit in 0..3u64 {
            {
                let mut img = ImageFile::open(&p, Access::ReadWrite).unwrap();
                img.fault_after = Some(limit);
                let mut b = WriteBatch {
                    new_len: Some(2 << 20),
                    ops: vec![],
                };
                b.write(0, vec![2u8; 512]);
                b.write(1 << 20, vec![3u8; 512]);
                assert!(matches!(img.commit(&b), Err(Error::InjectedFault(_))));
                assert!(undo_log_path(&p).exists());
            }
            let img = ImageFile::open(&p, Access::ReadOnly).unwrap();
            assert_eq!(img.size(), 1 << 20);
            drop(img);
            assert_eq!(std::fs::read(&p).unwrap(), before, "limit {limit}");
            assert!(!undo_log_path(&p).exists());
        }
    }

    #[test]
    fn torn_undo_log_is_discarded() {
        let d = tmp();
        let p = d.path().join("a.img");
        drop(ImageFile::create(&p, 4096).unwrap());
        std::fs::write(undo_log_path(&p), b"EBSUNDO1garbage").unwrap();
        let img = ImageFile::open(&p, Access::ReadWrite).unwrap();
        assert_eq!(img.size(), 4096);
        assert!(!undo_log_path(&p).exists());
    }

    #[test]
    fn discard_punches_holes_and_rolls_back() {
        let d = tmp();
        let p = d.path().join("a.img");
        let mut img = ImageFile::create(&p, 4 << 20).unwrap();
        let mut b = WriteBatch::new();
        b.write(0, vec![9u8; 4 << 20]);
        img.commit(&b).unwrap();
        let mut b = WriteBatch::new();
        b.discard(1 << 20..3 << 20);
        img.commit(&b).unwrap();
        assert_eq!(img.read_vec(2 << 20, 4).unwrap(), [0, 0, 0, 0]);
        assert!(img.allocated_bytes().unwrap() <= 3 << 20);
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
